/*  tests/nn/check_backend.c - runs every nn op on a backend and on the double reference.

    Shared by test_nn (cpu) and test_nn_cuda (cuda). Inputs are random (fixed seed); each op's
    error is max|backend - reference| / max|reference| over its outputs and gradients.          */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agents/nn/nn.h"
#include "agents/nn/nn_ref.h"
#include "tests/nn/check_backend.h"

typedef struct {
  ra_nn_backend_t *be;
  ra_nn_rng_t rng;
  nn_check_t *out;
  int n, max;
} s_ctx_t;

static double *s_rand (s_ctx_t *c, size_t n, double lo, double hi)
{
  double *h = malloc (sizeof (double) * (n ? n : 1));
  for (size_t i = 0; i < n; i++)
    h[i] = (double) (float) (lo + (hi - lo) * ra_nn_rng_uniform (&c->rng)); /* exactly representable */
  return h;
}

static float *s_up (s_ctx_t *c, const double *h, size_t n)
{
  float *f = malloc (sizeof (float) * (n ? n : 1));
  for (size_t i = 0; i < n; i++)
    f[i] = (float) h[i];
  float *d = ra_nn_alloc (c->be, n);
  ra_nn_upload (c->be, d, f, n);
  free (f);
  return d;
}

/* max|dev - ref| over n, normalised later */
static void s_cmp (const float *dev_or_host, s_ctx_t *c, const double *ref, size_t n, double *num, double *den)
{
  float *f = malloc (sizeof (float) * (n ? n : 1));
  ra_nn_download (c->be, f, dev_or_host, n);
  for (size_t i = 0; i < n; i++) {
    double d = fabs ((double) f[i] - ref[i]);
    if (!(d <= *num)) /* also catches NaN */
      *num = isnan (d) ? INFINITY : d;
    if (fabs (ref[i]) > *den)
      *den = fabs (ref[i]);
  }
  free (f);
}

static void s_report (s_ctx_t *c, const char *op, double num, double den)
{
  if (c->n < c->max) {
    c->out[c->n].op = op;
    c->out[c->n].err = num / (den > 0 ? den : 1.0);
    c->n++;
  }
}

