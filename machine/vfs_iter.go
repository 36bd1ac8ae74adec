package machine

import (
	"encoding/binary"
	"fmt"
	"io"
	"syscall"
)

// A module's own ->read_iter and ->write_iter, and the iov_iter helpers they call (lib/iov_iter.c).
//
// read(2) and write(2) on a file whose operations have read_iter but no read (write_iter but no
// write) go through new_sync_read/new_sync_write: a struct kiocb for the file at its position and a
// struct iov_iter over the user's buffer. 6.1 makes that iterator ITER_UBUF (iov_iter_ubuf), not a
// one-segment ITER_IOVEC. Both structs live in guest memory with their BTF layouts, because module
// code reads iov_iter_count(), iter->count and kiocb->ki_pos inline; the Go side keeps no state.
//
// The helpers honour the iterator's kind: user-backed ones (ITER_UBUF, ITER_IOVEC) copy with the
// uaccess rules (access_ok, then a copy that stops at the first unmapped page: the count copied so
// far is returned and the iterator advances by it, which read_iter turns into a short read or
// -EFAULT); ITER_KVEC copies kernel memory, where a bad pointer oopses; ITER_DISCARD only counts.
// ITER_BVEC, ITER_PIPE and ITER_XARRAY are never built by kemu (no block layer, splice or page
// cache), so a module meeting one copies nothing.

func init() {
	register("_copy_to_iter", hCopyToIter)
	register("_copy_from_iter", hCopyFromIter)
	register("_copy_from_iter_nocache", hCopyFromIter)
	register("copy_page_to_iter", hCopyPageToIter)
	register("copy_page_from_iter", hCopyPageFromIter)
	register("iov_iter_zero", hIovIterZero)
	register("iov_iter_advance", hIovIterAdvance)
	register("iov_iter_revert", hIovIterRevert)
	register("iov_iter_init", hIovIterInit(iterIovec))
	register("iov_iter_kvec", hIovIterInit(iterKvec))
	register("iov_iter_single_seg_count", hIovIterSingleSegCount)
}

// The iterator kinds (enum iter_type).
const (
	iterIovec   = 0
	iterKvec    = 1
	iterBvec    = 2
	iterPipe    = 3
	iterXarray  = 4
	iterDiscard = 5
	iterUbuf    = 6
)

// iovIterRevertBugLine is where v6.1's iov_iter_revert BUG()s on unrolling past the start of
// a user buffer (the pages before it were never pinned).
const iovIterRevertBugLine = 951

// maxSegments bounds one walk of an iovec or kvec array: far more than UIO_MAXIOV (1024), the most
// a system call passes, so only a corrupted nr_segs reaches it.
const maxSegments = 1 << 16

// maxRWCount is MAX_RW_COUNT: the most one read or write moves (INT_MAX rounded down to a page).
const maxRWCount = 0x7ffff000

// iovIter is a guest struct iov_iter, read and written through its BTF layout.
type iovIter struct {
	m    *Machine
	addr uint64
}

// iterLayout is where struct iov_iter keeps what the helpers use, from BTF, looked up once per
// machine (every read and write through ->read_iter goes through it).
type iterLayout struct {
	size                        uint64
	kind, source, user          uint64 // one-byte fields: iter_type, data_source, user_backed
	offset, count, base, nrSegs uint64 // words: iov_offset, count, ubuf (= iov, kvec), nr_segs
}

func (m *Machine) iterLayout() (*iterLayout, error) {
	v := m.files()
	if v.iter != nil {
		return v.iter, nil
	}
	size, ok := m.structSize("iov_iter")
	if !ok {
		return nil, fmt.Errorf("no layout of struct iov_iter (no BTF): %w", syscall.EINVAL)
	}
	l := &iterLayout{size: size}
	for _, f := range []struct {
		name string
		to   *uint64
	}{{"iter_type", &l.kind}, {"data_source", &l.source}, {"user_backed", &l.user},
		{"iov_offset", &l.offset}, {"count", &l.count}, {"ubuf", &l.base}, {"nr_segs", &l.nrSegs}} {
		if *f.to, ok = m.fieldOffset("iov_iter", f.name); !ok || *f.to+8 > size {
			return nil, fmt.Errorf("struct iov_iter has no field %s: %w", f.name, syscall.EINVAL)
		}
	}
	v.iter = l
	return l, nil
}

