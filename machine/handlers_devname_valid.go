package machine

// dev_valid_name (net/core/dev.c): whether a string may name a network device: not empty, shorter
// than IFNAMSIZ, not "." or "..", and free of '/', ':' and white space (the kernel's isspace,
// whose Latin-1 table also counts the no-break space 0xa0).

func init() {
	register("dev_valid_name", hDevValidName)
}

func hDevValidName(m *Machine, t *Trap) (uint64, error) {
	name, err := m.ReadCString(t.Arg(0), ifNameSize)
	if err != nil {
		return 0, err
	}
	if validDevName(name) {
		return 1, nil
	}
	return 0, nil
}

// validDevName takes name as read with at most IFNAMSIZ bytes: a name that long had no NUL in
// time.
func validDevName(name string) bool {
	if name == "" || len(name) >= ifNameSize || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '/', ':', ' ', '\t', '\n', '\v', '\f', '\r', 0xa0:
			return false
		}
	}
	return true
}
