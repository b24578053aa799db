/*  tests/meta/test_meta_core.c - the meta learners' pure update math (agents/meta/core.h,
    docs/meta.md 2): Reptile on quadratic tasks converges to the mean of the task optima (its
    epsilon step and its difference fed to Adam); the ES
    gradient estimate points along the true gradient of a quadratic at a large population; the
    noise table and antithetic pairs are reproducible by index; centered ranks; Adam ascends.  */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agents/meta/core.h"
#include "agents/nn/nn.h"

static double s_cos (const float *a, const float *b, size_t n)
{
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < n; i++)
    ab += (double) a[i] * b[i], aa += (double) a[i] * a[i], bb += (double) b[i] * b[i];
  return ab / sqrt (aa * bb);
}

/* Tasks f_T(x) = -|x - c_T|^2 / 2; inner loop: k gradient-ascent steps of size alpha from theta,
   so phi_T - theta = (1 - (1 - alpha)^k) (c_T - theta): Reptile's fixed point is the mean of c_T. */
enum { QD = 5, QTASKS = 40, QB = 4, QK = 3 };

/* The optima c_T (normal around j in coordinate j) and their mean, drawn from r. */
static void s_quadratic_tasks (ra_nn_rng_t *r, float c[QTASKS][QD], float mean[QD])
{
  memset (mean, 0, QD * sizeof (float));
  for (int t = 0; t < QTASKS; t++)
    for (int j = 0; j < QD; j++) {
      c[t][j] = 3.0f * ra_nn_rng_normal (r) + (float) j;
      mean[j] += c[t][j] / QTASKS;
    }
}

/* phi: theta after QK inner steps of size 0.1 on a task drawn from r. */
static void s_adapt_on_a_task (ra_nn_rng_t *r, float c[QTASKS][QD], const float theta[QD], float phi[QD])
{
  int t = (int) (ra_nn_rng_u64 (r) % QTASKS);
  memcpy (phi, theta, QD * sizeof (float));
  for (int s = 0; s < QK; s++)
    for (int j = 0; j < QD; j++)
      phi[j] += 0.1f * (c[t][j] - phi[j]);
}

Test (meta_core, reptile_on_quadratic_tasks_converges_to_the_mean_of_the_optima)
{
  float c[QTASKS][QD], mean[QD], theta[QD], phis[QB][QD];
  ra_nn_rng_t r;
  ra_nn_rng_init (&r, 11, 0);
  s_quadratic_tasks (&r, c, mean);
  for (int j = 0; j < QD; j++)
    theta[j] = -10.0f;
  int iters = 4000;
  for (int it = 0; it < iters; it++) {
    for (int b = 0; b < QB; b++)
      s_adapt_on_a_task (&r, c, theta, phis[b]);
    float eps = 0.5f * (1.0f - (float) it / iters); /* annealed as recarena-meta does */
    ra_meta_reptile_step (theta, QD, &phis[0][0], QB, QD, eps);
  }
  for (int j = 0; j < QD; j++)
    cr_assert_float_eq (theta[j], mean[j], 0.15, "coordinate %d: %g, mean of optima %g", j, theta[j], mean[j]);
  /* and a single exact step: eps = 1 with phis = optima lands on their mean */
  float th[QD] = { 0 };
  ra_meta_reptile_step (th, QD, &c[0][0], 3, QD, 1.0f);
  for (int j = 0; j < QD; j++)
    cr_assert_float_eq (th[j], (c[0][j] + c[1][j] + c[2][j]) / 3, 1e-5);
}

/* f(x) = -sum_j a_j (x_j - m_j)^2: the true gradient -2 a (x - m). */
static float s_quad (const float *x, const float *a, const float *m, size_t n)
{
  double s = 0;
  for (size_t j = 0; j < n; j++)
    s += a[j] * (x[j] - m[j]) * (x[j] - m[j]);
  return (float) -s;
}

