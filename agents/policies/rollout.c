/*  agents/policies/rollout.c - the rollout source dispatch and the protocol source.

    The protocol source borrows the client and the env; it owns a slate buffer for the request,
    a scratch buffer for reply tensors that are not 4-byte aligned, and the done flags. The obs
    views point into the client's last reply (valid until the next call). One thread.          */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agents/policies/rollout.h"

ra_err_t ra_rollout_reset (ra_rollout_t *src, const uint64_t *seeds, ra_error_t *err)
{
  return src->ops->reset (src, seeds, NULL, err);
}

ra_err_t ra_rollout_reset_masked (ra_rollout_t *src, const uint64_t *seeds, const uint8_t *mask,
                                  ra_error_t *err)
{
  return src->ops->reset (src, seeds, mask, err);
}

ra_err_t ra_rollout_set_task (ra_rollout_t *src, const char *split, int64_t id, const uint8_t *mask,
                              ra_error_t *err)
{
  if (!split)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "rollout: set_task needs a split");
  return src->ops->set_task (src, split, id, mask, err);
}

static double s_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

ra_err_t ra_rollout_step (ra_rollout_t *src, const int32_t *slates, ra_error_t *err)
{
  double t = s_now ();
  ra_err_t rc = src->ops->step (src, slates, err);
  src->step_seconds += s_now () - t;
  return rc;
}

void ra_rollout_destroy (ra_rollout_t **src_p)
{
  if (!src_p || !*src_p)
    return;
  (*src_p)->ops->destroy (*src_p);
  *src_p = NULL;
}

/* ------------------------------------------------------------------------------- protocol */

typedef struct {
  ra_rollout_t base;
  ra_client_t *c;             /* borrowed */
  const ra_client_env_t *env; /* borrowed */
  int n, k;
  bool discrete;
  float *scratch;
  size_t scratch_floats;
  uint8_t *done;
  bool *mask;                 /* [n] the bool form of a mask for the client */
} s_proto_t;

/* The client's bool mask from a byte mask (NULL stays NULL). */
static const bool *s_bmask (s_proto_t *p, const uint8_t *mask)
{
  if (!mask)
    return NULL;
  for (int i = 0; i < p->n; i++)
    p->mask[i] = mask[i] != 0;
  return p->mask;
}

static ra_err_t s_take_obs (s_proto_t *p, const ra_step_result_t *r, ra_error_t *err)
{
  ra_err_t rc = ra_obs_batch_from_fields (&r->obs, p->k, p->scratch, p->scratch_floats, &p->base.obs, err);
  if (rc == RA_OK && p->base.obs.num_envs != p->n)
    rc = ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "rollout: reply has %d envs, expected %d",
                       p->base.obs.num_envs, p->n);
  return rc;
}

static ra_err_t s_proto_reset (ra_rollout_t *src, const uint64_t *seeds, const uint8_t *mask,
                               ra_error_t *err)
{
  s_proto_t *p = (s_proto_t *) src;
  ra_step_result_t r;
  ra_err_t rc = ra_client_reset (p->c, p->env, seeds, s_bmask (p, mask), &r, err);
  if (rc == RA_OK && !mask)
    memset (p->done, 0, (size_t) p->n);
  return rc == RA_OK ? s_take_obs (p, &r, err) : rc;
}

static ra_err_t s_proto_set_task (ra_rollout_t *src, const char *split, int64_t id,
                                  const uint8_t *mask, ra_error_t *err)
{
  s_proto_t *p = (s_proto_t *) src;
  return ra_client_set_task (p->c, p->env, split, id, NULL, 0, s_bmask (p, mask), err);
}

