/*  env/sims/news.c - News-v1 (docs/sims/news.md): every step M new articles are published into
    each env's own stream (a ring of M x max_age live articles: the oldest M expire), sometimes
    in a breaking-news burst on one topic; the platform retrieves K of the live articles (the
    newest plus some on the user's estimated topic), the agent shows a slate of k, the user clicks
    any number of them (the shared click models of env/core/choice.h, "cascade" by default) and reads
    each clicked article for a log-normal dwell time. Attraction decays with article age, and
    with the user's satiation on the article's topic, which rises with clicks and recovers over
    time. The session ends when the user's time budget is spent or patience runs out. The shared
    dynamics (section 11) are switchable: drift (off), satiation as the shared boredom (on), the
    time budget (on), return between sessions (off).

    Owns: one ra_sim_t per batch with everything allocated at create: per-env state (struct array
    plus pools for interests, satiation, the article rings and candidate positions) and
    task_slots worlds, one per distinct task in the batch. reset and step allocate nothing.
    Threading: reset/step on disjoint [i0, i1) ranges may run concurrently (they touch only those
    envs' state and read the slots); create, destroy and set_task need exclusive access.        */
#include "env/sims/news.h"

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

#define S_SIM_KEY 0x4e6577732d763121ULL   /* "News-v1!": keys task draws */
#define S_MAX_SLATE RA_CHOICE_MAX_SLATE
#define S_MAX_K RA_CHOICE_MAX_CANDIDATES
#define S_MAX_STEPS 100
#define S_MAX_CAPACITY 4096               /* live articles per env (publish_rate x max_age) */
#define S_PREFETCH_BYTES ((size_t) 4 << 20) /* article state of a batch above which step prefetches (12.2) */
#define S_LN2 0.69314718055994531f

/* ---- task parameters (section 8) ---- */

static const ra_task_param_def_t s_params[RA_NEWS_P_COUNT] = {
  /* name                   train lo, hi    ood lo, hi     log    int    override min, max */
  { "world_seed",           0, 2147483647.0, 0, 2147483647.0, false, true, 0, 9007199254740992.0 },
  { "topic_concentration",  0.5, 1.5,       1.8, 2.5,      false, false, 0, 5 },
  { "item_noise",           0.4, 0.8,       0.9, 1.2,      false, false, 0, 5 },
  { "interest_spread",      0.4, 0.8,       1.0, 1.4,      false, false, 0, 5 },
  { "obs_noise",            0.2, 0.4,       0.6, 0.9,      false, false, 0, 5 },
  { "choice_temperature",   0.18, 0.35,     0.35, 0.6,     false, false, 0.05, 5 },
  { "no_click_utility",     0.7, 1.3,       1.4, 1.9,      false, false, -3, 3 },
  { "position_bias",        0.5, 1.5,       1.8, 2.5,      false, false, 0, 5 },
  { "freshness_half_life",  4, 12,          1.5, 3,        true,  false, 0.1, 1000 },
  { "burst_rate",           0.05, 0.15,     0.25, 0.4,     false, false, 0, 1 },
  { "satiation_rate",       0.2, 0.4,       0.5, 0.7,      false, false, 0, 1 },
  { "satiation_recovery",   3, 8,           10, 20,        true,  false, 0.1, 1000 },
  { "dwell_scale",          0.8, 1.5,       0.4, 0.7,      true,  false, 0.01, 100 },
  { "time_budget",          30, 60,         15, 25,        false, false, 1, 10000 },
  { "patience_mean",        4, 8,           2, 3,          false, false, 1, 500 },
};

static const double s_default_task[RA_NEWS_P_COUNT] = {
  4321, 1.0, 0.6, 0.6, 0.3, 0.25, 1.0, 1.0, 8, 0.1, 0.3, 5, 1.0, 40, 5,
};

/* ---- config (every key with its default, for the server's "list") ---- */

static const ra_kv_t s_config_defaults[] = {
  { .key = "num_candidates", .type = RA_KV_NUM, .num = 20 },
  { .key = "slate_size", .type = RA_KV_NUM, .num = 5 },
  { .key = "embedding_dim", .type = RA_KV_NUM, .num = 16 },
  { .key = "num_topics", .type = RA_KV_NUM, .num = 10 },
  { .key = "publish_rate", .type = RA_KV_NUM, .num = 3 },
  { .key = "max_age", .type = RA_KV_NUM, .num = 20 },
  { .key = "retrieval_mix", .type = RA_KV_NUM, .num = 0.5 },
  { .key = "choice_model", .type = RA_KV_STR, .str = "cascade" },
  { .key = "cascade_continue", .type = RA_KV_NUM, .num = RA_CHOICE_CONTINUE_DEFAULT },
  { .key = "reward", .type = RA_KV_STR, .str = "clicks_dwell" },
  { .key = "dwell_weight", .type = RA_KV_NUM, .num = 0.5 },
  { .key = "reward_weights.clicks", .type = RA_KV_NUM, .num = 1 },
  { .key = "reward_weights.dwell", .type = RA_KV_NUM, .num = 0.5 },
  { .key = "oracle", .type = RA_KV_BOOL, .num = 0 },
  { .key = "task_slots", .type = RA_KV_NUM, .num = 16 },
  { .key = "hidden_tastes", .type = RA_KV_NUM, .num = 0 },   /* docs/sims/shared.md 4 */
  { .key = "choice_temperature", .type = RA_KV_NUM, .num = 0.25 },
  { .key = "no_click_utility", .type = RA_KV_NUM, .num = 1.0 },
  { .key = "position_bias", .type = RA_KV_NUM, .num = 1.0 },
  { .key = "freshness_half_life", .type = RA_KV_NUM, .num = 8 },
  { .key = "burst_rate", .type = RA_KV_NUM, .num = 0.1 },
  { .key = "dwell_scale", .type = RA_KV_NUM, .num = 1.0 },
  { .key = "time_budget", .type = RA_KV_NUM, .num = 40 },
  { .key = "drift", .type = RA_KV_NUM, .num = 0.1 },
  /* section 11: the shared dynamics with News-v1's defaults (the default task's where they map onto it) */
  { .key = "dynamics.drift", .type = RA_KV_BOOL, .num = 0 },
  { .key = "dynamics.boredom", .type = RA_KV_BOOL, .num = 1 },
  { .key = "dynamics.time_budget", .type = RA_KV_BOOL, .num = 1 },
  { .key = "dynamics.return", .type = RA_KV_BOOL, .num = 0 },
  { .key = "dynamics.boredom_rise", .type = RA_KV_NUM, .num = 0.3 },
  { .key = "dynamics.boredom_decay", .type = RA_KV_NUM, .num = 0.81873075307798182 },   /* exp(-1/5) */
  { .key = "dynamics.boredom_timeout", .type = RA_KV_NUM, .num = RA_NEWS_SATIATION_TIMEOUT },
  { .key = "dynamics.boredom_weight", .type = RA_KV_NUM, .num = RA_NEWS_SATIATION_WEIGHT },
  { .key = "dynamics.budget_mean", .type = RA_KV_NUM, .num = 40 },
  { .key = "dynamics.budget_spread", .type = RA_KV_NUM, .num = 0.5 },
  { .key = "dynamics.budget_step_cost", .type = RA_KV_NUM, .num = RA_NEWS_STEP_COST },
  { .key = "dynamics.budget_refund", .type = RA_KV_NUM, .num = 0 },
  { .key = "dynamics.return_delay_min", .type = RA_KV_NUM, .num = 1 },
  { .key = "dynamics.return_delay_max", .type = RA_KV_NUM, .num = 10 },
  { .key = "dynamics.return_churn_max", .type = RA_KV_NUM, .num = 0.5 },
  { .key = "dynamics.return_max_sessions", .type = RA_KV_NUM, .num = 3 },
};
#define S_N_CONFIG ((int) (sizeof s_config_defaults / sizeof s_config_defaults[0]))

