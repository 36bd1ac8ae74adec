package machine

import (
	"fmt"
	"io"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The files of the user process, driven over the chardev and procfs fixtures
// (testdata/modules/README.md gives their contents and ioctl numbers).

// chardev.c's ioctls: _IOR('k', 1, int), _IO('k', 2), _IOW('k', 3, int), _IOR('k', 4, int).
const (
	iocGetSize  = 2<<30 | 4<<16 | 'k'<<8 | 1
	iocClear    = 'k'<<8 | 2
	iocSetValue = 1<<30 | 4<<16 | 'k'<<8 | 3
	iocGetValue = 2<<30 | 4<<16 | 'k'<<8 | 4
)

// bootWith boots the default profile and loads the named fixtures (skipped under -short).
func bootWith(t *testing.T, names ...string) *Machine {
	t.Helper()
	if testing.Short() {
		t.Skip("boots the full Debian profile")
	}
	m := bootDefault(t, Options{})
	for _, name := range names {
		_, err := m.Insmod(fixture(t, name), "", name+".ko")
		require.NoError(t, err, "insmod %s", name)
	}
	return m
}

// readAll reads f to the end in reads of n bytes.
func readAll(t *testing.T, f *File, n int) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < 1000; i++ {
		chunk, err := f.Read(n)
		if err == io.EOF {
			return b.String()
		}
		require.NoError(t, err)
		require.LessOrEqual(t, len(chunk), n)
		b.Write(chunk)
	}
	t.Fatal("no end of file after 1000 reads")
	return ""
}

// guestStruct is a zeroed kernel allocation the size of the struct.
func guestStruct(t *testing.T, m *Machine, name string) uint64 {
	t.Helper()
	size, ok := m.structSize(name)
	require.True(t, ok, name)
	p, err := m.kernel.kzalloc(size)
	require.NoError(t, err)
	return p
}

// moduleSymbol is the address of a loaded module's own symbol.
func moduleSymbol(t *testing.T, m *Machine, module, name string) uint64 {
	t.Helper()
	mod, ok := m.Registry().Find(module)
	require.True(t, ok, module)
	sym, ok := mod.Lookup(name)
	require.True(t, ok, name)
	return sym.Addr
}

func le32(v int32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }

func TestChardevReadWriteIoctl(t *testing.T) {
	m := bootWith(t, "chardev")
	assert.Subset(t, m.Paths(), []string{"/dev/kemu_chardev", "/dev/kemu_misc", "/proc/devices", "/proc/misc"})

	f, err := m.Open("/dev/kemu_chardev", syscall.O_RDWR)
	require.NoError(t, err)
	n, err := f.Write([]byte("hello, device"))
	require.NoError(t, err)
	assert.Equal(t, 13, n)
	ret, out, err := f.IoctlBuf(iocGetSize, le32(-1))
	require.NoError(t, err)
	assert.Equal(t, int64(0), ret)
	assert.Equal(t, le32(13), out)
	require.NoError(t, f.Close())

	f, err = m.Open("/dev/kemu_chardev", syscall.O_RDONLY)
	require.NoError(t, err)
	assert.Equal(t, "hello, device", readAll(t, f, 4))
	_, err = f.Write([]byte("x"))
	assert.ErrorIs(t, err, syscall.EBADF, "write on a read-only open")

	cases := []struct {
		name  string
		cmd   uint64
		in    int32
		ret   int64
		out   int32
		errno error
	}{
		{"set value", iocSetValue, 42, 0, 42, nil},
		{"get value", iocGetValue, 0, 0, 42, nil},
		{"clear", iocClear, 0, 0, 0, nil},
		{"size after clear", iocGetSize, 7, 0, 0, nil},
		{"unknown command", 'k'<<8 | 99, 0, 0, 0, syscall.ENOTTY},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ret, out, err := f.IoctlBuf(c.cmd, le32(c.in))
			if c.errno != nil {
				assert.ErrorIs(t, err, c.errno)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.ret, ret)
			if c.cmd != iocClear && c.cmd != iocSetValue {
				assert.Equal(t, le32(c.out), out)
			}
		})
	}
	mask, err := f.Poll()
	require.NoError(t, err)
	assert.Equal(t, uint32(defaultPollMask), mask, "no ->poll: DEFAULT_POLLMASK")
	require.NoError(t, f.Close())
	assert.ErrorIs(t, f.Close(), syscall.EBADF)
}

