package oops

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ContextSuffix is appended to a log's file name to find its Context sidecar: kemu writes
// "session.log" and "session.log.kemu.json", and `kemu decode session.log` reads both.
const ContextSuffix = ".kemu.json"

// Context is what the machine that printed an oops knows about it and a log alone does not say: where
// each module was loaded and which file it came from. kemu's machine writes it as JSON next to the
// oopses it prints, so `kemu decode` symbolizes them with no flags. Every field is optional.
type Context struct {
	// Kernel is the release the machine emulated, e.g. "6.1.0-13-amd64".
	Kernel string `json:"kernel,omitempty"`
	// Vmlinux, SystemMap and Kallsyms are paths to the kernel's symbol sources, if the machine had them.
	Vmlinux   string `json:"vmlinux,omitempty"`
	SystemMap string `json:"system_map,omitempty"`
	Kallsyms  string `json:"kallsyms,omitempty"`
	// Modules are the modules loaded when the oops happened.
	Modules []ContextModule `json:"modules,omitempty"`
}

// ContextModule is one loaded module.
type ContextModule struct {
	Name string `json:"name"`
	// Path is the module file (.ko, compressed or not) the machine loaded. A relative path is taken
	// relative to the sidecar's directory; EmbeddedPrefix + file name is a module built into kemu.
	Path string `json:"path,omitempty"`
	// Base and Size are the core region, as /proc/modules prints them.
	Base uint64 `json:"base,omitempty"`
	Size uint64 `json:"size,omitempty"`
	// Sections maps each allocated section name to its load address, as /sys/module/<name>/sections/
	// shows them. With it every address in the module, init code included, resolves exactly.
	Sections map[string]uint64 `json:"sections,omitempty"`
}

// ReadContext reads a Context sidecar.
func ReadContext(path string) (*Context, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Context
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dir := filepath.Dir(path)
	for i := range c.Modules {
		if p := c.Modules[i].Path; p != "" && !filepath.IsAbs(p) && !strings.HasPrefix(p, EmbeddedPrefix) {
			c.Modules[i].Path = filepath.Join(dir, p)
		}
	}
	for _, p := range []*string{&c.Vmlinux, &c.SystemMap, &c.Kallsyms} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	return &c, nil
}

// WriteContext writes a Context sidecar; the machine calls it with the log's path + ContextSuffix.
func WriteContext(path string, c *Context) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
