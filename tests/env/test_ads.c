/*  tests/env/test_ads.c - Ads-v1 against env/core/sim.h and docs/sims/ads.md: reproducibility
    (seeds, batch sizes, call ranges), bounds, budgets that never go negative and pay nothing once
    spent, the documented click, conversion, payment, annoyance and leave equations, oracle vs
    random, tasks, pacing (greedy by bid drains budgets), and config errors naming their key. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "env/core/users.h"
#include "env/sims/ads.h"
#include "env/sims/registry.h"
#include "sim_harness.h"

/* A cheap assert for hot test loops: Criterion only sees failures. */
#define CHECK(cond, ...) do { if (!(cond)) cr_assert_fail (__VA_ARGS__); } while (0)

static const ra_sim_class_t *E = &ra_ads_class;

static ra_sim_t *s_make (int n, uint64_t seed, const ra_kv_t *cfg, int n_cfg, const ra_task_t *task)
{
  return h_make (E, n, seed, cfg, n_cfg, task);
}

static double s_sig (double x)
{
  return 1.0 / (1.0 + exp (-x));
}

Test (ads, registry_finds_it_by_name)
{
  int n;
  const ra_sim_class_t *const *all = ra_sims_all (&n);
  int found = 0;
  for (int i = 0; i < n; i++)
    found += all[i] == E;
  cr_assert_eq (found, 1);
  cr_assert_eq (ra_sims_find ("Ads-v1", 6), E);
  cr_assert_null (ra_sims_find ("Ads-v", 5));
}

