/*  agents/target.c - recarena-target: trains the target policy (docs/agents.md, "Target policy") against a
    recarena server over the protocol, on many envs at once; optionally evaluates it greedily
    against a random policy on the same seeds. Without --address it trains through the in-process
    rollout source (the sims stepped in this process: the same trajectories as through a server,
    without the transport) and starts an in-process server on a free loopback port for the
    evaluation; both stop when the program ends.

    usage: recarena-target [--env ECommerce-v1] [--num-envs 64] [--steps 200000] ... (--help)   */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agents/ab/report.h"
#include "agents/ab/runner.h"
#include "agents/nn/nn.h"
#include "agents/outpath.h"
#include "agents/policies/rollout_inproc.h"
#include "agents/policies/rollout_tasks.h"
#include "agents/policies/target.h"
#include "agents/policies/taskset.h"
#include "common/duration.h"
#include "common/kv.h"
#include "env/server/server.h"
#include "protocol/client.h"

typedef struct {
  const char *address, *env, *task, *device, *ckpt_in, *ckpt_out, *metrics;
  const char *eval_tasks, *eval_json;  /* --eval-tasks SET: the A/B report on a split after training */
  int eval_envs, eval_rk;
  int num_envs, eval_episodes;
  long long steps, updates;
  double progress_s;
  ra_kv_list_t config;          /* env config */
  ra_kv_list_t policy;          /* policy settings from flags */
  uint64_t seed;
  ra_taskset_t tasks;           /* --task, parsed (n = 0: the env's default task) */
} opts_t;

static void s_usage (FILE *f)
{
  fprintf (f,
    "usage: recarena-target [options]\n"
    "  --address EP          server endpoint (default: start one in-process on tcp://127.0.0.1:*)\n"
    "  --env ID              env id (default ECommerce-v1)\n"
    "  --task SET            train on one task (train:4) or a task set (train:0-63, train:all,\n"
    "                        train:1,5,9): envs spread over the tasks, each env's task drawn\n"
    "                        again per episode; default: the env's default task\n"
    "  --config KEY=VALUE    env config, repeatable (e.g. --config reward=clicks)\n"
    "  --num-envs N          envs per rollout (default 64)\n"
    "  --steps S             total env steps (default 200000), or --updates U\n"
    "  --rollout T           steps per update (default 16)\n"
    "  --lr X --gamma X --lambda X --entropy X --value-coef X --clip-norm X --reward-scale X\n"
    "                        (defaults 3e-3, 0.95, 0.95, 0.01, 0.5, 1.0, 0 = auto)\n"
    "  --hidden H --layers L --activation relu|tanh   network (default 64, 2, relu)\n"
    "  --device cpu|cuda|auto (default cpu)\n"
    "  --seed S              (default 1)\n"
    "  --checkpoint-in F     start from F's parameters and reward scale (its architecture wins\n"
    "                        over --hidden/--layers); how it was trained (slot credit,\n"
    "                        temperature) does not carry: training here is plain actor-critic\n"
    "  --checkpoint-out F    write the trained policy to F\n"
    "  --metrics F           one JSON line per update\n"
    "  --eval-episodes N     greedy evaluation at the end vs random on the same seeds (default 512; 0: none)\n"
    "  --progress S          seconds between progress lines on stderr (default 2)\n"
    "  --eval-tasks SET      after training, recarena-ab's report on these tasks (e.g. val:0-15,\n"
    "                        test:0-31): random, the trained policy adapting (on-policy) and frozen,\n"
    "                        oracle; R@K, R@5w, auc and the frozen evaluation, CIs over tasks\n"
    "  --eval-envs N         users per task there (default 16)\n"
    "  --eval-rk-episodes E  episodes per user there (default 8; 2 frozen ones follow)\n"
    "  --eval-json F         that report as JSON\n");
}

static double s_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Fills *o from the command line: 0, 1 after --help, -1 after a message on stderr. o->config
   and o->policy are owned by the caller from the first line on (ra_kv_list_fini them). */
