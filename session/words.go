package session

import (
	"errors"
	"strings"
)

// The command-line syntax is the part of sh's that module sessions use: words separated by blanks,
// single quotes (literal), double quotes (backslash escapes \" and \\), backslash outside quotes,
// and the output redirection "> PATH" of echo, which may be written "TEXT >PATH" too.

// redirect is the word splitWords returns for an unquoted ">".
const redirect = "\x00>"

// splitWords splits a command line into words. An unquoted > becomes the redirect word so that a
// quoted ">" stays text.
func splitWords(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			flush()
		case c == '>':
			flush()
			words = append(words, redirect)
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(line[i+1 : i+1+end])
			inWord = true
			i += end + 1
		case c == '"':
			inWord = true
			closed := false
			for i++; i < len(line); i++ {
				if line[i] == '"' {
					closed = true
					break
				}
				if line[i] == '\\' && i+1 < len(line) && (line[i+1] == '"' || line[i+1] == '\\') {
					i++
				}
				cur.WriteByte(line[i])
			}
			if !closed {
				return nil, errors.New("unterminated double quote")
			}
		case c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return words, nil
}

// joinParams is how kmod's insmod and modprobe join parameter arguments into the one string the
// kernel parses: separated by spaces, a value holding a space put in double quotes unless it is
// quoted already.
func joinParams(args []string) string {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = a
		name, value, ok := strings.Cut(a, "=")
		if ok && strings.Contains(value, " ") && !strings.HasPrefix(value, `"`) && !strings.HasPrefix(value, "'") {
			parts[i] = name + `="` + value + `"`
		}
	}
	return strings.Join(parts, " ")
}
