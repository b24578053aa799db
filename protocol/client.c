/*  protocol/client.c - the C client of protocol v1 (docs/protocol.md).

    Owns: one ZeroMQ context and DEALER socket per client, the parts of the last reply and its
    decoded header (results of a call borrow them until the next call), and a reusable request
    buffer for the op wrappers.
    Every wait goes through zmq_poll with the time left to the call's deadline, and sends use
    ZMQ_DONTWAIT, so no call blocks past its deadline. Replies whose id is not the outstanding
    request's are dropped: that is how a late reply to an abandoned (timed-out) request is
    recognised. Tensor frames are copied into ZeroMQ on send, so callers may free their buffers as
    soon as a call returns. A leading empty frame (a REQ-style delimiter) in a reply is tolerated.
    A session with a doorbell (protocol/spin.h) may skip ZeroMQ for its resets and steps: the wait
    is then a spin bounded by the client's spin_us, and past it the ordinary deadline of a "ring"
    round trip.
    A client belongs to one thread.                                                              */
#include "protocol/client.h"

#include "protocol/shm.h"
#include "protocol/spin.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

_Static_assert (sizeof (bool) == 1, "bool masks travel as one byte per element");

#define S_HWM 1000
#define S_MAX_PARTS (RA_MSG_MAX_FRAMES + 2)   /* header + frames + an optional empty delimiter */
#define S_MAX_KV_DEPTH 16
#define S_MAX_FIELD_DEPTH 4
#define S_CLIENT_NAME "recarena-c/0.1"

struct ra_client {
  void *ctx, *sock;
  int timeout_ms;
  uint64_t last_id;                       /* the id of the outstanding request */
  zmq_msg_t parts[S_MAX_PARTS];           /* the last reply's parts */
  int nparts;
  ra_msg_in_t reply;                      /* decoded header of the last reply */
  ra_msg_out_t req;                       /* request buffer of the op wrappers */
  char server[64], build[64];
  bool shm_local;                         /* the endpoint reaches only this machine */
  bool shm_offered;                       /* the server's hello lists "shm" */
  bool shm_off;                           /* ra_client_set_shm (c, false) */
  bool spin_offered;                      /* the server's hello lists "spin" */
  int spin_us;                            /* ra_client_set_spin, $RECARENA_SPIN_US; 0: off */
};

/* ---------------------------------------------------------------------------------------------
   Time and transport                                                                             */

static int64_t s_now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Milliseconds left until deadline, rounded up; 0 when it has passed. */
static long s_left_ms (int64_t deadline)
{
  int64_t left = deadline - s_now_ns ();
  return left <= 0 ? 0 : (long) ((left + 999999) / 1000000);
}

/* Waits for events on the socket until the deadline. Returns 1 ready, 0 timed out, -1 error. */
static int s_wait (ra_client_t *c, short events, int64_t deadline)
{
  for (;;) {
    long left = s_left_ms (deadline);
    if (left <= 0)
      return 0;
    zmq_pollitem_t item = { c->sock, 0, events, 0 };
    int rc = zmq_poll (&item, 1, left);
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc < 0)
      return -1;
    if (rc > 0 && (item.revents & events))
      return 1;
  }
}

static void s_release_parts (ra_client_t *c)
{
  ra_msg_in_fini (&c->reply);
  for (int i = 0; i < c->nparts; i++)
    zmq_msg_close (&c->parts[i]);
  c->nparts = 0;
}

static ra_err_t s_send (ra_client_t *c, const ra_msg_out_t *req, int64_t deadline, ra_error_t *err)
{
  static const char s_empty[1] = { 0 };
  int n = 1 + req->nframes;
  for (int i = 0; i < n; i++) {
    const void *data = i == 0 ? (const void *) req->head.data : req->frames[i - 1].data;
    size_t len = i == 0 ? req->head.size : req->frames[i - 1].nbytes;
    if (!data)
      data = s_empty;
    int flags = ZMQ_DONTWAIT | (i + 1 < n ? ZMQ_SNDMORE : 0);
    for (;;) {
      if (zmq_send (c->sock, data, len, flags) >= 0)
        break;
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN)
        return ra_error_set (err, RA_ERR_TRANSPORT, -1, "send failed: %s", zmq_strerror (errno));
      int w = s_wait (c, ZMQ_POLLOUT, deadline);
      if (w == 0)
        return ra_error_set (err, RA_ERR_TIMEOUT, -1,
                             "could not send the request within %d ms (server unreachable?)", c->timeout_ms);
      if (w < 0)
        return ra_error_set (err, RA_ERR_TRANSPORT, -1, "poll failed: %s", zmq_strerror (errno));
    }
  }
  return RA_OK;
}

/* Receives one whole message into c->parts (called when the socket is readable). Returns RA_OK,
   RA_ERR_TIMEOUT when nothing was there after all, RA_ERR_TRANSPORT, or RA_ERR_LIMIT when the
   message had too many parts (they are drained and dropped). */
