package depmod_test

import (
	"fmt"
	"os"
	"path/filepath"

	"kemu/depmod"
)

// Index a tree holding three modules of the fixture chain and ask for modprobe's load list.
func Example() {
	base, _ := os.MkdirTemp("", "depmod-example")
	defer os.RemoveAll(base)
	dir := filepath.Join(base, "lib/modules/6.1.0-example/extra")
	_ = os.MkdirAll(dir, 0o755)
	for _, name := range []string{"hot7", "hot8", "hot9"} {
		data, _ := os.ReadFile(filepath.Join("../testdata/modules", name+".ko"))
		_ = os.WriteFile(filepath.Join(dir, name+".ko"), data, 0o644)
	}

	x, err := depmod.Build(depmod.Options{BaseDir: base, Version: "6.1.0-example", ConfigPaths: []string{}})
	if err != nil {
		fmt.Println(err)
		return
	}
	dep, _ := x.File("modules.dep")
	fmt.Print(string(dep))

	loads, _ := x.DB().Resolve("hot7")
	for _, l := range loads {
		fmt.Println("insmod", filepath.Base(l.Path))
	}
	// Output:
	// extra/hot7.ko: extra/hot8.ko extra/hot9.ko
	// extra/hot8.ko: extra/hot9.ko
	// extra/hot9.ko:
	// insmod hot9.ko
	// insmod hot8.ko
	// insmod hot7.ko
}
