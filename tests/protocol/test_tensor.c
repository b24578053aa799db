/*  tests/protocol/test_tensor.c - dtype table and tensor views. */
#include <criterion/criterion.h>
#include <string.h>

#include "protocol/tensor.h"

Test (tensor, dtype_names_round_trip_and_sizes_match_the_wire)
{
  static const struct { const char *name; size_t size; bool is_int; } want[RA_DTYPE_COUNT] = {
    [RA_DTYPE_F32] = { "f32", 4, false }, [RA_DTYPE_F64] = { "f64", 8, false },
    [RA_DTYPE_I32] = { "i32", 4, true },  [RA_DTYPE_I64] = { "i64", 8, true },
    [RA_DTYPE_U8] = { "u8", 1, true },    [RA_DTYPE_I8] = { "i8", 1, true },
    [RA_DTYPE_BOOL] = { "bool", 1, false },
  };
  for (int d = 0; d < RA_DTYPE_COUNT; d++) {
    cr_assert_str_eq (ra_dtype_name ((ra_dtype_t) d), want[d].name);
    cr_assert_eq (ra_dtype_size ((ra_dtype_t) d), want[d].size);
    cr_assert_eq (ra_dtype_is_integer ((ra_dtype_t) d), want[d].is_int);
    ra_dtype_t out = RA_DTYPE_COUNT;
    cr_assert (ra_dtype_from_name (want[d].name, (int) strlen (want[d].name), &out));
    cr_assert_eq (out, (ra_dtype_t) d);
  }
}

Test (tensor, dtype_from_name_rejects_prefixes_suffixes_and_unknowns)
{
  ra_dtype_t out = RA_DTYPE_COUNT;
  cr_assert_not (ra_dtype_from_name ("f3", 2, &out));
  cr_assert_not (ra_dtype_from_name ("f322", 4, &out));
  cr_assert_not (ra_dtype_from_name ("F32", 3, &out));
  cr_assert_not (ra_dtype_from_name ("f16", 3, &out));
  cr_assert_not (ra_dtype_from_name ("", 0, &out));
  cr_assert_not (ra_dtype_from_name ("boolean", 4, &out) && out != RA_DTYPE_BOOL);
  cr_assert (ra_dtype_from_name ("u8xyz", 2, &out), "length bounds the name, no NUL needed");
  cr_assert_eq (out, RA_DTYPE_U8);
  cr_assert_str_eq (ra_dtype_name (RA_DTYPE_COUNT), "?");
  cr_assert_not (ra_dtype_is_integer (RA_DTYPE_COUNT));
}

Test (tensor, view_computes_numel_and_nbytes)
{
  int64_t shape[3] = { 2, 3, 4 };
  float data[24];
  ra_tensor_t t = ra_tensor_view (RA_DTYPE_F32, 3, shape, data);
  cr_assert_eq (ra_tensor_numel (&t), 24);
  cr_assert_eq (t.nbytes, 96);
  cr_assert_eq (t.data, (void *) data);
  ra_tensor_t s = ra_tensor_view (RA_DTYPE_F64, 0, NULL, data);
  cr_assert_eq (ra_tensor_numel (&s), 1, "a scalar has one element");
  cr_assert_eq (s.nbytes, 8);
  int64_t zero[2] = { 5, 0 };
  ra_tensor_t e = ra_tensor_view (RA_DTYPE_I64, 2, zero, NULL);
  cr_assert_eq (ra_tensor_numel (&e), 0);
  cr_assert_eq (e.nbytes, 0);
}

Test (tensor, get_int_reads_every_integer_dtype_even_unaligned)
{
  unsigned char buf[1 + 8 * 3];
  int64_t n = 3;
  int32_t i32[3] = { -7, 0, 2147483647 };
  int64_t i64[3] = { -9000000000ll, 1, 42 };
  int8_t i8[3] = { -128, 5, 127 };
  uint8_t u8[3] = { 255, 0, 7 };
  uint8_t b[3] = { 0, 1, 1 };
  struct { ra_dtype_t dt; const void *src; int64_t want[3]; } cases[] = {
    { RA_DTYPE_I32, i32, { -7, 0, 2147483647 } }, { RA_DTYPE_I64, i64, { -9000000000ll, 1, 42 } },
    { RA_DTYPE_I8, i8, { -128, 5, 127 } },          { RA_DTYPE_U8, u8, { 255, 0, 7 } },
    { RA_DTYPE_BOOL, b, { 0, 1, 1 } },
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    memcpy (buf + 1, cases[c].src, 3 * ra_dtype_size (cases[c].dt));   /* odd address */
    ra_tensor_t t = ra_tensor_view (cases[c].dt, 1, &n, buf + 1);
    for (int i = 0; i < 3; i++)
      cr_assert_eq (ra_tensor_get_int (&t, i), cases[c].want[i], "%s[%d]", ra_dtype_name (cases[c].dt), i);
  }
}
