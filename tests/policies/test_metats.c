/*  tests/policies/test_metats.c - Meta-Thompson sampling (docs/agents.md 1.9): the
    hyper-posterior update (MT2, MT3) against a direct computation from the raw observations
    (generalised least squares over the stacked tasks, by naive dense inverses), its mean
    approaching the true prior mean as tasks grow, its draws' moments (MT4), the prior file's
    round trip and every way a file or a spec can be wrong, the arm's determinism, and the arm
    with a learnt prior beating plain LinTS in the first rounds of a synthetic linear bandit family. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agents/policies/baseline.h"
#include "agents/policies/baselines.h"
#include "agents/policies/metats.h"
#include "naive_inverse.h"
#include "common/rng.h"

#define MAXN 16

/* U = F = 2: e = 2, D = 5. */
enum { U2 = 2, D5 = 5 };

static void s_tmp (char *buf, size_t cap, const char *name)
{
  snprintf (buf, cap, "%s/test_metats_%d_%s.txt", RA_BINARY_DIR, (int) getpid (), name);
}

/* One task's raw data: n rows x of D and y = x . theta + v eps, and its statistics G, B. */
typedef struct {
  int n;
  double x[MAXN][D5], y[MAXN];
  double gram[D5 * D5], bsum[D5];
} s_task_t;

static void s_task (s_task_t *t, int n, const double *theta, double v, ra_rng_t *rng)
{
  memset (t, 0, sizeof *t);
  t->n = n;
  for (int r = 0; r < n; r++) {
    double dot = 0;
    for (int j = 0; j < D5; j++) {
      t->x[r][j] = ra_rng_normal (rng);
      dot += t->x[r][j] * theta[j];
    }
    t->y[r] = dot + v * ra_rng_normal (rng);
    for (int a = 0; a < D5; a++) {
      t->bsum[a] += t->y[r] * t->x[r][a];
      for (int b = 0; b < D5; b++)
        t->gram[a * D5 + b] += t->x[r][a] * t->x[r][b];
    }
  }
}

