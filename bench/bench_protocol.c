/*  bench/bench_protocol.c - what the protocol costs (budgets: docs/architecture.md section 11).
    In one run, on one machine, against the same references:
      - ECommerce-v1 stepped in-process at batch 256, one thread (the reference);
      - the same through the server's handlers without ZeroMQ (codec + session cost);
      - over ZeroMQ tcp loopback with the C client against an in-process server thread, at
        batch 1, 64, 256, 1024;
      - the C client over the shared-memory data plane (docs/protocol.md section "Shared
        memory") at batch 1 and 256, the other C client rows having it turned off;
      - the same with the doorbell (docs/local.md section 4): server and client spin up to
        --spin-us (default 1000) instead of sleeping, so a step skips ZeroMQ while both are busy;
      - a bare ZeroMQ DEALER/ROUTER request/reply round trip on the same transport, each side
        in its own context as client and server are (timed in slices alternating with the
        one-env rows, see s_rates_interleaved).
    Every measurement is repeated, and the repeats are interleaved (each round measures every row
    once), so a ratio is taken between numbers measured at the same time, which matters on a
    shared machine; the table shows medians of rates and medians of per-round ratios.
    Every row also shows the CPU time the process (client, server and ZeroMQ threads together)
    spent per step: the doorbell rows buy their speed with cores that spin instead of sleeping.
    Budgets: batch 256 over tcp >= 300,000 env-steps/s; one env's round trip over frames <= 1.5x
    the bare round trip in every round; batch 256 over shared memory >= 0.6x in-process, checked
    with the doorbell on (the row without it is shown too).
    Usage: bench_protocol [--seconds S (0.3)] [--repeats R (5)] [--workers W (server default)]
                          [--spin-us U (1000)]
    The budgets are meant for a quiet machine (note `uptime` with the table): on a loaded one the
    wake-ups ZeroMQ pays are hidden by everything else. To rerun:
      scripts/build.sh build -DRA_WITH_CUDA=OFF && build/bench/bench_protocol --repeats 7      */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "common/kv.h"
#include "common/rng.h"
#include "env/server/server.h"
#include "env/sims/registry.h"
#include "protocol/client.h"
#include "protocol/shm.h"
#include "protocol/spin.h"

#define ENV "ECommerce-v1"
#define N_ACTION_SETS 16
#define MAX_REPEATS 32

static double s_secs = 0.3;
static int s_repeats = 5;
static int s_spin_us = 1000;

static double s_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

