/*  env/local/local.c - the in-process C API over ra_session_t (see local.h, docs/local.md).

    Owns the session, a worker pool of args.threads threads (or none) and copies of the make-time
    config and task strings the sim may keep borrowing. Argument checks mirror the server's
    handlers (env/server/handlers.c: make, step) so the same bad input gets the same code.
    One thread at a time per handle.                                                             */
#include "env/local/local.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env/server/pool.h"
#include "env/server/session.h"
#include "env/sims/registry.h"

typedef struct {
  ra_kv_t *kv;
  int n;
  ra_task_t task;                       /* when it holds a task: params point into kv */
  char **strs;                          /* owned copies of every key and string */
  int nstrs;
} s_owned_t;

struct ra_local {
  ra_session_t *session;
  ra_pool_t *pool;                      /* NULL: run inline */
  int n, K, k;
  int32_t *actions;                     /* N * k staging, so a bad action changes nothing */
  s_owned_t *config;                    /* make's config, which the sim may borrow until destroy */
  s_owned_t *task;                      /* the last task given, borrowed until the next set_task */
};

/* ------------------------------------------------------------------------------------------ */
/* Owned copies of key/value lists and tasks (the caller's arrays may go away after the call,   */
/* as a request's do in the server, which keeps them for the same reason).                     */

static void s_owned_free (s_owned_t *o)
{
  if (!o)
    return;
  for (int i = 0; i < o->nstrs; i++)
    free (o->strs[i]);
  free (o->strs);
  free (o->kv);
  free (o);
}

static const char *s_owned_str (s_owned_t *o, const char *s)
{
  if (!s)
    return NULL;
  char *c = strdup (s);
  if (c)
    o->strs[o->nstrs++] = c;
  return c;
}

/* Copies kv[0..n) and, if task is not NULL, the task (its params replace kv). NULL on NOMEM. */
static s_owned_t *s_owned_new (const ra_kv_t *kv, int n, const ra_task_t *task)
{
  if (task) {
    kv = task->params;
    n = task->params ? task->n_params : 0;
  }
  s_owned_t *o = calloc (1, sizeof *o);
  if (!o)
    return NULL;
  o->kv = calloc ((size_t) (n > 0 ? n : 1), sizeof *o->kv);
  o->strs = calloc ((size_t) (2 * n + 1), sizeof *o->strs);
  if (!o->kv || !o->strs)
    goto fail;
  for (int i = 0; i < n; i++) {
    o->kv[i] = kv[i];
    if ((kv[i].key && !(o->kv[i].key = s_owned_str (o, kv[i].key)))
        || (kv[i].str && !(o->kv[i].str = s_owned_str (o, kv[i].str))))
      goto fail;
  }
  o->n = n;
  if (task) {
    o->task = *task;
    o->task.params = n > 0 ? o->kv : NULL;
    o->task.n_params = n;
    if (task->split && !(o->task.split = s_owned_str (o, task->split)))
      goto fail;
  }
  return o;
fail:
  s_owned_free (o);
  return NULL;
}

int ra_local_abi (void) { return RA_LOCAL_ABI; }

int ra_local_env_count (void)
{
  int n;
  ra_sims_all (&n);
  return n;
}

const char *ra_local_env_name (int i)
{
  int n;
  const ra_sim_class_t *const *sims = ra_sims_all (&n);
  return i >= 0 && i < n ? sims[i]->name : NULL;
}

static ra_err_t s_unknown_env (const char *env, ra_error_t *err)
{
  int nsims;
  const ra_sim_class_t *const *sims = ra_sims_all (&nsims);
  char known[256] = "";
  for (int i = 0; i < nsims; i++) {
    size_t at = strlen (known);
    snprintf (known + at, sizeof known - at, "%s%s", i ? ", " : "", sims[i]->name);
  }
  return ra_error_set (err, RA_ERR_UNKNOWN_ENV, -1, "unknown env '%.64s'; this library has: %s", env,
                       known);
}

