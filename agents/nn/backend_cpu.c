/*  agents/nn/backend_cpu.c - the cpu backend: OpenBLAS sgemm plus plain loops.

    Owns nothing but its thread-count setting; "device" memory is host memory (calloc).
    OpenBLAS threads are pinned at open (process-wide: OpenBLAS has one pool). Reductions run in
    a fixed order, so results are bit-reproducible for a fixed thread count.                   */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agents/nn/backend.h"
#include "agents/nn/slate_int.h"

static void s_destroy (void *ctx) { (void) ctx; }
static void *s_alloc (void *ctx, size_t bytes) { (void) ctx; return calloc (1, bytes ? bytes : 1); }
static void s_free (void *ctx, void *p) { (void) ctx; free (p); }
static void s_memcpy (void *ctx, void *dst, const void *src, size_t bytes)
{
  (void) ctx;
  if (bytes && dst != src)
    memmove (dst, src, bytes);
}
static void s_memcpy_rows (void *ctx, void *dst, size_t dst_pitch, const void *src, size_t src_pitch,
                           size_t row_bytes, size_t rows)
{
  for (size_t i = 0; i < rows; i++)
    s_memcpy (ctx, (char *) dst + i * dst_pitch, (const char *) src + i * src_pitch, row_bytes);
}
static void s_zero (void *ctx, void *p, size_t bytes) { (void) ctx; if (bytes) memset (p, 0, bytes); }
static void s_sync (void *ctx) { (void) ctx; }

/* Shapes with one output column (a score or value head) or a rank-1 product go to sgemv or a
   plain loop: sgemm would pack whole operands (and zero C first when beta = 0) to feed a micro-
   kernel that is mostly padding at width 1. The per-replica results do not depend on how many
   replicas are in the batch. */
static bool s_gemm_thin (bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
                         const float *B, int ldb, float beta, float *C, int ldc)
{
  if (N == 1 && !ta && tb) { /* C[M, 1] = alpha A[M, K] b + beta C, b = B[0, :K] */
    cblas_sgemv (CblasRowMajor, CblasNoTrans, M, K, alpha, A, lda, B, 1, beta, C, ldc);
    return true;
  }
  if (M == 1 && ta && !tb) { /* C[1, N] = alpha a^T B[K, N] + beta C, a = A[:K, 0] (stride lda) */
    cblas_sgemv (CblasRowMajor, CblasTrans, K, N, alpha, B, ldb, A, lda, beta, C, 1);
    return true;
  }
  if (K == 1 && !ta && !tb && beta == 0.0f) { /* C[M, N] = alpha a b^T: a = A[:, 0], b = B[0, :] */
    for (int m = 0; m < M; m++) {
      float am = alpha * A[(size_t) m * lda];
      float *c = C + (size_t) m * ldc;
      for (int n = 0; n < N; n++)
        c[n] = am * B[n];
    }
    return true;
  }
  return false;
}

static void s_gemm (void *ctx, bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
                    long long sA, const float *B, int ldb, long long sB, float beta, float *C, int ldc,
                    long long sC, int batch)
{
  (void) ctx;
  for (int i = 0; i < batch; i++) {
    if (s_gemm_thin (ta, tb, M, N, K, alpha, A + i * sA, lda, B + i * sB, ldb, beta, C + i * sC, ldc))
      continue;
    cblas_sgemm (CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
                 alpha, A + i * sA, lda, B + i * sB, ldb, beta, C + i * sC, ldc);
  }
}

static void s_bias_fill (void *ctx, float *y, const float *u, const float *bias, int P, int R, int C, int F,
                         size_t ystride, size_t ustride, size_t bstride)
{
  (void) ctx;
  for (int p = 0; p < P; p++) {
    const float *bp = bias + p * bstride;
    for (int r = 0; r < R; r++) {
      const float *ur = u ? u + p * ustride + (size_t) r * F : NULL;
      for (int c = 0; c < C; c++) {
        float *row = y + p * ystride + ((size_t) r * C + c) * F;
        if (ur)
          for (int f = 0; f < F; f++)
            row[f] = ur[f] + bp[f];
        else
          memcpy (row, bp, sizeof (float) * F);
      }
    }
  }
}

