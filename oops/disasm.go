package oops

import "github.com/knightsc/gapstone"

// Disassemble decodes a Code: line with capstone in AT&T syntax, as the kernel's scripts/decodecode
// does with objdump. The bytes before the trapping one may begin mid-instruction, so the start is moved
// forward one byte at a time until the decoded instructions end exactly at the trapping byte; the
// listing then continues from it. rip is the trapping instruction's address, 0 when unknown (addresses
// are then offsets from the start of the bytes). It returns nil when capstone cannot be opened.
func Disassemble(c *Code, rip uint64) []Instruction {
	if c == nil || len(c.Bytes) == 0 {
		return nil
	}
	engine, err := gapstone.New(gapstone.CS_ARCH_X86, gapstone.CS_MODE_64)
	if err != nil {
		return nil
	}
	defer engine.Close()
	if err := engine.SetOption(gapstone.CS_OPT_SYNTAX, gapstone.CS_OPT_SYNTAX_ATT); err != nil {
		return nil
	}
	trap := c.Trap
	if trap < 0 || trap >= len(c.Bytes) {
		trap = 0
	}
	base := uint64(0)
	if rip != 0 {
		base = rip - uint64(trap)
	}
	decode := func(from, to int) ([]Instruction, int) {
		insns, err := engine.Disasm(c.Bytes[from:to], base+uint64(from), 0)
		if err != nil {
			return nil, from
		}
		out := make([]Instruction, 0, len(insns))
		end := from
		for _, in := range insns {
			text := in.Mnemonic
			if in.OpStr != "" {
				text += " " + in.OpStr
			}
			out = append(out, Instruction{Address: uint64(in.Address), Offset: end - trap, Bytes: append([]byte(nil), in.Bytes...), Text: text})
			end += int(in.Size)
		}
		return out, end
	}
	var listing []Instruction
	for start := 0; start < trap; start++ {
		if before, end := decode(start, trap); end == trap {
			listing = before
			break
		}
	}
	after, _ := decode(trap, len(c.Bytes))
	if len(after) > 0 && c.Trap >= 0 {
		after[0].Trapping = true
	}
	return append(listing, after...)
}
