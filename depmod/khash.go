package depmod

import (
	"cmp"
	"slices"
)

// kmod's depmod keeps modules and symbols in its own hash table (shared/hash.c) and writes
// modules.symbols, and without a modules.order modules.dep too, in that table's iteration order:
// bucket by bucket, each bucket sorted by strcmp. The table never grows, so the order is a pure
// function of the key set and the bucket count; reproducing it is what makes the files equal.

// Bucket counts depmod creates its tables with (powers of two already).
const (
	moduleBuckets = 512
	symbolBuckets = 2048
)

// superFastHash is Paul Hsieh's SuperFastHash as kmod's hash_superfast computes it on x86: 16-bit
// little-endian reads and a signed char for the odd trailing byte.
func superFastHash(key string) uint32 {
	n := len(key)
	h := uint32(n)
	rem := n & 3
	le16 := func(i int) uint32 { return uint32(key[i]) | uint32(key[i+1])<<8 }
	signed := func(i int) uint32 { return uint32(int32(int8(key[i]))) }
	i := 0
	for ; i+4 <= n-rem; i += 4 {
		h += le16(i)
		tmp := le16(i+2)<<11 ^ h
		h = h<<16 ^ tmp
		h += h >> 11
	}
	switch rem {
	case 3:
		h += le16(i)
		h ^= h << 16
		h ^= signed(i+2) << 18
		h += h >> 11
	case 2:
		h += le16(i)
		h ^= h << 11
		h += h >> 17
	case 1:
		h += signed(i)
		h ^= h << 10
		h += h >> 1
	}
	h ^= h << 3
	h += h >> 5
	h ^= h << 4
	h += h >> 17
	h ^= h << 25
	h += h >> 6
	return h
}

// sortHashOrder sorts items into the order kmod's hash_iter visits their keys in a table of
// nbuckets buckets (a power of two). Keys must be distinct, as they are in a hash.
func sortHashOrder[T any](items []T, key func(T) string, nbuckets uint32) {
	type keyed struct {
		bucket uint32
		key    string
		item   T
	}
	ks := make([]keyed, len(items))
	for i, it := range items {
		k := key(it)
		ks[i] = keyed{superFastHash(k) & (nbuckets - 1), k, it}
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		if c := cmp.Compare(a.bucket, b.bucket); c != 0 {
			return c
		}
		return cmp.Compare(a.key, b.key) // Go compares bytes unsigned, as strcmp
	})
	for i := range ks {
		items[i] = ks[i].item
	}
}
