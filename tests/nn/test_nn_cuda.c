/*  tests/nn/test_nn_cuda.c - the cuda backend vs the reference and vs the cpu backend.
    Labelled "cuda": CPU-only CI builds it but does not run it (ctest -LE cuda). On a machine
    without a GPU every test fails at open, by design.                                          */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents/nn/nn.h"
#include "tests/nn/check_backend.h"

static ra_nn_backend_t *s_open (const char *name)
{
  ra_nn_backend_t *be = NULL;
  ra_error_t err = { 0 };
  ra_err_t rc = ra_nn_backend_open (name, NULL, &be, &err);
  cr_assert_eq (rc, RA_OK, "cannot open %s: %s", name, err.message);
  return be;
}

static void s_healthy (ra_nn_backend_t *be)
{
  ra_error_t err = { 0 };
  cr_assert_eq (ra_nn_backend_status (be, &err), RA_OK, "%s", err.message);
}

Test (nn_cuda, matches_reference_for_every_op)
{
  ra_nn_backend_t *be = s_open ("cuda");
  nn_check_t res[64];
  int n = nn_check_ops (be, res, 64);
  s_healthy (be);
  cr_expect_geq (n, 20);
  for (int i = 0; i < n; i++)
    cr_log_info ("cuda vs reference: %-26s %.3g", res[i].op, res[i].err);
  for (int i = 0; i < n; i++)
    cr_expect (res[i].err < 1e-5, "%s: cuda vs reference off by %g (relative to max)", res[i].op, res[i].err);
  ra_nn_backend_destroy (&be);
}

Test (nn_cuda, batched_population_equals_separate_networks)
{
  ra_nn_backend_t *be = s_open ("cuda");
  double d = nn_check_batched_vs_separate (be, 8);
  s_healthy (be);
  cr_expect (d < 1e-5, "P=8 batched vs separate differ by %g", d);
  ra_nn_backend_destroy (&be);
}

/* Scorer forward + backward + Adam on both backends from the same parameters and inputs. */
typedef struct {
  ra_nn_backend_t *be;
  ra_nn_scorer_t *s;
  float *user, *cand, *dscores;
  int U;
} s_run_t;

enum { RU = 32, RC = 20, DU = 24, DCAND = 40 };

static void s_run_init (s_run_t *r, const char *backend, int P, const float *hu, const float *hc, const float *hd)
{
  r->be = s_open (backend);
  r->U = RU;
  ra_nn_scorer_cfg_t cfg = { .du = DU, .dc = DCAND, .nhidden = 2, .hidden = { 64, 64 }, .max_users = RU, .cands = RC };
  cr_assert_eq (ra_nn_scorer_new (r->be, &cfg, P, 17, &r->s, NULL), RA_OK);
  size_t nu = (size_t) P * RU * DU, nc = (size_t) P * RU * RC * DCAND, ns = (size_t) P * RU * RC;
  r->user = ra_nn_alloc (r->be, nu);
  r->cand = ra_nn_alloc (r->be, nc);
  r->dscores = ra_nn_alloc (r->be, ns);
  ra_nn_upload (r->be, r->user, hu, nu);
  ra_nn_upload (r->be, r->cand, hc, nc);
  ra_nn_upload (r->be, r->dscores, hd, ns);
}

static void s_run_step (void *arg)
{
  s_run_t *r = arg;
  ra_nn_params_zero_grad (r->s->params);
  ra_nn_scorer_forward (r->s, r->user, r->cand, r->U);
  ra_nn_scorer_backward (r->s, r->dscores);
  ra_nn_clip_grad_norm (r->s->params, 1.0f, NULL);
  ra_nn_adam_t cfg = { .lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f };
  ra_nn_adam_step (r->s->params, &cfg, NULL);
}

static void s_run_fini (s_run_t *r)
{
  ra_nn_free (r->be, r->user);
  ra_nn_free (r->be, r->cand);
  ra_nn_free (r->be, r->dscores);
  ra_nn_scorer_destroy (&r->s);
  ra_nn_backend_destroy (&r->be);
}

