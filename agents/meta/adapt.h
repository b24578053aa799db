/*  agents/meta/adapt.h - the adaptation operator adapt(theta, task) -> phi (docs/meta.md 1) and
    the two things every meta learner does with a policy on a batch of tasks: adapt it and measure
    it.

    A work policy of P replicas acts on a rollout source of P*N envs, replica r on envs
    [r N, (r+1) N), whose tasks the caller set (ra_meta_set_block_tasks). ra_meta_adapt loads
    P parameter vectors, starts a fresh inner optimiser (Adam moments and step counts zeroed, the
    reward scale measured again from the task's first rollout) and runs k actor-critic updates of
    T steps from the task's own rollouts (slates sampled from the policy being updated); with
    params = head, only the scorer's output layer and the value MLP change (the scorer's body is
    put back to theta after every update). The settings travel in the checkpoint
    (ra_meta_ckpt_*).

    Borrows everything; allocates only temporaries (a task mask, a checkpoint's bytes). One
    thread per work policy.                                                                     */
#ifndef RA_AGENTS_META_ADAPT_H
#define RA_AGENTS_META_ADAPT_H

#include <stdbool.h>
#include <stdint.h>

#include "agents/policies/rollout.h"
#include "agents/policies/target.h"
#include "agents/policies/taskset.h"

typedef struct {
  float inner_lr;        /* Adam learning rate of the inner updates; default 3e-3 */
  int steps;             /* k updates; default 5 */
  int rollout;           /* T env steps per update (the work policy's cfg.rollout); default 16 */
  bool head_only;        /* params = head; default false (all) */
} ra_meta_adapt_cfg_t;

void ra_meta_adapt_cfg_default (ra_meta_adapt_cfg_t *a);

/* mask[j] = 1 when entry j of one replica's flat vector adapts: all ones for params = all,
   ra_target_head_mask for head. mask has ra_target_num_params / P entries. */
void ra_meta_adapt_mask (const ra_target_t *t, bool head_only, uint8_t *mask);

/* Puts replica r's envs (N each) on task ids[r] of split, with set_task masks (effective at the
   next reset). */
ra_err_t ra_meta_set_block_tasks (ra_rollout_t *src, int P, int N, const char *split,
                                  const int64_t *ids, ra_error_t *err);

/* phi = adapt(theta, task) for the P replicas at once: theta is [P, n] host (n = params per
   replica), mask as ra_meta_adapt_mask or NULL (all adapt), seeds P*N env seeds for the adaptation
   rollouts (NULL keeps the streams); replica r samples its slates from stream 1 + r of rng_seed,
   so phi depends on theta, the tasks and the seeds only. The adapted parameters are left in w; scratch holds P*n
   floats (used for head-only). stats (may be NULL) gets the rollouts' steps and returns. */
ra_err_t ra_meta_adapt (ra_target_t *w, const float *theta, const uint8_t *mask, ra_rollout_t *src,
                        const ra_meta_adapt_cfg_t *a, const uint64_t *seeds, uint64_t rng_seed,
                        ra_target_stats_t *stats, float *scratch, ra_error_t *err);
/* ra_meta_adapt for replicas first .. first+P-1 of a larger batch (the share of one rank,
   docs/scaling.md 5): replica r samples from stream 1 + first + r, so a replica's phi is the same
   whichever process computes it. ra_meta_adapt is first = 0. */
ra_err_t ra_meta_adapt_at (ra_target_t *w, int64_t first, const float *theta, const uint8_t *mask,
                           ra_rollout_t *src, const ra_meta_adapt_cfg_t *a, const uint64_t *seeds,
                           uint64_t rng_seed, ra_target_stats_t *stats, float *scratch, ra_error_t *err);
/* One more inner update after ra_meta_adapt (same stream; mask and theta as there). */
ra_err_t ra_meta_adapt_more (ra_target_t *w, const float *theta, const uint8_t *mask,
                             ra_rollout_t *src, ra_target_stats_t *stats, float *scratch,
                             ra_error_t *err);

