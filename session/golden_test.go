package session

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// update regenerates testdata/sessions/*.out from the scripts: go test ./session -run Golden -update.
// Review the diff against the kernel's and kmod's real formats before committing it.
var update = flag.Bool("update", false, "rewrite the golden session transcripts")

const sessionsDir = "../testdata/sessions"

// TestGolden runs every session script on a fresh machine and compares its transcript with the
// golden one next to it, and, where a NAME.leaks.json stands beside the script, the allocations the
// behaviour report says were still held at the end of the session (what the module leaked).
func TestGolden(t *testing.T) {
	scripts, err := filepath.Glob(filepath.Join(sessionsDir, "*.kemu"))
	require.NoError(t, err)
	require.NotEmpty(t, scripts)
	for _, script := range scripts {
		name := strings.TrimSuffix(filepath.Base(script), ".kemu")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(script)
			require.NoError(t, err)
			s := newTestSession(t)
			var out bytes.Buffer
			_, err = s.Script(bytes.NewReader(in), &out, false)
			require.NoError(t, err)
			golden := strings.TrimSuffix(script, ".kemu") + ".out"
			if *update {
				require.NoError(t, os.WriteFile(golden, out.Bytes(), 0o644))
				leaksGolden := strings.TrimSuffix(script, ".kemu") + ".leaks.json"
				if _, err := os.Stat(leaksGolden); err == nil {
					b, err := json.MarshalIndent(s.Report().Leaks, "", "  ")
					require.NoError(t, err)
					require.NoError(t, os.WriteFile(leaksGolden, append(b, '\n'), 0o644))
				}
				return
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "no golden transcript: run go test ./session -run Golden -update and review it")
			require.Equal(t, string(want), out.String())

			leaksGolden := strings.TrimSuffix(script, ".kemu") + ".leaks.json"
			wantLeaks, err := os.ReadFile(leaksGolden)
			if os.IsNotExist(err) {
				return
			}
			require.NoError(t, err)
			var leaks []Leak
			require.NoError(t, json.Unmarshal(wantLeaks, &leaks))
			require.Equal(t, leaks, s.Report().Leaks, "allocations held at the end of the session")
		})
	}
}
