package machine

// Network odds and ends that protocol modules call at init: per-namespace sysctl tables
// (net/sysctl_net.c) and whether IPv6 is enabled (net/ipv6/af_inet6.c).
//
// register_net_sysctl(net, path, table) is register_sysctl's table under the namespace's root;
// with init_net the only namespace, that is the global /proc/sys/<path>, recorded as any
// sysctl table is. ipv6_mod_enabled is !disable_ipv6_mod, set only by the ipv6.disable=1 boot
// parameter: Debian builds IPv6 in, and kemu boots without that parameter.

func init() {
	register("register_net_sysctl", hRegisterNetSysctl)
	register("unregister_net_sysctl_table", hUnregisterSysctl)
	register("ipv6_mod_enabled", hTrue)
}

var registerSysctlAt = hRegisterSysctl(true) // (path, table)

// register_net_sysctl(net, path, table): register_sysctl(path, table) for init_net.
func hRegisterNetSysctl(m *Machine, t *Trap) (uint64, error) {
	call := *t
	call.regs[0], call.regs[1] = t.Arg(1), t.Arg(2)
	return registerSysctlAt(m, &call)
}
