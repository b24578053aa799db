/*  tests/protocol/test_client.c - the C client against a fake server thread (a ROUTER socket on
    an ephemeral loopback port): deadlines, id matching after a timeout, error mapping, every op
    wrapper. Deadlines are 100-300 ms so the suite stays fast; elapsed-time bounds are generous
    (they check "returns, never hangs", not speed).                                               */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "protocol/client.h"

#define S_N 2

typedef struct {
  void *ctx, *sock;
  char endpoint[256];
  pthread_t thread;
  atomic_int stop;
  atomic_int silent;      /* answer hello only */
  atomic_int late;        /* hold the next request; answer it just before the one after */
  int version;            /* reported in hello */
  pthread_mutex_t mu;
  unsigned char last[8192];   /* header of the last make/reset/step/set_task request */
  size_t last_len;
  int last_nframes;
  unsigned char last_frames[2][64];
  size_t last_frame_size[2];
} s_fake_t;

static s_fake_t s_fake;

static int64_t s_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_send (void *sock, zmq_msg_t *identity, const ra_msg_out_t *m)
{
  zmq_send (sock, zmq_msg_data (identity), zmq_msg_size (identity), ZMQ_SNDMORE);
  zmq_send (sock, m->head.data, m->head.size, m->nframes ? ZMQ_SNDMORE : 0);
  for (int i = 0; i < m->nframes; i++)
    zmq_send (sock, m->frames[i].data, m->frames[i].nbytes, i + 1 < m->nframes ? ZMQ_SNDMORE : 0);
}

static void s_reply_error (ra_msg_out_t *m, uint64_t id, ra_err_t code, int index, const char *text)
{
  ra_error_t e;
  ra_error_set (&e, code, index, "%s", text);
  ra_msg_out_error (m, id, &e);
}

static void s_obs (ra_msg_out_t *m, const float *user)
{
  int64_t us[2] = { S_N, 3 };
  ra_msg_out_map (m, 1);
  ra_msg_out_str (m, "user");
  ra_msg_out_tensor (m, RA_DTYPE_F32, 2, us, user);
}