ra_err_t ra_local_new (const ra_local_args_t *args, ra_local_t **out, ra_error_t *err)
{
  *out = NULL;
  if (!args || !args->env)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "field 'env' is missing");
  const ra_sim_class_t *cls = ra_sims_find (args->env, (int) strlen (args->env));
  if (!cls)
    return s_unknown_env (args->env, err);
  if (args->num_envs < 1)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "num_envs is %lld, expected at least 1",
                         (long long) args->num_envs);
  if (args->num_envs > RA_LOCAL_MAX_ENVS)
    return ra_error_set (err, RA_ERR_LIMIT, -1, "num_envs is %lld, this library allows at most %d",
                         (long long) args->num_envs, RA_LOCAL_MAX_ENVS);
  ra_autoreset_t mode = RA_AUTORESET_NEXT_STEP;
  if (args->autoreset
      && !ra_autoreset_from_name (args->autoreset, (int) strlen (args->autoreset), &mode))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "autoreset is '%.32s', expected next_step, same_step or disabled",
                         args->autoreset);
  if (args->has_max_episode_steps
      && (args->max_episode_steps < 1 || args->max_episode_steps > INT32_MAX))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "max_episode_steps is %lld, expected 1..2147483647",
                         (long long) args->max_episode_steps);
  if (args->n_config < 0 || (args->n_config > 0 && !args->config))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "config has %d entries but no array",
                         args->n_config);
  if (args->threads < 0 || args->threads > 256)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "threads is %d, expected 0..256", args->threads);

  ra_local_t *l = calloc (1, sizeof *l);
  if (!l || !(l->config = s_owned_new (args->config, args->n_config, NULL))
      || (args->task && !(l->task = s_owned_new (NULL, 0, args->task)))) {
    ra_local_destroy (&l);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory making a local handle");
  }
  ra_session_args_t sargs = {
    .cls = cls,
    .sim = { .config = l->config->kv, .n_config = l->config->n,
             .task = l->task ? &l->task->task : NULL,
             .num_envs = (int) args->num_envs, .seed = args->seed },
    .autoreset = mode,
    .max_episode_steps = args->has_max_episode_steps ? (int) args->max_episode_steps : 0,
  };
  ra_err_t rc = ra_session_new (&sargs, &l->session, err);
  if (rc != RA_OK) {
    ra_local_destroy (&l);
    return rc;
  }
  l->n = (int) args->num_envs;
  l->K = ra_session_num_candidates (l->session);
  l->k = ra_session_slate_size (l->session);
  l->actions = malloc ((size_t) l->n * (size_t) (l->k > 0 ? l->k : 1) * sizeof *l->actions);
  if (!l->actions) {
    ra_local_destroy (&l);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory making %d envs", (int) args->num_envs);
  }
  if (args->threads > 0 && (rc = ra_pool_new (args->threads, &l->pool)) != RA_OK) {
    ra_local_destroy (&l);
    return ra_error_set (err, rc, -1, "cannot start %d worker threads", args->threads);
  }
  *out = l;
  return RA_OK;
}

void ra_local_destroy (ra_local_t **local_p)
{
  ra_local_t *l = *local_p;
  if (!l)
    return;
  ra_pool_destroy (&l->pool);
  ra_session_destroy (&l->session);
  free (l->actions);
  s_owned_free (l->config);
  s_owned_free (l->task);
  free (l);
  *local_p = NULL;
}

int ra_local_num_envs (const ra_local_t *l) { return l->n; }
int ra_local_num_candidates (const ra_local_t *l) { return l->K; }
int ra_local_slate_size (const ra_local_t *l) { return l->k; }
int ra_local_max_episode_steps (const ra_local_t *l) { return ra_session_max_episode_steps (l->session); }
const char *ra_local_autoreset (const ra_local_t *l)
{
  return ra_autoreset_name (ra_session_autoreset (l->session));
}

