/*  tests/server/test_trust.c - a server strangers can share, checked through the handlers (no
    ZeroMQ): handles are unguessable and die with their run, sessions belong to the client key
    that made them, makes and set_tasks are admitted by estimated bytes, headers cannot inflate
    while decoding, and every error message is valid UTF-8.                                     */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "env/server/server_int.h"   /* async and deferred, for the inline-or-pool decision */
#include "env/sims/registry.h"
#include "helpers.h"

#define ENV "ECommerce-v1"

static th_t T;

static void setup (void) { th_init (&T, 1); }
static void teardown (void) { th_fini (&T); }

TestSuite (trust, .init = setup, .fini = teardown, .timeout = 60);

/* A request naming handle h: reset with seed 1. */
static ra_err_t s_reset_h (th_t *t, int64_t h) { return th_reset (t, h, 1, NULL, 0); }

/* Builds a request setting handle h's task to train task id (sent by th_call or handled as the
   loop would). */
static void s_begin_set_task (th_t *t, int64_t h, int64_t id)
{
  ra_msg_out_t *m = th_begin (t, "set_task", 2);
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, h);
  ra_msg_out_str (m, "task");
  ra_msg_out_map (m, 2);
  ra_msg_out_str (m, "split");
  ra_msg_out_str (m, "train");
  ra_msg_out_str (m, "id");
  ra_msg_out_int (m, id);
}

static ra_err_t s_set_task (th_t *t, int64_t h, int64_t id)
{
  s_begin_set_task (t, h, id);
  return th_call (t);
}

static int s_popcount (uint64_t x)
{
  int n = 0;
  for (; x; x &= x - 1)
    n++;
  return n;
}

Test (trust, handles_are_random_63_bit_values_not_a_counter)
{
  int64_t h[16];
  for (int i = 0; i < 16; i++) {
    h[i] = th_make (&T, ENV, 1, 1, NULL, 0);
    cr_assert_gt (h[i], 0, "%s", T.err.message);
  }
  /* A counter (or counter and slot) differs from its neighbour in a few low bits; random
     handles differ in about half of their 63 bits. */
  int bits = 0;
  for (int i = 1; i < 16; i++)
    bits += s_popcount ((uint64_t) (h[i] ^ h[i - 1]));
  cr_assert_gt (bits / 15, 20, "neighbouring handles differ in %d bits on average", bits / 15);
  /* The values next to a live handle are not handles. */
  for (int i = 0; i < 16; i++)
    for (int64_t d = -3; d <= 3; d++)
      if (d != 0) {
        bool other = false;
        for (int j = 0; j < 16; j++)
          other |= h[j] == h[i] + d;
        if (!other)
          cr_assert_eq (s_reset_h (&T, h[i] + d), RA_ERR_NO_SUCH_HANDLE);
      }
  cr_assert_eq (s_reset_h (&T, h[5] ^ (1 << 16)), RA_ERR_NO_SUCH_HANDLE);
  for (int i = 0; i < 16; i++)
    cr_assert_eq (s_reset_h (&T, h[i]), RA_OK, "%s", T.err.message);
}

Test (trust, a_previous_runs_handle_is_never_accepted)
{
  int64_t old = th_make (&T, ENV, 1, 1, NULL, 0);
  cr_assert_gt (old, 0);
  th_fini (&T);
  th_init (&T, 1);   /* a restart: a new server, the same make */
  int64_t fresh = th_make (&T, ENV, 1, 1, NULL, 0);
  cr_assert_gt (fresh, 0);
  cr_assert_neq (fresh, old, "the new run handed out the old run's handle");
  cr_assert_eq (s_reset_h (&T, old), RA_ERR_NO_SUCH_HANDLE,
                "the old run's handle drove another session");
  cr_assert_eq (s_reset_h (&T, fresh), RA_OK, "%s", T.err.message);
}

#define KEY_A "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
#define KEY_B "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"

Test (trust, sessions_belong_to_the_key_that_made_them)
{
  ra_server_set_caller (T.srv, KEY_A);
  int64_t h = th_make (&T, ENV, 2, 1, NULL, 0);
  cr_assert_gt (h, 0, "%s", T.err.message);
  ra_server_set_caller (T.srv, KEY_B);
  cr_assert_eq (s_reset_h (&T, h), RA_ERR_NO_SUCH_HANDLE, "another key used the session");
  cr_assert (strstr (T.err.message, "does not exist"), "%s", T.err.message);
  ra_msg_out_t *m = th_begin (&T, "close", 1);
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, h);
  cr_assert_eq (th_call (&T), RA_ERR_NO_SUCH_HANDLE, "another key closed the session");
  ra_server_set_caller (T.srv, NULL);
  cr_assert_eq (s_reset_h (&T, h), RA_ERR_NO_SUCH_HANDLE, "an anonymous client used it");
  ra_server_set_caller (T.srv, KEY_A);   /* the owner, e.g. reconnected after a timeout */
  cr_assert_eq (s_reset_h (&T, h), RA_OK, "%s", T.err.message);
}

