/*  env/core/reward.c - reward models (docs/sims/ecommerce.md section 7). */
#include "env/core/reward.h"

#include <stdio.h>

const char *const ra_metric_names[RA_METRIC_COUNT] = { "clicks", "purchases", "revenue", "margin" };
const char *const ra_reward_names[RA_REWARD_COUNT] = { "revenue", "clicks", "purchases", "margin",
                                                       "weighted" };

ra_err_t ra_reward_from_config (ra_config_t *c, ra_reward_t *out, ra_error_t *err)
{
  int kind;
  ra_err_t rc = ra_config_get_enum (c, "reward", RA_REWARD_REVENUE, ra_reward_names, RA_REWARD_COUNT,
                                    &kind, err);
  if (rc != RA_OK)
    return rc;
  double w[RA_METRIC_COUNT];
  for (int m = 0; m < RA_METRIC_COUNT; m++) {
    char key[64];
    snprintf (key, sizeof key, "reward_weights.%s", ra_metric_names[m]);
    rc = ra_config_get_num (c, key, m == RA_METRIC_REVENUE ? 1.0 : 0.0, -1e6, 1e6, &w[m], err);
    if (rc != RA_OK)
      return rc;
  }
  out->kind = (ra_reward_kind_t) kind;
  for (int m = 0; m < RA_METRIC_COUNT; m++) {
    /* 7.1 named kinds are one-hot weights: revenue, clicks, purchases, margin */
    static const ra_metric_t named[RA_REWARD_COUNT] = { RA_METRIC_REVENUE, RA_METRIC_CLICKS,
                                                        RA_METRIC_PURCHASES, RA_METRIC_MARGIN, 0 };
    if (kind == RA_REWARD_WEIGHTED)
      out->w[m] = (float) w[m];
    else
      out->w[m] = named[kind] == (ra_metric_t) m ? 1.0f : 0.0f;
  }
  return RA_OK;
}

void ra_event_totals (const ra_event_t *e, float *total)
{
  for (int m = 0; m < RA_METRIC_COUNT; m++)
    total[m] = 0;
  for (int r = 0; r < e->k; r++) {
    total[RA_METRIC_CLICKS] += e->clicked[r];
    total[RA_METRIC_PURCHASES] += e->purchased[r];
    total[RA_METRIC_REVENUE] += e->revenue[r];
    total[RA_METRIC_MARGIN] += e->margin[r];
  }
}

void ra_reward_range (const ra_reward_t *r, const double *metric_max, double range[2])
{
  range[0] = range[1] = 0;
  for (int m = 0; m < RA_METRIC_COUNT; m++) {
    double v = r->w[m] * metric_max[m];
    if (v < 0)
      range[0] += v;
    else
      range[1] += v;
  }
}
