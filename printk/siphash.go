package printk

import "math/bits"

// sipHash64 is SipHash-2-4 of one little-endian 64-bit word, the kernel's
// siphash_1u64(), which 6.1 uses to turn %p addresses into identifiers.
func sipHash64(key [2]uint64, m uint64) uint64 {
	v0 := key[0] ^ 0x736f6d6570736575
	v1 := key[1] ^ 0x646f72616e646f6d
	v2 := key[0] ^ 0x6c7967656e657261
	v3 := key[1] ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13)
		v1 ^= v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16)
		v3 ^= v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21)
		v3 ^= v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17)
		v1 ^= v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	compress := func(word uint64) {
		v3 ^= word
		round()
		round()
		v0 ^= word
	}
	compress(m)
	compress(8 << 56) // final block: no tail bytes, message length 8
	v2 ^= 0xff
	round()
	round()
	round()
	round()
	return v0 ^ v1 ^ v2 ^ v3
}
