/*  tests/server/helpers.h - calling the server's handlers directly, without ZeroMQ: build a
    request with the codec, decode it as the loop would, answer it, decode the reply.
    Header-only (static functions) so each suite stays one file.                                 */
#ifndef RA_TESTS_SERVER_HELPERS_H
#define RA_TESTS_SERVER_HELPERS_H

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "env/server/server.h"
#include "protocol/msg.h"

typedef struct {
  ra_server_t *srv;
  ra_msg_out_t req, rep;
  ra_msg_in_t in;               /* decoded request */
  ra_msg_in_t out;              /* decoded reply */
  ra_error_t err;               /* error of the last reply (code RA_OK when ok) */
  uint64_t next_id;
} th_t;

static inline void th_init_opts (th_t *t, const ra_server_opts_t *o)
{
  memset (t, 0, sizeof *t);
  ra_error_t err;
  cr_assert_eq (ra_server_new (o, &t->srv, &err), RA_OK, "%s", err.message);
  ra_msg_out_init (&t->req);
  ra_msg_out_init (&t->rep);
  ra_msg_in_init (&t->in);
  ra_msg_in_init (&t->out);
  t->next_id = 1;
}

static inline void th_init (th_t *t, int workers)
{
  ra_server_opts_t o;
  ra_server_opts_default (&o);
  o.workers = workers;
  th_init_opts (t, &o);
}

static inline void th_fini (th_t *t)
{
  ra_msg_in_fini (&t->out);
  ra_msg_in_fini (&t->in);
  ra_msg_out_fini (&t->rep);
  ra_msg_out_fini (&t->req);
  ra_server_destroy (&t->srv);
}

/* Starts a request; the caller packs n_more key/value pairs into t->req. */
static inline ra_msg_out_t *th_begin (th_t *t, const char *op, uint32_t n_more)
{
  ra_msg_out_clear (&t->req);
  ra_msg_out_request (&t->req, t->next_id++, op, n_more);
  return &t->req;
}

/* Decodes the reply in t->rep into t->out and t->err; returns the error code (RA_OK if ok). */
static inline ra_err_t th_read_reply (th_t *t, uint64_t want_id)
{
  const void *frames[RA_MSG_MAX_FRAMES];
  size_t sizes[RA_MSG_MAX_FRAMES];
  for (int i = 0; i < t->rep.nframes; i++) {
    frames[i] = t->rep.frames[i].data;
    sizes[i] = t->rep.frames[i].nbytes;
  }
  ra_error_t derr;
  cr_assert_eq (ra_msg_in_decode (&t->out, t->rep.head.data, t->rep.head.size, t->rep.nframes,
                                  frames, sizes, false, &derr),
                RA_OK, "reply does not decode: %s", derr.message);
  if (want_id)
    cr_assert_eq (t->out.id, want_id, "reply id %llu, expected %llu", (unsigned long long) t->out.id,
                  (unsigned long long) want_id);
  ra_error_clear (&t->err);
  if (t->out.ok)
    return RA_OK;
  const msgpack_object *e = ra_map_get (t->out.root, "error");
  cr_assert (e, "error reply without an error map");
  const char *code, *msg;
  int code_len, msg_len;
  cr_assert_eq (ra_get_str (e, "code", &code, &code_len, NULL), RA_OK);
  cr_assert_eq (ra_get_str (e, "message", &msg, &msg_len, NULL), RA_OK);
  cr_assert (ra_err_from_code (code, code_len, &t->err.code), "unknown code %.*s", code_len, code);
  snprintf (t->err.message, sizeof t->err.message, "%.*s", msg_len, msg);
  int64_t idx = -1;
  ra_opt_int (e, "env_index", &idx, NULL);
  t->err.env_index = (int) idx;
  cr_assert (msg_len > 0, "error replies say what was wrong");
  return t->err.code;
}

/* Answers t->req through ra_server_handle_raw. */
static inline ra_err_t th_call (th_t *t)
{
  const void *frames[RA_MSG_MAX_FRAMES];
  size_t sizes[RA_MSG_MAX_FRAMES];
  for (int i = 0; i < t->req.nframes; i++) {
    frames[i] = t->req.frames[i].data;
    sizes[i] = t->req.frames[i].nbytes;
  }
  ra_server_handle_raw (t->srv, t->req.head.data, t->req.head.size, t->req.nframes, frames, sizes,
                        &t->rep);
  return th_read_reply (t, t->next_id - 1);
}

/* make with the common options; returns the handle or -1 (error in t->err). */
static inline int64_t th_make (th_t *t, const char *env, int n, int64_t seed, const char *autoreset,
                               int max_steps)
{
  uint32_t more = 2 + (seed >= 0) + (autoreset != NULL) + (max_steps > 0);
  ra_msg_out_t *m = th_begin (t, "make", more);
  ra_msg_out_str (m, "env");
  ra_msg_out_str (m, env);
  ra_msg_out_str (m, "num_envs");
  ra_msg_out_int (m, n);
  if (seed >= 0) {
    ra_msg_out_str (m, "seed");
    ra_msg_out_int (m, seed);
  }
  if (autoreset) {
    ra_msg_out_str (m, "autoreset");
    ra_msg_out_str (m, autoreset);
  }
  if (max_steps > 0) {
    ra_msg_out_str (m, "max_episode_steps");
    ra_msg_out_int (m, max_steps);
  }
  if (th_call (t) != RA_OK)
    return -1;
  int64_t h;
  cr_assert_eq (ra_get_int (t->out.root, "handle", &h, NULL), RA_OK);
  return h;
}

