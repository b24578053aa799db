/*  tests/policies/test_rollout.c - rollout sources: the protocol source (an in-process server on
    a loopback port) and the in-process source give identical trajectories on all four sims for
    the same seeds and slates, and a target policy trained through either ends with identical
    parameters; bad arguments are clear errors.                                               */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "agents/policies/rollout_inproc.h"
#include "agents/policies/rollout_tasks.h"
#include "agents/policies/target.h"
#include "tests/policies/server_thread.h"
#include "env/sims/registry.h"

static ra_client_t *C;

static void setup (void)
{
  ra_error_t err;
  s_server_start ();
  cr_assert_eq (ra_client_new (ra_server_endpoint (S, 0), 20000, &C, &err), RA_OK, "%s", err.message);
}

static void teardown (void)
{
  ra_client_destroy (&C);
  s_server_stop ();
}

TestSuite (rollout, .init = setup, .fini = teardown, .timeout = 120);

static void s_make (const char *id, int n, uint64_t seed, const ra_kv_t *cfg, int ncfg, ra_client_env_t *env)
{
  ra_make_opts_t mo = { .has_seed = true, .seed = seed, .config = cfg, .n_config = ncfg, .autoreset = "same_step" };
  ra_error_t err;
  cr_assert_eq (ra_client_make (C, id, n, &mo, env, &err), RA_OK, "%s: %s", id, err.message);
}

static void s_same_obs (const ra_rollout_t *a, const ra_rollout_t *b, const char *id, int step)
{
  const ra_obs_batch_t *x = &a->obs, *y = &b->obs;
  cr_assert_eq (x->num_envs, y->num_envs);
  cr_assert_eq (x->user_dim, y->user_dim);
  cr_assert_eq (x->cand_dim, y->cand_dim);
  size_t nu = (size_t) x->num_envs * x->user_dim, nc = (size_t) x->num_envs * x->num_candidates * x->cand_dim;
  cr_assert_eq (memcmp (x->user, y->user, nu * sizeof (float)), 0, "%s step %d: user differs", id, step);
  cr_assert_eq (memcmp (x->candidates, y->candidates, nc * sizeof (float)), 0, "%s step %d: candidates differ", id,
                step);
}

Test (rollout, both_sources_give_identical_trajectories_on_every_sim)
{
  int nsims;
  const ra_sim_class_t *const *sims = ra_sims_all (&nsims);
  cr_assert_geq (nsims, 4);
  enum { N = 5, STEPS = 60 };
  for (int si = 0; si < nsims; si++) {
    const char *id = sims[si]->name;
    ra_client_env_t env;
    s_make (id, N, 21, NULL, 0, &env);
    ra_rollout_t *p = NULL, *q = NULL;
    ra_error_t err;
    cr_assert_eq (ra_rollout_protocol_new (C, &env, &p, &err), RA_OK, "%s", err.message);
    ra_rollout_inproc_opts_t o = { .env = id, .num_envs = N, .seed = 21 };
    cr_assert_eq (ra_rollout_inproc_new (&o, &q, &err), RA_OK, "%s", err.message);
    cr_assert_eq (ra_rollout_reset (p, NULL, &err), RA_OK, "%s", err.message);
    cr_assert_eq (ra_rollout_reset (q, NULL, &err), RA_OK, "%s", err.message);
    s_same_obs (p, q, id, -1);
    int K = q->obs.num_candidates, k = q->obs.slate_size, ends = 0;
    int32_t *sl = malloc (sizeof (int32_t) * N * k);
    ra_nn_rng_t r;
    ra_nn_rng_init (&r, 5, (uint64_t) si);
    for (int s = 0; s < STEPS; s++) {
      for (int i = 0; i < N; i++) { /* a distinct slate: k consecutive candidates from a random start */
        int start = (int) (ra_nn_rng_u64 (&r) % (uint64_t) K);
        for (int j = 0; j < k; j++)
          sl[i * k + j] = (int32_t) ((start + j) % K);
      }
      cr_assert_eq (ra_rollout_step (p, sl, &err), RA_OK, "%s", err.message);
      cr_assert_eq (ra_rollout_step (q, sl, &err), RA_OK, "%s", err.message);
      s_same_obs (p, q, id, s);
      cr_assert_eq (memcmp (p->reward, q->reward, N * sizeof (float)), 0, "%s step %d: rewards differ", id, s);
      cr_assert_eq (memcmp (p->done, q->done, N), 0, "%s step %d: done differs", id, s);
      for (int i = 0; i < N; i++)
        ends += q->done[i];
    }
    cr_log_info ("%s: %d episode ends in %d steps x %d envs", id, ends, STEPS, N);
    free (sl);
    ra_rollout_destroy (&p);
    ra_rollout_destroy (&q);
    cr_assert_null (q);
    ra_client_close (C, &env, &err);
    ra_client_env_fini (&env);
  }
}

