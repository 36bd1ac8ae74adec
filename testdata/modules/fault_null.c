// SPDX-License-Identifier: GPL-2.0
/*
 * fault_null: init writes through a NULL pointer. Linux prints
 * "BUG: kernel NULL pointer dereference, address: 0000000000000008" (the
 * field at offset 8) and an oops naming fault_null_init; insmod is killed
 * with the module stuck in state "coming". The pointer comes from a lookup in
 * an empty cache that the caller forgets to check; the kernel's
 * -fno-delete-null-pointer-checks keeps the store in the generated code.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/module.h>

struct fault_null_record {
	unsigned long id;
	unsigned long value;
};

/* A small cache that nothing ever fills. */
static struct fault_null_record *fault_null_cache[4];

static noinline struct fault_null_record *fault_null_lookup(unsigned long id)
{
	return fault_null_cache[id % ARRAY_SIZE(fault_null_cache)];
}

static int __init fault_null_init(void)
{
	struct fault_null_record *rec;

	pr_info("looking up record 1\n");
	rec = fault_null_lookup(1);
	WRITE_ONCE(rec->value, 42);
	pr_info("not reached: value=%lu\n", rec->value);
	return 0;
}

static void __exit fault_null_exit(void)
{
}

module_init(fault_null_init);
module_exit(fault_null_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kemu fixtures");
MODULE_DESCRIPTION("Dereferences a NULL pointer in init (oops)");
