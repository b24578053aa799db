/*  tests/env/test_content.c - Content-v1 against env/core/sim.h and docs/sims/content.md:
    reproducibility (seeds, batch sizes, call ranges), bounds and counters, the documented click,
    watch-time, satisfaction, budget, churn and return-delay equations, sessions per episode,
    clickbait vs quality in the long run, oracle vs random, tasks, and config errors naming their key. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "env/core/dynamics.h"
#include "env/sims/content.h"
#include "env/sims/registry.h"
#include "sim_harness.h"

/* A cheap assert for hot test loops: Criterion only sees failures. */
#define CHECK(cond, ...) do { if (!(cond)) cr_assert_fail (__VA_ARGS__); } while (0)

static const ra_sim_class_t *E = &ra_content_class;

static ra_sim_t *s_make (int n, uint64_t seed, const ra_kv_t *cfg, int n_cfg, const ra_task_t *task)
{
  return h_make (E, n, seed, cfg, n_cfg, task);
}

static double s_sig (double x)
{
  return 1.0 / (1.0 + exp (-x));
}

#define F32(h, f, i) (((float *) (h).buf.info[f])[i])
#define U8(h, f, i) (((uint8_t *) (h).buf.info[f])[i])
#define I32(h, f, i) (((int32_t *) (h).buf.info[f])[i])

Test (content, registry_finds_it_by_name)
{
  cr_assert_eq (ra_sims_find ("Content-v1", 10), E);
  cr_assert_null (ra_sims_find ("Content-v", 9));
  int n, found = 0;
  const ra_sim_class_t *const *all = ra_sims_all (&n);
  for (int i = 0; i < n; i++)
    found += all[i] == E;
  cr_assert_eq (found, 1);
}

Test (content, spec_has_the_documented_fields)
{
  ra_sim_t *sim = s_make (2, 1, NULL, 0, NULL);
  const ra_sim_spec_t *sp = E->spec (sim);
  cr_assert_eq (sp->num_candidates, 20);
  cr_assert_eq (sp->slate_size, 3);
  cr_assert_eq (sp->max_episode_steps, 200);
  cr_assert_eq (sp->n_obs, 4);
  cr_assert_str_eq (sp->obs[0].name, "user");
  cr_assert_eq (sp->obs[0].shape[0], 16 + 5);
  cr_assert_str_eq (sp->obs[1].name, "candidates");
  cr_assert_eq (sp->obs[1].shape[0], 20);
  cr_assert_eq (sp->obs[1].shape[1], 16 + 3);
  cr_assert_str_eq (sp->obs[2].name, "response");
  cr_assert_eq (sp->obs[2].shape[0], 7);
  cr_assert_str_eq (sp->obs[3].name, "item_ids");
  cr_assert_eq (sp->obs[3].dtype, RA_DTYPE_I32);
  cr_assert_eq (sp->obs[3].ndim, 1);
  cr_assert_eq (sp->obs[3].shape[0], 20);
  cr_assert_eq (sp->obs[3].low, 0);
  cr_assert_eq (sp->obs[3].high, 999);
  const char *names[] = { "item", "clicked", "watch_time", "satisfaction", "session_ended", "returned",
                          "left", "session", "time_away" };
  cr_assert_eq (sp->n_info, 9);
  for (int f = 0; f < 9; f++)
    cr_assert_str_eq (sp->info[f].name, names[f]);
  cr_assert_eq (sp->reward_range[0], 0);
  cr_assert_eq (sp->reward_range[1], RA_CONTENT_LENGTH_MAX);
  E->destroy (&sim);
  cr_assert_null (sim);
  E->destroy (&sim);
  ra_kv_t cfg[] = { { .key = "oracle", .type = RA_KV_BOOL, .num = 1 },
                    { .key = "slate_size", .type = RA_KV_NUM, .num = 1 } };
  sim = s_make (2, 1, cfg, 2, NULL);
  sp = E->spec (sim);
  cr_assert_eq (sp->n_info, 12);
  cr_assert_str_eq (sp->info[9].name, "oracle_reward");
  cr_assert_str_eq (sp->info[10].name, "regret");
  cr_assert_str_eq (sp->info[11].name, "oracle_slate");
  E->destroy (&sim);
}

Test (content, item_ids_are_the_ids_info_item_reports)
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

/* ---- reproducibility ---- */

/* env i's action stream depends only on (i, step); steps and resets split at `cut` */
static void s_run (ra_sim_t *sim, int n, int first_env, int steps, int cut, int watch, h_trace_t *tr)
{
  h_run (E, sim, n, first_env, steps, cut, watch, "session", tr);
}

Test (content, same_seed_gives_the_same_trajectory)
{
  const int steps = 400;
  ra_sim_t *a = s_make (8, 77, NULL, 0, NULL), *b = s_make (8, 77, NULL, 0, NULL), *c = s_make (8, 78, NULL, 0, NULL);
  size_t rb = h_obs_row_bytes_of (E, a);
  h_trace_t ta = h_trace_new (steps, rb), tb = h_trace_new (steps, rb), tc = h_trace_new (steps, rb);
  s_run (a, 8, 0, steps, 0, 5, &ta);
  s_run (b, 8, 0, steps, 0, 5, &tb);
  s_run (c, 8, 0, steps, 0, 5, &tc);
  cr_assert_eq (memcmp (ta.obs, tb.obs, (size_t) (steps + 1) * rb), 0);
  cr_assert_eq (memcmp (ta.reward, tb.reward, (size_t) steps * sizeof (float)), 0);
  cr_assert_eq (memcmp (ta.term, tb.term, (size_t) steps), 0);
  cr_assert_eq (memcmp (ta.info, tb.info, (size_t) steps * sizeof (int32_t)), 0);
  cr_assert_neq (memcmp (ta.obs, tc.obs, (size_t) (steps + 1) * rb), 0);
  int terms = 0, max_session = 0;
  for (int t = 0; t < steps; t++) {
    terms += ta.term[t];
    if (ta.info[t] > max_session)
      max_session = ta.info[t];
  }
  cr_assert_gt (terms, 1, "400 steps should span several episodes");
  cr_assert_gt (max_session, 1, "and episodes several sessions");
  h_trace_free (&ta);
  h_trace_free (&tb);
  h_trace_free (&tc);
  E->destroy (&a);
  E->destroy (&b);
  E->destroy (&c);
}

