/*  agents/policies/target.c - the target policy's network, slates and actor-critic update
    (equations in docs/agents.md, "Target policy").

    Owns one ra_nn parameter buffer (scorer + value head), device activation buffers sized for a
    full rollout (T*N users x K candidates) and the host rollout buffer; nothing is allocated after
    ra_target_new. Losses and their gradients with respect to scores and values are computed on
    the host (O(T N k K), small next to the MLP); the MLPs run on the backend. Not thread-safe.  */
#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/policies/target_int.h"

/* ------------------------------------------------------------------------------------ config */

void ra_target_cfg_default (ra_target_cfg_t *cfg)
{
  *cfg = (ra_target_cfg_t) {
    .hidden = 64, .layers = 2, .tanh = false, .rollout = 16, .lr = 3e-3f, .gamma = 0.95f,
    .lambda = 0.95f, .entropy_coef = 0.01f, .value_coef = 0.5f, .clip_norm = 1.0f,
    .reward_scale = 0.0f, .normalize_adv = true, .greedy = true, .seed = 1,
  };
}

static bool s_in (const char *key, const char *const *list)
{
  for (; list && *list; list++)
    if (strcmp (key, *list) == 0)
      return true;
  return false;
}

/* Reads a number in [lo, hi] (strings are parsed too: flags arrive as text). */
static ra_err_t s_num (const ra_kv_t *kv, double lo, double hi, double *out, ra_error_t *err)
{
  double v = kv->num;
  if (kv->type == RA_KV_STR) {
    char *end = NULL;
    v = kv->str ? strtod (kv->str, &end) : NAN;
    if (!kv->str || end == kv->str || *end)
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: '%s' must be a number, got '%s'",
                           kv->key, kv->str ? kv->str : "");
  }
  if (!(v >= lo && v <= hi))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: '%s' is %g, expected [%g, %g]",
                         kv->key, v, lo, hi);
  *out = v;
  return RA_OK;
}

static ra_err_t s_bool (const ra_kv_t *kv, bool *out, ra_error_t *err)
{
  if (kv->type == RA_KV_STR && kv->str) {
    if (!strcmp (kv->str, "true") || !strcmp (kv->str, "1")) {
      *out = true;
      return RA_OK;
    }
    if (!strcmp (kv->str, "false") || !strcmp (kv->str, "0")) {
      *out = false;
      return RA_OK;
    }
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: '%s' must be true or false, got '%s'",
                         kv->key, kv->str);
  }
  double v = 0;
  ra_err_t rc = s_num (kv, 0, 1, &v, err);
  if (rc == RA_OK)
    *out = v != 0;
  return rc;
}

ra_err_t ra_target_cfg_apply (ra_target_cfg_t *cfg, const ra_kv_t *kv, int n,
                              const char *const *ignore, ra_error_t *err)
{
  for (int i = 0; i < n; i++) {
    const ra_kv_t *e = &kv[i];
    const char *k = e->key;
    double v = 0;
    ra_err_t rc = RA_OK;
    if (!strcmp (k, "hidden")) {
      if ((rc = s_num (e, 1, 4096, &v, err)) == RA_OK)
        cfg->hidden = (int) v;
    } else if (!strcmp (k, "layers")) {
      if ((rc = s_num (e, 0, RA_TARGET_MAX_LAYERS, &v, err)) == RA_OK)
        cfg->layers = (int) v;
    } else if (!strcmp (k, "activation")) {
      if (e->type != RA_KV_STR || (strcmp (e->str, "relu") && strcmp (e->str, "tanh")))
        return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                             "target: 'activation' must be \"relu\" or \"tanh\"");
      cfg->tanh = !strcmp (e->str, "tanh");
    } else if (!strcmp (k, "rollout")) {
      if ((rc = s_num (e, 1, 4096, &v, err)) == RA_OK)
        cfg->rollout = (int) v;
    } else if (!strcmp (k, "lr")) {
      if ((rc = s_num (e, 0, 10, &v, err)) == RA_OK)
        cfg->lr = (float) v;
    } else if (!strcmp (k, "gamma")) {
      if ((rc = s_num (e, 0, 1, &v, err)) == RA_OK)
        cfg->gamma = (float) v;
    } else if (!strcmp (k, "lambda")) {
      if ((rc = s_num (e, 0, 1, &v, err)) == RA_OK)
        cfg->lambda = (float) v;
    } else if (!strcmp (k, "entropy")) {
      if ((rc = s_num (e, 0, 100, &v, err)) == RA_OK)
        cfg->entropy_coef = (float) v;
    } else if (!strcmp (k, "value_coef")) {
      if ((rc = s_num (e, 0, 100, &v, err)) == RA_OK)
        cfg->value_coef = (float) v;
    } else if (!strcmp (k, "clip_norm")) {
      if ((rc = s_num (e, -1, 1e9, &v, err)) == RA_OK)
        cfg->clip_norm = (float) v;
    } else if (!strcmp (k, "reward_scale")) {
      if ((rc = s_num (e, 0, 1e9, &v, err)) == RA_OK)
        cfg->reward_scale = (float) v;
    } else if (!strcmp (k, "normalize_adv")) {
      rc = s_bool (e, &cfg->normalize_adv, err);
    } else if (!strcmp (k, "greedy")) {
      rc = s_bool (e, &cfg->greedy, err);
    } else if (!strcmp (k, "seed")) {
      if ((rc = s_num (e, 0, 9007199254740992.0, &v, err)) == RA_OK)
        cfg->seed = (uint64_t) v;
    } else if (!s_in (k, ignore)) {
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                           "target: unknown config key '%s' (expected hidden, layers, activation, "
                           "rollout, lr, gamma, lambda, entropy, value_coef, clip_norm, "
                           "reward_scale, normalize_adv, greedy, seed)", k);
    }
    if (rc != RA_OK)
      return rc;
  }
  return RA_OK;
}

