/*  env/local/local.h - the in-process C API: one batch of num_envs envs of one simulator, with the
    same make/reset/step/set_task semantics and error codes as protocol v1 (docs/protocol.md), but
    called directly, with no server and no message (docs/local.md).

    A ra_local_t is a server session without the server: it wraps ra_session_t (env/server/session.h,
    so autoreset, truncation and NEEDS_RESET are literally the server's code) and validates every
    argument the way the server's handlers validate the same request fields, returning the same
    ra_err_t codes. Built as the shared library librecarena_local.so for the Python "local" backend
    (clients/python/recarena/local.py, loaded with ctypes) and as the static ra_local for C.

    Output buffers: every reset and step writes the whole batch into buffers the handle owns, at
    addresses fixed from ra_local_new to ra_local_destroy (ra_local_buffers), so a caller maps
    them once and reads them after each call; their contents are valid until the next reset or
    step. Rows are env-major, as ra_sim_buffers_t.

    Threading: one thread at a time per handle. Batches of at least RA_SESSION_MIN_PARALLEL envs
    fan out over the handle's own worker threads (args.threads); results never depend on it.     */
#ifndef RA_ENV_LOCAL_LOCAL_H
#define RA_ENV_LOCAL_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "env/core/sim.h"
#include "common/err.h"
#include "common/kv.h"

/* Bumped whenever a signature or struct below changes, so a loader can refuse a stale library. */
#define RA_LOCAL_ABI 1

/* Most envs in one handle (the server's default per-make limit). */
#define RA_LOCAL_MAX_ENVS 65536

typedef struct ra_local ra_local_t;

/* make's fields, as the wire's make request (docs/protocol.md, "make"). */
typedef struct {
  const char *env;                      /* "ECommerce-v1" */
  int64_t num_envs;                     /* 1..RA_LOCAL_MAX_ENVS */
  uint64_t seed;                        /* env i starts from seed + i */
  const ra_kv_t *config;                /* flattened with dots, minus "task"; n_config may be 0 */
  int n_config;
  const ra_task_t *task;                /* NULL: the sim's default task */
  const char *autoreset;                /* "next_step" (NULL), "same_step" or "disabled" */
  bool has_max_episode_steps;
  int64_t max_episode_steps;            /* when has_: 1..INT32_MAX, else the sim's default */
  int threads;                          /* worker threads besides the caller; 0: inline */
} ra_local_args_t;

/* Where the handle's outputs live; pointers fixed for the handle's life. final_obs is NULL
   unless autoreset is same_step. */
typedef struct {
  void *obs[RA_SIM_MAX_FIELDS];
  void *info[RA_SIM_MAX_FIELDS];
  void *final_obs[RA_SIM_MAX_FIELDS];
  float *reward;
  uint8_t *terminated, *truncated;
  uint8_t *info_mask;                   /* 1 where info came from this step */
  uint8_t *final_mask;                  /* same_step: 1 where the env ended in this step */
} ra_local_buffers_t;

/* One observation or info field of one env, with its Box bounds (numel elements of dtype each,
   exactly the bytes the server sends as the space's low and high; NULL for info fields). */
typedef struct {
  const char *name;
  int dtype;                            /* ra_dtype_t */
  int ndim;
  int64_t shape[RA_SIM_MAX_DIMS];
  const void *low, *high;
} ra_local_field_t;

/* RA_LOCAL_ABI of the loaded library. */
int ra_local_abi (void);

/* Builds the batch. Errors as the server's make: UNKNOWN_ENV (listing the sims), BAD_REQUEST
   (num_envs < 1), LIMIT (num_envs too large), BAD_CONFIG (autoreset, max_episode_steps, or the
   sim's own config and task checks), NOMEM. */
ra_err_t ra_local_new (const ra_local_args_t *args, ra_local_t **out, ra_error_t *err);
/* Accepts NULL; NULLs the pointer. */
void ra_local_destroy (ra_local_t **local_p);

int ra_local_num_envs (const ra_local_t *l);
/* K candidates, slate size k (action: Discrete(K) when k = 1, else k distinct of K). */
int ra_local_num_candidates (const ra_local_t *l);
int ra_local_slate_size (const ra_local_t *l);
/* The time limit in force (0: none), as make's reply. */
int ra_local_max_episode_steps (const ra_local_t *l);
const char *ra_local_autoreset (const ra_local_t *l);
void ra_local_reward_range (const ra_local_t *l, double out[2]);
int ra_local_num_obs (const ra_local_t *l);
int ra_local_num_info (const ra_local_t *l);
/* Field f of the observation (info = false) or info (info = true); false if f is out of range. */
bool ra_local_field (const ra_local_t *l, bool info, int f, ra_local_field_t *out);
/* The output buffers (see the header comment). */
void ra_local_buffers (const ra_local_t *l, ra_local_buffers_t *out);

/* Resets the envs with mask == NULL or mask[i] != 0; seeds NULL keeps each env's stream, else
   env i is reseeded with seeds[i] (num_envs entries). RA_ERR_NOMEM (nothing reset) when the
   session cannot get an output buffer. */
ra_err_t ra_local_reset (ra_local_t *l, const uint64_t *seeds, const uint8_t *mask);
/* Steps the batch with actions of shape (N,) when k = 1, else (N, k) (ndim and shape describe
   the caller's array). BAD_ACTION for a wrong shape, an index outside 0..K-1 or a repeat in a
   slate (env_index set); NEEDS_RESET as the server. Nothing changes on error. */
ra_err_t ra_local_step (ra_local_t *l, const int64_t *actions, int ndim, const int64_t *shape,
                        ra_error_t *err);
/* The same for int32 actions (C callers that keep actions as int32). */
ra_err_t ra_local_step_i32 (ra_local_t *l, const int32_t *actions, int ndim, const int64_t *shape,
                            ra_error_t *err);
/* Sets the task of the envs with mask == NULL or mask[i] != 0, from their next reset.
   BAD_CONFIG from the sim, nothing changed. */
ra_err_t ra_local_set_task (ra_local_t *l, const ra_task_t *task, const uint8_t *mask,
                            ra_error_t *err);
/* Env i's task as key/value entries (up to cap); returns how many. Strings valid until the next
   set_task or destroy. -1 if i is out of range. */
int ra_local_describe_task (const ra_local_t *l, int env_index, ra_kv_t *out, int cap);
/* Env i's text state into buf (truncated to cap, NUL-terminated); returns the length wanted, or
   -1 if i is out of range. */
int ra_local_render (const ra_local_t *l, int env_index, char *buf, size_t cap);

/* The simulators this library hosts: name i (0..count-1) or NULL. */
int ra_local_env_count (void);
const char *ra_local_env_name (int i);

#endif
