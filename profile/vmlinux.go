package profile

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"regexp"
)

// A bzImage (Documentation/x86/boot.rst) starts with a real-mode setup header; the protected-mode
// kernel that follows decompresses vmlinux from a payload embedded in it. Debian compresses that
// payload with xz (CONFIG_KERNEL_XZ), so vmlinux is the xz stream inside the file (xzkernel.go).
var (
	bzImageMagic = []byte("HdrS")                         // at offset 0x202
	xzMagic      = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00} // xz stream header
	elfMagic     = []byte("\x7fELF")
)

// ExtractVmlinux returns the vmlinux ELF image inside a bzImage (vmlinuz) whose payload is
// xz-compressed. It tries every xz stream header in the file, because the setup code may contain the
// magic bytes by accident, and returns the first stream that decompresses to an ELF file.
func ExtractVmlinux(bzImage []byte) ([]byte, error) {
	if len(bzImage) < 0x206 || !bytes.Equal(bzImage[0x202:0x206], bzImageMagic) {
		return nil, errors.New("vmlinuz: not a bzImage (no HdrS setup header at 0x202)")
	}
	var lastErr error
	for off := 0; ; {
		i := bytes.Index(bzImage[off:], xzMagic)
		if i < 0 {
			break
		}
		off += i
		var vmlinux []byte
		err := guard("xz", func() (err error) { vmlinux, err = decompressKernelXZ(bzImage[off:]); return err })
		switch {
		case err != nil:
			lastErr = fmt.Errorf("xz stream at %#x: %w", off, err)
		case !bytes.HasPrefix(vmlinux, elfMagic):
			lastErr = fmt.Errorf("xz stream at %#x holds no ELF file", off)
		default:
			return vmlinux, nil
		}
		off++
	}
	if lastErr != nil {
		return nil, fmt.Errorf("vmlinuz: no xz payload decompresses to ELF: %w", lastErr)
	}
	return nil, errors.New("vmlinuz: no xz-compressed payload (only xz kernels are supported)")
}

// Vmlinux is what a profile takes from a vmlinux image: its BTF and its version banner.
type Vmlinux struct {
	BTF     []byte // the .BTF section; nil when the kernel was built without CONFIG_DEBUG_INFO_BTF
	Release string // uname -r from the banner; "" when no banner was found
	Version string // uname -v from the banner; "" when no banner was found
}

// ReadVmlinux reads the .BTF section and the "Linux version" banner (linux_banner) of a vmlinux ELF
// image. Stripped images, like the one inside vmlinuz, still have both.
func ReadVmlinux(image []byte) (*Vmlinux, error) {
	v := &Vmlinux{}
	err := guard("vmlinux", func() error { return v.read(image) })
	if err != nil {
		return nil, err
	}
	return v, nil
}

func (v *Vmlinux) read(image []byte) error {
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		return fmt.Errorf("vmlinux: %w", err)
	}
	defer f.Close()
	if s := f.Section(".BTF"); s != nil {
		if v.BTF, err = s.Data(); err != nil {
			return fmt.Errorf("vmlinux: read .BTF: %w", err)
		}
	}
	// linux_banner is in .rodata; search every allocated data section in case a linker script moves it.
	for _, s := range f.Sections {
		if s.Type != elf.SHT_PROGBITS || s.Flags&elf.SHF_ALLOC == 0 || s.Flags&elf.SHF_EXECINSTR != 0 {
			continue
		}
		data, err := s.Data()
		if err != nil {
			continue
		}
		if rel, ver, ok := parseBanner(data); ok {
			v.Release, v.Version = rel, ver
			break
		}
	}
	return nil
}

// guard is the panic boundary around the third-party decoders kemu feeds untrusted kernel images
// (debug/elf, ulikunitz/xz/lzma): a panic inside them becomes an error naming what was decoded, so
// no input file can crash the host. Nothing else in the package recovers.
func guard(what string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: malformed input (decoder panicked: %v)", what, r)
		}
	}()
	return fn()
}

// The kernel's banner is "Linux version " UTS_RELEASE " (" compile-by "@" compile-host ") ("
// compiler ") " UTS_VERSION "\n" (init/version-timestamp.c). UTS_VERSION starts with "#"; the
// parenthesised parts may themselves contain parentheses, so they are matched by balance. A 6.1
// vmlinux holds two banners: init/version.c's, built before the build number is known ("# SMP ..."),
// and the final one ("#1 SMP ...") that uname -v reports; the one with a number wins.
var bannerStart = regexp.MustCompile(`Linux version (\S+) \(`)

func parseBanner(data []byte) (release, version string, ok bool) {
	for _, m := range bannerStart.FindAllSubmatchIndex(data, -1) {
		rest := data[m[1]-1:] // at the first "("
		end := bytes.IndexByte(rest, '\n')
		if end < 0 || end > 1024 {
			continue
		}
		v, found := utsVersion(string(rest[:end]))
		if !found {
			continue
		}
		if !ok || (!numbered(version) && numbered(v)) {
			release, version, ok = string(data[m[2]:m[3]]), v, true
		}
	}
	return release, version, ok
}

// utsVersion skips the parenthesised groups at the start of line and returns the "#..." after them.
func utsVersion(line string) (string, bool) {
	i := 0
	for i < len(line) && line[i] == '(' {
		j, ok := skipParens(line, i)
		if !ok {
			return "", false
		}
		i = j
		for i < len(line) && line[i] == ' ' {
			i++
		}
	}
	if i < len(line) && line[i] == '#' {
		return line[i:], true
	}
	return "", false
}

func numbered(version string) bool { return len(version) > 1 && version[1] >= '0' && version[1] <= '9' }

// skipParens returns the index just past the parenthesis that closes the one at s[i].
func skipParens(s string, i int) (int, bool) {
	depth := 0
	for ; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i + 1, true
			}
		}
	}
	return 0, false
}