func TestMiscDevice(t *testing.T) {
	m := bootWith(t, "chardev")
	f, err := m.Open("/dev/kemu_misc", syscall.O_RDWR)
	require.NoError(t, err)
	assert.Equal(t, "kemu misc device\n", readAll(t, f, 128))
	require.NoError(t, f.Close())

	f, err = m.Open("/dev/kemu_misc", syscall.O_WRONLY)
	require.NoError(t, err)
	n, err := f.Write([]byte("replaced\n"))
	require.NoError(t, err)
	assert.Equal(t, 9, n)
	require.NoError(t, f.Close())

	f, err = m.Open("/dev/kemu_misc", syscall.O_RDONLY)
	require.NoError(t, err)
	assert.Equal(t, "replaced\n", readAll(t, f, 3))
	require.NoError(t, f.Close())

	misc := readFile(t, m, "/proc/misc")
	assert.Equal(t, fmt.Sprintf("%3d kemu_misc\n", firstDynamicMinor), misc)
}

func readFile(t *testing.T, m *Machine, path string) string {
	t.Helper()
	f, err := m.Open(path, syscall.O_RDONLY)
	require.NoError(t, err)
	defer f.Close()
	return readAll(t, f, 1<<16)
}

func TestProcDevicesListsTheRegion(t *testing.T) {
	m := bootWith(t, "chardev")
	match := regexp.MustCompile(`registered kemu_chardev as (\d+):0`).FindStringSubmatch(m.Dmesg())
	require.NotNil(t, match, m.Dmesg())
	major, _ := strconv.Atoi(match[1])
	want := fmt.Sprintf("Character devices:\n %d misc\n%3d kemu_chardev\n\nBlock devices:\n", miscMajor, major)
	assert.Equal(t, want, readFile(t, m, "/proc/devices"))
	f, err := m.Open("/proc/devices", syscall.O_WRONLY)
	require.NoError(t, err, "root may open it for writing")
	_, err = f.Write([]byte("1"))
	assert.ErrorIs(t, err, syscall.EIO, "no proc_write")
	require.NoError(t, f.Close())
}

func TestOpenDeviceHoldsItsModule(t *testing.T) {
	m := bootWith(t, "chardev")
	mod, ok := m.Registry().Find("chardev")
	require.True(t, ok)
	before := mod.Refcount()
	f, err := m.Open("/dev/kemu_chardev", syscall.O_RDONLY)
	require.NoError(t, err)
	g, err := m.Open("/dev/kemu_misc", syscall.O_RDONLY)
	require.NoError(t, err)
	// chardev: the cdev's owner and the fops' owner (chrdev_open); misc: the fops' owner.
	assert.Equal(t, before+3, mod.Refcount())

	err = m.Rmmod("chardev", false)
	require.Error(t, err)
	assert.ErrorIs(t, err, syscall.EWOULDBLOCK, "delete_module: in use")

	require.NoError(t, f.Close())
	require.NoError(t, g.Close())
	assert.Equal(t, before, mod.Refcount())
	require.NoError(t, m.Rmmod("chardev", false))
	assert.Contains(t, m.Dmesg(), "chardev: unregistered after 1 opens")
	assert.NotContains(t, m.Paths(), "/dev/kemu_chardev")
	_, err = m.Open("/dev/kemu_chardev", syscall.O_RDONLY)
	assert.ErrorIs(t, err, syscall.ENOENT)
	assert.Equal(t, "", readFile(t, m, "/proc/misc"))
}

func TestBadUserPointerIsEFAULT(t *testing.T) {
	m := bootWith(t, "chardev")
	f, err := m.Open("/dev/kemu_chardev", syscall.O_RDWR)
	require.NoError(t, err)
	defer f.Close()
	for _, arg := range []uint64{0, 0x10, userEnd - 2, m.layout.directMap} {
		_, err := f.Ioctl(iocGetValue, arg)
		assert.ErrorIs(t, err, syscall.EFAULT, "arg %#x", arg)
		_, err = f.Ioctl(iocSetValue, arg)
		assert.ErrorIs(t, err, syscall.EFAULT, "arg %#x", arg)
	}
	assert.NotContains(t, m.Dmesg(), "Oops", "user faults are not oopses")
}

