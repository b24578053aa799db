/*  env/core/dynamics.h - shared user dynamics, each switchable by config in every sim
    (docs/sims/shared.md section 2):
      2.1 interest drift toward consumed items      ra_users_drift (users.h) and ra_dynamics_drift
      2.2 topic boredom with a timeout              ra_boredom_*
      2.3 patience / time budget                    ra_time_budget_*
      2.4 return between sessions                   ra_return_*
    Parameters are plain structs filled by ra_dynamics_from_config (config keys under
    "dynamics.", defaults supplied by the sim); per-user state lives in caller-owned memory
    (one ra_boredom_topic_t per topic per env, a float budget, a float satisfaction).
    No allocation; every call is O(1) (drift O(dim)) and a few ns; pure functions of their inputs
    and one RNG; thread-safe on distinct states.                                                   */
#ifndef RA_ENV_CORE_DYNAMICS_H
#define RA_ENV_CORE_DYNAMICS_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/rng.h"
#include "env/core/config.h"
#include "env/core/users.h"

/* ---- 2.1 interest drift ---- */

/* theta <- normalise((1 - a) theta + a x) with a = rate * engagement clamped to [0, 1];
   engagement in [0, 1] scales the pull (1 for a plain click, watch fraction for video, ...).
   rate 0 (or drift off) leaves theta unchanged. O(dim). */
void ra_dynamics_drift (float *theta, const float *x, float rate, float engagement, int dim);

/* ---- 2.2 topic boredom with a timeout ---- */

typedef struct {
  float rise;                           /* beta in (0, 1]: level += beta (1 - level) per consumption */
  float log_decay;                      /* ln(rho): level decays by rho in (0, 1] per time unit */
  int32_t timeout;                      /* T >= 1: T or more time units without the topic reset it to 0 */
  float weight;                         /* w >= 0: utility penalty w * level (scaled utility units) */
} ra_boredom_t;

/* Per user, per topic. */
typedef struct {
  float level;                          /* level at time `last`, in [0, 1) */
  int32_t last;                         /* time of the last consumption, -1 for never */
} ra_boredom_topic_t;

void ra_boredom_init (ra_boredom_t *b, double rise, double decay, int timeout, double weight);

/* Every topic to level 0, never consumed. O(n_topics). */
void ra_boredom_reset (ra_boredom_topic_t *t, int n_topics);

/* 2.2 level at time now >= t->last: 0 if never consumed or now - last >= timeout, else
   level rho^(now - last). */
static inline float ra_boredom_level (const ra_boredom_t *b, const ra_boredom_topic_t *t, int32_t now)
{
  int32_t dt = now - t->last;
  if (t->last < 0 || dt >= b->timeout)
    return 0.0f;
  return t->level * expf (b->log_decay * (float) dt);
}

/* Utility penalty w * level to subtract from the topic's scaled utility at time now. */
static inline float ra_boredom_penalty (const ra_boredom_t *b, const ra_boredom_topic_t *t, int32_t now)
{
  return b->weight * ra_boredom_level (b, t, now);
}

/* The user consumed the topic at time now (with engagement e in [0, 1], 1 for a plain click):
   level <- L + beta e (1 - L), L = ra_boredom_level (now); last <- now. */
void ra_boredom_consume (const ra_boredom_t *b, ra_boredom_topic_t *t, int32_t now, float engagement);

/* ---- 2.3 patience / time budget ---- */

typedef struct {
  float mean;                           /* mean initial budget (time units, e.g. steps or minutes) */
  float spread;                         /* sigma of the log-normal draw around mean, >= 0 */
  float step_cost;                      /* c_s >= 0: cost of every step (browsing a slate) */
  float refund;                         /* rho_b in [0, 1]: fraction of consumed time refunded when satisfied */
} ra_time_budget_t;

/* Initial budget: mean exp(spread N - spread^2 / 2) (log-normal with that mean), clamped to
   [1e-3 mean, 100 mean]. One normal draw. */
float ra_time_budget_draw (const ra_time_budget_t *p, ra_rng_t *rng);

/* 2.3 one step: budget <- budget - c_s - spent + rho_b spent clamp(satisfaction, 0, 1), where
   spent >= 0 is the time consumed this step (dwell, watch time; 0 for none). Returns true when
   the budget is exhausted (<= 0): the session ends. */
bool ra_time_budget_spend (const ra_time_budget_t *p, float *budget, float spent, float satisfaction);

/* ---- 2.4 return between sessions ---- */

typedef struct {
  float delay_min;                      /* mean delay (time units) of a fully satisfied user */
  float delay_max;                      /* mean delay of a fully unsatisfied user, >= delay_min */
  float churn_max;                      /* P(never return) of a fully unsatisfied user, in [0, 1] */
  int32_t max_sessions;                 /* sessions per episode (>= 1; 1: no return) */
} ra_return_t;

/* Mean delay mu(s) = delay_max - (delay_max - delay_min) s, s = satisfaction clamped to [0, 1]. */
float ra_return_mean_delay (const ra_return_t *p, float satisfaction);

/* P(return) = 1 - churn_max (1 - s). */
float ra_return_prob (const ra_return_t *p, float satisfaction);

/* 2.4 at session end: with probability 1 - P(return) the user churns (returns -1, the episode
   ends); else returns the delay ~ Exponential(mean mu(s)), >= 0. Two uniform draws. */
float ra_return_sample (const ra_return_t *p, float satisfaction, ra_rng_t *rng);

/* Satisfaction as an exponential moving average: s <- (1 - a) s + a x, x and s in [0, 1]. */
static inline float ra_satisfaction_update (float s, float x, float a)
{
  return (1.0f - a) * s + a * x;
}

/* ---- 2.5 config ---- */

typedef struct {
  bool drift;                           /* dynamics.drift */
  bool boredom;                         /* dynamics.boredom */
  ra_boredom_t bored;                   /* dynamics.boredom_{rise,decay,timeout,weight} */
  bool time_budget;                     /* dynamics.time_budget */
  ra_time_budget_t budget;              /* dynamics.budget_{mean,spread,step_cost,refund} */
  bool ret;                             /* dynamics.return */
  ra_return_t ret_p;                    /* dynamics.return_{delay_min,delay_max,churn_max,max_sessions} */
} ra_dynamics_t;

/* The library defaults (shared.md 2.5); a sim copies them and changes what it wants before
   calling ra_dynamics_from_config. */
void ra_dynamics_defaults (ra_dynamics_t *d);

/* Reads every dynamics.* key (shared.md 2.5); an absent key keeps the value in *d (the sim's
   defaults). Bad values: RA_ERR_BAD_CONFIG naming the key and the range. */
ra_err_t ra_dynamics_from_config (ra_config_t *c, ra_dynamics_t *d, ra_error_t *err);

/* The keys ra_dynamics_from_config reads, for a sim's unknown-key message. */
#define RA_DYNAMICS_KNOWN_KEYS                                                                     \
  "dynamics.{drift,boredom,time_budget,return}, dynamics.boredom_{rise,decay,timeout,weight}, "     \
  "dynamics.budget_{mean,spread,step_cost,refund}, "                                               \
  "dynamics.return_{delay_min,delay_max,churn_max,max_sessions}"

/* Writes the dynamics.* entries of d (key and value) into out[0..cap) for a sim's
   config_defaults list; returns how many it wanted (RA_DYNAMICS_N_KEYS). Keys are static strings. */
#define RA_DYNAMICS_N_KEYS 16
int ra_dynamics_defaults_kv (const ra_dynamics_t *d, ra_kv_t *out, int cap);

#endif
