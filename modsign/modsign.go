// Package modsign reads and verifies the signature Linux appends to a kernel module.
//
// A signed module is the ELF object followed by a trailer:
//
//	[ ELF object                      ]  the payload the signature covers
//	[ PKCS#7 SignedData, DER          ]  Trailer.SigLen bytes
//	[ struct module_signature         ]  12 bytes, see Trailer
//	[ "~Module signature appended~\n" ]  Marker
//
// Split takes a module apart the way Linux 6.1's module_sig_check/mod_verify_sig do, with the
// kernel's checks, errnos and log lines (Error); (*Signature).Verify checks the PKCS#7 signature against a
// set of trusted certificates the way verify_pkcs7_signature does for VERIFYING_MODULE_SIGNATURE.
// LoadCerts and KernelCerts supply the trusted certificates: from PEM/DER files, or the builtin
// keyring found in a kernel image. ParseTrailer and DecodeSignature expose the trailer and the
// message without the kernel's policy, for tools that, like kmod's modinfo, are more lenient.
package modsign

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

// Marker ends every signed module (MODULE_SIG_STRING).
const Marker = "~Module signature appended~\n"

// TrailerSize is sizeof(struct module_signature).
const TrailerSize = 12

// Key identifier types (enum pkey_id_type); only IDPKCS7 is accepted by Linux since 4.x.
const (
	IDPGP   = 0
	IDX509  = 1
	IDPKCS7 = 2
)

// Trailer is struct module_signature, the fixed-size block between the signature and Marker.
// For PKCS#7 signatures every field but IDType and SigLen must be zero; the signer name and key id
// live inside the PKCS#7 message.
type Trailer struct {
	Algo      uint8    // public-key algorithm (enum pkey_algo), 0 for PKCS#7
	Hash      uint8    // digest algorithm (enum hash_algo), 0 for PKCS#7
	IDType    uint8    // key identifier type, IDPKCS7
	SignerLen uint8    // length of the signer's name preceding the key id (legacy formats)
	KeyIDLen  uint8    // length of the key identifier preceding the signature (legacy formats)
	Pad       [3]uint8 // must be zero
	SigLen    uint32   // length of the signature data, stored big-endian
}

// ParseTrailer reports whether data ends with Marker preceded by a whole struct module_signature,
// and returns that struct and the bytes before it (signature data included). It checks nothing
// else: callers apply their own rules (Split applies the kernel's).
func ParseTrailer(data []byte) (t Trailer, rest []byte, ok bool) {
	n := len(data)
	if n < len(Marker)+TrailerSize || string(data[n-len(Marker):]) != Marker {
		return Trailer{}, nil, false
	}
	rest = data[:n-len(Marker)-TrailerSize]
	b := data[len(rest) : n-len(Marker)]
	t = Trailer{
		Algo:      b[0],
		Hash:      b[1],
		IDType:    b[2],
		SignerLen: b[3],
		KeyIDLen:  b[4],
		Pad:       [3]uint8{b[5], b[6], b[7]},
		SigLen:    binary.BigEndian.Uint32(b[8:12]),
	}
	return t, rest, true
}

// Error is a signature failure as the kernel reports it: the errno the load fails with, the
// line the kernel logs for it (most signature failures log nothing), and kemu's own account.
type Error struct {
	Errno  syscall.Errno
	Msg    string // the kernel's log line, without level or newline; "" when it logs none
	Level  int    // printk level of Msg: KernErr or KernWarning; 0 without Msg
	Detail string // what kemu found wrong, for people; "" when Msg says it all
}

// Printk levels of Error.Msg.
const (
	KernErr     = 3
	KernWarning = 4
)

func (e *Error) Error() string {
	s := e.Msg
	switch {
	case s == "":
		s = e.Detail
	case e.Detail != "":
		s += " (" + e.Detail + ")"
	}
	if s == "" {
		return e.Errno.Error()
	}
	return s + ": " + e.Errno.Error()
}

// Unwrap lets errors.Is(err, syscall.EBADMSG) and friends match.
func (e *Error) Unwrap() error { return e.Errno }

// sigErr is a failure the kernel does not log; the text is kemu's.
func sigErr(errno syscall.Errno, format string, args ...any) error {
	return &Error{Errno: errno, Detail: fmt.Sprintf(format, args...)}
}

// logged is a failure the kernel logs with msg at level.
func logged(errno syscall.Errno, level int, msg string) error {
	return &Error{Errno: errno, Msg: msg, Level: level}
}

// Split separates a module file into the payload the signature covers and the signature.
//
// An unsigned module (no Marker) yields the whole input and a nil Signature: the kernel calls
// that ENODATA, "unsigned module", and decides by policy (sig_enforce) whether it may load.
// Otherwise the trailer is checked as mod_check_sig does: a signature longer than the file is
// EBADMSG; an id type other than PKCS#7 is ENOPKG ("module: not signed with expected PKCS#7
// message"), which the kernel treats like a missing key; any other non-zero field is EBADMSG. The
// PKCS#7 message must then parse (EBADMSG otherwise, as pkcs7_parse_message fails).
//
// On error the payload is what the kernel goes on with when policy lets the module load anyway
// (ENOPKG): the input without Marker when the trailer was refused, without the whole signature
// when the PKCS#7 message was.
func Split(data []byte) (payload []byte, sig *Signature, err error) {
	n := len(data)
	if n <= len(Marker) || string(data[n-len(Marker):]) != Marker {
		return data, nil, nil
	}
	modlen := n - len(Marker)
	stripped := data[:modlen]
	if modlen <= TrailerSize {
		return stripped, nil, sigErr(syscall.EBADMSG, "module: signature trailer truncated (%d bytes before marker)", modlen)
	}
	t, _, _ := ParseTrailer(data)
	if uint64(t.SigLen) >= uint64(modlen-TrailerSize) {
		return stripped, nil, sigErr(syscall.EBADMSG, "module: signature length %d exceeds module length %d", t.SigLen, modlen-TrailerSize)
	}
	if t.IDType != IDPKCS7 {
		return stripped, nil, logged(syscall.ENOPKG, KernErr, "module: not signed with expected PKCS#7 message")
	}
	if t.Algo != 0 || t.Hash != 0 || t.SignerLen != 0 || t.KeyIDLen != 0 || t.Pad != [3]uint8{} {
		return stripped, nil, logged(syscall.EBADMSG, KernErr, "module: PKCS#7 signature info has unexpected non-zero params")
	}
	end := modlen - TrailerSize
	start := end - int(t.SigLen)
	sig, err = ParseSignature(data[start:end])
	if err != nil {
		// mod_verify_sig has cut the signature off before it parses the message.
		return data[:start], nil, err
	}
	sig.Trailer = t
	return data[:start], sig, nil
}
