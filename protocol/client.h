/*  protocol/client.h - the C client of protocol v1 (docs/protocol.md).

    One client = one DEALER socket connected to one server. Every call has a deadline: a dead or
    absent server yields RA_ERR_TIMEOUT within it, never a hang. After a timeout the client stays
    usable: a late reply to the abandoned request is recognised by its id and dropped.
    Results that point into a reply (tensors, strings) stay valid until the next call on the same
    client. A client and everything it returns belong to one thread.                            */
#ifndef RA_PROTOCOL_CLIENT_H
#define RA_PROTOCOL_CLIENT_H

#include "common/kv.h"
#include "protocol/msg.h"
#include "protocol/space.h"

typedef struct ra_client ra_client_t;

#define RA_CLIENT_DEFAULT_TIMEOUT_MS 10000

/* Connects to endpoint ("tcp://127.0.0.1:5555", "ipc://...") and says hello; a server without
   protocol v1 is RA_ERR_VERSION, no answer within timeout_ms is RA_ERR_TIMEOUT.
   timeout_ms <= 0 means RA_CLIENT_DEFAULT_TIMEOUT_MS; it applies to every later call. */
ra_err_t ra_client_new (const char *endpoint, int timeout_ms, ra_client_t **out, ra_error_t *err);
/* The same over CURVE (docs/protocol.md section "Security"): keys are Z85 strings of 40
   characters, as recarena-server --gen-keys writes them. A server that refuses the key never
   answers, so that reads as RA_ERR_TIMEOUT; malformed keys are RA_ERR_BAD_CONFIG. The session
   handles this client makes belong to public_key: another client with the same key pair (a
   reconnect) may use them, no other key can. */
typedef struct {
  const char *server_key;               /* the server's public key */
  const char *public_key, *secret_key;  /* this client's key pair */
} ra_client_curve_t;
ra_err_t ra_client_new_curve (const char *endpoint, int timeout_ms, const ra_client_curve_t *curve,
                              ra_client_t **out, ra_error_t *err);
/* Accepts NULL; NULLs the pointer. Closes the socket with LINGER 0. */
void ra_client_destroy (ra_client_t **client_p);
/* Changes the deadline of later calls. */
void ra_client_set_timeout (ra_client_t *c, int timeout_ms);
/* Shared memory (docs/protocol.md section "Shared memory"): sessions made later use the server's
   segment when the endpoint is local (ipc://, loopback tcp) and the server offers "shm"; on by
   default. The results, errors and trajectories are the same either way. */
void ra_client_set_shm (ra_client_t *c, bool on);
/* True when the next make will ask for a segment. */
bool ra_client_shm_available (const ra_client_t *c);
/* The doorbell (docs/local.md section 4): sessions made later over shared memory ask the server
   for one, and their resets and steps skip ZeroMQ while the server polls it; this client then
   spins up to spin_us microseconds (a busy core) for each reply before it falls back to waiting
   on ZeroMQ. 0 (the default, or $RECARENA_SPIN_US at ra_client_new) is off; clamped to
   [0, RA_SPIN_MAX_US]. A server without --spin-us gives no doorbell: nothing changes then. The
   results, errors and trajectories are the same either way. */
void ra_client_set_spin (ra_client_t *c, int spin_us);
/* True when the next make will ask for a doorbell. */
bool ra_client_spin_available (const ra_client_t *c);
/* The hello reply's fields (valid for the client's life). */
const char *ra_client_server_name (const ra_client_t *c);
const char *ra_client_server_build (const ra_client_t *c);

/* Low level: a fresh request id, then one round trip. The client sends req (built with
   ra_msg_out_request and that id) and waits for the reply with the same id (the id most recently
   returned by ra_client_next_id); replies with any other id are dropped. An error reply
   becomes its code and message in *err; the decoded reply is in *reply either way (owned by
   the client, valid until the next call). */
uint64_t ra_client_next_id (ra_client_t *c);
ra_err_t ra_client_call (ra_client_t *c, ra_msg_out_t *req, const ra_msg_in_t **reply,
                         ra_error_t *err);

