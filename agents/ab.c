/*  agents/ab.c - recarena-ab: runs arms on the same tasks, users and episode starts and reports
    per-arm metrics with bootstrap CIs, paired tests against a control, learning curves R@K, R@K
    windows and the area under R@K, overall and per task (docs/agents.md section 2). Without
    --address the sims run in this process (env/local: no server, no message; the same numbers
    as through a server).

    usage: recarena-ab [--env ECommerce-v1] [--arms random,popularity,linucb,oracle]
             [--control random] [--task-ids test:0-7 | --split test --tasks 8] [--num-envs 32]
             [--episodes N] [--frozen-episodes 0] [--seed 1] [--config key=value]...
             [--curve-episodes 0,1,2,5,10,20] [--windows 3-7] [--unit task|env] [--bootstrap 2000] [--credit clicked|metric]
             [--max-episode-steps N] [--address EP | --threads N]
             [--json FILE] [--csv FILE] [--quiet] [--check] [--list-arms]
           recarena-ab --learn-prior FILE --arms metats:prior=none[:...] --task-ids train:0-63 ...
    The second form learns a Meta-TS prior on the tasks (docs/agents.md 1.9) instead of a report.
    --check is a dry run of either form: every check a run makes before its first episode, then
    one line on stdout; nothing is played or written.                                          */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agents/ab/learn_prior.h"
#include "agents/ab/report.h"
#include "agents/ab/runner.h"
#include "agents/outpath.h"
#include "agents/policies/registry.h"
#include "agents/policies/taskset.h"
#include "common/duration.h"
#include "common/kv.h"

static void s_usage (FILE *f)
{
  fputs ("usage: recarena-ab [options]\n"
         "Runs arms on the same tasks and seeds (common random numbers) and reports per-arm\n"
         "metrics with 95% bootstrap CIs and a paired test against the control arm.\n"
         "  --env ID                simulator (default ECommerce-v1)\n"
         "  --arms LIST             comma list of arms, each class[:key=value...]; name=LABEL sets\n"
         "                          the display name and credit=clicked|metric the arm's per-slot\n"
         "                          credit (default random,popularity,linucb,oracle;\n"
         "                          e.g. target:checkpoint=t.safetensors:name=target)\n"
         "  --control ARM           arm the others are compared with (default random; added if absent)\n"
         "  --task-ids SET          tasks to run: SPLIT:A-B, SPLIT:I,J,K or SPLIT:all (SPLIT train,\n"
         "                          val, test or ood; all = 1024 train, 64 of the others);\n"
         "                          default test:0-7\n"
         "  --split S, --tasks N    the same as --task-ids S:0-(N-1) (not with --task-ids)\n"
         "  --num-envs N            users per task, all feeding one learner (default 32)\n"
         "  --episodes N            episodes per user (default: largest curve K + 1)\n"
         "  --frozen-episodes N     then N more episodes per user with learning frozen (greedy):\n"
         "                          the adapted policy on fresh users, reported as 'frozen' (default 0)\n"
         "  --curve-episodes LIST   K values of the learning curves R@K (default 0,1,2,5,10,20)\n"
         "  --windows LIST          R@K windows A-B, each reported as the mean of R@A..R@B\n"
         "                          (default 3-7, 'R@5w', when the run is long enough; 'none');\n"
         "                          the area under R@K (auc) is always reported\n"
         "  --unit task|env         bootstrap unit: tasks (conservative, default) or users\n"
         "  --bootstrap B           bootstrap resamples (default 2000)\n"
         "  --credit clicked|metric per-slot credit the bandits learn from, for arms without their\n"
         "                          own credit= setting (default clicked; e.g. lints:credit=metric)\n"
         "  --config KEY=VALUE      simulator config, repeatable\n"
         "  --max-episode-steps N   truncation limit (default: the simulator's)\n"
         "  --seed N                seed of tasks' users and of the arms (default 1)\n"
         "  --address EP            server to use (default: the sims run in this process)\n"
         "  --threads N             tasks played at once, each thread on its own sims in this\n"
         "                          process; the same numbers for any N (default: the CPUs\n"
         "                          online, at most the tasks; 1 with --address or --learn-prior)\n"
         "  --json FILE, --csv FILE write the report (plot the JSON: python -m recarena.plots)\n"
         "  --quiet                 no progress lines on stderr\n"
         "  --check                 a dry run: the checks a run makes before its first episode\n"
         "                          (flags, tasks, output paths, the sim, every arm built on every\n"
         "                          task), then one line on stdout and exit 0; else the run's\n"
         "                          error (exit 2 for a bad setting). Plays no episode and writes\n"
         "                          no --json, --csv or --learn-prior file\n"
         "  --list-arms             list the arms and exit\n"
         "  --learn-prior FILE      instead of a report: play the one arm of --arms, a metats arm\n"
         "                          (metats:prior=none[:v=0.5:sigma0=0.5:sigma_q=1]), on the tasks\n"
         "                          in order, learning its hyper-posterior (Meta-TS), and write it\n"
         "                          to FILE for metats:prior=FILE (e.g. --task-ids train:0-63)\n", f);
}