static ra_err_t s_recv_parts (ra_client_t *c, ra_error_t *err)
{
  s_release_parts (c);
  bool more = true, overflow = false;
  while (more) {
    zmq_msg_t scratch, *part = c->nparts < S_MAX_PARTS ? &c->parts[c->nparts] : &scratch;
    zmq_msg_init (part);
    int flags = c->nparts == 0 && !overflow ? ZMQ_DONTWAIT : 0;   /* later parts are already here */
    if (zmq_msg_recv (part, c->sock, flags) < 0) {
      int e = errno;
      zmq_msg_close (part);
      if (e == EINTR && c->nparts > 0)
        continue;
      if ((e == EAGAIN || e == EINTR) && c->nparts == 0)
        return RA_ERR_TIMEOUT;
      s_release_parts (c);
      return ra_error_set (err, RA_ERR_TRANSPORT, -1, "receive failed: %s", zmq_strerror (e));
    }
    more = zmq_msg_more (part);
    if (part == &scratch) {
      overflow = true;
      zmq_msg_close (part);
    } else
      c->nparts++;
  }
  if (overflow) {
    s_release_parts (c);
    return ra_error_set (err, RA_ERR_LIMIT, -1, "reply has more than %d frames", S_MAX_PARTS);
  }
  return RA_OK;
}

/* Turns an error reply into its code and message. */
static ra_err_t s_reply_error (const ra_msg_in_t *r, ra_error_t *err)
{
  ra_error_t tmp;
  const msgpack_object *e = NULL;
  const char *code = NULL, *msg = "";
  int code_len = 0, msg_len = 0;
  int64_t index = -1;
  if (ra_get_map (r->root, "error", &e, &tmp) != RA_OK || ra_get_str (e, "code", &code, &code_len, &tmp) != RA_OK)
    return ra_error_set (err, RA_ERR_INTERNAL, -1, "error reply without a readable error.code: %s", tmp.message);
  if (ra_opt_str (e, "message", &msg, &msg_len, &tmp) != RA_OK)
    msg_len = 0;
  if (ra_opt_int (e, "env_index", &index, &tmp) != RA_OK || index < -1 || index > INT32_MAX)
    index = -1;
  ra_err_t rc;
  if (!ra_err_from_code (code, code_len, &rc) || rc == RA_OK || rc > RA_ERR_LAST_WIRE)
    return ra_error_set (err, RA_ERR_INTERNAL, (int) index, "server sent unknown error code '%.*s': %.*s",
                         code_len > 32 ? 32 : code_len, code, msg_len, msg);
  return ra_error_set (err, rc, (int) index, "%.*s", msg_len, msg);
}

uint64_t ra_client_next_id (ra_client_t *c)
{
  assert (c);
  return ++c->last_id;
}

ra_err_t ra_client_call (ra_client_t *c, ra_msg_out_t *req, const ra_msg_in_t **reply, ra_error_t *err)
{
  assert (c && req);
  ra_error_clear (err);
  if (reply)
    *reply = NULL;
  int64_t deadline = s_now_ns () + (int64_t) c->timeout_ms * 1000000;
  uint64_t want = c->last_id;
  s_release_parts (c);
  ra_err_t rc = s_send (c, req, deadline, err);
  if (rc != RA_OK)
    return rc;
  for (;;) {
    int w = s_wait (c, ZMQ_POLLIN, deadline);
    if (w == 0)
      return ra_error_set (err, RA_ERR_TIMEOUT, -1, "no reply to request %" PRIu64 " within %d ms", want,
                           c->timeout_ms);
    if (w < 0)
      return ra_error_set (err, RA_ERR_TRANSPORT, -1, "poll failed: %s", zmq_strerror (errno));
    rc = s_recv_parts (c, err);
    if (rc == RA_ERR_TIMEOUT || rc == RA_ERR_LIMIT)
      continue;       /* spurious wake-up, or an oversized message we cannot match: keep waiting */
    if (rc != RA_OK)
      return rc;
    int first = (c->nparts > 1 && zmq_msg_size (&c->parts[0]) == 0) ? 1 : 0;
    int nframes = c->nparts - first - 1;
    const void *frames[RA_MSG_MAX_FRAMES + 1];
    size_t sizes[RA_MSG_MAX_FRAMES + 1];
    for (int i = 0; i < nframes && i <= RA_MSG_MAX_FRAMES; i++) {
      frames[i] = zmq_msg_data (&c->parts[first + 1 + i]);
      sizes[i] = zmq_msg_size (&c->parts[first + 1 + i]);
    }
    ra_error_t derr;
    ra_error_clear (&derr);
    rc = ra_msg_in_decode (&c->reply, zmq_msg_data (&c->parts[first]), zmq_msg_size (&c->parts[first]),
                           nframes, frames, sizes, false, &derr);
    if (!c->reply.has_id || c->reply.id != want)
      continue;       /* a late reply to an abandoned request, or garbage: drop it */
    if (rc != RA_OK)
      return ra_error_set (err, rc, -1, "malformed reply: %s", derr.message);
    if (reply)
      *reply = &c->reply;
    return c->reply.ok ? RA_OK : s_reply_error (&c->reply, err);
  }
}

/* ---------------------------------------------------------------------------------------------
   Life cycle                                                                                     */

static void s_copy_str (char *dst, size_t cap, const char *s, int len)
{
  size_t n = len < 0 ? 0 : (size_t) len;
  if (n >= cap)
    n = cap - 1;
  if (n)
    memcpy (dst, s, n);
  dst[n] = '\0';
}

