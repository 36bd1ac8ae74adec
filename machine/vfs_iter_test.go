package machine

import (
	"errors"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The iov_iter helpers called as module code calls them, over iterators built in guest memory, and
// the iterdev fixture's ->read_iter/->write_iter reached through read(2) and write(2).

// iterFixture is a machine with a user buffer (its page after it unmapped), a kernel buffer, and
// a way to build iterators over them.
type iterFixture struct {
	m      *Machine
	user   *userBuffer
	kernel uint64 // pageSize bytes of kernel memory holding 0..255 repeated
}

func newIterFixture(t *testing.T) *iterFixture {
	t.Helper()
	m := bootDefault(t, Options{})
	user, err := m.mapUserBuffer(pageSize, nil)
	require.NoError(t, err)
	t.Cleanup(func() { m.unmapUserBuffer(user) })
	k, err := m.kernel.kzalloc(pageSize)
	require.NoError(t, err)
	pattern := make([]byte, pageSize)
	for i := range pattern {
		pattern[i] = byte(i)
	}
	require.NoError(t, m.WriteAt(pattern, k))
	return &iterFixture{m: m, user: user, kernel: k}
}

// iter builds an iterator; for iovec and kvec kinds segs are (base, len) pairs written to a fresh
// array, for ubuf segs is one pair.
func (x *iterFixture) iter(t *testing.T, kind uint8, source bool, segs ...[2]uint64) iovIter {
	t.Helper()
	it := iovIter{x.m, guestStruct(t, x.m, "iov_iter")}
	count := uint64(0)
	for _, s := range segs {
		count += s[1]
	}
	if kind == iterUbuf {
		require.NoError(t, it.init(kind, source, segs[0][0], 0, count))
		return it
	}
	array, err := x.m.kernel.kzalloc(uint64(16 * max(len(segs), 1)))
	require.NoError(t, err)
	for i, s := range segs {
		require.NoError(t, x.m.WriteU64(array+16*uint64(i), s[0]))
		require.NoError(t, x.m.WriteU64(array+16*uint64(i)+8, s[1]))
	}
	require.NoError(t, it.init(kind, source, array, uint64(len(segs)), count))
	return it
}

func (x *iterFixture) state(t *testing.T, it iovIter) iterState {
	t.Helper()
	s, err := it.load()
	require.NoError(t, err)
	return s
}

func TestCopyToIter(t *testing.T) {
	x := newIterFixture(t)
	m, u := x.m, x.user.addr
	end := u + x.user.size // the page after the buffer is unmapped
	cases := []struct {
		name      string
		kind      uint8
		segs      [][2]uint64
		n         uint64
		want      uint64
		wantCount uint64 // left in the iterator
		wantOff   uint64 // iov_offset after
		wantSegs  uint64 // nr_segs after (iovec, kvec)
	}{
		{"ubuf whole", iterUbuf, [][2]uint64{{u, 32}}, 16, 16, 16, 16, 0},
		{"ubuf more than the count", iterUbuf, [][2]uint64{{u, 10}}, 64, 10, 0, 10, 0},
		{"ubuf runs into the hole", iterUbuf, [][2]uint64{{end - 4, 16}}, 16, 4, 12, 4, 0},
		{"ubuf at a kernel address", iterUbuf, [][2]uint64{{m.layout.directMap, 16}}, 16, 0, 16, 0, 0},
		{"ubuf nothing asked", iterUbuf, [][2]uint64{{u, 16}}, 0, 0, 16, 0, 0},
		{"iovec across segments", iterIovec, [][2]uint64{{u, 4}, {u + 100, 8}}, 6, 6, 6, 2, 1},
		{"iovec ends a segment", iterIovec, [][2]uint64{{u, 4}, {u + 100, 8}}, 4, 4, 8, 0, 1},
		{"iovec empty segment skipped", iterIovec, [][2]uint64{{u, 0}, {u + 100, 8}}, 3, 3, 5, 3, 1},
		{"iovec fault in the second", iterIovec, [][2]uint64{{u, 4}, {end - 2, 8}}, 12, 6, 6, 2, 1},
		{"kvec", iterKvec, [][2]uint64{{x.kernel + 2048, 8}, {x.kernel + 3072, 8}}, 12, 12, 4, 4, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			it := x.iter(t, c.kind, false, c.segs...)
			before := x.state(t, it)
			got, err := hCopyToIter(m, trapWith(m, x.kernel, c.n, it.addr))
			require.NoError(t, err)
			assert.Equal(t, c.want, got, "bytes copied")
			s := x.state(t, it)
			assert.Equal(t, c.wantCount, s.count, "count")
			assert.Equal(t, c.wantOff, s.offset, "iov_offset")
			if c.kind != iterUbuf {
				assert.Equal(t, c.wantSegs, s.nrSegs, "nr_segs")
				assert.Equal(t, before.base+16*(before.nrSegs-s.nrSegs), s.base, "iov follows nr_segs")
			}
			// The bytes landed where the segments point, in order.
			done := uint64(0)
			for _, seg := range c.segs {
				k := min(seg[1], got-done)
				if k == 0 {
					continue
				}
				b, err := m.Read(seg[0], k)
				require.NoError(t, err)
				want, err := m.Read(x.kernel+done, k)
				require.NoError(t, err)
				assert.Equal(t, want, b)
				done += k
			}
		})
	}
}

