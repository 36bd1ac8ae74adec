package session

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/machine"
	"kemu/mmu"
	"kemu/profile"
	"kemu/slab"
)

func newTestSession(t *testing.T) *Session {
	t.Helper()
	prof, err := profile.Default()
	require.NoError(t, err)
	s, err := New(prof, Options{Machine: machine.Options{}})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// run executes lines and returns the last record.
func run(t *testing.T, s *Session, lines ...string) Record {
	t.Helper()
	var rec Record
	for _, l := range lines {
		var ok bool
		rec, ok = s.Exec(l)
		require.True(t, ok, "%q is a command", l)
	}
	return rec
}

// TestCommandStatus checks each command's output and exit status, after the setup commands ran.
func TestCommandStatus(t *testing.T) {
	tests := []struct {
		name   string
		setup  []string
		line   string
		output string
		status int
	}{
		{"insmod ok", nil, "insmod hello.ko", "", 0},
		{"insmod missing file", nil, "insmod nosuch.ko", "insmod: ERROR: could not load module nosuch.ko: No such file or directory\n", 1},
		{"insmod no file", nil, "insmod", "insmod: ERROR: missing filename.\n", 1},
		{"insmod twice", []string{"insmod hello.ko"}, "insmod hello.ko", "insmod: ERROR: could not insert module hello.ko: File exists\n", 1},
		{"insmod unknown symbol", nil, "insmod consumer.ko", "insmod: ERROR: could not insert module consumer.ko: Unknown symbol in module\n", 1},
		{"insmod init fails", nil, "insmod fault_enodev.ko", "insmod: ERROR: could not insert module fault_enodev.ko: No such device\n", 1},
		{"insmod oops", nil, "insmod fault_null.ko", "Killed\n", 137},
		{"rmmod not loaded", nil, "rmmod hello", "rmmod: ERROR: Module hello is not currently loaded\n", 1},
		{"rmmod holders", []string{"insmod producer.ko", "insmod consumer.ko"}, "rmmod producer", "rmmod: ERROR: Module producer is in use by: consumer\n", 1},
		{"rmmod forced holders", []string{"insmod producer.ko", "insmod consumer.ko"}, "rmmod -f producer", "rmmod: ERROR: could not remove module producer: Resource temporarily unavailable\n", 1},
		// init never finished, so the reference held during init is still taken (module_unload_init).
		{"rmmod coming", []string{"insmod fault_null.ko"}, "rmmod fault_null", "rmmod: ERROR: Module fault_null is in use\n", 1},
		{"rmmod -f coming", []string{"insmod fault_null.ko"}, "rmmod -f fault_null", "rmmod: ERROR: could not remove module fault_null: Device or resource busy\n", 1},
		{"rmmod by file name", []string{"insmod hello.ko"}, "rmmod hello.ko", "", 0},
		{"rmmod several, one fails", []string{"insmod hello.ko"}, "rmmod nosuch hello", "rmmod: ERROR: Module nosuch is not currently loaded\n", 1},
		{"rmmod no name", nil, "rmmod", "rmmod: ERROR: missing module name.\n", 1},
		{"lsmod args", nil, "lsmod x", "Usage: lsmod\n", 1},
		{"modprobe not found", nil, "modprobe nosuch", "modprobe: FATAL: Module nosuch not found in directory /lib/modules/6.1.0-56-amd64\n", 1},
		{"modprobe quiet", nil, "modprobe -q nosuch", "", 1},
		{"modprobe unknown symbol", nil, "modprobe proprietary", "modprobe: ERROR: could not insert 'proprietary': Unknown symbol in module, or unknown parameter (see dmesg)\n", 1},
		{"modprobe init error", nil, "modprobe fault_enodev", "modprobe: ERROR: could not insert 'fault_enodev': No such device\n", 1},
		{"modprobe -r in use", []string{"modprobe consumer"}, "modprobe -r producer", "modprobe: FATAL: Module producer is in use.\n", 1},
		{"modprobe -r unknown", nil, "modprobe -r nosuch", "modprobe: FATAL: Module nosuch not found.\n", 1},
		{"modprobe -r not loaded", nil, "modprobe -r hello", "", 0},
		{"modprobe no args", nil, "modprobe", "modprobe: ERROR: missing parameters. See -h.\n", 1},
		{"modprobe missing path", nil, "modprobe ./nosuch.ko", "modprobe: FATAL: Failed to get module from path ./nosuch.ko: No such file or directory\n", 1},
		{"modprobe path", nil, "modprobe -v ../testdata/modules/hello.ko", "modprobe: FATAL: Module ../testdata/modules/hello.ko not found in directory /lib/modules/6.1.0-56-amd64\n", 1},
		{"modprobe relative path", nil, "modprobe -v ./../testdata/modules/hello.ko count=1", "insmod ./../testdata/modules/hello.ko count=1\n", 0},
		{"modprobe path, unknown symbol", nil, "modprobe ./../testdata/modules/consumer.ko", "modprobe: ERROR: could not insert 'consumer': Unknown symbol in module, or unknown parameter (see dmesg)\n", 1},
		{"cat missing", nil, "cat /proc/nosuch", "cat: /proc/nosuch: No such file or directory\n", 1},
		{"echo", nil, `echo -n "a  b" c`, "a  b c", 0},
		{"echo to a missing file", nil, "echo 1 > /dev/nosuch", "bash: /dev/nosuch: No such file or directory\n", 1},
		{"echo missing target", nil, "echo 1 >", "bash: syntax error near unexpected token `newline'\n", 2},
		{"sleep bad", nil, "sleep soon", "sleep: invalid time interval 'soon'\n", 1},
		{"unknown command", nil, "reboot", "reboot: command not found\n", 127},
		{"unterminated quote", nil, `echo "abc`, "kemu: unterminated double quote\n", 2},
		{"dmesg bad option", nil, "dmesg -x", "dmesg: invalid option -- 'x'\n", 1},
		{"exec open", nil, "exec 3< /proc/modules", "", 0},
		{"exec missing", nil, "exec 3<> /dev/nosuch", "bash: /dev/nosuch: No such file or directory\n", 1},
		{"exec close unopened", nil, "exec 4>&-", "", 0},
		{"exec no redirection", nil, "exec ls", "usage: exec N< PATH | exec N> PATH | exec N<> PATH | exec N>&-\n", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestSession(t)
			for _, l := range tt.setup {
				run(t, s, l)
			}
			rec := run(t, s, tt.line)
			assert.Equal(t, tt.output, rec.Output)
			assert.Equal(t, tt.status, rec.Status)
		})
	}
}

