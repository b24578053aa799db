/*  agents/meta/core.c - the meta learners' pure update math (see core.h; docs/meta.md 2). */
#include "agents/meta/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agents/nn/nn.h"

void ra_meta_reptile_step (float *theta, size_t n, const float *phis, int B, size_t stride, float eps)
{
  for (size_t j = 0; j < n; j++) {
    double s = 0;
    for (int b = 0; b < B; b++)
      s += (double) phis[(size_t) b * stride + j] - theta[j];
    theta[j] = (float) (theta[j] + eps * (s / B));
  }
}

void ra_meta_mean (float *out, size_t n, const float *vecs, int B, size_t stride)
{
  for (size_t j = 0; j < n; j++) {
    double s = 0;
    for (int b = 0; b < B; b++)
      s += vecs[(size_t) b * stride + j];
    out[j] = (float) (s / B);
  }
}

ra_err_t ra_meta_noise_new (uint64_t seed, size_t len, ra_meta_noise_t *out, ra_error_t *err)
{
  memset (out, 0, sizeof *out);
  if (len == 0)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "meta: the noise table needs at least one value");
  if (!(out->v = malloc (len * sizeof (float))))
    return ra_error_set (err, RA_ERR_NOMEM, -1, "meta: out of memory for a noise table of %zu floats", len);
  out->len = len;
  out->seed = seed;
  ra_nn_rng_t r;
  ra_nn_rng_init (&r, seed, 0x6e6f697365ull); /* "noise" */
  for (size_t i = 0; i < len; i++)
    out->v[i] = ra_nn_rng_normal (&r);
  return RA_OK;
}

void ra_meta_noise_fini (ra_meta_noise_t *nt)
{
  free (nt->v);
  memset (nt, 0, sizeof *nt);
}

static uint64_t s_mix (uint64_t x)
{
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

size_t ra_meta_noise_offset (const ra_meta_noise_t *nt, uint64_t iter, int pair, size_t n)
{
  uint64_t h = s_mix (s_mix (s_mix (nt->seed) ^ iter) ^ (uint64_t) pair);
  return (size_t) (h % (uint64_t) (nt->len - n + 1));
}

void ra_meta_perturb (const ra_meta_noise_t *nt, uint64_t iter, int member, const float *theta,
                      size_t n, float sigma, float *out)
{
  const float *e = nt->v + ra_meta_noise_offset (nt, iter, member / 2, n);
  float s = member % 2 ? -sigma : sigma;
  for (size_t j = 0; j < n; j++)
    out[j] = theta[j] + s * e[j];
}


void ra_meta_centered_ranks (const float *fitness, int P, int *idx, float *out)
{
  if (P == 1) {
    out[0] = 0;
    return;
  }
  /* insertion sort by (fitness, index): no global state, stable, P is small */
  for (int i = 0; i < P; i++) {
    int j = i;
    while (j > 0) {
      int a = idx[j - 1];
      int before = fitness[a] > fitness[i] || (fitness[a] == fitness[i] && a > i);
      if (!before)
        break;
      idx[j] = idx[j - 1];
      j--;
    }
    idx[j] = i;
  }
  for (int r = 0; r < P; r++)
    out[idx[r]] = (float) r / (float) (P - 1) - 0.5f;
}

void ra_meta_es_grad (const ra_meta_noise_t *nt, uint64_t iter, const float *u, int P, size_t n,
                      float sigma, float *g)
{
  int m = P / 2;
  double *acc = NULL;
  /* accumulate in double, pair 0 first; chunked so no allocation is needed */
  enum { CH = 256 };
  double buf[CH];
  acc = buf;
  for (size_t j0 = 0; j0 < n; j0 += CH) {
    size_t c = n - j0 < CH ? n - j0 : CH;
    memset (acc, 0, c * sizeof (double));
    for (int i = 0; i < m; i++) {
      const float *e = nt->v + ra_meta_noise_offset (nt, iter, i, n) + j0;
      double w = (double) u[2 * i] - u[2 * i + 1];
      for (size_t j = 0; j < c; j++)
        acc[j] += w * e[j];
    }
    for (size_t j = 0; j < c; j++)
      g[j0 + j] = (float) (acc[j] / (2.0 * m * sigma));
  }
}

ra_err_t ra_meta_adam_init (ra_meta_adam_t *a, size_t n, float lr, float weight_decay, ra_error_t *err)
{
  *a = (ra_meta_adam_t) { .lr = lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                          .weight_decay = weight_decay, .n = n };
  a->m = calloc (n ? n : 1, sizeof (float));
  a->v = calloc (n ? n : 1, sizeof (float));
  if (!a->m || !a->v) {
    ra_meta_adam_fini (a);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "meta: out of memory for Adam over %zu parameters", n);
  }
  return RA_OK;
}

void ra_meta_adam_fini (ra_meta_adam_t *a)
{
  free (a->m);
  free (a->v);
  a->m = a->v = NULL;
}

void ra_meta_reptile_adam_step (ra_meta_adam_t *a, float *theta, float *delta_sum, int B)
{
  for (size_t j = 0; j < a->n; j++)
    delta_sum[j] /= (float) B;
  ra_meta_adam_ascend (a, theta, delta_sum);
}

void ra_meta_adam_ascend (ra_meta_adam_t *a, float *theta, const float *g)
{
  a->t++;
  double c1 = 1.0 - pow (a->beta1, (double) a->t), c2 = 1.0 - pow (a->beta2, (double) a->t);
  for (size_t j = 0; j < a->n; j++) {
    a->m[j] = a->beta1 * a->m[j] + (1 - a->beta1) * g[j];
    a->v[j] = a->beta2 * a->v[j] + (1 - a->beta2) * g[j] * g[j];
    double mh = a->m[j] / c1, vh = a->v[j] / c2;
    theta[j] = (float) (theta[j] + a->lr * mh / (sqrt (vh) + a->eps) - a->lr * a->weight_decay * theta[j]);
  }
}
