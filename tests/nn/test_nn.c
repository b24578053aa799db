/*  tests/nn/test_nn.c - agents/nn on the cpu: finite-difference gradient checks of the double
    reference, cpu backend vs reference, batched vs separate networks, checkpoints, resume.     */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents/nn/nn.h"
#include "agents/nn/nn_ref.h"
#include "tests/nn/check_backend.h"

/* ------------------------------------------------------------ finite differences in double */

enum { K_LINEAR, K_RELU, K_TANH, K_LN, K_SOFTMAX, K_LOGSOFTMAX, K_PAIRS, K_PG, K_ENTROPY, K_MSE, K_COUNT };
static const char *s_kind_name[K_COUNT] = { "linear", "relu", "tanh", "layernorm", "softmax", "log_softmax",
                                            "pairs", "pg_loss", "entropy", "mse" };

enum { B = 4, IN = 6, OUT = 5, C = 5, DU = 3, DC = 3 }; /* B*C*DC <= 64 */

typedef struct {
  int kind;
  double x[64], w[64], b[64], g[64], gy[128]; /* inputs, parameters, upstream gradient */
  int32_t act[B];
} s_case_t;

static double s_dot (const double *a, const double *b, int n)
{
  double s = 0;
  for (int i = 0; i < n; i++)
    s += a[i] * b[i];
  return s;
}

/* The scalar whose gradient is checked: sum(gy * layer(x)) for layers, the loss for losses. */
static double s_objective (const s_case_t *c)
{
  double y[128];
  switch (c->kind) {
  case K_LINEAR: ra_nn_ref_linear_fwd (c->x, c->w, c->b, y, B, IN, OUT); return s_dot (y, c->gy, B * OUT);
  case K_RELU: ra_nn_ref_relu_fwd (c->x, y, B * IN); return s_dot (y, c->gy, B * IN);
  case K_TANH: ra_nn_ref_tanh_fwd (c->x, y, B * IN); return s_dot (y, c->gy, B * IN);
  case K_LN: ra_nn_ref_ln_fwd (c->x, c->g, c->b, y, B, IN); return s_dot (y, c->gy, B * IN);
  case K_SOFTMAX: ra_nn_ref_softmax_fwd (c->x, y, B, C, false); return s_dot (y, c->gy, B * C);
  case K_LOGSOFTMAX: ra_nn_ref_softmax_fwd (c->x, y, B, C, true); return s_dot (y, c->gy, B * C);
  case K_PAIRS: ra_nn_ref_pairs_fwd (c->x, c->w, y, B, C, DU, DC); return s_dot (y, c->gy, B * C * (DU + DC));
  case K_PG: return ra_nn_ref_pg_fwd (c->x, c->act, c->b, B, C);
  case K_ENTROPY: return ra_nn_ref_entropy_fwd (c->x, B, C);
  default: return ra_nn_ref_mse_fwd (c->x, c->w, B);
  }
}

/* Analytic gradients of the objective w.r.t. x, w, b, g (those that apply). */
static void s_analytic (const s_case_t *c, double *dx, double *dw, double *db, double *dg)
{
  double y[128];
  switch (c->kind) {
  case K_LINEAR: ra_nn_ref_linear_bwd (c->x, c->w, c->gy, dx, dw, db, B, IN, OUT); break;
  case K_RELU: ra_nn_ref_relu_fwd (c->x, y, B * IN), ra_nn_ref_relu_bwd (y, c->gy, dx, B * IN); break;
  case K_TANH: ra_nn_ref_tanh_fwd (c->x, y, B * IN), ra_nn_ref_tanh_bwd (y, c->gy, dx, B * IN); break;
  case K_LN: ra_nn_ref_ln_bwd (c->x, c->g, c->gy, dx, dg, db, B, IN); break;
  case K_SOFTMAX:
    ra_nn_ref_softmax_fwd (c->x, y, B, C, false), ra_nn_ref_softmax_bwd (y, c->gy, dx, B, C, false);
    break;
  case K_LOGSOFTMAX:
    ra_nn_ref_softmax_fwd (c->x, y, B, C, true), ra_nn_ref_softmax_bwd (y, c->gy, dx, B, C, true);
    break;
  case K_PAIRS: ra_nn_ref_pairs_bwd (c->gy, dx, dw, B, C, DU, DC); break;
  case K_PG: ra_nn_ref_pg_bwd (c->act, c->b, dx, 1.0, B, C); break;
  case K_ENTROPY: ra_nn_ref_entropy_bwd (c->x, dx, 1.0, B, C); break;
  default: ra_nn_ref_mse_bwd (c->x, c->w, dx, 1.0, B); break;
  }
}

