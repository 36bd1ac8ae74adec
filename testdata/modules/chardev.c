// SPDX-License-Identifier: GPL-2.0
/*
 * chardev: a character device and a misc device over kmalloc'd buffers.
 *
 * /dev/kemu_chardev is registered the classic way (alloc_chrdev_region, cdev,
 * class and device) and supports read, write, lseek-free sequential access and
 * a few ioctls. /dev/kemu_misc is a misc device with its own small buffer.
 * Both set .owner = THIS_MODULE so opening them pins the module, as in any
 * real driver.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/ioctl.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>

#define CHARDEV_NAME	"kemu_chardev"
#define MISC_NAME	"kemu_misc"
#define CHARDEV_BUFSZ	4096
#define MISC_BUFSZ	256

/* ioctl numbers: 'k' is otherwise unused by this fixture's users. */
#define KEMU_IOC_MAGIC		'k'
#define KEMU_IOC_GET_SIZE	_IOR(KEMU_IOC_MAGIC, 1, int)
#define KEMU_IOC_CLEAR		_IO(KEMU_IOC_MAGIC, 2)
#define KEMU_IOC_SET_VALUE	_IOW(KEMU_IOC_MAGIC, 3, int)
#define KEMU_IOC_GET_VALUE	_IOR(KEMU_IOC_MAGIC, 4, int)

struct chardev_state {
	struct mutex lock;	/* serialises buffer access */
	char *buf;
	size_t len;		/* bytes of buf holding data */
	int value;		/* set/get through ioctl */
	unsigned int opens;
};

static struct chardev_state state;
static dev_t chardev_devt;
static struct cdev chardev_cdev;
static struct class *chardev_class;
static struct device *chardev_device;

static int chardev_open(struct inode *inode, struct file *file)
{
	mutex_lock(&state.lock);
	state.opens++;
	mutex_unlock(&state.lock);
	file->private_data = &state;
	return 0;
}

static int chardev_release(struct inode *inode, struct file *file)
{
	return 0;
}

static ssize_t chardev_read(struct file *file, char __user *ubuf, size_t count, loff_t *ppos)
{
	struct chardev_state *s = file->private_data;
	ssize_t ret;

	mutex_lock(&s->lock);
	if (*ppos >= s->len) {
		ret = 0;
		goto out;
	}
	count = min_t(size_t, count, s->len - *ppos);
	if (copy_to_user(ubuf, s->buf + *ppos, count)) {
		ret = -EFAULT;
		goto out;
	}
	*ppos += count;
	ret = count;
out:
	mutex_unlock(&s->lock);
	return ret;
}

static ssize_t chardev_write(struct file *file, const char __user *ubuf, size_t count, loff_t *ppos)
{
	struct chardev_state *s = file->private_data;
	ssize_t ret;

	if (*ppos >= CHARDEV_BUFSZ)
		return -ENOSPC;
	mutex_lock(&s->lock);
	count = min_t(size_t, count, CHARDEV_BUFSZ - *ppos);
	if (copy_from_user(s->buf + *ppos, ubuf, count)) {
		ret = -EFAULT;
		goto out;
	}
	*ppos += count;
	if (*ppos > s->len)
		s->len = *ppos;
	ret = count;
out:
	mutex_unlock(&s->lock);
	return ret;
}

static long chardev_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct chardev_state *s = file->private_data;
	int __user *uarg = (int __user *)arg;
	long ret = 0;
	int v;

	mutex_lock(&s->lock);
	switch (cmd) {
	case KEMU_IOC_GET_SIZE:
		v = s->len;
		if (copy_to_user(uarg, &v, sizeof(v)))
			ret = -EFAULT;
		break;
	case KEMU_IOC_CLEAR:
		memset(s->buf, 0, CHARDEV_BUFSZ);
		s->len = 0;
		break;
	case KEMU_IOC_SET_VALUE:
		if (copy_from_user(&v, uarg, sizeof(v)))
			ret = -EFAULT;
		else
			s->value = v;
		break;
	case KEMU_IOC_GET_VALUE:
		v = s->value;
		if (copy_to_user(uarg, &v, sizeof(v)))
			ret = -EFAULT;
		break;
	default:
		ret = -ENOTTY;
	}
	mutex_unlock(&s->lock);
	return ret;
}

