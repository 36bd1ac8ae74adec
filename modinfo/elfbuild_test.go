package modinfo

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"kemu/corpus"
)

// elfSpec describes a minimal relocatable ELF object for tests: a null section, .modinfo and
// .shstrtab, with knobs that break one thing at a time.
type elfSpec struct {
	class32, bigEndian bool
	modinfo            []byte
	modinfoName        string  // default ".modinfo"
	shentsize          uint16  // 0: the correct size
	shoffDelta         uint64  // added to e_shoff
	shstrndx           *uint16 // nil: the real index
	unterminatedNames  bool    // .shstrtab without its final NUL
	modinfoOutOfFile   bool    // an extra ".modinfo" before the real one, pointing past the file
}

func modinfoSection(entries ...string) []byte {
	return []byte(strings.Join(entries, "\x00") + "\x00")
}

func buildELF(s elfSpec) []byte {
	var order binary.ByteOrder = binary.LittleEndian
	if s.bigEndian {
		order = binary.BigEndian
	}
	ehdrSize, shdrSize := 64, 64
	if s.class32 {
		ehdrSize, shdrSize = 52, 40
	}
	name := s.modinfoName
	if name == "" {
		name = ".modinfo"
	}
	names := []byte("\x00" + name + "\x00.shstrtab\x00")
	if s.unterminatedNames {
		names = names[:len(names)-1]
	}
	modinfoNameOff, shstrtabNameOff := 1, 2+len(name)

	type sec struct{ name, off, size int }
	data := make([]byte, ehdrSize)
	data = append(data, s.modinfo...)
	modinfo := sec{modinfoNameOff, ehdrSize, len(s.modinfo)}
	namesOff := len(data)
	data = append(data, names...)
	secs := []sec{{}}
	if s.modinfoOutOfFile {
		secs = append(secs, sec{modinfoNameOff, 1 << 30, 16})
	}
	secs = append(secs, modinfo, sec{shstrtabNameOff, namesOff, len(names)})
	for len(data)%8 != 0 {
		data = append(data, 0)
	}
	shoff := len(data)
	for _, sc := range secs {
		h := make([]byte, shdrSize)
		order.PutUint32(h[0:], uint32(sc.name))
		if sc.size != 0 || sc.name != 0 {
			order.PutUint32(h[4:], 1) // SHT_PROGBITS; the reader does not care
		}
		if s.class32 {
			order.PutUint32(h[0x10:], uint32(sc.off))
			order.PutUint32(h[0x14:], uint32(sc.size))
		} else {
			order.PutUint64(h[0x18:], uint64(sc.off))
			order.PutUint64(h[0x20:], uint64(sc.size))
		}
		data = append(data, h...)
	}

	copy(data, "\x7fELF")
	data[4], data[5], data[6] = elfClass64, elfData2LSB, 1
	if s.class32 {
		data[4] = elfClass32
	}
	if s.bigEndian {
		data[5] = elfData2MSB
	}
	shentsize := uint16(shdrSize)
	if s.shentsize != 0 {
		shentsize = s.shentsize
	}
	shstrndx := uint16(len(secs) - 1)
	if s.shstrndx != nil {
		shstrndx = *s.shstrndx
	}
	order.PutUint16(data[16:], 1)  // ET_REL
	order.PutUint16(data[18:], 62) // EM_X86_64
	if s.class32 {
		order.PutUint32(data[0x20:], uint32(uint64(shoff)+s.shoffDelta))
		order.PutUint16(data[0x28:], uint16(ehdrSize))
		order.PutUint16(data[0x2e:], shentsize)
		order.PutUint16(data[0x30:], uint16(len(secs)))
		order.PutUint16(data[0x32:], shstrndx)
	} else {
		order.PutUint64(data[0x28:], uint64(shoff)+s.shoffDelta)
		order.PutUint16(data[0x34:], uint16(ehdrSize))
		order.PutUint16(data[0x3a:], shentsize)
		order.PutUint16(data[0x3c:], uint16(len(secs)))
		order.PutUint16(data[0x3e:], shstrndx)
	}
	return data
}

// corpusModules lists the module files of Debian's kernel (fetched on first use), or skips
// under -short.
func corpusModules(t *testing.T) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("corpus test skipped under -short")
	}
	tree, err := corpus.Debian("")
	require.NoError(t, err)
	mods, err := tree.Modules()
	require.NoError(t, err)
	require.NotEmpty(t, mods, "Debian corpus has no modules")
	return mods
}
