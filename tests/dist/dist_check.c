/*  tests/dist/dist_check.c - agents/dist under 1, 2, 4 ... ranks (run by tests/dist/run_mpi.sh
    through mpirun, and directly as a single rank). Not a Criterion suite: every rank of an MPI job
    must run the same program from main.

    usage: dist_check check            the collectives' results, bit for bit against a sequential
                                       reference every rank computes itself; prints a digest line
                                       that must not change with the rank count
           dist_check bench [reps]     bytes and median time per call (docs/scaling.md section 4)
           dist_check hang DEADLINE_S  the last rank stays away; rank 0 must name it and end the job
           dist_check kill DEADLINE_S  the last rank is killed (SIGKILL); the job must end
    Exit 0 when every check passed; 1 with a message on stderr otherwise.                          */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agents/dist/dist.h"
#include "common/rng.h"

static int s_failures;

#define CHECK(cond, ...)                                                                          \
  do {                                                                                            \
    if (!(cond)) {                                                                                \
      fprintf (stderr, "dist_check rank %d: ", s_rank);                                           \
      fprintf (stderr, __VA_ARGS__);                                                              \
      fprintf (stderr, "\n");                                                                     \
      s_failures++;                                                                               \
    }                                                                                             \
  } while (0)

static int s_rank;

/* Task t's vector: values whose magnitudes differ by up to 2^40, so that float addition in any
   other order than the index order gives different bits. */
static void s_task_vec (int t, int dim, float *v)
{
  ra_rng_t r;
  ra_rng_seed (&r, 1234, (uint64_t) t);
  for (int j = 0; j < dim; j++) {
    double u = ra_rng_uniform_f64 (&r) - 0.5;
    int e = (int) (ra_rng_uniform_f64 (&r) * 40.0) - 20;
    v[j] = (float) ldexp (u, e);
  }
}

static double s_fitness (int64_t i) { return sin ((double) i * 0.37) * 100.0 + (double) i; }

static uint64_t s_fnv (const void *p, size_t n, uint64_t h)
{
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 1099511628211ULL;
  return h;
}

static double s_now (void)
{
  struct timespec t;
  clock_gettime (CLOCK_MONOTONIC, &t);
  return (double) t.tv_sec + (double) t.tv_nsec * 1e-9;
}

static ra_err_t s_root_fails (void *ctx, ra_error_t *err)
{
  int *calls = ctx;
  (*calls)++;
  return ra_error_set (err, RA_ERR_IO, -1, "checkpoint %d could not be written", *calls);
}

static ra_err_t s_root_ok (void *ctx, ra_error_t *err)
{
  (void) err;
  (*(int *) ctx)++;
  return RA_OK;
}

/* The sum over all tasks in index order, as every rank's own reference, and the sum a per-rank
   partial sum combined in rank order would give (what a rank-count-dependent reduction does). */
static void s_references (const ra_dist_t *d, int n_all, int dim, float *ref, float *naive)
{
  float *v = malloc (sizeof (float) * (size_t) dim);
  float *part = malloc (sizeof (float) * (size_t) dim);
  memset (ref, 0, sizeof (float) * (size_t) dim);
  memset (naive, 0, sizeof (float) * (size_t) dim);
  for (int t = 0; t < n_all; t++) {
    s_task_vec (t, dim, v);
    for (int j = 0; j < dim; j++)
      ref[j] = t == 0 ? v[j] : ref[j] + v[j];
  }
  int size = ra_dist_size (d);
  for (int r = 0; r < size; r++) {
    int64_t lo = (int64_t) r * n_all / size, hi = (int64_t) (r + 1) * n_all / size;
    memset (part, 0, sizeof (float) * (size_t) dim);
    for (int64_t t = lo; t < hi; t++) {
      s_task_vec ((int) t, dim, v);
      for (int j = 0; j < dim; j++)
        part[j] += v[j];
    }
    for (int j = 0; j < dim; j++)
      naive[j] += part[j];
  }
  free (v);
  free (part);
}

