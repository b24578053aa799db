/*  tests/policies/test_ab_e2e.c - recarena-ab's runner and report against an in-process server
    on ECommerce-v1: the oracle beats LinUCB, LinUCB and popularity beat random, and the same
    seed gives a byte-identical JSON report; a task's rows do not depend on which other tasks
    ran; one task with unit task is reported as such, not as a point CI with p = 1; a bad arm
    is refused before any arm plays, and a dry run (check_only) builds every arm and plays
    nothing; the sims run in this process (no client) give the server's JSON report byte for
    byte on every sim.                                                                        */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents/ab/report.h"
#include "agents/ab/runner.h"
#include "tests/policies/server_thread.h"


static void setup (void)
{
  s_server_start ();
}

static void teardown (void)
{
  s_server_stop ();
}

TestSuite (ab_e2e, .init = setup, .fini = teardown, .timeout = 110);

static const char *const ARMS[] = { "random", "popularity", "linucb", "oracle" };
enum { N_ARMS = 4 };

/* Runs the four arms; returns the JSON report (caller frees) and fills *rep. */
static char *s_run (ra_ab_report_t *rep, ra_ab_result_t *res)
{
  ra_ab_arm_t arms[N_ARMS];
  ra_error_t err;
  for (int a = 0; a < N_ARMS; a++)
    cr_assert_eq (ra_ab_arm_parse (ARMS[a], &arms[a], &err), RA_OK, "%s", err.message);
  ra_client_t *c;
  cr_assert_eq (ra_client_new (ra_server_endpoint (S, 0), 30000, &c, &err), RA_OK, "%s", err.message);
  ra_ab_opts_t o = { .env_id = "ECommerce-v1", .split = "test", .tasks = 4, .num_envs = 16,
                     .episodes = 6, .seed = 1 };
  cr_assert_eq (ra_ab_run (c, &o, arms, N_ARMS, res, &err), RA_OK, "%s", err.message);
  ra_ab_report_opts_t ro = { .env_id = o.env_id, .split = o.split, .seed = o.seed,
                             .unit = RA_AB_UNIT_TASK, .bootstrap = 300, .level = 0.95,
                             .control = 0, .credit = "clicked", .curve_k = { 0, 1, 5 }, .n_curve = 3 };
  cr_assert_eq (ra_ab_report_compute (res, &ro, rep, &err), RA_OK);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&buf, &len);
  ra_ab_report_json (res, &ro, rep, f);
  fclose (f);
  ra_client_destroy (&c);
  return buf;
}

Test (ab_e2e, oracle_beats_learners_beat_random_and_reports_are_reproducible)
{
  static ra_ab_report_t rep, rep2;
  ra_ab_result_t res, res2;
  char *json = s_run (&rep, &res);
  double ret[N_ARMS], ctr[N_ARMS];
  for (int a = 0; a < N_ARMS; a++) {
    ret[a] = rep.ci[a][RA_AB_M_RETURN].mean;
    ctr[a] = rep.ci[a][RA_AB_M_CTR].mean;
  }
  cr_log_info ("return: random %.1f popularity %.1f linucb %.1f oracle %.1f", ret[0], ret[1],
               ret[2], ret[3]);
  cr_assert_gt (ret[3], ret[2] + 15, "oracle %.1f vs linucb %.1f", ret[3], ret[2]);
  cr_assert_gt (ret[2], ret[0] + 8, "linucb %.1f vs random %.1f", ret[2], ret[0]);
  cr_assert_gt (ctr[1], ctr[0] + 0.01, "popularity CTR %.3f vs random %.3f", ctr[1], ctr[0]);
  cr_assert_lt (rep.vs[3][RA_AB_M_RETURN].p, 0.05);
  cr_assert (rep.vs[3][RA_AB_M_RETURN].lo > 0);
  /* regret comes from the sim's oracle info and is smallest for the oracle */
  cr_assert (res.has_regret && res.oracle_on);
  cr_assert_lt (rep.ci[3][RA_AB_M_REGRET].mean, 0.2 * rep.ci[0][RA_AB_M_REGRET].mean);
  cr_assert (rep.available[RA_AB_M_COVERAGE] && res.catalog_size == 1000);
  cr_assert_str_eq (res.main_name, "revenue");
  char *json2 = s_run (&rep2, &res2);
  cr_assert_str_eq (json, json2, "the same seed must give the same report");
  cr_assert (strstr (json, "\"schema\": \"recarena-ab/2\""));
  free (json);
  free (json2);
  ra_ab_result_fini (&res);
  ra_ab_result_fini (&res2);
}

