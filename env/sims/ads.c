/*  env/sims/ads.c - Ads-v1 (docs/sims/ads.md): each step the platform retrieves K candidate ads
    for a user, the agent fills k ad slots, the user clicks (position-based by default: examination
    (1/r)^eta times attraction), may convert after a click (logistic in affinity and quality), and
    the ad's advertiser pays its bid per click while its budget lasts. Irrelevant ads annoy the
    user: annoyance lowers later attraction and raises the chance that the user leaves, which ends
    the episode.

    Owns: one ra_sim_t per batch with everything allocated at create: per-env state (struct array
    plus pools for interests, candidate ids and advertiser budgets) and task_slots worlds (catalog
    of ads, advertisers with bids and budgets), one per distinct task in the batch (envs with the
    same task share it). reset and step allocate nothing.
    Threading: reset/step on disjoint [i0, i1) ranges may run concurrently (they touch only those
    envs' state and read the slots); create, destroy and set_task need exclusive access.          */
#include "env/sims/ads.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "env/core/config.h"
#include "env/core/reward.h"
#include "env/core/render.h"
#include "env/core/task.h"
#include "env/core/worlds.h"
#include "env/core/users.h"

#define S_SIM_KEY 0x4164732d76310000ULL   /* "Ads-v1": keys task draws */
#define S_ADV_STREAM 0x616476ULL          /* "adv": the advertisers' stream of a world */
#define S_MAX_SLATE RA_CHOICE_MAX_SLATE
#define S_MAX_K RA_CHOICE_MAX_CANDIDATES
#define S_MAX_STEPS RA_ADS_MAX_STEPS
#define S_MAX_ADVERTISERS 4096
#define S_WORLD_BYTES_MAX ((size_t) 1 << 30)

/* ---- task parameters (section 9) ---- */

static const ra_task_param_def_t s_params[RA_ADS_P_COUNT] = {
  /* name                  train lo, hi    ood lo, hi    log    int    override min, max */
  { "world_seed",          0, 2147483647.0, 0, 2147483647.0, false, true, 0, 9007199254740992.0 },
  { "topic_skew",          0.5, 1.5,       1.8, 2.5,     false, false, 0, 5 },
  { "item_noise",          0.4, 0.8,       0.9, 1.2,     false, false, 0, 5 },
  { "interest_spread",     0.4, 0.8,       1.0, 1.4,     false, false, 0, 5 },
  { "obs_noise",           0.2, 0.4,       0.6, 0.9,     false, false, 0, 5 },
  { "choice_temperature",  0.2, 0.35,      0.35, 0.6,    false, false, 0.05, 5 },
  { "no_click_utility",    0.8, 1.2,       1.3, 1.6,     false, false, -3, 3 },
  { "position_bias",       0.5, 1.5,       1.8, 2.5,     false, false, 0, 5 },
  { "annoyance_rate",      0.1, 0.3,       0.4, 0.6,     false, false, 0, 5 },
  { "leave_sensitivity",   0.3, 0.7,       0.8, 1.2,     false, false, 0, 10 },
  { "budget_scale",        4, 10,          1.5, 3,       true,  false, 0.01, 10000 },
  { "bid_spread",          0.3, 0.8,       1.0, 1.4,     false, false, 0, 3 },
};

static const double s_default_task[RA_ADS_P_COUNT] = {
  4321, 1.0, 0.6, 0.6, 0.3, 0.25, 1.0, 1.0, 0.2, 0.5, 6.0, 0.6,
};

/* ---- config (every key with its default, for the server's "list") ---- */

/* the default click model (4.2): examination (1/r)^eta times attraction, independent clicks */
#define S_CHOICE_DEFAULT RA_CHOICE_POSITION_BASED
#define S_CHOICE_DEFAULT_NAME "position_based"

static const ra_kv_t s_config_defaults[] = {
  { .key = "num_candidates", .type = RA_KV_NUM, .num = 20 },
  { .key = "slate_size", .type = RA_KV_NUM, .num = 3 },
  { .key = "embedding_dim", .type = RA_KV_NUM, .num = 16 },
  { .key = "num_items", .type = RA_KV_NUM, .num = 1000 },
  { .key = "num_topics", .type = RA_KV_NUM, .num = 10 },
  { .key = "num_advertisers", .type = RA_KV_NUM, .num = 50 },
  { .key = "retrieval_mix", .type = RA_KV_NUM, .num = 0.5 },
  { .key = "choice_model", .type = RA_KV_STR, .str = S_CHOICE_DEFAULT_NAME },
  { .key = "cascade_continue", .type = RA_KV_NUM, .num = RA_CHOICE_CONTINUE_DEFAULT },
  { .key = "reward", .type = RA_KV_STR, .str = "revenue" },
  { .key = "reward_weights.clicks", .type = RA_KV_NUM, .num = 0 },
  { .key = "reward_weights.conversions", .type = RA_KV_NUM, .num = 0 },
  { .key = "reward_weights.revenue", .type = RA_KV_NUM, .num = 1 },
  { .key = "oracle", .type = RA_KV_BOOL, .num = 0 },
  { .key = "task_slots", .type = RA_KV_NUM, .num = 16 },
  { .key = "hidden_tastes", .type = RA_KV_NUM, .num = 0 },   /* docs/sims/shared.md 4 */
  { .key = "reveal_tastes", .type = RA_KV_BOOL, .num = 0 },  /* docs/sims/shared.md 4.7 */
  { .key = "position_bias", .type = RA_KV_NUM, .num = 1.0 },
  { .key = "choice_temperature", .type = RA_KV_NUM, .num = 0.25 },
  { .key = "no_click_utility", .type = RA_KV_NUM, .num = 1.0 },
  { .key = "annoyance_rate", .type = RA_KV_NUM, .num = 0.2 },
  { .key = "leave_sensitivity", .type = RA_KV_NUM, .num = 0.5 },
  { .key = "budget_scale", .type = RA_KV_NUM, .num = 6.0 },
  { .key = "bid_spread", .type = RA_KV_NUM, .num = 0.6 },
  /* section 6.3: ra_dynamics_defaults (shared.md 2.5) with drift off; s_dynamics_defaults must agree */
  { .key = "dynamics.drift", .type = RA_KV_BOOL, .num = 0 },
  { .key = "dynamics.boredom", .type = RA_KV_BOOL, .num = 0 },
  { .key = "dynamics.time_budget", .type = RA_KV_BOOL, .num = 0 },
  { .key = "dynamics.return", .type = RA_KV_BOOL, .num = 0 },
  { .key = "dynamics.boredom_rise", .type = RA_KV_NUM, .num = 0.3 },
  { .key = "dynamics.boredom_decay", .type = RA_KV_NUM, .num = 0.9 },
  { .key = "dynamics.boredom_timeout", .type = RA_KV_NUM, .num = 10 },
  { .key = "dynamics.boredom_weight", .type = RA_KV_NUM, .num = 1.0 },
  { .key = "dynamics.budget_mean", .type = RA_KV_NUM, .num = 20 },
  { .key = "dynamics.budget_spread", .type = RA_KV_NUM, .num = 0.3 },
  { .key = "dynamics.budget_step_cost", .type = RA_KV_NUM, .num = 1 },
  { .key = "dynamics.budget_refund", .type = RA_KV_NUM, .num = 0.5 },
  { .key = "dynamics.return_delay_min", .type = RA_KV_NUM, .num = 1 },
  { .key = "dynamics.return_delay_max", .type = RA_KV_NUM, .num = 10 },
  { .key = "dynamics.return_churn_max", .type = RA_KV_NUM, .num = 0.5 },
  { .key = "dynamics.return_max_sessions", .type = RA_KV_NUM, .num = 3 },
};
#define S_N_CONFIG ((int) (sizeof s_config_defaults / sizeof s_config_defaults[0]))

