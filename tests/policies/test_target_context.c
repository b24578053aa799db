/*  tests/policies/test_target_context.c - the target policy's task context (cfg "context" = n0,
    docs/agents.md T8): per replica S += sum_j (f_j - mean f) x_j u^T and G += u u^T over its envs'
    steps whose rank feedback is not flat, and the networks see [u, S (G + n0 I)^-1 u].

    Checked: off by default (no buffers, the networks' input is U); on, the augmented rows after
    two acts are T8 computed here from the slates act chose (each replica from its own envs only,
    an env with flat feedback adding nothing, not even to G); reset empties it; a clone carries it;
    with context_residual (T9) the user block is n0 (G + n0 I)^-1 u instead, u itself while the
    context is empty; with scorer_yield (T10) the scorer's scores are scaled by u . r(u) / u . u
    and the affinity head's are not, in act and in the update's gradient; with context_ts (T11) the
    context block is a posterior draw v(u) + E u, one per act; with context_session (T12) each
    env's rows add its session's centred feedback over (steps + m0), emptied after its done; with
    context_baseline (T13) every step counts, each rank against the click rate there of the act's
    slates (prior b) and the step weighing their sum, a done env's reset skipped; with
    context_handover (T14) T13's terms weigh c0 / (c0 + steps with a click) against T8's; with
    context_kernel (T15) the context, T9's rows and T10's yield are the kernel regression over user
    prototypes computed here, merging and past the prototype cap; the affinity
    head's context block starts at the identity and the rest of the head at 0; bad values and a
    response too short are refused naming the key; a checkpoint stores the setting and a policy
    without the context refuses the file (and the other way round); a file without
    the context loads into a policy with it with the v(u) columns added (the file's scores, plus
    c_j . v(u) once the context has feedback). No server.                                      */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIXTURE_SEED 4242u
#include "tests/policies/target_fixture.h"

enum { P = 2, N = 3, T = 2, K = 5, k = 2, U = 4, F = 3, R = 2 * k + 1 };
static const float N0 = 2.0f;

TestSuite (target_context, .init = setup, .fini = teardown, .timeout = 120);

typedef struct {
  float user[P * N * U], cand[P * N * K * F], resp[P * N * R];
  ra_obs_batch_t obs;
} obs_t;

/* random users and candidates; response zero (a reset's) */
static void s_obs (obs_t *o)
{
  s_random_obs (&o->obs, o->user, o->cand, P * N, K, k, U, F);
  memset (o->resp, 0, sizeof o->resp);
  o->obs.response_dim = R, o->obs.response = o->resp;
}

static ra_target_cfg_t s_cfg (float context, bool affinity)
{
  ra_target_cfg_t c;
  ra_target_cfg_default (&c);
  c.num_envs = N, c.num_candidates = K, c.slate_size = k, c.user_dim = U, c.cand_dim = F, c.response_dim = R;
  c.hidden = 6, c.layers = 1, c.rollout = T, c.population = P, c.seed = 3, c.affinity = affinity;
  c.context = context, c.slot_feedback = k; /* the second block of k entries */
  return c;
}

static ra_target_t *s_new (float context, bool affinity, int population)
{
  ra_target_cfg_t c = s_cfg (context, affinity);
  c.population = population;
  ra_target_t *t = NULL;
  ra_error_t err;
  cr_assert_eq (ra_target_new (BE, &c, &t, &err), RA_OK, "%s", err.message);
  return t;
}

Test (target_context, off_by_default)
{
  ra_target_cfg_t d;
  ra_target_cfg_default (&d);
  cr_assert_eq (d.context, 0.0f);
  ra_target_t *t = s_new (0, true, P);
  cr_assert (!t->ctx_s && !t->h_aug && t->in_dim == U);
  cr_assert_eq (t->params->tensors[t->aff_w].shape[1], U);
  ra_target_destroy (&t);
}

/* [A | y] -> [diag | w] by Gauss-Jordan, in place: w = A^-1 y is then A[b][U] / A[b][b]. */
static void s_gauss_jordan (double A[U][U + 1])
{
  for (int c = 0; c < U; c++)
    for (int r = 0; r < U; r++) {
      if (r == c)
        continue;
      double m = A[r][c] / A[c][c];
      for (int q = c; q <= U; q++)
        A[r][q] -= m * A[c][q];
    }
}

/* S (G + n0 I)^-1 u by T8 into v, and n0 (G + n0 I)^-1 u by T9 into r, from a list of (user,
   items' features, feedback) steps (Gauss-Jordan here, Cholesky in the policy); G + n0 I into gn
   unless NULL */
static void s_expect (const float *const *us, const float *const *xs, const float *const *fs, int steps,
                      const float *u, float *v, float *r, double (*gn)[U])
{
  double S[F][U] = { { 0 } }, A[U][U + 1] = { { 0 } };
  for (int s = 0; s < steps; s++) {
    double mean = 0;
    bool flat = true;
    for (int j = 0; j < k; j++) {
      mean += fs[s][j] / k;
      flat = flat && fs[s][j] == fs[s][0];
    }
    if (flat)
      continue;
    for (int j = 0; j < k; j++)
      for (int a = 0; a < F; a++)
        for (int b = 0; b < U; b++)
          S[a][b] += (fs[s][j] - mean) * xs[s][j * F + a] * us[s][b];
    for (int a = 0; a < U; a++)
      for (int b = 0; b < U; b++)
        A[a][b] += (double) us[s][a] * us[s][b];
  }
  for (int a = 0; a < U; a++) { /* [G + n0 I | u] -> [I | w] */
    A[a][a] += N0;
    A[a][U] = u[a];
  }
  for (int a = 0; gn && a < U; a++)
    for (int b = 0; b < U; b++)
      gn[a][b] = A[a][b];
  s_gauss_jordan (A);
  for (int a = 0; a < F; a++) {
    double x = 0;
    for (int b = 0; b < U; b++)
      x += S[a][b] * A[b][U] / A[b][b];
    v[a] = (float) x;
  }
  for (int b = 0; b < U; b++)
    r[b] = (float) (N0 * A[b][U] / A[b][b]);
}

/* Replica p's context steps after three acts: its N envs after act 1 (feedback in o2) and after
   act 2 (in o3), as s_expect takes them (xs points into items). */
typedef struct {
  const float *us[2 * N], *fs[2 * N], *xs[2 * N];
  float items[2 * N][k * F];
} steps_t;

