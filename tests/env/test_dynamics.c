/*  tests/env/test_dynamics.c - env/core/dynamics: boredom, time budget, return model and drift
    follow docs/sims/shared.md section 2, their samplers match their formulas, and the config
    reader keeps the sim's defaults and rejects bad values by name. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "env/core/dynamics.h"

Test (dynamics, boredom_rises_decays_and_resets_after_the_timeout)
{
  ra_boredom_t b;
  ra_boredom_init (&b, 0.4, 0.8, 5, 2.0);
  ra_boredom_topic_t t[3];
  ra_boredom_reset (t, 3);
  for (int i = 0; i < 3; i++)
    cr_assert_eq (ra_boredom_level (&b, &t[i], 0), 0.0f);
  ra_boredom_consume (&b, &t[1], 10, 1.0f);
  cr_assert_float_eq (ra_boredom_level (&b, &t[1], 10), 0.4, 1e-6);
  cr_assert_float_eq (ra_boredom_penalty (&b, &t[1], 10), 0.8, 1e-6);
  cr_assert_float_eq (ra_boredom_level (&b, &t[1], 13), 0.4 * pow (0.8, 3), 1e-6);
  cr_assert_eq (ra_boredom_level (&b, &t[1], 15), 0.0f, "timeout 5: reset after 5 units");
  cr_assert_eq (ra_boredom_level (&b, &t[0], 13), 0.0f, "other topics untouched");
  /* a second consumption 2 units later: L = 0.4 * 0.8^2, level = L + 0.4 * 0.5 (1 - L) */
  ra_boredom_consume (&b, &t[1], 12, 0.5f);
  double l = 0.4 * 0.64;
  cr_assert_float_eq (ra_boredom_level (&b, &t[1], 12), l + 0.2 * (1 - l), 1e-6);
  for (int s = 13; s < 1000; s++)
    ra_boredom_consume (&b, &t[2], s, 1.0f);
  float top = ra_boredom_level (&b, &t[2], 999);
  cr_assert (top > 0.5f && top < 1.0f, "saturates below 1: %f", top);
  /* after the timeout, consumption starts again from 0 */
  ra_boredom_consume (&b, &t[2], 999 + 5, 1.0f);
  cr_assert_float_eq (ra_boredom_level (&b, &t[2], 1004), 0.4, 1e-6);
}

Test (dynamics, time_budget_spends_and_ends_the_session_at_zero)
{
  ra_time_budget_t p = { .mean = 10, .spread = 0, .step_cost = 1, .refund = 0.5f };
  ra_rng_t rng;
  ra_rng_seed (&rng, 1, 0);
  float budget = ra_time_budget_draw (&p, &rng);
  cr_assert_float_eq (budget, 10.0, 1e-5, "spread 0: exactly the mean");
  cr_assert (!ra_time_budget_spend (&p, &budget, 2.0f, 1.0f));
  cr_assert_float_eq (budget, 10 - 1 - 2 + 1, 1e-5);   /* 10 - c_s - spent + refund spent s */
  cr_assert (!ra_time_budget_spend (&p, &budget, 4.0f, 0.25f));
  cr_assert_float_eq (budget, 8 - 1 - 4 + 0.5, 1e-5);
  cr_assert (!ra_time_budget_spend (&p, &budget, 0.0f, 7.0f), "satisfaction is clamped to 1");
  cr_assert_float_eq (budget, 2.5, 1e-5);
  cr_assert (!ra_time_budget_spend (&p, &budget, 0.0f, 0.0f));
  cr_assert (ra_time_budget_spend (&p, &budget, 0.5f, -1.0f), "1.5 - 1 - 0.5 = 0: ends");
  int steps = 0;
  budget = 3;
  while (!ra_time_budget_spend (&p, &budget, 0, 0))
    steps++;
  cr_assert_eq (steps, 2);
}

Test (dynamics, time_budget_draw_has_the_configured_mean)
{
  ra_time_budget_t p = { .mean = 20, .spread = 0.5f, .step_cost = 1, .refund = 0 };
  ra_rng_t rng;
  ra_rng_seed (&rng, 2, 0);
  const int n = 40000;
  double sum = 0, sum2 = 0;
  for (int i = 0; i < n; i++) {
    double x = ra_time_budget_draw (&p, &rng);
    cr_assert (x > 0);
    sum += x;
    sum2 += x * x;
  }
  double mean = sum / n, sd = sqrt (sum2 / n - mean * mean);
  cr_assert_lt (fabs (mean - 20), 5 * sd / sqrt (n), "mean %f", mean);
}

