/*  tests/policies/test_target_adapt.c - the target arm adapts correctly (docs/agents.md, "Adapting
    the target"): on a tiny case its update equals, within Monte Carlo error, the exact gradient of
    the expected reward (finite differences over the enumerated slates) because it learns from
    slates it sampled; the same estimator on greedy slates does not. Checkpoints carry the reward
    scale and the adaptation settings; the arm reads them, its own settings win; the optimizer
    state is reset when asked; adapt_updates stops learning; adapt_params=head moves the head
    alone; greedy with learning is refused; the
    expert arm finds its task's file or says which one is missing. No server.               */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents/policies/target_int.h"

enum { K = 3, k = 2, U = 2, F = 2, M = 20000, NS = 6 };

static ra_nn_backend_t *BE;
static void setup (void) { cr_assert_eq (ra_nn_backend_open ("cpu", NULL, &BE, NULL), RA_OK); }
static void teardown (void) { ra_nn_backend_destroy (&BE); }
TestSuite (target_adapt, .init = setup, .fini = teardown, .timeout = 120);

static const float USER[U] = { 0.7f, -0.4f };
static const float CAND[K * F] = { 0.5f, -1.0f, -0.3f, 0.8f, 1.2f, 0.1f };
static const int32_t SLATES[NS][k] = { { 0, 1 }, { 0, 2 }, { 1, 0 }, { 1, 2 }, { 2, 0 }, { 2, 1 } };

/* The reward of a slate: the first slot matters most. */
static float s_reward (const int32_t *a) { return (a[0] == 0 ? 1.0f : a[0] == 2 ? 0.4f : 0.0f) + 0.3f * (a[1] == 1); }

/* n envs that all see USER and CAND */
static float *s_users, *s_cands;
static ra_obs_batch_t s_obs (int n)
{
  free (s_users);
  free (s_cands);
  s_users = malloc (sizeof (float) * U * n);
  s_cands = malloc (sizeof (float) * K * F * n);
  for (int i = 0; i < n; i++) {
    memcpy (s_users + i * U, USER, sizeof USER);
    memcpy (s_cands + i * K * F, CAND, sizeof CAND);
  }
  return (ra_obs_batch_t) { .num_envs = n, .num_candidates = K, .slate_size = k, .user_dim = U,
                            .cand_dim = F, .user = s_users, .candidates = s_cands };
}

/* A kv list from "key=value" texts (NULL-terminated); the caller ra_kv_list_fini's it. */
static ra_kv_list_t s_list (const char *const *settings)
{
  ra_kv_list_t l = { 0 };
  ra_error_t err;
  for (int i = 0; settings[i]; i++)
    cr_assert_eq (ra_kv_list_parse (&l, settings[i], &err), RA_OK, "%s: %s", settings[i], err.message);
  return l;
}

static ra_policy_args_t s_args (const ra_kv_list_t *l, int num_envs)
{
  return (ra_policy_args_t) { .config = l->items, .n_config = l->n, .seed = 11, .num_envs = num_envs,
                              .num_candidates = K, .slate_size = k, .user_dim = U, .cand_dim = F };
}

/* Exact J(theta) = sum over the 6 ordered slates of P(slate) r(slate), with the scores of a
   one-env policy whose parameters are theta. */
static double s_expected_reward (ra_target_t *one, const float *theta)
{
  ra_target_set_params (one, theta);
  ra_obs_batch_t o = s_obs (1);
  int32_t slate[k];
  ra_target_act (one, &o, true, slate);
  float scores[K];
  ra_nn_download (BE, scores, one->pact[one->pi.n], K);
  double J = 0;
  for (int s = 0; s < NS; s++)
    J += exp (ra_target_pl_logprob (scores, K, SLATES[s], k, NULL, NULL, NULL)) * s_reward (SLATES[s]);
  return J;
}

/* Indexes (into one replica's flat vector) of the scorer's parameters "l*". */
static int s_scorer_index (const ra_target_t *t, int *idx)
{
  int n = 0;
  for (int i = 0; i < t->params->ntensors; i++) {
    const ra_nn_tensor_t *x = &t->params->tensors[i];
    if (x->name[0] == 'l')
      for (size_t j = 0; j < x->numel; j++)
        idx[n++] = (int) (x->offset + j);
  }
  return n;
}

