package printk

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// Log levels (KERN_EMERG .. KERN_DEBUG) and the printk defaults of 6.1.
const (
	LevelEmerg   = 0
	LevelAlert   = 1
	LevelCrit    = 2
	LevelErr     = 3
	LevelWarning = 4
	LevelNotice  = 5
	LevelInfo    = 6
	LevelDebug   = 7
	// LevelDefault asks for the level in the text's prefix, or
	// DefaultMessageLevel.
	LevelDefault = -1
	// DefaultMessageLevel is CONFIG_MESSAGE_LOGLEVEL_DEFAULT.
	DefaultMessageLevel = LevelWarning
)

// Sizes of the 6.1 ring buffer as Debian configures it.
const (
	// LineMax is LOG_LINE_MAX: CONSOLE_LOG_MAX (1024) less PREFIX_MAX (32
	// with CONFIG_PRINTK_CALLER off). A record's text is at most
	// LineMax-1 bytes.
	LineMax = 1024 - 32
	// DefaultBufferBytes is 1 << CONFIG_LOG_BUF_SHIFT (17 in Debian's
	// 6.1 config, which also has CONFIG_PRINTK_CALLER and
	// CONFIG_STACKTRACE_BUILD_ID off and CONFIG_SYMBOLIC_ERRNAME on).
	DefaultBufferBytes = 1 << 17
)

// kernSOH starts a KERN_<level> or KERN_CONT prefix.
const kernSOH = '\001'

// prefixBufLen is how much of a message vprintk_store() formats first to
// find its level: prefix_buf[8] less the NUL.
const prefixBufLen = 7

// Record is one entry of the kernel log.
type Record struct {
	Seq      uint64
	TimeNS   uint64 // local_clock() at the first printk of the record
	Facility int    // 0 for the kernel
	Level    int
	Text     string // without the trailing newline and level prefixes
	// Final is set once the record ended with a newline (or came from
	// dev_printk); pr_cont can no longer append to it.
	Final  bool
	Caller uint32
}

// Message describes one printk call to Log.Store.
type Message struct {
	TimeNS   uint64
	Facility int // 0 for printk, where the level comes from the text
	Level    int // LevelDefault to take it from the text
	// Dev marks dev_printk_emit(): the record ends here even without a
	// trailing newline.
	Dev bool
	// Caller identifies the task or CPU: pr_cont only continues the
	// caller's own open record.
	Caller uint32
}

// Log is the printk ring buffer. The zero value is ready, holding
// DefaultBufferBytes of text; older records are dropped to make room.
type Log struct {
	// MaxBytes bounds the text kept (0: DefaultBufferBytes). Each record
	// is charged its text length plus a fixed overhead, an approximation
	// of the 6.1 ring's descriptor and data rings.
	MaxBytes int
	records  []Record
	bytes    int
	nextSeq  uint64
	// Dropped counts records lost to the size bound.
	Dropped uint64
}

// recordOverhead approximates what a record costs besides its text.
const recordOverhead = 64

// Printk stores the already formatted text of a printk() at timeNS from
// caller 0, and returns what printk returns: the bytes stored.
func (l *Log) Printk(timeNS uint64, text []byte) int {
	return l.Store(Message{TimeNS: timeNS, Level: LevelDefault}, text)
}

// Store is vprintk_store() for text already formatted by vsnprintf: it
// takes the level and KERN_CONT from the text's SOH prefixes, truncates to
// LineMax-1 bytes, strips one trailing newline, and either continues the
// caller's open record (KERN_CONT) or starts a new one. It returns the
// number of text bytes stored.
func (l *Log) Store(m Message, text []byte) int {
	// The kernel reads the level and KERN_CONT from the first 7 bytes of
	// the output (its prefix_buf), and reserves room for the whole text
	// and a NUL, at most LineMax.
	level, cont := m.Level, false
	if m.Facility == 0 {
		_, level, cont = parsePrefix(text[:min(len(text), prefixBufLen)], level)
	}
	if level == LevelDefault {
		level = DefaultMessageLevel
	}
	reserve := min(len(text)+1, LineMax)
	text = text[:reserve-1]
	final := m.Dev
	if n := len(text); n > 0 && text[n-1] == '\n' {
		text = text[:n-1]
		final = true
	}
	if m.Facility == 0 {
		prefixLen, _, _ := parsePrefix(text, LevelDefault)
		text = text[prefixLen:]
	}

	if cont {
		if last := l.last(); last != nil && !last.Final && last.Caller == m.Caller &&
			len(last.Text)+reserve <= LineMax {
			last.Text += string(text)
			last.Final = final
			l.bytes += len(text)
			l.trim()
			return len(text)
		}
	}
	if last := l.last(); last != nil {
		last.Final = true // reserving a new record finalizes the previous one
	}
	l.records = append(l.records, Record{
		Seq: l.nextSeq, TimeNS: m.TimeNS, Facility: m.Facility, Level: level & 7,
		Text: string(text), Final: final, Caller: m.Caller,
	})
	l.nextSeq++
	l.bytes += len(text) + recordOverhead
	l.trim()
	return len(text)
}

