/*  tests/env/test_choice.c - env/core/choice: the logit's probabilities follow the documented
    formula (docs/sims/ecommerce.md 4.1), sampling matches them, and the oracle slate is the
    exact optimum (brute force over every ordered slate). */
#include <criterion/criterion.h>
#include <math.h>

#include "env/core/choice.h"

Test (choice, probabilities_follow_formula_and_sum_to_one)
{
  ra_rng_t rng;
  ra_rng_seed (&rng, 5, 0);
  for (int trial = 0; trial < 200; trial++) {
    int k = 1 + (int) ra_rng_below (&rng, 6);
    double eta = 3 * ra_rng_uniform_f64 (&rng), v0 = 4 * ra_rng_uniform_f64 (&rng) - 2;
    ra_choice_t c;
    ra_choice_init (&c, RA_CHOICE_LOGIT, k, eta, v0);
    float v[RA_CHOICE_MAX_SLATE], p[RA_CHOICE_MAX_SLATE];
    for (int r = 0; r < k; r++)
      v[r] = (float) (6 * ra_rng_uniform_f64 (&rng) - 3);
    float p0 = ra_choice_probs (&c, v, p);
    /* 4.1 in double: P(r) = (1/r)^eta e^{v_r} / (e^{v0} + sum_s (1/s)^eta e^{v_s}) */
    double den = exp (v0);
    for (int r = 0; r < k; r++)
      den += pow (1.0 / (r + 1), eta) * exp (v[r]);
    double sum = p0;
    cr_assert_float_eq (p0, exp (v0) / den, 1e-5);
    for (int r = 0; r < k; r++) {
      cr_assert (p[r] >= 0 && p[r] <= 1);
      cr_assert_float_eq (p[r], pow (1.0 / (r + 1), eta) * exp (v[r]) / den, 1e-5);
      sum += p[r];
    }
    cr_assert_float_eq (sum, 1.0, 1e-5);
  }
}

Test (choice, sampling_frequencies_match_probabilities)
{
  ra_choice_t c;
  ra_choice_init (&c, RA_CHOICE_LOGIT, 4, 1.0, 0.5);
  float v[4] = { 1.0f, 0.2f, -0.5f, 1.5f }, p[4];
  float p0 = ra_choice_probs (&c, v, p);
  ra_rng_t rng;
  ra_rng_seed (&rng, 11, 0);
  const int n = 100000;
  int count[5] = { 0 };
  for (int i = 0; i < n; i++) {
    uint8_t clicked[4];
    int m = ra_choice_sample (&c, v, &rng, clicked);
    cr_assert (m == 0 || m == 1);
    int slot = 4;
    for (int r = 0; r < 4; r++)
      if (clicked[r])
        slot = r;
    count[slot]++;
  }
  for (int r = 0; r < 5; r++) {
    double q = r < 4 ? p[r] : p0;
    double sd = sqrt (q * (1 - q) / n);   /* 5 sd tolerance */
    cr_assert_lt (fabs (count[r] / (double) n - q), 5 * sd, "slot %d: %d draws, p %f", r, count[r], q);
  }
}

static double s_value (const ra_choice_t *c, const float *a, const float *g, const int *s)
{
  double num = 0, den = c->no_click_weight;
  for (int r = 0; r < c->k; r++) {
    num += c->examine[r] * a[s[r]] * g[s[r]];
    den += c->examine[r] * a[s[r]];
  }
  return num / den;
}