/* Linear and layer norm with P = 2 replicas holding different parameters. */
static void s_check_params_ops (s_ctx_t *c)
{
  enum { P = 2, B = 7, IN = 33, OUT = 19 };
  ra_nn_params_t *p = ra_nn_params_new (c->be, P, 5);
  int w = ra_nn_params_add (p, "fc.w", 2, (int[]) { OUT, IN });
  int b = ra_nn_params_add (p, "fc.b", 1, (int[]) { OUT });
  int g = ra_nn_params_add (p, "ln.g", 1, (int[]) { OUT });
  int bb = ra_nn_params_add (p, "ln.b", 1, (int[]) { OUT });
  ra_nn_params_alloc (p, NULL);
  double *theta = s_rand (c, p->n * P, -0.5, 0.5);
  float *tmp = malloc (sizeof (float) * p->n * P);
  for (size_t i = 0; i < p->n * P; i++)
    tmp[i] = (float) theta[i];
  ra_nn_upload (c->be, p->data, tmp, p->n * P);
  double *x = s_rand (c, (size_t) P * B * IN, -1, 1), *dy = s_rand (c, (size_t) P * B * OUT, -1, 1);
  float *dx_ = s_up (c, x, (size_t) P * B * IN), *ddy = s_up (c, dy, (size_t) P * B * OUT);
  float *dyv = ra_nn_alloc (c->be, (size_t) P * B * OUT), *ddx = ra_nn_alloc (c->be, (size_t) P * B * IN);
  float *lny = ra_nn_alloc (c->be, (size_t) P * B * OUT), *lndx = ra_nn_alloc (c->be, (size_t) P * B * OUT);
  float *mean = ra_nn_alloc (c->be, (size_t) P * B), *rstd = ra_nn_alloc (c->be, (size_t) P * B);

  ra_nn_linear_forward (p, w, b, dx_, dyv, B);
  ra_nn_linear_backward (p, w, b, dx_, ddy, ddx, B);
  ra_nn_layernorm_forward (p, g, bb, dyv, lny, mean, rstd, B);
  ra_nn_layernorm_backward (p, g, bb, dyv, mean, rstd, ddy, lndx, B);

  double ny = 0, dny = 0, ndx = 0, dndx = 0, ngr = 0, dngr = 0, nln = 0, dnln = 0, nlnd = 0, dnlnd = 0, nlg = 0,
         dnlg = 0;
  double *y = calloc ((size_t) B * OUT, sizeof (double)), *rdx = calloc ((size_t) B * IN, sizeof (double));
  double *ly = calloc ((size_t) B * OUT, sizeof (double)), *ldx = calloc ((size_t) B * OUT, sizeof (double));
  double *gr = calloc (p->n, sizeof (double));
  for (int r = 0; r < P; r++) {
    const double *th = theta + (size_t) r * p->n;
    memset (gr, 0, sizeof (double) * p->n);
    const ra_nn_tensor_t *tw = &p->tensors[w], *tb = &p->tensors[b], *tg = &p->tensors[g], *tbb = &p->tensors[bb];
    const double *xr = x + (size_t) r * B * IN, *dyr = dy + (size_t) r * B * OUT;
    ra_nn_ref_linear_fwd (xr, th + tw->offset, th + tb->offset, y, B, IN, OUT);
    ra_nn_ref_linear_bwd (xr, th + tw->offset, dyr, rdx, gr + tw->offset, gr + tb->offset, B, IN, OUT);
    ra_nn_ref_ln_fwd (y, th + tg->offset, th + tbb->offset, ly, B, OUT);
    ra_nn_ref_ln_bwd (y, th + tg->offset, dyr, ldx, gr + tg->offset, gr + tbb->offset, B, OUT);
    s_cmp (dyv + (size_t) r * B * OUT, c, y, (size_t) B * OUT, &ny, &dny);
    s_cmp (ddx + (size_t) r * B * IN, c, rdx, (size_t) B * IN, &ndx, &dndx);
    s_cmp (p->grad + (size_t) r * p->n + tw->offset, c, gr + tw->offset, tb->offset + tb->numel - tw->offset, &ngr, &dngr);
    s_cmp (lny + (size_t) r * B * OUT, c, ly, (size_t) B * OUT, &nln, &dnln);
    s_cmp (lndx + (size_t) r * B * OUT, c, ldx, (size_t) B * OUT, &nlnd, &dnlnd);
    s_cmp (p->grad + (size_t) r * p->n + tg->offset, c, gr + tg->offset, p->n - tg->offset, &nlg, &dnlg);
  }
  s_report (c, "linear_forward", ny, dny);
  s_report (c, "linear_backward_dx", ndx, dndx);
  s_report (c, "linear_backward_dw_db", ngr, dngr);
  s_report (c, "layernorm_forward", nln, dnln);
  s_report (c, "layernorm_backward_dx", nlnd, dnlnd);
  s_report (c, "layernorm_backward_dg_db", nlg, dnlg);

  /* Adam, 3 steps on the linear grads, and clipping */
  double *m = calloc (p->n * P, sizeof (double)), *v = calloc (p->n * P, sizeof (double));
  double *rg = malloc (sizeof (double) * p->n * P);
  float *fg = malloc (sizeof (float) * p->n * P);
  ra_nn_download (c->be, fg, p->grad, p->n * P);
  for (size_t i = 0; i < p->n * P; i++)
    rg[i] = fg[i];
  ra_nn_adam_t cfg = { .lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f };
  for (int t = 1; t <= 3; t++) {
    ra_nn_adam_step (p, &cfg, NULL);
    ra_nn_ref_adam (theta, rg, m, v, (int) (p->n * P), t, 1e-2, 0.9, 0.999, 1e-8, 0.01);
  }
  double na = 0, dna = 0;
  s_cmp (p->data, c, theta, p->n * P, &na, &dna);
  s_report (c, "adam_step", na, dna);

  double nss = 0, dnss = 0, ss[P];
  for (int r = 0; r < P; r++)
    ss[r] = ra_nn_ref_sumsq (rg + (size_t) r * p->n, (int) p->n);
  ra_nn_clip_grad_norm (p, 0.5f, p->scratch + P); /* squared norms land in scratch[P..2P) */
  s_cmp (p->scratch + P, c, ss, P, &nss, &dnss);
  s_report (c, "sumsq", nss, dnss);
  for (int r = 0; r < P; r++) {
    double s = 0.5 / (sqrt (ss[r]) + 1e-6);
    for (size_t i = 0; s < 1 && i < p->n; i++)
      rg[(size_t) r * p->n + i] *= s;
  }
  double nc = 0, dnc = 0;
  s_cmp (p->grad, c, rg, p->n * P, &nc, &dnc);
  s_report (c, "clip_grad_norm", nc, dnc);

  /* SGD and scale: data -= 0.1 * grad, then data *= 0.5 */
  double *th2 = malloc (sizeof (double) * p->n * P);
  ra_nn_download (c->be, fg, p->data, p->n * P);
  for (size_t i = 0; i < p->n * P; i++)
    th2[i] = 0.5 * ((double) fg[i] - (double) 0.1f * rg[i]);
  ra_nn_sgd_step (p, 0.1f);
  ra_nn_scale (c->be, p->data, 0.5f, p->n * P);
  double ns = 0, dns = 0;
  s_cmp (p->data, c, th2, p->n * P, &ns, &dns);
  s_report (c, "sgd_step_and_scale", ns, dns);
  free (th2);

  free (m), free (v), free (rg), free (fg);
  free (y), free (rdx), free (ly), free (ldx), free (gr), free (theta), free (tmp), free (x), free (dy);
  ra_nn_free (c->be, dx_), ra_nn_free (c->be, ddy), ra_nn_free (c->be, dyv), ra_nn_free (c->be, ddx);
  ra_nn_free (c->be, lny), ra_nn_free (c->be, lndx), ra_nn_free (c->be, mean), ra_nn_free (c->be, rstd);
  ra_nn_params_destroy (&p);
}

