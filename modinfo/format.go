package modinfo

import (
	"fmt"
	"io"
	"strings"
)

// Options select what Format prints, as modinfo's -F and -0 do.
type Options struct {
	Filtered  bool   // print only Field's values, without keys (-F, even -F "")
	Field     string // the key Filtered selects
	Separator byte   // what ends each printed item: '\n', or 0 for -0
}

// Param is one module parameter, merged from its parm (description) and parmtype strings.
type Param struct {
	Name        string  `json:"name"`
	Description *string `json:"description,omitempty"` // nil when the module has no parm string for it
	Type        *string `json:"type,omitempty"`        // nil when the module has no parmtype string for it
}

// Params merges the parm and parmtype entries by parameter name the way tools/modinfo.c does,
// and returns them in its print order: kmod pushes each newly seen name on the front of a
// list, so the parameter named first comes out last; a repeated string overrides the earlier
// one. A value without ':' is reported through warn (kmod prints it as an error and goes on).
func Params(entries []Entry, warn func(msg string)) []Param {
	var params []*Param // in first-seen order
	byName := map[string]*Param{}
	for _, e := range entries {
		if e.Key != "parm" && e.Key != "parmtype" {
			continue
		}
		name, rest, ok := strings.Cut(e.Value, ":")
		if !ok {
			warn(fmt.Sprintf("Found invalid \"%s=%s\": missing ':'", e.Key, e.Value))
			continue
		}
		p := byName[name]
		if p == nil {
			p = &Param{Name: name}
			byName[name] = p
			params = append(params, p)
		}
		if e.Key == "parm" {
			p.Description = &rest
		} else {
			p.Type = &rest
		}
	}
	out := make([]Param, len(params))
	for i, p := range params {
		out[len(params)-1-i] = *p
	}
	return out
}

// Format prints one module as kmod's modinfo_do does; filename is the absolute path kmod shows.
//
// Without a field: "filename:" and every key padded to column 16 in file order ("key=value" with
// -0), parameters last as "parm:" lines. With a field: each matching value alone; "filename"
// prints the path and "parm" the merged parameters.
func Format(w io.Writer, filename string, entries []Entry, opt Options, warn func(msg string)) {
	if formatHeader(w, filename, opt) {
		formatBody(w, entries, opt, warn)
	}
}

// formatHeader prints what kmod prints before it reads the module, and reports whether the
// module's entries are needed at all (not for -F filename). Main relies on the split: when the
// module cannot be read, kmod has printed the header already.
func formatHeader(w io.Writer, filename string, opt Options) (needEntries bool) {
	sep := []byte{opt.Separator}
	switch {
	case !opt.Filtered:
		fmt.Fprintf(w, "%-16s%s%s", "filename:", filename, sep)
	case opt.Field == "filename":
		fmt.Fprintf(w, "%s%s", filename, sep)
		return false
	}
	return true
}

// formatBody prints the entries after the header.
func formatBody(w io.Writer, entries []Entry, opt Options, warn func(msg string)) {
	sep := []byte{opt.Separator}
	if opt.Filtered && opt.Field == "parm" {
		for _, p := range Params(entries, warn) {
			fmt.Fprintf(w, "%s%s", paramText(p, "%s: (%s)"), sep)
		}
		return
	}
	for _, e := range entries {
		switch {
		case opt.Filtered:
			if e.Key == opt.Field {
				fmt.Fprintf(w, "%s%s", e.Value, sep)
			}
		case e.Key == "parm" || e.Key == "parmtype":
			// merged and printed after everything else
		case opt.Separator == 0:
			fmt.Fprintf(w, "%s=%s%s", e.Key, e.Value, sep)
		default:
			fmt.Fprintf(w, "%s:%s%s%s", e.Key, strings.Repeat(" ", keyPad(e.Key)), e.Value, sep)
		}
	}
	if opt.Filtered {
		return
	}
	for _, p := range Params(entries, warn) {
		fmt.Fprintf(w, "%-16s%s%s", "parm:", paramText(p, "%s:%s"), sep)
	}
}

// keyPad is the run of spaces after "key:". kmod asks printf for a field 15-len(key) wide, and
// printf reads a negative width as left-justified with its magnitude, so keys longer than 15
// are followed by len(key)-15 spaces rather than none.
func keyPad(key string) int {
	if n := 15 - len(key); n > 0 {
		return n
	}
	return len(key) - 15
}

// paramText renders a parameter for a parm line; typeOnly is the layout for a parameter that has a
// type but no description, which kmod spells differently with and without -F parm.
func paramText(p Param, typeOnly string) string {
	switch {
	case p.Description == nil:
		return fmt.Sprintf(typeOnly, p.Name, deref(p.Type))
	case p.Type != nil:
		return fmt.Sprintf("%s:%s (%s)", p.Name, *p.Description, *p.Type)
	default:
		return fmt.Sprintf("%s:%s", p.Name, *p.Description)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
