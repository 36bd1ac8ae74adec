// SPDX-License-Identifier: GPL-2.0
/* hot7: link 7 of the hot chain; calls hot8_step(). See hot_chain.h. */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#define HOT_INDEX 7
#define HOT_NEXT 8
#include "hot_chain.h"