/* Builds the reply to one decoded request into m. Returns false to send nothing. */
static bool s_handle (s_fake_t *f, const ra_msg_in_t *in, ra_msg_out_t *m)
{
  static const float user[S_N * 3] = { 1, 2, 3, 4, 5, 6 };
  static const float reward[S_N] = { 0.5f, -1 };
  static const bool term[S_N] = { false, true }, trunc[S_N] = { false, false }, all[S_N] = { true, true };
  static const bool final_mask[S_N] = { false, true };
  static const int32_t clicks[S_N] = { 3, 0 };
  int64_t n = S_N;
  ra_error_t err;
  char op[32];
  snprintf (op, sizeof op, "%.*s", in->op_len, in->op);
  if (strcmp (op, "hello") == 0) {
    ra_msg_out_reply (m, in->id, 2);
    ra_msg_out_str (m, "server"); ra_msg_out_str (m, "fake");
    ra_msg_out_str (m, "version"); ra_msg_out_int (m, f->version);
    return true;
  }
  if (atomic_load (&f->silent))
    return false;
  if (strcmp (op, "make") == 0 || strcmp (op, "reset") == 0 || strcmp (op, "step") == 0 ||
      strcmp (op, "set_task") == 0) {
    pthread_mutex_lock (&f->mu);
    /* The header bytes were kept by the caller in f->last before decoding. */
    f->last_nframes = in->nframes;
    for (int i = 0; i < in->nframes && i < 2; i++) {
      f->last_frame_size[i] = in->frame_size[i] < 64 ? in->frame_size[i] : 64;
      memcpy (f->last_frames[i], in->frame_data[i], f->last_frame_size[i]);
    }
    pthread_mutex_unlock (&f->mu);
  }
  int64_t handle = -1;
  ra_opt_int (in->root, "handle", &handle, &err);
  if (strcmp (op, "ping") == 0 || (strcmp (op, "close") == 0 && handle == 42)) {
    ra_msg_out_reply (m, in->id, 0);
  } else if (strcmp (op, "close") == 0) {
    s_reply_error (m, in->id, RA_ERR_NO_SUCH_HANDLE, -1, "handle 99 does not exist");
  } else if (strcmp (op, "stats") == 0) {
    ra_msg_out_reply (m, in->id, 5);
    ra_msg_out_str (m, "sessions"); ra_msg_out_int (m, 1);
    ra_msg_out_str (m, "envs"); ra_msg_out_int (m, 2);
    ra_msg_out_str (m, "steps"); ra_msg_out_int (m, 3);
    ra_msg_out_str (m, "errors"); ra_msg_out_int (m, 0);
    ra_msg_out_str (m, "uptime_s"); ra_msg_out_double (m, 1.5);
  } else if (strcmp (op, "make") == 0) {
    int64_t three = 3;
    ra_space_t *obs = ra_space_dict (1), *user_space = ra_space_box (RA_DTYPE_F32, 1, &three, -1, 1);
    ra_space_t *act = ra_space_discrete (5, 0);
    ra_space_set_child (obs, 0, "user", &user_space);
    ra_msg_out_reply (m, in->id, 6);
    ra_msg_out_str (m, "handle"); ra_msg_out_int (m, 42);
    ra_msg_out_str (m, "observation_space"); ra_space_encode (obs, m);
    ra_msg_out_str (m, "action_space"); ra_space_encode (act, m);
    ra_msg_out_str (m, "reward_range"); ra_msg_out_array (m, 2);
    ra_msg_out_int (m, -1); ra_msg_out_double (m, 2.5);
    ra_msg_out_str (m, "max_episode_steps"); ra_msg_out_int (m, 50);
    ra_msg_out_str (m, "autoreset"); ra_msg_out_str (m, "same_step");
    /* The bounds are borrowed by m until it is sent: keep the spaces alive in statics. */
    static ra_space_t *keep[2];
    ra_space_destroy (&keep[0]);
    ra_space_destroy (&keep[1]);
    keep[0] = obs, keep[1] = act;
  } else if (strcmp (op, "reset") == 0) {
    ra_msg_out_reply (m, in->id, 2);
    ra_msg_out_str (m, "obs"); s_obs (m, user);
    ra_msg_out_str (m, "info"); ra_msg_out_map (m, 5);
    ra_msg_out_str (m, "clicks"); ra_msg_out_tensor (m, RA_DTYPE_I32, 1, &n, clicks);
    ra_msg_out_str (m, "_clicks"); ra_msg_out_tensor (m, RA_DTYPE_BOOL, 1, &n, all);
    ra_msg_out_str (m, "final_obs"); s_obs (m, user);
    ra_msg_out_str (m, "_final_obs"); ra_msg_out_tensor (m, RA_DTYPE_BOOL, 1, &n, final_mask);
    ra_msg_out_str (m, "note"); ra_msg_out_str (m, "scalars are not exposed");
  } else if (strcmp (op, "step") == 0) {
    ra_tensor_t a;
    if (ra_get_tensor (in, in->root, "action", &a, &err) != RA_OK) {
      ra_msg_out_error (m, in->id, &err);
      return true;
    }
    for (int64_t i = 0; i < ra_tensor_numel (&a); i++)
      if (ra_tensor_get_int (&a, i) >= 5) {
        char text[128];
        snprintf (text, sizeof text, "action for env %d is %d, expected 0..4", (int) i,
                  (int) ra_tensor_get_int (&a, i));
        s_reply_error (m, in->id, RA_ERR_BAD_ACTION, (int) i, text);
        return true;
      }
    /* same_step as the server sends it: final_obs and final_info inside info. */
    ra_msg_out_reply (m, in->id, 5);
    ra_msg_out_str (m, "obs"); s_obs (m, user);
    ra_msg_out_str (m, "reward"); ra_msg_out_tensor (m, RA_DTYPE_F32, 1, &n, reward);
    ra_msg_out_str (m, "terminated"); ra_msg_out_tensor (m, RA_DTYPE_BOOL, 1, &n, term);
    ra_msg_out_str (m, "truncated"); ra_msg_out_tensor (m, RA_DTYPE_BOOL, 1, &n, trunc);
    ra_msg_out_str (m, "info"); ra_msg_out_map (m, 4);
    ra_msg_out_str (m, "final_obs"); s_obs (m, user);
    ra_msg_out_str (m, "_final_obs"); ra_msg_out_tensor (m, RA_DTYPE_BOOL, 1, &n, final_mask);
    ra_msg_out_str (m, "final_info"); ra_msg_out_map (m, 2);
    ra_msg_out_str (m, "clicks"); ra_msg_out_tensor (m, RA_DTYPE_I32, 1, &n, clicks);
    ra_msg_out_str (m, "_clicks"); ra_msg_out_tensor (m, RA_DTYPE_BOOL, 1, &n, final_mask);
    ra_msg_out_str (m, "_final_info"); ra_msg_out_tensor (m, RA_DTYPE_BOOL, 1, &n, final_mask);
  } else if (strcmp (op, "set_task") == 0) {
    ra_msg_out_reply (m, in->id, 1);
    ra_msg_out_str (m, "task"); ra_msg_out_map (m, 0);
  } else if (strcmp (op, "render") == 0) {
    int64_t index = -1;
    char text[64];
    ra_opt_int (in->root, "index", &index, &err);
    snprintf (text, sizeof text, "env %d of handle %d", (int) index, (int) handle);
    ra_msg_out_reply (m, in->id, 1);
    ra_msg_out_str (m, "text"); ra_msg_out_str (m, text);
  } else if (strcmp (op, "weird") == 0) {
    ra_msg_out_reply (m, in->id, 0);
    ra_msg_out_clear (m);
    ra_msg_out_map (m, 4);
    ra_msg_out_str (m, "v"); ra_msg_out_int (m, 1);
    ra_msg_out_str (m, "id"); ra_msg_out_uint (m, in->id);
    ra_msg_out_str (m, "ok"); ra_msg_out_bool (m, false);
    ra_msg_out_str (m, "error"); ra_msg_out_map (m, 2);
    ra_msg_out_str (m, "code"); ra_msg_out_str (m, "FOO");
    ra_msg_out_str (m, "message"); ra_msg_out_str (m, "from the future");
  } else
    s_reply_error (m, in->id, RA_ERR_UNKNOWN_OP, -1, "unknown op");
  return true;
}

