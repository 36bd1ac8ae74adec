package vmalloc

import (
	"fmt"
	"slices"
	"sort"
	"syscall"
)

// Spans is the free part of an address range: sorted, disjoint, never adjacent [start, end) spans, handed out
// first-fit. It serves the vmalloc and module spaces here and any sub-allocator of a range (placement's packs).
type Spans struct {
	spans []span
}

type span struct{ start, end uint64 }

// NewSpans returns [start, end) all free.
func NewSpans(start, end uint64) *Spans {
	return &Spans{spans: []span{{start, end}}}
}

// Take removes the lowest size-byte range aligned to align and returns its start.
func (f *Spans) Take(size, align uint64) (uint64, error) {
	for i, s := range f.spans {
		start := (s.start + align - 1) &^ (align - 1)
		if start < s.start || start >= s.end || s.end-start < size {
			continue
		}
		var repl []span
		if start > s.start {
			repl = append(repl, span{s.start, start})
		}
		if start+size < s.end {
			repl = append(repl, span{start + size, s.end})
		}
		f.spans = slices.Replace(f.spans, i, i+1, repl...)
		return start, nil
	}
	return 0, fmt.Errorf("no free range of %#x bytes aligned %#x: %w", size, align, syscall.ENOMEM)
}

// Give returns [start, start+size) to the free spans, merging with its neighbours.
func (f *Spans) Give(start, size uint64) {
	end := start + size
	i := sort.Search(len(f.spans), func(i int) bool { return f.spans[i].start >= start })
	f.spans = slices.Insert(f.spans, i, span{start, end})
	if i+1 < len(f.spans) && f.spans[i+1].start == end {
		f.spans[i].end = f.spans[i+1].end
		f.spans = slices.Delete(f.spans, i+1, i+2)
	}
	if i > 0 && f.spans[i-1].end == start {
		f.spans[i-1].end = f.spans[i].end
		f.spans = slices.Delete(f.spans, i, i+1)
	}
}

// Free is how many bytes are free.
func (f *Spans) Free() uint64 {
	var n uint64
	for _, s := range f.spans {
		n += s.end - s.start
	}
	return n
}
