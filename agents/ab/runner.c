/*  agents/ab/runner.c - plays arms on tasks, on a server or in this process (agents/ab/envs.h;
    see runner.h; docs/agents.md section 2.1).

    One env batch (num_envs envs, autoreset disabled, oracle=true when the sim accepts it) is
    made once. For each task and each arm: set_task(split, id), reset env i with the seed of
    its episode 0 (ra_ab_episode_seed), a fresh arm (seed mix(seed ^ hash(key), id)), then steps
    until every env has finished `episodes` episodes. An env that ends is reset at once, alone
    (reset_mask), with the seed of its next episode, so every arm meets the same users at every
    episode start (common random numbers at every K, not only K = 0); the arm learns from all N
    envs every step; stats count only each env's first `episodes` episodes.
    With opts->threads > 1 (sims in this process only) tasks are handed out to that many workers,
    each with its own env batch, playing every arm on the task it took; since a pair's play
    depends only on its seeds, the numbers are the same bits for any number of threads.         */
#include "agents/ab/runner.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/ab/envs.h"
#include "agents/policies/registry.h"
#include "common/kv.h"
#include "common/rng.h"

/* One splitmix64 step from state a + gamma b (gamma the splitmix increment): seeds for task b. */
static uint64_t s_mix (uint64_t a, uint64_t b)
{
  uint64_t x = a + 0x9E3779B97F4A7C15ull * b;
  return ra_rng_splitmix64 (&x);
}

/* FNV-1a 64 over n more bytes, from h (the offset basis 0xCBF29CE484222325 to start). */
static uint64_t s_fnv1a (uint64_t h, const unsigned char *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 0x100000001B3ull;
  return h;
}

static uint64_t s_hash_str (const char *s)
{
  return s_fnv1a (0xCBF29CE484222325ull, (const unsigned char *) s, strlen (s));
}

/* Settings whose value names a file the arm reads (a target checkpoint, a meta-TS prior). The
   arm's key holds the file's bytes as a hash instead of its path, so the same checkpoint plays
   the same wherever it is copied (a path in a temporary or output directory used to change the
   arm's streams). A file that cannot be read keeps its path: creating the arm reports it. The
   target arm's init=FILE counts as checkpoint=FILE. */
static const char *const s_file_settings[] = { "checkpoint", "prior", NULL };

static bool s_is_file_setting (const char *key)
{
  for (const char *const *k = s_file_settings; *k; k++)
    if (!strcmp (key, *k))
      return true;
  return false;
}

/* FNV-1a 64 of the file's bytes into *h; false when it cannot be read. */
static bool s_hash_file (const char *path, uint64_t *h)
{
  FILE *f = fopen (path, "rb");
  if (!f)
    return false;
  uint64_t x = 0xCBF29CE484222325ull;
  unsigned char buf[65536];
  size_t n;
  while ((n = fread (buf, 1, sizeof buf, f)) > 0)
    x = s_fnv1a (x, buf, n);
  bool ok = !ferror (f);
  fclose (f);
  *h = x;
  return ok;
}

ra_err_t ra_ab_arm_parse (const char *spec, ra_ab_arm_t *out, ra_error_t *err)
{
  memset (out, 0, sizeof *out);
  if (strlen (spec) >= sizeof out->store)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "arm '%.40s...' is too long (%zu bytes; at most %d)", spec,
                         strlen (spec), RA_AB_ARM_SPEC_MAX - 1);
  strcpy (out->spec, spec);
  strcpy (out->store, spec);
  char *save = NULL, *name = strtok_r (out->store, ":", &save);
  if (!name || !(out->cls = ra_policies_find (name)))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "unknown arm '%s' (see --list-arms)",
                         name ? name : "");
  snprintf (out->key, sizeof out->key, "%s", name);
  for (char *tok; (tok = strtok_r (NULL, ":", &save));) {
    char *key, *value;
    ra_error_t why;
    if (ra_kv_split (tok, &key, &value, &why) != RA_OK)
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "arm '%s': %s", spec, why.message);
    if (!strcmp (key, "name")) {          /* the display name, not a policy setting */
      if (!*value)
        return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "arm '%s': name= needs a label (the arm's "
                             "name in the report)", spec);
      snprintf (out->spec, sizeof out->spec, "%s", value);
      continue;
    }
    if (!strcmp (key, "credit")) {        /* the harness's feedback, not a policy setting */
      if (strcmp (value, "clicked") && strcmp (value, "metric"))
        return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "arm '%s': credit is clicked or metric, "
                             "got '%s'", spec, value);
      out->has_credit = true;
      out->credit = value[0] == 'c' ? RA_AB_CREDIT_CLICKED : RA_AB_CREDIT_METRIC;
      continue;
    }
    if (out->n_config == RA_AB_MAX_ARM_SETTINGS)
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "arm '%s': more than %d settings", spec,
                           RA_AB_MAX_ARM_SETTINGS);
    size_t used = strlen (out->key);      /* fits: the spec's length plus a hash per setting */
    uint64_t bytes;
    /* the target arm's init=FILE is checkpoint=FILE and init=random no checkpoint: the same key,
       so the same streams */
    bool init = !strcmp (key, "init");
    const char *as = init ? "checkpoint" : key;
    if (init && !strcmp (value, "random"))
      ;
    else if ((init || s_is_file_setting (key)) && s_hash_file (value, &bytes))
      snprintf (out->key + used, sizeof out->key - used, ":%s=#%016llx", as, (unsigned long long) bytes);
    else
      snprintf (out->key + used, sizeof out->key - used, ":%s=%s", as, value);
    ra_kv_t *kv = &out->config[out->n_config++];
    kv->key = key;
    ra_kv_parse_value (value, kv);
  }
  return RA_OK;
}

