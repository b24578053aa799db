/*  agents/policies/linalg.c - small dense algebra for the linear bandits (see linalg.h). */
#include "agents/policies/linalg.h"

#include <math.h>
#include <string.h>

void ra__sm_update (double *ainv, const float *x, int D, double *u)
{
  double den = 1.0;
  for (int i = 0; i < D; i++) {
    double s = 0;
    for (int j = 0; j < D; j++)
      s += ainv[(size_t) i * D + j] * x[j];
    u[i] = s;
    den += s * x[i];
  }
  for (int i = 0; i < D; i++) {
    double ui = u[i] / den;
    for (int j = 0; j < D; j++)
      ainv[(size_t) i * D + j] -= ui * u[j];
  }
}

double ra__quad (const double *m, const float *x, const float *y, int D)
{
  double s = 0;
  for (int i = 0; i < D; i++) {
    double r = 0;
    for (int j = 0; j < D; j++)
      r += m[(size_t) i * D + j] * y[j];
    s += x[i] * r;
  }
  return s;
}

void ra__matvec (const double *m, const double *x, int D, double *out)
{
  for (int i = 0; i < D; i++) {
    double s = 0;
    for (int j = 0; j < D; j++)
      s += m[(size_t) i * D + j] * x[j];
    out[i] = s;
  }
}

bool ra__cholesky (const double *a, int D, double *l)
{
  memset (l, 0, (size_t) D * D * sizeof *l);
  for (int j = 0; j < D; j++) {
    double d = a[(size_t) j * D + j];
    for (int p = 0; p < j; p++)
      d -= l[(size_t) j * D + p] * l[(size_t) j * D + p];
    if (!(d > 0))
      return false;
    double ljj = sqrt (d);
    l[(size_t) j * D + j] = ljj;
    for (int i = j + 1; i < D; i++) {
      double s = a[(size_t) i * D + j];
      for (int p = 0; p < j; p++)
        s -= l[(size_t) i * D + p] * l[(size_t) j * D + p];
      l[(size_t) i * D + j] = s / ljj;
    }
  }
  return true;
}

void ra__chol_solve (const double *l, int D, const double *b, double *x)
{
  for (int i = 0; i < D; i++) {   /* L y = b */
    double s = b[i];
    for (int p = 0; p < i; p++)
      s -= l[(size_t) i * D + p] * x[p];
    x[i] = s / l[(size_t) i * D + i];
  }
  ra__chol_solve_upper (l, D, x, x);
}

void ra__chol_solve_upper (const double *l, int D, const double *z, double *x)
{
  for (int i = D - 1; i >= 0; i--) {
    double s = z[i];
    for (int p = i + 1; p < D; p++)
      s -= l[(size_t) p * D + i] * x[p];
    x[i] = s / l[(size_t) i * D + i];
  }
}

bool ra__spd_inverse (const double *a, int D, double *out, double *scratch)
{
  double *l = scratch, *col = scratch + (size_t) D * D;
  if (!ra__cholesky (a, D, l))
    return false;
  for (int c = 0; c < D; c++) {   /* solve L L^T x = e_c */
    for (int i = 0; i < D; i++)
      col[i] = i == c;
    ra__chol_solve (l, D, col, col);
    for (int i = 0; i < D; i++)
      out[(size_t) i * D + c] = col[i];
  }
  return true;
}

void ra__set_identity (double *m, int D, double s)
{
  memset (m, 0, (size_t) D * D * sizeof *m);
  for (int i = 0; i < D; i++)
    m[(size_t) i * D + i] = s;
}
