/*  tests/env/test_news.c - News-v1 against env/core/sim.h and docs/sims/news.md:
    reproducibility (seeds, batch sizes, call ranges), bounds, the publish stream (arrivals,
    expiry, bursts), the documented attraction, cascade click, dwell, satiation and time-budget
    equations, oracle vs random, tasks, rewards and config errors naming their key. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "env/sims/news.h"
#include "env/sims/registry.h"
#include "sim_harness.h"

/* A cheap assert for hot test loops: Criterion only sees failures. */
#define CHECK(cond, ...) do { if (!(cond)) cr_assert_fail (__VA_ARGS__); } while (0)

static const ra_sim_class_t *E = &ra_news_class;

static ra_sim_t *s_make (int n, uint64_t seed, const ra_kv_t *cfg, int n_cfg, const ra_task_t *task)
{
  return h_make (E, n, seed, cfg, n_cfg, task);
}

Test (news, registry_finds_it_by_name)
{
  cr_assert_eq (ra_sims_find ("News-v1", 7), E);
  cr_assert_null (ra_sims_find ("News-v", 6));
  int n, found = 0;
  const ra_sim_class_t *const *all = ra_sims_all (&n);
  for (int i = 0; i < n; i++)
    found += all[i] == E;
  cr_assert_eq (found, 1);
}

Test (news, spec_has_the_documented_fields)
{
  ra_sim_t *sim = s_make (2, 1, NULL, 0, NULL);
  const ra_sim_spec_t *sp = E->spec (sim);
  cr_assert_eq (sp->num_candidates, 20);
  cr_assert_eq (sp->slate_size, 5);
  cr_assert_eq (sp->max_episode_steps, 100);
  cr_assert_eq (sp->n_obs, 4);
  cr_assert_str_eq (sp->obs[0].name, "user");
  cr_assert_eq (sp->obs[0].shape[0], 16 + 5);
  cr_assert_str_eq (sp->obs[1].name, "candidates");
  cr_assert_eq (sp->obs[1].shape[0], 20);
  cr_assert_eq (sp->obs[1].shape[1], 16 + 4);
  cr_assert_str_eq (sp->obs[2].name, "response");
  cr_assert_eq (sp->obs[2].shape[0], 11);
  cr_assert_str_eq (sp->obs[3].name, "item_ids");
  cr_assert_eq (sp->obs[3].dtype, RA_DTYPE_I32);
  cr_assert_eq (sp->obs[3].ndim, 1);
  cr_assert_eq (sp->obs[3].shape[0], 20);
  cr_assert_eq (sp->obs[3].low, 0);
  cr_assert_eq (sp->obs[3].high, 2147483647);
  const char *names[] = { "item", "clicked", "dwell", "age", "time_left" };
  cr_assert_eq (sp->n_info, 5);
  for (int f = 0; f < 5; f++)
    cr_assert_str_eq (sp->info[f].name, names[f]);
  /* 9.2: clicks_dwell with dwell_weight 0.5: [0, 5 + 0.5 x 5 x 30] */
  cr_assert_eq (sp->reward_range[0], 0);
  cr_assert_float_eq (sp->reward_range[1], 5 + 0.5 * 5 * RA_NEWS_DWELL_MAX, 1e-9);
  E->destroy (&sim);
  cr_assert_null (sim);
  E->destroy (&sim);   /* accepts NULL */
  ra_kv_t cfg[] = { { .key = "oracle", .type = RA_KV_BOOL, .num = 1 },
                    { .key = "slate_size", .type = RA_KV_NUM, .num = 1 } };
  sim = s_make (2, 1, cfg, 2, NULL);
  sp = E->spec (sim);
  cr_assert_eq (sp->n_info, 8);
  cr_assert_str_eq (sp->info[5].name, "oracle_reward");
  cr_assert_str_eq (sp->info[6].name, "regret");
  cr_assert_str_eq (sp->info[7].name, "oracle_slate");
  cr_assert_eq (sp->slate_size, 1);
  E->destroy (&sim);
}

Test (news, item_ids_are_the_ids_info_item_reports)
{
  /* obs item_ids (article serials: the same article keeps its id from step to step); item[r] = item_ids[slate[r]] */
  ra_sim_t *sim = s_make (64, 9, NULL, 0, NULL);
  char why[256] = "";
  long repeats;
  long compared = h_check_item_ids (E, sim, 64, 60, 17, 16, &repeats, why, sizeof why);
  cr_assert_geq (compared, 64L * 60 * 5, "%s", why);
  cr_assert_gt (repeats, 1000, "ids seen in consecutive observations: %ld", repeats);   /* the stability check ran */
  E->destroy (&sim);
}

/* ---- trajectories ---- */

/* Runs n envs for `steps` steps with per-env random slates (env i's actions depend only on
   first_env + i), resetting terminated envs, stepping over ranges split at `cut`. Records env
   `watch`. */
static void s_run (ra_sim_t *sim, int n, int first_env, int steps, int cut, int watch, h_trace_t *tr)
{
  h_run (E, sim, n, first_env, steps, cut, watch, NULL, tr);
}

Test (news, same_seed_gives_the_same_trajectory)
{
  const int steps = 200;
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
  for (int t = 0; t < steps; t++)
    terms += ta.term[t];
  cr_assert_gt (terms, 2, "200 steps should span several episodes");
  h_trace_free (&ta);
  h_trace_free (&tb);
  h_trace_free (&tc);
  E->destroy (&a);
  E->destroy (&b);
  E->destroy (&c);
}

