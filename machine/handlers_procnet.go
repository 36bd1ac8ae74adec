package machine

import (
	"kemu/mmu"
)

// /proc/net: the directory of init_net's proc files (fs/proc/proc_net.c). Network modules create
// their entries under net->proc_net through proc_net_mkdir (inline, calling _proc_mkdir) and the
// proc_create_net_* functions. The machine boots without the directory, so the first of these
// calls makes it, with its "stat" subdirectory, and points init_net.proc_net and proc_net_stat at
// them; callers that read init_net.proc_net later
// (remove_proc_entry at exit, for one) find it there. A NULL parent in these calls can only have
// come from those unset fields (every caller passes a namespace's directory), so it means /proc/net;
// the one call this gets wrong is a first one made under proc_net_stat, which lands in /proc/net.
// Making the directories at boot would remove that: it is for the machine's boot steps.
//
// Not done: the seq_file of a proc_create_net_data entry does not get its seq_net_private's
// namespace set, so reading one reaches module code with a NULL net.

func init() {
	register("_proc_mkdir", hProcNet("proc_mkdir_data", entryDir)) // (name, mode, parent, data, force_lookup)
	register("proc_create_net_data", hProcNet("", procSeq))        // (name, mode, parent, ops, state_size, data)
	register("proc_create_net_single", hProcNet("", procSingle))   // (name, mode, parent, show, data)
}

// hProcNet creates a /proc entry as procCreate does for the function named as, whose arguments
// are laid out the same way, with a NULL parent meaning /proc/net.
func hProcNet(as string, kind entryKind) Handler {
	create := procCreate(kind)
	return func(m *Machine, t *Trap) (uint64, error) {
		call := *t
		if as != "" {
			call.Name = as
		}
		if call.regs[2] == 0 {
			dir, err := m.procNetDir()
			if err != nil || dir == 0 {
				return 0, err
			}
			call.regs[2] = dir
		}
		return create(m, &call)
	}
}

// procNetDir is init_net.proc_net, made on first use; 0 when memory runs out.
func (m *Machine) procNetDir() (uint64, error) {
	net, ok := m.prof.Lookup("init_net")
	if !ok {
		return 0, nil
	}
	tree := &m.files().proc
	if dir, err := m.readField("net", "proc_net", net.Addr, 8); err == nil && dir != 0 && tree.byAddr(dir) != nil {
		return dir, nil
	}
	dir := m.newProcDir(tree, "net", 0)
	if dir == 0 {
		return 0, nil
	}
	m.setField("net", "proc_net", net.Addr, 8, dir)
	if stat := m.newProcDir(tree, "stat", dir); stat != 0 {
		m.setField("net", "proc_net_stat", net.Addr, 8, stat)
	}
	return dir, nil
}

// newProcDir is a /proc directory the kernel itself makes (proc_net_ns_init's "net" and
// "net/stat"); 0 when memory runs out.
func (m *Machine) newProcDir(tree *fsTree, name string, parent uint64) uint64 {
	size, ok := m.structSize("proc_dir_entry")
	if !ok {
		size = 512
	}
	pde := m.kmalloc(size, mmu.Caller{Label: "proc_net_ns_init"}, gfpZero)
	if pde != 0 {
		tree.add(&fsEntry{addr: pde, name: name, parent: parent, kind: entryDir})
	}
	return pde
}
