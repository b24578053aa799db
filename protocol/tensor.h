/*  protocol/tensor.h - dtypes and borrowed tensor views (docs/protocol.md, "Tensors").

    A tensor on the wire is a header map {"dtype", "shape", "frame"} plus one raw frame of
    little-endian, C-order bytes. ra_tensor_t is a view: it never owns its data.
    Pure functions; thread-safe.                                                                   */
#ifndef RA_PROTOCOL_TENSOR_H
#define RA_PROTOCOL_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
  RA_DTYPE_F32, RA_DTYPE_F64, RA_DTYPE_I32, RA_DTYPE_I64, RA_DTYPE_U8, RA_DTYPE_I8, RA_DTYPE_BOOL,
  RA_DTYPE_COUNT
} ra_dtype_t;

#define RA_TENSOR_MAX_DIMS 8

typedef struct {
  ra_dtype_t dtype;
  int ndim;                             /* 0..RA_TENSOR_MAX_DIMS */
  int64_t shape[RA_TENSOR_MAX_DIMS];
  void *data;                           /* borrowed; nbytes = numel * dtype size */
  size_t nbytes;
} ra_tensor_t;

/* Wire name ("f32", "bool", ...). */
const char *ra_dtype_name (ra_dtype_t dtype);
/* Parses a wire name of len bytes (not NUL-terminated); false if unknown. */
bool ra_dtype_from_name (const char *name, int len, ra_dtype_t *out);
/* Bytes per element (bool is one byte, 0 or 1). */
size_t ra_dtype_size (ra_dtype_t dtype);
/* True for the integer dtypes (i32, i64, u8, i8). */
bool ra_dtype_is_integer (ra_dtype_t dtype);

/* Product of the shape (1 for ndim 0). Assumes the shape was validated (no overflow). */
int64_t ra_tensor_numel (const ra_tensor_t *t);
/* A view of data with the given dtype and shape; nbytes computed. */
ra_tensor_t ra_tensor_view (ra_dtype_t dtype, int ndim, const int64_t *shape, void *data);
/* Reads element i (flat index) of any integer or bool tensor as int64. */
int64_t ra_tensor_get_int (const ra_tensor_t *t, int64_t i);

#endif