static int s_parse (int argc, char **argv, opts_t *o)
{
  *o = (opts_t) { .env = "ECommerce-v1", .device = "cpu", .num_envs = 64, .steps = 200000,
                  .eval_episodes = 512, .progress_s = 2.0, .seed = 1, .eval_envs = 16, .eval_rk = 8 };
  static const struct { const char *flag, *key; } pol[] = {
    { "--rollout", "rollout" }, { "--lr", "lr" }, { "--gamma", "gamma" }, { "--lambda", "lambda" },
    { "--entropy", "entropy" }, { "--value-coef", "value_coef" }, { "--clip-norm", "clip_norm" },
    { "--reward-scale", "reward_scale" }, { "--hidden", "hidden" }, { "--layers", "layers" },
    { "--activation", "activation" },
  };
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp (a, "--help") || !strcmp (a, "-h")) {
      s_usage (stdout);
      return 1;
    }
    if (i + 1 >= argc) {
      fprintf (stderr, "recarena-target: %s needs a value (--help for usage)\n", a);
      return -1;
    }
    const char *v = argv[++i];
    bool known = true;
    long long x = 0;
    ra_error_t err = { .code = RA_OK };
    if (!strcmp (a, "--address"))
      o->address = v;
    else if (!strcmp (a, "--env"))
      o->env = v;
    else if (!strcmp (a, "--task")) {
      ra_taskset_fini (&o->tasks);
      if (ra_taskset_parse ("--task", v, &o->tasks, &err) == RA_OK)
        o->task = v;
      else { /* the message names the flag already */
        fprintf (stderr, "recarena-target: %s\n", err.message);
        return -1;
      }
    }
    else if (!strcmp (a, "--device"))
      o->device = v;
    else if (!strcmp (a, "--checkpoint-in"))
      o->ckpt_in = v;
    else if (!strcmp (a, "--checkpoint-out"))
      o->ckpt_out = v;
    else if (!strcmp (a, "--metrics"))
      o->metrics = v;
    else if (!strcmp (a, "--eval-tasks"))
      o->eval_tasks = v;
    else if (!strcmp (a, "--eval-json"))
      o->eval_json = v;
    else if (!strcmp (a, "--eval-envs")) {
      if (ra_kv_parse_int ("value", v, 1, 1 << 16, &x, &err) == RA_OK)
        o->eval_envs = (int) x;
    } else if (!strcmp (a, "--eval-rk-episodes")) {
      if (ra_kv_parse_int ("value", v, 1, 1 << 16, &x, &err) == RA_OK)
        o->eval_rk = (int) x;
    }
    else if (!strcmp (a, "--num-envs")) {
      if (ra_kv_parse_int ("value", v, 1, 1 << 20, &x, &err) == RA_OK)
        o->num_envs = (int) x;
    } else if (!strcmp (a, "--eval-episodes")) {
      if (ra_kv_parse_int ("value", v, 0, 1 << 30, &x, &err) == RA_OK)
        o->eval_episodes = (int) x;
    } else if (!strcmp (a, "--steps")) {
      if (ra_kv_parse_int ("value", v, 1, LLONG_MAX, &x, &err) == RA_OK)
        o->steps = x, o->updates = 0;
    } else if (!strcmp (a, "--updates")) {
      if (ra_kv_parse_int ("value", v, 1, LLONG_MAX, &x, &err) == RA_OK)
        o->updates = x;
    } else if (!strcmp (a, "--progress"))
      ra_kv_parse_num ("value", v, 0, 1e9, &o->progress_s, &err);
    else if (!strcmp (a, "--seed")) {
      if (ra_kv_parse_int ("value", v, 0, LLONG_MAX, &x, &err) == RA_OK)
        o->seed = (uint64_t) x;
    } else if (!strcmp (a, "--config"))
      ra_kv_list_parse (&o->config, v, &err);
    else {
      known = false;
      for (size_t p = 0; p < sizeof pol / sizeof pol[0]; p++)
        if (!strcmp (a, pol[p].flag)) {
          ra_kv_list_add_text (&o->policy, pol[p].key, v, &err);
          known = true;
        }
    }
    if (err.code != RA_OK) {
      fprintf (stderr, "recarena-target: %s: %s\n", a, err.message);
      return -1;
    }
    if (!known) {
      fprintf (stderr, "recarena-target: unknown flag %s (--help for usage)\n", a);
      return -1;
    }
  }
  if (o->eval_tasks) { /* checked now, so a bad set fails before any training */
    ra_taskset_t ts;
    ra_error_t err;
    if (ra_taskset_parse ("--eval-tasks", o->eval_tasks, &ts, &err) != RA_OK) {
      fprintf (stderr, "recarena-target: %s\n", err.message);
      return -1;
    }
    ra_taskset_fini (&ts);
  }
  if (o->num_envs < 1 || (o->updates <= 0 && o->steps <= 0) || o->eval_episodes < 0) {
    fprintf (stderr, "recarena-target: --num-envs and --steps/--updates must be positive\n");
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------------ in-process server */


static ra_err_t s_make (ra_client_t *c, const opts_t *o, int n, uint64_t seed, const char *autoreset,
                        ra_client_env_t *env, ra_error_t *err)
{
  ra_make_opts_t mo = { .has_seed = true, .seed = seed, .config = o->config.items,
                        .n_config = o->config.n, .autoreset = autoreset };
  ra_err_t rc = ra_client_make (c, o->env, n, &mo, env, err);
  if (rc != RA_OK || !o->task)
    return rc;
  const ra_taskset_t *ts = &o->tasks;
  if (ts->n == 1)
    return ra_client_set_task (c, env, ts->split, ts->ids[0], NULL, 0, NULL, err);
  /* a set: env i on task i mod n (the first n envs cover the first tasks) */
  bool *mask = calloc ((size_t) n, sizeof *mask);
  if (!mask)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory");
  for (int t = 0; rc == RA_OK && t < ts->n && t < n; t++) {
    for (int i = 0; i < n; i++)
      mask[i] = i % ts->n == t;
    rc = ra_client_set_task (c, env, ts->split, ts->ids[t], NULL, 0, mask, err);
  }
  free (mask);
  return rc;
}

/* Greedy and random returns over eval_episodes first episodes on the same seeds. */
static ra_err_t s_eval (ra_target_t *t, ra_client_t *c, const opts_t *o, ra_error_t *err)
{
  int E = o->eval_episodes, n = E < o->num_envs ? E : o->num_envs;
  ra_client_env_t env;
  ra_err_t rc = s_make (c, o, n, o->seed + 1000003u, NULL, &env, err);
  if (rc != RA_OK)
    return rc;
  uint64_t *seeds = malloc ((size_t) n * sizeof *seeds);
  if (!seeds) {
    ra_client_env_fini (&env);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory");
  }
  double sum[3] = { 0 }, len[3] = { 0 };
  int rounds = (E + n - 1) / n;
  static const ra_target_eval_t modes[3] = { RA_TARGET_EVAL_GREEDY, RA_TARGET_EVAL_SAMPLE,
                                             RA_TARGET_EVAL_RANDOM };
  for (int r = 0; rc == RA_OK && r < rounds; r++)
    for (int m = 0; rc == RA_OK && m < 3; m++) {
      for (int i = 0; i < n; i++)
        seeds[i] = o->seed * 7919u + 5000000u + (uint64_t) r * n + i;
      double ret, l;
      rc = ra_target_evaluate (t, c, &env, seeds, modes[m], 100000, &ret, &l, err);
      sum[m] += ret;
      len[m] += l;
    }
  if (rc == RA_OK) {
    double g = sum[0] / rounds, s = sum[1] / rounds, rd = sum[2] / rounds;
    printf ("eval over %d episodes (same seeds): greedy return %.3f (length %.1f), sampled %.3f, "
            "random %.3f (length %.1f); greedy vs random %+.1f%%\n", rounds * n, g,
            len[0] / rounds, s, rd, len[2] / rounds, rd != 0 ? 100.0 * (g - rd) / fabs (rd) : 0.0);
  }
  ra_error_t cerr;
  ra_client_close (c, &env, &cerr);
  ra_client_env_fini (&env);
  free (seeds);
  return rc;
}

/* --eval-tasks: recarena-ab's runner and report (docs/agents.md section 2) on a task set, with
   the trained policy (from the checkpoint file ckpt) adapting and frozen against random and the
   oracle; the table on stdout. */
static ra_err_t s_eval_tasks (ra_client_t *c, const opts_t *o, const char *ckpt, ra_error_t *err)
{
  ra_taskset_t ts;
  ra_err_t rc = ra_taskset_parse ("--eval-tasks", o->eval_tasks, &ts, err);
  if (rc != RA_OK)
    return rc;
  char specs[4][1200];
  snprintf (specs[0], sizeof specs[0], "random");
  snprintf (specs[1], sizeof specs[1], "target:checkpoint=%s:name=target", ckpt);
  snprintf (specs[2], sizeof specs[2], "target:checkpoint=%s:lr=0:name=target-frozen", ckpt);
  snprintf (specs[3], sizeof specs[3], "oracle");
  ra_ab_arm_t arms[4];
  for (int a = 0; a < 4 && rc == RA_OK; a++)
    rc = ra_ab_arm_parse (specs[a], &arms[a], err);
  if (rc != RA_OK) {
    ra_taskset_fini (&ts);
    return rc;
  }
  char text[256];
  ra_taskset_format (&ts, text, sizeof text);
  int E = o->eval_rk;
  ra_ab_opts_t ao = {
    .env_id = o->env, .split = ts.split, .tasks = ts.n, .task_ids = ts.ids, .num_envs = o->eval_envs,
    .episodes = E, .seed = o->seed, .config = o->config.items, .n_config = o->config.n,
    .credit = RA_AB_CREDIT_CLICKED, .frozen_episodes = 2,
  };
  ra_ab_report_opts_t ro = {
    .env_id = o->env, .split = ts.split, .tasks_text = text, .seed = o->seed, .config = o->config.items,
    .n_config = o->config.n, .unit = RA_AB_UNIT_TASK, .bootstrap = 2000, .level = 0.95,
    .credit = "clicked",
  };
  static const int ks[] = { 0, 1, 2, 5, 10, 20 };
  for (size_t j = 0; j < sizeof ks / sizeof ks[0]; j++)
    if (ks[j] < E)
      ro.curve_k[ro.n_curve++] = ks[j];
  if (E >= 8) { /* R@5w */
    ro.win_from[0] = 3, ro.win_to[0] = 7, ro.n_win = 1;
  }
  ra_ab_result_t res;
  static ra_ab_report_t rep;
  rc = ra_ab_run (o->address ? c : NULL, &ao, arms, 4, &res, err); /* in process: the same numbers, faster */
  bool ran = rc == RA_OK; /* a failed run releases its result itself */
  if (ran && (rc = ra_ab_report_compute (&res, &ro, &rep, err)) == RA_OK) {
    printf ("\nevaluation on %s (the same report as recarena-ab):\n", text);
    ra_ab_report_table (&res, &ro, &rep, stdout);
    FILE *f = o->eval_json ? fopen (o->eval_json, "w") : NULL;
    if (o->eval_json && !f)
      rc = ra_error_set (err, RA_ERR_IO, -1, "cannot write %s", o->eval_json);
    if (f) {
      ra_ab_report_json (&res, &ro, &rep, f);
      if (fclose (f) != 0)
        rc = ra_error_set (err, RA_ERR_IO, -1, "cannot write %s", o->eval_json);
    }
  }
  if (ran)
    ra_ab_result_fini (&res);
  ra_taskset_fini (&ts);
  return rc;
}

int main (int argc, char **argv)
{
  opts_t o;
  int code = 1, parsed = s_parse (argc, argv, &o);
  if (parsed == 0 && o.tasks.n > 1) { /* a set needs min(n, N) + 1 task slots (rollout_tasks.h) */
    bool given = false;
    for (int i = 0; i < o.config.n; i++)
      given |= !strcmp (o.config.items[i].key, "task_slots");
    int need = ra_rollout_tasks_slots (&o.tasks, o.num_envs);
    ra_error_t kerr;
    char v[32];
    snprintf (v, sizeof v, "%d", need > 4096 ? 4096 : need);
    if (!given && ra_kv_list_add_text (&o.config, "task_slots", v, &kerr) != RA_OK) {
      fprintf (stderr, "recarena-target: %s\n", kerr.message);
      parsed = -1;
    }
  }
  if (parsed != 0) {
    ra_kv_list_fini (&o.config);
    ra_kv_list_fini (&o.policy);
    ra_taskset_fini (&o.tasks);
    return parsed > 0 ? 0 : 2;
  }
  ra_error_t err;
  ra_server_t *srv = NULL;
  pthread_t srv_thread;
  bool srv_running = false;
  ra_client_t *c = NULL;
  ra_nn_backend_t *be = NULL;
  ra_target_t *t = NULL;
  FILE *metrics = NULL;
  ra_client_env_t env = { 0 };
  bool have_env = false;
  const char *ep = o.address;
  ra_rollout_t *src = NULL; /* without --address: training steps the sims in this process */
  ra_rollout_t *inner = NULL; /* under src when --task names a set */

  if ((ra_nn_backend_open (o.device, NULL, &be, &err)) != RA_OK) {
    fprintf (stderr, "recarena-target: --device %s: %s\n", o.device, err.message);
    return 2;
  }
  if (!ep) {
    ra_server_opts_t so;
    ra_server_opts_default (&so);
    so.workers = 1;
    if (ra_server_new (&so, &srv, &err) != RA_OK
        || ra_server_bind (srv, "tcp://127.0.0.1:*", &err) != RA_OK) {
      fprintf (stderr, "recarena-target: in-process server: %s\n", err.message);
      goto done;
    }
    if (pthread_create (&srv_thread, NULL, ra_server_thread, srv) != 0) {
      fprintf (stderr, "recarena-target: cannot start the server thread\n");
      goto done;
    }
    srv_running = true;
    ep = ra_server_endpoint (srv, 0);
  }
  if (ra_client_new (ep, 0, &c, &err) != RA_OK
      || s_make (c, &o, o.num_envs, o.seed, "same_step", &env, &err) != RA_OK) {
    fprintf (stderr, "recarena-target: %s: %s\n", ep, err.message);
    goto done;
  }
  have_env = true;
  if (!o.address) { /* same env, config, task and seed as the env just made: same trajectories */
    ra_rollout_inproc_opts_t io = { .env = o.env, .num_envs = o.num_envs, .seed = o.seed,
                                    .config = o.config.items, .n_config = o.config.n };
    if (o.tasks.n == 1) {
      io.task_split = o.tasks.split;
      io.task_id = o.tasks.ids[0];
    }
    if (ra_rollout_inproc_new (&io, &src, &err) != RA_OK) {
      fprintf (stderr, "recarena-target: in-process source: %s\n", err.message);
      goto done;
    }
  }
  if (o.tasks.n > 1) { /* the task-set path shared with recarena-meta --algo multitask */
    inner = src;
    src = NULL;
    if (!inner && ra_rollout_protocol_new (c, &env, &inner, &err) != RA_OK) {
      fprintf (stderr, "recarena-target: %s\n", err.message);
      goto done;
    }
    ra_rollout_tasks_opts_t to = { .seed = o.seed, .redraw = true };
    if (ra_rollout_tasks_new (inner, o.num_envs, &o.tasks, &to, &src, &err) != RA_OK) {
      fprintf (stderr, "recarena-target: --task: %s\n", err.message);
      goto done;
    }
  }

  ra_target_cfg_t cfg;
  ra_target_cfg_default (&cfg);
  cfg.seed = o.seed;
  if (ra_target_cfg_apply (&cfg, o.policy.items, o.policy.n, NULL, &err) != RA_OK
      || ra_target_cfg_from_env (&cfg, &env, &err) != RA_OK
      || (o.ckpt_in && ra_target_checkpoint_arch (o.ckpt_in, &cfg.hidden, &cfg.layers, &cfg.affinity, &err) != RA_OK)
      || ra_target_new (be, &cfg, &t, &err) != RA_OK
      || (o.ckpt_in && ra_target_load (t, o.ckpt_in, &err) != RA_OK)) {
    fprintf (stderr, "recarena-target: %s\n", err.message);
    goto done;
  }
  if ((o.ckpt_out && ra_outpath_check ("--checkpoint-out", o.ckpt_out, &err) != RA_OK)
      || (o.eval_json && ra_outpath_check ("--eval-json", o.eval_json, &err) != RA_OK)) {
    fprintf (stderr, "recarena-target: %s\n", err.message);   /* before training, not after */
    goto done;
  }
  if (o.metrics && !(metrics = fopen (o.metrics, "w"))) {
    fprintf (stderr, "recarena-target: cannot write %s: %s\n", o.metrics, strerror (errno));
    goto done;
  }
  long long per = (long long) cfg.rollout * cfg.num_envs;
  long long updates = o.updates > 0 ? o.updates : (o.steps + per - 1) / per;
  fprintf (stderr,
           "recarena-target: %s%s%s on %s, %d envs, K=%d k=%d, user %d + candidate %d features; "
           "MLP %d x %d (%s), %zu params, %s; %lld updates of %d steps\n",
           o.env, o.task ? " task " : "", o.task ? o.task : "", src ? "the in-process source" : ep, cfg.num_envs,
           cfg.num_candidates, cfg.slate_size, cfg.user_dim, cfg.cand_dim, cfg.layers, cfg.hidden,
           cfg.tanh ? "tanh" : "relu", ra_target_num_params (t), ra_nn_backend_name (be), updates,
           cfg.rollout);
  if ((src ? ra_target_begin_rollout (t, src, NULL, &err) : ra_target_begin (t, c, &env, NULL, &err)) != RA_OK) {
    fprintf (stderr, "recarena-target: %s\n", err.message);
    goto done;
  }
  ra_target_stats_t st = { 0 }, win = { 0 };
  double t0 = s_now (), last = t0;
  double last_ret = NAN;
  for (long long u = 1; u <= updates; u++) {
    ra_target_stats_t one = { 0 };
    double tu = s_now ();
    if ((src ? ra_target_train_rollout (t, src, &one, &err) : ra_target_train_step (t, c, &env, &one, &err))
        != RA_OK) {
      fprintf (stderr, "recarena-target: update %lld: %s\n", u, err.message);
      goto done;
    }
    double now = s_now ();
    st.env_steps += one.env_steps;
    st.episodes += one.episodes;
    st.return_sum += one.return_sum;
    st.reward_sum += one.reward_sum;
    win.env_steps += one.env_steps;
    win.episodes += one.episodes;
    win.return_sum += one.return_sum;
    win.reward_sum += one.reward_sum;
    const ra_target_losses_t *l = &one.last;
    if (metrics) {
      fprintf (metrics,
               "{\"update\": %lld, \"env_steps\": %lld, \"episodes\": %lld, \"mean_return\": ",
               u, (long long) st.env_steps, (long long) st.episodes);
      if (one.episodes)
        fprintf (metrics, "%.6g", one.return_sum / one.episodes);
      else
        fprintf (metrics, "null");
      fprintf (metrics,
               ", \"mean_reward\": %.6g, \"policy_loss\": %.6g, \"value_loss\": %.6g, "
               "\"entropy\": %.6g, \"grad_norm\": %.6g, \"reward_scale\": %.6g, "
               "\"samples_per_s\": %.1f, \"elapsed_s\": %.3f}\n",
               one.reward_sum / (double) one.env_steps, l->policy_loss, l->value_loss, l->entropy,
               l->grad_norm, l->reward_scale, one.env_steps / fmax (now - tu, 1e-9), now - t0);
    }
    if (now - last >= o.progress_s || u == updates) {
      double sps = st.env_steps / fmax (now - t0, 1e-9);
      char eta[32];
      ra_fmt_duration ((updates - u) * per / sps, eta, sizeof eta);
      if (win.episodes)
        last_ret = win.return_sum / win.episodes;
      char rbuf[32];
      snprintf (rbuf, sizeof rbuf, isfinite (last_ret) ? "%.2f" : "-", last_ret);
      fprintf (stderr,
               "update %lld/%lld  steps %lld  episodes %lld  return %s  reward/step %.3f  "
               "entropy %.2f  vloss %.3f  %.0f samples/s  ETA %s\n",
               u, updates, (long long) st.env_steps, (long long) st.episodes, rbuf,
               win.reward_sum / fmax ((double) win.env_steps, 1), l->entropy, l->value_loss, sps, eta);
      win = (ra_target_stats_t) { 0 };
      last = now;
    }
  }
  double el = s_now () - t0;
  printf ("trained %lld env steps in %.1f s (%.0f samples/s), %lld episodes, mean return %.3f\n",
          (long long) st.env_steps, el, st.env_steps / fmax (el, 1e-9), (long long) st.episodes,
          st.episodes ? st.return_sum / st.episodes : NAN);
  if (o.ckpt_out) {
    if (ra_target_save (t, o.ckpt_out, &err) != RA_OK) {
      fprintf (stderr, "recarena-target: %s\n", err.message);
      goto done;
    }
    printf ("checkpoint: %s\n", o.ckpt_out);
  }
  if (o.eval_episodes > 0 && s_eval (t, c, &o, &err) != RA_OK) {
    fprintf (stderr, "recarena-target: eval: %s\n", err.message);
    goto done;
  }
  if (o.eval_tasks) { /* the arms load the policy from a file: the checkpoint, or a temporary one */
    char tmp[64] = "";
    const char *ck = o.ckpt_out;
    if (ck && strchr (ck, ':'))   /* an arm spec cannot carry it: ':' separates the settings */
      ck = NULL;
    if (!ck) {   /* a name of our own (mkstemp), not a guessable one another user could plant */
      snprintf (tmp, sizeof tmp, "/tmp/recarena-target-XXXXXX");
      int fd = mkstemp (tmp);
      if (fd < 0) {
        fprintf (stderr, "recarena-target: --eval-tasks: cannot create %s: %s\n", tmp, strerror (errno));
        goto done;
      }
      close (fd);
      if (ra_target_save (t, tmp, &err) != RA_OK) {
        fprintf (stderr, "recarena-target: --eval-tasks: %s\n", err.message);
        remove (tmp);
        goto done;
      }
      ck = tmp;
    }
    ra_err_t erc = s_eval_tasks (c, &o, ck, &err);
    if (*tmp)
      remove (tmp);
    if (erc != RA_OK) {
      fprintf (stderr, "recarena-target: --eval-tasks: %s\n", err.message);
      goto done;
    }
  }
  code = 0;
done:
  if (metrics)
    fclose (metrics);
  if (have_env) {
    ra_client_close (c, &env, &err);
    ra_client_env_fini (&env);
  }
  ra_target_destroy (&t);
  ra_rollout_destroy (&src);
  ra_rollout_destroy (&inner);
  ra_client_destroy (&c);
  ra_nn_backend_destroy (&be);
  if (srv_running) {
    ra_server_stop (srv);
    pthread_join (srv_thread, NULL);
  }
  ra_server_destroy (&srv);
  ra_kv_list_fini (&o.config);
  ra_kv_list_fini (&o.policy);
  ra_taskset_fini (&o.tasks);
  return code;
}
