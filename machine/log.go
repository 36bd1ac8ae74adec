package machine

import (
	"fmt"
	"strings"

	"kemu/printk"
)

// The kernel log is the printk package's ring buffer, stamped with the machine's virtual time.

// printk stores formatted text (with an optional SOH level prefix) as the kernel's printk does.
func (m *Machine) printk(text []byte) int {
	return m.kernel.log.Printk(m.kernel.clock.ns, text)
}

// logf logs one kernel message at level.
func (m *Machine) logf(level int, format string, args ...any) {
	m.kernel.log.Store(printk.Message{TimeNS: m.kernel.clock.ns, Level: level}, []byte(fmt.Sprintf(format, args...)+"\n"))
}

// Dmesg is the kernel log as `dmesg` prints it: "[    0.123456] text" per record.
func (m *Machine) Dmesg() string { return m.kernel.log.Dmesg() }

// Messages is the kernel log's text without timestamps, one entry per record.
func (m *Machine) Messages() []string {
	recs := m.kernel.log.Records()
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Text
	}
	return out
}

// Log levels the machine's own reports use.
const (
	levelEmerg   = printk.LevelEmerg
	levelAlert   = printk.LevelAlert
	levelCrit    = printk.LevelCrit
	levelErr     = printk.LevelErr
	levelWarning = printk.LevelWarning
	levelNotice  = printk.LevelNotice
	levelInfo    = printk.LevelInfo
)

// printkEnv is the guest as the formatter sees it. vsprintf checks a pointer only against NULL, the
// first page and error values (check_pointer_msg) and then dereferences it; the formatter reports
// "(efault)" for any unreadable pointer, so the env remembers a failed read the kernel would have
// faulted on, and the handler turns it into the oops the kernel would print.
type printkEnv struct {
	m     *Machine
	fault *Fault
}

func (e *printkEnv) ReadString(addr uint64, max int) (string, error) {
	s, err := e.m.ReadCString(addr, max)
	e.note(addr, err)
	return s, err
}

func (e *printkEnv) Read(addr uint64, buf []byte) error {
	err := e.m.ReadAt(buf, addr)
	e.note(addr, err)
	return err
}

func (e *printkEnv) Symbolize(addr uint64) (string, uint64, uint64, string, bool) {
	return e.m.symbolize(addr)
}

// maxErrno is MAX_ERRNO: pointers in the last 4095 bytes of the address space are ERR_PTR values.
const maxErrno = 4095

func isErrPtr(p uint64) bool { return p >= 1<<64-maxErrno }

func (e *printkEnv) note(addr uint64, err error) {
	f, ok := err.(*Fault)
	if !ok || e.fault != nil || addr < pageSize || isErrPtr(addr) {
		return
	}
	e.fault = f
}

// format is the kernel's vsnprintf over this machine: the format string at fmtAddr with args.
func (m *Machine) format(fmtAddr uint64, args printk.Args) ([]byte, error) {
	f, err := m.ReadCString(fmtAddr, 1<<16)
	if err != nil {
		return nil, err
	}
	fm := m.formatter()
	text := fm.Format([]byte(f), args)
	if fault := fm.Env.(*printkEnv).fault; fault != nil {
		return nil, fault
	}
	return text, nil
}

func (m *Machine) formatter() *printk.Formatter {
	return &printk.Formatter{Env: &printkEnv{m: m}, Options: printk.Options{PointerKey: [2]uint64{0x6b656d75, 0x6d616368}}}
}

func splitLines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }
