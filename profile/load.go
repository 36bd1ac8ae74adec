package profile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Load reads a profile from path: a compact profile file (format.go) or a kernel directory (LoadDir).
func Load(path string) (*Profile, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load profile: %w", err)
	}
	if st.IsDir() {
		return LoadDir(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load profile: %w", err)
	}
	defer f.Close()
	p, err := Read(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("load profile %s: %w", path, err)
	}
	return p, nil
}

// LoadDir builds a profile from a directory of kernel build outputs. Two layouts are understood:
//
//   - a plain directory holding Module.symvers, System.map and the config, each named plainly
//     (System.map, config or .config) or with a "-<release>" suffix (System.map-6.1.0-56-amd64),
//     plus optionally vmlinux[-<release>] (ELF, or raw BTF as in /sys/kernel/btf/vmlinux),
//     vmlinuz[-<release>] (bzImage, used when there is no vmlinux) or a raw BTF file named
//     vmlinux.btf, btf or BTF;
//   - an unpacked Debian kernel (scripts/fetch-debian-kernel): boot/{config,vmlinux,vmlinuz}-<rel>,
//     usr/lib/debug/boot/System.map-<rel> (boot/System.map-<rel> is only a placeholder in Debian)
//     and usr/src/linux-headers-<rel>/Module.symvers. The cache directory holding root/ works too.
//
// The release comes from the file name suffixes, the headers directory name,
// include/generated/utsrelease.h and the vmlinux banner; they must all agree. Exports of vmlinux
// missing from System.map mean the two come from different builds and are an error too.
func LoadDir(dir string) (*Profile, error) {
	if fi, err := os.Stat(filepath.Join(dir, "root", "boot")); err == nil && fi.IsDir() {
		dir = filepath.Join(dir, "root") // the fetch script's cache directory
	}
	src, err := findSources(dir)
	if err != nil {
		return nil, err
	}
	p := &Profile{}
	if p.Config, err = parseFile(src.config, ParseConfig); err != nil {
		return nil, err
	}
	if p.Symbols, err = parseFile(src.sysmap, ParseSystemMap); err != nil {
		return nil, err
	}
	if p.Exports, err = parseFile(src.symvers, ParseSymvers); err != nil {
		return nil, err
	}
	if !p.ConfigBool("CONFIG_MODVERSIONS") {
		for i := range p.Exports {
			p.Exports[i].HasCRC = false
		}
	}
	var image *Vmlinux
	switch {
	case src.vmlinux != "":
		image, err = readImageFile(src.vmlinux, false)
	case src.vmlinuz != "":
		image, err = readImageFile(src.vmlinuz, true)
	}
	if err != nil {
		return nil, err
	}
	if image != nil {
		p.BTF, p.Version = image.BTF, image.Version
		if image.Release != "" {
			src.releases = append(src.releases, releaseClaim{image.Release, "the banner of " + filepath.Base(src.image())})
		}
	}
	if src.btf != "" {
		if p.BTF, err = os.ReadFile(src.btf); err != nil {
			return nil, fmt.Errorf("read BTF: %w", err)
		}
	}
	if p.Release, err = src.release(); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if p.ConfigBool("CONFIG_RANDSTRUCT") && src.randstructHash == "" {
		return nil, fmt.Errorf("%s: the kernel has CONFIG_RANDSTRUCT, whose vermagic needs the seed hash in include/generated/randstruct_hash.h; not found", dir)
	}
	p.Vermagic = Vermagic(p.Release, p.Config, src.randstructHash)
	if err := checkExportsInMap(p, src); err != nil {
		return nil, err
	}
	return New(p), nil
}

// sources are the files LoadDir found, and every claim about the release it can check.
type sources struct {
	symvers, sysmap, config string
	vmlinux, vmlinuz, btf   string
	randstructHash          string
	releases                []releaseClaim
	fallbackRelease         releaseClaim // include/config/kernel.release: used only when nothing else says
}

type releaseClaim struct{ release, from string }

func (s *sources) image() string {
	if s.vmlinux != "" {
		return s.vmlinux
	}
	return s.vmlinuz
}

// release returns the one release all claims agree on.
func (s *sources) release() (string, error) {
	claims := s.releases
	if len(claims) == 0 {
		if s.fallbackRelease.release == "" {
			return "", errors.New("cannot tell the kernel release: no file is named <name>-<release>, " +
				"no include/generated/utsrelease.h, no vmlinux banner")
		}
		claims = []releaseClaim{s.fallbackRelease}
	}
	for _, c := range claims[1:] {
		if c.release != claims[0].release {
			return "", fmt.Errorf("inconsistent kernel release: %s says %s, %s says %s",
				claims[0].from, claims[0].release, c.from, c.release)
		}
	}
	return claims[0].release, nil
}

// findSources locates the inputs in a plain directory or a Debian tree.
func findSources(dir string) (*sources, error) {
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("load kernel directory: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("load kernel directory: %s is not a directory", dir)
	}
	s := &sources{}
	boot := filepath.Join(dir, "boot")
	debugBoot := filepath.Join(dir, "usr", "lib", "debug", "boot")
	headers, err := headersDirs(dir)
	if err != nil {
		return nil, err
	}
	for _, h := range headers {
		s.releases = append(s.releases, releaseClaim{strings.TrimPrefix(filepath.Base(h), "linux-headers-"), "the directory " + filepath.Base(h)})
	}

	find := func(what string, dirs []string, names ...string) (string, error) {
		for _, d := range dirs {
			for _, name := range names {
				path, rel, err := findNamed(d, name)
				if err != nil {
					return "", err
				}
				if path == "" {
					continue
				}
				if what == "System.map" && isDebianPlaceholderMap(path) {
					continue // Debian's boot/System.map-<rel> only points at the -dbg package
				}
				if rel != "" {
					s.releases = append(s.releases, releaseClaim{rel, "the name " + filepath.Base(path)})
				}
				return path, nil
			}
		}
		return "", nil
	}
	top := append([]string{dir}, headers...)
	if s.symvers, err = find("Module.symvers", top, "Module.symvers"); err != nil {
		return nil, err
	}
	if s.sysmap, err = find("System.map", []string{dir, debugBoot, boot}, "System.map"); err != nil {
		return nil, err
	}
	if s.config, err = find("config", append([]string{dir, boot}, headers...), "config", ".config"); err != nil {
		return nil, err
	}
	if s.vmlinux, err = find("vmlinux", []string{dir, boot}, "vmlinux"); err != nil {
		return nil, err
	}
	if s.vmlinux == "" {
		if s.vmlinuz, err = find("vmlinuz", []string{dir, boot}, "vmlinuz", "bzImage"); err != nil {
			return nil, err
		}
	}
	if s.btf, err = find("BTF", []string{dir}, "vmlinux.btf", "btf", "BTF"); err != nil {
		return nil, err
	}

	var missing []string
	for _, f := range []struct{ path, name string }{
		{s.symvers, "Module.symvers"}, {s.sysmap, "System.map[-<release>]"}, {s.config, "config[-<release>] or .config"},
	} {
		if f.path == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		hint := ""
		if fileExists(filepath.Join(boot, "System.map-"+strings.TrimPrefix(filepath.Base(firstOr(headers, "")), "linux-headers-"))) {
			hint = " (Debian's boot/System.map is a placeholder; the real one is in the linux-image-<release>-dbg package, which scripts/fetch-debian-kernel fetches)"
		}
		return nil, fmt.Errorf("%s: no %s%s", dir, strings.Join(missing, ", no "), hint)
	}

	for _, h := range append([]string{dir}, headers...) {
		if rel, err := readUTSRelease(filepath.Join(h, "include", "generated", "utsrelease.h")); err != nil {
			return nil, err
		} else if rel != "" {
			s.releases = append(s.releases, releaseClaim{rel, filepath.Join(filepath.Base(h), "include/generated/utsrelease.h")})
		}
		if b, err := os.ReadFile(filepath.Join(h, "include", "config", "kernel.release")); err == nil && s.fallbackRelease.release == "" {
			s.fallbackRelease = releaseClaim{strings.TrimSpace(string(b)), "include/config/kernel.release"}
		}
		if hash, err := readRandstructHash(filepath.Join(h, "include", "generated", "randstruct_hash.h")); err != nil {
			return nil, err
		} else if hash != "" {
			s.randstructHash = hash
		}
	}
	return s, nil
}

// headersDirs lists usr/src/linux-headers-<rel> directories that hold a Module.symvers.
func headersDirs(root string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(root, "usr", "src", "linux-headers-*", "Module.symvers"))
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, m := range matches {
		dirs = append(dirs, filepath.Dir(m))
	}
	if len(dirs) > 1 {
		return nil, fmt.Errorf("%s: several kernel header trees with a Module.symvers: %s", root, strings.Join(dirs, ", "))
	}
	return dirs, nil
}