Test (news, env_in_a_batch_of_256_split_in_ranges_equals_it_alone)
{
  const int steps = 100;
  const int watch[] = { 0, 7, 255 };
  ra_kv_t cfg[] = { { .key = "oracle", .type = RA_KV_BOOL, .num = 1 } };
  for (int w = 0; w < 3; w++) {
    int i = watch[w];
    ra_sim_t *big = s_make (256, 900, cfg, 1, NULL), *one = s_make (1, 900 + (uint64_t) i, cfg, 1, NULL);
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

Test (news, reset_with_seeds_restarts_the_stream)
{
  ra_sim_t *sim = s_make (4, 1, NULL, 0, NULL);
  harness_t h;
  h_init (&h, E->spec (sim), 4);
  uint64_t seeds[4] = { 50, 51, 52, 50 };
  E->reset (sim, 0, 4, NULL, NULL, &h.buf);
  int32_t act[20] = { 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4 };
  E->step (sim, 0, 4, act, &h.buf);
  E->reset (sim, 0, 4, seeds, NULL, &h.buf);
  size_t cb = h.obs_bytes[1];
  char *c = (char *) h.buf.obs[1];
  cr_assert_eq (memcmp (c, c + 3 * cb, cb), 0, "envs 0 and 3 share seed 50");
  cr_assert_neq (memcmp (c, c + 1 * cb, cb), 0);
  ra_news_view_t v;
  ra_news_view (sim, 0, &v);
  cr_assert_eq (v.clock, 19u, "a new seed starts a new stream");
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

/* ---- bounds ---- */

Test (news, long_random_runs_stay_inside_declared_bounds)
{
  const int n = 128, steps = 150;
  ra_kv_t cfg[] = { { .key = "oracle", .type = RA_KV_BOOL, .num = 1 } };
  ra_task_t ood = { .split = "ood", .id = 3 };
  for (int pass = 0; pass < 2; pass++) {
    ra_sim_t *sim = s_make (n, 5, cfg, 1, pass ? &ood : NULL);
    harness_t h;
    h_init (&h, E->spec (sim), n);
    const ra_sim_spec_t *sp = h.spec;
    const int k = sp->slate_size;
    int fc = h_info_index (&h, "clicked"), fd = h_info_index (&h, "dwell"), fa = h_info_index (&h, "age");
    int ft = h_info_index (&h, "time_left"), fg = h_info_index (&h, "regret"), fi = h_info_index (&h, "item");
    ra_rng_t rng;
    ra_rng_seed (&rng, 8, 0);
    int32_t *act = calloc ((size_t) n * k, sizeof (int32_t));
    E->reset (sim, 0, n, NULL, NULL, &h.buf);
    long clicks = 0, multi = 0, bursts = 0;
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
        h_random_slate (&rng, sp->num_candidates, k, act + (size_t) i * k);
      E->step (sim, 0, n, act, &h.buf);
      for (int i = 0; i < n; i++) {
        float rw = h.buf.reward[i];
        CHECK (rw >= sp->reward_range[0] && rw <= sp->reward_range[1], "reward %g", rw);
        CHECK (((float *) h.buf.info[fg])[i] >= 0, "regret < 0");
        CHECK (((float *) h.buf.info[ft])[i] >= 0, "time_left < 0");
        int nc = 0;
        double want = 0;
        for (int r = 0; r < k; r++) {
          uint8_t c = ((uint8_t *) h.buf.info[fc])[i * k + r];
          float dw = ((float *) h.buf.info[fd])[i * k + r];
          int32_t age = ((int32_t *) h.buf.info[fa])[i * k + r];
          CHECK (c <= 1, "clicked %d", c);
          CHECK (c ? dw > 0 && dw <= RA_NEWS_DWELL_MAX : dw == 0, "dwell %g with click %d", dw, c);
          CHECK (age >= 0 && age <= sp->info[fa].high, "age %d", age);
          CHECK (((int32_t *) h.buf.info[fi])[i * k + r] >= 0, "item id < 0");
          nc += c;
          want += c + 0.5 * dw;   /* 9.1 clicks_dwell, dwell_weight 0.5 */
        }
        CHECK (fabs (rw - want) < 1e-4 * (1 + want), "reward %g, clicks + 0.5 dwell = %g", rw, want);
        clicks += nc;
        multi += nc > 1;
        ra_news_view_t v;
        ra_news_view (sim, i, &v);
        for (int q = 0; q < v.n_topics; q++) {
          float lv = ra_boredom_level (v.satiation_model, &v.satiation[q], v.steps);
          CHECK (lv >= 0 && lv < 1, "satiation %g", lv);
        }
        CHECK (h.buf.terminated[i] || (v.user->budget > 0 && v.streak < v.user->patience),
               "time %g, streak %d of %g, not terminated", v.user->budget, v.streak, v.user->patience);
        bursts += v.burst_topic >= 0;
      }
      E->reset (sim, 0, n, NULL, h.buf.terminated, &h.buf);
    }
    cr_assert_gt (clicks, 1000, "pass %d: %ld clicks", pass, clicks);
    cr_assert_gt (multi, 50, "cascade: several clicks per slate happen (%ld)", multi);
    cr_assert_gt (bursts, 100, "bursts happen (%ld env-steps in a burst)", bursts);
    free (act);
    h_fini (&h);
    E->destroy (&sim);
  }
}

/* ---- the publish stream ---- */

Test (news, articles_expire_and_new_ones_arrive)
{
  const int M = 3, A = 20, C = M * A;
  ra_sim_t *sim = s_make (1, 11, NULL, 0, NULL);
  harness_t h;
  h_init (&h, E->spec (sim), 1);
  E->reset (sim, 0, 1, NULL, NULL, &h.buf);
  int32_t act[5] = { 0, 1, 2, 3, 4 };
  long burst_articles = 0, on_burst_topic = 0, in_burst = 0;
  int32_t last_serial_max = -1;
  for (int t = 0; t < 400; t++) {
    ra_news_view_t v;
    ra_news_view (sim, 0, &v);
    cr_assert_eq (v.capacity, C);
    /* 2.1 the ring holds exactly M articles of each age 0..max_age-1, serials published-C..published-1 */
    int per_age[20] = { 0 };
    int32_t smin = INT32_MAX, smax = -1;
    for (int p = 0; p < C; p++) {
      uint32_t age = v.clock - v.art_birth[p];
      cr_assert_lt (age, (uint32_t) A, "article at %d has age %u", p, age);
      per_age[age]++;
      smin = v.art_serial[p] < smin ? v.art_serial[p] : smin;
      smax = v.art_serial[p] > smax ? v.art_serial[p] : smax;
      burst_articles += v.art_burst[p] && age == 0;
    }
    for (int a = 0; a < A; a++)
      cr_assert_eq (per_age[a], M, "age %d has %d articles", a, per_age[a]);
    cr_assert_eq ((int64_t) smax, v.published - 1);
    cr_assert_eq ((int64_t) smin, v.published - C, "older articles expired");
    cr_assert_gt (smax, last_serial_max, "new articles arrived");
    last_serial_max = smax;
    /* 3.2 the first round(0.5 K) = 10 candidates are the 10 newest */
    for (int r = 0; r < 10; r++)
      cr_assert_eq (v.art_serial[v.candidates[r]], (int32_t) (v.published - 1 - r));
    /* candidates are distinct ring positions */
    for (int r = 0; r < 20; r++)
      for (int q = 0; q < r; q++)
        cr_assert_neq (v.candidates[r], v.candidates[q]);
    if (v.burst_topic >= 0) {
      in_burst++;
      for (int p = 0; p < C; p++)
        if (v.clock == v.art_birth[p])
          on_burst_topic += v.art_topic[p] == v.burst_topic;
    }
    uint32_t clock0 = v.clock;
    int64_t pub0 = v.published;
    E->step (sim, 0, 1, act, &h.buf);
    ra_news_view (sim, 0, &v);
    cr_assert_eq (v.clock, clock0 + 1);
    cr_assert_eq (v.published, pub0 + M);
    int32_t ages[5];
    memcpy (ages, h.buf.info[h_info_index (&h, "age")], sizeof ages);
    for (int r = 0; r < 5; r++)
      cr_assert_lt (ages[r], A);
    /* 2.4 resets keep the stream running */
    E->reset (sim, 0, 1, NULL, h.buf.terminated, &h.buf);
    ra_news_view (sim, 0, &v);
    cr_assert_eq (v.published, pub0 + M, "a reset without a seed or a new task keeps the stream");
  }
  cr_assert_gt (burst_articles, 0, "breaking articles are published");
  /* 2.2 during a burst, the newest round leans to the burst topic (share >= BURST_SHARE) */
  cr_assert_gt (in_burst, 5);
  cr_assert_gt ((double) on_burst_topic / (double) (M * in_burst), RA_NEWS_BURST_SHARE - 0.15,
                "%ld of %ld burst-round articles on the burst topic", on_burst_topic, M * in_burst);
  h_fini (&h);
  E->destroy (&sim);
}

/* ---- golden equations ---- */

/* Satiation of topic tp at step `now` from the stored state (docs 4.2, shared.md 2.2), in double. */
static double s_level (const ra_news_view_t *v, int tp, int now)
{
  const ra_boredom_topic_t *b = &v->satiation[tp];
  if (b->last < 0 || now - b->last >= RA_NEWS_SATIATION_TIMEOUT)
    return 0;
  return b->level * pow (exp (-1.0 / v->params[RA_NEWS_P_SATIATION_RECOVERY]), now - b->last);
}

/* Recomputes, from the view and docs/sims/news.md in double: 4.1 the scaled utility with
   freshness and satiation, the cascade marginals of shared.md 1.1 (or the logit's), then checks
   observed clicks per slot, dwell totals (5.1), and the exact satiation (4.2) and time-budget
   (6.1) updates. Empirical checks are within 5 standard deviations. */
static void s_golden (const char *model, const ra_task_t *task)
{
  const int n = 512, steps = 10, K = 20, k = 5, d = 16, T = 10;
  ra_kv_t cfg[] = { { .key = "choice_model", .type = RA_KV_STR, .str = model } };
  ra_sim_t *sim = s_make (n, 31, cfg, 1, task);
  harness_t h;
  h_init (&h, E->spec (sim), n);
  int fc = h_info_index (&h, "clicked"), fd = h_info_index (&h, "dwell"), ft = h_info_index (&h, "time_left");
  int fa = h_info_index (&h, "age");
  bool logit = strcmp (model, "logit") == 0;
  ra_rng_t rng;
  ra_rng_seed (&rng, 4, 0);
  int32_t *act = calloc ((size_t) n * k, sizeof (int32_t)), *topic = calloc ((size_t) n * k, sizeof (int32_t));
  int32_t *age = calloc ((size_t) n * k, sizeof (int32_t));
  double *pc = calloc ((size_t) n * k, sizeof (double)), *dmean = calloc ((size_t) n * k, sizeof (double));
  double *sat0 = calloc ((size_t) n * T, sizeof (double));
  float *time0 = calloc ((size_t) n, sizeof (float));
  double exp_c[5] = { 0 }, var_c[5] = { 0 }, obs_c[5] = { 0 };
  double exp_d = 0, var_d = 0, obs_d = 0;
  const double s2 = (double) RA_NEWS_DWELL_SIGMA * RA_NEWS_DWELL_SIGMA;
  E->reset (sim, 0, n, NULL, NULL, &h.buf);
  for (int t = 0; t < steps; t++) {
    for (int i = 0; i < n; i++) {
      int32_t *a = act + (size_t) i * k;
      h_random_slate (&rng, K, k, a);
      ra_news_view_t v;
      ra_news_view (sim, i, &v);
      const double *p = v.params;
      double tau = p[RA_NEWS_P_TEMPERATURE], v0 = p[RA_NEWS_P_NO_CLICK] / tau;
      double eta = p[RA_NEWS_P_POSITION_BIAS], hl = p[RA_NEWS_P_HALF_LIFE], cont = 0.5;
      double util[5], den = exp (v0);
      for (int r = 0; r < k; r++) {
        int j = v.candidates[a[r]];
        const float *x = v.art_x + (size_t) j * d;
        double aff = 0;
        for (int q = 0; q < d; q++)
          aff += (double) v.theta[q] * x[q];
        age[i * k + r] = (int32_t) (v.clock - v.art_birth[j]);
        topic[i * k + r] = v.art_topic[j];
        /* 4.1 v = (theta.x + gq q + gb burst - gs sigma_topic) / tau - ln 2 age / half_life */
        util[r] = (aff + RA_NEWS_QUALITY_WEIGHT * v.art_quality[j] + RA_NEWS_BURST_BONUS * v.art_burst[j]
                   - RA_NEWS_SATIATION_WEIGHT * s_level (&v, v.art_topic[j], v.steps)) / tau
                  - log (2.0) * age[i * k + r] / hl;
        /* 5.1 D = dwell_scale exp(beta_a aff + beta_q q) */
        dmean[i * k + r] = p[RA_NEWS_P_DWELL_SCALE]
                           * exp (RA_NEWS_DWELL_AFFINITY * aff + RA_NEWS_DWELL_QUALITY * v.art_quality[j]);
        den += pow (1.0 / (r + 1), eta) * exp (util[r]);
      }
      if (logit) {
        for (int r = 0; r < k; r++)
          pc[i * k + r] = pow (1.0 / (r + 1), eta) * exp (util[r]) / den;
      } else {   /* cascade: E_1 = 1, P(r) = E_r a_r, E_{r+1} = E_r (1 - (1 - cont) a_r) */
        double ex = 1;
        for (int r = 0; r < k; r++) {
          double ar = 1.0 / (1.0 + exp (v0 - util[r]));
          pc[i * k + r] = ex * ar;
          ex *= 1 - (1 - cont) * ar;
        }
      }
      for (int q = 0; q < T; q++)
        sat0[(size_t) i * T + q] = s_level (&v, q, v.steps);
      time0[i] = v.user->budget;
    }
    E->step (sim, 0, n, act, &h.buf);
    for (int i = 0; i < n; i++) {
      ra_news_view_t v;
      ra_news_view (sim, i, &v);
      const double *p = v.params;
      double sat[10], spent = RA_NEWS_STEP_COST;
      for (int q = 0; q < T; q++)
        sat[q] = sat0[(size_t) i * T + q];
      int nc = 0;
      for (int r = 0; r < k; r++) {
        double pr = pc[i * k + r];
        uint8_t c = ((uint8_t *) h.buf.info[fc])[i * k + r];
        float dw = ((float *) h.buf.info[fd])[i * k + r];
        CHECK (((int32_t *) h.buf.info[fa])[i * k + r] == age[i * k + r], "age");
        exp_c[r] += pr;
        var_c[r] += pr * (1 - pr);
        obs_c[r] += c;
        nc += c;
        if (c) {
          double m = dmean[i * k + r];
          exp_d += m;
          var_d += m * m * (exp (s2) - 1);   /* log-normal variance */
          obs_d += dw;
          spent += dw;
          int tp = topic[i * k + r];
          sat[tp] += p[RA_NEWS_P_SATIATION_RATE] * (1 - sat[tp]);   /* 4.2 rise, in rank order */
        }
      }
      CHECK (!logit || nc <= 1, "logit: %d clicks", nc);
      /* 4.2 recovery: one step later sigma is sigma exp(-1 / recovery) (reset envs start at 0) */
      double keep = exp (-1.0 / p[RA_NEWS_P_SATIATION_RECOVERY]);
      for (int q = 0; q < T; q++) {
        double got = s_level (&v, q, v.steps);
        CHECK (fabs (got - sat[q] * keep) < 1e-5, "satiation of topic %d: %g, expected %g", q, got, sat[q] * keep);
      }
      /* 6.1 time left drops by the step cost plus the dwell */
      CHECK (fabs (v.user->budget - (time0[i] - spent)) < 1e-3, "time %g, expected %g", v.user->budget, time0[i] - spent);
      float tl = ((float *) h.buf.info[ft])[i];
      CHECK (tl == (v.user->budget > 0 ? v.user->budget : 0), "info time_left %g", tl);
      /* 6.2 termination */
      CHECK (h.buf.terminated[i] == (v.user->budget <= 0 || v.streak >= v.user->patience), "terminated");
    }
    E->reset (sim, 0, n, NULL, h.buf.terminated, &h.buf);
  }
  for (int r = 0; r < k; r++)
    cr_assert_lt (fabs (obs_c[r] - exp_c[r]), 5 * sqrt (var_c[r]) + 1, "%s slot %d: %g clicks, expected %g (sd %g)",
                  model, r, obs_c[r], exp_c[r], sqrt (var_c[r]));
  /* the clamp at DWELL_MAX lowers the mean by a negligible amount at these parameters */
  cr_assert_lt (fabs (obs_d - exp_d), 5 * sqrt (var_d) + 1, "%s: dwell %g, expected %g (sd %g)", model, obs_d,
                exp_d, sqrt (var_d));
  cr_assert_gt (obs_c[0], 100, "%s: enough clicks to test", model);
  free (act);
  free (topic);
  free (age);
  free (pc);
  free (dmean);
  free (sat0);
  free (time0);
  h_fini (&h);
  E->destroy (&sim);
}

Test (news, cascade_clicks_dwell_satiation_and_time_follow_the_documented_equations)
{
  s_golden ("cascade", NULL);
  /* fast ageing and strong satiation: a one-step error in age or a weaker rise shows */
  ra_kv_t p[] = { { .key = "freshness_half_life", .type = RA_KV_NUM, .num = 1 },
                  { .key = "satiation_rate", .type = RA_KV_NUM, .num = 0.9 },
                  { .key = "no_click_utility", .type = RA_KV_NUM, .num = 0 } };
  ra_task_t t = { .params = p, .n_params = 3 };
  s_golden ("cascade", &t);
  ra_task_t ood = { .split = "ood", .id = 1 };
  s_golden ("cascade", &ood);
}

Test (news, logit_clicks_follow_the_documented_equations)
{
  s_golden ("logit", NULL);
}

Test (news, candidate_rows_hold_the_documented_features)
{
  ra_kv_t p[] = { { .key = "freshness_half_life", .type = RA_KV_NUM, .num = 4 } };
  ra_task_t t = { .params = p, .n_params = 1 };
  ra_sim_t *sim = s_make (1, 3, NULL, 0, &t);
  harness_t h;
  h_init (&h, E->spec (sim), 1);
  E->reset (sim, 0, 1, NULL, NULL, &h.buf);
  ra_news_view_t v;
  ra_news_view (sim, 0, &v);
  cr_assert_float_eq (v.params[RA_NEWS_P_HALF_LIFE], 4, 1e-12);
  /* 7.1: x (d), age / max_age, breaking flag, qhat, h / (1 + h) */
  const float *cand = h.buf.obs[1];
  for (int r = 0; r < 20; r++) {
    int j = v.candidates[r];
    cr_assert_float_eq (cand[r * 20 + 16], (float) (v.clock - v.art_birth[j]) / 20.0f, 1e-6);
    cr_assert_eq (cand[r * 20 + 17], (float) v.art_burst[j]);
    cr_assert_eq (cand[r * 20 + 18], v.art_qhat[j]);
    cr_assert_eq (memcmp (cand + r * 20, v.art_x + (size_t) j * 16, 16 * sizeof (float)), 0);
    float hc = v.topic_clicks[v.art_topic[j]];
    cr_assert_float_eq (cand[r * 20 + 19], hc / (1 + hc), 1e-6);
  }
  h_fini (&h);
  E->destroy (&sim);
}

/* ---- oracle and tasks ---- */

/* Mean reward per step of the oracle policy (plays info oracle_slate; random on an episode's
   first step) and of a random policy; checks regret >= 0 and that the oracle's regret is ~0. */
static void s_oracle_vs_random (const ra_task_t *task, double *oracle, double *random)
{
  h_oracle_vs_random (E, 128, 50, task, oracle, random);
}

Test (news, oracle_beats_random_and_the_margin_depends_on_the_task)
{
  double o0, r0, o1, r1, o2, r2;
  s_oracle_vs_random (NULL, &o0, &r0);
  ra_task_t train = { .split = "train", .id = 4 }, ood = { .split = "ood", .id = 4 };
  s_oracle_vs_random (&train, &o1, &r1);
  s_oracle_vs_random (&ood, &o2, &r2);
  /* measured (1024 envs x 100 steps, docs/sims/news.md 10): default 1.78 vs 1.10,
     train/4 2.71 vs 1.65, ood/4 0.49 vs 0.28 */
  cr_assert_gt (o0, 1.3 * r0, "default task: oracle %g vs random %g", o0, r0);
  cr_assert_gt (o1, 1.3 * r1, "train/4: oracle %g vs random %g", o1, r1);
  cr_assert_gt (o2, 1.3 * r2, "ood/4: oracle %g vs random %g", o2, r2);
  double m0 = o0 - r0, m1 = o1 - r1, m2 = o2 - r2;
  cr_assert_gt (m1, 1.2 * m0, "the oracle's edge differs across tasks: default %g, train/4 %g", m0, m1);
  cr_assert_lt (m2, 0.6 * m0, "the oracle's edge differs across tasks: default %g, ood/4 %g", m0, m2);
}

/* Random play on a task: clicks per step and mean episode length. */
static void s_stats (const ra_task_t *task, double *ctr, double *len)
{
  h_random_play_stats (E, 256, 50, task, ctr, len);
}

Test (news, ood_tasks_differ_measurably_from_train_tasks)
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
  /* ood: hotter, pickier users, faster ageing, slower recovery, less time and patience */
  cr_assert_lt (ctr_ood, 0.7 * ctr_train, "clicks/step train %g ood %g", ctr_train, ctr_ood);
  cr_assert_lt (len_ood, 0.7 * len_train, "length train %g ood %g", len_train, len_ood);
}

Test (news, tasks_are_deterministic_and_splits_disjoint)
{
  ra_sim_t *sim = s_make (2, 1, NULL, 0, NULL);
  ra_kv_t a[24], b[24];
  ra_error_t err;
  ra_task_t t = { .split = "val", .id = 17 };
  cr_assert_eq (E->set_task (sim, &t, NULL, &err), RA_OK);
  int na = E->describe_task (sim, 0, a, 24);
  cr_assert_eq (na, 2 + RA_NEWS_P_COUNT);
  cr_assert_str_eq (a[0].str, "val");
  cr_assert_eq (a[1].num, 17);
  ra_sim_t *other = s_make (3, 9, NULL, 0, &t);
  int nb = E->describe_task (other, 2, b, 24);
  cr_assert_eq (na, nb);
  for (int q = 2; q < na; q++) {
    cr_assert_str_eq (a[q].key, b[q].key);
    cr_assert_eq (a[q].num, b[q].num, "%s", a[q].key);
  }
  ra_task_t u = { .split = "test", .id = 17 };
  cr_assert_eq (E->set_task (other, &u, NULL, &err), RA_OK);
  E->describe_task (other, 0, b, 24);
  int same = 0;
  for (int q = 2; q < na; q++)
    same += a[q].num == b[q].num;
  cr_assert_lt (same, 2, "val/17 and test/17 share %d parameters", same);
  E->destroy (&other);
  E->destroy (&sim);
}

Test (news, set_task_applies_at_next_reset_and_starts_a_new_stream)
{
  ra_sim_t *sim = s_make (4, 1, NULL, 0, NULL);
  harness_t h;
  h_init (&h, E->spec (sim), 4);
  ra_error_t err;
  E->reset (sim, 0, 4, NULL, NULL, &h.buf);
  int32_t act[20] = { 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4 };
  for (int s = 0; s < 3; s++)
    E->step (sim, 0, 4, act, &h.buf);
  ra_task_t t = { .split = "train", .id = 2 };
  uint8_t mask[4] = { 0, 1, 0, 1 };
  cr_assert_eq (E->set_task (sim, &t, mask, &err), RA_OK);
  ra_news_view_t v0, v1;
  ra_news_view (sim, 1, &v1);
  ra_news_view (sim, 0, &v0);
  cr_assert_eq (v0.world, v1.world, "not yet applied");
  E->reset (sim, 0, 4, NULL, NULL, &h.buf);
  ra_news_view (sim, 1, &v1);
  ra_news_view (sim, 0, &v0);
  cr_assert_neq (v0.world, v1.world);
  cr_assert_eq (v0.clock, 22u, "same world: the stream runs on");
  cr_assert_eq (v1.clock, 19u, "new world: a new stream");
  /* a different batch size and seed: the same world for the same task */
  ra_sim_t *o = s_make (1, 99, NULL, 0, &t);
  ra_news_view_t w;
  ra_news_view (o, 0, &w);
  cr_assert_eq (memcmp (w.world->centres, v1.world->centres, 10 * 16 * sizeof (float)), 0);
  cr_assert_eq (memcmp (w.world->topic_cdf, v1.world->topic_cdf, 10 * sizeof (double)), 0);
  E->destroy (&o);
  ra_task_t bad = { .split = "nope", .id = 0 };
  cr_assert_eq (E->set_task (sim, &bad, NULL, &err), RA_ERR_BAD_CONFIG);
  ra_kv_t d[24];
  E->describe_task (sim, 1, d, 24);
  cr_assert_str_eq (d[0].str, "train");
  h_fini (&h);
  E->destroy (&sim);
}

Test (news, params_and_config_override_the_default_task)
{
  ra_kv_t p[] = { { .key = "freshness_half_life", .type = RA_KV_NUM, .num = 2.5 },
                  { .key = "satiation_rate", .type = RA_KV_NUM, .num = 0.9 } };
  ra_task_t t = { .params = p, .n_params = 2 };
  ra_sim_t *sim = s_make (1, 1, NULL, 0, &t);
  ra_news_view_t v;
  ra_news_view (sim, 0, &v);
  cr_assert_eq (v.params[RA_NEWS_P_HALF_LIFE], 2.5);
  cr_assert_eq (v.params[RA_NEWS_P_SATIATION_RATE], 0.9);
  cr_assert_eq (v.params[RA_NEWS_P_BURST_RATE], 0.1);
  E->destroy (&sim);
  ra_kv_t cfg[] = { { .key = "time_budget", .type = RA_KV_NUM, .num = 90 },
                    { .key = "burst_rate", .type = RA_KV_NUM, .num = 0.5 } };
  sim = s_make (1, 1, cfg, 2, NULL);
  ra_news_view (sim, 0, &v);
  cr_assert_eq (v.params[RA_NEWS_P_TIME_BUDGET], 90);
  cr_assert_eq (v.params[RA_NEWS_P_BURST_RATE], 0.5);
  E->destroy (&sim);
}

/* ---- config and rewards ---- */

static void s_expect_bad_config (const char *key, ra_kv_t bad, const char *why)
{
  h_expect_bad_config (E, key, bad, why);
}

Test (news, every_bad_config_key_is_bad_config_naming_it)
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
  s_expect_bad_config ("slate_size", (ra_kv_t) { .key = "slate_size", .type = RA_KV_NUM, .num = 2.5 }, "fraction");
  /* the ring must hold K articles: max_age >= ceil(K / publish_rate) = 7 */
  s_expect_bad_config ("max_age", (ra_kv_t) { .key = "max_age", .type = RA_KV_NUM, .num = 6 }, "ring < K");
  ra_kv_t task_bad[] = { { .key = "half_life", .type = RA_KV_NUM, .num = 1 } };
  ra_task_t t = { .params = task_bad, .n_params = 1 };
  a = (ra_sim_args_t) { .task = &t, .num_envs = 1 };
  cr_assert_eq (E->create (&a, &sim, &err), RA_ERR_BAD_CONFIG);
  cr_assert_neq (strstr (err.message, "half_life"), NULL);
  ra_kv_t task_range[] = { { .key = "burst_rate", .type = RA_KV_NUM, .num = 2 } };
  t = (ra_task_t) { .params = task_range, .n_params = 1 };
  cr_assert_eq (E->create (&a, &sim, &err), RA_ERR_BAD_CONFIG);
  cr_assert_neq (strstr (err.message, "burst_rate"), NULL);
  a = (ra_sim_args_t) { .num_envs = 0 };
  cr_assert_eq (E->create (&a, &sim, &err), RA_ERR_BAD_CONFIG);
}