ra_err_t ra_target_cfg_from_env (ra_target_cfg_t *cfg, const ra_client_env_t *env, ra_error_t *err)
{
  const ra_space_t *os = env->observation_space, *as = env->action_space;
  const ra_space_t *u = os && os->type == RA_SPACE_DICT ? ra_space_dict_get (os, "user") : NULL;
  const ra_space_t *c = os && os->type == RA_SPACE_DICT ? ra_space_dict_get (os, "candidates") : NULL;
  if (!u || !c || u->type != RA_SPACE_BOX || c->type != RA_SPACE_BOX || u->ndim != 1 || c->ndim != 2)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "target: the observation must be a Dict with \"user\" (U) and "
                         "\"candidates\" (K, F) boxes");
  int K = (int) c->shape[0], k;
  if (as->type == RA_SPACE_DISCRETE)
    k = 1;
  else if (as->type == RA_SPACE_MULTI_DISCRETE && as->ndim == 1)
    k = (int) as->shape[0];
  else
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "target: the action must be Discrete(K) or MultiDiscrete([K] * k)");
  if (k < 1 || k > K)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: slate size %d with %d candidates", k, K);
  cfg->num_envs = env->num_envs;
  cfg->num_candidates = K;
  cfg->slate_size = k;
  cfg->user_dim = (int) u->shape[0];
  cfg->cand_dim = (int) c->shape[1];
  return RA_OK;
}

/* ------------------------------------------------------------------------------- construction */

/* Adds the tensors of an MLP in -> hidden^layers -> 1 named "<prefix><i>.w/.b". */
static void s_mlp_add (ra_nn_params_t *p, ra__target_mlp_t *m, const char *prefix, int in,
                       const ra_target_cfg_t *cfg)
{
  m->n = cfg->layers + 1;
  m->in = in;
  for (int i = 0; i < m->n; i++) {
    char name[RA_NN_NAME_MAX];
    m->width[i] = i < cfg->layers ? cfg->hidden : 1;
    int ws[2] = { m->width[i], i == 0 ? in : cfg->hidden }, bs[1] = { m->width[i] };
    snprintf (name, sizeof name, "%s%d.w", prefix, i);
    m->w[i] = ra_nn_params_add (p, name, 2, ws);
    snprintf (name, sizeof name, "%s%d.b", prefix, i);
    m->b[i] = ra_nn_params_add (p, name, 1, bs);
  }
}

