package depmod

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// The files depmod writes, in kmod's order. The .bin ones are only written to the directory, never
// to standard output (-n).
var indexFiles = []struct {
	name   string
	binary bool
	write  func(x *Index, w *bytes.Buffer) error
}{
	{"modules.dep", false, (*Index).writeDep},
	{"modules.dep.bin", true, (*Index).writeDepBin},
	{"modules.alias", false, (*Index).writeAlias},
	{"modules.alias.bin", true, (*Index).writeAliasBin},
	{"modules.softdep", false, (*Index).writeSoftdep},
	{"modules.symbols", false, (*Index).writeSymbols},
	{"modules.symbols.bin", true, (*Index).writeSymbolsBin},
	{"modules.builtin.bin", true, (*Index).writeBuiltinBin},
	{"modules.builtin.alias.bin", true, (*Index).writeBuiltinAliasBin},
	{"modules.devname", false, (*Index).writeDevname},
}

// FileNames lists the files Write creates, in order.
func FileNames() []string {
	names := make([]string, len(indexFiles))
	for i, f := range indexFiles {
		names[i] = f.name
	}
	return names
}

// File returns the contents of one index file (a name from FileNames).
func (x *Index) File(name string) ([]byte, error) {
	for _, f := range indexFiles {
		if f.name == name {
			var b bytes.Buffer
			err := f.write(x, &b)
			return b.Bytes(), err
		}
	}
	return nil, fmt.Errorf("depmod: no index file %q", name)
}

// WriteTo prints the text files to w, one after the other, as depmod -n does.
func (x *Index) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for _, f := range indexFiles {
		if f.binary {
			continue
		}
		var b bytes.Buffer
		if err := f.write(x, &b); err != nil {
			return total, err
		}
		n, err := w.Write(b.Bytes())
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Write creates every index file in the modules directory as depmod_output does: each goes to a
// temporary name first and is renamed over the old file, so readers never see a partial index.
func (x *Index) Write() error {
	now := time.Now()
	for _, f := range indexFiles {
		var b bytes.Buffer
		err := f.write(x, &b)
		if err != nil {
			x.log.errorf("Could not write index '%s': %s\n", f.name, strerror(err))
			return fmt.Errorf("depmod: %s: %w", f.name, err)
		}
		tmp := fmt.Sprintf("%s/%s.%d.%d.%d", x.Dir, f.name, os.Getpid(), now.Nanosecond()/1000, now.Unix())
		fd, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			x.log.errorf("openat(%s, %s, %o, %o): %s\n", x.Dir, tmp[len(x.Dir)+1:], os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644, strerror(err))
			continue
		}
		_, werr := fd.Write(b.Bytes())
		if cerr := fd.Close(); werr == nil {
			werr = cerr
		}
		if err := os.Rename(tmp, x.Dir+"/"+f.name); err != nil {
			x.log.critf("renameat(%s, %s, %s, %s): %s\n", x.Dir, tmp[len(x.Dir)+1:], x.Dir, f.name, strerror(err))
			return fmt.Errorf("depmod: %w", err)
		}
		if werr != nil {
			x.log.errorf("Could not create index '%s'. Output is truncated: %s\n", f.name, strerror(werr))
			return fmt.Errorf("depmod: %s: %w", f.name, werr)
		}
	}
	return nil
}

// depLine is a module's modules.dep line without its newline: "path: dep dep..." (computed once:
// modules.dep and modules.dep.bin both hold it).
func (x *Index) depLine(m *Module) string {
	if x.depLines == nil {
		x.depLines = make(map[*Module]string, len(x.Modules))
	}
	if line, ok := x.depLines[m]; ok {
		return line
	}
	line := formatDepLine(m)
	x.depLines[m] = line
	return line
}

func formatDepLine(m *Module) string {
	var b strings.Builder
	b.WriteString(m.IndexPath())
	b.WriteByte(':')
	for _, d := range m.AllDependencies() {
		b.WriteByte(' ')
		b.WriteString(d.IndexPath())
	}
	return b.String()
}

