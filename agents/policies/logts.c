/*  agents/policies/logts.c - logistic Thompson sampling with a diagonal Laplace approximation
    (Chapelle & Li 2011, Algorithm 3; docs/agents.md 1.7) on phi(u, c). Posterior
    w_j ~ N(m_j, 1 / q_j), prior m = 0, q = lambda. Each learn call takes the batch's (x, y),
    y = 1 when the slot's credit is > 0 else 0, and
      w = argmin 1/2 sum_j q_j (w_j - m_j)^2 + sum_n log(1 + exp(-(2 y_n - 1) w . x_n))
    by `newton_steps` Newton steps from m (w -= H^-1 g, H = diag(q) + sum p(1-p) x x^T, full
    D x D and solved by Cholesky: a diagonal step oscillates on correlated features);
    then m = w and q_j += sum_n p_n (1 - p_n) x_nj^2 with p_n = sigma(w . x_n). Each act draws
    one w per env (m_j + alpha z_j / sqrt(q_j)) and shows the top k by w . phi.
    Settings: alpha (posterior scale, default 1), lambda (prior precision, default 1),
    newton_steps (default 5).                                                                 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agents/policies/baseline.h"
#include "agents/policies/baselines.h"
#include "agents/policies/linalg.h"

typedef struct {
  ra_policy_t base;
  ra_rng_t rng;
  double alpha, lambda;
  int steps, D, cap;                    /* cap: (x, y) pairs one learn call may hold */
  double *m, *q, *w, *g, *h;            /* D each */
  double *hess, *chol;                  /* D x D each */
  float *x;                             /* cap x D */
  float *y;                             /* cap */
  float *score;                         /* K */
} s_lgt_t;

static void s_destroy (ra_policy_t **pp)
{
  if (!pp || !*pp)
    return;
  s_lgt_t *p = (s_lgt_t *) *pp;
  free (p->m);
  free (p->q);
  free (p->w);
  free (p->g);
  free (p->h);
  free (p->hess);
  free (p->chol);
  free (p->x);
  free (p->y);
  free (p->score);
  free (p);
  *pp = NULL;
}

static void s_forget (ra_policy_t *pol)
{
  s_lgt_t *p = (s_lgt_t *) pol;
  for (int j = 0; j < p->D; j++) {
    p->m[j] = 0;
    p->q[j] = p->lambda;
  }
}

static ra_err_t s_create (const ra_policy_args_t *args, ra_policy_t **out, ra_error_t *err)
{
  static const char *const keys[] = { "alpha", "lambda", "newton_steps", NULL };
  double alpha, lambda, steps;
  ra_err_t rc = ra__config_check (args, keys, err);
  if (rc == RA_OK)
    rc = ra__config_num (args, "alpha", 1.0, 0.0, 1e6, &alpha, err);
  if (rc == RA_OK)
    rc = ra__config_num (args, "lambda", 1.0, 1e-6, 1e6, &lambda, err);
  if (rc == RA_OK)
    rc = ra__config_num (args, "newton_steps", 5, 1, 100, &steps, err);
  if (rc != RA_OK)
    return rc;
  s_lgt_t *p = calloc (1, sizeof *p);
  if (!p)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "logts arm: out of memory");
  p->base.cls = &ra_logts_policy_class;
  p->alpha = alpha;
  p->lambda = lambda;
  p->steps = (int) steps;
  p->D = ra__phi_dim (args->user_dim, args->cand_dim);
  p->cap = args->num_envs * args->slate_size;
  size_t D = (size_t) p->D;
  ra_rng_seed_splitmix (&p->rng, args->seed);
  p->m = malloc (D * sizeof (double));
  p->q = malloc (D * sizeof (double));
  p->w = malloc (D * sizeof (double));
  p->g = malloc (D * sizeof (double));
  p->h = malloc (D * sizeof (double));
  p->hess = malloc (D * D * sizeof (double));
  p->chol = malloc (D * D * sizeof (double));
  p->x = malloc ((size_t) p->cap * D * sizeof (float));
  p->y = malloc ((size_t) p->cap * sizeof (float));
  p->score = malloc ((size_t) args->num_candidates * sizeof (float));
  if (!p->m || !p->q || !p->w || !p->g || !p->h || !p->hess || !p->chol || !p->x || !p->y || !p->score) {
    s_destroy ((ra_policy_t **) &p);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "logts arm: out of memory");
  }
  s_forget (&p->base);
  *out = &p->base;
  return RA_OK;
}

