/*  agents/policies/taskset.c - the task-set parser (see taskset.h; docs/agents.md 2.7). */
#include "agents/policies/taskset.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_EXPECTED "expected SPLIT:all, SPLIT:A-B or SPLIT:I,J,K (SPLIT train|val|test|ood; e.g. test:0-31)"

static const struct { const char *name; int all; } s_splits[] = {
  { "train", 1024 }, { "val", 64 }, { "test", 64 }, { "ood", 64 },
};

int ra_taskset_all_count (const char *split)
{
  for (size_t i = 0; i < sizeof s_splits / sizeof s_splits[0]; i++)
    if (!strcmp (split, s_splits[i].name))
      return s_splits[i].all;
  return -1;
}

static ra_err_t s_bad (ra_error_t *err, const char *flag, const char *text, const char *what)
{
  return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "%s '%.40s%s': %s; " S_EXPECTED, flag, text,
                       strlen (text) > 40 ? "..." : "", what);
}

/* A decimal id at *p (digits only, < 2^31); advances *p. False when there is none or it is too
   large. */
static bool s_id (const char **p, int64_t *out)
{
  const char *q = *p;
  int64_t v = 0;
  if (*q < '0' || *q > '9')
    return false;
  for (; *q >= '0' && *q <= '9'; q++) {
    v = 10 * v + (*q - '0');
    if (v >= (int64_t) 1 << 31)
      return false;
  }
  *p = q;
  *out = v;
  return true;
}

static int s_cmp (const void *a, const void *b)
{
  int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
  return (x > y) - (x < y);
}

/* Appends ids lo..hi to the growing array; false when the set would pass the cap. */
static ra_err_t s_append (ra_taskset_t *ts, int *cap, int64_t lo, int64_t hi, const char *flag,
                          const char *text, ra_error_t *err)
{
  if (hi - lo + 1 > RA_TASKSET_MAX_TASKS - ts->n) {
    char what[64];
    snprintf (what, sizeof what, "more than %d tasks", RA_TASKSET_MAX_TASKS);
    return s_bad (err, flag, text, what);
  }
  int need = ts->n + (int) (hi - lo + 1);
  if (need > *cap) {
    int c = *cap ? *cap : 16;
    while (c < need)
      c *= 2;
    int64_t *p = realloc (ts->ids, (size_t) c * sizeof *p);
    if (!p)
      return ra_error_set (err, RA_ERR_NOMEM, -1, "%s: out of memory for %d task ids", flag, need);
    ts->ids = p;
    *cap = c;
  }
  for (int64_t v = lo; v <= hi; v++)
    ts->ids[ts->n++] = v;
  return RA_OK;
}

static ra_err_t s_parse (const char *flag, const char *text, ra_taskset_t *ts, ra_error_t *err)
{
  const char *colon = strchr (text, ':');
  if (!colon)
    return s_bad (err, flag, text, "no ':' after the split");
  size_t sl = (size_t) (colon - text);
  if (sl == 0 || sl >= sizeof ts->split)
    return s_bad (err, flag, text, "unknown split");
  memcpy (ts->split, text, sl);
  ts->split[sl] = '\0';
  int all = ra_taskset_all_count (ts->split);
  if (all < 0)
    return s_bad (err, flag, text, "unknown split");
  const char *p = colon + 1;
  int cap = 0;
  if (!strcmp (p, "all"))
    return s_append (ts, &cap, 0, all - 1, flag, text, err);
  for (;;) {
    int64_t lo, hi;
    if (!s_id (&p, &lo))
      return s_bad (err, flag, text, *p ? "an id must be a decimal number below 2^31" : "no ids after ':'");
    hi = lo;
    if (*p == '-') {
      p++;
      if (!s_id (&p, &hi))
        return s_bad (err, flag, text, "the end B of a range A-B must be a decimal number below 2^31");
      if (hi < lo)
        return s_bad (err, flag, text, "a range A-B needs A <= B");
    }
    ra_err_t rc = s_append (ts, &cap, lo, hi, flag, text, err);
    if (rc != RA_OK)
      return rc;
    if (*p == '\0')
      break;
    if (*p != ',' || p[1] == '\0')
      return s_bad (err, flag, text, "ids are separated by single commas");
    p++;
  }
  int64_t *sorted = malloc ((size_t) ts->n * sizeof *sorted);
  if (!sorted)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "%s: out of memory for %d task ids", flag, ts->n);
  memcpy (sorted, ts->ids, (size_t) ts->n * sizeof *sorted);
  qsort (sorted, (size_t) ts->n, sizeof *sorted, s_cmp);
  int64_t dup = -1;
  for (int i = 1; i < ts->n && dup < 0; i++)
    if (sorted[i] == sorted[i - 1])
      dup = sorted[i];
  free (sorted);
  if (dup >= 0) {
    char what[64];
    snprintf (what, sizeof what, "task %lld is listed twice", (long long) dup);
    return s_bad (err, flag, text, what);
  }
  return RA_OK;
}

ra_err_t ra_taskset_parse (const char *flag, const char *text, ra_taskset_t *out, ra_error_t *err)
{
  memset (out, 0, sizeof *out);
  if (!text)
    text = "";
  ra_err_t rc = s_parse (flag ? flag : "task set", text, out, err);
  if (rc != RA_OK)
    ra_taskset_fini (out);
  return rc;
}

void ra_taskset_fini (ra_taskset_t *ts)
{
  free (ts->ids);
  memset (ts, 0, sizeof *ts);
}

/* Appends str to buf as far as it fits (leaving room for the NUL); len counts it all. */
static void s_put (char *buf, size_t cap, size_t *len, const char *str)
{
  for (; *str; str++, (*len)++)
    if (*len + 1 < cap)
      buf[*len] = *str;
}

size_t ra_taskset_format (const ra_taskset_t *ts, char *buf, size_t cap)
{
  size_t len = 0;
  char tmp[48];
  s_put (buf, cap, &len, ts->split);
  s_put (buf, cap, &len, ":");
  for (int i = 0; i < ts->n;) {
    int j = i;
    while (j + 1 < ts->n && ts->ids[j + 1] == ts->ids[j] + 1)
      j++;
    if (j == i)
      snprintf (tmp, sizeof tmp, "%s%lld", i ? "," : "", (long long) ts->ids[i]);
    else
      snprintf (tmp, sizeof tmp, "%s%lld-%lld", i ? "," : "", (long long) ts->ids[i],
                (long long) ts->ids[j]);
    s_put (buf, cap, &len, tmp);
    i = j + 1;
  }
  if (cap)
    buf[len < cap ? len : cap - 1] = '\0';
  return len;
}