static void s_steps (steps_t *st, int p, const obs_t *o1, const obs_t *o2, const obs_t *o3, const int32_t *sl1,
                     const int32_t *sl2)
{
  for (int s = 0; s < 2; s++)
    for (int i = 0; i < N; i++) {
      int e = p * N + i, q = s * N + i;
      const obs_t *o = s ? o2 : o1, *next = s ? o3 : o2;
      const int32_t *sl = s ? sl2 : sl1;
      st->us[q] = o->user + e * U;
      st->fs[q] = next->resp + e * R + k;
      for (int j = 0; j < k; j++)
        memcpy (st->items[q] + j * F, o->cand + (e * K + sl[e * k + j]) * F, F * sizeof (float));
      st->xs[q] = st->items[q];
    }
}

/* Three acts on fresh random batches: o2 carries the feedback to act 1's slates (env 1's flat at
   flat1 when flat1 >= 0), o3 to act 2's; done, unless NULL, ends those envs' sessions before act 3. */
static void s_three_acts (ra_target_t *t, obs_t *o1, obs_t *o2, obs_t *o3, int32_t *sl1, int32_t *sl2,
                          int32_t *sl3, float flat1, const uint8_t *done)
{
  s_obs (o1);
  s_obs (o2);
  s_obs (o3);
  ra_target_act (t, &o1->obs, false, sl1); /* a reset's response: nothing to add */
  for (int e = 0; e < P * N; e++)
    for (int j = 0; j < k; j++)
      o2->resp[e * R + k + j] = e == 1 && flat1 >= 0 ? flat1 : (float) ((e + j) % 3);
  ra_target_act (t, &o2->obs, false, sl2);
  for (int e = 0; e < P * N; e++)
    for (int j = 0; j < k; j++)
      o3->resp[e * R + k + j] = (float) ((2 * e + 3 * j) % 4) * 0.25f;
  if (done)
    ra_target_end_sessions (t, done, P * N);
  ra_target_act (t, &o3->obs, false, sl3);
}

/* Three acts with feedback (env 1's flat), then the augmented rows of the third act's users
   against T8 (and T9 with residual) computed here; then a clone and a reset. */
static void s_check_rows (bool residual)
{
  ra_target_cfg_t cfg = s_cfg (N0, true);
  cfg.context_residual = residual;
  ra_target_t *t = NULL;
  ra_error_t err;
  cr_assert_eq (ra_target_new (BE, &cfg, &t, &err), RA_OK, "%s", err.message);
  cr_assert (t->ctx_s && t->in_dim == U + F);
  obs_t o1, o2, o3;
  int32_t sl1[P * N * k], sl2[P * N * k], sl3[P * N * k];
  s_three_acts (t, &o1, &o2, &o3, sl1, sl2, sl3, 0.5f, NULL); /* ranks differ, but env 1 is flat */
  ra_obs_batch_t view;
  const ra_obs_batch_t *aug = ra__target_context_view (t, &o3.obs, &view);
  cr_assert_eq (aug->user_dim, U + F);
  cr_assert_eq (aug->response, o3.obs.response);
  for (int p = 0; p < P; p++) {
    steps_t st;
    s_steps (&st, p, &o1, &o2, &o3, sl1, sl2);
    for (int i = 0; i < N; i++) {
      const float *row = aug->user + (p * N + i) * (U + F), *u = o3.user + (p * N + i) * U;
      float v[F], r[U];
      s_expect (st.us, st.xs, st.fs, 2 * N, u, v, r, NULL);
      if (residual)
        for (int b = 0; b < U; b++)
          cr_assert_float_eq (row[b], r[b], 1e-5f * (1 + fabsf (r[b])), "replica %d env %d r[%d] %g vs %g", p, i, b,
                              row[b], r[b]);
      else
        cr_assert_eq (memcmp (row, u, U * sizeof (float)), 0, "the user comes first, unchanged");
      for (int a = 0; a < F; a++)
        cr_assert_float_eq (row[U + a], v[a], 1e-5f * (1 + fabsf (v[a])), "replica %d env %d v[%d] %g vs %g", p, i,
                            a, row[U + a], v[a]);
    }
  }

  ra_target_t *c = ra_target_clone (t); /* a clone acts on the same context */
  cr_assert (c);
  ra_obs_batch_t cview;
  const ra_obs_batch_t *caug = ra__target_context_view (c, &o3.obs, &cview);
  cr_assert_eq (memcmp (caug->user, aug->user, P * N * (U + F) * sizeof (float)), 0);
  ra_target_reset_context (t);
  aug = ra__target_context_view (t, &o3.obs, &view);
  for (int e = 0; e < P * N; e++) {
    for (int a = 0; a < F; a++)
      cr_assert_eq (aug->user[e * (U + F) + U + a], 0.0f, "reset: nothing known");
    for (int b = 0; b < U; b++) /* and r(u) = n0 (n0 I)^-1 u = u */
      cr_assert_float_eq (aug->user[e * (U + F) + b], o3.user[e * U + b], 1e-6f, "reset: r(u) is u");
  }
  ra_target_destroy (&c);
  ra_target_destroy (&t);
}

Test (target_context, the_rows_are_the_equation_per_replica) { s_check_rows (false); }

/* T9: with context_residual the user block is n0 (G + n0 I)^-1 u; the context block as before */
Test (target_context, the_residual_rows_are_t9) { s_check_rows (true); }

/* T10's yield of u from the context's steps: u . r(u) / u . u with r(u) as T9 (s_expect) */
static double s_yield (const float *const *us, const float *const *xs, const float *const *fs, int steps,
                       const float *u)
{
  float v[F], r[U];
  s_expect (us, xs, fs, steps, u, v, r, NULL);
  double ur = 0, uu = 0;
  for (int b = 0; b < U; b++) {
    ur += (double) u[b] * r[b];
    uu += (double) u[b] * u[b];
  }
  return ur / uu;
}

/* T10: three policies on one context (the first's after two acts, copied to the others before the
   third act): the affinity head with the yield (y), without it (n), the scorer alone (m, no head:
   the same MLP parameters, T7). Then y's scores are gamma m + (n - m), gamma from T10 here. */
