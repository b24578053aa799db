/*  agents/nn/nn_ref.h - naive reference implementation of every nn op, in double precision.

    Plain loops, one replica, row-major [batch, features] like the backends. Used by the tests:
    finite-difference gradient checks run here in double, and each backend is compared to it.
    Same gradient convention: parameter grads accumulate (+=), input grads are written (=).
    Pure functions; thread-safe.                                                              */
#ifndef RA_AGENTS_NN_REF_H
#define RA_AGENTS_NN_REF_H

#include <stdbool.h>
#include <stdint.h>

/* y[B, out] = x[B, in] w[out, in]^T + b[out] */
void ra_nn_ref_linear_fwd (const double *x, const double *w, const double *b, double *y, int B, int in, int out);
/* dw += dy^T x, db += colsum dy, dx = dy w (dx may be NULL) */
void ra_nn_ref_linear_bwd (const double *x, const double *w, const double *dy, double *dx, double *dw,
                           double *db, int B, int in, int out);
void ra_nn_ref_relu_fwd (const double *x, double *y, int n);
void ra_nn_ref_relu_bwd (const double *y, const double *dy, double *dx, int n);
void ra_nn_ref_tanh_fwd (const double *x, double *y, int n);
void ra_nn_ref_tanh_bwd (const double *y, const double *dy, double *dx, int n);
/* layer norm over D, eps 1e-5; backward recomputes the statistics */
void ra_nn_ref_ln_fwd (const double *x, const double *g, const double *b, double *y, int B, int D);
void ra_nn_ref_ln_bwd (const double *x, const double *g, const double *dy, double *dx, double *dg, double *db,
                       int B, int D);
void ra_nn_ref_softmax_fwd (const double *x, double *y, int R, int C, bool log);
void ra_nn_ref_softmax_bwd (const double *y, const double *dy, double *dx, int R, int C, bool log);
void ra_nn_ref_pairs_fwd (const double *user, const double *cand, double *out, int R, int C, int du, int dc);
void ra_nn_ref_pairs_bwd (const double *dout, double *duser, double *dcand, int R, int C, int du, int dc);
/* losses over U rows (one replica); backward writes scale * dloss/dinput */
double ra_nn_ref_pg_fwd (const double *logp, const int32_t *act, const double *adv, int U, int C);
void ra_nn_ref_pg_bwd (const int32_t *act, const double *adv, double *dlogp, double scale, int U, int C);
double ra_nn_ref_entropy_fwd (const double *logp, int U, int C);
void ra_nn_ref_entropy_bwd (const double *logp, double *dlogp, double scale, int U, int C);
double ra_nn_ref_mse_fwd (const double *v, const double *t, int U);
void ra_nn_ref_mse_bwd (const double *v, const double *t, double *dv, double scale, int U);
double ra_nn_ref_sumsq (const double *x, int n);
/* one Adam(W) step at step number t (1-based) */
void ra_nn_ref_adam (double *w, const double *g, double *m, double *v, int n, int t, double lr, double b1,
                     double b2, double eps, double wd);
/* slates and advantages (docs/nn.md, "Slate and advantage ops"); one replica */
/* top k of s_j + Gumbel(u at counter + r*K + j of (seed, stream)) (or of s_j when greedy) */
void ra_nn_ref_slate (const double *scores, int R, int K, int k, bool greedy, uint64_t seed, uint64_t stream,
                      uint64_t counter, int32_t *slates);
/* one row: returns log P(slate); *ent (may be NULL) the summed entropies; dlogp, dent (may be
   NULL) get the gradients with respect to the scores (written) */
double ra_nn_ref_pl (const double *s, const int32_t *slate, int K, int k, double *ent, double *dlogp, double *dent);
void ra_nn_ref_gae (const double *reward, const uint8_t *done, const double *values, int T, int N, double gamma,
                    double lambda, double *adv, double *ret);
void ra_nn_ref_normalize (double *x, int n);

#endif