uint64_t ra_ab_episode_seed (uint64_t seed, const char *split, int64_t task_id, int env, int episode)
{
  uint64_t h = s_mix (seed, s_hash_str (split));
  h = s_mix (h, (uint64_t) task_id);
  h = s_mix (h, (uint64_t) env);
  return s_mix (h, (uint64_t) episode);
}

/* ------------------------------------------------------------------------------------------ */

static const ra_tensor_t *s_info (const ra_step_result_t *r, const char *name)
{
  int i = ra_fields_find (&r->info, name);
  return i >= 0 ? &r->info.tensors[i] : NULL;
}

/* Element i of a tensor as a double, whatever its dtype and alignment. */
static double s_at (const ra_tensor_t *t, int64_t i)
{
  if (t->dtype == RA_DTYPE_F32) {
    float v;
    memcpy (&v, (const char *) t->data + 4 * i, 4);
    return v;
  }
  if (t->dtype == RA_DTYPE_F64) {
    double v;
    memcpy (&v, (const char *) t->data + 8 * i, 8);
    return v;
  }
  return (double) ra_tensor_get_int (t, i);
}

/* Per-slot value r of env i: the slot's own value for (N, k) tensors; for (N) tensors the
   step's value, credited to slot 0. */
static double s_slot (const ra_tensor_t *t, int N, int k, int i, int r)
{
  if (!t)
    return 0;
  int64_t n = ra_tensor_numel (t);
  if (n == (int64_t) N * k)
    return s_at (t, (int64_t) i * k + r);
  return r == 0 && n == N ? s_at (t, i) : 0;
}

/* Intra-slate diversity (docs/agents.md 2.2): mean over slot pairs of 1 - cos(x_a, x_b) on the
   first e candidate features; 0 for k = 1. */
static double s_diversity (const float *cand, int F, int e, const int32_t *slate, int k)
{
  if (k < 2)
    return 0;
  double sum = 0;
  for (int a = 0; a < k; a++)
    for (int b = a + 1; b < k; b++) {
      const float *x = cand + (size_t) slate[a] * F, *y = cand + (size_t) slate[b] * F;
      double xy = 0, xx = 0, yy = 0;
      for (int j = 0; j < e; j++) {
        xy += (double) x[j] * y[j];
        xx += (double) x[j] * x[j];
        yy += (double) y[j] * y[j];
      }
      sum += xx > 0 && yy > 0 ? 1.0 - xy / sqrt (xx * yy) : 1.0;
    }
  return sum / (k * (k - 1) / 2);
}

static int s_cmp_i64 (const void *a, const void *b)
{
  int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
  return (x > y) - (x < y);
}

typedef struct {
  int N, K, k, U, F, R;
  float *user, *cand, *resp;            /* the observation the arm acted on (copies) */
  int32_t *ids;                         /* N x K or NULL */
  bool has_ids;
  float *scratch;
  size_t scratch_n;
  int32_t *slates, *oracle;             /* N x k */
  float *reward, *credit;               /* N ; N x k */
  uint8_t *clicked, *done;              /* N x k ; N */
  bool *mask;                           /* N: envs to reset */
  uint64_t *seeds;                      /* N: seed of each env's next episode */
  int *eps;                             /* N: finished episodes */
  double *ret;                          /* N: running return of the current episode */
  int64_t *items;                       /* catalog ids shown on the task */
  size_t n_items, cap_items;
} s_run_t;

static void s_run_fini (s_run_t *s)
{
  free (s->user);
  free (s->cand);
  free (s->resp);
  free (s->ids);
  free (s->scratch);
  free (s->slates);
  free (s->oracle);
  free (s->reward);
  free (s->credit);
  free (s->clicked);
  free (s->done);
  free (s->mask);
  free (s->seeds);
  free (s->eps);
  free (s->ret);
  free (s->items);
}

/* The buffers of one env batch of N envs, K candidates and slates of k (the observation's own
   copies come with its first reply, s_copy_obs). False when out of memory (s_run_fini frees). */
