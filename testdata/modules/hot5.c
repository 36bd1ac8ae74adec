// SPDX-License-Identifier: GPL-2.0
/* hot5: link 5 of the hot chain; calls hot6_step(). See hot_chain.h. */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#define HOT_INDEX 5
#define HOT_NEXT 6
#include "hot_chain.h"
