/*  agents/policies/target.c - the target policy's network, slates and actor-critic update for a
    population of P replicas (equations in docs/agents.md, "Target policy").

    Owns one ra_nn parameter buffer of P replicas (scorer + value head, both ra_nn_mlp_t),
    device activation buffers sized for a full rollout (P x T*N users x K candidates) and the
    host rollout buffer; nothing is allocated after ra_target_new (ra_target_copy allocates
    Adam moments once if the destination has none yet). Slates, losses and their gradients run
    on the backend too (slate sampling, Plackett-Luce, GAE and normalisation are nn ops); the host
    keeps the rollout, the reward scales and the loss summaries. Not thread-safe.              */
#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agents/policies/target_int.h"

/* ------------------------------------------------------------------------------- construction */

/* The affinity head's tensors after the two MLPs (so a checkpoint's l* and v* keep their
   offsets), when cfg.affinity; false if one could not be added. */
static bool s_add_affinity (ra_target_t *t)
{
  t->aff_w = t->aff_b = -1;
  if (!t->cfg.affinity)
    return true;
  t->aff_w = ra_nn_params_add (t->params, "a.w", 2, (int[]) { t->cfg.cand_dim, t->in_dim });
  t->aff_b = ra_nn_params_add (t->params, "a.b", 1, (int[]) { t->cfg.cand_dim });
  return t->aff_w >= 0 && t->aff_b >= 0;
}

/* Buffers and the rollout (everything but params). */
static ra_err_t s_alloc_buffers (ra_target_t *t, ra_error_t *err)
{
  const ra_target_cfg_t *c = &t->cfg;
  ra_nn_backend_t *be = t->be;
  size_t P = (size_t) t->P, N = (size_t) c->num_envs, T = (size_t) c->rollout, K = (size_t) c->num_candidates;
  size_t U = (size_t) t->in_dim, F = (size_t) c->cand_dim, k = (size_t) c->slate_size;
  size_t TN = T * N, rows = P * TN * K, vrows = P * (TN + N), H = (size_t) c->hidden;
  t->cap_users = (int) TN;
  bool ok = (t->d_user = ra_nn_alloc (be, vrows * U)) && (t->d_cand = ra_nn_alloc (be, rows * F))
            && (t->pact[0] = ra_nn_alloc (be, P * TN * (size_t) t->pi.width[0]))
            && (t->dbuf[0] = ra_nn_alloc (be, rows * H)) && (t->dbuf[1] = ra_nn_alloc (be, rows * H))
            && (t->d_dscores = ra_nn_alloc (be, rows)) && (t->d_dv = ra_nn_alloc (be, vrows))
            && (t->d_sqnorm = ra_nn_alloc (be, P))
            && (t->d_slate = (int32_t *) ra_nn_alloc (be, P * TN * k)) && (t->d_rew = ra_nn_alloc (be, P * TN))
            && (t->d_done = (uint8_t *) ra_nn_alloc (be, (P * TN + 3) / 4)) && (t->d_adv = ra_nn_alloc (be, P * TN))
            && (t->d_ret = ra_nn_alloc (be, P * TN)) && (t->d_coef = ra_nn_alloc (be, P * TN))
            && (t->d_logp = ra_nn_alloc (be, P * TN)) && (t->d_ent = ra_nn_alloc (be, P * TN))
            && (t->d_vals = ra_nn_alloc (be, P * TN)) && (t->d_dvc = ra_nn_alloc (be, P * TN))
            && (t->d_vloss = ra_nn_alloc (be, P))
            && (c->temp == 1.0f || (t->d_tscores = ra_nn_alloc (be, rows)))
            && (c->slot_credit == 0 || (t->d_pos = ra_nn_alloc (be, P * TN * k)))
            && (!c->affinity || (t->d_aff = ra_nn_alloc (be, P * TN * F)))
            && (!c->scorer_yield
                || ((t->d_yield = ra_nn_alloc (be, P * TN)) && (t->d_ydscores = ra_nn_alloc (be, rows))));
  for (int i = 0; ok && i < t->pi.n; i++)
    ok = (t->pact[i + 1] = ra_nn_alloc (be, rows * (size_t) t->pi.width[i]))
         && (t->vact[i + 1] = ra_nn_alloc (be, vrows * (size_t) t->vf.width[i]));
  size_t scratch = P * TN * (U + K * F + K + 4 * k + 64);
  /* what the update uploads is staged in host_alloc memory (page-locked on cuda: asynchronous
     uploads) */
  ok = ok && (t->slot_ok = calloc (T, 1)) && (t->h_user = ra_nn_host_alloc (be, vrows * U * sizeof (float)))
       && (t->h_cand = ra_nn_host_alloc (be, rows * F * sizeof (float)))
       && (t->h_slate = ra_nn_host_alloc (be, P * TN * k * sizeof (int32_t)))
       && (t->h_sampled = ra_nn_host_alloc (be, P * TN * k * sizeof (int32_t)))
       && (t->h_rew = calloc (P * TN, sizeof (float))) && (t->h_done = ra_nn_host_alloc (be, P * TN))
       && (t->h_values = calloc (vrows, sizeof (float)))
       && (t->h_adv = calloc (P * TN, sizeof (float))) && (t->h_logp = calloc (P * TN, sizeof (float)))
       && (t->h_ent = calloc (P * TN, sizeof (float))) && (t->h_rs = ra_nn_host_alloc (be, P * TN * sizeof (float)))
       && (t->h_vloss = calloc (P, sizeof (float))) && (t->h_tmp = calloc (2 * K, sizeof (float)))
       && (t->reward_scale = calloc (P, sizeof (float))) && (t->lr = calloc (P, sizeof (float)))
       && (t->h_norm = calloc (P, sizeof (float)))
       && (t->rng = calloc (P, sizeof (ra_nn_rng_t))) && (t->losses = calloc (P, sizeof (ra_target_losses_t)))
       && (t->cur_user = calloc (P * N * (size_t) c->user_dim, sizeof (float)))
       && (t->cur_cand = calloc (P * N * K * F, sizeof (float)))
       && (t->ep_ret = calloc (P * TN, sizeof (double))) && (t->scratch = calloc (scratch, sizeof (float)))
       && (t->h_act = calloc (P * TN * k, sizeof (int32_t))) && (t->h_r = calloc (P * TN, sizeof (float)))
       && (t->h_d = calloc (P * TN, 1))
       && (c->slot_credit == 0
           || ((t->h_fb = calloc (P * TN * k, sizeof (float)))
               && (t->h_pos = ra_nn_host_alloc (be, P * TN * k * sizeof (float)))))
       && (!c->scorer_yield || (t->h_yield = ra_nn_host_alloc (be, P * TN * sizeof (float))))
       && ((c->slot_credit == 0 && c->context == 0)
           || (t->cur_resp = calloc (P * N * (size_t) c->response_dim, sizeof (float))))
       && ra__target_context_alloc (t);
  t->scratch_floats = scratch;
  if (!ok)
    return ra_error_set (err, RA_ERR_NOMEM, -1,
                         "target: out of memory for buffers of %zu x %zu users x %zu candidates", P, TN, K);
  t->act_slot = -1;
  return RA_OK;
}

