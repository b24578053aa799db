/*  tests/policies/test_ab_crn.c - recarena-ab's common random numbers at every episode
    (docs/agents.md section 2.1): on each of the four sims, two arms that act differently see the
    same user and candidates at the start of every episode of every env on every task, and two
    arms that differ only in their display name give identical per-episode returns.
    One in-process server per suite; the recording arm is a policy class local to this file. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/ab/runner.h"
#include "tests/policies/server_thread.h"


static void setup (void)
{
  s_server_start ();
}

static void teardown (void)
{
  s_server_stop ();
}

TestSuite (ab_crn, .init = setup, .fini = teardown, .timeout = 240);

/* ---- a recording arm: hashes the observation at the start of every episode ---------------- */

enum { MAX_INST = 8, MAX_ENVS = 8, MAX_EPS = 8 };

typedef struct {
  ra_policy_t base;
  int inst, N;
  bool last;                            /* plays the last k candidates instead of the first */
  bool start[MAX_ENVS];                 /* the next act starts an episode of env i */
  int ep[MAX_ENVS];
} s_rec_t;

static uint64_t s_starts[MAX_INST][MAX_ENVS][MAX_EPS];   /* 0: not seen */
static int s_n_inst;      /* arms that played: numbered at their first act */
static int s_n_created;   /* arms built, the runner's up-front check of every arm included */

static uint64_t s_fnv (uint64_t h, const void *p, size_t n)
{
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 0x100000001B3ull;
  return h;
}

static ra_err_t s_rec_create (const ra_policy_args_t *args, bool last, ra_policy_t **out, ra_error_t *err)
{
  s_rec_t *p = calloc (1, sizeof *p);
  if (!p || args->num_envs > MAX_ENVS) {
    free (p);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "recorder full");
  }
  s_n_created++;
  p->inst = -1;
  p->N = args->num_envs;
  p->last = last;
  for (int i = 0; i < p->N; i++)
    p->start[i] = true;
  *out = &p->base;
  return RA_OK;
}

static void s_rec_destroy (ra_policy_t **pp)
{
  free (*pp);
  *pp = NULL;
}

static void s_rec_act (ra_policy_t *pol, const ra_obs_batch_t *o, int32_t *slates)
{
  s_rec_t *p = (s_rec_t *) pol;
  if (p->inst < 0) {
    cr_assert_lt (s_n_inst, MAX_INST, "recorder full");
    p->inst = s_n_inst++;
  }
  int K = o->num_candidates, k = o->slate_size;
  for (int i = 0; i < o->num_envs; i++) {
    if (p->start[i] && p->ep[i] < MAX_EPS) {
      uint64_t h = s_fnv (0xCBF29CE484222325ull, o->user + (size_t) i * o->user_dim,
                          (size_t) o->user_dim * sizeof (float));
      h = s_fnv (h, o->candidates + (size_t) i * K * o->cand_dim, (size_t) K * o->cand_dim * sizeof (float));
      s_starts[p->inst][i][p->ep[i]] = h | 1;
    }
    p->start[i] = false;
    for (int q = 0; q < k; q++)
      slates[(size_t) i * k + q] = p->last ? K - 1 - q : q;
  }
}

static void s_rec_learn (ra_policy_t *pol, const ra_obs_batch_t *o, const ra_feedback_t *fb)
{
  s_rec_t *p = (s_rec_t *) pol;
  for (int i = 0; i < o->num_envs; i++)
    if (fb->done[i]) {
      p->start[i] = true;
      p->ep[i]++;
    }
}

static void s_rec_forget (ra_policy_t *pol)
{
  (void) pol;
}

static const ra_policy_class_t s_first_class, s_last_class;

static ra_err_t s_first_create (const ra_policy_args_t *a, ra_policy_t **out, ra_error_t *err)
{
  ra_err_t rc = s_rec_create (a, false, out, err);
  if (rc == RA_OK)
    (*out)->cls = &s_first_class;
  return rc;
}