/* Central differences with h = 1e-6 on each element of v[0..n); returns the worst relative error. */
static double s_fd_worst (s_case_t *c, double *v, const double *analytic, int n)
{
  double worst = 0, h = 1e-6;
  for (int i = 0; i < n; i++) {
    double keep = v[i];
    v[i] = keep + h;
    double fp = s_objective (c);
    v[i] = keep - h;
    double fm = s_objective (c);
    v[i] = keep;
    double fd = (fp - fm) / (2 * h);
    worst = fmax (worst, fabs (fd - analytic[i]) / (1.0 + fabs (fd)));
  }
  return worst;
}

static void s_fill (ra_nn_rng_t *r, double *v, int n, double lo, double hi)
{
  for (int i = 0; i < n; i++)
    v[i] = lo + (hi - lo) * ra_nn_rng_uniform (r);
}

Test (nn_gradcheck, every_layer_and_loss_matches_finite_differences_in_double)
{
  ra_nn_rng_t r;
  ra_nn_rng_init (&r, 42, 0);
  for (int k = 0; k < K_COUNT; k++) {
    s_case_t c = { .kind = k };
    s_fill (&r, c.x, 64, -1.5, 1.5);
    s_fill (&r, c.w, 64, -1, 1);
    s_fill (&r, c.b, 64, -1, 1);
    s_fill (&r, c.g, 64, 0.5, 1.5);
    s_fill (&r, c.gy, 128, -1, 1);
    if (k == K_RELU) /* keep away from the kink */
      for (int i = 0; i < 64; i++)
        c.x[i] += c.x[i] > 0 ? 0.1 : -0.1;
    if (k == K_PG || k == K_ENTROPY) /* logp must be log-probabilities */
      ra_nn_ref_softmax_fwd (c.x, c.x, B, C, true);
    for (int u = 0; u < B; u++)
      c.act[u] = (int32_t) (ra_nn_rng_u64 (&r) % C);
    double dx[64] = { 0 }, dw[64] = { 0 }, db[64] = { 0 }, dg[64] = { 0 };
    s_analytic (&c, dx, dw, db, dg);
    int nx = k == K_LINEAR || k == K_RELU || k == K_TANH || k == K_LN ? B * IN
             : k == K_PAIRS                                          ? B * DU
             : k == K_MSE                                            ? B
                                                                     : B * C;
    double e = s_fd_worst (&c, c.x, dx, nx);
    cr_expect (e < 1e-6, "%s: d/dx off by %g relative", s_kind_name[k], e);
    if (k == K_LINEAR) {
      e = fmax (s_fd_worst (&c, c.w, dw, OUT * IN), s_fd_worst (&c, c.b, db, OUT));
      cr_expect (e < 1e-6, "linear: d/dw or d/db off by %g", e);
    }
    if (k == K_LN) {
      e = fmax (s_fd_worst (&c, c.g, dg, IN), s_fd_worst (&c, c.b, db, IN));
      cr_expect (e < 1e-6, "layernorm: d/dg or d/db off by %g", e);
    }
    if (k == K_PAIRS) {
      e = s_fd_worst (&c, c.w, dw, B * C * DC);
      cr_expect (e < 1e-6, "pairs: d/dcand off by %g", e);
    }
  }
}

Test (nn_gradcheck, a_wrong_gradient_is_caught)
{
  s_case_t c = { .kind = K_TANH };
  ra_nn_rng_t r;
  ra_nn_rng_init (&r, 1, 0);
  s_fill (&r, c.x, 64, -1, 1);
  s_fill (&r, c.gy, 128, -1, 1);
  double dx[64];
  s_analytic (&c, dx, NULL, NULL, NULL);
  dx[3] *= 1.01;
  cr_expect (s_fd_worst (&c, c.x, dx, B * IN) > 1e-4);
}

