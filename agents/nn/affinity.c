/*  agents/nn/affinity.c - the affinity head: a score term bilinear in (user, candidate), all P
    replicas per call, explicit replica strides (docs/nn.md, "Affinity head").

    s[r, j] += c_{r,j} . (A u_r + a): one strided linear layer for t_r = A u_r + a, then one batched
    matrix-vector product per replica for the candidates. Owns nothing; allocates nothing.      */
#include <assert.h>

#include "agents/nn/backend.h"
#include "agents/nn/linear_int.h"
#include "agents/nn/nn.h"

#define OPS(be) ((be)->ops)
#define CTX(be) ((be)->ctx)

void ra_nn_affinity_forward (const ra_nn_params_t *p, int w, int b, const float *u, size_t xs, const float *cand,
                             int K, float *scores, float *t, int R, size_t S)
{
  const ra_nn_tensor_t *tw = &p->tensors[w];
  assert (tw->ndim == 2 && R >= 1 && (size_t) R <= S && (size_t) R <= xs);
  int F = tw->shape[0], U = tw->shape[1];
  size_t ts = (size_t) R * F, cs = S * (size_t) K * F, ss = S * (size_t) K;
  ra__nn_linear_fwd (p, w, b, u, xs * U, t, ts, R); /* t[p][R, F] = u A^T + a */
  for (int q = 0; q < p->replicas; q++)             /* s_r[K] += c_r[K, F] t_r, for each of R users */
    OPS (p->be)->gemm (CTX (p->be), false, true, K, 1, F, 1.0f, cand + q * cs, F, (long long) K * F, t + q * ts,
                       F, F, 1.0f, scores + q * ss, 1, K, R);
}

void ra_nn_affinity_backward (ra_nn_params_t *p, int w, int b, const float *u, size_t xs, const float *cand,
                              int K, const float *dscores, float *t, int R, size_t S)
{
  const ra_nn_tensor_t *tw = &p->tensors[w];
  int F = tw->shape[0], U = tw->shape[1];
  size_t ts = (size_t) R * F, cs = S * (size_t) K * F, ss = S * (size_t) K;
  for (int q = 0; q < p->replicas; q++) /* dt_r[F] = c_r^T ds_r */
    OPS (p->be)->gemm (CTX (p->be), true, false, F, 1, K, 1.0f, cand + q * cs, F, (long long) K * F,
                       dscores + q * ss, 1, K, 0.0f, t + q * ts, 1, F, R);
  ra__nn_linear_bwd (p, w, b, u, xs * U, t, ts, NULL, 0, R); /* dA += dt^T u, da += sum dt */
}
