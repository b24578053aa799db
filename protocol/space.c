/*  protocol/space.c - Gymnasium spaces as tagged trees (docs/protocol.md, "Spaces"; wire form in
    protocol/space.h). A space owns its children, keys, bounds and nvec. Decoding is for untrusted
    trees: every field is checked and Dict/Tuple nesting is capped at S_MAX_DEPTH levels.
    Not thread-safe to mutate; concurrent read-only use is fine.                                 */
#include "protocol/space.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_DEPTH 8
/* Most children of one Dict or Tuple, and longest Dict key, accepted when decoding. */
#define S_MAX_CHILDREN 1024
#define S_MAX_KEY 255

static const char *const s_type_names[] = {
  [RA_SPACE_BOX] = "Box", [RA_SPACE_DISCRETE] = "Discrete", [RA_SPACE_MULTI_DISCRETE] = "MultiDiscrete",
  [RA_SPACE_MULTI_BINARY] = "MultiBinary", [RA_SPACE_DICT] = "Dict", [RA_SPACE_TUPLE] = "Tuple",
};

static int64_t s_numel (int ndim, const int64_t *shape)
{
  int64_t n = 1;
  for (int i = 0; i < ndim; i++)
    n *= shape[i];
  return n;
}

static ra_space_t *s_alloc (ra_space_type_t type)
{
  ra_space_t *s = calloc (1, sizeof *s);
  if (s)
    s->type = type;
  return s;
}

/* Writes v converted to dtype at p (integers saturate; NaN becomes 0 for integers). */
static void s_store (ra_dtype_t dtype, void *p, double v)
{
  double lo = 0, hi = 0;
  switch (dtype) {
  case RA_DTYPE_F32: { float f = (float) v; memcpy (p, &f, 4); return; }
  case RA_DTYPE_F64: memcpy (p, &v, 8); return;
  case RA_DTYPE_I32: lo = INT32_MIN; hi = INT32_MAX; break;
  case RA_DTYPE_I64: lo = -9223372036854775808.0; hi = 9223372036854774784.0; break;
  case RA_DTYPE_U8: lo = 0; hi = 255; break;
  case RA_DTYPE_I8: lo = -128; hi = 127; break;
  case RA_DTYPE_BOOL: lo = 0; hi = 1; break;
  default: assert (0); return;
  }
  if (isnan (v))
    v = 0;
  v = v < lo ? lo : v > hi ? hi : v;
  switch (dtype) {
  case RA_DTYPE_I32: { int32_t x = (int32_t) v; memcpy (p, &x, 4); return; }
  case RA_DTYPE_I64: { int64_t x = (int64_t) v; memcpy (p, &x, 8); return; }
  case RA_DTYPE_U8: *(uint8_t *) p = (uint8_t) v; return;
  case RA_DTYPE_I8: *(int8_t *) p = (int8_t) v; return;
  default: *(uint8_t *) p = v != 0; return;
  }
}

ra_space_t *ra_space_box (ra_dtype_t dtype, int ndim, const int64_t *shape, double low, double high)
{
  assert (dtype >= 0 && dtype < RA_DTYPE_COUNT);
  assert (ndim >= 0 && ndim <= RA_TENSOR_MAX_DIMS && (ndim == 0 || shape));
  ra_space_t *s = s_alloc (RA_SPACE_BOX);
  if (!s)
    return NULL;
  s->dtype = dtype;
  s->ndim = ndim;
  for (int i = 0; i < ndim; i++) {
    assert (shape[i] >= 0);
    s->shape[i] = shape[i];
  }
  size_t n = (size_t) s_numel (ndim, shape), size = ra_dtype_size (dtype);
  s->low = malloc (n * size + 1);
  s->high = malloc (n * size + 1);
  if (!s->low || !s->high)
    goto fail;
  for (size_t i = 0; i < n; i++) {
    s_store (dtype, (char *) s->low + i * size, low);
    s_store (dtype, (char *) s->high + i * size, high);
  }
  return s;
fail:
  ra_space_destroy (&s);
  return NULL;
}

