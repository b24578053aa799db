/*  common/duration.h - a duration in seconds as the short text progress lines print ("4m07s",
    "2h13m"), one format for every binary's elapsed time and ETA. Pure, no I/O.              */
#ifndef RA_COMMON_DURATION_H
#define RA_COMMON_DURATION_H

#include <stddef.h>

/* Writes s seconds into buf (at most cap bytes, NUL-terminated): "MmSSs" below an hour,
   "HhMMm" from an hour on, "?" when s is negative or not finite (an ETA before any progress). */
void ra_fmt_duration (double s, char *buf, size_t cap);

#endif
