/*  common/rng.h - the project's one pseudo-random generator: xoshiro256** seeded through
    splitmix64 (docs/sims/ecommerce.md section 1; docs/architecture.md section 3). Simulators,
    baselines and the A/B statistics all draw from it.

    A ra_rng_t is 32 bytes of state owned by whoever embeds it (one per env, one per task
    build, one per arm). A stream is keyed by (seed, stream): the same key always gives the same sequence,
    whatever else runs. The hot draws are static inline. Not thread-safe per object; distinct
    objects may be used from distinct threads.                                                   */
#ifndef RA_COMMON_RNG_H
#define RA_COMMON_RNG_H

#include <stdint.h>

typedef struct {
  uint64_t s[4];
} ra_rng_t;

/* CUDA kernels draw the same counter-based numbers as the host (agents/nn/rng_int.h). */
#ifdef __CUDACC__
#define RA_RNG_HD __host__ __device__
#else
#define RA_RNG_HD
#endif

/* One splitmix64 step: advances *x and returns a well-mixed 64-bit value. */
static inline RA_RNG_HD uint64_t ra_rng_splitmix64 (uint64_t *x)
{
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Mixes a few words into one 64-bit key (for deriving stream keys from (sim, split, id)). */
uint64_t ra_rng_hash (uint64_t a, uint64_t b, uint64_t c);

/* Seeds *r for stream `stream` of seed `seed`; distinct (seed, stream) pairs give unrelated
   sequences. O(1). */
void ra_rng_seed (ra_rng_t *r, uint64_t seed, uint64_t stream);
/* Seeds *r with four splitmix64 steps from seed itself, without the stream hash of ra_rng_seed:
   the seeding the baseline arms have always used, kept so their reports stay the same. O(1). */
void ra_rng_seed_splitmix (ra_rng_t *r, uint64_t seed);

static inline uint64_t ra__rng_rotl (uint64_t x, int k)
{
  return (x << k) | (x >> (64 - k));
}

/* Next raw 64-bit value (xoshiro256**). */
static inline uint64_t ra_rng_next (ra_rng_t *r)
{
  uint64_t *s = r->s;
  uint64_t result = ra__rng_rotl (s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = ra__rng_rotl (s[3], 45);
  return result;
}

/* Uniform float in [0, 1) with 24 random bits. */
static inline float ra_rng_uniform (ra_rng_t *r)
{
  return (float) (ra_rng_next (r) >> 40) * 0x1.0p-24f;
}

/* Uniform double in [0, 1) with 53 random bits. */
static inline double ra_rng_uniform_f64 (ra_rng_t *r)
{
  return (double) (ra_rng_next (r) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [0, n), n >= 1 (Lemire's multiply-shift on 32 bits; the bias is below
   n / 2^32, documented and accepted). */
static inline uint32_t ra_rng_below (ra_rng_t *r, uint32_t n)
{
  return (uint32_t) (((ra_rng_next (r) >> 32) * (uint64_t) n) >> 32);
}

/* n standard normal draws into out (Box-Muller in double, rounded to float). O(n). */
void ra_rng_normals (ra_rng_t *r, float *out, int n);
/* One standard normal draw (double precision). */
double ra_rng_normal (ra_rng_t *r);
/* exp(mu + sigma * N(0, 1)). */
double ra_rng_lognormal (ra_rng_t *r, double mu, double sigma);
/* Uniform double in [lo, hi). */
double ra_rng_range (ra_rng_t *r, double lo, double hi);

#endif
