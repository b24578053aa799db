/*  agents/nn/mlp.c - the one MLP of agents/nn: plain or (user, candidate) pair input, P replicas
    per call, explicit replica strides (docs/nn.md, "MLP module").

    Owns nothing: tensors live in the caller's parameter table, activations in caller buffers.
    Nothing is allocated in forward/backward. Not thread-safe (the backend is not).             */
#include <assert.h>
#include <stdio.h>

#include "agents/nn/backend.h"
#include "agents/nn/linear_int.h"
#include "agents/nn/nn.h"

#define OPS(be) ((be)->ops)
#define CTX(be) ((be)->ctx)

bool ra_nn_mlp_add (ra_nn_params_t *p, ra_nn_mlp_t *m, const char *prefix, int du, int dc, int cands,
                    int nhidden, const int *hidden, int out, ra_nn_act_t act)
{
  if (nhidden < 0 || nhidden + 1 > RA_NN_MLP_MAX_LAYERS || du < 0 || dc < 0 || du + dc < 1 || out < 1
      || cands < 0 || (dc > 0 && cands == 0))
    return false;
  *m = (ra_nn_mlp_t) { .n = nhidden + 1, .du = du, .dc = dc, .cands = cands, .act = act };
  int in = du + dc;
  for (int i = 0; i < m->n; i++) {
    int w = i < nhidden ? hidden[i] : out;
    if (w < 1)
      return false;
    m->width[i] = w;
    m->max_width = w > m->max_width ? w : m->max_width;
    char name[RA_NN_NAME_MAX];
    int ws[2] = { w, in }, bs[1] = { w };
    snprintf (name, sizeof name, "%s%d.w", prefix, i);
    m->w[i] = ra_nn_params_add (p, name, 2, ws);
    snprintf (name, sizeof name, "%s%d.b", prefix, i);
    m->b[i] = ra_nn_params_add (p, name, 1, bs);
    if (m->w[i] < 0 || m->b[i] < 0)
      return false;
    in = w;
  }
  return true;
}

static int s_rows_per_user (const ra_nn_mlp_t *m) { return m->cands > 0 ? m->cands : 1; }

/* The activation of layer i on R users of every replica (replicas S users apart), in one op. */
static void s_act (const ra_nn_params_t *p, const ra_nn_mlp_t *m, float *y, int i, int R, size_t S)
{
  size_t C = (size_t) s_rows_per_user (m), w = (size_t) m->width[i];
  const ra__nn_ops_t *o = p->be->ops;
  (m->act == RA_NN_ACT_TANH ? o->tanh_fwd : o->relu_fwd) (p->be->ctx, y, y, p->replicas, R * C * w, S * C * w);
}

/* dx *= activation'(y) in place, on the same rows as s_act. */
static void s_act_bwd (const ra_nn_params_t *p, const ra_nn_mlp_t *m, const float *y, float *dx, int i, int R,
                       size_t S)
{
  size_t C = (size_t) s_rows_per_user (m), w = (size_t) m->width[i];
  const ra__nn_ops_t *o = p->be->ops;
  (m->act == RA_NN_ACT_TANH ? o->tanh_bwd : o->relu_bwd) (p->be->ctx, y, dx, dx, p->replicas, R * C * w, S * C * w);
}