Test (content, env_in_a_batch_of_256_split_in_ranges_equals_it_alone)
{
  const int steps = 150;
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
    cr_assert_eq (memcmp (tb.info, to.info, (size_t) steps * sizeof (int32_t)), 0, "env %d sessions", i);
    h_trace_free (&tb);
    h_trace_free (&to);
    E->destroy (&big);
    E->destroy (&one);
  }
}

Test (content, reset_with_seeds_restarts_the_stream)
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

/* ---- bounds, flags and counters ---- */

static void s_bounds_run (const ra_kv_t *cfg, int n_cfg, const ra_task_t *task, int steps)
{
  const int n = 256;
  ra_sim_t *sim = s_make (n, 5, cfg, n_cfg, task);
  harness_t h;
  h_init (&h, E->spec (sim), n);
  const ra_sim_spec_t *sp = h.spec;
  const int k = sp->slate_size;
  int fi = h_info_index (&h, "item"), fc = h_info_index (&h, "clicked"), fw = h_info_index (&h, "watch_time");
  int fsat = h_info_index (&h, "satisfaction"), fe = h_info_index (&h, "session_ended");
  int fr = h_info_index (&h, "returned"), fl = h_info_index (&h, "left"), fs = h_info_index (&h, "session");
  int fa = h_info_index (&h, "time_away"), fg = h_info_index (&h, "regret");
  ra_rng_t rng;
  ra_rng_seed (&rng, 8, 0);
  int32_t *act = calloc ((size_t) n * k, sizeof (int32_t));
  int32_t *sess = calloc ((size_t) n, sizeof (int32_t));
  float *budget = calloc ((size_t) n, sizeof (float));
  E->reset (sim, 0, n, NULL, NULL, &h.buf);
  long clicks = 0, ends = 0, returns = 0, leaves = 0;
  for (int t = 0; t <= steps; t++) {
    for (int f = 0; f < sp->n_obs; f++) {
      double x;
      size_t m = (size_t) n * h_numel (&sp->obs[f]);
      size_t bad = h_obs_first_out_of_bounds (&h, f, n, &x);
      cr_assert_eq (bad, m, "step %d field %s elem %zu = %g", t, sp->obs[f].name, bad, x);
    }
    if (t == steps)
      break;
    for (int i = 0; i < n; i++) {
      h_random_slate (&rng, sp->num_candidates, k, act + (size_t) i * k);
      ra_content_view_t v;
      ra_content_view (sim, i, &v);
      budget[i] = v.user->budget;
      CHECK (v.user->budget > 0 && v.user->budget <= v.user->budget0 && v.user->budget0 <= RA_CONTENT_BUDGET_MAX,
             "budget %g of %g", v.user->budget, v.user->budget0);
    }
    E->step (sim, 0, n, act, &h.buf);
    for (int i = 0; i < n; i++) {
      ra_content_view_t v;
      ra_content_view (sim, i, &v);
      float r = h.buf.reward[i];
      CHECK (r >= sp->reward_range[0] && r <= sp->reward_range[1], "reward %g", r);
      float s = F32 (h, fsat, i);
      CHECK (s > 0 && s < 1 && s == v.user->satisfaction, "satisfaction %g", s);
      float watched = 0;
      int nc = 0;
      for (int q = 0; q < k; q++) {
        uint8_t c = U8 (h, fc, i * k + q);
        float w = F32 (h, fw, i * k + q);
        int j = I32 (h, fi, i * k + q);
        CHECK (c <= 1 && w >= 0 && (c || w == 0), "watch %g without click", w);
        CHECK (j >= 0 && j < 1000 && w <= v.length[j] + 1e-4f, "watch %g of a %g min video", w, v.length[j]);
        nc += c;
        watched += w;
      }
      CHECK (watched <= budget[i] + 1e-3f, "watched %g with %g left", watched, budget[i]);
      if (sp->reward_range[1] == RA_CONTENT_LENGTH_MAX)
        CHECK (nc <= 1, "%d clicks", nc);
      clicks += nc;
      uint8_t e = U8 (h, fe, i), ret = U8 (h, fr, i), left = U8 (h, fl, i);
      CHECK (h.buf.terminated[i] == left, "terminated iff left");
      CHECK (e == (ret || left) && !(ret && left), "ended %d returned %d left %d", e, ret, left);
      float away = F32 (h, fa, i);
      CHECK (ret ? away >= 0 && away <= v.params[RA_CONTENT_P_RETURN_HORIZON] : away == 0, "time away %g", away);
      CHECK (I32 (h, fs, i) == sess[i] + ret, "session %d after %d", I32 (h, fs, i), sess[i]);
      sess[i] = left ? 0 : I32 (h, fs, i);
      if (fg >= 0)
        CHECK (F32 (h, fg, i) >= 0, "regret < 0");
      ends += e;
      returns += ret;
      leaves += left;
    }
    E->reset (sim, 0, n, NULL, h.buf.terminated, &h.buf);
  }
  cr_assert_gt (clicks, 1000);
  cr_assert_gt (returns, 100);
  cr_assert_gt (leaves, 20);
  cr_assert_eq (ends, returns + leaves);
  free (act);
  free (sess);
  free (budget);
  h_fini (&h);
  E->destroy (&sim);
}

