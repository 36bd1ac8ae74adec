package machine

// __module_get (kernel/module/main.c): takes a reference on a module the caller already knows to
// be live, typically its own THIS_MODULE, which pins it until the matching module_put; mtd, for
// one, pins itself while a user (mtdblock's translation layer) is registered. NULL is a built-in
// caller: nothing to count.
//
// The kernel increments even a module that is going away; the registry's Get refuses those, so
// kemu does not count a reference a module takes on itself from its own exit function.

func init() {
	register("__module_get", hModuleGetUnconditional)
}

func hModuleGetUnconditional(m *Machine, t *Trap) (uint64, error) {
	m.moduleGet(t.Arg(0))
	return 0, nil
}