static void s_bias_grad (void *ctx, float *dbias, const float *dy, int P, int B, int F, size_t bstride,
                         size_t dystride)
{
  (void) ctx;
  for (int p = 0; p < P; p++) {
    float *db = dbias + p * bstride;
    for (int b = 0; b < B; b++) {
      const float *row = dy + p * dystride + (size_t) b * F;
      for (int f = 0; f < F; f++)
        db[f] += row[f];
    }
  }
}

static void s_group_sum (void *ctx, const float *dy, float *out, int P, int R, int C, int F, size_t dystride,
                         size_t ostride)
{
  (void) ctx;
  for (int p = 0; p < P; p++)
    for (int r = 0; r < R; r++) {
      float *o = out + p * ostride + (size_t) r * F;
      const float *d = dy + p * dystride + (size_t) r * C * F;
      memcpy (o, d, sizeof (float) * F);
      for (int c = 1; c < C; c++)
        for (int f = 0; f < F; f++)
          o[f] += d[(size_t) c * F + f];
    }
}

/* The ReLU loops run in place in the scorer (x == y, dy == dx). A loop that reads one pointer and
   writes another which may alias it is not vectorised by the compiler (its runtime overlap check
   fails for equal pointers and the scalar, branchy fallback runs: that loop was a fifth of
   recarena-target's time). The in-place case therefore gets its own single-pointer loop. Both
   forms compute exactly the same selection (x > 0 ? x : +0, NaN -> +0), so results are unchanged. */
static void s_relu_fwd1 (const float *x, float *y, size_t n)
{
  if (x == y) {
    for (size_t i = 0; i < n; i++)
      y[i] = y[i] > 0.0f ? y[i] : 0.0f;
    return;
  }
  const float *restrict xr = x;
  float *restrict yr = y;
  for (size_t i = 0; i < n; i++)
    yr[i] = xr[i] > 0.0f ? xr[i] : 0.0f;
}
static void s_relu_bwd1 (const float *y, const float *dy, float *dx, size_t n)
{
  if (dy == dx) {
    for (size_t i = 0; i < n; i++)
      dx[i] = y[i] > 0.0f ? dx[i] : 0.0f;
    return;
  }
  const float *restrict dyr = dy;
  float *restrict dxr = dx;
  for (size_t i = 0; i < n; i++) {
    float d = dyr[i]; /* loaded unconditionally, so the select needs no branch */
    dxr[i] = y[i] > 0.0f ? d : 0.0f;
  }
}
static void s_tanh_fwd1 (const float *x, float *y, size_t n)
{
  for (size_t i = 0; i < n; i++)
    y[i] = tanhf (x[i]);
}
static void s_tanh_bwd1 (const float *y, const float *dy, float *dx, size_t n)
{
  for (size_t i = 0; i < n; i++)
    dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}
/* the P blocks of the activation ops, one after the other */
static void s_blocks_fwd (void (*f) (const float *, float *, size_t), const float *x, float *y, int P, size_t n,
                          size_t stride)
{
  for (size_t p = 0; p < (size_t) P; p++)
    f (x + p * stride, y + p * stride, n);
}
static void s_blocks_bwd (void (*f) (const float *, const float *, float *, size_t), const float *y, const float *dy,
                          float *dx, int P, size_t n, size_t stride)
{
  for (size_t p = 0; p < (size_t) P; p++)
    f (y + p * stride, dy + p * stride, dx + p * stride, n);
}
static void s_relu_fwd (void *ctx, const float *x, float *y, int P, size_t n, size_t stride)
{
  (void) ctx;
  s_blocks_fwd (s_relu_fwd1, x, y, P, n, stride);
}
static void s_relu_bwd (void *ctx, const float *y, const float *dy, float *dx, int P, size_t n, size_t stride)
{
  (void) ctx;
  s_blocks_bwd (s_relu_bwd1, y, dy, dx, P, n, stride);
}
static void s_tanh_fwd (void *ctx, const float *x, float *y, int P, size_t n, size_t stride)
{
  (void) ctx;
  s_blocks_fwd (s_tanh_fwd1, x, y, P, n, stride);
}
static void s_tanh_bwd (void *ctx, const float *y, const float *dy, float *dx, int P, size_t n, size_t stride)
{
  (void) ctx;
  s_blocks_bwd (s_tanh_bwd1, y, dy, dx, P, n, stride);
}

