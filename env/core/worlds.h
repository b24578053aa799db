/*  env/core/worlds.h - a batch's task worlds (docs/sims/ecommerce.md section 6.4, which the other
    sims' "task slots" sections follow): which task each of the batch's world slots holds, which
    slot each env runs now and from its next reset on, and the set_task rule that picks a slot.

    The table owns only that bookkeeping; the sim owns the worlds themselves (catalogs,
    populations, choice models) in its own array indexed by slot, and builds one when
    ra_worlds_set says so. All memory is allocated by ra_worlds_init; nothing else allocates.
    Threading: ra_worlds_begin on disjoint envs may run concurrently (reset on disjoint ranges);
    init, fini and set need exclusive access.                                                    */
#ifndef RA_ENV_CORE_WORLDS_H
#define RA_ENV_CORE_WORLDS_H

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "env/core/task.h"

struct ra_sim;

typedef struct {
  int n_slots;                          /* worlds in the batch */
  int num_envs;
  int n_params;                         /* the sim's task parameter count (for same-world tests) */
  bool *in_use;                         /* [n_slots] the slot holds a built world */
  ra_task_values_t *task;               /* [n_slots] the task an in-use slot was built from */
  int *cur;                             /* [num_envs] slot of the running episode */
  int *next;                            /* [num_envs] slot from the next reset on */
  double hidden_tastes;                 /* config hidden_tastes (docs/sims/shared.md 4); 0 after
                                           init, the sim sets it before building slot 0 */
} ra_worlds_t;

/* The number of slots a batch of num_envs envs keeps for config task_slots: min(task_slots,
   num_envs + 1) (every env's current world plus a new one is the most a batch ever needs). */
static inline int64_t ra_worlds_count (int64_t task_slots, int num_envs)
{
  return task_slots > (int64_t) num_envs + 1 ? (int64_t) num_envs + 1 : task_slots;
}

/* Builds the table with n_slots slots (at least 1) and every env on slot 0, which holds task0
   (the caller builds world 0 from it). Returns RA_OK, or RA_ERR_NOMEM with *w empty and err
   untouched (the sim names itself in its out-of-memory message). O(n_slots + num_envs). */
ra_err_t ra_worlds_init (ra_worlds_t *w, int n_slots, int num_envs, int n_params,
                         const ra_task_values_t *task0);

/* Frees what init allocated; accepts a zeroed or already finished table. */
void ra_worlds_fini (ra_worlds_t *w);

/* set_task's rule: the slot holding a task with the same split, id and values, else the first
   slot that no env runs now and no env will run after this call (envs outside mask keep their
   next slot; mask NULL selects all). Records v in that slot, points the masked envs' next slot
   at it and returns RA_OK with *slot set and *fresh true when the caller must build the world
   from v (false: the slot already holds it). No free slot: RA_ERR_BAD_CONFIG naming task_slots,
   nothing changed. O(n_slots * (num_envs + n_params)). */
ra_err_t ra_worlds_set (ra_worlds_t *w, const ra_task_values_t *v, const uint8_t *mask, int *slot,
                        bool *fresh, ra_error_t *err);

/* What set_task and describe_task need from a simulator, fixed per sim: its task parameter
   table (env/core/task.h), the key its task draws are made with, and the function that builds
   the world of slot `slot` from resolved task values into the sim's own per-slot arrays. */
typedef struct {
  const ra_task_param_def_t *params;
  int n_params;
  uint64_t sim_key;
  void (*build) (struct ra_sim *sim, int slot, const ra_task_values_t *v);
} ra_worlds_def_t;

/* A sim's set_task (env/core/sim.h), the same for every simulator: resolves task against
   def->params with the sim's config defaults (ra_task_resolve), picks a slot by the rule of
   ra_worlds_set for the masked envs, and builds that slot's world with def->build when it is
   fresh. On any error nothing changed. */
ra_err_t ra_worlds_set_task (ra_worlds_t *w, const ra_worlds_def_t *def, struct ra_sim *sim,
                             const double *defaults, const ra_task_t *task, const uint8_t *mask,
                             ra_error_t *err);

/* A sim's describe_task: env env_index's task from its next reset on, as at most cap entries
   (ra_task_describe), then, when config hidden_tastes is on, "hidden_tastes" with the strength
   that task runs with (ra_worlds_hidden; never the secret itself); returns the count. */
int ra_worlds_describe_task (const ra_worlds_t *w, const ra_worlds_def_t *def, int env_index,
                             ra_kv_t *out, int cap);

/* The hidden-taste strength of task v in this batch (docs/sims/shared.md 4): config
   hidden_tastes for a drawn task (train, val, test, ood), 0 for the default task. */
static inline double ra_worlds_hidden (const ra_worlds_t *w, const ra_task_values_t *v)
{
  return v->split == RA_SPLIT_DEFAULT ? 0.0 : w->hidden_tastes;
}

/* At env i's reset: its next slot becomes its current one; returns it. */
static inline int ra_worlds_begin (ra_worlds_t *w, int i)
{
  assert (i >= 0 && i < w->num_envs);
  w->cur[i] = w->next[i];
  return w->cur[i];
}

/* The task of env i's running episode / of its next reset on (borrowed; valid until the next
   ra_worlds_set). */
static inline const ra_task_values_t *ra_worlds_task (const ra_worlds_t *w, int i)
{
  assert (i >= 0 && i < w->num_envs);
  return &w->task[w->cur[i]];
}

static inline const ra_task_values_t *ra_worlds_next_task (const ra_worlds_t *w, int i)
{
  assert (i >= 0 && i < w->num_envs);
  return &w->task[w->next[i]];
}

#endif
