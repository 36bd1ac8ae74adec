package session

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

// cat, echo > FILE, ioctl and exec: the session's user process opening files through the machine
// (DEVELOPERS.md, "files opened by an emulated user process"): device nodes, the modules' /proc
// entries and the kernel's own /proc files. The machine builds the struct file, takes the module
// reference and calls the module's file operations.

// Open flags of open(2) the commands use.
const (
	oRDONLY = syscall.O_RDONLY
	oWRONLY = syscall.O_WRONLY | syscall.O_CREAT | syscall.O_TRUNC // the shell's > redirection
	oRDWR   = syscall.O_RDWR
)

// readChunk is how much cat asks for per read(2), as coreutils' 128 KiB buffer.
const readChunk = 128 << 10

// cat is coreutils' cat: each file's content in turn; "cat: PATH: REASON" for one it cannot read.
func (s *Session) cat(out *output, args []string) int {
	if len(args) == 0 {
		out.errorf("cat: missing file operand\n")
		return statusFailed
	}
	status := statusOK
	for _, path := range args {
		if err := s.catFile(out, path); err != nil {
			out.errorf("cat: %s: %s\n", path, strerror(err))
			status = statusFailed
		}
	}
	return status
}

func (s *Session) catFile(out *output, path string) error {
	s.m.SetProcess("cat")
	f, err := s.m.Open(path, oRDONLY)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		b, err := f.Read(readChunk)
		out.write(string(b))
		if errors.Is(err, io.EOF) || (err == nil && len(b) == 0) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// echo is the shell's echo, with -n; "echo TEXT > PATH" writes the text with one write(2), as
// bash's builtin does, and reports a failure as bash does.
func (s *Session) echo(out *output, args []string) int {
	newline := true
	if len(args) > 0 && args[0] == "-n" {
		newline = false
		args = args[1:]
	}
	var words []string
	target := ""
	for i := 0; i < len(args); i++ {
		if args[i] != redirect {
			words = append(words, args[i])
			continue
		}
		if i+1 >= len(args) || args[i+1] == redirect {
			out.errorf("bash: syntax error near unexpected token `newline'\n")
			return 2
		}
		target = args[i+1]
		i++
	}
	text := strings.Join(words, " ")
	if newline {
		text += "\n"
	}
	if target == "" {
		out.write(text)
		return statusOK
	}
	s.m.SetProcess("bash") // echo is a builtin: the shell itself opens the file and writes
	f, err := s.m.Open(target, oWRONLY)
	if err != nil {
		out.errorf("bash: %s: %s\n", target, strerror(err))
		return statusFailed
	}
	defer f.Close()
	if _, err := f.Write([]byte(text)); err != nil {
		out.errorf("bash: echo: write error: %s\n", strerror(err))
		return statusFailed
	}
	return statusOK
}

// ioctl opens PATH read-write and issues one ioctl(2). CMD is a number or the kernel's macro
// spelling, _IO(type,nr), _IOR/_IOW/_IOWR(type,nr,size) with size a C type (int, long, u32, ...) or
// a byte count. A command that moves data (the _IOC_SIZE of CMD is not 0) gets a user buffer of that
// size holding ARG; what the driver left in it is printed after the return value. Any other command
// gets ARG as is.
func (s *Session) ioctl(out *output, args []string) int {
	if len(args) < 2 || len(args) > 3 {
		out.errorf("usage: ioctl PATH CMD [ARG]\n")
		return statusFailed
	}
	path := args[0]
	cmd, err := parseIoctlCmd(args[1])
	if err != nil {
		out.errorf("ioctl: %s: %v\n", args[1], err)
		return statusFailed
	}
	var arg uint64
	if len(args) == 3 {
		if arg, err = parseInt(args[2]); err != nil {
			out.errorf("ioctl: %s: %v\n", args[2], err)
			return statusFailed
		}
	}
	s.m.SetProcess("ioctl")
	f, err := s.m.Open(path, oRDWR)
	if err != nil {
		out.errorf("ioctl: %s: %s\n", path, strerror(err))
		return statusFailed
	}
	defer f.Close()
	size := ioctlSize(cmd)
	if size == 0 {
		ret, err := f.Ioctl(cmd, arg)
		if err != nil {
			out.errorf("ioctl: %s: %s\n", path, strerror(err))
			return statusFailed
		}
		out.printf("ioctl: returned %d\n", ret)
		return statusOK
	}
	in := make([]byte, size)
	var word [8]byte
	binary.LittleEndian.PutUint64(word[:], arg)
	copy(in, word[:])
	ret, buf, err := f.IoctlBuf(cmd, in)
	if err != nil {
		out.errorf("ioctl: %s: %s\n", path, strerror(err))
		return statusFailed
	}
	out.printf("ioctl: returned %d, argument %s\n", ret, formatBuffer(buf))
	return statusOK
}

// The _IOC encoding of asm-generic/ioctl.h: nr 8 bits, type 8 bits, size 14 bits, direction 2 bits.
const (
	iocNone  = 0
	iocWrite = 1
	iocRead  = 2
)

func ioc(dir, typ, nr, size uint64) uint64 { return dir<<30 | size<<16 | typ<<8 | nr }

func ioctlSize(cmd uint64) int { return int(cmd >> 16 & (1<<14 - 1)) }

var iocMacro = regexp.MustCompile(`^_IO(R|W|WR)?\(\s*'?([^',\s])'?\s*,\s*(\w+)\s*(?:,\s*([\w ]+?)\s*)?\)$`)

// ioctlTypeSizes are the C types ioctl numbers name, as x86-64 sizes them.
var ioctlTypeSizes = map[string]uint64{
	"char": 1, "u8": 1, "__u8": 1, "short": 2, "u16": 2, "__u16": 2,
	"int": 4, "unsigned int": 4, "u32": 4, "__u32": 4, "s32": 4,
	"long": 8, "unsigned long": 8, "u64": 8, "__u64": 8, "s64": 8, "size_t": 8,
}

// parseIoctlCmd reads an ioctl number: an integer, or _IO/_IOR/_IOW/_IOWR as in C.
func parseIoctlCmd(s string) (uint64, error) {
	m := iocMacro.FindStringSubmatch(s)
	if m == nil {
		return parseInt(s)
	}
	dir := map[string]uint64{"": iocNone, "W": iocWrite, "R": iocRead, "WR": iocRead | iocWrite}[m[1]]
	nr, err := parseInt(m[3])
	if err != nil || nr > 0xff {
		return 0, fmt.Errorf("bad ioctl number %q", m[3])
	}
	var size uint64
	switch {
	case m[1] == "" && m[4] != "":
		return 0, errors.New("_IO takes no size")
	case m[1] != "" && m[4] == "":
		return 0, fmt.Errorf("_IO%s needs a size", m[1])
	case m[4] != "":
		var ok bool
		if size, ok = ioctlTypeSizes[m[4]]; !ok {
			if size, err = parseInt(m[4]); err != nil || size >= 1<<14 {
				return 0, fmt.Errorf("unknown ioctl argument type %q", m[4])
			}
		}
	}
	return ioc(dir, uint64(m[2][0]), nr, size), nil
}

// parseInt reads a C integer literal: decimal, 0x hex or 0 octal, optionally negative.
func parseInt(s string) (uint64, error) {
	if v, err := strconv.ParseInt(s, 0, 64); err == nil {
		return uint64(v), nil
	}
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("not a number: %q", s)
	}
	return v, nil
}