static void s_free_buffers (ra_target_t *t)
{
  ra_nn_backend_t *be = t->be;
  void *dev[] = { t->d_user, t->d_cand, t->dbuf[0], t->dbuf[1], t->d_dscores, t->d_tscores, t->d_dv, t->d_sqnorm,
                  t->d_slate, t->d_rew, t->d_done, t->d_adv, t->d_ret, t->d_coef, t->d_logp, t->d_ent,
                  t->d_vals, t->d_dvc, t->d_vloss, t->d_pos, t->d_aff, t->d_yield, t->d_ydscores };
  for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
    ra_nn_free (be, dev[i]);
  for (int i = 0; i < RA_NN_MLP_MAX_LAYERS + 1; i++) {
    ra_nn_free (be, t->pact[i]);
    ra_nn_free (be, t->vact[i]);
  }
  void *staged[] = { t->h_user, t->h_cand, t->h_slate, t->h_sampled, t->h_done, t->h_rs, t->h_pos, t->h_yield };
  for (size_t i = 0; i < sizeof staged / sizeof staged[0]; i++)
    ra_nn_host_free (be, staged[i]);
  void *host[] = { t->slot_ok, t->h_rew, t->h_values,
                   t->h_adv, t->h_logp, t->h_ent, t->h_vloss, t->h_tmp, t->reward_scale,
                   t->lr, t->h_norm, t->rng, t->losses, t->cur_user, t->cur_cand, t->ep_ret, t->scratch, t->h_act,
                   t->h_r, t->h_d, t->h_fb, t->cur_resp };
  for (size_t i = 0; i < sizeof host / sizeof host[0]; i++)
    free (host[i]);
  ra__target_context_free (t);
  ra_nn_free (be, t->d_tslate);
  ra_nn_free (be, t->d_tcoef);
  ra_nn_free (be, t->d_tlogp);
  ra_nn_host_free (be, t->h_tslate);
  ra_nn_host_free (be, t->h_tcoef);
  free (t->h_tlogp);
  ra_nn_free (be, t->d_cuser);
  ra_nn_host_free (be, t->h_cuser);
}

ra_err_t ra_target_new (ra_nn_backend_t *be, const ra_target_cfg_t *cfg, ra_target_t **out,
                        ra_error_t *err)
{
  assert (be && cfg && out);
  *out = NULL;
  ra_err_t rc = ra__target_check_cfg (cfg, err);
  if (rc != RA_OK)
    return rc;
  ra_target_t *t = calloc (1, sizeof *t);
  if (!t)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "target: out of memory");
  t->cfg = *cfg;
  t->be = be;
  t->P = cfg->population;
  t->in_dim = cfg->user_dim + (cfg->context > 0 ? cfg->cand_dim : 0);
  t->params = ra_nn_params_new (be, t->P, cfg->seed);
  if (!t->params) {
    rc = ra_error_set (err, RA_ERR_NOMEM, -1, "target: out of memory");
    goto fail;
  }
  int hid[RA_TARGET_MAX_LAYERS];
  for (int i = 0; i < cfg->layers; i++)
    hid[i] = cfg->hidden;
  ra_nn_act_t act = cfg->tanh ? RA_NN_ACT_TANH : RA_NN_ACT_RELU;
  if (!ra_nn_mlp_add (t->params, &t->pi, "l", t->in_dim, cfg->cand_dim, cfg->num_candidates, cfg->layers,
                      hid, 1, act)
      || !ra_nn_mlp_add (t->params, &t->vf, "v", t->in_dim, 0, 0, cfg->layers, hid, 1, act)
      || !s_add_affinity (t)) {
    rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                       "target: cannot build the networks (the value head needs user features, "
                       "user_dim %d; or out of memory)", cfg->user_dim);
    goto fail;
  }
  if ((rc = ra_nn_params_alloc (t->params, err)) != RA_OK)
    goto fail;
  ra_nn_params_init (t->params, 1.0f);
  /* a small last scorer layer: the first slates are close to uniform */
  int last = t->pi.n - 1;
  for (int r = 0; r < t->P; r++)
    ra_nn_scale (be, ra_nn_param (t->params, t->pi.w[last]) + (size_t) r * t->params->n, 0.01f,
                 t->params->tensors[t->pi.w[last]].numel);
  for (int r = 0; t->aff_w >= 0 && r < t->P; r++) { /* the affinity head starts at 0 (T7) */
    size_t at = (size_t) r * t->params->n;
    ra_nn_zero (be, ra_nn_param (t->params, t->aff_w) + at, t->params->tensors[t->aff_w].numel);
    ra_nn_zero (be, ra_nn_param (t->params, t->aff_b) + at, t->params->tensors[t->aff_b].numel);
    if (cfg->context > 0) /* ... but for the context block: s_j gains c_j . v(u) from the start (T8) */
      for (int a = 0; a < cfg->cand_dim; a++)
        ra_nn_upload (be, ra_nn_param (t->params, t->aff_w) + at + (size_t) a * t->in_dim + cfg->user_dim + a,
                      (const float[]) { 1.0f }, 1);
  }
  if ((rc = s_alloc_buffers (t, err)) != RA_OK)
    goto fail;
  for (int r = 0; r < t->P; r++) {
    t->reward_scale[r] = cfg->reward_scale;
    t->lr[r] = cfg->lr;
    ra_nn_rng_init (&t->rng[r], cfg->seed, 1 + (uint64_t) r);
  }
  ra_nn_params_set_lr_scale (t->params, t->lr); /* Adam runs with lr 1 x the factor */
  *out = t;
  return RA_OK;