static const char s_known_keys[] =
    "num_candidates, slate_size, embedding_dim, num_items, num_topics, num_advertisers, retrieval_mix, "
    "choice_model, cascade_continue, reward, reward_weights.{clicks,conversions,revenue}, reward_plugin.<key>, oracle, task_slots, hidden_tastes, reveal_tastes, position_bias, "
    "choice_temperature, no_click_utility, annoyance_rate, leave_sensitivity, budget_scale, bid_spread, "
    RA_DYNAMICS_KNOWN_KEYS;

/* Config keys that set the default task's parameter of the same name (section 9.3). */
static const int s_config_task_keys[] = { RA_ADS_P_POSITION_BIAS, RA_ADS_P_TEMPERATURE, RA_ADS_P_NO_CLICK,
                                          RA_ADS_P_ANNOYANCE_RATE, RA_ADS_P_LEAVE_SENSITIVITY,
                                          RA_ADS_P_BUDGET_SCALE, RA_ADS_P_BID_SPREAD };

/* ---- rewards (section 8): env/core/reward.h's metrics are e-commerce's, so Ads-v1 keeps its own
   three (clicks, conversions, revenue) with the same weighted-sum shape ---- */

enum { S_REWARD_REVENUE = 0, S_REWARD_CLICKS, S_REWARD_CONVERSIONS, S_REWARD_WEIGHTED, S_REWARD_COUNT };
static const char *const s_reward_names[S_REWARD_COUNT] = { "revenue", "clicks", "conversions", "weighted" };
static const char *const s_metric_names[RA_ADS_M_COUNT] = { "clicks", "conversions", "revenue" };

/* ---- state ---- */

enum { S_OBS_USER = 0, S_OBS_CANDIDATES, S_OBS_RESPONSE, S_OBS_ITEM_IDS, S_N_OBS };
enum { S_INFO_ITEM = 0, S_INFO_CLICKED, S_INFO_CONVERTED, S_INFO_REVENUE, S_INFO_ANNOYANCE, S_INFO_LEFT,
       S_INFO_ORACLE_REWARD, S_INFO_REGRET, S_INFO_ORACLE_SLATE, S_N_INFO_MAX };
/* with dynamics.return on, "returned" and "session" follow the fields above (s->fi_returned) */
#define S_USER_EXTRA 4   /* step fraction, click rate, exhausted fraction, budget fraction (10.1) */
#define S_CAND_EXTRA 4   /* bid feature, budget fraction, clicks left, quality estimate (10.1) */

typedef struct {
  ra_catalog_t cat;                     /* the ads: topic, embedding, quality (price unused) */
  int32_t *owner;                       /* n_items: advertiser of each ad */
  float *bid;                           /* n_adv: bid per click */
  float *bid_feat;                      /* n_adv: public bid feature in [0, 1] (2.2) */
  float *budget0;                       /* n_adv: budget at episode start */
  float budget0_total;                  /* sum of budget0 */
  ra_user_pop_t pop;
  ra_choice_t choice;
  float exam[S_MAX_SLATE];              /* b_r = (1/r)^eta, for annoyance (6.1) */
  float inv_temp;                       /* 1 / choice_temperature */
  float annoy_rate;                     /* alpha */
  float leave_sens;                     /* lambda_l */
} s_slot_t;

typedef struct {
  ra_rng_t rng;
  int steps;                            /* steps taken this episode */
  int clicks;                           /* clicks this episode */
  int near_topic;                       /* argmax_t c_t . theta_hat (section 3.2) */
  int user_topic;                       /* the topic z the user was drawn around (3.1) */
  int n_exhausted;                      /* advertisers with budget 0 */
  float budget_total;                   /* sum of the remaining budgets */
  float annoyance;                      /* A in [0, RA_ADS_ANNOY_MAX] */
  float revenue;                        /* earned this episode */
  float oracle_value;                   /* best slate's expected reward for the current obs */
  int32_t oracle_slate[S_MAX_SLATE];
  int32_t last_items[S_MAX_SLATE];      /* the last slate shown (catalog ids); -1 before any */
  int last_clicks;                      /* clicks on the last slate */
  float last_revenue;
  /* section 6.3 dynamics (untouched while their switches are off) */
  int32_t clock;                        /* time units since the episode began: steps + return delays */
  int session;                          /* sessions begun this episode before the current one */
  float sat;                            /* S in [0, 1], moving average of the step's outcome (6.3) */
  float tbudget;                        /* B, the shared time budget (dynamics.time_budget) */
} s_env_t;

struct ra_sim {
  int num_envs, K, k, d, n_items, n_topics, n_adv, n_near;
  int f_user, f_cand, f_resp;           /* per-row widths of the observation fields */
  bool oracle;
  bool reveal;                          /* config reveal_tastes (shared.md 4.7) */
  int choice_kind;                      /* config choice_model */
  double cascade_continue;              /* config cascade_continue */
  int reward_kind;
  float w[RA_ADS_M_COUNT];              /* reward = sum_m w[m] total[m] (8.1) */
  const ra_reward_plugin_v1_t *plugin;  /* 8.3 reward = "plugin:<name>", else NULL */
  void *plugin_state;                   /* owned */
  ra_sim_spec_t spec;
  int n_slots;                          /* length of slots[] (the worlds table's n_slots) */
  ra_worlds_t worlds;                   /* which task each slot holds, which slot each env runs */
  s_slot_t *slots;
  s_env_t *envs;
  float *theta;                         /* num_envs x d */
  float *theta_hat;                     /* num_envs x d */
  int32_t *cand;                        /* num_envs x K */
  float *budget;                        /* num_envs x n_adv: remaining budgets */
  double default_task[RA_ADS_P_COUNT];  /* after config */
  ra_dynamics_t dyn;                    /* section 6.3 switches and parameters */
  ra_boredom_topic_t *bored;            /* num_envs x n_topics; NULL when dynamics.boredom is off */
  int fi_returned, fi_session;          /* info indices of "returned"/"session"; -1 when return is off */
};

