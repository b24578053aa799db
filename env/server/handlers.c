/*  env/server/handlers.c - the command table of protocol v1 and its handlers (docs/protocol.md).

    Each handler reads a decoded request, validates every field it uses, and either packs a complete
    success reply or returns an error (the dispatcher then packs the error reply). Handlers never
    touch sockets. A request is validated in full before anything changes, so a bad request never
    changes state. Runs on the server's one socket thread. Config and task maps become key/value
    lists in kvlist.c, make and set_task are admitted by bytes in admit.c, and the replies that
    carry data are packed in reply.c.                                                            */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env/server/server_int.h"
#include "env/sims/registry.h"

#ifndef RA_SERVER_BUILD
#define RA_SERVER_BUILD "recarena 0.1.0 (" __DATE__ ")"
#endif

typedef ra_err_t (*s_handler_fn) (ra_server_t *srv, const ra_msg_in_t *req, ra_msg_out_t *rep,
                                  ra_error_t *err);

enum {
  S_OP_SESSION = 1u << 0,       /* needs "handle": resolved into srv->cur before the handler runs */
};

typedef struct {
  const char *name;
  s_handler_fn fn;
  unsigned flags;
} s_op_t;

/* ------------------------------------------------------------------------------------------ */
/* Handlers                                                                                    */

static ra_err_t s_hello (ra_server_t *srv, const ra_msg_in_t *req, ra_msg_out_t *rep, ra_error_t *err)
{
  const char *client;
  int client_len;
  ra_err_t rc = ra_opt_str (req->root, "client", &client, &client_len, err);
  if (rc != RA_OK)
    return rc;
  const msgpack_object *versions = ra_map_get (req->root, "versions");
  if (versions) {
    if (versions->type != MSGPACK_OBJECT_ARRAY)
      return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "field 'versions' must be an array, got %s",
                           ra_obj_type_name (versions));
    bool found = false;
    for (uint32_t i = 0; i < versions->via.array.size; i++) {
      const msgpack_object *v = &versions->via.array.ptr[i];
      if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER && v->type != MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                             "field 'versions' must hold integers, item %u is %s", i,
                             ra_obj_type_name (v));
      if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 == RA_PROTOCOL_VERSION)
        found = true;
    }
    if (!found)
      return ra_error_set (err, RA_ERR_VERSION, -1,
                           "client speaks none of this server's protocol versions; server speaks %d",
                           RA_PROTOCOL_VERSION);
  }
  int nsims;
  const ra_sim_class_t *const *sims = ra_sims_all (&nsims);
  ra_msg_out_reply (rep, req->id, 6);
  ra_msg_out_str (rep, "server");
  ra_msg_out_str (rep, "recarena-server");
  ra_msg_out_str (rep, "version");
  ra_msg_out_int (rep, RA_PROTOCOL_VERSION);
  ra_msg_out_str (rep, "build");
  ra_msg_out_str (rep, RA_SERVER_BUILD);
  ra_msg_out_str (rep, "capabilities");
  static const char *const caps[] = { "autoreset.next_step", "autoreset.same_step",
                                      "autoreset.disabled", "reset_mask", "set_task", "render.ansi",
                                      "final_info" };
  bool shm = ra__shm_offered (srv);   /* only where every client is on this machine */
  bool spin = shm && srv->opts.spin_us > 0;
  ra_msg_out_array (rep, (uint32_t) (sizeof caps / sizeof caps[0] + shm + spin));
  for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
    ra_msg_out_str (rep, caps[i]);
  if (shm)
    ra_msg_out_str (rep, "shm");
  if (spin)
    ra_msg_out_str (rep, "spin");
  ra_msg_out_str (rep, "limits");
  ra_msg_out_map (rep, 10);
  ra_msg_out_str (rep, "max_envs");
  ra_msg_out_int (rep, srv->opts.max_envs);
  ra_msg_out_str (rep, "max_total_envs");
  ra_msg_out_int (rep, srv->opts.max_total_envs);
  ra_msg_out_str (rep, "max_session_bytes");
  ra_msg_out_int (rep, srv->opts.max_session_bytes);
  ra_msg_out_str (rep, "max_total_bytes");
  ra_msg_out_int (rep, srv->opts.max_total_bytes);
  ra_msg_out_str (rep, "max_sessions");
  ra_msg_out_int (rep, srv->opts.max_sessions);
  ra_msg_out_str (rep, "max_message_bytes");
  ra_msg_out_int (rep, srv->opts.max_message_bytes);
  ra_msg_out_str (rep, "max_queued_bytes");
  ra_msg_out_int (rep, srv->opts.max_queued_bytes);
  /* What applies to this caller: an anonymous one has no per-key limits, only the server's. */
  bool keyed = srv->caller[0] != '\0';
  ra_msg_out_str (rep, "max_sessions_per_key");
  ra_msg_out_int (rep, keyed ? srv->opts.max_sessions_per_key : srv->opts.max_sessions);
  ra_msg_out_str (rep, "max_envs_per_key");
  ra_msg_out_int (rep, keyed ? srv->opts.max_envs_per_key : srv->opts.max_total_envs);
  ra_msg_out_str (rep, "max_bytes_per_key");
  ra_msg_out_int (rep, keyed ? srv->opts.max_bytes_per_key : srv->opts.max_total_bytes);
  ra_msg_out_str (rep, "envs");
  ra_msg_out_array (rep, (uint32_t) nsims);
  for (int i = 0; i < nsims; i++)
    ra_msg_out_str (rep, sims[i]->name);
  return RA_OK;
}