static bool s_run_alloc (s_run_t *s, int N, int K, int k)
{
  memset (s, 0, sizeof *s);
  s->N = N;
  s->K = K;
  s->k = k;
  s->scratch_n = (size_t) N * (4096 + (size_t) K * 512);
  s->scratch = malloc (s->scratch_n * sizeof (float));
  s->slates = calloc ((size_t) N * k, sizeof (int32_t));
  s->oracle = calloc ((size_t) N * k, sizeof (int32_t));
  s->reward = calloc ((size_t) N, sizeof (float));
  s->credit = calloc ((size_t) N * k, sizeof (float));
  s->clicked = calloc ((size_t) N * k, 1);
  s->done = calloc ((size_t) N, 1);
  s->mask = calloc ((size_t) N, sizeof (bool));
  s->seeds = calloc ((size_t) N, sizeof (uint64_t));
  s->eps = calloc ((size_t) N, sizeof (int));
  s->ret = calloc ((size_t) N, sizeof (double));
  return s->scratch && s->slates && s->oracle && s->reward && s->credit && s->clicked && s->done
         && s->mask && s->seeds && s->eps && s->ret;
}

/* What the workers of one run share: the next task to hand out, the first error, and the
   progress count (episodes of finished pairs, plus each worker's pair under way). */
typedef struct {
  pthread_mutex_t mu;
  int next_task;
  bool failed;
  ra_err_t rc;
  ra_error_t err;
  double done, total;
  int workers;
  double *partial;                      /* [workers] episodes of each worker's pair under way */
} s_shared_t;

static void s_fail (s_shared_t *sh, ra_err_t rc, const ra_error_t *err)
{
  pthread_mutex_lock (&sh->mu);
  if (!sh->failed) {
    sh->failed = true;
    sh->rc = rc;
    sh->err = *err;
  }
  pthread_mutex_unlock (&sh->mu);
}

/* Tells opts->progress where the run stands: worker w's pair (arm, task t) has played
   `partial` episodes, or with pair_done it has finished them all. */
static void s_report (s_shared_t *sh, const ra_ab_opts_t *o, int w, const ra_ab_arm_t *arm, int t,
                      double partial, bool pair_done)
{
  if (!o->progress)
    return;
  pthread_mutex_lock (&sh->mu);
  if (pair_done) {
    sh->done += partial;
    partial = 0;
  }
  sh->partial[w] = partial;
  double now = sh->done;
  for (int j = 0; j < sh->workers; j++)
    now += sh->partial[j];
  o->progress (o->progress_ud, arm->spec, t, now, sh->total);
  pthread_mutex_unlock (&sh->mu);
}

/* Copies the reply's observation into s (the arm learns on it after the next call). */
static ra_err_t s_copy_obs (s_run_t *s, const ra_fields_t *obs, ra_obs_batch_t *view, ra_error_t *err)
{
  ra_obs_batch_t v;
  ra_err_t rc = ra_obs_batch_from_fields (obs, s->k, s->scratch, s->scratch_n, &v, err);
  if (rc != RA_OK)
    return rc;
  if (!s->user) {   /* first observation: learn the dims */
    s->U = v.user_dim;
    s->F = v.cand_dim;
    s->R = v.response_dim;
    s->user = malloc ((size_t) s->N * s->U * sizeof (float));
    s->cand = malloc ((size_t) s->N * s->K * s->F * sizeof (float));
    s->resp = malloc ((size_t) s->N * (s->R > 0 ? s->R : 1) * sizeof (float));
    s->ids = malloc ((size_t) s->N * s->K * sizeof (int32_t));
    if (!s->user || !s->cand || !s->resp || !s->ids)
      return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory for %d observations", s->N);
  }
  if (v.num_envs != s->N || v.num_candidates != s->K || v.user_dim != s->U || v.cand_dim != s->F
      || v.response_dim != s->R)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "observation shape changed between steps");
  memcpy (s->user, v.user, (size_t) s->N * s->U * sizeof (float));
  memcpy (s->cand, v.candidates, (size_t) s->N * s->K * s->F * sizeof (float));
  memcpy (s->resp, v.response, (size_t) s->N * s->R * sizeof (float));
  s->has_ids = v.item_ids != NULL;
  if (v.item_ids)
    memcpy (s->ids, v.item_ids, (size_t) s->N * s->K * sizeof (int32_t));
  *view = v;
  view->user = s->user;
  view->candidates = s->cand;
  view->response = s->resp;
  view->item_ids = s->has_ids ? s->ids : NULL;
  return RA_OK;
}

static ra_err_t s_push_item (s_run_t *s, int64_t id, ra_error_t *err)
{
  if (s->n_items == s->cap_items) {
    size_t cap = s->cap_items ? 2 * s->cap_items : 4096;
    int64_t *p = realloc (s->items, cap * sizeof *p);
    if (!p)
      return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory for the coverage log");
    s->items = p;
    s->cap_items = cap;
  }
  s->items[s->n_items++] = id;
  return RA_OK;
}

/* Overwrites the rows of the envs in mask with the observation of a reset reply (the other rows
   of that reply are not looked at). */
