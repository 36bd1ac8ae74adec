package machine

import (
	"fmt"
	"syscall"
)

// Block devices (block/genhd.c, block/blk-mq.c, block/blk-settings.c): a driver allocates a gendisk
// with its request queue and whole-disk block_device, sets its limits and flags, and adds it. No
// request ever reaches the driver here: nothing opens the disk or reads its partition table.

const (
	blockExtMajor = 259 // BLOCK_EXT_MAJOR: disks without a major of their own
	diskMaxParts  = 256 // DISK_MAX_PARTS
)

func init() {
	register("__blk_alloc_disk", hBlkAllocDisk(false))
	register("__blk_mq_alloc_disk", hBlkAllocDisk(true))
	register("blk_mq_alloc_tag_set", hBlkMqAllocTagSet)
	register("blk_mq_free_tag_set", hBlkMqFreeTagSet)
	register("device_add_disk", hDeviceAddDisk)
	register("del_gendisk", hDelGendisk)
	register("put_disk", hPutDisk)
	register("blk_mq_destroy_queue", hNop) // no request is in flight to wait for
	register("blk_queue_flag_set", hBlkQueueFlag(true))
	register("blk_queue_flag_clear", hBlkQueueFlag(false))
	register("blk_queue_logical_block_size", hBlkQueueBlockSize("logical_block_size"))
	register("blk_queue_physical_block_size", hBlkQueueBlockSize("physical_block_size"))
	register("set_capacity_and_notify", hSetCapacity)
	register("set_capacity", hSetCapacity)
	register("blk_queue_max_hw_sectors", hBlkQueueMaxHwSectors)
	register("radix_tree_gang_lookup", hRadixTreeGangLookup)
	register("blk_queue_max_discard_sectors", hBlkQueueLimit(4, "max_hw_discard_sectors", "max_discard_sectors"))
	register("blk_queue_max_write_zeroes_sectors", hBlkQueueLimit(4, "max_write_zeroes_sectors"))
	register("blk_queue_io_opt", hBlkQueueLimit(4, "io_opt"))
	register("blk_queue_io_min", hBlkQueueIoMin)
	register("blk_queue_max_segments", hBlkQueueMaxSegments)
	register("blk_queue_max_segment_size", hBlkQueueMaxSegmentSize)
	register("sync_blockdev", hZero) // nothing ever wrote to the device
	register("bdi_alloc", hBdiAlloc)
	register("bdi_register", hBdiRegister)
	register("bdi_unregister", hBdiUnregister)
	register("bdi_put", hBdiPut)
}

// disk is what the machine allocated for one gendisk.
type disk struct{ queue, part0 uint64 }

// hBlkAllocDisk is __blk_alloc_disk(node, lkclass), NULL on failure, and __blk_mq_alloc_disk(set,
// queuedata, lkclass), ERR_PTR(-ENOMEM) on failure: a zeroed gendisk, its request_queue and its
// part0 block_device, linked to each other.
func hBlkAllocDisk(mq bool) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		fail := uint64(0)
		if mq {
			fail = negErrno(syscall.ENOMEM)
		}
		objs := map[string]uint64{}
		for _, s := range []string{"gendisk", "request_queue", "block_device"} {
			size, ok := m.structSize(s)
			if !ok {
				return fail, nil
			}
			if objs[s] = m.kmalloc(size, t.caller(), gfpZero); objs[s] == 0 {
				var err error
				for _, p := range objs {
					err = firstErr(err, m.kfree(p, t.caller()))
				}
				return fail, err
			}
		}
		gd, q, part0 := objs["gendisk"], objs["request_queue"], objs["block_device"]
		m.setField("gendisk", "queue", gd, 8, q)
		m.setField("gendisk", "part0", gd, 8, part0)
		m.setField("block_device", "bd_disk", part0, 8, gd)
		m.setField("block_device", "bd_queue", part0, 8, q)
		m.setField("request_queue", "disk", q, 8, gd)
		for _, f := range []string{"logical_block_size", "physical_block_size", "io_min"} {
			m.setField("request_queue", "limits."+f, q, 4, 512)
		}
		if mq {
			m.setField("request_queue", "tag_set", q, 8, t.Arg(0))
			m.setField("request_queue", "queuedata", q, 8, t.Arg(1))
		}
		d := m.drivers()
		if d.disks == nil {
			d.disks = map[uint64]disk{}
		}
		d.disks[gd] = disk{queue: q, part0: part0}
		return gd, nil
	}
}

