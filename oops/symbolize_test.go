package oops

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const fixtureDir = "../testdata/modules"

// fixtureSymbol reads a function's section, value and size straight from a fixture module's ELF
// symbol table, independently of objectFile.
func fixtureSymbol(t *testing.T, module, name string) (section string, value, size uint64, code []byte) {
	t.Helper()
	path := filepath.Join(fixtureDir, module+".ko")
	f, err := elf.Open(path)
	if err != nil {
		t.Skipf("fixture %s: %v", path, err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	require.NoError(t, err)
	for _, s := range syms {
		if s.Name == name && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			sec := f.Sections[s.Section]
			data, err := sec.Data()
			require.NoError(t, err)
			return sec.Name, s.Value, s.Size, data
		}
	}
	t.Fatalf("%s has no function %s", path, name)
	return
}

func needAddr2line(t *testing.T) {
	if _, err := exec.LookPath("addr2line"); err != nil {
		t.Skip("binutils addr2line not installed")
	}
}

// sourceOf strips directories so results compare with addr2line's by base name.
func sourceOf(lines []SourceLine) []SourceLine {
	var out []SourceLine
	for _, l := range lines {
		out = append(out, SourceLine{Function: l.Function, File: filepath.Base(l.File), Line: l.Line})
	}
	return out
}

func TestSymbolizeByName(t *testing.T) {
	needAddr2line(t)
	sec, value, size, _ := fixtureSymbol(t, "fault_null", "fault_null_init")
	require.Greater(t, size, uint64(0x16))
	log := fmt.Sprintf(`[   42.1] BUG: kernel NULL pointer dereference, address: 0000000000000008
[   42.2] Oops: 0002 [#1] PREEMPT SMP NOPTI
[   42.3] RIP: 0010:fault_null_init+0x11/%#x [fault_null]
[   42.4] Call Trace:
[   42.5]  <TASK>
[   42.6]  fault_null_init+0x11/%#x [fault_null]
[   42.7]  fault_null_init+0x11/0x9999 [fault_null]
[   42.7]  fault_null_init+0x11/%#x [fault_null]
[   42.7]  fault_null_init+0x11/%#x [fault_null]
[   42.8]  do_one_initcall+0x56/0x220
[   42.9]  </TASK>
[   43.0] ---[ end trace 0000000000000000 ]---
`, size, size, size-1, size+0xa)
	reports := ParseString(log)
	require.Len(t, reports, 1)
	r := reports[0]
	s := NewSymbolizer()
	require.NoError(t, s.AddModules(fixtureDir))
	s.Symbolize(r)
	assert.Empty(t, s.Warnings)

	ko := filepath.Join(fixtureDir, "fault_null.ko")
	atIP := addr2line(t, ko, sec, []uint64{value + 0x11})[0]
	atCall := addr2line(t, ko, sec, []uint64{value + 0x10})[0]
	require.NotEmpty(t, atIP)
	sameLines(t, atIP, r.RIP.Source, "RIP looks up the faulting address itself")
	sameLines(t, atCall, r.Trace[0].Source, "a return address looks up the call before it (pc-1)")
	assert.Empty(t, r.Trace[1].Source, "a size far past the module's symbol must not resolve")
	assert.Empty(t, r.Trace[2].Source, "a size smaller than the module's symbol must not resolve")
	sameLines(t, atCall, r.Trace[3].Source, "the kernel prints sizes with the padding up to the next symbol")
	assert.Empty(t, r.Trace[4].Source, "kernel frames need vmlinux")
}

// writeFile writes a temporary source file for a Symbolizer.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func TestSymbolizeAddresses(t *testing.T) {
	needAddr2line(t)
	_, writeValue, writeSize, _ := fixtureSymbol(t, "chardev", "misc_write")
	exitSec, exitValue, _, _ := fixtureSymbol(t, "chardev", "chardev_exit")
	initSec, initValue, initSize, _ := fixtureSymbol(t, "chardev", "chardev_init")
	require.Equal(t, ".exit.text", exitSec)
	require.Equal(t, ".init.text", initSec)
	const base = 0xffffffffc0a00000
	ko := filepath.Join(fixtureDir, "chardev.ko")

	// The core layout /proc/modules' address points at: .text, .text.unlikely, .exit.text in header
	// order, each aligned; worked out here from the section headers.
	f, err := elf.Open(ko)
	require.NoError(t, err)
	var exitOffset, off uint64
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_EXECINSTR == 0 || strings.HasPrefix(s.Name, ".init") {
			continue
		}
		off = (off + max(s.Addralign, 1) - 1) &^ (max(s.Addralign, 1) - 1)
		if s.Name == ".exit.text" {
			exitOffset = off
		}
		off += s.Size
	}
	f.Close()

	writeAddr := base + writeValue + 5
	exitAddr := base + exitOffset + exitValue + 2
	initAddr := uint64(0xffffffffc0b00000) + initValue + 0x20
	log := fmt.Sprintf(`[  1.0] BUG: unable to handle page fault for address: ffffffffc0abc000
[  1.1] Oops: 0000 [#1] PREEMPT SMP NOPTI
[  1.2] RIP: 0010:0x%x
[  1.3] RSI: %016x RDI: ffff888000000000 RBP: 0000000000000000
[  1.4] Call Trace:
[  1.5]  <TASK>
[  1.6]  ? 0x%x
[  1.7]  0x%x
[  1.8]  </TASK>
[  1.9] ---[ end trace 0000000000000000 ]---
`, writeAddr, writeAddr+1, exitAddr, initAddr)

	tests := []struct {
		name   string
		setup  func(s *Symbolizer)
		frames []string // RIP then trace, as symbolString prints them
	}{
		{
			name: "kallsyms",
			setup: func(s *Symbolizer) {
				ks := fmt.Sprintf("%016x t misc_write\t[chardev]\n%016x t misc_read\t[chardev]\n%016x T _text\n",
					base+writeValue, base+writeValue+writeSize, uint64(0xffffffff81000000))
				require.NoError(t, s.LoadKallsyms(writeFile(t, "kallsyms", ks)))
			},
			frames: []string{fmt.Sprintf("misc_write+0x5/%#x [chardev]", writeSize), "0x" + fmt.Sprintf("%x", exitAddr), "0x" + fmt.Sprintf("%x", initAddr)},
		},
		{
			name: "/proc/modules",
			setup: func(s *Symbolizer) {
				require.NoError(t, s.LoadModules(writeFile(t, "modules", fmt.Sprintf("chardev 20480 0 - Live %#x (OE)\n", uint64(base)))))
			},
			frames: []string{fmt.Sprintf("misc_write+0x5/%#x [chardev]", writeSize), "chardev_exit+0x2/0x70 [chardev]", "0x" + fmt.Sprintf("%x", initAddr)},
		},
		{
			name: "context with section addresses",
			setup: func(s *Symbolizer) {
				require.NoError(t, s.UseContext(&Context{Modules: []ContextModule{{Name: "chardev", Path: ko,
					Sections: map[string]uint64{".text": base, ".exit.text": base + exitOffset, ".init.text": 0xffffffffc0b00000}}}}))
			},
			frames: []string{fmt.Sprintf("misc_write+0x5/%#x [chardev]", writeSize), "chardev_exit+0x2/0x70 [chardev]", fmt.Sprintf("chardev_init+0x20/%#x [chardev]", initSize)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ParseString(log)[0]
			s := NewSymbolizer()
			require.NoError(t, s.AddModules(fixtureDir))
			tt.setup(s)
			s.Symbolize(r)
			got := []string{symbolString(*r.RIP)}
			for _, f := range r.Trace {
				got = append(got, symbolString(f))
			}
			assert.Equal(t, tt.frames, got)
			sameLines(t, addr2line(t, ko, ".text", []uint64{writeValue + 5})[0], r.RIP.Source, "RIP")
			assert.Equal(t, "misc_write", r.RegisterSyms["RSI"].Symbol, "RSI points into misc_write")
			if strings.HasPrefix(tt.frames[1], "chardev_exit") {
				sameLines(t, addr2line(t, ko, ".exit.text", []uint64{exitValue + 1})[0], r.Trace[0].Source, "exit frame")
			}
		})
	}
}

