package printk

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestIPv6CompressedAgreesWithNetip checks %pI6c against Go's RFC 5952
// formatting on addresses with many zero groups. The two differ only for
// ISATAP addresses, which the kernel ends with a dotted quad.
func TestIPv6CompressedAgreesWithNetip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var a [16]byte
		for g := range 8 {
			switch rng.IntN(3) {
			case 0: // zero group
			case 1:
				binary.BigEndian.PutUint16(a[2*g:], uint16(rng.IntN(16)))
			default:
				binary.BigEndian.PutUint16(a[2*g:], uint16(rng.Uint32()))
			}
		}
		if binary.BigEndian.Uint32(a[8:])|0x02000000 == 0x02005efe {
			continue // ISATAP
		}
		want := netip.AddrFrom16(a).String()
		if !assert.Equal(t, want, string(ip6Compressed(nil, a)), "% x", a) {
			return
		}
	}
}

func TestIPv4AgreesWithNetip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], rng.Uint32())
		assert.Equal(t, netip.AddrFrom4(a).String(), string(ip4String(nil, a, false, 'n')))
	}
}
