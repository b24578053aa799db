/*  agents/policies/baseline.h - what the classic baselines share (docs/agents.md section 1):
    their RNG stream (common/rng.h), top-k slates, the shared feature map phi(u, c), item keys, and checked
    config lookups. Internal to ra_policies (ra__ names). Pure functions or caller-owned state;
    thread-safe.                                                                               */
#ifndef RA_AGENTS_POLICIES_BASELINE_H
#define RA_AGENTS_POLICIES_BASELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "agents/policies/policy.h"
#include "common/rng.h"

/* Writes k distinct indexes of [0, K) drawn uniformly (partial Fisher-Yates) into slate.
   K <= RA__SLATE_RANDOM_MAX (arms check it when they are created). */
#define RA__SLATE_RANDOM_MAX 4096
void ra__slate_random (ra_rng_t *r, int K, int k, int32_t *slate);
/* Writes the k highest-scoring indexes, best first, into slate; ties go to the lower index. O(K k). */
void ra__slate_top_k (const float *score, int K, int k, int32_t *slate);

/* Embedding width of the shared obs layout: user = [interest estimate (e), 4 context features],
   candidates = [embedding (e), domain features...]. e = min(U, F) - 4, at least 1 and at most
   min(U, F). */
int ra__embed_dim (int user_dim, int cand_dim);
/* Dimension of phi: F + e + 1. */
int ra__phi_dim (int user_dim, int cand_dim);
/* phi(u, c) = [c (F); u[0:e] * c[0:e] elementwise (e); 1], written into out (phi_dim floats). */
void ra__phi (const float *u, int user_dim, const float *c, int cand_dim, float *out);

/* The catalog identity of candidate c of env i: obs->item_ids when the sim sends them, else the
   fallback below. Non-negative. */
int64_t ra__item_key (const ra_obs_batch_t *obs, int i, int c);
/* FALLBACK until every sim sends "item_ids": a 62-bit hash of the bit patterns of the first
   min(8, F) features of the candidate row (the embedding, constant per item). Remove with the
   fallback. */
int64_t ra__item_key_from_row (const float *row, int cand_dim);

/* Config: the value of key as a number in [lo, hi] (def when absent). RA_ERR_BAD_CONFIG naming
   the key when it is not a number or out of range. */
ra_err_t ra__config_num (const ra_policy_args_t *args, const char *key, double def, double lo,
                         double hi, double *out, ra_error_t *err);
/* RA_ERR_BAD_CONFIG naming the first key of args that is not in allowed (NULL-terminated). */
ra_err_t ra__config_check (const ra_policy_args_t *args, const char *const *allowed, ra_error_t *err);

/* Per-slot learning signal: slot_reward when given, else clicked, else 0. */
float ra__slot_credit (const ra_feedback_t *fb, int i, int r, int k);

#endif