static ra_err_t s_list (ra_server_t *srv, const ra_msg_in_t *req, ra_msg_out_t *rep, ra_error_t *err)
{
  (void) srv;
  (void) err;
  int nsims;
  const ra_sim_class_t *const *sims = ra_sims_all (&nsims);
  ra_msg_out_reply (rep, req->id, 1);
  ra_msg_out_str (rep, "envs");
  ra_msg_out_array (rep, (uint32_t) nsims);
  for (int i = 0; i < nsims; i++) {
    ra_msg_out_map (rep, 3);
    ra_msg_out_str (rep, "id");
    ra_msg_out_str (rep, sims[i]->name);
    ra_msg_out_str (rep, "description");
    ra_msg_out_str (rep, sims[i]->description ? sims[i]->description : "");
    ra_msg_out_str (rep, "config");
    ra__pack_kv_map (rep, sims[i]->config_defaults, sims[i]->n_config_defaults);
  }
  return RA_OK;
}

/* Runs on the pool (or inline): builds the reserved slot's session (the sim's create). */
static void s_make_job (void *ctx, int i0, int i1)
{
  (void) i0;
  (void) i1;
  ra__slot_t *slot = ctx;
  ra_error_clear (&slot->mk_err);
  slot->mk_rc = ra_session_new (&slot->mk_args, &slot->mk_built, &slot->mk_err);
}

void ra__make_undo (ra_server_t *srv, ra__slot_t *slot)
{
  srv->nbytes -= slot->bytes;
  srv->nsessions--;
  srv->nenvs -= slot->mk_args.sim.num_envs;
  ra_session_destroy (&slot->mk_built);
  ra__kvlist_free (slot->config_keep);
  ra__kvlist_free (slot->task_keep);
  slot->config_keep = slot->task_keep = NULL;
  slot->bytes = 0;
  slot->owner[0] = '\0';
  slot->reserved = false;
}

/* Turns a built reservation into a live session and packs the make reply; on a failed build,
   gives the reservation back and returns the sim's error. */
static ra_err_t s_make_finish (ra_server_t *srv, ra__slot_t *slot, uint64_t id, ra_msg_out_t *rep,
                               ra_error_t *err)
{
  if (slot->mk_rc != RA_OK) {
    *err = slot->mk_err;
    ra__make_undo (srv, slot);
    return err->code;
  }
  ra_session_t *s = slot->session = slot->mk_built;
  slot->mk_built = NULL;
  slot->reserved = false;
  slot->handle = ra__handle_new (srv);
  ra__handle_put (srv, slot->handle, (int) (slot - srv->slots));
  slot->last_used = ra__now ();
  ra_autoreset_t mode = slot->mk_args.autoreset;
  int64_t num_envs = ra_session_num_envs (s);
  ra__log (srv, RA_LOG_INFO, "make %s x%lld -> handle %lld (%s)", ra_session_class (s)->name,
           (long long) num_envs, (long long) slot->handle, ra_autoreset_name (mode));

  if (slot->mk_shm) {
    /* No segment (no /dev/shm room, or over the byte budgets) is no failure: the session
       answers with frames. */
    ra_error_t serr;
    if (ra__shm_new (srv, slot, &serr) != RA_OK)
      ra__log (srv, RA_LOG_WARN, "handle %lld without shared memory: %s", (long long) slot->handle,
               serr.message);
  }
  const ra_sim_spec_t *sp = ra_session_spec (s);
  ra_msg_out_reply (rep, id, 9 + (slot->shm != NULL));
  ra_msg_out_str (rep, "handle");
  ra_msg_out_int (rep, slot->handle);
  ra_msg_out_str (rep, "num_envs");
  ra_msg_out_int (rep, num_envs);
  ra_msg_out_str (rep, "observation_space");
  if (ra_space_encode (ra_session_observation_space (s), rep) != RA_OK)
    goto fail_frames;
  ra_msg_out_str (rep, "action_space");
  if (ra_space_encode (ra_session_action_space (s), rep) != RA_OK)
    goto fail_frames;
  ra_msg_out_str (rep, "reward_range");
  ra_msg_out_array (rep, 2);
  ra_msg_out_double (rep, sp->reward_range[0]);
  ra_msg_out_double (rep, sp->reward_range[1]);
  ra_msg_out_str (rep, "max_episode_steps");
  ra_msg_out_int (rep, ra_session_max_episode_steps (s));
  ra_msg_out_str (rep, "autoreset");
  ra_msg_out_str (rep, ra_autoreset_name (mode));
  ra_msg_out_str (rep, "task");
  ra__pack_task (rep, s, 0);
  ra_msg_out_str (rep, "metadata");
  ra_msg_out_map (rep, 2);
  ra_msg_out_str (rep, "autoreset_mode");
  ra_msg_out_str (rep, ra_autoreset_name (mode));
  ra_msg_out_str (rep, "render_modes");
  ra_msg_out_array (rep, 1);
  ra_msg_out_str (rep, "ansi");
  if (slot->shm) {
    ra_msg_out_str (rep, "shm");
    ra__shm_pack_make (rep, slot);
  }
  return RA_OK;

fail_frames:
  /* Too many observation fields for one message: undo the make. */
  ra__session_drop (srv, slot);
  return ra_error_set (err, RA_ERR_LIMIT, -1, "the observation space needs more than %d frames",
                       RA_MSG_MAX_FRAMES);
}

