package oops

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func parseFile(t *testing.T, name string) []*Report {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	require.NoError(t, err)
	defer f.Close()
	reports, err := Parse(f)
	require.NoError(t, err)
	return reports
}

func frameNames(frames []Frame) []string {
	var names []string
	for _, f := range frames {
		s := f.Symbol
		if f.Unreliable {
			s = "? " + s
		}
		names = append(names, s)
	}
	return names
}

func u64(v uint64) *uint64 { return &v }

func TestParseReports(t *testing.T) {
	tests := []struct {
		file      string
		title     string
		kind      Kind
		rip       Frame // Symbol, Offset, Size, Module, Address checked
		fault     *uint64
		bugAt     string
		comm      string
		pid       int
		version   string
		taint     string
		trace     []string
		modules   int
		truncated bool
	}{
		{
			file: "null6.txt", title: "BUG: kernel NULL pointer dereference, address: 0000000000000000", kind: KindNullDeref,
			rip: Frame{Symbol: "fault_null_init", Offset: 0x11, Size: 0x30, Module: "fault_null"}, fault: u64(0),
			comm: "insmod", pid: 1234, version: "6.1.0-13-amd64", taint: "G           OE",
			trace: []string{"? __die_body.cold", "? page_fault_oops", "? exc_page_fault", "? asm_exc_page_fault",
				"? fault_null_exit", "do_one_initcall", "do_init_module", "__do_sys_finit_module", "do_syscall_64",
				"entry_SYSCALL_64_after_hwframe"},
			modules: 10,
		},
		{
			file: "null4.txt", title: "BUG: unable to handle kernel NULL pointer dereference at 0000000000000008", kind: KindNullDeref,
			rip:   Frame{Symbol: "hello_write", Offset: 0x15, Size: 0x40, Module: "hello", Address: 0xffffffffa0123045, HasAddress: true},
			fault: u64(8), comm: "bash", pid: 2211, version: "4.9.0-8-amd64", taint: "G           O",
			trace:   []string{"? __vfs_write", "? vfs_write", "? SyS_write", "? do_syscall_64", "? entry_SYSCALL64_slow_path"},
			modules: 6,
		},
		{
			file: "warn6.txt", title: "WARNING: CPU: 3 PID: 777 at /build/fault_warn/fault_warn.c:14 fault_warn_init+0x15/0x30 [fault_warn]",
			kind: KindWarning, rip: Frame{Symbol: "fault_warn_init", Offset: 0x15, Size: 0x30, Module: "fault_warn"},
			bugAt: "/build/fault_warn/fault_warn.c:14", comm: "insmod", pid: 777, version: "6.1.0-13-amd64", taint: "G           OE",
			trace: []string{"? __warn", "? fault_warn_init", "? report_bug", "do_one_initcall", "do_init_module"}, modules: 2,
		},
		{
			file: "bug6.txt", title: "kernel BUG at /build/fault_bug/fault_bug.c:9!", kind: KindBug,
			rip:   Frame{Symbol: "fault_bug_init", Offset: 4, Size: 0x10, Module: "fault_bug"},
			bugAt: "/build/fault_bug/fault_bug.c:9", comm: "insmod", pid: 901, version: "6.1.0-13-amd64", taint: "G           OE",
			trace: []string{"do_one_initcall"}, modules: 1,
		},
		{
			file: "gpf6.txt", title: "general protection fault, probably for non-canonical address 0xdead000000000100: 0000 [#1] PREEMPT SMP NOPTI",
			kind: KindGPF, rip: Frame{Symbol: "list_del_entry", Offset: 9, Size: 0x30}, fault: u64(0xdead000000000100),
			comm: "kworker/2:1", pid: 55, version: "6.1.0-13-amd64",
			trace: []string{"process_one_work", "worker_thread", "? rescuer_thread", "kthread", "ret_from_fork"},
		},
		{
			file: "lockup6.txt", title: "watchdog: BUG: soft lockup - CPU#1 stuck for 26s! [insmod:3012]", kind: KindSoftLockup,
			rip:  Frame{Symbol: "spin_init", Offset: 8, Size: 0x20, Module: "spin"},
			comm: "insmod", pid: 3012, version: "6.1.0-13-amd64", taint: "G           OE",
			trace: []string{"? watchdog_timer_fn", "? __hrtimer_run_queues", "? spin_exit", "do_one_initcall"}, modules: 1,
		},
		{
			file: "kasan6.txt", title: "BUG: KASAN: slab-out-of-bounds in oob_init+0x3c/0x60 [oob]", kind: KindKASAN,
			fault: u64(0xffff888005a2c0c8), comm: "insmod", pid: 170, version: "6.1.0", taint: "G           O",
			trace: []string{"dump_stack_lvl", "print_report", "kasan_report", "oob_init", "do_one_initcall"},
		},
		{
			file: "interleaved.txt", title: "BUG: unable to handle page fault for address: ffffffffc0abc000", kind: KindPageFault,
			rip: Frame{Symbol: "hello_read", Offset: 0x22, Size: 0x50, Module: "hello"}, fault: u64(0xffffffffc0abc000),
			comm: "cat", pid: 1234, version: "6.1.0-13-amd64", taint: "G           OE",
			trace: []string{"vfs_read", "ksys_read"},
		},
		{
			file: "wrapped.txt", title: "BUG: kernel NULL pointer dereference, address: 0000000000000010", kind: KindNullDeref,
			rip: Frame{Symbol: "fault_null_init", Offset: 0x11, Size: 0x30, Module: "fault_null"}, fault: u64(0x10),
			comm: "insmod", pid: 4242, version: "6.1.0-13-amd64", taint: "G           OE",
			trace: []string{"do_one_initcall"}, modules: 11,
		},
		{
			file: "truncated.txt", title: "BUG: unable to handle page fault for address: ffffffffc0abc000", kind: KindPageFault,
			rip: Frame{Symbol: "hello_read", Offset: 0x22, Size: 0x50, Module: "hello"}, fault: u64(0xffffffffc0abc000),
			comm: "cat", pid: 1234, version: "6.1.0-13-amd64", taint: "G           OE",
			trace: []string{"vfs_read"}, truncated: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			reports := parseFile(t, tt.file)
			require.Len(t, reports, 1)
			r := reports[0]
			assert.Equal(t, tt.title, r.Title)
			assert.Equal(t, tt.kind, r.Kind)
			if tt.rip.Symbol == "" {
				assert.Nil(t, r.RIP)
			} else if assert.NotNil(t, r.RIP) {
				want := tt.rip
				want.IsIP = true
				assert.Equal(t, want, *r.RIP)
			}
			assert.Equal(t, tt.fault, r.FaultAddress)
			assert.Equal(t, tt.bugAt, r.BugAt)
			assert.Equal(t, tt.comm, r.Comm)
			if assert.NotNil(t, r.PID) {
				assert.Equal(t, tt.pid, *r.PID)
			}
			assert.Equal(t, tt.version, r.Version)
			assert.Equal(t, tt.taint, r.Taint)
			assert.Equal(t, tt.taint != "", r.Tainted)
			assert.Equal(t, tt.trace, frameNames(r.Trace))
			assert.Len(t, r.Modules, tt.modules)
			assert.Equal(t, tt.truncated, r.Truncated)
		})
	}
}

