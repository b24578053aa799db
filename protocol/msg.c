/*  protocol/msg.c - the message codec of protocol v1 (docs/protocol.md).

    Owns: the packer buffer of outgoing messages and the decoded header tree of incoming ones.
    Tensor frames are borrowed in both directions. Never touches a socket.
    Incoming headers are untrusted: before msgpack-c builds a tree, s_scan walks the raw bytes
    iteratively and rejects anything that is not exactly one well-formed value, nests deeper than
    S_MAX_DEPTH or announces more container elements than bytes remain (msgpack-c allocates a
    container's elements up front, so a 5-byte "array of 4e9 items" would otherwise be a memory
    bomb) or holds more than RA_MSG_MAX_HEADER_VALUES values. msgpack-c spends one msgpack_object
    (24 bytes) per value, so decoding never takes more than 24 bytes per input byte nor more than
    about 24 MiB in all: a 48 MiB header of nils is refused by the scan, before any allocation.
    Objects are not thread-safe; one per thread.                                          */
#include "protocol/msg.h"

#include <assert.h>
#include <inttypes.h>
#include <string.h>

/* Deepest container nesting accepted in a header; below msgpack-c's own stack of 32. */
#define S_MAX_DEPTH 30
/* Largest accepted tensor dimension. */
#define S_MAX_DIM ((int64_t) INT32_MAX)

/* ---------------------------------------------------------------------------------------------
   Outgoing                                                                                       */

void ra_msg_out_init (ra_msg_out_t *m)
{
  assert (m);
  msgpack_sbuffer_init (&m->head);
  msgpack_packer_init (&m->pk, &m->head, msgpack_sbuffer_write);
  m->nframes = 0;
}

void ra_msg_out_fini (ra_msg_out_t *m)
{
  if (!m)
    return;
  msgpack_sbuffer_destroy (&m->head);
  m->nframes = 0;
}

void ra_msg_out_clear (ra_msg_out_t *m)
{
  assert (m);
  m->head.size = 0;
  m->nframes = 0;
  /* The packer points at m->head; re-point it in case the struct was moved since init. */
  msgpack_packer_init (&m->pk, &m->head, msgpack_sbuffer_write);
}

static void s_pack_key (ra_msg_out_t *m, const char *s)
{
  size_t n = strlen (s);
  msgpack_pack_str (&m->pk, n);
  msgpack_pack_str_body (&m->pk, s, n);
}

void ra_msg_out_request (ra_msg_out_t *m, uint64_t id, const char *op, uint32_t n_more)
{
  assert (m && op);
  msgpack_pack_map (&m->pk, 3 + n_more);
  s_pack_key (m, "v");
  msgpack_pack_int (&m->pk, RA_PROTOCOL_VERSION);
  s_pack_key (m, "id");
  msgpack_pack_uint64 (&m->pk, id);
  s_pack_key (m, "op");
  s_pack_key (m, op);
}

void ra_msg_out_reply (ra_msg_out_t *m, uint64_t id, uint32_t n_more)
{
  assert (m);
  msgpack_pack_map (&m->pk, 3 + n_more);
  s_pack_key (m, "v");
  msgpack_pack_int (&m->pk, RA_PROTOCOL_VERSION);
  s_pack_key (m, "id");
  msgpack_pack_uint64 (&m->pk, id);
  s_pack_key (m, "ok");
  msgpack_pack_true (&m->pk);
}

/* Length of the valid UTF-8 sequence at s[0..n) (1..4), or 0 if there is none: no overlongs,
   no surrogates, nothing past U+10FFFF (RFC 3629). */