static void s_ln_fwd (void *ctx, const float *x, const float *g, const float *b, float *y, float *mean,
                      float *rstd, int P, int B, int D, size_t pstride)
{
  (void) ctx;
  for (int p = 0; p < P; p++)
    for (int r = 0; r < B; r++) {
      size_t row = (size_t) p * B + r;
      const float *xr = x + row * D;
      float *yr = y + row * D;
      float s = 0.0f;
      for (int i = 0; i < D; i++)
        s += xr[i];
      float mu = s / D, v = 0.0f;
      for (int i = 0; i < D; i++)
        v += (xr[i] - mu) * (xr[i] - mu);
      float rs = 1.0f / sqrtf (v / D + 1e-5f);
      const float *gp = g + p * pstride, *bp = b + p * pstride;
      for (int i = 0; i < D; i++)
        yr[i] = (xr[i] - mu) * rs * gp[i] + bp[i];
      mean[row] = mu;
      rstd[row] = rs;
    }
}

static void s_ln_bwd (void *ctx, const float *x, const float *g, const float *mean, const float *rstd,
                      const float *dy, float *dx, float *dg, float *db, int P, int B, int D, size_t pstride)
{
  (void) ctx;
  for (int p = 0; p < P; p++)
    for (int r = 0; r < B; r++) {
      size_t row = (size_t) p * B + r;
      const float *xr = x + row * D, *dyr = dy + row * D, *gp = g + p * pstride;
      float *dxr = dx + row * D, *dgp = dg + p * pstride, *dbp = db + p * pstride;
      float mu = mean[row], rs = rstd[row];
      float sum_dn = 0.0f, sum_dn_n = 0.0f; /* dn = dy*g, n = normalized x */
      for (int i = 0; i < D; i++) {
        float n = (xr[i] - mu) * rs, dn = dyr[i] * gp[i];
        sum_dn += dn;
        sum_dn_n += dn * n;
        dgp[i] += dyr[i] * n;
        dbp[i] += dyr[i];
      }
      for (int i = 0; i < D; i++) {
        float n = (xr[i] - mu) * rs, dn = dyr[i] * gp[i];
        dxr[i] = rs * (dn - sum_dn / D - n * sum_dn_n / D);
      }
    }
}

static void s_softmax_fwd (void *ctx, const float *x, float *y, int R, int C, bool log)
{
  (void) ctx;
  for (int r = 0; r < R; r++) {
    const float *xr = x + (size_t) r * C;
    float *yr = y + (size_t) r * C;
    float mx = xr[0];
    for (int c = 1; c < C; c++)
      mx = xr[c] > mx ? xr[c] : mx;
    float s = 0.0f;
    for (int c = 0; c < C; c++)
      s += expf (xr[c] - mx);
    if (log) {
      float ls = logf (s);
      for (int c = 0; c < C; c++)
        yr[c] = xr[c] - mx - ls;
    } else {
      float inv = 1.0f / s;
      for (int c = 0; c < C; c++)
        yr[c] = expf (xr[c] - mx) * inv;
    }
  }
}

static void s_softmax_bwd (void *ctx, const float *y, const float *dy, float *dx, int R, int C, bool log)
{
  (void) ctx;
  for (int r = 0; r < R; r++) {
    const float *yr = y + (size_t) r * C, *dyr = dy + (size_t) r * C;
    float *dxr = dx + (size_t) r * C;
    float s = 0.0f;
    if (log) {
      for (int c = 0; c < C; c++)
        s += dyr[c];
      for (int c = 0; c < C; c++)
        dxr[c] = dyr[c] - expf (yr[c]) * s;
    } else {
      for (int c = 0; c < C; c++)
        s += dyr[c] * yr[c];
      for (int c = 0; c < C; c++)
        dxr[c] = yr[c] * (dyr[c] - s);
    }
  }
}

