/*  tests/protocol/test_space.c - spaces: constructors, equality, encode/decode round trips and
    hostile trees.                                                                                */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "protocol/space.h"

/* Encodes space as the single value "s" of a reply and decodes it back. */
static ra_err_t s_round_trip (const ra_space_t *space, ra_space_t **back, ra_error_t *err)
{
  ra_msg_out_t out;
  ra_msg_in_t in;
  ra_msg_out_init (&out);
  ra_msg_in_init (&in);
  ra_msg_out_reply (&out, 1, 1);
  ra_msg_out_str (&out, "s");
  cr_assert_eq (ra_space_encode (space, &out), RA_OK);
  const void *frames[RA_MSG_MAX_FRAMES];
  size_t sizes[RA_MSG_MAX_FRAMES];
  for (int i = 0; i < out.nframes; i++)
    frames[i] = out.frames[i].data, sizes[i] = out.frames[i].nbytes;
  cr_assert_eq (ra_msg_in_decode (&in, out.head.data, out.head.size, out.nframes, frames, sizes, false, err), RA_OK);
  ra_err_t rc = ra_space_decode (&in, ra_map_get (in.root, "s"), back, err);
  ra_msg_in_fini (&in);
  ra_msg_out_fini (&out);
  return rc;
}

static void s_expect_round_trip (const ra_space_t *s)
{
  ra_space_t *back = NULL;
  ra_error_t err;
  cr_assert_eq (s_round_trip (s, &back, &err), RA_OK, "%s", err.message);
  cr_assert (ra_space_equal (s, back));
  ra_space_destroy (&back);
  cr_assert_null (back);
}

Test (space, every_leaf_type_round_trips)
{
  int64_t shape[2] = { 3, 2 }, nvec[6] = { 2, 3, 4, 5, 6, 7 };
  for (int d = 0; d < RA_DTYPE_COUNT; d++) {
    ra_space_t *box = ra_space_box ((ra_dtype_t) d, 2, shape, -5.0, 100.0);
    s_expect_round_trip (box);
    ra_space_destroy (&box);
  }
  ra_space_t *inf = ra_space_box (RA_DTYPE_F32, 1, shape, -INFINITY, INFINITY);
  float lo;
  memcpy (&lo, inf->low, 4);
  cr_assert (isinf (lo) && lo < 0);
  s_expect_round_trip (inf);
  ra_space_destroy (&inf);
  ra_space_t *scalar = ra_space_box (RA_DTYPE_F64, 0, NULL, 0, 1);
  s_expect_round_trip (scalar);
  ra_space_destroy (&scalar);
  ra_space_t *disc = ra_space_discrete (10, -3);
  s_expect_round_trip (disc);
  cr_assert_eq (ra_space_numel (disc), 1);
  ra_space_destroy (&disc);
  ra_space_t *md = ra_space_multi_discrete (2, shape, nvec);
  s_expect_round_trip (md);
  cr_assert_eq (ra_space_numel (md), 6);
  ra_space_destroy (&md);
  ra_space_t *mb = ra_space_multi_binary (7);
  s_expect_round_trip (mb);
  cr_assert_eq (ra_space_numel (mb), 7);
  ra_space_destroy (&mb);
}

Test (space, box_bounds_saturate_for_integer_dtypes)
{
  int64_t n = 2;
  ra_space_t *b = ra_space_box (RA_DTYPE_U8, 1, &n, -INFINITY, 1000.0);
  cr_assert_eq (((unsigned char *) b->low)[0], 0);
  cr_assert_eq (((unsigned char *) b->high)[1], 255);
  ra_space_destroy (&b);
  b = ra_space_box (RA_DTYPE_I32, 1, &n, -1e300, 1e300);
  int32_t v;
  memcpy (&v, b->high, 4);
  cr_assert_eq (v, INT32_MAX);
  memcpy (&v, b->low, 4);
  cr_assert_eq (v, INT32_MIN);
  ra_space_destroy (&b);
}

/* Dict{z: Box, a: Tuple(Discrete, Dict{m: MultiBinary}), m: MultiDiscrete} */
static ra_space_t *s_nested (void)
{
  int64_t shape[1] = { 4 }, nvec[2] = { 3, 3 }, two = 2;
  ra_space_t *root = ra_space_dict (3), *tup = ra_space_tuple (2), *inner = ra_space_dict (1);
  ra_space_t *box = ra_space_box (RA_DTYPE_F32, 1, shape, -1, 1), *disc = ra_space_discrete (5, 0);
  ra_space_t *mb = ra_space_multi_binary (3), *md = ra_space_multi_discrete (1, &two, nvec);
  cr_assert_eq (ra_space_set_child (inner, 0, "m", &mb), RA_OK);
  cr_assert_null (mb, "ownership moved");
  ra_space_set_child (tup, 0, NULL, &disc);
  ra_space_set_child (tup, 1, NULL, &inner);
  ra_space_set_child (root, 0, "z", &box);
  ra_space_set_child (root, 1, "a", &tup);
  ra_space_set_child (root, 2, "m", &md);
  return root;
}

