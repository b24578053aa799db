/*  env/sims/ecommerce.c - ECommerce-v1 (docs/sims/ecommerce.md): each step the platform
    retrieves K candidates for a user, the agent shows a slate of k, the user clicks (by default at
    most one: logit with a no-click option and position bias; any env/core/choice.h model by
    config choice_model) and may buy what it clicked (logistic in affinity,
    quality and price/budget); purchases shrink the budget, clicks pull interest toward the item,
    and the session ends when patience or budget runs out.

    Owns: one ra_sim_t per batch with everything allocated at create: per-env state (struct
    array plus pools for interests and candidate ids) and task_slots catalogs, one per distinct
    task in the batch (envs with the same task share it). reset and step allocate nothing.
    Threading: reset/step on disjoint [i0, i1) ranges may run concurrently (they touch only those
    envs' state and read the slots); create, destroy and set_task need exclusive access.        */
#include "env/sims/ecommerce.h"

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

#define S_SIM_KEY 0x45436f6d6d657263ULL   /* "ECommerc": keys task draws */
#define S_MAX_SLATE RA_CHOICE_MAX_SLATE
#define S_MAX_K RA_CHOICE_MAX_CANDIDATES
#define S_MAX_STEPS 50
#define S_CATALOG_BYTES_MAX ((size_t) 1 << 30)

/* ---- task parameters (section 6) ---- */

static const ra_task_param_def_t s_params[RA_ECOM_P_COUNT] = {
  /* name                  train lo, hi    ood lo, hi    log    int    override min, max */
  { "world_seed",          0, 2147483647.0, 0, 2147483647.0, false, true, 0, 9007199254740992.0 },
  { "topic_skew",          0.5, 1.5,       1.8, 2.5,     false, false, 0, 5 },
  { "item_noise",          0.4, 0.8,       0.9, 1.2,     false, false, 0, 5 },
  { "price_median",        15, 30,         30, 50,       true,  false, 0.5, 1000 },
  { "interest_spread",     0.4, 0.8,       1.0, 1.4,     false, false, 0, 5 },
  { "obs_noise",           0.2, 0.4,       0.6, 0.9,     false, false, 0, 5 },
  { "choice_temperature",  0.18, 0.35,     0.35, 0.6,    false, false, 0.05, 5 },
  { "no_click_utility",    0.7, 1.3,       1.4, 1.9,     false, false, -3, 3 },
  { "position_bias",       0.5, 1.5,       1.8, 2.5,     false, false, 0, 5 },
  { "price_sensitivity",   1, 3,           3.5, 5,       false, false, 0.01, 100 },
  { "drift",               0.05, 0.2,      0.3, 0.5,     false, false, 0, 1 },
  { "budget_mean",         120, 320,       60, 120,      true,  false, 1, 100000 },
  { "patience_mean",       10, 20,         5, 8,         false, false, 1, 500 },
};

static const double s_default_task[RA_ECOM_P_COUNT] = {
  1234, 1.0, 0.6, 20, 0.6, 0.3, 0.25, 1.0, 1.0, 2.0, 0.1, 200, 15,
};

/* ---- config (every key with its default, for the server's "list") ---- */

