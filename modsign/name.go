package modsign

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Distinguished names, as far as a signer's display name needs them: decoded as strictly as
// OpenSSL does (kmod shows no signature whose issuer OpenSSL refuses), and the attribute kmod
// picks to show.

// nameEntry is one AttributeTypeAndValue of a distinguished name.
type nameEntry struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// parseName decodes an RDNSequence (SEQUENCE OF SET OF AttributeTypeAndValue) strictly, the way
// OpenSSL's X509_NAME decoder does: every RDN a SET, every entry an OID and a value, and string
// values valid for their type (UTF-8 for UTF8String, whole code units for BMPString and
// UniversalString), since OpenSSL converts them all to UTF-8 while decoding.
func parseName(der []byte) ([]nameEntry, error) {
	var name asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &name); err != nil || len(rest) != 0 || !isUniversal(name, asn1.TagSequence, true) {
		return nil, errors.New("malformed name")
	}
	rdns, err := elements(name.Bytes, nil)
	if err != nil {
		return nil, err
	}
	var entries []nameEntry
	for _, rdn := range rdns {
		atvs, err := elements(rdn.Bytes, nil)
		if err != nil || !isUniversal(rdn, asn1.TagSet, true) {
			return nil, errors.New("name component is not a SET")
		}
		for _, atv := range atvs {
			fields, err := elements(atv.Bytes, nil)
			if err != nil || !isUniversal(atv, asn1.TagSequence, true) || len(fields) != 2 {
				return nil, errors.New("name attribute is not {type, value}")
			}
			t, err := oid(fields[0])
			if err != nil {
				return nil, fmt.Errorf("name attribute type: %w", err)
			}
			if !validString(fields[1]) {
				return nil, fmt.Errorf("name attribute %v: invalid string", t)
			}
			entries = append(entries, nameEntry{Type: t, Value: fields[1]})
		}
	}
	return entries, nil
}

// validString reports whether OpenSSL's X509_NAME decoder takes an attribute value. The value is
// an ASN1_PRINTABLE multi-string: universal class, primitive, and a tag from its set (the
// string types plus tags OpenSSL calls unknown), or a SEQUENCE kept as raw bytes; and the
// string types it canonicalises must convert to UTF-8. The set was checked against Debian's
// kmod/OpenSSL one tag at a time.
func validString(v asn1.RawValue) bool {
	if v.Class != asn1.ClassUniversal {
		return false
	}
	if v.IsCompound {
		return v.Tag == asn1.TagSequence
	}
	switch v.Tag {
	case asn1.TagUTF8String:
		return utf8.Valid(v.Bytes)
	case asn1.TagBMPString:
		return len(v.Bytes)%2 == 0
	case 7, 8, 9, 11, 13, 14, 15, 29, // tags OpenSSL maps to "unknown"
		asn1.TagNumericString, asn1.TagPrintableString, asn1.TagT61String, asn1.TagIA5String:
		return true
	}
	return false
}

// issuerDisplayName picks the name kmod's x509_name_to_str shows: the first commonName, or the
// last attribute when there is none, as raw bytes cut at the first NUL.
func issuerDisplayName(name []byte) string {
	entries, err := parseName(name)
	if err != nil || len(entries) == 0 {
		return ""
	}
	for _, e := range entries {
		if e.Type.Equal(oidCommonName) {
			return cString(e.Value.Bytes)
		}
	}
	return cString(entries[len(entries)-1].Value.Bytes)
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
