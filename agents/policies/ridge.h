/*  agents/policies/ridge.h - a Bayesian ridge regression over phi features, shared by the
    epsilon-greedy and linear Thompson arms (docs/agents.md 1.3, 1.6):
    A = lambda I + sum x x^T (kept as A^-1 by Sherman-Morrison), b = sum r x, theta = A^-1 b.
    Caller-owned; not thread-safe.                                                           */
#ifndef RA_AGENTS_POLICIES_RIDGE_H
#define RA_AGENTS_POLICIES_RIDGE_H

#include <stdbool.h>

typedef struct {
  int D;
  double lambda;
  double *ainv;         /* D x D */
  double *b;            /* D */
  double *theta;        /* D, valid after ra__ridge_solve */
  double *scratch;      /* D */
} ra__ridge_t;

bool ra__ridge_init (ra__ridge_t *r, int D, double lambda);
void ra__ridge_fini (ra__ridge_t *r);
/* A^-1 = I / lambda, b = 0. */
void ra__ridge_clear (ra__ridge_t *r);
/* One observation (x, y): Sherman-Morrison on A^-1, b += y x. O(D^2). */
void ra__ridge_add (ra__ridge_t *r, const float *x, double y);
/* theta = A^-1 b. O(D^2). */
void ra__ridge_solve (ra__ridge_t *r);

#endif
