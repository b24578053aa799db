/*  env/sims/content.c - Content-v1 (docs/sims/content.md): each step the platform retrieves K
    candidate videos for a user, the agent shows a slate of k, the user clicks at most one (logit
    with a no-click option; any shared choice kind by config) and watches part of it. Watching
    spends the session's time budget; clickbait attracts clicks but is watched briefly and erodes a
    latent satisfaction that quality restores. When the budget runs out the session ends: the user
    leaves for good (churn, or a delay beyond the horizon) or returns after a delay that shrinks
    with satisfaction, so one episode spans several sessions. The shared dynamics switches
    (section 12) select Content-v1's own drift, time budget and return equations (on by default)
    and the shared topic boredom (off by default).

    Owns: one ra_sim_t per batch with everything allocated at create: per-env state (struct
    array plus pools for interests and candidate ids) and task_slots worlds (catalog plus video
    attributes), one per distinct task in the batch. reset and step allocate nothing.
    Threading: reset/step on disjoint [i0, i1) ranges may run concurrently (they touch only those
    envs' state and read the slots); create, destroy and set_task need exclusive access.        */
#include "env/sims/content.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "env/core/config.h"
#include "env/core/dynamics.h"
#include "env/core/reward.h"
#include "env/core/render.h"
#include "env/core/task.h"
#include "env/core/worlds.h"

#define S_SIM_KEY 0x436f6e74656e7431ULL   /* "Content1": keys task draws */
#define S_WORLD_STREAM 0x766964656f73ULL  /* "videos": keys the video attributes of a world */
#define S_MAX_SLATE RA_CHOICE_MAX_SLATE
#define S_MAX_K RA_CHOICE_MAX_CANDIDATES
#define S_MAX_STEPS 200
#define S_SESSION_NORM 20.0f              /* sessions: obs scale (9.1) */
#define S_SESSION_STEPS_NORM 50.0f        /* steps in a session: obs scale (9.1) */
#define S_CATALOG_BYTES_MAX ((size_t) 1 << 30)

/* ---- task parameters (section 8) ---- */

static const ra_task_param_def_t s_params[RA_CONTENT_P_COUNT] = {
  /* name                      train lo, hi    ood lo, hi    log    int    override min, max */
  { "world_seed",              0, 2147483647.0, 0, 2147483647.0, false, true, 0, 9007199254740992.0 },
  { "topic_skew",              0.5, 1.5,       1.8, 2.5,     false, false, 0, 5 },
  { "item_noise",              0.4, 0.8,       0.9, 1.2,     false, false, 0, 5 },
  { "interest_spread",         0.4, 0.8,       1.0, 1.4,     false, false, 0, 5 },
  { "obs_noise",               0.2, 0.4,       0.6, 0.9,     false, false, 0, 5 },
  { "choice_temperature",      0.18, 0.35,     0.35, 0.6,    false, false, 0.05, 5 },
  { "no_click_utility",        0.7, 1.3,       1.4, 1.9,     false, false, -3, 3 },
  { "position_bias",           0.0, 1.0,       1.5, 2.5,     false, false, 0, 5 },
  { "drift",                   0.05, 0.2,      0.3, 0.5,     false, false, 0, 1 },
  { "clickbait_prevalence",    0.15, 0.4,      0.5, 0.7,     false, false, 0, 1 },
  { "length_median",           3, 6,           8, 12,        true,  false, 0.25, 60 },
  { "satisfaction_sensitivity", 0.3, 0.8,      1.0, 1.5,     false, false, 0, 10 },
  { "memory_discount",         0.85, 0.95,     0.7, 0.8,     false, false, 0, 0.999 },
  { "time_budget",             20, 40,         8, 15,        true,  false, 1, 600 },
  { "return_delay_scale",      12, 36,         36, 60,       true,  false, 0.1, 1000 },
  { "return_horizon",          60, 96,         36, 48,       false, false, 1, 168 },
  { "churn_sensitivity",       4, 8,           10, 14,       false, false, 0, 100 },
};

static const double s_default_task[RA_CONTENT_P_COUNT] = {
  4321, 1.0, 0.6, 0.6, 0.3, 0.25, 1.0, 0.5, 0.1, 0.3, 4, 0.5, 0.9, 30, 24, 72, 6,
};

/* ---- rewards (section 10): metrics of a step and the named reward kinds ---- */

