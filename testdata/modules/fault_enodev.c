// SPDX-License-Identifier: GPL-2.0
/*
 * fault_enodev: a driver whose probe finds no hardware. Init logs why and
 * returns -ENODEV; Linux then frees the module and insmod reports
 * "insmod: ERROR: could not insert module fault_enodev.ko: No such device".
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/errno.h>
#include <linux/module.h>

static int __init fault_enodev_init(void)
{
	pr_info("no device found\n");
	return -ENODEV;
}

static void __exit fault_enodev_exit(void)
{
}

module_init(fault_enodev_init);
module_exit(fault_enodev_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kemu fixtures");
MODULE_DESCRIPTION("Init returns -ENODEV");
