package modsign

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"math"
	"math/big"
	"slices"
)

// Strict DER walking. encoding/asn1 ignores elements left over at the end of a SEQUENCE it
// decodes into a struct, but the kernel's decoder and OpenSSL refuse them, and a signature one of
// them refuses must not look valid here; so the PKCS#7 structure is taken apart element by
// element.
//
// The walk is zero-copy: every element is a view of the input (asn1.RawValue), read by
// parseElement rather than by asn1.Unmarshal, whose reflection costs more than the rest of a
// module's signature check; callers collect a constructed element's parts into arrays on their
// stack. parseElement accepts, refuses and reports exactly what asn1.Unmarshal into a RawValue
// does (the tests compare them), so the strictness is encoding/asn1's DER rules either way.

// parseElement reads the DER element at the start of b, as asn1.Unmarshal(b, &RawValue) does:
// identifier (high tag numbers included, minimally encoded and fitting an int32), definite
// minimal length, contents inside b; with the same errors. rest is what follows the element.
func parseElement(b []byte) (v asn1.RawValue, rest []byte, err error) {
	if len(b) == 0 {
		return v, nil, asn1.SyntaxError{Msg: "sequence truncated"}
	}
	v.Class, v.IsCompound, v.Tag = int(b[0]>>6), b[0]&0x20 != 0, int(b[0]&0x1f)
	off := 1
	if v.Tag == 0x1f { // the tag number follows in base 128
		tag, n := 0, 0
		for {
			if off == len(b) {
				return v, nil, asn1.SyntaxError{Msg: "truncated base 128 integer"}
			}
			if n == 5 {
				return v, nil, asn1.StructuralError{Msg: "base 128 integer too large"}
			}
			c := b[off]
			if n == 0 && c == 0x80 {
				return v, nil, asn1.SyntaxError{Msg: "integer is not minimally encoded"}
			}
			tag = tag<<7 | int(c&0x7f)
			off, n = off+1, n+1
			if c&0x80 == 0 {
				break
			}
		}
		if tag > math.MaxInt32 {
			return v, nil, asn1.StructuralError{Msg: "base 128 integer too large"}
		}
		if tag < 0x1f {
			return v, nil, asn1.SyntaxError{Msg: "non-minimal tag"}
		}
		v.Tag = tag
	}
	if off == len(b) {
		return v, nil, asn1.SyntaxError{Msg: "truncated tag or length"}
	}
	length := int(b[off])
	off++
	if length&0x80 != 0 { // long form: the low bits count the length bytes that follow
		n := length & 0x7f
		if n == 0 {
			return v, nil, asn1.SyntaxError{Msg: "indefinite length found (not DER)"}
		}
		length = 0
		for i := 0; i < n; i++ {
			if off == len(b) {
				return v, nil, asn1.SyntaxError{Msg: "truncated tag or length"}
			}
			if length >= 1<<23 {
				return v, nil, asn1.StructuralError{Msg: "length too large"}
			}
			length = length<<8 | int(b[off])
			off++
			if length == 0 {
				return v, nil, asn1.StructuralError{Msg: "superfluous leading zeros in length"}
			}
		}
		if length < 0x80 {
			return v, nil, asn1.StructuralError{Msg: "non-minimal length"}
		}
	}
	if length > len(b)-off {
		return v, nil, asn1.SyntaxError{Msg: "data truncated"}
	}
	end := off + length
	v.Bytes, v.FullBytes = b[off:end:end], b[:end:end]
	return v, b[end:], nil
}

// elements splits the contents of a constructed element into its elements, which must fill it,
// appending them to buf (callers pass an array on their stack, sized for what they expect).
func elements(content []byte, buf []asn1.RawValue) ([]asn1.RawValue, error) {
	for len(content) > 0 {
		v, rest, err := parseElement(content)
		if err != nil {
			return nil, err
		}
		buf = append(buf, v)
		content = rest
	}
	return buf, nil
}