/* Whether the caller's key and the server have room for one more session of num_envs envs
   (docs/protocol.md section "Limits", envs and sessions, per client key). */
static ra_err_t s_admit_counts (const ra_server_t *srv, int64_t num_envs, ra_error_t *err)
{
  if (srv->caller[0]) {
    /* Per key before server-wide: a key at its own limit is told so, whatever the others hold. */
    ra__usage_t u = ra__key_usage (srv, srv->caller);
    if (u.sessions >= srv->opts.max_sessions_per_key)
      return ra_error_set (err, RA_ERR_LIMIT, -1,
                           "this client key has %lld live sessions, one key may have %d; close one",
                           (long long) u.sessions, srv->opts.max_sessions_per_key);
    if (u.envs + num_envs > srv->opts.max_envs_per_key)
      return ra_error_set (err, RA_ERR_LIMIT, -1,
                           "this client key has %lld envs live and %lld more were asked; one key "
                           "may have %d in all", (long long) u.envs, (long long) num_envs,
                           srv->opts.max_envs_per_key);
  }
  if (srv->nenvs + num_envs > srv->opts.max_total_envs)
    return ra_error_set (err, RA_ERR_LIMIT, -1,
                         "%lld envs are live and %lld more were asked; the server allows %d in all",
                         (long long) srv->nenvs, (long long) num_envs, srv->opts.max_total_envs);
  if (srv->nsessions >= srv->opts.max_sessions)
    return ra_error_set (err, RA_ERR_LIMIT, -1, "%lld sessions are live, the server allows %d; close one",
                         (long long) srv->nsessions, srv->opts.max_sessions);
  return RA_OK;
}