static double s_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

typedef struct {
  double start, last;
  int tasks;
} s_progress_t;

static void s_progress (void *ud, const char *arm, int task, double done, double total)
{
  s_progress_t *p = ud;
  double now = s_now ();
  if (now - p->last < 0.5 && done < total)
    return;
  p->last = now;
  double el = now - p->start;
  char elapsed[32], eta[32];
  ra_fmt_duration (el, elapsed, sizeof elapsed);
  ra_fmt_duration (done > 0 ? el * (total - done) / done : -1, eta, sizeof eta);
  fprintf (stderr, "[ab] arm %-16s task %d/%d  episodes %.0f/%.0f  elapsed %s  ETA %s\n",
           arm, task + 1, p->tasks, done, total, elapsed, eta);
}

/* v as an integer in [lo, hi]; otherwise says what was wrong on stderr and sets *bad. */
static int s_int (const char *flag, const char *v, int lo, int hi, bool *bad)
{
  long long x = lo;
  ra_error_t err;
  if (ra_kv_parse_int ("value", v, lo, hi, &x, &err) != RA_OK) {
    fprintf (stderr, "recarena-ab: %s: %s\n", flag, err.message);
    *bad = true;
  }
  return (int) x;
}

/* --learn-prior: learns the hyper-posterior, writes it and prints a summary. Exit status. */
static int s_learn (ra_client_t *c, const ra_ab_opts_t *o, const ra_ab_arm_t *arm, const char *tasks,
                    const char *path, bool quiet, double start)
{
  ra_metats_prior_t q;
  ra_ab_result_t res;
  ra_error_t err;
  if (ra_ab_learn_prior (c, o, arm, tasks, &q, &res, &err) != RA_OK) {
    fprintf (stderr, "recarena-ab: %s: %s\n", ra_err_code (err.code), err.message);
    return err.code == RA_ERR_BAD_CONFIG ? 2 : 1;
  }
  int rc = 0, D = q.D;
  double *mean = malloc ((size_t) D * sizeof *mean), *cov = malloc ((size_t) D * D * sizeof *cov);
  if (!mean || !cov || ra_metats_prior_mean (&q, mean, cov, &err) != RA_OK
      || ra_metats_prior_save (&q, path, &err) != RA_OK) {
    fprintf (stderr, "recarena-ab: %s\n", mean && cov ? err.message : "out of memory");
    rc = 1;
  } else {
    double norm = 0, var = 0, first = 0, last = 0;
    for (int j = 0; j < D; j++) {
      norm += mean[j] * mean[j];
      var += cov[(size_t) j * D + j];
    }
    int half = res.tasks / 2 > 0 ? res.tasks / 2 : 1;   /* return per session, first and last half */
    for (int t = 0; t < res.tasks; t++)
      for (int i = 0; i < res.num_envs; i++) {
        const ra_ab_cell_t *cell = ra_ab_cell (&res, 0, t, i);
        double r = cell->reward / ((double) res.episodes * res.tasks * res.num_envs);
        first += t < half ? r * res.tasks / half : 0;
        last += t >= res.tasks - half ? r * res.tasks / half : 0;
      }
    printf ("metats prior: %s on %s, %lld tasks (%s), credit %s, D = %d, v %g, sigma0 %g, sigma_q %g\n"
            "  |mu_hat| = %.4g, rms sd of mu = %.4g; return/session over the first %d tasks %.4g, "
            "the last %d %.4g\n  written to %s\n", arm->spec, q.env_id, (long long) q.n_tasks, tasks,
            q.credit, D, q.v, q.sigma0, q.sigma_q, sqrt (norm), sqrt (var / D), half, first, half,
            last, path);
    if (!quiet)
      fprintf (stderr, "[ab] learnt in %.1fs\n", s_now () - start);
  }
  free (mean);
  free (cov);
  ra_metats_prior_fini (&q);
  ra_ab_result_fini (&res);
  return rc;
}

