// SPDX-License-Identifier: GPL-2.0
/*
 * hello: the smallest realistic module, used to test parameter parsing.
 *
 * It declares one parameter of each common kind (int, uint, bool, charp, a
 * fixed string buffer and an int array) and prints every value from init, so a
 * test can set parameters at load time and read them back from the log.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/moduleparam.h>

static int count = 3;
module_param(count, int, 0644);
MODULE_PARM_DESC(count, "How many greetings to print");

static unsigned int limit = 100;
module_param(limit, uint, 0444);
MODULE_PARM_DESC(limit, "An unsigned upper bound");

static bool verbose;
module_param(verbose, bool, 0644);
MODULE_PARM_DESC(verbose, "Print extra detail");

static char *whom = "world";
module_param(whom, charp, 0444);
MODULE_PARM_DESC(whom, "Who to greet");

static char tag[16] = "kemu";
module_param_string(tag, tag, sizeof(tag), 0444);
MODULE_PARM_DESC(tag, "A short tag copied into a fixed buffer (at most 15 characters)");

static int values[4] = { 1, 2, 3, 4 };
static int nvalues = 4;
module_param_array(values, int, &nvalues, 0444);
MODULE_PARM_DESC(values, "Up to four integers");

static int __init hello_init(void)
{
	int i, sum = 0;

	pr_info("hello, %s\n", whom);
	pr_info("count=%d limit=%u verbose=%d tag=%s\n", count, limit, verbose, tag);
	for (i = 0; i < nvalues; i++)
		sum += values[i];
	pr_info("values: %d given, sum=%d\n", nvalues, sum);
	for (i = 0; i < count && i < 8; i++)
		pr_info("greeting %d of %d\n", i + 1, count);
	if (verbose)
		pr_info("verbose: whom at %p, tag buffer %zu bytes\n", whom, sizeof(tag));
	return 0;
}

static void __exit hello_exit(void)
{
	pr_info("goodbye, %s\n", whom);
}

module_init(hello_init);
module_exit(hello_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kemu fixtures");
MODULE_DESCRIPTION("Greets with module parameters of every common type");
MODULE_VERSION("1.0");
