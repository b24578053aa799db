/*  agents/policies/rollout_paired.c - two sources stepped as one (see rollout_paired.h). */
#include <stdlib.h>
#include <string.h>

#include "agents/policies/rollout_paired.h"

typedef struct {
  ra_rollout_t base;
  ra_rollout_t *a, *b; /* borrowed: a is what base shows, b the second view */
  ra_obs_batch_t b_obs;
} s_paired_t;

/* After a call on both: base shows a, b_obs b; anything but the user rows that differs is an error. */
static ra_err_t s_sync (s_paired_t *p, const char *call, ra_error_t *err)
{
  const ra_obs_batch_t *x = &p->a->obs, *y = &p->b->obs;
  p->base.obs = *x;
  p->base.reward = p->a->reward;
  p->base.done = p->a->done;
  p->b_obs = *y;
  size_t n = (size_t) x->num_envs;
  const char *what = NULL;
  if (x->num_envs != y->num_envs || x->num_candidates != y->num_candidates || x->user_dim != y->user_dim
      || x->cand_dim != y->cand_dim || x->response_dim != y->response_dim)
    what = "shapes";
  else if (memcmp (x->candidates, y->candidates, n * (size_t) x->num_candidates * (size_t) x->cand_dim * sizeof (float)))
    what = "candidates";
  else if (x->response_dim > 0 && memcmp (x->response, y->response, n * (size_t) x->response_dim * sizeof (float)))
    what = "responses";
  else if (strcmp (call, "step") == 0
           && (memcmp (p->a->reward, p->b->reward, n * sizeof (float)) || memcmp (p->a->done, p->b->done, n)))
    what = "rewards or done flags";
  if (what)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "rollout: the paired sources' %s differ after %s; they must run the same envs, "
                         "seeds and tasks, differing only in what the users' rows show", what, call);
  return RA_OK;
}

static ra_err_t s_reset (ra_rollout_t *src, const uint64_t *seeds, const uint8_t *mask, ra_error_t *err)
{
  s_paired_t *p = (s_paired_t *) src;
  ra_err_t rc = ra_rollout_reset_masked (p->a, seeds, mask, err);
  if (rc == RA_OK)
    rc = ra_rollout_reset_masked (p->b, seeds, mask, err);
  return rc == RA_OK ? s_sync (p, "reset", err) : rc;
}

static ra_err_t s_step (ra_rollout_t *src, const int32_t *slates, ra_error_t *err)
{
  s_paired_t *p = (s_paired_t *) src;
  ra_err_t rc = ra_rollout_step (p->a, slates, err);
  if (rc == RA_OK)
    rc = ra_rollout_step (p->b, slates, err);
  return rc == RA_OK ? s_sync (p, "step", err) : rc;
}

static ra_err_t s_set_task (ra_rollout_t *src, const char *split, int64_t id, const uint8_t *mask,
                            ra_error_t *err)
{
  s_paired_t *p = (s_paired_t *) src;
  ra_err_t rc = ra_rollout_set_task (p->a, split, id, mask, err);
  return rc == RA_OK ? ra_rollout_set_task (p->b, split, id, mask, err) : rc;
}

static void s_destroy (ra_rollout_t *src)
{
  free (src);
}

static const ra_rollout_ops_t s_ops = { .reset = s_reset, .step = s_step, .set_task = s_set_task,
                                        .destroy = s_destroy };

ra_err_t ra_rollout_paired_new (ra_rollout_t *first, ra_rollout_t *second, ra_rollout_t **out, ra_error_t *err)
{
  s_paired_t *p = calloc (1, sizeof *p);
  *out = NULL;
  if (!p)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "rollout: out of memory");
  p->base = (ra_rollout_t) { .ops = &s_ops, .kind = first->kind, .obs = first->obs,
                             .reward = first->reward, .done = first->done };
  p->a = first;
  p->b = second;
  p->b_obs = second->obs;
  *out = &p->base;
  return RA_OK;
}

const ra_obs_batch_t *ra_rollout_paired_second (const ra_rollout_t *src)
{
  return src->ops == &s_ops ? &((const s_paired_t *) src)->b_obs : NULL;
}
