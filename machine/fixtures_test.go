package machine

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/loader"
)

// The fixture modules under testdata/modules, run end to end on the embedded Debian 6.1 profile.
// Expected log lines are written from the fixtures' C sources and the kernel's message formats.

// loadLines are what 6.1 logs for the first out-of-tree, unsigned module a kernel loads.
func loadLines(name string) []string {
	return []string{
		name + ": loading out-of-tree module taints kernel.",
		name + ": module verification failed: signature and/or required key missing - tainting kernel",
	}
}

// crcLoop is compute.c's compute_crc_loop, for the expected values.
func crcLoop(iters uint32) uint32 {
	var buf [256]byte
	for i := range buf {
		buf[i] = byte(i*31 + 7)
	}
	crc := uint32(0xffffffff)
	for i := uint32(0); i < iters; i++ {
		for _, b := range buf {
			crc ^= uint32(b)
			for bit := 0; bit < 8; bit++ {
				crc = (crc >> 1) ^ (0xEDB88320 & -(crc & 1))
			}
		}
		buf[i%256] ^= byte(crc)
	}
	return crc ^ 0xffffffff
}

// hotBench1 is hot_chain.h's hot_bench(1) over hot0..hot9.
func hotBench1() uint64 { return hotChainRef(1) }

func TestFixturesInitAndExit(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the full Debian profile per case")
	}
	type load struct {
		name, params string
		errno        syscall.Errno // init's error, 0 for success
	}
	cases := []struct {
		name  string
		loads []load
		idle  uint64 // virtual ns to let pass after loading (timers, work)
		init  []string
		rmmod []string // modules to unload, in order
		exit  []string
	}{
		{name: "hello", loads: []load{{name: "hello"}},
			init: append(loadLines("hello"), "hello: hello, world", "hello: count=3 limit=100 verbose=0 tag=kemu",
				"hello: values: 4 given, sum=10", "hello: greeting 1 of 3", "hello: greeting 2 of 3", "hello: greeting 3 of 3"),
			rmmod: []string{"hello"}, exit: []string{"hello: goodbye, world"}},
		{name: "hello with parameters", loads: []load{{name: "hello", params: "whom=kemu count=2 limit=7 tag=xyz values=5,6"}},
			init: append(loadLines("hello"), "hello: hello, kemu", "hello: count=2 limit=7 verbose=0 tag=xyz",
				"hello: values: 2 given, sum=11", "hello: greeting 1 of 2", "hello: greeting 2 of 2"),
			rmmod: []string{"hello"}, exit: []string{"hello: goodbye, kemu"}},
		{name: "chardev", loads: []load{{name: "chardev"}},
			init:  append(loadLines("chardev"), "chardev: registered kemu_chardev as 254:0 and misc kemu_misc"),
			rmmod: []string{"chardev"}, exit: []string{"chardev: unregistered after 0 opens"}},
		{name: "producer and consumer", loads: []load{{name: "producer"}, {name: "consumer"}},
			init: append(loadLines("producer"), "producer: ready, counter=0",
				"consumer: producer_add(2, 3) = 5", "consumer: producer_describe: producer called 1 times",
				"consumer: producer_counter = 1", "consumer: producer_secret(1) = 2654435761"),
			rmmod: []string{"consumer", "producer"}, exit: []string{"consumer: exit", "producer: exit, counter=1"}},
		{name: "compute", loads: []load{{name: "compute"}},
			init: append(loadLines("compute"), fmt.Sprintf("compute: compute_crc_loop(1) = 0x%08x", crcLoop(1)),
				fmt.Sprintf("compute: compute_crc_loop(10) = 0x%08x", crcLoop(10))),
			rmmod: []string{"compute"}},
		{name: "init returns -ENODEV", loads: []load{{name: "fault_enodev", errno: syscall.ENODEV}},
			init: append(loadLines("fault_enodev"), "fault_enodev: no device found")},
		{name: "timers and work", loads: []load{{name: "timers"}}, idle: 1e9,
			init: append(loadLines("timers"), "timers: timer armed for 50 ms, work queued", "timers: work item ran",
				"timers: timer fired (1 of 3)", "timers: timer fired (2 of 3)", "timers: timer fired (3 of 3)"),
			rmmod: []string{"timers"}, exit: []string{"timers: exit after 3 timer runs"}},
		{name: "procfs", loads: []load{{name: "procfs"}},
			init:  append(loadLines("procfs"), "procfs: created /proc/kemu_procfs"),
			rmmod: []string{"procfs"}, exit: []string{"procfs: removed /proc/kemu_procfs"}},
		{name: "fault_bug with a consistent state", loads: []load{{name: "fault_bug", params: "fault_bug_state=0"}},
			init:  append(loadLines("fault_bug"), "fault_bug: checking state 0", "fault_bug: state is consistent"),
			rmmod: []string{"fault_bug"}},
		{name: "fault_loop already ready", loads: []load{{name: "fault_loop", params: "fault_loop_ready=1"}},
			init:  append(loadLines("fault_loop"), "fault_loop: waiting for ready", "fault_loop: ready after 0 spins"),
			rmmod: []string{"fault_loop"}},
		{name: "fault_recursion bounded", loads: []load{{name: "fault_recursion", params: "fault_recursion_limit=10"}},
			init:  append(loadLines("fault_recursion"), "fault_recursion: recursing, limit 10", "fault_recursion: returned 55"),
			rmmod: []string{"fault_recursion"}},
		{name: "hot chain", loads: []load{{name: "hot9"}, {name: "hot8"}, {name: "hot7"}, {name: "hot6"}, {name: "hot5"},
			{name: "hot4"}, {name: "hot3"}, {name: "hot2"}, {name: "hot1"}, {name: "hot0"}},
			init: append(loadLines("hot9"), "hot9: ready", "hot8: ready", "hot7: ready", "hot6: ready", "hot5: ready",
				"hot4: ready", "hot3: ready", "hot2: ready", "hot1: ready", fmt.Sprintf("hot0: hot_bench(1) = %#x", hotBench1())),
			rmmod: []string{"hot0", "hot1", "hot2", "hot3", "hot4", "hot5", "hot6", "hot7", "hot8", "hot9"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := bootDefault(t, Options{Strict: true})
			for _, l := range c.loads {
				mod, err := m.Insmod(fixture(t, l.name), l.params, l.name+".ko")
				if l.errno != 0 {
					require.Error(t, err)
					assert.Equal(t, l.errno, loader.Errno(err))
					assert.Nil(t, mod)
					_, still := m.Registry().Find(l.name)
					assert.False(t, still, "a module whose init failed is unloaded")
					continue
				}
				require.NoError(t, err, m.Dmesg())
				assert.Equal(t, loader.Live, mod.State)
			}
			if c.idle > 0 {
				_, err := m.Idle(c.idle)
				require.NoError(t, err)
			}
			assert.Equal(t, c.init, m.Messages(), m.Dmesg())
			assert.Empty(t, m.Unimplemented(), m.Summary())
			before := len(m.Messages())
			for _, name := range c.rmmod {
				require.NoError(t, m.Rmmod(name, false), m.Dmesg())
			}
			assert.Equal(t, append([]string{}, c.exit...), m.Messages()[before:])
			assert.Empty(t, m.Registry().Modules())
		})
	}
}