Test (ab, arm_spec_name_setting_is_the_display_name_and_not_a_policy_setting)
{
  ra_ab_arm_t arm;
  ra_error_t err;
  cr_assert_eq (ra_ab_arm_parse ("linucb:alpha=0.5:name=ucb", &arm, &err), RA_OK, "%s", err.message);
  cr_assert_str_eq (arm.spec, "ucb");
  cr_assert_eq (arm.n_config, 1);
  cr_assert_str_eq (arm.config[0].key, "alpha");
  cr_assert_eq (ra_ab_arm_parse ("linucb:alpha=0.5", &arm, &err), RA_OK, "%s", err.message);
  cr_assert_str_eq (arm.spec, "linucb:alpha=0.5");
  cr_assert_eq (ra_ab_arm_parse ("nope:name=x", &arm, &err), RA_ERR_BAD_CONFIG);
}

static void s_write (const char *path, const char *text)
{
  FILE *f = fopen (path, "wb");
  cr_assert_not_null (f, "%s", path);
  fputs (text, f);
  fclose (f);
}

/* An arm's streams are keyed by what its files hold, not where they are: a copy of a checkpoint
   in another directory keys the same, other bytes key differently, and a file that cannot be
   read keeps its path (creating the arm reports it); the target arm's init=FILE and init=random
   have the keys of checkpoint=FILE and of no checkpoint. */
Test (ab, arm_key_holds_a_file_settings_bytes_not_its_path)
{
  char dir[] = "/tmp/ra_arm_keyXXXXXX";
  cr_assert_not_null (mkdtemp (dir));
  char a[64], b[64], c[64], spec[256];
  snprintf (a, sizeof a, "%s/a.safetensors", dir);
  snprintf (b, sizeof b, "%s/copy-elsewhere.safetensors", dir);
  snprintf (c, sizeof c, "%s/c.safetensors", dir);
  s_write (a, "the same bytes");
  s_write (b, "the same bytes");
  s_write (c, "other bytes");
  static ra_ab_arm_t arm_a, arm_b, arm_c, arm_p, arm_q;
  ra_error_t err;
  snprintf (spec, sizeof spec, "target:checkpoint=%s:lr=0", a);
  cr_assert_eq (ra_ab_arm_parse (spec, &arm_a, &err), RA_OK, "%s", err.message);
  snprintf (spec, sizeof spec, "target:checkpoint=%s:lr=0:name=copy", b);
  cr_assert_eq (ra_ab_arm_parse (spec, &arm_b, &err), RA_OK, "%s", err.message);
  snprintf (spec, sizeof spec, "target:checkpoint=%s:lr=0", c);
  cr_assert_eq (ra_ab_arm_parse (spec, &arm_c, &err), RA_OK, "%s", err.message);
  cr_expect_str_eq (arm_a.key, arm_b.key);
  cr_expect_str_neq (arm_a.key, arm_c.key);
  cr_expect_null (strstr (arm_a.key, dir), "%s", arm_a.key);
  cr_expect_str_eq (arm_a.config[0].str, a, "the arm still reads the file at its path");
  snprintf (spec, sizeof spec, "metats:prior=%s", a);     /* the meta-TS prior likewise */
  cr_assert_eq (ra_ab_arm_parse (spec, &arm_p, &err), RA_OK, "%s", err.message);
  snprintf (spec, sizeof spec, "metats:prior=%s", b);
  cr_assert_eq (ra_ab_arm_parse (spec, &arm_q, &err), RA_OK, "%s", err.message);
  cr_expect_str_eq (arm_p.key, arm_q.key);
  cr_assert_eq (ra_ab_arm_parse ("target:checkpoint=/nonexistent/x.safetensors", &arm_p, &err), RA_OK);
  cr_expect_str_eq (arm_p.key, "target:checkpoint=/nonexistent/x.safetensors");
  /* init=FILE is checkpoint=FILE and init=random no checkpoint, key and all */
  snprintf (spec, sizeof spec, "target:init=%s:lr=0", b);
  cr_assert_eq (ra_ab_arm_parse (spec, &arm_p, &err), RA_OK, "%s", err.message);
  cr_expect_str_eq (arm_p.key, arm_a.key);
  cr_assert_eq (ra_ab_arm_parse ("target:init=random:lr=0", &arm_p, &err), RA_OK);
  cr_assert_eq (ra_ab_arm_parse ("target:lr=0", &arm_q, &err), RA_OK);
  cr_expect_str_eq (arm_p.key, arm_q.key);
  unlink (a), unlink (b), unlink (c), rmdir (dir);
}

