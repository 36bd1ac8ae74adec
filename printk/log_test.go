package printk

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// call is one printk: its time, caller and formatted text.
type call struct {
	ns     uint64
	caller uint32
	text   string
}

func store(l *Log, calls ...call) {
	for _, c := range calls {
		l.Store(Message{TimeNS: c.ns, Level: LevelDefault, Caller: c.caller}, []byte(c.text))
	}
}

func TestLogRecords(t *testing.T) {
	tests := []struct {
		name  string
		calls []call
		want  []Record
	}{
		{"level from prefix", []call{{1, 0, "\0016hello: x=1\n"}},
			[]Record{{Level: 6, TimeNS: 1, Text: "hello: x=1", Final: true}}},
		{"default level 4", []call{{1, 0, "plain\n"}},
			[]Record{{Level: 4, TimeNS: 1, Text: "plain", Final: true}}},
		{"first level wins", []call{{1, 0, "\0013\0016two levels\n"}},
			[]Record{{Level: 3, TimeNS: 1, Text: "two levels", Final: true}}},
		{"pr_cont appends", []call{{1, 0, "\0016a"}, {2, 0, "\001cb"}, {3, 0, "\001cc\n"}},
			[]Record{{Level: 6, TimeNS: 1, Text: "abc", Final: true}}},
		{"pr_cont after newline starts a record", []call{{1, 0, "\0016a\n"}, {2, 0, "\001cb\n"}},
			[]Record{{Level: 6, TimeNS: 1, Text: "a", Final: true}, {Seq: 1, Level: 4, TimeNS: 2, Text: "b", Final: true}}},
		{"pr_cont from another caller", []call{{1, 0, "\0016a"}, {2, 1, "\001cb\n"}},
			[]Record{{Level: 6, TimeNS: 1, Text: "a", Final: true}, {Seq: 1, Level: 4, TimeNS: 2, Text: "b", Final: true, Caller: 1}}},
		{"plain printk closes the open record", []call{{1, 0, "a"}, {2, 0, "b"}, {3, 0, "\001cc\n"}},
			[]Record{{Level: 4, TimeNS: 1, Text: "a", Final: true}, {Seq: 1, Level: 4, TimeNS: 2, Text: "bc", Final: true}}},
		{"only one newline is stripped", []call{{1, 0, "a\n\n"}},
			[]Record{{Level: 4, TimeNS: 1, Text: "a\n", Final: true}}},
		{"unknown SOH stays in the text", []call{{1, 0, "\001xz\n"}},
			[]Record{{Level: 4, TimeNS: 1, Text: "\001xz", Final: true}}},
		{"level beyond the first 7 bytes is stripped but not read", []call{{1, 0, "\001c\001c\001c\0013x\n"}},
			[]Record{{Level: 4, TimeNS: 1, Text: "x", Final: true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var l Log
			store(&l, tc.calls...)
			assert.Equal(t, tc.want, l.Records())
		})
	}
}

func TestLogTruncatesToLineMax(t *testing.T) {
	var l Log
	n := l.Printk(0, []byte(strings.Repeat("a", 2000)+"\n"))
	assert.Equal(t, LineMax-1, n)
	r := l.Records()
	require.Len(t, r, 1)
	assert.Len(t, r[0].Text, LineMax-1)
	assert.False(t, r[0].Final, "the newline was cut off with the rest")
}

func TestContinuationStopsAtLineMax(t *testing.T) {
	var l Log
	first := strings.Repeat("a", LineMax-10)
	l.Printk(1, []byte(first))
	// 2 prefix bytes + 7 + NUL fit exactly; one more byte does not.
	l.Printk(2, []byte("\001cbbbbbbb"))
	l.Printk(3, []byte("\001cc"))
	r := l.Records()
	require.Len(t, r, 2)
	assert.Equal(t, first+"bbbbbbb", r[0].Text)
	assert.Equal(t, "c", r[1].Text)
}

func TestLogDropsOldest(t *testing.T) {
	l := Log{MaxBytes: 3 * (recordOverhead + 4)}
	for i := range 5 {
		l.Printk(uint64(i), []byte{'m', 's', 'g', byte('0' + i), '\n'})
	}
	r := l.Records()
	require.Len(t, r, 3)
	assert.Equal(t, "msg2", r[0].Text)
	assert.Equal(t, uint64(2), r[0].Seq)
	assert.Equal(t, uint64(2), l.Dropped)
}

func TestDmesg(t *testing.T) {
	var l Log
	store(&l,
		call{123456789, 0, "\0016hello: x=1\n"},
		call{1500000000, 0, "line1\nline2\n"},
		call{100000000000, 0, "\0013bad \x01 byte\n"},
		call{2, 0, "utf8 é\n"},
	)
	assert.Equal(t, ""+
		"[    0.123456] hello: x=1\n"+
		"[    1.500000] line1\n"+
		"               line2\n"+
		"[  100.000000] bad \\x01 byte\n"+
		"[    0.000000] utf8 é\n", l.Dmesg())
	assert.True(t, strings.HasPrefix(l.DmesgRaw(), "<6>[    0.123456] hello: x=1\n<4>[    1.500000] line1\n"))
	assert.Contains(t, l.DmesgRaw(), "<3>[  100.000000] bad")
}

func TestDevMessage(t *testing.T) {
	var l Log
	m, text := DevMessage(LevelErr, true, "e1000e", "0000:00:19.0", []byte("link down"), 5000, 0)
	l.Store(m, text)
	// A dev_printk record is closed even without a newline.
	l.Store(Message{TimeNS: 6000, Level: LevelDefault}, []byte("\001ccont\n"))
	m, text = DevMessage(LevelWarning, false, "", "", []byte("no dev\n"), 7000, 0)
	l.Store(m, text)
	r := l.Records()
	require.Len(t, r, 3)
	assert.Equal(t, Record{Level: 3, TimeNS: 5000, Text: "e1000e 0000:00:19.0: link down", Final: true}, r[0])
	assert.Equal(t, "cont", r[1].Text)
	assert.Equal(t, Record{Seq: 2, Level: 4, TimeNS: 7000, Text: "(NULL device *): no dev", Final: true}, r[2])
}

func TestNetdevMessage(t *testing.T) {
	tests := []struct {
		name string
		dev  *NetDevice
		want Record
	}{
		{"with a parent", &NetDevice{Name: "eth0", RegState: NetregRegistered, Parent: true, ParentDriver: "e1000e", ParentName: "0000:00:19.0"},
			Record{Level: 3, Text: "e1000e 0000:00:19.0 eth0: link down", Final: true}},
		{"unregistered, templated name", &NetDevice{Name: "eth%d", RegState: NetregUninitialized, Parent: true, ParentDriver: "e1000e", ParentName: "0000:00:19.0"},
			Record{Level: 3, Text: "e1000e 0000:00:19.0 (unnamed net_device) (uninitialized): link down", Final: true}},
		{"no parent", &NetDevice{Name: "dummy0", RegState: NetregDummy},
			Record{Level: 3, Text: "dummy0 (dummy): link down", Final: true}},
		{"unknown state", &NetDevice{Name: "x", RegState: 9},
			Record{Level: 3, Text: "x (unknown): link down", Final: true}},
		{"NULL", nil, Record{Level: 3, Text: "(NULL net_device): link down", Final: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var l Log
			l.Store(NetdevMessage(LevelErr, tc.dev, []byte("link down\n"), 0, 0))
			assert.Equal(t, []Record{tc.want}, l.Records())
		})
	}
}
