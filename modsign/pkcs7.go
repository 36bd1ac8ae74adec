package modsign

import (
	"bytes"
	"crypto"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"syscall"

	_ "crypto/md5" // digests a module signature may name; registered for crypto.Hash.New
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// Object identifiers of the PKCS#7 and algorithm names module signatures use.
var (
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidMSIndirect    = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 4}
	oidCommonName    = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidRSAEncryption = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}

	// derSignedData is oidSignedData's DER encoding, which every module signature begins with.
	derSignedData = []byte{asn1.TagOID, 9, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02}
)

// digestAlgos maps digest OIDs to the names kmod and the kernel use, and to a Go hash where one
// exists. The kernel knows more digests than Go implements (md4, sm3, streebog): those parse,
// and verifying with them is ENOPKG, as on a kernel built without them.
var digestAlgos = []struct {
	oid  asn1.ObjectIdentifier
	name string
	hash crypto.Hash
}{
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 4}, "md4", 0},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}, "md5", crypto.MD5},
	{asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}, "sha1", crypto.SHA1},
	{asn1.ObjectIdentifier{1, 3, 36, 3, 2, 1}, "rmd160", 0},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}, "sha256", crypto.SHA256},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}, "sha384", crypto.SHA384},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}, "sha512", crypto.SHA512},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 4}, "sha224", crypto.SHA224},
	{asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 401}, "sm3", 0},
	{asn1.ObjectIdentifier{1, 2, 643, 7, 1, 1, 2, 2}, "streebog256", 0},
	{asn1.ObjectIdentifier{1, 2, 643, 7, 1, 1, 2, 3}, "streebog512", 0},
}

// pkeyAlgos are the signature algorithms pkcs7_sig_note_pkey_algo accepts, by family.
var pkeyAlgos = []struct {
	oid    asn1.ObjectIdentifier
	family string
}{
	{oidRSAEncryption, "rsa"},
	{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 1}, "ecdsa"},    // ecdsa-with-SHA1
	{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 1}, "ecdsa"}, // ecdsa-with-SHA224
	{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}, "ecdsa"}, // ecdsa-with-SHA256
	{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}, "ecdsa"}, // ecdsa-with-SHA384
	{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}, "ecdsa"}, // ecdsa-with-SHA512
	{asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 501}, "sm2"},
	{asn1.ObjectIdentifier{1, 2, 643, 7, 1, 1, 1, 1}, "ecrdsa"},
	{asn1.ObjectIdentifier{1, 2, 643, 7, 1, 1, 1, 2}, "ecrdsa"},
}

// Signature is a parsed module signature: the trailer and the PKCS#7 SignedData it describes.
// The accessors describe the first signer, which is what kmod's modinfo shows; Verify considers
// every signer, as the kernel does.
type Signature struct {
	Trailer Trailer  // the struct module_signature (zero when parsed by ParseSignature alone)
	Raw     []byte   // the PKCS#7 message, DER
	Signers []Signer // at least one, unless from DecodeSignature
	// version is the SignedData version, dataType the inner content type, hasContent whether the
	// content is embedded rather than detached.
	version    int
	dataType   asn1.ObjectIdentifier
	hasContent bool
	// digestAlgos is the raw digestAlgorithms SET, checked only by DecodeSignature.
	digestAlgos []byte
}

// Signer is one SignerInfo of the message.
type Signer struct {
	Version      int      // SignerInfo version: 1 names the signer by issuer and serial, 3 by key id
	Issuer       []byte   // DER Name from IssuerAndSerialNumber; nil when identified by SubjectKeyID
	Serial       *big.Int // serial number from IssuerAndSerialNumber; nil with SubjectKeyID
	SubjectKeyID []byte   // subjectKeyIdentifier (CMS version 3 signers); nil with Issuer/Serial
	DigestOID    asn1.ObjectIdentifier
	PubKeyOID    asn1.ObjectIdentifier
	HasAuthAttrs bool   // authenticated attributes present (the kernel rejects them for modules)
	Sig          []byte // the encrypted digest: the signature proper
}