/* A target arm with a long checkpoint path and the bench's keys fits (the first limit, 128
   bytes, refused it); past RA_AB_ARM_SPEC_MAX the error names the limit. */
Test (ab, arm_spec_holds_a_long_checkpoint_path_and_refuses_past_its_limit)
{
  static ra_ab_arm_t arm;
  ra_error_t err;
  char spec[2 * RA_AB_ARM_SPEC_MAX], dir[301];
  memset (dir, 'd', 300), dir[300] = 0;
  snprintf (spec, sizeof spec, "linucb:note=/work/%s/reptile.safetensors:alpha=0.5:name=reptile_1e-2", dir);
  cr_assert_eq (ra_ab_arm_parse (spec, &arm, &err), RA_OK, "%s", err.message);
  cr_assert_str_eq (arm.spec, "reptile_1e-2");
  cr_assert_eq (arm.n_config, 2);
  cr_assert_str_eq (arm.config[1].key, "alpha");
  memset (spec, 'a', sizeof spec - 1), spec[sizeof spec - 1] = 0;
  memcpy (spec, "linucb:x=", 9);
  cr_assert_eq (ra_ab_arm_parse (spec, &arm, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "at most 1023"), "%s", err.message);
}

/* Runs arms on the given test task ids; returns the JSON (caller frees). */
static char *s_run_ids (const char *const *specs, int n_arms, const int64_t *ids, int n_ids,
                        ra_ab_unit_t unit, ra_ab_result_t *res, ra_ab_report_t *rep)
{
  ra_ab_arm_t arms[4];
  ra_error_t err;
  for (int a = 0; a < n_arms; a++)
    cr_assert_eq (ra_ab_arm_parse (specs[a], &arms[a], &err), RA_OK, "%s", err.message);
  ra_client_t *c;
  cr_assert_eq (ra_client_new (ra_server_endpoint (S, 0), 30000, &c, &err), RA_OK, "%s", err.message);
  ra_ab_opts_t o = { .env_id = "ECommerce-v1", .split = "test", .tasks = n_ids, .task_ids = ids,
                     .num_envs = 6, .episodes = 3, .seed = 5 };
  cr_assert_eq (ra_ab_run (c, &o, arms, n_arms, res, &err), RA_OK, "%s", err.message);
  ra_client_destroy (&c);
  ra_ab_report_opts_t ro = { .env_id = o.env_id, .split = o.split, .seed = o.seed, .unit = unit,
                             .bootstrap = 200, .level = 0.95, .control = 0, .credit = "clicked",
                             .curve_k = { 0, 2 }, .n_curve = 2 };
  cr_assert_eq (ra_ab_report_compute (res, &ro, rep, &err), RA_OK);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&buf, &len);
  ra_ab_report_json (res, &ro, rep, f);
  fclose (f);
  return buf;
}

