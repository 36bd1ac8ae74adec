package machine

// strlcat (lib/string.c): appends src to the string in dest, a buffer of count bytes, truncating
// so that the result stays NUL-terminated; the return value is the length the whole result would
// have had (strlen(dest) + strlen(src)), which callers compare with count to detect truncation. A
// dest already filling its buffer is the kernel's BUG_ON.

func init() {
	register("strlcat", hStrlcat)
}

func hStrlcat(m *Machine, t *Trap) (uint64, error) {
	dest, src, count := t.Arg(0), t.Arg(1), t.Arg(2)
	d, err := m.ReadCString(dest, maxString)
	if err != nil {
		return 0, err
	}
	s, err := m.ReadCString(src, maxString)
	if err != nil {
		return 0, err
	}
	res := uint64(len(d) + len(s))
	if uint64(len(d)) >= count {
		return 0, &kernelBug{file: "lib/string.c", line: 241}
	}
	room := count - uint64(len(d))
	if uint64(len(s)) >= room {
		s = s[:room-1]
	}
	return res, m.WriteAt(append([]byte(s), 0), dest+uint64(len(d)))
}
