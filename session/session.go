// Package session drives one emulated machine with the commands a user types at a root shell to
// load, exercise and unload kernel modules: insmod, rmmod, lsmod, modprobe, dmesg, cat, echo > FILE,
// ioctl, exec N< FILE (keep a file open) and sleep. Each command prints exactly what the real tool prints on Linux (kmod's messages
// and formats, the kernel's /proc files, dmesg's time stamps), so a session script reads like a
// transcript of a real machine and its output can be compared with one.
//
// A Session executes one command line at a time (Exec) and keeps a Record of each: the command,
// what it printed (standard output and standard error interleaved, as a terminal shows them) and its
// exit status. A failing command does not end the session, as in a shell. Script runs a whole script
// and writes the transcript ("# command" lines followed by their output). Report summarises what the
// modules did to the kernel: API calls, registrations, oopses, taints and leaks.
//
// The files of the package, top-down: session.go (the Session, scripts and the command table),
// kmod.go (insmod, rmmod, lsmod, modprobe and kmod's messages), files.go (cat, echo, ioctl and exec
// over the machine's files), dmesg.go (dmesg and sleep), words.go (the command-line syntax), tree.go
// (the module directory modprobe searches, over depmod's index) and report.go (the behaviour report).
package session

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"kemu/loader"
	"kemu/machine"
	"kemu/profile"
	"kemu/tlb"
)

// Options are the choices made when a session starts.
type Options struct {
	// Machine configures the machine the session boots.
	Machine machine.Options
	// Tree is the module directory modprobe searches; nil means the fixtures embedded in kemu, as the
	// module directory of the profile's release.
	Tree *Tree
	// TLB, when not "", names a TLB model preset (tlb.PresetNames) that sees every guest memory access
	// of the session; its statistics go into the report. Measuring slows guest code down a lot.
	TLB string
}

// Record is one command the session executed.
type Record struct {
	Command string `json:"command"` // the line as typed
	Output  string `json:"output"`  // what it printed, standard output and error interleaved
	Status  int    `json:"status"`  // exit status: 0 success, 1 failure, 137 killed (the task oopsed)
}

// Session is one machine driven by commands. It is not safe for concurrent use.
type Session struct {
	m       *machine.Machine
	prof    *profile.Profile
	tree    *Tree
	ownTree bool // the session made tree and closes it
	opts    Options

	records  []Record
	dmesgSeq uint64 // dmesg -c cleared every record before this sequence number
	logSeq   uint64 // the first log record the current command may have produced
	problems []Problem
	leaks    []Leak
	removed  []string              // modules unloaded during the session, in order
	fds      map[int]*machine.File // files the shell keeps open (exec N< PATH), by descriptor
	tlb      *machine.Measurement  // the TLB model watching the session, nil when not asked for
}

// New boots a machine for prof and returns a session driving it.
func New(prof *profile.Profile, opts Options) (*Session, error) {
	s := &Session{prof: prof, tree: opts.Tree, opts: opts, fds: map[int]*machine.File{}}
	if s.tree == nil {
		t, err := EmbeddedTree(prof.Release)
		if err != nil {
			return nil, fmt.Errorf("session: %w", err)
		}
		s.tree, s.ownTree = t, true
	}
	m, err := machine.New(prof, opts.Machine)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("session: %w", err)
	}
	s.m = m
	if opts.TLB != "" {
		cfg, err := tlb.Preset(opts.TLB)
		if err == nil {
			s.tlb, err = m.Measure(cfg)
		}
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("session: TLB model %s: %w", opts.TLB, err)
		}
	}
	return s, nil
}

// Close closes the files the shell kept open and releases the machine, and the module tree when the
// session made it. The session cannot run commands afterwards.
func (s *Session) Close() error {
	var err error
	if s.tlb != nil {
		err = s.tlb.Stop()
		s.tlb = nil
	}
	for fd, f := range s.fds {
		err = errors.Join(err, f.Close())
		delete(s.fds, fd)
	}
	if s.m != nil {
		err = errors.Join(err, s.m.Close())
		s.m = nil
	}
	if s.ownTree {
		err = errors.Join(err, s.tree.Close())
		s.ownTree = false
	}
	return err
}

// Machine is the machine the session drives, for callers that inspect it further.
func (s *Session) Machine() *machine.Machine { return s.m }

// Records is every command executed so far, oldest first.
func (s *Session) Records() []Record { return s.records }

// command is one built-in: it writes what the tool prints to out and returns the exit status.
type command struct {
	run   func(s *Session, out *output, args []string) int
	usage string // the synopsis help prints
}

// commands is the session's command table; help lists it.
var commands map[string]command

