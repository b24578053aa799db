/*  common/kv.c - the one key=value parser and the owned key/value list (see kv.h). */
#include "common/kv.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool s_space (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Trims blanks at both ends of s in place; returns the first non-blank character. */
static char *s_trim (char *s)
{
  while (s_space (*s))
    s++;
  size_t n = strlen (s);
  while (n && s_space (s[n - 1]))
    s[--n] = '\0';
  return s;
}

ra_err_t ra_kv_split (char *setting, char **key, char **value, ra_error_t *err)
{
  char *eq = strchr (setting, '=');
  if (!eq)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "setting '%.64s' is not key=value (no '=')",
                         setting);
  *eq = '\0';
  char *k = s_trim (setting);
  if (!*k) {
    *eq = '=';
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "setting '%.64s' is not key=value (the key "
                         "before '=' is empty)", setting);
  }
  *key = k;
  *value = s_trim (eq + 1);
  return RA_OK;
}

void ra_kv_parse_value (const char *text, ra_kv_t *out)
{
  char *end;
  double x = strtod (text, &end);
  if (!strcmp (text, "true") || !strcmp (text, "false"))
    *out = (ra_kv_t) { .key = out->key, .type = RA_KV_BOOL, .num = text[0] == 't' };
  else if (end != text && !*end)
    *out = (ra_kv_t) { .key = out->key, .type = RA_KV_NUM, .num = x };
  else
    *out = (ra_kv_t) { .key = out->key, .type = RA_KV_STR, .str = text };
}

ra_err_t ra_kv_parse_int (const char *what, const char *text, long long lo, long long hi,
                          long long *out, ra_error_t *err)
{
  char *end;
  errno = 0;
  long long x = strtoll (text, &end, 10);
  bool digits = end != text;
  while (s_space (*end))
    end++;
  if (errno || !digits || *end || x < lo || x > hi)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "%.64s is '%.64s', expected an integer in "
                         "%lld..%lld", what, text, lo, hi);
  *out = x;
  return RA_OK;
}

ra_err_t ra_kv_parse_num (const char *what, const char *text, double lo, double hi, double *out,
                          ra_error_t *err)
{
  char *end;
  double x = strtod (text, &end);
  bool digits = end != text;
  while (s_space (*end))
    end++;
  if (!digits || *end || !isfinite (x) || !(x >= lo && x <= hi))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "%.64s is '%.64s', expected a number in "
                         "[%g, %g]", what, text, lo, hi);
  *out = x;
  return RA_OK;
}

void ra_kv_list_init (ra_kv_list_t *l)
{
  *l = (ra_kv_list_t) { 0 };
}

void ra_kv_list_fini (ra_kv_list_t *l)
{
  if (!l)
    return;
  for (int i = 0; i < l->n; i++)
    free ((char *) l->items[i].key);   /* key and str share one block that starts at key */
  free (l->items);
  *l = (ra_kv_list_t) { 0 };
}

ra_err_t ra_kv_list_add (ra_kv_list_t *l, const ra_kv_t *kv, ra_error_t *err)
{
  if (l->n == l->cap) {
    if (l->cap > INT32_MAX / 2)
      return ra_error_set (err, RA_ERR_LIMIT, -1, "key/value list: more than %d entries", l->cap);
    int cap = l->cap ? 2 * l->cap : 8;
    ra_kv_t *items = realloc (l->items, (size_t) cap * sizeof *items);
    if (!items)
      return ra_error_set (err, RA_ERR_NOMEM, -1, "key/value list: out of memory growing to %d "
                           "entries", cap);
    l->items = items;
    l->cap = cap;
  }
  size_t kn = strlen (kv->key) + 1, sn = kv->type == RA_KV_STR && kv->str ? strlen (kv->str) + 1 : 0;
  char *block = malloc (kn + sn);
  if (!block)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "key/value list: out of memory copying '%.64s'",
                         kv->key);
  memcpy (block, kv->key, kn);
  ra_kv_t *dst = &l->items[l->n++];
  *dst = (ra_kv_t) { .key = block, .type = kv->type, .num = kv->num };
  if (sn) {
    memcpy (block + kn, kv->str, sn);
    dst->str = block + kn;
  }
  return RA_OK;
}

ra_err_t ra_kv_list_add_text (ra_kv_list_t *l, const char *key, const char *value, ra_error_t *err)
{
  ra_kv_t kv = { .key = key };
  ra_kv_parse_value (value, &kv);
  return ra_kv_list_add (l, &kv, err);
}

/* Drops the entry named key, if any (a list built by ra_kv_list_parse holds at most one). */
static void s_remove_key (ra_kv_list_t *l, const char *key)
{
  for (int i = 0; i < l->n; i++)
    if (!strcmp (l->items[i].key, key)) {
      free ((char *) l->items[i].key);
      memmove (&l->items[i], &l->items[i + 1], (size_t) (l->n - i - 1) * sizeof *l->items);
      l->n--;
      return;
    }
}

ra_err_t ra_kv_list_parse (ra_kv_list_t *l, const char *setting, ra_error_t *err)
{
  char *copy = strdup (setting), *key, *value;
  if (!copy)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "key/value list: out of memory");
  ra_err_t rc = ra_kv_split (copy, &key, &value, err);
  if (rc == RA_OK)
    s_remove_key (l, key);
  if (rc == RA_OK)
    rc = ra_kv_list_add_text (l, key, value, err);
  free (copy);
  return rc;
}