/* $RECARENA_SPIN_US: microseconds in [0, RA_SPIN_MAX_US]; anything else (or unset) is 0, off. */
static int s_env_spin_us (void)
{
  const char *v = getenv ("RECARENA_SPIN_US");
  if (!v || !*v)
    return 0;
  char *end;
  long x = strtol (v, &end, 10);
  return *end == '\0' && x > 0 && x <= RA_SPIN_MAX_US ? (int) x : 0;
}

static ra_err_t s_hello (ra_client_t *c, ra_error_t *err)
{
  ra_msg_out_t *m = &c->req;
  ra_msg_out_clear (m);
  ra_msg_out_request (m, ra_client_next_id (c), "hello", 2);
  ra_msg_out_str (m, "client");
  ra_msg_out_str (m, S_CLIENT_NAME);
  ra_msg_out_str (m, "versions");
  ra_msg_out_array (m, 1);
  ra_msg_out_int (m, RA_PROTOCOL_VERSION);
  const ra_msg_in_t *r;
  ra_err_t rc = ra_client_call (c, m, &r, err);
  if (rc != RA_OK)
    return rc;
  int64_t version;
  const char *s = "";
  int len = 0;
  if ((rc = ra_get_int (r->root, "version", &version, err)) != RA_OK)
    return rc;
  if (version != RA_PROTOCOL_VERSION)
    return ra_error_set (err, RA_ERR_VERSION, -1, "server speaks protocol version %" PRId64 ", this client speaks %d",
                         version, RA_PROTOCOL_VERSION);
  if ((rc = ra_opt_str (r->root, "server", &s, &len, err)) != RA_OK)
    return rc;
  s_copy_str (c->server, sizeof c->server, s, len);
  s = "";
  len = 0;
  if ((rc = ra_opt_str (r->root, "build", &s, &len, err)) != RA_OK)
    return rc;
  s_copy_str (c->build, sizeof c->build, s, len);
  const msgpack_object *caps = ra_map_get (r->root, "capabilities");
  if (caps && caps->type == MSGPACK_OBJECT_ARRAY)
    for (uint32_t i = 0; i < caps->via.array.size; i++) {
      c->shm_offered |= ra_obj_is_str (&caps->via.array.ptr[i], "shm");
      c->spin_offered |= ra_obj_is_str (&caps->via.array.ptr[i], "spin");
    }
  return RA_OK;
}

/* True if key is 40 Z85 characters that decode to 32 bytes. */
static bool s_z85_key (const char *key)
{
  uint8_t bin[32];
  bool ok = key && strlen (key) == 40 && zmq_z85_decode (bin, key) != NULL;
  memset (bin, 0, sizeof bin);
  return ok;
}

ra_err_t ra_client_new (const char *endpoint, int timeout_ms, ra_client_t **out, ra_error_t *err)
{
  return ra_client_new_curve (endpoint, timeout_ms, NULL, out, err);
}

