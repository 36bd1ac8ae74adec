package machine

import (
	"fmt"
	"syscall"
)

// Services a module asks of a kernel that has no hardware or filesystem behind them in kemu:
// firmware loading (no firmware files: the request fails as on a machine without them), debugfs
// (its files are the user process's, vfs_debugfs.go), RCU-deferred frees, DMA masks.

func init() {
	register("request_firmware", hRequestFirmware)
	register("firmware_request_nowarn", hRequestFirmware)
	register("request_firmware_direct", hRequestFirmware)
	register("release_firmware", hNop) // only ever given what request_firmware stored: NULL
	register("debugfs_create_dir", hDebugfsCreate(entryDir))
	register("debugfs_create_file", hDebugfsCreate(debugFops))
	register("debugfs_remove", hDebugfsRemove)
	register("kvfree_call_rcu", hKvfreeCallRCU)
	register("dma_set_mask", hZero)
	register("dma_set_coherent_mask", hZero)
}

// request_firmware(&fw, name, device): *fw = NULL and -ENOENT, with firmware_class's warning for the
// direct load (request_firmware_direct and the nowarn variant stay quiet).
func hRequestFirmware(m *Machine, t *Trap) (uint64, error) {
	name, err := m.ReadCString(t.Arg(1), 256)
	if err != nil {
		return 0, err
	}
	if err := m.WriteU64(t.Arg(0), 0); err != nil {
		return 0, err
	}
	if t.Name == "request_firmware" {
		driver, dev := m.deviceNames(t.Arg(2))
		prefix := "(NULL device *): "
		if t.Arg(2) != 0 {
			prefix = fmt.Sprintf("%s %s: ", driver, dev)
		}
		m.logf(levelWarning, "%sDirect firmware load for %s failed with error -%d", prefix, name, syscall.ENOENT)
	}
	return negErrno(syscall.ENOENT), nil
}

// kvfree_call_rcu(head, func) is kfree_rcu(): for kvfree_rcu(ptr) head is NULL and func is the
// pointer; for kfree_rcu(ptr, field) head is &ptr->field and func is offsetof(type, field). The
// grace period ends at once on one idle CPU, so the object is freed now.
func hKvfreeCallRCU(m *Machine, t *Trap) (uint64, error) {
	head, fn := t.Arg(0), t.Arg(1)
	if head == 0 {
		return 0, m.kfree(fn, t.caller())
	}
	if fn >= pageSize { // not an offset: a real callback, which call_rcu would run
		return 0, nil
	}
	return 0, m.kfree(head-fn, t.caller())
}
