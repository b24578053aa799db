/*  tests/server/test_reliability.c - the recarena-server binary as strangers meet it: a real
    process on an ipc:// endpoint, raw DEALER clients, SIGTERM. Checks that a message over the
    whole-message cap is answered LIMIT (and logged) without losing the requests pipelined around
    it, that SIGTERM answers every request in flight before the process exits, and that the
    server's RSS returns near its start after a pipelined burst of big steps and a close, that
    building a big task world (make, set_task) leaves the server answering other clients, that
    --max-sessions-per-key limits each CURVE key of the binary, and that --max-queued-bytes caps
    the requests waiting for a busy session, per client key.
    Short forms run in CI; RA_RELIABILITY_LONG=1 (ctest label slow) runs the sizes.
    Figures go to stderr (criterion info lines) for the record.                                 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "helpers.h"
#include "protocol/client.h"

#ifndef RA_SERVER_BIN
#error "RA_SERVER_BIN must name the recarena-server binary"
#endif

#define ENV "ECommerce-v1"

static pid_t P;
static char P_ep[160], P_log[160];
static void *Z;
static void *D, *D2;   /* the test's dealers, closed by s_stop even when an assertion ends a test */
static char E[512];    /* the message of the last error reply s_recv read */

static bool s_long (void)
{
  const char *v = getenv ("RA_RELIABILITY_LONG");
  return v && v[0] == '1';
}

/* Starts recarena-server with extra flags (NULL-terminated), stderr into P_log. */
static void s_start (const char *const *flags)
{
  snprintf (P_ep, sizeof P_ep, "ipc:///tmp/recarena-rel-%d.sock", (int) getpid ());
  snprintf (P_log, sizeof P_log, "/tmp/recarena-rel-%d.log", (int) getpid ());
  /* RA_TEST_SERVER_BIN runs the suite against another build (e.g. an older one, for figures). */
  const char *bin = getenv ("RA_TEST_SERVER_BIN") ? getenv ("RA_TEST_SERVER_BIN") : RA_SERVER_BIN;
  const char *argv[32] = { bin, "--bind", P_ep, "--workers", "2" };
  int n = 5;
  for (int i = 0; flags && flags[i] && n < 30; i++)
    argv[n++] = flags[i];
  argv[n] = NULL;
  P = fork ();
  cr_assert_geq (P, 0);
  if (P == 0) {
    if (!freopen (P_log, "w", stderr) || !freopen ("/dev/null", "w", stdout))
      _exit (127);
    execv (bin, (char *const *) argv);
    _exit (127);
  }
  Z = zmq_ctx_new ();
}

static void s_stop (void)
{
  if (P > 0) {
    kill (P, SIGKILL);
    waitpid (P, NULL, 0);
    P = 0;
  }
  if (D)
    zmq_close (D);
  if (D2)
    zmq_close (D2);
  D = D2 = NULL;
  if (Z)
    zmq_ctx_term (Z);
  Z = NULL;
  unlink (P_ep + strlen ("ipc://"));
  unlink (P_log);
}

TestSuite (reliability, .fini = s_stop, .timeout = 120);

/* Ends the server with SIGTERM and checks it exits 0 (under sanitizers: no leak, no error). */
static void s_stop_clean (void)
{
  kill (P, SIGTERM);
  int status;
  cr_assert_eq (waitpid (P, &status, 0), P);
  P = 0;
  cr_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0, "the server did not exit cleanly (%d)",
             status);
}

