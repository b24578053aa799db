/*  env/server/server.c - the server object and its ZeroMQ loop (docs/protocol.md;
    docs/architecture.md sections 8 and 9).

    One thread owns the ROUTER socket: it polls the socket and the worker pool's done-pipe with a
    timeout that ends at the next timer (idle-expiry sweep; at most 100 ms so a stop request is
    seen quickly), serves what is ready, and runs the timer.
    Batches under opts.async_min_envs (1024) are stepped inline, at most about a millisecond: the
    one-env round trip then costs little more than a bare ZeroMQ round trip, and mid-size batches
    pay no thread hand-off (measured: a hand-off costs more than it saves below ~1000 envs on a
    loaded 2-core machine). Bigger steps and resets are validated, then handed to the pool; the
    loop keeps serving other requests and answers the big one when the pool reports it done. Requests naming a handle whose job is still running wait in that
    session's queue and are served in order when it finishes, so one client's pipelined requests
    keep their order and a session is never touched by two threads.

    Envelope: [identity][optional empty delimiter][header][tensor frames...]. Reply frames that
    point into a session's output buffers are sent without a copy: each such zmq message holds a
    reference on the buffers, released by ZeroMQ when it is done with them; the session switches to
    a private copy if it must write buffers that are still referenced (session.h). Small frames
    are copied, which is cheaper than the bookkeeping.                                         */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "env/server/server_int.h"
#include "protocol/spin.h"

/* Frames at least this big travel without a copy. */
#define S_ZEROCOPY_MIN 16384
/* Most parts one incoming message may have: identity, delimiter, header, tensor frames. */
#define S_MAX_PARTS (3 + RA_MSG_MAX_FRAMES)
/* Messages served per poll wake-up before timers get a look. */
#define S_BURST 256
/* Requests that may wait for one busy session. */
#define S_QUEUE_MAX 256

double ra__now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

void ra__log (const ra_server_t *srv, int level, const char *fmt, ...)
{
  if (!srv->opts.log || level > srv->opts.log_level)
    return;
  char line[512];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (line, sizeof line, fmt, ap);
  va_end (ap);
  srv->opts.log (srv->opts.log_ud, level, line);
}

void ra_server_opts_default (ra_server_opts_t *o)
{
  memset (o, 0, sizeof *o);
  o->workers = 0;
  o->max_envs = 65536;
  o->async_min_envs = 1024;
  o->max_total_envs = 1 << 18;
  o->max_sessions = 1024;
  o->idle_timeout_s = 600.0;
  o->max_message_bytes = 64ll << 20;
  o->rcv_hwm = 64;
  o->async_min_bytes = 1ll << 20;
  o->drain_linger_ms = 5000;
  o->log_level = RA_LOG_INFO;
}

/* Orders Z85 client keys (srv->allow's rows, or the caller's key) for qsort and bsearch. */
static int s_key_cmp (const void *a, const void *b)
{
  return strcmp (a, b);
}

