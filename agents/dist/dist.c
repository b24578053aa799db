/*  agents/dist/dist.c - the collectives of agents/dist/dist.h over MPI, or for a single rank.

    Every collective is the same two moves: rank 0 gathers the ranks' contributions with one
    point-to-point receive per rank (so a missing rank is known by number), places them by index
    and computes the result, then broadcasts it (MPI_Ibcast: a tree, log2(size) hops). Waits are
    non-blocking requests tested until done or until the deadline. Rank 0 rejects bad input by
    broadcasting a result marked invalid, so every rank returns an error together.
    The placing and summing code is shared with the single-rank build: one arithmetic for all
    rank counts (docs/scaling.md section 2).                                                     */
#include "agents/dist/dist.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef RA_HAVE_MPI
#include <mpi.h>
#include <sched.h>
#endif

struct ra_dist {
  int rank, size;
  double deadline_s;
  bool in_mpi;    /* joined an MPI job (else a job of one rank that never touched MPI) */
  bool own_mpi;
  uint64_t sent, received;
#ifdef RA_HAVE_MPI
  MPI_Comm comm;
#endif
};

/* What on_root broadcasts: the root function's result. */
typedef struct {
  int32_t code;
  int32_t env_index;
  char message[RA_ERROR_MESSAGE_MAX];
} s_status_t;

bool ra_dist_have_mpi (void)
{
#ifdef RA_HAVE_MPI
  return true;
#else
  return false;
#endif
}

/* ---- arithmetic shared by every build -------------------------------------------------------- */

/* Puts src's n pairs at their index in all[n_all] (pre-filled with index -1). */
static ra_err_t s_place_pairs (ra_dist_pair_t *all, int n_all, const ra_dist_pair_t *src, int n,
                               int from, ra_error_t *err)
{
  for (int i = 0; i < n; i++) {
    int64_t k = src[i].index;
    if (k < 0 || k >= n_all)
      return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "rank %d gave pair index %lld; expected "
                           "0 .. %d", from, (long long) k, n_all - 1);
    if (all[k].index != -1)
      return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "pair index %lld given twice (again by "
                           "rank %d); each index must come from one rank once", (long long) k, from);
    all[k] = src[i];
  }
  return RA_OK;
}

static ra_err_t s_check_complete (const ra_dist_pair_t *all, const unsigned char *filled, int n_all,
                                  const char *what, ra_error_t *err)
{
  for (int i = 0; i < n_all; i++)
    if (all ? all[i].index != i : !filled[i])
      return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "no rank gave %s index %d of 0 .. %d",
                           what, i, n_all - 1);
  return RA_OK;
}

/* Copies n vectors (indices idx, rows of dim in v) into stage[n_all][dim]. */
static ra_err_t s_place_vecs (float *stage, unsigned char *filled, int n_all, int dim,
                              const int64_t *idx, const float *v, int n, int from, ra_error_t *err)
{
  for (int i = 0; i < n; i++) {
    int64_t k = idx[i];
    if (k < 0 || k >= n_all)
      return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "rank %d gave task index %lld; expected "
                           "0 .. %d", from, (long long) k, n_all - 1);
    if (filled[k])
      return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "task index %lld given twice (again by "
                           "rank %d); each index must come from one rank once", (long long) k, from);
    filled[k] = 1;
    memcpy (stage + (size_t) k * dim, v + (size_t) i * dim, sizeof (float) * (size_t) dim);
  }
  return RA_OK;
}

/* sum = ((v_0 + v_1) + v_2) + ...: the one order of additions, whatever the rank count. */
static void s_sum_in_order (const float *stage, int n_all, int dim, float *sum)
{
  memcpy (sum, stage, sizeof (float) * (size_t) dim);
  for (int t = 1; t < n_all; t++) {
    const float *v = stage + (size_t) t * dim;
    for (int j = 0; j < dim; j++)
      sum[j] += v[j];
  }
}

static ra_err_t s_check_args (int n_mine, int n_all, int dim, bool vec, ra_error_t *err)
{
  if (n_all < 1 || n_mine < 0 || n_mine > n_all)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "n_mine %d and n_all %d; expected "
                         "0 <= n_mine <= n_all and n_all >= 1", n_mine, n_all);
  if (vec && dim < 1)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "dim %d; expected >= 1", dim);
  /* MPI counts are ints: the largest message (all pairs, or one rank's vectors) must fit. */
  if ((int64_t) n_all * (int64_t) sizeof (ra_dist_pair_t) > INT_MAX
      || (vec && (int64_t) n_all * (8 + 4 * (int64_t) dim) > INT_MAX))
    return ra_error_set (err, RA_ERR_LIMIT, -1, "%d items of dim %d make a message over 2 GiB; "
                         "split the exchange", n_all, dim);
  return RA_OK;
}