static void *s_dealer (int timeout_ms)
{
  void *d = zmq_socket (Z, ZMQ_DEALER);
  int zero = 0;
  zmq_setsockopt (d, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt (d, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
  cr_assert_eq (zmq_connect (d, P_ep), 0);
  D = d;
  return d;
}

static void s_send (void *d, const ra_msg_out_t *m)
{
  int n = m->nframes;
  cr_assert_geq (zmq_send (d, m->head.data, m->head.size, n ? ZMQ_SNDMORE : 0), 0);
  for (int i = 0; i < n; i++)
    cr_assert_geq (zmq_send (d, m->frames[i].data, m->frames[i].nbytes, i + 1 < n ? ZMQ_SNDMORE : 0), 0);
}

/* Receives one reply: RA_OK or its error code (RA_ERR_TIMEOUT if none came); *id its id. */
static ra_err_t s_recv (void *d, uint64_t *id, int64_t *handle)
{
  zmq_msg_t parts[RA_MSG_MAX_FRAMES + 1];
  int np = 0;
  for (bool more = true; more;) {
    zmq_msg_t tmp, *m = np < RA_MSG_MAX_FRAMES + 1 ? &parts[np] : &tmp;
    zmq_msg_init (m);
    if (zmq_msg_recv (m, d, 0) < 0) {
      zmq_msg_close (m);
      for (int i = 0; i < np; i++)
        zmq_msg_close (&parts[i]);
      return RA_ERR_TIMEOUT;
    }
    more = zmq_msg_more (m);
    if (m == &tmp)
      zmq_msg_close (m);
    else
      np++;
  }
  ra_msg_in_t in;
  ra_msg_in_init (&in);
  ra_error_t err;
  cr_assert_eq (ra_msg_in_decode (&in, zmq_msg_data (&parts[0]), zmq_msg_size (&parts[0]), 0, NULL,
                                  NULL, false, &err), RA_OK, "%s", err.message);
  ra_err_t code = RA_OK;
  if (id)
    *id = in.id;
  if (!in.ok) {
    const char *s;
    int len;
    cr_assert_eq (ra_get_str (ra_map_get (in.root, "error"), "code", &s, &len, NULL), RA_OK);
    cr_assert (ra_err_from_code (s, len, &code));
    cr_assert_eq (ra_get_str (ra_map_get (in.root, "error"), "message", &s, &len, NULL), RA_OK);
    snprintf (E, sizeof E, "%.*s", len, s);
  } else if (handle) {
    ra_opt_int (in.root, "handle", handle, NULL);
  }
  ra_msg_in_fini (&in);
  for (int i = 0; i < np; i++)
    zmq_msg_close (&parts[i]);
  return code;
}

/* Pings until the server answers (it is starting up). */
static void s_wait_ready (void *d)
{
  ra_msg_out_t m;
  ra_msg_out_init (&m);
  for (int i = 0; i < 100; i++) {
    ra_msg_out_clear (&m);
    ra_msg_out_request (&m, 999999, "ping", 0);
    s_send (d, &m);
    uint64_t id;
    if (s_recv (d, &id, NULL) == RA_OK && id == 999999)
      break;
    cr_assert_lt (i, 99, "the server did not start");
  }
  ra_msg_out_fini (&m);
}

static int64_t s_make (void *d, int n)
{
  ra_msg_out_t m;
  ra_msg_out_init (&m);
  ra_msg_out_request (&m, 1, "make", 3);
  ra_msg_out_str (&m, "env");
  ra_msg_out_str (&m, ENV);
  ra_msg_out_str (&m, "num_envs");
  ra_msg_out_int (&m, n);
  ra_msg_out_str (&m, "seed");
  ra_msg_out_int (&m, 1);
  s_send (d, &m);
  int64_t h = -1;
  cr_assert_eq (s_recv (d, NULL, &h), RA_OK);
  ra_msg_out_clear (&m);
  ra_msg_out_request (&m, 2, "reset", 1);
  ra_msg_out_str (&m, "handle");
  ra_msg_out_int (&m, h);
  s_send (d, &m);
  cr_assert_eq (s_recv (d, NULL, NULL), RA_OK);
  ra_msg_out_fini (&m);
  return h;
}

/* A step request with a valid slate for every env (candidates 0, 1, 2). */
static void s_send_step (void *d, uint64_t id, int64_t h, int n, int32_t *a)
{
  for (int i = 0; i < n; i++)
    for (int j = 0; j < 3; j++)
      a[i * 3 + j] = j;
  ra_msg_out_t m;
  ra_msg_out_init (&m);
  ra_msg_out_request (&m, id, "step", 2);
  ra_msg_out_str (&m, "handle");
  ra_msg_out_int (&m, h);
  ra_msg_out_str (&m, "action");
  int64_t shape[2] = { n, 3 };
  ra_msg_out_tensor (&m, RA_DTYPE_I32, 2, shape, a);
  s_send (d, &m);
  ra_msg_out_fini (&m);
}

/* VmRSS or VmHWM of the server process, in MiB. */
static double s_rss_mib (const char *field)
{
  char path[64], line[256];
  snprintf (path, sizeof path, "/proc/%d/status", (int) P);
  FILE *f = fopen (path, "r");
  cr_assert (f);
  double kib = -1;
  size_t flen = strlen (field);
  while (fgets (line, sizeof line, f))
    if (strncmp (line, field, flen) == 0 && line[flen] == ':')
      kib = atof (line + flen + 1);
  fclose (f);
  return kib / 1024.0;
}

static bool s_log_has (const char *text)
{
  FILE *f = fopen (P_log, "r");
  if (!f)
    return false;
  char line[1024];
  bool found = false;
  while (!found && fgets (line, sizeof line, f))
    found = strstr (line, text) != NULL;
  fclose (f);
  return found;
}

Test (reliability, a_message_over_the_whole_message_cap_is_answered_and_logged_and_loses_nothing)
{
  const char *flags[] = { "--max-message-bytes", "1048576", NULL };
  s_start (flags);
  void *d = s_dealer (5000);
  s_wait_ready (d);
  /* ping 1; ping 2 carrying 3 frames of 700 KiB (each under the 1 MiB cap, 2.1 MiB together);
     ping 3: all pipelined. */
  static char blob[700 << 10];
  ra_msg_out_t m;
  ra_msg_out_init (&m);
  for (uint64_t id = 1; id <= 3; id++) {
    ra_msg_out_clear (&m);
    ra_msg_out_request (&m, id, "ping", id == 2 ? 3 : 0);
    if (id == 2)
      for (int k = 0; k < 3; k++) {
        char key[8];
        snprintf (key, sizeof key, "x%d", k);
        ra_msg_out_str (&m, key);
        int64_t shape[1] = { (int64_t) sizeof blob };
        ra_msg_out_tensor (&m, RA_DTYPE_U8, 1, shape, blob);
      }
    s_send (d, &m);
  }
  ra_msg_out_fini (&m);
  uint64_t id;
  cr_assert_eq (s_recv (d, &id, NULL), RA_OK);
  cr_assert_eq (id, 1);
  cr_assert_eq (s_recv (d, &id, NULL), RA_ERR_LIMIT);
  cr_assert_eq (id, 2, "the LIMIT reply carries the request's id");
  cr_assert_eq (s_recv (d, &id, NULL), RA_OK, "the request after the oversized one was lost");
  cr_assert_eq (id, 3);
  cr_assert (s_log_has ("refused a message of 4 frames"), "no log line for the refusal");
  s_stop_clean ();
}

Test (reliability, sigterm_answers_every_request_in_flight_before_exiting)
{
  const char *flags[] = { "--async-min-envs", "1", NULL };
  s_start (flags);
  void *d = s_dealer (10000);
  s_wait_ready (d);
  int n = s_long () ? 16384 : 8192, reqs = 20;
  int64_t h = s_make (d, n);
  int32_t *a = malloc ((size_t) n * 3 * sizeof *a);
  for (int r = 0; r < reqs; r++)
    s_send_step (d, 100 + (uint64_t) r, h, n, a);
  struct timespec ts = { 0, 20 * 1000000 };
  nanosleep (&ts, NULL);   /* let them reach the server, then stop it mid-way */
  kill (P, SIGTERM);
  int answered = 0;
  uint64_t id;
  while (s_recv (d, &id, NULL) == RA_OK) {
    cr_assert_eq (id, 100 + (uint64_t) answered, "replies come in request order");
    if (++answered == reqs)
      break;
  }
  int status;
  cr_assert_eq (waitpid (P, &status, 0), P);
  P = 0;
  cr_log_info ("SIGTERM drain: %d of %d in-flight steps (%d envs each) answered", answered, reqs, n);
  cr_assert_eq (answered, reqs, "%d of %d in-flight requests got no reply", reqs - answered, reqs);
  cr_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0, "the server exits cleanly");
  free (a);
}

Test (reliability, rss_returns_near_its_start_after_a_pipelined_burst_and_close)
{
  s_start (NULL);
  void *d = s_dealer (20000);
  s_wait_ready (d);
  int n = s_long () ? 4096 : 2048, steps = s_long () ? 200 : 40;
  double r0 = s_rss_mib ("VmRSS");
  int64_t h = s_make (d, n);
  int32_t *a = malloc ((size_t) n * 3 * sizeof *a);
  for (int r = 0; r < steps; r++)
    s_send_step (d, 100 + (uint64_t) r, h, n, a);
  for (int r = 0; r < steps; r++)
    cr_assert_eq (s_recv (d, NULL, NULL), RA_OK, "step %d", r);
  double peak = s_rss_mib ("VmHWM"), r1 = s_rss_mib ("VmRSS");
  ra_msg_out_t m;
  ra_msg_out_init (&m);
  ra_msg_out_request (&m, 7, "close", 1);
  ra_msg_out_str (&m, "handle");
  ra_msg_out_int (&m, h);
  s_send (d, &m);
  cr_assert_eq (s_recv (d, NULL, NULL), RA_OK);
  ra_msg_out_fini (&m);
  struct timespec ts = { 0, 100 * 1000000 };
  nanosleep (&ts, NULL);
  double r2 = s_rss_mib ("VmRSS");
  cr_log_info ("RSS over %d pipelined %d-env steps: start %.1f MiB, peak %.1f, after the burst "
               "%.1f, after close %.1f", steps, n, r0, peak, r1, r2);
  cr_assert_gt (peak - r0, 8.0, "the burst did not hold many replies at once (peak %.1f)", peak);
  /* Near its start: what a closed session leaves is allocator slack, not replies. */
  cr_assert_lt (r2 - r0, s_long () ? 32.0 : 16.0, "RSS stayed %.1f MiB above its start after close", r2 - r0);
  free (a);
  s_stop_clean ();
}

static double s_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

/* While a sends req (a make or set_task that builds a big world), b pings: the ping must be
   answered while a's reply is still pending. Returns b's ping round trip and a's wait, in ms. */
static void s_build_while_pinging (void *a, void *b, const ra_msg_out_t *req, const char *what,
                                   int64_t *handle)
{
  ra_msg_out_t ping;
  ra_msg_out_init (&ping);
  ra_msg_out_request (&ping, 77, "ping", 0);
  double t0 = s_now ();
  s_send (a, req);
  struct timespec ts = { 0, 20 * 1000000 };
  nanosleep (&ts, NULL);   /* let the build start */
  double t1 = s_now ();
  s_send (b, &ping);
  cr_assert_eq (s_recv (b, NULL, NULL), RA_OK);
  double ping_ms = (s_now () - t1) * 1e3;
  zmq_pollitem_t item = { a, 0, ZMQ_POLLIN, 0 };
  bool pending = zmq_poll (&item, 1, 0) == 0;
  cr_assert_eq (s_recv (a, NULL, handle), RA_OK, "%s failed", what);
  double build_ms = (s_now () - t0) * 1e3;
  cr_log_info ("%s of a big world took %.0f ms; a ping meanwhile took %.1f ms", what, build_ms, ping_ms);
  /* A ratio measured in the same run: a stalled loop answers the ping only when the build is
     done (ratio near 1); a free one at once (near 0). */
  cr_assert (pending && ping_ms * 4 < build_ms,
             "the build stalled the loop: the ping took %.0f ms of the %s's %.0f ms", ping_ms, what,
             build_ms);
  ra_msg_out_fini (&ping);
}

/* Writes into m (cleared first) request id: make of one ENV env with an items x dim world. */
static void s_msg_make_world (ra_msg_out_t *m, uint64_t id, int64_t items, int64_t dim)
{
  ra_msg_out_clear (m);
  ra_msg_out_request (m, id, "make", 3);
  ra_msg_out_str (m, "env");
  ra_msg_out_str (m, ENV);
  ra_msg_out_str (m, "num_envs");
  ra_msg_out_int (m, 1);
  ra_msg_out_str (m, "config");
  ra_msg_out_map (m, 2);
  ra_msg_out_str (m, "num_items");
  ra_msg_out_int (m, items);
  ra_msg_out_str (m, "embedding_dim");
  ra_msg_out_int (m, dim);
}

/* Writes into m (cleared first) request id: set_task of handle h to test:3 (builds a world). */
static void s_msg_set_task (ra_msg_out_t *m, uint64_t id, int64_t h)
{
  ra_msg_out_clear (m);
  ra_msg_out_request (m, id, "set_task", 2);
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, h);
  ra_msg_out_str (m, "task");
  ra_msg_out_map (m, 2);
  ra_msg_out_str (m, "split");
  ra_msg_out_str (m, "test");
  ra_msg_out_str (m, "id");
  ra_msg_out_int (m, 3);
}

