package profile

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf/btf"
)

// ErrNoBTF is returned by the type lookups of a Profile built without BTF.
var ErrNoBTF = errors.New("profile has no BTF (vmlinux built without CONFIG_DEBUG_INFO_BTF, or none was given)")

// ErrNoType is wrapped by lookups of a type or field the kernel's BTF does not have.
var ErrNoType = errors.New("not in the kernel's BTF")

// Struct is the layout of a kernel struct or union, as BTF records it.
type Struct struct {
	Name  string // without the "struct "/"union " keyword
	Union bool   // a union rather than a struct
	Size  uint64 // sizeof, in bytes

	typ   btf.Type // *btf.Struct or *btf.Union
	types *typeIndex
}

// Field is where a (possibly nested) member lies inside the struct it was looked up from.
type Field struct {
	Path      string // the dotted path it was looked up by
	Offset    uint64 // bytes from the start of the outermost struct (for a bitfield: the byte holding its first bit)
	Size      uint64 // sizeof the member's declared type, in bytes
	BitOffset uint64 // bits from the start of the outermost struct
	BitSize   uint64 // width of a bitfield; 0 for an ordinary member
	Type      string // the member's C type, e.g. "const char *", "struct list_head", "int[4]"
}

// Enum is a kernel enumeration and its enumerators in declaration order.
type Enum struct {
	Name   string
	Size   uint32 // bytes
	Signed bool
	Values []EnumValue
}

// EnumValue is one enumerator; Value holds the bits, read as signed when the Enum is.
type EnumValue struct {
	Name  string
	Value int64
}

// Value returns the value of the enumerator called name.
func (e *Enum) Value(name string) (int64, bool) {
	for _, v := range e.Values {
		if v.Name == name {
			return v.Value, true
		}
	}
	return 0, false
}

// typeIndex parses a profile's BTF on first use and caches what was looked up. cilium/ebpf's Spec
// inflates types lazily; every walk over them holds mu, so lookups are safe from any goroutine.
type typeIndex struct {
	raw []byte

	once    sync.Once
	spec    *btf.Spec
	loadErr error

	mu          sync.Mutex
	structs     map[string]*Struct
	enumerators map[string]int64 // every enumerator of every enum, built by the first Constant call
}

func (ix *typeIndex) load() (*btf.Spec, error) {
	ix.once.Do(func() {
		if len(ix.raw) == 0 {
			ix.loadErr = ErrNoBTF
			return
		}
		ix.spec, ix.loadErr = btf.LoadSpecFromReader(bytes.NewReader(ix.raw))
		if ix.loadErr != nil {
			ix.loadErr = fmt.Errorf("parse BTF: %w", ix.loadErr)
		}
		ix.structs = make(map[string]*Struct)
	})
	return ix.spec, ix.loadErr
}

func (p *Profile) typeIndex() *typeIndex {
	if p.types == nil { // a Profile built without New; New and the loaders always set it
		p.types = &typeIndex{raw: p.BTF}
	}
	return p.types
}

