/*  agents/policies/baseline.c - shared pieces of the classic baselines (see baseline.h). */
#include "agents/policies/baseline.h"

#include <assert.h>
#include <math.h>
#include <string.h>

void ra__slate_random (ra_rng_t *r, int K, int k, int32_t *slate)
{
  assert (k >= 1 && k <= K && K <= RA__SLATE_RANDOM_MAX);
  int32_t idx[RA__SLATE_RANDOM_MAX];
  for (int j = 0; j < K; j++)
    idx[j] = j;
  for (int j = 0; j < k; j++) {
    int p = j + (int) ra_rng_below (r, (uint32_t) (K - j));
    int32_t t = idx[j];
    idx[j] = idx[p];
    idx[p] = t;
    slate[j] = idx[j];
  }
}

void ra__slate_top_k (const float *score, int K, int k, int32_t *slate)
{
  assert (k >= 1 && k <= K);
  for (int j = 0; j < k; j++) {
    int best = -1;
    for (int c = 0; c < K; c++) {
      bool taken = false;
      for (int q = 0; q < j; q++)
        taken |= slate[q] == c;
      if (!taken && (best < 0 || score[c] > score[best]))
        best = c;
    }
    slate[j] = best;
  }
}

int ra__embed_dim (int user_dim, int cand_dim)
{
  int m = user_dim < cand_dim ? user_dim : cand_dim;
  int e = m - 4;
  return e < 1 ? (m < 1 ? 1 : m) : e;
}

int ra__phi_dim (int user_dim, int cand_dim)
{
  return cand_dim + ra__embed_dim (user_dim, cand_dim) + 1;
}

void ra__phi (const float *u, int user_dim, const float *c, int cand_dim, float *out)
{
  int e = ra__embed_dim (user_dim, cand_dim);
  memcpy (out, c, (size_t) cand_dim * sizeof *out);
  for (int j = 0; j < e; j++)
    out[cand_dim + j] = u[j] * c[j];
  out[cand_dim + e] = 1.0f;
}

int64_t ra__item_key_from_row (const float *row, int cand_dim)
{
  uint64_t h = 0xCBF29CE484222325ull;
  int n = cand_dim < 8 ? cand_dim : 8;
  for (int j = 0; j < n; j++) {
    uint32_t bits;
    memcpy (&bits, &row[j], 4);
    h = (h ^ bits) * 0x100000001B3ull;
    h ^= h >> 29;
  }
  return (int64_t) (h >> 2);
}

int64_t ra__item_key (const ra_obs_batch_t *obs, int i, int c)
{
  if (obs->item_ids)
    return obs->item_ids[(size_t) i * obs->num_candidates + c];
  const float *row = obs->candidates + ((size_t) i * obs->num_candidates + c) * obs->cand_dim;
  return ra__item_key_from_row (row, obs->cand_dim);
}

ra_err_t ra__config_num (const ra_policy_args_t *args, const char *key, double def, double lo,
                         double hi, double *out, ra_error_t *err)
{
  *out = def;
  for (int i = 0; i < args->n_config; i++) {
    const ra_kv_t *kv = &args->config[i];
    if (strcmp (kv->key, key) != 0)
      continue;
    if (kv->type != RA_KV_NUM || !(kv->num >= lo && kv->num <= hi))
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "arm setting '%s' must be a number in "
                           "[%g, %g]", key, lo, hi);
    *out = kv->num;
  }
  return RA_OK;
}

ra_err_t ra__config_check (const ra_policy_args_t *args, const char *const *allowed, ra_error_t *err)
{
  for (int i = 0; i < args->n_config; i++) {
    bool ok = false;
    for (const char *const *a = allowed; *a && !ok; a++)
      ok = strcmp (*a, args->config[i].key) == 0;
    if (!ok) {
      char list[160] = "";
      for (const char *const *a = allowed; *a; a++)
        if (strlen (list) + strlen (*a) + 3 < sizeof list) {
          strcat (list, list[0] ? ", " : "");
          strcat (list, *a);
        }
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "unknown arm setting '%s' (expected one of: %s)",
                           args->config[i].key, list[0] ? list : "none");
    }
  }
  return RA_OK;
}

float ra__slot_credit (const ra_feedback_t *fb, int i, int r, int k)
{
  if (fb->slot_reward)
    return fb->slot_reward[(size_t) i * k + r];
  if (fb->clicked)
    return fb->clicked[(size_t) i * k + r] ? 1.0f : 0.0f;
  return 0.0f;
}
