/*  bench/bench_target.c - training throughput of the target policy (docs/agents.md, "Target
    policy", performance). One run prints three tables:
      1. recarena-target samples/s at 64 envs: the landed build against this build, run
         interleaved (A B A B ...), medians and their ratio;
      2. this build at P = 1 through the protocol: the split of a training step's time between
         env stepping (the same sim stepped directly, same N and steps), transport (the rest of
         the client's step call: encoding, ZeroMQ, decoding) and network compute (act, record,
         update);
      3. P = 64 replicas in one policy against 64 separate P = 1 policies on the same synthetic
         rollouts (act T steps + update), medians and ratio;
    and, when `perf` is installed, the profile share of the top five functions of both builds.

    usage: bench_target [--landed PATH] [--this PATH] [--updates U] [--repeats R]
    Owns everything it starts; single-threaded apart from the in-process server thread.        */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agents/policies/target.h"
#include "env/server/server.h"
#include "env/sims/registry.h"
#include "protocol/client.h"

static double s_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
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

/* Runs a recarena-target binary; returns the samples/s it printed, or -1. */
static double s_run_binary (const char *bin, int updates)
{
  char cmd[1024];
  snprintf (cmd, sizeof cmd, "%s --updates %d --eval-episodes 0 --progress 1000 2>/dev/null", bin, updates);
  FILE *f = popen (cmd, "r");
  if (!f)
    return -1;
  char line[512];
  double sps = -1;
  while (fgets (line, sizeof line, f)) {
    const char *p = strstr (line, "s (");
    if (strncmp (line, "trained", 7) == 0 && p)
      sps = atof (p + 3);
  }
  return pclose (f) == 0 ? sps : -1;
}

/* Top five functions of `perf report` for a short run of bin, printed as one table column set. */
static void s_profile (const char *label, const char *bin, int updates)
{
  char cmd[1536];
  snprintf (cmd, sizeof cmd,
            "perf record -q -o /tmp/bench_target.perf.%d %s --updates %d --eval-episodes 0 --progress 1000 "
            ">/dev/null 2>&1 && perf report -q -i /tmp/bench_target.perf.%d --no-children --sort symbol "
            "2>/dev/null | grep '%%' | head -5; rm -f /tmp/bench_target.perf.%d",
            (int) getpid (), bin, updates, (int) getpid (), (int) getpid ());
  FILE *f = popen (cmd, "r");
  if (!f)
    return;
  char line[512];
  printf ("  %s:\n", label);
  while (fgets (line, sizeof line, f)) {
    double share;
    char sym[256];
    if (sscanf (line, " %lf%% [%*[^]]] %255s", &share, sym) == 2)
      printf ("    %6.2f%%  %s\n", share, sym);
  }
  pclose (f);
}

/* ------------------------------------------------------------------ protocol split, P = 1 */

static void *s_serve (void *arg)
{
  ra_server_run (arg);
  return NULL;
}

typedef struct {
  double compute, client_step, samples;
} split_t;

