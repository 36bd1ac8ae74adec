package printk

import "encoding/binary"

// GFP bits of 6.1 (include/linux/gfp_types.h) as Debian's x86-64 config
// has them: no CONFIG_KASAN_HW_TAGS or CONFIG_LOCKDEP, so the
// __GFP_SKIP_* and __GFP_NOLOCKDEP bits are 0.
const (
	gfpDMA           = 0x01
	gfpHighmem       = 0x02
	gfpDMA32         = 0x04
	gfpMovable       = 0x08
	gfpReclaimable   = 0x10
	gfpHigh          = 0x20
	gfpIO            = 0x40
	gfpFS            = 0x80
	gfpZero          = 0x100
	gfpAtomic        = 0x200
	gfpDirectReclaim = 0x400
	gfpKswapdReclaim = 0x800
	gfpWrite         = 0x1000
	gfpNowarn        = 0x2000
	gfpRetryMayfail  = 0x4000
	gfpNofail        = 0x8000
	gfpNoretry       = 0x10000
	gfpMemalloc      = 0x20000
	gfpComp          = 0x40000
	gfpNomemalloc    = 0x80000
	gfpHardwall      = 0x100000
	gfpThisnode      = 0x200000
	gfpAccount       = 0x400000
	gfpZerotags      = 0x800000

	gfpReclaim         = gfpDirectReclaim | gfpKswapdReclaim
	gfpKernel          = gfpReclaim | gfpIO | gfpFS
	gfpUser            = gfpKernel | gfpHardwall
	gfpHighuser        = gfpUser | gfpHighmem
	gfpHighuserMovable = gfpHighuser | gfpMovable
	gfpTranshugeLight  = (gfpHighuserMovable | gfpComp | gfpNomemalloc | gfpNowarn) &^ gfpReclaim
	gfpTranshuge       = gfpTranshugeLight | gfpDirectReclaim
	gfpKernelAccount   = gfpKernel | gfpAccount
	gfpNofs            = gfpReclaim | gfpIO
	gfpAtomicCompound  = gfpHigh | gfpAtomic | gfpKswapdReclaim
	gfpNoio            = gfpReclaim
	gfpNowait          = gfpKswapdReclaim
)

// flagName is one entry of a flag-name table: a mask and its name.
type flagName struct {
	mask uint64
	name string
}

// gfpFlagNames is __def_gfpflag_names (include/trace/events/mmflags.h):
// compound masks first, so that the largest match is named.
var gfpFlagNames = []flagName{
	{gfpTranshuge, "GFP_TRANSHUGE"},
	{gfpTranshugeLight, "GFP_TRANSHUGE_LIGHT"},
	{gfpHighuserMovable, "GFP_HIGHUSER_MOVABLE"},
	{gfpHighuser, "GFP_HIGHUSER"},
	{gfpUser, "GFP_USER"},
	{gfpKernelAccount, "GFP_KERNEL_ACCOUNT"},
	{gfpKernel, "GFP_KERNEL"},
	{gfpNofs, "GFP_NOFS"},
	{gfpAtomicCompound, "GFP_ATOMIC"},
	{gfpNoio, "GFP_NOIO"},
	{gfpNowait, "GFP_NOWAIT"},
	{gfpDMA, "GFP_DMA"},
	{gfpHighmem, "__GFP_HIGHMEM"},
	{gfpDMA32, "GFP_DMA32"},
	{gfpHigh, "__GFP_HIGH"},
	{gfpAtomic, "__GFP_ATOMIC"},
	{gfpIO, "__GFP_IO"},
	{gfpFS, "__GFP_FS"},
	{gfpNowarn, "__GFP_NOWARN"},
	{gfpRetryMayfail, "__GFP_RETRY_MAYFAIL"},
	{gfpNofail, "__GFP_NOFAIL"},
	{gfpNoretry, "__GFP_NORETRY"},
	{gfpComp, "__GFP_COMP"},
	{gfpZero, "__GFP_ZERO"},
	{gfpNomemalloc, "__GFP_NOMEMALLOC"},
	{gfpMemalloc, "__GFP_MEMALLOC"},
	{gfpHardwall, "__GFP_HARDWALL"},
	{gfpThisnode, "__GFP_THISNODE"},
	{gfpReclaimable, "__GFP_RECLAIMABLE"},
	{gfpMovable, "__GFP_MOVABLE"},
	{gfpAccount, "__GFP_ACCOUNT"},
	{gfpWrite, "__GFP_WRITE"},
	{gfpReclaim, "__GFP_RECLAIM"},
	{gfpDirectReclaim, "__GFP_DIRECT_RECLAIM"},
	{gfpKswapdReclaim, "__GFP_KSWAPD_RECLAIM"},
	{gfpZerotags, "__GFP_ZEROTAGS"},
}

// flags is %pG: 'g' names the gfp_t at addr. Page flags ('p') and VMA
// flags ('v') depend on config-specific layouts and tables this package
// does not model: they print the hashed pointer.
func (f *Formatter) flags(o *output, addr uint64, sp spec, kind byte) {
	if msg := checkPointer(addr); msg != "" {
		o.errorString(msg, sp)
		return
	}
	switch kind {
	case 'g':
	case 'p', 'v':
		f.defaultPointer(o, addr, sp)
		return
	default:
		o.errorString("(%pG?)", sp)
		return
	}
	var raw [4]byte
	if !f.readOrEfault(o, addr, raw[:], sp) {
		return
	}
	o.flagNames(uint64(binary.LittleEndian.Uint32(raw[:])), gfpFlagNames)
}

// flagNames is format_flags(): the names of the masks fully present in
// flags, '|'-separated, then what is left in hex.
func (o *output) flagNames(flags uint64, names []flagName) {
	for _, n := range names {
		if flags == 0 {
			break
		}
		if flags&n.mask != n.mask {
			continue
		}
		o.str(n.name)
		if flags &^= n.mask; flags != 0 {
			o.byte('|')
		}
	}
	if flags != 0 {
		o.number(flags, spec{flags: flagSpecial | flagSmall, base: 16, width: -1, prec: -1})
	}
}