// ParseSignature parses a PKCS#7 SignedData message as pkcs7_parse_message does for a module:
// structural errors are EBADMSG, an unsupported version or data type EINVAL, an unknown digest or
// public-key algorithm ENOPKG.
func ParseSignature(der []byte) (*Signature, error) {
	sig, rest, err := decode(der)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, sigErr(syscall.EBADMSG, "PKCS#7: %d bytes of trailing data", len(rest))
	}
	if sig.version != 1 && sig.version != 3 {
		return nil, withDetail(logged(syscall.EINVAL, KernWarning, "PKCS7: Unsupported SignedData version"), "version %d", sig.version)
	}
	if !sig.dataType.Equal(oidData) && !sig.dataType.Equal(oidMSIndirect) {
		return nil, sigErr(syscall.EINVAL, "PKCS#7: unsupported data type %v", sig.dataType)
	}
	if len(sig.Signers) == 0 {
		return nil, sigErr(syscall.EBADMSG, "PKCS#7: no signer info")
	}
	for i, s := range sig.Signers {
		if err := s.check(sig.version); err != nil {
			return nil, fmt.Errorf("PKCS#7 signer %d: %w", i, err)
		}
	}
	return sig, nil
}

// DecodeSignature decodes the structure of a PKCS#7 SignedData message without the kernel's
// policy checks, the way a display tool (kmod's modinfo, through OpenSSL's d2i_PKCS7) reads it:
// bytes after the message are ignored, any version and algorithm is accepted, and a message may
// have no signers; but the digest algorithm set and signer names must decode, as OpenSSL decodes
// them. Use ParseSignature for anything that decides whether a module loads.
func DecodeSignature(der []byte) (*Signature, error) {
	sig, _, err := decode(der)
	if err != nil {
		return nil, err
	}
	if err := checkAlgorithmSet(sig.digestAlgos); err != nil {
		return nil, sigErr(syscall.EBADMSG, "PKCS#7 digestAlgorithms: %v", err)
	}
	for i, s := range sig.Signers {
		if s.Issuer == nil {
			continue
		}
		if _, err := parseName(s.Issuer); err != nil {
			return nil, sigErr(syscall.EBADMSG, "PKCS#7 signer %d issuer: %v", i, err)
		}
	}
	return sig, nil
}

// withDetail adds kemu's account to a logged error.
func withDetail(err error, format string, args ...any) error {
	if e, ok := err.(*Error); ok {
		e.Detail = fmt.Sprintf(format, args...)
	}
	return err
}