static int s_protocol_split (int N, int updates, split_t *out)
{
  ra_server_opts_t so;
  ra_server_opts_default (&so);
  so.workers = 1;
  ra_server_t *srv = NULL;
  ra_client_t *c = NULL;
  ra_error_t err;
  pthread_t th;
  if (ra_server_new (&so, &srv, &err) != RA_OK || ra_server_bind (srv, "tcp://127.0.0.1:*", &err) != RA_OK
      || pthread_create (&th, NULL, s_serve, srv) != 0) {
    fprintf (stderr, "bench_target: server: %s\n", err.message);
    return -1;
  }
  ra_nn_backend_t *be = NULL;
  ra_client_env_t env;
  ra_target_t *t = NULL;
  ra_make_opts_t mo = { .has_seed = true, .seed = 1, .autoreset = "same_step" };
  ra_target_cfg_t cfg;
  ra_target_cfg_default (&cfg);
  int rc = -1;
  if (ra_client_new (ra_server_endpoint (srv, 0), 0, &c, &err) != RA_OK
      || ra_client_make (c, "ECommerce-v1", N, &mo, &env, &err) != RA_OK
      || ra_nn_backend_open ("cpu", NULL, &be, &err) != RA_OK || ra_target_cfg_from_env (&cfg, &env, &err) != RA_OK
      || ra_target_new (be, &cfg, &t, &err) != RA_OK) {
    fprintf (stderr, "bench_target: %s\n", err.message);
    goto done;
  }
  size_t scratch_n = (size_t) N * 4096;
  float *scratch = malloc (scratch_n * sizeof (float)), *rew = malloc ((size_t) N * sizeof (float));
  float *cu = malloc ((size_t) N * cfg.user_dim * sizeof (float));
  float *cc = malloc ((size_t) N * cfg.num_candidates * cfg.cand_dim * sizeof (float));
  int32_t *sl = malloc ((size_t) N * cfg.slate_size * sizeof (int32_t));
  uint8_t *done = malloc ((size_t) N);
  ra_step_result_t r;
  ra_obs_batch_t obs;
  *out = (split_t) { 0 };
  if (ra_client_reset (c, &env, NULL, NULL, &r, &err) != RA_OK
      || ra_obs_batch_from_fields (&r.obs, cfg.slate_size, scratch, scratch_n, &obs, &err) != RA_OK)
    goto fail;
  ra_obs_batch_t cur = obs;
  cur.user = cu;
  cur.candidates = cc;
  memcpy (cu, obs.user, (size_t) N * cfg.user_dim * sizeof (float));
  memcpy (cc, obs.candidates, (size_t) N * cfg.num_candidates * cfg.cand_dim * sizeof (float));
  int64_t shape[2] = { N, cfg.slate_size };
  ra_tensor_t act = ra_tensor_view (RA_DTYPE_I32, 2, shape, sl);
  for (int u = 0; u < updates; u++) {
    for (int s = 0; s < cfg.rollout; s++) {
      double t0 = s_now ();
      ra_target_act (t, &cur, false, sl);
      double t1 = s_now ();
      if (ra_client_step (c, &env, &act, &r, &err) != RA_OK
          || ra_obs_batch_from_fields (&r.obs, cfg.slate_size, scratch, scratch_n, &obs, &err) != RA_OK)
        goto fail;
      double t2 = s_now ();
      memcpy (rew, r.reward.data, (size_t) N * sizeof (float));
      for (int i = 0; i < N; i++)
        done[i] = ra_tensor_get_int (&r.terminated, i) || ra_tensor_get_int (&r.truncated, i);
      ra_target_record (t, &cur, sl, rew, done);
      memcpy (cu, obs.user, (size_t) N * cfg.user_dim * sizeof (float));
      memcpy (cc, obs.candidates, (size_t) N * cfg.num_candidates * cfg.cand_dim * sizeof (float));
      double t3 = s_now ();
      out->compute += (t1 - t0) + (t3 - t2);
      out->client_step += t2 - t1;
      out->samples += N;
    }
    double t0 = s_now ();
    if (ra_target_update (t, &cur, NULL, &err) != RA_OK)
      goto fail;
    out->compute += s_now () - t0;
  }
  rc = 0;
fail:
  if (rc)
    fprintf (stderr, "bench_target: %s\n", err.message);
  free (scratch), free (rew), free (cu), free (cc), free (sl), free (done);
  ra_client_close (c, &env, &err);
  ra_client_env_fini (&env);
done:
  ra_target_destroy (&t);
  ra_nn_backend_destroy (&be);
  ra_client_destroy (&c);
  ra_server_stop (srv);
  pthread_join (th, NULL);
  ra_server_destroy (&srv);
  return rc;
}

/* Seconds per sample of stepping ECommerce-v1 directly (no protocol) at N envs with the slates
   of a fixed pattern, over `steps` batch steps. */
static double s_env_direct (int N, int steps)
{
  const ra_sim_class_t *cls = ra_sims_find ("ECommerce-v1", -1);
  ra_sim_args_t args = { .num_envs = N, .seed = 1 };
  ra_sim_t *sim = NULL;
  ra_error_t err;
  if (!cls || cls->create (&args, &sim, &err) != RA_OK)
    return -1;
  const ra_sim_spec_t *sp = cls->spec (sim);
  ra_sim_buffers_t buf;
  memset (&buf, 0, sizeof buf);
  for (int f = 0; f < sp->n_obs; f++) {
    size_t n = 8;
    for (int i = 0; i < sp->obs[f].ndim; i++)
      n *= (size_t) sp->obs[f].shape[i];
    buf.obs[f] = malloc ((size_t) N * n);
  }
  for (int f = 0; f < sp->n_info; f++) {
    size_t n = 8;
    for (int i = 0; i < sp->info[f].ndim; i++)
      n *= (size_t) sp->info[f].shape[i];
    buf.info[f] = malloc ((size_t) N * n);
  }
  buf.reward = malloc ((size_t) N * sizeof (float));
  buf.terminated = calloc ((size_t) N, 1);
  int k = sp->slate_size;
  int32_t *slates = malloc ((size_t) N * k * sizeof (int32_t));
  cls->reset (sim, 0, N, NULL, NULL, &buf);
  double t0 = s_now ();
  for (int s = 0; s < steps; s++) {
    for (int i = 0; i < N * k; i++)
      slates[i] = (int32_t) ((i % k) + k * ((s + i / k) % (sp->num_candidates / k)));
    cls->step (sim, 0, N, slates, &buf);
    cls->reset (sim, 0, N, NULL, buf.terminated, &buf);
  }
  double el = s_now () - t0;
  for (int f = 0; f < sp->n_obs; f++)
    free (buf.obs[f]);
  for (int f = 0; f < sp->n_info; f++)
    free (buf.info[f]);
  free (buf.reward), free (buf.terminated), free (slates);
  cls->destroy (&sim);
  return el / ((double) N * steps);
}

