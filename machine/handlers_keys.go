package machine

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"strings"
	"syscall"
)

// The kernel's key retention service (security/keys) as modules use it at init: a keyring of their
// own (keyring_alloc) filled with X.509 certificates compiled into them (key_create_or_update with
// type "asymmetric"), dropped with key_put at exit. cfg80211 does this for the regulatory
// database's signing keys and prints each key's description, so the description is the one
// x509_key_preparse proposes.
//
// A key is a struct key in guest memory (BTF layout) with its usage count, type and description; it
// is also a registration ("keyring" or "key"), so that a key a module never puts shows in
// Registrations. A key's registration names its keyring in IDs: the keyring's link holds one
// reference, dropped when the keyring goes.

func init() {
	register("keyring_alloc", hKeyringAlloc)
	register("key_create_or_update", hKeyCreateOrUpdate)
	register("key_put", hKeyPut)
}

const (
	keyKindKeyring = "keyring"
	keyKindKey     = "key"
	keyMaxDesc     = 4096 // key_create_or_update refuses longer descriptions (EINVAL in key_alloc's callers)
)

// keyring_alloc(description, uid, gid, cred, perm, flags, restrict_link, dest): a new empty keyring
// with one reference; ENOMEM when memory runs out.
func hKeyringAlloc(m *Machine, t *Trap) (uint64, error) {
	desc, err := m.ReadCString(t.Arg(0), keyMaxDesc)
	if err != nil {
		return 0, err
	}
	key, err := m.newKey(t, "key_type_keyring", desc, uint32(t.Arg(4)))
	if err != nil || key == 0 {
		return errPtr(syscall.ENOMEM), err
	}
	m.record(t, keyKindKeyring, desc, key, nil)
	return key, nil
}

// key_create_or_update(keyring_ref, type, description, payload, plen, perm, flags): a key of type
// made from payload and linked into the keyring, returned as a key_ref_t that carries the
// keyring reference's possession bit. Only the "asymmetric" type (X.509 certificates) is emulated;
// another type is ENODEV, as when its key type is not registered. A key with the same description
// already in the keyring is displaced (asymmetric keys have no update operation).
func hKeyCreateOrUpdate(m *Machine, t *Trap) (uint64, error) {
	ref := t.Arg(0)
	keyring := ref &^ 1
	if m.registered(keyKindKeyring, keyring, "") < 0 {
		return errPtr(syscall.ENOTDIR), nil // not a keyring (key_create_or_update's type check)
	}
	typ, err := m.ReadCString(t.Arg(1), 64)
	if err != nil {
		return 0, err
	}
	if typ != "asymmetric" {
		m.logf(levelWarning, "kemu: key type %q is not emulated", typ)
		return errPtr(syscall.ENODEV), nil
	}
	payload := make([]byte, min(t.Arg(4), 1<<20))
	if err := m.ReadAt(payload, t.Arg(3)); err != nil {
		return 0, err
	}
	desc, errno := x509KeyDescription(payload)
	if errno != 0 {
		return errPtr(errno), nil
	}
	if t.Arg(2) != 0 {
		given, err := m.ReadCString(t.Arg(2), keyMaxDesc)
		if err != nil {
			return 0, err
		}
		if given != "" {
			desc = given
		}
	}
	key, err := m.newKey(t, "key_type_asymmetric", desc, uint32(t.Arg(5)))
	if err != nil || key == 0 {
		return errPtr(syscall.ENOMEM), err
	}
	linkID := keyringLink(keyring)
	for _, r := range m.drivers().regs {
		if r.Kind == keyKindKey && r.Name == desc && len(r.IDs) == 1 && r.IDs[0] == linkID {
			if err := m.unlinkKey(t, r.addr); err != nil {
				return 0, err
			}
			break
		}
	}
	m.record(t, keyKindKey, desc, key, []string{linkID})
	if err := m.setKeyUsage(key, 2); err != nil { // the caller's reference and the keyring's link
		return 0, err
	}
	return key | ref&1, nil
}

// key_put(key): drops a reference; the last one frees the key, and a keyring's last one drops the
// links to its keys.
func hKeyPut(m *Machine, t *Trap) (uint64, error) {
	if t.Arg(0) == 0 {
		return 0, nil
	}
	return 0, m.putKey(t, t.Arg(0))
}

func keyringLink(keyring uint64) string { return fmt.Sprintf("keyring=%#x", keyring) }

// newKey allocates a struct key of the named key type (its kernel symbol) with one reference; 0
// when memory runs out.
func (m *Machine) newKey(t *Trap, typeSym, desc string, perm uint32) (uint64, error) {
	size, ok := m.structSize("key")
	if !ok {
		size = 256
	}
	key := m.kmalloc(size, t.caller(), gfpZero)
	if key == 0 {
		return 0, nil
	}
	descAddr, err := m.kmallocBytes(append([]byte(desc), 0), t.caller())
	if err != nil || descAddr == 0 {
		return 0, m.kfree(key, t.caller())
	}
	if sym, ok := m.prof.Lookup(typeSym); ok {
		m.setField("key", "type", key, 8, sym.Addr)
	}
	m.setField("key", "description", key, 8, descAddr)
	m.setField("key", "len_desc", key, 8, uint64(len(desc)))
	m.setField("key", "perm", key, 4, uint64(perm))
	return key, m.setKeyUsage(key, 1)
}

