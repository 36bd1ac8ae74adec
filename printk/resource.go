package printk

import "encoding/binary"

// IORESOURCE_* flags of struct resource (include/linux/ioport.h).
const (
	ioresourceIO       = 0x00000100
	ioresourceMem      = 0x00000200
	ioresourceIRQ      = 0x00000400
	ioresourceDMA      = 0x00000800
	ioresourceBus      = 0x00001000
	ioresourcePrefetch = 0x00002000
	ioresourceMem64    = 0x00100000
	ioresourceWindow   = 0x00200000
	ioresourceDisabled = 0x10000000
	ioresourceUnset    = 0x20000000
)

// resourceHeadSize covers the fields of struct resource that %pR reads:
// resource_size_t start, end; const char *name; unsigned long flags.
const resourceHeadSize = 32

// resource is %pR (decoded: "[mem 0xfe000000-0xfe0fffff 64bit pref]") and
// %pr (raw: "[mem 0xfe000000-0xfe0fffff flags 0x140200]").
func (f *Formatter) resource(o *output, addr uint64, sp spec, decode bool) {
	var raw [resourceHeadSize]byte
	if !f.readChecked(o, addr, raw[:], sp) {
		return
	}
	start := binary.LittleEndian.Uint64(raw[0:])
	end := binary.LittleEndian.Uint64(raw[8:])
	flags := binary.LittleEndian.Uint64(raw[24:])

	hex := func(width int32) spec {
		return spec{flags: flagSpecial | flagSmall | flagZeroPad, base: 16, width: width, prec: -1}
	}
	var text output
	text.limit = 128
	text.byte('[')
	var num spec
	switch {
	case flags&ioresourceIO != 0:
		text.str("io  ")
		num = hex(6)
	case flags&ioresourceMem != 0:
		text.str("mem ")
		num = hex(10)
	case flags&ioresourceIRQ != 0:
		text.str("irq ")
		num = spec{base: 10, width: -1, prec: -1}
	case flags&ioresourceDMA != 0:
		text.str("dma ")
		num = spec{base: 10, width: -1, prec: -1}
	case flags&ioresourceBus != 0:
		text.str("bus ")
		num = spec{flags: flagSmall | flagZeroPad, base: 16, width: 2, prec: -1}
	default:
		text.str("??? ")
		num = hex(10)
		decode = false
	}
	if decode && flags&ioresourceUnset != 0 {
		text.str("size ")
		text.number(end-start+1, num)
	} else {
		text.number(start, num)
		if start != end {
			text.byte('-')
			text.number(end, num)
		}
	}
	if decode {
		for _, attr := range []struct {
			bit  uint64
			name string
		}{{ioresourceMem64, " 64bit"}, {ioresourcePrefetch, " pref"}, {ioresourceWindow, " window"}, {ioresourceDisabled, " disabled"}} {
			if flags&attr.bit != 0 {
				text.str(attr.name)
			}
		}
	} else {
		text.str(" flags ")
		text.number(flags, spec{flags: flagSpecial | flagSmall, base: 16, width: -1, prec: -1})
	}
	text.byte(']')
	o.padded(string(text.b), sp)
}
