// SPDX-License-Identifier: GPL-2.0
/*
 * fault_bug: init hits BUG() when an internal consistency check fails.
 * Linux prints "kernel BUG at <file>:<line>!" from the __bug_table entry
 * and "invalid opcode: 0000 [#1] PREEMPT SMP NOPTI", then an oops.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bug.h>
#include <linux/module.h>

static int fault_bug_state = 1;
module_param(fault_bug_state, int, 0444);
MODULE_PARM_DESC(fault_bug_state, "Internal state checked in init; BUG() unless it is 0");

static int __init fault_bug_init(void)
{
	pr_info("checking state %d\n", fault_bug_state);
	BUG_ON(fault_bug_state != 0);
	pr_info("state is consistent\n");
	return 0;
}

static void __exit fault_bug_exit(void)
{
}

module_init(fault_bug_init);
module_exit(fault_bug_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kemu fixtures");
MODULE_DESCRIPTION("Hits BUG() in init (oops) unless fault_bug_state=0");
