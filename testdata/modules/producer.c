// SPDX-License-Identifier: GPL-2.0
/*
 * producer: exports one symbol of every export flavour, for consumer and
 * consumer_nons to import.
 *
 *   producer_add        EXPORT_SYMBOL          function
 *   producer_describe   EXPORT_SYMBOL_GPL      function
 *   producer_counter    EXPORT_SYMBOL          data object (int)
 *   producer_secret     EXPORT_SYMBOL_NS_GPL   function in namespace KEMU_DEMO
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/mutex.h>

#include "producer.h"

int producer_counter;
EXPORT_SYMBOL(producer_counter);

static DEFINE_MUTEX(producer_lock);

int producer_add(int a, int b)
{
	mutex_lock(&producer_lock);
	producer_counter++;
	mutex_unlock(&producer_lock);
	return a + b;
}
EXPORT_SYMBOL(producer_add);

int producer_describe(char *buf, size_t size)
{
	return snprintf(buf, size, "producer called %d times", READ_ONCE(producer_counter));
}
EXPORT_SYMBOL_GPL(producer_describe);

unsigned long producer_secret(unsigned long x)
{
	/* A recognisable, easily checked transformation. */
	return x * 2654435761UL;
}
EXPORT_SYMBOL_NS_GPL(producer_secret, KEMU_DEMO);

static int __init producer_init(void)
{
	pr_info("ready, counter=%d\n", producer_counter);
	return 0;
}

static void __exit producer_exit(void)
{
	pr_info("exit, counter=%d\n", producer_counter);
}

module_init(producer_init);
module_exit(producer_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kemu fixtures");
MODULE_DESCRIPTION("Exports a function, a GPL-only function, a data object and a namespaced symbol");