func TestParseDetails(t *testing.T) {
	t.Run("6.x registers, user block ignored, modules and flags", func(t *testing.T) {
		r := parseFile(t, "null6.txt")[0]
		assert.Equal(t, uint64(0xffffb5a1c0657c90), r.Registers["RSP"])
		assert.Equal(t, uint64(0), r.Registers["RAX"], "the user-mode RAX at the bottom of the stack must not win")
		assert.Equal(t, uint64(0xffffffffc0a0e024), r.Registers["RDI"])
		assert.Equal(t, uint64(0x3706e0), r.Registers["CR4"])
		assert.Equal(t, uint64(0x10246), r.Registers["EFLAGS"])
		assert.Nil(t, r.Code, "kernel Code: was unreadable; the user Code: line is not the kernel's")
		assert.Equal(t, Module{Name: "fault_null", Flags: "OE+"}, r.Modules[0])
		assert.Equal(t, "fault_warn", r.LastUnloaded)
		assert.Equal(t, "Oops: 0002 [#1] PREEMPT SMP NOPTI", r.Oops)
		assert.Equal(t, "TASK", r.Trace[0].Context)
		assert.Equal(t, 2, r.FirstLine)
		assert.Equal(t, 39, r.LastLine)
		assert.False(t, r.Truncated)
	})
	t.Run("4.x code after the trace", func(t *testing.T) {
		r := parseFile(t, "null4.txt")[0]
		require.NotNil(t, r.Code)
		assert.Equal(t, 42, r.Code.Trap)
		assert.Equal(t, byte(0x8b), r.Code.Bytes[r.Code.Trap])
		assert.Equal(t, uint64(0xffffffff8120a2c7), r.Trace[0].Address)
	})
	t.Run("BUG with panic after it is one report", func(t *testing.T) {
		r := parseFile(t, "bug6.txt")[0]
		assert.Equal(t, "Fatal exception", r.Panic)
		assert.Equal(t, "invalid opcode: 0000 [#1] PREEMPT SMP NOPTI", r.Oops)
		assert.Equal(t, 1, r.FirstLine, "the cut-here line starts the report")
		require.NotNil(t, r.Code)
		assert.Equal(t, []byte{0x0f, 0x0b}, r.Code.Bytes[r.Code.Trap:r.Code.Trap+2])
	})
	t.Run("soft lockup contexts", func(t *testing.T) {
		r := parseFile(t, "lockup6.txt")[0]
		assert.Equal(t, "IRQ", r.Trace[0].Context)
		assert.Equal(t, "TASK", r.Trace[2].Context)
		assert.Equal(t, 1, *r.CPU)
	})
	t.Run("KASAN extra stacks", func(t *testing.T) {
		r := parseFile(t, "kasan6.txt")[0]
		require.Len(t, r.Stacks, 1)
		assert.Equal(t, "Allocated by task 170", r.Stacks[0].Title)
		assert.Equal(t, []string{"kasan_save_stack", "__kasan_kmalloc", "oob_init", "do_one_initcall"}, frameNames(r.Stacks[0].Frames))
		assert.False(t, r.Truncated)
	})
	t.Run("wrapped module list is rejoined", func(t *testing.T) {
		r := parseFile(t, "wrapped.txt")[0]
		assert.Equal(t, "jbd2", r.Modules[9].Name)
		assert.Equal(t, "#1  Debian 6.1.55-1", r.Build)
	})
}