func TestHistory(t *testing.T) {
	s := newTestSession(t)
	run(t, s, "lsmod")
	s.Exec("# not a command")
	rec := run(t, s, "rmmod x", "history")
	assert.Equal(t, "    1  lsmod\n    2  rmmod x\n    3  history\n", rec.Output)
}

func TestCommentsAndBlankLinesAreNotCommands(t *testing.T) {
	s := newTestSession(t)
	for _, l := range []string{"", "   ", "# insmod hello.ko", "\t# x"} {
		_, ok := s.Exec(l)
		assert.False(t, ok, "%q", l)
	}
	assert.Empty(t, s.Records())
}

func TestDmesgClear(t *testing.T) {
	s := newTestSession(t)
	first := run(t, s, "insmod hello.ko", "dmesg -c")
	assert.Contains(t, first.Output, "hello: hello, world\n")
	assert.Empty(t, run(t, s, "dmesg").Output)
	rec := run(t, s, "rmmod hello", "dmesg")
	assert.Regexp(t, `^\[ *\d+\.\d{6}\] hello: goodbye, world\n$`, rec.Output)
	run(t, s, "dmesg -C")
	assert.Empty(t, run(t, s, "dmesg").Output)
}

func TestProcFiles(t *testing.T) {
	s := newTestSession(t)
	run(t, s, "insmod producer.ko")
	mods := run(t, s, "cat /proc/modules")
	assert.Regexp(t, `^producer 16384 0 - Live 0x[0-9a-f]{16} \(OE\)\n$`, mods.Output)
	syms := run(t, s, "cat /proc/kallsyms")
	assert.Equal(t, 0, syms.Status)
	assert.Regexp(t, `(?m)^ffffffff[0-9a-f]{8} T _text$`, syms.Output)
	assert.Regexp(t, `(?m)^[0-9a-f]{16} T producer_add\t\[producer\]$`, syms.Output)
}

