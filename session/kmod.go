package session

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"kemu/depmod"
	"kemu/loader"
	"kemu/machine"
)

// insmod, rmmod, lsmod and modprobe with kmod's messages and exit statuses. kmod prints its errors
// as "<tool>: ERROR: ..." (or "FATAL:" for modprobe's lookups) on standard error and exits 1; a tool
// whose task died in module code is killed, which the shell reports as "Killed", status 137.

// Exit statuses.
const (
	statusOK     = 0
	statusFailed = 1
	statusKilled = 137 // 128 + SIGKILL: the shell's status for a task killed by an oops
)

// InsmodError is kmod insmod's report of a failed load of file and the exit status: "insmod: ERROR:
// could not insert module FILE: REASON" (mod_strerror's reason for the errno), or "Killed" when the
// module's init oopsed and took the task with it.
func InsmodError(file string, err error) (string, int) {
	if errors.Is(err, machine.ErrKilled) {
		return "Killed", statusKilled
	}
	if errno := loader.Errno(err); errno != 0 {
		return fmt.Sprintf("insmod: ERROR: could not insert module %s: %s", file, loader.InsmodReason(errno)), statusFailed
	}
	return fmt.Sprintf("insmod: ERROR: could not insert module %s: %v", file, err), statusFailed
}

// strerror is the C library's message for an error: "No such file or directory".
func strerror(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		err = errno
	} else if e := loader.Errno(err); e != 0 {
		err = e
	} else {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
	}
	s := err.Error()
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func (s *Session) insmod(out *output, args []string) int {
	if len(args) == 0 {
		out.errorf("insmod: ERROR: missing filename.\n")
		return statusFailed
	}
	file := args[0]
	image, err := s.readModuleFile(file)
	if err != nil {
		out.errorf("insmod: ERROR: could not load module %s: %s\n", file, strerror(err))
		return statusFailed
	}
	if _, err := s.m.Insmod(image, joinParams(args[1:]), file); err != nil {
		msg, status := InsmodError(file, err)
		out.errorf("%s\n", msg)
		return status
	}
	return statusOK
}

// rmmod is kmod's rmmod: for each name, the checks kmod makes before calling delete_module (loaded,
// holders, reference count; skipped with -f), then delete_module itself.
func (s *Session) rmmod(out *output, args []string) int {
	force := false
	var names []string
	for _, a := range args {
		switch {
		case a == "-f" || a == "--force":
			force = true
		case a == "-v" || a == "--verbose" || a == "-s" || a == "--syslog":
		case strings.HasPrefix(a, "-"):
			out.errorf("rmmod: invalid option -- '%s'\n", strings.TrimLeft(a, "-"))
			return statusFailed
		default:
			names = append(names, a)
		}
	}
	if len(names) == 0 {
		out.errorf("rmmod: ERROR: missing module name.\n")
		return statusFailed
	}
	status := statusOK
	for _, arg := range names {
		name := loader.ModuleName(arg)
		if !force {
			if msg := s.inUse(name); msg != "" {
				out.errorf("rmmod: ERROR: %s\n", msg)
				status = statusFailed
				continue
			}
		}
		if st := s.remove(out, name, force, "rmmod: ERROR: could not remove module "+arg); st != statusOK {
			status = max(status, st)
		}
	}
	return status
}

// inUse is kmod rmmod's check_module_inuse(): why name cannot be removed, "" when it can.
func (s *Session) inUse(name string) string {
	mod, ok := s.m.Registry().Find(name)
	if !ok {
		return fmt.Sprintf("Module %s is not currently loaded", name)
	}
	if holders := mod.UsedBy(); len(holders) > 0 {
		names := make([]string, len(holders))
		for i, h := range holders {
			names[i] = h.Name
		}
		return fmt.Sprintf("Module %s is in use by: %s", name, strings.Join(names, " "))
	}
	if mod.Refcount() != 0 {
		return fmt.Sprintf("Module %s is in use", name)
	}
	return ""
}

// remove calls delete_module for name (with O_TRUNC when forced) and reports a failure as
// prefix + ": " + strerror. After a successful unload it records what the module left on the heap.
func (s *Session) remove(out *output, name string, force bool, prefix string) int {
	err := s.m.Rmmod(name, force)
	switch {
	case err == nil:
		s.removed = append(s.removed, name)
		s.noteLeaks(name)
		return statusOK
	case errors.Is(err, machine.ErrKilled):
		out.errorf("Killed\n")
		return statusKilled
	}
	out.errorf("%s: %s\n", prefix, strerror(err))
	return statusFailed
}

func (s *Session) lsmod(out *output, args []string) int {
	if len(args) != 0 {
		out.errorf("Usage: lsmod\n")
		return statusFailed
	}
	out.write(s.m.Registry().Lsmod())
	return statusOK
}

