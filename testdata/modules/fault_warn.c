// SPDX-License-Identifier: GPL-2.0
/*
 * fault_warn: init triggers WARN_ON(1), which Linux reports as
 * "WARNING: CPU: 0 PID: ... at <file>:<line> fault_warn_init+..." with a
 * register dump and call trace, then carries on: init prints again and
 * returns 0, so the module loads (and the kernel is tainted W).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bug.h>
#include <linux/module.h>

static int __init fault_warn_init(void)
{
	pr_info("about to warn\n");
	WARN_ON(1);
	pr_info("still running after WARN_ON\n");
	return 0;
}

static void __exit fault_warn_exit(void)
{
	pr_info("exit\n");
}

module_init(fault_warn_init);
module_exit(fault_warn_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kemu fixtures");
MODULE_DESCRIPTION("Triggers WARN_ON(1) in init and loads anyway");
