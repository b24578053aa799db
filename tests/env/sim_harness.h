/*  tests/env/sim_harness.h - test-only helpers: caller-owned buffers for a sim batch and a
    random valid slate generator. Header-only (static functions); one copy per suite.          */
#ifndef RA_TESTS_ENV_SIM_HARNESS_H
#define RA_TESTS_ENV_SIM_HARNESS_H

#include <stdlib.h>
#include <string.h>

#include "env/core/rng.h"
#include "env/core/sim.h"
#include "protocol/tensor.h"

typedef struct {
  int n;
  const ra_sim_spec_t *spec;
  ra_sim_buffers_t buf;
  size_t obs_bytes[RA_SIM_MAX_FIELDS];  /* per env */
  size_t info_bytes[RA_SIM_MAX_FIELDS]; /* per env */
} harness_t;

static inline size_t h_numel (const ra_field_spec_t *f)
{
  size_t n = 1;
  for (int i = 0; i < f->ndim; i++)
    n *= (size_t) f->shape[i];
  return n;
}

static inline size_t h_dsize (ra_dtype_t t)
{
  return t == RA_DTYPE_F64 || t == RA_DTYPE_I64 ? 8 : t == RA_DTYPE_U8 || t == RA_DTYPE_I8 || t == RA_DTYPE_BOOL ? 1 : 4;
}

static inline void h_init (harness_t *h, const ra_sim_spec_t *sp, int n)
{
  memset (h, 0, sizeof *h);
  h->n = n;
  h->spec = sp;
  for (int f = 0; f < sp->n_obs; f++) {
    h->obs_bytes[f] = h_numel (&sp->obs[f]) * h_dsize (sp->obs[f].dtype);
    h->buf.obs[f] = calloc ((size_t) n, h->obs_bytes[f]);
  }
  for (int f = 0; f < sp->n_info; f++) {
    h->info_bytes[f] = h_numel (&sp->info[f]) * h_dsize (sp->info[f].dtype);
    h->buf.info[f] = calloc ((size_t) n, h->info_bytes[f]);
  }
  h->buf.reward = calloc ((size_t) n, sizeof (float));
  h->buf.terminated = calloc ((size_t) n, 1);
}

static inline void h_fini (harness_t *h)
{
  for (int f = 0; f < RA_SIM_MAX_FIELDS; f++) {
    free (h->buf.obs[f]);
    free (h->buf.info[f]);
  }
  free (h->buf.reward);
  free (h->buf.terminated);
}

static inline int h_info_index (const harness_t *h, const char *name)
{
  for (int f = 0; f < h->spec->n_info; f++)
    if (strcmp (h->spec->info[f].name, name) == 0)
      return f;
  return -1;
}

static inline int h_obs_index (const harness_t *h, const char *name)
{
  for (int f = 0; f < h->spec->n_obs; f++)
    if (strcmp (h->spec->obs[f].name, name) == 0)
      return f;
  return -1;
}

/* A random slate of k distinct indices in [0, K). */
static inline void h_random_slate (ra_rng_t *rng, int K, int k, int32_t *out)
{
  for (int r = 0; r < k; r++) {
    int dup;
    do {
      out[r] = (int32_t) ra_rng_below (rng, (uint32_t) K);
      dup = 0;
      for (int q = 0; q < r; q++)
        dup |= out[q] == out[r];
    } while (dup);
  }
}

#endif