static float *s_randv (size_t n, uint64_t seed)
{
  ra_nn_rng_t g;
  ra_nn_rng_init (&g, seed, 0);
  float *v = malloc (sizeof (float) * n);
  for (size_t i = 0; i < n; i++)
    v[i] = ra_nn_rng_uniform (&g) * 2 - 1;
  return v;
}

static double s_rel_diff (const float *a, const float *b, size_t n)
{
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    num = fmax (num, fabs ((double) a[i] - b[i]));
    den = fmax (den, fabs ((double) b[i]));
  }
  return num / (den > 0 ? den : 1);
}

Test (nn_cuda, scorer_training_step_matches_cpu_within_1e5)
{
  float *hu = s_randv (RU * DU, 1), *hc = s_randv (RU * RC * DCAND, 2), *hd = s_randv (RU * RC, 3);
  s_run_t g, c;
  s_run_init (&g, "cuda", 1, hu, hc, hd);
  s_run_init (&c, "cpu", 1, hu, hc, hd);
  size_t n = c.s->params->n;
  float *pg = malloc (sizeof (float) * n), *gg = malloc (sizeof (float) * n);
  /* identical start: copy cpu params to the gpu */
  ra_nn_upload (g.be, g.s->params->data, c.s->params->data, n);
  s_run_step (&g);
  s_run_step (&c);
  ra_nn_download (g.be, gg, g.s->params->grad, n);
  double dgrad = s_rel_diff (gg, c.s->params->grad, n);
  ra_nn_download (g.be, pg, g.s->params->data, n);
  double dparam = s_rel_diff (pg, c.s->params->data, n);
  s_healthy (g.be);
  cr_log_info ("cuda vs cpu: grads %.3g, params after Adam %.3g", dgrad, dparam);
  cr_expect (dgrad < 1e-5, "grads differ by %g relative", dgrad);
  cr_expect (dparam < 1e-5, "params differ by %g relative", dparam);
  free (pg), free (gg), free (hu), free (hc), free (hd);
  s_run_fini (&g);
  s_run_fini (&c);
}

Test (nn_cuda, graph_replay_equals_eager_and_reductions_are_reproducible)
{
  float *hu = s_randv (4 * RU * DU, 4), *hc = s_randv (4 * RU * RC * DCAND, 5), *hd = s_randv (4 * RU * RC, 6);
  s_run_t a, b;
  s_run_init (&a, "cuda", 4, hu, hc, hd);
  s_run_init (&b, "cuda", 4, hu, hc, hd);
  s_run_step (&a); /* eager warm-up on both (sizes scratch) */
  s_run_step (&b);
  ra_nn_graph_t *gr = NULL;
  ra_error_t err = { 0 };
  cr_assert_eq (ra_nn_graph_capture (b.be, s_run_step, &b, &gr, &err), RA_OK, "%s", err.message);
  for (int i = 0; i < 5; i++) {
    s_run_step (&a);
    ra_nn_graph_launch (gr);
  }
  size_t n = a.s->params->n * 4;
  float *pa = malloc (sizeof (float) * n), *pb = malloc (sizeof (float) * n);
  ra_nn_download (a.be, pa, a.s->params->data, n);
  ra_nn_download (b.be, pb, b.s->params->data, n);
  s_healthy (a.be);
  s_healthy (b.be);
  cr_expect (memcmp (pa, pb, sizeof (float) * n) == 0, "graph replay differs from eager (max %g)",
             s_rel_diff (pa, pb, n));
  cr_expect_eq (ra_nn_params_steps (b.s->params), 6);
  float ss1[4], ss2[4];
  float *dss = ra_nn_alloc (a.be, 8);
  ra_nn_sumsq (a.be, a.s->params->data, a.s->params->n, 4, a.s->params->n, dss);
  ra_nn_sumsq (a.be, a.s->params->data, a.s->params->n, 4, a.s->params->n, dss + 4);
  ra_nn_download (a.be, ss1, dss, 4);
  ra_nn_download (a.be, ss2, dss + 4, 4);
  cr_expect (memcmp (ss1, ss2, sizeof ss1) == 0);
  ra_nn_free (a.be, dss);
  ra_nn_graph_destroy (&gr);
  free (pa), free (pb), free (hu), free (hc), free (hd);
  s_run_fini (&a);
  s_run_fini (&b);
}