/* --------------------------------------------------------------- P = 64 batched vs separate */

enum { PN = 4, PK = 20, Pk = 3, PU = 20, PF = 20, PT = 16, PP = 64 };

static ra_target_t *s_policy (ra_nn_backend_t *be, int P)
{
  ra_target_cfg_t c;
  ra_target_cfg_default (&c);
  c.num_envs = PN, c.num_candidates = PK, c.slate_size = Pk, c.user_dim = PU, c.cand_dim = PF;
  c.rollout = PT, c.population = P;
  ra_target_t *t = NULL;
  ra_error_t err;
  if (ra_target_new (be, &c, &t, &err) != RA_OK)
    fprintf (stderr, "bench_target: %s\n", err.message);
  return t;
}

/* One rollout of T steps + update: the population on [P*N] batches, or each separate policy
   on its own block. Returns seconds. */
static double s_pop_round (ra_target_t *pop, ra_target_t **one, const float *user, const float *cand,
                           const float *rew, const uint8_t *done)
{
  static int32_t sl[PP * PN * Pk];
  ra_error_t err;
  double t0 = s_now ();
  for (int s = 0; s <= PT; s++) {
    const float *u = user + (size_t) s * PP * PN * PU, *c = cand + (size_t) s * PP * PN * PK * PF;
    if (pop) {
      ra_obs_batch_t o = { .num_envs = PP * PN, .num_candidates = PK, .slate_size = Pk, .user_dim = PU,
                           .cand_dim = PF, .user = u, .candidates = c };
      if (s == PT) {
        ra_target_update (pop, &o, NULL, &err);
        break;
      }
      ra_target_act (pop, &o, false, sl);
      ra_target_record (pop, &o, sl, rew + (size_t) s * PP * PN, done + (size_t) s * PP * PN);
    } else {
      for (int p = 0; p < PP; p++) {
        ra_obs_batch_t o = { .num_envs = PN, .num_candidates = PK, .slate_size = Pk, .user_dim = PU,
                             .cand_dim = PF, .user = u + (size_t) p * PN * PU,
                             .candidates = c + (size_t) p * PN * PK * PF };
        if (s == PT) {
          ra_target_update (one[p], &o, NULL, &err);
          continue;
        }
        ra_target_act (one[p], &o, false, sl);
        ra_target_record (one[p], &o, sl, rew + ((size_t) s * PP + p) * PN, done + ((size_t) s * PP + p) * PN);
      }
    }
  }
  return s_now () - t0;
}

