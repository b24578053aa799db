/*  tests/env/test_ecommerce.c - ECommerce-v1 against env/core/sim.h and docs/sims/ecommerce.md:
    reproducibility (seeds, batch sizes, call ranges), bounds, the documented click and purchase
    equations, budgets, oracle vs random, tasks, and config errors naming their key. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "env/sims/ecommerce.h"
#include "env/sims/registry.h"
#include "sim_harness.h"

/* A cheap assert for hot test loops: Criterion only sees failures. */
#define CHECK(cond, ...) do { if (!(cond)) cr_assert_fail (__VA_ARGS__); } while (0)

static const ra_sim_class_t *E = &ra_ecommerce_class;

static ra_sim_t *s_make (int n, uint64_t seed, const ra_kv_t *cfg, int n_cfg, const ra_task_t *task)
{
  return h_make (E, n, seed, cfg, n_cfg, task);
}

Test (ecommerce, registry_finds_it_by_name)
{
  int n;
  const ra_sim_class_t *const *all = ra_sims_all (&n);
  cr_assert_geq (n, 1);
  cr_assert_eq (all[0], E);
  cr_assert_eq (ra_sims_find ("ECommerce-v1", 12), E);
  cr_assert_null (ra_sims_find ("ECommerce-v1x", 13));
  cr_assert_null (ra_sims_find ("ECommerce", 9));
}

Test (ecommerce, every_sims_check_gives_the_error_of_its_create)
{
  /* The server checks a make with check before it estimates its bytes (docs/protocol.md section
     "Limits"): check must refuse what create refuses, with the same message, and pass the rest. */
  ra_kv_t bad[][1] = {
    { { .key = "num_candidates", .type = RA_KV_NUM, .num = 1e12 } },
    { { .key = "embedding_dim", .type = RA_KV_NUM, .num = -3 } },
    { { .key = "no_such_key", .type = RA_KV_NUM, .num = 1 } },
    { { .key = "task_slots", .type = RA_KV_STR, .str = "many" } },
  };
  ra_task_t bad_task = { .split = "nope", .id = 1 };
  int n;
  const ra_sim_class_t *const *all = ra_sims_all (&n);
  for (int c = 0; c < n; c++) {
    const ra_sim_class_t *cls = all[c];
    ra_sim_args_t args = { .num_envs = 3, .seed = 1 };
    ra_error_t e1, e2;
    ra_sim_t *sim = NULL;
    cr_assert_eq (cls->check (&args, &e1), RA_OK, "%s: %s", cls->name, e1.message);
    for (size_t b = 0; b <= sizeof bad / sizeof bad[0]; b++) {
      args.config = b < sizeof bad / sizeof bad[0] ? bad[b] : NULL;
      args.n_config = b < sizeof bad / sizeof bad[0] ? 1 : 0;
      args.task = b < sizeof bad / sizeof bad[0] ? NULL : &bad_task;
      ra_error_clear (&e1);
      ra_error_clear (&e2);
      cr_assert_eq (cls->check (&args, &e1), RA_ERR_BAD_CONFIG, "%s case %zu", cls->name, b);
      cr_assert_eq (cls->create (&args, &sim, &e2), RA_ERR_BAD_CONFIG, "%s case %zu", cls->name, b);
      cr_assert_null (sim);
      cr_assert_str_eq (e1.message, e2.message, "%s case %zu", cls->name, b);
    }
  }
}

Test (ecommerce, spec_has_the_documented_fields)
{
  ra_sim_t *sim = s_make (2, 1, NULL, 0, NULL);
  const ra_sim_spec_t *sp = E->spec (sim);
  cr_assert_eq (sp->num_candidates, 20);
  cr_assert_eq (sp->slate_size, 3);
  cr_assert_eq (sp->max_episode_steps, 50);
  cr_assert_eq (sp->n_obs, 4);
  cr_assert_str_eq (sp->obs[0].name, "user");
  cr_assert_eq (sp->obs[0].shape[0], 20);
  cr_assert_str_eq (sp->obs[1].name, "candidates");
  cr_assert_eq (sp->obs[1].shape[0], 20);
  cr_assert_eq (sp->obs[1].shape[1], 20);
  cr_assert_str_eq (sp->obs[2].name, "response");
  cr_assert_eq (sp->obs[2].shape[0], 7);
  cr_assert_str_eq (sp->obs[3].name, "item_ids");
  cr_assert_eq (sp->obs[3].dtype, RA_DTYPE_I32);
  cr_assert_eq (sp->obs[3].ndim, 1);
  cr_assert_eq (sp->obs[3].shape[0], 20);
  cr_assert_eq (sp->obs[3].low, 0);
  cr_assert_eq (sp->obs[3].high, 999);
  cr_assert_eq (sp->n_info, 6);
  const char *names[] = { "item", "clicked", "purchased", "revenue", "margin", "budget" };
  for (int f = 0; f < 6; f++)
    cr_assert_str_eq (sp->info[f].name, names[f]);
  cr_assert_eq (sp->reward_range[0], 0);
  cr_assert_eq (sp->reward_range[1], RA_CATALOG_PRICE_MAX);
  E->destroy (&sim);
  cr_assert_null (sim);
  E->destroy (&sim);   /* accepts NULL */
  ra_kv_t cfg[] = { { .key = "oracle", .type = RA_KV_BOOL, .num = 1 },
                    { .key = "slate_size", .type = RA_KV_NUM, .num = 1 } };
  sim = s_make (2, 1, cfg, 2, NULL);
  sp = E->spec (sim);
  cr_assert_eq (sp->n_info, 9);
  cr_assert_str_eq (sp->info[6].name, "oracle_reward");
  cr_assert_str_eq (sp->info[7].name, "regret");
  cr_assert_str_eq (sp->info[8].name, "oracle_slate");
  cr_assert_eq (sp->slate_size, 1);
  E->destroy (&sim);
}