/* Buffers and the rollout (everything but params). */
static ra_err_t s_alloc_buffers (ra_target_t *t, ra_error_t *err)
{
  const ra_target_cfg_t *c = &t->cfg;
  ra_nn_backend_t *be = t->be;
  size_t N = (size_t) c->num_envs, T = (size_t) c->rollout, K = (size_t) c->num_candidates;
  size_t U = (size_t) c->user_dim, F = (size_t) c->cand_dim, k = (size_t) c->slate_size;
  size_t TN = T * N, rows = TN * K, vrows = TN + N;
  t->cap_users = (int) TN;
  bool ok = (t->d_user = ra_nn_alloc (be, vrows * U)) && (t->d_cand = ra_nn_alloc (be, rows * F))
            && (t->pact[0] = ra_nn_alloc (be, rows * (U + F)))
            && (t->dbuf[0] = ra_nn_alloc (be, rows * (size_t) c->hidden))
            && (t->dbuf[1] = ra_nn_alloc (be, rows * (size_t) c->hidden))
            && (t->d_dscores = ra_nn_alloc (be, rows)) && (t->d_dv = ra_nn_alloc (be, vrows))
            && (t->d_sqnorm = ra_nn_alloc (be, 1));
  t->vact[0] = t->d_user;
  for (int i = 0; ok && i < t->pi.n; i++)
    ok = (t->pact[i + 1] = ra_nn_alloc (be, rows * (size_t) t->pi.width[i]))
         && (t->vact[i + 1] = ra_nn_alloc (be, vrows * (size_t) t->vf.width[i]));
  size_t scratch = TN * (U + K * F + K + 4 * k + 64);
  ok = ok && (t->h_user = calloc (vrows * U, sizeof (float)))
       && (t->h_cand = calloc (vrows * K * F, sizeof (float)))
       && (t->h_slate = calloc (TN * k, sizeof (int32_t))) && (t->h_rew = calloc (TN, sizeof (float)))
       && (t->h_done = calloc (TN, 1)) && (t->h_scores = calloc (rows, sizeof (float)))
       && (t->h_values = calloc (vrows, sizeof (float))) && (t->h_adv = calloc (TN, sizeof (float)))
       && (t->h_ret = calloc (TN, sizeof (float))) && (t->h_dscores = calloc (rows, sizeof (float)))
       && (t->h_dv = calloc (vrows, sizeof (float))) && (t->h_tmp = calloc (2 * K, sizeof (float)))
       && (t->cur_user = calloc (N * U, sizeof (float)))
       && (t->cur_cand = calloc (N * K * F, sizeof (float)))
       && (t->ep_ret = calloc (TN, sizeof (double))) && (t->scratch = calloc (scratch, sizeof (float)))
       && (t->h_act = calloc (TN * k, sizeof (int32_t))) && (t->h_r = calloc (TN, sizeof (float)))
       && (t->h_d = calloc (TN, 1));
  t->scratch_floats = scratch;
  if (!ok)
    return ra_error_set (err, RA_ERR_NOMEM, -1,
                         "target: out of memory for buffers of %zu users x %zu candidates", TN, K);
  return RA_OK;
}

static void s_free_buffers (ra_target_t *t)
{
  ra_nn_backend_t *be = t->be;
  ra_nn_free (be, t->d_user);
  ra_nn_free (be, t->d_cand);
  for (int i = 0; i < RA_TARGET_MAX_LAYERS + 2; i++) {
    ra_nn_free (be, t->pact[i]);
    if (i > 0)
      ra_nn_free (be, t->vact[i]);
  }
  ra_nn_free (be, t->dbuf[0]);
  ra_nn_free (be, t->dbuf[1]);
  ra_nn_free (be, t->d_dscores);
  ra_nn_free (be, t->d_dv);
  ra_nn_free (be, t->d_sqnorm);
  void *host[] = { t->h_user, t->h_cand, t->h_slate, t->h_rew, t->h_done, t->h_scores,
                   t->h_values, t->h_adv, t->h_ret, t->h_dscores, t->h_dv, t->h_tmp, t->cur_user,
                   t->cur_cand, t->ep_ret, t->scratch, t->h_act, t->h_r, t->h_d };
  for (size_t i = 0; i < sizeof host / sizeof host[0]; i++)
    free (host[i]);
}

