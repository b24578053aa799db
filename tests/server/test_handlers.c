/*  tests/server/test_handlers.c - every op and every error code, called directly through the
    command table (no ZeroMQ), plus autoreset semantics, "a bad request changes nothing",
    determinism across worker counts and batch sizes, and idle expiry.                           */
#include <math.h>
#include <time.h>

#include "env/server/server_int.h"   /* reply_owner, for the zero-copy test */
#include "env/sims/registry.h"
#include "helpers.h"

#define ENV "ECommerce-v1"
#define K 20
#define SLATE 3

static th_t T;

static void setup1 (void) { th_init (&T, 1); }
static void teardown (void) { th_fini (&T); }

TestSuite (handlers, .init = setup1, .fini = teardown, .timeout = 60);

Test (handlers, hello_reports_server_limits_and_envs)
{
  ra_msg_out_t *m = th_begin (&T, "hello", 2);
  ra_msg_out_str (m, "client");
  ra_msg_out_str (m, "test");
  ra_msg_out_str (m, "versions");
  ra_msg_out_array (m, 1);
  ra_msg_out_int (m, 1);
  cr_assert_eq (th_call (&T), RA_OK, "%s", T.err.message);
  int64_t v;
  cr_assert_eq (ra_get_int (T.out.root, "version", &v, NULL), RA_OK);
  cr_assert_eq (v, 1);
  const msgpack_object *limits = th_map (&T, "limits");
  int64_t max_envs;
  cr_assert_eq (ra_get_int (limits, "max_envs", &max_envs, NULL), RA_OK);
  cr_assert_eq (max_envs, 65536);
  const msgpack_object *envs = ra_map_get (T.out.root, "envs");
  cr_assert (envs && envs->type == MSGPACK_OBJECT_ARRAY && envs->via.array.size >= 1);
  bool found = false;
  for (uint32_t i = 0; i < envs->via.array.size; i++)
    found |= ra_obj_is_str (&envs->via.array.ptr[i], ENV);
  cr_assert (found);
}

Test (handlers, hello_refuses_other_major_versions)
{
  ra_msg_out_t *m = th_begin (&T, "hello", 1);
  ra_msg_out_str (m, "versions");
  ra_msg_out_array (m, 1);
  ra_msg_out_int (m, 2);
  cr_assert_eq (th_call (&T), RA_ERR_VERSION);
  /* A header with v = 2 is refused before dispatch, with its id. */
  ra_msg_out_t raw;
  ra_msg_out_init (&raw);
  ra_msg_out_map (&raw, 3);
  ra_msg_out_str (&raw, "v");
  ra_msg_out_int (&raw, 2);
  ra_msg_out_str (&raw, "id");
  ra_msg_out_uint (&raw, 77);
  ra_msg_out_str (&raw, "op");
  ra_msg_out_str (&raw, "ping");
  ra_server_handle_raw (T.srv, raw.head.data, raw.head.size, 0, NULL, NULL, &T.rep);
  cr_assert_eq (th_read_reply (&T, 77), RA_ERR_VERSION);
  ra_msg_out_fini (&raw);
}

Test (handlers, list_describes_every_env_with_config_defaults)
{
  th_begin (&T, "list", 0);
  cr_assert_eq (th_call (&T), RA_OK);
  const msgpack_object *envs = ra_map_get (T.out.root, "envs");
  cr_assert (envs && envs->type == MSGPACK_OBJECT_ARRAY && envs->via.array.size >= 1);
  const msgpack_object *e0 = &envs->via.array.ptr[0];
  const char *id;
  int len;
  cr_assert_eq (ra_get_str (e0, "id", &id, &len, NULL), RA_OK);
  const msgpack_object *cfg = ra_map_get (e0, "config");
  cr_assert (cfg && cfg->type == MSGPACK_OBJECT_MAP && cfg->via.map.size > 0);
}

Test (handlers, make_returns_spaces_task_and_metadata)
{
  int64_t h = th_make (&T, ENV, 4, 7, NULL, 0);
  cr_assert_gt (h, 0, "%s", T.err.message);
  const msgpack_object *os = th_map (&T, "observation_space"), *as = th_map (&T, "action_space");
  cr_assert (ra_obj_is_str (ra_map_get (os, "type"), "Dict"));
  cr_assert (ra_obj_is_str (ra_map_get (as, "type"), "MultiDiscrete"));
  const msgpack_object *md = th_map (&T, "metadata");
  cr_assert (ra_obj_is_str (ra_map_get (md, "autoreset_mode"), "next_step"));
  cr_assert (ra_obj_is_str (ra_map_get (T.out.root, "autoreset"), "next_step"));
  const msgpack_object *task = th_map (&T, "task");
  cr_assert_gt (task->via.map.size, 0);
  int64_t mes;
  cr_assert_eq (ra_get_int (T.out.root, "max_episode_steps", &mes, NULL), RA_OK);
  cr_assert_gt (mes, 0);
  const msgpack_object *rr = ra_map_get (T.out.root, "reward_range");
  cr_assert (rr && rr->type == MSGPACK_OBJECT_ARRAY && rr->via.array.size == 2);
}

