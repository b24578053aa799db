/*  tests/policies/test_baselines.c - every classic baseline against a case computed here by
    hand or with a naive dense inverse: LinUCB (disjoint and hybrid) scores through the full
    ranking they produce, Sherman-Morrison against Gauss-Jordan, the ridge posterior of the
    Thompson arms, popularity's smoothed counts, epsilon-greedy's exploration rate, logistic TS
    learning a planted preference, the oracle's slates and fallback, and determinism.       */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "agents/policies/baseline.h"
#include "agents/policies/baselines.h"
#include "agents/policies/linalg.h"
#include "agents/policies/registry.h"
#include "agents/policies/ridge.h"
#include "naive_inverse.h"

/* One env, U = F = 2 (so e = 2 and phi = [c0, c1, u0 c0, u1 c1, 1]). */
typedef struct {
  float user[2], cand[8][2];
  int32_t ids[8];
  ra_obs_batch_t obs;
} s_world_t;

static void s_world (s_world_t *w, int K, int k, float u0, float u1)
{
  w->user[0] = u0;
  w->user[1] = u1;
  w->obs = (ra_obs_batch_t) { .num_envs = 1, .num_candidates = K, .slate_size = k, .user_dim = 2,
                              .cand_dim = 2, .response_dim = 0, .user = w->user,
                              .candidates = &w->cand[0][0], .response = w->user, .item_ids = w->ids };
}

static ra_policy_t *s_make (const char *name, const ra_kv_t *cfg, int n_cfg, int N, int K, int k)
{
  const ra_policy_class_t *cls = ra_policies_find (name);
  cr_assert (cls, "no arm %s", name);
  ra_policy_args_t a = { .config = cfg, .n_config = n_cfg, .seed = 5, .num_envs = N,
                         .num_candidates = K, .slate_size = k, .user_dim = 2, .cand_dim = 2 };
  ra_policy_t *p = NULL;
  ra_error_t err;
  cr_assert_eq (cls->create (&a, &p, &err), RA_OK, "%s", err.message);
  return p;
}

/* Feeds one step: full slate 0..k-1 with the given per-slot credit. */
static void s_feed (ra_policy_t *p, const ra_obs_batch_t *obs, const float *credit)
{
  int32_t slate[8];
  uint8_t clicked[8], done = 0;
  float reward = 0;
  for (int r = 0; r < obs->slate_size; r++) {
    slate[r] = r;
    clicked[r] = credit[r] > 0;
    reward += credit[r];
  }
  ra_feedback_t fb = { .slates = slate, .reward = &reward, .slot_reward = credit,
                       .clicked = clicked, .done = &done };
  p->cls->learn (p, obs, &fb);
}

/* Checks that slate is the ranking of score (descending), with no near ties. */
static void s_assert_ranking (const int32_t *slate, const double *score, int K)
{
  for (int r = 0; r + 1 < K; r++) {
    cr_assert_gt (score[slate[r]], score[slate[r + 1]] + 1e-6,
                  "rank %d: candidate %d (%g) should beat %d (%g)", r, slate[r], score[slate[r]],
                  slate[r + 1], score[slate[r + 1]]);
  }
}

Test (linalg, sherman_morrison_matches_a_naive_inverse)
{
  enum { D = 5 };
  double a[D * D], ainv[D * D], ref[D * D], scratch[D];
  ra__set_identity (a, D, 2.0);
  ra__set_identity (ainv, D, 0.5);
  ra_rng_t rng;
  ra_rng_seed_splitmix (&rng, 3);
  for (int t = 0; t < 12; t++) {
    float x[D];
    for (int j = 0; j < D; j++)
      x[j] = (float) ra_rng_normal (&rng);
    for (int i = 0; i < D; i++)
      for (int j = 0; j < D; j++)
        a[i * D + j] += (double) x[i] * x[j];
    ra__sm_update (ainv, x, D, scratch);
  }
  naive_inverse (a, D, ref);
  for (int i = 0; i < D * D; i++)
    cr_assert_float_eq (ainv[i], ref[i], 1e-9, "entry %d: %g vs %g", i, ainv[i], ref[i]);
  double inv2[D * D], sc[D * D + D];
  cr_assert (ra__spd_inverse (a, D, inv2, sc));
  for (int i = 0; i < D * D; i++)
    cr_assert_float_eq (inv2[i], ref[i], 1e-9);
}

