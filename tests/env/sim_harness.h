/*  tests/env/sim_harness.h - test-only helpers: caller-owned buffers for a sim batch and a
    random valid slate generator, dtype-aware obs recording and bounds checks, and the checks
    every simulator suite runs the same way (make, bad config, recorded random runs, oracle vs
    random play, random-play statistics, the shared dynamics.* switches), parametrised by the
    sim class. Header-only (static functions); one copy per suite. The sim-level helpers assert
    with Criterion.                                                                          */
#ifndef RA_TESTS_ENV_SIM_HARNESS_H
#define RA_TESTS_ENV_SIM_HARNESS_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "env/core/dynamics.h"
#include "env/core/sim.h"
#include "protocol/tensor.h"

typedef struct {
  int n;
  const ra_sim_spec_t *spec;
  ra_sim_buffers_t buf;
  size_t obs_bytes[RA_SIM_MAX_FIELDS];  /* per env */
  size_t info_bytes[RA_SIM_MAX_FIELDS]; /* per env */
} harness_t;

static inline size_t h_numel (const ra_field_spec_t *f)
{
  size_t n = 1;
  for (int i = 0; i < f->ndim; i++)
    n *= (size_t) f->shape[i];
  return n;
}

static inline size_t h_dsize (ra_dtype_t t)
{
  return t == RA_DTYPE_F64 || t == RA_DTYPE_I64 ? 8 : t == RA_DTYPE_U8 || t == RA_DTYPE_I8 || t == RA_DTYPE_BOOL ? 1 : 4;
}

static inline void h_init (harness_t *h, const ra_sim_spec_t *sp, int n)
{
  memset (h, 0, sizeof *h);
  h->n = n;
  h->spec = sp;
  for (int f = 0; f < sp->n_obs; f++) {
    h->obs_bytes[f] = h_numel (&sp->obs[f]) * h_dsize (sp->obs[f].dtype);
    h->buf.obs[f] = calloc ((size_t) n, h->obs_bytes[f]);
  }
  for (int f = 0; f < sp->n_info; f++) {
    h->info_bytes[f] = h_numel (&sp->info[f]) * h_dsize (sp->info[f].dtype);
    h->buf.info[f] = calloc ((size_t) n, h->info_bytes[f]);
  }
  h->buf.reward = calloc ((size_t) n, sizeof (float));
  h->buf.terminated = calloc ((size_t) n, 1);
}

static inline void h_fini (harness_t *h)
{
  for (int f = 0; f < RA_SIM_MAX_FIELDS; f++) {
    free (h->buf.obs[f]);
    free (h->buf.info[f]);
  }
  free (h->buf.reward);
  free (h->buf.terminated);
}

static inline int h_info_index (const harness_t *h, const char *name)
{
  for (int f = 0; f < h->spec->n_info; f++)
    if (strcmp (h->spec->info[f].name, name) == 0)
      return f;
  return -1;
}

static inline int h_obs_index (const harness_t *h, const char *name)
{
  for (int f = 0; f < h->spec->n_obs; f++)
    if (strcmp (h->spec->obs[f].name, name) == 0)
      return f;
  return -1;
}

/* Bytes of one env's observation (every obs field, in key order). */
static inline size_t h_obs_row_bytes (const harness_t *h)
{
  size_t n = 0;
  for (int f = 0; f < h->spec->n_obs; f++)
    n += h->obs_bytes[f];
  return n;
}

/* Copies env i's obs rows, raw bytes of each field's dtype, into dst (h_obs_row_bytes bytes). */
static inline void h_record_obs (const harness_t *h, int i, unsigned char *dst)
{
  for (int f = 0; f < h->spec->n_obs; f++) {
    memcpy (dst, (const char *) h->buf.obs[f] + (size_t) i * h->obs_bytes[f], h->obs_bytes[f]);
    dst += h->obs_bytes[f];
  }
}

