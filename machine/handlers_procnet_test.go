package machine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// proc_net_mkdir(&init_net, "atm", init_net.proc_net) on a machine whose init_net has no
// directory yet: /proc/net appears, init_net.proc_net points at it, and the module's later
// remove_proc_entry("atm", init_net.proc_net) finds the entry.
func TestProcNet(t *testing.T) {
	m, a := bootArena(t)
	net, ok := m.prof.Lookup("init_net")
	require.True(t, ok)
	procNet := func() uint64 {
		v, err := m.readField("net", "proc_net", net.Addr, 8)
		require.NoError(t, err)
		return v
	}
	require.Zero(t, procNet(), "no /proc/net at boot")

	tree := &m.files().proc
	atm := call(t, m, handlers["_proc_mkdir"], a.str("atm"), 0o555, 0, 0, 0)
	require.NotZero(t, atm)
	dir := procNet()
	require.NotZero(t, dir)
	assert.Equal(t, "net/atm", tree.path(tree.byAddr(atm)))
	stat, err := m.readField("net", "proc_net_stat", net.Addr, 8)
	require.NoError(t, err)
	require.NotZero(t, stat, "init_net.proc_net_stat")
	assert.Equal(t, "net/stat", tree.path(tree.byAddr(stat)))
	ctStat := call(t, m, handlers["proc_create_net_data"], a.str("nf_conntrack"), 0o444, stat, 0x1000, 0, 0)
	require.NotZero(t, ctStat)
	assert.Equal(t, "net/stat/nf_conntrack", tree.path(tree.byAddr(ctStat)))

	tests := []struct {
		fn, name, want string
		parent         uint64
	}{
		{"proc_create_net_single", "tls_stat", "net/tls_stat", 0},
		{"proc_create_net_data", "pvc", "net/atm/pvc", atm},
		{"proc_create_net_data", "phonet", "net/phonet", dir},
	}
	for _, tt := range tests {
		e := call(t, m, handlers[tt.fn], a.str(tt.name), 0o444, tt.parent, 0x1000, 0, 0)
		require.NotZero(t, e, tt.fn)
		assert.Equal(t, tt.want, tree.path(tree.byAddr(e)), tt.fn)
	}
	assert.Zero(t, call(t, m, handlers["_proc_mkdir"], a.str("atm"), 0o555, dir, 0, 0), "exists")
	assert.Equal(t, dir, procNet(), "made once")

	call(t, m, hRemoveProcEntry, a.str("atm"), procNet())
	assert.Nil(t, tree.lookup("net/atm"))
	assert.Nil(t, tree.lookup("net/atm/pvc"), "with what is below it")
	assert.NotNil(t, tree.lookup("net/phonet"))
}
