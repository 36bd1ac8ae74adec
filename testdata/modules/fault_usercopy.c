// SPDX-License-Identifier: GPL-2.0
/*
 * fault_usercopy: init reads from a bad user address, (void __user *)0x10,
 * in the two ways kernel code does. Neither is an oops: the faulting user
 * access is fixed up through an exception table and an error is returned.
 *
 *  - copy_from_user() runs vmlinux's _copy_from_user, whose own exception
 *    table fixes the fault; it returns the bytes it could not copy (all 16).
 *  - unsafe_get_user() inside user_access_begin()/user_access_end() is
 *    inlined into this module, so the fixup comes from the module's own
 *    __ex_table: it jumps to the error label and init reports -EFAULT (-14).
 *
 * Init prints both results and returns 0.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/uaccess.h>

#define FAULT_USERCOPY_LEN 16

/* The pattern of filldir() and friends: one access_ok, then unchecked accesses. */
static noinline int fault_usercopy_read_int(const int __user *uptr, int *value)
{
	if (!user_access_begin(uptr, sizeof(*uptr)))
		return -EFAULT;
	unsafe_get_user(*value, uptr, efault);
	user_access_end();
	return 0;
efault:
	user_access_end();
	return -EFAULT;
}

static int __init fault_usercopy_init(void)
{
	const void __user *bad = (const void __user *)0x10;
	char buf[FAULT_USERCOPY_LEN];
	unsigned long left;
	int value = -1, err;

	left = copy_from_user(buf, bad, sizeof(buf));
	pr_info("copy_from_user from %px: %lu of %zu bytes not copied\n", bad, left, sizeof(buf));
	err = fault_usercopy_read_int(bad, &value);
	pr_info("unsafe_get_user from %px: %d\n", bad, err);
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
