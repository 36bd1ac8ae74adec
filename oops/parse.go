package oops

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// maxIdleLines is how many lines in a row that say nothing about an open report end it: past that the
// log has moved on and the report was cut short.
const maxIdleLines = 40

// Parse reads a console or dmesg log and returns every crash report in it, in the order they began.
// Only a failing reader is an error: unreadable text is skipped, and a log with no report gives none.
func Parse(r io.Reader) ([]*Report, error) {
	raw, err := readLines(r)
	if err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	return parseLines(cleanLines(raw)), nil
}

// ParseString is Parse over a string.
func ParseString(s string) []*Report {
	reports, _ := Parse(strings.NewReader(s)) // a strings.Reader never fails
	return reports
}

// readLines splits r into lines, cutting each at maxLineLength so a huge line cannot exhaust memory.
func readLines(r io.Reader) ([]string, error) {
	br := bufio.NewReaderSize(r, 64*1024)
	var lines []string
	var cur []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		if len(chunk) > 0 && len(cur) < maxLineLength {
			cur = append(cur, chunk[:min(len(chunk), maxLineLength-len(cur))]...)
		}
		if err != nil {
			if len(cur) > 0 {
				lines = append(lines, string(cur))
			}
			if errors.Is(err, io.EOF) {
				return lines, nil
			}
			return lines, err
		}
		if !isPrefix {
			lines = append(lines, string(cur))
			cur = cur[:0]
		}
	}
}

// parseLines runs one report builder per printk caller (one in all for logs without caller ids), so
// reports printed at the same time by two CPUs come apart when the log says who printed what.
func parseLines(lines []logLine) []*Report {
	var done []*Report
	open := map[string]*builder{}
	cutHere := map[string]int{} // caller -> line of a "cut here" marker waiting for its report
	for _, l := range lines {
		text := strings.TrimSpace(l.text)
		if text == "" {
			continue
		}
		b := open[l.caller]
		if strings.HasPrefix(text, "------------[ cut here ]") {
			if b != nil {
				done = append(done, b.close(false))
				delete(open, l.caller)
			}
			cutHere[l.caller] = l.num
			continue
		}
		h, isHeader := matchHeader(text)
		if isHeader && b != nil && b.continues(h) {
			b.addHeader(h, l, text)
			continue
		}
		if isHeader {
			if b != nil {
				done = append(done, b.close(false))
			}
			b = newBuilder(h, l, text)
			if n, ok := cutHere[l.caller]; ok && l.num-n < 5 {
				b.r.FirstLine = n
			}
			delete(cutHere, l.caller)
			open[l.caller] = b
			continue
		}
		if b == nil {
			continue
		}
		if !b.add(l, text) {
			b.idle++
			if b.idle > maxIdleLines {
				done = append(done, b.close(false))
				delete(open, l.caller)
			}
		}
	}
	for _, b := range open {
		done = append(done, b.close(true))
	}
	sort.SliceStable(done, func(i, j int) bool { return done[i].FirstLine < done[j].FirstLine })
	return done
}

// header is what the first line of a report says.
type header struct {
	kind     Kind
	oopsLine bool // an "Oops: 0002 [#1]"-style line: a report's second line when its header was printed
	fields   func(r *Report, m []string)
	m        []string
}

type headerPattern struct {
	re       *regexp.Regexp
	kind     Kind
	oopsLine bool
	fields   func(r *Report, m []string)
}

