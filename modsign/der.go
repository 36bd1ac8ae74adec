package modsign

import (
	"encoding/asn1"
	"errors"
	"math/big"
)

// Strict DER walking. encoding/asn1 ignores elements left over at the end of a SEQUENCE it
// decodes into a struct, but the kernel's decoder and OpenSSL refuse them, and a signature one of
// them refuses must not look valid here; so the PKCS#7 structure is taken apart element by
// element.

// elements splits the contents of a constructed element into its elements, which must fill it.
func elements(content []byte) ([]asn1.RawValue, error) {
	var out []asn1.RawValue
	for len(content) > 0 {
		var v asn1.RawValue
		rest, err := asn1.Unmarshal(content, &v)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		content = rest
	}
	return out, nil
}

func isUniversal(v asn1.RawValue, tag int, compound bool) bool {
	return v.Class == asn1.ClassUniversal && v.Tag == tag && v.IsCompound == compound
}

func isContext(v asn1.RawValue, tag int, compound bool) bool {
	return v.Class == asn1.ClassContextSpecific && v.Tag == tag && v.IsCompound == compound
}

// oid decodes an OBJECT IDENTIFIER element.
func oid(v asn1.RawValue) (asn1.ObjectIdentifier, error) {
	var o asn1.ObjectIdentifier
	if !isUniversal(v, asn1.TagOID, false) {
		return nil, errors.New("not an OBJECT IDENTIFIER")
	}
	if _, err := asn1.Unmarshal(v.FullBytes, &o); err != nil {
		return nil, err
	}
	return o, nil
}

// integer decodes a small INTEGER element.
func integer(v asn1.RawValue) (int, error) {
	var n int
	if !isUniversal(v, asn1.TagInteger, false) {
		return 0, errors.New("not an INTEGER")
	}
	if _, err := asn1.Unmarshal(v.FullBytes, &n); err != nil {
		return 0, err
	}
	return n, nil
}

// algorithm decodes an AlgorithmIdentifier, SEQUENCE { algorithm OID, parameters ANY OPTIONAL },
// and returns its OID.
func algorithm(v asn1.RawValue) (asn1.ObjectIdentifier, error) {
	els, err := elements(v.Bytes)
	if err != nil || !isUniversal(v, asn1.TagSequence, true) || len(els) == 0 || len(els) > 2 {
		return nil, errors.New("not an AlgorithmIdentifier")
	}
	if len(els) == 2 && !validAny(els[1]) {
		return nil, errors.New("malformed algorithm parameters")
	}
	return oid(els[0])
}

// validAny checks the encoding of a value in an ANY field the way decoders that decode ANY
// (OpenSSL's does) check the universal types: SEQUENCE and SET constructed; NULL, BOOLEAN,
// INTEGER, ENUMERATED and OBJECT IDENTIFIER primitive, NULL empty, BOOLEAN one byte, INTEGER
// non-empty and minimal, OBJECT IDENTIFIER well-formed.
func validAny(v asn1.RawValue) bool {
	if v.Class != asn1.ClassUniversal {
		return true
	}
	switch v.Tag {
	case asn1.TagSequence, asn1.TagSet:
		return v.IsCompound
	case asn1.TagNull, asn1.TagBoolean, asn1.TagInteger, asn1.TagEnum, asn1.TagOID:
		if v.IsCompound {
			return false
		}
	}
	if v.IsCompound {
		return true
	}
	switch v.Tag {
	case asn1.TagNull:
		return len(v.Bytes) == 0
	case asn1.TagBoolean:
		return len(v.Bytes) == 1
	case asn1.TagInteger, asn1.TagEnum:
		var n *big.Int
		_, err := asn1.Unmarshal(append([]byte{asn1.TagInteger}, v.FullBytes[1:]...), &n)
		return err == nil
	case asn1.TagOID:
		_, err := oid(v)
		return err == nil
	}
	return true
}

// checkAlgorithmSet checks that der is a SET of AlgorithmIdentifiers.
func checkAlgorithmSet(der []byte) error {
	var set asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &set); err != nil || len(rest) != 0 || !isUniversal(set, asn1.TagSet, true) {
		return errors.New("not a SET")
	}
	els, err := elements(set.Bytes)
	if err != nil {
		return err
	}
	for _, e := range els {
		if _, err := algorithm(e); err != nil {
			return err
		}
	}
	return nil
}