static void s_pairs_fwd (void *ctx, const float *user, const float *cand, float *out, int R, int C, int du,
                         int dc)
{
  (void) ctx;
  int w = du + dc;
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) {
      float *o = out + ((size_t) r * C + c) * w;
      memcpy (o, user + (size_t) r * du, sizeof (float) * du);
      memcpy (o + du, cand + ((size_t) r * C + c) * dc, sizeof (float) * dc);
    }
}

static void s_pairs_bwd (void *ctx, const float *dout, float *duser, float *dcand, int R, int C, int du,
                         int dc)
{
  (void) ctx;
  int w = du + dc;
  for (int r = 0; r < R; r++) {
    if (duser) {
      float *du_r = duser + (size_t) r * du;
      memset (du_r, 0, sizeof (float) * du);
      for (int c = 0; c < C; c++) {
        const float *o = dout + ((size_t) r * C + c) * w;
        for (int i = 0; i < du; i++)
          du_r[i] += o[i];
      }
    }
    if (dcand)
      for (int c = 0; c < C; c++)
        memcpy (dcand + ((size_t) r * C + c) * dc, dout + ((size_t) r * C + c) * w + du, sizeof (float) * dc);
  }
}

static void s_pg_fwd (void *ctx, const float *logp, const int32_t *act, const float *adv, float *loss, int P,
                      int U, int C)
{
  (void) ctx;
  for (int p = 0; p < P; p++) {
    float s = 0.0f;
    for (int u = 0; u < U; u++) {
      size_t row = (size_t) p * U + u;
      s += adv[row] * logp[row * C + act[row]];
    }
    loss[p] = -s / U;
  }
}

static void s_pg_bwd (void *ctx, const int32_t *act, const float *adv, float *dlogp, float scale, bool acc,
                      int P, int U, int C)
{
  (void) ctx;
  if (!acc)
    memset (dlogp, 0, sizeof (float) * P * U * C);
  for (size_t row = 0; row < (size_t) P * U; row++)
    dlogp[row * C + act[row]] += -scale * adv[row] / U;
}

static void s_ent_fwd (void *ctx, const float *logp, float *loss, int P, int U, int C)
{
  (void) ctx;
  for (int p = 0; p < P; p++) {
    float s = 0.0f;
    for (int u = 0; u < U; u++) {
      const float *l = logp + ((size_t) p * U + u) * C;
      for (int c = 0; c < C; c++)
        s += expf (l[c]) * l[c];
    }
    loss[p] = -s / U;
  }
}

/* dH/dl_c = -(1/U) p_c (l_c + 1), p = exp(l) */
static void s_ent_bwd (void *ctx, const float *logp, float *dlogp, float scale, bool acc, int P, int U, int C)
{
  (void) ctx;
  size_t n = (size_t) P * U * C;
  for (size_t i = 0; i < n; i++) {
    float d = -scale * expf (logp[i]) * (logp[i] + 1.0f) / U;
    dlogp[i] = acc ? dlogp[i] + d : d;
  }
}

static void s_mse_fwd (void *ctx, const float *v, const float *t, float *loss, int P, int U)
{
  (void) ctx;
  for (int p = 0; p < P; p++) {
    float s = 0.0f;
    for (int u = 0; u < U; u++) {
      float d = v[(size_t) p * U + u] - t[(size_t) p * U + u];
      s += d * d;
    }
    loss[p] = s / U;
  }
}

static void s_mse_bwd (void *ctx, const float *v, const float *t, float *dv, float scale, bool acc, int P, int U)
{
  (void) ctx;
  for (size_t i = 0; i < (size_t) P * U; i++) {
    float d = scale * 2.0f * (v[i] - t[i]) / U;
    dv[i] = acc ? dv[i] + d : d;
  }
}

/* ------------------------------------------------------------------ slates and advantages */

static void s_slate (void *ctx, const float *scores, int P, size_t pstride, int R, int K, int k, bool greedy,
                     const ra_nn_rng_t *rng, int32_t *slates)
{
  (void) ctx;
  for (int p = 0; p < P; p++)
    for (int r = 0; r < R; r++) {
      size_t row = (size_t) p * pstride + (size_t) r;
      ra__nn_slate_row (scores + row * K, K, k, greedy, rng[p].seed, rng[p].stream, rng[p].counter, (uint64_t) r,
                        slates + row * k);
    }
}

