package profile

import (
	"bytes"
	"fmt"
	"sync"

	"kemu"
)

var defaultProfile = sync.OnceValues(func() (*Profile, error) {
	if len(kemu.DefaultProfile) == 0 {
		return nil, fmt.Errorf("default profile: kemu was built without an embedded profile")
	}
	p, err := Read(bytes.NewReader(kemu.DefaultProfile))
	if err != nil {
		return nil, fmt.Errorf("default profile: %w", err)
	}
	return p, nil
})

// Default returns the profile embedded in kemu (Debian's 6.1.0-56-amd64, see
// testdata/profile/README.md), decoded on first use. Every caller shares the one Profile.
func Default() (*Profile, error) { return defaultProfile() }
