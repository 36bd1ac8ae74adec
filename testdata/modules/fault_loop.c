// SPDX-License-Identifier: GPL-2.0
/*
 * fault_loop: init waits forever for a flag nobody sets. On Linux this is a
 * soft lockup ("watchdog: BUG: soft lockup - CPU#0 stuck for 22s!
 * [insmod:...]"); an emulator must stop it with an instruction or time
 * budget. READ_ONCE and cpu_relax() keep the loop in the generated code.
 * Loading with fault_loop_ready=1 skips the loop (init then prints "ready
 * after 0 spins"), which tests that the budget does not fire spuriously.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/compiler.h>
#include <linux/module.h>
#include <asm/processor.h>

static int fault_loop_ready;
module_param(fault_loop_ready, int, 0644);
MODULE_PARM_DESC(fault_loop_ready, "The flag init waits for; load with fault_loop_ready=1 to not hang");

static int __init fault_loop_init(void)
{
	unsigned long spins = 0;

	pr_info("waiting for ready\n");
	while (!READ_ONCE(fault_loop_ready)) {
		cpu_relax();
		spins++;
	}
	pr_info("ready after %lu spins\n", spins);
	return 0;
}

static void __exit fault_loop_exit(void)
{
}

module_init(fault_loop_init);
module_exit(fault_loop_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kemu fixtures");
MODULE_DESCRIPTION("Spins forever in init (soft lockup)");
