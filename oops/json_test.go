package oops

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReportJSON(t *testing.T) {
	r := parseFile(t, "null4.txt")[0]
	NewSymbolizer().Symbolize(r)
	data, err := json.Marshal(r)
	require.NoError(t, err)

	var raw map[string]any
	require.NoError(t, json.Unmarshal(data, &raw))
	assert.Equal(t, "0x8", raw["fault_address"], "addresses are hex strings, exact past 2^53")
	assert.Equal(t, "0xffffffffa0123045", raw["rip"].(map[string]any)["address"])
	assert.Equal(t, "0xffffc90000c23e68", raw["registers"].(map[string]any)["RSP"])
	assert.Equal(t, "hello_write", raw["rip"].(map[string]any)["symbol"])
	assert.EqualValues(t, 0x15, raw["rip"].(map[string]any)["offset"], "offsets stay numbers")
	dis := raw["disassembly"].([]any)
	assert.Regexp(t, `^0xffffffffa01230`, dis[0].(map[string]any)["address"])

	var back Report
	require.NoError(t, json.Unmarshal(data, &back))
	r.Lines = nil // not marshalled
	assert.Equal(t, *r, back, "JSON round-trips")
}
