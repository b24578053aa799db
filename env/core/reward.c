/*  env/core/reward.c - reward models (docs/sims/ecommerce.md section 7). */
#include "env/core/reward.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

const char *const ra_metric_names[RA_METRIC_COUNT] = { "clicks", "purchases", "revenue", "margin" };
const char *const ra_reward_names[RA_REWARD_COUNT] = { "revenue", "clicks", "purchases", "margin",
                                                       "weighted" };

/* The weights of a built-in kind (weights read and validated from config either way). */
static ra_err_t s_builtin (ra_config_t *c, int kind, ra_reward_t *out, ra_error_t *err)
{
  ra_err_t rc;
  double w[RA_METRIC_COUNT];
  for (int m = 0; m < RA_METRIC_COUNT; m++) {
    char key[64];
    snprintf (key, sizeof key, "reward_weights.%s", ra_metric_names[m]);
    rc = ra_config_get_num (c, key, m == RA_METRIC_REVENUE ? 1.0 : 0.0, -1e6, 1e6, &w[m], err);
    if (rc != RA_OK)
      return rc;
  }
  out->kind = (ra_reward_kind_t) kind;
  for (int m = 0; m < RA_METRIC_COUNT; m++) {
    /* 7.1 named kinds are one-hot weights: revenue, clicks, purchases, margin */
    static const ra_metric_t named[RA_REWARD_COUNT] = { RA_METRIC_REVENUE, RA_METRIC_CLICKS,
                                                        RA_METRIC_PURCHASES, RA_METRIC_MARGIN, 0 };
    if (kind == RA_REWARD_WEIGHTED)
      out->w[m] = (float) w[m];
    else
      out->w[m] = named[kind] == (ra_metric_t) m ? 1.0f : 0.0f;
  }
  return RA_OK;
}

ra_err_t ra_reward_from_config (ra_config_t *c, ra_reward_t *out, ra_error_t *err)
{
  int kind;
  ra_err_t rc = ra_config_get_enum (c, "reward", RA_REWARD_REVENUE, ra_reward_names, RA_REWARD_COUNT,
                                    &kind, err);
  if (rc != RA_OK)
    return rc;
  return s_builtin (c, kind, out, err);
}

void ra_event_totals (const ra_event_t *e, float *total)
{
  for (int m = 0; m < RA_METRIC_COUNT; m++)
    total[m] = 0;
  for (int r = 0; r < e->k; r++) {
    total[RA_METRIC_CLICKS] += e->clicked[r];
    total[RA_METRIC_PURCHASES] += e->purchased[r];
    total[RA_METRIC_REVENUE] += e->revenue[r];
    total[RA_METRIC_MARGIN] += e->margin[r];
  }
}

void ra_reward_range (const ra_reward_t *r, const double *metric_max, double range[2])
{
  range[0] = range[1] = 0;
  for (int m = 0; m < RA_METRIC_COUNT; m++) {
    double v = r->w[m] * metric_max[m];
    if (v < 0)
      range[0] += v;
    else
      range[1] += v;
  }
}

/* ---- reward models with plugins (docs/sims/shared.md section 3) ---- */

#define S_PLUGIN_KV_MAX 64

bool ra_reward_is_plugin (ra_config_t *c)
{
  int at = ra_config_find (c, "reward");
  return at >= 0 && c->kv[at].type == RA_KV_STR
         && strncmp (c->kv[at].str, RA_REWARD_PLUGIN_PREFIX, strlen (RA_REWARD_PLUGIN_PREFIX)) == 0;
}

