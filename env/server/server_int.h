/*  env/server/server_int.h - the server object as shared by the files of env/server (internal). */
#ifndef RA_ENV_SERVER_SERVER_INT_H
#define RA_ENV_SERVER_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <zmq.h>

#include "env/server/pool.h"
#include "env/server/server.h"
#include "env/server/session.h"

/* Handles are random 63-bit values from a per-run keyed stream (handles.c); a table maps them to
   slots. Owner keys are Z85 CURVE public keys (40 characters); "" when CURVE is off. */
#define RA__OWNER_MAX 41

/* A request that arrived while its session was busy, kept whole until the session is free. */
typedef struct ra__queued ra__queued_t;
struct ra__queued {
  ra__queued_t *next;
  int64_t bytes;                /* all parts together, charged to the slot's qbytes */
  int np;
  zmq_msg_t parts[];            /* np parts as received (identity first) */
};

/* Activity counters: the server's, and one set per allowed client key (stats shows a key its own). */
typedef struct {
  int64_t steps;                /* env-steps served */
  int64_t requests, errors;     /* requests answered, error replies among them */
} ra__counts_t;

enum { RA__JOB_STEP = 1, RA__JOB_RESET = 2, RA__JOB_MAKE = 3, RA__JOB_SET_TASK = 4 };

typedef struct {
  ra_session_t *session;        /* NULL: free slot */
  int64_t handle;
  double last_used;             /* monotonic seconds */
  char owner[RA__OWNER_MAX];    /* the client key that made it; "" without CURVE */
  int64_t bytes;                /* admitted byte estimate charged to the budgets */
  int worlds_charged;           /* task worlds counted in bytes (make: 1; set_task adds) */
  int worlds_max;               /* most task worlds the sim keeps (its task slots) */
  int64_t world_bytes;          /* estimate of one task world */
  int64_t state_bytes;          /* estimate of the envs' own state (ra__estimate_t env_state x N) */

  /* A make being built (reserved: counted in the budgets, no session or handle yet). */
  bool reserved;
  ra_session_args_t mk_args;    /* borrows config_keep, task_keep and mk_task */
  ra_task_t mk_task;
  ra_session_t *mk_built;
  ra_err_t mk_rc;
  ra_error_t mk_err;
  /* A set_task being applied (the session is busy meanwhile). */
  bool st_grows;                /* it was charged one more world */
  void *st_tkv;                 /* the task's key/value list */
  ra_task_t st_task;            /* borrows st_tkv */
  uint8_t *st_mask;             /* owned; NULL: every env */
  ra_err_t st_rc;
  ra_error_t st_err;
  void *config_keep, *task_keep; /* key/value lists the sim was given, kept for its lifetime */

  /* A step or reset running on the pool (server loop only). While busy, requests naming this
     handle wait in the queue, in order. */
  bool busy;
  ra_pool_job_t job;
  int job_kind;                 /* RA__JOB_* */
  uint64_t job_id;              /* request id to answer */
  zmq_msg_t peer;               /* the requester's identity frame (valid while busy) */
  bool peer_delim;              /* it sent an empty delimiter */
  ra__queued_t *qhead, *qtail;
  int qlen;
  int64_t qbytes;               /* bytes of the queued requests (opts.max_queued_bytes) */

  /* Shared memory (shm.c): the session's segment, or NULL; mk_shm: the make asked for one;
     shm_reply: the request being answered named a segment slot (its reply carries offsets). */
  struct ra__shm *shm;
  bool mk_shm, shm_reply;
  /* The doorbell (spin.c): mk_spin: the make asked for one; spin_seq: the last request taken
     from it. */
  bool mk_spin;
  uint64_t spin_seq;
  bool mk_shm_lock;             /* the make said its client locks the segment (shm.c) */

  /* The step reply's header after "ok": true, packed at the session's first step and reused by
     every later step without final_obs (reply.c, ra__reply_step); NULL until then. Owned. */
  struct ra__step_tpl *step_tpl;

  /* The session's reply bytes ZeroMQ still holds (server.c, s_send), or NULL before its first
     big reply. Shared with those frames: one reference here, one per frame. stalled: they hold
     more than the session may leave unread, so its requests wait in the queue (as for busy)
     until its client has read enough (server.c, s_unstall). */
  struct ra__unread *unread;
  bool stalled;
} ra__slot_t;

/* Bytes of a session's big reply frames that ZeroMQ still holds (sent, not yet taken by the
   client's connection: it does not read), added by the loop and taken off by ZeroMQ's I/O thread
   as it lets them go, which may be after the session closed; hence its own reference count.
   While they exceed what the session was admitted for and one reply, its requests wait. */
