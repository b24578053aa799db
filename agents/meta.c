/*  agents/meta.c - recarena-meta: meta-trains an initialisation of the target policy over a set
    of train tasks and keeps the one that adapts best on the val tasks (docs/meta.md). Algorithms:
    reptile, fomaml, es, es-maml (agents/meta/core.h for the update math, agents/meta/adapt.h
    for the adaptation operator), distill (a student imitating a teacher that sees more of the
    same envs, through a paired source) and multitask, the pretrain-then-fine-tune ablation that
    trains through the same task-set source as recarena-target --task SET (with --context, in
    blocks of one task each: distill's loop without a teacher).

    Envs: in-process rollout sources (the sims stepped in this process) unless --address names a
    server (one for every rank, or a comma-separated list of one per rank). A work policy of P
    replicas acts on P blocks of --envs-per-task envs, block r on task r of the meta-batch
    (set_task with masks: one batch holds every task of the iteration).

    Command line and metrics: the contract in docs/meta.md section 5 (flags, `key = value` config
    files, JSONL lines, exit codes 0 / 1 runtime / 2 bad command line); the flags are read in
    agents/meta/opts.c, the checks that need a checkpoint, the sims or the rank count are main's
    steps here.

    Ranks (docs/scaling.md 5): under mpirun every rank runs its own sources and evaluates its
    slice of the ES population, of the meta-batch (multitask: of its blocks of envs) and of the
    val tasks (agents/dist); the ranks exchange (index, fitness) pairs or per-task vectors summed
    in task order, so every rank applies the same update and the result does not depend on the
    rank count. Rank 0 alone writes metrics, progress and checkpoints.                         */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agents/dist/dist.h"
#include "agents/meta/adapt.h"
#include "agents/meta/core.h"
#include "agents/meta/opts.h"
#include "agents/nn/nn.h"
#include "agents/outpath.h"
#include "agents/policies/rollout_inproc.h"
#include "agents/policies/rollout_paired.h"
#include "agents/policies/rollout_tasks.h"
#include "agents/policies/target.h"
#include "agents/policies/taskset.h"
#include "common/kv.h"
#include "protocol/client.h"

/* --address: one endpoint for every rank, or a comma-separated list of exactly one per rank
   (rank k connects to the k-th: a server per rank or per node, docs/scaling.md 5). Writes this
   rank's endpoint into out. 0, or -1 after a message naming the flag and the rank count. */
static int s_rank_address (const char *list, int rank, int size, char *out, size_t cap)
{
  int n = 1;
  for (const char *p = list; *p; p++)
    n += *p == ',';
  if (n == 1) {
    if (strlen (list) >= cap) {
      meta_err ("--address: longer than %zu characters\n", cap - 1);
      return -1;
    }
    strcpy (out, list);
    return 0;
  }
  if (n != size) {
    meta_err ("--address: %d endpoints for %d rank%s; give one endpoint (every rank uses it) or "
           "exactly one per rank, comma-separated (rank k uses the k-th)\n", n, size,
           size == 1 ? "" : "s");
    return -1;
  }
  const char *p = list;
  for (int k = 0; k < n; k++) {
    const char *e = strchr (p, ',');
    size_t len = e ? (size_t) (e - p) : strlen (p);
    if (len == 0) {
      meta_err ("--address: endpoint %d of %d is empty; expected one endpoint per rank, "
             "comma-separated\n", k, n);
      return -1;
    }
    if (k == rank) {
      if (len >= cap) {
        meta_err ("--address: endpoint %d is longer than %zu characters\n", k, cap - 1);
        return -1;
      }
      memcpy (out, p, len);
      out[len] = 0;
    }
    p = e ? e + 1 : p + len;
  }
  return 0;
}

static double s_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t s_mix (uint64_t x)
{
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* Env seeds of P blocks of N envs: seed of env e of block r from (seed, tag, a, r / share, e),
   so blocks r and r+1 get the same seeds when share is 2 (antithetic pairs: common users). */
static void s_seeds (uint64_t *s, int P, int N, uint64_t seed, uint64_t tag, uint64_t a, int share)
{
  for (int r = 0; r < P; r++)
    for (int e = 0; e < N; e++)
      s[(size_t) r * N + e] = s_mix (s_mix (s_mix (s_mix (seed ^ tag) + a) + (uint64_t) (r / share)) + (uint64_t) e);
}

/* ------------------------------------------------------------------------------ sources */

typedef struct {
  ra_client_t *c;               /* NULL: in-process */
  ra_client_env_t env;
  bool have_env;
  ra_rollout_t *src;
  ra_kv_t *config;              /* the make config (entries borrow opts' strings); freed at fini */
} source_t;

/* more: config entries after --sim-config's (the teacher's view), or NULL */
static ra_err_t s_source (const opts_t *o, const ra_kv_list_t *more, int n, int slots, uint64_t seed, source_t *s,
                          ra_error_t *err)
{
  /* the --sim-config entries and more's, then task_slots unless they name it */
  int ns = o->sim_config.n, nc = ns + (more ? more->n : 0);
  ra_kv_t *kv = s->config = calloc ((size_t) nc + 1, sizeof *kv);
  if (!kv)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "sim config of %d entries: out of memory", nc);
  bool named = false;
  for (int q = 0; q < nc; q++) {
    kv[q] = q < ns ? o->sim_config.items[q] : more->items[q - ns];
    named |= !strcmp (kv[q].key, "task_slots");
  }
  if (!named)
    kv[nc++] = (ra_kv_t) { .key = "task_slots", .type = RA_KV_NUM, .num = slots > 4096 ? 4096 : slots };
  ra_err_t rc;
  if (!o->address) {
    ra_rollout_inproc_opts_t io = { .env = o->env, .num_envs = n, .seed = seed, .config = kv,
                                    .n_config = nc, .workers = (int) o->workers - 1 };
    return ra_rollout_inproc_new (&io, &s->src, err);
  }
  rc = ra_client_new (o->address, 0, &s->c, err);
  ra_make_opts_t mo = { .has_seed = true, .seed = seed, .config = kv, .n_config = nc, .autoreset = "same_step" };
  if (rc == RA_OK && (rc = ra_client_make (s->c, o->env, n, &mo, &s->env, err)) == RA_OK)
    s->have_env = true;
  if (rc == RA_OK)
    rc = ra_rollout_protocol_new (s->c, &s->env, &s->src, err);
  return rc;
}

static void s_source_fini (source_t *s)
{
  ra_rollout_destroy (&s->src);
  if (s->have_env) {
    ra_error_t e;
    ra_client_close (s->c, &s->env, &e);
    ra_client_env_fini (&s->env);
  }
  ra_client_destroy (&s->c);
  free (s->config);
  s->config = NULL;
}

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

/* Draws B distinct train tasks when the set has that many (a partial shuffle), else with
   replacement. */
static void s_draw_tasks (run_t *r, int B, int64_t *out)
{
  int n = r->train.n;
  if (n >= B) {
    for (int b = 0; b < B; b++) {
      for (;;) {
        int64_t id = r->train.ids[ra_nn_rng_u64 (&r->rng) % (uint64_t) n];
        bool dup = false;
        for (int q = 0; q < b; q++)
          dup |= out[q] == id;
        if (!dup) {
          out[b] = id;
          break;
        }
      }
    }
  } else {
    for (int b = 0; b < B; b++)
      out[b] = r->train.ids[ra_nn_rng_u64 (&r->rng) % (uint64_t) n];
  }
}

static void s_tile (run_t *r, const float *theta, int P)
{
  for (int p = 0; p < P; p++)
    memcpy (r->rows + (size_t) p * r->n, theta, r->n * sizeof (float));
}

/* Meta-validation: R@j = return on fixed fresh episodes after j inner updates (j = 0..7), slates
   sampled at the policy's temperature (--val-act sample, from fixed streams) or top-k, mean over
   the val tasks (docs/meta.md 3). */