Test (content, long_random_runs_stay_inside_declared_bounds)
{
  ra_kv_t cfg[] = { { .key = "oracle", .type = RA_KV_BOOL, .num = 1 } };
  ra_task_t ood = { .split = "ood", .id = 3 };
  s_bounds_run (cfg, 1, NULL, 200);
  s_bounds_run (cfg, 1, &ood, 200);
}

Test (content, every_choice_model_runs_inside_bounds)
{
  const char *kinds[] = { "proportional", "cascade", "position_based" };
  for (int q = 0; q < 3; q++) {
    ra_kv_t cfg[] = { { .key = "oracle", .type = RA_KV_BOOL, .num = 1 },
                      { .key = "choice_model", .type = RA_KV_STR, .str = kinds[q] } };
    s_bounds_run (cfg, 2, NULL, 60);
  }
}

/* ---- golden equations ---- */

/* From the hidden state (view), recompute 4.1 click probabilities (checked in aggregate within
   5 sd) and, exactly, 5.1 watch time, 5.2 budget, 6.1-6.2 satisfaction and 3.3 drift. */
Test (content, watch_time_and_satisfaction_follow_the_documented_equations)
{
  const int n = 2048, steps = 12, K = 20, k = 3, d = 16;
  ra_sim_t *sim = s_make (n, 31, NULL, 0, NULL);
  harness_t h;
  h_init (&h, E->spec (sim), n);
  int fc = h_info_index (&h, "clicked"), fw = h_info_index (&h, "watch_time"), fe = h_info_index (&h, "session_ended");
  int fsat = h_info_index (&h, "satisfaction");
  ra_rng_t rng;
  ra_rng_seed (&rng, 4, 0);
  int32_t *act = calloc ((size_t) n * k, sizeof (int32_t)), *items = calloc ((size_t) n * k, sizeof (int32_t));
  double *pc = calloc ((size_t) n * k, sizeof (double)), *aff = calloc ((size_t) n * k, sizeof (double));
  float *theta0 = calloc ((size_t) n * d, sizeof (float));
  ra_content_user_t *u0 = calloc ((size_t) n, sizeof *u0);
  double exp_clicks[3] = { 0 }, var_clicks[3] = { 0 }, obs_clicks[3] = { 0 };
  long checked_watch = 0, checked_drift = 0;
  E->reset (sim, 0, n, NULL, NULL, &h.buf);
  for (int t = 0; t < steps; t++) {
    for (int i = 0; i < n; i++) {
      int32_t *a = act + (size_t) i * k;
      h_random_slate (&rng, K, k, a);
      ra_content_view_t v;
      ra_content_view (sim, i, &v);
      const double *p = v.params;
      double tau = p[RA_CONTENT_P_TEMPERATURE], eta = p[RA_CONTENT_P_POSITION_BIAS];
      double den = exp (p[RA_CONTENT_P_NO_CLICK] / tau), w[3];
      for (int r = 0; r < k; r++) {
        int j = v.candidates[a[r]];
        items[i * k + r] = j;
        const float *x = v.catalog->feat + (size_t) j * v.catalog->stride;
        double af = 0;
        for (int q = 0; q < d; q++)
          af += (double) v.theta[q] * x[q];
        aff[(size_t) i * k + r] = af;
        /* 4.1: v_r = (theta . x + gamma_c c) / tau, weight (1/r)^eta e^{v_r} */
        w[r] = pow (1.0 / (r + 1), eta) * exp ((af + RA_CONTENT_CLICKBAIT_ATTRACTION * v.clickbait[j]) / tau);
        den += w[r];
      }
      for (int r = 0; r < k; r++)
        pc[(size_t) i * k + r] = w[r] / den;
      memcpy (theta0 + (size_t) i * d, v.theta, (size_t) d * sizeof (float));
      u0[i] = *v.user;
    }
    E->step (sim, 0, n, act, &h.buf);
    for (int i = 0; i < n; i++) {
      ra_content_view_t v;
      ra_content_view (sim, i, &v);
      const double *p = v.params;
      double E1 = u0[i].exposure, S1 = u0[i].satisfaction, T1 = u0[i].budget, watched = 0, phi_c = 0;
      int clicked_item = -1;
      for (int r = 0; r < k; r++) {
        double pr = pc[(size_t) i * k + r];
        uint8_t c = U8 (h, fc, i * k + r);
        exp_clicks[r] += pr;
        var_clicks[r] += pr * (1 - pr);
        obs_clicks[r] += c;
        double want = 0;
        if (c) {
          int j = items[i * k + r];
          double q = v.quality[j], cb = v.clickbait[j];
          /* 5.1 phi = sigma(w0 + wa aff + wq q - wc c + ws (S - 1/2)), W = min(L phi, T) */
          double phi = s_sig (RA_CONTENT_WATCH_BIAS + RA_CONTENT_WATCH_AFFINITY * aff[(size_t) i * k + r]
                              + RA_CONTENT_WATCH_QUALITY * q - RA_CONTENT_WATCH_CLICKBAIT * cb
                              + RA_CONTENT_WATCH_SATISFACTION * (S1 - 0.5));
          want = fmin (v.length[j] * phi, T1);
          T1 -= want;
          /* 6.1 E <- m E + (q - c); 6.2 S = sigma(kappa E) */
          E1 = p[RA_CONTENT_P_MEMORY] * E1 + (q - cb);
          S1 = s_sig (p[RA_CONTENT_P_SAT_SENSITIVITY] * E1);
          watched += want;
          clicked_item = j;
          phi_c = phi;
          checked_watch++;
        }
        cr_assert_float_eq (F32 (h, fw, i * k + r), want, 1e-3 * (1 + want), "watch %g want %g",
                            F32 (h, fw, i * k + r), want);
      }
      cr_assert_float_eq (F32 (h, fsat, i), S1, 1e-4);
      cr_assert_float_eq (v.user->exposure, E1, 1e-4);
      cr_assert_float_eq (h.buf.reward[i], watched, 1e-3 * (1 + watched));
      if (!U8 (h, fe, i)) {
        /* 5.2 T <- T - W - c_b */
        cr_assert_float_eq (v.user->budget, T1 - RA_CONTENT_BROWSE_COST, 1e-3);
        /* 3.3 theta <- normalise((1 - alpha phi) theta + alpha phi x) */
        if (clicked_item >= 0) {
          double al = p[RA_CONTENT_P_DRIFT] * phi_c, nv[16], nn = 0;
          const float *x = v.catalog->feat + (size_t) clicked_item * v.catalog->stride;
          for (int q = 0; q < d; q++) {
            nv[q] = (1 - al) * theta0[(size_t) i * d + q] + al * x[q];
            nn += nv[q] * nv[q];
          }
          for (int q = 0; q < d; q++)
            cr_assert_float_eq (v.theta[q], nv[q] / sqrt (nn), 1e-5);
          checked_drift++;
        }
      } else {
        cr_assert_leq (T1 - RA_CONTENT_BROWSE_COST, 1e-4, "the session ended with %g min left", T1 - 1);
      }
    }
    E->reset (sim, 0, n, NULL, h.buf.terminated, &h.buf);
  }
  for (int r = 0; r < k; r++)
    cr_assert_lt (fabs (obs_clicks[r] - exp_clicks[r]), 5 * sqrt (var_clicks[r]) + 1,
                  "slot %d: %g clicks, expected %g (sd %g)", r, obs_clicks[r], exp_clicks[r], sqrt (var_clicks[r]));
  cr_assert_gt (checked_watch, 3000);
  cr_assert_gt (checked_drift, 2000);
  free (act);
  free (items);
  free (pc);
  free (aff);
  free (theta0);
  free (u0);
  h_fini (&h);
  E->destroy (&sim);
}