/* ------------------------------------------------------------------- backend vs reference */

static ra_nn_backend_t *s_cpu (void)
{
  ra_nn_backend_t *be = NULL;
  ra_error_t err;
  cr_assert_eq (ra_nn_backend_open ("cpu", NULL, &be, &err), RA_OK);
  return be;
}

Test (nn_backend, cpu_matches_reference_for_every_op)
{
  ra_nn_backend_t *be = s_cpu ();
  nn_check_t res[64];
  int n = nn_check_ops (be, res, 64);
  cr_expect_geq (n, 20);
  for (int i = 0; i < n; i++)
    cr_log_info ("cpu vs reference: %-26s %.3g", res[i].op, res[i].err);
  for (int i = 0; i < n; i++)
    cr_expect (res[i].err < 1e-5, "%s: cpu vs reference off by %g (relative to max)", res[i].op, res[i].err);
  ra_nn_backend_destroy (&be);
}

Test (nn_backend, batched_population_equals_separate_networks)
{
  ra_nn_backend_t *be = s_cpu ();
  double d = nn_check_batched_vs_separate (be, 4);
  cr_expect (d < 1e-6, "P=4 batched vs 4 separate scorers differ by %g", d);
  ra_nn_backend_destroy (&be);
}

Test (nn_backend, names_select_backends_and_cuda_fails_clearly_without_gpu)
{
  ra_nn_backend_t *be = NULL;
  ra_error_t err;
  cr_expect_eq (ra_nn_backend_open ("tpu", NULL, &be, &err), RA_ERR_BAD_CONFIG);
  cr_expect (strstr (err.message, "tpu") != NULL);
  cr_assert_eq (ra_nn_backend_open ("auto", NULL, &be, &err), RA_OK);
  const char *name = ra_nn_backend_name (be);
  cr_expect (strcmp (name, "cpu") == 0 || strcmp (name, "cuda") == 0);
  ra_nn_backend_destroy (&be);
  cr_expect_null (be);
  ra_err_t rc = ra_nn_backend_open ("cuda", NULL, &be, &err);
  if (rc != RA_OK) { /* no CUDA build or no GPU: a clear message */
    cr_expect_eq (rc, RA_ERR_BAD_CONFIG);
    cr_expect (strstr (err.message, "cuda") != NULL || strstr (err.message, "CUDA") != NULL, "%s", err.message);
    cr_expect_null (be);
  }
  ra_nn_backend_destroy (&be);
}

/* -------------------------------------------------------------------- params and training */

Test (nn_params, table_offsets_are_aligned_and_names_found)
{
  ra_nn_backend_t *be = s_cpu ();
  ra_nn_params_t *p = ra_nn_params_new (be, 2, 1);
  int a = ra_nn_params_add (p, "a.w", 2, (int[]) { 3, 5 });
  int b = ra_nn_params_add (p, "a.b", 1, (int[]) { 3 });
  cr_assert_eq (ra_nn_params_alloc (p, NULL), RA_OK);
  cr_expect_eq (p->tensors[a].offset, 0);
  cr_expect_eq (p->tensors[b].offset, 16);
  cr_expect_eq (p->n, 32);
  cr_expect_eq (ra_nn_params_find (p, "a.b"), b);
  cr_expect_eq (ra_nn_params_find (p, "nope"), -1);
  ra_nn_params_init (p, 1.0f);
  cr_expect (memcmp (p->data, p->data + p->n, sizeof (float) * p->n) == 0, "replicas start equal");
  cr_expect_neq (p->data[0], 0.0f);
  ra_nn_params_t *c = ra_nn_params_clone (p);
  cr_assert_not_null (c);
  cr_expect (memcmp (c->data, p->data, sizeof (float) * p->n * 2) == 0);
  ra_nn_axpy (be, c->data, 1.0f, p->data, p->n * 2); /* Reptile-style update touches only the clone */
  cr_expect_eq (c->data[0], 2 * p->data[0]);
  ra_nn_params_destroy (&c);
  ra_nn_params_destroy (&p);
  cr_expect_null (p);
  ra_nn_backend_destroy (&be);
}

