/*  examples/reward_plugin/diversity_revenue.c - an example reward plugin (docs/sims/shared.md
    section 3.4): revenue plus a bonus for diversity among the clicked slots of a slate,

        reward = sum_r revenue_r + weight * D,   D = number of distinct topics among clicked slots
                                                     (distinct items when the sim gives no topics)

    Config (reward_plugin.<key> in the sim's config): weight (number >= 0, default 1).
    Build: a MODULE library (CMake) or `cc -shared -fPIC -I<recarena> diversity_revenue.c`.
    Load: recarena-server --reward-plugin path/libdiversity_revenue.so; select with
    reward = "plugin:diversity_revenue". Stateless per env, so reward is thread-safe.           */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env/core/reward_plugin.h"

typedef struct {
  float weight;
} state_t;

static void *create (const ra_reward_plugin_kv_t *config, int n_config, int num_envs, char *err, size_t err_cap)
{
  (void) num_envs;
  float weight = 1.0f;
  for (int i = 0; i < n_config; i++) {
    const ra_reward_plugin_kv_t *kv = &config[i];
    if (strcmp (kv->key, "weight") == 0) {
      if (kv->type != RA_REWARD_KV_NUM || !(kv->num >= 0 && kv->num <= 1e6)) {
        snprintf (err, err_cap, "weight must be a number in [0, 1e6]");
        return NULL;
      }
      weight = (float) kv->num;
    } else {
      snprintf (err, err_cap, "unknown key '%s', expected: weight", kv->key);
      return NULL;
    }
  }
  state_t *s = malloc (sizeof *s);
  if (!s) {
    snprintf (err, err_cap, "out of memory");
    return NULL;
  }
  s->weight = weight;
  return s;
}

static float reward (void *state, const ra_reward_event_v1_t *ev, int env_index)
{
  (void) env_index;
  const state_t *s = state;
  float revenue = 0;
  int distinct = 0;
  const int32_t *key = ev->topic ? ev->topic : ev->item;
  for (int r = 0; r < ev->k; r++) {
    if (ev->revenue)
      revenue += ev->revenue[r];
    if (!ev->clicked[r])
      continue;
    int seen = 0;
    for (int q = 0; q < r && !seen; q++)
      seen = ev->clicked[q] && key[q] == key[r];
    distinct += !seen;
  }
  return revenue + s->weight * (float) distinct;
}

static void destroy (void *state)
{
  free (state);
}

static const ra_reward_plugin_v1_t plugin = {
  .abi_version = RA_REWARD_PLUGIN_ABI_VERSION,
  .name = "diversity_revenue",
  .description = "revenue + weight x distinct topics clicked in the slate",
  .create = create,
  .reward = reward,
  .destroy = destroy,
  .range = NULL,
};

const ra_reward_plugin_v1_t *recarena_reward_plugin_v1 (void);

const ra_reward_plugin_v1_t *recarena_reward_plugin_v1 (void)
{
  return &plugin;
}