static ra_err_t s_make (ra_server_t *srv, const ra_msg_in_t *req, ra_msg_out_t *rep, ra_error_t *err)
{
  const char *env;
  int env_len;
  int64_t num_envs;
  uint64_t seed = 0;
  const msgpack_object *config = NULL;
  const char *ar = NULL;
  int ar_len = 0;
  int64_t max_steps = 0;
  ra_err_t rc;
  if ((rc = ra_get_str (req->root, "env", &env, &env_len, err)) != RA_OK
      || (rc = ra_get_int (req->root, "num_envs", &num_envs, err)) != RA_OK
      || (rc = ra_opt_map (req->root, "config", &config, err)) != RA_OK
      || (rc = ra_opt_str (req->root, "autoreset", &ar, &ar_len, err)) != RA_OK
      || (rc = ra_opt_int (req->root, "max_episode_steps", &max_steps, err)) != RA_OK)
    return rc;
  bool has_seed = ra_map_get (req->root, "seed") != NULL, want_shm = false, want_spin = false,
       shm_lock = false;
  if ((rc = ra_opt_uint (req->root, "seed", &seed, err)) != RA_OK
      || (rc = ra_opt_bool (req->root, "shm", &want_shm, err)) != RA_OK
      || (rc = ra_opt_bool (req->root, "shm_lock", &shm_lock, err)) != RA_OK
      || (rc = ra_opt_bool (req->root, "spin", &want_spin, err)) != RA_OK)
    return rc;
  const ra_sim_class_t *cls = ra_sims_find (env, env_len);
  if (!cls) {
    int nsims;
    const ra_sim_class_t *const *sims = ra_sims_all (&nsims);
    char known[256] = "";
    for (int i = 0; i < nsims; i++) {
      size_t at = strlen (known);
      snprintf (known + at, sizeof known - at, "%s%s", i ? ", " : "", sims[i]->name);
    }
    return ra_error_set (err, RA_ERR_UNKNOWN_ENV, -1, "unknown env '%.*s'; this server has: %s",
                         env_len > 64 ? 64 : env_len, env, known);
  }
  if (num_envs < 1)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "num_envs is %lld, expected at least 1",
                         (long long) num_envs);
  if (num_envs > srv->opts.max_envs)
    return ra_error_set (err, RA_ERR_LIMIT, -1, "num_envs is %lld, this server allows at most %d",
                         (long long) num_envs, srv->opts.max_envs);
  ra_autoreset_t mode = RA_AUTORESET_NEXT_STEP;
  if (ar && !ra_autoreset_from_name (ar, ar_len, &mode))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "autoreset is '%.*s', expected next_step, same_step or disabled",
                         ar_len > 32 ? 32 : ar_len, ar);
  if (ra_map_get (req->root, "max_episode_steps") && (max_steps < 1 || max_steps > INT32_MAX))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "max_episode_steps is %lld, expected 1..2147483647", (long long) max_steps);

  ra__kvlist_t *cfg = calloc (1, sizeof *cfg), *tkv = calloc (1, sizeof *tkv);
  if (!cfg || !tkv) {
    rc = ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory");
    goto fail;
  }
  ra_task_t task;
  bool has_task = false;
  if (config) {
    if ((rc = ra__flatten (cfg, config, "", 0, true, "config", err)) != RA_OK)
      goto fail;
    const msgpack_object *t = ra_map_get (config, "task");
    if (t) {
      if ((rc = ra__parse_task (t, tkv, &task, err)) != RA_OK)
        goto fail;
      has_task = true;
    }
  }
  /* The request is checked in full before the server's room: a config the sim refuses is
     BAD_CONFIG naming the key, as in-process (env/local), whatever the server holds; and the
     byte estimate below is only made of sizes the sim accepts. */
  ra_sim_args_t check = { .config = cfg->kv, .n_config = cfg->n, .task = has_task ? &task : NULL,
                          .num_envs = (int) num_envs, .seed = 0 };
  if ((rc = cls->check (&check, err)) != RA_OK || (rc = s_admit_counts (srv, num_envs, err)) != RA_OK)
    goto fail;
  ra__estimate_t est = ra__estimate (cfg, cls, num_envs, mode);
  double bytes = est.world + (double) num_envs * est.per_env;
  if ((rc = ra__admit (srv, srv->caller, 0, bytes, "this make", err)) != RA_OK)
    goto fail;
  if (!has_seed) {
    if (srv->opts.has_default_seed)
      seed = srv->opts.default_seed;
    else
      seed = (uint64_t) (ra__now () * 1e9) ^ (++srv->seed_counter * 0x9E3779B97F4A7C15ull);
  }
  ra_session_args_t args = {
    .cls = cls,
    .sim = { .config = cfg->kv, .n_config = cfg->n, .task = has_task ? &task : NULL,
             .num_envs = (int) num_envs, .seed = seed },
    .autoreset = mode,
    .max_episode_steps = (int) max_steps,
  };
  int slot_i = -1;
  for (int i = 0; i < srv->opts.max_sessions; i++)
    if (!srv->slots[i].session && !srv->slots[i].reserved) {
      slot_i = i;
      break;
    }
  if (slot_i < 0) {
    rc = ra_error_set (err, RA_ERR_LIMIT, -1, "no free session slot");
    goto fail;
  }
  /* Reserve the slot and the budgets now, so that makes admitted while this one builds see them. */
  ra__slot_t *slot = &srv->slots[slot_i];
  slot->reserved = true;
  slot->mk_shm = want_shm && ra__shm_offered (srv);
  slot->mk_spin = slot->mk_shm && want_spin;
  slot->mk_shm_lock = slot->mk_shm && shm_lock;
  snprintf (slot->owner, sizeof slot->owner, "%s", srv->caller);
  slot->config_keep = cfg;
  slot->task_keep = tkv;
  slot->bytes = (int64_t) bytes;
  slot->world_bytes = (int64_t) est.world;
  slot->state_bytes = (int64_t) (est.env_state * (double) num_envs);
  slot->worlds_charged = 1;
  slot->worlds_max = est.worlds_max;
  srv->nbytes += slot->bytes;
  srv->nsessions++;
  srv->nenvs += num_envs;
  slot->mk_args = args;
  if (has_task) {
    slot->mk_task = task;
    slot->mk_args.sim.task = &slot->mk_task;
  }
  /* A world worth building off the loop is built on the pool while the loop serves others; the
     reply goes out when it is done (docs/protocol.md section "Limits"). */
  if (srv->async && ra_pool_workers (srv->pool) > 0 && est.world >= (double) srv->opts.async_min_bytes) {
    slot->job = (ra_pool_job_t) { .fn = s_make_job, .ctx = slot, .n = 1, .user = slot,
                                  .group = ra__key_group (slot->owner) };
    slot->job_kind = RA__JOB_MAKE;
    slot->job_id = req->id;
    srv->deferred = slot;
    return RA_OK;
  }
  s_make_job (slot, 0, 1);
  return s_make_finish (srv, slot, req->id, rep, err);
