package printk

import (
	"encoding/binary"
	"strconv"
)

// Address families in struct sockaddr.
const (
	afInet  = 2
	afInet6 = 10
)

// ipAddress is %pI4 %pi4 %pI6 %pi6 %pI6c and the sockaddr forms %pIS[pfsc]
// / %piS; ext starts at the 'I' or 'i'.
func (f *Formatter) ipAddress(o *output, addr uint64, sp spec, ext []byte) {
	at := func(i int) byte { return byteAt(ext, i) }
	if msg := checkPointer(addr); msg != "" {
		o.errorString(msg, sp)
		return
	}
	switch at(1) {
	case '4':
		var a [4]byte
		if f.readOrEfault(o, addr, a[:], sp) {
			o.padded(string(ip4String(nil, a, at(0) == 'i', at(2))), sp)
		}
	case '6':
		var a [16]byte
		if !f.readOrEfault(o, addr, a[:], sp) {
			return
		}
		if at(0) == 'I' && at(2) == 'c' {
			o.padded(string(ip6Compressed(nil, a)), sp)
		} else {
			o.padded(string(ip6String(nil, a, at(0) == 'I')), sp)
		}
	case 'S':
		f.sockaddr(o, addr, sp, ext)
	default:
		if at(0) == 'i' {
			o.errorString("(%pi?)", sp)
		} else {
			o.errorString("(%pI?)", sp)
		}
	}
}

// sockaddr prints a struct sockaddr_in or sockaddr_in6 with the optional
// port (p), flowinfo (f) and scope id (s); c compresses IPv6 and h/l/n/b
// pick the IPv4 byte order.
func (f *Formatter) sockaddr(o *output, addr uint64, sp spec, ext []byte) {
	var family [2]byte
	if !f.readOrEfault(o, addr, family[:], sp) {
		return
	}
	var port, flow, scope bool
	var compressed bool
	var byteOrder byte
	for _, c := range ext[2:] {
		if !isAlpha(c) {
			break
		}
		switch c {
		case 'p':
			port = true
		case 'f':
			flow = true
		case 's':
			scope = true
		case 'c':
			compressed = true
		case 'h', 'l', 'n', 'b':
			byteOrder = c
		}
	}
	// Numbers inside the address take the conversion's spec, as in 6.1.
	num := func(text []byte, v uint64) []byte {
		var o output
		o.limit = 64
		o.number(v, sp)
		return append(text, o.b...)
	}
	switch binary.LittleEndian.Uint16(family[:]) {
	case afInet:
		var sin [8]byte // family, port, address
		if !f.readOrEfault(o, addr, sin[:], sp) {
			return
		}
		text := ip4String(nil, [4]byte(sin[4:8]), ext[0] == 'i', byteOrder)
		if port {
			text = append(text, ':')
			text = num(text, uint64(binary.BigEndian.Uint16(sin[2:])))
		}
		o.padded(string(text), sp)
	case afInet6:
		var sin6 [28]byte // family, port, flowinfo, address, scope id
		if !f.readOrEfault(o, addr, sin6[:], sp) {
			return
		}
		a := [16]byte(sin6[8:24])
		var text []byte
		bracket := port || scope || flow
		if bracket {
			text = append(text, '[')
		}
		if ext[0] == 'I' && compressed {
			text = ip6Compressed(text, a)
		} else {
			text = ip6String(text, a, ext[0] == 'I')
		}
		if bracket {
			text = append(text, ']')
		}
		if port {
			text = append(text, ':')
			text = num(text, uint64(binary.BigEndian.Uint16(sin6[2:])))
		}
		if flow {
			text = append(text, '/')
			text = num(text, uint64(binary.BigEndian.Uint32(sin6[4:])&0x0fffffff))
		}
		if scope {
			text = append(text, '%')
			text = num(text, uint64(binary.LittleEndian.Uint32(sin6[24:])))
		}
		o.padded(string(text), sp)
	default:
		o.errorString("(einval)", sp)
	}
}

// ip4String appends a dotted quad; raw (%pi4) pads each part to three
// digits. Byte order 'h' and 'l' read the address as a little-endian u32
// (host order on x86-64), anything else in network order.
func ip4String(text []byte, a [4]byte, raw bool, byteOrder byte) []byte {
	for i := range 4 {
		b := a[i]
		if byteOrder == 'h' || byteOrder == 'l' {
			b = a[3-i]
		}
		if raw && b < 100 {
			text = append(text, '0')
			if b < 10 {
				text = append(text, '0')
			}
		}
		text = strconv.AppendUint(text, uint64(b), 10)
		if i < 3 {
			text = append(text, '.')
		}
	}
	return text
}

// ip6String appends the eight 16-bit groups with leading zeros, with
// colons (%pI6) or without (%pi6).
func ip6String(text []byte, a [16]byte, colons bool) []byte {
	for i := range 8 {
		text = append(text, hexDigits[a[2*i]>>4], hexDigits[a[2*i]&0xf],
			hexDigits[a[2*i+1]>>4], hexDigits[a[2*i+1]&0xf])
		if colons && i != 7 {
			text = append(text, ':')
		}
	}
	return text
}

// ip6Compressed appends %pI6c, RFC 5952 form: the first longest run of two
// or more zero groups becomes "::", groups lose leading zeros, and
// IPv4-mapped and ISATAP addresses end in a dotted quad.
func ip6Compressed(text []byte, a [16]byte) []byte {
	word := func(i int) uint16 { return binary.BigEndian.Uint16(a[2*i:]) }
	v4mapped := word(0) == 0 && word(1) == 0 && word(2) == 0 && word(3) == 0 &&
		word(4) == 0 && word(5) == 0xffff
	isatap := (binary.BigEndian.Uint32(a[8:]) | 0x02000000) == 0x02005efe
	groups := 8
	if v4mapped || isatap {
		groups = 6
	}
	longest, colonPos := 1, -1
	for i := range groups {
		run := 0
		for j := i; j < groups && word(j) == 0; j++ {
			run++
		}
		if run > longest {
			longest, colonPos = run, i
		}
	}
	needColon := false
	for i := 0; i < groups; i++ {
		if i == colonPos {
			if needColon || i == 0 {
				text = append(text, ':')
			}
			text = append(text, ':')
			needColon = false
			i += longest - 1
			continue
		}
		if needColon {
			text = append(text, ':')
		}
		text = strconv.AppendUint(text, uint64(word(i)), 16)
		needColon = true
	}
	if groups == 6 {
		if needColon {
			text = append(text, ':')
		}
		text = ip4String(text, [4]byte(a[12:16]), false, 0)
	}
	return text
}
