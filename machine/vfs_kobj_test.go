package machine

import (
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Kobjects and attribute groups in sysfs, over the kobj fixture (testdata/modules/kobj.c).

// bootSysfs boots with the kernel's top-level kobjects in place and loads the fixtures.
func bootSysfs(t *testing.T, names ...string) *Machine {
	t.Helper()
	m := bootWith(t)
	require.NoError(t, m.initSysfs())
	for _, name := range names {
		_, err := m.Insmod(fixture(t, name), "", name+".ko")
		require.NoError(t, err, "insmod %s", name)
	}
	return m
}

const kobjDirPath = "/sys/kernel/kemu_kobj"

func TestSysfsKobjectGroups(t *testing.T) {
	m := bootSysfs(t, "kobj")
	assert.Contains(t, m.Dmesg(), "kobj: created /sys/kernel/kemu_kobj")
	var files []string
	for _, p := range m.Paths() {
		if len(p) > len(kobjDirPath) && p[:len(kobjDirPath)] == kobjDirPath {
			files = append(files, p)
		}
	}
	assert.Equal(t, []string{kobjDirPath + "/blob", kobjDirPath + "/name", kobjDirPath + "/reset", kobjDirPath + "/stats/stores", kobjDirPath + "/value"},
		files, "is_visible hid \"hidden\"; the named group is a subdirectory")

	cases := []struct {
		name  string
		path  string
		write string // written first, when not empty
		werr  error
		want  string // read afterwards
		rerr  error
	}{
		{"value", kobjDirPath + "/value", "", nil, "7\n", nil},
		{"name is the kobject's", kobjDirPath + "/name", "", nil, "kemu_kobj\n", nil},
		{"store parses", kobjDirPath + "/value", "42\n", nil, "42\n", nil},
		{"a bad number is the store's errno", kobjDirPath + "/value", "x\n", syscall.EINVAL, "42\n", nil},
		{"stores counted in the group directory", kobjDirPath + "/stats/stores", "", nil, "1\n", nil},
		{"read-only refuses writers", kobjDirPath + "/name", "x", syscall.EACCES, "kemu_kobj\n", nil},
		{"write-only refuses readers", kobjDirPath + "/reset", "1", nil, "", syscall.EACCES},
		{"reset stored", kobjDirPath + "/value", "", nil, "0\n", nil},
		{"hidden by is_visible", kobjDirPath + "/hidden", "", nil, "", syscall.ENOENT},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.write != "" {
				f, err := m.Open(c.path, syscall.O_WRONLY)
				if err == nil {
					_, err = f.Write([]byte(c.write))
					require.NoError(t, f.Close())
				}
				if c.werr != nil {
					assert.ErrorIs(t, err, c.werr)
				} else {
					require.NoError(t, err)
				}
			}
			f, err := m.Open(c.path, syscall.O_RDONLY)
			if c.rerr != nil {
				assert.ErrorIs(t, err, c.rerr)
				return
			}
			require.NoError(t, err)
			defer f.Close()
			assert.Equal(t, c.want, readAll(t, f, 64))
		})
	}

	err := m.Rmmod("kobj", false)
	require.NoError(t, err)
	assert.Contains(t, m.Dmesg(), "kobj: exit, value 0 after 1 stores")
	for _, p := range m.Paths() {
		assert.NotContains(t, p, "kemu_kobj", "kobject_put took the directory away")
	}
	for _, r := range m.Registrations() {
		assert.NotEqual(t, "kobj", r.Module, "nothing of the module left registered: %+v", r)
	}
}

func TestSysfsBinaryAttribute(t *testing.T) {
	m := bootSysfs(t, "kobj")
	const blob = kobjDirPath + "/blob"
	vfsObjects := func() (n int) {
		for _, a := range m.HeapObjects() {
			if a.Caller == kemuCaller {
				n++
			}
		}
		return n
	}
	before := vfsObjects()
	assert.Equal(t, "0123456789abcdef", readFileIn(t, m, blob, 5), "reads at the position, to the size")
	assert.Equal(t, before, vfsObjects(), "close freed the struct file the methods saw")

	f, err := m.Open(blob, syscall.O_RDWR)
	require.NoError(t, err)
	_, err = f.Seek(10, 0)
	require.NoError(t, err)
	n, err := f.Write([]byte("ABCDEFGH"))
	require.NoError(t, err)
	assert.Equal(t, 6, n, "a write is cut at the size")
	_, err = f.Write([]byte("x"))
	assert.ErrorIs(t, err, syscall.EFBIG, "a write at the size")
	_, err = f.Seek(8, 0)
	require.NoError(t, err)
	assert.Equal(t, "89ABCDEF", readAll(t, f, 3))
	require.NoError(t, f.Close())
}

