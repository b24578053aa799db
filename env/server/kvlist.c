/*  env/server/kvlist.c - make's config and a task, from msgpack maps into the key/value lists the
    sims read (ra__kvlist_t): nested maps flattened into dotted keys, every key and value checked,
    the strings owned by the list.                                                               */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env/server/server_int.h"

#define S_KEY_MAX 256
#define S_DEPTH_MAX 8

void ra__kvlist_free (void *list)
{
  ra__kvlist_t *l = list;
  if (!l)
    return;
  for (int i = 0; i < l->nstrs; i++)
    free (l->strs[i]);
  free (l);
}

static char *s_kv_strdup (ra__kvlist_t *l, const char *p, size_t len)
{
  if (l->nstrs >= 2 * RA__KV_MAX)
    return NULL;
  char *s = malloc (len + 1);
  if (!s)
    return NULL;
  memcpy (s, p, len);
  s[len] = '\0';
  l->strs[l->nstrs++] = s;
  return s;
}

/* Appends every leaf of map under prefix (dotted). skip_task: leave out the top-level "task". */
ra_err_t ra__flatten (ra__kvlist_t *l, const msgpack_object *map, const char *prefix, int depth,
                      bool skip_task, const char *what, ra_error_t *err)
{
  if (depth > S_DEPTH_MAX)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "%s key '%s' nests deeper than %d maps", what,
                         prefix, S_DEPTH_MAX);
  for (uint32_t i = 0; i < map->via.map.size; i++) {
    const msgpack_object *k = &map->via.map.ptr[i].key, *v = &map->via.map.ptr[i].val;
    if (k->type != MSGPACK_OBJECT_STR)
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "%s keys must be strings, got %s", what,
                           ra_obj_type_name (k));
    const char *kp = k->via.str.ptr;
    size_t klen = k->via.str.size;
    if (klen == 0 || memchr (kp, '\0', klen))
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "%s has an empty key or a key with a NUL byte",
                           what);
    char full[S_KEY_MAX];
    int flen = prefix[0] ? snprintf (full, sizeof full, "%s.%.*s", prefix, (int) klen, kp)
                         : snprintf (full, sizeof full, "%.*s", (int) klen, kp);
    if (flen < 0 || flen >= (int) sizeof full)
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "%s key '%.60s...' is longer than %d bytes",
                           what, full, S_KEY_MAX - 1);
    if (skip_task && depth == 0 && strcmp (full, "task") == 0)
      continue;
    if (v->type == MSGPACK_OBJECT_NIL)
      continue;
    if (v->type == MSGPACK_OBJECT_MAP) {
      ra_err_t rc = ra__flatten (l, v, full, depth + 1, false, what, err);
      if (rc != RA_OK)
        return rc;
      continue;
    }
    if (l->n >= RA__KV_MAX)
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "%s has more than %d keys", what,
                           RA__KV_MAX);
    /* One value per key: admission (admit.c) reads the first entry of a key and the sims the
       last, so a repeated key (twice in one map, or dotted and nested) would be admitted by one
       size and built with another. O(n^2) over at most RA__KV_MAX keys. */
    for (int j = 0; j < l->n; j++)
      if (strcmp (l->kv[j].key, full) == 0)
        return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "%s key '%s' is given twice; give each "
                             "key once", what, full);
    ra_kv_t kv = { 0 };
    switch (v->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER: kv.type = RA_KV_NUM; kv.num = (double) v->via.u64; break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: kv.type = RA_KV_NUM; kv.num = (double) v->via.i64; break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
      if (!isfinite (v->via.f64))
        return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "%s key '%s' must be a finite number", what,
                             full);
      kv.type = RA_KV_NUM;
      kv.num = v->via.f64;
      break;
    case MSGPACK_OBJECT_BOOLEAN: kv.type = RA_KV_BOOL; kv.num = v->via.boolean ? 1 : 0; break;
    case MSGPACK_OBJECT_STR:
      if (memchr (v->via.str.ptr, '\0', v->via.str.size))
        return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "%s key '%s' has a NUL byte in its value",
                             what, full);
      kv.type = RA_KV_STR;
      kv.str = s_kv_strdup (l, v->via.str.ptr, v->via.str.size);
      if (!kv.str)
        return ra_error_set (err, RA_ERR_LIMIT, -1, "%s has too many strings", what);
      break;
    default:
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                           "%s key '%s' is %s; expected a number, bool, string or map", what, full,
                           ra_obj_type_name (v));
    }
    kv.key = s_kv_strdup (l, full, (size_t) flen);
    if (!kv.key)
      return ra_error_set (err, RA_ERR_LIMIT, -1, "%s has too many strings", what);
    l->kv[l->n++] = kv;
  }
  return RA_OK;
}

/* A task from {split, id} or {params: map}. The list owns the strings; *out borrows them. */
ra_err_t ra__parse_task (const msgpack_object *t, ra__kvlist_t *l, ra_task_t *out,
                         ra_error_t *err)
{
  memset (out, 0, sizeof *out);
  if (t->type != MSGPACK_OBJECT_MAP)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "task must be a map, got %s",
                         ra_obj_type_name (t));
  const msgpack_object *split = ra_map_get (t, "split"), *id = ra_map_get (t, "id"),
                       *params = ra_map_get (t, "params");
  if (split && params)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "task takes {split, id} or {params}, not both");
  if (split) {
    if (split->type != MSGPACK_OBJECT_STR || memchr (split->via.str.ptr, '\0', split->via.str.size))
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "task.split must be a string, got %s",
                           ra_obj_type_name (split));
    if (!id || id->type != MSGPACK_OBJECT_POSITIVE_INTEGER || id->via.u64 > (uint64_t) INT64_MAX)
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                           "task.id must be a non-negative integer with task.split");
    out->split = s_kv_strdup (l, split->via.str.ptr, split->via.str.size);
    if (!out->split)
      return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory");
    out->id = (int64_t) id->via.u64;
    return RA_OK;
  }
  if (params) {
    if (params->type != MSGPACK_OBJECT_MAP)
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "task.params must be a map, got %s",
                           ra_obj_type_name (params));
    ra_err_t rc = ra__flatten (l, params, "", 0, false, "task.params", err);
    if (rc != RA_OK)
      return rc;
    out->params = l->kv;
    out->n_params = l->n;
    return RA_OK;
  }
  return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "task needs {split: str, id: int} or {params: map}");
}