static ra_err_t s_validate (run_t *r, double R[8], ra_error_t *err)
{
  int V = r->V, N = r->N, Vl = r->Vl, vlo = r->vlo;
  s_tile (r, r->theta, Vl);
  ra_meta_adapt_cfg_t a0 = r->ad;
  a0.steps = 0;
  a0.inner_lr = (float) r->o->val_inner_lr;
  /* seeds of all V tasks, then this rank's share of them: task v's seeds whatever the rank */
  uint64_t *es = r->seeds, *as = r->seeds + (size_t) V * N;
  s_seeds (es, V, N, (uint64_t) r->o->seed, 0xe7a1, 0, 1);
  const uint64_t *esl = es + (size_t) vlo * N, *asl = as + (size_t) vlo * N;
  double ret[4096];
  ra_err_t rc = RA_OK;
  for (int j = 0; rc == RA_OK && j < 8; j++) {
    if (j == 0) {
      s_seeds (as, V, N, (uint64_t) r->o->seed, 0xada, 0, 1);
      /* the same sampling streams at every validation: comparable R@j */
      rc = ra_meta_adapt_at (r->valp, vlo, r->rows, r->o->val_head_only ? r->mask : NULL, r->vsrc.src, &a0, asl,
                             s_mix ((uint64_t) r->o->seed ^ 0xe7a1), NULL, r->scratch, err);
    } else {
      s_seeds (as, V, N, (uint64_t) r->o->seed, 0xada, (uint64_t) j, 1);
      rc = ra_target_begin_rollout (r->valp, r->vsrc.src, asl, err);
      if (rc == RA_OK)
        rc = ra_meta_adapt_more (r->valp, r->rows, r->o->val_head_only ? r->mask : NULL, r->vsrc.src,
                                 NULL, r->scratch, err);
    }
    if (rc == RA_OK) /* sampled: val task v draws from stream 1 + v, the same at every j */
      rc = ra_meta_evaluate_as (r->valp, r->vsrc.src, esl, 100000, r->o->val_act, vlo,
                                s_mix ((uint64_t) r->o->seed ^ 0x5a3e), ret, NULL, err);
    for (int v = 0; rc == RA_OK && v < Vl; v++)
      r->pmine[j * Vl + v] = (ra_dist_pair_t) { .index = (int64_t) j * V + vlo + v, .fitness = ret[v] };
  }
  /* every rank's error stops the job (main), so reaching the gather means all got here */
  if (rc == RA_OK)
    rc = ra_dist_allgather_pairs (r->d, r->pmine, 8 * Vl, r->pall, 8 * V, err);
  for (int j = 0; rc == RA_OK && j < 8; j++) {
    double s = 0;
    for (int v = 0; v < V; v++) /* task order: the same sum on every rank */
      s += r->pall[j * V + v].fitness;
    R[j] = s / V;
  }
  return rc;
}

/* s_rank_gather: r->sall[k] = rank k's mine. s_rank_sum: *total = the sum of every rank's mine in
   rank order. s_total_steps: the whole job's env steps (exact in a double below 2^53), so every
   rank sees the same budget and stops at the same iteration. */
static ra_err_t s_rank_gather (run_t *r, double mine, ra_error_t *err)
{
  r->smine[0] = (ra_dist_pair_t) { .index = ra_dist_rank (r->d), .fitness = mine };
  return ra_dist_allgather_pairs (r->d, r->smine, 1, r->sall, ra_dist_size (r->d), err);
}

static ra_err_t s_rank_sum (run_t *r, double mine, double *total, ra_error_t *err)
{
  int n = ra_dist_size (r->d);
  ra_err_t rc = s_rank_gather (r, mine, err);
  if (rc != RA_OK)
    return rc;
  double t = 0;
  for (int k = 0; k < n; k++)
    t += r->sall[k].fitness;
  *total = t;
  return RA_OK;
}

static ra_err_t s_total_steps (run_t *r, int64_t mine, int64_t *total, ra_error_t *err)
{
  double t = 0;
  ra_err_t rc = s_rank_sum (r, (double) mine, &t, err);
  *total = (int64_t) t;
  return rc;
}

/* The job's env steps (into st->env_steps), the adaptation rollouts' return sum and episode count
   (metrics: their last bits may move with the rank count, the parameters do not). */
static ra_err_t s_job_stats (run_t *r, ra_target_stats_t *st, double *ret_sum, double *episodes,
                             ra_error_t *err)
{
  ra_err_t rc = s_total_steps (r, st->env_steps, &st->env_steps, err);
  if (rc == RA_OK)
    rc = s_rank_sum (r, st->return_sum, ret_sum, err);
  if (rc == RA_OK)
    rc = s_rank_sum (r, (double) st->episodes, episodes, err);
  return rc;
}

/* Multitask (docs/meta.md 2.6): k data-parallel actor-critic updates of theta. The B*N envs are
   B blocks of N, block b played by a replica holding theta (rank k plays its blocks lo ..
   lo+Pl-1); each block's gradient of its own actor-critic loss is summed over the blocks in block
   order, so g = -(1/B) sum_b grad_b, clipped to the target's clip norm, one Adam step. */
static ra_err_t s_multitask (run_t *r, double *meta_return, ra_error_t *err)
{
  const opts_t *o = r->o;
  int P = r->P, Pl = r->Pl;
  ra_target_stats_t st = { 0 };
  ra_err_t rc = RA_OK;
  for (int u = 0; rc == RA_OK && u < (o->inner_steps > 0 ? o->inner_steps : 1); u++) {
    s_tile (r, r->theta, Pl);
    ra_target_set_params (r->mt, r->rows);
    /* the replicas' own optimiser has lr 0: the step it takes leaves theta as it is */
    rc = ra_target_train_rollout (r->mt, r->tsrc, &st, err);
    if (rc == RA_OK) {
      ra_nn_download (r->be, r->rows, ra_target_params (r->mt)->grad, r->n * (size_t) Pl);
      rc = ra_dist_sum_ordered (r->d, r->tidx + r->lo, r->rows, Pl, (int) r->n, P, r->g, err);
    }
    if (rc != RA_OK)
      break;
    double sq = 0;
    for (size_t j = 0; j < r->n; j++) {
      r->g[j] = -(r->g[j] / (float) P);
      sq += (double) r->g[j] * r->g[j];
    }
    float clip = r->tc.clip_norm;
    if (clip > 0 && sq > (double) clip * clip) {
      float f = (float) (clip / sqrt (sq));
      for (size_t j = 0; j < r->n; j++)
        r->g[j] *= f;
    }
    ra_meta_adam_ascend (&r->adam, r->theta, r->g);
  }
  double ret_sum = 0, episodes = 0;
  if (rc == RA_OK)
    rc = s_job_stats (r, &st, &ret_sum, &episodes, err);
  if (rc != RA_OK)
    return rc;
  r->env_steps += st.env_steps;
  *meta_return = episodes > 0 ? ret_sum / episodes : NAN;
  return RA_OK;
}

/* The source the work policy trains on: the work envs, paired with the teacher's view for distill. */
static ra_rollout_t *s_work_src (const run_t *r)
{
  return r->psrc ? r->psrc : r->wsrc.src;
}

/* ES and ES-MAML: a population of antithetic members in place of a meta-batch of tasks. */
static bool s_es (const opts_t *o)
{
  return o->algo == A_ES || o->algo == A_ESMAML;
}

/* Multitask without the task context: its envs draw their own tasks through the task-set source
   (docs/meta.md 2.6). With the context it trains in blocks of one task each, distill's loop
   without a teacher. */
static bool s_task_draws (const opts_t *o)
{
  return o->algo == A_MULTITASK && o->context <= 0;
}

/* Distill and multitask with the task context step theta after every block rollout (s_distill)
   instead of once per iteration from the summed block rows. */
static bool s_steps_per_rollout (const opts_t *o)
{
  return o->algo == A_DISTILL || (o->algo == A_MULTITASK && !s_task_draws (o));
}

/* Distill (docs/meta.md 2.8), and multitask with the task context (2.6: the same loop without a
   teacher): block b plays its task for k rollouts (--inner-steps) of T steps; after each, the
   blocks' gradients (actor-critic plus the teacher's imitation, T16, each clipped) are summed in
   task order and theta takes one AdamW step, g = -(1/B) sum_b grad_b, which every block then
   plays on: its task's context goes on filling across the k rollouts. The blocks' own optimiser
   has lr 0, so only the outer step moves theta. */
static ra_err_t s_distill (run_t *r, const uint64_t *seeds, uint64_t rng_seed, ra_target_stats_t *st,
                           ra_error_t *err)
{
  int k = r->o->inner_steps > 0 ? (int) r->o->inner_steps : 1, Pl = r->Pl, P = r->P;
  ra_meta_adapt_cfg_t a = r->ad;
  a.steps = 0;
  a.inner_lr = 0;
  ra_rollout_t *src = s_work_src (r);
  ra_err_t rc = ra_meta_adapt_at (r->work, r->lo, r->rows, NULL, src, &a, seeds, rng_seed, st, NULL, err);
  for (int u = 0; rc == RA_OK && u < k; u++) {
    if (u > 0) {
      s_tile (r, r->theta, Pl);
      ra_target_set_params (r->work, r->rows);
    }
    rc = ra_target_train_rollout (r->work, src, st, err);
    if (rc != RA_OK)
      break;
    ra_nn_download (r->be, r->rows, ra_target_params (r->work)->grad, r->n * (size_t) Pl);
    rc = ra_dist_sum_ordered (r->d, r->tidx + r->lo, r->rows, Pl, (int) r->n, P, r->g, err);
    if (rc != RA_OK)
      break;
    for (size_t j = 0; j < r->n; j++) /* the mask: with --adapt-params head, the rest of theta stays */
      r->g[j] = r->mask[j] ? -(r->g[j] / (float) P) : 0.0f;
    ra_meta_adam_ascend (&r->adam, r->theta, r->g);
  }
  double im = 0;
  if (rc == RA_OK)
    rc = s_rank_sum (r, st->imitation_sum, &im, err);
  r->imitation = im / ((double) P * k);
  return rc;
}

