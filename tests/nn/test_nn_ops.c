/*  tests/nn/test_nn_ops.c - the slate and advantage ops of agents/nn on the cpu backend: each
    against its double-precision reference (agents/nn/ref.c), the reference's Plackett-Luce
    gradients against finite differences, GAE against a hand-computed case, and the sampler's
    properties (greedy = top k, distinct indexes, same counter -> same slates, first-position
    frequencies = softmax), and the population form of the sampler against separate calls.     */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agents/nn/nn.h"
#include "agents/nn/nn_ref.h"

static ra_nn_backend_t *BE;
static void setup (void) { cr_assert_eq (ra_nn_backend_open ("cpu", NULL, &BE, NULL), RA_OK); }
static void teardown (void) { ra_nn_backend_destroy (&BE); }
TestSuite (nn_ops, .init = setup, .fini = teardown, .timeout = 60);

enum { R = 40, K = 9, k = 4 };

static void s_scores (float *s, double *sd, int n, uint64_t seed)
{
  ra_nn_rng_t r;
  ra_nn_rng_init (&r, seed, 9);
  for (int i = 0; i < n; i++) {
    s[i] = 1.5f * ra_nn_rng_normal (&r);
    if (sd)
      sd[i] = s[i];
  }
}

Test (nn_ops, slate_sampling_matches_the_reference_and_is_a_valid_slate)
{
  float s[R * K];
  double sd[R * K];
  s_scores (s, sd, R * K, 1);
  int32_t a[R * k], b[R * k], c[R * k];
  for (int greedy = 0; greedy < 2; greedy++) {
    ra_nn_rng_t rng;
    ra_nn_rng_init (&rng, 5, 2);
    rng.counter = 1000;
    ra_nn_slate_sample (BE, s, R, K, k, greedy, &rng, a);
    cr_assert_eq (rng.counter, greedy ? 1000u : 1000u + R * K, "counter advances by R*K when sampling");
    ra_nn_ref_slate (sd, R, K, k, greedy, 5, 2, 1000, b);
    cr_assert_eq (memcmp (a, b, sizeof a), 0, "cpu and reference slates differ (greedy %d)", greedy);
    rng.counter = 1000;
    ra_nn_slate_sample (BE, s, R, K, k, greedy, &rng, c);
    cr_assert_eq (memcmp (a, c, sizeof a), 0, "same counter, different slates");
    for (int r = 0; r < R; r++)
      for (int i = 0; i < k; i++) {
        cr_assert (a[r * k + i] >= 0 && a[r * k + i] < K);
        for (int j = 0; j < i; j++)
          cr_assert_neq (a[r * k + i], a[r * k + j]);
      }
  }
  /* greedy: descending scores */
  ra_nn_rng_t rng;
  ra_nn_rng_init (&rng, 5, 2);
  ra_nn_slate_sample (BE, s, R, K, k, true, &rng, a);
  for (int r = 0; r < R; r++) {
    for (int i = 1; i < k; i++)
      cr_assert_geq (s[r * K + a[r * k + i - 1]], s[r * K + a[r * k + i]]);
    for (int j = 0; j < K; j++) {
      int in = 0;
      for (int i = 0; i < k; i++)
        in |= a[r * k + i] == j;
      if (!in)
        cr_assert_leq (s[r * K + j], s[r * K + a[r * k + k - 1]]);
    }
  }
}

Test (nn_ops, gumbel_top_k_first_position_follows_the_softmax)
{
  enum { ROWS = 40000, KK = 5 };
  static float s[ROWS * KK];
  static int32_t a[ROWS * 2];
  const float base[KK] = { 0.5f, -1.0f, 1.2f, 0.0f, 0.3f };
  for (int r = 0; r < ROWS; r++)
    memcpy (s + r * KK, base, sizeof base);
  ra_nn_rng_t rng;
  ra_nn_rng_init (&rng, 11, 0);
  ra_nn_slate_sample (BE, s, ROWS, KK, 2, false, &rng, a);
  double z = 0, cnt[KK] = { 0 };
  for (int j = 0; j < KK; j++)
    z += exp (base[j]);
  for (int r = 0; r < ROWS; r++)
    cnt[a[r * 2]]++;
  for (int j = 0; j < KK; j++) {
    double p = exp (base[j]) / z, f = cnt[j] / ROWS, sd = sqrt (p * (1 - p) / ROWS);
    cr_assert_lt (fabs (f - p), 5 * sd, "candidate %d first %.4f of the time, softmax %.4f", j, f, p);
  }
}