/* 7.1-7.2 at each session end: P(left) = p + (1 - p) e^{-H / mu} with p = sigma(rho0 + rho (1/2 - S))
   and mu = delay_scale e^{mu_s (1/2 - S)}; given a return, D is exponential truncated at H, so
   U = (1 - e^{-D/mu}) / (1 - e^{-H/mu}) is uniform on (0, 1). A short budget ends sessions often. */
Test (content, leaving_and_return_delays_follow_the_documented_equations)
{
  const int n = 1024, steps = 60;
  ra_kv_t cfg[] = { { .key = "time_budget", .type = RA_KV_NUM, .num = 3 } };
  ra_sim_t *sim = s_make (n, 41, cfg, 1, NULL);
  harness_t h;
  h_init (&h, E->spec (sim), n);
  int fe = h_info_index (&h, "session_ended"), fl = h_info_index (&h, "left"), fa = h_info_index (&h, "time_away");
  int fsat = h_info_index (&h, "satisfaction");
  ra_rng_t rng;
  ra_rng_seed (&rng, 6, 0);
  int32_t *act = calloc ((size_t) n * 3, sizeof (int32_t));
  double exp_left = 0, var_left = 0, obs_left = 0, sum_u = 0, n_ret = 0, min_s = 1, max_s = 0;
  E->reset (sim, 0, n, NULL, NULL, &h.buf);
  for (int t = 0; t < steps; t++) {
    for (int i = 0; i < n; i++)
      h_random_slate (&rng, 20, 3, act + (size_t) i * 3);
    E->step (sim, 0, n, act, &h.buf);
    for (int i = 0; i < n; i++) {
      if (!U8 (h, fe, i))
        continue;
      ra_content_view_t v;
      ra_content_view (sim, i, &v);
      const double *p = v.params;
      double S = F32 (h, fsat, i), gap = 0.5 - S, H = p[RA_CONTENT_P_RETURN_HORIZON];
      double pc = s_sig (RA_CONTENT_CHURN_BIAS + p[RA_CONTENT_P_CHURN_SENSITIVITY] * gap);
      double mu = p[RA_CONTENT_P_RETURN_DELAY] * exp (RA_CONTENT_DELAY_SLOPE * gap);
      double pl = pc + (1 - pc) * exp (-H / mu);
      exp_left += pl;
      var_left += pl * (1 - pl);
      obs_left += U8 (h, fl, i);
      if (!U8 (h, fl, i)) {
        sum_u += (1 - exp (-F32 (h, fa, i) / mu)) / (1 - exp (-H / mu));
        n_ret++;
      }
      min_s = fmin (min_s, S);
      max_s = fmax (max_s, S);
    }
    E->reset (sim, 0, n, NULL, h.buf.terminated, &h.buf);
  }
  cr_assert_gt (n_ret, 3000);
  cr_assert_lt (fabs (obs_left - exp_left), 5 * sqrt (var_left) + 1, "%g left, expected %g (sd %g)", obs_left,
                exp_left, sqrt (var_left));
  double mean_u = sum_u / n_ret;
  cr_assert_lt (fabs (mean_u - 0.5), 5 * sqrt (1.0 / 12 / n_ret), "mean U %g over %g returns", mean_u, n_ret);
  cr_assert_lt (min_s, 0.4);
  cr_assert_gt (max_s, 0.6);
  free (act);
  h_fini (&h);
  E->destroy (&sim);
}

/* ---- long-term behaviour ---- */

typedef enum { POL_RANDOM, POL_CLICKBAIT, POL_QUALITY, POL_ORACLE } policy_t;