func TestParseMany(t *testing.T) {
	var all strings.Builder
	for _, f := range []string{"warn6.txt", "null6.txt", "gpf6.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		require.NoError(t, err)
		all.Write(b)
		all.WriteString("[ 2000.000000] some unrelated line\n")
	}
	reports := ParseString(all.String())
	var kinds []Kind
	for _, r := range reports {
		kinds = append(kinds, r.Kind)
	}
	assert.Equal(t, []Kind{KindWarning, KindNullDeref, KindGPF}, kinds)
}

func TestParsePrefixes(t *testing.T) {
	body := []string{
		"BUG: kernel NULL pointer dereference, address: 0000000000000000",
		"Oops: 0002 [#1] PREEMPT SMP NOPTI",
		"RIP: 0010:hello_init+0x1c/0x30 [hello]",
		"Call Trace:",
		" <TASK>",
		" do_one_initcall+0x56/0x220",
		" </TASK>",
		"---[ end trace 0000000000000000 ]---",
	}
	prefixes := map[string]string{
		"plain dmesg -t": "",
		"timestamps":     "[   12.345678] ",
		"level and time": "<4>[   12.345678] ",
		"caller id":      "[   12.345678][ T123] ",
		"syslog":         "Jan  1 00:00:00 host kernel: [   12.345678] ",
		"syslog no time": "Jan  1 00:00:00 host kernel: ",
		"journal iso":    "2024-01-01T00:00:00.123456+00:00 host kernel: ",
		"journal -k cat": "kernel: ",
		"console level":  "<4>",
	}
	for name, p := range prefixes {
		t.Run(name, func(t *testing.T) {
			var b strings.Builder
			for _, l := range body {
				b.WriteString(p + l + "\n")
			}
			reports := ParseString(b.String())
			require.Len(t, reports, 1)
			r := reports[0]
			assert.Equal(t, body[0], r.Title)
			require.NotNil(t, r.RIP)
			assert.Equal(t, "hello_init", r.RIP.Symbol)
			assert.Equal(t, []string{"do_one_initcall"}, frameNames(r.Trace))
			assert.False(t, r.Truncated)
		})
	}
}

