/*  env/server/server.h - recarena-server as a library: sessions, the command table and the
    ZeroMQ loop (docs/protocol.md; docs/architecture.md sections 8 and 9).

    ra_server_handle answers one decoded request without touching a socket, so tests (and other
    transports) can drive every op directly; there, big batches run fork-join on the worker pool
    and the call returns with the reply. ra_server_run owns the ROUTER socket: it polls with a
    timeout that ends at the next timer, serves what is ready, expires idle sessions, and returns
    when ra_server_stop is called (from any thread or a signal handler); there, big steps and
    resets run on the workers while the loop keeps serving, and are answered when done.
    Library code: never prints or exits; log lines go to opts.log when set.
    Threading: one thread calls everything except ra_server_stop, which is async-signal-safe.   */
#ifndef RA_ENV_SERVER_SERVER_H
#define RA_ENV_SERVER_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "protocol/msg.h"

typedef struct ra_server ra_server_t;

enum { RA_LOG_ERROR = 0, RA_LOG_WARN = 1, RA_LOG_INFO = 2, RA_LOG_DEBUG = 3 };
typedef void (*ra_log_fn) (void *ud, int level, const char *msg);

#define RA_SERVER_MAX_BINDS 8

typedef struct {
  int workers;                  /* threads stepping big batches; 1: none, the socket thread steps
                                   everything inline; <= 0: one per CPU */
  int async_min_envs;           /* ra_server_run steps batches at least this big on the workers
                                   while it keeps serving; smaller ones inline (cost <= ~1 ms).
                                   Default 1024 */
  int max_envs;                 /* per make (num_envs above it: LIMIT); default 65536, at most
                                   max_total_envs */
  int max_total_envs;           /* over all sessions (memory cap); default 262144 */
  int max_sessions;             /* default 1024, at most 65535 */
  double idle_timeout_s;        /* sessions idle longer are reclaimed; default 600 */
  int64_t max_message_bytes;    /* incoming message cap: each frame (ZMQ_MAXMSGSIZE) and the sum
                                   of a message's frames; default 64 MiB */
  int rcv_hwm;                  /* complete messages ZeroMQ queues per peer before it stops
                                   reading that peer's connection; default 64 */
  int64_t max_session_bytes;    /* admission: estimated bytes one session may hold (make and
                                   set_task past it: LIMIT); <= 0: a quarter of physical memory */
  int64_t max_total_bytes;      /* admission over all sessions; <= 0: half of physical memory */
  /* Per client key (docs/protocol.md section "Limits"): what the sessions of one CURVE key may
     hold together, so that one key cannot take a whole server-wide budget and starve the others.
     Applied only to requests with a key (ra_server_set_caller): without CURVE every client is
     the same anonymous one and only the server-wide limits apply. <= 0: the server-wide limit
     divided by the number of allowed keys, but at least a quarter of it (with up to 4 keys each
     is sure of its share; with more, no one key takes more than a quarter). */
  int max_sessions_per_key;
  int max_envs_per_key;
  int64_t max_bytes_per_key;
  /* Requests that arrive while their session is busy (a big step on the workers) wait in that
     session's queue, out of ZeroMQ and so out of reach of rcv_hwm's back-pressure: this caps the
     bytes of all the waiting requests of one client key (anonymous clients: one key), beyond
     which a request is answered LIMIT at once. <= 0: 4 x max_message_bytes. */
  int64_t max_queued_bytes;
  int64_t async_min_bytes;      /* ra_server_run steps batches whose step writes at least this
                                   many output bytes on the workers (cost, not env count);
                                   default 1 MiB */
  int drain_linger_ms;          /* after a stop, how long replies may take to leave; default 5000 */
  /* CURVE (docs/protocol.md section "Security"): the server's secret key (Z85, 40 chars); empty:
     no CURVE. allow_keys: client public keys (Z85) that may connect; none: CURVE refuses all.
     admin_key: the public key that sees every session and the server's counters in stats (other
     keys see their own: counted per allowed key). */
  char curve_secret[41];
  const char *const *allow_keys;
  int n_allow_keys;
  char admin_key[41];
  int spin_us;                  /* shared-memory sessions that ask for it get a doorbell, and the
                                   loop polls their segments this long after each request through
                                   it instead of sleeping (docs/local.md section 4); 0: off
                                   (default); at most RA_SPIN_MAX_US (protocol/spin.h) */
  uint64_t default_seed;        /* make without seed: env i gets default_seed + i; if
                                   has_default_seed is false, a seed is drawn from the clock */
  bool has_default_seed;
  ra_log_fn log;                /* NULL: silent */
  void *log_ud;
  int log_level;                /* RA_LOG_*: lines above it are not formatted */
} ra_server_opts_t;

