package printk

import (
	"bytes"
	"math"
)

// Options are the kernel settings that change what vsnprintf prints.
type Options struct {
	// PointerKey keys the SipHash that %p prints in place of an address
	// (the kernel's random ptr_key). Derive it from the machine seed.
	PointerKey [2]uint64
	// NoHashPointers prints %p unmodified (boot parameter no_hash_pointers).
	NoHashPointers bool
	// EarlyBoot prints %p as "(____ptrval____)", as 6.1 does before the
	// random pointer key is ready.
	EarlyBoot bool
	// KptrRestrict is kernel.kptr_restrict for %pK: 0 hashes, 1 prints the
	// address (module code runs with insmod's CAP_SYSLOG), 2 prints zeros.
	KptrRestrict int
}

// Bounds on what one Format call will do, so that guest data cannot make the
// host do unbounded work. The kernel has none: it would oops or hang instead.
const (
	// maxStringRead bounds a %s read without precision.
	maxStringRead = 1 << 20
	// maxFormatRead bounds the format string of a %pV read from the guest.
	maxFormatRead = 1 << 16
	// maxVaFormatDepth bounds %pV recursion; deeper levels print "(efault)".
	maxVaFormatDepth = 8
	// maxKeptOutput bounds the bytes Format keeps; the count stays exact.
	maxKeptOutput = 1 << 24
)

// Formatter is vsnprintf over one guest.
type Formatter struct {
	Env     Env
	Options Options
	// Warn, if set, receives the warnings 6.1 raises with WARN_ONCE while
	// formatting (an unsupported conversion, %pA outside Rust), so the
	// caller can log them with the kernel's backtrace.
	Warn func(message string)
}

// Format returns what the kernel's vsnprintf produces for format and args.
// The format ends at its first NUL byte, if any.
func (f *Formatter) Format(format []byte, args Args) []byte {
	o := output{limit: maxKeptOutput}
	f.format(&o, format, args, 0)
	return o.b
}

// Snprintf is vsnprintf into a buffer of size bytes: it returns the bytes to
// store (at most size-1; the caller adds the NUL when size > 0) and the length
// the untruncated output would have had, which is vsnprintf's return value.
// scnprintf's return value is len(text). A size above INT_MAX is rejected
// as 6.1 does (with a warning): nothing is written and the length is 0.
func (f *Formatter) Snprintf(size int, format []byte, args Args) (text []byte, length int) {
	if size > math.MaxInt32 {
		return nil, 0
	}
	keep := size - 1
	if keep < 0 {
		keep = 0
	}
	if keep > maxKeptOutput {
		keep = maxKeptOutput
	}
	o := output{limit: keep}
	f.format(&o, format, args, 0)
	return o.b, o.n
}

// Format formats with env and default options (zero pointer key).
func Format(format []byte, args Args, env Env) []byte {
	f := Formatter{Env: env}
	return f.Format(format, args)
}

// format is vsnprintf's main loop.
func (f *Formatter) format(o *output, format []byte, args Args, depth int) {
	if end := bytes.IndexByte(format, 0); end >= 0 {
		format = format[:end]
	}
	for len(format) > 0 {
		pct := bytes.IndexByte(format, '%')
		if pct < 0 {
			o.bytes(format)
			return
		}
		o.bytes(format[:pct])
		format = format[pct:]

		sp, conv, rest := decode(format, args)
		format = rest
		switch conv {
		case convInvalid:
			// The arguments can no longer be matched to the format:
			// the kernel stops here.
			var c byte
			if len(format) > 0 {
				c = format[0]
			}
			f.warn("Please remove unsupported %" + string([]byte{c}) + " in format string\n")
			return
		case convPercent:
			o.byte('%')
		case convChar:
			width := sp.width
			if sp.flags&flagLeft == 0 {
				o.repeat(' ', width-1)
				width = 1
			}
			o.byte(byte(args.Next()))
			o.repeat(' ', width-1)
		case convString:
			f.guestString(o, args.Next(), sp)
		case convPointer:
			f.pointer(o, format, args.Next(), sp, depth)
			for len(format) > 0 && isAlnum(format[0]) {
				format = format[1:]
			}
		default:
			o.number(integerArg(conv, sp, args.Next()), sp)
		}
	}
}

func (f *Formatter) warn(message string) {
	if f.Warn != nil {
		f.Warn(message)
	}
}

// guestString prints the NUL-terminated guest string at addr (%s).
func (f *Formatter) guestString(o *output, addr uint64, sp spec) {
	f.guestStringMax(o, addr, maxStringRead, sp)
}

// guestStringMax prints the guest string at addr, reading at most max bytes.
func (f *Formatter) guestStringMax(o *output, addr uint64, max int, sp spec) {
	if msg := checkPointer(addr); msg != "" {
		o.errorString(msg, sp)
		return
	}
	if sp.prec >= 0 && int(sp.prec) < max {
		max = int(sp.prec)
	}
	s, err := f.Env.ReadString(addr, max)
	if err != nil {
		o.errorString("(efault)", sp)
		return
	}
	o.padded(s, sp)
}

// pageSize is the x86-64 base page: pointers below it are never valid.
const pageSize = 4096

// maxErrno is the largest errno an ERR_PTR can carry.
const maxErrno = 4095

// isErrValue is IS_ERR_VALUE: the top 4095 addresses are encoded errnos.
func isErrValue(p uint64) bool { return p >= 1<<64-maxErrno }

// checkPointer is the kernel's check_pointer_msg(): the message to print in
// place of a pointer that is obviously bad, or "".
func checkPointer(p uint64) string {
	switch {
	case p == 0:
		return "(null)"
	case p < pageSize || isErrValue(p):
		return "(efault)"
	}
	return ""
}
