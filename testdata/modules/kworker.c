// SPDX-License-Identifier: GPL-2.0
/*
 * kworker: a kthread worker, and waits on a bit and on a variable.
 *
 * Init creates the worker "kemu_kworker" (kthread_create_worker) and marks
 * bit 0 of kworker_flags busy, queues a work item that naps
 * KWORKER_NAP_MS, then clears the bit and calls wake_up_bit, and waits for
 * the bit with wait_on_bit. Then it queues a delayed item
 * (KWORKER_DELAY_MS) that sets kworker_done and calls wake_up_var, and waits
 * for the variable with wait_var_event. Last it queues the napping item again
 * and flushes the worker (kthread_flush_worker). Each step prints the
 * milliseconds since init. Exit cancels the delayed item and destroys the
 * worker.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitops.h>
#include <linux/delay.h>
#include <linux/err.h>
#include <linux/jiffies.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/wait_bit.h>

#define KWORKER_NAP_MS 20
#define KWORKER_DELAY_MS 100

static struct kthread_worker *kworker_worker;
static struct kthread_work kworker_nap;
static struct kthread_delayed_work kworker_later;
static unsigned long kworker_flags;
static int kworker_done;
static int kworker_runs;
static unsigned long kworker_start;

static unsigned int kworker_ms(void)
{
	return jiffies_to_msecs(jiffies - kworker_start);
}

static void kworker_nap_fn(struct kthread_work *work)
{
	kworker_runs++;
	pr_info("nap %d on %s at %u ms\n", kworker_runs, current->comm, kworker_ms());
	msleep(KWORKER_NAP_MS);
	clear_bit_unlock(0, &kworker_flags);
	smp_mb__after_atomic();
	wake_up_bit(&kworker_flags, 0);
}

static void kworker_later_fn(struct kthread_work *work)
{
	pr_info("delayed item at %u ms\n", kworker_ms());
	WRITE_ONCE(kworker_done, 1);
	wake_up_var(&kworker_done);
}

static int __init kworker_init(void)
{
	int ret;

	kworker_start = jiffies;
	kworker_worker = kthread_create_worker(0, "kemu_kworker");
	if (IS_ERR(kworker_worker))
		return PTR_ERR(kworker_worker);
	kthread_init_work(&kworker_nap, kworker_nap_fn);
	kthread_init_delayed_work(&kworker_later, kworker_later_fn);

	set_bit(0, &kworker_flags);
	kthread_queue_work(kworker_worker, &kworker_nap);
	ret = wait_on_bit(&kworker_flags, 0, TASK_UNINTERRUPTIBLE);
	pr_info("bit clear at %u ms (wait_on_bit returned %d)\n", kworker_ms(), ret);

	kthread_queue_delayed_work(kworker_worker, &kworker_later, msecs_to_jiffies(KWORKER_DELAY_MS));
	wait_var_event(&kworker_done, READ_ONCE(kworker_done));
	pr_info("variable set at %u ms\n", kworker_ms());

	set_bit(0, &kworker_flags);
	kthread_queue_work(kworker_worker, &kworker_nap);
	kthread_flush_worker(kworker_worker);
	pr_info("flushed at %u ms after %d naps, bit %d\n", kworker_ms(), kworker_runs,
		test_bit(0, &kworker_flags));
	return 0;
}

static void __exit kworker_exit(void)
{
	bool pending = kthread_cancel_delayed_work_sync(&kworker_later);

	kthread_destroy_worker(kworker_worker);
	pr_info("worker destroyed (delayed item pending: %d)\n", pending);
}

module_init(kworker_init);
module_exit(kworker_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kemu fixtures");
MODULE_DESCRIPTION("kemu fixture: a kthread worker, wait_on_bit and wait_var_event");