Test (choice, best_slate_is_the_brute_force_optimum)
{
  ra_rng_t rng;
  ra_rng_seed (&rng, 21, 0);
  for (int trial = 0; trial < 300; trial++) {
    int n = 3 + (int) ra_rng_below (&rng, 6), k = 1 + (int) ra_rng_below (&rng, 3);
    if (k > n)
      k = n;
    ra_choice_t c;
    ra_choice_init (&c, RA_CHOICE_LOGIT, k, 2 * ra_rng_uniform_f64 (&rng), 2 * ra_rng_uniform_f64 (&rng) - 1);
    float a[8], g[8];
    for (int j = 0; j < n; j++) {
      a[j] = expf ((float) (4 * ra_rng_uniform_f64 (&rng) - 2));
      g[j] = (float) (trial % 3 == 0 ? 2 * ra_rng_uniform_f64 (&rng) - 0.5 : 50 * ra_rng_uniform_f64 (&rng));
    }
    int32_t slate[RA_CHOICE_MAX_SLATE];
    float got = ra_choice_best_slate (&c, a, g, n, slate);
    for (int r = 0; r < k; r++)
      for (int q = 0; q < r; q++)
        cr_assert_neq (slate[r], slate[q]);
    int s[3];
    double best = -INFINITY;
    for (s[0] = 0; s[0] < n; s[0]++)
      for (s[1] = 0; s[1] < (k > 1 ? n : 1); s[1]++)
        for (s[2] = 0; s[2] < (k > 2 ? n : 1); s[2]++) {
          if ((k > 1 && s[1] == s[0]) || (k > 2 && (s[2] == s[0] || s[2] == s[1])))
            continue;
          double v = s_value (&c, a, g, s);
          if (v > best)
            best = v;
        }
    int ss[3] = { slate[0], k > 1 ? slate[1] : 0, k > 2 ? slate[2] : 0 };
    cr_assert_float_eq (got, best, 1e-4 * (1 + fabs (best)), "trial %d: got %f, best %f", trial, got, best);
    cr_assert_float_eq (s_value (&c, a, g, ss), best, 1e-4 * (1 + fabs (best)));
  }
}

/* ---- every kind (docs/sims/shared.md section 1) ---- */

static double s_sig (double x)
{
  return 1 / (1 + exp (-x));
}

/* Marginals and P(no click) of each kind, in double, straight from the equations of 1.1. */
static double s_ref_probs (ra_choice_kind_t kind, int k, double eta, double v0, double cont,
                           const float *v, double *p)
{
  double none = 1;
  if (kind == RA_CHOICE_LOGIT || kind == RA_CHOICE_PROPORTIONAL) {
    double w0 = kind == RA_CHOICE_LOGIT ? exp (v0) : fmax (v0, 0), den = w0;
    for (int r = 0; r < k; r++) {
      p[r] = pow (1.0 / (r + 1), eta) * (kind == RA_CHOICE_LOGIT ? exp (v[r]) : fmax (v[r], 0));
      den += p[r];
    }
    if (den <= 0) {
      for (int r = 0; r < k; r++)
        p[r] = 0;
      return 1;
    }
    for (int r = 0; r < k; r++)
      p[r] /= den;
    return w0 / den;
  }
  if (kind == RA_CHOICE_CASCADE) {
    double e = 1;
    for (int r = 0; r < k; r++) {
      double a = s_sig (v[r] - v0);
      p[r] = e * a;
      e *= a * cont + (1 - a);
      none *= 1 - a;
    }
    return none;
  }
  for (int r = 0; r < k; r++) {
    p[r] = pow (1.0 / (r + 1), eta) * s_sig (v[r] - v0);
    none *= 1 - p[r];
  }
  return none;
}

Test (choice, every_kind_has_a_config_name)
{
  cr_assert_str_eq (ra_choice_names[RA_CHOICE_LOGIT], "logit");
  cr_assert_str_eq (ra_choice_names[RA_CHOICE_PROPORTIONAL], "proportional");
  cr_assert_str_eq (ra_choice_names[RA_CHOICE_CASCADE], "cascade");
  cr_assert_str_eq (ra_choice_names[RA_CHOICE_POSITION_BASED], "position_based");
}

