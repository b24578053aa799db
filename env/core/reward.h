/*  env/core/reward.h - the per-step event record and the built-in reward models
    (docs/sims/ecommerce.md section 7).

    Every built-in model is a weighted sum of the step's metric totals (clicks, purchases,
    revenue, margin): "revenue" is weights (0, 0, 1, 0), "weighted" takes the weights from config
    keys reward_weights.<metric>. A ra_reward_t is plain data, read-only after config; thread-safe.

    Custom reward models are plugins (env/core/reward_plugin.h, docs/sims/shared.md section 3):
    the server loads them at startup with ra_reward_plugins_load; a sim reads its reward with
    ra_reward_model_from_config, which also accepts reward = "plugin:<name>". The plugin registry
    is process-wide: load before any sim is created (single-threaded startup), then it is
    read-only and thread-safe.                                                                     */
#ifndef RA_ENV_CORE_REWARD_H
#define RA_ENV_CORE_REWARD_H

#include <stdbool.h>
#include <stdint.h>

#include "env/core/config.h"
#include "env/core/reward_plugin.h"

#define RA_EVENT_MAX_SLATE 16

typedef enum { RA_METRIC_CLICKS = 0, RA_METRIC_PURCHASES, RA_METRIC_REVENUE, RA_METRIC_MARGIN,
               RA_METRIC_COUNT } ra_metric_t;

typedef enum { RA_REWARD_REVENUE = 0, RA_REWARD_CLICKS, RA_REWARD_PURCHASES, RA_REWARD_MARGIN,
               RA_REWARD_WEIGHTED, RA_REWARD_COUNT } ra_reward_kind_t;

/* Config names: metrics ("clicks", ...) and reward kinds ("revenue", ..., "weighted"). */
extern const char *const ra_metric_names[RA_METRIC_COUNT];
extern const char *const ra_reward_names[RA_REWARD_COUNT];

/* What happened to one slate, per slot (position = slot index + 1). */
typedef struct {
  int k;                                /* slate size */
  int32_t item[RA_EVENT_MAX_SLATE];     /* catalog item id */
  uint8_t clicked[RA_EVENT_MAX_SLATE];
  uint8_t purchased[RA_EVENT_MAX_SLATE];
  float revenue[RA_EVENT_MAX_SLATE];    /* price units */
  float margin[RA_EVENT_MAX_SLATE];     /* price units */
} ra_event_t;

typedef struct {
  ra_reward_kind_t kind;
  float w[RA_METRIC_COUNT];             /* reward = sum_m w[m] * total[m] */
} ra_reward_t;

/* Reads "reward" (default "revenue") and, when it is "weighted", reward_weights.<metric>
   (each in [-1e6, 1e6], default reward_weights.revenue = 1, others 0). reward_weights.* are
   validated but ignored for the other kinds. Bad values: RA_ERR_BAD_CONFIG naming the key. */
ra_err_t ra_reward_from_config (ra_config_t *c, ra_reward_t *out, ra_error_t *err);

/* Metric totals of an event: clicks, purchases, revenue, margin summed over slots. O(k). */
void ra_event_totals (const ra_event_t *e, float *total);

/* The reward of metric totals. */
static inline float ra_reward_eval (const ra_reward_t *r, const float *total)
{
  return r->w[0] * total[0] + r->w[1] * total[1] + r->w[2] * total[2] + r->w[3] * total[3];
}

/* Reward bounds given each metric's per-step bounds [0, max[m]]. */
void ra_reward_range (const ra_reward_t *r, const double *metric_max, double range[2]);

/* ---- reward plugins (docs/sims/shared.md section 3) ---- */

#define RA_REWARD_PLUGINS_MAX 16
#define RA_REWARD_PLUGIN_PREFIX "plugin:"           /* config reward = "plugin:<name>" */
#define RA_REWARD_PLUGIN_CONFIG_PREFIX "reward_plugin." /* its parameters: reward_plugin.<key> */

/* Loads the plugin at path into the process-wide registry (the server calls it for each
   --reward-plugin PATH before serving); a path without '/' names a file of the working directory,
   not a library to search for. Errors: RA_ERR_IO when dlopen fails ("reward plugin
   x.so: cannot load: <dlerror>"); RA_ERR_BAD_CONFIG when the symbol recarena_reward_plugin_v1 is
   missing or returns NULL, the ABI version is not RA_REWARD_PLUGIN_ABI_VERSION ("reward plugin
   x.so: ABI version 2, expected 1"), a function is missing, the name is invalid or already
   loaded; RA_ERR_LIMIT past RA_REWARD_PLUGINS_MAX. On error nothing is registered. Not
   thread-safe: call during startup only. */