/* R rows of K scores (float and double copies) and a Plackett-Luce sample of k per row */
static void s_sampled_rows (float *s, double *sd, int32_t *a, uint64_t score_seed, uint64_t seed, uint64_t stream)
{
  s_scores (s, sd, R * K, score_seed);
  ra_nn_rng_t rng;
  ra_nn_rng_init (&rng, seed, stream);
  ra_nn_slate_sample (BE, s, R, K, k, false, &rng, a);
}

Test (nn_ops, plackett_luce_matches_the_reference_and_finite_differences)
{
  float s[R * K];
  double sd[R * K];
  int32_t a[R * k];
  s_sampled_rows (s, sd, a, 3, 8, 1);
  float lp[R], ent[R], coef[R], ds[R * K];
  ra_nn_pl_forward (BE, s, a, R, K, k, lp, ent);
  for (int r = 0; r < R; r++)
    coef[r] = 0.3f - 0.02f * r;
  const float ec = -0.07f;
  for (int i = 0; i < R * K; i++)
    ds[i] = 1.0f; /* accumulate = false overwrites */
  ra_nn_pl_backward (BE, s, a, R, K, k, coef, NULL, ec, ds, false);
  for (int r = 0; r < R; r++) {
    double h, dl[K], de[K];
    double want = ra_nn_ref_pl (sd + r * K, a + r * k, K, k, &h, dl, de);
    cr_assert_float_eq (lp[r], want, 1e-5 * fmax (1, fabs (want)), "logp row %d: %g vs %g", r, lp[r], want);
    cr_assert_float_eq (ent[r], h, 1e-5 * fmax (1, h), "entropy row %d", r);
    for (int j = 0; j < K; j++) {
      double g = coef[r] * dl[j] + ec * de[j];
      cr_assert_float_eq (ds[r * K + j], g, 1e-6, "dscores[%d, %d]: %g vs %g", r, j, ds[r * K + j], g);
    }
    /* the reference gradients against central differences, in double */
    for (int j = 0; j < K; j++) {
      double sp[K], sm[K], hp, hm, e = 1e-5;
      memcpy (sp, sd + r * K, sizeof sp);
      memcpy (sm, sd + r * K, sizeof sm);
      sp[j] += e;
      sm[j] -= e;
      double gl = (ra_nn_ref_pl (sp, a + r * k, K, k, &hp, NULL, NULL) - ra_nn_ref_pl (sm, a + r * k, K, k, &hm, NULL, NULL)) / (2 * e);
      cr_assert_float_eq (dl[j], gl, 1e-7, "d logp/ds[%d] row %d: %g vs fd %g", j, r, dl[j], gl);
      cr_assert_float_eq (de[j], (hp - hm) / (2 * e), 1e-7, "d H/ds[%d] row %d", j, r);
    }
  }
  /* accumulate adds */
  float ds2[R * K];
  memcpy (ds2, ds, sizeof ds);
  ra_nn_pl_backward (BE, s, a, R, K, k, coef, NULL, ec, ds2, true);
  for (int i = 0; i < R * K; i++)
    cr_assert_float_eq (ds2[i], 2 * ds[i], 1e-6);
}