// headerPatterns are tried in order; the first match wins, so specific "BUG:" forms precede the generic one.
var headerPatterns = []headerPattern{
	{re: regexp.MustCompile(`^BUG: kernel NULL pointer dereference, address: (?:0x)?([0-9a-f]+)`), kind: KindNullDeref, fields: setFaultAddress},
	{re: regexp.MustCompile(`^BUG: unable to handle kernel NULL pointer dereference at (?:0x)?([0-9a-f]+)`), kind: KindNullDeref, fields: setFaultAddress},
	{re: regexp.MustCompile(`^BUG: unable to handle page fault for address: (?:0x)?([0-9a-f]+)`), kind: KindPageFault, fields: setFaultAddress},
	{re: regexp.MustCompile(`^BUG: unable to handle kernel paging request at (?:0x)?([0-9a-f]+)`), kind: KindPageFault, fields: setFaultAddress},
	{re: regexp.MustCompile(`^BUG: KASAN: \S+ in (.*)`), kind: KindKASAN},
	{re: regexp.MustCompile(`^(?:\S+: )?BUG: soft lockup - CPU#(\d+) stuck for \d+s! \[(.*):(\d+)\]`), kind: KindSoftLockup, fields: setLockupTask},
	{re: regexp.MustCompile(`^(?:\S+: )?BUG: soft lockup`), kind: KindSoftLockup},
	{re: regexp.MustCompile(`^kernel BUG at (.+:\d+)!`), kind: KindBug, fields: func(r *Report, m []string) { r.BugAt = m[1] }},
	{re: regexp.MustCompile(`^WARNING: (?:CPU: (\d+) PID: (\d+) )?at (\S+:\d+)(?: (.*))?`), kind: KindWarning, fields: setWarning},
	{re: regexp.MustCompile(`^WARNING: `), kind: KindWarning},
	{re: regexp.MustCompile(`^general protection fault(?:, probably for non-canonical address 0x([0-9a-f]+))?`), kind: KindGPF, fields: setGPF},
	{re: regexp.MustCompile(`^BUG: `), kind: KindBug},
	{re: regexp.MustCompile(`^INFO: task (.*):(\d+) blocked for more than \d+ seconds`), kind: KindHungTask,
		fields: func(r *Report, m []string) { r.Comm, r.PID = m[1], atoiPtr(m[2]) }},
	{re: regexp.MustCompile(`^(?:rcu: )?INFO: rcu_\w+ (?:self-)?detected stalls? on CPUs?`), kind: KindRCUStall},
	{re: regexp.MustCompile(`^UBSAN: \S+ in ([^\s:]+:\d+)`), kind: KindUBSAN, fields: func(r *Report, m []string) { r.BugAt = m[1] }},
	{re: regexp.MustCompile(`^Kernel panic - not syncing: ?(.*)`), kind: KindPanic, fields: func(r *Report, m []string) { r.Panic = m[1] }},
	{re: regexp.MustCompile(`^(?:Oops|invalid opcode|divide error|int3|stack segment|double fault|alignment check|bounds)(?:: [0-9a-f]{4})? \[#\d+\]`), kind: KindOops, oopsLine: true},
}

func matchHeader(text string) (header, bool) {
	for _, p := range headerPatterns {
		if m := p.re.FindStringSubmatch(text); m != nil {
			return header{kind: p.kind, oopsLine: p.oopsLine, fields: p.fields, m: m}, true
		}
	}
	return header{}, false
}

func parseHex(s string) (uint64, bool) {
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	return v, err == nil
}

func setFaultAddress(r *Report, m []string) {
	if v, ok := parseHex(m[1]); ok {
		r.FaultAddress = &v
	}
}

func setGPF(r *Report, m []string) {
	if m[1] != "" {
		setFaultAddress(r, m)
	}
	if oopsCode.MatchString(r.Title) {
		r.Oops = r.Title
	}
}

var oopsCode = regexp.MustCompile(`[0-9a-f]{4} \[#\d+\]`)

func setLockupTask(r *Report, m []string) {
	r.CPU = atoiPtr(m[1])
	r.Comm = m[2]
	r.PID = atoiPtr(m[3])
}

func setWarning(r *Report, m []string) {
	if m[1] != "" {
		r.CPU, r.PID = atoiPtr(m[1]), atoiPtr(m[2])
	}
	r.BugAt = m[3]
	if f, ok := parseFrame(m[4]); ok {
		f.IsIP = true
		r.RIP = &f
	}
}

func atoiPtr(s string) *int {
	v, err := strconv.Atoi(s)
	if err != nil {
		return nil
	}
	return &v
}