Test (rollout, training_through_either_source_gives_identical_parameters)
{
  enum { N = 8 };
  static const ra_kv_t cfg[] = { { .key = "retrieval_mix", .type = RA_KV_NUM, .num = 0.0 } };
  ra_client_env_t env;
  s_make ("ECommerce-v1", N, 9, cfg, 1, &env);
  ra_error_t err;
  ra_rollout_t *p = NULL, *q = NULL;
  cr_assert_eq (ra_rollout_protocol_new (C, &env, &p, &err), RA_OK, "%s", err.message);
  ra_rollout_inproc_opts_t o = { .env = "ECommerce-v1", .num_envs = N, .seed = 9, .config = cfg, .n_config = 1 };
  cr_assert_eq (ra_rollout_inproc_new (&o, &q, &err), RA_OK, "%s", err.message);
  ra_nn_backend_t *be = NULL;
  cr_assert_eq (ra_nn_backend_open ("cpu", NULL, &be, &err), RA_OK);
  ra_target_cfg_t tc;
  ra_target_cfg_default (&tc);
  cr_assert_eq (ra_target_cfg_from_env (&tc, &env, &err), RA_OK, "%s", err.message);
  tc.hidden = 16, tc.rollout = 4, tc.seed = 3;
  ra_target_t *a = NULL, *b = NULL;
  cr_assert_eq (ra_target_new (be, &tc, &a, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_target_new (be, &tc, &b, &err), RA_OK, "%s", err.message);
  uint64_t seeds[N];
  for (int i = 0; i < N; i++)
    seeds[i] = 100 + (uint64_t) i;
  cr_assert_eq (ra_target_begin_rollout (a, p, seeds, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_target_begin_rollout (b, q, seeds, &err), RA_OK, "%s", err.message);
  ra_target_stats_t sa = { 0 }, sb = { 0 };
  for (int u = 0; u < 5; u++) {
    cr_assert_eq (ra_target_train_rollout (a, p, &sa, &err), RA_OK, "%s", err.message);
    cr_assert_eq (ra_target_train_rollout (b, q, &sb, &err), RA_OK, "%s", err.message);
  }
  cr_assert_eq (sa.env_steps, 5 * 4 * N);
  cr_assert_eq (sa.reward_sum, sb.reward_sum);
  cr_assert_eq (sa.episodes, sb.episodes);
  size_t n = ra_target_num_params (a);
  float *pa = malloc (n * sizeof (float)), *pb = malloc (n * sizeof (float)), *p0 = malloc (n * sizeof (float));
  ra_target_get_params (a, pa);
  ra_target_get_params (b, pb);
  cr_assert_eq (memcmp (pa, pb, n * sizeof (float)), 0, "trained parameters differ between the sources");
  /* and training moved them */
  ra_target_t *fresh = NULL;
  cr_assert_eq (ra_target_new (be, &tc, &fresh, &err), RA_OK);
  ra_target_get_params (fresh, p0);
  cr_assert_neq (memcmp (pa, p0, n * sizeof (float)), 0);
  /* a source the policy did not begin on is refused */
  cr_assert_eq (ra_target_train_rollout (a, q, NULL, &err), RA_ERR_BAD_CONFIG);
  free (pa), free (pb), free (p0);
  ra_target_destroy (&fresh);
  ra_target_destroy (&a);
  ra_target_destroy (&b);
  ra_nn_backend_destroy (&be);
  ra_rollout_destroy (&p);
  ra_rollout_destroy (&q);
  ra_client_close (C, &env, &err);
  ra_client_env_fini (&env);
}

Test (rollout, bad_arguments_are_clear_errors)
{
  ra_error_t err;
  ra_rollout_t *q = NULL;
  ra_rollout_inproc_opts_t o = { .env = "NoSuch-v0", .num_envs = 2 };
  cr_assert_eq (ra_rollout_inproc_new (&o, &q, &err), RA_ERR_UNKNOWN_ENV);
  cr_assert (strstr (err.message, "NoSuch-v0"), "%s", err.message);
  o.env = "ECommerce-v1";
  o.num_envs = 0;
  cr_assert_eq (ra_rollout_inproc_new (&o, &q, &err), RA_ERR_BAD_CONFIG);
  static const ra_kv_t bad[] = { { .key = "no_such_key", .type = RA_KV_NUM, .num = 1 } };
  o.num_envs = 2, o.config = bad, o.n_config = 1;
  cr_assert_eq (ra_rollout_inproc_new (&o, &q, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "no_such_key"), "%s", err.message);
  cr_assert_null (q);
  /* out-of-range slates are refused, as a server refuses them */
  o.config = NULL, o.n_config = 0;
  cr_assert_eq (ra_rollout_inproc_new (&o, &q, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_rollout_reset (q, NULL, &err), RA_OK);
  int32_t sl[2 * 8] = { 0 };
  for (int i = 0; i < 2 * q->obs.slate_size; i++)
    sl[i] = i % q->obs.slate_size;
  sl[0] = 10000;
  cr_assert_eq (ra_rollout_step (q, sl, &err), RA_ERR_BAD_REQUEST);
  ra_rollout_destroy (&q);
  /* the protocol source needs same_step */
  ra_make_opts_t mo = { .has_seed = true, .seed = 1 };
  ra_client_env_t env;
  cr_assert_eq (ra_client_make (C, "ECommerce-v1", 2, &mo, &env, &err), RA_OK, "%s", err.message);
  ra_rollout_t *p = NULL;
  cr_assert_eq (ra_rollout_protocol_new (C, &env, &p, &err), RA_ERR_BAD_CONFIG);
  cr_assert_null (p);
  ra_client_close (C, &env, &err);
  ra_client_env_fini (&env);
}

/* set_task with masks (one batch on several tasks) and the task-set source: through a server and
   in process the same tasks, the same redraws and the same trajectories; every env runs a task of
   the set, the first reset covers the set, and episode ends move envs to other tasks. */
Test (rollout, task_sets_give_identical_trajectories_on_both_sources)
{
  enum { N = 6, STEPS = 80 };
  static const ra_kv_t cfg[] = { { .key = "task_slots", .type = RA_KV_NUM, .num = 7 } };
  ra_client_env_t env;
  s_make ("ECommerce-v1", N, 4, cfg, 1, &env);
  ra_error_t err;
  ra_rollout_t *p0 = NULL, *q0 = NULL, *p = NULL, *q = NULL;
  cr_assert_eq (ra_rollout_protocol_new (C, &env, &p0, &err), RA_OK, "%s", err.message);
  ra_rollout_inproc_opts_t o = { .env = "ECommerce-v1", .num_envs = N, .seed = 4, .config = cfg, .n_config = 1 };
  cr_assert_eq (ra_rollout_inproc_new (&o, &q0, &err), RA_OK, "%s", err.message);
  /* masked set_task by hand first: half the batch on train:3 */
  uint8_t half[N] = { 1, 1, 1, 0, 0, 0 };
  cr_assert_eq (ra_rollout_set_task (p0, "train", 3, half, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_rollout_set_task (q0, "train", 3, half, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_rollout_reset (p0, NULL, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_rollout_reset (q0, NULL, &err), RA_OK, "%s", err.message);
  s_same_obs (p0, q0, "masked set_task", -1);
  cr_assert_neq (ra_rollout_set_task (q0, NULL, 0, NULL, &err), RA_OK);

  ra_taskset_t ts;
  cr_assert_eq (ra_taskset_parse ("--task", "train:5,9,11,20", &ts, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_rollout_tasks_slots (&ts, N), 5);
  ra_rollout_tasks_opts_t to = { .seed = 8, .redraw = true };
  cr_assert_eq (ra_rollout_tasks_new (p0, N, &ts, &to, &p, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_rollout_tasks_new (q0, N, &ts, &to, &q, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_rollout_reset (p, NULL, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_rollout_reset (q, NULL, &err), RA_OK, "%s", err.message);
  s_same_obs (p, q, "task set", -1);
  bool seen[4] = { false };
  int64_t first[N];
  for (int i = 0; i < N; i++) {
    first[i] = ra_rollout_tasks_current (q, i);
    for (int t = 0; t < 4; t++)
      seen[t] |= first[i] == ts.ids[t];
  }
  for (int t = 0; t < 4; t++)
    cr_assert (seen[t], "task %lld has no env after the first reset", (long long) ts.ids[t]);
  int K = q->obs.num_candidates, k = q->obs.slate_size, moved = 0, ends = 0;
  int32_t sl[N * 8];
  cr_assert_leq (k, 8);
  for (int s = 0; s < STEPS; s++) {
    for (int i = 0; i < N; i++)
      for (int j = 0; j < k; j++)
        sl[i * k + j] = (int32_t) ((s + i + j) % K);
    cr_assert_eq (ra_rollout_step (p, sl, &err), RA_OK, "%s", err.message);
    cr_assert_eq (ra_rollout_step (q, sl, &err), RA_OK, "step %d: %s", s, err.message);
    s_same_obs (p, q, "task set", s);
    cr_assert_eq (memcmp (p->reward, q->reward, N * sizeof (float)), 0, "step %d: rewards differ", s);
    cr_assert_eq (memcmp (p->done, q->done, N), 0, "step %d: done differs", s);
    for (int i = 0; i < N; i++) {
      ends += q->done[i];
      int64_t cur = ra_rollout_tasks_current (q, i);
      cr_assert_eq (cur, ra_rollout_tasks_current (p, i));
      cr_assert (cur == 5 || cur == 9 || cur == 11 || cur == 20);
      moved += cur != first[i];
    }
  }
  cr_assert_gt (ends, 0);
  cr_assert_gt (moved, 0, "no env changed task after %d episode ends", ends);
  cr_assert_neq (ra_rollout_set_task (q, "train", 1, NULL, &err), RA_OK);
  ra_rollout_destroy (&p);
  ra_rollout_destroy (&q);
  ra_rollout_destroy (&p0);
  ra_rollout_destroy (&q0);
  ra_taskset_fini (&ts);
  ra_client_close (C, &env, &err);
  ra_client_env_fini (&env);
}

/* first_env (recarena-meta's ranks each play a slice of one batch): a batch split into two
   sources, the second with first_env = its offset, plays every env exactly as the whole batch
   does: the same tasks, draws, rewards and ends. */
Test (rollout, a_split_task_set_batch_plays_as_the_whole_one)
{
  enum { N = 6, H = 3, STEPS = 80 };
  static const ra_kv_t cfg[] = { { .key = "task_slots", .type = RA_KV_NUM, .num = 7 } };
  ra_error_t err;
  ra_taskset_t ts;
  cr_assert_eq (ra_taskset_parse ("--task", "train:5,9,11,20,31", &ts, &err), RA_OK, "%s", err.message);
  ra_rollout_t *in[3] = { NULL }, *src[3] = { NULL };
  int n[3] = { N, H, N - H };
  for (int s = 0; s < 3; s++) {
    ra_rollout_inproc_opts_t o = { .env = "ECommerce-v1", .num_envs = n[s], .seed = 4, .config = cfg, .n_config = 1 };
    cr_assert_eq (ra_rollout_inproc_new (&o, &in[s], &err), RA_OK, "%s", err.message);
    ra_rollout_tasks_opts_t to = { .seed = 8, .redraw = true, .first_env = s == 2 ? H : 0 };
    cr_assert_eq (ra_rollout_tasks_new (in[s], n[s], &ts, &to, &src[s], &err), RA_OK, "%s", err.message);
  }
  ra_rollout_tasks_opts_t bad = { .seed = 8, .first_env = -1 };
  ra_rollout_t *no = NULL;
  cr_assert_eq (ra_rollout_tasks_new (in[0], N, &ts, &bad, &no, &err), RA_ERR_BAD_CONFIG);
  uint64_t seeds[N];
  for (int i = 0; i < N; i++)
    seeds[i] = 1000 + 17 * (uint64_t) i;
  cr_assert_eq (ra_rollout_reset (src[0], seeds, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_rollout_reset (src[1], seeds, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_rollout_reset (src[2], seeds + H, &err), RA_OK, "%s", err.message);
  int K = src[0]->obs.num_candidates, k = src[0]->obs.slate_size, ends = 0;
  int32_t sl[N * 8];
  cr_assert_leq (k, 8);
  for (int s = 0; s < STEPS; s++) {
    for (int i = 0; i < N; i++)
      for (int j = 0; j < k; j++)
        sl[i * k + j] = (int32_t) ((3 * s + i + j) % K);
    cr_assert_eq (ra_rollout_step (src[0], sl, &err), RA_OK, "%s", err.message);
    cr_assert_eq (ra_rollout_step (src[1], sl, &err), RA_OK, "%s", err.message);
    cr_assert_eq (ra_rollout_step (src[2], sl + H * k, &err), RA_OK, "%s", err.message);
    for (int i = 0; i < N; i++) {
      const ra_rollout_t *part = i < H ? src[1] : src[2];
      int j = i < H ? i : i - H;
      ends += src[0]->done[i];
      cr_assert_eq (ra_rollout_tasks_current (src[0], i), ra_rollout_tasks_current (part, j),
                    "step %d env %d: task differs", s, i);
      cr_assert_eq (src[0]->reward[i], part->reward[j], "step %d env %d: reward differs", s, i);
      cr_assert_eq (src[0]->done[i], part->done[j], "step %d env %d: done differs", s, i);
    }
  }
  cr_assert_gt (ends, 0);
  for (int s = 0; s < 3; s++) {
    ra_rollout_destroy (&src[s]);
    ra_rollout_destroy (&in[s]);
  }
  ra_taskset_fini (&ts);
}
