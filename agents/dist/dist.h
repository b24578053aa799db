/*  agents/dist/dist.h - the few collective steps the meta learners need to run as one job over
    many processes (docs/scaling.md): who am I, how many are we, agree on everyone's ES fitness,
    and sum per-task vectors, every result bit-identical for 1, 2, 4 ... ranks.

    Built on MPI when CMake found it (RA_HAVE_MPI); otherwise a single-rank implementation with the
    same API and the same arithmetic, so a program written against it runs unchanged either way.

    Determinism: nothing here lets the number of ranks change a bit of a result. Pairs come back
    ordered by index. Sums are taken in task-index order, sum = ((v_0 + v_1) + v_2) + ..., by one
    rank (rank 0) on the gathered vectors and then copied to every rank, never with a
    reduction whose association depends on the rank count (docs/scaling.md section 2).

    Dead or stuck ranks: every wait has the deadline given to ra_dist_new. Rank 0 gathers from each
    rank by name, so when one never sends, the error says which ("rank 3 sent nothing ... within
    60 s"); the others report that rank 0's result did not arrive. The program then calls
    ra_dist_abort, which ends every rank of the job. A rank killed outright is also noticed by
    mpirun, which ends the job and names it.

    Ownership: a ra_dist_t owns its duplicate of MPI_COMM_WORLD and, if it initialised MPI, the
    MPI library (finalised by ra_dist_destroy). Threading: call from one thread only (MPI is
    initialised at MPI_THREAD_FUNNELED); other threads may compute meanwhile.                   */
#ifndef RA_AGENTS_DIST_H
#define RA_AGENTS_DIST_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ra_dist ra_dist_t;

/* One ES population member's result: its noise index and its fitness. */
typedef struct {
  int64_t index;
  double fitness;
} ra_dist_pair_t;

/* Default deadline of a collective step, in seconds: long enough for the slowest rank's work
   between two steps (a meta-iteration), short enough that a lost rank does not stall a job. */
#define RA_DIST_DEFAULT_DEADLINE_S 300.0

/* True when built with MPI. */
bool ra_dist_have_mpi (void);

/* Joins the job: MPI_Init_thread when an MPI launcher started the process (its environment has
   OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_RANK or PMI_SIZE) and MPI is not initialised yet; the
   job MPI_COMM_WORLD when MPI is initialised; otherwise a job of one rank that never calls MPI.
   argc/argv may be NULL.
   deadline_s > 0 bounds every wait; <= 0 takes RA_DIST_DEFAULT_DEADLINE_S. */
ra_err_t ra_dist_new (int *argc, char ***argv, double deadline_s, ra_dist_t **out,
                      ra_error_t *err);
/* Leaves the job (MPI_Finalize if ra_dist_new initialised MPI) and sets *d to NULL. Every rank
   must call it; NULL and *d == NULL are fine. */
void ra_dist_destroy (ra_dist_t **d);

int ra_dist_rank (const ra_dist_t *d);
int ra_dist_size (const ra_dist_t *d);
/* True on rank 0, the one rank that writes logs, metrics and checkpoints. */
bool ra_dist_is_root (const ra_dist_t *d);

/* This rank's contiguous share [*lo, *hi) of n items (population members, tasks): near-equal
   slices, the first n % size ranks one item more. */
void ra_dist_slice (const ra_dist_t *d, int64_t n, int64_t *lo, int64_t *hi);

/* Every rank passes its n_mine pairs; every rank gets all n_all of them in all[], ordered so that
   all[i].index == i. The pairs of all ranks must hold each index 0 .. n_all-1 exactly once
   (BAD_REQUEST naming the offending index otherwise, on every rank). Collective. */
ra_err_t ra_dist_allgather_pairs (ra_dist_t *d, const ra_dist_pair_t *mine, int n_mine,
                                  ra_dist_pair_t *all, int n_all, ra_error_t *err);

/* Every rank passes n_mine vectors of dim floats (row-major, vecs[r * dim + j]) for the tasks
   indices[r]; every rank gets in sum[dim] the sum over all n_all tasks taken in index order,
   sum = ((v_0 + v_1) + v_2) + ... + v_{n_all-1}, bit-identical whatever the number of ranks.
   Indices must cover 0 .. n_all-1 exactly once over all ranks. Rank 0 holds all n_all * dim
   floats while it sums. Collective. */
ra_err_t ra_dist_sum_ordered (ra_dist_t *d, const int64_t *indices, const float *vecs,
                              int n_mine, int dim, int n_all, float *sum, ra_error_t *err);

/* Runs fn(ctx, err) on rank 0 only (a checkpoint or a metrics line) and returns its result on
   every rank, error message included, so that a failure there stops every rank alike instead of
   leaving them waiting for rank 0. Collective. */
typedef ra_err_t (*ra_dist_root_fn) (void *ctx, ra_error_t *err);
ra_err_t ra_dist_on_root (ra_dist_t *d, ra_dist_root_fn fn, void *ctx, ra_error_t *err);

/* Payload bytes this rank has sent and received through this module since ra_dist_new (message
   contents as the algorithm specifies them: rank 0's gather and the broadcast of the result;
   MPI's own headers and tree forwarding not counted). */
void ra_dist_bytes (const ra_dist_t *d, uint64_t *sent, uint64_t *received);

/* Ends the whole job with exit code code (MPI_Abort) after a failure that leaves the ranks out of
   step (a collective failed). Without MPI, or when size is 1, it returns and the caller exits. */
void ra_dist_abort (ra_dist_t *d, int code);

#ifdef __cplusplus
}
#endif

#endif
