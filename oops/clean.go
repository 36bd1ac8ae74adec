package oops

import (
	"regexp"
	"strings"
)

// logLine is one input line with its console prefixes stripped.
type logLine struct {
	num    int    // 1-based input line number
	text   string // what printk printed, leading spaces kept (they mark call trace entries)
	caller string // printk caller id ("T123", "C1"), "" when the log has none
	// stamped is set when the line carried a printk timestamp or caller id; in a log whose lines are
	// stamped, an unstamped line is a piece of the line before it that a terminal or mailer wrapped.
	stamped bool
}

var (
	// syslog: "Jan  1 00:00:00 host kernel: "; journal short-iso: "2024-01-01T00:00:00+0000 host kernel: ".
	syslogPrefix  = regexp.MustCompile(`^(?:[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT[0-9:.,]+(?:[+-]\d\d:?\d\d|Z)?) \S+ kernel: ?`)
	kernelPrefix  = regexp.MustCompile(`^kernel: ?`)
	levelPrefix   = regexp.MustCompile(`^<\d{1,2}>`)
	timePrefix    = regexp.MustCompile(`^\[ *\d+\.\d+\]`)
	callerPrefix  = regexp.MustCompile(`^\[ *([TC]\d+)\]`)
	controlChars  = strings.NewReplacer("\r", "", "\x00", "")
	maxLineLength = 4096 // longer lines are cut: no kernel line is near this, garbage is
)

// cleanLine strips the prefixes consoles, syslog and the journal put before what printk printed.
func cleanLine(num int, raw string) logLine {
	if len(raw) > maxLineLength {
		raw = raw[:maxLineLength]
	}
	s := controlChars.Replace(raw)
	l := logLine{num: num}
	if m := syslogPrefix.FindString(s); m != "" {
		s, l.stamped = s[len(m):], true
	} else if m := kernelPrefix.FindString(s); m != "" {
		s = s[len(m):]
	}
	if m := levelPrefix.FindString(s); m != "" {
		s = s[len(m):]
	}
	if m := timePrefix.FindString(s); m != "" {
		s, l.stamped = s[len(m):], true
	}
	if m := callerPrefix.FindStringSubmatch(s); m != nil {
		s, l.caller, l.stamped = s[len(m[0]):], m[1], true
	}
	// printk puts one space after its prefixes; the text's own indentation follows.
	if l.stamped {
		s = strings.TrimPrefix(s, " ")
	}
	l.text = s // trailing blanks are trimmed after wrapped lines are joined (a wrap may fall after one)
	return l
}

// cleanLines cleans every line and, in a log whose lines carry timestamps, joins each unstamped line
// to the stamped line before it: the console or a mail client wrapped it.
func cleanLines(raw []string) []logLine {
	lines := make([]logLine, 0, len(raw))
	stamped := 0
	for i, r := range raw {
		l := cleanLine(i+1, r)
		if l.stamped {
			stamped++
		}
		lines = append(lines, l)
	}
	if stamped*2 >= len(lines) {
		joined := lines[:0]
		for _, l := range lines {
			if !l.stamped && len(joined) > 0 && joined[len(joined)-1].stamped && strings.TrimSpace(l.text) != "" {
				joined[len(joined)-1].text += l.text
				continue
			}
			joined = append(joined, l)
		}
		lines = joined
	}
	for i := range lines {
		lines[i].text = strings.TrimRight(lines[i].text, " \t")
	}
	return lines
}