Test (metats_prior, update_equals_the_direct_posterior_on_two_tasks)
{
  const double v = 0.7, s0 = 0.4, sq = 1.5;
  ra_metats_prior_t q;
  ra_error_t err;
  cr_assert_eq (ra_metats_prior_init (&q, U2, U2, v, s0, sq, &err), RA_OK, "%s", err.message);
  cr_assert_eq (q.D, D5);
  ra_rng_t rng;
  ra_rng_seed_splitmix (&rng, 17);
  double mu[D5] = { 1, -2, 0.5, 3, -1 };
  s_task_t tasks[2];
  /* task 0 has fewer observations than features: G is singular, the update must not need G^-1 */
  for (int l = 0; l < 2; l++) {
    double theta[D5];
    for (int j = 0; j < D5; j++)
      theta[j] = mu[j] + s0 * ra_rng_normal (&rng);
    s_task (&tasks[l], l == 0 ? 3 : 11, theta, v, &rng);
    cr_assert_eq (ra_metats_prior_update (&q, tasks[l].gram, tasks[l].bsum, &err), RA_OK, "%s", err.message);
  }
  /* direct: y_l ~ N(X_l mu, S_l), S_l = s0^2 X_l X_l^T + v^2 I, so the posterior of mu has
     precision I / sq^2 + sum X_l^T S_l^-1 X_l and precision-mean sum X_l^T S_l^-1 y_l */
  double prec[D5 * D5] = { 0 }, eta[D5] = { 0 };
  for (int a = 0; a < D5; a++)
    prec[a * D5 + a] = 1 / (sq * sq);
  for (int l = 0; l < 2; l++) {
    const s_task_t *t = &tasks[l];
    int n = t->n;
    double S[MAXN * MAXN], Si[MAXN * MAXN];
    for (int r = 0; r < n; r++)
      for (int c = 0; c < n; c++) {
        double dot = 0;
        for (int j = 0; j < D5; j++)
          dot += t->x[r][j] * t->x[c][j];
        S[r * n + c] = s0 * s0 * dot + (r == c) * v * v;
      }
    naive_inverse (S, n, Si);
    for (int a = 0; a < D5; a++) {
      for (int r = 0; r < n; r++)
        for (int c = 0; c < n; c++) {
          eta[a] += t->x[r][a] * Si[r * n + c] * t->y[c];
          for (int b = 0; b < D5; b++)
            prec[a * D5 + b] += t->x[r][a] * Si[r * n + c] * t->x[c][b];
        }
    }
  }
  double cov[D5 * D5], mean[D5], got_mean[D5], got_cov[D5 * D5];
  naive_inverse (prec, D5, cov);
  for (int a = 0; a < D5; a++) {
    mean[a] = 0;
    for (int b = 0; b < D5; b++)
      mean[a] += cov[a * D5 + b] * eta[b];
  }
  cr_assert_eq (ra_metats_prior_mean (&q, got_mean, got_cov, &err), RA_OK, "%s", err.message);
  for (int a = 0; a < D5; a++) {
    cr_assert_float_eq (q.eta[a], eta[a], 1e-10 * (1 + fabs (eta[a])), "eta %d: %.17g vs %.17g", a, q.eta[a], eta[a]);
    cr_assert_float_eq (got_mean[a], mean[a], 1e-10 * (1 + fabs (mean[a])), "mean %d", a);
    for (int b = 0; b < D5; b++) {
      cr_assert_float_eq (q.prec[a * D5 + b], prec[a * D5 + b], 1e-10 * (1 + fabs (prec[a * D5 + b])),
                          "precision (%d, %d): %.17g vs %.17g", a, b, q.prec[a * D5 + b], prec[a * D5 + b]);
      cr_assert_float_eq (got_cov[a * D5 + b], cov[a * D5 + b], 1e-10, "covariance (%d, %d)", a, b);
    }
  }
  cr_assert_eq (q.n_tasks, 2);
  ra_metats_prior_fini (&q);
}

Test (metats_prior, learnt_mean_approaches_the_true_mean_as_tasks_grow)
{
  const double v = 0.5, s0 = 0.5;
  double mu[D5] = { 2, -1, 0.5, 1.5, -2.5 };
  ra_metats_prior_t q;
  ra_error_t err;
  cr_assert_eq (ra_metats_prior_init (&q, U2, U2, v, s0, 10.0, &err), RA_OK);
  ra_rng_t rng;
  ra_rng_seed_splitmix (&rng, 5);
  const int marks[4] = { 4, 16, 64, 256 };
  double dist[4], sd[4];
  for (int l = 1, m = 0; m < 4; l++) {
    double theta[D5];
    for (int j = 0; j < D5; j++)
      theta[j] = mu[j] + s0 * ra_rng_normal (&rng);
    s_task_t t;
    s_task (&t, MAXN, theta, v, &rng);
    cr_assert_eq (ra_metats_prior_update (&q, t.gram, t.bsum, &err), RA_OK);
    if (l != marks[m])
      continue;
    double mean[D5], cov[D5 * D5], d2 = 0, tr = 0;
    cr_assert_eq (ra_metats_prior_mean (&q, mean, cov, &err), RA_OK);
    for (int j = 0; j < D5; j++) {
      d2 += (mean[j] - mu[j]) * (mean[j] - mu[j]);
      tr += cov[j * D5 + j];
    }
    dist[m] = sqrt (d2);
    sd[m] = sqrt (tr);   /* the posterior's own expected distance */
    cr_log_info ("%d tasks: |mu_hat - mu| = %.4f, sqrt(tr Sigma_hat) = %.4f", l, dist[m], sd[m]);
    m++;
  }
  /* the posterior's spread shrinks like 1 / sqrt(tasks) (each task is worth at most
     1 / sigma0^2 of precision), and the error follows it */
  cr_assert_lt (sd[3], sd[0] / 6, "sd %g -> %g", sd[0], sd[3]);
  cr_assert_gt (sd[3], s0 * sqrt (D5 / 256.0) * 0.99, "no task is worth more than 1 / sigma0^2");
  for (int m = 0; m < 4; m++)
    cr_assert_lt (dist[m], 3 * sd[m], "%d tasks: error %g against the posterior's sd %g", marks[m],
                  dist[m], sd[m]);
  cr_assert_lt (dist[3], 0.15, "256 tasks: |mu_hat - mu| = %g", dist[3]);
  cr_assert_lt (dist[3], dist[0] / 3, "error %g -> %g", dist[0], dist[3]);
  ra_metats_prior_fini (&q);
}

