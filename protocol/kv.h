/*  protocol/kv.h - flat key/value lists: the neutral form of configs, task parameters and task
    descriptors, so that simulators never see msgpack (DESIGN.md section 1 layering).

    Nested maps in a request are flattened with dots: {"reward_weights": {"clicks": 1}} becomes
    "reward_weights.clicks" = 1. Strings are borrowed from whoever built the list.                 */
#ifndef RA_PROTOCOL_KV_H
#define RA_PROTOCOL_KV_H

#include <stdbool.h>

typedef enum { RA_KV_NUM, RA_KV_STR, RA_KV_BOOL } ra_kv_type_t;

typedef struct {
  const char *key;      /* borrowed, NUL-terminated */
  ra_kv_type_t type;
  double num;           /* RA_KV_NUM value; RA_KV_BOOL as 0 or 1 */
  const char *str;      /* RA_KV_STR value, borrowed, NUL-terminated; NULL otherwise */
} ra_kv_t;

#endif
