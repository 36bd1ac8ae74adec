package machine

import (
	"kemu/printk"
)

// printk and the formatting family (lib/vsprintf.c callers), over the printk package.

func init() {
	register("_printk", hPrintk)
	register("printk", hPrintk)
	register("vprintk", hVprintk)
	register("__warn_printk", hWarnPrintk)
	register("__dynamic_pr_debug", hDisabledDebug)
	register("__dynamic_dev_dbg", hDisabledDebug)
	register("__dynamic_netdev_dbg", hDisabledDebug)
	for name, level := range map[string]int{
		"_dev_emerg": levelEmerg, "_dev_alert": levelAlert, "_dev_crit": levelCrit, "_dev_err": levelErr,
		"_dev_warn": levelWarning, "_dev_notice": levelNotice, "_dev_info": levelInfo,
	} {
		register(name, hDevPrintk(level))
	}
	register("snprintf", hSnprintf)
	register("scnprintf", hSnprintf)
	register("sprintf", hSprintf)
	register("vsnprintf", hVsnprintf)
	register("vscnprintf", hVsnprintf)
	register("vsprintf", hVsprintf)
	register("kasprintf", hKasprintf)
}

func hPrintk(m *Machine, t *Trap) (uint64, error) {
	text, err := m.format(t.Arg(0), t.VarArgs(1))
	if err != nil {
		return 0, err
	}
	return uint64(m.printk(text)), nil
}

// vprintk(fmt, va_list).
func hVprintk(m *Machine, t *Trap) (uint64, error) {
	va, err := printk.NewVaList(&printkEnv{m: m}, t.Arg(1))
	if err != nil {
		return 0, err
	}
	text, err := m.format(t.Arg(0), va)
	if err != nil {
		return 0, err
	}
	return uint64(m.printk(text)), nil
}

// __warn_printk(fmt, ...) is WARN(cond, fmt, ...)'s message: the cut-here line, then the message.
// The ud2 that follows carries BUGFLAG_NO_CUT_HERE.
func hWarnPrintk(m *Machine, t *Trap) (uint64, error) {
	m.logf(levelWarning, "%s", cutHere)
	text, err := m.format(t.Arg(0), t.VarArgs(1))
	if err != nil {
		return 0, err
	}
	m.printk(text)
	return 0, nil
}

// Dynamic debug sites are disabled by default (no dyndbg= given): they print nothing.
func hDisabledDebug(m *Machine, t *Trap) (uint64, error) { return 0, nil }

// hDevPrintk builds _dev_<level>(dev, fmt, ...): "<driver> <device>: message", or
// "(NULL device *): message" for a NULL dev.
func hDevPrintk(level int) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		text, err := m.format(t.Arg(1), t.VarArgs(2))
		if err != nil {
			return 0, err
		}
		dev := t.Arg(0)
		driver, name := m.deviceNames(dev)
		msg, line := printk.DevMessage(level, dev != 0, driver, name, text, m.kernel.clock.ns, 0)
		m.kernel.log.Store(msg, line)
		return 0, nil
	}
}

// deviceNames is dev_driver_string() and dev_name() for a struct device, read through BTF layouts.
func (m *Machine) deviceNames(dev uint64) (driver, name string) {
	if dev == 0 {
		return "", ""
	}
	if off, ok := m.fieldOffset("device", "init_name"); ok {
		if p, err := m.ReadU64(dev + off); err == nil && p != 0 {
			name, _ = m.ReadCString(p, 64)
		}
	}
	if off, ok := m.fieldOffset("device", "kobj"); ok && name == "" {
		if noff, ok := m.fieldOffset("kobject", "name"); ok {
			if p, err := m.ReadU64(dev + off + noff); err == nil && p != 0 {
				name, _ = m.ReadCString(p, 64)
			}
		}
	}
	if off, ok := m.fieldOffset("device", "driver"); ok {
		if drv, err := m.ReadU64(dev + off); err == nil && drv != 0 {
			if noff, ok := m.fieldOffset("device_driver", "name"); ok {
				if p, err := m.ReadU64(drv + noff); err == nil && p != 0 {
					driver, _ = m.ReadCString(p, 64)
				}
			}
		}
	}
	return driver, name
}

// snprintf(buf, size, fmt, ...) and scnprintf: store at most size-1 bytes plus NUL; snprintf returns
// the untruncated length, scnprintf what it stored.
func hSnprintf(m *Machine, t *Trap) (uint64, error) {
	return m.snprintf(t.Name == "scnprintf", t.Arg(0), t.Arg(1), t.Arg(2), t.VarArgs(3))
}

func hVsnprintf(m *Machine, t *Trap) (uint64, error) {
	va, err := printk.NewVaList(&printkEnv{m: m}, t.Arg(3))
	if err != nil {
		return 0, err
	}
	return m.snprintf(t.Name == "vscnprintf", t.Arg(0), t.Arg(1), t.Arg(2), va)
}

// sprintf(buf, fmt, ...): unbounded, as INT_MAX.
func hSprintf(m *Machine, t *Trap) (uint64, error) {
	return m.snprintf(false, t.Arg(0), 1<<31-1, t.Arg(1), t.VarArgs(2))
}

func hVsprintf(m *Machine, t *Trap) (uint64, error) {
	va, err := printk.NewVaList(&printkEnv{m: m}, t.Arg(2))
	if err != nil {
		return 0, err
	}
	return m.snprintf(false, t.Arg(0), 1<<31-1, t.Arg(1), va)
}

func (m *Machine) snprintf(stored bool, buf, size, fmtAddr uint64, args printk.Args) (uint64, error) {
	f, err := m.ReadCString(fmtAddr, 1<<16)
	if err != nil {
		return 0, err
	}
	size = min(size, 1<<31-1)
	fm := m.formatter()
	text, n := fm.Snprintf(int(size), []byte(f), args)
	if fault := fm.Env.(*printkEnv).fault; fault != nil {
		return 0, fault
	}
	if size > 0 {
		if err := m.WriteAt(append(text, 0), buf); err != nil {
			return 0, err
		}
	}
	if stored {
		return uint64(len(text)), nil
	}
	return uint64(n), nil
}

// kasprintf(gfp, fmt, ...): a kmalloc'd formatted string.
func hKasprintf(m *Machine, t *Trap) (uint64, error) {
	text, err := m.format(t.Arg(1), t.VarArgs(2))
	if err != nil {
		return 0, err
	}
	return m.kmallocBytes(append(text, 0), t.caller())
}