/* 6.3 this sim's dynamics defaults: the library's with drift off (s_config_defaults lists them). */
static void s_dynamics_defaults (ra_dynamics_t *d)
{
  ra_dynamics_defaults (d);
  d->drift = false;
}

/* ---- helpers ---- */

static void s_field (ra_field_spec_t *f, const char *name, ra_dtype_t dt, int ndim, int64_t d0,
                     int64_t d1, double low, double high)
{
  memset (f, 0, sizeof *f);
  f->name = name;
  f->dtype = dt;
  f->ndim = ndim;
  f->shape[0] = d0;
  f->shape[1] = d1;
  f->low = low;
  f->high = high;
}

static inline float s_sigmoid (float x)
{
  return 1.0f / (1.0f + expf (-x));
}

static double s_clamp (double x, double lo, double hi)
{
  return x < lo ? lo : x > hi ? hi : x;
}

/* 4.1 scaled click utility of an ad with affinity aff and quality q under annoyance A */
static inline float s_utility (const s_slot_t *sl, float aff, float q, float annoyance)
{
  return (aff + RA_ADS_QUALITY_WEIGHT * q - RA_ADS_ANNOY_PENALTY * annoyance) * sl->inv_temp;
}

/* 5.1 conversion probability after a click */
static inline float s_conv_prob (float aff, float q)
{
  return s_sigmoid (RA_ADS_CONV_BIAS + RA_ADS_CONV_AFFINITY * aff + RA_ADS_CONV_QUALITY * q);
}

/* 2.2 public bid feature: log(bid / BID_MIN) / log(BID_MAX / BID_MIN), in [0, 1] */
static float s_bid_feature (double bid)
{
  double f = log (bid / RA_ADS_BID_MIN) / log (RA_ADS_BID_MAX / RA_ADS_BID_MIN);
  return (float) s_clamp (f, 0, 1);
}

/* 7.3 expected reward given a click on ad j: w_c + w_v P_conv + w_r min(bid, B_a) */
static inline float s_gain (const ra_sim_t *s, const s_slot_t *sl, const float *budget, int j, float aff)
{
  int a = sl->owner[j];
  float pay = budget[a] < sl->bid[a] ? budget[a] : sl->bid[a];
  return s->w[RA_ADS_M_CLICKS] + s->w[RA_ADS_M_CONVERSIONS] * s_conv_prob (aff, sl->cat.quality[j])
         + s->w[RA_ADS_M_REVENUE] * pay;
}

/* 10.1 user and candidate rows */
static void s_write_obs (const ra_sim_t *s, int i, const s_slot_t *sl, const s_env_t *e,
                         const ra_sim_buffers_t *buf)
{
  const int d = s->d;
  const ra_catalog_t *c = &sl->cat;
  float *u = (float *) buf->obs[S_OBS_USER] + (size_t) i * s->f_user;
  const float *th = s->theta_hat + (size_t) i * d;
  for (int q = 0; q < d; q++)
    u[q] = th[q];
  if (s->reveal)
    ra_users_reveal (&sl->pop, c, e->user_topic, u);
  float sf = (float) e->steps * (1.0f / S_MAX_STEPS);
  u[d] = sf > 1.0f ? 1.0f : sf;
  u[d + 1] = e->steps > 0 ? (float) e->clicks / (float) (e->steps * s->k) : 0.0f;
  u[d + 2] = (float) e->n_exhausted / (float) s->n_adv;
  float bf = e->budget_total / sl->budget0_total;
  u[d + 3] = bf < 0.0f ? 0.0f : bf > 1.0f ? 1.0f : bf;

  const float *budget = s->budget + (size_t) i * s->n_adv;
  const int32_t *cand = s->cand + (size_t) i * s->K;
  float *row = (float *) buf->obs[S_OBS_CANDIDATES] + (size_t) i * s->K * s->f_cand;
  /* item_ids: the candidates' catalog ids (one memcpy costs less than a store per row below) */
  memcpy ((int32_t *) buf->obs[S_OBS_ITEM_IDS] + (size_t) i * s->K, cand, (size_t) s->K * sizeof (int32_t));
  const int stride = c->stride;
  for (int r = 0; r < s->K; r++, row += s->f_cand) {
    int j = cand[r];
    const float *src = c->feat + (size_t) j * stride;
    for (int q = 0; q < d; q++)
      row[q] = src[q];
    int a = sl->owner[j];
    float fr = budget[a] / sl->budget0[a];
    float cl = budget[a] / (10.0f * sl->bid[a]);
    row[d] = sl->bid_feat[a];
    row[d + 1] = fr > 1.0f ? 1.0f : fr;
    row[d + 2] = cl > 1.0f ? 1.0f : cl;
    row[d + 3] = src[d + RA_CATALOG_F_QUALITY];
  }
}

/* 7.3 the exact best slate among the current candidates; caches it in e. */
static void s_oracle (const ra_sim_t *s, int i, const s_slot_t *sl, s_env_t *e)
{
  float a[S_MAX_K], g[S_MAX_K];
  const ra_catalog_t *c = &sl->cat;
  const float *theta = s->theta + (size_t) i * s->d;
  const float *budget = s->budget + (size_t) i * s->n_adv;
  const int32_t *cand = s->cand + (size_t) i * s->K;
  const ra_boredom_topic_t *bored = s->bored ? s->bored + (size_t) i * s->n_topics : NULL;
  for (int r = 0; r < s->K; r++) {
    int j = cand[r];
    float aff = ra_users_dot (theta, c->feat + (size_t) j * c->stride, s->d);
    float u = s_utility (sl, aff, c->quality[j], e->annoyance);
    if (bored)   /* 6.3 boredom */
      u -= ra_boredom_penalty (&s->dyn.bored, bored + c->topic[j], e->clock);
    a[r] = ra_choice_attraction (&sl->choice, u);
    g[r] = s_gain (s, sl, budget, j, aff);
  }
  e->oracle_value = ra_choice_best_slate (&sl->choice, a, g, s->K, e->oracle_slate);
}

/* ---- the class ---- */

