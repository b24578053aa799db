/*  agents/policies/target_run.c - the target policy driving envs on a server over the protocol:
    rollouts of T steps x N envs, training steps, adaptation (meta learners) and evaluation.

    Borrows the client and the env; copies every observation it keeps out of the reply (views
    die at the next call). Uses only buffers allocated by ra_target_new. Not thread-safe.        */
#include <assert.h>
#include <string.h>

#include "agents/policies/target_int.h"

/* Unpacks the obs of a reply and checks it against the policy's shapes (n envs). */
static ra_err_t s_obs (ra_target_t *t, const ra_step_result_t *r, int n, ra_obs_batch_t *obs,
                       ra_error_t *err)
{
  const ra_target_cfg_t *c = &t->cfg;
  ra_err_t rc = ra_obs_batch_from_fields (&r->obs, c->slate_size, t->scratch, t->scratch_floats,
                                          obs, err);
  if (rc != RA_OK)
    return rc;
  if (obs->num_envs != n || obs->num_candidates != c->num_candidates
      || obs->user_dim != c->user_dim || obs->cand_dim != c->cand_dim)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                         "target: observation is %d envs x %d candidates, user %d, candidate %d "
                         "features; the policy was built for %d x %d, %d, %d", obs->num_envs,
                         obs->num_candidates, obs->user_dim, obs->cand_dim, n, c->num_candidates,
                         c->user_dim, c->cand_dim);
  if (t->cur_resp && obs->response_dim != c->response_dim)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "target: observation has a response of %d; the "
                         "policy reads rank feedback (slot_credit, context) from one of %d", obs->response_dim, c->response_dim);
  return RA_OK;
}

/* Reward (f32) and done = terminated | truncated of a step reply with n envs. */
static ra_err_t s_outcome (ra_target_t *t, const ra_step_result_t *r, int n, ra_error_t *err)
{
  if (r->reward.dtype != RA_DTYPE_F32 || r->reward.ndim != 1 || r->reward.shape[0] != n
      || ra_tensor_numel (&r->terminated) != n || ra_tensor_numel (&r->truncated) != n)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                         "target: step reply: reward must be f32 (%d), terminated and truncated (%d)",
                         n, n);
  memcpy (t->h_r, r->reward.data, (size_t) n * sizeof (float));
  for (int i = 0; i < n; i++)
    t->h_d[i] = ra_tensor_get_int (&r->terminated, i) || ra_tensor_get_int (&r->truncated, i);
  return RA_OK;
}

static ra_err_t s_step (ra_target_t *t, ra_client_t *c, const ra_client_env_t *env, int n,
                        ra_step_result_t *r, ra_error_t *err)
{
  int64_t shape[2] = { n, t->cfg.slate_size };
  bool discrete = env->action_space->type == RA_SPACE_DISCRETE;
  ra_tensor_t act = ra_tensor_view (RA_DTYPE_I32, discrete ? 1 : 2, shape, t->h_act);
  return ra_client_step (c, env, &act, r, err);
}

/* The current observation (P*N envs) as a batch view over cur_user / cur_cand. */
static ra_obs_batch_t s_cur (const ra_target_t *t)
{
  const ra_target_cfg_t *c = &t->cfg;
  return (ra_obs_batch_t) {
    .num_envs = t->P * c->num_envs, .num_candidates = c->num_candidates, .slate_size = c->slate_size,
    .user_dim = c->user_dim, .cand_dim = c->cand_dim, .user = t->cur_user,
    .candidates = t->cur_cand, .response_dim = t->cur_resp ? c->response_dim : 0, .response = t->cur_resp,
  };
}

static void s_keep (ra_target_t *t, const ra_obs_batch_t *obs)
{
  const ra_target_cfg_t *c = &t->cfg;
  size_t N = (size_t) t->P * c->num_envs;
  memcpy (t->cur_user, obs->user, N * c->user_dim * sizeof (float));
  memcpy (t->cur_cand, obs->candidates, N * c->num_candidates * c->cand_dim * sizeof (float));
  if (t->cur_resp) /* the rank feedback of the per-slot credit (docs/agents.md T6) */
    memcpy (t->cur_resp, obs->response, N * c->response_dim * sizeof (float));
}

