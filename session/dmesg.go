package session

import (
	"strconv"
	"strings"
	"time"
)

// dmesg prints the kernel log as util-linux dmesg does ("[    1.234567] text"); -c prints then
// clears it, -C clears it silently. The session remembers where the log was cleared, so the machine's
// ring buffer itself is never changed.
func (s *Session) dmesg(out *output, args []string) int {
	show, clear := true, false
	for _, a := range args {
		switch a {
		case "-c", "--read-clear":
			clear = true
		case "-C", "--clear":
			show, clear = false, true
		default:
			out.errorf("dmesg: invalid option -- '%s'\n", strings.TrimLeft(a, "-"))
			return statusFailed
		}
	}
	if show {
		out.write(s.logSince(s.dmesgSeq))
	}
	if clear {
		s.dmesgSeq = s.nextLogSeq()
	}
	return statusOK
}

// logSince renders the log records numbered from seq on, in dmesg's format. The machine renders the
// whole log; each record starts a line with "[" (continuation lines of a multi-line record are
// indented), which is how its text is split back into records.
func (s *Session) logSince(seq uint64) string {
	recs := s.m.LogRecords()
	skip := 0
	for skip < len(recs) && recs[skip].Seq < seq {
		skip++
	}
	if skip == 0 {
		return s.m.Dmesg()
	}
	text := s.m.Dmesg()
	pos, n := 0, 0
	for pos < len(text) {
		if text[pos] == '[' {
			if n == skip {
				return text[pos:]
			}
			n++
		}
		nl := strings.IndexByte(text[pos:], '\n')
		if nl < 0 {
			break
		}
		pos += nl + 1
	}
	return ""
}

// nextLogSeq is the sequence number the next log record will get.
func (s *Session) nextLogSeq() uint64 {
	recs := s.m.LogRecords()
	if len(recs) == 0 {
		return 0
	}
	return recs[len(recs)-1].Seq + 1
}

// sleep lets virtual time pass: timers fire and queued work runs, as they would while the shell
// sleeps. DURATION is a Go duration ("1s", "250ms") or a number of seconds ("2", "0.5").
func (s *Session) sleep(out *output, args []string) int {
	if len(args) != 1 {
		out.errorf("sleep: missing operand\n")
		return statusFailed
	}
	d, err := parseDuration(args[0])
	if err != nil {
		out.errorf("sleep: invalid time interval '%s'\n", args[0])
		return statusFailed
	}
	if _, err := s.m.Idle(uint64(d)); err != nil {
		out.errorf("sleep: %v\n", err)
		return statusFailed
	}
	return statusOK
}

func parseDuration(s string) (time.Duration, error) {
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		if secs < 0 || secs > 1e9 {
			return 0, strconv.ErrRange
		}
		return time.Duration(secs * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err == nil && d < 0 {
		return 0, strconv.ErrRange
	}
	return d, err
}
