/*  agents/policies/metats.h - Meta-Thompson sampling (Kveton et al. 2021), linear-Gaussian
    variant (docs/agents.md 1.9): a hyper-posterior N(mu_hat, Sigma_hat) over the prior mean mu of
    the LinTS weights, learnt from train tasks (eqs. MT2-MT4), and the arm "metats" that plays a
    task with LinTS from the prior N(mu~, sigma0^2 I), mu~ drawn from it (MT5).

    A prior lives in a text file (ra_metats_prior_save / _load, format in docs/agents.md 1.9),
    written by `recarena-ab --learn-prior FILE` (agents/ab/learn_prior.h) and read by the arm
    `metats:prior=FILE`. A ra_metats_prior_t is caller-owned and belongs to one thread; the
    functions on it are otherwise pure.                                                       */
#ifndef RA_AGENTS_POLICIES_METATS_H
#define RA_AGENTS_POLICIES_METATS_H

#include <stdint.h>

#include "agents/policies/policy.h"
#include "common/err.h"
#include "common/rng.h"

/* The hyper-posterior in information form (MT3): precision Lambda_hat and eta_hat =
   Lambda_hat mu_hat, plus the model it belongs to. */
typedef struct {
  char env_id[64];                      /* the sim it was learnt on; "" when unknown */
  char credit[16];                      /* "clicked" or "metric"; "" when unknown */
  char tasks[128];                      /* the train tasks, canonical task-set text; "" unknown */
  int user_dim, cand_dim, D;            /* D = phi_dim(user_dim, cand_dim) */
  double v;                             /* reward noise std (LinTS's v) */
  double sigma0;                        /* std of a task's weights around mu */
  double sigma_q;                       /* hyper-prior std of mu around mu_q = 0 */
  int64_t n_tasks;                      /* tasks folded in */
  double *prec;                         /* D x D, Lambda_hat */
  double *eta;                          /* D, eta_hat */
} ra_metats_prior_t;

/* The hyper-prior (no task yet): Lambda_hat = I / sigma_q^2, eta_hat = 0. RA_ERR_BAD_CONFIG for
   dims outside [1, 2048] or v, sigma0, sigma_q not positive and finite; RA_ERR_NOMEM. */
ra_err_t ra_metats_prior_init (ra_metats_prior_t *q, int user_dim, int cand_dim, double v,
                               double sigma0, double sigma_q, ra_error_t *err);
/* Frees; accepts a zeroed or finished prior. */
void ra_metats_prior_fini (ra_metats_prior_t *q);
/* *dst = a deep copy of src (dst is overwritten, not freed first). */
ra_err_t ra_metats_prior_copy (ra_metats_prior_t *dst, const ra_metats_prior_t *src, ra_error_t *err);

/* Folds one task in (MT2, MT3): gram = G = sum x x^T (D x D, symmetric), bsum = B = sum y x (D)
   over the task's observations. RA_ERR_NOMEM. O(D^3). */
ra_err_t ra_metats_prior_update (ra_metats_prior_t *q, const double *gram, const double *bsum,
                                 ra_error_t *err);
/* mu_hat (D) and, unless cov is NULL, Sigma_hat (D x D) (MT4). RA_ERR_BAD_CONFIG when
   Lambda_hat is not positive definite. O(D^3). */
ra_err_t ra_metats_prior_mean (const ra_metats_prior_t *q, double *mean, double *cov, ra_error_t *err);
/* A draw mu~ ~ N(mu_hat, Sigma_hat) into out (D), D normals from rng (MT4). O(D^3). */
ra_err_t ra_metats_prior_sample (const ra_metats_prior_t *q, ra_rng_t *rng, double *out,
                                 ra_error_t *err);

/* Writes q to path (numbers as %.17g: a load gives back the same doubles). RA_ERR_IO naming
   the path. */
ra_err_t ra_metats_prior_save (const ra_metats_prior_t *q, const char *path, ra_error_t *err);
/* Reads and validates a file written by ra_metats_prior_save into *q (zeroed first). Errors
   name the path and what was wrong: RA_ERR_IO (cannot read), RA_ERR_BAD_CONFIG (not a prior
   file, a malformed or missing field with its line, dims that disagree, numbers that are not
   finite, a precision that is not symmetric positive definite). */
ra_err_t ra_metats_prior_load (const char *path, ra_metats_prior_t *q, ra_error_t *err);

/* ---- the arm "metats" (ra_metats_policy_class, baselines.h) ------------------------------ */

/* The prior file the arm loaded (prior=FILE), or NULL (prior=none, or not a metats arm). */
const ra_metats_prior_t *ra_metats_arm_prior (const ra_policy_t *pol);
/* A hyper-prior for this arm's model: its dims, v, sigma0 and sigma_q settings (prior=none). */
ra_err_t ra_metats_arm_hyper_prior (const ra_policy_t *pol, ra_metats_prior_t *out, ra_error_t *err);
/* Draws mu~ from q with the arm's RNG and restarts the arm from the prior N(mu~, sigma0^2 I).
   RA_ERR_BAD_CONFIG when pol is not a metats arm or q's model (dims, v, sigma0) differs. */
ra_err_t ra_metats_arm_draw (ra_policy_t *pol, const ra_metats_prior_t *q, ra_error_t *err);
/* Folds what the arm saw on its task (G, B) into q (MT2, MT3); same checks as _draw. */
ra_err_t ra_metats_arm_fold (const ra_policy_t *pol, ra_metats_prior_t *q, ra_error_t *err);
/* The arm's current prior mean mu~ (D doubles), or NULL when pol is not a metats arm. */
const double *ra_metats_arm_prior_mean (const ra_policy_t *pol);

#endif
