package tlb_test

import (
	"fmt"

	"kemu/tlb"
)

// A machine wires the TLB to its page-table walker and feeds it the basic
// blocks it runs (HOOK_BLOCK: address and size) and, when asked, data
// accesses. Here module text lives in 4K pages and kernel text in 2M pages.
func Example() {
	const moduleText, kernelText = 0xffffffffc0000000, 0xffffffff81000000
	walker := tlb.WalkFunc(func(va uint64) (tlb.Translation, error) {
		if va >= moduleText {
			return tlb.Translation{Size: tlb.Page4K, Frame: va &^ 0xfff & 0x3fffffff}, nil
		}
		return tlb.Translation{Size: tlb.Page2M, Frame: va &^ 0x1fffff & 0x3fffffff, Global: true}, nil
	})
	t, err := tlb.New(tlb.Skylake(), walker)
	if err != nil {
		panic(err)
	}
	module := t.Tag("hello", "")
	kernel := t.Tag("vmlinux", "")
	for range 10 {
		// 64 KiB of module code calling into 64 KiB of kernel code. The
		// first module walk reads all four levels, the next fifteen only
		// the PTE (PDE cache); the kernel walk starts at the PDPTE, as the
		// PML4E cache holds the top-level entry both share.
		_ = t.AccessRange(moduleText, 64<<10, tlb.Fetch, module)
		_ = t.AccessRange(kernelText, 64<<10, tlb.Fetch, kernel)
	}
	m, k := t.Counters(module), t.Counters(kernel)
	fmt.Printf("module: %d fetches, %d walks, %d page-walk reads\n", m.TotalAccesses(), m.TotalWalks(), m.TotalWalkRefs())
	fmt.Printf("kernel: %d fetches, %d walks, %d page-walk reads\n", k.TotalAccesses(), k.TotalWalks(), k.TotalWalkRefs())
	// Output:
	// module: 160 fetches, 16 walks, 19 page-walk reads
	// kernel: 10 fetches, 1 walks, 2 page-walk reads
}