fail:
  ra_target_destroy (&t);
  return rc;
}

void ra_target_destroy (ra_target_t **t_p)
{
  if (!t_p || !*t_p)
    return;
  ra_target_t *t = *t_p;
  s_free_buffers (t);
  ra_nn_params_destroy (&t->params);
  free (t);
  *t_p = NULL;
}

ra_err_t ra_target_copy (ra_target_t *dst, const ra_target_t *src, ra_error_t *err)
{
  const ra_target_cfg_t *a = &dst->cfg, *b = &src->cfg;
  if (dst->params->n != src->params->n || dst->P != src->P || a->num_envs != b->num_envs
      || a->rollout != b->rollout || a->num_candidates != b->num_candidates || dst->in_dim != src->in_dim)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "target: copy between policies of different shapes (population %d vs %d, "
                         "%zu vs %zu parameters per replica)", dst->P, src->P, dst->params->n,
                         src->params->n);
  ra_err_t rc = ra_nn_params_copy (dst->params, src->params, err);
  if (rc != RA_OK)
    return rc;
  size_t P = (size_t) src->P;
  memcpy (dst->reward_scale, src->reward_scale, P * sizeof (float));
  memcpy (dst->lr, src->lr, P * sizeof (float));
  memcpy (dst->rng, src->rng, P * sizeof (ra_nn_rng_t));
  for (int p = 0; p < src->P; p++)
    ra__target_context_copy (dst, p, src, p);
  ra_target_clear_rollout (dst);
  return RA_OK;
}

void ra_target_copy_replica (ra_target_t *dst, int d, const ra_target_t *src, int s)
{
  assert (d >= 0 && d < dst->P && s >= 0 && s < src->P && dst->params->n == src->params->n);
  ra_nn_params_copy_replica (dst->params, d, src->params, s);
  dst->reward_scale[d] = src->reward_scale[s];
  dst->lr[d] = src->lr[s];
  dst->rng[d] = src->rng[s];
  ra__target_context_copy (dst, d, src, s);
}

ra_target_t *ra_target_clone (const ra_target_t *src)
{
  ra_target_t *t = NULL;
  ra_error_t err;
  if (ra_target_new (src->be, &src->cfg, &t, &err) != RA_OK)
    return NULL;
  if (ra_target_copy (t, src, &err) != RA_OK)
    ra_target_destroy (&t);
  return t;
}

const ra_target_cfg_t *ra_target_cfg (const ra_target_t *t)
{
  return &t->cfg;
}

ra_nn_params_t *ra_target_params (ra_target_t *t)
{
  return t->params;
}

ra_nn_rng_t *ra_target_rng (ra_target_t *t, int replica)
{
  assert (replica >= 0 && replica < t->P);
  return &t->rng[replica];
}

void ra_target_set_lr (ra_target_t *t, int replica, float lr)
{
  assert (replica >= 0 && replica < t->P);
  t->lr[replica] = lr;
  ra_nn_params_set_lr_scale (t->params, t->lr);
}

float ra_target_reward_scale (const ra_target_t *t, int replica)
{
  assert (replica >= 0 && replica < t->P);
  return t->reward_scale[replica];
}

size_t ra_target_num_params (const ra_target_t *t)
{
  return t->params->n * (size_t) t->P;
}

void ra_target_get_params (const ra_target_t *t, float *host)
{
  ra_nn_download (t->be, host, t->params->data, ra_target_num_params (t));
}

void ra_target_set_params (ra_target_t *t, const float *host)
{
  ra_nn_upload (t->be, t->params->data, host, ra_target_num_params (t));
}

void ra_target_head_mask (const ra_target_t *t, uint8_t *mask)
{
  const ra_nn_params_t *p = t->params;
  memset (mask, 0, p->n);
  char last[16];
  snprintf (last, sizeof last, "l%d.", t->cfg.layers);
  for (int i = 0; i < p->ntensors; i++) {
    const ra_nn_tensor_t *x = &p->tensors[i];
    if (!strncmp (x->name, last, strlen (last)) || x->name[0] == 'v' || x->name[0] == 'a')
      memset (mask + x->offset, 1, x->numel);
  }
}

void ra_target_reset_optimizer (ra_target_t *t)
{
  ra_nn_params_t *p = t->params;
  size_t n = p->n * (size_t) p->replicas;
  if (p->adam_m) {
    ra_nn_zero (t->be, p->adam_m, n);
    ra_nn_zero (t->be, p->adam_v, n);
  }
  int32_t *zero = calloc ((size_t) p->replicas, sizeof *zero);
  if (zero) /* calloc of P ints; without it the step counts stay (bias correction only) */
    ra_nn_upload_bytes (t->be, p->step, zero, (size_t) p->replicas * sizeof *zero);
  free (zero);
}

/* ------------------------------------------------------------------------------------ slates */

double ra_target_pl_logprob (const float *scores, int K, const int32_t *slate, int k, float *dlogp,
                             double *entropy, float *dent)
{
  /* Position r: softmax p_r over the candidates not yet placed (placed ones masked, as with
     -1e9 logits). log P = sum_r s[a_r] - lse_r; d/ds_j = sum_r (1{j = a_r} - p_r(j)).
     H_r = -sum p log p; dH_r/ds_j = -p_r(j) (log p_r(j) + H_r). */
  uint8_t placed[1024];
  assert (K <= 1024);
  memset (placed, 0, (size_t) K);
  double logp = 0, ent = 0;
  for (int r = 0; r < k; r++) {
    double mx = -DBL_MAX;
    for (int j = 0; j < K; j++)
      if (!placed[j] && scores[j] > mx)
        mx = scores[j];
    double z = 0;
    for (int j = 0; j < K; j++)
      if (!placed[j])
        z += exp (scores[j] - mx);
    double lse = mx + log (z), h = 0;
    int a = slate[r];
    assert (a >= 0 && a < K && !placed[a]);
    logp += scores[a] - lse;
    for (int j = 0; j < K; j++) {
      if (placed[j])
        continue;
      double lp = scores[j] - lse, p = exp (lp);
      h -= p * lp;
      if (dlogp)
        dlogp[j] -= (float) p;
    }
    if (dlogp)
      dlogp[a] += 1.0f;
    if (dent)
      for (int j = 0; j < K; j++)
        if (!placed[j]) {
          double lp = scores[j] - lse, p = exp (lp);
          dent[j] += (float) (-p * (lp + h));
        }
    ent += h;
    placed[a] = 1;
  }
  if (entropy)
    *entropy = ent;
  return logp;
}