Test (handlers, make_with_discrete_slate_has_discrete_action_space)
{
  ra_msg_out_t *m = th_begin (&T, "make", 3);
  ra_msg_out_str (m, "env");
  ra_msg_out_str (m, ENV);
  ra_msg_out_str (m, "num_envs");
  ra_msg_out_int (m, 2);
  ra_msg_out_str (m, "config");
  ra_msg_out_map (m, 1);
  ra_msg_out_str (m, "slate_size");
  ra_msg_out_int (m, 1);
  cr_assert_eq (th_call (&T), RA_OK, "%s", T.err.message);
  int64_t h;
  ra_get_int (T.out.root, "handle", &h, NULL);
  cr_assert (ra_obj_is_str (ra_map_get (th_map (&T, "action_space"), "type"), "Discrete"));
  cr_assert_eq (th_reset (&T, h, 1, NULL, 0), RA_OK);
  int32_t a1[2] = { 0, 1 };
  cr_assert_eq (th_step (&T, h, a1, 2, 1), RA_OK, "%s", T.err.message);
  int32_t a2[4] = { 0, 1, 2, 3 };
  cr_assert_eq (th_step (&T, h, a2, 2, 2), RA_ERR_BAD_ACTION, "(N, 2) for Discrete is refused");
}

Test (handlers, make_flattens_nested_config_and_reports_bad_keys)
{
  ra_msg_out_t *m = th_begin (&T, "make", 3);
  ra_msg_out_str (m, "env");
  ra_msg_out_str (m, ENV);
  ra_msg_out_str (m, "num_envs");
  ra_msg_out_int (m, 1);
  ra_msg_out_str (m, "config");
  ra_msg_out_map (m, 2);
  ra_msg_out_str (m, "reward_weights");
  ra_msg_out_map (m, 1);
  ra_msg_out_str (m, "clicks");
  ra_msg_out_double (m, 1.0);
  ra_msg_out_str (m, "task");
  ra_msg_out_map (m, 2);
  ra_msg_out_str (m, "split");
  ra_msg_out_str (m, "train");
  ra_msg_out_str (m, "id");
  ra_msg_out_int (m, 3);
  cr_assert_eq (th_call (&T), RA_OK, "%s", T.err.message);

  m = th_begin (&T, "make", 3);
  ra_msg_out_str (m, "env");
  ra_msg_out_str (m, ENV);
  ra_msg_out_str (m, "num_envs");
  ra_msg_out_int (m, 1);
  ra_msg_out_str (m, "config");
  ra_msg_out_map (m, 1);
  ra_msg_out_str (m, "no_such_key");
  ra_msg_out_int (m, 1);
  cr_assert_eq (th_call (&T), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (T.err.message, "no_such_key"), "names the key: %s", T.err.message);

  m = th_begin (&T, "make", 3);
  ra_msg_out_str (m, "env");
  ra_msg_out_str (m, ENV);
  ra_msg_out_str (m, "num_envs");
  ra_msg_out_int (m, 1);
  ra_msg_out_str (m, "config");
  ra_msg_out_map (m, 1);
  ra_msg_out_str (m, "num_candidates");
  ra_msg_out_array (m, 0);
  cr_assert_eq (th_call (&T), RA_ERR_BAD_CONFIG);

  cr_assert_lt (th_make (&T, ENV, 1, 1, "sometimes", 0), 0);
  cr_assert_eq (T.err.code, RA_ERR_BAD_CONFIG);
  cr_assert_eq (th_make (&T, ENV, 1, 1, NULL, -5) > 0, true, "max_episode_steps <= 0 means default");
}

Test (handlers, make_errors_have_their_codes)
{
  cr_assert_lt (th_make (&T, "Nope-v0", 1, 1, NULL, 0), 0);
  cr_assert_eq (T.err.code, RA_ERR_UNKNOWN_ENV);
  cr_assert_lt (th_make (&T, ENV, 1000000, 1, NULL, 0), 0);
  cr_assert_eq (T.err.code, RA_ERR_LIMIT);
  cr_assert_lt (th_make (&T, ENV, 0, 1, NULL, 0), 0);
  cr_assert_eq (T.err.code, RA_ERR_BAD_REQUEST);
  ra_msg_out_t *m = th_begin (&T, "make", 2);
  ra_msg_out_str (m, "env");
  ra_msg_out_str (m, ENV);
  ra_msg_out_str (m, "num_envs");
  ra_msg_out_str (m, "four");
  cr_assert_eq (th_call (&T), RA_ERR_BAD_REQUEST);
  cr_assert (strstr (T.err.message, "num_envs"), "%s", T.err.message);
  th_begin (&T, "make", 0);
  cr_assert_eq (th_call (&T), RA_ERR_BAD_REQUEST);
  ra_server_counters_t c;
  ra_server_counters (T.srv, &c);
  cr_assert_eq (c.sessions, 0, "failed makes leave no session");
}

Test (handlers, sessions_are_limited)
{
  th_fini (&T);
  ra_server_opts_t o;
  ra_server_opts_default (&o);
  o.workers = 1;
  o.max_sessions = 2;
  th_init_opts (&T, &o);
  int64_t h1 = th_make (&T, ENV, 1, 1, NULL, 0);
  cr_assert_gt (th_make (&T, ENV, 1, 1, NULL, 0), 0);
  cr_assert_lt (th_make (&T, ENV, 1, 1, NULL, 0), 0);
  cr_assert_eq (T.err.code, RA_ERR_LIMIT);
  ra_msg_out_t *m = th_begin (&T, "close", 1);
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, h1);
  cr_assert_eq (th_call (&T), RA_OK);
  cr_assert_gt (th_make (&T, ENV, 1, 1, NULL, 0), 0, "a closed session frees its slot");
}