Test (nn_rng, draws_depend_only_on_seed_stream_and_counter)
{
  ra_nn_rng_t a, b;
  ra_nn_rng_init (&a, 9, 3);
  ra_nn_rng_init (&b, 9, 3);
  for (int i = 0; i < 5; i++)
    ra_nn_rng_u64 (&a);
  b.counter = 5;
  cr_expect_eq (ra_nn_rng_u64 (&a), ra_nn_rng_u64 (&b));
  ra_nn_rng_init (&b, 9, 4);
  b.counter = 6;
  cr_expect_neq (ra_nn_rng_u64 (&a), ra_nn_rng_u64 (&b));
  double s = 0, s2 = 0;
  for (int i = 0; i < 20000; i++) {
    double z = ra_nn_rng_normal (&a);
    s += z, s2 += z * z;
  }
  cr_expect (fabs (s / 20000) < 0.05 && fabs (s2 / 20000 - 1) < 0.05);
}

/* One actor-critic-style update of a scorer: inputs and actions drawn from params->rng. */
typedef struct {
  ra_nn_scorer_t *s;
  float *user, *cand, *logp, *dlogp, *adv, *loss;
  int32_t *act;
} s_train_t;

enum { TU = 8, TC = 6 };

static void s_train_init (s_train_t *t, ra_nn_backend_t *be, uint64_t seed)
{
  ra_nn_scorer_cfg_t cfg = { .du = 4, .dc = 5, .nhidden = 2, .hidden = { 16, 8 }, .max_users = TU, .cands = TC };
  cr_assert_eq (ra_nn_scorer_new (be, &cfg, 1, seed, &t->s, NULL), RA_OK);
  t->user = ra_nn_alloc (be, TU * 4);
  t->cand = ra_nn_alloc (be, TU * TC * 5);
  t->logp = ra_nn_alloc (be, TU * TC);
  t->dlogp = ra_nn_alloc (be, TU * TC);
  t->adv = ra_nn_alloc (be, TU);
  t->loss = ra_nn_alloc (be, 2);
  t->act = (int32_t *) ra_nn_alloc (be, TU);
}

static void s_train_fini (s_train_t *t)
{
  ra_nn_backend_t *be = t->s->params->be;
  void *bufs[] = { t->user, t->cand, t->logp, t->dlogp, t->adv, t->loss, t->act };
  for (size_t i = 0; i < 7; i++)
    ra_nn_free (be, bufs[i]);
  ra_nn_scorer_destroy (&t->s);
}

static void s_train_step (s_train_t *t)
{
  ra_nn_params_t *p = t->s->params;
  ra_nn_backend_t *be = p->be;
  for (int i = 0; i < TU * 4; i++)
    t->user[i] = ra_nn_rng_normal (&p->rng);
  for (int i = 0; i < TU * TC * 5; i++)
    t->cand[i] = ra_nn_rng_normal (&p->rng);
  for (int i = 0; i < TU; i++) {
    t->act[i] = (int32_t) (ra_nn_rng_u64 (&p->rng) % TC);
    t->adv[i] = ra_nn_rng_normal (&p->rng);
  }
  ra_nn_params_zero_grad (p);
  const float *scores = ra_nn_scorer_forward (t->s, t->user, t->cand, TU);
  ra_nn_log_softmax_forward (be, scores, t->logp, TU, TC);
  ra_nn_pg_loss_backward (be, t->act, t->adv, t->dlogp, 1.0f, false, 1, TU, TC);
  ra_nn_entropy_backward (be, t->logp, t->dlogp, -0.01f, true, 1, TU, TC);
  ra_nn_log_softmax_backward (be, t->logp, t->dlogp, t->dlogp, TU, TC);
  ra_nn_scorer_backward (t->s, t->dlogp);
  ra_nn_clip_grad_norm (p, 1.0f, NULL);
  ra_nn_adam_t cfg = { .lr = 3e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f };
  cr_assert_eq (ra_nn_adam_step (p, &cfg, NULL), RA_OK);
}

static char *s_tmp_path (const char *tag)
{
  static char buf[256];
  snprintf (buf, sizeof buf, "/tmp/ra_nn_test_%d_%s.safetensors", (int) getpid (), tag);
  return buf;
}

