package machine

import (
	"syscall"

	"kemu/mmu"
	"kemu/printk"
)

// seq_file (fs/seq_file.c) and the simple_* buffer helpers (fs/libfs.c), emulated in Go with the
// kernel's buffer rules. The struct seq_file lives in guest
// memory (BTF layout) and is the only state: module code reads m->private, m->count and friends
// inline, so the Go side keeps nothing of its own.
//
// The rules kept from 6.1: the buffer starts at a page and doubles whenever one record does not
// fit (the record is then produced again); a read fills the caller's buffer with whole records
// and leaves the rest of the last one for the next read; a formatted write that does not fit marks
// the buffer overflowed (count = size); a position other than where the last read ended replays
// the records from the start up to it (traverse).

func init() {
	register("seq_read", hSeqRead)
	register("seq_lseek", hSeqLseek)
	register("seq_open", hSeqOpen)
	register("seq_release", hSeqRelease)
	register("single_open", hSingleOpen)
	register("single_release", hSingleRelease)
	register("seq_open_private", hSeqOpenPrivate)
	register("seq_release_private", hSeqReleasePrivate)
	register("single_start", hSingleStart)
	register("single_next", hSingleNext)
	register("single_stop", hNop)
	register("seq_printf", hSeqPrintf)
	register("seq_vprintf", hSeqVprintf)
	register("seq_puts", hSeqPuts)
	register("seq_putc", hSeqPutc)
	register("seq_write", hSeqWrite)
	register("simple_read_from_buffer", hSimpleReadFromBuffer)
	register("simple_write_to_buffer", hSimpleWriteToBuffer)
}

// seqFile is a guest struct seq_file: its fields read and written through the BTF layout.
type seqFile struct {
	m    *Machine
	addr uint64
}

func (s seqFile) get(field string) uint64    { return s.m.field("seq_file", field, s.addr) }
func (s seqFile) set(field string, v uint64) { s.m.setField("seq_file", field, s.addr, 8, v) }
func (s seqFile) ptr(field string) uint64    { return s.addr + s.m.offset("seq_file", field) }
func (s seqFile) op(name string) uint64      { return s.m.field("seq_operations", name, s.get("op")) }
func (m *Machine) seqOf(file uint64) seqFile {
	return seqFile{m, m.field("file", "private_data", file)}
}
func (m *Machine) kernelAlloc(n uint64) uint64 { p, _ := m.kernel.kzalloc(n); return p }

// The errnos seq_file returns.
const (
	einval = syscall.EINVAL
	efault = syscall.EFAULT
	enomem = syscall.ENOMEM
)

// seqStartToken is SEQ_START_TOKEN, what single_start hands to show.
const seqStartToken = 1

// seqOpen is seq_open(file, op): a zeroed seq_file becomes file->private_data.
func (m *Machine) seqOpen(file, op uint64) (seqFile, int64) {
	size, ok := m.structSize("seq_file")
	if !ok {
		return seqFile{}, -int64(enomem)
	}
	p := m.kernelAlloc(size)
	if p == 0 {
		return seqFile{}, -int64(enomem)
	}
	s := seqFile{m, p}
	s.set("op", op)
	s.set("file", file)
	m.setField("file", "private_data", file, 8, p)
	if mode, err := m.ReadU32(file + m.offset("file", "f_mode")); err == nil {
		m.setField("file", "f_mode", file, 4, uint64(mode&^fmodePwrite))
	}
	return s, 0
}

// singleOpen is single_open(file, show, data): seq operations producing one record.
func (m *Machine) singleOpen(file, show, data uint64) (int64, error) {
	size, ok := m.structSize("seq_operations")
	if !ok {
		return -int64(enomem), nil
	}
	op := m.kernelAlloc(size)
	if op == 0 {
		return -int64(enomem), nil
	}
	for name, fn := range map[string]uint64{"start": m.kernelFunc("single_start"), "next": m.kernelFunc("single_next"), "stop": m.kernelFunc("single_stop"), "show": show} {
		m.setField("seq_operations", name, op, 8, fn)
	}
	s, errno := m.seqOpen(file, op)
	if errno != 0 {
		_ = m.kfree(op, kemuCaller)
		return errno, nil
	}
	s.set("private", data)
	return 0, nil
}

// seqOpenPrivate is seq_open_private(file, ops, psize): seq_open with a zeroed private state.
func (m *Machine) seqOpenPrivate(file, ops, psize uint64) (int64, error) {
	private := m.kernelAlloc(max(psize, 1))
	if private == 0 {
		return -int64(enomem), nil
	}
	s, errno := m.seqOpen(file, ops)
	if errno != 0 {
		_ = m.kfree(private, kemuCaller)
		return errno, nil
	}
	s.set("private", private)
	return 0, nil
}

