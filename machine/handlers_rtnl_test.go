package machine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRtnlMutex(t *testing.T) {
	m, _ := bootArena(t)
	steps := []struct {
		name string
		h    Handler
		want uint64
	}{
		{"not held at boot", hRtnlIsLocked, 0},
		{"lock", hRtnlLock, 0},
		{"held", hRtnlIsLocked, 1},
		{"trylock fails while held", hRtnlTrylock, 0},
		{"unlock", hRtnlUnlock, 0},
		{"released", hRtnlIsLocked, 0},
		{"trylock takes it", hRtnlTrylock, 1},
		{"held after trylock", hRtnlIsLocked, 1},
		{"unlock again", hRtnlUnlock, 0},
	}
	for _, s := range steps {
		assert.Equal(t, s.want, call(t, m, s.h), s.name)
	}

	// Taking it twice is the one task deadlocking on itself.
	call(t, m, hRtnlLock)
	_, err := hRtnlLock(m, &Trap{Name: "rtnl_lock", m: m, rsp: m.stackTop - 64})
	var bug *kernelBug
	require.ErrorAs(t, err, &bug)
	assert.Contains(t, m.Dmesg(), "deadlock: rtnl_mutex is already held")
}

func TestNetlinkNotifier(t *testing.T) {
	m, a := bootArena(t)
	nb := a.object("notifier_block", 1)
	assert.Zero(t, call(t, m, handlers["netlink_register_notifier"], nb))
	assert.Len(t, kinds(m.Registrations(), "notifier"), 1)
	assert.Equal(t, negErrno(17), call(t, m, handlers["netlink_register_notifier"], nb), "EEXIST")
	assert.Zero(t, call(t, m, handlers["netlink_unregister_notifier"], nb))
	assert.Empty(t, kinds(m.Registrations(), "notifier"))
	assert.Equal(t, negErrno(2), call(t, m, handlers["netlink_unregister_notifier"], nb), "ENOENT")
}