/* One meta-iteration; *meta_return gets the iteration's training return. budget_frac: how far
   the lineage is through its env steps (Reptile's annealing). */
static ra_err_t s_iterate (run_t *r, int64_t it, double budget_frac, double *meta_return, ra_error_t *err)
{
  const opts_t *o = r->o;
  int N = r->N, P = r->P, B = (int) o->meta_batch;
  ra_target_stats_t st = { 0 };
  ra_err_t rc = RA_OK;
  const uint8_t *mask = o->head_only ? r->mask : NULL;
  if (s_task_draws (o))
    return s_multitask (r, meta_return, err);
  bool es = s_es (o);
  int tasks_n = es ? (B < P / 2 ? B : P / 2) : P;
  s_draw_tasks (r, tasks_n, r->ids);   /* the same draw on every rank */
  int lo = r->lo, Pl = r->Pl;
  int64_t blk[RA_TARGET_MAX_POPULATION];
  for (int p = 0; p < Pl; p++)
    blk[p] = es ? r->ids[((lo + p) / 2) % tasks_n] : r->ids[lo + p];
  ra_rollout_t *src = s_work_src (r);
  if ((rc = ra_meta_set_block_tasks (src, Pl, N, r->train.split, blk, err)) != RA_OK)
    return rc;
  /* env seeds of all P blocks, of which this rank plays blocks lo .. lo+Pl-1 */
  const uint64_t *seeds = r->seeds + (size_t) lo * N;
  uint64_t rng_seed = s_mix ((uint64_t) o->seed + (uint64_t) it);
  if (!es) {
    s_tile (r, r->theta, Pl);
    s_seeds (r->seeds, P, N, (uint64_t) o->seed, 0x7a1, (uint64_t) it, 1);
    if (s_steps_per_rollout (o))
      rc = s_distill (r, seeds, rng_seed, &st, err);
    else
      rc = ra_meta_adapt_at (r->work, lo, r->rows, mask, src, &r->ad, seeds, rng_seed, &st, r->scratch, err);
    if (rc == RA_OK && o->algo == A_REPTILE) { /* rows: the deltas phi_b - theta */
      ra_target_get_params (r->work, r->rows);
      for (int p = 0; p < Pl; p++)
        for (size_t j = 0; j < r->n; j++)
          r->rows[(size_t) p * r->n + j] -= r->theta[j];
    } else if (rc == RA_OK && o->algo == A_FOMAML) { /* the gradient at phi on a fresh query rollout */
      for (int p = 0; p < Pl; p++)
        ra_target_set_lr (r->work, p, 0.0f);
      ra_target_stats_t q = { 0 };
      rc = ra_target_train_rollout (r->work, src, &q, err);
      st.env_steps += q.env_steps;
      ra_nn_params_t *pp = ra_target_params (r->work);
      ra_nn_download (r->be, r->rows, pp->grad, r->n * (size_t) Pl);
    }
    /* the sum over the B tasks in task order, whatever the rank count (docs/scaling.md 2); distill
       and multitask with the context have taken their steps */
    if (rc == RA_OK && !s_steps_per_rollout (o))
      rc = ra_dist_sum_ordered (r->d, r->tidx + lo, r->rows, Pl, (int) r->n, P, r->g, err);
    /* the adaptation rollouts' mean return over the job */
    double ret_sum = 0, episodes = 0;
    if (rc == RA_OK)
      rc = s_job_stats (r, &st, &ret_sum, &episodes, err);
    if (rc != RA_OK)
      return rc;
    if (o->algo == A_REPTILE) { /* theta += eps (1/B) sum_b (phi_b - theta), docs/meta.md 2.1 */
      float eps = (float) (o->outer_lr * fmax (0.0, 1.0 - budget_frac));
      for (size_t j = 0; j < r->n; j++)
        r->theta[j] += eps * (r->g[j] / (float) P);
    } else if (o->algo == A_FOMAML) { /* ascend the negated mean gradient, docs/meta.md 2.2 */
      for (size_t j = 0; j < r->n; j++)
        r->g[j] = -(r->g[j] / (float) P);
      ra_meta_adam_ascend (&r->adam, r->theta, r->g);
    }
    r->env_steps += st.env_steps;
    *meta_return = episodes > 0 ? ret_sum / episodes : NAN;
    return RA_OK;
  }
  /* ES and ES-MAML: antithetic members, pairs on one task with common env seeds */
  for (int m = 0; m < Pl; m++)
    ra_meta_perturb (&r->noise, (uint64_t) it, lo + m, r->theta, r->n, (float) o->sigma, r->rows + (size_t) m * r->n);
  if (o->algo == A_ESMAML) {
    s_seeds (r->seeds, P, N, (uint64_t) o->seed, 0x7a2, (uint64_t) it, 2);
    rc = ra_meta_adapt_at (r->work, lo, r->rows, mask, r->wsrc.src, &r->ad, seeds, rng_seed, &st, r->scratch, err);
  } else {
    ra_target_set_params (r->work, r->rows);
    ra_target_reset_context (r->work); /* each member's fitness from its own feedback (T8) */
  }
  double ret[RA_TARGET_MAX_POPULATION];
  s_seeds (r->seeds, P, N, (uint64_t) o->seed, 0x7a3, (uint64_t) it, 2);
  int64_t eval_steps = 0, eval_len = 0;
  if (rc == RA_OK)
    rc = ra_meta_evaluate (r->work, r->wsrc.src, seeds, 100000, ret, &eval_steps, err);
  /* The evaluation steps all of a rank's envs until its last first episode ends, so a rank whose
     episodes end sooner plays fewer steps. The budget counts what one process stepping all P N
     envs plays: the longest rank's loop length times P N, the same for any rank count. */
  if (rc == RA_OK)
    rc = s_rank_gather (r, (double) (eval_steps / ((int64_t) Pl * N)), err);
  for (int k = 0; rc == RA_OK && k < ra_dist_size (r->d); k++)
    if ((int64_t) r->sall[k].fitness > eval_len)
      eval_len = (int64_t) r->sall[k].fitness;
  for (int m = 0; rc == RA_OK && m < Pl; m++)
    r->pmine[m] = (ra_dist_pair_t) { .index = lo + m, .fitness = ret[m] };
  /* only (member, fitness) pairs travel; every rank rebuilds the update from the noise table */
  if (rc == RA_OK)
    rc = ra_dist_allgather_pairs (r->d, r->pmine, Pl, r->pall, P, err);
  if (rc == RA_OK)
    rc = s_total_steps (r, st.env_steps, &st.env_steps, err);
  if (rc != RA_OK)
    return rc;
  st.env_steps += eval_len * P * N;
  double s = 0;
  for (int m = 0; m < P; m++) {
    r->fit[m] = (float) r->pall[m].fitness;
    s += r->pall[m].fitness;
  }
  ra_meta_centered_ranks (r->fit, P, r->idx, r->util);
  ra_meta_es_grad (&r->noise, (uint64_t) it, r->util, P, r->n, (float) o->sigma, r->g);
  ra_meta_adam_ascend (&r->adam, r->theta, r->g);
  r->env_steps += st.env_steps;
  *meta_return = s / P;
  return RA_OK;
}

static bool s_finite (const float *x, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (!isfinite (x[i]))
      return false;
  return true;
}

static void s_fmt_time (double s, char *buf, size_t cap)
{
  if (!isfinite (s) || s < 0)
    snprintf (buf, cap, "?");
  else if (s >= 3600)
    snprintf (buf, cap, "%dh%02dm", (int) (s / 3600), (int) fmod (s / 60, 60));
  else
    snprintf (buf, cap, "%dm%02ds", (int) (s / 60), (int) fmod (s, 60));
}

static void s_fini (run_t *r)
{
  if (r->metrics)
    fclose (r->metrics);
  ra_target_destroy (&r->work);
  ra_target_destroy (&r->valp);
  ra_target_destroy (&r->mt);
  ra_target_destroy (&r->one);
  ra_target_destroy (&r->teacher);
  ra_rollout_destroy (&r->tsrc);
  ra_rollout_destroy (&r->psrc);
  s_source_fini (&r->wsrc);
  s_source_fini (&r->tview);
  s_source_fini (&r->vsrc);
  s_source_fini (&r->msrc);
  free (r->theta);
  free (r->rows);
  free (r->scratch);
  free (r->g);
  free (r->fit);
  free (r->util);
  free (r->mask);
  free (r->idx);
  free (r->ids);
  free (r->seeds);
  free (r->tidx);
  free (r->pmine);
  free (r->pall);
  free (r->smine);
  free (r->sall);
  ra_meta_noise_fini (&r->noise);
  ra_meta_adam_fini (&r->adam);
  ra_taskset_fini (&r->train);
  ra_taskset_fini (&r->val);
  ra_nn_backend_destroy (&r->be);
}