func TestCopyFromIter(t *testing.T) {
	x := newIterFixture(t)
	m, u := x.m, x.user.addr
	end := u + x.user.size
	require.NoError(t, m.WriteAt([]byte("0123456789abcdef"), u))
	require.NoError(t, m.WriteAt([]byte("wxyz"), end-4))
	cases := []struct {
		name string
		kind uint8
		segs [][2]uint64
		n    uint64
		want string // what reached the kernel buffer; the rest keeps its 0x55 fill
	}{
		{"ubuf", iterUbuf, [][2]uint64{{u, 16}}, 10, "0123456789"},
		{"ubuf fault: the tail is left alone", iterUbuf, [][2]uint64{{end - 4, 16}}, 16, "wxyz"},
		{"ubuf kernel address", iterUbuf, [][2]uint64{{m.layout.directMap, 16}}, 16, ""},
		{"iovec", iterIovec, [][2]uint64{{u + 10, 3}, {u, 4}}, 16, "abc0123"},
	}
	dst, err := m.kernel.kzalloc(64)
	require.NoError(t, err)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.NoError(t, m.Fill(dst, 0x55, 32))
			it := x.iter(t, c.kind, true, c.segs...)
			got, err := hCopyFromIter(m, trapWith(m, dst, c.n, it.addr))
			require.NoError(t, err)
			assert.Equal(t, uint64(len(c.want)), got)
			b, err := m.Read(dst, 32)
			require.NoError(t, err)
			assert.Equal(t, c.want, string(b[:len(c.want)]))
			assert.Equal(t, byte(0x55), b[len(c.want)], "nothing past what was copied")
		})
	}
}

func TestCopyFromKvecWithABadPointerFaults(t *testing.T) {
	x := newIterFixture(t)
	it := x.iter(t, iterKvec, true, [2]uint64{0x10, 8})
	_, err := hCopyFromIter(x.m, trapWith(x.m, x.kernel, 8, it.addr))
	var fault *Fault
	require.True(t, errors.As(err, &fault), "a kvec holds kernel pointers: a bad one oopses, got %v", err)
	assert.Equal(t, uint64(0x10), fault.Addr)
}