/* ---- MPI plumbing ------------------------------------------------------------------------------- */

#ifdef RA_HAVE_MPI
enum { TAG_PAIRS = 7101, TAG_VECS = 7102 };

static double s_now (void)
{
  struct timespec t;
  clock_gettime (CLOCK_MONOTONIC, &t);
  return (double) t.tv_sec + (double) t.tv_nsec * 1e-9;
}

/* Lets other processes run between tests: oversubscribed ranks share cores. */
static void s_pause (int spins)
{
  if (spins < 1000) {
    sched_yield ();
    return;
  }
  struct timespec ts = { 0, 100000 };   /* 0.1 ms once a wait has lasted */
  nanosleep (&ts, NULL);
}

static ra_err_t s_mpi_fail (int rc, const char *what, ra_error_t *err)
{
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string (rc, text, &len) != MPI_SUCCESS)
    snprintf (text, sizeof text, "MPI error %d", rc);
  return ra_error_set (err, RA_ERR_TRANSPORT, -1, "%s failed: %s", what, text);
}

/* Waits for n requests until deadline (absolute); what names the step ("receiving rank 0's ..."). */
static ra_err_t s_wait (MPI_Request *reqs, int n, double deadline, double deadline_s,
                        const char *what, ra_error_t *err)
{
  for (int spins = 0;; spins++) {
    int done = 0;
    int rc = MPI_Testall (n, reqs, &done, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS)
      return s_mpi_fail (rc, what, err);
    if (done)
      return RA_OK;
    if (s_now () > deadline)
      return ra_error_set (err, RA_ERR_TIMEOUT, -1, "%s: not done within %g s (a rank died, "
                           "is stuck, or is not in the same collective step); end the job",
                           what, deadline_s);
    s_pause (spins);
  }
}

/* Rank 0: the message tag from rank r, of at most max_bytes bytes, into a new buffer. */
static ra_err_t s_recv_from (ra_dist_t *d, int r, int tag, int max_bytes, double deadline,
                             const char *what, void **buf, int *bytes, ra_error_t *err)
{
  MPI_Status st;
  for (int spins = 0;; spins++) {
    int found = 0;
    int rc = MPI_Iprobe (r, tag, d->comm, &found, &st);
    if (rc != MPI_SUCCESS)
      return s_mpi_fail (rc, "MPI_Iprobe", err);
    if (found)
      break;
    if (s_now () > deadline)
      return ra_error_set (err, RA_ERR_TIMEOUT, -1, "rank %d sent no %s within %g s of rank 0 "
                           "asking (dead, stuck, or not in the same collective step); end the job",
                           r, what, d->deadline_s);
    s_pause (spins);
  }
  int n = 0;
  MPI_Get_count (&st, MPI_BYTE, &n);
  if (n < 0 || n > max_bytes)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "rank %d sent %d bytes of %s; expected at "
                         "most %d", r, n, what, max_bytes);
  *buf = malloc (n > 0 ? (size_t) n : 1);
  if (!*buf)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "no memory for %d bytes from rank %d", n, r);
  int rc = MPI_Recv (*buf, n, MPI_BYTE, r, tag, d->comm, MPI_STATUS_IGNORE);
  if (rc != MPI_SUCCESS) {
    free (*buf);
    *buf = NULL;
    return s_mpi_fail (rc, "MPI_Recv", err);
  }
  *bytes = n;
  d->received += (uint64_t) n;
  return RA_OK;
}

/* Broadcasts bytes of buf from rank 0 under the deadline. */
static ra_err_t s_bcast (ra_dist_t *d, void *buf, int bytes, const char *what, ra_error_t *err)
{
  MPI_Request req;
  int rc = MPI_Ibcast (buf, bytes, MPI_BYTE, 0, d->comm, &req);
  if (rc != MPI_SUCCESS)
    return s_mpi_fail (rc, "MPI_Ibcast", err);
  /* The others wait longer than rank 0 waits for them, so that when a rank is lost rank 0 (which
     can name it) reports first. */
  double limit = d->rank == 0 ? d->deadline_s : d->deadline_s * 1.5 + 1.0;
  ra_err_t e = s_wait (&req, 1, s_now () + limit, limit, what, err);
  if (e == RA_OK) {
    if (d->rank == 0)
      d->sent += (uint64_t) bytes;
    else
      d->received += (uint64_t) bytes;
  }
  return e;
}

