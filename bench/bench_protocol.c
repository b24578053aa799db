/*  bench/bench_protocol.c - what the protocol costs (DESIGN.md section 5). In one run, on one
    machine, against the same references:
      - ECommerce-v1 stepped in-process at batch 256, one thread (the reference);
      - the same through the server's handlers without ZeroMQ (codec + session cost);
      - over ZeroMQ tcp loopback with the C client against an in-process server thread, at
        batch 1, 64, 256, 1024;
      - a bare ZeroMQ DEALER/ROUTER request/reply round trip on the same transport.
    Every number is the median of several repeats. Budgets: batch 256 over tcp >= 300,000
    env-steps/s; one env's round trip <= 1.5x the bare round trip.
    Usage: bench_protocol [--seconds S (0.3)] [--repeats R (5)] [--workers W (server threads, 1)] */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "env/server/server.h"
#include "env/sims/registry.h"
#include "protocol/client.h"

#define ENV "ECommerce-v1"
#define N_ACTION_SETS 16
#define MAX_REPEATS 32

static double s_secs = 0.3;
static int s_repeats = 5;

static double s_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
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

static uint64_t s_rng = 0x9E3779B97F4A7C15ull;
static uint64_t s_next (void)
{
  s_rng ^= s_rng >> 12;
  s_rng ^= s_rng << 25;
  s_rng ^= s_rng >> 27;
  return s_rng * 0x2545F4914F6CDD1Dull;
}