ra_space_t *ra_space_discrete (int64_t n, int64_t start)
{
  ra_space_t *s = s_alloc (RA_SPACE_DISCRETE);
  if (s) {
    s->dtype = RA_DTYPE_I64;
    s->n = n;
    s->start = start;
  }
  return s;
}

ra_space_t *ra_space_multi_discrete (int ndim, const int64_t *shape, const int64_t *nvec)
{
  assert (ndim >= 0 && ndim <= RA_TENSOR_MAX_DIMS && (ndim == 0 || shape));
  ra_space_t *s = s_alloc (RA_SPACE_MULTI_DISCRETE);
  if (!s)
    return NULL;
  s->dtype = RA_DTYPE_I64;
  s->ndim = ndim;
  for (int i = 0; i < ndim; i++)
    s->shape[i] = shape[i];
  size_t n = (size_t) s_numel (ndim, shape);
  s->nvec = malloc (n * sizeof *s->nvec + 1);
  if (!s->nvec)
    goto fail;
  if (n)
    memcpy (s->nvec, nvec, n * sizeof *s->nvec);
  return s;
fail:
  ra_space_destroy (&s);
  return NULL;
}

ra_space_t *ra_space_multi_binary (int64_t n)
{
  ra_space_t *s = s_alloc (RA_SPACE_MULTI_BINARY);
  if (s) {
    s->dtype = RA_DTYPE_I8;
    s->ndim = 1;
    s->shape[0] = n;
    s->n = n;
  }
  return s;
}

static ra_space_t *s_container (ra_space_type_t type, int n)
{
  assert (n >= 0);
  ra_space_t *s = s_alloc (type);
  if (!s)
    return NULL;
  s->nchildren = n;
  s->children = calloc ((size_t) n + 1, sizeof *s->children);
  if (!s->children)
    goto fail;
  if (type == RA_SPACE_DICT) {
    s->keys = calloc ((size_t) n + 1, sizeof *s->keys);
    if (!s->keys)
      goto fail;
  }
  return s;
fail:
  ra_space_destroy (&s);
  return NULL;
}

ra_space_t *ra_space_dict (int n) { return s_container (RA_SPACE_DICT, n); }
ra_space_t *ra_space_tuple (int n) { return s_container (RA_SPACE_TUPLE, n); }

ra_err_t ra_space_set_child (ra_space_t *parent, int i, const char *key, ra_space_t **child_p)
{
  assert (parent && (parent->type == RA_SPACE_DICT || parent->type == RA_SPACE_TUPLE));
  assert (i >= 0 && i < parent->nchildren && child_p);
  assert ((parent->type == RA_SPACE_DICT) == (key != NULL));
  if (key) {
    size_t n = strlen (key);
    char *copy = malloc (n + 1);
    if (!copy) {
      ra_space_destroy (child_p);
      return RA_ERR_NOMEM;
    }
    memcpy (copy, key, n + 1);
    free (parent->keys[i]);
    parent->keys[i] = copy;
  }
  ra_space_destroy (&parent->children[i]);
  parent->children[i] = *child_p;
  *child_p = NULL;
  return RA_OK;
}

void ra_space_destroy (ra_space_t **space_p)
{
  if (!space_p || !*space_p)
    return;
  ra_space_t *s = *space_p;
  for (int i = 0; i < s->nchildren; i++) {
    if (s->children)
      ra_space_destroy (&s->children[i]);
    if (s->keys)
      free (s->keys[i]);
  }
  free (s->children);
  free (s->keys);
  free (s->low);
  free (s->high);
  free (s->nvec);
  free (s);
  *space_p = NULL;
}

int64_t ra_space_numel (const ra_space_t *space)
{
  assert (space);
  switch (space->type) {
  case RA_SPACE_DISCRETE: return 1;
  case RA_SPACE_BOX: case RA_SPACE_MULTI_DISCRETE: case RA_SPACE_MULTI_BINARY:
    return s_numel (space->ndim, space->shape);
  default: return 0;
  }
}

const ra_space_t *ra_space_dict_get (const ra_space_t *dict, const char *key)
{
  if (!dict || !key || dict->type != RA_SPACE_DICT)
    return NULL;
  for (int i = 0; i < dict->nchildren; i++)
    if (dict->keys[i] && strcmp (dict->keys[i], key) == 0)
      return dict->children[i];
  return NULL;
}