/* The exit status of a failed run or check: 2 for a bad configuration (an arm setting, a flag the
   runner refused), as for a bad flag; 1 for the rest (the server, a file, memory). */
static int s_failed (const ra_error_t *err)
{
  fprintf (stderr, "recarena-ab: %s: %s\n", ra_err_code (err->code), err->message);
  return err->code == RA_ERR_BAD_CONFIG ? 2 : 1;
}

/* --check: by now the flags, tasks and output paths have passed; the runner makes the env, probes
   it and builds every arm for every task, then stops before any episode. One line says what
   passed. Exit status. */
static int s_check (ra_client_t *c, const ra_ab_opts_t *opts, const ra_ab_arm_t *arms, int n_arms,
                    const char *tasks_text)
{
  ra_ab_opts_t o = *opts;
  o.check_only = true;
  ra_ab_result_t res;
  ra_error_t err;
  if (ra_ab_run (c, &o, arms, n_arms, &res, &err) != RA_OK)
    return s_failed (&err);
  printf ("check: %d arm%s x %d task%s (%s) on %s OK; nothing played\n", n_arms,
          n_arms == 1 ? "" : "s", res.tasks, res.tasks == 1 ? "" : "s", tasks_text, o.env_id);
  ra_ab_result_fini (&res);
  return 0;
}

static int s_main (int argc, char **argv, ra_kv_list_t *config);

int main (int argc, char **argv)
{
  ra_kv_list_t config;   /* --config settings, owned here so every exit path frees them */
  ra_kv_list_init (&config);
  int rc = s_main (argc, argv, &config);
  ra_kv_list_fini (&config);
  return rc;
}