Test (space, nested_dict_and_tuple_round_trip_keeping_key_order)
{
  ra_space_t *s = s_nested (), *back = NULL;
  ra_error_t err;
  cr_assert_eq (s_round_trip (s, &back, &err), RA_OK, "%s", err.message);
  cr_assert (ra_space_equal (s, back));
  cr_assert_str_eq (back->keys[0], "z");
  cr_assert_str_eq (back->keys[1], "a");
  cr_assert_str_eq (back->keys[2], "m");
  const ra_space_t *a = ra_space_dict_get (back, "a");
  cr_assert (a && a->type == RA_SPACE_TUPLE && a->nchildren == 2);
  cr_assert_eq (a->children[1]->type, RA_SPACE_DICT);
  cr_assert_null (ra_space_dict_get (back, "q"));
  cr_assert_null (ra_space_dict_get (a, "m"), "a Tuple has no keys");
  ra_space_destroy (&back);
  ra_space_destroy (&s);
}

Test (space, equal_sees_key_order_bounds_and_shape)
{
  int64_t n = 2, m = 3;
  ra_space_t *a = ra_space_dict (2), *b = ra_space_dict (2);
  ra_space_t *x1 = ra_space_discrete (3, 0), *y1 = ra_space_discrete (4, 0);
  ra_space_t *x2 = ra_space_discrete (3, 0), *y2 = ra_space_discrete (4, 0);
  ra_space_set_child (a, 0, "x", &x1);
  ra_space_set_child (a, 1, "y", &y1);
  ra_space_set_child (b, 0, "y", &y2);
  ra_space_set_child (b, 1, "x", &x2);
  cr_assert_not (ra_space_equal (a, b), "same keys in another order differ");
  ra_space_destroy (&a);
  ra_space_destroy (&b);
  ra_space_t *p = ra_space_box (RA_DTYPE_F32, 1, &n, 0, 1), *q = ra_space_box (RA_DTYPE_F32, 1, &n, 0, 2);
  ra_space_t *r = ra_space_box (RA_DTYPE_F32, 1, &m, 0, 1), *s = ra_space_box (RA_DTYPE_F64, 1, &n, 0, 1);
  cr_assert_not (ra_space_equal (p, q));
  cr_assert_not (ra_space_equal (p, r));
  cr_assert_not (ra_space_equal (p, s));
  cr_assert (ra_space_equal (p, p));
  ra_space_destroy (&p), ra_space_destroy (&q), ra_space_destroy (&r), ra_space_destroy (&s);
  ra_space_destroy (&p);   /* NULL is fine */
}

Test (space, decode_caps_nesting_depth)
{
  for (int depth = 8; depth <= 9; depth++) {
    ra_space_t *s = ra_space_discrete (2, 0);
    for (int i = 1; i < depth; i++) {
      ra_space_t *t = ra_space_tuple (1);
      ra_space_set_child (t, 0, NULL, &s);
      s = t;
    }
    ra_space_t *back = NULL;
    ra_error_t err;
    ra_err_t rc = s_round_trip (s, &back, &err);
    if (depth == 8) {
      cr_assert_eq (rc, RA_OK, "%s", err.message);
      cr_assert (ra_space_equal (s, back));
    } else {
      cr_assert_eq (rc, RA_ERR_BAD_REQUEST);
      cr_assert (strstr (err.message, "nested deeper than 8"), "%s", err.message);
      cr_assert_null (back);
    }
    ra_space_destroy (&back);
    ra_space_destroy (&s);
  }
}

/* Hostile trees: each case packs the value of "s" by hand. */
static void s_key (msgpack_packer *pk, const char *s)
{
  msgpack_pack_str (pk, strlen (s));
  msgpack_pack_str_body (pk, s, strlen (s));
}

