package printk

import (
	"encoding/binary"
	"strconv"
)

// pointer prints a %p conversion; ext is the format after the 'p'. It
// follows pointer() in lib/vsprintf.c, extension by extension.
func (f *Formatter) pointer(o *output, ext []byte, ptr uint64, sp spec, depth int) {
	at := func(i int) byte { return byteAt(ext, i) }
	switch at(0) {
	case 'S', 's', 'B':
		// dereference_symbol_descriptor() and
		// __builtin_extract_return_addr() are the identity on x86-64.
		f.symbol(o, ptr, sp, at(0))
	case 'R', 'r':
		f.resource(o, ptr, sp, at(0) == 'R')
	case 'h':
		f.hexString(o, ptr, sp, at(1))
	case 'b':
		f.bitmap(o, ptr, sp, at(1) == 'l')
	case 'M', 'm':
		f.macAddress(o, ptr, sp, at(0), at(1))
	case 'I', 'i':
		f.ipAddress(o, ptr, sp, ext)
	case 'E':
		f.escaped(o, ptr, sp, ext[1:])
	case 'U':
		f.uuid(o, ptr, sp, at(1))
	case 'V':
		f.vaFormat(o, ptr, sp, depth)
	case 'K':
		f.restricted(o, ptr, sp)
	case 'N':
		f.netdevBits(o, ptr, sp, at(1))
	case 'a':
		f.addressValue(o, ptr, sp, at(1))
	case 't':
		f.timeAndDate(o, ptr, sp, ext)
	case 'G':
		f.flags(o, ptr, sp, at(1))
	case 'd':
		f.dentryName(o, ptr, sp, ext)
	case 'D':
		f.fileDentry(o, ptr, sp, ext)
	case 'g':
		f.blockDevice(o, ptr, sp)
	case '4':
		f.fourCC(o, ptr, sp, ext)
	case 'A':
		// CONFIG_RUST is off in 6.1 distribution kernels.
		f.warn("Please remove %pA from non-Rust code\n")
		o.errorString("(%pA?)", sp)
	case 'x':
		o.pointerString(ptr, sp)
	case 'e':
		if !isErrValue(ptr) {
			f.defaultPointer(o, ptr, sp)
			return
		}
		errorPointer(o, ptr, sp)
	case 'u', 'k':
		if at(1) == 's' {
			f.guestString(o, ptr, sp)
			return
		}
		o.errorString("(einval)", sp)
	default:
		f.defaultPointer(o, ptr, sp)
	}
}

// defaultPointer is plain %p: hashed unless no_hash_pointers.
func (f *Formatter) defaultPointer(o *output, ptr uint64, sp spec) {
	if f.Options.NoHashPointers {
		o.pointerString(ptr, sp)
		return
	}
	f.pointerID(o, ptr, sp)
}

// pointerID is ptr_to_id(): NULL and error pointers print as they are (they
// are not addresses); anything else as the low 32 bits of its SipHash.
func (f *Formatter) pointerID(o *output, ptr uint64, sp spec) {
	if ptr == 0 || isErrValue(ptr) {
		o.pointerString(ptr, sp)
		return
	}
	if f.Options.EarlyBoot {
		sp.width = 16
		o.errorString("(____ptrval____)", sp)
		return
	}
	o.pointerString(sipHash64(f.Options.PointerKey, ptr)&0xffffffff, sp)
}

// restricted is %pK.
func (f *Formatter) restricted(o *output, ptr uint64, sp spec) {
	switch f.Options.KptrRestrict {
	case 0:
		f.defaultPointer(o, ptr, sp)
		return
	case 1:
		// The caller has CAP_SYSLOG and unchanged credentials.
	default:
		ptr = 0
	}
	o.pointerString(ptr, sp)
}

