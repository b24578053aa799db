/* tests/policies/naive_inverse.h - a reference matrix inverse for the baseline tests: plain
   Gauss-Jordan with partial pivoting in double, independent of agents/policies/linalg.c (which
   the tests check against it). Header-only so each test binary stays one file. n <= 16. */
#ifndef RA_TESTS_NAIVE_INVERSE_H
#define RA_TESTS_NAIVE_INVERSE_H

#include <math.h>

#define NAIVE_INVERSE_MAXN 16

static inline void naive_inverse (const double *a, int n, double *out)
{
  double m[NAIVE_INVERSE_MAXN][2 * NAIVE_INVERSE_MAXN];
  for (int i = 0; i < n; i++)
    for (int j = 0; j < 2 * n; j++)
      m[i][j] = j < n ? a[i * n + j] : (j - n == i);
  for (int c = 0; c < n; c++) {
    int p = c;
    for (int r = c + 1; r < n; r++)
      if (fabs (m[r][c]) > fabs (m[p][c]))
        p = r;
    for (int j = 0; j < 2 * n; j++) {
      double t = m[c][j];
      m[c][j] = m[p][j];
      m[p][j] = t;
    }
    double d = m[c][c];
    for (int j = 0; j < 2 * n; j++)
      m[c][j] /= d;
    for (int r = 0; r < n; r++)
      if (r != c) {
        double f = m[r][c];
        for (int j = 0; j < 2 * n; j++)
          m[r][j] -= f * m[c][j];
      }
  }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      out[i * n + j] = m[i][j + n];
}

#endif