/* Fills the defaults above. */
void ra_server_opts_default (ra_server_opts_t *opts);

/* Builds a server with its worker pool (no sockets yet). RA_ERR_NOMEM / RA_ERR_INTERNAL. */
ra_err_t ra_server_new (const ra_server_opts_t *opts, ra_server_t **out, ra_error_t *err);
/* Closes sockets (LINGER 0 unless ra_server_run closed them with its drain linger; terminating
   the context then waits for those replies to leave), destroys sessions, joins workers, terminates the ZeroMQ context.
   Accepts NULL; NULLs the pointer. */
void ra_server_destroy (ra_server_t **server_p);

/* Binds the ROUTER socket to endpoint (tcp://, ipc://; "tcp://127.0.0.1:*" picks a free port).
   RA_ERR_TRANSPORT with zmq's reason on failure. At most RA_SERVER_MAX_BINDS. */
ra_err_t ra_server_bind (ra_server_t *srv, const char *endpoint, ra_error_t *err);
/* The i-th bound endpoint as resolved by ZeroMQ (the real port for "*"), or NULL. */
const char *ra_server_endpoint (const ra_server_t *srv, int i);

/* Serves until ra_server_stop, then drains: finishes the steps in flight, answers every request
   ZeroMQ already received (for at most opts.drain_linger_ms), and closes the socket with that
   linger so the replies leave. Runs once per server (the socket is closed when it returns).
   RA_OK on a clean stop; RA_ERR_TRANSPORT if nothing is bound or the socket fails. */
ra_err_t ra_server_run (ra_server_t *srv);
/* ra_server_run on a thread of its own: pthread_create (&t, NULL, ra_server_thread, srv). The
   server comes as the argument, never through a global a later assignment could change under
   the thread (two threads on one server's socket abort inside libzmq). Returns NULL. */
void *ra_server_thread (void *srv);
/* Asks ra_server_run to return soon (within its poll timeout, at most 100 ms). Thread-safe and
   async-signal-safe. */
void ra_server_stop (ra_server_t *srv);

/* Answers one request into rep (always a complete reply: the result or an error). req must have
   been decoded by ra_msg_in_decode with is_request. Reply frames may borrow session buffers,
   valid until the next request on that session (the loop keeps them alive while sending). */
void ra_server_handle (ra_server_t *srv, const ra_msg_in_t *req, ra_msg_out_t *rep);
/* Decodes raw parts (frame 0 = header) and answers; a message that does not decode gets a
   BAD_REQUEST (or VERSION, LIMIT) reply carrying its id when the id was readable. */
void ra_server_handle_raw (ra_server_t *srv, const void *head, size_t head_len, int nframes,
                           const void *const *frames, const size_t *sizes, ra_msg_out_t *rep);

/* The client key of the requests handled next by ra_server_handle / ra_server_handle_raw (Z85,
   as CURVE authenticated it; NULL or "" for anonymous). ra_server_run sets it per message from
   the connection's CURVE key. Sessions belong to the key that made them. */
void ra_server_set_caller (ra_server_t *srv, const char *key);

/* Reclaims sessions idle for longer than the idle timeout, and shared-memory sessions whose
   client no longer holds its segment (docs/protocol.md section "Shared memory"); returns how
   many. Called by the loop on its timer; lookups also refuse expired handles. */
int ra_server_expire (ra_server_t *srv);

typedef struct {
  int64_t sessions, envs;       /* live now */
  int64_t steps;                /* env-steps served since start */
  int64_t requests, errors;     /* requests answered, error replies among them */
  double uptime_s;
} ra_server_counters_t;
void ra_server_counters (const ra_server_t *srv, ra_server_counters_t *out);

#endif
