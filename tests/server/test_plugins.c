/*  tests/server/test_plugins.c - reward plugins through the server: a plugin loaded at startup is
    selected by name in make's config, an unknown name is BAD_CONFIG, and a client can never make
    the server load a file (there is no op or config key for it). */
#include "helpers.h"

#include "env/core/reward.h"

/* make ECommerce-v1 with config {reward: name}; returns the handle or -1. */
static int64_t s_make_with_reward (th_t *t, const char *reward)
{
  ra_msg_out_t *m = th_begin (t, "make", 4);
  ra_msg_out_str (m, "env");
  ra_msg_out_str (m, "ECommerce-v1");
  ra_msg_out_str (m, "num_envs");
  ra_msg_out_int (m, 4);
  ra_msg_out_str (m, "seed");
  ra_msg_out_int (m, 7);
  ra_msg_out_str (m, "config");
  ra_msg_out_map (m, 1);
  ra_msg_out_str (m, "reward");
  ra_msg_out_str (m, reward);
  if (th_call (t) != RA_OK)
    return -1;
  int64_t h;
  cr_assert_eq (ra_get_int (t->out.root, "handle", &h, NULL), RA_OK);
  return h;
}

/* Sum of rewards over a fixed slate sequence. */
static double s_total_reward (th_t *t, int64_t h)
{
  cr_assert_eq (th_reset (t, h, 11, NULL, 4), RA_OK, "%s", t->err.message);
  double total = 0;
  int32_t a[4 * 3];
  for (int step = 0; step < 30; step++) {
    for (int i = 0; i < 4; i++)
      th_policy (a + 3 * i, i, step, 20, 3);
    cr_assert_eq (th_step (t, h, a, 4, 3), RA_OK, "%s", t->err.message);
    ra_tensor_t r = th_tensor (t, t->out.root, "reward");
    for (int i = 0; i < 4; i++) {
      float v;
      memcpy (&v, (const char *) r.data + 4 * i, 4);
      total += v;
    }
  }
  return total;
}

Test (server_plugins, plugin_loaded_at_startup_is_selected_by_name)
{
  ra_error_t err;
  cr_assert_eq (ra_reward_plugins_load (RA_EXAMPLE_PLUGIN, &err), RA_OK, "%s", err.message);
  th_t t;
  th_init (&t, 1);
  int64_t plain = s_make_with_reward (&t, "revenue");
  int64_t plug = s_make_with_reward (&t, "plugin:diversity_revenue");
  cr_assert (plain >= 0 && plug >= 0, "%s", t.err.message);
  double revenue = s_total_reward (&t, plain), diverse = s_total_reward (&t, plug);
  /* Same seeds and slates, so the same clicks: the plugin adds a non-negative topic bonus on
     top of revenue, and some slates get clicked in 30 steps x 4 envs. */
  cr_assert_gt (diverse, revenue, "plugin reward %.3f should exceed revenue %.3f", diverse, revenue);
  th_fini (&t);
  ra_reward_plugins_unload_all ();
}

Test (server_plugins, unknown_plugin_name_is_bad_config)
{
  th_t t;
  th_init (&t, 1);
  cr_assert_eq (s_make_with_reward (&t, "plugin:not_loaded"), -1);
  cr_assert_eq (t.err.code, RA_ERR_BAD_CONFIG, "%s", t.err.message);
  cr_assert (strstr (t.err.message, "not_loaded"), "%s", t.err.message);
  th_fini (&t);
}
