/*  agents/nn/backend.h - the ops table each backend fills (internal to agents/nn).

    All matrices are row-major. Pointers are device pointers of the backend. Kernels are
    asynchronous on cuda (one stream per backend). Included from C and from CUDA C++.          */
#ifndef RA_AGENTS_NN_BACKEND_H
#define RA_AGENTS_NN_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "agents/nn/nn.h"
#include "common/err.h"

/* The most replicas one slate op call takes (their RNG states travel as a kernel argument). */
#define RA__NN_SLATE_REPLICAS 128

typedef struct ra__nn_ops {
  const char *name;
  void (*destroy) (void *ctx);
  void *(*alloc) (void *ctx, size_t bytes); /* zeroed */
  void (*free) (void *ctx, void *p);
  void (*upload) (void *ctx, void *dst, const void *src, size_t bytes);
  void (*download) (void *ctx, void *dst, const void *src, size_t bytes); /* synchronous */
  /* host staging memory: zeroed; page-locked on cuda (cudaHostAlloc), so uploads from it can be
     asynchronous; NULL when out of memory. host_free waits for pending work first. */
  void *(*host_alloc) (void *ctx, size_t bytes);
  void (*host_free) (void *ctx, void *p);
  /* like upload, without waiting: src must be host_alloc memory left unchanged until the next
     call that waits (download, sync, host_free) */
  void (*upload_async) (void *ctx, void *dst, const void *src, size_t bytes);
  /* upload_async of `rows` rows of row_bytes each, src_pitch and dst_pitch bytes apart: one copy
     where a population's rows are strided */
  void (*upload_rows_async) (void *ctx, void *dst, size_t dst_pitch, const void *src, size_t src_pitch,
                             size_t row_bytes, size_t rows);
  void (*copy) (void *ctx, void *dst, const void *src, size_t bytes);
  void (*zero) (void *ctx, void *p, size_t bytes);
  void (*sync) (void *ctx);
  /* first asynchronous failure so far, or RA_OK; NULL when failures cannot be deferred (cpu) */
  ra_err_t (*status) (void *ctx, ra_error_t *err);

  /* C_i[M, N] = alpha op(A_i)[M, K] op(B_i)[K, N] + beta C_i for i < batch; X_i = X + i*sX.
     ta: A is stored [K, M] (lda >= M) instead of [M, K] (lda >= K); tb likewise. */
  void (*gemm) (void *ctx, bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
                long long sA, const float *B, int ldb, long long sB, float beta, float *C, int ldc,
                long long sC, int batch);

  /* y[p*ystride + (r*C + c)*F + f] = (u ? u[p*ustride + r*F + f] : 0) + bias[p*bstride + f] for r < R,
     c < C: a linear layer's output before its GEMM accumulates into it (beta = 1); u is the user
     half of a pair-input layer (docs/nn.md, "MLP module") */
  void (*bias_fill) (void *ctx, float *y, const float *u, const float *bias, int P, int R, int C, int F,
                     size_t ystride, size_t ustride, size_t bstride);
  /* dbias[p*bstride + f] += sum_b dy[p*dystride + b*F + f] (rows summed in order) */
  void (*bias_grad) (void *ctx, float *dbias, const float *dy, int P, int B, int F, size_t bstride,
                     size_t dystride);
  /* out[p*ostride + r*F + f] = sum_c dy[p*dystride + (r*C + c)*F + f] (c in order) */
  void (*group_sum) (void *ctx, const float *dy, float *out, int P, int R, int C, int F, size_t dystride,
                     size_t ostride);
  /* activations on P blocks of n elements, stride apart (one call for a population whose used
     rows do not fill its buffers; P = 1 for a plain array) */
  void (*relu_fwd) (void *ctx, const float *x, float *y, int P, size_t n, size_t stride);
  void (*relu_bwd) (void *ctx, const float *y, const float *dy, float *dx, int P, size_t n, size_t stride);
  void (*tanh_fwd) (void *ctx, const float *x, float *y, int P, size_t n, size_t stride);
  void (*tanh_bwd) (void *ctx, const float *y, const float *dy, float *dx, int P, size_t n, size_t stride);
  void (*ln_fwd) (void *ctx, const float *x, const float *g, const float *b, float *y, float *mean,
                  float *rstd, int P, int B, int D, size_t pstride);
  /* dx written; dg, db accumulated (rows summed in order) */
  void (*ln_bwd) (void *ctx, const float *x, const float *g, const float *mean, const float *rstd,
                  const float *dy, float *dx, float *dg, float *db, int P, int B, int D, size_t pstride);
  void (*softmax_fwd) (void *ctx, const float *x, float *y, int R, int C, bool log);
  void (*softmax_bwd) (void *ctx, const float *y, const float *dy, float *dx, int R, int C, bool log);
  void (*pairs_fwd) (void *ctx, const float *user, const float *cand, float *out, int R, int C, int du, int dc);
  void (*pairs_bwd) (void *ctx, const float *dout, float *duser, float *dcand, int R, int C, int du, int dc);
  void (*pg_fwd) (void *ctx, const float *logp, const int32_t *act, const float *adv, float *loss, int P,
                  int U, int C);
  void (*pg_bwd) (void *ctx, const int32_t *act, const float *adv, float *dlogp, float scale, bool acc,
                  int P, int U, int C);
  void (*ent_fwd) (void *ctx, const float *logp, float *loss, int P, int U, int C);
  void (*ent_bwd) (void *ctx, const float *logp, float *dlogp, float scale, bool acc, int P, int U, int C);
  void (*mse_fwd) (void *ctx, const float *v, const float *t, float *loss, int P, int U);
  void (*mse_bwd) (void *ctx, const float *v, const float *t, float *dv, float scale, bool acc, int P, int U);

  /* Slates and advantages (docs/nn.md, "Slate and advantage ops"). Rows r < R of K scores.
     slate: for each replica p < P (P <= RA__NN_SLATE_REPLICAS), its rows at row p*pstride + r:
     keys s_j (+ Gumbel noise from the counter-based RNG (rng[p].seed, rng[p].stream,
     rng[p].counter + r*K + j) unless greedy), top k by selection, ties to the lower index ->
     slates [row, k]. rng is host memory; one call covers a whole population (one launch). */
  void (*slate) (void *ctx, const float *scores, int P, size_t pstride, int R, int K, int k, bool greedy,
                 const ra_nn_rng_t *rng, int32_t *slates);
  /* Plackett-Luce: logp[r] = log P(slate_r), ent[r] = sum over positions of the entropy of the
     softmax over the candidates not yet placed (either may be NULL) */
  void (*pl_fwd) (void *ctx, const float *scores, const int32_t *slates, int R, int K, int k, float *logp,
                  float *ent);
  /* dscores[r, j] (+)= coef[r] d logp_r / ds_j + sum_i pos_coef[r, i] d log p_i / ds_j
     + ent_coef d ent_r / ds_j (pos_coef [R, k] may be NULL) */
  void (*pl_bwd) (void *ctx, const float *scores, const int32_t *slates, int R, int K, int k, const float *coef,
                  const float *pos_coef, float ent_coef, float *dscores, bool acc);
  /* GAE(lambda) per replica over [P, T, N] (values [P, T+1, N]): adv, ret [P, T, N] */
  void (*gae) (void *ctx, const float *reward, const uint8_t *done, const float *values, int P, int T, int N,
               float gamma, float lambda, float *adv, float *ret);
  /* x[p, :n] = (x - mean) / (std + 1e-8) per replica (population std, double sums in order) */
  void (*normalize) (void *ctx, float *x, int P, size_t n);

  /* out[p] = sum_i x[p*stride + i]^2, i < n; fixed chunking, partials summed in order */
  void (*sumsq) (void *ctx, const float *x, size_t n, int P, size_t stride, float *out);
  /* x[p*stride + i] *= min(1, max_norm / (sqrt(ss[p]) + 1e-6)); ss computed by sumsq */
  void (*clip_apply) (void *ctx, float *x, size_t n, int P, size_t stride, const float *ss, float max_norm);
  void (*axpy) (void *ctx, float *y, float a, const float *x, size_t n);
  void (*scale) (void *ctx, float *x, float a, size_t n);
  /* x[(p*pitch + r)*K + j] *= g[p*pitch + r] for p < P, r < R, j < K: rows of replica-major
     buffers, each scaled by its own factor */
  void (*scale_rows) (void *ctx, float *x, const float *g, int P, int R, int K, size_t pitch);
  /* per replica p < P (x_p = x + p*stride, n floats each): ++step[p], then Adam(W) with bias
     correction from step[p] and learning rate lr * lr_scale[p] */
  void (*adam) (void *ctx, float *w, const float *g, float *m, float *v, size_t n, int P, size_t stride,
                int32_t *step, const float *lr_scale, float lr, float b1, float b2, float eps, float wd);

  /* graph capture: begin, end -> opaque graph; launch; destroy. NULL on cpu. */
  ra_err_t (*graph_begin) (void *ctx, ra_error_t *err);
  ra_err_t (*graph_end) (void *ctx, void **graph, ra_error_t *err);
  void (*graph_launch) (void *ctx, void *graph);
  void (*graph_destroy) (void *ctx, void *graph);
} ra__nn_ops_t;

/* Floats per chunk of the cpu backend's two-pass sumsq. */
#define RA__NN_SUMSQ_CHUNK 4096

/* ra_error_set (common/err.h) for errors that concern no env of a batch. */
#define ra__nn_error(e, code, ...) ra_error_set ((e), (code), -1, __VA_ARGS__)

ra_err_t ra__nn_cpu_open (int blas_threads, const ra__nn_ops_t **ops, void **ctx, ra_error_t *err);
#ifdef RA_HAVE_CUDA
ra_err_t ra__nn_cuda_open (int device, bool allow_tf32, const ra__nn_ops_t **ops, void **ctx,
                           ra_error_t *err);
#endif

#ifdef __cplusplus
}
#endif

struct ra_nn_backend {
  const ra__nn_ops_t *ops;
  void *ctx;
};

#endif