// formatBuffer shows an ioctl argument buffer: as a signed integer when it is one (1, 2, 4 or 8
// bytes), otherwise as hex bytes.
func formatBuffer(b []byte) string {
	switch len(b) {
	case 1:
		return strconv.Itoa(int(int8(b[0])))
	case 2:
		return strconv.Itoa(int(int16(binary.LittleEndian.Uint16(b))))
	case 4:
		return strconv.Itoa(int(int32(binary.LittleEndian.Uint32(b))))
	case 8:
		return strconv.FormatInt(int64(binary.LittleEndian.Uint64(b)), 10)
	}
	return fmt.Sprintf("% x", b)
}

// execFD is bash's "exec" with one redirection only, which opens or closes a file descriptor of the
// shell itself: "exec 3< PATH" (read), "exec 3> PATH" (write), "exec 3<> PATH" (both), "exec 3>&-"
// or "exec 3<&-" (close). A descriptor stays open across commands, so an open device keeps its module
// referenced (try_module_get at open, module_put at close) until it is closed.
func (s *Session) execFD(out *output, args []string) int {
	// The words of "3<> /dev/x" are "3<", the redirect and "/dev/x": put the redirection back together.
	var spec strings.Builder
	for _, a := range args {
		if a == redirect {
			a = ">"
		}
		spec.WriteString(a)
	}
	m := fdRedirect.FindStringSubmatch(spec.String())
	if m == nil {
		out.errorf("usage: exec N< PATH | exec N> PATH | exec N<> PATH | exec N>&-\n")
		return statusFailed
	}
	fd, _ := strconv.Atoi(m[1])
	op, path := m[2], m[3]
	if op == ">&-" || op == "<&-" {
		f, ok := s.fds[fd]
		if !ok {
			return statusOK // bash closes a closed descriptor silently
		}
		delete(s.fds, fd)
		if err := f.Close(); err != nil {
			out.errorf("bash: %d: %s\n", fd, strerror(err))
			return statusFailed
		}
		return statusOK
	}
	if path == "" {
		out.errorf("bash: syntax error near unexpected token `newline'\n")
		return 2
	}
	flags := map[string]int{"<": oRDONLY, ">": oWRONLY, "<>": oRDWR}[op]
	s.m.SetProcess("bash") // exec redirections are the shell's own
	f, err := s.m.Open(path, flags)
	if err != nil {
		out.errorf("bash: %s: %s\n", path, strerror(err))
		return statusFailed
	}
	if old, ok := s.fds[fd]; ok {
		old.Close()
	}
	s.fds[fd] = f
	return statusOK
}

// fdRedirect is exec's redirection put back together ("3<>/dev/x", "3>&-").
var fdRedirect = regexp.MustCompile(`^(\d+)(<>|<&-|>&-|<|>)([^<>&]*)$`)
