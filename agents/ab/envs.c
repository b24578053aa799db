/*  agents/ab/envs.c - the A/B run's env batch, on a server or in this process (see envs.h).

    In process, a step's result is a set of views into the batch's output buffers (valid until
    its next reset or step, as a reply is until the client's next call), named and shaped as the
    server's reply: obs fields (N, ...), reward f32 (N), terminated and truncated bool (N), and
    after a step every info field (N, ...) followed by its "_name" mask (the step's info mask).  */
#include "agents/ab/envs.h"

#include <stdio.h>
#include <string.h>

#include "env/sims/registry.h"
#include "protocol/msg.h"

ra_err_t ra_ab_envs_make (ra_ab_envs_t *e, ra_client_t *c, const char *env_id, int num_envs, uint64_t seed,
                          const ra_kv_t *config, int n_config, int max_episode_steps, ra_error_t *err)
{
  memset (e, 0, sizeof *e);
  e->c = c;
  e->num_envs = num_envs;
  if (c) {
    ra_make_opts_t mo = {
      .has_seed = true, .seed = seed, .config = config, .n_config = n_config, .autoreset = "disabled",
      .max_episode_steps = max_episode_steps,
    };
    ra_err_t rc = ra_client_make (c, env_id, num_envs, &mo, &e->env, err);
    if (rc != RA_OK)
      return rc;
    const ra_space_t *as = e->env.action_space;
    e->K = (int) (as->type == RA_SPACE_DISCRETE ? as->n : as->nvec[0]);
    e->k = as->type == RA_SPACE_DISCRETE ? 1 : (int) as->shape[0];
    e->max_episode_steps = e->env.max_episode_steps;
    return RA_OK;
  }
  ra_local_args_t la = {
    .env = env_id, .num_envs = num_envs, .seed = seed, .config = config, .n_config = n_config,
    .autoreset = "disabled", .has_max_episode_steps = max_episode_steps > 0,
    .max_episode_steps = max_episode_steps,
  };
  ra_err_t rc = ra_local_new (&la, &e->local, err);
  if (rc != RA_OK)
    return rc;
  e->K = ra_local_num_candidates (e->local);
  e->k = ra_local_slate_size (e->local);
  e->max_episode_steps = ra_local_max_episode_steps (e->local);
  return RA_OK;
}

ra_err_t ra_ab_envs_set_task (ra_ab_envs_t *e, const char *split, int64_t id, ra_error_t *err)
{
  if (e->c)
    return ra_client_set_task (e->c, &e->env, split, id, NULL, 0, NULL, err);
  ra_task_t task = { .split = split, .id = id };
  return ra_local_set_task (e->local, &task, NULL, err);
}

/* Appends field f of the batch's obs or info as tensor name (N, ...) over data; false when the
   list is full or the name too long (the server's reply would not decode either). */
static bool s_add (ra_fields_t *out, const char *name, int dtype, int ndim, const int64_t *shape, int N,
                   void *data)
{
  if (out->n >= RA_CLIENT_MAX_FIELDS || strlen (name) >= sizeof out->names[0] || ndim + 1 > RA_TENSOR_MAX_DIMS)
    return false;
  int64_t full[RA_TENSOR_MAX_DIMS] = { N };
  for (int d = 0; d < ndim; d++)
    full[d + 1] = shape[d];
  snprintf (out->names[out->n], sizeof out->names[0], "%s", name);
  out->tensors[out->n++] = ra_tensor_view ((ra_dtype_t) dtype, ndim + 1, full, data);
  return true;
}

static ra_err_t s_local_result (const ra_ab_envs_t *e, bool step, ra_step_result_t *out, ra_error_t *err)
{
  ra_local_buffers_t b;
  ra_local_buffers (e->local, &b);
  const int N = e->num_envs;
  const int64_t one[1] = { N };
  memset (out, 0, sizeof *out);
  ra_local_field_t f;
  for (int i = 0; ra_local_field (e->local, false, i, &f); i++)
    if (!s_add (&out->obs, f.name, f.dtype, f.ndim, f.shape, N, b.obs[i]))
      return ra_error_set (err, RA_ERR_LIMIT, -1, "observation field '%s' does not fit a step result", f.name);
  if (!step)
    return RA_OK;
  out->reward = ra_tensor_view (RA_DTYPE_F32, 1, one, b.reward);
  out->terminated = ra_tensor_view (RA_DTYPE_BOOL, 1, one, b.terminated);
  out->truncated = ra_tensor_view (RA_DTYPE_BOOL, 1, one, b.truncated);
  for (int i = 0; ra_local_field (e->local, true, i, &f); i++) {
    char mask[80];
    snprintf (mask, sizeof mask, "_%s", f.name);
    if (!s_add (&out->info, f.name, f.dtype, f.ndim, f.shape, N, b.info[i])
        || !s_add (&out->info, mask, RA_DTYPE_BOOL, 0, NULL, N, b.info_mask))
      return ra_error_set (err, RA_ERR_LIMIT, -1, "info field '%s' does not fit a step result", f.name);
  }
  return RA_OK;
}

