package depmod

import (
	"fmt"
	"io"

	"kemu/modinfo"
)

// Log priorities as syslog numbers them; kmod prints a message when its priority is at most the
// verbosity, which starts at warning and grows with each -v.
const (
	logCrit    = 2
	logErr     = 3
	logWarning = 4
	logNotice  = 5
	logInfo    = 6
)

// logger writes kmod's "depmod: LEVEL: message" lines to stderr, and SHOW's verbose lines (from -v)
// to stdout.
type logger struct {
	stderr, stdout io.Writer
	verbose        int
}

func (l *logger) printf(prio int, name, format string, args ...any) {
	if l == nil || l.stderr == nil || prio > l.verbose {
		return
	}
	fmt.Fprintf(l.stderr, "depmod: %s: "+format, append([]any{name}, args...)...)
}

func (l *logger) critf(format string, args ...any)  { l.printf(logCrit, "FATAL", format, args...) }
func (l *logger) errorf(format string, args ...any) { l.printf(logErr, "ERROR", format, args...) }
func (l *logger) warnf(format string, args ...any)  { l.printf(logWarning, "WARNING", format, args...) }
func (l *logger) infof(format string, args ...any)  { l.printf(logInfo, "INFO", format, args...) }

// showf is depmod's SHOW: verbose progress on stdout.
func (l *logger) showf(format string, args ...any) {
	if l == nil || l.stdout == nil || l.verbose <= logWarning {
		return
	}
	fmt.Fprintf(l.stdout, format, args...)
}

func strerror(err error) string { return modinfo.Strerror(err) }
