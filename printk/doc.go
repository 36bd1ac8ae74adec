// Package printk is the kernel's text output as module code sees it: Linux 6.1's
// vsnprintf (lib/vsprintf.c) with its %p extensions, and the printk ring buffer
// with the record rules of kernel/printk/printk.c, rendered the way dmesg shows
// it; with vsscanf, the other half of lib/vsprintf.c.
//
// # Formatting
//
// A Formatter turns a format string and a stream of System V integer-class
// arguments (Args) into the bytes the kernel would produce. Everything the
// format refers to in guest memory (strings, MAC and IP addresses, struct
// va_format, ...) is read through Env with bounded, fallible reads: a pointer
// the kernel would reject prints "(null)" or "(efault)" exactly as 6.1 does,
// and a pointer the kernel would dereference and oops on prints "(efault)"
// instead (kemu reports the bad access, it does not crash the host).
//
// Integer conversions follow number() to the letter, which differs from C's
// printf in places: "%#x" of 0 is "0x0", "%#o" of 0 is "0", width and
// precision are stored in 24- and 16-bit fields, and an unsupported conversion
// (%n, %j, %q, %Z, a trailing '%', ...) ends the output there because the
// remaining arguments could no longer be matched to the format.
//
// Plain %p hashes the pointer like 6.1 with no_hash_pointers off: the low 32
// bits of SipHash-2-4 of the address, printed as 16 zero-padded hex digits.
// The kernel keys the hash with random bytes at boot; kemu takes the key from
// Options.PointerKey so output is reproducible per machine seed.
//
// %pd and %pD (dentry and file names) and %pg (block device) need struct
// offsets: they work when the Env also implements Layout, and print the
// hashed pointer otherwise.
// %pSb and %pBb print no build ID, as Debian's CONFIG_STACKTRACE_BUILD_ID=n.
//
// Not done (they print the hashed pointer, as %p would): %pC (clock), %pGp
// and %pGv (page and VMA flags; %pGg is done),
// %pOF (device tree node), %pfw (fwnode). They need more kernel structures and tables than
// this package models.
//
// # The log
//
// Log models the printk ring buffer: levels and KERN_CONT taken from the SOH
// prefix of the formatted text, default level 4, pr_cont merging into the
// caller's open record, the LOG_LINE_MAX truncation, and dmesg's default and
// raw (-r) renderings. DevMessage and NetdevMessage build the records of
// dev_printk and netdev_printk, and HexDump the lines of print_hex_dump.
//
// # Parsing
//
// Sscanf is the kernel's vsscanf (from the same lib/vsprintf.c), returning
// the stores the caller makes through the pointer arguments, and
// SimpleStrtoull/SimpleStrtoll are simple_strto(u)l(l).
package printk
