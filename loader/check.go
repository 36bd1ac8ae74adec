package loader

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// This file is the batch side of the loader: finding the modules of a tree, ordering them so that
// every module comes after the modules it uses, and linking them all into one registry without
// running any code (what `kemu check`, the corpus test and the benchmark do).

// IsModuleFile reports whether name looks like a kernel module (.ko, optionally compressed).
func IsModuleFile(name string) bool {
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// ModuleName is the name modprobe derives from a module path: the base name without the .ko
// suffix, dashes turned to underscores.
func ModuleName(path string) string {
	base := filepath.Base(path)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

// FindModules lists the module files under root, sorted by path.
func FindModules(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && IsModuleFile(d.Name()) {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// FindModulesDep returns the modules.dep describing root: root/modules.dep, or the one in the single
// release directory of root/lib/modules. "" when there is none.
func FindModulesDep(root string) string {
	if p := filepath.Join(root, "modules.dep"); fileExists(p) {
		return p
	}
	rels, _ := filepath.Glob(filepath.Join(root, "lib", "modules", "*", "modules.dep"))
	if len(rels) == 1 {
		return rels[0]
	}
	return ""
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// ReadModulesDep parses modules.dep ("path: dep1 dep2 ...") into dependencies by module name.
func ReadModulesDep(path string) (map[string][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	deps := map[string][]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var names []string
		for _, d := range strings.Fields(rest) {
			names = append(names, ModuleName(d))
		}
		deps[ModuleName(mod)] = names
	}
	return deps, sc.Err()
}

// DependsFromModinfo reads each file's `depends=` instead of a modules.dep.
func DependsFromModinfo(files []string) (map[string][]string, error) {
	deps := make(map[string][]string, len(files))
	var mu sync.Mutex
	err := parallel(len(files), func(i int) error {
		img, err := ReadFile(files[i])
		if err != nil {
			return err
		}
		_, mi, _, err := Inspect(img)
		if err != nil {
			return nil // the load reports it
		}
		var names []string
		for _, v := range mi.All("depends") {
			for _, d := range strings.Split(v, ",") {
				if d != "" {
					names = append(names, ModuleName(d))
				}
			}
		}
		mu.Lock()
		deps[ModuleName(files[i])] = names
		mu.Unlock()
		return nil
	})
	return deps, err
}

// LoadOrder orders files so that each comes after the files of the modules it depends on (a
// depth-first post-order, as modprobe loads a module's dependencies before it). Files keep their
// relative order otherwise; dependency cycles are broken where they are found.
func LoadOrder(files []string, deps map[string][]string) []string {
	byName := make(map[string]string, len(files))
	for _, f := range files {
		byName[ModuleName(f)] = f
	}
	state := map[string]int{} // 1 visiting, 2 done
	out := make([]string, 0, len(files))
	var visit func(name string)
	visit = func(name string) {
		if state[name] != 0 {
			return
		}
		state[name] = 1
		for _, d := range deps[name] {
			if _, ok := byName[d]; ok {
				visit(d)
			}
		}
		state[name] = 2
		out = append(out, byName[name])
	}
	for _, f := range files {
		visit(ModuleName(f))
	}
	return out
}

// CheckResult is the outcome of linking one module.
type CheckResult struct {
	Path   string
	Module *Module // nil when the load failed
	Err    error
}

// CheckOptions are how CheckFilesWith loads a batch of modules.
type CheckOptions struct {
	// Workers is how many goroutines read and prepare files ahead of the linker (at least one).
	Workers int
	// Flags are the finit_module() flags every module is loaded with, as insmod or modprobe
	// --force-vermagic / --force-modversion pass them: the kernel skips those checks, treats the
	// module as unsigned (mangled) and taints it F.
	Flags Flags
}

// CheckFiles is CheckFilesWith without finit_module flags.
func (k *Kernel) CheckFiles(files []string, workers int, fn func(CheckResult)) {
	k.CheckFilesWith(files, CheckOptions{Workers: workers}, fn)
}

// CheckFilesWith links every file, in the given order, into k, marking each successful one LIVE so
// that later modules can use its exports. Files are read and prepared (decompressed,
// signature-checked, ELF-validated) by opts.Workers goroutines ahead of the sequential linker. fn
// receives each result in order; once it returns, the module's region bytes are dropped (the
// registry keeps everything else) and recycled for the next modules' regions, so a whole
// distribution's modules fit in memory and the linker does not allocate (and the garbage collector
// scan for) a tree's worth of bytes. fn must not keep Region.Bytes.
func (k *Kernel) CheckFilesWith(files []string, opts CheckOptions, fn func(CheckResult)) {
	workers := opts.Workers
	if workers < 1 {
		workers = 1
	}
	type read struct {
		p    *Prepared
		err  error
		file mappedFile // the file's bytes, which p refers to until it is loaded
	}
	slots := make([]chan read, len(files))
	for i := range slots {
		slots[i] = make(chan read, 1)
	}
	// The feeder takes a read-ahead token before handing out each index, in order, so the file the
	// linker waits for has always been handed out and a large tree never sits in memory at once.
	// Each token comes with a file buffer: the linker hands the buffer back with the token once the
	// module is loaded, so the read-ahead window bounds the buffers too and they are reused.
	next := make(chan int)
	window := 4 * workers
	ahead := make(chan struct{}, window)
	bufs := make(chan []byte, window)
	for i := 0; i < window; i++ {
		bufs <- nil
	}
	go func() {
		for i := range files {
			ahead <- struct{}{}
			next <- i
		}
		close(next)
	}()
	for w := 0; w < workers; w++ {
		go func() {
			defer panicOnFault()() // see mapped.go
			for i := range next {
				file, p, err := k.prepareFile(files[i], <-bufs, opts.Flags)
				slots[i] <- read{p, err, file}
			}
		}()
	}
	k.spare = &regionPool{}
	defer func() { k.spare = nil }()
	defer panicOnFault()() // LoadPrepared reads mapped files too
	for i, f := range files {
		r := <-slots[i]
		res := CheckResult{Path: f, Err: r.err}
		if r.err != nil {
			k.report(r.err)
		} else {
			res.Module, res.Err = k.LoadPrepared(r.p)
			if res.Err == nil {
				res.Err = k.MarkLive(res.Module, 0)
			}
		}
		// Nothing the registry keeps refers to the file's bytes (names and strings are copies), so the
		// mapping or buffer is free once the module is linked.
		r.p = nil
		bufs <- r.file.release()
		<-ahead
		fn(res)
		if m := res.Module; m != nil {
			k.spare.put(m.Core.Bytes)
			k.spare.put(m.Init.Bytes)
			k.spare.put(m.Percpu.Bytes)
			m.Core.Bytes, m.Init.Bytes, m.Percpu.Bytes = nil, nil, nil
		}
	}
}

// regionPool keeps the region buffers of modules CheckFiles has finished with, for the next modules'
// regions. It is used by the linker goroutine only.
type regionPool struct {
	bufs [][]byte
}

// regionPoolSize bounds the buffers kept: a module has at most three regions, and keeping a few more
// lets the large ones (up to maxRegion) be reused without holding many of them.
const regionPoolSize = 6

// put offers b for reuse; when the pool is full the smallest buffer is dropped.
func (p *regionPool) put(b []byte) {
	if cap(b) == 0 {
		return
	}
	if len(p.bufs) < regionPoolSize {
		p.bufs = append(p.bufs, b)
		return
	}
	small := 0
	for i := range p.bufs {
		if cap(p.bufs[i]) < cap(p.bufs[small]) {
			small = i
		}
	}
	if cap(b) > cap(p.bufs[small]) {
		p.bufs[small] = b
	}
}

// get returns size zeroed bytes: the smallest kept buffer that is large enough, else a new one.
func (p *regionPool) get(size uint64) []byte {
	if p != nil {
		best := -1
		for i, b := range p.bufs {
			if uint64(cap(b)) >= size && (best < 0 || cap(b) < cap(p.bufs[best])) {
				best = i
			}
		}
		if best >= 0 {
			b := p.bufs[best][:size]
			p.bufs[best] = p.bufs[len(p.bufs)-1]
			p.bufs = p.bufs[:len(p.bufs)-1]
			clear(b)
			return b
		}
	}
	return make([]byte, size)
}

// parallel runs fn(0..n-1) on up to 2 goroutines (the machines kemu is tested on are small).
func parallel(n int, fn func(i int) error) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	idx := make(chan int)
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		idx <- i
	}
	close(idx)
	wg.Wait()
	return first
}