Test (nn_checkpoint, round_trip_restores_params_moments_step_and_rng)
{
  ra_nn_backend_t *be = s_cpu ();
  s_train_t a, b;
  s_train_init (&a, be, 11);
  s_train_init (&b, be, 12);
  for (int i = 0; i < 3; i++)
    s_train_step (&a);
  const char *path = s_tmp_path ("rt");
  ra_error_t err;
  cr_assert_eq (ra_nn_checkpoint_save (a.s->params, path, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_nn_checkpoint_load (b.s->params, path, &err), RA_OK, "%s", err.message);
  ra_nn_params_t *pa = a.s->params, *pb = b.s->params;
  size_t bytes = sizeof (float) * pa->n;
  cr_expect (memcmp (pa->data, pb->data, bytes) == 0);
  cr_expect (memcmp (pa->adam_m, pb->adam_m, bytes) == 0);
  cr_expect (memcmp (pa->adam_v, pb->adam_v, bytes) == 0);
  cr_expect_eq (ra_nn_params_steps (pb), 3);
  cr_expect (pa->rng.seed == pb->rng.seed && pa->rng.counter == pb->rng.counter);
  unlink (path);
  s_train_fini (&a);
  s_train_fini (&b);
  ra_nn_backend_destroy (&be);
}

Test (nn_checkpoint, resumed_run_continues_bit_identically)
{
  ra_nn_backend_t *be = s_cpu ();
  s_train_t full, first, resumed;
  s_train_init (&full, be, 5);
  s_train_init (&first, be, 5);
  s_train_init (&resumed, be, 99); /* different init: everything must come from the file */
  for (int i = 0; i < 7; i++)
    s_train_step (&full);
  for (int i = 0; i < 4; i++)
    s_train_step (&first);
  const char *path = s_tmp_path ("resume");
  ra_error_t err;
  cr_assert_eq (ra_nn_checkpoint_save (first.s->params, path, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_nn_checkpoint_load (resumed.s->params, path, &err), RA_OK, "%s", err.message);
  for (int i = 0; i < 3; i++)
    s_train_step (&resumed);
  size_t bytes = sizeof (float) * full.s->params->n;
  cr_expect (memcmp (full.s->params->data, resumed.s->params->data, bytes) == 0);
  cr_expect (memcmp (full.s->params->adam_v, resumed.s->params->adam_v, bytes) == 0);
  cr_expect_eq (ra_nn_params_steps (resumed.s->params), 7);
  /* and training actually moved the parameters */
  cr_expect (memcmp (full.s->params->data, first.s->params->data, bytes) != 0);
  unlink (path);
  s_train_fini (&full);
  s_train_fini (&first);
  s_train_fini (&resumed);
  ra_nn_backend_destroy (&be);
}

Test (nn_checkpoint, rejects_missing_truncated_and_mismatched_files)
{
  ra_nn_backend_t *be = s_cpu ();
  s_train_t a;
  s_train_init (&a, be, 1);
  ra_error_t err;
  cr_expect_eq (ra_nn_checkpoint_load (a.s->params, "/nonexistent/x.safetensors", &err), RA_ERR_IO);
  const char *path = s_tmp_path ("bad");
  cr_assert_eq (ra_nn_checkpoint_save (a.s->params, path, &err), RA_OK);
  FILE *f = fopen (path, "rb");
  static char buf[1 << 16];
  size_t n = fread (buf, 1, sizeof buf, f);
  fclose (f);
  for (size_t cut = 0; cut < n; cut += 7) { /* every 7th truncated prefix */
    f = fopen (path, "wb");
    fwrite (buf, 1, cut, f);
    fclose (f);
    cr_expect_neq (ra_nn_checkpoint_load (a.s->params, path, &err), RA_OK, "prefix %zu accepted", cut);
  }
  /* a different network shape is refused by name/shape */
  ra_nn_params_t *other = ra_nn_params_new (be, 1, 1);
  ra_nn_params_add (other, "l0.w", 2, (int[]) { 3, 3 });
  ra_nn_params_alloc (other, NULL);
  f = fopen (path, "wb");
  fwrite (buf, 1, n, f);
  fclose (f);
  cr_expect_eq (ra_nn_checkpoint_load (other, path, &err), RA_ERR_BAD_CONFIG);
  cr_expect (strstr (err.message, "l0.w") != NULL, "%s", err.message);
  cr_expect (strstr (err.message, "expected [3, 3]") != NULL, "%s", err.message);
  cr_expect (strstr (err.message, "shape [16, 9]") != NULL || strstr (err.message, "shape [9, 16]") != NULL, "%s",
             err.message);
  ra_nn_params_destroy (&other);
  unlink (path);
  s_train_fini (&a);
  ra_nn_backend_destroy (&be);
}

/* ---------------------------------------------------------------------------- graphs (cpu) */

static void s_bump (void *arg) { (*(int *) arg)++; }

Test (nn_graph, cpu_capture_records_and_launch_replays)
{
  ra_nn_backend_t *be = s_cpu ();
  int calls = 0;
  ra_nn_graph_t *g = NULL;
  cr_assert_eq (ra_nn_graph_capture (be, s_bump, &calls, &g, NULL), RA_OK);
  cr_expect_eq (calls, 0);
  ra_nn_graph_launch (g);
  ra_nn_graph_launch (g);
  cr_expect_eq (calls, 2);
  ra_nn_graph_destroy (&g);
  cr_expect_null (g);
  ra_nn_backend_destroy (&be);
}

/* ------------------------------------------------------------------------ value head (cpu) */

Test (nn_backend, value_head_with_mse_matches_reference)
{
  enum { VB = 9, VIN = 7 };
  ra_nn_backend_t *be = s_cpu ();
  ra_nn_params_t *p = ra_nn_params_new (be, 1, 3);
  int w = ra_nn_params_add (p, "v.w", 2, (int[]) { 1, VIN });
  int b = ra_nn_params_add (p, "v.b", 1, (int[]) { 1 });
  cr_assert_eq (ra_nn_params_alloc (p, NULL), RA_OK);
  ra_nn_params_init (p, 1.0f);
  p->data[p->tensors[b].offset] = 0.25f;
  ra_nn_rng_t r;
  ra_nn_rng_init (&r, 8, 0);
  float x[VB * VIN], t[VB], v[VB], dv[VB], dx[VB * VIN], loss;
  double xd[VB * VIN], td[VB], wd[VIN], bd[1], vd[VB], dvd[VB], dxd[VB * VIN], dwd[VIN] = { 0 }, dbd[1] = { 0 };
  for (int i = 0; i < VB * VIN; i++)
    xd[i] = x[i] = ra_nn_rng_uniform (&r) - 0.5f;
  for (int i = 0; i < VB; i++)
    td[i] = t[i] = ra_nn_rng_uniform (&r);
  for (int i = 0; i < VIN; i++)
    wd[i] = p->data[p->tensors[w].offset + i];
  bd[0] = 0.25;
  ra_nn_value_forward (p, w, b, x, v, VB);
  ra_nn_mse_forward (be, v, t, &loss, 1, VB);
  ra_nn_mse_backward (be, v, t, dv, 0.5f, false, 1, VB);
  ra_nn_value_backward (p, w, b, x, dv, dx, VB);
  ra_nn_ref_linear_fwd (xd, wd, bd, vd, VB, VIN, 1);
  double lref = ra_nn_ref_mse_fwd (vd, td, VB);
  ra_nn_ref_mse_bwd (vd, td, dvd, 0.5, VB);
  ra_nn_ref_linear_bwd (xd, wd, dvd, dxd, dwd, dbd, VB, VIN, 1);
  cr_expect (fabs (loss - lref) < 1e-6 * (1 + fabs (lref)));
  for (int i = 0; i < VB * VIN; i++)
    cr_expect (fabs (dx[i] - dxd[i]) < 1e-6, "dx[%d]", i);
  for (int i = 0; i < VIN; i++)
    cr_expect (fabs (p->grad[p->tensors[w].offset + i] - dwd[i]) < 1e-6, "dw[%d]", i);
  cr_expect (fabs (p->grad[p->tensors[b].offset] - dbd[0]) < 1e-6);
  ra_nn_params_destroy (&p);
  ra_nn_backend_destroy (&be);
}