Test (ecommerce, item_ids_are_the_ids_info_item_reports)
{
  /* obs item_ids (catalog ids); item[r] = item_ids[slate[r]] */
  ra_sim_t *sim = s_make (64, 9, NULL, 0, NULL);
  char why[256] = "";
  long repeats;
  long compared = h_check_item_ids (E, sim, 64, 60, 17, 16, &repeats, why, sizeof why);
  cr_assert_geq (compared, 64L * 60 * 3, "%s", why);
  cr_assert_gt (repeats, 1000, "ids seen in consecutive observations: %ld", repeats);   /* the stability check ran */
  E->destroy (&sim);
}

/* Runs n envs for `steps` steps with random slates (env i's actions depend only on
   first_env + i and the step), resetting terminated envs, over the ranges split at `cut`.
   Records env `watch` (h_run). */
static void s_run (ra_sim_t *sim, int n, int first_env, int steps, int cut, int watch, h_trace_t *tr)
{
  h_run (E, sim, n, first_env, steps, cut, watch, NULL, tr);
}

Test (ecommerce, same_seed_gives_the_same_trajectory)
{
  const int steps = 300;
  ra_sim_t *a = s_make (8, 77, NULL, 0, NULL), *b = s_make (8, 77, NULL, 0, NULL), *c = s_make (8, 78, NULL, 0, NULL);
  harness_t h;
  h_init (&h, E->spec (a), 1);
  size_t rb = h_obs_row_bytes (&h);
  h_fini (&h);
  h_trace_t ta = h_trace_new (steps, rb), tb = h_trace_new (steps, rb), tc = h_trace_new (steps, rb);
  s_run (a, 8, 0, steps, 0, 5, &ta);
  s_run (b, 8, 0, steps, 0, 5, &tb);
  s_run (c, 8, 0, steps, 0, 5, &tc);
  cr_assert_eq (memcmp (ta.obs, tb.obs, (size_t) (steps + 1) * rb), 0);
  cr_assert_eq (memcmp (ta.reward, tb.reward, (size_t) steps * sizeof (float)), 0);
  cr_assert_eq (memcmp (ta.term, tb.term, (size_t) steps), 0);
  cr_assert_neq (memcmp (ta.obs, tc.obs, (size_t) (steps + 1) * rb), 0);
  int terms = 0;
  for (int t = 0; t < steps; t++)
    terms += ta.term[t];
  cr_assert_gt (terms, 2, "300 steps should span several episodes");
  h_trace_free (&ta);
  h_trace_free (&tb);
  h_trace_free (&tc);
  E->destroy (&a);
  E->destroy (&b);
  E->destroy (&c);
}

Test (ecommerce, env_in_a_batch_of_256_split_in_ranges_equals_it_alone)
{
  const int steps = 150;
  const int watch[] = { 0, 7, 255 };
  for (int w = 0; w < 3; w++) {
    int i = watch[w];
    ra_sim_t *big = s_make (256, 900, NULL, 0, NULL), *one = s_make (1, 900 + (uint64_t) i, NULL, 0, NULL);
    harness_t h;
    h_init (&h, E->spec (one), 1);
    size_t rb = h_obs_row_bytes (&h);
    h_fini (&h);
    h_trace_t tb = h_trace_new (steps, rb), to = h_trace_new (steps, rb);
    s_run (big, 256, 0, steps, 7, i, &tb);
    s_run (one, 1, i, steps, 0, 0, &to);
    cr_assert_eq (memcmp (tb.obs, to.obs, (size_t) (steps + 1) * rb), 0, "env %d obs", i);
    cr_assert_eq (memcmp (tb.reward, to.reward, (size_t) steps * sizeof (float)), 0, "env %d rewards", i);
    cr_assert_eq (memcmp (tb.term, to.term, (size_t) steps), 0, "env %d terminated", i);
    h_trace_free (&tb);
    h_trace_free (&to);
    E->destroy (&big);
    E->destroy (&one);
  }
}

