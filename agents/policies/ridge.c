/*  agents/policies/ridge.c - ridge posterior by rank-one updates (see ridge.h). */
#include "agents/policies/ridge.h"

#include <stdlib.h>
#include <string.h>

#include "agents/policies/linalg.h"

bool ra__ridge_init (ra__ridge_t *r, int D, double lambda)
{
  r->D = D;
  r->lambda = lambda;
  r->ainv = malloc ((size_t) D * D * sizeof *r->ainv);
  r->b = malloc ((size_t) D * sizeof *r->b);
  r->theta = malloc ((size_t) D * sizeof *r->theta);
  r->scratch = malloc ((size_t) D * sizeof *r->scratch);
  if (!r->ainv || !r->b || !r->theta || !r->scratch) {
    ra__ridge_fini (r);
    return false;
  }
  ra__ridge_clear (r);
  return true;
}

void ra__ridge_fini (ra__ridge_t *r)
{
  free (r->ainv);
  free (r->b);
  free (r->theta);
  free (r->scratch);
  memset (r, 0, sizeof *r);
}

void ra__ridge_clear (ra__ridge_t *r)
{
  ra__set_identity (r->ainv, r->D, 1.0 / r->lambda);
  memset (r->b, 0, (size_t) r->D * sizeof *r->b);
  memset (r->theta, 0, (size_t) r->D * sizeof *r->theta);
}

void ra__ridge_add (ra__ridge_t *r, const float *x, double y)
{
  ra__sm_update (r->ainv, x, r->D, r->scratch);
  for (int j = 0; j < r->D; j++)
    r->b[j] += y * x[j];
}

void ra__ridge_solve (ra__ridge_t *r)
{
  ra__matvec (r->ainv, r->b, r->D, r->theta);
}
