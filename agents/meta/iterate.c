/*  agents/meta/iterate.c - recarena-meta's meta-iterations (agents/meta/run.h; docs/meta.md 2):
    one update of theta by reptile, fomaml, es, es-maml, multitask or distill, with the env seeds
    and task draws it plays on and the collectives over the ranks (docs/scaling.md 5) that give
    every rank the same update whatever the rank count. */
#include "agents/meta/run.h"

#include <math.h>
#include <string.h>

#include "agents/dist/dist.h"
#include "agents/meta/adapt.h"
#include "agents/meta/core.h"
#include "agents/nn/nn.h"
#include "agents/policies/target.h"

uint64_t meta_mix (uint64_t x)
{
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

void meta_seeds (uint64_t *s, int P, int N, uint64_t seed, uint64_t tag, uint64_t a, int share)
{
  for (int r = 0; r < P; r++)
    for (int e = 0; e < N; e++)
      s[(size_t) r * N + e] =
        meta_mix (meta_mix (meta_mix (meta_mix (seed ^ tag) + a) + (uint64_t) (r / share)) + (uint64_t) e);
}

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

void meta_tile (run_t *r, const float *theta, int P)
{
  for (int p = 0; p < P; p++)
    memcpy (r->rows + (size_t) p * r->n, theta, r->n * sizeof (float));
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
    meta_tile (r, r->theta, Pl);
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

ra_rollout_t *meta_work_src (const run_t *r)
{
  return r->psrc ? r->psrc : r->wsrc.src;
}

bool meta_es (const opts_t *o)
{
  return o->algo == A_ES || o->algo == A_ESMAML;
}

bool meta_task_draws (const opts_t *o)
{
  return o->algo == A_MULTITASK && o->context <= 0;
}

/* Distill and multitask with the task context step theta after every block rollout (s_distill)
   instead of once per iteration from the summed block rows. */
static bool s_steps_per_rollout (const opts_t *o)
{
  return o->algo == A_DISTILL || (o->algo == A_MULTITASK && !meta_task_draws (o));
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
  ra_rollout_t *src = meta_work_src (r);
  ra_err_t rc = ra_meta_adapt_at (r->work, r->lo, r->rows, NULL, src, &a, seeds, rng_seed, st, NULL, err);
  for (int u = 0; rc == RA_OK && u < k; u++) {
    if (u > 0) {
      meta_tile (r, r->theta, Pl);
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

ra_err_t meta_iterate (run_t *r, int64_t it, double budget_frac, double *meta_return, ra_error_t *err)
{
  const opts_t *o = r->o;
  int N = r->N, P = r->P, B = (int) o->meta_batch;
  ra_target_stats_t st = { 0 };
  ra_err_t rc = RA_OK;
  const uint8_t *mask = o->head_only ? r->mask : NULL;
  if (meta_task_draws (o))
    return s_multitask (r, meta_return, err);
  bool es = meta_es (o);
  int tasks_n = es ? (B < P / 2 ? B : P / 2) : P;
  s_draw_tasks (r, tasks_n, r->ids);   /* the same draw on every rank */
  int lo = r->lo, Pl = r->Pl;
  int64_t blk[RA_TARGET_MAX_POPULATION];
  for (int p = 0; p < Pl; p++)
    blk[p] = es ? r->ids[((lo + p) / 2) % tasks_n] : r->ids[lo + p];
  ra_rollout_t *src = meta_work_src (r);
  if ((rc = ra_meta_set_block_tasks (src, Pl, N, r->train.split, blk, err)) != RA_OK)
    return rc;
  /* env seeds of all P blocks, of which this rank plays blocks lo .. lo+Pl-1 */
  const uint64_t *seeds = r->seeds + (size_t) lo * N;
  uint64_t rng_seed = meta_mix ((uint64_t) o->seed + (uint64_t) it);
  if (!es) {
    meta_tile (r, r->theta, Pl);
    meta_seeds (r->seeds, P, N, (uint64_t) o->seed, 0x7a1, (uint64_t) it, 1);
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
    if (o->algo == A_REPTILE && o->outer_adam) { /* (1/B) sum_b (phi_b - theta) to AdamW, docs/meta.md 2.1 */
      ra_meta_reptile_adam_step (&r->adam, r->theta, r->g, P);
    } else if (o->algo == A_REPTILE) { /* theta += eps (1/B) sum_b (phi_b - theta), docs/meta.md 2.1 */
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
    meta_seeds (r->seeds, P, N, (uint64_t) o->seed, 0x7a2, (uint64_t) it, 2);
    rc = ra_meta_adapt_at (r->work, lo, r->rows, mask, r->wsrc.src, &r->ad, seeds, rng_seed, &st, r->scratch, err);
  } else {
    ra_target_set_params (r->work, r->rows);
    ra_target_reset_context (r->work); /* each member's fitness from its own feedback (T8) */
  }
  double ret[RA_TARGET_MAX_POPULATION];
  meta_seeds (r->seeds, P, N, (uint64_t) o->seed, 0x7a3, (uint64_t) it, 2);
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