/* ------------------------------------------------------------------------------------ acting */

static void s_check_obs (const ra_target_t *t, const ra_obs_batch_t *obs)
{
  const ra_target_cfg_t *c = &t->cfg;
  (void) c;
  (void) obs;
  assert (obs->num_envs >= t->P && obs->num_envs % t->P == 0 && obs->num_envs / t->P <= t->cap_users);
  assert (obs->num_candidates == c->num_candidates && obs->user_dim == t->in_dim
          && obs->cand_dim == c->cand_dim);
}

/* Uploads R users of every replica (obs rows p*R..) to the device rollout at user row `at`
   (candidates at the same row), with host copies into the rollout when keep: then one strided
   upload per tensor for all replicas (a GPU paid two copies per replica and step before). */
static void s_put_obs (ra_target_t *t, const ra_obs_batch_t *obs, int R, int at, bool keep)
{
  const ra_target_cfg_t *c = &t->cfg;
  size_t U = (size_t) t->in_dim, KF = (size_t) c->num_candidates * c->cand_dim;
  size_t TN = (size_t) t->cap_users, VN = TN + (size_t) c->num_envs;
  for (int p = 0; p < t->P; p++) {
    const float *u = obs->user + (size_t) p * R * U, *cd = obs->candidates + (size_t) p * R * KF;
    size_t ou = ((size_t) p * VN + at) * U, oc = ((size_t) p * TN + at) * KF;
    const float *g = t->ctx_yield ? t->ctx_yield + (size_t) p * R : NULL; /* T10: the rows' yield */
    size_t og = (size_t) p * TN + at;
    if (keep) { /* into the staged rollout, uploaded from there below without waiting (act's
                   download of the slates waits before anything changes these rows) */
      memcpy (t->h_user + ou, u, R * U * sizeof (float));
      memcpy (t->h_cand + oc, cd, R * KF * sizeof (float));
      if (g)
        memcpy (t->h_yield + og, g, R * sizeof (float));
    } else {
      ra_nn_upload (t->be, t->d_user + ou, u, R * U);
      ra_nn_upload (t->be, t->d_cand + oc, cd, R * KF);
      if (g)
        ra_nn_upload (t->be, t->d_yield + og, g, R);
    }
  }
  if (keep) {
    size_t ou = (size_t) at * U, oc = (size_t) at * KF;
    ra_nn_upload_rows_async (t->be, t->d_user + ou, VN * U * sizeof (float), t->h_user + ou, VN * U * sizeof (float),
                             R * U * sizeof (float), (size_t) t->P);
    ra_nn_upload_rows_async (t->be, t->d_cand + oc, TN * KF * sizeof (float), t->h_cand + oc, TN * KF * sizeof (float),
                             R * KF * sizeof (float), (size_t) t->P);
    if (t->ctx_yield)
      ra_nn_upload_rows_async (t->be, t->d_yield + at, TN * sizeof (float), t->h_yield + at, TN * sizeof (float),
                               R * sizeof (float), (size_t) t->P);
  }
}

/* Scorer forward (plus the affinity head, T7) for R users per replica starting at user row `at`
   of the rollout; returns the device scores [P][TN, K] (rows at.. of each replica). act and the
   update (R = TN, at = 0) both score through it. */
static const float *s_scores_at (ra_target_t *t, int R, int at)
{
  const ra_target_cfg_t *c = &t->cfg;
  size_t K = (size_t) c->num_candidates, TN = (size_t) t->cap_users, VN = TN + (size_t) c->num_envs;
  float *act[RA_NN_MLP_MAX_LAYERS + 1];
  act[0] = t->pact[0] + (size_t) at * t->pi.width[0];
  for (int i = 0; i < t->pi.n; i++)
    act[i + 1] = t->pact[i + 1] + (size_t) at * K * t->pi.width[i];
  ra_nn_mlp_forward (t->params, &t->pi, t->d_user + (size_t) at * t->in_dim,
                     t->d_cand + (size_t) at * K * c->cand_dim, act, R, VN, TN);
  if (t->d_yield) /* T10: the scorer's part yields where the task's feedback has spoken */
    ra_nn_scale_rows (t->be, act[t->pi.n], t->d_yield + at, t->P, R, (int) K, TN);
  if (t->aff_w >= 0)
    ra_nn_affinity_forward (t->params, t->aff_w, t->aff_b, t->d_user + (size_t) at * t->in_dim, VN,
                            t->d_cand + (size_t) at * K * c->cand_dim, (int) K, act[t->pi.n], t->d_aff, R, TN);
  return t->pact[t->pi.n];
}

/* The scores times 1/temp (docs/agents.md T5): count floats of scores copied to d_tscores at
   offset off and scaled there (the raw scores stay intact for the scorer's backward). The same
   float factor is used for sampling and for the log-probability, so the gradient is exact for the
   distribution the slates were drawn from. */
static const float *s_tempered (ra_target_t *t, const float *scores, size_t off, size_t count)
{
  float *d = t->d_tscores + off;
  ra_nn_copy (t->be, d, scores, count);
  ra_nn_scale (t->be, d, 1.0f / t->cfg.temp, count);
  return d;
}

static double s_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

double ra_target_act_seconds (const ra_target_t *t) { return t->act_seconds; }