static const char s_known_keys[] =
    "num_candidates, slate_size, embedding_dim, num_topics, publish_rate, max_age, retrieval_mix, "
    "choice_model, cascade_continue, reward, dwell_weight, reward_weights.{clicks,dwell}, reward_plugin.<key>, oracle, task_slots, hidden_tastes, "
    "choice_temperature, no_click_utility, position_bias, freshness_half_life, burst_rate, "
    "dwell_scale, time_budget, drift, " RA_DYNAMICS_KNOWN_KEYS;

/* Config keys that set the default task's parameter of the same name (section 8.3). */
static const int s_config_task_keys[] = { RA_NEWS_P_TEMPERATURE, RA_NEWS_P_NO_CLICK,
                                          RA_NEWS_P_POSITION_BIAS, RA_NEWS_P_HALF_LIFE,
                                          RA_NEWS_P_BURST_RATE, RA_NEWS_P_DWELL_SCALE,
                                          RA_NEWS_P_TIME_BUDGET };

/* ---- rewards (section 9) ---- */

enum { S_REWARD_CLICKS_DWELL = 0, S_REWARD_CLICKS, S_REWARD_DWELL, S_REWARD_WEIGHTED, S_REWARD_COUNT };
static const char *const s_reward_names[S_REWARD_COUNT] = { "clicks_dwell", "clicks", "dwell", "weighted" };

/* ---- state ---- */

enum { S_OBS_USER = 0, S_OBS_CANDIDATES, S_OBS_RESPONSE, S_OBS_ITEM_IDS, S_N_OBS };
enum { S_INFO_ITEM = 0, S_INFO_CLICKED, S_INFO_DWELL, S_INFO_AGE, S_INFO_TIME_LEFT,
       S_INFO_ORACLE_REWARD, S_INFO_REGRET, S_INFO_ORACLE_SLATE, S_N_INFO_MAX };
#define S_SAT_RATE 0.2f  /* a: satisfaction S <- (1 - a) S + a [clicked this step] (11.4) */
#define S_AWAY_MAX 1.0e6f /* a return delay is clamped to this many steps (11.4) */
#define S_USER_EXTRA 5   /* time left, no-click streak, step fraction, click rate, burst (7.1) */
#define S_CAND_EXTRA 4   /* age, breaking flag, quality estimate, topic click counter (7.1) */

typedef struct {
  ra_catalog_t world;                   /* one-item catalog: centres (2.1) and popularity only */
  ra_user_pop_t pop;
  ra_time_budget_t budget;              /* 6.1 shared time budget: step cost, no refund */
  ra_choice_t choice;
  float inv_temp;                       /* 1 / tau */
  float age_decay;                      /* ln 2 / half-life, per step of age (4.1) */
  ra_boredom_t satiation;               /* 4.2 shared topic boredom: rise eta_s, decay exp(-1 / recovery),
                                           timeout dynamics.boredom_timeout (50), weight gamma_s / tau */
  float dwell_scale;                    /* minutes */
  float burst_rate;                     /* per publish round */
  float noise_scale;                    /* item_noise / sqrt(d) */
} s_slot_t;

typedef struct {
  ra_rng_t rng;
  ra_user_t user;                       /* budget: time left (minutes); patience: P0 */
  int steps, clicks, streak;
  bool stream_live;                     /* the ring holds this env's stream (2.4) */
  uint32_t clock;                       /* publish rounds since the stream started (wraps; ages are
                                           differences mod 2^32) */
  int64_t published;                    /* articles since the stream started; the next goes to slot head */
  int head;                             /* published mod capacity */
  int burst_topic, burst_left;
  bool burst_now;                       /* the newest round was published during a burst */
  int near_topic;                       /* argmax_t c_t . theta_hat (3.1) */
  float oracle_value;
  int32_t oracle_slate[S_MAX_SLATE];
  int32_t last_items[S_MAX_SLATE];      /* serials of the last slate; -1 before any */
  int last_clicks;
  float last_dwell;
  int32_t away;                         /* 11.4 steps spent away in this episode; the satiation clock is steps + away */
  int session;                          /* 11.4 sessions before this one in the episode (0 first) */
  float satisfaction;                   /* 11.4 S in [0, 1], 1/2 at reset (only kept with dynamics.return) */
} s_env_t;

