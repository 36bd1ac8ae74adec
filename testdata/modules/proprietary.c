// SPDX-License-Identifier: GPL-2.0
/*
 * proprietary: a module that declares a GPL-incompatible license and still
 * calls a GPL-only export of vmlinux (ktime_get).
 *
 * The source itself is GPL-2.0 like every fixture; MODULE_LICENSE is what the
 * loader judges. Linux taints the kernel with P on load ("proprietary: module
 * license 'Proprietary' taints kernel.") and then cannot resolve ktime_get for
 * it ("proprietary: Unknown symbol ktime_get (err -2)"), so loading fails with
 * ENOENT. See Kbuild for how modpost is made to emit this module.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/timekeeping.h>

static int __init proprietary_init(void)
{
	ktime_t now = ktime_get();

	pr_info("monotonic time %lld ns\n", ktime_to_ns(now));
	return 0;
}

static void __exit proprietary_exit(void)
{
	pr_info("exit\n");
}

module_init(proprietary_init);
module_exit(proprietary_exit);

MODULE_LICENSE("Proprietary");
MODULE_AUTHOR("kemu fixtures");
MODULE_DESCRIPTION("Non-GPL module that uses a GPL-only vmlinux export (must fail to resolve)");
