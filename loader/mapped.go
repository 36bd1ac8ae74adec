package loader

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"syscall"

	"golang.org/x/sys/unix"
)

// Batch checking reads a whole distribution's modules (about 400 MB for Debian 6.1). Copying every file
// into the heap costs more CPU than validating it, so CheckFiles maps uncompressed files read-only, as
// kmod does, and unmaps each once its module is linked: nothing the registry keeps refers to a file's
// bytes (every name and string the loader keeps is a copy).
//
// A mapped file that another process truncates meanwhile makes the next read of a vanished page fault
// (SIGBUS). The goroutines that read mapped files run with debug.SetPanicOnFault, and the two places
// that read them, Prepare's caller in CheckFiles and LoadPrepared, turn such a fault into an EIO error
// (faultError); every other panic goes on.

// mapMinSize is the smallest file worth mapping; smaller ones are read (a mapping costs two system
// calls and a TLB flush when it goes).
const mapMinSize = 64 << 10

// mappedFile is a module file's bytes, either mapped or read into a reusable buffer.
type mappedFile struct {
	data   []byte // the file's bytes
	mapped bool   // data is a mapping to unmap, else a heap buffer to reuse
	// spare is the caller's buffer a mapped file did not need: it goes back with the file, else every
	// mapped file would cost the caller's pool a buffer, to be grown again for the next small file.
	spare []byte
}

// release unmaps a mapping and returns the heap buffer, if any, for reuse.
func (f mappedFile) release() []byte {
	if f.mapped {
		_ = unix.Munmap(f.data)
		return f.spare
	}
	return f.data
}

// openModuleFile returns the bytes of the module file at path, mapped when it is a large uncompressed
// file, else read into buf, and the module image they hold (decompressed when they are compressed).
// It works on the bare descriptor: an os.File costs a batch check two more system calls per file (the
// runtime poller's registration and mode checks) and a finalizer, for a descriptor that lives a few
// microseconds. Errors are *os.PathError, as os.Open and Read return them.
func openModuleFile(path string, buf []byte) (mappedFile, []byte, error) {
	fd, err := openReadOnly(path)
	if err != nil {
		return mappedFile{data: buf}, nil, err
	}
	defer unix.Close(fd)
	size := int64(-1)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
		size = st.Size
	}
	if size >= mapMinSize && size <= MaxImageSize {
		data, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_POPULATE)
		if err == nil {
			if DetectCompression(data) == None {
				return mappedFile{data: data, mapped: true, spare: buf}, data, nil
			}
			_ = unix.Munmap(data) // a compressed file is read: its image is a copy anyway
		}
	}
	data, img, err := readOpenFile(fdReader{fd, path}, path, size, buf)
	return mappedFile{data: data}, img, err
}

// openReadOnly is open(2) for reading, retried when a signal interrupts it, as os.Open does.
func openReadOnly(path string) (int, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

// fdReader reads a descriptor as os.File.Read does: io.EOF at the end, *os.PathError on failure.
type fdReader struct {
	fd   int
	name string
}

func (r fdReader) Read(b []byte) (int, error) {
	for {
		n, err := unix.Read(r.fd, b)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, &os.PathError{Op: "read", Path: r.name, Err: err}
		case n == 0 && len(b) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// faultError turns the panic value of a memory fault (under debug.SetPanicOnFault) into an EIO error
// about the module file; any other panic is re-raised.
func faultError(r any, what string) error {
	fault, ok := r.(interface{ Addr() uintptr })
	if !ok {
		panic(r)
	}
	return &Error{Errno: syscall.EIO, Detail: fmt.Sprintf("%s: fault at %#x reading the module file (changed while loading?)", what, fault.Addr())}
}

// prepareFile opens and prepares one file for CheckFiles, loaded with flags. It runs with faults as
// panics (the caller's goroutine sets debug.SetPanicOnFault), so a file truncated while mapped is an
// EIO error.
func (k *Kernel) prepareFile(path string, buf []byte, flags Flags) (file mappedFile, p *Prepared, err error) {
	defer func() {
		if r := recover(); r != nil {
			err, p = faultError(r, path), nil
		}
	}()
	file, img, err := openModuleFile(path, buf)
	if err == nil {
		p, err = k.Prepare(img, LoadOptions{Path: path, Flags: flags})
	}
	return file, p, err
}

// panicOnFault is debug.SetPanicOnFault for the calling goroutine; it returns the function restoring
// the previous setting.
func panicOnFault() (restore func()) {
	old := debug.SetPanicOnFault(true)
	return func() { debug.SetPanicOnFault(old) }
}
