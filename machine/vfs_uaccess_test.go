package machine

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"
)

// The user process's memory and the uaccess functions, called as module code calls them (the
// handlers with the registers of the call).

func trapWith(m *Machine, args ...uint64) *Trap {
	t := &Trap{m: m}
	copy(t.regs[:], args)
	return t
}

// userHello maps a user buffer holding "hello\0" followed by 0xff bytes to its end.
func userHello(t *testing.T, m *Machine) *userBuffer {
	t.Helper()
	init := make([]byte, pageSize)
	for i := range init {
		init[i] = 0xff
	}
	copy(init, "hello\x00")
	b, err := m.mapUserBuffer(pageSize, init)
	require.NoError(t, err)
	t.Cleanup(func() { m.unmapUserBuffer(b) })
	return b
}

func TestUserStrings(t *testing.T) {
	m := bootDefault(t, Options{})
	u := userHello(t, m)
	dst, err := m.kernel.kzalloc(64)
	require.NoError(t, err)
	unterminated := u.addr + 6 // 0xff up to the unmapped page after the buffer
	strncpy := func(src, count uint64) []uint64 { return []uint64{dst, src, count} }
	strnlen := func(src, count uint64) []uint64 { return []uint64{src, count} }
	cases := []struct {
		name   string
		h      Handler
		args   []uint64
		want   uint64
		copied string // what dst holds after strncpy_from_user
	}{
		{"strncpy whole", hStrncpyFromUser, strncpy(u.addr, 64), 5, "hello\x00"},
		{"strncpy cut", hStrncpyFromUser, strncpy(u.addr, 3), 3, "hel\x55"},
		{"strncpy kernel address", hStrncpyFromUser, strncpy(m.layout.directMap, 8), negErrno(syscall.EFAULT), "\x55"},
		{"strncpy into a hole", hStrncpyFromUser, strncpy(unterminated, 2*pageSize), negErrno(syscall.EFAULT), "\x55"},
		{"strnlen whole", hStrnlenUser, strnlen(u.addr, 64), 6, ""},
		{"strnlen too long", hStrnlenUser, strnlen(u.addr, 3), 4, ""},
		{"strnlen fault", hStrnlenUser, strnlen(unterminated, 2*pageSize), 0, ""},
		{"strnlen unmapped", hStrnlenUser, strnlen(0x10, 8), 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.NoError(t, m.Fill(dst, 0x55, 64))
			got, err := c.h(m, trapWith(m, c.args...))
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
			b, err := m.Read(dst, uint64(len(c.copied)))
			require.NoError(t, err)
			assert.Equal(t, c.copied, string(b))
		})
	}
}

func TestClearUserAndPartialCopies(t *testing.T) {
	m := bootDefault(t, Options{})
	u := userHello(t, m)
	end := u.addr + u.size // the guard page after the buffer is unmapped
	left, err := hClearUser(m, trapWith(m, end-4, 16))
	require.NoError(t, err)
	assert.Equal(t, uint64(12), left, "cleared up to the hole")
	b, err := m.Read(end-4, 4)
	require.NoError(t, err)
	assert.Equal(t, []byte{0, 0, 0, 0}, b)
	left, err = hClearUser(m, trapWith(m, m.layout.directMap, 16))
	require.NoError(t, err)
	assert.Equal(t, uint64(16), left, "access_ok refuses kernel addresses")

	k, err := m.kernel.kzalloc(16)
	require.NoError(t, err)
	require.NoError(t, m.Fill(k, 0x77, 16))
	require.NoError(t, m.WriteAt([]byte("abcd"), end-4))
	notCopied, err := m.copyFromUser(k, end-4, 16)
	require.NoError(t, err)
	assert.Equal(t, uint64(12), notCopied)
	got, err := m.Read(k, 16)
	require.NoError(t, err)
	assert.Equal(t, append([]byte("abcd"), make([]byte, 12)...), got, "the uncopied tail is zeroed")
	assert.Equal(t, uint64(12), m.copyToUser(end-4, k, 16))
	assert.Equal(t, uint64(16), m.copyToUser(m.layout.directMap, k, 16))
}

func TestGetUserPutUser(t *testing.T) {
	m := bootDefault(t, Options{})
	u := userHello(t, m)
	efault := negErrno(syscall.EFAULT)
	for _, c := range []struct {
		name  string
		h     Handler
		addr  uint64
		ret   uint64
		value uint64
	}{
		{"get 1", hGetUser(1, true), u.addr, 0, 'h'},
		{"get 4", hGetUser(4, true), u.addr, 0, 0x6c6c6568},
		{"get 8 at the end", hGetUser(8, true), u.addr + u.size - 4, efault, 0},
		{"get kernel address", hGetUser(8, true), m.layout.directMap, efault, 0},
		{"get NULL", hGetUser(2, false), 0, efault, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			m.setReg(uc.X86_REG_RAX, c.addr)
			m.setReg(uc.X86_REG_RDX, 0xdead)
			ret, err := c.h(m, trapWith(m))
			require.NoError(t, err)
			assert.Equal(t, c.ret, ret)
			assert.Equal(t, c.value, m.reg(uc.X86_REG_RDX))
		})
	}
	m.setReg(uc.X86_REG_RAX, 0x4142)
	m.setReg(uc.X86_REG_RCX, u.addr+8)
	ret, err := hPutUser(2, true)(m, trapWith(m))
	require.NoError(t, err)
	assert.Equal(t, uint64(0x4142), ret, "rax is preserved")
	assert.Equal(t, uint64(0), m.reg(uc.X86_REG_RCX))
	b, err := m.Read(u.addr+8, 3)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x42, 0x41, 0xff}, b)

	m.setReg(uc.X86_REG_RCX, m.layout.directMap)
	_, err = hPutUser(8, true)(m, trapWith(m))
	require.NoError(t, err)
	assert.Equal(t, efault, m.reg(uc.X86_REG_RCX))
}
