package machine

import (
	"fmt"
	"syscall"

	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"

	"kemu/mmu"
)

// The emulated user process: the task that opens files (cat, echo, ioctl in a session) and its user
// address space. Its buffers live in the low half of the address space as user pages (US set in
// the page tables, mirrored into Unicorn like every mapping), so module code reaching them through
// copy_to_user and friends touches real, separately mapped memory, and a pointer outside them is
// a user-space fault the kernel's uaccess rules turn into -EFAULT.

// userProcess is the user task that drives file operations.
type userProcess struct {
	pid  int
	comm string
	next uint64 // where the next user buffer is mapped: addresses are never reused
}

const (
	// userPID is the process id of the session's user process (insmod's task is 1000).
	userPID = 1001
	// userBufferBase is where buffers are mapped: the mmap area of an x86-64 process.
	userBufferBase = 0x00007f0000000000
	// maxUserBuffer is the largest buffer one operation maps (the page allocator's largest block).
	maxUserBuffer = pageSize << mmu.MaxOrder
)

// SetProcess names the user process that runs file operations from now on: its comm ("cat",
// "echo", "ioctl"), which module code reads in current->comm and oops reports print. The default is
// "cat"; the pid is always 1001.
func (m *Machine) SetProcess(comm string) { m.files().user.comm = comm }

// asUser runs fn as the user process: oops reports name it, and the current task_struct carries
// its pid and comm while fn runs (module code reads current->pid and current->comm), then gets
// insmod's back.
func (m *Machine) asUser(fn func() error) error {
	u := &m.files().user
	type field struct {
		off  uint64
		size int
	}
	var saved [][]byte
	var fields []field
	for _, name := range []string{"pid", "tgid", "comm"} {
		if off, ok := m.fieldOffset("task_struct", name); ok {
			size := 4
			if name == "comm" {
				size = 16
			}
			b := make([]byte, size)
			if m.ReadAt(b, m.task+off) == nil {
				fields, saved = append(fields, field{off, size}), append(saved, b)
			}
		}
	}
	for _, f := range fields {
		v := make([]byte, f.size)
		if f.size == 16 {
			copy(v[:15], u.comm)
		} else {
			v[0], v[1], v[2], v[3] = byte(u.pid), byte(u.pid>>8), byte(u.pid>>16), byte(u.pid>>24)
		}
		_ = m.WriteAt(v, m.task+f.off)
	}
	defer func() {
		for i, f := range fields {
			_ = m.WriteAt(saved[i], m.task+f.off)
		}
	}()
	return m.in(taskContext{pid: u.pid, comm: u.comm}, fn)
}

// userBuffer is user memory mapped for one operation.
type userBuffer struct {
	addr, size uint64
	kva        uint64 // the frames' direct-map address (what AllocPages returned)
	order      int
}

// mapUserBuffer maps n bytes (at least one page) of zeroed user memory, readable and writable by
// the process, holding init at its start.
func (m *Machine) mapUserBuffer(n uint64, init []byte) (*userBuffer, error) {
	n = max(n, uint64(len(init)), 1)
	if n > maxUserBuffer {
		return nil, fmt.Errorf("user buffer of %d bytes: larger than %d: %w", n, maxUserBuffer, syscall.ENOMEM)
	}
	order := 0
	for pageSize<<order < n {
		order++
	}
	size := uint64(pageSize) << order
	kva, err := m.mem.AllocPages(order, true)
	if err != nil {
		return nil, fmt.Errorf("user buffer of %d bytes: %w", n, syscall.ENOMEM)
	}
	pa, _ := m.mem.DirectMapPA(kva)
	u := &m.files().user
	addr := u.next
	if err := m.mem.Tables.Map(addr, pa, size, pageSize, mmu.PermRW, mmu.AttrUser); err != nil {
		_ = m.mem.FreePages(kva, order)
		return nil, fmt.Errorf("map user buffer at %#x: %w", addr, err)
	}
	u.next += size + pageSize // an unmapped page between buffers catches overruns
	b := &userBuffer{addr: addr, size: size, kva: kva, order: order}
	if err := m.WriteAt(init, addr); err != nil {
		m.unmapUserBuffer(b)
		return nil, err
	}
	return b, nil
}

// unmapUserBuffer removes the buffer from the address space and frees its frames: a module that
// kept the pointer faults on its next use, as it would once the process unmapped it.
func (m *Machine) unmapUserBuffer(b *userBuffer) {
	if b == nil || m.mem == nil {
		return
	}
	_ = m.mem.Tables.Unmap(b.addr, b.size)
	_ = m.mem.FreePages(b.kva, b.order)
}

// accessOK is the kernel's access_ok(): the whole range lies below TASK_SIZE_MAX, without wrapping.
func accessOK(addr, n uint64) bool {
	return addr+n >= addr && addr+n <= userEnd
}

// copyToUser copies n bytes of kernel memory at from to the user address to and returns how many
// bytes it could not copy, as copy_to_user does: a range failing access_ok copies nothing, a
// range running into an unmapped page copies up to that page.
func (m *Machine) copyToUser(to, from, n uint64) uint64 {
	if !accessOK(to, n) {
		return n
	}
	return n - m.copyPrefix(to, from, n)
}

// copyFromUser is copy_from_user: like copyToUser, and the uncopied tail of the destination is
// zeroed so that no stale kernel data survives.
func (m *Machine) copyFromUser(to, from, n uint64) (uint64, error) {
	if !accessOK(from, n) {
		return n, m.Fill(to, 0, n)
	}
	done := m.copyPrefix(to, from, n)
	if done < n {
		return n - done, m.Fill(to+done, 0, n-done)
	}
	return 0, nil
}

