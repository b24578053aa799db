/*  env/core/config.h - typed, range-checked reads from a flat ra_kv_t list (a make config or
    a task's parameter overrides), with unknown-key detection.

    A ra_config_t borrows the list and remembers which entries were read; after reading every
    key it knows, the caller asks ra_config_check_unknown for the first entry nobody read. Every
    failure is RA_ERR_BAD_CONFIG with a message naming the key and what was expected.
    No allocation; not thread-safe per object.                                                    */
#ifndef RA_ENV_CORE_CONFIG_H
#define RA_ENV_CORE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/kv.h"

#define RA_CONFIG_MAX_ENTRIES 256

typedef struct {
  const ra_kv_t *kv;                    /* borrowed */
  int n;                                /* entries in kv, <= RA_CONFIG_MAX_ENTRIES */
  const char *what;                     /* "config" or "task parameter": used in messages */
  uint8_t used[RA_CONFIG_MAX_ENTRIES];  /* 1 once read */
} ra_config_t;

/* Borrows kv[0..n). n > RA_CONFIG_MAX_ENTRIES is RA_ERR_BAD_CONFIG. what names the list in
   messages ("config"). */
ra_err_t ra_config_init (ra_config_t *c, const ra_kv_t *kv, int n, const char *what, ra_error_t *err);

/* Index of the (last) entry named key, or -1. Marks every entry named key as read. O(n). */
int ra_config_find (ra_config_t *c, const char *key);

/* A number in [lo, hi]; *out = def when absent. */
ra_err_t ra_config_get_num (ra_config_t *c, const char *key, double def, double lo, double hi,
                            double *out, ra_error_t *err);
/* An integral number in [lo, hi]; *out = def when absent. */
ra_err_t ra_config_get_int (ra_config_t *c, const char *key, int64_t def, int64_t lo, int64_t hi,
                            int64_t *out, ra_error_t *err);
/* A bool (a number 0 or 1 is accepted too); *out = def when absent. */
ra_err_t ra_config_get_bool (ra_config_t *c, const char *key, bool def, bool *out, ra_error_t *err);
/* A string among names[0..n_names); *out = its index, or def when absent. */
ra_err_t ra_config_get_enum (ra_config_t *c, const char *key, int def, const char *const *names,
                             int n_names, int *out, ra_error_t *err);

/* RA_ERR_BAD_CONFIG naming the first entry never read (with the known keys listed in
   `known`, a short human string), else RA_OK. */
ra_err_t ra_config_check_unknown (const ra_config_t *c, const char *known, ra_error_t *err);

#endif
