/*  tests/common/test_kv.c - common/kv: the one key=value grammar (split, typing) and the owned
    growable list (copies, growth, fini). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "common/kv.h"

Test (kv, split_trims_and_splits_at_the_first_equals)
{
  char s[] = "  reward_weights.clicks = a=b  ";
  char *k, *v;
  ra_error_t err;
  cr_assert_eq (ra_kv_split (s, &k, &v, &err), RA_OK);
  cr_assert_str_eq (k, "reward_weights.clicks");
  cr_assert_str_eq (v, "a=b");
  char e[] = "key=";
  cr_assert_eq (ra_kv_split (e, &k, &v, &err), RA_OK);
  cr_assert_str_eq (v, "");
}

Test (kv, split_rejects_a_missing_equals_or_an_empty_key)
{
  char *k, *v;
  ra_error_t err;
  char a[] = "novalue";
  cr_assert_eq (ra_kv_split (a, &k, &v, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "no '='"), "%s", err.message);
  char b[] = "  =5";
  cr_assert_eq (ra_kv_split (b, &k, &v, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "key"), "%s", err.message);
  cr_assert_str_eq (b, "  =5", "a rejected setting is left as it was");
}

Test (kv, values_are_typed_bool_number_or_string)
{
  static const struct { const char *text; ra_kv_type_t type; double num; } cases[] = {
    { "true", RA_KV_BOOL, 1 }, { "false", RA_KV_BOOL, 0 }, { "0.5", RA_KV_NUM, 0.5 },
    { "-3", RA_KV_NUM, -3 }, { "1e3", RA_KV_NUM, 1000 }, { "True", RA_KV_STR, 0 },
    { "", RA_KV_STR, 0 }, { "3x", RA_KV_STR, 0 }, { "plugin:div", RA_KV_STR, 0 },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ra_kv_t kv = { .key = "k" };
    ra_kv_parse_value (cases[i].text, &kv);
    cr_assert_eq (kv.type, cases[i].type, "'%s'", cases[i].text);
    cr_assert_str_eq (kv.key, "k");
    if (kv.type == RA_KV_STR)
      cr_assert_eq (kv.str, cases[i].text);
    else
      cr_assert (kv.num == cases[i].num && !kv.str, "'%s' -> %g", cases[i].text, kv.num);
  }
}

Test (kv, list_owns_copies_and_grows_without_bound)
{
  ra_kv_list_t l;
  ra_kv_list_init (&l);
  ra_error_t err;
  char buf[64];
  for (int i = 0; i < 1000; i++) {
    snprintf (buf, sizeof buf, "key%d = %s", i, i % 2 ? "text" : "7");
    cr_assert_eq (ra_kv_list_parse (&l, buf, &err), RA_OK, "%s", err.message);
    memset (buf, 'x', sizeof buf - 1);   /* the list must not borrow the caller's text */
  }
  cr_assert_eq (l.n, 1000);
  cr_assert_str_eq (l.items[999].key, "key999");
  cr_assert_str_eq (l.items[999].str, "text");
  cr_assert (l.items[998].type == RA_KV_NUM && l.items[998].num == 7);
  ra_kv_t kv = { .key = "s", .type = RA_KV_STR, .str = "abc" };
  cr_assert_eq (ra_kv_list_add (&l, &kv, &err), RA_OK);
  cr_assert (l.items[1000].str != kv.str && !strcmp (l.items[1000].str, "abc"));
  cr_assert_eq (ra_kv_list_parse (&l, "=1", &err), RA_ERR_BAD_CONFIG);
  cr_assert_eq (l.n, 1001, "a rejected setting adds nothing");
  ra_kv_list_fini (&l);
  cr_assert (l.n == 0 && !l.items);
  ra_kv_list_fini (&l);
}

Test (kv, parse_keeps_the_last_setting_of_a_key)
{
  ra_kv_list_t l;
  ra_kv_list_init (&l);
  ra_error_t err;
  cr_assert_eq (ra_kv_list_parse (&l, "hidden_tastes=1", &err), RA_OK);
  cr_assert_eq (ra_kv_list_parse (&l, "reward=clicks", &err), RA_OK);
  cr_assert_eq (ra_kv_list_parse (&l, "hidden_tastes = 0.5", &err), RA_OK);
  cr_assert_eq (l.n, 2, "a key set twice is one entry");
  cr_assert_str_eq (l.items[0].key, "reward");
  cr_assert_str_eq (l.items[1].key, "hidden_tastes");
  cr_assert (l.items[1].type == RA_KV_NUM && l.items[1].num == 0.5, "the last setting wins");
  cr_assert_eq (ra_kv_list_parse (&l, "reward", &err), RA_ERR_BAD_CONFIG);
  cr_assert_eq (l.n, 2, "a rejected setting removes nothing");
  ra_kv_list_fini (&l);
}

Test (kv, numbers_must_be_whole_in_range_and_finite)
{
  long long i = 0;
  double d = 0;
  ra_error_t err;
  cr_assert_eq (ra_kv_parse_int ("--tasks", " 12 ", 1, 100, &i, &err), RA_OK);
  cr_assert_eq (i, 12);
  static const char *const bad_int[] = { "", " ", "abc", "12x", "1.5", "0", "101",
                                           "99999999999999999999" };
  for (size_t j = 0; j < sizeof bad_int / sizeof bad_int[0]; j++) {
    cr_assert_eq (ra_kv_parse_int ("--tasks", bad_int[j], 1, 100, &i, &err), RA_ERR_BAD_CONFIG,
                  "'%s'", bad_int[j]);
    cr_assert (strstr (err.message, "--tasks") && strstr (err.message, "1..100"), "%s", err.message);
    cr_assert_eq (i, 12, "a rejected value leaves *out alone");
  }
  cr_assert_eq (ra_kv_parse_num ("--lr", "3e-3", 0, 1, &d, &err), RA_OK);
  cr_assert_eq (d, 3e-3);
  static const char *const bad_num[] = { "", "  ", "x", "nan", "inf", "2", "-0.5", "0.1.2" };
  for (size_t j = 0; j < sizeof bad_num / sizeof bad_num[0]; j++)
    cr_assert_eq (ra_kv_parse_num ("--lr", bad_num[j], 0, 1, &d, &err), RA_ERR_BAD_CONFIG,
                  "'%s'", bad_num[j]);
}
