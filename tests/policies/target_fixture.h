/*  tests/policies/target_fixture.h - what the target policy's unit tests without a server share:
    a cpu backend for the suite (setup / teardown, for TestSuite's .init / .fini), a seeded
    generator (s_uniform, in [0, 1); the file defines FIXTURE_SEED before including) and random
    observations (users and candidates uniform in [-1, 1), drawn in that order). One include per
    test file, after criterion.h.                                                              */
#ifndef RA_TESTS_POLICIES_TARGET_FIXTURE_H
#define RA_TESTS_POLICIES_TARGET_FIXTURE_H

#include "agents/policies/target_int.h"

static ra_nn_backend_t *BE;
static void setup (void) { cr_assert_eq (ra_nn_backend_open ("cpu", NULL, &BE, NULL), RA_OK); }
static void teardown (void) { ra_nn_backend_destroy (&BE); }

static unsigned s_x = FIXTURE_SEED;
static inline float s_uniform (void) { return (float) ((s_x = s_x * 1664525u + 1013904223u) >> 8) / 16777216.0f; }

/* envs rows of users (U wide) and of K candidates (F wide), new draws; *o points at them, with
   no response (a caller that has one sets it) */
static inline void s_random_obs (ra_obs_batch_t *o, float *user, float *cand, int envs, int K, int k, int U, int F)
{
  for (int i = 0; i < envs * U; i++)
    user[i] = s_uniform () * 2 - 1;
  for (int i = 0; i < envs * K * F; i++)
    cand[i] = s_uniform () * 2 - 1;
  *o = (ra_obs_batch_t) { .num_envs = envs, .num_candidates = K, .slate_size = k, .user_dim = U, .cand_dim = F,
                          .user = user, .candidates = cand };
}

/* a slate of 2 distinct candidates of K, drawn uniformly */
static inline void s_random_pair (int32_t *slate, int K)
{
  int first = (int) (s_uniform () * K) % K;
  slate[0] = first;
  slate[1] = (first + 1 + (int) (s_uniform () * (K - 1)) % (K - 1)) % K;
}

#endif