/* relative L2 error of est against -grad J over the scorer's parameters */
static double s_rel_err (const double *est, const double *dJ, int n)
{
  double d = 0, m = 0;
  for (int j = 0; j < n; j++) {
    d += (est[j] + dJ[j]) * (est[j] + dJ[j]);
    m += dJ[j] * dJ[j];
  }
  return sqrt (d / m);
}

Test (target_adapt, the_adapting_arms_update_is_the_gradient_of_the_expected_reward)
{
  /* plain policy gradient: SGD, no clipping, no advantage normalisation, no entropy, one-step
     episodes (gamma 0), unit reward scale; tanh for smooth finite differences */
  static const char *const set[] = { "lr=0.01", "optimizer=sgd", "clip_norm=0", "normalize_adv=false",
                                     "entropy=0", "gamma=0", "reward_scale=1", "rollout=1", "layers=1",
                                     "hidden=4", "activation=tanh", NULL };
  ra_kv_list_t l = s_list (set);
  ra_policy_args_t a = s_args (&l, M);
  ra_policy_t *arm = NULL;
  ra_error_t err;
  cr_assert_eq (ra_target_policy_class.create (&a, &arm, &err), RA_OK, "%s", err.message);
  ra_target_t *t = ra_target_arm_policy (arm);
  size_t n = ra_target_num_params (t);
  float *theta0 = malloc (sizeof (float) * n), *theta1 = malloc (sizeof (float) * n);
  int *idx = malloc (sizeof (int) * n);
  int ns = s_scorer_index (t, idx);
  ra_target_get_params (t, theta0);

  /* exact gradient of J by central differences, in the parameters of a one-env copy */
  ra_target_cfg_t c1 = t->cfg;
  c1.num_envs = 1;
  ra_target_t *one = NULL;
  cr_assert_eq (ra_target_new (BE, &c1, &one, &err), RA_OK, "%s", err.message);
  double *dJ = calloc ((size_t) ns, sizeof *dJ), *est = calloc ((size_t) ns, sizeof *est);
  float *th = malloc (sizeof (float) * n);
  const float h = 1e-2f;
  for (int j = 0; j < ns; j++) {
    memcpy (th, theta0, sizeof (float) * n);
    th[idx[j]] = theta0[idx[j]] + h;
    double jp = s_expected_reward (one, th);
    th[idx[j]] = theta0[idx[j]] - h;
    double jm = s_expected_reward (one, th);
    dJ[j] = (jp - jm) / ((double) (theta0[idx[j]] + h) - (double) (theta0[idx[j]] - h));
  }

  /* the arm: act on M identical envs (it samples: it learns), one-step episodes, then the next
     act runs the update; with SGD, (theta0 - theta1) / lr is the gradient it applied */
  ra_obs_batch_t o = s_obs (M);
  int32_t *sl = malloc (sizeof (int32_t) * M * k);
  float *rew = malloc (sizeof (float) * M);
  uint8_t *done = malloc (M);
  arm->cls->act (arm, &o, sl);
  int distinct_first[K] = { 0 };
  for (int i = 0; i < M; i++) {
    rew[i] = s_reward (sl + i * k);
    done[i] = 1;
    distinct_first[sl[i * k]] = 1;
  }
  cr_assert (distinct_first[0] && distinct_first[1] && distinct_first[2], "the arm must sample");
  ra_feedback_t fb = { .slates = sl, .reward = rew, .done = done };
  arm->cls->learn (arm, &o, &fb);
  arm->cls->act (arm, &o, sl);
  ra_target_get_params (t, theta1);
  for (int j = 0; j < ns; j++)
    est[j] = ((double) theta0[idx[j]] - theta1[idx[j]]) / 0.01;
  double e_sampled = s_rel_err (est, dJ, ns);

  /* the old defect: the same estimator on greedy slates (every env shows the top-k) */
  ra_target_t *g = ra_target_clone (t);
  cr_assert (g);
  ra_target_set_params (g, theta0);
  ra_target_act (g, &o, true, sl);
  for (int i = 0; i < M; i++)
    rew[i] = s_reward (sl + i * k);
  ra_target_record (g, &o, sl, rew, done);
  cr_assert_eq (ra_target_grad (g, &o, NULL, &err), RA_OK, "%s", err.message);
  float *grad = malloc (sizeof (float) * n);
  ra_nn_download (BE, grad, g->params->grad, n);
  for (int j = 0; j < ns; j++)
    est[j] = grad[idx[j]];
  double e_greedy = s_rel_err (est, dJ, ns);
  cr_log_info ("relative error of the update against the exact gradient: sampled slates %.4f, "
               "greedy slates %.4f", e_sampled, e_greedy);
  cr_assert_lt (e_sampled, 0.1, "sampled slates: relative error %.3f of the update against the exact "
                "gradient (greedy: %.3f)", e_sampled, e_greedy);
  cr_assert_gt (e_greedy, 0.5, "greedy slates should give a biased gradient (error %.3f)", e_greedy);

  free (grad);
  ra_target_destroy (&g);
  free (sl), free (rew), free (done), free (th), free (dJ), free (est), free (idx), free (theta0),
    free (theta1);
  ra_target_destroy (&one);
  arm->cls->destroy (&arm);
  ra_kv_list_fini (&l);
}

