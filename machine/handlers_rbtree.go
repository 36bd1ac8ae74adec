package machine

// Walking red-black trees (lib/rbtree.c): rb_first and rb_last descend to the leftmost and
// rightmost node, rb_next and rb_prev step in order, climbing through the parent pointer kept in
// __rb_parent_color (its low two bits are the colour). A node whose parent pointer is itself is
// RB_CLEAR_NODE'd (not in a tree): no neighbours. Trees are the module's own memory, read here
// through the BTF layout of struct rb_node.

func init() {
	register("rb_first", hRbEnd("rb_left"))
	register("rb_last", hRbEnd("rb_right"))
	register("rb_next", hRbStep("rb_right", "rb_left"))
	register("rb_prev", hRbStep("rb_left", "rb_right"))
}

func (m *Machine) rbChild(node uint64, side string) (uint64, error) {
	return m.readField("rb_node", side, node, 8)
}

// descend follows side from node as far as it goes.
func (m *Machine) descend(node uint64, side string) (uint64, error) {
	for {
		next, err := m.rbChild(node, side)
		if err != nil || next == 0 {
			return node, err
		}
		node = next
	}
}

// rb_first(root) / rb_last(root): NULL for an empty tree.
func hRbEnd(side string) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		n, err := m.readField("rb_root", "rb_node", t.Arg(0), 8)
		if err != nil || n == 0 {
			return 0, err
		}
		return m.descend(n, side)
	}
}

// rb_next(node) / rb_prev(node): the leftmost (rightmost) node of the right (left) subtree, else
// the first ancestor reached from its left (right) side; NULL past the end.
func hRbStep(down, across string) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		node := t.Arg(0)
		pc, err := m.readField("rb_node", "__rb_parent_color", node, 8)
		if err != nil {
			return 0, err
		}
		if pc == node { // RB_EMPTY_NODE
			return 0, nil
		}
		if sub, err := m.rbChild(node, down); err != nil || sub != 0 {
			if err != nil {
				return 0, err
			}
			return m.descend(sub, across)
		}
		for {
			parent := pc &^ 3
			if parent == 0 {
				return 0, nil
			}
			child, err := m.rbChild(parent, down)
			if err != nil {
				return 0, err
			}
			if child != node {
				return parent, nil
			}
			node = parent
			if pc, err = m.readField("rb_node", "__rb_parent_color", node, 8); err != nil {
				return 0, err
			}
		}
	}
}