Test (ecommerce, reset_with_seeds_restarts_the_stream)
{
  ra_sim_t *sim = s_make (4, 1, NULL, 0, NULL);
  harness_t h;
  h_init (&h, E->spec (sim), 4);
  uint64_t seeds[4] = { 50, 51, 52, 50 };
  E->reset (sim, 0, 4, seeds, NULL, &h.buf);
  size_t cb = h.obs_bytes[1];
  char *c = (char *) h.buf.obs[1];
  cr_assert_eq (memcmp (c, c + 3 * cb, cb), 0, "envs 0 and 3 share seed 50");
  cr_assert_neq (memcmp (c, c + 1 * cb, cb), 0);
  /* a fresh sim made with seed 50 has env 0 in the same state */
  ra_sim_t *other = s_make (1, 50, NULL, 0, NULL);
  harness_t g;
  h_init (&g, E->spec (other), 1);
  E->reset (other, 0, 1, NULL, NULL, &g.buf);
  cr_assert_eq (memcmp (c, g.buf.obs[1], cb), 0);
  h_fini (&g);
  h_fini (&h);
  E->destroy (&other);
  E->destroy (&sim);
}

Test (ecommerce, long_random_runs_stay_inside_declared_bounds)
{
  const int n = 256, steps = 150;
  ra_kv_t cfg[] = { { .key = "oracle", .type = RA_KV_BOOL, .num = 1 } };
  ra_task_t ood = { .split = "ood", .id = 3 };
  for (int pass = 0; pass < 2; pass++) {
    ra_sim_t *sim = s_make (n, 5, cfg, 1, pass ? &ood : NULL);
    harness_t h;
    h_init (&h, E->spec (sim), n);
    const ra_sim_spec_t *sp = h.spec;
    int fb = h_info_index (&h, "budget"), fr = h_info_index (&h, "revenue"), fg = h_info_index (&h, "regret");
    int fp = h_info_index (&h, "purchased"), fc = h_info_index (&h, "clicked");
    ra_rng_t rng;
    ra_rng_seed (&rng, 8, 0);
    int32_t *act = calloc ((size_t) n * sp->slate_size, sizeof (int32_t));
    E->reset (sim, 0, n, NULL, NULL, &h.buf);
    long clicks = 0, buys = 0;
    for (int t = 0; t <= steps; t++) {
      for (int f = 0; f < sp->n_obs; f++) {
        double x;
        size_t m = (size_t) n * h_numel (&sp->obs[f]);
        size_t bad = h_obs_first_out_of_bounds (&h, f, n, &x);
        cr_assert_eq (bad, m, "step %d field %s elem %zu = %g", t, sp->obs[f].name, bad, x);
      }
      if (t == steps)
        break;
      for (int i = 0; i < n; i++)
        h_random_slate (&rng, sp->num_candidates, sp->slate_size, act + (size_t) i * sp->slate_size);
      E->step (sim, 0, n, act, &h.buf);
      for (int i = 0; i < n; i++) {
        float b = ((float *) h.buf.info[fb])[i];
        CHECK (b >= 0, "budget %g", b);
        CHECK (h.buf.reward[i] >= sp->reward_range[0] && h.buf.reward[i] <= sp->reward_range[1], "reward %g", h.buf.reward[i]);
        CHECK (((float *) h.buf.info[fg])[i] >= 0, "regret < 0");
        int nc = 0;
        for (int r = 0; r < sp->slate_size; r++) {
          uint8_t c = ((uint8_t *) h.buf.info[fc])[i * sp->slate_size + r];
          uint8_t p = ((uint8_t *) h.buf.info[fp])[i * sp->slate_size + r];
          CHECK (c <= 1 && p <= c, "purchase without click");
          nc += c;
          buys += p;
          CHECK (((float *) h.buf.info[fr])[i * sp->slate_size + r] >= 0, "negative revenue");
        }
        CHECK (nc <= 1, "%d clicks", nc);
        clicks += nc;
      }
      E->reset (sim, 0, n, NULL, h.buf.terminated, &h.buf);
    }
    cr_assert_gt (clicks, 500);
    cr_assert_gt (buys, 50);
    free (act);
    h_fini (&h);
    E->destroy (&sim);
  }
}

/* Golden equations: from the hidden state (view), recompute docs 4.1 and 5.1 in double, then
   check that observed clicks and purchases match the summed predicted probabilities within
   5 standard deviations (sum of Bernoulli variances). Also checks 5.2 (budget) and 3.3 (drift)
   exactly. */