static void s_check_elementwise (s_ctx_t *c)
{
  enum { R = 9, C = 13, DU = 5, DC = 6, N = R * C };
  double *x = s_rand (c, N, -2, 2), *dy = s_rand (c, N, -1, 1), *y = malloc (sizeof (double) * N),
         *dx = malloc (sizeof (double) * N);
  float *dvx = s_up (c, x, N), *dvdy = s_up (c, dy, N), *dvy = ra_nn_alloc (c->be, N), *dvdx = ra_nn_alloc (c->be, N);
  for (int k = 0; k < 4; k++) {
    double n1 = 0, d1 = 0, n2 = 0, d2 = 0;
    static const char *names[4][2] = { { "relu_forward", "relu_backward" }, { "tanh_forward", "tanh_backward" },
                                       { "softmax_forward", "softmax_backward" },
                                       { "log_softmax_forward", "log_softmax_backward" } };
    switch (k) {
    case 0:
      ra_nn_relu_forward (c->be, dvx, dvy, N), ra_nn_relu_backward (c->be, dvy, dvdy, dvdx, N);
      ra_nn_ref_relu_fwd (x, y, N), ra_nn_ref_relu_bwd (y, dy, dx, N);
      break;
    case 1:
      ra_nn_tanh_forward (c->be, dvx, dvy, N), ra_nn_tanh_backward (c->be, dvy, dvdy, dvdx, N);
      ra_nn_ref_tanh_fwd (x, y, N), ra_nn_ref_tanh_bwd (y, dy, dx, N);
      break;
    default:
      if (k == 2)
        ra_nn_softmax_forward (c->be, dvx, dvy, R, C), ra_nn_softmax_backward (c->be, dvy, dvdy, dvdx, R, C);
      else
        ra_nn_log_softmax_forward (c->be, dvx, dvy, R, C), ra_nn_log_softmax_backward (c->be, dvy, dvdy, dvdx, R, C);
      ra_nn_ref_softmax_fwd (x, y, R, C, k == 3), ra_nn_ref_softmax_bwd (y, dy, dx, R, C, k == 3);
    }
    s_cmp (dvy, c, y, N, &n1, &d1);
    s_cmp (dvdx, c, dx, N, &n2, &d2);
    s_report (c, names[k][0], n1, d1);
    s_report (c, names[k][1], n2, d2);
  }

  /* losses over logp = log_softmax(x): R rows = LP replicas x LU users, C candidates */
  enum { LP = 3, LU = R / LP };
  double *lp = malloc (sizeof (double) * N), *adv = s_rand (c, R, -1, 1), *t = s_rand (c, R, -1, 1);
  int32_t act[R];
  for (int i = 0; i < R; i++)
    act[i] = (int32_t) (ra_nn_rng_u64 (&c->rng) % C);
  ra_nn_ref_softmax_fwd (x, lp, R, C, true);
  float *dvlp = s_up (c, lp, N), *dvadv = s_up (c, adv, R), *dvt = s_up (c, t, R), *dvv = s_up (c, x, R);
  int32_t *dvact = (int32_t *) ra_nn_alloc (c->be, R);
  ra_nn_upload_bytes (c->be, dvact, act, sizeof act);
  float *loss = ra_nn_alloc (c->be, 3 * LP);
  double rl[3 * LP], n1 = 0, d1 = 0, n2 = 0, d2 = 0;
  ra_nn_pg_loss_forward (c->be, dvlp, dvact, dvadv, loss, LP, LU, C);
  ra_nn_entropy_forward (c->be, dvlp, loss + LP, LP, LU, C);
  ra_nn_mse_forward (c->be, dvv, dvt, loss + 2 * LP, LP, LU);
  double *tmp = malloc (sizeof (double) * N), *dx2 = malloc (sizeof (double) * N);
  for (int p = 0; p < LP; p++) {
    const double *lpp = lp + p * LU * C;
    rl[p] = ra_nn_ref_pg_fwd (lpp, act + p * LU, adv + p * LU, LU, C);
    rl[LP + p] = ra_nn_ref_entropy_fwd (lpp, LU, C);
    rl[2 * LP + p] = ra_nn_ref_mse_fwd (x + p * LU, t + p * LU, LU);
    /* combined gradient: 1.0 * pg + (-0.01) * entropy into one buffer (accumulate) */
    ra_nn_ref_pg_bwd (act + p * LU, adv + p * LU, dx + p * LU * C, 1.0, LU, C);
    ra_nn_ref_entropy_bwd (lpp, tmp + p * LU * C, -0.01, LU, C);
    ra_nn_ref_mse_bwd (x + p * LU, t + p * LU, dx2 + p * LU, 0.5, LU);
  }
  s_cmp (loss, c, rl, 3 * LP, &n1, &d1);
  s_report (c, "losses_forward", n1, d1);
  ra_nn_pg_loss_backward (c->be, dvact, dvadv, dvdx, 1.0f, false, LP, LU, C);
  ra_nn_entropy_backward (c->be, dvlp, dvdx, -0.01f, true, LP, LU, C);
  for (int i = 0; i < N; i++)
    dx[i] += tmp[i];
  s_cmp (dvdx, c, dx, N, &n2, &d2);
  s_report (c, "pg_entropy_backward", n2, d2);
  n2 = d2 = 0;
  ra_nn_mse_backward (c->be, dvv, dvt, dvdx, 0.5f, false, LP, LU);
  s_cmp (dvdx, c, dx2, R, &n2, &d2);
  s_report (c, "mse_backward", n2, d2);
  free (dx2);

  /* pairs */
  double *u = s_rand (c, R * DU, -1, 1), *cd = s_rand (c, R * C * DC, -1, 1);
  double *po = malloc (sizeof (double) * R * C * (DU + DC)), *pg = s_rand (c, R * C * (DU + DC), -1, 1);
  double *du = malloc (sizeof (double) * R * DU), *dcd = malloc (sizeof (double) * R * C * DC);
  float *dvu = s_up (c, u, R * DU), *dvc = s_up (c, cd, R * C * DC), *dvpg = s_up (c, pg, R * C * (DU + DC));
  float *dvpo = ra_nn_alloc (c->be, R * C * (DU + DC)), *dvdu = ra_nn_alloc (c->be, R * DU),
        *dvdc = ra_nn_alloc (c->be, R * C * DC);
  ra_nn_pairs_forward (c->be, dvu, dvc, dvpo, R, C, DU, DC);
  ra_nn_pairs_backward (c->be, dvpg, dvdu, dvdc, R, C, DU, DC);
  ra_nn_ref_pairs_fwd (u, cd, po, R, C, DU, DC);
  ra_nn_ref_pairs_bwd (pg, du, dcd, R, C, DU, DC);
  n1 = d1 = n2 = d2 = 0;
  s_cmp (dvpo, c, po, R * C * (DU + DC), &n1, &d1);
  s_report (c, "pairs_forward", n1, d1);
  s_cmp (dvdu, c, du, R * DU, &n2, &d2);
  s_cmp (dvdc, c, dcd, R * C * DC, &n2, &d2);
  s_report (c, "pairs_backward", n2, d2);

  free (x), free (dy), free (y), free (dx), free (lp), free (adv), free (t), free (tmp);
  free (u), free (cd), free (po), free (pg), free (du), free (dcd);
  float *devs[] = { dvx, dvdy, dvy, dvdx, dvlp, dvadv, dvt, dvv, (float *) dvact, loss,
                    dvu, dvc, dvpg, dvpo, dvdu, dvdc };
  for (size_t i = 0; i < sizeof devs / sizeof *devs; i++)
    ra_nn_free (c->be, devs[i]);
}