typedef struct ra__unread {
  atomic_int refs;
  _Atomic int64_t bytes;
} ra__unread_t;
/* Drops one reference (thread-safe); frees at zero. Accepts NULL. */
void ra__unread_release (ra__unread_t *u);

struct ra_server {
  ra_server_opts_t opts;
  ra_pool_t *pool;
  ra__slot_t *slots;            /* opts.max_sessions */
  uint64_t handle_key[2];       /* per-run secret (getrandom) keying the handle stream */
  uint64_t handle_counter;      /* position in that stream */
  int32_t *htab;                /* open addressing, linear probing: slot index or -1 */
  uint32_t hmask;               /* table size - 1 (a power of two, at least 2 x max_sessions) */
  int64_t nbytes;               /* admitted byte estimates over all sessions */
  /* The CURVE key of the client whose request is being handled ("" without CURVE) and whether
     it is the admin key. */
  char caller[RA__OWNER_MAX];
  bool caller_admin;
  char (*allow)[RA__OWNER_MAX]; /* CURVE: client keys the ZAP handler admits, sorted */
  int nallow;
  ra__counts_t *allow_counts;   /* one per allowed key, in allow's order */
  ra__counts_t *caller_counts;  /* the caller's in allow_counts; NULL: anonymous or not allowed */
  void *zap;                    /* CURVE: the ZAP handler's socket (curve.c) */
  pthread_t zap_thread;
  bool zap_running;
  atomic_int zap_stop;
  int64_t nsessions, nenvs;
  ra__counts_t counts;
  double t_start;
  uint64_t seed_counter;        /* varies clock-drawn default seeds between makes */

  /* Set by a handler when every tensor frame of its reply points into these buffers, so the
     loop can send them without a copy (taking references); NULL otherwise. */
  ra_outbufs_t *reply_owner;
  /* The session of the request being handled (ops flagged RA__OP_SESSION). */
  ra__slot_t *cur;
  /* Set by ra_server_run: big steps and resets go to the pool and are answered when done. */
  bool async;
  /* Set by a handler that deferred its reply (slot->job is ready to submit). */
  ra__slot_t *deferred;
  int nbusy;                    /* slots with a job on the pool */
  int nstalled;                 /* slots whose requests wait for their client to read replies */

  /* Socket side (server.c). */
  void *zctx, *router;
  int nbinds;
  char endpoints[RA_SERVER_MAX_BINDS][256];
  atomic_int stop;              /* lock-free, so safe to set from a signal handler */
  ra_msg_in_t in;               /* the request being handled */

  /* Doorbells (spin.c): the slots whose segment has one, the loop's polling state, and the
     buffers of a request taken from a doorbell (decoded and answered apart from srv->in, since
     a ring request is being handled meanwhile). */
  ra__slot_t **spin_slots;      /* nspin of them, room for opts.max_sessions */
  int nspin;
  bool spin_polling;            /* the doorbells say the loop polls them */
  double spin_last;             /* when the loop last answered a doorbell request */
  char *spin_buf;               /* RA_SPIN_REQ_BYTES */
  ra_msg_in_t spin_in;
  ra_msg_out_t spin_rep;
};

