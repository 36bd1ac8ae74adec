// SPDX-License-Identifier: GPL-2.0
/* hot0: link 0 of the hot chain; calls hot1_step(). See hot_chain.h. */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#define HOT_INDEX 0
#define HOT_NEXT 1
#include "hot_chain.h"