// decode walks ContentInfo{SignedData} and its signer infos (RFC 2315, RFC 5652) strictly: every
// SEQUENCE must hold exactly the elements the grammar allows, as both the kernel's ASN.1 decoder
// and OpenSSL insist. Only bytes after the whole message are returned rather than refused.
// Errors are EBADMSG or, for a content type other than SignedData, EINVAL.
func decode(der []byte) (*Signature, []byte, error) {
	bad := func(format string, args ...any) (*Signature, []byte, error) {
		return nil, nil, sigErr(syscall.EBADMSG, "PKCS#7: "+format, args...)
	}
	top, rest, err := parseElement(der)
	if err != nil || !isUniversal(top, asn1.TagSequence, true) {
		return bad("not a DER SEQUENCE")
	}
	var ciBuf [2]asn1.RawValue
	ci, err := elements(top.Bytes, ciBuf[:0])
	if err != nil || len(ci) != 2 {
		return bad("ContentInfo is not {contentType, content}")
	}
	if !bytes.Equal(ci[0].FullBytes, derSignedData) { // else it is signedData, with no OID to decode
		contentType, err := oid(ci[0])
		if err != nil {
			return bad("contentType: %v", err)
		}
		if !contentType.Equal(oidSignedData) {
			return nil, nil, withDetail(logged(syscall.EINVAL, KernWarning, "PKCS7: Only support pkcs7_signedData type"), "content type %v", contentType)
		}
	}
	var explicitBuf [1]asn1.RawValue
	explicit, err := elements(ci[1].Bytes, explicitBuf[:0])
	if err != nil || !isContext(ci[1], 0, true) || len(explicit) != 1 || !isUniversal(explicit[0], asn1.TagSequence, true) {
		return bad("content is not [0] EXPLICIT SignedData")
	}
	var sdBuf [6]asn1.RawValue // version, digestAlgorithms, contentInfo, certificates, crls, signerInfos
	sd, err := elements(explicit[0].Bytes, sdBuf[:0])
	if err != nil {
		return bad("SignedData: %v", err)
	}

	sig := &Signature{Raw: der[:len(der)-len(rest)]}
	next := func() (asn1.RawValue, bool) {
		if len(sd) == 0 {
			return asn1.RawValue{}, false
		}
		v := sd[0]
		sd = sd[1:]
		return v, true
	}
	v, _ := next()
	if sig.version, err = integer(v); err != nil {
		return bad("SignedData version: %v", err)
	}
	v, _ = next()
	if !isUniversal(v, asn1.TagSet, true) && !isUniversal(v, asn1.TagSequence, true) {
		return bad("digestAlgorithms is not a SET")
	}
	sig.digestAlgos = v.FullBytes
	v, _ = next()
	if sig.dataType, sig.hasContent, err = innerContentInfo(v); err != nil {
		return bad("contentInfo: %v", err)
	}
	v, ok := next()
	if ok && isContext(v, 0, true) { // certificates
		v, ok = next()
	}
	if ok && isContext(v, 1, true) { // crls
		v, ok = next()
	}
	if !ok || !isUniversal(v, asn1.TagSet, true) || len(sd) != 0 {
		return bad("SignedData does not end with the signerInfos SET")
	}
	var infoBuf [1]asn1.RawValue // modules have one signer
	infos, err := elements(v.Bytes, infoBuf[:0])
	if err != nil {
		return bad("signerInfos: %v", err)
	}
	for i, info := range infos {
		s, err := decodeSigner(info)
		if err != nil {
			return nil, nil, fmt.Errorf("PKCS#7 signer %d: %w", i, err)
		}
		sig.Signers = append(sig.Signers, s)
	}
	return sig, rest, nil
}

// innerContentInfo decodes the SignedData's ContentInfo: its type and whether content is embedded.
func innerContentInfo(v asn1.RawValue) (asn1.ObjectIdentifier, bool, error) {
	var buf [2]asn1.RawValue
	els, err := elements(v.Bytes, buf[:0])
	if err != nil || !isUniversal(v, asn1.TagSequence, true) || len(els) == 0 || len(els) > 2 {
		return nil, false, errors.New("not {contentType, [0] content}")
	}
	t, err := oid(els[0])
	if err != nil {
		return nil, false, err
	}
	if len(els) == 2 && !isContext(els[1], 0, true) {
		return nil, false, errors.New("content is not [0] EXPLICIT")
	}
	return t, len(els) == 2, nil
}

// decodeSigner decodes one SignerInfo: version, signer identifier (IssuerAndSerialNumber, or the
// subjectKeyIdentifier as [0] IMPLICIT OCTET STRING), digest algorithm, optional authenticated
// attributes, signature algorithm, signature, optional unauthenticated attributes.
func decodeSigner(info asn1.RawValue) (Signer, error) {
	var s Signer
	bad := func(what string) (Signer, error) { return s, sigErr(syscall.EBADMSG, "%s", what) }
	var buf [7]asn1.RawValue // the SignerInfo fields, both optional ones included
	els, err := elements(info.Bytes, buf[:0])
	if err != nil || !isUniversal(info, asn1.TagSequence, true) || len(els) < 5 {
		return bad("SignerInfo is not a SEQUENCE of its fields")
	}
	if s.Version, err = integer(els[0]); err != nil {
		return bad("bad SignerInfo version")
	}
	switch sid := els[1]; {
	case isContext(sid, 0, false):
		s.SubjectKeyID = sid.Bytes
	case isUniversal(sid, asn1.TagSequence, true):
		var iasBuf [2]asn1.RawValue
		ias, err := elements(sid.Bytes, iasBuf[:0])
		if err != nil || len(ias) != 2 || !isUniversal(ias[0], asn1.TagSequence, true) {
			return bad("bad IssuerAndSerialNumber")
		}
		s.Issuer = ias[0].FullBytes
		if s.Serial, err = bigInteger(ias[1]); err != nil {
			return bad("bad serial number")
		}
	default:
		return bad("bad signer identifier")
	}
	if s.DigestOID, err = algorithm(els[2]); err != nil {
		return bad("bad digestAlgorithm")
	}
	i := 3
	if isContext(els[i], 0, true) {
		s.HasAuthAttrs = true
		i++
	}
	if i+2 > len(els) {
		return bad("SignerInfo ends early")
	}
	if s.PubKeyOID, err = algorithm(els[i]); err != nil {
		return bad("bad digestEncryptionAlgorithm")
	}
	if !isUniversal(els[i+1], asn1.TagOctetString, false) {
		return bad("encryptedDigest is not an OCTET STRING")
	}
	s.Sig = els[i+1].Bytes
	i += 2
	if i < len(els) && isContext(els[i], 1, true) {
		i++
	}
	if i != len(els) {
		return bad("SignerInfo has trailing fields")
	}
	return s, nil
}

