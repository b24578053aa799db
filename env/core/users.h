/*  env/core/users.h - users of one population: latent interest, budget, price sensitivity and
    patience, interest drift (docs/sims/ecommerce.md section 3), and a task's hidden tastes
    (docs/sims/shared.md section 4).

    A ra_user_t is caller-owned (one per env); its interest vectors live in caller-owned arrays
    of dim floats. Pure functions of their inputs and one RNG; no allocation; thread-safe on
    distinct users.                                                                              */
#ifndef RA_ENV_CORE_USERS_H
#define RA_ENV_CORE_USERS_H

#include "common/rng.h"
#include "env/core/catalog.h"

#define RA_USER_BUDGET_MAX 1.0e6    /* budgets are clamped to [1, MAX] (price units) */
#define RA_USER_PATIENCE_MAX 1000.0
#define RA_USERS_TOPICS_MAX 1024    /* the most topics a sim's catalog may have */

/* A user population (the task parameters that shape users). */
typedef struct {
  double interest_spread;               /* norm scale of theta's noise around its topic centre */
  double obs_noise;                     /* norm scale of the public estimate's noise around theta */
  double budget_mean;                   /* mean budget (price units) */
  double price_sensitivity;             /* population mean of lambda_u */
  double patience_mean;                 /* median patience (steps without a click) */
  /* hidden tastes (shared.md 4): theta <- normalise(theta + s (c_pi(z) - c_z)) after the draw;
     s = 0 (what a zeroed pop holds) leaves theta as drawn */
  double hidden;                        /* s in [0, 1] */
  uint16_t taste_perm[RA_USERS_TOPICS_MAX]; /* pi: a user of topic z truly likes topic pi(z) */
} ra_user_pop_t;

typedef struct {
  int topic;                            /* the topic whose centre theta was drawn around */
  float budget0;                        /* budget at session start (price units) */
  float budget;                         /* remaining budget, in [0, budget0] */
  float price_sens;                     /* lambda_u > 0 */
  float patience;                       /* remaining patience; the session ends at <= 0 */
} ra_user_t;

/* Draws a user (section 3.1): topic z ~ popularity, theta = normalise(c_z + s/sqrt(d) n),
   theta_hat = normalise(theta + o/sqrt(d) n'), budget, lambda_u, patience; then, when
   pop->hidden > 0, hides theta's tastes from theta_hat (shared.md 4; no extra random draws).
   theta and theta_hat have c->dim floats. O(dim + n_topics). */
void ra_users_draw (const ra_user_pop_t *pop, const ra_catalog_t *c, ra_rng_t *rng, ra_user_t *u,
                    float *theta, float *theta_hat);

/* Sets pop's hidden tastes (shared.md 4): strength s in [0, 1] (0: off, and then nothing else is
   touched) and a uniformly random permutation pi of the n_topics <= RA_USERS_TOPICS_MAX topics
   of the catalog users will be drawn from, drawn from a stream keyed by key alone (a task's key:
   the same task, the same pi). O(n_topics). */
void ra_users_hide_tastes (ra_user_pop_t *pop, double s, uint64_t key, int n_topics);

/* Moves a taste vector v (c->dim floats) of a user drawn around topic z the way hidden tastes
   move theta (shared.md 4.1): v <- normalise(v + s (c_pi(z) - c_z)); nothing when pop->hidden
   is 0. ra_users_draw applies it to theta; a sim's reveal_tastes applies it to the observed
   theta_hat (shared.md 4.7). O(dim). */
void ra_users_reveal (const ra_user_pop_t *pop, const ra_catalog_t *c, int topic, float *v);

/* Interest drift toward a consumed item (section 3.3): v <- normalise((1 - a) v + a x). O(dim). */
void ra_users_drift (float *v, const float *x, float a, int dim);

/* Dot product of two dim-vectors: four interleaved float partial sums, combined in a fixed
   order, so the result is a deterministic function of the inputs. */
static inline float ra_users_dot (const float *a, const float *b, int dim)
{
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int i = 0;
  for (; i + 4 <= dim; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < dim; i++)
    s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

#endif
