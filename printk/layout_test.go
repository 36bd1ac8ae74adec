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
		"block_device.bd_partno": 4, "block_device.bd_disk": 8, "gendisk.disk_name": 16,
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

	tests := []formatCase{
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
	checkFormats(t, Formatter{Env: layoutEnv{env}}, tests)

	t.Run("without a layout the pointer is hashed", func(t *testing.T) {
		plain := Formatter{Env: env}
		assert.Equal(t, string(plain.Format([]byte("%p"), &SliceArgs{Values: []uint64{passwd}})),
			string(plain.Format([]byte("%pd"), &SliceArgs{Values: []uint64{passwd}})))
	})
}

func TestBlockDevices(t *testing.T) {
	const sda, sda1, nvme, nvmep2, diskSda, diskNvme = 0xffff888000020000, 0xffff888000020100,
		0xffff888000020200, 0xffff888000020300, 0xffff888000021000, 0xffff888000022000
	env := testEnv()
	bdev := func(addr, disk uint64, part byte) {
		env.put(addr, []byte{0, 0, 0, 0, part, 0, 0, 0})
		env.putWords(addr+8, disk)
	}
	env.put(diskSda, append(make([]byte, 16), "sda\x00"...))
	env.put(diskNvme, append(make([]byte, 16), "nvme0n1\x00"...))
	bdev(sda, diskSda, 0)
	bdev(sda1, diskSda, 1)
	bdev(nvme, diskNvme, 0)
	bdev(nvmep2, diskNvme, 2)
	tests := []formatCase{
		{"%pg", sda, "sda"},
		{"%pg", sda1, "sda1"},
		{"%pg", nvme, "nvme0n1"},
		{"%pg", nvmep2, "nvme0n1p2"},
		{"%pg", 0, "(null)"},
		{"%pg", unmapped, "(efault)"},
	}
	checkFormats(t, Formatter{Env: layoutEnv{env}}, tests)
}

// formatCase is a format with one argument and its expected output.
type formatCase struct {
	format string
	arg    uint64
	want   string
}

func checkFormats(t *testing.T, f Formatter, tests []formatCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.format, func(t *testing.T) {
			assert.Equal(t, tc.want, string(f.Format([]byte(tc.format), &SliceArgs{Values: []uint64{tc.arg}})))
		})
	}
}
