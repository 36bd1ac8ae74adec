package profile

// Vermagic composes the vermagic string of modules built for a kernel, as Linux 6.1's
// include/linux/vermagic.h does: the release, then a word for each of SMP, the preemption model,
// module unloading and modversions, each followed by a space. x86-64 adds no architecture word
// (MODULE_ARCH_VERMAGIC names a CPU family only on 32-bit x86). A kernel built with structure layout
// randomisation appends "RANDSTRUCT_" and the hash of its seed; that hash lives only in the build
// tree (include/generated/randstruct_hash.h), so the caller passes it, "" when unknown or unused.
func Vermagic(release string, config map[string]string, randstructHash string) string {
	set := func(name string) bool { v := config[name]; return v == "y" }
	v := release + " "
	if set("CONFIG_SMP") {
		v += "SMP "
	}
	switch {
	case set("CONFIG_PREEMPT_BUILD"):
		v += "preempt "
	case set("CONFIG_PREEMPT_RT"):
		v += "preempt_rt "
	}
	if set("CONFIG_MODULE_UNLOAD") {
		v += "mod_unload "
	}
	if set("CONFIG_MODVERSIONS") {
		v += "modversions "
	}
	if set("CONFIG_RANDSTRUCT") && randstructHash != "" {
		v += "RANDSTRUCT_" + randstructHash
	}
	return v
}