// blk_mq_alloc_tag_set(set): EINVAL without hardware queues, queue depth or a queue_rq operation;
// the per-queue tags array.
func hBlkMqAllocTagSet(m *Machine, t *Trap) (uint64, error) {
	const s = "blk_mq_tag_set"
	set := t.Arg(0)
	nr, err := m.readField(s, "nr_hw_queues", set, 4)
	if err != nil {
		return 0, err
	}
	depth, err := m.readField(s, "queue_depth", set, 4)
	if err != nil {
		return 0, err
	}
	ops, err := m.readField(s, "ops", set, 8)
	if err != nil {
		return 0, err
	}
	queueRq := uint64(0)
	if ops != 0 {
		if queueRq, err = m.readField("blk_mq_ops", "queue_rq", ops, 8); err != nil {
			return 0, err
		}
	}
	if nr == 0 || nr > 1<<16 || depth == 0 || queueRq == 0 {
		return negErrno(syscall.EINVAL), nil
	}
	tags := m.kmalloc(8*nr, t.caller(), gfpZero)
	if tags == 0 {
		return negErrno(syscall.ENOMEM), nil
	}
	m.setField(s, "tags", set, 8, tags)
	return 0, nil
}

func hBlkMqFreeTagSet(m *Machine, t *Trap) (uint64, error) {
	tags, err := m.readField("blk_mq_tag_set", "tags", t.Arg(0), 8)
	if err != nil || tags == 0 {
		return 0, err
	}
	m.setField("blk_mq_tag_set", "tags", t.Arg(0), 8, 0)
	return 0, m.kfree(tags, t.caller())
}

// device_add_disk(parent, disk, groups): a disk without a major gets BLOCK_EXT_MAJOR and the next
// extended minor; too many minors is EINVAL. The disk is recorded as major:minor.
func hDeviceAddDisk(m *Machine, t *Trap) (uint64, error) {
	const s = "gendisk"
	gd := t.Arg(1)
	name, err := m.readArrayString(s, "disk_name", gd, 32)
	if err != nil {
		return 0, err
	}
	major, err := m.readField(s, "major", gd, 4)
	if err != nil {
		return 0, err
	}
	minor, err := m.readField(s, "first_minor", gd, 4)
	if err != nil {
		return 0, err
	}
	minors, err := m.readField(s, "minors", gd, 4)
	if err != nil {
		return 0, err
	}
	if minors > diskMaxParts {
		return negErrno(syscall.EINVAL), nil
	}
	if m.registered("disk", gd, "") >= 0 {
		return negErrno(syscall.EBUSY), nil
	}
	if major == 0 {
		d := m.drivers()
		major, minor = blockExtMajor, d.extMinors
		d.extMinors++
		m.setField(s, "major", gd, 4, major)
		m.setField(s, "first_minor", gd, 4, minor)
	}
	m.record(t, "disk", name, gd, []string{fmt.Sprintf("%d:%d", major, minor)})
	return 0, nil
}

func hDelGendisk(m *Machine, t *Trap) (uint64, error) {
	m.unrecord("disk", t.Arg(0))
	return 0, nil
}

// put_disk(disk): the last reference frees a disk the machine allocated, with its queue and part0.
func hPutDisk(m *Machine, t *Trap) (uint64, error) {
	d := m.drivers()
	gd := t.Arg(0)
	dk, ok := d.disks[gd]
	if !ok {
		return 0, nil
	}
	delete(d.disks, gd)
	m.unrecord("disk", gd)
	return 0, firstErr(firstErr(m.kfree(dk.queue, t.caller()), m.kfree(dk.part0, t.caller())), m.kfree(gd, t.caller()))
}