Test (choice, every_kind_gives_marginals_in_range_matching_the_formulas)
{
  ra_rng_t rng;
  ra_rng_seed (&rng, 7, 0);
  for (int kind = 0; kind < RA_CHOICE_COUNT; kind++)
    for (int trial = 0; trial < 300; trial++) {
      int k = 1 + (int) ra_rng_below (&rng, 8);
      double eta = 3 * ra_rng_uniform_f64 (&rng), v0 = 4 * ra_rng_uniform_f64 (&rng) - 2;
      double cont = ra_rng_uniform_f64 (&rng);
      ra_choice_t c;
      ra_choice_init (&c, (ra_choice_kind_t) kind, k, eta, v0);
      ra_choice_set_continue (&c, cont);
      float v[RA_CHOICE_MAX_SLATE], p[RA_CHOICE_MAX_SLATE], g[RA_CHOICE_MAX_SLATE];
      double ref[RA_CHOICE_MAX_SLATE];
      for (int r = 0; r < k; r++) {
        v[r] = (float) (6 * ra_rng_uniform_f64 (&rng) - 3);
        g[r] = (float) (10 * ra_rng_uniform_f64 (&rng) - 2);
      }
      float p0 = ra_choice_probs (&c, v, p);
      double r0 = s_ref_probs ((ra_choice_kind_t) kind, k, eta, v0, cont, v, ref);
      cr_assert_float_eq (p0, r0, 1e-5, "%s k %d: P(none) %f, expected %f", ra_choice_names[kind], k, p0, r0);
      cr_assert (p0 >= 0 && p0 <= 1);
      double sum = 0, ex = 0;
      for (int r = 0; r < k; r++) {
        cr_assert (p[r] >= 0 && p[r] <= 1, "%s slot %d: %f", ra_choice_names[kind], r, p[r]);
        cr_assert_float_eq (p[r], ref[r], 1e-5, "%s slot %d: %f, expected %f", ra_choice_names[kind], r, p[r], ref[r]);
        sum += p[r];
        ex += ref[r] * g[r];
      }
      if (kind == RA_CHOICE_LOGIT || kind == RA_CHOICE_PROPORTIONAL)
        cr_assert_float_eq (sum + p0, 1.0, 1e-5);   /* one click at most */
      else   /* P(at least one click) <= expected clicks <= k */
        cr_assert (sum >= 1 - p0 - 1e-5 && sum <= k + 1e-5);
      cr_assert_float_eq (ra_choice_expected (&c, v, g), ex, 1e-4 * (1 + fabs (ex)));
    }
}

/* Empirical per-slot click frequencies, P(no click) and mean click count over n draws, each
   within 5 standard deviations of the formulas. */
static void s_check_sampling (ra_choice_kind_t kind, double eta, double v0, double cont)
{
  enum { K = 5 };
  ra_choice_t c;
  ra_choice_init (&c, kind, K, eta, v0);
  ra_choice_set_continue (&c, cont);
  float v[K] = { 1.0f, 0.2f, -0.5f, 1.5f, 0.7f }, p[K];
  float p0 = ra_choice_probs (&c, v, p);
  ra_rng_t rng;
  ra_rng_seed (&rng, 11 + (uint64_t) kind, 0);
  const int n = 100000;
  int count[K] = { 0 }, none = 0;
  for (int i = 0; i < n; i++) {
    uint8_t clicked[K];
    int m = ra_choice_sample (&c, v, &rng, clicked), got = 0;
    for (int r = 0; r < K; r++) {
      cr_assert (clicked[r] <= 1);
      count[r] += clicked[r];
      got += clicked[r];
    }
    cr_assert_eq (m, got);
    if (kind == RA_CHOICE_LOGIT || kind == RA_CHOICE_PROPORTIONAL)
      cr_assert (m <= 1);
    none += m == 0;
  }
  for (int r = 0; r <= K; r++) {
    double q = r < K ? p[r] : p0, f = (r < K ? count[r] : none) / (double) n;
    double sd = sqrt (q * (1 - q) / n) + 1e-9;
    cr_assert_lt (fabs (f - q), 5 * sd, "%s slot %d: frequency %f, p %f", ra_choice_names[kind], r, f, q);
  }
}

Test (choice, sampling_frequencies_match_marginals_for_every_kind)
{
  s_check_sampling (RA_CHOICE_LOGIT, 1.0, 0.5, 0.5);
  s_check_sampling (RA_CHOICE_PROPORTIONAL, 1.0, 0.5, 0.5);
  s_check_sampling (RA_CHOICE_CASCADE, 0.0, 0.3, 0.4);
  s_check_sampling (RA_CHOICE_CASCADE, 0.0, -1.0, 1.0);
  s_check_sampling (RA_CHOICE_POSITION_BASED, 1.0, 0.0, 0.5);
}