typedef struct {
  double reward_per_step;
  double satisfaction;       /* mean over steps */
  double return_rate;        /* returns / session ends */
  double sessions_per_episode;
  double episode_len;
} stats_t;

/* Top-k candidates by public feature column col (descending). */
static void s_top_by (const float *cands, int K, int f, int col, int k, int32_t *out)
{
  for (int r = 0; r < k; r++) {
    int best = -1;
    for (int j = 0; j < K; j++) {
      bool used = false;
      for (int q = 0; q < r; q++)
        used |= out[q] == j;
      if (!used && (best < 0 || cands[j * f + col] > cands[best * f + col]))
        best = j;
    }
    out[r] = best;
  }
}

static stats_t s_play (policy_t pol, const ra_task_t *task, int n, int steps, uint64_t seed)
{
  ra_kv_t cfg[] = { { .key = "oracle", .type = RA_KV_BOOL, .num = 1 } };
  ra_sim_t *sim = s_make (n, seed, cfg, 1, task);
  harness_t h;
  h_init (&h, E->spec (sim), n);
  const int K = h.spec->num_candidates, k = h.spec->slate_size, f = (int) h.spec->obs[1].shape[1], d = f - 3;
  int fs = h_info_index (&h, "oracle_slate"), fsat = h_info_index (&h, "satisfaction");
  int fe = h_info_index (&h, "session_ended"), fr = h_info_index (&h, "returned");
  uint8_t *fresh = calloc ((size_t) n, 1);
  int32_t *act = calloc ((size_t) n * k, sizeof (int32_t));
  ra_rng_t rng;
  ra_rng_seed (&rng, 3, 0);
  E->reset (sim, 0, n, NULL, NULL, &h.buf);
  memset (fresh, 1, (size_t) n);
  double total = 0, sat = 0, ends = 0, rets = 0, eps = 0;
  for (int t = 0; t < steps; t++) {
    for (int i = 0; i < n; i++) {
      int32_t *a = act + (size_t) i * k;
      const float *cands = (const float *) h.buf.obs[1] + (size_t) i * K * f;
      if (pol == POL_ORACLE && !fresh[i])
        memcpy (a, (int32_t *) h.buf.info[fs] + (size_t) i * k, (size_t) k * sizeof (int32_t));
      else if (pol == POL_CLICKBAIT)
        s_top_by (cands, K, f, d + 1, k, a);
      else if (pol == POL_QUALITY)
        s_top_by (cands, K, f, d + 2, k, a);
      else
        h_random_slate (&rng, K, k, a);
    }
    E->step (sim, 0, n, act, &h.buf);
    for (int i = 0; i < n; i++) {
      total += h.buf.reward[i];
      sat += F32 (h, fsat, i);
      ends += U8 (h, fe, i);
      rets += U8 (h, fr, i);
      eps += h.buf.terminated[i];
      fresh[i] = h.buf.terminated[i];
    }
    E->reset (sim, 0, n, NULL, h.buf.terminated, &h.buf);
  }
  stats_t st = { total / ((double) n * steps), sat / ((double) n * steps), rets / (ends > 0 ? ends : 1),
                 ends / (eps > 0 ? eps : 1), (double) n * steps / (eps > 0 ? eps : 1) };
  free (fresh);
  free (act);
  h_fini (&h);
  E->destroy (&sim);
  return st;
}

Test (content, episodes_span_several_sessions)
{
  stats_t r = s_play (POL_RANDOM, NULL, 256, 300, 21);
  cr_assert_gt (r.sessions_per_episode, 3, "sessions per episode %g", r.sessions_per_episode);
  cr_assert_gt (r.return_rate, 0.6, "return rate %g", r.return_rate);
  /* the obs says so: the response's last entry flags a return, the user row counts sessions */
  ra_sim_t *sim = s_make (1, 5, NULL, 0, NULL);
  harness_t h;
  h_init (&h, E->spec (sim), 1);
  int fr = h_info_index (&h, "returned");
  E->reset (sim, 0, 1, NULL, NULL, &h.buf);
  int32_t a[3] = { 0, 1, 2 };
  bool seen = false;
  for (int t = 0; t < 300 && !seen; t++) {
    E->step (sim, 0, 1, a, &h.buf);
    if (U8 (h, fr, 0)) {
      const float *u = h.buf.obs[0], *resp = h.buf.obs[2];
      cr_assert_eq (resp[6], 1.0f);
      cr_assert_gt (u[16 + 1], 0, "session feature");
      cr_assert_gt (u[16 + 2], 0, "time-away feature");
      cr_assert_eq (u[16], 1.0f, "a fresh budget");
      seen = true;
    }
    E->reset (sim, 0, 1, NULL, h.buf.terminated, &h.buf);
  }
  cr_assert (seen);
  h_fini (&h);
  E->destroy (&sim);
}

Test (content, clickbait_policy_loses_long_term_to_a_quality_policy)
{
  stats_t cb = s_play (POL_CLICKBAIT, NULL, 256, 300, 22), q = s_play (POL_QUALITY, NULL, 256, 300, 22);
  cr_assert_lt (cb.satisfaction, q.satisfaction - 0.3, "satisfaction clickbait %g quality %g", cb.satisfaction,
                q.satisfaction);
  cr_assert_lt (cb.return_rate, q.return_rate - 0.15, "return rate clickbait %g quality %g", cb.return_rate,
                q.return_rate);
  cr_assert_lt (cb.sessions_per_episode, 0.5 * q.sessions_per_episode, "sessions clickbait %g quality %g",
                cb.sessions_per_episode, q.sessions_per_episode);
}

