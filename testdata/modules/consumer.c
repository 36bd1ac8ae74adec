// SPDX-License-Identifier: GPL-2.0
/*
 * consumer: imports every export of producer, the namespaced one through
 * MODULE_IMPORT_NS(KEMU_DEMO), and prints what they return.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/module.h>

#include "producer.h"

static int __init consumer_init(void)
{
	char desc[64];
	int sum;

	sum = producer_add(2, 3);
	pr_info("producer_add(2, 3) = %d\n", sum);
	producer_describe(desc, sizeof(desc));
	pr_info("producer_describe: %s\n", desc);
	pr_info("producer_counter = %d\n", producer_counter);
	pr_info("producer_secret(1) = %lu\n", producer_secret(1));
	return 0;
}

static void __exit consumer_exit(void)
{
	pr_info("exit\n");
}

module_init(consumer_init);
module_exit(consumer_exit);

MODULE_IMPORT_NS(KEMU_DEMO);
MODULE_LICENSE("GPL");
MODULE_AUTHOR("kemu fixtures");
MODULE_DESCRIPTION("Imports producer's plain, GPL-only, data and namespaced exports");
