/*  env/sims/ecommerce.h - ECommerce-v1: impression -> click -> purchase with budgets
    (docs/sims/ecommerce.md). The server only needs ra_ecommerce_class (through the registry);
    the view and the constants below exist so tests can hold the code to the documented equations.  */
#ifndef RA_ENV_SIMS_ECOMMERCE_H
#define RA_ENV_SIMS_ECOMMERCE_H

#include "env/core/catalog.h"
#include "env/core/choice.h"
#include "env/core/dynamics.h"
#include "env/core/sim.h"
#include "env/core/users.h"

extern const ra_sim_class_t ra_ecommerce_class;

/* Constants of the equations (docs/sims/ecommerce.md, sections named). */
#define RA_ECOM_QUALITY_WEIGHT 0.5f   /* gamma_q, click utility (4.1) */
#define RA_ECOM_BUY_BIAS -1.0f        /* beta_0, purchase logistic (5.1) */
#define RA_ECOM_BUY_AFFINITY 3.0f     /* beta_a (5.1) */
#define RA_ECOM_BUY_QUALITY 1.0f      /* beta_q (5.1) */
#define RA_ECOM_CLICK_PATIENCE 0.25f  /* patience cost of a step with a click (3.2); 1 without */
#define RA_ECOM_SAT_RATE 0.2f         /* a, satisfaction moving average per step (3.5) */
#define RA_ECOM_SAT_START 0.5f        /* satisfaction at episode start (3.5) */

/* Task parameters, in the order describe_task lists them after "split" and "id". */
enum { RA_ECOM_P_WORLD_SEED = 0, RA_ECOM_P_TOPIC_SKEW, RA_ECOM_P_ITEM_NOISE, RA_ECOM_P_PRICE_MEDIAN,
       RA_ECOM_P_INTEREST_SPREAD, RA_ECOM_P_OBS_NOISE, RA_ECOM_P_TEMPERATURE, RA_ECOM_P_NO_CLICK,
       RA_ECOM_P_POSITION_BIAS, RA_ECOM_P_PRICE_SENSITIVITY, RA_ECOM_P_DRIFT, RA_ECOM_P_BUDGET_MEAN,
       RA_ECOM_P_PATIENCE_MEAN, RA_ECOM_P_COUNT };

/* A read-only look at env i's hidden state, valid until the next call that changes the sim. */
typedef struct {
  const ra_catalog_t *catalog;          /* the env's current world */
  const ra_choice_t *choice;            /* the env's current click model */
  const double *params;                 /* RA_ECOM_P_COUNT task values of the current episode */
  const ra_user_t *user;
  const float *theta;                   /* dim: latent interest */
  const float *theta_hat;               /* dim: public estimate */
  const int32_t *candidates;            /* K catalog ids of the current observation */
  int steps;                            /* steps taken in this episode */
  const ra_dynamics_t *dynamics;        /* the switches and parameters of section 3.4 */
  int session;                          /* sessions begun this episode before the current one */
  float satisfaction;                   /* S in [0, 1] (3.5) */
  float time_budget;                    /* B, the shared time budget (dynamics.time_budget on) */
  int32_t clock;                        /* time units since the episode began (steps + return delays) */
  const ra_boredom_topic_t *boredom;    /* n_topics boredom states, NULL when dynamics.boredom is off */
} ra_ecommerce_view_t;

void ra_ecommerce_view (const ra_sim_t *sim, int env_index, ra_ecommerce_view_t *out);

#endif
