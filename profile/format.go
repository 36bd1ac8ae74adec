package profile

// The compact profile format ("kprof") holds a whole Profile in one file, small enough to embed in
// the kemu binary. Layout, version 1:
//
//	magic    8 bytes  "KEMUPROF"
//	version  2 bytes  little-endian format version (1)
//	body     a zstd frame; decompressed, a sequence of sections until the end:
//	           tag     1 byte
//	           length  uvarint, bytes of payload
//	           payload
//
// Readers skip sections with tags they do not know, so a later version may add sections without
// breaking older readers; a change to an existing section's encoding bumps the version. Inside
// payloads, every integer is an unsigned varint (encoding/binary) unless stated, and a string is
// its length as a uvarint followed by its bytes.
//
//	1 meta     release, version, vermagic (three strings)
//	2 config   count, then count (name, value) string pairs, sorted by name
//	3 symbols  count, then per symbol in address order: address minus the previous symbol's
//	           address (the first: minus 0), the nm type letter (1 byte), name
//	4 exports  the module-name table (count, strings), the namespace table (count, strings), the
//	           export count, then per export in name order: name, CRC (4 bytes little-endian),
//	           flags (1 byte: bit 0 HasCRC, bit 1 GPLOnly), module index, namespace index
//	5 btf      the raw .BTF section bytes
//
// Nothing is dropped: every System.map line (absolute 'A' symbols and per-CPU offsets included)
// and every Module.symvers row round-trips exactly. Only the order is normalised, as New does.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/klauspost/compress/zstd"
)

// Magic starts every compact profile file.
const Magic = "KEMUPROF"

// FormatVersion is the version Write produces and the newest Read understands.
const FormatVersion = 1

const (
	secMeta    = 1
	secConfig  = 2
	secSymbols = 3
	secExports = 4
	secBTF     = 5
)

// maxBody bounds the decompressed size Read accepts (the 6.1 profile is about a tenth of it), so a
// hostile file cannot make the reader allocate without limit.
const maxBody = 256 << 20

