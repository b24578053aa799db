/*  tests/policies/test_taskset.c - the task-set parser (docs/agents.md 2.7): every accepted
    form gives the ids written, "all" the documented count, canonical formatting round-trips,
    and every malformed set is refused with a message naming the flag and the expected form. */
#include <criterion/criterion.h>
#include <string.h>

#include "agents/policies/taskset.h"

static void s_ok (const char *text, const char *split, int n, const int64_t *ids)
{
  ra_taskset_t ts;
  ra_error_t err;
  cr_assert_eq (ra_taskset_parse ("--task-ids", text, &ts, &err), RA_OK, "%s: %s", text, err.message);
  cr_assert_str_eq (ts.split, split, "%s", text);
  cr_assert_eq (ts.n, n, "%s: %d tasks", text, ts.n);
  for (int i = 0; ids && i < n; i++)
    cr_assert_eq (ts.ids[i], ids[i], "%s: id %d is %lld", text, i, (long long) ts.ids[i]);
  ra_taskset_fini (&ts);
}

Test (taskset, ranges_lists_and_single_ids)
{
  s_ok ("train:0-63", "train", 64, NULL);
  s_ok ("test:0-31", "test", 32, NULL);
  s_ok ("val:5", "val", 1, (int64_t[]) { 5 });
  s_ok ("train:0,3,7", "train", 3, (int64_t[]) { 0, 3, 7 });
  s_ok ("ood:9,2-4,0", "ood", 5, (int64_t[]) { 9, 2, 3, 4, 0 });
  s_ok ("test:2147483647", "test", 1, (int64_t[]) { 2147483647 });
  ra_taskset_t ts;
  ra_error_t err;
  cr_assert_eq (ra_taskset_parse ("--task-ids", "train:10-20", &ts, &err), RA_OK);
  for (int i = 0; i < ts.n; i++)
    cr_assert_eq (ts.ids[i], 10 + i);
  ra_taskset_fini (&ts);
  ra_taskset_fini (&ts);   /* a finished set may be finished again */
}

Test (taskset, all_is_the_documented_count_per_split)
{
  cr_assert_eq (ra_taskset_all_count ("train"), 1024);
  cr_assert_eq (ra_taskset_all_count ("val"), 64);
  cr_assert_eq (ra_taskset_all_count ("test"), 64);
  cr_assert_eq (ra_taskset_all_count ("ood"), 64);
  cr_assert_eq (ra_taskset_all_count ("default"), -1);
  s_ok ("train:all", "train", 1024, NULL);
  s_ok ("test:all", "test", 64, NULL);
  ra_taskset_t ts;
  ra_error_t err;
  cr_assert_eq (ra_taskset_parse ("--task", "val:all", &ts, &err), RA_OK);
  cr_assert_eq (ts.ids[0], 0);
  cr_assert_eq (ts.ids[63], 63);
  ra_taskset_fini (&ts);
}

static void s_bad (const char *text, const char *why)
{
  ra_taskset_t ts;
  ra_error_t err;
  cr_assert_eq (ra_taskset_parse ("--task-ids", text, &ts, &err), RA_ERR_BAD_CONFIG, "'%s' accepted", text);
  cr_assert_eq (ts.n, 0);
  cr_assert_null (ts.ids);
  cr_assert (strncmp (err.message, "--task-ids '", 12) == 0, "%s", err.message);
  cr_assert (strstr (err.message, "expected SPLIT:all, SPLIT:A-B or SPLIT:I,J,K"), "%s", err.message);
  cr_assert (strstr (err.message, why), "'%s': wanted '%s' in: %s", text, why, err.message);
}

Test (taskset, malformed_sets_are_refused_naming_the_flag_and_the_form)
{
  s_bad ("", "no ':'");
  s_bad ("train", "no ':'");
  s_bad ("0-29", "no ':'");
  s_bad ("foo:0-3", "unknown split");
  s_bad ("default:0", "unknown split");
  s_bad (":0", "unknown split");
  s_bad ("train:", "no ids");
  s_bad ("train:al", "decimal");
  s_bad ("train:ALL", "decimal");
  s_bad ("train:-3", "decimal");
  s_bad ("train:3-", "the end B of a range");
  s_bad ("train:7-3", "A <= B");
  s_bad ("train:1,,2", "decimal");
  s_bad ("train:1,", "single commas");
  s_bad ("train:1;2", "single commas");
  s_bad ("train: 1", "decimal");
  s_bad ("train:0x10", "single commas");
  s_bad ("train:2147483648", "below 2^31");
  s_bad ("train:0-70000", "more than 65536");
  s_bad ("train:1,2,1", "task 1 is listed twice");
  s_bad ("train:0-5,3", "task 3 is listed twice");
  s_bad ("train:all,3", "decimal");
}

Test (taskset, format_writes_canonical_ranges_and_round_trips)
{
  static const char *const cases[][2] = {
    { "test:0-31", "test:0-31" }, { "train:0,3,7", "train:0,3,7" },
    { "train:0,1,2,5,7,8", "train:0-2,5,7-8" }, { "val:4", "val:4" }, { "ood:3,2,1", "ood:3,2,1" },
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    ra_taskset_t ts, back;
    ra_error_t err;
    char buf[64];
    cr_assert_eq (ra_taskset_parse ("f", cases[c][0], &ts, &err), RA_OK);
    size_t n = ra_taskset_format (&ts, buf, sizeof buf);
    cr_assert_str_eq (buf, cases[c][1]);
    cr_assert_eq (n, strlen (cases[c][1]));
    cr_assert_eq (ra_taskset_parse ("f", buf, &back, &err), RA_OK);
    cr_assert_eq (back.n, ts.n);
    cr_assert_eq (memcmp (back.ids, ts.ids, (size_t) ts.n * sizeof *ts.ids), 0);
    ra_taskset_fini (&ts);
    ra_taskset_fini (&back);
  }
  ra_taskset_t ts;
  ra_error_t err;
  char small[6];
  cr_assert_eq (ra_taskset_parse ("f", "test:0-31", &ts, &err), RA_OK);
  cr_assert_eq (ra_taskset_format (&ts, small, sizeof small), 9);   /* needed, like snprintf */
  cr_assert_str_eq (small, "test:");
  ra_taskset_fini (&ts);
}
