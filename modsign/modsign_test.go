package modsign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"math/big"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	fixtureModule  = "../testdata/modules/hello_signed.ko"
	fixtureCert    = "../testdata/keys/kemu-test-signing-cert.pem"
	fixtureCertDER = "../testdata/keys/kemu-test-signing-cert.der"
)

// testKey is a signing key with its self-signed certificate, as scripts/sign-file's keys are.
type testKey struct {
	cert *x509.Certificate
	key  crypto.Signer
}

var (
	rsaKeyOnce sync.Once
	rsaKey     testKey
)

// newTestKey makes a self-signed certificate for key with the given common name and serial.
func newTestKey(t *testing.T, key crypto.Signer, cn string, serial int64) testKey {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{Organization: []string{"kemu tests"}, CommonName: cn},
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Unix(1<<32, 0),
		SubjectKeyId: []byte{byte(serial), 0xAB, 0xCD, 0xEF},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return testKey{cert: cert, key: key}
}

func sharedRSAKey(t *testing.T) testKey {
	rsaKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
		rsaKey = newTestKey(t, k, "modsign test RSA key", 0x1234)
	})
	return rsaKey
}

func newECKey(t *testing.T, cn string, serial int64) testKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return newTestKey(t, k, cn, serial)
}

// detachedSignature signs payload the way scripts/sign-file does: PKCS#7 SignedData, detached,
// no authenticated attributes, signer by issuer and serial, rsaEncryption for RSA keys.
func detachedSignature(t *testing.T, k testKey, payload []byte) []byte {
	t.Helper()
	sd, err := pkcs7.NewSignedData(payload)
	require.NoError(t, err)
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if _, ok := k.key.(*rsa.PrivateKey); ok {
		sd.SetEncryptionAlgorithm(pkcs7.OIDEncryptionAlgorithmRSA)
	}
	require.NoError(t, sd.SignWithoutAttr(k.cert, k.key, pkcs7.SignerInfoConfig{}))
	sd.Detach()
	der, err := sd.Finish()
	require.NoError(t, err)
	return der
}

// appendSignature builds a signed module: payload, signature, struct module_signature, marker.
func appendSignature(payload, sig []byte, t Trailer) []byte {
	out := append([]byte{}, payload...)
	out = append(out, sig...)
	out = append(out, t.Algo, t.Hash, t.IDType, t.SignerLen, t.KeyIDLen, t.Pad[0], t.Pad[1], t.Pad[2])
	out = binary.BigEndian.AppendUint32(out, t.SigLen)
	return append(out, Marker...)
}

func TestSplit(t *testing.T) {
	k := newECKey(t, "split key", 7)
	payload := []byte("\x7fELF pretend module body")
	good := detachedSignature(t, k, payload)
	pkcs7Trailer := Trailer{IDType: IDPKCS7, SigLen: uint32(len(good))}
	with := func(mod func(*Trailer)) []byte {
		tr := pkcs7Trailer
		mod(&tr)
		return appendSignature(payload, good, tr)
	}

	tests := []struct {
		name     string
		data     []byte
		errno    syscall.Errno // 0: no error
		signed   bool
		wantBody []byte // default on error: the input without the marker
	}{
		{name: "unsigned", data: payload, wantBody: payload},
		{name: "marker alone is unsigned", data: []byte(Marker), wantBody: []byte(Marker)},
		{name: "good", data: appendSignature(payload, good, pkcs7Trailer), signed: true, wantBody: payload},
		{name: "no room for the trailer", data: append([]byte("0123456789ab"), Marker...), errno: syscall.EBADMSG},
		{name: "sig_len reaches the file start", data: with(func(tr *Trailer) { tr.SigLen = uint32(len(payload) + len(good)) }), errno: syscall.EBADMSG},
		{name: "sig_len huge", data: with(func(tr *Trailer) { tr.SigLen = 0xffffffff }), errno: syscall.EBADMSG},
		{name: "PGP id type", data: with(func(tr *Trailer) { tr.IDType = IDPGP }), errno: syscall.ENOPKG},
		{name: "X509 id type", data: with(func(tr *Trailer) { tr.IDType = IDX509 }), errno: syscall.ENOPKG},
		{name: "unknown id type", data: with(func(tr *Trailer) { tr.IDType = 9 }), errno: syscall.ENOPKG},
		{name: "non-zero algo", data: with(func(tr *Trailer) { tr.Algo = 1 }), errno: syscall.EBADMSG},
		{name: "non-zero hash", data: with(func(tr *Trailer) { tr.Hash = 4 }), errno: syscall.EBADMSG},
		{name: "non-zero signer_len", data: with(func(tr *Trailer) { tr.SignerLen = 3 }), errno: syscall.EBADMSG},
		{name: "non-zero key_id_len", data: with(func(tr *Trailer) { tr.KeyIDLen = 3 }), errno: syscall.EBADMSG},
		{name: "non-zero pad", data: with(func(tr *Trailer) { tr.Pad[2] = 1 }), errno: syscall.EBADMSG},
		{name: "sig_len too short: truncated PKCS#7", data: with(func(tr *Trailer) { tr.SigLen -= 10 }), errno: syscall.EBADMSG,
			wantBody: append(append([]byte{}, payload...), good[:10]...)},
		{name: "sig_len zero", data: with(func(tr *Trailer) { tr.SigLen = 0 }), errno: syscall.EBADMSG,
			wantBody: append(append([]byte{}, payload...), good...)},
		{name: "garbage PKCS#7", data: appendSignature(payload, []byte("not DER at all"), Trailer{IDType: IDPKCS7, SigLen: 14}), errno: syscall.EBADMSG, wantBody: payload},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, sig, err := Split(tc.data)
			if tc.errno != 0 {
				require.Error(t, err)
				assert.ErrorIs(t, err, tc.errno)
				assert.Nil(t, sig)
				want := tc.wantBody
				if want == nil {
					want = tc.data[:len(tc.data)-len(Marker)]
				}
				assert.Equal(t, want, body)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantBody, body)
			assert.Equal(t, tc.signed, sig != nil)
		})
	}
}

