/*  bench/bench_target.c - training throughput of the target policy (docs/agents.md, "Target
    policy", performance). One run prints three tables:
      1. recarena-target samples/s at 64 envs, default flags: the landed build against this
         build, run interleaved (A B A B ...), medians and their ratio (without --address the
         landed build trains through an in-process server over loopback TCP, this build through
         the in-process rollout source: table 2 separates that gain from the network's);
      2. this build at P = 1 through the protocol source and through the in-process source: the
         split of a training step's time between env stepping (the in-process source's step: the
         same trajectories), transport (the rest of the protocol source's step: encoding, ZeroMQ,
         decoding) and
         network compute (act, record, update), per sample;
      3. P = 64 replicas in one policy against 64 separate P = 1 policies on the same synthetic
         rollouts (act T steps + update), medians and ratio;
    and, when `perf` is installed, the profile share of the top five functions of both builds.

    usage: bench_target [--landed PATH] [--this PATH] [--updates U] [--repeats R] [--parts 1234]
                        [--device cpu|cuda]   (--device: table 3's backend; table 1 needs --landed)
    Owns everything it starts; single-threaded apart from the in-process server thread.        */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>

#include "agents/policies/rollout_inproc.h"
#include "agents/policies/target.h"
#include "env/server/server.h"
#include "protocol/client.h"
#include "common/kv.h"