/* reward = wc clicks + wd dwell for each reward kind (9.1) */
static void s_check_reward (const char *kind, const ra_kv_t *extra, int n_extra, double wc, double wd)
{
  ra_kv_t cfg[4] = { { .key = "reward", .type = RA_KV_STR, .str = kind } };
  for (int q = 0; q < n_extra; q++)
    cfg[1 + q] = extra[q];
  const int n = 64;
  ra_sim_t *sim = s_make (n, 3, cfg, 1 + n_extra, NULL);
  harness_t h;
  h_init (&h, E->spec (sim), n);
  cr_assert_float_eq (h.spec->reward_range[1], (wc > 0 ? wc * 5 : 0) + (wd > 0 ? wd * 5 * RA_NEWS_DWELL_MAX : 0), 1e-6);
  cr_assert_float_eq (h.spec->reward_range[0], (wc < 0 ? wc * 5 : 0) + (wd < 0 ? wd * 5 * RA_NEWS_DWELL_MAX : 0), 1e-6);
  int fc = h_info_index (&h, "clicked"), fd = h_info_index (&h, "dwell");
  ra_rng_t rng;
  ra_rng_seed (&rng, 1, 0);
  int32_t act[64 * 5];
  E->reset (sim, 0, n, NULL, NULL, &h.buf);
  double total_dwell = 0;
  for (int t = 0; t < 20; t++) {
    for (int i = 0; i < n; i++)
      h_random_slate (&rng, 20, 5, act + i * 5);
    E->step (sim, 0, n, act, &h.buf);
    for (int i = 0; i < n; i++) {
      double want = 0;
      for (int r = 0; r < 5; r++) {
        want += wc * ((uint8_t *) h.buf.info[fc])[i * 5 + r] + wd * ((float *) h.buf.info[fd])[i * 5 + r];
        total_dwell += ((float *) h.buf.info[fd])[i * 5 + r];
      }
      cr_assert_float_eq (h.buf.reward[i], want, 1e-4 * (1 + fabs (want)), "%s", kind);
    }
    E->reset (sim, 0, n, NULL, h.buf.terminated, &h.buf);
  }
  cr_assert_gt (total_dwell, 0);
  h_fini (&h);
  E->destroy (&sim);
}

