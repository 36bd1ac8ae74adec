package machine

import (
	"strings"
	"syscall"

	"kemu/internal/kstrtox"
)

// The string and memory primitives of lib/string.c and lib/kstrtox.c, over checked guest memory.

func init() {
	register("memcpy", hMemcpy)
	register("__memcpy", hMemcpy)
	register("memmove", hMemcpy)
	register("memset", hMemset)
	register("__memset", hMemset)
	register("memcmp", hMemcmp)
	register("memchr", hMemchr)
	register("strlen", hStrlen)
	register("strnlen", hStrnlen)
	register("strcmp", hStrcmp)
	register("strncmp", hStrncmp)
	register("strcpy", hStrcpy)
	register("strncpy", hStrncpy)
	register("strscpy", hStrscpy)
	register("strlcpy", hStrlcpy)
	register("strcat", hStrcat)
	register("strchr", hStrchr)
	register("strrchr", hStrrchr)
	register("strstr", hStrstr)
	register("kstrtoint", hKstrto(32, true))
	register("kstrtouint", hKstrto(32, false))
	register("kstrtol", hKstrto(64, true))
	register("kstrtoul", hKstrto(64, false))
	register("kstrtoll", hKstrto(64, true))
	register("kstrtoull", hKstrto(64, false))
	register("kstrtou8", hKstrto(8, false))
	register("kstrtou16", hKstrto(16, false))
	register("kstrtos8", hKstrto(8, true))
	register("kstrtos16", hKstrto(16, true))
	register("kstrtobool", hKstrtobool)
}

// maxString bounds every string the kernel reads on a module's behalf.
const maxString = 1 << 20

func negErrno(e syscall.Errno) uint64 { return uint64(-int64(e)) }

// memcpy(dst, src, n) and memmove.
func hMemcpy(m *Machine, t *Trap) (uint64, error) {
	return t.Arg(0), m.Copy(t.Arg(0), t.Arg(1), t.Arg(2))
}

func hMemset(m *Machine, t *Trap) (uint64, error) {
	return t.Arg(0), m.Fill(t.Arg(0), byte(t.Arg(1)), t.Arg(2))
}

func hMemcmp(m *Machine, t *Trap) (uint64, error) {
	d, err := m.Compare(t.Arg(0), t.Arg(1), t.Arg(2))
	return uint64(int64(d)), err
}

func hMemchr(m *Machine, t *Trap) (uint64, error) {
	p, ok, err := m.Index(t.Arg(0), byte(t.Arg(1)), t.Arg(2))
	if !ok {
		return 0, err
	}
	return p, err
}

func hStrlen(m *Machine, t *Trap) (uint64, error) { return m.StrLen(t.Arg(0), maxString) }
func hStrnlen(m *Machine, t *Trap) (uint64, error) {
	return m.StrLen(t.Arg(0), int(min(t.Arg(1), maxString)))
}

func (m *Machine) twoStrings(t *Trap, max int) (string, string, error) {
	a, err := m.ReadCString(t.Arg(0), max)
	if err != nil {
		return "", "", err
	}
	b, err := m.ReadCString(t.Arg(1), max)
	return a, b, err
}

// cmpResult is the sign strcmp returns (the kernel returns -1/1 from lib/string.c).
func cmpResult(c int) uint64 { return uint64(int64(c)) }

func hStrcmp(m *Machine, t *Trap) (uint64, error) {
	a, b, err := m.twoStrings(t, maxString)
	return cmpResult(strings.Compare(a, b)), err
}

func hStrncmp(m *Machine, t *Trap) (uint64, error) {
	a, b, err := m.twoStrings(t, int(min(t.Arg(2), maxString)))
	return cmpResult(strings.Compare(a, b)), err
}

func hStrcpy(m *Machine, t *Trap) (uint64, error) {
	s, err := m.ReadCString(t.Arg(1), maxString)
	if err != nil {
		return 0, err
	}
	return t.Arg(0), m.WriteAt(append([]byte(s), 0), t.Arg(0))
}