// symbol is %pS, %ps, %pSR, %pB and their build-ID forms (the build ID is
// not printed: Debian's 6.1 has CONFIG_STACKTRACE_BUILD_ID off).
func (f *Formatter) symbol(o *output, addr uint64, sp spec, kind byte) {
	// %pB symbolizes a return address: look up the byte before it, in case
	// the call was the last instruction of a noreturn caller.
	var adjust uint64
	if kind == 'B' {
		adjust = 1
	}
	name, off, size, module, ok := f.Env.Symbolize(addr - adjust)
	if !ok {
		o.padded("0x"+strconv.FormatUint(addr, 16), sp)
		return
	}
	text := name
	if kind != 's' {
		text += "+0x" + strconv.FormatUint(off+adjust, 16) + "/0x" + strconv.FormatUint(size, 16)
	}
	if module != "" {
		text += " [" + module + "]"
	}
	o.padded(text, sp)
}

// maxHexBytes is the most %ph prints.
const maxHexBytes = 64

// hexString is %*ph[CDN]: the field width is the byte count (1 if absent).
func (f *Formatter) hexString(o *output, addr uint64, sp spec, variant byte) {
	if sp.width == 0 {
		return
	}
	if msg := checkPointer(addr); msg != "" {
		o.errorString(msg, sp)
		return
	}
	separator := byte(' ')
	switch variant {
	case 'C':
		separator = ':'
	case 'D':
		separator = '-'
	case 'N':
		separator = 0
	}
	n := int32(1)
	if sp.width > 0 {
		n = min(sp.width, maxHexBytes)
	}
	buf := make([]byte, n)
	if !f.readOrEfault(o, addr, buf, sp) {
		return
	}
	for i, b := range buf {
		o.byte(hexDigits[b>>4])
		o.byte(hexDigits[b&0xf])
		if separator != 0 && i != len(buf)-1 {
			o.byte(separator)
		}
	}
}

const hexDigits = "0123456789abcdef"

// bitmap is %*pb (hex chunks of 32 bits, most significant first) and
// %*pbl (ranges of set bits); the field width is the bit count.
func (f *Formatter) bitmap(o *output, addr uint64, sp spec, list bool) {
	bits := max(sp.width, 0)
	if msg := checkPointer(addr); msg != "" {
		o.errorString(msg, sp)
		return
	}
	words := make([]uint64, (bits+63)/64)
	raw := make([]byte, 8*len(words))
	if !f.readOrEfault(o, addr, raw, sp) {
		return
	}
	for i := range words {
		words[i] = binary.LittleEndian.Uint64(raw[8*i:])
	}
	bit := func(i int32) bool { return words[i/64]>>(i%64)&1 != 0 }
	if list {
		dec := spec{base: 10, width: -1, prec: -1}
		first := true
		for i := int32(0); i < bits; {
			if !bit(i) {
				i++
				continue
			}
			start := i
			for i < bits && bit(i) {
				i++
			}
			if !first {
				o.byte(',')
			}
			first = false
			o.number(uint64(start), dec)
			if i-1 != start {
				o.byte('-')
				o.number(uint64(i-1), dec)
			}
		}
		return
	}
	const chunkBits = 32
	chunk := bits % chunkBits
	if chunk == 0 {
		chunk = chunkBits
	}
	top := (bits+chunkBits-1)/chunkBits*chunkBits - chunkBits
	for i := top; i >= 0; i -= chunkBits {
		if i != top {
			o.byte(',')
		}
		val := words[i/64] >> (i % 64) & (1<<chunk - 1)
		o.number(val, spec{flags: flagSmall | flagZeroPad, base: 16, width: (chunk + 3) / 4})
		chunk = chunkBits
	}
}

// macAddress is %pM (colons), %pMF (dashes), %pm (no separator) and their
// reversed R forms.
func (f *Formatter) macAddress(o *output, addr uint64, sp spec, kind, variant byte) {
	var mac [6]byte
	if !f.readChecked(o, addr, mac[:], sp) {
		return
	}
	separator := byte(':')
	if variant == 'F' {
		separator = '-'
	}
	text := make([]byte, 0, 17)
	for i := range 6 {
		b := mac[i]
		if variant == 'R' {
			b = mac[5-i]
		}
		text = append(text, hexDigits[b>>4], hexDigits[b&0xf])
		if kind == 'M' && i != 5 {
			text = append(text, separator)
		}
	}
	o.padded(string(text), sp)
}