Test (trust, stats_show_a_key_only_its_own_sessions_unless_admin)
{
  th_fini (&T);
  ra_server_opts_t o;
  ra_server_opts_default (&o);
  o.workers = 1;
  snprintf (o.admin_key, sizeof o.admin_key, "%s", KEY_B);
  th_init_opts (&T, &o);
  ra_server_set_caller (T.srv, KEY_A);
  cr_assert_gt (th_make (&T, ENV, 3, 1, NULL, 0), 0);
  ra_server_set_caller (T.srv, "0000000000000000000000000000000000000000");
  cr_assert_gt (th_make (&T, ENV, 5, 1, NULL, 0), 0);
  int64_t sessions, envs;
  ra_server_set_caller (T.srv, KEY_A);
  th_begin (&T, "stats", 0);
  cr_assert_eq (th_call (&T), RA_OK);
  ra_get_int (T.out.root, "sessions", &sessions, NULL);
  ra_get_int (T.out.root, "envs", &envs, NULL);
  cr_assert_eq (sessions, 1);
  cr_assert_eq (envs, 3);
  ra_server_set_caller (T.srv, KEY_B);   /* the admin */
  th_begin (&T, "stats", 0);
  cr_assert_eq (th_call (&T), RA_OK);
  ra_get_int (T.out.root, "sessions", &sessions, NULL);
  ra_get_int (T.out.root, "envs", &envs, NULL);
  cr_assert_eq (sessions, 2);
  cr_assert_eq (envs, 8);
}

/* The caller's stats: steps, requests and errors. */
static void s_stats_counts (int64_t *steps, int64_t *requests, int64_t *errors)
{
  th_begin (&T, "stats", 0);
  cr_assert_eq (th_call (&T), RA_OK, "%s", T.err.message);
  cr_assert_eq (ra_get_int (T.out.root, "steps", steps, NULL), RA_OK);
  cr_assert_eq (ra_get_int (T.out.root, "requests", requests, NULL), RA_OK);
  cr_assert_eq (ra_get_int (T.out.root, "errors", errors, NULL), RA_OK);
}

Test (trust, stats_show_a_key_only_its_own_activity_unless_admin)
{
  /* Server-wide steps, requests and errors would tell key A how busy key B is. */
  th_fini (&T);
  const char *keys[3] = { KEY_B, KEY_A, "0000000000000000000000000000000000000000" };
  ra_server_opts_t o;
  ra_server_opts_default (&o);
  o.workers = 1;
  o.allow_keys = keys;
  o.n_allow_keys = 3;
  snprintf (o.admin_key, sizeof o.admin_key, "%s", keys[2]);
  th_init_opts (&T, &o);
  /* A: make, reset, one step of 2 envs, one unknown op. */
  ra_server_set_caller (T.srv, KEY_A);
  int64_t ha = th_make (&T, ENV, 2, 1, NULL, 0);
  cr_assert_gt (ha, 0, "%s", T.err.message);
  cr_assert_eq (s_reset_h (&T, ha), RA_OK, "%s", T.err.message);
  int32_t a[3 * 8];
  for (int i = 0; i < 3 * 8; i++)
    a[i] = i % 3;
  cr_assert_eq (th_step (&T, ha, a, 2, 3), RA_OK, "%s", T.err.message);
  th_begin (&T, "nope", 0);
  cr_assert_eq (th_call (&T), RA_ERR_UNKNOWN_OP);
  /* B: make, reset, 5 steps of 8 envs, 2 requests on a handle it does not own. */
  ra_server_set_caller (T.srv, KEY_B);
  int64_t hb = th_make (&T, ENV, 8, 1, NULL, 0);
  cr_assert_gt (hb, 0, "%s", T.err.message);
  cr_assert_eq (s_reset_h (&T, hb), RA_OK, "%s", T.err.message);
  for (int i = 0; i < 5; i++)
    cr_assert_eq (th_step (&T, hb, a, 8, 3), RA_OK, "%s", T.err.message);
  for (int i = 0; i < 2; i++)
    cr_assert_eq (s_reset_h (&T, ha), RA_ERR_NO_SUCH_HANDLE);
  int64_t steps, requests, errors;
  ra_server_set_caller (T.srv, KEY_A);
  s_stats_counts (&steps, &requests, &errors);
  cr_assert_eq (steps, 2, "key A saw %lld env-steps, its own are 2", (long long) steps);
  cr_assert_eq (requests, 5, "key A saw %lld requests, its own are 5 (this stats included)",
                (long long) requests);
  cr_assert_eq (errors, 1, "key A saw %lld errors, its own is 1", (long long) errors);
  ra_server_set_caller (T.srv, KEY_B);
  s_stats_counts (&steps, &requests, &errors);
  cr_assert_eq (steps, 40);
  cr_assert_eq (requests, 10);
  cr_assert_eq (errors, 2);
  ra_server_set_caller (T.srv, keys[2]);   /* the admin: the whole server */
  s_stats_counts (&steps, &requests, &errors);
  cr_assert_eq (steps, 42);
  cr_assert_eq (requests, 16);   /* both stats above and this one included */
  cr_assert_eq (errors, 3);
}

