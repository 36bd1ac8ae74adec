package machine

import (
	"encoding/binary"
	"fmt"

	"github.com/knightsc/gapstone"

	"kemu/loader"
)

// Load-time text patching: what the kernel rewrites in every module after relocation and before
// init runs, decided by the machine's capability bits (cpufeatures*.go), in the kernel's order:
//   - retpolines (apply_retpolines, .retpoline_sites): `call/jmp/jcc __x86_indirect_thunk_<reg>`
//     stays when X86_FEATURE_RETPOLINE is set without RETPOLINE_LFENCE; otherwise it becomes
//     `[lfence;] call/jmp *%reg` padded with NOPs (a Jcc becomes an inverted short Jcc over it);
//   - return thunks (apply_returns, .return_sites): without X86_FEATURE_RETHUNK every
//     `jmp __x86_return_thunk` becomes `ret; int3...`;
//   - alternatives (apply_alternatives, .altinstructions): each site whose feature is present (or,
//     for ALT_NOT, absent) gets its replacement, with a replaced call's rel32 re-aimed, a replaced
//     jmp recomputed (recompute_jump), the rest of the site padded with NOPs; runs of one-byte NOPs
//     of every site are then merged into long NOPs (optimize_nops);
//   - ftrace (ftrace_module_init, __mcount_loc): every `call __fentry__` becomes a 5-byte NOP, as in
//     every 6.1 oops Code: line.
// The rules follow arch/x86/kernel/alternative.c of 6.1. Besides matching the kernel's bytes,
// this keeps the hottest call sites of module code off the kernel's thunk pages.

// Opcodes the patcher reads and writes.
const (
	opCall    = 0xe8
	opJmp32   = 0xe9
	opJmp8    = 0xeb
	opNop1    = 0x90
	opRet     = 0xc3
	altNotBit = 1 << 15 // ALTINSTR_FLAG_INV: patch when the feature is absent
	altSize   = 12      // struct alt_instr: instr_offset, repl_offset (s32), cpuid (u16), instrlen, replacementlen (u8)
	maxInsn   = 15      // MAX_INSN_SIZE
)

// x86NOPs are the kernel's optimal NOPs for x86-64 (x86_nops[], BYTES_NOP1..8), by length.
var x86NOPs = [...][]byte{
	1: {0x90},
	2: {0x66, 0x90},
	3: {0x0f, 0x1f, 0x00},
	4: {0x0f, 0x1f, 0x40, 0x00},
	5: {0x0f, 0x1f, 0x44, 0x00, 0x00},
	6: {0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00},
	7: {0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00},
	8: {0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00},
}

// nop5 is what ftrace leaves at every `call __fentry__`.
var nop5 = x86NOPs[5]

// addNOPs fills b with the longest NOPs that fit (add_nops).
func addNOPs(b []byte) {
	for len(b) > 0 {
		n := min(len(b), len(x86NOPs)-1)
		copy(b, x86NOPs[n])
		b = b[n:]
	}
}

// textMemory is where the patcher reads and writes module text: the machine's memory, or a test's.
type textMemory interface {
	ReadAt(b []byte, addr uint64) error
	// poke writes patched bytes and makes the CPU forget translations of them (text_poke_early).
	poke(addr uint64, b []byte) error
}

// textPatcher applies the kernel's patching rules for one CPU.
type textPatcher struct {
	mem         textMemory
	features    *FeatureSet
	thunks      map[uint64]int   // __x86_indirect_thunk_<reg> address -> register number
	returnThunk uint64           // __x86_return_thunk, 0 if the kernel has none
	fentry      uint64           // __fentry__, 0 if the kernel has none
	disasm      *gapstone.Engine // for instruction lengths; nil until first needed
}

// retpolineRegs are the registers in x86 encoding order, as __x86_indirect_thunk_array lays out
// their thunks.
var retpolineRegs = []string{"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
	"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"}

// poke implements textMemory for the machine.
func (m *Machine) poke(addr uint64, b []byte) error {
	if err := m.mem.WriteVirt(addr, b); err != nil {
		return err
	}
	return m.dropTranslations(addr, addr+uint64(len(b)))
}