void ra_local_reward_range (const ra_local_t *l, double out[2])
{
  const ra_sim_spec_t *sp = ra_session_spec (l->session);
  out[0] = sp->reward_range[0];
  out[1] = sp->reward_range[1];
}

int ra_local_num_obs (const ra_local_t *l) { return ra_session_spec (l->session)->n_obs; }
int ra_local_num_info (const ra_local_t *l) { return ra_session_spec (l->session)->n_info; }

bool ra_local_field (const ra_local_t *l, bool info, int f, ra_local_field_t *out)
{
  const ra_sim_spec_t *sp = ra_session_spec (l->session);
  int nf = info ? sp->n_info : sp->n_obs;
  if (f < 0 || f >= nf)
    return false;
  const ra_field_spec_t *fs = info ? &sp->info[f] : &sp->obs[f];
  memset (out, 0, sizeof *out);
  out->name = fs->name;
  out->dtype = (int) fs->dtype;
  out->ndim = fs->ndim;
  for (int d = 0; d < fs->ndim; d++)
    out->shape[d] = fs->shape[d];
  if (!info) {
    /* The session's observation space holds the bounds exactly as the server encodes them. */
    const ra_space_t *box = ra_session_observation_space (l->session)->children[f];
    out->low = box->low;
    out->high = box->high;
  }
  return true;
}

void ra_local_buffers (const ra_local_t *l, ra_local_buffers_t *out)
{
  /* Nothing else ever retains the session's buffers here, so its copy on write never switches
     them: these addresses hold from new to destroy (local.h). */
  ra_outbufs_t *b = ra_session_out (l->session);
  const ra_sim_spec_t *sp = ra_session_spec (l->session);
  memset (out, 0, sizeof *out);
  for (int f = 0; f < sp->n_obs; f++) {
    out->obs[f] = b->sim.obs[f];
    out->final_obs[f] = b->final_obs[f];
  }
  for (int f = 0; f < sp->n_info; f++)
    out->info[f] = b->sim.info[f];
  out->reward = b->sim.reward;
  out->terminated = b->sim.terminated;
  out->truncated = b->truncated;
  out->info_mask = b->info_mask;
  out->final_mask = b->final_mask;
}

ra_err_t ra_local_reset (ra_local_t *l, const uint64_t *seeds, const uint8_t *mask)
{
  if (l->pool)
    return ra_session_reset (l->session, l->pool, seeds, mask);
  /* ra_pool_run needs a pool; without one the whole batch is one range */
  ra_err_t rc = ra_session_reset_prepare (l->session, seeds, mask);
  if (rc == RA_OK)
    ra_session_reset_range (l->session, 0, l->n);
  return rc;
}

/* Shape check with the server's messages (handlers.c s_read_actions). */
static ra_err_t s_check_shape (const ra_local_t *l, int ndim, const int64_t *shape, ra_error_t *err)
{
  if (ndim < 0 || (ndim > 0 && !shape))
    return ra_error_set (err, RA_ERR_BAD_ACTION, -1, "action has %d dims and no shape", ndim);
  if (l->k == 1) {
    if (ndim != 1 || shape[0] != l->n)
      return ra_error_set (err, RA_ERR_BAD_ACTION, -1,
                           "action has %d dims (first %lld), expected shape (%d,) for Discrete(%d)",
                           ndim, (long long) (ndim ? shape[0] : 0), l->n, l->K);
  } else if (ndim != 2 || shape[0] != l->n || shape[1] != l->k) {
    return ra_error_set (err, RA_ERR_BAD_ACTION, -1,
                         "action has the wrong shape, expected (%d, %d): %d envs, slate size %d", l->n,
                         l->k, l->n, l->k);
  }
  return RA_OK;
}