static ra_err_t s_check_cfg (const ra_target_cfg_t *c, ra_error_t *err)
{
  if (c->num_envs < 1 || c->num_candidates < 1 || c->slate_size < 1
      || c->slate_size > c->num_candidates || c->user_dim < 0 || c->cand_dim < 0
      || c->user_dim + c->cand_dim < 1)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "target: bad shapes: %d envs, %d candidates, slate %d, user %d, "
                         "candidate %d features", c->num_envs, c->num_candidates, c->slate_size,
                         c->user_dim, c->cand_dim);
  if (c->hidden < 1 || c->layers < 0 || c->layers > RA_TARGET_MAX_LAYERS || c->rollout < 1)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "target: hidden %d (>= 1), layers %d (0..%d), rollout %d (>= 1)",
                         c->hidden, c->layers, RA_TARGET_MAX_LAYERS, c->rollout);
  double rows = (double) c->rollout * c->num_envs * c->num_candidates;
  if (rows * (c->user_dim + c->cand_dim + 2.0 * c->hidden) > 2e9)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "target: rollout %d x %d envs x %d candidates is too large for one "
                         "update's buffers (reduce --rollout or --num-envs)",
                         c->rollout, c->num_envs, c->num_candidates);
  return RA_OK;
}

ra_err_t ra_target_new (ra_nn_backend_t *be, const ra_target_cfg_t *cfg, ra_target_t **out,
                        ra_error_t *err)
{
  assert (be && cfg && out);
  *out = NULL;
  ra_err_t rc = s_check_cfg (cfg, err);
  if (rc != RA_OK)
    return rc;
  ra_target_t *t = calloc (1, sizeof *t);
  if (!t)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "target: out of memory");
  t->cfg = *cfg;
  t->be = be;
  ra_nn_rng_init (&t->rng, cfg->seed, 1);
  t->params = ra_nn_params_new (be, 1, cfg->seed);
  if (!t->params) {
    rc = ra_error_set (err, RA_ERR_NOMEM, -1, "target: out of memory");
    goto fail;
  }
  s_mlp_add (t->params, &t->pi, "l", cfg->user_dim + cfg->cand_dim, cfg);
  s_mlp_add (t->params, &t->vf, "v", cfg->user_dim, cfg);
  if ((rc = ra_nn_params_alloc (t->params, err)) != RA_OK)
    goto fail;
  ra_nn_params_init (t->params, 1.0f);
  /* a small last scorer layer: the first slates are close to uniform */
  int last = t->pi.n - 1;
  ra_nn_scale (be, ra_nn_param (t->params, t->pi.w[last]), 0.01f,
               t->params->tensors[t->pi.w[last]].numel);
  if ((rc = s_alloc_buffers (t, err)) != RA_OK)
    goto fail;
  t->reward_scale = cfg->reward_scale;
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

