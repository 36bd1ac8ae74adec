// SPDX-License-Identifier: GPL-2.0
/*
 * fault_uaf_init: keeps pointers into init memory past init, the classic
 * __init / __initdata misuse. Both fault once Linux has freed the module's
 * init sections after a successful init:
 *
 *  - a timer armed in init fires ~10 ms later and prints a greeting through
 *    a pointer to __initdata (a read of freed memory);
 *  - the exported fault_uaf_init_call() calls an __init function through a
 *    stored pointer (an instruction fetch from freed memory); another module
 *    or the emulator can call it at any time after load.
 *
 * Init itself succeeds and prints, so the failure shows up only afterwards.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/jiffies.h>
#include <linux/module.h>
#include <linux/timer.h>

static char fault_uaf_greeting[] __initdata = "greeting from init data";

static const char *saved_greeting;
static int (*saved_setup)(int);
static struct timer_list fault_uaf_timer;

static int __init fault_uaf_setup(int x)
{
	return x * 3 + 1;
}

static void fault_uaf_timer_fn(struct timer_list *t)
{
	/* Read a byte here so the fault is in this module's code, not in vsprintf. */
	char first = READ_ONCE(saved_greeting[0]);

	pr_info("timer: greeting starts with '%c': %s\n", first, saved_greeting);
}

int fault_uaf_init_call(int x)
{
	return saved_setup(x);
}
EXPORT_SYMBOL_GPL(fault_uaf_init_call);

static int __init fault_uaf_init(void)
{
	saved_greeting = fault_uaf_greeting;
	saved_setup = fault_uaf_setup;
	pr_info("init: setup(1)=%d, greeting \"%s\"\n", saved_setup(1), saved_greeting);
	timer_setup(&fault_uaf_timer, fault_uaf_timer_fn, 0);
	mod_timer(&fault_uaf_timer, jiffies + msecs_to_jiffies(10));
	return 0;
}

static void __exit fault_uaf_exit(void)
{
	del_timer_sync(&fault_uaf_timer);
}

module_init(fault_uaf_init);
module_exit(fault_uaf_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kemu fixtures");
MODULE_DESCRIPTION("Uses __init code and __initdata after init (timer and exported call)");