enum { S_M_WATCH = 0, S_M_CLICKS, S_M_RETURNED, S_M_LEFT, S_N_METRICS };
enum { S_R_WATCH = 0, S_R_CLICKS, S_R_WEIGHTED, S_N_REWARDS };
static const char *const s_metric_names[S_N_METRICS] = { "watch_time", "clicks", "returned", "left" };
static const char *const s_reward_names[S_N_REWARDS] = { "watch_time", "clicks", "weighted" };

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
  { .key = "reward", .type = RA_KV_STR, .str = "watch_time" },
  { .key = "reward_weights.watch_time", .type = RA_KV_NUM, .num = 1 },
  { .key = "reward_weights.clicks", .type = RA_KV_NUM, .num = 0 },
  { .key = "reward_weights.returned", .type = RA_KV_NUM, .num = 0 },
  { .key = "reward_weights.left", .type = RA_KV_NUM, .num = 0 },
  { .key = "oracle", .type = RA_KV_BOOL, .num = 0 },
  { .key = "task_slots", .type = RA_KV_NUM, .num = 16 },
  { .key = "hidden_tastes", .type = RA_KV_NUM, .num = 0 },   /* docs/sims/shared.md 4 */
  { .key = "position_bias", .type = RA_KV_NUM, .num = 0.5 },
  { .key = "no_click_utility", .type = RA_KV_NUM, .num = 1.0 },
  { .key = "drift", .type = RA_KV_NUM, .num = 0.1 },
  { .key = "choice_temperature", .type = RA_KV_NUM, .num = 0.25 },
  { .key = "time_budget", .type = RA_KV_NUM, .num = 30 },
  { .key = "return_delay_scale", .type = RA_KV_NUM, .num = 24 },
  /* section 12: the shared dynamics switches with Content-v1's defaults */
  { .key = "dynamics.drift", .type = RA_KV_BOOL, .num = 1 },
  { .key = "dynamics.boredom", .type = RA_KV_BOOL, .num = 0 },
  { .key = "dynamics.time_budget", .type = RA_KV_BOOL, .num = 1 },
  { .key = "dynamics.return", .type = RA_KV_BOOL, .num = 1 },
  { .key = "dynamics.boredom_rise", .type = RA_KV_NUM, .num = 0.3 },
  { .key = "dynamics.boredom_decay", .type = RA_KV_NUM, .num = 0.9 },
  { .key = "dynamics.boredom_timeout", .type = RA_KV_NUM, .num = 10 },
  { .key = "dynamics.boredom_weight", .type = RA_KV_NUM, .num = 1 },
  { .key = "dynamics.budget_mean", .type = RA_KV_NUM, .num = 30 },
  { .key = "dynamics.budget_spread", .type = RA_KV_NUM, .num = 0.3 },
  { .key = "dynamics.budget_step_cost", .type = RA_KV_NUM, .num = RA_CONTENT_BROWSE_COST },
  { .key = "dynamics.budget_refund", .type = RA_KV_NUM, .num = 0 },
  { .key = "dynamics.return_delay_min", .type = RA_KV_NUM, .num = 1 },
  { .key = "dynamics.return_delay_max", .type = RA_KV_NUM, .num = 10 },
  { .key = "dynamics.return_churn_max", .type = RA_KV_NUM, .num = 0.5 },
  { .key = "dynamics.return_max_sessions", .type = RA_KV_NUM, .num = 3 },
};
#define S_N_CONFIG ((int) (sizeof s_config_defaults / sizeof s_config_defaults[0]))

static const char s_known_keys[] =
    "num_candidates, slate_size, embedding_dim, num_items, num_topics, retrieval_mix, choice_model, "
    "cascade_continue, reward, reward_weights.{watch_time,clicks,returned,left}, reward_plugin.<key>, oracle, task_slots, hidden_tastes, position_bias, "
    "no_click_utility, drift, choice_temperature, time_budget, return_delay_scale, " RA_DYNAMICS_KNOWN_KEYS;

/* Config keys that set the default task's parameter of the same name (section 8.3). */
static const int s_config_task_keys[] = { RA_CONTENT_P_POSITION_BIAS, RA_CONTENT_P_NO_CLICK,
                                          RA_CONTENT_P_DRIFT, RA_CONTENT_P_TEMPERATURE,
                                          RA_CONTENT_P_TIME_BUDGET, RA_CONTENT_P_RETURN_DELAY };

/* ---- state ---- */

enum { S_OBS_USER = 0, S_OBS_CANDIDATES, S_OBS_RESPONSE, S_OBS_ITEM_IDS, S_N_OBS };
enum { S_INFO_ITEM = 0, S_INFO_CLICKED, S_INFO_WATCH, S_INFO_SATISFACTION, S_INFO_SESSION_ENDED,
       S_INFO_RETURNED, S_INFO_LEFT, S_INFO_SESSION, S_INFO_TIME_AWAY, S_INFO_ORACLE_REWARD,
       S_INFO_REGRET, S_INFO_ORACLE_SLATE, S_N_INFO_MAX };
#define S_USER_EXTRA 5   /* T / T0, session, time away, session steps, session click rate (9.1) */
#define S_CAND_EXTRA 3   /* length feature, clickbait estimate, quality estimate (9.1) */

typedef struct {
  ra_catalog_t cat;                     /* topics and embeddings; its prices are unused */
  ra_user_pop_t pop;
  ra_choice_t choice;
  float *feat;                          /* n_items x f_cand: x (d), f_len, chat, qhat */
  float *clickbait;                     /* n_items: c_j in [0, 1] */
  float *quality;                       /* n_items: q_j in (0, 1) */
  float *length;                        /* n_items: L_j in minutes */
  float inv_temp;                       /* 1 / choice_temperature */
  float drift;                          /* alpha in [0, 1] */
  float kappa;                          /* satisfaction sensitivity */
  float memory;                         /* m, memory discount in [0, 1) */
  float time_budget;                    /* median session budget (minutes) */
  float delay_scale;                    /* hours */
  float horizon;                        /* hours */
  float churn_sens;                     /* rho */
} s_slot_t;

typedef struct {
  ra_rng_t rng;
  ra_content_user_t user;
  int steps;                            /* steps taken this episode */
  int sess_steps;                       /* steps taken this session */
  int sess_clicks;                      /* clicks this session */
  int near_topic;                       /* argmax_t c_t . theta_hat (section 11) */
  float oracle_value;                   /* best slate's expected reward for the current obs */
  int32_t oracle_slate[S_MAX_SLATE];
  int32_t last_items[S_MAX_SLATE];      /* the last slate shown (catalog ids); -1 before any */
  int last_click;                       /* slot clicked, -1 for none */
  float last_watch;                     /* minutes watched at the last step */
  int streak;                           /* 12.3 steps in a row without a click this session
                                           (kept only with dynamics.time_budget off) */
} s_env_t;