Test (news, every_reward_kind_follows_config)
{
  s_check_reward ("clicks_dwell", NULL, 0, 1, 0.5);
  ra_kv_t dw[] = { { .key = "dwell_weight", .type = RA_KV_NUM, .num = 2 } };
  s_check_reward ("clicks_dwell", dw, 1, 1, 2);
  s_check_reward ("clicks", NULL, 0, 1, 0);
  s_check_reward ("dwell", NULL, 0, 0, 1);
  ra_kv_t w[] = { { .key = "reward_weights.clicks", .type = RA_KV_NUM, .num = -0.5 },
                  { .key = "reward_weights.dwell", .type = RA_KV_NUM, .num = 0.25 } };
  s_check_reward ("weighted", w, 2, -0.5, 0.25);
}

Test (news, every_choice_model_runs)
{
  const char *models[] = { "logit", "proportional", "cascade", "position_based" };
  for (int m = 0; m < 4; m++) {
    ra_kv_t cfg[] = { { .key = "choice_model", .type = RA_KV_STR, .str = models[m] },
                      { .key = "oracle", .type = RA_KV_BOOL, .num = 1 } };
    ra_sim_t *sim = s_make (32, 4, cfg, 2, NULL);
    harness_t h;
    h_init (&h, E->spec (sim), 32);
    int fc = h_info_index (&h, "clicked");
    ra_rng_t rng;
    ra_rng_seed (&rng, 2, 0);
    int32_t act[32 * 5];
    long clicks = 0;
    E->reset (sim, 0, 32, NULL, NULL, &h.buf);
    for (int t = 0; t < 30; t++) {
      for (int i = 0; i < 32; i++)
        h_random_slate (&rng, 20, 5, act + i * 5);
      E->step (sim, 0, 32, act, &h.buf);
      for (int i = 0; i < 32 * 5; i++)
        clicks += ((uint8_t *) h.buf.info[fc])[i];
      E->reset (sim, 0, 32, NULL, h.buf.terminated, &h.buf);
    }
    cr_assert_gt (clicks, 20, "%s: %ld clicks", models[m], clicks);
    h_fini (&h);
    E->destroy (&sim);
  }
}