/* Element q of a buffer of dtype t, as a double (exact for every dtype but i64/u64 past 2^53). */
static inline double h_value (const void *p, ra_dtype_t t, size_t q)
{
  switch (t) {
  case RA_DTYPE_F32: return ((const float *) p)[q];
  case RA_DTYPE_F64: return ((const double *) p)[q];
  case RA_DTYPE_I32: return ((const int32_t *) p)[q];
  case RA_DTYPE_I64: return (double) ((const int64_t *) p)[q];
  case RA_DTYPE_I8: return ((const int8_t *) p)[q];
  case RA_DTYPE_U8:
  case RA_DTYPE_BOOL: return ((const uint8_t *) p)[q];
  default: abort ();
  }
}

/* Index of the first element of obs field f (all n envs) that is not finite or is outside the
   field's bounds, or numel(f) * n when every element is inside; *val gets that element. */
static inline size_t h_obs_first_out_of_bounds (const harness_t *h, int f, int n, double *val)
{
  const ra_field_spec_t *fs = &h->spec->obs[f];
  size_t m = (size_t) n * h_numel (fs);
  *val = 0;
  for (size_t q = 0; q < m; q++) {
    double x = h_value (h->buf.obs[f], fs->dtype, q);
    if (!(isfinite (x) && x >= fs->low && x <= fs->high)) {
      *val = x;
      return q;
    }
  }
  return m;
}

/* A random slate of k distinct indices in [0, K). */
static inline void h_random_slate (ra_rng_t *rng, int K, int k, int32_t *out)
{
  for (int r = 0; r < k; r++) {
    int dup;
    do {
      out[r] = (int32_t) ra_rng_below (rng, (uint32_t) K);
      dup = 0;
      for (int q = 0; q < r; q++)
        dup |= out[q] == out[r];
    } while (dup);
  }
}

/* Runs n envs of sim for `steps` random steps (resetting terminated envs) and checks the
   observation field "item_ids" against the info field "item": after each step item[i][r] is
   item_ids[i][slate[r]] of the observation the step acted on; ids lie in the field's bounds and
   are distinct within a row; an id seen in two consecutive observations of an env has the same
   first n_static candidate features both times (it names the same item); *repeats counts those
   ids. Returns the number of info items compared, or -1 with a description in why. */
