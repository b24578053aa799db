/*  agents/nn/rng_int.h - the counter-based RNG of agents/nn as inline functions, so the host
    (nn.c, the cpu backend, the reference) and the cuda kernels draw the same numbers: the draw
    at (seed, stream, counter) is a pure function of the three (docs/nn.md, "RNG").
    Internal to agents/nn; pure functions, thread-safe.                                        */
#ifndef RA_AGENTS_NN_RNG_INT_H
#define RA_AGENTS_NN_RNG_INT_H

#include <stdint.h>

#include "common/rng.h"

#define RA__NN_HD RA_RNG_HD

/* one splitmix64 step from state z */
static inline RA__NN_HD uint64_t ra__nn_mix (uint64_t z)
{
  return ra_rng_splitmix64 (&z);
}

static inline RA__NN_HD uint64_t ra__nn_rng_at (uint64_t seed, uint64_t stream, uint64_t counter)
{
  uint64_t key = ra__nn_mix (seed ^ ra__nn_mix (stream + 0x632be59bd9b4e019ULL));
  return ra__nn_mix (key ^ ra__nn_mix (counter));
}

/* [0, 1) with 24 bits, as ra_nn_rng_uniform */
static inline RA__NN_HD float ra__nn_uniform_at (uint64_t seed, uint64_t stream, uint64_t counter)
{
  return (float) (ra__nn_rng_at (seed, stream, counter) >> 40) * (1.0f / 16777216.0f);
}

#endif