static void s_slot_free (s_slot_t *sl)
{
  ra_catalog_fini (&sl->cat);
  free (sl->owner);
  free (sl->bid);
  free (sl->bid_feat);
  free (sl->budget0);
  sl->owner = NULL;
  sl->bid = sl->bid_feat = sl->budget0 = NULL;
}

static void s_destroy (ra_sim_t **sim_p)
{
  if (!sim_p || !*sim_p)
    return;
  ra_sim_t *s = *sim_p;
  if (s->slots)
    for (int t = 0; t < s->n_slots; t++)
      s_slot_free (&s->slots[t]);
  free (s->slots);
  ra_worlds_fini (&s->worlds);
  free (s->envs);
  free (s->theta);
  free (s->theta_hat);
  free (s->cand);
  free (s->budget);
  free (s->bored);
  if (s->plugin)
    s->plugin->destroy (s->plugin_state);
  free (s);
  *sim_p = NULL;
}

/* Fills slot t with the world and population of task v (sections 2 and 9.2). */
static void s_slot_build (ra_sim_t *s, int t, const ra_task_values_t *v)
{
  s_slot_t *sl = &s->slots[t];
  const double *p = v->values;
  ra_catalog_params_t cp = { .world_seed = (uint64_t) p[RA_ADS_P_WORLD_SEED],
                             .topic_skew = p[RA_ADS_P_TOPIC_SKEW],
                             .item_noise = p[RA_ADS_P_ITEM_NOISE],
                             .price_median = 20 };
  ra_catalog_build (&sl->cat, &cp);   /* 2.1 */
  /* 2.2 advertisers: topic a mod T, log-normal bid with mean 1, budget in clicks' worth of bid */
  ra_rng_t rng;
  ra_rng_seed (&rng, (uint64_t) p[RA_ADS_P_WORLD_SEED], S_ADV_STREAM);
  double sb = p[RA_ADS_P_BID_SPREAD];
  float total = 0;
  for (int a = 0; a < s->n_adv; a++) {
    double bid = s_clamp (ra_rng_lognormal (&rng, -0.5 * sb * sb, sb), RA_ADS_BID_MIN, RA_ADS_BID_MAX);
    double b0 = p[RA_ADS_P_BUDGET_SCALE] * bid * ra_rng_lognormal (&rng, -0.125, 0.5);
    sl->bid[a] = (float) bid;
    sl->bid_feat[a] = s_bid_feature (bid);
    sl->budget0[a] = (float) s_clamp (b0, 1e-3, 1e7);
    total += sl->budget0[a];
  }
  sl->budget0_total = total;
  /* 2.3 owners: ad j belongs to a uniform advertiser of its topic (any advertiser if none) */
  const int T = s->n_topics, A = s->n_adv;
  for (int j = 0; j < s->n_items; j++) {
    int tj = sl->cat.topic[j];
    int n_t = tj < A ? (A - 1 - tj) / T + 1 : 0;
    sl->owner[j] = n_t > 0 ? tj + T * (int) ra_rng_below (&rng, (uint32_t) n_t)
                           : (int) ra_rng_below (&rng, (uint32_t) A);
  }
  sl->pop = (ra_user_pop_t) { .interest_spread = p[RA_ADS_P_INTEREST_SPREAD],
                              .obs_noise = p[RA_ADS_P_OBS_NOISE],
                              .budget_mean = 1, .price_sensitivity = 1, .patience_mean = 1 };
  ra_users_hide_tastes (&sl->pop, ra_worlds_hidden (&s->worlds, v), ra_task_key (S_SIM_KEY, v->split, v->id),
                       sl->cat.n_topics);   /* shared.md 4 */
  double tau = p[RA_ADS_P_TEMPERATURE], eta = p[RA_ADS_P_POSITION_BIAS];
  ra_choice_init (&sl->choice, (ra_choice_kind_t) s->choice_kind, s->k, eta, p[RA_ADS_P_NO_CLICK] / tau);
  ra_choice_set_continue (&sl->choice, s->cascade_continue);
  for (int r = 0; r < S_MAX_SLATE; r++)
    sl->exam[r] = r < s->k ? (float) pow (1.0 / (r + 1), eta) : 0.0f;
  sl->inv_temp = (float) (1.0 / tau);
  sl->annoy_rate = (float) p[RA_ADS_P_ANNOYANCE_RATE];
  sl->leave_sens = (float) p[RA_ADS_P_LEAVE_SENSITIVITY];
}

/* 8.1 reward kind and weights from config; the named kinds are one-hot weights. With a plugin
   (8.3) the kind is "revenue", the plugin's default_reward. */
static ra_err_t s_reward_from_config (ra_config_t *cfg, int *kind, float *weights, ra_error_t *err)
{
  ra_err_t rc = RA_OK;
  *kind = S_REWARD_REVENUE;
  if (!ra_reward_is_plugin (cfg))
    rc = ra_config_get_enum (cfg, "reward", S_REWARD_REVENUE, s_reward_names, S_REWARD_COUNT, kind, err);
  if (rc != RA_OK)
    return rc;
  double w[RA_ADS_M_COUNT];
  for (int m = 0; m < RA_ADS_M_COUNT; m++) {
    char key[64];
    snprintf (key, sizeof key, "reward_weights.%s", s_metric_names[m]);
    rc = ra_config_get_num (cfg, key, m == RA_ADS_M_REVENUE ? 1.0 : 0.0, -1e6, 1e6, &w[m], err);
    if (rc != RA_OK)
      return rc;
  }
  static const int named[S_REWARD_COUNT] = { RA_ADS_M_REVENUE, RA_ADS_M_CLICKS, RA_ADS_M_CONVERSIONS, -1 };
  for (int m = 0; m < RA_ADS_M_COUNT; m++)
    weights[m] = *kind == S_REWARD_WEIGHTED ? (float) w[m] : named[*kind] == m ? 1.0f : 0.0f;
  return RA_OK;
}

/* Builds the batch into *out; with out NULL only runs the checks (s_check). */
static ra_err_t s_create (const ra_sim_args_t *args, ra_sim_t **out, ra_error_t *err)
{
  if (out)
    *out = NULL;
  ra_config_t cfg;
  ra_err_t rc = ra_config_init (&cfg, args->config, args->n_config, "config", err);
  if (rc != RA_OK)
    return rc;
  if (args->num_envs < 1)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "num_envs is %d, expected at least 1", args->num_envs);
  int64_t K, k, d, n_items, n_topics, n_adv, slots;
  double mix, cascade_continue;
  int choice_kind, reward_kind;
  float reward_w[RA_ADS_M_COUNT];
  bool oracle;
  double task_defaults[RA_ADS_P_COUNT];
  memcpy (task_defaults, s_default_task, sizeof task_defaults);
  ra_dynamics_t dyn;
  s_dynamics_defaults (&dyn);
  const ra_reward_plugin_v1_t *plugin = NULL;   /* 8.3 owned here until s takes it */
  void *pstate = NULL;