static inline long h_check_item_ids (const ra_sim_class_t *cls, ra_sim_t *sim, int n, int steps,
                                     uint64_t seed, int n_static, long *repeats, char *why, size_t cap)
{
  harness_t h;
  h_init (&h, cls->spec (sim), n);
  const ra_sim_spec_t *sp = h.spec;
  const int K = sp->num_candidates, k = sp->slate_size;
  int fid = h_obs_index (&h, "item_ids"), fc = h_obs_index (&h, "candidates"), fit = h_info_index (&h, "item");
  long compared = -1;
  *repeats = 0;
  int32_t *prev = calloc ((size_t) n * K, sizeof (int32_t));
  int32_t *act = calloc ((size_t) n * k, sizeof (int32_t));
  float *prev_c = malloc ((size_t) n * h.obs_bytes[fc >= 0 ? fc : 0]);
  ra_rng_t rng;
  ra_rng_seed (&rng, seed, 3);
  if (fid < 0 || fc < 0 || fit < 0 || sp->obs[fid].dtype != RA_DTYPE_I32 || h_numel (&sp->obs[fid]) != (size_t) K) {
    snprintf (why, cap, "expected obs item_ids i32 (K) and candidates, info item");
    goto done;
  }
  const int F = (int) sp->obs[fc].shape[1];
  cls->reset (sim, 0, n, NULL, NULL, &h.buf);
  compared = 0;
  for (int t = 0; t <= steps && compared >= 0; t++) {
    const int32_t *ids = h.buf.obs[fid];
    const float *cand = h.buf.obs[fc];
    double bad;
    size_t q = h_obs_first_out_of_bounds (&h, fid, n, &bad);
    if (q != (size_t) n * K) {
      snprintf (why, cap, "step %d: item_ids[%zu] = %g outside [%g, %g]", t, q, bad, sp->obs[fid].low,
                sp->obs[fid].high);
      compared = -1;
      break;
    }
    for (int i = 0; i < n && compared >= 0; i++)
      for (int r = 0; r < K && compared >= 0; r++) {
        int32_t id = ids[(size_t) i * K + r];
        for (int a = 0; a < r && compared >= 0; a++)
          if (ids[(size_t) i * K + a] == id) {
            snprintf (why, cap, "step %d env %d: id %d at candidates %d and %d", t, i, id, a, r);
            compared = -1;
          }
        for (int a = 0; t > 0 && a < K && compared >= 0; a++)
          if (prev[(size_t) i * K + a] == id && ++*repeats
              && memcmp (prev_c + ((size_t) i * K + a) * F, cand + ((size_t) i * K + r) * F,
                         (size_t) n_static * sizeof (float)) != 0) {
            snprintf (why, cap, "step %d env %d: id %d has other features than the step before", t, i, id);
            compared = -1;
          }
      }
    if (compared < 0 || t == steps)
      break;
    memcpy (prev, ids, (size_t) n * K * sizeof (int32_t));
    memcpy (prev_c, cand, (size_t) n * K * F * sizeof (float));
    for (int i = 0; i < n; i++)
      h_random_slate (&rng, K, k, act + (size_t) i * k);
    cls->step (sim, 0, n, act, &h.buf);
    const int32_t *item = h.buf.info[fit];
    for (int i = 0; i < n && compared >= 0; i++)
      for (int r = 0; r < k; r++, compared++) {
        int32_t want = prev[(size_t) i * K + act[(size_t) i * k + r]], got = item[(size_t) i * k + r];
        if (got != want) {
          snprintf (why, cap, "step %d env %d slot %d: info item %d, item_ids[slate] %d", t, i, r, got, want);
          compared = -1;
          break;
        }
      }
    cls->reset (sim, 0, n, NULL, h.buf.terminated, &h.buf);
  }
done:
  free (prev_c);
  free (act);
  free (prev);
  h_fini (&h);
  return compared;
}

/* ---- helpers shared by the simulator suites ---- */

/* A batch of n envs of cls; asserts that create succeeds. */
static inline ra_sim_t *h_make (const ra_sim_class_t *cls, int n, uint64_t seed, const ra_kv_t *cfg, int n_cfg,
                                const ra_task_t *task)
{
  ra_sim_args_t a = { .config = cfg, .n_config = n_cfg, .task = task, .num_envs = n, .seed = seed };
  ra_sim_t *sim = NULL;
  ra_error_t err;
  ra_err_t rc = cls->create (&a, &sim, &err);
  cr_assert_eq (rc, RA_OK, "create: %s", err.message);
  return sim;
}

/* Asserts that making 2 envs of cls with the single config entry bad is BAD_CONFIG, makes
   nothing, and the message names key. */
static inline void h_expect_bad_config (const ra_sim_class_t *cls, const char *key, ra_kv_t bad, const char *why)
{
  ra_sim_args_t a = { .config = &bad, .n_config = 1, .num_envs = 2, .seed = 1 };
  ra_sim_t *sim = NULL;
  ra_error_t err;
  ra_err_t rc = cls->create (&a, &sim, &err);
  cr_assert_eq (rc, RA_ERR_BAD_CONFIG, "%s (%s) was accepted", key, why);
  cr_assert_null (sim);
  cr_assert_neq (strstr (err.message, key), NULL, "message '%s' should name '%s'", err.message, key);
}

