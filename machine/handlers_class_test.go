package machine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The class's class_release runs when class_unregister drops it, and only then. kfree stands in
// for the driver's callback (it is class_create_release's whole work), so the class being freed is
// the evidence: freeing it again is a double free.
func TestClassUnregisterCallsClassRelease(t *testing.T) {
	m, a := bootArena(t)
	size, ok := m.structSize("class")
	require.True(t, ok)
	cls := call(t, m, handlers["__kmalloc"], size, gfpZero)
	require.NotZero(t, cls)
	a.set("class", "name", cls, 0, 8, a.str("pcmcia_socket"))
	kfree, ok := m.prof.Lookup("kfree")
	require.True(t, ok)
	a.set("class", "class_release", cls, 0, 8, kfree.Addr)

	call(t, m, handlers["__class_register"], cls, 0)
	require.Len(t, kinds(m.Registrations(), "class"), 1)
	call(t, m, hClassUnregister, cls)
	assert.Empty(t, kinds(m.Registrations(), "class"))

	_, err := handlers["kfree"](m, &Trap{Name: "kfree", m: m, rsp: m.stackTop - 64, regs: [6]uint64{cls}})
	var bug *kernelBug
	assert.ErrorAs(t, err, &bug, "class_release freed the class already")

	call(t, m, hClassUnregister, cls) // not registered any more: nothing is released twice
}
