// SPDX-License-Identifier: GPL-2.0
/*
 * kobj: a kobject under /sys/kernel with attribute groups.
 *
 * kobject_create_and_add("kemu_kobj", kernel_kobj) makes
 * /sys/kernel/kemu_kobj. Its unnamed group holds "value" (an int, 0644),
 * "name" (0444, the kobject's name) and "hidden", which the group's
 * is_visible callback hides. The group "stats" makes the subdirectory
 * stats/ with "stores" (how many writes "value" accepted). "reset" (0200,
 * sysfs_create_file) zeroes value. "blob" (sysfs_create_bin_file, 16 bytes,
 * 0644) is a binary attribute read and written at the file position; sysfs
 * keeps reads and writes inside its size. Exit removes the files and puts the
 * kobject.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/kobject.h>
#include <linux/module.h>
#include <linux/string.h>
#include <linux/sysfs.h>

static int kobj_value = 7;
static unsigned int kobj_stores;
static struct kobject *kemu_kobj;

static ssize_t value_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", kobj_value);
}

static ssize_t value_store(struct kobject *kobj, struct kobj_attribute *attr,
			   const char *buf, size_t count)
{
	int v, ret;

	ret = kstrtoint(buf, 0, &v);
	if (ret)
		return ret;
	kobj_value = v;
	kobj_stores++;
	return count;
}

static ssize_t name_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%s\n", kobject_name(kobj));
}

static ssize_t hidden_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "should not be visible\n");
}

static ssize_t stores_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", kobj_stores);
}

static ssize_t reset_store(struct kobject *kobj, struct kobj_attribute *attr,
			   const char *buf, size_t count)
{
	kobj_value = 0;
	return count;
}

static char kobj_blob[16] = "0123456789abcdef";

static ssize_t blob_read(struct file *filp, struct kobject *kobj, struct bin_attribute *attr,
			 char *buf, loff_t off, size_t count)
{
	memcpy(buf, kobj_blob + off, count);
	return count;
}

static ssize_t blob_write(struct file *filp, struct kobject *kobj, struct bin_attribute *attr,
			  char *buf, loff_t off, size_t count)
{
	memcpy(kobj_blob + off, buf, count);
	return count;
}

static BIN_ATTR_RW(blob, sizeof(kobj_blob));

static struct kobj_attribute value_attr = __ATTR_RW(value);
static struct kobj_attribute name_attr = __ATTR_RO(name);
static struct kobj_attribute hidden_attr = __ATTR_RO(hidden);
static struct kobj_attribute stores_attr = __ATTR_RO(stores);
static struct kobj_attribute reset_attr = __ATTR_WO(reset);

static struct attribute *kemu_attrs[] = {
	&value_attr.attr,
	&name_attr.attr,
	&hidden_attr.attr,
	NULL,
};

static umode_t kemu_attr_visible(struct kobject *kobj, struct attribute *attr, int n)
{
	return attr == &hidden_attr.attr ? 0 : attr->mode;
}

static const struct attribute_group kemu_group = {
	.attrs = kemu_attrs,
	.is_visible = kemu_attr_visible,
};

static struct attribute *stats_attrs[] = {
	&stores_attr.attr,
	NULL,
};

static const struct attribute_group stats_group = {
	.name = "stats",
	.attrs = stats_attrs,
};

static int __init kobj_init(void)
{
	int ret;

	kemu_kobj = kobject_create_and_add("kemu_kobj", kernel_kobj);
	if (!kemu_kobj)
		return -ENOMEM;
	ret = sysfs_create_group(kemu_kobj, &kemu_group);
	if (ret)
		goto put;
	ret = sysfs_create_group(kemu_kobj, &stats_group);
	if (ret)
		goto remove_group;
	ret = sysfs_create_file(kemu_kobj, &reset_attr.attr);
	if (ret)
		goto remove_stats;
	ret = sysfs_create_bin_file(kemu_kobj, &bin_attr_blob);
	if (ret)
		goto remove_reset;
	pr_info("created /sys/kernel/%s\n", kobject_name(kemu_kobj));
	return 0;

remove_reset:
	sysfs_remove_file(kemu_kobj, &reset_attr.attr);
remove_stats:
	sysfs_remove_group(kemu_kobj, &stats_group);
remove_group:
	sysfs_remove_group(kemu_kobj, &kemu_group);
put:
	kobject_put(kemu_kobj);
	return ret;
}

static void __exit kobj_exit(void)
{
	sysfs_remove_bin_file(kemu_kobj, &bin_attr_blob);
	sysfs_remove_file(kemu_kobj, &reset_attr.attr);
	sysfs_remove_group(kemu_kobj, &stats_group);
	sysfs_remove_group(kemu_kobj, &kemu_group);
	kobject_put(kemu_kobj);
	pr_info("exit, value %d after %u stores\n", kobj_value, kobj_stores);
}

module_init(kobj_init);
module_exit(kobj_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kemu fixtures");
MODULE_DESCRIPTION("kemu fixture: kobject with attribute groups");