/* One env's recorded run (h_run). */
typedef struct {
  unsigned char *obs; /* (steps + 1) x h_obs_row_bytes: env watch's obs rows, raw bytes */
  float *reward;      /* steps */
  uint8_t *term;      /* steps */
  int32_t *info;      /* steps: env watch's i32 info field named in h_run (0 when none) */
} h_trace_t;

static inline h_trace_t h_trace_new (int steps, size_t rb)
{
  h_trace_t t = { calloc ((size_t) (steps + 1) * rb, 1), calloc ((size_t) steps, sizeof (float)),
                  calloc ((size_t) steps, 1), calloc ((size_t) steps, sizeof (int32_t)) };
  return t;
}

static inline void h_trace_free (h_trace_t *t)
{
  free (t->obs);
  free (t->reward);
  free (t->term);
  free (t->info);
}

/* Bytes of one env's observation row of sim (h_obs_row_bytes without a harness at hand). */
static inline size_t h_obs_row_bytes_of (const ra_sim_class_t *cls, ra_sim_t *sim)
{
  harness_t h;
  h_init (&h, cls->spec (sim), 1);
  size_t rb = h_obs_row_bytes (&h);
  h_fini (&h);
  return rb;
}

/* Runs n envs of sim for `steps` steps with random slates (env i's from its own action stream
   keyed by first_env + i, so it depends only on (first_env + i, step)), stepping and then
   resetting terminated envs over the ranges split at `cut` (no split when cut is outside
   (0, n)). Records env `watch`'s obs rows, rewards, terminations and, when info_i32 is not
   NULL, that i32 info field into tr (from h_trace_new (steps, h_obs_row_bytes_of)). */
static inline void h_run (const ra_sim_class_t *cls, ra_sim_t *sim, int n, int first_env, int steps, int cut,
                          int watch, const char *info_i32, h_trace_t *tr)
{
  harness_t h;
  h_init (&h, cls->spec (sim), n);
  const int K = h.spec->num_candidates, k = h.spec->slate_size;
  const int fi = info_i32 ? h_info_index (&h, info_i32) : -1;
  if (info_i32 && fi < 0)
    cr_assert_fail ("no info field %s", info_i32);
  size_t rb = h_obs_row_bytes (&h);
  ra_rng_t *arng = calloc ((size_t) n, sizeof *arng);
  for (int i = 0; i < n; i++)
    ra_rng_seed (&arng[i], 1000 + (uint64_t) (first_env + i), 5);
  int32_t *act = calloc ((size_t) n * k, sizeof (int32_t));
  bool split = cut > 0 && cut < n;
  cls->reset (sim, 0, n, NULL, NULL, &h.buf);
  h_record_obs (&h, watch, tr->obs);
  for (int t = 0; t < steps; t++) {
    for (int i = 0; i < n; i++)
      h_random_slate (&arng[i], K, k, act + (size_t) i * k);
    cls->step (sim, 0, split ? cut : n, act, &h.buf);
    if (split)
      cls->step (sim, cut, n, act, &h.buf);
    tr->reward[t] = h.buf.reward[watch];
    tr->term[t] = h.buf.terminated[watch];
    if (fi >= 0)
      tr->info[t] = ((const int32_t *) h.buf.info[fi])[watch];
    cls->reset (sim, 0, split ? cut : n, NULL, h.buf.terminated, &h.buf);
    if (split)
      cls->reset (sim, cut, n, NULL, h.buf.terminated, &h.buf);
    h_record_obs (&h, watch, tr->obs + (size_t) (t + 1) * rb);
  }
  free (act);
  free (arng);
  h_fini (&h);
}

/* Mean reward per env-step of n envs of cls (config oracle on, seed 12, task) over `steps`
   steps, into *oracle when playing the oracle_slate of the previous step (random on an
   episode's first step) and into *random for random slates (action RNG seed 3 for both).
   Asserts regret >= 0 always, and ~0 for the oracle's own slate. */