ra_err_t ra_target_begin (ra_target_t *t, ra_client_t *c, const ra_client_env_t *env,
                          const uint64_t *seeds, ra_error_t *err)
{
  const ra_target_cfg_t *cfg = &t->cfg;
  if (env->num_envs != t->P * cfg->num_envs)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "target: env batch has %d envs, the policy was built for %d "
                         "(population %d x %d envs)", env->num_envs, t->P * cfg->num_envs, t->P,
                         cfg->num_envs);
  if (strcmp (env->autoreset, "same_step") != 0)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "target: training needs an env made with autoreset \"same_step\", got \"%s\"",
                         env->autoreset);
  ra_step_result_t r;
  ra_err_t rc = ra_client_reset (c, env, seeds, NULL, &r, err);
  ra_obs_batch_t obs;
  if (rc == RA_OK)
    rc = s_obs (t, &r, t->P * cfg->num_envs, &obs, err);
  if (rc != RA_OK)
    return rc;
  s_keep (t, &obs);
  ra_target_clear_rollout (t);
  t->have_obs = true;
  t->src = NULL;
  t->env_handle = env->handle;
  memset (t->ep_ret, 0, (size_t) t->P * cfg->num_envs * sizeof (double));
  return RA_OK;
}

/* Records the step played on cur (slates h_act, outcome h_r, h_d), adds to the stats and makes
   next the current observation (same_step: ended envs are already reset). */
static void s_after_step (ra_target_t *t, const ra_obs_batch_t *cur, const ra_obs_batch_t *next,
                          ra_target_stats_t *stats)
{
  int N = t->P * t->cfg.num_envs;
  ra_target_record (t, cur, t->h_act, t->h_r, t->h_d);
  for (int i = 0; i < N; i++) {
    t->ep_ret[i] += t->h_r[i];
    if (stats)
      stats->reward_sum += t->h_r[i];
    if (t->h_d[i]) {
      if (stats) {
        stats->episodes++;
        stats->return_sum += t->ep_ret[i];
      }
      t->ep_ret[i] = 0;
    }
  }
  s_keep (t, next);
}

ra_err_t ra_target_train_step (ra_target_t *t, ra_client_t *c, const ra_client_env_t *env,
                               ra_target_stats_t *stats, ra_error_t *err)
{
  const ra_target_cfg_t *cfg = &t->cfg;
  int N = t->P * cfg->num_envs; /* all replicas' envs */
  if (!t->have_obs || t->src || t->env_handle != env->handle)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: ra_target_begin was not called on this env");
  ra_target_clear_rollout (t);
  t->have_obs = true;
  ra_obs_batch_t cur = s_cur (t);
  for (int s = 0; s < cfg->rollout; s++) {
    ra_target_act (t, &cur, false, t->h_act);
    ra_step_result_t r;
    ra_obs_batch_t next;
    ra_err_t rc = s_step (t, c, env, N, &r, err);
    if (rc == RA_OK)
      rc = s_outcome (t, &r, N, err);
    if (rc == RA_OK)
      rc = s_obs (t, &r, N, &next, err);
    if (rc != RA_OK) {
      t->have_obs = false;
      return rc;
    }
    s_after_step (t, &cur, &next, stats);
  }
  ra_err_t rc = ra_target_update (t, &cur, NULL, err);
  if (stats) {
    stats->env_steps += (int64_t) cfg->rollout * N;
    stats->updates++;
    stats->last = t->losses[0];
  }
  return rc;
}

ra_err_t ra_target_adapt (ra_target_t *t, ra_client_t *c, const ra_client_env_t *env,
                          int k_updates, const uint64_t *seeds, ra_target_stats_t *stats,
                          ra_error_t *err)
{
  ra_err_t rc = ra_target_begin (t, c, env, seeds, err);
  for (int u = 0; rc == RA_OK && u < k_updates; u++)
    rc = ra_target_train_step (t, c, env, stats, err);
  return rc;
}

