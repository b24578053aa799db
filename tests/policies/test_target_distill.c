/*  tests/policies/test_target_distill.c - distillation from a privileged teacher (docs/agents.md
    T16) and the paired rollout source it trains through (agents/policies/rollout_paired.h).

    Checked on ECommerce-v1 with hidden tastes, the second view revealing them (docs/sims/shared.md
    4.7): the paired source shows exactly what a lone source with the same seed shows, its second
    view differs in the users' rows only, and sources that do not run the same envs are an error;
    with a teacher attached, the update's score gradient minus the one without equals
    -w (1/M) d log P_tau(teacher's slate) / ds computed here through the reference Plackett-Luce,
    the teacher's slates are its top-k on the second view (T18: the samples a twin teacher draws
    there), the student's own slates do not change,
    and the loss summary is the mean -log P_tau; gated (T17), each row's term is weighted by 1 -
    its scorer yield (nothing at the first step); a privileged critic (T19) values each row with the
    teacher's view of the user; bad teachers, weights, views, a gate without a scorer yield and a
    critic's view of another user width are refused. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agents/nn/nn_ref.h"
#include "agents/policies/rollout_inproc.h"
#include "agents/policies/rollout_paired.h"
#include "agents/policies/target_int.h"

enum { P = 2, N = 3, T = 4 };

static ra_nn_backend_t *BE;
static void setup (void) { cr_assert_eq (ra_nn_backend_open ("cpu", NULL, &BE, NULL), RA_OK); }
static void teardown (void) { ra_nn_backend_destroy (&BE); }
TestSuite (target_distill, .init = setup, .fini = teardown, .timeout = 120);

/* An in-process ECommerce-v1 source of n envs with hidden tastes (revealed when reveal), on
   train:3 (the default task is never hidden), reset. */
static ra_rollout_t *s_source (int n, uint64_t seed, bool reveal)
{
  ra_kv_t cfg[] = { { .key = "hidden_tastes", .type = RA_KV_NUM, .num = 1 },
                    { .key = "reveal_tastes", .type = RA_KV_BOOL, .num = 1 } };
  ra_rollout_inproc_opts_t o = { .env = "ECommerce-v1", .num_envs = n, .seed = seed, .config = cfg,
                                 .n_config = reveal ? 2 : 1 };
  ra_rollout_t *src = NULL;
  ra_error_t err;
  cr_assert_eq (ra_rollout_inproc_new (&o, &src, &err), RA_OK, "%s", err.message);
  return src;
}

static ra_rollout_t *s_paired (ra_rollout_t *a, ra_rollout_t *b)
{
  ra_rollout_t *p = NULL;
  ra_error_t err;
  cr_assert_eq (ra_rollout_paired_new (a, b, &p, &err), RA_OK, "%s", err.message);
  return p;
}

