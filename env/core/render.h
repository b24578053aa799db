/*  env/core/render.h - text helpers for the simulators' render (the ansi render mode).
    Pure functions; no allocation; thread-safe.                                                 */
#ifndef RA_ENV_CORE_RENDER_H
#define RA_ENV_CORE_RENDER_H

#include <stddef.h>
#include <stdint.h>

/* Writes the k item ids of a slate as "12 7 3" into buf (NUL-terminated, truncated to cap;
   cap >= 1). O(k). */
void ra_render_slate (const int32_t *items, int k, char *buf, size_t cap);

#endif