static void s_pl_fwd (void *ctx, const float *scores, const int32_t *slates, int R, int K, int k, float *logp,
                      float *ent)
{
  (void) ctx;
  for (int r = 0; r < R; r++) {
    double lp, h;
    ra__nn_pl_row (scores + (size_t) r * K, slates + (size_t) r * k, K, k, &lp, &h, 0, NULL, 0, NULL);
    if (logp)
      logp[r] = (float) lp;
    if (ent)
      ent[r] = (float) h;
  }
}

static void s_pl_bwd (void *ctx, const float *scores, const int32_t *slates, int R, int K, int k,
                      const float *coef, const float *pos_coef, float ent_coef, float *dscores, bool acc)
{
  (void) ctx;
  if (!acc)
    memset (dscores, 0, sizeof (float) * (size_t) R * K);
  for (int r = 0; r < R; r++)
    ra__nn_pl_row (scores + (size_t) r * K, slates + (size_t) r * k, K, k, NULL, NULL, coef[r],
                   pos_coef ? pos_coef + (size_t) r * k : NULL, ent_coef, dscores + (size_t) r * K);
}

/* delta_t = r_t + gamma (1 - d_t) V_{t+1} - V_t; A_t = delta_t + gamma lambda (1 - d_t) A_{t+1} */
static void s_gae (void *ctx, const float *reward, const uint8_t *done, const float *values, int P, int T, int N,
                   float gamma, float lambda, float *adv, float *ret)
{
  (void) ctx;
  for (int p = 0; p < P; p++) {
    size_t o = (size_t) p * T * N, ov = (size_t) p * (T + 1) * N;
    for (int i = 0; i < N; i++) {
      double a = 0;
      for (int t = T - 1; t >= 0; t--) {
        size_t x = (size_t) t * N + i;
        double keep = done[o + x] ? 0.0 : 1.0;
        double delta = reward[o + x] + gamma * keep * values[ov + x + N] - values[ov + x];
        a = delta + gamma * lambda * keep * a;
        adv[o + x] = (float) a;
        ret[o + x] = (float) (a + values[ov + x]);
      }
    }
  }
}

static void s_normalize (void *ctx, float *x, int P, size_t n)
{
  (void) ctx;
  for (int p = 0; p < P && n > 0; p++) {
    float *xp = x + (size_t) p * n;
    double s1 = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
      s1 += xp[i];
      s2 += (double) xp[i] * xp[i];
    }
    double mean = s1 / (double) n, sd = sqrt (fmax (s2 / (double) n - mean * mean, 0.0)) + 1e-8;
    for (size_t i = 0; i < n; i++)
      xp[i] = (float) ((xp[i] - mean) / sd);
  }
}

/* Two passes: chunk partials (in double), then partials summed in chunk order. */
static void s_sumsq (void *ctx, const float *x, size_t n, int P, size_t stride, float *out)
{
  (void) ctx;
  for (int p = 0; p < P; p++) {
    const float *xp = x + p * stride;
    double total = 0.0;
    for (size_t c0 = 0; c0 < n; c0 += RA__NN_SUMSQ_CHUNK) {
      size_t c1 = c0 + RA__NN_SUMSQ_CHUNK < n ? c0 + RA__NN_SUMSQ_CHUNK : n;
      double part = 0.0;
      for (size_t i = c0; i < c1; i++)
        part += (double) xp[i] * xp[i];
      total += part;
    }
    out[p] = (float) total;
  }
}

static void s_clip_apply (void *ctx, float *x, size_t n, int P, size_t stride, const float *ss, float max_norm)
{
  (void) ctx;
  for (int p = 0; p < P; p++) {
    float norm = sqrtf (ss[p]);
    float s = max_norm / (norm + 1e-6f);
    if (s >= 1.0f)
      continue;
    float *xp = x + p * stride;
    for (size_t i = 0; i < n; i++)
      xp[i] *= s;
  }
}