func (m *Machine) setKeyUsage(key uint64, n uint32) error {
	off, ok := m.fieldOffset("key", "usage")
	if !ok {
		return nil
	}
	return m.WriteU32(key+off, n)
}

// putKey drops one reference to key. A count already at zero is the kernel's refcount underflow
// warning, and the key is left alone (refcount_t saturates).
func (m *Machine) putKey(t *Trap, key uint64) error {
	off, ok := m.fieldOffset("key", "usage")
	if !ok {
		return nil
	}
	n, err := m.ReadU32(key + off)
	if err != nil {
		return err
	}
	if n == 0 {
		m.logf(levelWarning, "refcount_t: underflow; use-after-free.")
		return nil
	}
	if err := m.WriteU32(key+off, n-1); err != nil || n > 1 {
		return err
	}
	return m.destroyKey(t, key)
}

// destroyKey frees a key nobody references (the key garbage collector's work): a keyring first
// drops its links.
func (m *Machine) destroyKey(t *Trap, key uint64) error {
	if m.unrecord(keyKindKeyring, key) {
		linkID := keyringLink(key)
		for {
			i := -1
			for j, r := range m.drivers().regs {
				if r.Kind == keyKindKey && len(r.IDs) == 1 && r.IDs[0] == linkID {
					i = j
					break
				}
			}
			if i < 0 {
				break
			}
			if err := m.unlinkKey(t, m.drivers().regs[i].addr); err != nil {
				return err
			}
		}
	} else if !m.unrecord(keyKindKey, key) {
		return nil // not a key kemu made: its memory is not ours to free
	}
	if desc, err := m.readField("key", "description", key, 8); err == nil && desc != 0 {
		if err := m.kfree(desc, t.caller()); err != nil {
			return err
		}
	}
	return m.kfree(key, t.caller())
}

// unlinkKey removes key from its keyring, dropping the link's reference; a key still referenced
// elsewhere stays allocated but is no longer in any keyring.
func (m *Machine) unlinkKey(t *Trap, key uint64) error {
	i := m.registered(keyKindKey, key, "")
	if i < 0 {
		return nil
	}
	m.drivers().regs[i].IDs = nil
	return m.putKey(t, key)
}

// oidEmailAddress is PKCS#9 emailAddress, the third name component x509_fabricate_name considers.
var oidEmailAddress = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}

// x509KeyDescription is the description x509_key_preparse proposes for a certificate: its subject
// (x509KeySubject) then ": " and the hex of the subject key identifier, or of the serial number
// when there is none. EBADMSG when payload is not an X.509 certificate.
func x509KeyDescription(payload []byte) (string, syscall.Errno) {
	cert, err := x509.ParseCertificate(payload)
	if err != nil {
		return "", syscall.EBADMSG
	}
	id := cert.SubjectKeyId
	if len(id) == 0 {
		var serial asn1.RawValue // the raw INTEGER's content octets, as the kernel keeps them
		if _, err := asn1.Unmarshal(rawSerial(cert), &serial); err == nil {
			id = serial.Bytes
		} else {
			id = cert.SerialNumber.Bytes()
		}
	}
	return x509KeySubject(cert) + ": " + hex.EncodeToString(id), 0
}

// rawSerial is the DER of the certificate's serialNumber: TBSCertificate's first INTEGER after the
// optional [0] version.
func rawSerial(cert *x509.Certificate) []byte {
	var tbs asn1.RawValue
	if _, err := asn1.Unmarshal(cert.RawTBSCertificate, &tbs); err != nil {
		return nil
	}
	rest := tbs.Bytes
	for len(rest) > 0 {
		var v asn1.RawValue
		next, err := asn1.Unmarshal(rest, &v)
		if err != nil {
			return nil
		}
		if v.Class == asn1.ClassUniversal && v.Tag == asn1.TagInteger {
			return rest[:len(rest)-len(next)]
		}
		rest = next
	}
	return nil
}

// x509KeySubject is x509_fabricate_name's name for the subject: the CN alone when it starts with
// the O (or shares its first 7 characters with it), "O: CN" otherwise, else whichever of CN, O and
// email address there is (the last of each, as the parser keeps the last it meets).
func x509KeySubject(cert *x509.Certificate) string {
	var cn, o, email string
	for _, atv := range cert.Subject.Names {
		v, ok := atv.Value.(string)
		if !ok {
			continue
		}
		switch {
		case atv.Type.Equal(asn1.ObjectIdentifier{2, 5, 4, 3}):
			cn = v
		case atv.Type.Equal(asn1.ObjectIdentifier{2, 5, 4, 10}):
			o = v
		case atv.Type.Equal(oidEmailAddress):
			email = v
		}
	}
	switch {
	case cn != "" && o != "":
		if strings.HasPrefix(cn, o) || len(cn) >= 7 && len(o) >= 7 && cn[:7] == o[:7] {
			return cn
		}
		return o + ": " + cn
	case cn != "":
		return cn
	case o != "":
		return o
	}
	return email
}