fail:
  ra__kvlist_free (cfg);
  ra__kvlist_free (tkv);
  return rc;
}

/* A bool[N] mask tensor (bool or u8) under key in map, copied into out (N bytes, 0 or 1). */
static ra_err_t s_get_mask (const ra_msg_in_t *req, const msgpack_object *map, const char *key,
                            int n, uint8_t *out, bool *found, ra_error_t *err)
{
  ra_tensor_t t;
  ra_err_t rc = ra_opt_tensor (req, map, key, &t, found, err);
  if (rc != RA_OK || !*found)
    return rc;
  if (t.dtype != RA_DTYPE_BOOL && t.dtype != RA_DTYPE_U8)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "%s has dtype %s, expected bool", key,
                         ra_dtype_name (t.dtype));
  if (t.ndim != 1 || t.shape[0] != n)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "%s must have shape (%d,), one per env", key, n);
  const uint8_t *p = t.data;
  for (int i = 0; i < n; i++)
    out[i] = p[i] != 0;
  return RA_OK;
}

static ra_err_t s_reset (ra_server_t *srv, const ra_msg_in_t *req, ra_msg_out_t *rep, ra_error_t *err)
{
  ra_session_t *s = srv->cur->session;
  int n = ra_session_num_envs (s), shm_j;
  const msgpack_object *seed = ra_map_get (req->root, "seed"), *options = NULL;
  ra_err_t rc = ra_opt_map (req->root, "options", &options, err);
  if (rc == RA_OK)
    rc = ra__shm_request (srv->cur, req, &shm_j, err);
  if (rc != RA_OK)
    return rc;
  uint64_t *seeds = NULL;
  uint8_t *mask = NULL;
  bool has_mask = false;
  if (seed) {
    if (!(seeds = malloc ((size_t) n * sizeof *seeds)))
      return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory");
    if (seed->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
      for (int i = 0; i < n; i++)
        seeds[i] = seed->via.u64 + (uint64_t) i;
    } else if (seed->type == MSGPACK_OBJECT_ARRAY) {
      if (seed->via.array.size != (uint32_t) n) {
        rc = ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "seed list has %u entries, expected %d (one per env)",
                           seed->via.array.size, n);
        goto done;
      }
      for (int i = 0; i < n; i++) {
        const msgpack_object *v = &seed->via.array.ptr[i];
        if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
          rc = ra_error_set (err, RA_ERR_BAD_REQUEST, i, "seed %d is %s, expected a non-negative integer",
                             i, ra_obj_type_name (v));
          goto done;
        }
        seeds[i] = v->via.u64;
      }
    } else {
      rc = ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                         "field 'seed' must be a non-negative integer or a list of %d, got %s", n,
                         ra_obj_type_name (seed));
      goto done;
    }
  }
  if (options) {
    if (!(mask = malloc ((size_t) n))) {
      rc = ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory");
      goto done;
    }
    if ((rc = s_get_mask (req, options, "reset_mask", n, mask, &has_mask, err)) != RA_OK)
      goto done;
  }
  srv->cur->shm_reply = shm_j >= 0;
  if (shm_j >= 0)
    ra_session_select_block (s, shm_j);
  if (ra_session_reset_prepare (s, seeds, has_mask ? mask : NULL) != RA_OK) {
    rc = ra_error_set (err, RA_ERR_LIMIT, -1,
                       "the server is out of memory for another reply buffer; read the replies "
                       "in flight and retry");
    goto done;
  }
  if (!ra__run_or_defer (srv, ra_session_reset_range, RA__JOB_RESET, req->id))
    rc = ra__reply_reset (srv, srv->cur, req->id, rep, err);
done:
  free (seeds);
  free (mask);
  return rc;
}

/* Validates the action tensor for the whole batch and writes it into the session's int32 actions.
   The session's action scratch is not state: nothing else changes on failure. */
static ra_err_t s_read_actions (ra_session_t *s, const ra_tensor_t *t, ra_error_t *err)
{
  int n = ra_session_num_envs (s), K = ra_session_num_candidates (s), k = ra_session_slate_size (s);
  if (!ra_dtype_is_integer (t->dtype))
    return ra_error_set (err, RA_ERR_BAD_ACTION, -1, "action has dtype %s, expected an integer dtype",
                         ra_dtype_name (t->dtype));
  if (k == 1) {
    if (t->ndim != 1 || t->shape[0] != n)
      return ra_error_set (err, RA_ERR_BAD_ACTION, -1,
                           "action has %d dims (first %lld), expected shape (%d,) for Discrete(%d)",
                           t->ndim, (long long) (t->ndim ? t->shape[0] : 0), n, K);
  } else if (t->ndim != 2 || t->shape[0] != n || t->shape[1] != k) {
    return ra_error_set (err, RA_ERR_BAD_ACTION, -1,
                         "action has the wrong shape, expected (%d, %d): %d envs, slate size %d", n, k,
                         n, k);
  }
  int32_t *a = ra_session_actions (s);
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < k; j++) {
      int64_t v = ra_tensor_get_int (t, (int64_t) i * k + j);
      if (v < 0 || v >= K)
        return ra_error_set (err, RA_ERR_BAD_ACTION, i,
                             "action for env %d slot %d is %lld, expected 0..%d", i, j, (long long) v,
                             K - 1);
      for (int jj = 0; jj < j; jj++)
        if (a[i * k + jj] == (int32_t) v)
          return ra_error_set (err, RA_ERR_BAD_ACTION, i,
                               "action for env %d repeats candidate %lld in slots %d and %d", i,
                               (long long) v, jj, j);
      a[i * k + j] = (int32_t) v;
    }
  }
  return RA_OK;
}

