/*  agents/ab/stats.h - the harness's statistics (docs/agents.md section 2.3): percentile
    bootstrap confidence intervals of a mean, and a paired bootstrap test of a difference of
    means. Deterministic given the seed. Pure functions; allocate their resample buffer;
    thread-safe.                                                                            */
#ifndef RA_AGENTS_AB_STATS_H
#define RA_AGENTS_AB_STATS_H

#include <stdint.h>

/* Why a bootstrap says little (docs/agents.md 2.3): a single unit has no spread to resample,
   and units that are all equal give a zero-width interval. */
typedef enum {
  RA_AB_DEGEN_NONE = 0,
  RA_AB_DEGEN_ONE_UNIT,                 /* n < 2: no CI and no test (NaN) */
  RA_AB_DEGEN_ZERO_VAR,                 /* n >= 2 equal values: the CI is a point */
} ra_ab_degen_t;

typedef struct {
  double mean, lo, hi;                  /* mean of the units and its CI */
  int n;                                /* units */
  ra_ab_degen_t degenerate;
} ra_ab_ci_t;

typedef struct {
  double diff, lo, hi;                  /* mean of a - b over paired units and its CI */
  double p;                             /* two-sided p-value of "mean difference = 0" */
  int n;
  ra_ab_degen_t degenerate;             /* of the differences */
} ra_ab_paired_t;

/* Mean of x[0..n) and its percentile bootstrap CI at level (0.95): B resamples of n units with
   replacement; lo, hi = the (1 - level) / 2 and (1 + level) / 2 quantiles of the resampled
   means. n = 0 gives NaNs; n = 1 the mean with lo = hi = NaN (RA_AB_DEGEN_ONE_UNIT); n >= 2
   equal values are flagged RA_AB_DEGEN_ZERO_VAR. O(B n). */
void ra_ab_bootstrap_ci (const double *x, int n, int B, double level, uint64_t seed, ra_ab_ci_t *out);

/* Paired bootstrap on d_i = a_i - b_i: diff = mean d, CI as above, and
   p = (1 + #{b : |mean(d*_b) - mean d| >= |mean d|}) / (B + 1), the share of resamples of the
   centred differences (the null "no difference") at least as extreme as observed; p = 1 when
   every d_i is 0. n = 1: diff = d_1, lo = hi = p = NaN (RA_AB_DEGEN_ONE_UNIT); n >= 2 equal
   d_i are flagged RA_AB_DEGEN_ZERO_VAR. O(B n). */
void ra_ab_paired_test (const double *a, const double *b, int n, int B, double level, uint64_t seed,
                        ra_ab_paired_t *out);

#endif