Test (content, oracle_beats_random_and_the_margin_depends_on_the_task)
{
  ra_task_t train = { .split = "train", .id = 4 }, ood = { .split = "ood", .id = 4 };
  stats_t o0 = s_play (POL_ORACLE, NULL, 256, 60, 12), r0 = s_play (POL_RANDOM, NULL, 256, 60, 12);
  stats_t o1 = s_play (POL_ORACLE, &train, 256, 60, 12), r1 = s_play (POL_RANDOM, &train, 256, 60, 12);
  stats_t o2 = s_play (POL_ORACLE, &ood, 256, 60, 12), r2 = s_play (POL_RANDOM, &ood, 256, 60, 12);
  cr_assert_gt (o0.reward_per_step, 1.3 * r0.reward_per_step, "default: oracle %g random %g", o0.reward_per_step,
                r0.reward_per_step);
  cr_assert_gt (o1.reward_per_step, 1.3 * r1.reward_per_step, "train/4: oracle %g random %g", o1.reward_per_step,
                r1.reward_per_step);
  cr_assert_gt (o2.reward_per_step, 1.3 * r2.reward_per_step, "ood/4: oracle %g random %g", o2.reward_per_step,
                r2.reward_per_step);
  /* the margin in minutes watched per step (measured: default 2.4, train/4 1.3, ood/4 0.7) */
  double m[3] = { o0.reward_per_step - r0.reward_per_step, o1.reward_per_step - r1.reward_per_step,
                  o2.reward_per_step - r2.reward_per_step };
  double lo = fmin (m[0], fmin (m[1], m[2])), hi = fmax (m[0], fmax (m[1], m[2]));
  cr_assert_gt (hi, 2 * lo, "the oracle's edge differs across tasks: default %g, train/4 %g, ood/4 %g", m[0],
                m[1], m[2]);
}

Test (content, ood_tasks_differ_measurably_from_train_tasks)
{
  double w_train = 0, w_ood = 0, s_train = 0, s_ood = 0;
  for (int id = 0; id < 3; id++) {
    ra_task_t tr = { .split = "train", .id = id }, od = { .split = "ood", .id = id };
    stats_t a = s_play (POL_RANDOM, &tr, 128, 100, 2), b = s_play (POL_RANDOM, &od, 128, 100, 2);
    w_train += a.reward_per_step / 3;
    w_ood += b.reward_per_step / 3;
    s_train += a.sessions_per_episode / 3;
    s_ood += b.sessions_per_episode / 3;
  }
  /* ood: more clickbait, pickier users, shorter budgets, longer and riskier absences */
  cr_assert_lt (s_ood, 0.7 * s_train, "sessions per episode train %g ood %g", s_train, s_ood);
  cr_assert_neq (w_ood < 0.8 * w_train || w_ood > 1.25 * w_train, 0, "watch/step train %g ood %g", w_train, w_ood);
}

/* ---- tasks and config ---- */

Test (content, tasks_are_deterministic_and_set_task_applies_at_next_reset)
{
  ra_sim_t *sim = s_make (4, 1, NULL, 0, NULL);
  harness_t h;
  h_init (&h, E->spec (sim), 4);
  ra_kv_t a[24], b[24];
  ra_error_t err;
  E->reset (sim, 0, 4, NULL, NULL, &h.buf);
  ra_task_t t = { .split = "val", .id = 17 };
  uint8_t mask[4] = { 0, 1, 0, 1 };
  cr_assert_eq (E->set_task (sim, &t, mask, &err), RA_OK);
  int na = E->describe_task (sim, 1, a, 24);
  cr_assert_eq (na, 2 + RA_CONTENT_P_COUNT);
  cr_assert_str_eq (a[0].str, "val");
  ra_content_view_t v0, v1;
  ra_content_view (sim, 0, &v0);
  ra_content_view (sim, 1, &v1);
  cr_assert_eq (v0.clickbait, v1.clickbait, "not yet applied");
  E->reset (sim, 0, 4, NULL, NULL, &h.buf);
  ra_content_view (sim, 1, &v1);
  cr_assert_neq (v0.clickbait, v1.clickbait);
  ra_sim_t *other = s_make (3, 9, NULL, 0, &t);
  int nb = E->describe_task (other, 2, b, 24);
  cr_assert_eq (na, nb);
  for (int q = 2; q < na; q++)
    cr_assert_eq (a[q].num, b[q].num, "%s", a[q].key);
  ra_content_view_t w;
  ra_content_view (other, 0, &w);
  cr_assert_eq (memcmp (w.clickbait, v1.clickbait, 1000 * sizeof (float)), 0);
  cr_assert_eq (memcmp (w.length, v1.length, 1000 * sizeof (float)), 0);
  ra_task_t u = { .split = "test", .id = 17 };
  cr_assert_eq (E->set_task (other, &u, NULL, &err), RA_OK);
  E->describe_task (other, 0, b, 24);
  int same = 0;
  for (int q = 2; q < na; q++)
    same += a[q].num == b[q].num;
  cr_assert_lt (same, 2, "val/17 and test/17 share %d parameters", same);
  ra_task_t bad = { .split = "nope", .id = 0 };
  cr_assert_eq (E->set_task (sim, &bad, NULL, &err), RA_ERR_BAD_CONFIG);
  E->describe_task (sim, 1, a, 24);
  cr_assert_str_eq (a[0].str, "val");
  h_fini (&h);
  E->destroy (&other);
  E->destroy (&sim);
}