Test (handlers, unknown_op_and_garbage_are_refused)
{
  th_begin (&T, "frobnicate", 0);
  cr_assert_eq (th_call (&T), RA_ERR_UNKNOWN_OP);
  const char garbage[] = "\xc1\xff\x00garbage";
  ra_server_handle_raw (T.srv, garbage, sizeof garbage, 0, NULL, NULL, &T.rep);
  cr_assert_eq (th_read_reply (&T, 0), RA_ERR_BAD_REQUEST);
  ra_server_handle_raw (T.srv, "", 0, 0, NULL, NULL, &T.rep);
  cr_assert_eq (th_read_reply (&T, 0), RA_ERR_BAD_REQUEST);
  /* The id survives when it was readable. */
  ra_msg_out_t raw;
  ra_msg_out_init (&raw);
  ra_msg_out_map (&raw, 3);
  ra_msg_out_str (&raw, "v");
  ra_msg_out_int (&raw, 1);
  ra_msg_out_str (&raw, "id");
  ra_msg_out_uint (&raw, 4242);
  ra_msg_out_str (&raw, "op");
  ra_msg_out_int (&raw, 5);
  ra_server_handle_raw (T.srv, raw.head.data, raw.head.size, 0, NULL, NULL, &T.rep);
  cr_assert_eq (th_read_reply (&T, 4242), RA_ERR_BAD_REQUEST);
  ra_msg_out_fini (&raw);
}

Test (handlers, handles_that_do_not_exist_are_refused)
{
  cr_assert_eq (th_reset (&T, 12345, 1, NULL, 0), RA_ERR_NO_SUCH_HANDLE);
  cr_assert_eq (th_reset (&T, -1, 1, NULL, 0), RA_ERR_NO_SUCH_HANDLE);
  int64_t h = th_make (&T, ENV, 2, 1, NULL, 0);
  ra_msg_out_t *m = th_begin (&T, "close", 1);
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, h);
  cr_assert_eq (th_call (&T), RA_OK);
  cr_assert_eq (th_reset (&T, h, 1, NULL, 0), RA_ERR_NO_SUCH_HANDLE);
  m = th_begin (&T, "close", 1);
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, h);
  cr_assert_eq (th_call (&T), RA_ERR_NO_SUCH_HANDLE, "closing twice");
  m = th_begin (&T, "step", 0);
  cr_assert_eq (th_call (&T), RA_ERR_BAD_REQUEST, "missing handle");
  m = th_begin (&T, "render", 1);
  ra_msg_out_str (m, "handle");
  ra_msg_out_str (m, "one");
  cr_assert_eq (th_call (&T), RA_ERR_BAD_REQUEST, "mistyped handle");
}

Test (handlers, step_before_reset_needs_reset)
{
  int64_t h = th_make (&T, ENV, 3, 1, NULL, 0);
  int32_t a[9];
  for (int i = 0; i < 3; i++)
    th_policy (a + 3 * i, i, 0, K, SLATE);
  cr_assert_eq (th_step (&T, h, a, 3, SLATE), RA_ERR_NEEDS_RESET);
  cr_assert_eq (T.err.env_index, 0);
  cr_assert_eq (th_reset (&T, h, 1, NULL, 0), RA_OK);
  cr_assert_eq (th_step (&T, h, a, 3, SLATE), RA_OK, "%s", T.err.message);
}

Test (handlers, bad_actions_name_the_env)
{
  int64_t h = th_make (&T, ENV, 4, 1, NULL, 0);
  cr_assert_eq (th_reset (&T, h, 1, NULL, 0), RA_OK);
  int32_t a[12];
  for (int i = 0; i < 4; i++)
    th_policy (a + 3 * i, i, 0, K, SLATE);
  int32_t bad[12];
  memcpy (bad, a, sizeof a);
  bad[2 * 3 + 1] = K;   /* env 2 out of range */
  cr_assert_eq (th_step (&T, h, bad, 4, SLATE), RA_ERR_BAD_ACTION);
  cr_assert_eq (T.err.env_index, 2);
  memcpy (bad, a, sizeof a);
  bad[3 * 3 + 2] = bad[3 * 3];   /* env 3 repeats */
  cr_assert_eq (th_step (&T, h, bad, 4, SLATE), RA_ERR_BAD_ACTION);
  cr_assert_eq (T.err.env_index, 3);
  memcpy (bad, a, sizeof a);
  bad[1 * 3] = -1;
  cr_assert_eq (th_step (&T, h, bad, 4, SLATE), RA_ERR_BAD_ACTION);
  cr_assert_eq (T.err.env_index, 1);
  /* shapes and dtypes */
  cr_assert_eq (th_step (&T, h, a, 3, SLATE), RA_ERR_BAD_ACTION);
  cr_assert_eq (th_step (&T, h, a, 4, 1), RA_ERR_BAD_ACTION);
  float f[12] = { 0 };
  int64_t shape[2] = { 4, 3 };
  cr_assert_eq (th_step_raw (&T, h, RA_DTYPE_F32, 2, shape, f), RA_ERR_BAD_ACTION);
  cr_assert_eq (th_step_raw (&T, h, RA_DTYPE_BOOL, 2, shape, f), RA_ERR_BAD_ACTION);
  /* any integer dtype works */
  int64_t a64[12];
  uint8_t a8[12];
  for (int i = 0; i < 12; i++) {
    a64[i] = a[i];
    a8[i] = (uint8_t) a[i];
  }
  cr_assert_eq (th_step_raw (&T, h, RA_DTYPE_I64, 2, shape, a64), RA_OK, "%s", T.err.message);
  cr_assert_eq (th_step_raw (&T, h, RA_DTYPE_U8, 2, shape, a8), RA_OK, "%s", T.err.message);
  /* a tensor reference whose frame is the wrong size */
  ra_msg_out_t *m = th_begin (&T, "step", 2);
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, h);
  ra_msg_out_str (m, "action");
  ra_msg_out_map (m, 3);
  ra_msg_out_str (m, "dtype");
  ra_msg_out_str (m, "i32");
  ra_msg_out_str (m, "shape");
  ra_msg_out_array (m, 2);
  ra_msg_out_int (m, 4);
  ra_msg_out_int (m, 3);
  ra_msg_out_str (m, "frame");
  ra_msg_out_int (m, 1);
  cr_assert_eq (th_call (&T), RA_ERR_BAD_ACTION, "frame 1 does not exist");
  m = th_begin (&T, "step", 1);
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, h);
  cr_assert_eq (th_call (&T), RA_ERR_BAD_REQUEST, "missing action");
}

