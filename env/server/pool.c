/*  env/server/pool.c - one mutex, a queue of jobs that still have ranges to hand out (groups take
    turns, s_enqueue), and a list of finished asynchronous jobs signalled through a pipe.

    Ranges are taken under the mutex together with the job they belong to, so a slow thread can
    never run a range of one job with another job's function. A worker keeps taking ranges until
    the queue is empty; quitting waits for the queue to drain. Cost per parallel job: one
    broadcast and a wake-up per worker (microseconds), which is why small batches run inline.  */
#include "env/server/pool.h"

#include <assert.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

struct ra_pool {
  int nworkers;
  pthread_t *threads;
  int started;
  pthread_mutex_t mu;
  pthread_cond_t wake;          /* workers: a job was queued, or quit */
  pthread_cond_t finished;      /* ra_pool_run's caller: a fork-join job completed */
  ra_pool_job_t *head;          /* jobs with ranges left to hand out, in tag order */
  uint64_t vtime;               /* the tag of the latest job that started */
  ra_pool_job_t *done_head, *done_tail;
  bool quit;
  int pipe_r, pipe_w;
};

static void s_range (const ra_pool_job_t *j, int r, int *i0, int *i1)
{
  /* Equal split; the first n % nranges ranges get one more. */
  int base = j->n / j->nranges, extra = j->n % j->nranges;
  *i0 = r * base + (r < extra ? r : extra);
  *i1 = *i0 + base + (r < extra ? 1 : 0);
}

/* Removes j from the queue (it has no ranges left). Called with mu held. */
static void s_unqueue (ra_pool_t *p, ra_pool_job_t *j)
{
  ra_pool_job_t **pp = &p->head;
  while (*pp && *pp != j)
    pp = &(*pp)->link;
  if (!*pp)
    return;
  *pp = j->link;
  j->link = NULL;
}

/* Takes the next range of j and runs it; returns with mu held. */
static void s_run_one (ra_pool_t *p, ra_pool_job_t *j)
{
  int r = j->next++;
  if (r == 0 && j->tag > p->vtime)
    p->vtime = j->tag;
  if (j->next == j->nranges)
    s_unqueue (p, j);
  int i0, i1;
  s_range (j, r, &i0, &i1);
  pthread_mutex_unlock (&p->mu);
  j->fn (j->ctx, i0, i1);
  pthread_mutex_lock (&p->mu);
  if (++j->done == j->nranges) {
    if (j->async) {
      j->link = NULL;
      if (p->done_tail)
        p->done_tail->link = j;
      else
        p->done_head = j;
      p->done_tail = j;
      char b = 1;
      ssize_t w = write (p->pipe_w, &b, 1);   /* full pipe: already readable, nothing lost */
      (void) w;
    } else {
      pthread_cond_broadcast (&p->finished);
    }
  }
}

static void *s_worker (void *arg)
{
  ra_pool_t *p = arg;
  pthread_mutex_lock (&p->mu);
  for (;;) {
    while (!p->quit && !p->head)
      pthread_cond_wait (&p->wake, &p->mu);
    if (!p->head)
      break;   /* quit, and nothing left to do */
    s_run_one (p, p->head);
  }
  pthread_mutex_unlock (&p->mu);
  return NULL;
}