/* ---- checkpoints carry the reward scale and the adaptation settings --------------------------- */

static char s_tmp[64];
static const char *s_tmpfile (void)
{
  snprintf (s_tmp, sizeof s_tmp, "/tmp/test_target_adapt_%d.safetensors", (int) getpid ());
  return s_tmp;
}

static ra_target_t *s_policy (int P, int num_envs, const char *const *settings)
{
  ra_target_cfg_t c;
  ra_target_cfg_default (&c);
  c.num_envs = num_envs, c.num_candidates = K, c.slate_size = k, c.user_dim = U, c.cand_dim = F;
  c.hidden = 4, c.layers = 1, c.population = P;
  ra_kv_list_t l = s_list (settings);
  ra_error_t err;
  cr_assert_eq (ra_target_cfg_apply (&c, l.items, l.n, NULL, &err), RA_OK, "%s", err.message);
  ra_kv_list_fini (&l);
  ra_target_t *t = NULL;
  cr_assert_eq (ra_target_new (BE, &c, &t, &err), RA_OK, "%s", err.message);
  return t;
}

/* one act-record-update round on n identical envs with one-step episodes */
static void s_train_round (ra_target_t *t, int n)
{
  ra_obs_batch_t o = s_obs (n);
  int32_t sl[64 * k];
  float rew[64];
  uint8_t done[64];
  cr_assert (n <= 64);
  ra_target_act (t, &o, false, sl);
  for (int i = 0; i < n; i++)
    rew[i] = s_reward (sl + i * k), done[i] = 1;
  for (int s = 0; s < t->cfg.rollout; s++)
    if (ra_target_record (t, &o, sl, rew, done)) {
      ra_error_t err;
      cr_assert_eq (ra_target_update (t, &o, NULL, &err), RA_OK, "%s", err.message);
    }
}