/* Runs steps on handle with th_policy, folding every step into digests. bad_at: before that step,
   also send a step with a bad action (or -1 for never). */
static void s_run (th_t *t, int64_t h, int n, int steps, int bad_at, uint64_t *digests)
{
  int32_t *a = calloc ((size_t) n * SLATE, sizeof *a);
  for (int s = 0; s < steps; s++) {
    if (s == bad_at) {
      for (int i = 0; i < n; i++)
        th_policy (a + SLATE * i, i, s, K, SLATE);
      a[SLATE * (n - 1)] = 99;
      cr_assert_eq (th_step (t, h, a, n, SLATE), RA_ERR_BAD_ACTION);
      a[SLATE * (n - 1)] = a[SLATE * (n - 1) + 1];
      cr_assert_eq (th_step (t, h, a, n, SLATE), RA_ERR_BAD_ACTION);
      cr_assert_eq (th_reset (t, h + 1, 5, NULL, 0), RA_ERR_NO_SUCH_HANDLE);
      bool mask[1] = { true };
      cr_assert_gt (n, 1);
      cr_assert_eq (th_reset (t, h, 5, mask, 1), RA_ERR_BAD_REQUEST, "a mask of the wrong length");
    }
    for (int i = 0; i < n; i++)
      th_policy (a + SLATE * i, i, s, K, SLATE);
    cr_assert_eq (th_step (t, h, a, n, SLATE), RA_OK, "%s", t->err.message);
    th_digest_step (t, digests, n, true);
  }
  free (a);
}

Test (handlers, a_bad_request_changes_nothing)
{
  const int n = 4, steps = 30;
  uint64_t d1[4] = { 0 }, d2[4] = { 0 };
  int64_t h1 = th_make (&T, ENV, n, 11, NULL, 0);
  cr_assert_eq (th_reset (&T, h1, 100, NULL, 0), RA_OK);
  s_run (&T, h1, n, steps, -1, d1);
  int64_t h2 = th_make (&T, ENV, n, 11, NULL, 0);
  cr_assert_eq (th_reset (&T, h2, 100, NULL, 0), RA_OK);
  s_run (&T, h2, n, steps, 10, d2);
  for (int i = 0; i < n; i++)
    cr_assert_eq (d1[i], d2[i], "env %d diverged after refused requests", i);
}

Test (handlers, render_set_task_ping_stats)
{
  int64_t h = th_make (&T, ENV, 2, 1, NULL, 0);
  cr_assert_eq (th_reset (&T, h, 1, NULL, 0), RA_OK);
  ra_msg_out_t *m = th_begin (&T, "render", 2);
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, h);
  ra_msg_out_str (m, "index");
  ra_msg_out_int (m, 1);
  cr_assert_eq (th_call (&T), RA_OK, "%s", T.err.message);
  const char *text;
  int len;
  cr_assert_eq (ra_get_str (T.out.root, "text", &text, &len, NULL), RA_OK);
  cr_assert_gt (len, 0);
  m = th_begin (&T, "render", 2);
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, h);
  ra_msg_out_str (m, "index");
  ra_msg_out_int (m, 2);
  cr_assert_eq (th_call (&T), RA_ERR_BAD_REQUEST);

  m = th_begin (&T, "set_task", 2);
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, h);
  ra_msg_out_str (m, "task");
  ra_msg_out_map (m, 2);
  ra_msg_out_str (m, "split");
  ra_msg_out_str (m, "test");
  ra_msg_out_str (m, "id");
  ra_msg_out_int (m, 5);
  cr_assert_eq (th_call (&T), RA_OK, "%s", T.err.message);
  cr_assert_gt (th_map (&T, "task")->via.map.size, 0);
  m = th_begin (&T, "set_task", 3);
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, h);
  ra_msg_out_str (m, "task");
  ra_msg_out_map (m, 1);
  ra_msg_out_str (m, "params");
  ra_msg_out_map (m, 1);
  ra_msg_out_str (m, "drift");
  ra_msg_out_double (m, 0.3);
  ra_msg_out_str (m, "mask");
  uint8_t mask[2] = { 0, 1 };
  int64_t shape[1] = { 2 };
  ra_msg_out_tensor (m, RA_DTYPE_BOOL, 1, shape, mask);
  cr_assert_eq (th_call (&T), RA_OK, "%s", T.err.message);
  m = th_begin (&T, "set_task", 2);
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, h);
  ra_msg_out_str (m, "task");
  ra_msg_out_map (m, 1);
  ra_msg_out_str (m, "colour");
  ra_msg_out_str (m, "blue");
  cr_assert_eq (th_call (&T), RA_ERR_BAD_CONFIG);
  m = th_begin (&T, "set_task", 1);
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, h);
  cr_assert_eq (th_call (&T), RA_ERR_BAD_REQUEST, "missing task");

  th_begin (&T, "ping", 0);
  cr_assert_eq (th_call (&T), RA_OK);
  int32_t a[6];
  th_policy (a, 0, 0, K, SLATE);
  th_policy (a + 3, 1, 0, K, SLATE);
  cr_assert_eq (th_step (&T, h, a, 2, SLATE), RA_OK);
  th_begin (&T, "stats", 0);
  cr_assert_eq (th_call (&T), RA_OK);
  int64_t sessions, envs, steps, errors;
  double up;
  cr_assert_eq (ra_get_int (T.out.root, "sessions", &sessions, NULL), RA_OK);
  cr_assert_eq (ra_get_int (T.out.root, "envs", &envs, NULL), RA_OK);
  cr_assert_eq (ra_get_int (T.out.root, "steps", &steps, NULL), RA_OK);
  cr_assert_eq (ra_get_int (T.out.root, "errors", &errors, NULL), RA_OK);
  cr_assert_eq (ra_get_double (T.out.root, "uptime_s", &up, NULL), RA_OK);
  cr_assert_eq (sessions, 1);
  cr_assert_eq (envs, 2);
  cr_assert_eq (steps, 2);
  cr_assert_eq (errors, 3);
}