ra_err_t ra_client_new_curve (const char *endpoint, int timeout_ms, const ra_client_curve_t *curve,
                              ra_client_t **out, ra_error_t *err)
{
  assert (endpoint && out);
  if (curve && (!s_z85_key (curve->server_key) || !s_z85_key (curve->public_key)
                || !s_z85_key (curve->secret_key))) {
    *out = NULL;
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "CURVE keys must be 40 Z85 characters each (server, public and secret key)");
  }
  *out = NULL;
  ra_err_t rc;
  ra_client_t *c = calloc (1, sizeof *c);
  if (!c)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory creating a client");
  ra_msg_in_init (&c->reply);
  ra_msg_out_init (&c->req);
  c->timeout_ms = timeout_ms > 0 ? timeout_ms : RA_CLIENT_DEFAULT_TIMEOUT_MS;
  c->shm_local = ra_shm_endpoint_local (endpoint);
  c->spin_us = s_env_spin_us ();
  int linger = 0, hwm = S_HWM;
  if (!(c->ctx = zmq_ctx_new ()) || !(c->sock = zmq_socket (c->ctx, ZMQ_DEALER)) ||
      zmq_setsockopt (c->sock, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
      zmq_setsockopt (c->sock, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
      zmq_setsockopt (c->sock, ZMQ_RCVHWM, &hwm, sizeof hwm) != 0) {
    rc = ra_error_set (err, RA_ERR_TRANSPORT, -1, "could not create a ZeroMQ socket: %s", zmq_strerror (errno));
    goto fail;
  }
  if (curve && (zmq_setsockopt (c->sock, ZMQ_CURVE_SERVERKEY, curve->server_key, 41) != 0
                || zmq_setsockopt (c->sock, ZMQ_CURVE_PUBLICKEY, curve->public_key, 41) != 0
                || zmq_setsockopt (c->sock, ZMQ_CURVE_SECRETKEY, curve->secret_key, 41) != 0)) {
    rc = ra_error_set (err, RA_ERR_TRANSPORT, -1, "could not set the CURVE keys: %s", zmq_strerror (errno));
    goto fail;
  }
  if (zmq_connect (c->sock, endpoint) != 0) {
    rc = ra_error_set (err, RA_ERR_TRANSPORT, -1, "could not connect to '%s': %s", endpoint,
                       zmq_strerror (errno));
    goto fail;
  }
  if ((rc = s_hello (c, err)) != RA_OK)
    goto fail;
  *out = c;
  return RA_OK;
fail:
  ra_client_destroy (&c);
  return rc;
}

void ra_client_destroy (ra_client_t **client_p)
{
  if (!client_p || !*client_p)
    return;
  ra_client_t *c = *client_p;
  s_release_parts (c);
  ra_msg_in_fini (&c->reply);
  msgpack_unpacked_destroy (&c->reply.unp);
  ra_msg_out_fini (&c->req);
  if (c->sock)
    zmq_close (c->sock);
  if (c->ctx)
    zmq_ctx_term (c->ctx);
  free (c);
  *client_p = NULL;
}

void ra_client_set_timeout (ra_client_t *c, int timeout_ms)
{
  assert (c);
  c->timeout_ms = timeout_ms > 0 ? timeout_ms : RA_CLIENT_DEFAULT_TIMEOUT_MS;
}

void ra_client_set_shm (ra_client_t *c, bool on)
{
  assert (c);
  c->shm_off = !on;
}

bool ra_client_shm_available (const ra_client_t *c)
{
  return c->shm_local && c->shm_offered && !c->shm_off;
}

void ra_client_set_spin (ra_client_t *c, int spin_us)
{
  assert (c);
  c->spin_us = spin_us < 0 ? 0 : (spin_us > RA_SPIN_MAX_US ? RA_SPIN_MAX_US : spin_us);
}

bool ra_client_spin_available (const ra_client_t *c)
{
  return ra_client_shm_available (c) && c->spin_offered && c->spin_us > 0;
}

const char *ra_client_server_name (const ra_client_t *c) { assert (c); return c->server; }
const char *ra_client_server_build (const ra_client_t *c) { assert (c); return c->build; }

/* ---------------------------------------------------------------------------------------------
   Reply fields                                                                                   */

int ra_fields_find (const ra_fields_t *f, const char *name)
{
  assert (f && name);
  for (int i = 0; i < f->n; i++)
    if (strcmp (f->names[i], name) == 0)
      return i;
  return -1;
}

static bool s_is_tensor_ref (const msgpack_object *o)
{
  const msgpack_object *d = ra_map_get (o, "dtype"), *s = ra_map_get (o, "shape"), *f = ra_map_get (o, "frame");
  return d && d->type == MSGPACK_OBJECT_STR && s && s->type == MSGPACK_OBJECT_ARRAY && f &&
         (f->type == MSGPACK_OBJECT_POSITIVE_INTEGER || f->type == MSGPACK_OBJECT_NEGATIVE_INTEGER);
}

static ra_err_t s_fields_add_one (const ra_msg_in_t *r, ra_fields_t *f, const char *name,
                                  const msgpack_object *ref, ra_error_t *err)
{
  if (f->n >= RA_CLIENT_MAX_FIELDS)
    return ra_error_set (err, RA_ERR_LIMIT, -1, "reply has more than %d tensors in one map (at '%s')",
                         RA_CLIENT_MAX_FIELDS, name);
  ra_err_t rc = ra_msg_in_tensor (r, ref, name, &f->tensors[f->n], err);
  if (rc != RA_OK)
    return rc;
  s_copy_str (f->names[f->n], sizeof f->names[0], name, (int) strlen (name));
  f->n++;
  return RA_OK;
}

/* Adds every tensor of map o to f; nested maps are flattened with dots ("final_obs.user"), other
   values (scalars, strings, arrays) are skipped. */
static ra_err_t s_fields_add_map (const ra_msg_in_t *r, ra_fields_t *f, const char *prefix,
                                  const msgpack_object *o, int depth, ra_error_t *err)
{
  for (uint32_t i = 0; i < o->via.map.size; i++) {
    const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
    if (k->type != MSGPACK_OBJECT_STR || v->type != MSGPACK_OBJECT_MAP)
      continue;
    /* prefix "." key, built by hand: this runs for every field of every step reply. */
    char name[sizeof f->names[0]];
    size_t plen = strlen (prefix), klen = k->via.str.size, n = plen + (plen ? 1 : 0) + klen;
    if (n >= sizeof name || memchr (k->via.str.ptr, 0, klen))
      return ra_error_set (err, RA_ERR_LIMIT, -1,
                           "reply field name '%s%s%.*s...' is longer than %zu bytes or not text", prefix,
                           plen ? "." : "", (int) (klen > 32 ? 32 : klen), k->via.str.ptr, sizeof name - 1);
    memcpy (name, prefix, plen);
    if (plen)
      name[plen++] = '.';
    memcpy (name + plen, k->via.str.ptr, klen);
    name[n] = '\0';
    ra_err_t rc;
    if (s_is_tensor_ref (v))
      rc = s_fields_add_one (r, f, name, v, err);
    else if (depth < S_MAX_FIELD_DEPTH)
      rc = s_fields_add_map (r, f, name, v, depth + 1, err);
    else
      rc = RA_OK;
    if (rc != RA_OK)
      return rc;
  }
  return RA_OK;
}

static ra_err_t s_parse_obs_info (const ra_client_t *c, const ra_client_env_t *env, ra_step_result_t *out,
                                  ra_error_t *err)
{
  const ra_msg_in_t *r = &c->reply;
  const msgpack_object *obs = ra_map_get (r->root, "obs"), *info = NULL;
  ra_err_t rc;
  if (!obs)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "malformed reply: missing field 'obs'");
  bool bare = env->observation_space ? env->observation_space->type != RA_SPACE_DICT : s_is_tensor_ref (obs);
  if (bare)
    rc = s_fields_add_one (r, &out->obs, "obs", obs, err);
  else if (obs->type != MSGPACK_OBJECT_MAP)
    rc = ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "malformed reply: field 'obs' must be a map, got %s",
                       ra_obj_type_name (obs));
  else
    rc = s_fields_add_map (r, &out->obs, "", obs, 1, err);
  if (rc != RA_OK)
    return rc;
  if ((rc = ra_opt_map (r->root, "info", &info, err)) != RA_OK)
    return rc;
  if (info && (rc = s_fields_add_map (r, &out->info, "", info, 1, err)) != RA_OK)
    return rc;
  return RA_OK;
}