static void s_budget_server (int64_t session_mib, int64_t total_mib)
{
  th_fini (&T);
  ra_server_opts_t o;
  ra_server_opts_default (&o);
  o.workers = 1;
  o.max_session_bytes = session_mib << 20;
  o.max_total_bytes = total_mib << 20;
  th_init_opts (&T, &o);
}

Test (trust, a_make_over_the_session_budget_is_limit_before_anything_is_built)
{
  s_budget_server (256, 1024);
  /* The case: 600000 items x 200 dims took 476 MB; the estimate is refused at once. */
  cr_assert_eq (th_make_sized (&T, ENV, 1, 600000, 200), -1);
  cr_assert_eq (T.err.code, RA_ERR_LIMIT, "%s", T.err.message);
  cr_assert (strstr (T.err.message, "MiB"), "%s", T.err.message);
  /* So is a big batch of big observations (65536 envs x 256 candidates x 256 dims: 32.8 GiB). */
  th_fini (&T);
  th_init (&T, 1);   /* default budgets: shares of this machine's memory */
  ra_msg_out_t *m = th_begin (&T, "make", 3);
  ra_msg_out_str (m, "env");
  ra_msg_out_str (m, ENV);
  ra_msg_out_str (m, "num_envs");
  ra_msg_out_int (m, 65536);
  ra_msg_out_str (m, "config");
  ra_msg_out_map (m, 3);
  ra_msg_out_str (m, "num_candidates");
  ra_msg_out_int (m, 256);
  ra_msg_out_str (m, "embedding_dim");
  ra_msg_out_int (m, 256);
  ra_msg_out_str (m, "num_items");
  ra_msg_out_int (m, 1000);
  cr_assert_eq (th_call (&T), RA_ERR_LIMIT, "%s", T.err.message);
  ra_server_counters_t c;
  ra_server_counters (T.srv, &c);
  cr_assert_eq (c.sessions, 0);
  /* A small make still fits. */
  cr_assert_gt (th_make_sized (&T, ENV, 4, 0, 0), 0, "%s", T.err.message);
}

Test (trust, a_config_key_given_twice_is_refused_so_the_estimate_sees_what_the_sim_builds)
{
  /* The estimate read the first num_items and the sim the last: {num_items: 20, num_items: 400000}
     was admitted as a tiny world and built a 200 MiB one, past every byte budget (and on the
     server thread, stalling everyone, since a small world is built inline). Dotted and nested
     spellings of one key collide the same way. */
  s_budget_server (64, 128);
  for (int nested = 0; nested < 2; nested++) {
    ra_msg_out_t *m = th_begin (&T, "make", 3);
    ra_msg_out_str (m, "env");
    ra_msg_out_str (m, ENV);
    ra_msg_out_str (m, "num_envs");
    ra_msg_out_int (m, 1);
    ra_msg_out_str (m, "config");
    ra_msg_out_map (m, 3 + (uint32_t) nested);
    ra_msg_out_str (m, "num_items");
    ra_msg_out_int (m, 20);
    ra_msg_out_str (m, "embedding_dim");
    ra_msg_out_int (m, 128);
    if (nested) {
      ra_msg_out_str (m, "dynamics");
      ra_msg_out_map (m, 1);
      ra_msg_out_str (m, "return_delay_max");
      ra_msg_out_int (m, 3);
      ra_msg_out_str (m, "dynamics.return_delay_max");
      ra_msg_out_int (m, 4);
    } else {
      ra_msg_out_str (m, "num_items");
      ra_msg_out_int (m, 400000);
    }
    cr_assert_eq (th_call (&T), RA_ERR_BAD_CONFIG, "%s", T.err.message);
    cr_assert (strstr (T.err.message, nested ? "'dynamics.return_delay_max'" : "'num_items'")
               && strstr (T.err.message, "twice"), "%s", T.err.message);
  }
  ra_server_counters_t c;
  ra_server_counters (T.srv, &c);
  cr_assert_eq (c.sessions, 0);
}