/* Greedy evaluation with learning frozen: resets the P*N envs with seeds and plays top-k slates
   until every env has ended its first episode (or max_steps); ret[r] = mean first-episode return
   of replica r's envs; *steps (may be NULL) += env steps played. Ends any training stream (call
   ra_meta_adapt or ra_target_begin_rollout again). */
ra_err_t ra_meta_evaluate (ra_target_t *w, ra_rollout_t *src, const uint64_t *seeds, int max_steps,
                           double *ret, int64_t *steps, ra_error_t *err);

/* How an evaluation acts (docs/meta.md 3, --val-act): top-k, or slates sampled from the
   Plackett-Luce policy at its temperature (cfg.temp), as the A/B arm serves them while it adapts. */
typedef enum { RA_META_ACT_GREEDY, RA_META_ACT_SAMPLE } ra_meta_act_t;

/* ra_meta_evaluate acting as act. SAMPLE: replica r draws its slates from stream 1 + first + r of
   rng_seed (first as in ra_meta_adapt_at: the same draws whichever rank evaluates it), and the
   replicas' own sampling RNGs are put back afterwards, so an adaptation continued after the
   evaluation samples exactly as without it. GREEDY: ra_meta_evaluate (first, rng_seed unused).
   RA_ERR_NOMEM for the saved RNGs. */
ra_err_t ra_meta_evaluate_as (ra_target_t *w, ra_rollout_t *src, const uint64_t *seeds, int max_steps,
                              ra_meta_act_t act, int64_t first, uint64_t rng_seed, double *ret,
                              int64_t *steps, ra_error_t *err);

/* ------------------------------------------------------------ checkpoints with the settings */

/* Where a meta-training stood when it wrote a checkpoint, so that --checkpoint-in continues it
   (docs/meta.md 5): the meta-iterations and env steps done, the task-draw RNG's counter and the
   outer optimiser's Adam state (step count and the n-long moments; n = parameters per replica). */
typedef struct {
  int64_t iter, env_steps;
  uint64_t rng_counter;
  int64_t adam_t;
  float *adam_m, *adam_v;   /* [n]: read from by save, written by read */
  size_t n;
} ra_meta_resume_t;

/* Writes t (replica 0 is what matters: a P = 1 policy) as a target checkpoint any target loader
   reads, with the adaptation settings and the algorithm name added to its metadata
   ("meta_inner_lr", "meta_inner_steps", "meta_rollout", "meta_adapt_params", "meta_algo") and,
   when at is not NULL, the training state ("meta_iter", "meta_env_steps", "meta_rng_counter",
   "meta_adam_t" and the tensors "meta.adam_m", "meta.adam_v", which target loaders skip).
   RA_ERR_IO with the reason. */
ra_err_t ra_meta_ckpt_save (const ra_target_t *t, const char *path, const ra_meta_adapt_cfg_t *a,
                            const char *algo, const ra_meta_resume_t *at, ra_error_t *err);
/* Reads the training state into at (at->adam_m, at->adam_v: at->n floats each, at->n set by the
   caller; NULL reads the counts alone); *found = false (at untouched) for a checkpoint without
   one. RA_ERR_BAD_CONFIG when its moments are not at->n long (another architecture), RA_ERR_IO
   for a damaged file. */
ra_err_t ra_meta_ckpt_read_resume (const char *path, ra_meta_resume_t *at, bool *found, ra_error_t *err);
/* Reads the settings back; *found = false (a untouched) for a checkpoint without them. algo
   (may be NULL) gets the name (cap bytes, NUL-terminated). RA_ERR_IO. */
ra_err_t ra_meta_ckpt_read (const char *path, ra_meta_adapt_cfg_t *a, bool *found, char *algo,
                            size_t cap, ra_error_t *err);

#endif
