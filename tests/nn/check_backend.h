/*  tests/nn/check_backend.h - every nn op on a backend vs the double reference (check_backend.c). */
#ifndef RA_TESTS_NN_CHECK_BACKEND_H
#define RA_TESTS_NN_CHECK_BACKEND_H

#include "agents/nn/nn.h"

typedef struct {
  const char *op;
  double err; /* max|backend - reference| / max|reference| */
} nn_check_t;

/* Runs every op once with random inputs; fills out[0..n) and returns n. */
int nn_check_ops (ra_nn_backend_t *be, nn_check_t *out, int max);

/* Same-shape P-replica scorer vs P separate scorers: max abs difference of scores and grads. */
double nn_check_batched_vs_separate (ra_nn_backend_t *be, int P);

#endif