/* make of env with n envs and the config keys given as name, value pairs (NULL-terminated). */
static ra_err_t s_make_cfg (const char *env, int n, ...)
{
  const char *names[16];
  int64_t values[16];
  int nkeys = 0;
  va_list ap;
  va_start (ap, n);
  for (const char *k; nkeys < 16 && (k = va_arg (ap, const char *));) {
    names[nkeys] = k;
    values[nkeys++] = va_arg (ap, int64_t);
  }
  va_end (ap);
  ra_msg_out_t *m = th_begin (&T, "make", 3);
  ra_msg_out_str (m, "env");
  ra_msg_out_str (m, env);
  ra_msg_out_str (m, "num_envs");
  ra_msg_out_int (m, n);
  ra_msg_out_str (m, "config");
  ra_msg_out_map (m, (uint32_t) nkeys);
  for (int i = 0; i < nkeys; i++) {
    ra_msg_out_str (m, names[i]);
    ra_msg_out_int (m, values[i]);
  }
  return th_call (&T);
}

Test (trust, per_env_state_beyond_the_candidates_is_in_the_estimate)
{
  /* Each News env keeps its own ring of publish_rate x max_age live articles (up to 4096 of d
     floats: 4 MiB an env), each Ads env a budget per advertiser, each env boredom per topic: the
     estimate counted none of them, so 100 News envs admitted as 3 MiB took 410 MiB, and 65536
     envs could take the machine. */
  s_budget_server (64, 128);
  cr_assert_eq (s_make_cfg ("News-v1", 100, "publish_rate", (int64_t) 64, "max_age", (int64_t) 64,
                            "embedding_dim", (int64_t) 256, "num_candidates", (int64_t) 2,
                            "slate_size", (int64_t) 1, (const char *) NULL),
                RA_ERR_LIMIT, "%s", T.err.message);
  cr_assert_eq (s_make_cfg ("Ads-v1", 8192, "num_advertisers", (int64_t) 4096, "embedding_dim",
                            (int64_t) 2, "num_candidates", (int64_t) 2, "slate_size", (int64_t) 1,
                            "num_items", (int64_t) 20, (const char *) NULL),
                RA_ERR_LIMIT, "%s", T.err.message);
  cr_assert_eq (s_make_cfg ("ECommerce-v1", 8192, "num_topics", (int64_t) 1024, "embedding_dim",
                            (int64_t) 2, "num_candidates", (int64_t) 2, "slate_size", (int64_t) 1,
                            "num_items", (int64_t) 1024, "dynamics.boredom", (int64_t) 1,
                            (const char *) NULL),
                RA_ERR_LIMIT, "%s", T.err.message);
  ra_server_counters_t c;
  ra_server_counters (T.srv, &c);
  cr_assert_eq (c.sessions, 0);
  /* The defaults still fit many envs. */
  cr_assert_eq (s_make_cfg ("News-v1", 256, (const char *) NULL), RA_OK, "%s", T.err.message);
}

Test (trust, an_out_of_range_size_is_bad_config_naming_it_not_a_limit)
{
  /* The estimate was made of the config before the sim checked it: num_candidates = 1e12 got
     LIMIT ("needs about 823974609 MiB") over the server but BAD_CONFIG in-process (env/local). */
  const struct { const char *env, *key; } cases[] = {
    { "ECommerce-v1", "num_candidates" }, { "ECommerce-v1", "num_items" },
    { "ECommerce-v1", "embedding_dim" }, { "Ads-v1", "num_advertisers" },
    { "Content-v1", "num_items" }, { "News-v1", "publish_rate" }, { "News-v1", "max_age" },
    { "News-v1", "task_slots" },
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    cr_assert_eq (s_make_cfg (cases[c].env, 1000, cases[c].key, (int64_t) 1000000000000,
                              (const char *) NULL),
                  RA_ERR_BAD_CONFIG, "%s %s: %s", cases[c].env, cases[c].key, T.err.message);
    cr_assert (strstr (T.err.message, cases[c].key), "%s", T.err.message);
  }
  /* A bad config is told so whatever the server holds: even with no session to spare. */
  th_fini (&T);
  ra_server_opts_t o;
  ra_server_opts_default (&o);
  o.workers = 1;
  o.max_sessions = 1;
  th_init_opts (&T, &o);
  cr_assert_eq (s_make_cfg ("News-v1", 1, (const char *) NULL), RA_OK, "%s", T.err.message);
  cr_assert_eq (s_make_cfg ("News-v1", 1, "max_age", (int64_t) -1, (const char *) NULL),
                RA_ERR_BAD_CONFIG, "%s", T.err.message);
  cr_assert_eq (s_make_cfg ("News-v1", 1, (const char *) NULL), RA_ERR_LIMIT, "%s", T.err.message);
}

