/*  env/server/pool.c - fork-join pool: one job at a time, ranges handed out under one mutex.

    A job is (fn, ctx, n, nranges). Workers and the caller take range indices under the mutex and
    read the job's fields at the same time, so a slow worker can never run a range of one job with
    another job's function. The next job is posted only after every range of the previous one is
    done. Cost per parallel job: one broadcast plus a condition-variable wait (a few microseconds),
    which is why small batches run inline.                                                       */
#include "env/server/pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct ra_pool {
  int nthreads;                 /* including the caller */
  pthread_t *threads;           /* nthreads - 1 */
  int started;                  /* threads actually started */
  pthread_mutex_t mu;
  pthread_cond_t wake;          /* workers: a new job or quit */
  pthread_cond_t finished;      /* caller: all ranges done */
  unsigned long generation;     /* bumped per job */
  bool quit;
  ra_pool_fn fn;
  void *ctx;
  int n, nranges;
  int next;                     /* next range index to hand out */
  int done;                     /* ranges finished */
};

static void s_range (const ra_pool_t *p, int r, int *i0, int *i1)
{
  /* Equal split; the first n % nranges ranges get one more. */
  int base = p->n / p->nranges, extra = p->n % p->nranges;
  *i0 = r * base + (r < extra ? r : extra);
  *i1 = *i0 + base + (r < extra ? 1 : 0);
}

/* Takes and runs ranges until none is left. Called and returns with p->mu held. */
static void s_work (ra_pool_t *p)
{
  while (p->next < p->nranges) {
    int r = p->next++;
    ra_pool_fn fn = p->fn;
    void *ctx = p->ctx;
    int i0, i1;
    s_range (p, r, &i0, &i1);
    pthread_mutex_unlock (&p->mu);
    fn (ctx, i0, i1);
    pthread_mutex_lock (&p->mu);
    if (++p->done == p->nranges)
      pthread_cond_signal (&p->finished);
  }
}

static void *s_worker (void *arg)
{
  ra_pool_t *p = arg;
  unsigned long seen = 0;
  pthread_mutex_lock (&p->mu);
  for (;;) {
    while (!p->quit && p->generation == seen)
      pthread_cond_wait (&p->wake, &p->mu);
    if (p->quit)
      break;
    seen = p->generation;
    s_work (p);
  }
  pthread_mutex_unlock (&p->mu);
  return NULL;
}

ra_err_t ra_pool_new (int nthreads, ra_pool_t **out)
{
  *out = NULL;
  ra_pool_t *p = calloc (1, sizeof *p);
  if (!p)
    return RA_ERR_NOMEM;
  p->nthreads = nthreads < 1 ? 1 : nthreads;
  pthread_mutex_init (&p->mu, NULL);
  pthread_cond_init (&p->wake, NULL);
  pthread_cond_init (&p->finished, NULL);
  if (p->nthreads > 1) {
    p->threads = calloc ((size_t) p->nthreads - 1, sizeof *p->threads);
    if (!p->threads)
      goto fail;
    for (int i = 0; i < p->nthreads - 1; i++) {
      if (pthread_create (&p->threads[i], NULL, s_worker, p) != 0)
        goto fail;
      p->started++;
    }
  }
  *out = p;
  return RA_OK;
fail:
  ra_pool_destroy (&p);
  return RA_ERR_INTERNAL;
}

void ra_pool_destroy (ra_pool_t **pool_p)
{
  ra_pool_t *p = *pool_p;
  if (!p)
    return;
  pthread_mutex_lock (&p->mu);
  p->quit = true;
  pthread_cond_broadcast (&p->wake);
  pthread_mutex_unlock (&p->mu);
  for (int i = 0; i < p->started; i++)
    pthread_join (p->threads[i], NULL);
  free (p->threads);
  pthread_cond_destroy (&p->wake);
  pthread_cond_destroy (&p->finished);
  pthread_mutex_destroy (&p->mu);
  free (p);
  *pool_p = NULL;
}

int ra_pool_threads (const ra_pool_t *pool)
{
  return pool->nthreads;
}

void ra_pool_run (ra_pool_t *p, int n, int min_parallel, ra_pool_fn fn, void *ctx)
{
  if (n <= 0)
    return;
  int nranges = p->started + 1;
  if (nranges > n)
    nranges = n;
  if (n < min_parallel || nranges <= 1) {
    fn (ctx, 0, n);
    return;
  }
  pthread_mutex_lock (&p->mu);
  p->fn = fn;
  p->ctx = ctx;
  p->n = n;
  p->nranges = nranges;
  p->next = 0;
  p->done = 0;
  p->generation++;
  pthread_cond_broadcast (&p->wake);
  s_work (p);
  while (p->done < p->nranges)
    pthread_cond_wait (&p->finished, &p->mu);
  pthread_mutex_unlock (&p->mu);
}