/* CPU seconds of the whole process: client, server and ZeroMQ's threads. */
static double s_cpu (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

static int s_cmp (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static double s_median (double *v, int n)
{
  qsort (v, (size_t) n, sizeof *v, s_cmp);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}


/* N_ACTION_SETS sets of n valid slates (k distinct of K), drawn before timing. */
static int32_t *s_slates (int n, int K, int k)
{
  int32_t *a = malloc ((size_t) N_ACTION_SETS * n * k * sizeof *a);
  ra_rng_t rng;
  ra_rng_seed (&rng, 1, 0);
  for (int s = 0; s < N_ACTION_SETS * n; s++)
    for (int j = 0; j < k; j++) {
      int32_t v;
      bool dup;
      do {
        v = (int32_t) ra_rng_below (&rng, (uint32_t) K);
        dup = false;
        for (int q = 0; q < j; q++)
          dup |= a[s * k + q] == v;
      } while (dup);
      a[s * k + j] = v;
    }
  return a;
}

/* ---- reference: the sim in-process ------------------------------------------------------- */

static size_t s_numel (const ra_field_spec_t *f)
{
  size_t n = 1;
  for (int d = 0; d < f->ndim; d++)
    n *= (size_t) f->shape[d];
  return n;
}

typedef struct {
  const ra_sim_class_t *cls;
  ra_sim_t *sim;
  ra_sim_buffers_t b;
  int n, k;
  int32_t *acts;
  long t;
} inproc_t;

static bool s_inproc_open (inproc_t *x, int n)
{
  memset (x, 0, sizeof *x);
  x->cls = ra_sims_find (ENV, (int) strlen (ENV));
  ra_sim_args_t args = { .num_envs = n, .seed = 1 };
  ra_error_t err;
  if (!x->cls || x->cls->create (&args, &x->sim, &err) != RA_OK)
    return false;
  const ra_sim_spec_t *sp = x->cls->spec (x->sim);
  for (int f = 0; f < sp->n_obs; f++)
    x->b.obs[f] = calloc ((size_t) n * s_numel (&sp->obs[f]), ra_dtype_size (sp->obs[f].dtype));
  for (int f = 0; f < sp->n_info; f++)
    x->b.info[f] = calloc ((size_t) n * s_numel (&sp->info[f]), ra_dtype_size (sp->info[f].dtype));
  x->b.reward = calloc ((size_t) n, sizeof *x->b.reward);
  x->b.terminated = calloc ((size_t) n, 1);
  x->n = n;
  x->k = sp->slate_size;
  x->acts = s_slates (n, sp->num_candidates, x->k);
  x->cls->reset (x->sim, 0, n, NULL, NULL, &x->b);
  return true;
}

/* One batch step plus the resets autoreset would do. */
static bool s_inproc_step (void *ctx)
{
  inproc_t *x = ctx;
  x->cls->step (x->sim, 0, x->n, x->acts + (size_t) (x->t++ % N_ACTION_SETS) * x->n * x->k, &x->b);
  x->cls->reset (x->sim, 0, x->n, NULL, x->b.terminated, &x->b);
  return true;
}

static void s_inproc_close (inproc_t *x)
{
  const ra_sim_spec_t *sp = x->cls->spec (x->sim);
  for (int f = 0; f < sp->n_obs; f++)
    free (x->b.obs[f]);
  for (int f = 0; f < sp->n_info; f++)
    free (x->b.info[f]);
  free (x->b.reward);
  free (x->b.terminated);
  free (x->acts);
  x->cls->destroy (&x->sim);
}

/* ---- the server's handlers without ZeroMQ ------------------------------------------------ */

typedef struct {
  ra_server_t *srv;
  ra_msg_out_t req, rep;
  int64_t h;
  int n;
  int32_t *acts;
  long t;
} handlers_t;

static bool s_handlers_open (handlers_t *x, int n)
{
  memset (x, 0, sizeof *x);
  ra_server_opts_t o;
  ra_server_opts_default (&o);
  o.workers = 1;
  ra_error_t err;
  if (ra_server_new (&o, &x->srv, &err) != RA_OK)
    return false;
  ra_msg_out_init (&x->req);
  ra_msg_out_init (&x->rep);
  ra_msg_out_request (&x->req, 1, "make", 3);
  ra_msg_out_str (&x->req, "env");
  ra_msg_out_str (&x->req, ENV);
  ra_msg_out_str (&x->req, "num_envs");
  ra_msg_out_int (&x->req, n);
  ra_msg_out_str (&x->req, "seed");
  ra_msg_out_int (&x->req, 1);
  ra_server_handle_raw (x->srv, x->req.head.data, x->req.head.size, 0, NULL, NULL, &x->rep);
  ra_msg_in_t in;
  ra_msg_in_init (&in);
  bool ok = ra_msg_in_decode (&in, x->rep.head.data, x->rep.head.size, 0, NULL, NULL, false, &err) == RA_OK
            && in.ok && ra_get_int (in.root, "handle", &x->h, &err) == RA_OK;
  ra_msg_in_fini (&in);
  if (!ok)
    return false;
  ra_msg_out_clear (&x->req);
  ra_msg_out_request (&x->req, 2, "reset", 1);
  ra_msg_out_str (&x->req, "handle");
  ra_msg_out_int (&x->req, x->h);
  ra_server_handle_raw (x->srv, x->req.head.data, x->req.head.size, 0, NULL, NULL, &x->rep);
  x->n = n;
  x->acts = s_slates (n, 20, 3);
  return true;
}

static bool s_handlers_step (void *ctx)
{
  handlers_t *x = ctx;
  ra_msg_out_clear (&x->req);
  ra_msg_out_request (&x->req, 3, "step", 2);
  ra_msg_out_str (&x->req, "handle");
  ra_msg_out_int (&x->req, x->h);
  ra_msg_out_str (&x->req, "action");
  int64_t shape[2] = { x->n, 3 };
  ra_msg_out_tensor (&x->req, RA_DTYPE_I32, 2, shape, x->acts + (size_t) (x->t++ % N_ACTION_SETS) * x->n * 3);
  const void *fr[1] = { x->req.frames[0].data };
  size_t sz[1] = { x->req.frames[0].nbytes };
  ra_server_handle_raw (x->srv, x->req.head.data, x->req.head.size, 1, fr, sz, &x->rep);
  return true;
}

static void s_handlers_close (handlers_t *x)
{
  free (x->acts);
  ra_msg_out_fini (&x->req);
  ra_msg_out_fini (&x->rep);
  ra_server_destroy (&x->srv);
}

/* ---- over ZeroMQ with the C client ------------------------------------------------------- */

static ra_server_t *s_srv;

typedef struct {
  ra_client_t *c;
  ra_client_env_t env;
  ra_step_result_t res;
  int n, k;
  int32_t *acts;
  long t;
} remote_t;

static bool s_remote_open (remote_t *x, const char *ep, int n, bool shm, int spin_us)
{
  memset (x, 0, sizeof *x);
  ra_error_t err;
  if (ra_client_new (ep, 10000, &x->c, &err) != RA_OK) {
    fprintf (stderr, "client: %s\n", err.message);
    return false;
  }
  ra_client_set_shm (x->c, shm);
  ra_client_set_spin (x->c, spin_us);
  if (shm && !ra_client_shm_available (x->c)) {
    fprintf (stderr, "client: the server does not offer shared memory on %s\n", ep);
    return false;
  }
  ra_make_opts_t mo = { .has_seed = true, .seed = 1 };
  if (ra_client_make (x->c, ENV, n, &mo, &x->env, &err) != RA_OK
      || ra_client_reset (x->c, &x->env, NULL, NULL, &x->res, &err) != RA_OK) {
    fprintf (stderr, "make/reset: %s\n", err.message);
    return false;
  }
  if (shm != (x->env.shm != NULL)) {
    fprintf (stderr, "make: shared memory %s\n", shm ? "not set up" : "set up unasked");
    return false;
  }
  if ((spin_us > 0) != (x->env.shm && ra_shm_map_spin (x->env.shm))) {
    fprintf (stderr, "make: doorbell %s\n", spin_us > 0 ? "not set up" : "set up unasked");
    return false;
  }
  x->n = n;
  x->k = (int) x->env.action_space->shape[0];
  x->acts = s_slates (n, (int) x->env.action_space->nvec[0], x->k);
  return true;
}

static bool s_remote_step (void *ctx)
{
  remote_t *x = ctx;
  int64_t shape[2] = { x->n, x->k };
  ra_tensor_t a = ra_tensor_view (RA_DTYPE_I32, 2, shape, x->acts + (size_t) (x->t++ % N_ACTION_SETS) * x->n * x->k);
  ra_error_t err;
  if (ra_client_step (x->c, &x->env, &a, &x->res, &err) != RA_OK) {
    fprintf (stderr, "step: %s\n", err.message);
    return false;
  }
  return true;
}

static void s_remote_close (remote_t *x)
{
  ra_error_t err;
  free (x->acts);
  if (x->c)
    ra_client_close (x->c, &x->env, &err);
  ra_client_env_fini (&x->env);
  ra_client_destroy (&x->c);
}

/* ---- bare ZeroMQ round trip -------------------------------------------------------------- */

static void *s_echo (void *router)
{
  for (;;) {
    zmq_msg_t id, body;
    zmq_msg_init (&id);
    zmq_msg_init (&body);
    if (zmq_msg_recv (&id, router, 0) < 0 || zmq_msg_recv (&body, router, 0) < 0) {
      zmq_msg_close (&id);
      zmq_msg_close (&body);
      return NULL;
    }
    bool stop = zmq_msg_size (&body) == 4 && !memcmp (zmq_msg_data (&body), "stop", 4);
    zmq_msg_send (&id, router, ZMQ_SNDMORE);
    zmq_msg_send (&body, router, 0);
    if (stop)
      return NULL;
  }
}

/* Each side has its own ZeroMQ context, as a client and a server in two processes have (and as
   recarena-server and ra_client_t have here): sharing one context would share one I/O thread and
   save two thread wake-ups per round trip that no real deployment saves. */
typedef struct {
  void *server_ctx, *client_ctx, *router, *dealer;
  pthread_t th;
} bare_t;

static bool s_bare_open (bare_t *x)
{
  x->server_ctx = zmq_ctx_new ();
  x->client_ctx = zmq_ctx_new ();
  x->router = zmq_socket (x->server_ctx, ZMQ_ROUTER);
  x->dealer = zmq_socket (x->client_ctx, ZMQ_DEALER);
  int zero = 0;
  zmq_setsockopt (x->router, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt (x->dealer, ZMQ_LINGER, &zero, sizeof zero);
  char ep[256];
  size_t len = sizeof ep;
  if (zmq_bind (x->router, "tcp://127.0.0.1:*") != 0)
    return false;
  zmq_getsockopt (x->router, ZMQ_LAST_ENDPOINT, ep, &len);
  zmq_connect (x->dealer, ep);
  pthread_create (&x->th, NULL, s_echo, x->router);
  return true;
}

/* A request about the size of a one-env step header, echoed back. */
static bool s_bare_step (void *ctx)
{
  bare_t *x = ctx;
  char payload[96], back[256];
  memset (payload, 'x', sizeof payload);
  zmq_send (x->dealer, payload, sizeof payload, 0);
  return zmq_recv (x->dealer, back, sizeof back, 0) >= 0;
}

static void s_bare_close (bare_t *x)
{
  char back[16];
  zmq_send (x->dealer, "stop", 4, 0);
  zmq_recv (x->dealer, back, sizeof back, 0);
  pthread_join (x->th, NULL);
  zmq_close (x->dealer);
  zmq_close (x->router);
  zmq_ctx_term (x->client_ctx);
  zmq_ctx_term (x->server_ctx);
}

/* ---- the table --------------------------------------------------------------------------- */

/* Calls per second of fn(ctx) over about s_secs; *cpu: process CPU seconds per call. */
static double s_rate (bool (*fn) (void *), void *ctx, double *cpu)
{
  long calls = 0;
  double t0 = s_now (), c0 = s_cpu (), t;
  do {
    if (!fn (ctx))
      return -1;
    calls++;
  } while ((t = s_now ()) - t0 < s_secs);
  *cpu = (s_cpu () - c0) / (double) calls;
  return (double) calls / (t - t0);
}

/* The one-env rows and the bare round trip, whose ratio is a budget: measured in alternating
   slices (bare, frames, shm, bare, ...), S_SLICES of each per round, so that all three see the
   same load on a shared machine rather than whatever it was during their own window. */
#define S_SLICES 6
#define S_ONE 3
static void s_rates_interleaved (bool (*fn[S_ONE]) (void *), void *ctx[S_ONE], double out[S_ONE],
                                 double cpu[S_ONE])
{
  long calls[S_ONE] = { 0 };
  double spent[S_ONE] = { 0 }, cspent[S_ONE] = { 0 };
  for (int sl = 0; sl < S_SLICES; sl++)
    for (int k = 0; k < S_ONE; k++) {
      double t0 = s_now (), c0 = s_cpu (), t;
      do {
        if (!fn[k] (ctx[k])) {
          for (int q = 0; q < S_ONE; q++)
            out[q] = -1;
          return;
        }
        calls[k]++;
      } while ((t = s_now ()) - t0 < s_secs / S_SLICES);
      spent[k] += t - t0;
      cspent[k] += s_cpu () - c0;
    }
  for (int k = 0; k < S_ONE; k++) {
    out[k] = (double) calls[k] / spent[k];
    cpu[k] = cspent[k] / (double) calls[k];
  }
}

enum { R_INPROC, R_HANDLERS, R_HANDLERS1, R_Z1, R_Z64, R_Z256, R_Z1024, R_SHM1, R_SHM256, R_SPIN1,
       R_SPIN256, R_BARE, R_COUNT };

int main (int argc, char **argv)
{
  int workers = 0;
  for (int i = 1; i < argc; i++) {
    long long x = 0;
    ra_error_t err = { .code = RA_OK };
    if (!strcmp (argv[i], "--seconds") && i + 1 < argc)
      ra_kv_parse_num ("--seconds", argv[++i], 1e-3, 60, &s_secs, &err);
    else if (!strcmp (argv[i], "--repeats") && i + 1 < argc) {
      if (ra_kv_parse_int ("--repeats", argv[++i], 1, MAX_REPEATS, &x, &err) == RA_OK)
        s_repeats = (int) x;
    } else if (!strcmp (argv[i], "--workers") && i + 1 < argc) {
      if (ra_kv_parse_int ("--workers", argv[++i], 0, 64, &x, &err) == RA_OK)
        workers = (int) x;
    } else if (!strcmp (argv[i], "--spin-us") && i + 1 < argc) {
      if (ra_kv_parse_int ("--spin-us", argv[++i], 1, RA_SPIN_MAX_US, &x, &err) == RA_OK)
        s_spin_us = (int) x;
    } else {
      fprintf (stderr, "usage: %s [--seconds S] [--repeats R] [--workers W] [--spin-us U]\n", argv[0]);
      return 2;
    }
    if (err.code != RA_OK) {
      fprintf (stderr, "%s\n", err.message);
      return 2;
    }
  }
  if (s_repeats < 1 || s_repeats > MAX_REPEATS || !(s_secs > 0)) {
    fprintf (stderr, "--repeats 1..%d, --seconds > 0\n", MAX_REPEATS);
    return 2;
  }
  ra_server_opts_t o;
  ra_server_opts_default (&o);
  o.workers = workers;
  o.spin_us = s_spin_us;   /* only sessions that ask for a doorbell are polled */
  ra_error_t err;
  if (ra_server_new (&o, &s_srv, &err) != RA_OK || ra_server_bind (s_srv, "tcp://127.0.0.1:*", &err) != RA_OK) {
    fprintf (stderr, "server: %s\n", err.message);
    return 1;
  }
  const char *ep = ra_server_endpoint (s_srv, 0);
  pthread_t th;
  pthread_create (&th, NULL, ra_server_thread, s_srv);

  static inproc_t inproc;
  static handlers_t handlers, handlers1;
  static remote_t remote[4], shm1, shm256, spin1, spin256;
  static bare_t bare;
  const int sizes[4] = { 1, 64, 256, 1024 };
  bool ok = s_inproc_open (&inproc, 256) && s_handlers_open (&handlers, 256) && s_handlers_open (&handlers1, 1)
            && s_bare_open (&bare);
  for (int i = 0; i < 4 && ok; i++)
    ok = s_remote_open (&remote[i], ep, sizes[i], false, 0);
  ok = ok && s_remote_open (&shm1, ep, 1, true, 0) && s_remote_open (&shm256, ep, 256, true, 0)
       && s_remote_open (&spin1, ep, 1, true, s_spin_us) && s_remote_open (&spin256, ep, 256, true, s_spin_us);
  if (!ok) {
    fprintf (stderr, "bench_protocol: set-up failed\n");
    return 1;
  }
  printf ("bench_protocol: %s, %d interleaved rounds x %.2f s per row, server workers %d "
          "(inline below %d envs), doorbell spin %d us, %s\n",
          ENV, s_repeats, s_secs, o.workers <= 0 ? -1 : o.workers, o.async_min_envs, s_spin_us, ep);
  double rate[R_COUNT][MAX_REPEATS], cpu[R_COUNT][MAX_REPEATS], ratio256[MAX_REPEATS], ratio1[MAX_REPEATS],
         ratio_shm[MAX_REPEATS], ratio_spin[MAX_REPEATS], ratio1_shm[MAX_REPEATS], ratio1_spin[MAX_REPEATS];
  for (int r = 0; r < s_repeats; r++) {
    rate[R_INPROC][r] = 256 * s_rate (s_inproc_step, &inproc, &cpu[R_INPROC][r]);
    rate[R_HANDLERS][r] = 256 * s_rate (s_handlers_step, &handlers, &cpu[R_HANDLERS][r]);
    rate[R_HANDLERS1][r] = s_rate (s_handlers_step, &handlers1, &cpu[R_HANDLERS1][r]);
    for (int i = 1; i < 4; i++)
      rate[R_Z1 + i][r] = sizes[i] * s_rate (s_remote_step, &remote[i], &cpu[R_Z1 + i][r]);
    bool (*fns[S_ONE]) (void *) = { s_bare_step, s_remote_step, s_remote_step };
    void *ctxs[S_ONE] = { &bare, &remote[0], &shm1 };
    double one[S_ONE], one_cpu[S_ONE];
    s_rates_interleaved (fns, ctxs, one, one_cpu);
    const int rows[S_ONE] = { R_BARE, R_Z1, R_SHM1 };
    for (int k = 0; k < S_ONE; k++) {
      rate[rows[k]][r] = one[k];
      cpu[rows[k]][r] = one_cpu[k];
    }
    /* The doorbell rows stay out of the interleaved slices: the spinning they cause (server and
       client awake for --spin-us after each step) would keep the cores out of their idle states
       for the slice after, and the bare round trip, timed right after, would pay fewer wake-ups
       than it does alone. */
    rate[R_SPIN1][r] = s_rate (s_remote_step, &spin1, &cpu[R_SPIN1][r]);
    rate[R_SHM256][r] = 256 * s_rate (s_remote_step, &shm256, &cpu[R_SHM256][r]);
    rate[R_SPIN256][r] = 256 * s_rate (s_remote_step, &spin256, &cpu[R_SPIN256][r]);
    ratio_shm[r] = rate[R_SHM256][r] / rate[R_INPROC][r];
    ratio_spin[r] = rate[R_SPIN256][r] / rate[R_INPROC][r];
    ratio1_spin[r] = rate[R_BARE][r] / rate[R_SPIN1][r];
    ratio256[r] = rate[R_Z256][r] / rate[R_INPROC][r];
    ratio1[r] = rate[R_BARE][r] / rate[R_Z1][r];   /* round-trip time ratio */
    ratio1_shm[r] = rate[R_BARE][r] / rate[R_SHM1][r];
  }
  int rtt_ok = 0;   /* the budget holds in every round, not just in the median */
  for (int r = 0; r < s_repeats; r++)
    rtt_ok += ratio1[r] <= 1.5;
  double med[R_COUNT], mcpu[R_COUNT];
  for (int k = 0; k < R_COUNT; k++) {
    med[k] = s_median (rate[k], s_repeats);
    mcpu[k] = s_median (cpu[k], s_repeats);
  }
  double r256 = s_median (ratio256, s_repeats), rtt1 = s_median (ratio1, s_repeats),
         rtt1_shm = s_median (ratio1_shm, s_repeats), rtt1_spin = s_median (ratio1_spin, s_repeats),
         rshm = s_median (ratio_shm, s_repeats), rspin = s_median (ratio_spin, s_repeats);

  /* CPU per call: a call is one step of the whole batch. */
  printf ("\n%-44s %8s %16s %12s %14s\n", "what", "batch", "env-steps/s", "round trip", "CPU per step");
  printf ("%-44s %8d %16.0f %12s %11.1f us\n", "in-process sim (reference, 1 thread)", 256, med[R_INPROC], "-",
          1e6 * mcpu[R_INPROC]);
  printf ("%-44s %8d %16.0f %12s %11.1f us\n", "server handlers, no ZeroMQ", 256, med[R_HANDLERS], "-",
          1e6 * mcpu[R_HANDLERS]);
  printf ("%-44s %8d %16.0f %10.1f us %11.1f us\n", "server handlers, no ZeroMQ (request cost)", 1,
          med[R_HANDLERS1], 1e6 / med[R_HANDLERS1], 1e6 * mcpu[R_HANDLERS1]);
  for (int i = 0; i < 4; i++)
    printf ("%-44s %8d %16.0f %10.1f us %11.1f us\n", "ZeroMQ tcp loopback, C client", sizes[i], med[R_Z1 + i],
            1e6 * sizes[i] / med[R_Z1 + i], 1e6 * mcpu[R_Z1 + i]);
  printf ("%-44s %8d %16.0f %10.1f us %11.1f us\n", "shared memory + ZeroMQ headers, C client", 1, med[R_SHM1],
          1e6 / med[R_SHM1], 1e6 * mcpu[R_SHM1]);
  printf ("%-44s %8d %16.0f %10.1f us %11.1f us\n", "shared memory + ZeroMQ headers, C client", 256,
          med[R_SHM256], 1e6 * 256 / med[R_SHM256], 1e6 * mcpu[R_SHM256]);
  printf ("%-44s %8d %16.0f %10.1f us %11.1f us\n", "shared memory + doorbell (spin), C client", 1,
          med[R_SPIN1], 1e6 / med[R_SPIN1], 1e6 * mcpu[R_SPIN1]);
  printf ("%-44s %8d %16.0f %10.1f us %11.1f us\n", "shared memory + doorbell (spin), C client", 256,
          med[R_SPIN256], 1e6 * 256 / med[R_SPIN256], 1e6 * mcpu[R_SPIN256]);
  printf ("%-44s %8s %16s %10.1f us %11.1f us\n", "bare ZeroMQ DEALER/ROUTER round trip", "-", "-",
          1e6 / med[R_BARE], 1e6 * mcpu[R_BARE]);
  printf ("\nratio zmq batch 256 / in-process batch 256 (median of rounds):  %.2f\n", r256);
  printf ("ratio shm batch 256 / in-process batch 256 (median of rounds):  %.2f (doorbell: %.2f)\n", rshm,
          rspin);
  printf ("ratio one-env round trip / bare round trip (median of rounds):   %.2f (shm: %.2f, doorbell: %.2f)\n",
          rtt1, rtt1_shm, rtt1_spin);
  printf ("budget batch 256 over tcp >= 300000 env-steps/s: %s (%.0f)\n", med[R_Z256] >= 300000 ? "ok" : "MISSED",
          med[R_Z256]);
  printf ("budget shm batch 256 >= 0.6x in-process (doorbell on): %s (%.2fx)\n", rspin >= 0.6 ? "ok" : "MISSED",
          rspin);
  printf ("budget one-env round trip <= 1.5x bare:          %s (%.2fx median, %d of %d rounds within)\n",
          rtt_ok == s_repeats ? "ok" : "MISSED", rtt1, rtt_ok, s_repeats);

  for (int i = 0; i < 4; i++)
    s_remote_close (&remote[i]);
  s_remote_close (&shm1);
  s_remote_close (&shm256);
  s_remote_close (&spin1);
  s_remote_close (&spin256);
  s_bare_close (&bare);
  s_handlers_close (&handlers);
  s_handlers_close (&handlers1);
  s_inproc_close (&inproc);
  ra_server_stop (s_srv);
  pthread_join (th, NULL);
  ra_server_destroy (&s_srv);
  return 0;
}
