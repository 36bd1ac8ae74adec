package profile

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustDefault(t testing.TB) *Profile {
	t.Helper()
	p, err := Default()
	require.NoError(t, err)
	return p
}

func TestDefaultProfile(t *testing.T) {
	p := mustDefault(t)
	again, err := Default()
	require.NoError(t, err)
	assert.Same(t, p, again, "decoded once and shared")

	assert.Equal(t, "6.1.0-56-amd64", p.Release)
	assert.Regexp(t, `^#1 SMP PREEMPT_DYNAMIC Debian 6\.1\.\d+-\d+ \(`, p.Version)
	assert.Equal(t, "6.1.0-56-amd64 SMP preempt mod_unload modversions ", p.Vermagic)
	assert.Equal(t, Vermagic(p.Release, p.Config, ""), p.Vermagic)
	assert.Greater(t, len(p.Symbols), 90000)
	assert.Greater(t, len(p.Exports), 20000)
	assert.NotEmpty(t, p.BTF)

	printk, ok := p.Lookup("_printk")
	require.True(t, ok)
	assert.Equal(t, byte('T'), printk.Type)
	sym, off, _, ok := p.SymbolAt(printk.Addr + 3)
	require.True(t, ok)
	assert.Equal(t, "_printk", sym.Name)
	assert.Equal(t, uint64(3), off)

	e, ok := p.Export("_printk")
	require.True(t, ok)
	assert.Equal(t, "vmlinux", e.Module)
	assert.False(t, e.GPLOnly)
	assert.True(t, e.HasCRC)
	e, ok = p.Export("dma_buf_export")
	require.True(t, ok)
	assert.True(t, e.GPLOnly)
	assert.Equal(t, "DMA_BUF", e.Namespace)
}

func TestStructLayouts(t *testing.T) {
	p := mustDefault(t)
	// Linux 6.1 x86-64 layouts, from the struct definitions and the Debian config (64-bit pointers,
	// MODULE_NAME_LEN 56, no CONFIG_DEBUG_KOBJECT_RELEASE, no lockdep).
	tests := []struct {
		structName string
		path       string
		offset     uint64
		size       uint64
		typ        string
	}{
		{"module", "state", 0, 4, "enum module_state"},
		{"struct module", "list", 8, 16, "struct list_head"},
		{"module", "list.next", 8, 8, "struct list_head *"},
		{"module", "list.prev", 16, 8, "struct list_head *"},
		{"module", "name", 24, 56, "char[56]"},
		{"module", "mkobj", 80, 96, "struct module_kobject"},
		{"module", "mkobj.kobj.name", 80, 8, "const char *"},
		{"module", "name[3]", 27, 1, "char"},
		{"list_head", "prev", 8, 8, "struct list_head *"},
		{"kobject", "kref", 56, 4, "struct kref"},
		{"file_operations", "owner", 0, 8, "struct module *"},
		{"file_operations", "read", 16, 8, "func *"},
		{"miscdevice", "minor", 0, 4, "int"},
		{"miscdevice", "name", 8, 8, "const char *"},
		{"miscdevice", "fops", 16, 8, "const struct file_operations *"},
		{"timer_list", "expires", 16, 8, "long unsigned int"},
		{"timer_list", "function", 24, 8, "func *"},
		{"work_struct", "func", 24, 8, "work_func_t"},
		{"kernel_param", "perm", 24, 2, "const u16"},
		{"kernel_param", "arg", 32, 8, "void *"}, // inside an anonymous union
		{"kernel_param", "str", 32, 8, "const struct kparam_string *"},
		{"page", "lru", 8, 16, "struct list_head"}, // anonymous union of anonymous structs
		{"page", "lru.next", 8, 8, "struct list_head *"},
	}
	for _, tt := range tests {
		t.Run(tt.structName+"."+tt.path, func(t *testing.T) {
			s, err := p.Struct(tt.structName)
			require.NoError(t, err)
			f, err := s.Field(tt.path)
			require.NoError(t, err)
			assert.Equal(t, tt.offset, f.Offset, "offset")
			assert.Equal(t, tt.offset*8, f.BitOffset, "bit offset")
			assert.Equal(t, tt.size, f.Size, "size")
			assert.Equal(t, tt.typ, f.Type, "type")
			assert.Zero(t, f.BitSize)
		})
	}
}

func TestStructSizesAndBitfields(t *testing.T) {
	p := mustDefault(t)
	sizes := []struct {
		name string
		size uint64
	}{
		{"list_head", 16}, {"kobject", 64}, {"work_struct", 32}, {"timer_list", 40},
		{"kernel_param", 40}, {"miscdevice", 80}, {"module_kobject", 96},
	}
	for _, tt := range sizes {
		s, err := p.Struct(tt.name)
		require.NoError(t, err, tt.name)
		assert.Equal(t, tt.size, s.Size, tt.name)
		n, err := p.TypeSize("struct " + tt.name)
		require.NoError(t, err)
		assert.Equal(t, tt.size, n, "TypeSize agrees with Struct for %s", tt.name)
	}

	kobj, err := p.Struct("kobject")
	require.NoError(t, err)
	for i, name := range []string{"state_initialized", "state_in_sysfs", "state_add_uevent_sent", "state_remove_uevent_sent", "uevent_suppress"} {
		f, err := kobj.Field(name)
		require.NoError(t, err)
		assert.Equal(t, uint64(60*8+i), f.BitOffset, name)
		assert.Equal(t, uint64(60), f.Offset, name)
		assert.Equal(t, uint64(1), f.BitSize, name)
		assert.Equal(t, "unsigned int", f.Type, name)
	}
	assert.Equal(t, "name", kobj.Members()[0].Path)
}

