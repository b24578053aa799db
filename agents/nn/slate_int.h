/*  agents/nn/slate_int.h - one row of the slate ops (docs/nn.md S1-S3) as inline functions, so
    the cpu backend (one row per loop iteration) and the cuda kernels (one thread per row) run the
    same arithmetic in the same order. Internal to agents/nn; pure functions, thread-safe.     */
#ifndef RA_AGENTS_NN_SLATE_INT_H
#define RA_AGENTS_NN_SLATE_INT_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "agents/nn/rng_int.h"

/* Whether candidate j is among the first upto entries of slate. O(upto). */
static inline RA__NN_HD bool ra__nn_placed (const int32_t *slate, int upto, int j)
{
  for (int i = 0; i < upto; i++)
    if (slate[i] == j)
      return true;
  return false;
}

/* Candidate j's selection key in row r: its score, plus Gumbel noise drawn at counter + r*K + j
   unless greedy (S1). */
static inline RA__NN_HD float ra__nn_slate_key (const float *s, int K, int j, bool greedy, uint64_t seed,
                                               uint64_t stream, uint64_t counter, uint64_t r)
{
  float key = s[j];
  if (!greedy) {
    double u = ra__nn_uniform_at (seed, stream, counter + r * (uint64_t) K + (uint64_t) j);
    if (u < 1e-12)
      u = 1e-12;
    key += (float) -log (-log (u));
  }
  return key;
}

/* Rows of up to this many candidates keep their keys in a local array: computed once instead of
   on each of the k selection passes (the two logs per key dominated the GPU's slate kernel). */
#define RA__NN_SLATE_KEYS 256

/* Row r's slate of k from K scores s: top-k of the keys, the first of equal keys winning (S1).
   O(k K). */
static inline RA__NN_HD void ra__nn_slate_row (const float *s, int K, int k, bool greedy, uint64_t seed,
                                               uint64_t stream, uint64_t counter, uint64_t r, int32_t *out)
{
  float keys[RA__NN_SLATE_KEYS];
  bool kept = K <= RA__NN_SLATE_KEYS;
  for (int j = 0; kept && j < K; j++)
    keys[j] = ra__nn_slate_key (s, K, j, greedy, seed, stream, counter, r);
  for (int pos = 0; pos < k; pos++) {
    int best = -1;
    float bk = 0.0f;
    for (int j = 0; j < K; j++) {
      if (ra__nn_placed (out, pos, j))
        continue;
      float key = kept ? keys[j] : ra__nn_slate_key (s, K, j, greedy, seed, stream, counter, r);
      if (best < 0 || key > bk) {
        best = j;
        bk = key;
      }
    }
    out[pos] = best;
  }
}

/* Plackett-Luce log-probability and entropy of slate a (k of K) under scores s (S2-S3). Position
   i: p_i = softmax over the candidates not yet placed. log P = sum_i s[a_i] - lse_i;
   d/ds_j = sum_i (1{j = a_i} - p_i(j)); H_i = -sum p log p; dH_i/ds_j = -p_i(j) (log p_i(j) + H_i).
   With ds, accumulates sum_i (coef + pos_coef[i]) d log p_i(a_i)/ds + ent_coef * dH/ds into it
   (pos_coef: k per-position coefficients, or NULL for none; S6). Double inside a row. O(k K). */
static inline RA__NN_HD void ra__nn_pl_row (const float *s, const int32_t *a, int K, int k, double *logp,
                                            double *ent, float coef, const float *pos_coef, float ent_coef,
                                            float *ds)
{
  double lp = 0, h_all = 0;
  for (int i = 0; i < k; i++) {
    double mx = -INFINITY;
    for (int j = 0; j < K; j++)
      if (!ra__nn_placed (a, i, j) && s[j] > mx)
        mx = s[j];
    double z = 0;
    for (int j = 0; j < K; j++)
      if (!ra__nn_placed (a, i, j))
        z += exp (s[j] - mx);
    double lse = mx + log (z), h = 0;
    for (int j = 0; j < K; j++)
      if (!ra__nn_placed (a, i, j)) {
        double l = s[j] - lse;
        h -= exp (l) * l;
      }
    if (ds) {
      float c = pos_coef ? coef + pos_coef[i] : coef;
      for (int j = 0; j < K; j++)
        if (!ra__nn_placed (a, i, j)) {
          double l = s[j] - lse, p = exp (l);
          ds[j] += (float) (c * ((j == a[i]) - p) + ent_coef * (-p * (l + h)));
        }
    }
    lp += s[a[i]] - lse;
    h_all += h;
  }
  if (logp)
    *logp = lp;
  if (ent)
    *ent = h_all;
}

#endif
