/*  agents/policies/rollout_inproc.h - the in-process rollout source: a simulator session of the
    server's session layer (same autoreset "same_step" and time-limit semantics as a server, so the
    same env, config, task and seeds give the same trajectories as the protocol source) stepped in
    this process, with no message encoding per step and no copy of the observations: the views
    point into the session's output buffers (docs/agents.md, "Rollout sources").

    Owns its session and a pool (opts.workers threads; 0: the calling thread steps every env;
    results do not depend on the split). One calling thread.                                                      */
#ifndef RA_AGENTS_POLICIES_ROLLOUT_INPROC_H
#define RA_AGENTS_POLICIES_ROLLOUT_INPROC_H

#include <stdbool.h>

#include "agents/policies/rollout.h"

typedef struct {
  const char *env;              /* "ECommerce-v1" */
  int num_envs;                 /* N >= 1 */
  uint64_t seed;                /* env i starts its stream from seed + i, as make with a seed */
  const ra_kv_t *config;        /* flat env config (as the keys of make's config map) */
  int n_config;
  const char *task_split;       /* NULL: the default task; else the task (split, task_id) is set
                                   after creation, as a client's set_task would */
  int64_t task_id;
  int max_episode_steps;        /* <= 0: the sim's default */
  int workers;                  /* pool threads stepping the envs besides the caller (0: the
                                   caller steps all); results never depend on it */
} ra_rollout_inproc_opts_t;

/* RA_ERR_UNKNOWN_ENV, or the sim's RA_ERR_BAD_CONFIG naming the bad key, or RA_ERR_NOMEM. */
ra_err_t ra_rollout_inproc_new (const ra_rollout_inproc_opts_t *o, ra_rollout_t **out, ra_error_t *err);

#endif