bool ra_space_equal (const ra_space_t *a, const ra_space_t *b)
{
  if (!a || !b)
    return a == b;
  if (a->type != b->type)
    return false;
  switch (a->type) {
  case RA_SPACE_DISCRETE:
    return a->n == b->n && a->start == b->start;
  case RA_SPACE_BOX: case RA_SPACE_MULTI_DISCRETE: case RA_SPACE_MULTI_BINARY: {
    if (a->dtype != b->dtype || a->ndim != b->ndim)
      return false;
    for (int i = 0; i < a->ndim; i++)
      if (a->shape[i] != b->shape[i])
        return false;
    size_t n = (size_t) s_numel (a->ndim, a->shape);
    if (a->type == RA_SPACE_BOX) {
      size_t bytes = n * ra_dtype_size (a->dtype);
      return memcmp (a->low, b->low, bytes) == 0 && memcmp (a->high, b->high, bytes) == 0;
    }
    if (a->type == RA_SPACE_MULTI_DISCRETE)
      return n == 0 || memcmp (a->nvec, b->nvec, n * sizeof *a->nvec) == 0;
    return a->n == b->n;
  }
  case RA_SPACE_DICT: case RA_SPACE_TUPLE:
    if (a->nchildren != b->nchildren)
      return false;
    for (int i = 0; i < a->nchildren; i++) {
      if (a->type == RA_SPACE_DICT &&
          (!a->keys[i] || !b->keys[i] || strcmp (a->keys[i], b->keys[i]) != 0))
        return false;
      if (!ra_space_equal (a->children[i], b->children[i]))
        return false;
    }
    return true;
  }
  return false;
}

/* ---------------------------------------------------------------------------------------------
   Encoding                                                                                       */

static void s_pack_shape (ra_msg_out_t *m, int ndim, const int64_t *shape)
{
  ra_msg_out_array (m, (uint32_t) ndim);
  for (int i = 0; i < ndim; i++)
    ra_msg_out_int (m, shape[i]);
}

ra_err_t ra_space_encode (const ra_space_t *s, ra_msg_out_t *m)
{
  assert (s && m);
  ra_err_t rc = RA_OK;
  switch (s->type) {
  case RA_SPACE_BOX:
    if (m->nframes + 2 > RA_MSG_MAX_FRAMES)
      return RA_ERR_LIMIT;
    ra_msg_out_map (m, 5);
    ra_msg_out_str (m, "type"); ra_msg_out_str (m, "Box");
    ra_msg_out_str (m, "dtype"); ra_msg_out_str (m, ra_dtype_name (s->dtype));
    ra_msg_out_str (m, "shape"); s_pack_shape (m, s->ndim, s->shape);
    ra_msg_out_str (m, "low");
    ra_msg_out_tensor (m, s->dtype, s->ndim, s->shape, s->low);
    ra_msg_out_str (m, "high");
    ra_msg_out_tensor (m, s->dtype, s->ndim, s->shape, s->high);
    return RA_OK;
  case RA_SPACE_DISCRETE:
    ra_msg_out_map (m, 3);
    ra_msg_out_str (m, "type"); ra_msg_out_str (m, "Discrete");
    ra_msg_out_str (m, "n"); ra_msg_out_int (m, s->n);
    ra_msg_out_str (m, "start"); ra_msg_out_int (m, s->start);
    return RA_OK;
  case RA_SPACE_MULTI_DISCRETE: {
    ra_msg_out_map (m, 3);
    ra_msg_out_str (m, "type"); ra_msg_out_str (m, "MultiDiscrete");
    ra_msg_out_str (m, "shape"); s_pack_shape (m, s->ndim, s->shape);
    int64_t n = s_numel (s->ndim, s->shape);
    ra_msg_out_str (m, "nvec"); ra_msg_out_array (m, (uint32_t) n);
    for (int64_t i = 0; i < n; i++)
      ra_msg_out_int (m, s->nvec[i]);
    return RA_OK;
  }
  case RA_SPACE_MULTI_BINARY:
    ra_msg_out_map (m, 2);
    ra_msg_out_str (m, "type"); ra_msg_out_str (m, "MultiBinary");
    ra_msg_out_str (m, "n"); ra_msg_out_int (m, s->n);
    return RA_OK;
  case RA_SPACE_DICT:
    ra_msg_out_map (m, 3);
    ra_msg_out_str (m, "type"); ra_msg_out_str (m, "Dict");
    ra_msg_out_str (m, "keys"); ra_msg_out_array (m, (uint32_t) s->nchildren);
    for (int i = 0; i < s->nchildren; i++)
      ra_msg_out_str (m, s->keys[i] ? s->keys[i] : "");
    ra_msg_out_str (m, "spaces"); ra_msg_out_map (m, (uint32_t) s->nchildren);
    for (int i = 0; i < s->nchildren && rc == RA_OK; i++) {
      assert (s->children[i]);
      ra_msg_out_str (m, s->keys[i] ? s->keys[i] : "");
      rc = ra_space_encode (s->children[i], m);
    }
    return rc;
  case RA_SPACE_TUPLE:
    ra_msg_out_map (m, 2);
    ra_msg_out_str (m, "type"); ra_msg_out_str (m, "Tuple");
    ra_msg_out_str (m, "spaces"); ra_msg_out_array (m, (uint32_t) s->nchildren);
    for (int i = 0; i < s->nchildren && rc == RA_OK; i++) {
      assert (s->children[i]);
      rc = ra_space_encode (s->children[i], m);
    }
    return rc;
  }
  return RA_ERR_INTERNAL;
}

