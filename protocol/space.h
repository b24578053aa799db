/*  protocol/space.h - Gymnasium spaces as tagged trees (docs/protocol.md, "Spaces").

    On the wire: {"type": "Box", "dtype", "shape", "low": tensor, "high": tensor},
    {"type": "Discrete", "n", "start"}, {"type": "MultiDiscrete", "nvec": [..]} (nvec as a flat
    array of integers, shape given by "shape"), {"type": "MultiBinary", "n"},
    {"type": "Dict", "keys": [ordered], "spaces": {key: space}}, {"type": "Tuple", "spaces": [..]}.
    A space owns its children, keys and bounds. Not thread-safe to mutate; read-only use is.     */
#ifndef RA_PROTOCOL_SPACE_H
#define RA_PROTOCOL_SPACE_H

#include "protocol/msg.h"

typedef enum {
  RA_SPACE_BOX, RA_SPACE_DISCRETE, RA_SPACE_MULTI_DISCRETE, RA_SPACE_MULTI_BINARY,
  RA_SPACE_DICT, RA_SPACE_TUPLE
} ra_space_type_t;

typedef struct ra_space ra_space_t;
struct ra_space {
  ra_space_type_t type;
  ra_dtype_t dtype;                     /* Box: element dtype; Discrete/MultiDiscrete: i64; MultiBinary: i8 */
  int ndim;                             /* Box, MultiDiscrete, MultiBinary */
  int64_t shape[RA_TENSOR_MAX_DIMS];
  void *low, *high;                     /* Box: numel elements each, in dtype (owned) */
  int64_t n, start;                     /* Discrete: n values from start; MultiBinary: n */
  int64_t *nvec;                        /* MultiDiscrete: numel entries (owned) */
  int nchildren;                        /* Dict, Tuple */
  char **keys;                          /* Dict: ordered keys (owned) */
  ra_space_t **children;                /* Dict, Tuple (owned) */
};

/* Constructors return NULL when out of memory. Box bounds are uniform (low, high may be
   +-INFINITY for float dtypes). */
ra_space_t *ra_space_box (ra_dtype_t dtype, int ndim, const int64_t *shape, double low, double high);
ra_space_t *ra_space_discrete (int64_t n, int64_t start);
ra_space_t *ra_space_multi_discrete (int ndim, const int64_t *shape, const int64_t *nvec);
ra_space_t *ra_space_multi_binary (int64_t n);
/* Dict and Tuple of n children, filled with ra_space_set_child (slots start empty). */
ra_space_t *ra_space_dict (int n);
ra_space_t *ra_space_tuple (int n);
/* Puts *child_p (ownership moves; *child_p is NULLed) in slot i; key is copied (Dict only; NULL
   for Tuple). RA_ERR_NOMEM on allocation failure (the child is then destroyed). */
ra_err_t ra_space_set_child (ra_space_t *parent, int i, const char *key, ra_space_t **child_p);
/* Accepts NULL; NULLs the pointer. */
void ra_space_destroy (ra_space_t **space_p);

/* Number of elements of one sample (Box, MultiDiscrete, MultiBinary: product of shape;
   Discrete: 1). */
int64_t ra_space_numel (const ra_space_t *space);
/* Dict child by key, or NULL. */
const ra_space_t *ra_space_dict_get (const ra_space_t *dict, const char *key);
/* Deep equality (type, dtype, shape, bounds bitwise, keys in order). */
bool ra_space_equal (const ra_space_t *a, const ra_space_t *b);

/* Packs the tree as one msgpack value; Box bounds become tensor frames borrowed from the space,
   which must outlive the send. RA_ERR_LIMIT if frames run out. */
ra_err_t ra_space_encode (const ra_space_t *space, ra_msg_out_t *m);
/* Rebuilds a space from its tree (untrusted: every field checked, nesting depth capped at 8).
   *out is owned by the caller. RA_ERR_BAD_REQUEST with the offending field on failure. */
ra_err_t ra_space_decode (const ra_msg_in_t *m, const msgpack_object *o, ra_space_t **out,
                          ra_error_t *err);

#endif
