// SPDX-License-Identifier: GPL-2.0
/*
 * timers: deferred execution. Init arms a timer (timer_setup + mod_timer,
 * 50 ms) and queues a work item on the system workqueue (schedule_work). Each
 * callback prints when it runs; the timer re-arms itself until it has fired
 * timers_ticks times. Exit stops both with del_timer_sync and
 * cancel_work_sync, as any driver with deferred work must.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/jiffies.h>
#include <linux/module.h>
#include <linux/timer.h>
#include <linux/workqueue.h>

#define TIMERS_PERIOD_MS 50

static int timers_ticks = 3;
module_param(timers_ticks, int, 0444);
MODULE_PARM_DESC(timers_ticks, "How many times the timer fires before it stops re-arming");

static struct timer_list timers_timer;
static struct work_struct timers_work;
static atomic_t timers_fired = ATOMIC_INIT(0);

static void timers_timer_fn(struct timer_list *t)
{
	int n = atomic_inc_return(&timers_fired);

	pr_info("timer fired (%d of %d)\n", n, timers_ticks);
	if (n < timers_ticks)
		mod_timer(t, jiffies + msecs_to_jiffies(TIMERS_PERIOD_MS));
}

static void timers_work_fn(struct work_struct *work)
{
	pr_info("work item ran\n");
}

static int __init timers_init(void)
{
	timer_setup(&timers_timer, timers_timer_fn, 0);
	INIT_WORK(&timers_work, timers_work_fn);
	mod_timer(&timers_timer, jiffies + msecs_to_jiffies(TIMERS_PERIOD_MS));
	schedule_work(&timers_work);
	pr_info("timer armed for %d ms, work queued\n", TIMERS_PERIOD_MS);
	return 0;
}

static void __exit timers_exit(void)
{
	del_timer_sync(&timers_timer);
	cancel_work_sync(&timers_work);
	pr_info("exit after %d timer runs\n", atomic_read(&timers_fired));
}

module_init(timers_init);
module_exit(timers_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kemu fixtures");
MODULE_DESCRIPTION("A re-arming timer and a work item that print when they run");
