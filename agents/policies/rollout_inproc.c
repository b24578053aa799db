/*  agents/policies/rollout_inproc.c - the in-process rollout source (see rollout_inproc.h).   */
#include <stdlib.h>
#include <string.h>

#include "agents/policies/rollout_inproc.h"
#include "env/server/pool.h"
#include "env/server/session.h"
#include "env/sims/registry.h"

typedef struct {
  ra_rollout_t base;
  ra_session_t *s;
  ra_pool_t *pool;
  const ra_sim_class_t *cls;
  int n, k, f_user, f_cand, f_resp, f_ids;
  uint8_t *done;
} s_inproc_t;

/* Points the obs views at the session's buffers. */
static void s_views (s_inproc_t *p)
{
  ra_outbufs_t *b = ra_session_out (p->s);
  p->base.obs.user = (const float *) b->sim.obs[p->f_user];
  p->base.obs.candidates = (const float *) b->sim.obs[p->f_cand];
  p->base.obs.response = p->f_resp >= 0 ? (const float *) b->sim.obs[p->f_resp] : NULL;
  p->base.obs.item_ids = p->f_ids >= 0 ? (const int32_t *) b->sim.obs[p->f_ids] : NULL;
  p->base.reward = b->sim.reward;
}

static ra_err_t s_reset (ra_rollout_t *src, const uint64_t *seeds, const uint8_t *mask,
                         ra_error_t *err)
{
  s_inproc_t *p = (s_inproc_t *) src;
  if (ra_session_reset (p->s, p->pool, seeds, mask) != RA_OK)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "rollout: out of memory for the reset buffers");
  if (!mask)
    memset (p->done, 0, (size_t) p->n);
  s_views (p);
  return RA_OK;
}

/* As the server's set_task: the session is idle between calls on this thread, so the sim is
   changed in place (the task takes effect at each masked env's next reset). */
static ra_err_t s_set_task (ra_rollout_t *src, const char *split, int64_t id, const uint8_t *mask,
                            ra_error_t *err)
{
  s_inproc_t *p = (s_inproc_t *) src;
  ra_task_t task = { .split = split, .id = id };
  return p->cls->set_task (ra_session_sim (p->s), &task, mask, err);
}

static ra_err_t s_step (ra_rollout_t *src, const int32_t *slates, ra_error_t *err)
{
  s_inproc_t *p = (s_inproc_t *) src;
  int K = p->base.obs.num_candidates;
  for (int i = 0; i < p->n * p->k; i++) /* the validation a server does on every step */
    if (slates[i] < 0 || slates[i] >= K)
      return ra_error_set (err, RA_ERR_BAD_REQUEST, i / p->k, "rollout: env %d: slate index %d, expected [0, %d)",
                           i / p->k, slates[i], K);
  ra_err_t rc = ra_session_check_step (p->s, err);
  if (rc != RA_OK)
    return rc;
  memcpy (ra_session_actions (p->s), slates, (size_t) p->n * p->k * sizeof (int32_t));
  ra_session_step (p->s, p->pool);
  ra_outbufs_t *b = ra_session_out (p->s);
  for (int i = 0; i < p->n; i++)
    p->done[i] = b->sim.terminated[i] || b->truncated[i];
  s_views (p);
  return RA_OK;
}

static void s_destroy (ra_rollout_t *src)
{
  s_inproc_t *p = (s_inproc_t *) src;
  ra_session_destroy (&p->s);
  ra_pool_destroy (&p->pool);
  free (p->done);
  free (p);
}

static const ra_rollout_ops_t s_ops = { .reset = s_reset, .step = s_step, .set_task = s_set_task,
                                        .destroy = s_destroy };

static int s_field (const ra_sim_spec_t *sp, const char *name)
{
  for (int f = 0; f < sp->n_obs; f++)
    if (!strcmp (sp->obs[f].name, name))
      return f;
  return -1;
}

ra_err_t ra_rollout_inproc_new (const ra_rollout_inproc_opts_t *o, ra_rollout_t **out, ra_error_t *err)
{
  *out = NULL;
  const ra_sim_class_t *cls = o->env ? ra_sims_find (o->env, (int) strlen (o->env)) : NULL;
  if (!cls)
    return ra_error_set (err, RA_ERR_UNKNOWN_ENV, -1, "rollout: unknown env '%s'", o->env ? o->env : "(null)");
  if (o->num_envs < 1)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "rollout: num_envs is %d, expected at least 1", o->num_envs);
  s_inproc_t *p = calloc (1, sizeof *p);
  if (!p)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "rollout: out of memory");
  p->base = (ra_rollout_t) { .ops = &s_ops, .kind = "inproc" };
  p->n = o->num_envs;
  p->cls = cls;
  ra_session_args_t args = {
    .cls = cls,
    .sim = { .config = o->config, .n_config = o->n_config, .task = NULL, .num_envs = o->num_envs,
             .seed = o->seed },
    .autoreset = RA_AUTORESET_SAME_STEP,
    .max_episode_steps = o->max_episode_steps,
  };
  ra_err_t rc;
  if (ra_pool_new (o->workers > 0 ? o->workers : 0, &p->pool) != RA_OK || !(p->done = calloc ((size_t) p->n, 1))) {
    rc = ra_error_set (err, RA_ERR_NOMEM, -1, "rollout: out of memory");
    goto fail;
  }
  if ((rc = ra_session_new (&args, &p->s, err)) != RA_OK)
    goto fail;
  if (o->task_split) {
    ra_task_t task = { .split = o->task_split, .id = o->task_id };
    if ((rc = cls->set_task (ra_session_sim (p->s), &task, NULL, err)) != RA_OK)
      goto fail;
  }
  const ra_sim_spec_t *sp = ra_session_spec (p->s);
  p->f_user = s_field (sp, "user");
  p->f_cand = s_field (sp, "candidates");
  p->f_resp = s_field (sp, "response");
  p->f_ids = s_field (sp, "item_ids");
  if (p->f_resp >= 0 && (sp->obs[p->f_resp].dtype != RA_DTYPE_F32 || sp->obs[p->f_resp].ndim != 1))
    p->f_resp = -1;
  if (p->f_ids >= 0 && sp->obs[p->f_ids].dtype != RA_DTYPE_I32)
    p->f_ids = -1;
  if (p->f_user < 0 || p->f_cand < 0 || sp->obs[p->f_user].dtype != RA_DTYPE_F32
      || sp->obs[p->f_cand].dtype != RA_DTYPE_F32 || sp->obs[p->f_cand].ndim != 2) {
    rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                       "rollout: %s has no f32 \"user\" and (K, F) \"candidates\" observation", cls->name);
    goto fail;
  }
  p->k = sp->slate_size;
  p->base.obs = (ra_obs_batch_t) {
    .num_envs = p->n, .num_candidates = sp->num_candidates, .slate_size = sp->slate_size,
    .user_dim = (int) sp->obs[p->f_user].shape[0], .cand_dim = (int) sp->obs[p->f_cand].shape[1],
    .response_dim = p->f_resp >= 0 ? (int) sp->obs[p->f_resp].shape[0] : 0,
  };
  p->base.done = p->done;
  *out = &p->base;
  return RA_OK;
fail:
  s_destroy (&p->base);
  return rc;
}
