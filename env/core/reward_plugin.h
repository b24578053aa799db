/*  env/core/reward_plugin.h - the C ABI of custom reward models (docs/sims/shared.md section 3).

    A reward plugin is a shared library exporting one symbol,

        const ra_reward_plugin_v1_t *recarena_reward_plugin_v1 (void);

    returning a static, read-only description: ABI version, name, and create / reward / destroy.
    The server loads plugins only from its own command line or config (never at a client's
    request); a client selects a loaded one by name with config reward = "plugin:<name>" and
    passes it parameters as config keys reward_plugin.<key>.

    This header is self-contained (C11 standard headers only) so a plugin builds without the rest
    of recarena. Versioning: abi_version is the first member of the plugin struct in every
    version, so a host can read it before anything else; the event view carries its own size and
    version so it can grow at the end without breaking version-1 plugins.

    Threading: create and destroy are called with exclusive access; reward may be called
    concurrently from several threads, always for distinct env_index values of one state. A
    plugin that keeps per-env state indexes it by env_index (create receives num_envs).          */
#ifndef RA_ENV_CORE_REWARD_PLUGIN_H
#define RA_ENV_CORE_REWARD_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#define RA_REWARD_PLUGIN_ABI_VERSION 1u
#define RA_REWARD_PLUGIN_SYMBOL "recarena_reward_plugin_v1"
#define RA_REWARD_EVENT_VERSION 1u
#define RA_REWARD_PLUGIN_NAME_MAX 63       /* name: 1..63 characters, no ':' */

/* One plugin config entry (from the sim's config keys reward_plugin.<key>, prefix removed).
   Strings are valid only during create. */
typedef enum { RA_REWARD_KV_NUM = 0, RA_REWARD_KV_STR = 1, RA_REWARD_KV_BOOL = 2 } ra_reward_kv_type_t;
typedef struct {
  const char *key;                      /* without the "reward_plugin." prefix */
  int32_t type;                         /* ra_reward_kv_type_t */
  double num;                           /* NUM value; BOOL as 0 or 1 */
  const char *str;                      /* STR value, else NULL */
} ra_reward_plugin_kv_t;

/* What happened in one env at one step: a sim-agnostic view of the sim's event record. Arrays
   have k entries (slot r is shown at position r + 1 unless `position` says otherwise). An
   optional array is NULL when the sim has no such quantity. Valid only during the reward call. */
typedef struct {
  uint32_t size;                        /* sizeof the struct the host filled; fields past it are absent */
  uint32_t version;                     /* RA_REWARD_EVENT_VERSION */
  int32_t k;                            /* slots in the slate */
  int32_t step;                         /* 0-based step of this event within the episode */
  const int32_t *item;                  /* k: catalog item (or ad, article, video) ids */
  const int32_t *position;              /* k: 1-based display position, or NULL: r + 1 */
  const int32_t *topic;                 /* k: topic of each item, or NULL */
  const uint8_t *clicked;               /* k: 0 or 1 */
  const uint8_t *converted;             /* k: purchased / converted, 0 or 1, or NULL */
  const float *revenue;                 /* k: revenue of the slot (sim's money units), or NULL */
  const float *dwell;                   /* k: dwell or watch time (sim's time units), or NULL */
  uint8_t left;                         /* the user left (the episode ends) */
  uint8_t returned;                     /* the user came back for a new session at this step */
  float default_reward;                 /* the sim's built-in default reward for this step */
} ra_reward_event_v1_t;

typedef struct {
  uint32_t abi_version;                 /* RA_REWARD_PLUGIN_ABI_VERSION; first member in every version */
  const char *name;                     /* selected by reward = "plugin:<name>" */
  const char *description;              /* one line */
  /* Builds the model from its config for a batch of num_envs envs. Returns the state (any
     non-NULL pointer, owned by the plugin until destroy) or NULL after writing a NUL-terminated
     message of at most err_cap bytes into err ("weight is -1, expected >= 0"). */
  void *(*create) (const ra_reward_plugin_kv_t *config, int n_config, int num_envs, char *err,
                   size_t err_cap);
  /* The reward of one event of env env_index in [0, num_envs). Must not block or allocate. */
  float (*reward) (void *state, const ra_reward_event_v1_t *event, int env_index);
  /* Frees the state. */
  void (*destroy) (void *state);
  /* Optional (may be NULL: unbounded): writes the reward bounds [low, high] per step. */
  void (*range) (void *state, double out[2]);
} ra_reward_plugin_v1_t;

/* The type of the exported symbol. */
typedef const ra_reward_plugin_v1_t *(*ra_reward_plugin_entry_v1_t) (void);

#endif
