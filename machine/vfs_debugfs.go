package machine

import (
	"fmt"
	"syscall"

	"kemu/internal/kstrtox"
)

// debugfs (fs/debugfs), mounted at /sys/kernel/debug: directories and files over the module's
// file_operations (inode->i_private is the creator's data, the owner is pinned while open, as the
// kernel's proxy does), and the value files of debugfs_create_u32 and friends, which kemu renders
// and parses itself in the kernel's formats (simple_attr's "%llu\n", "0x%08llx\n", ..., and
// "Y\n"/"N\n" for bool). Creation returns a guest struct dentry standing for the entry.

func init() {
	// debugfs_create_dir, debugfs_create_file and debugfs_remove are registered in handlers_svc.go.
	register("debugfs_create_file_unsafe", hDebugfsCreate(debugFops))
	register("debugfs_create_file_size", hDebugfsCreate(debugFops))
	for name, f := range valueFormats {
		register("debugfs_create_"+name, hDebugfsCreateValue(f))
	}
	register("debugfs_create_blob", hDebugfsCreate(debugBlob))
	register("debugfs_lookup", hDebugfsLookup)
	register("debugfs_lookup_and_remove", hDebugfsLookupAndRemove)
	register("simple_open", hSimpleOpen)
}

// valueFormat is how one debugfs value type is shown and parsed.
type valueFormat struct {
	size   uint64 // bytes of the variable
	signed bool   // atomic_t: shown and parsed as signed
	format string // simple_attr's format of the value ("" for bool)
}

var valueFormats = map[string]valueFormat{
	"u8": {1, false, "%d\n"}, "u16": {2, false, "%d\n"}, "u32": {4, false, "%d\n"}, "u64": {8, false, "%d\n"},
	"ulong": {8, false, "%d\n"}, "size_t": {8, false, "%d\n"},
	"x8": {1, false, "0x%02x\n"}, "x16": {2, false, "0x%04x\n"}, "x32": {4, false, "0x%08x\n"}, "x64": {8, false, "0x%016x\n"},
	"atomic_t": {4, true, "%d\n"},
	"bool":     {1, false, ""},
}

// debugfsParent resolves a parent dentry: NULL is the root, an error pointer is passed back (the
// kernel returns it unchanged), an unknown dentry is ENOENT.
func (m *Machine) debugfsParent(parent uint64) (uint64, bool) {
	if parent == 0 || m.files().debug.byAddr(parent) != nil {
		return 0, true
	}
	if isErrPtr(parent) {
		return parent, false
	}
	return negErrno(syscall.ENOENT), false
}

// newDebugfsEntry records e (its parent and name already set) with a fresh dentry; it returns the
// dentry or an error pointer.
func (m *Machine) newDebugfsEntry(t *Trap, e *fsEntry) (uint64, error) {
	if ret, ok := m.debugfsParent(e.parent); !ok {
		return ret, nil
	}
	tree := &m.files().debug
	if tree.lookup(tree.path(e)) != nil {
		return negErrno(syscall.EEXIST), nil
	}
	dentry, err := hNewObject("dentry")(m, t)
	if err != nil || isErrPtr(dentry) {
		return dentry, err
	}
	e.addr = dentry
	tree.add(e)
	return dentry, nil
}

// debugfs_create_dir(name, parent), debugfs_create_file*(name, mode, parent, data, fops) and
// debugfs_create_blob(name, mode, parent, blob).
func hDebugfsCreate(kind entryKind) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		name, err := m.ReadCString(t.Arg(0), 256)
		if err != nil {
			return 0, err
		}
		e := &fsEntry{name: name, kind: kind, parent: t.Arg(2), data: t.Arg(3), ops: t.Arg(4)}
		if kind == entryDir {
			e.parent, e.data, e.ops = t.Arg(1), 0, 0
		}
		return m.newDebugfsEntry(t, e)
	}
}

// debugfs_create_<type>(name, mode, parent, value): a value file (these return nothing in 6.1).
// Without write permission bits its writes fail with EACCES, without read bits its reads do.
func hDebugfsCreateValue(f valueFormat) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		name, err := m.ReadCString(t.Arg(0), 256)
		if err != nil {
			return 0, err
		}
		e := &fsEntry{name: name, kind: debugValue, parent: t.Arg(2), data: t.Arg(3), value: f, mode: t.Arg(1)}
		_, err = m.newDebugfsEntry(t, e)
		return 0, err
	}
}

// debugfs_remove(dentry): the entry and everything below it.
func hDebugfsRemove(m *Machine, t *Trap) (uint64, error) {
	tree := &m.files().debug
	if e := tree.byAddr(t.Arg(0)); e != nil {
		return 0, m.removeEntry(tree, e)
	}
	return 0, nil
}

