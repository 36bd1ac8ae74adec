package oops

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
)

// registerOrder is the order the kernel prints registers in.
var registerOrder = []string{"RSP", "EFLAGS", "RAX", "RBX", "RCX", "RDX", "RSI", "RDI", "RBP", "R08", "R09", "R10",
	"R11", "R12", "R13", "R14", "R15", "ORIG_RAX", "FS", "GS", "KNLGS", "CS", "DS", "ES", "CR0", "CR2", "CR3", "CR4",
	"DR0", "DR1", "DR2", "DR3", "DR6", "DR7", "PKRU"}

// Format writes reports as annotated text: every frame as "sym+off/size [mod]" with its source lines
// (inlined functions first, one per line), registers with the symbols they point at, and the Code:
// bytes as an assembly listing with the trapping instruction marked.
func Format(w io.Writer, reports []*Report) error {
	var b strings.Builder
	for i, r := range reports {
		if i > 0 {
			b.WriteString("\n")
		}
		formatReport(&b, r)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func formatReport(b *strings.Builder, r *Report) {
	fmt.Fprintf(b, "=== %s\n", r.Title)
	fmt.Fprintf(b, "    %s, log lines %d-%d", r.Kind, r.FirstLine, r.LastLine)
	if r.Truncated {
		b.WriteString(", TRUNCATED (the log ends inside the report)")
	}
	b.WriteString("\n")
	var who []string
	if r.CPU != nil {
		who = append(who, fmt.Sprintf("CPU %d", *r.CPU))
	}
	if r.PID != nil {
		who = append(who, fmt.Sprintf("PID %d", *r.PID))
	}
	if r.Comm != "" {
		who = append(who, "Comm "+r.Comm)
	}
	if r.Version != "" {
		who = append(who, "kernel "+r.Version)
	}
	if r.Tainted {
		who = append(who, fmt.Sprintf("tainted %q", r.Taint))
	}
	if len(who) > 0 {
		fmt.Fprintf(b, "    %s\n", strings.Join(who, ", "))
	}
	if r.Oops != "" && r.Oops != r.Title {
		fmt.Fprintf(b, "    %s\n", r.Oops)
	}
	for _, kv := range [][2]string{{"at", r.BugAt}, {"panic", r.Panic}, {"hardware", r.Hardware}} {
		if kv[1] != "" {
			fmt.Fprintf(b, "    %s: %s\n", kv[0], kv[1])
		}
	}
	if r.FaultAddress != nil {
		fmt.Fprintf(b, "    fault address: %#x\n", *r.FaultAddress)
	}
	if r.RIP != nil {
		b.WriteString("\n>>RIP: ")
		formatFrame(b, *r.RIP, "   <=====")
	}
	formatRegisters(b, r)
	formatCode(b, r)
	if len(r.Trace) > 0 {
		b.WriteString("\nCall Trace:\n")
		formatFrames(b, r.Trace)
	}
	for _, s := range r.Stacks {
		fmt.Fprintf(b, "\n%s:\n", s.Title)
		formatFrames(b, s.Frames)
	}
	if len(r.Modules) > 0 {
		b.WriteString("\nModules linked in:")
		for _, m := range r.Modules {
			b.WriteString(" " + m.Name)
			if m.Flags != "" {
				b.WriteString("(" + m.Flags + ")")
			}
		}
		if r.LastUnloaded != "" {
			b.WriteString(" [last unloaded: " + r.LastUnloaded + "]")
		}
		b.WriteString("\n")
	}
}

func formatFrames(b *strings.Builder, frames []Frame) {
	context := ""
	for _, f := range frames {
		if f.Context != context {
			if context != "" {
				fmt.Fprintf(b, "  </%s>\n", context)
			}
			if f.Context != "" {
				fmt.Fprintf(b, "  <%s>\n", f.Context)
			}
			context = f.Context
		}
		b.WriteString("  ")
		formatFrame(b, f, "")
	}
	if context != "" {
		fmt.Fprintf(b, "  </%s>\n", context)
	}
}

// formatFrame writes "[address] ? sym+off/size [mod]" and then one line per source location.
func formatFrame(b *strings.Builder, f Frame, mark string) {
	if f.HasAddress {
		fmt.Fprintf(b, "%016x ", f.Address)
	}
	if f.Unreliable {
		b.WriteString("? ")
	}
	b.WriteString(symbolString(f))
	b.WriteString(mark)
	b.WriteString("\n")
	for _, s := range f.Source {
		how := ""
		if s.Inlined {
			how = " (inlined)"
		}
		fmt.Fprintf(b, "        %s%s at %s:%d\n", s.Function, how, s.File, s.Line)
	}
}

// symbolString prints a frame's symbol as %pS does, or its address when no symbol is known.
func symbolString(f Frame) string {
	if f.Symbol == "" {
		if f.HasAddress {
			return fmt.Sprintf("%#x", f.Address)
		}
		return "??"
	}
	s := fmt.Sprintf("%s+%#x", f.Symbol, f.Offset)
	if f.Size != 0 { // unknown for the last symbol of a kallsyms owner
		s += fmt.Sprintf("/%#x", f.Size)
	}
	if f.Module != "" {
		s += " [" + f.Module + "]"
	}
	return s
}

func formatRegisters(b *strings.Builder, r *Report) {
	if len(r.Registers) == 0 {
		return
	}
	names := make([]string, 0, len(r.Registers))
	seen := map[string]bool{}
	for _, n := range registerOrder {
		if _, ok := r.Registers[n]; ok {
			names, seen[n] = append(names, n), true
		}
	}
	var rest []string
	for n := range r.Registers {
		if !seen[n] {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	names = append(names, rest...)
	b.WriteString("\nRegisters:\n")
	for i, n := range names {
		sep := "  "
		if i%3 == 2 || i == len(names)-1 {
			sep = "\n"
		}
		fmt.Fprintf(b, "  %-6s %016x%s", n+":", r.Registers[n], sep)
	}
	for _, n := range names {
		if f, ok := r.RegisterSyms[n]; ok {
			fmt.Fprintf(b, "  %-6s %016x = %s\n", n+":", r.Registers[n], symbolString(f))
		}
	}
}

func formatCode(b *strings.Builder, r *Report) {
	if len(r.Disassembly) > 0 {
		b.WriteString("\nCode:\n")
		width := 0
		for _, in := range r.Disassembly {
			width = max(width, len(codeLabel(r, in)))
		}
		for _, in := range r.Disassembly {
			line := fmt.Sprintf("  %-*s  %-24s %s", width+1, codeLabel(r, in)+":", fmt.Sprintf("% x", in.Bytes), in.Text)
			if in.Source != nil {
				line = fmt.Sprintf("%-72s %s:%d", line, filepath.Base(in.Source.File), in.Source.Line)
			}
			if in.Trapping {
				line += "   <===== trapping instruction"
			}
			b.WriteString(line + "\n")
		}
		return
	}
	if r.Code != nil {
		fmt.Fprintf(b, "\nCode: % x (trapping byte at %d)\n", r.Code.Bytes, r.Code.Trap)
	}
}

// codeLabel names an instruction of the Code: listing: as an offset in the RIP's function when the RIP
// names one (what a reader looks for in the source), else by address, else by offset from the trap.
func codeLabel(r *Report, in Instruction) string {
	if r.RIP != nil && r.RIP.Symbol != "" {
		off := int64(r.RIP.Offset) + int64(in.Offset)
		if off < 0 {
			return fmt.Sprintf("%s-%#x", r.RIP.Symbol, -off)
		}
		return fmt.Sprintf("%s+%#x", r.RIP.Symbol, off)
	}
	if r.RIP != nil && r.RIP.HasAddress {
		return fmt.Sprintf("%016x", in.Address)
	}
	return fmt.Sprintf("%+d", in.Offset)
}
