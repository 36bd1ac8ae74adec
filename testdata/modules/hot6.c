// SPDX-License-Identifier: GPL-2.0
/* hot6: link 6 of the hot chain; calls hot7_step(). See hot_chain.h. */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#define HOT_INDEX 6
#define HOT_NEXT 7
#include "hot_chain.h"