double ra__now (void);
void ra__log (const ra_server_t *srv, int level, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
/* Handle table (handles.c). ra__handles_init seeds the stream from getrandom; RA_ERR_INTERNAL
   when the kernel has no randomness to give. ra__handle_new draws a fresh unused handle. */
ra_err_t ra__handles_init (ra_server_t *srv, ra_error_t *err);
void ra__handles_fini (ra_server_t *srv);
int64_t ra__handle_new (ra_server_t *srv);
void ra__handle_put (ra_server_t *srv, int64_t handle, int slot_i);
void ra__handle_del (ra_server_t *srv, int64_t handle);
/* A fresh 64-bit value from the per-run secret stream (handles.c), for names that must be
   unguessable (shared-memory segments). */
uint64_t ra__secret_u64 (ra_server_t *srv);
/* The slot index of a handle, or -1. */
int ra__handle_find (const ra_server_t *srv, int64_t handle);
/* CURVE (curve.c): makes srv->router a CURVE server and starts the ZAP handler when
   opts.curve_secret is set (nothing otherwise); ra__curve_stop joins the handler. */
ra_err_t ra__curve_start (ra_server_t *srv, ra_error_t *err);
void ra__curve_stop (ra_server_t *srv);
/* Looks up a live, unexpired session that belongs to the caller (touching its idle clock).
   NO_SUCH_HANDLE otherwise: a handle of another client key reads exactly like a missing one. */
ra_err_t ra__session_get (ra_server_t *srv, int64_t handle, ra__slot_t **out, ra_error_t *err);
/* Destroys the session in slot and frees it. */
void ra__session_drop (ra_server_t *srv, ra__slot_t *slot);
/* Gives back a make reservation that was never turned into a session (its build failed, or the
   server is going away): budgets, key/value lists, any half-built session. */
void ra__make_undo (ra_server_t *srv, ra__slot_t *slot);
/* A key/value list read from a msgpack map (kvlist.c): make's config or a task. It owns copies of
   its keys and string values; the sim borrows them. */
#define RA__KV_MAX 256
typedef struct {
  ra_kv_t kv[RA__KV_MAX];
  int n;
  char *strs[2 * RA__KV_MAX];   /* owned copies of keys and string values */
  int nstrs;
} ra__kvlist_t;
/* Frees a key/value list made by the handlers (config_keep, task_keep). Accepts NULL. */
void ra__kvlist_free (void *list);
/* Appends every leaf of map under prefix (dotted) to l (kvlist.c); what names the map in error
   messages ("config", "task.params"). */
ra_err_t ra__flatten (ra__kvlist_t *l, const msgpack_object *map, const char *prefix, int depth,
                      bool skip_task, const char *what, ra_error_t *err);
/* A task from {split, id} or {params: map} (kvlist.c). */
ra_err_t ra__parse_task (const msgpack_object *t, ra__kvlist_t *l, ra_task_t *out,
                         ra_error_t *err);
/* The worker pool's group of a client key (FNV-1a of it): the pool lets groups take turns, so
   one key's many sessions cannot queue ahead of another key's job (pool.c, s_enqueue). A
   collision only makes two keys share turns; anonymous clients are one group, as they are one
   client. Every job the server submits carries its session owner's group. */
uint64_t ra__key_group (const char *owner);
/* Runs the prepared work of srv->cur's session (fn over [0, N)) now, with the pool's fork-join,
   and returns false; or, when the loop is serving asynchronously and the batch is big enough,
   sets up the slot's job, sets srv->deferred and returns true: the reply comes from
   ra__reply_job when the job is done. */
bool ra__run_or_defer (ra_server_t *srv, ra_pool_fn fn, int kind, uint64_t id);
/* Packs the reply of a finished deferred job into rep (clears it first). */
void ra__reply_job (ra_server_t *srv, ra__slot_t *slot, ra_msg_out_t *rep);
/* True if the op (len bytes) is known and names a handle. */
bool ra__op_is_session (const char *op, int len);
/* Shared-memory data plane (shm.c, docs/protocol.md section "Shared memory"). */
typedef struct ra__shm ra__shm_t;
/* True when every endpoint the server is bound to is local (ipc://, loopback tcp). */
bool ra__shm_offered (const ra_server_t *srv);
/* Creates, sizes and maps the segment of slot's session (mode 0600, an unguessable name) and
   moves the session's output buffers into it. The segment's bytes beyond one output block
   (which the make's estimate counts) are charged to the session: LIMIT, and no segment, when
   they do not fit the byte budgets. */
ra_err_t ra__shm_new (ra_server_t *srv, ra__slot_t *slot, ra_error_t *err);
/* Unlinks (if still linked) and unmaps slot's segment; NULL-safe. Call after the session is
   destroyed. */
void ra__shm_drop (ra__slot_t *slot);
/* Packs the make reply's "shm" value: {name, bytes, action: [off0, off1]}. */
void ra__shm_pack_make (ra_msg_out_t *rep, const ra__slot_t *slot);
/* Reads the request's optional "shm" (segment slot 0 or 1) into *j (-1 when absent). A session
   without a segment, or a value other than 0 or 1, is BAD_REQUEST. The first request naming a
   slot unlinks the segment's name: the client has mapped it, and nobody else can open it now. */
ra_err_t ra__shm_request (ra__slot_t *slot, const ra_msg_in_t *req, int *j, ra_error_t *err);
/* The action tensor the client wrote into slot j: i32 (N) or (N, k). */
ra_tensor_t ra__shm_action (const ra__slot_t *slot, int j, int n, int k);
/* Turns rep's frames (which all point into the segment) into a trailing "shm": [offset, bytes,
   ...] entry (one pair per frame, in frame order) and drops the frames. The caller counted that
   entry in the reply's map. RA_ERR_INTERNAL if a frame lies outside the segment. */
ra_err_t ra__shm_reply (const ra__slot_t *slot, ra_msg_out_t *rep, ra_error_t *err);
/* Removes segments left by servers that are no longer running (name prefix + pid check). Returns
   how many. */
int ra__shm_sweep (void);

/* True when a step or reset of slot's session runs on the workers while the loop keeps serving
   (server.c). */
bool ra__session_async (const ra_server_t *srv, const ra__slot_t *slot);
/* LIMIT unless bytes more fit a session already holding have, the budget of its client key
   (owner; "" for anonymous: none) and the server's byte budgets (admit.c; docs/protocol.md
   section "Limits"). */
ra_err_t ra__admit (const ra_server_t *srv, const char *owner, double have, double bytes,
                    const char *what, ra_error_t *err);
/* What a make allocates, estimated from its config (admit.c, ra__estimate has the formula). */
typedef struct {
  double world;                 /* one task world: catalog and topics */
  double per_env;               /* one env: sim state and output rows, every copy of them */
  double env_state;             /* of which the env's own articles, budgets and boredom: what a
                                   reset fills besides the output rows */
  int worlds_max;               /* task slots the batch may fill */
} ra__estimate_t;
ra__estimate_t ra__estimate (const ra__kvlist_t *cfg, const ra_sim_class_t *cls, int64_t n,
                             ra_autoreset_t mode);
/* What the sessions of a client key hold now, makes still building included (admit.c). */
typedef struct {
  int64_t sessions, envs, bytes;
} ra__usage_t;
ra__usage_t ra__key_usage (const ra_server_t *srv, const char *owner);
/* True when the session's client said it locks its segment (make's shm_lock), has used it, and
   no process holds that lock any more: the client died or unmapped it (shm.c). */
bool ra__shm_client_gone (const ra__slot_t *slot);
/* The session's doorbell area (shm.c), or NULL. */
void *ra__shm_spin_area (const ra__slot_t *slot);
/* Doorbells (spin.c, docs/local.md section 4). ra__spin_init allocates the lists (at server
   start, when opts.spin_us > 0); ra__spin_fini frees them. */
ra_err_t ra__spin_init (ra_server_t *srv, ra_error_t *err);
void ra__spin_fini (ra_server_t *srv);
/* A segment with a doorbell was made for slot / is going: (un)lists it. */
void ra__spin_add (ra_server_t *srv, ra__slot_t *slot);
void ra__spin_remove (ra_server_t *srv, ra__slot_t *slot);
/* One turn of the loop: answers what the doorbells hold (one request each), then returns the
   poll timeout to use: 0 while spinning (spin_us since the last doorbell request), else
   timeout_ms after telling the doorbells the loop sleeps and rechecking them. */
long ra__spin_turn (ra_server_t *srv, long timeout_ms);
/* The loop is about to sleep: clears every doorbell's polling word, then rechecks them all and
   answers what they hold. True when there was nothing (sleep); false when it answered a request
   (the words say "polling" again: keep spinning). */
bool ra__spin_sleep (ra_server_t *srv);
/* The loop stops: clears every doorbell's polling word (their clients ring from now on). */
void ra__spin_stop (ra_server_t *srv);
/* The "ring" op (a session op): answers once request seq of the caller's doorbell is answered. */
ra_err_t ra__spin_ring (ra_server_t *srv, const ra_msg_in_t *req, ra_msg_out_t *rep, ra_error_t *err);

/* Counts steps, requests and errors into the server's counters and the caller's key's. */
void ra__count (ra_server_t *srv, int64_t steps, int requests, int errors);

/* Dispatches req through the command table (handlers.c). */
void ra__dispatch (ra_server_t *srv, const ra_msg_in_t *req, ra_msg_out_t *rep);

/* Reply packing (reply.c). A key/value map (numbers that are whole as integers); the task the sim
   says env env_index runs. */
void ra__pack_kv_map (ra_msg_out_t *rep, const ra_kv_t *kv, int n);
void ra__pack_task (ra_msg_out_t *rep, ra_session_t *s, int env_index);
/* The reply of slot's finished reset or step, from its session's output buffers (a step reply
   without final_obs reuses the session's header template, slot->step_tpl). */
ra_err_t ra__reply_reset (ra_server_t *srv, ra__slot_t *slot, uint64_t id, ra_msg_out_t *rep,
                          ra_error_t *err);
ra_err_t ra__reply_step (ra_server_t *srv, ra__slot_t *slot, uint64_t id, ra_msg_out_t *rep,
                         ra_error_t *err);

#endif