int main (int argc, char **argv)
{
  const char *landed = "/work/main/build/agents/recarena-target", *mine = "agents/recarena-target";
  int updates = 60, repeats = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp (argv[i], "--landed"))
      landed = argv[i + 1];
    else if (!strcmp (argv[i], "--this"))
      mine = argv[i + 1];
    else if (!strcmp (argv[i], "--updates"))
      updates = atoi (argv[i + 1]);
    else if (!strcmp (argv[i], "--repeats"))
      repeats = atoi (argv[i + 1]);
    else {
      fprintf (stderr, "usage: bench_target [--landed PATH] [--this PATH] [--updates U] [--repeats R]\n");
      return 2;
    }
  }
  if (updates < 1 || repeats < 1 || repeats > 64) {
    fprintf (stderr, "bench_target: --updates >= 1, --repeats 1..64\n");
    return 2;
  }

  /* 1. landed vs this, interleaved */
  double a[64], b[64];
  for (int r = 0; r < repeats; r++) {
    a[r] = s_run_binary (landed, updates);
    b[r] = s_run_binary (mine, updates);
    if (a[r] < 0 || b[r] < 0) {
      fprintf (stderr, "bench_target: could not run %s or %s\n", landed, mine);
      return 1;
    }
  }
  double ma = s_median (a, repeats), mb = s_median (b, repeats);
  printf ("recarena-target, ECommerce-v1, 64 envs, %d updates x 16 steps, %d interleaved runs (medians)\n",
          updates, repeats);
  printf ("  %-40s %12s\n", "build", "samples/s");
  printf ("  %-40s %12.0f\n", landed, ma);
  printf ("  %-40s %12.0f\n", mine, mb);
  printf ("  %-40s %11.2fx   (goal >= 1.5x)\n\n", "ratio this / landed", mb / ma);

  /* 2. split at P = 1 through the protocol */
  split_t sp;
  if (s_protocol_split (64, updates / 2 > 0 ? updates / 2 : 1, &sp) != 0)
    return 1;
  int env_steps = (int) (sp.samples / 64);
  double env_ps = s_env_direct (64, env_steps);
  double total = sp.compute + sp.client_step, per = 1e6 / sp.samples;
  double env = env_ps * sp.samples, transport = sp.client_step - env;
  printf ("target training at P = 1 through the protocol (in-process server over loopback TCP), 64 envs\n");
  printf ("  %-34s %12s %10s\n", "part", "us/sample", "share");
  printf ("  %-34s %12.2f %9.1f%%\n", "env stepping (sim stepped directly)", env * per, 100 * env / total);
  printf ("  %-34s %12.2f %9.1f%%\n", "transport (client step - env)", transport * per, 100 * transport / total);
  printf ("  %-34s %12.2f %9.1f%%\n", "network compute (act+record+update)", sp.compute * per, 100 * sp.compute / total);
  printf ("  %-34s %12.0f\n\n", "samples/s", sp.samples / total);

  /* 3. P = 64 batched vs 64 separate */
  ra_nn_backend_t *be = NULL;
  ra_error_t err;
  if (ra_nn_backend_open ("cpu", NULL, &be, &err) != RA_OK)
    return 1;
  size_t steps = PT + 1, nu = steps * PP * PN * PU, nc = steps * PP * PN * PK * PF, nr = steps * PP * PN;
  float *user = malloc (nu * sizeof (float)), *cand = malloc (nc * sizeof (float)), *rew = malloc (nr * sizeof (float));
  uint8_t *done = malloc (nr);
  ra_nn_rng_t rng;
  ra_nn_rng_init (&rng, 3, 0);
  for (size_t i = 0; i < nu; i++)
    user[i] = ra_nn_rng_normal (&rng);
  for (size_t i = 0; i < nc; i++)
    cand[i] = ra_nn_rng_normal (&rng);
  for (size_t i = 0; i < nr; i++) {
    rew[i] = ra_nn_rng_uniform (&rng);
    done[i] = ra_nn_rng_uniform (&rng) < 0.05f;
  }
  ra_target_t *pop = s_policy (be, PP), *one[PP];
  for (int p = 0; p < PP; p++)
    one[p] = s_policy (be, 1);
  double tb[64], ts[64];
  for (int r = 0; r < repeats; r++) {
    tb[r] = s_pop_round (pop, NULL, user, cand, rew, done);
    ts[r] = s_pop_round (NULL, one, user, cand, rew, done);
  }
  double mtb = s_median (tb, repeats), mts = s_median (ts, repeats), ns = (double) PP * PN * PT;
  printf ("P = %d replicas x %d envs, T = %d, K = %d, k = %d, U = F = %d, MLP 2 x 64: act T steps + update\n", PP,
          PN, PT, PK, Pk, PU);
  printf ("  %-34s %12s %12s\n", "", "ms/round", "samples/s");
  printf ("  %-34s %12.2f %12.0f\n", "one policy, population 64", 1e3 * mtb, ns / mtb);
  printf ("  %-34s %12.2f %12.0f\n", "64 separate policies", 1e3 * mts, ns / mts);
  printf ("  %-34s %11.2fx   (goal >= 1.5x)\n\n", "ratio batched / separate", mts / mtb);
  for (int p = 0; p < PP; p++)
    ra_target_destroy (&one[p]);
  ra_target_destroy (&pop);
  ra_nn_backend_destroy (&be);
  free (user), free (cand), free (rew), free (done);

  /* 4. profiles */
  if (system ("perf --version >/dev/null 2>&1") == 0) {
    printf ("profile share of the top five functions (perf, %d updates)\n", updates);
    s_profile ("landed", landed, updates);
    s_profile ("this build", mine, updates);
  } else {
    printf ("profile: perf is not installed; skipped\n");
  }
  return 0;
}
