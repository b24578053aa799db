/*  agents/policies/policy.c - unpacking a reply's obs fields into a policy's batch view. */
#include "agents/policies/policy.h"

#include <string.h>

/* Finds name as an f32 tensor of rank want_ndim (leading axis N); returns NULL and sets err if
   it is missing or shaped otherwise. */
static const ra_tensor_t *s_field (const ra_fields_t *obs, const char *name, ra_dtype_t dtype,
                                   int want_ndim, ra_error_t *err)
{
  int i = ra_fields_find (obs, name);
  if (i < 0) {
    ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "observation has no field '%s'", name);
    return NULL;
  }
  const ra_tensor_t *t = &obs->tensors[i];
  if (t->dtype != dtype || t->ndim != want_ndim) {
    ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                  "observation field '%s' is %s of rank %d, expected %s of rank %d", name,
                  ra_dtype_name (t->dtype), t->ndim, ra_dtype_name (dtype), want_ndim);
    return NULL;
  }
  return t;
}

/* Returns t's data, or a copy in scratch when it is not aligned for 4-byte reads. */
static const void *s_aligned (const ra_tensor_t *t, float **scratch, size_t *left)
{
  if (((uintptr_t) t->data & 3u) == 0)
    return t->data;
  size_t n = t->nbytes / 4;
  if (!*scratch || *left < n)
    return NULL;
  memcpy (*scratch, t->data, t->nbytes);
  const void *copy = *scratch;
  *scratch += n;
  *left -= n;
  return copy;
}

ra_err_t ra_obs_batch_from_fields (const ra_fields_t *obs, int slate_size, float *scratch,
                                   size_t scratch_floats, ra_obs_batch_t *out, ra_error_t *err)
{
  const ra_tensor_t *user = s_field (obs, "user", RA_DTYPE_F32, 2, err);
  const ra_tensor_t *cand = user ? s_field (obs, "candidates", RA_DTYPE_F32, 3, err) : NULL;
  const ra_tensor_t *resp = cand ? s_field (obs, "response", RA_DTYPE_F32, 2, err) : NULL;
  if (!resp)
    return err ? err->code : RA_ERR_BAD_REQUEST;
  int64_t n = user->shape[0];
  if (cand->shape[0] != n || resp->shape[0] != n)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                         "observation fields disagree on the batch size: user %lld, "
                         "candidates %lld, response %lld", (long long) n,
                         (long long) cand->shape[0], (long long) resp->shape[0]);
  const ra_tensor_t *ids = NULL;
  if (ra_fields_find (obs, "item_ids") >= 0) {
    ids = s_field (obs, "item_ids", RA_DTYPE_I32, 2, err);
    if (!ids)
      return err ? err->code : RA_ERR_BAD_REQUEST;
    if (ids->shape[0] != n || ids->shape[1] != cand->shape[1])
      return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                           "observation field 'item_ids' is (%lld, %lld), expected (%lld, %lld)",
                           (long long) ids->shape[0], (long long) ids->shape[1], (long long) n,
                           (long long) cand->shape[1]);
  }
  *out = (ra_obs_batch_t) {
    .num_envs = (int) n, .num_candidates = (int) cand->shape[1], .slate_size = slate_size,
    .user_dim = (int) user->shape[1], .cand_dim = (int) cand->shape[2],
    .response_dim = (int) resp->shape[1],
  };
  out->user = s_aligned (user, &scratch, &scratch_floats);
  out->candidates = s_aligned (cand, &scratch, &scratch_floats);
  out->response = s_aligned (resp, &scratch, &scratch_floats);
  out->item_ids = ids ? s_aligned (ids, &scratch, &scratch_floats) : NULL;
  if (!out->user || !out->candidates || !out->response || (ids && !out->item_ids))
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                         "observation tensors are not 4-byte aligned and no scratch space was given");
  return RA_OK;
}