static int s_utf8_seq (const unsigned char *s, size_t n)
{
  unsigned c = s[0];
  int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (!len || (size_t) len > n)
    return 0;
  uint32_t cp = len == 1 ? c : c & (0x7fu >> len);
  for (int k = 1; k < len; k++) {
    if ((s[k] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[k] & 0x3f);
  }
  static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
  if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

/* Packs s as a msgpack str that is valid UTF-8 whatever s holds: a client's bytes copied into an
   error message, or a multi-byte character cut by a fixed-size buffer, become '?' per bad byte. */
static void s_pack_utf8 (ra_msg_out_t *m, const char *s)
{
  const unsigned char *p = (const unsigned char *) s;
  size_t n = strlen (s);
  char buf[RA_ERROR_MESSAGE_MAX];
  size_t out = 0;
  for (size_t i = 0; i < n && out < sizeof buf;) {
    int len = s_utf8_seq (p + i, n - i);
    if (len == 0 || out + (size_t) len > sizeof buf) {
      buf[out++] = '?';
      i += len ? (size_t) len : 1;
      continue;
    }
    memcpy (buf + out, p + i, (size_t) len);
    out += (size_t) len;
    i += (size_t) len;
  }
  msgpack_pack_str (&m->pk, out);
  msgpack_pack_str_body (&m->pk, buf, out);
}

void ra_msg_out_error (ra_msg_out_t *m, uint64_t id, const ra_error_t *e)
{
  assert (m && e);
  ra_msg_out_clear (m);
  msgpack_pack_map (&m->pk, 4);
  s_pack_key (m, "v");
  msgpack_pack_int (&m->pk, RA_PROTOCOL_VERSION);
  s_pack_key (m, "id");
  msgpack_pack_uint64 (&m->pk, id);
  s_pack_key (m, "ok");
  msgpack_pack_false (&m->pk);
  s_pack_key (m, "error");
  bool has_index = e->env_index >= 0;
  msgpack_pack_map (&m->pk, has_index ? 3 : 2);
  s_pack_key (m, "code");
  s_pack_key (m, ra_err_code (e->code));
  s_pack_key (m, "message");
  s_pack_utf8 (m, e->message[0] ? e->message : ra_err_text (e->code));
  if (has_index) {
    s_pack_key (m, "env_index");
    msgpack_pack_int64 (&m->pk, e->env_index);
  }
}

void ra_msg_out_str (ra_msg_out_t *m, const char *s) { assert (s); s_pack_key (m, s); }
void ra_msg_out_int (ra_msg_out_t *m, int64_t v) { msgpack_pack_int64 (&m->pk, v); }
void ra_msg_out_uint (ra_msg_out_t *m, uint64_t v) { msgpack_pack_uint64 (&m->pk, v); }
void ra_msg_out_double (ra_msg_out_t *m, double v) { msgpack_pack_double (&m->pk, v); }
void ra_msg_out_nil (ra_msg_out_t *m) { msgpack_pack_nil (&m->pk); }
void ra_msg_out_map (ra_msg_out_t *m, uint32_t n) { msgpack_pack_map (&m->pk, n); }
void ra_msg_out_array (ra_msg_out_t *m, uint32_t n) { msgpack_pack_array (&m->pk, n); }

void ra_msg_out_bool (ra_msg_out_t *m, bool v)
{
  if (v)
    msgpack_pack_true (&m->pk);
  else
    msgpack_pack_false (&m->pk);
}

ra_err_t ra_msg_out_tensor (ra_msg_out_t *m, ra_dtype_t dtype, int ndim, const int64_t *shape,
                            const void *data)
{
  assert (m && dtype >= 0 && dtype < RA_DTYPE_COUNT);
  assert (ndim >= 0 && ndim <= RA_TENSOR_MAX_DIMS && (ndim == 0 || shape));
  if (m->nframes >= RA_MSG_MAX_FRAMES)
    return RA_ERR_LIMIT;
  size_t numel = 1;
  for (int i = 0; i < ndim; i++) {
    assert (shape[i] >= 0);
    numel *= (size_t) shape[i];
  }
  msgpack_pack_map (&m->pk, 3);
  s_pack_key (m, "dtype");
  s_pack_key (m, ra_dtype_name (dtype));
  s_pack_key (m, "shape");
  msgpack_pack_array (&m->pk, (size_t) ndim);
  for (int i = 0; i < ndim; i++)
    msgpack_pack_int64 (&m->pk, shape[i]);
  s_pack_key (m, "frame");
  msgpack_pack_int (&m->pk, m->nframes + 1);
  m->frames[m->nframes].data = data;
  m->frames[m->nframes].nbytes = numel * ra_dtype_size (dtype);
  m->nframes++;
  return RA_OK;
}

/* ---------------------------------------------------------------------------------------------
   Structural pre-scan of untrusted msgpack bytes                                                 */

static uint64_t s_be (const uint8_t *p, int n)
{
  uint64_t v = 0;
  for (int i = 0; i < n; i++)
    v = (v << 8) | p[i];
  return v;
}

/* Walks exactly one msgpack value starting at p[0]. Returns NULL when the bytes form one
   well-formed value of nesting depth <= S_MAX_DEPTH whose containers never announce more elements
   than bytes remain, and *used is its length; otherwise a static description of the problem. */
static const char *s_scan (const uint8_t *p, size_t len, size_t *used, bool *over_limit)
{
  uint64_t left[S_MAX_DEPTH + 1];       /* values still to read at each open level */
  int depth = 0;
  size_t off = 0;
  uint64_t nvalues = 0;
  left[0] = 1;
  *over_limit = false;
  for (;;) {
    while (depth > 0 && left[depth] == 0)
      depth--;
    if (depth == 0 && left[0] == 0)
      break;
    left[depth]--;
    if (++nvalues > RA_MSG_MAX_HEADER_VALUES) {
      *over_limit = true;
      return "more values than a header may hold";
    }
    if (off >= len)
      return "truncated";
    uint8_t b = p[off++];
    uint64_t skip = 0, items = 0;
    int lenbytes = 0;          /* size of a big-endian length field that follows b */
    int kind = 0;              /* 0 scalar; 1 raw with length (skip bytes); 2 array; 3 map; 4 ext */
    if (b <= 0x7f || b >= 0xe0)
      ;
    else if (b <= 0x8f) { kind = 3; items = b & 0x0f; }
    else if (b <= 0x9f) { kind = 2; items = b & 0x0f; }
    else if (b <= 0xbf) { kind = 1; skip = b & 0x1f; }
    else switch (b) {
      case 0xc0: case 0xc2: case 0xc3: break;
      case 0xc1: return "reserved byte 0xc1";
      case 0xc4: case 0xd9: kind = 1; lenbytes = 1; break;
      case 0xc5: case 0xda: kind = 1; lenbytes = 2; break;
      case 0xc6: case 0xdb: kind = 1; lenbytes = 4; break;
      case 0xc7: kind = 4; lenbytes = 1; break;
      case 0xc8: kind = 4; lenbytes = 2; break;
      case 0xc9: kind = 4; lenbytes = 4; break;
      case 0xca: skip = 4; break;
      case 0xcb: skip = 8; break;
      case 0xcc: case 0xd0: skip = 1; break;
      case 0xcd: case 0xd1: skip = 2; break;
      case 0xce: case 0xd2: skip = 4; break;
      case 0xcf: case 0xd3: skip = 8; break;
      case 0xd4: skip = 2; break;
      case 0xd5: skip = 3; break;
      case 0xd6: skip = 5; break;
      case 0xd7: skip = 9; break;
      case 0xd8: skip = 17; break;
      case 0xdc: kind = 2; lenbytes = 2; break;
      case 0xdd: kind = 2; lenbytes = 4; break;
      case 0xde: kind = 3; lenbytes = 2; break;
      case 0xdf: kind = 3; lenbytes = 4; break;
      default: return "unknown type byte";
      }
    if (lenbytes) {
      if ((size_t) lenbytes > len - off)
        return "truncated";
      uint64_t n = s_be (p + off, lenbytes);
      off += (size_t) lenbytes;
      if (kind == 1)
        skip = n;
      else if (kind == 4)
        skip = n + 1;  /* type byte + data */
      else
        items = n;
    }
    if (skip > len - off)
      return "truncated";
    off += (size_t) skip;
    if (kind == 2 || kind == 3) {
      if (kind == 3)
        items *= 2;
      if (items > len - off)
        return "container announces more elements than bytes remain";
      if (items > 0) {
        if (depth + 1 > S_MAX_DEPTH)
          return "nested too deeply";
        left[++depth] = items;
      }
    }
  }
  *used = off;
  return NULL;
}

/* ---------------------------------------------------------------------------------------------
   Incoming                                                                                       */

void ra_msg_in_init (ra_msg_in_t *m)
{
  assert (m);
  memset (m, 0, sizeof *m);
  msgpack_unpacked_init (&m->unp);
}

void ra_msg_in_fini (ra_msg_in_t *m)
{
  if (!m)
    return;
  msgpack_unpacked_destroy (&m->unp);
  memset (m, 0, sizeof *m);
  msgpack_unpacked_init (&m->unp);
}

ra_err_t ra_msg_in_decode (ra_msg_in_t *m, const void *head, size_t head_len, int nframes,
                           const void *const *frames, const size_t *sizes, bool is_request,
                           ra_error_t *err)
{
  assert (m && nframes >= 0 && (nframes == 0 || (frames && sizes)));
  ra_msg_in_fini (m);
  if (nframes > RA_MSG_MAX_FRAMES)
    return ra_error_set (err, RA_ERR_LIMIT, -1, "message has %d tensor frames, at most %d allowed",
                         nframes, RA_MSG_MAX_FRAMES);
  if (!head || head_len == 0)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "frame 0 is empty, expected a msgpack map");
  size_t used = 0;
  bool over_limit;
  const char *why = s_scan ((const uint8_t *) head, head_len, &used, &over_limit);
  if (why && over_limit)
    return ra_error_set (err, RA_ERR_LIMIT, -1,
                         "frame 0 holds more than %d msgpack values; put bulk data in tensor frames",
                         RA_MSG_MAX_HEADER_VALUES);
  if (why)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "frame 0 is not valid msgpack (%s)", why);
  if (used != head_len)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                         "frame 0 has %zu bytes after its msgpack value, expected exactly one map",
                         head_len - used);
  size_t off = 0;
  msgpack_unpack_return r = msgpack_unpack_next (&m->unp, (const char *) head, head_len, &off);
  if (r == MSGPACK_UNPACK_NOMEM_ERROR)
    return ra_error_set (err, RA_ERR_LIMIT, -1, "frame 0 is too large to decode");
  if (r != MSGPACK_UNPACK_SUCCESS || off != head_len)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "frame 0 is not exactly one msgpack value");
  const msgpack_object *root = &m->unp.data;
  if (root->type != MSGPACK_OBJECT_MAP)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "frame 0 must be a map, got %s",
                         ra_obj_type_name (root));
  ra_err_t rc;
  if ((rc = ra_get_uint (root, "id", &m->id, err)) != RA_OK)
    return rc;
  m->has_id = true;
  int64_t v;
  if ((rc = ra_get_int (root, "v", &v, err)) != RA_OK)
    return rc;
  if (v != RA_PROTOCOL_VERSION)
    return ra_error_set (err, RA_ERR_VERSION, -1, "protocol version %" PRId64 " is not supported, expected %d",
                         v, RA_PROTOCOL_VERSION);
  if (is_request) {
    if ((rc = ra_get_str (root, "op", &m->op, &m->op_len, err)) != RA_OK)
      return rc;
  } else if ((rc = ra_get_bool (root, "ok", &m->ok, err)) != RA_OK)
    return rc;
  m->nframes = nframes;
  for (int i = 0; i < nframes; i++) {
    m->frame_data[i] = frames[i];
    m->frame_size[i] = sizes[i];
  }
  m->root = root;
  return RA_OK;
}