func TestScriptStatusAndErrexit(t *testing.T) {
	script := "insmod nosuch.ko\ninsmod hello.ko\n"
	s := newTestSession(t)
	var out bytes.Buffer
	status, err := s.Script(strings.NewReader(script), &out, false)
	require.NoError(t, err)
	assert.Equal(t, 0, status, "sh: the last command's status")
	assert.Equal(t, "# insmod nosuch.ko\ninsmod: ERROR: could not load module nosuch.ko: No such file or directory\n# insmod hello.ko\n", out.String())

	s = newTestSession(t)
	out.Reset()
	status, err = s.Script(strings.NewReader(script), &out, true)
	require.NoError(t, err)
	assert.Equal(t, 1, status)
	assert.Len(t, s.Records(), 1, "sh -e stops at the first failure")
}

func TestReport(t *testing.T) {
	s := newTestSession(t)
	run(t, s, "insmod producer.ko", "insmod consumer.ko", "insmod fault_null.ko", "insmod fault_warn.ko", "rmmod consumer")
	r := s.Report()
	assert.Equal(t, "6.1.0-56-amd64", r.Kernel)
	assert.Len(t, r.Commands, 5)
	assert.Equal(t, []string{"consumer"}, r.Unloaded)
	names := map[string]string{}
	for _, m := range r.Modules {
		names[m.Name] = m.State
	}
	assert.Equal(t, map[string]string{"producer": "Live", "fault_null": "Loading", "fault_warn": "Live"}, names)
	require.Len(t, r.Problems, 2)
	assert.Equal(t, "oops", r.Problems[0].Kind)
	assert.Equal(t, "insmod fault_null.ko", r.Problems[0].Command)
	assert.Equal(t, "BUG: kernel NULL pointer dereference, address: 0000000000000008", r.Problems[0].Title)
	assert.Regexp(t, `^Oops: 0002 \[#1\]`, r.Problems[0].Marker)
	assert.Regexp(t, `^RIP: 0010:fault_null_init\+0x[0-9a-f]+/0x[0-9a-f]+ \[fault_null\]$`, r.Problems[0].RIP)
	assert.Equal(t, "warning", r.Problems[1].Kind)
	const taintDie, taintWarn = 1 << 7, 1 << 9
	assert.Equal(t, uint32(taintDie|taintWarn), r.Tainted&(taintDie|taintWarn))
	assert.Regexp(t, `^Tainted: .*D.*W`, r.Taint)
	assert.NotEmpty(t, r.Calls)
	assert.Empty(t, r.Leaks)
}

// The report lists the kernel threads modules started and have not stopped.
func TestReportThreads(t *testing.T) {
	s := newTestSession(t)
	run(t, s, "insmod kthreads.ko", "insmod kthread_leak.ko")
	var comms []string
	for _, th := range s.Report().Threads {
		comms = append(comms, th.Comm+" "+th.Module)
	}
	assert.Equal(t, []string{"kemu_worker kthreads", "kemu_napper/0 kthreads", "kemu_leaker kthread_leak"}, comms)
	run(t, s, "rmmod kthreads")
	require.Len(t, s.Report().Threads, 1, "kthreads stopped its threads")
	assert.Equal(t, "kemu_leaker", s.Report().Threads[0].Comm)
}

// Kernel objects a module got from the kernel (class, device, proc entry) leave the report when
// the module destroys them.
func TestReportKernelObjectsReleased(t *testing.T) {
	s := newTestSession(t)
	run(t, s, "insmod chardev.ko", "insmod procfs.ko")
	require.Len(t, s.Report().KernelObjects, 3)
	run(t, s, "rmmod procfs")
	objs := s.Report().KernelObjects
	require.Len(t, objs, 2)
	assert.Regexp(t, `^class@0x[0-9a-f]+ from chardev:chardev_init\+0x[0-9a-f]+$`, objs[0])
	run(t, s, "rmmod chardev")
	assert.Empty(t, s.Report().KernelObjects)
	assert.Empty(t, s.Report().Leaks)
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		line string
		want []string
	}{
		{"insmod  hello.ko\tcount=2", []string{"insmod", "hello.ko", "count=2"}},
		{`insmod hello.ko whom="two words"`, []string{"insmod", "hello.ko", "whom=two words"}},
		{`echo 'a > b' > /dev/x`, []string{"echo", "a > b", redirect, "/dev/x"}},
		{`echo a>/dev/x`, []string{"echo", "a", redirect, "/dev/x"}},
		{`echo "q\"uote" back\ slash`, []string{"echo", `q"uote`, "back slash"}},
		{`echo ''`, []string{"echo", ""}},
	}
	for _, tt := range tests {
		got, err := splitWords(tt.line)
		require.NoError(t, err, tt.line)
		assert.Equal(t, tt.want, got, tt.line)
	}
}

