/*  bench/bench_nn.c - agents/nn throughput against the GEMM rate measured in the same run.

    CPU: forward + backward + Adam of the 2-layer width-256 scorer over 256 users x 20 candidates
    (5120 pairs of 128 + 128 features), vs OpenBLAS sgemm running exactly the same GEMMs.
    Budget: ratio >= 0.60.
    GPU (when "cuda" opens): 64 networks x 1024 rows x width 256 (2 linear layers, ReLU, Adam) on
    the batched path vs cuBLAS strided-batched sgemm at the same shapes (budget >= 0.40), and CUDA
    graph replay of a small update vs issuing it eagerly (budget >= 1.5x), and the CPU case's
    scorer update (256 users x 20 candidates, 2 x 256, Adam) replayed as a CUDA graph (budget
    <= 150 us per update; fp32, and timed again with TF32 tensor cores for comparison).
    On the GPU it also times the scorer update's GEMMs alone against the whole update (eager), the
    share a profile would give the GEMMs.
    Usage: bench_nn [--repeats N] [--check] [--gpu-scorer]   (--check: exit 1 when a budget is
    missed; --gpu-scorer: only the GPU scorer update, eager and graph, for a kernel profiler)
    Timings are medians over N repeats after a warm-up, each pair sampled alternately; OpenBLAS threads: RA_NN_BLAS_THREADS (1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agents/nn/backend.h"
#include "agents/nn/nn.h"
#include "common/kv.h"

static double s_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int s_cmp_d (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static double s_median (double *v, int n)
{
  qsort (v, n, sizeof *v, s_cmp_d);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef void (*s_fn_t) (void *);
/* Median seconds per call of fa and fb (`inner` calls per sample, `repeats` samples after one
   warm-up), sampled alternately so machine load hits both alike. */
static void s_time_pair (ra_nn_backend_t *be, s_fn_t fa, void *aa, s_fn_t fb, void *ab, int repeats, int inner,
                         double *ta, double *tb)
{
  double *a = malloc (sizeof (double) * repeats), *b = malloc (sizeof (double) * repeats);
  for (int r = -1; r < repeats; r++)
    for (int k = 0; k < 2; k++) {
      ra_nn_sync (be);
      double t0 = s_now ();
      for (int i = 0; i < inner; i++)
        k ? fb (ab) : fa (aa);
      ra_nn_sync (be);
      if (r >= 0)
        (k ? b : a)[r] = (s_now () - t0) / inner;
    }
  *ta = s_median (a, repeats);
  *tb = s_median (b, repeats);
  free (a);
  free (b);
}

/* ------------------------------------------------------------------------- CPU: scorer */

typedef struct {
  ra_nn_backend_t *be;
  ra_nn_scorer_t *s;
  float *user, *cand, *dscores;
  int U;
  /* raw GEMM operands at the scorer's shapes */
  int nl;
  int in[4], out[4];
  float *x[4], *w[4], *y[4], *dw[4], *dx[4];
  int rows;
} s_scorer_bench_t;

static void s_scorer_step (void *arg)
{
  s_scorer_bench_t *b = arg;
  ra_nn_params_zero_grad (b->s->params);
  ra_nn_scorer_forward (b->s, b->user, b->cand, b->U);
  ra_nn_scorer_backward (b->s, b->dscores);
  ra_nn_adam_t cfg = { .lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f };
  ra_nn_adam_step (b->s->params, &cfg, NULL);
}

/* The same GEMMs as one scorer step (docs/nn.md, MLP module): layer 0 splits its weight into a
   user half (one GEMM over U users) and a candidate half (over U*20 pairs), forward and dW only;
   layers l > 0: forward y = x w^T, dw += dy^T x, dx = dy w. */
