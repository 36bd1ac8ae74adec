// SPDX-License-Identifier: GPL-2.0
/*
 * consumer_nons: uses producer's namespaced symbol producer_secret WITHOUT
 * MODULE_IMPORT_NS(KEMU_DEMO). The kernel refuses to load it with
 * "consumer_nons: module uses symbol (producer_secret) from namespace
 * KEMU_DEMO, but does not import it." (EINVAL). See Kbuild for how it is built.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/module.h>

#include "producer.h"

static int __init consumer_nons_init(void)
{
	pr_info("producer_secret(1) = %lu\n", producer_secret(1));
	return 0;
}

static void __exit consumer_nons_exit(void)
{
	pr_info("exit\n");
}

module_init(consumer_nons_init);
module_exit(consumer_nons_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kemu fixtures");
MODULE_DESCRIPTION("Uses a namespaced symbol without importing its namespace (must be rejected)");
