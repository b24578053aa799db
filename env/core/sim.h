/*  env/core/sim.h - the simulator interface: all the server ever sees of a simulator
    (docs/architecture.md sections 2 and 5).

    A ra_sim_t is one batch of num_envs envs of one simulator, owned by one server session. It
    allocates everything at create time and nothing in reset or step. It writes observations,
    rewards, flags and info into buffers the caller owns (ra_sim_buffers_t), row i for env i.

    Reproducibility: env i's trajectory depends only on its seed, its task and its actions, never
    on num_envs, on which range a call covers, or on thread scheduling.

    Threading: reset and step on disjoint [i0, i1) ranges may run concurrently on different
    threads. create, destroy and set_task need exclusive access to the sim.                     */
#ifndef RA_ENV_CORE_SIM_H
#define RA_ENV_CORE_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/kv.h"
#include "protocol/tensor.h"

#define RA_SIM_MAX_FIELDS 16
#define RA_SIM_MAX_DIMS 3

/* One observation or info field: per-env shape (no batch axis) and uniform bounds. */
typedef struct {
  const char *name;                     /* "user", "candidates", "clicked", ... */
  ra_dtype_t dtype;                     /* element type the sim writes */
  int ndim;                             /* 0..RA_SIM_MAX_DIMS */
  int64_t shape[RA_SIM_MAX_DIMS];
  double low, high;                     /* Box bounds (observation fields) */
} ra_field_spec_t;

/* What a sim batch looks like; fixed from create to destroy. */
typedef struct {
  int num_candidates;                   /* K: candidates shown to the agent per step */
  int slate_size;                       /* k: action is Discrete(K) when k = 1, else MultiDiscrete([K]*k) */
  int n_obs;                            /* observation Dict fields, in key order */
  ra_field_spec_t obs[RA_SIM_MAX_FIELDS];
  int n_info;                           /* per-step info fields (event record, oracle fields if enabled) */
  ra_field_spec_t info[RA_SIM_MAX_FIELDS];
  double reward_range[2];
  int max_episode_steps;                /* default truncation limit; the server may override it */
} ra_sim_spec_t;

/* Caller-owned output buffers for the whole batch. Field f holds num_envs * numel(f) elements of
   its dtype, env i's row at offset i * numel(f). bool fields are one byte, 0 or 1. */
typedef struct {
  void *obs[RA_SIM_MAX_FIELDS];
  void *info[RA_SIM_MAX_FIELDS];
  float *reward;                        /* num_envs */
  uint8_t *terminated;                  /* num_envs; the user left or the session ended */
} ra_sim_buffers_t;

/* A task: a user population and world, drawn deterministically from (sim, split, id), or the
   sim's default task with explicit parameter overrides. */
typedef struct {
  const char *split;                    /* "train", "val", "test", "ood"; NULL when params rule */
  int64_t id;
  const ra_kv_t *params;                /* overrides by parameter name; n_params may be 0 */
  int n_params;
} ra_task_t;

typedef struct {
  const ra_kv_t *config;                /* make's config map, flattened with dots, minus "task" */
  int n_config;
  const ra_task_t *task;                /* NULL: the sim's default task */
  int num_envs;
  uint64_t seed;                        /* env i starts its RNG stream from seed + i */
} ra_sim_args_t;

typedef struct ra_sim ra_sim_t;

typedef struct {
  const char *name;                     /* "ECommerce-v1" */
  const char *description;              /* one line */
  const ra_kv_t *config_defaults;       /* every config key with its default, for "list" */
  int n_config_defaults;

  /* Builds a batch. Unknown keys or bad values: RA_ERR_BAD_CONFIG naming the key and what was
     expected; a bad task: RA_ERR_BAD_CONFIG too. Allocates everything the batch will need. */
  ra_err_t (*create) (const ra_sim_args_t *args, ra_sim_t **out, ra_error_t *err);
  /* The checks of create alone: the same error create would return for these args, RA_OK when
     create would get past its checks. Allocates nothing of the batch (a reward plugin's state is
     made and dropped: its create checks its parameters). The server runs it before it estimates
     a make's bytes from the config, so an out-of-range size is BAD_CONFIG naming its key, as
     in-process, rather than a LIMIT computed from it (docs/protocol.md section "Limits"). */
  ra_err_t (*check) (const ra_sim_args_t *args, ra_error_t *err);
  /* Accepts NULL; NULLs the pointer. */
  void (*destroy) (ra_sim_t **sim_p);
  /* Valid until destroy. */
  const ra_sim_spec_t *(*spec) (const ra_sim_t *sim);

  /* For each env i in [i0, i1) with mask == NULL or mask[i]: reseed its stream from seeds[i] if
     seeds is not NULL (else continue the stream), start a new episode, write its obs rows. */
  void (*reset) (ra_sim_t *sim, int i0, int i1, const uint64_t *seeds, const uint8_t *mask,
                 const ra_sim_buffers_t *buf);
  /* Steps every env in [i0, i1) with its slate actions[i * k .. i * k + k) (validated by the
     caller: each in [0, K), no repeats). Writes obs, info, reward and terminated rows. Envs
     must have been reset since they last terminated (the caller guarantees it). */
  void (*step) (ra_sim_t *sim, int i0, int i1, const int32_t *actions, const ra_sim_buffers_t *buf);

  /* Sets the task of every env with mask == NULL or mask[i]; takes effect at each env's next
     reset. Invalid task: RA_ERR_BAD_CONFIG, nothing changed. */
  ra_err_t (*set_task) (ra_sim_t *sim, const ra_task_t *task, const uint8_t *mask, ra_error_t *err);
  /* Writes up to cap entries describing env i's task (split, id and every parameter); returns
     how many. Strings stay valid until the next set_task or destroy. */
  int (*describe_task) (const ra_sim_t *sim, int env_index, ra_kv_t *out, int cap);
  /* Human-readable state of env i into buf (NUL-terminated, truncated to cap); returns the
     length it wanted, as snprintf. */
  int (*render) (const ra_sim_t *sim, int env_index, char *buf, size_t cap);
} ra_sim_class_t;

#endif