static ra_err_t s_decode_raw (void (*fn) (msgpack_packer *), ra_space_t **out, ra_error_t *err)
{
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init (&sb);
  msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map (&pk, 4);
  s_key (&pk, "v"); msgpack_pack_int (&pk, 1);
  s_key (&pk, "id"); msgpack_pack_int (&pk, 1);
  s_key (&pk, "ok"); msgpack_pack_true (&pk);
  s_key (&pk, "s"); fn (&pk);
  static const float f4[4] = { 0, 0, 1, 1 };
  static const double d2[2] = { 0, 1 };
  const void *frames[2] = { f4, d2 };
  size_t sizes[2] = { sizeof f4, sizeof d2 };
  ra_msg_in_t in;
  ra_msg_in_init (&in);
  cr_assert_eq (ra_msg_in_decode (&in, sb.data, sb.size, 2, frames, sizes, false, err), RA_OK, "%s", err->message);
  ra_err_t rc = ra_space_decode (&in, ra_map_get (in.root, "s"), out, err);
  ra_msg_in_fini (&in);
  msgpack_sbuffer_destroy (&sb);
  return rc;
}

static void s_typed (msgpack_packer *pk, const char *type, int n_more)
{
  msgpack_pack_map (pk, 1 + (size_t) n_more);
  s_key (pk, "type"); s_key (pk, type);
}
static void s_tref (msgpack_packer *pk, const char *dtype, int n, int frame)
{
  msgpack_pack_map (pk, 3);
  s_key (pk, "dtype"); s_key (pk, dtype);
  s_key (pk, "shape"); msgpack_pack_array (pk, 1); msgpack_pack_int (pk, n);
  s_key (pk, "frame"); msgpack_pack_int (pk, frame);
}
static void h_not_map (msgpack_packer *pk) { msgpack_pack_array (pk, 0); }
static void h_type_int (msgpack_packer *pk) { msgpack_pack_map (pk, 1); s_key (pk, "type"); msgpack_pack_int (pk, 3); }
static void h_unknown (msgpack_packer *pk) { s_typed (pk, "Graph", 0); }
static void h_disc_n_str (msgpack_packer *pk) { s_typed (pk, "Discrete", 1); s_key (pk, "n"); s_key (pk, "5"); }
static void h_disc_n_zero (msgpack_packer *pk) { s_typed (pk, "Discrete", 1); s_key (pk, "n"); msgpack_pack_int (pk, 0); }
static void h_md_mismatch (msgpack_packer *pk)
{
  s_typed (pk, "MultiDiscrete", 2);
  s_key (pk, "shape"); msgpack_pack_array (pk, 1); msgpack_pack_int (pk, 3);
  s_key (pk, "nvec"); msgpack_pack_array (pk, 2); msgpack_pack_int (pk, 3); msgpack_pack_int (pk, 3);
}
static void h_md_zero (msgpack_packer *pk)
{
  s_typed (pk, "MultiDiscrete", 1);
  s_key (pk, "nvec"); msgpack_pack_array (pk, 2); msgpack_pack_int (pk, 3); msgpack_pack_int (pk, 0);
}
static void h_mb_neg (msgpack_packer *pk) { s_typed (pk, "MultiBinary", 1); s_key (pk, "n"); msgpack_pack_int (pk, -1); }
static void h_dict_keys_map (msgpack_packer *pk)
{
  s_typed (pk, "Dict", 2);
  s_key (pk, "keys"); msgpack_pack_map (pk, 0);
  s_key (pk, "spaces"); msgpack_pack_map (pk, 0);
}
static void h_dict_missing (msgpack_packer *pk)
{
  s_typed (pk, "Dict", 2);
  s_key (pk, "keys"); msgpack_pack_array (pk, 1); s_key (pk, "a");
  s_key (pk, "spaces"); msgpack_pack_map (pk, 1); s_key (pk, "b"); h_disc_n_zero (pk);
}
static void h_dict_dup (msgpack_packer *pk)
{
  s_typed (pk, "Dict", 2);
  s_key (pk, "keys"); msgpack_pack_array (pk, 2); s_key (pk, "a"); s_key (pk, "a");
  s_key (pk, "spaces"); msgpack_pack_map (pk, 2);
  s_key (pk, "a"); s_typed (pk, "MultiBinary", 1); s_key (pk, "n"); msgpack_pack_int (pk, 1);
  s_key (pk, "b"); s_typed (pk, "MultiBinary", 1); s_key (pk, "n"); msgpack_pack_int (pk, 1);
}
static void h_dict_key_int (msgpack_packer *pk)
{
  s_typed (pk, "Dict", 2);
  s_key (pk, "keys"); msgpack_pack_array (pk, 1); msgpack_pack_int (pk, 1);
  s_key (pk, "spaces"); msgpack_pack_map (pk, 1); s_key (pk, "1"); h_disc_n_zero (pk);
}
static void h_tuple_map (msgpack_packer *pk) { s_typed (pk, "Tuple", 1); s_key (pk, "spaces"); msgpack_pack_map (pk, 0); }
static void h_tuple_bad_child (msgpack_packer *pk)
{
  s_typed (pk, "Tuple", 1);
  s_key (pk, "spaces"); msgpack_pack_array (pk, 2);
  s_typed (pk, "MultiBinary", 1); s_key (pk, "n"); msgpack_pack_int (pk, 1);
  h_unknown (pk);
}
static void h_box_low_dtype (msgpack_packer *pk)
{
  s_typed (pk, "Box", 4);
  s_key (pk, "dtype"); s_key (pk, "f32");
  s_key (pk, "shape"); msgpack_pack_array (pk, 1); msgpack_pack_int (pk, 2);
  s_key (pk, "low"); s_tref (pk, "f64", 2, 2);
  s_key (pk, "high"); s_tref (pk, "f32", 2, 1);
}
static void h_box_shape (msgpack_packer *pk)
{
  s_typed (pk, "Box", 4);
  s_key (pk, "dtype"); s_key (pk, "f32");
  s_key (pk, "shape"); msgpack_pack_array (pk, 1); msgpack_pack_int (pk, 3);
  s_key (pk, "low"); s_tref (pk, "f32", 4, 1);
  s_key (pk, "high"); s_tref (pk, "f32", 4, 1);
}
static void h_box_no_high (msgpack_packer *pk)
{
  s_typed (pk, "Box", 3);
  s_key (pk, "dtype"); s_key (pk, "f32");
  s_key (pk, "shape"); msgpack_pack_array (pk, 1); msgpack_pack_int (pk, 4);
  s_key (pk, "low"); s_tref (pk, "f32", 4, 1);
}
static void h_box_good (msgpack_packer *pk)
{
  s_typed (pk, "Box", 4);
  s_key (pk, "dtype"); s_key (pk, "f32");
  s_key (pk, "shape"); msgpack_pack_array (pk, 1); msgpack_pack_int (pk, 4);
  s_key (pk, "low"); s_tref (pk, "f32", 4, 1);
  s_key (pk, "high"); s_tref (pk, "f32", 4, 1);
}

