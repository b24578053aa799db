/*  env/core/worlds.c - the task world table of a batch (see worlds.h; docs/sims/ecommerce.md
    section 6.4). Allocates in init only.                                                        */
#include "env/core/worlds.h"

#include <stdlib.h>

ra_err_t ra_worlds_init (ra_worlds_t *w, int n_slots, int num_envs, int n_params,
                         const ra_task_values_t *task0)
{
  assert (w && task0 && n_slots >= 1 && num_envs >= 0);
  *w = (ra_worlds_t) { .n_slots = n_slots, .num_envs = num_envs, .n_params = n_params };
  size_t N = num_envs > 0 ? (size_t) num_envs : 1;
  w->in_use = calloc ((size_t) n_slots, sizeof *w->in_use);
  w->task = calloc ((size_t) n_slots, sizeof *w->task);
  w->cur = calloc (N, sizeof *w->cur);
  w->next = calloc (N, sizeof *w->next);
  if (!w->in_use || !w->task || !w->cur || !w->next) {
    ra_worlds_fini (w);
    return RA_ERR_NOMEM;
  }
  w->in_use[0] = true;
  w->task[0] = *task0;
  return RA_OK;
}

void ra_worlds_fini (ra_worlds_t *w)
{
  if (!w)
    return;
  free (w->in_use);
  free (w->task);
  free (w->cur);
  free (w->next);
  *w = (ra_worlds_t) { 0 };
}

static bool s_same_task (const ra_task_values_t *a, const ra_task_values_t *b, int n_params)
{
  return a->split == b->split && a->id == b->id && ra_task_same_world (a, b, n_params);
}

ra_err_t ra_worlds_set (ra_worlds_t *w, const ra_task_values_t *v, const uint8_t *mask, int *slot,
                        bool *fresh, ra_error_t *err)
{
  assert (w && v && slot && fresh);
  int target = -1;
  for (int t = 0; t < w->n_slots && target < 0; t++)
    if (w->in_use[t] && s_same_task (&w->task[t], v, w->n_params))
      target = t;
  *fresh = target < 0;
  if (target < 0) {
    /* 6.4 a slot is free when no env runs it now or will run it after this call */
    for (int t = 0; t < w->n_slots && target < 0; t++) {
      bool busy = false;
      for (int i = 0; i < w->num_envs && !busy; i++)
        busy = w->cur[i] == t || (!(mask == NULL || mask[i]) && w->next[i] == t);
      if (!busy)
        target = t;
    }
    if (target < 0)
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                           "task: this batch already holds %d distinct tasks (config task_slots); "
                           "reset envs onto fewer tasks first or make with a larger task_slots",
                           w->n_slots);
    w->in_use[target] = true;
    w->task[target] = *v;
  }
  for (int i = 0; i < w->num_envs; i++)
    if (mask == NULL || mask[i])
      w->next[i] = target;
  *slot = target;
  return RA_OK;
}

ra_err_t ra_worlds_set_task (ra_worlds_t *w, const ra_worlds_def_t *def, struct ra_sim *sim,
                             const double *defaults, const ra_task_t *task, const uint8_t *mask,
                             ra_error_t *err)
{
  ra_task_values_t v;
  ra_err_t rc = ra_task_resolve (def->params, def->n_params, def->sim_key, defaults, task, &v, err);
  if (rc != RA_OK)
    return rc;
  int t;
  bool fresh;
  rc = ra_worlds_set (w, &v, mask, &t, &fresh, err);
  if (rc == RA_OK && fresh)
    def->build (sim, t, &v);
  return rc;
}

int ra_worlds_describe_task (const ra_worlds_t *w, const ra_worlds_def_t *def, int env_index,
                             ra_kv_t *out, int cap)
{
  assert (env_index >= 0 && env_index < w->num_envs);
  const ra_task_values_t *v = ra_worlds_next_task (w, env_index);
  int n = ra_task_describe (def->params, def->n_params, v, out, cap);
  if (w->hidden_tastes > 0 && n < cap)   /* shared.md 4: whether it is on, not the permutation */
    out[n++] = (ra_kv_t) { .key = "hidden_tastes", .type = RA_KV_NUM, .num = ra_worlds_hidden (w, v) };
  return n;
}