static const ra_kv_t s_config_defaults[] = {
  { .key = "num_candidates", .type = RA_KV_NUM, .num = 20 },
  { .key = "slate_size", .type = RA_KV_NUM, .num = 3 },
  { .key = "embedding_dim", .type = RA_KV_NUM, .num = 16 },
  { .key = "num_items", .type = RA_KV_NUM, .num = 1000 },
  { .key = "num_topics", .type = RA_KV_NUM, .num = 10 },
  { .key = "retrieval_mix", .type = RA_KV_NUM, .num = 0.5 },
  { .key = "choice_model", .type = RA_KV_STR, .str = "logit" },
  { .key = "cascade_continue", .type = RA_KV_NUM, .num = RA_CHOICE_CONTINUE_DEFAULT },
  { .key = "reward", .type = RA_KV_STR, .str = "revenue" },
  { .key = "reward_weights.clicks", .type = RA_KV_NUM, .num = 0 },
  { .key = "reward_weights.purchases", .type = RA_KV_NUM, .num = 0 },
  { .key = "reward_weights.revenue", .type = RA_KV_NUM, .num = 1 },
  { .key = "reward_weights.margin", .type = RA_KV_NUM, .num = 0 },
  { .key = "oracle", .type = RA_KV_BOOL, .num = 0 },
  { .key = "task_slots", .type = RA_KV_NUM, .num = 16 },
  { .key = "hidden_tastes", .type = RA_KV_NUM, .num = 0 },   /* docs/sims/shared.md 4 */
  { .key = "reveal_tastes", .type = RA_KV_BOOL, .num = 0 },  /* docs/sims/shared.md 4.7 */
  { .key = "position_bias", .type = RA_KV_NUM, .num = 1.0 },
  { .key = "no_click_utility", .type = RA_KV_NUM, .num = 1.0 },
  { .key = "drift", .type = RA_KV_NUM, .num = 0.1 },
  { .key = "choice_temperature", .type = RA_KV_NUM, .num = 0.25 },
  { .key = "price_sensitivity", .type = RA_KV_NUM, .num = 2.0 },
  /* section 3.4: ra_dynamics_defaults (shared.md 2.5) with drift on; s_dynamics_defaults must agree */
  { .key = "dynamics.drift", .type = RA_KV_BOOL, .num = 1 },
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
    "num_candidates, slate_size, embedding_dim, num_items, num_topics, retrieval_mix, choice_model, "
    "cascade_continue, reward, reward_weights.{clicks,purchases,revenue,margin}, reward_plugin.<key>, oracle, "
    "task_slots, hidden_tastes, reveal_tastes, position_bias, "
    "no_click_utility, drift, choice_temperature, price_sensitivity, " RA_DYNAMICS_KNOWN_KEYS;

/* Config keys that set the default task's parameter of the same name (section 6.3). */
static const int s_config_task_keys[] = { RA_ECOM_P_POSITION_BIAS, RA_ECOM_P_NO_CLICK, RA_ECOM_P_DRIFT,
                                          RA_ECOM_P_TEMPERATURE, RA_ECOM_P_PRICE_SENSITIVITY };

/* ---- state ---- */

enum { S_OBS_USER = 0, S_OBS_CANDIDATES, S_OBS_RESPONSE, S_OBS_ITEM_IDS, S_N_OBS };
enum { S_INFO_ITEM = 0, S_INFO_CLICKED, S_INFO_PURCHASED, S_INFO_REVENUE, S_INFO_MARGIN, S_INFO_BUDGET,
       S_INFO_ORACLE_REWARD, S_INFO_REGRET, S_INFO_ORACLE_SLATE, S_N_INFO_MAX };
/* with dynamics.return on, "returned" and "session" follow the fields above (s->fi_returned) */
#define S_USER_EXTRA 4   /* budget fraction, log budget, step fraction, click rate (section 9.1) */

typedef struct {
  ra_catalog_t cat;
  ra_user_pop_t pop;
  ra_choice_t choice;
  float inv_temp;                       /* 1 / choice_temperature */
  float drift;                          /* alpha in [0, 1] */
} s_slot_t;

typedef struct {
  ra_rng_t rng;
  ra_user_t user;
  int steps;                            /* steps taken this episode */
  int clicks;                           /* clicks this episode */
  int near_topic;                       /* argmax_t c_t . theta_hat (section 8) */
  float oracle_value;                   /* best slate's expected reward for the current obs */
  int32_t oracle_slate[S_MAX_SLATE];
  int32_t last_items[S_MAX_SLATE];      /* the last slate shown (catalog ids); -1 before any */
  int last_click;                       /* slot clicked, -1 for none */
  bool last_purchase;
  float last_revenue;
  /* section 3.4 dynamics (untouched while their switches are off) */
  int32_t clock;                        /* time units since the episode began: steps + return delays */
  int session;                          /* sessions begun this episode before the current one */
  float sat;                            /* S in [0, 1], moving average of the step's outcome (3.5) */
  float tbudget;                        /* B, the shared time budget (dynamics.time_budget) */
} s_env_t;

struct ra_sim {
  int num_envs, K, k, d, n_items, n_topics, n_near;
  int f_user, f_cand, f_resp;           /* per-row widths of the observation fields */
  bool oracle;
  bool reveal;                          /* config reveal_tastes (shared.md 4.7) */
  ra_reward_t reward;                   /* the built-in weights (revenue when a plugin rules) */
  ra_reward_model_t rmodel;             /* owns the plugin state, if any (section 7.3) */
  ra_sim_spec_t spec;
  ra_choice_kind_t choice_kind;         /* config choice_model */
  double cascade_continue;              /* config cascade_continue */
  int n_slots;                          /* length of slots[] (the worlds table's n_slots) */
  ra_worlds_t worlds;                   /* which task each slot holds, which slot each env runs */
  s_slot_t *slots;
  s_env_t *envs;
  float *theta;                         /* num_envs x d */
  float *theta_hat;                     /* num_envs x d */
  int32_t *cand;                        /* num_envs x K */
  double default_task[RA_ECOM_P_COUNT]; /* after config */
  ra_dynamics_t dyn;                    /* section 3.4 switches and parameters */
  ra_boredom_topic_t *bored;            /* num_envs x n_topics; NULL when dynamics.boredom is off */
  int fi_returned, fi_session;          /* info indices of "returned"/"session"; -1 when return is off */
};

/* 3.4 this sim's dynamics defaults: the library's with drift on (s_config_defaults lists them). */
static void s_dynamics_defaults (ra_dynamics_t *d)
{
  ra_dynamics_defaults (d);
  d->drift = true;
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

static double s_clamp (double x, double lo, double hi)
{
  return x < lo ? lo : x > hi ? hi : x;
}

static float s_sigmoid (float x)
{
  return 1.0f / (1.0f + expf (-x));
}

/* 5.1 purchase probability of a clicked item */
static inline float s_purchase_prob (const ra_user_t *u, float affinity, float quality, float price)
{
  if (price > u->budget)
    return 0.0f;
  return s_sigmoid (RA_ECOM_BUY_BIAS + RA_ECOM_BUY_AFFINITY * affinity + RA_ECOM_BUY_QUALITY * quality
                    - u->price_sens * price / u->budget);
}

/* 4.3 expected reward given a click on item j: w_c + P_buy (w_p + w_r price + w_m margin) */
static inline float s_gain (const ra_sim_t *s, const ra_catalog_t *c, const ra_user_t *u, int j, float aff)
{
  const float *w = s->reward.w;
  float pb = s_purchase_prob (u, aff, c->quality[j], c->price[j]);
  return w[RA_METRIC_CLICKS]
         + pb * (w[RA_METRIC_PURCHASES] + w[RA_METRIC_REVENUE] * c->price[j] + w[RA_METRIC_MARGIN] * c->margin[j]);
}

/* 9.1 user and candidate rows */
static void s_write_obs (const ra_sim_t *s, int i, const s_slot_t *sl, const s_env_t *e,
                         const ra_sim_buffers_t *buf)
{
  const int d = s->d;
  const ra_catalog_t *c = &sl->cat;
  float *u = (float *) buf->obs[S_OBS_USER] + (size_t) i * s->f_user;
  const float *th = s->theta_hat + (size_t) i * d;
  for (int q = 0; q < d; q++)
    u[q] = th[q];
  const ra_user_t *us = &e->user;
  if (s->reveal)
    ra_users_reveal (&sl->pop, c, us->topic, u);
  float bf = us->budget / us->budget0;
  u[d] = bf > 1.0f ? 1.0f : bf;
  float lb = logf (1.0f + us->budget) * (float) (1.0 / log (1.0 + RA_USER_BUDGET_MAX));
  u[d + 1] = lb > 1.0f ? 1.0f : lb;
  float sf = (float) e->steps * (1.0f / S_MAX_STEPS);
  u[d + 2] = sf > 1.0f ? 1.0f : sf;
  float cr = e->steps > 0 ? (float) e->clicks / (float) e->steps : 0.0f;
  u[d + 3] = cr > 1.0f ? 1.0f : cr;   /* several clicks per step are possible (cascade, position_based) */

  float inv_b = us->budget > 0 ? 1.0f / us->budget : INFINITY;
  const int32_t *cand = s->cand + (size_t) i * s->K;
  float *row = (float *) buf->obs[S_OBS_CANDIDATES] + (size_t) i * s->K * s->f_cand;
  /* item_ids: the candidates' catalog ids (one memcpy costs less than a store per row below) */
  memcpy ((int32_t *) buf->obs[S_OBS_ITEM_IDS] + (size_t) i * s->K, cand, (size_t) s->K * sizeof (int32_t));
  const int stride = c->stride;
  for (int r = 0; r < s->K; r++, row += s->f_cand) {
    int j = cand[r];
    const float *src = c->feat + (size_t) j * stride;
    for (int q = 0; q < stride; q++)
      row[q] = src[q];
    float pb = c->price[j] * inv_b;
    row[c->stride] = pb < 1.0f ? pb : 1.0f;
  }
}

/* 4.3 the exact best slate among the current candidates; caches it in e. */
static void s_oracle (const ra_sim_t *s, int i, const s_slot_t *sl, s_env_t *e)
{
  float a[S_MAX_K], g[S_MAX_K];
  const ra_catalog_t *c = &sl->cat;
  const float *theta = s->theta + (size_t) i * s->d;
  const int32_t *cand = s->cand + (size_t) i * s->K;
  const ra_boredom_topic_t *bored = s->bored ? s->bored + (size_t) i * s->n_topics : NULL;
  for (int r = 0; r < s->K; r++) {
    int j = cand[r];
    float aff = ra_users_dot (theta, c->feat + (size_t) j * c->stride, s->d);
    float u = (aff + RA_ECOM_QUALITY_WEIGHT * c->quality[j]) * sl->inv_temp;
    if (s->bored)   /* 3.4 boredom */
      u -= ra_boredom_penalty (&s->dyn.bored, bored + c->topic[j], e->clock);
    a[r] = ra_choice_attraction (&sl->choice, u);
    g[r] = s_gain (s, c, &e->user, j, aff);
  }
  e->oracle_value = ra_choice_best_slate (&sl->choice, a, g, s->K, e->oracle_slate);
}

/* ---- the class ---- */

static void s_destroy (ra_sim_t **sim_p)
{
  if (!sim_p || !*sim_p)
    return;
  ra_sim_t *s = *sim_p;
  if (s->slots)
    for (int t = 0; t < s->n_slots; t++)
      ra_catalog_fini (&s->slots[t].cat);
  free (s->slots);
  ra_worlds_fini (&s->worlds);
  free (s->envs);
  free (s->theta);
  free (s->theta_hat);
  free (s->cand);
  free (s->bored);
  ra_reward_model_fini (&s->rmodel);
  free (s);
  *sim_p = NULL;
}

/* Fills slot t with the world and population of task v (section 6.2). */
static void s_slot_build (ra_sim_t *s, int t, const ra_task_values_t *v)
{
  s_slot_t *sl = &s->slots[t];
  const double *p = v->values;
  ra_catalog_params_t cp = { .world_seed = (uint64_t) p[RA_ECOM_P_WORLD_SEED],
                             .topic_skew = p[RA_ECOM_P_TOPIC_SKEW],
                             .item_noise = p[RA_ECOM_P_ITEM_NOISE],
                             .price_median = p[RA_ECOM_P_PRICE_MEDIAN] };
  ra_catalog_build (&sl->cat, &cp);
  sl->pop = (ra_user_pop_t) { .interest_spread = p[RA_ECOM_P_INTEREST_SPREAD],
                              .obs_noise = p[RA_ECOM_P_OBS_NOISE],
                              .budget_mean = p[RA_ECOM_P_BUDGET_MEAN],
                              .price_sensitivity = p[RA_ECOM_P_PRICE_SENSITIVITY],
                              .patience_mean = p[RA_ECOM_P_PATIENCE_MEAN] };
  ra_users_hide_tastes (&sl->pop, ra_worlds_hidden (&s->worlds, v), ra_task_key (S_SIM_KEY, v->split, v->id),
                       sl->cat.n_topics);   /* shared.md 4 */
  double tau = p[RA_ECOM_P_TEMPERATURE];
  ra_choice_init (&sl->choice, s->choice_kind, s->k, p[RA_ECOM_P_POSITION_BIAS],
                  p[RA_ECOM_P_NO_CLICK] / tau);
  ra_choice_set_continue (&sl->choice, s->cascade_continue);
  sl->inv_temp = (float) (1.0 / tau);
  sl->drift = (float) p[RA_ECOM_P_DRIFT];
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
  int64_t K, k, d, n_items, n_topics, slots;
  double mix;
  int choice_kind;
  double cascade_continue;
  bool oracle;
  ra_reward_model_t rmodel = { 0 };     /* owned here until s takes it */
  double task_defaults[RA_ECOM_P_COUNT];
  memcpy (task_defaults, s_default_task, sizeof task_defaults);
  ra_dynamics_t dyn;
  s_dynamics_defaults (&dyn);
#define S_TRY(x)        \
  do {                  \
    rc = (x);           \
    if (rc != RA_OK) {  \
      ra_reward_model_fini (&rmodel); \
      return rc;        \
    }                   \
  } while (0)
  S_TRY (ra_config_get_int (&cfg, "num_candidates", 20, 2, S_MAX_K, &K, err));
  S_TRY (ra_config_get_int (&cfg, "slate_size", 3, 1, K < S_MAX_SLATE ? K : S_MAX_SLATE, &k, err));
  S_TRY (ra_config_get_int (&cfg, "embedding_dim", 16, 2, 256, &d, err));
  S_TRY (ra_config_get_int (&cfg, "num_items", 1000, K, 1000000, &n_items, err));
  S_TRY (ra_config_get_int (&cfg, "num_topics", 10, 1, n_items < 1024 ? n_items : 1024, &n_topics, err));
  S_TRY (ra_config_get_num (&cfg, "retrieval_mix", 0.5, 0, 1, &mix, err));
  S_TRY (ra_config_get_enum (&cfg, "choice_model", RA_CHOICE_LOGIT, ra_choice_names, RA_CHOICE_COUNT,
                             &choice_kind, err));
  S_TRY (ra_config_get_num (&cfg, "cascade_continue", RA_CHOICE_CONTINUE_DEFAULT, 0, 1, &cascade_continue, err));
  S_TRY (ra_reward_model_from_config (&cfg, (int) args->num_envs, &rmodel, err));
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
  S_TRY (ra_task_resolve (s_params, RA_ECOM_P_COUNT, S_SIM_KEY, task_defaults, args->task, &task0, err));
#undef S_TRY
  slots = ra_worlds_count (slots, args->num_envs);
  size_t cat_bytes = (size_t) n_items * ((size_t) (d + RA_CATALOG_N_EXTRA + 5) * 4) + (size_t) n_topics * (size_t) d * 4;
  if (cat_bytes * (size_t) slots > S_CATALOG_BYTES_MAX) {
    ra_reward_model_fini (&rmodel);
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "task_slots %lld x num_items %lld x embedding_dim %lld needs %zu MiB of catalogs, "
                         "expected at most %zu MiB", (long long) slots, (long long) n_items, (long long) d,
                         cat_bytes * (size_t) slots >> 20, S_CATALOG_BYTES_MAX >> 20);
  }

  if (!out) {   /* check only (s_check): the checks above passed */
    ra_reward_model_fini (&rmodel);
    return RA_OK;
  }
  ra_sim_t *s = calloc (1, sizeof *s);
  if (!s) {
    ra_reward_model_fini (&rmodel);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "ECommerce-v1: out of memory");
  }
  s->num_envs = args->num_envs;
  s->K = (int) K;
  s->k = (int) k;
  s->d = (int) d;
  s->n_items = (int) n_items;
  s->n_topics = (int) n_topics;
  s->n_near = (int) lround (mix * (double) K);   /* 8.1 */
  s->oracle = oracle;
  s->reveal = reveal_tastes;
  s->rmodel = rmodel;
  s->reward = rmodel.builtin;
  s->choice_kind = (ra_choice_kind_t) choice_kind;
  s->cascade_continue = cascade_continue;
  memcpy (s->default_task, task_defaults, sizeof task_defaults);
  s->dyn = dyn;
  s->n_slots = (int) slots;
  size_t N = (size_t) s->num_envs;
  s->slots = calloc ((size_t) slots, sizeof *s->slots);
  s->envs = calloc (N, sizeof *s->envs);
  s->theta = calloc (N * (size_t) d, sizeof (float));
  s->theta_hat = calloc (N * (size_t) d, sizeof (float));
  s->cand = calloc (N * (size_t) K, sizeof (int32_t));
  if (!s->slots || !s->envs || !s->theta || !s->theta_hat || !s->cand)
    goto nomem;
  if (dyn.boredom) {
    s->bored = calloc (N * (size_t) n_topics, sizeof *s->bored);
    if (!s->bored)
      goto nomem;
    ra_boredom_reset (s->bored, (int) (N * (size_t) n_topics));
  }
  for (int t = 0; t < s->n_slots; t++)
    if (ra_catalog_init (&s->slots[t].cat, s->n_items, s->n_topics, s->d, err) != RA_OK)
      goto nomem;
  if (ra_worlds_init (&s->worlds, s->n_slots, s->num_envs, RA_ECOM_P_COUNT, &task0) != RA_OK)
    goto nomem;
  s->worlds.hidden_tastes = hidden_tastes;   /* before any world is built */
  s_slot_build (s, 0, &task0);
  for (int i = 0; i < s->num_envs; i++) {
    s_env_t *e = &s->envs[i];
    ra_rng_seed (&e->rng, args->seed + (uint64_t) i, 0);   /* section 1: env i from seed + i */
    e->last_click = -1;
    for (int r = 0; r < S_MAX_SLATE; r++)
      e->last_items[r] = -1;
  }

  /* spec (section 9) */
  ra_sim_spec_t *sp = &s->spec;
  sp->num_candidates = s->K;
  sp->slate_size = s->k;
  s->f_user = s->d + S_USER_EXTRA;
  s->f_cand = s->d + RA_CATALOG_N_EXTRA + 1;
  s->f_resp = 2 * s->k + 1;
  sp->n_obs = S_N_OBS;
  s_field (&sp->obs[S_OBS_USER], "user", RA_DTYPE_F32, 1, s->f_user, 0, -1, 1);
  s_field (&sp->obs[S_OBS_CANDIDATES], "candidates", RA_DTYPE_F32, 2, s->K, s->f_cand, -1, 1);
  s_field (&sp->obs[S_OBS_RESPONSE], "response", RA_DTYPE_F32, 1, s->f_resp, 0, 0, 1);
  s_field (&sp->obs[S_OBS_ITEM_IDS], "item_ids", RA_DTYPE_I32, 1, s->K, 0, 0, s->n_items - 1);
  s_field (&sp->info[S_INFO_ITEM], "item", RA_DTYPE_I32, 1, s->k, 0, 0, s->n_items - 1);
  s_field (&sp->info[S_INFO_CLICKED], "clicked", RA_DTYPE_BOOL, 1, s->k, 0, 0, 1);
  s_field (&sp->info[S_INFO_PURCHASED], "purchased", RA_DTYPE_BOOL, 1, s->k, 0, 0, 1);
  s_field (&sp->info[S_INFO_REVENUE], "revenue", RA_DTYPE_F32, 1, s->k, 0, 0, RA_CATALOG_PRICE_MAX);
  s_field (&sp->info[S_INFO_MARGIN], "margin", RA_DTYPE_F32, 1, s->k, 0, 0, RA_CATALOG_PRICE_MAX);
  s_field (&sp->info[S_INFO_BUDGET], "budget", RA_DTYPE_F32, 0, 0, 0, 0, RA_USER_BUDGET_MAX);
  sp->n_info = S_INFO_BUDGET + 1;
  if (s->oracle) {
    s_field (&sp->info[S_INFO_ORACLE_REWARD], "oracle_reward", RA_DTYPE_F32, 0, 0, 0, -INFINITY, INFINITY);
    s_field (&sp->info[S_INFO_REGRET], "regret", RA_DTYPE_F32, 0, 0, 0, 0, INFINITY);
    s_field (&sp->info[S_INFO_ORACLE_SLATE], "oracle_slate", RA_DTYPE_I32, 1, s->k, 0, 0, s->K - 1);
    sp->n_info = S_N_INFO_MAX;
  }
  s->fi_returned = s->fi_session = -1;
  if (dyn.ret) {   /* 3.4 return: which step began a new session, and the session index */
    s->fi_returned = sp->n_info++;
    s->fi_session = sp->n_info++;
    s_field (&sp->info[s->fi_returned], "returned", RA_DTYPE_BOOL, 0, 0, 0, 0, 1);
    s_field (&sp->info[s->fi_session], "session", RA_DTYPE_I32, 0, 0, 0, 0, dyn.ret_p.max_sessions - 1);
  }
  /* 7.2 per-step metric bounds: one click, one purchase, revenue and margin <= PRICE_MAX, times k
     for the kinds with several clicks per slate */
  double mc = s->choice_kind == RA_CHOICE_LOGIT || s->choice_kind == RA_CHOICE_PROPORTIONAL ? 1 : s->k;
  double metric_max[RA_METRIC_COUNT] = { mc, mc, mc * RA_CATALOG_PRICE_MAX, mc * RA_CATALOG_PRICE_MAX };
  ra_reward_model_range (&s->rmodel, metric_max, sp->reward_range);
  sp->max_episode_steps = S_MAX_STEPS;
  *out = s;
  return RA_OK;
nomem:
  s_destroy (&s);
  return ra_error_set (err, RA_ERR_NOMEM, -1, "ECommerce-v1 with %lld envs: out of memory",
                       (long long) N);
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
    ra_users_draw (&sl->pop, &sl->cat, &e->rng, &e->user, theta, theta_hat);   /* 3.1 */
    e->steps = 0;
    e->clicks = 0;
    e->near_topic = ra_catalog_near_topic (&sl->cat, theta_hat);
    e->last_click = -1;
    e->last_purchase = false;
    e->last_revenue = 0;
    for (int r = 0; r < S_MAX_SLATE; r++)
      e->last_items[r] = -1;
    e->clock = 0;   /* 3.4 */
    e->session = 0;
    e->sat = RA_ECOM_SAT_START;
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
    float *theta = s->theta + (size_t) i * d, *theta_hat = s->theta_hat + (size_t) i * d;
    int32_t *cand = s->cand + (size_t) i * K;
    const int32_t *act = actions + (size_t) i * k;
    ra_event_t ev;
    float v[S_MAX_SLATE], aff[S_MAX_SLATE];
    ra_boredom_topic_t *bored = s->bored ? s->bored + (size_t) i * s->n_topics : NULL;
    ev.k = k;
    for (int r = 0; r < k; r++) {
      int j = cand[act[r]];
      ev.item[r] = j;
      aff[r] = ra_users_dot (theta, c->feat + (size_t) j * c->stride, d);
      v[r] = (aff[r] + RA_ECOM_QUALITY_WEIGHT * c->quality[j]) * sl->inv_temp;   /* 4.1 */
      if (bored)   /* 3.4 boredom: shared.md 2.2 */
        v[r] -= ra_boredom_penalty (&s->dyn.bored, bored + c->topic[j], e->clock);
      ev.purchased[r] = 0;
      ev.revenue[r] = 0;
      ev.margin[r] = 0;
    }
    float regret = 0, oracle_value = e->oracle_value;
    if (s->oracle) {   /* 4.3 regret of the shown slate against the best one, both expected */
      float g[S_MAX_SLATE];
      for (int r = 0; r < k; r++)
        g[r] = s_gain (s, c, &e->user, ev.item[r], aff[r]);
      regret = oracle_value - ra_choice_expected (&sl->choice, v, g);
      if (regret < 0)
        regret = 0;
    }
    int n_clicks = ra_choice_sample (&sl->choice, v, &e->rng, ev.clicked);   /* 4.2 */
    e->last_click = -1;
    e->last_purchase = false;
    e->last_revenue = 0;
    if (n_clicks > 0) {
      for (int r = 0; r < k; r++) {
        if (!ev.clicked[r])
          continue;
        int j = ev.item[r];
        float price = c->price[j];
        float pb = s_purchase_prob (&e->user, aff[r], c->quality[j], price);   /* 5.1 */
        if (ra_rng_uniform (&e->rng) < pb) {
          ev.purchased[r] = 1;
          ev.revenue[r] = price;
          ev.margin[r] = c->margin[j];
          e->user.budget -= price;   /* 5.2 */
          if (e->user.budget < 0)
            e->user.budget = 0;
          e->last_purchase = true;
          e->last_revenue = price;
        }
        if (s->dyn.drift) {   /* 3.3, shared.md 2.1 with engagement 1 */
          const float *x = c->feat + (size_t) j * c->stride;
          ra_dynamics_drift (theta, x, sl->drift, 1.0f, d);
          ra_dynamics_drift (theta_hat, x, sl->drift, 1.0f, d);
        }
        if (bored)
          ra_boredom_consume (&s->dyn.bored, bored + c->topic[j], e->clock, 1.0f);
        e->last_click = r;
      }
      e->near_topic = ra_catalog_near_topic (c, theta_hat);
      e->user.patience -= RA_ECOM_CLICK_PATIENCE;      /* 3.2 */
    } else {
      e->user.patience -= 1.0f;
    }
    e->steps++;
    e->clicks += n_clicks;
    for (int r = 0; r < k; r++)
      e->last_items[r] = ev.item[r];
    /* 10.1 termination; 3.4 time budget and return */
    bool session_end = e->user.patience <= 0, returned = false;
    e->clock++;
    if (s->dyn.ret || s->dyn.time_budget) {
      float x = e->last_purchase ? 1.0f : n_clicks > 0 ? 0.5f : 0.0f;   /* 3.5 */
      e->sat = ra_satisfaction_update (e->sat, x, RA_ECOM_SAT_RATE);
      if (s->dyn.time_budget)   /* replaces patience: one time unit per clicked item page */
        session_end = ra_time_budget_spend (&s->dyn.budget, &e->tbudget, (float) n_clicks, x);
      if (s->dyn.ret && session_end && e->user.budget >= c->min_price
          && e->session + 1 < s->dyn.ret_p.max_sessions) {
        float delay = ra_return_sample (&s->dyn.ret_p, e->sat, &e->rng);
        if (delay >= 0) {   /* a new session after the delay (3.4) */
          returned = true;
          session_end = false;
          e->session++;
          e->clock += (int32_t) ceilf (delay < 1e6f ? delay : 1e6f);
          e->user.patience = (float) s_clamp (ra_rng_lognormal (&e->rng, log (sl->pop.patience_mean), 0.3),
                                              1.0, RA_USER_PATIENCE_MAX);
          if (s->dyn.time_budget)
            e->tbudget = ra_time_budget_draw (&s->dyn.budget, &e->rng);
        }
      }
    }
    buf->terminated[i] = session_end || e->user.budget < c->min_price;
    float total[RA_METRIC_COUNT];
    ra_event_totals (&ev, total);
    if (s->rmodel.plugin) {   /* 7.3 the plugin's view of the event record */
      int32_t topic[S_MAX_SLATE];
      for (int r = 0; r < k; r++)
        topic[r] = c->topic[ev.item[r]];
      ra_reward_event_v1_t view = { .size = sizeof view, .version = RA_REWARD_EVENT_VERSION, .k = k,
                                    .step = e->steps - 1, .item = ev.item, .topic = topic,
                                    .clicked = ev.clicked, .converted = ev.purchased, .revenue = ev.revenue,
                                    .left = buf->terminated[i], .returned = returned };
      buf->reward[i] = ra_reward_model_eval (&s->rmodel, total, &view, i);
    } else {
      buf->reward[i] = ra_reward_eval (&s->reward, total);   /* 7.1 */
    }

    /* 9.2 info rows */
    memcpy ((int32_t *) buf->info[S_INFO_ITEM] + (size_t) i * k, ev.item, (size_t) k * sizeof (int32_t));
    memcpy ((uint8_t *) buf->info[S_INFO_CLICKED] + (size_t) i * k, ev.clicked, (size_t) k);
    memcpy ((uint8_t *) buf->info[S_INFO_PURCHASED] + (size_t) i * k, ev.purchased, (size_t) k);
    memcpy ((float *) buf->info[S_INFO_REVENUE] + (size_t) i * k, ev.revenue, (size_t) k * sizeof (float));
    memcpy ((float *) buf->info[S_INFO_MARGIN] + (size_t) i * k, ev.margin, (size_t) k * sizeof (float));
    ((float *) buf->info[S_INFO_BUDGET])[i] = e->user.budget;
    if (s->fi_returned >= 0) {
      ((uint8_t *) buf->info[s->fi_returned])[i] = returned;
      ((int32_t *) buf->info[s->fi_session])[i] = e->session;
    }

    /* 9.1 next observation: response row, new candidates */
    float *resp = (float *) buf->obs[S_OBS_RESPONSE] + (size_t) i * s->f_resp;
    for (int r = 0; r < k; r++) {
      resp[r] = ev.clicked[r];
      resp[k + r] = ev.purchased[r];
    }
    float rf = total[RA_METRIC_REVENUE] / e->user.budget0;
    resp[2 * k] = rf > 1.0f ? 1.0f : rf;
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
static const ra_worlds_def_t s_worlds_def = { s_params, RA_ECOM_P_COUNT, S_SIM_KEY, s_slot_build };

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
  char slate[128];
  ra_render_slate (e->last_items, s->k, slate, sizeof slate);
  return snprintf (buf, cap,
                   "ECommerce-v1 env %d (task %s/%lld) step %d: user topic %d, budget %.2f of %.2f, "
                   "patience %.2f, clicks %d; last slate [%s], clicked slot %d, revenue %.2f\n",
                   env_index, ra_split_names[task->split], (long long) task->id, e->steps,
                   e->user.topic, e->user.budget, e->user.budget0, e->user.patience, e->clicks, slate,
                   e->last_click, e->last_revenue);
}

void ra_ecommerce_view (const ra_sim_t *s, int i, ra_ecommerce_view_t *out)
{
  assert (i >= 0 && i < s->num_envs);
  const s_env_t *e = &s->envs[i];
  const s_slot_t *sl = &s->slots[s->worlds.cur[i]];
  out->catalog = &sl->cat;
  out->choice = &sl->choice;
  out->params = ra_worlds_task (&s->worlds, i)->values;
  out->user = &e->user;
  out->theta = s->theta + (size_t) i * s->d;
  out->theta_hat = s->theta_hat + (size_t) i * s->d;
  out->candidates = s->cand + (size_t) i * s->K;
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

const ra_sim_class_t ra_ecommerce_class = {
  .name = "ECommerce-v1",
  .description = "e-commerce funnel: slate of k from K candidates, logit click with position bias, "
                 "purchase under a budget; reward revenue",
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
