package loader

import (
	"bytes"
	"strings"
)

// parseModinfo splits a .modinfo section into its key=value strings (NUL separated; padding NULs are
// skipped). A string without '=' is no tag at all for get_modinfo(), so it is dropped.
func parseModinfo(b []byte) Modinfo {
	// At most one entry per NUL-terminated string, and one for a last unterminated one: sized once,
	// as the registry keeps every module's.
	mi := make(Modinfo, 0, bytes.Count(b, []byte{0})+1)
	rest := string(b) // one allocation; keys and values are substrings of it
	for rest != "" {
		s := rest
		if i := strings.IndexByte(rest, 0); i >= 0 {
			s, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		if k, v, ok := strings.Cut(s, "="); ok {
			mi = append(mi, ModinfoEntry{Key: k, Value: v})
		}
	}
	if len(mi) == 0 {
		return nil // no tags: no Modinfo, rather than an empty one
	}
	return mi
}

// versionSize is sizeof(struct modversion_info): u64 crc and char name[56].
const versionSize = 64

// parseVersions reads __versions records; a name fills at most its 56 bytes.
func parseVersions(b []byte) []Version {
	n := len(b) / versionSize
	out := make([]Version, n)
	// The names are substrings of one string holding them all: one allocation, and a third of the
	// section's size, since most of each record's 56 name bytes are NUL padding.
	total := 0
	for i := range out {
		total += len(versionName(b, i))
	}
	var names strings.Builder
	names.Grow(total)
	for i := range out {
		names.Write(versionName(b, i))
	}
	all, start := names.String(), 0
	for i := range out {
		end := start + len(versionName(b, i))
		out[i] = Version{CRC: le.Uint64(b[i*versionSize:]), Name: all[start:end]}
		start = end
	}
	return out
}

// versionName is the name of __versions record i: up to its first NUL, at most 56 bytes.
func versionName(b []byte, i int) []byte {
	name := b[i*versionSize+8 : (i+1)*versionSize]
	if j := bytes.IndexByte(name, 0); j >= 0 {
		return name[:j]
	}
	return name
}

// Inspect reads a module file's metadata without linking it: its name, .modinfo and __versions, after
// the same ELF validity checks Load applies. The image may be compressed.
func Inspect(image []byte) (name string, mi Modinfo, versions []Version, err error) {
	img, err := Decompress(image)
	if err != nil {
		return "", nil, nil, err
	}
	img, _ = stripSignature(img)
	f, err := parseELF(img, nil)
	if err != nil {
		return "", nil, nil, err
	}
	if i := f.findSec(".modinfo"); i != 0 {
		mi = parseModinfo(f.sectionData(i))
	}
	if i := f.findSec("__versions"); i != 0 {
		versions = parseVersions(f.sectionData(i))
	}
	name, _ = mi.Get("name")
	return name, mi, versions, nil
}