func (x *Index) writeDep(w *bytes.Buffer) error {
	for _, m := range x.Modules {
		w.WriteString(x.depLine(m))
		w.WriteByte('\n')
	}
	return nil
}

func (x *Index) writeDepBin(w *bytes.Buffer) error {
	t := newTrie()
	for _, m := range x.Modules {
		line := x.depLine(m)
		dup, err := t.insert(m.Name, line, uint32(m.idx))
		if err != nil {
			return err
		}
		if dup && x.opts.WarnDups {
			x.log.warnf("duplicate module deps:\n%s\n", line)
		}
	}
	w.Write(t.bytes())
	return nil
}

// infoValues lists the values of one .modinfo key, in file order.
func infoValues(m *Module, key string) []string {
	var vs []string
	for _, e := range m.Info {
		if e.Key == key {
			vs = append(vs, e.Value)
		}
	}
	return vs
}

func (x *Index) writeAlias(w *bytes.Buffer) error {
	w.WriteString("# Aliases extracted from modules themselves.\n")
	for _, m := range x.Modules {
		for _, a := range infoValues(m, "alias") {
			fmt.Fprintf(w, "alias %s %s\n", a, m.Name)
		}
	}
	return nil
}

// normalizeAlias is kmod's alias_normalize: '-' reads as '_' outside bracket expressions; an
// unbalanced bracket is an error.
func normalizeAlias(alias string) (string, bool) {
	b := []byte(alias)
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '-':
			b[i] = '_'
		case ']':
			return "", false
		case '[':
			for i < len(b) && b[i] != ']' {
				i++
			}
			if i == len(b) {
				return "", false
			}
		}
	}
	return string(b), true
}

func (x *Index) writeAliasBin(w *bytes.Buffer) error {
	t := newTrie()
	for _, m := range x.Modules {
		for _, a := range infoValues(m, "alias") {
			alias, ok := normalizeAlias(a)
			if !ok {
				x.log.warnf("Unmatched bracket in %s\n", a)
				continue
			}
			dup, err := t.insert(alias, m.Name, uint32(m.idx))
			if err != nil {
				return err
			}
			if dup && x.opts.WarnDups {
				x.log.warnf("duplicate module alias:\n%s %s\n", alias, m.Name)
			}
		}
	}
	w.Write(t.bytes())
	return nil
}

func (x *Index) writeSoftdep(w *bytes.Buffer) error {
	w.WriteString("# Soft dependencies extracted from modules themselves.\n")
	for _, m := range x.Modules {
		for _, s := range infoValues(m, "softdep") {
			fmt.Fprintf(w, "softdep %s %s\n", m.Name, s)
		}
	}
	return nil
}

// moduleSymbols lists the symbols modules export, in kmod's hash order (computed once: two files
// and the DB need it).
func (x *Index) moduleSymbols() []*symbol {
	if x.exported != nil {
		return x.exported
	}
	syms := make([]*symbol, 0, len(x.symbols))
	for _, s := range x.symbols {
		if s.owner != nil {
			syms = append(syms, s)
		}
	}
	sortHashOrder(syms, func(s *symbol) string { return s.name }, symbolBuckets)
	x.exported = syms
	return syms
}

func (x *Index) writeSymbols(w *bytes.Buffer) error {
	w.WriteString("# Aliases for symbols, used by symbol_request().\n")
	for _, s := range x.moduleSymbols() {
		fmt.Fprintf(w, "alias symbol:%s %s\n", s.name, s.owner.Name)
	}
	return nil
}

func (x *Index) writeSymbolsBin(w *bytes.Buffer) error {
	t := newTrie()
	for _, s := range x.moduleSymbols() {
		alias := "symbol:" + s.name
		dup, err := t.insert(alias, s.owner.Name, uint32(s.owner.idx))
		if err != nil {
			return err
		}
		if dup && x.opts.WarnDups {
			x.log.warnf("duplicate module syms:\n%s %s\n", alias, s.owner.Name)
		}
	}
	w.Write(t.bytes())
	return nil
}

