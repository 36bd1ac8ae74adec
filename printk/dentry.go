package printk

import "encoding/binary"

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

func (f *Formatter) dentryLayout() (dentryOffsets, bool) {
	layout, ok := f.Env.(Layout)
	if !ok {
		return dentryOffsets{}, false
	}
	parent, ok1 := layout.FieldOffset("dentry", "d_parent")
	dName, ok2 := layout.FieldOffset("dentry", "d_name")
	qName, ok3 := layout.FieldOffset("qstr", "name")
	return dentryOffsets{parent: parent, name: dName + qName}, ok1 && ok2 && ok3
}

// fileDentry is %pD[234]: the name of a struct file's f_path.dentry.
func (f *Formatter) fileDentry(o *output, file uint64, sp spec, ext []byte) {
	layout, ok := f.Env.(Layout)
	var path, dentry uint64
	if ok {
		var ok1, ok2 bool
		path, ok1 = layout.FieldOffset("file", "f_path")
		dentry, ok2 = layout.FieldOffset("path", "dentry")
		ok = ok1 && ok2
	}
	if !ok {
		f.defaultPointer(o, file, sp)
		return
	}
	if msg := checkPointer(file); msg != "" {
		o.errorString(msg, sp)
		return
	}
	d, err := f.readPointer(file + path + dentry)
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