/* make of env with n envs and config keys num_items and embedding_dim (0: leave out); returns
   the handle or -1 (error in t->err). */
static inline int64_t th_make_sized (th_t *t, const char *env, int n, int64_t num_items, int64_t dim)
{
  int nkeys = (num_items > 0) + (dim > 0);
  ra_msg_out_t *m = th_begin (t, "make", 2 + (nkeys > 0));
  ra_msg_out_str (m, "env");
  ra_msg_out_str (m, env);
  ra_msg_out_str (m, "num_envs");
  ra_msg_out_int (m, n);
  if (nkeys) {
    ra_msg_out_str (m, "config");
    ra_msg_out_map (m, (uint32_t) nkeys);
    if (num_items > 0) {
      ra_msg_out_str (m, "num_items");
      ra_msg_out_int (m, num_items);
    }
    if (dim > 0) {
      ra_msg_out_str (m, "embedding_dim");
      ra_msg_out_int (m, dim);
    }
  }
  if (th_call (t) != RA_OK)
    return -1;
  int64_t h;
  cr_assert_eq (ra_get_int (t->out.root, "handle", &h, NULL), RA_OK);
  return h;
}

/* reset with an int seed (seed < 0: none) and an optional mask (NULL: all). */
static inline ra_err_t th_reset (th_t *t, int64_t handle, int64_t seed, const bool *mask, int n)
{
  ra_msg_out_t *m = th_begin (t, "reset", 1 + (seed >= 0) + (mask != NULL));
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, handle);
  if (seed >= 0) {
    ra_msg_out_str (m, "seed");
    ra_msg_out_int (m, seed);
  }
  uint8_t bytes[1024];
  if (mask) {
    for (int i = 0; i < n; i++)
      bytes[i] = mask[i];
    ra_msg_out_str (m, "options");
    ra_msg_out_map (m, 1);
    ra_msg_out_str (m, "reset_mask");
    int64_t shape[1] = { n };
    ra_msg_out_tensor (m, RA_DTYPE_BOOL, 1, shape, bytes);
  }
  return th_call (t);
}

/* step with an action tensor of any dtype and shape. */
static inline ra_err_t th_step_raw (th_t *t, int64_t handle, ra_dtype_t dtype, int ndim,
                                    const int64_t *shape, const void *data)
{
  ra_msg_out_t *m = th_begin (t, "step", 2);
  ra_msg_out_str (m, "handle");
  ra_msg_out_int (m, handle);
  ra_msg_out_str (m, "action");
  ra_msg_out_tensor (m, dtype, ndim, shape, data);
  return th_call (t);
}

/* step with int32 slates (N, k), or (N,) when k == 1. */
static inline ra_err_t th_step (th_t *t, int64_t handle, const int32_t *a, int n, int k)
{
  int64_t shape[2] = { n, k };
  return th_step_raw (t, handle, RA_DTYPE_I32, k == 1 ? 1 : 2, shape, a);
}

/* Tensor under key in map of the reply (asserts it is there). */
static inline ra_tensor_t th_tensor (th_t *t, const msgpack_object *map, const char *key)
{
  ra_tensor_t x;
  ra_error_t err;
  cr_assert_eq (ra_get_tensor (&t->out, map, key, &x, &err), RA_OK, "%s: %s", key, err.message);
  return x;
}

static inline const msgpack_object *th_map (th_t *t, const char *key)
{
  const msgpack_object *m = ra_map_get (t->out.root, key);
  cr_assert (m && m->type == MSGPACK_OBJECT_MAP, "reply has no map '%s'", key);
  return m;
}

/* FNV-1a, for trajectory digests. */
static inline uint64_t th_fnv (uint64_t h, const void *p, size_t n)
{
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

/* Folds row i of every obs tensor, the reward and both flags into digests[i]. */
static inline void th_digest_step (th_t *t, uint64_t *digests, int n, bool with_reward)
{
  const msgpack_object *obs = th_map (t, "obs");
  for (uint32_t f = 0; f < obs->via.map.size; f++) {
    ra_tensor_t x;
    cr_assert_eq (ra_msg_in_tensor (&t->out, &obs->via.map.ptr[f].val, "obs", &x, NULL), RA_OK);
    size_t row = x.nbytes / (size_t) n;
    for (int i = 0; i < n; i++)
      digests[i] = th_fnv (digests[i], (const char *) x.data + (size_t) i * row, row);
  }
  if (!with_reward)
    return;
  ra_tensor_t r = th_tensor (t, t->out.root, "reward"), te = th_tensor (t, t->out.root, "terminated"),
              tr = th_tensor (t, t->out.root, "truncated");
  for (int i = 0; i < n; i++) {
    digests[i] = th_fnv (digests[i], (const char *) r.data + 4 * i, 4);
    digests[i] = th_fnv (digests[i], (const char *) te.data + i, 1);
    digests[i] = th_fnv (digests[i], (const char *) tr.data + i, 1);
  }
}

/* A valid slate for env i at step t: k distinct indices in [0, K). */
static inline void th_policy (int32_t *a, int i, int step, int K, int k)
{
  int start = (i * 7 + step * 3) % K;
  for (int j = 0; j < k; j++)
    a[j] = (start + j * 5) % K;   /* distinct while k * 5 <= K or gcd(5, K) == 1 */
}

#endif
