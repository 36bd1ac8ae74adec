package machine

// Netlink's notifier chain (net/netlink/af_netlink.c): netlink_register_notifier puts a
// notifier_block on the chain of socket release events (NETLINK_URELEASE). No user socket is ever
// released in kemu, so the chain is never called; the registration is recorded so that a module
// that forgets to unregister shows it, and a block registered twice is refused as on any chain.

func init() {
	register("netlink_register_notifier", hNotifierRegister(0))
	register("netlink_unregister_notifier", hNotifierUnregister(0))
}