/* Uniform slates for n envs; env i of block p (n/P envs per replica) draws from replica p's RNG. */
static void s_random_slates (ra_target_t *t, int n, int32_t *slates)
{
  int K = t->cfg.num_candidates, k = t->cfg.slate_size;
  int32_t *idx = (int32_t *) t->h_tmp; /* 2K floats of room, K ints needed */
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < K; j++)
      idx[j] = j;
    for (int r = 0; r < k; r++) { /* partial Fisher-Yates */
      int p = r + (int) (ra_nn_rng_u64 (&t->rng[i / (n / t->P)]) % (uint64_t) (K - r));
      int32_t x = idx[r];
      idx[r] = idx[p];
      idx[p] = x;
      slates[(size_t) i * k + r] = idx[r];
    }
  }
}

ra_err_t ra_target_evaluate (ra_target_t *t, ra_client_t *c, const ra_client_env_t *env,
                             const uint64_t *seeds, ra_target_eval_t mode, int max_steps,
                             double *mean_return, double *mean_len, ra_error_t *err)
{
  int n = env->num_envs;
  if (n < t->P || n % t->P != 0 || n / t->P > t->cap_users)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "target: evaluation batch of %d envs; expected a multiple of the population "
                         "%d with at most %d (rollout x num_envs) per replica", n, t->P, t->cap_users);
  /* ep_ret, h_r, h_d have P*T*N entries; h_values serves as per-env step counts */
  double *ret = t->ep_ret;
  float *len = t->h_values;
  uint8_t *ended = t->h_done;
  memset (ret, 0, (size_t) n * sizeof (double));
  memset (len, 0, (size_t) n * sizeof (float));
  memset (ended, 0, (size_t) n);
  ra_target_clear_rollout (t);  /* the training stream, if any, must begin again */
  ra_step_result_t r;
  ra_obs_batch_t obs;
  ra_err_t rc = ra_client_reset (c, env, seeds, NULL, &r, err);
  int left = n;
  for (int s = 0; rc == RA_OK && left > 0 && s < max_steps; s++) {
    if ((rc = s_obs (t, &r, n, &obs, err)) != RA_OK)
      break;
    if (mode == RA_TARGET_EVAL_RANDOM)
      s_random_slates (t, n, t->h_act);
    else
      ra_target_act (t, &obs, mode == RA_TARGET_EVAL_GREEDY, t->h_act);
    if ((rc = s_step (t, c, env, n, &r, err)) != RA_OK || (rc = s_outcome (t, &r, n, err)) != RA_OK)
      break;
    ra_target_end_sessions (t, t->h_d, n); /* T12: an ended env's next user starts afresh */
    for (int i = 0; i < n; i++) {
      if (ended[i])
        continue;
      ret[i] += t->h_r[i];
      len[i] += 1;
      if (t->h_d[i]) {
        ended[i] = 1;
        left--;
      }
    }
  }
  double sr = 0, sl = 0;
  for (int i = 0; i < n; i++) {
    sr += ret[i];
    sl += len[i];
  }
  memset (ret, 0, (size_t) n * sizeof (double));
  *mean_return = sr / n;
  if (mean_len)
    *mean_len = sl / n;
  return rc;
}

/* ---------------------------------------------------------------------- any rollout source */

/* Checks a source's observation against the policy's shapes. */
static ra_err_t s_src_obs (const ra_target_t *t, const ra_obs_batch_t *o, ra_error_t *err)
{
  const ra_target_cfg_t *c = &t->cfg;
  if (o->num_envs != t->P * c->num_envs || o->num_candidates != c->num_candidates
      || o->user_dim != c->user_dim || o->cand_dim != c->cand_dim || !o->user || !o->candidates)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "target: source observation is %d envs x %d candidates, user %d, candidate "
                         "%d features; the policy was built for %d x %d, %d, %d", o->num_envs,
                         o->num_candidates, o->user_dim, o->cand_dim, t->P * c->num_envs,
                         c->num_candidates, c->user_dim, c->cand_dim);
  if (t->cur_resp && (o->response_dim != c->response_dim || !o->response))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "target: source observation has a response of %d; the policy reads rank feedback "
                         "(slot_credit, context) from one of %d", o->response ? o->response_dim : 0, c->response_dim);
  return RA_OK;
}