Test (metats_prior, draws_have_the_posterior_mean_and_covariance)
{
  ra_metats_prior_t q;
  ra_error_t err;
  cr_assert_eq (ra_metats_prior_init (&q, U2, U2, 0.5, 0.5, 1.0, &err), RA_OK);
  ra_rng_t rng;
  ra_rng_seed_splitmix (&rng, 9);
  double theta[D5] = { 1, 2, 3, 4, 5 };
  s_task_t t;
  s_task (&t, 4, theta, 0.5, &rng);   /* 4 < D: an anisotropic posterior */
  cr_assert_eq (ra_metats_prior_update (&q, t.gram, t.bsum, &err), RA_OK);
  double mean[D5], cov[D5 * D5], m1[D5] = { 0 }, m2[D5 * D5] = { 0 }, x[D5];
  cr_assert_eq (ra_metats_prior_mean (&q, mean, cov, &err), RA_OK);
  const int n = 40000;
  for (int s = 0; s < n; s++) {
    cr_assert_eq (ra_metats_prior_sample (&q, &rng, x, &err), RA_OK);
    for (int a = 0; a < D5; a++) {
      m1[a] += x[a] / n;
      for (int b = 0; b < D5; b++)
        m2[a * D5 + b] += (x[a] - mean[a]) * (x[b] - mean[b]) / n;
    }
  }
  for (int a = 0; a < D5; a++) {
    double se = sqrt (cov[a * D5 + a] / n);
    cr_assert_lt (fabs (m1[a] - mean[a]), 4.5 * se, "mean %d: %g vs %g", a, m1[a], mean[a]);
    for (int b = 0; b < D5; b++) {
      double tol = 0.05 * sqrt (cov[a * D5 + a] * cov[b * D5 + b]);
      cr_assert_lt (fabs (m2[a * D5 + b] - cov[a * D5 + b]), tol, "covariance (%d, %d): %g vs %g",
                    a, b, m2[a * D5 + b], cov[a * D5 + b]);
    }
  }
  ra_metats_prior_fini (&q);
}

/* ---- the file ------------------------------------------------------------------------------ */

static void s_learnt (ra_metats_prior_t *q, int U, int F)
{
  ra_error_t err;
  cr_assert_eq (ra_metats_prior_init (q, U, F, 0.5, 0.5, 1.0, &err), RA_OK);
  ra_rng_t rng;
  ra_rng_seed_splitmix (&rng, 2);
  int D = q->D;
  double *g = calloc ((size_t) D * D, sizeof *g), *b = calloc ((size_t) D, sizeof *b);
  for (int r = 0; r < 3 * D; r++) {
    double x[64];
    for (int j = 0; j < D; j++)
      x[j] = ra_rng_normal (&rng);
    for (int i = 0; i < D; i++) {
      b[i] += x[i] * 0.3;
      for (int j = 0; j < D; j++)
        g[i * D + j] += x[i] * x[j];
    }
  }
  cr_assert_eq (ra_metats_prior_update (q, g, b, &err), RA_OK);
  free (g);
  free (b);
  snprintf (q->env_id, sizeof q->env_id, "ECommerce-v1");
  snprintf (q->credit, sizeof q->credit, "metric");
  snprintf (q->tasks, sizeof q->tasks, "train:0-63");
}