Test (ridge, posterior_mean_and_covariance_after_known_updates)
{
  /* x = (1, 0), y = 1; x = (1, 1), y = 0; lambda = 1:
     A = [[3, 1], [1, 2]], b = (1, 0), A^-1 = [[2, -1], [-1, 3]] / 5, theta = (0.4, -0.2). */
  ra__ridge_t r;
  cr_assert (ra__ridge_init (&r, 2, 1.0));
  float x1[2] = { 1, 0 }, x2[2] = { 1, 1 };
  ra__ridge_add (&r, x1, 1.0);
  ra__ridge_add (&r, x2, 0.0);
  ra__ridge_solve (&r);
  double want[4] = { 0.4, -0.2, -0.2, 0.6 };
  for (int i = 0; i < 4; i++)
    cr_assert_float_eq (r.ainv[i], want[i], 1e-12);
  cr_assert_float_eq (r.theta[0], 0.4, 1e-12);
  cr_assert_float_eq (r.theta[1], -0.2, 1e-12);
  ra__ridge_fini (&r);
}

Test (linucb, disjoint_scores_rank_as_computed_with_a_naive_inverse)
{
  enum { K = 4, D = 3 };
  const double alpha = 0.5, lambda = 1.0;
  ra_kv_t cfg[1] = { { .key = "alpha", .type = RA_KV_NUM, .num = alpha } };
  ra_policy_t *p = s_make ("linucb", cfg, 1, 1, K, K);
  s_world_t w;
  s_world (&w, K, K, 1, 0);
  int32_t ids[K] = { 10, 20, 30, 40 };
  memcpy (w.ids, ids, sizeof ids);
  double A[5][D * D], b[5][D];   /* naive per-item state, items 10..50 */
  for (int a = 0; a < 5; a++) {
    ra__set_identity (A[a], D, lambda);
    memset (b[a], 0, sizeof b[a]);
  }
  const float users[3][2] = { { 1, 0 }, { 0, 1 }, { 0.5f, 0.5f } };
  const float credit[3][K] = { { 1, 0, 0, 0 }, { 0, 1, 0, 1 }, { 1, 1, 0, 0 } };
  for (int s = 0; s < 3; s++) {
    s_world (&w, K, K, users[s][0], users[s][1]);
    s_feed (p, &w.obs, credit[s]);
    double x[D] = { users[s][0], users[s][1], 1 };
    for (int c = 0; c < K; c++) {
      for (int i = 0; i < D; i++) {
        for (int j = 0; j < D; j++)
          A[c][i * D + j] += x[i] * x[j];
        b[c][i] += credit[s][c] * x[i];
      }
    }
  }
  /* query: items 10, 20, 30 and a new item 50 for the user (0.6, 0.8) */
  s_world (&w, K, K, 0.6f, 0.8f);
  w.ids[3] = 50;
  int item_of[K] = { 0, 1, 2, 4 };
  double x[D] = { 0.6f, 0.8f, 1 }, score[K];
  for (int c = 0; c < K; c++) {
    double inv[D * D], mean = 0, var = 0;
    naive_inverse (A[item_of[c]], D, inv);
    for (int i = 0; i < D; i++)
      for (int j = 0; j < D; j++) {
        mean += b[item_of[c]][i] * inv[i * D + j] * x[j];
        var += x[i] * inv[i * D + j] * x[j];
      }
    score[c] = mean + alpha * sqrt (var);
  }
  int32_t slate[K];
  p->cls->act (p, &w.obs, slate);
  s_assert_ranking (slate, score, K);
  for (int c = 0; c < K; c++)
    cr_assert_float_eq (ra__linucb_score (p, &w.obs, 0, c), score[c], 1e-9, "candidate %d", c);
  p->cls->forget (p);   /* forgetting makes every item new again: equal scores, index order */
  p->cls->act (p, &w.obs, slate);
  for (int r = 0; r < K; r++)
    cr_assert_eq (slate[r], r);
  p->cls->destroy (&p);
  cr_assert_null (p);
}