// strncpy pads with NULs up to n and does not terminate a string of n or more bytes.
func hStrncpy(m *Machine, t *Trap) (uint64, error) {
	n := min(t.Arg(2), maxString)
	s, err := m.ReadCString(t.Arg(1), int(n))
	if err != nil {
		return 0, err
	}
	b := make([]byte, n)
	copy(b, s)
	return t.Arg(0), m.WriteAt(b, t.Arg(0))
}

// strscpy(dst, src, size): copies and terminates; the length, or -E2BIG when truncated.
func hStrscpy(m *Machine, t *Trap) (uint64, error) {
	size := min(t.Arg(2), maxString)
	if size == 0 {
		return negErrno(syscall.E2BIG), nil
	}
	s, err := m.ReadCString(t.Arg(1), int(size))
	if err != nil {
		return 0, err
	}
	ret := uint64(len(s))
	if uint64(len(s)) >= size {
		s, ret = s[:size-1], negErrno(syscall.E2BIG)
	}
	return ret, m.WriteAt(append([]byte(s), 0), t.Arg(0))
}

// strlcpy(dst, src, size): returns strlen(src).
func hStrlcpy(m *Machine, t *Trap) (uint64, error) {
	s, err := m.ReadCString(t.Arg(1), maxString)
	if err != nil {
		return 0, err
	}
	if size := t.Arg(2); size > 0 {
		c := s
		if uint64(len(c)) >= size {
			c = c[:size-1]
		}
		if err := m.WriteAt(append([]byte(c), 0), t.Arg(0)); err != nil {
			return 0, err
		}
	}
	return uint64(len(s)), nil
}

func hStrcat(m *Machine, t *Trap) (uint64, error) {
	a, b, err := m.twoStrings(t, maxString)
	if err != nil {
		return 0, err
	}
	return t.Arg(0), m.WriteAt(append([]byte(b), 0), t.Arg(0)+uint64(len(a)))
}

func hStrchr(m *Machine, t *Trap) (uint64, error) {
	s, err := m.ReadCString(t.Arg(0), maxString)
	if err != nil {
		return 0, err
	}
	c := byte(t.Arg(1))
	if c == 0 {
		return t.Arg(0) + uint64(len(s)), nil
	}
	if i := strings.IndexByte(s, c); i >= 0 {
		return t.Arg(0) + uint64(i), nil
	}
	return 0, nil
}

func hStrrchr(m *Machine, t *Trap) (uint64, error) {
	s, err := m.ReadCString(t.Arg(0), maxString)
	if err != nil {
		return 0, err
	}
	if i := strings.LastIndexByte(s+"\x00", byte(t.Arg(1))); i >= 0 {
		return t.Arg(0) + uint64(i), nil
	}
	return 0, nil
}

func hStrstr(m *Machine, t *Trap) (uint64, error) {
	a, b, err := m.twoStrings(t, maxString)
	if err != nil {
		return 0, err
	}
	if i := strings.Index(a, b); i >= 0 {
		return t.Arg(0) + uint64(i), nil
	}
	return 0, nil
}

// hKstrto builds kstrto<type>(s, base, res) with lib/kstrtox.c's rules (package kstrtox): base 0
// knows 0x and 0, one trailing newline is accepted, a value that does not fit is -ERANGE.
func hKstrto(bits int, signed bool) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		s, err := m.ReadCString(t.Arg(0), 64)
		if err != nil {
			return 0, err
		}
		base := uint(uint32(t.Arg(1)))
		var v uint64
		var errno syscall.Errno
		if signed {
			var n int64
			n, errno = kstrtox.Int(s, base, bits)
			v = uint64(n)
		} else {
			v, errno = kstrtox.Uint(s, base, bits)
		}
		if errno != 0 {
			return negErrno(errno), nil
		}
		b := make([]byte, bits/8)
		for i := range b {
			b[i] = byte(v >> (8 * i))
		}
		return 0, m.WriteAt(b, t.Arg(2))
	}
}

// kstrtobool(s, res).
func hKstrtobool(m *Machine, t *Trap) (uint64, error) {
	s, err := m.ReadCString(t.Arg(0), 4)
	if err != nil {
		return 0, err
	}
	v, ok := kstrtox.Bool(s)
	if !ok {
		return negErrno(syscall.EINVAL), nil
	}
	b := byte(0)
	if v {
		b = 1
	}
	return 0, m.WriteAt([]byte{b}, t.Arg(1))
}