Test (choice, cascade_without_continuation_clicks_at_most_once)
{
  ra_choice_t c;
  ra_choice_init (&c, RA_CHOICE_CASCADE, 4, 0, -2);
  ra_choice_set_continue (&c, 0);
  float v[4] = { 0, 0, 0, 0 }, p[4];
  float p0 = ra_choice_probs (&c, v, p);
  double sum = p0;
  for (int r = 0; r < 4; r++)
    sum += p[r];
  cr_assert_float_eq (sum, 1.0, 1e-5);
  ra_rng_t rng;
  ra_rng_seed (&rng, 3, 0);
  for (int i = 0; i < 1000; i++) {
    uint8_t clicked[4];
    cr_assert_leq (ra_choice_sample (&c, v, &rng, clicked), 1);
  }
}

static int s_next_perm (int *s, int k, int n)
{
  /* next ordered k-tuple of distinct values in [0, n) (odometer with a distinctness filter) */
  for (;;) {
    int r = k - 1;
    while (r >= 0 && ++s[r] == n)
      s[r--] = 0;
    if (r < 0)
      return 0;
    int ok = 1;
    for (int a = 0; a < k && ok; a++)
      for (int b = 0; b < a && ok; b++)
        ok = s[a] != s[b];
    if (ok)
      return 1;
  }
}

Test (choice, best_slate_is_the_brute_force_optimum_for_every_kind)
{
  ra_rng_t rng;
  ra_rng_seed (&rng, 23, 0);
  for (int kind = 0; kind < RA_CHOICE_COUNT; kind++)
    for (int trial = 0; trial < 150; trial++) {
      int n = 3 + (int) ra_rng_below (&rng, 5), k = 1 + (int) ra_rng_below (&rng, 4);
      if (k > n)
        k = n;
      ra_choice_t c;
      double v0 = trial % 5 == 0 ? -0.5 : 2 * ra_rng_uniform_f64 (&rng) - 1;
      ra_choice_init (&c, (ra_choice_kind_t) kind, k, 2 * ra_rng_uniform_f64 (&rng), v0);
      ra_choice_set_continue (&c, ra_rng_uniform_f64 (&rng));
      float vj[8], a[8], g[8];
      for (int j = 0; j < n; j++) {
        vj[j] = (float) (4 * ra_rng_uniform_f64 (&rng) - 2);
        a[j] = ra_choice_attraction (&c, vj[j]);
        g[j] = (float) (trial % 3 == 0 ? 2 * ra_rng_uniform_f64 (&rng) - 0.5 : 50 * ra_rng_uniform_f64 (&rng));
      }
      int32_t slate[RA_CHOICE_MAX_SLATE];
      float got = ra_choice_best_slate (&c, a, g, n, slate);
      float sv[RA_CHOICE_MAX_SLATE], sg[RA_CHOICE_MAX_SLATE];
      for (int r = 0; r < k; r++) {
        cr_assert (slate[r] >= 0 && slate[r] < n, "%s trial %d n %d k %d slot %d: %d", ra_choice_names[kind], trial, n, k, r, slate[r]);
        for (int q = 0; q < r; q++)
          cr_assert_neq (slate[r], slate[q]);
        sv[r] = vj[slate[r]];
        sg[r] = g[slate[r]];
      }
      double best = -INFINITY;
      int s[RA_CHOICE_MAX_SLATE];
      for (int r = 0; r < k; r++)
        s[r] = r;
      do {
        float tv[RA_CHOICE_MAX_SLATE], tg[RA_CHOICE_MAX_SLATE];
        for (int r = 0; r < k; r++) {
          tv[r] = vj[s[r]];
          tg[r] = g[s[r]];
        }
        double val = ra_choice_expected (&c, tv, tg);
        if (val > best)
          best = val;
      } while (s_next_perm (s, k, n));
      double tol = 1e-4 * (1 + fabs (best));
      cr_assert_float_eq (got, best, tol, "%s trial %d n %d k %d: got %f, best %f", ra_choice_names[kind], trial,
                          n, k, got, best);
      cr_assert_float_eq (ra_choice_expected (&c, sv, sg), best, tol, "%s trial %d", ra_choice_names[kind], trial);
    }
}

