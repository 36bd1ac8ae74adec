package loader

import (
	"strings"
)

// parseModinfo splits a .modinfo section into its key=value strings (NUL separated; padding NULs are
// skipped). A string without '=' is no tag at all for get_modinfo(), so it is dropped.
func parseModinfo(b []byte) Modinfo {
	var mi Modinfo
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
	return mi
}

// versionSize is sizeof(struct modversion_info): u64 crc and char name[56].
const versionSize = 64

// parseVersions reads __versions records; a name fills at most its 56 bytes.
func parseVersions(b []byte) []Version {
	out := make([]Version, 0, len(b)/versionSize)
	all := string(b) // one allocation; names are substrings of it
	for off := 0; off+versionSize <= len(b); off += versionSize {
		out = append(out, Version{CRC: le.Uint64(b[off:]), Name: substring(all[off+8:off+versionSize], 0)})
	}
	return out
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