// modprobeFlags are the modprobe switches the session understands.
type modprobeFlags struct {
	remove, verbose, quiet bool
	showConfig             bool     // -c: print the configuration and the alias indexes
	showDepends            bool     // -D: print the load plan instead of loading
	resolveOnly            bool     // -R: print the modules the name means
	configs                []string // -C: modprobe.d files or directories (the machine has none of its own)
	probe                  depmod.ProbeOptions
}

// parseModprobe reads modprobe's switches up to the first operand; rest is the name and options.
func parseModprobe(args []string) (f modprobeFlags, rest []string, bad string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			return f, args[i:], ""
		}
		switch a {
		case "-r", "--remove":
			f.remove = true
		case "-v", "--verbose":
			f.verbose = true
		case "-q", "--quiet":
			f.quiet = true
		case "-c", "--showconfig", "--show-config":
			f.showConfig = true
		case "-D", "--show-depends":
			f.showDepends = true
		case "-R", "--resolve-alias":
			f.resolveOnly = true
		case "-i", "--ignore-install", "--ignore-remove":
			f.probe.IgnoreCommands = true
		case "-b", "--use-blacklist":
			f.probe.UseBlacklist = true
		case "-C", "--config":
			if i+1 == len(args) {
				return f, nil, a
			}
			i++
			f.configs = append(f.configs, args[i])
		default:
			if c, ok := strings.CutPrefix(a, "--config="); ok {
				f.configs = append(f.configs, c)
				continue
			}
			return f, nil, a
		}
	}
	return f, nil, ""
}

// modprobe is kmod's modprobe over the session's tree: load a module and its dependencies (those not
// loaded yet, deepest first, each with its options), or with -r remove it and then every dependency
// nothing uses any more. modprobe.d's configuration comes from -C only: the emulated machine has no
// /etc/modprobe.d of its own.
func (s *Session) modprobe(out *output, args []string) int {
	f, rest, bad := parseModprobe(args)
	if bad != "" {
		out.errorf("modprobe: unrecognized option '%s'\n", bad)
		return statusFailed
	}
	if len(rest) == 0 && !f.showConfig {
		out.errorf("modprobe: ERROR: missing parameters. See -h.\n")
		return statusFailed
	}
	// libkmod reports what it skips in the configuration itself, whatever -q says.
	cfg := depmod.LoadModprobeConfig(f.configs, s.tree.IndexDir(), func(msg string) { out.errorf("libkmod: ERROR: %s", msg) })
	s.tree.Configure(cfg)
	defer s.tree.Configure(nil)
	log := func(format string, a ...any) {
		if !f.quiet {
			out.errorf(format, a...)
		}
	}
	switch {
	case f.showConfig:
		var b strings.Builder
		if err := depmod.ShowConfig(&b, cfg, s.tree.IndexDir()); err != nil {
			log("modprobe: ERROR: %v\n", err)
			return statusFailed
		}
		out.write(b.String())
		return statusOK
	case f.remove:
		status := statusOK
		for _, name := range rest {
			status = max(status, s.modprobeRemove(out, log, name, f))
		}
		return status
	}
	return s.modprobeInsert(out, log, rest[0], joinParams(rest[1:]), f)
}

// modprobeInsert is modprobe's insmod(): look the name up, then insert each module of every match
// the blacklist does not stop (-D prints the plan instead, -R the modules).
func (s *Session) modprobeInsert(out *output, log func(string, ...any), name, params string, f modprobeFlags) int {
	if strings.HasPrefix(name, "/") || strings.HasPrefix(name, "./") {
		// A path is inserted as it is: modprobe reads no index for it.
		if _, err := os.Stat(name); err != nil {
			log("modprobe: FATAL: Failed to get module from path %s: %s\n", name, strerror(err))
			return statusFailed
		}
		if f.verbose {
			out.printf("insmod %s %s\n", name, params)
		}
		if err := s.insertFile(name, params); err != nil {
			return insertFailed(out, log, loader.ModuleName(name), err)
		}
		return statusOK
	}
	probes, err := s.tree.Probe(name, params, f.probe)
	if err != nil {
		log("modprobe: FATAL: Module %s not found in directory %s\n", name, s.tree.Dir())
		return statusFailed
	}
	status := statusOK
	for _, p := range probes {
		switch {
		case f.resolveOnly:
			out.printf("%s\n", p.Module)
		case p.Blacklisted: // modprobe succeeds without inserting anything
		case f.showDepends:
			for i := range p.Loads {
				p.Loads[i].Path = s.tree.Show(p.Loads[i].Path)
			}
			var b strings.Builder
			_ = depmod.WriteShowDepends(&b, []depmod.Probe{p})
			out.write(b.String())
		default:
			status = s.probeInsert(out, log, p, f.verbose)
		}
	}
	return status
}

