package machine

import (
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/mmu"
	"kemu/profile"
)

// A small kernel: just the symbols the tests' hand-assembled module code uses, at addresses laid
// out as in a real System.map (text, then data, per-CPU offsets from 0).
const (
	kText        = 0xffffffff81000000
	kFentry      = kText + 0x100
	kPrintk      = kText + 0x200
	kKmallocTr   = kText + 0x300
	kKfree       = kText + 0x400
	kMsleep      = kText + 0x500
	kUnhandled   = kText + 0x600
	kMutexLock   = kText + 0x700
	kMutexUnlock = kText + 0x800
	kStackChk    = kText + 0x900
	kInitcall    = kText + 0x1000
	kReturnThunk = kText + 0x2000
	kThunkRAX    = kText + 0x2010
	kEtext       = kText + 0x400000
	kJiffies     = 0xffffffff82000000
	kCaches      = 0xffffffff82001000
	kEnd         = 0xffffffff82100000
)

func testProfile() *profile.Profile {
	return profile.New(&profile.Profile{
		Release:  "6.1.0-test-amd64",
		Version:  "#1 SMP PREEMPT_DYNAMIC Debian 6.1.0-1",
		Vermagic: "6.1.0-test-amd64 SMP preempt mod_unload modversions ",
		Config:   map[string]string{"CONFIG_HZ": "250"},
		Symbols: []profile.Symbol{
			{Addr: 0, Type: 'D', Name: "__per_cpu_start"},
			{Addr: 0, Type: 'D', Name: "fixed_percpu_data"},
			{Addr: 0x1fbc0, Type: 'D', Name: "current_task"},
			{Addr: 0x1fbc8, Type: 'D', Name: "__preempt_count"},
			{Addr: 0x30000, Type: 'D', Name: "__per_cpu_end"},
			{Addr: kText, Type: 'T', Name: "_text"},
			{Addr: kFentry, Type: 'T', Name: "__fentry__"},
			{Addr: kPrintk, Type: 'T', Name: "_printk"},
			{Addr: kKmallocTr, Type: 'T', Name: "kmalloc_trace"},
			{Addr: kKfree, Type: 'T', Name: "kfree"},
			{Addr: kMsleep, Type: 'T', Name: "msleep"},
			{Addr: kUnhandled, Type: 'T', Name: "some_unhandled_function"},
			{Addr: kMutexLock, Type: 'T', Name: "mutex_lock"},
			{Addr: kMutexUnlock, Type: 'T', Name: "mutex_unlock"},
			{Addr: kStackChk, Type: 'T', Name: "__stack_chk_fail"},
			{Addr: kInitcall, Type: 'T', Name: "do_one_initcall"},
			{Addr: kReturnThunk, Type: 'T', Name: "__x86_return_thunk"},
			{Addr: kThunkRAX, Type: 'T', Name: "__x86_indirect_thunk_rax"},
			{Addr: kThunkRAX + 0x10, Type: 'T', Name: "__x86_indirect_thunk_rcx"},
			{Addr: kEtext, Type: 'T', Name: "_etext"},
			{Addr: kJiffies, Type: 'D', Name: "jiffies"},
			{Addr: kJiffies, Type: 'D', Name: "jiffies_64"},
			{Addr: kCaches, Type: 'D', Name: "kmalloc_caches"},
			{Addr: kCaches + 0x1000, Type: 'D', Name: "page_offset_base"},
			{Addr: kCaches + 0x1008, Type: 'D', Name: "__per_cpu_offset"},
			{Addr: kCaches + 0x2000, Type: 'd', Name: "zz_after_data"},
			{Addr: kEnd, Type: 'B', Name: "_end"},
		},
	})
}

// asm is a tiny x86-64 assembler for the handful of instructions the tests need.
type asm struct {
	base uint64 // where the code will run
	code []byte
}

func (a *asm) pc() uint64 { return a.base + uint64(len(a.code)) }

func (a *asm) rel32(op []byte, target uint64) {
	end := a.pc() + uint64(len(op)) + 4
	a.code = append(a.code, op...)
	a.code = binary.LittleEndian.AppendUint32(a.code, uint32(int32(int64(target)-int64(end))))
}