#define S_FAIL(x)       \
  do {                  \
    if (plugin)         \
      plugin->destroy (pstate); \
    return (x);         \
  } while (0)
#define S_TRY(x)        \
  do {                  \
    rc = (x);           \
    if (rc != RA_OK)    \
      S_FAIL (rc);      \
  } while (0)
  S_TRY (ra_config_get_int (&cfg, "num_candidates", 20, 2, S_MAX_K, &K, err));
  S_TRY (ra_config_get_int (&cfg, "slate_size", 3, 1, K < S_MAX_SLATE ? K : S_MAX_SLATE, &k, err));
  S_TRY (ra_config_get_int (&cfg, "embedding_dim", 16, 2, 256, &d, err));
  S_TRY (ra_config_get_int (&cfg, "num_items", 1000, K, 1000000, &n_items, err));
  S_TRY (ra_config_get_int (&cfg, "num_topics", 10, 1, n_items < 1024 ? n_items : 1024, &n_topics, err));
  S_TRY (ra_config_get_int (&cfg, "num_advertisers", 50, 1, S_MAX_ADVERTISERS, &n_adv, err));
  S_TRY (ra_config_get_num (&cfg, "retrieval_mix", 0.5, 0, 1, &mix, err));
  S_TRY (ra_config_get_enum (&cfg, "choice_model", S_CHOICE_DEFAULT, ra_choice_names, RA_CHOICE_COUNT,
                             &choice_kind, err));
  S_TRY (ra_config_get_num (&cfg, "cascade_continue", RA_CHOICE_CONTINUE_DEFAULT, 0, 1, &cascade_continue, err));
  S_TRY (s_reward_from_config (&cfg, &reward_kind, reward_w, err));
  S_TRY (ra_reward_plugin_from_config (&cfg, (int) args->num_envs, &plugin, &pstate, err));
  S_TRY (ra_config_get_bool (&cfg, "oracle", false, &oracle, err));
  S_TRY (ra_config_get_int (&cfg, "task_slots", 16, 1, 4096, &slots, err));
  double hidden_tastes;   /* shared.md 4 */
  S_TRY (ra_config_get_num (&cfg, "hidden_tastes", 0, 0, 1, &hidden_tastes, err));
  bool reveal_tastes;     /* shared.md 4.7 */
  S_TRY (ra_config_get_bool (&cfg, "reveal_tastes", false, &reveal_tastes, err));
  for (size_t q = 0; q < sizeof s_config_task_keys / sizeof s_config_task_keys[0]; q++) {
    const ra_task_param_def_t *pd = &s_params[s_config_task_keys[q]];
    S_TRY (ra_config_get_num (&cfg, pd->name, task_defaults[s_config_task_keys[q]], pd->min, pd->max,
                              &task_defaults[s_config_task_keys[q]], err));
  }
  S_TRY (ra_dynamics_from_config (&cfg, &dyn, err));
  S_TRY (ra_config_check_unknown (&cfg, s_known_keys, err));
  ra_task_values_t task0;
  S_TRY (ra_task_resolve (s_params, RA_ADS_P_COUNT, S_SIM_KEY, task_defaults, args->task, &task0, err));
#undef S_TRY
  slots = ra_worlds_count (slots, args->num_envs);
  size_t world_bytes = (size_t) n_items * ((size_t) (d + RA_CATALOG_N_EXTRA + 6) * 4)
                       + (size_t) n_topics * (size_t) d * 4 + (size_t) n_adv * 12;
  if (world_bytes * (size_t) slots > S_WORLD_BYTES_MAX)
    S_FAIL (ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                          "task_slots %lld x num_items %lld x embedding_dim %lld needs %zu MiB of worlds, "
                          "expected at most %zu MiB", (long long) slots, (long long) n_items, (long long) d,
                          world_bytes * (size_t) slots >> 20, S_WORLD_BYTES_MAX >> 20));
  if ((size_t) args->num_envs * (size_t) n_adv > ((size_t) 1 << 28))
    S_FAIL (ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                          "num_advertisers %lld x num_envs %d budgets is too many, expected at most 2^28",
                          (long long) n_adv, args->num_envs));

  if (!out) {   /* check only (s_check): the checks above passed */
    if (plugin)
      plugin->destroy (pstate);
    return RA_OK;
  }
  ra_sim_t *s = calloc (1, sizeof *s);
  if (!s)
    S_FAIL (ra_error_set (err, RA_ERR_NOMEM, -1, "Ads-v1: out of memory"));