// patchModuleText applies the load-time patches to an installed module.
func (m *Machine) patchModuleText(mod *loader.Module) error {
	p := m.newTextPatcher(m)
	defer p.close()
	secs := map[string]loader.Section{}
	for _, s := range mod.Sections {
		secs[s.Name] = s
	}
	steps := []struct {
		section string
		apply   func(table []byte, addr uint64) error
	}{
		{".retpoline_sites", p.applyRetpolines},
		{".return_sites", p.applyReturns},
		{".altinstructions", p.applyAlternatives},
		{"__mcount_loc", p.applyFtraceNOPs},
	}
	for _, step := range steps {
		sec, ok := secs[step.section]
		if !ok || sec.Size == 0 {
			continue
		}
		table, err := m.Read(sec.Addr, sec.Size)
		if err != nil {
			return fmt.Errorf("patch %s: read %s: %w", mod.Name, step.section, err)
		}
		if err := step.apply(table, sec.Addr); err != nil {
			return fmt.Errorf("patch %s %s: %w", mod.Name, step.section, err)
		}
	}
	return nil
}

// newTextPatcher is a patcher for this machine's CPU and kernel over mem.
func (m *Machine) newTextPatcher(mem textMemory) *textPatcher {
	p := &textPatcher{mem: mem, features: &m.cpuInfo.Features, thunks: map[uint64]int{}}
	for i, r := range retpolineRegs {
		if s, ok := m.prof.Lookup("__x86_indirect_thunk_" + r); ok {
			p.thunks[s.Addr] = i
		}
	}
	if s, ok := m.prof.Lookup("__x86_return_thunk"); ok {
		p.returnThunk = s.Addr
	}
	if s, ok := m.prof.Lookup("__fentry__"); ok {
		p.fentry = s.Addr
	}
	return p
}

// length decodes one instruction's length with the disassembler, opened on first use: most
// modules' sites are branches the patcher decodes itself.
func (p *textPatcher) length(code []byte, addr uint64) (int, bool) {
	if p.disasm == nil {
		engine, err := gapstone.New(gapstone.CS_ARCH_X86, gapstone.CS_MODE_64)
		if err != nil {
			return 0, false
		}
		p.disasm = &engine
	}
	got, err := p.disasm.Disasm(code, addr, 1)
	if err != nil || len(got) == 0 || got[0].Size == 0 {
		return 0, false
	}
	return int(got[0].Size), true
}

func (p *textPatcher) close() {
	if p.disasm != nil {
		_ = p.disasm.Close()
	}
}

// insn is what the patcher needs of one decoded instruction.
type insn struct {
	length int
	op     [2]byte // opcode bytes after any legacy prefixes
	imm    int64   // rel8/rel32 of a branch
	branch bool    // a direct call, jmp or jcc with a relative target
}

// legacyPrefix reports the prefixes the kernel's decoder skips before the opcode (a CS prefix is
// what -mindirect-branch-cs-prefix puts before thunk calls through r8-r15).
func legacyPrefix(b byte) bool {
	switch b {
	case 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3:
		return true
	}
	return false
}

// decode decodes the instruction at the start of code (insn_decode_kernel): relative branches by
// hand, anything else by length through the disassembler. ok is false for undecodable bytes.
func (p *textPatcher) decode(code []byte, addr uint64) (in insn, ok bool) {
	i := 0
	for i < len(code) && i < 4 && legacyPrefix(code[i]) {
		i++
	}
	if i < len(code) {
		rest := code[i:]
		switch {
		case (rest[0] == opCall || rest[0] == opJmp32) && len(rest) >= 5:
			return insn{length: i + 5, op: [2]byte{rest[0]}, imm: int64(int32(binary.LittleEndian.Uint32(rest[1:]))), branch: true}, true
		case rest[0] == opJmp8 && len(rest) >= 2:
			return insn{length: i + 2, op: [2]byte{rest[0]}, imm: int64(int8(rest[1])), branch: true}, true
		case rest[0] == 0x0f && len(rest) >= 6 && rest[1]&0xf0 == 0x80:
			return insn{length: i + 6, op: [2]byte{rest[0], rest[1]}, imm: int64(int32(binary.LittleEndian.Uint32(rest[2:]))), branch: true}, true
		}
	}
	n, ok := p.length(code, addr)
	if !ok {
		return insn{}, false
	}
	in = insn{length: n}
	if i < len(code) {
		in.op[0] = code[i]
		if i+1 < len(code) {
			in.op[1] = code[i+1]
		}
	}
	return in, true
}