Test (nn_cuda, checkpoint_written_on_gpu_loads_on_cpu)
{
  float *hu = s_randv (RU * DU, 7), *hc = s_randv (RU * RC * DCAND, 8), *hd = s_randv (RU * RC, 9);
  s_run_t g, c;
  s_run_init (&g, "cuda", 1, hu, hc, hd);
  s_run_init (&c, "cpu", 1, hu, hc, hd);
  s_run_step (&g);
  char path[128];
  snprintf (path, sizeof path, "/tmp/ra_nn_cuda_%d.safetensors", (int) getpid ());
  ra_error_t err = { 0 };
  cr_assert_eq (ra_nn_checkpoint_save (g.s->params, path, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_nn_checkpoint_load (c.s->params, path, &err), RA_OK, "%s", err.message);
  size_t n = c.s->params->n;
  float *pg = malloc (sizeof (float) * n);
  ra_nn_download (g.be, pg, g.s->params->adam_v, n);
  cr_expect (memcmp (pg, c.s->params->adam_v, sizeof (float) * n) == 0);
  cr_expect_eq (ra_nn_params_steps (c.s->params), 1);
  unlink (path);
  free (pg), free (hu), free (hc), free (hd);
  s_run_fini (&g);
  s_run_fini (&c);
}

/* The population form of slate sampling (one launch for all replicas, rows pstride apart, each
   replica on its own stream): cuda against the cpu backend, exactly. */
Test (nn_cuda, population_slates_match_the_cpu_backend)
{
  enum { P = 64, R = 4, K = 20, k = 3, stride = 6 };
  ra_nn_backend_t *gpu = s_open ("cuda"), *cpu = s_open ("cpu");
  static float s[P * stride * K];
  static int32_t sl[2][P * stride * k];
  ra_nn_rng_t r;
  ra_nn_rng_init (&r, 2, 0);
  for (int i = 0; i < P * stride * K; i++)
    s[i] = ra_nn_rng_normal (&r);
  for (int b = 0; b < 2; b++) {
    ra_nn_backend_t *be = b ? gpu : cpu;
    float *d_s = ra_nn_alloc (be, P * stride * K);
    int32_t *d_sl = (int32_t *) ra_nn_alloc (be, P * stride * k);
    ra_nn_upload (be, d_s, s, P * stride * K);
    ra_nn_zero (be, (float *) d_sl, P * stride * k);
    ra_nn_rng_t rng[P];
    for (int p = 0; p < P; p++)
      ra_nn_rng_init (&rng[p], 5, (uint64_t) p);
    ra_nn_slate_sample_pop (be, d_s, P, stride, R, K, k, false, rng, d_sl);
    ra_nn_download (be, (float *) sl[b], (const float *) d_sl, P * stride * k);
    s_healthy (be);
    ra_nn_free (be, d_s), ra_nn_free (be, d_sl);
  }
  cr_expect_eq (memcmp (sl[0], sl[1], sizeof sl[0]), 0, "cuda and cpu population slates differ");
  ra_nn_backend_destroy (&gpu), ra_nn_backend_destroy (&cpu);
}

/* The shapes the warp-per-row slate kernel treats apart, sampled and greedy, against the cpu
   backend exactly: fewer candidates than lanes, a last round of lanes part full, rows past the keys
   held in registers (K > 256) and whole permutations (k = K). Greedy scores come in steps of 0.5,
   so equal keys are common and the lower index must win. */
Test (nn_cuda, slate_shapes_match_the_cpu_backend)
{
  enum { P = 3, R = 4, stride = 5 };
  static const int shapes[][2] = { { 1, 1 },   { 7, 7 },    { 31, 4 },    { 32, 10 },  { 33, 33 },
                                   { 100, 10 }, { 256, 10 }, { 257, 257 }, { 300, 40 }, { 600, 12 } };
  ra_nn_backend_t *gpu = s_open ("cuda"), *cpu = s_open ("cpu");
  for (int c = 0; c < (int) (sizeof shapes / sizeof shapes[0]); c++)
    for (int greedy = 0; greedy < 2; greedy++) {
      int K = shapes[c][0], k = shapes[c][1];
      size_t ns = (size_t) P * stride * K, nl = (size_t) P * stride * k;
      float *s = malloc (sizeof (float) * ns);
      int32_t *sl[2] = { malloc (sizeof (int32_t) * nl), malloc (sizeof (int32_t) * nl) };
      ra_nn_rng_t r;
      ra_nn_rng_init (&r, 10 + (uint64_t) c, 0);
      for (size_t i = 0; i < ns; i++)
        s[i] = greedy ? roundf (2 * ra_nn_rng_normal (&r)) / 2 : ra_nn_rng_normal (&r);
      for (int b = 0; b < 2; b++) {
        ra_nn_backend_t *be = b ? gpu : cpu;
        float *d_s = ra_nn_alloc (be, ns);
        int32_t *d_sl = (int32_t *) ra_nn_alloc (be, nl);
        ra_nn_upload (be, d_s, s, ns);
        ra_nn_rng_t rng[P];
        for (int p = 0; p < P; p++)
          ra_nn_rng_init (&rng[p], 7, (uint64_t) p);
        ra_nn_slate_sample_pop (be, d_s, P, stride, R, K, k, greedy, rng, d_sl);
        ra_nn_download (be, (float *) sl[b], (const float *) d_sl, nl);
        s_healthy (be);
        ra_nn_free (be, d_s), ra_nn_free (be, d_sl);
      }
      cr_expect_eq (memcmp (sl[0], sl[1], sizeof (int32_t) * nl), 0,
                    "K = %d, k = %d, greedy %d: cuda and cpu slates differ", K, k, greedy);
      free (s), free (sl[0]), free (sl[1]);
    }
  ra_nn_backend_destroy (&gpu), ra_nn_backend_destroy (&cpu);
}

/* Slate sampling, Plackett-Luce, GAE and normalisation: cuda against the cpu backend on the
   same inputs (slates exactly; floats to 1e-5 relative). */
Test (nn_cuda, slate_and_advantage_ops_match_the_cpu_backend)
{
  enum { R = 64, K = 20, k = 3, P = 2, T = 8, N = 4 };
  ra_nn_backend_t *gpu = s_open ("cuda"), *cpu = s_open ("cpu");
  static float s[R * K], coef[R], pos_coef[R * k], lp[2][R], ent[2][R], ds[2][R * K];
  static int32_t sl[2][R * k];
  static float rew[P * T * N], val[P * (T + 1) * N], adv[2][P * T * N], ret[2][P * T * N], x[2][P * 50];
  static uint8_t done[P * T * N];
  ra_nn_rng_t r;
  ra_nn_rng_init (&r, 1, 0);
  for (int i = 0; i < R * K; i++)
    s[i] = ra_nn_rng_normal (&r);
  for (int i = 0; i < R; i++)
    coef[i] = ra_nn_rng_normal (&r);
  for (int i = 0; i < P * T * N; i++) {
    rew[i] = ra_nn_rng_normal (&r);
    done[i] = ra_nn_rng_uniform (&r) < 0.2f;
  }
  for (int i = 0; i < P * (T + 1) * N; i++)
    val[i] = ra_nn_rng_normal (&r);
  for (int i = 0; i < R * k; i++)
    pos_coef[i] = ra_nn_rng_normal (&r);
  for (int i = 0; i < P * 50; i++)
    x[0][i] = x[1][i] = ra_nn_rng_normal (&r);
  for (int b = 0; b < 2; b++) {
    ra_nn_backend_t *be = b ? gpu : cpu;
    float *d_s = ra_nn_alloc (be, R * K), *d_c = ra_nn_alloc (be, R), *d_lp = ra_nn_alloc (be, R);
    float *d_ent = ra_nn_alloc (be, R), *d_ds = ra_nn_alloc (be, R * K), *d_r = ra_nn_alloc (be, P * T * N);
    float *d_v = ra_nn_alloc (be, P * (T + 1) * N), *d_a = ra_nn_alloc (be, P * T * N);
    float *d_rt = ra_nn_alloc (be, P * T * N), *d_x = ra_nn_alloc (be, P * 50), *d_done = ra_nn_alloc (be, P * T * N);
    int32_t *d_sl = (int32_t *) ra_nn_alloc (be, R * k);
    float *d_pc = ra_nn_alloc (be, R * k); /* per-position coefficients (S6) */
    ra_nn_upload (be, d_s, s, R * K);
    ra_nn_upload (be, d_c, coef, R);
    ra_nn_upload (be, d_pc, pos_coef, R * k);
    ra_nn_upload (be, d_r, rew, P * T * N);
    ra_nn_upload (be, d_v, val, P * (T + 1) * N);
    ra_nn_upload (be, d_x, x[b], P * 50);
    ra_nn_upload_bytes (be, d_done, done, sizeof done);
    ra_nn_rng_t rng;
    ra_nn_rng_init (&rng, 3, 4);
    ra_nn_slate_sample (be, d_s, R, K, k, false, &rng, d_sl);
    ra_nn_pl_forward (be, d_s, d_sl, R, K, k, d_lp, d_ent);
    ra_nn_pl_backward (be, d_s, d_sl, R, K, k, d_c, d_pc, -0.01f, d_ds, false);
    ra_nn_gae (be, d_r, (const uint8_t *) d_done, d_v, P, T, N, 0.95f, 0.9f, d_a, d_rt);
    ra_nn_normalize (be, d_x, P, 50);
    ra_nn_download (be, (float *) sl[b], (const float *) d_sl, R * k);
    ra_nn_download (be, lp[b], d_lp, R);
    ra_nn_download (be, ent[b], d_ent, R);
    ra_nn_download (be, ds[b], d_ds, R * K);
    ra_nn_download (be, adv[b], d_a, P * T * N);
    ra_nn_download (be, ret[b], d_rt, P * T * N);
    ra_nn_download (be, x[b], d_x, P * 50);
    s_healthy (be);
    void *all[] = { d_s, d_c, d_lp, d_ent, d_ds, d_r, d_v, d_a, d_rt, d_x, d_done, d_sl, d_pc };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
      ra_nn_free (be, all[i]);
  }
  cr_expect_eq (memcmp (sl[0], sl[1], sizeof sl[0]), 0, "cuda and cpu slates differ");
  for (int i = 0; i < R; i++) {
    cr_expect_float_eq (lp[0][i], lp[1][i], 1e-5 * fmax (1, fabs (lp[0][i])));
    cr_expect_float_eq (ent[0][i], ent[1][i], 1e-5 * fmax (1, ent[0][i]));
  }
  for (int i = 0; i < R * K; i++)
    cr_expect_float_eq (ds[0][i], ds[1][i], 1e-5);
  for (int i = 0; i < P * T * N; i++) {
    cr_expect_float_eq (adv[0][i], adv[1][i], 1e-5 * fmax (1, fabs (adv[0][i])));
    cr_expect_float_eq (ret[0][i], ret[1][i], 1e-5 * fmax (1, fabs (ret[0][i])));
  }
  for (int i = 0; i < P * 50; i++)
    cr_expect_float_eq (x[0][i], x[1][i], 1e-5);
  ra_nn_backend_destroy (&cpu);
  ra_nn_backend_destroy (&gpu);
}