Test (space, decode_rejects_hostile_trees_naming_the_problem)
{
  struct { void (*fn) (msgpack_packer *); const char *want; } cases[] = {
    { h_not_map, "must be a map, got an array" },
    { h_type_int, "field 'type' must be a string, got an integer" },
    { h_unknown, "unknown type 'Graph'" },
    { h_disc_n_str, "field 'n' must be an integer, got a string" },
    { h_disc_n_zero, "Discrete n must be positive" },
    { h_md_mismatch, "one entry per element" },
    { h_md_zero, "nvec[1] must be a positive integer" },
    { h_mb_neg, "MultiBinary n must be in" },
    { h_dict_keys_map, "field 'keys' must be an array, got a map" },
    { h_dict_missing, "Dict key 'a' has no entry" },
    { h_dict_dup, "duplicate Dict key 'a'" },
    { h_dict_key_int, "keys[0] must be a non-empty string" },
    { h_tuple_map, "field 'spaces' must be an array, got a map" },
    { h_tuple_bad_child, "space <root>[1]: unknown type" },
    { h_box_low_dtype, "Box low must have the Box's dtype f32" },
    { h_box_shape, "Box low must have the Box's dtype f32 and shape" },
    { h_box_no_high, "missing field 'high'" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ra_space_t *s = NULL;
    ra_error_t err;
    ra_error_clear (&err);
    cr_assert_eq (s_decode_raw (cases[i].fn, &s, &err), RA_ERR_BAD_REQUEST, "case %zu", i);
    cr_assert_null (s);
    cr_assert (strstr (err.message, cases[i].want), "case %zu: '%s' lacks '%s'", i, err.message, cases[i].want);
  }
  ra_space_t *s = NULL;
  ra_error_t err;
  cr_assert_eq (s_decode_raw (h_box_good, &s, &err), RA_OK, "%s", err.message);
  float hi[4];
  memcpy (hi, s->high, sizeof hi);
  cr_assert (hi[0] == 0 && hi[3] == 1);
  ra_space_destroy (&s);
}

Test (space, encode_reports_limit_when_frames_run_out)
{
  int64_t n = 1;
  ra_space_t *t = ra_space_tuple (RA_MSG_MAX_FRAMES / 2 + 1);
  for (int i = 0; i < t->nchildren; i++) {
    ra_space_t *b = ra_space_box (RA_DTYPE_F32, 1, &n, 0, 1);
    ra_space_set_child (t, i, NULL, &b);
  }
  ra_msg_out_t out;
  ra_msg_out_init (&out);
  cr_assert_eq (ra_space_encode (t, &out), RA_ERR_LIMIT);
  ra_msg_out_fini (&out);
  ra_space_destroy (&t);
}
