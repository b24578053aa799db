/*  common/kv.h - flat key/value settings: the neutral form of configs, task parameters, task
    descriptors and arm or policy settings, so that simulators never see msgpack and no binary
    writes its own key=value parser (docs/architecture.md section 3).

    A ra_kv_t is a view: its strings are borrowed from whoever built it. Nested maps in a request
    are flattened with dots: {"reward_weights": {"clicks": 1}} becomes "reward_weights.clicks" = 1.
    A ra_kv_list_t owns its entries and their strings and grows without bound; its items are a
    plain ra_kv_t array for the functions that take (const ra_kv_t *, int).

    Text settings have one grammar, parsed here and nowhere else: "key=value", blanks around key
    and value ignored, the key non-empty; the value is a bool when it is exactly true or false, a
    number when strtod reads all of it, and a string otherwise.
    Pure functions and caller-owned state: a list belongs to one thread at a time.            */
#ifndef RA_COMMON_KV_H
#define RA_COMMON_KV_H

#include <stdbool.h>

#include "common/err.h"

typedef enum { RA_KV_NUM, RA_KV_STR, RA_KV_BOOL } ra_kv_type_t;

typedef struct {
  const char *key;      /* borrowed, NUL-terminated */
  ra_kv_type_t type;
  double num;           /* RA_KV_NUM value; RA_KV_BOOL as 0 or 1 */
  const char *str;      /* RA_KV_STR value, borrowed, NUL-terminated; NULL otherwise */
} ra_kv_t;

/* An owned, growable list: items[0 .. n) are valid, each key and string value is a copy. */
typedef struct {
  ra_kv_t *items;
  int n, cap;
} ra_kv_list_t;

/* Splits "key=value" in place at its first '=' and trims blanks around both halves; *key and
   *value point into setting. RA_ERR_BAD_CONFIG when there is no '=' or the key is empty. */
ra_err_t ra_kv_split (char *setting, char **key, char **value, ra_error_t *err);
/* Types value text by the rule above into out->type, num and str (str borrows text); out->key is
   left as it was. */
void ra_kv_parse_value (const char *text, ra_kv_t *out);

/* Reads all of text (blanks around it ignored) as a base-10 integer in [lo, hi], or as a finite
   number in [lo, hi]. RA_ERR_BAD_CONFIG saying what (a flag or key name) was given and what was
   expected otherwise; *out is untouched then. For command lines and settings files. */
ra_err_t ra_kv_parse_int (const char *what, const char *text, long long lo, long long hi,
                          long long *out, ra_error_t *err);
ra_err_t ra_kv_parse_num (const char *what, const char *text, double lo, double hi, double *out,
                          ra_error_t *err);

/* An empty list; fini frees every entry and leaves the list empty (fini of an empty or already
   finished list is a no-op). */
void ra_kv_list_init (ra_kv_list_t *l);
void ra_kv_list_fini (ra_kv_list_t *l);
/* Appends a copy of *kv (its key and string value are copied). RA_ERR_NOMEM, RA_ERR_LIMIT past
   2^30 entries. Amortised O(1) plus the string lengths. */
ra_err_t ra_kv_list_add (ra_kv_list_t *l, const ra_kv_t *kv, ra_error_t *err);
/* Appends key with value text typed by ra_kv_parse_value. */
ra_err_t ra_kv_list_add_text (ra_kv_list_t *l, const char *key, const char *value, ra_error_t *err);
/* Appends one "key=value" setting (the grammar above), first removing an entry of the same key:
   the last setting of a key wins, as on a command line (`--config k=1 --config k=2` is k=2), and
   no list sent on holds a key twice (the server refuses that: docs/protocol.md, "Limits").
   setting is not modified. */
ra_err_t ra_kv_list_parse (ra_kv_list_t *l, const char *setting, ra_error_t *err);

#endif