func TestSysfsFileOutlivesItsKobject(t *testing.T) {
	m := bootSysfs(t, "kobj")
	f, err := m.Open(kobjDirPath+"/value", syscall.O_RDONLY)
	require.NoError(t, err)
	err = m.Rmmod("kobj", false)
	require.NoError(t, err)
	_, err = f.Read(64)
	assert.ErrorIs(t, err, syscall.ENODEV)
	require.NoError(t, f.Close())
}

// TestSysfsGroupRules drives the handlers with groups built in guest memory: duplicates, a group
// without attributes, a kobject not in sysfs, removal of a named group, and kobject_put's count.
func TestSysfsGroupRules(t *testing.T) {
	m := bootSysfs(t)
	kobj, err := hKobjectCreateAndAdd(m, trapWith(m, guestString(t, m, "rules"), 0))
	require.NoError(t, err)
	require.NotZero(t, kobj)
	dup, err := hKobjectCreateAndAdd(m, trapWith(m, guestString(t, m, "rules"), 0))
	require.NoError(t, err)
	assert.Zero(t, dup, "a taken name")
	assert.Contains(t, m.Dmesg(), "sysfs: cannot create duplicate filename '/rules'")

	attr := guestStruct(t, m, "kobj_attribute")
	m.setField("kobj_attribute", "attr.name", attr, 8, guestString(t, m, "a"))
	_ = m.WriteAt([]byte{0o44, 1}, attr+m.offset("kobj_attribute", "attr.mode")) // 0444
	attrs := guestStruct(t, m, "attribute_group")                                // 40 zeroed bytes: {attr, NULL, ...}
	require.NoError(t, m.WriteU64(attrs, attr))
	grp := guestStruct(t, m, "attribute_group")
	m.setField("attribute_group", "name", grp, 8, guestString(t, m, "g"))
	empty := guestStruct(t, m, "attribute_group")

	call := func(h Handler, args ...uint64) int64 {
		ret, err := h(m, trapWith(m, args...))
		require.NoError(t, err)
		return int64(ret)
	}
	assert.Equal(t, -int64(syscall.EINVAL), call(hSysfsCreateGroup, kobj, empty), "no attrs")
	assert.Equal(t, -int64(syscall.EINVAL), call(hSysfsCreateGroup, 0, grp), "no kobject")
	assert.Equal(t, -int64(syscall.EINVAL), call(hSysfsCreateBinFile, kobj, 0), "no attribute")
	m.setField("attribute_group", "attrs", grp, 8, attrs)
	before := len(m.Paths())
	assert.Zero(t, call(hSysfsCreateGroup, 0x1000, grp), "a kobject kemu has no directory for")
	assert.Len(t, m.Paths(), before, "recorded, without files")
	call(hSysfsRemoveGroup, 0x1000, grp)
	assert.Zero(t, call(hSysfsCreateGroup, kobj, grp))
	assert.Equal(t, -int64(syscall.EEXIST), call(hSysfsCreateGroup, kobj, grp), "the group's directory exists")
	assert.Contains(t, m.Paths(), "/sys/rules/g/a")
	assert.Zero(t, call(hSysfsCreateFile, kobj, attr))
	assert.Equal(t, -int64(syscall.EEXIST), call(hSysfsCreateFile, kobj, attr))
	assert.Contains(t, m.Paths(), "/sys/rules/a")
	_, err = m.Open("/sys/rules/a", syscall.O_RDONLY)
	require.NoError(t, err, "opening is fine")

	call(hSysfsRemoveGroup, kobj, grp)
	assert.NotContains(t, m.Paths(), "/sys/rules/g/a")
	call(hSysfsRemoveGroup, kobj, grp)
	assert.Contains(t, m.Dmesg(), "sysfs group 'g' not found for kobject 'rules'")

	assert.Equal(t, kobj, uint64(call(hKobjectGet, kobj)))
	call(hKobjectPut, kobj)
	assert.Contains(t, m.Paths(), "/sys/rules/a", "one reference left")
	call(hKobjectPut, kobj)
	assert.NotContains(t, m.Paths(), "/sys/rules/a", "the last put removes the directory")
	assert.NotContains(t, m.Dmesg(), "refcount_t")
	call(hKobjectPut, kobj)
	assert.Contains(t, m.Dmesg(), "refcount_t: underflow; use-after-free.", "one put too many")

	unknown := guestStruct(t, m, "kobject") // a kobject kemu did not initialise keeps no count
	assert.Equal(t, unknown, uint64(call(hKobjectGet, unknown)))
	call(hKobjectPut, unknown)
	call(hKobjectPut, unknown)
	assert.Equal(t, 1, strings.Count(m.Dmesg(), "refcount_t"))
}

