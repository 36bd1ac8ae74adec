package depmod

import (
	"bytes"
	"os"
	"syscall"

	"kemu/modinfo"
)

// BuiltinInfo is a built-in module's modinfo as modules.builtin.modinfo records it (libkmod's
// kmod_builtin_get_modinfo): the first run of consecutive "MODULE.KEY=VALUE" strings for module,
// each split at its first '=' (a string without one is a key with an empty value). ENOENT when the
// directory has no modules.builtin.modinfo (an older kernel), ENOSYS when it does not list module.
func (db *DB) BuiltinInfo(module string) ([]modinfo.Entry, error) {
	data, err := os.ReadFile(db.Dir + "/modules.builtin.modinfo")
	if err != nil {
		return nil, err
	}
	prefix := []byte(module + ".")
	var out []modinfo.Entry
	found := false
	for _, s := range bytes.Split(data, []byte{0}) {
		if len(s) == 0 {
			continue
		}
		if !bytes.HasPrefix(s, prefix) {
			if found {
				break // the module's run has ended
			}
			continue
		}
		found = true
		key, value, _ := bytes.Cut(s[len(prefix):], []byte("="))
		out = append(out, modinfo.Entry{Key: string(key), Value: string(value)})
	}
	if !found {
		return nil, syscall.ENOSYS
	}
	return out, nil
}