static int s_main (int argc, char **argv, ra_kv_list_t *config)
{
  const char *env_id = "ECommerce-v1", *arms_s = "random,popularity,linucb,oracle";
  const char *control_s = "random", *split = "test", *address = NULL, *json = NULL, *csv = NULL;
  const char *task_ids_s = NULL;
  bool split_given = false, tasks_given = false;
  const char *curve_s = "0,1,2,5,10,20", *unit_s = "task", *credit_s = "clicked";
  const char *windows_s = NULL, *learn_path = NULL;
  int tasks = 8, num_envs = 32, episodes = 0, bootstrap = 2000, mes = 0, frozen = 0, threads = 0;
  unsigned long long seed = 1;
  bool quiet = false, bad = false, check = false;
  ra_error_t err;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp (a, "--quiet"))
      quiet = true;
    else if (!strcmp (a, "--check"))
      check = true;
    else if (!strcmp (a, "--list-arms")) {
      int n;
      const ra_policy_class_t *const *all = ra_policies_all (&n);
      for (int j = 0; j < n; j++)
        printf ("%-14s %s\n", all[j]->name, all[j]->description);
      return 0;
    } else if (!strcmp (a, "--help") || !strcmp (a, "-h")) {
      s_usage (stdout);
      return 0;
    } else if (!v) {
      s_usage (stderr);
      return 2;
    } else {
      i++;
      if (!strcmp (a, "--env"))
        env_id = v;
      else if (!strcmp (a, "--arms"))
        arms_s = v;
      else if (!strcmp (a, "--control"))
        control_s = v;
      else if (!strcmp (a, "--split")) {
        split = v;
        split_given = true;
      } else if (!strcmp (a, "--tasks")) {
        tasks = s_int (a, v, 1, 1 << 20, &bad);
        tasks_given = true;
      } else if (!strcmp (a, "--task-ids"))
        task_ids_s = v;
      else if (!strcmp (a, "--num-envs"))
        num_envs = s_int (a, v, 1, 1 << 20, &bad);
      else if (!strcmp (a, "--episodes"))
        episodes = s_int (a, v, 0, 1 << 24, &bad);
      else if (!strcmp (a, "--frozen-episodes"))
        frozen = s_int (a, v, 0, 1 << 20, &bad);
      else if (!strcmp (a, "--seed")) {
        long long x = 0;
        if (ra_kv_parse_int ("value", v, 0, LLONG_MAX, &x, &err) != RA_OK) {
          fprintf (stderr, "recarena-ab: --seed: %s\n", err.message);
          return 2;
        }
        seed = (unsigned long long) x;
      } else if (!strcmp (a, "--bootstrap"))
        bootstrap = s_int (a, v, 1, 1 << 24, &bad);
      else if (!strcmp (a, "--max-episode-steps"))
        mes = s_int (a, v, 0, 1 << 30, &bad);
      else if (!strcmp (a, "--address"))
        address = v;
      else if (!strcmp (a, "--threads"))
        threads = s_int (a, v, 1, 1024, &bad);
      else if (!strcmp (a, "--json"))
        json = v;
      else if (!strcmp (a, "--csv"))
        csv = v;
      else if (!strcmp (a, "--curve-episodes"))
        curve_s = v;
      else if (!strcmp (a, "--windows"))
        windows_s = v;
      else if (!strcmp (a, "--unit"))
        unit_s = v;
      else if (!strcmp (a, "--credit"))
        credit_s = v;
      else if (!strcmp (a, "--learn-prior"))
        learn_path = v;
      else if (!strcmp (a, "--config")) {
        if (ra_kv_list_parse (config, v, &err) != RA_OK) {
          fprintf (stderr, "recarena-ab: --config: %s\n", err.message);
          return 2;
        }
      } else {
        fprintf (stderr, "recarena-ab: unknown option '%s'\n", a);
        s_usage (stderr);
        return 2;
      }
      if (bad)
        return 2;
    }
  }
  if (tasks < 1 || num_envs < 1 || bootstrap < 1 || episodes < 0) {
    fprintf (stderr, "--tasks, --num-envs and --bootstrap must be positive\n");
    return 2;
  }
  if (threads > 1 && (address || learn_path)) {
    fprintf (stderr, "recarena-ab: --threads %d: %s\n", threads,
             address ? "threads play the sims in this process; with --address one server session "
                       "plays every task (leave --threads out)"
                     : "--learn-prior learns from the tasks in order, on one thread (leave --threads "
                       "out)");
    return 2;
  }
  if (threads == 0) {   /* the default: every CPU, unless the run drives one server session */
    long cpus = sysconf (_SC_NPROCESSORS_ONLN);
    threads = address || learn_path || cpus < 1 ? 1 : cpus > 1024 ? 1024 : (int) cpus;
  }
  /* the tasks: one parser for every task flag (docs/agents.md 2.7) */
  if (task_ids_s && (split_given || tasks_given)) {
    fprintf (stderr, "--task-ids names the split and the ids; do not combine it with --split or "
             "--tasks\n");
    return 2;
  }
  char tasks_buf[64];
  if (!task_ids_s) {
    snprintf (tasks_buf, sizeof tasks_buf, "%s:0-%d", split, tasks - 1);
    task_ids_s = tasks_buf;
  }
  static ra_taskset_t ts;
  if (ra_taskset_parse (task_ids_s == tasks_buf ? "--split/--tasks" : "--task-ids", task_ids_s, &ts,
                        &err) != RA_OK) {
    fprintf (stderr, "%s\n", err.message);
    return 2;
  }
  split = ts.split;
  tasks = ts.n;
  char tasks_text[256];
  ra_taskset_format (&ts, tasks_text, sizeof tasks_text);
  if (strcmp (unit_s, "task") && strcmp (unit_s, "env")) {
    fprintf (stderr, "--unit is task or env, got '%s'\n", unit_s);
    return 2;
  }
  if (strcmp (credit_s, "clicked") && strcmp (credit_s, "metric")) {
    fprintf (stderr, "--credit is clicked or metric, got '%s'\n", credit_s);
    return 2;
  }
  /* curve K values */
  ra_ab_report_opts_t ro = {
    .env_id = env_id, .split = split, .tasks_text = tasks_text, .seed = seed,
    .config = config->items, .n_config = config->n,
    .unit = unit_s[0] == 't' ? RA_AB_UNIT_TASK : RA_AB_UNIT_ENV, .bootstrap = bootstrap,
    .level = 0.95, .credit = credit_s,
  };
  int want[RA_AB_MAX_CURVE], n_want = 0, max_k = 0;
  for (const char *p = curve_s; *p;) {
    char *end;
    long k = strtol (p, &end, 10);
    bool twice = false;   /* a K listed twice would be two rows of one curve point */
    for (int j = 0; j < n_want; j++)
      twice |= want[j] == k;
    if (end == p || k < 0 || k > 100000 || n_want == RA_AB_MAX_CURVE || twice || (*end && *end != ',')
        || (*end == ',' && !end[1])) {
      fprintf (stderr, "--curve-episodes takes a comma list of at most %d distinct K in 0..100000, got "
               "'%.200s'\n", RA_AB_MAX_CURVE, curve_s);
      return 2;
    }
    want[n_want++] = (int) k;
    max_k = k > max_k ? (int) k : max_k;
    p = *end == ',' ? end + 1 : end;
  }
  if (episodes == 0)
    episodes = max_k + 1;
  for (int j = 0; j < n_want; j++)
    if (want[j] < episodes)
      ro.curve_k[ro.n_curve++] = want[j];
    else if (!learn_path)
      fprintf (stderr, "[ab] R@%d dropped: only %d episodes per task\n", want[j], episodes);
  /* R@K windows: explicit ones must fit the episodes; the default one is dropped silently */
  const char *wins = windows_s ? windows_s : "3-7";
  for (const char *p = wins; strcmp (wins, "none") && *p;) {
    char *end;
    long from = strtol (p, &end, 10), to = -1;
    if (end != p && *end == '-') {
      const char *b = end + 1;
      to = strtol (b, &end, 10);
      if (end == b)   /* "3-": no B */
        to = -1;
    }
    if (from < 0 || to < from || (*end && *end != ',') || ro.n_win == RA_AB_MAX_WINDOWS) {
      fprintf (stderr, "--windows takes a comma list of A-B with 0 <= A <= B (at most %d) or "
               "'none', got '%s'\n", RA_AB_MAX_WINDOWS, wins);
      return 2;
    }
    if (to < episodes) {
      ro.win_from[ro.n_win] = (int) from;
      ro.win_to[ro.n_win++] = (int) to;
    } else if (windows_s) {
      fprintf (stderr, "[ab] window %ld-%ld dropped: only %d episodes per task\n", from, to, episodes);
    }
    p = *end == ',' ? end + 1 : end;
  }
  /* a long run should not end in a path it cannot write */
  const char *out_flags[] = { "--json", "--csv", "--learn-prior" }, *out_paths[] = { json, csv, learn_path };
  for (int j = 0; j < 3; j++)
    if (out_paths[j] && ra_outpath_check (out_flags[j], out_paths[j], &err) != RA_OK) {
      fprintf (stderr, "%s\n", err.message);
      return 2;
    }
  /* arms; --control names a listed arm by its spec or its display name, else it is parsed and
     added first */
  static ra_ab_arm_t arms[RA_AB_MAX_ARMS];
  int n_arms = 1, control = -1;  /* slot 0 is kept for an unlisted control */
  char *list = strdup (arms_s), *save = NULL;
  for (char *tok = strtok_r (list, ",", &save); tok; tok = strtok_r (NULL, ",", &save)) {
    if (n_arms == RA_AB_MAX_ARMS) {
      fprintf (stderr, "at most %d arms\n", RA_AB_MAX_ARMS - 1);
      free (list);
      return 2;
    }
    bool is_control = !strcmp (tok, control_s);  /* before parsing, which may cut tok up */
    if (ra_ab_arm_parse (tok, &arms[n_arms], &err) != RA_OK) {
      fprintf (stderr, "--arms: %s\n", err.message);
      free (list);
      return 2;
    }
    if (control < 0 && (is_control || !strcmp (arms[n_arms].spec, control_s)))
      control = n_arms;
    n_arms++;
  }
  free (list);
  if (n_arms == 1) {
    fprintf (stderr, "--arms '%s' lists no arm (e.g. --arms random,linucb; see --list-arms)\n", arms_s);
    return 2;
  }
  for (int a = 1; a < n_arms; a++)   /* the report, its JSON and recarena.compare tell arms by name */
    for (int b = 1; b < a; b++)
      if (!strcmp (arms[a].spec, arms[b].spec)) {
        fprintf (stderr, "--arms: two arms are named '%s'; give one of them name=LABEL\n", arms[a].spec);
        return 2;
      }
  int first = 0;
  if (learn_path) {   /* one metats arm; no control */
    if (n_arms != 2) {
      fprintf (stderr, "--learn-prior learns one metats arm; --arms lists %d\n", n_arms - 1);
      return 2;
    }
    if (strcmp (arms[1].cls->name, "metats") != 0) {
      fprintf (stderr, "--learn-prior learns the prior of a metats arm (e.g. --arms "
               "metats:prior=none:credit=metric), got '%s'\n", arms[1].spec);
      return 2;
    }
    first = 1;
  } else if (control < 0) {
    if (ra_ab_arm_parse (control_s, &arms[0], &err) != RA_OK) {
      fprintf (stderr, "--control: %s\n", err.message);
      return 2;
    }
    control = 0;
  } else {
    first = 1;  /* slot 0 unused */
  }
  ro.control = control - first;
  /* a server when given; otherwise the sims in this process (c NULL) */
  int rc = 1;
  ra_client_t *c = NULL;
  ra_ab_result_t res;
  memset (&res, 0, sizeof res);
  if (address && ra_client_new (address, 60000, &c, &err) != RA_OK) {
    fprintf (stderr, "cannot reach recarena-server at %s: %s\n", address, err.message);
    goto out;
  }
  s_progress_t prog = { .start = s_now (), .last = 0, .tasks = tasks };
  ra_ab_opts_t o = {
    .env_id = env_id, .split = split, .tasks = tasks, .task_ids = ts.ids, .num_envs = num_envs,
    .episodes = episodes, .seed = seed, .config = config->items, .n_config = config->n,
    .max_episode_steps = mes, .frozen_episodes = frozen,
    .credit = credit_s[0] == 'c' ? RA_AB_CREDIT_CLICKED : RA_AB_CREDIT_METRIC,
    .progress = quiet ? NULL : s_progress, .progress_ud = &prog, .threads = threads,
  };
  if (check) {   /* either form: --learn-prior's one arm is arms[1], as first says */
    rc = s_check (c, &o, arms + first, n_arms - first, tasks_text);
    goto out;
  }
  if (learn_path) {
    rc = s_learn (c, &o, &arms[1], tasks_text, learn_path, quiet, prog.start);
    goto out;
  }
  if (ra_ab_run (c, &o, arms + first, n_arms - first, &res, &err) != RA_OK) {
    rc = s_failed (&err);
    goto out;
  }
  static ra_ab_report_t rep;
  if (ra_ab_report_compute (&res, &ro, &rep, &err) != RA_OK) {
    fprintf (stderr, "recarena-ab: %s\n", err.message);
    goto out;
  }
  ra_ab_report_table (&res, &ro, &rep, stdout);
  if (!quiet)
    fprintf (stderr, "[ab] done in %.1fs\n", s_now () - prog.start);
  rc = 0;
  const char *paths[2] = { json, csv };
  for (int j = 0; j < 2; j++) {
    if (!paths[j])
      continue;
    FILE *f = fopen (paths[j], "w");
    if (!f) {
      fprintf (stderr, "cannot write %s\n", paths[j]);
      rc = 1;
      continue;
    }
    if (j == 0)
      ra_ab_report_json (&res, &ro, &rep, f);
    else
      ra_ab_report_csv (&res, &ro, &rep, f);
    if (fclose (f) != 0) {
      fprintf (stderr, "cannot write %s\n", paths[j]);
      rc = 1;
    }
  }
out:
  ra_ab_result_fini (&res);
  ra_taskset_fini (&ts);
  ra_client_destroy (&c);
  return rc;
}
