// SPDX-License-Identifier: GPL-2.0
/* hot1: link 1 of the hot chain; calls hot2_step(). See hot_chain.h. */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#define HOT_INDEX 1
#define HOT_NEXT 2
#include "hot_chain.h"