// iterState is the part of an iov_iter the helpers move: where they are and what is left.
type iterState struct {
	kind    uint8
	offset  uint64 // iov_offset: into the buffer (ubuf) or the current segment
	count   uint64
	base    uint64 // ubuf, or the iovec/kvec array
	nrSegs  uint64
	userBuf bool // user_backed: the memory is the process's, reached with the uaccess rules
}

// load reads the iterator in one access.
func (it iovIter) load() (iterState, error) {
	l, err := it.m.iterLayout()
	if err != nil {
		return iterState{}, err
	}
	b, err := it.m.Read(it.addr, l.size)
	if err != nil {
		return iterState{}, err
	}
	word := func(off uint64) uint64 { return binary.LittleEndian.Uint64(b[off:]) }
	return iterState{kind: b[l.kind], userBuf: b[l.user] != 0, offset: word(l.offset), count: word(l.count),
		base: word(l.base), nrSegs: word(l.nrSegs)}, nil
}

// store writes back what the helpers move (the kind and flags never change).
func (it iovIter) store(s iterState) error {
	l, err := it.m.iterLayout()
	if err != nil {
		return err
	}
	for _, f := range []struct{ off, v uint64 }{{l.offset, s.offset}, {l.count, s.count}, {l.base, s.base}, {l.nrSegs, s.nrSegs}} {
		if err := it.m.WriteU64(it.addr+f.off, f.v); err != nil {
			return err
		}
	}
	return nil
}

// segment is struct iovec and struct kvec alike: a base and a length.
func (m *Machine) segment(array, i uint64) (base, length uint64, err error) {
	if base, err = m.ReadU64(array + 16*i); err != nil {
		return 0, 0, err
	}
	length, err = m.ReadU64(array + 16*i + 8)
	return base, length, err
}

// step moves up to k bytes between the iterator's memory at addr and the other side; it returns
// how many it moved (fewer on a user-space fault) or an error for a kernel-side fault.
type step func(addr, done, k uint64) (uint64, error)

// iterate is iterate_and_advance: at most n bytes (no more than the count), segment by segment,
// stopping at the first short step. The iterator advances by what was moved, which is returned.
func (it iovIter) iterate(n uint64, do step) (uint64, error) {
	s, err := it.load()
	if err != nil {
		return 0, err
	}
	n = min(n, s.count)
	if n == 0 {
		return 0, nil
	}
	done := uint64(0)
	switch s.kind {
	case iterUbuf:
		done, err = do(s.base+s.offset, 0, n)
		s.offset += done
	case iterIovec, iterKvec:
		for walked := 0; done < n && s.nrSegs > 0 && walked < maxSegments; walked++ {
			base, length, err := it.m.segment(s.base, 0)
			if err != nil {
				return 0, err
			}
			k := min(n-done, length-min(s.offset, length))
			moved := uint64(0)
			if k > 0 {
				if moved, err = do(base+s.offset, done, k); err != nil {
					return 0, err
				}
			}
			done += moved
			s.offset += moved
			if moved < k {
				break // a fault: the iterator stays inside this segment
			}
			if s.offset >= length {
				s.base, s.nrSegs, s.offset = s.base+16, s.nrSegs-1, 0
			}
		}
	case iterDiscard:
		done = n
	default:
		return 0, nil // bvec, pipe, xarray: see the file comment
	}
	if err != nil {
		return 0, err
	}
	s.count -= done
	return done, it.store(s)
}

