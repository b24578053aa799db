/*  env/server/admit.c - admission by bytes against the session's, the client key's and the
    server's budgets (docs/protocol.md section "Limits"): what a make will allocate, estimated
    from its config, and what a client key's sessions hold.                                      */
#include <string.h>

#include "env/server/server_int.h"

/* A size from the config: the request's, else the sim's default, else dflt (the sim has no such
   key: 0 for sizes it does not have), clamped to [0, 1e9]. A make is estimated only once the
   sim has checked its config (handlers.c), so its sizes are in the sim's ranges; the clamp keeps
   the products finite and non-negative whatever the caller passes all the same (1e300 x 1e300 x
   0 was NaN, which every budget admits). */
static double s_cfg_num (const ra__kvlist_t *cfg, const ra_sim_class_t *cls, const char *key,
                         double dflt)
{
  double v = dflt;
  for (int i = 0; i < cls->n_config_defaults; i++)
    if (cls->config_defaults[i].type == RA_KV_NUM && strcmp (cls->config_defaults[i].key, key) == 0)
      v = cls->config_defaults[i].num;
  for (int i = 0; cfg && i < cfg->n; i++)   /* a make's config holds each key once (kvlist.c) */
    if (cfg->kv[i].type == RA_KV_NUM && strcmp (cfg->kv[i].key, key) == 0)
      v = cfg->kv[i].num;
  return v > 0 ? (v < 1e9 ? v : 1e9) : 0;
}

/* Estimates what a make allocates, from the config alone (before anything is built):
     world   = 4 (I (d + 8) + T d) + 64 KiB
     per_env = 4 (K (d + 8) + 8 d) (3 + same_step) + 4 (P (d + 8) + A + 2 T) + 256
   with d embedding_dim, K num_candidates, I num_items, T num_topics, P publish_rate x max_age
   (News' live articles), A num_advertisers (0 where the sim has no such key). A candidate row is
   d floats plus a few scalars; it lives in the sim and in the output buffers (the current one,
   one reply buffer in flight, and the final_obs rows under same_step). Each env also keeps state
   of its own: its ring of P live articles (d floats and a few scalars each: up to 4 MiB an env),
   a budget per advertiser, boredom per topic. */
ra__estimate_t ra__estimate (const ra__kvlist_t *cfg, const ra_sim_class_t *cls, int64_t n,
                             ra_autoreset_t mode)
{
  double d = s_cfg_num (cfg, cls, "embedding_dim", 16), K = s_cfg_num (cfg, cls, "num_candidates", 20);
  double I = s_cfg_num (cfg, cls, "num_items", 0), T = s_cfg_num (cfg, cls, "num_topics", 0);
  double P = s_cfg_num (cfg, cls, "publish_rate", 0) * s_cfg_num (cfg, cls, "max_age", 0);
  double A = s_cfg_num (cfg, cls, "num_advertisers", 0);
  double slots = s_cfg_num (cfg, cls, "task_slots", 1);
  double copies = 3 + (mode == RA_AUTORESET_SAME_STEP);
  ra__estimate_t e;
  e.world = 4 * (I * (d + 8) + T * d) + 65536;
  e.env_state = 4 * (P * (d + 8) + A + 2 * T);
  e.per_env = 4 * (K * (d + 8) + 8 * d) * copies + e.env_state + 256;
  double w = slots < (double) n + 1 ? slots : (double) n + 1;
  e.worlds_max = w < 1 ? 1 : (w > 1e6 ? 1000000 : (int) w);
  return e;
}

/* What the sessions of client key owner hold now, makes still building included. A scan of the
   slots: only make, set_task and segment admission ask, and make scans them anyway. */
ra__usage_t ra__key_usage (const ra_server_t *srv, const char *owner)
{
  ra__usage_t u = { 0, 0, 0 };
  for (int i = 0; i < srv->opts.max_sessions; i++) {
    const ra__slot_t *slot = &srv->slots[i];
    if ((!slot->session && !slot->reserved) || strcmp (slot->owner, owner) != 0)
      continue;
    u.sessions++;
    u.envs += slot->session ? ra_session_num_envs (slot->session) : slot->mk_args.sim.num_envs;
    u.bytes += slot->bytes;
  }
  return u;
}

ra_err_t ra__admit (const ra_server_t *srv, const char *owner, double have, double bytes,
                    const char *what, ra_error_t *err)
{
  const double mib = 1048576.0;
  if (have + bytes > (double) srv->opts.max_session_bytes)
    return ra_error_set (err, RA_ERR_LIMIT, -1,
                         "%s needs about %.1f MiB; a session may hold %.1f MiB (this one holds "
                         "%.1f MiB); use fewer envs, candidates, items or a smaller embedding_dim",
                         what, bytes / mib, (double) srv->opts.max_session_bytes / mib, have / mib);
  if (owner[0]) {
    double used = (double) ra__key_usage (srv, owner).bytes;
    if (used + bytes > (double) srv->opts.max_bytes_per_key)
      return ra_error_set (err, RA_ERR_LIMIT, -1,
                           "%s needs about %.1f MiB; this client key's sessions hold %.1f MiB and "
                           "one key may hold %.1f MiB; close some of them", what, bytes / mib,
                           used / mib, (double) srv->opts.max_bytes_per_key / mib);
  }
  if ((double) srv->nbytes + bytes > (double) srv->opts.max_total_bytes)
    return ra_error_set (err, RA_ERR_LIMIT, -1,
                         "%s needs about %.1f MiB; the server has %.1f MiB of %.1f MiB left; try "
                         "again after other sessions close", what, bytes / mib,
                         (double) (srv->opts.max_total_bytes - srv->nbytes) / mib,
                         (double) srv->opts.max_total_bytes / mib);
  return RA_OK;
}
