/*  tests/policies/test_ab_stats.c - the harness's statistics against cases with known answers:
    identical arms differ by nothing, a planted gap is found, bootstrap CIs cover the true mean
    about as often as they claim, and the paired test is not too eager under the null.      */
#include <criterion/criterion.h>
#include <math.h>

#include "agents/ab/stats.h"
#include "common/rng.h"

static uint64_t S_state = 42;

static double s_uniform (void)
{
  return (ra_rng_splitmix64 (&S_state) >> 11) * 0x1.0p-53;
}

static double s_normal (void)
{
  double u1 = 1.0 - s_uniform (), u2 = s_uniform ();
  return sqrt (-2.0 * log (u1)) * cos (6.283185307179586 * u2);
}

Test (ab_stats, identical_arms_show_no_difference)
{
  double a[40];
  for (int i = 0; i < 40; i++)
    a[i] = 100 + 10 * s_normal ();
  ra_ab_paired_t t;
  ra_ab_paired_test (a, a, 40, 1000, 0.95, 7, &t);
  cr_assert_eq (t.diff, 0.0);
  cr_assert_eq (t.p, 1.0);
  cr_assert_eq (t.degenerate, RA_AB_DEGEN_ZERO_VAR);
  cr_assert (t.lo <= 0 && t.hi >= 0);
}

Test (ab_stats, planted_gap_is_detected)
{
  double a[30], b[30];
  for (int i = 0; i < 30; i++) {
    double unit = 50 * s_normal ();   /* a large shared unit effect: pairing removes it */
    b[i] = 100 + unit + s_normal ();
    a[i] = b[i] + 1.0 + s_normal ();
  }
  ra_ab_paired_t t;
  ra_ab_paired_test (a, b, 30, 2000, 0.95, 3, &t);
  cr_assert_lt (t.p, 0.01, "p %g", t.p);
  cr_assert (t.lo > 0 && t.hi > t.lo, "[%g, %g]", t.lo, t.hi);
  cr_assert_float_eq (t.diff, 1.0, 0.6);
}

Test (ab_stats, bootstrap_ci_covers_the_true_mean)
{
  int covered = 0, trials = 200;
  double x[50];
  for (int r = 0; r < trials; r++) {
    for (int i = 0; i < 50; i++)
      x[i] = 3.0 + 2.0 * s_normal ();
    ra_ab_ci_t ci;
    ra_ab_bootstrap_ci (x, 50, 1000, 0.95, (uint64_t) r, &ci);
    cr_assert (ci.lo <= ci.mean && ci.mean <= ci.hi);
    covered += ci.lo <= 3.0 && 3.0 <= ci.hi;
  }
  /* nominal 95%; the percentile bootstrap runs a little short at n = 50 */
  cr_assert (covered >= 0.89 * trials && covered <= 0.99 * trials, "covered %d of %d", covered, trials);
}

Test (ab_stats, paired_test_false_positive_rate_is_near_nominal)
{
  int rejected = 0, trials = 200;
  double a[30], b[30];
  for (int r = 0; r < trials; r++) {
    for (int i = 0; i < 30; i++) {
      a[i] = s_normal ();
      b[i] = s_normal ();
    }
    ra_ab_paired_t t;
    ra_ab_paired_test (a, b, 30, 500, 0.95, (uint64_t) r, &t);
    cr_assert (t.p > 0 && t.p <= 1);
    rejected += t.p < 0.05;
  }
  cr_assert (rejected <= 0.1 * trials, "rejected %d of %d at 5%%", rejected, trials);
}

Test (ab_stats, same_seed_same_interval)
{
  double x[20];
  for (int i = 0; i < 20; i++)
    x[i] = s_normal ();
  ra_ab_ci_t c1, c2;
  ra_ab_bootstrap_ci (x, 20, 500, 0.95, 11, &c1);
  ra_ab_bootstrap_ci (x, 20, 500, 0.95, 11, &c2);
  cr_assert (c1.lo == c2.lo && c1.hi == c2.hi && c1.mean == c2.mean);
}

Test (ab_stats, degenerate_sizes)
{
  double x[1] = { 4.0 };
  ra_ab_ci_t ci;
  ra_ab_bootstrap_ci (x, 1, 100, 0.95, 1, &ci);
  cr_assert (ci.mean == 4.0 && isnan (ci.lo) && isnan (ci.hi), "one unit has no interval");
  cr_assert_eq (ci.degenerate, RA_AB_DEGEN_ONE_UNIT);
  ra_ab_bootstrap_ci (x, 0, 100, 0.95, 1, &ci);
  cr_assert (isnan (ci.mean));
  cr_assert_eq (ci.degenerate, RA_AB_DEGEN_ONE_UNIT);
  double same[5] = { 2, 2, 2, 2, 2 }, spread[5] = { 1, 2, 3, 4, 5 };
  ra_ab_bootstrap_ci (same, 5, 100, 0.95, 1, &ci);
  cr_assert (ci.lo == 2 && ci.hi == 2);
  cr_assert_eq (ci.degenerate, RA_AB_DEGEN_ZERO_VAR);
  ra_ab_bootstrap_ci (spread, 5, 100, 0.95, 1, &ci);
  cr_assert_eq (ci.degenerate, RA_AB_DEGEN_NONE);
}

Test (ab_stats, one_unit_gives_no_test_instead_of_p_one)
{
  /* the case: one task, unit task, a +567 difference must not read as p = 1 */
  double a[1] = { 1000 }, b[1] = { 433 };
  ra_ab_paired_t t;
  ra_ab_paired_test (a, b, 1, 1000, 0.95, 3, &t);
  cr_assert_eq (t.diff, 567);
  cr_assert (isnan (t.p) && isnan (t.lo) && isnan (t.hi));
  cr_assert_eq (t.degenerate, RA_AB_DEGEN_ONE_UNIT);
  /* a constant non-zero difference: flagged, the interval is the point, p the smallest */
  double c[4] = { 5, 6, 7, 8 }, d[4] = { 4, 5, 6, 7 };
  ra_ab_paired_test (c, d, 4, 999, 0.95, 3, &t);
  cr_assert_eq (t.degenerate, RA_AB_DEGEN_ZERO_VAR);
  cr_assert (t.lo == 1 && t.hi == 1);
  cr_assert_float_eq (t.p, 1.0 / 1000, 1e-12);
}