func TestSplitMessages(t *testing.T) {
	body := []byte("body of module")
	tests := []struct {
		name  string
		data  []byte
		msg   string
		level int
		text  string
	}{
		{"X509 id type", appendSignature(body, []byte("x"), Trailer{IDType: IDX509, SigLen: 1}),
			"module: not signed with expected PKCS#7 message", KernErr,
			"module: not signed with expected PKCS#7 message: package not installed"},
		{"non-zero algo", appendSignature(body, []byte("x"), Trailer{IDType: IDPKCS7, Algo: 1, SigLen: 1}),
			"module: PKCS#7 signature info has unexpected non-zero params", KernErr,
			"module: PKCS#7 signature info has unexpected non-zero params: bad message"},
		{"sig_len too long: the kernel logs nothing", appendSignature(body, nil, Trailer{IDType: IDPKCS7, SigLen: 100}),
			"", 0, "module: signature length 100 exceeds module length 14: bad message"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Split(tc.data)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tc.msg, e.Msg)
			assert.Equal(t, tc.level, e.Level)
			assert.EqualError(t, err, tc.text)
		})
	}
}

func TestParseSignatureRejects(t *testing.T) {
	k := sharedRSAKey(t)
	payload := []byte("payload")

	// sha256WithRSAEncryption where sign-file writes rsaEncryption: the kernel's
	// pkcs7_sig_note_pkey_algo does not know it.
	sd, err := pkcs7.NewSignedData(payload)
	require.NoError(t, err)
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	sd.SetEncryptionAlgorithm(pkcs7.OIDEncryptionAlgorithmRSASHA256)
	require.NoError(t, sd.SignWithoutAttr(k.cert, k.key, pkcs7.SignerInfoConfig{}))
	sd.Detach()
	withHashedAlgo, err := sd.Finish()
	require.NoError(t, err)

	notSigned, err := asn1.Marshal(struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue `asn1:"explicit,tag:0"`
	}{oidData, asn1.RawValue{Tag: asn1.TagOctetString, Bytes: []byte("data")}})
	require.NoError(t, err)

	good := detachedSignature(t, k, payload)
	tests := []struct {
		name  string
		der   []byte
		errno syscall.Errno
	}{
		{"empty", nil, syscall.EBADMSG},
		{"trailing bytes", append(append([]byte{}, good...), 0), syscall.EBADMSG},
		{"truncated", good[:len(good)-1], syscall.EBADMSG},
		{"not SignedData", notSigned, syscall.EINVAL},
		{"sha256WithRSAEncryption", withHashedAlgo, syscall.ENOPKG},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSignature(tc.der)
			assert.ErrorIs(t, err, tc.errno)
		})
	}
}

