/*  agents/policies/lints.c - linear Thompson sampling (Agrawal & Goyal 2013; docs/agents.md 1.6)
    over a ridge regression on phi(u, c): the core of lints.h, shared with the Meta-TS arm (1.9),
    and the arm "lints" on it (prior mean 0).
    Posterior theta ~ N(theta_hat, v^2 A^-1) with A = lambda I + sum x x^T (A^-1 by
    Sherman-Morrison), theta_hat = A^-1 (lambda mu + b), b = sum r x. Each act draws one theta
    per env (theta_hat + v L z, L L^T = A^-1, z ~ N(0, I)) and shows the top k candidates by
    theta . phi. Settings: v (posterior scale, default 0.5), lambda (default 1).             */
#include "agents/policies/lints.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agents/policies/baseline.h"
#include "agents/policies/baselines.h"
#include "agents/policies/linalg.h"

void ra__lints_fini (ra__lints_t *t)
{
  ra__ridge_fini (&t->model);
  free (t->chol);
  free (t->theta);
  free (t->zs);
  free (t->mu);
  free (t->gram);
  free (t->bsum);
  free (t->phi);
  free (t->score);
  memset (t, 0, sizeof *t);
}

bool ra__lints_init (ra__lints_t *t, const ra_policy_args_t *args, double v, double lambda,
                     bool keep_stats)
{
  memset (t, 0, sizeof *t);
  t->v = v;
  t->lambda = lambda;
  t->D = ra__phi_dim (args->user_dim, args->cand_dim);
  t->K = args->num_candidates;
  size_t D = (size_t) t->D;
  ra_rng_seed_splitmix (&t->rng, args->seed);
  t->chol = malloc (D * D * sizeof (double));
  t->theta = malloc (D * sizeof (double));
  t->zs = malloc (D * sizeof (double));
  t->mu = calloc (D, sizeof (double));
  t->phi = malloc (D * sizeof (float));
  t->score = malloc ((size_t) t->K * sizeof (float));
  if (keep_stats) {
    t->gram = calloc (D * D, sizeof (double));
    t->bsum = calloc (D, sizeof (double));
  }
  if (!t->chol || !t->theta || !t->zs || !t->mu || !t->phi || !t->score
      || (keep_stats && (!t->gram || !t->bsum)) || !ra__ridge_init (&t->model, t->D, lambda)) {
    ra__lints_fini (t);
    return false;
  }
  return true;
}

void ra__lints_forget (ra__lints_t *t)
{
  ra__ridge_clear (&t->model);
  for (int j = 0; j < t->D; j++)   /* theta_hat = A^-1 (lambda mu + b): the prior's share of b */
    t->model.b[j] = t->lambda * t->mu[j];
  size_t D = (size_t) t->D;
  if (t->gram) {
    memset (t->gram, 0, D * D * sizeof (double));
    memset (t->bsum, 0, D * sizeof (double));
  }
}

void ra__lints_set_prior_mean (ra__lints_t *t, const double *mu)
{
  memcpy (t->mu, mu, (size_t) t->D * sizeof (double));
  ra__lints_forget (t);
}

/* L with L L^T = A^-1; falls back to the square root of the diagonal if rounding made A^-1
   indefinite. */
static void s_factor (ra__lints_t *p)
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

void ra__lints_act (ra__lints_t *p, const ra_obs_batch_t *obs, int32_t *slates)
{
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

void ra__lints_learn (ra__lints_t *p, const ra_obs_batch_t *obs, const ra_feedback_t *fb)
{
  int K = obs->num_candidates, k = obs->slate_size, F = obs->cand_dim, U = obs->user_dim, D = p->D;
  for (int i = 0; i < obs->num_envs; i++)
    for (int r = 0; r < k; r++) {
      int c = fb->slates[(size_t) i * k + r];
      ra__phi (obs->user + (size_t) i * U, U, obs->candidates + ((size_t) i * K + c) * F, F, p->phi);
      double y = ra__slot_credit (fb, i, r, k);
      ra__ridge_add (&p->model, p->phi, y);
      if (!p->gram)
        continue;
      for (int a = 0; a < D; a++) {   /* G += x x^T, B += y x: the task's statistics (1.9) */
        double xa = p->phi[a];
        p->bsum[a] += y * xa;
        for (int b = 0; b < D; b++)
          p->gram[(size_t) a * D + b] += xa * p->phi[b];
      }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The arm "lints": the core with prior mean 0. */

typedef struct {
  ra_policy_t base;
  ra__lints_t ts;
} s_lts_t;

static void s_destroy (ra_policy_t **pp)
{
  if (!pp || !*pp)
    return;
  s_lts_t *p = (s_lts_t *) *pp;
  ra__lints_fini (&p->ts);
  free (p);
  *pp = NULL;
}

static void s_forget (ra_policy_t *pol)
{
  ra__lints_forget (&((s_lts_t *) pol)->ts);
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
  if (!p || !ra__lints_init (&p->ts, args, v, lambda, false)) {
    free (p);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "lints arm: out of memory");
  }
  p->base.cls = &ra_lints_policy_class;
  *out = &p->base;
  return RA_OK;
}

static void s_act (ra_policy_t *pol, const ra_obs_batch_t *obs, int32_t *slates)
{
  ra__lints_act (&((s_lts_t *) pol)->ts, obs, slates);
}

static void s_learn (ra_policy_t *pol, const ra_obs_batch_t *obs, const ra_feedback_t *fb)
{
  ra__lints_learn (&((s_lts_t *) pol)->ts, obs, fb);
}

const ra_policy_class_t ra_lints_policy_class = {
  .name = "lints", .description = "linear Thompson sampling, Gaussian posterior on phi(user, candidate)",
  .create = s_create, .destroy = s_destroy, .act = s_act, .learn = s_learn, .forget = s_forget,
};