Test (handlers, reset_seeds_validated)
{
  int64_t h = th_make (&T, ENV, 2, 1, NULL, 0);
  ra_msg_out_t *m = th_begin (&T, "reset", 2);
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, h);
  ra_msg_out_str (m, "seed");
  ra_msg_out_array (m, 3);
  for (int i = 0; i < 3; i++)
    ra_msg_out_int (m, i);
  cr_assert_eq (th_call (&T), RA_ERR_BAD_REQUEST, "3 seeds for 2 envs");
  m = th_begin (&T, "reset", 2);
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, h);
  ra_msg_out_str (m, "seed");
  ra_msg_out_int (m, -3);
  cr_assert_eq (th_call (&T), RA_ERR_BAD_REQUEST, "negative seed");
  m = th_begin (&T, "reset", 2);
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, h);
  ra_msg_out_str (m, "seed");
  ra_msg_out_str (m, "x");
  cr_assert_eq (th_call (&T), RA_ERR_BAD_REQUEST);
  /* a list seeds each env: [10, 11] equals the int 10 */
  uint64_t da[2] = { 0 }, db[2] = { 0 };
  m = th_begin (&T, "reset", 2);
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, h);
  ra_msg_out_str (m, "seed");
  ra_msg_out_array (m, 2);
  ra_msg_out_int (m, 10);
  ra_msg_out_int (m, 11);
  cr_assert_eq (th_call (&T), RA_OK, "%s", T.err.message);
  th_digest_step (&T, da, 2, false);
  cr_assert_eq (th_reset (&T, h, 10, NULL, 0), RA_OK);
  th_digest_step (&T, db, 2, false);
  cr_assert_eq (da[0], db[0]);
  cr_assert_eq (da[1], db[1]);
}

/* ---- autoreset ---------------------------------------------------------------------------- */

static bool s_get_bool (const ra_tensor_t *t, int i) { return ((const uint8_t *) t->data)[i] != 0; }

Test (handlers, next_step_resets_on_the_following_step)
{
  const int n = 8, max = 3;
  int64_t h = th_make (&T, ENV, n, 3, NULL, max);
  cr_assert_eq (th_reset (&T, h, 3, NULL, 0), RA_OK);
  bool prev_ended[8] = { 0 };
  int ep[8] = { 0 }, ended_seen = 0;
  int32_t a[24];
  for (int s = 0; s < 12; s++) {
    for (int i = 0; i < n; i++)
      th_policy (a + 3 * i, i, s, K, SLATE);
    cr_assert_eq (th_step (&T, h, a, n, SLATE), RA_OK, "%s", T.err.message);
    ra_tensor_t r = th_tensor (&T, T.out.root, "reward"), te = th_tensor (&T, T.out.root, "terminated"),
                tr = th_tensor (&T, T.out.root, "truncated");
    const msgpack_object *info = th_map (&T, "info");
    ra_tensor_t mask = th_tensor (&T, info, "_clicked");
    th_tensor (&T, info, "clicked");
    cr_assert_null (ra_map_get (T.out.root, "final_obs"));
    for (int i = 0; i < n; i++) {
      if (prev_ended[i]) {
        cr_assert_eq (((const float *) r.data)[i], 0.0f);
        cr_assert (!s_get_bool (&te, i) && !s_get_bool (&tr, i));
        cr_assert (!s_get_bool (&mask, i), "a reset step carries no step info");
        prev_ended[i] = false;
        ep[i] = 0;
        continue;
      }
      cr_assert (s_get_bool (&mask, i));
      ep[i]++;
      bool term = s_get_bool (&te, i), trunc = s_get_bool (&tr, i);
      cr_assert (!(term && trunc));
      cr_assert_eq (trunc, !term && ep[i] == max, "env %d step %d of its episode", i, ep[i]);
      prev_ended[i] = term || trunc;
      ended_seen += prev_ended[i];
    }
  }
  cr_assert_gt (ended_seen, n, "episodes ended and were reset");
}

/* Runs one env with actions keyed by the step within the episode, for n_calls step calls.
   Stores per call: obs digest, final_obs digest (same_step), ended flag. */