static void s_gemms_only (void *arg)
{
  s_scorer_bench_t *b = arg;
  const ra__nn_ops_t *o = b->be->ops;
  int U = b->U, R = b->rows, H = b->out[0], h = b->in[0] / 2;
  o->gemm (b->be->ctx, false, true, U, H, h, 1.0f, b->x[0], h, 0, b->w[0], 2 * h, 0, 0.0f, b->y[0], H, 0, 1);
  o->gemm (b->be->ctx, false, true, R, H, h, 1.0f, b->x[0], h, 0, b->w[0] + h, 2 * h, 0, 1.0f, b->y[0], H, 0, 1);
  o->gemm (b->be->ctx, true, false, H, h, R, 1.0f, b->y[0], H, 0, b->x[0], h, 0, 1.0f, b->dw[0] + h, 2 * h, 0, 1);
  o->gemm (b->be->ctx, true, false, H, h, U, 1.0f, b->y[0], H, 0, b->x[0], h, 0, 1.0f, b->dw[0], 2 * h, 0, 1);
  for (int l = 1; l < b->nl; l++) {
    int B = b->rows, in = b->in[l], out = b->out[l];
    o->gemm (b->be->ctx, false, true, B, out, in, 1.0f, b->x[l], in, 0, b->w[l], in, 0, 0.0f, b->y[l], out, 0, 1);
    o->gemm (b->be->ctx, true, false, out, in, B, 1.0f, b->y[l], out, 0, b->x[l], in, 0, 1.0f, b->dw[l], in, 0, 1);
    o->gemm (b->be->ctx, false, false, B, in, out, 1.0f, b->y[l], out, 0, b->w[l], in, 0, 0.0f, b->dx[l], in, 0, 1);
  }
}

static double s_scorer_flops (const s_scorer_bench_t *b)
{
  double h = b->in[0] / 2, f = 2.0 * 2.0 * (b->U + b->rows) * h * b->out[0]; /* layer 0: fwd + dW */
  for (int l = 1; l < b->nl; l++)
    f += 2.0 * b->rows * b->in[l] * b->out[l] * 3;
  return f;
}

/* dev: "cpu" prints the budget; "cuda" prints the same table as the split of the GPU update
   between its GEMMs and everything else (no budget: the graph case below holds the GPU's) */
static int s_bench_scorer (ra_nn_backend_t *be, const char *dev, int repeats, double *ratio)
{
  s_scorer_bench_t b = { .be = be, .U = 256 };
  ra_nn_scorer_cfg_t cfg = { .du = 128, .dc = 128, .nhidden = 2, .hidden = { 256, 256 }, .max_users = 256, .cands = 20 };
  ra_error_t err;
  if (ra_nn_scorer_new (be, &cfg, 1, 1, &b.s, &err) != RA_OK) {
    fprintf (stderr, "%s:%d: %s\n", __FILE__, __LINE__, err.message);
    return 1;
  }
  b.rows = b.U * cfg.cands;
  b.user = ra_nn_alloc (be, (size_t) b.U * cfg.du);
  b.cand = ra_nn_alloc (be, (size_t) b.rows * cfg.dc);
  b.dscores = ra_nn_alloc (be, (size_t) b.rows);
  ra_nn_rng_t rng;
  ra_nn_rng_init (&rng, 3, 0);
  size_t nmax = (size_t) b.rows * 256;
  float *h = malloc (sizeof (float) * nmax);
  for (size_t i = 0; i < nmax; i++)
    h[i] = ra_nn_rng_uniform (&rng) - 0.5f;
  ra_nn_upload (be, b.user, h, (size_t) b.U * cfg.du);
  ra_nn_upload (be, b.cand, h, (size_t) b.rows * cfg.dc);
  ra_nn_upload (be, b.dscores, h, (size_t) b.rows);
  b.nl = 3;
  int widths[4] = { 256, 256, 256, 1 };
  for (int l = 0; l < 3; l++) {
    b.in[l] = widths[l], b.out[l] = widths[l + 1];
    b.x[l] = ra_nn_alloc (be, (size_t) b.rows * b.in[l]);
    b.dx[l] = ra_nn_alloc (be, (size_t) b.rows * b.in[l]);
    b.y[l] = ra_nn_alloc (be, (size_t) b.rows * b.out[l]);
    b.w[l] = ra_nn_alloc (be, (size_t) b.in[l] * b.out[l]);
    b.dw[l] = ra_nn_alloc (be, (size_t) b.in[l] * b.out[l]);
    ra_nn_upload (be, b.x[l], h, (size_t) b.rows * b.in[l]);
    ra_nn_upload (be, b.y[l], h, (size_t) b.rows * b.out[l]);
    ra_nn_upload (be, b.w[l], h, (size_t) b.in[l] * b.out[l]);
  }
  free (h);
  double flops = s_scorer_flops (&b);
  double t_gemm, t_step;
  s_time_pair (be, s_gemms_only, &b, s_scorer_step, &b, repeats, 3, &t_gemm, &t_step);
  double g_gemm = flops / t_gemm * 1e-9, g_step = flops / t_step * 1e-9;
  *ratio = g_step / g_gemm;
  bool cpu = strcmp (dev, "cpu") == 0;
  printf ("%-58s %10.2f %10.3f\n", cpu ? "sgemm, same GEMMs (split layer 0, 5120x256x256 fwd/dW/dX)"
                                       : "cuBLAS, the scorer update's GEMMs alone (eager)", g_gemm, t_gemm * 1e3);
  printf ("%-58s %10.2f %10.3f\n", cpu ? "scorer fwd+bwd+Adam (256 users x 20 cands, 2 x 256)"
                                       : "the whole update (eager)", g_step, t_step * 1e3);
  if (cpu)
    printf ("%-58s %10.2f %10s   budget >= 0.60: %s\n", "ratio", *ratio, "", *ratio >= 0.60 ? "PASS" : "FAIL");
  else
    printf ("%-58s %10.2f\n", "GEMM share of the update", *ratio);
  for (int l = 0; l < 3; l++) {
    ra_nn_free (be, b.x[l]), ra_nn_free (be, b.dx[l]), ra_nn_free (be, b.y[l]);
    ra_nn_free (be, b.w[l]), ra_nn_free (be, b.dw[l]);
  }
  ra_nn_free (be, b.user), ra_nn_free (be, b.cand), ra_nn_free (be, b.dscores);
  ra_nn_scorer_destroy (&b.s);
  return 0;
}

