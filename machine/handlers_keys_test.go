package machine

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// selfSigned is a DER certificate with the given subject, subject key identifier and serial.
func selfSigned(t *testing.T, subject pkix.Name, skid []byte, serial int64) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: subject, SubjectKeyId: skid,
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<32, 0),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return der
}

func TestX509KeyDescription(t *testing.T) {
	email := func(v string) pkix.AttributeTypeAndValue {
		return pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: v}
	}
	tests := []struct {
		name    string
		subject pkix.Name
		skid    []byte
		serial  int64
		want    string
	}{
		{"CN only, skid", pkix.Name{CommonName: "wens"}, []byte{0x61, 0xc0}, 1, "wens: 61c0"},
		{"O prefixes CN", pkix.Name{CommonName: "Debian Secure Boot CA", Organization: []string{"Debian"}},
			[]byte{1}, 1, "Debian Secure Boot CA: 01"},
		{"first 7 shared", pkix.Name{CommonName: "Example signing", Organization: []string{"Example Corp"}},
			[]byte{2}, 1, "Example signing: 02"},
		{"O and CN combined", pkix.Name{CommonName: "kernel key", Organization: []string{"Acme"}},
			[]byte{3}, 1, "Acme: kernel key: 03"},
		{"O only", pkix.Name{Organization: []string{"Acme"}}, []byte{4}, 1, "Acme: 04"},
		{"email only", pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{email("benh@debian.org")}},
			[]byte{5}, 1, "benh@debian.org: 05"},
		// Go adds a skid only for CA certificates, so a leaf without one falls back to the serial,
		// with the DER sign byte the kernel keeps: 0x80 is encoded 00 80.
		{"serial when no skid", pkix.Name{CommonName: "sforshee"}, nil, 0x80, "sforshee: 0080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			desc, errno := x509KeyDescription(selfSigned(t, tt.subject, tt.skid, tt.serial))
			require.Zero(t, errno)
			assert.Equal(t, tt.want, desc)
		})
	}
	_, errno := x509KeyDescription([]byte("not a certificate"))
	assert.Equal(t, syscall.EBADMSG, errno)
}

// A keyring with two certificates, as cfg80211's regulatory_init makes it: the returned key_ref
// keeps the possession bit, the description is x509_key_preparse's, and the last key_put of the
// keyring frees every key whose only reference was the keyring's link.
func TestKeyringLifecycle(t *testing.T) {
	m, a := bootArena(t)
	keyring := call(t, m, hKeyringAlloc, a.str(".builtin_regdb_keys"), 0, 0, 0, 0x3f0b0000, 2, 0, 0)
	require.LessOrEqual(t, keyring, ^uint64(4095), "keyring_alloc returned an error")
	descOff, ok := m.fieldOffset("key", "description")
	require.True(t, ok)

	certs := [][]byte{
		selfSigned(t, pkix.Name{CommonName: "wens"}, []byte{0x61, 0xc0}, 1),
		selfSigned(t, pkix.Name{CommonName: "sforshee"}, []byte{0xb2}, 2),
	}
	asym := a.str("asymmetric")
	var keys []uint64
	for _, der := range certs {
		payload := a.alloc(uint64(len(der)))
		require.NoError(t, m.WriteAt(der, payload))
		ref := call(t, m, hKeyCreateOrUpdate, keyring|1, asym, 0, payload, uint64(len(der)), 0x3f010000, 2)
		require.Equal(t, uint64(1), ref&1, "possession bit carried over")
		keys = append(keys, ref&^1)
	}
	desc, err := m.ReadU64(keys[0] + descOff)
	require.NoError(t, err)
	s, err := m.ReadCString(desc, 64)
	require.NoError(t, err)
	assert.Equal(t, "wens: 61c0", s)

	assert.Equal(t, errPtr(syscall.ENODEV), call(t, m, hKeyCreateOrUpdate, keyring, a.str("user"), 0, 0, 0, 0, 0))
	assert.Equal(t, errPtr(syscall.ENOTDIR), call(t, m, hKeyCreateOrUpdate, keys[0], asym, 0, 0, 0, 0, 0))
	junk := a.str("junk")
	assert.Equal(t, errPtr(syscall.EBADMSG), call(t, m, hKeyCreateOrUpdate, keyring, asym, 0, junk, 4, 0, 0))

	// The module drops its references (key_ref_put); the keyring's links keep the keys.
	for _, k := range keys {
		call(t, m, hKeyPut, k)
	}
	assert.Len(t, kinds(m.Registrations(), keyKindKey), 2)
	call(t, m, hKeyPut, keyring)
	assert.Empty(t, kinds(m.Registrations(), keyKindKey))
	assert.Empty(t, kinds(m.Registrations(), keyKindKeyring))
	call(t, m, hKeyPut, 0) // key_put(NULL) is allowed
}
