/*  agents/nn/ref.c - naive double-precision reference of every nn op (see nn_ref.h).        */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "agents/nn/nn_ref.h"
#include "agents/nn/rng_int.h"

void ra_nn_ref_linear_fwd (const double *x, const double *w, const double *b, double *y, int B, int in, int out)
{
  for (int r = 0; r < B; r++)
    for (int o = 0; o < out; o++) {
      double s = b[o];
      for (int i = 0; i < in; i++)
        s += x[r * in + i] * w[o * in + i];
      y[r * out + o] = s;
    }
}

void ra_nn_ref_linear_bwd (const double *x, const double *w, const double *dy, double *dx, double *dw,
                           double *db, int B, int in, int out)
{
  for (int r = 0; r < B; r++)
    for (int o = 0; o < out; o++) {
      db[o] += dy[r * out + o];
      for (int i = 0; i < in; i++)
        dw[o * in + i] += dy[r * out + o] * x[r * in + i];
    }
  if (dx)
    for (int r = 0; r < B; r++)
      for (int i = 0; i < in; i++) {
        double s = 0.0;
        for (int o = 0; o < out; o++)
          s += dy[r * out + o] * w[o * in + i];
        dx[r * in + i] = s;
      }
}

void ra_nn_ref_relu_fwd (const double *x, double *y, int n)
{
  for (int i = 0; i < n; i++)
    y[i] = x[i] > 0 ? x[i] : 0;
}
void ra_nn_ref_relu_bwd (const double *y, const double *dy, double *dx, int n)
{
  for (int i = 0; i < n; i++)
    dx[i] = y[i] > 0 ? dy[i] : 0;
}
void ra_nn_ref_tanh_fwd (const double *x, double *y, int n)
{
  for (int i = 0; i < n; i++)
    y[i] = tanh (x[i]);
}
void ra_nn_ref_tanh_bwd (const double *y, const double *dy, double *dx, int n)
{
  for (int i = 0; i < n; i++)
    dx[i] = dy[i] * (1 - y[i] * y[i]);
}

static void s_ln_stats (const double *x, int D, double *mu, double *rs)
{
  double s = 0, v = 0;
  for (int i = 0; i < D; i++)
    s += x[i];
  *mu = s / D;
  for (int i = 0; i < D; i++)
    v += (x[i] - *mu) * (x[i] - *mu);
  *rs = 1.0 / sqrt (v / D + 1e-5);
}

void ra_nn_ref_ln_fwd (const double *x, const double *g, const double *b, double *y, int B, int D)
{
  for (int r = 0; r < B; r++) {
    double mu, rs;
    s_ln_stats (x + r * D, D, &mu, &rs);
    for (int i = 0; i < D; i++)
      y[r * D + i] = (x[r * D + i] - mu) * rs * g[i] + b[i];
  }
}

void ra_nn_ref_ln_bwd (const double *x, const double *g, const double *dy, double *dx, double *dg, double *db,
                       int B, int D)
{
  for (int r = 0; r < B; r++) {
    const double *xr = x + r * D, *dyr = dy + r * D;
    double mu, rs, a = 0, c = 0;
    s_ln_stats (xr, D, &mu, &rs);
    for (int i = 0; i < D; i++) {
      double n = (xr[i] - mu) * rs;
      a += dyr[i] * g[i];
      c += dyr[i] * g[i] * n;
      dg[i] += dyr[i] * n;
      db[i] += dyr[i];
    }
    for (int i = 0; i < D; i++) {
      double n = (xr[i] - mu) * rs;
      dx[r * D + i] = rs * (dyr[i] * g[i] - a / D - n * c / D);
    }
  }
}

void ra_nn_ref_softmax_fwd (const double *x, double *y, int R, int C, bool log_)
{
  for (int r = 0; r < R; r++) {
    const double *xr = x + r * C;
    double mx = xr[0], s = 0;
    for (int c = 1; c < C; c++)
      mx = xr[c] > mx ? xr[c] : mx;
    for (int c = 0; c < C; c++)
      s += exp (xr[c] - mx);
    for (int c = 0; c < C; c++)
      y[r * C + c] = log_ ? xr[c] - mx - log (s) : exp (xr[c] - mx) / s;
  }
}

void ra_nn_ref_softmax_bwd (const double *y, const double *dy, double *dx, int R, int C, bool log_)
{
  for (int r = 0; r < R; r++) {
    const double *yr = y + r * C, *dyr = dy + r * C;
    double s = 0;
    for (int c = 0; c < C; c++)
      s += log_ ? dyr[c] : dyr[c] * yr[c];
    for (int c = 0; c < C; c++)
      dx[r * C + c] = log_ ? dyr[c] - exp (yr[c]) * s : yr[c] * (dyr[c] - s);
  }
}

void ra_nn_ref_pairs_fwd (const double *user, const double *cand, double *out, int R, int C, int du, int dc)
{
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) {
      double *o = out + ((size_t) r * C + c) * (du + dc);
      for (int i = 0; i < du; i++)
        o[i] = user[r * du + i];
      for (int i = 0; i < dc; i++)
        o[du + i] = cand[((size_t) r * C + c) * dc + i];
    }
}

void ra_nn_ref_pairs_bwd (const double *dout, double *duser, double *dcand, int R, int C, int du, int dc)
{
  for (int r = 0; r < R; r++) {
    for (int i = 0; i < du; i++)
      duser[r * du + i] = 0;
    for (int c = 0; c < C; c++) {
      const double *o = dout + ((size_t) r * C + c) * (du + dc);
      for (int i = 0; i < du; i++)
        duser[r * du + i] += o[i];
      for (int i = 0; i < dc; i++)
        dcand[((size_t) r * C + c) * dc + i] = o[du + i];
    }
  }
}