static void *s_fake_main (void *arg)
{
  s_fake_t *f = arg;
  ra_msg_out_t m;
  ra_msg_in_t in;
  ra_msg_out_init (&m);
  ra_msg_in_init (&in);
  zmq_msg_t held_identity;
  uint64_t held_id = 0;
  bool holding = false;
  while (!atomic_load (&f->stop)) {
    zmq_pollitem_t item = { f->sock, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, 20) <= 0)
      continue;
    zmq_msg_t parts[8];
    int n = 0;
    bool more = true;
    while (more) {
      zmq_msg_t *p = &parts[n < 8 ? n : 7];
      if (n >= 8)
        zmq_msg_close (p);
      zmq_msg_init (p);
      zmq_msg_recv (p, f->sock, 0);
      more = zmq_msg_more (p);
      n = n < 8 ? n + 1 : 8;
    }
    const void *frames[6];
    size_t sizes[6];
    for (int i = 2; i < n; i++)
      frames[i - 2] = zmq_msg_data (&parts[i]), sizes[i - 2] = zmq_msg_size (&parts[i]);
    pthread_mutex_lock (&f->mu);
    f->last_len = zmq_msg_size (&parts[1]) < sizeof f->last ? zmq_msg_size (&parts[1]) : 0;
    memcpy (f->last, zmq_msg_data (&parts[1]), f->last_len);
    pthread_mutex_unlock (&f->mu);
    ra_error_t err;
    ra_msg_out_clear (&m);
    if (ra_msg_in_decode (&in, zmq_msg_data (&parts[1]), zmq_msg_size (&parts[1]), n - 2, frames, sizes, true,
                          &err) != RA_OK) {
      ra_msg_out_error (&m, in.has_id ? in.id : 0, &err);
      s_send (f->sock, &parts[0], &m);
    } else if (atomic_load (&f->late) && !holding && !(in.op_len == 5 && memcmp (in.op, "hello", 5) == 0)) {
      holding = true;
      held_id = in.id;
      zmq_msg_init (&held_identity);
      zmq_msg_copy (&held_identity, &parts[0]);
    } else {
      if (holding) {   /* the late answer first: looks like a stats reply, with a wrong count */
        ra_msg_out_reply (&m, held_id, 5);
        ra_msg_out_str (&m, "sessions"); ra_msg_out_int (&m, 999);
        ra_msg_out_str (&m, "envs"); ra_msg_out_int (&m, 999);
        ra_msg_out_str (&m, "steps"); ra_msg_out_int (&m, 999);
        ra_msg_out_str (&m, "errors"); ra_msg_out_int (&m, 999);
        ra_msg_out_str (&m, "uptime_s"); ra_msg_out_double (&m, 999);
        s_send (f->sock, &held_identity, &m);
        zmq_msg_close (&held_identity);
        holding = false;
        atomic_store (&f->late, 0);
        ra_msg_out_clear (&m);
      }
      if (s_handle (f, &in, &m))
        s_send (f->sock, &parts[0], &m);
    }
    for (int i = 0; i < n; i++)
      zmq_msg_close (&parts[i]);
  }
  if (holding)
    zmq_msg_close (&held_identity);
  ra_msg_in_fini (&in);
  ra_msg_out_fini (&m);
  return NULL;
}

