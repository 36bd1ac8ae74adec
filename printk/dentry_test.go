package printk

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// layoutEnv is a fakeEnv that knows struct dentry, qstr, file and path.
type layoutEnv struct {
	*fakeEnv
}

func (layoutEnv) FieldOffset(structName, field string) (uint64, bool) {
	off, ok := map[string]uint64{
		"dentry.d_parent": 24, "dentry.d_name": 32, "qstr.name": 8,
		"file.f_path": 16, "path.dentry": 8,
	}[structName+"."+field]
	return off, ok
}

func TestDentryNames(t *testing.T) {
	const root, etc, passwd, file = 0xffff888000010000, 0xffff888000011000, 0xffff888000012000, 0xffff888000013000
	env := testEnv()
	dentry := func(addr, parent uint64, name string) {
		env.putWords(addr, 0, 0, 0, parent, 0, addr+0x100)
		env.putString(addr+0x100, name)
	}
	dentry(root, root, "/")
	dentry(etc, root, "etc")
	dentry(passwd, etc, "passwd")
	env.putWords(file, 0, 0, 0, passwd)
	env.putWords(file+0x800, 0, 0, 0, unmapped) // a file whose dentry is unmapped

	tests := []struct {
		format string
		arg    uint64
		want   string
	}{
		{"%pd", passwd, "passwd"},
		{"%pd2", passwd, "etc/passwd"},
		{"%pd3", passwd, "/etc/passwd"},
		{"%pd4", passwd, "/etc/passwd"},
		{"%pd", root, "/"},
		{"%pd2", root, "/"},
		{"%.4pd2", passwd, "etc/"},
		{"%12pd|", passwd, "      passwd|"},
		{"%pD", file, "passwd"},
		{"%pD3", file, "/etc/passwd"},
		{"%pd", 0, "(null)"},
		{"%pD", 0, "(null)"},
		{"%pd", unmapped, "(efault)"},
		{"%pD", file + 0x800, "(efault)"},
	}
	f := Formatter{Env: layoutEnv{env}}
	for _, tc := range tests {
		t.Run(tc.format, func(t *testing.T) {
			assert.Equal(t, tc.want, string(f.Format([]byte(tc.format), &SliceArgs{Values: []uint64{tc.arg}})))
		})
	}

	t.Run("without a layout the pointer is hashed", func(t *testing.T) {
		plain := Formatter{Env: env}
		assert.Equal(t, string(plain.Format([]byte("%p"), &SliceArgs{Values: []uint64{passwd}})),
			string(plain.Format([]byte("%pd"), &SliceArgs{Values: []uint64{passwd}})))
	})
}