// procfsText is /proc/kemu_procfs after n opens (procfs.c).
func procfsText(n int) string {
	return fmt.Sprintf("opens: %d\nsquare 1 = 1\nsquare 2 = 4\nsquare 3 = 9\nsquare 4 = 16\n", n)
}

func TestProcSeqFile(t *testing.T) {
	m := bootWith(t, "procfs")
	assert.Contains(t, m.Paths(), "/proc/kemu_procfs")
	for i, chunk := range []int{4096, 1, 7, 64} {
		t.Run(fmt.Sprintf("reads of %d", chunk), func(t *testing.T) {
			assert.Equal(t, procfsText(i+1), readFileIn(t, m, "/proc/kemu_procfs", chunk))
		})
	}
	heap := len(m.HeapObjects())
	assert.Equal(t, procfsText(5), readFile(t, m, "/proc/kemu_procfs"))
	assert.Equal(t, heap, len(m.HeapObjects()), "open and close free what they allocate")
}

func readFileIn(t *testing.T, m *Machine, path string, n int) string {
	t.Helper()
	f, err := m.Open(path, syscall.O_RDONLY)
	require.NoError(t, err)
	defer func() { require.NoError(t, f.Close()) }()
	return readAll(t, f, n)
}

func TestProcFileOutlivesItsEntry(t *testing.T) {
	m := bootWith(t, "procfs")
	f, err := m.Open("/proc/kemu_procfs", syscall.O_RDONLY)
	require.NoError(t, err)
	first, err := f.Read(8)
	require.NoError(t, err)
	assert.Equal(t, "opens: 1", string(first))
	// /proc files hold no module reference: the module goes, the entry's release runs then.
	require.NoError(t, m.Rmmod("procfs", false))
	_, err = f.Read(8)
	assert.ErrorIs(t, err, syscall.EIO)
	require.NoError(t, f.Close())
	_, err = m.Open("/proc/kemu_procfs", syscall.O_RDONLY)
	assert.ErrorIs(t, err, syscall.ENOENT)
}

func TestOpenErrors(t *testing.T) {
	m := bootDefault(t, Options{})
	for _, path := range []string{"/dev/nothing", "/proc/nothing", "/sys/kernel/debug/x", "relative"} {
		_, err := m.Open(path, syscall.O_RDONLY)
		assert.ErrorIs(t, err, syscall.ENOENT, path)
	}
}

func TestOopsInAFileMethod(t *testing.T) {
	m := bootWith(t, "chardev")
	// A misc device whose ->read jumps into unmapped kernel memory.
	fops, err := m.kernel.kzalloc(m.offset("file_operations", "release") + 8)
	require.NoError(t, err)
	m.setField("file_operations", "read", fops, 8, m.layout.directMap+1<<40)
	misc, err := m.kernel.kzalloc(128)
	require.NoError(t, err)
	m.setField("miscdevice", "fops", misc, 8, fops)
	m.files().addMisc(&miscEntry{addr: misc, minor: 42, name: "broken", node: "broken"})

	f, err := m.Open("/dev/broken", syscall.O_RDONLY)
	require.NoError(t, err)
	_, err = f.Read(16)
	assert.ErrorIs(t, err, ErrKilled)
	assert.ErrorIs(t, err, syscall.EFAULT)
	assert.Contains(t, m.Dmesg(), "BUG: unable to handle page fault")
	assert.Contains(t, m.Dmesg(), fmt.Sprintf("CPU: 0 PID: %d Comm: cat", userPID), "the oops names the user process")
	require.NoError(t, f.Close())

	assert.Equal(t, "kemu misc device\n", readFile(t, m, "/dev/kemu_misc"), "the machine goes on")
}