static void s_traj (th_t *t, const char *mode, int calls, uint64_t *obs_d, uint64_t *final_d, bool *ended)
{
  int64_t h = th_make (t, ENV, 1, 21, mode, 4);
  cr_assert_eq (th_reset (t, h, 21, NULL, 0), RA_OK);
  int ep = 0;
  bool prev = false;
  for (int s = 0; s < calls; s++) {
    int32_t a[3];
    th_policy (a, 0, prev ? 0 : ep, K, SLATE);
    cr_assert_eq (th_step (t, h, a, 1, SLATE), RA_OK, "%s", t->err.message);
    obs_d[s] = 0;
    th_digest_step (t, &obs_d[s], 1, false);
    ra_tensor_t te = th_tensor (t, t->out.root, "terminated"), tr = th_tensor (t, t->out.root, "truncated");
    ended[s] = s_get_bool (&te, 0) || s_get_bool (&tr, 0);
    final_d[s] = 0;
    if (!strcmp (mode, "same_step")) {
      /* Gymnasium 1.x: final_obs / final_info sit inside info, only in a step where an env ended. */
      const msgpack_object *info = th_map (t, "info");
      cr_assert_null (ra_map_get (t->out.root, "final_obs"), "final_obs belongs inside info");
      const msgpack_object *fo = ra_map_get (info, "final_obs");
      cr_assert_eq (fo != NULL, ended[s], "final_obs present exactly when an env ended");
      ra_tensor_t im = th_tensor (t, info, "_clicked");
      cr_assert_eq (s_get_bool (&im, 0), !ended[s]);
      if (ended[s]) {
        ra_tensor_t fm = th_tensor (t, info, "_final_obs");
        cr_assert (s_get_bool (&fm, 0));
        const msgpack_object *finfo = ra_map_get (info, "final_info");
        cr_assert (finfo && finfo->type == MSGPACK_OBJECT_MAP, "final_info beside final_obs");
        ra_tensor_t fim = th_tensor (t, finfo, "_clicked");
        cr_assert (s_get_bool (&fim, 0));
        cr_assert_eq (fo->type, MSGPACK_OBJECT_MAP);
        for (uint32_t f = 0; f < fo->via.map.size; f++) {
          ra_tensor_t x;
          cr_assert_eq (ra_msg_in_tensor (&t->out, &fo->via.map.ptr[f].val, "final_obs", &x, NULL), RA_OK);
          final_d[s] = th_fnv (final_d[s], x.data, x.nbytes);
        }
      }
      ep = ended[s] ? 0 : ep + 1;
    } else {
      ep = prev ? 0 : ep + 1;
      if (prev)
        ep = 0;
      else if (ended[s])
        ep = 0;
    }
    prev = !strcmp (mode, "next_step") && ended[s] && !prev;
  }
}

Test (handlers, same_step_equals_next_step_shifted)
{
  enum { CALLS = 14 };
  uint64_t on[CALLS], fn[CALLS], os[CALLS], fs[CALLS];
  bool en[CALLS], es[CALLS];
  s_traj (&T, "next_step", CALLS, on, fn, en);
  s_traj (&T, "same_step", CALLS, os, fs, es);
  /* Walk both: a next_step episode end at call j (then a reset call j + 1) corresponds to a
     same_step end at call j' whose final_obs is next_step's obs at j and whose obs is next_step's
     obs at j + 1. */
  int j = 0, ends = 0;
  for (int js = 0; js < CALLS && j < CALLS; js++, j++) {
    if (es[js]) {
      cr_assert (en[j], "same_step ended at %d, next_step at %d did not", js, j);
      cr_assert_neq (fs[js], 0);
      if (j + 1 < CALLS)
        cr_assert_eq (os[js], on[j + 1], "same_step obs is the reset obs");
      j++;
      ends++;
    } else {
      cr_assert (!en[j]);
      cr_assert_eq (os[js], on[j], "call %d / %d", js, j);
    }
  }
  cr_assert_gt (ends, 0);
}

Test (handlers, same_step_final_obs_is_the_terminal_obs)
{
  /* final_obs at the end equals the obs a disabled-mode session shows at that step. */
  enum { CALLS = 6 };
  uint64_t os[CALLS], fs[CALLS], od[CALLS], fd[CALLS];
  bool es[CALLS], ed[CALLS];
  s_traj (&T, "same_step", CALLS, os, fs, es);
  s_traj (&T, "disabled", 4, od, fd, ed);
  cr_assert (es[3] || es[0] || es[1] || es[2], "an end within 4 steps (max_episode_steps 4)");
  int end = 0;
  while (!es[end])
    end++;
  cr_assert (ed[end]);
  /* disabled digests fold all obs fields the same way as final_obs */
  cr_assert_eq (fs[end], od[end]);
}

Test (handlers, disabled_needs_reset_and_honours_reset_mask)
{
  const int n = 2;
  int64_t h = th_make (&T, ENV, n, 5, "disabled", 2);
  cr_assert_eq (th_reset (&T, h, 5, NULL, 0), RA_OK);
  int32_t a[6];
  th_policy (a, 0, 0, K, SLATE);
  th_policy (a + 3, 1, 0, K, SLATE);
  bool ended[2] = { false, false };
  for (int s = 0; s < 2; s++) {
    cr_assert_eq (th_step (&T, h, a, n, SLATE), RA_OK, "%s", T.err.message);
    ra_tensor_t te = th_tensor (&T, T.out.root, "terminated"), tr = th_tensor (&T, T.out.root, "truncated");
    for (int i = 0; i < n; i++)
      ended[i] |= s_get_bool (&te, i) || s_get_bool (&tr, i);
    if (ended[0] || ended[1])
      break;
  }
  cr_assert (ended[0] && ended[1], "both end within max_episode_steps 2 (or earlier)");
  cr_assert_eq (th_step (&T, h, a, n, SLATE), RA_ERR_NEEDS_RESET);
  cr_assert_eq (T.err.env_index, 0);
  bool m0[2] = { true, false }, m1[2] = { false, true };
  cr_assert_eq (th_reset (&T, h, -1, m0, n), RA_OK);
  cr_assert_eq (th_step (&T, h, a, n, SLATE), RA_ERR_NEEDS_RESET);
  cr_assert_eq (T.err.env_index, 1);
  cr_assert_eq (th_reset (&T, h, -1, m1, n), RA_OK);
  cr_assert_eq (th_step (&T, h, a, n, SLATE), RA_OK, "%s", T.err.message);
}