/* ---------------------------------------------------------------------------------------------
   Config trees: dotted keys become nested maps                                                   */

static size_t s_seg_len (const char *s)
{
  const char *dot = strchr (s, '.');
  return dot ? (size_t) (dot - s) : strlen (s);
}

static void s_pack_kv_value (ra_msg_out_t *m, const ra_kv_t *kv)
{
  switch (kv->type) {
  case RA_KV_BOOL: ra_msg_out_bool (m, kv->num != 0); return;
  case RA_KV_STR: ra_msg_out_str (m, kv->str ? kv->str : ""); return;
  case RA_KV_NUM:
    if (isfinite (kv->num) && kv->num == floor (kv->num) && fabs (kv->num) < 9.0e15)
      ra_msg_out_int (m, (int64_t) kv->num);
    else
      ra_msg_out_double (m, kv->num);
    return;
  }
}

/* Packs entries idx[0..n) of kv (keys sharing their first plen bytes) as one map keyed by the
   next dotted segment, in order of first appearance. */
static ra_err_t s_pack_kv_tree (ra_msg_out_t *m, const ra_kv_t *kv, const int *idx, int n, size_t plen,
                                int depth, ra_error_t *err)
{
  if (depth > S_MAX_KV_DEPTH)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "config key '%s' is nested deeper than %d levels",
                         kv[idx[0]].key, S_MAX_KV_DEPTH);
  int *group = malloc (sizeof (int) * (size_t) n + 1);
  if (!group)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory packing a config");
  ra_err_t rc = RA_OK;
  int nseg = 0;
  for (int i = 0; i < n; i++) {
    const char *si = kv[idx[i]].key + plen;
    size_t li = s_seg_len (si);
    if (li == 0) {
      rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "config key '%s' has an empty part between dots",
                         kv[idx[i]].key);
      goto done;
    }
    bool seen = false;
    for (int j = 0; j < i && !seen; j++) {
      const char *sj = kv[idx[j]].key + plen;
      seen = s_seg_len (sj) == li && memcmp (si, sj, li) == 0;
    }
    nseg += !seen;
  }
  ra_msg_out_map (m, (uint32_t) nseg);
  for (int i = 0; i < n; i++) {
    const char *si = kv[idx[i]].key + plen;
    size_t li = s_seg_len (si);
    bool seen = false;
    for (int j = 0; j < i && !seen; j++) {
      const char *sj = kv[idx[j]].key + plen;
      seen = s_seg_len (sj) == li && memcmp (si, sj, li) == 0;
    }
    if (seen)
      continue;
    int ng = 0, leaf = -1;
    for (int j = i; j < n; j++) {
      const char *sj = kv[idx[j]].key + plen;
      if (s_seg_len (sj) == li && memcmp (si, sj, li) == 0) {
        group[ng++] = idx[j];
        if (sj[li] == '\0')
          leaf = idx[j];
      }
    }
    if (leaf >= 0 && ng > 1) {
      rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "config key '%.*s' is given twice or both as a value and a map",
                         (int) (plen + li), kv[leaf].key);
      goto done;
    }
    msgpack_pack_str (&m->pk, li);
    msgpack_pack_str_body (&m->pk, si, li);
    if (leaf >= 0)
      s_pack_kv_value (m, &kv[leaf]);
    else if ((rc = s_pack_kv_tree (m, kv, group, ng, plen + li + 1, depth + 1, err)) != RA_OK)
      goto done;
  }
done:
  free (group);
  return rc;
}

static ra_err_t s_pack_kv (ra_msg_out_t *m, const ra_kv_t *kv, int n, ra_error_t *err)
{
  assert (n >= 0 && (n == 0 || kv));
  int *idx = malloc (sizeof (int) * (size_t) n + 1);
  if (!idx)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory packing a config");
  for (int i = 0; i < n; i++) {
    assert (kv[i].key);
    idx[i] = i;
  }
  ra_err_t rc = s_pack_kv_tree (m, kv, idx, n, 0, 1, err);
  free (idx);
  return rc;
}