// debugfs_lookup(name, parent): the dentry, or NULL.
func hDebugfsLookup(m *Machine, t *Trap) (uint64, error) {
	e, err := m.debugfsChild(t.Arg(0), t.Arg(1))
	if err != nil || e == nil {
		return 0, err
	}
	return e.addr, nil
}

// debugfs_lookup_and_remove(name, parent).
func hDebugfsLookupAndRemove(m *Machine, t *Trap) (uint64, error) {
	e, err := m.debugfsChild(t.Arg(0), t.Arg(1))
	if err != nil || e == nil {
		return 0, err
	}
	return 0, m.removeEntry(&m.files().debug, e)
}

func (m *Machine) debugfsChild(nameAddr, parent uint64) (*fsEntry, error) {
	name, err := m.ReadCString(nameAddr, 256)
	if err != nil {
		return nil, err
	}
	for _, e := range m.files().debug.entries {
		if e.name == name && e.parent == parent {
			return e, nil
		}
	}
	return nil, nil
}

// simple_open(inode, file): private_data is the inode's i_private, when there is one.
func hSimpleOpen(m *Machine, t *Trap) (uint64, error) {
	if p := m.field("inode", "i_private", t.Arg(0)); p != 0 {
		m.setField("file", "private_data", t.Arg(1), 8, p)
	}
	return 0, nil
}

// openBlob opens a blob file: blob->size bytes at blob->data, read-only (fops_blob has no write).
func (m *Machine) openBlob(path string, flags int, e *fsEntry) *File {
	return &File{m: m, path: path, flags: flags, entry: e, tree: &m.files().debug, served: &servedFile{
		render: func() ([]byte, error) {
			data := m.field("debugfs_blob_wrapper", "data", e.data)
			size := m.field("debugfs_blob_wrapper", "size", e.data)
			b, err := m.Read(data, size)
			if err != nil {
				return nil, syscall.EFAULT
			}
			return b, nil
		},
		store: func([]byte) (int, error) { return 0, syscall.EINVAL },
	}}
}

// openValue opens a value file: reads render the variable, writes parse into it.
func (m *Machine) openValue(path string, flags int, e *fsEntry) *File {
	f, mode := e.value, e.mode
	return &File{m: m, path: path, flags: flags, entry: e, tree: &m.files().debug, served: &servedFile{
		render: func() ([]byte, error) {
			if mode&0o444 == 0 {
				return nil, syscall.EACCES
			}
			return m.renderValue(e.data, f)
		},
		store: func(b []byte) (int, error) {
			if mode&0o222 == 0 {
				if f.format == "" {
					return 0, syscall.EINVAL // fops_bool_ro has no write at all
				}
				return 0, syscall.EACCES
			}
			if err := m.storeValue(e.data, f, string(b)); err != nil {
				return 0, err
			}
			return len(b), nil
		},
	}}
}

func (m *Machine) renderValue(addr uint64, f valueFormat) ([]byte, error) {
	b, err := m.Read(addr, f.size)
	if err != nil {
		return nil, syscall.EFAULT
	}
	v := uint64(0)
	for i := f.size; i > 0; i-- {
		v = v<<8 | uint64(b[i-1])
	}
	switch {
	case f.format == "":
		if v != 0 {
			return []byte("Y\n"), nil
		}
		return []byte("N\n"), nil
	case f.signed:
		return []byte(fmt.Sprintf(f.format, int32(v))), nil
	}
	return []byte(fmt.Sprintf(f.format, v)), nil
}

// storeValue parses a write as the kernel does (kstrtoull/kstrtoll with base detection and one
// trailing newline, kstrtobool for bool) and stores it truncated to the variable's size.
func (m *Machine) storeValue(addr uint64, f valueFormat, s string) error {
	var v uint64
	switch {
	case f.format == "":
		b, ok := kstrtox.Bool(s)
		if !ok {
			return syscall.EINVAL
		}
		if b {
			v = 1
		}
	default:
		n, err := parseKernelInt(s[:min(len(s), 23)], f.signed)
		if err != nil {
			return err
		}
		v = n
	}
	b := make([]byte, f.size)
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	if m.WriteAt(b, addr) != nil {
		return syscall.EFAULT
	}
	return nil
}

// parseKernelInt is kstrtoull (or kstrtoll) with base 0, as debugfs's integer attributes parse writes.
func parseKernelInt(s string, signed bool) (uint64, error) {
	if signed {
		v, e := kstrtox.Int64(s, 0)
		if e != 0 {
			return 0, e
		}
		return uint64(v), nil
	}
	v, e := kstrtox.Uint64(s, 0)
	if e != 0 {
		return 0, e
	}
	return v, nil
}
