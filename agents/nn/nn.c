/*  agents/nn/nn.c - backend selection, RNG, the parameter buffer, layers, losses and optimizers.

    Every function here is a thin, shape-checked dispatch onto the backend's ops table
    (agents/nn/backend.h); the numerics live in backend_cpu.c and backend_cuda.cu.
    Not thread-safe: one backend per thread.                                                   */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/nn/backend.h"
#include "agents/nn/nn.h"
#include "agents/nn/linear_int.h"
#include "agents/nn/rng_int.h"

/* ---------------------------------------------------------------------------------- backends */

bool ra_nn_have_cuda_build (void)
{
#ifdef RA_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

ra_err_t ra_nn_backend_open (const char *name, const ra_nn_backend_opts_t *opts, ra_nn_backend_t **out,
                             ra_error_t *err)
{
  assert (name && out);
  ra_nn_backend_opts_t o = { 0 };
  if (opts)
    o = *opts;
  *out = NULL;
  const ra__nn_ops_t *ops = NULL;
  void *ctx = NULL;
  ra_err_t rc;
  if (strcmp (name, "cpu") == 0) {
    rc = ra__nn_cpu_open (o.blas_threads, &ops, &ctx, err);
  } else if (strcmp (name, "cuda") == 0 || strcmp (name, "auto") == 0) {
#ifdef RA_HAVE_CUDA
    rc = ra__nn_cuda_open (o.device, o.allow_tf32, &ops, &ctx, err);
#else
    rc = ra__nn_error (err, RA_ERR_BAD_CONFIG, "nn backend 'cuda' is not in this build (built without a CUDA compiler); use 'cpu' or 'auto'");
#endif
    if (rc != RA_OK && strcmp (name, "auto") == 0) {
      ra_error_clear (err);
      rc = ra__nn_cpu_open (o.blas_threads, &ops, &ctx, err);
    }
  } else {
    return ra__nn_error (err, RA_ERR_BAD_CONFIG, "nn backend '%s' is unknown; expected cpu, cuda or auto",
                         name);
  }
  if (rc != RA_OK)
    return rc;
  ra_nn_backend_t *be = calloc (1, sizeof *be);
  if (!be) {
    ops->destroy (ctx);
    return ra__nn_error (err, RA_ERR_NOMEM, "nn backend: out of memory");
  }
  be->ops = ops;
  be->ctx = ctx;
  *out = be;
  return RA_OK;
}

void ra_nn_backend_destroy (ra_nn_backend_t **be_p)
{
  if (!be_p || !*be_p)
    return;
  (*be_p)->ops->destroy ((*be_p)->ctx);
  free (*be_p);
  *be_p = NULL;
}

const char *ra_nn_backend_name (const ra_nn_backend_t *be) { return be->ops->name; }

ra_err_t ra_nn_backend_status (ra_nn_backend_t *be, ra_error_t *err)
{
  return be->ops->status ? be->ops->status (be->ctx, err) : RA_OK;
}

float *ra_nn_alloc (ra_nn_backend_t *be, size_t count) { return be->ops->alloc (be->ctx, count * sizeof (float)); }
void ra_nn_free (ra_nn_backend_t *be, void *p)
{
  if (p)
    be->ops->free (be->ctx, p);
}
void ra_nn_upload (ra_nn_backend_t *be, float *dst, const float *host, size_t count)
{
  be->ops->upload (be->ctx, dst, host, count * sizeof (float));
}
void ra_nn_upload_bytes (ra_nn_backend_t *be, void *dst, const void *host, size_t bytes)
{
  be->ops->upload (be->ctx, dst, host, bytes);
}
void *ra_nn_host_alloc (ra_nn_backend_t *be, size_t bytes) { return be->ops->host_alloc (be->ctx, bytes); }
void ra_nn_host_free (ra_nn_backend_t *be, void *p)
{
  if (p)
    be->ops->host_free (be->ctx, p);
}
void ra_nn_upload_async (ra_nn_backend_t *be, void *dst, const void *host, size_t bytes)
{
  be->ops->upload_async (be->ctx, dst, host, bytes);
}
void ra_nn_upload_rows_async (ra_nn_backend_t *be, void *dst, size_t dst_pitch, const void *host,
                              size_t host_pitch, size_t row_bytes, size_t rows)
{
  be->ops->upload_rows_async (be->ctx, dst, dst_pitch, host, host_pitch, row_bytes, rows);
}
void ra_nn_download (ra_nn_backend_t *be, float *host, const float *src, size_t count)
{
  be->ops->download (be->ctx, host, src, count * sizeof (float));
}
void ra_nn_copy (ra_nn_backend_t *be, float *dst, const float *src, size_t count)
{
  be->ops->copy (be->ctx, dst, src, count * sizeof (float));
}
void ra_nn_zero (ra_nn_backend_t *be, float *x, size_t count) { be->ops->zero (be->ctx, x, count * sizeof (float)); }
void ra_nn_sync (ra_nn_backend_t *be) { be->ops->sync (be->ctx); }
void ra_nn_axpy (ra_nn_backend_t *be, float *y, float a, const float *x, size_t count)
{
  be->ops->axpy (be->ctx, y, a, x, count);
}
void ra_nn_scale (ra_nn_backend_t *be, float *x, float a, size_t count) { be->ops->scale (be->ctx, x, a, count); }
void ra_nn_scale_rows (ra_nn_backend_t *be, float *x, const float *g, int P, int R, int K, size_t pitch)
{
  be->ops->scale_rows (be->ctx, x, g, P, R, K, pitch);
}

/* ------------------------------------------------------------------------------------- RNG */

void ra_nn_rng_init (ra_nn_rng_t *r, uint64_t seed, uint64_t stream)
{
  r->seed = seed;
  r->stream = stream;
  r->counter = 0;
}

uint64_t ra_nn_rng_u64 (ra_nn_rng_t *r)
{
  return ra__nn_rng_at (r->seed, r->stream, r->counter++);
}

float ra_nn_rng_uniform (ra_nn_rng_t *r) { return (float) (ra_nn_rng_u64 (r) >> 40) * (1.0f / 16777216.0f); }

float ra_nn_rng_normal (ra_nn_rng_t *r)
{
  double u1 = ((double) (ra_nn_rng_u64 (r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  double u2 = (double) (ra_nn_rng_u64 (r) >> 11) * (1.0 / 9007199254740992.0);
  return (float) (sqrt (-2.0 * log (u1)) * cos (6.283185307179586 * u2));
}

/* --------------------------------------------------------------------------------- parameters */

ra_nn_params_t *ra_nn_params_new (ra_nn_backend_t *be, int replicas, uint64_t seed)
{
  assert (be && replicas >= 1);
  ra_nn_params_t *p = calloc (1, sizeof *p);
  if (!p)
    return NULL;
  p->be = be;
  p->replicas = replicas;
  ra_nn_rng_init (&p->rng, seed, 0);
  return p;
}

void ra_nn_params_destroy (ra_nn_params_t **p_p)
{
  if (!p_p || !*p_p)
    return;
  ra_nn_params_t *p = *p_p;
  ra_nn_free (p->be, p->data);
  ra_nn_free (p->be, p->grad);
  ra_nn_free (p->be, p->adam_m);
  ra_nn_free (p->be, p->adam_v);
  ra_nn_free (p->be, p->step);
  ra_nn_free (p->be, p->lr_scale);
  ra_nn_free (p->be, p->scratch);
  free (p->tensors);
  free (p);
  *p_p = NULL;
}

int ra_nn_params_add (ra_nn_params_t *p, const char *name, int ndim, const int *shape)
{
  assert (p && !p->data && ndim >= 1 && ndim <= RA_NN_MAX_DIMS && strlen (name) < RA_NN_NAME_MAX);
  assert (ra_nn_params_find (p, name) < 0);
  ra_nn_tensor_t *t = realloc (p->tensors, sizeof *t * (p->ntensors + 1));
  if (!t) {
    p->add_failed = true; /* reported by ra_nn_params_alloc */
    return -1;
  }
  p->tensors = t;
  t = &p->tensors[p->ntensors];
  memset (t, 0, sizeof *t);
  snprintf (t->name, sizeof t->name, "%s", name);
  t->ndim = ndim;
  t->numel = 1;
  for (int i = 0; i < ndim; i++) {
    assert (shape[i] > 0);
    t->shape[i] = shape[i];
    t->numel *= (size_t) shape[i];
  }
  t->offset = p->n;
  p->n += (t->numel + 15) & ~(size_t) 15; /* 64-byte aligned tensors */
  return p->ntensors++;
}

ra_err_t ra_nn_params_alloc (ra_nn_params_t *p, ra_error_t *err)
{
  assert (p && !p->data);
  if (p->add_failed)
    return ra__nn_error (err, RA_ERR_NOMEM, "nn params: out of memory while adding tensors");
  size_t total = p->n * (size_t) p->replicas;
  p->scratch_len = (size_t) p->replicas * 4;
  p->data = ra_nn_alloc (p->be, total);
  p->grad = ra_nn_alloc (p->be, total);
  p->step = p->be->ops->alloc (p->be->ctx, sizeof (int32_t) * (size_t) p->replicas);
  p->scratch = ra_nn_alloc (p->be, p->scratch_len);
  p->lr_scale = ra_nn_alloc (p->be, (size_t) p->replicas);
  if (!p->data || !p->grad || !p->step || !p->scratch || !p->lr_scale)
    return ra__nn_error (err, RA_ERR_NOMEM, "nn params: cannot allocate %zu floats on %s", 2 * total,
                         p->be->ops->name);
  float *ones = malloc (sizeof (float) * (size_t) p->replicas);
  if (!ones)
    return ra__nn_error (err, RA_ERR_NOMEM, "nn params: out of memory");
  for (int r = 0; r < p->replicas; r++)
    ones[r] = 1.0f;
  ra_nn_upload (p->be, p->lr_scale, ones, (size_t) p->replicas);
  free (ones);
  return RA_OK;
}

int ra_nn_params_find (const ra_nn_params_t *p, const char *name)
{
  for (int i = 0; i < p->ntensors; i++)
    if (strcmp (p->tensors[i].name, name) == 0)
      return i;
  return -1;
}

float *ra_nn_param (const ra_nn_params_t *p, int t)
{
  assert (t >= 0 && t < p->ntensors && p->data);
  return p->data + p->tensors[t].offset;
}
float *ra_nn_grad (const ra_nn_params_t *p, int t)
{
  assert (t >= 0 && t < p->ntensors && p->grad);
  return p->grad + p->tensors[t].offset;
}

static bool s_ends_with (const char *s, const char *suffix)
{
  size_t a = strlen (s), b = strlen (suffix);
  return a >= b && strcmp (s + a - b, suffix) == 0;
}

void ra_nn_params_init (ra_nn_params_t *p, float gain)
{
  assert (p->data);
  float *host = calloc (p->n ? p->n : 1, sizeof (float));
  assert (host);
  for (int i = 0; i < p->ntensors; i++) {
    const ra_nn_tensor_t *t = &p->tensors[i];
    float *h = host + t->offset;
    if (t->ndim == 2 && s_ends_with (t->name, ".w")) {
      float a = gain * sqrtf (6.0f / (float) (t->shape[0] + t->shape[1]));
      for (size_t k = 0; k < t->numel; k++)
        h[k] = a * (2.0f * ra_nn_rng_uniform (&p->rng) - 1.0f);
    } else if (s_ends_with (t->name, ".g")) {
      for (size_t k = 0; k < t->numel; k++)
        h[k] = 1.0f;
    }
  }
  for (int r = 0; r < p->replicas; r++)
    ra_nn_upload (p->be, p->data + (size_t) r * p->n, host, p->n);
  free (host);
}

void ra_nn_params_zero_grad (ra_nn_params_t *p) { ra_nn_zero (p->be, p->grad, p->n * (size_t) p->replicas); }

/* Moments are allocated on the first Adam step; a copy into a table without them allocates
   them once (zeroed), so the copy carries the optimizer state. */
static ra_err_t s_ensure_moments (ra_nn_params_t *p, ra_error_t *err)
{
  if (p->adam_m)
    return RA_OK;
  size_t total = p->n * (size_t) p->replicas;
  p->adam_m = ra_nn_alloc (p->be, total);
  p->adam_v = ra_nn_alloc (p->be, total);
  if (!p->adam_m || !p->adam_v) {
    ra_nn_free (p->be, p->adam_m);
    ra_nn_free (p->be, p->adam_v);
    p->adam_m = p->adam_v = NULL;
    return ra__nn_error (err, RA_ERR_NOMEM, "nn adam: cannot allocate moments of %zu floats", 2 * total);
  }
  return RA_OK;
}

void ra_nn_params_copy_replica (ra_nn_params_t *b, int dst, const ra_nn_params_t *a, int src)
{
  assert (a->n == b->n && dst >= 0 && dst < b->replicas && src >= 0 && src < a->replicas);
  size_t n = a->n, od = (size_t) dst * n, os = (size_t) src * n;
  ra_nn_backend_t *be = b->be;
  ra_nn_copy (be, b->data + od, a->data + os, n);
  if (a->adam_m && s_ensure_moments (b, NULL) == RA_OK) {
    ra_nn_copy (be, b->adam_m + od, a->adam_m + os, n);
    ra_nn_copy (be, b->adam_v + od, a->adam_v + os, n);
  } else if (b->adam_m) { /* the source has taken no step: neither has the copy */
    ra_nn_zero (be, b->adam_m + od, n);
    ra_nn_zero (be, b->adam_v + od, n);
  }
  be->ops->copy (be->ctx, b->step + dst, a->step + src, sizeof (int32_t));
  ra_nn_copy (be, b->lr_scale + dst, a->lr_scale + src, 1);
}

ra_err_t ra_nn_params_copy (ra_nn_params_t *dst, const ra_nn_params_t *src, ra_error_t *err)
{
  assert (dst->n == src->n && dst->replicas == src->replicas && dst->ntensors == src->ntensors);
  size_t total = src->n * (size_t) src->replicas;
  ra_nn_backend_t *be = dst->be;
  if (src->adam_m) {
    ra_err_t rc = s_ensure_moments (dst, err);
    if (rc != RA_OK)
      return rc;
    ra_nn_copy (be, dst->adam_m, src->adam_m, total);
    ra_nn_copy (be, dst->adam_v, src->adam_v, total);
  } else if (dst->adam_m) {
    ra_nn_zero (be, dst->adam_m, total);
    ra_nn_zero (be, dst->adam_v, total);
  }
  ra_nn_copy (be, dst->data, src->data, total);
  ra_nn_copy (be, dst->grad, src->grad, total);
  be->ops->copy (be->ctx, dst->step, src->step, sizeof (int32_t) * (size_t) src->replicas);
  ra_nn_copy (be, dst->lr_scale, src->lr_scale, (size_t) src->replicas);
  dst->rng = src->rng;
  return RA_OK;
}

ra_nn_params_t *ra_nn_params_clone (const ra_nn_params_t *p)
{
  ra_nn_params_t *c = ra_nn_params_new (p->be, p->replicas, p->rng.seed);
  if (!c)
    return NULL;
  for (int i = 0; i < p->ntensors; i++)
    ra_nn_params_add (c, p->tensors[i].name, p->tensors[i].ndim, p->tensors[i].shape);
  if (ra_nn_params_alloc (c, NULL) != RA_OK || ra_nn_params_copy (c, p, NULL) != RA_OK) {
    ra_nn_params_destroy (&c);
    return NULL;
  }
  return c;
}

void ra_nn_params_set_lr_scale (ra_nn_params_t *p, const float *host)
{
  ra_nn_upload (p->be, p->lr_scale, host, (size_t) p->replicas);
}

/* ------------------------------------------------------------------------------------ layers */

#define OPS(be) ((be)->ops)
#define CTX(be) ((be)->ctx)

/* y[P][B, out] = x[P][B, in] w^T + b: y is filled with b, then the GEMM accumulates into it
   (beta = 1). Same sums as GEMM-then-add as long as the BLAS does not split the K axis
   (in <= its K block, a few hundred), so results did not change when this replaced the add. */
void ra__nn_linear_fwd (const ra_nn_params_t *p, int w, int b, const float *x, size_t xs, float *y, size_t ys,
                        int B)
{
  const ra_nn_tensor_t *tw = &p->tensors[w];
  assert (tw->ndim == 2 && p->tensors[b].numel == (size_t) tw->shape[0]);
  int out = tw->shape[0], in = tw->shape[1], P = p->replicas;
  ra_nn_backend_t *be = p->be;
  OPS (be)->bias_fill (CTX (be), y, NULL, ra_nn_param (p, b), P, B, 1, out, ys, 0, p->n);
  OPS (be)->gemm (CTX (be), false, true, B, out, in, 1.0f, x, in, (long long) xs, ra_nn_param (p, w), in,
                  (long long) p->n, 1.0f, y, out, (long long) ys, P);
}

void ra__nn_linear_bwd (const ra_nn_params_t *p, int w, int b, const float *x, size_t xs, const float *dy,
                        size_t dys, float *dx, size_t dxs, int B)
{
  const ra_nn_tensor_t *tw = &p->tensors[w];
  int out = tw->shape[0], in = tw->shape[1], P = p->replicas;
  ra_nn_backend_t *be = p->be;
  OPS (be)->gemm (CTX (be), true, false, out, in, B, 1.0f, dy, out, (long long) dys, x, in, (long long) xs, 1.0f,
                  ra_nn_grad (p, w), in, (long long) p->n, P);
  OPS (be)->bias_grad (CTX (be), ra_nn_grad (p, b), dy, P, B, out, p->n, dys);
  if (dx)
    OPS (be)->gemm (CTX (be), false, false, B, in, out, 1.0f, dy, out, (long long) dys, ra_nn_param (p, w), in,
                    (long long) p->n, 0.0f, dx, in, (long long) dxs, P);
}

void ra_nn_linear_forward (const ra_nn_params_t *p, int w, int b, const float *x, float *y, int B)
{
  const ra_nn_tensor_t *tw = &p->tensors[w];
  ra__nn_linear_fwd (p, w, b, x, (size_t) B * tw->shape[1], y, (size_t) B * tw->shape[0], B);
}

/* dw[out, in] += dy^T[out, B] x[B, in]; db += colsum dy; dx[B, in] = dy[B, out] w[out, in] */
void ra_nn_linear_backward (const ra_nn_params_t *p, int w, int b, const float *x, const float *dy, float *dx,
                            int B)
{
  const ra_nn_tensor_t *tw = &p->tensors[w];
  size_t xs = (size_t) B * tw->shape[1];
  ra__nn_linear_bwd (p, w, b, x, xs, dy, (size_t) B * tw->shape[0], dx, xs, B);
}

/* v[B] = x[B, in] w[1, in]^T + b[1] */
void ra_nn_value_forward (const ra_nn_params_t *p, int w, int b, const float *x, float *v, int B)
{
  assert (p->tensors[w].shape[0] == 1);
  ra_nn_linear_forward (p, w, b, x, v, B);
}
void ra_nn_value_backward (const ra_nn_params_t *p, int w, int b, const float *x, const float *dv, float *dx, int B)
{
  assert (p->tensors[w].shape[0] == 1);
  ra_nn_linear_backward (p, w, b, x, dv, dx, B);
}

void ra_nn_relu_forward (ra_nn_backend_t *be, const float *x, float *y, size_t n)
{
  OPS (be)->relu_fwd (CTX (be), x, y, 1, n, n);
}
void ra_nn_relu_backward (ra_nn_backend_t *be, const float *y, const float *dy, float *dx, size_t n)
{
  OPS (be)->relu_bwd (CTX (be), y, dy, dx, 1, n, n);
}
void ra_nn_tanh_forward (ra_nn_backend_t *be, const float *x, float *y, size_t n)
{
  OPS (be)->tanh_fwd (CTX (be), x, y, 1, n, n);
}
void ra_nn_tanh_backward (ra_nn_backend_t *be, const float *y, const float *dy, float *dx, size_t n)
{
  OPS (be)->tanh_bwd (CTX (be), y, dy, dx, 1, n, n);
}

void ra_nn_layernorm_forward (const ra_nn_params_t *p, int g, int b, const float *x, float *y, float *mean,
                              float *rstd, int B)
{
  int D = (int) p->tensors[g].numel;
  assert (p->tensors[b].numel == (size_t) D);
  OPS (p->be)->ln_fwd (CTX (p->be), x, ra_nn_param (p, g), ra_nn_param (p, b), y, mean, rstd, p->replicas, B, D,
                       p->n);
}

void ra_nn_layernorm_backward (const ra_nn_params_t *p, int g, int b, const float *x, const float *mean,
                               const float *rstd, const float *dy, float *dx, int B)
{
  int D = (int) p->tensors[g].numel;
  OPS (p->be)->ln_bwd (CTX (p->be), x, ra_nn_param (p, g), mean, rstd, dy, dx, ra_nn_grad (p, g), ra_nn_grad (p, b),
                       p->replicas, B, D, p->n);
}

void ra_nn_softmax_forward (ra_nn_backend_t *be, const float *x, float *y, int R, int C)
{
  OPS (be)->softmax_fwd (CTX (be), x, y, R, C, false);
}
void ra_nn_softmax_backward (ra_nn_backend_t *be, const float *y, const float *dy, float *dx, int R, int C)
{
  OPS (be)->softmax_bwd (CTX (be), y, dy, dx, R, C, false);
}
void ra_nn_log_softmax_forward (ra_nn_backend_t *be, const float *x, float *y, int R, int C)
{
  OPS (be)->softmax_fwd (CTX (be), x, y, R, C, true);
}
void ra_nn_log_softmax_backward (ra_nn_backend_t *be, const float *y, const float *dy, float *dx, int R, int C)
{
  OPS (be)->softmax_bwd (CTX (be), y, dy, dx, R, C, true);
}

void ra_nn_pairs_forward (ra_nn_backend_t *be, const float *user, const float *cand, float *out, int R, int C,
                          int du, int dc)
{
  OPS (be)->pairs_fwd (CTX (be), user, cand, out, R, C, du, dc);
}
void ra_nn_pairs_backward (ra_nn_backend_t *be, const float *dout, float *duser, float *dcand, int R, int C,
                           int du, int dc)
{
  OPS (be)->pairs_bwd (CTX (be), dout, duser, dcand, R, C, du, dc);
}

/* ------------------------------------------------------------------------------------ losses */

void ra_nn_pg_loss_forward (ra_nn_backend_t *be, const float *logp, const int32_t *act, const float *adv,
                            float *loss, int P, int U, int C)
{
  OPS (be)->pg_fwd (CTX (be), logp, act, adv, loss, P, U, C);
}
void ra_nn_pg_loss_backward (ra_nn_backend_t *be, const int32_t *act, const float *adv, float *dlogp, float scale,
                             bool accumulate, int P, int U, int C)
{
  OPS (be)->pg_bwd (CTX (be), act, adv, dlogp, scale, accumulate, P, U, C);
}
void ra_nn_entropy_forward (ra_nn_backend_t *be, const float *logp, float *loss, int P, int U, int C)
{
  OPS (be)->ent_fwd (CTX (be), logp, loss, P, U, C);
}
void ra_nn_entropy_backward (ra_nn_backend_t *be, const float *logp, float *dlogp, float scale, bool accumulate,
                             int P, int U, int C)
{
  OPS (be)->ent_bwd (CTX (be), logp, dlogp, scale, accumulate, P, U, C);
}
void ra_nn_mse_forward (ra_nn_backend_t *be, const float *v, const float *target, float *loss, int P, int U)
{
  OPS (be)->mse_fwd (CTX (be), v, target, loss, P, U);
}
void ra_nn_mse_backward (ra_nn_backend_t *be, const float *v, const float *target, float *dv, float scale,
                         bool accumulate, int P, int U)
{
  OPS (be)->mse_bwd (CTX (be), v, target, dv, scale, accumulate, P, U);
}

/* --------------------------------------------------------------------------------- optimizers */

void ra_nn_sumsq (ra_nn_backend_t *be, const float *x, size_t n, int P, size_t stride, float *out)
{
  OPS (be)->sumsq (CTX (be), x, n, P, stride, out);
}

void ra_nn_clip_grad_norm (ra_nn_params_t *p, float max_norm, float *sqnorms)
{
  float *ss = p->scratch; /* [P] sums of squares */
  OPS (p->be)->sumsq (CTX (p->be), p->grad, p->n, p->replicas, p->n, ss);
  OPS (p->be)->clip_apply (CTX (p->be), p->grad, p->n, p->replicas, p->n, ss, max_norm);
  if (sqnorms)
    ra_nn_copy (p->be, sqnorms, ss, (size_t) p->replicas);
}

void ra_nn_sgd_step (ra_nn_params_t *p, float lr)
{
  OPS (p->be)->axpy (CTX (p->be), p->data, -lr, p->grad, p->n * (size_t) p->replicas);
}

ra_err_t ra_nn_adam_step (ra_nn_params_t *p, const ra_nn_adam_t *cfg, ra_error_t *err)
{
  ra_err_t rc = s_ensure_moments (p, err);
  if (rc != RA_OK)
    return rc;
  OPS (p->be)->adam (CTX (p->be), p->data, p->grad, p->adam_m, p->adam_v, p->n, p->replicas, p->n, p->step,
                     p->lr_scale, cfg->lr, cfg->beta1, cfg->beta2, cfg->eps, cfg->weight_decay);
  return RA_OK;
}

int ra_nn_params_steps (const ra_nn_params_t *p)
{
  return ra_nn_params_replica_steps (p, 0);
}

int ra_nn_params_replica_steps (const ra_nn_params_t *p, int replica)
{
  assert (replica >= 0 && replica < p->replicas);
  int32_t s = 0;
  p->be->ops->download (p->be->ctx, &s, p->step + replica, sizeof s);
  return s;
}

/* ----------------------------------------------------------------------------- CUDA graphs */

struct ra_nn_graph {
  ra_nn_backend_t *be;
  void (*fn) (void *);
  void *arg;
  void *graph; /* backend graph, NULL on cpu */
};

ra_err_t ra_nn_graph_capture (ra_nn_backend_t *be, void (*fn) (void *), void *arg, ra_nn_graph_t **out,
                              ra_error_t *err)
{
  *out = NULL;
  ra_nn_graph_t *g = calloc (1, sizeof *g);
  if (!g)
    return ra__nn_error (err, RA_ERR_NOMEM, "nn graph: out of memory");
  g->be = be;
  g->fn = fn;
  g->arg = arg;
  if (OPS (be)->graph_begin) {
    ra_err_t rc = OPS (be)->graph_begin (CTX (be), err);
    if (rc == RA_OK) {
      fn (arg);
      rc = OPS (be)->graph_end (CTX (be), &g->graph, err);
    }
    if (rc != RA_OK) {
      free (g);
      return rc;
    }
  }
  *out = g;
  return RA_OK;
}

void ra_nn_graph_launch (ra_nn_graph_t *g)
{
  if (g->graph)
    OPS (g->be)->graph_launch (CTX (g->be), g->graph);
  else
    g->fn (g->arg);
}

void ra_nn_graph_destroy (ra_nn_graph_t **g_p)
{
  if (!g_p || !*g_p)
    return;
  if ((*g_p)->graph)
    OPS ((*g_p)->be)->graph_destroy (CTX ((*g_p)->be), (*g_p)->graph);
  free (*g_p);
  *g_p = NULL;
}

/* ------------------------------------------------------------------ slates and advantages */

void ra_nn_slate_sample (ra_nn_backend_t *be, const float *scores, int R, int K, int k, bool greedy,
                         ra_nn_rng_t *rng, int32_t *slates)
{
  ra_nn_slate_sample_pop (be, scores, 1, 0, R, K, k, greedy, rng, slates);
}

void ra_nn_slate_sample_pop (ra_nn_backend_t *be, const float *scores, int P, size_t pstride, int R, int K, int k,
                             bool greedy, ra_nn_rng_t *rng, int32_t *slates)
{
  assert (P >= 0 && R >= 0 && k >= 1 && k <= K);
  for (int p0 = 0; p0 < P; p0 += RA__NN_SLATE_REPLICAS) {
    int n = P - p0 < RA__NN_SLATE_REPLICAS ? P - p0 : RA__NN_SLATE_REPLICAS;
    size_t row = (size_t) p0 * pstride;
    OPS (be)->slate (CTX (be), scores + row * K, n, pstride, R, K, k, greedy, rng + p0, slates + row * k);
  }
  for (int p = 0; p < P && !greedy; p++)
    rng[p].counter += (uint64_t) R * (uint64_t) K;
}

void ra_nn_pl_forward (ra_nn_backend_t *be, const float *scores, const int32_t *slates, int R, int K, int k,
                       float *logp, float *ent)
{
  OPS (be)->pl_fwd (CTX (be), scores, slates, R, K, k, logp, ent);
}

void ra_nn_pl_backward (ra_nn_backend_t *be, const float *scores, const int32_t *slates, int R, int K, int k,
                        const float *coef, const float *pos_coef, float ent_coef, float *dscores,
                        bool accumulate)
{
  OPS (be)->pl_bwd (CTX (be), scores, slates, R, K, k, coef, pos_coef, ent_coef, dscores, accumulate);
}

void ra_nn_gae (ra_nn_backend_t *be, const float *reward, const uint8_t *done, const float *values, int P, int T,
                int N, float gamma, float lambda, float *adv, float *ret)
{
  OPS (be)->gae (CTX (be), reward, done, values, P, T, N, gamma, lambda, adv, ret);
}

void ra_nn_normalize (ra_nn_backend_t *be, float *x, int P, size_t n)
{
  OPS (be)->normalize (CTX (be), x, P, n);
}