Test (content, params_and_config_override_the_default_task)
{
  ra_kv_t p[] = { { .key = "clickbait_prevalence", .type = RA_KV_NUM, .num = 0.9 } };
  ra_task_t t = { .params = p, .n_params = 1 };
  ra_sim_t *sim = s_make (1, 1, NULL, 0, &t);
  ra_content_view_t v;
  ra_content_view (sim, 0, &v);
  cr_assert_eq (v.params[RA_CONTENT_P_CLICKBAIT_PREVALENCE], 0.9);
  int bait = 0;
  for (int j = 0; j < 1000; j++)
    bait += v.clickbait[j] >= 0.6f;
  cr_assert (bait > 850 && bait < 950, "%d clickbait videos of 1000 at prevalence 0.9", bait);
  E->destroy (&sim);
  ra_kv_t cfg[] = { { .key = "time_budget", .type = RA_KV_NUM, .num = 12 } };
  sim = s_make (1, 1, cfg, 1, NULL);
  ra_content_view (sim, 0, &v);
  cr_assert_eq (v.params[RA_CONTENT_P_TIME_BUDGET], 12);
  E->destroy (&sim);
}

static void s_expect_bad_config (const char *key, ra_kv_t bad, const char *why)
{
  h_expect_bad_config (E, key, bad, why);
}

Test (content, every_bad_config_key_is_bad_config_naming_it)
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
  s_expect_bad_config ("reward", (ra_kv_t) { .key = "reward", .type = RA_KV_STR, .str = "revenue" }, "not a content reward");
  ra_kv_t task_bad[] = { { .key = "return_horizon", .type = RA_KV_NUM, .num = 500 } };
  ra_task_t t = { .params = task_bad, .n_params = 1 };
  a = (ra_sim_args_t) { .task = &t, .num_envs = 1 };
  cr_assert_eq (E->create (&a, &sim, &err), RA_ERR_BAD_CONFIG);
  cr_assert_neq (strstr (err.message, "return_horizon"), NULL, "%s", err.message);
  a = (ra_sim_args_t) { .num_envs = 0 };
  cr_assert_eq (E->create (&a, &sim, &err), RA_ERR_BAD_CONFIG);
}

Test (content, weighted_reward_follows_config)
{
  ra_kv_t cfg[] = { { .key = "reward", .type = RA_KV_STR, .str = "weighted" },
                    { .key = "reward_weights.clicks", .type = RA_KV_NUM, .num = 0.5 },
                    { .key = "reward_weights.watch_time", .type = RA_KV_NUM, .num = 0.1 },
                    { .key = "reward_weights.returned", .type = RA_KV_NUM, .num = 2 },
                    { .key = "reward_weights.left", .type = RA_KV_NUM, .num = -10 } };
  const int n = 64;
  ra_sim_t *sim = s_make (n, 3, cfg, 5, NULL);
  harness_t h;
  h_init (&h, E->spec (sim), n);
  cr_assert_eq (h.spec->reward_range[0], -10);
  int fc = h_info_index (&h, "clicked"), fw = h_info_index (&h, "watch_time");
  int fr = h_info_index (&h, "returned"), fl = h_info_index (&h, "left");
  ra_rng_t rng;
  ra_rng_seed (&rng, 1, 0);
  int32_t act[64 * 3];
  E->reset (sim, 0, n, NULL, NULL, &h.buf);
  int rets = 0;
  for (int t = 0; t < 60; t++) {
    for (int i = 0; i < n; i++)
      h_random_slate (&rng, 20, 3, act + i * 3);
    E->step (sim, 0, n, act, &h.buf);
    for (int i = 0; i < n; i++) {
      double want = 2.0 * U8 (h, fr, i) - 10.0 * U8 (h, fl, i);
      for (int r = 0; r < 3; r++)
        want += 0.5 * U8 (h, fc, i * 3 + r) + 0.1 * F32 (h, fw, i * 3 + r);
      cr_assert_float_eq (h.buf.reward[i], want, 1e-4);
      rets += U8 (h, fr, i);
    }
    E->reset (sim, 0, n, NULL, h.buf.terminated, &h.buf);
  }
  cr_assert_gt (rets, 10);
  h_fini (&h);
  E->destroy (&sim);
}

Test (content, render_describes_the_user_and_last_slate)
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
  cr_assert_neq (strstr (buf, "satisfaction"), NULL);
  cr_assert_neq (strstr (buf, "step 1"), NULL, "%s", buf);
  char small[8];
  cr_assert_eq (E->render (sim, 1, small, sizeof small), n);
  cr_assert_eq (strlen (small), 7u);
  h_fini (&h);
  E->destroy (&sim);
}

/* ---- shared dynamics switches (section 12) ---- */

static ra_kv_t s_bool (const char *key, bool on)
{
  return (ra_kv_t) { .key = key, .type = RA_KV_BOOL, .num = on };
}

Test (content, every_dynamics_key_is_listed_and_bad_values_name_it)
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
  const struct { const char *key; double v; } bad[] = {
    { "dynamics.boredom_rise", 1.5 }, { "dynamics.boredom_decay", 0 }, { "dynamics.boredom_timeout", 0 },
    { "dynamics.boredom_weight", -1 }, { "dynamics.budget_mean", 700 }, { "dynamics.budget_spread", 0.5 },
    { "dynamics.budget_step_cost", 0 }, { "dynamics.budget_refund", 0.5 }, { "dynamics.return_delay_min", -1 },
    { "dynamics.return_churn_max", 2 }, { "dynamics.return_max_sessions", 0 },
  };
  for (size_t q = 0; q < sizeof bad / sizeof bad[0]; q++)
    s_expect_bad_config (bad[q].key, (ra_kv_t) { .key = bad[q].key, .type = RA_KV_NUM, .num = bad[q].v }, "range");
  ra_kv_t mapped[] = { { .key = "dynamics.budget_mean", .type = RA_KV_NUM, .num = 12 } };
  ra_sim_t *sim = s_make (1, 1, mapped, 1, NULL);
  ra_content_view_t v;
  ra_content_view (sim, 0, &v);
  cr_assert_eq (v.params[RA_CONTENT_P_TIME_BUDGET], 12);
  E->destroy (&sim);
}