static ra_err_t s_step (ra_server_t *srv, const ra_msg_in_t *req, ra_msg_out_t *rep, ra_error_t *err)
{
  ra_session_t *s = srv->cur->session;
  int n = ra_session_num_envs (s), shm_j;
  ra_tensor_t action;
  ra_err_t rc = ra__shm_request (srv->cur, req, &shm_j, err);
  if (rc != RA_OK)
    return rc;
  /* With a shared-memory slot and no "action" tensor, the client wrote the actions there. */
  if (shm_j >= 0 && !ra_map_get (req->root, "action"))
    action = ra__shm_action (srv->cur, shm_j, n, ra_session_slate_size (s));
  else
    rc = ra_get_tensor (req, req->root, "action", &action, err);
  if (rc == RA_ERR_BAD_REQUEST && ra_map_get (req->root, "action")) {
    /* Present but not a valid tensor (dtype name, shape, frame size): an action problem. */
    err->code = RA_ERR_BAD_ACTION;
    return RA_ERR_BAD_ACTION;
  }
  if (rc != RA_OK)
    return rc;
  if ((rc = s_read_actions (s, &action, err)) != RA_OK
      || (rc = ra_session_check_step (s, err)) != RA_OK)
    return rc;
  srv->cur->shm_reply = shm_j >= 0;
  if (shm_j >= 0)
    ra_session_select_block (s, shm_j);
  if (ra_session_step_prepare (s) != RA_OK)
    return ra_error_set (err, RA_ERR_LIMIT, -1,
                         "the server is out of memory for another reply buffer; read the replies "
                         "in flight and retry");
  ra__count (srv, n, 0, 0);
  if (ra__run_or_defer (srv, ra_session_step_range, RA__JOB_STEP, req->id))
    return RA_OK;
  return ra__reply_step (srv, srv->cur, req->id, rep, err);
}

/* Runs on the pool (or inline): the sim's set_task, which may build a task world. */
static void s_set_task_job (void *ctx, int i0, int i1)
{
  (void) i0;
  (void) i1;
  ra__slot_t *slot = ctx;
  ra_session_t *s = slot->session;
  ra_error_clear (&slot->st_err);
  slot->st_rc = ra_session_class (s)->set_task (ra_session_sim (s), &slot->st_task, slot->st_mask,
                                                &slot->st_err);
}

/* Packs the reply of a finished set_task (or undoes its charge and returns the error). */
static ra_err_t s_set_task_finish (ra_server_t *srv, ra__slot_t *slot, uint64_t id,
                                   ra_msg_out_t *rep, ra_error_t *err)
{
  ra_session_t *s = slot->session;
  ra_err_t rc = slot->st_rc;
  if (rc != RA_OK) {
    *err = slot->st_err;
    if (slot->st_grows) {
      slot->worlds_charged--;
      slot->bytes -= slot->world_bytes;
      srv->nbytes -= slot->world_bytes;
    }
    ra__kvlist_free (slot->st_tkv);
  } else {
    ra__kvlist_free (slot->task_keep);
    slot->task_keep = slot->st_tkv;
    int n = ra_session_num_envs (s), first = 0;
    if (slot->st_mask)
      for (first = 0; first < n - 1 && !slot->st_mask[first]; first++) {
      }
    ra_msg_out_reply (rep, id, 1);
    ra_msg_out_str (rep, "task");
    ra__pack_task (rep, s, first);
  }
  slot->st_tkv = NULL;
  free (slot->st_mask);
  slot->st_mask = NULL;
  return rc;
}