/* ------------------------------------------------------------ GPU: batched population */

typedef struct {
  ra_nn_backend_t *be;
  ra_nn_params_t *p;
  int P, B, W;
  int w0, b0, w1, b1;
  float *x, *h, *y, *dy, *dh;
} s_pop_t;

static void s_pop_step (void *arg)
{
  s_pop_t *q = arg;
  size_t nh = (size_t) q->P * q->B * q->W;
  ra_nn_params_zero_grad (q->p);
  ra_nn_linear_forward (q->p, q->w0, q->b0, q->x, q->h, q->B);
  ra_nn_relu_forward (q->be, q->h, q->h, nh);
  ra_nn_linear_forward (q->p, q->w1, q->b1, q->h, q->y, q->B);
  ra_nn_linear_backward (q->p, q->w1, q->b1, q->h, q->dy, q->dh, q->B);
  ra_nn_relu_backward (q->be, q->h, q->dh, q->dh, nh);
  ra_nn_linear_backward (q->p, q->w0, q->b0, q->x, q->dh, NULL, q->B);
  ra_nn_adam_t cfg = { .lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f };
  ra_nn_adam_step (q->p, &cfg, NULL);
}

/* cuBLAS strided-batched sgemm at the same shapes (5 GEMMs of 1024 x 256 x 256 per network). */
static void s_pop_gemms (void *arg)
{
  s_pop_t *q = arg;
  const ra__nn_ops_t *o = q->be->ops;
  long long sx = (long long) q->B * q->W, sw = (long long) q->p->n;
  int B = q->B, W = q->W;
  float *w = q->p->data, *g = q->p->grad;
  o->gemm (q->be->ctx, false, true, B, W, W, 1.0f, q->x, W, sx, w, W, sw, 0.0f, q->h, W, sx, q->P);
  o->gemm (q->be->ctx, false, true, B, W, W, 1.0f, q->h, W, sx, w, W, sw, 0.0f, q->y, W, sx, q->P);
  o->gemm (q->be->ctx, true, false, W, W, B, 1.0f, q->dy, W, sx, q->h, W, sx, 1.0f, g, W, sw, q->P);
  o->gemm (q->be->ctx, false, false, B, W, W, 1.0f, q->dy, W, sx, w, W, sw, 0.0f, q->dh, W, sx, q->P);
  o->gemm (q->be->ctx, true, false, W, W, B, 1.0f, q->dh, W, sx, q->x, W, sx, 1.0f, g, W, sw, q->P);
}

