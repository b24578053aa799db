/*  bench/bench_sims.c - in-process simulator throughput: env-steps/s for every registered sim
    at batch sizes 1, 256 and 4096, one thread, median of several repeats. Random valid slates
    are drawn before the timed section; terminated envs are reset inside it (as autoreset would).
    Usage: bench_sims [seconds_per_repeat (default 0.2)] [repeats (default 5)] [sim] [batch]
    (sim and batch: only that simulator, only that batch size, e.g. for before/after runs).     */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/kv.h"
#include "common/rng.h"
#include "env/sims/registry.h"

#define N_SLATES 4096

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

static size_t s_numel (const ra_field_spec_t *f)
{
  size_t n = 1;
  for (int i = 0; i < f->ndim; i++)
    n *= (size_t) f->shape[i];
  return n;
}

static size_t s_dsize (ra_dtype_t t)
{
  return t == RA_DTYPE_F64 || t == RA_DTYPE_I64 ? 8 : t == RA_DTYPE_U8 || t == RA_DTYPE_I8 || t == RA_DTYPE_BOOL ? 1 : 4;
}

/* Returns the median env-steps/s of `repeats` runs of about `secs` each, or -1 on failure. */
static double s_bench (const ra_sim_class_t *cls, int n, double secs, int repeats)
{
  ra_error_t err;
  ra_sim_args_t args = { .num_envs = n, .seed = 1 };
  ra_sim_t *sim = NULL;
  if (cls->create (&args, &sim, &err) != RA_OK) {
    fprintf (stderr, "%s: create failed: %s\n", cls->name, err.message);
    return -1;
  }
  const ra_sim_spec_t *sp = cls->spec (sim);
  ra_sim_buffers_t buf;
  memset (&buf, 0, sizeof buf);
  for (int f = 0; f < sp->n_obs; f++)
    buf.obs[f] = malloc ((size_t) n * s_numel (&sp->obs[f]) * s_dsize (sp->obs[f].dtype));
  for (int f = 0; f < sp->n_info; f++)
    buf.info[f] = malloc ((size_t) n * s_numel (&sp->info[f]) * s_dsize (sp->info[f].dtype));
  buf.reward = malloc ((size_t) n * sizeof (float));
  buf.terminated = calloc ((size_t) n, 1);
  const int K = sp->num_candidates, k = sp->slate_size;
  /* N_SLATES random slates; step t uses slates starting at row (t * 7919) mod N_SLATES */
  int32_t *slates = malloc ((size_t) (N_SLATES + n) * (size_t) k * sizeof (int32_t));
  ra_rng_t rng;
  ra_rng_seed (&rng, 42, 0);
  for (int s = 0; s < N_SLATES + n; s++)
    for (int r = 0; r < k; r++) {
      int32_t c;
      int dup;
      do {
        c = (int32_t) ra_rng_below (&rng, (uint32_t) K);
        dup = 0;
        for (int q = 0; q < r; q++)
          dup |= slates[(size_t) s * k + q] == c;
      } while (dup);
      slates[(size_t) s * k + r] = c;
    }
  cls->reset (sim, 0, n, NULL, NULL, &buf);
  double *rates = malloc ((size_t) repeats * sizeof (double));
  long t = 0;
  for (int rep = 0; rep < repeats; rep++) {
    long steps = 0;
    double t0 = s_now (), t1;
    do {
      for (int it = 0; it < 16; it++, t++) {
        const int32_t *act = slates + (size_t) ((t * 7919) % N_SLATES) * k;
        cls->step (sim, 0, n, act, &buf);
        cls->reset (sim, 0, n, NULL, buf.terminated, &buf);
        steps += n;
      }
      t1 = s_now ();
    } while (t1 - t0 < secs);
    rates[rep] = (double) steps / (t1 - t0);
  }
  qsort (rates, (size_t) repeats, sizeof (double), s_cmp);
  double med = rates[repeats / 2];
  free (rates);
  free (slates);
  for (int f = 0; f < sp->n_obs; f++)
    free (buf.obs[f]);
  for (int f = 0; f < sp->n_info; f++)
    free (buf.info[f]);
  free (buf.reward);
  free (buf.terminated);
  cls->destroy (&sim);
  return med;
}

int main (int argc, char **argv)
{
  double secs = 0.2;
  long long repeats = 5, only_batch = 0;
  ra_error_t err;
  if (argc > 5 || (argc > 1 && ra_kv_parse_num ("seconds_per_repeat", argv[1], 1e-3, 60, &secs, &err) != RA_OK)
      || (argc > 2 && ra_kv_parse_int ("repeats", argv[2], 1, 1000, &repeats, &err) != RA_OK)
      || (argc > 4 && ra_kv_parse_int ("batch", argv[4], 1, 1 << 20, &only_batch, &err) != RA_OK)) {
    if (argc <= 5)
      fprintf (stderr, "%s\n", err.message);
    fprintf (stderr, "usage: %s [seconds_per_repeat > 0] [repeats >= 1] [sim] [batch]\n", argv[0]);
    return 2;
  }
  const char *only = argc > 3 ? argv[3] : NULL;
  static const int sizes[] = { 1, 256, 4096 };
  int n_sims;
  const ra_sim_class_t *const *sims = ra_sims_all (&n_sims);
  if (only && !ra_sims_find (only, (int) strlen (only))) {
    fprintf (stderr, "bench_sims: unknown sim '%.64s' (expected one of ECommerce-v1, Ads-v1, News-v1, Content-v1)\n", only);
    return 2;
  }
  printf ("%-16s %8s %16s %12s\n", "sim", "batch", "env-steps/s", "ns/env-step");
  for (int s = 0; s < n_sims; s++)
    for (int b = 0; b < 3; b++) {
      if ((only && strcmp (only, sims[s]->name) != 0) || (only_batch > 0 && only_batch != sizes[b]))
        continue;
      double r = s_bench (sims[s], sizes[b], secs, (int) repeats);
      if (r < 0)
        return 1;
      printf ("%-16s %8d %16.0f %12.1f\n", sims[s]->name, sizes[b], r, 1e9 / r);
    }
  return 0;
}