static ra_err_t s_proto_step (ra_rollout_t *src, const int32_t *slates, ra_error_t *err)
{
  s_proto_t *p = (s_proto_t *) src;
  int64_t shape[2] = { p->n, p->k };
  ra_tensor_t act = ra_tensor_view (RA_DTYPE_I32, p->discrete ? 1 : 2, shape, (void *) slates);
  ra_step_result_t r;
  ra_err_t rc = ra_client_step (p->c, p->env, &act, &r, err);
  if (rc != RA_OK)
    return rc;
  if (r.reward.dtype != RA_DTYPE_F32 || r.reward.ndim != 1 || r.reward.shape[0] != p->n
      || ra_tensor_numel (&r.terminated) != p->n || ra_tensor_numel (&r.truncated) != p->n)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                         "rollout: step reply: reward must be f32 (%d), terminated and truncated (%d)",
                         p->n, p->n);
  for (int i = 0; i < p->n; i++)
    p->done[i] = ra_tensor_get_int (&r.terminated, i) || ra_tensor_get_int (&r.truncated, i);
  if (((uintptr_t) r.reward.data & 3) != 0) { /* unaligned: copy after the obs scratch use */
    float *rw = p->scratch + p->scratch_floats - (size_t) p->n;
    memcpy (rw, r.reward.data, (size_t) p->n * sizeof (float));
    p->base.reward = rw;
  } else {
    p->base.reward = (const float *) r.reward.data;
  }
  return s_take_obs (p, &r, err);
}

static void s_proto_destroy (ra_rollout_t *src)
{
  s_proto_t *p = (s_proto_t *) src;
  free (p->scratch);
  free (p->done);
  free (p->mask);
  free (p);
}

static const ra_rollout_ops_t s_proto_ops = { .reset = s_proto_reset, .step = s_proto_step,
                                              .set_task = s_proto_set_task,
                                              .destroy = s_proto_destroy };

ra_err_t ra_rollout_protocol_new (ra_client_t *c, const ra_client_env_t *env, ra_rollout_t **out,
                                  ra_error_t *err)
{
  *out = NULL;
  if (strcmp (env->autoreset, "same_step") != 0)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "rollout: the env must be made with autoreset \"same_step\", got \"%s\"",
                         env->autoreset);
  const ra_space_t *os = env->observation_space, *as = env->action_space;
  const ra_space_t *u = os && os->type == RA_SPACE_DICT ? ra_space_dict_get (os, "user") : NULL;
  const ra_space_t *cd = os && os->type == RA_SPACE_DICT ? ra_space_dict_get (os, "candidates") : NULL;
  if (!u || !cd || cd->ndim != 2 || !as
      || (as->type != RA_SPACE_DISCRETE && !(as->type == RA_SPACE_MULTI_DISCRETE && as->ndim == 1)))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "rollout: the env needs Dict observations with \"user\" and \"candidates\" "
                         "(K, F) and a Discrete or MultiDiscrete action");
  s_proto_t *p = calloc (1, sizeof *p);
  if (!p)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "rollout: out of memory");
  p->base = (ra_rollout_t) { .ops = &s_proto_ops, .kind = "protocol" };
  p->c = c;
  p->env = env;
  p->n = env->num_envs;
  p->discrete = as->type == RA_SPACE_DISCRETE;
  p->k = p->discrete ? 1 : (int) as->shape[0];
  /* every obs field of every env, plus the rewards, in floats (fields are at most 8 bytes wide) */
  size_t per_env = 0;
  for (int f = 0; f < os->nchildren; f++) {
    size_t numel = 1;
    for (int d = 0; d < os->children[f]->ndim; d++)
      numel *= (size_t) os->children[f]->shape[d];
    per_env += 2 * numel;
  }
  p->scratch_floats = (size_t) p->n * (per_env + 1);
  p->scratch = malloc (p->scratch_floats * sizeof (float));
  p->done = calloc ((size_t) p->n, 1);
  p->mask = calloc ((size_t) p->n, sizeof *p->mask);
  if (!p->scratch || !p->done || !p->mask) {
    s_proto_destroy (&p->base);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "rollout: out of memory for %d envs", p->n);
  }
  p->base.done = p->done;
  *out = &p->base;
  return RA_OK;
}