/* scale_rows on R of S rows per replica (P = 2): those rows times their factor, the rows between
   them untouched. */
static void s_check_scale_rows (s_ctx_t *c)
{
  enum { P = 2, S = 5, R = 3, K = 7, N = P * S * K };
  double *x = s_rand (c, N, -2, 2), *g = s_rand (c, P * S, 0, 1), *y = malloc (sizeof (double) * N);
  float *dvx = s_up (c, x, N), *dvg = s_up (c, g, P * S);
  for (int i = 0; i < N; i++) {
    int row = i / K;
    y[i] = row % S < R ? (double) (float) (x[i] * g[row]) : x[i];
  }
  ra_nn_scale_rows (c->be, dvx, dvg, P, R, K, S);
  double num = 0, den = 0;
  s_cmp (dvx, c, y, N, &num, &den);
  s_report (c, "scale_rows", num, den);
  free (x), free (g), free (y);
  ra_nn_free (c->be, dvx), ra_nn_free (c->be, dvg);
}

/* The affinity head on a strided slice (R of S users per replica, users xs apart), P = 2 replicas
   with different A, a: s[r, j] += c[r, j] . (A u_r + a) and dA, da against the formula in double. */
static void s_check_affinity (s_ctx_t *c)
{
  enum { P = 2, U = 5, F = 7, K = 6, R = 3, S = 5, XS = 4 };
  ra_nn_params_t *p = ra_nn_params_new (c->be, P, 5);
  int w = ra_nn_params_add (p, "a.w", 2, (int[]) { F, U }), b = ra_nn_params_add (p, "a.b", 1, (int[]) { F });
  ra_nn_params_alloc (p, NULL);
  double *theta = s_rand (c, p->n * P, -0.5, 0.5);
  float *d_theta = s_up (c, theta, p->n * P);
  ra_nn_copy (c->be, p->data, d_theta, p->n * P);
  double *u = s_rand (c, (size_t) P * XS * U, -1, 1), *cand = s_rand (c, (size_t) P * S * K * F, -1, 1);
  double *s0 = s_rand (c, (size_t) P * S * K, -1, 1), *ds = s_rand (c, (size_t) P * S * K, -1, 1);
  float *du = s_up (c, u, (size_t) P * XS * U), *dc = s_up (c, cand, (size_t) P * S * K * F);
  float *dsc = s_up (c, s0, (size_t) P * S * K), *dds = s_up (c, ds, (size_t) P * S * K);
  float *t = ra_nn_alloc (c->be, (size_t) P * R * F);
  ra_nn_affinity_forward (p, w, b, du, XS, dc, K, dsc, t, R, S);
  ra_nn_affinity_backward (p, w, b, du, XS, dc, K, dds, t, R, S);

  double ns = 0, dns = 0, ng = 0, dng = 0;
  double *rs = malloc (sizeof (double) * S * K), *rg = calloc (p->n, sizeof (double));
  for (int q = 0; q < P; q++) {
    const double *A = theta + (size_t) q * p->n + p->tensors[w].offset, *a = theta + (size_t) q * p->n + p->tensors[b].offset;
    double *gA = rg + p->tensors[w].offset, *ga = rg + p->tensors[b].offset;
    memset (rg, 0, sizeof (double) * p->n);
    memcpy (rs, s0 + (size_t) q * S * K, sizeof (double) * S * K); /* users R.. of the slice untouched */
    for (int r = 0; r < R; r++) {
      const double *ur = u + ((size_t) q * XS + r) * U;
      for (int j = 0; j < K; j++) {
        const double *cj = cand + (((size_t) q * S + r) * K + j) * F;
        double g = ds[((size_t) q * S + r) * K + j];
        for (int f = 0; f < F; f++) {
          double tf = a[f];
          for (int i = 0; i < U; i++)
            tf += A[f * U + i] * ur[i];
          rs[r * K + j] += cj[f] * tf;
          ga[f] += g * cj[f];
          for (int i = 0; i < U; i++)
            gA[f * U + i] += g * cj[f] * ur[i];
        }
      }
    }
    s_cmp (dsc + (size_t) q * S * K, c, rs, (size_t) S * K, &ns, &dns);
    s_cmp (p->grad + (size_t) q * p->n, c, rg, p->n, &ng, &dng);
  }
  s_report (c, "affinity_forward", ns, dns);
  s_report (c, "affinity_backward", ng, dng);
  double *host[] = { rs, rg, theta, u, cand, s0, ds };
  for (size_t i = 0; i < sizeof host / sizeof *host; i++)
    free (host[i]);
  float *dev[] = { d_theta, du, dc, dsc, dds, t };
  for (size_t i = 0; i < sizeof dev / sizeof *dev; i++)
    ra_nn_free (c->be, dev[i]);
  ra_nn_params_destroy (&p);
}