/* Builds a policy of P replicas over num_envs envs each. */
static ra_err_t s_policy (run_t *r, int P, int num_envs, ra_target_t **out, ra_error_t *err)
{
  ra_target_cfg_t c = r->tc;
  c.population = P;
  c.num_envs = num_envs;
  return ra_target_new (r->be, &c, out, err);
}

/* Distill's teacher: --teacher's network (its own architecture, no task context) as one replica
   over this rank's work envs, top-k on the paired source's second view (docs/meta.md 2.8). */
static ra_err_t s_teacher (run_t *r, ra_error_t *err)
{
  const char *path = r->o->teacher;
  ra_target_cfg_t c;
  ra_target_cfg_default (&c);
  ra_err_t rc = ra_target_checkpoint_settings (path, &c, err);
  if (rc == RA_OK && c.context > 0)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "it reads a task context (n0 = %g); a teacher acts on what "
                         "it observes alone", (double) c.context);
  if (rc == RA_OK)
    rc = ra_target_checkpoint_arch (path, &c.hidden, &c.layers, &c.affinity, err);
  c.num_envs = r->Pl * r->N;
  c.population = 1;
  c.num_candidates = r->tc.num_candidates;
  c.slate_size = r->tc.slate_size;
  c.user_dim = r->tc.user_dim;
  c.cand_dim = r->tc.cand_dim;
  c.response_dim = r->tc.response_dim;
  c.rollout = 1;
  /* a sampling teacher (T18) draws from (seed, stream 1): apart from the task draws' (seed,
     0x7a5c) and the work replicas' per-iteration mixed seeds */
  c.seed = (uint64_t) r->o->seed;
  if (r->o->set[F_TEACHER_TEMP])
    c.temp = (float) r->o->teacher_temp;
  if (rc == RA_OK)
    rc = ra_target_new (r->be, &c, &r->teacher, err);
  if (rc == RA_OK)
    rc = ra_target_load (r->teacher, path, err);
  if (rc == RA_OK)
    rc = ra_target_set_teacher (r->work, r->teacher, ra_rollout_paired_second (r->psrc),
                                &(ra_target_teacher_opts_t) { .weight = (float) r->o->teacher_weight,
                                                              .gate = r->o->teacher_gate,
                                                              .sample = r->o->set[F_TEACHER_TEMP],
                                                              .critic = r->o->teacher_critic },
                                err);
  return rc;
}

/* Writes the checkpoint (rank 0, through ra_dist_on_root). */
typedef struct {
  run_t *r;
  const char *path;
  int64_t iter;   /* the iteration theta is from */
} ckpt_ctx_t;

/* Written beside the path and renamed over it, so a job killed while writing (a rank lost, mpirun
   ending the rest) leaves the previous checkpoint whole for --checkpoint-in. */
static ra_err_t s_write_ckpt (void *ctx, ra_error_t *err)
{
  ckpt_ctx_t *c = ctx;
  char part[4096];
  if (snprintf (part, sizeof part, "%s.part", c->path) >= (int) sizeof part)
    return ra_error_set (err, RA_ERR_IO, -1, "checkpoint path longer than %zu characters",
                         sizeof part - 6);
  run_t *r = c->r;
  ra_meta_resume_t at = { .iter = c->iter, .env_steps = r->steps_before + r->env_steps,
                          .rng_counter = r->rng.counter, .adam_t = r->adam.t,
                          .adam_m = r->adam.m, .adam_v = r->adam.v, .n = r->n };
  ra_err_t rc = ra_meta_ckpt_save (r->one, part, &r->ad, r->o->algo_name, &at, err);
  if (rc == RA_OK && rename (part, c->path) != 0)
    rc = ra_error_set (err, RA_ERR_IO, -1, "cannot rename %s to %s: %s", part, c->path,
                       strerror (errno));
  if (rc != RA_OK)
    remove (part);
  return rc;
}

/* Warns when training or validation reads tasks a result is meant to be held out on: test or
   ood tasks, or val tasks that training also draws. Allowed (it may be meant), never silent. */
static void s_warn_not_held_out (const ra_taskset_t *train, const ra_taskset_t *val)
{
  const char *held[] = { "test", "ood" };
  for (int j = 0; j < 2; j++) {
    if (!strcmp (train->split, held[j]))
      meta_err ("warning: --train-tasks draws from %s: results on those tasks are not held out\n",
             held[j]);
    if (!strcmp (val->split, held[j]))
      meta_err ("warning: --val-tasks on %s keeps the theta that does best there: results on those "
             "tasks are not held out\n", held[j]);
  }
  if (strcmp (train->split, val->split))
    return;
  int shared = 0;
  for (int v = 0; v < val->n; v++)
    for (int t = 0; t < train->n; t++)
      if (val->ids[v] == train->ids[t]) {
        shared++;
        break;
      }
  if (shared)
    meta_err ("warning: %d of the %d val tasks are also training tasks: validation is not held out\n",
           shared, val->n);
}

/* ------------------------------------------------------------------------------ main's steps

   Each step returns 0 or, after its message, the exit code (docs/meta.md 5): 2 for a bad command
   line, checkpoint or output path, 1 for a failure at runtime. */

/* Where the run starts (docs/meta.md 5): from scratch, from --checkpoint-in's theta afresh, or
   continuing the run that wrote it. */
typedef struct {
  ra_meta_resume_t at;   /* where the continued run stood; counts only until s_restore_state */
  bool resume;           /* it continues the checkpoint's run */
  bool add_context;      /* --context on a file without it: the networks widen, the run starts afresh */
} start_t;

/* The settings every rank reads alike from the same command line: this rank's --address
   endpoint, the task sets, and whether every rank gets a share of the work. A failure here stops
   every rank the same way, so no rank waits on another (main need not abort the job). */
static int s_job_settings (opts_t *o, run_t *r)
{
  ra_error_t err;
  const int rank = ra_dist_rank (r->d), size = ra_dist_size (r->d);
  if (o->address) { /* every rank checks the whole list: a bad one stops all alike */
    if (s_rank_address (o->address, rank, size, r->address, sizeof r->address) != 0)
      return 2;
    o->address = r->address;
  }
  if (ra_taskset_parse ("--train-tasks", o->train, &r->train, &err) != RA_OK
      || ra_taskset_parse ("--val-tasks", o->val, &r->val, &err) != RA_OK) {
    meta_err ("%s\n", err.message);
    return 2;
  }
  if (ra_dist_is_root (r->d))
    s_warn_not_held_out (&r->train, &r->val);
  long long need = s_es (o) ? o->population : o->meta_batch;
  if (need < size || r->val.n < size) {
    meta_err ("%d ranks need at least one %s and one val task each (%lld and %d given)\n", size,
              s_es (o) ? "population member" : "meta-batch task", need, r->val.n);
    return 2;
  }
  if (o->set[F_TEACHER_TEMP] && size > 1) { /* one stream over this rank's envs: another split, other draws */
    meta_err ("--teacher-temp %g: a sampling teacher draws from one stream over its rank's envs, so its slates "
              "would depend on the number of ranks (%d); run it with one rank\n", o->teacher_temp, size);
    return 2;
  }
  return 0;
}

/* Rank 0's outputs: the checkpoints are written at val points, so a path that cannot take them
   fails now, not after the first val_every iterations; --metrics is opened for appending. */
static int s_open_outputs (run_t *r)
{
  const opts_t *o = r->o;
  if (!ra_dist_is_root (r->d))
    return 0;
  ra_error_t err;
  const char *flags[] = { "--checkpoint-out", "--checkpoint-last" }, *paths[] = { o->ckpt_out, o->ckpt_last };
  for (int j = 0; j < 2; j++)
    if (paths[j] && ra_outpath_check (flags[j], paths[j], &err) != RA_OK) {
      meta_err ("%s\n", err.message);
      return 2;
    }
  if (o->metrics && !(r->metrics = fopen (o->metrics, "a"))) {
    meta_err ("--metrics %s: %s\n", o->metrics, strerror (errno));
    return 2;
  }
  return 0;
}

static int s_open_device (run_t *r)
{
  ra_error_t err;
  if (ra_nn_backend_open (r->o->device, NULL, &r->be, &err) != RA_OK) {
    meta_err ("--device %s: %s\n", r->o->device, err.message);
    return 2;
  }
  return 0;
}

/* The target settings a checkpoint stores that the command line gives too, from the options into
   c: every policy's (s_target_cfg), and the values a checkpoint without them keeps. */
