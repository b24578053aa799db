/*  agents/nn/scorer.c - an MLP over every (user, candidate) pair, P replicas at once.

    A thin owner around the pair-input MLP of mlp.c: owns its params and activation buffers
    (sized for cfg.max_users at make time; nothing is allocated in forward/backward). Backward
    reads the user and candidate inputs of the last forward, which must still be alive.
    Not thread-safe.                                            */
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
  if (!ra_nn_mlp_add (s->params, &s->mlp, "l", cfg->du, cfg->dc, cfg->cands, cfg->nhidden, cfg->hidden, 1,
                      cfg->act)) {
    ra_nn_scorer_destroy (&s);
    return ra__nn_error (err, RA_ERR_BAD_CONFIG, "nn scorer: hidden widths must be >= 1");
  }
  for (int i = 0; i <= cfg->nhidden; i++) {
    s->wt[i] = s->mlp.w[i];
    s->bt[i] = s->mlp.b[i];
  }
  ra_err_t rc = ra_nn_params_alloc (s->params, err);
  if (rc != RA_OK)
    goto fail;
  ra_nn_params_init (s->params, 1.0f);
  size_t users = (size_t) replicas * cfg->max_users, rows = users * cfg->cands;
  s->act[0] = ra_nn_alloc (be, users * s_width (cfg, 0));
  if (!s->act[0])
    goto nomem;
  for (int i = 0; i <= cfg->nhidden; i++)
    if (!(s->act[i + 1] = ra_nn_alloc (be, rows * s_width (cfg, i))))
      goto nomem;
  for (int k = 0; k < 2; k++)
    if (!(s->dbuf[k] = ra_nn_alloc (be, rows * s->mlp.max_width)))
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

/* user [P, U, du], cand [P, U, C, dc] -> scores [P, U*C] through the pair-input MLP */
const float *ra_nn_scorer_forward (ra_nn_scorer_t *s, const float *user, const float *cand, int U)
{
  assert (U > 0 && U <= s->cfg.max_users);
  s->last_users = U;
  s->last_user = user;
  s->last_cand = cand;
  return ra_nn_mlp_forward (s->params, &s->mlp, user, cand, s->act, U, (size_t) U, (size_t) U);
}

void ra_nn_scorer_backward (ra_nn_scorer_t *s, const float *dscores)
{
  int U = s->last_users;
  ra_nn_mlp_backward (s->params, &s->mlp, s->last_user, s->last_cand, s->act, dscores, s->dbuf, U, (size_t) U,
                      (size_t) U);
}

double ra_nn_scorer_flops (const ra_nn_scorer_t *s, int U)
{
  return ra_nn_mlp_flops (&s->mlp, U, s->params->replicas);
}
