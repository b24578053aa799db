/*  agents/policies/linucb_hybrid.c - LinUCB with hybrid linear models (Li et al. 2010,
    Algorithm 2; docs/agents.md 1.5). Shared features z = phi(u, c) (D) with shared coefficients
    beta; per-arm features x_a = [1] (a per-item offset, p = 1) keyed by item id:
      score = z . beta + x . theta_a + alpha sqrt(s),  beta = A0^-1 b0,
      theta_a = A_a^-1 (b_a - B_a beta),
      s = z^T A0^-1 z - 2 z^T A0^-1 B_a^T A_a^-1 x + x^T A_a^-1 x
          + x^T A_a^-1 B_a A0^-1 B_a^T A_a^-1 x.
    Update with (z, x, r) on arm a:
      A0 += B_a^T A_a^-1 B_a;  b0 += B_a^T A_a^-1 b_a;
      A_a += x x^T;  B_a += x z^T;  b_a += r x;
      A0 += z z^T - B_a^T A_a^-1 B_a;  b0 += r z - B_a^T A_a^-1 b_a.
    With p = 1, A_a^-1 is a scalar. A0 is kept explicitly (its updates are rank-one corrections
    of both signs) and refactored, A0^-1 by Cholesky, once per learn call: O(D^3) per batch.
    Settings: alpha (default 1), lambda (prior precision of A0 and A_a, default 1), max_items
    (default 4096).                                                                            */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agents/policies/baseline.h"
#include "agents/policies/baselines.h"
#include "agents/policies/item_table.h"
#include "agents/policies/linalg.h"

typedef struct {
  ra_policy_t base;
  double alpha, lambda;
  int D;
  double *a0, *a0inv, *b0, *beta;       /* D x D, D x D, D, D */
  ra__item_table_t items;
  double *aa, *ba;                      /* cap + 1: A_a, b_a (scalars) */
  double *bm;                           /* (cap + 1) x D: B_a */
  float *z;                             /* D */
  double *v, *scratch;                  /* D; D * D + D */
  float *score;                         /* K */
} s_hy_t;

static void s_destroy (ra_policy_t **pp)
{
  if (!pp || !*pp)
    return;
  s_hy_t *p = (s_hy_t *) *pp;
  ra__item_table_fini (&p->items);
  free (p->a0);
  free (p->a0inv);
  free (p->b0);
  free (p->beta);
  free (p->aa);
  free (p->ba);
  free (p->bm);
  free (p->z);
  free (p->v);
  free (p->scratch);
  free (p->score);
  free (p);
  *pp = NULL;
}

static void s_arm_clear (s_hy_t *p, int s)
{
  p->aa[s] = p->lambda;
  p->ba[s] = 0;
  memset (p->bm + (size_t) s * p->D, 0, (size_t) p->D * sizeof *p->bm);
}

static void s_forget (ra_policy_t *pol)
{
  s_hy_t *p = (s_hy_t *) pol;
  ra__set_identity (p->a0, p->D, p->lambda);
  ra__set_identity (p->a0inv, p->D, 1.0 / p->lambda);
  memset (p->b0, 0, (size_t) p->D * sizeof *p->b0);
  memset (p->beta, 0, (size_t) p->D * sizeof *p->beta);
  ra__item_table_clear (&p->items);
  s_arm_clear (p, p->items.cap);
}

static ra_err_t s_create (const ra_policy_args_t *args, ra_policy_t **out, ra_error_t *err)
{
  static const char *const keys[] = { "alpha", "lambda", "max_items", NULL };
  double alpha, lambda, cap;
  ra_err_t rc = ra__config_check (args, keys, err);
  if (rc == RA_OK)
    rc = ra__config_num (args, "alpha", 1.0, 0.0, 1e6, &alpha, err);
  if (rc == RA_OK)
    rc = ra__config_num (args, "lambda", 1.0, 1e-6, 1e6, &lambda, err);
  if (rc == RA_OK)
    rc = ra__config_num (args, "max_items", 4096, 16, 1 << 22, &cap, err);
  if (rc != RA_OK)
    return rc;
  s_hy_t *p = calloc (1, sizeof *p);
  if (!p)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "linucb_hybrid arm: out of memory");
  p->base.cls = &ra_linucb_hybrid_policy_class;
  p->alpha = alpha;
  p->lambda = lambda;
  p->D = ra__phi_dim (args->user_dim, args->cand_dim);
  size_t D = (size_t) p->D;
  if (!ra__item_table_init (&p->items, (int) cap))
    goto fail;
  size_t arms = (size_t) p->items.cap + 1;
  p->a0 = malloc (D * D * sizeof (double));
  p->a0inv = malloc (D * D * sizeof (double));
  p->b0 = malloc (D * sizeof (double));
  p->beta = malloc (D * sizeof (double));
  p->aa = malloc (arms * sizeof (double));
  p->ba = malloc (arms * sizeof (double));
  p->bm = malloc (arms * D * sizeof (double));
  p->z = malloc (D * sizeof (float));
  p->v = malloc (D * sizeof (double));
  p->scratch = malloc ((D * D + D) * sizeof (double));
  p->score = malloc ((size_t) args->num_candidates * sizeof (float));
  if (!p->a0 || !p->a0inv || !p->b0 || !p->beta || !p->aa || !p->ba || !p->bm || !p->z || !p->v
      || !p->scratch || !p->score)
    goto fail;
  s_forget (&p->base);
  *out = &p->base;
  return RA_OK;
