package depmod

import (
	"os"

	"golang.org/x/sys/unix"

	"kemu/modinfo"
)

// mapModule returns a module's contents for reading. An uncompressed file is mapped rather than
// read, as libkmod does: depmod reads only headers, symbol tables and .modinfo of hundreds of
// megabytes of modules, and copying them all costs more than the work itself. release must be
// called once nothing refers to the bytes any more.
func mapModule(path string) (data []byte, release func(), err error) {
	noop := func() {}
	f, err := os.Open(path)
	if err != nil {
		return nil, noop, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, noop, err
	}
	const magicLen = 6 // shorter files and compressed ones take modinfo's path, errnos included
	if st.Size() < magicLen || st.Size() != int64(int(st.Size())) {
		data, err := modinfo.ReadModule(path)
		return data, noop, err
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		data, err := modinfo.ReadModule(path)
		return data, noop, err
	}
	if modinfo.IsCompressed(m) {
		_ = unix.Munmap(m)
		data, err := modinfo.ReadModule(path)
		return data, noop, err
	}
	return m, func() { _ = unix.Munmap(m) }, nil
}