static void s_start (ra_rollout_t *src)
{
  ra_error_t err;
  cr_assert_eq (ra_rollout_set_task (src, "train", 3, NULL, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_rollout_reset (src, NULL, &err), RA_OK, "%s", err.message);
}

static size_t s_floats (const ra_obs_batch_t *o, bool users)
{
  return (size_t) o->num_envs * (users ? (size_t) o->user_dim : (size_t) o->num_candidates * o->cand_dim);
}

Test (target_distill, the_paired_source_shows_the_first_and_keeps_the_second_in_step)
{
  ra_rollout_t *hid = s_source (N, 31, false), *rev = s_source (N, 31, true), *alone = s_source (N, 31, false);
  ra_rollout_t *pair = s_paired (hid, rev);
  s_start (pair);
  s_start (alone);
  const ra_obs_batch_t *second = ra_rollout_paired_second (pair);
  cr_assert_null (ra_rollout_paired_second (alone), "only a paired source has a second view");
  int K = alone->obs.num_candidates, k = alone->obs.slate_size, moved = 0;
  int32_t sl[N * 8];
  ra_error_t err;
  for (int s = 0; s < 40; s++) {
    const ra_obs_batch_t *x = &pair->obs, *y = &alone->obs;
    cr_assert_eq (memcmp (x->user, y->user, s_floats (x, true) * sizeof (float)), 0, "step %d: users", s);
    cr_assert_eq (memcmp (x->candidates, y->candidates, s_floats (x, false) * sizeof (float)), 0, "step %d", s);
    cr_assert_eq (memcmp (second->candidates, x->candidates, s_floats (x, false) * sizeof (float)), 0);
    for (int i = 0; i < N; i++)
      moved += memcmp (second->user + (size_t) i * x->user_dim, x->user + (size_t) i * x->user_dim,
                       (size_t) x->user_dim * sizeof (float)) != 0;
    for (int i = 0; i < N; i++)
      for (int j = 0; j < k; j++)
        sl[i * k + j] = (int32_t) ((s + 2 * i + j) % K);
    cr_assert_eq (ra_rollout_step (pair, sl, &err), RA_OK, "%s", err.message);
    cr_assert_eq (ra_rollout_step (alone, sl, &err), RA_OK, "%s", err.message);
    cr_assert_eq (memcmp (pair->reward, alone->reward, N * sizeof (float)), 0, "step %d: rewards", s);
  }
  cr_assert_gt (moved, 20, "the second view reveals the tastes in the users' rows (%d of 120 rows moved)", moved);
  ra_rollout_destroy (&pair);
  ra_rollout_destroy (&hid);
  ra_rollout_destroy (&rev);
  ra_rollout_destroy (&alone);
}

Test (target_distill, paired_sources_that_run_other_envs_are_an_error)
{
  ra_rollout_t *a = s_source (N, 31, false), *b = s_source (N, 32, true);
  ra_rollout_t *pair = s_paired (a, b);
  ra_error_t err;
  cr_assert_eq (ra_rollout_set_task (pair, "train", 3, NULL, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_rollout_reset (pair, NULL, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "paired sources' candidates differ after reset"), "%s", err.message);
  ra_rollout_destroy (&pair);
  ra_rollout_destroy (&a);
  ra_rollout_destroy (&b);
}

/* context n0 > 0: the policy reads a task context (T8) and its scorer yields (T10) */
static ra_target_t *s_policy (const ra_obs_batch_t *o, int pop, int envs, int rollout, uint64_t seed, float n0)
{
  ra_target_cfg_t c;
  ra_target_cfg_default (&c);
  c.num_envs = envs, c.num_candidates = o->num_candidates, c.slate_size = o->slate_size;
  c.user_dim = o->user_dim, c.cand_dim = o->cand_dim, c.response_dim = o->response_dim;
  c.hidden = 8, c.layers = 1, c.rollout = rollout, c.population = pop, c.seed = seed;
  c.temp = 0.5f, c.clip_norm = 0; /* the raw gradient: nothing rescales the two policies' */
  c.context = n0, c.scorer_yield = n0 > 0;
  c.context_baseline = n0 > 0 ? 0.1f : 0.0f; /* T13: every step informs, clicked or not */
  ra_target_t *t = NULL;
  ra_error_t err;
  cr_assert_eq (ra_target_new (BE, &c, &t, &err), RA_OK, "%s", err.message);
  return t;
}

/* A teacher with scores far from uniform (its last layer is not scaled down). */
static ra_target_t *s_teacher (const ra_obs_batch_t *o)
{
  ra_target_t *t = s_policy (o, 1, P * N, 1, 9, 0);
  size_t n = ra_target_num_params (t);
  float *w = malloc (n * sizeof (float));
  ra_nn_rng_t r;
  ra_nn_rng_init (&r, 77, 0);
  for (size_t j = 0; j < n; j++)
    w[j] = (float) ((ra_nn_rng_u64 (&r) >> 11) * 0x1.0p-53 - 0.5);
  ra_target_set_params (t, w);
  free (w);
  return t;
}

#define OPTS(w, g, smp) (&(ra_target_teacher_opts_t) { .weight = (w), .gate = (g), .sample = (smp) })
#define CRITIC(w) (&(ra_target_teacher_opts_t) { .weight = (w), .critic = true })

/* One rollout of a student with the teacher and one without, on the same envs: their score
   gradients differ by T16's term, times 1 - each row's yield when gated (T17); the teacher's
   slates are its top-k, or its samples (T18). */
static void s_imitation_term (bool gate, bool sample)
{
  const float w = 2.5f, n0 = gate ? 0.5f : 0.0f;
  ra_rollout_t *hid = s_source (P * N, 41, false), *rev = s_source (P * N, 41, true);
  ra_rollout_t *pair = s_paired (hid, rev), *alone = s_source (P * N, 41, false);
  ra_rollout_t *hid2 = s_source (P * N, 41, false), *rev2 = s_source (P * N, 41, true);
  ra_rollout_t *replay = s_paired (hid2, rev2);
  s_start (pair);
  s_start (alone);
  s_start (replay);
  ra_target_t *a = s_policy (&pair->obs, P, N, T, 5, n0), *b = s_policy (&pair->obs, P, N, T, 5, n0);
  ra_target_t *teacher = s_teacher (&pair->obs), *twin = s_teacher (&pair->obs);
  ra_error_t err;
  cr_assert_eq (ra_target_set_teacher (a, teacher, ra_rollout_paired_second (pair), OPTS (w, gate, sample), &err),
                RA_OK, "%s", err.message);
  ra_target_stats_t sa = { 0 };
  cr_assert_eq (ra_target_begin_rollout (a, pair, NULL, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_target_begin_rollout (b, alone, NULL, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_target_train_rollout (a, pair, &sa, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_target_train_rollout (b, alone, NULL, &err), RA_OK, "%s", err.message);
  const int K = a->cfg.num_candidates, k = a->cfg.slate_size, TN = T * N;
  cr_assert_eq (memcmp (a->h_slate, b->h_slate, (size_t) P * TN * k * sizeof (int32_t)), 0,
                "asking the teacher changes none of the student's own slates");

  /* the teacher's slates are its top-k on the second view of each step, or the samples a twin
     teacher (same parameters, same stream) draws there (replayed: begin_rollout reset the envs
     once more) */
  cr_assert_eq (ra_rollout_reset (replay, NULL, &err), RA_OK, "%s", err.message);
  int32_t want_sl[P * N * 8], topk[P * N * 8], played[P * N * 8];
  int not_topk = 0;
  for (int s = 0; s < T; s++) {
    ra_target_act (twin, ra_rollout_paired_second (replay), !sample, want_sl);
    ra_target_act (teacher, ra_rollout_paired_second (replay), true, topk); /* top-k draws nothing */
    for (int p = 0; p < P; p++)
      for (int i = 0; i < N; i++) {
        int e = p * N + i;
        not_topk += memcmp (want_sl + e * k, topk + e * k, (size_t) k * sizeof (int32_t)) != 0;
        for (int j = 0; j < k; j++) {
          size_t row = (size_t) p * TN + (size_t) s * N + i;
          cr_assert_eq (a->h_tslate[row * k + j], want_sl[e * k + j], "step %d env %d rank %d", s, i, j);
          played[e * k + j] = a->h_slate[row * k + j];
        }
      }
    cr_assert_eq (ra_rollout_step (replay, played, &err), RA_OK, "%s", err.message);
  }
  if (sample)
    cr_assert_gt (not_topk, 0, "a sampling teacher's slates must differ from its top-k somewhere");

  /* d scores (a) - d scores (b) = (1/tau) (-w g / M) d log P(s / tau; teacher's slate) / d(s / tau),
     g = 1, or 1 - the row's yield when gated: 1 - 1 = 0 at the first step, when the context is empty */
  const double tau = a->cfg.temp, M = TN;
  const float *scores = a->pact[a->pi.n]; /* [P, TN, K], the same in b: same parameters, same rows */
  double worst = 0, big = 0, least_yield = 1;
  for (int p = 0; p < P; p++) {
    double im = 0;
    for (int x = 0; x < TN; x++) {
      size_t row = (size_t) p * TN + x;
      double sc[64], d[64], h, lp;
      for (int j = 0; j < K; j++)
        sc[j] = scores[row * K + j] / tau;
      lp = ra_nn_ref_pl (sc, a->h_tslate + row * k, K, k, &h, d, NULL);
      im -= lp / M;
      double g = gate ? 1.0 - a->h_yield[row] : 1.0;
      if (gate && x < N)
        cr_assert_float_eq (a->h_yield[row], 1.0f, 1e-6, "replica %d env %d: the first step knows nothing of the task",
                            p, x);
      least_yield = gate ? fmin (least_yield, a->h_yield[row]) : 0;
      for (int j = 0; j < K; j++) {
        double want = -w * g / M * d[j] / tau, got = (double) a->d_dscores[row * K + j] - b->d_dscores[row * K + j];
        worst = fmax (worst, fabs (got - want));
        big = fmax (big, fabs (want));
      }
    }
    cr_assert_float_eq (a->losses[p].imitation, im, 1e-4 * fmax (1, fabs (im)), "replica %d: %g vs %g", p,
                        (double) a->losses[p].imitation, im);
    cr_assert_eq (b->losses[p].imitation, 0.0f, "no teacher, no imitation loss");
  }
  cr_assert_gt (big, 1e-3, "the term must change the gradient");
  cr_assert_lt (least_yield, 0.5, "some rows' context must have spoken for the gate to be tested");
  cr_assert_lt (worst, 1e-5 * big, "d scores differ from T16/T17 by up to %g (largest term %g)", worst, big);
  cr_assert_float_eq (sa.imitation_sum, a->losses[0].imitation + a->losses[1].imitation, 1e-6);
  ra_target_destroy (&a);
  ra_target_destroy (&b);
  ra_target_destroy (&teacher);
  ra_target_destroy (&twin);
  ra_rollout_t *all[] = { pair, hid, rev, alone, replay, hid2, rev2 };
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    ra_rollout_destroy (&all[i]);
}

Test (target_distill, the_update_adds_the_log_probability_of_the_teachers_slates) { s_imitation_term (false, false); }

Test (target_distill, the_gated_update_weighs_each_row_by_one_minus_its_yield) { s_imitation_term (true, false); }

Test (target_distill, a_sampling_teacher_labels_with_its_plackett_luce_samples) { s_imitation_term (false, true); }

/* T19: with a privileged critic the value head reads, for every rollout row and the bootstrap row,
   the student's row (with its task context block) with the teacher's view of the user in its first
   U columns. Checked through the values and the value head's gradient: a twin policy (same
   parameters, no teacher) fed the rows built here in its value MLP, backward with the critic's
   value-output gradient, gives the same values and the same value-head gradient; the student's own
   rows give other values. The scores read the student's rows either way. */
Test (target_distill, a_privileged_critic_values_the_teachers_view_of_the_user)
{
  ra_rollout_t *hid = s_source (P * N, 41, false), *rev = s_source (P * N, 41, true);
  ra_rollout_t *hid2 = s_source (P * N, 41, false), *rev2 = s_source (P * N, 41, true);
  ra_rollout_t *pair = s_paired (hid, rev), *replay = s_paired (hid2, rev2);
  s_start (pair);
  s_start (replay);
  ra_target_t *a = s_policy (&pair->obs, P, N, T, 5, 0.5f), *b = s_policy (&pair->obs, P, N, T, 5, 0.5f);
  ra_target_t *teacher = s_teacher (&pair->obs);
  for (int p = 0; p < P; p++) /* lr 0: the parameters after the update are those the values used */
    ra_target_set_lr (a, p, 0.0f);
  ra_error_t err;
  cr_assert_eq (ra_target_set_teacher (a, teacher, ra_rollout_paired_second (pair), CRITIC (1), &err), RA_OK, "%s",
                err.message);
  cr_assert_eq (ra_target_begin_rollout (a, pair, NULL, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_target_train_rollout (a, pair, NULL, &err), RA_OK, "%s", err.message);

  /* the rows the critic must read: a's rows, user block from the second view of each step */
  const int U = a->cfg.user_dim, D = a->in_dim, k = a->cfg.slate_size, TN = T * N, VN = TN + N;
  cr_assert_gt (D, U, "the student reads a task context");
  float *want = malloc ((size_t) P * VN * D * sizeof (float));
  memcpy (want, a->h_user, (size_t) P * VN * D * sizeof (float));
  cr_assert_eq (ra_rollout_reset (replay, NULL, &err), RA_OK, "%s", err.message);
  int32_t played[P * N * 8];
  int moved = 0;
  for (int s = 0; s <= T; s++) {
    const ra_obs_batch_t *view = ra_rollout_paired_second (replay);
    for (int p = 0; p < P; p++)
      for (int i = 0; i < N; i++) {
        float *row = want + ((size_t) p * VN + (size_t) s * N + i) * D;
        const float *u = view->user + (size_t) (p * N + i) * U;
        moved += memcmp (row, u, (size_t) U * sizeof (float)) != 0;
        memcpy (row, u, (size_t) U * sizeof (float));
        for (int j = 0; s < T && j < k; j++)
          played[(p * N + i) * k + j] = a->h_slate[((size_t) p * TN + (size_t) s * N + i) * k + j];
      }
    if (s < T)
      cr_assert_eq (ra_rollout_step (replay, played, &err), RA_OK, "%s", err.message);
  }
  cr_assert_gt (moved, P * VN / 4, "the teacher's view differs from the student's rows (%d of %d rows)", moved, P * VN);

  /* b's value MLP on those rows, backward with a's value-output gradient */
  ra_nn_params_t *pa = ra_target_params (a), *pb = ra_target_params (b);
  memcpy (b->d_user, want, (size_t) P * VN * D * sizeof (float)); /* cpu backend: device memory is host memory */
  ra_nn_params_zero_grad (pb);
  const float *va = a->vact[a->vf.n];
  const float *vb = ra_nn_mlp_forward (pb, &b->vf, b->d_user, NULL, b->vact, VN, VN, VN);
  ra_nn_mlp_backward (pb, &b->vf, b->d_user, NULL, b->vact, a->d_dv, b->dbuf, TN, VN, VN);
  double worst = 0;
  for (int x = 0; x < P * VN; x++)
    worst = fmax (worst, fabs ((double) va[x] - vb[x]));
  cr_assert_lt (worst, 1e-6, "the critic's values differ from the value MLP on the teacher's rows by %g", worst);
  ra_nn_mlp_forward (pb, &b->vf, a->h_user, NULL, b->vact, VN, VN, VN);
  double off = 0;
  for (int x = 0; x < P * VN; x++)
    off = fmax (off, fabs ((double) va[x] - b->vact[b->vf.n][x]));
  cr_assert_gt (off, 1e-3, "on the student's own rows the values must differ (%g)", off);
  int checked = 0;
  for (int ti = 0; ti < pa->ntensors; ti++) {
    if (pa->tensors[ti].name[0] != 'v')
      continue;
    for (int p = 0; p < P; p++) {
      const float *ga = ra_nn_grad (pa, ti) + (size_t) p * pa->n, *gb = ra_nn_grad (pb, ti) + (size_t) p * pb->n;
      for (size_t j = 0; j < pa->tensors[ti].numel; j++, checked++)
        cr_assert_float_eq (ga[j], gb[j], 1e-6 * fmax (1, fabs (gb[j])), "%s[%zu] replica %d: %g vs %g",
                            pa->tensors[ti].name, j, p, (double) ga[j], (double) gb[j]);
    }
  }
  cr_assert_gt (checked, 0, "the value head's tensors were compared");
  free (want);
  ra_target_destroy (&a);
  ra_target_destroy (&b);
  ra_target_destroy (&teacher);
  ra_rollout_t *all[] = { pair, hid, rev, replay, hid2, rev2 };
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    ra_rollout_destroy (&all[i]);
}

Test (target_distill, bad_teachers_weights_and_views_are_refused)
{
  ra_rollout_t *hid = s_source (P * N, 41, false), *rev = s_source (P * N, 41, true), *other = s_source (P * N, 43, true);
  ra_rollout_t *pair = s_paired (hid, rev);
  s_start (pair);
  s_start (other);
  const ra_obs_batch_t *view = ra_rollout_paired_second (pair);
  ra_target_t *a = s_policy (&pair->obs, P, N, T, 5, 0), *teacher = s_teacher (&pair->obs);
  ra_target_t *small = s_policy (&pair->obs, 1, N, 1, 9, 0);
  ra_error_t err;
  cr_assert_eq (ra_target_set_teacher (a, small, view, OPTS (1, false, false), &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "one replica acting on all 6 envs"), "%s", err.message);
  for (int i = 0; i < 3; i++) {
    float bad[] = { 0.0f, -1.0f, 101.0f };
    cr_assert_eq (ra_target_set_teacher (a, teacher, view, OPTS (bad[i], false, false), &err), RA_ERR_BAD_CONFIG);
    cr_assert (strstr (err.message, "teacher's weight"), "%s", err.message);
  }
  cr_assert_eq (ra_target_set_teacher (a, teacher, view, OPTS (1, true, false), &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "no scorer yield"), "%s", err.message);
  ra_obs_batch_t wide = *view; /* T19 puts the view's user row where the student's is */
  wide.user_dim++;
  cr_assert_eq (ra_target_set_teacher (a, teacher, &wide, CRITIC (1), &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "privileged critic (T19)"), "%s", err.message);
  ra_target_cfg_t c = teacher->cfg;
  c.context = 16;
  ra_target_t *ctx = NULL;
  cr_assert_eq (ra_target_new (BE, &c, &ctx, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_target_set_teacher (a, ctx, view, OPTS (1, false, false), &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "task context"), "%s", err.message);
  /* a view of other envs: the first step says so */
  cr_assert_eq (ra_target_set_teacher (a, teacher, &other->obs, OPTS (1, false, false), &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_target_begin_rollout (a, pair, NULL, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_target_train_rollout (a, pair, NULL, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "not of the envs the policy acts on"), "%s", err.message);
  /* detached, the same policy trains as one that never had a teacher */
  cr_assert_eq (ra_target_set_teacher (a, NULL, NULL, OPTS (0, false, false), &err), RA_OK);
  cr_assert_eq (ra_target_begin_rollout (a, pair, NULL, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_target_train_rollout (a, pair, NULL, &err), RA_OK, "%s", err.message);
  cr_assert_eq (a->losses[0].imitation, 0.0f);
  ra_target_destroy (&a);
  ra_target_destroy (&teacher);
  ra_target_destroy (&small);
  ra_target_destroy (&ctx);
  ra_rollout_t *all[] = { pair, hid, rev, other };
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    ra_rollout_destroy (&all[i]);
}
