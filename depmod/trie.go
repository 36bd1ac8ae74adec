package depmod

import (
	"encoding/binary"
	"fmt"
)

// The binary indexes (modules.*.bin) are the trie libkmod's index.c reads: a header (magic,
// version, root offset) then nodes written children first. A node is its compressed prefix
// (NUL-terminated), the byte range of its children with their offsets, and its values, each with
// a priority; a node's offset carries flags saying which of the three it has. Values of one key
// are kept in priority order, a newer value before older ones of the same priority, as depmod does.

const (
	indexMagic    = 0xB007F457
	indexVersion  = 0x00020001
	indexChildMax = 128

	nodePrefix   = 0x80000000
	nodeValues   = 0x40000000
	nodeChildren = 0x20000000
)

type trieValue struct {
	priority uint32
	value    string
}

// trieNode keeps its children densely for the byte range [first, first+len(children)), as the
// file stores them: most nodes have one or two, and a 128-entry table per node would dominate
// depmod's memory.
type trieNode struct {
	prefix   string
	values   []trieValue
	first    byte
	children []*trieNode
}

func newTrieNode(prefix string) *trieNode { return &trieNode{prefix: prefix} }

// child returns the child for ch, or nil.
func (n *trieNode) child(ch byte) *trieNode {
	if ch < n.first || int(ch-n.first) >= len(n.children) {
		return nil
	}
	return n.children[ch-n.first]
}

// setChild stores c as the child for ch, widening the child range as needed.
func (n *trieNode) setChild(ch byte, c *trieNode) {
	switch {
	case len(n.children) == 0:
		n.first = ch
		n.children = []*trieNode{c}
		return
	case ch < n.first:
		grown := make([]*trieNode, int(n.first-ch)+len(n.children))
		copy(grown[n.first-ch:], n.children)
		n.children, n.first = grown, ch
	case int(ch-n.first) >= len(n.children):
		n.children = append(n.children, make([]*trieNode, int(ch-n.first)+1-len(n.children))...)
	}
	n.children[ch-n.first] = c
}

// trie is an in-memory index (depmod's index_node tree).
type trie struct{ root *trieNode }

func newTrie() *trie { return &trie{root: newTrieNode("")} }

// errNotASCII rejects keys and values the format cannot hold (kmod would corrupt its tree).
type errNotASCII string

func (e errNotASCII) Error() string {
	return fmt.Sprintf("Module index: bad character - only 7-bit ASCII is supported: %q", string(e))
}

func checkASCII(s string) error {
	for i := 0; i < len(s); i++ {
		if s[i] >= indexChildMax {
			return errNotASCII(s)
		}
	}
	return nil
}

// insert adds value under key (index_insert) and reports whether the key already had that value.
func (t *trie) insert(key, value string, priority uint32) (duplicate bool, err error) {
	if err := checkASCII(key); err != nil {
		return false, err
	}
	if err := checkASCII(value); err != nil {
		return false, err
	}
	node := t.root
	i := 0
	for {
		// Make node.prefix a prefix of key[i:], splitting the node where they differ.
		j := 0
		for ; j < len(node.prefix); j++ {
			if i+j >= len(key) || node.prefix[j] != key[i+j] {
				ch := node.prefix[j]
				child := *node
				child.prefix = node.prefix[j+1:]
				*node = trieNode{prefix: node.prefix[:j]}
				node.setChild(ch, &child)
				break
			}
		}
		i += j
		if i == len(key) {
			return node.addValue(value, priority), nil
		}
		ch := key[i]
		next := node.child(ch)
		if next == nil {
			child := newTrieNode(key[i+1:])
			child.addValue(value, priority)
			node.setChild(ch, child)
			return false, nil
		}
		node = next
		i++
	}
}

func (n *trieNode) addValue(value string, priority uint32) (duplicate bool) {
	pos := len(n.values)
	for k, v := range n.values {
		if v.value == value {
			duplicate = true
		}
		if pos == len(n.values) && v.priority >= priority {
			pos = k
		}
	}
	n.values = append(n.values, trieValue{})
	copy(n.values[pos+1:], n.values[pos:])
	n.values[pos] = trieValue{priority, value}
	return duplicate
}

// bytes serializes the trie (index_write).
func (t *trie) bytes() []byte {
	out := binary.BigEndian.AppendUint32(nil, indexMagic)
	out = binary.BigEndian.AppendUint32(out, indexVersion)
	out = append(out, 0, 0, 0, 0)
	var root uint32
	out, root = t.root.write(out)
	binary.BigEndian.PutUint32(out[8:], root)
	return out
}

// write appends the node after its children and returns its offset with the flags.
func (n *trieNode) write(out []byte) ([]byte, uint32) {
	childOffs := make([]uint32, len(n.children))
	for k, c := range n.children {
		if c != nil {
			out, childOffs[k] = c.write(out)
		}
	}
	off := uint32(len(out))
	if n.prefix != "" {
		out = append(append(out, n.prefix...), 0)
		off |= nodePrefix
	}
	if len(childOffs) > 0 {
		out = append(out, n.first, n.first+byte(len(n.children)-1))
		for _, c := range childOffs {
			out = binary.BigEndian.AppendUint32(out, c)
		}
		off |= nodeChildren
	}
	if len(n.values) > 0 {
		out = binary.BigEndian.AppendUint32(out, uint32(len(n.values)))
		for _, v := range n.values {
			out = binary.BigEndian.AppendUint32(out, v.priority)
			out = append(append(out, v.value...), 0)
		}
		off |= nodeValues
	}
	return out, off
}