Test (linucb, hybrid_equals_the_joint_ridge_over_shared_and_item_features)
{
  /* Algorithm 2 is block elimination of one ridge regression over [phi(u, c); e_item]: check
     mean + alpha sqrt(var) against that joint model inverted naively. */
  enum { K = 3, DZ = 5, NI = 4, DJ = DZ + NI };
  const double alpha = 0.7;
  ra_kv_t cfg[1] = { { .key = "alpha", .type = RA_KV_NUM, .num = alpha } };
  ra_policy_t *p = s_make ("linucb_hybrid", cfg, 1, 1, K, K);
  s_world_t w;
  double A[DJ * DJ], b[DJ] = { 0 };
  ra__set_identity (A, DJ, 1.0);
  const float feats[3][2] = { { 1, 0 }, { 0, 1 }, { 0.7f, 0.7f } };
  const float users[3][2] = { { 1, 0.2f }, { 0.1f, 1 }, { 0.5f, -0.5f } };
  const int32_t items[3][K] = { { 0, 1, 2 }, { 1, 2, 3 }, { 0, 2, 3 } };
  const float credit[3][K] = { { 1, 0, 0 }, { 0, 1, 1 }, { 1, 0, 0 } };
  for (int s = 0; s < 3; s++) {
    s_world (&w, K, K, users[s][0], users[s][1]);
    for (int c = 0; c < K; c++) {
      w.ids[c] = items[s][c];
      memcpy (w.cand[c], feats[(c + s) % 3], sizeof w.cand[c]);
      float z[DZ];
      ra__phi (w.user, 2, w.cand[c], 2, z);
      double v[DJ] = { 0 };
      for (int j = 0; j < DZ; j++)
        v[j] = z[j];
      v[DZ + items[s][c]] = 1;
      for (int i = 0; i < DJ; i++) {
        for (int j = 0; j < DJ; j++)
          A[i * DJ + j] += v[i] * v[j];
        b[i] += credit[s][c] * v[i];
      }
    }
    s_feed (p, &w.obs, credit[s]);
  }
  double inv[DJ * DJ], theta[DJ] = { 0 };
  naive_inverse (A, DJ, inv);
  for (int i = 0; i < DJ; i++)
    for (int j = 0; j < DJ; j++)
      theta[i] += inv[i * DJ + j] * b[j];
  s_world (&w, K, K, 0.3f, 0.9f);
  const int32_t query[K] = { 3, 0, 1 };
  double score[K];
  for (int c = 0; c < K; c++) {
    w.ids[c] = query[c];
    memcpy (w.cand[c], feats[c], sizeof w.cand[c]);
    float z[DZ];
    ra__phi (w.user, 2, w.cand[c], 2, z);
    double v[DJ] = { 0 }, mean = 0, var = 0;
    for (int j = 0; j < DZ; j++)
      v[j] = z[j];
    v[DZ + query[c]] = 1;
    for (int i = 0; i < DJ; i++) {
      mean += theta[i] * v[i];
      for (int j = 0; j < DJ; j++)
        var += v[i] * inv[i * DJ + j] * v[j];
    }
    score[c] = mean + alpha * sqrt (var);
  }
  int32_t slate[K];
  p->cls->act (p, &w.obs, slate);
  s_assert_ranking (slate, score, K);
  for (int c = 0; c < K; c++)
    cr_assert_float_eq (ra__linucb_hybrid_score (p, &w.obs, 0, c), score[c], 1e-9, "candidate %d", c);
  p->cls->destroy (&p);
}

Test (lints, zero_scale_ranks_by_the_naive_ridge_mean)
{
  enum { K = 3, D = 5 };
  ra_kv_t cfg[1] = { { .key = "v", .type = RA_KV_NUM, .num = 0 } };
  ra_policy_t *p = s_make ("lints", cfg, 1, 1, K, K);
  s_world_t w;
  s_world (&w, K, K, 1, 0.5f);
  const float feats[K][2] = { { 1, 0 }, { 0, 1 }, { 0.6f, 0.6f } };
  memcpy (w.cand, feats, sizeof feats);
  double A[D * D], b[D] = { 0 };
  ra__set_identity (A, D, 1.0);
  const float credit[4][K] = { { 1, 0, 0 }, { 0, 0, 1 }, { 1, 0, 0 }, { 0, 1, 0 } };
  for (int s = 0; s < 4; s++) {
    s_feed (p, &w.obs, credit[s]);
    for (int c = 0; c < K; c++) {
      float z[D];
      ra__phi (w.user, 2, w.cand[c], 2, z);
      for (int i = 0; i < D; i++) {
        for (int j = 0; j < D; j++)
          A[i * D + j] += (double) z[i] * z[j];
        b[i] += credit[s][c] * z[i];
      }
    }
  }
  double inv[D * D], score[K];
  naive_inverse (A, D, inv);
  s_world (&w, K, K, 0.2f, 1.0f);
  for (int c = 0; c < K; c++) {
    float z[D];
    ra__phi (w.user, 2, w.cand[c], 2, z);
    score[c] = 0;
    for (int i = 0; i < D; i++)
      for (int j = 0; j < D; j++)
        score[c] += z[i] * inv[i * D + j] * b[j];
  }
  int32_t slate[K];
  p->cls->act (p, &w.obs, slate);
  s_assert_ranking (slate, score, K);
  p->cls->destroy (&p);
}

