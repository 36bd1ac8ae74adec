package depmod

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
)

// dumpIndex writes every key and value of a binary index (modules.*.bin, see trie.go) as libkmod's
// index_dump does: one "PREFIXKEY VALUE" line per value, a node's values (in stored order) before
// its children, children in byte order, so keys come out sorted. A damaged file is an error, never
// a panic: offsets are checked before they are followed.
func dumpIndex(w io.Writer, data []byte, prefix string) error {
	if len(data) < 12 || binary.BigEndian.Uint32(data) != indexMagic {
		return errors.New("not a module index")
	}
	if binary.BigEndian.Uint32(data[4:]) != indexVersion {
		return errors.New("unsupported module index version")
	}
	bw := bufio.NewWriter(w)
	d := indexDumper{data: data, w: bw, key: []byte(prefix)}
	if err := d.node(binary.BigEndian.Uint32(data[8:]), 0); err != nil {
		return err
	}
	return bw.Flush()
}

type indexDumper struct {
	data []byte
	w    *bufio.Writer
	key  []byte // the prefix and the key of the node being written
}

var errBadIndex = errors.New("module index is damaged")

// maxIndexDepth bounds the recursion: a key has at most PATH_MAX bytes, each at least one level.
const maxIndexDepth = 4096

func (d *indexDumper) node(off uint32, depth int) error {
	if depth > maxIndexDepth {
		return errBadIndex
	}
	pos := int(off &^ (nodePrefix | nodeValues | nodeChildren))
	keyLen := len(d.key)
	defer func() { d.key = d.key[:keyLen] }()
	if off&nodePrefix != 0 {
		s, next, ok := d.cstring(pos)
		if !ok {
			return errBadIndex
		}
		d.key, pos = append(d.key, s...), next
	}
	nodeKey := len(d.key)
	var first, last int
	var children int // offset of the child table
	if off&nodeChildren != 0 {
		if pos+2 > len(d.data) {
			return errBadIndex
		}
		first, last = int(d.data[pos]), int(d.data[pos+1])
		children, pos = pos+2, pos+2+4*(last-first+1)
		if last < first || pos > len(d.data) {
			return errBadIndex
		}
	}
	if off&nodeValues != 0 {
		if pos+4 > len(d.data) {
			return errBadIndex
		}
		n := int(binary.BigEndian.Uint32(d.data[pos:]))
		pos += 4
		for i := 0; i < n; i++ {
			if pos+4 > len(d.data) {
				return errBadIndex
			}
			v, next, ok := d.cstring(pos + 4) // after the priority
			if !ok {
				return errBadIndex
			}
			pos = next
			d.w.Write(d.key)
			d.w.WriteByte(' ')
			d.w.WriteString(v)
			d.w.WriteByte('\n')
		}
	}
	if children == 0 {
		return nil
	}
	for ch := first; ch <= last; ch++ {
		child := binary.BigEndian.Uint32(d.data[children+4*(ch-first):])
		if child&^(nodePrefix|nodeValues|nodeChildren) == 0 {
			continue
		}
		d.key = append(d.key[:nodeKey], byte(ch))
		if err := d.node(child, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// cstring is the NUL-terminated string at pos and the position after its NUL.
func (d *indexDumper) cstring(pos int) (s string, next int, ok bool) {
	if pos < 0 || pos >= len(d.data) {
		return "", 0, false
	}
	n := bytes.IndexByte(d.data[pos:], 0)
	if n < 0 {
		return "", 0, false
	}
	return string(d.data[pos : pos+n]), pos + n + 1, true
}