/* One run of env on c (NULL: the sims in this process) with learning and oracle arms, frozen
   episodes and a time limit; the JSON report (caller frees). */
static char *s_run_on (ra_client_t *c, const char *env)
{
  static const char *const specs[] = { "random", "linucb", "lints:credit=metric", "oracle",
                                       "target:lr=1e-2:temp=0.5:rollout=4:hidden=16" };
  enum { n = 5 };
  ra_ab_arm_t arms[n];
  ra_error_t err;
  for (int a = 0; a < n; a++)
    cr_assert_eq (ra_ab_arm_parse (specs[a], &arms[a], &err), RA_OK, "%s", err.message);
  int64_t ids[2] = { 3, 8 };
  ra_kv_t cfg[1] = { { .key = "hidden_tastes", .type = RA_KV_NUM, .num = 1 } };
  ra_ab_opts_t o = { .env_id = env, .split = "test", .tasks = 2, .task_ids = ids, .num_envs = 4,
                     .episodes = 3, .frozen_episodes = 1, .seed = 5, .config = cfg, .n_config = 1,
                     .max_episode_steps = 40, .credit = RA_AB_CREDIT_CLICKED };
  ra_ab_result_t res;
  cr_assert_eq (ra_ab_run (c, &o, arms, n, &res, &err), RA_OK, "%s: %s", env, err.message);
  ra_ab_report_opts_t ro = { .env_id = env, .split = o.split, .seed = o.seed, .unit = RA_AB_UNIT_TASK,
                             .bootstrap = 100, .level = 0.95, .control = 0, .credit = "clicked",
                             .curve_k = { 0, 1, 2 }, .n_curve = 3 };
  static ra_ab_report_t rep;
  cr_assert_eq (ra_ab_report_compute (&res, &ro, &rep, &err), RA_OK);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&buf, &len);
  ra_ab_report_json (&res, &ro, &rep, f);
  fclose (f);
  ra_ab_result_fini (&res);
  return buf;
}

Test (ab_e2e, the_sims_in_process_give_the_servers_report_byte_for_byte)
{
  static const char *const sims[] = { "ECommerce-v1", "Ads-v1", "News-v1", "Content-v1" };
  ra_client_t *c;
  ra_error_t err;
  cr_assert_eq (ra_client_new (ra_server_endpoint (S, 0), 30000, &c, &err), RA_OK, "%s", err.message);
  for (int i = 0; i < 4; i++) {
    char *remote = s_run_on (c, sims[i]), *local = s_run_on (NULL, sims[i]);
    cr_assert_str_eq (local, remote, "%s: the in-process report differs from the server's", sims[i]);
    free (remote);
    free (local);
  }
  ra_client_destroy (&c);
}