Test (ecommerce, clicks_and_purchases_follow_the_documented_equations)
{
  const int n = 2048, steps = 12;
  ra_sim_t *sim = s_make (n, 31, NULL, 0, NULL);
  harness_t h;
  h_init (&h, E->spec (sim), n);
  const int K = 20, k = 3, d = 16;
  int fc = h_info_index (&h, "clicked"), fp = h_info_index (&h, "purchased"), fb = h_info_index (&h, "budget");
  int fi = h_info_index (&h, "item");
  ra_rng_t rng;
  ra_rng_seed (&rng, 4, 0);
  int32_t *act = calloc ((size_t) n * k, sizeof (int32_t)), *items = calloc ((size_t) n * k, sizeof (int32_t));
  double *pc = calloc ((size_t) n * k, sizeof (double)), *pb = calloc ((size_t) n * k, sizeof (double));
  float *theta0 = calloc ((size_t) n * d, sizeof (float)), *budget0 = calloc ((size_t) n, sizeof (float));
  double exp_clicks[3] = { 0 }, var_clicks[3] = { 0 }, obs_clicks[3] = { 0 };
  double exp_buys = 0, var_buys = 0, obs_buys = 0;
  E->reset (sim, 0, n, NULL, NULL, &h.buf);
  for (int t = 0; t < steps; t++) {
    for (int i = 0; i < n; i++) {
      int32_t *a = act + (size_t) i * k;
      h_random_slate (&rng, K, k, a);
      ra_ecommerce_view_t v;
      ra_ecommerce_view (sim, i, &v);
      const double *p = v.params;
      double tau = p[RA_ECOM_P_TEMPERATURE], eta = p[RA_ECOM_P_POSITION_BIAS];
      double den = exp (p[RA_ECOM_P_NO_CLICK] / tau), w[3], aff[3];
      for (int r = 0; r < k; r++) {
        int j = v.candidates[a[r]];
        items[i * k + r] = j;
        const float *x = v.catalog->feat + (size_t) j * v.catalog->stride;
        aff[r] = 0;
        for (int q = 0; q < d; q++)
          aff[r] += (double) v.theta[q] * x[q];
        /* 4.1: v_r = (theta . x + gamma_q q) / tau, weight (1/r)^eta e^{v_r} */
        w[r] = pow (1.0 / (r + 1), eta) * exp ((aff[r] + RA_ECOM_QUALITY_WEIGHT * v.catalog->quality[j]) / tau);
        den += w[r];
        /* 5.1: sigma(b0 + ba aff + bq q - lambda_u price / B), 0 when unaffordable */
        double price = v.catalog->price[j], B = v.user->budget;
        pb[(size_t) i * k + r] = price > B ? 0.0
            : 1.0 / (1.0 + exp (-(RA_ECOM_BUY_BIAS + RA_ECOM_BUY_AFFINITY * aff[r]
                                  + RA_ECOM_BUY_QUALITY * v.catalog->quality[j] - v.user->price_sens * price / B)));
      }
      for (int r = 0; r < k; r++)
        pc[(size_t) i * k + r] = w[r] / den;
      memcpy (theta0 + (size_t) i * d, v.theta, (size_t) d * sizeof (float));
      budget0[i] = v.user->budget;
    }
    E->step (sim, 0, n, act, &h.buf);
    for (int i = 0; i < n; i++) {
      ra_ecommerce_view_t v;
      ra_ecommerce_view (sim, i, &v);
      float spent = 0;
      int clicked_item = -1;
      for (int r = 0; r < k; r++) {
        cr_assert_eq (((int32_t *) h.buf.info[fi])[i * k + r], items[i * k + r]);
        double p = pc[(size_t) i * k + r];
        uint8_t c = ((uint8_t *) h.buf.info[fc])[i * k + r];
        exp_clicks[r] += p;
        var_clicks[r] += p * (1 - p);
        obs_clicks[r] += c;
        if (c) {
          double q = pb[(size_t) i * k + r];
          exp_buys += q;
          var_buys += q * (1 - q);
          uint8_t b = ((uint8_t *) h.buf.info[fp])[i * k + r];
          obs_buys += b;
          int j = ((int32_t *) h.buf.info[fi])[i * k + r];
          if (b)
            spent += v.catalog->price[j];
          clicked_item = j;
        }
      }
      /* 5.2: the budget drops by exactly the price of what was bought */
      cr_assert_float_eq (((float *) h.buf.info[fb])[i], budget0[i] - spent, 1e-3);
      cr_assert_eq (h.buf.reward[i], spent);
      /* 3.3: theta' = normalise((1 - alpha) theta + alpha x) after a click */
      if (clicked_item >= 0 && !h.buf.terminated[i]) {
        double alpha = v.params[RA_ECOM_P_DRIFT], nv[16], nn = 0;
        const float *x = v.catalog->feat + (size_t) clicked_item * v.catalog->stride;
        for (int q = 0; q < d; q++) {
          nv[q] = (1 - alpha) * theta0[(size_t) i * d + q] + alpha * x[q];
          nn += nv[q] * nv[q];
        }
        for (int q = 0; q < d; q++)
          cr_assert_float_eq (v.theta[q], nv[q] / sqrt (nn), 1e-5);
      }
    }
    E->reset (sim, 0, n, NULL, h.buf.terminated, &h.buf);
  }
  for (int r = 0; r < k; r++)
    cr_assert_lt (fabs (obs_clicks[r] - exp_clicks[r]), 5 * sqrt (var_clicks[r]) + 1,
                  "slot %d: %g clicks, expected %g (sd %g)", r, obs_clicks[r], exp_clicks[r], sqrt (var_clicks[r]));
  cr_assert_lt (fabs (obs_buys - exp_buys), 5 * sqrt (var_buys) + 1, "%g purchases, expected %g (sd %g)",
                obs_buys, exp_buys, sqrt (var_buys));
  /* position bias is visible: slot 1 gets clearly more clicks than slot 3 with random slates */
  cr_assert_gt (obs_clicks[0], 1.5 * obs_clicks[2]);
  free (act);
  free (items);
  free (pc);
  free (pb);
  free (theta0);
  free (budget0);
  h_fini (&h);
  E->destroy (&sim);
}