static inline void h_oracle_vs_random (const ra_sim_class_t *cls, int n, int steps, const ra_task_t *task,
                                       double *oracle, double *random)
{
  ra_kv_t cfg[] = { { .key = "oracle", .type = RA_KV_BOOL, .num = 1 } };
  for (int pol = 0; pol < 2; pol++) {
    ra_sim_t *sim = h_make (cls, n, 12, cfg, 1, task);
    harness_t h;
    h_init (&h, cls->spec (sim), n);
    const int K = h.spec->num_candidates, k = h.spec->slate_size;
    int fs = h_info_index (&h, "oracle_slate"), fg = h_info_index (&h, "regret"), fo = h_info_index (&h, "oracle_reward");
    uint8_t *fresh = calloc ((size_t) n, 1);
    int32_t *act = calloc ((size_t) n * k, sizeof (int32_t));
    ra_rng_t rng;
    ra_rng_seed (&rng, 3, 0);
    cls->reset (sim, 0, n, NULL, NULL, &h.buf);
    memset (fresh, 1, (size_t) n);
    double total = 0;
    for (int t = 0; t < steps; t++) {
      for (int i = 0; i < n; i++) {
        if (pol == 0 && !fresh[i])
          memcpy (act + (size_t) i * k, (int32_t *) h.buf.info[fs] + (size_t) i * k, (size_t) k * sizeof (int32_t));
        else
          h_random_slate (&rng, K, k, act + (size_t) i * k);
      }
      cls->step (sim, 0, n, act, &h.buf);
      for (int i = 0; i < n; i++) {
        total += h.buf.reward[i];
        float g = ((float *) h.buf.info[fg])[i];
        if (!(g >= 0))
          cr_assert_fail ("regret %g", g);
        if (pol == 0 && !fresh[i] && !(g < 1e-3f * (1 + ((float *) h.buf.info[fo])[i])))
          cr_assert_fail ("oracle slate has regret %g", g);
        fresh[i] = h.buf.terminated[i];
      }
      cls->reset (sim, 0, n, NULL, h.buf.terminated, &h.buf);
    }
    *(pol == 0 ? oracle : random) = total / ((double) n * steps);
    free (fresh);
    free (act);
    h_fini (&h);
    cls->destroy (&sim);
  }
}

/* Episode statistics of random play (n envs of cls, seed 2, default config, action RNG seed 1)
   on a task over `steps` steps: clicks per env-step (info "clicked") and mean episode length. */
static inline void h_random_play_stats (const ra_sim_class_t *cls, int n, int steps, const ra_task_t *task,
                                        double *ctr, double *len)
{
  ra_sim_t *sim = h_make (cls, n, 2, NULL, 0, task);
  harness_t h;
  h_init (&h, cls->spec (sim), n);
  const int K = h.spec->num_candidates, k = h.spec->slate_size;
  int fc = h_info_index (&h, "clicked");
  ra_rng_t rng;
  ra_rng_seed (&rng, 1, 0);
  int32_t *act = calloc ((size_t) n * k, sizeof (int32_t));
  cls->reset (sim, 0, n, NULL, NULL, &h.buf);
  long clicks = 0, ends = 0;
  for (int t = 0; t < steps; t++) {
    for (int i = 0; i < n; i++)
      h_random_slate (&rng, K, k, act + (size_t) i * k);
    cls->step (sim, 0, n, act, &h.buf);
    for (int i = 0; i < n * k; i++)
      clicks += ((uint8_t *) h.buf.info[fc])[i];
    for (int i = 0; i < n; i++)
      ends += h.buf.terminated[i];
    cls->reset (sim, 0, n, NULL, h.buf.terminated, &h.buf);
  }
  *ctr = clicks / ((double) n * steps);
  *len = (double) n * steps / (double) (ends ? ends : 1);
  free (act);
  h_fini (&h);
  cls->destroy (&sim);
}

/* ---- the shared dynamics (dynamics.* config), checked the same way in every sim that has them ---- */