// check applies pkcs7_note_signerinfo_version and the algorithm checks of the kernel's parser.
func (s Signer) check(sdVersion int) error {
	switch s.Version {
	case 1:
		if sdVersion != 1 {
			return logged(syscall.EBADMSG, KernWarning, "PKCS7: SignedData-SignerInfo version mismatch")
		}
		if s.Serial == nil {
			return sigErr(syscall.EBADMSG, "version 1 signer without issuer and serial number")
		}
	case 3:
		if sdVersion == 1 {
			return logged(syscall.EBADMSG, KernWarning, "PKCS7: SignedData-SignerInfo version mismatch")
		}
		if s.SubjectKeyID == nil {
			return sigErr(syscall.EBADMSG, "version 3 signer without subjectKeyIdentifier")
		}
	default:
		return withDetail(logged(syscall.EINVAL, KernWarning, "PKCS7: Unsupported SignerInfo version"), "version %d", s.Version)
	}
	if digestName(s.DigestOID) == "" {
		return sigErr(syscall.ENOPKG, "unsupported digest algo %v", s.DigestOID)
	}
	if pkeyFamily(s.PubKeyOID) == "" {
		return sigErr(syscall.ENOPKG, "unsupported pkey algo %v", s.PubKeyOID)
	}
	return nil
}

func digestName(oid asn1.ObjectIdentifier) string {
	for _, d := range digestAlgos {
		if d.oid.Equal(oid) {
			return d.name
		}
	}
	return ""
}

func digestHash(oid asn1.ObjectIdentifier) crypto.Hash {
	for _, d := range digestAlgos {
		if d.oid.Equal(oid) {
			return d.hash
		}
	}
	return 0
}

func pkeyFamily(oid asn1.ObjectIdentifier) string {
	for _, p := range pkeyAlgos {
		if p.oid.Equal(oid) {
			return p.family
		}
	}
	return ""
}

// first returns the first signer, or a zero Signer for a message without any (only
// DecodeSignature lets those through).
func (s *Signature) first() Signer {
	if len(s.Signers) == 0 {
		return Signer{}
	}
	return s.Signers[0]
}

// Signer returns the first signer's name as kmod prints it: the raw value of the first
// commonName in the issuer, or of the last attribute when there is no commonName, cut at the
// first NUL (kmod takes the bytes as a C string). Module signing keys are self-signed, so the
// issuer is the signing certificate's subject. Empty for a subjectKeyIdentifier signer.
func (s *Signature) Signer() string { return issuerDisplayName(s.first().Issuer) }

// KeyID returns the first signer's key identifier: the serial number's magnitude, big-endian,
// without leading zero bytes (what kmod prints as sig_key), or the subjectKeyIdentifier.
func (s *Signature) KeyID() []byte {
	if f := s.first(); f.Serial != nil {
		return new(big.Int).Abs(f.Serial).Bytes()
	}
	return s.first().SubjectKeyID
}

// HashAlgo returns the first signer's digest name as kmod and the kernel spell it ("sha256"), or
// "" for a digest neither knows.
func (s *Signature) HashAlgo() string { return digestName(s.first().DigestOID) }

// Bytes returns the first signer's signature value.
func (s *Signature) Bytes() []byte { return s.first().Sig }