/* Mean reward per step of the oracle policy (plays info oracle_slate; random on an episode's
   first step) and of a random policy, on n envs for `steps` steps; checks regret >= 0 and that
   the oracle's regret is ~0. */
static void s_oracle_vs_random (const ra_task_t *task, double *oracle, double *random)
{
  h_oracle_vs_random (E, 256, 60, task, oracle, random);
}

Test (ecommerce, oracle_beats_random_and_the_margin_depends_on_the_task)
{
  double o0, r0, o1, r1, o2, r2;
  s_oracle_vs_random (NULL, &o0, &r0);
  ra_task_t train = { .split = "train", .id = 4 }, ood = { .split = "ood", .id = 4 };
  s_oracle_vs_random (&train, &o1, &r1);
  s_oracle_vs_random (&ood, &o2, &r2);
  /* measured (1024 envs x 100 steps): default 9.0 vs 5.9, train/4 7.2 vs 4.3, ood/4 4.1 vs 1.3 */
  cr_assert_gt (o0, 1.3 * r0, "default task: oracle %g vs random %g", o0, r0);
  cr_assert_gt (o1, 1.3 * r1, "train/4: oracle %g vs random %g", o1, r1);
  cr_assert_gt (o2, 1.5 * r2, "ood/4: oracle %g vs random %g", o2, r2);
  double m0 = o0 / r0, m2 = o2 / r2;
  cr_assert_gt (m2, 1.4 * m0, "the oracle's edge differs across tasks: default %g, ood/4 %g", m0, m2);
}

/* Episode statistics of random play on a task: mean clicks per step and mean episode length. */
static void s_stats (const ra_task_t *task, double *ctr, double *len)
{
  h_random_play_stats (E, 256, 60, task, ctr, len);
}

Test (ecommerce, ood_tasks_differ_measurably_from_train_tasks)
{
  double ctr_train = 0, len_train = 0, ctr_ood = 0, len_ood = 0;
  for (int id = 0; id < 3; id++) {
    ra_task_t tr = { .split = "train", .id = id }, od = { .split = "ood", .id = id };
    double c, l;
    s_stats (&tr, &c, &l);
    ctr_train += c / 3;
    len_train += l / 3;
    s_stats (&od, &c, &l);
    ctr_ood += c / 3;
    len_ood += l / 3;
  }
  /* ood: higher no-click utility and temperature, smaller budgets and patience */
  cr_assert_lt (ctr_ood, 0.8 * ctr_train, "ctr train %g ood %g", ctr_train, ctr_ood);
  cr_assert_lt (len_ood, 0.8 * len_train, "length train %g ood %g", len_train, len_ood);
}

Test (ecommerce, tasks_are_deterministic_and_splits_disjoint)
{
  ra_sim_t *sim = s_make (2, 1, NULL, 0, NULL);
  ra_kv_t a[20], b[20];
  ra_error_t err;
  ra_task_t t = { .split = "val", .id = 17 };
  cr_assert_eq (E->set_task (sim, &t, NULL, &err), RA_OK);
  int na = E->describe_task (sim, 0, a, 20);
  cr_assert_eq (na, 2 + RA_ECOM_P_COUNT);
  cr_assert_str_eq (a[0].str, "val");
  cr_assert_eq (a[1].num, 17);
  ra_sim_t *other = s_make (3, 9, NULL, 0, &t);
  int nb = E->describe_task (other, 2, b, 20);
  cr_assert_eq (na, nb);
  for (int q = 2; q < na; q++) {
    cr_assert_str_eq (a[q].key, b[q].key);
    cr_assert_eq (a[q].num, b[q].num, "%s", a[q].key);
  }
  ra_task_t u = { .split = "test", .id = 17 };
  cr_assert_eq (E->set_task (other, &u, NULL, &err), RA_OK);
  E->describe_task (other, 0, b, 20);
  int same = 0;
  for (int q = 2; q < na; q++)
    same += a[q].num == b[q].num;
  cr_assert_lt (same, 2, "val/17 and test/17 share %d parameters", same);
  E->destroy (&other);
  E->destroy (&sim);
}