static ra_err_t s_merge_obs (s_run_t *s, const ra_fields_t *obs, const bool *mask, ra_error_t *err)
{
  ra_obs_batch_t v;
  ra_err_t rc = ra_obs_batch_from_fields (obs, s->k, s->scratch, s->scratch_n, &v, err);
  if (rc != RA_OK)
    return rc;
  if (v.num_envs != s->N || v.num_candidates != s->K || v.user_dim != s->U || v.cand_dim != s->F
      || v.response_dim != s->R || (v.item_ids != NULL) != s->has_ids)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "observation shape changed between steps");
  for (int i = 0; i < s->N; i++) {
    if (!mask[i])
      continue;
    memcpy (s->user + (size_t) i * s->U, v.user + (size_t) i * s->U, (size_t) s->U * sizeof (float));
    memcpy (s->cand + (size_t) i * s->K * s->F, v.candidates + (size_t) i * s->K * s->F,
            (size_t) s->K * s->F * sizeof (float));
    memcpy (s->resp + (size_t) i * s->R, v.response + (size_t) i * s->R, (size_t) s->R * sizeof (float));
    if (s->has_ids)
      memcpy (s->ids + (size_t) i * s->K, v.item_ids + (size_t) i * s->K, (size_t) s->K * sizeof (int32_t));
  }
  return RA_OK;
}

/* The frozen evaluation (docs/agents.md 2.1): every env is reset and plays o->frozen_episodes
   more episodes, seeded as episodes E, E + 1, ... of AB1; their returns go to ep[i * stride + E +
   f]. An arm with a freeze hook is frozen by it and still gets its feedback (it must not learn
   from it: the oracle reads its next slates there); an arm without one gets no feedback, so it
   cannot learn. */
static ra_err_t s_play_frozen (ra_ab_envs_t *e, const ra_ab_opts_t *o,
                               ra_policy_t *pol, int t, s_run_t *s, const ra_ab_result_t *res, int a,
                               ra_error_t *err)
{
  double *ep = ra_ab_ep_return (res, a, t, 0);
  const int stride = res->episodes + res->frozen;
  const ra_ab_credit_t credit = res->arm_credit[a];
  const int N = s->N, k = s->k, E = o->episodes, Ef = o->frozen_episodes;
  if (Ef <= 0)
    return RA_OK;
  const int64_t id = o->task_ids ? o->task_ids[t] : t;
  if (pol->cls->freeze)
    pol->cls->freeze (pol);
  for (int i = 0; i < N; i++) {
    s->seeds[i] = ra_ab_episode_seed (o->seed, o->split, id, i, E);
    s->eps[i] = 0;
    s->ret[i] = 0;
  }
  ra_step_result_t r;
  ra_obs_batch_t obs;
  ra_err_t rc = ra_ab_envs_reset (e, s->seeds, NULL, &r, err);
  if (rc != RA_OK || (rc = s_copy_obs (s, &r.obs, &obs, err)) != RA_OK)
    return rc;
  long max_steps = (long) Ef * ((e->max_episode_steps > 0 ? e->max_episode_steps : 1000) + 1) + 16;
  int finished = 0;
  for (long step = 0; finished < N; step++) {
    if (step > max_steps)
      return ra_error_set (err, RA_ERR_INTERNAL, -1, "envs did not finish %d frozen episodes within %ld "
                           "steps", Ef, max_steps);
    pol->cls->act (pol, &obs, s->slates);
    if ((rc = ra_ab_envs_step (e, s->slates, &r, err)) != RA_OK)
      return rc;
    const ra_tensor_t *clicked = s_info (&r, "clicked"), *oracle = s_info (&r, "oracle_slate");
    const ra_tensor_t *main = res->has_main ? s_info (&r, res->main_name) : NULL;
    bool any_done = false;
    for (int i = 0; i < N; i++) {
      bool done = ra_tensor_get_int (&r.terminated, i) || ra_tensor_get_int (&r.truncated, i);
      s->mask[i] = done;
      any_done |= done;
      s->reward[i] = (float) s_at (&r.reward, i);
      s->done[i] = done;
      for (int q = 0; q < k; q++) {
        size_t j = (size_t) i * k + q;
        s->clicked[j] = (uint8_t) (s_slot (clicked, N, k, i, q) != 0);
        s->credit[j] = credit == RA_AB_CREDIT_METRIC ? (float) s_slot (main, N, k, i, q) : (float) s->clicked[j];
        s->oracle[j] = oracle ? (int32_t) s_slot (oracle, N, k, i, q) : 0;
      }
      if (s->eps[i] < Ef) {
        s->ret[i] += s_at (&r.reward, i);
        if (done) {
          ep[(size_t) i * stride + E + s->eps[i]] = s->ret[i];
          s->ret[i] = 0;
          finished += ++s->eps[i] == Ef;
        }
      }
      if (done)
        s->seeds[i] = ra_ab_episode_seed (o->seed, o->split, id, i, E + s->eps[i]);
    }
    if (pol->cls->freeze) {
      ra_feedback_t fb = {
        .slates = s->slates, .reward = s->reward, .slot_reward = s->credit, .clicked = s->clicked,
        .done = s->done, .oracle_slates = oracle ? s->oracle : NULL,
      };
      pol->cls->learn (pol, &obs, &fb);
    }
    if ((rc = s_copy_obs (s, &r.obs, &obs, err)) != RA_OK)
      return rc;
    if (any_done && finished < N
        && ((rc = ra_ab_envs_reset (e, s->seeds, s->mask, &r, err)) != RA_OK
            || (rc = s_merge_obs (s, &r.obs, s->mask, err)) != RA_OK))
      return rc;
  }
  return RA_OK;
}

