// SPDX-License-Identifier: GPL-2.0
/* hot9: the last link of the hot chain. See hot_chain.h. */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#define HOT_INDEX 9
#include "hot_chain.h"
