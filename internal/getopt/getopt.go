// Package getopt parses command lines the way glibc's getopt_long does, with its error messages, so
// that commands reproducing kmod's tools (depmod; modinfo may move here) accept, reject and complain
// about exactly the same arguments.
package getopt

import (
	"fmt"
	"io"
	"strings"
)

// Option is one option of the command.
type Option struct {
	Long   string // long name, "" when there is none
	Short  byte   // short letter, 0 when there is none
	HasArg bool   // takes a required argument
}

// Take receives each option in command-line order; value is its argument, long tells how it was
// spelled. Returning true stops parsing (help, version).
type Take func(o *Option, value string, long bool) (stop bool)

// Parse walks args (without the program name) as getopt_long in its default permuting mode:
// operands may stand between options, "--" ends the options, short options cluster ("-vn",
// "-bDIR"), long options take "=value" or the next argument and may be abbreviated to a prefix that
// names one option (or several entries that are the same option). On a usage error it prints
// glibc's message, prefixed by prog, and returns ok false.
func Parse(prog string, opts []Option, args []string, stderr io.Writer, take Take) (operands []string, stopped, ok bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(operands, args[i+1:]...), false, true
		case strings.HasPrefix(a, "--"):
			name, value, hasValue := strings.Cut(a[2:], "=")
			o, msg := lookupLong(opts, name, a[2:])
			if o == nil {
				fmt.Fprintf(stderr, "%s: %s\n", prog, msg)
				return nil, false, false
			}
			switch {
			case o.HasArg && !hasValue:
				if i+1 == len(args) {
					fmt.Fprintf(stderr, "%s: option '--%s' requires an argument\n", prog, o.Long)
					return nil, false, false
				}
				i++
				value = args[i]
			case !o.HasArg && hasValue:
				fmt.Fprintf(stderr, "%s: option '--%s' doesn't allow an argument\n", prog, o.Long)
				return nil, false, false
			}
			if take(o, value, true) {
				return operands, true, true
			}
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				o := lookupShort(opts, a[j])
				if o == nil {
					fmt.Fprintf(stderr, "%s: invalid option -- '%c'\n", prog, a[j])
					return nil, false, false
				}
				value := ""
				if o.HasArg {
					switch {
					case j+1 < len(a):
						value = a[j+1:]
					case i+1 < len(args):
						i++
						value = args[i]
					default:
						fmt.Fprintf(stderr, "%s: option requires an argument -- '%c'\n", prog, a[j])
						return nil, false, false
					}
					j = len(a)
				}
				if take(o, value, false) {
					return operands, true, true
				}
			}
		default:
			operands = append(operands, a)
		}
	}
	return operands, false, true
}

func lookupShort(opts []Option, c byte) *Option {
	for i := range opts {
		if opts[i].Short == c && c != 0 {
			return &opts[i]
		}
	}
	return nil
}

// lookupLong finds a long option by exact name or prefix; otherwise it returns glibc's complaint,
// which quotes the argument as given ("=value" included). Entries sharing a prefix that are the
// same option (same letter and argument) are not ambiguous.
func lookupLong(opts []Option, name, given string) (*Option, string) {
	var matches []*Option
	for i := range opts {
		switch {
		case opts[i].Long == "":
		case opts[i].Long == name:
			return &opts[i], ""
		case strings.HasPrefix(opts[i].Long, name):
			matches = append(matches, &opts[i])
		}
	}
	if len(matches) == 0 {
		return nil, fmt.Sprintf("unrecognized option '--%s'", given)
	}
	for _, m := range matches[1:] {
		if m.Short != matches[0].Short || m.HasArg != matches[0].HasArg || m.Short == 0 {
			msg := fmt.Sprintf("option '--%s' is ambiguous; possibilities:", given)
			for _, m := range matches {
				msg += fmt.Sprintf(" '--%s'", m.Long)
			}
			return nil, msg
		}
	}
	return matches[0], ""
}