func TestIovIterAdvanceAndRevert(t *testing.T) {
	x := newIterFixture(t)
	m, u := x.m, x.user.addr
	type op struct {
		advance bool
		n       uint64
	}
	cases := []struct {
		name      string
		kind      uint8
		segs      [][2]uint64
		ops       []op
		wantCount uint64
		wantOff   uint64
		wantSegs  uint64
	}{
		{"ubuf advance, revert", iterUbuf, [][2]uint64{{u, 32}}, []op{{true, 20}, {false, 5}}, 17, 15, 0},
		{"advance past the count stops at it", iterUbuf, [][2]uint64{{u, 8}}, []op{{true, 100}}, 0, 8, 0},
		{"iovec revert into the previous segment", iterIovec, [][2]uint64{{u, 4}, {u + 64, 8}, {u + 128, 8}},
			[]op{{true, 14}, {false, 6}}, 12, 4, 2},
		{"iovec revert two segments back", iterIovec, [][2]uint64{{u, 4}, {u + 64, 8}, {u + 128, 8}},
			[]op{{true, 14}, {false, 13}}, 19, 1, 3},
		{"revert nothing", iterIovec, [][2]uint64{{u, 4}}, []op{{true, 2}, {false, 0}}, 2, 2, 1},
		{"discard only counts", iterDiscard, nil, []op{{true, 0}}, 0, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var it iovIter
			if c.kind == iterDiscard {
				it = iovIter{m, guestStruct(t, m, "iov_iter")}
				require.NoError(t, it.init(iterDiscard, false, 0, 0, 0))
			} else {
				it = x.iter(t, c.kind, false, c.segs...)
			}
			first := x.state(t, it).base
			for _, o := range c.ops {
				h := hIovIterRevert
				if o.advance {
					h = hIovIterAdvance
				}
				_, err := h(m, trapWith(m, it.addr, o.n))
				require.NoError(t, err)
			}
			s := x.state(t, it)
			assert.Equal(t, c.wantCount, s.count, "count")
			assert.Equal(t, c.wantOff, s.offset, "iov_offset")
			if c.kind == iterIovec {
				assert.Equal(t, c.wantSegs, s.nrSegs, "nr_segs")
				assert.Equal(t, first+16*(uint64(len(c.segs))-s.nrSegs), s.base, "iov")
			}
		})
	}
}

func TestIovIterRevertPastAUserBufferIsABug(t *testing.T) {
	x := newIterFixture(t)
	it := x.iter(t, iterUbuf, false, [2]uint64{x.user.addr, 16})
	_, err := hIovIterAdvance(x.m, trapWith(x.m, it.addr, 4))
	require.NoError(t, err)
	_, err = hIovIterRevert(x.m, trapWith(x.m, it.addr, 5))
	var bug *kernelBug
	require.True(t, errors.As(err, &bug), "got %v", err)
	assert.Equal(t, "lib/iov_iter.c", bug.file)
}

func TestIovIterZeroAndSegCount(t *testing.T) {
	x := newIterFixture(t)
	m, u := x.m, x.user.addr
	end := u + x.user.size
	require.NoError(t, m.Fill(end-8, 0xee, 8))
	it := x.iter(t, iterUbuf, false, [2]uint64{end - 8, 32})
	got, err := hIovIterZero(m, trapWith(m, 32, it.addr))
	require.NoError(t, err)
	assert.Equal(t, uint64(8), got, "zeroed up to the hole")
	b, err := m.Read(end-8, 8)
	require.NoError(t, err)
	assert.Equal(t, make([]byte, 8), b)

	vec := x.iter(t, iterIovec, false, [2]uint64{u, 4}, [2]uint64{u + 64, 8})
	seg, err := hIovIterSingleSegCount(m, trapWith(m, vec.addr))
	require.NoError(t, err)
	assert.Equal(t, uint64(4), seg)
	_, err = hIovIterAdvance(m, trapWith(m, vec.addr, 5))
	require.NoError(t, err)
	seg, err = hIovIterSingleSegCount(m, trapWith(m, vec.addr))
	require.NoError(t, err)
	assert.Equal(t, uint64(7), seg, "one segment left: the count")
}

func TestCopyPageToIter(t *testing.T) {
	x := newIterFixture(t)
	m := x.m
	page := m.virtToPage(x.kernel)
	it := x.iter(t, iterUbuf, false, [2]uint64{x.user.addr, 64})
	got, err := hCopyPageToIter(m, trapWith(m, page, 100, 16, it.addr))
	require.NoError(t, err)
	assert.Equal(t, uint64(16), got)
	b, err := m.Read(x.user.addr, 16)
	require.NoError(t, err)
	want, err := m.Read(x.kernel+100, 16)
	require.NoError(t, err)
	assert.Equal(t, want, b)

	got, err = hCopyPageToIter(m, trapWith(m, page, pageSize-8, 16, it.addr))
	require.NoError(t, err)
	assert.Zero(t, got, "page_copy_sane refuses a range past the page")
	assert.Contains(t, m.Dmesg(), "page_copy_sane")
}