/* What arm a is built from on task id (its RNG stream keyed by the arm and the task). */
static ra_policy_args_t s_policy_args (const ra_ab_opts_t *o, const ra_ab_arm_t *arm,
                                       const s_run_t *s, int64_t id, ra_ab_credit_t credit)
{
  return (ra_policy_args_t) {
    .config = arm->config, .n_config = arm->n_config,
    .seed = s_mix (o->seed ^ s_hash_str (arm->key), (uint64_t) id), .task_split = o->split, .task_id = id,
    .num_envs = s->N, .num_candidates = s->K, .slate_size = s->k, .user_dim = s->U, .cand_dim = s->F,
    .response_dim = s->R, .env_id = o->env_id,
    .credit = credit == RA_AB_CREDIT_METRIC ? "metric" : "clicked",
  };
}

/* Builds and drops every arm for every task before any arm plays, so that a bad setting or a
   missing file (a checkpoint, an expert for the 40th task) is an error in the first second, not
   after hours of the other arms' play. Cost: arms x tasks creates (each loads its files). */
static ra_err_t s_check_arms (const ra_ab_opts_t *o, const ra_ab_arm_t *arms, int n_arms,
                              const s_run_t *s, const ra_ab_result_t *res, ra_error_t *err)
{
  for (int a = 0; a < n_arms; a++)
    for (int t = 0; t < o->tasks; t++) {
      ra_policy_args_t pa = s_policy_args (o, &arms[a], s, res->task_ids[t], res->arm_credit[a]);
      ra_policy_t *pol = NULL;
      ra_error_t why = { 0 };
      if (arms[a].cls->create (&pa, &pol, &why) != RA_OK)
        return ra_error_set (err, why.code, -1, "arm '%s' on task %s:%lld: %s", arms[a].spec,
                             o->split, (long long) res->task_ids[t], why.message);
      pol->cls->destroy (&pol);
    }
  return RA_OK;
}

/* One arm on one task: from reset until every env finished opts->episodes episodes. Env i's
   episode e always starts from ra_ab_episode_seed (.., i, e), whatever the arm did before. */