// blk_queue_flag_set(flag, q) / blk_queue_flag_clear(flag, q): a bit of q->queue_flags.
func hBlkQueueFlag(set bool) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		flag := t.Arg(0)
		off, ok := m.fieldOffset("request_queue", "queue_flags")
		if !ok || flag >= 64 {
			return 0, nil
		}
		flags, err := m.ReadU64(t.Arg(1) + off)
		if err != nil {
			return 0, err
		}
		if set {
			flags |= 1 << flag
		} else {
			flags &^= 1 << flag
		}
		return 0, m.WriteU64(t.Arg(1)+off, flags)
	}
}

// hBlkQueueBlockSize is blk_queue_logical_block_size(q, size) and blk_queue_physical_block_size(q,
// size): the limit is set, the physical block size and minimum I/O never below the logical size.
func hBlkQueueBlockSize(field string) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		const s = "request_queue"
		q, size := t.Arg(0), uint64(uint32(t.Arg(1)))
		m.setField(s, "limits."+field, q, 4, size)
		logical, err := m.readField(s, "limits.logical_block_size", q, 4)
		if err != nil {
			return 0, err
		}
		for _, f := range []string{"limits.physical_block_size", "limits.io_min"} {
			v, err := m.readField(s, f, q, 4)
			if err != nil {
				return 0, err
			}
			if v < logical {
				m.setField(s, f, q, 4, logical)
			}
		}
		return 0, nil
	}
}

// set_capacity(disk, size) and set_capacity_and_notify(disk, size): the whole-disk size in sectors;
// the latter returns true when a live disk changed size (the kernel then sends a RESIZE uevent).
func hSetCapacity(m *Machine, t *Trap) (uint64, error) {
	part0, err := m.readField("gendisk", "part0", t.Arg(0), 8)
	if err != nil || part0 == 0 {
		return 0, err
	}
	old, err := m.readField("block_device", "bd_nr_sectors", part0, 8)
	if err != nil {
		return 0, err
	}
	m.setField("block_device", "bd_nr_sectors", part0, 8, t.Arg(1))
	if t.Name == "set_capacity_and_notify" && old != t.Arg(1) && old != 0 && t.Arg(1) != 0 && m.registered("disk", t.Arg(0), "") >= 0 {
		return 1, nil
	}
	return 0, nil
}

// BLK_DEF_MAX_SECTORS: the default cap on a request's size, in 512-byte sectors.
const blkDefMaxSectors = 2560

// blk_queue_max_hw_sectors(q, max): at least a page, whole logical blocks; max_sectors follows,
// capped by the device's own limit and BLK_DEF_MAX_SECTORS.
func hBlkQueueMaxHwSectors(m *Machine, t *Trap) (uint64, error) {
	const s = "request_queue"
	q, hw := t.Arg(0), uint64(uint32(t.Arg(1)))
	if hw<<9 < pageSize {
		hw = pageSize >> 9
		m.logf(levelInfo, "blk_queue_max_hw_sectors: set to minimum %d", hw)
	}
	logical, err := m.readField(s, "limits.logical_block_size", q, 4)
	if err != nil {
		return 0, err
	}
	unit := max(logical>>9, 1)
	hw -= hw % unit
	m.setField(s, "limits.max_hw_sectors", q, 4, hw)
	dev, err := m.readField(s, "limits.max_dev_sectors", q, 4)
	if err != nil {
		return 0, err
	}
	sectors := hw
	if dev != 0 {
		sectors = min(sectors, dev)
	}
	sectors = min(sectors, blkDefMaxSectors)
	sectors -= sectors % unit
	m.setField(s, "limits.max_sectors", q, 4, sectors)
	return 0, nil
}

// radix_tree_gang_lookup(root, results, first, max): drivers that keep pages in a radix tree (brd)
// fill it only on I/O, which never happens here, so the tree is empty and the lookup finds
// nothing. A non-empty tree (filled by radix_tree_insert, not emulated) is reported.
func hRadixTreeGangLookup(m *Machine, t *Trap) (uint64, error) {
	head, err := m.readField("xarray", "xa_head", t.Arg(0), 8)
	if err != nil {
		return 0, err
	}
	if head != 0 {
		m.logf(levelWarning, "kemu: radix_tree_gang_lookup on a non-empty tree is not emulated (called from %s)", m.describe(t.Return))
	}
	return 0, nil
}