ra_err_t ra_server_new (const ra_server_opts_t *opts, ra_server_t **out, ra_error_t *err)
{
  *out = NULL;
  ra_server_t *srv = calloc (1, sizeof *srv);
  if (!srv)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory");
  srv->opts = *opts;
  ra_server_opts_t def;
  ra_server_opts_default (&def);
  if (srv->opts.max_envs < 1)
    srv->opts.max_envs = def.max_envs;
  if (srv->opts.max_total_envs < 1)
    srv->opts.max_total_envs = def.max_total_envs;
  if (srv->opts.max_envs > srv->opts.max_total_envs)
    srv->opts.max_envs = srv->opts.max_total_envs;
  if (srv->opts.async_min_envs < 1)
    srv->opts.async_min_envs = def.async_min_envs;
  if (srv->opts.max_sessions < 1)
    srv->opts.max_sessions = def.max_sessions;
  if (srv->opts.max_sessions > 65535)
    srv->opts.max_sessions = 65535;
  if (!(srv->opts.idle_timeout_s > 0))
    srv->opts.idle_timeout_s = def.idle_timeout_s;
  if (srv->opts.max_message_bytes < 1024)
    srv->opts.max_message_bytes = def.max_message_bytes;
  /* Room for a few requests of the biggest size to wait for a busy session. */
  if (srv->opts.max_queued_bytes <= 0)
    srv->opts.max_queued_bytes = 4 * srv->opts.max_message_bytes;
  if (srv->opts.rcv_hwm < 1)
    srv->opts.rcv_hwm = def.rcv_hwm;
  if (srv->opts.async_min_bytes < 1)
    srv->opts.async_min_bytes = def.async_min_bytes;
  if (srv->opts.drain_linger_ms < 0)
    srv->opts.drain_linger_ms = 0;
  if (srv->opts.spin_us < 0)
    srv->opts.spin_us = 0;
  if (srv->opts.spin_us > RA_SPIN_MAX_US)
    srv->opts.spin_us = RA_SPIN_MAX_US;
  /* Byte budgets default to shares of physical memory (docs/protocol.md section "Limits"). */
  long pages = sysconf (_SC_PHYS_PAGES), page = sysconf (_SC_PAGE_SIZE);
  int64_t phys = pages > 0 && page > 0 ? (int64_t) pages * page : (int64_t) 4 << 30;
  if (srv->opts.max_total_bytes <= 0)
    srv->opts.max_total_bytes = phys / 2;
  if (srv->opts.max_session_bytes <= 0)
    srv->opts.max_session_bytes = phys / 4;
  if (srv->opts.max_session_bytes > srv->opts.max_total_bytes)
    srv->opts.max_session_bytes = srv->opts.max_total_bytes;
  /* The allowed keys are copied: the caller's list need not outlive this call. */
  int nallow = srv->opts.n_allow_keys > 0 && opts->allow_keys ? srv->opts.n_allow_keys : 0;
  srv->opts.allow_keys = NULL;
  srv->opts.n_allow_keys = 0;
  if (nallow > 0) {
    srv->allow = calloc ((size_t) nallow, sizeof *srv->allow);
    if (!srv->allow) {
      free (srv);
      return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory");
    }
    for (int i = 0; i < nallow; i++)
      snprintf (srv->allow[i], sizeof srv->allow[i], "%s", opts->allow_keys[i] ? opts->allow_keys[i] : "");
    srv->nallow = nallow;
    /* Sorted, so that each message finds its key's counters by binary search. */
    qsort (srv->allow, (size_t) nallow, sizeof srv->allow[0], s_key_cmp);
    srv->allow_counts = calloc ((size_t) nallow, sizeof *srv->allow_counts);
    if (!srv->allow_counts) {
      free (srv->allow);
      free (srv);
      return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory");
    }
  }
  /* Per-key limits (docs/protocol.md section "Limits"): by default an even share among the
     allowed keys, but at least a quarter of the server's, so one key never takes it all once a
     second key is allowed, while a server with one key (or none, in tests) loses nothing. */
  int shares = nallow < 1 ? 1 : (nallow > 4 ? 4 : nallow);
  ra_server_opts_t *o = &srv->opts;
  if (o->max_sessions_per_key < 1)
    o->max_sessions_per_key = o->max_sessions / shares;
  if (o->max_envs_per_key < 1)
    o->max_envs_per_key = o->max_total_envs / shares;
  if (o->max_bytes_per_key <= 0)
    o->max_bytes_per_key = o->max_total_bytes / shares;
  o->max_sessions_per_key = o->max_sessions_per_key < 1 ? 1
                            : o->max_sessions_per_key > o->max_sessions ? o->max_sessions
                            : o->max_sessions_per_key;
  o->max_envs_per_key = o->max_envs_per_key < 1 ? 1
                        : o->max_envs_per_key > o->max_total_envs ? o->max_total_envs
                        : o->max_envs_per_key;
  if (o->max_bytes_per_key > o->max_total_bytes)
    o->max_bytes_per_key = o->max_total_bytes;
  int workers = srv->opts.workers;
  if (workers <= 0) {
    long ncpu = sysconf (_SC_NPROCESSORS_ONLN);
    workers = ncpu < 1 ? 1 : (ncpu > 64 ? 64 : (int) ncpu);
  }
  srv->opts.workers = workers;
  atomic_init (&srv->stop, 0);
  ra_msg_in_init (&srv->in);
  ra_msg_in_init (&srv->spin_in);
  ra_msg_out_init (&srv->spin_rep);
  srv->t_start = ra__now ();
  srv->slots = calloc ((size_t) srv->opts.max_sessions, sizeof *srv->slots);
  if (srv->slots && ra__handles_init (srv, err) != RA_OK) {
    ra_server_destroy (&srv);
    return err ? err->code : RA_ERR_INTERNAL;
  }
  if (!srv->slots || ra_pool_new (workers > 1 ? workers : 0, &srv->pool) != RA_OK) {
    ra_server_destroy (&srv);
    return ra_error_set (err, RA_ERR_INTERNAL, -1, "cannot start %d worker threads", workers);
  }
  if (ra__spin_init (srv, err) != RA_OK) {
    ra_server_destroy (&srv);
    return err ? err->code : RA_ERR_NOMEM;
  }
  /* Shared-memory segments of a server that died (killed, crashed) go now, unread. */
  int swept = ra__shm_sweep ();
  if (swept > 0)
    ra__log (srv, RA_LOG_INFO, "removed %d shared-memory segments left by servers no longer running",
             swept);
  *out = srv;
  return RA_OK;
}

/* Drops the requests waiting for slot's session, unanswered. */
static void s_free_queue (ra__slot_t *slot)
{
  while (slot->qhead) {
    ra__queued_t *q = slot->qhead;
    slot->qhead = q->next;
    for (int k = 0; k < q->np; k++)
      zmq_msg_close (&q->parts[k]);
    free (q);
  }
}