static int s_check (ra_dist_t *d)
{
  int size = ra_dist_size (d);
  ra_error_t err;
  /* ES: 37 population members; this rank owns every size-th index, given in reverse order. */
  enum { P = 37 };
  ra_dist_pair_t mine[P], all[P];
  int n_mine = 0;
  for (int i = P - 1; i >= 0; i--)
    if (i % size == s_rank)
      mine[n_mine++] = (ra_dist_pair_t) { i, s_fitness (i) };
  ra_err_t e = ra_dist_allgather_pairs (d, mine, n_mine, all, P, &err);
  CHECK (e == RA_OK, "allgather_pairs: %s", err.message);
  for (int i = 0; e == RA_OK && i < P; i++)
    CHECK (all[i].index == i && all[i].fitness == s_fitness (i),
           "pair %d is (%lld, %g); expected (%d, %g)", i, (long long) all[i].index,
           all[i].fitness, i, s_fitness (i));

  /* Reptile: 13 tasks (uneven over 2 and 4 ranks) of 1,000 floats; this rank owns a slice. */
  enum { T = 13, DIM = 1000 };
  int64_t lo, hi;
  ra_dist_slice (d, T, &lo, &hi);
  int64_t idx[T];
  float *vecs = malloc (sizeof (float) * T * DIM);
  float *sum = malloc (sizeof (float) * DIM), *ref = malloc (sizeof (float) * DIM);
  float *naive = malloc (sizeof (float) * DIM);
  for (int64_t t = lo; t < hi; t++) {
    idx[t - lo] = t;
    s_task_vec ((int) t, DIM, vecs + (t - lo) * DIM);
  }
  e = ra_dist_sum_ordered (d, idx, vecs, (int) (hi - lo), DIM, T, sum, &err);
  CHECK (e == RA_OK, "sum_ordered: %s", err.message);
  s_references (d, T, DIM, ref, naive);
  CHECK (memcmp (sum, ref, sizeof (float) * DIM) == 0,
         "the distributed sum differs from the index-order sum");
  int differ = 0;
  for (int j = 0; j < DIM; j++)
    differ += memcmp (&ref[j], &naive[j], sizeof (float)) != 0;
  if (size > 1)   /* the data must be able to catch a reduction that follows the ranks */
    CHECK (differ > 0, "a per-rank partial sum gives the same bits: the test data is too tame");

  /* Bad input fails on every rank: index 0 from every rank (twice when size > 1), or, alone, a
     missing index. */
  ra_dist_pair_t dup[2] = { { 0, 1.0 }, { size > 1 ? 1 : 0, 2.0 } };
  e = ra_dist_allgather_pairs (d, dup, s_rank == 0 ? 2 : 1, all, 2, &err);
  CHECK (e == RA_ERR_BAD_REQUEST, "a repeated index gave %s; expected BAD_REQUEST",
         ra_err_code (e));
  if (ra_dist_is_root (d))
    CHECK (strstr (err.message, "given twice") != NULL, "rank 0's message '%s' does not say the "
           "index was given twice", err.message);

  /* A missing index, and arguments refused before anything travels (the same on every rank). */
  ra_dist_pair_t only0 = { 0, 1.0 };
  e = ra_dist_allgather_pairs (d, &only0, s_rank == 0 ? 1 : 0, all, 2, &err);
  CHECK (e == RA_ERR_BAD_REQUEST, "a missing index gave %s; expected BAD_REQUEST", ra_err_code (e));
  if (ra_dist_is_root (d))
    CHECK (strstr (err.message, "index 1") != NULL, "'%s' does not name index 1", err.message);
  e = ra_dist_sum_ordered (d, idx, vecs, 0, 0, T, sum, &err);
  CHECK (e == RA_ERR_BAD_REQUEST && strstr (err.message, "dim 0") != NULL,
         "dim 0 gave %s '%s'", ra_err_code (e), err.message);
  e = ra_dist_allgather_pairs (d, mine, P + 1, all, P, &err);
  CHECK (e == RA_ERR_BAD_REQUEST, "n_mine > n_all gave %s", ra_err_code (e));
  e = ra_dist_sum_ordered (d, idx, vecs, 1, 1 << 28, T, sum, &err);
  CHECK (e == RA_ERR_LIMIT, "a 2 GiB message gave %s; expected LIMIT", ra_err_code (e));

  /* Rank 0's failure reaches everyone, message included; its success too. */
  int calls = 0;
  e = ra_dist_on_root (d, s_root_fails, &calls, &err);
  CHECK (e == RA_ERR_IO && strstr (err.message, "checkpoint 1 could not") != NULL,
         "on_root failure arrived as %s '%s'", ra_err_code (e), err.message);
  CHECK (calls == (ra_dist_is_root (d) ? 1 : 0), "the root function ran %d times here", calls);
  e = ra_dist_on_root (d, s_root_ok, &calls, &err);
  CHECK (e == RA_OK, "on_root success arrived as %s", ra_err_code (e));

  uint64_t sent, received;
  ra_dist_bytes (d, &sent, &received);
  uint64_t h = s_fnv (sum, sizeof (float) * DIM, 1469598103934665603ULL);
  ra_dist_pair_t again[P];
  if (ra_dist_allgather_pairs (d, mine, n_mine, again, P, &err) == RA_OK)
    h = s_fnv (again, sizeof again, h);
  if (ra_dist_is_root (d))
    printf ("digest %016llx (pairs %d, tasks %d x %d floats)\n", (unsigned long long) h, P, T, DIM);
  printf ("rank %d of %d: sent %llu B, received %llu B; per-rank partial sums would differ in "
          "%d of %d floats\n", s_rank, size, (unsigned long long) sent,
          (unsigned long long) received, differ, DIM);
  free (vecs);
  free (sum);
  free (ref);
  free (naive);
  return s_failures ? 1 : 0;
}