// parsePrefix reads the SOH prefixes at the start of text, as
// printk_parse_prefix() does: the first level digit wins over a default
// level, 'c' is KERN_CONT. It returns the prefix length too.
func parsePrefix(text []byte, level int) (prefixLen, lvl int, cont bool) {
	lvl = level
	for len(text) >= 2 && text[0] == kernSOH {
		switch c := text[1]; {
		case c >= '0' && c <= '7':
			if lvl == LevelDefault {
				lvl = int(c - '0')
			}
		case c == 'c':
			cont = true
		default:
			return prefixLen, lvl, cont
		}
		prefixLen += 2
		text = text[2:]
	}
	return prefixLen, lvl, cont
}

func (l *Log) last() *Record {
	if len(l.records) == 0 {
		return nil
	}
	return &l.records[len(l.records)-1]
}

// trim drops the oldest records until the text fits MaxBytes.
func (l *Log) trim() {
	max := l.MaxBytes
	if max <= 0 {
		max = DefaultBufferBytes
	}
	drop := 0
	for l.bytes > max && drop < len(l.records)-1 {
		l.bytes -= len(l.records[drop].Text) + recordOverhead
		drop++
	}
	if drop > 0 {
		l.records = append(l.records[:0], l.records[drop:]...)
		l.Dropped += uint64(drop)
	}
}

// Records returns a copy of the records held, oldest first.
func (l *Log) Records() []Record {
	return append([]Record(nil), l.records...)
}

// Dmesg renders the log as util-linux dmesg does by default:
// "[%5lu.%06lu] text" per record, later lines of a multi-line record
// indented under the text, non-printable bytes as \xNN.
func (l *Log) Dmesg() string {
	return l.render(false)
}

// DmesgRaw renders the log as `dmesg -r`: each record prefixed with
// "<facility*8+level>".
func (l *Log) DmesgRaw() string {
	return l.render(true)
}

func (l *Log) render(raw bool) string {
	var b bytes.Buffer
	for _, r := range l.records {
		if raw {
			fmt.Fprintf(&b, "<%d>", r.Facility<<3|r.Level)
		}
		header := fmt.Sprintf("[%5d.%06d] ", r.TimeNS/1e9, r.TimeNS%1e9/1e3)
		b.WriteString(header)
		writeSafe(&b, r.Text, len(header))
		b.WriteByte('\n')
	}
	return b.String()
}

// writeSafe writes text as dmesg's safe_fwrite() does in a UTF-8 locale:
// bytes that are neither printable nor white space become \xNN, and a
// newline followed by more text is followed by indent spaces.
func writeSafe(b *bytes.Buffer, text string, indent int) {
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		switch {
		case r == utf8.RuneError && size <= 1, r < 0x80 && !isPrint(byte(r)) && !isCSpace(byte(r)),
			r >= 0x80 && !printableRune(r):
			for _, c := range []byte(text[i : i+size]) {
				fmt.Fprintf(b, `\x%02x`, c)
			}
		case r == '\n' && i+1 < len(text):
			b.WriteByte('\n')
			for range indent {
				b.WriteByte(' ')
			}
		default:
			b.WriteString(text[i : i+size])
		}
		i += size
	}
}

// isCSpace is isspace() in glibc's C locale, which dmesg uses.
func isCSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r')
}

// printableRune approximates glibc's iswprint() for non-ASCII runes.
func printableRune(r rune) bool {
	return r >= 0xa0 && r != utf8.RuneError
}