// withTypes runs fn with the parsed BTF and the index locked; what ("struct module") prefixes errors.
func (p *Profile) withTypes(what string, fn func(ix *typeIndex, spec *btf.Spec) error) error {
	ix := p.typeIndex()
	spec, err := ix.load()
	if err == nil {
		ix.mu.Lock()
		defer ix.mu.Unlock()
		err = fn(ix, spec)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// typesNamed returns the types called name; none is not an error.
func typesNamed(spec *btf.Spec, name string) ([]btf.Type, error) {
	types, err := spec.AnyTypesByName(name)
	if errors.Is(err, btf.ErrNotFound) {
		return nil, nil
	}
	return types, err
}

// Struct returns the layout of the struct or union called name ("module", "struct module" and
// "union thread_union" are all accepted). When BTF holds several complete definitions of the name
// (different compilation units), the first one is used.
func (p *Profile) Struct(name string) (*Struct, error) {
	what := name
	if kw, _ := splitKeyword(name); kw == "" {
		what = "struct " + name
	}
	var found *Struct
	err := p.withTypes(what, func(ix *typeIndex, spec *btf.Spec) error {
		if s, ok := ix.structs[name]; ok {
			found = s
			return nil
		}
		want, bare := splitKeyword(name)
		if want == "enum" {
			return errors.New("an enum is not a struct")
		}
		types, err := typesNamed(spec, bare)
		if err != nil {
			return err
		}
		for _, t := range types {
			if _, isTypedef := t.(*btf.Typedef); isTypedef && want != "" {
				continue // "struct x" names the struct, never a typedef called x
			}
			c := btf.UnderlyingType(t)
			_, isUnion, ok := members(c)
			if !ok || (want == "struct" && isUnion) || (want == "union" && !isUnion) {
				continue
			}
			size, err := btf.Sizeof(c)
			if err != nil {
				return err
			}
			found = &Struct{Name: bare, Union: isUnion, Size: uint64(size), typ: c, types: ix}
			ix.structs[name] = found
			return nil
		}
		return ErrNoType
	})
	return found, err
}

// Field finds the member at a dotted path: "state", "mkobj.kobj.name", "list.next". Members of
// anonymous structs and unions are found by their own names, as in C; a path through a pointer is
// an error, since the pointee is not inside the struct. A segment may index an array member:
// "syms[2]" or "arr[1].x".
func (s *Struct) Field(path string) (Field, error) {
	s.types.mu.Lock()
	defer s.types.mu.Unlock()
	f := Field{Path: path}
	var cur btf.Type = s.typ
	var bitOff uint64
	segs := strings.Split(path, ".")
	for i, seg := range segs {
		name, index, hasIndex, err := splitIndex(seg)
		if err != nil {
			return Field{}, fmt.Errorf("struct %s field %s: %w", s.Name, path, err)
		}
		comp := btf.UnderlyingType(cur)
		if _, _, ok := members(comp); !ok {
			return Field{}, fmt.Errorf("struct %s field %s: %s is %s, not a struct or union",
				s.Name, path, strings.Join(segs[:i], "."), typeName(cur))
		}
		m, off, ok := findMember(comp, name)
		if !ok {
			return Field{}, fmt.Errorf("struct %s field %s: no member %q in %s: %w", s.Name, path, name, typeName(comp), ErrNoType)
		}
		bitOff += off
		cur = m.Type
		f.BitSize = uint64(m.BitfieldSize)
		if hasIndex {
			arr, ok := btf.As[*btf.Array](cur)
			if !ok {
				return Field{}, fmt.Errorf("struct %s field %s: %s is %s, not an array", s.Name, path, name, typeName(cur))
			}
			if uint64(index) >= uint64(arr.Nelems) && arr.Nelems != 0 {
				return Field{}, fmt.Errorf("struct %s field %s: index %d out of range [0,%d)", s.Name, path, index, arr.Nelems)
			}
			elem, err := btf.Sizeof(arr.Type)
			if err != nil {
				return Field{}, fmt.Errorf("struct %s field %s: %w", s.Name, path, err)
			}
			bitOff += uint64(index) * uint64(elem) * 8
			cur = arr.Type
		}
	}
	size, err := btf.Sizeof(cur)
	if err != nil {
		return Field{}, fmt.Errorf("struct %s field %s: %w", s.Name, path, err)
	}
	f.Size = uint64(size)
	f.BitOffset = bitOff
	f.Offset = bitOff / 8
	f.Type = typeName(cur)
	return f, nil
}

// Offset is Field(path).Offset, for the common case where the caller only needs where it is.
func (s *Struct) Offset(path string) (uint64, error) {
	f, err := s.Field(path)
	return f.Offset, err
}

// Members lists the direct members of the struct in declaration order (anonymous ones with an
// empty Path), for display.
func (s *Struct) Members() []Field {
	s.types.mu.Lock()
	defer s.types.mu.Unlock()
	list, _, _ := members(s.typ)
	out := make([]Field, 0, len(list))
	for _, m := range list {
		size, _ := btf.Sizeof(m.Type)
		out = append(out, Field{
			Path: m.Name, Offset: uint64(m.Offset) / 8, Size: uint64(size),
			BitOffset: uint64(m.Offset), BitSize: uint64(m.BitfieldSize), Type: typeName(m.Type),
		})
	}
	return out
}

// members returns the members of a struct or union; ok is false for any other type.
func members(t btf.Type) (list []btf.Member, isUnion, ok bool) {
	switch v := t.(type) {
	case *btf.Struct:
		return v.Members, false, true
	case *btf.Union:
		return v.Members, true, true
	}
	return nil, false, false
}

// findMember looks for name among c's members and, depth first in declaration order, inside its
// anonymous struct and union members. off is the member's bit offset from the start of c.
func findMember(c btf.Type, name string) (m btf.Member, off uint64, ok bool) {
	list, _, _ := members(c)
	for _, m := range list {
		if m.Name == name {
			return m, uint64(m.Offset), true
		}
	}
	for _, anon := range list {
		if anon.Name != "" {
			continue
		}
		inner := btf.UnderlyingType(anon.Type)
		if m, off, ok := findMember(inner, name); ok {
			return m, uint64(anon.Offset) + off, true
		}
	}
	return btf.Member{}, 0, false
}

// splitIndex splits "name[3]" into name and 3.
func splitIndex(seg string) (name string, index int, hasIndex bool, err error) {
	open := strings.IndexByte(seg, '[')
	if open < 0 {
		if seg == "" {
			return "", 0, false, errors.New("empty path segment")
		}
		return seg, 0, false, nil
	}
	if !strings.HasSuffix(seg, "]") || open == 0 {
		return "", 0, false, fmt.Errorf("bad path segment %q", seg)
	}
	index, err = strconv.Atoi(seg[open+1 : len(seg)-1])
	if err != nil || index < 0 {
		return "", 0, false, fmt.Errorf("bad array index in %q", seg)
	}
	return seg[:open], index, true, nil
}

// splitKeyword splits "struct module" into "struct" and "module"; a bare name has no keyword.
func splitKeyword(name string) (keyword, bare string) {
	for _, k := range []string{"struct", "union", "enum"} {
		if rest, ok := strings.CutPrefix(name, k+" "); ok {
			return k, strings.TrimSpace(rest)
		}
	}
	return "", name
}

// Enum returns the enumeration called name ("module_state" or "enum module_state").
func (p *Profile) Enum(name string) (*Enum, error) {
	_, bare := splitKeyword(name)
	var found *Enum
	err := p.withTypes("enum "+bare, func(_ *typeIndex, spec *btf.Spec) error {
		types, err := typesNamed(spec, bare)
		if err != nil {
			return err
		}
		for _, t := range types {
			e, ok := btf.As[*btf.Enum](t)
			if !ok {
				continue
			}
			found = &Enum{Name: bare, Size: e.Size, Signed: e.Signed, Values: make([]EnumValue, len(e.Values))}
			for i, v := range e.Values {
				found.Values[i] = EnumValue{Name: v.Name, Value: int64(v.Value)}
			}
			return nil
		}
		return ErrNoType
	})
	return found, err
}

// Constant returns the value of an enumerator, whichever enum declares it: many kernel constants
// are members of anonymous enums ("enum { ... }") that Enum cannot name. When two enums declare
// the same enumerator, the first in BTF order wins.
func (p *Profile) Constant(name string) (int64, error) {
	var v int64
	err := p.withTypes("constant "+name, func(ix *typeIndex, spec *btf.Spec) error {
		if ix.enumerators == nil {
			enumerators := make(map[string]int64)
			for t, err := range spec.All() {
				if err != nil {
					return err
				}
				if e, ok := t.(*btf.Enum); ok {
					for _, ev := range e.Values {
						if _, dup := enumerators[ev.Name]; !dup {
							enumerators[ev.Name] = int64(ev.Value)
						}
					}
				}
			}
			ix.enumerators = enumerators
		}
		var ok bool
		if v, ok = ix.enumerators[name]; !ok {
			return ErrNoType
		}
		return nil
	})
	return v, err
}

// TypeSize returns sizeof the named type: a struct, union or enum (with or without its keyword),
// a typedef ("pid_t", "atomic_t") or a base type ("unsigned long").
func (p *Profile) TypeSize(name string) (uint64, error) {
	var size uint64
	err := p.withTypes("sizeof "+name, func(_ *typeIndex, spec *btf.Spec) error {
		want, bare := splitKeyword(name)
		types, err := typesNamed(spec, bare)
		if err != nil {
			return err
		}
		for _, t := range types {
			if keywordOf(t) != want && want != "" {
				continue
			}
			switch t.(type) {
			case *btf.Fwd, *btf.Func, *btf.Var, *btf.Datasec:
				continue
			}
			n, err := btf.Sizeof(t)
			if err != nil {
				return err
			}
			size = uint64(n)
			return nil
		}
		return ErrNoType
	})
	return size, err
}

// keywordOf is the C keyword that names a type of t's kind: "struct", "union", "enum" or "".
func keywordOf(t btf.Type) string {
	switch t.(type) {
	case *btf.Struct:
		return "struct"
	case *btf.Union:
		return "union"
	case *btf.Enum:
		return "enum"
	}
	return ""
}

// typeName renders a BTF type as C would spell it in a declaration (without a declarator name).
func typeName(t btf.Type) string {
	for depth := 0; depth < 32; depth++ {
		switch v := t.(type) {
		case nil, *btf.Void:
			return "void"
		case *btf.Int:
			return v.Name
		case *btf.Float:
			return v.Name
		case *btf.Typedef:
			return v.Name
		case *btf.Struct:
			return "struct " + anonName(v.Name)
		case *btf.Union:
			return "union " + anonName(v.Name)
		case *btf.Enum:
			return "enum " + anonName(v.Name)
		case *btf.Fwd:
			return v.Kind.String() + " " + v.Name
		case *btf.Pointer:
			if _, isFunc := v.Target.(*btf.FuncProto); isFunc {
				return "func *"
			}
			return typeName(v.Target) + " *"
		case *btf.Array:
			return typeName(v.Type) + "[" + strconv.FormatUint(uint64(v.Nelems), 10) + "]"
		case *btf.Const:
			return "const " + typeName(v.Type)
		case *btf.Volatile:
			return "volatile " + typeName(v.Type)
		case *btf.Restrict:
			return typeName(v.Type) + " restrict"
		case *btf.TypeTag:
			t = v.Type
			continue
		case *btf.FuncProto:
			return "func"
		default:
			return fmt.Sprintf("%T", t)
		}
	}
	return "?"
}

func anonName(name string) string {
	if name == "" {
		return "{...}"
	}
	return name
}