/* ---- determinism ----------------------------------------------------------------------------- */

static void s_batch_digests (int workers, int n, int64_t seed, int steps, uint64_t *d)
{
  th_t t;
  th_init (&t, workers);
  int64_t h = th_make (&t, ENV, n, 1, NULL, 0);
  cr_assert_gt (h, 0);
  memset (d, 0, (size_t) n * sizeof *d);
  cr_assert_eq (th_reset (&t, h, seed, NULL, 0), RA_OK);
  th_digest_step (&t, d, n, false);
  int32_t *a = malloc ((size_t) n * SLATE * sizeof *a);
  for (int s = 0; s < steps; s++) {
    for (int i = 0; i < n; i++)
      th_policy (a + SLATE * i, i, s, K, SLATE);
    cr_assert_eq (th_step (&t, h, a, n, SLATE), RA_OK);
    th_digest_step (&t, d, n, true);
  }
  free (a);
  th_fini (&t);
}

Test (handlers, trajectories_do_not_depend_on_threads_or_batch_size, .timeout = 120)
{
  enum { N = 256, STEPS = 60 };
  static uint64_t d1[N], d2[N], d4[N];
  s_batch_digests (1, N, 1000, STEPS, d1);
  s_batch_digests (2, N, 1000, STEPS, d2);
  s_batch_digests (4, N, 1000, STEPS, d4);
  for (int i = 0; i < N; i++) {
    cr_assert_eq (d1[i], d2[i], "env %d: 1 vs 2 threads", i);
    cr_assert_eq (d1[i], d4[i], "env %d: 1 vs 4 threads", i);
  }
  /* env i of the batch equals a single env seeded 1000 + i (with env i's actions) */
  const int probe[] = { 0, 1, 63, 64, 200, 255 };
  for (size_t p = 0; p < sizeof probe / sizeof probe[0]; p++) {
    int i = probe[p];
    th_t t;
    th_init (&t, 1);
    int64_t h = th_make (&t, ENV, 1, 1, NULL, 0);
    uint64_t d = 0;
    cr_assert_eq (th_reset (&t, h, 1000 + i, NULL, 0), RA_OK);
    th_digest_step (&t, &d, 1, false);
    for (int s = 0; s < STEPS; s++) {
      int32_t a[3];
      th_policy (a, i, s, K, SLATE);
      cr_assert_eq (th_step (&t, h, a, 1, SLATE), RA_OK);
      th_digest_step (&t, &d, 1, true);
    }
    cr_assert_eq (d, d1[i], "env %d alone differs from env %d of a batch of 256", i, i);
    th_fini (&t);
  }
}

Test (handlers, make_seed_seeds_env_i_with_seed_plus_i)
{
  /* No reset seed: each env continues the stream make started at seed + i. */
  int64_t hb = th_make (&T, ENV, 3, 500, NULL, 0);
  cr_assert_eq (th_reset (&T, hb, -1, NULL, 0), RA_OK);
  uint64_t db[3] = { 0 };
  th_digest_step (&T, db, 3, false);
  int64_t h1 = th_make (&T, ENV, 1, 502, NULL, 0);
  cr_assert_eq (th_reset (&T, h1, -1, NULL, 0), RA_OK);
  uint64_t d1 = 0;
  th_digest_step (&T, &d1, 1, false);
  cr_assert_eq (db[2], d1);
}

/* ---- idle expiry ----------------------------------------------------------------------------- */

Test (handlers, idle_sessions_expire)
{
  th_fini (&T);
  ra_server_opts_t o;
  ra_server_opts_default (&o);
  o.workers = 1;
  o.idle_timeout_s = 0.05;
  th_init_opts (&T, &o);
  int64_t h1 = th_make (&T, ENV, 2, 1, NULL, 0), h2 = th_make (&T, ENV, 2, 1, NULL, 0);
  struct timespec ts = { 0, 120 * 1000 * 1000 };
  nanosleep (&ts, NULL);
  cr_assert_eq (th_reset (&T, h1, 1, NULL, 0), RA_ERR_NO_SUCH_HANDLE);
  cr_assert (strstr (T.err.message, "expired"), "%s", T.err.message);
  cr_assert_eq (ra_server_expire (T.srv), 1, "the sweep reclaims the other one");
  cr_assert_eq (th_reset (&T, h2, 1, NULL, 0), RA_ERR_NO_SUCH_HANDLE);
  ra_server_counters_t c;
  ra_server_counters (T.srv, &c);
  cr_assert_eq (c.sessions, 0);
  cr_assert_eq (c.envs, 0);
}

/* ---- zero-copy replies -------------------------------------------------------------------- */

Test (handlers, buffers_still_referenced_by_a_reply_are_never_overwritten)
{
  const int n = 64;
  int64_t h = th_make (&T, ENV, n, 1, NULL, 0);
  cr_assert_eq (th_reset (&T, h, 1, NULL, 0), RA_OK);
  int32_t a[64 * 3];
  for (int i = 0; i < n; i++)
    th_policy (a + 3 * i, i, 0, K, SLATE);
  cr_assert_eq (th_step (&T, h, a, n, SLATE), RA_OK);
  ra_outbufs_t *b = T.srv->reply_owner;
  cr_assert_not_null (b, "step replies point into the session's buffers");
  ra_outbufs_retain (b);   /* as a frame still queued in ZeroMQ would */
  void *copy = malloc (b->nbytes);
  memcpy (copy, b->block, b->nbytes);
  for (int i = 0; i < n; i++)
    th_policy (a + 3 * i, i, 1, K, SLATE);
  cr_assert_eq (th_step (&T, h, a, n, SLATE), RA_OK);
  cr_assert_neq (T.srv->reply_owner, b, "the session moved to a private copy");
  cr_assert_eq (memcmp (copy, b->block, b->nbytes), 0, "the referenced buffers did not change");
  ra_outbufs_release (b);
  free (copy);
  /* with no reference left the session writes in place again */
  ra_outbufs_t *cur = T.srv->reply_owner;
  cr_assert_eq (th_step (&T, h, a, n, SLATE), RA_OK);
  cr_assert_eq (T.srv->reply_owner, cur);
}