func TestAccessors(t *testing.T) {
	k := sharedRSAKey(t)
	payload := []byte("module bytes")
	der := detachedSignature(t, k, payload)
	_, sig, err := Split(appendSignature(payload, der, Trailer{IDType: IDPKCS7, SigLen: uint32(len(der))}))
	require.NoError(t, err)
	require.NotNil(t, sig)
	assert.Equal(t, "modsign test RSA key", sig.Signer())
	assert.Equal(t, []byte{0x12, 0x34}, sig.KeyID())
	assert.Equal(t, "sha256", sig.HashAlgo())
	assert.Len(t, sig.Bytes(), 256)
	assert.Equal(t, der, sig.Raw)
	assert.Equal(t, uint32(len(der)), sig.Trailer.SigLen)
}

func TestIssuerDisplayName(t *testing.T) {
	name := func(rdns pkix.RDNSequence) []byte {
		der, err := asn1.Marshal(rdns)
		require.NoError(t, err)
		return der
	}
	atv := func(oid asn1.ObjectIdentifier, v string) []pkix.AttributeTypeAndValue {
		return []pkix.AttributeTypeAndValue{{Type: oid, Value: v}}
	}
	org := asn1.ObjectIdentifier{2, 5, 4, 10}
	tests := []struct {
		name string
		der  []byte
		want string
	}{
		{"CN after O", name(pkix.RDNSequence{atv(org, "Org"), atv(oidCommonName, "Key CN")}), "Key CN"},
		{"first CN wins", name(pkix.RDNSequence{atv(oidCommonName, "one"), atv(oidCommonName, "two")}), "one"},
		{"no CN: last attribute", name(pkix.RDNSequence{atv(org, "Org A"), atv(asn1.ObjectIdentifier{2, 5, 4, 6}, "DE")}), "DE"},
		{"empty name", name(pkix.RDNSequence{}), ""},
		{"NUL cuts", name(pkix.RDNSequence{atv(oidCommonName, "ab\x00cd")}), "ab"},
		{"not DER", []byte{0x30, 0x05}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, issuerDisplayName(tc.der))
		})
	}
}

func TestVerify(t *testing.T) {
	rsaK := sharedRSAKey(t)
	ecK := newECKey(t, "EC signer", 99)
	other := newECKey(t, "someone else", 5)
	sameSerialOtherKey := newECKey(t, "EC signer", 99) // same issuer and serial, different key
	payload := []byte("\x7fELF the module that was signed")
	tampered := append([]byte{}, payload...)
	tampered[5] ^= 1

	tests := []struct {
		name    string
		signer  testKey
		payload []byte
		certs   []*x509.Certificate
		errno   syscall.Errno
	}{
		{"RSA good", rsaK, payload, []*x509.Certificate{other.cert, rsaK.cert}, 0},
		{"ECDSA good", ecK, payload, []*x509.Certificate{ecK.cert}, 0},
		{"no certificates", rsaK, payload, nil, syscall.ENOKEY},
		{"wrong certificate", rsaK, payload, []*x509.Certificate{other.cert}, syscall.ENOKEY},
		{"tampered payload RSA", rsaK, tampered, []*x509.Certificate{rsaK.cert}, syscall.EKEYREJECTED},
		{"tampered payload ECDSA", ecK, tampered, []*x509.Certificate{ecK.cert}, syscall.EKEYREJECTED},
		{"matching ids, other key", ecK, payload, []*x509.Certificate{sameSerialOtherKey.cert}, syscall.EKEYREJECTED},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			der := detachedSignature(t, tc.signer, payload)
			sig, err := ParseSignature(der)
			require.NoError(t, err)
			err = sig.Verify(tc.payload, tc.certs)
			if tc.errno == 0 {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tc.errno)
		})
	}
}