func TestJoinParams(t *testing.T) {
	assert.Equal(t, `a=1 whom="two words" tag="x y" b`, joinParams([]string{"a=1", "whom=two words", `tag="x y"`, "b"}))
}

func TestParseIoctlCmd(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
	}{
		{"_IOR('k',1,int)", 0x80046b01},
		{"_IO(k,2)", 0x6b02},
		{"_IOW('k', 3, int)", 0x40046b03},
		{"_IOWR(k,4,8)", 0xc0086b04},
		{"0x5401", 0x5401},
		{"21505", 0x5401},
	}
	for _, tt := range tests {
		got, err := parseIoctlCmd(tt.in)
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
	for _, bad := range []string{"_IOR(k,1)", "_IO(k,1,int)", "_IOR(k,1,struct foo)", "_IOR(k,300,int)", "x"} {
		_, err := parseIoctlCmd(bad)
		assert.Error(t, err, bad)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]uint64{"1s": 1e9, "250ms": 250e6, "2": 2e9, "0.5": 5e8} {
		d, err := parseDuration(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, uint64(d), in)
	}
	for _, bad := range []string{"-1", "-1s", "soon", ""} {
		_, err := parseDuration(bad)
		assert.Error(t, err, bad)
	}
}

// TestHeapAndLeaks: chardev's two kzalloc'd buffers are live while it is loaded and freed by its
// exit, so nothing leaks; the class and device objects the kernel created for it are not counted.
func TestHeapAndLeaks(t *testing.T) {
	s := newTestSession(t)
	run(t, s, "insmod chardev.ko")
	live := s.Report().HeapLive
	sizes := map[uint64]string{}
	for _, l := range live {
		assert.Equal(t, "chardev", l.Module)
		sizes[l.Size] = l.Caller
	}
	assert.Len(t, live, 2, "%+v", live)
	assert.Regexp(t, `^chardev:chardev_init\+0x[0-9a-f]+$`, sizes[4096])
	assert.Regexp(t, `^chardev:chardev_init\+0x[0-9a-f]+$`, sizes[256])
	assert.NotEmpty(t, s.Report().KernelObjects)
	assert.Subset(t, s.Report().Files, []string{"/dev/kemu_chardev", "/dev/kemu_misc"})

	run(t, s, "rmmod chardev")
	r := s.Report()
	assert.Empty(t, r.Leaks)
	assert.Empty(t, r.HeapLive)
}

// TestModuleHeapFilter: only allocations made from module code count, of the module asked for,
// minus the kernel's objects.
func TestModuleHeapFilter(t *testing.T) {
	objs := []slab.Allocation{
		{Addr: 0x1000, Requested: 10, Cache: "kmalloc-16", Caller: mmu.Caller{Addr: 0xffffffffc0001234, Label: "leaky:leaky_init+0x1a"}},
		{Addr: 0x2000, Requested: 20, Cache: "kmalloc-32", Caller: mmu.Caller{Label: "kemu"}},
		{Addr: 0x3000, Requested: 30, Cache: "kmalloc-32", Caller: mmu.Caller{Addr: 0xffffffffc0005678, Label: "other:other_init+0x2"}},
		{Addr: 0x4000, Requested: 40, Cache: "kmalloc-64", Caller: mmu.Caller{Addr: 0xffffffffc0001240, Label: "leaky:leaky_init+0x26"}},
		{Addr: 0x5000, Requested: 50, Cache: "kmalloc-64", Caller: mmu.Caller{Label: "module parameter"}},
	}
	skip := map[uint64]bool{0x4000: true}
	assert.Equal(t, []Leak{{Module: "leaky", Addr: 0x1000, Size: 10, Cache: "kmalloc-16", Caller: "leaky:leaky_init+0x1a"}},
		moduleHeap(objs, skip, "leaky"))
	assert.Len(t, moduleHeap(objs, skip, ""), 2)
}

