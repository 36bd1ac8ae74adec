// SPDX-License-Identifier: GPL-2.0
/*
 * busywait: init waits without sleeping, twice, as drivers polling hardware
 * do. First it spins on jiffies for busywait_ms (time_before + cpu_relax,
 * no kernel call in the loop), then polls ktime_get() until 2 ms have passed
 * (a readx_poll_timeout-style deadline). Each wait ends only if time moves
 * while code runs; init prints how long each took.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/jiffies.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <asm/processor.h>

static int busywait_ms = 100;
module_param(busywait_ms, int, 0444);
MODULE_PARM_DESC(busywait_ms, "How long init spins on jiffies");

static int __init busywait_init(void)
{
	unsigned long start = jiffies, until = start + msecs_to_jiffies(busywait_ms);
	ktime_t deadline;
	unsigned int polls = 0;

	pr_info("spinning on jiffies for %d ms\n", busywait_ms);
	while (time_before(jiffies, until))
		cpu_relax();
	pr_info("spun for %u ms\n", jiffies_to_msecs(jiffies - start));

	deadline = ktime_add_us(ktime_get(), 2000);
	while (ktime_before(ktime_get(), deadline))
		polls++;
	pr_info("polled ktime_get() %u times for 2 ms\n", polls);
	return 0;
}

static void __exit busywait_exit(void)
{
}

module_init(busywait_init);
module_exit(busywait_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kemu fixtures");
MODULE_DESCRIPTION("Busy-waits on jiffies and on ktime_get in init");
