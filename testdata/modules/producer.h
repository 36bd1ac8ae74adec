/* SPDX-License-Identifier: GPL-2.0 */
/* Symbols exported by the producer fixture module. */
#ifndef KEMU_FIXTURE_PRODUCER_H
#define KEMU_FIXTURE_PRODUCER_H

#include <linux/types.h>

extern int producer_counter;
int producer_add(int a, int b);
int producer_describe(char *buf, size_t size);
unsigned long producer_secret(unsigned long x);

#endif
