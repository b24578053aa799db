/*  tests/env/test_catalog.c - env/core/catalog: a catalog depends only on its parameters; its
    items obey docs/sims/ecommerce.md section 2 (unit embeddings near their topic, prices and
    features in range, items grouped by topic). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "env/core/catalog.h"

static const ra_catalog_params_t s_p = { .world_seed = 77, .topic_skew = 1.0, .item_noise = 0.6,
                                         .price_median = 20 };

Test (catalog, same_params_give_the_same_catalog)
{
  ra_catalog_t a, b;
  ra_error_t err;
  cr_assert_eq (ra_catalog_init (&a, 500, 8, 16, &err), RA_OK);
  cr_assert_eq (ra_catalog_init (&b, 500, 8, 16, &err), RA_OK);
  ra_catalog_build (&a, &s_p);
  ra_catalog_build (&b, &s_p);
  cr_assert_eq (memcmp (a.feat, b.feat, 500 * (size_t) a.stride * sizeof (float)), 0);
  cr_assert_eq (memcmp (a.price, b.price, 500 * sizeof (float)), 0);
  ra_catalog_params_t q = s_p;
  q.world_seed = 78;
  ra_catalog_build (&b, &q);
  cr_assert_neq (memcmp (a.feat, b.feat, 500 * (size_t) a.stride * sizeof (float)), 0);
  ra_catalog_fini (&a);
  ra_catalog_fini (&b);
  ra_catalog_fini (&b);   /* idempotent */
}

Test (catalog, items_obey_section_2)
{
  ra_catalog_t c;
  ra_error_t err;
  const int N = 2000, T = 10, d = 16;
  cr_assert_eq (ra_catalog_init (&c, N, T, d, &err), RA_OK);
  ra_catalog_build (&c, &s_p);
  double own = 0, other = 0, logp = 0;
  float minp = 1e30f;
  for (int i = 0; i < N; i++) {
    const float *x = c.feat + (size_t) i * c.stride;
    double n2 = 0;
    for (int q = 0; q < d; q++) {
      cr_assert (x[q] >= -1 && x[q] <= 1);
      n2 += x[q] * x[q];
    }
    cr_assert_float_eq (n2, 1.0, 1e-4);
    for (int f = 0; f < RA_CATALOG_N_EXTRA; f++)
      cr_assert (x[d + f] >= 0 && x[d + f] <= 1);
    cr_assert (c.price[i] >= RA_CATALOG_PRICE_MIN && c.price[i] <= RA_CATALOG_PRICE_MAX);
    cr_assert (c.quality[i] > 0 && c.quality[i] < 1);
    cr_assert (c.margin[i] > 0 && c.margin[i] <= 0.6f * c.price[i] + 1e-4f);
    cr_assert_float_eq (x[d + RA_CATALOG_F_LOGPRICE], ra_catalog_logprice_feature (c.price[i]), 1e-6);
    int t = c.topic[i];
    double dot_own = 0, dot_other = 0;
    for (int q = 0; q < d; q++) {
      dot_own += x[q] * c.centres[t * d + q];
      dot_other += x[q] * c.centres[((t + 1) % T) * d + q];
    }
    own += dot_own;
    other += dot_other;
    logp += log (c.price[i]);
    if (c.price[i] < minp)
      minp = c.price[i];
  }
  /* with item_noise 0.6, E[x . c_t] ~ 1/sqrt(1 + 0.36) ~ 0.86; other centres ~ 0 */
  cr_assert_gt (own / N, 0.75);
  cr_assert_lt (fabs (other / N), 0.3);
  /* the median price is exp(mean log price) ~ price_median, up to topic-level spread */
  cr_assert_lt (fabs (logp / N - log (20.0)), 0.8);
  cr_assert_eq (c.min_price, minp);
  /* by_topic groups every item once, under its topic */
  cr_assert_eq (c.topic_start[0], 0);
  cr_assert_eq (c.topic_start[T], N);
  for (int t = 0; t < T; t++)
    for (int q = c.topic_start[t]; q < c.topic_start[t + 1]; q++)
      cr_assert_eq (c.topic[c.by_topic[q]], t);
  cr_assert_float_eq (c.topic_cdf[T - 1], 1.0, 1e-12);
  ra_catalog_fini (&c);
}

Test (catalog, topic_skew_concentrates_popularity)
{
  ra_catalog_t c;
  ra_error_t err;
  cr_assert_eq (ra_catalog_init (&c, 100, 10, 4, &err), RA_OK);
  ra_catalog_params_t p = s_p;
  p.topic_skew = 0;
  ra_catalog_build (&c, &p);
  double flat_max = 0, prev = 0;
  for (int t = 0; t < 10; t++) {
    flat_max = fmax (flat_max, c.topic_cdf[t] - prev);
    prev = c.topic_cdf[t];
  }
  cr_assert_float_eq (flat_max, 0.1, 1e-9);
  p.topic_skew = 2;
  ra_catalog_build (&c, &p);
  double skew_max = 0;
  prev = 0;
  for (int t = 0; t < 10; t++) {
    skew_max = fmax (skew_max, c.topic_cdf[t] - prev);
    prev = c.topic_cdf[t];
  }
  /* pi_1 = 1 / sum_r r^-2 over r = 1..10 ~ 0.645 */
  cr_assert_float_eq (skew_max, 1.0 / 1.5497677311665408, 1e-9);
  ra_catalog_fini (&c);
}