Test (popularity, ranks_by_smoothed_click_counts)
{
  /* a = 1, n0 = 10: item 1: 5 clicks / 10 shows -> 6/20; item 2: 1/2 -> 2/12; item 3 unseen
     -> 1/10; item 4: 0/20 -> 1/30. */
  enum { K = 4 };
  ra_policy_t *p = s_make ("popularity", NULL, 0, 1, K, 1);
  s_world_t w;
  s_world (&w, K, 1, 0, 0);
  float c1 = 1, c0 = 0;
  for (int t = 0; t < 20; t++) {
    w.ids[0] = 4;   /* slate is always candidate 0; vary which item sits there */
    s_feed (p, &w.obs, &c0);
    if (t < 10) {
      w.ids[0] = 1;
      s_feed (p, &w.obs, t < 5 ? &c1 : &c0);
    }
    if (t < 2) {
      w.ids[0] = 2;
      s_feed (p, &w.obs, t < 1 ? &c1 : &c0);
    }
  }
  /* act with k = 1 repeatedly, removing the winner: the ranking */
  int32_t order[K] = { 4, 3, 2, 1 };
  memcpy (w.ids, order, sizeof order);
  int32_t slate[1];
  p->cls->act (p, &w.obs, slate);
  cr_assert_eq (w.ids[slate[0]], 1);
  int32_t rest[K] = { 4, 3, 2, 2 };
  memcpy (w.ids, rest, sizeof rest);
  p->cls->act (p, &w.obs, slate);
  cr_assert_eq (w.ids[slate[0]], 2);
  int32_t last[K] = { 4, 3, 4, 4 };
  memcpy (w.ids, last, sizeof last);
  p->cls->act (p, &w.obs, slate);
  cr_assert_eq (w.ids[slate[0]], 3);
  p->cls->destroy (&p);
}

Test (egreedy, explores_at_the_configured_rate)
{
  enum { N = 100, K = 10 };
  const double eps = 0.3;
  ra_kv_t cfg[1] = { { .key = "epsilon", .type = RA_KV_NUM, .num = eps } };
  ra_policy_t *p = s_make ("egreedy", cfg, 1, N, K, 1);
  static float user[N * 2], cand[N * K * 2];
  ra_obs_batch_t obs = { .num_envs = N, .num_candidates = K, .slate_size = 1, .user_dim = 2,
                         .cand_dim = 2, .user = user, .candidates = cand, .response = user };
  /* untrained: every score is 0 and the greedy pick is candidate 0; exploration shows a
     uniform candidate, so the slate differs from 0 with probability eps (K - 1) / K */
  int32_t slate[N];
  int off = 0, total = 0;
  for (int t = 0; t < 200; t++) {
    p->cls->act (p, &obs, slate);
    for (int i = 0; i < N; i++) {
      cr_assert (slate[i] >= 0 && slate[i] < K);
      off += slate[i] != 0;
      total++;
    }
  }
  double rate = (double) off / total, want = eps * (K - 1) / K;
  cr_assert_float_eq (rate, want, 0.015, "rate %g, expected %g", rate, want);
  p->cls->destroy (&p);
  ra_kv_t zero[1] = { { .key = "epsilon", .type = RA_KV_NUM, .num = 0 } };
  p = s_make ("egreedy", zero, 1, N, K, 1);
  p->cls->act (p, &obs, slate);
  for (int i = 0; i < N; i++)
    cr_assert_eq (slate[i], 0);
  p->cls->destroy (&p);
}

Test (logts, learns_a_planted_preference)
{
  enum { K = 2 };
  ra_policy_t *p = s_make ("logts", NULL, 0, 1, K, K);
  s_world_t w;
  s_world (&w, K, K, 0.5f, 0.5f);
  const float feats[K][2] = { { 0, 1 }, { 1, 0 } };   /* candidate 1 is always clicked */
  memcpy (w.cand, feats, sizeof feats);
  const float credit[K] = { 0, 1 };
  for (int t = 0; t < 60; t++)
    s_feed (p, &w.obs, credit);
  int first = 0;
  int32_t slate[K];
  for (int t = 0; t < 200; t++) {
    p->cls->act (p, &w.obs, slate);
    cr_assert_neq (slate[0], slate[1]);
    first += slate[0] == 1;
  }
  cr_assert_geq (first, 190, "the clicked candidate led %d of 200 slates", first);
  p->cls->destroy (&p);
}

