/*  env/core/config.c - typed reads from ra_kv_t lists (env/core/config.h). */
#include "env/core/config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *s_type_name (ra_kv_type_t t)
{
  return t == RA_KV_NUM ? "a number" : t == RA_KV_STR ? "a string" : "a bool";
}

ra_err_t ra_config_init (ra_config_t *c, const ra_kv_t *kv, int n, const char *what, ra_error_t *err)
{
  memset (c, 0, sizeof *c);
  c->what = what;
  if (n < 0 || n > RA_CONFIG_MAX_ENTRIES)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "%s has %d entries, at most %d are allowed",
                         what, n, RA_CONFIG_MAX_ENTRIES);
  if (n > 0 && !kv)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "%s has %d entries but no data", what, n);
  c->kv = kv;
  c->n = n;
  return RA_OK;
}

int ra_config_find (ra_config_t *c, const char *key)
{
  int found = -1;
  for (int i = 0; i < c->n; i++)
    if (c->kv[i].key && strcmp (c->kv[i].key, key) == 0) {
      c->used[i] = 1;
      found = i;
    }
  return found;
}

ra_err_t ra_config_get_num (ra_config_t *c, const char *key, double def, double lo, double hi,
                            double *out, ra_error_t *err)
{
  int i = ra_config_find (c, key);
  if (i < 0) {
    *out = def;
    return RA_OK;
  }
  const ra_kv_t *e = &c->kv[i];
  if (e->type != RA_KV_NUM)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "%s key '%s' is %s, expected a number in [%g, %g]",
                         c->what, key, s_type_name (e->type), lo, hi);
  if (!isfinite (e->num) || e->num < lo || e->num > hi)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "%s key '%s' is %g, expected a number in [%g, %g]",
                         c->what, key, e->num, lo, hi);
  *out = e->num;
  return RA_OK;
}

ra_err_t ra_config_get_int (ra_config_t *c, const char *key, int64_t def, int64_t lo, int64_t hi,
                            int64_t *out, ra_error_t *err)
{
  int i = ra_config_find (c, key);
  if (i < 0) {
    *out = def;
    return RA_OK;
  }
  const ra_kv_t *e = &c->kv[i];
  if (e->type != RA_KV_NUM || !isfinite (e->num) || e->num != floor (e->num) || e->num < (double) lo
      || e->num > (double) hi) {
    if (e->type != RA_KV_NUM)
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                           "%s key '%s' is %s, expected an integer in [%lld, %lld]", c->what, key,
                           s_type_name (e->type), (long long) lo, (long long) hi);
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "%s key '%s' is %g, expected an integer in [%lld, %lld]",
                         c->what, key, e->num, (long long) lo, (long long) hi);
  }
  *out = (int64_t) e->num;
  return RA_OK;
}

ra_err_t ra_config_get_bool (ra_config_t *c, const char *key, bool def, bool *out, ra_error_t *err)
{
  int i = ra_config_find (c, key);
  if (i < 0) {
    *out = def;
    return RA_OK;
  }
  const ra_kv_t *e = &c->kv[i];
  if (e->type == RA_KV_STR || (e->num != 0.0 && e->num != 1.0))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "%s key '%s' is %s, expected true or false",
                         c->what, key, s_type_name (e->type));
  *out = e->num != 0.0;
  return RA_OK;
}

ra_err_t ra_config_get_enum (ra_config_t *c, const char *key, int def, const char *const *names,
                             int n_names, int *out, ra_error_t *err)
{
  int i = ra_config_find (c, key);
  if (i < 0) {
    *out = def;
    return RA_OK;
  }
  const ra_kv_t *e = &c->kv[i];
  if (e->type == RA_KV_STR && e->str)
    for (int j = 0; j < n_names; j++)
      if (strcmp (e->str, names[j]) == 0) {
        *out = j;
        return RA_OK;
      }
  char list[160];
  size_t len = 0;
  list[0] = '\0';
  for (int j = 0; j < n_names && len < sizeof list; j++) {
    int w = snprintf (list + len, sizeof list - len, "%s'%s'", j ? ", " : "", names[j]);
    if (w < 0)
      break;
    len += (size_t) w;
  }
  if (e->type == RA_KV_STR)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "%s key '%s' is '%s', expected one of %s",
                         c->what, key, e->str ? e->str : "", list);
  return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "%s key '%s' is %s, expected one of %s", c->what,
                       key, s_type_name (e->type), list);
}

ra_err_t ra_config_check_unknown (const ra_config_t *c, const char *known, ra_error_t *err)
{
  for (int i = 0; i < c->n; i++)
    if (!c->used[i])
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "unknown %s key '%s' (known: %s)", c->what,
                           c->kv[i].key ? c->kv[i].key : "(null)", known);
  return RA_OK;
}