static double s_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds of this process (part 3 runs no other thread) */
static double s_cpu (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
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

/* CPU seconds (user + system) of the children waited for so far. */
static double s_child_cpu (void)
{
  struct rusage ru;
  getrusage (RUSAGE_CHILDREN, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* Runs a recarena-target binary; returns the samples/s it printed, or -1; *per_cpu gets samples
   per CPU-second of the whole process (all its threads; robust to other load on the machine). */
static double s_run_binary (const char *bin, int updates, double *per_cpu)
{
  char cmd[1024];
  snprintf (cmd, sizeof cmd, "exec %s --updates %d --eval-episodes 0 --progress 1000 2>/dev/null", bin, updates);
  double c0 = s_child_cpu ();
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
  int rc = pclose (f);
  *per_cpu = (double) updates * 16 * 64 / fmax (s_child_cpu () - c0, 1e-9); /* 16 steps x 64 envs */
  return rc == 0 ? sps : -1;
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


typedef struct {
  double compute, source_step, samples;
} split_t;

/* Trains a fresh P = 1 target (defaults, seed 1) on src for `updates` updates, timing the
   network work (act, record, update) apart from the source's step call. */
static int s_split (ra_rollout_t *src, int updates, split_t *out)
{
  ra_nn_backend_t *be = NULL;
  ra_target_t *t = NULL;
  ra_error_t err;
  ra_target_cfg_t cfg;
  ra_target_cfg_default (&cfg);
  int rc = -1;
  const ra_obs_batch_t *o = &src->obs;
  if (ra_nn_backend_open ("cpu", NULL, &be, &err) != RA_OK || ra_rollout_reset (src, NULL, &err) != RA_OK)
    goto done;
  cfg.num_envs = o->num_envs, cfg.num_candidates = o->num_candidates, cfg.slate_size = o->slate_size;
  cfg.user_dim = o->user_dim, cfg.cand_dim = o->cand_dim;
  if (ra_target_new (be, &cfg, &t, &err) != RA_OK)
    goto done;
  int N = cfg.num_envs;
  size_t nu = (size_t) N * cfg.user_dim, nc = (size_t) N * cfg.num_candidates * cfg.cand_dim;
  float *cu = malloc (nu * sizeof (float)), *cc = malloc (nc * sizeof (float)), *rew = malloc ((size_t) N * sizeof (float));
  int32_t *sl = malloc ((size_t) N * cfg.slate_size * sizeof (int32_t));
  uint8_t *done = malloc ((size_t) N);
  ra_obs_batch_t cur = *o;
  cur.user = cu, cur.candidates = cc;
  memcpy (cu, o->user, nu * sizeof (float));
  memcpy (cc, o->candidates, nc * sizeof (float));
  *out = (split_t) { 0 };
  for (int u = 0; u < updates; u++) {
    for (int s = 0; s < cfg.rollout; s++) {
      double t0 = s_now ();
      ra_target_act (t, &cur, false, sl);
      double t1 = s_now ();
      if (ra_rollout_step (src, sl, &err) != RA_OK)
        goto fail;
      double t2 = s_now ();
      memcpy (rew, src->reward, (size_t) N * sizeof (float));
      memcpy (done, src->done, (size_t) N);
      ra_target_record (t, &cur, sl, rew, done);
      memcpy (cu, o->user, nu * sizeof (float));
      memcpy (cc, o->candidates, nc * sizeof (float));
      double t3 = s_now ();
      out->compute += (t1 - t0) + (t3 - t2);
      out->source_step += t2 - t1;
      out->samples += N;
    }
    double t0 = s_now ();
    if (ra_target_update (t, &cur, NULL, &err) != RA_OK)
      goto fail;
    out->compute += s_now () - t0;
  }
  rc = 0;
fail:
  free (cu), free (cc), free (rew), free (sl), free (done);
done:
  if (rc)
    fprintf (stderr, "bench_target: %s\n", err.message);
  ra_target_destroy (&t);
  ra_nn_backend_destroy (&be);
  return rc;
}

/* The same run through the protocol (in-process server, loopback TCP) and through the
   in-process source, interleaved `repeats` times; medians per part. */
static int s_sources (int N, int updates, int repeats, split_t *proto, split_t *inproc)
{
  ra_server_opts_t so;
  ra_server_opts_default (&so);
  so.workers = 1;
  ra_server_t *srv = NULL;
  ra_client_t *c = NULL;
  ra_error_t err;
  pthread_t th;
  if (ra_server_new (&so, &srv, &err) != RA_OK || ra_server_bind (srv, "tcp://127.0.0.1:*", &err) != RA_OK
      || pthread_create (&th, NULL, ra_server_thread, srv) != 0) {
    fprintf (stderr, "bench_target: server: %s\n", err.message);
    return -1;
  }
  int rc = -1;
  double pc[64], ps[64], ic[64], is[64];
  for (int r = 0; r < repeats; r++) {
    ra_client_env_t env;
    ra_rollout_t *p = NULL, *q = NULL;
    ra_make_opts_t mo = { .has_seed = true, .seed = 1, .autoreset = "same_step" };
    ra_rollout_inproc_opts_t io = { .env = "ECommerce-v1", .num_envs = N, .seed = 1 };
    split_t a, b;
    if ((!c && ra_client_new (ra_server_endpoint (srv, 0), 0, &c, &err) != RA_OK)
        || ra_client_make (c, "ECommerce-v1", N, &mo, &env, &err) != RA_OK) {
      fprintf (stderr, "bench_target: %s\n", err.message);
      goto done;
    }
    bool ok = ra_rollout_protocol_new (c, &env, &p, &err) == RA_OK && ra_rollout_inproc_new (&io, &q, &err) == RA_OK
              && s_split (p, updates, &a) == 0 && s_split (q, updates, &b) == 0;
    ra_rollout_destroy (&p);
    ra_rollout_destroy (&q);
    ra_client_close (c, &env, &err);
    ra_client_env_fini (&env);
    if (!ok)
      goto done;
    pc[r] = a.compute / a.samples, ps[r] = a.source_step / a.samples;
    ic[r] = b.compute / b.samples, is[r] = b.source_step / b.samples;
  }
  *proto = (split_t) { .compute = s_median (pc, repeats), .source_step = s_median (ps, repeats), .samples = 1 };
  *inproc = (split_t) { .compute = s_median (ic, repeats), .source_step = s_median (is, repeats), .samples = 1 };
  rc = 0;
done:
  ra_client_destroy (&c);
  ra_server_stop (srv);
  pthread_join (th, NULL);
  ra_server_destroy (&srv);
  return rc;
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
                           const float *rew, const uint8_t *done, double *upd_s)
{
  static int32_t sl[PP * PN * Pk];
  ra_error_t err;
  double t0 = s_now (), tu = 0;
  for (int s = 0; s <= PT; s++) {
    const float *u = user + (size_t) s * PP * PN * PU, *c = cand + (size_t) s * PP * PN * PK * PF;
    if (pop) {
      ra_obs_batch_t o = { .num_envs = PP * PN, .num_candidates = PK, .slate_size = Pk, .user_dim = PU,
                           .cand_dim = PF, .user = u, .candidates = c };
      if (s == PT) {
        tu = s_now ();
        ra_target_update (pop, &o, NULL, &err);
        break;
      }
      ra_target_act (pop, &o, false, sl);
      ra_target_record (pop, &o, sl, rew + (size_t) s * PP * PN, done + (size_t) s * PP * PN);
    } else {
      if (s == PT)
        tu = s_now ();
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
  double t1 = s_now ();
  *upd_s = t1 - tu;
  return t1 - t0;
}

static int s_part1 (const char *landed, const char *mine, int updates, int repeats)
{
  /* 1. landed vs this, interleaved */
  double a[64], b[64], ca[64], cb[64];
  for (int r = 0; r < repeats; r++) {
    a[r] = s_run_binary (landed, updates, &ca[r]);
    b[r] = s_run_binary (mine, updates, &cb[r]);
    if (a[r] < 0 || b[r] < 0) {
      fprintf (stderr, "bench_target: could not run %s or %s\n", landed, mine);
      return 1;
    }
  }
  double ma = s_median (a, repeats), mb = s_median (b, repeats);
  double mca = s_median (ca, repeats), mcb = s_median (cb, repeats);
  printf ("recarena-target, ECommerce-v1, 64 envs, %d updates x 16 steps, %d interleaved runs (medians)\n",
          updates, repeats);
  printf ("  %-40s %12s %16s\n", "build", "samples/s", "samples/CPU-s");
  printf ("  %-40s %12.0f %16.0f\n", landed, ma, mca);
  printf ("  %-40s %12.0f %16.0f\n", mine, mb, mcb);
  printf ("  %-40s %11.2fx %15.2fx   (goal >= 1.5x)\n\n", "ratio this / landed", mb / ma, mcb / mca);

  return 0;
}

static int s_part2 (int updates, int repeats)
{
  /* 2. P = 1 through the protocol and through the in-process source */
  split_t sp, si;
  int up2 = updates / 2 > 0 ? updates / 2 : 1;
  if (s_sources (64, up2, repeats, &sp, &si) != 0)
    return 1;
  /* both runs play the same trajectories (same env seed, same policy seed), so the in-process
     source's step is the env stepping inside the protocol source's step */
  double env_ps = si.source_step;
  double tp = sp.compute + sp.source_step, ti = si.compute + si.source_step;
  printf ("target training at P = 1, ECommerce-v1, 64 envs, %d updates x 16 steps, %d interleaved runs "
          "(medians, us per sample)\n", up2, repeats);
  printf ("  %-38s %14s %14s\n", "part", "protocol", "in-process");
  printf ("  %-38s %14.2f %14.2f\n", "env stepping (the session's step)", 1e6 * env_ps, 1e6 * env_ps);
  printf ("  %-38s %14.2f %14.2f\n", "transport (encode, ZeroMQ, decode)", 1e6 * (sp.source_step - env_ps), 0.0);
  printf ("  %-38s %14.2f %14.2f\n", "env side (the source's step call)", 1e6 * sp.source_step, 1e6 * si.source_step);
  printf ("  %-38s %14.2f %14.2f\n", "network compute (act+record+update)", 1e6 * sp.compute, 1e6 * si.compute);
  printf ("  %-38s %14.0f %14.0f\n", "samples/s", 1.0 / tp, 1.0 / ti);
  printf ("  %-38s %14.1f%% %13.1f%%\n", "env side share", 100 * sp.source_step / tp, 100 * si.source_step / ti);
  printf ("  in-process / protocol env-side cost per sample: %.2f (goal <= 0.5)\n\n", si.source_step / sp.source_step);

  return 0;
}

static int s_part3 (const char *device, int repeats)
{
  /* 3. P = 64 batched vs 64 separate */
  ra_nn_backend_t *be = NULL;
  ra_error_t err;
  if (ra_nn_backend_open (device, NULL, &be, &err) != RA_OK) {
    fprintf (stderr, "bench_target: --device %s: %s\n", device, err.message);
    return -1;
  }
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
  double tb[64], ts[64], ub[64], us[64], cb[64], cs[64];
  for (int r = 0; r < repeats; r++) {
    double c0 = s_cpu ();
    tb[r] = s_pop_round (pop, NULL, user, cand, rew, done, &ub[r]);
    double c1 = s_cpu ();
    ts[r] = s_pop_round (NULL, one, user, cand, rew, done, &us[r]);
    cb[r] = c1 - c0;
    cs[r] = s_cpu () - c1;
  }
  double mcb = s_median (cb, repeats), mcs = s_median (cs, repeats);
  double mtb = s_median (tb, repeats), mts = s_median (ts, repeats), ns = (double) PP * PN * PT;
  double mub = s_median (ub, repeats), mus = s_median (us, repeats);
  printf ("P = %d replicas x %d envs, T = %d, K = %d, k = %d, U = F = %d, MLP 2 x 64: act T steps + update (%s)\n",
          PP, PN, PT, PK, Pk, PU, device);
  printf ("  %-30s %10s %13s %10s %13s\n", "", "ms/round", "of which upd", "samples/s", "samples/CPU-s");
  printf ("  %-30s %10.2f %13.2f %10.0f %13.0f\n", "one policy, population 64", 1e3 * mtb, 1e3 * mub, ns / mtb,
          ns / mcb);
  printf ("  %-30s %10.2f %13.2f %10.0f %13.0f\n", "64 separate policies", 1e3 * mts, 1e3 * mus, ns / mts, ns / mcs);
  printf ("  %-30s %10.2fx %37.2fx   (goal >= 1.5x)\n\n", "ratio batched / separate", mts / mtb, mcs / mcb);
  for (int p = 0; p < PP; p++)
    ra_target_destroy (&one[p]);
  ra_target_destroy (&pop);
  ra_nn_backend_destroy (&be);
  free (user), free (cand), free (rew), free (done);

  return 0;
}

static void s_part4 (const char *landed, const char *mine, int updates)
{
  /* 4. profiles */
  if (system ("perf --version >/dev/null 2>&1") == 0) {
    printf ("profile share of the top five functions (perf, %d updates)\n", updates);
    if (landed)
      s_profile ("landed", landed, updates);
    s_profile ("this build", mine, updates);
  } else {
    printf ("profile: perf is not installed; skipped\n");
  }
}

static void s_usage (void)
{
  fprintf (stderr, "usage: bench_target [--landed PATH] [--this PATH] [--updates U] [--repeats R] "
                   "[--parts 1234] [--device cpu|cuda]\n"
                   "  --landed: an older recarena-target to compare with (table 1 needs it)\n");
}

int main (int argc, char **argv)
{
  const char *landed = NULL, *mine = "agents/recarena-target", *device = "cpu";
  long long updates = 60, repeats = 5;
  const char *parts = "1234"; /* which tables (the digits of the file comment) */
  for (int i = 1; i < argc; i += 2) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    ra_error_t err;
    ra_err_t rc = RA_OK;
    if (!v) {
      fprintf (stderr, "bench_target: %s needs a value\n", a);
      s_usage ();
      return 2;
    }
    if (!strcmp (a, "--landed"))
      landed = v;
    else if (!strcmp (a, "--this"))
      mine = v;
    else if (!strcmp (a, "--device"))
      device = v;
    else if (!strcmp (a, "--updates"))
      rc = ra_kv_parse_int ("--updates", v, 1, 1000000, &updates, &err);
    else if (!strcmp (a, "--repeats"))
      rc = ra_kv_parse_int ("--repeats", v, 1, 64, &repeats, &err);
    else if (!strcmp (a, "--parts") && strspn (v, "1234") == strlen (v) && *v)
      parts = v;
    else {
      fprintf (stderr, "bench_target: unknown option or bad value '%.64s %.64s'\n", a, v);
      s_usage ();
      return 2;
    }
    if (rc != RA_OK) {
      fprintf (stderr, "bench_target: %s\n", err.message);
      return 2;
    }
  }

  if (strchr (parts, '1')) {
    if (!landed)
      printf ("table 1 skipped: no --landed build to compare with\n\n");
    else if (s_part1 (landed, mine, (int) updates, (int) repeats) != 0)
      return 1;
  }
  if (strchr (parts, '2') && s_part2 ((int) updates, (int) repeats) != 0)
    return 1;
  if (strchr (parts, '3') && s_part3 (device, (int) repeats) != 0)
    return 1;
  if (strchr (parts, '4'))
    s_part4 (landed, mine, (int) updates);
  return 0;
}
