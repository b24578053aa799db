/*  agents/policies/rollout_tasks.c - the task-set source (see rollout_tasks.h). */
#include <stdlib.h>
#include <string.h>

#include "agents/nn/nn.h"
#include "agents/policies/rollout_tasks.h"

typedef struct {
  ra_rollout_t base;
  ra_rollout_t *in;            /* borrowed */
  const ra_taskset_t *ts;      /* borrowed */
  ra_rollout_tasks_opts_t o;
  int n;
  int *cur;                    /* [n] index into ts->ids of each env's task */
  int *draw;                   /* [n] drawn index, -1: not drawn this round */
  uint8_t *mask;               /* [n] */
  float *reward;               /* [n] copies of the inner step's outcome */
  uint8_t *done;               /* [n] */
  ra_nn_rng_t *rng;            /* [n] env i draws from stream 1 + first_env + i of the seed */
} s_tasks_t;

static void s_views (s_tasks_t *p)
{
  p->base.obs = p->in->obs;
}

/* Applies the drawn tasks (draw[i] >= 0): one set_task per distinct task, each followed by a
   masked reset of its envs when reset_after, so every set_task finds a free slot (see the
   header). */
static ra_err_t s_apply (s_tasks_t *p, bool reset_after, ra_error_t *err)
{
  for (int i = 0; i < p->n; i++) {
    if (p->draw[i] < 0)
      continue;
    int t = p->draw[i];
    for (int j = 0; j < p->n; j++) {
      p->mask[j] = p->draw[j] == t;
      if (p->mask[j])
        p->draw[j] = -1, p->cur[j] = t;
    }
    ra_err_t rc = ra_rollout_set_task (p->in, p->ts->split, p->ts->ids[t], p->mask, err);
    if (rc == RA_OK && reset_after)
      rc = ra_rollout_reset_masked (p->in, NULL, p->mask, err);
    if (rc != RA_OK)
      return rc;
  }
  return RA_OK;
}

static ra_err_t s_reset (ra_rollout_t *src, const uint64_t *seeds, const uint8_t *mask,
                         ra_error_t *err)
{
  s_tasks_t *p = (s_tasks_t *) src;
  int n = p->ts->n;
  if (!mask) { /* spread: env i on order[i mod n], order a seeded shuffle of the set */
    int *order = malloc ((size_t) n * sizeof *order);
    if (!order)
      return ra_error_set (err, RA_ERR_NOMEM, -1, "rollout: out of memory for %d tasks", n);
    ra_nn_rng_t r;
    ra_nn_rng_init (&r, p->o.seed, 0);
    for (int i = 0; i < n; i++)
      order[i] = i;
    for (int i = n - 1; i > 0; i--) {
      int j = (int) (ra_nn_rng_u64 (&r) % (uint64_t) (i + 1));
      int x = order[i];
      order[i] = order[j];
      order[j] = x;
    }
    for (int i = 0; i < p->n; i++)
      p->draw[i] = order[(p->o.first_env + i) % n];
    free (order);
  } else {
    for (int i = 0; i < p->n; i++)
      p->draw[i] = mask[i] ? (int) (ra_nn_rng_u64 (&p->rng[i]) % (uint64_t) n) : -1;
  }
  ra_err_t rc = s_apply (p, false, err);
  if (rc == RA_OK)
    rc = ra_rollout_reset_masked (p->in, seeds, mask, err);
  if (rc != RA_OK)
    return rc;
  for (int i = 0; i < p->n; i++)
    if (!mask || mask[i])
      p->done[i] = 0, p->reward[i] = 0;
  s_views (p);
  return RA_OK;
}

static ra_err_t s_step (ra_rollout_t *src, const int32_t *slates, ra_error_t *err)
{
  s_tasks_t *p = (s_tasks_t *) src;
  ra_err_t rc = ra_rollout_step (p->in, slates, err);
  if (rc != RA_OK)
    return rc;
  memcpy (p->reward, p->in->reward, (size_t) p->n * sizeof (float));
  memcpy (p->done, p->in->done, (size_t) p->n);
  if (p->o.redraw) {
    for (int i = 0; i < p->n; i++)
      p->draw[i] = p->done[i] ? (int) (ra_nn_rng_u64 (&p->rng[i]) % (uint64_t) p->ts->n) : -1;
    if ((rc = s_apply (p, true, err)) != RA_OK)
      return rc;
  }
  s_views (p);
  return RA_OK;
}

static ra_err_t s_set_task (ra_rollout_t *src, const char *split, int64_t id, const uint8_t *mask,
                            ra_error_t *err)
{
  (void) src, (void) split, (void) id, (void) mask;
  return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                       "rollout: a task-set source chooses its envs' tasks itself");
}

static void s_destroy (ra_rollout_t *src)
{
  s_tasks_t *p = (s_tasks_t *) src;
  free (p->cur);
  free (p->draw);
  free (p->mask);
  free (p->reward);
  free (p->done);
  free (p->rng);
  free (p);
}

static const ra_rollout_ops_t s_ops = { .reset = s_reset, .step = s_step, .set_task = s_set_task,
                                        .destroy = s_destroy };

int ra_rollout_tasks_slots (const ra_taskset_t *ts, int num_envs)
{
  return (ts->n < num_envs ? ts->n : num_envs) + 1;
}

int64_t ra_rollout_tasks_current (const ra_rollout_t *src, int env)
{
  const s_tasks_t *p = (const s_tasks_t *) src;
  return p->ts->ids[p->cur[env]];
}

ra_err_t ra_rollout_tasks_new (ra_rollout_t *inner, int num_envs, const ra_taskset_t *ts,
                               const ra_rollout_tasks_opts_t *o, ra_rollout_t **out,
                               ra_error_t *err)
{
  *out = NULL;
  if (!ts || ts->n < 1 || num_envs < 1)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "rollout: a task-set source needs tasks and envs");
  if (o && o->first_env < 0)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "rollout: first_env %lld; expected >= 0",
                         (long long) o->first_env);
  s_tasks_t *p = calloc (1, sizeof *p);
  if (!p)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "rollout: out of memory");
  p->base = (ra_rollout_t) { .ops = &s_ops, .kind = inner->kind, .obs = inner->obs };
  p->in = inner;
  p->ts = ts;
  p->o = o ? *o : (ra_rollout_tasks_opts_t) { .seed = 1, .redraw = true };
  p->n = num_envs;
  size_t n = (size_t) num_envs;
  p->cur = calloc (n, sizeof *p->cur);
  p->draw = malloc (n * sizeof *p->draw);
  p->mask = calloc (n, 1);
  p->reward = calloc (n, sizeof *p->reward);
  p->done = calloc (n, 1);
  p->rng = malloc (n * sizeof *p->rng);
  if (!p->cur || !p->draw || !p->mask || !p->reward || !p->done || !p->rng) {
    s_destroy (&p->base);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "rollout: out of memory for %d envs", num_envs);
  }
  for (int i = 0; i < num_envs; i++)
    ra_nn_rng_init (&p->rng[i], p->o.seed, 1 + (uint64_t) (p->o.first_env + i));
  p->base.reward = p->reward;
  p->base.done = p->done;
  *out = &p->base;
  return RA_OK;
}
