package loader

import (
	"fmt"
	"strings"
	"syscall"

	"kemu/internal/kstrtox"
)

// Param is one of a module's parameters (a struct kernel_param in its __param section).
type Param struct {
	Name string
	Type string // the kernel's param_ops the record points at: "int", "charp", "bool", ...; "array of int"; "custom"
	Perm uint16 // sysfs permissions
	Arg  uint64 // address of the variable (kparam_string: of the buffer; kparam_array: of the elements)
	Max  uint32 // kparam_string: buffer size; kparam_array: element count
	Set  bool   // given a value at load time
}

// paramLayout holds the offsets parse_args needs, read from the kernel's BTF.
type paramLayout struct {
	size                                         uint64 // sizeof(struct kernel_param)
	name, ops, perm, flags, arg                  uint64
	strMaxlen, strString                         uint64 // struct kparam_string
	arrMax, arrElemsize, arrNum, arrOps, arrElem uint64 // struct kparam_array
}

// paramLayoutOf reads struct kernel_param, kparam_string and kparam_array from the profile's BTF.
func (k *Kernel) paramLayoutOf() (*paramLayout, error) {
	if k.params != nil {
		return k.params, nil
	}
	var l paramLayout
	var errs []error
	field := func(st, path string) uint64 {
		s, err := k.prof.Struct(st)
		if err != nil {
			errs = append(errs, err)
			return 0
		}
		off, err := s.Offset(path)
		if err != nil {
			errs = append(errs, err)
		}
		return off
	}
	if s, err := k.prof.Struct("kernel_param"); err == nil {
		l.size = s.Size
	} else {
		errs = append(errs, err)
	}
	l.name, l.ops, l.perm, l.flags, l.arg = field("kernel_param", "name"), field("kernel_param", "ops"),
		field("kernel_param", "perm"), field("kernel_param", "flags"), field("kernel_param", "arg")
	l.strMaxlen, l.strString = field("kparam_string", "maxlen"), field("kparam_string", "string")
	l.arrMax, l.arrElemsize, l.arrNum = field("kparam_array", "max"), field("kparam_array", "elemsize"), field("kparam_array", "num")
	l.arrOps, l.arrElem = field("kparam_array", "ops"), field("kparam_array", "elem")
	if len(errs) > 0 {
		return nil, fmt.Errorf("module parameters need struct kernel_param from BTF: %w", errs[0])
	}
	if l.size == 0 || l.arg+8 > l.size || l.name+8 > l.size || l.ops+8 > l.size {
		return nil, fmt.Errorf("struct kernel_param from BTF is %d bytes with arg at %d: not the layout of a 64-bit kernel", l.size, l.arg)
	}
	k.params = &l
	return k.params, nil
}

// opsName names the vmlinux param_ops_* object at addr ("int", "array"), or "" when addr is not one.
func (k *Kernel) opsName(addr uint64) string {
	s, off, _, ok := k.prof.SymbolAt(addr)
	if !ok || off != 0 {
		return ""
	}
	switch {
	case s.Name == "param_array_ops":
		return "array"
	case strings.HasPrefix(s.Name, "param_ops_"):
		return strings.TrimPrefix(s.Name, "param_ops_")
	}
	return ""
}

// readParams decodes the module's __param records from its relocated memory.
func (info *loadInfo) readParams() error {
	b, addr, ok := info.sectionBytes("__param")
	if !ok || len(b) == 0 {
		return nil
	}
	k, m := info.k, info.mod
	l, err := k.paramLayoutOf()
	if err != nil {
		return &Error{Errno: syscall.ENOEXEC, Detail: fmt.Sprintf("%s: %v", m.Name, err)}
	}
	u64 := func(a uint64) (uint64, bool) {
		v, ok := m.readAt(a, 8)
		if !ok {
			return 0, false
		}
		return le.Uint64(v), true
	}
	u32 := func(a uint64) uint32 {
		if v, ok := m.readAt(a, 4); ok {
			return le.Uint32(v)
		}
		return 0
	}
	bad := func(i int, what string) error {
		return kerr(syscall.ENOEXEC, "").withDetail("%s: __param record %d: %s", m.Name, i, what)
	}
	for i := 0; uint64(i+1)*l.size <= uint64(len(b)); i++ {
		rec := addr + uint64(i)*l.size
		nameAddr, _ := u64(rec + l.name)
		name, ok := m.stringAt(nameAddr, 1024)
		if !ok {
			return bad(i, "name does not point into the module")
		}
		p := Param{Name: name}
		if v, ok := m.readAt(rec+l.perm, 2); ok {
			p.Perm = le.Uint16(v)
		}
		opsAddr, _ := u64(rec + l.ops)
		p.Arg, _ = u64(rec + l.arg)
		p.Type = k.opsName(opsAddr)
		switch p.Type {
		case "":
			p.Type = "custom"
		case "string":
			p.Max = u32(p.Arg + l.strMaxlen)
			p.Arg, _ = u64(p.Arg + l.strString)
		case "array":
			arr := p.Arg
			p.Max = u32(arr + l.arrMax)
			eops, _ := u64(arr + l.arrOps)
			et := k.opsName(eops)
			if et == "" {
				et = "custom"
			}
			p.Type = "array of " + et
			p.Arg, _ = u64(arr + l.arrElem)
		}
		m.Params = append(m.Params, p)
	}
	return nil
}