static ra_err_t s_play (ra_ab_envs_t *e, const ra_ab_opts_t *o,
                        const ra_ab_arm_t *arm, int a, int t, s_run_t *s, ra_ab_result_t *res,
                        s_shared_t *sh, int w, ra_error_t *err)
{
  const int N = s->N, k = s->k, E = o->episodes;
  const int64_t id = res->task_ids[t];
  const ra_ab_credit_t credit = res->arm_credit[a];
  ra_err_t rc = ra_ab_envs_set_task (e, o->split, id, err);
  if (rc != RA_OK)
    return rc;
  for (int i = 0; i < N; i++)
    s->seeds[i] = ra_ab_episode_seed (o->seed, o->split, id, i, 0);
  ra_step_result_t r;
  if ((rc = ra_ab_envs_reset (e, s->seeds, NULL, &r, err)) != RA_OK)
    return rc;
  ra_obs_batch_t obs;
  if ((rc = s_copy_obs (s, &r.obs, &obs, err)) != RA_OK)
    return rc;
  ra_policy_args_t pa = s_policy_args (o, arm, s, id, credit);
  ra_policy_t *pol = NULL;
  if ((rc = arm->cls->create (&pa, &pol, err)) != RA_OK)
    return rc;
  if (o->arm_hook && (rc = o->arm_hook (o->arm_hook_ud, a, id, pol, false, err)) != RA_OK)
    goto out;
  memset (s->eps, 0, (size_t) N * sizeof *s->eps);
  memset (s->ret, 0, (size_t) N * sizeof *s->ret);
  s->n_items = 0;
  int finished = 0, e_dim = s->U < s->F ? s->U - 4 : s->F - 4;
  if (e_dim < 1)
    e_dim = s->F < s->U ? s->F : s->U;
  long max_steps = (long) E * ((e->max_episode_steps > 0 ? e->max_episode_steps : 1000) + 1) + 16;
  for (long step = 0; finished < N; step++) {
    if (step > max_steps) {
      rc = ra_error_set (err, RA_ERR_INTERNAL, -1, "envs did not finish %d episodes within %ld steps",
                         E, max_steps);
      goto out;
    }
    pol->cls->act (pol, &obs, s->slates);
    if ((rc = ra_ab_envs_step (e, s->slates, &r, err)) != RA_OK)
      goto out;
    const ra_tensor_t *clicked = s_info (&r, "clicked"), *item = s_info (&r, "item");
    const ra_tensor_t *conv = res->has_conversion ? s_info (&r, res->conversion_name) : NULL;
    const ra_tensor_t *main = res->has_main ? s_info (&r, res->main_name) : NULL;
    const ra_tensor_t *regret = s_info (&r, "regret"), *oracle = s_info (&r, "oracle_slate");
    bool any_done = false;
    for (int i = 0; i < N; i++) {
      s->reward[i] = (float) s_at (&r.reward, i);
      s->done[i] = (uint8_t) (ra_tensor_get_int (&r.terminated, i) || ra_tensor_get_int (&r.truncated, i));
      s->mask[i] = s->done[i] != 0;
      any_done |= s->mask[i];
      for (int q = 0; q < k; q++) {
        size_t j = (size_t) i * k + q;
        s->clicked[j] = (uint8_t) (s_slot (clicked, N, k, i, q) != 0);
        s->credit[j] = credit == RA_AB_CREDIT_METRIC ? (float) s_slot (main, N, k, i, q)
                                                        : (float) s->clicked[j];
        s->oracle[j] = oracle ? (int32_t) s_slot (oracle, N, k, i, q) : 0;
      }
      int ep = s->eps[i];
      if (s->done[i])   /* the episode this env starts next: seeded by its index */
        s->seeds[i] = ra_ab_episode_seed (o->seed, o->split, id, i, ep + 1);
      if (ep >= E) {
        s->eps[i] += s->done[i];
        continue;
      }
      ra_ab_cell_t *cell = ra_ab_cell (res, a, t, i);
      cell->reward += s->reward[i];
      cell->steps += 1;
      cell->slots += k;
      cell->diversity += s_diversity (s->cand + (size_t) i * s->K * s->F, s->F, e_dim,
                                      s->slates + (size_t) i * k, k);
      cell->regret += regret ? s_at (regret, i) : 0;
      for (int q = 0; q < k; q++) {
        cell->clicks += s->clicked[(size_t) i * k + q];
        cell->conversions += s_slot (conv, N, k, i, q) != 0;
        cell->main += s_slot (main, N, k, i, q);
        if (item && ra_tensor_numel (item) == (int64_t) N * k
            && (rc = s_push_item (s, (int64_t) s_at (item, (int64_t) i * k + q), err)) != RA_OK)
          goto out;
      }
      s->ret[i] += s->reward[i];
      if (s->done[i]) {
        ra_ab_ep_return (res, a, t, i)[ep] = s->ret[i];
        s->ret[i] = 0;
        if (++s->eps[i] == E)
          finished++;
      }
    }
    ra_feedback_t fb = {
      .slates = s->slates, .reward = s->reward, .slot_reward = s->credit, .clicked = s->clicked,
      .done = s->done, .oracle_slates = oracle ? s->oracle : NULL,
    };
    pol->cls->learn (pol, &obs, &fb);
    if ((rc = s_copy_obs (s, &r.obs, &obs, err)) != RA_OK)
      goto out;
    /* Ended envs (autoreset is disabled) start their next episode from its own seed. Once every
       env is done the arm is not stepped again, so the last resets are skipped. */
    if (any_done && finished < N) {
      if ((rc = ra_ab_envs_reset (e, s->seeds, s->mask, &r, err)) != RA_OK
          || (rc = s_merge_obs (s, &r.obs, s->mask, err)) != RA_OK)
        goto out;
    }
    if (o->progress && step % 256 == 255) {
      double d = 0;
      for (int i = 0; i < N; i++)
        d += s->eps[i] < E ? s->eps[i] : E;
      s_report (sh, o, w, arm, t, d, false);
    }
  }
  qsort (s->items, s->n_items, sizeof *s->items, s_cmp_i64);
  double distinct = 0;
  for (size_t j = 0; j < s->n_items; j++)
    distinct += j == 0 || s->items[j] != s->items[j - 1];
  res->distinct[(size_t) a * res->tasks + t] = distinct;
  rc = s_play_frozen (e, o, pol, t, s, res, a, err);
  if (rc == RA_OK && o->arm_hook)
    rc = o->arm_hook (o->arm_hook_ud, a, id, pol, true, err);
out:
  pol->cls->destroy (&pol);
  return rc;
}

/* The result's per-episode cells, once the arms are known to build: a dry run (check_only)
   never allocates them, so it stays fast and small whatever --episodes asks for. */
static ra_err_t s_alloc_cells (ra_ab_result_t *res, ra_error_t *err)
{
  size_t cells = (size_t) res->arms * res->tasks * res->num_envs;
  res->cells = calloc (cells, sizeof *res->cells);
  res->ep_return = calloc (cells * (size_t) (res->episodes + res->frozen), sizeof *res->ep_return);
  res->distinct = calloc ((size_t) res->arms * res->tasks, sizeof *res->distinct);
  if (!res->cells || !res->ep_return || !res->distinct)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory for %zu result cells of %d episodes",
                         cells, res->episodes + res->frozen);
  return RA_OK;
}