void ra_server_destroy (ra_server_t **server_p)
{
  ra_server_t *srv = *server_p;
  if (!srv)
    return;
  if (srv->router) {
    int zero = 0;
    zmq_setsockopt (srv->router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close (srv->router);
  }
  ra__curve_stop (srv);
  if (srv->zctx)
    zmq_ctx_term (srv->zctx);   /* releases the references of frames still queued */
  ra_pool_destroy (&srv->pool);   /* finishes jobs in flight (none after ra_server_run returns) */
  if (srv->slots)
    for (int i = 0; i < srv->opts.max_sessions; i++) {
      ra__slot_t *slot = &srv->slots[i];
      s_free_queue (slot);
      if (slot->busy)
        zmq_msg_close (&slot->peer);
      if (slot->reserved && !slot->session)
        ra__make_undo (srv, slot);
      free (slot->st_mask);
      ra__kvlist_free (slot->st_tkv);
      if (slot->session)
        ra__session_drop (srv, slot);
    }
  free (srv->slots);
  ra__spin_fini (srv);
  free (srv->allow);
  free (srv->allow_counts);
  ra__handles_fini (srv);
  ra_msg_in_fini (&srv->in);
  ra_msg_in_fini (&srv->spin_in);
  msgpack_unpacked_destroy (&srv->spin_in.unp);
  ra_msg_out_fini (&srv->spin_rep);
  free (srv);
  *server_p = NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Sessions                                                                                    */

ra_err_t ra__session_get (ra_server_t *srv, int64_t handle, ra__slot_t **out, ra_error_t *err)
{
  int slot_i = ra__handle_find (srv, handle);
  ra__slot_t *slot = slot_i >= 0 ? &srv->slots[slot_i] : NULL;
  /* Another key's session reads exactly like a missing one: no oracle for live handles. */
  if (!slot || !slot->session || strcmp (slot->owner, srv->caller) != 0)
    return ra_error_set (err, RA_ERR_NO_SUCH_HANDLE, -1,
                         "handle %lld does not exist (never made, closed, or expired)", (long long) handle);
  double now = ra__now ();
  if (!slot->busy && now - slot->last_used > srv->opts.idle_timeout_s) {
    ra__log (srv, RA_LOG_INFO, "handle %lld expired after %.1f s idle", (long long) handle,
             now - slot->last_used);
    ra__session_drop (srv, slot);
    return ra_error_set (err, RA_ERR_NO_SUCH_HANDLE, -1,
                         "handle %lld expired after more than %g s idle", (long long) handle,
                         srv->opts.idle_timeout_s);
  }
  slot->last_used = now;
  *out = slot;
  return RA_OK;
}

void ra__session_drop (ra_server_t *srv, ra__slot_t *slot)
{
  /* Requests still waiting (a stalled session dropped by a doorbell request's lookup) go too. */
  s_free_queue (slot);
  if (slot->stalled)
    srv->nstalled--;
  ra__handle_del (srv, slot->handle);
  srv->nbytes -= slot->bytes;
  srv->nsessions--;
  srv->nenvs -= ra_session_num_envs (slot->session);
  ra_session_destroy (&slot->session);
  ra__shm_drop (slot);
  ra__kvlist_free (slot->config_keep);
  ra__kvlist_free (slot->task_keep);
  free (slot->step_tpl);
  ra__unread_release (slot->unread);   /* its frames still in ZeroMQ keep theirs */
  memset (slot, 0, sizeof *slot);
}

void ra__unread_release (ra__unread_t *u)
{
  if (u && atomic_fetch_sub_explicit (&u->refs, 1, memory_order_acq_rel) == 1)
    free (u);
}

bool ra__session_async (const ra_server_t *srv, const ra__slot_t *slot)
{
  /* Cost, not env count, decides: the bytes a step writes track envs x candidates x dims, and
     the envs' own state what a reset fills (News: every env's ring of live articles, up to 4 MiB
     an env with 270 KB of observations; inline, one such reset stalled everyone for 0.6 s). */
  ra_session_t *s = slot->session;
  bool big = ra_session_num_envs (s) >= srv->opts.async_min_envs
             || (int64_t) ra_session_out (s)->nbytes + slot->state_bytes >= srv->opts.async_min_bytes;
  return big && ra_pool_workers (srv->pool) > 0;
}

uint64_t ra__key_group (const char *owner)
{
  uint64_t h = 1469598103934665603ull;   /* FNV-1a */
  for (const unsigned char *p = (const unsigned char *) owner; *p; p++)
    h = (h ^ *p) * 0x100000001b3ull;
  return h;
}

bool ra__run_or_defer (ra_server_t *srv, ra_pool_fn fn, int kind, uint64_t id)
{
  ra__slot_t *slot = srv->cur;
  ra_session_t *s = slot->session;
  int n = ra_session_num_envs (s);
  if (!srv->async) {   /* handlers called directly: fork-join */
    ra_pool_run (srv->pool, n, RA_SESSION_MIN_PARALLEL, fn, s);
    return false;
  }
  if (!ra__session_async (srv, slot)) {
    fn (s, 0, n);   /* the loop, a small batch: inline beats any hand-off */
    return false;
  }
  slot->job = (ra_pool_job_t) { .fn = fn, .ctx = s, .n = n, .user = slot,
                                .group = ra__key_group (slot->owner) };
  slot->job_kind = kind;
  slot->job_id = id;
  srv->deferred = slot;
  return true;
}

/* The slot of a live handle, without touching its idle clock; NULL if none. */
static ra__slot_t *s_peek (ra_server_t *srv, int64_t handle)
{
  int slot_i = ra__handle_find (srv, handle);
  if (slot_i < 0)
    return NULL;
  ra__slot_t *slot = &srv->slots[slot_i];
  return slot->session && strcmp (slot->owner, srv->caller) == 0 ? slot : NULL;
}

int ra_server_expire (ra_server_t *srv)
{
  double now = ra__now ();
  int n = 0;
  for (int i = 0; i < srv->opts.max_sessions; i++) {
    ra__slot_t *slot = &srv->slots[i];
    if (!slot->session || slot->busy || slot->qhead)
      continue;   /* busy, or requests wait for it: not idle */
    if (now - slot->last_used > srv->opts.idle_timeout_s)
      ra__log (srv, RA_LOG_INFO, "handle %lld expired after %.1f s idle", (long long) slot->handle,
               now - slot->last_used);
    else if (ra__shm_client_gone (slot))
      ra__log (srv, RA_LOG_INFO, "handle %lld closed: no process holds its shared-memory segment "
               "any more (its client died or dropped it)", (long long) slot->handle);
    else
      continue;
    ra__session_drop (srv, slot);
    n++;
  }
  return n;
}

void ra_server_counters (const ra_server_t *srv, ra_server_counters_t *out)
{
  out->sessions = srv->nsessions;
  out->envs = srv->nenvs;
  out->steps = srv->counts.steps;
  out->requests = srv->counts.requests;
  out->errors = srv->counts.errors;
  out->uptime_s = ra__now () - srv->t_start;
}

/* ------------------------------------------------------------------------------------------ */
/* Requests                                                                                    */

void ra_server_set_caller (ra_server_t *srv, const char *key)
{
  snprintf (srv->caller, sizeof srv->caller, "%s", key ? key : "");
  srv->caller_admin = srv->caller[0] && strcmp (srv->caller, srv->opts.admin_key) == 0;
  char (*k)[RA__OWNER_MAX] = srv->caller[0] && srv->nallow > 0
      ? bsearch (srv->caller, srv->allow, (size_t) srv->nallow, sizeof srv->allow[0], s_key_cmp) : NULL;
  srv->caller_counts = k ? &srv->allow_counts[k - srv->allow] : NULL;
}

void ra__count (ra_server_t *srv, int64_t steps, int requests, int errors)
{
  srv->counts.steps += steps;
  srv->counts.requests += requests;
  srv->counts.errors += errors;
  if (srv->caller_counts) {
    srv->caller_counts->steps += steps;
    srv->caller_counts->requests += requests;
    srv->caller_counts->errors += errors;
  }
}

void ra_server_handle (ra_server_t *srv, const ra_msg_in_t *req, ra_msg_out_t *rep)
{
  ra__dispatch (srv, req, rep);
}

/* An error reply for a message that was refused before dispatch. */
static void s_refuse (ra_server_t *srv, const ra_msg_in_t *in, ra_msg_out_t *rep, const ra_error_t *e)
{
  ra__count (srv, 0, 1, 1);
  srv->reply_owner = NULL;
  srv->cur = NULL;   /* no session's reply */
  ra__log (srv, RA_LOG_DEBUG, "refused a message: %s: %s", ra_err_code (e->code), e->message);
  ra_msg_out_error (rep, in->has_id ? in->id : 0, e);
}

void ra_server_handle_raw (ra_server_t *srv, const void *head, size_t head_len, int nframes,
                           const void *const *frames, const size_t *sizes, ra_msg_out_t *rep)
{
  ra_error_t err;
  ra_error_clear (&err);
  srv->reply_owner = NULL;
  ra_err_t rc = ra_msg_in_decode (&srv->in, head, head_len, nframes, frames, sizes, true, &err);
  if (rc != RA_OK) {
    if (err.code == RA_OK || err.code > RA_ERR_LAST_WIRE)
      ra_error_set (&err, RA_ERR_BAD_REQUEST, -1, "request header does not decode");
    s_refuse (srv, &srv->in, rep, &err);
    return;
  }
  ra__dispatch (srv, &srv->in, rep);
}

/* ------------------------------------------------------------------------------------------ */
/* Sockets                                                                                     */

static ra_err_t s_socket (ra_server_t *srv, ra_error_t *err)
{
  if (srv->router)
    return RA_OK;
  if (!srv->zctx && !(srv->zctx = zmq_ctx_new ()))
    return ra_error_set (err, RA_ERR_TRANSPORT, -1, "zmq_ctx_new: %s", zmq_strerror (zmq_errno ()));
  if (!(srv->router = zmq_socket (srv->zctx, ZMQ_ROUTER)))
    return ra_error_set (err, RA_ERR_TRANSPORT, -1, "zmq_socket: %s", zmq_strerror (zmq_errno ()));
  int64_t maxmsg = srv->opts.max_message_bytes;
  int zero = 0;
  int hwm = srv->opts.rcv_hwm;
  zmq_setsockopt (srv->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
  zmq_setsockopt (srv->router, ZMQ_RCVHWM, &hwm, sizeof hwm);
  zmq_setsockopt (srv->router, ZMQ_LINGER, &zero, sizeof zero);
  return ra__curve_start (srv, err);
}

/* True for endpoints only this machine can reach: ipc://, inproc://, tcp on a loopback address. */
static bool s_is_local (const char *ep)
{
  if (strncmp (ep, "ipc://", 6) == 0 || strncmp (ep, "inproc://", 9) == 0)
    return true;
  if (strncmp (ep, "tcp://", 6) != 0)
    return false;
  const char *host = ep + 6;
  return strncmp (host, "127.", 4) == 0 || strncmp (host, "localhost:", 10) == 0
         || strncmp (host, "[::1]:", 6) == 0 || strncmp (host, "lo:", 3) == 0;
}

ra_err_t ra_server_bind (ra_server_t *srv, const char *endpoint, ra_error_t *err)
{
  if (srv->nbinds >= RA_SERVER_MAX_BINDS)
    return ra_error_set (err, RA_ERR_LIMIT, -1, "at most %d endpoints", RA_SERVER_MAX_BINDS);
  ra_err_t rc = s_socket (srv, err);
  if (rc != RA_OK)
    return rc;
  if (zmq_bind (srv->router, endpoint) != 0)
    return ra_error_set (err, RA_ERR_TRANSPORT, -1, "cannot bind %s: %s", endpoint,
                         zmq_strerror (zmq_errno ()));
  size_t len = sizeof srv->endpoints[0];
  char *ep = srv->endpoints[srv->nbinds];
  if (zmq_getsockopt (srv->router, ZMQ_LAST_ENDPOINT, ep, &len) != 0) {
    snprintf (ep, sizeof srv->endpoints[0], "%s", endpoint);
  }
  srv->nbinds++;
  ra__log (srv, RA_LOG_INFO, "listening on %s%s", ep, srv->opts.curve_secret[0] ? " (CURVE)" : "");
  if (!srv->opts.curve_secret[0] && !s_is_local (endpoint))
    ra__log (srv, RA_LOG_WARN,
             "%s is reachable from other machines and CURVE is off: anyone who can connect can "
             "make sessions and read traffic; use --curve-secret and --allow-keys, or bind "
             "127.0.0.1", ep);
  return RA_OK;
}

const char *ra_server_endpoint (const ra_server_t *srv, int i)
{
  return i >= 0 && i < srv->nbinds ? srv->endpoints[i] : NULL;
}

void ra_server_stop (ra_server_t *srv)
{
  atomic_store (&srv->stop, 1);
}

/* A big reply frame counted in its session's unread bytes until ZeroMQ lets it go. */
typedef struct {
  ra_outbufs_t *owner;          /* the session buffers it points into; NULL: data is a copy */
  ra__unread_t *unread;         /* the session's (a reference) */
  size_t nbytes;
} s_tracked_t;

/* ZeroMQ's I/O thread is done with a tracked frame (sent, dropped, or the socket closed). */
static void s_release_tracked (void *data, void *hint)
{
  s_tracked_t *t = hint;
  atomic_fetch_sub_explicit (&t->unread->bytes, (int64_t) t->nbytes, memory_order_relaxed);
  ra__unread_release (t->unread);
  if (t->owner)
    ra_outbufs_release (t->owner);
  else
    free (data);
  free (t);
}

/* Hands a big frame of slot's session's reply to ZeroMQ counted in its unread bytes: without a
   copy when it points into reply_owner's buffers, else as a copy of its own. A client that does
   not read its replies leaves them with ZeroMQ (up to its send high-water mark, 1000 messages
   per connection, whatever their size); what they hold decides whether the session's next
   requests wait (s_must_wait; docs/protocol.md section "Limits"). False when it could not (out
   of memory): the caller sends it the plain way. */
static bool s_send_tracked (ra_server_t *srv, const ra_frame_t *f, int flags, ra__slot_t *slot)
{
  if (!slot->unread && (slot->unread = calloc (1, sizeof *slot->unread)))
    atomic_init (&slot->unread->refs, 1);
  ra__unread_t *unread = slot->unread;
  if (!unread)
    return false;
  s_tracked_t *t = malloc (sizeof *t);
  void *data = srv->reply_owner ? (void *) f->data : malloc (f->nbytes);
  if (!t || !data) {
    free (t);
    if (!srv->reply_owner)
      free (data);
    return false;
  }
  if (!srv->reply_owner)
    memcpy (data, f->data, f->nbytes);
  else
    ra_outbufs_retain (srv->reply_owner);
  *t = (s_tracked_t) { srv->reply_owner, unread, f->nbytes };
  atomic_fetch_add_explicit (&unread->refs, 1, memory_order_relaxed);
  atomic_fetch_add_explicit (&unread->bytes, (int64_t) f->nbytes, memory_order_relaxed);
  zmq_msg_t m;
  if (zmq_msg_init_data (&m, data, f->nbytes, s_release_tracked, t) != 0) {
    s_release_tracked (data, t);
    return false;
  }
  if (zmq_msg_send (&m, srv->router, flags) < 0)
    zmq_msg_close (&m);   /* releases it */
  return true;
}

/* Sends rep to the peer whose envelope is parts[0] (and an empty delimiter when delim); the big
   frames of a session's reply count in its slot's unread bytes (slot NULL: not a session's). */
static void s_send (ra_server_t *srv, zmq_msg_t *identity, bool delim, ra_msg_out_t *rep,
                    ra__slot_t *slot)
{
  void *sock = srv->router;
  if (zmq_msg_send (identity, sock, ZMQ_SNDMORE) < 0)
    return;
  if (delim)
    zmq_send (sock, "", 0, ZMQ_SNDMORE);
  int n = rep->nframes;
  if (zmq_send (sock, rep->head.data, rep->head.size, n ? ZMQ_SNDMORE : 0) < 0)
    return;
  for (int i = 0; i < n; i++) {
    int flags = i + 1 < n ? ZMQ_SNDMORE : 0;
    const ra_frame_t *f = &rep->frames[i];
    if (slot && slot->session && f->nbytes >= S_ZEROCOPY_MIN && s_send_tracked (srv, f, flags, slot))
      continue;
    zmq_send (sock, f->data, f->nbytes, flags);
  }
}

static void s_drain_queue (ra_server_t *srv, ra__slot_t *slot, ra_msg_out_t *rep);

/* True when slot's session leaves more reply bytes unread with ZeroMQ than it may: what it was
   admitted for (about three of its replies, section "Bytes") and one reply more. A client that
   pipelines steps and stops reading made the server hold up to ZeroMQ's high-water mark (1000
   replies per connection) whatever the byte budgets; now its requests wait instead. */
static bool s_unread_over (const ra__slot_t *slot)
{
  if (!slot->session || !slot->unread)
    return false;
  int64_t cap = slot->bytes + (int64_t) ra_session_block_bytes (slot->session);
  return atomic_load_explicit (&slot->unread->bytes, memory_order_relaxed) > cap;
}

/* Whether a request for slot must wait in its queue: a job of the session runs, requests wait
   already (order), or (while the loop serves) its client has too many replies unread. */
static bool s_must_wait (ra_server_t *srv, ra__slot_t *slot)
{
  if (slot->busy || slot->qhead)
    return true;
  if (!srv->async || !s_unread_over (slot))
    return false;
  if (!slot->stalled) {
    slot->stalled = true;
    srv->nstalled++;
  }
  return true;
}

/* Serves the waiting requests of stalled sessions whose clients have read enough meanwhile (the
   ZeroMQ I/O thread lets their frames go without telling the loop: it looks every turn). */
static void s_unstall (ra_server_t *srv, ra_msg_out_t *rep)
{
  for (int i = 0; i < srv->opts.max_sessions && srv->nstalled > 0; i++) {
    ra__slot_t *slot = &srv->slots[i];
    if (!slot->stalled || (srv->async && s_unread_over (slot)))
      continue;
    slot->stalled = false;
    srv->nstalled--;
    if (!slot->busy)
      s_drain_queue (srv, slot, rep);
  }
}

/* Bytes of client key owner's requests waiting for its busy sessions. A scan of the slots, done
   only when a request is about to wait (its session has a big job on the pool). */
static int64_t s_queued_bytes (const ra_server_t *srv, const char *owner)
{
  int64_t sum = 0;
  for (int i = 0; i < srv->opts.max_sessions; i++) {
    const ra__slot_t *slot = &srv->slots[i];
    if (slot->qbytes > 0 && strcmp (slot->owner, owner) == 0)
      sum += slot->qbytes;
  }
  return sum;
}

/* Answers, queues or defers one received message of np parts (identity first; total bytes in
   all, extra parts beyond S_MAX_PARTS already dropped). Consumes the parts. */
static void s_process (ra_server_t *srv, zmq_msg_t *parts, int np, int extra, size_t total,
                       ra_msg_out_t *rep)
{
  if (np < 2)
    goto done;
  bool delim = zmq_msg_size (&parts[1]) == 0 && np > 2;
  int h = delim ? 2 : 1;
  int nframes = np - h - 1 + extra;
  const void *head = zmq_msg_data (&parts[h]);
  size_t head_len = zmq_msg_size (&parts[h]);
  /* The CURVE key the ZAP handler authenticated for this connection (NULL without CURVE). */
  ra_server_set_caller (srv, zmq_msg_gets (&parts[h], "User-Id"));
  ra_error_t err;
  ra_error_clear (&err);
  srv->reply_owner = NULL;
  if (nframes > RA_MSG_MAX_FRAMES || (int64_t) total > srv->opts.max_message_bytes) {
    /* Read the id if possible, then refuse. */
    ra_error_t ignored;
    ra_msg_in_decode (&srv->in, head, head_len, 0, NULL, NULL, true, &ignored);
    if (nframes > RA_MSG_MAX_FRAMES)
      ra_error_set (&err, RA_ERR_LIMIT, -1, "message has %d tensor frames, at most %d", nframes,
                    RA_MSG_MAX_FRAMES);
    else
      ra_error_set (&err, RA_ERR_LIMIT, -1, "message has %zu bytes, at most %lld", total,
                    (long long) srv->opts.max_message_bytes);
    ra__log (srv, RA_LOG_WARN, "refused a message of %d frames and %zu bytes (request id %s): %s",
             nframes + 1, total, srv->in.has_id ? "readable" : "unreadable", err.message);
    s_refuse (srv, &srv->in, rep, &err);
    goto reply;
  }
  const void *frames[RA_MSG_MAX_FRAMES];
  size_t sizes[RA_MSG_MAX_FRAMES];
  for (int i = 0; i < nframes; i++) {
    frames[i] = zmq_msg_data (&parts[h + 1 + i]);
    sizes[i] = zmq_msg_size (&parts[h + 1 + i]);
  }
  if (ra_msg_in_decode (&srv->in, head, head_len, nframes, frames, sizes, true, &err) != RA_OK) {
    if (err.code == RA_OK || err.code > RA_ERR_LAST_WIRE)
      ra_error_set (&err, RA_ERR_BAD_REQUEST, -1, "request header does not decode");
    s_refuse (srv, &srv->in, rep, &err);
    goto reply;
  }
  if (ra__op_is_session (srv->in.op, srv->in.op_len)) {
    int64_t handle;
    ra__slot_t *slot;
    if (ra_get_int (srv->in.root, "handle", &handle, NULL) == RA_OK
        && (slot = s_peek (srv, handle)) && s_must_wait (srv, slot)) {
      /* A waiting request is held outside ZeroMQ, where rcv_hwm no longer holds its sender back:
         without a cap on bytes, one client could park up to S_QUEUE_MAX max-size messages per
         busy session. Refused at once, so it is answered before the requests ahead of it. */
      const double mib = 1048576.0;
      int64_t waiting = s_queued_bytes (srv, srv->caller);
      if (waiting + (int64_t) total > srv->opts.max_queued_bytes) {
        ra_error_set (&err, RA_ERR_LIMIT, -1,
                      "this client's requests waiting for busy sessions hold %.1f MiB and this "
                      "one has %.1f MiB more; at most %.1f MiB may wait (--max-queued-bytes): "
                      "read replies before sending more", (double) waiting / mib,
                      (double) total / mib, (double) srv->opts.max_queued_bytes / mib);
        s_refuse (srv, &srv->in, rep, &err);
        goto reply;
      }
      ra__queued_t *q = slot->qlen < S_QUEUE_MAX ? malloc (sizeof *q + (size_t) np * sizeof (zmq_msg_t)) : NULL;
      if (!q) {
        ra_error_set (&err, RA_ERR_LIMIT, -1, "%d requests already wait for handle %lld", slot->qlen,
                      (long long) handle);
        s_refuse (srv, &srv->in, rep, &err);
        goto reply;
      }
      q->next = NULL;
      q->bytes = (int64_t) total;
      q->np = np;
      for (int i = 0; i < np; i++) {
        zmq_msg_init (&q->parts[i]);
        zmq_msg_move (&q->parts[i], &parts[i]);
      }
      if (slot->qtail)
        slot->qtail->next = q;
      else
        slot->qhead = q;
      slot->qtail = q;
      slot->qlen++;
      slot->qbytes += q->bytes;
      goto done;
    }
  }
  ra__dispatch (srv, &srv->in, rep);
  if (srv->deferred) {
    ra__slot_t *slot = srv->deferred;
    srv->deferred = NULL;
    zmq_msg_init (&slot->peer);
    zmq_msg_move (&slot->peer, &parts[0]);
    slot->peer_delim = delim;
    slot->busy = true;
    srv->nbusy++;
    ra_pool_submit (srv->pool, &slot->job);
    goto done;
  }
reply:
  s_send (srv, &parts[0], delim, rep, srv->cur);
  srv->reply_owner = NULL;
done:
  for (int i = 0; i < np; i++)
    zmq_msg_close (&parts[i]);
}

/* Answers the jobs the pool finished, then what waited for their sessions. */
static void s_complete (ra_server_t *srv, ra_msg_out_t *rep)
{
  ra_pool_drain_fd (srv->pool);
  ra_pool_job_t *job;
  while ((job = ra_pool_take_done (srv->pool))) {
    ra__slot_t *slot = job->user;
    ra_server_set_caller (srv, slot->owner);   /* the reply is the owner's: its errors count there */
    ra__reply_job (srv, slot, rep);
    slot->busy = false;
    srv->nbusy--;
    slot->last_used = ra__now ();
    s_send (srv, &slot->peer, slot->peer_delim, rep, slot);
    zmq_msg_close (&slot->peer);
    srv->reply_owner = NULL;
    s_drain_queue (srv, slot, rep);
  }
}

/* Serves slot's waiting requests in order until it is busy again (or empty). */
static void s_drain_queue (ra_server_t *srv, ra__slot_t *slot, ra_msg_out_t *rep)
{
  ra__queued_t *q = slot->qhead;
  slot->qhead = slot->qtail = NULL;
  slot->qlen = 0;
  slot->qbytes = 0;
  while (q) {
    if (slot->busy) {
      /* Put the rest back, in front of anything queued meanwhile. */
      ra__queued_t *last = q;
      int count = 1;
      int64_t bytes = q->bytes;
      while (last->next) {
        last = last->next;
        count++;
        bytes += last->bytes;
      }
      last->next = slot->qhead;
      if (!slot->qhead)
        slot->qtail = last;
      slot->qhead = q;
      slot->qlen += count;
      slot->qbytes += bytes;
      return;
    }
    ra__queued_t *next = q->next;
    s_process (srv, q->parts, q->np, 0, (size_t) q->bytes, rep);
    free (q);
    q = next;
  }
}

/* Receives and answers one message if one is waiting; false when none was. Bytes are counted
   over all parts as they are read: once the message is over the cap, later parts are released as
   soon as they are read (only the envelope and header are kept, to answer LIMIT with the id).
   ZeroMQ hands over a multipart message only when its last part has arrived, so this bounds
   what the server keeps, not what ZeroMQ buffered meanwhile (docs/protocol.md section "Limits"). */
static bool s_serve_one (ra_server_t *srv, ra_msg_out_t *rep)
{
  zmq_msg_t parts[S_MAX_PARTS];
  int np = 0, extra = 0;
  size_t total = 0;
  for (bool more = true; more;) {
    zmq_msg_t scratch, *m = np < S_MAX_PARTS ? &parts[np] : &scratch;
    zmq_msg_init (m);
    if (zmq_msg_recv (m, srv->router, np + extra == 0 ? ZMQ_DONTWAIT : 0) < 0) {
      zmq_msg_close (m);
      if (np + extra == 0)
        return false;
      break;    /* cannot happen: the rest of a multipart message is always there */
    }
    total += zmq_msg_size (m);
    more = zmq_msg_more (m);
    bool over = (int64_t) total > srv->opts.max_message_bytes;
    if (np < S_MAX_PARTS && (np < 3 || !over))
      np++;
    else {
      extra++;
      zmq_msg_close (m);
    }
  }
  s_process (srv, parts, np, extra, total, rep);
  return true;
}

void *ra_server_thread (void *srv)
{
  ra_server_run (srv);
  return NULL;
}

ra_err_t ra_server_run (ra_server_t *srv)
{
  if (!srv->router || srv->nbinds == 0)
    return RA_ERR_TRANSPORT;
  ra_msg_out_t rep;
  ra_msg_out_init (&rep);
  double sweep_every = srv->opts.idle_timeout_s / 4;
  if (sweep_every > 5.0)
    sweep_every = 5.0;
  if (sweep_every < 0.001)
    sweep_every = 0.001;
  double next_sweep = ra__now () + sweep_every;
  ra_err_t rc = RA_OK;
  srv->async = true;
  while (!atomic_load (&srv->stop)) {
    double wait = next_sweep - ra__now ();
    long timeout_ms = wait <= 0 ? 0 : (long) ceil (wait * 1000);
    if (timeout_ms > 100)
      timeout_ms = 100;
    timeout_ms = ra__spin_turn (srv, timeout_ms);   /* 0 while the doorbells are polled */
    if (srv->nstalled > 0 && timeout_ms > 2)
      timeout_ms = 2;   /* nothing wakes the loop when a stalled session's client reads */
    zmq_pollitem_t items[2] = { { srv->router, 0, ZMQ_POLLIN, 0 },
                                { NULL, ra_pool_done_fd (srv->pool), ZMQ_POLLIN, 0 } };
    int prc = zmq_poll (items, 2, timeout_ms);
    if (prc < 0) {
      if (zmq_errno () == EINTR)
        continue;
      ra__log (srv, RA_LOG_ERROR, "zmq_poll: %s", zmq_strerror (zmq_errno ()));
      rc = RA_ERR_TRANSPORT;
      break;
    }
    if (items[1].revents & ZMQ_POLLIN)
      s_complete (srv, &rep);
    if (items[0].revents & ZMQ_POLLIN)
      for (int i = 0; i < S_BURST && !atomic_load (&srv->stop); i++)
        if (!s_serve_one (srv, &rep))
          break;
    if (srv->nstalled > 0)
      s_unstall (srv, &rep);
    if (ra__now () >= next_sweep) {
      ra_server_expire (srv);
      next_sweep = ra__now () + sweep_every;
    }
  }
  /* Drain: answer the jobs in flight (and what waits for them, now served inline), then every
     request already received by ZeroMQ, for at most drain_linger_ms; then close the socket
     with that linger so the replies leave before the process does. */
  srv->async = false;
  /* Doorbells: the loop polls them no more, so their clients ring (the drain below answers
     those rings, or they time out like any request to a stopped server). */
  ra__spin_stop (srv);
  while (srv->nbusy > 0) {
    zmq_pollitem_t item = { NULL, ra_pool_done_fd (srv->pool), ZMQ_POLLIN, 0 };
    zmq_poll (&item, 1, 100);
    s_complete (srv, &rep);
  }
  s_unstall (srv, &rep);   /* not serving asynchronously any more: what waited is answered now */
  int64_t drained = srv->counts.requests;
  double until = ra__now () + srv->opts.drain_linger_ms / 1000.0;
  if (rc == RA_OK)
    while (ra__now () < until && s_serve_one (srv, &rep)) {
    }
  ra_msg_out_fini (&rep);
  int linger = srv->opts.drain_linger_ms;
  zmq_setsockopt (srv->router, ZMQ_LINGER, &linger, sizeof linger);
  zmq_close (srv->router);
  srv->router = NULL;
  ra__log (srv, RA_LOG_INFO, "stopping: answered %lld waiting requests; replies get %d ms to leave",
           (long long) (srv->counts.requests - drained), linger);
  return rc;
}
