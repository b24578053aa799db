/*  env/server/pool.h - a fork-join worker pool for stepping big batches (DESIGN.md section 5).

    ra_pool_run splits [0, n) into contiguous ranges and runs fn on them: the calling thread takes
    ranges too, and returns when every range is done. Small jobs (n < min_parallel) run inline on
    the caller, so a single env's round trip never pays for a thread wake-up.
    Which thread runs which range never changes results: the simulators guarantee that env i
    depends only on its own seed, task and actions (env/core/sim.h).
    Threading: one caller at a time (the server's socket thread); fn must be safe to run on
    disjoint ranges concurrently.                                                               */
#ifndef RA_ENV_SERVER_POOL_H
#define RA_ENV_SERVER_POOL_H

#include "protocol/err.h"

typedef struct ra_pool ra_pool_t;
typedef void (*ra_pool_fn) (void *ctx, int i0, int i1);

/* A pool of nthreads threads in all, the caller included: nthreads - 1 are started (nthreads
   <= 1: none, everything runs inline). RA_ERR_NOMEM or RA_ERR_INTERNAL if threads cannot be
   made; nothing is left running then. */
ra_err_t ra_pool_new (int nthreads, ra_pool_t **out);
/* Stops and joins the threads. Accepts NULL; NULLs the pointer. */
void ra_pool_destroy (ra_pool_t **pool_p);
/* Threads in all, the caller included. */
int ra_pool_threads (const ra_pool_t *pool);
/* Runs fn over [0, n) in up to ra_pool_threads ranges; inline when n < min_parallel. Blocks
   until all ranges are done. */
void ra_pool_run (ra_pool_t *pool, int n, int min_parallel, ra_pool_fn fn, void *ctx);

#endif
