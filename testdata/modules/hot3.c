// SPDX-License-Identifier: GPL-2.0
/* hot3: link 3 of the hot chain; calls hot4_step(). See hot_chain.h. */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#define HOT_INDEX 3
#define HOT_NEXT 4
#include "hot_chain.h"