Test (ecommerce, set_task_applies_at_next_reset_and_catalog_depends_only_on_task)
{
  ra_sim_t *sim = s_make (4, 1, NULL, 0, NULL);
  harness_t h;
  h_init (&h, E->spec (sim), 4);
  ra_error_t err;
  E->reset (sim, 0, 4, NULL, NULL, &h.buf);
  ra_task_t t = { .split = "train", .id = 2 };
  uint8_t mask[4] = { 0, 1, 0, 1 };
  cr_assert_eq (E->set_task (sim, &t, mask, &err), RA_OK);
  ra_ecommerce_view_t v0, v1;
  ra_ecommerce_view (sim, 1, &v1);
  ra_ecommerce_view (sim, 0, &v0);
  cr_assert_eq (v0.catalog, v1.catalog, "not yet applied");
  ra_kv_t d[20];
  E->describe_task (sim, 1, d, 20);
  cr_assert_str_eq (d[0].str, "train");
  E->reset (sim, 0, 4, NULL, NULL, &h.buf);
  ra_ecommerce_view (sim, 1, &v1);
  ra_ecommerce_view (sim, 0, &v0);
  cr_assert_neq (v0.catalog, v1.catalog);
  ra_ecommerce_view_t v3;
  ra_ecommerce_view (sim, 3, &v3);
  cr_assert_eq (v3.catalog, v1.catalog, "one catalog per distinct task");
  /* a different batch size, seed and mask: the same catalog contents for the same task */
  ra_sim_t *o = s_make (1, 99, NULL, 0, &t);
  ra_ecommerce_view_t w;
  ra_ecommerce_view (o, 0, &w);
  size_t bytes = (size_t) w.catalog->n_items * (size_t) w.catalog->stride * sizeof (float);
  cr_assert_eq (memcmp (w.catalog->feat, v1.catalog->feat, bytes), 0);
  cr_assert_eq (memcmp (w.catalog->price, v1.catalog->price, (size_t) w.catalog->n_items * sizeof (float)), 0);
  E->destroy (&o);
  /* a bad task changes nothing */
  ra_task_t bad = { .split = "nope", .id = 0 };
  cr_assert_eq (E->set_task (sim, &bad, NULL, &err), RA_ERR_BAD_CONFIG);
  E->describe_task (sim, 1, d, 20);
  cr_assert_str_eq (d[0].str, "train");
  h_fini (&h);
  E->destroy (&sim);
}

Test (ecommerce, too_many_distinct_tasks_is_bad_config_and_slots_are_reused)
{
  ra_kv_t cfg[] = { { .key = "task_slots", .type = RA_KV_NUM, .num = 2 } };
  ra_sim_t *sim = s_make (4, 1, cfg, 1, NULL);
  harness_t h;
  h_init (&h, E->spec (sim), 4);
  ra_error_t err;
  E->reset (sim, 0, 4, NULL, NULL, &h.buf);
  uint8_t m0[4] = { 1, 0, 0, 0 }, m1[4] = { 0, 1, 0, 0 };
  ra_task_t t1 = { .split = "train", .id = 1 }, t2 = { .split = "train", .id = 2 };
  cr_assert_eq (E->set_task (sim, &t1, m0, &err), RA_OK);
  /* default (running) + train/1 (pending) fill both slots */
  cr_assert_eq (E->set_task (sim, &t2, m1, &err), RA_ERR_BAD_CONFIG);
  cr_assert_neq (strstr (err.message, "task_slots"), NULL, "%s", err.message);
  /* everyone onto train/1, reset: the default slot frees up for train/2 */
  cr_assert_eq (E->set_task (sim, &t1, NULL, &err), RA_OK);
  E->reset (sim, 0, 4, NULL, NULL, &h.buf);
  cr_assert_eq (E->set_task (sim, &t2, m1, &err), RA_OK, "%s", err.message);
  ra_kv_t d[20];
  E->describe_task (sim, 1, d, 20);
  cr_assert_eq (d[1].num, 2);
  E->describe_task (sim, 0, d, 20);
  cr_assert_eq (d[1].num, 1);
  h_fini (&h);
  E->destroy (&sim);
}

Test (ecommerce, params_override_the_default_task)
{
  ra_kv_t p[] = { { .key = "position_bias", .type = RA_KV_NUM, .num = 2.0 },
                  { .key = "budget_mean", .type = RA_KV_NUM, .num = 50 } };
  ra_task_t t = { .params = p, .n_params = 2 };
  ra_sim_t *sim = s_make (1, 1, NULL, 0, &t);
  ra_kv_t d[20];
  int n = E->describe_task (sim, 0, d, 20);
  cr_assert_str_eq (d[0].str, "default");
  for (int q = 2; q < n; q++) {
    if (strcmp (d[q].key, "position_bias") == 0)
      cr_assert_eq (d[q].num, 2.0);
    if (strcmp (d[q].key, "budget_mean") == 0)
      cr_assert_eq (d[q].num, 50);
    if (strcmp (d[q].key, "drift") == 0)
      cr_assert_eq (d[q].num, 0.1);
  }
  ra_ecommerce_view_t v;
  ra_ecommerce_view (sim, 0, &v);
  cr_assert_float_eq (v.choice->examine[1], 0.25, 1e-6);   /* (1/2)^2 */
  E->destroy (&sim);
  /* config keys set the default task */
  ra_kv_t cfg[] = { { .key = "drift", .type = RA_KV_NUM, .num = 0.4 } };
  sim = s_make (1, 1, cfg, 1, NULL);
  E->describe_task (sim, 0, d, 20);
  for (int q = 2; q < n; q++)
    if (strcmp (d[q].key, "drift") == 0)
      cr_assert_eq (d[q].num, 0.4);
  E->destroy (&sim);
}

static void s_expect_bad_config (const char *key, ra_kv_t bad, const char *why)
{
  h_expect_bad_config (E, key, bad, why);
}

