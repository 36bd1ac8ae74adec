package machine

// The list of network namespaces (net/core/net_namespace.c): net_namespace_list holds every
// struct net through its list member, and for_each_net walks it inline (nf_conntrack's cleanup at
// exit, for one). The kernel image's data starts zeroed, so before a module may walk it the list
// is made to hold init_net, the machine's one namespace, as boot leaves it in the kernel.

// linkNetNamespaceList puts init_net on net_namespace_list if the list is still zero (never
// initialised); a list already set is left alone.
func (m *Machine) linkNetNamespaceList(initNet uint64) error {
	list, ok := m.prof.Lookup("net_namespace_list")
	if !ok {
		return nil
	}
	off, ok := m.fieldOffset("net", "list")
	if !ok {
		return nil
	}
	head, node := list.Addr, initNet+off
	next, err := m.ReadU64(head)
	if err != nil || next != 0 {
		return err
	}
	for _, w := range [][2]uint64{{head, node}, {head + 8, node}, {node, head}, {node + 8, head}} {
		if err := m.WriteU64(w[0], w[1]); err != nil {
			return err
		}
	}
	return nil
}