Test (dynamics, return_probability_and_delay_follow_satisfaction)
{
  ra_return_t p = { .delay_min = 2, .delay_max = 12, .churn_max = 0.6f, .max_sessions = 3 };
  cr_assert_float_eq (ra_return_mean_delay (&p, 1), 2, 1e-6);
  cr_assert_float_eq (ra_return_mean_delay (&p, 0), 12, 1e-6);
  cr_assert_float_eq (ra_return_mean_delay (&p, 0.25f), 9.5, 1e-6);
  cr_assert_float_eq (ra_return_prob (&p, 0), 0.4, 1e-6);
  cr_assert_float_eq (ra_return_prob (&p, 1), 1, 1e-6);
  cr_assert_float_eq (ra_return_prob (&p, 0.5f), 0.7, 1e-6);
  const float sats[3] = { 0, 0.5f, 1 };
  for (int q = 0; q < 3; q++) {
    ra_rng_t rng;
    ra_rng_seed (&rng, 3, (uint64_t) q);
    const int n = 50000;
    int back = 0;
    double sum = 0;
    for (int i = 0; i < n; i++) {
      float d = ra_return_sample (&p, sats[q], &rng);
      if (d < 0) {
        cr_assert_eq (d, -1.0f);
        continue;
      }
      back++;
      sum += d;
    }
    double pr = ra_return_prob (&p, sats[q]), mu = ra_return_mean_delay (&p, sats[q]);
    cr_assert_lt (fabs (back / (double) n - pr), 5 * sqrt (pr * (1 - pr) / n) + 1e-9, "s %f: %d back", sats[q], back);
    cr_assert_lt (fabs (sum / back - mu), 5 * mu / sqrt (back), "s %f: mean delay %f, expected %f", sats[q],
                  sum / back, mu);   /* exponential: sd = mean */
  }
}

Test (dynamics, drift_pulls_toward_the_item_scaled_by_engagement)
{
  float th[4] = { 1, 0, 0, 0 }, x[4] = { 0, 1, 0, 0 };
  ra_dynamics_drift (th, x, 0.5f, 0.0f, 4);
  cr_assert_eq (th[0], 1.0f, "no engagement: no drift");
  cr_assert_eq (th[1], 0.0f);
  ra_dynamics_drift (th, x, 0.5f, 0.5f, 4);   /* a = 0.25: (0.75, 0.25) normalised */
  double n = sqrt (0.75 * 0.75 + 0.25 * 0.25);
  cr_assert_float_eq (th[0], 0.75 / n, 1e-6);
  cr_assert_float_eq (th[1], 0.25 / n, 1e-6);
  ra_dynamics_drift (th, x, 4.0f, 1.0f, 4);   /* a clamped to 1: theta = x */
  cr_assert_float_eq (th[0], 0, 1e-6);
  cr_assert_float_eq (th[1], 1, 1e-6);
}

Test (dynamics, config_keeps_sim_defaults_and_reads_overrides)
{
  ra_dynamics_t d;
  ra_dynamics_defaults (&d);
  d.boredom = true;   /* a sim's own default */
  ra_kv_t kv[] = {
    { .key = "dynamics.return", .type = RA_KV_BOOL, .num = 1 },
    { .key = "dynamics.boredom_timeout", .type = RA_KV_NUM, .num = 7 },
    { .key = "dynamics.return_delay_max", .type = RA_KV_NUM, .num = 30 },
  };
  ra_config_t c;
  ra_error_t err;
  cr_assert_eq (ra_config_init (&c, kv, 3, "config", &err), RA_OK);
  cr_assert_eq (ra_dynamics_from_config (&c, &d, &err), RA_OK);
  cr_assert (d.boredom && d.ret && d.drift && !d.time_budget);
  cr_assert_eq (d.bored.timeout, 7);
  cr_assert_float_eq (exp (d.bored.log_decay), 0.9, 1e-6);
  cr_assert_float_eq (d.ret_p.delay_max, 30, 1e-6);
  cr_assert_eq (ra_config_check_unknown (&c, RA_DYNAMICS_KNOWN_KEYS, &err), RA_OK);
  ra_kv_t out[RA_DYNAMICS_N_KEYS];
  cr_assert_eq (ra_dynamics_defaults_kv (&d, out, RA_DYNAMICS_N_KEYS), RA_DYNAMICS_N_KEYS);
  cr_assert_str_eq (out[6].key, "dynamics.boredom_timeout");
  cr_assert_eq (out[6].num, 7);
}

static void s_expect_bad (const char *key, double value, const char *needle)
{
  ra_dynamics_t d;
  ra_dynamics_defaults (&d);
  ra_kv_t kv[] = { { .key = key, .type = RA_KV_NUM, .num = value },
                   { .key = "dynamics.time_budget", .type = RA_KV_BOOL, .num = 1 } };
  ra_config_t c;
  ra_error_t err;
  cr_assert_eq (ra_config_init (&c, kv, 2, "config", &err), RA_OK);
  cr_assert_eq (ra_dynamics_from_config (&c, &d, &err), RA_ERR_BAD_CONFIG, "%s = %g accepted", key, value);
  cr_assert (strstr (err.message, needle), "message '%s' lacks '%s'", err.message, needle);
}

Test (dynamics, config_rejects_bad_values_by_name)
{
  s_expect_bad ("dynamics.boredom_rise", 1.5, "dynamics.boredom_rise");
  s_expect_bad ("dynamics.boredom_timeout", 0, "dynamics.boredom_timeout");
  s_expect_bad ("dynamics.return_churn_max", -0.1, "dynamics.return_churn_max");
  s_expect_bad ("dynamics.return_delay_max", 0.5, "dynamics.return_delay_min");
  s_expect_bad ("dynamics.budget_step_cost", 0, "dynamics.budget_step_cost");
}