/* ---------------------------------------------------------------------------------------------
   Decoding                                                                                       */

static ra_err_t s_bad (ra_error_t *err, const char *path, const char *what)
{
  return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "space %s: %s", path, what);
}

/* Reads a shape array (0..RA_TENSOR_MAX_DIMS dims of 0..INT32_MAX) under key. */
static ra_err_t s_get_shape (const msgpack_object *o, const char *path, int *ndim, int64_t *shape,
                             int64_t *numel, ra_error_t *err)
{
  const msgpack_object *a = ra_map_get (o, "shape");
  if (!a || a->type != MSGPACK_OBJECT_ARRAY)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "space %s: field 'shape' must be an array, got %s",
                         path, ra_obj_type_name (a));
  if (a->via.array.size > RA_TENSOR_MAX_DIMS)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "space %s: shape has %u dims, at most %d allowed",
                         path, a->via.array.size, RA_TENSOR_MAX_DIMS);
  *ndim = (int) a->via.array.size;
  int64_t n = 1;
  for (int i = 0; i < *ndim; i++) {
    const msgpack_object *d = &a->via.array.ptr[i];
    if (d->type != MSGPACK_OBJECT_POSITIVE_INTEGER || d->via.u64 > INT32_MAX)
      return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                           "space %s: shape[%d] must be an integer in [0, 2^31), got %s", path, i,
                           ra_obj_type_name (d));
    shape[i] = (int64_t) d->via.u64;
    if (__builtin_mul_overflow (n, shape[i], &n))
      return s_bad (err, path, "shape overflows");
  }
  *numel = n;
  return RA_OK;
}

static ra_err_t s_decode (const ra_msg_in_t *m, const msgpack_object *o, const char *path,
                          int depth, ra_space_t **out, ra_error_t *err);