static void s_fake_start (int version)
{
  memset (&s_fake, 0, sizeof s_fake);
  pthread_mutex_init (&s_fake.mu, NULL);
  s_fake.version = version;
  s_fake.ctx = zmq_ctx_new ();
  s_fake.sock = zmq_socket (s_fake.ctx, ZMQ_ROUTER);
  int linger = 0;
  zmq_setsockopt (s_fake.sock, ZMQ_LINGER, &linger, sizeof linger);
  cr_assert_eq (zmq_bind (s_fake.sock, "tcp://127.0.0.1:*"), 0);
  size_t len = sizeof s_fake.endpoint;
  zmq_getsockopt (s_fake.sock, ZMQ_LAST_ENDPOINT, s_fake.endpoint, &len);
  /* The socket moves to the server thread here (pthread_create is a full barrier). */
  pthread_create (&s_fake.thread, NULL, s_fake_main, &s_fake);
}

static void s_fake_stop (void)
{
  if (!s_fake.ctx)
    return;
  atomic_store (&s_fake.stop, 1);
  pthread_join (s_fake.thread, NULL);
  zmq_close (s_fake.sock);
  zmq_ctx_term (s_fake.ctx);
  pthread_mutex_destroy (&s_fake.mu);
  s_fake.ctx = NULL;
}

static void s_teardown (void) { s_fake_stop (); }

TestSuite (client, .fini = s_teardown, .timeout = 20);

Test (client, new_times_out_when_no_server_listens)
{
  ra_client_t *c = (ra_client_t *) 1;
  ra_error_t err;
  int64_t t0 = s_ms ();
  cr_assert_eq (ra_client_new ("tcp://127.0.0.1:1", 200, &c, &err), RA_ERR_TIMEOUT);
  int64_t dt = s_ms () - t0;
  cr_assert_null (c);
  cr_assert (dt >= 150 && dt < 2000, "returned after %d ms for a 200 ms deadline", (int) dt);
  cr_assert (strstr (err.message, "200 ms"), "%s", err.message);
  cr_assert_eq (ra_client_new ("nonsense://x", 200, &c, &err), RA_ERR_TRANSPORT);
  ra_client_destroy (&c);   /* NULL is fine */
}

Test (client, new_says_hello_and_keeps_the_server_name)
{
  s_fake_start (1);
  ra_client_t *c = NULL;
  ra_error_t err;
  cr_assert_eq (ra_client_new (s_fake.endpoint, 300, &c, &err), RA_OK, "%s", err.message);
  cr_assert_str_eq (ra_client_server_name (c), "fake");
  cr_assert_str_eq (ra_client_server_build (c), "");
  cr_assert_eq (ra_client_ping (c, &err), RA_OK, "%s", err.message);
  ra_client_destroy (&c);
  cr_assert_null (c);
}

Test (client, new_refuses_a_server_of_another_version)
{
  s_fake_start (2);
  ra_client_t *c = NULL;
  ra_error_t err;
  cr_assert_eq (ra_client_new (s_fake.endpoint, 300, &c, &err), RA_ERR_VERSION);
  cr_assert_null (c);
  cr_assert (strstr (err.message, "version 2"), "%s", err.message);
}

