package bench

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"

	"kemu/machine"
	"kemu/profile"
)

// Guest speed of module code on kemu's machine against the same code on bare Unicorn: the compute
// fixture's compute_crc_loop (a CRC over a 256-byte stack buffer; no kernel calls besides the
// __fentry__ and return thunks, which run as real instructions) called through Machine.Call, and
// started directly on the machine's Unicorn engine with no run loop, instruction budget or traps.
// Each benchmark reports guest instructions per second (ginsn/s); the ratio of the two is kemu's
// overhead.

const computeIters = 200 // compute_crc_loop(200): about 1.4M guest instructions per call

// bootCompute boots the default kernel, lets prepare attach to the fresh machine (a hook), loads
// the compute fixture and returns the machine and the address of compute_crc_loop.
func bootCompute(b *testing.B, prepare func(*machine.Machine)) (*machine.Machine, uint64) {
	b.Helper()
	prof, err := profile.Default()
	if err != nil {
		b.Fatal(err)
	}
	m, err := machine.New(prof, machine.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	if prepare != nil {
		prepare(m)
	}
	image, err := os.ReadFile(filepath.Join("..", "testdata", "modules", "compute.ko"))
	if err != nil {
		b.Fatal(err)
	}
	mod, err := m.Insmod(image, "", "compute.ko")
	if err != nil {
		b.Fatal(err, m.Dmesg())
	}
	sym, ok := mod.Lookup("compute_crc_loop")
	if !ok {
		b.Fatal("compute.ko has no compute_crc_loop")
	}
	return m, sym.Addr
}

// bareReturn is an unmapped address the bare run returns to: the fetch fault ends emu_start.
const bareReturn = 0xffffffff80002000

// bareCall runs fn(arg) directly on the engine: push the return address, start, expect the fault
// at bareReturn.
func bareCall(cpu uc.Unicorn, stackTop, fn, arg uint64) error {
	rsp := (stackTop-256)&^15 - 8
	var ret [8]byte
	binary.LittleEndian.PutUint64(ret[:], bareReturn)
	if err := cpu.MemWrite(rsp, ret[:]); err != nil {
		return err
	}
	if err := cpu.RegWrite(uc.X86_REG_RSP, rsp); err != nil {
		return err
	}
	if err := cpu.RegWrite(uc.X86_REG_RDI, arg); err != nil {
		return err
	}
	err := cpu.Start(fn, 0)
	var ue uc.UcError
	if errors.As(err, &ue) && ue == uc.ERR_FETCH_UNMAPPED {
		if rip, _ := cpu.RegRead(uc.X86_REG_RIP); rip == bareReturn {
			return nil
		}
	}
	return err
}

// countInstructions counts the guest instructions of one compute_crc_loop(arg) call. Unicorn
// instruments code for a hook only when it translates it, so the count runs on a machine of its
// own with the hook attached before the module is loaded.
func countInstructions(b *testing.B, arg uint64) uint64 {
	b.Helper()
	var n uint64
	m, fn := bootCompute(b, func(m *machine.Machine) {
		if _, err := m.CPU().HookAdd(uc.HOOK_CODE, func(uc.Unicorn, uint64, uint32) { n++ }, 1, 0); err != nil {
			b.Fatal(err)
		}
	})
	n = 0
	if err := bareCall(m.CPU(), m.StackTop(), fn, arg); err != nil {
		b.Fatal(err)
	}
	return n
}

func report(b *testing.B, insns uint64) {
	b.ReportMetric(float64(insns)*float64(b.N)/b.Elapsed().Seconds(), "ginsn/s")
}

func BenchmarkComputeKemu(b *testing.B) {
	m, fn := bootCompute(b, nil)
	insns := countInstructions(b, computeIters)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Call(fn, computeIters); err != nil {
			b.Fatal(err, m.Dmesg())
		}
	}
	report(b, insns)
}

func BenchmarkComputeBareUnicorn(b *testing.B) {
	m, fn := bootCompute(b, nil)
	insns := countInstructions(b, computeIters)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := bareCall(m.CPU(), m.StackTop(), fn, computeIters); err != nil {
			b.Fatal(err)
		}
	}
	report(b, insns)
}