/* ---------------------------------------------------------------------------------------------
   Op wrappers                                                                                    */

static ra_msg_out_t *s_begin (ra_client_t *c, const char *op, uint32_t n_more)
{
  ra_msg_out_clear (&c->req);
  ra_msg_out_request (&c->req, ra_client_next_id (c), op, n_more);
  return &c->req;
}

static ra_err_t s_bad_reply (ra_err_t rc, ra_error_t *err)
{
  if (rc != RA_OK && err && strncmp (err->message, "malformed reply", 15) != 0) {
    char tmp[RA_ERROR_MESSAGE_MAX];
    memcpy (tmp, err->message, sizeof tmp);
    ra_error_set (err, rc, -1, "malformed reply: %s", tmp);
  }
  return rc;
}

ra_err_t ra_client_ping (ra_client_t *c, ra_error_t *err)
{
  assert (c);
  return ra_client_call (c, s_begin (c, "ping", 0), NULL, err);
}

ra_err_t ra_client_stats (ra_client_t *c, ra_server_stats_t *out, ra_error_t *err)
{
  assert (c && out);
  const ra_msg_in_t *r;
  ra_err_t rc = ra_client_call (c, s_begin (c, "stats", 0), &r, err);
  if (rc != RA_OK)
    return rc;
  memset (out, 0, sizeof *out);
  if ((rc = ra_get_int (r->root, "sessions", &out->sessions, err)) != RA_OK ||
      (rc = ra_get_int (r->root, "envs", &out->envs, err)) != RA_OK ||
      (rc = ra_get_int (r->root, "steps", &out->steps, err)) != RA_OK ||
      (rc = ra_get_int (r->root, "errors", &out->errors, err)) != RA_OK ||
      (rc = ra_get_double (r->root, "uptime_s", &out->uptime_s, err)) != RA_OK)
    return s_bad_reply (rc, err);
  return RA_OK;
}

void ra_client_env_fini (ra_client_env_t *env)
{
  if (!env)
    return;
  ra_space_destroy (&env->observation_space);
  ra_space_destroy (&env->action_space);
  ra_shm_map_close (&env->shm);
}

ra_err_t ra_client_make (ra_client_t *c, const char *env_id, int num_envs, const ra_make_opts_t *opts,
                         ra_client_env_t *out, ra_error_t *err)
{
  assert (c && env_id && out && num_envs > 0);
  memset (out, 0, sizeof *out);
  ra_make_opts_t none = { 0 };
  if (!opts)
    opts = &none;
  bool has_config = opts->config && opts->n_config > 0;
  bool want_shm = ra_client_shm_available (c), want_spin = ra_client_spin_available (c);
  uint32_t n_more = 2 + opts->has_seed + has_config + (opts->autoreset != NULL) + (opts->max_episode_steps > 0)
                    + 2 * want_shm + want_spin;
  ra_msg_out_t *m = s_begin (c, "make", n_more);
  if (want_shm) {
    ra_msg_out_str (m, "shm");
    ra_msg_out_bool (m, true);
    ra_msg_out_str (m, "shm_lock");   /* ra_shm_map_open locks the segment */
    ra_msg_out_bool (m, true);
  }
  if (want_spin) {
    ra_msg_out_str (m, "spin");
    ra_msg_out_bool (m, true);
  }
  ra_msg_out_str (m, "env");
  ra_msg_out_str (m, env_id);
  ra_msg_out_str (m, "num_envs");
  ra_msg_out_int (m, num_envs);
  if (opts->has_seed) {
    ra_msg_out_str (m, "seed");
    ra_msg_out_uint (m, opts->seed);
  }
  ra_err_t rc;
  if (has_config) {
    ra_msg_out_str (m, "config");
    if ((rc = s_pack_kv (m, opts->config, opts->n_config, err)) != RA_OK)
      return rc;
  }
  if (opts->autoreset) {
    ra_msg_out_str (m, "autoreset");
    ra_msg_out_str (m, opts->autoreset);
  }
  if (opts->max_episode_steps > 0) {
    ra_msg_out_str (m, "max_episode_steps");
    ra_msg_out_int (m, opts->max_episode_steps);
  }
  const ra_msg_in_t *r;
  if ((rc = ra_client_call (c, m, &r, err)) != RA_OK)
    return rc;
  out->num_envs = num_envs;
  out->reward_range[0] = -INFINITY;
  out->reward_range[1] = INFINITY;
  const msgpack_object *o;
  const char *s = NULL;
  int len = 0;
  int64_t steps = 0;
  if ((rc = ra_get_int (r->root, "handle", &out->handle, err)) != RA_OK ||
      (rc = ra_space_decode (r, ra_map_get (r->root, "observation_space"), &out->observation_space, err)) != RA_OK ||
      (rc = ra_space_decode (r, ra_map_get (r->root, "action_space"), &out->action_space, err)) != RA_OK ||
      (rc = ra_opt_int (r->root, "max_episode_steps", &steps, err)) != RA_OK ||
      (rc = ra_opt_str (r->root, "autoreset", &s, &len, err)) != RA_OK)
    goto fail;
  out->max_episode_steps = steps > 0 && steps <= INT32_MAX ? (int) steps : 0;
  s_copy_str (out->autoreset, sizeof out->autoreset, s ? s : "next_step", s ? len : 9);
  if ((o = ra_map_get (r->root, "reward_range"))) {
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 2) {
      rc = ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "field 'reward_range' must be an array [lo, hi]");
      goto fail;
    }
    for (int i = 0; i < 2; i++) {
      const msgpack_object *v = &o->via.array.ptr[i];
      if (v->type == MSGPACK_OBJECT_FLOAT32 || v->type == MSGPACK_OBJECT_FLOAT64)
        out->reward_range[i] = v->via.f64;
      else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        out->reward_range[i] = (double) v->via.u64;
      else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        out->reward_range[i] = (double) v->via.i64;
    }
  }
  if ((o = ra_map_get (r->root, "shm")) && o->type == MSGPACK_OBJECT_MAP) {
    const ra_space_t *as = out->action_space;
    int k = as && as->type == RA_SPACE_MULTI_DISCRETE && as->ndim == 1 ? (int) as->shape[0] : 1;
    /* A segment that cannot be mapped here leaves the session on frames, which it still serves. */
    ra_error_t serr;
    if (ra_shm_map_open (o, num_envs, k, &out->shm, &serr) != RA_OK)
      out->shm = NULL;
  }
  return RA_OK;
