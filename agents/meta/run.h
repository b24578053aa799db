/*  agents/meta/run.h - what recarena-meta's parts share (private to the binary, as
    agents/meta/opts.h): a run's state and the functions one part calls in another. The parts:
    agents/meta.c sets the run up (sources, policies, buffers, checkpoint settings) and holds main,
    agents/meta/iterate.c runs one meta-iteration of each algorithm, agents/meta/train.c the
    meta-training loop with its meta-validation, progress and metrics lines and checkpoints. */
#ifndef RA_AGENTS_META_RUN_H
#define RA_AGENTS_META_RUN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "agents/dist/dist.h"
#include "agents/meta/adapt.h"
#include "agents/meta/core.h"
#include "agents/meta/opts.h"
#include "agents/nn/nn.h"
#include "agents/policies/rollout.h"
#include "agents/policies/target.h"
#include "agents/policies/taskset.h"
#include "common/kv.h"
#include "protocol/client.h"

/* ------------------------------------------------------------------------------ sources */

/* A rollout source: the sims in this process, or a server's envs through a client (agents/meta.c). */
typedef struct {
  ra_client_t *c;               /* NULL: in-process */
  ra_client_env_t env;
  bool have_env;
  ra_rollout_t *src;
  ra_kv_t *config;              /* the make config (entries borrow opts' strings); freed at fini */
} source_t;

/* ------------------------------------------------------------------------------ the run */

typedef struct {
  const opts_t *o;
  ra_nn_backend_t *be;
  ra_taskset_t train, val;
  ra_meta_adapt_cfg_t ad;
  ra_target_cfg_t tc;           /* shapes, network, actor-critic settings (num_envs = N) */
  int N, P, V;                  /* envs per task, work replicas, val tasks (of the whole job) */
  ra_dist_t *d;                 /* the job's ranks (one without MPI) */
  int lo, Pl, vlo, Vl;          /* this rank's replicas lo .. lo+Pl-1 and val tasks vlo .. */
  int64_t *tidx;                /* [P] lo + r: the task index of local row r */
  ra_dist_pair_t *pmine, *pall; /* [8 V or P] pairs sent and gathered */
  ra_dist_pair_t *smine, *sall; /* [size] per-rank env step counts */
  size_t n;                     /* parameters per replica */
  source_t wsrc, vsrc, msrc;    /* work, val, multitask (inner of the task-set source) */
  ra_rollout_t *tsrc;           /* multitask: the task-set source over msrc */
  source_t tview;               /* distill: the work envs as the teacher observes them */
  ra_rollout_t *psrc;           /* distill: wsrc and tview stepped in pairs */
  ra_target_t *work, *valp, *mt, *one; /* one: a P = 1 policy for checkpoints */
  ra_target_t *teacher;         /* distill: one replica over the work envs */
  float *theta, *rows, *scratch, *g, *fit, *util;
  uint8_t *mask;
  int *idx;
  int64_t *ids;
  uint64_t *seeds;
  ra_meta_noise_t noise;
  ra_meta_adam_t adam;
  ra_nn_rng_t rng;
  int64_t env_steps;            /* this run's */
  double imitation;             /* distill: the last iteration's imitation loss, mean over its updates */
  int64_t steps_before;         /* env steps behind the checkpoint it continues (docs/meta.md 5) */
  FILE *metrics;                /* --metrics, appended (rank 0; NULL elsewhere or without it) */
  char address[1024];           /* this rank's --address endpoint, where opts' address points */
} run_t;

/* ------------------------------------------------------------ agents/meta/iterate.c */

/* SplitMix64's step: the hash every seed of the run is mixed through. */
uint64_t meta_mix (uint64_t x);

/* Env seeds of P blocks of N envs: seed of env e of block r from (seed, tag, a, r / share, e),
   so blocks r and r+1 get the same seeds when share is 2 (antithetic pairs: common users). */
void meta_seeds (uint64_t *s, int P, int N, uint64_t seed, uint64_t tag, uint64_t a, int share);

/* r->rows[p] = theta for the first P replicas (rows of r->n floats). */
void meta_tile (run_t *r, const float *theta, int P);

/* ES and ES-MAML: a population of antithetic members in place of a meta-batch of tasks. */
bool meta_es (const opts_t *o);

/* Multitask without the task context: its envs draw their own tasks through the task-set source
   (docs/meta.md 2.6). With the context it trains in blocks of one task each, distill's loop
   without a teacher. */
bool meta_task_draws (const opts_t *o);

/* The source the work policy trains on: the work envs, paired with the teacher's view for distill. */
ra_rollout_t *meta_work_src (const run_t *r);

/* One meta-iteration; *meta_return gets the iteration's training return. budget_frac: how far
   the lineage is through its env steps (Reptile's annealing). */
ra_err_t meta_iterate (run_t *r, int64_t it, double budget_frac, double *meta_return, ra_error_t *err);

/* -------------------------------------------------------------- agents/meta/train.c */

/* Where the meta-training loop stands. */
typedef struct {
  double t0, last;            /* its start and the last progress line (meta_now) */
  int64_t first, it;          /* the iteration it started at (a continued run numbers on), the current */
  double best;                /* the best val score so far (R@5w), at best_iter */
  int64_t best_iter;
  long long stale;            /* val points in a row without a better score (--patience) */
  const char *stopped;        /* why it ends: "budget", "iters" or "patience"; NULL: it goes on */
  double R[8];                /* the last val point's R@j */
  double mret;                /* the last iteration's meta-return */
} loop_t;

/* Seconds on the monotonic clock: the loop's timings, metrics and progress lines. */
double meta_now (void);

/* Meta-trains until the budget, --iters or --patience ends it, with a val point at the start
   (unless --val-at-start false), every --val-every iterations and at the end. */
int meta_train (run_t *r, loop_t *l);

/* The done line (docs/meta.md 5), with the checkpoint's path as a JSON string. */
void meta_write_done_line (const run_t *r, const loop_t *l);

/* The run's summary line on stdout (rank 0). */
void meta_print_summary (const run_t *r, const loop_t *l);

#endif
