package machine

import (
	"math"
	"syscall"
)

// lseek(2) on the user process's files, and the kernel's llseek helpers modules put in their
// file_operations (fs/read_write.c): default_llseek, noop_llseek, generic_file_llseek,
// fixed_size_llseek, vfs_setpos. A file without ->llseek cannot seek (ESPIPE); a /proc entry without
// proc_lseek gets default_llseek (pde_lseek); seq_file entries use seq_lseek (vfs_seq.go).

func init() {
	register("default_llseek", hDefaultLlseek)
	register("noop_llseek", hNoopLlseek)
	register("generic_file_llseek", hGenericFileLlseek)
	register("fixed_size_llseek", hFixedSizeLlseek)
	register("vfs_setpos", hVfsSetpos)
}

// The whence values of lseek(2).
const (
	seekSet  = 0
	seekCur  = 1
	seekEnd  = 2
	seekData = 3
	seekHole = 4
)

// Seek is lseek(fd, offset, whence): ->llseek (proc_lseek for /proc), returning the new position.
func (f *File) Seek(offset int64, whence int) (int64, error) {
	if err := f.usable(); err != nil {
		return 0, err
	}
	if f.served != nil {
		return f.served.seek(offset, whence)
	}
	fn := f.method(method{"llseek", "proc_lseek"})
	switch {
	case f.entry != nil && (f.entry.kind == procSingle || f.entry.kind == procSeq):
		fn = f.m.kernelFunc("seq_lseek")
	case fn == 0 && f.isProc():
		fn = f.m.kernelFunc("default_llseek")
	case fn == 0:
		return 0, syscall.ESPIPE
	}
	ret, err := f.call(fn, f.file, uint64(offset), uint64(whence))
	if err != nil {
		return 0, err
	}
	return ssize(ret)
}

// seek moves a served file's read position (SEEK_SET and SEEK_CUR, as seq_lseek allows).
func (s *servedFile) seek(offset int64, whence int) (int64, error) {
	switch whence {
	case seekCur:
		offset += int64(s.off)
	case seekSet:
	default:
		return 0, syscall.EINVAL
	}
	if offset < 0 {
		return 0, syscall.EINVAL
	}
	s.off = int(min(offset, math.MaxInt32))
	return offset, nil
}

// filePos reads where f_pos is, its value and the inode's i_size of a guest file.
func (m *Machine) filePos(file uint64) (posAddr, pos, size uint64, err error) {
	posAddr = file + m.offset("file", "f_pos")
	pos, err = m.ReadU64(posAddr)
	if err != nil {
		return 0, 0, 0, err
	}
	if inode := m.field("file", "f_inode", file); inode != 0 {
		size = m.field("inode", "i_size", inode)
	}
	return posAddr, pos, size, nil
}

// setPos is vfs_setpos: a new position within maxsize is stored (f_version reset), else EINVAL.
func (m *Machine) setPos(file uint64, offset int64, maxsize uint64) (uint64, error) {
	if offset < 0 || uint64(offset) > maxsize {
		return negErrno(syscall.EINVAL), nil
	}
	posAddr := file + m.offset("file", "f_pos")
	pos, err := m.ReadU64(posAddr)
	if err != nil {
		return 0, err
	}
	if uint64(offset) != pos {
		if err := m.WriteU64(posAddr, uint64(offset)); err != nil {
			return 0, err
		}
		m.setField("file", "f_version", file, 8, 0)
	}
	return uint64(offset), nil
}

// llseekSize is generic_file_llseek_size(file, offset, whence, maxsize, eof).
func (m *Machine) llseekSize(file uint64, offset int64, whence int, maxsize, eof uint64) (uint64, error) {
	_, pos, _, err := m.filePos(file)
	if err != nil {
		return 0, err
	}
	switch whence {
	case seekSet:
	case seekEnd:
		offset += int64(eof)
	case seekCur:
		if offset == 0 {
			return pos, nil
		}
		offset += int64(pos)
	case seekData:
		if offset < 0 || uint64(offset) >= eof {
			return negErrno(syscall.ENXIO), nil
		}
	case seekHole:
		if offset < 0 || uint64(offset) >= eof {
			return negErrno(syscall.ENXIO), nil
		}
		offset = int64(eof)
	default:
		return negErrno(syscall.EINVAL), nil
	}
	return m.setPos(file, offset, maxsize)
}

// default_llseek(file, offset, whence): like generic_file_llseek with no size limit.
func hDefaultLlseek(m *Machine, t *Trap) (uint64, error) {
	_, _, size, err := m.filePos(t.Arg(0))
	if err != nil {
		return 0, err
	}
	return m.llseekSize(t.Arg(0), int64(t.Arg(1)), int(int32(t.Arg(2))), math.MaxInt64, size)
}

// generic_file_llseek(file, offset, whence): up to MAX_LFS_FILESIZE (kemu's inodes have no
// superblock to give s_maxbytes), the end being i_size.
func hGenericFileLlseek(m *Machine, t *Trap) (uint64, error) { return hDefaultLlseek(m, t) }

// fixed_size_llseek(file, offset, whence, size).
func hFixedSizeLlseek(m *Machine, t *Trap) (uint64, error) {
	return m.llseekSize(t.Arg(0), int64(t.Arg(1)), int(int32(t.Arg(2))), t.Arg(3), t.Arg(3))
}

// noop_llseek(file, offset, whence): the position does not move.
func hNoopLlseek(m *Machine, t *Trap) (uint64, error) {
	_, pos, _, err := m.filePos(t.Arg(0))
	return pos, err
}

// vfs_setpos(file, offset, maxsize).
func hVfsSetpos(m *Machine, t *Trap) (uint64, error) {
	return m.setPos(t.Arg(0), int64(t.Arg(1)), t.Arg(2))
}