static ra_err_t s_last_create (const ra_policy_args_t *a, ra_policy_t **out, ra_error_t *err)
{
  ra_err_t rc = s_rec_create (a, true, out, err);
  if (rc == RA_OK)
    (*out)->cls = &s_last_class;
  return rc;
}

static const ra_policy_class_t s_first_class = { "rec_first", "first k", s_first_create,
                                                 s_rec_destroy, s_rec_act, s_rec_learn, s_rec_forget, NULL };
static const ra_policy_class_t s_last_class = { "rec_last", "last k", s_last_create,
                                                s_rec_destroy, s_rec_act, s_rec_learn, s_rec_forget, NULL };

static void s_run (const char *env_id, ra_ab_arm_t *arms, int n_arms, int tasks, int num_envs,
                   int episodes, ra_ab_result_t *res)
{
  ra_error_t err;
  ra_client_t *c;
  cr_assert_eq (ra_client_new (ra_server_endpoint (S, 0), 30000, &c, &err), RA_OK, "%s", err.message);
  int64_t ids[2] = { 3, 11 };
  ra_ab_opts_t o = { .env_id = env_id, .split = "test", .tasks = tasks, .task_ids = ids,
                     .num_envs = num_envs, .episodes = episodes, .seed = 7, .max_episode_steps = 12 };
  cr_assert_eq (ra_ab_run (c, &o, arms, n_arms, res, &err), RA_OK, "%s: %s", env_id, err.message);
  ra_client_destroy (&c);
}

static const char *const SIMS[] = { "ECommerce-v1", "Ads-v1", "News-v1", "Content-v1" };

Test (ab_crn, different_arms_see_the_same_users_at_every_episode_start_on_every_sim)
{
  for (int sim = 0; sim < 4; sim++) {
    memset (s_starts, 0, sizeof s_starts);
    s_n_inst = s_n_created = 0;
    ra_ab_arm_t arms[2];
    memset (arms, 0, sizeof arms);
    snprintf (arms[0].spec, sizeof arms[0].spec, "first");
    snprintf (arms[0].key, sizeof arms[0].key, "first");
    arms[0].cls = &s_first_class;
    snprintf (arms[1].spec, sizeof arms[1].spec, "last");
    snprintf (arms[1].key, sizeof arms[1].key, "last");
    arms[1].cls = &s_last_class;
    ra_ab_result_t res;
    enum { T = 2, N = 4, E = 5 };
    s_run (SIMS[sim], arms, 2, T, N, E, &res);
    cr_assert_eq (s_n_inst, 2 * T);   /* one fresh arm per (task, arm), tasks outermost */
    cr_assert_eq (s_n_created, 4 * T);   /* and each built once more, unplayed, before any plays */
    int differ_returns = 0;
    for (int t = 0; t < T; t++)
      for (int i = 0; i < N; i++) {
        for (int e = 0; e < E; e++) {
          uint64_t a = s_starts[2 * t][i][e], b = s_starts[2 * t + 1][i][e];
          cr_assert (a != 0 && b != 0, "%s: task %d env %d episode %d not recorded", SIMS[sim], t, i, e);
          cr_assert_eq (a, b, "%s: task %d env %d episode %d starts differ between arms", SIMS[sim],
                        t, i, e);
          if (e > 0)
            cr_assert_neq (a, s_starts[2 * t][i][e - 1], "%s: episodes %d and %d start alike",
                           SIMS[sim], e - 1, e);
          differ_returns += ra_ab_ep_return (&res, 0, t, i)[e] != ra_ab_ep_return (&res, 1, t, i)[e];
        }
        if (i > 0)
          cr_assert_neq (s_starts[2 * t][i][0], s_starts[2 * t][0][0], "%s: envs share a user", SIMS[sim]);
      }
    /* the arms really act differently (else the check above proves nothing) */
    cr_assert_gt (differ_returns, 0, "%s: the two arms had the same returns", SIMS[sim]);
    cr_assert_neq (s_starts[0][0][0], s_starts[2][0][0], "%s: tasks 3 and 11 start alike", SIMS[sim]);
    ra_ab_result_fini (&res);
  }
}