ra_err_t ra_target_begin_rollout (ra_target_t *t, ra_rollout_t *src, const uint64_t *seeds, ra_error_t *err)
{
  ra_err_t rc = ra_rollout_reset (src, seeds, err);
  if (rc == RA_OK)
    rc = s_src_obs (t, &src->obs, err);
  if (rc != RA_OK)
    return rc;
  ra_target_end_all_sessions (t); /* every env starts a new user (T12, T13) */
  s_keep (t, &src->obs);
  ra_target_clear_rollout (t);
  t->have_obs = true;
  t->src = src;
  memset (t->ep_ret, 0, (size_t) t->P * t->cfg.num_envs * sizeof (double));
  return RA_OK;
}

/* T19: the teacher's view of the users into the first U columns of the value head's rows at
   rollout row s (s = T: the bootstrap row). */
static void s_teacher_users (ra_target_t *t, int s)
{
  size_t N = (size_t) t->cfg.num_envs, U = (size_t) t->cfg.user_dim, VN = (size_t) t->cap_users + N;
  size_t D = (size_t) t->in_dim;
  for (size_t p = 0; p < (size_t) t->P; p++)
    for (size_t i = 0; i < N; i++)
      memcpy (t->h_cuser + (p * VN + (size_t) s * N + i) * D, t->teacher_obs->user + (p * N + i) * U,
              U * sizeof (float));
}

/* T16: the teacher's top-k slates (T18: sampled ones) for the envs of cur, from its own view of
   them, into step s of the rollout (h_act is free until the policy's own act). */
static ra_err_t s_teacher_act (ra_target_t *t, const ra_obs_batch_t *cur, int s, ra_error_t *err)
{
  const ra_obs_batch_t *v = t->teacher_obs;
  size_t N = (size_t) t->cfg.num_envs, TN = (size_t) t->cap_users, k = (size_t) t->cfg.slate_size;
  size_t cand = (size_t) cur->num_envs * cur->num_candidates * cur->cand_dim;
  if (v->num_envs != cur->num_envs || v->user_dim != t->teacher->cfg.user_dim
      || memcmp (v->candidates, cur->candidates, cand * sizeof (float)) != 0)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: the teacher's observation is not of the envs the "
                         "policy acts on (give it the paired source's second view)");
  if (t->teacher_opts.critic)
    s_teacher_users (t, s);
  ra_target_act (t->teacher, v, !t->teacher_opts.sample, t->h_act);
  for (size_t p = 0; p < (size_t) t->P; p++)
    memcpy (t->h_tslate + (p * TN + (size_t) s * N) * k, t->h_act + p * N * k, N * k * sizeof (int32_t));
  t->teacher_steps = s + 1;
  return RA_OK;
}

ra_err_t ra_target_train_rollout (ra_target_t *t, ra_rollout_t *src, ra_target_stats_t *stats, ra_error_t *err)
{
  const ra_target_cfg_t *cfg = &t->cfg;
  int N = t->P * cfg->num_envs;
  if (!t->have_obs || t->src != src)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: ra_target_begin_rollout was not called on this source");
  ra_target_clear_rollout (t);
  t->have_obs = true;
  ra_obs_batch_t cur = s_cur (t);
  for (int s = 0; s < cfg->rollout; s++) {
    ra_err_t rc = t->teacher ? s_teacher_act (t, &cur, s, err) : RA_OK;
    if (rc != RA_OK) {
      t->have_obs = false;
      return rc;
    }
    ra_target_act (t, &cur, false, t->h_act);
    rc = ra_rollout_step (src, t->h_act, err);
    if (rc == RA_OK)
      rc = s_src_obs (t, &src->obs, err);
    if (rc != RA_OK) {
      t->have_obs = false;
      return rc;
    }
    memcpy (t->h_r, src->reward, (size_t) N * sizeof (float));
    memcpy (t->h_d, src->done, (size_t) N);
    s_after_step (t, &cur, &src->obs, stats);
  }
  if (t->teacher && t->teacher_opts.critic)
    s_teacher_users (t, cfg->rollout);
  ra_err_t rc = ra_target_update (t, &cur, NULL, err);
  if (stats) {
    stats->env_steps += (int64_t) cfg->rollout * N;
    stats->updates++;
    stats->last = t->losses[0];
    for (int p = 0; p < t->P; p++)
      stats->imitation_sum += t->losses[p].imitation;
  }
  return rc;
}