void ra_target_act (ra_target_t *t, const ra_obs_batch_t *obs, bool greedy, int32_t *slates)
{
  double t0 = s_now ();
  const ra_obs_batch_t *raw = obs;
  ra_obs_batch_t view;
  ra__target_context_observe (t, raw); /* T8: the feedback to the last act's slates first */
  obs = ra__target_context_view (t, raw, &view);
  s_check_obs (t, obs);
  const ra_target_cfg_t *c = &t->cfg;
  int R = obs->num_envs / t->P, K = c->num_candidates, k = c->slate_size;
  int at = 0;
  if (R == c->num_envs && t->steps < c->rollout) {
    /* the rollout slot this observation will be recorded in: the update reuses these scorer
       activations when record confirms the observation (docs/agents.md, "Target policy") */
    at = t->steps * c->num_envs;
    t->act_slot = t->steps;
    t->slot_ok[t->steps] = 0;
    s_put_obs (t, obs, R, at, true);
  } else { /* another batch size, or a full rollout: rows 0.. of the device buffers */
    t->act_slot = -1;
    memset (t->slot_ok, 0, (size_t) c->rollout);
    s_put_obs (t, obs, R, 0, false);
  }
  /* Replica p's R rows start at row p*TN + at; one op over all replicas, each sampling from its
     own stream (docs/nn.md, S1), and one download of the span of rows they cover (the rows between
     replicas come along unused): a GPU pays one launch and one copy per step, not P. */
  size_t TN = (size_t) t->cap_users, first = (size_t) at, span = (size_t) (t->P - 1) * TN + (size_t) R;
  const float *scores = s_scores_at (t, R, at) + first * K;
  if (t->d_tscores && !greedy) /* a sample of the tempered scores (T5); top-k needs none */
    scores = s_tempered (t, scores, first * K, span * K);
  ra_nn_slate_sample_pop (t->be, scores, t->P, TN, R, K, k, greedy, t->rng, t->d_slate + first * k);
  ra_nn_download (t->be, (float *) t->h_sampled, (const float *) (t->d_slate + first * k), span * k);
  for (int p = 0; p < t->P; p++)
    memcpy (slates + (size_t) p * R * k, t->h_sampled + (size_t) p * TN * k, (size_t) R * k * sizeof (int32_t));
  ra__target_context_pend (t, raw, slates);
  t->act_seconds += s_now () - t0;
}

/* ------------------------------------------------------------------------------- actor-critic */

void ra_target_gae (const float *reward, const uint8_t *done, const float *values, int T, int N,
                    float gamma, float lambda, float *adv, float *ret)
{
  /* delta_t = r_t + gamma (1 - d_t) V_{t+1} - V_t; A_t = delta_t + gamma lambda (1 - d_t) A_{t+1} */
  for (int i = 0; i < N; i++) {
    double a = 0;
    for (int s = T - 1; s >= 0; s--) {
      size_t x = (size_t) s * N + i;
      double keep = done[x] ? 0.0 : 1.0;
      double delta = reward[x] + gamma * keep * values[x + N] - values[x];
      a = delta + gamma * lambda * keep * a;
      adv[x] = (float) a;
      ret[x] = (float) (a + values[x]);
    }
  }
}

/* Rank feedback of rollout step s (T6): k entries of obs's response from cfg.slot_feedback on; that
   response answers the slates recorded at step s. */
static void s_put_feedback (ra_target_t *t, const ra_obs_batch_t *obs, int s)
{
  size_t N = (size_t) t->cfg.num_envs, k = (size_t) t->cfg.slate_size, R = (size_t) obs->response_dim;
  assert (obs->response_dim >= t->cfg.slot_feedback + t->cfg.slate_size);
  for (size_t p = 0; p < (size_t) t->P; p++)
    for (size_t i = 0; i < N; i++)
      memcpy (t->h_fb + ((p * t->cap_users) + (size_t) s * N + i) * k,
              obs->response + (p * N + i) * R + t->cfg.slot_feedback, k * sizeof (float));
}

/* The per-slot credit coefficients of T6 into h_pos: per replica, each rank's feedback centred on
   that rank's mean and divided by the pooled std, over the steps whose response is the feedback
   (not done: a reset's response is zeros); times -beta / M; 0 on done steps. */
static void s_slot_credit (ra_target_t *t, float M)
{
  size_t TN = (size_t) t->cap_users, k = (size_t) t->cfg.slate_size;
  for (size_t p = 0; p < (size_t) t->P; p++) {
    const float *fb = t->h_fb + p * TN * k;
    const uint8_t *done = t->h_done + p * TN;
    float *pos = t->h_pos + p * TN * k;
    size_t n = 0;
    for (size_t x = 0; x < TN; x++)
      n += !done[x];
    double ss = 0;
    for (size_t i = 0; i < k; i++) { /* pos = the centred feedback first */
      double mean = 0;
      for (size_t x = 0; x < TN; x++)
        mean += done[x] ? 0.0 : fb[x * k + i];
      mean = n ? mean / (double) n : 0.0;
      for (size_t x = 0; x < TN; x++) {
        double d = done[x] ? 0.0 : fb[x * k + i] - mean;
        pos[x * k + i] = (float) d;
        ss += d * d;
      }
    }
    double sd = n ? sqrt (ss / (double) (n * k)) : 0.0, f = -t->cfg.slot_credit / M / (sd + 1e-8);
    for (size_t x = 0; x < TN * k; x++)
      pos[x] = (float) (pos[x] * f);
  }
}