// findNamed looks in dir for a regular file called name or name-<release>. Two different
// name-<release> files are ambiguous and an error. rel is the suffix, "" for the plain name.
func findNamed(dir, name string) (path, rel string, err error) {
	if p := filepath.Join(dir, name); fileExists(p) {
		return p, "", nil
	}
	matches, err := filepath.Glob(filepath.Join(dir, globEscape(name)+"-*"))
	if err != nil {
		return "", "", err
	}
	var files []string
	for _, m := range matches {
		if fileExists(m) {
			files = append(files, m)
		}
	}
	switch len(files) {
	case 0:
		return "", "", nil
	case 1:
		return files[0], strings.TrimPrefix(filepath.Base(files[0]), name+"-"), nil
	}
	sort.Strings(files)
	return "", "", fmt.Errorf("%s: several %s-<release> files, cannot choose: %s", dir, name, strings.Join(files, ", "))
}

func globEscape(s string) string {
	r := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `\`, `\\`)
	return r.Replace(s)
}

func fileExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

func firstOr(list []string, def string) string {
	if len(list) > 0 {
		return list[0]
	}
	return def
}

// isDebianPlaceholderMap reports whether a System.map is the one-line file Debian ships in place
// of the real map ("ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package").
func isDebianPlaceholderMap(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 256)
	n, _ := io.ReadFull(f, head)
	return bytes.Contains(head[:n], []byte("The real System.map is in"))
}

var (
	utsReleaseDefine = regexp.MustCompile(`(?m)^#define UTS_RELEASE "([^"]+)"`)
	randstructDefine = regexp.MustCompile(`(?m)^#define RANDSTRUCT_HASHED_SEED\s+"([0-9a-fA-F]+)"`)
)

// readUTSRelease reads the release from include/generated/utsrelease.h; "" when there is none.
func readUTSRelease(path string) (string, error) {
	return readDefine(path, utsReleaseDefine)
}

// readRandstructHash reads the seed hash modules built with CONFIG_RANDSTRUCT carry in vermagic.
func readRandstructHash(path string) (string, error) {
	return readDefine(path, randstructDefine)
}

func readDefine(path string, re *regexp.Regexp) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if m := re.FindSubmatch(b); m != nil {
		return string(m[1]), nil
	}
	return "", nil
}

// parseFile opens path and runs a parser over it, naming the file in any error.
func parseFile[T any](path string, parse func(io.Reader) (T, error)) (T, error) {
	var zero T
	f, err := os.Open(path)
	if err != nil {
		return zero, err
	}
	defer f.Close()
	v, err := parse(bufio.NewReaderSize(f, 1<<16))
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// btfMagic starts raw BTF (struct btf_header's magic 0xeb9f, little-endian).
var btfMagic = []byte{0x9f, 0xeb}

// readImageFile reads a vmlinux, or with compressed set a vmlinuz it first extracts vmlinux from.
func readImageFile(path string, compressed bool) (*Vmlinux, error) {
	image, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if compressed {
		if image, err = ExtractVmlinux(image); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	} else if bytes.HasPrefix(image, btfMagic) {
		return &Vmlinux{BTF: image}, nil // raw BTF, e.g. a copy of /sys/kernel/btf/vmlinux
	}
	v, err := ReadVmlinux(image)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// checkExportsInMap rejects a Module.symvers and a System.map from different builds: every symbol
// vmlinux exports is defined in vmlinux, so it must be in the map. A handful of misses is tolerated
// (a toolchain may rename a local alias); more than 1% means the files do not belong together.
func checkExportsInMap(p *Profile, src *sources) error {
	names := make(map[string]struct{}, len(p.Symbols))
	for _, s := range p.Symbols {
		names[s.Name] = struct{}{}
	}
	var total int
	var missing []string
	for _, e := range p.Exports {
		if e.Module != "vmlinux" {
			continue
		}
		total++
		if _, ok := names[e.Name]; !ok {
			missing = append(missing, e.Name)
		}
	}
	if len(missing) > 0 && len(missing)*100 > total {
		if len(missing) > 5 {
			missing = append(missing[:5], "...")
		}
		return fmt.Errorf("%s and %s are from different builds: %d of %d vmlinux exports are not in System.map (%s)",
			src.symvers, src.sysmap, len(missing), total, strings.Join(missing, ", "))
	}
	return nil
}
