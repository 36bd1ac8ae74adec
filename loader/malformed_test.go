package loader

import (
	"bytes"
	"errors"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// elfEdit mutates a copy of a fixture module for the malformed-input table.
type elfEdit struct {
	t testing.TB
	b []byte
	f *elfFile
}

func editFixture(t testing.TB, name string) *elfEdit {
	b := fixture(t, name)
	f, err := parseELF(b, nil)
	require.NoError(t, err)
	return &elfEdit{t: t, b: b, f: f}
}

// Header field offsets in Elf64_Ehdr and Elf64_Shdr.
const (
	ehType, ehMachine, ehShoff, ehShentsize, ehShnum, ehShstrndx = 16, 18, 40, 58, 60, 62
	shName, shType, shFlags, shOffset, shSize, shLink, shInfo    = 0, 4, 8, 24, 32, 40, 44
)

func (e *elfEdit) sec(name string) int {
	for i, s := range e.f.secs {
		if s.Name == name {
			return i
		}
	}
	e.t.Fatalf("fixture has no section %s", name)
	return 0
}

func (e *elfEdit) shdr(i int) []byte {
	off := le.Uint64(e.b[ehShoff:]) + uint64(i)*shdrSize
	return e.b[off : off+shdrSize]
}

func (e *elfEdit) put16(b []byte, v uint64) { le.PutUint16(b, uint16(v)) }
func (e *elfEdit) put32(b []byte, v uint64) { le.PutUint32(b, uint32(v)) }
func (e *elfEdit) put64(b []byte, v uint64) { le.PutUint64(b, v) }

// data returns the file bytes of section i.
func (e *elfEdit) data(i int) []byte {
	return e.b[e.f.secs[i].Offset : e.f.secs[i].Offset+e.f.secs[i].Size]
}

// rela returns relocation n of the RELA section called name.
func (e *elfEdit) rela(name string, n int) []byte {
	return e.data(e.sec(name))[n*relaSize : (n+1)*relaSize]
}

// symbol returns the symtab entry of the symbol called name.
func (e *elfEdit) symbol(name string) []byte {
	si := e.sec(".symtab")
	syms, _, err := e.f.symbols(si, nil)
	require.NoError(e.t, err)
	for i, s := range syms {
		if s.Name == name {
			return e.data(si)[i*symSize : (i+1)*symSize]
		}
	}
	e.t.Fatalf("no symbol %s", name)
	return nil
}

// replace rewrites the first occurrence of old (same length) inside section name.
func (e *elfEdit) replace(sec, old, new string) {
	require.Equal(e.t, len(old), len(new))
	d := e.data(e.sec(sec))
	i := bytes.Index(d, []byte(old))
	require.GreaterOrEqual(e.t, i, 0, "%q not in %s", old, sec)
	copy(d[i:], new)
}

func TestMalformed(t *testing.T) {
	cases := []struct {
		name   string
		edit   func(e *elfEdit) []byte // returns the file to load
		opts   LoadOptions
		errno  syscall.Errno
		expect string // substring of the error text
	}{
		{"empty file", func(e *elfEdit) []byte { return nil }, LoadOptions{}, syscall.ENOEXEC, "Invalid ELF header len 0"},
		{"truncated header", func(e *elfEdit) []byte { return e.b[:40] }, LoadOptions{}, syscall.ENOEXEC, "Invalid ELF header len 40"},
		{"bad magic", func(e *elfEdit) []byte { e.b[1] = 'X'; return e.b }, LoadOptions{}, syscall.ENOEXEC, "Invalid ELF header magic"},
		{"not relocatable", func(e *elfEdit) []byte { e.put16(e.b[ehType:], 2); return e.b }, LoadOptions{}, syscall.ENOEXEC, "Invalid ELF header type: 2 != 1"},
		{"wrong machine", func(e *elfEdit) []byte { e.put16(e.b[ehMachine:], 3); return e.b }, LoadOptions{}, syscall.ENOEXEC, "Invalid architecture in ELF header: 3"},
		{"section header entsize", func(e *elfEdit) []byte { e.put16(e.b[ehShentsize:], 40); return e.b }, LoadOptions{}, syscall.ENOEXEC, "Invalid ELF section header size"},
		{"section headers past the end", func(e *elfEdit) []byte { e.put64(e.b[ehShoff:], uint64(len(e.b))); return e.b }, LoadOptions{}, syscall.ENOEXEC, "Invalid ELF section header overflow"},
		{"too many section headers", func(e *elfEdit) []byte { e.put16(e.b[ehShnum:], 0xffff); return e.b }, LoadOptions{}, syscall.ENOEXEC, "Invalid ELF section header overflow"},
		{"truncated section headers", func(e *elfEdit) []byte { return e.b[:len(e.b)-10] }, LoadOptions{}, syscall.ENOEXEC, "Invalid ELF section header overflow"},
		{"shstrndx zero", func(e *elfEdit) []byte { e.put16(e.b[ehShstrndx:], 0); return e.b }, LoadOptions{}, syscall.ENOEXEC, "Invalid ELF section name index: 0"},
		{"shstrndx out of range", func(e *elfEdit) []byte { e.put16(e.b[ehShstrndx:], 500); return e.b }, LoadOptions{}, syscall.ENOEXEC, "e_shstrndx (500) >= e_shnum"},
		{"shstrtab past the end", func(e *elfEdit) []byte {
			e.put64(e.shdr(e.f.shstrndx)[shOffset:], uint64(len(e.b)))
			return e.b
		}, LoadOptions{}, syscall.ENOEXEC, "Invalid ELF section hdr(type 3)"},
		{"empty shstrtab", func(e *elfEdit) []byte { e.put64(e.shdr(e.f.shstrndx)[shSize:], 0); return e.b }, LoadOptions{}, syscall.ENOEXEC, "empty section name table"},
		{"shstrtab not terminated", func(e *elfEdit) []byte {
			d := e.data(e.f.shstrndx)
			d[len(d)-1] = 'x'
			return e.b
		}, LoadOptions{}, syscall.ENOEXEC, "section name table isn't null terminated"},
		{"section 0 not NULL", func(e *elfEdit) []byte { e.put32(e.shdr(0)[shType:], 1); return e.b }, LoadOptions{}, syscall.ENOEXEC, "section 0 type(1)!=SH_NULL"},
		{"section offset past the end", func(e *elfEdit) []byte {
			e.put64(e.shdr(e.sec(".init.text"))[shOffset:], uint64(len(e.b)))
			return e.b
		}, LoadOptions{}, syscall.ENOEXEC, "Invalid ELF section in module (section 4 type 1)"},
		{"section size wraps around", func(e *elfEdit) []byte {
			e.put64(e.shdr(e.sec(".init.text"))[shSize:], ^uint64(0)-0x10)
			return e.b
		}, LoadOptions{}, syscall.ENOEXEC, "Invalid ELF section in module (section 4 type 1)"},
		{"symtab without string table", func(e *elfEdit) []byte { e.put32(e.shdr(e.sec(".symtab"))[shLink:], 0); return e.b }, LoadOptions{}, syscall.ENOEXEC, "Invalid ELF sh_link!=SHN_UNDEF(0)"},
		{"symtab link out of range", func(e *elfEdit) []byte { e.put32(e.shdr(e.sec(".symtab"))[shLink:], 9999); return e.b }, LoadOptions{}, syscall.ENOEXEC, "sh_link(9999) >= hdr->e_shnum"},
		{"ALLOC section name outside shstrtab", func(e *elfEdit) []byte {
			e.put32(e.shdr(e.sec(".init.text"))[shName:], 0xfffff)
			return e.b
		}, LoadOptions{}, syscall.ENOEXEC, "Invalid ELF section name in module (section 4 type 1)"},
		{"no symbol table", func(e *elfEdit) []byte { e.put32(e.shdr(e.sec(".symtab"))[shType:], shtProgbits); return e.b }, LoadOptions{}, syscall.ENOEXEC, "hello: module has no symbols (stripped?)"},
		{"no struct module", func(e *elfEdit) []byte {
			h := e.shdr(e.sec(".gnu.linkonce.this_module"))
			e.put64(h[shFlags:], le.Uint64(h[shFlags:])&^shfAlloc)
			return e.b
		}, LoadOptions{}, syscall.ENOEXEC, "hello: No module found in object"},
		{"struct module too small", func(e *elfEdit) []byte { e.put64(e.shdr(e.sec(".gnu.linkonce.this_module"))[shSize:], 16); return e.b }, LoadOptions{}, syscall.ENOEXEC, "too small for struct module"},
		{"symbol name outside strtab", func(e *elfEdit) []byte { e.put32(e.symbol("hello_init")[0:], 0xffffff); return e.b }, LoadOptions{}, syscall.ENOEXEC, "outside the string table"},
		{"blacklisted", func(e *elfEdit) []byte { return e.b }, LoadOptions{}, syscall.EPERM, "Module hello is blacklisted"},
		{"bad module_layout CRC", func(e *elfEdit) []byte {
			d := e.data(e.sec("__versions"))
			for i := 0; i+versionSize <= len(d); i += versionSize {
				if cstring(d[i+8:i+versionSize], 0) == "module_layout" {
					e.put64(d[i:], le.Uint64(d[i:])^1)
				}
			}
			return e.b
		}, LoadOptions{}, syscall.ENOEXEC, "hello: disagrees about version of symbol module_layout"},
		{"bad import CRC", func(e *elfEdit) []byte {
			d := e.data(e.sec("__versions"))
			for i := 0; i+versionSize <= len(d); i += versionSize {
				if cstring(d[i+8:i+versionSize], 0) == "_printk" {
					e.put64(d[i:], le.Uint64(d[i:])^1)
				}
			}
			return e.b
		}, LoadOptions{}, syscall.EINVAL, "hello: Unknown symbol _printk (err -22)"},
		{"bad vermagic", func(e *elfEdit) []byte { e.replace(".modinfo", "SMP", "XMP"); return e.b }, LoadOptions{}, syscall.ENOEXEC, "hello: version magic '6.1.0-56-amd64 XMP"},
		{"writable text", func(e *elfEdit) []byte {
			h := e.shdr(e.sec(".init.text"))
			e.put64(h[shFlags:], le.Uint64(h[shFlags:])|shfWrite)
			return e.b
		}, LoadOptions{}, syscall.ENOEXEC, "both writable and executable"},
		{"common symbol", func(e *elfEdit) []byte { e.put16(e.symbol("verbose")[6:], shnCommon); return e.b }, LoadOptions{}, syscall.ENOEXEC, "hello: please compile with -fno-common"},
		{"symbol section index out of range", func(e *elfEdit) []byte { e.put16(e.symbol("verbose")[6:], 0xfe00); return e.b }, LoadOptions{}, syscall.ENOEXEC, "section index 65024"},
		{"unknown symbol", func(e *elfEdit) []byte { e.replace(".strtab", "_printk\x00", "_prxntk\x00"); return e.b }, LoadOptions{}, syscall.ENOENT, "hello: Unknown symbol _prxntk (err -2)"},
		{"unknown relocation type", func(e *elfEdit) []byte { e.put32(e.rela(".rela.init.text", 0)[8:], 40); return e.b }, LoadOptions{}, syscall.ENOEXEC, "hello: Unknown rela relocation: 40"},
		{"relocation offset past its section", func(e *elfEdit) []byte { e.put64(e.rela(".rela.init.text", 0)[0:], 0xb0); return e.b }, LoadOptions{}, syscall.ENOEXEC, ".init.text+0xb0 R_X86_64_PLT32: offset past the end"},
		{"relocation symbol index out of range", func(e *elfEdit) []byte { e.put32(e.rela(".rela.init.text", 0)[12:], 0xffffff); return e.b }, LoadOptions{}, syscall.ENOEXEC, "symbol index 16777215 out of range"},
		{"non-zero relocation target", func(e *elfEdit) []byte {
			off := le.Uint64(e.rela(".rela.init.text", 0))
			e.data(e.sec(".init.text"))[off] = 0xcc
			return e.b
		}, LoadOptions{}, syscall.ENOEXEC, "Skipping invalid relocation target, existing value is nonzero for type 4"},
		{"overflowing 32S", func(e *elfEdit) []byte {
			r := e.rela(".rela.gnu.linkonce.this_module", 0)
			e.put32(r[8:], rX86_64_32S)
			e.put64(r[16:], 1<<32)
			return e.b
		}, LoadOptions{}, syscall.ENOEXEC, "`hello' likely not compiled with -mcmodel=kernel"},
		{"overflowing PLT32", func(e *elfEdit) []byte { e.put64(e.rela(".rela.init.text", 0)[16:], 1<<40); return e.b }, LoadOptions{}, syscall.ENOEXEC, "does not fit in 32 bits"},
		{"REL relocations", func(e *elfEdit) []byte { e.put32(e.shdr(e.sec(".rela.init.text"))[shType:], shtRel); return e.b }, LoadOptions{}, syscall.ENOEXEC, "module hello: REL relocation unsupported"},
		{"bad finit_module flags", func(e *elfEdit) []byte { return e.b }, LoadOptions{Flags: 8}, syscall.EINVAL, "finit_module flags 0x8"},
		{"corrupt xz stream", func(e *elfEdit) []byte { return append([]byte{0xfd, '7', 'z', 'X', 'Z', 0}, e.b[:100]...) }, LoadOptions{}, syscall.ENOEXEC, "xz"},
		{"corrupt gzip stream", func(e *elfEdit) []byte { return append([]byte{0x1f, 0x8b, 8, 0}, e.b[:100]...) }, LoadOptions{}, syscall.ENOEXEC, "gzip"},
		{"huge .bss", func(e *elfEdit) []byte { e.put64(e.shdr(e.sec(".bss"))[shSize:], 1<<40); return e.b }, LoadOptions{}, syscall.ENOMEM, "section .bss (1099511627776 bytes, align"},
		{"huge alignment", func(e *elfEdit) []byte { e.put64(e.shdr(e.sec(".data"))[48:], 1<<63); return e.b }, LoadOptions{}, syscall.ENOMEM, "section .data"},
		{"bad parameter value", func(e *elfEdit) []byte { return e.b }, LoadOptions{Params: "count=12x"}, syscall.EINVAL, "hello: `12x' invalid for parameter `count'"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var log []string
			k, _ := testKernel(t, &log)
			k.cfg.Blacklist = nil
			if c.name == "blacklisted" {
				k.cfg.Blacklist = []string{"hello"}
			}
			if c.name == "bad parameter value" {
				if _, err := k.paramLayoutOf(); err != nil {
					t.Skipf("profile without BTF: %v", err)
				}
			}
			file := c.edit(editFixture(t, "hello"))
			m, err := k.Load(file, c.opts)
			require.Error(t, err, "log %q", log)
			assert.Nil(t, m)
			assert.Equal(t, c.errno, Errno(err), "%v", err)
			assert.Contains(t, err.Error(), c.expect)
			assert.Empty(t, k.Modules(), "a failed load leaves nothing registered")
			var le *Error
			if errors.As(err, &le) && le.Msg != "" {
				assert.Equal(t, 1, count(log, le.Msg), "the kernel's line is logged once: %q", log)
			}
		})
	}
}
