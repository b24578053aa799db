/*  agents/ab/stats.c - bootstrap CIs and paired tests (see stats.h). */
#include "agents/ab/stats.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "common/rng.h"

static int s_cmp (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

/* Quantile q of sorted v[0..n) by linear interpolation. */
static double s_quantile (const double *v, int n, double q)
{
  double pos = q * (n - 1);
  int i = (int) floor (pos);
  if (i >= n - 1)
    return v[n - 1];
  return v[i] + (pos - i) * (v[i + 1] - v[i]);
}

/* B resampled means of x (shifted by -shift) into means. */
static void s_resample (const double *x, int n, double shift, int B, uint64_t seed, double *means)
{
  uint64_t st = seed;
  for (int b = 0; b < B; b++) {
    double s = 0;
    for (int j = 0; j < n; j++)
      s += x[(ra_rng_splitmix64 (&st) >> 32) * (uint64_t) n >> 32];
    means[b] = s / n - shift;
  }
}

static double s_mean (const double *x, int n)
{
  double s = 0;
  for (int i = 0; i < n; i++)
    s += x[i];
  return n ? s / n : NAN;
}

static ra_ab_degen_t s_degen (const double *x, int n)
{
  if (n < 2)
    return RA_AB_DEGEN_ONE_UNIT;
  for (int i = 1; i < n; i++)
    if (x[i] != x[0])
      return RA_AB_DEGEN_NONE;
  return RA_AB_DEGEN_ZERO_VAR;
}

void ra_ab_bootstrap_ci (const double *x, int n, int B, double level, uint64_t seed, ra_ab_ci_t *out)
{
  out->n = n;
  out->mean = s_mean (x, n);
  out->degenerate = s_degen (x, n);
  out->lo = out->hi = n > 1 ? out->mean : NAN;
  double *m = n > 1 && B > 1 ? malloc ((size_t) B * sizeof *m) : NULL;
  if (!m)
    return;
  s_resample (x, n, 0, B, seed, m);
  qsort (m, (size_t) B, sizeof *m, s_cmp);
  out->lo = s_quantile (m, B, (1 - level) / 2);
  out->hi = s_quantile (m, B, (1 + level) / 2);
  free (m);
}

void ra_ab_paired_test (const double *a, const double *b, int n, int B, double level, uint64_t seed,
                        ra_ab_paired_t *out)
{
  out->n = n;
  out->diff = out->lo = out->hi = out->p = NAN;
  out->degenerate = RA_AB_DEGEN_ONE_UNIT;
  double *d = n > 0 ? malloc ((size_t) n * sizeof *d) : NULL;
  double *m = B > 1 ? malloc ((size_t) B * sizeof *m) : NULL;
  if (!d || !m)
    goto out;
  bool all_zero = true;
  for (int i = 0; i < n; i++) {
    d[i] = a[i] - b[i];
    all_zero &= d[i] == 0;
  }
  double dbar = s_mean (d, n);
  out->diff = dbar;
  out->degenerate = s_degen (d, n);
  if (n < 2)   /* nothing to resample: no interval, no test */
    goto out;
  out->lo = out->hi = dbar;
  out->p = 1.0;
  if (all_zero)
    goto out;
  s_resample (d, n, 0, B, seed, m);
  qsort (m, (size_t) B, sizeof *m, s_cmp);
  out->lo = s_quantile (m, B, (1 - level) / 2);
  out->hi = s_quantile (m, B, (1 + level) / 2);
  int extreme = 0;   /* the same resamples, centred: mean(d*) - dbar is the null's draw */
  for (int i = 0; i < B; i++)
    extreme += fabs (m[i] - dbar) >= fabs (dbar);
  out->p = (1.0 + extreme) / (B + 1.0);
out:
  free (d);
  free (m);
}