static void s_target_settings_from_opts (const opts_t *o, ra_target_cfg_t *c)
{
  c->temp = (float) o->temp;
  c->slot_credit = (float) o->slot_credit;
  c->slot_feedback = (int) o->slot_feedback;
  c->context = (float) o->context;
  c->context_residual = o->context_residual;
  c->scorer_yield = o->scorer_yield;
  c->context_ts = (float) o->context_ts;
  c->context_session = (float) o->context_session;
  c->context_baseline = (float) o->context_baseline;
  c->context_handover = (float) o->context_handover;
  c->context_kernel = (float) o->context_kernel;
}

/* The same settings back from a checkpoint's c, where the command line did not give them. */
static void s_opts_from_target_settings (opts_t *o, const ra_target_cfg_t *c)
{
  if (!o->set[F_TEMP])
    o->temp = c->temp;
  if (!o->set[F_SLOT_CREDIT])
    o->slot_credit = c->slot_credit;
  if (!o->set[F_SLOT_FEEDBACK])
    o->slot_feedback = c->slot_feedback;
  if (!o->set[F_CONTEXT])
    o->context = c->context;
  if (!o->set[F_CONTEXT_RESIDUAL])
    o->context_residual = c->context_residual;
  if (!o->set[F_SCORER_YIELD])
    o->scorer_yield = c->scorer_yield;
  if (!o->set[F_CONTEXT_TS])
    o->context_ts = c->context_ts;
  if (!o->set[F_CONTEXT_SESSION])
    o->context_session = c->context_session;
  if (!o->set[F_CONTEXT_BASELINE])
    o->context_baseline = c->context_baseline;
  if (!o->set[F_CONTEXT_HANDOVER])
    o->context_handover = c->context_handover;
  if (!o->set[F_CONTEXT_KERNEL])
    o->context_kernel = c->context_kernel;
}

/* A checkpoint's adaptation settings, where the command line did not give them. */
static void s_opts_from_adapt_settings (opts_t *o, const ra_meta_adapt_cfg_t *ad)
{
  if (!o->set[F_INNER_LR])
    o->inner_lr = ad->inner_lr;
  if (!o->set[F_INNER_STEPS])
    o->inner_steps = ad->steps;
  if (!o->set[F_ROLLOUT])
    o->rollout = ad->rollout;
  if (!o->set[F_PARAMS]) {
    o->head_only = ad->head_only;
    strcpy (o->params_name, o->head_only ? "head" : "all");
  }
}

/* A checkpoint's architecture (hidden h, layers l, the affinity head aff) is the run's: its
   tensors fix it, so a --hidden, --layers or --affinity that differs is refused. */
static int s_arch_from_checkpoint (opts_t *o, int h, int l, bool aff)
{
  bool hidden_differs = o->set[F_HIDDEN] && o->hidden != h;
  if (hidden_differs || (o->set[F_LAYERS] && o->layers != l)) {
    meta_err ("--%s %lld: --checkpoint-in %s has hidden %d, layers %d (architecture comes from the file)\n",
              hidden_differs ? "hidden" : "layers", hidden_differs ? o->hidden : o->layers, o->ckpt_in, h, l);
    return 2;
  }
  o->hidden = h;
  o->layers = l;
  if (o->set[F_AFFINITY] && o->affinity != aff) {
    meta_err ("--affinity %s: --checkpoint-in %s %s the affinity head (architecture comes from the file)\n",
              o->affinity ? "true" : "false", o->ckpt_in, aff ? "has" : "has not");
    return 2;
  }
  o->affinity = aff;
  return 0;
}

/* --checkpoint-in: the file's adaptation settings, architecture and target settings, the command
   line's winning where it gives them, and whether the run continues the file's (start). */
static int s_settings_from_checkpoint (opts_t *o, start_t *start)
{
  ra_error_t err;
  ra_meta_adapt_cfg_t ad;
  ra_meta_adapt_cfg_default (&ad);
  bool found, aff = false;
  int h = 0, l = 0;
  char algo[32];
  if (ra_meta_ckpt_read (o->ckpt_in, &ad, &found, algo, sizeof algo, &err) != RA_OK
      || ra_meta_ckpt_read_resume (o->ckpt_in, &start->at, &start->resume, &err) != RA_OK
      || ra_target_checkpoint_arch (o->ckpt_in, &h, &l, &aff, &err) != RA_OK) {
    meta_err ("--checkpoint-in %s: %s\n", o->ckpt_in, err.message);
    return 2;
  }
  if (s_arch_from_checkpoint (o, h, l, aff) != 0)
    return 2;
  if (found)
    s_opts_from_adapt_settings (o, &ad);
  ra_target_cfg_t stored; /* the settings the checkpoint was written with (the options' where it has none) */
  ra_target_cfg_default (&stored);
  s_target_settings_from_opts (o, &stored);
  if (ra_target_checkpoint_settings (o->ckpt_in, &stored, &err) != RA_OK) {
    meta_err ("--checkpoint-in %s: %s\n", o->ckpt_in, err.message);
    return 2;
  }
  start->add_context = o->context > 0 && !(stored.context > 0); /* --context on a file without it */
  /* another algorithm, or the wider network of add_context, starts afresh from the file's theta */
  if (start->resume && (start->add_context || !found || strcmp (algo, o->algo_name) != 0)) {
    start->resume = false;
    start->at = (ra_meta_resume_t) { 0 };
  }
  s_opts_from_target_settings (o, &stored);
  if (!o->set[F_INNER_OPT]) {
    o->inner_sgd = stored.sgd;
    strcpy (o->opt_name, stored.sgd ? "sgd" : "adam");
  }
  return 0;
}

/* The adaptation operator's settings, once a checkpoint's are in; validation adapts as the inner
   loop unless told otherwise. */
static void s_adapt_settings (opts_t *o, run_t *r)
{
  if (!o->set[F_VAL_PARAMS]) {
    o->val_head_only = o->head_only;
    strcpy (o->val_params_name, o->params_name);
  }
  if (!o->set[F_VAL_INNER_LR])
    o->val_inner_lr = o->inner_lr;
  r->ad = (ra_meta_adapt_cfg_t) { .inner_lr = (float) o->inner_lr, .steps = (int) o->inner_steps,
                                  .rollout = (int) o->rollout, .head_only = o->head_only };
}

/* The job's shape: N envs per task, P work replicas (the ES population or the meta-batch), V val
   tasks, and this rank's slices of the replicas and of the val tasks. */
static int s_shape (run_t *r)
{
  const opts_t *o = r->o;
  r->N = (int) o->envs_per_task;
  r->P = s_es (o) ? (int) o->population : (int) o->meta_batch;
  r->V = r->val.n;
  if (r->V > 4096) {
    meta_err ("--val-tasks: at most 4096 tasks\n");
    return 2;
  }
  int64_t lo, hi;
  ra_dist_slice (r->d, r->P, &lo, &hi);
  r->lo = (int) lo, r->Pl = (int) (hi - lo);
  ra_dist_slice (r->d, r->V, &lo, &hi);
  r->vlo = (int) lo, r->Vl = (int) (hi - lo);
  return 0;
}

/* Multitask's seed of its task draws and envs: they run across iterations, so a continued run
   cannot replay them; it draws fresh tasks and episodes from a seed moved by the iterations done. */
static uint64_t s_multitask_seed (const opts_t *o, const start_t *start)
{
  uint64_t seed = (uint64_t) o->seed;
  return start->at.iter > 0 ? s_mix (seed ^ (uint64_t) start->at.iter) : seed;
}

/* This rank's share of the sources: work (P blocks; distill's paired with the same envs as the
   teacher sees them), or multitask's task-set source (P blocks of N envs over the train set, env i
   of this rank playing as env lo N + i of the job), and val (V blocks on their tasks, reset). */
static int s_open_sources (run_t *r, uint64_t mseed)
{
  const opts_t *o = r->o;
  uint64_t seed = (uint64_t) o->seed;
  ra_error_t err;
  ra_err_t rc;
  if (s_task_draws (o)) {
    int nm = r->Pl * r->N;
    rc = s_source (o, NULL, nm, ra_rollout_tasks_slots (&r->train, nm), mseed, &r->msrc, &err);
    ra_rollout_tasks_opts_t to = { .seed = mseed, .redraw = true, .first_env = (int64_t) r->lo * r->N };
    if (rc == RA_OK)
      rc = ra_rollout_tasks_new (r->msrc.src, nm, &r->train, &to, &r->tsrc, &err);
  } else {
    rc = s_source (o, NULL, r->Pl * r->N, 2 * r->P + 1, seed, &r->wsrc, &err);
  }
  if (rc == RA_OK && o->algo == A_DISTILL) { /* the same envs as the teacher sees them, stepped in pairs */
    rc = s_source (o, &o->teacher_config, r->Pl * r->N, 2 * r->P + 1, seed, &r->tview, &err);
    if (rc == RA_OK)
      rc = ra_rollout_paired_new (r->wsrc.src, r->tview.src, &r->psrc, &err);
  }
  if (rc == RA_OK)
    rc = s_source (o, NULL, r->Vl * r->N, r->V + 1, seed + 7777, &r->vsrc, &err);
  if (rc == RA_OK)
    rc = ra_meta_set_block_tasks (r->vsrc.src, r->Vl, r->N, r->val.split, r->val.ids + r->vlo, &err);
  if (rc == RA_OK)
    rc = ra_rollout_reset (r->vsrc.src, NULL, &err);
  if (rc != RA_OK) {
    meta_err ("%s%s%s\n", o->address ? o->address : "", o->address ? ": " : "", err.message);
    return 1;
  }
  return 0;
}