static void s_act (ra_policy_t *pol, const ra_obs_batch_t *obs, int32_t *slates)
{
  s_lgt_t *p = (s_lgt_t *) pol;
  int K = obs->num_candidates, k = obs->slate_size, F = obs->cand_dim, U = obs->user_dim, D = p->D;
  float *phi = p->x;   /* scratch: learn refills x */
  for (int i = 0; i < obs->num_envs; i++) {
    for (int j = 0; j < D; j++)
      p->w[j] = p->m[j] + p->alpha * ra_rng_normal (&p->rng) / sqrt (p->q[j]);
    for (int c = 0; c < K; c++) {
      ra__phi (obs->user + (size_t) i * U, U, obs->candidates + ((size_t) i * K + c) * F, F, phi);
      double s = 0;
      for (int j = 0; j < D; j++)
        s += p->w[j] * phi[j];
      p->score[c] = (float) s;
    }
    ra__slate_top_k (p->score, K, k, slates + (size_t) i * k);
  }
}

static double s_sigmoid (double z)
{
  return z >= 0 ? 1.0 / (1.0 + exp (-z)) : exp (z) / (1.0 + exp (z));
}

/* b <- (L L^T)^-1 b. O(D^2). */
static void s_chol_solve (const double *l, int D, double *b)
{
  for (int i = 0; i < D; i++) {
    double s = b[i];
    for (int q = 0; q < i; q++)
      s -= l[(size_t) i * D + q] * b[q];
    b[i] = s / l[(size_t) i * D + i];
  }
  for (int i = D - 1; i >= 0; i--) {
    double s = b[i];
    for (int q = i + 1; q < D; q++)
      s -= l[(size_t) q * D + i] * b[q];
    b[i] = s / l[(size_t) i * D + i];
  }
}

static void s_learn (ra_policy_t *pol, const ra_obs_batch_t *obs, const ra_feedback_t *fb)
{
  s_lgt_t *p = (s_lgt_t *) pol;
  int K = obs->num_candidates, k = obs->slate_size, F = obs->cand_dim, U = obs->user_dim, D = p->D;
  int n = 0;
  for (int i = 0; i < obs->num_envs; i++)
    for (int r = 0; r < k && n < p->cap; r++, n++) {
      int c = fb->slates[(size_t) i * k + r];
      ra__phi (obs->user + (size_t) i * U, U, obs->candidates + ((size_t) i * K + c) * F, F,
               p->x + (size_t) n * D);
      p->y[n] = ra__slot_credit (fb, i, r, k) > 0 ? 1.0f : 0.0f;
    }
  memcpy (p->w, p->m, (size_t) D * sizeof *p->w);
  for (int it = 0; it <= p->steps; it++) {
    /* g = q (w - m) + sum (p_n - y_n) x_n ; H = diag(q) + sum p_n (1 - p_n) x_n x_n^T */
    for (int j = 0; j < D; j++) {
      p->g[j] = p->q[j] * (p->w[j] - p->m[j]);
      p->h[j] = 0;
    }
    ra__set_identity (p->hess, D, 0.0);
    for (int t = 0; t < n; t++) {
      const float *x = p->x + (size_t) t * D;
      double z = 0;
      for (int j = 0; j < D; j++)
        z += p->w[j] * x[j];
      double pr = s_sigmoid (z), c = pr * (1 - pr);
      for (int j = 0; j < D; j++) {
        p->g[j] += (pr - p->y[t]) * x[j];
        p->h[j] += c * (double) x[j] * x[j];
        for (int q = 0; q <= j; q++)
          p->hess[(size_t) j * D + q] += c * (double) x[j] * x[q];
      }
    }
    if (it == p->steps || n == 0)
      break;   /* the last pass only measured the curvature at w */
    for (int j = 0; j < D; j++) {
      p->hess[(size_t) j * D + j] += p->q[j];
      for (int q = 0; q < j; q++)
        p->hess[(size_t) q * D + j] = p->hess[(size_t) j * D + q];
    }
    if (!ra__cholesky (p->hess, D, p->chol))
      break;
    s_chol_solve (p->chol, D, p->g);   /* g <- H^-1 g: the full Newton step */
    for (int j = 0; j < D; j++)
      p->w[j] -= p->g[j];
  }
  for (int j = 0; j < D; j++) {
    p->m[j] = p->w[j];
    p->q[j] += p->h[j];
  }
}

const ra_policy_class_t ra_logts_policy_class = {
  .name = "logts",
  .description = "logistic Thompson sampling, diagonal Laplace posterior on phi(user, candidate)",
  .create = s_create, .destroy = s_destroy, .act = s_act, .learn = s_learn, .forget = s_forget,
};
