/*  agents/policies/lints.h - the linear Thompson sampling core (docs/agents.md 1.6), shared by
    the "lints" arm and the Meta-TS arm "metats" (1.9), which differ only in the prior: LinTS
    starts every task from theta ~ N(0, (v^2 / lambda) I), Meta-TS from N(mu, (v^2 / lambda) I)
    with mu drawn from a learnt hyper-posterior.

    Model: per-slot credit y = theta . phi(u, c) + noise of variance v^2. Posterior
    theta ~ N(theta_hat, v^2 A^-1), A = lambda I + G, G = sum x x^T (A^-1 kept by
    Sherman-Morrison), theta_hat = A^-1 (lambda mu + B), B = sum y x. The core can also keep G and
    B themselves (keep_stats): the task's sufficient statistics, which Meta-TS folds into its
    hyper-posterior when the task ends.
    Internal to ra_policies (ra__ names); caller-owned; one thread.                          */
#ifndef RA_AGENTS_POLICIES_LINTS_H
#define RA_AGENTS_POLICIES_LINTS_H

#include <stdbool.h>

#include "agents/policies/policy.h"
#include "agents/policies/ridge.h"
#include "common/rng.h"

typedef struct {
  ra_rng_t rng;                         /* seeded from the arm's seed */
  double v, lambda;
  ra__ridge_t model;
  int D, K;
  double *chol, *theta, *zs;            /* D x D, D, D */
  double *mu;                           /* D: the prior mean (zeros for LinTS) */
  double *gram, *bsum;                  /* D x D, D: G and B on this task; NULL unless keep_stats */
  float *phi;                           /* D */
  float *score;                         /* K */
} ra__lints_t;

/* Zeroes t, then allocates for D = phi_dim(U, F) and K candidates; prior mean 0. False when out
   of memory (t is then released). */
bool ra__lints_init (ra__lints_t *t, const ra_policy_args_t *args, double v, double lambda,
                     bool keep_stats);
void ra__lints_fini (ra__lints_t *t);
/* Sets the prior mean (D values) and restarts from the prior: A^-1 = I / lambda, B = 0, G = 0. */
void ra__lints_set_prior_mean (ra__lints_t *t, const double *mu);
/* Back to the prior (the mean set last); the RNG stream continues. */
void ra__lints_forget (ra__lints_t *t);
/* One theta draw per env, top k by theta . phi. */
void ra__lints_act (ra__lints_t *t, const ra_obs_batch_t *obs, int32_t *slates);
/* Every (env, slot) of the batch as one observation (phi of the shown candidate, its credit). */
void ra__lints_learn (ra__lints_t *t, const ra_obs_batch_t *obs, const ra_feedback_t *fb);

#endif