Test (news, render_describes_the_user_and_last_slate)
{
  ra_sim_t *sim = s_make (2, 1, NULL, 0, NULL);
  harness_t h;
  h_init (&h, E->spec (sim), 2);
  E->reset (sim, 0, 2, NULL, NULL, &h.buf);
  int32_t act[10] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 };
  E->step (sim, 0, 2, act, &h.buf);
  char buf[512];
  int n = E->render (sim, 1, buf, sizeof buf);
  cr_assert_gt (n, 0);
  cr_assert_lt (n, (int) sizeof buf);
  cr_assert_neq (strstr (buf, "time left"), NULL);
  cr_assert_neq (strstr (buf, "step 1"), NULL, "%s", buf);
  char small[8];
  cr_assert_eq (E->render (sim, 1, small, sizeof small), n);
  cr_assert_eq (strlen (small), 7u);
  h_fini (&h);
  E->destroy (&sim);
}

/* ---- shared dynamics switches (section 11) ---- */

static ra_kv_t s_bool (const char *key, bool on)
{
  return (ra_kv_t) { .key = key, .type = RA_KV_BOOL, .num = on };
}

Test (news, every_dynamics_key_is_listed_and_bad_values_name_it)
{
  ra_dynamics_t lib;
  ra_dynamics_defaults (&lib);
  ra_kv_t kv[RA_DYNAMICS_N_KEYS];
  cr_assert_eq (ra_dynamics_defaults_kv (&lib, kv, RA_DYNAMICS_N_KEYS), RA_DYNAMICS_N_KEYS);
  for (int q = 0; q < RA_DYNAMICS_N_KEYS; q++) {
    int found = 0;
    for (int c = 0; c < E->n_config_defaults; c++)
      found += strcmp (E->config_defaults[c].key, kv[q].key) == 0 && E->config_defaults[c].type == kv[q].type;
    cr_assert_eq (found, 1, "%s listed %d times in config_defaults", kv[q].key, found);
  }
  /* 11.2-11.4 ranges beyond the shared ones: the mapped and fixed keys */
  const struct { const char *key; double v; } bad[] = {
    { "dynamics.boredom_rise", 1.5 }, { "dynamics.boredom_decay", 0 }, { "dynamics.boredom_decay", 1 },
    { "dynamics.boredom_timeout", 0 }, { "dynamics.boredom_weight", -1 }, { "dynamics.budget_mean", 0.5 },
    { "dynamics.budget_spread", 0.3 }, { "dynamics.budget_step_cost", 0 }, { "dynamics.budget_refund", 0.5 },
    { "dynamics.return_delay_min", -1 }, { "dynamics.return_churn_max", 2 }, { "dynamics.return_max_sessions", 0 },
    { "drift", 2 },
  };
  for (size_t q = 0; q < sizeof bad / sizeof bad[0]; q++)
    s_expect_bad_config (bad[q].key, (ra_kv_t) { .key = bad[q].key, .type = RA_KV_NUM, .num = bad[q].v }, "range");
  ra_kv_t both[] = { { .key = "dynamics.return_delay_min", .type = RA_KV_NUM, .num = 5 },
                     { .key = "dynamics.return_delay_max", .type = RA_KV_NUM, .num = 2 } };
  ra_sim_args_t a = { .config = both, .n_config = 2, .num_envs = 1 };
  ra_sim_t *sim = NULL;
  ra_error_t err;
  cr_assert_eq (E->create (&a, &sim, &err), RA_ERR_BAD_CONFIG);
  cr_assert_neq (strstr (err.message, "dynamics.return_delay_max"), NULL, "%s", err.message);
  /* the mapped keys set the default task (11.2, 11.3) */
  ra_kv_t mapped[] = { { .key = "dynamics.boredom_rise", .type = RA_KV_NUM, .num = 0.7 },
                       { .key = "dynamics.boredom_decay", .type = RA_KV_NUM, .num = exp (-0.5) },
                       { .key = "dynamics.budget_mean", .type = RA_KV_NUM, .num = 12 } };
  sim = s_make (1, 1, mapped, 3, NULL);
  ra_news_view_t v;
  ra_news_view (sim, 0, &v);
  cr_assert_eq (v.params[RA_NEWS_P_SATIATION_RATE], 0.7);
  cr_assert_float_eq (v.params[RA_NEWS_P_SATIATION_RECOVERY], 2.0, 1e-9);
  cr_assert_eq (v.params[RA_NEWS_P_TIME_BUDGET], 12);
  E->destroy (&sim);
}