/* N_ACTION_SETS sets of n valid slates (k distinct of K), drawn before timing. */
static int32_t *s_slates (int n, int K, int k)
{
  int32_t *a = malloc ((size_t) N_ACTION_SETS * n * k * sizeof *a);
  for (int s = 0; s < N_ACTION_SETS * n; s++)
    for (int j = 0; j < k; j++) {
      int32_t v;
      bool dup;
      do {
        v = (int32_t) (s_next () % (uint64_t) K);
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

static double s_inprocess (int n)
{
  const ra_sim_class_t *cls = ra_sims_find (ENV, (int) strlen (ENV));
  ra_sim_args_t args = { .num_envs = n, .seed = 1 };
  ra_sim_t *sim;
  ra_error_t err;
  if (!cls || cls->create (&args, &sim, &err) != RA_OK)
    return -1;
  const ra_sim_spec_t *sp = cls->spec (sim);
  ra_sim_buffers_t b;
  memset (&b, 0, sizeof b);
  for (int f = 0; f < sp->n_obs; f++)
    b.obs[f] = calloc ((size_t) n * s_numel (&sp->obs[f]), ra_dtype_size (sp->obs[f].dtype));
  for (int f = 0; f < sp->n_info; f++)
    b.info[f] = calloc ((size_t) n * s_numel (&sp->info[f]), ra_dtype_size (sp->info[f].dtype));
  b.reward = calloc ((size_t) n, sizeof *b.reward);
  b.terminated = calloc ((size_t) n, 1);
  int k = sp->slate_size;
  int32_t *acts = s_slates (n, sp->num_candidates, k);
  cls->reset (sim, 0, n, NULL, NULL, &b);
  double rates[MAX_REPEATS];
  for (int r = 0; r < s_repeats; r++) {
    long steps = 0;
    double t0 = s_now (), t;
    do {
      cls->step (sim, 0, n, acts + (size_t) (steps % N_ACTION_SETS) * n * k, &b);
      cls->reset (sim, 0, n, NULL, b.terminated, &b);   /* autoreset, as the server does */
      steps++;
    } while ((t = s_now ()) - t0 < s_secs);
    rates[r] = (double) steps * n / (t - t0);
  }
  for (int f = 0; f < sp->n_obs; f++)
    free (b.obs[f]);
  for (int f = 0; f < sp->n_info; f++)
    free (b.info[f]);
  free (b.reward);
  free (b.terminated);
  free (acts);
  cls->destroy (&sim);
  return s_median (rates, s_repeats);
}

/* ---- the server's handlers without ZeroMQ ------------------------------------------------ */

static double s_handlers (ra_server_t *srv, int n)
{
  ra_msg_out_t req, rep;
  ra_msg_in_t in;
  ra_msg_out_init (&req);
  ra_msg_out_init (&rep);
  ra_msg_in_init (&in);
  ra_error_t err;
  double result = -1;
  ra_msg_out_request (&req, 1, "make", 3);
  ra_msg_out_str (&req, "env");
  ra_msg_out_str (&req, ENV);
  ra_msg_out_str (&req, "num_envs");
  ra_msg_out_int (&req, n);
  ra_msg_out_str (&req, "seed");
  ra_msg_out_int (&req, 1);
  ra_server_handle_raw (srv, req.head.data, req.head.size, 0, NULL, NULL, &rep);
  int64_t h;
  if (ra_msg_in_decode (&in, rep.head.data, rep.head.size, 0, NULL, NULL, false, &err) != RA_OK || !in.ok
      || ra_get_int (in.root, "handle", &h, &err) != RA_OK)
    goto out;
  ra_msg_out_clear (&req);
  ra_msg_out_request (&req, 2, "reset", 1);
  ra_msg_out_str (&req, "handle");
  ra_msg_out_int (&req, h);
  ra_server_handle_raw (srv, req.head.data, req.head.size, 0, NULL, NULL, &rep);
  int32_t *acts = s_slates (n, 20, 3);
  double rates[MAX_REPEATS];
  for (int r = 0; r < s_repeats; r++) {
    long steps = 0;
    double t0 = s_now (), t;
    do {
      ra_msg_out_clear (&req);
      ra_msg_out_request (&req, 3, "step", 2);
      ra_msg_out_str (&req, "handle");
      ra_msg_out_int (&req, h);
      ra_msg_out_str (&req, "action");
      int64_t shape[2] = { n, 3 };
      ra_msg_out_tensor (&req, RA_DTYPE_I32, 2, shape, acts + (size_t) (steps % N_ACTION_SETS) * n * 3);
      const void *fr[1] = { req.frames[0].data };
      size_t sz[1] = { req.frames[0].nbytes };
      ra_server_handle_raw (srv, req.head.data, req.head.size, 1, fr, sz, &rep);
      steps++;
    } while ((t = s_now ()) - t0 < s_secs);
    rates[r] = (double) steps * n / (t - t0);
  }
  free (acts);
  result = s_median (rates, s_repeats);
out:
  ra_msg_in_fini (&in);
  ra_msg_out_fini (&req);
  ra_msg_out_fini (&rep);
  return result;
}

/* ---- over ZeroMQ with the C client ------------------------------------------------------- */

static ra_server_t *s_srv;
static void *s_serve (void *arg)
{
  (void) arg;
  ra_server_run (s_srv);
  return NULL;
}

static double s_over_zmq (const char *ep, int n)
{
  ra_client_t *c;
  ra_error_t err;
  if (ra_client_new (ep, 10000, &c, &err) != RA_OK) {
    fprintf (stderr, "client: %s\n", err.message);
    return -1;
  }
  ra_make_opts_t mo = { .has_seed = true, .seed = 1 };
  ra_client_env_t env;
  ra_step_result_t res;
  double result = -1;
  if (ra_client_make (c, ENV, n, &mo, &env, &err) != RA_OK
      || ra_client_reset (c, &env, NULL, NULL, &res, &err) != RA_OK) {
    fprintf (stderr, "make/reset: %s\n", err.message);
    ra_client_destroy (&c);
    return -1;
  }
  int K = (int) env.action_space->nvec[0], k = (int) env.action_space->shape[0];
  int32_t *acts = s_slates (n, K, k);
  double rates[MAX_REPEATS];
  for (int r = 0; r < s_repeats; r++) {
    long steps = 0;
    double t0 = s_now (), t;
    do {
      int64_t shape[2] = { n, k };
      ra_tensor_t a = ra_tensor_view (RA_DTYPE_I32, 2, shape, acts + (size_t) (steps % N_ACTION_SETS) * n * k);
      if (ra_client_step (c, &env, &a, &res, &err) != RA_OK) {
        fprintf (stderr, "step: %s\n", err.message);
        goto out;
      }
      steps++;
    } while ((t = s_now ()) - t0 < s_secs);
    rates[r] = (double) steps * n / (t - t0);
  }
  result = s_median (rates, s_repeats);
out:
  free (acts);
  ra_client_close (c, &env, &err);
  ra_client_env_fini (&env);
  ra_client_destroy (&c);
  return result;
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
      return NULL;   /* context terminated */
    }
    bool stop = zmq_msg_size (&body) == 4 && !memcmp (zmq_msg_data (&body), "stop", 4);
    zmq_msg_send (&id, router, ZMQ_SNDMORE);
    zmq_msg_send (&body, router, 0);
    if (stop)
      return NULL;
  }
}

/* Median seconds per round trip of a small request (about the size of a step header). */
static double s_bare_rtt (void)
{
  void *ctx = zmq_ctx_new ();
  void *router = zmq_socket (ctx, ZMQ_ROUTER), *dealer = zmq_socket (ctx, ZMQ_DEALER);
  int zero = 0;
  zmq_setsockopt (router, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt (dealer, ZMQ_LINGER, &zero, sizeof zero);
  char ep[256];
  size_t len = sizeof ep;
  if (zmq_bind (router, "tcp://127.0.0.1:*") != 0)
    return -1;
  zmq_getsockopt (router, ZMQ_LAST_ENDPOINT, ep, &len);
  zmq_connect (dealer, ep);
  pthread_t th;
  pthread_create (&th, NULL, s_echo, router);
  char payload[96], back[256];
  memset (payload, 'x', sizeof payload);
  double rtts[MAX_REPEATS];
  for (int r = 0; r < s_repeats; r++) {
    long n = 0;
    double t0 = s_now (), t;
    do {
      zmq_send (dealer, payload, sizeof payload, 0);
      zmq_recv (dealer, back, sizeof back, 0);
      n++;
    } while ((t = s_now ()) - t0 < s_secs);
    rtts[r] = (t - t0) / (double) n;
  }
  zmq_send (dealer, "stop", 4, 0);
  zmq_recv (dealer, back, sizeof back, 0);
  pthread_join (th, NULL);
  zmq_close (dealer);
  zmq_close (router);
  zmq_ctx_term (ctx);
  return s_median (rtts, s_repeats);
}

int main (int argc, char **argv)
{
  int workers = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp (argv[i], "--seconds") && i + 1 < argc)
      s_secs = atof (argv[++i]);
    else if (!strcmp (argv[i], "--repeats") && i + 1 < argc)
      s_repeats = atoi (argv[++i]);
    else if (!strcmp (argv[i], "--workers") && i + 1 < argc)
      workers = atoi (argv[++i]);
    else {
      fprintf (stderr, "usage: %s [--seconds S] [--repeats R] [--workers W]\n", argv[0]);
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
  ra_error_t err;
  if (ra_server_new (&o, &s_srv, &err) != RA_OK || ra_server_bind (s_srv, "tcp://127.0.0.1:*", &err) != RA_OK) {
    fprintf (stderr, "server: %s\n", err.message);
    return 1;
  }
  const char *ep = ra_server_endpoint (s_srv, 0);

  printf ("bench_protocol: %s, median of %d x %.2f s, server workers %d, %s\n", ENV, s_repeats, s_secs,
          workers, ep);
  double ref = s_inprocess (256);
  double hnd = s_handlers (s_srv, 256);
  double bare = s_bare_rtt ();
  pthread_t th;
  pthread_create (&th, NULL, s_serve, NULL);
  const int sizes[] = { 1, 64, 256, 1024 };
  double zmq[4];
  for (int i = 0; i < 4; i++)
    zmq[i] = s_over_zmq (ep, sizes[i]);
  ra_server_stop (s_srv);
  pthread_join (th, NULL);
  ra_server_destroy (&s_srv);

  printf ("\n%-44s %8s %16s %12s\n", "what", "batch", "env-steps/s", "round trip");
  printf ("%-44s %8d %16.0f %12s\n", "in-process sim (reference, 1 thread)", 256, ref, "-");
  printf ("%-44s %8d %16.0f %12s\n", "server handlers, no ZeroMQ", 256, hnd, "-");
  for (int i = 0; i < 4; i++)
    printf ("%-44s %8d %16.0f %10.1f us\n", "ZeroMQ tcp loopback, C client", sizes[i], zmq[i],
            1e6 * sizes[i] / zmq[i]);
  printf ("%-44s %8s %16s %10.1f us\n", "bare ZeroMQ DEALER/ROUTER round trip", "-", "-", 1e6 * bare);

  double r256 = zmq[2] / ref, rtt1 = (1.0 / zmq[0]) / bare;
  printf ("\nratio zmq batch 256 / in-process batch 256:  %.2f\n", r256);
  printf ("ratio one-env round trip / bare round trip:   %.2f\n", rtt1);
  printf ("budget batch 256 over tcp >= 300000 env-steps/s: %s (%.0f)\n", zmq[2] >= 300000 ? "ok" : "MISSED", zmq[2]);
  printf ("budget one-env round trip <= 1.5x bare:          %s (%.2fx)\n", rtt1 <= 1.5 ? "ok" : "MISSED", rtt1);
  return 0;
}