// Write encodes p in the compact format.
func Write(w io.Writer, p *Profile) error {
	var body bytes.Buffer
	var sec payload

	sec.reset()
	sec.str(p.Release)
	sec.str(p.Version)
	sec.str(p.Vermagic)
	sec.flush(&body, secMeta)

	sec.reset()
	names := make([]string, 0, len(p.Config))
	for name := range p.Config {
		names = append(names, name)
	}
	sort.Strings(names)
	sec.uint(uint64(len(names)))
	for _, name := range names {
		sec.str(name)
		sec.str(p.Config[name])
	}
	sec.flush(&body, secConfig)

	sec.reset()
	syms := sortedSymbols(p.Symbols)
	sec.uint(uint64(len(syms)))
	var prev uint64
	for _, s := range syms {
		sec.uint(s.Addr - prev)
		prev = s.Addr
		sec.buf = append(sec.buf, s.Type)
		sec.str(s.Name)
	}
	sec.flush(&body, secSymbols)

	sec.reset()
	exports := sortedExports(p.Exports)
	modules, modIndex := stringTable(exports, func(e Export) string { return e.Module })
	spaces, nsIndex := stringTable(exports, func(e Export) string { return e.Namespace })
	for _, table := range [][]string{modules, spaces} {
		sec.uint(uint64(len(table)))
		for _, s := range table {
			sec.str(s)
		}
	}
	sec.uint(uint64(len(exports)))
	for _, e := range exports {
		sec.str(e.Name)
		sec.buf = binary.LittleEndian.AppendUint32(sec.buf, e.CRC)
		var flags byte
		if e.HasCRC {
			flags |= 1
		}
		if e.GPLOnly {
			flags |= 2
		}
		sec.buf = append(sec.buf, flags)
		sec.uint(uint64(modIndex[e.Module]))
		sec.uint(uint64(nsIndex[e.Namespace]))
	}
	sec.flush(&body, secExports)

	if p.BTF != nil {
		sec.reset()
		sec.buf = append(sec.buf, p.BTF...)
		sec.flush(&body, secBTF)
	}

	header := append([]byte(Magic), 0, 0)
	binary.LittleEndian.PutUint16(header[len(Magic):], FormatVersion)
	if _, err := w.Write(header); err != nil {
		return fmt.Errorf("write profile: %w", err)
	}
	enc, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	if err != nil {
		return fmt.Errorf("write profile: %w", err)
	}
	if _, err := enc.Write(body.Bytes()); err != nil {
		enc.Close()
		return fmt.Errorf("write profile: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("write profile: %w", err)
	}
	return nil
}

// Read decodes a compact profile. Malformed input of any kind is an error, never a panic.
func Read(r io.Reader) (*Profile, error) {
	header := make([]byte, len(Magic)+2)
	if _, err := io.ReadFull(r, header); err != nil {
		return nil, fmt.Errorf("read profile header: %w", err)
	}
	if string(header[:len(Magic)]) != Magic {
		return nil, fmt.Errorf("not a kemu profile (no %q magic)", Magic)
	}
	if v := binary.LittleEndian.Uint16(header[len(Magic):]); v != FormatVersion {
		return nil, fmt.Errorf("profile format version %d, this kemu reads version %d", v, FormatVersion)
	}
	dec, err := zstd.NewReader(r, zstd.WithDecoderMaxMemory(maxBody), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("read profile: %w", err)
	}
	defer dec.Close()
	body, err := io.ReadAll(io.LimitReader(dec, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read profile: decompress: %w", err)
	}
	if len(body) > maxBody {
		return nil, fmt.Errorf("read profile: body larger than %d bytes", maxBody)
	}
	p, err := decodeBody(body)
	if err != nil {
		return nil, fmt.Errorf("read profile: %w", err)
	}
	return New(p), nil
}

func decodeBody(body []byte) (*Profile, error) {
	p := &Profile{Config: map[string]string{}}
	seen := map[byte]bool{}
	in := reader{b: body}
	for len(in.b) > 0 {
		tag := in.byte()
		n := in.uint()
		if in.err != nil {
			return nil, fmt.Errorf("section header: %w", in.err)
		}
		if n > uint64(len(in.b)) {
			return nil, fmt.Errorf("section %d: length %d exceeds the %d bytes left", tag, n, len(in.b))
		}
		sec := reader{b: in.b[:n]}
		in.b = in.b[n:]
		if seen[tag] {
			return nil, fmt.Errorf("section %d appears twice", tag)
		}
		seen[tag] = true
		switch tag {
		case secMeta:
			p.Release, p.Version, p.Vermagic = sec.str(), sec.str(), sec.str()
		case secConfig:
			count := sec.count(2)
			for i := uint64(0); i < count && sec.err == nil; i++ {
				name := sec.str()
				p.Config[name] = sec.str()
			}
		case secSymbols:
			count := sec.count(3)
			if count > 0 {
				p.Symbols = make([]Symbol, 0, count)
			}
			var addr uint64
			for i := uint64(0); i < count && sec.err == nil; i++ {
				addr += sec.uint()
				p.Symbols = append(p.Symbols, Symbol{Addr: addr, Type: sec.byte(), Name: sec.str()})
			}
		case secExports:
			var tables [2][]string
			for t := range tables {
				count := sec.count(1)
				for i := uint64(0); i < count && sec.err == nil; i++ {
					tables[t] = append(tables[t], sec.str())
				}
			}
			count := sec.count(8)
			if count > 0 {
				p.Exports = make([]Export, 0, count)
			}
			for i := uint64(0); i < count && sec.err == nil; i++ {
				e := Export{Name: sec.str(), CRC: sec.uint32()}
				flags := sec.byte()
				e.HasCRC, e.GPLOnly = flags&1 != 0, flags&2 != 0
				e.Module = sec.index(tables[0])
				e.Namespace = sec.index(tables[1])
				p.Exports = append(p.Exports, e)
			}
		case secBTF:
			p.BTF = bytes.Clone(sec.b)
			sec.b = nil
		default:
			continue // a section from a newer writer
		}
		if sec.err != nil {
			return nil, fmt.Errorf("section %d: %w", tag, sec.err)
		}
		if len(sec.b) != 0 {
			return nil, fmt.Errorf("section %d: %d trailing bytes", tag, len(sec.b))
		}
	}
	if !seen[secMeta] {
		return nil, errors.New("no meta section")
	}
	return p, nil
}

// payload builds one section.
type payload struct{ buf []byte }

func (s *payload) reset()        { s.buf = s.buf[:0] }
func (s *payload) uint(v uint64) { s.buf = binary.AppendUvarint(s.buf, v) }
func (s *payload) str(v string)  { s.uint(uint64(len(v))); s.buf = append(s.buf, v...) }
func (s *payload) flush(out *bytes.Buffer, tag byte) {
	out.WriteByte(tag)
	var n [binary.MaxVarintLen64]byte
	out.Write(n[:binary.PutUvarint(n[:], uint64(len(s.buf)))])
	out.Write(s.buf)
}

// reader decodes one section; the first error sticks and every later read returns zero values.
type reader struct {
	b   []byte
	err error
}

var errShort = errors.New("truncated")

func (r *reader) uint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) < 1 {
		r.err = errShort
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) uint32() uint32 {
	if r.err != nil || len(r.b) < 4 {
		r.err = errShort
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) str() string {
	n := r.uint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.err = errShort
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// count reads an element count and rejects one that the rest of the section cannot hold, given
// that each element takes at least minSize bytes; this bounds every allocation by the input size.
func (r *reader) count(minSize uint64) uint64 {
	n := r.uint()
	if r.err == nil && n > uint64(len(r.b))/minSize {
		r.err = fmt.Errorf("count %d exceeds what %d bytes can hold", n, len(r.b))
		return 0
	}
	return n
}

func (r *reader) index(table []string) string {
	i := r.uint()
	if r.err != nil {
		return ""
	}
	if i >= uint64(len(table)) {
		r.err = fmt.Errorf("string index %d out of range (%d entries)", i, len(table))
		return ""
	}
	return table[i]
}

// sortedSymbols returns the symbols in the order New keeps them, without touching p.
func sortedSymbols(in []Symbol) []Symbol {
	out := append([]Symbol(nil), in...)
	sort.SliceStable(out, func(i, j int) bool { return symbolLess(out[i], out[j]) })
	return out
}

func sortedExports(in []Export) []Export {
	out := append([]Export(nil), in...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// stringTable collects the distinct values of one export column, in first-seen order.
func stringTable(exports []Export, col func(Export) string) ([]string, map[string]int) {
	var table []string
	index := map[string]int{}
	for _, e := range exports {
		v := col(e)
		if _, ok := index[v]; !ok {
			index[v] = len(table)
			table = append(table, v)
		}
	}
	return table, index
}