/* Random play of n envs for `steps` steps under cfg, resetting terminated envs; checks every
   observation against the declared bounds and returns totals. */
typedef struct {
  long steps, clicks, ends, theta_moved, theta_kept, sat_nonzero, budget_ends, returns, multi_session;
  int max_session;
} dyn_stats_t;

static dyn_stats_t s_dyn_run (const ra_kv_t *cfg, int n_cfg, int n, int steps)
{
  dyn_stats_t st = { 0 };
  ra_sim_t *sim = s_make (n, 21, cfg, n_cfg, NULL);
  harness_t h;
  h_init (&h, E->spec (sim), n);
  const ra_sim_spec_t *sp = h.spec;
  const int k = sp->slate_size, d = 16;
  int fc = h_info_index (&h, "clicked"), fs = h_info_index (&h, "session"), fr = h_info_index (&h, "returned");
  float *theta = calloc ((size_t) n * d, sizeof (float));
  int32_t *act = calloc ((size_t) n * k, sizeof (int32_t));
  ra_rng_t rng;
  ra_rng_seed (&rng, 4, 0);
  E->reset (sim, 0, n, NULL, NULL, &h.buf);
  for (int t = 0; t <= steps; t++) {
    for (int f = 0; f < sp->n_obs; f++) {
      double x;
      size_t bad = h_obs_first_out_of_bounds (&h, f, n, &x);
      cr_assert_eq (bad, (size_t) n * h_numel (&sp->obs[f]), "step %d field %s elem %zu = %g", t, sp->obs[f].name, bad, x);
    }
    if (t == steps)
      break;
    for (int i = 0; i < n; i++) {
      ra_news_view_t v;
      ra_news_view (sim, i, &v);
      memcpy (theta + (size_t) i * d, v.theta, d * sizeof (float));
      h_random_slate (&rng, sp->num_candidates, k, act + (size_t) i * k);
    }
    E->step (sim, 0, n, act, &h.buf);
    for (int i = 0; i < n; i++) {
      ra_news_view_t v;
      ra_news_view (sim, i, &v);
      int nc = 0;
      for (int r = 0; r < k; r++)
        nc += ((uint8_t *) h.buf.info[fc])[i * k + r];
      st.steps++;
      st.clicks += nc;
      if (nc > 0) {
        bool moved = memcmp (theta + (size_t) i * d, v.theta, d * sizeof (float)) != 0;
        st.theta_moved += moved;
        st.theta_kept += !moved;
      } else {
        CHECK (memcmp (theta + (size_t) i * d, v.theta, d * sizeof (float)) == 0, "theta moved without a click");
      }
      for (int q = 0; q < v.n_topics; q++)
        st.sat_nonzero += ra_boredom_level (v.satiation_model, &v.satiation[q], v.now) > 0;
      bool ended_by_patience = (float) v.streak >= v.user->patience;
      if (h.buf.terminated[i] && !ended_by_patience)
        st.budget_ends++;
      st.ends += h.buf.terminated[i];
      if (fs >= 0) {
        int32_t sess = ((int32_t *) h.buf.info[fs])[i];
        uint8_t ret = ((uint8_t *) h.buf.info[fr])[i];
        CHECK (sess == v.session && (!ret || !h.buf.terminated[i]), "session %d returned %d", sess, ret);
        st.returns += ret;
        st.multi_session += h.buf.terminated[i] && sess > 0;
        if (sess > st.max_session)
          st.max_session = sess;
      }
    }
    E->reset (sim, 0, n, NULL, h.buf.terminated, &h.buf);
  }
  free (theta);
  free (act);
  h_fini (&h);
  E->destroy (&sim);
  return st;
}

