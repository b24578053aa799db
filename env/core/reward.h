/*  env/core/reward.h - the per-step event record and the built-in reward models
    (docs/sims/ecommerce.md section 7).

    Every built-in model is a weighted sum of the step's metric totals (clicks, purchases,
    revenue, margin): "revenue" is weights (0, 0, 1, 0), "weighted" takes the weights from config
    keys reward_weights.<metric>. A ra_reward_t is plain data, read-only after config; thread-safe.  */
#ifndef RA_ENV_CORE_REWARD_H
#define RA_ENV_CORE_REWARD_H

#include <stdint.h>

#include "env/core/config.h"

#define RA_EVENT_MAX_SLATE 16

typedef enum { RA_METRIC_CLICKS = 0, RA_METRIC_PURCHASES, RA_METRIC_REVENUE, RA_METRIC_MARGIN,
               RA_METRIC_COUNT } ra_metric_t;

typedef enum { RA_REWARD_REVENUE = 0, RA_REWARD_CLICKS, RA_REWARD_PURCHASES, RA_REWARD_MARGIN,
               RA_REWARD_WEIGHTED, RA_REWARD_COUNT } ra_reward_kind_t;

/* Config names: metrics ("clicks", ...) and reward kinds ("revenue", ..., "weighted"). */
extern const char *const ra_metric_names[RA_METRIC_COUNT];
extern const char *const ra_reward_names[RA_REWARD_COUNT];

/* What happened to one slate, per slot (position = slot index + 1). */
typedef struct {
  int k;                                /* slate size */
  int32_t item[RA_EVENT_MAX_SLATE];     /* catalog item id */
  uint8_t clicked[RA_EVENT_MAX_SLATE];
  uint8_t purchased[RA_EVENT_MAX_SLATE];
  float revenue[RA_EVENT_MAX_SLATE];    /* price units */
  float margin[RA_EVENT_MAX_SLATE];     /* price units */
} ra_event_t;

typedef struct {
  ra_reward_kind_t kind;
  float w[RA_METRIC_COUNT];             /* reward = sum_m w[m] * total[m] */
} ra_reward_t;

/* Reads "reward" (default "revenue") and, when it is "weighted", reward_weights.<metric>
   (each in [-1e6, 1e6], default reward_weights.revenue = 1, others 0). reward_weights.* are
   validated but ignored for the other kinds. Bad values: RA_ERR_BAD_CONFIG naming the key. */
ra_err_t ra_reward_from_config (ra_config_t *c, ra_reward_t *out, ra_error_t *err);

/* Metric totals of an event: clicks, purchases, revenue, margin summed over slots. O(k). */
void ra_event_totals (const ra_event_t *e, float *total);

/* The reward of metric totals. */
static inline float ra_reward_eval (const ra_reward_t *r, const float *total)
{
  return r->w[0] * total[0] + r->w[1] * total[1] + r->w[2] * total[2] + r->w[3] * total[3];
}

/* Reward bounds given each metric's per-step bounds [0, max[m]]. */
void ra_reward_range (const ra_reward_t *r, const double *metric_max, double range[2]);

#endif