Test (client, call_times_out_when_the_server_is_silent)
{
  s_fake_start (1);
  ra_client_t *c = NULL;
  ra_error_t err;
  cr_assert_eq (ra_client_new (s_fake.endpoint, 300, &c, &err), RA_OK, "%s", err.message);
  atomic_store (&s_fake.silent, 1);
  ra_client_set_timeout (c, 150);
  int64_t t0 = s_ms ();
  cr_assert_eq (ra_client_ping (c, &err), RA_ERR_TIMEOUT);
  int64_t dt = s_ms () - t0;
  cr_assert (dt >= 100 && dt < 1500, "returned after %d ms for a 150 ms deadline", (int) dt);
  ra_client_destroy (&c);
}

Test (client, late_reply_to_an_abandoned_request_is_dropped)
{
  s_fake_start (1);
  ra_client_t *c = NULL;
  ra_error_t err;
  cr_assert_eq (ra_client_new (s_fake.endpoint, 300, &c, &err), RA_OK, "%s", err.message);
  atomic_store (&s_fake.late, 1);
  ra_client_set_timeout (c, 150);
  ra_server_stats_t st;
  cr_assert_eq (ra_client_stats (c, &st, &err), RA_ERR_TIMEOUT, "the server holds the first request");
  ra_client_set_timeout (c, 300);
  cr_assert_eq (ra_client_stats (c, &st, &err), RA_OK, "%s", err.message);
  cr_assert_eq (st.sessions, 1, "got the late reply (999) instead of its own");
  cr_assert_eq (st.envs, 2);
  cr_assert_eq (st.steps, 3);
  cr_assert_float_eq (st.uptime_s, 1.5, 0);
  ra_client_destroy (&c);
}

Test (client, call_to_a_dead_server_times_out)
{
  s_fake_start (1);
  ra_client_t *c = NULL;
  ra_error_t err;
  cr_assert_eq (ra_client_new (s_fake.endpoint, 300, &c, &err), RA_OK, "%s", err.message);
  s_fake_stop ();
  ra_client_set_timeout (c, 150);
  int64_t t0 = s_ms ();
  for (int i = 0; i < 3; i++)
    cr_assert_eq (ra_client_ping (c, &err), RA_ERR_TIMEOUT);
  int64_t dt = s_ms () - t0;
  cr_assert (dt < 3 * 1500, "three 150 ms calls took %d ms", (int) dt);
  ra_client_destroy (&c);
}

static ra_client_env_t s_make (ra_client_t *c)
{
  ra_client_env_t env;
  ra_error_t err;
  cr_assert_eq (ra_client_make (c, "ECommerce-v1", S_N, NULL, &env, &err), RA_OK, "%s", err.message);
  return env;
}

Test (client, error_replies_become_codes_messages_and_env_index)
{
  s_fake_start (1);
  ra_client_t *c = NULL;
  ra_error_t err;
  cr_assert_eq (ra_client_new (s_fake.endpoint, 300, &c, &err), RA_OK, "%s", err.message);
  ra_client_env_t env = s_make (c);
  int64_t act[S_N] = { 1, 7 }, n = S_N;
  ra_tensor_t a = ra_tensor_view (RA_DTYPE_I64, 1, &n, act);
  ra_step_result_t res;
  cr_assert_eq (ra_client_step (c, &env, &a, &res, &err), RA_ERR_BAD_ACTION);
  cr_assert_eq (err.code, RA_ERR_BAD_ACTION);
  cr_assert_eq (err.env_index, 1);
  cr_assert_str_eq (err.message, "action for env 1 is 7, expected 0..4");
  ra_client_env_t bogus = env;
  bogus.handle = 99;
  cr_assert_eq (ra_client_close (c, &bogus, &err), RA_ERR_NO_SUCH_HANDLE);
  cr_assert_eq (err.env_index, -1);
  cr_assert_str_eq (err.message, "handle 99 does not exist");
  ra_msg_out_t m;
  ra_msg_out_init (&m);
  ra_msg_out_request (&m, ra_client_next_id (c), "weird", 0);
  const ra_msg_in_t *reply;
  cr_assert_eq (ra_client_call (c, &m, &reply, &err), RA_ERR_INTERNAL);
  cr_assert (strstr (err.message, "unknown error code 'FOO'") && strstr (err.message, "from the future"), "%s",
             err.message);
  cr_assert (reply && !reply->ok, "the decoded reply is there either way");
  ra_msg_out_clear (&m);
  ra_msg_out_request (&m, ra_client_next_id (c), "dance", 0);
  cr_assert_eq (ra_client_call (c, &m, NULL, &err), RA_ERR_UNKNOWN_OP);
  ra_msg_out_fini (&m);
  ra_client_env_fini (&env);
  ra_client_destroy (&c);
}