// readInsn reads and decodes the instruction at addr.
func (p *textPatcher) readInsn(addr uint64) (insn, []byte, bool) {
	var buf [maxInsn]byte
	if p.mem.ReadAt(buf[:], addr) != nil {
		// Near the end of a mapping: retry with what a short instruction needs.
		if p.mem.ReadAt(buf[:6], addr) != nil {
			return insn{}, nil, false
		}
	}
	in, ok := p.decode(buf[:], addr)
	return in, buf[:], ok
}

// sites yields the address each 32-bit self-relative entry of a site table points at.
func sites(table []byte, addr uint64, yield func(site uint64) error) error {
	for i := 0; i+4 <= len(table); i += 4 {
		rel := int64(int32(binary.LittleEndian.Uint32(table[i:])))
		if err := yield(addr + uint64(i) + uint64(rel)); err != nil {
			return err
		}
	}
	return nil
}

// applyRetpolines is apply_retpolines: each site must be a call, jmp or jcc to a register thunk;
// other sites are skipped (the kernel WARNs).
func (p *textPatcher) applyRetpolines(table []byte, addr uint64) error {
	return sites(table, addr, func(site uint64) error {
		in, _, ok := p.readInsn(site)
		if !ok || !in.branch || in.op[0] == opJmp8 {
			return nil
		}
		b, ok := p.patchRetpoline(site, in)
		if !ok || len(b) != in.length {
			return nil
		}
		p.optimizeNOPs(b, site)
		return p.mem.poke(site, b)
	})
}

// patchRetpoline is patch_retpoline: the bytes replacing a thunk call, or ok false to leave it.
func (p *textPatcher) patchRetpoline(site uint64, in insn) (b []byte, ok bool) {
	reg, known := p.thunks[site+uint64(in.length)+uint64(in.imm)]
	if !known || reg == 4 { // not a thunk; or *%rsp, which the kernel BUGs on
		return nil, false
	}
	if p.features.Has(featRetpoline) && !p.features.Has(featRetpolineLfence) {
		return nil, false
	}
	op := in.op[0]
	if op == 0x0f { // Jcc.d32 thunk -> Jncc.d8 over [lfence;] jmp *%reg
		b = append(b, 0x70+(in.op[1]&0xf^1), byte(in.length-2))
		op = opJmp32
	}
	if p.features.Has(featRetpolineLfence) {
		b = append(b, 0x0f, 0xae, 0xe8)
	}
	modrm := byte(0x10) // call r/m: reg field 2
	if op == opJmp32 {
		modrm = 0x20 // jmp r/m: reg field 4
	} else if op != opCall {
		return nil, false
	}
	if reg >= 8 {
		b = append(b, 0x41) // REX.B
		reg -= 8
	}
	b = append(b, 0xff, modrm|0xc0|byte(reg))
	if op == opJmp32 && len(b) < in.length {
		b = append(b, 0xcc) // int3 after an indirect jmp (straight-line speculation)
	}
	for len(b) < in.length {
		b = append(b, opNop1)
	}
	return b, true
}

// applyReturns is apply_returns: every `jmp __x86_return_thunk` becomes ret and int3 padding
// unless X86_FEATURE_RETHUNK keeps the thunk.
func (p *textPatcher) applyReturns(table []byte, addr uint64) error {
	if p.returnThunk == 0 || p.features.Has(featRethunk) {
		return nil
	}
	return sites(table, addr, func(site uint64) error {
		in, _, ok := p.readInsn(site)
		if !ok || in.op[0] != opJmp32 || site+uint64(in.length)+uint64(in.imm) != p.returnThunk {
			return nil // not a return-thunk jump: the kernel WARNs and leaves it
		}
		b := make([]byte, in.length)
		b[0] = opRet
		for i := 1; i < len(b); i++ {
			b[i] = 0xcc
		}
		return p.mem.poke(site, b)
	})
}

// applyFtraceNOPs turns each `call __fentry__` listed (absolute addresses) in __mcount_loc into a
// 5-byte NOP; a site that is not such a call is left alone, as the kernel leaves it.
func (p *textPatcher) applyFtraceNOPs(table []byte, _ uint64) error {
	if p.fentry == 0 {
		return nil
	}
	for i := 0; i+8 <= len(table); i += 8 {
		site := binary.LittleEndian.Uint64(table[i:])
		var b [5]byte
		if p.mem.ReadAt(b[:], site) != nil || b[0] != opCall {
			continue
		}
		if site+5+uint64(int64(int32(binary.LittleEndian.Uint32(b[1:])))) != p.fentry {
			continue
		}
		if err := p.mem.poke(site, nop5); err != nil {
			return err
		}
	}
	return nil
}