// copyOut moves kernel bytes at src into the iterator: copyout for user memory, memcpy for kvecs.
func (it iovIter) copyOut(src uint64, user bool) step {
	m := it.m
	return func(addr, done, k uint64) (uint64, error) {
		if user {
			return k - m.copyToUser(addr, src+done, k), nil
		}
		return k, m.Copy(addr, src+done, k)
	}
}

// copyIn moves bytes from the iterator to the kernel at dst: copyin (raw_copy_from_user, which
// leaves the uncopied tail alone, unlike copy_from_user) or memcpy.
func (it iovIter) copyIn(dst uint64, user bool) step {
	m := it.m
	return func(addr, done, k uint64) (uint64, error) {
		if user {
			if !accessOK(addr, k) {
				return 0, nil
			}
			return m.copyPrefix(dst+done, addr, k), nil
		}
		return k, m.Copy(dst+done, addr, k)
	}
}

// transfer moves n bytes between the kernel at kaddr and the iterator, into it (toIter) or out of
// it, with the rules of the iterator's kind; it returns the bytes moved.
func (it iovIter) transfer(kaddr, n uint64, toIter bool) (uint64, error) {
	s, err := it.load()
	if err != nil {
		return 0, err
	}
	if toIter {
		return it.iterate(n, it.copyOut(kaddr, s.userBuf))
	}
	return it.iterate(n, it.copyIn(kaddr, s.userBuf))
}

// copyIter is _copy_to_iter(addr, bytes, i) and _copy_from_iter(addr, bytes, i) (and its _nocache
// variant): the bytes copied.
func copyIter(toIter bool) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		return iovIter{m, t.Arg(2)}.transfer(t.Arg(0), t.Arg(1), toIter)
	}
}

var (
	hCopyToIter   = copyIter(true)
	hCopyFromIter = copyIter(false)
)

// pageAddress is page_address() for a struct page in vmemmap: its frame's direct-map address.
func (m *Machine) pageAddress(page uint64) (uint64, bool) {
	pageStruct, ok := m.structSize("page")
	if !ok || page < m.layout.vmemmapBase {
		return 0, false
	}
	return m.layout.directMap + (page-m.layout.vmemmapBase)/pageStruct*pageSize, true
}

// copyPage is copy_page_to_iter/copy_page_from_iter(page, offset, bytes, i): the page's bytes
// at offset, through the iterator. page_copy_sane refuses a range past the (single) page.
func copyPage(toIter bool) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		page, offset, n, it := t.Arg(0), t.Arg(1), t.Arg(2), iovIter{m, t.Arg(3)}
		kaddr, ok := m.pageAddress(page)
		if !ok || offset+n < offset || offset+n > pageSize {
			m.logf(levelWarning, "WARNING: page_copy_sane: page %#x offset %#x bytes %#x", page, offset, n)
			return 0, nil
		}
		return it.transfer(kaddr+offset, n, toIter)
	}
}

var (
	hCopyPageToIter   = copyPage(true)
	hCopyPageFromIter = copyPage(false)
)

// iov_iter_zero(bytes, i): clear_user or memset over the iterator; bytes zeroed.
func hIovIterZero(m *Machine, t *Trap) (uint64, error) {
	it := iovIter{m, t.Arg(1)}
	s, err := it.load()
	if err != nil {
		return 0, err
	}
	return it.iterate(t.Arg(0), func(addr, _, k uint64) (uint64, error) {
		if s.userBuf {
			if !accessOK(addr, k) {
				return 0, nil
			}
			return m.fillPrefix(addr, k), nil
		}
		return k, m.Fill(addr, 0, k)
	})
}

// fillPrefix zeroes page by page and returns how many bytes it cleared before the first fault.
func (m *Machine) fillPrefix(addr, n uint64) uint64 {
	done := uint64(0)
	for done < n {
		k := min(n-done, pageDown(addr+done)+pageSize-(addr+done))
		if m.Fill(addr+done, 0, k) != nil {
			break
		}
		done += k
	}
	return done
}