// copyPrefix copies page by page from src to dst and returns how many bytes it copied before the
// first fault on either side.
func (m *Machine) copyPrefix(dst, src, n uint64) uint64 {
	done := uint64(0)
	for done < n {
		k := min(n-done, pageDown(src+done)+pageSize-(src+done), pageDown(dst+done)+pageSize-(dst+done))
		if m.Copy(dst+done, src+done, k) != nil {
			break
		}
		done += k
	}
	return done
}

// The uaccess functions modules call out of line: get_user/put_user (arch/x86/lib/getuser.S and
// putuser.S, with their own register conventions), strncpy_from_user, strnlen_user and
// clear_user. copy_to_user and copy_from_user are in handlers_dev.go.
func init() {
	for _, size := range []uint64{1, 2, 4, 8} {
		register(fmt.Sprintf("__get_user_%d", size), hGetUser(size, true))
		register(fmt.Sprintf("__get_user_nocheck_%d", size), hGetUser(size, false))
		register(fmt.Sprintf("__put_user_%d", size), hPutUser(size, true))
		register(fmt.Sprintf("__put_user_nocheck_%d", size), hPutUser(size, false))
	}
	register("strncpy_from_user", hStrncpyFromUser)
	register("strnlen_user", hStrnlenUser)
	register("clear_user", hClearUser)
	register("__clear_user", hClearUser)
}

// hGetUser is __get_user_N: the address in rax; rax returns 0 or -EFAULT and rdx the value
// (zeroed on a fault). The nocheck variants skip access_ok: only the access itself can fail.
func hGetUser(size uint64, check bool) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		addr := m.reg(uc.X86_REG_RAX)
		var b [8]byte
		if (check && !accessOK(addr, size)) || m.ReadAt(b[:size], addr) != nil {
			m.setReg(uc.X86_REG_RDX, 0)
			return negErrno(syscall.EFAULT), nil
		}
		v := uint64(0)
		for i := size; i > 0; i-- {
			v = v<<8 | uint64(b[i-1])
		}
		m.setReg(uc.X86_REG_RDX, v)
		return 0, nil
	}
}

// hPutUser is __put_user_N: the value in rax, the address in rcx; rcx returns 0 or -EFAULT and
// rax is preserved (the caller's asm lists it as an input only).
func hPutUser(size uint64, check bool) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		v, addr := m.reg(uc.X86_REG_RAX), m.reg(uc.X86_REG_RCX)
		var b [8]byte
		for i := uint64(0); i < size; i++ {
			b[i] = byte(v >> (8 * i))
		}
		status := uint64(0)
		if (check && !accessOK(addr, size)) || m.WriteAt(b[:size], addr) != nil {
			status = negErrno(syscall.EFAULT)
		}
		m.setReg(uc.X86_REG_RCX, status)
		return v, nil
	}
}

// userString reads the user string at src, at most n bytes: the bytes before the NUL, whether a
// NUL ended it, and whether a fault (or access_ok) stopped the read.
func (m *Machine) userString(src, n uint64) (s []byte, terminated, faulted bool) {
	if src >= userEnd {
		return nil, false, true
	}
	n = min(n, userEnd-src)
	for len(s) < int(n) {
		addr := src + uint64(len(s))
		k := min(n-uint64(len(s)), pageDown(addr)+pageSize-addr)
		chunk := make([]byte, k)
		if m.ReadAt(chunk, addr) != nil {
			return s, false, true
		}
		for i, c := range chunk {
			if c == 0 {
				return append(s, chunk[:i]...), true, false
			}
		}
		s = append(s, chunk...)
	}
	return s, false, false
}

// strncpy_from_user(dst, src, count): the string's length when it ends within count (the NUL is
// copied too), count when it does not, -EFAULT on a fault.
func hStrncpyFromUser(m *Machine, t *Trap) (uint64, error) {
	dst, src, count := t.Arg(0), t.Arg(1), t.Arg(2)
	if int64(count) <= 0 {
		return 0, nil
	}
	s, terminated, faulted := m.userString(src, count)
	if faulted {
		return negErrno(syscall.EFAULT), nil
	}
	if terminated {
		s = append(s, 0)
	}
	if err := m.WriteAt(s, dst); err != nil {
		return 0, err
	}
	if terminated {
		return uint64(len(s) - 1), nil
	}
	return count, nil
}

// strnlen_user(src, count): the size including the NUL, more than count when there is none
// within it, 0 on a fault.
func hStrnlenUser(m *Machine, t *Trap) (uint64, error) {
	src, count := t.Arg(0), t.Arg(1)
	if int64(count) <= 0 {
		return 0, nil
	}
	s, terminated, faulted := m.userString(src, count)
	switch {
	case faulted:
		return 0, nil
	case terminated:
		return uint64(len(s)) + 1, nil
	}
	return count + 1, nil
}

// clear_user(to, n): zeroes user memory, returning how many bytes it could not clear.
func hClearUser(m *Machine, t *Trap) (uint64, error) {
	to, n := t.Arg(0), t.Arg(1)
	if !accessOK(to, n) {
		return n, nil
	}
	done := uint64(0)
	for done < n {
		k := min(n-done, pageDown(to+done)+pageSize-(to+done))
		if m.Fill(to+done, 0, k) != nil {
			break
		}
		done += k
	}
	return n - done, nil
}
