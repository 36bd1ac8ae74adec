// Package modinfo reads what kmod's modinfo shows about a kernel module file and prints it
// byte for byte as kmod 30 does, as Debian bookworm ships it (30+20221128: zstd, xz and OpenSSL,
// no zlib, and the upstream fix that hides signatures with a digest kmod cannot name).
//
// The pipeline mirrors libkmod: ReadModule opens and decompresses the file, Entries lists the
// .modinfo strings followed by the signature fields, and Format prints them the way
// tools/modinfo.c does, merging parm and parmtype. Main is the whole command, options and error
// messages included, so the kemu CLI stays a thin wrapper.
package modinfo

import (
	"slices"
	"strings"

	"kemu/modsign"
)

// Entry is one key/value pair in the order kmod lists it.
type Entry struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Entries lists a module's information from its (decompressed) contents: every string of the
// .modinfo section, split at the first '=' (a string without one is a key with an empty value),
// then, when the file carries a signature kmod can read, sig_id, signer, sig_key, sig_hashalgo and
// signature. A file that is not a usable ELF object is ENOEXEC or EINVAL, one without .modinfo
// ENOENT, as libkmod reports them.
func Entries(data []byte) ([]Entry, error) {
	f, err := parseELF(data)
	if err != nil {
		return nil, err
	}
	sec, err := f.sectionData(".modinfo")
	if err != nil {
		return nil, err
	}
	var entries []Entry
	for _, s := range splitStrings(sec) {
		key, value, _ := strings.Cut(s, "=")
		entries = append(entries, Entry{Key: key, Value: value})
	}
	return append(entries, signatureEntries(data)...), nil
}

// Names of enum pkey_algo, hash_algo and pkey_id_type as libkmod prints them, by index. kmod
// ignores a signature whose trailer indexes past these tables.
var (
	pkeyAlgoNames = []string{"DSA", "RSA"}
	hashAlgoNames = []string{"md4", "md5", "sha1", "rmd160", "sha256", "sha384", "sha512", "sha224", "sm3"}
	idTypeNames   = []string{"PGP", "X509", "PKCS#7"}
)

// signatureEntries applies libkmod's kmod_module_signature_info, which is laxer than the kernel:
// the trailer only has to index known algorithms and leave room for signer, key id and a non-empty
// signature. PKCS#7 details come from the message (the issuer's name and serial of the first
// signer, its digest and signature); a message OpenSSL cannot read, which includes signers named
// by subjectKeyIdentifier, shows no signature at all. Legacy id types take signer, key id and
// signature from the bytes before the trailer. A PKCS#7 digest outside kmod's table (streebog,
// say) hides the signature, as in the kmod snapshot Debian ships (commit d5950b0 on top of v30).
func signatureEntries(data []byte) []Entry {
	t, rest, ok := modsign.ParseTrailer(data)
	if !ok || int(t.Algo) >= len(pkeyAlgoNames) || int(t.Hash) >= len(hashAlgoNames) || int(t.IDType) >= len(idTypeNames) {
		return nil
	}
	if t.SigLen == 0 || uint64(len(rest)) < uint64(t.SignerLen)+uint64(t.KeyIDLen)+uint64(t.SigLen) {
		return nil
	}
	sigStart := len(rest) - int(t.SigLen)
	var signer, hashAlgo string
	var keyID, sig []byte
	if t.IDType == modsign.IDPKCS7 {
		s, err := modsign.DecodeSignature(rest[sigStart:])
		if err != nil || len(s.Signers) == 0 || s.Signers[0].Serial == nil {
			return nil
		}
		signer, keyID, sig, hashAlgo = s.Signer(), s.KeyID(), s.Bytes(), s.HashAlgo()
		if !slices.Contains(hashAlgoNames, hashAlgo) {
			return nil // a digest kmod has no name for: Debian's kmod shows no signature
		}
	} else {
		keyStart := sigStart - int(t.KeyIDLen)
		signerStart := keyStart - int(t.SignerLen)
		sig, keyID = rest[sigStart:], rest[keyStart:sigStart]
		signer = cString(rest[signerStart:keyStart])
		hashAlgo = hashAlgoNames[t.Hash]
	}
	return []Entry{
		{"sig_id", idTypeNames[t.IDType]},
		{"signer", signer},
		{"sig_key", hexBlock(keyID)},
		{"sig_hashalgo", hashAlgo},
		{"signature", hexBlock(sig)},
	}
}

// hexBlock formats bytes as kmod does: upper-case hex pairs joined by ':', with a line break and
// two tabs after every 20th byte that is not the last.
func hexBlock(b []byte) string {
	const digits = "0123456789ABCDEF"
	out := make([]byte, 0, len(b)*3+len(b)/20*3)
	for i, c := range b {
		out = append(out, digits[c>>4], digits[c&0xF])
		if i < len(b)-1 {
			out = append(out, ':')
			if (i+1)%20 == 0 {
				out = append(out, "\n\t\t"...)
			}
		}
	}
	return string(out)
}

// cString cuts b at its first NUL, as C code printing it with %s would.
func cString(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}