ra_err_t ra_reward_plugin_from_config (ra_config_t *c, int num_envs, const ra_reward_plugin_v1_t **plugin,
                                       void **state, ra_error_t *err)
{
  *plugin = NULL;
  *state = NULL;
  const size_t plen = strlen (RA_REWARD_PLUGIN_PREFIX), cplen = strlen (RA_REWARD_PLUGIN_CONFIG_PREFIX);
  bool is_plugin = ra_reward_is_plugin (c);
  /* 3.2 the plugin's parameters: every reward_plugin.<key> entry, prefix removed */
  ra_reward_plugin_kv_t pkv[S_PLUGIN_KV_MAX];
  int n_pkv = 0;
  for (int i = 0; i < c->n; i++) {
    if (strncmp (c->kv[i].key, RA_REWARD_PLUGIN_CONFIG_PREFIX, cplen) != 0)
      continue;
    if (!is_plugin)
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "config key '%s' needs a plugin reward, expected reward = "
                           "\"plugin:<name>\"", c->kv[i].key);
    if (n_pkv == S_PLUGIN_KV_MAX)
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "config: more than %d reward_plugin.* keys", S_PLUGIN_KV_MAX);
    c->used[i] = 1;
    pkv[n_pkv++] = (ra_reward_plugin_kv_t) {
      .key = c->kv[i].key + cplen,
      .type = c->kv[i].type == RA_KV_STR ? RA_REWARD_KV_STR : c->kv[i].type == RA_KV_BOOL ? RA_REWARD_KV_BOOL
                                                                                          : RA_REWARD_KV_NUM,
      .num = c->kv[i].num,
      .str = c->kv[i].str,
    };
  }
  if (!is_plugin)
    return RA_OK;
  int at = ra_config_find (c, "reward");   /* marks it read */
  const char *name = c->kv[at].str + plen;
  const ra_reward_plugin_v1_t *p = ra_reward_plugins_find (name);
  if (!p) {
    char loaded[160] = "";
    size_t len = 0;
    for (int i = 0; i < ra_reward_plugins_count () && len < sizeof loaded; i++) {
      int w = snprintf (loaded + len, sizeof loaded - len, "%s%s", i ? ", " : "", ra_reward_plugins_get (i)->name);
      if (w < 0)
        break;
      len += (size_t) w;
    }
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "reward: plugin '%s' is not loaded by this server, expected one "
                         "of: %s", name, len ? loaded : "(none loaded)");
  }
  char msg[RA_ERROR_MESSAGE_MAX] = "";
  void *st = p->create (pkv, n_pkv, num_envs, msg, sizeof msg);
  if (!st) {
    msg[sizeof msg - 1] = 0;
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "reward plugin %s: %s", p->name, msg[0] ? msg : "create failed");
  }
  *plugin = p;
  *state = st;
  return RA_OK;
}

void ra_reward_plugin_range (const ra_reward_plugin_v1_t *plugin, void *state, double range[2])
{
  range[0] = -INFINITY;
  range[1] = INFINITY;
  if (plugin->range)
    plugin->range (state, range);
}

ra_err_t ra_reward_model_from_config (ra_config_t *c, int num_envs, ra_reward_model_t *out, ra_error_t *err)
{
  memset (out, 0, sizeof *out);
  if (ra_reward_is_plugin (c)) {   /* default_reward: the built-in "revenue", its weights validated */
    ra_err_t rc = s_builtin (c, RA_REWARD_REVENUE, &out->builtin, err);
    if (rc != RA_OK)
      return rc;
  }
  ra_err_t rc = ra_reward_plugin_from_config (c, num_envs, &out->plugin, &out->state, err);
  if (rc != RA_OK || out->plugin)
    return rc;
  return ra_reward_from_config (c, &out->builtin, err);
}

void ra_reward_model_fini (ra_reward_model_t *m)
{
  if (m->plugin && m->state)
    m->plugin->destroy (m->state);
  m->plugin = NULL;
  m->state = NULL;
}

void ra_reward_model_range (const ra_reward_model_t *m, const double *metric_max, double range[2])
{
  if (!m->plugin) {
    ra_reward_range (&m->builtin, metric_max, range);
    return;
  }
  ra_reward_plugin_range (m->plugin, m->state, range);
}