struct ra_sim {
  int num_envs, K, k, d, n_topics, M, max_age, cap, n_recent;
  int f_user, f_cand, f_resp;
  bool oracle;
  ra_dynamics_t dyn;                    /* section 11: switches; budget.step_cost, ret_p used */
  float drift_rate;                     /* 11.1 config drift */
  double sat_weight;                    /* 11.2 gamma_s (dynamics.boredom_weight) */
  int sat_timeout;                      /* 11.2 dynamics.boredom_timeout */
  int fi_session, fi_returned;          /* 11.4 info fields with dynamics.return, else -1 */
  float w_clicks, w_dwell;              /* reward = w_clicks clicks + w_dwell dwell (9.1) */
  const ra_reward_plugin_v1_t *plugin;  /* 9.3 reward = "plugin:<name>", else NULL */
  void *plugin_state;                   /* owned */
  ra_choice_kind_t choice_kind;         /* config choice_model */
  double cascade_continue;              /* config cascade_continue */
  ra_sim_spec_t spec;
  int n_slots;                          /* length of slots[] (the worlds table's n_slots) */
  ra_worlds_t worlds;                   /* which task each slot holds, which slot each env runs */
  s_slot_t *slots;
  s_env_t *envs;
  float *theta, *theta_hat;             /* num_envs x d */
  ra_boredom_topic_t *sat;              /* num_envs x n_topics: satiation state (4.2) */
  float *hclk;                          /* num_envs x n_topics: public click counter h (7.1) */
  float *art_x;                         /* num_envs x cap x d */
  float *art_q, *art_qhat;              /* num_envs x cap */
  uint8_t *art_topic;                   /* num_envs x cap (num_topics <= 256) */
  int32_t *art_serial;                  /* num_envs x cap */
  uint32_t *art_birth;                  /* num_envs x cap: the clock at publication */
  uint8_t *art_burst;                   /* num_envs x cap */
  uint16_t *cand;                       /* num_envs x K ring positions (cap <= 4096) */
  bool prefetch;                        /* 12.2 the batch's article state outgrows the caches */
  double default_task[RA_NEWS_P_COUNT];
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

static void s_normalise (float *v, int dim)
{
  float s = 0;
  for (int i = 0; i < dim; i++)
    s += v[i] * v[i];
  if (s <= 0) {
    v[0] = 1;
    return;
  }
  float inv = 1.0f / sqrtf (s);
  for (int i = 0; i < dim; i++) {
    float x = v[i] * inv;   /* clamp: rounding never leaves [-1, 1] */
    v[i] = x > 1.0f ? 1.0f : x < -1.0f ? -1.0f : x;
  }
}

/* Uniform in (-sqrt 3, sqrt 3) (mean 0, variance 1) from 16 bits. */
static inline float s_unit_uniform16 (uint64_t bits)
{
  return ((float) (bits & 0xffff) + 0.5f) * (2.0f * 1.7320508f / 65536.0f) - 1.7320508f;
}

/* 4.2, 11.4 the satiation clock: steps of the episode plus steps spent away between sessions */
static inline int32_t s_now (const s_env_t *e)
{
  return e->steps + e->away;
}

/* 4.1 scaled utility of the article in ring slot p for env i, given affinity aff (no satiation
   term with dynamics.boredom off, 11.2) */
static inline float s_utility (const ra_sim_t *s, const s_slot_t *sl, const s_env_t *e, size_t base,
                               const ra_boredom_topic_t *sat, int p, float aff)
{
  int age = (int) (e->clock - s->art_birth[base + p]);
  float u = aff + RA_NEWS_QUALITY_WEIGHT * s->art_q[base + p] + RA_NEWS_BURST_BONUS * s->art_burst[base + p];
  if (!s->dyn.boredom)
    return u * sl->inv_temp - sl->age_decay * (float) age;
  return u * sl->inv_temp - ra_boredom_penalty (&sl->satiation, &sat[s->art_topic[base + p]], s_now (e))
         - sl->age_decay * (float) age;
}

/* 5.1 expected dwell (minutes) of a clicked article, before the clamp */
static inline float s_dwell_mean (const s_slot_t *sl, float aff, float q)
{
  return sl->dwell_scale * expf (RA_NEWS_DWELL_AFFINITY * aff + RA_NEWS_DWELL_QUALITY * q);
}

/* 2.2-2.3 one publish round: maybe start a burst, then M new articles overwrite the M oldest. */
static void s_publish_round (const ra_sim_t *s, const s_slot_t *sl, s_env_t *e, int i)
{
  ra_rng_t rng = e->rng;
  const int d = s->d;
  const ra_catalog_t *w = &sl->world;
  if (e->burst_left == 0 && ra_rng_uniform (&rng) < sl->burst_rate) {
    e->burst_topic = ra_catalog_sample_topic (w, ra_rng_uniform_f64 (&rng));
    e->burst_left = RA_NEWS_BURST_MIN_LEN
                    + (int) ra_rng_below (&rng, RA_NEWS_BURST_MAX_LEN - RA_NEWS_BURST_MIN_LEN + 1);
  }
  e->burst_now = e->burst_left > 0;
  size_t base = (size_t) i * s->cap;
  for (int m = 0; m < s->M; m++) {
    int p = e->head;
    int t;
    if (e->burst_now && ra_rng_uniform (&rng) < (float) RA_NEWS_BURST_SHARE)
      t = e->burst_topic;
    else
      t = ra_catalog_sample_topic (w, ra_rng_uniform_f64 (&rng));
    float *x = s->art_x + (base + p) * d;
    const float *c = w->centres + (size_t) t * d;
    for (int q = 0; q < d; q += 4) {   /* 2.3 x = normalise(c_t + item_noise / sqrt(d) u) */
      uint64_t bits = ra_rng_next (&rng);
      for (int b = 0; b < 4 && q + b < d; b++, bits >>= 16)
        x[q + b] = c[q + b] + sl->noise_scale * s_unit_uniform16 (bits);
    }
    s_normalise (x, d);
    uint64_t bits = ra_rng_next (&rng);
    float quality = 0.05f + 0.9f * (float) (bits >> 40) * 0x1.0p-24f;   /* 2.3 q ~ U(0.05, 0.95) */
    float qhat = quality + RA_NEWS_QHAT_NOISE * s_unit_uniform16 (bits);
    s->art_q[base + p] = quality;
    s->art_qhat[base + p] = qhat < 0 ? 0 : qhat > 1 ? 1 : qhat;
    s->art_topic[base + p] = (uint8_t) t;
    s->art_birth[base + p] = e->clock;
    s->art_serial[base + p] = (int32_t) (e->published & 0x7fffffff);
    s->art_burst[base + p] = (uint8_t) (e->burst_now && t == e->burst_topic);
    e->published++;
    e->head = e->head + 1 == s->cap ? 0 : e->head + 1;
  }
  if (e->burst_left > 0 && --e->burst_left == 0)
    e->burst_topic = -1;
  e->rng = rng;
}

/* 11.4 the user returns after `delay` steps away: the satiation clock moves on by the rounded
   delay, a new time budget (3.1's draw), the no-click streak restarts, and the feed publishes
   min(delay, A) rounds meanwhile (older articles would have expired anyway). */
static void s_return (const ra_sim_t *s, const s_slot_t *sl, s_env_t *e, int i, float delay)
{
  int32_t gap = (int32_t) lroundf (delay < S_AWAY_MAX ? delay : S_AWAY_MAX);
  e->away += gap;
  e->session++;
  e->streak = 0;
  double b0 = ra_rng_lognormal (&e->rng, log (sl->pop.budget_mean) - 0.125, 0.5);
  e->user.budget0 = (float) (b0 < 1 ? 1 : b0 > RA_USER_BUDGET_MAX ? RA_USER_BUDGET_MAX : b0);
  e->user.budget = e->user.budget0;
  int rounds = gap < s->max_age ? gap : s->max_age;
  for (int q = 0; q < rounds; q++) {
    e->clock++;
    s_publish_round (s, sl, e, i);
  }
}

/* 3.2 retrieval: the n_recent newest articles, then articles on the user's estimated topic
   (uniformly without replacement), then uniform draws from the rest of the ring (a repeat is
   redrawn; after 64 repeats the lowest free position is taken). All distinct. */
static void s_retrieve (const ra_sim_t *s, s_env_t *e, int i, uint16_t *cand)
{
  ra_rng_t rng = e->rng;
  uint64_t used[S_MAX_CAPACITY / 64];
  int16_t near[S_MAX_CAPACITY];
  const int C = s->cap, words = (C + 63) / 64;
  for (int q = 0; q < words; q++)
    used[q] = 0;
  const uint8_t *topic = s->art_topic + (size_t) i * C;
  int r = 0;
  for (int p = e->head - 1; r < s->n_recent; r++, p--) {
    if (p < 0)
      p += C;
    used[p >> 6] |= (uint64_t) 1 << (p & 63);
    cand[r] = (uint16_t) p;
  }
  int n_near = 0, p = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && defined(__GNUC__)
  /* Eight topic bytes at a time (docs/sims/news.md section 12.1): a byte of w ^ t is zero exactly
     where the article is on the user's topic; z has the top bit of exactly those bytes set,
     lowest address lowest, so matches come out in ascending p as in the scalar loop below. */
  const uint64_t lo7 = 0x7f7f7f7f7f7f7f7fULL, t8 = 0x0101010101010101ULL * (uint8_t) e->near_topic;
  for (; p + 8 <= C; p += 8) {
    uint64_t w;
    memcpy (&w, topic + p, sizeof w);
    uint64_t x = w ^ t8, z = ~(((x & lo7) + lo7) | x | lo7);
    while (z) {
      int q = p + (__builtin_ctzll (z) >> 3);
      z &= z - 1;
      near[n_near] = (int16_t) q;
      n_near += (int) (~used[q >> 6] >> (q & 63) & 1);
    }
  }
#endif
  for (; p < C; p++) {   /* branch-free: the test is a coin flip per article */
    near[n_near] = (int16_t) p;
    n_near += (topic[p] == e->near_topic) & (int) (~used[p >> 6] >> (p & 63) & 1);
  }
  for (; r < s->K && n_near > 0; r++) {
    int j = (int) ra_rng_below (&rng, (uint32_t) n_near);
    int p = near[j];
    near[j] = near[--n_near];
    used[p >> 6] |= (uint64_t) 1 << (p & 63);
    cand[r] = (uint16_t) p;
  }
  for (; r < s->K; r++) {
    int id = -1;
    for (int attempt = 0; attempt < 64 && id < 0; attempt++) {
      int p = (int) ra_rng_below (&rng, (uint32_t) C);
      if (!(used[p >> 6] & ((uint64_t) 1 << (p & 63))))
        id = p;
    }
    for (int p = 0; id < 0; p++)
      if (!(used[p >> 6] & ((uint64_t) 1 << (p & 63))))
        id = p;
    used[id >> 6] |= (uint64_t) 1 << (id & 63);
    cand[r] = (uint16_t) id;
  }
  e->rng = rng;
}

/* 7.1 user and candidate rows */
static void s_write_obs (const ra_sim_t *s, int i, const s_env_t *e, const ra_sim_buffers_t *buf)
{
  const int d = s->d;
  float *u = (float *) buf->obs[S_OBS_USER] + (size_t) i * s->f_user;
  const float *th = s->theta_hat + (size_t) i * d;
  for (int q = 0; q < d; q++)
    u[q] = th[q];
  float tl = e->user.budget / e->user.budget0;
  u[d] = tl < 0 ? 0 : tl > 1 ? 1 : tl;
  float st = (float) e->streak * 0.1f;
  u[d + 1] = st > 1.0f ? 1.0f : st;
  float sf = (float) e->steps * (1.0f / S_MAX_STEPS);
  u[d + 2] = sf > 1.0f ? 1.0f : sf;
  u[d + 3] = e->steps > 0 ? (float) e->clicks / ((float) e->steps * (float) s->k) : 0.0f;
  u[d + 4] = e->burst_now;

  size_t base = (size_t) i * s->cap;
  const float *h = s->hclk + (size_t) i * s->n_topics;
  const uint16_t *cand = s->cand + (size_t) i * s->K;
  float *row = (float *) buf->obs[S_OBS_CANDIDATES] + (size_t) i * s->K * s->f_cand;
  int32_t *ids = (int32_t *) buf->obs[S_OBS_ITEM_IDS] + (size_t) i * s->K;
  const float inv_age = 1.0f / (float) s->max_age;
  for (int r = 0; r < s->K; r++, row += s->f_cand) {
    size_t p = base + (size_t) cand[r];
    ids[r] = s->art_serial[p];   /* 7.1 the article's serial, as info "item" reports it */
    const float *x = s->art_x + p * d;
    for (int q = 0; q < d; q++)
      row[q] = x[q];
    row[d] = (float) (e->clock - s->art_birth[p]) * inv_age;
    row[d + 1] = s->art_burst[p];
    row[d + 2] = s->art_qhat[p];
    float hc = h[s->art_topic[p]];
    row[d + 3] = hc / (1.0f + hc);
  }
}

/* 4.4 the best slate among the current candidates; caches it in e. */
static void s_oracle (const ra_sim_t *s, int i, const s_slot_t *sl, s_env_t *e)
{
  float a[S_MAX_K], g[S_MAX_K];
  const float *theta = s->theta + (size_t) i * s->d;
  const ra_boredom_topic_t *sat = s->sat + (size_t) i * s->n_topics;
  size_t base = (size_t) i * s->cap;
  const uint16_t *cand = s->cand + (size_t) i * s->K;
  for (int r = 0; r < s->K; r++) {
    int p = cand[r];
    float aff = ra_users_dot (theta, s->art_x + (base + p) * s->d, s->d);
    a[r] = ra_choice_attraction (&sl->choice, s_utility (s, sl, e, base, sat, p, aff));
    g[r] = s->w_clicks + s->w_dwell * s_dwell_mean (sl, aff, s->art_q[base + p]);
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
      ra_catalog_fini (&s->slots[t].world);
  free (s->slots);
  ra_worlds_fini (&s->worlds);
  free (s->envs);
  free (s->theta);
  free (s->theta_hat);
  free (s->sat);
  free (s->hclk);
  free (s->art_x);
  free (s->art_q);
  free (s->art_qhat);
  free (s->art_topic);
  free (s->art_birth);
  free (s->art_serial);
  if (s->plugin)
    s->plugin->destroy (s->plugin_state);
  free (s->art_burst);
  free (s->cand);
  free (s);
  *sim_p = NULL;
}

/* Fills slot t with the world and population of task v (section 8.2). */
static void s_slot_build (ra_sim_t *s, int t, const ra_task_values_t *v)
{
  s_slot_t *sl = &s->slots[t];
  const double *p = v->values;
  ra_catalog_params_t cp = { .world_seed = (uint64_t) p[RA_NEWS_P_WORLD_SEED],
                             .topic_skew = p[RA_NEWS_P_TOPIC_CONCENTRATION],
                             .item_noise = p[RA_NEWS_P_ITEM_NOISE],
                             .price_median = 20 };
  ra_catalog_build (&sl->world, &cp);
  sl->pop = (ra_user_pop_t) { .interest_spread = p[RA_NEWS_P_INTEREST_SPREAD],
                              .obs_noise = p[RA_NEWS_P_OBS_NOISE],
                              .budget_mean = p[RA_NEWS_P_TIME_BUDGET],
                              .price_sensitivity = 1,
                              .patience_mean = p[RA_NEWS_P_PATIENCE_MEAN] };
  ra_users_hide_tastes (&sl->pop, ra_worlds_hidden (&s->worlds, v), ra_task_key (S_SIM_KEY, v->split, v->id),
                       sl->world.n_topics);   /* shared.md 4 */
  double tau = p[RA_NEWS_P_TEMPERATURE];
  ra_choice_init (&sl->choice, s->choice_kind, s->k, p[RA_NEWS_P_POSITION_BIAS],
                  p[RA_NEWS_P_NO_CLICK] / tau);
  ra_choice_set_continue (&sl->choice, s->cascade_continue);
  sl->inv_temp = (float) (1.0 / tau);
  sl->age_decay = (float) (log (2.0) / p[RA_NEWS_P_HALF_LIFE]);
  ra_boredom_init (&sl->satiation, p[RA_NEWS_P_SATIATION_RATE], exp (-1.0 / p[RA_NEWS_P_SATIATION_RECOVERY]),
                   s->sat_timeout, s->sat_weight / tau);
  sl->budget = (ra_time_budget_t) { .mean = (float) p[RA_NEWS_P_TIME_BUDGET], .spread = 0.5f,
                                    .step_cost = s->dyn.budget.step_cost, .refund = 0 };
  sl->dwell_scale = (float) p[RA_NEWS_P_DWELL_SCALE];
  sl->burst_rate = (float) p[RA_NEWS_P_BURST_RATE];
  sl->noise_scale = (float) (p[RA_NEWS_P_ITEM_NOISE] / sqrt ((double) s->d));
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
  int64_t K, k, d, n_topics, M, max_age, slots;
  double mix, dwell_weight, wc, wd, cont;
  int choice_kind, reward_kind;
  bool oracle;
  double task_defaults[RA_NEWS_P_COUNT];
  memcpy (task_defaults, s_default_task, sizeof task_defaults);
  const ra_reward_plugin_v1_t *plugin = NULL;   /* 9.3 owned here until s takes it */
  void *pstate = NULL;
#define S_TRY(x)        \
  do {                  \
    rc = (x);           \
    if (rc != RA_OK) {  \
      if (plugin)       \
        plugin->destroy (pstate); \
      return rc;        \
    }                   \
  } while (0)
  S_TRY (ra_config_get_int (&cfg, "num_candidates", 20, 2, S_MAX_K, &K, err));
  S_TRY (ra_config_get_int (&cfg, "slate_size", 5, 1, K < S_MAX_SLATE ? K : S_MAX_SLATE, &k, err));
  S_TRY (ra_config_get_int (&cfg, "embedding_dim", 16, 2, 256, &d, err));
  S_TRY (ra_config_get_int (&cfg, "num_topics", 10, 1, 256, &n_topics, err));
  S_TRY (ra_config_get_int (&cfg, "publish_rate", 3, 1, 64, &M, err));
  int64_t age_min = (K + M - 1) / M;   /* the ring must hold at least K articles */
  if (age_min < 2)
    age_min = 2;
  S_TRY (ra_config_get_int (&cfg, "max_age", 20, age_min, S_MAX_CAPACITY / M, &max_age, err));
  S_TRY (ra_config_get_num (&cfg, "retrieval_mix", 0.5, 0, 1, &mix, err));
  S_TRY (ra_config_get_enum (&cfg, "choice_model", RA_CHOICE_CASCADE, ra_choice_names, RA_CHOICE_COUNT,
                             &choice_kind, err));
  S_TRY (ra_config_get_num (&cfg, "cascade_continue", RA_CHOICE_CONTINUE_DEFAULT, 0, 1, &cont, err));
  reward_kind = S_REWARD_CLICKS_DWELL;   /* 9.3 with a plugin, its default_reward */
  if (!ra_reward_is_plugin (&cfg))
    S_TRY (ra_config_get_enum (&cfg, "reward", S_REWARD_CLICKS_DWELL, s_reward_names, S_REWARD_COUNT,
                               &reward_kind, err));
  S_TRY (ra_config_get_num (&cfg, "dwell_weight", 0.5, 0, 1e6, &dwell_weight, err));
  S_TRY (ra_config_get_num (&cfg, "reward_weights.clicks", 1, -1e6, 1e6, &wc, err));
  S_TRY (ra_config_get_num (&cfg, "reward_weights.dwell", 0.5, -1e6, 1e6, &wd, err));
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
  double drift_rate, sat_weight, fixed;
  S_TRY (ra_config_get_num (&cfg, "drift", 0.1, 0, 1, &drift_rate, err));
  /* section 11: the shared dynamics from News-v1's defaults; then the keys that map onto the
     default task (boredom rise and decay, budget mean) or are fixed by the sim's equations */
  ra_dynamics_t dyn;
  ra_dynamics_defaults (&dyn);
  dyn.drift = false;
  dyn.boredom = true;
  ra_boredom_init (&dyn.bored, task_defaults[RA_NEWS_P_SATIATION_RATE],
                   exp (-1.0 / task_defaults[RA_NEWS_P_SATIATION_RECOVERY]), RA_NEWS_SATIATION_TIMEOUT,
                   RA_NEWS_SATIATION_WEIGHT);
  dyn.time_budget = true;
  dyn.budget = (ra_time_budget_t) { .mean = (float) task_defaults[RA_NEWS_P_TIME_BUDGET], .spread = 0.5f,
                                    .step_cost = RA_NEWS_STEP_COST, .refund = 0 };
  dyn.ret = false;
  S_TRY (ra_dynamics_from_config (&cfg, &dyn, err));
  S_TRY (ra_config_get_num (&cfg, "dynamics.boredom_rise", task_defaults[RA_NEWS_P_SATIATION_RATE], 0, 1,
                            &task_defaults[RA_NEWS_P_SATIATION_RATE], err));
  if (ra_config_find (&cfg, "dynamics.boredom_decay") >= 0) {   /* 11.2 recovery = -1 / ln(decay) in [0.1, 1000] */
    double decay;
    S_TRY (ra_config_get_num (&cfg, "dynamics.boredom_decay", 0.5, exp (-10.0), exp (-1e-3), &decay, err));
    double rec = -1.0 / log (decay);
    task_defaults[RA_NEWS_P_SATIATION_RECOVERY] = rec < 0.1 ? 0.1 : rec > 1000 ? 1000 : rec;
  }
  S_TRY (ra_config_get_num (&cfg, "dynamics.boredom_weight", RA_NEWS_SATIATION_WEIGHT, 0, 100, &sat_weight, err));
  S_TRY (ra_config_get_num (&cfg, "dynamics.budget_mean", task_defaults[RA_NEWS_P_TIME_BUDGET], 1, 10000,
                            &task_defaults[RA_NEWS_P_TIME_BUDGET], err));
  S_TRY (ra_config_get_num (&cfg, "dynamics.budget_spread", 0.5, 0.5, 0.5, &fixed, err));
  S_TRY (ra_config_get_num (&cfg, "dynamics.budget_refund", 0, 0, 0, &fixed, err));
  S_TRY (ra_config_check_unknown (&cfg, s_known_keys, err));
  ra_task_values_t task0;
  S_TRY (ra_task_resolve (s_params, RA_NEWS_P_COUNT, S_SIM_KEY, task_defaults, args->task, &task0, err));
#undef S_TRY
  slots = ra_worlds_count (slots, args->num_envs);

  if (!out) {   /* check only (s_check): the checks above passed */
    if (plugin)
      plugin->destroy (pstate);
    return RA_OK;
  }
  ra_sim_t *s = calloc (1, sizeof *s);
  if (!s) {
    if (plugin)
      plugin->destroy (pstate);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "News-v1: out of memory");
  }
  s->plugin = plugin;
  s->plugin_state = pstate;
  s->num_envs = args->num_envs;
  s->K = (int) K;
  s->k = (int) k;
  s->d = (int) d;
  s->n_topics = (int) n_topics;
  s->M = (int) M;
  s->max_age = (int) max_age;
  s->cap = (int) (M * max_age);
  s->n_recent = (int) lround (mix * (double) K);   /* 3.2 */
  s->oracle = oracle;
  s->dyn = dyn;
  s->drift_rate = (float) drift_rate;
  s->sat_weight = sat_weight;
  s->sat_timeout = dyn.bored.timeout;
  s->choice_kind = (ra_choice_kind_t) choice_kind;
  s->cascade_continue = cont;
  /* 9.1 reward weights */
  s->w_clicks = reward_kind == S_REWARD_DWELL ? 0.0f : reward_kind == S_REWARD_WEIGHTED ? (float) wc : 1.0f;
  s->w_dwell = reward_kind == S_REWARD_CLICKS_DWELL ? (float) dwell_weight
               : reward_kind == S_REWARD_DWELL ? 1.0f : reward_kind == S_REWARD_WEIGHTED ? (float) wd : 0.0f;
  memcpy (s->default_task, task_defaults, sizeof task_defaults);
  s->n_slots = (int) slots;
  size_t N = (size_t) s->num_envs, C = (size_t) s->cap;
  s->slots = calloc ((size_t) slots, sizeof *s->slots);
  s->envs = calloc (N, sizeof *s->envs);
  s->theta = calloc (N * (size_t) d, sizeof (float));
  s->theta_hat = calloc (N * (size_t) d, sizeof (float));
  s->sat = calloc (N * (size_t) n_topics, sizeof *s->sat);
  s->hclk = calloc (N * (size_t) n_topics, sizeof (float));
  s->art_x = calloc (N * C * (size_t) d, sizeof (float));
  s->art_q = calloc (N * C, sizeof (float));
  s->art_qhat = calloc (N * C, sizeof (float));
  s->art_topic = calloc (N * C, 1);
  s->art_birth = calloc (N * C, sizeof (uint32_t));
  s->art_serial = calloc (N * C, sizeof (int32_t));
  s->art_burst = calloc (N * C, 1);
  s->cand = calloc (N * (size_t) K, sizeof *s->cand);
  if (!s->slots || !s->envs || !s->theta || !s->theta_hat || !s->sat || !s->hclk || !s->art_x
      || !s->art_q || !s->art_qhat || !s->art_topic || !s->art_birth || !s->art_serial
      || !s->art_burst || !s->cand)
    goto nomem;
  s->prefetch = N * C * (size_t) (d * 4 + 18) > S_PREFETCH_BYTES;
  for (int t = 0; t < s->n_slots; t++)
    if (ra_catalog_init (&s->slots[t].world, 1, s->n_topics, s->d, err) != RA_OK)
      goto nomem;
  if (ra_worlds_init (&s->worlds, s->n_slots, s->num_envs, RA_NEWS_P_COUNT, &task0) != RA_OK)
    goto nomem;
  s->worlds.hidden_tastes = hidden_tastes;   /* before any world is built */
  s_slot_build (s, 0, &task0);
  for (int i = 0; i < s->num_envs; i++) {
    s_env_t *e = &s->envs[i];
    ra_rng_seed (&e->rng, args->seed + (uint64_t) i, 0);   /* section 1: env i from seed + i */
    e->burst_topic = -1;
    for (int r = 0; r < S_MAX_SLATE; r++)
      e->last_items[r] = -1;
  }

  /* spec (section 7) */
  ra_sim_spec_t *sp = &s->spec;
  sp->num_candidates = s->K;
  sp->slate_size = s->k;
  s->f_user = s->d + S_USER_EXTRA;
  s->f_cand = s->d + S_CAND_EXTRA;
  s->f_resp = 2 * s->k + 1;
  sp->n_obs = S_N_OBS;
  s_field (&sp->obs[S_OBS_USER], "user", RA_DTYPE_F32, 1, s->f_user, 0, -1, 1);
  s_field (&sp->obs[S_OBS_CANDIDATES], "candidates", RA_DTYPE_F32, 2, s->K, s->f_cand, -1, 1);
  s_field (&sp->obs[S_OBS_RESPONSE], "response", RA_DTYPE_F32, 1, s->f_resp, 0, 0, 1);
  s_field (&sp->obs[S_OBS_ITEM_IDS], "item_ids", RA_DTYPE_I32, 1, s->K, 0, 0, 2147483647.0);
  s_field (&sp->info[S_INFO_ITEM], "item", RA_DTYPE_I32, 1, s->k, 0, 0, 2147483647.0);
  s_field (&sp->info[S_INFO_CLICKED], "clicked", RA_DTYPE_BOOL, 1, s->k, 0, 0, 1);
  s_field (&sp->info[S_INFO_DWELL], "dwell", RA_DTYPE_F32, 1, s->k, 0, 0, RA_NEWS_DWELL_MAX);
  s_field (&sp->info[S_INFO_AGE], "age", RA_DTYPE_I32, 1, s->k, 0, 0, s->max_age - 1);
  s_field (&sp->info[S_INFO_TIME_LEFT], "time_left", RA_DTYPE_F32, 0, 0, 0, 0, RA_USER_BUDGET_MAX);
  sp->n_info = S_INFO_TIME_LEFT + 1;
  if (s->oracle) {
    s_field (&sp->info[S_INFO_ORACLE_REWARD], "oracle_reward", RA_DTYPE_F32, 0, 0, 0, -INFINITY, INFINITY);
    s_field (&sp->info[S_INFO_REGRET], "regret", RA_DTYPE_F32, 0, 0, 0, 0, INFINITY);
    s_field (&sp->info[S_INFO_ORACLE_SLATE], "oracle_slate", RA_DTYPE_I32, 1, s->k, 0, 0, s->K - 1);
    sp->n_info = S_N_INFO_MAX;
  }
  s->fi_session = s->fi_returned = -1;
  if (s->dyn.ret) {   /* 11.4 */
    s->fi_session = sp->n_info++;
    s_field (&sp->info[s->fi_session], "session", RA_DTYPE_I32, 0, 0, 0, 0, 2147483647.0);
    s->fi_returned = sp->n_info++;
    s_field (&sp->info[s->fi_returned], "returned", RA_DTYPE_BOOL, 0, 0, 0, 0, 1);
  }
  /* 9.2 per-step bounds: k clicks, k x DWELL_MAX minutes */
  double lo = 0, hi = 0, terms[2] = { s->w_clicks * (double) s->k, s->w_dwell * (double) s->k * RA_NEWS_DWELL_MAX };
  for (int q = 0; q < 2; q++) {
    if (terms[q] < 0)
      lo += terms[q];
    else
      hi += terms[q];
  }
  sp->reward_range[0] = lo;
  sp->reward_range[1] = hi;
  if (s->plugin)   /* 9.3 */
    ra_reward_plugin_range (s->plugin, s->plugin_state, sp->reward_range);
  sp->max_episode_steps = S_MAX_STEPS;
  *out = s;
  return RA_OK;
nomem:
  s_destroy (&s);
  return ra_error_set (err, RA_ERR_NOMEM, -1, "News-v1 with %lld envs: out of memory", (long long) N);
}

static const ra_sim_spec_t *s_spec (const ra_sim_t *s)
{
  return &s->spec;
}

static void s_reset (ra_sim_t *s, int i0, int i1, const uint64_t *seeds, const uint8_t *mask,
                     const ra_sim_buffers_t *buf)
{
  assert (i0 >= 0 && i1 <= s->num_envs);
  const int d = s->d, T = s->n_topics;
  for (int i = i0; i < i1; i++) {
    if (mask && !mask[i])
      continue;
    s_env_t *e = &s->envs[i];
    if (seeds) {
      ra_rng_seed (&e->rng, seeds[i], 0);
      e->stream_live = false;   /* 2.4 a new seed starts a new stream */
    }
    if (s->worlds.cur[i] != s->worlds.next[i])
      e->stream_live = false;   /* 2.4 a new world starts a new stream */
    const s_slot_t *sl = &s->slots[ra_worlds_begin (&s->worlds, i)];
    float *theta = s->theta + (size_t) i * d, *theta_hat = s->theta_hat + (size_t) i * d;
    ra_users_draw (&sl->pop, &sl->world, &e->rng, &e->user, theta, theta_hat);   /* 3.1 */
    e->steps = e->clicks = e->streak = 0;
    e->away = e->session = 0;
    e->satisfaction = 0.5f;
    e->near_topic = ra_catalog_near_topic (&sl->world, theta_hat);
    e->last_clicks = 0;
    e->last_dwell = 0;
    for (int r = 0; r < S_MAX_SLATE; r++)
      e->last_items[r] = -1;
    ra_boredom_reset (s->sat + (size_t) i * T, T);
    for (int t = 0; t < T; t++)
      s->hclk[(size_t) i * T + t] = 0;
    if (!e->stream_live) {
      /* 2.4 stream start: max_age rounds at clocks 0..max_age-1 fill the ring */
      e->published = 0;
      e->head = 0;
      e->burst_topic = -1;
      e->burst_left = 0;
      for (e->clock = 0;; e->clock++) {
        s_publish_round (s, sl, e, i);
        if (e->clock + 1 == (uint32_t) s->max_age)
          break;
      }
      e->stream_live = true;
    }
    s_retrieve (s, e, i, s->cand + (size_t) i * s->K);
    s_write_obs (s, i, e, buf);
    memset ((float *) buf->obs[S_OBS_RESPONSE] + (size_t) i * s->f_resp, 0, (size_t) s->f_resp * sizeof (float));
    if (s->oracle)
      s_oracle (s, i, sl, e);
  }
}

/* Prefetching (docs/sims/news.md section 12.2): in a big batch every env's state is cold when
   its turn comes (about 5 KB each, far more than the caches hold in all), spread over a dozen
   arrays the hardware prefetcher cannot guess. s_step asks for it ahead: the fixed-size state
   (struct, user vectors, candidate list, article scalars), then, once the candidate list is in,
   the candidate and next-publish article vectors, and the output rows. Only hints: results never
   depend on them. */
#define S_PF_LINE 64

/* One line. GCC deletes loops whose bodies are only __builtin_prefetch (it sees no effect),
   so on x86 the hint is a volatile asm it must keep. */
static inline void s_prefetch_line (const char *c)
{
#if defined(__x86_64__) || defined(__i386__)
  __asm__ volatile ("prefetcht0 %0" : : "m" (*c));
#else
  __builtin_prefetch (c, 0, 3);
#endif
}

/* Every line of [p, p + bytes). */
static inline void s_prefetch_span (const void *p, size_t bytes)
{
  const char *c = p;
  for (size_t off = 0; off < bytes; off += S_PF_LINE)
    s_prefetch_line (c + off);
}

static void s_prefetch_state (const ra_sim_t *s, int i)
{
  const size_t C = (size_t) s->cap, base = (size_t) i * C;
  s_prefetch_span (&s->envs[i], sizeof s->envs[i]);
  s_prefetch_span (s->theta + (size_t) i * s->d, (size_t) s->d * sizeof (float));
  s_prefetch_span (s->theta_hat + (size_t) i * s->d, (size_t) s->d * sizeof (float));
  s_prefetch_span (s->sat + (size_t) i * s->n_topics, (size_t) s->n_topics * sizeof *s->sat);
  s_prefetch_span (s->hclk + (size_t) i * s->n_topics, (size_t) s->n_topics * sizeof (float));
  s_prefetch_span (s->cand + (size_t) i * s->K, (size_t) s->K * sizeof *s->cand);
  s_prefetch_span (s->art_topic + base, C * sizeof *s->art_topic);
  s_prefetch_span (s->art_q + base, C * sizeof (float));
  s_prefetch_span (s->art_qhat + base, C * sizeof (float));
  s_prefetch_span (s->art_birth + base, C * sizeof *s->art_birth);
  s_prefetch_span (s->art_serial + base, C * sizeof *s->art_serial);
  s_prefetch_span (s->art_burst + base, C);
}

/* The rows env i's step writes: its candidates block alone is 25 lines, each a store miss
   that stalls the store buffer when it is not already in the cache. */
static void s_prefetch_out (const ra_sim_t *s, int i, const ra_sim_buffers_t *buf)
{
  const size_t cand_row = (size_t) s->K * (size_t) s->f_cand * sizeof (float);
  s_prefetch_span ((float *) buf->obs[S_OBS_CANDIDATES] + (size_t) i * s->K * s->f_cand, cand_row);
  s_prefetch_span ((float *) buf->obs[S_OBS_USER] + (size_t) i * s->f_user,
                   (size_t) s->f_user * sizeof (float));
  s_prefetch_span ((int32_t *) buf->obs[S_OBS_ITEM_IDS] + (size_t) i * s->K,
                   (size_t) s->K * sizeof (int32_t));
}

static void s_prefetch_vectors (const ra_sim_t *s, int i)
{
  const size_t base = (size_t) i * s->cap, row = (size_t) s->d * sizeof (float);
  const uint16_t *cand = s->cand + (size_t) i * s->K;
  for (int r = 0; r < s->K; r++)
    s_prefetch_span (s->art_x + (base + (size_t) cand[r]) * s->d, row);
  int p = s->envs[i].head;   /* the M slots the next publish round overwrites */
  for (int m = 0; m < s->M; m++, p = p + 1 == s->cap ? 0 : p + 1)
    s_prefetch_span (s->art_x + (base + (size_t) p) * s->d, row);
}

/* Phase A of env i's step: everything up to the new candidates (2.2, 3.2, 4, 5, 6, 9, 11).
   *oracle_value and *regret carry 4.4's figures to phase B. */
static inline void s_step_env (ra_sim_t *s, int i, const int32_t *actions, const ra_sim_buffers_t *buf,
                        float *oracle_value_out, float *regret_out)
{
  const int d = s->d, k = s->k, K = s->K, T = s->n_topics;
  {
    s_env_t *e = &s->envs[i];
    const s_slot_t *sl = &s->slots[s->worlds.cur[i]];
    float *theta = s->theta + (size_t) i * d;
    ra_boredom_topic_t *sat = s->sat + (size_t) i * T;
    float *h = s->hclk + (size_t) i * T;
    size_t base = (size_t) i * s->cap;
    uint16_t *cand = s->cand + (size_t) i * K;
    const int32_t *act = actions + (size_t) i * k;
    int32_t pos[S_MAX_SLATE], item[S_MAX_SLATE], age[S_MAX_SLATE];
    float v[S_MAX_SLATE] = { 0 }, aff[S_MAX_SLATE], dwell[S_MAX_SLATE];   /* v zeroed: GCC cannot see k >= 1 */
    uint8_t clicked[S_MAX_SLATE];
    for (int r = 0; r < k; r++) {
      int p = cand[act[r]];
      pos[r] = p;
      item[r] = s->art_serial[base + p];
      age[r] = (int32_t) (e->clock - s->art_birth[base + p]);
      aff[r] = ra_users_dot (theta, s->art_x + (base + p) * d, d);
      v[r] = s_utility (s, sl, e, base, sat, p, aff[r]);   /* 4.1 */
      dwell[r] = 0;
    }
    float regret = 0, oracle_value = e->oracle_value;
    if (s->oracle) {   /* 4.4 regret of the shown slate against the best one, both expected */
      float g[S_MAX_SLATE];
      for (int r = 0; r < k; r++)
        g[r] = s->w_clicks + s->w_dwell * s_dwell_mean (sl, aff[r], s->art_q[base + pos[r]]);
      regret = oracle_value - ra_choice_expected (&sl->choice, v, g);
      if (regret < 0)
        regret = 0;
    }
    int n_clicks = ra_choice_sample (&sl->choice, v, &e->rng, clicked);   /* 4.3 */
    float total_dwell = 0;
    if (n_clicks > 0) {
      for (int r = 0; r < k; r++) {
        if (!clicked[r])
          continue;
        /* 5.1 dwell = clamp(D_j exp(sigma z - sigma^2 / 2), 0, DWELL_MAX) */
        float z = (float) ra_rng_normal (&e->rng);
        float w = s_dwell_mean (sl, aff[r], s->art_q[base + pos[r]])
                  * expf (RA_NEWS_DWELL_SIGMA * z - 0.5f * RA_NEWS_DWELL_SIGMA * RA_NEWS_DWELL_SIGMA);
        dwell[r] = w < RA_NEWS_DWELL_MAX ? w : RA_NEWS_DWELL_MAX;
        total_dwell += dwell[r];
        int t = s->art_topic[base + pos[r]];
        if (s->dyn.boredom)
          ra_boredom_consume (&sl->satiation, &sat[t], s_now (e), 1.0f);   /* 4.2 satiation rises */
        h[t] += 1.0f;                               /* 7.1 public counter (before its decay) */
        if (s->dyn.drift) {   /* 11.1 interest (and the platform's estimate) move toward the article */
          const float *x = s->art_x + (base + pos[r]) * d;
          ra_dynamics_drift (theta, x, s->drift_rate, 1.0f, d);
          ra_dynamics_drift (s->theta_hat + (size_t) i * d, x, s->drift_rate, 1.0f, d);
        }
      }
      if (s->dyn.drift)
        e->near_topic = ra_catalog_near_topic (&sl->world, s->theta_hat + (size_t) i * d);
      e->streak = 0;
    } else {
      e->streak++;
    }
    for (int t = 0; t < T; t++)   /* 7.1 counter decay (satiation recovers lazily, 4.2) */
      h[t] *= RA_NEWS_CLICK_DECAY;
    float spent = sl->budget.step_cost + total_dwell;
    if (s->dyn.time_budget)
      ra_time_budget_spend (&sl->budget, &e->user.budget, total_dwell, 0.0f);   /* 6.1 */
    e->steps++;
    e->clicks += n_clicks;
    e->last_clicks = n_clicks;
    e->last_dwell = total_dwell;
    for (int r = 0; r < k; r++)
      e->last_items[r] = item[r];
    /* 6.2 session end (no budget with dynamics.time_budget off, 11.3) */
    bool ended = (s->dyn.time_budget && e->user.budget <= 0) || (float) e->streak >= e->user.patience;
    bool left = ended, returned = false;
    if (s->dyn.ret) {   /* 11.4 satisfaction, then leave or return */
      e->satisfaction = ra_satisfaction_update (e->satisfaction, n_clicks > 0 ? 1.0f : 0.0f, S_SAT_RATE);
      if (ended && e->session + 1 < s->dyn.ret_p.max_sessions) {
        float delay = ra_return_sample (&s->dyn.ret_p, e->satisfaction, &e->rng);
        if (delay >= 0) {
          s_return (s, sl, e, i, delay);
          left = false;
          returned = true;
        }
      }
      ((int32_t *) buf->info[s->fi_session])[i] = e->session;
      ((uint8_t *) buf->info[s->fi_returned])[i] = returned;
    }
    buf->terminated[i] = left;
    buf->reward[i] = s->w_clicks * (float) n_clicks + s->w_dwell * total_dwell;   /* 9.1 */
    if (s->plugin) {   /* 9.3 the plugin's view of the step's event record */
      int32_t topic[S_MAX_SLATE];
      for (int r = 0; r < k; r++)
        topic[r] = s->art_topic[base + pos[r]];
      ra_reward_event_v1_t view = { .size = sizeof view, .version = RA_REWARD_EVENT_VERSION, .k = k,
                                    .step = e->steps - 1, .item = item, .topic = topic, .clicked = clicked,
                                    .dwell = dwell, .left = left, .returned = returned };
      buf->reward[i] = ra_reward_plugin_eval (s->plugin, s->plugin_state, &view, buf->reward[i], i);
    }

    /* 7.2 info rows */
    memcpy ((int32_t *) buf->info[S_INFO_ITEM] + (size_t) i * k, item, (size_t) k * sizeof (int32_t));
    memcpy ((uint8_t *) buf->info[S_INFO_CLICKED] + (size_t) i * k, clicked, (size_t) k);
    memcpy ((float *) buf->info[S_INFO_DWELL] + (size_t) i * k, dwell, (size_t) k * sizeof (float));
    memcpy ((int32_t *) buf->info[S_INFO_AGE] + (size_t) i * k, age, (size_t) k * sizeof (int32_t));
    ((float *) buf->info[S_INFO_TIME_LEFT])[i] = e->user.budget > 0 ? e->user.budget : 0.0f;

    /* 7.1 next observation: response row, a publish round, new candidates */
    float *resp = (float *) buf->obs[S_OBS_RESPONSE] + (size_t) i * s->f_resp;
    for (int r = 0; r < k; r++) {
      resp[r] = clicked[r];
      resp[k + r] = dwell[r] * (1.0f / RA_NEWS_DWELL_MAX);
    }
    float sf = spent / e->user.budget0;
    resp[2 * k] = sf > 1.0f ? 1.0f : sf;
    e->clock++;
    s_publish_round (s, sl, e, i);   /* 2.2 */
    s_retrieve (s, e, i, cand);      /* 3.2 */
    *oracle_value_out = oracle_value;
    *regret_out = regret;
  }
}

/* Phase B: the observation of the new candidates (7.1) and the oracle's next slate (4.4). */
static inline void s_step_obs (ra_sim_t *s, int i, const ra_sim_buffers_t *buf, float oracle_value,
                        float regret)
{
  s_env_t *e = &s->envs[i];
  s_write_obs (s, i, e, buf);
  if (s->oracle) {
    ((float *) buf->info[S_INFO_ORACLE_REWARD])[i] = oracle_value;
    ((float *) buf->info[S_INFO_REGRET])[i] = regret;
    s_oracle (s, i, &s->slots[s->worlds.cur[i]], e);
    memcpy ((int32_t *) buf->info[S_INFO_ORACLE_SLATE] + (size_t) i * s->k, e->oracle_slate,
            (size_t) s->k * sizeof (int32_t));
  }
}

/* With prefetching (section 12.2) envs step in blocks of S_BLOCK: phase A for the whole block,
   then phase B, so that the new candidates' vectors, prefetched right after each env's
   retrieval, arrive while the rest of the block works; the next block's vectors and output rows
   and the state of the block after it are asked for ahead. Each env's own operations keep their
   order, so results are those of stepping one env at a time. */
#define S_BLOCK 4

static void s_step (ra_sim_t *s, int i0, int i1, const int32_t *actions, const ra_sim_buffers_t *buf)
{
  assert (i0 >= 0 && i1 <= s->num_envs);
  if (!s->prefetch) {   /* the batch fits in the caches: hints would only cost */
    for (int i = i0; i < i1; i++) {
      float oracle_value, regret;
      s_step_env (s, i, actions, buf, &oracle_value, &regret);
      s_step_obs (s, i, buf, oracle_value, regret);
    }
    return;
  }
  float oracle_value[S_BLOCK], regret[S_BLOCK];
  for (int i = i0; i < i1 && i < i0 + 2 * S_BLOCK; i++)
    s_prefetch_state (s, i);
  for (int i = i0; i < i1 && i < i0 + S_BLOCK; i++)
    s_prefetch_vectors (s, i);
  for (int b = i0; b < i1; b += S_BLOCK) {
    int b1 = b + S_BLOCK < i1 ? b + S_BLOCK : i1;
    for (int i = b1; i < i1 && i < b1 + S_BLOCK; i++) {   /* the next block: its vectors and rows */
      s_prefetch_vectors (s, i);
      s_prefetch_out (s, i, buf);
    }
    for (int i = b1 + S_BLOCK; i < i1 && i < b1 + 2 * S_BLOCK; i++)   /* the one after: state */
      s_prefetch_state (s, i);
    for (int i = b; i < b1; i++) {
      s_step_env (s, i, actions, buf, &oracle_value[i - b], &regret[i - b]);
      s_prefetch_vectors (s, i);
    }
    for (int i = b; i < b1; i++)
      s_step_obs (s, i, buf, oracle_value[i - b], regret[i - b]);
  }
}

/* set_task and describe_task are env/core/worlds.h's, fed this sim's task table and builder. */
static const ra_worlds_def_t s_worlds_def = { s_params, RA_NEWS_P_COUNT, S_SIM_KEY, s_slot_build };

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
  char slate[160];
  ra_render_slate (e->last_items, s->k, slate, sizeof slate);
  return snprintf (buf, cap,
                   "News-v1 env %d (task %s/%lld) step %d: user topic %d, time left %.2f of %.2f min, "
                   "no-click streak %d of %.2f, clicks %d, burst topic %d; last slate [%s], %d clicks, "
                   "dwell %.2f min\n",
                   env_index, ra_split_names[task->split], (long long) task->id, e->steps,
                   e->user.topic, e->user.budget, e->user.budget0, e->streak, e->user.patience,
                   e->clicks, e->burst_topic, slate, e->last_clicks, e->last_dwell);
}