static ra_err_t s_decode_box (const ra_msg_in_t *m, const msgpack_object *o, const char *path,
                              ra_space_t **out, ra_error_t *err)
{
  const char *name;
  int len;
  ra_err_t rc;
  ra_dtype_t dtype;
  int ndim;
  int64_t shape[RA_TENSOR_MAX_DIMS], numel;
  if ((rc = ra_get_str (o, "dtype", &name, &len, err)) != RA_OK)
    return rc;
  if (!ra_dtype_from_name (name, len, &dtype))
    return s_bad (err, path, "unknown Box dtype, expected f32, f64, i32, i64, u8, i8 or bool");
  if ((rc = s_get_shape (o, path, &ndim, shape, &numel, err)) != RA_OK)
    return rc;
  ra_tensor_t bound[2];
  static const char *const names[2] = { "low", "high" };
  for (int b = 0; b < 2; b++) {
    if ((rc = ra_get_tensor (m, o, names[b], &bound[b], err)) != RA_OK)
      return rc;
    bool same = bound[b].dtype == dtype && bound[b].ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
      same = bound[b].shape[i] == shape[i];
    if (!same)
      return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                           "space %s: Box %s must have the Box's dtype %s and shape", path, names[b],
                           ra_dtype_name (dtype));
  }
  ra_space_t *s = s_alloc (RA_SPACE_BOX);
  if (!s)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory decoding space %s", path);
  s->dtype = dtype;
  s->ndim = ndim;
  memcpy (s->shape, shape, sizeof shape);
  size_t bytes = bound[0].nbytes;
  s->low = malloc (bytes + 1);
  s->high = malloc (bytes + 1);
  if (!s->low || !s->high) {
    ra_space_destroy (&s);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory decoding space %s", path);
  }
  if (bytes) {
    memcpy (s->low, bound[0].data, bytes);
    memcpy (s->high, bound[1].data, bytes);
  }
  *out = s;
  return RA_OK;
}

static ra_err_t s_decode_children (const ra_msg_in_t *m, const msgpack_object *o, const char *path,
                                   int depth, bool is_dict, ra_space_t **out, ra_error_t *err)
{
  ra_err_t rc;
  const msgpack_object *keys = NULL, *spaces = NULL;
  if (is_dict) {
    if ((rc = ra_get_array (o, "keys", &keys, err)) != RA_OK ||
        (rc = ra_get_map (o, "spaces", &spaces, err)) != RA_OK)
      return rc;
    if (keys->via.array.size != spaces->via.map.size)
      return s_bad (err, path, "Dict 'keys' and 'spaces' must have the same number of entries");
  } else if ((rc = ra_get_array (o, "spaces", &spaces, err)) != RA_OK)
    return rc;
  uint32_t n = is_dict ? keys->via.array.size : spaces->via.array.size;
  if (n > S_MAX_CHILDREN)
    return s_bad (err, path, "too many children (at most 1024)");
  ra_space_t *s = s_container (is_dict ? RA_SPACE_DICT : RA_SPACE_TUPLE, (int) n);
  if (!s)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory decoding space %s", path);
  for (uint32_t i = 0; i < n; i++) {
    char sub[128], key[S_MAX_KEY + 1];
    const msgpack_object *child = NULL;
    if (is_dict) {
      const msgpack_object *k = &keys->via.array.ptr[i];
      if (k->type != MSGPACK_OBJECT_STR || k->via.str.size == 0 || k->via.str.size > S_MAX_KEY ||
          memchr (k->via.str.ptr, 0, k->via.str.size)) {
        rc = ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                           "space %s: keys[%u] must be a non-empty string of at most %d bytes, got %s",
                           path, i, S_MAX_KEY, ra_obj_type_name (k));
        goto fail;
      }
      memcpy (key, k->via.str.ptr, k->via.str.size);
      key[k->via.str.size] = '\0';
      for (uint32_t j = 0; j < i; j++)
        if (strcmp (s->keys[j], key) == 0) {
          rc = ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "space %s: duplicate Dict key '%s'", path, key);
          goto fail;
        }
      child = ra_map_get (spaces, key);
      if (!child) {
        rc = ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "space %s: Dict key '%s' has no entry in 'spaces'",
                           path, key);
        goto fail;
      }
      snprintf (sub, sizeof sub, "%.60s.%.60s", path, key);
    } else {
      child = &spaces->via.array.ptr[i];
      snprintf (sub, sizeof sub, "%.100s[%u]", path, i);
    }
    ra_space_t *c = NULL;
    if ((rc = s_decode (m, child, sub, depth + 1, &c, err)) != RA_OK)
      goto fail;
    if ((rc = ra_space_set_child (s, (int) i, is_dict ? key : NULL, &c)) != RA_OK) {
      ra_error_set (err, rc, -1, "out of memory decoding space %s", path);
      goto fail;
    }
  }
  *out = s;
  return RA_OK;
fail:
  ra_space_destroy (&s);
  return rc;
}

