/*  env/core/dynamics.c - shared user dynamics (docs/sims/shared.md section 2). */
#include "env/core/dynamics.h"

#include <assert.h>
#include <math.h>

static float s_clamp01 (float x)
{
  return x < 0 ? 0.0f : x > 1 ? 1.0f : x;
}

void ra_dynamics_drift (float *theta, const float *x, float rate, float engagement, int dim)
{
  float a = s_clamp01 (rate * engagement);   /* 2.1 */
  if (a > 0)
    ra_users_drift (theta, x, a, dim);
}

void ra_boredom_init (ra_boredom_t *b, double rise, double decay, int timeout, double weight)
{
  assert (rise >= 0 && rise <= 1 && decay > 0 && decay <= 1 && timeout >= 1 && weight >= 0);
  b->rise = (float) rise;
  b->log_decay = (float) log (decay);
  b->timeout = timeout;
  b->weight = (float) weight;
}

void ra_boredom_reset (ra_boredom_topic_t *t, int n_topics)
{
  for (int i = 0; i < n_topics; i++)
    t[i] = (ra_boredom_topic_t) { 0.0f, -1 };
}

void ra_boredom_consume (const ra_boredom_t *b, ra_boredom_topic_t *t, int32_t now, float engagement)
{
  float l = ra_boredom_level (b, t, now);   /* 2.2 */
  t->level = l + b->rise * s_clamp01 (engagement) * (1.0f - l);
  t->last = now;
}

float ra_time_budget_draw (const ra_time_budget_t *p, ra_rng_t *rng)
{
  double s = p->spread;
  double x = p->mean * exp (s * ra_rng_normal (rng) - 0.5 * s * s);   /* 2.3 */
  double lo = 1e-3 * p->mean, hi = 100.0 * p->mean;
  return (float) (x < lo ? lo : x > hi ? hi : x);
}

bool ra_time_budget_spend (const ra_time_budget_t *p, float *budget, float spent, float satisfaction)
{
  assert (spent >= 0);
  *budget -= p->step_cost + spent - p->refund * spent * s_clamp01 (satisfaction);   /* 2.3 */
  return *budget <= 0;
}

float ra_return_mean_delay (const ra_return_t *p, float satisfaction)
{
  return p->delay_max - (p->delay_max - p->delay_min) * s_clamp01 (satisfaction);   /* 2.4 */
}

float ra_return_prob (const ra_return_t *p, float satisfaction)
{
  return 1.0f - p->churn_max * (1.0f - s_clamp01 (satisfaction));   /* 2.4 */
}

float ra_return_sample (const ra_return_t *p, float satisfaction, ra_rng_t *rng)
{
  float u = ra_rng_uniform (rng), w = ra_rng_uniform (rng);
  if (!(u < ra_return_prob (p, satisfaction)))
    return -1.0f;
  return -ra_return_mean_delay (p, satisfaction) * log1pf (-w);   /* Exponential(mu), w in [0, 1) */
}

void ra_dynamics_defaults (ra_dynamics_t *d)
{
  /* 2.5 library defaults */
  d->drift = true;
  d->boredom = false;
  ra_boredom_init (&d->bored, 0.3, 0.9, 10, 1.0);
  d->time_budget = false;
  d->budget = (ra_time_budget_t) { .mean = 20, .spread = 0.3f, .step_cost = 1, .refund = 0.5f };
  d->ret = false;
  d->ret_p = (ra_return_t) { .delay_min = 1, .delay_max = 10, .churn_max = 0.5f, .max_sessions = 3 };
}