Test (meta_core, es_gradient_points_along_the_true_gradient_of_a_quadratic)
{
  enum { D = 50, P = 4000 };
  float a[D], m[D], theta[D], tg[D], g[D], gr[D];
  ra_nn_rng_t r;
  ra_nn_rng_init (&r, 3, 0);
  for (int j = 0; j < D; j++) {
    a[j] = 0.5f + ra_nn_rng_uniform (&r);
    m[j] = ra_nn_rng_normal (&r);
    theta[j] = ra_nn_rng_normal (&r);
    tg[j] = -2 * a[j] * (theta[j] - m[j]);
  }
  ra_meta_noise_t nt;
  ra_error_t err;
  cr_assert_eq (ra_meta_noise_new (5, 1 << 16, &nt, &err), RA_OK);
  float *fit = malloc (P * sizeof *fit), *u = malloc (P * sizeof *u), x[D];
  int *idx = malloc (P * sizeof *idx);
  for (int k = 0; k < P; k++) {
    ra_meta_perturb (&nt, 7, k, theta, D, 0.05f, x);
    fit[k] = s_quad (x, a, m, D);
  }
  ra_meta_es_grad (&nt, 7, fit, P, D, 0.05f, g); /* raw fitness: the plain estimator */
  ra_meta_centered_ranks (fit, P, idx, u);
  ra_meta_es_grad (&nt, 7, u, P, D, 0.05f, gr); /* centered ranks: what recarena-meta uses */
  double c1 = s_cos (g, tg, D), c2 = s_cos (gr, tg, D);
  cr_log_info ("cosine with the true gradient: raw %.3f, centered ranks %.3f", c1, c2);
  cr_assert_geq (c1, 0.9, "raw fitness: cosine %.3f", c1);
  cr_assert_geq (c2, 0.9, "centered ranks: cosine %.3f", c2);
  /* a small population is far less aligned: the test can fail */
  ra_meta_es_grad (&nt, 7, fit, 4, D, 0.05f, g);
  cr_assert_lt (s_cos (g, tg, D), 0.9);
  free (fit);
  free (u);
  free (idx);
  ra_meta_noise_fini (&nt);
}

Test (meta_core, noise_table_and_antithetic_pairs_are_reproducible_by_index)
{
  enum { D = 300 };
  ra_meta_noise_t a, b, c;
  ra_error_t err;
  cr_assert_eq (ra_meta_noise_new (42, 5000, &a, &err), RA_OK);
  cr_assert_eq (ra_meta_noise_new (42, 5000, &b, &err), RA_OK);
  cr_assert_eq (ra_meta_noise_new (43, 5000, &c, &err), RA_OK);
  cr_assert_eq (memcmp (a.v, b.v, 5000 * sizeof (float)), 0);
  cr_assert_neq (memcmp (a.v, c.v, 5000 * sizeof (float)), 0);
  float th[D], x[D], y[D], z[D];
  for (int j = 0; j < D; j++)
    th[j] = (float) j * 0.01f;
  for (int pair = 0; pair < 20; pair++) {
    size_t off = ra_meta_noise_offset (&a, 9, pair, D);
    cr_assert_leq (off, 5000 - D);
    cr_assert_eq (off, ra_meta_noise_offset (&b, 9, pair, D));
    ra_meta_perturb (&a, 9, 2 * pair, th, D, 0.1f, x);
    ra_meta_perturb (&a, 9, 2 * pair + 1, th, D, 0.1f, y);
    ra_meta_perturb (&b, 9, 2 * pair, th, D, 0.1f, z); /* another "process", same index */
    cr_assert_eq (memcmp (x, z, sizeof x), 0);
    for (int j = 0; j < D; j++) {
      cr_assert_float_eq (x[j] - th[j], -(y[j] - th[j]), 1e-6, "pair %d is not antithetic", pair);
      cr_assert_float_eq (x[j], th[j] + 0.1f * a.v[off + j], 1e-6);
    }
  }
  cr_assert_neq (ra_meta_noise_offset (&a, 9, 0, D), ra_meta_noise_offset (&a, 10, 0, D));
  cr_assert_neq (ra_meta_noise_new (1, 0, &c, &err), RA_OK);
  ra_meta_noise_fini (&a);
  ra_meta_noise_fini (&b);
}