ra_err_t ra_reward_plugins_load (const char *path, ra_error_t *err);

/* The loaded plugin named name, or NULL. Thread-safe once loading is over. O(plugins). */
const ra_reward_plugin_v1_t *ra_reward_plugins_find (const char *name);

/* Number of loaded plugins, and the i-th one (0 <= i < count), in load order. */
int ra_reward_plugins_count (void);
const ra_reward_plugin_v1_t *ra_reward_plugins_get (int i);

/* Unloads every plugin (dlclose). No sim may still use one. For tests and shutdown. */
void ra_reward_plugins_unload_all (void);

/* Whether config "reward" is a string "plugin:<name>" (marks "reward" read). */
bool ra_reward_is_plugin (ra_config_t *c);

/* The sim-agnostic plugin half of reading "reward", for sims with their own built-in reward kinds
   (Ads-v1, News-v1, Content-v1; ECommerce-v1 through ra_reward_model_from_config). When reward
   is "plugin:<name>" naming a loaded plugin, creates it with the config entries
   reward_plugin.<key> (prefix removed, at most 64; they and "reward" are marked read) for
   num_envs envs and returns it in *plugin with its state (owned by the caller: release with
   (*plugin)->destroy (*state)). Otherwise *plugin = *state = NULL and the caller reads its own
   reward kinds. Errors, with nothing created: RA_ERR_BAD_CONFIG for an unknown plugin name (the
   message lists the loaded ones), reward_plugin.* keys without a plugin, or the plugin's create
   failing (its message). */
ra_err_t ra_reward_plugin_from_config (ra_config_t *c, int num_envs, const ra_reward_plugin_v1_t **plugin,
                                       void **state, ra_error_t *err);

/* A plugin's reward bounds: its range function's, or [-inf, inf] when it has none. */
void ra_reward_plugin_range (const ra_reward_plugin_v1_t *plugin, void *state, double range[2]);

/* The plugin's reward of the view (filled by the sim) with default_reward set to the sim's
   built-in reward for the step. No allocation. */
static inline float ra_reward_plugin_eval (const ra_reward_plugin_v1_t *plugin, void *state,
                                           ra_reward_event_v1_t *view, float default_reward, int env_index)
{
  view->default_reward = default_reward;
  return plugin->reward (state, view, env_index);
}

/* A sim's reward model: a built-in one, or a loaded plugin with its state. */
typedef struct {
  ra_reward_t builtin;                  /* the built-in model; "revenue" when a plugin rules */
  const ra_reward_plugin_v1_t *plugin;  /* NULL: builtin */
  void *state;                          /* the plugin's state (owned) */
} ra_reward_model_t;

/* Reads "reward": a built-in name as ra_reward_from_config, or "plugin:<name>" naming a loaded
   plugin, which is then created with the config entries reward_plugin.<key> (prefix removed,
   at most 64; they are marked read) for num_envs envs. Errors: RA_ERR_BAD_CONFIG for an unknown
   plugin name (the message lists the loaded ones), reward_plugin.* keys without a plugin, or the
   plugin's create failing (its message). Release with ra_reward_model_fini. */
ra_err_t ra_reward_model_from_config (ra_config_t *c, int num_envs, ra_reward_model_t *out,
                                      ra_error_t *err);

/* Destroys the plugin state, if any. Accepts a zeroed struct; idempotent. */
void ra_reward_model_fini (ra_reward_model_t *m);

/* Reward bounds: the built-in ones from metric_max (as ra_reward_range), or the plugin's range
   ([-inf, inf] when it gives none). */
void ra_reward_model_range (const ra_reward_model_t *m, const double *metric_max, double range[2]);

/* The step's reward from its metric totals; with a plugin, view (filled by the sim; view may be
   NULL only without a plugin) gets default_reward = the built-in reward and the plugin decides. */
static inline float ra_reward_model_eval (const ra_reward_model_t *m, const float *total,
                                          ra_reward_event_v1_t *view, int env_index)
{
  float base = ra_reward_eval (&m->builtin, total);
  if (!m->plugin)
    return base;
  return ra_reward_plugin_eval (m->plugin, m->state, view, base, env_index);
}

#endif