/* A non-root rank's contribution to rank 0, waited for under the deadline. */
static ra_err_t s_send_root (ra_dist_t *d, const void *buf, int bytes, int tag, ra_error_t *err)
{
  MPI_Request req;
  int rc = MPI_Isend (buf, bytes, MPI_BYTE, 0, tag, d->comm, &req);
  if (rc != MPI_SUCCESS)
    return s_mpi_fail (rc, "MPI_Isend", err);
  double limit = d->deadline_s * 1.5 + 1.0;
  ra_err_t e = s_wait (&req, 1, s_now () + limit, limit, "sending this rank's part to rank 0",
                       err);
  if (e == RA_OK)
    d->sent += (uint64_t) bytes;
  return e;
}
#endif

/* ---- lifetime ----------------------------------------------------------------------------------- */

#ifdef RA_HAVE_MPI
/* Whether an MPI launcher (mpirun / mpiexec of OpenMPI or MPICH, srun) started this process: its
   environment says so. Without one the process is a job of one rank and does not start MPI: a
   singleton MPI_Init costs about 0.4 s, and OpenMPI singletons started side by side race on their
   session directory in TMPDIR (one's MPI_Finalize removes the directory another is creating, which
   then fails with "A call to mkdir was unable to create the desired directory"). */
static bool s_launched_by_mpi (void)
{
  static const char *const vars[] = { "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE" };
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    if (getenv (vars[i]))
      return true;
  return false;
}
#endif

ra_err_t ra_dist_new (int *argc, char ***argv, double deadline_s, ra_dist_t **out,
                      ra_error_t *err)
{
  if (!out)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "ra_dist_new needs an out pointer");
  *out = NULL;
  ra_dist_t *d = calloc (1, sizeof *d);
  if (!d)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "no memory for the dist state");
  d->deadline_s = deadline_s > 0 ? deadline_s : RA_DIST_DEFAULT_DEADLINE_S;
  d->size = 1;
#ifdef RA_HAVE_MPI
  int inited = 0, rc;
  MPI_Initialized (&inited);
  if (!inited && !s_launched_by_mpi ()) {
    *out = d;
    return RA_OK;
  }
  d->in_mpi = true;
  if (!inited) {
    int provided = 0;
    rc = MPI_Init_thread (argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) {
      free (d);
      return ra_error_set (err, RA_ERR_TRANSPORT, -1, "MPI_Init_thread failed (code %d)", rc);
    }
    d->own_mpi = true;
  }
  rc = MPI_Comm_dup (MPI_COMM_WORLD, &d->comm);
  if (rc == MPI_SUCCESS)
    rc = MPI_Comm_set_errhandler (d->comm, MPI_ERRORS_RETURN);
  if (rc == MPI_SUCCESS)
    rc = MPI_Comm_rank (d->comm, &d->rank);
  if (rc == MPI_SUCCESS)
    rc = MPI_Comm_size (d->comm, &d->size);
  if (rc != MPI_SUCCESS) {
    ra_err_t e = s_mpi_fail (rc, "setting up the dist communicator", err);
    if (d->own_mpi)
      MPI_Finalize ();
    free (d);
    return e;
  }
#else
  (void) argc;
  (void) argv;
#endif
  *out = d;
  return RA_OK;
}

void ra_dist_destroy (ra_dist_t **pd)
{
  if (!pd || !*pd)
    return;
  ra_dist_t *d = *pd;
  *pd = NULL;
#ifdef RA_HAVE_MPI
  if (d->in_mpi) {
    MPI_Comm_free (&d->comm);
    int finalized = 0;
    MPI_Finalized (&finalized);
    if (d->own_mpi && !finalized)
      MPI_Finalize ();
  }
#endif
  free (d);
}

int ra_dist_rank (const ra_dist_t *d) { return d ? d->rank : 0; }
int ra_dist_size (const ra_dist_t *d) { return d ? d->size : 1; }
bool ra_dist_is_root (const ra_dist_t *d) { return !d || d->rank == 0; }

