// SPDX-License-Identifier: GPL-2.0
/* hot2: link 2 of the hot chain; calls hot3_step(). See hot_chain.h. */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#define HOT_INDEX 2
#define HOT_NEXT 3
#include "hot_chain.h"
