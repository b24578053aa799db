/*  env/sims/news.h - News-v1: a publish stream of articles that age and expire, breaking-news
    bursts, topic satiation, several clicks per slate with dwell time (docs/sims/news.md).
    The server only needs ra_news_class (through the registry); the view and the constants below
    exist so tests can hold the code to the documented equations.                               */
#ifndef RA_ENV_SIMS_NEWS_H
#define RA_ENV_SIMS_NEWS_H

#include <stdbool.h>
#include <stdint.h>

#include "env/core/catalog.h"
#include "env/core/choice.h"
#include "env/core/dynamics.h"
#include "env/core/sim.h"
#include "env/core/users.h"

extern const ra_sim_class_t ra_news_class;

/* Constants of the equations (docs/sims/news.md, sections named). */
#define RA_NEWS_QUALITY_WEIGHT 0.5f     /* gamma_q, click utility (4.1) */
#define RA_NEWS_BURST_BONUS 0.5f        /* gamma_b, utility of a breaking article (4.1) */
#define RA_NEWS_SATIATION_WEIGHT 2.0f   /* gamma_s, utility lost at full satiation (4.1) */
#define RA_NEWS_SATIATION_TIMEOUT 50    /* steps without a click on a topic that clear its satiation (4.2) */
#define RA_NEWS_BURST_SHARE 0.5         /* share of a burst round's articles forced onto the burst topic (2.2) */
#define RA_NEWS_BURST_MIN_LEN 2         /* a burst lasts U{MIN..MAX} publish rounds (2.2) */
#define RA_NEWS_BURST_MAX_LEN 5
#define RA_NEWS_QHAT_NOISE 0.1f         /* sd of the public quality estimate's noise (2.3) */
#define RA_NEWS_DWELL_AFFINITY 1.0f     /* beta_a, log-dwell slope in affinity (5.1) */
#define RA_NEWS_DWELL_QUALITY 1.0f      /* beta_q, log-dwell slope in quality (5.1) */
#define RA_NEWS_DWELL_SIGMA 0.5f        /* sigma_w, log-normal spread of dwell (5.1) */
#define RA_NEWS_DWELL_MAX 30.0f         /* dwell is clamped to [0, MAX] minutes (5.1) */
#define RA_NEWS_STEP_COST 0.5f          /* minutes a step costs before any dwell (6.1) */
#define RA_NEWS_CLICK_DECAY 0.8f        /* decay of the public per-topic click counter h (7.1) */

/* Task parameters, in the order describe_task lists them after "split" and "id". */
enum { RA_NEWS_P_WORLD_SEED = 0, RA_NEWS_P_TOPIC_CONCENTRATION, RA_NEWS_P_ITEM_NOISE,
       RA_NEWS_P_INTEREST_SPREAD, RA_NEWS_P_OBS_NOISE, RA_NEWS_P_TEMPERATURE, RA_NEWS_P_NO_CLICK,
       RA_NEWS_P_POSITION_BIAS, RA_NEWS_P_HALF_LIFE, RA_NEWS_P_BURST_RATE, RA_NEWS_P_SATIATION_RATE,
       RA_NEWS_P_SATIATION_RECOVERY, RA_NEWS_P_DWELL_SCALE, RA_NEWS_P_TIME_BUDGET,
       RA_NEWS_P_PATIENCE_MEAN, RA_NEWS_P_COUNT };

/* A read-only look at env i's hidden state, valid until the next call that changes the sim.
   Articles live in a ring of `capacity` slots; per-slot arrays are indexed by ring position. */
typedef struct {
  const ra_catalog_t *world;            /* topic centres and popularity (only those are used) */
  const ra_choice_t *choice;            /* the env's current click model */
  const double *params;                 /* RA_NEWS_P_COUNT task values of the current episode */
  const ra_user_t *user;                /* budget = time left (minutes), patience = P0 */
  const float *theta;                   /* dim: latent interest */
  const float *theta_hat;               /* dim: public estimate */
  const ra_boredom_t *satiation_model;  /* 4.2 the shared boredom model; time = `now` below */
  const ra_boredom_topic_t *satiation;  /* n_topics: level at the last click on the topic, and when */
  const float *topic_clicks;            /* n_topics: public decayed click counter h_t >= 0 */
  int capacity, dim, n_topics;
  const float *art_x;                   /* capacity x dim: unit article embeddings */
  const float *art_quality;             /* capacity: true quality q */
  const float *art_qhat;                /* capacity: public estimate */
  const uint8_t *art_topic;             /* capacity (num_topics <= 256) */
  const uint32_t *art_birth;            /* capacity: the clock at publication; age = clock - birth */
  const int32_t *art_serial;            /* capacity: publish order in the stream (the info item id) */
  const uint8_t *art_burst;             /* capacity: 1 when published during a burst on its topic */
  const uint16_t *candidates;           /* K ring positions of the current observation */
  uint32_t clock;                       /* publish rounds since the stream started */
  int64_t published;                    /* articles published since the stream started */
  int burst_topic;                      /* -1 when no burst runs */
  int burst_left;                       /* publish rounds the burst still covers */
  int streak;                           /* consecutive steps without a click */
  int steps;                            /* steps taken in this episode */
  int now;                              /* the satiation clock: steps + steps spent away (11.4) */
  int session;                          /* sessions before this one in the episode (11.4) */
  float satisfaction;                   /* S of 11.4 (1/2 unless dynamics.return is on) */
} ra_news_view_t;

void ra_news_view (const ra_sim_t *sim, int env_index, ra_news_view_t *out);

#endif