func TestDisassemble(t *testing.T) {
	tests := []struct {
		file string
		trap string
		prev string // the instruction just before the trapping one: proves the start was aligned
	}{
		{"bug6.txt", "ud2", "endbr64"},
		{"gpf6.txt", "movq 8(%rdi), %rax", "nopl (%rax)"},
		{"lockup6.txt", "jmp 0x29", "endbr64"}, // a jump to itself; 41 bytes precede it
		{"null4.txt", "movl (%rax), %eax", "movq 8, %rax"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r := parseFile(t, tt.file)[0]
			NewSymbolizer().Symbolize(r)
			var trap int = -1
			for i, in := range r.Disassembly {
				if in.Trapping {
					trap = i
				}
			}
			require.Greater(t, trap, 0, "no trapping instruction in %v", r.Disassembly)
			assert.Equal(t, tt.trap, r.Disassembly[trap].Text)
			assert.Equal(t, tt.prev, r.Disassembly[trap-1].Text)
			if r.RIP.HasAddress {
				assert.Equal(t, r.RIP.Address, r.Disassembly[trap].Address)
			}
		})
	}
}

// TestKemuOops decodes an oops that kemu's own machine printed (kemu insmod fault_null.ko).
func TestKemuOops(t *testing.T) {
	needAddr2line(t)
	sec, value, _, _ := fixtureSymbol(t, "fault_null", "fault_null_init")
	r := parseFile(t, "kemu_null.txt")[0]
	require.NotNil(t, r.RIP)
	require.Equal(t, "fault_null_init", r.RIP.Symbol)
	s := NewSymbolizer()
	require.NoError(t, s.AddModules(fixtureDir))
	s.Symbolize(r)
	want := addr2line(t, filepath.Join(fixtureDir, "fault_null.ko"), sec, []uint64{value + r.RIP.Offset})[0]
	require.NotEmpty(t, want)
	sameLines(t, want, r.RIP.Source, "kemu's fault_null oops")
	assert.Equal(t, []Module{{Name: "fault_null", Flags: "OE+"}}, r.Modules)
	assert.False(t, r.Truncated)
}