Test (ab_e2e, a_tasks_rows_equal_a_separate_single_task_run)
{
  static const char *const specs[] = { "random", "lints", "popularity" };
  static ra_ab_report_t rep_all, rep_one;
  ra_ab_result_t all, one;
  int64_t ids[3] = { 4, 9, 1 }, only[1] = { 9 };
  char *j_all = s_run_ids (specs, 3, ids, 3, RA_AB_UNIT_TASK, &all, &rep_all);
  char *j_one = s_run_ids (specs, 3, only, 1, RA_AB_UNIT_TASK, &one, &rep_one);
  for (int a = 0; a < 3; a++) {
    for (int m = 0; m < RA_AB_M_COUNT; m++)
      if (rep_all.available[m])
        cr_assert_eq (ra_ab_task_value (&all, a, 1, m), ra_ab_task_value (&one, a, 0, m),
                      "%s metric %d", specs[a], m);
    for (int i = 0; i < all.num_envs; i++)
      for (int e = 0; e < all.episodes; e++)
        cr_assert_eq (ra_ab_ep_return (&all, a, 1, i)[e], ra_ab_ep_return (&one, a, 0, i)[e]);
  }
  /* the JSON carries the same per-task row for task 9 in both runs */
  const char *row_all = strstr (j_all, "{\"task\": 9,"), *row_one = strstr (j_one, "{\"task\": 9,");
  cr_assert (row_all && row_one);
  cr_assert_eq (strcspn (row_all, "}"), strcspn (row_one, "}"));
  cr_assert_eq (strncmp (row_all, row_one, strcspn (row_all, "}")), 0);
  cr_assert (strstr (j_all, "\"task_ids\": [4, 9, 1]"));
  bool few = false;   /* 3 task units: the report says the bootstrap is unreliable */
  for (int i = 0; i < rep_all.n_warnings; i++)
    few |= strstr (rep_all.warnings[i], "only 3 task units") != NULL;
  cr_assert (few, "3 units must be warned about");
  free (j_all);
  free (j_one);
  ra_ab_result_fini (&all);
  ra_ab_result_fini (&one);
}

Test (ab_e2e, one_task_with_unit_task_warns_instead_of_a_point_ci)
{
  static const char *const specs[] = { "random", "oracle" };
  static ra_ab_report_t rep;
  ra_ab_result_t res;
  int64_t only[1] = { 2 };
  char *json = s_run_ids (specs, 2, only, 1, RA_AB_UNIT_TASK, &res, &rep);
  cr_assert_eq (rep.units, 1);
  cr_assert_gt (rep.vs[1][RA_AB_M_RETURN].diff, 5, "the oracle is better on the task");
  cr_assert (isnan (rep.vs[1][RA_AB_M_RETURN].p), "p must not be reported for one unit");
  cr_assert (isnan (rep.ci[1][RA_AB_M_RETURN].lo));
  cr_assert_geq (rep.n_warnings, 1);
  cr_assert (strstr (rep.warnings[0], "only 1 task unit"), "%s", rep.warnings[0]);
  cr_assert (strstr (json, "\"degenerate\": \"one_unit\""));
  cr_assert (strstr (json, "only 1 task unit"));
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&buf, &len);
  ra_ab_report_opts_t ro = { .env_id = "ECommerce-v1", .split = "test", .seed = 5,
                             .unit = RA_AB_UNIT_TASK, .bootstrap = 200, .level = 0.95,
                             .control = 0, .credit = "clicked", .curve_k = { 0, 2 }, .n_curve = 2 };
  ra_ab_report_table (&res, &ro, &rep, f);
  fclose (f);
  cr_assert (strstr (buf, "warning: only 1 task unit"), "%s", buf);
  free (buf);
  free (json);
  ra_ab_result_fini (&res);
  /* the same task with unit env has units to resample: no one-unit warning */
  json = s_run_ids (specs, 2, only, 1, RA_AB_UNIT_ENV, &res, &rep);
  cr_assert_eq (rep.units, 6);
  cr_assert (isfinite (rep.vs[1][RA_AB_M_RETURN].p));
  for (int i = 0; i < rep.n_warnings; i++)
    cr_assert_null (strstr (rep.warnings[i], "only 1"), "%s", rep.warnings[i]);
  free (json);
  ra_ab_result_fini (&res);
}