// seqRelease is seq_release, and single_release's freeing of its operations when single.
func (m *Machine) seqRelease(file uint64, single bool) error {
	s := m.seqOf(file)
	if s.addr == 0 {
		return nil
	}
	op := s.get("op")
	if buf := s.get("buf"); buf != 0 {
		_ = m.kfree(buf, kemuCaller)
	}
	_ = m.kfree(s.addr, kemuCaller)
	if single && op != 0 {
		_ = m.kfree(op, kemuCaller)
	}
	return nil
}

// seqReleasePrivate is seq_release_private: the private state goes too.
func (m *Machine) seqReleasePrivate(file uint64) error {
	s := m.seqOf(file)
	if p := s.get("private"); p != 0 && s.addr != 0 {
		_ = m.kfree(p, kemuCaller)
		s.set("private", 0)
	}
	return m.seqRelease(file, false)
}

func hSeqOpen(m *Machine, t *Trap) (uint64, error) {
	_, errno := m.seqOpen(t.Arg(0), t.Arg(1))
	return uint64(errno), nil
}

func hSingleOpen(m *Machine, t *Trap) (uint64, error) {
	errno, err := m.singleOpen(t.Arg(0), t.Arg(1), t.Arg(2))
	return uint64(errno), err
}

func hSeqOpenPrivate(m *Machine, t *Trap) (uint64, error) {
	errno, err := m.seqOpenPrivate(t.Arg(0), t.Arg(1), t.Arg(2))
	return uint64(errno), err
}

func hSeqRelease(m *Machine, t *Trap) (uint64, error) { return 0, m.seqRelease(t.Arg(1), false) }

func hSingleRelease(m *Machine, t *Trap) (uint64, error) { return 0, m.seqRelease(t.Arg(1), true) }

func hSeqReleasePrivate(m *Machine, t *Trap) (uint64, error) {
	return 0, m.seqReleasePrivate(t.Arg(1))
}

// single_start(m, pos): the one record at position 0, nothing after.
func hSingleStart(m *Machine, t *Trap) (uint64, error) {
	pos, err := m.ReadU64(t.Arg(1))
	if err != nil || pos != 0 {
		return 0, err
	}
	return seqStartToken, nil
}

// single_next(m, v, pos): past the one record.
func hSingleNext(m *Machine, t *Trap) (uint64, error) {
	pos, err := m.ReadU64(t.Arg(2))
	if err != nil {
		return 0, err
	}
	return 0, m.WriteU64(t.Arg(2), pos+1)
}

// seq_read(file, buf, size, ppos).
func hSeqRead(m *Machine, t *Trap) (uint64, error) {
	file, ubuf, size, ppos := t.Arg(0), t.Arg(1), t.Arg(2), t.Arg(3)
	s := m.seqOf(file)
	if s.addr == 0 {
		return negErrno(einval), nil
	}
	pos, err := m.ReadU64(ppos)
	if err != nil {
		return 0, err
	}
	if pos != s.get("read_pos") {
		if ret, err := s.traverse(pos); err != nil || ret < 0 {
			return uint64(ret), err
		}
	}
	copied, err := s.read(ubuf, size, false)
	if err != nil || copied <= 0 {
		return uint64(copied), err
	}
	return uint64(copied), m.WriteU64(ppos, pos+uint64(copied))
}

// traverse restarts the records and skips to byte pos, as a seek (or a read at a moved position)
// makes the kernel do.
func (s seqFile) traverse(pos uint64) (int64, error) {
	for _, f := range []string{"index", "count", "from", "read_pos"} {
		s.set(f, 0)
	}
	for s.get("read_pos") < pos {
		n, err := s.read(0, pos-s.get("read_pos"), true)
		if err != nil || n < 0 {
			return n, err
		}
		if n == 0 {
			break // past the end: the position stays, reads return 0
		}
	}
	return 0, nil
}