func TestReadIterWriteIter(t *testing.T) {
	m := bootWith(t, "iterdev")
	const initial = "kemu iter device\n"
	assert.Equal(t, initial, readFile(t, m, "/dev/kemu_iter"))

	f, err := m.Open("/dev/kemu_iter", syscall.O_RDWR)
	require.NoError(t, err)
	defer f.Close()
	assert.Equal(t, initial, readAll(t, f, 3), "short reads follow ki_pos")
	n, err := f.Write([]byte("more\n"))
	require.NoError(t, err)
	assert.Equal(t, 5, n)
	_, err = f.Write([]byte("!refused"))
	assert.ErrorIs(t, err, syscall.EINVAL, "the peeked byte was reverted and refused")
	_, err = f.Seek(0, 0)
	require.NoError(t, err)
	assert.Equal(t, initial+"more\n", readAll(t, f, 64))

	a, err := m.Open("/dev/kemu_iter", syscall.O_WRONLY|syscall.O_APPEND)
	require.NoError(t, err)
	_, err = a.Write([]byte("tail\n"))
	require.NoError(t, err)
	require.NoError(t, a.Close())
	assert.Equal(t, initial+"more\ntail\n", readFile(t, m, "/dev/kemu_iter"), "O_APPEND reaches ki_flags as IOCB_APPEND")

	big := make([]byte, 200)
	for i := range big {
		big[i] = 'x'
	}
	w, err := m.Open("/dev/kemu_iter", syscall.O_WRONLY)
	require.NoError(t, err)
	n, err = w.Write(big)
	require.NoError(t, err)
	assert.Equal(t, 128, n, "the device keeps 128 bytes: a short write")
	_, err = w.Write(big)
	assert.ErrorIs(t, err, syscall.ENOSPC)
	require.NoError(t, w.Close())
}

// TestReadIterFaults hands iterdev's read_iter and write_iter iterators over bad user memory, as
// read(2) and write(2) with a bad buffer would: a partial copy is a short read, none is -EFAULT.
func TestReadIterFaults(t *testing.T) {
	m := bootWith(t, "iterdev")
	f, err := m.Open("/dev/kemu_iter", syscall.O_RDWR)
	require.NoError(t, err)
	defer f.Close()
	user, err := m.mapUserBuffer(pageSize, nil)
	require.NoError(t, err)
	defer m.unmapUserBuffer(user)
	end := user.addr + user.size // the page after the buffer is unmapped
	readIter, writeIter := f.method(mReadIt), f.method(mWriteIt)

	got, err := f.syncIter(readIter, m.layout.directMap, 16, false)
	assert.ErrorIs(t, err, syscall.EFAULT, "a kernel address fails access_ok: nothing copied")
	assert.Zero(t, got)
	pos, err := f.Seek(0, 1)
	require.NoError(t, err)
	assert.Zero(t, pos)

	got, err = f.syncIter(readIter, end-4, 16, false)
	require.NoError(t, err)
	assert.Equal(t, int64(4), got, "copied up to the hole: a short read")
	b, err := m.Read(end-4, 4)
	require.NoError(t, err)
	assert.Equal(t, "kemu", string(b))
	pos, err = f.Seek(0, 1)
	require.NoError(t, err)
	assert.Equal(t, int64(4), pos, "ki_pos became the file position")

	_, err = f.syncIter(writeIter, end, 8, true)
	assert.ErrorIs(t, err, syscall.EFAULT, "the first byte cannot be read")
	pos, err = f.Seek(0, 1)
	require.NoError(t, err)
	assert.Equal(t, int64(4), pos, "a failed write leaves the position")
}