/* One dynamics.* config entry, bool or number: S_B ("drift", 1), S_N ("budget_mean", 4). */
#define S_B(name, v) { .key = "dynamics." name, .type = RA_KV_BOOL, .num = (v) }
#define S_N(name, v) { .key = "dynamics." name, .type = RA_KV_NUM, .num = (v) }

typedef struct {
  long clicks, env_steps, ends, returns;
  int max_session_len, max_returns;       /* longest session; most returns in one episode */
  long long_sessions;                     /* sessions longer than 4 steps */
} h_dyn_stats_t;

/* Runs n envs of cls (seed 5) for `steps` steps, slate {0..k-1} when fixed else random (rng seed
   9); checks every obs inside its bounds, and with return on that "session" counts the returns of
   the episode and no step both returns and ends. */
static inline h_dyn_stats_t h_dyn_run (const ra_sim_class_t *cls, const ra_kv_t *cfg, int n_cfg, const ra_task_t *task,
                                       int n, int steps, bool fixed)
{
  ra_sim_t *sim = h_make (cls, n, 5, cfg, n_cfg, task);
  harness_t h;
  h_init (&h, cls->spec (sim), n);
  const int K = h.spec->num_candidates, k = h.spec->slate_size;
  int fc = h_info_index (&h, "clicked"), fr = h_info_index (&h, "returned"), fs = h_info_index (&h, "session");
  ra_rng_t rng;
  ra_rng_seed (&rng, 9, 0);
  int32_t *act = calloc ((size_t) n * k, sizeof (int32_t));
  int *len = calloc ((size_t) n, sizeof (int)), *ret = calloc ((size_t) n, sizeof (int));
  h_dyn_stats_t st = { 0 };
  cls->reset (sim, 0, n, NULL, NULL, &h.buf);
  for (int t = 0; t < steps; t++) {
    for (int i = 0; i < n; i++)
      for (int r = 0; r < k; r++)
        if (fixed)
          act[i * k + r] = r;
        else if (r == 0)
          h_random_slate (&rng, K, k, act + (size_t) i * k);
    cls->step (sim, 0, n, act, &h.buf);
    for (int q = 0; q < n * k; q++)
      st.clicks += ((uint8_t *) h.buf.info[fc])[q];
    st.env_steps += n;
    for (int i = 0; i < n; i++) {
      bool returned = fr >= 0 && ((uint8_t *) h.buf.info[fr])[i];
      len[i]++;
      if (returned) {
        if (h.buf.terminated[i])
          cr_assert_fail ("env %d returned and ended at step %d", i, t);
        ret[i]++;
        st.returns++;
      }
      if (fs >= 0 && ((int32_t *) h.buf.info[fs])[i] != ret[i])
        cr_assert_fail ("env %d session %d after %d returns", i, ((int32_t *) h.buf.info[fs])[i], ret[i]);
      if (returned || h.buf.terminated[i]) {
        st.max_session_len = len[i] > st.max_session_len ? len[i] : st.max_session_len;
        st.long_sessions += len[i] > 4;
        len[i] = 0;
      }
      if (h.buf.terminated[i]) {
        st.ends++;
        st.max_returns = ret[i] > st.max_returns ? ret[i] : st.max_returns;
        ret[i] = 0;
      }
    }
    cls->reset (sim, 0, n, NULL, h.buf.terminated, &h.buf);
    for (int f = 0; f < h.spec->n_obs; f++) {
      double val;
      size_t q = h_obs_first_out_of_bounds (&h, f, n, &val);
      if (q != (size_t) n * h_numel (&h.spec->obs[f]))
        cr_assert_fail ("obs %s[%zu] = %g out of bounds at step %d", h.spec->obs[f].name, q, val, t);
    }
  }
  free (act);
  free (len);
  free (ret);
  h_fini (&h);
  cls->destroy (&sim);
  return st;
}

