/*  env/server/pool.h - the worker pool that steps big batches (docs/architecture.md sections 8 and 11).

    A job runs fn over [0, n) split into contiguous ranges, each range on whichever thread takes it.
    Two ways to run one:
      ra_pool_run     fork-join: the caller takes ranges too and returns when all are done (used
                      when handlers are called directly, and by tests);
      ra_pool_submit  asynchronous: returns at once; when the last range is done the job is put on
                      a done list and a byte is written to ra_pool_done_fd, so the server's socket
                      thread can poll for it and stay responsive meanwhile.
    Jobs from different sessions may run at the same time. Jobs wait in a queue where groups take
    turns (one job each per round, FIFO within a group), so a group with many jobs queued delays
    another group's job by at most one of its own. Which thread runs which range never
    changes results: the simulators guarantee that env i depends only on its own seed, task and
    actions (env/core/sim.h).
    Threading: ra_pool_run has one caller at a time; submit, take_done and run are called from one
    thread (the server's socket thread); fn must be safe on disjoint ranges concurrently.      */
#ifndef RA_ENV_SERVER_POOL_H
#define RA_ENV_SERVER_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

typedef struct ra_pool ra_pool_t;
typedef void (*ra_pool_fn) (void *ctx, int i0, int i1);

/* A job, owned by the caller; it must stay valid and untouched until it is done. */
typedef struct ra_pool_job ra_pool_job_t;
struct ra_pool_job {
  ra_pool_fn fn;
  void *ctx;
  int n;                                /* runs fn over [0, n) */
  void *user;                           /* for the caller, e.g. which session */
  uint64_t group;                       /* queued jobs of different groups take turns (the server:
                                           the client key); 0 for all when it does not matter */
  /* private to the pool */
  uint64_t tag;                         /* its turn (pool.c, s_enqueue) */
  int nranges, next, done;
  bool async;
  ra_pool_job_t *link;
};

/* A pool of nworkers background threads (0: no threads; everything runs inline on the caller).
   RA_ERR_NOMEM or RA_ERR_INTERNAL if it cannot be made; nothing is left running then. */
ra_err_t ra_pool_new (int nworkers, ra_pool_t **out);
/* Finishes every job already submitted, then stops and joins the threads. Accepts NULL; NULLs
   the pointer. */
void ra_pool_destroy (ra_pool_t **pool_p);
/* Background threads. */
int ra_pool_workers (const ra_pool_t *pool);

/* Fork-join: runs fn over [0, n) in up to workers + 1 ranges, the caller included; inline when
   n < min_parallel or there are no workers. Blocks until all ranges are done. */
void ra_pool_run (ra_pool_t *pool, int n, int min_parallel, ra_pool_fn fn, void *ctx);

/* Asynchronous: queues job (fn, ctx, n, user set by the caller) and returns. Requires workers. */
void ra_pool_submit (ra_pool_t *pool, ra_pool_job_t *job);
/* A file descriptor that becomes readable when a submitted job is done (read and discard its
   bytes, then call ra_pool_take_done until it returns NULL). */
int ra_pool_done_fd (const ra_pool_t *pool);
/* Reads what is pending on the done fd without blocking. */
void ra_pool_drain_fd (ra_pool_t *pool);
/* The next finished asynchronous job, or NULL. */
ra_pool_job_t *ra_pool_take_done (ra_pool_t *pool);

#endif