func TestProcReadIterOverSeqFile(t *testing.T) {
	m := bootWith(t, "procfs")
	// The fixture's proc_ops with .proc_read_iter = seq_read_iter instead of .proc_read = seq_read.
	orig := m.files().proc.lookup("kemu_procfs")
	require.NotNil(t, orig)
	ops := guestStruct(t, m, "proc_ops")
	size, _ := m.structSize("proc_ops")
	require.NoError(t, m.Copy(ops, orig.ops, size))
	m.setField("proc_ops", "proc_read", ops, 8, 0)
	m.setField("proc_ops", "proc_read_iter", ops, 8, m.kernelFunc("seq_read_iter"))
	tr := trapWith(m, guestString(t, m, "kemu_iter"), 0o444, 0, ops)
	tr.Name = "proc_create"
	pde, err := procCreate(procOps)(m, tr)
	require.NoError(t, err)
	require.NotZero(t, pde)

	assert.Equal(t, procfsText(1), readFileIn(t, m, "/proc/kemu_iter", 5))
	m.setField("proc_ops", "proc_read_iter", ops, 8, 0)
	f, err := m.Open("/proc/kemu_iter", syscall.O_RDONLY)
	require.NoError(t, err)
	_, err = f.Read(5)
	assert.ErrorIs(t, err, syscall.EIO, "no read method: pde_read's -EIO")
	require.NoError(t, f.Close())
}

func TestPollRecordsWaitQueues(t *testing.T) {
	m := bootWith(t, "chardev")
	f, err := m.Open("/dev/kemu_chardev", syscall.O_RDONLY)
	require.NoError(t, err)
	defer f.Close()
	m.files().polling = f
	for _, head := range []uint64{0x1000, 0, 0x2000} { // poll_wait skips a NULL head
		_, err := hPollWait(m, trapWith(m, f.file, head, 0))
		require.NoError(t, err)
	}
	m.files().polling = nil
	_, err = hPollWait(m, trapWith(m, f.file, 0x3000, 0))
	require.NoError(t, err)
	assert.Equal(t, []uint64{0x1000, 0x2000}, f.Waits(), "only while its ->poll runs")
}

// BenchmarkOpenReadClose is one open(2), read(2) of 64 bytes and close(2) of /dev/kemu_chardev.
func BenchmarkOpenReadClose(b *testing.B) {
	m := bootDefault(b, Options{})
	_, err := m.Insmod(fixture(b, "chardev"), "", "chardev.ko")
	require.NoError(b, err)
	f, err := m.Open("/dev/kemu_chardev", syscall.O_WRONLY)
	require.NoError(b, err)
	_, err = f.Write(make([]byte, 64))
	require.NoError(b, err)
	require.NoError(b, f.Close())
	benchOpenReadClose(b, m, "/dev/kemu_chardev", 64)
}