Test (ab_crn, arms_differing_only_in_name_give_identical_episode_returns)
{
  static const char *const specs[] = { "random", "lints:v=0.5", "random:name=twin_random",
                                       "lints:v=0.5:name=twin_lints" };
  ra_ab_arm_t arms[4];
  ra_error_t err;
  for (int a = 0; a < 4; a++)
    cr_assert_eq (ra_ab_arm_parse (specs[a], &arms[a], &err), RA_OK, "%s", err.message);
  cr_assert_str_eq (arms[3].key, "lints:v=0.5");
  ra_ab_result_t res;
  enum { T = 2, N = 4, E = 4 };
  s_run ("ECommerce-v1", arms, 4, T, N, E, &res);
  int differ = 0;
  for (int t = 0; t < T; t++)
    for (int i = 0; i < N; i++)
      for (int e = 0; e < E; e++) {
        for (int a = 0; a < 2; a++)
          cr_assert_eq (ra_ab_ep_return (&res, a, t, i)[e], ra_ab_ep_return (&res, a + 2, t, i)[e],
                        "%s vs %s: task %d env %d episode %d", specs[a], specs[a + 2], t, i, e);
        differ += ra_ab_ep_return (&res, 0, t, i)[e] != ra_ab_ep_return (&res, 1, t, i)[e];
      }
  cr_assert_gt (differ, 0, "random and lints must differ");
  cr_assert_eq (res.task_ids[0], 3);
  cr_assert_eq (res.task_ids[1], 11);
  ra_ab_result_fini (&res);
}

Test (ab_crn_seed, episode_seed_depends_on_every_part_of_the_tuple)
{
  uint64_t s0 = ra_ab_episode_seed (1, "test", 0, 0, 0);
  cr_assert_eq (s0, ra_ab_episode_seed (1, "test", 0, 0, 0));
  cr_assert_neq (s0, ra_ab_episode_seed (2, "test", 0, 0, 0));
  cr_assert_neq (s0, ra_ab_episode_seed (1, "train", 0, 0, 0));
  cr_assert_neq (s0, ra_ab_episode_seed (1, "test", 1, 0, 0));
  cr_assert_neq (s0, ra_ab_episode_seed (1, "test", 0, 1, 0));
  cr_assert_neq (s0, ra_ab_episode_seed (1, "test", 0, 0, 1));
  /* the tuple is not a sum: (env 1, episode 0) and (env 0, episode 1) differ */
  cr_assert_neq (ra_ab_episode_seed (1, "test", 0, 1, 0), ra_ab_episode_seed (1, "test", 0, 0, 1));
}

/* Per-arm credit (docs/agents.md 2.1): credit= on an arm wins over the run's default, the same
   arm with the same credit plays identically whichever way it was set, and the two credits
   really lead to different play on Content-v1 (clicks and watch time disagree there). */