// TestExecKeepsFilesOpen: a descriptor opened with exec stays open across commands until closed.
func TestExecKeepsFilesOpen(t *testing.T) {
	s := newTestSession(t)
	run(t, s, "exec 3< /proc/modules", "exec 5</proc/kallsyms")
	assert.Len(t, s.fds, 2)
	run(t, s, "exec 3<&-")
	assert.Len(t, s.fds, 1)
	assert.Contains(t, s.fds, 5)
	require.NoError(t, s.Close())
	assert.Empty(t, s.fds)
}

// TestProblemKinds: each kind of report the kernel logs is found with its first line and RIP.
func TestProblemKinds(t *testing.T) {
	tests := []struct {
		fixture, kind, title, rip string
	}{
		{"fault_null", "oops", "BUG: kernel NULL pointer dereference, address: 0000000000000008", "fault_null_init"},
		{"fault_bug", "oops", "kernel BUG at /work/main/testdata/modules/fault_bug.c:19!", "fault_bug_init"},
		{"fault_recursion", "oops", "BUG: TASK stack guard page was hit at", "fault_recurse"},
		{"fault_warn", "warning", "WARNING: CPU: 0 PID: 1000 at /work/main/testdata/modules/fault_warn.c:16", "fault_warn_init"},
		{"fault_loop", "soft_lockup", "watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [insmod:1000]", "fault_loop_init"},
	}
	prof, err := profile.Default()
	require.NoError(t, err)
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			s, err := New(prof, Options{Machine: machine.Options{Watchdog: 200 * time.Millisecond}})
			require.NoError(t, err)
			defer s.Close()
			run(t, s, "insmod "+tt.fixture+".ko")
			problems := s.Report().Problems
			require.Len(t, problems, 1)
			p := problems[0]
			assert.Equal(t, tt.kind, p.Kind)
			assert.Equal(t, "insmod "+tt.fixture+".ko", p.Command)
			assert.True(t, strings.HasPrefix(p.Title, tt.title), p.Title)
			assert.Regexp(t, `^RIP: 0010:`+tt.rip+`\+0x[0-9a-f]+/0x[0-9a-f]+ \[`+tt.fixture+`\]$`, p.RIP)
		})
	}
}

// TestReportTLB: with a TLB model attached, the report accounts the module's guest code.
func TestReportTLB(t *testing.T) {
	prof, err := profile.Default()
	require.NoError(t, err)
	s, err := New(prof, Options{TLB: "skylake"})
	require.NoError(t, err)
	defer s.Close()
	run(t, s, "insmod compute.ko")
	r := s.Report()
	require.NotNil(t, r.TLB)
	assert.NotContains(t, r.NotObserved, notObservedTLB)
	var compute *machine.TagResult
	for i, row := range r.TLB.Tags {
		if row.Module == "compute" {
			compute = &r.TLB.Tags[i]
		}
	}
	require.NotNil(t, compute, "%+v", r.TLB.Tags)
	assert.Positive(t, compute.Instructions)
	assert.Positive(t, compute.Fetches())

	_, err = New(prof, Options{TLB: "nosuch"})
	assert.Error(t, err)
}

// FuzzSplitWords: no command line makes the parser panic, and a line of printable ASCII without
// quotes, backslashes or > splits at blanks exactly as strings.Fields does.
func FuzzSplitWords(f *testing.F) {
	for _, seed := range []string{`insmod hello.ko whom="a b"`, `echo 'x' > /dev/y`, `a\ b "c\"d"`, `"`, `'`, `\`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		words, err := splitWords(line)
		if err != nil {
			return
		}
		if !strings.ContainsAny(line, "'\"\\>") && printableASCII(line) {
			assert.Equal(t, strings.Fields(strings.ReplaceAll(line, "\t", " ")), nonNilWords(words))
		}
	})
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < ' ' || s[i] > '~') && s[i] != '\t' {
			return false
		}
	}
	return true
}

func nonNilWords(w []string) []string {
	if w == nil {
		return []string{}
	}
	return w
}
