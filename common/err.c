/*  common/err.c - error table lookups and formatting (see err.h). */
#include "common/err.h"

#include <stdio.h>
#include <string.h>

static const char *const s_wire[] = {
#define RA__ERR_WIRE(name, num, wire, text) [num] = wire,
  RA_ERR_LIST(RA__ERR_WIRE)
#undef RA__ERR_WIRE
};

static const char *const s_text[] = {
#define RA__ERR_TEXT(name, num, wire, text) [num] = text,
  RA_ERR_LIST(RA__ERR_TEXT)
#undef RA__ERR_TEXT
};

const char *ra_err_code (ra_err_t err)
{
  return (err >= 0 && err < RA_ERR_COUNT) ? s_wire[err] : s_wire[RA_ERR_INTERNAL];
}

const char *ra_err_text (ra_err_t err)
{
  return (err >= 0 && err < RA_ERR_COUNT) ? s_text[err] : s_text[RA_ERR_INTERNAL];
}

bool ra_err_from_code (const char *code, int len, ra_err_t *out)
{
  for (int i = 0; i < RA_ERR_COUNT; i++)
    if ((int) strlen (s_wire[i]) == len && memcmp (s_wire[i], code, (size_t) len) == 0) {
      *out = (ra_err_t) i;
      return true;
    }
  return false;
}

ra_err_t ra_error_set (ra_error_t *e, ra_err_t code, int env_index, const char *fmt, ...)
{
  if (e) {
    e->code = code;
    e->env_index = env_index;
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (e->message, sizeof e->message, fmt, ap);
    va_end (ap);
  }
  return code;
}

void ra_error_clear (ra_error_t *e)
{
  if (e) {
    e->code = RA_OK;
    e->env_index = -1;
    e->message[0] = '\0';
  }
}
