/*  tests/common/test_duration.c - common/duration: the progress lines' time format. */
#include <criterion/criterion.h>
#include <math.h>

#include "common/duration.h"

Test (duration, minutes_and_seconds_below_an_hour)
{
  char b[32];
  ra_fmt_duration (0, b, sizeof b);
  cr_assert_str_eq (b, "0m00s");
  ra_fmt_duration (247.9, b, sizeof b);
  cr_assert_str_eq (b, "4m07s");
  ra_fmt_duration (3599.5, b, sizeof b);
  cr_assert_str_eq (b, "59m59s");
}

Test (duration, hours_and_minutes_from_an_hour_on)
{
  char b[32];
  ra_fmt_duration (3600, b, sizeof b);
  cr_assert_str_eq (b, "1h00m");
  ra_fmt_duration (2 * 3600 + 13 * 60 + 59, b, sizeof b);
  cr_assert_str_eq (b, "2h13m");
}

Test (duration, unknown_when_negative_or_not_finite)
{
  char b[32];
  ra_fmt_duration (-1, b, sizeof b);
  cr_assert_str_eq (b, "?");
  ra_fmt_duration (NAN, b, sizeof b);
  cr_assert_str_eq (b, "?");
  ra_fmt_duration (INFINITY, b, sizeof b);
  cr_assert_str_eq (b, "?");
}

Test (duration, truncates_to_the_buffer)
{
  char b[4];
  ra_fmt_duration (247, b, sizeof b);
  cr_assert_str_eq (b, "4m0");
}