Test (ecommerce, every_bad_config_key_is_bad_config_naming_it)
{
  /* every default is accepted as given */
  ra_sim_args_t a = { .config = E->config_defaults, .n_config = E->n_config_defaults, .num_envs = 2, .seed = 1 };
  ra_sim_t *sim = NULL;
  ra_error_t err;
  cr_assert_eq (E->create (&a, &sim, &err), RA_OK, "%s", err.message);
  E->destroy (&sim);
  for (int c = 0; c < E->n_config_defaults; c++) {
    const ra_kv_t *d = &E->config_defaults[c];
    ra_kv_t wrong_type = d->type == RA_KV_NUM || d->type == RA_KV_BOOL
        ? (ra_kv_t) { .key = d->key, .type = RA_KV_STR, .str = "x" }
        : (ra_kv_t) { .key = d->key, .type = RA_KV_NUM, .num = 1 };
    s_expect_bad_config (d->key, wrong_type, "wrong type");
    if (d->type == RA_KV_NUM) {
      s_expect_bad_config (d->key, (ra_kv_t) { .key = d->key, .type = RA_KV_NUM, .num = 1e9 }, "too big");
      s_expect_bad_config (d->key, (ra_kv_t) { .key = d->key, .type = RA_KV_NUM, .num = NAN }, "NaN");
      if (strncmp (d->key, "reward_weights.", 15) != 0)
        s_expect_bad_config (d->key, (ra_kv_t) { .key = d->key, .type = RA_KV_NUM, .num = -1e9 }, "too small");
    }
    if (d->type == RA_KV_STR)
      s_expect_bad_config (d->key, (ra_kv_t) { .key = d->key, .type = RA_KV_STR, .str = "no-such" }, "bad name");
  }
  s_expect_bad_config ("colour", (ra_kv_t) { .key = "colour", .type = RA_KV_NUM, .num = 1 }, "unknown");
  s_expect_bad_config ("slate_size", (ra_kv_t) { .key = "slate_size", .type = RA_KV_NUM, .num = 2.5 }, "fraction");
  ra_kv_t task_bad[] = { { .key = "temperature", .type = RA_KV_NUM, .num = 1 } };
  ra_task_t t = { .params = task_bad, .n_params = 1 };
  a = (ra_sim_args_t) { .task = &t, .num_envs = 1 };
  cr_assert_eq (E->create (&a, &sim, &err), RA_ERR_BAD_CONFIG);
  cr_assert_neq (strstr (err.message, "temperature"), NULL);
  a = (ra_sim_args_t) { .num_envs = 0 };
  cr_assert_eq (E->create (&a, &sim, &err), RA_ERR_BAD_CONFIG);
}

Test (ecommerce, weighted_reward_follows_config)
{
  ra_kv_t cfg[] = { { .key = "reward", .type = RA_KV_STR, .str = "weighted" },
                    { .key = "reward_weights.clicks", .type = RA_KV_NUM, .num = 0.1 },
                    { .key = "reward_weights.revenue", .type = RA_KV_NUM, .num = 1.0 } };
  const int n = 64;
  ra_sim_t *sim = s_make (n, 3, cfg, 3, NULL);
  harness_t h;
  h_init (&h, E->spec (sim), n);
  int fc = h_info_index (&h, "clicked"), fr = h_info_index (&h, "revenue");
  ra_rng_t rng;
  ra_rng_seed (&rng, 1, 0);
  int32_t act[64 * 3];
  E->reset (sim, 0, n, NULL, NULL, &h.buf);
  for (int t = 0; t < 20; t++) {
    for (int i = 0; i < n; i++)
      h_random_slate (&rng, 20, 3, act + i * 3);
    E->step (sim, 0, n, act, &h.buf);
    for (int i = 0; i < n; i++) {
      double want = 0;
      for (int r = 0; r < 3; r++)
        want += 0.1 * ((uint8_t *) h.buf.info[fc])[i * 3 + r] + ((float *) h.buf.info[fr])[i * 3 + r];
      cr_assert_float_eq (h.buf.reward[i], want, 1e-4);
    }
    E->reset (sim, 0, n, NULL, h.buf.terminated, &h.buf);
  }
  h_fini (&h);
  E->destroy (&sim);
}

Test (ecommerce, render_describes_the_user_and_last_slate)
{
  ra_sim_t *sim = s_make (2, 1, NULL, 0, NULL);
  harness_t h;
  h_init (&h, E->spec (sim), 2);
  E->reset (sim, 0, 2, NULL, NULL, &h.buf);
  int32_t act[6] = { 0, 1, 2, 3, 4, 5 };
  E->step (sim, 0, 2, act, &h.buf);
  char buf[512];
  int n = E->render (sim, 1, buf, sizeof buf);
  cr_assert_gt (n, 0);
  cr_assert_lt (n, (int) sizeof buf);
  cr_assert_neq (strstr (buf, "budget"), NULL);
  cr_assert_neq (strstr (buf, "step 1"), NULL, "%s", buf);
  char small[8];
  cr_assert_eq (E->render (sim, 1, small, sizeof small), n);
  cr_assert_eq (strlen (small), 7u);
  h_fini (&h);
  E->destroy (&sim);
}

/* ---- section 3.4: the shared dynamics, switched by dynamics.* config ---- */