/* Validates env i's slate value v in slot j and stages it; the server's checks and messages. */
static inline ra_err_t s_put (ra_local_t *l, int i, int j, int64_t v, ra_error_t *err)
{
  int32_t *a = l->actions + (size_t) i * l->k;
  if (v < 0 || v >= l->K)
    return ra_error_set (err, RA_ERR_BAD_ACTION, i, "action for env %d slot %d is %lld, expected 0..%d",
                         i, j, (long long) v, l->K - 1);
  for (int jj = 0; jj < j; jj++)
    if (a[jj] == (int32_t) v)
      return ra_error_set (err, RA_ERR_BAD_ACTION, i,
                           "action for env %d repeats candidate %lld in slots %d and %d", i,
                           (long long) v, jj, j);
  a[j] = (int32_t) v;
  return RA_OK;
}

static ra_err_t s_run_step (ra_local_t *l, ra_error_t *err)
{
  ra_err_t rc = ra_session_check_step (l->session, err);
  if (rc != RA_OK)
    return rc;
  memcpy (ra_session_actions (l->session), l->actions, (size_t) l->n * (size_t) l->k * sizeof (int32_t));
  if (l->pool)
    rc = ra_session_step (l->session, l->pool);
  else if ((rc = ra_session_step_prepare (l->session)) == RA_OK)
    ra_session_step_range (l->session, 0, l->n);
  if (rc != RA_OK)
    return ra_error_set (err, rc, -1, "no output buffer for a step of %d envs", l->n);
  return RA_OK;
}

ra_err_t ra_local_step (ra_local_t *l, const int64_t *actions, int ndim, const int64_t *shape,
                        ra_error_t *err)
{
  ra_err_t rc = s_check_shape (l, ndim, shape, err);
  if (rc != RA_OK)
    return rc;
  for (int i = 0; i < l->n; i++)
    for (int j = 0; j < l->k; j++)
      if ((rc = s_put (l, i, j, actions[(size_t) i * l->k + j], err)) != RA_OK)
        return rc;
  return s_run_step (l, err);
}

ra_err_t ra_local_step_i32 (ra_local_t *l, const int32_t *actions, int ndim, const int64_t *shape,
                            ra_error_t *err)
{
  ra_err_t rc = s_check_shape (l, ndim, shape, err);
  if (rc != RA_OK)
    return rc;
  for (int i = 0; i < l->n; i++)
    for (int j = 0; j < l->k; j++)
      if ((rc = s_put (l, i, j, actions[(size_t) i * l->k + j], err)) != RA_OK)
        return rc;
  return s_run_step (l, err);
}

ra_err_t ra_local_set_task (ra_local_t *l, const ra_task_t *task, const uint8_t *mask,
                            ra_error_t *err)
{
  if (!task)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "field 'task' is missing");
  s_owned_t *copy = s_owned_new (NULL, 0, task);
  if (!copy)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory copying the task");
  ra_err_t rc = ra_session_class (l->session)->set_task (ra_session_sim (l->session), &copy->task,
                                                         mask, err);
  if (rc != RA_OK) {
    s_owned_free (copy);
    return rc;
  }
  s_owned_free (l->task);
  l->task = copy;
  return RA_OK;
}

int ra_local_describe_task (const ra_local_t *l, int env_index, ra_kv_t *out, int cap)
{
  if (env_index < 0 || env_index >= l->n || cap < 0)
    return -1;
  int n = ra_session_class (l->session)->describe_task (ra_session_sim (l->session), env_index,
                                                        out, cap);
  return n < 0 ? 0 : (n > cap ? cap : n);
}

int ra_local_render (const ra_local_t *l, int env_index, char *buf, size_t cap)
{
  if (env_index < 0 || env_index >= l->n)
    return -1;
  if (cap == 0 || !buf) {
    char small[1];
    return ra_session_class (l->session)->render (ra_session_sim (l->session), env_index, small,
                                                  sizeof small);
  }
  return ra_session_class (l->session)->render (ra_session_sim (l->session), env_index, buf, cap);
}