ra_err_t ra_dynamics_from_config (ra_config_t *c, ra_dynamics_t *d, ra_error_t *err)
{
  ra_err_t rc;
  double rise, decay, weight, mean, spread, cost, refund, dmin, dmax, churn;
  int64_t timeout, sessions;
#define S_TRY(x)     \
  do {               \
    rc = (x);        \
    if (rc != RA_OK) \
      return rc;     \
  } while (0)
  bool drift, bored, budget, ret;
  S_TRY (ra_config_get_bool (c, "dynamics.drift", d->drift, &drift, err));
  S_TRY (ra_config_get_bool (c, "dynamics.boredom", d->boredom, &bored, err));
  S_TRY (ra_config_get_bool (c, "dynamics.time_budget", d->time_budget, &budget, err));
  S_TRY (ra_config_get_bool (c, "dynamics.return", d->ret, &ret, err));
  S_TRY (ra_config_get_num (c, "dynamics.boredom_rise", d->bored.rise, 0, 1, &rise, err));
  S_TRY (ra_config_get_num (c, "dynamics.boredom_decay", exp (d->bored.log_decay), 1e-6, 1, &decay, err));
  S_TRY (ra_config_get_int (c, "dynamics.boredom_timeout", d->bored.timeout, 1, 1000000, &timeout, err));
  S_TRY (ra_config_get_num (c, "dynamics.boredom_weight", d->bored.weight, 0, 100, &weight, err));
  S_TRY (ra_config_get_num (c, "dynamics.budget_mean", d->budget.mean, 1e-3, 1e6, &mean, err));
  S_TRY (ra_config_get_num (c, "dynamics.budget_spread", d->budget.spread, 0, 3, &spread, err));
  S_TRY (ra_config_get_num (c, "dynamics.budget_step_cost", d->budget.step_cost, 0, 1e6, &cost, err));
  S_TRY (ra_config_get_num (c, "dynamics.budget_refund", d->budget.refund, 0, 1, &refund, err));
  S_TRY (ra_config_get_num (c, "dynamics.return_delay_min", d->ret_p.delay_min, 0, 1e6, &dmin, err));
  S_TRY (ra_config_get_num (c, "dynamics.return_delay_max", d->ret_p.delay_max, 0, 1e6, &dmax, err));
  S_TRY (ra_config_get_num (c, "dynamics.return_churn_max", d->ret_p.churn_max, 0, 1, &churn, err));
  S_TRY (ra_config_get_int (c, "dynamics.return_max_sessions", d->ret_p.max_sessions, 1, 1000, &sessions, err));
#undef S_TRY
  if (dmax < dmin)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "dynamics.return_delay_max is %g, expected at least dynamics.return_delay_min (%g)",
                         dmax, dmin);
  if (cost <= 0 && budget)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "dynamics.budget_step_cost is %g with dynamics.time_budget on, expected > 0 "
                         "(every session must end)", cost);
  d->drift = drift;
  d->boredom = bored;
  d->time_budget = budget;
  d->ret = ret;
  ra_boredom_init (&d->bored, rise, decay, (int) timeout, weight);
  d->budget = (ra_time_budget_t) { (float) mean, (float) spread, (float) cost, (float) refund };
  d->ret_p = (ra_return_t) { (float) dmin, (float) dmax, (float) churn, (int32_t) sessions };
  return RA_OK;
}

int ra_dynamics_defaults_kv (const ra_dynamics_t *d, ra_kv_t *out, int cap)
{
  const ra_kv_t all[RA_DYNAMICS_N_KEYS] = {
    { .key = "dynamics.drift", .type = RA_KV_BOOL, .num = d->drift },
    { .key = "dynamics.boredom", .type = RA_KV_BOOL, .num = d->boredom },
    { .key = "dynamics.time_budget", .type = RA_KV_BOOL, .num = d->time_budget },
    { .key = "dynamics.return", .type = RA_KV_BOOL, .num = d->ret },
    { .key = "dynamics.boredom_rise", .type = RA_KV_NUM, .num = d->bored.rise },
    { .key = "dynamics.boredom_decay", .type = RA_KV_NUM, .num = exp (d->bored.log_decay) },
    { .key = "dynamics.boredom_timeout", .type = RA_KV_NUM, .num = d->bored.timeout },
    { .key = "dynamics.boredom_weight", .type = RA_KV_NUM, .num = d->bored.weight },
    { .key = "dynamics.budget_mean", .type = RA_KV_NUM, .num = d->budget.mean },
    { .key = "dynamics.budget_spread", .type = RA_KV_NUM, .num = d->budget.spread },
    { .key = "dynamics.budget_step_cost", .type = RA_KV_NUM, .num = d->budget.step_cost },
    { .key = "dynamics.budget_refund", .type = RA_KV_NUM, .num = d->budget.refund },
    { .key = "dynamics.return_delay_min", .type = RA_KV_NUM, .num = d->ret_p.delay_min },
    { .key = "dynamics.return_delay_max", .type = RA_KV_NUM, .num = d->ret_p.delay_max },
    { .key = "dynamics.return_churn_max", .type = RA_KV_NUM, .num = d->ret_p.churn_max },
    { .key = "dynamics.return_max_sessions", .type = RA_KV_NUM, .num = d->ret_p.max_sessions },
  };
  for (int i = 0; i < RA_DYNAMICS_N_KEYS && i < cap; i++)
    out[i] = all[i];
  return RA_DYNAMICS_N_KEYS;
}
