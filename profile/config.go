package profile

import (
	"fmt"
	"io"
	"strings"
)

// ParseConfig reads a kernel .config. It keeps the options that are set, "CONFIG_X" -> the value as
// written ("y", "m", "\"text\"", "0x1000"); "# CONFIG_X is not set" lines and other comments are
// dropped, because an absent option and an unset one mean the same to every lookup.
func ParseConfig(r io.Reader) (map[string]string, error) {
	cfg := make(map[string]string)
	err := eachLine(r, "config", func(text string) error {
		text = strings.TrimSpace(text)
		if text[0] == '#' {
			return nil
		}
		name, value, ok := strings.Cut(text, "=")
		if !ok || !strings.HasPrefix(name, "CONFIG_") || len(name) == len("CONFIG_") {
			return fmt.Errorf("want CONFIG_NAME=value, got %q", text)
		}
		cfg[name] = value
		return nil
	})
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// ConfigValue returns CONFIG_name's value with the quotes of a string option removed, and whether
// the option is set at all. name may be given with or without the CONFIG_ prefix.
func (p *Profile) ConfigValue(name string) (string, bool) {
	if !strings.HasPrefix(name, "CONFIG_") {
		name = "CONFIG_" + name
	}
	v, ok := p.Config[name]
	if ok && len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = strings.ReplaceAll(v[1:len(v)-1], `\"`, `"`)
	}
	return v, ok
}
