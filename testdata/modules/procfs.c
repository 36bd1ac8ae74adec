// SPDX-License-Identifier: GPL-2.0
/*
 * procfs: a /proc/kemu_procfs entry read through seq_file (single_open).
 * Each read shows how many times the file has been opened and a short table,
 * e.g.
 *
 *   opens: 1
 *   square 1 = 1
 *   ...
 *   square 4 = 16
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>

#define PROCFS_NAME "kemu_procfs"

static struct proc_dir_entry *procfs_entry;
static atomic_t procfs_opens = ATOMIC_INIT(0);

static int procfs_show(struct seq_file *m, void *v)
{
	int i;

	seq_printf(m, "opens: %d\n", atomic_read(&procfs_opens));
	for (i = 1; i <= 4; i++)
		seq_printf(m, "square %d = %d\n", i, i * i);
	return 0;
}

static int procfs_open(struct inode *inode, struct file *file)
{
	atomic_inc(&procfs_opens);
	return single_open(file, procfs_show, NULL);
}

static const struct proc_ops procfs_ops = {
	.proc_open = procfs_open,
	.proc_read = seq_read,
	.proc_lseek = seq_lseek,
	.proc_release = single_release,
};

static int __init procfs_init(void)
{
	procfs_entry = proc_create(PROCFS_NAME, 0444, NULL, &procfs_ops);
	if (!procfs_entry)
		return -ENOMEM;
	pr_info("created /proc/%s\n", PROCFS_NAME);
	return 0;
}

static void __exit procfs_exit(void)
{
	proc_remove(procfs_entry);
	pr_info("removed /proc/%s\n", PROCFS_NAME);
}

module_init(procfs_init);
module_exit(procfs_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kemu fixtures");
MODULE_DESCRIPTION("A /proc entry read through seq_file");