Test (ab_crn, per_arm_credit_overrides_the_run_default)
{
  static const char *const specs[] = { "linucb:credit=clicked", "linucb:credit=metric", "linucb" };
  ra_ab_arm_t arms[3];
  ra_error_t err;
  for (int a = 0; a < 3; a++)
    cr_assert_eq (ra_ab_arm_parse (specs[a], &arms[a], &err), RA_OK, "%s", err.message);
  cr_assert (arms[1].has_credit && arms[1].credit == RA_AB_CREDIT_METRIC && !arms[2].has_credit);
  cr_assert_eq (arms[1].n_config, 0, "credit is not passed to the policy");
  cr_assert_str_eq (arms[1].key, "linucb");
  ra_client_t *c;
  cr_assert_eq (ra_client_new (ra_server_endpoint (S, 0), 30000, &c, &err), RA_OK, "%s", err.message);
  ra_ab_result_t res[2];
  for (int run = 0; run < 2; run++) {   /* run 0: default metric; run 1: default clicked */
    ra_ab_opts_t o = { .env_id = "Content-v1", .split = "test", .tasks = 1, .num_envs = 4,
                       .episodes = 3, .seed = 3, .max_episode_steps = 20,
                       .credit = run == 0 ? RA_AB_CREDIT_METRIC : RA_AB_CREDIT_CLICKED };
    cr_assert_eq (ra_ab_run (c, &o, arms, 3, &res[run], &err), RA_OK, "%s", err.message);
    cr_assert_eq (res[run].arm_credit[0], RA_AB_CREDIT_CLICKED);
    cr_assert_eq (res[run].arm_credit[1], RA_AB_CREDIT_METRIC);
  }
  ra_client_destroy (&c);
  cr_assert_eq (res[0].arm_credit[2], RA_AB_CREDIT_METRIC);
  cr_assert_eq (res[1].arm_credit[2], RA_AB_CREDIT_CLICKED);
  size_t n = (size_t) res[0].num_envs * res[0].episodes;
  const double *clicked0 = ra_ab_ep_return (&res[0], 0, 0, 0), *metric0 = ra_ab_ep_return (&res[0], 1, 0, 0);
  cr_assert_eq (memcmp (ra_ab_ep_return (&res[0], 2, 0, 0), metric0, n * sizeof (double)), 0,
                "linucb under default metric = linucb:credit=metric");
  cr_assert_eq (memcmp (ra_ab_ep_return (&res[1], 2, 0, 0), clicked0, n * sizeof (double)), 0,
                "linucb under default clicked = linucb:credit=clicked");
  cr_assert_eq (memcmp (ra_ab_ep_return (&res[1], 1, 0, 0), metric0, n * sizeof (double)), 0,
                "an arm's own credit does not depend on the default");
  cr_assert_neq (memcmp (clicked0, metric0, n * sizeof (double)), 0, "the credits must differ in play");
  ra_ab_result_fini (&res[0]);
  ra_ab_result_fini (&res[1]);
  cr_assert_eq (ra_ab_arm_parse ("lints:credit=revenue", &arms[0], &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "credit is clicked or metric"), "%s", err.message);
}

/* ---- the frozen evaluation (docs/agents.md 2.1) -------------------------------------------- */

static int s_freezes, s_learns_after_freeze;
static bool s_is_frozen;

static const ra_policy_class_t s_fz_class;
static ra_err_t s_fz_create (const ra_policy_args_t *a, ra_policy_t **out, ra_error_t *err)
{
  s_is_frozen = false;
  ra_err_t rc = s_rec_create (a, false, out, err);
  if (rc == RA_OK)
    (*out)->cls = &s_fz_class;
  return rc;
}
static void s_fz_learn (ra_policy_t *pol, const ra_obs_batch_t *o, const ra_feedback_t *fb)
{
  s_learns_after_freeze += s_is_frozen;
  s_rec_learn (pol, o, fb);
}
static void s_fz_freeze (ra_policy_t *pol)
{
  (void) pol;
  s_freezes++;
  s_is_frozen = true;
}
static const ra_policy_class_t s_fz_class = { "rec_freeze", "first k, counts freezes", s_fz_create,
                                              s_rec_destroy, s_rec_act, s_fz_learn, s_rec_forget,
                                              s_fz_freeze };
/* without a freeze hook: the harness must stop calling learn itself */
static int s_plain_learns;
static const ra_policy_class_t s_plain_class;
static ra_err_t s_plain_create (const ra_policy_args_t *a, ra_policy_t **out, ra_error_t *err)
{
  ra_err_t rc = s_rec_create (a, false, out, err);
  if (rc == RA_OK)
    (*out)->cls = &s_plain_class;
  return rc;
}
static void s_plain_learn (ra_policy_t *pol, const ra_obs_batch_t *o, const ra_feedback_t *fb)
{
  s_plain_learns++;
  s_rec_learn (pol, o, fb);
}
static const ra_policy_class_t s_plain_class = { "rec_plain", "first k, counts learns", s_plain_create,
                                                 s_rec_destroy, s_rec_act, s_plain_learn, s_rec_forget,
                                                 NULL };

