/*  agents/policies/rollout_tasks.h - a rollout source over a task set (docs/agents.md, "Task-set
    training"): wraps another source (protocol or in-process) of N envs and spreads the envs over
    the tasks of a set, drawing each env's task again for every episode. This is the one "train
    over a task set" path: recarena-target --task SET and recarena-meta --algo multitask both
    train through it.

    How: at a full reset env i gets the task order[i mod n] (order: the set shuffled by the seed),
    so N >= n envs cover every task; with redraw on, each env that ends an episode gets a task
    drawn uniformly from the set (its own RNG stream, so the draws do not depend on other envs)
    and is reset onto it at once (set_task with a mask, then a masked reset; the episode the
    autoreset had started is dropped). Envs that draw the same task share one set_task. The env
    must hold at least min(n, N) + 1 task slots (config task_slots; the sims' default is 16):
    ra_rollout_tasks_slots says how many to ask for.

    Owns the reward and done copies it exposes (the masked reset clears the inner source's row of
    an env it resets); borrows the inner source and the set (both must outlive it). One thread. */
#ifndef RA_AGENTS_POLICIES_ROLLOUT_TASKS_H
#define RA_AGENTS_POLICIES_ROLLOUT_TASKS_H

#include <stdbool.h>

#include "agents/policies/rollout.h"
#include "agents/policies/taskset.h"

typedef struct {
  uint64_t seed;   /* the shuffle and the per-env draws */
  bool redraw;     /* draw a fresh task for each env at each episode end (default true) */
  int64_t first_env; /* the index of this source's env 0 in a larger batch split over processes
                        (recarena-meta's ranks): env i plays as env first_env + i would (task
                        order and draw stream), so the split does not change any env; default 0 */
} ra_rollout_tasks_opts_t;

/* RA_ERR_BAD_CONFIG for an empty set, RA_ERR_NOMEM. No call on the inner source is made here:
   the tasks are set at the first reset. */
ra_err_t ra_rollout_tasks_new (ra_rollout_t *inner, int num_envs, const ra_taskset_t *ts,
                               const ra_rollout_tasks_opts_t *o, ra_rollout_t **out,
                               ra_error_t *err);
/* The task slots a batch of num_envs envs over the set needs: min(n, num_envs) + 1. */
int ra_rollout_tasks_slots (const ra_taskset_t *ts, int num_envs);
/* The task id env i runs now (after a reset or step). */
int64_t ra_rollout_tasks_current (const ra_rollout_t *src, int env);

#endif