Test (ab_e2e, windows_are_means_of_r_at_k_and_auc_is_the_whole_curve)
{
  static const char *const specs[] = { "random", "linucb" };
  static ra_ab_report_t rep;
  ra_ab_result_t res;
  int64_t ids[3] = { 0, 1, 2 };
  ra_ab_arm_t arms[2];
  ra_error_t err;
  for (int a = 0; a < 2; a++)
    cr_assert_eq (ra_ab_arm_parse (specs[a], &arms[a], &err), RA_OK, "%s", err.message);
  ra_client_t *c;
  cr_assert_eq (ra_client_new (ra_server_endpoint (S, 0), 30000, &c, &err), RA_OK, "%s", err.message);
  ra_ab_opts_t o = { .env_id = "ECommerce-v1", .split = "test", .tasks = 3, .task_ids = ids,
                     .num_envs = 4, .episodes = 6, .seed = 2 };
  cr_assert_eq (ra_ab_run (c, &o, arms, 2, &res, &err), RA_OK, "%s", err.message);
  ra_client_destroy (&c);
  for (int unit = 0; unit < 2; unit++) {
    ra_ab_report_opts_t ro = { .env_id = o.env_id, .split = o.split, .seed = o.seed,
                               .unit = unit ? RA_AB_UNIT_ENV : RA_AB_UNIT_TASK, .bootstrap = 200,
                               .level = 0.95, .control = 0, .credit = "clicked",
                               .win_from = { 1, 2 }, .win_to = { 3, 5 }, .n_win = 2 };
    cr_assert_eq (ra_ab_report_compute (&res, &ro, &rep, &err), RA_OK, "%s", err.message);
    cr_assert_eq (rep.n_win, 3);
    cr_assert_str_eq (rep.win_name[0], "R@2w");
    cr_assert_str_eq (rep.win_name[1], "R@2-5");
    cr_assert_str_eq (rep.win_name[2], "auc");
    cr_assert (rep.win_from[2] == 0 && rep.win_to[2] == 5);
    for (int a = 0; a < 2; a++) {
      /* by hand: the mean over units of the mean of R@1..R@3 */
      double s = 0;
      int units = 0;
      for (int t = 0; t < 3; t++)
        for (int i = 0; i < 4; i++) {
          const double *ep = ra_ab_ep_return (&res, a, t, i);
          s += (ep[1] + ep[2] + ep[3]) / 3;
          units++;
        }
      cr_assert_float_eq (rep.win[a][0].mean, s / units, 1e-9 * (1 + s / units));
      cr_assert_eq (rep.win[a][0].n, unit ? 12 : 3);
      /* the area under R@K per episode is the return per session over all episodes */
      cr_assert_float_eq (rep.win[a][2].mean, rep.ci[a][RA_AB_M_RETURN].mean,
                          1e-9 * rep.ci[a][RA_AB_M_RETURN].mean);
      cr_assert (rep.win[a][0].lo < rep.win[a][0].mean && rep.win[a][0].mean < rep.win[a][0].hi);
    }
    cr_assert_float_eq (rep.win_vs[1][1].diff, rep.win[1][1].mean - rep.win[0][1].mean, 1e-6);
    for (int t = 0; t < 3; t++)
      cr_assert_float_eq (ra_ab_task_window (&res, 1, t, 0, 5), ra_ab_task_value (&res, 1, t, RA_AB_M_RETURN),
                          1e-6);
  }
  ra_ab_report_opts_t bad = { .env_id = o.env_id, .split = o.split, .seed = 1, .bootstrap = 10,
                              .level = 0.95, .credit = "clicked", .win_from = { 3 }, .win_to = { 6 },
                              .n_win = 1 };
  cr_assert_eq (ra_ab_report_compute (&res, &bad, &rep, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "window 3-6"), "%s", err.message);
  ra_ab_result_fini (&res);
}

static void s_count_progress (void *ud, const char *arm, int task, double done, double total)
{
  (void) arm, (void) task, (void) done, (void) total;
  (*(int *) ud)++;
}

