/*  agents/nn/backend_cuda.cu - the cuda backend: cuBLAS for GEMMs plus a few small kernels.

    Owns one stream, one cuBLAS handle (fp32; TF32 only when asked), a cuBLAS workspace (so GEMMs
    can be captured in CUDA graphs) and a scratch buffer of reduction partials. Everything runs on
    its stream; upload/download wait for it. Reductions use fixed block shapes and shared-memory
    trees in a fixed order: no atomics, results are reproducible run to run.
    Failures of asynchronous calls are sticky: the first one is kept and reported by status.
    Call every fixed-shape function once eagerly before capturing it (scratch grows outside capture).
    Not thread-safe.                                                                              */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/nn/backend.h"
#include "agents/nn/slate_int.h"

namespace {

constexpr int kThreads = 256;
constexpr int kParts = 256; /* sumsq partials per replica (pass 1 blocks) */

struct Ctx {
  int device;
  cudaStream_t stream;
  cublasHandle_t blas;
  void *workspace;
  double *partials; /* [P, kParts] */
  int partials_P;
  ra_err_t err;
  char msg[RA_ERROR_MESSAGE_MAX];
};

struct Graph {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
};

void note (Ctx *c, bool failed, const char *what, const char *detail, const char *file, int line)
{
  if (failed && c->err == RA_OK) {
    c->err = RA_ERR_INTERNAL;
    snprintf (c->msg, sizeof c->msg, "nn cuda: %s failed: %s (%s:%d)", what, detail, file, line);
  }
}
#define CK(c, call)                                                                                         \
  do {                                                                                                      \
    cudaError_t e_ = (call);                                                                                \
    note ((c), e_ != cudaSuccess, #call, cudaGetErrorString (e_), __FILE__, __LINE__);                      \
  } while (0)
#define CKB(c, call)                                                                                        \
  do {                                                                                                      \
    cublasStatus_t s_ = (call);                                                                             \
    note ((c), s_ != CUBLAS_STATUS_SUCCESS, #call, cublasGetStatusString (s_), __FILE__, __LINE__);        \
  } while (0)
#define LAUNCHED(c) CK ((c), cudaGetLastError ())

Ctx *C (void *ctx) { return static_cast<Ctx *> (ctx); }
unsigned blocks (size_t n)
{
  size_t b = (n + kThreads - 1) / kThreads;
  return (unsigned) (b < 65535 * 16 ? (b ? b : 1) : 65535 * 16);
}
#define GRID_STRIDE(i, n) for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < (n); i += (size_t) gridDim.x * blockDim.x)

/* Sum over a block of kThreads in a fixed tree order. */
template <typename T> __device__ T block_sum (T v, T *sh)
{
  sh[threadIdx.x] = v;
  __syncthreads ();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if ((int) threadIdx.x < s)
      sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads ();
  }
  T r = sh[0];
  __syncthreads ();
  return r;
}

/* ------------------------------------------------------------------------------ memory */

void s_destroy (void *ctx)
{
  Ctx *c = C (ctx);
  if (!c)
    return;
  if (c->stream)
    cudaStreamSynchronize (c->stream);
  cudaFree (c->partials);
  cudaFree (c->workspace);
  if (c->blas)
    cublasDestroy (c->blas);
  if (c->stream)
    cudaStreamDestroy (c->stream);
  free (c);
}
void *s_alloc (void *ctx, size_t bytes)
{
  void *p = nullptr;
  if (cudaMalloc (&p, bytes ? bytes : 1) != cudaSuccess)
    return nullptr;
  CK (C (ctx), cudaMemsetAsync (p, 0, bytes, C (ctx)->stream));
  CK (C (ctx), cudaStreamSynchronize (C (ctx)->stream));
  return p;
}
void s_free (void *ctx, void *p)
{
  CK (C (ctx), cudaStreamSynchronize (C (ctx)->stream));
  CK (C (ctx), cudaFree (p));
}
void s_upload (void *ctx, void *dst, const void *src, size_t bytes)
{
  CK (C (ctx), cudaMemcpyAsync (dst, src, bytes, cudaMemcpyHostToDevice, C (ctx)->stream));
  CK (C (ctx), cudaStreamSynchronize (C (ctx)->stream));
}
void *s_host_alloc (void *ctx, size_t bytes)
{
  (void) ctx;
  void *p = nullptr;
  if (cudaHostAlloc (&p, bytes ? bytes : 1, cudaHostAllocDefault) != cudaSuccess)
    return nullptr;
  memset (p, 0, bytes);
  return p;
}
void s_host_free (void *ctx, void *p)
{
  if (!p)
    return;
  CK (C (ctx), cudaStreamSynchronize (C (ctx)->stream));
  CK (C (ctx), cudaFreeHost (p));
}
void s_upload_async (void *ctx, void *dst, const void *src, size_t bytes)
{
  if (bytes)
    CK (C (ctx), cudaMemcpyAsync (dst, src, bytes, cudaMemcpyHostToDevice, C (ctx)->stream));
}
void s_upload_rows_async (void *ctx, void *dst, size_t dst_pitch, const void *src, size_t src_pitch,
                          size_t row_bytes, size_t rows)
{
  if (row_bytes && rows)
    CK (C (ctx), cudaMemcpy2DAsync (dst, dst_pitch, src, src_pitch, row_bytes, rows, cudaMemcpyHostToDevice,
                                    C (ctx)->stream));
}
void s_download (void *ctx, void *dst, const void *src, size_t bytes)
{
  CK (C (ctx), cudaMemcpyAsync (dst, src, bytes, cudaMemcpyDeviceToHost, C (ctx)->stream));
  CK (C (ctx), cudaStreamSynchronize (C (ctx)->stream));
}
void s_copy (void *ctx, void *dst, const void *src, size_t bytes)
{
  if (bytes && dst != src)
    CK (C (ctx), cudaMemcpyAsync (dst, src, bytes, cudaMemcpyDeviceToDevice, C (ctx)->stream));
}
void s_zero (void *ctx, void *p, size_t bytes)
{
  if (bytes)
    CK (C (ctx), cudaMemsetAsync (p, 0, bytes, C (ctx)->stream));
}
void s_sync (void *ctx) { CK (C (ctx), cudaStreamSynchronize (C (ctx)->stream)); }
ra_err_t s_status (void *ctx, ra_error_t *err)
{
  Ctx *c = C (ctx);
  if (c->err != RA_OK)
    return ra__nn_error (err, c->err, "%s", c->msg);
  return RA_OK;
}

/* ------------------------------------------------------------------------------- GEMM */

/* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands. */
void s_gemm (void *ctx, bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda, long long sA,
             const float *B, int ldb, long long sB, float beta, float *Cm, int ldc, long long sC, int batch)
{
  Ctx *c = C (ctx);
  cublasOperation_t opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (batch == 1)
    CKB (c, cublasSgemm (c->blas, opb, opa, N, M, K, &alpha, B, ldb, A, lda, &beta, Cm, ldc));
  else
    CKB (c, cublasSgemmStridedBatched (c->blas, opb, opa, N, M, K, &alpha, B, ldb, sB, A, lda, sA, &beta, Cm, ldc,
                                       sC, batch));
}

/* --------------------------------------------------------------------------- kernels */

/* Bias fill and group sum: blockDim (features, rows); each thread row takes one output row of
   `rows` (all replicas' rows in order), its threads its F features, so no thread divides by a
   runtime size per element (the first, one-thread-per-element versions spent more time in 64-bit
   index division than in memory traffic), and a narrow layer still packs many rows per block. */
__global__ void k_bias_fill (float *y, const float *u, const float *bias, int R, int C, int F, size_t ystride,
                             size_t ustride, size_t bstride, unsigned rows)
{
  unsigned row = blockIdx.x * blockDim.y + threadIdx.y, per = (unsigned) R * C, p = row / per, k = row % per,
           r = k / C;
  if (row >= rows)
    return;
  float *yr = y + p * ystride + (size_t) k * F;
  const float *b = bias + p * bstride, *ur = u ? u + p * ustride + (size_t) r * F : NULL;
  for (int f = threadIdx.x; f < F; f += blockDim.x)
    yr[f] = ur ? ur[f] + b[f] : b[f];
}
/* db[p, f] += sum over b of dy[p, b, f]. Block (tile of `cols` columns, replica p) with
   blockDim (cols, lanes): each of the lanes sums a strided share of the B rows, then a fixed-order
   tree in shared memory adds the lanes, so the sum is deterministic. One thread per column walking
   all B rows (the first version) kept a few hundred threads busy for a whole backward pass: at
   B = 5120 rows it dominated the scorer's update on an H200. */
constexpr int kBiasThreads = 1024;
__global__ void k_bias_grad (float *db, const float *dy, int B, int F, size_t bstride, size_t dystride)
{
  __shared__ float sh[kBiasThreads];
  int cols = blockDim.x, lanes = blockDim.y, x = threadIdx.x, y = threadIdx.y;
  int f = blockIdx.x * cols + x;
  const float *d = dy + blockIdx.y * dystride;
  float s = 0.0f;
  if (f < F)
    for (int b = y; b < B; b += lanes)
      s += d[(size_t) b * F + f];
  sh[y * cols + x] = s;
  __syncthreads ();
  for (int h = lanes / 2; h > 0; h >>= 1) {
    if (y < h)
      sh[y * cols + x] += sh[(y + h) * cols + x];
    __syncthreads ();
  }
  if (y == 0 && f < F)
    db[blockIdx.y * bstride + f] += sh[x];
}
__global__ void k_group_sum (const float *dy, float *out, int R, int C, int F, size_t dystride, size_t ostride,
                             unsigned rows)
{
  unsigned row = blockIdx.x * blockDim.y + threadIdx.y, p = row / R, r = row % R;
  if (row >= rows)
    return;
  const float *d = dy + p * dystride + (size_t) r * C * F;
  float *o = out + p * ostride + (size_t) r * F;
  for (int f = threadIdx.x; f < F; f += blockDim.x) {
    float s = d[f];
    for (int c = 1; c < C; c++)
      s += d[(size_t) c * F + f];
    o[f] = s;
  }
}
/* activations: blockIdx.y picks the block of n elements (stride apart), x strides over it */
__global__ void k_relu_fwd (const float *x, float *y, size_t n, size_t stride)
{
  x += blockIdx.y * stride, y += blockIdx.y * stride;
  GRID_STRIDE (i, n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
__global__ void k_relu_bwd (const float *y, const float *dy, float *dx, size_t n, size_t stride)
{
  y += blockIdx.y * stride, dy += blockIdx.y * stride, dx += blockIdx.y * stride;
  GRID_STRIDE (i, n) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}
__global__ void k_tanh_fwd (const float *x, float *y, size_t n, size_t stride)
{
  x += blockIdx.y * stride, y += blockIdx.y * stride;
  GRID_STRIDE (i, n) y[i] = tanhf (x[i]);
}
__global__ void k_tanh_bwd (const float *y, const float *dy, float *dx, size_t n, size_t stride)
{
  y += blockIdx.y * stride, dy += blockIdx.y * stride, dx += blockIdx.y * stride;
  GRID_STRIDE (i, n) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

/* one block per row */
__global__ void k_ln_fwd (const float *x, const float *g, const float *b, float *y, float *mean, float *rstd, int B,
                          int D, size_t pstride)
{
  __shared__ float sh[kThreads];
  size_t row = blockIdx.x, p = row / B;
  const float *xr = x + row * D;
  float s = 0.0f;
  for (int i = threadIdx.x; i < D; i += kThreads)
    s += xr[i];
  float mu = block_sum (s, sh) / D;
  float v = 0.0f;
  for (int i = threadIdx.x; i < D; i += kThreads)
    v += (xr[i] - mu) * (xr[i] - mu);
  float rs = rsqrtf (block_sum (v, sh) / D + 1e-5f);
  for (int i = threadIdx.x; i < D; i += kThreads)
    y[row * D + i] = (xr[i] - mu) * rs * g[p * pstride + i] + b[p * pstride + i];
  if (threadIdx.x == 0)
    mean[row] = mu, rstd[row] = rs;
}
__global__ void k_ln_bwd_dx (const float *x, const float *g, const float *mean, const float *rstd, const float *dy,
                             float *dx, int B, int D, size_t pstride)
{
  __shared__ float sh[kThreads];
  size_t row = blockIdx.x, p = row / B;
  const float *xr = x + row * D, *dyr = dy + row * D, *gp = g + p * pstride;
  float mu = mean[row], rs = rstd[row], a = 0.0f, c = 0.0f;
  for (int i = threadIdx.x; i < D; i += kThreads) {
    float n = (xr[i] - mu) * rs, dn = dyr[i] * gp[i];
    a += dn, c += dn * n;
  }
  a = block_sum (a, sh);
  c = block_sum (c, sh);
  for (int i = threadIdx.x; i < D; i += kThreads) {
    float n = (xr[i] - mu) * rs;
    dx[row * D + i] = rs * (dyr[i] * gp[i] - a / D - n * c / D);
  }
}
__global__ void k_ln_bwd_dg (const float *x, const float *mean, const float *rstd, const float *dy, float *dg,
                             float *db, int P, int B, int D, size_t pstride)
{
  GRID_STRIDE (i, (size_t) P * D)
  {
    size_t p = i / D, d = i % D;
    float sg = 0.0f, sb = 0.0f;
    for (int r = 0; r < B; r++) {
      size_t row = p * B + r;
      float n = (x[row * D + d] - mean[row]) * rstd[row];
      sg += dy[row * D + d] * n;
      sb += dy[row * D + d];
    }
    dg[p * pstride + d] += sg;
    db[p * pstride + d] += sb;
  }
}

/* one warp per row (C is a candidate count: tens) */
__global__ void k_softmax_fwd (const float *x, float *y, int R, int C, bool lg)
{
  int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= R)
    return;
  const float *xr = x + (size_t) row * C;
  float mx = -INFINITY;
  for (int c = lane; c < C; c += 32)
    mx = fmaxf (mx, xr[c]);
  for (int o = 16; o > 0; o >>= 1)
    mx = fmaxf (mx, __shfl_xor_sync (0xffffffffu, mx, o));
  float s = 0.0f;
  for (int c = lane; c < C; c += 32)
    s += expf (xr[c] - mx);
  for (int o = 16; o > 0; o >>= 1)
    s += __shfl_xor_sync (0xffffffffu, s, o);
  float ls = logf (s);
  for (int c = lane; c < C; c += 32)
    y[(size_t) row * C + c] = lg ? xr[c] - mx - ls : expf (xr[c] - mx) / s;
}
__global__ void k_softmax_bwd (const float *y, const float *dy, float *dx, int R, int C, bool lg)
{
  int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= R)
    return;
  const float *yr = y + (size_t) row * C, *dyr = dy + (size_t) row * C;
  float s = 0.0f;
  for (int c = lane; c < C; c += 32)
    s += lg ? dyr[c] : dyr[c] * yr[c];
  for (int o = 16; o > 0; o >>= 1)
    s += __shfl_xor_sync (0xffffffffu, s, o);
  for (int c = lane; c < C; c += 32) {
    float d = lg ? dyr[c] - expf (yr[c]) * s : yr[c] * (dyr[c] - s);
    dx[(size_t) row * C + c] = d; /* dx may alias dy: each lane reads its own element before writing */
  }
}

__global__ void k_pairs_fwd (const float *user, const float *cand, float *out, int C, int du, int dc, size_t n)
{
  int w = du + dc;
  GRID_STRIDE (i, n)
  {
    size_t pair = i / w, k = i % w, r = pair / C;
    out[i] = k < (size_t) du ? user[r * du + k] : cand[pair * dc + (k - du)];
  }
}
__global__ void k_pairs_bwd_cand (const float *dout, float *dcand, int du, int dc, size_t n)
{
  GRID_STRIDE (i, n)
  {
    size_t pair = i / dc, k = i % dc;
    dcand[i] = dout[pair * (du + dc) + du + k];
  }
}
__global__ void k_pairs_bwd_user (const float *dout, float *duser, int C, int du, int dc, size_t n)
{
  GRID_STRIDE (i, n)
  {
    size_t r = i / du, k = i % du;
    float s = 0.0f;
    for (int c = 0; c < C; c++)
      s += dout[(r * C + c) * (du + dc) + k];
    duser[i] = s;
  }
}

/* losses: one block per replica, fixed-order tree */
__global__ void k_pg_fwd (const float *logp, const int32_t *act, const float *adv, float *loss, int U, int C)
{
  __shared__ float sh[kThreads];
  size_t p = blockIdx.x;
  float s = 0.0f;
  for (int u = threadIdx.x; u < U; u += kThreads) {
    size_t row = p * U + u;
    s += adv[row] * logp[row * C + act[row]];
  }
  s = block_sum (s, sh);
  if (threadIdx.x == 0)
    loss[p] = -s / U;
}
__global__ void k_pg_bwd (const int32_t *act, const float *adv, float *dlogp, float scale, int U, int C, size_t n)
{
  GRID_STRIDE (row, n) dlogp[row * C + act[row]] += -scale * adv[row] / U;
}
__global__ void k_ent_fwd (const float *logp, float *loss, int U, int C)
{
  __shared__ float sh[kThreads];
  size_t p = blockIdx.x, n = (size_t) U * C;
  const float *l = logp + p * n;
  float s = 0.0f;
  for (size_t i = threadIdx.x; i < n; i += kThreads)
    s += expf (l[i]) * l[i];
  s = block_sum (s, sh);
  if (threadIdx.x == 0)
    loss[p] = -s / U;
}
__global__ void k_ent_bwd (const float *logp, float *dlogp, float scale, bool acc, int U, size_t n)
{
  GRID_STRIDE (i, n)
  {
    float d = -scale * expf (logp[i]) * (logp[i] + 1.0f) / U;
    dlogp[i] = acc ? dlogp[i] + d : d;
  }
}
__global__ void k_mse_fwd (const float *v, const float *t, float *loss, int U)
{
  __shared__ float sh[kThreads];
  size_t p = blockIdx.x;
  float s = 0.0f;
  for (int u = threadIdx.x; u < U; u += kThreads) {
    float d = v[p * U + u] - t[p * U + u];
    s += d * d;
  }
  s = block_sum (s, sh);
  if (threadIdx.x == 0)
    loss[p] = s / U;
}
__global__ void k_mse_bwd (const float *v, const float *t, float *dv, float scale, bool acc, int U, size_t n)
{
  GRID_STRIDE (i, n)
  {
    float d = scale * 2.0f * (v[i] - t[i]) / U;
    dv[i] = acc ? dv[i] + d : d;
  }
}

/* sumsq pass 1: block (k, p) sums a contiguous slice of replica p into partials[p, k] */
__global__ void k_sumsq_part (const float *x, size_t n, size_t stride, double *partials)
{
  __shared__ double sh[kThreads];
  size_t p = blockIdx.y, k = blockIdx.x, len = (n + kParts - 1) / kParts;
  size_t a = k * len, b = a + len < n ? a + len : n;
  const float *xp = x + p * stride;
  double s = 0.0;
  for (size_t i = a + threadIdx.x; i < b; i += kThreads)
    s += (double) xp[i] * xp[i];
  s = block_sum (s, sh);
  if (threadIdx.x == 0)
    partials[p * kParts + k] = s;
}
/* pass 2: partials summed in order */
__global__ void k_sumsq_total (const double *partials, int P, float *out)
{
  int p = blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= P)
    return;
  double s = 0.0;
  for (int k = 0; k < kParts; k++)
    s += partials[(size_t) p * kParts + k];
  out[p] = (float) s;
}
__global__ void k_clip_apply (float *x, size_t n, size_t stride, const float *ss, float max_norm, size_t total)
{
  GRID_STRIDE (i, total)
  {
    size_t p = i / n, k = i % n;
    float s = max_norm / (sqrtf (ss[p]) + 1e-6f);
    if (s < 1.0f)
      x[p * stride + k] *= s;
  }
}
__global__ void k_axpy (float *y, float a, const float *x, size_t n) { GRID_STRIDE (i, n) y[i] += a * x[i]; }
__global__ void k_scale (float *x, float a, size_t n) { GRID_STRIDE (i, n) x[i] *= a; }
__global__ void k_scale_rows (float *x, const float *g, int R, int K, size_t pitch, size_t total)
{
  GRID_STRIDE (i, total)
  {
    size_t p = i / ((size_t) R * K), r = p * pitch + (i / K) % R;
    x[r * K + i % K] *= g[r];
  }
}
__global__ void k_step_inc (int32_t *step, int P)
{
  for (int p = threadIdx.x; p < P; p += blockDim.x)
    ++step[p];
}
__global__ void k_adam (float *w, const float *g, float *m, float *v, size_t n, size_t stride, const int32_t *step,
                        const float *lr_scale, float lr, float b1, float b2, float eps, float wd, size_t total)
{
  GRID_STRIDE (j, total)
  {
    size_t p = j / n, i = p * stride + j % n;
    float t = (float) step[p], bc1 = 1.0f - powf (b1, t), bc2 = 1.0f - powf (b2, t);
    float lrp = lr * lr_scale[p];
    float mi = b1 * m[i] + (1.0f - b1) * g[i];
    float vi = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
    m[i] = mi, v[i] = vi;
    w[i] -= lrp * ((mi / bc1) / (sqrtf (vi / bc2) + eps) + wd * w[i]);
  }
}

/* Slates and advantages: a warp per slate row, one thread per row (PL) or per (replica, env) (GAE);
   the same results as the cpu backend (PL and GAE: the same arithmetic and order). */
/* the replicas' RNG states, passed by value (3 kB, under the 4 kB kernel-argument limit) */
struct s_slate_rngs {
  ra_nn_rng_t r[RA__NN_SLATE_REPLICAS];
};
/* keys each lane keeps in registers: rows of up to 32 * 8 = RA__NN_SLATE_KEYS candidates compute
   each key once, as the cpu does (the two double logs per key dominate the kernel) */
constexpr int kSlateLaneKeys = RA__NN_SLATE_KEYS / 32;

/* One warp per row, choosing what ra__nn_slate_row chooses: the unplaced candidate with the largest
   key, the lowest index among equal keys, from the same keys (ra__nn_slate_key). Lane l owns
   candidates l, l + 32, ...; per position each lane visits its own in rising index with a strict >
   (its lowest index of equal keys wins), then a butterfly keeps the larger key, or the lower index
   of equal ones: max under a total order, so every lane ends with the warp's choice in any merge
   order. Candidates past the registers (K > RA__NN_SLATE_KEYS, rare) recompute their key on each
   pass and look themselves up in the slate so far, as the cpu does. NaN keys compare false both
   ways, so with NaN scores the slate may differ from the cpu's; lane 0's choice is broadcast so the
   lanes still agree on what is placed, and every loop is bounded. */
__global__ void k_slate (const float *scores, int P, size_t pstride, int R, int K, int k, bool greedy,
                         s_slate_rngs rng, int32_t *slates)
{
  const unsigned all = 0xffffffffu;
  int lane = threadIdx.x % 32;
  size_t warps = (size_t) gridDim.x * (blockDim.x / 32), n = (size_t) P * R;
  /* i is the same for the whole warp, so all its lanes reach every shuffle */
  for (size_t i = blockIdx.x * (size_t) (blockDim.x / 32) + threadIdx.x / 32; i < n; i += warps) {
    size_t p = i / R, r = i % R, row = p * pstride + r;
    const ra_nn_rng_t *g = &rng.r[p];
    const float *s = scores + row * K;
    int32_t *out = slates + row * k;
    /* fixed indices in unrolled loops keep keys[] in registers */
    float keys[kSlateLaneKeys];
    unsigned placed = 0; /* bit t: candidate lane + 32 t is in the slate */
#pragma unroll
    for (int t = 0; t < kSlateLaneKeys; t++) {
      int j = lane + 32 * t;
      keys[t] = j < K ? ra__nn_slate_key (s, K, j, greedy, g->seed, g->stream, g->counter, (uint64_t) r) : 0.0f;
    }
    for (int pos = 0; pos < k; pos++) {
      int best = -1;
      float bk = 0.0f;
#pragma unroll
      for (int t = 0; t < kSlateLaneKeys; t++) {
        int j = lane + 32 * t;
        if (j < K && !((placed >> t) & 1u) && (best < 0 || keys[t] > bk)) {
          best = j;
          bk = keys[t];
        }
      }
      for (int j = lane + 32 * kSlateLaneKeys; j < K; j += 32) {
        if (ra__nn_placed (out, pos, j))
          continue;
        float key = ra__nn_slate_key (s, K, j, greedy, g->seed, g->stream, g->counter, (uint64_t) r);
        if (best < 0 || key > bk) {
          best = j;
          bk = key;
        }
      }
      /* a lane without unplaced candidates (best < 0: K < 32, or all its own placed) never wins */
      for (int o = 16; o > 0; o >>= 1) {
        int ob = __shfl_xor_sync (all, best, o);
        float ok = __shfl_xor_sync (all, bk, o);
        if (ob >= 0 && (best < 0 || ok > bk || (ok == bk && ob < best))) {
          best = ob;
          bk = ok;
        }
      }
      best = __shfl_sync (all, best, 0);
      if (lane == 0)
        out[pos] = best;
      if (best >= 0 && best % 32 == lane && best / 32 < kSlateLaneKeys)
        placed |= 1u << (best / 32);
      __syncwarp (); /* out[pos] visible to the lanes that look themselves up in it */
    }
  }
}

__global__ void k_pl_fwd (const float *scores, const int32_t *slates, int R, int K, int k, float *logp, float *ent)
{
  GRID_STRIDE (r, (size_t) R)
  {
    double lp, h;
    ra__nn_pl_row (scores + r * K, slates + r * k, K, k, &lp, &h, 0.0f, nullptr, 0.0f, nullptr);
    if (logp)
      logp[r] = (float) lp;
    if (ent)
      ent[r] = (float) h;
  }
}

__global__ void k_pl_bwd (const float *scores, const int32_t *slates, int R, int K, int k, const float *coef,
                          const float *pos_coef, float ent_coef, float *dscores, bool acc)
{
  GRID_STRIDE (r, (size_t) R)
  {
    float *ds = dscores + r * K;
    if (!acc)
      for (int j = 0; j < K; j++)
        ds[j] = 0.0f;
    ra__nn_pl_row (scores + r * K, slates + r * k, K, k, nullptr, nullptr, coef[r],
                   pos_coef ? pos_coef + r * k : nullptr, ent_coef, ds);
  }
}

__global__ void k_gae (const float *reward, const uint8_t *done, const float *values, int P, int T, int N,
                       float gamma, float lambda, float *adv, float *ret)
{
  GRID_STRIDE (q, (size_t) P * N)
  {
    size_t p = q / N, i = q % N, o = p * T * N, ov = p * (T + 1) * N;
    double a = 0;
    for (int t = T - 1; t >= 0; t--) {
      size_t x = (size_t) t * N + i;
      double keep = done[o + x] ? 0.0 : 1.0;
      double delta = reward[o + x] + gamma * keep * values[ov + x + N] - values[ov + x];
      a = delta + gamma * lambda * keep * a;
      adv[o + x] = (float) a;
      ret[o + x] = (float) (a + values[ov + x]);
    }
  }
}

/* one thread per replica: sums in index order, as the cpu backend; then an elementwise pass */
__global__ void k_norm_stats (const float *x, int P, size_t n, double *stats)
{
  GRID_STRIDE (p, (size_t) P)
  {
    const float *xp = x + p * n;
    double s1 = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
      s1 += xp[i];
      s2 += (double) xp[i] * xp[i];
    }
    double mean = s1 / (double) n, sd = sqrt (fmax (s2 / (double) n - mean * mean, 0.0)) + 1e-8;
    stats[2 * p] = mean;
    stats[2 * p + 1] = sd;
  }
}
__global__ void k_norm_apply (float *x, size_t n, const double *stats, size_t total)
{
  GRID_STRIDE (i, total)
  {
    size_t p = i / n;
    x[i] = (float) ((x[i] - stats[2 * p]) / stats[2 * p + 1]);
  }
}

/* -------------------------------------------------------------------------- wrappers */

#define STREAM(ctx) C (ctx)->stream
/* blockDim and grid for the row kernels above: a power of two of threads per row covering F (at
   most kThreads), kThreads per block */
static void s_row_grid (size_t rows, int F, dim3 *grid, dim3 *block)
{
  unsigned cols = 1;
  while ((int) cols < F && cols < (unsigned) kThreads)
    cols *= 2;
  *block = dim3 (cols, kThreads / cols);
  *grid = dim3 ((unsigned) ((rows + block->y - 1) / block->y));
}
#define GO(ctx, n) <<<blocks (n), kThreads, 0, STREAM (ctx)>>>

void s_bias_fill (void *ctx, float *y, const float *u, const float *bias, int P, int R, int cands, int F,
                  size_t ystride, size_t ustride, size_t bstride)
{
  if ((size_t) P * R * cands * F == 0)
    return;
  dim3 grid, block;
  size_t rows = (size_t) P * R * cands;
  s_row_grid (rows, F, &grid, &block);
  k_bias_fill<<<grid, block, 0, STREAM (ctx)>>> (y, u, bias, R, cands, F, ystride, ustride, bstride, (unsigned) rows);
  LAUNCHED (C (ctx));
}
void s_bias_grad (void *ctx, float *dbias, const float *dy, int P, int B, int F, size_t bstride, size_t dystride)
{
  if (P <= 0 || F <= 0)
    return;
  /* 8 columns (one 32-byte memory sector per row) per block gives F / 8 blocks, enough to spread a
     wide layer over the SMs; a power of two, so lanes = 1024 / cols is one too */
  int cols = 1;
  while (cols < F && cols < 8)
    cols *= 2;
  dim3 grid ((unsigned) ((F + cols - 1) / cols), (unsigned) P), block ((unsigned) cols, (unsigned) (kBiasThreads / cols));
  k_bias_grad<<<grid, block, 0, STREAM (ctx)>>> (dbias, dy, B, F, bstride, dystride);
  LAUNCHED (C (ctx));
}
void s_group_sum (void *ctx, const float *dy, float *out, int P, int R, int cands, int F, size_t dystride,
                  size_t ostride)
{
  if ((size_t) P * R * F == 0)
    return;
  dim3 grid, block;
  size_t rows = (size_t) P * R;
  s_row_grid (rows, F, &grid, &block);
  k_group_sum<<<grid, block, 0, STREAM (ctx)>>> (dy, out, R, cands, F, dystride, ostride, (unsigned) rows);
  LAUNCHED (C (ctx));
}
/* ACT_LAUNCH(kernel, args...): over P blocks of n, at most 65535 blocks (grid.y) per launch */
#define ACT_LAUNCH(ctx, kernel, P, n, stride, ...)                                                          \
  for (int p0_ = 0; p0_ < (P) && (n) > 0; p0_ += 65535) {                                                \
    size_t o_ = (size_t) p0_ * (stride);                                                                   \
    dim3 g_ (blocks (n), (unsigned) ((P) - p0_ < 65535 ? (P) - p0_ : 65535));                              \
    kernel<<<g_, kThreads, 0, STREAM (ctx)>>> (__VA_ARGS__, n, stride);                                    \
    LAUNCHED (C (ctx));                                                                                    \
  }
void s_relu_fwd (void *ctx, const float *x, float *y, int P, size_t n, size_t stride)
{
  ACT_LAUNCH (ctx, k_relu_fwd, P, n, stride, x + o_, y + o_);
}
void s_relu_bwd (void *ctx, const float *y, const float *dy, float *dx, int P, size_t n, size_t stride)
{
  ACT_LAUNCH (ctx, k_relu_bwd, P, n, stride, y + o_, dy + o_, dx + o_);
}
void s_tanh_fwd (void *ctx, const float *x, float *y, int P, size_t n, size_t stride)
{
  ACT_LAUNCH (ctx, k_tanh_fwd, P, n, stride, x + o_, y + o_);
}
void s_tanh_bwd (void *ctx, const float *y, const float *dy, float *dx, int P, size_t n, size_t stride)
{
  ACT_LAUNCH (ctx, k_tanh_bwd, P, n, stride, y + o_, dy + o_, dx + o_);
}
void s_ln_fwd (void *ctx, const float *x, const float *g, const float *b, float *y, float *mean, float *rstd, int P,
               int B, int D, size_t pstride)
{
  k_ln_fwd<<<(unsigned) P * B, kThreads, 0, STREAM (ctx)>>> (x, g, b, y, mean, rstd, B, D, pstride);
  LAUNCHED (C (ctx));
}
void s_ln_bwd (void *ctx, const float *x, const float *g, const float *mean, const float *rstd, const float *dy,
               float *dx, float *dg, float *db, int P, int B, int D, size_t pstride)
{
  k_ln_bwd_dx<<<(unsigned) P * B, kThreads, 0, STREAM (ctx)>>> (x, g, mean, rstd, dy, dx, B, D, pstride);
  k_ln_bwd_dg GO (ctx, (size_t) P * D) (x, mean, rstd, dy, dg, db, P, B, D, pstride);
  LAUNCHED (C (ctx));
}
void s_softmax_fwd (void *ctx, const float *x, float *y, int R, int C_, bool lg)
{
  k_softmax_fwd<<<(unsigned) (R + 7) / 8, 256, 0, STREAM (ctx)>>> (x, y, R, C_, lg);
  LAUNCHED (C (ctx));
}
void s_softmax_bwd (void *ctx, const float *y, const float *dy, float *dx, int R, int C_, bool lg)
{
  k_softmax_bwd<<<(unsigned) (R + 7) / 8, 256, 0, STREAM (ctx)>>> (y, dy, dx, R, C_, lg);
  LAUNCHED (C (ctx));
}
void s_pairs_fwd (void *ctx, const float *user, const float *cand, float *out, int R, int C_, int du, int dc)
{
  size_t n = (size_t) R * C_ * (du + dc);
  k_pairs_fwd GO (ctx, n) (user, cand, out, C_, du, dc, n);
  LAUNCHED (C (ctx));
}
void s_pairs_bwd (void *ctx, const float *dout, float *duser, float *dcand, int R, int C_, int du, int dc)
{
  if (dcand) {
    size_t n = (size_t) R * C_ * dc;
    k_pairs_bwd_cand GO (ctx, n) (dout, dcand, du, dc, n);
  }
  if (duser) {
    size_t n = (size_t) R * du;
    k_pairs_bwd_user GO (ctx, n) (dout, duser, C_, du, dc, n);
  }
  LAUNCHED (C (ctx));
}
void s_pg_fwd (void *ctx, const float *logp, const int32_t *act, const float *adv, float *loss, int P, int U, int C_)
{
  k_pg_fwd<<<P, kThreads, 0, STREAM (ctx)>>> (logp, act, adv, loss, U, C_);
  LAUNCHED (C (ctx));
}
void s_pg_bwd (void *ctx, const int32_t *act, const float *adv, float *dlogp, float scale, bool acc, int P, int U, int C_)
{
  if (!acc)
    s_zero (ctx, dlogp, sizeof (float) * P * U * C_);
  size_t n = (size_t) P * U;
  k_pg_bwd GO (ctx, n) (act, adv, dlogp, scale, U, C_, n);
  LAUNCHED (C (ctx));
}
void s_ent_fwd (void *ctx, const float *logp, float *loss, int P, int U, int C_)
{
  k_ent_fwd<<<P, kThreads, 0, STREAM (ctx)>>> (logp, loss, U, C_);
  LAUNCHED (C (ctx));
}
void s_ent_bwd (void *ctx, const float *logp, float *dlogp, float scale, bool acc, int P, int U, int C_)
{
  size_t n = (size_t) P * U * C_;
  k_ent_bwd GO (ctx, n) (logp, dlogp, scale, acc, U, n);
  LAUNCHED (C (ctx));
}
void s_mse_fwd (void *ctx, const float *v, const float *t, float *loss, int P, int U)
{
  k_mse_fwd<<<P, kThreads, 0, STREAM (ctx)>>> (v, t, loss, U);
  LAUNCHED (C (ctx));
}
void s_mse_bwd (void *ctx, const float *v, const float *t, float *dv, float scale, bool acc, int P, int U)
{
  size_t n = (size_t) P * U;
  k_mse_bwd GO (ctx, n) (v, t, dv, scale, acc, U, n);
  LAUNCHED (C (ctx));
}
/* The partials buffer holds kParts doubles per replica, for at least P replicas. */
bool ensure_partials (Ctx *c, int P)
{
  if (P > c->partials_P) { /* grows outside graph capture (see file comment) */
    CK (c, cudaStreamSynchronize (c->stream));
    cudaFree (c->partials);
    c->partials = nullptr;
    c->partials_P = 0;
    if (cudaMalloc (&c->partials, sizeof (double) * kParts * P) != cudaSuccess) {
      note (c, true, "cudaMalloc", "reduction partials", __FILE__, __LINE__);
      return false;
    }
    c->partials_P = P;
  }
  return true;
}

void s_sumsq (void *ctx, const float *x, size_t n, int P, size_t stride, float *out)
{
  Ctx *c = C (ctx);
  if (!ensure_partials (c, P))
    return;
  k_sumsq_part<<<dim3 (kParts, P), kThreads, 0, c->stream>>> (x, n, stride, c->partials);
  k_sumsq_total<<<(P + 63) / 64, 64, 0, c->stream>>> (c->partials, P, out);
  LAUNCHED (c);
}
void s_clip_apply (void *ctx, float *x, size_t n, int P, size_t stride, const float *ss, float max_norm)
{
  size_t total = n * P;
  k_clip_apply GO (ctx, total) (x, n, stride, ss, max_norm, total);
  LAUNCHED (C (ctx));
}
void s_axpy (void *ctx, float *y, float a, const float *x, size_t n) { k_axpy GO (ctx, n) (y, a, x, n); LAUNCHED (C (ctx)); }
void s_scale (void *ctx, float *x, float a, size_t n) { k_scale GO (ctx, n) (x, a, n); LAUNCHED (C (ctx)); }
void s_scale_rows (void *ctx, float *x, const float *g, int P, int R, int K, size_t pitch)
{
  size_t total = (size_t) P * R * K;
  if (total) {
    k_scale_rows GO (ctx, total) (x, g, R, K, pitch, total);
    LAUNCHED (C (ctx));
  }
}
void s_adam (void *ctx, float *w, const float *g, float *m, float *v, size_t n, int P, size_t stride, int32_t *step,
             const float *lr_scale, float lr, float b1, float b2, float eps, float wd)
{
  k_step_inc<<<1, 32, 0, STREAM (ctx)>>> (step, P);
  LAUNCHED (C (ctx));
  size_t total = n * (size_t) P;
  if (total == 0)
    return;
  k_adam GO (ctx, total) (w, g, m, v, n, stride, step, lr_scale, lr, b1, b2, eps, wd, total);
  LAUNCHED (C (ctx));
}

/* --------------------------------------------------------------------------- graphs */

ra_err_t s_graph_begin (void *ctx, ra_error_t *err)
{
  Ctx *c = C (ctx);
  cudaError_t e = cudaStreamBeginCapture (c->stream, cudaStreamCaptureModeThreadLocal);
  if (e != cudaSuccess)
    return ra__nn_error (err, RA_ERR_INTERNAL, "nn cuda: cudaStreamBeginCapture: %s", cudaGetErrorString (e));
  return RA_OK;
}
ra_err_t s_graph_end (void *ctx, void **out, ra_error_t *err)
{
  Ctx *c = C (ctx);
  Graph *g = static_cast<Graph *> (calloc (1, sizeof (Graph)));
  cudaGraph_t graph = nullptr;
  cudaError_t e = cudaStreamEndCapture (c->stream, &graph);
  if (e == cudaSuccess && g)
    e = cudaGraphInstantiate (&g->exec, graph, 0);
  if (e != cudaSuccess || !g) {
    if (graph)
      cudaGraphDestroy (graph);
    free (g);
    return ra__nn_error (err, RA_ERR_INTERNAL, "nn cuda: graph capture failed: %s",
                         e != cudaSuccess ? cudaGetErrorString (e) : "out of memory");
  }
  g->graph = graph;
  *out = g;
  return RA_OK;
}
void s_graph_launch (void *ctx, void *graph)
{
  CK (C (ctx), cudaGraphLaunch (static_cast<Graph *> (graph)->exec, C (ctx)->stream));
}
void s_graph_destroy (void *ctx, void *graph)
{
  Graph *g = static_cast<Graph *> (graph);
  CK (C (ctx), cudaStreamSynchronize (C (ctx)->stream));
  cudaGraphExecDestroy (g->exec);
  cudaGraphDestroy (g->graph);
  free (g);
}

void s_slate (void *ctx, const float *scores, int P, size_t pstride, int R, int K, int k, bool greedy,
              const ra_nn_rng_t *rng, int32_t *slates)
{
  if (R <= 0 || P <= 0)
    return;
  s_slate_rngs g;
  memcpy (g.r, rng, (size_t) P * sizeof *rng);
  /* a warp (32 threads) per row: kThreads / 32 rows per block */
  k_slate GO (ctx, (size_t) P * R * 32) (scores, P, pstride, R, K, k, greedy, g, slates);
  LAUNCHED (C (ctx));
}
void s_pl_fwd (void *ctx, const float *scores, const int32_t *slates, int R, int K, int k, float *logp, float *ent)
{
  if (R <= 0)
    return;
  k_pl_fwd GO (ctx, (size_t) R) (scores, slates, R, K, k, logp, ent);
  LAUNCHED (C (ctx));
}
void s_pl_bwd (void *ctx, const float *scores, const int32_t *slates, int R, int K, int k, const float *coef,
               const float *pos_coef, float ent_coef, float *dscores, bool acc)
{
  if (R <= 0)
    return;
  k_pl_bwd GO (ctx, (size_t) R) (scores, slates, R, K, k, coef, pos_coef, ent_coef, dscores, acc);
  LAUNCHED (C (ctx));
}
void s_gae (void *ctx, const float *reward, const uint8_t *done, const float *values, int P, int T, int N,
            float gamma, float lambda, float *adv, float *ret)
{
  if (P <= 0 || N <= 0)
    return;
  k_gae GO (ctx, (size_t) P * N) (reward, done, values, P, T, N, gamma, lambda, adv, ret);
  LAUNCHED (C (ctx));
}
void s_normalize (void *ctx, float *x, int P, size_t n)
{
  Ctx *c = C (ctx);
  if (P <= 0 || n == 0)
    return;
  /* the partials buffer holds kParts doubles per replica; two per replica are needed here */
  if (!ensure_partials (c, P))
    return;
  k_norm_stats GO (ctx, (size_t) P) (x, P, n, c->partials);
  LAUNCHED (c);
  k_norm_apply GO (ctx, (size_t) P * n) (x, n, c->partials, (size_t) P * n);
  LAUNCHED (c);
}

ra__nn_ops_t make_ops ()
{
  ra__nn_ops_t o;
  memset (&o, 0, sizeof o);
  o.name = "cuda";
  o.destroy = s_destroy;
  o.status = s_status;
  o.alloc = s_alloc;
  o.free = s_free;
  o.upload = s_upload;
  o.download = s_download;
  o.host_alloc = s_host_alloc;
  o.host_free = s_host_free;
  o.upload_async = s_upload_async;
  o.upload_rows_async = s_upload_rows_async;
  o.copy = s_copy;
  o.zero = s_zero;
  o.sync = s_sync;
  o.gemm = s_gemm;
  o.bias_fill = s_bias_fill;
  o.group_sum = s_group_sum;
  o.bias_grad = s_bias_grad;
  o.relu_fwd = s_relu_fwd;
  o.relu_bwd = s_relu_bwd;
  o.tanh_fwd = s_tanh_fwd;
  o.tanh_bwd = s_tanh_bwd;
  o.ln_fwd = s_ln_fwd;
  o.ln_bwd = s_ln_bwd;
  o.softmax_fwd = s_softmax_fwd;
  o.softmax_bwd = s_softmax_bwd;
  o.pairs_fwd = s_pairs_fwd;
  o.pairs_bwd = s_pairs_bwd;
  o.pg_fwd = s_pg_fwd;
  o.pg_bwd = s_pg_bwd;
  o.ent_fwd = s_ent_fwd;
  o.ent_bwd = s_ent_bwd;
  o.mse_fwd = s_mse_fwd;
  o.mse_bwd = s_mse_bwd;
  o.sumsq = s_sumsq;
  o.clip_apply = s_clip_apply;
  o.slate = s_slate;
  o.pl_fwd = s_pl_fwd;
  o.pl_bwd = s_pl_bwd;
  o.gae = s_gae;
  o.normalize = s_normalize;
  o.axpy = s_axpy;
  o.scale = s_scale;
  o.scale_rows = s_scale_rows;
  o.adam = s_adam;
  o.graph_begin = s_graph_begin;
  o.graph_end = s_graph_end;
  o.graph_launch = s_graph_launch;
  o.graph_destroy = s_graph_destroy;
  return o;
}
const ra__nn_ops_t s_ops = make_ops ();

} /* namespace */