/* Asserts that every dynamics.* key is in cls's config_defaults with the shared defaults (drift
   as given: it is the one a sim chooses), and that bad dynamics values are BAD_CONFIG naming the key. */
static inline void h_check_dynamics_keys (const ra_sim_class_t *cls, bool drift)
{
  ra_dynamics_t d;
  ra_dynamics_defaults (&d);
  d.drift = drift;
  ra_kv_t want[RA_DYNAMICS_N_KEYS];
  cr_assert_eq (ra_dynamics_defaults_kv (&d, want, RA_DYNAMICS_N_KEYS), RA_DYNAMICS_N_KEYS);
  for (int q = 0; q < RA_DYNAMICS_N_KEYS; q++) {
    int found = -1;
    for (int c = 0; c < cls->n_config_defaults; c++)
      if (strcmp (cls->config_defaults[c].key, want[q].key) == 0)
        found = c;
    cr_assert_geq (found, 0, "%s is not in config_defaults", want[q].key);
    cr_assert_eq (cls->config_defaults[found].type, want[q].type, "%s", want[q].key);
    cr_assert_float_eq (cls->config_defaults[found].num, want[q].num, 1e-6, "%s", want[q].key);
  }
  h_expect_bad_config (cls, "dynamics.boredom_decay", (ra_kv_t) S_N ("boredom_decay", 0), "decay 0");
  h_expect_bad_config (cls, "dynamics.boredom_timeout", (ra_kv_t) S_N ("boredom_timeout", 0.5), "fraction");
  h_expect_bad_config (cls, "dynamics.return_delay_max", (ra_kv_t) S_N ("return_delay_max", 0.5), "below delay_min");
  h_expect_bad_config (cls, "dynamics.return", (ra_kv_t) { .key = "dynamics.return", .type = RA_KV_STR, .str = "x" },
                       "string for a bool");
  ra_kv_t cfg[] = { S_B ("time_budget", 1), S_N ("budget_step_cost", 0) };
  ra_sim_args_t a = { .config = cfg, .n_config = 2, .num_envs = 1, .seed = 1 };
  ra_sim_t *sim = NULL;
  ra_error_t err;
  cr_assert_eq (cls->create (&a, &sim, &err), RA_ERR_BAD_CONFIG);
  cr_assert_neq (strstr (err.message, "dynamics.budget_step_cost"), NULL, "%s", err.message);
}

/* Copies env 0's latent interest (16 floats) of sim into theta; the sim's view function reads it. */
typedef void (*h_theta_of_fn) (ra_sim_t *sim, float theta[16]);

/* Steps env 0 of a 1-env batch of cls (seed 3) with slate {0, 1, 2} until it clicked 5 times (or
   40 steps); returns whether theta (as theta_of reads it) moved from its value at reset. */
static inline bool h_theta_moves (const ra_sim_class_t *cls, h_theta_of_fn theta_of, const ra_kv_t *cfg, int n_cfg)
{
  ra_sim_t *sim = h_make (cls, 1, 3, cfg, n_cfg, NULL);
  harness_t h;
  h_init (&h, cls->spec (sim), 1);
  cls->reset (sim, 0, 1, NULL, NULL, &h.buf);
  float th0[16], th1[16];
  theta_of (sim, th0);
  int32_t act[3] = { 0, 1, 2 };
  int clicks = 0;
  for (int t = 0; t < 40 && clicks < 5 && !h.buf.terminated[0]; t++) {
    cls->step (sim, 0, 1, act, &h.buf);
    for (int r = 0; r < 3; r++)
      clicks += ((uint8_t *) h.buf.info[1])[r];
  }
  cr_assert_gt (clicks, 0);
  theta_of (sim, th1);
  bool moved = memcmp (th0, th1, sizeof th0) != 0;
  h_fini (&h);
  cls->destroy (&sim);
  return moved;
}

#endif
