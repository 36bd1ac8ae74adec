// SPDX-License-Identifier: GPL-2.0
/*
 * leaky: a module whose exit forgets to free what init allocated, the most
 * common bug a leak checker finds. Init builds a small table of records
 * (kcalloc), gives each a name (kstrdup) and keeps a scratch buffer
 * (kmalloc, 5000 bytes: the 8k size class). Exit frees the table but not the
 * names or the scratch buffer, so after rmmod 1 + leaky_records allocations
 * are still held, each attributable to the line in leaky_init that made it.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>

static int leaky_records = 3;
module_param(leaky_records, int, 0444);
MODULE_PARM_DESC(leaky_records, "How many named records init allocates (1..16)");

struct leaky_record {
	int id;
	char *name;
};

static struct leaky_record *leaky_table;
static void *leaky_scratch;

static int __init leaky_init(void)
{
	char name[16];
	int i;

	if (leaky_records < 1 || leaky_records > 16)
		return -EINVAL;
	leaky_table = kcalloc(leaky_records, sizeof(*leaky_table), GFP_KERNEL);
	if (!leaky_table)
		return -ENOMEM;
	for (i = 0; i < leaky_records; i++) {
		snprintf(name, sizeof(name), "record-%d", i);
		leaky_table[i].id = i;
		leaky_table[i].name = kstrdup(name, GFP_KERNEL);
	}
	leaky_scratch = kmalloc(5000, GFP_KERNEL);
	pr_info("allocated %d records and a %d-byte scratch buffer\n", leaky_records, 5000);
	return 0;
}

static void __exit leaky_exit(void)
{
	/* The bug: the names and the scratch buffer are never freed. */
	kfree(leaky_table);
	pr_info("freed the table\n");
}

module_init(leaky_init);
module_exit(leaky_exit);
MODULE_LICENSE("GPL");
MODULE_AUTHOR("kemu fixtures");
MODULE_DESCRIPTION("Leaks allocations at unload, for kemu's leak report");
