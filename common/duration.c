/*  common/duration.c - see duration.h. */
#include "common/duration.h"

#include <math.h>
#include <stdio.h>

void ra_fmt_duration (double s, char *buf, size_t cap)
{
  if (!isfinite (s) || s < 0)
    snprintf (buf, cap, "?");
  else if (s >= 3600)
    snprintf (buf, cap, "%dh%02dm", (int) (s / 3600), (int) fmod (s / 60, 60));
  else
    snprintf (buf, cap, "%dm%02ds", (int) (s / 60), (int) fmod (s, 60));
}