/* The settings of every policy of the run: the sim's shapes (from the val source) and the
   options. */
static void s_target_cfg (run_t *r)
{
  const opts_t *o = r->o;
  const ra_obs_batch_t *ob = &r->vsrc.src->obs;
  ra_target_cfg_t *c = &r->tc;
  ra_target_cfg_default (c);
  c->num_candidates = ob->num_candidates;
  c->slate_size = ob->slate_size;
  c->user_dim = ob->user_dim;
  c->cand_dim = ob->cand_dim;
  c->response_dim = ob->response_dim;
  c->hidden = (int) o->hidden;
  c->layers = (int) o->layers;
  c->affinity = o->affinity;
  c->rollout = (int) o->rollout;
  c->lr = (float) o->inner_lr;
  c->entropy_coef = (float) o->entropy;
  c->task_credit = (float) o->task_credit;
  s_target_settings_from_opts (o, c);
  c->sgd = o->inner_sgd;
  c->adapt_head = o->head_only; /* stored in the checkpoints, so the A/B arm adapts the same way */
  c->seed = (uint64_t) o->seed;
}

/* The credit settings against the sim and the algorithm: the k per-rank feedback entries of
   --slot-credit and --context must fit the sim's response, and --task-credit needs an
   actor-critic step over one task's envs. */
static int s_check_credit (const run_t *r)
{
  const opts_t *o = r->o;
  const ra_obs_batch_t *ob = &r->vsrc.src->obs;
  if ((o->slot_credit > 0 || o->context > 0) && o->slot_feedback + ob->slate_size > ob->response_dim) {
    meta_err ("--slot-feedback %lld: the k = %d per-rank entries from there do not fit %s's response (%d wide)\n",
              o->slot_feedback, ob->slate_size, o->env, ob->response_dim);
    return 2;
  }
  if (o->task_credit > 0 && (o->algo == A_ES || s_task_draws (o))) { /* T20 shares within one task */
    meta_err ("--task-credit %g: %s\n", o->task_credit,
              o->algo == A_ES ? "es takes no actor-critic step to credit"
                              : "without the task context multitask's envs each draw their own task, so an "
                                "update's envs are not one task's users (give --context N0 > 0)");
    return 2;
  }
  return 0;
}

/* The settings that read the task context (and T14, which needs T13), possibly from the
   checkpoint: checked after it. The message names where a setting came from. */
static int s_check_context_needs (const opts_t *o)
{
  char ts_shown[48], session_shown[48], baseline_shown[48], handover_shown[48], kernel_shown[48];
  snprintf (ts_shown, sizeof ts_shown, "--context-ts %g", o->context_ts);
  snprintf (session_shown, sizeof session_shown, "--context-session %g", o->context_session);
  snprintf (baseline_shown, sizeof baseline_shown, "--context-baseline %g", o->context_baseline);
  snprintf (handover_shown, sizeof handover_shown, "--context-handover %g", o->context_handover);
  snprintf (kernel_shown, sizeof kernel_shown, "--context-kernel %g", o->context_kernel);
  const bool ctx = o->context > 0;
  const char *give_ctx = "--context N0 > 0";
  const struct { /* a setting that is on, and whether what it needs (give) is there */
    bool on, met;
    int flag;
    const char *shown, *why, *give;
  } needs[] = {
    { o->context_residual, ctx, F_CONTEXT_RESIDUAL, "--context-residual true", "r(u) is read from the task context",
      give_ctx },
    { o->scorer_yield, ctx, F_SCORER_YIELD, "--scorer-yield true", "the yield is read from the task context", give_ctx },
    { o->context_ts > 0, ctx, F_CONTEXT_TS, ts_shown, "the draws are of the task context", give_ctx },
    { o->context_session > 0, ctx, F_CONTEXT_SESSION, session_shown, "the session adds to the task context", give_ctx },
    { o->context_baseline > 0, ctx, F_CONTEXT_BASELINE, baseline_shown, "it weighs the task context's feedback",
      give_ctx },
    { o->context_handover > 0, o->context_baseline > 0, F_CONTEXT_HANDOVER, handover_shown,
      "it hands T13's weighing of the feedback over to T8's", "--context-baseline B > 0" },
    { o->context_kernel > 0, ctx, F_CONTEXT_KERNEL, kernel_shown, "the kernel reads the task context", give_ctx },
    { o->context_kernel > 0, !(o->context_ts > 0), F_CONTEXT_KERNEL, kernel_shown,
      "the kernel replaces T8's linear regression, which --context-ts draws from", "--context-ts 0" },
  };
  for (size_t j = 0; j < sizeof needs / sizeof needs[0]; j++)
    if (needs[j].on && !needs[j].met) {
      bool from_file = !o->set[needs[j].flag] && o->ckpt_in;
      meta_err ("%s%s%s%s: %s; give %s\n", needs[j].shown, from_file ? " (from --checkpoint-in " : "",
                from_file ? o->ckpt_in : "", from_file ? ")" : "", needs[j].why, needs[j].give);
      return 2;
    }
  return 0;
}

/* The run's policies: one (--checkpoint-in's theta, widened by add_context), valp over this
   rank's val tasks, and the training replicas: work, or multitask's mt (its blocks' replicas
   give gradients only, clipped after the sum in s_multitask). */
static int s_build_policies (run_t *r, const start_t *start)
{
  const opts_t *o = r->o;
  ra_error_t err;
  ra_err_t rc;
  if ((rc = s_policy (r, 1, r->N, &r->one, &err)) == RA_OK && o->ckpt_in)
    rc = (start->add_context ? ra_target_load_adding_context : ra_target_load) (r->one, o->ckpt_in, &err);
  if (rc == RA_OK)
    rc = s_policy (r, r->Vl, r->N, &r->valp, &err);
  if (rc == RA_OK && s_task_draws (o)) {
    ra_target_cfg_t keep = r->tc;
    r->tc.clip_norm = 0;
    rc = s_policy (r, r->Pl, r->N, &r->mt, &err);
    r->tc = keep;
  } else if (rc == RA_OK)
    rc = s_policy (r, r->Pl, r->N, &r->work, &err);
  if (rc != RA_OK) {
    meta_err ("%s%s\n", o->ckpt_in ? "--checkpoint-in: " : "", err.message);
    return 1;
  }
  return 0;
}

/* Distill's teacher (s_teacher). A gated teacher weighs by the student's scorer yield, which may
   come from the checkpoint, so it is checked only now. */
static int s_setup_teacher (run_t *r)
{
  const opts_t *o = r->o;
  ra_error_t err;
  if (o->teacher_gate && !r->tc.scorer_yield) {
    meta_err ("--teacher-gate true: it weighs each row's imitation by 1 - the row's scorer yield (docs/agents.md "
              "T17), and this student has no scorer yield (--scorer-yield true, which needs --context)\n");
    return 2;
  }
  if (o->algo == A_DISTILL && s_teacher (r, &err) != RA_OK) {
    meta_err ("--teacher %s: %s\n", o->teacher, err.message);
    return 2;
  }
  return 0;
}

/* The run's buffers, sized by the network (n parameters per replica) and the larger of the work
   replicas and the val tasks; tidx[p] = p. */
static int s_alloc_buffers (run_t *r)
{
  r->n = ra_target_num_params (r->one);
  int Pmax = r->P > r->V ? r->P : r->V;
  size_t rows = (size_t) Pmax * r->n;
  r->theta = malloc (r->n * sizeof (float));
  r->rows = malloc (rows * sizeof (float));
  r->scratch = malloc (rows * sizeof (float));
  r->g = malloc (r->n * sizeof (float));
  r->fit = malloc ((size_t) Pmax * sizeof (float));
  r->util = malloc ((size_t) Pmax * sizeof (float));
  r->idx = malloc ((size_t) Pmax * sizeof (int));
  r->ids = malloc ((size_t) Pmax * sizeof (int64_t));
  r->seeds = malloc ((size_t) 2 * Pmax * r->N * sizeof (uint64_t));
  r->mask = malloc (r->n);
  r->tidx = malloc ((size_t) Pmax * sizeof (int64_t));
  r->pmine = malloc ((size_t) 8 * Pmax * sizeof (ra_dist_pair_t));
  r->pall = malloc ((size_t) 8 * Pmax * sizeof (ra_dist_pair_t));
  r->smine = malloc (sizeof (ra_dist_pair_t));
  r->sall = malloc ((size_t) ra_dist_size (r->d) * sizeof (ra_dist_pair_t));
  if (!r->theta || !r->rows || !r->scratch || !r->g || !r->fit || !r->util || !r->idx || !r->ids || !r->seeds
      || !r->mask || !r->tidx || !r->pmine || !r->pall || !r->smine || !r->sall) {
    meta_err ("out of memory for %zu parameters x %d\n", r->n, Pmax);
    return 1;
  }
  for (int p = 0; p < Pmax; p++)
    r->tidx[p] = p;
  return 0;
}