fail:
  ra_client_env_fini (out);
  return s_bad_reply (rc, err);
}

/* One round trip of a reset or step of env: through the session's doorbell when it has one and
   the request fits (docs/local.md section 4), else ra_client_call. The doorbell path: post the
   request; if the server polls the doorbell, spin up to spin_us for the reply; if it does not,
   or the spin ran out, send "ring" over ZeroMQ, which the server answers (within the usual
   deadline) once the request's reply is in the doorbell. Either way the reply is decoded from
   the doorbell's reply area, which stays intact until this session's next request. */
static ra_err_t s_call_env (ra_client_t *c, const ra_client_env_t *env, ra_msg_out_t *req, ra_error_t *err)
{
  void *area = env->shm && c->spin_us > 0 ? ra_shm_map_spin (env->shm) : NULL;
  if (!area || req->nframes > 0 || req->head.size > RA_SPIN_REQ_BYTES)
    return ra_client_call (c, req, NULL, err);
  ra_error_clear (err);
  s_release_parts (c);
  int64_t deadline = s_now_ns () + (int64_t) c->timeout_ms * 1000000;
  uint64_t want = c->last_id, seq = ra_shm_map_next_seq (env->shm);
  bool polled = ra_spin_post (area, req->head.data, (uint32_t) req->head.size, seq);
  /* The spin and the ring share the call's deadline. */
  int spin_us = (int64_t) c->spin_us < (int64_t) c->timeout_ms * 1000 ? c->spin_us : c->timeout_ms * 1000;
  uint32_t len = polled ? ra_spin_wait (area, seq, spin_us) : 0;
  if (!len) {
    ra_msg_out_t *m = s_begin (c, "ring", 2);
    ra_msg_out_str (m, "handle");
    ra_msg_out_int (m, env->handle);
    ra_msg_out_str (m, "seq");
    ra_msg_out_uint (m, seq);
    int keep = c->timeout_ms;
    long left = s_left_ms (deadline);
    c->timeout_ms = left > 0 ? (int) left : 1;
    ra_err_t rc = ra_client_call (c, m, NULL, err);
    c->timeout_ms = keep;
    if (rc != RA_OK)
      return rc;
    s_release_parts (c);
    if (!(len = ra_spin_reply (area, seq)))
      return ra_error_set (err, RA_ERR_TRANSPORT, -1,
                           "the server answered ring %" PRIu64 " without that request's reply", seq);
  }
  if (len > RA_SPIN_REP_BYTES)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "malformed reply: doorbell reply of %u bytes", len);
  ra_error_t derr;
  ra_error_clear (&derr);
  ra_err_t rc = ra_msg_in_decode (&c->reply, ra_spin_rep_area (area), len, 0, NULL, NULL, false, &derr);
  if (rc != RA_OK)
    return ra_error_set (err, rc, -1, "malformed reply: %s", derr.message);
  if (!c->reply.has_id || c->reply.id != want)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                         "malformed reply: the doorbell's reply answers request %" PRIu64 ", not %" PRIu64,
                         c->reply.id, want);
  return c->reply.ok ? RA_OK : s_reply_error (&c->reply, err);
}