// parseArgs is parse_args() for the module: each name[=value] is matched against the module's
// parameters (dashes and underscores alike) and written into module memory with the kernel's
// conversion rules. Unknown names are warned about and ignored; a bad value fails the load (after
// every argument has been tried, as the kernel does).
func (info *loadInfo) parseArgs() error {
	k, m := info.k, info.mod
	args := info.opts.Params
	if _, err := k.paramLayoutOf(); err != nil && strings.TrimSpace(args) == "" {
		// Without BTF the records cannot be decoded; with nothing to set, the load goes on and the
		// module's Params stay empty.
		return nil
	}
	if err := info.readParams(); err != nil {
		return err
	}
	var last *Error
	for {
		args = strings.TrimLeft(args, " \t\n\v\f\r")
		if args == "" {
			break
		}
		var param string
		var val *string
		param, val, args = nextArg(args)
		if val == nil && param == "--" {
			if args != "" {
				k.printk(LogWarning, "%s: parameters '%s' after `--' ignored", m.Name, args)
			}
			break
		}
		p := m.param(param)
		if p == nil {
			if param != "async_probe" && param != "dyndbg" {
				k.printk(LogWarning, "%s: unknown parameter '%s' ignored", m.Name, param)
			}
			continue
		}
		errno := info.setParam(p, val)
		if errno == 0 {
			p.Set = true
			continue
		}
		v := ""
		if val != nil {
			v = *val
		}
		if errno == syscall.ENOSPC {
			last = kerr(errno, "%s: `%s' too large for parameter `%s'", m.Name, v, param)
		} else {
			last = kerr(errno, "%s: `%s' invalid for parameter `%s'", m.Name, v, param)
		}
		k.printk(LogErr, "%s", last.Msg)
		last.logged()
	}
	if last != nil {
		return last
	}
	return nil
}

// param finds a parameter by name with parameq(): '-' and '_' compare equal.
func (m *Module) param(name string) *Param {
	norm := func(s string) string { return strings.ReplaceAll(s, "-", "_") }
	for i := range m.Params {
		if norm(m.Params[i].Name) == norm(name) {
			return &m.Params[i]
		}
	}
	return nil
}

// nextArg is next_arg(): one param[=value] token with the kernel's quote handling.
func nextArg(args string) (param string, val *string, rest string) {
	b := []byte(args)
	quoted := false
	if b[0] == '"' {
		b = b[1:]
		quoted = true
	}
	inQuote := quoted
	equals := 0
	i := 0
	for ; i < len(b); i++ {
		if isSpace(b[i]) && !inQuote {
			break
		}
		if equals == 0 && b[i] == '=' {
			equals = i
		}
		if b[i] == '"' {
			inQuote = !inQuote
		}
	}
	tok := b[:i]
	if i < len(b) {
		rest = string(b[i+1:])
	}
	if quoted && i > 0 && tok[i-1] == '"' {
		tok = tok[:i-1]
	}
	if equals == 0 {
		return string(tok), nil, rest
	}
	param = string(tok[:equals])
	v := tok[equals+1:]
	if len(v) > 0 && v[0] == '"' {
		v = v[1:]
		if !quoted && len(v) > 0 && v[len(v)-1] == '"' {
			v = v[:len(v)-1]
		}
	}
	s := string(v)
	return param, &s, rest
}

func isSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

// setParam runs the set operation of p's param_ops on val, writing into module memory.
func (info *loadInfo) setParam(p *Param, val *string) syscall.Errno {
	k, m := info.k, info.mod
	noarg := p.Type == "bool" || p.Type == "invbool" || p.Type == "bint"
	if val == nil && !noarg {
		return syscall.EINVAL
	}
	switch {
	case p.Type == "custom" || p.Type == "array of custom":
		k.printk(LogErr, "%s: parameter %s has its own set() in the module; kemu cannot run it while loading", m.Name, p.Name)
		return syscall.EINVAL
	case p.Type == "charp":
		if len(*val) > 1024 {
			k.printk(LogErr, "%s: string parameter too long", p.Name)
			return syscall.ENOSPC
		}
		addr, err := k.mem.KernelAlloc(append([]byte(*val), 0))
		if err != nil {
			return syscall.ENOMEM
		}
		// maybe_kfree_parameter(): a value set earlier in the same string is freed.
		if old, ok := m.charps[p.Arg]; ok {
			k.mem.KernelFree(old)
		}
		if m.charps == nil {
			m.charps = map[uint64]uint64{}
		}
		m.charps[p.Arg] = addr
		return info.store(p.Arg, 8, addr)
	case p.Type == "string":
		if uint64(len(*val))+1 > uint64(p.Max) {
			k.printk(LogErr, "%s: string doesn't fit in %d chars.", p.Name, int64(p.Max)-1)
			return syscall.ENOSPC
		}
		dst, ok := m.readAt(p.Arg, uint64(len(*val))+1)
		if !ok {
			return syscall.EFAULT
		}
		copy(dst, *val)
		dst[len(*val)] = 0
		return 0
	case strings.HasPrefix(p.Type, "array of "):
		return info.setArray(p, *val)
	}
	v := "1"
	if val != nil {
		v = *val
	}
	return info.setScalar(p.Type, p.Arg, v)
}

