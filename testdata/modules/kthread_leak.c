// SPDX-License-Identifier: GPL-2.0
/*
 * kthread_leak: a module that forgets its kernel thread. Init starts
 * "kemu_leaker", which naps in msleep(KTHREAD_LEAK_NAP_MS) forever; exit does
 * not kthread_stop it. After rmmod frees the module, the thread wakes up from
 * its nap and returns into freed code: on Linux an oops in the thread
 * ("BUG: unable to handle page fault" on the module's old text address,
 * Comm: kemu_leaker), which is what this fixture must reproduce.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/err.h>
#include <linux/kthread.h>
#include <linux/module.h>

#define KTHREAD_LEAK_NAP_MS 100

static int kthread_leak_fn(void *data)
{
	for (;;)
		msleep(KTHREAD_LEAK_NAP_MS);
	return 0;
}

static int __init kthread_leak_init(void)
{
	struct task_struct *t = kthread_run(kthread_leak_fn, NULL, "kemu_leaker");

	if (IS_ERR(t))
		return PTR_ERR(t);
	pr_info("started %s, pid %d\n", t->comm, t->pid);
	return 0;
}

static void __exit kthread_leak_exit(void)
{
	pr_info("exit without stopping the thread\n");
}

module_init(kthread_leak_init);
module_exit(kthread_leak_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kemu fixtures");
MODULE_DESCRIPTION("Leaves its kernel thread running after unload (a bug the kernel oopses on)");