#undef S_FAIL
  s->plugin = plugin;
  s->plugin_state = pstate;
  s->num_envs = args->num_envs;
  s->K = (int) K;
  s->k = (int) k;
  s->d = (int) d;
  s->n_items = (int) n_items;
  s->n_topics = (int) n_topics;
  s->n_adv = (int) n_adv;
  s->n_near = (int) lround (mix * (double) K);   /* 3.2 */
  s->oracle = oracle;
  s->reveal = reveal_tastes;
  s->choice_kind = choice_kind;
  s->cascade_continue = cascade_continue;
  s->reward_kind = reward_kind;
  memcpy (s->w, reward_w, sizeof s->w);
  memcpy (s->default_task, task_defaults, sizeof task_defaults);
  s->n_slots = (int) slots;
  size_t N = (size_t) s->num_envs;
  s->slots = calloc ((size_t) slots, sizeof *s->slots);
  s->envs = calloc (N, sizeof *s->envs);
  s->theta = calloc (N * (size_t) d, sizeof (float));
  s->theta_hat = calloc (N * (size_t) d, sizeof (float));
  s->cand = calloc (N * (size_t) K, sizeof (int32_t));
  s->budget = calloc (N * (size_t) n_adv, sizeof (float));
  if (!s->slots || !s->envs || !s->theta || !s->theta_hat || !s->cand || !s->budget)
    goto nomem;
  s->dyn = dyn;
  if (dyn.boredom) {
    s->bored = calloc (N * (size_t) n_topics, sizeof *s->bored);
    if (!s->bored)
      goto nomem;
    ra_boredom_reset (s->bored, (int) (N * (size_t) n_topics));
  }
  for (int t = 0; t < s->n_slots; t++) {
    s_slot_t *sl = &s->slots[t];
    if (ra_catalog_init (&sl->cat, s->n_items, s->n_topics, s->d, err) != RA_OK)
      goto nomem;
    sl->owner = calloc ((size_t) n_items, sizeof (int32_t));
    sl->bid = calloc ((size_t) n_adv, sizeof (float));
    sl->bid_feat = calloc ((size_t) n_adv, sizeof (float));
    sl->budget0 = calloc ((size_t) n_adv, sizeof (float));
    if (!sl->owner || !sl->bid || !sl->bid_feat || !sl->budget0)
      goto nomem;
  }
  if (ra_worlds_init (&s->worlds, s->n_slots, s->num_envs, RA_ADS_P_COUNT, &task0) != RA_OK)
    goto nomem;
  s->worlds.hidden_tastes = hidden_tastes;   /* before any world is built */
  s_slot_build (s, 0, &task0);
  for (int i = 0; i < s->num_envs; i++) {
    s_env_t *e = &s->envs[i];
    ra_rng_seed (&e->rng, args->seed + (uint64_t) i, 0);   /* section 1: env i from seed + i */
    for (int r = 0; r < S_MAX_SLATE; r++)
      e->last_items[r] = -1;
  }

  /* spec (section 10) */
  ra_sim_spec_t *sp = &s->spec;
  sp->num_candidates = s->K;
  sp->slate_size = s->k;
  s->f_user = s->d + S_USER_EXTRA;
  s->f_cand = s->d + S_CAND_EXTRA;
  s->f_resp = 3 * s->k;
  sp->n_obs = S_N_OBS;
  s_field (&sp->obs[S_OBS_USER], "user", RA_DTYPE_F32, 1, s->f_user, 0, -1, 1);
  s_field (&sp->obs[S_OBS_CANDIDATES], "candidates", RA_DTYPE_F32, 2, s->K, s->f_cand, -1, 1);
  s_field (&sp->obs[S_OBS_RESPONSE], "response", RA_DTYPE_F32, 1, s->f_resp, 0, 0, 1);
  s_field (&sp->obs[S_OBS_ITEM_IDS], "item_ids", RA_DTYPE_I32, 1, s->K, 0, 0, s->n_items - 1);
  s_field (&sp->info[S_INFO_ITEM], "item", RA_DTYPE_I32, 1, s->k, 0, 0, s->n_items - 1);
  s_field (&sp->info[S_INFO_CLICKED], "clicked", RA_DTYPE_BOOL, 1, s->k, 0, 0, 1);
  s_field (&sp->info[S_INFO_CONVERTED], "converted", RA_DTYPE_BOOL, 1, s->k, 0, 0, 1);
  s_field (&sp->info[S_INFO_REVENUE], "revenue", RA_DTYPE_F32, 1, s->k, 0, 0, RA_ADS_BID_MAX);
  s_field (&sp->info[S_INFO_ANNOYANCE], "annoyance", RA_DTYPE_F32, 0, 0, 0, 0, RA_ADS_ANNOY_MAX);
  s_field (&sp->info[S_INFO_LEFT], "left", RA_DTYPE_BOOL, 0, 0, 0, 0, 1);
  sp->n_info = S_INFO_LEFT + 1;
  if (s->oracle) {
    s_field (&sp->info[S_INFO_ORACLE_REWARD], "oracle_reward", RA_DTYPE_F32, 0, 0, 0, -INFINITY, INFINITY);
    s_field (&sp->info[S_INFO_REGRET], "regret", RA_DTYPE_F32, 0, 0, 0, 0, INFINITY);
    s_field (&sp->info[S_INFO_ORACLE_SLATE], "oracle_slate", RA_DTYPE_I32, 1, s->k, 0, 0, s->K - 1);
    sp->n_info = S_N_INFO_MAX;
  }
  s->fi_returned = s->fi_session = -1;
  if (dyn.ret) {   /* 6.3 return: which step began a new session, and the session index */
    s->fi_returned = sp->n_info++;
    s->fi_session = sp->n_info++;
    s_field (&sp->info[s->fi_returned], "returned", RA_DTYPE_BOOL, 0, 0, 0, 0, 1);
    s_field (&sp->info[s->fi_session], "session", RA_DTYPE_I32, 0, 0, 0, 0, dyn.ret_p.max_sessions - 1);
  }
  /* 8.2 per-step metric bounds: k clicks, k conversions, k bids of at most BID_MAX */
  double metric_max[RA_ADS_M_COUNT] = { (double) s->k, (double) s->k, s->k * RA_ADS_BID_MAX };
  sp->reward_range[0] = sp->reward_range[1] = 0;
  for (int m = 0; m < RA_ADS_M_COUNT; m++) {
    double v = s->w[m] * metric_max[m];
    sp->reward_range[v < 0 ? 0 : 1] += v;
  }
  if (s->plugin)   /* 8.3 */
    ra_reward_plugin_range (s->plugin, s->plugin_state, sp->reward_range);
  sp->max_episode_steps = S_MAX_STEPS;
  *out = s;
  return RA_OK;
nomem:
  s_destroy (&s);
  return ra_error_set (err, RA_ERR_NOMEM, -1, "Ads-v1 with %lld envs: out of memory", (long long) N);
}

static const ra_sim_spec_t *s_spec (const ra_sim_t *s)
{
  return &s->spec;
}

static void s_reset (ra_sim_t *s, int i0, int i1, const uint64_t *seeds, const uint8_t *mask,
                     const ra_sim_buffers_t *buf)
{
  assert (i0 >= 0 && i1 <= s->num_envs);
  const int d = s->d;
  for (int i = i0; i < i1; i++) {
    if (mask && !mask[i])
      continue;
    s_env_t *e = &s->envs[i];
    if (seeds)
      ra_rng_seed (&e->rng, seeds[i], 0);
    const s_slot_t *sl = &s->slots[ra_worlds_begin (&s->worlds, i)];
    float *theta = s->theta + (size_t) i * d, *theta_hat = s->theta_hat + (size_t) i * d;
    ra_user_t user;
    ra_users_draw (&sl->pop, &sl->cat, &e->rng, &user, theta, theta_hat);   /* 3.1 */
    e->user_topic = user.topic;
    memcpy (s->budget + (size_t) i * s->n_adv, sl->budget0, (size_t) s->n_adv * sizeof (float));   /* 2.2 */
    e->budget_total = sl->budget0_total;
    e->n_exhausted = 0;
    e->steps = 0;
    e->clicks = 0;
    e->annoyance = 0;
    e->revenue = 0;
    e->near_topic = ra_catalog_near_topic (&sl->cat, theta_hat);
    e->last_clicks = 0;
    e->last_revenue = 0;
    for (int r = 0; r < S_MAX_SLATE; r++)
      e->last_items[r] = -1;
    e->clock = 0;   /* 6.3 */
    e->session = 0;
    e->sat = RA_ADS_SAT_START;
    if (s->bored)
      ra_boredom_reset (s->bored + (size_t) i * s->n_topics, s->n_topics);
    if (s->dyn.time_budget)
      e->tbudget = ra_time_budget_draw (&s->dyn.budget, &e->rng);
    ra_catalog_retrieve (&sl->cat, e->near_topic, s->n_near, s->K, &e->rng,
                         s->cand + (size_t) i * s->K);
    s_write_obs (s, i, sl, e, buf);
    memset ((float *) buf->obs[S_OBS_RESPONSE] + (size_t) i * s->f_resp, 0, (size_t) s->f_resp * sizeof (float));
    if (s->oracle)
      s_oracle (s, i, sl, e);
  }
}

