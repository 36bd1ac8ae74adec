package loader

import "hash/maphash"

// check_version() runs once per undefined symbol and scans the module's __versions for the symbol's
// name; large modules import hundreds of symbols, so the scan would be quadratic. findVersion answers
// it from an index of the table instead, which the Kernel keeps and rebuilds for each module it links
// (LoadPrepared links one module at a time).

// versionIndexMin is the size of __versions from which findVersion indexes it rather than scanning it.
const versionIndexMin = 16

// findVersion returns the index of the first __versions record for name, as check_version()'s scan
// finds it.
func (info *loadInfo) findVersion(name string) (int, bool) {
	vs := info.mod.Versions
	if len(vs) < versionIndexMin {
		for i := range vs {
			if vs[i].Name == name {
				return i, true
			}
		}
		return 0, false
	}
	x := &info.k.versions
	if !info.versionsIndexed {
		x.build(vs)
		info.versionsIndexed = true
	}
	return x.find(vs, name)
}

// versionIndex is an open-addressing hash table of __versions record indexes, keyed by name. A Go map
// would do, but clearing one costs its largest size ever, for every module; the slots here are
// cleared only as far as the module at hand needs.
type versionIndex struct {
	slots []int32 // record index + 1, 0 for an empty slot; a power of two, at most half full
	seed  maphash.Seed
}

// build indexes vs; of records with the same name, the first is the one found.
func (x *versionIndex) build(vs []Version) {
	if x.seed == (maphash.Seed{}) {
		x.seed = maphash.MakeSeed()
	}
	size := 1
	for size < 2*len(vs) {
		size <<= 1
	}
	if cap(x.slots) < size {
		x.slots = make([]int32, size)
	} else {
		x.slots = x.slots[:size]
		clear(x.slots)
	}
	mask := uint64(size - 1)
next:
	for i := range vs {
		h := maphash.String(x.seed, vs[i].Name) & mask
		for ; x.slots[h] != 0; h = (h + 1) & mask {
			if vs[x.slots[h]-1].Name == vs[i].Name {
				continue next // a later duplicate: the first record stays
			}
		}
		x.slots[h] = int32(i + 1)
	}
}

// find returns the index of the record called name in vs, the table build indexed.
func (x *versionIndex) find(vs []Version, name string) (int, bool) {
	mask := uint64(len(x.slots) - 1)
	for h := maphash.String(x.seed, name) & mask; x.slots[h] != 0; h = (h + 1) & mask {
		if i := int(x.slots[h] - 1); vs[i].Name == name {
			return i, true
		}
	}
	return 0, false
}