// iov_iter_advance(i, size): skip size bytes (at most the count) without copying.
func hIovIterAdvance(m *Machine, t *Trap) (uint64, error) {
	_, err := iovIter{m, t.Arg(0)}.iterate(t.Arg(1), func(_, _, k uint64) (uint64, error) { return k, nil })
	return 0, err
}

// iov_iter_revert(i, unroll): step back unroll bytes, across segments for iovecs and kvecs. Going
// back past the start of a ubuf is the kernel's BUG().
func hIovIterRevert(m *Machine, t *Trap) (uint64, error) {
	it, unroll := iovIter{m, t.Arg(0)}, t.Arg(1)
	if unroll == 0 {
		return 0, nil
	}
	if unroll > maxRWCount {
		m.logf(levelWarning, "WARNING: iov_iter_revert: unroll %#x > MAX_RW_COUNT", unroll)
		return 0, nil
	}
	s, err := it.load()
	if err != nil {
		return 0, err
	}
	s.count += unroll
	switch {
	case s.kind == iterDiscard:
	case unroll <= s.offset:
		s.offset -= unroll
	case s.kind == iterUbuf || s.kind == iterXarray:
		return 0, &kernelBug{file: "lib/iov_iter.c", line: iovIterRevertBugLine}
	case s.kind == iterIovec || s.kind == iterKvec:
		unroll -= s.offset
		for {
			s.base, s.nrSegs = s.base-16, s.nrSegs+1
			_, length, err := m.segment(s.base, 0)
			if err != nil {
				return 0, err
			}
			if unroll <= length {
				s.offset = length - unroll
				break
			}
			unroll -= length
		}
	default:
		return 0, nil // bvec, pipe: never built here
	}
	return 0, it.store(s)
}

// iov_iter_init(i, direction, iov, nr_segs, count) and iov_iter_kvec(i, direction, kvec, nr_segs,
// count): a fresh iterator over an array of segments.
func hIovIterInit(kind uint8) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		it := iovIter{m, t.Arg(0)}
		if size, ok := m.structSize("iov_iter"); ok {
			if err := m.Fill(it.addr, 0, size); err != nil {
				return 0, err
			}
		}
		return 0, it.init(kind, t.Arg(1) != 0, t.Arg(2), t.Arg(3), t.Arg(4))
	}
}

// init fills a zeroed iterator; for ITER_UBUF base is the buffer and nrSegs is ignored.
func (it iovIter) init(kind uint8, source bool, base, nrSegs, count uint64) error {
	l, err := it.m.iterLayout()
	if err != nil {
		return err
	}
	flag := func(b bool) byte {
		if b {
			return 1
		}
		return 0
	}
	if kind == iterUbuf {
		nrSegs = 0
	}
	for _, f := range []struct {
		off uint64
		v   byte
	}{{l.kind, kind}, {l.source, flag(source)}, {l.user, flag(kind == iterUbuf || kind == iterIovec)}} {
		if err := it.m.WriteAt([]byte{f.v}, it.addr+f.off); err != nil {
			return err
		}
	}
	return it.store(iterState{kind: kind, count: count, base: base, nrSegs: nrSegs})
}

// iov_iter_single_seg_count(i): what is left of the current segment (the count for one-segment
// iterators).
func hIovIterSingleSegCount(m *Machine, t *Trap) (uint64, error) {
	s, err := iovIter{m, t.Arg(0)}.load()
	if err != nil {
		return 0, err
	}
	if s.nrSegs > 1 && (s.kind == iterIovec || s.kind == iterKvec) {
		_, length, err := m.segment(s.base, 0)
		if err != nil {
			return 0, err
		}
		return min(s.count, length-min(s.offset, length)), nil
	}
	return s.count, nil
}