// setArray is param_array(): comma-separated values, at most Max, stored consecutively; the
// kparam_array's num (when the module gave one) receives the count.
func (info *loadInfo) setArray(p *Param, val string) syscall.Errno {
	et := strings.TrimPrefix(p.Type, "array of ")
	size, ok := scalarSize[et]
	if !ok {
		return syscall.EINVAL
	}
	vals := strings.Split(val, ",")
	if uint64(len(vals)) > uint64(p.Max) {
		info.k.printk(LogErr, "%s: can only take %d arguments", p.Name, p.Max)
		return syscall.EINVAL
	}
	for i, v := range vals {
		if e := info.setScalar(et, p.Arg+uint64(i)*size, v); e != 0 {
			return e
		}
	}
	// The count goes to *num: find the kparam_array again through the record.
	return info.storeArrayCount(p, uint32(len(vals)))
}

// storeArrayCount writes the element count to the kparam_array's num pointer, when it has one.
func (info *loadInfo) storeArrayCount(p *Param, n uint32) syscall.Errno {
	l := info.k.params
	b, addr, ok := info.sectionBytes("__param")
	if !ok {
		return 0
	}
	m := info.mod
	for i := 0; uint64(i+1)*l.size <= uint64(len(b)); i++ {
		rec := addr + uint64(i)*l.size
		na, _ := m.readAt(rec+l.name, 8)
		if name, _ := m.stringAt(le.Uint64(na), 1024); name != p.Name {
			continue
		}
		aa, _ := m.readAt(rec+l.arg, 8)
		np, ok := m.readAt(le.Uint64(aa)+l.arrNum, 8)
		if !ok || le.Uint64(np) == 0 {
			return 0
		}
		return info.store(le.Uint64(np), 4, uint64(n))
	}
	return 0
}

// scalarSize is the storage of each scalar parameter type.
var scalarSize = map[string]uint64{
	"byte": 1, "short": 2, "ushort": 2, "int": 4, "uint": 4, "hexint": 4, "long": 8, "ulong": 8, "ullong": 8,
	"bool": 1, "invbool": 1, "bint": 4, "charp": 8,
}

// setScalar converts v with the kstrto* rules of the type and stores it at addr.
func (info *loadInfo) setScalar(typ string, addr uint64, v string) syscall.Errno {
	type rng struct {
		signed   bool
		min, max int64
		umax     uint64
	}
	ranges := map[string]rng{
		"byte": {umax: 0xff}, "ushort": {umax: 0xffff}, "uint": {umax: 0xffffffff}, "hexint": {umax: 0xffffffff},
		"ulong": {umax: ^uint64(0)}, "ullong": {umax: ^uint64(0)},
		"short": {signed: true, min: -1 << 15, max: 1<<15 - 1}, "int": {signed: true, min: -1 << 31, max: 1<<31 - 1},
		"long": {signed: true, min: -1 << 63, max: 1<<63 - 1},
	}
	switch typ {
	case "bool", "invbool", "bint":
		b, ok := kstrtox.Bool(v)
		if !ok {
			return syscall.EINVAL
		}
		if typ == "invbool" {
			b = !b
		}
		n := uint64(0)
		if b {
			n = 1
		}
		return info.store(addr, scalarSize[typ], n)
	case "charp":
		p := &Param{Type: "charp", Arg: addr}
		return info.setParam(p, &v)
	}
	r, ok := ranges[typ]
	if !ok {
		return syscall.EINVAL
	}
	var n uint64
	if r.signed {
		s, errno := kstrtox.Int64(v, 0) // param_set_*: strtolfn(val, 0, ...)
		if errno != 0 {
			return errno
		}
		if s < r.min || s > r.max {
			return syscall.ERANGE
		}
		n = uint64(s)
	} else {
		u, errno := kstrtox.Uint64(v, 0)
		if errno != 0 {
			return errno
		}
		if u > r.umax {
			return syscall.ERANGE
		}
		n = u
	}
	return info.store(addr, scalarSize[typ], n)
}

// store writes the low size bytes of v at addr in module memory.
func (info *loadInfo) store(addr, size, v uint64) syscall.Errno {
	dst, ok := info.mod.readAt(addr, size)
	if !ok {
		return syscall.EFAULT
	}
	for i := range dst {
		dst[i] = byte(v >> (8 * i))
	}
	return 0
}