typedef struct {
  long steps, clicks, ends, returns, theta_moved, theta_kept, budget_spent, patience_ends, other_ends;
  int max_session;
} dyn_stats_t;

/* Random play of n envs for `steps` steps under cfg (resetting terminated envs); checks every
   observation against the declared bounds and the session and termination flags. */
static dyn_stats_t s_dyn_run (const ra_kv_t *cfg, int n_cfg, int n, int steps)
{
  dyn_stats_t st = { 0 };
  ra_sim_t *sim = s_make (n, 21, cfg, n_cfg, NULL);
  harness_t h;
  h_init (&h, E->spec (sim), n);
  const ra_sim_spec_t *sp = h.spec;
  const int k = sp->slate_size, d = 16;
  int fc = h_info_index (&h, "clicked"), fe = h_info_index (&h, "session_ended");
  int fr = h_info_index (&h, "returned"), fl = h_info_index (&h, "left"), fs = h_info_index (&h, "session");
  float *theta = calloc ((size_t) n * d, sizeof (float));
  int *streak = calloc ((size_t) n, sizeof (int));
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
      ra_content_view_t v;
      ra_content_view (sim, i, &v);
      memcpy (theta + (size_t) i * d, v.theta, d * sizeof (float));
      h_random_slate (&rng, sp->num_candidates, k, act + (size_t) i * k);
    }
    E->step (sim, 0, n, act, &h.buf);
    for (int i = 0; i < n; i++) {
      ra_content_view_t v;
      ra_content_view (sim, i, &v);
      int nc = 0;
      for (int r = 0; r < k; r++)
        nc += U8 (h, fc, i * k + r);
      st.steps++;
      st.clicks += nc;
      if (nc > 0) {
        bool moved = memcmp (theta + (size_t) i * d, v.theta, d * sizeof (float)) != 0;
        st.theta_moved += moved;
        st.theta_kept += !moved;
      } else {
        CHECK (memcmp (theta + (size_t) i * d, v.theta, d * sizeof (float)) == 0, "theta moved without a click");
      }
      st.budget_spent += v.user->budget != v.user->budget0;
      streak[i] = nc > 0 ? 0 : streak[i] + 1;
      uint8_t e = U8 (h, fe, i), ret = U8 (h, fr, i), left = U8 (h, fl, i);
      CHECK (h.buf.terminated[i] == left && e == (ret || left) && !(ret && left), "ended %d returned %d left %d", e, ret, left);
      if (e) {
        st.patience_ends += streak[i] >= RA_CONTENT_PATIENCE;
        st.other_ends += streak[i] < RA_CONTENT_PATIENCE;
        streak[i] = 0;
      }
      st.ends += e;
      st.returns += ret;
      if (I32 (h, fs, i) > st.max_session)
        st.max_session = I32 (h, fs, i);
    }
    E->reset (sim, 0, n, NULL, h.buf.terminated, &h.buf);
    for (int i = 0; i < n; i++)
      if (h.buf.terminated[i])
        streak[i] = 0;
  }
  free (theta);
  free (streak);
  free (act);
  h_fini (&h);
  E->destroy (&sim);
  return st;
}

Test (content, drift_switch_fixes_interest_when_off)
{
  ra_kv_t cfg[] = { s_bool ("dynamics.drift", false) };
  dyn_stats_t on = s_dyn_run (NULL, 0, 64, 100), off = s_dyn_run (cfg, 1, 64, 100);
  cr_assert_gt (on.theta_moved, 500, "3.3 drift is on by default");
  cr_assert_eq (off.theta_moved, 0, "no drift with dynamics.drift off");
  cr_assert_gt (off.theta_kept, 500);
}

Test (content, boredom_switch_lowers_clicks_on_consumed_topics)
{
  ra_kv_t cfg[] = { s_bool ("dynamics.boredom", true), { .key = "dynamics.boredom_weight", .type = RA_KV_NUM, .num = 4 } };
  dyn_stats_t off = s_dyn_run (NULL, 0, 128, 100), on = s_dyn_run (cfg, 2, 128, 100);
  double ctr_off = (double) off.clicks / off.steps, ctr_on = (double) on.clicks / on.steps;
  cr_assert_lt (ctr_on, 0.95 * ctr_off, "boredom lowers clicks: %g on, %g off", ctr_on, ctr_off);
}

Test (content, time_budget_switch_ends_sessions_by_patience_instead)
{
  ra_kv_t cfg[] = { s_bool ("dynamics.time_budget", false) };
  dyn_stats_t on = s_dyn_run (NULL, 0, 128, 150), off = s_dyn_run (cfg, 1, 128, 150);
  cr_assert_gt (on.budget_spent, 1000);
  cr_assert_gt (on.other_ends, 50, "the budget ends sessions after clicks too (%ld)", on.other_ends);
  cr_assert_eq (off.budget_spent, 0, "no budget is spent with dynamics.time_budget off");
  cr_assert_eq (off.other_ends, 0, "only %d slates without a click end a session", RA_CONTENT_PATIENCE);
  cr_assert_gt (off.patience_ends, 50);
}

Test (content, return_switch_off_ends_the_episode_at_the_first_session_end)
{
  ra_kv_t cfg[] = { s_bool ("dynamics.return", false) };
  dyn_stats_t on = s_dyn_run (NULL, 0, 64, 150), off = s_dyn_run (cfg, 1, 64, 150);
  cr_assert_gt (on.returns, 100);
  cr_assert_gt (on.max_session, 2);
  cr_assert_eq (off.returns, 0);
  cr_assert_eq (off.max_session, 0, "every episode is one session");
  cr_assert_gt (off.ends, 100);
}

Test (content, every_dynamics_combination_stays_inside_bounds)
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