static int s_bench_population (ra_nn_backend_t *be, int repeats, double *ratio)
{
  s_pop_t q = { .be = be, .P = 64, .B = 1024, .W = 256 };
  q.p = ra_nn_params_new (be, q.P, 1);
  int ws[2] = { q.W, q.W }, bs[1] = { q.W };
  q.w0 = ra_nn_params_add (q.p, "l0.w", 2, ws);
  q.b0 = ra_nn_params_add (q.p, "l0.b", 1, bs);
  q.w1 = ra_nn_params_add (q.p, "l1.w", 2, ws);
  q.b1 = ra_nn_params_add (q.p, "l1.b", 1, bs);
  ra_error_t err;
  if (ra_nn_params_alloc (q.p, &err) != RA_OK) {
    fprintf (stderr, "%s:%d: %s\n", __FILE__, __LINE__, err.message);
    return 1;
  }
  ra_nn_params_init (q.p, 1.0f);
  size_t n = (size_t) q.P * q.B * q.W;
  q.x = ra_nn_alloc (be, n), q.h = ra_nn_alloc (be, n), q.y = ra_nn_alloc (be, n);
  q.dy = ra_nn_alloc (be, n), q.dh = ra_nn_alloc (be, n);
  float *hx = malloc (sizeof (float) * n);
  ra_nn_rng_t rng;
  ra_nn_rng_init (&rng, 4, 0);
  for (size_t i = 0; i < n; i++)
    hx[i] = ra_nn_rng_uniform (&rng) - 0.5f;
  ra_nn_upload (be, q.x, hx, n);
  ra_nn_upload (be, q.dy, hx, n);
  free (hx);
  double flops = 5.0 * 2.0 * q.P * q.B * (double) q.W * q.W;
  double t_gemm, t_step;
  s_time_pair (be, s_pop_gemms, &q, s_pop_step, &q, repeats, 5, &t_gemm, &t_step);
  double g_gemm = flops / t_gemm * 1e-9, g_step = flops / t_step * 1e-9;
  *ratio = g_step / g_gemm;
  printf ("%-58s %10.1f %10.3f\n", "cuBLAS strided-batched sgemm, same GEMMs (64 x 1024x256x256)", g_gemm, t_gemm * 1e3);
  printf ("%-58s %10.1f %10.3f\n", "batched path fwd+bwd+Adam (64 nets x 1024 rows x 256)", g_step, t_step * 1e3);
  printf ("%-58s %10.2f %10s   budget >= 0.40: %s\n", "ratio", *ratio, "", *ratio >= 0.40 ? "PASS" : "FAIL");
  void *bufs[] = { q.x, q.h, q.y, q.dy, q.dh };
  for (int i = 0; i < 5; i++)
    ra_nn_free (be, bufs[i]);
  ra_nn_params_destroy (&q.p);
  return 0;
}

/* ------------------------------------------------------------------ GPU: graph vs eager */

static void s_launch (void *g) { ra_nn_graph_launch (g); }

/* Eager vs CUDA-graph replay of one scorer update (fwd + bwd + Adam) of U users x 20 candidates,
   du = dc = d features, two hidden layers of width w. Prints both times; *t_graph in seconds. */
static int s_bench_graph (ra_nn_backend_t *be, int repeats, int U, int d, int w, int inner,
                          double *t_graph, double *speedup)
{
  s_scorer_bench_t b = { .be = be, .U = U };
  ra_nn_scorer_cfg_t cfg = { .du = d, .dc = d, .nhidden = 2, .hidden = { w, w }, .max_users = U, .cands = 20 };
  ra_error_t err;
  if (ra_nn_scorer_new (be, &cfg, 1, 1, &b.s, &err) != RA_OK) {
    fprintf (stderr, "%s:%d: %s\n", __FILE__, __LINE__, err.message);
    return 1;
  }
  b.user = ra_nn_alloc (be, (size_t) U * d);
  b.cand = ra_nn_alloc (be, (size_t) U * 20 * d);
  b.dscores = ra_nn_alloc (be, (size_t) U * 20);
  s_scorer_step (&b); /* warm-up: allocates Adam moments */
  ra_nn_graph_t *g = NULL;
  if (ra_nn_graph_capture (be, s_scorer_step, &b, &g, &err) != RA_OK) {
    fprintf (stderr, "%s:%d: %s\n", __FILE__, __LINE__, err.message);
    return 1;
  }
  double t_eager;
  s_time_pair (be, s_scorer_step, &b, s_launch, g, repeats, inner, &t_eager, t_graph);
  *speedup = t_eager / *t_graph;
  char label[96];
  snprintf (label, sizeof label, "scorer update (%d users x 20 cands, 2 x %d) eager", U, w);
  printf ("%-58s %10s %10.4f\n", label, "", t_eager * 1e3);
  printf ("%-58s %10s %10.4f\n", "same update, CUDA graph replay", "", *t_graph * 1e3);
  ra_nn_graph_destroy (&g);
  ra_nn_free (be, b.user), ra_nn_free (be, b.cand), ra_nn_free (be, b.dscores);
  ra_nn_scorer_destroy (&b.s);
  return 0;
}