// BenchmarkProcSeqRead is cat /proc/kemu_procfs: open, seq_file reads to the end, close.
func BenchmarkProcSeqRead(b *testing.B) {
	m := bootDefault(b, Options{})
	_, err := m.Insmod(fixture(b, "procfs"), "", "procfs.ko")
	require.NoError(b, err)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := m.Open("/proc/kemu_procfs", syscall.O_RDONLY)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := f.Read(4096); err != nil {
				break
			}
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestProcSeqPrivate(t *testing.T) {
	m := bootWith(t, "procfs")
	// proc_create_seq_private over single_start/next/stop and the fixture's show function.
	ops := guestStruct(t, m, "seq_operations")
	show := moduleSymbol(t, m, "procfs", "procfs_show")
	for name, fn := range map[string]uint64{"start": m.kernelFunc("single_start"), "next": m.kernelFunc("single_next"), "stop": m.kernelFunc("single_stop"), "show": show} {
		m.setField("seq_operations", name, ops, 8, fn)
	}
	dir, err := procCreate(entryDir)(m, trapWith(m, guestString(t, m, "kemu"), 0))
	require.NoError(t, err)
	require.NotZero(t, dir)
	pde, err := procCreate(procSeq)(m, trapWith(m, guestString(t, m, "seq"), 0o444, dir, ops, 48, 0))
	require.NoError(t, err)
	require.NotZero(t, pde)
	dup, err := procCreate(procSeq)(m, trapWith(m, guestString(t, m, "seq"), 0o444, dir, ops, 48, 0))
	require.NoError(t, err)
	assert.Zero(t, dup, "a taken name")

	heap := len(m.HeapObjects())
	assert.Equal(t, procfsText(0), readFileIn(t, m, "/proc/kemu/seq", 3), "procfs_open never ran: opens stays 0")
	assert.Equal(t, heap, len(m.HeapObjects()), "seq_file, buffer and private state freed at close")
	_, err = m.Open("/proc/kemu", syscall.O_RDONLY)
	assert.ErrorIs(t, err, syscall.EISDIR)

	_, err = hRemoveProcEntry(m, trapWith(m, guestString(t, m, "kemu"), 0))
	require.NoError(t, err)
	_, err = m.Open("/proc/kemu/seq", syscall.O_RDONLY)
	assert.ErrorIs(t, err, syscall.ENOENT, "the subtree went with its directory")
}

func TestDeviceAttributes(t *testing.T) {
	m := bootWith(t, "chardev")
	// Guest code for the attribute methods, written over two chardev functions this test never
	// calls otherwise: show writes "ok\n" and returns 3; store returns its count.
	show := moduleSymbol(t, m, "chardev", "chardev_release")
	store := moduleSymbol(t, m, "chardev", "chardev_ioctl")
	require.NoError(t, m.WriteAt([]byte{0xc7, 0x02, 'o', 'k', '\n', 0, 0xb8, 3, 0, 0, 0, 0xc3}, show))
	require.NoError(t, m.WriteAt([]byte{0x48, 0x89, 0xc8, 0xc3}, store))

	var dev *sysDevice
	for _, d := range m.files().devices {
		if d.name == "kemu_chardev" {
			dev = d
		}
	}
	require.NotNil(t, dev)
	assert.Equal(t, "kemu_chardev", dev.class, "class_create's name")
	attr := guestStruct(t, m, "device_attribute")
	m.setField("device_attribute", "attr.name", attr, 8, guestString(t, m, "greeting"))
	m.setField("device_attribute", "show", attr, 8, show)
	m.setField("device_attribute", "store", attr, 8, store)
	ret, err := hDeviceCreateFile(m, trapWith(m, dev.addr, attr))
	require.NoError(t, err)
	require.Zero(t, ret)
	ret, err = hDeviceCreateFile(m, trapWith(m, dev.addr, attr))
	require.NoError(t, err)
	assert.Equal(t, negErrno(syscall.EEXIST), ret)

	const path = "/sys/class/kemu_chardev/kemu_chardev/greeting"
	assert.Contains(t, m.Paths(), path)
	assert.Equal(t, "ok\n", readFile(t, m, path))
	f, err := m.Open(path, syscall.O_WRONLY)
	require.NoError(t, err)
	n, err := f.Write([]byte("hello\n"))
	require.NoError(t, err)
	assert.Equal(t, 6, n)
	require.NoError(t, f.Close())

	m.setField("device_attribute", "show", attr, 8, 0)
	f, err = m.Open(path, syscall.O_RDONLY)
	require.NoError(t, err)
	_, err = f.Read(64)
	assert.ErrorIs(t, err, syscall.EIO, "no show: dev_attr_show's -EIO")
	require.NoError(t, f.Close())

	_, err = hDeviceRemoveFile(m, trapWith(m, dev.addr, attr))
	require.NoError(t, err)
	_, err = m.Open(path, syscall.O_RDONLY)
	assert.ErrorIs(t, err, syscall.ENOENT)
}

func TestFileMethodsRunAsTheUserProcess(t *testing.T) {
	m := bootWith(t, "chardev")
	cur, ok := m.prof.Lookup("current_task")
	require.True(t, ok)
	commOff, pidOff := uint32(m.offset("task_struct", "comm")), uint32(m.offset("task_struct", "pid"))
	le := func(v uint32) []byte { return le32(int32(v)) }
	// show(dev, attr, buf): 8 bytes of current->comm, then current->pid; returns 12.
	var code []byte
	code = append(append(code, 0x65, 0x48, 0x8b, 0x04, 0x25), le(uint32(cur.Addr))...) // mov rax, gs:[current_task]
	code = append(append(code, 0x48, 0x8b, 0x88), le(commOff)...)                      // mov rcx, [rax+comm]
	code = append(code, 0x48, 0x89, 0x0a)                                              // mov [rdx], rcx
	code = append(append(code, 0x8b, 0x88), le(pidOff)...)                             // mov ecx, [rax+pid]
	code = append(code, 0x89, 0x4a, 0x08, 0xb8, 12, 0, 0, 0, 0xc3)                     // mov [rdx+8], ecx; mov eax, 12; ret
	show := moduleSymbol(t, m, "chardev", "chardev_release")
	require.NoError(t, m.WriteAt(code, show))
	attr := guestStruct(t, m, "device_attribute")
	m.setField("device_attribute", "attr.name", attr, 8, guestString(t, m, "who"))
	m.setField("device_attribute", "show", attr, 8, show)
	require.NotEmpty(t, m.files().devices)
	_, err := hDeviceCreateFile(m, trapWith(m, m.files().devices[0].addr, attr))
	require.NoError(t, err)

	for _, comm := range []string{"cat", "echo"} {
		if comm != "cat" {
			m.SetProcess(comm)
		}
		got := readFile(t, m, "/sys/class/kemu_chardev/kemu_chardev/who")
		want := append([]byte(comm), make([]byte, 8-len(comm))...)
		assert.Equal(t, string(append(want, le32(userPID)...)), got)
	}
	comm, err := m.ReadCString(m.task+uint64(commOff), 16)
	require.NoError(t, err)
	assert.Equal(t, "insmod", comm, "insmod's task gets its identity back")
}

func TestChrdevRegions(t *testing.T) {
	m := bootDefault(t, Options{})
	steps := []struct {
		call              Handler
		major, minor, cnt uint32
		name              string
		want              uint64
	}{
		{hRegisterChrdevRegion, 240, 0, 2, "first", 0},
		{hRegisterChrdevRegion, 240, 1, 1, "overlap", negErrno(syscall.EBUSY)},
		{hRegisterChrdevRegion, 240, 2, 1, "next", 0},
		{hRegisterChrdevRegion, 239, 0, 1, "lower", 0},
		{hUnregisterChrdevRegion, 240, 0, 2, "", 0},
		{hRegisterChrdevRegion, 240, 1, 1, "again", 0},
	}
	for _, s := range steps {
		ret, err := s.call(m, trapWith(m, uint64(mkdev(s.major, s.minor)), uint64(s.cnt), guestString(t, m, s.name)))
		require.NoError(t, err)
		assert.Equal(t, s.want, ret, "%d:%d %s", s.major, s.minor, s.name)
	}
	want := "Character devices:\n 10 misc\n239 lower\n240 again\n240 next\n\nBlock devices:\n"
	assert.Equal(t, want, readFile(t, m, "/proc/devices"))
}

func TestArbitraryIoctlsAndSizes(t *testing.T) {
	m := bootWith(t, "chardev")
	f, err := m.Open("/dev/kemu_chardev", syscall.O_RDWR)
	require.NoError(t, err)
	defer f.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	args := []uint64{0, 1, 0x10, userBufferBase, userEnd - 1, userEnd, m.layout.directMap, ^uint64(0)}
	for i := 0; i < 300; i++ {
		cmd := uint64(rng.Uint32())
		if i%2 == 0 {
			cmd = cmd&^0xff00 | 'k'<<8 // the driver's magic, any number, size and direction
		}
		_, err := f.Ioctl(cmd, args[rng.IntN(len(args))])
		if err != nil {
			var errno syscall.Errno
			require.ErrorAs(t, err, &errno, "cmd %#x", cmd)
		}
	}
	for _, n := range []int{-1, 0, 1, 1 << 30} {
		_, err := f.Read(n)
		if err != nil {
			assert.ErrorIs(t, err, io.EOF, "read(%d)", n)
		}
	}
	n, err := f.Write(nil)
	require.NoError(t, err)
	assert.Zero(t, n)
	_, err = f.Write(make([]byte, 5000))
	require.NoError(t, err, "a short write up to the 4 KiB buffer")
	_, err = f.Write([]byte("x"))
	assert.ErrorIs(t, err, syscall.ENOSPC)
	assert.NotContains(t, m.Dmesg(), "Oops")
}

func TestFilesAfterTheMachineCloses(t *testing.T) {
	m := bootWith(t, "chardev")
	f, err := m.Open("/dev/kemu_chardev", syscall.O_RDONLY)
	require.NoError(t, err)
	require.NoError(t, m.Close())
	_, err = f.Read(8)
	assert.ErrorIs(t, err, syscall.EBADF)
	assert.NoError(t, f.Close())
	_, err = m.Open("/dev/kemu_chardev", syscall.O_RDONLY)
	assert.ErrorIs(t, err, syscall.EBADF)
}