// hBlkQueueLimit sets queue limits to the value given, as the simple blk_queue_* setters do.
func hBlkQueueLimit(size int, fields ...string) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		for _, f := range fields {
			if err := m.setFieldN("request_queue", "limits."+f, t.Arg(0), size, t.Arg(1)); err != nil {
				return 0, err
			}
		}
		return 0, nil
	}
}

// blk_queue_io_min(q, min): never below the logical or physical block size.
func hBlkQueueIoMin(m *Machine, t *Trap) (uint64, error) {
	const s = "request_queue"
	v := uint64(uint32(t.Arg(1)))
	for _, f := range []string{"limits.logical_block_size", "limits.physical_block_size"} {
		b, err := m.readField(s, f, t.Arg(0), 4)
		if err != nil {
			return 0, err
		}
		v = max(v, b)
	}
	m.setField(s, "limits.io_min", t.Arg(0), 4, v)
	return 0, nil
}

// blk_queue_max_segments(q, n): at least one segment.
func hBlkQueueMaxSegments(m *Machine, t *Trap) (uint64, error) {
	n := uint64(uint16(t.Arg(1)))
	if n == 0 {
		n = 1
		m.logf(levelInfo, "blk_queue_max_segments: set to minimum %d", n)
	}
	return 0, m.setFieldN("request_queue", "limits.max_segments", t.Arg(0), 2, n)
}

// blk_queue_max_segment_size(q, size): at least a page.
func hBlkQueueMaxSegmentSize(m *Machine, t *Trap) (uint64, error) {
	n := uint64(uint32(t.Arg(1)))
	if n < pageSize {
		n = pageSize
		m.logf(levelInfo, "blk_queue_max_segment_size: set to minimum %d", n)
	}
	m.setField("request_queue", "limits.max_segment_size", t.Arg(0), 4, n)
	return 0, nil
}

// bdi_alloc(node): a zeroed backing_dev_info holding one reference; NULL when memory runs out.
func hBdiAlloc(m *Machine, t *Trap) (uint64, error) {
	size, ok := m.structSize("backing_dev_info")
	if !ok {
		return 0, nil
	}
	bdi := m.kmalloc(size, t.caller(), gfpZero)
	if bdi == 0 {
		return 0, nil
	}
	m.setField("backing_dev_info", "refcnt.refcount.refs.counter", bdi, 4, 1)
	d := m.drivers()
	if d.bdis == nil {
		d.bdis = map[uint64]bool{}
	}
	d.bdis[bdi] = true
	return bdi, nil
}

// bdi_register(bdi, fmt, ...): the device named by the format; EBUSY when registered already.
func hBdiRegister(m *Machine, t *Trap) (uint64, error) {
	if m.registered("bdi", t.Arg(0), "") >= 0 {
		return negErrno(syscall.EBUSY), nil
	}
	name, err := m.format(t.Arg(1), t.VarArgs(2))
	if err != nil {
		return 0, err
	}
	m.record(t, "bdi", string(name), t.Arg(0), nil)
	return 0, nil
}

func hBdiUnregister(m *Machine, t *Trap) (uint64, error) {
	m.unrecord("bdi", t.Arg(0))
	return 0, nil
}

// bdi_put(bdi): the last reference unregisters and frees a bdi the machine allocated.
func hBdiPut(m *Machine, t *Trap) (uint64, error) {
	d := m.drivers()
	bdi := t.Arg(0)
	if !d.bdis[bdi] {
		return 0, nil
	}
	if off, ok := m.fieldOffset("backing_dev_info", "refcnt.refcount.refs.counter"); ok {
		refs, err := m.ReadU32(bdi + off)
		if err != nil {
			return 0, err
		}
		if refs > 1 {
			return 0, m.WriteU32(bdi+off, refs-1)
		}
	}
	delete(d.bdis, bdi)
	m.unrecord("bdi", bdi)
	return 0, m.kfree(bdi, t.caller())
}