func TestSysfsKset(t *testing.T) {
	m := bootSysfs(t)
	fs := m.kernelFunc("fs_kobj") // the variable; it points at /sys/fs's kobject
	parent, err := m.ReadU64(fs)
	require.NoError(t, err)
	kset, err := hKsetCreateAndAdd(m, trapWith(m, guestString(t, m, "kemu_set"), 0, parent))
	require.NoError(t, err)
	require.NotZero(t, kset)
	attr := guestStruct(t, m, "kobj_attribute")
	m.setField("kobj_attribute", "attr.name", attr, 8, guestString(t, m, "feature"))
	_ = m.WriteAt([]byte{0o44, 1}, attr+m.offset("kobj_attribute", "attr.mode"))
	ret, err := hSysfsCreateFile(m, trapWith(m, kset+m.offset("kset", "kobj"), attr))
	require.NoError(t, err)
	require.Zero(t, ret)
	assert.Contains(t, m.Paths(), "/sys/fs/kemu_set/feature")
	_, err = hKsetUnregister(m, trapWith(m, kset))
	require.NoError(t, err)
	assert.NotContains(t, m.Paths(), "/sys/fs/kemu_set/feature")
}

func TestDeviceAttributeGroup(t *testing.T) {
	m := bootSysfs(t, "chardev")
	dev := m.files().devices[0]
	attr := guestStruct(t, m, "device_attribute")
	m.setField("device_attribute", "attr.name", attr, 8, guestString(t, m, "grouped"))
	_ = m.WriteAt([]byte{0o44, 1}, attr+m.offset("device_attribute", "attr.mode"))
	list := guestStruct(t, m, "attribute_group")
	require.NoError(t, m.WriteU64(list, attr))
	grp := guestStruct(t, m, "attribute_group")
	m.setField("attribute_group", "attrs", grp, 8, list)
	ret, err := hSysfsCreateGroup(m, trapWith(m, dev.addr+m.offset("device", "kobj"), grp))
	require.NoError(t, err)
	require.Zero(t, ret)
	path := sysfsClassRoot + dev.class + "/" + dev.name + "/grouped"
	assert.Contains(t, m.Paths(), path, "a group on a device's kobject lands in the device's directory")
	f, err := m.Open(path, syscall.O_RDONLY)
	require.NoError(t, err)
	_, err = f.Read(64)
	assert.ErrorIs(t, err, syscall.EIO, "no show: dev_attr_show's -EIO")
	require.NoError(t, f.Close())
	err = m.Rmmod("chardev", false)
	require.NoError(t, err)
	assert.NotContains(t, m.Paths(), path, "device_destroy removed it")
}

// TestKobjectInitAdd is the two-step kobject_init + kobject_add with the caller's ktype, files
// from an attribute array, and the release at the last put.
func TestKobjectInitAdd(t *testing.T) {
	for _, withRelease := range []bool{true, false} {
		m := bootSysfs(t)
		size, _ := m.structSize("kobject")
		obj := m.kmalloc(size, kemuCaller, gfpZero)
		require.NotZero(t, obj)
		ktype := guestStruct(t, m, "kobj_type")
		m.setField("kobj_type", "sysfs_ops", ktype, 8, m.kernelFunc("kobj_sysfs_ops"))
		if withRelease {
			m.setField("kobj_type", "release", ktype, 8, m.kernelFunc("kfree")) // release frees the container
		}
		_, err := hKobjectInit(m, trapWith(m, obj, ktype))
		require.NoError(t, err)
		ret, err := hKobjectAdd(m, trapWith(m, obj, 0, guestString(t, m, "kemu-%d"), 5))
		require.NoError(t, err)
		require.Zero(t, ret)

		attr := guestStruct(t, m, "kobj_attribute")
		m.setField("kobj_attribute", "attr.name", attr, 8, guestString(t, m, "a"))
		_ = m.WriteAt([]byte{0o44, 1}, attr+m.offset("kobj_attribute", "attr.mode"))
		list := guestStruct(t, m, "attribute_group") // zeroed: {attr, NULL}
		require.NoError(t, m.WriteU64(list, attr))
		ret, err = hSysfsCreateFiles(m, trapWith(m, obj, list))
		require.NoError(t, err)
		require.Zero(t, ret)
		assert.Contains(t, m.Paths(), "/sys/kemu-5/a")
		f, err := m.Open("/sys/kemu-5/a", syscall.O_RDONLY)
		require.NoError(t, err)
		_, err = f.Read(64)
		assert.ErrorIs(t, err, syscall.EIO, "kobj_attr_show without a show")
		require.NoError(t, f.Close())

		_, err = hKobjectPut(m, trapWith(m, obj))
		require.NoError(t, err)
		assert.NotContains(t, m.Paths(), "/sys/kemu-5/a")
		broken := "kobject: 'kemu-5' (" // the kernel's complaint about a ktype without release
		live := false
		for _, a := range m.HeapObjects() {
			live = live || a.Addr == obj
		}
		if withRelease {
			assert.NotContains(t, m.Dmesg(), broken)
			assert.False(t, live, "ktype->release (kfree) ran at the last put")
		} else {
			assert.Contains(t, m.Dmesg(), broken)
			assert.True(t, live, "nothing released it")
		}
	}
}