struct ra_sim {
  int num_envs, K, k, d, n_items, n_topics, n_near;
  int f_user, f_cand, f_resp;           /* per-row widths of the observation fields */
  bool oracle;
  int choice_kind;                      /* ra_choice_kind_t of every slot (config choice_model) */
  double cascade_continue;              /* config cascade_continue */
  float w[S_N_METRICS];                 /* reward = sum_m w[m] * total[m] (10.1) */
  const ra_reward_plugin_v1_t *plugin;  /* 10.3 reward = "plugin:<name>", else NULL */
  void *plugin_state;                   /* owned */
  ra_dynamics_t dyn;                    /* section 12: switches; bored with dynamics.boredom;
                                           budget.step_cost is c_b (5.2) */
  ra_boredom_topic_t *bored;            /* num_envs x n_topics with dynamics.boredom, else NULL (12.2) */
  ra_sim_spec_t spec;
  int n_slots;                          /* length of slots[] (the worlds table's n_slots) */
  ra_worlds_t worlds;                   /* which task each slot holds, which slot each env runs */
  s_slot_t *slots;
  s_env_t *envs;
  float *theta;                         /* num_envs x d */
  float *theta_hat;                     /* num_envs x d */
  int32_t *cand;                        /* num_envs x K */
  double default_task[RA_CONTENT_P_COUNT]; /* after config */
};

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

static float s_clampf (float x, float lo, float hi)
{
  return x < lo ? lo : x > hi ? hi : x;
}

/* 5.1 watched fraction of a clicked video */
static inline float s_watch_frac (float aff, float q, float c, float sat)
{
  return s_sigmoid (RA_CONTENT_WATCH_BIAS + RA_CONTENT_WATCH_AFFINITY * aff + RA_CONTENT_WATCH_QUALITY * q
                    - RA_CONTENT_WATCH_CLICKBAIT * c + RA_CONTENT_WATCH_SATISFACTION * (sat - 0.5f));
}

/* 4.3 expected reward given a click on item j: w_clicks + w_watch min(L_j phi_j, T) */
static inline float s_gain (const ra_sim_t *s, const s_slot_t *sl, const ra_content_user_t *u, int j,
                            float aff)
{
  float wt = sl->length[j] * s_watch_frac (aff, sl->quality[j], sl->clickbait[j], u->satisfaction);
  if (wt > u->budget && s->dyn.time_budget)
    wt = u->budget;
  return s->w[S_M_CLICKS] + s->w[S_M_WATCH] * wt;
}

/* 3.2 a session's time budget T0 = clamp(time_budget exp(0.3 z - 0.045), 1, BUDGET_MAX) */
static void s_new_session_budget (const s_slot_t *sl, s_env_t *e)
{
  double z = ra_rng_normal (&e->rng);
  float b = (float) (sl->time_budget * exp (0.3 * z - 0.045));
  e->user.budget0 = e->user.budget = s_clampf (b, 1.0f, RA_CONTENT_BUDGET_MAX);
}

/* 9.1 user and candidate rows */
static void s_write_obs (const ra_sim_t *s, int i, const s_slot_t *sl, const s_env_t *e,
                         const ra_sim_buffers_t *buf)
{
  const int d = s->d;
  float *u = (float *) buf->obs[S_OBS_USER] + (size_t) i * s->f_user;
  const float *th = s->theta_hat + (size_t) i * d;
  for (int q = 0; q < d; q++)
    u[q] = th[q];
  const ra_content_user_t *us = &e->user;
  float bf = us->budget / us->budget0;
  u[d] = s_clampf (bf, 0.0f, 1.0f);
  u[d + 1] = s_clampf ((float) us->session * (1.0f / S_SESSION_NORM), 0.0f, 1.0f);
  u[d + 2] = s_clampf (us->time_away * (1.0f / RA_CONTENT_DELAY_NORM), 0.0f, 1.0f);
  u[d + 3] = s_clampf ((float) e->sess_steps * (1.0f / S_SESSION_STEPS_NORM), 0.0f, 1.0f);
  float cr = e->sess_steps > 0 ? (float) e->sess_clicks / (float) e->sess_steps : 0.0f;
  u[d + 4] = cr > 1.0f ? 1.0f : cr;   /* several clicks per step are possible (cascade, position_based) */

  const int32_t *cand = s->cand + (size_t) i * s->K;
  const size_t f = (size_t) s->f_cand;
  float *row = (float *) buf->obs[S_OBS_CANDIDATES] + (size_t) i * s->K * f;
  /* item_ids: the candidates' catalog ids (one memcpy costs less than a store per row below) */
  memcpy ((int32_t *) buf->obs[S_OBS_ITEM_IDS] + (size_t) i * s->K, cand, (size_t) s->K * sizeof (int32_t));
  for (int r = 0; r < s->K; r++, row += f) {   /* a plain loop: a memcpy call per short row costs more */
    const float *src = sl->feat + (size_t) cand[r] * f;
    for (size_t q = 0; q < f; q++)
      row[q] = src[q];
  }
}

