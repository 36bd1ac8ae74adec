// SPDX-License-Identifier: GPL-2.0
/*
 * iterdev: misc devices served through ->read_iter/->write_iter, and one whose
 * read blocks until a timer wakes it.
 *
 * /dev/kemu_iter has only read_iter and write_iter, so read(2) and write(2)
 * reach it through a kiocb and an iov_iter over the caller's buffer. It keeps
 * up to ITER_BUFSZ bytes, initially "kemu iter device\n": reads copy from
 * ki_pos, writes store at ki_pos (at the end with O_APPEND, IOCB_APPEND).
 * A write whose first byte is '!' is refused with -EINVAL after peeking at
 * that byte (copy_from_iter of one byte, then iov_iter_revert).
 *
 * /dev/kemu_wait arms a timer at open; until it fires (WAIT_DELAY_MS later)
 * a read sleeps on a wait queue (wait_event_interruptible), an O_NONBLOCK
 * read gets -EAGAIN and poll reports nothing. The timer sets the ready flag
 * and wakes the queue; then reads return "ready\n" and poll EPOLLIN.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/jiffies.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/timer.h>
#include <linux/uio.h>
#include <linux/wait.h>

#define ITER_BUFSZ	128
#define WAIT_DELAY_MS	200

static char iter_buf[ITER_BUFSZ] = "kemu iter device\n";
static size_t iter_len = sizeof("kemu iter device\n") - 1;
static DEFINE_MUTEX(iter_lock);

static ssize_t iter_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	loff_t pos = iocb->ki_pos;
	size_t n, copied;

	mutex_lock(&iter_lock);
	if (pos >= iter_len) {
		mutex_unlock(&iter_lock);
		return 0;
	}
	n = min_t(size_t, iov_iter_count(to), iter_len - pos);
	copied = copy_to_iter(iter_buf + pos, n, to);
	mutex_unlock(&iter_lock);
	if (n && !copied)
		return -EFAULT;
	iocb->ki_pos = pos + copied;
	return copied;
}

static ssize_t iter_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	size_t n, copied;
	loff_t pos;
	char first;

	if (!iov_iter_count(from))
		return 0;
	if (copy_from_iter(&first, 1, from) != 1)
		return -EFAULT;
	iov_iter_revert(from, 1);
	if (first == '!')
		return -EINVAL;

	mutex_lock(&iter_lock);
	pos = (iocb->ki_flags & IOCB_APPEND) ? iter_len : iocb->ki_pos;
	if (pos >= ITER_BUFSZ) {
		mutex_unlock(&iter_lock);
		return -ENOSPC;
	}
	n = min_t(size_t, iov_iter_count(from), ITER_BUFSZ - pos);
	copied = copy_from_iter(iter_buf + pos, n, from);
	if (pos + copied > iter_len)
		iter_len = pos + copied;
	mutex_unlock(&iter_lock);
	if (!copied)
		return -EFAULT;
	iocb->ki_pos = pos + copied;
	return copied;
}

static const struct file_operations iter_fops = {
	.owner = THIS_MODULE,
	.read_iter = iter_read_iter,
	.write_iter = iter_write_iter,
	.llseek = default_llseek,
};

static struct miscdevice iter_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "kemu_iter",
	.fops = &iter_fops,
};

static DECLARE_WAIT_QUEUE_HEAD(wait_queue);
static struct timer_list wait_timer;
static bool wait_ready;
static unsigned long wait_opened;

static void wait_timer_fn(struct timer_list *t)
{
	WRITE_ONCE(wait_ready, true);
	wake_up_interruptible(&wait_queue);
}

static int wait_open(struct inode *inode, struct file *file)
{
	WRITE_ONCE(wait_ready, false);
	wait_opened = jiffies;
	mod_timer(&wait_timer, jiffies + msecs_to_jiffies(WAIT_DELAY_MS));
	return 0;
}

static int wait_release(struct inode *inode, struct file *file)
{
	del_timer_sync(&wait_timer);
	return 0;
}

static ssize_t wait_read(struct file *file, char __user *buf, size_t count, loff_t *ppos)
{
	static const char msg[] = "ready\n";

	if (*ppos >= sizeof(msg) - 1)
		return 0;
	if (!READ_ONCE(wait_ready)) {
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		if (wait_event_interruptible(wait_queue, READ_ONCE(wait_ready)))
			return -ERESTARTSYS;
	}
	count = min_t(size_t, count, sizeof(msg) - 1 - *ppos);
	if (copy_to_user(buf, msg + *ppos, count))
		return -EFAULT;
	if (!*ppos)
		pr_info("read ready after %u ms\n", jiffies_to_msecs(jiffies - wait_opened));
	*ppos += count;
	return count;
}

static __poll_t wait_poll(struct file *file, poll_table *pt)
{
	poll_wait(file, &wait_queue, pt);
	return READ_ONCE(wait_ready) ? EPOLLIN | EPOLLRDNORM : 0;
}

static const struct file_operations wait_fops = {
	.owner = THIS_MODULE,
	.open = wait_open,
	.release = wait_release,
	.read = wait_read,
	.poll = wait_poll,
};

static struct miscdevice wait_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "kemu_wait",
	.fops = &wait_fops,
};

static int __init iterdev_init(void)
{
	int ret;

	timer_setup(&wait_timer, wait_timer_fn, 0);
	ret = misc_register(&iter_misc);
	if (ret)
		return ret;
	ret = misc_register(&wait_misc);
	if (ret) {
		misc_deregister(&iter_misc);
		return ret;
	}
	pr_info("kemu_iter and kemu_wait registered\n");
	return 0;
}

static void __exit iterdev_exit(void)
{
	misc_deregister(&wait_misc);
	misc_deregister(&iter_misc);
	pr_info("exit\n");
}

module_init(iterdev_init);
module_exit(iterdev_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kemu fixtures");
MODULE_DESCRIPTION("kemu fixture: read_iter/write_iter misc device and a blocking read");