Test (reliability, building_a_big_world_does_not_stall_other_clients)
{
  s_start (NULL);
  void *a = s_dealer (30000);
  s_wait_ready (a);
  void *b = zmq_socket (Z, ZMQ_DEALER);
  int zero = 0, timeout = 30000;
  zmq_setsockopt (b, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt (b, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
  cr_assert_eq (zmq_connect (b, P_ep), 0);
  D2 = b;
  s_wait_ready (b);
  ra_msg_out_t m;
  ra_msg_out_init (&m);
  s_msg_make_world (&m, 1, s_long () ? 600000 : 300000, s_long () ? 200 : 64);
  int64_t h = -1;
  s_build_while_pinging (a, b, &m, "make", &h);
  s_msg_set_task (&m, 2, h);
  s_build_while_pinging (a, b, &m, "set_task", NULL);
  ra_msg_out_fini (&m);
  s_stop_clean ();
}

/* Makes a session of one env with a 300000 x 64 world (its set_task builds another, about 1 s). */
static int64_t s_make_world (void *d)
{
  ra_msg_out_t m;
  ra_msg_out_init (&m);
  s_msg_make_world (&m, 1, 300000, 64);
  s_send (d, &m);
  ra_msg_out_fini (&m);
  int64_t h = -1;
  cr_assert_eq (s_recv (d, NULL, &h), RA_OK, "%s", E);
  return h;
}

/* Pipelines on d: a set_task of h (id 2), which keeps the session busy while it builds a world;
   n renders of h (ids 100...) each carrying an unused 3 MiB tensor; a ping (id 9). */
static void s_send_busy_renders (void *d, int64_t h, int n)
{
  static char pad[3 << 20];
  ra_msg_out_t m;
  ra_msg_out_init (&m);
  s_msg_set_task (&m, 2, h);
  s_send (d, &m);
  for (int i = 0; i < n; i++) {
    ra_msg_out_clear (&m);
    ra_msg_out_request (&m, 100 + (uint64_t) i, "render", 3);
    ra_msg_out_str (&m, "handle");
    ra_msg_out_int (&m, h);
    ra_msg_out_str (&m, "index");
    ra_msg_out_int (&m, 0);
    ra_msg_out_str (&m, "pad");   /* an unknown key: ignored, its frame unused */
    int64_t shape[1] = { (int64_t) sizeof pad };
    ra_msg_out_tensor (&m, RA_DTYPE_U8, 1, shape, pad);
    s_send (d, &m);
  }
  ra_msg_out_clear (&m);
  ra_msg_out_request (&m, 9, "ping", 0);
  s_send (d, &m);
  ra_msg_out_fini (&m);
}

/* Reads the n + 2 replies to s_send_busy_renders: *served renders waited for the set_task and were
   answered after it; *refused were answered LIMIT, naming --max-queued-bytes, before it. The
   ping must come back while the set_task still runs, so the session was busy for every render
   (else the test could not tell). *rss: the server's VmRSS (MiB) when the ping came back. */
static void s_read_busy_renders (void *d, int n, int *served, int *refused, double *rss)
{
  bool built = false;
  *served = *refused = 0;
  for (int k = 0; k < n + 2; k++) {
    uint64_t id = 0;
    ra_err_t rc = s_recv (d, &id, NULL);
    cr_assert_neq (rc, RA_ERR_TIMEOUT, "only %d of %d replies came", k, n + 2);
    if (id == 2) {
      cr_assert_eq (rc, RA_OK, "set_task: %s", E);
      built = true;
    } else if (id == 9) {
      cr_assert_not (built, "the set_task was done before the renders were all in: too soon for "
                     "this test to tell");
      *rss = s_rss_mib ("VmRSS");
    } else if (rc == RA_ERR_LIMIT) {
      cr_assert (id >= 100 && id < 100 + (uint64_t) n, "unexpected reply %llu", (unsigned long long) id);
      cr_assert_not (built, "render %llu was refused only after the set_task", (unsigned long long) id);
      cr_assert (strstr (E, "--max-queued-bytes"), "%s", E);
      (*refused)++;
    } else {
      cr_assert_eq (rc, RA_OK, "render %llu: %s", (unsigned long long) id, E);
      cr_assert (built, "render %llu was answered while its session was busy", (unsigned long long) id);
      (*served)++;
    }
  }
}

Test (reliability, requests_waiting_for_a_busy_session_are_capped_in_bytes)
{
  /* While a set_task builds a big world on the workers, its session is busy and requests naming
     it wait in its queue, out of ZeroMQ's back-pressure. 24 renders each carrying an unused
     3 MiB tensor (72 MiB) are pipelined: at most --max-queued-bytes (16 MiB, so 5 renders) may
     wait, the rest are answered LIMIT at once (before the set_task's reply), and every request
     is answered. */
  const char *flags[] = { "--max-message-bytes", "4194304", "--max-queued-bytes", "16777216", NULL };
  s_start (flags);
  void *d = s_dealer (30000);
  s_wait_ready (d);
  int64_t h = s_make_world (d);
  double r0 = s_rss_mib ("VmRSS"), r1 = 0;
  const int n = 24;
  s_send_busy_renders (d, h, n);
  int served, refused;
  s_read_busy_renders (d, n, &served, &refused, &r1);
  cr_log_info ("waiting requests: %d of %d renders of 3 MiB waited, %d were refused; server RSS "
               "%.1f MiB before them, %.1f MiB with them waiting (the world is being built "
               "meanwhile)", served, n, refused, r0, r1);
  /* 5 x (3 MiB + header) fit 16 MiB, 6 do not: the queue is used up to the cap, no further. */
  cr_assert_eq (served, 5, "%d renders (%d MiB) waited for the busy session; the cap is 16 MiB",
                served, 3 * served);
  cr_assert_eq (refused, n - 5);
  s_stop_clean ();
}

/* Writes "public-key = pub" (and "secret-key = sec" when sec) to path. */
static void s_write_key (const char *path, const char *pub, const char *sec)
{
  FILE *f = fopen (path, "w");
  cr_assert (f, "cannot write %s", path);
  fprintf (f, "public-key = %s\n", pub);
  if (sec)
    fprintf (f, "secret-key = %s\n", sec);
  fclose (f);
}

/* A CURVE client of the server started by s_start with key pub/sec. */
static ra_client_t *s_curve_client (const char *srv_pub, const char *pub, const char *sec)
{
  ra_client_curve_t k = { .server_key = srv_pub, .public_key = pub, .secret_key = sec };
  ra_client_t *c = NULL;
  ra_error_t err;
  for (int i = 0; i < 100; i++) {   /* the server may still be starting */
    if (ra_client_new_curve (P_ep, 5000, &k, &c, &err) == RA_OK)
      return c;
    struct timespec ts = { 0, 50 * 1000000 };
    nanosleep (&ts, NULL);
  }
  cr_assert_fail ("cannot connect to the CURVE server: %s", err.message);
  return NULL;
}

/* A server key pair and two allowed client keys, A and B, written under a fresh directory. */
typedef struct {
  char dir[160], srv_key[200];
  char srv_pub[41], srv_sec[41], a_pub[41], a_sec[41], b_pub[41], b_sec[41];
} s_keys_t;

static void s_keys_make (s_keys_t *k)
{
  char path[200];
  snprintf (k->dir, sizeof k->dir, "/tmp/recarena-keys-%d", (int) getpid ());
  cr_assert_eq (mkdir (k->dir, 0700), 0, "cannot make %s", k->dir);
  cr_assert_eq (zmq_curve_keypair (k->srv_pub, k->srv_sec), 0);
  cr_assert_eq (zmq_curve_keypair (k->a_pub, k->a_sec), 0);
  cr_assert_eq (zmq_curve_keypair (k->b_pub, k->b_sec), 0);
  snprintf (k->srv_key, sizeof k->srv_key, "%s/server.key", k->dir);
  s_write_key (k->srv_key, k->srv_pub, k->srv_sec);
  snprintf (path, sizeof path, "%s/a.pub", k->dir);
  s_write_key (path, k->a_pub, NULL);
  snprintf (path, sizeof path, "%s/b.pub", k->dir);
  s_write_key (path, k->b_pub, NULL);
}

static void s_keys_remove (const s_keys_t *k)
{
  char path[200];
  unlink (k->srv_key);
  snprintf (path, sizeof path, "%s/a.pub", k->dir);
  unlink (path);
  snprintf (path, sizeof path, "%s/b.pub", k->dir);
  unlink (path);
  rmdir (k->dir);
}

Test (reliability, the_per_key_session_flag_limits_each_curve_key_of_the_binary)
{
  /* The flag as given to the binary, and the key CURVE authenticated as the one it counts. */
  s_keys_t k;
  s_keys_make (&k);
  const char *flags[] = { "--curve-secret", k.srv_key, "--allow-keys", k.dir, "--max-sessions-per-key",
                          "2", NULL };
  s_start (flags);
  ra_client_t *a = s_curve_client (k.srv_pub, k.a_pub, k.a_sec);
  ra_client_t *b = s_curve_client (k.srv_pub, k.b_pub, k.b_sec);
  ra_client_env_t env[3];
  ra_error_t err;
  for (int i = 0; i < 2; i++)
    cr_assert_eq (ra_client_make (a, ENV, 1, NULL, &env[i], &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_client_make (a, ENV, 1, NULL, &env[2], &err), RA_ERR_LIMIT,
                "a key made a third session past --max-sessions-per-key 2");
  cr_assert (strstr (err.message, "one key may have 2"), "%s", err.message);
  ra_client_env_t eb;
  cr_assert_eq (ra_client_make (b, ENV, 1, NULL, &eb, &err), RA_OK, "key B was refused: %s",
                err.message);
  ra_client_env_fini (&eb);
  for (int i = 0; i < 2; i++)
    ra_client_env_fini (&env[i]);
  ra_client_destroy (&a);
  ra_client_destroy (&b);
  s_stop_clean ();
  s_keys_remove (&k);
}

/* A raw DEALER of the server started by s_start, as CURVE client key pub/sec. */
static void *s_curve_dealer (const char *srv_pub, const char *pub, const char *sec, int timeout_ms)
{
  void *d = zmq_socket (Z, ZMQ_DEALER);
  int zero = 0;
  zmq_setsockopt (d, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt (d, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
  cr_assert_eq (zmq_setsockopt (d, ZMQ_CURVE_SERVERKEY, srv_pub, 41), 0);
  cr_assert_eq (zmq_setsockopt (d, ZMQ_CURVE_PUBLICKEY, pub, 41), 0);
  cr_assert_eq (zmq_setsockopt (d, ZMQ_CURVE_SECRETKEY, sec, 41), 0);
  cr_assert_eq (zmq_connect (d, P_ep), 0);
  return d;
}

Test (reliability, one_keys_waiting_requests_leave_anothers_room_to_wait)
{
  /* --max-queued-bytes is per client key: key A filling its share of waiting requests leaves
     key B's whole share free. Both keys' sessions build a world (busy) at the same time; A
     pipelines 24 renders of 3 MiB (5 may wait), then B 5 (all may wait). */
  s_keys_t k;
  s_keys_make (&k);
  const char *flags[] = { "--curve-secret", k.srv_key, "--allow-keys", k.dir, "--max-message-bytes",
                          "4194304", "--max-queued-bytes", "16777216", NULL };
  s_start (flags);
  void *a = D = s_curve_dealer (k.srv_pub, k.a_pub, k.a_sec, 30000);
  void *b = D2 = s_curve_dealer (k.srv_pub, k.b_pub, k.b_sec, 30000);
  s_wait_ready (a);
  s_wait_ready (b);
  int64_t ha = s_make_world (a), hb = s_make_world (b);
  s_send_busy_renders (a, ha, 24);
  s_send_busy_renders (b, hb, 5);
  int served, refused;
  double rss;
  s_read_busy_renders (a, 24, &served, &refused, &rss);
  cr_assert_eq (served, 5, "key A: %d renders waited, 5 fit its 16 MiB", served);
  s_read_busy_renders (b, 5, &served, &refused, &rss);
  cr_assert_eq (refused, 0, "key B was refused %d renders because key A's filled the cap", refused);
  cr_assert_eq (served, 5);
  s_stop_clean ();
  s_keys_remove (&k);
}

Test (reliability, a_client_that_does_not_read_its_replies_holds_back_its_session_not_memory)
{
  /* A client that pipelines steps and stops reading (its connection takes no more replies) left
     every reply with the server's ZeroMQ: 150 steps of 1024 envs held 285 MiB for a session
     admitted for 8 MiB, and it could go on to ZeroMQ's high-water mark (1000 replies per
     connection) with replies of any size. A session's unread replies may hold what it was
     admitted for and one reply more; its later requests wait until its client reads, and are
     all answered then. */
  s_start (NULL);
  void *d = zmq_socket (Z, ZMQ_DEALER);
  int zero = 0, one = 1, small = 4096, timeout_ms = 30000;
  zmq_setsockopt (d, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt (d, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
  zmq_setsockopt (d, ZMQ_RCVHWM, &one, sizeof one);   /* this client's side takes one reply */
  zmq_setsockopt (d, ZMQ_RCVBUF, &small, sizeof small);
  cr_assert_eq (zmq_connect (d, P_ep), 0);
  D = d;
  s_wait_ready (d);
  int n = 1024, steps = 150;   /* about 1.9 MB a reply; fewer than a session's 256 waiting requests */
  int64_t h = s_make (d, n);
  double r0 = s_rss_mib ("VmRSS");
  int32_t *a = malloc ((size_t) n * 3 * sizeof *a);
  for (int r = 0; r < steps; r++)
    s_send_step (d, 100 + (uint64_t) r, h, n, a);
  struct timespec ts = { 3, 0 };
  nanosleep (&ts, NULL);
  double r1 = s_rss_mib ("VmRSS");
  /* Meanwhile another client is served as usual. */
  void *d2 = s_dealer (5000);   /* s_dealer keeps it in D: both are closed by s_stop */
  D = d;
  D2 = d2;
  s_wait_ready (d2);
  for (int r = 0; r < steps; r++) {
    uint64_t id;
    cr_assert_eq (s_recv (d, &id, NULL), RA_OK, "step %d: %s", r, E);
    cr_assert_eq (id, 100 + (uint64_t) r, "replies come in request order");
  }
  cr_log_info ("%d pipelined steps of %d envs, none read for 3 s: RSS %.1f -> %.1f MiB; all answered "
               "once read", steps, n, r0, r1);
  cr_assert_lt (r1 - r0, 64.0, "unread replies held %.1f MiB", r1 - r0);
  free (a);
  s_stop_clean ();
}
