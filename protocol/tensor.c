/*  protocol/tensor.c - dtype table and tensor views (docs/protocol.md, "Tensors").
    Owns nothing: views borrow their data. Pure functions; thread-safe.                          */
#include "protocol/tensor.h"

#include <assert.h>
#include <string.h>

static const struct {
  const char *name;
  size_t size;
  bool is_integer;
} s_dtypes[RA_DTYPE_COUNT] = {
  [RA_DTYPE_F32]  = { "f32",  4, false },
  [RA_DTYPE_F64]  = { "f64",  8, false },
  [RA_DTYPE_I32]  = { "i32",  4, true  },
  [RA_DTYPE_I64]  = { "i64",  8, true  },
  [RA_DTYPE_U8]   = { "u8",   1, true  },
  [RA_DTYPE_I8]   = { "i8",   1, true  },
  [RA_DTYPE_BOOL] = { "bool", 1, false },
};

const char *ra_dtype_name (ra_dtype_t dtype)
{
  return (dtype >= 0 && dtype < RA_DTYPE_COUNT) ? s_dtypes[dtype].name : "?";
}

bool ra_dtype_from_name (const char *name, int len, ra_dtype_t *out)
{
  if (!name || len <= 0)
    return false;
  for (int i = 0; i < RA_DTYPE_COUNT; i++)
    if ((int) strlen (s_dtypes[i].name) == len && memcmp (s_dtypes[i].name, name, (size_t) len) == 0) {
      *out = (ra_dtype_t) i;
      return true;
    }
  return false;
}

size_t ra_dtype_size (ra_dtype_t dtype)
{
  assert (dtype >= 0 && dtype < RA_DTYPE_COUNT);
  return s_dtypes[dtype].size;
}

bool ra_dtype_is_integer (ra_dtype_t dtype)
{
  return dtype >= 0 && dtype < RA_DTYPE_COUNT && s_dtypes[dtype].is_integer;
}

int64_t ra_tensor_numel (const ra_tensor_t *t)
{
  assert (t && t->ndim >= 0 && t->ndim <= RA_TENSOR_MAX_DIMS);
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++)
    n *= t->shape[i];
  return n;
}

ra_tensor_t ra_tensor_view (ra_dtype_t dtype, int ndim, const int64_t *shape, void *data)
{
  assert (ndim >= 0 && ndim <= RA_TENSOR_MAX_DIMS && (ndim == 0 || shape));
  ra_tensor_t t;
  memset (&t, 0, sizeof t);
  t.dtype = dtype;
  t.ndim = ndim;
  for (int i = 0; i < ndim; i++)
    t.shape[i] = shape[i];
  t.data = data;
  t.nbytes = (size_t) ra_tensor_numel (&t) * ra_dtype_size (dtype);
  return t;
}

int64_t ra_tensor_get_int (const ra_tensor_t *t, int64_t i)
{
  assert (t && i >= 0 && (size_t) i < t->nbytes / ra_dtype_size (t->dtype));
  const unsigned char *p = (const unsigned char *) t->data + (size_t) i * ra_dtype_size (t->dtype);
  switch (t->dtype) {
  case RA_DTYPE_I32: { int32_t v; memcpy (&v, p, 4); return v; }
  case RA_DTYPE_I64: { int64_t v; memcpy (&v, p, 8); return v; }
  case RA_DTYPE_U8: return *p;
  case RA_DTYPE_I8: return (int8_t) *p;
  case RA_DTYPE_BOOL: return *p != 0;
  default: assert (!"ra_tensor_get_int needs an integer or bool tensor"); return 0;
  }
}
