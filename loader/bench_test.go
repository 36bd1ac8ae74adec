package loader

import (
	"testing"
)

// BenchmarkLoadHello measures one complete load of the hello fixture into a fresh registry.
func BenchmarkLoadHello(b *testing.B) {
	img := fixture(b, "hello")
	p, err := defaultProfile()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		k, _ := NewKernel(Config{Profile: p})
		if _, err := k.Load(img, LoadOptions{Params: "count=1"}); err != nil {
			b.Fatal(err)
		}
	}
}