fail:
  s_destroy ((ra_policy_t **) &p);
  return ra_error_set (err, RA_ERR_NOMEM, -1, "linucb_hybrid arm: out of memory");
}

static void s_feat (s_hy_t *p, const ra_obs_batch_t *obs, int i, int c)
{
  int U = obs->user_dim, F = obs->cand_dim, K = obs->num_candidates;
  ra__phi (obs->user + (size_t) i * U, U, obs->candidates + ((size_t) i * K + c) * F, F, p->z);
}

/* UCB score of candidate c of env i (Algorithm 2's p_{t,a}). O(D^2). */
static double s_score (s_hy_t *p, const ra_obs_batch_t *obs, int i, int c)
{
  int D = p->D;
  s_feat (p, obs, i, c);
  int s = ra__item_table_find (&p->items, ra__item_key (obs, i, c));
  if (s < 0 && p->items.used >= p->items.cap * 3 / 4 + 1)
    s = p->items.cap;
  double zv = 0, zb = 0;   /* v = A0^-1 z */
  for (int r = 0; r < D; r++) {
    double acc = 0;
    for (int q = 0; q < D; q++)
      acc += p->a0inv[(size_t) r * D + q] * p->z[q];
    p->v[r] = acc;
    zv += p->z[r] * acc;
    zb += p->z[r] * p->beta[r];
  }
  double var = zv, theta = 0;
  if (s < 0) {
    var += 1.0 / p->lambda;
  } else {
    const double *bm = p->bm + (size_t) s * D;
    double ainv = 1.0 / p->aa[s], bv = 0, bbeta = 0, bab = 0;
    for (int r = 0; r < D; r++) {
      bv += bm[r] * p->v[r];
      bbeta += bm[r] * p->beta[r];
      double acc = 0;
      for (int q = 0; q < D; q++)
        acc += p->a0inv[(size_t) r * D + q] * bm[q];
      bab += bm[r] * acc;
    }
    var += -2.0 * bv * ainv + ainv + ainv * bab * ainv;
    theta = ainv * (p->ba[s] - bbeta);
  }
  return zb + theta + p->alpha * sqrt (var > 0 ? var : 0);
}

double ra__linucb_hybrid_score (ra_policy_t *pol, const ra_obs_batch_t *obs, int i, int c)
{
  return s_score ((s_hy_t *) pol, obs, i, c);
}

static void s_act (ra_policy_t *pol, const ra_obs_batch_t *obs, int32_t *slates)
{
  s_hy_t *p = (s_hy_t *) pol;
  int K = obs->num_candidates, k = obs->slate_size;
  for (int i = 0; i < obs->num_envs; i++) {
    for (int c = 0; c < K; c++)
      p->score[c] = (float) s_score (p, obs, i, c);
    ra__slate_top_k (p->score, K, k, slates + (size_t) i * k);
  }
}

/* A0 += sign B B^T / A_a ; b0 += sign B b_a / A_a, for arm s. */
static void s_fold (s_hy_t *p, int s, double sign)
{
  int D = p->D;
  const double *bm = p->bm + (size_t) s * D;
  double w = sign / p->aa[s];
  for (int r = 0; r < D; r++) {
    for (int q = 0; q < D; q++)
      p->a0[(size_t) r * D + q] += w * bm[r] * bm[q];
    p->b0[r] += w * bm[r] * p->ba[s];
  }
}

static void s_learn (ra_policy_t *pol, const ra_obs_batch_t *obs, const ra_feedback_t *fb)
{
  s_hy_t *p = (s_hy_t *) pol;
  int k = obs->slate_size, D = p->D;
  for (int i = 0; i < obs->num_envs; i++)
    for (int r = 0; r < k; r++) {
      int c = fb->slates[(size_t) i * k + r];
      bool is_new;
      int s = ra__item_table_get (&p->items, ra__item_key (obs, i, c), &is_new);
      if (is_new)
        s_arm_clear (p, s);
      s_feat (p, obs, i, c);
      double y = ra__slot_credit (fb, i, r, k);
      s_fold (p, s, +1.0);
      p->aa[s] += 1.0;
      p->ba[s] += y;
      double *bm = p->bm + (size_t) s * D;
      for (int q = 0; q < D; q++) {
        bm[q] += p->z[q];
        p->b0[q] += y * p->z[q];
        for (int t = 0; t < D; t++)
          p->a0[(size_t) q * D + t] += (double) p->z[q] * p->z[t];
      }
      s_fold (p, s, -1.0);
    }
  if (ra__spd_inverse (p->a0, D, p->a0inv, p->scratch))
    ra__matvec (p->a0inv, p->b0, D, p->beta);
}

const ra_policy_class_t ra_linucb_hybrid_policy_class = {
  .name = "linucb_hybrid",
  .description = "LinUCB, hybrid: shared ridge model on phi(user, candidate) plus a per-item offset",
  .create = s_create, .destroy = s_destroy, .act = s_act, .learn = s_learn, .forget = s_forget,
};
