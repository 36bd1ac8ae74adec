package machine

import "syscall"

// IP fragment reassembly's bookkeeping (net/ipv4/inet_fragment.c), which the defragmentation
// modules (nf_defrag_ipv6, and through it all of conntrack) set up at init and tear down at exit.
// An inet_frags is a protocol's reassembly type: a slab cache for its queues, a reference count
// and a completion. A fqdir is one namespace's directory of queues, holding a reference on its
// inet_frags.
//
// The kernel frees a fqdir from a workqueue and the last fqdir's reference wakes
// inet_frags_fini, which waits for that. kemu does fqdir_exit's work at once: with no packet ever
// queued there is nothing to defer for, and inet_frags_fini then finds the count at one unless a
// fqdir was never exited, in which case it waits forever, as the kernel would (a hung task).
//
// The fqdir's rhashtable is kernel-internal (only inet_frag_find and the kernel's own expiry code
// touch it, none of which module code inlines), so it is left zeroed: kemu emulates no reassembly.

func init() {
	register("inet_frags_init", hInetFragsInit)
	register("inet_frags_fini", hInetFragsFini)
	register("fqdir_init", hFqdirInit)
	register("fqdir_exit", hFqdirExit)
}

// inet_frags_init(f): f->frags_cachep = kmem_cache_create(f->frags_cache_name, f->qsize, 0, 0,
// NULL); ENOMEM without it. The count starts at one, the completion not done.
func hInetFragsInit(m *Machine, t *Trap) (uint64, error) {
	f := t.Arg(0)
	name, err := m.readField("inet_frags", "frags_cache_name", f, 8)
	if err != nil {
		return 0, err
	}
	qsize, err := m.readField("inet_frags", "qsize", f, 4)
	if err != nil {
		return 0, err
	}
	create := *t
	create.Name = "kmem_cache_create"
	create.regs = [6]uint64{name, qsize, 0, 0, 0}
	cache, err := hKmemCacheCreate(m, &create)
	if err != nil || cache == 0 {
		return negErrno(syscall.ENOMEM), err
	}
	m.setField("inet_frags", "frags_cachep", f, 8, cache)
	m.setField("inet_frags", "refcnt", f, 4, 1)
	off, ok := m.fieldOffset("inet_frags", "completion")
	if !ok {
		return 0, nil
	}
	return 0, m.initCompletion(f + off)
}

// inet_frags_fini(f): drops the initial reference, waits until every fqdir has let go, then
// destroys the cache.
func hInetFragsFini(m *Machine, t *Trap) (uint64, error) {
	f := t.Arg(0)
	off, ok := m.fieldOffset("inet_frags", "completion")
	if !ok {
		return 0, nil
	}
	if err := m.putInetFrags(f); err != nil {
		return 0, err
	}
	wait := *t
	wait.Name = "wait_for_completion"
	wait.regs = [6]uint64{f + off}
	if _, err := hWaitForCompletion(m, &wait); err != nil {
		return 0, err
	}
	cache, err := m.readField("inet_frags", "frags_cachep", f, 8)
	if err != nil {
		return 0, err
	}
	destroy := *t
	destroy.Name = "kmem_cache_destroy"
	destroy.regs = [6]uint64{cache}
	if _, err := hKmemCacheDestroy(m, &destroy); err != nil {
		return 0, err
	}
	m.setField("inet_frags", "frags_cachep", f, 8, 0)
	return 0, nil
}

// putInetFrags drops a reference to f; the last one completes f->completion.
func (m *Machine) putInetFrags(f uint64) error {
	ref, err := m.readField("inet_frags", "refcnt", f, 4)
	if err != nil {
		return err
	}
	if uint32(ref) == 0 {
		m.logf(levelWarning, "refcount_t: underflow; use-after-free.")
		return nil
	}
	m.setField("inet_frags", "refcnt", f, 4, uint64(uint32(ref)-1))
	if uint32(ref) > 1 {
		return nil
	}
	off, _ := m.fieldOffset("inet_frags", "completion")
	return m.complete(f+off, false)
}

// fqdir_init(fqdirp, f, net): a zeroed fqdir for net, holding a reference on f; ENOMEM.
func hFqdirInit(m *Machine, t *Trap) (uint64, error) {
	fqdirp, f, net := t.Arg(0), t.Arg(1), t.Arg(2)
	size, ok := m.structSize("fqdir")
	if !ok {
		return negErrno(syscall.ENOMEM), nil
	}
	fq := m.kmalloc(size, t.caller(), gfpZero)
	if fq == 0 {
		return negErrno(syscall.ENOMEM), nil
	}
	m.setField("fqdir", "f", fq, 8, f)
	m.setField("fqdir", "net", fq, 8, net)
	ref, err := m.readField("inet_frags", "refcnt", f, 4)
	if err != nil {
		return 0, err
	}
	m.setField("inet_frags", "refcnt", f, 4, uint64(uint32(ref)+1))
	return 0, m.WriteU64(fqdirp, fq)
}

// fqdir_exit(fqdir): the destroy and free work, done at once: the reference on the inet_frags
// goes, then the fqdir.
func hFqdirExit(m *Machine, t *Trap) (uint64, error) {
	fq := t.Arg(0)
	f, err := m.readField("fqdir", "f", fq, 8)
	if err != nil {
		return 0, err
	}
	if err := m.putInetFrags(f); err != nil {
		return 0, err
	}
	return 0, m.kfree(fq, t.caller())
}
