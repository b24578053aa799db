/*  tests/env/test_reward.c - env/core/reward: named and weighted reward models
    (docs/sims/ecommerce.md section 7). */
#include <criterion/criterion.h>
#include <string.h>

#include "env/core/reward.h"

static ra_err_t s_from (const ra_kv_t *kv, int n, ra_reward_t *r, ra_error_t *err)
{
  ra_config_t c;
  ra_config_init (&c, kv, n, "config", err);
  return ra_reward_from_config (&c, r, err);
}

Test (reward, named_kinds_are_one_hot)
{
  ra_event_t e = { .k = 2, .item = { 4, 9 }, .clicked = { 0, 1 }, .purchased = { 0, 1 },
                   .revenue = { 0, 30 }, .margin = { 0, 6 } };
  float tot[RA_METRIC_COUNT];
  ra_event_totals (&e, tot);
  const char *kinds[] = { "revenue", "clicks", "purchases", "margin" };
  const float expect[] = { 30, 1, 1, 6 };
  for (int i = 0; i < 4; i++) {
    ra_kv_t kv = { .key = "reward", .type = RA_KV_STR, .str = kinds[i] };
    ra_reward_t r;
    ra_error_t err;
    cr_assert_eq (s_from (&kv, 1, &r, &err), RA_OK);
    cr_assert_float_eq (ra_reward_eval (&r, tot), expect[i], 1e-6);
  }
  ra_reward_t r;
  ra_error_t err;
  cr_assert_eq (s_from (NULL, 0, &r, &err), RA_OK);   /* default: revenue */
  cr_assert_float_eq (ra_reward_eval (&r, tot), 30, 1e-6);
}

Test (reward, weighted_sums_the_configured_weights)
{
  ra_kv_t kv[] = {
    { .key = "reward", .type = RA_KV_STR, .str = "weighted" },
    { .key = "reward_weights.clicks", .type = RA_KV_NUM, .num = 0.1 },
    { .key = "reward_weights.revenue", .type = RA_KV_NUM, .num = 1.0 },
    { .key = "reward_weights.margin", .type = RA_KV_NUM, .num = -0.5 },
  };
  ra_reward_t r;
  ra_error_t err;
  cr_assert_eq (s_from (kv, 4, &r, &err), RA_OK);
  float tot[RA_METRIC_COUNT] = { 1, 1, 30, 6 };
  cr_assert_float_eq (ra_reward_eval (&r, tot), 0.1 + 30 - 3, 1e-5);
  double mx[RA_METRIC_COUNT] = { 1, 1, 100, 100 }, range[2];
  ra_reward_range (&r, mx, range);
  cr_assert_float_eq (range[0], -50, 1e-5);
  cr_assert_float_eq (range[1], 100.1, 1e-5);
}

Test (reward, bad_kind_or_weight_names_the_key)
{
  ra_reward_t r;
  ra_error_t err;
  ra_kv_t bad_kind = { .key = "reward", .type = RA_KV_STR, .str = "likes" };
  cr_assert_eq (s_from (&bad_kind, 1, &r, &err), RA_ERR_BAD_CONFIG);
  cr_assert_neq (strstr (err.message, "'reward'"), NULL);
  ra_kv_t bad_w = { .key = "reward_weights.clicks", .type = RA_KV_STR, .str = "x" };
  cr_assert_eq (s_from (&bad_w, 1, &r, &err), RA_ERR_BAD_CONFIG);
  cr_assert_neq (strstr (err.message, "reward_weights.clicks"), NULL);
}