void ra_news_view (const ra_sim_t *s, int i, ra_news_view_t *out)
{
  assert (i >= 0 && i < s->num_envs);
  const s_env_t *e = &s->envs[i];
  const s_slot_t *sl = &s->slots[s->worlds.cur[i]];
  size_t base = (size_t) i * s->cap;
  out->world = &sl->world;
  out->choice = &sl->choice;
  out->params = ra_worlds_task (&s->worlds, i)->values;
  out->user = &e->user;
  out->theta = s->theta + (size_t) i * s->d;
  out->theta_hat = s->theta_hat + (size_t) i * s->d;
  out->satiation_model = &sl->satiation;
  out->satiation = s->sat + (size_t) i * s->n_topics;
  out->now = s_now (e);
  out->session = e->session;
  out->satisfaction = e->satisfaction;
  out->topic_clicks = s->hclk + (size_t) i * s->n_topics;
  out->capacity = s->cap;
  out->dim = s->d;
  out->n_topics = s->n_topics;
  out->art_x = s->art_x + base * s->d;
  out->art_quality = s->art_q + base;
  out->art_qhat = s->art_qhat + base;
  out->art_topic = s->art_topic + base;
  out->art_birth = s->art_birth + base;
  out->art_serial = s->art_serial + base;
  out->art_burst = s->art_burst + base;
  out->candidates = s->cand + (size_t) i * s->K;
  out->clock = e->clock;
  out->published = e->published;
  out->burst_topic = e->burst_topic;
  out->burst_left = e->burst_left;
  out->streak = e->streak;
  out->steps = e->steps;
}

static ra_err_t s_check (const ra_sim_args_t *args, ra_error_t *err)
{
  return s_create (args, NULL, err);
}

const ra_sim_class_t ra_news_class = {
  .name = "News-v1",
  .description = "news feed: a publish stream of ageing articles with breaking-news bursts, topic "
                 "satiation, several clicks per slate with dwell time; reward clicks + dwell",
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