static void s_axpy (void *ctx, float *y, float a, const float *x, size_t n)
{
  (void) ctx;
  for (size_t i = 0; i < n; i++)
    y[i] += a * x[i];
}
static void s_scale (void *ctx, float *x, float a, size_t n)
{
  (void) ctx;
  for (size_t i = 0; i < n; i++)
    x[i] *= a;
}

static void s_scale_rows (void *ctx, float *x, const float *g, int P, int R, int K, size_t pitch)
{
  (void) ctx;
  for (size_t p = 0; p < (size_t) P; p++)
    for (size_t r = p * pitch; r < p * pitch + (size_t) R; r++)
      for (size_t j = 0; j < (size_t) K; j++)
        x[r * (size_t) K + j] *= g[r];
}

static void s_adam (void *ctx, float *w, const float *g, float *m, float *v, size_t n, int P, size_t stride,
                    int32_t *step, const float *lr_scale, float lr, float b1, float b2, float eps, float wd)
{
  (void) ctx;
  for (int p = 0; p < P; p++) {
    int t = ++step[p];
    float bc1 = 1.0f - powf (b1, (float) t), bc2 = 1.0f - powf (b2, (float) t);
    float lrp = lr * lr_scale[p];
    float *wp = w + p * stride, *mp = m + p * stride, *vp = v + p * stride;
    const float *gp = g + p * stride;
    for (size_t i = 0; i < n; i++) {
      mp[i] = b1 * mp[i] + (1.0f - b1) * gp[i];
      vp[i] = b2 * vp[i] + (1.0f - b2) * gp[i] * gp[i];
      float mh = mp[i] / bc1, vh = vp[i] / bc2;
      wp[i] -= lrp * (mh / (sqrtf (vh) + eps) + wd * wp[i]);
    }
  }
}

static const ra__nn_ops_t s_ops = {
  .name = "cpu", .destroy = s_destroy, .alloc = s_alloc, .free = s_free, .upload = s_memcpy, .host_alloc = s_alloc, .host_free = s_free, .upload_async = s_memcpy,
  .upload_rows_async = s_memcpy_rows, .download = s_memcpy, .copy = s_memcpy, .zero = s_zero, .sync = s_sync, .gemm = s_gemm,
  .bias_fill = s_bias_fill, .bias_grad = s_bias_grad, .group_sum = s_group_sum, .relu_fwd = s_relu_fwd, .relu_bwd = s_relu_bwd,
  .tanh_fwd = s_tanh_fwd, .tanh_bwd = s_tanh_bwd, .ln_fwd = s_ln_fwd, .ln_bwd = s_ln_bwd,
  .softmax_fwd = s_softmax_fwd, .softmax_bwd = s_softmax_bwd, .pairs_fwd = s_pairs_fwd,
  .pairs_bwd = s_pairs_bwd, .pg_fwd = s_pg_fwd, .pg_bwd = s_pg_bwd, .ent_fwd = s_ent_fwd,
  .ent_bwd = s_ent_bwd, .mse_fwd = s_mse_fwd, .mse_bwd = s_mse_bwd, .sumsq = s_sumsq,
  .clip_apply = s_clip_apply, .slate = s_slate, .pl_fwd = s_pl_fwd, .pl_bwd = s_pl_bwd, .gae = s_gae,
  .normalize = s_normalize, .axpy = s_axpy, .scale = s_scale, .scale_rows = s_scale_rows, .adam = s_adam,
  .graph_begin = NULL, .graph_end = NULL, .graph_launch = NULL, .graph_destroy = NULL,
};

ra_err_t ra__nn_cpu_open (int blas_threads, const ra__nn_ops_t **ops, void **ctx, ra_error_t *err)
{
  (void) err;
  if (blas_threads <= 0) {
    const char *env = getenv ("RA_NN_BLAS_THREADS");
    blas_threads = env ? atoi (env) : 1;
    if (blas_threads <= 0)
      blas_threads = 1;
  }
  openblas_set_num_threads (blas_threads);
  *ops = &s_ops;
  *ctx = NULL;
  return RA_OK;
}