/* ---- ECommerce-v1 accepts every kind by config choice_model ---- */

#include "env/sims/ecommerce.h"
#include "sim_harness.h"

Test (choice, ecommerce_runs_every_choice_model_with_its_oracle)
{
  const ra_sim_class_t *E = &ra_ecommerce_class;
  for (int kind = 0; kind < RA_CHOICE_COUNT; kind++) {
    ra_kv_t cfg[] = { { .key = "choice_model", .type = RA_KV_STR, .str = ra_choice_names[kind] },
                      { .key = "cascade_continue", .type = RA_KV_NUM, .num = 0.7 },
                      { .key = "oracle", .type = RA_KV_BOOL, .num = 1 } };
    ra_sim_args_t a = { .config = cfg, .n_config = 3, .num_envs = 3, .seed = 5 };
    ra_sim_t *sim = NULL;
    ra_error_t err;
    cr_assert_eq (E->create (&a, &sim, &err), RA_OK, "%s: %s", ra_choice_names[kind], err.message);
    const ra_sim_spec_t *sp = E->spec (sim);
    ra_ecommerce_view_t v;
    ra_ecommerce_view (sim, 0, &v);
    cr_assert_eq (v.choice->kind, (ra_choice_kind_t) kind);
    cr_assert_float_eq (v.choice->cont, 0.7, 1e-6);
    harness_t h;
    h_init (&h, sp, 3);
    E->reset (sim, 0, 3, NULL, NULL, &h.buf);
    const int k = sp->slate_size, K = sp->num_candidates;
    int f_regret = h_info_index (&h, "regret"), f_click = h_info_index (&h, "clicked");
    int f_user = h_obs_index (&h, "user");
    ra_rng_t arng;
    ra_rng_seed (&arng, 8, 0);
    int32_t act[3 * RA_CHOICE_MAX_SLATE];
    int clicks = 0, multi = 0;
    for (int t = 0; t < 100; t++) {
      for (int i = 0; i < 3; i++)
        h_random_slate (&arng, K, k, act + i * k);
      E->step (sim, 0, 3, act, &h.buf);
      for (int i = 0; i < 3; i++) {
        float regret = ((float *) h.buf.info[f_regret])[i];
        cr_assert (regret >= 0 && isfinite (regret));
        cr_assert (h.buf.reward[i] >= sp->reward_range[0] && h.buf.reward[i] <= sp->reward_range[1]);
        int n = 0;
        for (int r = 0; r < k; r++)
          n += ((uint8_t *) h.buf.info[f_click])[i * k + r];
        clicks += n;
        multi += n > 1;
        const float *u = (const float *) h.buf.obs[f_user] + (size_t) i * (size_t) sp->obs[f_user].shape[0];
        for (int q = 0; q < sp->obs[f_user].shape[0]; q++)
          cr_assert (u[q] >= -1 && u[q] <= 1, "%s: user[%d] = %f", ra_choice_names[kind], q, u[q]);
        if (h.buf.terminated[i]) {
          uint8_t mask[3] = { 0 };
          mask[i] = 1;
          E->reset (sim, 0, 3, NULL, mask, &h.buf);
        }
      }
    }
    cr_assert_gt (clicks, 0, "%s", ra_choice_names[kind]);
    if (kind == RA_CHOICE_LOGIT || kind == RA_CHOICE_PROPORTIONAL)
      cr_assert_eq (multi, 0);
    h_fini (&h);
    E->destroy (&sim);
  }
  ra_kv_t bad[] = { { .key = "choice_model", .type = RA_KV_STR, .str = "dbn" } };
  ra_sim_args_t a = { .config = bad, .n_config = 1, .num_envs = 1, .seed = 5 };
  ra_sim_t *sim = NULL;
  ra_error_t err;
  cr_assert_eq (E->create (&a, &sim, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "choice_model"), "%s", err.message);
}