// openInDir opens a file of the modules directory, warning as depmod's dfdopen when it cannot.
func (x *Index) openInDir(name string) *os.File {
	f, err := os.Open(x.Dir + "/" + name)
	if err != nil {
		x.log.warnf("could not open %s at %s: %s\n", name, x.Dir, strerror(err))
		return nil
	}
	return f
}

// writeBuiltinBin indexes modules.builtin by module name; without that file it writes nothing.
func (x *Index) writeBuiltinBin(w *bytes.Buffer) error {
	f := x.openInDir("modules.builtin")
	if f == nil {
		return nil
	}
	defer f.Close()
	t := newTrie()
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadString('\n')
		if line == "" && err != nil {
			break
		}
		if c := line[0]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			x.log.errorf("Invalid modules.builtin line: %s\n", line)
			continue
		}
		if name := ModuleName(line); name != "" {
			if _, err := t.insert(name, "", 0); err != nil {
				return err
			}
		}
	}
	w.Write(t.bytes())
	return nil
}

// writeBuiltinAliasBin indexes the alias= entries of modules.builtin.modinfo ("module.key=value",
// NUL separated); without that file it writes nothing.
func (x *Index) writeBuiltinAliasBin(w *bytes.Buffer) error {
	f := x.openInDir("modules.builtin.modinfo")
	if f == nil {
		return nil
	}
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return err
	}
	t := newTrie()
	for _, a := range builtinAliases(data) {
		alias, ok := normalizeAlias(a.pattern)
		if !ok {
			x.log.warnf("Unmatched bracket in %s\n", a.pattern)
			continue
		}
		if _, err := t.insert(alias, a.module, 0); err != nil {
			return err
		}
	}
	w.Write(t.bytes())
	return nil
}

// builtinAliases reads the alias= entries of modules.builtin.modinfo ("module.key=value", NUL
// separated) as depmod's output_builtin_alias_bin scans them: an entry cut short by a NUL or by the
// end of the data is skipped.
func builtinAliases(data []byte) []dbAlias {
	// upTo is flush_stream_to: the bytes before end, or "" when a NUL or the end of the data comes
	// first; either way what it read is consumed.
	upTo := func(end byte) string {
		i := 0
		for i < len(data) && data[i] != end && data[i] != 0 {
			i++
		}
		if i == len(data) {
			data = nil
			return ""
		}
		s, stop := data[:i], data[i]
		data = data[i+1:]
		if stop != end {
			return ""
		}
		return string(s)
	}
	var out []dbAlias
	for len(data) > 0 {
		module := upTo('.')
		if module == "" {
			continue
		}
		if upTo('=') != "alias" {
			upTo(0)
			continue
		}
		if value := upTo(0); value != "" {
			out = append(out, dbAlias{pattern: value, module: module})
		}
	}
	return out
}

// writeDevname lists modules that name a device node (alias devname:NAME) and its number (alias
// char-major-M-m or block-major-M-m).
func (x *Index) writeDevname(w *bytes.Buffer) error {
	header := false
	for _, m := range x.Modules {
		devname, typ := "", byte(0)
		var major, minor uint
		found := false
		for _, a := range infoValues(m, "alias") {
			var maj, mnr uint
			if name, ok := strings.CutPrefix(a, "devname:"); ok {
				devname, found = name, true
			} else if n, _ := fmt.Sscanf(a, "char-major-%d-%d", &maj, &mnr); n == 2 {
				typ, major, minor = 'c', maj, mnr
			} else if n, _ := fmt.Sscanf(a, "block-major-%d-%d", &maj, &mnr); n == 2 {
				typ, major, minor = 'b', maj, mnr
			}
			if typ != 0 && found {
				break
			}
		}
		if !found {
			continue
		}
		if typ == 0 {
			x.log.errorf("Module '%s' has devname (%s) but lacks major and minor information. Ignoring.\n", m.Name, devname)
			continue
		}
		if !header {
			w.WriteString("# Device nodes to trigger on-demand module loading.\n")
			header = true
		}
		fmt.Fprintf(w, "%s %s %c%d:%d\n", m.Name, devname, typ, major, minor)
	}
	return nil
}