static void s_step (ra_sim_t *s, int i0, int i1, const int32_t *actions, const ra_sim_buffers_t *buf)
{
  assert (i0 >= 0 && i1 <= s->num_envs);
  const int d = s->d, k = s->k, K = s->K;
  for (int i = i0; i < i1; i++) {
    s_env_t *e = &s->envs[i];
    const s_slot_t *sl = &s->slots[s->worlds.cur[i]];
    const ra_catalog_t *c = &sl->cat;
    float *theta = s->theta + (size_t) i * d;
    float *budget = s->budget + (size_t) i * s->n_adv;
    ra_boredom_topic_t *bored = s->bored ? s->bored + (size_t) i * s->n_topics : NULL;
    int32_t *cand = s->cand + (size_t) i * K;
    const int32_t *act = actions + (size_t) i * k;
    int32_t item[S_MAX_SLATE];
    uint8_t clicked[S_MAX_SLATE], converted[S_MAX_SLATE];
    float v[S_MAX_SLATE], aff[S_MAX_SLATE], revenue[S_MAX_SLATE];
    float irrelevant = 0;
    for (int r = 0; r < k; r++) {
      int j = cand[act[r]];
      item[r] = j;
      aff[r] = ra_users_dot (theta, c->feat + (size_t) j * c->stride, d);
      v[r] = s_utility (sl, aff[r], c->quality[j], e->annoyance);   /* 4.1 */
      if (bored)   /* 6.3 boredom: shared.md 2.2 */
        v[r] -= ra_boredom_penalty (&s->dyn.bored, bored + c->topic[j], e->clock);
      irrelevant += aff[r] < RA_ADS_RELEVANCE ? sl->exam[r] : 0.0f;   /* 6.1 */
      converted[r] = 0;
      revenue[r] = 0;
    }
    float regret = 0, oracle_value = e->oracle_value;
    if (s->oracle) {   /* 7.3 regret of the shown slate against the best one, both expected */
      float g[S_MAX_SLATE];
      for (int r = 0; r < k; r++)
        g[r] = s_gain (s, sl, budget, item[r], aff[r]);
      regret = oracle_value - ra_choice_expected (&sl->choice, v, g);
      if (regret < 0)
        regret = 0;
    }
    int n_clicks = ra_choice_sample (&sl->choice, v, &e->rng, clicked);   /* 4.2 */
    float total[RA_ADS_M_COUNT] = { (float) n_clicks, 0, 0 };
    if (n_clicks > 0) {
      for (int r = 0; r < k; r++) {
        if (!clicked[r])
          continue;
        int j = item[r];
        if (ra_rng_uniform (&e->rng) < s_conv_prob (aff[r], c->quality[j])) {   /* 5.1 */
          converted[r] = 1;
          total[RA_ADS_M_CONVERSIONS] += 1;
        }
        int a = sl->owner[j];   /* 5.2 pay min(bid, B_a); nothing once B_a = 0 */
        float B = budget[a];
        if (B > 0) {
          float pay = B < sl->bid[a] ? B : sl->bid[a];
          float left = B - pay;
          budget[a] = left > 0 ? left : 0.0f;
          e->budget_total -= pay;
          e->n_exhausted += budget[a] == 0;
          revenue[r] = pay;
          total[RA_ADS_M_REVENUE] += pay;
        }
        if (s->dyn.drift) {   /* 6.3 drift: shared.md 2.1 with engagement 1 */
          const float *x = c->feat + (size_t) j * c->stride;
          ra_dynamics_drift (theta, x, RA_ADS_DRIFT_RATE, 1.0f, d);
          ra_dynamics_drift (s->theta_hat + (size_t) i * d, x, RA_ADS_DRIFT_RATE, 1.0f, d);
        }
        if (bored)
          ra_boredom_consume (&s->dyn.bored, bored + c->topic[j], e->clock, 1.0f);
      }
      if (s->dyn.drift)
        e->near_topic = ra_catalog_near_topic (c, s->theta_hat + (size_t) i * d);
    }
    /* 6.1 annoyance, then 6.2 leave */
    float A = (1.0f - RA_ADS_ANNOY_DECAY) * e->annoyance + sl->annoy_rate * irrelevant;
    e->annoyance = A > RA_ADS_ANNOY_MAX ? RA_ADS_ANNOY_MAX : A;
    float p_leave = s_sigmoid (RA_ADS_LEAVE_BIAS + sl->leave_sens * e->annoyance);
    bool left = ra_rng_uniform (&e->rng) < p_leave, returned = false;
    e->clock++;
    if (s->dyn.ret || s->dyn.time_budget) {   /* 6.3 time budget and return */
      float x = total[RA_ADS_M_CONVERSIONS] > 0 ? 1.0f : n_clicks > 0 ? 0.5f : 0.0f;
      e->sat = ra_satisfaction_update (e->sat, x, RA_ADS_SAT_RATE);
      if (s->dyn.time_budget) {   /* added to leaving: one time unit per clicked landing page */
        bool out = ra_time_budget_spend (&s->dyn.budget, &e->tbudget, (float) n_clicks, x);
        left = left || out;
      }
      if (s->dyn.ret && left && e->session + 1 < s->dyn.ret_p.max_sessions) {
        float delay = ra_return_sample (&s->dyn.ret_p, e->sat, &e->rng);
        if (delay >= 0) {   /* a new session after the delay; annoyance decays meanwhile */
          float dt = ceilf (delay < 1e6f ? delay : 1e6f);
          returned = true;
          e->session++;
          e->clock += (int32_t) dt;
          e->annoyance *= powf (1.0f - RA_ADS_ANNOY_DECAY, dt);
          if (s->dyn.time_budget)
            e->tbudget = ra_time_budget_draw (&s->dyn.budget, &e->rng);
        }
      }
    }
    e->steps++;
    e->clicks += n_clicks;
    e->revenue += total[RA_ADS_M_REVENUE];
    e->last_clicks = n_clicks;
    e->last_revenue = total[RA_ADS_M_REVENUE];
    for (int r = 0; r < k; r++)
      e->last_items[r] = item[r];
    buf->terminated[i] = left && !returned;   /* 7.1 */
    buf->reward[i] = s->w[0] * total[0] + s->w[1] * total[1] + s->w[2] * total[2];   /* 8.1 */
    if (s->plugin) {   /* 8.3 the plugin's view of the step's event record */
      int32_t topic[S_MAX_SLATE];
      for (int r = 0; r < k; r++)
        topic[r] = c->topic[item[r]];
      ra_reward_event_v1_t view = { .size = sizeof view, .version = RA_REWARD_EVENT_VERSION, .k = k,
                                    .step = e->steps - 1, .item = item, .topic = topic, .clicked = clicked,
                                    .converted = converted, .revenue = revenue,
                                    .left = buf->terminated[i], .returned = returned };
      buf->reward[i] = ra_reward_plugin_eval (s->plugin, s->plugin_state, &view, buf->reward[i], i);
    }

    /* 10.2 info rows */
    memcpy ((int32_t *) buf->info[S_INFO_ITEM] + (size_t) i * k, item, (size_t) k * sizeof (int32_t));
    memcpy ((uint8_t *) buf->info[S_INFO_CLICKED] + (size_t) i * k, clicked, (size_t) k);
    memcpy ((uint8_t *) buf->info[S_INFO_CONVERTED] + (size_t) i * k, converted, (size_t) k);
    memcpy ((float *) buf->info[S_INFO_REVENUE] + (size_t) i * k, revenue, (size_t) k * sizeof (float));
    ((float *) buf->info[S_INFO_ANNOYANCE])[i] = e->annoyance;
    ((uint8_t *) buf->info[S_INFO_LEFT])[i] = left;
    if (s->fi_returned >= 0) {
      ((uint8_t *) buf->info[s->fi_returned])[i] = returned;
      ((int32_t *) buf->info[s->fi_session])[i] = e->session;
    }

    /* 10.1 next observation: response row, new candidates */
    float *resp = (float *) buf->obs[S_OBS_RESPONSE] + (size_t) i * s->f_resp;
    for (int r = 0; r < k; r++) {
      resp[r] = clicked[r];
      resp[k + r] = converted[r];
      resp[2 * k + r] = revenue[r] > 0;
    }
    ra_catalog_retrieve (c, e->near_topic, s->n_near, s->K, &e->rng, cand);
    s_write_obs (s, i, sl, e, buf);
    if (s->oracle) {
      ((float *) buf->info[S_INFO_ORACLE_REWARD])[i] = oracle_value;
      ((float *) buf->info[S_INFO_REGRET])[i] = regret;
      s_oracle (s, i, sl, e);
      memcpy ((int32_t *) buf->info[S_INFO_ORACLE_SLATE] + (size_t) i * k, e->oracle_slate,
              (size_t) k * sizeof (int32_t));
    }
  }
}