func TestParseNoReport(t *testing.T) {
	for name, in := range map[string]string{
		"empty":   "",
		"boot":    "[    0.000000] Linux version 6.1.0-13-amd64\n[    0.1] random: crng init done\n",
		"binary":  "\x7fELF\x02\x01\x01\x00\x00\x00\xff\xfe\n\x00\x00\x00",
		"huge":    strings.Repeat("A", 10<<20),
		"partial": "RIP: 0010:hello_init+0x1c/0x30 [hello]\nCall Trace:\n",
	} {
		t.Run(name, func(t *testing.T) {
			assert.Empty(t, ParseString(in))
		})
	}
}

func TestParseFrame(t *testing.T) {
	tests := []struct {
		in   string
		want Frame
		ok   bool
	}{
		{"hello_init+0x1c/0x30 [hello]", Frame{Symbol: "hello_init", Offset: 0x1c, Size: 0x30, Module: "hello"}, true},
		{"? foo.cold+0x0/0x10", Frame{Symbol: "foo.cold", Size: 0x10, Unreliable: true}, true},
		{"bar.isra.0+0x5/0x80 [my-mod 4f2c1a0b9e]", Frame{Symbol: "bar.isra.0", Offset: 5, Size: 0x80, Module: "my-mod"}, true},
		{"[<ffffffff8120a2c7>] ? __vfs_write+0x37/0x150", Frame{Symbol: "__vfs_write", Offset: 0x37, Size: 0x150, Address: 0xffffffff8120a2c7, HasAddress: true, Unreliable: true}, true},
		{"? 0xffffffffc0a0001c", Frame{Address: 0xffffffffc0a0001c, HasAddress: true, Unreliable: true}, true},
		{"0x0", Frame{HasAddress: true}, true},
		{"Modules linked in: x", Frame{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseFrame(tt.in)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

func FuzzParse(f *testing.F) {
	entries, _ := os.ReadDir("testdata")
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join("testdata", e.Name())); err == nil && strings.HasSuffix(e.Name(), ".txt") {
			f.Add(b)
		}
	}
	f.Add([]byte("Code: <0f> 0b\nRIP: 0010:[<zz>]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		reports, err := Parse(strings.NewReader(string(data)))
		require.NoError(t, err)
		sym := NewSymbolizer() // no sources: still disassembles whatever Code: bytes the input has
		for _, r := range reports {
			sym.Symbolize(r)
			require.NotEmpty(t, r.Title)
			require.LessOrEqual(t, r.FirstLine, r.LastLine)
			if r.Code != nil {
				require.Less(t, r.Code.Trap, len(r.Code.Bytes))
			}
		}
		require.NoError(t, Format(io.Discard, reports))
	})
}

func TestParseMore(t *testing.T) {
	tests := []struct {
		name   string
		log    string
		titles []string
		kinds  []Kind
		check  func(t *testing.T, rs []*Report)
	}{
		{
			name: "standalone panic",
			log: "[ 5.0] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\n" +
				"[ 5.1] CPU: 0 PID: 1 Comm: swapper/0 Not tainted 6.1.0-13-amd64 #1  Debian 6.1.55-1\n" +
				"[ 5.2] Call Trace:\n[ 5.3]  <TASK>\n[ 5.4]  dump_stack_lvl+0x44/0x5c\n[ 5.5]  panic+0x118/0x2ed\n[ 5.6]  </TASK>\n",
			titles: []string{"Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"},
			kinds:  []Kind{KindPanic},
			check: func(t *testing.T, rs []*Report) {
				assert.Equal(t, "VFS: Unable to mount root fs on unknown-block(0,0)", rs[0].Panic)
				assert.Equal(t, []string{"dump_stack_lvl", "panic"}, frameNames(rs[0].Trace))
			},
		},
		{
			name: "4.x general protection fault",
			log: "[ 9.0] general protection fault: 0000 [#1] SMP\n" +
				"[ 9.1] RIP: 0010:[<ffffffff8131d5b5>]  [<ffffffff8131d5b5>] list_del+0x9/0x30\n" +
				"[ 9.2] Call Trace:\n[ 9.3]  [<ffffffff81090c81>] process_one_work+0x141/0x380\n[ 9.4] ---[ end trace 1 ]---\n",
			titles: []string{"general protection fault: 0000 [#1] SMP"},
			kinds:  []Kind{KindGPF},
			check: func(t *testing.T, rs []*Report) {
				assert.Equal(t, "general protection fault: 0000 [#1] SMP", rs[0].Oops)
				assert.Nil(t, rs[0].FaultAddress)
				assert.Equal(t, uint64(0xffffffff8131d5b5), rs[0].RIP.Address)
				assert.Equal(t, uint64(0xffffffff81090c81), rs[0].Trace[0].Address)
			},
		},
		{
			name: "sleeping in atomic, then an oops without its header",
			log: "BUG: sleeping function called from invalid context at mm/slab.h:723\n" +
				"Call Trace:\n dump_stack_lvl+0x44/0x5c\n __might_resched.cold+0xcc/0xdd\n" +
				"Oops: 0000 [#2] SMP\nRIP: 0010:foo+0x1/0x2 [bar]\nCall Trace:\n baz+0x3/0x4\n---[ end trace 2 ]---\n",
			titles: []string{"BUG: sleeping function called from invalid context at mm/slab.h:723", "Oops: 0000 [#2] SMP"},
			kinds:  []Kind{KindBug, KindOops},
		},
		{
			name: "two CPUs oopsing at once, told apart by caller id",
			log: "[ 1.0][ T10] BUG: kernel NULL pointer dereference, address: 0000000000000000\n" +
				"[ 1.0][ T20] BUG: unable to handle page fault for address: ffffffffc0000000\n" +
				"[ 1.1][ T20] RIP: 0010:twenty+0x2/0x20 [m]\n" +
				"[ 1.1][ T10] RIP: 0010:ten+0x1/0x10 [m]\n" +
				"[ 1.2][ T10] Call Trace:\n[ 1.2][ T20] Call Trace:\n" +
				"[ 1.3][ T20]  b20+0x1/0x2\n[ 1.3][ T10]  a10+0x1/0x2\n" +
				"[ 1.4][ T10] ---[ end trace 0000000000000000 ]---\n[ 1.4][ T20] ---[ end trace 0000000000000000 ]---\n",
			titles: []string{"BUG: kernel NULL pointer dereference, address: 0000000000000000", "BUG: unable to handle page fault for address: ffffffffc0000000"},
			kinds:  []Kind{KindNullDeref, KindPageFault},
			check: func(t *testing.T, rs []*Report) {
				assert.Equal(t, "ten", rs[0].RIP.Symbol)
				assert.Equal(t, []string{"a10"}, frameNames(rs[0].Trace))
				assert.Equal(t, "twenty", rs[1].RIP.Symbol)
				assert.Equal(t, []string{"b20"}, frameNames(rs[1].Trace))
			},
		},
		{
			name: "unrelated lines inside a report without caller ids",
			log: "BUG: kernel NULL pointer dereference, address: 0000000000000000\n" +
				"e1000e: eth0 NIC Link is Up\nRIP: 0010:ten+0x1/0x10 [m]\nusb 1-1: new high-speed USB device\n" +
				"Call Trace:\n <TASK>\n a10+0x1/0x2\nsystemd[1]: Started Session 3.\n b10+0x1/0x2\n </TASK>\n---[ end trace 0 ]---\n",
			titles: []string{"BUG: kernel NULL pointer dereference, address: 0000000000000000"},
			kinds:  []Kind{KindNullDeref},
			check: func(t *testing.T, rs []*Report) {
				assert.Equal(t, []string{"a10", "b10"}, frameNames(rs[0].Trace))
				assert.False(t, rs[0].Truncated)
			},
		},
		{
			name: "hung task, RCU stall, UBSAN",
			log: "[ 1.0] INFO: task kworker/0:1:42 blocked for more than 120 seconds.\n[ 1.1] Call Trace:\n[ 1.2]  schedule+0x1/0x2\n" +
				"[ 2.0] rcu: INFO: rcu_preempt self-detected stall on CPU\n[ 2.1] RIP: 0010:spin+0x1/0x2 [m]\n" +
				"[ 3.0] UBSAN: array-index-out-of-bounds in drivers/x/y.c:12:5\n[ 3.1] Call Trace:\n[ 3.2]  f+0x1/0x2\n",
			titles: []string{"INFO: task kworker/0:1:42 blocked for more than 120 seconds.", "rcu: INFO: rcu_preempt self-detected stall on CPU",
				"UBSAN: array-index-out-of-bounds in drivers/x/y.c:12:5"},
			kinds: []Kind{KindHungTask, KindRCUStall, KindUBSAN},
			check: func(t *testing.T, rs []*Report) {
				assert.Equal(t, "kworker/0:1", rs[0].Comm)
				assert.Equal(t, 42, *rs[0].PID)
				assert.False(t, rs[0].Truncated)
				assert.Equal(t, "drivers/x/y.c:12", rs[2].BugAt)
			},
		},
		{
			name: "Code: line wrapped in an unstamped log",
			log: "kernel BUG at lib/x.c:1!\ninvalid opcode: 0000 [#1] SMP\nRIP: 0010:f+0x4/0x10\n" +
				"Code: 90 90 90 90 f3 0f 1e fa\n<0f> 0b c3\nCall Trace:\n g+0x1/0x2\n---[ end trace 0 ]---\n",
			titles: []string{"kernel BUG at lib/x.c:1!"},
			kinds:  []Kind{KindBug},
			check: func(t *testing.T, rs []*Report) {
				require.NotNil(t, rs[0].Code)
				assert.Equal(t, []byte{0x90, 0x90, 0x90, 0x90, 0xf3, 0x0f, 0x1e, 0xfa, 0x0f, 0x0b, 0xc3}, rs[0].Code.Bytes)
				assert.Equal(t, 8, rs[0].Code.Trap)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := ParseString(tt.log)
			var titles []string
			var kinds []Kind
			for _, r := range rs {
				titles, kinds = append(titles, r.Title), append(kinds, r.Kind)
			}
			require.Equal(t, tt.titles, titles)
			assert.Equal(t, tt.kinds, kinds)
			if tt.check != nil {
				tt.check(t, rs)
			}
		})
	}
}
