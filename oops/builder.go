package oops

import (
	"regexp"
	"strings"
)

// builder fills one Report from the lines that belong to it.
type builder struct {
	r       *Report
	idle    int      // lines in a row that said nothing about the report
	ended   bool     // "---[ end trace" (or KASAN's closing rule) was seen
	stack   *[]Frame // where call trace frames go; nil outside a trace
	context []string // open stack sections ("TASK", "IRQ"...), innermost last
	code    bool     // the last line was Code:, so a line of bare hex bytes continues it
	sawCode bool     // a Code: line was seen, readable or not; later ones are user-mode or repeats
}

func newBuilder(h header, l logLine, text string) *builder {
	r := &Report{Title: text, Kind: h.kind, FirstLine: l.num, LastLine: l.num, Lines: []string{l.text}}
	if h.oopsLine {
		r.Oops = text
	}
	if h.fields != nil {
		h.fields(r, h.m)
	}
	return &builder{r: r}
}

// continues reports whether a header line is the next line of the open report rather than a new one:
// "Oops: 0002 [#1]" follows "BUG: unable to handle page fault", "invalid opcode" follows "kernel BUG at",
// and "Kernel panic - not syncing" follows whatever oops caused it.
func (b *builder) continues(h header) bool {
	switch {
	case h.kind == KindPanic:
		return b.r.Kind != KindPanic && b.r.Panic == ""
	case h.oopsLine:
		// Only a fault header or "kernel BUG at" is followed by its Oops line, and before any trace.
		r := b.r
		leads := r.Kind == KindNullDeref || r.Kind == KindPageFault || r.Kind == KindBug && r.BugAt != ""
		return leads && !b.ended && r.Oops == "" && len(r.Trace) == 0 && b.stack == nil
	}
	return false
}

// addHeader takes a header line that continues the report (see continues).
func (b *builder) addHeader(h header, l logLine, text string) {
	r := b.r
	if h.oopsLine {
		r.Oops = text
	}
	if h.kind == KindPanic {
		r.Panic = h.m[1]
		b.ended = true
	}
	b.idle = 0
	r.LastLine = l.num
	r.Lines = append(r.Lines, l.text)
}

// close finishes the report; atEOF tells that the log ended while it was open.
func (b *builder) close(atEOF bool) *Report {
	r := b.r
	if !b.ended {
		// Reports that end with "---[ end trace": all but lockups, panics and "BUG: <something>" warnings.
		hasEnd := r.Kind != KindSoftLockup && r.Kind != KindPanic && r.Kind != KindHungTask && r.Kind != KindRCUStall &&
			(r.Kind != KindBug || r.BugAt != "")
		switch {
		case len(b.context) > 0 && b.stack != nil:
			r.Truncated = true // inside <TASK> or <IRQ>
		case r.RIP == nil && len(r.Trace) == 0 && r.Kind != KindPanic:
			r.Truncated = true
		case atEOF && b.stack != nil && hasEnd:
			r.Truncated = true
		}
	}
	return r
}

var (
	reCPU       = regexp.MustCompile(`^CPU: (\d+) (?:UID: \d+ )?PID: (\d+) Comm: (.*?) (?:Not tainted|Tainted: ([A-Z ]*?)) +(\d\S*)(?: (.*))?$`)
	reHardware  = regexp.MustCompile(`^Hardware name: (.*)`)
	reRIP4      = regexp.MustCompile(`^R?IP: (?:([0-9a-f]{4}):)?\[<([0-9a-f]+)>\]\s+(?:\[<[0-9a-f]+>\]\s+)?(.*)$`)
	reRIP       = regexp.MustCompile(`^R?IP: (?:([0-9a-f]{4}):)?(.*)$`)
	reCode      = regexp.MustCompile(`^Code: ?(.*)$`)
	reRegLine   = regexp.MustCompile(`^(?:RSP|RAX|RBX|RCX|RDX|RSI|RBP|R\d\d|FS|CS|CR\d|DR\d|PKRU|ORIG_RAX|EFLAGS):`)
	reRegister  = regexp.MustCompile(`\b([A-Za-z][A-Za-z0-9_]{1,7}):\s*(?:([0-9a-f]{4}):)?([0-9a-f]{4,16})\b`)
	reModules   = regexp.MustCompile(`^Modules linked in:(.*)$`)
	reLastUnl   = regexp.MustCompile(`\[last unloaded: ([^\]\s(]+)[^\]]*\]`)
	reModule    = regexp.MustCompile(`^([\w-]+)(?:\(([^)]*)\))?$`)
	reSection   = regexp.MustCompile(`^<(/?)([A-Z#]+)>$`)
	reAuxStack  = regexp.MustCompile(`^(?:Allocated by task \d+|Freed by task \d+|Last potentially related work creation|Second to last potentially related work creation|(?:Last|Second to last) potentially related work creation):$`)
	reKASANRead = regexp.MustCompile(`^(?:Read|Write) of size \d+ at addr ([0-9a-f]+) by task (.*)/(\d+)`)
	reKASANRule = regexp.MustCompile(`^={20,}$`)
	reHexBytes  = regexp.MustCompile(`^(?:[<(]?[0-9a-f]{2}[>)]?(?: |$))+$`)
)

// add takes one line of the report's caller and reports whether it belonged to the report.
func (b *builder) add(l logLine, text string) bool {
	r := b.r
	if b.ended {
		return false // the repeated register block after "end trace" adds nothing
	}
	code := b.code
	b.code = false
	if ok := b.addLine(text, code); !ok {
		return false
	}
	b.idle = 0
	r.LastLine = l.num
	r.Lines = append(r.Lines, l.text)
	return true
}