/* Decodes the last request header the fake server saw. */
static void s_last_request (ra_msg_in_t *in, unsigned char *copy)
{
  ra_error_t err;
  pthread_mutex_lock (&s_fake.mu);
  size_t len = s_fake.last_len;
  memcpy (copy, s_fake.last, len);
  pthread_mutex_unlock (&s_fake.mu);
  cr_assert_eq (ra_msg_in_decode (in, copy, len, 0, NULL, NULL, true, &err), RA_OK, "%s", err.message);
}

Test (client, make_nests_dotted_config_keys)
{
  s_fake_start (1);
  ra_client_t *c = NULL;
  ra_error_t err;
  cr_assert_eq (ra_client_new (s_fake.endpoint, 300, &c, &err), RA_OK, "%s", err.message);
  ra_kv_t config[] = {
    { "slate_size", RA_KV_NUM, 3, NULL },
    { "reward.weights.clicks", RA_KV_NUM, 1.5, NULL },
    { "choice_model", RA_KV_STR, 0, "cascade" },
    { "reward.weights.revenue", RA_KV_NUM, 2, NULL },
    { "reward.kind", RA_KV_STR, 0, "weighted" },
    { "oracle", RA_KV_BOOL, 1, NULL },
  };
  ra_make_opts_t opts = { .has_seed = true, .seed = 7, .config = config, .n_config = 6,
                          .autoreset = "same_step", .max_episode_steps = 20 };
  ra_client_env_t env;
  cr_assert_eq (ra_client_make (c, "ECommerce-v1", S_N, &opts, &env, &err), RA_OK, "%s", err.message);
  cr_assert_eq (env.handle, 42);
  cr_assert_eq (env.num_envs, S_N);
  cr_assert_eq (env.max_episode_steps, 50);
  cr_assert_str_eq (env.autoreset, "same_step");
  cr_assert_float_eq (env.reward_range[0], -1.0, 0);
  cr_assert_float_eq (env.reward_range[1], 2.5, 0);
  cr_assert_eq (env.observation_space->type, RA_SPACE_DICT);
  cr_assert (ra_space_dict_get (env.observation_space, "user"));
  cr_assert_eq (env.action_space->type, RA_SPACE_DISCRETE);
  cr_assert_eq (env.action_space->n, 5);

  ra_msg_in_t in;
  unsigned char copy[8192];
  ra_msg_in_init (&in);
  s_last_request (&in, copy);
  const msgpack_object *cfg, *reward, *weights;
  int64_t v;
  uint64_t u;
  double d;
  bool b;
  const char *s;
  int len;
  cr_assert_eq (ra_get_uint (in.root, "seed", &u, &err), RA_OK);
  cr_assert_eq (u, 7);
  cr_assert_eq (ra_get_int (in.root, "max_episode_steps", &v, &err), RA_OK);
  cr_assert_eq (v, 20);
  cr_assert_eq (ra_get_map (in.root, "config", &cfg, &err), RA_OK);
  cr_assert_eq (cfg->via.map.size, 4u, "slate_size, reward, choice_model, oracle");
  cr_assert_eq (ra_get_int (cfg, "slate_size", &v, &err), RA_OK, "integral numbers travel as integers");
  cr_assert_eq (v, 3);
  cr_assert_eq (ra_get_bool (cfg, "oracle", &b, &err), RA_OK);
  cr_assert (b);
  cr_assert_eq (ra_get_str (cfg, "choice_model", &s, &len, &err), RA_OK);
  cr_assert (len == 7 && memcmp (s, "cascade", 7) == 0);
  cr_assert_eq (ra_get_map (cfg, "reward", &reward, &err), RA_OK);
  cr_assert_eq (reward->via.map.size, 2u);
  cr_assert (ra_obj_is_str (&reward->via.map.ptr[0].key, "weights"), "order of first appearance");
  cr_assert_eq (ra_get_map (reward, "weights", &weights, &err), RA_OK);
  cr_assert_eq (ra_get_double (weights, "clicks", &d, &err), RA_OK);
  cr_assert_float_eq (d, 1.5, 0);
  cr_assert_eq (ra_get_int (weights, "revenue", &v, &err), RA_OK);
  cr_assert_eq (v, 2);
  ra_msg_in_fini (&in);
  ra_client_env_fini (&env);
  cr_assert_null (env.observation_space);

  /* Conflicting or malformed keys are refused before anything is sent. */
  ra_kv_t clash[] = { { "a", RA_KV_NUM, 1, NULL }, { "a.b", RA_KV_NUM, 2, NULL } };
  ra_kv_t twice[] = { { "a", RA_KV_NUM, 1, NULL }, { "a", RA_KV_NUM, 2, NULL } };
  ra_kv_t empty[] = { { "a..b", RA_KV_NUM, 1, NULL } };
  const ra_kv_t *bad[] = { clash, twice, empty };
  int nbad[] = { 2, 2, 1 };
  for (int i = 0; i < 3; i++) {
    opts.config = bad[i];
    opts.n_config = nbad[i];
    cr_assert_eq (ra_client_make (c, "ECommerce-v1", S_N, &opts, &env, &err), RA_ERR_BAD_CONFIG, "case %d", i);
    cr_assert (strstr (err.message, "config key 'a"), "%s", err.message);
  }
  cr_assert_eq (ra_client_ping (c, &err), RA_OK, "the client is still usable");
  ra_client_destroy (&c);
}

