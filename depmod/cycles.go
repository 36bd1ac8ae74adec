package depmod

import (
	"slices"
	"strings"
)

// reportCycles is depmod_report_cycles: the modules the topological sort could not place are in
// cycles or below one; walking from each of them, kmod logs every cycle that returns to its start
// ("Cycle detected: a -> b -> a") and then how many modules the cycles hold, which it returns.
func (x *Index) reportCycles(users []int) int {
	var roots []*Module
	for i, m := range x.Modules {
		if users[i] > 0 {
			roots = append(roots, m)
		}
	}
	inLoop := map[string]bool{}
	remove := func(m *Module) {
		if i := slices.Index(roots, m); i >= 0 {
			roots = slices.Delete(roots, i, i+1)
		}
	}
	type vertex struct {
		parent *vertex
		mod    *Module
	}
	onPath := func(v *vertex) bool { // whether v's module is already one of its ancestors
		for p := v.parent; p != nil; p = p.parent {
			if p.mod == v.mod {
				return true
			}
		}
		return false
	}
	for len(roots) > 0 {
		root := roots[0]
		roots = roots[1:]
		stack := []*vertex{{mod: root}}
		for len(stack) > 0 {
			v := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			m := v.mod
			if m.visited && m == root {
				var names []string
				for p := v.parent; p != nil; p = p.parent {
					inLoop[p.mod.Name] = true
					names = append(names, p.mod.Name)
					remove(p.mod)
				}
				slices.Reverse(names)
				x.log.errorf("Cycle detected: %s\n", strings.Join(append(names, m.Name), " -> "))
				continue
			}
			// kmod walks a cycle that does not pass through the root forever; stop there instead.
			if m.visited && onPath(v) {
				continue
			}
			m.visited = true
			if len(m.Deps) == 0 {
				remove(m)
				continue
			}
			for _, d := range m.Deps {
				stack = append(stack, &vertex{parent: v, mod: d})
			}
		}
	}
	x.log.errorf("Found %d modules in dependency cycles!\n", len(inLoop))
	return len(inLoop)
}