ra_err_t ra_msg_in_tensor (const ra_msg_in_t *m, const msgpack_object *ref, const char *name,
                           ra_tensor_t *out, ra_error_t *err)
{
  assert (m && out);
  if (!name)
    name = "tensor";
  if (!ref || ref->type != MSGPACK_OBJECT_MAP)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                         "field '%s' must be a tensor reference map {dtype, shape, frame}, got %s",
                         name, ref ? ra_obj_type_name (ref) : "nothing");
  const msgpack_object *o = ra_map_get (ref, "dtype");
  if (!o || o->type != MSGPACK_OBJECT_STR)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "tensor '%s': dtype must be a string, got %s",
                         name, o ? ra_obj_type_name (o) : "nothing");
  ra_dtype_t dtype;
  if (!ra_dtype_from_name (o->via.str.ptr, (int) o->via.str.size, &dtype))
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                         "tensor '%s': unknown dtype '%.*s', expected f32, f64, i32, i64, u8, i8 or bool",
                         name, (int) (o->via.str.size > 32 ? 32 : o->via.str.size), o->via.str.ptr);
  o = ra_map_get (ref, "shape");
  if (!o || o->type != MSGPACK_OBJECT_ARRAY)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "tensor '%s': shape must be an array, got %s",
                         name, o ? ra_obj_type_name (o) : "nothing");
  if (o->via.array.size > RA_TENSOR_MAX_DIMS)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "tensor '%s': shape has %u dims, at most %d allowed",
                         name, o->via.array.size, RA_TENSOR_MAX_DIMS);
  ra_tensor_t t;
  memset (&t, 0, sizeof t);
  t.dtype = dtype;
  t.ndim = (int) o->via.array.size;
  uint64_t numel = 1;
  for (int i = 0; i < t.ndim; i++) {
    const msgpack_object *d = &o->via.array.ptr[i];
    if (d->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
      return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                           "tensor '%s': shape[%d] must be a non-negative integer, got %s", name, i,
                           d->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? "a negative integer"
                                                                        : ra_obj_type_name (d));
    if (d->via.u64 > (uint64_t) S_MAX_DIM)
      return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "tensor '%s': shape[%d] = %" PRIu64 " exceeds %" PRId64,
                           name, i, d->via.u64, S_MAX_DIM);
    t.shape[i] = (int64_t) d->via.u64;
    if (__builtin_mul_overflow (numel, d->via.u64, &numel) || numel > (uint64_t) INT64_MAX)
      return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "tensor '%s': shape overflows", name);
  }
  uint64_t nbytes;
  if (__builtin_mul_overflow (numel, (uint64_t) ra_dtype_size (dtype), &nbytes) || nbytes > SIZE_MAX)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "tensor '%s': size overflows", name);
  o = ra_map_get (ref, "frame");
  if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "tensor '%s': frame must be a positive integer, got %s",
                         name, o ? (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? "a negative integer"
                                                                              : ra_obj_type_name (o))
                                 : "nothing");
  if (o->via.u64 < 1 || o->via.u64 > (uint64_t) m->nframes)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                         "tensor '%s': frame %" PRIu64 " does not exist, the message has frames 1..%d",
                         name, o->via.u64, m->nframes);
  int k = (int) o->via.u64 - 1;
  if (m->frame_size[k] != nbytes)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                         "tensor '%s': frame %d has %zu bytes, expected %" PRIu64 " (%s, %" PRIu64 " elements)",
                         name, k + 1, m->frame_size[k], nbytes, ra_dtype_name (dtype), numel);
  t.data = (void *) m->frame_data[k];
  t.nbytes = (size_t) nbytes;
  *out = t;
  return RA_OK;
}