int nn_check_ops (ra_nn_backend_t *be, nn_check_t *out, int max)
{
  s_ctx_t c = { .be = be, .out = out, .max = max };
  ra_nn_rng_init (&c.rng, 1234, 99);
  s_check_params_ops (&c);
  s_check_elementwise (&c);
  s_check_scale_rows (&c);
  s_check_affinity (&c);
  return c.n;
}

/* P-replica scorer vs P scorers with one replica each, parameters copied replica by replica. */
double nn_check_batched_vs_separate (ra_nn_backend_t *be, int P)
{
  ra_nn_scorer_cfg_t cfg = { .du = 6, .dc = 10, .nhidden = 2, .hidden = { 24, 16 }, .act = RA_NN_ACT_TANH,
                             .max_users = 5, .cands = 7 };
  const int U = 5, C = 7;
  ra_nn_scorer_t *pop = NULL, *one = NULL;
  ra_nn_scorer_new (be, &cfg, P, 3, &pop, NULL);
  ra_nn_scorer_new (be, &cfg, 1, 3, &one, NULL);
  ra_nn_params_t *pp = pop->params;
  size_t n = pp->n;
  ra_nn_rng_t rng;
  ra_nn_rng_init (&rng, 77, 1);
  float *h = malloc (sizeof (float) * n * P);
  ra_nn_download (be, h, pp->data, n * P);
  for (size_t i = 0; i < n * P; i++) /* make the replicas differ */
    h[i] += 0.1f * (ra_nn_rng_uniform (&rng) - 0.5f);
  ra_nn_upload (be, pp->data, h, n * P);
  size_t nu = (size_t) P * U * cfg.du, nc = (size_t) P * U * C * cfg.dc, ns = (size_t) P * U * C;
  float *hu = malloc (sizeof (float) * nu), *hc = malloc (sizeof (float) * nc), *hd = malloc (sizeof (float) * ns);
  for (size_t i = 0; i < nu; i++)
    hu[i] = ra_nn_rng_uniform (&rng) * 2 - 1;
  for (size_t i = 0; i < nc; i++)
    hc[i] = ra_nn_rng_uniform (&rng) * 2 - 1;
  for (size_t i = 0; i < ns; i++)
    hd[i] = ra_nn_rng_uniform (&rng) * 2 - 1;
  float *du = ra_nn_alloc (be, nu), *dc = ra_nn_alloc (be, nc), *dd = ra_nn_alloc (be, ns);
  ra_nn_upload (be, du, hu, nu);
  ra_nn_upload (be, dc, hc, nc);
  ra_nn_upload (be, dd, hd, ns);
  const float *s = ra_nn_scorer_forward (pop, du, dc, U);
  ra_nn_scorer_backward (pop, dd);
  float *sp = malloc (sizeof (float) * ns), *gp = malloc (sizeof (float) * n * P);
  float *s1 = malloc (sizeof (float) * U * C), *g1 = malloc (sizeof (float) * n);
  ra_nn_download (be, sp, s, ns);
  ra_nn_download (be, gp, pp->grad, n * P);
  double worst = 0;
  for (int r = 0; r < P; r++) {
    ra_nn_params_copy_replica (one->params, 0, pp, r);
    ra_nn_params_zero_grad (one->params);
    const float *so = ra_nn_scorer_forward (one, du + (size_t) r * U * cfg.du, dc + (size_t) r * U * C * cfg.dc, U);
    ra_nn_scorer_backward (one, dd + (size_t) r * U * C);
    ra_nn_download (be, s1, so, (size_t) U * C);
    ra_nn_download (be, g1, one->params->grad, n);
    for (int i = 0; i < U * C; i++)
      worst = fmax (worst, fabs ((double) s1[i] - sp[(size_t) r * U * C + i]));
    for (size_t i = 0; i < n; i++)
      worst = fmax (worst, fabs ((double) g1[i] - gp[(size_t) r * n + i]));
  }
  free (h), free (hu), free (hc), free (hd), free (sp), free (gp), free (s1), free (g1);
  ra_nn_free (be, du), ra_nn_free (be, dc), ra_nn_free (be, dd);
  ra_nn_scorer_destroy (&pop);
  ra_nn_scorer_destroy (&one);
  return worst;
}