Test (metats_file, round_trip_gives_the_same_doubles)
{
  ra_metats_prior_t q, r;
  ra_error_t err;
  s_learnt (&q, 20, 20);
  char path[512];
  s_tmp (path, sizeof path, "round");
  cr_assert_eq (ra_metats_prior_save (&q, path, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_metats_prior_load (path, &r, &err), RA_OK, "%s", err.message);
  cr_assert_eq (r.D, 37);
  cr_assert_eq (r.user_dim, 20);
  cr_assert_eq (r.n_tasks, 1);
  cr_assert_str_eq (r.env_id, "ECommerce-v1");
  cr_assert_str_eq (r.credit, "metric");
  cr_assert_str_eq (r.tasks, "train:0-63");
  cr_assert (r.v == q.v && r.sigma0 == q.sigma0 && r.sigma_q == q.sigma_q);
  cr_assert_eq (memcmp (r.prec, q.prec, sizeof (double) * 37 * 37), 0);
  cr_assert_eq (memcmp (r.eta, q.eta, sizeof (double) * 37), 0);
  ra_metats_prior_fini (&q);
  ra_metats_prior_fini (&r);
  unlink (path);
}

/* Writes a good file, applies sed-like edit (replace the first `from` by `to`), loads it and
   expects RA_ERR_BAD_CONFIG with a message holding the path and `want`. */
static void s_expect_bad (const char *name, const char *from, const char *to, const char *want)
{
  ra_metats_prior_t q, r;
  ra_error_t err;
  s_learnt (&q, 2, 2);
  char path[512];
  s_tmp (path, sizeof path, name);
  cr_assert_eq (ra_metats_prior_save (&q, path, &err), RA_OK);
  ra_metats_prior_fini (&q);
  FILE *f = fopen (path, "rb");
  static char text[1 << 16], out[1 << 16];
  size_t n = fread (text, 1, sizeof text - 1, f);
  fclose (f);
  text[n] = 0;
  char *hit = strstr (text, from);
  cr_assert (hit, "%s: '%s' not in the file", name, from);
  snprintf (out, sizeof out, "%.*s%s%s", (int) (hit - text), text, to, hit + strlen (from));
  f = fopen (path, "wb");
  fputs (out, f);
  fclose (f);
  cr_assert_eq (ra_metats_prior_load (path, &r, &err), RA_ERR_BAD_CONFIG, "%s: loaded", name);
  cr_assert (strstr (err.message, path) || strstr (err.message, "test_metats_"), "%s: no path in '%s'",
             name, err.message);
  cr_assert (strstr (err.message, want), "%s: '%s' does not say '%s'", name, err.message, want);
  cr_assert_null (r.prec);
  unlink (path);
}

Test (metats_file, every_bad_file_is_refused_naming_the_file_and_the_fault)
{
  s_expect_bad ("magic", "recarena-metats-prior 1", "something-else 1", "not a metats prior");
  s_expect_bad ("version", "recarena-metats-prior 1", "recarena-metats-prior 7", "unsupported version");
  s_expect_bad ("dim", "dim 5", "dim 6", "does not match");
  s_expect_bad ("user_dim", "user_dim 2", "user_dim x", "'user_dim' must be an integer");
  s_expect_bad ("field", "sigma0 ", "sigma1 ", "expected the field 'sigma0'");
  s_expect_bad ("negative", "sigma_q 1", "sigma_q -1", "must be positive");
  s_expect_bad ("credit", "credit metric", "credit money", "'credit' must be");
  s_expect_bad ("nan", "eta ", "eta nan ", "not a finite number");
  s_expect_bad ("truncated", "precision", "end", "expected the field 'precision'");
  s_expect_bad ("short", "end\n", "", "expected 'end'");
  s_expect_bad ("trailing", "end\n", "end\nmore\n", "nothing after it");
  s_expect_bad ("notpd", "precision\n", "precision\n-", "not positive definite");   /* p00 < 0 */
  ra_metats_prior_t q, r;
  ra_error_t err;
  char path[512];
  s_tmp (path, sizeof path, "asym");
  s_learnt (&q, 2, 2);
  q.prec[1] += 0.25;
  cr_assert_eq (ra_metats_prior_save (&q, path, &err), RA_OK);
  ra_metats_prior_fini (&q);
  cr_assert_eq (ra_metats_prior_load (path, &r, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, path) && strstr (err.message, "not symmetric"), "%s", err.message);
  unlink (path);
  cr_assert_eq (ra_metats_prior_load ("/nonexistent/prior.txt", &r, &err), RA_ERR_IO);
  cr_assert (strstr (err.message, "/nonexistent/prior.txt") && strstr (err.message, "--learn-prior"),
             "%s", err.message);
}

/* Not text at all: empty, a NUL inside, a directory (it opens like a file). */
Test (metats_file, empty_binary_and_directory_files_are_refused)
{
  ra_metats_prior_t r;
  ra_error_t err;
  char path[512];
  s_tmp (path, sizeof path, "empty");
  FILE *f = fopen (path, "wb");
  fclose (f);
  cr_assert_eq (ra_metats_prior_load (path, &r, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, path) && strstr (err.message, "not a metats prior"), "%s", err.message);
  cr_assert_null (r.prec);
  f = fopen (path, "wb");
  fwrite ("recarena-metats-prior\0 1\n", 1, 25, f);
  fclose (f);
  cr_assert_eq (ra_metats_prior_load (path, &r, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "not a text file"), "%s", err.message);
  unlink (path);
  cr_assert_eq (ra_metats_prior_load ("/tmp", &r, &err), RA_ERR_IO);
  cr_assert (strstr (err.message, "'/tmp'"), "%s", err.message);
  cr_assert_null (r.prec);
}

/* ---- the arm ------------------------------------------------------------------------------- */

static ra_err_t s_create (const char *spec_prior, const char *extra_key, double extra, int U, int F,
                          const char *env, const char *credit, uint64_t seed, ra_policy_t **out,
                          ra_error_t *err)
{
  ra_kv_t cfg[2];
  int n = 0;
  if (spec_prior)
    cfg[n++] = (ra_kv_t) { .key = "prior", .type = RA_KV_STR, .str = spec_prior };
  if (extra_key)
    cfg[n++] = (ra_kv_t) { .key = extra_key, .type = RA_KV_NUM, .num = extra };
  ra_policy_args_t a = { .config = cfg, .n_config = n, .seed = seed, .num_envs = 4,
                         .num_candidates = 20, .slate_size = 2, .user_dim = U, .cand_dim = F,
                         .env_id = env, .credit = credit };
  *out = NULL;
  return ra_metats_policy_class.create (&a, out, err);
}

Test (metats_arm, bad_specs_and_mismatched_files_are_refused_clearly)
{
  ra_metats_prior_t q;
  ra_error_t err;
  ra_policy_t *p;
  s_learnt (&q, 20, 20);
  char path[512];
  s_tmp (path, sizeof path, "arm");
  cr_assert_eq (ra_metats_prior_save (&q, path, &err), RA_OK);
  ra_metats_prior_fini (&q);
  cr_assert_eq (s_create (NULL, NULL, 0, 20, 20, NULL, NULL, 1, &p, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "needs prior=FILE"), "%s", err.message);
  cr_assert_eq (s_create (path, "v", 0.3, 20, 20, NULL, NULL, 1, &p, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "read from the prior file") && strstr (err.message, path), "%s", err.message);
  cr_assert_eq (s_create (path, "alpha", 1, 20, 20, NULL, NULL, 1, &p, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "unknown arm setting 'alpha'"), "%s", err.message);
  cr_assert_eq (s_create ("none", "sigma0", -1, 20, 20, NULL, NULL, 1, &p, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "sigma0"), "%s", err.message);
  /* wrong feature dims, wrong sim, wrong credit: each names the file */
  cr_assert_eq (s_create (path, NULL, 0, 12, 20, NULL, NULL, 1, &p, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, path) && strstr (err.message, "20 user and 20 candidate features"),
             "%s", err.message);
  cr_assert_eq (s_create (path, NULL, 0, 20, 20, "Ads-v1", "metric", 1, &p, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, path) && strstr (err.message, "learnt on ECommerce-v1")
             && strstr (err.message, "Ads-v1"), "%s", err.message);
  cr_assert_eq (s_create (path, NULL, 0, 20, 20, "ECommerce-v1", "clicked", 1, &p, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, path) && strstr (err.message, "credit=metric"), "%s", err.message);
  cr_assert_eq (s_create ("/nonexistent/p.txt", NULL, 0, 20, 20, NULL, NULL, 1, &p, &err), RA_ERR_IO);
  cr_assert (strstr (err.message, "/nonexistent/p.txt"), "%s", err.message);
  cr_assert_null (p);
  /* the right sim and credit load */
  cr_assert_eq (s_create (path, NULL, 0, 20, 20, "ECommerce-v1", "metric", 1, &p, &err), RA_OK, "%s", err.message);
  ra_metats_policy_class.destroy (&p);
  unlink (path);
}

Test (metats_arm, draws_its_prior_mean_from_the_file_with_its_own_seed)
{
  ra_metats_prior_t q;
  ra_error_t err;
  s_learnt (&q, 20, 20);
  char path[512];
  s_tmp (path, sizeof path, "draw");
  cr_assert_eq (ra_metats_prior_save (&q, path, &err), RA_OK);
  ra_policy_t *a, *b, *c;
  cr_assert_eq (s_create (path, NULL, 0, 20, 20, NULL, NULL, 42, &a, &err), RA_OK, "%s", err.message);
  cr_assert_eq (s_create (path, NULL, 0, 20, 20, NULL, NULL, 42, &b, &err), RA_OK);
  cr_assert_eq (s_create (path, NULL, 0, 20, 20, NULL, NULL, 43, &c, &err), RA_OK);
  double want[37];
  ra_rng_t rng;
  ra_rng_seed_splitmix (&rng, 42);   /* the arm's RNG: its first D normals draw mu~ */
  cr_assert_eq (ra_metats_prior_sample (&q, &rng, want, &err), RA_OK);
  cr_assert_eq (memcmp (ra_metats_arm_prior_mean (a), want, sizeof want), 0);
  cr_assert_eq (memcmp (ra_metats_arm_prior_mean (b), want, sizeof want), 0);
  cr_assert_neq (memcmp (ra_metats_arm_prior_mean (c), want, sizeof want), 0);
  cr_assert_not_null (ra_metats_arm_prior (a));
  cr_assert_null (ra_metats_arm_prior (NULL));
  ra_metats_policy_class.destroy (&a);
  ra_metats_policy_class.destroy (&b);
  ra_metats_policy_class.destroy (&c);
  ra_metats_prior_fini (&q);
  unlink (path);
}

/* ---- a synthetic linear bandit family -------------------------------------------------------
   Task weights theta ~ N(mu*, 0.3^2 I) on phi(u, c) (U = F = 6: D = 9); each round 4 envs, each
   with a fresh user and 20 candidates (standard normal features), slate of 2; each slot's credit
   is theta . phi + N(0, 0.5^2). The world of (task, round) comes from its own seed, so every arm
   meets the same users and candidates (and noise) on it. */
enum { SU = 6, SN = 4, SK = 20, Sk = 2 };

typedef struct {
  float user[SN * SU], cand[SN * SK * SU], credit[SN * Sk];
  double theta[16];
  ra_obs_batch_t obs;
} s_world_t;

static const double s_mu_star[9] = { 0.8, -0.6, 0.4, 0.0, -0.3, 0.5, 1.2, 0.9, 0.2 };

static void s_world_task (s_world_t *w, uint64_t task)
{
  ra_rng_t r;
  ra_rng_seed_splitmix (&r, 1000003 * task + 7);
  for (int j = 0; j < 9; j++)
    w->theta[j] = s_mu_star[j] + 0.3 * ra_rng_normal (&r);
}

static void s_world_round (s_world_t *w, uint64_t task, int round)
{
  ra_rng_t r;
  ra_rng_seed_splitmix (&r, (task << 20) ^ (uint64_t) round ^ 0xABCDEFull);
  for (int i = 0; i < SN * SU; i++)
    w->user[i] = (float) ra_rng_normal (&r);
  for (int i = 0; i < SN * SK * SU; i++)
    w->cand[i] = (float) ra_rng_normal (&r);
  w->obs = (ra_obs_batch_t) { .num_envs = SN, .num_candidates = SK, .slate_size = Sk, .user_dim = SU,
                              .cand_dim = SU, .user = w->user, .candidates = w->cand, .response = w->user };
}

static double s_mean_reward (const s_world_t *w, int i, int c)
{
  float phi[16];
  ra__phi (w->user + i * SU, SU, w->cand + (size_t) (i * SK + c) * SU, SU, phi);
  double s = 0;
  for (int j = 0; j < 9; j++)
    s += w->theta[j] * phi[j];
  return s;
}

/* Plays pol on task for `rounds` rounds; returns the regret per slot (best k mean rewards minus
   the shown ones', over envs and slots) summed over the rounds < early. */
static double s_play (ra_policy_t *pol, uint64_t task, int rounds, int early)
{
  s_world_t w;
  s_world_task (&w, task);
  double regret = 0;
  for (int t = 0; t < rounds; t++) {
    s_world_round (&w, task, t);
    int32_t slates[SN * Sk];
    pol->cls->act (pol, &w.obs, slates);
    ra_rng_t noise;
    ra_rng_seed_splitmix (&noise, (task << 24) ^ (uint64_t) t ^ 0x5151ull);
    for (int i = 0; i < SN; i++) {
      double m[SK], best[Sk] = { -1e300, -1e300 };
      for (int c = 0; c < SK; c++) {   /* the best two mean rewards */
        m[c] = s_mean_reward (&w, i, c);
        if (m[c] > best[0]) {
          best[1] = best[0];
          best[0] = m[c];
        } else if (m[c] > best[1]) {
          best[1] = m[c];
        }
      }
      for (int q = 0; q < Sk; q++) {
        int c = slates[i * Sk + q];
        w.credit[i * Sk + q] = (float) (m[c] + 0.5 * ra_rng_normal (&noise));
        if (t < early)
          regret += (best[q] - m[c]) / (SN * Sk);
      }
    }
    float reward[SN] = { 0 };
    uint8_t clicked[SN * Sk] = { 0 }, done[SN] = { 0 };
    ra_feedback_t fb = { .slates = slates, .reward = reward, .slot_reward = w.credit,
                         .clicked = clicked, .done = done };
    pol->cls->learn (pol, &w.obs, &fb);
  }
  return regret;
}

static ra_policy_t *s_arm (const ra_policy_class_t *cls, const ra_kv_t *cfg, int n, uint64_t seed)
{
  ra_policy_args_t a = { .config = cfg, .n_config = n, .seed = seed, .num_envs = SN,
                         .num_candidates = SK, .slate_size = Sk, .user_dim = SU, .cand_dim = SU };
  ra_policy_t *p = NULL;
  ra_error_t err;
  cr_assert_eq (cls->create (&a, &p, &err), RA_OK, "%s", err.message);
  return p;
}

Test (metats_arm, learnt_prior_beats_lints_in_the_first_rounds_of_a_task_family)
{
  ra_error_t err;
  /* learn: Meta-TS on 32 train tasks, 30 rounds each, as recarena-ab --learn-prior does it */
  ra_kv_t none = { .key = "prior", .type = RA_KV_STR, .str = "none" };
  ra_metats_prior_t q;
  memset (&q, 0, sizeof q);
  for (uint64_t t = 0; t < 32; t++) {
    ra_policy_t *p = s_arm (&ra_metats_policy_class, &none, 1, 100 + t);
    if (t == 0)
      cr_assert_eq (ra_metats_arm_hyper_prior (p, &q, &err), RA_OK);
    cr_assert_eq (ra_metats_arm_draw (p, &q, &err), RA_OK, "%s", err.message);
    s_play (p, t, 30, 0);
    cr_assert_eq (ra_metats_arm_fold (p, &q, &err), RA_OK, "%s", err.message);
    p->cls->destroy (&p);
  }
  double mean[9];
  cr_assert_eq (ra_metats_prior_mean (&q, mean, NULL, &err), RA_OK);
  double d2 = 0;
  for (int j = 0; j < 9; j++)
    d2 += (mean[j] - s_mu_star[j]) * (mean[j] - s_mu_star[j]);
  cr_log_info ("|mu_hat - mu*| after 32 tasks: %.4f", sqrt (d2));
  cr_assert_lt (sqrt (d2), 0.3, "learnt mean %g from mu*", sqrt (d2));
  char path[512];
  s_tmp (path, sizeof path, "family");
  cr_assert_eq (ra_metats_prior_save (&q, path, &err), RA_OK);
  /* test: 32 unseen tasks of the same family, metats from the file against plain LinTS with the
     same noise scale and the prior variance LinTS implies (v 0.5, lambda 1: sd 0.5) */
  ra_kv_t file = { .key = "prior", .type = RA_KV_STR, .str = path };
  double r_meta = 0, r_lints = 0, r_meta_all = 0, r_lints_all = 0;
  const int early = 3, rounds = 20;
  for (uint64_t t = 1000; t < 1032; t++) {
    ra_policy_t *m = s_arm (&ra_metats_policy_class, &file, 1, t), *l = s_arm (&ra_lints_policy_class, NULL, 0, t);
    r_meta += s_play (m, t, early, early) / 32;
    r_lints += s_play (l, t, early, early) / 32;
    m->cls->forget (m);   /* back to the prior: the same task from the start, for the whole run */
    l->cls->forget (l);
    r_meta_all += s_play (m, t, rounds, rounds) / 32;
    r_lints_all += s_play (l, t, rounds, rounds) / 32;
    m->cls->destroy (&m);
    l->cls->destroy (&l);
  }
  cr_log_info ("cumulative regret per slot, first %d rounds: metats %.4f, lints %.4f; all %d: %.4f, %.4f", early,
               r_meta, r_lints, rounds, r_meta_all, r_lints_all);
  cr_assert_lt (r_meta, 0.5 * r_lints, "first %d rounds: metats regret %g, lints %g", early, r_meta, r_lints);
  cr_assert_lt (r_meta_all, r_lints_all, "over %d rounds: metats regret %g, lints %g", rounds,
                r_meta_all, r_lints_all);
  ra_metats_prior_fini (&q);
  unlink (path);
}

Test (metats_arm, prior_none_is_lints_with_the_same_seed)
{
  /* MT5 with mu = 0 and lambda = v^2 / sigma0^2 = 1 is LinTS's defaults: the same slates */
  ra_kv_t none = { .key = "prior", .type = RA_KV_STR, .str = "none" };
  for (uint64_t t = 0; t < 4; t++) {
    ra_policy_t *m = s_arm (&ra_metats_policy_class, &none, 1, 77 + t), *l = s_arm (&ra_lints_policy_class, NULL, 0, 77 + t);
    double rm = s_play (m, t, 12, 12), rl = s_play (l, t, 12, 12);
    cr_assert (rm == rl, "task %d: metats:prior=none regret %.17g, lints %.17g", (int) t, rm, rl);
    m->cls->destroy (&m);
    l->cls->destroy (&l);
  }
}