const float *ra_nn_mlp_forward (const ra_nn_params_t *p, const ra_nn_mlp_t *m, const float *x,
                                const float *cand, float *const *act, int R, size_t xs, size_t S)
{
  assert (R >= 1 && (size_t) R <= S && (m->cands == 0 || (size_t) R <= xs));
  ra_nn_backend_t *be = p->be;
  int P = p->replicas;
  size_t C = (size_t) s_rows_per_user (m);
  for (int i = 0; i < m->n; i++) {
    size_t ys = S * C * m->width[i];
    if (i == 0 && m->cands > 0) { /* pairs: y = (W0u u + b) per user, + W0c c per candidate */
      int H = m->width[0], in = m->du + m->dc;
      const float *w0 = ra_nn_param (p, m->w[0]);
      if (m->du > 0)
        OPS (be)->gemm (CTX (be), false, true, R, H, m->du, 1.0f, x, m->du, (long long) (xs * m->du), w0, in,
                        (long long) p->n, 0.0f, act[0], H, (long long) (S * H), P);
      OPS (be)->bias_fill (CTX (be), act[1], m->du > 0 ? act[0] : NULL, ra_nn_param (p, m->b[0]), P, R,
                           (int) C, H, ys, S * H, p->n);
      if (m->dc > 0)
        OPS (be)->gemm (CTX (be), false, true, R * (int) C, H, m->dc, 1.0f, cand, m->dc,
                        (long long) (S * C * m->dc), w0 + m->du, in, (long long) p->n, 1.0f, act[1], H,
                        (long long) ys, P);
    } else {
      const float *in = i == 0 ? x : act[i];
      size_t ins = i == 0 ? xs * m->du : S * C * m->width[i - 1];
      ra__nn_linear_fwd (p, m->w[i], m->b[i], in, ins, act[i + 1], ys, R * (int) C);
    }
    if (i < m->n - 1)
      s_act (p, m, act[i + 1], i, R, S);
  }
  return act[m->n];
}

void ra_nn_mlp_backward (ra_nn_params_t *p, const ra_nn_mlp_t *m, const float *x, const float *cand,
                         float *const *act, const float *dout, float *const *dbuf, int R, size_t xs,
                         size_t S)
{
  ra_nn_backend_t *be = p->be;
  int P = p->replicas;
  size_t C = (size_t) s_rows_per_user (m);
  const float *dy = dout;
  for (int i = m->n - 1; i >= 0; i--) {
    size_t dys = S * C * m->width[i];
    if (i == 0 && m->cands > 0) {
      int H = m->width[0], in = m->du + m->dc;
      float *g0 = ra_nn_grad (p, m->w[0]);
      if (m->dc > 0) /* dW0c += dy^T c over all pairs */
        OPS (be)->gemm (CTX (be), true, false, H, m->dc, R * (int) C, 1.0f, dy, H, (long long) dys, cand, m->dc,
                        (long long) (S * C * m->dc), 1.0f, g0 + m->du, in, (long long) p->n, P);
      /* per user: sum over candidates, then dW0u += (sum dy)^T u, db0 += sum over users */
      OPS (be)->group_sum (CTX (be), dy, act[0], P, R, (int) C, H, dys, S * H);
      if (m->du > 0)
        OPS (be)->gemm (CTX (be), true, false, H, m->du, R, 1.0f, act[0], H, (long long) (S * H), x, m->du,
                        (long long) (xs * m->du), 1.0f, g0, in, (long long) p->n, P);
      OPS (be)->bias_grad (CTX (be), ra_nn_grad (p, m->b[0]), act[0], P, R, H, p->n, S * H);
      break;
    }
    float *dx = i > 0 ? dbuf[i & 1] : NULL;
    const float *in = i == 0 ? x : act[i];
    size_t ins = i == 0 ? xs * m->du : S * C * m->width[i - 1];
    ra__nn_linear_bwd (p, m->w[i], m->b[i], in, ins, dy, dys, dx, ins, R * (int) C);
    if (dx)
      s_act_bwd (p, m, act[i], dx, i - 1, R, S);
    dy = dx;
  }
}

double ra_nn_mlp_flops (const ra_nn_mlp_t *m, int R, int P)
{
  double users = (double) R * P, rows = users * s_rows_per_user (m), f = 0;
  for (int i = 0; i < m->n; i++) {
    if (i == 0 && m->cands > 0)
      f += 2.0 * (users * m->du + rows * m->dc) * m->width[0];
    else
      f += 2.0 * rows * (i == 0 ? m->du : m->width[i - 1]) * m->width[i];
  }
  return f;
}