/* 4.3 the exact best slate among the current candidates; caches it in e. */
static void s_oracle (const ra_sim_t *s, int i, const s_slot_t *sl, s_env_t *e)
{
  float a[S_MAX_K], g[S_MAX_K];
  const float *theta = s->theta + (size_t) i * s->d;
  const int32_t *cand = s->cand + (size_t) i * s->K;
  for (int r = 0; r < s->K; r++) {
    int j = cand[r];
    float aff = ra_users_dot (theta, sl->feat + (size_t) j * s->f_cand, s->d);
    float v = (aff + RA_CONTENT_CLICKBAIT_ATTRACTION * sl->clickbait[j]) * sl->inv_temp;
    if (s->bored)   /* 12.2 */
      v -= ra_boredom_penalty (&s->dyn.bored, &s->bored[(size_t) i * s->n_topics + sl->cat.topic[j]], e->steps);
    a[r] = ra_choice_attraction (&sl->choice, v);
    g[r] = s_gain (s, sl, &e->user, j, aff);
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
    for (int t = 0; t < s->n_slots; t++) {
      s_slot_t *sl = &s->slots[t];
      ra_catalog_fini (&sl->cat);
      free (sl->feat);
      free (sl->clickbait);
      free (sl->quality);
      free (sl->length);
    }
  free (s->slots);
  ra_worlds_fini (&s->worlds);
  free (s->envs);
  free (s->theta);
  free (s->theta_hat);
  free (s->cand);
  free (s->bored);
  if (s->plugin)
    s->plugin->destroy (s->plugin_state);
  free (s);
  *sim_p = NULL;
}

/* Fills slot t with the world and population of task v (sections 2 and 8). */
static void s_slot_build (ra_sim_t *s, int t, const ra_task_values_t *v)
{
  s_slot_t *sl = &s->slots[t];
  const double *p = v->values;
  const int d = s->d, f = s->f_cand;
  /* 2.1 topics, popularity, embeddings and base quality from the shared catalog */
  ra_catalog_params_t cp = { .world_seed = (uint64_t) p[RA_CONTENT_P_WORLD_SEED],
                             .topic_skew = p[RA_CONTENT_P_TOPIC_SKEW],
                             .item_noise = p[RA_CONTENT_P_ITEM_NOISE],
                             .price_median = 20.0 };
  ra_catalog_build (&sl->cat, &cp);
  /* 2.2 video attributes, item by item from the world's "videos" stream */
  ra_rng_t rng;
  ra_rng_seed (&rng, cp.world_seed, S_WORLD_STREAM);
  const double prev = p[RA_CONTENT_P_CLICKBAIT_PREVALENCE], lmed = p[RA_CONTENT_P_LENGTH_MEDIAN];
  const double len_norm = 1.0 / log ((double) RA_CONTENT_LENGTH_MAX / RA_CONTENT_LENGTH_MIN);
  for (int j = 0; j < s->n_items; j++) {
    bool bait = ra_rng_uniform_f64 (&rng) < prev;
    double u = ra_rng_uniform_f64 (&rng);
    float c = (float) (bait ? 0.6 + 0.4 * u : 0.2 * u);
    float q = sl->cat.quality[j] * (1.0f - 0.5f * c);
    float len = s_clampf ((float) (lmed * exp (0.6 * ra_rng_normal (&rng))), RA_CONTENT_LENGTH_MIN,
                          RA_CONTENT_LENGTH_MAX);
    float chat = s_clampf (c + 0.1f * (float) ra_rng_normal (&rng), 0.0f, 1.0f);
    float qhat = s_clampf (q + 0.1f * (float) ra_rng_normal (&rng), 0.0f, 1.0f);
    sl->clickbait[j] = c;
    sl->quality[j] = q;
    sl->length[j] = len;
    float *row = sl->feat + (size_t) j * f;
    memcpy (row, sl->cat.feat + (size_t) j * sl->cat.stride, (size_t) d * sizeof (float));
    row[d] = s_clampf ((float) (log (len / RA_CONTENT_LENGTH_MIN) * len_norm), 0.0f, 1.0f);
    row[d + 1] = chat;
    row[d + 2] = qhat;
  }
  sl->pop = (ra_user_pop_t) { .interest_spread = p[RA_CONTENT_P_INTEREST_SPREAD],
                              .obs_noise = p[RA_CONTENT_P_OBS_NOISE],
                              .budget_mean = 1, .price_sensitivity = 1, .patience_mean = 1 };
  ra_users_hide_tastes (&sl->pop, ra_worlds_hidden (&s->worlds, v), ra_task_key (S_SIM_KEY, v->split, v->id),
                       sl->cat.n_topics);   /* shared.md 4 */
  double tau = p[RA_CONTENT_P_TEMPERATURE];
  ra_choice_init (&sl->choice, (ra_choice_kind_t) s->choice_kind, s->k, p[RA_CONTENT_P_POSITION_BIAS],
                  p[RA_CONTENT_P_NO_CLICK] / tau);
  ra_choice_set_continue (&sl->choice, s->cascade_continue);
  sl->inv_temp = (float) (1.0 / tau);
  sl->drift = (float) p[RA_CONTENT_P_DRIFT];
  sl->kappa = (float) p[RA_CONTENT_P_SAT_SENSITIVITY];
  sl->memory = (float) p[RA_CONTENT_P_MEMORY];
  sl->time_budget = (float) p[RA_CONTENT_P_TIME_BUDGET];
  sl->delay_scale = (float) p[RA_CONTENT_P_RETURN_DELAY];
  sl->horizon = (float) p[RA_CONTENT_P_RETURN_HORIZON];
  sl->churn_sens = (float) p[RA_CONTENT_P_CHURN_SENSITIVITY];
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
  double mix, cascade_continue, w[S_N_METRICS];
  int choice_kind, reward_kind;
  bool oracle;
  double task_defaults[RA_CONTENT_P_COUNT];
  memcpy (task_defaults, s_default_task, sizeof task_defaults);
  const ra_reward_plugin_v1_t *plugin = NULL;   /* 10.3 owned here until s takes it */
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
  S_TRY (ra_config_get_num (&cfg, "retrieval_mix", 0.5, 0, 1, &mix, err));
  S_TRY (ra_config_get_enum (&cfg, "choice_model", RA_CHOICE_LOGIT, ra_choice_names, RA_CHOICE_COUNT,
                             &choice_kind, err));
  S_TRY (ra_config_get_num (&cfg, "cascade_continue", RA_CHOICE_CONTINUE_DEFAULT, 0, 1, &cascade_continue, err));
  /* 10.1 reward kind and weights */
  reward_kind = S_R_WATCH;   /* 10.3 with a plugin, its default_reward */
  if (!ra_reward_is_plugin (&cfg))
    S_TRY (ra_config_get_enum (&cfg, "reward", S_R_WATCH, s_reward_names, S_N_REWARDS, &reward_kind, err));
  for (int m = 0; m < S_N_METRICS; m++) {
    char key[64];
    snprintf (key, sizeof key, "reward_weights.%s", s_metric_names[m]);
    S_TRY (ra_config_get_num (&cfg, key, m == S_M_WATCH ? 1.0 : 0.0, -1e6, 1e6, &w[m], err));
  }
  S_TRY (ra_reward_plugin_from_config (&cfg, (int) args->num_envs, &plugin, &pstate, err));
  S_TRY (ra_config_get_bool (&cfg, "oracle", false, &oracle, err));
  S_TRY (ra_config_get_int (&cfg, "task_slots", 16, 1, 4096, &slots, err));
  double hidden_tastes;   /* shared.md 4 */
  S_TRY (ra_config_get_num (&cfg, "hidden_tastes", 0, 0, 1, &hidden_tastes, err));
  for (size_t q = 0; q < sizeof s_config_task_keys / sizeof s_config_task_keys[0]; q++) {
    const ra_task_param_def_t *pd = &s_params[s_config_task_keys[q]];
    S_TRY (ra_config_get_num (&cfg, pd->name, task_defaults[s_config_task_keys[q]], pd->min, pd->max,
                              &task_defaults[s_config_task_keys[q]], err));
  }
  /* section 12: the shared dynamics from Content-v1's defaults; budget_mean maps onto the default
     task's time_budget, spread and refund are fixed by 3.2 and 5.2 */
  ra_dynamics_t dyn;
  ra_dynamics_defaults (&dyn);
  dyn.drift = true;
  dyn.boredom = false;
  dyn.time_budget = true;
  dyn.budget = (ra_time_budget_t) { .mean = (float) task_defaults[RA_CONTENT_P_TIME_BUDGET], .spread = 0.3f,
                                    .step_cost = RA_CONTENT_BROWSE_COST, .refund = 0 };
  dyn.ret = true;
  S_TRY (ra_dynamics_from_config (&cfg, &dyn, err));
  double fixed;
  S_TRY (ra_config_get_num (&cfg, "dynamics.budget_mean", task_defaults[RA_CONTENT_P_TIME_BUDGET], 1, 600,
                            &task_defaults[RA_CONTENT_P_TIME_BUDGET], err));
  S_TRY (ra_config_get_num (&cfg, "dynamics.budget_spread", 0.3, 0.3, 0.3, &fixed, err));
  S_TRY (ra_config_get_num (&cfg, "dynamics.budget_refund", 0, 0, 0, &fixed, err));
  S_TRY (ra_config_check_unknown (&cfg, s_known_keys, err));
  ra_task_values_t task0;
  S_TRY (ra_task_resolve (s_params, RA_CONTENT_P_COUNT, S_SIM_KEY, task_defaults, args->task, &task0, err));
#undef S_TRY
  slots = ra_worlds_count (slots, args->num_envs);
  size_t cat_bytes = (size_t) n_items * ((size_t) (2 * d + RA_CATALOG_N_EXTRA + S_CAND_EXTRA + 8) * 4)
                     + (size_t) n_topics * (size_t) d * 4;
  if (cat_bytes * (size_t) slots > S_CATALOG_BYTES_MAX)
    S_FAIL (ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                          "task_slots %lld x num_items %lld x embedding_dim %lld needs %zu MiB of worlds, "
                          "expected at most %zu MiB", (long long) slots, (long long) n_items, (long long) d,
                          cat_bytes * (size_t) slots >> 20, S_CATALOG_BYTES_MAX >> 20));

  if (!out) {   /* check only (s_check): the checks above passed */
    if (plugin)
      plugin->destroy (pstate);
    return RA_OK;
  }
  ra_sim_t *s = calloc (1, sizeof *s);
  if (!s)
    S_FAIL (ra_error_set (err, RA_ERR_NOMEM, -1, "Content-v1: out of memory"));
#undef S_FAIL
  s->plugin = plugin;
  s->plugin_state = pstate;
  s->choice_kind = choice_kind;
  s->cascade_continue = cascade_continue;
  s->num_envs = args->num_envs;
  s->K = (int) K;
  s->k = (int) k;
  s->d = (int) d;
  s->n_items = (int) n_items;
  s->n_topics = (int) n_topics;
  s->n_near = (int) lround (mix * (double) K);   /* 11.1 */
  s->oracle = oracle;
  s->dyn = dyn;
  for (int m = 0; m < S_N_METRICS; m++)   /* 10.1 named kinds are one-hot */
    s->w[m] = reward_kind == S_R_WEIGHTED ? (float) w[m]
              : (float) ((reward_kind == S_R_WATCH && m == S_M_WATCH) || (reward_kind == S_R_CLICKS && m == S_M_CLICKS));
  s->f_user = s->d + S_USER_EXTRA;
  s->f_cand = s->d + S_CAND_EXTRA;
  s->f_resp = 2 * s->k + 1;
  memcpy (s->default_task, task_defaults, sizeof task_defaults);
  s->n_slots = (int) slots;
  size_t N = (size_t) s->num_envs;
  s->slots = calloc ((size_t) slots, sizeof *s->slots);
  s->envs = calloc (N, sizeof *s->envs);
  s->theta = calloc (N * (size_t) d, sizeof (float));
  s->theta_hat = calloc (N * (size_t) d, sizeof (float));
  s->cand = calloc (N * (size_t) K, sizeof (int32_t));
  if (dyn.boredom)
    s->bored = calloc (N * (size_t) n_topics, sizeof *s->bored);
  if (!s->slots || !s->envs || !s->theta || !s->theta_hat || !s->cand || (dyn.boredom && !s->bored))
    goto nomem;
  for (int t = 0; t < s->n_slots; t++) {
    s_slot_t *sl = &s->slots[t];
    if (ra_catalog_init (&sl->cat, s->n_items, s->n_topics, s->d, err) != RA_OK)
      goto nomem;
    sl->feat = malloc ((size_t) n_items * (size_t) s->f_cand * sizeof (float));
    sl->clickbait = malloc ((size_t) n_items * sizeof (float));
    sl->quality = malloc ((size_t) n_items * sizeof (float));
    sl->length = malloc ((size_t) n_items * sizeof (float));
    if (!sl->feat || !sl->clickbait || !sl->quality || !sl->length)
      goto nomem;
  }
  if (ra_worlds_init (&s->worlds, s->n_slots, s->num_envs, RA_CONTENT_P_COUNT, &task0) != RA_OK)
    goto nomem;
  s->worlds.hidden_tastes = hidden_tastes;   /* before any world is built */
  s_slot_build (s, 0, &task0);
  for (int i = 0; i < s->num_envs; i++) {
    s_env_t *e = &s->envs[i];
    ra_rng_seed (&e->rng, args->seed + (uint64_t) i, 0);   /* section 1: env i from seed + i */
    e->last_click = -1;
    e->user.budget0 = e->user.budget = 1;
    for (int r = 0; r < S_MAX_SLATE; r++)
      e->last_items[r] = -1;
  }

  /* spec (section 9) */
  ra_sim_spec_t *sp = &s->spec;
  sp->num_candidates = s->K;
  sp->slate_size = s->k;
  sp->n_obs = S_N_OBS;
  s_field (&sp->obs[S_OBS_USER], "user", RA_DTYPE_F32, 1, s->f_user, 0, -1, 1);
  s_field (&sp->obs[S_OBS_CANDIDATES], "candidates", RA_DTYPE_F32, 2, s->K, s->f_cand, -1, 1);
  s_field (&sp->obs[S_OBS_RESPONSE], "response", RA_DTYPE_F32, 1, s->f_resp, 0, 0, 1);
  s_field (&sp->obs[S_OBS_ITEM_IDS], "item_ids", RA_DTYPE_I32, 1, s->K, 0, 0, s->n_items - 1);
  s_field (&sp->info[S_INFO_ITEM], "item", RA_DTYPE_I32, 1, s->k, 0, 0, s->n_items - 1);
  s_field (&sp->info[S_INFO_CLICKED], "clicked", RA_DTYPE_BOOL, 1, s->k, 0, 0, 1);
  s_field (&sp->info[S_INFO_WATCH], "watch_time", RA_DTYPE_F32, 1, s->k, 0, 0, RA_CONTENT_LENGTH_MAX);
  s_field (&sp->info[S_INFO_SATISFACTION], "satisfaction", RA_DTYPE_F32, 0, 0, 0, 0, 1);
  s_field (&sp->info[S_INFO_SESSION_ENDED], "session_ended", RA_DTYPE_BOOL, 0, 0, 0, 0, 1);
  s_field (&sp->info[S_INFO_RETURNED], "returned", RA_DTYPE_BOOL, 0, 0, 0, 0, 1);
  s_field (&sp->info[S_INFO_LEFT], "left", RA_DTYPE_BOOL, 0, 0, 0, 0, 1);
  s_field (&sp->info[S_INFO_SESSION], "session", RA_DTYPE_I32, 0, 0, 0, 0, 2147483647.0);
  s_field (&sp->info[S_INFO_TIME_AWAY], "time_away", RA_DTYPE_F32, 0, 0, 0, 0, RA_CONTENT_DELAY_NORM);
  sp->n_info = S_INFO_TIME_AWAY + 1;
  if (s->oracle) {
    s_field (&sp->info[S_INFO_ORACLE_REWARD], "oracle_reward", RA_DTYPE_F32, 0, 0, 0, -INFINITY, INFINITY);
    s_field (&sp->info[S_INFO_REGRET], "regret", RA_DTYPE_F32, 0, 0, 0, 0, INFINITY);
    s_field (&sp->info[S_INFO_ORACLE_SLATE], "oracle_slate", RA_DTYPE_I32, 1, s->k, 0, 0, s->K - 1);
    sp->n_info = S_N_INFO_MAX;
  }
  /* 10.2 per-step metric bounds: mc clicks (1 for logit and proportional, else k) of at most
     LENGTH_MAX minutes each, one return, one leave */
  double mc = s->choice_kind == RA_CHOICE_LOGIT || s->choice_kind == RA_CHOICE_PROPORTIONAL ? 1 : s->k;
  double mmax[S_N_METRICS] = { mc * RA_CONTENT_LENGTH_MAX, mc, 1, 1 };
  sp->reward_range[0] = sp->reward_range[1] = 0;
  for (int m = 0; m < S_N_METRICS; m++) {
    double v = s->w[m] * mmax[m];
    sp->reward_range[v < 0 ? 0 : 1] += v;
  }
  if (s->plugin)   /* 10.3 */
    ra_reward_plugin_range (s->plugin, s->plugin_state, sp->reward_range);
  sp->max_episode_steps = S_MAX_STEPS;
  *out = s;
  return RA_OK;
nomem:
  s_destroy (&s);
  return ra_error_set (err, RA_ERR_NOMEM, -1, "Content-v1 with %lld envs: out of memory", (long long) N);
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
    ra_user_t core;
    ra_users_draw (&sl->pop, &sl->cat, &e->rng, &core, theta, theta_hat);   /* 3.1 */
    e->user = (ra_content_user_t) { .topic = core.topic, .exposure = 0, .satisfaction = 0.5f };
    s_new_session_budget (sl, e);   /* 3.2 */
    e->steps = e->sess_steps = e->sess_clicks = 0;
    e->streak = 0;
    if (s->bored)
      ra_boredom_reset (s->bored + (size_t) i * s->n_topics, s->n_topics);
    e->near_topic = ra_catalog_near_topic (&sl->cat, theta_hat);
    e->last_click = -1;
    e->last_watch = 0;
    for (int r = 0; r < S_MAX_SLATE; r++)
      e->last_items[r] = -1;
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
  const int d = s->d, k = s->k, K = s->K, f = s->f_cand;
  for (int i = i0; i < i1; i++) {
    s_env_t *e = &s->envs[i];
    const s_slot_t *sl = &s->slots[s->worlds.cur[i]];
    ra_content_user_t *u = &e->user;
    float *theta = s->theta + (size_t) i * d, *theta_hat = s->theta_hat + (size_t) i * d;
    int32_t *cand = s->cand + (size_t) i * K;
    const int32_t *act = actions + (size_t) i * k;
    int32_t item[S_MAX_SLATE];
    uint8_t clicked[S_MAX_SLATE];
    float v[S_MAX_SLATE], aff[S_MAX_SLATE], watch[S_MAX_SLATE];
    for (int r = 0; r < k; r++) {
      int j = cand[act[r]];
      item[r] = j;
      aff[r] = ra_users_dot (theta, sl->feat + (size_t) j * f, d);
      v[r] = (aff[r] + RA_CONTENT_CLICKBAIT_ATTRACTION * sl->clickbait[j]) * sl->inv_temp;   /* 4.1 */
      watch[r] = 0;
    }
    ra_boredom_topic_t *bored = s->bored ? s->bored + (size_t) i * s->n_topics : NULL;
    if (bored)   /* 12.2 topic boredom lowers the utility */
      for (int r = 0; r < k; r++)
        v[r] -= ra_boredom_penalty (&s->dyn.bored, &bored[sl->cat.topic[item[r]]], e->steps);
    float regret = 0, oracle_value = e->oracle_value;
    if (s->oracle) {   /* 4.3 regret of the shown slate against the best one, both expected */
      float g[S_MAX_SLATE];
      for (int r = 0; r < k; r++)
        g[r] = s_gain (s, sl, u, item[r], aff[r]);
      regret = oracle_value - ra_choice_expected (&sl->choice, v, g);
      if (regret < 0)
        regret = 0;
    }
    int n_clicks = ra_choice_sample (&sl->choice, v, &e->rng, clicked);   /* 4.2 */
    float total_watch = 0;
    e->last_click = -1;
    if (n_clicks > 0) {
      for (int r = 0; r < k; r++) {
        if (!clicked[r] || u->budget <= 0)
          continue;
        int j = item[r];
        float q = sl->quality[j], c = sl->clickbait[j];
        float phi = s_watch_frac (aff[r], q, c, u->satisfaction);   /* 5.1 */
        float wt = sl->length[j] * phi;
        if (s->dyn.time_budget) {
          if (wt > u->budget)
            wt = u->budget;
          u->budget -= wt;                                          /* 5.2 */
        }
        watch[r] = wt;
        total_watch += wt;
        u->exposure = sl->memory * u->exposure + (q - c);           /* 6.1 */
        u->satisfaction = s_sigmoid (sl->kappa * u->exposure);      /* 6.2 */
        if (s->dyn.drift) {
          const float *x = sl->feat + (size_t) j * f;
          ra_users_drift (theta, x, sl->drift * phi, d);             /* 3.3 */
          ra_users_drift (theta_hat, x, sl->drift * phi, d);
        }
        if (bored)
          ra_boredom_consume (&s->dyn.bored, &bored[sl->cat.topic[j]], e->steps, phi);   /* 12.2 */
        e->last_click = r;
      }
      if (s->dyn.drift)
        e->near_topic = ra_catalog_near_topic (&sl->cat, theta_hat);
    }
    bool ended;
    if (s->dyn.time_budget) {
      u->budget -= s->dyn.budget.step_cost;                          /* 5.2 */
      ended = u->budget <= 0;
    } else {   /* 12.3 the session ends at RA_CONTENT_PATIENCE slates in a row without a click */
      e->streak = n_clicks > 0 ? 0 : e->streak + 1;
      ended = e->streak >= RA_CONTENT_PATIENCE;
    }
    e->steps++;
    e->sess_steps++;
    e->sess_clicks += n_clicks;
    e->last_watch = total_watch;
    for (int r = 0; r < k; r++)
      e->last_items[r] = item[r];

    /* 7 session end: leave (churn or a delay past the horizon) or return after the delay */
    bool returned = false, left = false;
    float away = 0;
    if (ended && !s->dyn.ret) {   /* 12.4 no return: the episode ends with the session */
      left = true;
    } else if (ended) {
      float s_gap = 0.5f - u->satisfaction;
      float p_leave = s_sigmoid (RA_CONTENT_CHURN_BIAS + sl->churn_sens * s_gap);          /* 7.1 */
      if (ra_rng_uniform (&e->rng) < p_leave) {
        left = true;
      } else {
        float mean = sl->delay_scale * expf (RA_CONTENT_DELAY_SLOPE * s_gap);             /* 7.2 */
        float delay = -mean * logf (1.0f - ra_rng_uniform (&e->rng));
        if (delay > sl->horizon) {
          left = true;
        } else {
          returned = true;
          away = delay;
          u->session++;
          u->time_away = delay;
          s_new_session_budget (sl, e);   /* 3.2 */
          e->sess_steps = e->sess_clicks = 0;
          e->streak = 0;
          if (bored)   /* 12.2 hours away clear every topic's boredom */
            ra_boredom_reset (bored, s->n_topics);
        }
      }
    }
    buf->terminated[i] = left;
    /* 10.1 reward */
    buf->reward[i] = s->w[S_M_WATCH] * total_watch + s->w[S_M_CLICKS] * (float) n_clicks
                     + s->w[S_M_RETURNED] * (float) returned + s->w[S_M_LEFT] * (float) left;
    if (s->plugin) {   /* 10.3 the plugin's view of the step's event record */
      int32_t topic[S_MAX_SLATE];
      for (int r = 0; r < k; r++)
        topic[r] = sl->cat.topic[item[r]];
      ra_reward_event_v1_t view = { .size = sizeof view, .version = RA_REWARD_EVENT_VERSION, .k = k,
                                    .step = e->steps - 1, .item = item, .topic = topic, .clicked = clicked,
                                    .dwell = watch, .left = left, .returned = returned };
      buf->reward[i] = ra_reward_plugin_eval (s->plugin, s->plugin_state, &view, buf->reward[i], i);
    }

    /* 9.2 info rows */
    memcpy ((int32_t *) buf->info[S_INFO_ITEM] + (size_t) i * k, item, (size_t) k * sizeof (int32_t));
    memcpy ((uint8_t *) buf->info[S_INFO_CLICKED] + (size_t) i * k, clicked, (size_t) k);
    memcpy ((float *) buf->info[S_INFO_WATCH] + (size_t) i * k, watch, (size_t) k * sizeof (float));
    ((float *) buf->info[S_INFO_SATISFACTION])[i] = u->satisfaction;
    ((uint8_t *) buf->info[S_INFO_SESSION_ENDED])[i] = ended;
    ((uint8_t *) buf->info[S_INFO_RETURNED])[i] = returned;
    ((uint8_t *) buf->info[S_INFO_LEFT])[i] = left;
    ((int32_t *) buf->info[S_INFO_SESSION])[i] = u->session;
    ((float *) buf->info[S_INFO_TIME_AWAY])[i] = away;

    /* 9.1 next observation: response row, new candidates */
    float *resp = (float *) buf->obs[S_OBS_RESPONSE] + (size_t) i * s->f_resp;
    for (int r = 0; r < k; r++) {
      resp[r] = clicked[r];
      resp[k + r] = watch[r] / sl->length[item[r]];
    }
    resp[2 * k] = returned;
    ra_catalog_retrieve (&sl->cat, e->near_topic, s->n_near, s->K, &e->rng, cand);
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
static const ra_worlds_def_t s_worlds_def = { s_params, RA_CONTENT_P_COUNT, S_SIM_KEY, s_slot_build };

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
  const ra_content_user_t *u = &e->user;
  return snprintf (buf, cap,
                   "Content-v1 env %d (task %s/%lld) step %d: user topic %d, session %d (%.1f h away), "
                   "time left %.2f of %.2f min, satisfaction %.3f; last slate [%s], clicked slot %d, "
                   "watched %.2f min\n",
                   env_index, ra_split_names[task->split], (long long) task->id, e->steps, u->topic,
                   u->session, u->time_away, u->budget, u->budget0, u->satisfaction, slate, e->last_click,
                   e->last_watch);
}

void ra_content_view (const ra_sim_t *s, int i, ra_content_view_t *out)
{
  assert (i >= 0 && i < s->num_envs);
  const s_env_t *e = &s->envs[i];
  const s_slot_t *sl = &s->slots[s->worlds.cur[i]];
  out->catalog = &sl->cat;
  out->clickbait = sl->clickbait;
  out->quality = sl->quality;
  out->length = sl->length;
  out->choice = &sl->choice;
  out->params = ra_worlds_task (&s->worlds, i)->values;
  out->user = &e->user;
  out->theta = s->theta + (size_t) i * s->d;
  out->theta_hat = s->theta_hat + (size_t) i * s->d;
  out->candidates = s->cand + (size_t) i * s->K;
  out->steps = e->steps;
}

static ra_err_t s_check (const ra_sim_args_t *args, ra_error_t *err)
{
  return s_create (args, NULL, err);
}

const ra_sim_class_t ra_content_class = {
  .name = "Content-v1",
  .description = "short videos: watch time under a session time budget, clickbait erodes a latent "
                 "satisfaction that drives churn and return delays; episodes span sessions; reward watch time",
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
