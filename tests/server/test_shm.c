/*  tests/server/test_shm.c - the shared-memory data plane (docs/protocol.md section "Shared
    memory"): a server thread on loopback TCP and ipc://, one client over shared memory and one
    over frames, stepped side by side; the segment's life (unlinked at first use, gone at close,
    expiry, when the client dies or drops it (its flock is gone), swept after a server crash);
    the byte budget counting the segment; the fallback to frames when /dev/shm has no room; and
    what another connection can do with it. Suite "spin": the doorbell of docs/local.md section 4 (server
    --spin-us, client ra_client_set_spin): the same trajectories and errors with it, no lost or
    late reply under random delays on both sides, and no session starved by another's spin.   */
#define _DEFAULT_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "env/server/server.h"
#include "env/server/server_int.h"
#include "helpers.h"
#include "protocol/client.h"
#include "protocol/shm.h"
#include "protocol/spin.h"

#define ENV "ECommerce-v1"

static ra_server_t *S;
static pthread_t S_thread;
static char S_ipc[128];


static void s_start_spin (double idle_timeout_s, int spin_us)
{
  ra_server_opts_t o;
  ra_server_opts_default (&o);
  o.workers = 2;
  o.spin_us = spin_us;
  if (idle_timeout_s > 0)
    o.idle_timeout_s = idle_timeout_s;
  ra_error_t err;
  cr_assert_eq (ra_server_new (&o, &S, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_server_bind (S, "tcp://127.0.0.1:*", &err), RA_OK, "%s", err.message);
  snprintf (S_ipc, sizeof S_ipc, "ipc:///tmp/recarena-shm-test-%d.sock", (int) getpid ());
  cr_assert_eq (ra_server_bind (S, S_ipc, &err), RA_OK, "%s", err.message);
  cr_assert_eq (pthread_create (&S_thread, NULL, ra_server_thread, S), 0);
}

static void s_start (double idle_timeout_s) { s_start_spin (idle_timeout_s, 0); }

static void setup (void) { s_start (0); }

static void teardown (void)
{
  ra_server_stop (S);
  pthread_join (S_thread, NULL);
  ra_server_destroy (&S);
  unlink (S_ipc + strlen ("ipc://"));
}

TestSuite (shm, .init = setup, .fini = teardown, .timeout = 60);

/* Segments in /dev/shm of the server process pid. */
static int s_segments (int pid)
{
  char prefix[64];
  snprintf (prefix, sizeof prefix, "recarena-shm-%d-", pid);
  DIR *d = opendir ("/dev/shm");
  cr_assert (d, "/dev/shm is not readable");
  int n = 0;
  struct dirent *e;
  while ((e = readdir (d)) != NULL)
    n += strncmp (e->d_name, prefix, strlen (prefix)) == 0;
  closedir (d);
  return n;
}

/* spin_us > 0: the client asks for a doorbell and spins that long for each reply. */
static ra_client_t *s_client_spin (const char *ep, bool shm, int spin_us)
{
  ra_client_t *c;
  ra_error_t err;
  cr_assert_eq (ra_client_new (ep, 5000, &c, &err), RA_OK, "%s", err.message);
  ra_client_set_shm (c, shm);
  ra_client_set_spin (c, spin_us);
  cr_assert_eq (ra_client_shm_available (c), shm, "a local server offers shared memory");
  return c;
}

static ra_client_t *s_client (const char *ep, bool shm) { return s_client_spin (ep, shm, 0); }

static uint64_t s_digest (const ra_step_result_t *r, bool with_step)
{
  uint64_t h = 1469598103934665603ull;
  for (int f = 0; f < r->obs.n; f++) {
    h = th_fnv (h, r->obs.names[f], strlen (r->obs.names[f]));
    h = th_fnv (h, r->obs.tensors[f].data, r->obs.tensors[f].nbytes);
  }
  for (int f = 0; f < r->info.n; f++) {
    h = th_fnv (h, r->info.names[f], strlen (r->info.names[f]));
    h = th_fnv (h, r->info.tensors[f].data, r->info.tensors[f].nbytes);
  }
  if (with_step) {
    h = th_fnv (h, r->reward.data, r->reward.nbytes);
    h = th_fnv (h, r->terminated.data, r->terminated.nbytes);
    h = th_fnv (h, r->truncated.data, r->truncated.nbytes);
  }
  return h;
}

/* Steps one shm and one frames client side by side through every autoreset mode, masked resets,
   bad actions (both paths must refuse them alike), actions of another integer dtype and actions
   out of int32 range (sent as tensors by the shm client). */
static void s_same_trajectories_spin (const char *ep, int spin_us)
{
  static const char *const modes[] = { "next_step", "same_step", "disabled" };
  ra_client_t *cs = s_client_spin (ep, true, spin_us), *cf = s_client (ep, false);
  const int n = 5, steps = 40;
  int polled = 0;   /* steps after which the server was polling the doorbell */
  for (int mi = 0; mi < 3; mi++) {
    ra_make_opts_t mo = { .has_seed = true, .seed = 21, .autoreset = modes[mi], .max_episode_steps = 7 };
    ra_client_env_t es, ef;
    ra_error_t err, err2;
    cr_assert_eq (ra_client_make (cs, ENV, n, &mo, &es, &err), RA_OK, "%s", err.message);
    cr_assert_eq (ra_client_make (cf, ENV, n, &mo, &ef, &err), RA_OK, "%s", err.message);
    cr_assert (es.shm != NULL && ef.shm == NULL, "%s: shm on the shm client only", modes[mi]);
    cr_assert_eq (ra_shm_map_spin (es.shm) != NULL, spin_us > 0, "%s: a doorbell when asked for",
                  modes[mi]);
    ra_step_result_t rs, rf;
    uint64_t seeds[5] = { 3, 1, 4, 1, 5 };
    cr_assert_eq (ra_client_reset (cs, &es, seeds, NULL, &rs, &err), RA_OK, "%s", err.message);
    cr_assert_eq (ra_client_reset (cf, &ef, seeds, NULL, &rf, &err), RA_OK, "%s", err.message);
    cr_assert_eq (s_digest (&rs, false), s_digest (&rf, false), "%s: reset differs", modes[mi]);
    int32_t a[5 * 3];
    int64_t a64[5 * 3], shape[2] = { n, 3 };
    ra_step_result_t prev;
    uint64_t prev_digest = 0;
    bool have_prev = false;
    for (int s = 0; s < steps; s++) {
      for (int i = 0; i < n; i++)
        for (int j = 0; j < 3; j++)
          a[3 * i + j] = a64[3 * i + j] = (i * 7 + s * 3 + 5 * j) % 20;
      if (s % 9 == 4) {   /* refused alike: out of range, then out of int32 range */
        have_prev = false;   /* a refused request still takes the next slot */
        int32_t keep = a[4];
        a[4] = 20;
        ra_tensor_t bad = ra_tensor_view (RA_DTYPE_I32, 2, shape, a);
        cr_assert_eq (ra_client_step (cs, &es, &bad, &rs, &err), RA_ERR_BAD_ACTION);
        cr_assert_eq (ra_client_step (cf, &ef, &bad, &rf, &err2), RA_ERR_BAD_ACTION);
        cr_assert_str_eq (err.message, err2.message);
        cr_assert_eq (err.env_index, err2.env_index);
        a[4] = keep;
        int64_t keep64 = a64[7];
        a64[7] = (int64_t) 1 << 32;
        ra_tensor_t big = ra_tensor_view (RA_DTYPE_I64, 2, shape, a64);
        cr_assert_eq (ra_client_step (cs, &es, &big, &rs, &err), RA_ERR_BAD_ACTION);
        cr_assert_eq (ra_client_step (cf, &ef, &big, &rf, &err2), RA_ERR_BAD_ACTION);
        cr_assert_str_eq (err.message, err2.message);
        a64[7] = keep64;
        int64_t flat[1] = { n * 3 };
        ra_tensor_t wrong = ra_tensor_view (RA_DTYPE_I32, 1, flat, a);
        cr_assert_eq (ra_client_step (cs, &es, &wrong, &rs, &err), RA_ERR_BAD_ACTION);
        cr_assert_eq (ra_client_step (cf, &ef, &wrong, &rf, &err2), RA_ERR_BAD_ACTION);
        cr_assert_str_eq (err.message, err2.message);
      }
      ra_tensor_t act = s % 2 ? ra_tensor_view (RA_DTYPE_I64, 2, shape, a64)
                              : ra_tensor_view (RA_DTYPE_I32, 2, shape, a);
      ra_err_t r1 = ra_client_step (cs, &es, &act, &rs, &err);
      ra_err_t r2 = ra_client_step (cf, &ef, &act, &rf, &err2);
      cr_assert_eq (r1, r2, "%s step %d: %s / %s", modes[mi], s, err.message, err2.message);
      if (r1 == RA_ERR_NEEDS_RESET) {   /* disabled: reset the ended envs, by mask */
        have_prev = false;
        bool mask[5];
        for (int i = 0; i < n; i++)
          mask[i] = i == err.env_index || i % 2 == 0;
        cr_assert_eq (ra_client_reset (cs, &es, NULL, mask, &rs, &err), RA_OK, "%s", err.message);
        cr_assert_eq (ra_client_reset (cf, &ef, NULL, mask, &rf, &err), RA_OK, "%s", err.message);
        cr_assert_eq (s_digest (&rs, false), s_digest (&rf, false), "%s: masked reset differs", modes[mi]);
        continue;
      }
      cr_assert_eq (r1, RA_OK, "%s step %d: %s", modes[mi], s, err.message);
      void *area = ra_shm_map_spin (es.shm);
      if (area)
        polled += atomic_load (&((ra_spin_hdr_t *) area)->polling) != 0;
      cr_assert_eq (rs.obs.n, rf.obs.n);
      cr_assert_eq (rs.info.n, rf.info.n, "%s step %d: %d info tensors, %d over frames", modes[mi], s,
                    rs.info.n, rf.info.n);
      cr_assert_eq (s_digest (&rs, true), s_digest (&rf, true), "%s step %d differs", modes[mi], s);
      /* Double buffering: the previous step's results are intact while this one was written. */
      if (have_prev)
        cr_assert_eq (s_digest (&prev, true), prev_digest, "%s step %d overwrote step %d's results",
                      modes[mi], s, s - 1);
      prev = rs;
      prev_digest = s_digest (&rs, true);
      have_prev = true;
    }
    cr_assert_eq (ra_client_close (cs, &es, &err), RA_OK, "%s", err.message);
    cr_assert_eq (ra_client_close (cf, &ef, &err), RA_OK, "%s", err.message);
    ra_client_env_fini (&es);
    ra_client_env_fini (&ef);
  }
  ra_client_destroy (&cs);
  ra_client_destroy (&cf);
  if (spin_us > 0)
    cr_assert_gt (polled, 0, "the doorbell was never polled: every request went over ZeroMQ");
}

static void s_same_trajectories (const char *ep) { s_same_trajectories_spin (ep, 0); }

Test (shm, shm_and_frames_give_identical_trajectories_over_tcp_and_ipc)
{
  s_same_trajectories (ra_server_endpoint (S, 0));
  s_same_trajectories (S_ipc);
  cr_assert_eq (s_segments (getpid ()), 0, "every segment is gone once its session closed");
}

/* A raw make with shm: true; returns the handle and copies the segment's name. */
static int64_t s_raw_make (ra_client_t *c, char *name, size_t cap)
{
  ra_msg_out_t m;
  ra_msg_out_init (&m);
  ra_msg_out_request (&m, ra_client_next_id (c), "make", 3);
  ra_msg_out_str (&m, "env");
  ra_msg_out_str (&m, ENV);
  ra_msg_out_str (&m, "num_envs");
  ra_msg_out_int (&m, 2);
  ra_msg_out_str (&m, "shm");
  ra_msg_out_bool (&m, true);
  const ra_msg_in_t *r;
  ra_error_t err;
  cr_assert_eq (ra_client_call (c, &m, &r, &err), RA_OK, "%s", err.message);
  ra_msg_out_fini (&m);
  int64_t h;
  cr_assert_eq (ra_get_int (r->root, "handle", &h, &err), RA_OK);
  const msgpack_object *shm = ra_map_get (r->root, "shm");
  cr_assert (shm, "a local server answers make with shm: true with a segment");
  const char *s;
  int len;
  cr_assert_eq (ra_get_str (shm, "name", &s, &len, &err), RA_OK);
  cr_assert_lt ((size_t) len, cap);
  memcpy (name, s, (size_t) len);
  name[len] = '\0';
  return h;
}

/* A request {op, handle: h, key: value} sent as it is, without the client library's checks. */
static ra_err_t s_raw_call (ra_client_t *c, const char *op, int64_t h, const char *key, uint64_t value,
                            ra_error_t *err)
{
  ra_msg_out_t m;
  ra_msg_out_init (&m);
  ra_msg_out_request (&m, ra_client_next_id (c), op, 2);
  ra_msg_out_str (&m, "handle");
  ra_msg_out_int (&m, h);
  ra_msg_out_str (&m, key);
  ra_msg_out_uint (&m, value);
  ra_err_t rc = ra_client_call (c, &m, NULL, err);
  ra_msg_out_fini (&m);
  return rc;
}

static ra_err_t s_raw_reset (ra_client_t *c, int64_t h, int slot, ra_error_t *err)
{
  return s_raw_call (c, "reset", h, "shm", (uint64_t) slot, err);
}

Test (shm, the_segment_is_private_and_unlinked_at_first_use_and_at_close)
{
  ra_client_t *c = s_client (ra_server_endpoint (S, 0), true);
  char name[128];
  int64_t h = s_raw_make (c, name, sizeof name);
  int fd = shm_open (name, O_RDONLY, 0);
  cr_assert_geq (fd, 0, "the segment exists until first use");
  struct stat st;
  cr_assert_eq (fstat (fd, &st), 0);
  cr_assert_eq (st.st_mode & 0777, 0600, "mode %o, expected 0600", st.st_mode & 0777);
  close (fd);
  cr_assert_eq (s_segments (getpid ()), 1);
  /* Slots are 0 and 1; a session without a segment refuses "shm". */
  ra_error_t err;
  cr_assert_eq (s_raw_reset (c, h, 2, &err), RA_ERR_BAD_REQUEST);
  cr_assert_eq (shm_open (name, O_RDONLY, 0) >= 0, true, "a refused request does not unlink");
  cr_assert_eq (s_raw_reset (c, h, 0, &err), RA_OK, "%s", err.message);
  cr_assert_lt (shm_open (name, O_RDONLY, 0), 0, "nobody can open the segment after its first use");
  cr_assert_eq (s_segments (getpid ()), 0);
  /* Closing a session whose segment was never used removes it too. */
  int64_t h2 = s_raw_make (c, name, sizeof name);
  cr_assert_eq (s_segments (getpid ()), 1);
  ra_client_env_t env = { .handle = h2, .num_envs = 2 };
  cr_assert_eq (ra_client_close (c, &env, &err), RA_OK, "%s", err.message);
  cr_assert_eq (s_segments (getpid ()), 0);
  /* Another connection: the handle rules apply to shm requests as to any other. */
  ra_client_t *other = s_client (S_ipc, true);
  cr_assert_eq (s_raw_reset (other, h2, 0, &err), RA_ERR_NO_SUCH_HANDLE);
  ra_client_env_t plain;
  ra_client_set_shm (other, false);
  cr_assert_eq (ra_client_make (other, ENV, 2, NULL, &plain, &err), RA_OK, "%s", err.message);
  cr_assert_eq (s_raw_reset (other, plain.handle, 0, &err), RA_ERR_BAD_REQUEST,
                "a session made without shm refuses shm requests");
  ra_client_env_fini (&plain);
  ra_client_destroy (&other);
  ra_client_destroy (&c);
}

/* Tests that start (or crash) their own servers. */
TestSuite (shm_life, .timeout = 60);

Test (shm_life, segments_go_when_sessions_expire_or_their_client_goes_away)
{
  s_start (0.3);
  ra_client_t *c = s_client (ra_server_endpoint (S, 0), true);
  char name[128];
  s_raw_make (c, name, sizeof name);   /* never used: still linked */
  ra_client_env_t env;
  ra_error_t err;
  cr_assert_eq (ra_client_make (c, ENV, 3, NULL, &env, &err), RA_OK, "%s", err.message);
  cr_assert (env.shm);
  cr_assert_eq (s_segments (getpid ()), 2);
  /* The client goes away without closing anything: the server learns it by the idle expiry. */
  ra_client_env_fini (&env);
  ra_client_destroy (&c);
  struct timespec ts = { 0, 100 * 1000 * 1000 };
  for (int i = 0; i < 50 && s_segments (getpid ()) > 0; i++)
    nanosleep (&ts, NULL);
  cr_assert_eq (s_segments (getpid ()), 0, "expired sessions leave no segment");
  ra_server_counters_t k;
  ra_server_counters (S, &k);
  cr_assert_eq (k.sessions, 0);
  teardown ();
}

/* In a forked child: serve on ipc until killed or stopped, then _exit (3: could not start). */
static _Noreturn void s_child_server (const char *ipc)
{
  ra_server_opts_t o;
  ra_server_opts_default (&o);
  o.workers = 1;
  ra_server_t *srv;
  ra_error_t err;
  if (ra_server_new (&o, &srv, &err) != RA_OK || ra_server_bind (srv, ipc, &err) != RA_OK)
    _exit (3);
  ra_server_run (srv);
  ra_server_destroy (&srv);
  _exit (0);
}

Test (shm_life, a_new_server_sweeps_the_segments_of_one_that_crashed)
{
  char ipc[128];
  snprintf (ipc, sizeof ipc, "ipc:///tmp/recarena-shm-crash-%d.sock", (int) getpid ());
  pid_t child = fork ();
  cr_assert_geq (child, 0);
  if (child == 0)
    s_child_server (ipc);
  ra_client_t *c;
  ra_error_t err;
  cr_assert_eq (ra_client_new (ipc, 5000, &c, &err), RA_OK, "%s", err.message);
  cr_assert (ra_client_shm_available (c));
  char name[128];
  s_raw_make (c, name, sizeof name);
  s_raw_make (c, name, sizeof name);
  cr_assert_eq (s_segments (child), 2);
  kill (child, SIGKILL);   /* a crash: nothing is cleaned up */
  /* counted before the reap: a zombie's pid still answers kill (pid, 0), so no server another
     test starts meanwhile sweeps them first (ctest runs tests side by side) */
  cr_assert_eq (s_segments (child), 2, "a killed server leaves its segments");
  waitpid (child, NULL, 0);
  ra_client_destroy (&c);
  unlink (ipc + strlen ("ipc://"));
  /* A live server's segments stay: one of this process's, made by hand. */
  char mine[128];
  snprintf (mine, sizeof mine, "/recarena-shm-%d-feedfacefeedface", (int) getpid ());
  int fd = shm_open (mine, O_RDWR | O_CREAT | O_EXCL, 0600);
  cr_assert_geq (fd, 0);
  close (fd);
  ra_server_opts_t o;
  ra_server_opts_default (&o);
  o.workers = 1;
  ra_server_t *srv;
  cr_assert_eq (ra_server_new (&o, &srv, &err), RA_OK, "%s", err.message);
  cr_assert_eq (s_segments (child), 0, "the next server sweeps the dead one's segments");
  cr_assert_eq (s_segments (getpid ()), 1, "a live server's segment is kept");
  shm_unlink (mine);
  ra_server_destroy (&srv);
}

/* ------------------------------------------------------------------------------------------ */
/* The doorbell (docs/local.md section 4).                                                     */

TestSuite (spin, .timeout = 120);

Test (spin, a_doorbell_gives_the_same_trajectories_and_errors_as_frames)
{
  s_start_spin (0, 200000);   /* a long window: the doorbell path is taken nearly every time */
  s_same_trajectories_spin (ra_server_endpoint (S, 0), 2000);
  s_same_trajectories_spin (S_ipc, 2000);
  cr_assert_eq (s_segments (getpid ()), 0, "every segment is gone once its session closed");
  teardown ();
}

Test (spin, a_server_without_spin_us_gives_no_doorbell_and_the_client_works_as_before)
{
  s_start_spin (0, 0);
  ra_client_t *c = s_client_spin (ra_server_endpoint (S, 0), true, 1000);
  cr_assert (!ra_client_spin_available (c), "the server does not offer spin");
  s_same_trajectories_spin (ra_server_endpoint (S, 0), 0);
  ra_client_env_t env;
  ra_error_t err;
  cr_assert_eq (ra_client_make (c, ENV, 4, NULL, &env, &err), RA_OK, "%s", err.message);
  cr_assert (env.shm && !ra_shm_map_spin (env.shm));
  ra_client_env_fini (&env);
  ra_client_destroy (&c);
  teardown ();
}

static ra_err_t s_raw_ring (ra_client_t *c, int64_t h, uint64_t seq, ra_error_t *err)
{
  return s_raw_call (c, "ring", h, "seq", seq, err);
}

Test (spin, rings_and_doorbell_requests_that_make_no_sense_are_refused)
{
  s_start_spin (0, 1000);
  ra_client_t *c = s_client_spin (ra_server_endpoint (S, 0), true, 1000);
  ra_client_env_t env, plain;
  ra_error_t err;
  cr_assert_eq (ra_client_make (c, ENV, 3, NULL, &env, &err), RA_OK, "%s", err.message);
  void *area = ra_shm_map_spin (env.shm);
  cr_assert (area);
  ra_step_result_t r;
  cr_assert_eq (ra_client_reset (c, &env, NULL, NULL, &r, &err), RA_OK, "%s", err.message);
  /* A ring beyond the last request posted, and one on a session without a doorbell. */
  cr_assert_eq (s_raw_ring (c, env.handle, 99, &err), RA_ERR_BAD_REQUEST);
  cr_assert (strstr (err.message, "last one posted is 1"), "%s", err.message);
  ra_client_set_spin (c, 0);
  cr_assert_eq (ra_client_make (c, ENV, 3, NULL, &plain, &err), RA_OK, "%s", err.message);
  cr_assert (!ra_shm_map_spin (plain.shm));
  cr_assert_eq (s_raw_ring (c, plain.handle, 1, &err), RA_ERR_BAD_REQUEST);
  cr_assert (strstr (err.message, "no doorbell"), "%s", err.message);
  cr_assert_eq (s_raw_ring (c, 12345, 1, &err), RA_ERR_NO_SUCH_HANDLE);
  /* A doorbell request for another op or another handle gets its error in the doorbell. */
  ra_msg_out_t m;
  ra_msg_out_init (&m);
  ra_msg_out_request (&m, 777, "render", 2);
  ra_msg_out_str (&m, "handle");
  ra_msg_out_int (&m, env.handle);
  ra_msg_out_str (&m, "index");
  ra_msg_out_int (&m, 0);
  ra_spin_post (area, m.head.data, (uint32_t) m.head.size, 2);
  cr_assert_eq (s_raw_ring (c, env.handle, 2, &err), RA_OK, "%s", err.message);
  uint32_t len = ra_spin_reply (area, 2);
  cr_assert_gt (len, 0, "the ring is answered once the doorbell request is");
  ra_msg_in_t in;
  ra_msg_in_init (&in);
  cr_assert_eq (ra_msg_in_decode (&in, ra_spin_rep_area (area), len, 0, NULL, NULL, false, &err), RA_OK);
  cr_assert (in.has_id && in.id == 777 && !in.ok);
  const msgpack_object *e = ra_map_get (in.root, "error");
  cr_assert (e && ra_obj_is_str (ra_map_get (e, "code"), "BAD_REQUEST"));
  ra_msg_in_fini (&in);
  msgpack_unpacked_destroy (&in.unp);
  ra_msg_out_fini (&m);
  ra_client_env_fini (&env);
  ra_client_env_fini (&plain);
  ra_client_destroy (&c);
  teardown ();
}

static double s_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

static void s_sleep_us (long us)
{
  struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
  nanosleep (&ts, NULL);
}

static uint64_t s_rng (uint64_t *x)
{
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

/* Random traffic of another client, so that the server's loop turns take random times too. */
static atomic_int S_noise_stop;
static void *s_noise (void *arg)
{
  ra_client_t *c;
  ra_error_t err;
  if (ra_client_new (arg, 5000, &c, &err) != RA_OK)
    return NULL;
  uint64_t x = 88172645463325252ull;
  while (!atomic_load (&S_noise_stop)) {
    ra_client_ping (c, &err);
    s_sleep_us ((long) (s_rng (&x) % 200));
  }
  ra_client_destroy (&c);
  return NULL;
}

/* The server spins briefly (20 us) so it goes to sleep all the time, and the client posts at
   random moments around that, while a third client's pings shift the server's turns. The client
   spins up to a second: a request the server failed to see when it cleared its polling word
   (docs/local.md 4.3: without the recheck) would show as a step of about a second instead of a
   hang, and one lost altogether as a timeout. */
Test (spin, random_delays_on_both_sides_lose_no_reply_and_delay_none)
{
  s_start_spin (0, 20);
  const char *ep = ra_server_endpoint (S, 0);
  atomic_store (&S_noise_stop, 0);
  pthread_t noise;
  cr_assert_eq (pthread_create (&noise, NULL, s_noise, (void *) ep), 0);
  ra_client_t *c = s_client_spin (ep, true, RA_SPIN_MAX_US);
  ra_client_env_t env;
  ra_error_t err;
  ra_make_opts_t mo = { .has_seed = true, .seed = 5 };
  cr_assert_eq (ra_client_make (c, ENV, 2, &mo, &env, &err), RA_OK, "%s", err.message);
  cr_assert (ra_shm_map_spin (env.shm));
  ra_step_result_t r;
  cr_assert_eq (ra_client_reset (c, &env, NULL, NULL, &r, &err), RA_OK, "%s", err.message);
  uint64_t x = 0x9E3779B97F4A7C15ull;
  int32_t a[2 * 3];
  int64_t shape[2] = { 2, 3 };
  double worst = 0;
  const int steps = 3000;
  for (int s = 0; s < steps; s++) {
    for (int i = 0; i < 6; i++)
      a[i] = (int32_t) ((s + 7 * i) % 20);
    ra_tensor_t act = ra_tensor_view (RA_DTYPE_I32, 2, shape, a);
    s_sleep_us ((long) (s_rng (&x) % 60));
    double t0 = s_now ();
    ra_err_t rc = ra_client_step (c, &env, &act, &r, &err);
    double dt = s_now () - t0;
    cr_assert_eq (rc, RA_OK, "step %d: %s", s, err.message);
    worst = dt > worst ? dt : worst;
  }
  atomic_store (&S_noise_stop, 1);
  pthread_join (noise, NULL);
  cr_assert_lt (worst, 0.5, "a step took %.3f s: a request waited for the client's own spin to "
                "run out", worst);
  ra_client_env_fini (&env);
  ra_client_destroy (&c);
  teardown ();
}

typedef struct {
  const char *ep;
  int spin_us, steps;
  bool shm;
  atomic_int *stop;   /* NULL: run steps steps; else run until it is set */
  int done;
  ra_err_t rc;
  char msg[256];
} s_worker_t;

static void *s_worker (void *arg)
{
  s_worker_t *w = arg;
  ra_client_t *c;
  ra_error_t err;
  w->rc = ra_client_new (w->ep, 5000, &c, &err);
  if (w->rc != RA_OK)
    goto out;
  ra_client_set_shm (c, w->shm);
  ra_client_set_spin (c, w->spin_us);
  ra_client_env_t env;
  if ((w->rc = ra_client_make (c, ENV, 8, NULL, &env, &err)) != RA_OK)
    goto out_c;
  ra_step_result_t r;
  if ((w->rc = ra_client_reset (c, &env, NULL, NULL, &r, &err)) != RA_OK)
    goto out_env;
  int32_t a[8 * 3];
  int64_t shape[2] = { 8, 3 };
  for (int s = 0; w->stop ? !atomic_load (w->stop) : s < w->steps; s++) {
    for (int i = 0; i < 24; i++)
      a[i] = (int32_t) ((s + i) % 20);
    ra_tensor_t act = ra_tensor_view (RA_DTYPE_I32, 2, shape, a);
    if ((w->rc = ra_client_step (c, &env, &act, &r, &err)) != RA_OK)
      goto out_env;
    w->done++;
  }
out_env:
  ra_client_env_fini (&env);
out_c:
  ra_client_destroy (&c);
out:
  if (w->rc != RA_OK)
    snprintf (w->msg, sizeof w->msg, "%s", err.message);
  return NULL;
}

/* One client steps as fast as it can through its doorbell (the server keeps spinning for it)
   while another doorbell client and a client over frames step too: all of them progress. */
Test (spin, one_spinning_session_starves_no_other)
{
  s_start_spin (0, 100000);
  const char *ep = ra_server_endpoint (S, 0);
  atomic_int stop;
  atomic_init (&stop, 0);
  s_worker_t hog = { .ep = ep, .spin_us = 100000, .shm = true, .stop = &stop };
  s_worker_t other = { .ep = ep, .spin_us = 100000, .shm = true, .steps = 300 };
  s_worker_t frames = { .ep = S_ipc, .spin_us = 0, .shm = false, .steps = 300 };
  pthread_t th[3];
  cr_assert_eq (pthread_create (&th[0], NULL, s_worker, &hog), 0);
  cr_assert_eq (pthread_create (&th[1], NULL, s_worker, &other), 0);
  cr_assert_eq (pthread_create (&th[2], NULL, s_worker, &frames), 0);
  pthread_join (th[1], NULL);
  pthread_join (th[2], NULL);
  atomic_store (&stop, 1);
  pthread_join (th[0], NULL);
  cr_assert_eq (other.rc, RA_OK, "%s", other.msg);
  cr_assert_eq (frames.rc, RA_OK, "%s", frames.msg);
  cr_assert_eq (hog.rc, RA_OK, "%s", hog.msg);
  cr_assert_eq (other.done, 300);
  cr_assert_eq (frames.done, 300);
  cr_assert_gt (hog.done, 0);
  teardown ();
}

/* The interleaving the recheck exists for (docs/local.md 4.3), played step by step on a server
   without its loop: the client posts after the loop's last look, while the doorbell still says
   "polling", so it does not ring; the loop then clears the word before sleeping, and its recheck
   must answer the request. Without the recheck the request would wait for the client's spin. */
Test (spin, a_request_posted_as_the_server_goes_to_sleep_is_answered_by_its_recheck)
{
  th_t t;
  ra_server_opts_t o;
  ra_server_opts_default (&o);
  o.workers = 1;
  o.spin_us = RA_SPIN_MAX_US;
  th_init_opts (&t, &o);
  char ipc[128];
  snprintf (ipc, sizeof ipc, "ipc:///tmp/recarena-spin-recheck-%d.sock", (int) getpid ());
  ra_error_t err;
  cr_assert_eq (ra_server_bind (t.srv, ipc, &err), RA_OK, "%s", err.message);
  ra_msg_out_t *m = th_begin (&t, "make", 4);
  ra_msg_out_str (m, "env");
  ra_msg_out_str (m, ENV);
  ra_msg_out_str (m, "num_envs");
  ra_msg_out_int (m, 2);
  ra_msg_out_str (m, "shm");
  ra_msg_out_bool (m, true);
  ra_msg_out_str (m, "spin");
  ra_msg_out_bool (m, true);
  cr_assert_eq (th_call (&t), RA_OK, "%s", t.err.message);
  int64_t h;
  cr_assert_eq (ra_get_int (t.out.root, "handle", &h, NULL), RA_OK);
  ra_shm_map_t *map;
  cr_assert_eq (ra_shm_map_open (ra_map_get (t.out.root, "shm"), 2, 3, &map, &err), RA_OK, "%s",
                err.message);
  void *area = ra_shm_map_spin (map);
  cr_assert (area, "make with shm and spin on a --spin-us server gives a doorbell");

  ra_msg_out_t req;
  ra_msg_out_init (&req);
  ra_msg_out_request (&req, 1001, "reset", 2);
  ra_msg_out_str (&req, "handle");
  ra_msg_out_int (&req, h);
  ra_msg_out_str (&req, "shm");
  ra_msg_out_int (&req, 0);
  cr_assert (!ra_spin_post (area, req.head.data, (uint32_t) req.head.size, 1),
             "nobody polls a fresh doorbell: the client rings");
  cr_assert_eq (ra__spin_turn (t.srv, 100), 0, "the loop answered request 1 and spins");
  cr_assert_gt (ra_spin_reply (area, 1), 0);

  int32_t zeros[6] = { 0, 1, 2, 0, 1, 2 };
  int64_t shape[2] = { 2, 3 };
  ra_tensor_t act = ra_tensor_view (RA_DTYPE_I32, 2, shape, zeros);
  cr_assert (ra_shm_map_put_action (map, 1, &act));
  ra_msg_out_clear (&req);
  ra_msg_out_request (&req, 1002, "step", 2);
  ra_msg_out_str (&req, "handle");
  ra_msg_out_int (&req, h);
  ra_msg_out_str (&req, "shm");
  ra_msg_out_int (&req, 1);
  cr_assert (ra_spin_post (area, req.head.data, (uint32_t) req.head.size, 2),
             "the client sees the loop polling and does not ring");
  cr_assert (!ra__spin_sleep (t.srv), "the recheck found request 2: the loop spins on");
  uint32_t len = ra_spin_reply (area, 2);
  cr_assert_gt (len, 0, "request 2 is answered before the loop sleeps");
  ra_msg_in_t in;
  ra_msg_in_init (&in);
  cr_assert_eq (ra_msg_in_decode (&in, ra_spin_rep_area (area), len, 0, NULL, NULL, false, &err), RA_OK);
  cr_assert (in.has_id && in.id == 1002 && in.ok, "the step's own reply");

  cr_assert (ra__spin_sleep (t.srv), "nothing posted since: the loop sleeps");
  cr_assert (!ra_spin_post (area, req.head.data, (uint32_t) req.head.size, 3),
             "after the clear a client sees nobody polling and rings");
  ra_msg_in_fini (&in);
  msgpack_unpacked_destroy (&in.unp);
  ra_msg_out_fini (&req);
  ra_shm_map_close (&map);
  th_fini (&t);
  unlink (ipc + strlen ("ipc://"));
}

/* ------------------------------------------------------------------------------------------ */
/* Dead clients, byte budgets, no room in /dev/shm.                                            */

/* A child process makes three sessions over shared memory, uses two of them and dies without
   closing anything. With a 60 s idle timeout the server still closes the two used sessions at its
   next sweep (every 5 s at most), because nobody holds their segments' locks any more; the unused
   one (never mapped for sure) waits for its expiry, and a live client's session stays. */
Test (shm_life, a_dead_clients_used_sessions_go_at_the_next_sweep_not_at_expiry, .timeout = 60)
{
  s_start_spin (20, 0);   /* sweeps every 5 s */
  const char *ep = ra_server_endpoint (S, 0);
  ra_client_t *live = s_client (ep, true);
  ra_client_env_t mine;
  ra_error_t err;
  ra_step_result_t r;
  cr_assert_eq (ra_client_make (live, ENV, 2, NULL, &mine, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_client_reset (live, &mine, NULL, NULL, &r, &err), RA_OK, "%s", err.message);
  fflush (NULL);
  pid_t child = fork ();
  cr_assert_geq (child, 0);
  if (child == 0) {
    ra_client_t *c;
    ra_client_env_t e[3];
    ra_step_result_t rr;
    if (ra_client_new (ep, 5000, &c, &err) != RA_OK)
      _exit (3);
    for (int i = 0; i < 3; i++)
      if (ra_client_make (c, ENV, 2, NULL, &e[i], &err) != RA_OK || !e[i].shm)
        _exit (4);
    for (int i = 0; i < 2; i++)
      if (ra_client_reset (c, &e[i], NULL, NULL, &rr, &err) != RA_OK)
        _exit (5);
    _exit (0);   /* dies with its sessions open */
  }
  int status;
  waitpid (child, &status, 0);
  cr_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0, "child failed: %d", status);
  ra_server_counters_t k;
  ra_server_counters (S, &k);
  cr_assert_eq (k.sessions, 4);
  for (int i = 0; i < 80 && k.sessions > 2; i++) {
    s_sleep_us (100000);
    ra_server_counters (S, &k);
  }
  cr_assert_eq (k.sessions, 2, "the dead client's two used sessions go at the next sweep; %lld left",
                (long long) k.sessions);
  cr_assert_eq (s_segments (getpid ()), 1, "the unused one's segment is still linked");
  cr_assert_eq (ra_client_reset (live, &mine, NULL, NULL, &r, &err), RA_OK,
                "a live client's session stays: %s", err.message);
  ra_client_env_fini (&mine);
  ra_client_destroy (&live);
  teardown ();
}

/* The make's estimate, then the same make with a segment: the segment's second block, action
   areas and doorbell are charged on top; a budget that admits the make but not its segment gives
   a session over frames. */
Test (shm_life, the_byte_budget_counts_the_segment_and_a_segment_over_it_falls_back_to_frames)
{
  char ipc[128];
  snprintf (ipc, sizeof ipc, "ipc:///tmp/recarena-shm-budget-%d.sock", (int) getpid ());
  int64_t est = 0, with_shm = 0;
  for (int round = 0; round < 2; round++) {
    th_t t;
    ra_server_opts_t o;
    ra_server_opts_default (&o);
    o.workers = 1;
    o.spin_us = 100;
    if (round == 1)
      o.max_session_bytes = o.max_total_bytes = with_shm - 1;
    th_init_opts (&t, &o);
    ra_error_t err;
    cr_assert_eq (ra_server_bind (t.srv, ipc, &err), RA_OK, "%s", err.message);
    for (int shm = 0; shm < 2; shm++) {
      if (round == 1 && !shm)
        continue;
      ra_msg_out_t *m = th_begin (&t, "make", 4);
      ra_msg_out_str (m, "env");
      ra_msg_out_str (m, ENV);
      ra_msg_out_str (m, "num_envs");
      ra_msg_out_int (m, 64);
      ra_msg_out_str (m, "shm");
      ra_msg_out_bool (m, shm);
      ra_msg_out_str (m, "spin");
      ra_msg_out_bool (m, shm);
      cr_assert_eq (th_call (&t), RA_OK, "%s", t.err.message);
      bool got = ra_map_get (t.out.root, "shm") != NULL;
      if (round == 0) {
        cr_assert_eq (got, shm);
        if (!shm)
          est = t.srv->nbytes;
        else
          with_shm = t.srv->nbytes - est;
      } else {
        cr_assert (!got, "a segment over the byte budget is not made");
        cr_assert_eq (t.srv->nbytes, est, "and nothing of it is charged");
      }
    }
    th_fini (&t);
    unlink (ipc + strlen ("ipc://"));
  }
  /* 64 envs x 20 candidates x (16 + 8) floats: a block is well above 100 KB, the doorbell 84 KiB. */
  cr_assert_gt (with_shm - est, 100000 + (int64_t) RA_SPIN_AREA_BYTES,
                "the segment adds %lld bytes to the estimate of %lld", (long long) (with_shm - est),
                (long long) est);
}

/* A server that cannot reserve the segment's memory (here: a file size limit, which tmpfs
   enforces like a full /dev/shm) answers the make without shm; the session works over frames
   and no segment is left behind. */
Test (shm_life, no_room_for_a_segment_means_frames_and_no_segment_left)
{
  char ipc[128];
  snprintf (ipc, sizeof ipc, "ipc:///tmp/recarena-shm-full-%d.sock", (int) getpid ());
  fflush (NULL);
  pid_t child = fork ();
  cr_assert_geq (child, 0);
  if (child == 0) {
    signal (SIGXFSZ, SIG_IGN);   /* posix_fallocate then fails with EFBIG instead */
    struct rlimit rl = { 4096, 4096 };
    if (setrlimit (RLIMIT_FSIZE, &rl) != 0)
      _exit (2);
    s_child_server (ipc);
  }
  ra_client_t *c;
  ra_error_t err;
  cr_assert_eq (ra_client_new (ipc, 5000, &c, &err), RA_OK, "%s", err.message);
  cr_assert (ra_client_shm_available (c));
  ra_client_env_t env;
  ra_make_opts_t mo = { .has_seed = true, .seed = 9 };
  cr_assert_eq (ra_client_make (c, ENV, 4, &mo, &env, &err), RA_OK, "%s", err.message);
  cr_assert (!env.shm, "no segment without room for it");
  cr_assert_eq (s_segments (child), 0, "the failed segment's name is gone");
  ra_step_result_t r;
  cr_assert_eq (ra_client_reset (c, &env, NULL, NULL, &r, &err), RA_OK, "%s", err.message);
  int32_t a[4 * 3] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 };
  int64_t shape[2] = { 4, 3 };
  ra_tensor_t act = ra_tensor_view (RA_DTYPE_I32, 2, shape, a);
  for (int s = 0; s < 5; s++)
    cr_assert_eq (ra_client_step (c, &env, &act, &r, &err), RA_OK, "%s", err.message);
  ra_client_env_fini (&env);
  ra_client_destroy (&c);
  kill (child, SIGTERM);
  waitpid (child, NULL, 0);
  unlink (ipc + strlen ("ipc://"));
}

/* A server that stops while a doorbell client is mid-session: the client's next step neither
   hangs nor spins on: it rings, and gets the timeout of a stopped server within its deadline. */
Test (spin, a_stopped_server_means_a_timeout_not_a_hang)
{
  s_start_spin (0, 100000);
  ra_client_t *c = s_client_spin (ra_server_endpoint (S, 0), true, 1000);
  ra_client_set_timeout (c, 300);
  ra_client_env_t env;
  ra_error_t err;
  ra_step_result_t r;
  cr_assert_eq (ra_client_make (c, ENV, 2, NULL, &env, &err), RA_OK, "%s", err.message);
  cr_assert (ra_shm_map_spin (env.shm));
  cr_assert_eq (ra_client_reset (c, &env, NULL, NULL, &r, &err), RA_OK, "%s", err.message);
  ra_server_stop (S);
  pthread_join (S_thread, NULL);
  cr_assert_eq (atomic_load (&((ra_spin_hdr_t *) ra_shm_map_spin (env.shm))->polling), 0u,
                "a stopped loop polls no doorbell");
  int32_t a[6] = { 0, 1, 2, 3, 4, 5 };
  int64_t shape[2] = { 2, 3 };
  ra_tensor_t act = ra_tensor_view (RA_DTYPE_I32, 2, shape, a);
  double t0 = s_now ();
  cr_assert_eq (ra_client_step (c, &env, &act, &r, &err), RA_ERR_TIMEOUT, "%s", err.message);
  cr_assert_lt (s_now () - t0, 2.0);
  ra_client_env_fini (&env);
  ra_client_destroy (&c);
  ra_server_destroy (&S);
  unlink (S_ipc + strlen ("ipc://"));
}

Test (spin, a_doorbell_request_on_a_session_that_expired_meanwhile_is_refused_not_answered)
{
  /* A session idle past --idle-timeout is dropped by the next sweep, or by the first request that
     names it. A doorbell request the loop takes before that sweep drops the session, and with it
     the segment the reply was to be written into: it must not be answered there (the server
     crashed writing into the unmapped doorbell); its ring gets NO_SUCH_HANDLE. Tried a few times
     since a sweep may come first (every idle / 4 = 125 ms here). */
  s_start_spin (0.5, 1000);
  ra_client_t *c = s_client_spin (ra_server_endpoint (S, 0), true, 1000), *other = s_client (S_ipc, false);
  for (int attempt = 0; attempt < 4; attempt++) {
    ra_client_env_t env;
    ra_error_t err;
    ra_step_result_t r;
    cr_assert_eq (ra_client_make (c, ENV, 2, NULL, &env, &err), RA_OK, "%s", err.message);
    void *area = ra_shm_map_spin (env.shm);
    cr_assert (area);
    cr_assert_eq (ra_client_reset (c, &env, NULL, NULL, &r, &err), RA_OK, "%s", err.message);
    s_sleep_us (520000);   /* the session is now past its idle timeout */
    ra_msg_out_t m;
    ra_msg_out_init (&m);
    ra_msg_out_request (&m, 4242, "reset", 2);
    ra_msg_out_str (&m, "handle");
    ra_msg_out_int (&m, env.handle);
    ra_msg_out_str (&m, "shm");
    ra_msg_out_uint (&m, 0);
    uint64_t seq = ra_spin_posted (area) + 1;
    ra_spin_post (area, m.head.data, (uint32_t) m.head.size, seq);
    ra_msg_out_fini (&m);
    cr_assert_eq (ra_client_ping (other, &err), RA_OK, "the server still serves: %s", err.message);
    cr_assert_eq (s_raw_ring (c, env.handle, seq, &err), RA_ERR_NO_SUCH_HANDLE, "%s", err.message);
    cr_assert_eq (ra_spin_reply (area, seq), 0u, "no reply in a dropped session's doorbell");
    ra_client_env_fini (&env);
  }
  ra_client_destroy (&other);
  ra_client_destroy (&c);
  teardown ();
}
