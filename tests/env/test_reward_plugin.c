/*  tests/env/test_reward_plugin.c - reward plugins (docs/sims/shared.md section 3): the example
    plugin loads and is found by name, ECommerce-v1 selects it with reward = "plugin:<name>" and
    its rewards are revenue + weight x distinct clicked topics (Ads-v1, News-v1 and Content-v1
    too: weight x distinct clicked topics, plus the paid revenue in Ads-v1), and every failure (bad path,
    wrong ABI version, unknown name, bad plugin config) is a clear error. Criterion runs each test
    in its own process, so each starts with an empty registry. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "env/core/reward.h"
#include "env/sims/ads.h"
#include "env/sims/content.h"
#include "env/sims/ecommerce.h"
#include "env/sims/news.h"
#include "sim_harness.h"

static const ra_sim_class_t *const E = &ra_ecommerce_class;

static void s_load_example (void)
{
  ra_error_t err;
  cr_assert_eq (ra_reward_plugins_load (RA_EXAMPLE_PLUGIN, &err), RA_OK, "%s", err.message);
}

Test (reward_plugin, example_loads_and_is_found_by_name)
{
  cr_assert_eq (ra_reward_plugins_count (), 0);
  cr_assert_null (ra_reward_plugins_find ("diversity_revenue"));
  s_load_example ();
  const ra_reward_plugin_v1_t *p = ra_reward_plugins_find ("diversity_revenue");
  cr_assert_not_null (p);
  cr_assert_eq (p->abi_version, RA_REWARD_PLUGIN_ABI_VERSION);
  cr_assert_eq (ra_reward_plugins_count (), 1);
  cr_assert_eq (ra_reward_plugins_get (0), p);
  cr_assert_null (ra_reward_plugins_find ("diversity"));
  ra_error_t err;
  cr_assert_eq (ra_reward_plugins_load (RA_EXAMPLE_PLUGIN, &err), RA_ERR_BAD_CONFIG, "a name is loaded once");
  cr_assert (strstr (err.message, "already loaded"), "%s", err.message);
  cr_assert_eq (ra_reward_plugins_count (), 1);
  ra_reward_plugins_unload_all ();
  cr_assert_eq (ra_reward_plugins_count (), 0);
}

Test (reward_plugin, bad_path_is_an_io_error_naming_the_path)
{
  ra_error_t err;
  const char *path = "/nonexistent/dir/libnope.so";
  cr_assert_eq (ra_reward_plugins_load (path, &err), RA_ERR_IO);
  cr_assert (strstr (err.message, path), "%s", err.message);
  cr_assert_eq (ra_reward_plugins_load ("", &err), RA_ERR_IO);
  /* a file that is not a shared library */
  cr_assert_eq (ra_reward_plugins_load (RA_SOURCE_DIR "/tests/env/bad_abi_plugin.c", &err), RA_ERR_IO);
  cr_assert (strstr (err.message, "bad_abi_plugin.c"), "%s", err.message);
  cr_assert_eq (ra_reward_plugins_count (), 0);
}

Test (reward_plugin, wrong_abi_version_is_a_clear_error)
{
  ra_error_t err;
  cr_assert_eq (ra_reward_plugins_load (RA_BAD_PLUGIN, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "ABI version 2, expected 1"), "%s", err.message);
  cr_assert (strstr (err.message, RA_BAD_PLUGIN), "%s", err.message);
  cr_assert_eq (ra_reward_plugins_count (), 0);
  cr_assert_null (ra_reward_plugins_find ("from_the_future"));
}

static ra_err_t s_try_make (const ra_kv_t *cfg, int n, ra_sim_t **sim, ra_error_t *err)
{
  ra_sim_args_t a = { .config = cfg, .n_config = n, .num_envs = 4, .seed = 9 };
  return E->create (&a, sim, err);
}