Test (news, drift_switch_moves_interest_toward_clicked_articles)
{
  ra_kv_t on[] = { s_bool ("dynamics.drift", true) };
  dyn_stats_t off = s_dyn_run (NULL, 0, 64, 100), dr = s_dyn_run (on, 1, 64, 100);
  cr_assert_eq (off.theta_moved, 0, "drift is off by default");
  cr_assert_gt (off.theta_kept, 500);
  cr_assert_gt (dr.theta_moved, 500);
  cr_assert_eq (dr.theta_kept, 0, "every click moves theta (rate 0.1)");
}

Test (news, boredom_switch_turns_satiation_off)
{
  ra_kv_t cfg[] = { s_bool ("dynamics.boredom", false) };
  dyn_stats_t on = s_dyn_run (NULL, 0, 128, 100), off = s_dyn_run (cfg, 1, 128, 100);
  cr_assert_gt (on.sat_nonzero, 1000);
  cr_assert_eq (off.sat_nonzero, 0, "no satiation with dynamics.boredom off");
  double ctr_on = (double) on.clicks / on.steps, ctr_off = (double) off.clicks / off.steps;
  cr_assert_gt (ctr_off, 1.1 * ctr_on, "satiation lowers clicks: %g on, %g off", ctr_on, ctr_off);
}