bool ra_target_record (ra_target_t *t, const ra_obs_batch_t *obs, const int32_t *slates,
                       const float *reward, const uint8_t *done)
{
  const ra_target_cfg_t *c = &t->cfg;
  assert (t->steps < c->rollout && obs->num_envs == t->P * c->num_envs);
  ra_obs_batch_t view;
  obs = ra__target_context_view (t, obs, &view); /* act's rows: the context has not moved since */
  s_check_obs (t, obs);
  size_t N = (size_t) c->num_envs, s = (size_t) t->steps, k = (size_t) c->slate_size;
  size_t U = (size_t) t->in_dim, KF = (size_t) c->num_candidates * c->cand_dim;
  size_t TN = (size_t) t->cap_users, VN = TN + N;
  bool same = t->act_slot == t->steps;
  for (int p = 0; same && p < t->P; p++)
    same = memcmp (t->h_user + ((size_t) p * VN + s * N) * U, obs->user + p * N * U, N * U * sizeof (float)) == 0
           && memcmp (t->h_cand + ((size_t) p * TN + s * N) * KF, obs->candidates + p * N * KF,
                      N * KF * sizeof (float)) == 0;
  for (int p = 0; p < t->P; p++) {
    size_t row = (size_t) p * TN + s * N;
    if (!same) {
      memmove (t->h_user + ((size_t) p * VN + s * N) * U, obs->user + p * N * U, N * U * sizeof (float));
      memmove (t->h_cand + row * KF, obs->candidates + p * N * KF, N * KF * sizeof (float));
      if (t->h_yield) /* the rows' yield from the same view (T10) */
        memcpy (t->h_yield + row, t->ctx_yield + p * N, N * sizeof (float));
    }
    memcpy (t->h_slate + row * k, slates + p * N * k, N * k * sizeof (int32_t));
    memcpy (t->h_rew + row, reward + p * N, N * sizeof (float));
    memcpy (t->h_done + row, done + p * N, N);
  }
  ra_target_end_sessions (t, done, t->P * c->num_envs);
  if (t->h_fb && s > 0) /* this observation's response is the feedback to the last recorded slates */
    s_put_feedback (t, obs, s - 1);
  t->slot_ok[s] = same;
  t->act_slot = -1;
  t->steps++;
  return t->steps == c->rollout;
}

/* Empties the rollout buffer; the training stream (have_obs) is untouched. */
static void s_empty_rollout (ra_target_t *t)
{
  t->steps = 0;
  t->teacher_steps = 0;
  t->act_slot = -1;
  memset (t->slot_ok, 0, (size_t) t->cfg.rollout);
}

void ra_target_clear_rollout (ra_target_t *t)
{
  s_empty_rollout (t);
  t->have_obs = false;
}

/* Reward scale of replica p: 1 / std of the rewards of its first rollout (then kept). */
static void s_reward_scale (ra_target_t *t, int p)
{
  int TN = t->cap_users;
  const float *rew = t->h_rew + (size_t) p * TN;
  if (t->reward_scale[p] > 0)
    return;
  double s1 = 0, s2 = 0;
  for (int x = 0; x < TN; x++) {
    s1 += rew[x];
    s2 += (double) rew[x] * rew[x];
  }
  double var = s2 / TN - (s1 / TN) * (s1 / TN);
  t->reward_scale[p] = var > 1e-12 ? (float) (1.0 / sqrt (var)) : 1.0f;
}

/* T20: out[s, e] += w mean_{e' != e} rew[s, e'] over one replica's [T, N] rewards, the step's
   sum taken once in double (N > 1) */
static void s_task_credit (const float *rew, float *out, int T, int N, float w)
{
  for (int s = 0; s < T; s++) {
    const float *r = rew + (size_t) s * N;
    double sum = 0;
    for (int e = 0; e < N; e++)
      sum += r[e];
    for (int e = 0; e < N; e++)
      out[(size_t) s * N + e] += (float) (w * (sum - r[e]) / (N - 1));
  }
}

/* T19: the value head's rows. Their first U columns already hold the teacher's view of the user
   (target_run.c writes them as the rollout runs); the rest is the student's task context block
   from h_user. Uploaded without waiting (the update's downloads wait before anything changes
   them). */
static void s_critic_rows (ra_target_t *t)
{
  size_t rows = (size_t) t->P * (t->cap_users + (size_t) t->cfg.num_envs), U = (size_t) t->cfg.user_dim;
  size_t D = (size_t) t->in_dim;
  for (size_t r = 0; D > U && r < rows; r++)
    memcpy (t->h_cuser + r * D + U, t->h_user + r * D + U, (D - U) * sizeof (float));
  ra_nn_upload_async (t->be, t->d_cuser, t->h_cuser, rows * D * sizeof (float));
}

