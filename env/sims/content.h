/*  env/sims/content.h - Content-v1: short videos with quality, clickbait and length; watch time
    spends a session time budget; a latent satisfaction that clickbait erodes and quality restores
    drives churn and the delay before the user returns, so one episode spans several sessions
    (docs/sims/content.md). The server only needs ra_content_class (through the registry); the view
    and the constants below exist so tests can hold the code to the documented equations.        */
#ifndef RA_ENV_SIMS_CONTENT_H
#define RA_ENV_SIMS_CONTENT_H

#include "env/core/catalog.h"
#include "env/core/choice.h"
#include "env/core/sim.h"
#include "env/core/users.h"

extern const ra_sim_class_t ra_content_class;

/* Constants of the equations (docs/sims/content.md, sections named). */
#define RA_CONTENT_CLICKBAIT_ATTRACTION 0.6f /* gamma_c, click utility (4.1) */
#define RA_CONTENT_WATCH_BIAS -1.0f          /* omega_0, watched fraction (5.1) */
#define RA_CONTENT_WATCH_AFFINITY 2.0f       /* omega_a (5.1) */
#define RA_CONTENT_WATCH_QUALITY 2.0f        /* omega_q (5.1) */
#define RA_CONTENT_WATCH_CLICKBAIT 3.0f      /* omega_c (5.1) */
#define RA_CONTENT_WATCH_SATISFACTION 1.0f   /* omega_s (5.1) */
#define RA_CONTENT_BROWSE_COST 1.0f          /* minutes every step costs on top of watching (5.2) */
#define RA_CONTENT_CHURN_BIAS -2.5f          /* rho_0, leave probability at session end (7.1) */
#define RA_CONTENT_DELAY_SLOPE 2.0f          /* mu_s, return delay mean (7.2) */
#define RA_CONTENT_LENGTH_MIN 0.25f          /* video lengths are clamped to [MIN, MAX] minutes (2.2) */
#define RA_CONTENT_LENGTH_MAX 60.0f
#define RA_CONTENT_BUDGET_MAX 600.0f         /* session time budgets are clamped to [1, MAX] minutes (3.2) */
#define RA_CONTENT_DELAY_NORM 168.0f         /* hours: the obs scale of the time away (9.1), the horizon's max */
#define RA_CONTENT_PATIENCE 3                /* slates in a row without a click that end a session when
                                                dynamics.time_budget is off (12.3) */

/* Task parameters, in the order describe_task lists them after "split" and "id". */
enum { RA_CONTENT_P_WORLD_SEED = 0, RA_CONTENT_P_TOPIC_SKEW, RA_CONTENT_P_ITEM_NOISE,
       RA_CONTENT_P_INTEREST_SPREAD, RA_CONTENT_P_OBS_NOISE, RA_CONTENT_P_TEMPERATURE,
       RA_CONTENT_P_NO_CLICK, RA_CONTENT_P_POSITION_BIAS, RA_CONTENT_P_DRIFT,
       RA_CONTENT_P_CLICKBAIT_PREVALENCE, RA_CONTENT_P_LENGTH_MEDIAN, RA_CONTENT_P_SAT_SENSITIVITY,
       RA_CONTENT_P_MEMORY, RA_CONTENT_P_TIME_BUDGET, RA_CONTENT_P_RETURN_DELAY,
       RA_CONTENT_P_RETURN_HORIZON, RA_CONTENT_P_CHURN_SENSITIVITY, RA_CONTENT_P_COUNT };

/* Per-user latent state beyond the interest vectors (section 3). */
typedef struct {
  int topic;                            /* the topic whose centre theta was drawn around */
  float exposure;                       /* E: net quality-minus-clickbait exposure (6.1) */
  float satisfaction;                   /* S = sigma(kappa E) in (0, 1) (6.2) */
  float budget0;                        /* this session's time budget T0 (minutes) */
  float budget;                         /* remaining time T (minutes), <= T0; the session ends at <= 0 */
  int session;                          /* sessions started before this one in the episode (0 first) */
  float time_away;                      /* hours away before this session (0 in the first) */
} ra_content_user_t;

/* A read-only look at env i's hidden state, valid until the next call that changes the sim. */
typedef struct {
  const ra_catalog_t *catalog;          /* topics and embeddings (catalog->feat rows start with x) */
  const float *clickbait;               /* n_items: c_j in [0, 1] */
  const float *quality;                 /* n_items: q_j in (0, 1) */
  const float *length;                  /* n_items: L_j in minutes */
  const ra_choice_t *choice;            /* the env's current click model */
  const double *params;                 /* RA_CONTENT_P_COUNT task values of the current episode */
  const ra_content_user_t *user;
  const float *theta;                   /* dim: latent interest */
  const float *theta_hat;               /* dim: public estimate */
  const int32_t *candidates;            /* K catalog ids of the current observation */
  int steps;                            /* steps taken in this episode */
} ra_content_view_t;

void ra_content_view (const ra_sim_t *sim, int env_index, ra_content_view_t *out);

#endif