func TestVerifyRejectsMessageShape(t *testing.T) {
	k := newECKey(t, "shape", 3)
	payload := []byte("module")

	// Content left attached.
	sd, err := pkcs7.NewSignedData(payload)
	require.NoError(t, err)
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	require.NoError(t, sd.SignWithoutAttr(k.cert, k.key, pkcs7.SignerInfoConfig{}))
	attached, err := sd.Finish()
	require.NoError(t, err)

	// Authenticated attributes (what plain `openssl smime -sign` adds without -noattr).
	sd, err = pkcs7.NewSignedData(payload)
	require.NoError(t, err)
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	require.NoError(t, sd.AddSigner(k.cert, k.key, pkcs7.SignerInfoConfig{}))
	sd.Detach()
	withAttrs, err := sd.Finish()
	require.NoError(t, err)

	tests := []struct {
		name  string
		der   []byte
		errno syscall.Errno
		msg   string // the kernel's log line
	}{
		{"non-detached", attached, syscall.EBADMSG, "PKCS#7 signature with non-detached data"},
		{"authenticated attributes", withAttrs, syscall.EKEYREJECTED, "PKCS7: Invalid module sig (has authattrs)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sig, err := ParseSignature(tc.der)
			require.NoError(t, err)
			err = sig.Verify(payload, []*x509.Certificate{k.cert})
			assert.ErrorIs(t, err, tc.errno)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tc.msg, e.Msg)
		})
	}
}

func TestVerifyBySubjectKeyID(t *testing.T) {
	k := newECKey(t, "skid signer", 42)
	payload := []byte("module by skid")
	h := crypto.SHA256.New()
	h.Write(payload)
	sigBytes, err := k.key.Sign(rand.Reader, h.Sum(nil), crypto.SHA256)
	require.NoError(t, err)
	sig := &Signature{
		dataType: oidData,
		Signers: []Signer{{
			SubjectKeyID: k.cert.SubjectKeyId,
			DigestOID:    asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1},
			PubKeyOID:    asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2},
			Sig:          sigBytes,
		}},
	}
	assert.NoError(t, sig.Verify(payload, []*x509.Certificate{k.cert}))
	assert.Equal(t, k.cert.SubjectKeyId, sig.KeyID())
	assert.Equal(t, "", sig.Signer())
	assert.ErrorIs(t, sig.Verify(payload, []*x509.Certificate{newECKey(t, "x", 1).cert}), syscall.ENOKEY)
}

func TestFixtureModule(t *testing.T) {
	data, err := os.ReadFile(fixtureModule)
	if os.IsNotExist(err) {
		t.Skip("fixture module not built")
	}
	require.NoError(t, err)
	certs, err := LoadCerts(fixtureCert)
	require.NoError(t, err)
	require.Len(t, certs, 1)
	derCerts, err := LoadCerts(fixtureCertDER)
	require.NoError(t, err)
	require.Len(t, derCerts, 1)
	assert.Equal(t, certs[0].Raw, derCerts[0].Raw)

	payload, sig, err := Split(data)
	require.NoError(t, err)
	require.NotNil(t, sig)
	assert.Equal(t, "kemu test-only module signing key", sig.Signer())
	assert.Equal(t, certs[0].SerialNumber.Bytes(), sig.KeyID())
	assert.Equal(t, "sha256", sig.HashAlgo())

	assert.NoError(t, sig.Verify(payload, certs), "the fixture verifies with its certificate")
	assert.ErrorIs(t, sig.Verify(payload, []*x509.Certificate{newECKey(t, "stranger", 1).cert}), syscall.ENOKEY)
	tampered := append([]byte{}, payload...)
	tampered[len(tampered)/2] ^= 0x40
	assert.ErrorIs(t, sig.Verify(tampered, certs), syscall.EKEYREJECTED)
}

func TestLoadCertsErrors(t *testing.T) {
	_, err := LoadCerts("/nonexistent/cert.pem")
	assert.ErrorIs(t, err, os.ErrNotExist)
	dir := t.TempDir()
	bad := dir + "/bad.pem"
	require.NoError(t, os.WriteFile(bad, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o644))
	_, err = LoadCerts(bad)
	assert.Error(t, err)
	garbage := dir + "/garbage.der"
	require.NoError(t, os.WriteFile(garbage, []byte{0x30, 0x03, 0x01}, 0o644))
	_, err = LoadCerts(garbage)
	assert.Error(t, err)
}