ra_err_t ra_target_grad (ra_target_t *t, const ra_obs_batch_t *next_obs, ra_target_losses_t *losses,
                         ra_error_t *err)
{
  const ra_target_cfg_t *c = &t->cfg;
  assert (t->steps == c->rollout && next_obs->num_envs == t->P * c->num_envs);
  if (t->teacher && t->teacher_steps != c->rollout)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: a teacher is attached but %d of the rollout's %d "
                         "steps have its slate; only ra_target_train_rollout asks it", t->teacher_steps, c->rollout);
  ra_obs_batch_t view;
  next_obs = ra__target_context_view (t, next_obs, &view);
  s_check_obs (t, next_obs);
  ra_nn_backend_t *be = t->be;
  int N = c->num_envs, T = c->rollout, K = c->num_candidates, k = c->slate_size;
  size_t TN = (size_t) T * N, VN = TN + N, U = (size_t) t->in_dim, P = (size_t) t->P;
  float M = (float) TN;
  for (size_t p = 0; p < P; p++)
    memmove (t->h_user + (p * VN + TN) * U, next_obs->user + p * N * U, N * U * sizeof (float));
  if (t->h_fb)
    s_put_feedback (t, next_obs, T - 1);

  /* staged host memory, asynchronous uploads: nothing below changes it before the downloads at
     the end wait */
  ra_nn_upload_async (be, t->d_user, t->h_user, P * VN * U * sizeof (float));
  if (t->h_yield)
    ra_nn_upload_async (be, t->d_yield, t->h_yield, P * TN * sizeof (float));
  bool reuse = true;
  for (int s = 0; s < T; s++)
    reuse = reuse && t->slot_ok[s];
  const float *scores = t->pact[t->pi.n]; /* [P, TN, K] */
  if (!reuse) { /* some step was not acted on by this policy just before it was recorded */
    ra_nn_upload_async (be, t->d_cand, t->h_cand, P * TN * (size_t) K * c->cand_dim * sizeof (float));
    s_scores_at (t, (int) TN, 0);
  }
  /* values of the T+1 observations, [P, T+1, N], read from the student's rows or, with a
     privileged critic, from the same rows with the teacher's view of the user (T19) */
  const float *vrows = t->d_user;
  if (t->teacher && t->teacher_opts.critic) {
    s_critic_rows (t);
    vrows = t->d_cuser;
  }
  const float *v = ra_nn_mlp_forward (t->params, &t->vf, vrows, NULL, t->vact, (int) VN, VN, VN);

  /* GAE on the scaled rewards (with the task credit, T20), advantage normalisation (docs/agents.md
     T2-T3; docs/nn.md S4-S5) */
  for (int p = 0; p < t->P; p++) {
    s_reward_scale (t, p);
    memcpy (t->h_rs + p * TN, t->h_rew + p * TN, TN * sizeof (float));
    if (c->task_credit > 0 && N > 1)
      s_task_credit (t->h_rew + p * TN, t->h_rs + p * TN, T, N, c->task_credit);
    for (size_t x = 0; x < TN; x++)
      t->h_rs[p * TN + x] *= t->reward_scale[p];
  }
  ra_nn_upload_async (be, t->d_rew, t->h_rs, P * TN * sizeof (float));
  ra_nn_upload_async (be, t->d_done, t->h_done, P * TN);
  ra_nn_upload_async (be, t->d_slate, t->h_slate, P * TN * (size_t) k * sizeof (int32_t));
  ra_nn_gae (be, t->d_rew, t->d_done, v, t->P, T, N, c->gamma, c->lambda, t->d_adv, t->d_ret);
  if (c->normalize_adv && TN > 1)
    ra_nn_normalize (be, t->d_adv, t->P, TN);

  /* policy: loss = -(1/M) sum A log P(slate) - c_H (1/M) sum H (T4), gradient with respect to the
     scores in one pass: coef = -A/M, entropy coefficient -c_H/M. With a temperature both are of
     the tempered scores s' = s / tau, and d/ds = (1/tau) d/ds' (T5) */
  size_t nsc = P * TN * (size_t) K;
  const float *pl = t->d_tscores ? s_tempered (t, scores, 0, nsc) : scores;
  ra_nn_copy (be, t->d_coef, t->d_adv, P * TN);
  ra_nn_scale (be, t->d_coef, -1.0f / M, P * TN);
  if (t->d_pos) { /* each placed item's choice also gets its own rank's feedback (T6) */
    s_slot_credit (t, M);
    ra_nn_upload_async (be, t->d_pos, t->h_pos, P * TN * (size_t) k * sizeof (float));
  }
  ra_nn_pl_backward (be, pl, t->d_slate, (int) (P * TN), K, k, t->d_coef, t->d_pos, -c->entropy_coef / M,
                     t->d_dscores, false);
  if (t->teacher) { /* imitation of the teacher's slates, -w (1/M) sum log P_tau(a^teacher) (T16) */
    ra_nn_upload_async (be, t->d_tslate, t->h_tslate, P * TN * (size_t) k * sizeof (int32_t));
    if (t->teacher_opts.gate) { /* each row's term times 1 - its yield (T17) */
      for (size_t x = 0; x < P * TN; x++)
        t->h_tcoef[x] = -t->teacher_opts.weight / M * (1.0f - t->h_yield[x]);
      ra_nn_upload_async (be, t->d_tcoef, t->h_tcoef, P * TN * sizeof (float));
    }
    ra_nn_pl_backward (be, pl, t->d_tslate, (int) (P * TN), K, k, t->d_tcoef, NULL, 0.0f, t->d_dscores, true);
    ra_nn_pl_forward (be, pl, t->d_tslate, (int) (P * TN), K, k, t->d_tlogp, NULL);
  }
  if (t->d_tscores)
    ra_nn_scale (be, t->d_dscores, 1.0f / c->temp, nsc);
  ra_nn_pl_forward (be, pl, t->d_slate, (int) (P * TN), K, k, t->d_logp, t->d_ent);
  /* value: loss = c_V (1/M) sum (V - R)^2 over the T steps (the bootstrap row gets no gradient) */
  for (size_t p = 0; p < P; p++)
    ra_nn_copy (be, t->d_vals + p * TN, v + p * VN, TN);
  ra_nn_mse_forward (be, t->d_vals, t->d_ret, t->d_vloss, t->P, (int) TN);
  ra_nn_mse_backward (be, t->d_vals, t->d_ret, t->d_dvc, c->value_coef, false, t->P, (int) TN);
  for (size_t p = 0; p < P; p++)
    ra_nn_copy (be, t->d_dv + p * VN, t->d_dvc + p * TN, TN); /* rows TN.. of each replica stay 0 */

  ra_nn_params_zero_grad (t->params);
  const float *dscorer = t->d_dscores; /* the scorer's output gradient: times its row's yield (T10) */
  if (t->d_yield) {
    ra_nn_copy (be, t->d_ydscores, t->d_dscores, nsc);
    ra_nn_scale_rows (be, t->d_ydscores, t->d_yield, t->P, (int) TN, K, TN);
    dscorer = t->d_ydscores;
  }
  ra_nn_mlp_backward (t->params, &t->pi, t->d_user, t->d_cand, t->pact, dscorer, t->dbuf, (int) TN, VN, TN);
  if (t->aff_w >= 0)
    ra_nn_affinity_backward (t->params, t->aff_w, t->aff_b, t->d_user, VN, t->d_cand, K, t->d_dscores, t->d_aff,
                             (int) TN, TN);
  /* the value activations are intact: the scorer used pact, not vact */
  ra_nn_mlp_backward (t->params, &t->vf, vrows, NULL, t->vact, t->d_dv, t->dbuf, (int) TN, VN, VN);

  /* loss summaries on the host: P*TN floats each */
  ra_nn_download (be, t->h_adv, t->d_adv, P * TN);
  ra_nn_download (be, t->h_logp, t->d_logp, P * TN);
  ra_nn_download (be, t->h_ent, t->d_ent, P * TN);
  ra_nn_download (be, t->h_vloss, t->d_vloss, P);
  if (t->teacher)
    ra_nn_download (be, t->h_tlogp, t->d_tlogp, P * TN);
  for (size_t p = 0; p < P; p++) {
    double pl = 0, ent = 0, im = 0;
    for (size_t x = p * TN; x < (p + 1) * TN; x++) {
      pl -= (double) t->h_adv[x] * t->h_logp[x];
      ent += t->h_ent[x];
      im -= t->teacher ? t->h_tlogp[x] : 0.0;
    }
    t->losses[p] = (ra_target_losses_t) {
      .policy_loss = (float) (pl / TN), .value_loss = t->h_vloss[p], .entropy = (float) (ent / TN),
      .grad_norm = 0, .reward_scale = t->reward_scale[p], .imitation = (float) (im / TN),
    };
  }
  s_empty_rollout (t);
  if (losses)
    memcpy (losses, t->losses, P * sizeof *losses);
  return ra_nn_backend_status (be, err);
}