static ra_err_t s_make (ra_ab_envs_t *e, ra_client_t *c, const ra_ab_opts_t *o, bool oracle, ra_error_t *err)
{
  ra_kv_t cfg[64];
  int n = 0;
  bool user_set = false;
  for (int i = 0; i < o->n_config && n < 63; i++) {
    user_set |= !strcmp (o->config[i].key, "oracle");
    cfg[n++] = o->config[i];
  }
  if (oracle && !user_set)
    cfg[n++] = (ra_kv_t) { .key = "oracle", .type = RA_KV_BOOL, .num = 1 };
  return ra_ab_envs_make (e, c, o->env_id, o->num_envs, o->seed, cfg, n, o->max_episode_steps, err);
}

typedef struct {
  const ra_ab_opts_t *o;
  const ra_ab_arm_t *arms;
  int n_arms;
  ra_ab_result_t *res;
  bool oracle;                          /* make the batch with oracle=true */
  s_shared_t *sh;
  int w;                                /* this worker's index */
} s_worker_t;

/* Takes tasks one at a time until none is left or a worker has failed, and plays every arm on
   each, on the env batch e with the buffers s. */
static ra_err_t s_work (const s_worker_t *wk, ra_ab_envs_t *e, s_run_t *s, ra_error_t *err)
{
  const ra_ab_opts_t *o = wk->o;
  for (;;) {
    pthread_mutex_lock (&wk->sh->mu);
    int t = wk->sh->failed ? o->tasks : wk->sh->next_task++;
    pthread_mutex_unlock (&wk->sh->mu);
    if (t >= o->tasks)
      return RA_OK;
    for (int a = 0; a < wk->n_arms; a++) {
      ra_err_t rc = s_play (e, o, &wk->arms[a], a, t, s, wk->res, wk->sh, wk->w, err);
      if (rc != RA_OK)
        return rc;
      s_report (wk->sh, o, wk->w, &wk->arms[a], t, (double) s->N * o->episodes, true);
    }
  }
}

/* A worker on a thread of its own, with its own env batch of the sims in this process. */
static void *s_thread (void *ud)
{
  const s_worker_t *wk = ud;
  ra_error_t err = { 0 };
  ra_ab_envs_t env;
  s_run_t s;
  memset (&s, 0, sizeof s);
  ra_err_t rc = s_make (&env, NULL, wk->o, wk->oracle, &err);
  if (rc == RA_OK && !s_run_alloc (&s, wk->o->num_envs, env.K, env.k))
    rc = ra_error_set (&err, RA_ERR_NOMEM, -1, "out of memory for %d envs", wk->o->num_envs);
  if (rc == RA_OK)
    rc = s_work (wk, &env, &s, &err);
  if (rc != RA_OK)
    ra_ab_envs_close (&env, NULL);
  else
    rc = ra_ab_envs_close (&env, &err);
  s_run_fini (&s);
  if (rc != RA_OK)
    s_fail (wk->sh, rc, &err);
  return NULL;
}

/* Plays every arm on every task with `workers` workers: this thread on the batch e (made and
   probed by the caller) and buffers s, the others on threads with batches of their own. If a
   thread cannot be started, the run goes on with those that were. */
static ra_err_t s_play_all (ra_ab_envs_t *e, s_run_t *s, const ra_ab_opts_t *o, const ra_ab_arm_t *arms,
                            int n_arms, ra_ab_result_t *res, bool oracle, int workers, ra_error_t *err)
{
  s_shared_t sh = { .total = (double) n_arms * o->tasks * s->N * o->episodes, .workers = workers };
  s_worker_t *wk = calloc ((size_t) workers, sizeof *wk);
  pthread_t *tid = calloc ((size_t) workers, sizeof *tid);
  sh.partial = calloc ((size_t) workers, sizeof *sh.partial);
  if (!wk || !tid || !sh.partial) {
    free (wk);
    free (tid);
    free (sh.partial);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory for %d workers", workers);
  }
  pthread_mutex_init (&sh.mu, NULL);
  for (int w = 0; w < workers; w++)
    wk[w] = (s_worker_t) { .o = o, .arms = arms, .n_arms = n_arms, .res = res, .oracle = oracle,
                           .sh = &sh, .w = w };
  int started = 1;
  while (started < workers && pthread_create (&tid[started], NULL, s_thread, &wk[started]) == 0)
    started++;
  ra_error_t why = { 0 };
  ra_err_t rc = s_work (&wk[0], e, s, &why);
  if (rc != RA_OK)
    s_fail (&sh, rc, &why);
  for (int w = 1; w < started; w++)
    pthread_join (tid[w], NULL);
  pthread_mutex_destroy (&sh.mu);
  free (wk);
  free (tid);
  free (sh.partial);
  if (!sh.failed)
    return RA_OK;
  *err = sh.err;
  return sh.rc;
}