static ra_err_t s_set_task (ra_server_t *srv, const ra_msg_in_t *req, ra_msg_out_t *rep,
                            ra_error_t *err)
{
  ra__slot_t *slot = srv->cur;
  ra_session_t *s = slot->session;
  int n = ra_session_num_envs (s);
  const msgpack_object *tobj;
  ra_err_t rc = ra_get_map (req->root, "task", &tobj, err);
  if (rc != RA_OK)
    return rc;
  ra__kvlist_t *tkv = calloc (1, sizeof *tkv);
  uint8_t *mask = malloc ((size_t) n);
  bool has_mask = false;
  ra_task_t task;
  if (!tkv || !mask) {
    rc = ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory");
    goto fail;
  }
  if ((rc = s_get_mask (req, req->root, "mask", n, mask, &has_mask, err)) != RA_OK
      || (rc = ra__parse_task (tobj, tkv, &task, err)) != RA_OK)
    goto fail;
  /* A new task may build one more world, until every task slot holds one: charged now, so that
     requests admitted while it builds see it; given back if the sim refuses the task. */
  bool grows = slot->worlds_charged < slot->worlds_max;
  if (grows && (rc = ra__admit (srv, slot->owner, (double) slot->bytes, (double) slot->world_bytes,
                                "this set_task (one more task world)", err)) != RA_OK)
    goto fail;
  if (grows) {
    slot->worlds_charged++;
    slot->bytes += slot->world_bytes;
    srv->nbytes += slot->world_bytes;
  }
  slot->st_grows = grows;
  slot->st_tkv = tkv;
  slot->st_task = task;
  slot->st_mask = has_mask ? mask : NULL;
  if (!has_mask)
    free (mask);
  /* A world worth building off the loop is built on the pool; the session is busy meanwhile,
     so requests naming it wait in order (docs/protocol.md section "Limits"). Whether or not the
     task grows the session's worlds: once every task slot is charged, a new task rebuilds the
     world of a slot its envs left (1.8 s for 1M items x 64 dims, inline until then). */
  if (srv->async && ra_pool_workers (srv->pool) > 0 && slot->world_bytes >= srv->opts.async_min_bytes) {
    slot->job = (ra_pool_job_t) { .fn = s_set_task_job, .ctx = slot, .n = 1, .user = slot,
                                  .group = ra__key_group (slot->owner) };
    slot->job_kind = RA__JOB_SET_TASK;
    slot->job_id = req->id;
    srv->deferred = slot;
    return RA_OK;
  }
  s_set_task_job (slot, 0, 1);
  return s_set_task_finish (srv, slot, req->id, rep, err);
fail:
  ra__kvlist_free (tkv);
  free (mask);
  return rc;
}

static ra_err_t s_render (ra_server_t *srv, const ra_msg_in_t *req, ra_msg_out_t *rep, ra_error_t *err)
{
  ra_session_t *s = srv->cur->session;
  int64_t index;
  ra_err_t rc = ra_get_int (req->root, "index", &index, err);
  if (rc != RA_OK)
    return rc;
  if (index < 0 || index >= ra_session_num_envs (s))
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "index is %lld, expected 0..%d", (long long) index,
                         ra_session_num_envs (s) - 1);
  const ra_sim_class_t *cls = ra_session_class (s);
  char small[1];
  int want = cls->render (ra_session_sim (s), (int) index, small, sizeof small);
  if (want < 0)
    want = 0;
  if (want > (1 << 20))
    want = 1 << 20;
  char *buf = malloc ((size_t) want + 1);
  if (!buf)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory");
  buf[0] = '\0';
  cls->render (ra_session_sim (s), (int) index, buf, (size_t) want + 1);
  ra_msg_out_reply (rep, req->id, 1);
  ra_msg_out_str (rep, "text");
  ra_msg_out_str (rep, buf);
  free (buf);
  return RA_OK;
}

static ra_err_t s_close (ra_server_t *srv, const ra_msg_in_t *req, ra_msg_out_t *rep, ra_error_t *err)
{
  (void) err;
  ra__log (srv, RA_LOG_INFO, "close handle %lld", (long long) srv->cur->handle);
  ra__session_drop (srv, srv->cur);
  srv->cur = NULL;
  ra_msg_out_reply (rep, req->id, 0);
  return RA_OK;
}

static ra_err_t s_ping (ra_server_t *srv, const ra_msg_in_t *req, ra_msg_out_t *rep, ra_error_t *err)
{
  (void) srv;
  (void) err;
  ra_msg_out_reply (rep, req->id, 0);
  return RA_OK;
}

static ra_err_t s_stats (ra_server_t *srv, const ra_msg_in_t *req, ra_msg_out_t *rep, ra_error_t *err)
{
  (void) err;
  ra_server_counters_t c;
  ra_server_counters (srv, &c);
  /* With CURVE, a key sees its own sessions and activity only: the server's would tell it how
     busy the other keys are. The admin key (and everyone when there are no keys, on a
     loopback-only server) sees them all. */
  if (srv->caller[0] && !srv->caller_admin) {
    const ra__counts_t none = { 0, 0, 0 }, *k = srv->caller_counts ? srv->caller_counts : &none;
    c.steps = k->steps;
    c.requests = k->requests;
    c.errors = k->errors;
    c.sessions = c.envs = 0;
    for (int i = 0; i < srv->opts.max_sessions; i++) {
      const ra__slot_t *slot = &srv->slots[i];
      if (slot->session && strcmp (slot->owner, srv->caller) == 0) {
        c.sessions++;
        c.envs += ra_session_num_envs (slot->session);
      }
    }
  }
  ra_msg_out_reply (rep, req->id, 6);
  ra_msg_out_str (rep, "sessions");
  ra_msg_out_int (rep, c.sessions);
  ra_msg_out_str (rep, "envs");
  ra_msg_out_int (rep, c.envs);
  ra_msg_out_str (rep, "steps");
  ra_msg_out_int (rep, c.steps);
  ra_msg_out_str (rep, "errors");
  ra_msg_out_int (rep, c.errors);
  ra_msg_out_str (rep, "requests");
  ra_msg_out_int (rep, c.requests);
  ra_msg_out_str (rep, "uptime_s");
  ra_msg_out_double (rep, c.uptime_s);
  return RA_OK;
}