ra_err_t ra_pool_new (int nworkers, ra_pool_t **out)
{
  *out = NULL;
  ra_pool_t *p = calloc (1, sizeof *p);
  if (!p)
    return RA_ERR_NOMEM;
  p->nworkers = nworkers < 0 ? 0 : nworkers;
  p->pipe_r = p->pipe_w = -1;
  pthread_mutex_init (&p->mu, NULL);
  pthread_cond_init (&p->wake, NULL);
  pthread_cond_init (&p->finished, NULL);
  int fds[2];
  if (pipe (fds) != 0)
    goto fail;
  p->pipe_r = fds[0];
  p->pipe_w = fds[1];
  for (int i = 0; i < 2; i++) {
    fcntl (fds[i], F_SETFL, fcntl (fds[i], F_GETFL) | O_NONBLOCK);
    fcntl (fds[i], F_SETFD, FD_CLOEXEC);
  }
  if (p->nworkers > 0) {
    p->threads = calloc ((size_t) p->nworkers, sizeof *p->threads);
    if (!p->threads)
      goto fail;
    for (int i = 0; i < p->nworkers; i++) {
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
  if (p->pipe_r >= 0)
    close (p->pipe_r);
  if (p->pipe_w >= 0)
    close (p->pipe_w);
  pthread_cond_destroy (&p->wake);
  pthread_cond_destroy (&p->finished);
  pthread_mutex_destroy (&p->mu);
  free (p);
  *pool_p = NULL;
}

int ra_pool_workers (const ra_pool_t *pool)
{
  return pool->started;
}

/* Queues j in its turn: start-time fair queueing over groups, every job costing one. Its tag is
   one past the last queued job of its group, or the tag of the latest job to start when its group
   has none queued; the queue stays in tag order, FIFO among equal tags (so a job whose ranges are
   being handed out stays at the head). Groups with jobs queued thus take turns, one job each: a
   new job waits for the jobs already started and at most one job of each other group, so a
   client key with hundreds of sessions stepping no longer makes another key's step wait for all
   of them, as plain FIFO did. Only when jobs start changes (results never depend on it:
   pool.h). O(queued jobs) per submit, at most one job per session. Called with mu held. */
static void s_enqueue (ra_pool_t *p, ra_pool_job_t *j)
{
  uint64_t tag = p->vtime;
  for (const ra_pool_job_t *q = p->head; q; q = q->link)
    if (q->group == j->group && q->tag >= tag)
      tag = q->tag + 1;
  j->tag = tag;
  ra_pool_job_t **pp = &p->head;
  while (*pp && (*pp)->tag <= tag)
    pp = &(*pp)->link;
  j->link = *pp;
  *pp = j;
  pthread_cond_broadcast (&p->wake);
}

void ra_pool_run (ra_pool_t *p, int n, int min_parallel, ra_pool_fn fn, void *ctx)
{
  if (n <= 0)
    return;
  if (n < min_parallel || p->started == 0) {
    fn (ctx, 0, n);
    return;
  }
  ra_pool_job_t j = { .fn = fn, .ctx = ctx, .n = n, .nranges = p->started + 1 };
  if (j.nranges > n)
    j.nranges = n;
  pthread_mutex_lock (&p->mu);
  s_enqueue (p, &j);
  while (j.next < j.nranges)
    s_run_one (p, &j);
  while (j.done < j.nranges)
    pthread_cond_wait (&p->finished, &p->mu);
  pthread_mutex_unlock (&p->mu);
}

void ra_pool_submit (ra_pool_t *p, ra_pool_job_t *j)
{
  assert (p->started > 0 && j->n > 0);
  j->nranges = p->started < j->n ? p->started : j->n;
  if (j->nranges < 1)
    j->nranges = 1;
  j->next = j->done = 0;
  j->async = true;
  pthread_mutex_lock (&p->mu);
  s_enqueue (p, j);
  pthread_mutex_unlock (&p->mu);
}

int ra_pool_done_fd (const ra_pool_t *p)
{
  return p->pipe_r;
}

void ra_pool_drain_fd (ra_pool_t *p)
{
  char buf[256];
  while (read (p->pipe_r, buf, sizeof buf) > 0) {
  }
}

ra_pool_job_t *ra_pool_take_done (ra_pool_t *p)
{
  pthread_mutex_lock (&p->mu);
  ra_pool_job_t *j = p->done_head;
  if (j) {
    p->done_head = j->link;
    if (!p->done_head)
      p->done_tail = NULL;
    j->link = NULL;
  }
  pthread_mutex_unlock (&p->mu);
  return j;
}