/* Runs n envs (seed 5) for `steps` steps, slate {0..k-1} when fixed (the first candidates come
   from the user's nearest topic, 8.1) else random: h_dyn_run. */
static h_dyn_stats_t s_dyn_run (const ra_kv_t *cfg, int n_cfg, const ra_task_t *task, int n, int steps, bool fixed)
{
  return h_dyn_run (E, cfg, n_cfg, task, n, steps, fixed);
}

Test (ecommerce, dynamics_keys_are_listed_with_this_sims_defaults_and_bad_values_name_the_key)
{
  h_check_dynamics_keys (E, true); /* section 3.4: ECommerce-v1 drifts by default */
}

static void s_theta_of (ra_sim_t *sim, float theta[16])
{
  ra_ecommerce_view_t v;
  ra_ecommerce_view (sim, 0, &v);
  memcpy (theta, v.theta, 16 * sizeof (float));
}

/* Whether env 0's theta moves in 40 steps of slate {0, 1, 2}: h_theta_moves. */
static bool s_theta_moves (const ra_kv_t *cfg, int n_cfg)
{
  return h_theta_moves (E, s_theta_of, cfg, n_cfg);
}

Test (ecommerce, dynamics_drift_off_keeps_interest_fixed)
{
  cr_assert (s_theta_moves (NULL, 0), "drift is on by default");
  ra_kv_t off[] = { S_B ("drift", 0) };
  cr_assert_not (s_theta_moves (off, 1), "dynamics.drift off moved theta");
}

Test (ecommerce, dynamics_boredom_lowers_clicks_on_a_repeated_topic)
{
  ra_kv_t on[] = { S_B ("boredom", 1), S_N ("boredom_weight", 3) };
  h_dyn_stats_t a = s_dyn_run (NULL, 0, NULL, 256, 30, true);
  h_dyn_stats_t b = s_dyn_run (on, 2, NULL, 256, 30, true);
  double ctr_off = (double) a.clicks / a.env_steps, ctr_on = (double) b.clicks / b.env_steps;
  cr_assert_lt (ctr_on, 0.8 * ctr_off, "click rate %g with boredom, %g without", ctr_on, ctr_off);
  /* the penalty is gone after the timeout: a one-step check of the level */
  ra_boredom_t bo;
  ra_boredom_init (&bo, 0.3, 0.9, 10, 3);
  ra_boredom_topic_t tt = { 0.5f, 2 };
  cr_assert_gt (ra_boredom_penalty (&bo, &tt, 11), 0);
  cr_assert_eq (ra_boredom_penalty (&bo, &tt, 12), 0);
}

Test (ecommerce, dynamics_time_budget_replaces_patience_as_the_session_end)
{
  ra_kv_t pp[] = { { .key = "patience_mean", .type = RA_KV_NUM, .num = 500 } };
  ra_task_t patient = { .params = pp, .n_params = 1 };
  h_dyn_stats_t a = s_dyn_run (NULL, 0, &patient, 64, 100, false);
  cr_assert_gt (a.long_sessions, 0, "patient users have long sessions");
  ra_kv_t on[] = { S_B ("time_budget", 1), S_N ("budget_mean", 4), S_N ("budget_spread", 0) };
  h_dyn_stats_t b = s_dyn_run (on, 3, &patient, 64, 100, false);
  cr_assert_gt (b.ends, 64, "sessions end");
  cr_assert_leq (b.max_session_len, 4, "a budget of 4 at a cost of at least 1 per step lasts 4 steps");
}

Test (ecommerce, dynamics_return_makes_episodes_span_sessions_reported_in_info)
{
  ra_kv_t on[] = { S_B ("return", 1), S_N ("return_churn_max", 0), S_N ("return_max_sessions", 3) };
  ra_sim_t *sim = s_make (1, 1, on, 3, NULL);
  const ra_sim_spec_t *sp = E->spec (sim);
  cr_assert_eq (sp->n_info, 8);
  cr_assert_str_eq (sp->info[6].name, "returned");
  cr_assert_str_eq (sp->info[7].name, "session");
  cr_assert_eq (sp->info[7].high, 2);
  E->destroy (&sim);
  h_dyn_stats_t st = s_dyn_run (on, 3, NULL, 64, 200, false);
  cr_assert_gt (st.returns, 64, "returns %ld", st.returns);
  cr_assert_eq (st.max_returns, 2, "an episode has at most max_sessions - 1 = 2 returns");
  /* default config: no returns, no such fields */
  sim = s_make (1, 1, NULL, 0, NULL);
  cr_assert_eq (E->spec (sim)->n_info, 6);
  E->destroy (&sim);
}

Test (ecommerce, dynamics_all_switches_on_keep_observations_in_bounds)
{
  ra_kv_t all[] = { S_B ("drift", 1), S_B ("boredom", 1), S_B ("time_budget", 1), S_B ("return", 1),
                    { .key = "oracle", .type = RA_KV_BOOL, .num = 1 } };
  h_dyn_stats_t st = s_dyn_run (all, 5, NULL, 64, 300, false);
  cr_assert_gt (st.ends, 0);
  cr_assert_gt (st.returns, 0);
}
