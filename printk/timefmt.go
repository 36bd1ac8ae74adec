package printk

import (
	"encoding/binary"
	"time"
)

// rtcTimeSize is sizeof(struct rtc_time): nine ints (sec, min, hour, mday,
// mon, year, wday, yday, isdst).
const rtcTimeSize = 9 * 4

// rtcTime holds the struct rtc_time fields %pt prints, as C ints.
type rtcTime struct {
	sec, min, hour, mday, mon, year int32
}

// timeAndDate is %ptR (struct rtc_time *) and %ptT (time64_t *), with d
// (date only) or t (time only), r (raw: year and month as stored) and s
// (space instead of 'T') after them; ext starts at the 't'.
func (f *Formatter) timeAndDate(o *output, addr uint64, sp spec, ext []byte) {
	at := func(i int) byte { return byteAt(ext, i) }
	var tm rtcTime
	switch at(1) {
	case 'R':
		var raw [rtcTimeSize]byte
		if !f.readChecked(o, addr, raw[:], sp) {
			return
		}
		field := func(i int) int32 { return int32(binary.LittleEndian.Uint32(raw[4*i:])) }
		tm = rtcTime{sec: field(0), min: field(1), hour: field(2), mday: field(3), mon: field(4), year: field(5)}
	case 'T':
		var raw [8]byte
		if !f.readChecked(o, addr, raw[:], sp) {
			return
		}
		t := time.Unix(int64(binary.LittleEndian.Uint64(raw[:])), 0).UTC()
		tm = rtcTime{sec: int32(t.Second()), min: int32(t.Minute()), hour: int32(t.Hour()),
			mday: int32(t.Day()), mon: int32(t.Month()) - 1, year: int32(t.Year() - 1900)}
	default:
		o.errorString("(%pt?)", sp)
		return
	}

	date, clock := true, true
	i := 2
	switch at(i) {
	case 'd':
		clock = false
		i++
	case 't':
		date = false
		i++
	}
	raw, separator := false, byte('T')
options:
	for ; ; i++ {
		switch at(i) {
		case 'r':
			raw = true
		case 's':
			separator = ' '
		default:
			break options
		}
	}

	// The fields are ints printed through number() without the sign flag:
	// a negative one prints as its 64-bit two's complement.
	field := func(v int32, digits int32) {
		o.number(uint64(int64(v)), spec{flags: flagZeroPad, base: 10, width: digits, prec: -1})
	}
	if date {
		year, mon := tm.year, tm.mon
		if !raw {
			year += 1900
			mon++
		}
		field(year, 4)
		o.byte('-')
		field(mon, 2)
		o.byte('-')
		field(tm.mday, 2)
	}
	if date && clock {
		o.byte(separator)
	}
	if clock {
		field(tm.hour, 2)
		o.byte(':')
		field(tm.min, 2)
		o.byte(':')
		field(tm.sec, 2)
	}
}

// fourCC is %p4cc: a V4L2/DRM FourCC code, its endianness (bit 31) and value.
func (f *Formatter) fourCC(o *output, addr uint64, sp spec, ext []byte) {
	if len(ext) < 3 || ext[1] != 'c' || ext[2] != 'c' {
		o.errorString("(%p4?)", sp)
		return
	}
	var raw [4]byte
	if !f.readChecked(o, addr, raw[:], sp) {
		return
	}
	code := binary.LittleEndian.Uint32(raw[:])
	text := make([]byte, 0, 32)
	for i := range 4 {
		c := byte(code &^ (1 << 31) >> (8 * i))
		if !isASCII(c) || !isPrint(c) {
			c = '.'
		}
		text = append(text, c)
	}
	if code&(1<<31) != 0 {
		text = append(text, " big-endian ("...)
	} else {
		text = append(text, " little-endian ("...)
	}
	var hex output
	hex.limit = 16
	hex.specialHex(uint64(code), 4)
	text = append(append(text, hex.b...), ')')
	o.padded(string(text), sp)
}
