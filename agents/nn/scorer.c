/*  agents/nn/scorer.c - an MLP over every (user, candidate) pair, P replicas at once.

    Owns its params and activation buffers (sized for cfg.max_users at make time; nothing is
    allocated in forward/backward). Not thread-safe.                                            */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#include "agents/nn/backend.h"
#include "agents/nn/nn.h"

static int s_width (const ra_nn_scorer_cfg_t *c, int layer) /* output width of layer */
{
  return layer < c->nhidden ? c->hidden[layer] : 1;
}

ra_err_t ra_nn_scorer_new (ra_nn_backend_t *be, const ra_nn_scorer_cfg_t *cfg, int replicas, uint64_t seed,
                           ra_nn_scorer_t **out, ra_error_t *err)
{
  assert (be && cfg && out);
  *out = NULL;
  if (cfg->nhidden < 0 || cfg->nhidden > RA_NN_SCORER_MAX_LAYERS || cfg->du < 0 || cfg->dc < 0
      || cfg->du + cfg->dc <= 0 || cfg->max_users <= 0 || cfg->cands <= 0)
    return ra__nn_error (err, RA_ERR_BAD_CONFIG, "nn scorer: bad shape (du %d, dc %d, %d hidden layers of at most %d, users %d, cands %d)",
                         cfg->du, cfg->dc, cfg->nhidden, RA_NN_SCORER_MAX_LAYERS, cfg->max_users, cfg->cands);
  ra_nn_scorer_t *s = calloc (1, sizeof *s);
  if (!s)
    return ra__nn_error (err, RA_ERR_NOMEM, "nn scorer: out of memory");
  s->cfg = *cfg;
  s->params = ra_nn_params_new (be, replicas, seed);
  if (!s->params)
    goto nomem;
  int in = cfg->du + cfg->dc, maxw = in;
  for (int i = 0; i <= cfg->nhidden; i++) {
    char name[RA_NN_NAME_MAX];
    int wshape[2] = { s_width (cfg, i), in }, bshape[1] = { s_width (cfg, i) };
    snprintf (name, sizeof name, "l%d.w", i);
    s->wt[i] = ra_nn_params_add (s->params, name, 2, wshape);
    snprintf (name, sizeof name, "l%d.b", i);
    s->bt[i] = ra_nn_params_add (s->params, name, 1, bshape);
    in = s_width (cfg, i);
    maxw = in > maxw ? in : maxw;
  }
  ra_err_t rc = ra_nn_params_alloc (s->params, err);
  if (rc != RA_OK)
    goto fail;
  ra_nn_params_init (s->params, 1.0f);
  size_t rows = (size_t) replicas * cfg->max_users * cfg->cands;
  s->act[0] = ra_nn_alloc (be, rows * (cfg->du + cfg->dc));
  if (!s->act[0])
    goto nomem;
  for (int i = 0; i <= cfg->nhidden; i++)
    if (!(s->act[i + 1] = ra_nn_alloc (be, rows * s_width (cfg, i))))
      goto nomem;
  for (int k = 0; k < 2; k++)
    if (!(s->dbuf[k] = ra_nn_alloc (be, rows * maxw)))
      goto nomem;
  *out = s;
  return RA_OK;
nomem:
  rc = ra__nn_error (err, RA_ERR_NOMEM, "nn scorer: out of memory for %d users x %d candidates",
                     cfg->max_users, cfg->cands);
fail:
  ra_nn_scorer_destroy (&s);
  return rc;
}

void ra_nn_scorer_destroy (ra_nn_scorer_t **s_p)
{
  if (!s_p || !*s_p)
    return;
  ra_nn_scorer_t *s = *s_p;
  if (s->params) {
    ra_nn_backend_t *be = s->params->be;
    for (int i = 0; i < RA_NN_SCORER_MAX_LAYERS + 2; i++)
      ra_nn_free (be, s->act[i]);
    ra_nn_free (be, s->dbuf[0]);
    ra_nn_free (be, s->dbuf[1]);
    ra_nn_params_destroy (&s->params);
  }
  free (s);
  *s_p = NULL;
}

/* user [P, U, du], cand [P, U, C, dc] -> pairs [P, U*C, du+dc] -> ... -> scores [P, U*C, 1] */
const float *ra_nn_scorer_forward (ra_nn_scorer_t *s, const float *user, const float *cand, int U)
{
  const ra_nn_scorer_cfg_t *c = &s->cfg;
  assert (U > 0 && U <= c->max_users);
  ra_nn_backend_t *be = s->params->be;
  int P = s->params->replicas, B = U * c->cands;
  s->last_users = U;
  ra_nn_pairs_forward (be, user, cand, s->act[0], P * U, c->cands, c->du, c->dc);
  for (int i = 0; i <= c->nhidden; i++) {
    ra_nn_linear_forward (s->params, s->wt[i], s->bt[i], s->act[i], s->act[i + 1], B);
    if (i < c->nhidden) {
      size_t n = (size_t) P * B * c->hidden[i];
      if (c->act == RA_NN_ACT_TANH)
        ra_nn_tanh_forward (be, s->act[i + 1], s->act[i + 1], n);
      else
        ra_nn_relu_forward (be, s->act[i + 1], s->act[i + 1], n);
    }
  }
  return s->act[c->nhidden + 1];
}

void ra_nn_scorer_backward (ra_nn_scorer_t *s, const float *dscores)
{
  const ra_nn_scorer_cfg_t *c = &s->cfg;
  ra_nn_backend_t *be = s->params->be;
  int P = s->params->replicas, B = s->last_users * c->cands;
  const float *dy = dscores;
  for (int i = c->nhidden; i >= 0; i--) {
    float *dx = i > 0 ? s->dbuf[i & 1] : NULL;
    ra_nn_linear_backward (s->params, s->wt[i], s->bt[i], s->act[i], dy, dx, B);
    if (dx) { /* through the activation of layer i-1, whose output is act[i] */
      size_t n = (size_t) P * B * c->hidden[i - 1];
      if (c->act == RA_NN_ACT_TANH)
        ra_nn_tanh_backward (be, s->act[i], dx, dx, n);
      else
        ra_nn_relu_backward (be, s->act[i], dx, dx, n);
    }
    dy = dx;
  }
}

double ra_nn_scorer_flops (const ra_nn_scorer_t *s, int U)
{
  const ra_nn_scorer_cfg_t *c = &s->cfg;
  double rows = (double) s->params->replicas * U * c->cands, f = 0.0;
  int in = c->du + c->dc;
  for (int i = 0; i <= c->nhidden; i++) {
    f += 2.0 * rows * in * s_width (c, i);
    in = s_width (c, i);
  }
  return f;
}
