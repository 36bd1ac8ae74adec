package modsign

import (
	"encoding/asn1"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// derCases are DER elements, well-formed and not, for comparing the zero-copy walk with
// encoding/asn1.
var derCases = [][]byte{
	nil,
	{0x30},                                     // no length
	{0x30, 0x00},                               // empty SEQUENCE
	{0x30, 0x03, 0x02, 0x01, 0x05},             // SEQUENCE { INTEGER 5 }
	{0x30, 0x03, 0x02, 0x01},                   // contents truncated
	{0x04, 0x02, 'h', 'i', 0xff},               // trailing byte: rest
	{0x30, 0x80, 0x00, 0x00},                   // indefinite length
	{0x04, 0x81, 0x05, 1, 2, 3, 4, 5},          // long form for a short length
	{0x04, 0x82, 0x00, 0x80},                   // superfluous leading zero
	{0x04, 0x81, 0x80},                         // long form, contents missing
	{0x04, 0x84, 0x7f, 0xff, 0xff, 0xff},       // huge length
	{0x04, 0x85, 0x01, 0x00, 0x00, 0x00, 0x00}, // length too large
	{0x1f, 0x1e, 0x00},                         // high tag form for a low tag
	{0x1f, 0x80, 0x01, 0x00},                   // high tag not minimal
	{0x1f, 0x81},                               // high tag truncated
	{0x1f, 0x81, 0x00, 0x00},                   // tag 128
	{0xbf, 0x8f, 0xff, 0xff, 0xff, 0x7f, 0x00}, // tag too large (5 bytes)
	{0x9f, 0x87, 0xff, 0xff, 0xff, 0x7f, 0x00}, // tag 2^31-1... in 5 bytes
	{0x9f, 0x88, 0x80, 0x80, 0x80, 0x00, 0x00}, // tag 2^31
	{0xa0, 0x03, 0x02, 0x01, 0x01},             // [0] EXPLICIT
	{0x80, 0x00},                               // [0] IMPLICIT primitive, empty
	{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02}, // signedData OID
}

// TestParseElementMatchesAsn1: parseElement accepts, refuses and splits exactly as asn1.Unmarshal
// into a RawValue does, with the same errors, on hand-made cases and random mutations of them.
func TestParseElementMatchesAsn1(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	inputs := append([][]byte{}, derCases...)
	for _, c := range derCases {
		for i := 0; i < 200 && len(c) > 0; i++ {
			m := append([]byte{}, c...)
			m[rng.IntN(len(m))] = byte(rng.IntN(256))
			inputs = append(inputs, m[:rng.IntN(len(m)+1)], m)
		}
	}
	for _, in := range inputs {
		checkParseElement(t, in)
	}
}

func checkParseElement(t *testing.T, in []byte) {
	var want asn1.RawValue
	wantRest, wantErr := asn1.Unmarshal(in, &want)
	got, rest, err := parseElement(in)
	if wantErr != nil {
		require.EqualError(t, err, wantErr.Error(), "% x", in)
		return
	}
	require.NoError(t, err, "% x", in)
	require.Equal(t, want, got, "% x", in)
	require.Equal(t, wantRest, rest, "% x", in)
}

// FuzzParseElement compares parseElement with encoding/asn1 on any input.
func FuzzParseElement(f *testing.F) {
	for _, c := range derCases {
		f.Add(c)
	}
	f.Fuzz(checkParseElement)
}

// TestIntegerMatchesAsn1: integer decodes and refuses INTEGERs as asn1.Unmarshal into an int does.
func TestIntegerMatchesAsn1(t *testing.T) {
	for _, contents := range [][]byte{
		{}, {0}, {1}, {0x7f}, {0x80}, {0xff}, {0x00, 0x80}, {0x00, 0x7f}, {0xff, 0x7f}, {0xff, 0x80},
		{0x01, 0x00}, {0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0x80, 0, 0, 0, 0, 0, 0, 0},
		{0x01, 0, 0, 0, 0, 0, 0, 0, 0}, {0xfe, 0xdc, 0xba},
	} {
		full := append([]byte{asn1.TagInteger, byte(len(contents))}, contents...)
		var want int
		_, wantErr := asn1.Unmarshal(full, &want)
		v, _, err := parseElement(full)
		require.NoError(t, err)
		got, err := integer(v)
		if wantErr != nil {
			require.EqualError(t, err, wantErr.Error(), "% x", contents)
			continue
		}
		require.NoError(t, err, "% x", contents)
		require.Equal(t, want, got, "% x", contents)
	}
	_, err := integer(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagOctetString, Bytes: []byte{1}})
	require.Error(t, err, "not an INTEGER")
}

// TestDERSignedData: the encoding decode compares content types with is signedData's.
func TestDERSignedData(t *testing.T) {
	der, err := asn1.Marshal(oidSignedData)
	require.NoError(t, err)
	require.Equal(t, der, derSignedData)
}

// TestBigIntegerMatchesAsn1: serial numbers decode, and are refused, as asn1.Unmarshal into a
// *big.Int has them.
func TestBigIntegerMatchesAsn1(t *testing.T) {
	for _, full := range [][]byte{
		{0x02, 0x01, 0x00}, {0x02, 0x01, 0x7f}, {0x02, 0x01, 0x80}, {0x02, 0x01, 0xff},
		{0x02, 0x02, 0x00, 0x80}, {0x02, 0x02, 0xff, 0x7f}, {0x02, 0x02, 0x00, 0x7f}, {0x02, 0x02, 0xff, 0x80},
		{0x02, 0x00}, {0x02, 0x03, 0x80, 0x00, 0x00}, {0x02, 0x03, 0x01, 0x00, 0x01},
		append([]byte{0x02, 20, 0x5b}, make([]byte, 19)...), append([]byte{0x02, 20, 0xa5}, make([]byte, 19)...),
		{0x04, 0x01, 0x01}, {0x22, 0x03, 0x02, 0x01, 0x01}, {0x82, 0x01, 0x01},
	} {
		var want *big.Int
		_, wantErr := asn1.Unmarshal(full, &want)
		v, _, err := parseElement(full)
		require.NoError(t, err)
		got, err := bigInteger(v)
		if wantErr != nil {
			require.Error(t, err, "% x", full)
			continue
		}
		require.NoError(t, err, "% x", full)
		require.Zero(t, want.Cmp(got), "% x: %v, want %v", full, got, want)
	}
}

// TestOIDMatchesAsn1: known and unknown OIDs decode as asn1.Unmarshal decodes them, and the
// known ones are copies the caller may change.
func TestOIDMatchesAsn1(t *testing.T) {
	for _, o := range []asn1.ObjectIdentifier{oidData, oidSignedData, digestAlgos[4].oid, pkeyAlgos[0].oid, {1, 2, 3, 4, 5, 6}} {
		der, err := asn1.Marshal(o)
		require.NoError(t, err)
		v, _, err := parseElement(der)
		require.NoError(t, err)
		got, err := oid(v)
		require.NoError(t, err)
		require.Equal(t, o, got)
		got[0] = 99
		require.NotEqual(t, 99, o[0])
	}
	for _, bad := range [][]byte{{0x06, 0x00}, {0x06, 0x01, 0x80}, {0x04, 0x01, 0x2a}} {
		v, _, err := parseElement(bad)
		require.NoError(t, err)
		_, err = oid(v)
		require.Error(t, err, "% x", bad)
	}
	require.Len(t, knownOIDs, 3+len(digestAlgos)+len(pkeyAlgos))
}
