/*  tests/env/test_task.c - env/core/task with ECommerce-v1's parameter table: draws are
    deterministic, splits are disjoint streams, ood is shifted, overrides are checked by name. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "env/core/task.h"

static const ra_task_param_def_t s_defs[] = {
  { "a", 0, 1, 2, 3, false, false, -10, 10 },
  { "b", 10, 100, 1, 2, true, false, 0.5, 1000 },
  { "seed", 0, 1000000, 0, 1000000, false, true, 0, 1e9 },
};
static const double s_dflt[] = { 0.5, 20, 7 };

static ra_task_values_t s_get (const char *split, int64_t id)
{
  ra_task_t t = { .split = split, .id = id };
  ra_task_values_t v;
  ra_error_t err;
  cr_assert_eq (ra_task_resolve (s_defs, 3, 99, s_dflt, &t, &v, &err), RA_OK, "%s", err.message);
  return v;
}

Test (task, draws_are_deterministic)
{
  for (int id = 0; id < 50; id++) {
    ra_task_values_t a = s_get ("train", id), b = s_get ("train", id);
    cr_assert (ra_task_same_world (&a, &b, 3));
    cr_assert_eq (a.split, RA_SPLIT_TRAIN);
    cr_assert_eq (a.id, id);
    cr_assert_eq (a.values[2], floor (a.values[2]));   /* integer parameter */
  }
}

Test (task, splits_are_disjoint_streams_of_one_distribution)
{
  const char *splits[] = { "train", "val", "test" };
  enum { N = 300 };
  static ra_task_values_t v[3][N];
  double mean[3] = { 0 };
  for (int s = 0; s < 3; s++)
    for (int id = 0; id < N; id++) {
      v[s][id] = s_get (splits[s], id);
      cr_assert (v[s][id].values[0] >= 0 && v[s][id].values[0] <= 1);
      cr_assert (v[s][id].values[1] >= 10 && v[s][id].values[1] <= 100);
      mean[s] += v[s][id].values[0] / N;
    }
  /* no world appears in two splits (or twice in one) among the first N ids */
  for (int s = 0; s < 3; s++)
    for (int t = s; t < 3; t++)
      for (int i = 0; i < N; i++)
        for (int j = (s == t ? i + 1 : 0); j < N; j++)
          cr_assert (!ra_task_same_world (&v[s][i], &v[t][j], 3), "%s/%d equals %s/%d", splits[s], i,
                     splits[t], j);
  /* same distribution: uniform(0, 1) means agree within 6 sd of a difference (sd ~ 0.024) */
  cr_assert_lt (fabs (mean[0] - mean[1]), 0.14);
  cr_assert_lt (fabs (mean[0] - mean[2]), 0.14);
}

Test (task, ood_draws_from_the_shifted_ranges)
{
  for (int id = 0; id < 100; id++) {
    ra_task_values_t o = s_get ("ood", id);
    cr_assert (o.values[0] >= 2 && o.values[0] <= 3);
    cr_assert (o.values[1] >= 1 && o.values[1] <= 2);
  }
}

Test (task, overrides_apply_after_the_draw_and_on_the_default)
{
  ra_kv_t kv[] = { { .key = "a", .type = RA_KV_NUM, .num = -4 } };
  ra_task_t t = { .split = NULL, .params = kv, .n_params = 1 };
  ra_task_values_t v;
  ra_error_t err;
  cr_assert_eq (ra_task_resolve (s_defs, 3, 99, s_dflt, &t, &v, &err), RA_OK);
  cr_assert_eq (v.values[0], -4);
  cr_assert_eq (v.values[1], 20);
  cr_assert_eq (v.split, RA_SPLIT_DEFAULT);
  t.split = "val";
  t.id = 3;
  cr_assert_eq (ra_task_resolve (s_defs, 3, 99, s_dflt, &t, &v, &err), RA_OK);
  ra_task_values_t drawn = s_get ("val", 3);
  cr_assert_eq (v.values[0], -4);
  cr_assert_eq (v.values[1], drawn.values[1]);
  cr_assert_eq (ra_task_resolve (s_defs, 3, 99, s_dflt, NULL, &v, &err), RA_OK);
  cr_assert_eq (v.values[0], 0.5);
  ra_kv_t out[8];
  int n = ra_task_describe (s_defs, 3, &v, out, 8);
  cr_assert_eq (n, 5);
  cr_assert_str_eq (out[0].key, "split");
  cr_assert_str_eq (out[0].str, "default");
  cr_assert_str_eq (out[3].key, "b");
  cr_assert_eq (out[3].num, 20);
  cr_assert_eq (ra_task_describe (s_defs, 3, &v, out, 2), 2);
}

Test (task, bad_tasks_are_bad_config_naming_what)
{
  ra_task_values_t v;
  ra_error_t err;
  ra_task_t t = { .split = "holdout", .id = 1 };
  cr_assert_eq (ra_task_resolve (s_defs, 3, 99, s_dflt, &t, &v, &err), RA_ERR_BAD_CONFIG);
  cr_assert_neq (strstr (err.message, "holdout"), NULL);
  t.split = "train";
  t.id = -1;
  cr_assert_eq (ra_task_resolve (s_defs, 3, 99, s_dflt, &t, &v, &err), RA_ERR_BAD_CONFIG);
  ra_kv_t unknown[] = { { .key = "zeta", .type = RA_KV_NUM, .num = 1 } };
  ra_task_t u = { .params = unknown, .n_params = 1 };
  cr_assert_eq (ra_task_resolve (s_defs, 3, 99, s_dflt, &u, &v, &err), RA_ERR_BAD_CONFIG);
  cr_assert_neq (strstr (err.message, "zeta"), NULL);
  ra_kv_t range[] = { { .key = "b", .type = RA_KV_NUM, .num = 0.1 } };
  ra_task_t w = { .params = range, .n_params = 1 };
  cr_assert_eq (ra_task_resolve (s_defs, 3, 99, s_dflt, &w, &v, &err), RA_ERR_BAD_CONFIG);
  cr_assert_neq (strstr (err.message, "'b'"), NULL);
  ra_kv_t frac[] = { { .key = "seed", .type = RA_KV_NUM, .num = 1.5 } };
  ra_task_t x = { .params = frac, .n_params = 1 };
  cr_assert_eq (ra_task_resolve (s_defs, 3, 99, s_dflt, &x, &v, &err), RA_ERR_BAD_CONFIG);
}
