// SPDX-License-Identifier: GPL-2.0
/*
 * fault_usercopy: init copies from a bad user address, (void __user *)0x10.
 * This is not an oops: the faulting user access is fixed up through the
 * module's exception table and copy_from_user() returns the number of bytes
 * it could not copy (all of them). Init prints that count and returns 0.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/uaccess.h>

#define FAULT_USERCOPY_LEN 16

static int __init fault_usercopy_init(void)
{
	const void __user *bad = (const void __user *)0x10;
	char buf[FAULT_USERCOPY_LEN];
	unsigned long left;

	left = copy_from_user(buf, bad, sizeof(buf));
	pr_info("copy_from_user from %px: %lu of %zu bytes not copied\n", bad, left, sizeof(buf));
	return 0;
}

static void __exit fault_usercopy_exit(void)
{
}

module_init(fault_usercopy_init);
module_exit(fault_usercopy_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kemu fixtures");
MODULE_DESCRIPTION("copy_from_user from a bad user pointer in init; reports the uncopied count");