void ra_dist_slice (const ra_dist_t *d, int64_t n, int64_t *lo, int64_t *hi)
{
  int64_t size = ra_dist_size (d), r = ra_dist_rank (d);
  int64_t base = n / size, extra = n % size;
  *lo = r * base + (r < extra ? r : extra);
  *hi = *lo + base + (r < extra ? 1 : 0);
}

void ra_dist_bytes (const ra_dist_t *d, uint64_t *sent, uint64_t *received)
{
  if (sent)
    *sent = d ? d->sent : 0;
  if (received)
    *received = d ? d->received : 0;
}

void ra_dist_abort (ra_dist_t *d, int code)
{
#ifdef RA_HAVE_MPI
  if (d && d->size > 1)
    MPI_Abort (MPI_COMM_WORLD, code);
#else
  (void) d;
  (void) code;
#endif
}

/* ---- collectives -------------------------------------------------------------------------------- */

ra_err_t ra_dist_allgather_pairs (ra_dist_t *d, const ra_dist_pair_t *mine, int n_mine,
                                  ra_dist_pair_t *all, int n_all, ra_error_t *err)
{
  if (!d || !all || (n_mine > 0 && !mine))
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "allgather_pairs needs the dist state, "
                         "its pairs and an output array");
  ra_err_t e = s_check_args (n_mine, n_all, 0, false, err);
  if (e)
    return e;
  const int pair = (int) sizeof (ra_dist_pair_t);
  (void) pair;   /* message sizes: unused by the single-rank build */
  if (d->rank == 0) {
    for (int i = 0; i < n_all; i++)
      all[i] = (ra_dist_pair_t) { -1, 0.0 };
    e = s_place_pairs (all, n_all, mine, n_mine, 0, err);
#ifdef RA_HAVE_MPI
    double deadline = s_now () + d->deadline_s;
    for (int r = 1; r < d->size; r++) {
      void *buf = NULL;
      int bytes = 0;
      ra_err_t er = s_recv_from (d, r, TAG_PAIRS, n_all * pair, deadline, "fitness pairs", &buf,
                                 &bytes, e ? NULL : err);
      if (er == RA_OK && bytes % pair != 0)
        er = ra_error_set (e ? NULL : err, RA_ERR_BAD_REQUEST, -1, "rank %d sent %d bytes of "
                           "pairs; expected a multiple of %d", r, bytes, pair);
      if (er == RA_OK && !e)
        er = s_place_pairs (all, n_all, buf, bytes / pair, r, err);
      free (buf);
      if (er == RA_ERR_TIMEOUT || er == RA_ERR_TRANSPORT)
        return e ? e : er;   /* a rank is missing: no broadcast can complete */
      if (!e)
        e = er;
    }
#endif
    if (!e)
      e = s_check_complete (all, NULL, n_all, "pair", err);
    if (e)
      for (int i = 0; i < n_all; i++)
        all[i].index = -1;   /* tells the others the gather was rejected */
#ifdef RA_HAVE_MPI
    if (d->size > 1) {
      ra_err_t eb = s_bcast (d, all, n_all * pair, "broadcasting the gathered pairs", e ? NULL : err);
      if (!e)
        e = eb;
    }
#endif
    return e;
  }
#ifdef RA_HAVE_MPI
  e = s_send_root (d, mine, n_mine * pair, TAG_PAIRS, err);
  if (!e)
    e = s_bcast (d, all, n_all * pair, "receiving rank 0's gathered pairs", err);
  if (!e && s_check_complete (all, NULL, n_all, "pair", NULL) != RA_OK)
    e = ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "rank 0 rejected the gathered pairs (its "
                      "error names the problem)");
  return e;
#else
  return ra_error_set (err, RA_ERR_INTERNAL, -1, "rank %d without MPI", d->rank);
#endif
}