// read is the body of seq_read_iter: up to size bytes into the user buffer at ubuf (or dropped,
// when discard), in whole records. It returns the bytes delivered or a negative errno.
func (s seqFile) read(ubuf, size uint64, discard bool) (int64, error) {
	m := s.m
	if s.get("buf") == 0 {
		buf := m.kernelAlloc(pageSize)
		if buf == 0 {
			return -int64(enomem), nil
		}
		s.set("buf", buf)
		s.set("size", pageSize)
	}
	out := func(copied, n uint64) uint64 { // bytes delivered of n at buf+from
		if discard {
			return n
		}
		return n - m.copyToUser(ubuf+copied, s.get("buf")+s.get("from"), n)
	}
	copied := uint64(0)
	if count := s.get("count"); count > 0 {
		n := out(0, min(count, size))
		s.set("count", count-n)
		s.set("from", s.get("from")+n)
		copied += n
		if s.get("count") > 0 {
			return s.done(copied, 0)
		}
	}
	s.set("from", 0)
	p, err := m.Call(s.op("start"), s.addr, s.ptr("index"))
	if err != nil {
		return 0, err
	}
	var showErr int64
	for {
		if p == 0 || isErrPtr(p) {
			showErr = ptrErr(p)
			if _, err := m.Call(s.op("stop"), s.addr, p); err != nil {
				return 0, err
			}
			s.set("count", 0)
			return s.done(copied, showErr)
		}
		r, err := m.Call(s.op("show"), s.addr, p)
		if err != nil {
			return 0, err
		}
		if showErr = int64(int32(r)); showErr < 0 {
			if _, err := m.Call(s.op("stop"), s.addr, p); err != nil {
				return 0, err
			}
			s.set("count", 0)
			return s.done(copied, showErr)
		}
		if showErr > 0 { // SEQ_SKIP
			s.set("count", 0)
		}
		if s.get("count") == 0 {
			if p, err = m.Call(s.op("next"), s.addr, p, s.ptr("index")); err != nil {
				return 0, err
			}
			continue
		}
		if !s.overflowed() {
			break
		}
		// The record did not fit: a buffer twice the size, and the record again.
		if _, err := m.Call(s.op("stop"), s.addr, p); err != nil {
			return 0, err
		}
		_ = m.kfree(s.get("buf"), kemuCaller)
		s.set("count", 0)
		size2 := s.get("size") << 1
		buf := m.kernelAlloc(size2)
		s.set("buf", buf)
		if buf == 0 {
			return s.done(copied, -int64(enomem))
		}
		s.set("size", size2)
		if p, err = m.Call(s.op("start"), s.addr, s.ptr("index")); err != nil {
			return 0, err
		}
	}
	// One record is in the buffer; add whole records while the caller wants more.
	for {
		offs, index := s.get("count"), s.get("index")
		if p, err = m.Call(s.op("next"), s.addr, p, s.ptr("index")); err != nil {
			return 0, err
		}
		if s.get("index") == index { // a buggy ->next that did not move the position
			s.set("index", index+1)
		}
		if p == 0 || isErrPtr(p) || s.get("count") >= size-copied {
			break
		}
		r, err := m.Call(s.op("show"), s.addr, p)
		if err != nil {
			return 0, err
		}
		if r := int32(r); r > 0 {
			s.set("count", offs)
		} else if r < 0 || s.overflowed() {
			s.set("count", offs)
			break
		}
	}
	if _, err := m.Call(s.op("stop"), s.addr, p); err != nil {
		return 0, err
	}
	n := out(copied, min(s.get("count"), size-copied))
	copied += n
	s.set("count", s.get("count")-n)
	s.set("from", n)
	return s.done(copied, 0)
}

// done ends a read: the bytes delivered, else the error (EFAULT when records were waiting).
func (s seqFile) done(copied uint64, errno int64) (int64, error) {
	if copied == 0 {
		if s.get("count") != 0 {
			return -int64(efault), nil
		}
		return errno, nil
	}
	s.set("read_pos", s.get("read_pos")+copied)
	return int64(copied), nil
}

func (s seqFile) overflowed() bool { return s.get("count") == s.get("size") }

// ptrErr is PTR_ERR of an ERR_PTR, 0 for anything else.
func ptrErr(p uint64) int64 {
	if isErrPtr(p) {
		return int64(p)
	}
	return 0
}

// seq_lseek(file, offset, whence): SEEK_SET and SEEK_CUR, replaying records to the new position.
func hSeqLseek(m *Machine, t *Trap) (uint64, error) {
	file, offset, whence := t.Arg(0), int64(t.Arg(1)), t.Arg(2)
	posAddr := file + m.offset("file", "f_pos")
	cur, err := m.ReadU64(posAddr)
	if err != nil {
		return 0, err
	}
	switch whence {
	case 1: // SEEK_CUR
		offset += int64(cur)
	case 0: // SEEK_SET
	default:
		return negErrno(einval), nil
	}
	if offset < 0 {
		return negErrno(einval), nil
	}
	s := m.seqOf(file)
	if uint64(offset) != s.get("read_pos") {
		if ret, err := s.traverse(uint64(offset)); err != nil || ret < 0 {
			if err == nil {
				s.set("read_pos", 0)
				_ = m.WriteU64(posAddr, 0)
			}
			return uint64(ret), err
		}
	}
	return uint64(offset), m.WriteU64(posAddr, uint64(offset))
}