/* ---------------------------------------------------------------------------------------------
   Typed access                                                                                   */

const msgpack_object *ra_map_get (const msgpack_object *map, const char *key)
{
  if (!map || !key || map->type != MSGPACK_OBJECT_MAP)
    return NULL;
  size_t n = strlen (key);
  for (uint32_t i = 0; i < map->via.map.size; i++) {
    const msgpack_object_kv *kv = &map->via.map.ptr[i];
    if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == n &&
        (n == 0 || memcmp (kv->key.via.str.ptr, key, n) == 0))
      return kv->val.type == MSGPACK_OBJECT_NIL ? NULL : &kv->val;
  }
  return NULL;
}

bool ra_obj_is_str (const msgpack_object *o, const char *s)
{
  if (!o || !s || o->type != MSGPACK_OBJECT_STR)
    return false;
  size_t n = strlen (s);
  return o->via.str.size == n && (n == 0 || memcmp (o->via.str.ptr, s, n) == 0);
}

const char *ra_obj_type_name (const msgpack_object *o)
{
  if (!o)
    return "nothing";
  switch (o->type) {
  case MSGPACK_OBJECT_NIL: return "nil";
  case MSGPACK_OBJECT_BOOLEAN: return "a bool";
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
  case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "an integer";
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64: return "a float";
  case MSGPACK_OBJECT_STR: return "a string";
  case MSGPACK_OBJECT_ARRAY: return "an array";
  case MSGPACK_OBJECT_MAP: return "a map";
  case MSGPACK_OBJECT_BIN: return "binary data";
  case MSGPACK_OBJECT_EXT: return "an ext value";
  }
  return "an unknown type";
}