Test (target_adapt, checkpoints_round_trip_reward_scales_and_adaptation_settings)
{
  static const char *const set[] = { "lr=0.0125", "optimizer=sgd", "reset_optimizer=false",
                                     "adapt_updates=3", "rollout=2", NULL };
  ra_target_t *t = s_policy (2, 8, set);
  s_train_round (t, 16); /* measures each replica's reward scale (cfg reward_scale 0) */
  float s0 = ra_target_reward_scale (t, 0), s1 = ra_target_reward_scale (t, 1);
  cr_assert (s0 > 0 && s1 > 0);
  ra_error_t err;
  cr_assert_eq (ra_target_save (t, s_tmpfile (), &err), RA_OK, "%s", err.message);

  static const char *const none[] = { NULL };
  ra_target_t *u = s_policy (2, 8, none);
  cr_assert_eq (ra_target_reward_scale (u, 0), 0.0f);
  cr_assert_eq (ra_target_load (u, s_tmpfile (), &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_target_reward_scale (u, 0), s0, "reward scale of replica 0 not restored");
  cr_assert_eq (ra_target_reward_scale (u, 1), s1, "reward scale of replica 1 not restored");
  ra_target_cfg_t c;
  ra_target_cfg_default (&c);
  cr_assert_eq (ra_target_checkpoint_settings (s_tmpfile (), &c, &err), RA_OK, "%s", err.message);
  cr_assert_float_eq (c.lr, 0.0125f, 0);
  cr_assert (c.sgd);
  cr_assert (!c.reset_optimizer);
  cr_assert_eq (c.adapt_updates, 3);
  cr_assert_eq (c.rollout, 2);
  /* a checkpoint of the other population size is refused, not misread */
  ra_target_t *w = s_policy (1, 8, none);
  cr_assert_neq (ra_target_load (w, s_tmpfile (), &err), RA_OK);
  ra_target_destroy (&w);
  ra_target_destroy (&u);
  ra_target_destroy (&t);
  unlink (s_tmpfile ());
}

/* An arm on a checkpoint: its settings come from the file unless the arm gives them. */
static ra_policy_t *s_arm (const ra_policy_class_t *cls, const char *const *settings, int num_envs,
                           ra_err_t want, const char *want_in_message)
{
  ra_kv_list_t l = s_list (settings);
  ra_policy_args_t a = s_args (&l, num_envs);
  a.task_split = "test";
  a.task_id = 4;
  ra_policy_t *p = NULL;
  ra_error_t err = { .code = RA_OK };
  ra_err_t rc = cls->create (&a, &p, &err);
  ra_kv_list_fini (&l);
  cr_assert_eq (rc, want, "%s", err.message);
  if (want_in_message)
    cr_assert (strstr (err.message, want_in_message), "'%s' not in '%s'", want_in_message, err.message);
  return p;
}

Test (target_adapt, the_arm_reads_the_checkpoints_settings_and_its_own_win)
{
  static const char *const set[] = { "lr=0.02", "optimizer=sgd", "adapt_updates=2", "rollout=1",
                                     "reset_optimizer=false", NULL };
  ra_target_t *t = s_policy (1, 4, set);
  s_train_round (t, 4);
  ra_error_t err;
  cr_assert_eq (ra_target_save (t, s_tmpfile (), &err), RA_OK, "%s", err.message);
  char ck[128];
  snprintf (ck, sizeof ck, "checkpoint=%s", s_tmpfile ());
  const char *from_file[] = { ck, NULL };
  ra_policy_t *p = s_arm (&ra_target_policy_class, from_file, 4, RA_OK, NULL);
  const ra_target_cfg_t *c = ra_target_cfg (ra_target_arm_policy (p));
  cr_assert_float_eq (c->lr, 0.02f, 0);
  cr_assert (c->sgd && c->adapt_updates == 2 && c->rollout == 1 && !c->reset_optimizer);
  cr_assert_eq (ra_target_reward_scale (ra_target_arm_policy (p), 0), ra_target_reward_scale (t, 0));
  p->cls->destroy (&p);
  const char *given[] = { ck, "lr=0.001", "optimizer=adam", "adapt_updates=0", "reward_scale=0.5", NULL };
  p = s_arm (&ra_target_policy_class, given, 4, RA_OK, NULL);
  c = ra_target_cfg (ra_target_arm_policy (p));
  cr_assert_float_eq (c->lr, 0.001f, 0);
  cr_assert (!c->sgd && c->adapt_updates == 0);
  cr_assert_eq (ra_target_reward_scale (ra_target_arm_policy (p), 0), 0.5f);
  p->cls->destroy (&p);
  ra_target_destroy (&t);
  unlink (s_tmpfile ());
}

Test (target_adapt, init_file_is_the_checkpoint_and_init_random_the_fresh_network)
{
  static const char *const set[] = { "lr=0.02", "rollout=1", NULL };
  ra_target_t *t = s_policy (1, 4, set);
  s_train_round (t, 4);
  ra_error_t err;
  cr_assert_eq (ra_target_save (t, s_tmpfile (), &err), RA_OK, "%s", err.message);
  size_t n = ra_target_num_params (t);
  float *want = malloc (n * sizeof (float)), *got = malloc (n * sizeof (float));
  ra_target_get_params (t, want);
  char ck[128], in[128];
  snprintf (ck, sizeof ck, "checkpoint=%s", s_tmpfile ());
  snprintf (in, sizeof in, "init=%s", s_tmpfile ());
  /* the fresh arms with the saved network's shape, so the flat vectors compare */
  const char *from_init[] = { in, NULL }, *fresh[] = { "init=random", "hidden=4", "layers=1", NULL },
             *none[] = { "hidden=4", "layers=1", NULL };
  ra_policy_t *p = s_arm (&ra_target_policy_class, from_init, 4, RA_OK, NULL);
  ra_target_get_params (ra_target_arm_policy (p), got);
  cr_assert (!memcmp (got, want, n * sizeof (float)), "init=FILE must load FILE's parameters");
  cr_assert_float_eq (ra_target_cfg (ra_target_arm_policy (p))->lr, 0.02f, 0, "and its adaptation settings");
  p->cls->destroy (&p);
  p = s_arm (&ra_target_policy_class, fresh, 4, RA_OK, NULL);
  cr_assert_eq (ra_target_num_params (ra_target_arm_policy (p)), n);
  ra_target_get_params (ra_target_arm_policy (p), got);
  cr_assert (memcmp (got, want, n * sizeof (float)), "init=random must not load the trained parameters");
  ra_policy_t *q = s_arm (&ra_target_policy_class, none, 4, RA_OK, NULL);
  ra_target_get_params (ra_target_arm_policy (q), want);
  cr_assert (!memcmp (got, want, n * sizeof (float)), "init=random must be the arm without a checkpoint");
  p->cls->destroy (&p);
  q->cls->destroy (&q);
  const char *both[] = { ck, in, NULL }, *empty[] = { "init=", NULL };
  s_arm (&ra_target_policy_class, both, 4, RA_ERR_BAD_CONFIG, "'init' or 'checkpoint', not both");
  s_arm (&ra_target_policy_class, empty, 4, RA_ERR_BAD_CONFIG, "'init' must be");
  free (want);
  free (got);
  ra_target_destroy (&t);
  unlink (s_tmpfile ());
}

Test (target_adapt, reset_optimizer_zeroes_the_loaded_adam_state)
{
  static const char *const set[] = { "rollout=1", NULL };
  ra_target_t *t = s_policy (1, 4, set);
  for (int r = 0; r < 3; r++)
    s_train_round (t, 4);
  cr_assert_eq (ra_nn_params_steps (t->params), 3);
  ra_error_t err;
  cr_assert_eq (ra_target_save (t, s_tmpfile (), &err), RA_OK, "%s", err.message);
  char ck[128];
  snprintf (ck, sizeof ck, "checkpoint=%s", s_tmpfile ());
  const char *keep[] = { ck, "reset_optimizer=false", NULL }, *reset[] = { ck, NULL };
  ra_policy_t *p = s_arm (&ra_target_policy_class, keep, 4, RA_OK, NULL);
  cr_assert_eq (ra_nn_params_steps (ra_target_arm_policy (p)->params), 3);
  p->cls->destroy (&p);
  p = s_arm (&ra_target_policy_class, reset, 4, RA_OK, NULL); /* the default: reset */
  ra_nn_params_t *q = ra_target_arm_policy (p)->params;
  cr_assert_eq (ra_nn_params_steps (q), 0);
  float m[64];
  cr_assert (q->adam_m && q->n <= 64 * 64);
  size_t nz = 0;
  for (size_t off = 0; off < q->n; off += 64) {
    size_t c = q->n - off < 64 ? q->n - off : 64;
    ra_nn_download (BE, m, q->adam_m + off, c);
    for (size_t j = 0; j < c; j++)
      nz += m[j] != 0;
  }
  cr_assert_eq (nz, 0, "Adam moments not zeroed");
  p->cls->destroy (&p);
  ra_target_destroy (&t);
  unlink (s_tmpfile ());
}

Test (target_adapt, adapt_updates_then_the_arm_is_frozen_and_greedy)
{
  enum { N = 8 };
  static const char *const set[] = { "lr=0.05", "rollout=1", "adapt_updates=2", "hidden=4", "layers=1", NULL };
  ra_policy_t *p = s_arm (&ra_target_policy_class, set, N, RA_OK, NULL);
  ra_target_t *t = ra_target_arm_policy (p);
  size_t n = ra_target_num_params (t);
  float *prev = malloc (sizeof (float) * n), *cur = malloc (sizeof (float) * n);
  ra_obs_batch_t o = s_obs (N);
  int32_t sl[N * k];
  float rew[N];
  uint8_t done[N];
  ra_feedback_t fb = { .slates = sl, .reward = rew, .done = done };
  int changed = 0, greedy_rounds = 0;
  for (int r = 0; r < 5; r++) {
    ra_target_get_params (t, prev);
    p->cls->act (p, &o, sl); /* runs the pending update, if any */
    ra_target_get_params (t, cur);
    changed += memcmp (prev, cur, sizeof (float) * n) != 0;
    bool same = true; /* greedy: every env shows the same top-k */
    for (int i = 1; i < N; i++)
      same = same && sl[i * k] == sl[0] && sl[i * k + 1] == sl[1];
    greedy_rounds += same;
    for (int i = 0; i < N; i++)
      rew[i] = s_reward (sl + i * k), done[i] = 1;
    p->cls->learn (p, &o, &fb);
  }
  cr_assert_eq (changed, 2, "expected exactly 2 updates, saw %d", changed);
  cr_assert_geq (greedy_rounds, 3, "after its updates the arm acts greedily");
  /* forget: back to the start, learning again */
  p->cls->forget (p);
  p->cls->act (p, &o, sl);
  for (int i = 0; i < N; i++)
    rew[i] = s_reward (sl + i * k), done[i] = 1;
  p->cls->learn (p, &o, &fb);
  ra_target_get_params (t, prev);
  p->cls->act (p, &o, sl);
  ra_target_get_params (t, cur);
  cr_assert_neq (memcmp (prev, cur, sizeof (float) * n), 0, "forget must restart adaptation");
  free (prev);
  free (cur);
  p->cls->destroy (&p);
}

/* Frozen episodes follow a reset of every env (agents/ab/runner.c s_play_frozen): the freeze
   marks every env as starting a new user, so no session (T12) runs on into them and the reset's
   zeros are not a slate without a click (T13). */
Test (target_adapt, the_freeze_starts_every_env_with_a_new_user)
{
  enum { N = 4 };
  static const char *const set[] = { "context=2", "context_session=1", "context_baseline=0.1", "hidden=4", NULL };
  ra_kv_list_t l = s_list (set);
  ra_policy_args_t a = s_args (&l, N);
  a.response_dim = k;
  ra_policy_t *p = NULL;
  ra_error_t err;
  cr_assert_eq (ra_target_policy_class.create (&a, &p, &err), RA_OK, "%s", err.message);
  ra_kv_list_fini (&l);
  ra_target_t *t = ra_target_arm_policy (p);
  cr_assert_not_null (t->ctx_ended);
  for (int e = 0; e < N; e++)
    cr_assert_eq (t->ctx_ended[e], 0, "a fresh arm's envs are mid-nothing");
  p->cls->freeze (p);
  for (int e = 0; e < N; e++)
    cr_assert_eq (t->ctx_ended[e], 1, "env %d is not marked as starting a new user at the freeze", e);
  p->cls->destroy (&p);
}

/* The arm's parameters after 3 updates on the toy task, and the initial ones. */
static void s_three_updates (ra_policy_t *p, float *init, float *after)
{
  enum { N = 8 };
  ra_target_t *t = ra_target_arm_policy (p);
  ra_obs_batch_t o = s_obs (N);
  int32_t sl[N * k];
  float rew[N];
  uint8_t done[N];
  ra_feedback_t fb = { .slates = sl, .reward = rew, .done = done };
  ra_target_get_params (t, init);
  for (int r = 0; r < 4; r++) { /* the 4th act runs the 3rd update */
    p->cls->act (p, &o, sl);
    for (int i = 0; i < N; i++)
      rew[i] = s_reward (sl + i * k), done[i] = 1;
    if (r < 3)
      p->cls->learn (p, &o, &fb);
  }
  ra_target_get_params (t, after);
}

Test (target_adapt, adapt_params_head_moves_the_head_alone_and_is_stored)
{
  const char *head[] = { "lr=0.05", "rollout=1", "hidden=4", "layers=1", "affinity=true",
                         "adapt_params=head", NULL };
  const char *all[] = { "lr=0.05", "rollout=1", "hidden=4", "layers=1", "affinity=true", NULL };
  ra_policy_t *p = s_arm (&ra_target_policy_class, head, 8, RA_OK, NULL);
  ra_target_t *t = ra_target_arm_policy (p);
  size_t n = ra_target_num_params (t);
  uint8_t *mask = malloc (n);
  float *init = malloc (sizeof (float) * n), *after = malloc (sizeof (float) * n);
  ra_target_head_mask (t, mask);
  /* the head: the last scorer layer, the value MLP and the affinity head; the body: l0 */
  for (int i = 0; i < t->params->ntensors; i++) {
    const ra_nn_tensor_t *x = &t->params->tensors[i];
    bool in_head = strncmp (x->name, "l0.", 3) != 0;
    for (size_t j = 0; j < x->numel; j++)
      cr_assert_eq (mask[x->offset + j], in_head, "%s[%zu] in the head: %d", x->name, j, mask[x->offset + j]);
  }
  s_three_updates (p, init, after);
  size_t body_moved = 0, head_moved = 0;
  for (size_t j = 0; j < n; j++) {
    head_moved += mask[j] && init[j] != after[j];
    body_moved += !mask[j] && init[j] != after[j];
  }
  cr_assert_eq (body_moved, 0, "head only: %zu body entries moved", body_moved);
  cr_assert_gt (head_moved, 0, "head only: the head did not learn");
  /* the setting travels with a checkpoint to the next arm */
  ra_error_t err;
  cr_assert_eq (ra_target_save (t, s_tmpfile (), &err), RA_OK, "%s", err.message);
  ra_target_cfg_t c;
  ra_target_cfg_default (&c);
  cr_assert_eq (ra_target_checkpoint_settings (s_tmpfile (), &c, &err), RA_OK, "%s", err.message);
  cr_assert (c.adapt_head, "target.adapt_params=head not read back");
  /* a file whose two-word settings are neither word is refused, naming the key */
  const char *keys[2] = { "target.optimizer", "target.adapt_params" };
  const char *const cases[3][2] = { { "sgd", "head" }, { "sgd", "body" }, { "rmsprop", "all" } };
  const char *why[3] = { NULL, "target.adapt_params 'body' is not all or head",
                         "target.optimizer 'rmsprop' is not adam or sgd" };
  for (int i = 0; i < 3; i++) {
    cr_assert_eq (ra_nn_checkpoint_save_meta (t->params, s_tmpfile (), keys, cases[i], 2, &err), RA_OK, "%s",
                  err.message);
    ra_target_cfg_default (&c);
    ra_err_t rc = ra_target_checkpoint_settings (s_tmpfile (), &c, &err);
    if (!why[i]) {
      cr_assert_eq (rc, RA_OK, "%s", err.message);
      cr_assert (c.sgd && c.adapt_head, "sgd / head not read back");
    } else {
      cr_assert_eq (rc, RA_ERR_BAD_CONFIG, "%s / %s accepted", cases[i][0], cases[i][1]);
      cr_assert (strstr (err.message, why[i]), "message: %s", err.message);
    }
  }
  p->cls->destroy (&p);
  unlink (s_tmpfile ());
  /* the default adapts everything */
  p = s_arm (&ra_target_policy_class, all, 8, RA_OK, NULL);
  s_three_updates (p, init, after);
  body_moved = 0;
  for (size_t j = 0; j < n; j++)
    body_moved += !mask[j] && init[j] != after[j];
  cr_assert_gt (body_moved, 0, "adapt_params=all: the body did not learn");
  p->cls->destroy (&p);
  const char *bad[] = { "adapt_params=body", NULL };
  s_arm (&ra_target_policy_class, bad, 8, RA_ERR_BAD_CONFIG, "'adapt_params' must be \"all\" or \"head\"");
  free (mask);
  free (init);
  free (after);
}

Test (target_adapt, greedy_with_learning_is_refused_and_the_expert_names_its_file)
{
  const char *bad[] = { "greedy=true", "lr=0.001", NULL }, *ok[] = { "greedy=true", "lr=0", NULL };
  s_arm (&ra_target_policy_class, bad, 4, RA_ERR_BAD_CONFIG, "greedy=true with lr > 0");
  ra_policy_t *p = s_arm (&ra_target_policy_class, ok, 4, RA_OK, NULL);
  p->cls->destroy (&p);
  const char *nodir[] = { NULL }, *dir[] = { "dir=/nonexistent-experts", NULL };
  s_arm (&ra_expert_policy_class, nodir, 4, RA_ERR_BAD_CONFIG, "dir=DIR");
  s_arm (&ra_expert_policy_class, dir, 4, RA_ERR_IO, "/nonexistent-experts/test-4.safetensors");
}