int main (int argc, char **argv)
{
  int repeats = 15;
  bool check = false, gpu_scorer = false;
  for (int i = 1; i < argc; i++) {
    long long x;
    ra_error_t err;
    if (strcmp (argv[i], "--repeats") == 0 && i + 1 < argc) {
      if (ra_kv_parse_int ("--repeats", argv[++i], 1, 1000, &x, &err) != RA_OK) {
        fprintf (stderr, "%s\n", err.message);
        return 2;
      }
      repeats = (int) x;
    } else if (strcmp (argv[i], "--check") == 0)
      check = true;
    else if (strcmp (argv[i], "--gpu-scorer") == 0)
      gpu_scorer = true;
    else {
      fprintf (stderr, "usage: %s [--repeats N] [--check] [--gpu-scorer]\n", argv[0]);
      return 2;
    }
  }
  if (repeats < 1)
    repeats = 1;
  ra_error_t err;
  ra_nn_backend_t *cpu = NULL, *gpu = NULL;
  if (ra_nn_backend_open ("cpu", NULL, &cpu, &err) != RA_OK) {
    fprintf (stderr, "%s:%d: %s\n", __FILE__, __LINE__, err.message);
    return 1;
  }
  const char *thr = getenv ("RA_NN_BLAS_THREADS");
  printf ("bench_nn: medians of %d repeats; OpenBLAS threads %s\n", repeats, thr ? thr : "1");
  printf ("%-58s %10s %10s\n", "case", "GFLOP/s", "ms/step");
  double r_cpu = 0, r_pop = 1, r_graph = 2;
  int rc = gpu_scorer ? 0 : s_bench_scorer (cpu, "cpu", repeats, &r_cpu);
  bool ok = gpu_scorer || r_cpu >= 0.60;
  if (ra_nn_backend_open ("cuda", NULL, &gpu, &err) == RA_OK) {
    double t_small, t_full, r_full, r_gemm;
    if (!gpu_scorer) {
      rc |= s_bench_population (gpu, repeats, &r_pop);
      rc |= s_bench_graph (gpu, repeats, 16, 16, 64, 50, &t_small, &r_graph);
      printf ("%-58s %10.2f %10s   budget >= 1.5x: %s\n", "speedup", r_graph, "", r_graph >= 1.5 ? "PASS" : "FAIL");
      rc |= s_bench_scorer (gpu, "cuda", repeats, &r_gemm);
    }
    rc |= s_bench_graph (gpu, repeats, 256, 128, 256, 20, &t_full, &r_full);
    printf ("%-58s %10.2f %10.1f   budget <= 150 us: %s\n", "speedup; graph us/step", r_full, t_full * 1e6,
            t_full <= 150e-6 ? "PASS" : "FAIL");
    ok = ok && r_pop >= 0.40 && r_graph >= 1.5 && t_full <= 150e-6;
    ra_nn_backend_t *tf32 = NULL;
    ra_nn_backend_opts_t to = { .allow_tf32 = true };
    if (!gpu_scorer && ra_nn_backend_open ("cuda", &to, &tf32, &err) == RA_OK) {
      double t_tf32, r_tf32;
      printf ("the same with TF32 tensor cores (opts.allow_tf32, ~1e-3 relative error; the budget is fp32's):\n");
      rc |= s_bench_graph (tf32, repeats, 256, 128, 256, 20, &t_tf32, &r_tf32);
      printf ("%-58s %10.2f %10.1f\n", "speedup; graph us/step (TF32)", r_tf32, t_tf32 * 1e6);
      ra_nn_backend_destroy (&tf32);
    }
    if (ra_nn_backend_status (gpu, &err) != RA_OK) {
      fprintf (stderr, "%s:%d: %s\n", __FILE__, __LINE__, err.message);
      rc = 1;
    }
  } else {
    printf ("GPU cases skipped: %s\n", err.message);
  }
  ra_nn_backend_destroy (&gpu);
  ra_nn_backend_destroy (&cpu);
  if (rc)
    return 1;
  return check && !ok ? 1 : 0;
}
