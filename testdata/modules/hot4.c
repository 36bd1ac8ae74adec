// SPDX-License-Identifier: GPL-2.0
/* hot4: link 4 of the hot chain; calls hot5_step(). See hot_chain.h. */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#define HOT_INDEX 4
#define HOT_NEXT 5
#include "hot_chain.h"