Test (client, reset_step_set_task_render_close_round_trip)
{
  s_fake_start (1);
  ra_client_t *c = NULL;
  ra_error_t err;
  cr_assert_eq (ra_client_new (s_fake.endpoint, 300, &c, &err), RA_OK, "%s", err.message);
  ra_client_env_t env = s_make (c);
  ra_step_result_t res;
  uint64_t seeds[S_N] = { 10, 11 };
  bool mask[S_N] = { true, false };
  cr_assert_eq (ra_client_reset (c, &env, seeds, mask, &res, &err), RA_OK, "%s", err.message);
  cr_assert_eq (res.obs.n, 1);
  int u = ra_fields_find (&res.obs, "user");
  cr_assert_eq (u, 0);
  cr_assert (res.obs.tensors[u].shape[0] == S_N && res.obs.tensors[u].shape[1] == 3);
  float x;
  memcpy (&x, (char *) res.obs.tensors[u].data + 5 * 4, 4);
  cr_assert_float_eq (x, 6.0f, 0);
  cr_assert_eq (res.info.n, 4, "clicks, _clicks, final_obs.user, _final_obs; the string is skipped");
  cr_assert_geq (ra_fields_find (&res.info, "clicks"), 0);
  cr_assert_geq (ra_fields_find (&res.info, "_clicks"), 0);
  int fo = ra_fields_find (&res.info, "final_obs.user");
  cr_assert_geq (fo, 0);
  cr_assert_eq (res.info.tensors[fo].dtype, RA_DTYPE_F32);
  cr_assert_geq (ra_fields_find (&res.info, "_final_obs"), 0);
  cr_assert_eq (ra_fields_find (&res.info, "note"), -1);

  ra_msg_in_t in;
  unsigned char copy[8192];
  ra_msg_in_init (&in);
  s_last_request (&in, copy);
  const msgpack_object *o;
  cr_assert_eq (ra_get_array (in.root, "seed", &o, &err), RA_OK);
  cr_assert (o->via.array.size == S_N && o->via.array.ptr[1].via.u64 == 11);
  cr_assert_eq (ra_get_map (in.root, "options", &o, &err), RA_OK);
  cr_assert (ra_map_get (o, "reset_mask"));
  cr_assert (s_fake.last_nframes == 1 && s_fake.last_frame_size[0] == S_N);
  cr_assert (s_fake.last_frames[0][0] == 1 && s_fake.last_frames[0][1] == 0);

  /* Reset without seeds or mask sends neither. */
  cr_assert_eq (ra_client_reset (c, &env, NULL, NULL, &res, &err), RA_OK, "%s", err.message);
  s_last_request (&in, copy);
  cr_assert_null (ra_map_get (in.root, "seed"));
  cr_assert_null (ra_map_get (in.root, "options"));

  int32_t act[S_N] = { 4, 0 };
  int64_t n = S_N;
  ra_tensor_t a = ra_tensor_view (RA_DTYPE_I32, 1, &n, act);
  cr_assert_eq (ra_client_step (c, &env, &a, &res, &err), RA_OK, "%s", err.message);
  cr_assert_eq (res.reward.dtype, RA_DTYPE_F32);
  memcpy (&x, (char *) res.reward.data + 4, 4);
  cr_assert_float_eq (x, -1.0f, 0);
  cr_assert_eq (ra_tensor_get_int (&res.terminated, 1), 1);
  cr_assert_eq (ra_tensor_get_int (&res.truncated, 1), 0);
  cr_assert_eq (res.info.n, 5, "same_step's final_obs and final_info are flattened into info");
  cr_assert_geq (ra_fields_find (&res.info, "final_obs.user"), 0);
  cr_assert_geq (ra_fields_find (&res.info, "_final_obs"), 0);
  cr_assert_geq (ra_fields_find (&res.info, "final_info.clicks"), 0);
  cr_assert_geq (ra_fields_find (&res.info, "final_info._clicks"), 0);
  cr_assert_geq (ra_fields_find (&res.info, "_final_info"), 0);
  s_last_request (&in, copy);
  cr_assert_eq (ra_map_get (in.root, "action")->type, MSGPACK_OBJECT_MAP);
  cr_assert_eq (s_fake.last_frame_size[0], 8u, "two i32 actions");

  cr_assert_eq (ra_client_set_task (c, &env, "ood", 5, NULL, 0, mask, &err), RA_OK, "%s", err.message);
  s_last_request (&in, copy);
  const msgpack_object *task;
  int64_t v;
  cr_assert_eq (ra_get_map (in.root, "task", &task, &err), RA_OK);
  cr_assert (ra_obj_is_str (ra_map_get (task, "split"), "ood"));
  cr_assert_eq (ra_get_int (task, "id", &v, &err), RA_OK);
  cr_assert_eq (v, 5);
  cr_assert (ra_map_get (in.root, "mask"));
  ra_kv_t params[] = { { "choice.temperature", RA_KV_NUM, 0.5, NULL } };
  cr_assert_eq (ra_client_set_task (c, &env, NULL, 0, params, 1, NULL, &err), RA_OK, "%s", err.message);
  s_last_request (&in, copy);
  double d;
  cr_assert_eq (ra_get_map (in.root, "task", &task, &err), RA_OK);
  cr_assert_eq (ra_get_map (task, "params", &task, &err), RA_OK);
  cr_assert_eq (ra_get_map (task, "choice", &task, &err), RA_OK);
  cr_assert_eq (ra_get_double (task, "temperature", &d, &err), RA_OK);
  cr_assert_float_eq (d, 0.5, 0);
  cr_assert_null (ra_map_get (in.root, "mask"));

  char text[8];
  cr_assert_eq (ra_client_render (c, &env, 1, text, sizeof text, &err), RA_OK, "%s", err.message);
  cr_assert_str_eq (text, "env 1 o", "truncated to fit, NUL-terminated");
  char big[64];
  cr_assert_eq (ra_client_render (c, &env, 1, big, sizeof big, &err), RA_OK);
  cr_assert_str_eq (big, "env 1 of handle 42");

  ra_server_stats_t st;
  cr_assert_eq (ra_client_stats (c, &st, &err), RA_OK, "%s", err.message);
  cr_assert_eq (st.steps, 3);
  cr_assert_eq (ra_client_close (c, &env, &err), RA_OK, "%s", err.message);
  ra_msg_in_fini (&in);
  ra_client_env_fini (&env);
  ra_client_destroy (&c);
}