ra_err_t ra_dist_sum_ordered (ra_dist_t *d, const int64_t *indices, const float *vecs,
                              int n_mine, int dim, int n_all, float *sum, ra_error_t *err)
{
  if (!d || !sum || (n_mine > 0 && (!indices || !vecs)))
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "sum_ordered needs the dist state, its "
                         "indices and vectors and an output array");
  ra_err_t e = s_check_args (n_mine, n_all, dim, true, err);
  if (e)
    return e;
  const int row = 8 + 4 * dim;   /* one task on the wire: its index and its floats */
  (void) row;
  /* the broadcast result: dim floats and a flag, 0 = valid, 1 = rejected by rank 0 */
  float *result = malloc (sizeof (float) * ((size_t) dim + 1));
  if (!result)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "no memory for a sum of %d floats", dim);
  if (d->rank == 0) {
    float *stage = malloc (sizeof (float) * (size_t) n_all * (size_t) dim);
    unsigned char *filled = calloc ((size_t) n_all, 1);
    if (!stage || !filled) {
      free (stage);
      free (filled);
      free (result);
      return ra_error_set (err, RA_ERR_NOMEM, -1, "rank 0 has no memory to stage %d x %d floats",
                           n_all, dim);
    }
    e = s_place_vecs (stage, filled, n_all, dim, indices, vecs, n_mine, 0, err);
#ifdef RA_HAVE_MPI
    double deadline = s_now () + d->deadline_s;
    for (int r = 1; r < d->size; r++) {
      void *buf = NULL;
      int bytes = 0;
      ra_err_t er = s_recv_from (d, r, TAG_VECS, n_all * row, deadline, "task vectors", &buf,
                                 &bytes, e ? NULL : err);
      if (er == RA_OK && bytes % row != 0)
        er = ra_error_set (e ? NULL : err, RA_ERR_BAD_REQUEST, -1, "rank %d sent %d bytes of task "
                           "vectors; expected a multiple of %d (dim %d)", r, bytes, row, dim);
      if (er == RA_OK && !e) {
        int n = bytes / row;
        er = s_place_vecs (stage, filled, n_all, dim, buf, (const float *) ((int64_t *) buf + n),
                           n, r, err);
      }
      free (buf);
      if (er == RA_ERR_TIMEOUT || er == RA_ERR_TRANSPORT) {
        free (stage);
        free (filled);
        free (result);
        return e ? e : er;
      }
      if (!e)
        e = er;
    }
#endif
    if (!e)
      e = s_check_complete (NULL, filled, n_all, "task", err);
    if (!e)
      s_sum_in_order (stage, n_all, dim, result);
    result[dim] = e ? 1.0f : 0.0f;
    free (stage);
    free (filled);
#ifdef RA_HAVE_MPI
    if (d->size > 1) {
      ra_err_t eb = s_bcast (d, result, (dim + 1) * 4, "broadcasting the summed vector", e ? NULL : err);
      if (!e)
        e = eb;
    }
#endif
  }
#ifdef RA_HAVE_MPI
  else {
    /* One message: the n_mine indices, then their n_mine * dim floats. */
    unsigned char *msg = malloc ((size_t) n_mine * (size_t) row + 1);
    if (!msg) {
      free (result);
      return ra_error_set (err, RA_ERR_NOMEM, -1, "no memory for %d task vectors", n_mine);
    }
    if (n_mine > 0) {
      memcpy (msg, indices, 8 * (size_t) n_mine);
      memcpy (msg + 8 * (size_t) n_mine, vecs, 4 * (size_t) n_mine * (size_t) dim);
    }
    e = s_send_root (d, msg, n_mine * row, TAG_VECS, err);
    free (msg);
    if (!e)
      e = s_bcast (d, result, (dim + 1) * 4, "receiving rank 0's summed vector", err);
    if (!e && result[dim] != 0.0f)
      e = ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "rank 0 rejected the task vectors (its "
                        "error names the problem)");
  }
#endif
  if (!e)
    memcpy (sum, result, sizeof (float) * (size_t) dim);
  free (result);
  return e;
}

ra_err_t ra_dist_on_root (ra_dist_t *d, ra_dist_root_fn fn, void *ctx, ra_error_t *err)
{
  if (!d || !fn)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "on_root needs the dist state and a "
                         "function");
  s_status_t st;
  memset (&st, 0, sizeof st);
  if (d->rank == 0) {
    ra_error_t mine;
    ra_error_clear (&mine);
    st.code = (int32_t) fn (ctx, &mine);
    st.env_index = mine.env_index;
    memcpy (st.message, mine.message, sizeof st.message);
  }
#ifdef RA_HAVE_MPI
  if (d->size > 1) {
    ra_err_t e = s_bcast (d, &st, (int) sizeof st, d->rank == 0 ? "broadcasting rank 0's result" : "receiving rank 0's result", err);
    if (e)
      return e;
  }
#endif
  if (st.code == RA_OK)
    return RA_OK;
  st.message[sizeof st.message - 1] = '\0';
  ra_err_t code = st.code > RA_OK && st.code < RA_ERR_COUNT ? (ra_err_t) st.code : RA_ERR_INTERNAL;
  return ra_error_set (err, code, st.env_index, "%s", st.message);
}