/* The learner's start: theta (the policy one's), the adaptation mask, the task draws' RNG, ES's
   noise table and the outer optimiser. */
static int s_init_learner (run_t *r)
{
  const opts_t *o = r->o;
  uint64_t seed = (uint64_t) o->seed;
  ra_error_t err;
  ra_target_get_params (r->one, r->theta);
  ra_meta_adapt_mask (r->one, o->head_only, r->mask);
  ra_nn_rng_init (&r->rng, seed, 0x7a5c);
  if ((s_es (o) && ra_meta_noise_new (seed ^ 0x6e6f, (size_t) (1 << 20) + r->n, &r->noise, &err) != RA_OK)
      || ra_meta_adam_init (&r->adam, r->n, (float) o->outer_lr, (float) o->weight_decay, &err) != RA_OK) {
    meta_err ("%s\n", err.message);
    return 1;
  }
  return 0;
}

/* A continued run's state (docs/meta.md 5): the outer optimiser's moments, read now that the
   network's size is known, its step count, the task draws' RNG and the env steps behind theta. */
static int s_restore_state (run_t *r, start_t *start)
{
  ra_error_t err;
  ra_meta_resume_t *at = &start->at;
  at->adam_m = r->adam.m;
  at->adam_v = r->adam.v;
  at->n = r->n;
  if (ra_meta_ckpt_read_resume (r->o->ckpt_in, at, &start->resume, &err) != RA_OK) {
    meta_err ("--checkpoint-in %s: %s\n", r->o->ckpt_in, err.message);
    return 2;
  }
  r->adam.t = at->adam_t;
  r->rng.counter = at->rng_counter;
  r->steps_before = at->env_steps;
  return 0;
}

/* Multitask's blocks start the rollout that runs across its iterations, without a step of their
   own (lr 0). Block b (this rank's replica b - lo) samples from stream 1 + b and its envs start
   from the seeds of envs b N .. b N + N-1: nothing depends on the rank count. */
static int s_start_multitask (run_t *r, uint64_t mseed)
{
  ra_error_t err;
  for (int p = 0; p < r->Pl; p++) {
    ra_target_set_lr (r->mt, p, 0.0f);
    ra_nn_rng_init (ra_target_rng (r->mt, p), s_mix (mseed ^ 0x6d74), 1 + (uint64_t) (r->lo + p));
  }
  s_seeds (r->seeds, r->P, r->N, mseed, 0x6d74, 0, 1);
  if (ra_target_begin_rollout (r->mt, r->tsrc, r->seeds + (size_t) r->lo * r->N, &err) != RA_OK) {
    meta_err ("%s\n", err.message);
    return 1;
  }
  return 0;
}

/* What runs, on what and how (rank 0, on stderr unless --quiet), and where a continued run
   continues from. */
static void s_print_header (const run_t *r, const start_t *start)
{
  const opts_t *o = r->o;
  if (o->quiet || !ra_dist_is_root (r->d))
    return;
  const int size = ra_dist_size (r->d);
  char tb[64], vb[64];
  ra_taskset_format (&r->train, tb, sizeof tb);
  ra_taskset_format (&r->val, vb, sizeof vb);
  fprintf (stderr,
           "recarena-meta: %s on %s, train %s, val %s (%d tasks), %s; %zu params%s, %s; budget %lld env steps; "
           "adapt: %d %s updates of %d x %d steps, lr %g, params %s (validation: lr %g, params %s); temp %g; slot credit %g from response[%lld]; validation acts %s; "
           "%d rank%s\n",
           o->algo_name, o->env, tb, vb, r->V, o->address ? o->address : "in-process sims", r->n,
           o->affinity ? " (with the affinity head)" : "", ra_nn_backend_name (r->be), o->budget, r->ad.steps, o->opt_name, r->ad.rollout, r->N, (double) r->ad.inner_lr,
           o->params_name, o->val_inner_lr, o->val_params_name, o->temp, o->slot_credit, o->slot_feedback, o->val_act_name, size, size > 1 ? "s" : "");
  if (start->resume)
    fprintf (stderr, "recarena-meta: continuing %s from iteration %lld (%lld env steps done; the budget counts this run's)\n",
             o->ckpt_in, (long long) start->at.iter, (long long) start->at.env_steps);
}

/* ------------------------------------------------------------------------------ the loop */

/* Where the meta-training loop stands. */
typedef struct {
  double t0, last;            /* its start and the last progress line (s_now) */
  int64_t first, it;          /* the iteration it started at (a continued run numbers on), the current */
  double best;                /* the best val score so far (R@5w), at best_iter */
  int64_t best_iter;
  long long stale;            /* val points in a row without a better score (--patience) */
  const char *stopped;        /* why it ends: "budget", "iters" or "patience"; NULL: it goes on */
  double R[8];                /* the last val point's R@j */
  double mret;                /* the last iteration's meta-return */
} loop_t;

/* The val score: the mean of R@3 .. R@7 (docs/meta.md 3). */
static double s_r5w (const double R[8])
{
  return (R[3] + R[4] + R[5] + R[6] + R[7]) / 5;
}

/* "budget" or "iters" when the run has reached that limit, else NULL. */
static const char *s_limit_reached (const run_t *r, const loop_t *l)
{
  const opts_t *o = r->o;
  if (r->env_steps >= o->budget)
    return "budget";
  if (o->set[F_ITERS] && l->it - l->first >= o->iters)
    return "iters";
  return NULL;
}

/* A val point: R@j of theta, its val line, --checkpoint-out when it scores best so far and
   --checkpoint-last always; the --patience-th in a row without a better score stops the run
   (every rank validates alike, so all stop here). */
static int s_val_point (run_t *r, loop_t *l)
{
  const opts_t *o = r->o;
  ra_error_t err;
  if (s_validate (r, l->R, &err) != RA_OK) {
    meta_err ("validation at iter %lld: %s\n", (long long) l->it, err.message);
    return 1;
  }
  double w5 = s_r5w (l->R);
  if (!isfinite (w5) || !isfinite (l->R[0])) {
    meta_err ("NaN in the validation returns at iter %lld\n", (long long) l->it);
    return 1;
  }
  if (r->metrics) {
    fprintf (r->metrics, "{\"kind\":\"val\",\"iter\":%lld,\"env_steps\":%lld,\"R@0\":%.6g,\"R@1\":%.6g,"
             "\"R@5w\":%.6g,\"score\":%.6g}\n", (long long) l->it, (long long) r->env_steps, l->R[0], l->R[1], w5, w5);
    fflush (r->metrics);
  }
  ra_target_set_params (r->one, r->theta);
  ckpt_ctx_t cc = { .r = r, .path = o->ckpt_out, .iter = l->it };
  l->stale = w5 > l->best ? 0 : l->stale + 1;
  if (!l->stopped && o->patience > 0 && l->stale >= o->patience)
    l->stopped = "patience";
  if (w5 > l->best) {
    l->best = w5;
    l->best_iter = l->it;
    if (o->ckpt_out && ra_dist_on_root (r->d, s_write_ckpt, &cc, &err) != RA_OK) {
      meta_err ("--checkpoint-out: %s\n", err.message);
      return 1;
    }
  }
  cc.path = o->ckpt_last;
  if (o->ckpt_last && ra_dist_on_root (r->d, s_write_ckpt, &cc, &err) != RA_OK) {
    meta_err ("--checkpoint-last: %s\n", err.message);
    return 1;
  }
  return 0;
}

/* The progress line (rank 0, on stderr unless --quiet): every 2 s and at the end. */
static void s_print_progress (const run_t *r, loop_t *l)
{
  const opts_t *o = r->o;
  double now = s_now ();
  if (o->quiet || !ra_dist_is_root (r->d) || (now - l->last < 2.0 && !l->stopped))
    return;
  double sps = r->env_steps / fmax (now - l->t0, 1e-9);
  char eta[32];
  s_fmt_time ((o->budget - r->env_steps) / sps, eta, sizeof eta);
  char mr[32];
  snprintf (mr, sizeof mr, isfinite (l->mret) ? "%.2f" : "-", l->mret);
  char im[40] = ""; /* distill: how far the student is from the teacher's slates */
  if (o->algo == A_DISTILL && l->it > l->first)
    snprintf (im, sizeof im, "  imitation %.3f", r->imitation);
  fprintf (stderr, "iter %lld  steps %lld/%lld  meta-return %s%s  val R@0 %.2f R@5w %.2f (best %.2f @%lld)  "
           "%.0f samples/s  ETA %s\n", (long long) l->it, (long long) r->env_steps, o->budget, mr, im, l->R[0],
           s_r5w (l->R), l->best, (long long) l->best_iter, sps, eta);
  l->last = now;
}