func TestTypeSizeAndEnum(t *testing.T) {
	p := mustDefault(t)
	for _, tt := range []struct {
		name string
		size uint64
	}{
		{"atomic_t", 4}, {"pid_t", 4}, {"long unsigned int", 8}, {"enum module_state", 4}, {"loff_t", 8},
		{"union sigval", 8}, {"struct page", 64},
	} {
		n, err := p.TypeSize(tt.name)
		require.NoError(t, err, tt.name)
		assert.Equal(t, tt.size, n, tt.name)
	}

	e, err := p.Enum("module_state")
	require.NoError(t, err)
	want := []EnumValue{{"MODULE_STATE_LIVE", 0}, {"MODULE_STATE_COMING", 1}, {"MODULE_STATE_GOING", 2}, {"MODULE_STATE_UNFORMED", 3}}
	assert.Equal(t, want, e.Values)
	v, ok := e.Value("MODULE_STATE_GOING")
	assert.True(t, ok)
	assert.Equal(t, int64(2), v)
	_, ok = e.Value("MODULE_STATE_DEAD")
	assert.False(t, ok)
}

func TestConstant(t *testing.T) {
	p := mustDefault(t)
	for _, tt := range []struct {
		name string
		want int64
	}{
		{"MODULE_STATE_UNFORMED", 3},   // a named enum
		{"KOBJ_ADD", 0},                // enum kobject_action
		{"TASK_COMM_LEN", 16},          // an anonymous enum in sched.h
		{"MODULE_NAME_LEN_UNUSED", -1}, // not a constant: see below
	} {
		got, err := p.Constant(tt.name)
		if tt.want < 0 {
			assert.ErrorIs(t, err, ErrNoType, tt.name)
			continue
		}
		require.NoError(t, err, tt.name)
		assert.Equal(t, tt.want, got, tt.name)
	}
	_, err := New(&Profile{}).Constant("X")
	assert.ErrorIs(t, err, ErrNoBTF)
}

func TestTypeLookupErrors(t *testing.T) {
	p := mustDefault(t)
	_, err := p.Struct("no_such_struct_anywhere")
	assert.ErrorIs(t, err, ErrNoType)
	_, err = p.Struct("union module") // module is a struct
	assert.ErrorIs(t, err, ErrNoType)
	_, err = p.Struct("enum module_state")
	assert.ErrorContains(t, err, "not a struct")
	_, err = p.Enum("module") // a struct, not an enum
	assert.ErrorIs(t, err, ErrNoType)
	_, err = p.TypeSize("struct module_state") // an enum, not a struct
	assert.ErrorIs(t, err, ErrNoType)

	mod, err := p.Struct("module")
	require.NoError(t, err)
	for _, tt := range []struct{ path, wantErr string }{
		{"nosuchfield", "no member \"nosuchfield\""},
		{"list.next.next", "not a struct or union"}, // through a pointer
		{"state.x", "not a struct or union"},
		{"name[56]", "out of range"},
		{"list[0]", "not an array"},
		{"name[x]", "bad array index"},
		{"", "empty path segment"},
		{"list..next", "empty path segment"},
	} {
		_, err := mod.Field(tt.path)
		assert.ErrorContains(t, err, tt.wantErr, tt.path)
	}

	noBTF := New(&Profile{Release: "x"})
	_, err = noBTF.Struct("module")
	assert.ErrorIs(t, err, ErrNoBTF)
	_, err = noBTF.Enum("module_state")
	assert.ErrorIs(t, err, ErrNoBTF)
	_, err = noBTF.TypeSize("int")
	assert.ErrorIs(t, err, ErrNoBTF)

	garbage := New(&Profile{BTF: []byte("not btf at all")})
	_, err = garbage.Struct("module")
	assert.ErrorContains(t, err, "parse BTF")
}

func TestStructConcurrentLookups(t *testing.T) {
	p := mustDefault(t)
	names := []string{"module", "file", "inode", "file_operations", "proc_ops", "miscdevice", "timer_list", "work_struct", "kernel_param"}
	var wg sync.WaitGroup
	results := make([][]uint64, 8)
	for g := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, n := range names {
				s, err := p.Struct(n)
				if err != nil {
					return
				}
				results[g] = append(results[g], s.Size)
			}
		}()
	}
	wg.Wait()
	for g := range results {
		assert.Len(t, results[g], len(names))
		assert.Equal(t, results[0], results[g])
	}
}

func BenchmarkStructField(b *testing.B) {
	p := mustDefault(b)
	s, err := p.Struct("module")
	require.NoError(b, err)
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Field("mkobj.kobj.name"); err != nil {
			b.Fatal(err)
		}
	}
}