static void s_run_frozen (ra_ab_arm_t *arms, int n_arms, int episodes, int frozen, ra_ab_result_t *res)
{
  ra_error_t err;
  ra_client_t *c;
  cr_assert_eq (ra_client_new (ra_server_endpoint (S, 0), 30000, &c, &err), RA_OK, "%s", err.message);
  int64_t ids[2] = { 3, 11 };
  ra_ab_opts_t o = { .env_id = "ECommerce-v1", .split = "test", .tasks = 2, .task_ids = ids,
                     .num_envs = 4, .episodes = episodes, .seed = 7, .max_episode_steps = 12,
                     .frozen_episodes = frozen };
  cr_assert_eq (ra_ab_run (c, &o, arms, n_arms, res, &err), RA_OK, "%s", err.message);
  ra_client_destroy (&c);
}

Test (ab_crn, frozen_episodes_are_the_next_episodes_played_without_learning)
{
  /* a policy that never learns (lr 0: greedy, frozen from the start) plays its frozen episodes
     exactly as it would play episodes E.. of a longer run: same seeds (AB1), same policy */
  ra_ab_arm_t arms[2];
  ra_error_t err;
  cr_assert_eq (ra_ab_arm_parse ("target:lr=0:hidden=8:layers=1", &arms[0], &err), RA_OK, "%s", err.message);
  memset (&arms[1], 0, sizeof arms[1]);
  snprintf (arms[1].spec, sizeof arms[1].spec, "freeze");
  snprintf (arms[1].key, sizeof arms[1].key, "freeze");
  arms[1].cls = &s_fz_class;
  s_n_inst = 0;
  s_freezes = s_learns_after_freeze = 0;
  ra_ab_result_t a, b;
  s_run_frozen (arms, 2, 3, 2, &a);
  cr_assert_eq (s_freezes, 2, "one freeze per (task, arm that has the hook)");
  /* an arm with the hook keeps its feedback (it must not learn from it: the oracle reads its
     next slates there); an arm without one gets none in the frozen episodes */
  cr_assert_gt (s_learns_after_freeze, 0, "an arm with a freeze hook lost its feedback");
  ra_ab_arm_t plain;
  memset (&plain, 0, sizeof plain);
  snprintf (plain.spec, sizeof plain.spec, "plain");
  snprintf (plain.key, sizeof plain.key, "plain");
  plain.cls = &s_plain_class;
  ra_ab_result_t p1, p2;
  s_n_inst = 0;
  s_plain_learns = 0;
  s_run_frozen (&plain, 1, 3, 0, &p1);
  int without = s_plain_learns;
  s_n_inst = 0;
  s_plain_learns = 0;
  s_run_frozen (&plain, 1, 3, 2, &p2);
  cr_assert_gt (without, 0);
  cr_assert_eq (s_plain_learns, without, "learn called in the frozen episodes of an arm without a hook");
  ra_ab_result_fini (&p1);
  ra_ab_result_fini (&p2);
  s_n_inst = 0;
  s_run_frozen (arms, 1, 5, 0, &b);
  cr_assert_eq (a.frozen, 2);
  int nonzero = 0;
  for (int t = 0; t < 2; t++)
    for (int i = 0; i < 4; i++)
      for (int e = 0; e < 5; e++) {
        cr_assert_eq (ra_ab_ep_return (&a, 0, t, i)[e], ra_ab_ep_return (&b, 0, t, i)[e],
                      "task %d env %d episode %d", t, i, e);
        nonzero += ra_ab_ep_return (&a, 0, t, i)[e] != 0;
      }
  cr_assert_gt (nonzero, 0);
  ra_ab_result_fini (&a);
  ra_ab_result_fini (&b);
}