extern "C" ra_err_t ra__nn_cuda_open (int device, bool allow_tf32, const ra__nn_ops_t **ops, void **ctx,
                                      ra_error_t *err)
{
  int count = 0;
  cudaError_t e = cudaGetDeviceCount (&count);
  if (e != cudaSuccess || count == 0)
    return ra__nn_error (err, RA_ERR_BAD_CONFIG, "nn backend 'cuda': no CUDA device available (%s); use 'cpu' or 'auto'",
                         e != cudaSuccess ? cudaGetErrorString (e) : "0 devices");
  if (device < 0 || device >= count)
    return ra__nn_error (err, RA_ERR_BAD_CONFIG, "nn backend 'cuda': device %d requested, %d present", device, count);
  Ctx *c = static_cast<Ctx *> (calloc (1, sizeof (Ctx)));
  if (!c)
    return ra__nn_error (err, RA_ERR_NOMEM, "nn backend 'cuda': out of memory");
  c->device = device;
  const size_t ws_bytes = 32u << 20;
  if (cudaSetDevice (device) != cudaSuccess || cudaStreamCreateWithFlags (&c->stream, cudaStreamNonBlocking) != cudaSuccess
      || cublasCreate (&c->blas) != CUBLAS_STATUS_SUCCESS || cublasSetStream (c->blas, c->stream) != CUBLAS_STATUS_SUCCESS
      || cudaMalloc (&c->workspace, ws_bytes) != cudaSuccess
      || cublasSetWorkspace (c->blas, c->workspace, ws_bytes) != CUBLAS_STATUS_SUCCESS
      || cublasSetMathMode (c->blas, allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH)
             != CUBLAS_STATUS_SUCCESS) {
    ra_err_t rc = ra__nn_error (err, RA_ERR_BAD_CONFIG, "nn backend 'cuda': cannot initialise device %d (%s)", device,
                                cudaGetErrorString (cudaGetLastError ()));
    s_destroy (c);
    return rc;
  }
  *ops = &s_ops;
  *ctx = c;
  return RA_OK;
}
