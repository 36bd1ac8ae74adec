/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hot_chain.h: the body of the hot0..hot9 fixture modules, the workload of the
 * TLB and module placement benchmarks. Each hotN.c defines HOT_INDEX (and
 * HOT_NEXT unless it is the last link) and includes this file, so the ten
 * modules share one source yet are ten separate modules with their own text,
 * data and exports.
 *
 * The chain runs downwards: hotN_step() does its own work, then calls the
 * export hot<N+1>_step() of the next module; hot9_step() ends the chain. So
 * hot0 depends on hot1, ..., hot8 on hot9, and they load in the order
 * hot9, hot8, ..., hot0. hot0 also exports hot_bench(iters), which runs the
 * whole chain iters times and returns a checksum.
 *
 * Per link and call, three mixing functions each walk a slice of the module's
 * 16 KiB static table. Each mixing function is aligned to its own page and the
 * table spans four pages, so one pass through the chain touches about 40 text
 * pages and 40 data pages spread over ten modules: placement strategies and
 * TLB models give measurably different results on it.
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/types.h>

#define HOT_PASTE(a, b, c) a##b##c
#define HOT_XPASTE(a, b, c) HOT_PASTE(a, b, c)
/* HOT_SYM(_step) is hot<HOT_INDEX>_step; HOT_NEXT_SYM(_step) is hot<HOT_NEXT>_step. */
#define HOT_SYM(suffix) HOT_XPASTE(hot, HOT_INDEX, suffix)
#define HOT_NEXT_SYM(suffix) HOT_XPASTE(hot, HOT_NEXT, suffix)

#define HOT_TABLE_LEN 2048	/* u64 entries: 16 KiB, four pages */
#define HOT_STRIDE 67		/* entries between touches: walks every page */
#define HOT_TOUCHES 24		/* table entries each mixing function reads */

static u64 HOT_SYM(_table)[HOT_TABLE_LEN];

/*
 * The three mixing functions differ in their arithmetic so the compiler
 * cannot merge them. Each lives alone in its own page-aligned text section,
 * so the loader (not the assembler, whose long alignment padding objtool
 * rejects) puts each on a page of its own: four text pages per module.
 */
#define HOT_PAGE_TEXT(name) noinline __section(".text.kemu_" name) __aligned(PAGE_SIZE)
static HOT_PAGE_TEXT("mix_add") u64 HOT_SYM(_mix_add)(u64 x)
{
	unsigned int i, idx = x % HOT_TABLE_LEN;

	for (i = 0; i < HOT_TOUCHES; i++) {
		x += HOT_SYM(_table)[idx];
		idx = (idx + HOT_STRIDE) % HOT_TABLE_LEN;
	}
	return x;
}

static HOT_PAGE_TEXT("mix_xor") u64 HOT_SYM(_mix_xor)(u64 x)
{
	unsigned int i, idx = (x >> 7) % HOT_TABLE_LEN;

	for (i = 0; i < HOT_TOUCHES; i++) {
		x ^= HOT_SYM(_table)[idx] + i;
		idx = (idx + 3 * HOT_STRIDE) % HOT_TABLE_LEN;
	}
	return x;
}

static HOT_PAGE_TEXT("mix_rot") u64 HOT_SYM(_mix_rot)(u64 x)
{
	unsigned int i, idx = (x >> 13) % HOT_TABLE_LEN;

	for (i = 0; i < HOT_TOUCHES; i++) {
		x = rol64(x, 5) + HOT_SYM(_table)[idx];
		idx = (idx + 5 * HOT_STRIDE) % HOT_TABLE_LEN;
	}
	return x;
}

#ifdef HOT_NEXT
u64 HOT_NEXT_SYM(_step)(u64 x);
#endif

u64 HOT_SYM(_step)(u64 x)
{
	x = HOT_SYM(_mix_add)(x);
	x = HOT_SYM(_mix_xor)(x);
	x = HOT_SYM(_mix_rot)(x);
#ifdef HOT_NEXT
	x = HOT_NEXT_SYM(_step)(x);
#endif
	return x;
}
EXPORT_SYMBOL_GPL(HOT_SYM(_step));

#if HOT_INDEX == 0
u64 hot_bench(unsigned long iters)
{
	u64 sum = 0;
	unsigned long i;

	for (i = 0; i < iters; i++)
		sum = hot0_step(sum + i);
	return sum;
}
EXPORT_SYMBOL_GPL(hot_bench);
#endif

static int __init hot_link_init(void)
{
	unsigned int i;

	/* Deterministic contents that differ per module: a multiplicative hash. */
	for (i = 0; i < HOT_TABLE_LEN; i++)
		HOT_SYM(_table)[i] = (i + 1 + HOT_INDEX * HOT_TABLE_LEN) * 0x9E3779B97F4A7C15ull;
#if HOT_INDEX == 0
	pr_info("hot_bench(1) = %#llx\n", hot_bench(1));
#else
	pr_info("ready\n");
#endif
	return 0;
}

static void __exit hot_link_exit(void)
{
}

module_init(hot_link_init);
module_exit(hot_link_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kemu fixtures");
MODULE_DESCRIPTION("One link of the hot0..hot9 cross-module call chain (TLB/placement workload)");