// seqAppend adds text to the seq_file's buffer when it fits strictly (with room to spare, as
// seq_printf, seq_puts and seq_write test it), and marks the buffer overflowed otherwise.
func (m *Machine) seqAppend(sf uint64, text []byte) (bool, error) {
	s := seqFile{m, sf}
	count, size := s.get("count"), s.get("size")
	if count < size && count+uint64(len(text)) < size {
		if err := m.WriteAt(text, s.get("buf")+count); err != nil {
			return false, err
		}
		s.set("count", count+uint64(len(text)))
		return true, nil
	}
	s.set("count", size)
	return false, nil
}

// seq_printf(m, fmt, ...).
func hSeqPrintf(m *Machine, t *Trap) (uint64, error) {
	text, err := m.format(t.Arg(1), t.VarArgs(2))
	if err != nil {
		return 0, err
	}
	_, err = m.seqAppend(t.Arg(0), text)
	return 0, err
}

// seq_vprintf(m, fmt, va_list).
func hSeqVprintf(m *Machine, t *Trap) (uint64, error) {
	va, err := printk.NewVaList(&printkEnv{m: m}, t.Arg(2))
	if err != nil {
		return 0, err
	}
	text, err := m.format(t.Arg(1), va)
	if err != nil {
		return 0, err
	}
	_, err = m.seqAppend(t.Arg(0), text)
	return 0, err
}

// seq_puts(m, s).
func hSeqPuts(m *Machine, t *Trap) (uint64, error) {
	str, err := m.ReadCString(t.Arg(1), 1<<20)
	if err != nil {
		return 0, err
	}
	_, err = m.seqAppend(t.Arg(0), []byte(str))
	return 0, err
}

// seq_putc(m, c): one byte while there is room at all.
func hSeqPutc(m *Machine, t *Trap) (uint64, error) {
	s := seqFile{m, t.Arg(0)}
	count := s.get("count")
	if count >= s.get("size") {
		return 0, nil
	}
	if err := m.WriteAt([]byte{byte(t.Arg(1))}, s.get("buf")+count); err != nil {
		return 0, err
	}
	s.set("count", count+1)
	return 0, nil
}

// seq_write(m, data, len): 0, or -1 when it did not fit.
func hSeqWrite(m *Machine, t *Trap) (uint64, error) {
	data, err := m.Read(t.Arg(1), t.Arg(2))
	if err != nil {
		return 0, err
	}
	ok, err := m.seqAppend(t.Arg(0), data)
	if !ok {
		return ^uint64(0), err
	}
	return 0, err
}

// simple_read_from_buffer(to, count, ppos, from, available): user read of a kernel buffer at *ppos.
func hSimpleReadFromBuffer(m *Machine, t *Trap) (uint64, error) {
	to, count, ppos, from, available := t.Arg(0), t.Arg(1), t.Arg(2), t.Arg(3), t.Arg(4)
	pos, err := m.ReadU64(ppos)
	if err != nil {
		return 0, err
	}
	if int64(pos) < 0 {
		return negErrno(einval), nil
	}
	if pos >= available || count == 0 {
		return 0, nil
	}
	count = min(count, available-pos)
	left := m.copyToUser(to, from+pos, count)
	if left == count {
		return negErrno(efault), nil
	}
	count -= left
	return count, m.WriteU64(ppos, pos+count)
}

// simple_write_to_buffer(to, available, ppos, from, count): user write into a kernel buffer.
func hSimpleWriteToBuffer(m *Machine, t *Trap) (uint64, error) {
	to, available, ppos, from, count := t.Arg(0), t.Arg(1), t.Arg(2), t.Arg(3), t.Arg(4)
	pos, err := m.ReadU64(ppos)
	if err != nil {
		return 0, err
	}
	if int64(pos) < 0 {
		return negErrno(einval), nil
	}
	if pos >= available || count == 0 {
		return 0, nil
	}
	count = min(count, available-pos)
	left, err := m.copyFromUser(to+pos, from, count)
	if err != nil {
		return 0, err
	}
	if left == count {
		return negErrno(efault), nil
	}
	count -= left
	return count, m.WriteU64(ppos, pos+count)
}

// kernelCaller labels an allocation the emulated kernel makes for itself.
func kernelCaller(what string) mmu.Caller { return mmu.Caller{Label: "kemu " + what} }
