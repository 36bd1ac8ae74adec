package main

import "testing"

// kemu check with the global force flags loads every module as insmod with them would: the vermagic
// or modversions checks are skipped, the kernel says so per module and the module is tainted F.
func TestCheckForceFlags(t *testing.T) {
	bad := withBadVermagic(t)
	runKemuCases(t, []kemuCase{
		{"bad vermagic", []string{"check", bad}, false, []string{
			bad + ": hello: version magic '6.1.0-56-amd64 SMP voluntr mod_unload modversions ' should be",
			"checked 1 modules: 0 ok, 1 failed"}, nil},
		{"bad vermagic, --force-vermagic", []string{"--force-vermagic", "check", bad}, true, []string{
			bad + ": OK\n  hello: bad vermagic: kernel tainted.\n",
			"checked 1 modules: 1 ok, 0 failed"}, nil},
		{"bad vermagic, --force-modversion only", []string{"--force-modversion", "check", bad}, false, []string{
			bad + ": hello: version magic", "  hello: module_layout: kernel tainted.\n"}, nil},
		{"--force-modversion", []string{"--force-modversion", "check", "../../testdata/modules/hello.ko"}, true, []string{
			"hello.ko: OK\n  hello: module_layout: kernel tainted.\n"}, nil},
		{"--force-modversion --json", []string{"--json", "--force-modversion", "check", "../../testdata/modules/hello.ko"}, true, []string{
			`"taints": "FOE"`, `"hello: module_layout: kernel tainted."`}, nil},
		{"no flags --json", []string{"--json", "check", "../../testdata/modules/hello.ko"}, true, []string{
			`"taints": "OE"`}, nil},
	})
}