ra_target_t *ra_target_clone (const ra_target_t *src)
{
  ra_target_t *t = NULL;
  ra_error_t err;
  if (ra_target_new (src->be, &src->cfg, &t, &err) != RA_OK)
    return NULL;
  ra_nn_params_t *p = ra_nn_params_clone (src->params);
  if (!p) {
    ra_target_destroy (&t);
    return NULL;
  }
  ra_nn_params_destroy (&t->params);
  t->params = p;  /* same table, same tensor indices */
  t->reward_scale = src->reward_scale;
  t->rng = src->rng;
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

size_t ra_target_num_params (const ra_target_t *t)
{
  return t->params->n;
}

void ra_target_get_params (const ra_target_t *t, float *host)
{
  ra_nn_download (t->be, host, t->params->data, t->params->n);
}

void ra_target_set_params (ra_target_t *t, const float *host)
{
  ra_nn_upload (t->be, t->params->data, host, t->params->n);
}

ra_err_t ra_target_save (const ra_target_t *t, const char *path, ra_error_t *err)
{
  return ra_nn_checkpoint_save (t->params, path, err);
}

ra_err_t ra_target_load (ra_target_t *t, const char *path, ra_error_t *err)
{
  return ra_nn_checkpoint_load (t->params, path, err);
}

/* Finds `"<name>": {... "shape": [a, b` in a safetensors header; false if absent. */
static bool s_header_shape (const char *hdr, const char *name, long *a, long *b)
{
  char key[RA_NN_NAME_MAX + 4];
  snprintf (key, sizeof key, "\"%s\"", name);
  const char *p = strstr (hdr, key);
  if (!p)
    return false;
  const char *s = strstr (p, "\"shape\"");
  const char *e = strchr (p, '}');
  if (!s || (e && s > e) || !(s = strchr (s, '[')))
    return false;
  return sscanf (s, "[%ld , %ld", a, b) == 2;
}

ra_err_t ra_target_checkpoint_arch (const char *path, int *hidden, int *layers, ra_error_t *err)
{
  FILE *f = fopen (path, "rb");
  if (!f)
    return ra_error_set (err, RA_ERR_IO, -1, "target: cannot open checkpoint '%s'", path);
  unsigned char len8[8];
  uint64_t len = 0;
  char *hdr = NULL;
  ra_err_t rc = RA_OK;
  if (fread (len8, 1, 8, f) != 8)
    goto bad;
  for (int i = 7; i >= 0; i--)
    len = len << 8 | len8[i];
  if (len == 0 || len > (64u << 20) || !(hdr = malloc (len + 1)) || fread (hdr, 1, len, f) != len)
    goto bad;
  hdr[len] = 0;
  long a, b;
  int n = 0;
  char name[32];
  for (;; n++) {
    snprintf (name, sizeof name, "l%d.w", n);
    if (!s_header_shape (hdr, name, &a, &b))
      break;
    if (n == 0)
      *hidden = (int) a;
  }
  if (n < 1 || n - 1 > RA_TARGET_MAX_LAYERS)
    goto bad;
  *layers = n - 1;
  if (n == 1)
    *hidden = 64;  /* no hidden layer: width unused */
  goto done;
bad:
  rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                     "target: '%s' is not a target-policy checkpoint (no scorer tensors l0.w...)", path);
done:
  free (hdr);
  fclose (f);
  return rc;
}

/* ------------------------------------------------------------------------------------- MLPs */

/* act[0] [rows, in] -> act[n] [rows, 1]; act[i+1] = activation(layer i (act[i])). */
static const float *s_mlp_forward (ra_target_t *t, const ra__target_mlp_t *m, float *const *act,
                                   int rows)
{
  for (int i = 0; i < m->n; i++) {
    ra_nn_linear_forward (t->params, m->w[i], m->b[i], act[i], act[i + 1], rows);
    if (i < m->n - 1) {
      size_t cnt = (size_t) rows * m->width[i];
      if (t->cfg.tanh)
        ra_nn_tanh_forward (t->be, act[i + 1], act[i + 1], cnt);
      else
        ra_nn_relu_forward (t->be, act[i + 1], act[i + 1], cnt);
    }
  }
  return act[m->n];
}

/* dout [rows] -> parameter grads (+=), using the activations of the last forward over >= rows. */
static void s_mlp_backward (ra_target_t *t, const ra__target_mlp_t *m, float *const *act,
                            const float *dout, int rows)
{
  const float *dy = dout;
  for (int i = m->n - 1; i >= 0; i--) {
    float *dx = i > 0 ? t->dbuf[i & 1] : NULL;
    ra_nn_linear_backward (t->params, m->w[i], m->b[i], act[i], dy, dx, rows);
    if (dx) { /* through the activation whose output is act[i] */
      size_t cnt = (size_t) rows * m->width[i - 1];
      if (t->cfg.tanh)
        ra_nn_tanh_backward (t->be, act[i], dx, dx, cnt);
      else
        ra_nn_relu_backward (t->be, act[i], dx, dx, cnt);
    }
    dy = dx;
  }
}