Test (meta_core, centered_ranks_are_centered_and_break_ties_by_index)
{
  float f[5] = { 3, -1, 3, 10, 0 }, u[5];
  int idx[5];
  ra_meta_centered_ranks (f, 5, idx, u);
  float want[5] = { 0.0f, -0.5f, 0.25f, 0.5f, -0.25f };
  double s = 0;
  for (int i = 0; i < 5; i++) {
    cr_assert_float_eq (u[i], want[i], 1e-6, "member %d: %g", i, u[i]);
    s += u[i];
  }
  cr_assert_float_eq (s, 0, 1e-6);
  float one = 7;
  ra_meta_centered_ranks (&one, 1, idx, u);
  cr_assert_eq (u[0], 0.0f);
}

/* The same tasks with the mean difference fed to Adam (--outer-opt adam): the same fixed point. */
Test (meta_core, reptile_with_adam_on_quadratic_tasks_converges_to_the_mean_of_the_optima)
{
  float c[QTASKS][QD], mean[QD], theta[QD], delta[QD];
  ra_nn_rng_t r;
  ra_nn_rng_init (&r, 12, 0);
  s_quadratic_tasks (&r, c, mean);
  for (int j = 0; j < QD; j++)
    theta[j] = -10.0f;
  ra_meta_adam_t a;
  ra_error_t err;
  cr_assert_eq (ra_meta_adam_init (&a, QD, 0.01f, 0.0f, &err), RA_OK);
  for (int it = 0; it < 6000; it++) {
    memset (delta, 0, sizeof delta);
    for (int b = 0; b < QB; b++) {
      float phi[QD];
      s_adapt_on_a_task (&r, c, theta, phi);
      for (int j = 0; j < QD; j++)
        delta[j] += phi[j] - theta[j];
    }
    ra_meta_reptile_adam_step (&a, theta, delta, QB);
  }
  for (int j = 0; j < QD; j++)
    cr_assert_float_eq (theta[j], mean[j], 0.15, "coordinate %d: %g, mean of optima %g", j, theta[j], mean[j]);
  /* one step from fresh moments moves each coordinate by lr along the sign of its mean difference */
  ra_meta_adam_fini (&a);
  cr_assert_eq (ra_meta_adam_init (&a, 2, 0.01f, 0.0f, &err), RA_OK);
  float th[2] = { 0, 0 }, d[2] = { 4.0f, -0.2f };   /* sums over 2 tasks: means 2 and -0.1 */
  ra_meta_reptile_adam_step (&a, th, d, 2);
  cr_assert_float_eq (d[0], 2.0f, 1e-6);
  cr_assert_float_eq (th[0], 0.01f, 1e-5);
  cr_assert_float_eq (th[1], -0.01f, 1e-5);
  ra_meta_adam_fini (&a);
}

Test (meta_core, adam_ascends_a_concave_function_and_decays_weights)
{
  float x[2] = { 4, -3 }, g[2];
  ra_meta_adam_t a;
  ra_error_t err;
  cr_assert_eq (ra_meta_adam_init (&a, 2, 0.05f, 0.0f, &err), RA_OK);
  for (int it = 0; it < 2000; it++) {
    g[0] = -2 * (x[0] - 1), g[1] = -2 * (x[1] - 2);
    ra_meta_adam_ascend (&a, x, g);
  }
  cr_assert_float_eq (x[0], 1, 0.05);
  cr_assert_float_eq (x[1], 2, 0.05);
  ra_meta_adam_fini (&a);
  /* zero gradient: weight decay alone shrinks theta by lr * wd per step */
  float y[1] = { 2 }, z[1] = { 0 };
  cr_assert_eq (ra_meta_adam_init (&a, 1, 0.1f, 0.5f, &err), RA_OK);
  ra_meta_adam_ascend (&a, y, z);
  cr_assert_float_eq (y[0], 2 - 0.1f * 0.5f * 2, 1e-6);
  ra_meta_adam_fini (&a);
}

Test (meta_core, mean_runs_in_member_order)
{
  float v[3][2] = { { 1, 2 }, { 3, 4 }, { 5, 9 } }, o[2];
  ra_meta_mean (o, 2, &v[0][0], 3, 2);
  cr_assert_float_eq (o[0], 3, 1e-6);
  cr_assert_float_eq (o[1], 5, 1e-6);
}
