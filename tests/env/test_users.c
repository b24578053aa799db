/*  tests/env/test_users.c - env/core/users: draws follow docs/sims/ecommerce.md 3.1 and drift
    follows 3.3. */
#include <criterion/criterion.h>
#include <math.h>

#include "env/core/users.h"

Test (users, draws_are_in_range_and_near_their_topic)
{
  ra_catalog_t c;
  ra_error_t err;
  const int d = 16;
  cr_assert_eq (ra_catalog_init (&c, 200, 5, d, &err), RA_OK);
  ra_catalog_params_t cp = { 3, 1.0, 0.5, 20 };
  ra_catalog_build (&c, &cp);
  ra_user_pop_t pop = { .interest_spread = 0.5, .obs_noise = 0.3, .budget_mean = 100,
                        .price_sensitivity = 2, .patience_mean = 15 };
  ra_rng_t rng;
  ra_rng_seed (&rng, 1, 0);
  double budget = 0, lam = 0, align = 0;
  const int n = 20000;
  for (int i = 0; i < n; i++) {
    ra_user_t u;
    float th[16], hat[16];
    ra_users_draw (&pop, &c, &rng, &u, th, hat);
    cr_assert (u.topic >= 0 && u.topic < 5);
    cr_assert_float_eq (ra_users_dot (th, th, d), 1.0f, 1e-4);
    cr_assert_float_eq (ra_users_dot (hat, hat, d), 1.0f, 1e-4);
    cr_assert (u.budget0 >= 1 && u.budget == u.budget0);
    cr_assert (u.price_sens > 0 && u.patience >= 1);
    budget += u.budget0;
    lam += u.price_sens;
    align += ra_users_dot (th, c.centres + u.topic * d, d);
  }
  /* log-normal means: budget_mean and price_sensitivity (3.1); tolerances ~6 sd of the mean */
  cr_assert_lt (fabs (budget / n / 100 - 1), 0.025);
  cr_assert_lt (fabs (lam / n / 2 - 1), 0.015);
  cr_assert_gt (align / n, 0.8);   /* 1/sqrt(1 + 0.25) ~ 0.89 */
  ra_catalog_fini (&c);
}

Test (users, drift_moves_interest_toward_the_item)
{
  float v[3] = { 1, 0, 0 }, x[3] = { 0, 1, 0 };
  ra_users_drift (v, x, 0.25f, 3);
  /* 3.3: normalise(0.75 e1 + 0.25 e2) */
  double n = sqrt (0.75 * 0.75 + 0.25 * 0.25);
  cr_assert_float_eq (v[0], 0.75 / n, 1e-6);
  cr_assert_float_eq (v[1], 0.25 / n, 1e-6);
  cr_assert_float_eq (v[2], 0.0, 1e-9);
  float w[3] = { 0, 0, 1 };
  ra_users_drift (w, x, 0.0f, 3);   /* alpha 0: unchanged */
  cr_assert_eq (w[2], 1.0f);
}
