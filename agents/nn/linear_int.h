/*  agents/nn/linear_int.h - linear layers with explicit replica strides (internal to agents/nn).

    The public ra_nn_linear_forward / _backward are these with contiguous replicas; the MLP module
    (mlp.c) uses strides to run on one time slice of a [P, T, N, ...] buffer. Strides are floats
    between replica p and p+1 of x, y, dy, dx. Defined in nn.c; same threading rules as nn.h.   */
#ifndef RA_AGENTS_NN_LINEAR_INT_H
#define RA_AGENTS_NN_LINEAR_INT_H

#include "agents/nn/nn.h"

/* y[p][B, out] = x[p][B, in] w_p^T + b_p */
void ra__nn_linear_fwd (const ra_nn_params_t *p, int w, int b, const float *x, size_t xs, float *y, size_t ys,
                        int B);
/* dw_p += dy^T x; db_p += colsum dy; dx = dy w_p when dx is not NULL */
void ra__nn_linear_bwd (const ra_nn_params_t *p, int w, int b, const float *x, size_t xs, const float *dy,
                        size_t dys, float *dx, size_t dxs, int B);

#endif