func isUniversal(v asn1.RawValue, tag int, compound bool) bool {
	return v.Class == asn1.ClassUniversal && v.Tag == tag && v.IsCompound == compound
}

func isContext(v asn1.RawValue, tag int, compound bool) bool {
	return v.Class == asn1.ClassContextSpecific && v.Tag == tag && v.IsCompound == compound
}

// knownOID is the DER encoding of an OBJECT IDENTIFIER module signatures use.
type knownOID struct {
	der []byte
	oid asn1.ObjectIdentifier
}

// knownOIDs are the content types and algorithms of module signatures, which oid() recognises by
// their encoding. DER encodes an OID one way only, so equal encodings are equal OIDs.
var knownOIDs = func() []knownOID {
	list := []asn1.ObjectIdentifier{oidData, oidSignedData, oidMSIndirect}
	for _, d := range digestAlgos {
		list = append(list, d.oid)
	}
	for _, p := range pkeyAlgos {
		list = append(list, p.oid)
	}
	var out []knownOID
	for _, o := range list {
		if der, err := asn1.Marshal(o); err == nil {
			out = append(out, knownOID{der, o})
		}
	}
	return out
}()

// oid decodes an OBJECT IDENTIFIER element. The ones module signatures use are recognised by
// their encoding, without asn1.Unmarshal's reflection; the result is the caller's own copy.
func oid(v asn1.RawValue) (asn1.ObjectIdentifier, error) {
	if !isUniversal(v, asn1.TagOID, false) {
		return nil, errors.New("not an OBJECT IDENTIFIER")
	}
	for _, k := range knownOIDs {
		if bytes.Equal(v.FullBytes, k.der) {
			return slices.Clone(k.oid), nil
		}
	}
	var o asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(v.FullBytes, &o); err != nil {
		return nil, err
	}
	return o, nil
}

// checkInteger applies DER's rules for INTEGER contents as encoding/asn1 does, with its errors:
// not empty, minimal two's complement.
func checkInteger(b []byte) error {
	switch {
	case len(b) == 0:
		return asn1.StructuralError{Msg: "empty integer"}
	case len(b) > 1 && (b[0] == 0 && b[1]&0x80 == 0 || b[0] == 0xff && b[1]&0x80 != 0):
		return asn1.StructuralError{Msg: "integer not minimally-encoded"}
	}
	return nil
}

// bigInteger decodes an INTEGER element of any size, as asn1.Unmarshal does into a *big.Int.
func bigInteger(v asn1.RawValue) (*big.Int, error) {
	if !isUniversal(v, asn1.TagInteger, false) {
		return nil, errors.New("not an INTEGER")
	}
	if err := checkInteger(v.Bytes); err != nil {
		return nil, err
	}
	n := new(big.Int).SetBytes(v.Bytes)
	if v.Bytes[0]&0x80 != 0 { // negative: the bytes are n + 2^(8*len) in two's complement
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(v.Bytes))))
	}
	return n, nil
}

// integer decodes a small INTEGER element with asn1.Unmarshal's rules for an int: minimal
// two's complement, at most 8 bytes.
func integer(v asn1.RawValue) (int, error) {
	if !isUniversal(v, asn1.TagInteger, false) {
		return 0, errors.New("not an INTEGER")
	}
	b := v.Bytes
	if err := checkInteger(b); err != nil {
		return 0, err
	}
	if len(b) > 8 {
		return 0, asn1.StructuralError{Msg: "integer too large"}
	}
	n := int64(int8(b[0])) // sign-extended
	for _, c := range b[1:] {
		n = n<<8 | int64(c)
	}
	return int(n), nil
}

// algorithm decodes an AlgorithmIdentifier, SEQUENCE { algorithm OID, parameters ANY OPTIONAL },
// and returns its OID.
func algorithm(v asn1.RawValue) (asn1.ObjectIdentifier, error) {
	var buf [2]asn1.RawValue
	els, err := elements(v.Bytes, buf[:0])
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
	els, err := elements(set.Bytes, nil)
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