static const struct file_operations chardev_fops = {
	.owner = THIS_MODULE,
	.open = chardev_open,
	.release = chardev_release,
	.read = chardev_read,
	.write = chardev_write,
	.unlocked_ioctl = chardev_ioctl,
	.llseek = no_llseek,
};

/* The misc device keeps a short message under a spinlock: no sleeping needed. */
static DEFINE_SPINLOCK(misc_lock);
static char *misc_buf;
static size_t misc_len;

static ssize_t misc_read(struct file *file, char __user *ubuf, size_t count, loff_t *ppos)
{
	char tmp[MISC_BUFSZ];
	size_t len;

	spin_lock(&misc_lock);
	len = misc_len;
	memcpy(tmp, misc_buf, len);
	spin_unlock(&misc_lock);
	return simple_read_from_buffer(ubuf, count, ppos, tmp, len);
}

static ssize_t misc_write(struct file *file, const char __user *ubuf, size_t count, loff_t *ppos)
{
	char tmp[MISC_BUFSZ];

	count = min_t(size_t, count, MISC_BUFSZ);
	if (copy_from_user(tmp, ubuf, count))
		return -EFAULT;
	spin_lock(&misc_lock);
	memcpy(misc_buf, tmp, count);
	misc_len = count;
	spin_unlock(&misc_lock);
	return count;
}

static const struct file_operations misc_fops = {
	.owner = THIS_MODULE,
	.read = misc_read,
	.write = misc_write,
};

static struct miscdevice kemu_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = MISC_NAME,
	.fops = &misc_fops,
	.mode = 0666,
};

static int __init chardev_init(void)
{
	int ret;

	mutex_init(&state.lock);
	state.buf = kzalloc(CHARDEV_BUFSZ, GFP_KERNEL);
	if (!state.buf)
		return -ENOMEM;
	misc_buf = kzalloc(MISC_BUFSZ, GFP_KERNEL);
	if (!misc_buf) {
		ret = -ENOMEM;
		goto free_buf;
	}
	misc_len = scnprintf(misc_buf, MISC_BUFSZ, "kemu misc device\n");

	ret = alloc_chrdev_region(&chardev_devt, 0, 1, CHARDEV_NAME);
	if (ret) {
		pr_err("alloc_chrdev_region failed: %d\n", ret);
		goto free_misc_buf;
	}
	cdev_init(&chardev_cdev, &chardev_fops);
	chardev_cdev.owner = THIS_MODULE;
	ret = cdev_add(&chardev_cdev, chardev_devt, 1);
	if (ret) {
		pr_err("cdev_add failed: %d\n", ret);
		goto unregister_region;
	}
	chardev_class = class_create(THIS_MODULE, CHARDEV_NAME);
	if (IS_ERR(chardev_class)) {
		ret = PTR_ERR(chardev_class);
		goto del_cdev;
	}
	chardev_device = device_create(chardev_class, NULL, chardev_devt, NULL, CHARDEV_NAME);
	if (IS_ERR(chardev_device)) {
		ret = PTR_ERR(chardev_device);
		goto destroy_class;
	}
	ret = misc_register(&kemu_misc);
	if (ret) {
		pr_err("misc_register failed: %d\n", ret);
		goto destroy_device;
	}
	pr_info("registered %s as %d:%d and misc %s\n", CHARDEV_NAME,
		MAJOR(chardev_devt), MINOR(chardev_devt), MISC_NAME);
	return 0;

destroy_device:
	device_destroy(chardev_class, chardev_devt);
destroy_class:
	class_destroy(chardev_class);
del_cdev:
	cdev_del(&chardev_cdev);
unregister_region:
	unregister_chrdev_region(chardev_devt, 1);
free_misc_buf:
	kfree(misc_buf);
free_buf:
	kfree(state.buf);
	return ret;
}

static void __exit chardev_exit(void)
{
	misc_deregister(&kemu_misc);
	device_destroy(chardev_class, chardev_devt);
	class_destroy(chardev_class);
	cdev_del(&chardev_cdev);
	unregister_chrdev_region(chardev_devt, 1);
	kfree(misc_buf);
	kfree(state.buf);
	pr_info("unregistered after %u opens\n", state.opens);
}

module_init(chardev_init);
module_exit(chardev_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kemu fixtures");
MODULE_DESCRIPTION("Character device with ioctls plus a misc device over kmalloc'd buffers");