Test (trust, the_estimate_is_a_finite_non_negative_number_whatever_the_config)
{
  /* The estimate used to be made before the sim checked the config (a make now checks first):
     publish_rate x max_age of 1e300 each is infinite, and times embedding_dim + 8 = 0 it was NaN,
     which no budget refuses (NaN > x is false) and whose conversion to int64_t is undefined.
     Negative sizes made it negative. */
  const ra_sim_class_t *cls = ra_sims_find ("News-v1", 7);
  cr_assert (cls);
  const struct { double d, p, a, K; } cases[] = {
    { -8, 1e300, 1e300, 20 }, { 16, -1e300, 1, 20 }, { -1e300, 3, 20, -1e300 }, { 1e300, 1e300, 1e300, 1e300 },
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    ra__kvlist_t cfg = { 0 };
    const char *keys[4] = { "embedding_dim", "publish_rate", "max_age", "num_candidates" };
    double vals[4] = { cases[c].d, cases[c].p, cases[c].a, cases[c].K };
    for (int i = 0; i < 4; i++)
      cfg.kv[cfg.n++] = (ra_kv_t) { .key = keys[i], .type = RA_KV_NUM, .num = vals[i] };
    ra__estimate_t e = ra__estimate (&cfg, cls, 1000, RA_AUTORESET_SAME_STEP);
    cr_assert (isfinite (e.world) && e.world >= 0, "case %zu: world %g", c, e.world);
    cr_assert (isfinite (e.per_env) && e.per_env >= 0, "case %zu: per_env %g", c, e.per_env);
    cr_assert (isfinite (e.env_state) && e.env_state >= 0, "case %zu: env_state %g", c, e.env_state);
  }
}

Test (trust, the_server_wide_budget_is_shared_and_given_back_on_close)
{
  s_budget_server (64, 100);
  int64_t a = th_make_sized (&T, ENV, 1, 100000, 64);   /* about 27 MiB each */
  int64_t b = th_make_sized (&T, ENV, 1, 100000, 64);
  int64_t c = th_make_sized (&T, ENV, 1, 100000, 64);
  cr_assert_gt (a, 0, "%s", T.err.message);
  cr_assert_gt (b, 0, "%s", T.err.message);
  cr_assert_gt (c, 0, "%s", T.err.message);
  cr_assert_eq (th_make_sized (&T, ENV, 1, 100000, 64), -1);
  cr_assert_eq (T.err.code, RA_ERR_LIMIT);
  cr_assert (strstr (T.err.message, "server"), "%s", T.err.message);
  ra_msg_out_t *m = th_begin (&T, "close", 1);
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, b);
  cr_assert_eq (th_call (&T), RA_OK);
  cr_assert_gt (th_make_sized (&T, ENV, 1, 100000, 64), 0, "%s", T.err.message);
}

Test (trust, set_task_is_admitted_by_the_world_it_may_build)
{
  s_budget_server (64, 1024);
  /* 8 envs: up to 9 task worlds of about 27 MiB; make charges one, set_task one more each. */
  int64_t h = th_make_sized (&T, ENV, 8, 100000, 64);
  cr_assert_gt (h, 0, "%s", T.err.message);
  cr_assert_eq (s_set_task (&T, h, 1), RA_OK, "%s", T.err.message);
  cr_assert_eq (s_set_task (&T, h, 2), RA_ERR_LIMIT, "a third world fits no 64 MiB budget");
  cr_assert (strstr (T.err.message, "set_task"), "%s", T.err.message);
  cr_assert_eq (s_reset_h (&T, h), RA_OK, "a refused set_task changes nothing: %s", T.err.message);
}

