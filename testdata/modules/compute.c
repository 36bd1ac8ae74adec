// SPDX-License-Identifier: GPL-2.0
/*
 * compute: the instructions-per-second workload. compute_crc_loop(iters)
 * fills a 256-byte stack buffer and runs a bitwise CRC-32 (reflected
 * polynomial 0xEDB88320, the one zlib uses) over it iters times, feeding each
 * round's CRC into the next. The loop is pure integer work: no kernel calls,
 * no memory outside the buffer, so the emulator's speed is all it measures.
 * The result is deterministic: compute_crc_loop(0) = 0xffffffff ^ 0xffffffff
 * = 0; init prints compute_crc_loop(1) and compute_crc_loop(10).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/types.h>

#define COMPUTE_BUF_LEN 256
#define COMPUTE_POLY 0xEDB88320u

static noinline u32 compute_crc_round(const u8 *buf, size_t len, u32 crc)
{
	size_t i;
	int bit;

	for (i = 0; i < len; i++) {
		crc ^= buf[i];
		for (bit = 0; bit < 8; bit++)
			crc = (crc >> 1) ^ (COMPUTE_POLY & -(crc & 1));
	}
	return crc;
}

u32 compute_crc_loop(u32 iters)
{
	u8 buf[COMPUTE_BUF_LEN];
	u32 crc = 0xffffffff;
	u32 i;

	for (i = 0; i < COMPUTE_BUF_LEN; i++)
		buf[i] = (u8)(i * 31 + 7);
	for (i = 0; i < iters; i++) {
		crc = compute_crc_round(buf, sizeof(buf), crc);
		buf[i % COMPUTE_BUF_LEN] ^= (u8)crc;
	}
	return crc ^ 0xffffffff;
}
EXPORT_SYMBOL_GPL(compute_crc_loop);

static int __init compute_init(void)
{
	pr_info("compute_crc_loop(1) = 0x%08x\n", compute_crc_loop(1));
	pr_info("compute_crc_loop(10) = 0x%08x\n", compute_crc_loop(10));
	return 0;
}

static void __exit compute_exit(void)
{
}

module_init(compute_init);
module_exit(compute_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kemu fixtures");
MODULE_DESCRIPTION("Exports compute_crc_loop, a pure integer CRC-32 loop for speed measurements");
