package oops

import (
	"debug/dwarf"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
)

// debugInfo answers "which source line and which chain of inlined functions is at this address" from
// DWARF, as addr2line -i -f does, without running addr2line. Compilation units are indexed by their
// address ranges up front; a unit's lines and function scopes are read the first time an address in it
// is asked for.
type debugInfo struct {
	d     *dwarf.Data
	units []unitRange // sorted by lo

	mu    sync.Mutex
	index map[dwarf.Offset]*unitIndex
	names map[dwarf.Offset]string
}

type unitRange struct {
	lo, hi uint64
	unit   *dwarf.Entry
}

// unitIndex is one compilation unit read for lookups.
type unitIndex struct {
	rows   []dwarf.LineEntry // sorted by address, an end-of-sequence row before rows at its address
	files  []*dwarf.LineFile
	scopes []scope // subprograms and inlined subroutines with code, in DIE order
}

// scope is a function body, concrete or inlined, and where an inlined one was called from.
type scope struct {
	ranges   [][2]uint64
	parent   int // index of the enclosing scope, -1 for a subprogram
	name     string
	inlined  bool
	callFile int
	callLine int
}

func newDebugInfo(d *dwarf.Data) *debugInfo {
	di := &debugInfo{d: d, index: map[dwarf.Offset]*unitIndex{}, names: map[dwarf.Offset]string{}}
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil || e == nil {
			break
		}
		if e.Tag == dwarf.TagCompileUnit || e.Tag == dwarf.TagPartialUnit {
			ranges, err := d.Ranges(e)
			if err == nil {
				for _, rg := range ranges {
					di.units = append(di.units, unitRange{lo: rg[0], hi: rg[1], unit: e})
				}
			}
		}
		r.SkipChildren()
	}
	sort.Slice(di.units, func(i, j int) bool { return di.units[i].lo < di.units[j].lo })
	return di
}

// errNoLine says the address is in no compilation unit with line information.
var errNoLine = errors.New("no line information")

// lookup returns the source lines for pc, innermost inlined function first and the function the code
// was compiled into last.
func (di *debugInfo) lookup(pc uint64) ([]SourceLine, error) {
	i := sort.Search(len(di.units), func(i int) bool { return di.units[i].lo > pc }) - 1
	if i < 0 || pc >= di.units[i].hi {
		return nil, errNoLine
	}
	di.mu.Lock()
	defer di.mu.Unlock()
	u, err := di.unitIndex(di.units[i].unit)
	if err != nil {
		return nil, err
	}
	row, ok := u.row(pc)
	if !ok {
		return nil, errNoLine
	}
	chain := u.scopeChain(pc) // outermost first
	out := []SourceLine{{File: row.File.Name, Line: row.Line}}
	if len(chain) == 0 {
		return out, nil
	}
	for k := len(chain) - 1; k >= 0; k-- {
		s := chain[k]
		out[len(out)-1].Function = s.name
		out[len(out)-1].Inlined = s.inlined
		if s.inlined {
			out = append(out, SourceLine{File: u.fileName(s.callFile), Line: s.callLine})
		}
	}
	return out, nil
}

// row is the line table row covering pc.
func (u *unitIndex) row(pc uint64) (dwarf.LineEntry, bool) {
	i := sort.Search(len(u.rows), func(i int) bool { return u.rows[i].Address > pc }) - 1
	if i < 0 || u.rows[i].EndSequence || u.rows[i].File == nil {
		return dwarf.LineEntry{}, false
	}
	return u.rows[i], true
}

// scopeChain is the nest of scopes containing pc, outermost first.
func (u *unitIndex) scopeChain(pc uint64) []scope {
	deepest := -1
	for i, s := range u.scopes {
		if s.contains(pc) && (deepest < 0 || u.isInside(i, deepest)) {
			deepest = i
		}
	}
	var chain []scope
	for i := deepest; i >= 0; i = u.scopes[i].parent {
		chain = append([]scope{u.scopes[i]}, chain...)
	}
	return chain
}

// isInside reports whether scope i is nested in scope j.
func (u *unitIndex) isInside(i, j int) bool {
	for p := u.scopes[i].parent; p >= 0; p = u.scopes[p].parent {
		if p == j {
			return true
		}
	}
	return false
}

