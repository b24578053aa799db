/*  agents/policies/linalg.h - the small dense algebra of the linear bandits (docs/agents.md
    section 1): rank-one Sherman-Morrison updates of A^-1, quadratic forms, Cholesky. Row-major
    D x D doubles owned by the caller; no allocation; thread-safe. D is small (tens), so plain
    loops beat a BLAS call here.                                                              */
#ifndef RA_AGENTS_POLICIES_LINALG_H
#define RA_AGENTS_POLICIES_LINALG_H

#include <stdbool.h>

/* ainv <- (A + x x^T)^-1 given ainv = A^-1 (symmetric):
   ainv -= (ainv x)(ainv x)^T / (1 + x^T ainv x). scratch: D doubles. O(D^2). */
void ra__sm_update (double *ainv, const float *x, int D, double *scratch);
/* x^T M y for D x D M. O(D^2). */
double ra__quad (const double *m, const float *x, const float *y, int D);
/* out = M x. O(D^2). */
void ra__matvec (const double *m, const double *x, int D, double *out);
/* Lower Cholesky factor L (L L^T = A) of symmetric positive definite A, into l (may not alias a).
   False when A is not positive definite. O(D^3 / 3). */
bool ra__cholesky (const double *a, int D, double *l);
/* Solves L L^T x = b for the lower Cholesky factor L of A (x may alias b). O(D^2). */
void ra__chol_solve (const double *l, int D, const double *b, double *x);
/* Solves L^T x = z (back substitution; x may alias z): x = L^-T z, which has covariance A^-1
   when z ~ N(0, I) (a draw from N(0, A^-1) given the factor of the precision A). O(D^2). */
void ra__chol_solve_upper (const double *l, int D, const double *z, double *x);
/* out = A^-1 for symmetric positive definite A, through Cholesky. scratch: D * D + D doubles.
   False when A is not positive definite. O(D^3). */
bool ra__spd_inverse (const double *a, int D, double *out, double *scratch);
/* Sets M = s I. */
void ra__set_identity (double *m, int D, double s);

#endif