/* Scores [n, K] on the host for n users whose features are in d_user / d_cand. */
static void s_scores (ra_target_t *t, int n)
{
  const ra_target_cfg_t *c = &t->cfg;
  ra_nn_pairs_forward (t->be, t->d_user, t->d_cand, t->pact[0], n, c->num_candidates, c->user_dim,
                       c->cand_dim);
  const float *s = s_mlp_forward (t, &t->pi, t->pact, n * c->num_candidates);
  ra_nn_download (t->be, t->h_scores, s, (size_t) n * c->num_candidates);
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

/* Top-k by selection (ties: lowest index); with gumbel, a Plackett-Luce sample (Gumbel top-k:
   perturb each score by -log(-log u) and take the top k). O(kK). */
static void s_slate (ra_target_t *t, const float *scores, bool gumbel, int32_t *slate)
{
  int K = t->cfg.num_candidates, k = t->cfg.slate_size;
  float *s = t->h_tmp;
  for (int j = 0; j < K; j++) {
    s[j] = scores[j];
    if (gumbel) {
      double u = ra_nn_rng_uniform (&t->rng);
      if (u < 1e-12)
        u = 1e-12;
      s[j] += (float) -log (-log (u));
    }
  }
  for (int r = 0; r < k; r++) {
    int best = -1;
    for (int j = 0; j < K; j++)
      if (s[j] > -FLT_MAX && (best < 0 || s[j] > s[best]))
        best = j;
    if (best < 0)  /* only non-finite scores left: take the first unused */
      for (int j = 0; j < K && best < 0; j++)
        if (s[j] != -FLT_MAX)
          best = j;
    slate[r] = best;
    s[best] = -FLT_MAX;
  }
}

static void s_upload_obs (ra_target_t *t, const ra_obs_batch_t *obs)
{
  const ra_target_cfg_t *c = &t->cfg;
  size_t n = (size_t) obs->num_envs;
  ra_nn_upload (t->be, t->d_user, obs->user, n * c->user_dim);
  ra_nn_upload (t->be, t->d_cand, obs->candidates, n * c->num_candidates * c->cand_dim);
}

static void s_check_obs (const ra_target_t *t, const ra_obs_batch_t *obs)
{
  const ra_target_cfg_t *c = &t->cfg;
  (void) c;
  (void) obs;
  assert (obs->num_envs >= 1 && obs->num_envs <= t->cap_users);
  assert (obs->num_candidates == c->num_candidates && obs->user_dim == c->user_dim
          && obs->cand_dim == c->cand_dim);
}

void ra_target_act (ra_target_t *t, const ra_obs_batch_t *obs, bool greedy, int32_t *slates)
{
  s_check_obs (t, obs);
  s_upload_obs (t, obs);
  s_scores (t, obs->num_envs);
  int K = t->cfg.num_candidates, k = t->cfg.slate_size;
  for (int i = 0; i < obs->num_envs; i++)
    s_slate (t, t->h_scores + (size_t) i * K, !greedy, slates + (size_t) i * k);
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

bool ra_target_record (ra_target_t *t, const ra_obs_batch_t *obs, const int32_t *slates,
                       const float *reward, const uint8_t *done)
{
  const ra_target_cfg_t *c = &t->cfg;
  assert (t->steps < c->rollout && obs->num_envs == c->num_envs);
  s_check_obs (t, obs);
  size_t N = (size_t) c->num_envs, s = (size_t) t->steps, k = (size_t) c->slate_size;
  size_t nu = N * c->user_dim, nc = N * c->num_candidates * c->cand_dim;
  memmove (t->h_user + s * nu, obs->user, nu * sizeof (float));
  memmove (t->h_cand + s * nc, obs->candidates, nc * sizeof (float));
  memcpy (t->h_slate + s * N * k, slates, N * k * sizeof (int32_t));
  memcpy (t->h_rew + s * N, reward, N * sizeof (float));
  memcpy (t->h_done + s * N, done, N);
  t->steps++;
  return t->steps == c->rollout;
}

void ra_target_clear_rollout (ra_target_t *t)
{
  t->steps = 0;
  t->have_obs = false;
}

ra_err_t ra_target_update (ra_target_t *t, const ra_obs_batch_t *next_obs,
                           ra_target_losses_t *losses, ra_error_t *err)
{
  const ra_target_cfg_t *c = &t->cfg;
  assert (t->steps == c->rollout && next_obs->num_envs == c->num_envs);
  s_check_obs (t, next_obs);
  int N = c->num_envs, T = c->rollout, K = c->num_candidates, k = c->slate_size;
  int TN = T * N, M = TN;
  size_t nu = (size_t) N * c->user_dim;
  memmove (t->h_user + (size_t) T * nu, next_obs->user, nu * sizeof (float));

  /* values of the T+1 observations (section "Target policy", GAE) */
  ra_nn_upload (t->be, t->d_user, t->h_user, (size_t) (TN + N) * c->user_dim);
  ra_nn_upload (t->be, t->d_cand, t->h_cand, (size_t) TN * K * c->cand_dim);
  const float *v = s_mlp_forward (t, &t->vf, t->vact, TN + N);
  ra_nn_download (t->be, t->h_values, v, (size_t) (TN + N));

  if (t->reward_scale <= 0) { /* 1 / std of the first rollout's rewards */
    double s1 = 0, s2 = 0;
    for (int x = 0; x < TN; x++) {
      s1 += t->h_rew[x];
      s2 += (double) t->h_rew[x] * t->h_rew[x];
    }
    double var = s2 / TN - (s1 / TN) * (s1 / TN);
    t->reward_scale = var > 1e-12 ? (float) (1.0 / sqrt (var)) : 1.0f;
  }
  for (int x = 0; x < TN; x++)
    t->h_dscores[x] = t->h_rew[x] * t->reward_scale; /* scaled rewards, reusing a buffer */
  ra_target_gae (t->h_dscores, t->h_done, t->h_values, T, N, c->gamma, c->lambda, t->h_adv, t->h_ret);
  if (c->normalize_adv && TN > 1) {
    double s1 = 0, s2 = 0;
    for (int x = 0; x < TN; x++) {
      s1 += t->h_adv[x];
      s2 += (double) t->h_adv[x] * t->h_adv[x];
    }
    double mean = s1 / TN, sd = sqrt (fmax (s2 / TN - mean * mean, 0.0)) + 1e-8;
    for (int x = 0; x < TN; x++)
      t->h_adv[x] = (float) ((t->h_adv[x] - mean) / sd);
  }

  /* policy: loss = -(1/M) sum_m A_m log P(slate_m) - c_H (1/M) sum_m H_m */
  ra_nn_pairs_forward (t->be, t->d_user, t->d_cand, t->pact[0], TN, K, c->user_dim, c->cand_dim);
  const float *sc = s_mlp_forward (t, &t->pi, t->pact, TN * K);
  ra_nn_download (t->be, t->h_scores, sc, (size_t) TN * K);
  double pl = 0, ent = 0, vl = 0;
  float *dl = t->h_tmp, *de = t->h_tmp + K;
  for (int m = 0; m < M; m++) {
    memset (t->h_tmp, 0, 2 * (size_t) K * sizeof (float));
    double h;
    double lp = ra_target_pl_logprob (t->h_scores + (size_t) m * K, K, t->h_slate + (size_t) m * k,
                                      k, dl, &h, de);
    pl -= t->h_adv[m] * lp;
    ent += h;
    float *ds = t->h_dscores + (size_t) m * K;
    for (int j = 0; j < K; j++)
      ds[j] = (-t->h_adv[m] * dl[j] - c->entropy_coef * de[j]) / M;
  }
  /* value: loss = c_V (1/M) sum_m (V_m - R_m)^2 */
  for (int m = 0; m < M; m++) {
    double d = t->h_values[m] - t->h_ret[m];
    vl += d * d;
    t->h_dv[m] = (float) (c->value_coef * 2.0 * d / M);
  }

  ra_nn_params_zero_grad (t->params);
  ra_nn_upload (t->be, t->d_dscores, t->h_dscores, (size_t) TN * K);
  s_mlp_backward (t, &t->pi, t->pact, t->d_dscores, TN * K);
  /* the value activations are intact: the scorer forward used pact, not vact */
  ra_nn_upload (t->be, t->d_dv, t->h_dv, (size_t) TN);
  s_mlp_backward (t, &t->vf, t->vact, t->d_dv, TN);
  float sq = 0;
  if (c->clip_norm > 0)
    ra_nn_clip_grad_norm (t->params, c->clip_norm, t->d_sqnorm);
  else
    ra_nn_sumsq (t->be, t->params->grad, t->params->n, 1, t->params->n, t->d_sqnorm);
  ra_nn_download (t->be, &sq, t->d_sqnorm, 1);
  ra_nn_adam_t adam = { .lr = c->lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f };
  ra_err_t rc = ra_nn_adam_step (t->params, &adam, err);
  if (rc == RA_OK)
    rc = ra_nn_backend_status (t->be, err);
  t->steps = 0;
  if (losses)
    *losses = (ra_target_losses_t) {
      .policy_loss = (float) (pl / M), .value_loss = (float) (vl / M), .entropy = (float) (ent / M),
      .grad_norm = sqrtf (sq), .reward_scale = t->reward_scale,
    };
  return rc;
}