Test (oracle, plays_the_oracle_slate_and_falls_back_after_resets)
{
  enum { K = 3, k = 2 };
  ra_policy_t *p = s_make ("oracle", NULL, 0, 1, K, k);
  s_world_t w;
  s_world (&w, K, k, 1, 0);
  const float feats[K][2] = { { 0, 1 }, { 1, 0 }, { 0.5f, 0.5f } };   /* greedy: 1, 2 */
  memcpy (w.cand, feats, sizeof feats);
  int32_t slate[k], played[k] = { 0, 1 }, best[k] = { 2, 0 };
  p->cls->act (p, &w.obs, slate);   /* no oracle slate yet: greedy affinity */
  cr_assert (slate[0] == 1 && slate[1] == 2);
  float reward = 0, credit[k] = { 0 };
  uint8_t clicked[k] = { 0 }, done = 0;
  ra_feedback_t fb = { .slates = played, .reward = &reward, .slot_reward = credit,
                       .clicked = clicked, .done = &done, .oracle_slates = best };
  p->cls->learn (p, &w.obs, &fb);
  p->cls->act (p, &w.obs, slate);
  cr_assert (slate[0] == 2 && slate[1] == 0);
  done = 1;   /* an episode ended: the reported slate was for the final observation */
  p->cls->learn (p, &w.obs, &fb);
  p->cls->act (p, &w.obs, slate);
  cr_assert (slate[0] == 1 && slate[1] == 2);
  p->cls->destroy (&p);
}

Test (random, distinct_uniform_and_deterministic)
{
  enum { N = 50, K = 6, k = 3 };
  ra_policy_t *p = s_make ("random", NULL, 0, N, K, k), *q = s_make ("random", NULL, 0, N, K, k);
  static float user[N * 2], cand[N * K * 2];
  ra_obs_batch_t obs = { .num_envs = N, .num_candidates = K, .slate_size = k, .user_dim = 2,
                         .cand_dim = 2, .user = user, .candidates = cand, .response = user };
  int32_t a[N * k], b[N * k];
  int count[K] = { 0 };
  for (int t = 0; t < 100; t++) {
    p->cls->act (p, &obs, a);
    q->cls->act (q, &obs, b);
    cr_assert_arr_eq (a, b, sizeof a);
    for (int i = 0; i < N; i++) {
      cr_assert (a[i * k] != a[i * k + 1] && a[i * k] != a[i * k + 2] && a[i * k + 1] != a[i * k + 2]);
      for (int r = 0; r < k; r++)
        count[a[i * k + r]]++;
    }
  }
  for (int c = 0; c < K; c++)   /* 15000 draws, 2500 expected each */
    cr_assert (count[c] > 2300 && count[c] < 2700, "candidate %d shown %d times", c, count[c]);
  p->cls->destroy (&p);
  q->cls->destroy (&q);
}

Test (registry, finds_every_arm_and_rejects_bad_settings)
{
  int n;
  const ra_policy_class_t *const *all = ra_policies_all (&n);
  cr_assert_geq (n, 8);
  for (int i = 0; i < n; i++)
    cr_assert_eq (ra_policies_find (all[i]->name), all[i]);
  cr_assert_null (ra_policies_find ("nope"));
  ra_kv_t bad[1] = { { .key = "alpah", .type = RA_KV_NUM, .num = 1 } };
  ra_policy_args_t a = { .config = bad, .n_config = 1, .num_envs = 1, .num_candidates = 4,
                         .slate_size = 2, .user_dim = 2, .cand_dim = 2 };
  ra_policy_t *p = NULL;
  ra_error_t err;
  cr_assert_eq (ra_linucb_policy_class.create (&a, &p, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "alpah"), "%s", err.message);
  ra_kv_t range[1] = { { .key = "epsilon", .type = RA_KV_NUM, .num = 2 } };
  a.config = range;
  cr_assert_eq (ra_egreedy_policy_class.create (&a, &p, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "epsilon"), "%s", err.message);
  cr_assert_null (p);
  /* a server may offer more candidates than the random arm's shuffle holds: refused, not a crash */
  a.config = NULL;
  a.n_config = 0;
  a.num_candidates = 5000;
  cr_assert_eq (ra_random_policy_class.create (&a, &p, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "5000"), "%s", err.message);
  cr_assert_null (p);
}

Test (item_key, fallback_hash_ignores_the_dynamic_tail)
{
  float a[10] = { 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f, 0.25f };
  float b[10];
  memcpy (b, a, sizeof a);
  b[9] = 0.75f;   /* price / budget changes with the user; the item stays the same */
  cr_assert_eq (ra__item_key_from_row (a, 10), ra__item_key_from_row (b, 10));
  b[0] = 0.11f;
  cr_assert_neq (ra__item_key_from_row (a, 10), ra__item_key_from_row (b, 10));
  cr_assert_geq (ra__item_key_from_row (a, 10), 0);
}