// applyAlternatives is apply_alternatives over a module's struct alt_instr table, in table order
// (a later entry may overwrite an earlier one's bytes, which the kernel relies on).
func (p *textPatcher) applyAlternatives(table []byte, addr uint64) error {
	for i := 0; i+altSize <= len(table); i += altSize {
		e := table[i:]
		entry := addr + uint64(i)
		instr := entry + uint64(int64(int32(binary.LittleEndian.Uint32(e[0:]))))
		repl := entry + 4 + uint64(int64(int32(binary.LittleEndian.Uint32(e[4:]))))
		cpuid := binary.LittleEndian.Uint16(e[8:])
		instrLen, replLen := int(e[10]), int(e[11])
		if replLen > instrLen || Feature(cpuid&^altNotBit).Word() >= len(FeatureSet{}) {
			continue // entries the kernel BUGs on (the assembler never emits them): left unpatched
		}
		if err := p.applyAlternative(instr, repl, cpuid, instrLen, replLen); err != nil {
			return fmt.Errorf("alternative %d at %#x: %w", i/altSize, instr, err)
		}
	}
	return nil
}

// applyAlternative patches one site when its feature says so, then merges its NOPs.
func (p *textPatcher) applyAlternative(instr, repl uint64, cpuid uint16, instrLen, replLen int) error {
	feature := Feature(cpuid &^ altNotBit)
	site := make([]byte, instrLen)
	if err := p.mem.ReadAt(site, instr); err != nil {
		return fmt.Errorf("read site: %w", err)
	}
	if p.features.Has(feature) != (cpuid&altNotBit != 0) {
		if err := p.mem.ReadAt(site[:replLen], repl); err != nil {
			return fmt.Errorf("read replacement at %#x: %w", repl, err)
		}
		if replLen == 5 && site[0] == opCall { // a call's rel32 was relative to the replacement
			rel := int32(binary.LittleEndian.Uint32(site[1:])) + int32(repl-instr)
			binary.LittleEndian.PutUint32(site[1:], uint32(rel))
		}
		if replLen > 0 && (site[0] == opJmp8 || site[0] == opJmp32) {
			recomputeJump(site, instr, repl, replLen)
		}
		for i := replLen; i < instrLen; i++ {
			site[i] = opNop1
		}
	}
	p.optimizeNOPs(site, instr)
	return p.mem.poke(instr, site)
}

// recomputeJump is recompute_jump: a 5-byte jmp in a replacement is re-aimed from the site, as a
// 2-byte jmp (then NOPs) when the forward distance fits in a rel8, else as a 5-byte one. The
// kernel's test for a backward short jump never holds for a negative distance, so backward jumps
// stay 5 bytes long; kemu keeps that.
func recomputeJump(site []byte, instr, repl uint64, replLen int) {
	if replLen != 5 {
		return
	}
	target := int64(repl) + 5 + int64(int32(binary.LittleEndian.Uint32(site[1:])))
	disp := int32(target - int64(instr))
	short := false
	if target-int64(instr) >= 0 {
		short = disp-2 <= 127
	} else {
		short = (disp-2)&0xff == disp-2
	}
	if short {
		site[0], site[1] = opJmp8, byte(int8(disp-2))
		addNOPs(site[2:5])
		return
	}
	site[0] = opJmp32
	binary.LittleEndian.PutUint32(site[1:], uint32(disp-5))
}

// optimizeNOPs is optimize_nops: walking b's instructions, each run of two or more one-byte NOPs
// becomes the longest NOPs that fill it.
func (p *textPatcher) optimizeNOPs(b []byte, addr uint64) {
	for i := 0; i < len(b); {
		in, ok := p.decode(b[i:], addr+uint64(i))
		if !ok {
			return
		}
		if in.length != 1 || b[i] != opNop1 {
			i += in.length
			continue
		}
		j := i
		for j < len(b) && b[j] == opNop1 {
			j++
		}
		if j-i > 1 {
			addNOPs(b[i:j])
		}
		i = j
	}
}