static ra_err_t s_missing (const char *key, ra_error_t *err)
{
  return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "missing field '%s'", key);
}

static ra_err_t s_wrong (const char *key, const char *want, const msgpack_object *o, ra_error_t *err)
{
  return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "field '%s' must be %s, got %s", key, want,
                       ra_obj_type_name (o));
}

ra_err_t ra_opt_int (const msgpack_object *map, const char *key, int64_t *out, ra_error_t *err)
{
  const msgpack_object *o = ra_map_get (map, key);
  if (!o)
    return RA_OK;
  if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
    *out = o->via.i64;
    return RA_OK;
  }
  if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
    return s_wrong (key, "an integer", o, err);
  if (o->via.u64 > (uint64_t) INT64_MAX)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "field '%s' = %" PRIu64 " is out of range, expected at most %" PRId64,
                         key, o->via.u64, INT64_MAX);
  *out = (int64_t) o->via.u64;
  return RA_OK;
}

ra_err_t ra_get_int (const msgpack_object *map, const char *key, int64_t *out, ra_error_t *err)
{
  return ra_map_get (map, key) ? ra_opt_int (map, key, out, err) : s_missing (key, err);
}

ra_err_t ra_opt_uint (const msgpack_object *map, const char *key, uint64_t *out, ra_error_t *err)
{
  const msgpack_object *o = ra_map_get (map, key);
  if (!o)
    return RA_OK;
  if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                         "field '%s' must be a non-negative integer, got %" PRId64, key, o->via.i64);
  if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
    return s_wrong (key, "a non-negative integer", o, err);
  *out = o->via.u64;
  return RA_OK;
}