ra_err_t ra_ab_run (ra_client_t *c, const ra_ab_opts_t *o, const ra_ab_arm_t *arms, int n_arms,
                    ra_ab_result_t *res, ra_error_t *err)
{
  memset (res, 0, sizeof *res);
  if (n_arms < 1 || n_arms > RA_AB_MAX_ARMS || o->tasks < 1 || o->num_envs < 1 || o->episodes < 1)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "need 1..%d arms and positive tasks, "
                         "num_envs and episodes", RA_AB_MAX_ARMS);
  int workers = o->threads > 1 ? (o->threads < o->tasks ? o->threads : o->tasks) : 1;
  if (workers > 1 && c)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "threads: %d threads play the sims in this "
                         "process; a server session belongs to one thread (give 1)", o->threads);
  if (workers > 1 && o->arm_hook)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "threads: the arm hook sees the tasks in order, "
                         "on one thread (give 1)");
  ra_ab_envs_t env;
  bool oracle = true;
  ra_err_t rc = s_make (&env, c, o, true, err);
  if (rc == RA_ERR_BAD_CONFIG) {   /* a sim without oracle info */
    oracle = false;
    ra_ab_envs_close (&env, NULL);
    rc = s_make (&env, c, o, false, err);
  }
  if (rc != RA_OK) {
    ra_ab_envs_close (&env, NULL);
    return rc;
  }
  s_run_t s;
  bool allocated = s_run_alloc (&s, o->num_envs, env.K, env.k);
  res->arms = n_arms;
  res->tasks = o->tasks;
  res->num_envs = s.N;
  res->episodes = o->episodes;
  res->frozen = o->frozen_episodes > 0 ? o->frozen_episodes : 0;
  res->oracle_on = oracle;
  for (int a = 0; a < n_arms; a++) {
    snprintf (res->arm_names[a], sizeof res->arm_names[a], "%s", arms[a].spec);
    res->arm_credit[a] = arms[a].has_credit ? arms[a].credit : o->credit;
    snprintf (res->arm_class[a], sizeof res->arm_class[a], "%s", arms[a].cls->name);
  }
  res->catalog_size = ra_ab_envs_catalog_size (&env, o->env_id, o->config, o->n_config);
  res->task_ids = malloc ((size_t) o->tasks * sizeof *res->task_ids);
  if (!allocated || !res->task_ids) {
    rc = ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory for %d envs", s.N);
    goto out;
  }
  for (int t = 0; t < o->tasks; t++) {
    res->task_ids[t] = o->task_ids ? o->task_ids[t] : t;
    if (res->task_ids[t] < 0) {
      rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "task id %lld is negative, expected >= 0",
                         (long long) res->task_ids[t]);
      goto out;
    }
  }
  /* Which info fields this sim has: one probe step on the default task. */
  {
    ra_step_result_t r;
    if ((rc = ra_ab_envs_reset (&env, NULL, NULL, &r, err)) != RA_OK)
      goto out;
    for (int i = 0; i < s.N; i++)
      for (int q = 0; q < s.k; q++)
        s.slates[(size_t) i * s.k + q] = q;
    if ((rc = ra_ab_envs_step (&env, s.slates, &r, err)) != RA_OK)
      goto out;
    ra_obs_batch_t dims;   /* learns U, F and R, which every arm is built with */
    if ((rc = s_copy_obs (&s, &r.obs, &dims, err)) != RA_OK)
      goto out;
    static const char *const convs[] = { "purchased", "converted" };
    static const char *const mains[] = { "revenue", "watch_time", "dwell" };
    for (size_t j = 0; j < 2 && !res->has_conversion; j++)
      if (s_info (&r, convs[j])) {
        res->has_conversion = true;
        snprintf (res->conversion_name, sizeof res->conversion_name, "%s", convs[j]);
      }
    for (size_t j = 0; j < 3 && !res->has_main; j++)
      if (s_info (&r, mains[j])) {
        res->has_main = true;
        snprintf (res->main_name, sizeof res->main_name, "%s", mains[j]);
      }
    res->has_regret = oracle && s_info (&r, "regret") != NULL;
    res->has_items = s_info (&r, "item") != NULL;
    if (!s_info (&r, "clicked")) {
      rc = ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "%s has no info field 'clicked'", o->env_id);
      goto out;
    }
    for (int a = 0; a < n_arms && !res->has_main; a++)
      if (res->arm_credit[a] == RA_AB_CREDIT_METRIC) {
        rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "arm '%s' learns from credit metric, but %s "
                           "has no main metric (info revenue, watch_time or dwell)", arms[a].spec,
                           o->env_id);
        goto out;
      }
  }
  if ((rc = s_check_arms (o, arms, n_arms, &s, res, err)) != RA_OK || o->check_only
      || (rc = s_alloc_cells (res, err)) != RA_OK)
    goto out;
  rc = s_play_all (&env, &s, o, arms, n_arms, res, oracle, workers, err);
out:
  if (rc != RA_OK)
    ra_ab_envs_close (&env, NULL);
  else
    rc = ra_ab_envs_close (&env, err);
  s_run_fini (&s);
  if (rc != RA_OK)
    ra_ab_result_fini (res);
  return rc;
}

void ra_ab_result_fini (ra_ab_result_t *r)
{
  free (r->cells);
  free (r->ep_return);
  free (r->distinct);
  free (r->task_ids);
  r->task_ids = NULL;
  r->cells = NULL;
  r->ep_return = NULL;
  r->distinct = NULL;
}