Test (trust, a_header_of_nils_is_refused_before_it_inflates)
{
  /* {v, id, op, x: [nil x 4M]}: 4 MiB in, about 100 MiB of msgpack objects if decoded. */
  size_t n = 4u << 20;
  ra_msg_out_t *m = th_begin (&T, "ping", 1);
  ra_msg_out_str (m, "x");
  ra_msg_out_array (m, (uint32_t) n);
  for (size_t i = 0; i < n; i++)
    ra_msg_out_nil (m);
  ra_server_handle_raw (T.srv, T.req.head.data, T.req.head.size, 0, NULL, NULL, &T.rep);
  cr_assert_eq (th_read_reply (&T, 0), RA_ERR_LIMIT, "%s", T.err.message);
  cr_assert (strstr (T.err.message, "tensor frames"), "%s", T.err.message);
  /* A seed list for 65536 envs is still a header. */
  m = th_begin (&T, "ping", 1);
  ra_msg_out_str (m, "seeds");
  ra_msg_out_array (m, 65536);
  for (int i = 0; i < 65536; i++)
    ra_msg_out_int (m, i);
  cr_assert_eq (th_call (&T), RA_OK, "%s", T.err.message);
}

/* True if s[0..n) is valid UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
static bool s_utf8_valid (const unsigned char *s, size_t n)
{
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!len || i + (size_t) len > n)
      return false;
    uint32_t cp = len == 1 ? c : c & (0x7f >> len);
    for (int k = 1; k < len; k++) {
      if ((s[i + k] & 0xc0) != 0x80)
        return false;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += (size_t) len;
  }
  return true;
}

static void s_expect_utf8_error (void)
{
  const msgpack_object *e = ra_map_get (T.out.root, "error");
  cr_assert (e);
  const char *msg;
  int len;
  cr_assert_eq (ra_get_str (e, "message", &msg, &len, NULL), RA_OK);
  cr_assert (s_utf8_valid ((const unsigned char *) msg, (size_t) len), "not UTF-8: %.*s", len, msg);
}

Test (trust, error_messages_are_valid_utf8_whatever_the_client_sent)
{
  /* 63 ASCII bytes, then a 2-byte character across the server's 64-byte cut. */
  char name[80];
  memset (name, 'a', 63);
  memcpy (name + 63, "\xc3\xa9-env", 7);
  ra_msg_out_t *m = th_begin (&T, "make", 2);
  ra_msg_out_str (m, "env");
  ra_msg_out_str (m, name);
  ra_msg_out_str (m, "num_envs");
  ra_msg_out_int (m, 1);
  cr_assert_eq (th_call (&T), RA_ERR_UNKNOWN_ENV, "%s", T.err.message);
  s_expect_utf8_error ();
  /* Bytes that are not UTF-8 at all, in an op name and an env name. */
  m = th_begin (&T, "make", 2);
  ra_msg_out_str (m, "env");
  ra_msg_out_str (m, "\xff\xfe\x80 env \xed\xa0\x80");
  ra_msg_out_str (m, "num_envs");
  ra_msg_out_int (m, 1);
  cr_assert_eq (th_call (&T), RA_ERR_UNKNOWN_ENV);
  s_expect_utf8_error ();
  th_begin (&T, "st\xe2\x82" "ats", 0);
  cr_assert_eq (th_call (&T), RA_ERR_UNKNOWN_OP);
  s_expect_utf8_error ();
  /* A config key with a 4-byte character near the 60-byte cut of the long-key message. */
  char key[300];
  memset (key, 'k', sizeof key);
  memcpy (key + 58, "\xf0\x9f\x98\x80", 4);
  key[299] = '\0';
  m = th_begin (&T, "make", 3);
  ra_msg_out_str (m, "env");
  ra_msg_out_str (m, ENV);
  ra_msg_out_str (m, "num_envs");
  ra_msg_out_int (m, 1);
  ra_msg_out_str (m, "config");
  ra_msg_out_map (m, 1);
  ra_msg_out_str (m, key);
  ra_msg_out_int (m, 1);
  cr_assert_eq (th_call (&T), RA_ERR_BAD_CONFIG);
  s_expect_utf8_error ();
}

Test (trust, hello_reports_every_limit)
{
  th_begin (&T, "hello", 0);
  cr_assert_eq (th_call (&T), RA_OK);
  const msgpack_object *limits = ra_map_get (T.out.root, "limits");
  cr_assert (limits);
  int64_t v;
  cr_assert_eq (ra_get_int (limits, "max_total_envs", &v, NULL), RA_OK);
  cr_assert_eq (v, 262144);
  cr_assert_eq (ra_get_int (limits, "max_session_bytes", &v, NULL), RA_OK);
  cr_assert_gt (v, 0);
  cr_assert_eq (ra_get_int (limits, "max_total_bytes", &v, NULL), RA_OK);
  cr_assert_gt (v, 0);
  cr_assert_eq (ra_get_int (limits, "max_queued_bytes", &v, NULL), RA_OK);
  cr_assert_eq (v, 4 * (64ll << 20), "by default a few of the biggest requests may wait");
}

