/*  tests/env/bad_abi_plugin.c - a reward plugin that claims ABI version 2, so the loader's
    version check can be tested (test_reward_plugin.c). */
#include <stddef.h>

#include "env/core/reward_plugin.h"

static const ra_reward_plugin_v1_t plugin = { .abi_version = 2, .name = "from_the_future" };

const ra_reward_plugin_v1_t *recarena_reward_plugin_v1 (void);

const ra_reward_plugin_v1_t *recarena_reward_plugin_v1 (void)
{
  return &plugin;
}
