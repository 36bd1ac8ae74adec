// SPDX-License-Identifier: GPL-2.0
/* hot8: link 8 of the hot chain; calls hot9_step(). See hot_chain.h. */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#define HOT_INDEX 8
#define HOT_NEXT 9
#include "hot_chain.h"