Test (ab_e2e, a_bad_arm_is_refused_before_any_arm_plays)
{
  /* the third arm is fine on test:0 but its checkpoint is missing; the second has a bad key */
  const char *specs[][3] = { { "random", "linucb", "target:nosuch=1" },
                             { "random", "linucb", "target:checkpoint=/nonexistent/t.safetensors" } };
  const char *want[] = { "arm 'target:nosuch=1' on task test:5: target: unknown config key 'nosuch'",
                         "arm 'target:checkpoint=/nonexistent/t.safetensors' on task test:5: " };
  ra_client_t *c;
  ra_error_t err;
  cr_assert_eq (ra_client_new (ra_server_endpoint (S, 0), 30000, &c, &err), RA_OK, "%s", err.message);
  for (int j = 0; j < 2; j++) {
    ra_ab_arm_t arms[3];
    for (int a = 0; a < 3; a++)
      cr_assert_eq (ra_ab_arm_parse (specs[j][a], &arms[a], &err), RA_OK, "%s", err.message);
    int64_t ids[] = { 5, 6 };
    int played = 0;
    ra_ab_opts_t o = { .env_id = "ECommerce-v1", .split = "test", .tasks = 2, .task_ids = ids,
                       .num_envs = 4, .episodes = 2, .seed = 1, .progress = s_count_progress,
                       .progress_ud = &played };
    ra_ab_result_t res;
    cr_assert_neq (ra_ab_run (c, &o, arms, 3, &res, &err), RA_OK);
    cr_assert (strstr (err.message, want[j]), "message: %s", err.message);
    cr_assert_eq (played, 0, "%d arm-task runs played before the bad arm was refused", played);
  }
  ra_client_destroy (&c);
}

static ra_err_t s_count_hook (void *ud, int arm, int64_t task_id, ra_policy_t *pol, bool end,
                              ra_error_t *err)
{
  (void) arm, (void) task_id, (void) pol, (void) end, (void) err;
  (*(int *) ud)++;
  return RA_OK;
}

Test (ab_e2e, check_only_builds_every_arm_and_plays_nothing)
{
  /* 2^24 episodes: a run would allocate and play for hours; the dry run neither */
  const char *good[] = { "random", "linucb:alpha=0.5", "target:lr=0.01" };
  const char *bad[] = { "random", "linucb:alpha=abc", "target:lr=0.01" };
  const char *const *specs[] = { good, bad };
  ra_client_t *c;
  ra_error_t err;
  cr_assert_eq (ra_client_new (ra_server_endpoint (S, 0), 30000, &c, &err), RA_OK, "%s", err.message);
  for (int j = 0; j < 2; j++) {
    ra_ab_arm_t arms[3];
    for (int a = 0; a < 3; a++)
      cr_assert_eq (ra_ab_arm_parse (specs[j][a], &arms[a], &err), RA_OK, "%s", err.message);
    int64_t ids[] = { 3, 9 };
    int played = 0, hooked = 0;
    ra_ab_opts_t o = { .env_id = "ECommerce-v1", .split = "test", .tasks = 2, .task_ids = ids,
                       .num_envs = 4, .episodes = 1 << 24, .seed = 1, .check_only = true,
                       .progress = s_count_progress, .progress_ud = &played,
                       .arm_hook = s_count_hook, .arm_hook_ud = &hooked };
    ra_ab_result_t res;
    ra_err_t rc = ra_ab_run (c, &o, arms, 3, &res, &err);
    cr_assert_eq (played + hooked, 0, "%d progress and %d hook calls in a dry run", played, hooked);
    if (j == 0) {
      cr_assert_eq (rc, RA_OK, "%s", err.message);
      cr_assert (res.arms == 3 && res.tasks == 2 && res.task_ids[0] == 3 && res.task_ids[1] == 9);
      cr_assert (!res.cells && !res.ep_return && !res.distinct, "a dry run allocated results");
      ra_ab_result_fini (&res);
    } else {
      cr_assert_eq (rc, RA_ERR_BAD_CONFIG);
      cr_assert (strstr (err.message, "arm 'linucb:alpha=abc' on task test:3: arm setting 'alpha'"),
                 "message: %s", err.message);
    }
  }
  ra_client_destroy (&c);
}
