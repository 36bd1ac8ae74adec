package printk

// output is vsnprintf's destination: it keeps at most limit bytes but counts
// every byte the kernel would have produced, which is what snprintf returns.
// Keeping a prefix is exact: 6.1 lays out every conversion so that a short
// buffer holds a prefix of the untruncated output (see move_right()).
type output struct {
	b     []byte
	n     int // bytes produced, kept or not
	limit int
}

func (o *output) byte(c byte) {
	if len(o.b) < o.limit {
		o.b = append(o.b, c)
	}
	o.n++
}

func (o *output) str(s string) { write(o, s) }

func (o *output) bytes(s []byte) { write(o, s) }

// write appends as much of s as the limit allows and counts all of it.
func write[S string | []byte](o *output, s S) {
	if room := o.limit - len(o.b); room > 0 {
		o.b = append(o.b, s[:min(room, len(s))]...)
	}
	o.n += len(s)
}

// repeat writes c count times; a count below 1 writes nothing. Past the
// limit it only counts, so a huge field width costs no time.
func (o *output) repeat(c byte, count int32) {
	if count <= 0 {
		return
	}
	for keep := min(int(count), o.limit-len(o.b)); keep > 0; keep-- {
		o.b = append(o.b, c)
	}
	o.n += int(count)
}