static ra_err_t s_decode (const ra_msg_in_t *m, const msgpack_object *o, const char *path,
                          int depth, ra_space_t **out, ra_error_t *err)
{
  if (depth > S_MAX_DEPTH)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "space %s: nested deeper than %d levels", path,
                         S_MAX_DEPTH);
  if (!o || o->type != MSGPACK_OBJECT_MAP)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "space %s must be a map, got %s", path,
                         ra_obj_type_name (o));
  const char *type;
  int len;
  ra_err_t rc;
  if ((rc = ra_get_str (o, "type", &type, &len, err)) != RA_OK)
    return rc;
  int t = -1;
  for (int i = 0; i < (int) (sizeof s_type_names / sizeof *s_type_names); i++)
    if ((int) strlen (s_type_names[i]) == len && memcmp (s_type_names[i], type, (size_t) len) == 0)
      t = i;
  switch (t) {
  case RA_SPACE_BOX:
    return s_decode_box (m, o, path, out, err);
  case RA_SPACE_DISCRETE: {
    int64_t n, start = 0;
    if ((rc = ra_get_int (o, "n", &n, err)) != RA_OK || (rc = ra_opt_int (o, "start", &start, err)) != RA_OK)
      return rc;
    if (n <= 0)
      return s_bad (err, path, "Discrete n must be positive");
    if (start > INT64_MAX - n)
      return s_bad (err, path, "Discrete start + n overflows");
    if (!(*out = ra_space_discrete (n, start)))
      return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory decoding space %s", path);
    return RA_OK;
  }
  case RA_SPACE_MULTI_DISCRETE: {
    int ndim;
    int64_t shape[RA_TENSOR_MAX_DIMS], numel;
    const msgpack_object *nvec;
    if ((rc = ra_get_array (o, "nvec", &nvec, err)) != RA_OK)
      return rc;
    if (!ra_map_get (o, "shape")) {   /* shape defaults to (len(nvec),) */
      ndim = 1;
      shape[0] = numel = nvec->via.array.size;
    } else if ((rc = s_get_shape (o, path, &ndim, shape, &numel, err)) != RA_OK)
      return rc;
    if ((int64_t) nvec->via.array.size != numel)
      return s_bad (err, path, "MultiDiscrete nvec must have one entry per element of shape");
    ra_space_t *s = s_alloc (RA_SPACE_MULTI_DISCRETE);
    if (!s || !(s->nvec = malloc ((size_t) numel * sizeof *s->nvec + 1))) {
      ra_space_destroy (&s);
      return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory decoding space %s", path);
    }
    s->dtype = RA_DTYPE_I64;
    s->ndim = ndim;
    memcpy (s->shape, shape, sizeof shape);
    for (int64_t i = 0; i < numel; i++) {
      const msgpack_object *v = &nvec->via.array.ptr[i];
      if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 == 0 || v->via.u64 > INT64_MAX) {
        ra_space_destroy (&s);
        return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                             "space %s: nvec[%" PRId64 "] must be a positive integer, got %s", path, i,
                             ra_obj_type_name (v));
      }
      s->nvec[i] = (int64_t) v->via.u64;
    }
    *out = s;
    return RA_OK;
  }
  case RA_SPACE_MULTI_BINARY: {
    int64_t n;
    if ((rc = ra_get_int (o, "n", &n, err)) != RA_OK)
      return rc;
    if (n < 0 || n > INT32_MAX)
      return s_bad (err, path, "MultiBinary n must be in [0, 2^31)");
    if (!(*out = ra_space_multi_binary (n)))
      return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory decoding space %s", path);
    return RA_OK;
  }
  case RA_SPACE_DICT:
  case RA_SPACE_TUPLE:
    return s_decode_children (m, o, path, depth, t == RA_SPACE_DICT, out, err);
  default:
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                         "space %s: unknown type '%.*s', expected Box, Discrete, MultiDiscrete, "
                         "MultiBinary, Dict or Tuple", path, len > 32 ? 32 : len, type);
  }
}

ra_err_t ra_space_decode (const ra_msg_in_t *m, const msgpack_object *o, ra_space_t **out,
                          ra_error_t *err)
{
  assert (m && out);
  *out = NULL;
  return s_decode (m, o, "<root>", 1, out, err);
}
