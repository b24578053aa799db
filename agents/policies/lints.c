/*  agents/policies/lints.c - linear Thompson sampling (Agrawal & Goyal 2013; docs/agents.md 1.6)
    over a ridge regression on phi(u, c): posterior theta ~ N(theta_hat, v^2 A^-1) with
    A = lambda I + sum x x^T (A^-1 by Sherman-Morrison), theta_hat = A^-1 b, b = sum r x.
    Each act draws one theta per env (theta_hat + v L z, L L^T = A^-1, z ~ N(0, I)) and shows
    the top k candidates by theta . phi. Settings: v (posterior scale, default 0.5), lambda
    (default 1).                                                                              */
#include <math.h>
#include <stdlib.h>

#include "agents/policies/baseline.h"
#include "agents/policies/baselines.h"
#include "agents/policies/linalg.h"
#include "agents/policies/ridge.h"

typedef struct {
  ra_policy_t base;
  ra_rng_t rng;
  double v;
  ra__ridge_t model;
  int D;
  double *chol, *theta, *zs;            /* D x D, D, D */
  float *phi;                           /* D */
  float *score;                         /* K */
} s_lts_t;

static void s_destroy (ra_policy_t **pp)
{
  if (!pp || !*pp)
    return;
  s_lts_t *p = (s_lts_t *) *pp;
  ra__ridge_fini (&p->model);
  free (p->chol);
  free (p->theta);
  free (p->zs);
  free (p->phi);
  free (p->score);
  free (p);
  *pp = NULL;
}

static void s_forget (ra_policy_t *pol)
{
  ra__ridge_clear (&((s_lts_t *) pol)->model);
}

static ra_err_t s_create (const ra_policy_args_t *args, ra_policy_t **out, ra_error_t *err)
{
  static const char *const keys[] = { "v", "lambda", NULL };
  double v, lambda;
  ra_err_t rc = ra__config_check (args, keys, err);
  if (rc == RA_OK)
    rc = ra__config_num (args, "v", 0.5, 0.0, 1e6, &v, err);
  if (rc == RA_OK)
    rc = ra__config_num (args, "lambda", 1.0, 1e-6, 1e6, &lambda, err);
  if (rc != RA_OK)
    return rc;
  s_lts_t *p = calloc (1, sizeof *p);
  if (!p)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "lints arm: out of memory");
  p->base.cls = &ra_lints_policy_class;
  p->v = v;
  p->D = ra__phi_dim (args->user_dim, args->cand_dim);
  size_t D = (size_t) p->D;
  ra_rng_seed_splitmix (&p->rng, args->seed);
  p->chol = malloc (D * D * sizeof (double));
  p->theta = malloc (D * sizeof (double));
  p->zs = malloc (D * sizeof (double));
  p->phi = malloc (D * sizeof (float));
  p->score = malloc ((size_t) args->num_candidates * sizeof (float));
  if (!p->chol || !p->theta || !p->zs || !p->phi || !p->score
      || !ra__ridge_init (&p->model, p->D, lambda)) {
    s_destroy ((ra_policy_t **) &p);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "lints arm: out of memory");
  }
  *out = &p->base;
  return RA_OK;
}

/* L with L L^T = A^-1; falls back to the square root of the diagonal if rounding made A^-1
   indefinite. */
static void s_factor (s_lts_t *p)
{
  int D = p->D;
  if (ra__cholesky (p->model.ainv, D, p->chol))
    return;
  for (int r = 0; r < D; r++)
    for (int c = 0; c < D; c++) {
      double d = p->model.ainv[(size_t) r * D + r];
      p->chol[(size_t) r * D + c] = r == c && d > 0 ? sqrt (d) : 0;
    }
}

static void s_act (ra_policy_t *pol, const ra_obs_batch_t *obs, int32_t *slates)
{
  s_lts_t *p = (s_lts_t *) pol;
  int K = obs->num_candidates, k = obs->slate_size, F = obs->cand_dim, U = obs->user_dim, D = p->D;
  ra__ridge_solve (&p->model);
  s_factor (p);
  for (int i = 0; i < obs->num_envs; i++) {
    for (int j = 0; j < D; j++)
      p->zs[j] = ra_rng_normal (&p->rng);
    for (int r = 0; r < D; r++) {   /* theta = theta_hat + v L z */
      double acc = 0;
      for (int q = 0; q <= r; q++)
        acc += p->chol[(size_t) r * D + q] * p->zs[q];
      p->theta[r] = p->model.theta[r] + p->v * acc;
    }
    for (int c = 0; c < K; c++) {
      ra__phi (obs->user + (size_t) i * U, U, obs->candidates + ((size_t) i * K + c) * F, F, p->phi);
      double s = 0;
      for (int j = 0; j < D; j++)
        s += p->theta[j] * p->phi[j];
      p->score[c] = (float) s;
    }
    ra__slate_top_k (p->score, K, k, slates + (size_t) i * k);
  }
}

static void s_learn (ra_policy_t *pol, const ra_obs_batch_t *obs, const ra_feedback_t *fb)
{
  s_lts_t *p = (s_lts_t *) pol;
  int K = obs->num_candidates, k = obs->slate_size, F = obs->cand_dim, U = obs->user_dim;
  for (int i = 0; i < obs->num_envs; i++)
    for (int r = 0; r < k; r++) {
      int c = fb->slates[(size_t) i * k + r];
      ra__phi (obs->user + (size_t) i * U, U, obs->candidates + ((size_t) i * K + c) * F, F, p->phi);
      ra__ridge_add (&p->model, p->phi, ra__slot_credit (fb, i, r, k));
    }
}

const ra_policy_class_t ra_lints_policy_class = {
  .name = "lints", .description = "linear Thompson sampling, Gaussian posterior on phi(user, candidate)",
  .create = s_create, .destroy = s_destroy, .act = s_act, .learn = s_learn, .forget = s_forget,
};
