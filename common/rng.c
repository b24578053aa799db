/*  common/rng.c - seeding and the non-inline draws of common/rng.h. */
#include "common/rng.h"

#include <math.h>

uint64_t ra_rng_hash (uint64_t a, uint64_t b, uint64_t c)
{
  uint64_t x = a;
  uint64_t h = ra_rng_splitmix64 (&x);
  x = h ^ b;
  h = ra_rng_splitmix64 (&x);
  x = h ^ c;
  return ra_rng_splitmix64 (&x);
}

void ra_rng_seed (ra_rng_t *r, uint64_t seed, uint64_t stream)
{
  uint64_t x = ra_rng_hash (seed, stream, 0x7265636172656e61ULL);
  for (int i = 0; i < 4; i++)
    r->s[i] = ra_rng_splitmix64 (&x);
  if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0)
    r->s[0] = 1;   /* the all-zero state is the one fixed point of xoshiro */
}

void ra_rng_seed_splitmix (ra_rng_t *r, uint64_t seed)
{
  for (int i = 0; i < 4; i++)
    r->s[i] = ra_rng_splitmix64 (&seed);
  if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0)
    r->s[0] = 1;
}

static void s_box_muller (ra_rng_t *r, double *a, double *b)
{
  double u1 = 1.0 - ra_rng_uniform_f64 (r);   /* (0, 1]: log is finite */
  double u2 = ra_rng_uniform_f64 (r);
  double rad = sqrt (-2.0 * log (u1));
  double ang = 6.283185307179586 * u2;
  *a = rad * cos (ang);
  *b = rad * sin (ang);
}

void ra_rng_normals (ra_rng_t *r, float *out, int n)
{
  int i = 0;
  for (; i + 1 < n; i += 2) {
    double a, b;
    s_box_muller (r, &a, &b);
    out[i] = (float) a;
    out[i + 1] = (float) b;
  }
  if (i < n)
    out[i] = (float) ra_rng_normal (r);
}

double ra_rng_normal (ra_rng_t *r)
{
  double a, b;
  s_box_muller (r, &a, &b);
  return a;
}

double ra_rng_lognormal (ra_rng_t *r, double mu, double sigma)
{
  return exp (mu + sigma * ra_rng_normal (r));
}

double ra_rng_range (ra_rng_t *r, double lo, double hi)
{
  return lo + (hi - lo) * ra_rng_uniform_f64 (r);
}