// The I/O control block flags a file's open mode gives its kiocbs (iocb_flags()), and the open(2)
// flags they come from.
const (
	iocbDsync  = 0x2
	iocbSync   = 0x4
	iocbAppend = 0x10
	iocbDirect = 1 << 17

	oAppend = 0o2000
	oDsync  = 0o10000
	oDirect = 0o40000
	oSync   = 0o4000000 // __O_SYNC
)

// iocbFlags is iocb_flags(file) from the open(2) flags: what do_dentry_open stores in f_iocb_flags.
func iocbFlags(flags int) uint64 {
	res := uint64(0)
	for _, f := range []struct{ open, iocb int }{{oAppend, iocbAppend}, {oDirect, iocbDirect}, {oDsync, iocbDsync}, {oSync, iocbSync}} {
		if flags&f.open != 0 {
			res |= uint64(f.iocb)
		}
	}
	return res
}

// syncIter is new_sync_read/new_sync_write: a kiocb at the file position (init_sync_kiocb) and a
// ITER_UBUF iterator over n bytes of the user buffer at buf, then ->read_iter or ->write_iter.
// The file position becomes kiocb->ki_pos afterwards (for a write only when something was
// written). It returns the method's ssize_t.
func (f *File) syncIter(fn, buf, n uint64, write bool) (int64, error) {
	m := f.m
	kiocbSize, ok1 := m.structSize("kiocb")
	iterSize, ok2 := m.structSize("iov_iter")
	if !ok1 || !ok2 {
		return 0, fmt.Errorf("%s: no layout of struct kiocb or iov_iter: %w", f.path, syscall.EINVAL)
	}
	kiocb, err := m.kernel.kzalloc(kiocbSize + iterSize)
	if err != nil {
		return 0, fmt.Errorf("%s: kiocb: %w", f.path, syscall.ENOMEM)
	}
	defer func() { _ = m.kfree(kiocb, kemuCaller) }()
	iter := iovIter{m, kiocb + kiocbSize}
	posAddr := f.file + m.offset("file", "f_pos")
	pos, err := m.ReadU64(posAddr)
	if err != nil {
		return 0, err
	}
	m.setField("kiocb", "ki_filp", kiocb, 8, f.file)
	m.setField("kiocb", "ki_pos", kiocb, 8, pos)
	iocb, _ := m.readField("file", "f_iocb_flags", f.file, 4)
	m.setField("kiocb", "ki_flags", kiocb, 4, iocb) // ki_ioprio stays IOPRIO_DEFAULT, 0 in 6.1
	if err := iter.init(iterUbuf, write, buf, 0, n); err != nil {
		return 0, err
	}
	ret, err := f.call(fn, kiocb, iter.addr)
	if err != nil {
		return 0, err
	}
	got, err := ssize(ret)
	if !write || got > 0 {
		newPos, perr := m.ReadU64(kiocb + m.offset("kiocb", "ki_pos"))
		if perr != nil {
			return 0, perr
		}
		if perr := m.WriteU64(posAddr, newPos); perr != nil {
			return 0, perr
		}
	}
	return got, err
}

// readIter is read(2) through ->read_iter.
func (f *File) readIter(fn uint64, n int) ([]byte, error) {
	n = min(max(n, 0), maxUserBuffer)
	buf, err := f.m.mapUserBuffer(uint64(n), nil)
	if err != nil {
		return nil, err
	}
	defer f.m.unmapUserBuffer(buf)
	got, err := f.syncIter(fn, buf.addr, uint64(n), false)
	if err != nil {
		return nil, err
	}
	if got == 0 {
		return nil, io.EOF
	}
	return f.m.Read(buf.addr, uint64(min(got, int64(n))))
}

// writeIter is write(2) through ->write_iter.
func (f *File) writeIter(fn uint64, b []byte) (int, error) {
	buf, err := f.m.mapUserBuffer(uint64(len(b)), b)
	if err != nil {
		return 0, err
	}
	defer f.m.unmapUserBuffer(buf)
	got, err := f.syncIter(fn, buf.addr, uint64(len(b)), true)
	return int(got), err
}
