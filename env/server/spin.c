/*  env/server/spin.c - the server's side of the shared-memory doorbells (protocol/spin.h,
    docs/local.md section 4).

    While spinning (for --spin-us after the last request that came through a doorbell) the loop
    does not sleep: every turn it answers one posted request per doorbell, then polls its ZeroMQ
    socket and the worker pool with timeout 0 (server.c), so one busy client never starves the
    others and the spin costs at most --spin-us of a core after the last request. When the time
    is up it clears every doorbell's polling word, rechecks every doorbell once (the recheck of
    docs/local.md 4.3: a request posted by a client that still saw polling == 1 is answered here
    rather than left until the client's own spin runs out), and sleeps in zmq_poll as before.
    A request taken from a doorbell goes through the command table like any other, so it gets the
    same answers and errors, and its reply goes back into the doorbell. The "ring" op is the
    ZeroMQ path: the client sends it when the loop was not polling or its own spin ran out.
    Owns: the list of slots with a doorbell and the buffers of a doorbell request.
    Threading: the server's loop thread only.                                                    */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "env/server/server_int.h"
#include "protocol/spin.h"

ra_err_t ra__spin_init (ra_server_t *srv, ra_error_t *err)
{
  if (srv->opts.spin_us <= 0)
    return RA_OK;
  srv->spin_slots = calloc ((size_t) srv->opts.max_sessions, sizeof *srv->spin_slots);
  srv->spin_buf = malloc (RA_SPIN_REQ_BYTES);
  if (!srv->spin_slots || !srv->spin_buf) {
    ra__spin_fini (srv);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory for the doorbell lists");
  }
  return RA_OK;
}

void ra__spin_fini (ra_server_t *srv)
{
  free (srv->spin_slots);
  free (srv->spin_buf);
  srv->spin_slots = NULL;
  srv->spin_buf = NULL;
  srv->nspin = 0;
}

void ra__spin_add (ra_server_t *srv, ra__slot_t *slot)
{
  if (!srv->spin_slots || srv->nspin >= srv->opts.max_sessions)
    return;   /* cannot happen: one entry per session; without one the client just rings */
  srv->spin_slots[srv->nspin++] = slot;
  ra_spin_set_polling (ra__shm_spin_area (slot), srv->spin_polling);
}

void ra__spin_remove (ra_server_t *srv, ra__slot_t *slot)
{
  for (int i = 0; i < srv->nspin; i++)
    if (srv->spin_slots[i] == slot) {
      srv->spin_slots[i] = srv->spin_slots[--srv->nspin];
      if (srv->nspin == 0)
        srv->spin_polling = false;   /* nothing to poll: the next doorbell starts "not polling" */
      return;
    }
}

/* Answers req (the request taken from slot's doorbell) into rep. Only reset and step, naming the
   doorbell's own session, come this way; anything else is refused. */
static void s_dispatch (ra_server_t *srv, ra__slot_t *slot, const ra_msg_in_t *req, ra_msg_out_t *rep)
{
  ra_error_t err;
  ra_error_clear (&err);
  int64_t handle = 0;
  bool op_ok = (req->op_len == 4 && memcmp (req->op, "step", 4) == 0)
               || (req->op_len == 5 && memcmp (req->op, "reset", 5) == 0);
  if (!op_ok || ra_get_int (req->root, "handle", &handle, NULL) != RA_OK || handle != slot->handle) {
    ra_error_set (&err, RA_ERR_BAD_REQUEST, -1,
                  "a doorbell carries only reset and step of its own session (handle %lld), got "
                  "op '%.*s'", (long long) slot->handle, req->op_len > 32 ? 32 : req->op_len, req->op);
    ra__count (srv, 0, 1, 1);
    ra_msg_out_clear (rep);
    ra_msg_out_error (rep, req->id, &err);
    return;
  }
  ra__dispatch (srv, req, rep);
  if (srv->deferred) {
    /* Not for a session with a doorbell (only inline sessions get one), but should a step be
       deferred anyway, it runs here and now: the loop answers deferred jobs over ZeroMQ only. */
    ra__slot_t *d = srv->deferred;
    srv->deferred = NULL;
    d->job.fn (d->job.ctx, 0, d->job.n);
    ra__reply_job (srv, d, rep);
  }
}

/* Takes and answers the request posted in slot's doorbell after the last one answered; false
   when there is none (or the session is busy: it waits, as a request over ZeroMQ would). */