Test (nn_ops, plackett_luce_position_coefficients_credit_each_placed_item)
{
  /* S6: position i's term of log P is the difference of the log-probabilities of the first i + 1
     and the first i placed items, so its reference gradient is the difference of two S2 gradients */
  float s[R * K];
  double sd[R * K];
  int32_t a[R * k];
  s_sampled_rows (s, sd, a, 5, 9, 2);
  ra_nn_rng_t rng;
  ra_nn_rng_init (&rng, 10, 0);
  float coef[R], pc[R * k], ds[R * K];
  for (int r = 0; r < R; r++) {
    coef[r] = 0.1f * (r % 3) - 0.1f;
    for (int i = 0; i < k; i++)
      pc[r * k + i] = ra_nn_rng_normal (&rng);
  }
  const float ec = 0.05f;
  ra_nn_pl_backward (BE, s, a, R, K, k, coef, pc, ec, ds, false);
  for (int r = 0; r < R; r++) {
    double h, dl[K], de[K], prev[K] = { 0 }, want[K];
    ra_nn_ref_pl (sd + r * K, a + r * k, K, k, &h, dl, de);
    for (int j = 0; j < K; j++)
      want[j] = coef[r] * dl[j] + ec * de[j];
    for (int i = 0; i < k; i++) {
      double upto[K], hi;
      ra_nn_ref_pl (sd + r * K, a + r * k, K, i + 1, &hi, upto, NULL);
      for (int j = 0; j < K; j++) {
        want[j] += pc[r * k + i] * (upto[j] - prev[j]);
        prev[j] = upto[j];
      }
    }
    for (int j = 0; j < K; j++)
      cr_assert_float_eq (ds[r * K + j], want[j], 1e-5, "dscores[%d, %d]: %g vs %g", r, j, ds[r * K + j], want[j]);
  }
  /* all-zero position coefficients are no coefficients, bit for bit */
  float zero[R * k] = { 0 }, ds0[R * K], dsn[R * K];
  ra_nn_pl_backward (BE, s, a, R, K, k, coef, zero, ec, ds0, false);
  ra_nn_pl_backward (BE, s, a, R, K, k, coef, NULL, ec, dsn, false);
  cr_assert_eq (memcmp (ds0, dsn, sizeof ds0), 0);
}

Test (nn_ops, gae_matches_a_hand_computed_case_and_the_reference_per_replica)
{
  /* replica 0: the case of tests/policies (T = 3, N = 2); replica 1: random */
  enum { P = 2, T = 3, N = 2 };
  float r[P * T * N] = { 1, 0, 2, 0, 3, 1 }, v[P * (T + 1) * N] = { 0.5f, 0, 1.0f, 0, 1.5f, 0, 2.0f, 5.0f };
  uint8_t d[P * T * N] = { 0, 0, 1, 0, 0, 1 };
  ra_nn_rng_t rng;
  ra_nn_rng_init (&rng, 4, 0);
  for (int i = T * N; i < P * T * N; i++) {
    r[i] = ra_nn_rng_normal (&rng);
    d[i] = ra_nn_rng_uniform (&rng) < 0.3f;
  }
  for (int i = (T + 1) * N; i < P * (T + 1) * N; i++)
    v[i] = ra_nn_rng_normal (&rng);
  float adv[P * T * N], ret[P * T * N];
  ra_nn_gae (BE, r, d, v, P, T, N, 0.9f, 0.8f, adv, ret);
  const float want[6] = { 2.12f, 0.5184f, 1.0f, 0.72f, 3.3f, 1.0f };
  for (int x = 0; x < 6; x++)
    cr_assert_float_eq (adv[x], want[x], 1e-5, "adv[%d] %g, expected %g", x, adv[x], want[x]);
  for (int p = 0; p < P; p++) {
    double rd[T * N], vd[(T + 1) * N], ad[T * N], rt[T * N];
    for (int i = 0; i < T * N; i++)
      rd[i] = r[p * T * N + i];
    for (int i = 0; i < (T + 1) * N; i++)
      vd[i] = v[p * (T + 1) * N + i];
    ra_nn_ref_gae (rd, d + p * T * N, vd, T, N, 0.9f, 0.8f, ad, rt);
    for (int i = 0; i < T * N; i++) {
      cr_assert_float_eq (adv[p * T * N + i], ad[i], 1e-5);
      cr_assert_float_eq (ret[p * T * N + i], rt[i], 1e-5);
    }
  }
}