ra_err_t ra_ab_envs_reset (ra_ab_envs_t *e, const uint64_t *seeds, const bool *mask, ra_step_result_t *out,
                           ra_error_t *err)
{
  if (e->c)
    return ra_client_reset (e->c, &e->env, seeds, mask, out, err);
  _Static_assert (sizeof (bool) == sizeof (uint8_t), "a bool mask is read as bytes");
  ra_err_t rc = ra_local_reset (e->local, seeds, (const uint8_t *) mask);
  if (rc != RA_OK)
    return ra_error_set (err, rc, -1, "reset: out of memory for the envs' output");
  return s_local_result (e, false, out, err);
}

ra_err_t ra_ab_envs_step (ra_ab_envs_t *e, const int32_t *slates, ra_step_result_t *out, ra_error_t *err)
{
  int64_t shape[2] = { e->num_envs, e->k };
  int ndim = e->k == 1 ? 1 : 2;
  if (e->c) {
    ra_tensor_t act = ra_tensor_view (RA_DTYPE_I32, ndim, shape, (void *) slates);
    return ra_client_step (e->c, &e->env, &act, out, err);
  }
  ra_err_t rc = ra_local_step_i32 (e->local, slates, ndim, shape, err);
  return rc != RA_OK ? rc : s_local_result (e, true, out, err);
}

/* The server's "list": the sim's default num_items. */
static double s_listed_size (ra_client_t *c, const char *env_id)
{
  ra_msg_out_t req;
  ra_msg_out_init (&req);
  ra_msg_out_request (&req, ra_client_next_id (c), "list", 0);
  const ra_msg_in_t *rep;
  ra_error_t err;
  double size = 0;
  if (ra_client_call (c, &req, &rep, &err) == RA_OK) {
    const msgpack_object *envs = ra_map_get (rep->root, "envs");
    for (uint32_t i = 0; envs && envs->type == MSGPACK_OBJECT_ARRAY && i < envs->via.array.size; i++) {
      const msgpack_object *e = &envs->via.array.ptr[i];
      if (e->type != MSGPACK_OBJECT_MAP || !ra_obj_is_str (ra_map_get (e, "id"), env_id))
        continue;
      const msgpack_object *cfg = ra_map_get (e, "config");
      if (cfg && cfg->type == MSGPACK_OBJECT_MAP && ra_opt_double (cfg, "num_items", &size, &err) != RA_OK)
        size = 0; /* not a number */
    }
  }
  ra_msg_out_fini (&req);
  return size;
}

/* num_items among n settings into *size; false when absent or not a number. */
static bool s_num_items (const ra_kv_t *kv, int n, double *size)
{
  for (int i = 0; i < n; i++)
    if (!strcmp (kv[i].key, "num_items") && kv[i].type == RA_KV_NUM) {
      *size = kv[i].num;
      return true;
    }
  return false;
}

double ra_ab_envs_catalog_size (const ra_ab_envs_t *e, const char *env_id, const ra_kv_t *config,
                                int n_config)
{
  double size = 0;
  if (s_num_items (config, n_config, &size))
    return size;
  if (e->c)
    return s_listed_size (e->c, env_id);
  /* what the server would list, from this process's sim registry */
  const ra_sim_class_t *cls = ra_sims_find (env_id, (int) strlen (env_id));
  if (cls)
    s_num_items (cls->config_defaults, cls->n_config_defaults, &size);
  return size;
}

ra_err_t ra_ab_envs_close (ra_ab_envs_t *e, ra_error_t *err)
{
  ra_err_t rc = RA_OK;
  if (e->c && e->env.observation_space) /* made */
    rc = ra_client_close (e->c, &e->env, err);
  ra_client_env_fini (&e->env);
  ra_local_destroy (&e->local);
  return rc;
}