// probeInsert is kmod_module_probe_insert_module(): the load list (dependencies from the most
// basic up, soft dependencies around them, then the module), skipping built-in modules and what is
// loaded already. A failure is reported for the module asked for, whichever module of the list
// failed, as modprobe does. kemu runs no shell: an install command is refused (-i inserts the module
// asked for instead).
func (s *Session) probeInsert(out *output, log func(string, ...any), p depmod.Probe, verbose bool) int {
	for _, l := range p.Loads {
		if l.Builtin || s.inKernel(l.Name) {
			continue
		}
		if l.Install != "" {
			if verbose {
				out.printf("install %s %s\n", l.Install, l.Options)
			}
			log("modprobe: ERROR: could not insert '%s': kemu cannot run the install command for %s: %s (modprobe -i ignores it)\n",
				p.Module, l.Name, l.Command())
			return statusFailed
		}
		if verbose {
			out.printf("insmod %s %s\n", s.tree.Show(l.Path), l.Options)
		}
		if err := s.insertFile(l.Path, l.Options); err != nil {
			return insertFailed(out, log, p.Module, err)
		}
	}
	return statusOK
}

// insertFailed is modprobe's insmod_insert() report of a failed insertion of mod.
func insertFailed(out *output, log func(string, ...any), mod string, err error) int {
	if errors.Is(err, machine.ErrKilled) {
		out.errorf("Killed\n")
		return statusKilled
	}
	switch loader.Errno(err) {
	case syscall.EEXIST:
		log("modprobe: ERROR: could not insert '%s': Module already in kernel\n", mod)
	case syscall.ENOENT:
		log("modprobe: ERROR: could not insert '%s': Unknown symbol in module, or unknown parameter (see dmesg)\n", mod)
	default:
		log("modprobe: ERROR: could not insert '%s': %s\n", mod, strerror(err))
	}
	return statusFailed
}

func (s *Session) insertFile(path, params string) error {
	image, err := loader.ReadFile(path)
	if err != nil {
		return err
	}
	_, err = s.m.Insmod(image, params, s.tree.Show(path))
	return err
}

// inKernel is kmod's module_is_inkernel(): loaded, live or still in its init.
func (s *Session) inKernel(name string) bool {
	mod, ok := s.m.Registry().Find(name)
	return ok && (mod.State == loader.Live || mod.State == loader.Coming)
}

// modprobeRemove is modprobe -r for one name: nothing to do when it is not loaded; refused while it
// is in use; otherwise its post-soft dependencies, it, its dependencies and its pre-soft dependencies
// are unloaded in depmod's remove order, each of the others only if nothing uses it at that moment
// (failures there are not fatal).
func (s *Session) modprobeRemove(out *output, log func(string, ...any), name string, f modprobeFlags) int {
	verbose := f.verbose
	matches := s.tree.Lookup(name)
	if len(matches) == 0 {
		if _, loaded := s.m.Registry().Find(loader.ModuleName(name)); !loaded {
			log("modprobe: FATAL: Module %s not found.\n", name)
			return statusFailed
		}
		matches = []string{loader.ModuleName(name)}
	}
	for _, mod := range matches {
		if cmd := s.tree.RemoveCommand(mod); cmd != "" && !f.probe.IgnoreCommands {
			if verbose {
				out.printf("remove %s\n", cmd)
			}
			log("modprobe: ERROR: could not remove '%s': kemu cannot run the remove command: %s (modprobe -r -i ignores it)\n", mod, cmd)
			return statusFailed
		}
		m, ok := s.m.Registry().Find(mod)
		if !ok {
			continue
		}
		if m.Refcount() > 0 {
			log("modprobe: FATAL: Module %s is in use.\n", mod)
			return statusFailed
		}
		order, err := s.tree.RemoveOrder(mod)
		if err != nil {
			order = []string{mod}
		}
		for _, name := range order {
			if name == mod {
				if st := s.modprobeRemoveOne(out, mod, verbose); st != statusOK {
					return st
				}
				continue
			}
			if other, ok := s.m.Registry().Find(name); ok && other.Refcount() == 0 {
				s.modprobeRemoveOne(out, name, verbose)
			}
		}
	}
	return statusOK
}

// modprobeRemoveOne is rmmod_do_remove_module(); libkmod reports a failed delete_module.
func (s *Session) modprobeRemoveOne(out *output, name string, verbose bool) int {
	if verbose {
		out.printf("rmmod %s\n", name)
	}
	return s.remove(out, name, false, fmt.Sprintf("modprobe: ERROR: could not remove '%s'", name))
}
