/*  agents/meta/core.h - the meta learners' update math as pure functions over float vectors
    (docs/meta.md sections 2-4): the Reptile step, the ES noise table read by index, antithetic
    perturbations, centered ranks, the ES gradient estimate and Adam with decoupled weight decay.

    Why pure functions: a distributed layer can shard the meta-batch or the population, gather the
    adapted parameters or the fitness values into one array in a fixed order, and call these on
    every rank to get the same bits whatever the rank count. Every sum here runs in a fixed order
    (member 0 first) in double precision. No allocation except ra_meta_noise_new; no I/O; any
    thread (distinct outputs).                                                                  */
#ifndef RA_AGENTS_META_CORE_H
#define RA_AGENTS_META_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Reptile (docs/meta.md 2.1): theta += eps * (1/B) sum_b (phi_b - theta). phis holds B vectors of
   n floats, vector b at phis + b * stride. O(B n). */
void ra_meta_reptile_step (float *theta, size_t n, const float *phis, int B, size_t stride, float eps);

/* The mean of B vectors (fixed order), e.g. first-order MAML's outer gradient. O(B n). */
void ra_meta_mean (float *out, size_t n, const float *vecs, int B, size_t stride);

/* ---------------------------------------------------------------------------- ES (docs/meta.md 2.3) */

/* A shared table of standard normal floats made from a seed: every process that builds it from
   the same (seed, len) holds the same values, so a perturbation is named by its offset alone. */
typedef struct {
  float *v;
  size_t len;
  uint64_t seed;
} ra_meta_noise_t;

/* RA_ERR_NOMEM or RA_ERR_BAD_CONFIG (len 0). O(len). */
ra_err_t ra_meta_noise_new (uint64_t seed, size_t len, ra_meta_noise_t *out, ra_error_t *err);
void ra_meta_noise_fini (ra_meta_noise_t *nt);
/* The offset of antithetic pair i's noise vector of n floats at ES iteration iter: a hash of
   (table seed, iter, i) reduced to [0, len - n]. Requires len >= n. */
size_t ra_meta_noise_offset (const ra_meta_noise_t *nt, uint64_t iter, int pair, size_t n);
/* Member m of a population of antithetic pairs: out = theta + s sigma eps_{m/2}, with s = +1 for
   even m and -1 for odd m, eps read from the table at ra_meta_noise_offset (iter, m/2). O(n). */
void ra_meta_perturb (const ra_meta_noise_t *nt, uint64_t iter, int member, const float *theta,
                      size_t n, float sigma, float *out);
/* Centered ranks of P fitness values: rank r (0 = lowest; ties by index) to r/(P-1) - 0.5, in
   [-0.5, 0.5] summing to 0. P = 1 gives 0. idx is scratch for P ints. O(P log P). */
void ra_meta_centered_ranks (const float *fitness, int P, int *idx, float *out);
/* The ES gradient estimate from the utilities u of P = 2m members (pairs adjacent):
   g = 1/(2 m sigma) sum_i (u_{2i} - u_{2i+1}) eps_i. O(P n). */
void ra_meta_es_grad (const ra_meta_noise_t *nt, uint64_t iter, const float *u, int P, size_t n,
                      float sigma, float *g);

/* ---------------------------------------------------------------------------- Adam (docs/meta.md 2.5) */

typedef struct {
  float lr, beta1, beta2, eps, weight_decay;
  int64_t t;                 /* steps taken */
  float *m, *v;              /* [n] moments, owned */
  size_t n;
} ra_meta_adam_t;

/* lr, weight decay; betas 0.9/0.999, eps 1e-8. RA_ERR_NOMEM. */
ra_err_t ra_meta_adam_init (ra_meta_adam_t *a, size_t n, float lr, float weight_decay, ra_error_t *err);
void ra_meta_adam_fini (ra_meta_adam_t *a);
/* One ascent step along g (Adam with bias correction, then decoupled weight decay:
   theta -= lr * wd * theta). O(n). */
void ra_meta_adam_ascend (ra_meta_adam_t *a, float *theta, const float *g);
/* Reptile with --outer-opt adam (docs/meta.md 2.1): theta <- AdamW(theta, (1/B) sum_b (phi_b -
   theta)). delta_sum holds sum_b (phi_b - theta) over the B tasks and is overwritten with its
   mean. O(n). */
void ra_meta_reptile_adam_step (ra_meta_adam_t *a, float *theta, float *delta_sum, int B);

#endif
