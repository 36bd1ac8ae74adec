package oops

import (
	"regexp"
	"strings"
)

var (
	// "[<ffffffffc0a0001c>] ? sym+0x1c/0x30 [mod]" (4.x) or "? sym+0x1c/0x30 [mod 0123abcd]" (5.x, 6.x,
	// the hex after the module name being a build id); the symbol may carry ".cold", ".isra.0"...
	reSymFrame = regexp.MustCompile(`^(?:\[<([0-9a-f]+)>\]\s*)?(\? )?([A-Za-z_.$][\w.$]*)\+0x([0-9a-f]+)/0x([0-9a-f]+)(?:\s+\[([\w-]+)(?:\s+[0-9a-f]+)?\])?`)
	// "? 0xffffffffc0a0001c" or "[<ffffffffc0a0001c>] 0xffffffffc0a0001c": an address no symbol covers.
	reAddrFrame = regexp.MustCompile(`^(?:\[<([0-9a-f]+)>\]\s*)?(\? )?(?:0x([0-9a-f]{1,16})|\[<([0-9a-f]+)>\])(?:\s|$)`)
)

// parseFrame reads one symbol reference as %pS/%pB print it, with the optional 4.x "[<address>]" before it.
func parseFrame(s string) (Frame, bool) {
	s = strings.TrimSpace(s)
	if m := reSymFrame.FindStringSubmatch(s); m != nil {
		f := Frame{Symbol: m[3], Module: m[6], Unreliable: m[2] != ""}
		f.Offset, _ = parseHex(m[4])
		f.Size, _ = parseHex(m[5])
		if m[1] != "" {
			f.Address, f.HasAddress = parseHex(m[1])
		}
		return f, true
	}
	if m := reAddrFrame.FindStringSubmatch(s); m != nil {
		f := Frame{Unreliable: m[2] != ""}
		for _, a := range []string{m[3], m[4], m[1]} {
			if a != "" {
				f.Address, f.HasAddress = parseHex(a)
				break
			}
		}
		return f, f.HasAddress
	}
	return Frame{}, false
}

// parseCode reads the bytes of a Code: line, "<xx>" (or "(xx)") marking the trapping one. It returns
// nil for "Unable to access opcode bytes" and other lines without bytes, and stops at the first token
// that is not a byte (the rest of a damaged line).
func parseCode(s string) *Code {
	c := &Code{Trap: -1}
	for _, tok := range strings.Fields(s) {
		marked := len(tok) == 4 && (tok[0] == '<' && tok[3] == '>' || tok[0] == '(' && tok[3] == ')')
		if marked {
			tok = tok[1:3]
		}
		if len(tok) != 2 {
			break
		}
		v, ok := parseHex(tok)
		if !ok {
			break
		}
		if marked && c.Trap < 0 {
			c.Trap = len(c.Bytes)
		}
		c.Bytes = append(c.Bytes, byte(v))
	}
	if len(c.Bytes) == 0 {
		return nil
	}
	return c
}
