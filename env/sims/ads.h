/*  env/sims/ads.h - Ads-v1: ad slots with position bias, advertisers with bids and budgets,
    click -> conversion, and user annoyance (docs/sims/ads.md). The server only needs
    ra_ads_class (through the registry); the view and the constants below exist so tests can hold
    the code to the documented equations.                                                         */
#ifndef RA_ENV_SIMS_ADS_H
#define RA_ENV_SIMS_ADS_H

#include "env/core/catalog.h"
#include "env/core/choice.h"
#include "env/core/dynamics.h"
#include "env/core/sim.h"

extern const ra_sim_class_t ra_ads_class;

/* Constants of the equations (docs/sims/ads.md, sections named). */
#define RA_ADS_QUALITY_WEIGHT 0.5f    /* gamma_q, click utility (4.1) */
#define RA_ADS_ANNOY_PENALTY 0.3f     /* kappa, utility lost per unit of annoyance (4.1) */
#define RA_ADS_RELEVANCE 0.3f         /* rho, an ad with affinity below it is irrelevant (6.1) */
#define RA_ADS_ANNOY_DECAY 0.1f       /* delta, annoyance decay per step (6.1) */
#define RA_ADS_ANNOY_MAX 10.0f        /* annoyance is clamped to [0, MAX] (6.1) */
#define RA_ADS_LEAVE_BIAS -4.0f       /* l_0, leave logistic (6.2) */
#define RA_ADS_CONV_BIAS -2.0f        /* c_0, conversion logistic (5.1) */
#define RA_ADS_CONV_AFFINITY 2.0f     /* c_a (5.1) */
#define RA_ADS_CONV_QUALITY 1.0f      /* c_q (5.1) */
#define RA_ADS_BID_MIN 0.01           /* bids are clamped to [MIN, MAX] (money per click, 2.2) */
#define RA_ADS_BID_MAX 100.0
#define RA_ADS_MAX_STEPS 100          /* default truncation (7.1) */
#define RA_ADS_DRIFT_RATE 0.1f        /* alpha_d, interest drift per click with dynamics.drift on (6.3) */
#define RA_ADS_SAT_RATE 0.2f          /* a, satisfaction moving average per step (6.3) */
#define RA_ADS_SAT_START 0.5f         /* satisfaction at episode start (6.3) */

/* Task parameters, in the order describe_task lists them after "split" and "id". */
enum { RA_ADS_P_WORLD_SEED = 0, RA_ADS_P_TOPIC_SKEW, RA_ADS_P_ITEM_NOISE, RA_ADS_P_INTEREST_SPREAD,
       RA_ADS_P_OBS_NOISE, RA_ADS_P_TEMPERATURE, RA_ADS_P_NO_CLICK, RA_ADS_P_POSITION_BIAS,
       RA_ADS_P_ANNOYANCE_RATE, RA_ADS_P_LEAVE_SENSITIVITY, RA_ADS_P_BUDGET_SCALE, RA_ADS_P_BID_SPREAD,
       RA_ADS_P_COUNT };

/* Metrics of the event record, in the order of the weighted reward's weights (section 8). */
enum { RA_ADS_M_CLICKS = 0, RA_ADS_M_CONVERSIONS, RA_ADS_M_REVENUE, RA_ADS_M_COUNT };

/* A read-only look at env i's hidden state, valid until the next call that changes the sim. */
typedef struct {
  const ra_catalog_t *catalog;          /* the env's current world: ads are its items */
  const ra_choice_t *choice;            /* the env's current click model */
  const double *params;                 /* RA_ADS_P_COUNT task values of the current episode */
  int n_advertisers;
  const int32_t *owner;                 /* n_items: advertiser of each ad */
  const float *bid;                     /* n_advertisers: bid per click (money) */
  const float *budget0;                 /* n_advertisers: budget at episode start (money) */
  const float *budget;                  /* n_advertisers: remaining budget, in [0, budget0] */
  const float *theta;                   /* dim: latent interest */
  const float *theta_hat;               /* dim: public estimate */
  const int32_t *candidates;            /* K catalog ids of the current observation */
  float annoyance;                      /* A in [0, RA_ADS_ANNOY_MAX] */
  int steps;                            /* steps taken in this episode */
  const ra_dynamics_t *dynamics;        /* the switches and parameters of section 6.3 */
  int session;                          /* sessions begun this episode before the current one */
  float satisfaction;                   /* S in [0, 1] (6.3) */
  float time_budget;                    /* B, the shared time budget (dynamics.time_budget on) */
  int32_t clock;                        /* time units since the episode began (steps + return delays) */
  const ra_boredom_topic_t *boredom;    /* n_topics boredom states, NULL when dynamics.boredom is off */
} ra_ads_view_t;

void ra_ads_view (const ra_sim_t *sim, int env_index, ra_ads_view_t *out);

#endif