func init() {
	commands = map[string]command{
		"insmod":   {(*Session).insmod, "insmod FILE [name=value ...]"},
		"rmmod":    {(*Session).rmmod, "rmmod [-f] NAME ..."},
		"lsmod":    {(*Session).lsmod, "lsmod"},
		"modprobe": {(*Session).modprobe, "modprobe [-v] [-q] [-C CONF]... [-i] [-b] [-D|-R] NAME [name=value ...] | modprobe -r [-v] [-q] [-i] NAME ... | modprobe -C CONF -c"},
		"dmesg":    {(*Session).dmesg, "dmesg [-c | -C]"},
		"cat":      {(*Session).cat, "cat PATH ..."},
		"echo":     {(*Session).echo, "echo [-n] TEXT ... [> PATH]"},
		"ioctl":    {(*Session).ioctl, "ioctl PATH CMD [ARG]"},
		"sleep":    {(*Session).sleep, "sleep DURATION (1s, 250ms, 0.5)"},
		"exec":     {(*Session).execFD, "exec N< PATH | exec N> PATH | exec N<> PATH | exec N>&- (keep a file open)"},
		"help":     {(*Session).help, "help"},
		"history":  {(*Session).history, "history"},
	}
}

// Exec runs one command line and records it. Blank lines and comments (#) are not commands: Exec
// returns ok false for them and records nothing.
func (s *Session) Exec(line string) (rec Record, ok bool) { return s.ExecTo(line, nil, nil) }

// ExecTo is Exec that also writes what the command prints to standard output and standard error to
// stdout and stderr (either may be nil), as a program run from a terminal separates them.
func (s *Session) ExecTo(line string, stdout, stderr io.Writer) (rec Record, ok bool) {
	text := strings.TrimSpace(line)
	if text == "" || strings.HasPrefix(text, "#") {
		return Record{}, false
	}
	s.logSeq = s.nextLogSeq()
	out := &output{stdout: stdout, stderr: stderr}
	status := s.execWords(out, text)
	rec = Record{Command: text, Output: out.String(), Status: status}
	s.records = append(s.records, rec)
	s.noteOopses(text)
	return rec, true
}

func (s *Session) execWords(out *output, text string) int {
	words, err := splitWords(text)
	if err != nil {
		out.errorf("kemu: %v\n", err)
		return 2
	}
	if len(words) == 0 {
		return 0
	}
	c, ok := commands[words[0]]
	if !ok {
		// What bash prints for a command it cannot find, with its status.
		out.errorf("%s: command not found\n", words[0])
		return 127
	}
	return c.run(s, out, words[1:])
}

// Script runs every line of r and writes the transcript to w: each command after the prompt "# ",
// then its output. It returns the exit status of the last command, as sh does; with errexit it stops
// at the first failing command (sh -e).
func (s *Session) Script(r io.Reader, w io.Writer, errexit bool) (int, error) {
	status := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		rec, ok := s.Exec(sc.Text())
		if !ok {
			continue
		}
		if _, err := fmt.Fprintf(w, "%s%s\n%s", Prompt, rec.Command, rec.Output); err != nil {
			return status, err
		}
		status = rec.Status
		if errexit && status != 0 {
			break
		}
	}
	return status, sc.Err()
}

// Prompt is the root shell prompt transcripts show before each command.
const Prompt = "# "

func (s *Session) help(out *output, args []string) int {
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		out.printf("%s\n", commands[name].usage)
	}
	return 0
}

// history is bash's history: the commands so far, numbered from 1, this one included.
func (s *Session) history(out *output, args []string) int {
	for i, r := range s.records {
		out.printf("%5d  %s\n", i+1, r.Command)
	}
	out.printf("%5d  history\n", len(s.records)+1)
	return 0
}

// output collects what a command prints: standard output and error interleaved in order, as a
// terminal shows them, and each also passed on to its own writer when the caller gave one.
type output struct {
	all            strings.Builder
	stdout, stderr io.Writer
}

// printf writes to standard output, errorf to standard error.
func (o *output) printf(format string, args ...any) { o.write(fmt.Sprintf(format, args...)) }
func (o *output) errorf(format string, args ...any) { o.emit(o.stderr, fmt.Sprintf(format, args...)) }
func (o *output) write(text string)                 { o.emit(o.stdout, text) }
func (o *output) String() string                    { return o.all.String() }

func (o *output) emit(w io.Writer, text string) {
	o.all.WriteString(text)
	if w != nil {
		io.WriteString(w, text)
	}
}

// readModuleFile reads the file insmod was given from the host, decompressed. A bare file name the
// host does not have is looked for in the module tree, so "insmod hello.ko" finds the embedded
// fixture.
func (s *Session) readModuleFile(path string) ([]byte, error) {
	image, err := loader.ReadFile(path)
	if err != nil && os.IsNotExist(err) && !strings.Contains(path, "/") {
		if image, ok := s.tree.File(path); ok {
			return image, nil
		}
	}
	return image, err
}