/* set_task and describe_task are env/core/worlds.h's, fed this sim's task table and builder. */
static const ra_worlds_def_t s_worlds_def = { s_params, RA_ADS_P_COUNT, S_SIM_KEY, s_slot_build };

static ra_err_t s_set_task (ra_sim_t *s, const ra_task_t *task, const uint8_t *mask, ra_error_t *err)
{
  return ra_worlds_set_task (&s->worlds, &s_worlds_def, s, s->default_task, task, mask, err);
}

static int s_describe_task (const ra_sim_t *s, int env_index, ra_kv_t *out, int cap)
{
  return ra_worlds_describe_task (&s->worlds, &s_worlds_def, env_index, out, cap);
}

static int s_render (const ra_sim_t *s, int env_index, char *buf, size_t cap)
{
  assert (env_index >= 0 && env_index < s->num_envs);
  const s_env_t *e = &s->envs[env_index];
  const ra_task_values_t *task = ra_worlds_task (&s->worlds, env_index);
  const s_slot_t *sl = &s->slots[s->worlds.cur[env_index]];
  char slate[128];
  ra_render_slate (e->last_items, s->k, slate, sizeof slate);
  return snprintf (buf, cap,
                   "Ads-v1 env %d (task %s/%lld) step %d: annoyance %.2f, clicks %d, revenue %.2f, "
                   "advertisers exhausted %d of %d, budget left %.2f of %.2f; last slate [%s], "
                   "clicks %d, revenue %.2f\n",
                   env_index, ra_split_names[task->split], (long long) task->id, e->steps,
                   e->annoyance, e->clicks, e->revenue, e->n_exhausted, s->n_adv, e->budget_total,
                   sl->budget0_total, slate, e->last_clicks, e->last_revenue);
}

void ra_ads_view (const ra_sim_t *s, int i, ra_ads_view_t *out)
{
  assert (i >= 0 && i < s->num_envs);
  const s_env_t *e = &s->envs[i];
  const s_slot_t *sl = &s->slots[s->worlds.cur[i]];
  out->catalog = &sl->cat;
  out->choice = &sl->choice;
  out->params = ra_worlds_task (&s->worlds, i)->values;
  out->n_advertisers = s->n_adv;
  out->owner = sl->owner;
  out->bid = sl->bid;
  out->budget0 = sl->budget0;
  out->budget = s->budget + (size_t) i * s->n_adv;
  out->theta = s->theta + (size_t) i * s->d;
  out->theta_hat = s->theta_hat + (size_t) i * s->d;
  out->candidates = s->cand + (size_t) i * s->K;
  out->annoyance = e->annoyance;
  out->steps = e->steps;
  out->dynamics = &s->dyn;
  out->session = e->session;
  out->satisfaction = e->sat;
  out->time_budget = e->tbudget;
  out->clock = e->clock;
  out->boredom = s->bored ? s->bored + (size_t) i * s->n_topics : NULL;
}

static ra_err_t s_check (const ra_sim_args_t *args, ra_error_t *err)
{
  return s_create (args, NULL, err);
}

const ra_sim_class_t ra_ads_class = {
  .name = "Ads-v1",
  .description = "ad slots: position-biased clicks, advertisers with bids and budgets (pacing), "
                 "conversions, annoyance that drives users away; reward platform revenue",
  .config_defaults = s_config_defaults,
  .n_config_defaults = S_N_CONFIG,
  .create = s_create,
  .check = s_check,
  .destroy = s_destroy,
  .spec = s_spec,
  .reset = s_reset,
  .step = s_step,
  .set_task = s_set_task,
  .describe_task = s_describe_task,
  .render = s_render,
};