static const s_op_t s_ops[] = {
  { "hello", s_hello, 0 },
  { "list", s_list, 0 },
  { "make", s_make, 0 },
  { "reset", s_reset, S_OP_SESSION },
  { "step", s_step, S_OP_SESSION },
  { "set_task", s_set_task, S_OP_SESSION },
  { "render", s_render, S_OP_SESSION },
  { "close", s_close, S_OP_SESSION },
  { "ping", s_ping, 0 },
  { "stats", s_stats, 0 },
  { "ring", ra__spin_ring, S_OP_SESSION },
};

bool ra__op_is_session (const char *op, int len)
{
  for (size_t i = 0; i < sizeof s_ops / sizeof s_ops[0]; i++)
    if ((int) strlen (s_ops[i].name) == len && memcmp (s_ops[i].name, op, (size_t) len) == 0)
      return (s_ops[i].flags & S_OP_SESSION) != 0;
  return false;
}

void ra__reply_job (ra_server_t *srv, ra__slot_t *slot, ra_msg_out_t *rep)
{
  ra_error_t err;
  ra_error_clear (&err);
  ra_msg_out_clear (rep);
  srv->reply_owner = NULL;
  ra_err_t rc;
  switch (slot->job_kind) {
  case RA__JOB_STEP: rc = ra__reply_step (srv, slot, slot->job_id, rep, &err); break;
  case RA__JOB_RESET: rc = ra__reply_reset (srv, slot, slot->job_id, rep, &err); break;
  case RA__JOB_MAKE: rc = s_make_finish (srv, slot, slot->job_id, rep, &err); break;
  default: rc = s_set_task_finish (srv, slot, slot->job_id, rep, &err); break;
  }
  if (rc != RA_OK) {
    if (err.code == RA_OK || err.code > RA_ERR_LAST_WIRE)
      ra_error_set (&err, RA_ERR_INTERNAL, -1, "%s", err.message[0] ? err.message : ra_err_text (rc));
    srv->reply_owner = NULL;
    ra__count (srv, 0, 0, 1);
    ra_msg_out_error (rep, slot->job_id, &err);
  }
}

void ra__dispatch (ra_server_t *srv, const ra_msg_in_t *req, ra_msg_out_t *rep)
{
  ra_error_t err;
  ra_error_clear (&err);
  ra_err_t rc = RA_ERR_UNKNOWN_OP;
  srv->reply_owner = NULL;
  srv->cur = NULL;
  srv->deferred = NULL;
  ra__count (srv, 0, 1, 0);
  ra_msg_out_clear (rep);
  const s_op_t *op = NULL;
  for (size_t i = 0; i < sizeof s_ops / sizeof s_ops[0]; i++)
    if ((int) strlen (s_ops[i].name) == req->op_len && memcmp (s_ops[i].name, req->op, (size_t) req->op_len) == 0)
      op = &s_ops[i];
  if (!op) {
    ra_error_set (&err, RA_ERR_UNKNOWN_OP, -1,
                  "unknown op '%.*s'; expected hello, list, make, reset, step, set_task, render, "
                  "close, ping, stats or ring", req->op_len > 32 ? 32 : req->op_len, req->op);
  } else {
    rc = RA_OK;
    if (op->flags & S_OP_SESSION) {
      int64_t handle;
      rc = ra_get_int (req->root, "handle", &handle, &err);
      if (rc == RA_OK)
        rc = ra__session_get (srv, handle, &srv->cur, &err);
    }
    if (rc == RA_OK)
      rc = op->fn (srv, req, rep, &err);
  }
  if (rc != RA_OK) {
    if (err.code == RA_OK)   /* a handler that forgot the detail */
      ra_error_set (&err, rc, -1, "%s", ra_err_text (rc));
    if (err.code > RA_ERR_LAST_WIRE)
      err.code = RA_ERR_INTERNAL;
    srv->reply_owner = NULL;
    ra__count (srv, 0, 0, 1);
    ra__log (srv, RA_LOG_DEBUG, "request %llu (%.*s): %s: %s", (unsigned long long) req->id,
             req->op_len > 32 ? 32 : req->op_len, req->op, ra_err_code (err.code), err.message);
    ra_msg_out_error (rep, req->id, &err);
  }
}