/* A named list of tensors from a reply: an obs map, an info map. Views borrow the reply.
   Names: obs keys as sent ("user"); a non-Dict observation is one field named "obs". Nested maps
   are flattened with dots, in reply order: under same_step, info {"final_obs": {"user": T}}
   gives "final_obs.user", and final_info gives "final_info.clicked", "final_info._clicked", ...
   Values that are not tensors (scalars, strings, arrays) are skipped. More than
   RA_CLIENT_MAX_FIELDS tensors, or a name longer than 63 bytes, is RA_ERR_LIMIT. */
#define RA_CLIENT_MAX_FIELDS 64
typedef struct {
  int n;
  char names[RA_CLIENT_MAX_FIELDS][64];
  ra_tensor_t tensors[RA_CLIENT_MAX_FIELDS];
} ra_fields_t;
/* Index of name in f, or -1. */
int ra_fields_find (const ra_fields_t *f, const char *name);

/* A batch of envs on the server (the result of make). Owned by the caller; release with
   ra_client_env_fini. */
typedef struct {
  int64_t handle;
  int num_envs;
  ra_space_t *observation_space;
  ra_space_t *action_space;
  double reward_range[2];
  int max_episode_steps;
  char autoreset[16];                   /* "next_step", "same_step" or "disabled" */
  struct ra_shm_map *shm;               /* the session's mapped segment, or NULL (frames) */
} ra_client_env_t;
void ra_client_env_fini (ra_client_env_t *env);

typedef struct {
  bool has_seed;                        /* seed env i with seed + i */
  uint64_t seed;
  const ra_kv_t *config;                /* n_config entries; dotted keys become nested maps */
  int n_config;
  const char *autoreset;                /* NULL: server default ("next_step") */
  int max_episode_steps;                /* <= 0: server default */
} ra_make_opts_t;

typedef struct {
  ra_fields_t obs;                      /* keys of the observation Dict, each (N, ...) */
  ra_tensor_t reward;                   /* f32 (N) ; step only */
  ra_tensor_t terminated, truncated;    /* bool (N) ; step only */
  ra_fields_t info;                     /* name -> (N, ...), plus "_name" bool masks */
} ra_step_result_t;

ra_err_t ra_client_ping (ra_client_t *c, ra_error_t *err);
/* Fills *out; sessions, envs, steps, errors as counters, uptime in seconds. */
typedef struct { int64_t sessions, envs, steps, errors; double uptime_s; } ra_server_stats_t;
ra_err_t ra_client_stats (ra_client_t *c, ra_server_stats_t *out, ra_error_t *err);
ra_err_t ra_client_make (ra_client_t *c, const char *env_id, int num_envs,
                         const ra_make_opts_t *opts, ra_client_env_t *out, ra_error_t *err);
/* seeds: NULL (keep each env's stream), or num_envs seeds. reset_mask: NULL (all) or num_envs
   bools. */
ra_err_t ra_client_reset (ra_client_t *c, const ra_client_env_t *env, const uint64_t *seeds,
                          const bool *reset_mask, ra_step_result_t *out, ra_error_t *err);
/* action: (N) for Discrete or (N, k) for MultiDiscrete, any integer dtype. */
ra_err_t ra_client_step (ra_client_t *c, const ra_client_env_t *env, const ra_tensor_t *action,
                         ra_step_result_t *out, ra_error_t *err);
/* task given by split and id (params NULL) or by explicit params (split NULL). mask: NULL or
   num_envs bools. */
ra_err_t ra_client_set_task (ra_client_t *c, const ra_client_env_t *env, const char *split,
                             int64_t id, const ra_kv_t *params, int n_params, const bool *mask,
                             ra_error_t *err);
/* Copies at most cap - 1 bytes of the text into buf (always NUL-terminated). */
ra_err_t ra_client_render (ra_client_t *c, const ra_client_env_t *env, int index, char *buf,
                           size_t cap, ra_error_t *err);
ra_err_t ra_client_close (ra_client_t *c, const ra_client_env_t *env, ra_error_t *err);

#endif
