package oops

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// symbolTable is an address-sorted list of symbols as /proc/kallsyms or System.map give them. Neither
// gives sizes, so a symbol's size is the distance to the next symbol of the same owner (the kernel or one
// module); the last symbol of each owner has none.
type symbolTable struct {
	syms []tableSymbol
}

type tableSymbol struct {
	addr   uint64
	size   uint64
	name   string
	module string // "" for the kernel
}

// readSymbolTable reads "address type name [module]" lines. Absolute symbols and lines that do not parse
// are skipped; a dump whose addresses are all zero (read without privilege) is an error, since it would
// resolve nothing.
func readSymbolTable(r io.Reader) (*symbolTable, error) {
	t := &symbolTable{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	lines, zero := 0, 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || len(f[1]) != 1 {
			continue
		}
		addr, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			continue
		}
		lines++
		if addr == 0 {
			zero++
			continue
		}
		if typ := f[1][0] | 0x20; typ == 'a' || typ == 'u' || typ == 'w' || typ == 'v' {
			continue
		}
		s := tableSymbol{addr: addr, name: f[2]}
		if len(f) >= 4 && strings.HasPrefix(f[3], "[") {
			s.module = strings.Trim(f[3], "[]")
		}
		t.syms = append(t.syms, s)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if lines > 0 && zero == lines {
		return nil, fmt.Errorf("all %d addresses are zero: dump /proc/kallsyms as root (kptr_restrict hides them)", lines)
	}
	if len(t.syms) == 0 {
		return nil, fmt.Errorf("no symbols found")
	}
	t.finish()
	return t, nil
}

// finish sorts the symbols and works out their sizes.
func (t *symbolTable) finish() {
	sort.SliceStable(t.syms, func(i, j int) bool { return t.syms[i].addr < t.syms[j].addr })
	for i := range t.syms {
		t.syms[i].size = 0
		for j := i + 1; j < len(t.syms); j++ {
			if t.syms[j].module != t.syms[i].module {
				break
			}
			if t.syms[j].addr > t.syms[i].addr {
				t.syms[i].size = t.syms[j].addr - t.syms[i].addr
				break
			}
		}
	}
}

// lookup finds the symbol covering addr. An owner's last symbol has no known end; it is taken to cover
// at most 64 KiB, so an address far past every symbol resolves to nothing rather than to a wrong name.
func (t *symbolTable) lookup(addr uint64) (tableSymbol, bool) {
	i := sort.Search(len(t.syms), func(i int) bool { return t.syms[i].addr > addr }) - 1
	if i < 0 {
		return tableSymbol{}, false
	}
	s := t.syms[i]
	if s.size != 0 && addr >= s.addr+s.size || s.size == 0 && addr-s.addr >= 64<<10 {
		return tableSymbol{}, false
	}
	return s, true
}

// byName finds a symbol's address, for working out the KASLR offset against vmlinux.
func (t *symbolTable) byName(name string) (tableSymbol, bool) {
	for _, s := range t.syms {
		if s.name == name && s.module == "" {
			return s, true
		}
	}
	return tableSymbol{}, false
}

// loadedModule is a module's place in memory, from /proc/modules or a Context.
type loadedModule struct {
	name     string
	base     uint64            // start of the core text (what /proc/modules prints)
	size     uint64            // core size
	sections map[string]uint64 // section name -> load address, when known (Context, /sys/module/*/sections)
	path     string            // the .ko, when known
}

// readProcModules reads /proc/modules: "name size refcount deps state address [(flags)]".
func readProcModules(r io.Reader) ([]loadedModule, error) {
	var mods []loadedModule
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 {
			continue
		}
		size, err1 := strconv.ParseUint(f[1], 10, 64)
		base, err2 := strconv.ParseUint(strings.TrimPrefix(f[5], "0x"), 16, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if base == 0 {
			return nil, fmt.Errorf("module %s has load address 0: dump /proc/modules as root", f[0])
		}
		mods = append(mods, loadedModule{name: f[0], base: base, size: size})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(mods) == 0 {
		return nil, fmt.Errorf("no modules found")
	}
	return mods, nil
}
