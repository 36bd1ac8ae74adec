// SPDX-License-Identifier: GPL-2.0
/*
 * fault_recursion: init recurses without bound until the 16 KiB kernel stack
 * overflows into its guard page. Linux 6.1 reports "BUG: TASK stack guard page
 * was hit at ..." and dies with "stack guard page: 0000 [#1] ..." (an oops).
 *
 * The recursion is real in the generated code: the function is noinline, uses
 * its frame (a volatile local array) after the recursive call so it is not a
 * tail call, and the stop condition depends on a parameter the compiler
 * cannot know (fault_recursion_limit, default -1: never).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>

static int fault_recursion_limit = -1;
module_param(fault_recursion_limit, int, 0444);
MODULE_PARM_DESC(fault_recursion_limit, "Depth at which to stop recursing (-1: never)");

static noinline int fault_recurse(int depth)
{
	volatile char frame[64];

	frame[depth & 63] = (char)depth;
	if (depth == fault_recursion_limit)
		return depth;
	return fault_recurse(depth + 1) + frame[depth & 63];
}

static int __init fault_recursion_init(void)
{
	pr_info("recursing, limit %d\n", fault_recursion_limit);
	pr_info("returned %d\n", fault_recurse(0));
	return 0;
}

static void __exit fault_recursion_exit(void)
{
}

module_init(fault_recursion_init);
module_exit(fault_recursion_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kemu fixtures");
MODULE_DESCRIPTION("Recurses without bound in init (kernel stack overflow)");
