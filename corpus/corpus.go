// Package corpus finds Debian's real kernel packages for tests and benchmarks: the modules, the
// System.map, Module.symvers, vmlinux and the kernel profile of one kernel flavour, fetched and
// unpacked by scripts/fetch-debian-kernel under $KEMU_CACHE/debian/<release>/ (default
// ~/.cache/kemu). Debian fetches the tree on first use; later calls only look at the cache.
//
// Tests that need the corpus call Debian and skip themselves under testing.Short().
package corpus

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"kemu/profile"
)

// Tree is one fetched kernel. Every path is absolute.
type Tree struct {
	Flavor      string // amd64, cloud-amd64, rt-amd64
	Release     string // uname -r, e.g. 6.1.0-56-amd64
	Dir         string // $KEMU_CACHE/debian/<release>
	Root        string // Dir/root: the packages unpacked into one tree
	ModulesDir  string // Root/lib/modules/<release>
	ProfilePath string // Dir/profile.kprof
	SystemMap   string // the real System.map (from the -dbg package)
	Symvers     string // Module.symvers from the headers package
	Vmlinux     string // vmlinux extracted from vmlinuz

	profileOnce sync.Once
	prof        *profile.Profile
	profErr     error
}

// Flavors are the kernel flavours the fetch script knows.
var Flavors = []string{"amd64", "cloud-amd64", "rt-amd64"}

// CacheDir is where kemu keeps downloaded data: $KEMU_CACHE, else ~/.cache/kemu.
func CacheDir() (string, error) {
	if dir := os.Getenv("KEMU_CACHE"); dir != "" {
		return filepath.Abs(dir)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("corpus: no cache directory: set KEMU_CACHE or HOME: %w", err)
	}
	return filepath.Join(home, ".cache", "kemu"), nil
}

// fetchMu serialises fetches within this process; a file lock serialises them across processes
// (go test runs packages in parallel, and several may want the corpus at once).
var fetchMu sync.Mutex

// Debian returns the newest fetched tree of a flavour ("" means amd64), running
// scripts/fetch-debian-kernel first when none is in the cache. The script needs apt (Debian) and
// network access; its output goes to stderr.
func Debian(flavor string) (*Tree, error) {
	if flavor == "" {
		flavor = "amd64"
	}
	if !validFlavor(flavor) {
		return nil, fmt.Errorf("corpus: unknown flavor %q (want one of %s)", flavor, strings.Join(Flavors, ", "))
	}
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	if t, err := cached(cache, flavor); t != nil || err != nil {
		return t, err
	}

	fetchMu.Lock()
	defer fetchMu.Unlock()
	unlock, err := lockFile(filepath.Join(cache, "debian", ".fetch.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	if t, err := cached(cache, flavor); t != nil || err != nil {
		return t, err // another process fetched it while we waited
	}
	if err := runFetch(cache, flavor); err != nil {
		return nil, err
	}
	t, err := cached(cache, flavor)
	if err == nil && t == nil {
		err = fmt.Errorf("corpus: scripts/fetch-debian-kernel --flavor %s succeeded but left no finished tree under %s", flavor, filepath.Join(cache, "debian"))
	}
	return t, err
}

func validFlavor(flavor string) bool {
	for _, f := range Flavors {
		if f == flavor {
			return true
		}
	}
	return false
}

// cached returns the newest finished tree (one with a stamp file) of flavor, or nil.
func cached(cache, flavor string) (*Tree, error) {
	stamps, err := filepath.Glob(filepath.Join(cache, "debian", "*", "stamp"))
	if err != nil {
		return nil, err
	}
	re := regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)-(\d+)-` + regexp.QuoteMeta(flavor) + `$`)
	var best []int
	var bestRelease string
	for _, s := range stamps {
		rel := filepath.Base(filepath.Dir(s))
		m := re.FindStringSubmatch(rel)
		if m == nil {
			continue
		}
		var key []int
		for _, n := range m[1:] {
			v, _ := strconv.Atoi(n)
			key = append(key, v)
		}
		if best == nil || lessVersion(best, key) {
			best, bestRelease = key, rel
		}
	}
	if bestRelease == "" {
		return nil, nil
	}
	return newTree(filepath.Join(cache, "debian", bestRelease), bestRelease, flavor)
}

func lessVersion(a, b []int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// newTree fills in the paths of the layout scripts/fetch-debian-kernel writes, and checks the ones
// tests rely on exist.
func newTree(dir, release, flavor string) (*Tree, error) {
	root := filepath.Join(dir, "root")
	t := &Tree{
		Flavor: flavor, Release: release, Dir: dir, Root: root,
		ModulesDir:  filepath.Join(root, "lib", "modules", release),
		ProfilePath: filepath.Join(dir, "profile.kprof"),
		SystemMap:   filepath.Join(root, "usr", "lib", "debug", "boot", "System.map-"+release),
		Symvers:     filepath.Join(root, "usr", "src", "linux-headers-"+release, "Module.symvers"),
		Vmlinux:     filepath.Join(root, "boot", "vmlinux-"+release),
	}
	for _, p := range []string{t.ModulesDir, t.ProfilePath, t.SystemMap, t.Symvers, t.Vmlinux} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("corpus: tree %s is stamped finished but incomplete (remove %s to refetch): %w",
				dir, filepath.Join(dir, "stamp"), err)
		}
	}
	return t, nil
}

// Modules lists every module file (.ko, .ko.xz, .ko.zst, .ko.gz) under ModulesDir, sorted.
func (t *Tree) Modules() ([]string, error) {
	var mods []string
	err := filepath.WalkDir(t.ModulesDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && isModuleFile(d.Name()) {
			mods = append(mods, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("corpus: list modules: %w", err)
	}
	sort.Strings(mods)
	return mods, nil
}

func isModuleFile(name string) bool {
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// Profile returns the tree's kernel profile, read once from ProfilePath.
func (t *Tree) Profile() (*profile.Profile, error) {
	t.profileOnce.Do(func() { t.prof, t.profErr = profile.Load(t.ProfilePath) })
	return t.prof, t.profErr
}

// runFetch runs the fetch script for flavor with all its output on stderr.
func runFetch(cache, flavor string) error {
	script, err := fetchScript()
	if err != nil {
		return err
	}
	cmd := exec.Command(script, "--flavor", flavor)
	cmd.Env = append(os.Environ(), "KEMU_CACHE="+cache)
	cmd.Stdout = os.Stderr // the KEY=value summary is for people; the tree is found by its stamp
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("corpus: %s --flavor %s: %w", script, flavor, err)
	}
	return nil
}

// fetchScript finds scripts/fetch-debian-kernel in the source tree this package was built from
// (tests and benchmarks run from there), or next to the working directory's module root.
func fetchScript() (string, error) {
	var candidates []string
	if _, file, _, ok := runtime.Caller(0); ok {
		candidates = append(candidates, filepath.Join(filepath.Dir(file), "..", "scripts", "fetch-debian-kernel"))
	}
	if out, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		if mod := strings.TrimSpace(string(out)); mod != "" && mod != os.DevNull {
			candidates = append(candidates, filepath.Join(filepath.Dir(mod), "scripts", "fetch-debian-kernel"))
		}
	}
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && fi.Mode()&0o111 != 0 {
			return filepath.Clean(c), nil
		}
	}
	return "", errors.New("corpus: scripts/fetch-debian-kernel not found (run from the kemu source tree)")
}

// lockFile takes an exclusive flock on path, creating it, and returns the function that releases it.
func lockFile(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("corpus: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