Test (reward_plugin, unknown_name_and_bad_plugin_config_are_bad_config)
{
  ra_sim_t *sim = NULL;
  ra_error_t err;
  ra_kv_t nope[] = { { .key = "reward", .type = RA_KV_STR, .str = "plugin:nope" } };
  cr_assert_eq (s_try_make (nope, 1, &sim, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "'nope'") && strstr (err.message, "none loaded"), "%s", err.message);
  s_load_example ();
  cr_assert_eq (s_try_make (nope, 1, &sim, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "diversity_revenue"), "lists the loaded ones: %s", err.message);
  ra_kv_t bad_weight[] = { { .key = "reward", .type = RA_KV_STR, .str = "plugin:diversity_revenue" },
                           { .key = "reward_plugin.weight", .type = RA_KV_NUM, .num = -1 } };
  cr_assert_eq (s_try_make (bad_weight, 2, &sim, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "weight"), "%s", err.message);
  ra_kv_t stray[] = { { .key = "reward_plugin.weight", .type = RA_KV_NUM, .num = 1 } };
  cr_assert_eq (s_try_make (stray, 1, &sim, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "reward_plugin.weight"), "%s", err.message);
  /* the plugin was created, then a later key failed: nothing leaks (ASan) */
  ra_kv_t later[] = { { .key = "reward", .type = RA_KV_STR, .str = "plugin:diversity_revenue" },
                      { .key = "task_slots", .type = RA_KV_NUM, .num = 0 } };
  cr_assert_eq (s_try_make (later, 2, &sim, &err), RA_ERR_BAD_CONFIG);
  cr_assert_null (sim);
  ra_reward_plugins_unload_all ();
}