func (a *asm) call(target uint64) { a.rel32([]byte{0xe8}, target) }
func (a *asm) jmp(target uint64)  { a.rel32([]byte{0xe9}, target) }
func (a *asm) leaRDI(target uint64) {
	a.rel32([]byte{0x48, 0x8d, 0x3d}, target)
}
func (a *asm) movRSI(v uint32) {
	a.code = append(a.code, 0x48, 0xc7, 0xc6)
	a.code = binary.LittleEndian.AppendUint32(a.code, v)
}
func (a *asm) movRDX(v uint32) {
	a.code = append(a.code, 0x48, 0xc7, 0xc2)
	a.code = binary.LittleEndian.AppendUint32(a.code, v)
}
func (a *asm) movRDI(v uint32) {
	a.code = append(a.code, 0x48, 0xc7, 0xc7)
	a.code = binary.LittleEndian.AppendUint32(a.code, v)
}
func (a *asm) raw(b ...byte) { a.code = append(a.code, b...) }

// testModule is module memory for hand-assembled code: a text page (code starts codeOffset into it,
// after int3 padding, so an oops has bytes before RIP for its Code: line) and a data page after it.
type testModule struct {
	text, data uint64
}

// codeOffset leaves room for a full Code: line before the first instruction.
const codeOffset = 0x40

func (tm testModule) asm() *asm { return &asm{base: tm.text + codeOffset} }

// newModule allocates a test module's memory in the module area.
func newModule(t testing.TB, m *Machine) testModule {
	t.Helper()
	base, err := m.vmalloc.ModuleAlloc(2*pageSize, mmu.Caller{Label: "test"})
	require.NoError(t, err)
	return testModule{text: base, data: base + pageSize}
}

// load installs code and data as a module called name, with one function symbol covering the code,
// and returns the code's address.
func (tm testModule) load(t testing.TB, m *Machine, name string, code, data []byte) uint64 {
	t.Helper()
	require.NoError(t, m.WriteAt(append(bytesOf(0xcc, codeOffset), code...), tm.text))
	require.NoError(t, m.WriteAt(data, tm.data))
	require.NoError(t, m.protect(tm.text, pageSize, PermRead|PermExec))
	m.modules = append(m.modules, &guestModule{
		name: name, flags: "OE", state: stateComing,
		regions: []span{{tm.text, tm.text + 2*pageSize}},
		symbols: []modSymbol{{name: name + "_init", addr: tm.text + codeOffset, size: uint64(len(code))}},
		bugs:    map[uint64]bugEntry{}, extable: map[uint64]exEntry{},
	})
	return tm.text + codeOffset
}

// loadModule installs code that needs no data addresses.
func loadModule(t testing.TB, m *Machine, name string, code, data []byte) (fn, dataAddr uint64) {
	tm := newModule(t, m)
	return tm.load(t, m, name, code, data), tm.data
}

func bytesOf(b byte, n int) []byte { return []byte(strings.Repeat(string([]byte{b}), n)) }

