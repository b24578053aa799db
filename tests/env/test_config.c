/*  tests/env/test_config.c - env/core/config: typed reads with defaults and ranges; every
    failure is BAD_CONFIG naming the key. */
#include <criterion/criterion.h>
#include <string.h>

#include "env/core/config.h"

static const char *const s_names[] = { "a", "b" };

Test (config, reads_values_and_defaults)
{
  ra_kv_t kv[] = {
    { .key = "x", .type = RA_KV_NUM, .num = 2.5 },
    { .key = "n", .type = RA_KV_NUM, .num = 7 },
    { .key = "flag", .type = RA_KV_BOOL, .num = 1 },
    { .key = "mode", .type = RA_KV_STR, .str = "b" },
  };
  ra_config_t c;
  ra_error_t err;
  cr_assert_eq (ra_config_init (&c, kv, 4, "config", &err), RA_OK);
  double x, y;
  int64_t n;
  bool flag;
  int mode;
  cr_assert_eq (ra_config_get_num (&c, "x", 0, 0, 10, &x, &err), RA_OK);
  cr_assert_eq (ra_config_get_num (&c, "y", 1.5, 0, 10, &y, &err), RA_OK);
  cr_assert_eq (ra_config_get_int (&c, "n", 0, 0, 10, &n, &err), RA_OK);
  cr_assert_eq (ra_config_get_bool (&c, "flag", false, &flag, &err), RA_OK);
  cr_assert_eq (ra_config_get_enum (&c, "mode", 0, s_names, 2, &mode, &err), RA_OK);
  cr_assert_eq (x, 2.5);
  cr_assert_eq (y, 1.5);
  cr_assert_eq (n, 7);
  cr_assert (flag);
  cr_assert_eq (mode, 1);
  cr_assert_eq (ra_config_check_unknown (&c, "x, y, n, flag, mode", &err), RA_OK);
}

static void s_expect_bad (ra_err_t rc, const ra_error_t *err, const char *key)
{
  cr_assert_eq (rc, RA_ERR_BAD_CONFIG);
  cr_assert_neq (strstr (err->message, key), NULL, "message '%s' should name '%s'", err->message, key);
}

Test (config, every_bad_value_is_bad_config_naming_the_key)
{
  ra_kv_t kv[] = {
    { .key = "big", .type = RA_KV_NUM, .num = 11 },
    { .key = "frac", .type = RA_KV_NUM, .num = 2.5 },
    { .key = "str", .type = RA_KV_STR, .str = "q" },
    { .key = "numflag", .type = RA_KV_NUM, .num = 2 },
    { .key = "mode", .type = RA_KV_STR, .str = "zzz" },
    { .key = "stray", .type = RA_KV_NUM, .num = 0 },
  };
  ra_config_t c;
  ra_error_t err;
  double x;
  int64_t n;
  bool b;
  int m;
  cr_assert_eq (ra_config_init (&c, kv, 6, "config", &err), RA_OK);
  s_expect_bad (ra_config_get_num (&c, "big", 0, 0, 10, &x, &err), &err, "big");
  s_expect_bad (ra_config_get_int (&c, "frac", 0, 0, 10, &n, &err), &err, "frac");
  s_expect_bad (ra_config_get_num (&c, "str", 0, 0, 10, &x, &err), &err, "str");
  s_expect_bad (ra_config_get_bool (&c, "numflag", false, &b, &err), &err, "numflag");
  s_expect_bad (ra_config_get_enum (&c, "mode", 0, s_names, 2, &m, &err), &err, "mode");
  cr_assert_neq (strstr (err.message, "'a', 'b'"), NULL, "message lists the choices: %s", err.message);
  s_expect_bad (ra_config_check_unknown (&c, "...", &err), &err, "stray");
}

Test (config, too_many_entries_is_bad_config)
{
  static ra_kv_t kv[RA_CONFIG_MAX_ENTRIES + 1];
  ra_config_t c;
  ra_error_t err;
  cr_assert_eq (ra_config_init (&c, kv, RA_CONFIG_MAX_ENTRIES + 1, "config", &err), RA_ERR_BAD_CONFIG);
}