// oopsExpect is what an oops fixture's report must contain.
type oopsExpect struct {
	fixture string
	lines   []string // lines that must appear exactly
	ripSym  string   // function the RIP line names
	killed  bool     // insmod dies (the module stays, COMING)
	idle    uint64
	pgd     bool // a page fault on an address with no page tables at all
}

func TestFaultFixtures(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the full Debian profile per case")
	}
	cases := []oopsExpect{
		{fixture: "fault_null", ripSym: "fault_null_init", killed: true, pgd: true, lines: []string{
			"fault_null: looking up record 1",
			"BUG: kernel NULL pointer dereference, address: 0000000000000008",
			"#PF: supervisor write access in kernel mode",
			"#PF: error_code(0x0002) - not-present page",
			"Oops: 0002 [#1] PREEMPT SMP NOPTI",
			"CPU: 0 PID: 1000 Comm: insmod Tainted: G           OE      6.1.0-56-amd64 #1",
			" do_one_initcall+0x41/0x220", // the ORC unwinder vouches for init's return address
			"Modules linked in: fault_null(OE+)",
			"CR2: 0000000000000008",
			"---[ end trace 0000000000000000 ]---",
		}},
		{fixture: "fault_bug", ripSym: "fault_bug_init", killed: true, lines: []string{
			"fault_bug: checking state 1",
			"------------[ cut here ]------------",
			"invalid opcode: 0000 [#1] PREEMPT SMP NOPTI",
			"Modules linked in: fault_bug(OE+)",
		}},
		{fixture: "fault_warn", ripSym: "fault_warn_init", lines: []string{
			"fault_warn: about to warn",
			"------------[ cut here ]------------",
			"Modules linked in: fault_warn(OE+)",
			"---[ end trace 0000000000000000 ]---",
			"fault_warn: still running after WARN_ON",
		}},
		{fixture: "fault_loop", ripSym: "fault_loop_init", killed: true, lines: []string{
			"fault_loop: waiting for ready",
			"watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [insmod:1000]",
			"Modules linked in: fault_loop(OE+)",
			"CPU: 0 PID: 1000 Comm: insmod Tainted: G           OEL     6.1.0-56-amd64 #1",
		}},
		{fixture: "fault_recursion", ripSym: "fault_recurse", killed: true, lines: []string{
			"fault_recursion: recursing, limit -1",
			"stack guard page: 0000 [#1] PREEMPT SMP NOPTI",
			" fault_recurse+0x44/0x6b [fault_recursion]",
			"Modules linked in: fault_recursion(OE+)",
		}},
		{fixture: "fault_uaf_init", ripSym: "fault_uaf_timer_fn", idle: 1e9, lines: []string{
			`fault_uaf_init: init: setup(1)=4, greeting "greeting from init data"`,
			"#PF: supervisor read access in kernel mode",
			"#PF: error_code(0x0000) - not-present page",
			"Oops: 0000 [#1] PREEMPT SMP NOPTI",
			"CPU: 0 PID: 0 Comm: swapper/0 Tainted: G           OE      6.1.0-56-amd64 #1",
			" <IRQ>",
			"Modules linked in: fault_uaf_init(OE)",
		}},
		{fixture: "fault_usercopy", lines: []string{
			"fault_usercopy: copy_from_user from 0000000000000010: 16 of 16 bytes not copied",
			"fault_usercopy: unsafe_get_user from 0000000000000010: -14",
		}},
	}
	for _, c := range cases {
		t.Run(c.fixture, func(t *testing.T) {
			m := bootDefault(t, Options{Watchdog: 300 * time.Millisecond})
			mod, err := m.Insmod(fixture(t, c.fixture), "", c.fixture+".ko")
			if c.killed {
				require.ErrorIs(t, err, ErrKilled)
				require.NotNil(t, mod)
				got, ok := m.Registry().Find(c.fixture)
				require.True(t, ok, "the module stays after an oops in init")
				assert.Equal(t, loader.Coming, got.State)
			} else {
				require.NoError(t, err, m.Dmesg())
			}
			if c.idle > 0 {
				_, err := m.Idle(c.idle)
				require.NoError(t, err)
			}
			msgs := m.Messages()
			if c.pgd {
				// 6.1 prints "PGD 0 P4D 0 ": with 4-level paging pgd_present() is always true and
				// the folded P4D repeats the entry.
				assert.Equal(t, "PGD 0 P4D 0 ", msgs[indexOf(msgs, "#PF: error_code(0x0002) - not-present page")+1])
			}
			for _, want := range c.lines {
				assert.Contains(t, msgs, want, m.Dmesg())
			}
			if c.ripSym != "" {
				rip := ""
				for _, l := range msgs {
					if strings.HasPrefix(l, "RIP: 0010:") {
						rip = l
						break
					}
				}
				assert.True(t, strings.HasPrefix(rip, "RIP: 0010:"+c.ripSym+"+0x"), "RIP line %q", rip)
				code := msgs[indexOf(msgs, rip)+1]
				assert.Regexp(t, `^Code: (Unable to access opcode bytes at 0x[0-9a-f]+\.|([0-9a-f]{2} ){42}<[0-9a-f]{2}>( [0-9a-f]{2}){21})$`, code)
			}

			// The machine goes on: a module loaded afterwards works.
			before := len(m.Messages())
			_, err = m.Insmod(fixture(t, "hello"), "whom=again", "hello.ko")
			require.NoError(t, err, m.Dmesg())
			assert.Contains(t, m.Messages()[before:], "hello: hello, again")
		})
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func TestFaultRecursionReportsTheGuardPage(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the full Debian profile")
	}
	m := bootDefault(t, Options{})
	_, err := m.Insmod(fixture(t, "fault_recursion"), "", "fault_recursion.ko")
	require.ErrorIs(t, err, ErrKilled)
	assert.Regexp(t, `(?m)^BUG: TASK stack guard page was hit at [0-9a-f]{16} \(stack is [0-9a-f]{16}\.\.[0-9a-f]{16}\)$`,
		strings.Join(m.Messages(), "\n"))
}

func TestCallingFreedInitCodeFaultsOnFetch(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the full Debian profile")
	}
	m := bootDefault(t, Options{})
	mod, err := m.Insmod(fixture(t, "fault_uaf_init"), "", "fault_uaf_init.ko")
	require.NoError(t, err)
	call, ok := mod.Lookup("fault_uaf_init_call")
	require.True(t, ok)
	_, err = m.Call(call.Addr, 1)
	require.ErrorIs(t, err, errTaskDied)
	msgs := m.Messages()
	assert.Contains(t, msgs, "#PF: supervisor instruction fetch in kernel mode")
	assert.Contains(t, msgs, "#PF: error_code(0x0010) - not-present page")
}

func TestWarnFixtureUnloads(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the full Debian profile")
	}
	m := bootDefault(t, Options{})
	_, err := m.Insmod(fixture(t, "fault_warn"), "", "fault_warn.ko")
	require.NoError(t, err)
	assert.Contains(t, m.kernelTaint().KernelString(), "W")
	require.NoError(t, m.Rmmod("fault_warn", false))
	assert.Equal(t, "fault_warn: exit", m.Messages()[len(m.Messages())-1])
	assert.Contains(t, m.Dmesg(), "fault_warn.c:16 fault_warn_init+0x")
}