ra_err_t ra_get_uint (const msgpack_object *map, const char *key, uint64_t *out, ra_error_t *err)
{
  return ra_map_get (map, key) ? ra_opt_uint (map, key, out, err) : s_missing (key, err);
}

ra_err_t ra_opt_double (const msgpack_object *map, const char *key, double *out, ra_error_t *err)
{
  const msgpack_object *o = ra_map_get (map, key);
  if (!o)
    return RA_OK;
  switch (o->type) {
  case MSGPACK_OBJECT_POSITIVE_INTEGER: *out = (double) o->via.u64; return RA_OK;
  case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = (double) o->via.i64; return RA_OK;
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64: *out = o->via.f64; return RA_OK;
  default: return s_wrong (key, "a number", o, err);
  }
}

ra_err_t ra_get_double (const msgpack_object *map, const char *key, double *out, ra_error_t *err)
{
  return ra_map_get (map, key) ? ra_opt_double (map, key, out, err) : s_missing (key, err);
}

ra_err_t ra_opt_bool (const msgpack_object *map, const char *key, bool *out, ra_error_t *err)
{
  const msgpack_object *o = ra_map_get (map, key);
  if (!o)
    return RA_OK;
  if (o->type != MSGPACK_OBJECT_BOOLEAN)
    return s_wrong (key, "a bool", o, err);
  *out = o->via.boolean;
  return RA_OK;
}

ra_err_t ra_get_bool (const msgpack_object *map, const char *key, bool *out, ra_error_t *err)
{
  return ra_map_get (map, key) ? ra_opt_bool (map, key, out, err) : s_missing (key, err);
}

ra_err_t ra_opt_str (const msgpack_object *map, const char *key, const char **out, int *len,
                     ra_error_t *err)
{
  const msgpack_object *o = ra_map_get (map, key);
  if (!o)
    return RA_OK;
  if (o->type != MSGPACK_OBJECT_STR)
    return s_wrong (key, "a string", o, err);
  if (o->via.str.size > (uint32_t) INT32_MAX)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "field '%s' is too long", key);
  *out = o->via.str.ptr;
  *len = (int) o->via.str.size;
  return RA_OK;
}

ra_err_t ra_get_str (const msgpack_object *map, const char *key, const char **out, int *len,
                     ra_error_t *err)
{
  return ra_map_get (map, key) ? ra_opt_str (map, key, out, len, err) : s_missing (key, err);
}

ra_err_t ra_opt_map (const msgpack_object *map, const char *key, const msgpack_object **out,
                     ra_error_t *err)
{
  const msgpack_object *o = ra_map_get (map, key);
  if (!o)
    return RA_OK;
  if (o->type != MSGPACK_OBJECT_MAP)
    return s_wrong (key, "a map", o, err);
  *out = o;
  return RA_OK;
}

ra_err_t ra_get_map (const msgpack_object *map, const char *key, const msgpack_object **out,
                     ra_error_t *err)
{
  return ra_map_get (map, key) ? ra_opt_map (map, key, out, err) : s_missing (key, err);
}

ra_err_t ra_get_array (const msgpack_object *map, const char *key, const msgpack_object **out,
                       ra_error_t *err)
{
  const msgpack_object *o = ra_map_get (map, key);
  if (!o)
    return s_missing (key, err);
  if (o->type != MSGPACK_OBJECT_ARRAY)
    return s_wrong (key, "an array", o, err);
  *out = o;
  return RA_OK;
}

ra_err_t ra_get_tensor (const ra_msg_in_t *m, const msgpack_object *map, const char *key,
                        ra_tensor_t *out, ra_error_t *err)
{
  const msgpack_object *o = ra_map_get (map, key);
  if (!o)
    return s_missing (key, err);
  return ra_msg_in_tensor (m, o, key, out, err);
}

ra_err_t ra_opt_tensor (const ra_msg_in_t *m, const msgpack_object *map, const char *key,
                        ra_tensor_t *out, bool *found, ra_error_t *err)
{
  const msgpack_object *o = ra_map_get (map, key);
  if (found)
    *found = o != NULL;
  if (!o)
    return RA_OK;
  return ra_msg_in_tensor (m, o, key, out, err);
}
