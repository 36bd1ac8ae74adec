package printk

import (
	"encoding/binary"
	"strings"
)

// Layout is an optional capability of an Env: field offsets of kernel
// structs, from BTF (the machine has them through the profile package).
// With it, %pd and %pD print dentry and file names; without it they print
// the hashed pointer.
type Layout interface {
	// FieldOffset is the byte offset of field in struct name.
	FieldOffset(structName, field string) (uint64, bool)
}

// maxDentryName bounds one path component read from the guest.
const maxDentryName = 4096

// dentryOffsets are the struct dentry fields %pd follows.
type dentryOffsets struct {
	parent uint64 // dentry.d_parent
	name   uint64 // dentry.d_name.name (struct qstr: hash_len, then name)
}

// offsets looks up "struct.field" offsets through the Env's Layout; ok is
// false if the Env has none or lacks any of them.
func (f *Formatter) offsets(fields ...string) (offs []uint64, ok bool) {
	layout, ok := f.Env.(Layout)
	if !ok {
		return nil, false
	}
	for _, sf := range fields {
		structName, field, _ := strings.Cut(sf, ".")
		off, ok := layout.FieldOffset(structName, field)
		if !ok {
			return nil, false
		}
		offs = append(offs, off)
	}
	return offs, true
}

func (f *Formatter) dentryLayout() (dentryOffsets, bool) {
	offs, ok := f.offsets("dentry.d_parent", "dentry.d_name", "qstr.name")
	if !ok {
		return dentryOffsets{}, false
	}
	return dentryOffsets{parent: offs[0], name: offs[1] + offs[2]}, true
}

// fileDentry is %pD[234]: the name of a struct file's f_path.dentry.
func (f *Formatter) fileDentry(o *output, file uint64, sp spec, ext []byte) {
	offs, ok := f.offsets("file.f_path", "path.dentry")
	if !ok {
		f.defaultPointer(o, file, sp)
		return
	}
	if msg := checkPointer(file); msg != "" {
		o.errorString(msg, sp)
		return
	}
	d, err := f.readPointer(file + offs[0] + offs[1])
	if err != nil {
		o.errorString("(efault)", sp)
		return
	}
	f.dentryName(o, d, sp, ext)
}

// dentryName is %pd[234]: the last one to four components of a dentry's
// path, joined by '/', with a leading '/' when the walk reaches the root.
func (f *Formatter) dentryName(o *output, d uint64, sp spec, ext []byte) {
	off, ok := f.dentryLayout()
	if !ok {
		f.defaultPointer(o, d, sp)
		return
	}
	depth := 1
	if c := byteAt(ext, 1); c >= '2' && c <= '4' {
		depth = int(c - '0')
	}
	// Collect names from the dentry up, as the kernel does before it
	// prints anything.
	var names []string
	for i := 0; i < depth; i++ {
		if msg := checkPointer(d); msg != "" {
			o.errorString(msg, sp)
			return
		}
		parent, err1 := f.readPointer(d + off.parent)
		nameAddr, err2 := f.readPointer(d + off.name)
		name, err3 := f.Env.ReadString(nameAddr, maxDentryName)
		if err1 != nil || err2 != nil || err3 != nil {
			o.errorString("(efault)", sp)
			return
		}
		if parent == d {
			if i > 0 {
				name = "" // the root: its "/" comes from the separator
			}
			names = append(names, name)
			break
		}
		names = append(names, name)
		d = parent
	}
	var path []byte
	for i := len(names) - 1; i >= 0; i-- {
		path = append(path, names[i]...)
		if i > 0 {
			path = append(path, '/')
		}
	}
	o.padded(string(path), sp)
}

// readPointer reads a 64-bit guest pointer.
func (f *Formatter) readPointer(addr uint64) (uint64, error) {
	var raw [8]byte
	if err := f.Env.Read(addr, raw[:]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(raw[:]), nil
}

// diskNameLen is DISK_NAME_LEN, the size of gendisk.disk_name.
const diskNameLen = 32

// blockDevice is %pg: a block_device's disk name and partition number,
// "sda1" or, for a disk name ending in a digit, "nvme0n1p1".
func (f *Formatter) blockDevice(o *output, bdev uint64, sp spec) {
	offs, ok := f.offsets("block_device.bd_disk", "gendisk.disk_name", "block_device.bd_partno")
	if !ok {
		f.defaultPointer(o, bdev, sp)
		return
	}
	diskOff, nameOff, partOff := offs[0], offs[1], offs[2]
	if msg := checkPointer(bdev); msg != "" {
		o.errorString(msg, sp)
		return
	}
	var part [1]byte // u8 bd_partno
	if !f.readOrEfault(o, bdev+partOff, part[:], sp) {
		return
	}
	disk, err := f.readPointer(bdev + diskOff)
	if err != nil {
		o.errorString("(efault)", sp)
		return
	}
	// The name goes through string(), which checks the pointer, and so
	// does the partition number through number(), both with the spec.
	f.guestStringMax(o, disk+nameOff, diskNameLen, sp)
	if part[0] == 0 {
		return
	}
	name, err := f.Env.ReadString(disk+nameOff, diskNameLen)
	if err == nil && name != "" && isDigit(name[len(name)-1]) {
		o.byte('p')
	}
	o.number(uint64(part[0]), sp)
}