/* Restarts T with two pool workers (and async_min_bytes when > 0), as a server would run. */
static void s_restart_with_pool (int64_t async_min_bytes)
{
  th_fini (&T);
  ra_server_opts_t o;
  ra_server_opts_default (&o);
  o.workers = 2;
  if (async_min_bytes > 0)
    o.async_min_bytes = async_min_bytes;
  th_init_opts (&T, &o);
}

/* Handles T's request as ra_server_run's loop would; the job it handed to the pool, if any, is
   run here instead, so the session is left consistent. Returns that job's slot, or NULL when
   the request ran inline. */
static ra__slot_t *s_handle_as_loop (int nframes, const void *const *frames, const size_t *sizes)
{
  T.srv->async = true;   /* as inside ra_server_run */
  ra_server_handle_raw (T.srv, T.req.head.data, T.req.head.size, nframes, frames, sizes, &T.rep);
  T.srv->async = false;
  ra__slot_t *slot = T.srv->deferred;
  if (slot) {
    T.srv->deferred = NULL;
    slot->job.fn (slot->job.ctx, 0, slot->job.n);
  }
  return slot;
}

/* Whether the loop would hand a step of n envs with config (K, d) to the pool. */
static bool s_step_deferred (int n, int64_t K, int64_t d)
{
  s_restart_with_pool (1 << 20);
  ra_msg_out_t *m = th_begin (&T, "make", 4);
  ra_msg_out_str (m, "env");
  ra_msg_out_str (m, ENV);
  ra_msg_out_str (m, "num_envs");
  ra_msg_out_int (m, n);
  ra_msg_out_str (m, "seed");
  ra_msg_out_int (m, 1);
  ra_msg_out_str (m, "config");
  ra_msg_out_map (m, 2);
  ra_msg_out_str (m, "num_candidates");
  ra_msg_out_int (m, K);
  ra_msg_out_str (m, "embedding_dim");
  ra_msg_out_int (m, d);
  cr_assert_eq (th_call (&T), RA_OK, "%s", T.err.message);
  int64_t h;
  ra_get_int (T.out.root, "handle", &h, NULL);
  cr_assert_eq (s_reset_h (&T, h), RA_OK);
  int32_t *a = malloc ((size_t) n * 3 * sizeof *a);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < 3; j++)
      a[i * 3 + j] = j;
  ra_msg_out_t *req = th_begin (&T, "step", 2);
  ra_msg_out_str (req, "handle");
  ra_msg_out_int (req, h);
  ra_msg_out_str (req, "action");
  int64_t shape[2] = { n, 3 };
  ra_msg_out_tensor (req, RA_DTYPE_I32, 2, shape, a);
  const void *frames[1] = { T.req.frames[0].data };
  size_t sizes[1] = { T.req.frames[0].nbytes };
  bool deferred = s_handle_as_loop (1, frames, sizes) != NULL;
  free (a);
  return deferred;
}

Test (trust, whether_a_step_runs_inline_depends_on_its_cost_not_its_env_count)
{
  /* 1000 envs of 64 candidates x 64 dims write about 17 MiB: the pool (issue: a 1023-env step
     of 256 x 256 ran inline and delayed others by 27-39 ms). */
  cr_assert (s_step_deferred (1000, 64, 64), "a costly step under 1024 envs ran inline");
  /* 1000 envs of 4 candidates x 2 dims write about 60 KiB: inline, no hand-off. */
  cr_assert_not (s_step_deferred (1000, 4, 2), "a cheap step went to the pool");
}

/* Whether the loop would hand the first reset of a News session of n envs keeping
   publish_rate x max_age live articles each (candidates 2 x 16 dims) to the pool. */
static bool s_news_reset_deferred (int n, int64_t publish_rate, int64_t max_age)
{
  s_restart_with_pool (1 << 20);
  cr_assert_eq (s_make_cfg ("News-v1", n, "publish_rate", publish_rate, "max_age", max_age,
                            "embedding_dim", (int64_t) 16, "num_candidates", (int64_t) 2,
                            "slate_size", (int64_t) 1, (const char *) NULL), RA_OK, "%s", T.err.message);
  int64_t h;
  ra_get_int (T.out.root, "handle", &h, NULL);
  ra_msg_out_t *m = th_begin (&T, "reset", 1);
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, h);
  return s_handle_as_loop (0, NULL, NULL) != NULL;
}