/* A train line (docs/meta.md 5) for the iteration just done: its steps env steps in el seconds,
   env_s and act_s of them stepping the envs and acting. */
static void s_write_train_line (const run_t *r, const loop_t *l, int64_t steps, double el, double env_s,
                                double act_s)
{
  FILE *m = r->metrics;
  fprintf (m, "{\"kind\":\"train\",\"iter\":%lld,\"env_steps\":%lld,\"meta_return\":", (long long) l->it,
           (long long) r->env_steps);
  fprintf (m, isfinite (l->mret) ? "%.6g" : "null", l->mret);
  if (r->o->algo == A_DISTILL)
    fprintf (m, ",\"imitation\":%.6g", r->imitation);
  fprintf (m, ",\"samples_per_s\":%.1f,\"iter_s\":%.4f,\"env_s\":%.4f,\"act_s\":%.4f,\"wall_s\":%.3f}\n",
           steps / fmax (el, 1e-9), el, env_s, act_s, s_now () - l->t0);
  fflush (m);
}

/* The next meta-iteration (s_iterate), its results checked for a non-finite value. */
static int s_train_iteration (run_t *r, loop_t *l)
{
  const opts_t *o = r->o;
  ra_error_t err;
  l->it++;
  double ti = s_now ();
  int64_t before = r->env_steps;
  ra_rollout_t *train_src = s_task_draws (o) ? r->tsrc : s_work_src (r); /* the outer source */
  ra_target_t *train_pol = s_task_draws (o) ? r->mt : r->work; /* the policy acting in it */
  double env_before = train_src->step_seconds, act_before = ra_target_act_seconds (train_pol);
  /* a continued run anneals over the lineage (the steps before count on both sides) unless
     --anneal-over run restarts the schedule */
  int64_t before_run = o->anneal_run ? 0 : r->steps_before;
  double frac = (double) (before_run + r->env_steps) / (double) (before_run + o->budget);
  if (s_iterate (r, l->it, frac, &l->mret, &err) != RA_OK) {
    meta_err ("iter %lld: %s\n", (long long) l->it, err.message);
    return 1;
  }
  if (!s_finite (r->theta, r->n) || (!isfinite (l->mret) && !isnan (l->mret))) {
    meta_err ("NaN in the parameters at iter %lld\n", (long long) l->it);
    return 1;
  }
  if (isnan (l->mret) && s_es (o)) {
    meta_err ("NaN in the returns at iter %lld\n", (long long) l->it);
    return 1;
  }
  double el = s_now () - ti;
  if (r->metrics)
    s_write_train_line (r, l, r->env_steps - before, el, train_src->step_seconds - env_before,
                        ra_target_act_seconds (train_pol) - act_before);
  return 0;
}

/* Meta-trains until the budget, --iters or --patience ends it, with a val point at the start
   (unless --val-at-start false), every --val-every iterations and at the end. */
static int s_meta_train (run_t *r, loop_t *l)
{
  const opts_t *o = r->o;
  for (;;) {
    l->stopped = s_limit_reached (r, l);
    bool due = (l->it - l->first) % o->val_every == 0 && (l->it > l->first || o->val_at_start);
    if ((due || l->stopped) && s_val_point (r, l) != 0)
      return 1;
    s_print_progress (r, l);
    if (l->stopped)
      return 0;
    if (s_train_iteration (r, l) != 0)
      return 1;
  }
}

/* The done line (docs/meta.md 5), with the checkpoint's path as a JSON string. */
static void s_write_done_line (const run_t *r, const loop_t *l)
{
  FILE *m = r->metrics;
  const char *ckpt = r->o->ckpt_out;
  uint64_t sent, recvd; /* rank 0's payload bytes through agents/dist (docs/scaling.md 2) */
  ra_dist_bytes (r->d, &sent, &recvd);
  fprintf (m, "{\"kind\":\"done\",\"iter\":%lld,\"env_steps\":%lld,\"best_score\":%.6g,\"best_iter\":%lld,"
           "\"stopped\":\"%s\",\"ranks\":%d,\"root_bytes_sent\":%llu,\"root_bytes_received\":%llu,\"checkpoint\":",
           (long long) l->it, (long long) r->env_steps, l->best, (long long) l->best_iter, l->stopped,
           ra_dist_size (r->d), (unsigned long long) sent, (unsigned long long) recvd);
  if (ckpt) {
    fputc ('"', m);
    for (const char *p = ckpt; *p; p++)
      fprintf (m, (*p == '"' || *p == '\\') ? "\\%c" : (unsigned char) *p < 0x20 ? "?" : "%c", *p);
    fputc ('"', m);
  } else {
    fprintf (m, "null");
  }
  fprintf (m, "}\n");
  fflush (m);
}

/* The run's summary line on stdout (rank 0). */
static void s_print_summary (const run_t *r, const loop_t *l)
{
  const opts_t *o = r->o;
  if (!ra_dist_is_root (r->d))
    return;
  char start[64] = ""; /* which val point scored the starting theta, if one did */
  if (o->val_at_start)
    snprintf (start, sizeof start, " (R@0 at iter %lld was the initialisation's)", (long long) l->first);
  char early[96] = "";
  if (!strcmp (l->stopped, "patience"))
    snprintf (early, sizeof early, " (stopped early: %lld val points without a better score)", o->patience);
  printf ("%s: %lld iterations, %lld env steps in %.1f s%s; best val R@5w %.3f at iter %lld%s%s%s\n", o->algo_name,
          (long long) (l->it - l->first), (long long) r->env_steps, s_now () - l->t0, early, l->best,
          (long long) l->best_iter, start, o->ckpt_out ? "; checkpoint " : "", o->ckpt_out ? o->ckpt_out : "");
}

int main (int argc, char **argv)
{
  ra_dist_t *dist = NULL;
  ra_error_t err;
  if (ra_dist_new (&argc, &argv, 0, &dist, &err) != RA_OK) {
    meta_err ("joining the MPI job: %s\n", err.message);
    return 1;
  }
  meta_err_rank (ra_dist_rank (dist), ra_dist_size (dist));
  opts_t o;
  int parsed = meta_opts_parse (argc, argv, &o);
  if (parsed != 0) { /* every rank parsed the same line: all stop alike */
    meta_opts_fini (&o);
    ra_dist_destroy (&dist);
    return parsed > 0 ? 0 : 2;
  }
  run_t r = { .o = &o, .d = dist };
  start_t start = { 0 };
  bool alike = true; /* a failure every rank meets the same way (no need to abort the job) */
  int code = s_job_settings (&o, &r);
  if (code != 0)
    goto out;
  alike = false;
  if ((code = s_open_outputs (&r)) != 0 || (code = s_open_device (&r)) != 0)
    goto out;
  if (o.ckpt_in && (code = s_settings_from_checkpoint (&o, &start)) != 0)
    goto out;
  s_adapt_settings (&o, &r);
  if ((code = s_shape (&r)) != 0)
    goto out;
  uint64_t mseed = s_multitask_seed (&o, &start);
  if ((code = s_open_sources (&r, mseed)) != 0)
    goto out;
  s_target_cfg (&r);
  if ((code = s_check_credit (&r)) != 0 || (code = s_check_context_needs (&o)) != 0)
    goto out;
  if ((code = s_build_policies (&r, &start)) != 0 || (code = s_setup_teacher (&r)) != 0)
    goto out;
  if ((code = s_alloc_buffers (&r)) != 0 || (code = s_init_learner (&r)) != 0)
    goto out;
  if (start.resume && (code = s_restore_state (&r, &start)) != 0)
    goto out;
  if (r.mt && (code = s_start_multitask (&r, mseed)) != 0)
    goto out;
  s_print_header (&r, &start);
  loop_t l = { .t0 = s_now (), .last = -1e9, .best = -INFINITY, .first = start.at.iter, .it = start.at.iter,
               .best_iter = -1, .R = { NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN }, .mret = NAN };
  if ((code = s_meta_train (&r, &l)) != 0)
    goto out;
  if (r.metrics)
    s_write_done_line (&r, &l);
  s_print_summary (&r, &l);
out:
  s_fini (&r);
  meta_opts_fini (&o);
  /* a failure on some ranks leaves the others waiting in a collective: end the job */
  if (code != 0 && !alike)
    ra_dist_abort (dist, code);
  ra_dist_destroy (&dist);
  return code;
}