func (b *builder) addLine(text string, codeOpen bool) bool {
	r := b.r
	if b.stack != nil {
		if m := reSection.FindStringSubmatch(text); m != nil {
			if m[1] == "" {
				b.context = append(b.context, m[2])
			} else if len(b.context) > 0 {
				b.context = b.context[:len(b.context)-1]
			}
			return true
		}
		if f, ok := parseFrame(text); ok {
			if len(b.context) > 0 {
				f.Context = b.context[len(b.context)-1]
			}
			*b.stack = append(*b.stack, f)
			return true
		}
	}
	if strings.HasPrefix(text, "---[ end trace") || strings.HasPrefix(text, "---[ end Kernel panic") {
		b.ended, b.stack = true, nil
		return true
	}
	if r.Kind == KindKASAN && reKASANRule.MatchString(text) && len(r.Lines) > 1 {
		b.ended, b.stack = true, nil
		return true
	}
	if codeOpen && r.Code != nil && reHexBytes.MatchString(text) {
		more := parseCode(text)
		if more != nil {
			if r.Code.Trap < 0 && more.Trap >= 0 {
				r.Code.Trap = len(r.Code.Bytes) + more.Trap
			}
			r.Code.Bytes = append(r.Code.Bytes, more.Bytes...)
			b.code = true
			return true
		}
	}
	switch {
	case text == "Call Trace:":
		b.startStack(&r.Trace)
	case reAuxStack.MatchString(text):
		r.Stacks = append(r.Stacks, Stack{Title: strings.TrimSuffix(text, ":")})
		b.startStack(&r.Stacks[len(r.Stacks)-1].Frames)
	case strings.HasPrefix(text, "#PF: ") || strings.HasPrefix(text, "PGD ") || strings.HasPrefix(text, "Stack:"):
		// fault details and raw stack words: part of the report, nothing to keep
	case strings.HasPrefix(text, "KASAN: "):
		// "KASAN: null-ptr-deref in range [...]" under a general protection fault
	default:
		return b.addField(text)
	}
	return true
}

func (b *builder) startStack(s *[]Frame) {
	b.stack, b.context = s, nil
}

// addField reads the one-line fields of a report.
func (b *builder) addField(text string) bool {
	r := b.r
	if m := reCPU.FindStringSubmatch(text); m != nil {
		if r.PID == nil || r.Version == "" {
			r.CPU, r.PID, r.Comm = atoiPtr(m[1]), atoiPtr(m[2]), m[3]
			r.Tainted = strings.Contains(text, "Tainted: ")
			r.Taint = strings.TrimRight(m[4], " ")
			r.Version, r.Build = m[5], m[6]
		}
		return true
	}
	if m := reHardware.FindStringSubmatch(text); m != nil {
		if r.Hardware == "" {
			r.Hardware = m[1]
		}
		return true
	}
	if m := reKASANRead.FindStringSubmatch(text); m != nil {
		setFaultAddress(r, m)
		r.Comm, r.PID = m[2], atoiPtr(m[3])
		return true
	}
	if strings.HasPrefix(text, "RIP: ") || strings.HasPrefix(text, "IP: ") {
		b.addRIP(text)
		return true
	}
	if m := reCode.FindStringSubmatch(text); m != nil {
		if !b.sawCode {
			r.Code = parseCode(m[1])
			b.code, b.sawCode = r.Code != nil, true
		}
		return true
	}
	if reRegLine.MatchString(text) {
		if b.stack != nil {
			return true // user-mode registers at the bottom of a task's stack, not the crash's
		}
		if r.Registers == nil {
			r.Registers = map[string]uint64{}
		}
		for _, m := range reRegister.FindAllStringSubmatch(text, -1) {
			name := strings.ToUpper(m[1])
			if _, seen := r.Registers[name]; seen {
				continue
			}
			if v, ok := parseHex(m[3]); ok {
				r.Registers[name] = v
			}
		}
		return true
	}
	if m := reModules.FindStringSubmatch(text); m != nil {
		b.addModules(m[1])
		b.stack = nil
		return true
	}
	return false
}

// addRIP reads "RIP: 0010:sym+off/size [mod]" (5.x, 6.x), "RIP: 0010:[<addr>]  [<addr>] sym+off/size"
// (4.x register block) and "IP: [<addr>] sym+off/size" (4.x page fault header).
func (b *builder) addRIP(text string) {
	r := b.r
	var cs, rest string
	var addr uint64
	var hasAddr bool
	if m := reRIP4.FindStringSubmatch(text); m != nil {
		cs, rest = m[1], m[3]
		addr, hasAddr = parseHex(m[2])
	} else if m := reRIP.FindStringSubmatch(text); m != nil {
		cs, rest = m[1], m[2]
	}
	if cs == "0033" || cs == "0023" {
		return // user-mode registers printed at the bottom of a task's stack
	}
	f, ok := parseFrame(rest)
	if !ok && !hasAddr {
		return
	}
	if hasAddr {
		f.Address, f.HasAddress = addr, true
	}
	f.IsIP, f.Unreliable = true, false
	switch {
	case r.RIP == nil:
		r.RIP = &f
	case !r.RIP.HasAddress && f.HasAddress:
		r.RIP.Address, r.RIP.HasAddress = f.Address, true
	}
}

func (b *builder) addModules(list string) {
	r := b.r
	if m := reLastUnl.FindStringSubmatch(list); m != nil {
		r.LastUnloaded = m[1]
		list = reLastUnl.ReplaceAllString(list, "")
	}
	for _, tok := range strings.Fields(list) {
		if m := reModule.FindStringSubmatch(tok); m != nil {
			r.Modules = append(r.Modules, Module{Name: m[1], Flags: m[2]})
		}
	}
}