static int s_cmp (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

/* Median seconds of reps calls of one collective, and this rank's bytes per call. */
static void s_bench_row (ra_dist_t *d, const char *name, int kind, int n_all, int dim, int reps)
{
  int64_t lo, hi;
  ra_dist_slice (d, n_all, &lo, &hi);
  int n = (int) (hi - lo);
  ra_dist_pair_t *mine = malloc (sizeof *mine * (size_t) (n + 1));
  ra_dist_pair_t *all = malloc (sizeof *all * (size_t) n_all);
  int64_t *idx = malloc (sizeof *idx * (size_t) (n + 1));
  float *vecs = calloc ((size_t) (n + 1) * (size_t) dim, sizeof (float));
  float *sum = malloc (sizeof (float) * (size_t) dim);
  double *t = malloc (sizeof (double) * (size_t) reps);
  for (int i = 0; i < n; i++) {
    mine[i] = (ra_dist_pair_t) { lo + i, (double) i };
    idx[i] = lo + i;
  }
  ra_error_t err;
  uint64_t s0, r0, s1, r1;
  ra_dist_bytes (d, &s0, &r0);
  for (int k = 0; k < reps; k++) {
    double t0 = s_now ();
    ra_err_t e = kind == 0 ? ra_dist_allgather_pairs (d, mine, n, all, n_all, &err)
                           : ra_dist_sum_ordered (d, idx, vecs, n, dim, n_all, sum, &err);
    t[k] = s_now () - t0;
    CHECK (e == RA_OK, "%s: %s", name, err.message);
  }
  ra_dist_bytes (d, &s1, &r1);
  qsort (t, (size_t) reps, sizeof (double), s_cmp);
  char who[16];
  snprintf (who, sizeof who, "%d/%d", s_rank, ra_dist_size (d));
  printf ("| %4s | %-34s | %10.0f | %10.0f | %9.1f |\n", who, name,
          (double) (s1 - s0) / reps, (double) (r1 - r0) / reps, t[reps / 2] * 1e6);
  free (mine);
  free (all);
  free (idx);
  free (vecs);
  free (sum);
  free (t);
}

static int s_bench (ra_dist_t *d, int reps)
{
  if (ra_dist_is_root (d)) {
    printf ("ranks %d, median of %d calls; bytes are this rank's payload per call\n",
            ra_dist_size (d), reps);
    printf ("| rank | call                               |     sent B | received B | median us |\n");
    printf ("|------|------------------------------------|------------|------------|-----------|\n");
  }
  fflush (stdout);
  struct { const char *name; int kind, n, dim; } rows[] = {
    { "allgather_pairs P=2", 0, 2, 0 },
    { "allgather_pairs P=256", 0, 256, 0 },
    { "allgather_pairs P=4096", 0, 4096, 0 },
    { "sum_ordered T=8 x 1,000 floats", 1, 8, 1000 },
    { "sum_ordered T=8 x 100,000 floats", 1, 8, 100000 },
    { "sum_ordered T=8 x 1,000,000 floats", 1, 8, 1000000 },
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    s_bench_row (d, rows[i].name, rows[i].kind, rows[i].n, rows[i].dim,
                 rows[i].dim >= 1000000 ? (reps + 4) / 5 : reps);
    fflush (stdout);
  }
  return s_failures ? 1 : 0;
}

/* The last rank stays away (hang) or dies (kill); the others enter a collective. */
static int s_lost (ra_dist_t *d, bool kill_it)
{
  int size = ra_dist_size (d);
  ra_error_t err;
  if (size < 2) {
    fprintf (stderr, "dist_check: this mode needs at least 2 ranks\n");
    return 1;
  }
  if (s_rank == size - 1) {
    if (kill_it)
      raise (SIGKILL);
    for (;;)
      pause ();   /* stuck: never calls the collective (MPI_Abort from rank 0 ends it) */
  }
  ra_dist_pair_t mine = { s_rank, 1.0 }, all[64];
  ra_err_t e = ra_dist_allgather_pairs (d, &mine, 1, all, size, &err);
  if (e == RA_OK) {
    fprintf (stderr, "dist_check rank %d: the collective completed without rank %d\n", s_rank,
             size - 1);
    return 1;
  }
  fprintf (stderr, "dist_check rank %d: %s: %s\n", s_rank, ra_err_code (e), err.message);
  fflush (stderr);
  ra_dist_abort (d, 3);
  return 3;
}

int main (int argc, char **argv)
{
  const char *mode = argc > 1 ? argv[1] : "check";
  double deadline = argc > 2 && strcmp (mode, "bench") != 0 ? atof (argv[2]) : 30.0;
  ra_dist_t *d = NULL;
  ra_error_t err;
  if (ra_dist_new (&argc, &argv, deadline, &d, &err) != RA_OK) {
    fprintf (stderr, "dist_check: %s\n", err.message);
    return 1;
  }
  s_rank = ra_dist_rank (d);
  int rc;
  if (strcmp (mode, "check") == 0)
    rc = s_check (d);
  else if (strcmp (mode, "bench") == 0)
    rc = s_bench (d, argc > 2 ? atoi (argv[2]) : 50);
  else if (strcmp (mode, "hang") == 0 || strcmp (mode, "kill") == 0)
    rc = s_lost (d, strcmp (mode, "kill") == 0);
  else {
    fprintf (stderr, "dist_check: unknown mode '%s'; expected check, bench, hang or kill\n", mode);
    rc = 2;
  }
  ra_dist_destroy (&d);
  return rc;
}