func newTestMachine(t *testing.T, opts Options) *Machine {
	t.Helper()
	m, err := New(testProfile(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

func TestCallPrintkAndReturn(t *testing.T) {
	m := newTestMachine(t, Options{})
	tm := newModule(t, m)
	a := tm.asm()
	a.call(kFentry)
	a.leaRDI(tm.data)
	a.movRSI(42)
	a.call(kPrintk)
	a.raw(0xb8, 7, 0, 0, 0) // mov eax, 7
	a.jmp(kReturnThunk)
	fn := tm.load(t, m, "hello", a.code, []byte("\x016hello: answer=%d\n\x00"))
	ret, err := m.Call(fn)
	require.NoError(t, err)
	assert.Equal(t, uint64(7), ret)
	assert.Equal(t, []string{"hello: answer=42"}, m.Messages())
	assert.Contains(t, m.Dmesg(), "[    0.000000] hello: answer=42\n")
	stats := m.CallStats()
	require.Len(t, stats, 1, "fentry and the return thunk run as real code, only _printk traps")
	assert.Equal(t, "_printk", stats[0].Name)
	assert.Equal(t, "hello:hello_init+0x18", stats[0].FirstCaller)
}

func TestKernelDataInitialised(t *testing.T) {
	m := newTestMachine(t, Options{})
	j, err := m.ReadU64(kJiffies)
	require.NoError(t, err)
	assert.Equal(t, uint64(0x100000000-300*250), j, "INITIAL_JIFFIES for HZ=250")
	pob, err := m.ReadU64(kCaches + 0x1000)
	require.NoError(t, err)
	assert.Equal(t, uint64(0xffff888000000000), pob)
	off, err := m.ReadU64(kCaches + 0x1008)
	require.NoError(t, err)
	assert.Equal(t, uint64(m.percpu), off)
	cur, err := m.ReadU64(m.percpu + 0x1fbc0)
	require.NoError(t, err)
	assert.Equal(t, m.task, cur)
	canary, err := m.ReadU64(m.percpu + 0x28)
	require.NoError(t, err)
	assert.Equal(t, uint64(stackCanary), canary)
	c8, err := m.ReadU64(kCaches + 8*3) // kmalloc_caches[0][3]: kmalloc-8
	require.NoError(t, err)
	require.Contains(t, m.kernel.caches, c8)
	assert.Equal(t, uint64(8), m.kernel.caches[c8].size)
}

func TestMsleepMovesVirtualTime(t *testing.T) {
	m := newTestMachine(t, Options{})
	tm := newModule(t, m)
	a := tm.asm()
	a.movRDI(1000)
	a.call(kMsleep)
	a.raw(0xc3)
	fn := tm.load(t, m, "sleeper", a.code, nil)
	_, err := m.Call(fn)
	require.NoError(t, err)
	assert.Equal(t, uint64(1004e6), m.kernel.clock.ns)
	j, _ := m.ReadU64(kJiffies)
	assert.Equal(t, uint64(0x100000000-300*250+251), j)
}

func TestNullDereferenceOops(t *testing.T) {
	m := newTestMachine(t, Options{})
	tm := newModule(t, m)
	a := tm.asm()
	a.call(kFentry)
	a.raw(0x48, 0xc7, 0x04, 0x25, 0, 0, 0, 0, 1, 0, 0, 0) // movq $1, 0x0
	a.raw(0xc3)
	fn := tm.load(t, m, "fault_null", a.code, nil)
	_, err := m.Call(fn)
	require.ErrorIs(t, err, errTaskDied)
	log := strings.Join(m.Messages(), "\n")
	assert.Contains(t, log, "BUG: kernel NULL pointer dereference, address: 0000000000000000")
	assert.Contains(t, log, "#PF: supervisor write access in kernel mode")
	assert.Contains(t, log, "#PF: error_code(0x0002) - not-present page")
	assert.Contains(t, log, "Oops: 0002 [#1] PREEMPT SMP NOPTI")
	assert.Contains(t, log, "CPU: 0 PID: 1000 Comm: insmod Not tainted 6.1.0-test-amd64 #1")
	assert.Contains(t, log, "RIP: 0010:fault_null_init+0x5/0x12 [fault_null]")
	assert.Contains(t, log, "Code: ")
	assert.Contains(t, log, " <48> c7 04 25 00 00 00 00 01")
	assert.Contains(t, log, "Modules linked in: fault_null(OE+)")
	assert.Contains(t, log, "CR2: 0000000000000000")
	assert.Contains(t, log, "---[ end trace 0000000000000000 ]---")
	assert.Contains(t, m.kernelTaint().KernelString(), "D")

	// The machine goes on: another call works and the next oops is #2.
	_, err = m.Call(fn)
	require.ErrorIs(t, err, errTaskDied)
	assert.Contains(t, strings.Join(m.Messages(), "\n"), "Oops: 0002 [#2] PREEMPT SMP NOPTI")
}

func TestUseAfterFreeReadsPoison(t *testing.T) {
	m := newTestMachine(t, Options{})
	tm := newModule(t, m)
	a := tm.asm()
	a.raw(0x53)             // push rbx
	a.movRDI(0)             // cache (the handler goes by size)
	a.movRSI(0xcc0)         // GFP_KERNEL
	a.movRDX(64)            // size
	a.call(kKmallocTr)      //
	a.raw(0x48, 0x89, 0xc3) // mov rbx, rax
	a.raw(0xc6, 0x03, 0x41) // movb $0x41, (rbx)
	a.raw(0x48, 0x89, 0xc7) // mov rdi, rax
	a.call(kKfree)          //
	a.raw(0x8a, 0x03)       // mov al, (rbx): use after free
	a.raw(0x5b, 0xc3)       // pop rbx; ret
	fn := tm.load(t, m, "fault_uaf", a.code, nil)
	ret, err := m.Call(fn)
	require.NoError(t, err, "a freed slab object stays mapped, as in Linux")
	assert.Equal(t, uint64(0x6b), ret&0xff, "SLUB's free poison")
	assert.Equal(t, []CallRecord{{Name: "kmalloc_trace", Caller: "fault_uaf:fault_uaf_init+0x1b"},
		{Name: "kfree", Caller: "fault_uaf:fault_uaf_init+0x29"}}, m.Calls())
}

func TestRunawayLoopIsSoftLockup(t *testing.T) {
	m := newTestMachine(t, Options{Budget: 100000})
	fn, _ := loadModule(t, m, "fault_loop", []byte{0xeb, 0xfe}, nil) // jmp .
	_, err := m.Call(fn)
	require.ErrorIs(t, err, errTaskDied)
	log := strings.Join(m.Messages(), "\n")
	assert.Contains(t, log, "watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [insmod:1000]")
	assert.Contains(t, log, "RIP: 0010:fault_loop_init+0x0/0x2 [fault_loop]")
}

func TestUnimplementedFunction(t *testing.T) {
	for _, strict := range []bool{false, true} {
		m := newTestMachine(t, Options{Strict: strict})
		tm := newModule(t, m)
		a := tm.asm()
		a.call(kUnhandled)
		a.raw(0xc3)
		fn := tm.load(t, m, "caller", a.code, nil)
		_, err := m.Call(fn)
		if strict {
			require.ErrorIs(t, err, errTaskDied)
			assert.Contains(t, strings.Join(m.Messages(), "\n"), "unimplemented kernel function some_unhandled_function called from caller:caller_init+0x5")
		} else {
			require.NoError(t, err)
			assert.Contains(t, m.Summary(), "unimplemented: some_unhandled_function (1 calls, first from caller:caller_init+0x5)")
		}
	}
}

func TestWarnContinues(t *testing.T) {
	m := newTestMachine(t, Options{})
	code := []byte{0x0f, 0x0b, 0xb8, 5, 0, 0, 0, 0xc3} // ud2; mov eax, 5; ret
	fn, _ := loadModule(t, m, "fault_warn", code, nil)
	m.modules[0].bugs[fn] = bugEntry{file: "fault_warn.c", line: 12, warning: true}
	ret, err := m.Call(fn)
	require.NoError(t, err)
	assert.Equal(t, uint64(5), ret)
	log := strings.Join(m.Messages(), "\n")
	assert.Contains(t, log, "------------[ cut here ]------------")
	assert.Contains(t, log, "WARNING: CPU: 0 PID: 1000 at fault_warn.c:12 fault_warn_init+0x0/0x8 [fault_warn]")
	assert.Contains(t, m.kernelTaint().KernelString(), "W")
}

func TestBugIsOops(t *testing.T) {
	m := newTestMachine(t, Options{})
	fn, _ := loadModule(t, m, "fault_bug", []byte{0x90, 0x0f, 0x0b}, nil)
	m.modules[0].bugs[fn+1] = bugEntry{file: "fault_bug.c", line: 9}
	_, err := m.Call(fn)
	require.ErrorIs(t, err, errTaskDied)
	log := strings.Join(m.Messages(), "\n")
	assert.Contains(t, log, "kernel BUG at fault_bug.c:9!")
	assert.Contains(t, log, "invalid opcode: 0000 [#1] PREEMPT SMP NOPTI")
	assert.Contains(t, log, "<0f> 0b")
}

func TestIndirectThunkAndHostSafety(t *testing.T) {
	m := newTestMachine(t, Options{})
	tm := newModule(t, m)
	a := tm.asm()
	a.leaRDI(tm.data) // format
	a.raw(0x48, 0xb8) // movabs rax, _printk
	a.code = binary.LittleEndian.AppendUint64(a.code, kPrintk)
	a.call(kThunkRAX) // indirect call through the retpoline thunk
	a.raw(0xc3)
	fn := tm.load(t, m, "indirect", a.code, []byte("%s\n\x00"))
	_, err := m.Call(fn, 0, 0xdead000000000000)
	require.ErrorIs(t, err, errTaskDied, "vsprintf dereferences a non-NULL, non-error pointer")
	log := strings.Join(m.Messages(), "\n")
	assert.Contains(t, log, "general protection fault, probably for non-canonical address 0xdead000000000000: 0000 [#1] PREEMPT SMP NOPTI")
	assert.Contains(t, log, "RIP: 0010:_printk+0x0/0x100", "the fault is inside the kernel function")

	_, err = m.Call(fn, 0, 0)
	require.NoError(t, err)
	assert.Equal(t, "(null)", m.Messages()[len(m.Messages())-1])
}

// benchCalls runs the code emit assembles, once per iteration, on a machine of the test kernel.
func benchCalls(b *testing.B, emit func(a *asm)) {
	m, err := New(testProfile(), Options{})
	require.NoError(b, err)
	defer m.Close()
	tm := newModule(b, m)
	a := tm.asm()
	emit(a)
	fn := tm.load(b, m, "bench", a.code, nil)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Call(fn); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTrap is one call into module code that makes one kernel call (msleep(0)) trapping into Go.
func BenchmarkTrap(b *testing.B) {
	benchCalls(b, func(a *asm) {
		a.movRDI(0)
		a.call(kMsleep)
		a.raw(0xc3)
	})
}

var callerForTest = mmu.Caller{Label: "test"}

func TestStackProtectorPanicHaltsMachine(t *testing.T) {
	m := newTestMachine(t, Options{})
	tm := newModule(t, m)
	a := tm.asm()
	a.call(kStackChk)
	a.raw(0xc3)
	fn := tm.load(t, m, "smash", a.code, nil)
	_, err := m.Call(fn)
	require.ErrorIs(t, err, errMachineHalted)
	assert.Contains(t, m.Messages(), "Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: smash_init+0x5/0x6 [smash]")
	_, err = m.Call(fn)
	require.ErrorIs(t, err, errMachineHalted, "nothing runs after a panic")
}

// BenchmarkFentryRealCode is the other side of BenchmarkTrap: 1000 calls to __fentry__, which runs
// as a real `ret` on its executable thunk page instead of trapping into Go.
func BenchmarkFentryRealCode(b *testing.B) {
	benchCalls(b, func(a *asm) {
		a.raw(0xb9, 0xe8, 0x03, 0, 0) // mov ecx, 1000
		loop := a.pc()
		a.call(kFentry)
		a.raw(0xff, 0xc9) // dec ecx
		a.rel32([]byte{0x0f, 0x85}, loop)
		a.raw(0xc3)
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/fentry")
}

// TestRandomCodeNeverPanicsTheHost runs random bytes as module code: whatever they do (fault, trap,
// spin, call into the kernel with garbage arguments), the host survives and the machine reports.
func TestRandomCodeNeverPanicsTheHost(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for seed := 0; seed < 40; seed++ {
		m := newTestMachine(t, Options{Watchdog: 100 * time.Millisecond})
		tm := newModule(t, m)
		code := make([]byte, 96)
		for i := range code {
			code[i] = byte(rng.Uint32())
		}
		// Point some arguments at the kernel functions' pages so calls into the kernel happen.
		fn := tm.load(t, m, "random", code, nil)
		assert.NotPanics(t, func() { _, _ = m.Call(fn, kPrintk, tm.data, 0, 1, 2, 3) }, "seed %d", seed)
		m.Close()
	}
}

// BenchmarkTrapLoop is 1000 kernel calls (msleep(0)) from one call into module code: the cost of one
// trap (CPU stop, Go handler, CPU restart) without Call's setup.
func BenchmarkTrapLoop(b *testing.B) {
	benchCalls(b, func(a *asm) {
		a.raw(0x53)                   // push rbx
		a.raw(0xbb, 0xe8, 0x03, 0, 0) // mov ebx, 1000
		loop := a.pc()
		a.movRDI(0)
		a.call(kMsleep)
		a.raw(0xff, 0xcb) // dec ebx
		a.rel32([]byte{0x0f, 0x85}, loop)
		a.raw(0x5b, 0xc3) // pop rbx; ret
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/trap")
}