double ra_nn_ref_pg_fwd (const double *logp, const int32_t *act, const double *adv, int U, int C)
{
  double s = 0;
  for (int u = 0; u < U; u++)
    s += adv[u] * logp[u * C + act[u]];
  return -s / U;
}

void ra_nn_ref_pg_bwd (const int32_t *act, const double *adv, double *dlogp, double scale, int U, int C)
{
  memset (dlogp, 0, sizeof (double) * U * C);
  for (int u = 0; u < U; u++)
    dlogp[u * C + act[u]] = -scale * adv[u] / U;
}

double ra_nn_ref_entropy_fwd (const double *logp, int U, int C)
{
  double s = 0;
  for (int i = 0; i < U * C; i++)
    s += exp (logp[i]) * logp[i];
  return -s / U;
}

void ra_nn_ref_entropy_bwd (const double *logp, double *dlogp, double scale, int U, int C)
{
  for (int i = 0; i < U * C; i++)
    dlogp[i] = -scale * exp (logp[i]) * (logp[i] + 1) / U;
}

double ra_nn_ref_mse_fwd (const double *v, const double *t, int U)
{
  double s = 0;
  for (int u = 0; u < U; u++)
    s += (v[u] - t[u]) * (v[u] - t[u]);
  return s / U;
}

void ra_nn_ref_mse_bwd (const double *v, const double *t, double *dv, double scale, int U)
{
  for (int u = 0; u < U; u++)
    dv[u] = scale * 2 * (v[u] - t[u]) / U;
}

double ra_nn_ref_sumsq (const double *x, int n)
{
  double s = 0;
  for (int i = 0; i < n; i++)
    s += x[i] * x[i];
  return s;
}

void ra_nn_ref_adam (double *w, const double *g, double *m, double *v, int n, int t, double lr, double b1,
                     double b2, double eps, double wd)
{
  double bc1 = 1 - pow (b1, t), bc2 = 1 - pow (b2, t);
  for (int i = 0; i < n; i++) {
    m[i] = b1 * m[i] + (1 - b1) * g[i];
    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
    w[i] -= lr * ((m[i] / bc1) / (sqrt (v[i] / bc2) + eps) + wd * w[i]);
  }
}

/* ------------------------------------------------------------------ slates and advantages */

static int s_in (const int32_t *a, int n, int j)
{
  for (int i = 0; i < n; i++)
    if (a[i] == j)
      return 1;
  return 0;
}

void ra_nn_ref_slate (const double *scores, int R, int K, int k, bool greedy, uint64_t seed, uint64_t stream,
                      uint64_t counter, int32_t *slates)
{
  for (int r = 0; r < R; r++)
    for (int pos = 0; pos < k; pos++) {
      int best = -1;
      double bk = 0;
      for (int j = 0; j < K; j++) {
        if (s_in (slates + (size_t) r * k, pos, j))
          continue;
        double key = scores[(size_t) r * K + j];
        if (!greedy) {
          double u = ra__nn_uniform_at (seed, stream, counter + (uint64_t) r * K + j);
          key += -log (-log (u < 1e-12 ? 1e-12 : u));
        }
        if (best < 0 || key > bk) {
          best = j;
          bk = key;
        }
      }
      slates[(size_t) r * k + pos] = best;
    }
}

double ra_nn_ref_pl (const double *s, const int32_t *slate, int K, int k, double *ent, double *dlogp, double *dent)
{
  double lp = 0, h_all = 0;
  if (dlogp)
    memset (dlogp, 0, sizeof (double) * K);
  if (dent)
    memset (dent, 0, sizeof (double) * K);
  for (int i = 0; i < k; i++) {
    double z = 0;
    for (int j = 0; j < K; j++)
      if (!s_in (slate, i, j))
        z += exp (s[j]);
    double lse = log (z), h = 0;
    for (int j = 0; j < K; j++)
      if (!s_in (slate, i, j))
        h -= exp (s[j] - lse) * (s[j] - lse);
    for (int j = 0; j < K; j++) {
      if (s_in (slate, i, j))
        continue;
      double p = exp (s[j] - lse);
      if (dlogp)
        dlogp[j] += (j == slate[i]) - p;
      if (dent)
        dent[j] += -p * (s[j] - lse + h);
    }
    lp += s[slate[i]] - lse;
    h_all += h;
  }
  if (ent)
    *ent = h_all;
  return lp;
}

void ra_nn_ref_gae (const double *reward, const uint8_t *done, const double *values, int T, int N, double gamma,
                    double lambda, double *adv, double *ret)
{
  for (int i = 0; i < N; i++) {
    double a = 0;
    for (int t = T - 1; t >= 0; t--) {
      int x = t * N + i;
      double keep = done[x] ? 0.0 : 1.0;
      a = reward[x] + gamma * keep * values[x + N] - values[x] + gamma * lambda * keep * a;
      adv[x] = a;
      ret[x] = a + values[x];
    }
  }
}

void ra_nn_ref_normalize (double *x, int n)
{
  double m = 0, v = 0;
  for (int i = 0; i < n; i++)
    m += x[i];
  m /= n;
  for (int i = 0; i < n; i++)
    v += (x[i] - m) * (x[i] - m);
  double sd = sqrt (v / n) + 1e-8;
  for (int i = 0; i < n; i++)
    x[i] = (x[i] - m) / sd;
}