Test (nn_ops, normalize_matches_the_reference_per_replica)
{
  enum { P = 3, n = 101 };
  float x[P * n];
  double xd[P * n];
  ra_nn_rng_t rng;
  ra_nn_rng_init (&rng, 6, 0);
  for (int i = 0; i < P * n; i++)
    xd[i] = x[i] = 3.0f + 2.0f * ra_nn_rng_normal (&rng) * (1 + i / n);
  ra_nn_normalize (BE, x, P, n);
  for (int p = 0; p < P; p++) {
    ra_nn_ref_normalize (xd + p * n, n);
    double m = 0;
    for (int i = 0; i < n; i++) {
      cr_assert_float_eq (x[p * n + i], xd[p * n + i], 1e-5);
      m += x[p * n + i];
    }
    cr_assert_float_eq (m / n, 0.0, 1e-6);
  }
}

Test (nn_ops, host_staging_memory_is_zeroed_and_uploads_without_waiting_arrive)
{
  float *h = ra_nn_host_alloc (BE, 64 * sizeof (float)), *d = ra_nn_alloc (BE, 64), back[64];
  cr_assert (h && d);
  for (int i = 0; i < 64; i++)
    cr_assert_eq (h[i], 0.0f);
  for (int i = 0; i < 64; i++)
    h[i] = (float) i * 0.5f;
  ra_nn_upload_async (BE, d, h, 64 * sizeof (float));
  ra_nn_download (BE, back, d, 64); /* waits */
  cr_assert_eq (memcmp (back, h, sizeof back), 0);
  ra_nn_free (BE, d);
  ra_nn_host_free (BE, h);
  ra_nn_host_free (BE, NULL);
}

/* rows of 3 floats, 5 apart in staging memory, land 7 apart on the device; the gaps stay as they were */
Test (nn_ops, strided_row_uploads_fill_only_their_rows)
{
  enum { rows = 4, width = 3, hp = 5, dp = 7 };
  float *h = ra_nn_host_alloc (BE, rows * hp * sizeof (float)), *d = ra_nn_alloc (BE, rows * dp), back[rows * dp];
  cr_assert (h && d);
  for (int i = 0; i < rows * hp; i++)
    h[i] = (float) (i + 1);
  ra_nn_upload_rows_async (BE, d, dp * sizeof (float), h, hp * sizeof (float), width * sizeof (float), rows);
  ra_nn_download (BE, back, d, rows * dp);
  for (int r = 0; r < rows; r++)
    for (int j = 0; j < dp; j++)
      cr_assert_eq (back[r * dp + j], j < width ? h[r * hp + j] : 0.0f, "row %d, float %d", r, j);
  ra_nn_free (BE, d);
  ra_nn_host_free (BE, h);
}

/* ra_nn_slate_sample_pop = one ra_nn_slate_sample per replica on its own stream, rows pstride
   apart, the rows between replicas untouched, every stream advanced; 130 replicas, so the call
   is split at 128 replicas. */
Test (nn_ops, population_slates_equal_separate_calls_per_replica)
{
  enum { P = 130, Rp = 3, Kp = 6, kp = 2, stride = 5 };
  static float s[P * stride * Kp];
  static int32_t pop[P * stride * kp], one[Rp * kp];
  s_scores (s, NULL, P * stride * Kp, 11);
  for (int greedy = 0; greedy < 2; greedy++) {
    ra_nn_rng_t rp[P], rs[P];
    for (int p = 0; p < P; p++)
      ra_nn_rng_init (&rp[p], 3, (uint64_t) p), rs[p] = rp[p];
    memset (pop, 0xff, sizeof pop);
    ra_nn_slate_sample_pop (BE, s, P, stride, Rp, Kp, kp, greedy, rp, pop);
    for (int p = 0; p < P; p++) {
      ra_nn_slate_sample (BE, s + (size_t) p * stride * Kp, Rp, Kp, kp, greedy, &rs[p], one);
      cr_assert_eq (memcmp (one, pop + (size_t) p * stride * kp, sizeof one), 0, "replica %d differs (greedy %d)",
                    p, greedy);
      cr_assert_eq (rp[p].counter, rs[p].counter, "replica %d's stream advanced differently", p);
      for (int i = Rp * kp; i < stride * kp; i++)
        cr_assert_eq (pop[(size_t) p * stride * kp + i], -1, "replica %d: a row between replicas was written", p);
    }
  }
}