Test (target_context, the_scorer_yields_by_t10_and_the_head_does_not)
{
  ra_target_cfg_t cy = s_cfg (N0, true), cn = s_cfg (N0, true), cm = s_cfg (N0, false);
  cy.scorer_yield = true;
  ra_target_t *y = NULL, *n = NULL, *m = NULL;
  ra_error_t err;
  cr_assert_eq (ra_target_new (BE, &cy, &y, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_target_new (BE, &cn, &n, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_target_new (BE, &cm, &m, &err), RA_OK, "%s", err.message);
  cr_assert (y->d_yield && y->ctx_yield && !n->d_yield && !n->ctx_yield, "buffers only with the yield");
  obs_t o1, o2, o3;
  s_obs (&o1);
  s_obs (&o2);
  s_obs (&o3);
  int32_t sl1[P * N * k], sl2[P * N * k], sl3[P * N * k];
  ra_target_act (y, &o1.obs, false, sl1);
  for (int e = 0; e < P * N; e++)
    for (int j = 0; j < k; j++)
      o2.resp[e * R + k + j] = (float) ((e + 2 * j) % 3);
  ra_target_act (y, &o2.obs, false, sl2);
  for (int p = 0; p < P; p++) {
    ra__target_context_copy (n, p, y, p);
    ra__target_context_copy (m, p, y, p);
  }
  for (int e = 0; e < P * N; e++)
    for (int j = 0; j < k; j++)
      o3.resp[e * R + k + j] = (float) ((3 * e + j) % 4) * 0.25f;
  ra_target_act (y, &o3.obs, false, sl3);
  ra_target_act (n, &o3.obs, false, sl3);
  ra_target_act (m, &o3.obs, false, sl3);
  double worst = 0, lowest = 1;
  for (int p = 0; p < P; p++) {
    steps_t st;
    s_steps (&st, p, &o1, &o2, &o3, sl1, sl2);
    for (int i = 0; i < N; i++) {
      double g = s_yield (st.us, st.xs, st.fs, 2 * N, o3.user + (p * N + i) * U);
      lowest = fmin (lowest, g);
      size_t row = (size_t) p * T * N + i; /* the act's rows are rollout slot 0 */
      for (int j = 0; j < K; j++) {
        double sm = m->pact[m->pi.n][row * K + j], sn = n->pact[n->pi.n][row * K + j];
        worst = fmax (worst, fabs (y->pact[y->pi.n][row * K + j] - (g * sm + (sn - sm))));
      }
    }
  }
  cr_assert_lt (lowest, 0.9, "the context has spoken: some yield is below 1 (lowest %g)", lowest);
  cr_assert_lt (worst, 1e-5, "scores differ from T10 by up to %g", worst);
  ra_target_reset_context (y); /* a new task: gamma = 1, the scorer at full weight */
  ra_obs_batch_t view;
  ra__target_context_view (y, &o3.obs, &view);
  for (int e = 0; e < P * N; e++)
    cr_assert_float_eq (y->ctx_yield[e], 1.0f, 1e-6f, "reset: yield %g", y->ctx_yield[e]);
  ra_target_destroy (&y);
  ra_target_destroy (&n);
  ra_target_destroy (&m);
}

/* T10 in the update: the scorer's output gradient is the scores' gradient times the row's yield, so
   its last layer's weights get sum over rows and candidates of gamma_row ds_row,j h_row,j (h that
   layer's input; the affinity head's gradient is of the unscaled ds: tests/policies/
   test_target_affinity.c). Its bias cannot tell: a slate's log-probability gradient sums to 0
   over the candidates. */
Test (target_context, the_scorer_gradient_is_scaled_by_the_yield)
{
  ra_target_cfg_t cy = s_cfg (N0, true);
  cy.scorer_yield = true;
  ra_target_t *y = NULL;
  ra_error_t err;
  cr_assert_eq (ra_target_new (BE, &cy, &y, &err), RA_OK, "%s", err.message);
  obs_t o[T + 1];
  for (int s = 0; s <= T; s++)
    s_obs (&o[s]);
  for (int s = 0; s < T; s++) {
    int32_t sl[P * N * k];
    float rew[P * N];
    uint8_t done[P * N] = { 0 };
    for (int e = 0; s > 0 && e < P * N; e++) /* feedback to the previous slates */
      for (int j = 0; j < k; j++)
        o[s].resp[e * R + k + j] = (float) ((e + j + s) % 3);
    ra_target_act (y, &o[s].obs, false, sl);
    for (int e = 0; e < P * N; e++)
      rew[e] = s_uniform ();
    ra_target_record (y, &o[s].obs, sl, rew, done);
  }
  cr_assert_eq (ra_target_grad (y, &o[T].obs, NULL, &err), RA_OK, "%s", err.message);
  char name[16];
  snprintf (name, sizeof name, "l%d.w", y->cfg.layers);
  int wi = ra_nn_params_find (y->params, name), L = y->pi.n;
  cr_assert_geq (wi, 0);
  size_t n = y->params->n, H = (size_t) y->pi.width[L - 2];
  const float *h = y->pact[L - 1]; /* [P, TNK, H]: the last layer's input */
  double worst = 0, apart = 0, lowest = 1;
  for (int p = 0; p < P; p++)
    for (size_t c = 0; c < H; c++) {
      double want = 0, unscaled = 0;
      for (int x = 0; x < T * N; x++) {
        size_t row = (size_t) p * T * N + x;
        lowest = fmin (lowest, y->h_yield[row]);
        for (int j = 0; j < K; j++) {
          double d = (double) y->d_dscores[row * K + j] * h[(row * K + j) * H + c];
          want += y->h_yield[row] * d;
          unscaled += d;
        }
      }
      double got = y->params->grad[(size_t) p * n + y->params->tensors[wi].offset + c];
      worst = fmax (worst, fabs (got - want));
      apart = fmax (apart, fabs (unscaled - want));
    }
  cr_assert_lt (lowest, 0.95, "the second step's rows have a context (lowest yield %g)", lowest);
  cr_assert_gt (apart, 1e-4, "the yield changes the gradient (%g)", apart);
  cr_assert_lt (worst, 1e-6, "the scorer's last-layer gradient differs from T10's by up to %g", worst);
  ra_target_destroy (&y);
}

/* T11: the context block is v(u) + E u, E's rows sigma L^-T z_a with L L^T = G + n0 I and z the
   replica's draw (acts since its reset) from its sampling stream's "TS" stream; one draw per act,
   read again identically until the next act; reset starts the draws over. */
Test (target_context, context_ts_reads_a_posterior_draw_per_act)
{
  const float sigma = 0.7f;
  ra_target_cfg_t cfg = s_cfg (N0, true);
  cfg.context_ts = sigma;
  ra_target_t *t = NULL, *off = s_new (N0, true, P);
  ra_error_t err;
  cr_assert_eq (ra_target_new (BE, &cfg, &t, &err), RA_OK, "%s", err.message);
  cr_assert (t->ctx_draw && !off->ctx_draw, "draws only with context_ts");
  obs_t o1, o2, o3;
  int32_t sl1[P * N * k], sl2[P * N * k], sl3[P * N * k];
  s_three_acts (t, &o1, &o2, &o3, sl1, sl2, sl3, -1, NULL);
  ra_obs_batch_t view;
  const ra_obs_batch_t *aug = ra__target_context_view (t, &o3.obs, &view);
  float rows[P * N * (U + F)];
  memcpy (rows, aug->user, sizeof rows);
  double worst = 0, noise = 0;
  for (int p = 0; p < P; p++) {
    cr_assert_eq (t->ctx_draw[p], 3u, "three acts, three draws");
    steps_t st;
    s_steps (&st, p, &o1, &o2, &o3, sl1, sl2);
    double gn[U][U], L[U][U] = { { 0 } }, E[F][U];
    float v[F], r[U];
    s_expect (st.us, st.xs, st.fs, 2 * N, o3.user + p * N * U, v, r, gn);
    for (int i = 0; i < U; i++) /* Cholesky, L L^T = G + n0 I */
      for (int j = 0; j <= i; j++) {
        double x = gn[i][j];
        for (int q = 0; q < j; q++)
          x -= L[i][q] * L[j][q];
        L[i][j] = i == j ? sqrt (x) : x / L[j][j];
      }
    ra_nn_rng_t z = t->rng[p];
    z.stream ^= 0x5453000000000000ull;
    z.counter = 3 * 2 * F * U;
    for (int a = 0; a < F; a++) { /* E[a] = sigma L^-T z_a: back substitution */
      double y[U];
      for (int b = 0; b < U; b++)
        y[b] = ra_nn_rng_normal (&z);
      for (int b = U - 1; b >= 0; b--) {
        for (int q = b + 1; q < U; q++)
          y[b] -= L[q][b] * y[q];
        y[b] /= L[b][b];
      }
      for (int b = 0; b < U; b++)
        E[a][b] = sigma * y[b];
    }
    for (int i = 0; i < N; i++) {
      const float *u = o3.user + (p * N + i) * U, *row = rows + (p * N + i) * (U + F);
      s_expect (st.us, st.xs, st.fs, 2 * N, u, v, r, NULL);
      for (int a = 0; a < F; a++) {
        double want = v[a];
        for (int b = 0; b < U; b++)
          want += E[a][b] * u[b];
        worst = fmax (worst, fabs (row[U + a] - want));
        noise = fmax (noise, fabs (want - v[a]));
      }
    }
  }
  cr_assert_gt (noise, 1e-2, "the draw moves the rows (%g)", noise);
  cr_assert_lt (worst, 1e-5, "the context block differs from T11's draw by up to %g", worst);
  aug = ra__target_context_view (t, &o3.obs, &view);
  cr_assert_eq (memcmp (aug->user, rows, sizeof rows), 0, "read again before the next act: the same draw");
  obs_t o4;
  s_obs (&o4); /* a reset's flat response: the context's S and G do not move, only the draw */
  memcpy (o4.user, o3.user, sizeof o4.user);
  ra_target_act (t, &o4.obs, false, sl3);
  aug = ra__target_context_view (t, &o4.obs, &view);
  cr_assert_neq (memcmp (aug->user, rows, sizeof rows), 0, "the next act reads a new draw");
  ra_target_reset_context (t);
  cr_assert_eq (t->ctx_draw[0], 0u, "reset starts the draws over");
  ra_target_destroy (&t);
  ra_target_destroy (&off);
}

/* T12: each env's rows read v(u) + M_e / (n_e + m0), M_e the centred feedback of its session's
   informative steps; an env marked done starts its next session empty at the next act. */
Test (target_context, context_session_adds_each_users_own_feedback)
{
  const float m0 = 1.5f;
  ra_target_cfg_t cfg = s_cfg (N0, true);
  cfg.context_session = m0;
  ra_target_t *t = NULL, *off = s_new (N0, true, P);
  ra_error_t err;
  cr_assert_eq (ra_target_new (BE, &cfg, &t, &err), RA_OK, "%s", err.message);
  cr_assert (t->ctx_m && !off->ctx_m, "session sums only with context_session");
  obs_t o1, o2, o3;
  int32_t sl1[P * N * k], sl2[P * N * k], sl3[P * N * k];
  uint8_t done[P * N] = { 0 };
  done[N] = 1; /* replica 1's first env: its user left after act 2's slate */
  s_three_acts (t, &o1, &o2, &o3, sl1, sl2, sl3, 1.0f, done); /* env 1 flat: nothing to tell apart */
  ra_obs_batch_t view;
  const ra_obs_batch_t *aug = ra__target_context_view (t, &o3.obs, &view);
  double worst = 0, session = 0;
  for (int p = 0; p < P; p++) {
    steps_t st;
    s_steps (&st, p, &o1, &o2, &o3, sl1, sl2);
    for (int i = 0; i < N; i++) {
      const float *u = o3.user + (p * N + i) * U, *row = aug->user + (p * N + i) * (U + F);
      float v[F], r[U];
      s_expect (st.us, st.xs, st.fs, 2 * N, u, v, r, NULL);
      double M[F] = { 0 }, n = 0;
      for (int s = 0; s < 2 && !done[p * N + i]; s++) { /* this env's two steps */
        const float *f = st.fs[s * N + i], *x = st.xs[s * N + i];
        double mean = 0;
        bool flat = true;
        for (int j = 0; j < k; j++) {
          mean += f[j] / k;
          flat = flat && f[j] == f[0];
        }
        if (flat)
          continue;
        n += 1;
        for (int j = 0; j < k; j++)
          for (int a = 0; a < F; a++)
            M[a] += (f[j] - mean) * x[j * F + a];
      }
      for (int a = 0; a < F; a++) {
        double want = v[a] + M[a] / (n + m0);
        worst = fmax (worst, fabs (row[U + a] - want));
        session = fmax (session, fabs (want - v[a]));
      }
    }
  }
  cr_assert_gt (session, 1e-2, "the session term moves the rows (%g)", session);
  cr_assert_lt (worst, 1e-5, "the context block differs from T12 by up to %g", worst);
  cr_assert (t->ctx_n[1] == 1 && t->ctx_n[0] == 2 && t->ctx_n[N] == 0, "steps counted: flat skipped, done emptied");
  ra_target_reset_context (t);
  for (int e = 0; e < P * N; e++)
    cr_assert (t->ctx_n[e] == 0 && t->ctx_m[e * F] == 0, "reset empties every session");
  ra_target_destroy (&t);
  ra_target_destroy (&off);
}

/* T13: with context_baseline = b every step counts, a slate without a click too, against the
   replica's click rate per rank over the slates the same act counts, b_j = (C_j + 1/k) / (V + 1 /
   (k b)): S += sum_j (f_j - b_j) x_j u^T and G += (sum_j b_j) u u^T, the session likewise (n +=
   sum_j b_j); an env marked done skips the next act's response (the reset's zeros). With
   context_handover = c0 > 0 (T14) each step adds alpha times that and 1 - alpha times T8's terms
   (f_j - mean f, weight 1 if not flat, else nothing), alpha = c0 / (c0 + the replica's steps
   not flat before the act). */
static void s_check_baseline (float c0)
{
  const float b = 0.125f, m0 = 1.5f;
  ra_target_cfg_t cfg = s_cfg (N0, true);
  cfg.context_baseline = b;
  cfg.context_session = m0;
  cfg.context_handover = c0;
  ra_target_t *t = NULL;
  ra_error_t err;
  cr_assert_eq (ra_target_new (BE, &cfg, &t, &err), RA_OK, "%s", err.message);
  obs_t o1, o2, o3;
  int32_t sl1[P * N * k], sl2[P * N * k], sl3[P * N * k];
  uint8_t done[P * N] = { 0 };
  done[N] = 1; /* replica 1's first env: act 3 sees its next episode's reset */
  s_three_acts (t, &o1, &o2, &o3, sl1, sl2, sl3, 0.0f, done); /* env 1: a slate without a click */
  ra_obs_batch_t view;
  const ra_obs_batch_t *aug = ra__target_context_view (t, &o3.obs, &view);
  double worst = 0, moved = 0, n1 = 0;
  for (int p = 0; p < P; p++) {
    steps_t st;
    s_steps (&st, p, &o1, &o2, &o3, sl1, sl2);
    double S[F][U] = { { 0 } }, A[U][U + 1] = { { 0 } }, M[N][F] = { { 0 } }, n[N] = { 0 };
    double rate[k] = { 0 }, expect = 0, alpha = 1, informative = 0;
    for (int q = 0; q < 2 * N; q++) {
      int i = q % N;
      if (i == 0) { /* a new act: the rates of the slates it counts, T13's weight */
        alpha = c0 > 0 ? c0 / (c0 + informative) : 1;
        double clicks[k] = { 0 }, slates = 0;
        for (int r = q; r < q + N; r++) {
          if (r >= N && done[p * N + r % N])
            continue;
          for (int j = 0; j < k; j++)
            clicks[j] += st.fs[r][j];
          slates += 1;
        }
        expect = 0;
        for (int j = 0; j < k; j++) {
          rate[j] = (clicks[j] + 1.0 / k) / (slates + 1.0 / (k * b));
          expect += rate[j];
        }
      }
      if (q >= N && done[p * N + i])
        continue; /* the reset's zeros */
      double mean = 0;
      bool flat = true;
      for (int j = 0; j < k; j++) {
        mean += st.fs[q][j] / k;
        flat = flat && st.fs[q][j] == st.fs[q][0];
      }
      for (int j = 0; j < k; j++) {
        double t13 = st.fs[q][j] - rate[j], t8 = flat ? 0 : st.fs[q][j] - mean;
        for (int a = 0; a < F; a++) {
          double w = (alpha * t13 + (1 - alpha) * t8) * st.xs[q][j * F + a];
          M[i][a] += w;
          for (int c = 0; c < U; c++)
            S[a][c] += w * st.us[q][c];
        }
      }
      double weight = alpha * expect + (1 - alpha) * !flat;
      n[i] += weight;
      for (int a = 0; a < U; a++)
        for (int c = 0; c < U; c++)
          A[a][c] += weight * st.us[q][a] * st.us[q][c];
      informative += !flat; /* counted for the next act's alpha */
    }
    if (p == 0)
      n1 = n[1];
    for (int i = 0; i < N; i++) {
      const float *u = o3.user + (p * N + i) * U, *row = aug->user + (p * N + i) * (U + F);
      double G[U][U + 1];
      memcpy (G, A, sizeof G);
      for (int a = 0; a < U; a++) { /* [G + n0 I | u] */
        G[a][a] += N0;
        G[a][U] = u[a];
      }
      s_gauss_jordan (G);
      bool ended = done[p * N + i];
      for (int a = 0; a < F; a++) {
        double v = 0;
        for (int c = 0; c < U; c++)
          v += S[a][c] * G[c][U] / G[c][c];
        double want = v + (ended ? 0 : M[i][a] / (n[i] + m0));
        worst = fmax (worst, fabs (row[U + a] - want));
        moved = fmax (moved, fabs (want));
      }
    }
  }
  cr_assert_gt (moved, 1e-2, "the context moved (%g)", moved);
  cr_assert_lt (worst, 1e-5, "the context block differs from T13 (c0 %g) by up to %g", (double) c0, worst);
  cr_assert_float_eq (t->ctx_n[1], n1, 1e-12, "a slate without a click counts");
  cr_assert (n1 > k * b * (c0 > 0 ? c0 / (c0 + 2) : 1), "both of env 1's slates count (%g)", n1);
  cr_assert_eq (t->ctx_n[N], 0.0, "a done env starts its next session empty");
  ra_target_destroy (&t);
}

Test (target_context, context_baseline_counts_every_step_against_each_ranks_click_rate) { s_check_baseline (0); }

/* T14: c0 = 1.5 weighs the third act's T13 terms 1.5 / 3.5 in replica 0 and 1.5 / 4.5 in replica
   1 (two and three steps with a click before it), the rest T8's. */
Test (target_context, context_handover_weighs_t13_against_t8_as_the_task_clicks) { s_check_baseline (1.5f); }

/* T15 computed here from replica p's steps in order: each informative step's centred feedback
   into the nearest prototype, or a new one (the unit user row, as float) where the nearest's
   kernel weight is below 1/2 and fewer than the cap exist; then v(u), r(u) and gamma(u) at u.
   The number of prototypes into *nproto. */
static void s_expect_kernel (const float *const *us, const float *const *xs, const float *const *fs, int steps,
                             const float *u, double beta, float *v, float *r, double *gamma, int *nproto)
{
  enum { C = RA_TARGET_KERNEL_PROTOTYPES };
  static float proto[C][U];
  static double pk[C], pv[C][F];
  int n = 0;
  for (int s = 0; s < steps; s++) {
    double mean = 0, y[F] = { 0 }, uu = 0;
    bool flat = true;
    for (int j = 0; j < k; j++) {
      mean += fs[s][j] / k;
      flat = flat && fs[s][j] == fs[s][0];
    }
    for (int b = 0; b < U; b++)
      uu += (double) us[s][b] * us[s][b];
    if (flat || uu == 0)
      continue;
    for (int j = 0; j < k; j++)
      for (int a = 0; a < F; a++)
        y[a] += (fs[s][j] - mean) * xs[s][j * F + a];
    int best = -1;
    double best_k = 0;
    for (int q = 0; q < n; q++) {
      double dot = 0;
      for (int b = 0; b < U; b++)
        dot += (double) proto[q][b] * us[s][b];
      double kq = exp (beta * (dot / sqrt (uu) - 1));
      if (best < 0 || kq > best_k)
        best = q, best_k = kq;
    }
    if (best < 0 || (best_k < 0.5 && n < C)) {
      best = n++;
      pk[best] = 0;
      for (int b = 0; b < U; b++)
        proto[best][b] = (float) (us[s][b] / sqrt (uu));
      for (int a = 0; a < F; a++)
        pv[best][a] = 0;
    }
    pk[best] += 1;
    for (int a = 0; a < F; a++)
      pv[best][a] += y[a];
  }
  double uu = 0, K = 0, V[F] = { 0 };
  for (int b = 0; b < U; b++)
    uu += (double) u[b] * u[b];
  for (int q = 0; q < n; q++) {
    double dot = 0;
    for (int b = 0; b < U; b++)
      dot += (double) proto[q][b] * u[b];
    double kq = exp (beta * (dot / sqrt (uu) - 1));
    K += kq * pk[q];
    for (int a = 0; a < F; a++)
      V[a] += kq * pv[q][a];
  }
  for (int a = 0; a < F; a++)
    v[a] = (float) (V[a] / (K + N0));
  for (int b = 0; b < U; b++)
    r[b] = (float) (N0 * u[b] / (K + N0));
  *gamma = N0 / (K + N0);
  *nproto = n;
}

/* T15 with T9 and T10 over `acts` acts of fresh random batches (env 1's feedback flat at the
   second act): every row's user block, context block and yield against s_expect_kernel; the
   prototypes each replica made as expected; then a clone reads the same rows and a reset
   forgets them. */
static void s_check_kernel (double beta, int acts, int want_lo, int want_hi)
{
  enum { A = 100 };
  cr_assert (acts >= 2 && acts <= A);
  ra_target_cfg_t cfg = s_cfg (N0, true);
  cfg.context_kernel = (float) beta, cfg.context_residual = true, cfg.scorer_yield = true;
  ra_target_t *t = NULL;
  ra_error_t err;
  cr_assert_eq (ra_target_new (BE, &cfg, &t, &err), RA_OK, "%s", err.message);
  static obs_t o[A];
  static int32_t sl[A][P * N * k];
  for (int a = 0; a < acts; a++) {
    s_obs (&o[a]);
    for (int e = 0; a > 0 && e < P * N; e++) /* the feedback to act a - 1's slates */
      for (int j = 0; j < k; j++)
        o[a].resp[e * R + k + j] = e == 1 && a == 1 ? 1.0f : (float) ((e + 2 * j + a) % 3);
    ra_target_act (t, &o[a].obs, false, sl[a]);
  }
  ra_obs_batch_t view;
  const ra_obs_batch_t *aug = ra__target_context_view (t, &o[acts - 1].obs, &view);
  for (int p = 0; p < P; p++) {
    const float *us[A * N], *fs[A * N], *xs[A * N];
    static float items[A * N][k * F];
    int steps = 0;
    for (int a = 0; a + 1 < acts; a++)
      for (int i = 0; i < N; i++, steps++) {
        int e = p * N + i;
        us[steps] = o[a].user + e * U;
        fs[steps] = o[a + 1].resp + e * R + k;
        for (int j = 0; j < k; j++)
          memcpy (items[steps] + j * F, o[a].cand + (e * K + sl[a][e * k + j]) * F, F * sizeof (float));
        xs[steps] = items[steps];
      }
    for (int i = 0; i < N; i++) {
      int e = p * N + i, made = 0;
      const float *row = aug->user + e * (U + F), *u = o[acts - 1].user + e * U;
      float v[F], r[U];
      double gamma;
      s_expect_kernel (us, xs, fs, steps, u, beta, v, r, &gamma, &made);
      cr_assert_eq (t->ctx_nproto[p], made, "replica %d: %d prototypes, expected %d", p, t->ctx_nproto[p], made);
      cr_assert (made >= want_lo && made <= want_hi, "replica %d made %d prototypes, outside [%d, %d]", p, made,
                 want_lo, want_hi);
      for (int b = 0; b < U; b++)
        cr_assert_float_eq (row[b], r[b], 1e-5f * (1 + fabsf (r[b])), "replica %d env %d r[%d] %g vs %g", p, i, b,
                            row[b], r[b]);
      for (int a = 0; a < F; a++)
        cr_assert_float_eq (row[U + a], v[a], 1e-5f * (1 + fabsf (v[a])), "replica %d env %d v[%d] %g vs %g", p, i,
                            a, row[U + a], v[a]);
      cr_assert_float_eq (t->ctx_yield[e], gamma, 1e-5, "replica %d env %d yield %g vs %g", p, i, t->ctx_yield[e],
                          gamma);
    }
  }
  ra_target_t *c = ra_target_clone (t);
  cr_assert (c);
  ra_obs_batch_t cview;
  const ra_obs_batch_t *caug = ra__target_context_view (c, &o[acts - 1].obs, &cview);
  cr_assert_eq (memcmp (caug->user, aug->user, P * N * (U + F) * sizeof (float)), 0, "a clone reads the same rows");
  ra_target_reset_context (t);
  aug = ra__target_context_view (t, &o[acts - 1].obs, &view);
  for (int e = 0; e < P * N; e++) {
    for (int a = 0; a < F; a++)
      cr_assert_eq (aug->user[e * (U + F) + U + a], 0.0f, "reset: nothing known");
    cr_assert_float_eq (t->ctx_yield[e], 1.0f, 1e-6f, "reset: yield 1");
  }
  ra_target_destroy (&c);
  ra_target_destroy (&t);
}

/* a wide kernel: users merge into few prototypes */
Test (target_context, context_kernel_merges_similar_users_by_t15) { s_check_kernel (0.5, 3, 1, 2); }

/* a sharp one over many acts: every user its own prototype until the cap, then the nearest */
Test (target_context, context_kernel_past_its_prototype_cap_is_t15)
{
  s_check_kernel (300, 100, RA_TARGET_KERNEL_PROTOTYPES, RA_TARGET_KERNEL_PROTOTYPES);
}

Test (target_context, the_affinity_context_block_starts_at_the_identity)
{
  ra_target_t *t = s_new (N0, true, P);
  size_t n = t->params->n;
  float *flat = malloc (sizeof (float) * n * P);
  ra_target_get_params (t, flat);
  cr_assert_eq (t->params->tensors[t->aff_w].shape[0], F);
  cr_assert_eq (t->params->tensors[t->aff_w].shape[1], U + F);
  for (int p = 0; p < P; p++) {
    const float *A = flat + p * n + t->params->tensors[t->aff_w].offset;
    const float *b = flat + p * n + t->params->tensors[t->aff_b].offset;
    for (int a = 0; a < F; a++) {
      cr_assert_eq (b[a], 0.0f);
      for (int c = 0; c < U + F; c++)
        cr_assert_eq (A[a * (U + F) + c], c == U + a ? 1.0f : 0.0f, "A[%d][%d]", a, c);
    }
  }
  free (flat);
  ra_target_destroy (&t);
}

/* The settings a policy built from cfg writes to path, read back over the defaults. */
static ra_target_cfg_t s_round_trip (const ra_target_cfg_t *cfg, const char *path)
{
  ra_target_t *t = NULL;
  ra_error_t err;
  cr_assert_eq (ra_target_new (BE, cfg, &t, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_target_save (t, path, &err), RA_OK, "%s", err.message);
  ra_target_destroy (&t);
  ra_target_cfg_t back;
  ra_target_cfg_default (&back);
  cr_assert_eq (ra_target_checkpoint_settings (path, &back, &err), RA_OK, "%s", err.message);
  return back;
}

/* A config value ra_target_cfg_apply refuses, naming its key. */
static void s_value_refused (ra_kv_t kv)
{
  ra_target_cfg_t c;
  ra_target_cfg_default (&c);
  ra_error_t err;
  cr_assert_eq (ra_target_cfg_apply (&c, &kv, 1, NULL, &err), RA_ERR_BAD_CONFIG, "%s", kv.key);
  cr_assert (strstr (err.message, kv.key), "%s", err.message);
}

/* A configuration ra_target_new refuses: the message names quoted (and also, unless NULL). */
static void s_setting_refused (const ra_target_cfg_t *c, const char *quoted, const char *also)
{
  ra_target_t *none = NULL;
  ra_error_t err;
  cr_assert_eq (ra_target_new (BE, c, &none, &err), RA_ERR_BAD_CONFIG, "%s", quoted);
  cr_assert (strstr (err.message, quoted) && (!also || strstr (err.message, also)), "%s", err.message);
}

Test (target_context, bad_values_are_refused_and_a_checkpoint_keeps_the_setting)
{
  ra_error_t err;
  s_value_refused ((ra_kv_t) { .key = "context", .type = RA_KV_NUM, .num = -1 });
  s_value_refused ((ra_kv_t) { .key = "context_residual", .type = RA_KV_STR, .str = "maybe" });
  s_value_refused ((ra_kv_t) { .key = "scorer_yield", .type = RA_KV_STR, .str = "maybe" });
  s_value_refused ((ra_kv_t) { .key = "context_ts", .type = RA_KV_NUM, .num = -0.5 });
  s_value_refused ((ra_kv_t) { .key = "context_session", .type = RA_KV_NUM, .num = -1 });
  s_value_refused ((ra_kv_t) { .key = "context_baseline", .type = RA_KV_NUM, .num = 1.5 });
  s_value_refused ((ra_kv_t) { .key = "context_handover", .type = RA_KV_NUM, .num = -1 });
  s_value_refused ((ra_kv_t) { .key = "context_kernel", .type = RA_KV_NUM, .num = -1 });
  ra_target_cfg_t c = s_cfg (0, false);
  c.context_residual = true; /* T9 without T8: nothing to read r(u) from */
  s_setting_refused (&c, "'context_residual'", NULL);
  c = s_cfg (0, false);
  c.scorer_yield = true; /* T10 without T8 */
  s_setting_refused (&c, "'scorer_yield'", NULL);
  c = s_cfg (0, false);
  c.context_ts = 0.5f; /* T11 without T8 */
  s_setting_refused (&c, "'context_ts'", NULL);
  c = s_cfg (0, false);
  c.context_session = 4; /* T12 without T8 */
  s_setting_refused (&c, "'context_session'", NULL);
  c = s_cfg (0, false);
  c.context_baseline = 0.1f; /* T13 without T8 */
  s_setting_refused (&c, "'context_baseline'", NULL);
  c = s_cfg (N0, false);
  c.context_handover = 8; /* T14 without T13 */
  s_setting_refused (&c, "'context_handover'", "'context_baseline'");
  c = s_cfg (0, false);
  c.context_kernel = 2; /* T15 without T8 */
  s_setting_refused (&c, "'context_kernel'", "'context'");
  c = s_cfg (N0, false);
  c.context_kernel = 2, c.context_ts = 0.5f; /* T11 draws from the linear regression T15 replaces */
  s_setting_refused (&c, "'context_kernel'", "'context_ts'");
  c = s_cfg (N0, false);
  c.response_dim = k + 1; /* the feedback block ends past it */
  s_setting_refused (&c, "'context'", NULL);

  ra_target_t *t = s_new (N0, false, 1);
  char path[64];
  snprintf (path, sizeof path, "/tmp/test_target_context_%d.safetensors", (int) getpid ());
  cr_assert_eq (ra_target_save (t, path, &err), RA_OK, "%s", err.message);
  ra_target_cfg_t back;
  ra_target_cfg_default (&back);
  cr_assert_eq (ra_target_checkpoint_settings (path, &back, &err), RA_OK, "%s", err.message);
  cr_assert_eq (back.context, N0);
  cr_assert_not (back.context_residual);
  /* off, the file has no context_residual key: the bytes a policy wrote before T9 existed */
  FILE *f = fopen (path, "rb");
  char head[4096] = { 0 };
  cr_assert (f && fread (head, 1, sizeof head - 1, f) > 0);
  fclose (f);
  cr_assert_null (strstr (head, "context_residual"), "T9 off writes no key");
  cr_assert_null (strstr (head, "scorer_yield"), "nor T10 off");
  cr_assert_null (strstr (head, "context_ts"), "nor T11 off");
  cr_assert_null (strstr (head, "context_session"), "nor T12 off");
  cr_assert_null (strstr (head, "context_baseline"), "nor T13 off");
  cr_assert_null (strstr (head, "context_handover"), "nor T14 off");
  cr_assert_null (strstr (head, "context_kernel"), "nor T15 off");
  ra_target_cfg_t rc = s_cfg (N0, false);
  rc.population = 1;
  rc.context_residual = true;
  back = s_round_trip (&rc, path);
  cr_assert (back.context_residual, "the residual setting comes back from the checkpoint");
  cr_assert_not (back.scorer_yield);
  rc.context_residual = false;
  rc.scorer_yield = true;
  back = s_round_trip (&rc, path);
  cr_assert (back.scorer_yield && !back.context_residual, "the yield comes back from the checkpoint alone");
  rc.scorer_yield = false;
  rc.context_ts = 0.25f;
  back = s_round_trip (&rc, path);
  cr_assert (back.context_ts == 0.25f && !back.scorer_yield, "sigma comes back from the checkpoint");
  rc.context_ts = 0;
  rc.context_session = 3;
  back = s_round_trip (&rc, path);
  cr_assert (back.context_session == 3 && back.context_ts == 0, "m0 comes back from the checkpoint");
  rc.context_session = 0;
  rc.context_baseline = 0.0625f;
  back = s_round_trip (&rc, path);
  cr_assert (back.context_baseline == 0.0625f && back.context_session == 0, "b comes back from the checkpoint");
  rc.context_handover = 48;
  back = s_round_trip (&rc, path);
  cr_assert (back.context_handover == 48 && back.context_baseline == 0.0625f, "c0 comes back from the checkpoint");
  rc.context_baseline = rc.context_handover = 0;
  rc.context_kernel = 4.5f;
  back = s_round_trip (&rc, path);
  cr_assert (back.context_kernel == 4.5f && back.context_handover == 0, "beta comes back from the checkpoint");
  cr_assert_eq (ra_target_save (t, path, &err), RA_OK, "%s", err.message);
  ra_target_t *same = s_new (N0, false, 1), *plain = s_new (0, false, 1);
  cr_assert_eq (ra_target_load (same, path, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_target_load (plain, path, &err), RA_ERR_BAD_CONFIG, "a policy without the context refuses it");
  cr_assert (strstr (err.message, "context"), "%s", err.message);
  cr_assert_eq (ra_target_save (plain, path, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_target_load (same, path, &err), RA_ERR_BAD_CONFIG, "and the other way round");
  cr_assert (strstr (err.message, "context"), "%s", err.message);
  unlink (path);
  ra_target_destroy (&t);
  ra_target_destroy (&same);
  ra_target_destroy (&plain);
}

/* recarena-meta --checkpoint-in of a context-less file with --context (docs/meta.md 5): every
   tensor copied, the columns reading v(u) added at 0 and the affinity head's block on v at I, so
   the policy scores as the file does while its context is empty and reads the context once it
   has feedback. A file with the context is refused. */
Test (target_context, a_file_without_the_context_loads_with_the_context_columns_added)
{
  ra_target_t *src = s_new (0, true, 1), *wide = s_new (N0, true, P);
  size_t n = src->params->n;
  float *flat = malloc (sizeof (float) * n);
  ra_target_get_params (src, flat);
  for (int i = src->aff_w; i <= src->aff_b; i++) /* the head starts at 0: give it weights to copy */
    for (size_t j = 0; j < src->params->tensors[i].numel; j++)
      flat[src->params->tensors[i].offset + j] = s_uniform () - 0.5f;
  ra_target_set_params (src, flat);
  free (flat);
  char path[64];
  snprintf (path, sizeof path, "/tmp/test_target_addctx_%d.safetensors", (int) getpid ());
  ra_error_t err;
  cr_assert_eq (ra_target_save (src, path, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_target_load (wide, path, &err), RA_ERR_BAD_CONFIG, "a plain load still refuses it");
  cr_assert_eq (ra_target_load_adding_context (wide, path, &err), RA_OK, "%s", err.message);

  obs_t o1, o2;
  s_obs (&o1);
  s_obs (&o2);
  int32_t sl[P * N * k];
  ra_target_act (wide, &o1.obs, false, sl); /* the context is empty: v(u) = 0 */
  double worst = 0;
  for (int p = 0; p < P; p++) {
    ra_obs_batch_t block = o1.obs; /* replica p's envs, for the one-replica file policy */
    block.num_envs = N;
    block.user += p * N * U;
    block.candidates += p * N * K * F;
    block.response += p * N * R;
    ra_target_act (src, &block, false, sl);
    for (int i = 0; i < N * K; i++)
      worst = fmax (worst, fabs (wide->pact[wide->pi.n][(size_t) p * T * N * K + i] - src->pact[src->pi.n][i]));
  }
  cr_assert_lt (worst, 1e-5, "with an empty context the scores are the file's (differ by %g)", worst);

  for (int e = 0; e < P * N; e++) /* feedback: the context fills and the identity block reads it */
    for (int j = 0; j < k; j++)
      o2.resp[e * R + k + j] = (float) ((e + j) % 2);
  ra_target_act (wide, &o2.obs, false, sl);
  ra_obs_batch_t block = o2.obs;
  block.num_envs = N;
  ra_target_act (src, &block, false, sl);
  double off = 0, moved = 0; /* replica 0: the file's scores plus c_j . v(u), nothing through the MLP */
  for (int i = 0; i < N; i++)
    for (int j = 0; j < K; j++) {
      const float *v = wide->h_aug + (size_t) i * (U + F) + U, *c = o2.cand + ((size_t) i * K + j) * F;
      double cv = 0;
      for (int a = 0; a < F; a++)
        cv += (double) c[a] * v[a];
      double d = wide->pact[wide->pi.n][i * K + j] - src->pact[src->pi.n][i * K + j];
      off = fmax (off, fabs (d - cv));
      moved = fmax (moved, fabs (d));
    }
  cr_assert_gt (moved, 1e-3, "the context is read once it has feedback");
  cr_assert_lt (off, 1e-5, "the scores are the file's plus c . v(u) (off by %g)", off);

  cr_assert_eq (ra_target_save (wide, path, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_target_load_adding_context (wide, path, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "was trained with the task context"), "%s", err.message);
  cr_assert_eq (ra_target_load_adding_context (src, path, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "context > 0"), "%s", err.message);
  unlink (path);
  ra_target_destroy (&src);
  ra_target_destroy (&wide);
}
