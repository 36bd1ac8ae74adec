package loader

import "sync"

// loadScratch is the working memory of one load that nothing outlives: the decoded section headers
// and symbol table. The registry keeps copies of what it needs (section names and addresses, symbol
// names and values), so once LoadPrepared is done with a module its scratch serves the next one. A
// batch check decodes a distribution's files (millions of symbols); reusing these buffers keeps the
// loader from allocating, and the garbage collector from scanning, a tree's worth of them.
//
// Prepare takes a scratch from the pool (the workers of CheckFiles prepare files concurrently) and
// LoadPrepared gives it back. A Prepared that is never loaded simply leaves its scratch to the garbage
// collector. A reused buffer is overwritten entry by entry before use, never read stale.
type loadScratch struct {
	secs  []elfSection
	syms  []elfSym
	kinds []symKind // buildKallsyms' classification of syms
}

var scratchPool = sync.Pool{New: func() any { return new(loadScratch) }}

// takeScratch gives info a scratch from the pool.
func (info *loadInfo) takeScratch() {
	info.scratch = scratchPool.Get().(*loadScratch)
}

// releaseScratch returns info's buffers to the pool; info must not use its ELF view or symbols after.
func (info *loadInfo) releaseScratch() {
	s := info.scratch
	if s == nil {
		return
	}
	info.scratch = nil
	if info.f != nil && cap(info.f.secs) >= cap(s.secs) {
		s.secs = info.f.secs[:0]
	}
	if cap(info.syms) >= cap(s.syms) {
		s.syms = info.syms[:0]
	}
	info.f, info.syms = nil, nil
	scratchPool.Put(s)
}