Test (trust, a_reset_that_fills_big_per_env_state_runs_on_the_pool)
{
  /* 1000 News envs of 64 x 64 live articles write 4096 articles of 16 dims each at reset (about
     400 MB, 0.6 s) but only 270 KB of observations: it ran inline and stalled every other
     client for the whole reset, again at every reset. */
  cr_assert (s_news_reset_deferred (1000, 64, 64), "a reset writing 400 MB of state ran inline");
  /* 100 envs of 60 articles: about 0.6 MB, inline. */
  cr_assert_not (s_news_reset_deferred (100, 3, 20), "a cheap reset went to the pool");
}

Test (trust, a_set_task_that_rebuilds_a_world_in_a_freed_slot_runs_on_the_pool)
{
  /* Only a set_task that grew the session's worlds went to the pool. Once every task slot was
     charged, a set_task onto a new task rebuilt the world in the slot it freed on the server
     thread: with 1M items x 64 dims, 1.8 s in which no other client was answered, as often as
     its client liked. */
  s_restart_with_pool (0);
  cr_assert_eq (s_make_cfg (ENV, 1, "num_items", (int64_t) 100000, "embedding_dim", (int64_t) 16,
                            "task_slots", (int64_t) 2, (const char *) NULL), RA_OK, "%s", T.err.message);
  int64_t h;
  ra_get_int (T.out.root, "handle", &h, NULL);
  cr_assert_eq (s_reset_h (&T, h), RA_OK);
  cr_assert_eq (s_set_task (&T, h, 1), RA_OK, "%s", T.err.message);   /* the second world */
  for (int64_t id = 2; id < 4; id++) {
    s_begin_set_task (&T, h, id);
    ra__slot_t *slot = s_handle_as_loop (0, NULL, NULL);
    cr_assert (slot, "set_task %lld onto a freed slot (a world of 10 MB) ran inline", (long long) id);
    ra__reply_job (T.srv, slot, &T.rep);   /* answer it here, as the loop would after the pool */
    cr_assert_eq (th_read_reply (&T, T.next_id - 1), RA_OK, "%s", T.err.message);
  }
}

/* Digest of a trajectory of steps (obs, reward, flags per env); hold > 0 keeps references on
   the last `hold` replies' buffers, as replies still being sent do, so the session cycles
   through its spares and fresh buffers. */
static void s_trajectory (const char *autoreset, int hold, uint64_t *digests, int n)
{
  th_fini (&T);
  th_init (&T, 1);
  int64_t h = th_make (&T, ENV, n, 7, autoreset, 40);   /* users leave at different steps */
  cr_assert_gt (h, 0, "%s", T.err.message);
  cr_assert_eq (th_reset (&T, h, 7, NULL, 0), RA_OK);
  ra_outbufs_t *held[8] = { 0 };
  int32_t a[64 * 3];
  for (int i = 0; i < n; i++)
    digests[i] = 1469598103934665603ull;
  for (int step = 0; step < 60; step++) {
    for (int i = 0; i < n; i++)
      th_policy (a + 3 * i, i, step, 20, 3);
    cr_assert_eq (th_step (&T, h, a, n, 3), RA_OK, "%s", T.err.message);
    th_digest_step (&T, digests, n, true);
    if (hold > 0) {
      ra_outbufs_release (held[step % hold]);
      held[step % hold] = T.srv->reply_owner;
      ra_outbufs_retain (held[step % hold]);
    }
    if (strcmp (autoreset, "disabled") == 0) {   /* reset what ended, by mask */
      ra_tensor_t te = th_tensor (&T, T.out.root, "terminated"), tr = th_tensor (&T, T.out.root, "truncated");
      bool mask[64], any = false;
      for (int i = 0; i < n; i++)
        any |= mask[i] = ((const uint8_t *) te.data)[i] || ((const uint8_t *) tr.data)[i];
      if (any) {
        cr_assert_eq (th_reset (&T, h, -1, mask, n), RA_OK, "%s", T.err.message);
        th_digest_step (&T, digests, n, false);
      }
    }
  }
  for (int k = 0; k < 8; k++)
    ra_outbufs_release (held[k]);
}

Test (trust, replies_in_flight_never_change_a_trajectory)
{
  const char *modes[] = { "next_step", "same_step", "disabled" };
  for (int m = 0; m < 3; m++) {
    uint64_t free_run[16], held_run[16];
    s_trajectory (modes[m], 0, free_run, 16);
    for (int hold = 1; hold <= 5; hold += 2) {
      s_trajectory (modes[m], hold, held_run, 16);
      for (int i = 0; i < 16; i++)
        cr_assert_eq (held_run[i], free_run[i], "%s, %d replies held: env %d differs", modes[m],
                      hold, i);
    }
  }
}