// uuid is %pU[bBlL]: big-endian (b, default) or little-endian GUID byte
// order (l), upper case for B and L.
func (f *Formatter) uuid(o *output, addr uint64, sp spec, variant byte) {
	var id [16]byte
	if !f.readChecked(o, addr, id[:], sp) {
		return
	}
	order := [16]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	if variant == 'l' || variant == 'L' {
		order = [16]byte{3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15}
	}
	digits := hexDigits
	if variant == 'B' || variant == 'L' {
		digits = "0123456789ABCDEF"
	}
	text := make([]byte, 0, 36)
	for i, idx := range order {
		text = append(text, digits[id[idx]>>4], digits[id[idx]&0xf])
		if i == 3 || i == 5 || i == 7 || i == 9 {
			text = append(text, '-')
		}
	}
	o.padded(string(text), sp)
}

// netdevBits is %pNF: a netdev_features_t passed by reference.
func (f *Formatter) netdevBits(o *output, addr uint64, sp spec, variant byte) {
	if msg := checkPointer(addr); msg != "" {
		o.errorString(msg, sp)
		return
	}
	if variant != 'F' {
		o.errorString("(%pN?)", sp)
		return
	}
	var raw [8]byte
	if !f.readOrEfault(o, addr, raw[:], sp) {
		return
	}
	o.specialHex(binary.LittleEndian.Uint64(raw[:]), 8)
}

// addressValue is %pa, %pap (phys_addr_t) and %pad (dma_addr_t), both
// 64-bit on x86-64 and passed by reference.
func (f *Formatter) addressValue(o *output, addr uint64, sp spec, _ byte) {
	var raw [8]byte
	if !f.readChecked(o, addr, raw[:], sp) {
		return
	}
	o.specialHex(binary.LittleEndian.Uint64(raw[:]), 8)
}

// vaFormat is %pV: a struct va_format { const char *fmt; va_list *va; }
// formatted recursively on a copy of the va_list.
func (f *Formatter) vaFormat(o *output, addr uint64, sp spec, depth int) {
	var raw [16]byte
	if !f.readChecked(o, addr, raw[:], sp) {
		return
	}
	if depth >= maxVaFormatDepth {
		o.errorString("(efault)", sp)
		return
	}
	fmtAddr := binary.LittleEndian.Uint64(raw[0:])
	vaAddr := binary.LittleEndian.Uint64(raw[8:])
	if checkPointer(fmtAddr) != "" || checkPointer(vaAddr) != "" {
		o.errorString("(efault)", sp)
		return
	}
	format, err := f.Env.ReadString(fmtAddr, maxFormatRead)
	if err != nil {
		o.errorString("(efault)", sp)
		return
	}
	args, err := NewVaList(f.Env, vaAddr)
	if err != nil {
		o.errorString("(efault)", sp)
		return
	}
	f.format(o, []byte(format), args, depth+1)
}

// readChecked reads len(buf) bytes at addr for an extension that
// dereferences its pointer, printing the kernel's message for a bad pointer
// (or "(efault)" where the kernel would oops) and reporting whether to go on.
func (f *Formatter) readChecked(o *output, addr uint64, buf []byte, sp spec) bool {
	if msg := checkPointer(addr); msg != "" {
		o.errorString(msg, sp)
		return false
	}
	return f.readOrEfault(o, addr, buf, sp)
}

// readOrEfault reads len(buf) bytes at addr, printing "(efault)" and
// reporting false if the guest has no such memory.
func (f *Formatter) readOrEfault(o *output, addr uint64, buf []byte, sp spec) bool {
	if err := f.Env.Read(addr, buf); err != nil {
		o.errorString("(efault)", sp)
		return false
	}
	return true
}
