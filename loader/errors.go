package loader

import (
	"errors"
	"fmt"
	"syscall"
)

// Error is a load or unload failure as the kernel reports it: the errno init_module/finit_module/
// delete_module returns, and the line the kernel prints to its log for it (Msg, "" when the kernel fails
// silently). Detail adds what kemu knows beyond the kernel's line (section, offset, relocation, ...).
//
// errors.Is(err, syscall.ENOEXEC) works on any error wrapping an *Error.
type Error struct {
	Errno  syscall.Errno
	Msg    string // the kernel's log line, without level or trailing newline
	Detail string // kemu's extra context; "" when Msg says it all

	level   int  // the printk level the kernel logs Msg at (0: KERN_ERR)
	printed bool // Msg already went to Config.Printk
}

func (e *Error) Error() string {
	s := e.Msg
	if s == "" {
		s = e.Detail
	} else if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	if s == "" {
		return e.Errno.Error()
	}
	return s
}

// Unwrap exposes the errno so errors.Is matches it.
func (e *Error) Unwrap() error { return e.Errno }

// kerr builds an *Error whose message is the kernel's format applied to args.
func kerr(errno syscall.Errno, format string, args ...any) *Error {
	return &Error{Errno: errno, Msg: fmt.Sprintf(format, args...)}
}

// withDetail returns e with kemu's extra context attached.
func (e *Error) withDetail(format string, args ...any) *Error {
	e.Detail = fmt.Sprintf(format, args...)
	return e
}

// at sets the printk level the kernel logs the message at (pr_warn, pr_notice rather than pr_err).
func (e *Error) at(level int) *Error {
	e.level = level
	return e
}

// logged marks an error whose message was printed where it arose.
func (e *Error) logged() *Error {
	e.printed = true
	return e
}

// report prints a failed load's kernel line, as the kernel's pr_err/pr_warn at the failure point would.
func (k *Kernel) report(err error) {
	var e *Error
	if !errors.As(err, &e) || e.printed || e.Msg == "" {
		return
	}
	level := e.level
	if level == 0 {
		level = LogErr
	}
	k.printk(level, "%s", e.Msg)
	e.printed = true
}

// Errno extracts the kernel errno from err: the one an *Error carries, a bare syscall.Errno, or 0 when
// err is nil or carries none.
func Errno(err error) syscall.Errno {
	var le *Error
	if errors.As(err, &le) {
		return le.Errno
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		return en
	}
	return 0
}

// InsmodError is the line kmod's insmod prints when init_module fails:
// "insmod: ERROR: could not insert module hello.ko: Invalid module format".
func InsmodError(path string, err error) string {
	return fmt.Sprintf("insmod: ERROR: could not insert module %s: %s", path, InsmodReason(Errno(err)))
}

// InsmodReason is the text insmod (kmod's mod_strerror) prints for errno after
// "could not insert module %s: ".
func InsmodReason(errno syscall.Errno) string {
	switch errno {
	case syscall.ENOEXEC:
		return "Invalid module format"
	case syscall.ENOENT:
		return "Unknown symbol in module"
	case syscall.ESRCH:
		return "Module has wrong symbol version"
	case syscall.EINVAL:
		return "Invalid parameters"
	}
	// strerror() capitalises; Go's table does not.
	s := errno.Error()
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		s = string(s[0]-'a'+'A') + s[1:]
	}
	return s
}

// Report prints err's kernel line through Config.Printk unless it was printed already: for callers of
// Prepare, whose failures Load would have logged.
func (k *Kernel) Report(err error) { k.report(err) }