Test (reward_plugin, model_passes_the_event_and_the_default_reward)
{
  s_load_example ();
  ra_kv_t kv[] = { { .key = "reward", .type = RA_KV_STR, .str = "plugin:diversity_revenue" },
                   { .key = "reward_plugin.weight", .type = RA_KV_NUM, .num = 3 } };
  ra_config_t c;
  ra_error_t err;
  cr_assert_eq (ra_config_init (&c, kv, 2, "config", &err), RA_OK);
  ra_reward_model_t m;
  cr_assert_eq (ra_reward_model_from_config (&c, 1, &m, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_config_check_unknown (&c, "", &err), RA_OK, "plugin keys are marked read");
  int32_t item[4] = { 10, 11, 12, 13 }, topic[4] = { 1, 2, 1, 3 };
  uint8_t clicked[4] = { 1, 0, 1, 1 }, conv[4] = { 1, 0, 0, 0 };
  float revenue[4] = { 5, 0, 0, 0 };
  ra_reward_event_v1_t ev = { .size = sizeof ev, .version = RA_REWARD_EVENT_VERSION, .k = 4, .item = item,
                              .topic = topic, .clicked = clicked, .converted = conv, .revenue = revenue };
  float total[RA_METRIC_COUNT] = { 3, 1, 5, 1 };
  /* clicked topics {1, 1, 3}: 2 distinct; 5 + 3 x 2 */
  cr_assert_float_eq (ra_reward_model_eval (&m, total, &ev, 0), 11, 1e-6);
  cr_assert_float_eq (ev.default_reward, 5, 1e-6, "the built-in default (revenue)");
  ev.topic = NULL;   /* no topics: distinct items, 3 */
  cr_assert_float_eq (ra_reward_model_eval (&m, total, &ev, 0), 14, 1e-6);
  double range[2];
  ra_reward_model_range (&m, NULL, range);
  cr_assert (isinf (range[0]) && range[0] < 0 && isinf (range[1]));
  ra_reward_model_fini (&m);
  ra_reward_model_fini (&m);
  ra_reward_plugins_unload_all ();
}

/* Steps two same-seed batches, one with the built-in revenue reward and one with the plugin:
   trajectories are the same (the reward does not touch the RNG), and every plugin reward is
   revenue + weight x distinct clicked topics computed from info and the catalog. */
Test (reward_plugin, ecommerce_rewards_are_revenue_plus_weighted_distinct_topics)
{
  s_load_example ();
  const float weight = 2.5f;
  ra_kv_t base[] = { { .key = "choice_model", .type = RA_KV_STR, .str = "position_based" },
                     { .key = "no_click_utility", .type = RA_KV_NUM, .num = -1 },
                     { .key = "reward", .type = RA_KV_STR, .str = "plugin:diversity_revenue" },
                     { .key = "reward_plugin.weight", .type = RA_KV_NUM, .num = weight } };
  ra_sim_t *plug = NULL, *rev = NULL;
  ra_error_t err;
  cr_assert_eq (s_try_make (base, 4, &plug, &err), RA_OK, "%s", err.message);
  cr_assert_eq (s_try_make (base, 2, &rev, &err), RA_OK, "%s", err.message);
  const ra_sim_spec_t *sp = E->spec (plug);
  cr_assert (isinf (sp->reward_range[1]));
  harness_t hp, hr;
  h_init (&hp, sp, 4);
  h_init (&hr, E->spec (rev), 4);
  E->reset (plug, 0, 4, NULL, NULL, &hp.buf);
  E->reset (rev, 0, 4, NULL, NULL, &hr.buf);
  const int k = sp->slate_size, K = sp->num_candidates;
  int f_item = h_info_index (&hp, "item"), f_click = h_info_index (&hp, "clicked");
  int f_rev = h_info_index (&hp, "revenue");
  ra_rng_t arng;
  ra_rng_seed (&arng, 4, 0);
  int32_t act[4 * RA_CHOICE_MAX_SLATE];
  int multi = 0, bonus_steps = 0;
  for (int t = 0; t < 200; t++) {
    for (int i = 0; i < 4; i++)
      h_random_slate (&arng, K, k, act + i * k);
    E->step (plug, 0, 4, act, &hp.buf);
    E->step (rev, 0, 4, act, &hr.buf);
    for (int i = 0; i < 4; i++) {
      ra_ecommerce_view_t v;
      ra_ecommerce_view (plug, i, &v);
      const int32_t *item = (const int32_t *) hp.buf.info[f_item] + i * k;
      const uint8_t *clicked = (const uint8_t *) hp.buf.info[f_click] + i * k;
      const float *revenue = (const float *) hp.buf.info[f_rev] + i * k;
      cr_assert_eq (memcmp (item, (const int32_t *) hr.buf.info[f_item] + i * k, (size_t) k * 4), 0);
      double sum = 0;
      int distinct = 0, clicks = 0;
      for (int r = 0; r < k; r++) {
        sum += revenue[r];
        clicks += clicked[r];
        int seen = 0;
        for (int q = 0; q < r; q++)
          seen |= clicked[q] && v.catalog->topic[item[q]] == v.catalog->topic[item[r]];
        distinct += clicked[r] && !seen;
      }
      multi += clicks > 1;
      bonus_steps += distinct > 0;
      cr_assert_float_eq (hr.buf.reward[i], sum, 1e-4, "built-in revenue");
      cr_assert_float_eq (hp.buf.reward[i], sum + weight * distinct, 1e-4, "step %d env %d", t, i);
      if (hp.buf.terminated[i]) {
        uint8_t mask[4] = { 0 };
        mask[i] = 1;
        E->reset (plug, 0, 4, NULL, mask, &hp.buf);
        E->reset (rev, 0, 4, NULL, mask, &hr.buf);
      }
    }
  }
  cr_assert_gt (multi, 10, "position_based gives several clicks per slate: %d", multi);
  cr_assert_gt (bonus_steps, 50);
  h_fini (&hp);
  h_fini (&hr);
  E->destroy (&plug);
  E->destroy (&rev);
  ra_reward_plugins_unload_all ();
}

/* ---- Ads-v1, News-v1, Content-v1 (ra_reward_plugin_from_config) ---- */

/* The topic of candidate a of env i's current observation, from the sim's test view. */
typedef int (*s_topic_fn) (const ra_sim_t *sim, int i, int a);

static int s_ads_topic (const ra_sim_t *sim, int i, int a)
{
  ra_ads_view_t v;
  ra_ads_view (sim, i, &v);
  return v.catalog->topic[v.candidates[a]];
}

static int s_news_topic (const ra_sim_t *sim, int i, int a)
{
  ra_news_view_t v;
  ra_news_view (sim, i, &v);
  return v.art_topic[v.candidates[a]];
}

static int s_content_topic (const ra_sim_t *sim, int i, int a)
{
  ra_content_view_t v;
  ra_content_view (sim, i, &v);
  return v.catalog->topic[v.candidates[a]];
}

/* Steps a plugin sim and a built-in twin with the same seed and actions: the trajectories are the
   same, and every plugin reward is revenue (info "revenue" when the sim has it, else 0) + weight
   x distinct topics among the clicked slots, the topics read from the sim's view before the step. */
static void s_check_plugin_rewards (const ra_sim_class_t *C, s_topic_fn topic_of, bool has_revenue)
{
  s_load_example ();
  const float weight = 2.5f;
  const int N = 4;
  ra_kv_t base[] = { { .key = "choice_model", .type = RA_KV_STR, .str = "position_based" },
                     { .key = "reward", .type = RA_KV_STR, .str = "plugin:diversity_revenue" },
                     { .key = "reward_plugin.weight", .type = RA_KV_NUM, .num = weight } };
  ra_sim_t *plug = NULL, *twin = NULL;
  ra_error_t err;
  ra_sim_args_t a = { .config = base, .n_config = 3, .num_envs = N, .seed = 9 };
  cr_assert_eq (C->create (&a, &plug, &err), RA_OK, "%s: %s", C->name, err.message);
  a.n_config = 1;
  cr_assert_eq (C->create (&a, &twin, &err), RA_OK, "%s: %s", C->name, err.message);
  const ra_sim_spec_t *sp = C->spec (plug);
  cr_assert (isinf (sp->reward_range[0]) && sp->reward_range[0] < 0 && isinf (sp->reward_range[1]),
             "no range function: unbounded");
  harness_t hp, ht;
  h_init (&hp, sp, N);
  h_init (&ht, C->spec (twin), N);
  C->reset (plug, 0, N, NULL, NULL, &hp.buf);
  C->reset (twin, 0, N, NULL, NULL, &ht.buf);
  const int k = sp->slate_size, K = sp->num_candidates;
  int f_item = h_info_index (&hp, "item"), f_click = h_info_index (&hp, "clicked");
  int f_rev = has_revenue ? h_info_index (&hp, "revenue") : -1;
  ra_rng_t arng;
  ra_rng_seed (&arng, 4, 0);
  int32_t act[4 * RA_CHOICE_MAX_SLATE];
  int topic[4][RA_CHOICE_MAX_SLATE];
  int multi = 0, bonus_steps = 0;
  for (int t = 0; t < 200; t++) {
    for (int i = 0; i < N; i++) {
      h_random_slate (&arng, K, k, act + i * k);
      for (int r = 0; r < k; r++)
        topic[i][r] = topic_of (plug, i, act[i * k + r]);
    }
    C->step (plug, 0, N, act, &hp.buf);
    C->step (twin, 0, N, act, &ht.buf);
    for (int i = 0; i < N; i++) {
      const int32_t *item = (const int32_t *) hp.buf.info[f_item] + i * k;
      const uint8_t *clicked = (const uint8_t *) hp.buf.info[f_click] + i * k;
      cr_assert_eq (memcmp (item, (const int32_t *) ht.buf.info[f_item] + i * k, (size_t) k * 4), 0);
      cr_assert_eq (memcmp (clicked, (const uint8_t *) ht.buf.info[f_click] + i * k, (size_t) k), 0);
      cr_assert_eq (hp.buf.terminated[i], ht.buf.terminated[i]);
      double sum = 0;
      int distinct = 0, clicks = 0;
      for (int r = 0; r < k; r++) {
        if (f_rev >= 0)
          sum += ((const float *) hp.buf.info[f_rev])[i * k + r];
        clicks += clicked[r];
        int seen = 0;
        for (int q = 0; q < r; q++)
          seen |= clicked[q] && topic[i][q] == topic[i][r];
        distinct += clicked[r] && !seen;
      }
      multi += clicks > 1;
      bonus_steps += distinct > 0;
      cr_assert_float_eq (hp.buf.reward[i], sum + weight * distinct, 1e-4, "%s step %d env %d", C->name, t, i);
      if (hp.buf.terminated[i]) {
        uint8_t mask[4] = { 0 };
        mask[i] = 1;
        C->reset (plug, 0, N, NULL, mask, &hp.buf);
        C->reset (twin, 0, N, NULL, mask, &ht.buf);
      }
    }
  }
  cr_assert_gt (multi, 10, "%s: position_based gives several clicks per slate: %d", C->name, multi);
  cr_assert_gt (bonus_steps, 50, "%s: %d", C->name, bonus_steps);
  h_fini (&hp);
  h_fini (&ht);
  C->destroy (&plug);
  C->destroy (&twin);
  ra_reward_plugins_unload_all ();
}

/* Unknown name (none loaded, then one loaded), stray reward_plugin.* keys, a bad plugin config and
   a later key failing after the plugin was created (nothing leaks under ASan): all BAD_CONFIG. */
static void s_check_plugin_errors (const ra_sim_class_t *C)
{
  ra_sim_t *sim = NULL;
  ra_error_t err;
  ra_kv_t nope[] = { { .key = "reward", .type = RA_KV_STR, .str = "plugin:nope" } };
  ra_sim_args_t a = { .config = nope, .n_config = 1, .num_envs = 4, .seed = 9 };
  cr_assert_eq (C->create (&a, &sim, &err), RA_ERR_BAD_CONFIG, "%s", C->name);
  cr_assert (strstr (err.message, "'nope'") && strstr (err.message, "none loaded"), "%s", err.message);
  s_load_example ();
  cr_assert_eq (C->create (&a, &sim, &err), RA_ERR_BAD_CONFIG, "%s", C->name);
  cr_assert (strstr (err.message, "'nope'") && strstr (err.message, "diversity_revenue"), "%s", err.message);
  ra_kv_t stray[] = { { .key = "reward_plugin.weight", .type = RA_KV_NUM, .num = 1 } };
  a.config = stray;
  cr_assert_eq (C->create (&a, &sim, &err), RA_ERR_BAD_CONFIG, "%s", C->name);
  cr_assert (strstr (err.message, "reward_plugin.weight"), "%s", err.message);
  ra_kv_t bad_weight[] = { { .key = "reward", .type = RA_KV_STR, .str = "plugin:diversity_revenue" },
                           { .key = "reward_plugin.weight", .type = RA_KV_NUM, .num = -1 } };
  a.config = bad_weight;
  a.n_config = 2;
  cr_assert_eq (C->create (&a, &sim, &err), RA_ERR_BAD_CONFIG, "%s", C->name);
  cr_assert (strstr (err.message, "weight"), "%s", err.message);
  ra_kv_t later[] = { { .key = "reward", .type = RA_KV_STR, .str = "plugin:diversity_revenue" },
                      { .key = "task_slots", .type = RA_KV_NUM, .num = 0 } };
  a.config = later;
  cr_assert_eq (C->create (&a, &sim, &err), RA_ERR_BAD_CONFIG, "%s", C->name);
  cr_assert_null (sim);
  cr_assert_null (ra_reward_plugins_find ("nope"));
  ra_reward_plugins_unload_all ();
}

Test (reward_plugin, ads_rewards_are_revenue_plus_weighted_distinct_topics)
{
  s_check_plugin_rewards (&ra_ads_class, s_ads_topic, true);
}

Test (reward_plugin, news_rewards_are_weighted_distinct_topics)
{
  s_check_plugin_rewards (&ra_news_class, s_news_topic, false);
}

Test (reward_plugin, content_rewards_are_weighted_distinct_topics)
{
  s_check_plugin_rewards (&ra_content_class, s_content_topic, false);
}

Test (reward_plugin, ads_news_content_unknown_plugin_and_stray_keys_are_bad_config)
{
  s_check_plugin_errors (&ra_ads_class);
  s_check_plugin_errors (&ra_news_class);
  s_check_plugin_errors (&ra_content_class);
}