ra_err_t ra_client_reset (ra_client_t *c, const ra_client_env_t *env, const uint64_t *seeds,
                          const bool *reset_mask, ra_step_result_t *out, ra_error_t *err)
{
  assert (c && env && out);
  memset (out, 0, sizeof *out);
  ra_msg_out_t *m = s_begin (c, "reset", 1 + (seeds != NULL) + (reset_mask != NULL) + (env->shm != NULL));
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, env->handle);
  if (env->shm) {
    ra_msg_out_str (m, "shm");
    ra_msg_out_int (m, ra_shm_map_next (env->shm));
  }
  if (seeds) {
    ra_msg_out_str (m, "seed");
    ra_msg_out_array (m, (uint32_t) env->num_envs);
    for (int i = 0; i < env->num_envs; i++)
      ra_msg_out_uint (m, seeds[i]);
  }
  if (reset_mask) {
    int64_t n = env->num_envs;
    ra_msg_out_str (m, "options");
    ra_msg_out_map (m, 1);
    ra_msg_out_str (m, "reset_mask");
    ra_msg_out_tensor (m, RA_DTYPE_BOOL, 1, &n, reset_mask);
  }
  ra_err_t rc = s_call_env (c, env, m, err);
  if (rc != RA_OK)
    return rc;
  if (env->shm && (rc = ra_shm_map_resolve (env->shm, &c->reply, err)) != RA_OK)
    return rc;
  return s_bad_reply (s_parse_obs_info (c, env, out, err), err);
}

ra_err_t ra_client_step (ra_client_t *c, const ra_client_env_t *env, const ra_tensor_t *action,
                         ra_step_result_t *out, ra_error_t *err)
{
  assert (c && env && action && out);
  memset (out, 0, sizeof *out);
  /* Over shared memory the actions go into the segment; an action the segment cannot take as
     int32 (wrong shape or dtype, out of range) still travels as a tensor, so that the server
     answers it exactly as without the segment. */
  int j = env->shm ? ra_shm_map_next (env->shm) : -1;
  bool in_shm = j >= 0 && ra_shm_map_put_action (env->shm, j, action);
  ra_msg_out_t *m = s_begin (c, "step", 1 + (j >= 0) + !in_shm);
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, env->handle);
  if (j >= 0) {
    ra_msg_out_str (m, "shm");
    ra_msg_out_int (m, j);
  }
  if (!in_shm) {
    ra_msg_out_str (m, "action");
    ra_msg_out_tensor (m, action->dtype, action->ndim, action->shape, action->data);
  }
  const ra_msg_in_t *r = &c->reply;
  ra_err_t rc = s_call_env (c, env, m, err);
  if (rc != RA_OK)
    return rc;
  if (env->shm && (rc = ra_shm_map_resolve (env->shm, &c->reply, err)) != RA_OK)
    return rc;
  if ((rc = s_parse_obs_info (c, env, out, err)) != RA_OK ||
      (rc = ra_get_tensor (r, r->root, "reward", &out->reward, err)) != RA_OK ||
      (rc = ra_get_tensor (r, r->root, "terminated", &out->terminated, err)) != RA_OK ||
      (rc = ra_get_tensor (r, r->root, "truncated", &out->truncated, err)) != RA_OK)
    return s_bad_reply (rc, err);
  if (out->reward.dtype != RA_DTYPE_F32 || out->terminated.dtype != RA_DTYPE_BOOL ||
      out->truncated.dtype != RA_DTYPE_BOOL)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                         "malformed reply: reward must be f32 and terminated, truncated bool");
  return RA_OK;
}

ra_err_t ra_client_set_task (ra_client_t *c, const ra_client_env_t *env, const char *split, int64_t id,
                             const ra_kv_t *params, int n_params, const bool *mask, ra_error_t *err)
{
  assert (c && env && (split != NULL) != (params != NULL || n_params > 0));
  ra_msg_out_t *m = s_begin (c, "set_task", 2 + (mask != NULL));
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, env->handle);
  ra_msg_out_str (m, "task");
  ra_err_t rc;
  if (split) {
    ra_msg_out_map (m, 2);
    ra_msg_out_str (m, "split");
    ra_msg_out_str (m, split);
    ra_msg_out_str (m, "id");
    ra_msg_out_int (m, id);
  } else {
    ra_msg_out_map (m, 1);
    ra_msg_out_str (m, "params");
    if ((rc = s_pack_kv (m, params, n_params, err)) != RA_OK)
      return rc;
  }
  if (mask) {
    int64_t n = env->num_envs;
    ra_msg_out_str (m, "mask");
    ra_msg_out_tensor (m, RA_DTYPE_BOOL, 1, &n, mask);
  }
  return ra_client_call (c, m, NULL, err);
}

ra_err_t ra_client_render (ra_client_t *c, const ra_client_env_t *env, int index, char *buf, size_t cap,
                           ra_error_t *err)
{
  assert (c && env && buf && cap > 0);
  buf[0] = '\0';
  ra_msg_out_t *m = s_begin (c, "render", 2);
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, env->handle);
  ra_msg_out_str (m, "index");
  ra_msg_out_int (m, index);
  const ra_msg_in_t *r;
  ra_err_t rc = ra_client_call (c, m, &r, err);
  if (rc != RA_OK)
    return rc;
  const char *s;
  int len;
  if ((rc = ra_get_str (r->root, "text", &s, &len, err)) != RA_OK)
    return s_bad_reply (rc, err);
  s_copy_str (buf, cap, s, len);
  return RA_OK;
}

ra_err_t ra_client_close (ra_client_t *c, const ra_client_env_t *env, ra_error_t *err)
{
  assert (c && env);
  ra_msg_out_t *m = s_begin (c, "close", 1);
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, env->handle);
  return ra_client_call (c, m, NULL, err);
}