ra_err_t ra_target_set_teacher (ra_target_t *t, ra_target_t *teacher, const ra_obs_batch_t *teacher_obs,
                                const ra_target_teacher_opts_t *opts, ra_error_t *err)
{
  t->teacher = NULL;
  if (!teacher)
    return RA_OK;
  const ra_target_cfg_t *c = &t->cfg, *tc = &teacher->cfg;
  float w = opts->weight;
  bool gate = opts->gate;
  if (!(w > 0 && w <= RA_TARGET_TEACHER_WEIGHT_MAX))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: the teacher's weight is %g, expected (0, %g]",
                         (double) w, RA_TARGET_TEACHER_WEIGHT_MAX);
  if (teacher->P != 1 || tc->num_envs != t->P * c->num_envs || tc->num_candidates != c->num_candidates
      || tc->slate_size != c->slate_size || tc->cand_dim != c->cand_dim || !teacher_obs)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: the teacher must be one replica acting on all %d envs "
                         "with %d candidates of %d features and slates of %d, and have an observation to act on",
                         t->P * c->num_envs, c->num_candidates, c->cand_dim, c->slate_size);
  if (tc->context > 0)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: the teacher reads a task context (n0 = %g); its one "
                         "replica would pool every task's feedback", (double) tc->context);
  if (gate && !c->scorer_yield)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: the gated imitation weighs each row by 1 - its "
                         "scorer yield (T17); this policy has no scorer yield (scorer_yield is off)");
  if (opts->critic && teacher_obs->user_dim != c->user_dim)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: the privileged critic (T19) reads the teacher's "
                         "view of each user in place of the student's, but it has %d user features and the "
                         "student %d", teacher_obs->user_dim, c->user_dim);
  ra_nn_backend_t *be = t->be;
  size_t PTN = (size_t) t->P * t->cap_users, k = (size_t) c->slate_size;
  size_t PVN = PTN + (size_t) t->P * c->num_envs;
  if (opts->critic && !t->h_cuser) {
    bool ok = (t->h_cuser = ra_nn_host_alloc (be, PVN * t->in_dim * sizeof (float)))
              && (t->d_cuser = ra_nn_alloc (be, PVN * t->in_dim));
    if (!ok)
      return ra_error_set (err, RA_ERR_NOMEM, -1, "target: out of memory for the privileged critic's rows");
  }
  if (gate && !t->h_tcoef && !(t->h_tcoef = ra_nn_host_alloc (be, PTN * sizeof (float))))
    return ra_error_set (err, RA_ERR_NOMEM, -1, "target: out of memory for the gated teacher's weights");
  if (!t->h_tslate) {
    bool ok = (t->h_tslate = ra_nn_host_alloc (be, PTN * k * sizeof (int32_t)))
              && (t->d_tslate = (int32_t *) ra_nn_alloc (be, PTN * k)) && (t->d_tcoef = ra_nn_alloc (be, PTN))
              && (t->d_tlogp = ra_nn_alloc (be, PTN)) && (t->h_tlogp = calloc (PTN, sizeof (float)));
    if (!ok)
      return ra_error_set (err, RA_ERR_NOMEM, -1, "target: out of memory for the teacher's slates");
  }
  float *coef = t->h_tlogp; /* as scratch: every row's coefficient -w / M */
  for (size_t x = 0; x < PTN; x++)
    coef[x] = -w / (float) t->cap_users;
  ra_nn_upload (be, t->d_tcoef, coef, PTN);
  t->teacher = teacher;
  t->teacher_opts = *opts;
  t->teacher_obs = teacher_obs;
  t->teacher_steps = 0;
  return ra_nn_backend_status (be, err);
}

ra_err_t ra_target_step (ra_target_t *t, float *grad_norms, ra_error_t *err)
{
  const ra_target_cfg_t *c = &t->cfg;
  size_t P = (size_t) t->P;
  if (c->clip_norm > 0)
    ra_nn_clip_grad_norm (t->params, c->clip_norm, t->d_sqnorm);
  else
    ra_nn_sumsq (t->be, t->params->grad, t->params->n, t->P, t->params->n, t->d_sqnorm);
  ra_err_t rc = RA_OK;
  if (c->sgd) { /* data -= lr[p] grad_p: scale each replica's gradient, then one step of 1 */
    for (size_t p = 0; p < P; p++)
      ra_nn_scale (t->be, t->params->grad + p * t->params->n, t->lr[p], t->params->n);
    ra_nn_sgd_step (t->params, 1.0f);
  } else {
    ra_nn_adam_t adam = { .lr = 1.0f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f }; /* x lr[p] */
    rc = ra_nn_adam_step (t->params, &adam, err);
  }
  if (rc == RA_OK)
    rc = ra_nn_backend_status (t->be, err);
  if (grad_norms) {
    ra_nn_download (t->be, grad_norms, t->d_sqnorm, P);
    for (size_t p = 0; p < P; p++)
      grad_norms[p] = sqrtf (grad_norms[p]);
  }
  return rc;
}

ra_err_t ra_target_update (ra_target_t *t, const ra_obs_batch_t *next_obs,
                           ra_target_losses_t *losses, ra_error_t *err)
{
  ra_err_t rc = ra_target_grad (t, next_obs, NULL, err);
  if (rc == RA_OK)
    rc = ra_target_step (t, t->h_norm, err);
  for (int p = 0; p < t->P; p++)
    t->losses[p].grad_norm = rc == RA_OK ? t->h_norm[p] : NAN;
  if (losses)
    memcpy (losses, t->losses, (size_t) t->P * sizeof *losses);
  return rc;
}