static bool s_serve (ra_server_t *srv, ra__slot_t *slot)
{
  void *area = ra__shm_spin_area (slot);
  if (!area || slot->busy)
    return false;
  uint32_t len = 0;
  uint64_t seq = ra_spin_take (area, slot->spin_seq, srv->spin_buf, RA_SPIN_REQ_BYTES, &len);
  if (!seq)
    return false;
  slot->spin_seq = seq;
  ra_msg_out_t *rep = &srv->spin_rep;
  ra_msg_out_clear (rep);
  ra_server_set_caller (srv, slot->owner);
  ra_error_t err;
  ra_error_clear (&err);
  if (len == RA_SPIN_TORN) {
    ra_error_set (&err, RA_ERR_BAD_REQUEST, -1,
                  "doorbell request %llu was rewritten while the server copied it, %d times in a "
                  "row; post a request only once the last one is answered or given up "
                  "(docs/local.md 4.3)", (unsigned long long) seq, RA_SPIN_TAKE_TRIES);
    ra__count (srv, 0, 1, 1);
    ra_msg_out_error (rep, 0, &err);
  } else if (len > RA_SPIN_REQ_BYTES) {
    ra_error_set (&err, RA_ERR_BAD_REQUEST, -1, "doorbell request of %u bytes, at most %u", len,
                  RA_SPIN_REQ_BYTES);
    ra__count (srv, 0, 1, 1);
    ra_msg_out_error (rep, 0, &err);
  } else if (ra_msg_in_decode (&srv->spin_in, srv->spin_buf, len, 0, NULL, NULL, true, &err) != RA_OK) {
    if (err.code == RA_OK || err.code > RA_ERR_LAST_WIRE)
      ra_error_set (&err, RA_ERR_BAD_REQUEST, -1, "doorbell request header does not decode");
    ra__count (srv, 0, 1, 1);
    ra_msg_out_error (rep, srv->spin_in.has_id ? srv->spin_in.id : 0, &err);
  } else {
    s_dispatch (srv, slot, &srv->spin_in, rep);
  }
  srv->reply_owner = NULL;
  /* A session idle past its timeout but not yet swept is dropped by the lookup of its first
     request, this one included: its segment, and the doorbell area with it, are unmapped now.
     Nowhere to answer; the client's ring gets NO_SUCH_HANDLE, as for any expired handle. */
  if (ra__shm_spin_area (slot) != area)
    return true;
  if (rep->nframes > 0 || rep->head.size > RA_SPIN_REP_BYTES) {
    /* A reply that a doorbell cannot carry (frames, or a header above the reply area). */
    ra_error_set (&err, RA_ERR_INTERNAL, -1,
                  "the reply (%d frames, %zu header bytes) does not fit the doorbell's %u bytes",
                  rep->nframes, rep->head.size, RA_SPIN_REP_BYTES);
    uint64_t id = srv->spin_in.has_id ? srv->spin_in.id : 0;
    ra_msg_out_clear (rep);
    ra_msg_out_error (rep, id, &err);
  }
  ra_spin_answer (area, seq, rep->head.data, (uint32_t) rep->head.size);
  srv->spin_last = ra__now ();
  return true;
}

static void s_set_polling (ra_server_t *srv, bool on)
{
  srv->spin_polling = on;
  for (int i = 0; i < srv->nspin; i++)
    ra_spin_set_polling (ra__shm_spin_area (srv->spin_slots[i]), on);
}

/* One request from each doorbell, in list order; how many were answered. */
static int s_poll_all (ra_server_t *srv)
{
  int served = 0;
  for (int i = 0; i < srv->nspin; i++)
    served += s_serve (srv, srv->spin_slots[i]);
  return served;
}

void ra__spin_stop (ra_server_t *srv)
{
  if (srv->spin_polling)
    s_set_polling (srv, false);
}

bool ra__spin_sleep (ra_server_t *srv)
{
  /* Clear polling (seq_cst stores), then look once more (seq_cst loads). A client that posted
     before our clear may have seen polling == 1 and not rung: we see its request here. One that
     posts after it sees polling == 0 and rings. (docs/local.md 4.3) */
  s_set_polling (srv, false);
  if (s_poll_all (srv) > 0) {
    s_set_polling (srv, true);
    return false;
  }
  return true;
}

long ra__spin_turn (ra_server_t *srv, long timeout_ms)
{
  if (srv->nspin == 0)
    return timeout_ms;
  int served = s_poll_all (srv);
  double window = srv->opts.spin_us * 1e-6;
  if (ra__now () - srv->spin_last < window) {
    if (!srv->spin_polling)
      s_set_polling (srv, true);
    /* Nothing this turn: let another runnable thread (a client, on a machine with few cores)
       have the core before the next turn. */
    if (!served)
      sched_yield ();
    return 0;
  }
  if (srv->spin_polling && !ra__spin_sleep (srv))
    return 0;
  return timeout_ms;
}

ra_err_t ra__spin_ring (ra_server_t *srv, const ra_msg_in_t *req, ra_msg_out_t *rep, ra_error_t *err)
{
  ra__slot_t *slot = srv->cur;
  uint64_t id = req->id, seq;
  ra_err_t rc = ra_get_uint (req->root, "seq", &seq, err);
  if (rc != RA_OK)
    return rc;
  void *area = ra__shm_spin_area (slot);
  if (!area)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                         "ring names handle %lld, which has no doorbell (make with shm and spin "
                         "on a local server started with --spin-us)", (long long) slot->handle);
  uint64_t posted = ra_spin_posted (area);
  if (seq == 0 || seq > posted)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                         "ring names doorbell request %llu, but the last one posted is %llu",
                         (unsigned long long) seq, (unsigned long long) posted);
  if (slot->spin_seq < seq)
    s_serve (srv, slot);   /* its own request and reply buffers: req and rep stay intact */
  if (slot->spin_seq < seq)   /* a busy session: rings wait in its queue, so not from the loop */
    return ra_error_set (err, RA_ERR_INTERNAL, -1, "doorbell request %llu is not answered yet",
                         (unsigned long long) seq);
  srv->reply_owner = NULL;
  srv->deferred = NULL;
  ra_msg_out_reply (rep, id, 0);
  return RA_OK;
}