Test (ads, spec_has_the_documented_fields)
{
  ra_sim_t *sim = s_make (2, 1, NULL, 0, NULL);
  const ra_sim_spec_t *sp = E->spec (sim);
  cr_assert_eq (sp->num_candidates, 20);
  cr_assert_eq (sp->slate_size, 3);
  cr_assert_eq (sp->max_episode_steps, RA_ADS_MAX_STEPS);
  cr_assert_eq (sp->n_obs, 4);
  cr_assert_str_eq (sp->obs[0].name, "user");
  cr_assert_eq (sp->obs[0].shape[0], 20);
  cr_assert_str_eq (sp->obs[1].name, "candidates");
  cr_assert_eq (sp->obs[1].shape[0], 20);
  cr_assert_eq (sp->obs[1].shape[1], 20);
  cr_assert_str_eq (sp->obs[2].name, "response");
  cr_assert_eq (sp->obs[2].shape[0], 9);
  cr_assert_str_eq (sp->obs[3].name, "item_ids");
  cr_assert_eq (sp->obs[3].dtype, RA_DTYPE_I32);
  cr_assert_eq (sp->obs[3].ndim, 1);
  cr_assert_eq (sp->obs[3].shape[0], 20);
  cr_assert_eq (sp->obs[3].low, 0);
  cr_assert_eq (sp->obs[3].high, 999);
  cr_assert_eq (sp->n_info, 6);
  const char *names[] = { "item", "clicked", "converted", "revenue", "annoyance", "left" };
  for (int f = 0; f < 6; f++)
    cr_assert_str_eq (sp->info[f].name, names[f]);
  cr_assert_eq (sp->reward_range[0], 0);
  cr_assert_eq (sp->reward_range[1], 3 * RA_ADS_BID_MAX);
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

Test (ads, item_ids_are_the_ids_info_item_reports)
{
  /* obs item_ids (ad ids); item[r] = item_ids[slate[r]] */
  ra_sim_t *sim = s_make (64, 9, NULL, 0, NULL);
  char why[256] = "";
  long repeats;
  long compared = h_check_item_ids (E, sim, 64, 60, 17, 16, &repeats, why, sizeof why);
  cr_assert_geq (compared, 64L * 60 * 3, "%s", why);
  cr_assert_gt (repeats, 1000, "ids seen in consecutive observations: %ld", repeats);   /* the stability check ran */
  E->destroy (&sim);
}

/* Runs n envs for `steps` steps with random slates (env i's from its own action stream keyed by
   first_env + i), resetting terminated envs, over the ranges split at `cut`. Records env `watch`. */
static void s_run (ra_sim_t *sim, int n, int first_env, int steps, int cut, int watch, h_trace_t *tr)
{
  h_run (E, sim, n, first_env, steps, cut, watch, NULL, tr);
}

Test (ads, same_seed_gives_the_same_trajectory)
{
  const int steps = 300;
  ra_sim_t *a = s_make (8, 77, NULL, 0, NULL), *b = s_make (8, 77, NULL, 0, NULL), *c = s_make (8, 78, NULL, 0, NULL);
  size_t rb = h_obs_row_bytes_of (E, a);
  h_trace_t ta = h_trace_new (steps, rb), tb = h_trace_new (steps, rb), tc = h_trace_new (steps, rb);
  s_run (a, 8, 0, steps, 0, 5, &ta);
  s_run (b, 8, 0, steps, 0, 5, &tb);
  s_run (c, 8, 0, steps, 0, 5, &tc);
  cr_assert_eq (memcmp (ta.obs, tb.obs, (size_t) (steps + 1) * rb), 0);
  cr_assert_eq (memcmp (ta.reward, tb.reward, (size_t) steps * sizeof (float)), 0);
  cr_assert_eq (memcmp (ta.term, tb.term, (size_t) steps), 0);
  cr_assert_neq (memcmp (ta.obs, tc.obs, (size_t) (steps + 1) * rb), 0);
  int terms = 0;
  double rew = 0;
  for (int t = 0; t < steps; t++) {
    terms += ta.term[t];
    rew += ta.reward[t];
  }
  cr_assert_gt (terms, 2, "300 steps should span several episodes");
  cr_assert_gt (rew, 0);
  h_trace_free (&ta);
  h_trace_free (&tb);
  h_trace_free (&tc);
  E->destroy (&a);
  E->destroy (&b);
  E->destroy (&c);
}

Test (ads, env_in_a_batch_of_256_split_in_ranges_equals_it_alone)
{
  const int steps = 150;
  const int watch[] = { 0, 7, 255 };
  for (int w = 0; w < 3; w++) {
    int i = watch[w];
    ra_sim_t *big = s_make (256, 900, NULL, 0, NULL), *one = s_make (1, 900 + (uint64_t) i, NULL, 0, NULL);
    size_t rb = h_obs_row_bytes_of (E, one);
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

Test (ads, reset_with_seeds_restarts_the_stream_and_refills_budgets)
{
  ra_sim_t *sim = s_make (4, 1, NULL, 0, NULL);
  harness_t h;
  h_init (&h, E->spec (sim), 4);
  int32_t act[12] = { 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2 };
  E->reset (sim, 0, 4, NULL, NULL, &h.buf);
  for (int t = 0; t < 20; t++)
    E->step (sim, 0, 4, act, &h.buf);   /* spend some budget (terminated envs keep stepping) */
  uint64_t seeds[4] = { 50, 51, 52, 50 };
  E->reset (sim, 0, 4, seeds, NULL, &h.buf);
  size_t cb = h.obs_bytes[1], ub = h.obs_bytes[0];
  char *c = (char *) h.buf.obs[1];
  cr_assert_eq (memcmp (c, c + 3 * cb, cb), 0, "envs 0 and 3 share seed 50");
  cr_assert_neq (memcmp (c, c + 1 * cb, cb), 0);
  ra_sim_t *other = s_make (1, 50, NULL, 0, NULL);
  harness_t g;
  h_init (&g, E->spec (other), 1);
  E->reset (other, 0, 1, NULL, NULL, &g.buf);
  cr_assert_eq (memcmp (c, g.buf.obs[1], cb), 0);
  cr_assert_eq (memcmp (h.buf.obs[0], g.buf.obs[0], ub), 0);
  ra_ads_view_t v;
  ra_ads_view (sim, 0, &v);
  for (int a = 0; a < v.n_advertisers; a++)
    cr_assert_eq (v.budget[a], v.budget0[a], "advertiser %d starts the episode with its full budget", a);
  h_fini (&g);
  h_fini (&h);
  E->destroy (&other);
  E->destroy (&sim);
}

/* Random play over long runs on the default and an ood task, with every click model: every obs
   inside its declared bounds; rewards in range; budgets never negative and each click pays
   exactly min(bid, B_a) of its advertiser (0 once exhausted). */
Test (ads, long_random_runs_stay_inside_bounds_and_budgets_pay_min_of_bid_and_left)
{
  ra_task_t ood = { .split = "ood", .id = 3 };
  for (int pass = 0; pass < RA_CHOICE_COUNT + 1; pass++) {
    const bool main_pass = pass == RA_CHOICE_POSITION_BASED;   /* the default model: the longest run */
    const int n = main_pass ? 128 : 64, steps = main_pass ? 150 : 80;
    ra_kv_t cfg[] = { { .key = "oracle", .type = RA_KV_BOOL, .num = 1 },
                      { .key = "choice_model", .type = RA_KV_STR,
                        .str = ra_choice_names[pass < RA_CHOICE_COUNT ? pass : RA_CHOICE_POSITION_BASED] } };
    ra_sim_t *sim = s_make (n, 5 + (uint64_t) pass, cfg, 2, pass == RA_CHOICE_COUNT ? &ood : NULL);
    harness_t h;
    h_init (&h, E->spec (sim), n);
    const ra_sim_spec_t *sp = h.spec;
    const int k = sp->slate_size;
    int fr = h_info_index (&h, "revenue"), fg = h_info_index (&h, "regret"), fa = h_info_index (&h, "annoyance");
    int fv = h_info_index (&h, "converted"), fc = h_info_index (&h, "clicked"), fi = h_info_index (&h, "item");
    int fl = h_info_index (&h, "left");
    ra_rng_t rng;
    ra_rng_seed (&rng, 8, 0);
    int32_t *act = calloc ((size_t) n * k, sizeof (int32_t));
    ra_ads_view_t v0;
    ra_ads_view (sim, 0, &v0);
    float *before = calloc ((size_t) n * v0.n_advertisers, sizeof (float));
    E->reset (sim, 0, n, NULL, NULL, &h.buf);
    long clicks = 0, convs = 0, unpaid = 0, exhausted_clicks = 0;
    for (int t = 0; t <= steps; t++) {
      for (int f = 0; f < sp->n_obs; f++) {
        double x;
        size_t m = (size_t) n * h_numel (&sp->obs[f]);
        size_t bad = h_obs_first_out_of_bounds (&h, f, n, &x);
        cr_assert_eq (bad, m, "pass %d step %d field %s elem %zu = %g", pass, t, sp->obs[f].name, bad,
                      x);
      }
      if (t == steps)
        break;
      for (int i = 0; i < n; i++) {
        h_random_slate (&rng, sp->num_candidates, k, act + (size_t) i * k);
        ra_ads_view_t v;
        ra_ads_view (sim, i, &v);
        memcpy (before + (size_t) i * v.n_advertisers, v.budget, (size_t) v.n_advertisers * sizeof (float));
      }
      E->step (sim, 0, n, act, &h.buf);
      for (int i = 0; i < n; i++) {
        ra_ads_view_t v;
        ra_ads_view (sim, i, &v);
        float *b = before + (size_t) i * v.n_advertisers;
        CHECK (h.buf.reward[i] >= sp->reward_range[0] && h.buf.reward[i] <= sp->reward_range[1], "reward %g", h.buf.reward[i]);
        CHECK (((float *) h.buf.info[fg])[i] >= 0, "regret < 0");
        float A = ((float *) h.buf.info[fa])[i];
        CHECK (A >= 0 && A <= RA_ADS_ANNOY_MAX, "annoyance %g", A);
        CHECK (((uint8_t *) h.buf.info[fl])[i] == h.buf.terminated[i], "left is terminated");
        double sum = 0;
        for (int r = 0; r < k; r++) {
          uint8_t c = ((uint8_t *) h.buf.info[fc])[i * k + r], cv = ((uint8_t *) h.buf.info[fv])[i * k + r];
          float rev = ((float *) h.buf.info[fr])[i * k + r];
          CHECK (c <= 1 && cv <= c, "conversion without click");
          CHECK (c || rev == 0, "revenue without click");
          if (c) {   /* docs 5.2, in slot order: pay min(bid, B), B -= pay */
            int a = v.owner[((int32_t *) h.buf.info[fi])[i * k + r]];
            float pay = b[a] < v.bid[a] ? b[a] : v.bid[a];
            CHECK (rev == pay, "slot %d pays %g, expected min(bid %g, left %g)", r, rev, v.bid[a], b[a]);
            exhausted_clicks += b[a] == 0;
            unpaid += b[a] == 0 && rev == 0;
            b[a] = b[a] - pay > 0 ? b[a] - pay : 0;
          }
          clicks += c;
          convs += cv;
          sum += rev;
        }
        CHECK (fabs (h.buf.reward[i] - sum) <= 1e-5 * (1 + sum), "reward %g is revenue %g", h.buf.reward[i], sum);
        for (int a = 0; a < v.n_advertisers; a++)
          CHECK (v.budget[a] >= 0 && v.budget[a] <= v.budget0[a] && v.budget[a] == b[a], "advertiser %d budget %g", a, v.budget[a]);
      }
      E->reset (sim, 0, n, NULL, h.buf.terminated, &h.buf);
    }
    cr_assert_gt (clicks, 300, "pass %d: %ld clicks", pass, clicks);
    cr_assert_gt (convs, 50, "pass %d: %ld conversions", pass, convs);
    cr_assert_eq (unpaid, exhausted_clicks);
    if (pass == RA_CHOICE_POSITION_BASED)
      cr_assert_gt (exhausted_clicks, 0, "some clicks land on exhausted advertisers");
    free (before);
    free (act);
    h_fini (&h);
    E->destroy (&sim);
  }
}

/* Golden equations: from the hidden state (view), recompute docs 4.1-4.2 (click), 5.1
   (conversion), 6.1 (annoyance, exactly) and 6.2 (leave) in double; compare observed counts with
   summed predicted probabilities within 5 standard deviations. */
Test (ads, clicks_conversions_annoyance_and_leaving_follow_the_documented_equations)
{
  const int n = 2048, steps = 10, K = 20, k = 3, d = 16;
  ra_sim_t *sim = s_make (n, 31, NULL, 0, NULL);
  harness_t h;
  h_init (&h, E->spec (sim), n);
  int fc = h_info_index (&h, "clicked"), fv = h_info_index (&h, "converted"), fa = h_info_index (&h, "annoyance");
  ra_rng_t rng;
  ra_rng_seed (&rng, 4, 0);
  int32_t *act = calloc ((size_t) n * k, sizeof (int32_t));
  double *pc = calloc ((size_t) n * k, sizeof (double)), *pv = calloc ((size_t) n * k, sizeof (double));
  double *a_next = calloc ((size_t) n, sizeof (double));
  uint8_t *exact = calloc ((size_t) n, 1);
  double exp_c[3] = { 0 }, var_c[3] = { 0 }, obs_c[3] = { 0 };
  double exp_v = 0, var_v = 0, obs_v = 0, exp_l = 0, var_l = 0, obs_l = 0;
  E->reset (sim, 0, n, NULL, NULL, &h.buf);
  for (int t = 0; t < steps; t++) {
    for (int i = 0; i < n; i++) {
      int32_t *a = act + (size_t) i * k;
      h_random_slate (&rng, K, k, a);
      ra_ads_view_t v;
      ra_ads_view (sim, i, &v);
      const double *p = v.params;
      double tau = p[RA_ADS_P_TEMPERATURE], eta = p[RA_ADS_P_POSITION_BIAS];
      double irrelevant = 0;
      exact[i] = 1;
      for (int r = 0; r < k; r++) {
        int j = v.candidates[a[r]];
        const float *x = v.catalog->feat + (size_t) j * v.catalog->stride;
        double aff = 0, q = v.catalog->quality[j], b = pow (1.0 / (r + 1), eta);
        for (int c = 0; c < d; c++)
          aff += (double) v.theta[c] * x[c];
        /* 4.1 v = (aff + gamma_q q - kappa A) / tau; 4.2 P(click r) = b_r sigma(v - u0 / tau) */
        double u = (aff + RA_ADS_QUALITY_WEIGHT * q - RA_ADS_ANNOY_PENALTY * v.annoyance) / tau;
        pc[(size_t) i * k + r] = b * s_sig (u - p[RA_ADS_P_NO_CLICK] / tau);
        /* 5.1 P(convert | click) = sigma(c0 + ca aff + cq q) */
        pv[(size_t) i * k + r] = s_sig (RA_ADS_CONV_BIAS + RA_ADS_CONV_AFFINITY * aff + RA_ADS_CONV_QUALITY * q);
        /* 6.1 irrelevant ads: aff < rho, weighted by b_r */
        if (fabs (aff - RA_ADS_RELEVANCE) < 1e-4)
          exact[i] = 0;
        irrelevant += aff < RA_ADS_RELEVANCE ? b : 0;
      }
      double An = (1 - RA_ADS_ANNOY_DECAY) * v.annoyance + p[RA_ADS_P_ANNOYANCE_RATE] * irrelevant;
      a_next[i] = An < RA_ADS_ANNOY_MAX ? An : RA_ADS_ANNOY_MAX;
    }
    E->step (sim, 0, n, act, &h.buf);
    for (int i = 0; i < n; i++) {
      ra_ads_view_t v;
      ra_ads_view (sim, i, &v);
      float A = ((float *) h.buf.info[fa])[i];
      if (exact[i])
        CHECK (fabs (A - a_next[i]) < 1e-4 * (1 + a_next[i]), "annoyance %g, expected %g", A, a_next[i]);
      double pl = s_sig (RA_ADS_LEAVE_BIAS + v.params[RA_ADS_P_LEAVE_SENSITIVITY] * A);   /* 6.2 */
      exp_l += pl;
      var_l += pl * (1 - pl);
      obs_l += h.buf.terminated[i];
      for (int r = 0; r < k; r++) {
        double p = pc[(size_t) i * k + r];
        uint8_t c = ((uint8_t *) h.buf.info[fc])[i * k + r];
        exp_c[r] += p;
        var_c[r] += p * (1 - p);
        obs_c[r] += c;
        if (c) {
          double q = pv[(size_t) i * k + r];
          exp_v += q;
          var_v += q * (1 - q);
          obs_v += ((uint8_t *) h.buf.info[fv])[i * k + r];
        }
      }
    }
    E->reset (sim, 0, n, NULL, h.buf.terminated, &h.buf);
  }
  for (int r = 0; r < k; r++)
    cr_assert_lt (fabs (obs_c[r] - exp_c[r]), 5 * sqrt (var_c[r]) + 1, "slot %d: %g clicks, expected %g (sd %g)",
                  r, obs_c[r], exp_c[r], sqrt (var_c[r]));
  cr_assert_lt (fabs (obs_v - exp_v), 5 * sqrt (var_v) + 1, "%g conversions, expected %g", obs_v, exp_v);
  cr_assert_lt (fabs (obs_l - exp_l), 5 * sqrt (var_l) + 1, "%g leaves, expected %g", obs_l, exp_l);
  cr_assert_gt (obs_c[0], 1.5 * obs_c[2], "position bias: slot 1 %g vs slot 3 %g clicks", obs_c[0], obs_c[2]);
  free (act);
  free (pc);
  free (pv);
  free (a_next);
  free (exact);
  h_fini (&h);
  E->destroy (&sim);
}

/* Irrelevant ads annoy: forcing the same user's slates to the least relevant candidates drives
   annoyance up and clicks down compared with the most relevant ones (docs 4.1, 6.1). */
Test (ads, irrelevant_ads_raise_annoyance_lower_clicks_and_shorten_sessions)
{
  const int n = 256, steps = 40, K = 20, k = 3, d = 16;
  double ann[2] = { 0 }, clk[2] = { 0 }, ends[2] = { 0 };
  for (int pol = 0; pol < 2; pol++) {   /* 0: most relevant first, 1: least relevant */
    ra_sim_t *sim = s_make (n, 17, NULL, 0, NULL);
    harness_t h;
    h_init (&h, E->spec (sim), n);
    int fc = h_info_index (&h, "clicked"), fa = h_info_index (&h, "annoyance");
    int32_t *act = calloc ((size_t) n * k, sizeof (int32_t));
    E->reset (sim, 0, n, NULL, NULL, &h.buf);
    for (int t = 0; t < steps; t++) {
      for (int i = 0; i < n; i++) {
        ra_ads_view_t v;
        ra_ads_view (sim, i, &v);
        float aff[20];
        for (int j = 0; j < K; j++)
          aff[j] = (pol ? -1 : 1) * ra_users_dot (v.theta, v.catalog->feat + (size_t) v.candidates[j] * v.catalog->stride, d);
        for (int r = 0; r < k; r++) {
          int best = -1;
          for (int j = 0; j < K; j++) {
            bool used = false;
            for (int q = 0; q < r; q++)
              used |= act[(size_t) i * k + q] == j;
            if (!used && (best < 0 || aff[j] > aff[best]))
              best = j;
          }
          act[(size_t) i * k + r] = best;
        }
      }
      E->step (sim, 0, n, act, &h.buf);
      for (int i = 0; i < n; i++) {
        ann[pol] += ((float *) h.buf.info[fa])[i];
        ends[pol] += h.buf.terminated[i];
        for (int r = 0; r < k; r++)
          clk[pol] += ((uint8_t *) h.buf.info[fc])[i * k + r];
      }
      E->reset (sim, 0, n, NULL, h.buf.terminated, &h.buf);
    }
    free (act);
    h_fini (&h);
    E->destroy (&sim);
  }
  cr_assert_gt (ann[1], 3 * ann[0], "annoyance relevant %g irrelevant %g", ann[0], ann[1]);
  cr_assert_gt (clk[0], 3 * clk[1], "clicks relevant %g irrelevant %g", clk[0], clk[1]);
  cr_assert_gt (ends[1], 1.5 * ends[0], "sessions ended relevant %g irrelevant %g", ends[0], ends[1]);
}

/* Mean reward per step of the oracle policy (plays info oracle_slate; random on an episode's
   first step) and of a random policy; checks regret >= 0 and the oracle's regret ~0. */
static void s_oracle_vs_random (const ra_task_t *task, double *oracle, double *random)
{
  h_oracle_vs_random (E, 128, 50, task, oracle, random);
}

Test (ads, oracle_beats_random_and_the_margin_depends_on_the_task)
{
  double o0, r0, o1, r1, o2, r2;
  ra_task_t train = { .split = "train", .id = 4 }, ood = { .split = "ood", .id = 4 };
  s_oracle_vs_random (NULL, &o0, &r0);
  s_oracle_vs_random (&train, &o1, &r1);
  s_oracle_vs_random (&ood, &o2, &r2);
  cr_log_info ("oracle vs random: default %g/%g train/4 %g/%g ood/4 %g/%g", o0, r0, o1, r1, o2, r2);
  cr_assert_gt (o0, 1.5 * r0, "default task: oracle %g vs random %g", o0, r0);
  cr_assert_gt (o1, 1.5 * r1, "train/4: oracle %g vs random %g", o1, r1);
  cr_assert_gt (o2, 1.2 * r2, "ood/4: oracle %g vs random %g", o2, r2);
  double m0 = o0 / r0, m1 = o1 / r1, m2 = o2 / r2;
  double lo = fmin (m0, fmin (m1, m2)), hi = fmax (m0, fmax (m1, m2));
  cr_assert_gt (hi, 1.25 * lo, "the oracle's edge differs across tasks: %g %g %g", m0, m1, m2);
}

/* Episode statistics of random play on a task: clicks per step and mean episode length. */
static void s_stats (const ra_task_t *task, double *ctr, double *len)
{
  h_random_play_stats (E, 128, 60, task, ctr, len);
}

Test (ads, ood_tasks_differ_measurably_from_train_tasks)
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
  /* ood: higher no-click utility and temperature, more annoyance and leave sensitivity */
  cr_assert_lt (ctr_ood, 0.8 * ctr_train, "ctr train %g ood %g", ctr_train, ctr_ood);
  cr_assert_lt (len_ood, 0.8 * len_train, "length train %g ood %g", len_train, len_ood);
}

/* Pacing (docs 2.2, 5.2): a greedy policy that always shows the highest bids drains those
   advertisers' budgets, so its revenue per step late in an episode collapses relative to early,
   much more than random play's, and it leaves more advertisers exhausted. */
Test (ads, greedy_by_bid_exhausts_budgets_so_revenue_drops_late)
{
  const int n = 512, steps = 80, K = 20, k = 3, d = 16, F = d + 4;
  double early[2] = { 0 }, late[2] = { 0 }, ne[2] = { 0 }, nl[2] = { 0 }, exh[2] = { 0 }, nx[2] = { 0 };
  for (int pol = 0; pol < 2; pol++) {   /* 0 random, 1 greedy by bid */
    ra_sim_t *sim = s_make (n, 23, NULL, 0, NULL);
    harness_t h;
    h_init (&h, E->spec (sim), n);
    int32_t *act = calloc ((size_t) n * k, sizeof (int32_t));
    int *age = calloc ((size_t) n, sizeof (int));
    ra_rng_t rng;
    ra_rng_seed (&rng, 6, 0);
    E->reset (sim, 0, n, NULL, NULL, &h.buf);
    for (int t = 0; t < steps; t++) {
      for (int i = 0; i < n; i++) {
        int32_t *s = act + (size_t) i * k;
        const float *c = (const float *) h.buf.obs[1] + (size_t) i * K * F;
        if (age[i] >= 40) {
          exh[pol] += ((const float *) h.buf.obs[0])[(size_t) i * (d + 4) + d + 2];
          nx[pol] += 1;
        }
        if (pol == 0) {
          h_random_slate (&rng, K, k, s);
          continue;
        }
        for (int r = 0; r < k; r++) {   /* the k highest bid features, budgets ignored */
          int best = -1;
          for (int j = 0; j < K; j++) {
            bool used = false;
            for (int q = 0; q < r; q++)
              used |= s[q] == j;
            if (!used && (best < 0 || c[j * F + d] > c[best * F + d]))
              best = j;
          }
          s[r] = best;
        }
      }
      E->step (sim, 0, n, act, &h.buf);
      for (int i = 0; i < n; i++) {
        if (age[i] < 10) {
          early[pol] += h.buf.reward[i];
          ne[pol] += 1;
        } else if (age[i] >= 40 && age[i] < 70) {
          late[pol] += h.buf.reward[i];
          nl[pol] += 1;
        }
        age[i] = h.buf.terminated[i] ? 0 : age[i] + 1;
      }
      E->reset (sim, 0, n, NULL, h.buf.terminated, &h.buf);
    }
    free (age);
    free (act);
    h_fini (&h);
    E->destroy (&sim);
  }
  double re[2], rl[2], ex[2];
  for (int p = 0; p < 2; p++) {
    re[p] = early[p] / ne[p];
    rl[p] = late[p] / (nl[p] + 1e-9);
    ex[p] = exh[p] / (nx[p] + 1e-9);
  }
  cr_log_info ("random early %g late %g exhausted %g; greedy early %g late %g exhausted %g", re[0], rl[0], ex[0],
               re[1], rl[1], ex[1]);
  cr_assert_gt (nl[1], 500, "enough late steps");
  cr_assert_gt (re[1], 1.3 * re[0], "greedy earns more early: %g vs %g", re[1], re[0]);
  cr_assert_lt (rl[1], 0.3 * re[1], "greedy's late revenue collapses: early %g late %g", re[1], rl[1]);
  cr_assert_lt (rl[1] / re[1], 0.6 * (rl[0] / re[0]), "more than random's: %g vs %g", rl[1] / re[1], rl[0] / re[0]);
  cr_assert_gt (ex[1], ex[0], "greedy exhausts more advertisers: %g vs %g", ex[1], ex[0]);
}

Test (ads, tasks_are_deterministic_and_splits_disjoint)
{
  ra_sim_t *sim = s_make (2, 1, NULL, 0, NULL);
  ra_kv_t a[20], b[20];
  ra_error_t err;
  ra_task_t t = { .split = "val", .id = 17 };
  cr_assert_eq (E->set_task (sim, &t, NULL, &err), RA_OK);
  int na = E->describe_task (sim, 0, a, 20);
  cr_assert_eq (na, 2 + RA_ADS_P_COUNT);
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
  /* ood draws from the shifted ranges: budget_scale below every train draw */
  ra_task_t o = { .split = "ood", .id = 17 };
  cr_assert_eq (E->set_task (other, &o, NULL, &err), RA_OK);
  E->describe_task (other, 0, b, 20);
  cr_assert_lt (b[2 + RA_ADS_P_BUDGET_SCALE].num, 4.0);
  E->destroy (&other);
  E->destroy (&sim);
}

Test (ads, set_task_applies_at_next_reset_and_worlds_depend_only_on_task)
{
  ra_sim_t *sim = s_make (4, 1, NULL, 0, NULL);
  harness_t h;
  h_init (&h, E->spec (sim), 4);
  ra_error_t err;
  E->reset (sim, 0, 4, NULL, NULL, &h.buf);
  ra_task_t t = { .split = "train", .id = 2 };
  uint8_t mask[4] = { 0, 1, 0, 1 };
  cr_assert_eq (E->set_task (sim, &t, mask, &err), RA_OK);
  ra_ads_view_t v0, v1, v3;
  ra_ads_view (sim, 1, &v1);
  ra_ads_view (sim, 0, &v0);
  cr_assert_eq (v0.catalog, v1.catalog, "not yet applied");
  E->reset (sim, 0, 4, NULL, NULL, &h.buf);
  ra_ads_view (sim, 1, &v1);
  ra_ads_view (sim, 0, &v0);
  ra_ads_view (sim, 3, &v3);
  cr_assert_neq (v0.catalog, v1.catalog);
  cr_assert_eq (v3.catalog, v1.catalog, "one world per distinct task");
  ra_sim_t *o = s_make (1, 99, NULL, 0, &t);
  ra_ads_view_t w;
  ra_ads_view (o, 0, &w);
  cr_assert_eq (memcmp (w.catalog->feat, v1.catalog->feat,
                        (size_t) w.catalog->n_items * (size_t) w.catalog->stride * sizeof (float)), 0);
  cr_assert_eq (memcmp (w.owner, v1.owner, (size_t) w.catalog->n_items * sizeof (int32_t)), 0);
  cr_assert_eq (memcmp (w.bid, v1.bid, (size_t) w.n_advertisers * sizeof (float)), 0);
  cr_assert_eq (memcmp (w.budget0, v1.budget0, (size_t) w.n_advertisers * sizeof (float)), 0);
  /* advertisers own ads of their own topic (docs 2.3) */
  for (int j = 0; j < w.catalog->n_items; j++)
    cr_assert_eq (w.owner[j] % w.catalog->n_topics, w.catalog->topic[j]);
  E->destroy (&o);
  ra_task_t bad = { .split = "nope", .id = 0 };
  cr_assert_eq (E->set_task (sim, &bad, NULL, &err), RA_ERR_BAD_CONFIG);
  ra_kv_t dsc[20];
  E->describe_task (sim, 1, dsc, 20);
  cr_assert_str_eq (dsc[0].str, "train");
  h_fini (&h);
  E->destroy (&sim);
}

Test (ads, params_and_config_set_the_default_task)
{
  ra_kv_t p[] = { { .key = "position_bias", .type = RA_KV_NUM, .num = 2.0 },
                  { .key = "budget_scale", .type = RA_KV_NUM, .num = 50 } };
  ra_task_t t = { .params = p, .n_params = 2 };
  ra_sim_t *sim = s_make (1, 1, NULL, 0, &t);
  ra_ads_view_t v;
  ra_ads_view (sim, 0, &v);
  cr_assert_float_eq (v.choice->examine[1], 0.25, 1e-6);   /* (1/2)^2 */
  cr_assert_eq (v.params[RA_ADS_P_BUDGET_SCALE], 50);
  cr_assert_eq (v.params[RA_ADS_P_ANNOYANCE_RATE], 0.2);
  E->destroy (&sim);
  ra_kv_t cfg[] = { { .key = "leave_sensitivity", .type = RA_KV_NUM, .num = 2.5 } };
  sim = s_make (1, 1, cfg, 1, NULL);
  ra_ads_view (sim, 0, &v);
  cr_assert_eq (v.params[RA_ADS_P_LEAVE_SENSITIVITY], 2.5);
  E->destroy (&sim);
}

static void s_expect_bad_config (const char *key, ra_kv_t bad, const char *why)
{
  h_expect_bad_config (E, key, bad, why);
}

Test (ads, every_bad_config_key_is_bad_config_naming_it)
{
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
  s_expect_bad_config ("reward_weights.margin",
                       (ra_kv_t) { .key = "reward_weights.margin", .type = RA_KV_NUM, .num = 1 }, "not an Ads metric");
  s_expect_bad_config ("reward", (ra_kv_t) { .key = "reward", .type = RA_KV_STR, .str = "purchases" }, "ecommerce kind");
  s_expect_bad_config ("num_advertisers", (ra_kv_t) { .key = "num_advertisers", .type = RA_KV_NUM, .num = 0 }, "zero");
  ra_kv_t task_bad[] = { { .key = "annoyance", .type = RA_KV_NUM, .num = 1 } };
  ra_task_t t = { .params = task_bad, .n_params = 1 };
  a = (ra_sim_args_t) { .task = &t, .num_envs = 1 };
  cr_assert_eq (E->create (&a, &sim, &err), RA_ERR_BAD_CONFIG);
  cr_assert_neq (strstr (err.message, "annoyance"), NULL);
  a = (ra_sim_args_t) { .num_envs = 0 };
  cr_assert_eq (E->create (&a, &sim, &err), RA_ERR_BAD_CONFIG);
}

Test (ads, reward_kinds_follow_config)
{
  const char *kinds[] = { "clicks", "conversions", "weighted" };
  for (int kind = 0; kind < 3; kind++) {
    ra_kv_t cfg[] = { { .key = "reward", .type = RA_KV_STR, .str = kinds[kind] },
                      { .key = "reward_weights.clicks", .type = RA_KV_NUM, .num = 0.1 },
                      { .key = "reward_weights.conversions", .type = RA_KV_NUM, .num = 2.0 },
                      { .key = "reward_weights.revenue", .type = RA_KV_NUM, .num = 1.0 } };
    const double w[3][3] = { { 1, 0, 0 }, { 0, 1, 0 }, { 0.1, 2.0, 1.0 } };
    const int n = 64;
    ra_sim_t *sim = s_make (n, 3, cfg, 4, NULL);
    harness_t h;
    h_init (&h, E->spec (sim), n);
    cr_assert_float_eq (h.spec->reward_range[1], 3 * w[kind][0] + 3 * w[kind][1] + 3 * RA_ADS_BID_MAX * w[kind][2], 1e-4);
    int fc = h_info_index (&h, "clicked"), fv = h_info_index (&h, "converted"), fr = h_info_index (&h, "revenue");
    ra_rng_t rng;
    ra_rng_seed (&rng, 1, 0);
    int32_t act[64 * 3];
    double got = 0;
    E->reset (sim, 0, n, NULL, NULL, &h.buf);
    for (int t = 0; t < 20; t++) {
      for (int i = 0; i < n; i++)
        h_random_slate (&rng, 20, 3, act + i * 3);
      E->step (sim, 0, n, act, &h.buf);
      for (int i = 0; i < n; i++) {
        double want = 0;
        for (int r = 0; r < 3; r++)
          want += w[kind][0] * ((uint8_t *) h.buf.info[fc])[i * 3 + r] + w[kind][1] * ((uint8_t *) h.buf.info[fv])[i * 3 + r]
                  + w[kind][2] * ((float *) h.buf.info[fr])[i * 3 + r];
        cr_assert_float_eq (h.buf.reward[i], want, 1e-4);
        got += want;
      }
      E->reset (sim, 0, n, NULL, h.buf.terminated, &h.buf);
    }
    cr_assert_gt (got, 0);
    h_fini (&h);
    E->destroy (&sim);
  }
}

Test (ads, render_describes_the_user_and_last_slate)
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
  cr_assert_neq (strstr (buf, "annoyance"), NULL);
  cr_assert_neq (strstr (buf, "step 1"), NULL, "%s", buf);
  char small[8];
  cr_assert_eq (E->render (sim, 1, small, sizeof small), n);
  cr_assert_eq (strlen (small), 7u);
  h_fini (&h);
  E->destroy (&sim);
}
/* ---- section 6.3: the shared dynamics, switched by dynamics.* config ---- */

/* Runs n envs (seed 5) for `steps` steps, slate {0..k-1} when fixed (the first candidates come
   from the user's nearest topic, 3.2) else random: h_dyn_run. */
static h_dyn_stats_t s_dyn_run (const ra_kv_t *cfg, int n_cfg, const ra_task_t *task, int n, int steps, bool fixed)
{
  return h_dyn_run (E, cfg, n_cfg, task, n, steps, fixed);
}

Test (ads, dynamics_keys_are_listed_with_this_sims_defaults_and_bad_values_name_the_key)
{
  h_check_dynamics_keys (E, false); /* section 6.3: Ads-v1 does not drift by default */
}

static void s_theta_of (ra_sim_t *sim, float theta[16])
{
  ra_ads_view_t v;
  ra_ads_view (sim, 0, &v);
  memcpy (theta, v.theta, 16 * sizeof (float));
}

/* Whether env 0's theta moves in 40 steps of slate {0, 1, 2}: h_theta_moves. */
static bool s_theta_moves (const ra_kv_t *cfg, int n_cfg)
{
  return h_theta_moves (E, s_theta_of, cfg, n_cfg);
}

Test (ads, dynamics_drift_on_moves_interest_and_off_keeps_it_fixed)
{
  cr_assert_not (s_theta_moves (NULL, 0), "drift is off by default");
  ra_kv_t on[] = { S_B ("drift", 1) };
  cr_assert (s_theta_moves (on, 1), "dynamics.drift on left theta fixed");
}

Test (ads, dynamics_boredom_lowers_clicks_on_a_repeated_topic)
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

Test (ads, dynamics_time_budget_adds_a_session_end_to_leaving)
{
  ra_kv_t pp[] = { { .key = "annoyance_rate", .type = RA_KV_NUM, .num = 0 } };
  ra_task_t patient = { .params = pp, .n_params = 1 };
  h_dyn_stats_t a = s_dyn_run (NULL, 0, &patient, 64, 100, false);
  cr_assert_gt (a.long_sessions, 0, "patient users have long sessions");
  ra_kv_t on[] = { S_B ("time_budget", 1), S_N ("budget_mean", 4), S_N ("budget_spread", 0) };
  h_dyn_stats_t b = s_dyn_run (on, 3, &patient, 64, 100, false);
  cr_assert_gt (b.ends, 64, "sessions end");
  cr_assert_leq (b.max_session_len, 4, "a budget of 4 at a cost of at least 1 per step lasts 4 steps");
}

Test (ads, dynamics_return_makes_episodes_span_sessions_reported_in_info)
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

Test (ads, dynamics_all_switches_on_keep_observations_in_bounds)
{
  ra_kv_t all[] = { S_B ("drift", 1), S_B ("boredom", 1), S_B ("time_budget", 1), S_B ("return", 1),
                    { .key = "oracle", .type = RA_KV_BOOL, .num = 1 } };
  h_dyn_stats_t st = s_dyn_run (all, 5, NULL, 64, 300, false);
  cr_assert_gt (st.ends, 0);
  cr_assert_gt (st.returns, 0);
}