/* ---- every simulator ---------------------------------------------------------------------- */

Test (handlers, every_registered_sim_serves_make_reset_step_render)
{
  int nsims;
  const ra_sim_class_t *const *sims = ra_sims_all (&nsims);
  cr_assert_gt (nsims, 0);
  for (int s = 0; s < nsims; s++) {
    const int n = 4;
    int64_t h = th_make (&T, sims[s]->name, n, 3, NULL, 0);
    cr_assert_gt (h, 0, "%s: %s", sims[s]->name, T.err.message);
    const msgpack_object *as = th_map (&T, "action_space");
    int64_t nK, nk = 1;
    if (ra_obj_is_str (ra_map_get (as, "type"), "Discrete")) {
      cr_assert_eq (ra_get_int (as, "n", &nK, NULL), RA_OK);
    } else {
      const msgpack_object *nvec = ra_map_get (as, "nvec");
      cr_assert (nvec && nvec->type == MSGPACK_OBJECT_ARRAY && nvec->via.array.size > 0);
      nk = nvec->via.array.size;
      nK = (int64_t) nvec->via.array.ptr[0].via.u64;
    }
    cr_assert_eq (th_reset (&T, h, 3, NULL, 0), RA_OK, "%s: %s", sims[s]->name, T.err.message);
    int32_t a[4 * 16];
    cr_assert_leq (nk, 16);
    for (int step = 0; step < 5; step++) {
      for (int i = 0; i < n; i++)
        for (int j = 0; j < nk; j++)
          a[i * nk + j] = (int32_t) ((i + step + j) % nK);   /* distinct while k <= K */
      cr_assert_eq (th_step (&T, h, a, n, (int) nk), RA_OK, "%s: %s", sims[s]->name, T.err.message);
    }
    ra_msg_out_t *m = th_begin (&T, "render", 2);
    ra_msg_out_str (m, "handle");
    ra_msg_out_int (m, h);
    ra_msg_out_str (m, "index");
    ra_msg_out_int (m, 0);
    cr_assert_eq (th_call (&T), RA_OK, "%s: %s", sims[s]->name, T.err.message);
  }
}

/* Step replies after the first reuse the header packed at the first one (reply.c,
   ra__reply_step): every later header must be byte for byte the first one but for the id, with the
   same frame sizes, and same_step steps where an env ended must still get their final_obs. */
Test (handlers, step_reply_headers_match_the_first_whatever_step_packs_them)
{
  static const char *const modes[] = { "next_step", "same_step", "disabled" };
  for (int mi = 0; mi < 3; mi++) {
    const int n = 3, steps = 12;
    int64_t h = th_make (&T, ENV, n, 5, modes[mi], 4);
    cr_assert_gt (h, 0, "%s", T.err.message);
    cr_assert_eq (th_reset (&T, h, 9, NULL, 0), RA_OK);
    int32_t a[3 * SLATE];
    size_t head0 = 0;
    unsigned char first[4096];
    int nframes0 = 0;
    size_t sizes0[RA_MSG_MAX_FRAMES];
    int finals = 0;
    for (int s = 0; s < steps; s++) {
      for (int i = 0; i < n; i++)
        th_policy (a + SLATE * i, i, s, K, SLATE);
      if (mi == 2 && s > 0)   /* disabled: envs that ended must be reset first */
        cr_assert_eq (th_reset (&T, h, -1, NULL, 0), RA_OK, "%s", T.err.message);
      cr_assert_eq (th_step (&T, h, a, n, SLATE), RA_OK, "%s: %s", modes[mi], T.err.message);
      const msgpack_object *info = th_map (&T, "info");
      bool final = ra_map_get (info, "final_obs") != NULL;
      if (final) {
        finals++;
        cr_assert_eq (mi, 1, "final_obs only under same_step");
        continue;
      }
      cr_assert_lt (T.rep.head.size, sizeof first);
      if (s == 0) {
        head0 = T.rep.head.size;
        memcpy (first, T.rep.head.data, head0);
        nframes0 = T.rep.nframes;
        for (int i = 0; i < nframes0; i++)
          sizes0[i] = T.rep.frames[i].nbytes;
        continue;
      }
      /* Request ids stay below 128 here, so each id is one byte and the headers differ in it
         alone. */
      cr_assert_eq (T.rep.head.size, head0, "%s step %d: header of %zu bytes, the first had %zu",
                    modes[mi], s, T.rep.head.size, head0);
      int differ = 0;
      for (size_t i = 0; i < head0; i++)
        differ += ((const unsigned char *) T.rep.head.data)[i] != first[i];
      cr_assert_eq (differ, 1, "%s step %d: %d header bytes differ (the id only expected)",
                    modes[mi], s, differ);
      cr_assert_eq (T.rep.nframes, nframes0);
      for (int i = 0; i < nframes0; i++)
        cr_assert_eq (T.rep.frames[i].nbytes, sizes0[i]);
    }
    if (mi == 1)
      cr_assert_gt (finals, 0, "episodes of 4 steps must end within %d steps", steps);
  }
}
