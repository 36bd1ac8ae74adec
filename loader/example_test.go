package loader_test

import (
	"fmt"
	"os"

	"kemu/loader"
	"kemu/profile"
)

// The life of a module as a machine drives it: load (everything up to init), map the regions, run
// init, report the outcome; later delete_module, run exit, remove.
func Example() {
	prof, err := profile.Default()
	if err != nil {
		fmt.Println(err)
		return
	}
	k, _ := loader.NewKernel(loader.Config{Profile: prof, Printk: func(level int, line string) {}})
	image, _ := os.ReadFile("../testdata/modules/hello.ko")

	m, err := k.Load(image, loader.LoadOptions{Params: "count=2"})
	if err != nil {
		fmt.Println("insmod: ERROR: could not insert module hello.ko:", loader.InsmodReason(loader.Errno(err)))
		return
	}
	// The machine copies m.Core.Bytes / m.Init.Bytes to m.Core.Addr / m.Init.Addr, maps each Range with
	// its Perm, and calls m.InitFunc. Here init "returns" 0:
	if err := k.MarkLive(m, 0); err != nil {
		fmt.Println(err)
		return
	}
	// Now the init region is freed and ro_after_init ranges take their AfterInit permission.
	fmt.Println(m.Name, m.State, m.Taints, m.InitFreed)

	gone, err := k.Delete("hello", false)
	if err != nil {
		fmt.Println(err)
		return
	}
	// The machine calls gone.ExitFunc here, then:
	k.Remove(gone)
	fmt.Println(len(k.Modules()))
	// Output:
	// hello Live OE true
	// 0
}