func TestDecodeSignatureIsLenient(t *testing.T) {
	k := sharedRSAKey(t)
	der := detachedSignature(t, k, []byte("payload"))
	withTail := append(append([]byte{}, der...), 0, 0, 0)

	_, err := ParseSignature(withTail)
	assert.ErrorIs(t, err, syscall.EBADMSG, "the kernel rejects trailing bytes")
	sig, err := DecodeSignature(withTail)
	require.NoError(t, err, "OpenSSL's d2i_PKCS7, and so kmod, ignores them")
	assert.Equal(t, der, sig.Raw)
	assert.Equal(t, "modsign test RSA key", sig.Signer())

	_, err = DecodeSignature([]byte{0x30, 0x80})
	assert.ErrorIs(t, err, syscall.EBADMSG)

	empty := &Signature{}
	assert.Equal(t, "", empty.Signer())
	assert.Nil(t, empty.KeyID())
	assert.Equal(t, "", empty.HashAlgo())
	assert.Nil(t, empty.Bytes())
}

// FuzzSplit: whatever the trailer and message hold, Split and the accessors return, never panic.
func FuzzSplit(f *testing.F) {
	if data, err := os.ReadFile(fixtureModule); err == nil {
		f.Add(data[len(data)-2000:])
	}
	f.Add(appendSignature([]byte("payload"), []byte{0x30, 0x03, 0x06, 0x01, 0x00}, Trailer{IDType: IDPKCS7, SigLen: 5}))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, sig, err := Split(data)
		if err == nil && sig != nil {
			_, _, _, _ = sig.Signer(), sig.KeyID(), sig.HashAlgo(), sig.Bytes()
			_ = sig.Verify(data, nil)
		}
		if s, err := DecodeSignature(data); err == nil {
			_, _ = s.Signer(), s.KeyID()
		}
	})
}

func TestKernelCerts(t *testing.T) {
	a, b := sharedRSAKey(t), newECKey(t, "second key", 77)
	junk := []byte("\x30\x82\x01\x00\x30\x82 not a certificate at all\x30\x82")
	image := append(append([]byte{}, junk...), a.cert.Raw...)
	image = append(image, b.cert.Raw...) // back to back, as in system_certificate_list
	image = append(image, junk...)
	image = append(image, a.cert.Raw...) // a duplicate is reported once
	image = append(image, a.cert.Raw[:100]...)
	certs := KernelCerts(image)
	require.Len(t, certs, 2)
	assert.Equal(t, a.cert.Raw, certs[0].Raw)
	assert.Equal(t, b.cert.Raw, certs[1].Raw)
	assert.Empty(t, KernelCerts(nil))
	assert.Empty(t, KernelCerts(a.cert.Raw[:len(a.cert.Raw)-1]))
}

// BenchmarkSplitVerify measures taking the signed fixture apart and verifying it (SHA-256 over
// the module, one RSA-2048 verification).
func BenchmarkSplitVerify(b *testing.B) {
	data, err := os.ReadFile(fixtureModule)
	if err != nil {
		b.Skip("fixture module not built")
	}
	certs, err := LoadCerts(fixtureCert)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		payload, sig, err := Split(data)
		if err != nil || sig == nil {
			b.Fatal(err)
		}
		if err := sig.Verify(payload, certs); err != nil {
			b.Fatal(err)
		}
	}
}

func TestValidString(t *testing.T) {
	raw := func(tag int, compound bool, b string) asn1.RawValue {
		return asn1.RawValue{Class: asn1.ClassUniversal, Tag: tag, IsCompound: compound, Bytes: []byte(b)}
	}
	tests := []struct {
		name string
		v    asn1.RawValue
		want bool
	}{
		{"UTF8String", raw(asn1.TagUTF8String, false, "kemü"), true},
		{"UTF8String invalid", raw(asn1.TagUTF8String, false, "ke\xffmu"), false},
		{"PrintableString", raw(asn1.TagPrintableString, false, "kemu"), true},
		{"IA5String with high bytes", raw(asn1.TagIA5String, false, "k\xe9mu"), true},
		{"BMPString even", raw(asn1.TagBMPString, false, "\x00k\x00e"), true},
		{"BMPString odd", raw(asn1.TagBMPString, false, "\x00k\x00"), false},
		{"OCTET STRING", raw(asn1.TagOctetString, false, "kemu"), false},
		{"UTCTime", raw(asn1.TagUTCTime, false, "kemu"), false},
		{"constructed UTF8String", raw(asn1.TagUTF8String, true, "kemu"), false},
		{"SEQUENCE", raw(asn1.TagSequence, true, "kemu"), true},
		{"context class", asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, Bytes: []byte("x")}, false},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, validString(tc.v), tc.name)
	}
}
