/*  env/core/render.c - text helpers for the simulators' render. */
#include "env/core/render.h"

#include <stdio.h>

void ra_render_slate (const int32_t *items, int k, char *buf, size_t cap)
{
  buf[0] = '\0';
  size_t len = 0;
  for (int r = 0; r < k && len < cap; r++) {
    int w = snprintf (buf + len, cap - len, "%s%d", r ? " " : "", (int) items[r]);
    if (w < 0)
      break;
    len += (size_t) w;
  }
}