func (s scope) contains(pc uint64) bool {
	for _, r := range s.ranges {
		if pc >= r[0] && pc < r[1] {
			return true
		}
	}
	return false
}

func (u *unitIndex) fileName(i int) string {
	if i < 0 || i >= len(u.files) || u.files[i] == nil {
		return "??"
	}
	return u.files[i].Name
}

// unitIndex reads a compilation unit's line table and scopes, once.
func (di *debugInfo) unitIndex(cu *dwarf.Entry) (*unitIndex, error) {
	if u, ok := di.index[cu.Offset]; ok {
		return u, nil
	}
	u := &unitIndex{}
	lr, err := di.d.LineReader(cu)
	if err != nil {
		return nil, fmt.Errorf("line table: %w", err)
	}
	if lr != nil {
		u.files = lr.Files()
		for {
			var e dwarf.LineEntry
			if err := lr.Next(&e); err != nil {
				if !errors.Is(err, io.EOF) {
					return nil, fmt.Errorf("line table: %w", err)
				}
				break
			}
			u.rows = append(u.rows, e)
		}
		sort.SliceStable(u.rows, func(i, j int) bool {
			a, b := u.rows[i], u.rows[j]
			if a.Address != b.Address {
				return a.Address < b.Address
			}
			return a.EndSequence && !b.EndSequence
		})
	}
	if err := di.readScopes(cu, u); err != nil {
		return nil, err
	}
	di.index[cu.Offset] = u
	return u, nil
}

// readScopes walks the unit's DIE tree, keeping subprograms and inlined subroutines that have code.
func (di *debugInfo) readScopes(cu *dwarf.Entry, u *unitIndex) error {
	r := di.d.Reader()
	r.Seek(cu.Offset)
	if _, err := r.Next(); err != nil { // the unit itself
		return fmt.Errorf("read unit: %w", err)
	}
	if !cu.Children {
		return nil
	}
	// parents holds, per open DIE level, the nearest enclosing scope index.
	parents := []int{-1}
	for len(parents) > 0 {
		e, err := r.Next()
		if err != nil {
			return fmt.Errorf("read DIE: %w", err)
		}
		if e == nil {
			return nil
		}
		if e.Tag == 0 { // end of a sibling list
			parents = parents[:len(parents)-1]
			continue
		}
		enclosing := parents[len(parents)-1]
		self := enclosing
		if e.Tag == dwarf.TagSubprogram || e.Tag == dwarf.TagInlinedSubroutine {
			if ranges, err := di.d.Ranges(e); err == nil && len(ranges) > 0 {
				s := scope{ranges: ranges, parent: enclosing, name: di.entryName(e), inlined: e.Tag == dwarf.TagInlinedSubroutine}
				if f, ok := e.Val(dwarf.AttrCallFile).(int64); ok {
					s.callFile = int(f)
				}
				if l, ok := e.Val(dwarf.AttrCallLine).(int64); ok {
					s.callLine = int(l)
				}
				if !s.inlined {
					s.parent = -1
				}
				u.scopes = append(u.scopes, s)
				self = len(u.scopes) - 1
			}
		}
		if e.Children {
			parents = append(parents, self)
		}
	}
	return nil
}

// entryName is a function's name, following abstract_origin and specification links as far as needed.
func (di *debugInfo) entryName(e *dwarf.Entry) string {
	for depth := 0; e != nil && depth < 8; depth++ {
		if name, ok := e.Val(dwarf.AttrName).(string); ok {
			return name
		}
		ref, ok := e.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset)
		if !ok {
			if ref, ok = e.Val(dwarf.AttrSpecification).(dwarf.Offset); !ok {
				return "??"
			}
		}
		if name, ok := di.names[ref]; ok {
			return name
		}
		r := di.d.Reader()
		r.Seek(ref)
		next, err := r.Next()
		if err != nil {
			return "??"
		}
		e = next
		if name, ok := e.Val(dwarf.AttrName).(string); ok {
			di.names[ref] = name
			return name
		}
	}
	return "??"
}
