/*  tests/env/test_choice.c - env/core/choice: the logit's probabilities follow the documented
    formula (docs/sims/ecommerce.md 4.1), sampling matches them, and the oracle slate is the
    exact optimum (brute force over every ordered slate). */
#include <criterion/criterion.h>
#include <math.h>

#include "env/core/choice.h"

Test (choice, probabilities_follow_formula_and_sum_to_one)
{
  ra_rng_t rng;
  ra_rng_seed (&rng, 5, 0);
  for (int trial = 0; trial < 200; trial++) {
    int k = 1 + (int) ra_rng_below (&rng, 6);
    double eta = 3 * ra_rng_uniform_f64 (&rng), v0 = 4 * ra_rng_uniform_f64 (&rng) - 2;
    ra_choice_t c;
    ra_choice_init (&c, RA_CHOICE_LOGIT, k, eta, v0);
    float v[RA_CHOICE_MAX_SLATE], p[RA_CHOICE_MAX_SLATE];
    for (int r = 0; r < k; r++)
      v[r] = (float) (6 * ra_rng_uniform_f64 (&rng) - 3);
    float p0 = ra_choice_probs (&c, v, p);
    /* 4.1 in double: P(r) = (1/r)^eta e^{v_r} / (e^{v0} + sum_s (1/s)^eta e^{v_s}) */
    double den = exp (v0);
    for (int r = 0; r < k; r++)
      den += pow (1.0 / (r + 1), eta) * exp (v[r]);
    double sum = p0;
    cr_assert_float_eq (p0, exp (v0) / den, 1e-5);
    for (int r = 0; r < k; r++) {
      cr_assert (p[r] >= 0 && p[r] <= 1);
      cr_assert_float_eq (p[r], pow (1.0 / (r + 1), eta) * exp (v[r]) / den, 1e-5);
      sum += p[r];
    }
    cr_assert_float_eq (sum, 1.0, 1e-5);
  }
}

Test (choice, sampling_frequencies_match_probabilities)
{
  ra_choice_t c;
  ra_choice_init (&c, RA_CHOICE_LOGIT, 4, 1.0, 0.5);
  float v[4] = { 1.0f, 0.2f, -0.5f, 1.5f }, p[4];
  float p0 = ra_choice_probs (&c, v, p);
  ra_rng_t rng;
  ra_rng_seed (&rng, 11, 0);
  const int n = 100000;
  int count[5] = { 0 };
  for (int i = 0; i < n; i++) {
    uint8_t clicked[4];
    int m = ra_choice_sample (&c, v, &rng, clicked);
    cr_assert (m == 0 || m == 1);
    int slot = 4;
    for (int r = 0; r < 4; r++)
      if (clicked[r])
        slot = r;
    count[slot]++;
  }
  for (int r = 0; r < 5; r++) {
    double q = r < 4 ? p[r] : p0;
    double sd = sqrt (q * (1 - q) / n);   /* 5 sd tolerance */
    cr_assert_lt (fabs (count[r] / (double) n - q), 5 * sd, "slot %d: %d draws, p %f", r, count[r], q);
  }
}

static double s_value (const ra_choice_t *c, const float *a, const float *g, const int *s)
{
  double num = 0, den = c->no_click_weight;
  for (int r = 0; r < c->k; r++) {
    num += c->examine[r] * a[s[r]] * g[s[r]];
    den += c->examine[r] * a[s[r]];
  }
  return num / den;
}

Test (choice, best_slate_is_the_brute_force_optimum)
{
  ra_rng_t rng;
  ra_rng_seed (&rng, 21, 0);
  for (int trial = 0; trial < 300; trial++) {
    int n = 3 + (int) ra_rng_below (&rng, 6), k = 1 + (int) ra_rng_below (&rng, 3);
    if (k > n)
      k = n;
    ra_choice_t c;
    ra_choice_init (&c, RA_CHOICE_LOGIT, k, 2 * ra_rng_uniform_f64 (&rng), 2 * ra_rng_uniform_f64 (&rng) - 1);
    float a[8], g[8];
    for (int j = 0; j < n; j++) {
      a[j] = expf ((float) (4 * ra_rng_uniform_f64 (&rng) - 2));
      g[j] = (float) (trial % 3 == 0 ? 2 * ra_rng_uniform_f64 (&rng) - 0.5 : 50 * ra_rng_uniform_f64 (&rng));
    }
    int32_t slate[RA_CHOICE_MAX_SLATE];
    float got = ra_choice_best_slate (&c, a, g, n, slate);
    for (int r = 0; r < k; r++)
      for (int q = 0; q < r; q++)
        cr_assert_neq (slate[r], slate[q]);
    int s[3];
    double best = -INFINITY;
    for (s[0] = 0; s[0] < n; s[0]++)
      for (s[1] = 0; s[1] < (k > 1 ? n : 1); s[1]++)
        for (s[2] = 0; s[2] < (k > 2 ? n : 1); s[2]++) {
          if ((k > 1 && s[1] == s[0]) || (k > 2 && (s[2] == s[0] || s[2] == s[1])))
            continue;
          double v = s_value (&c, a, g, s);
          if (v > best)
            best = v;
        }
    int ss[3] = { slate[0], k > 1 ? slate[1] : 0, k > 2 ? slate[2] : 0 };
    cr_assert_float_eq (got, best, 1e-4 * (1 + fabs (best)), "trial %d: got %f, best %f", trial, got, best);
    cr_assert_float_eq (s_value (&c, a, g, ss), best, 1e-4 * (1 + fabs (best)));
  }
}