Test (news, time_budget_switch_leaves_only_patience_to_end_sessions)
{
  ra_kv_t cfg[] = { s_bool ("dynamics.time_budget", false) };
  dyn_stats_t on = s_dyn_run (NULL, 0, 128, 150), off = s_dyn_run (cfg, 1, 128, 150);
  cr_assert_gt (on.budget_ends, 50, "the time budget ends sessions by default (%ld)", on.budget_ends);
  cr_assert_eq (off.budget_ends, 0, "with the budget off only patience ends a session");
  cr_assert_gt (off.ends, 50);
  cr_assert_lt (off.ends, on.ends);
}

Test (news, return_switch_makes_episodes_span_sessions)
{
  ra_kv_t cfg[] = { s_bool ("dynamics.return", true),
                    { .key = "dynamics.return_max_sessions", .type = RA_KV_NUM, .num = 4 } };
  dyn_stats_t off = s_dyn_run (NULL, 0, 64, 150), on = s_dyn_run (cfg, 2, 64, 150);
  cr_assert_eq (off.returns, 0);
  cr_assert_gt (on.returns, 100, "users come back (%ld returns)", on.returns);
  cr_assert_gt (on.multi_session, 20, "episodes end after several sessions (%ld)", on.multi_session);
  cr_assert_eq (on.max_session, 3, "at most return_max_sessions sessions");
  cr_assert_lt (on.ends, off.ends);
  ra_sim_t *sim = s_make (1, 1, cfg, 2, NULL);
  const ra_sim_spec_t *sp = E->spec (sim);
  cr_assert_eq (sp->n_info, 7);
  cr_assert_str_eq (sp->info[5].name, "session");
  cr_assert_str_eq (sp->info[6].name, "returned");
  E->destroy (&sim);
}

Test (news, every_dynamics_combination_stays_inside_bounds)
{
  const char *keys[] = { "dynamics.drift", "dynamics.boredom", "dynamics.time_budget", "dynamics.return" };
  for (int m = 0; m < 16; m++) {
    ra_kv_t cfg[5];
    for (int q = 0; q < 4; q++)
      cfg[q] = s_bool (keys[q], m >> q & 1);
    cfg[4] = (ra_kv_t) { .key = "oracle", .type = RA_KV_BOOL, .num = 1 };
    s_dyn_run (cfg, 5, 16, 120);
  }
}
