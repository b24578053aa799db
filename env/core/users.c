/*  env/core/users.c - user draws and drift (docs/sims/ecommerce.md section 3) and hidden tastes
    (docs/sims/shared.md section 4). */
#include "env/core/users.h"

#include <assert.h>
#include <math.h>
#include <stddef.h>

static double s_clamp (double x, double lo, double hi)
{
  return x < lo ? lo : x > hi ? hi : x;
}

static void s_normalise (float *v, int dim)
{
  float s = 0;
  for (int i = 0; i < dim; i++)
    s += v[i] * v[i];
  if (s <= 0) {
    v[0] = 1;
    return;
  }
  float inv = 1.0f / sqrtf (s);
  for (int i = 0; i < dim; i++) {
    float x = v[i] * inv;   /* clamp: rounding never leaves [-1, 1] */
    v[i] = x > 1.0f ? 1.0f : x < -1.0f ? -1.0f : x;
  }
}

void ra_users_draw (const ra_user_pop_t *pop, const ra_catalog_t *c, ra_rng_t *rng, ra_user_t *u,
                    float *theta, float *theta_hat)
{
  const int d = c->dim;
  float sd = (float) (1.0 / sqrt ((double) d));
  /* 3.1 topic and interest */
  u->topic = ra_catalog_sample_topic (c, ra_rng_uniform_f64 (rng));
  const float *centre = c->centres + (size_t) u->topic * d;
  ra_rng_normals (rng, theta, d);
  float s = (float) pop->interest_spread * sd;
  for (int i = 0; i < d; i++)
    theta[i] = centre[i] + s * theta[i];
  s_normalise (theta, d);
  ra_rng_normals (rng, theta_hat, d);
  float o = (float) pop->obs_noise * sd;
  for (int i = 0; i < d; i++)
    theta_hat[i] = theta[i] + o * theta_hat[i];
  s_normalise (theta_hat, d);
  /* 3.1 budget B0 = mean * exp(0.5 z - 0.125) (a log-normal with mean `mean`),
     lambda_u = lambda * exp(0.3 z - 0.045), patience P0 = mean_P * exp(0.3 z) */
  u->budget0 = (float) s_clamp (ra_rng_lognormal (rng, log (pop->budget_mean) - 0.125, 0.5), 1.0,
                                RA_USER_BUDGET_MAX);
  u->budget = u->budget0;
  u->price_sens = (float) ra_rng_lognormal (rng, log (pop->price_sensitivity) - 0.045, 0.3);
  u->patience = (float) s_clamp (ra_rng_lognormal (rng, log (pop->patience_mean), 0.3), 1.0,
                                 RA_USER_PATIENCE_MAX);
  /* shared.md 4: the tastes the click model uses move from the topic theta_hat shows to the
     one the task's secret pi maps it to, keeping the user's own offset */
  ra_users_reveal (pop, c, u->topic, theta);
}

void ra_users_reveal (const ra_user_pop_t *pop, const ra_catalog_t *c, int topic, float *v)
{
  if (pop->hidden <= 0)
    return;
  assert (topic >= 0 && topic < RA_USERS_TOPICS_MAX);
  const int d = c->dim;
  const float *from = c->centres + (size_t) topic * d;
  const float *to = c->centres + (size_t) pop->taste_perm[topic] * d;
  float s = (float) pop->hidden;
  for (int i = 0; i < d; i++)
    v[i] += s * (to[i] - from[i]);
  s_normalise (v, d);
}

void ra_users_hide_tastes (ra_user_pop_t *pop, double s, uint64_t key, int n_topics)
{
  assert (s >= 0 && s <= 1 && n_topics >= 1 && n_topics <= RA_USERS_TOPICS_MAX);
  pop->hidden = s;
  if (s <= 0)
    return;
  /* shared.md 4: Fisher-Yates over the identity, from the task's own "tast" stream */
  ra_rng_t rng;
  ra_rng_seed (&rng, key, 0x74617374ULL);
  for (int i = 0; i < n_topics; i++)
    pop->taste_perm[i] = (uint16_t) i;
  for (int i = n_topics - 1; i > 0; i--) {
    int j = (int) ra_rng_below (&rng, (uint32_t) i + 1);
    uint16_t t = pop->taste_perm[i];
    pop->taste_perm[i] = pop->taste_perm[j];
    pop->taste_perm[j] = t;
  }
}

void ra_users_drift (float *v, const float *x, float a, int dim)
{
  float b = 1.0f - a;
  for (int i = 0; i < dim; i++)
    v[i] = b * v[i] + a * x[i];
  s_normalise (v, dim);
}
