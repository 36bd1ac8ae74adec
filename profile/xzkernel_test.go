package profile

import (
	"bytes"
	"math/rand/v2"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// codeLike returns bytes with the patterns the x86 BCJ filter acts on: CALL/JMP opcodes followed
// by near displacements (top byte 0x00 or 0xFF), E8/E9 bytes close together, and random filler.
func codeLike(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	out := append(make([]byte, 0, n), "\x7fELF"...)
	for len(out) < n {
		switch r.IntN(6) {
		case 0:
			out = append(out, 0xe8, byte(r.Uint32()), byte(r.Uint32()), byte(r.IntN(3)), 0x00)
		case 1:
			out = append(out, 0xe9, byte(r.Uint32()), byte(r.Uint32()), 0xff, 0xff)
		case 2:
			out = append(out, 0xe8, 0xe8, 0xe9, 0x00, 0xff, 0xe8)
		case 3:
			out = append(out, 0xe8, byte(r.Uint32()), 0x12, 0x34, 0x56) // not a near displacement
		default:
			for range r.IntN(16) {
				out = append(out, byte(r.Uint32()))
			}
		}
	}
	return out[:n]
}

func xzCompress(t *testing.T, data []byte, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("xz (xz-utils) not installed")
	}
	cmd := exec.Command("xz", append([]string{"--format=xz", "--stdout"}, args...)...)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	require.NoError(t, err, "xz %v", args)
	return out
}

func TestDecompressKernelXZ(t *testing.T) {
	data := codeLike(100_000)
	tests := []struct {
		name string
		args []string
	}{
		{"kernel settings: x86 BCJ, LZMA2, CRC32", []string{"--check=crc32", "--x86", "--lzma2=preset=6,dict=64KiB"}},
		{"BCJ with a start offset", []string{"--check=crc32", "--x86=start=4096", "--lzma2=dict=64KiB"}},
		{"CRC64", []string{"--check=crc64", "--x86", "--lzma2=dict=64KiB"}},
		{"SHA-256", []string{"--check=sha256", "--x86", "--lzma2=dict=64KiB"}},
		{"no check, no BCJ", []string{"--check=none", "--lzma2=dict=64KiB"}},
		{"several blocks", []string{"--check=crc32", "--x86", "--lzma2=dict=64KiB", "--block-size=32768"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := xzCompress(t, data, tt.args...)
			got, err := decompressKernelXZ(append(stream, "trailing bzImage bytes"...))
			require.NoError(t, err)
			assert.True(t, bytes.Equal(data, got), "decompressed bytes differ from the input")
		})
	}
}

func TestDecompressKernelXZDetectsCorruption(t *testing.T) {
	stream := xzCompress(t, codeLike(50_000), "--check=crc32", "--x86", "--lzma2=dict=64KiB")
	for _, off := range []int{3, 8, 13, len(stream) / 2, len(stream) - 40} {
		bad := bytes.Clone(stream)
		bad[off] ^= 0x40
		assert.NotPanics(t, func() {
			_, err := decompressKernelXZ(bad)
			assert.Error(t, err, "corruption at %d", off)
		})
	}
	for n := 0; n < len(stream); n += len(stream)/40 + 1 {
		assert.NotPanics(t, func() { _, _ = decompressKernelXZ(stream[:n]) })
	}
	_, err := decompressKernelXZ([]byte("not xz"))
	assert.ErrorContains(t, err, "no xz stream header")
}

func TestExtractVmlinux(t *testing.T) {
	vmlinux := codeLike(100_000)
	stream := xzCompress(t, vmlinux, "--check=crc32", "--x86", "--lzma2=dict=64KiB")
	setup := make([]byte, 0x4000)
	copy(setup[0x202:], "HdrS")
	copy(setup[0x1000:], xzMagic) // a stray magic in the setup code must not stop the search
	bz := append(append(setup, stream...), make([]byte, 512)...)

	got, err := ExtractVmlinux(bz)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(vmlinux, got))

	_, err = ExtractVmlinux(stream)
	assert.ErrorContains(t, err, "not a bzImage")
	_, err = ExtractVmlinux(setup)
	assert.ErrorContains(t, err, "no xz payload decompresses to ELF")
	gz := append(bytes.Clone(setup[:0x1000]), 0x1f, 0x8b, 8, 0)
	_, err = ExtractVmlinux(gz)
	assert.ErrorContains(t, err, "only xz kernels are supported")
}
