package tlb

import "fmt"

// PageSize is the size of the page a translation maps.
type PageSize uint8

// Page sizes of x86-64 4-level paging.
const (
	Page4K PageSize = iota
	Page2M
	Page1G
	numPageSizes
)

// Shift is log2 of the page size in bytes: 12, 21 or 30 (each paging level
// adds 9 bits). Sizes past Page1G count as Page1G.
func (s PageSize) Shift() uint {
	return 12 + 9*uint(min(s, Page1G))
}

// Bytes is the page size in bytes.
func (s PageSize) Bytes() uint64 { return 1 << s.Shift() }

// levels is how many paging-structure entries a walk to this size reads.
func (s PageSize) levels() int { return 4 - int(s) }

func (s PageSize) String() string {
	if s >= numPageSizes {
		return fmt.Sprintf("PageSize(%d)", s)
	}
	return [...]string{"4K", "2M", "1G"}[s]
}

// Sizes is a set of page sizes.
type Sizes uint8

// Size sets used by the presets.
const (
	Sizes4K   = Sizes(1 << Page4K)
	Sizes2M   = Sizes(1 << Page2M)
	Sizes1G   = Sizes(1 << Page1G)
	Sizes4K2M = Sizes4K | Sizes2M
	SizesAll  = Sizes4K | Sizes2M | Sizes1G
)

// Has reports whether s contains size.
func (s Sizes) Has(size PageSize) bool { return s&(1<<size) != 0 }

// Kind is what an access does.
type Kind uint8

// Access kinds.
const (
	Fetch Kind = iota // instruction fetch: iTLB
	Read              // data read: dTLB
	Write             // data write: dTLB
)

func (k Kind) String() string {
	switch k {
	case Fetch:
		return "fetch"
	case Read:
		return "read"
	case Write:
		return "write"
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// Translation is what a page walk finds for an address.
type Translation struct {
	Size   PageSize
	Frame  uint64 // physical address of the page (aligned to Size)
	Global bool   // the G bit: survives Flush
}

// Walker performs page walks for the TLB: the mmu package's walker, or a
// fake in tests. An error means the address is not mapped (a page fault).
type Walker interface {
	Walk(va uint64) (Translation, error)
}

// WalkFunc adapts a function to Walker.
type WalkFunc func(va uint64) (Translation, error)

// Walk calls f.
func (f WalkFunc) Walk(va uint64) (Translation, error) { return f(va) }
