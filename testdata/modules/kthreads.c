// SPDX-License-Identifier: GPL-2.0
/*
 * kthreads: two kernel threads and the ways they meet other code.
 *
 * Init starts "kemu_worker" with kthread_run and waits (wait_for_completion)
 * until the thread says it is up. The worker then sleeps on a wait queue
 * (wait_event_interruptible) until a timer, re-armed every
 * KTHREADS_PERIOD_MS, hands it an event and wakes the queue; it prints each
 * event with the jiffies that passed since init. "kemu_napper" loops on
 * msleep(KTHREADS_NAP_MS) with the set_current_state()/schedule_timeout()
 * pattern's cousin, counting its naps. Exit stops the timer, then both threads
 * with kthread_stop, printing the exit code each returns (the number of
 * events handled, and of naps).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/err.h>
#include <linux/jiffies.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/timer.h>
#include <linux/wait.h>

#define KTHREADS_PERIOD_MS 100
#define KTHREADS_NAP_MS 250

static DECLARE_WAIT_QUEUE_HEAD(kthreads_wq);
static DECLARE_COMPLETION(kthreads_up);
static struct timer_list kthreads_timer;
static struct task_struct *kthreads_worker, *kthreads_napper;
static int kthreads_pending;
static unsigned long kthreads_start;

static void kthreads_timer_fn(struct timer_list *t)
{
	WRITE_ONCE(kthreads_pending, kthreads_pending + 1);
	wake_up_interruptible(&kthreads_wq);
	mod_timer(t, jiffies + msecs_to_jiffies(KTHREADS_PERIOD_MS));
}

static int kthreads_worker_fn(void *data)
{
	int handled = 0;

	pr_info("worker %s (pid %d) up\n", current->comm, current->pid);
	complete(&kthreads_up);
	while (!kthread_should_stop()) {
		if (wait_event_interruptible(kthreads_wq, READ_ONCE(kthreads_pending) || kthread_should_stop()))
			continue;
		if (!READ_ONCE(kthreads_pending))
			continue;
		WRITE_ONCE(kthreads_pending, kthreads_pending - 1);
		handled++;
		pr_info("worker: event %d after %u ms\n", handled, jiffies_to_msecs(jiffies - kthreads_start));
	}
	pr_info("worker: stopping after %d events\n", handled);
	return handled;
}

static int kthreads_napper_fn(void *data)
{
	int naps = 0;

	while (!kthread_should_stop()) {
		msleep(KTHREADS_NAP_MS);
		naps++;
	}
	return naps;
}

static int __init kthreads_init(void)
{
	kthreads_start = jiffies;
	timer_setup(&kthreads_timer, kthreads_timer_fn, 0);
	kthreads_worker = kthread_run(kthreads_worker_fn, NULL, "kemu_worker");
	if (IS_ERR(kthreads_worker))
		return PTR_ERR(kthreads_worker);
	wait_for_completion(&kthreads_up);
	kthreads_napper = kthread_create(kthreads_napper_fn, NULL, "kemu_napper/%d", 0);
	if (IS_ERR(kthreads_napper)) {
		kthread_stop(kthreads_worker);
		return PTR_ERR(kthreads_napper);
	}
	wake_up_process(kthreads_napper);
	mod_timer(&kthreads_timer, jiffies + msecs_to_jiffies(KTHREADS_PERIOD_MS));
	pr_info("threads started, timer every %d ms\n", KTHREADS_PERIOD_MS);
	return 0;
}

static void __exit kthreads_exit(void)
{
	del_timer_sync(&kthreads_timer);
	pr_info("worker exited with %d\n", kthread_stop(kthreads_worker));
	pr_info("napper exited with %d\n", kthread_stop(kthreads_napper));
}

module_init(kthreads_init);
module_exit(kthreads_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kemu fixtures");
MODULE_DESCRIPTION("Kernel threads woken by a timer through a wait queue, sleeping, and stopped at exit");
