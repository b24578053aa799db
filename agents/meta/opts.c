/*  agents/meta/opts.c - recarena-meta's command line (agents/meta/opts.h): the flag table, the
    usage text, the defaults, `key = value` config files and the checks of the settings alone. */
#include "agents/meta/opts.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/policies/target.h"

/* This process's rank and the job's size, for error messages ("rank R: ..."). */
static int s_rank = 0, s_size = 1;

void meta_err_rank (int rank, int size)
{
  s_rank = rank;
  s_size = size;
}

void meta_err (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  if (s_size > 1)
    fprintf (stderr, "recarena-meta: rank %d: ", s_rank);
  else
    fputs ("recarena-meta: ", stderr);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
}

static const char *const s_algos[] = { "reptile", "fomaml", "es", "es-maml", "multitask", "distill" };
#define NALGOS ((int) (sizeof s_algos / sizeof s_algos[0]))
/* outer learning rate defaults per algorithm (docs/meta.md 4); ES's, with its population and
   sigma, are where docs/tune.md 8.7's searches landed (docs/meta.md 6.61) */
static const double s_outer_lr[] = { 1.0, 1e-3, 5e-2, 5e-2, 3e-3, 1e-3 };
/* reptile's with --outer-opt adam: one outer step per iteration (about 100 in 1M env steps at the
   recipes' settings), so 1e-3 moved a parameter 0.1 at most and fell behind 1e-2 on val
   (docs/meta.md 6.65) */
#define REPTILE_ADAM_LR 1e-2

typedef enum { T_STR, T_INT, T_NUM, T_BOOL, T_ALGO, T_PARAMS, T_VALPARAMS, T_SIMCFG, T_VALACT, T_OPT, T_ANNEAL,
               T_OUTER_OPT } ftype_t;

typedef struct {
  const char *name;    /* flag without the dashes = config key */
  ftype_t type;
  size_t off;
  double lo, hi;
} flag_t;

#define O(f) offsetof (opts_t, f)
static const flag_t s_flags[F_COUNT] = {
  [F_ENV] = { "env", T_STR, O (env), 0, 0 },
  [F_ALGO] = { "algo", T_ALGO, O (algo), 0, 0 },
  [F_TRAIN_TASKS] = { "train-tasks", T_STR, O (train), 0, 0 },
  [F_VAL_TASKS] = { "val-tasks", T_STR, O (val), 0, 0 },
  [F_BUDGET_STEPS] = { "budget-steps", T_INT, O (budget), 1, 1e15 },
  [F_ITERS] = { "iters", T_INT, O (iters), 0, 1e12 },
  [F_VAL_EVERY] = { "val-every", T_INT, O (val_every), 1, 1e9 },
  [F_SEED] = { "seed", T_INT, O (seed), 0, 9e18 },
  [F_DEVICE] = { "device", T_STR, O (device), 0, 0 },
  [F_WORKERS] = { "workers", T_INT, O (workers), 1, 256 },
  [F_INNER_LR] = { "inner-lr", T_NUM, O (inner_lr), 1e-9, 10 },
  [F_INNER_STEPS] = { "inner-steps", T_INT, O (inner_steps), 0, 1000 },
  [F_OUTER_LR] = { "outer-lr", T_NUM, O (outer_lr), 1e-9, 10 },
  [F_META_BATCH] = { "meta-batch", T_INT, O (meta_batch), 1, 1024 },
  [F_POPULATION] = { "population", T_INT, O (population), 2, RA_TARGET_MAX_POPULATION },
  [F_SIGMA] = { "sigma", T_NUM, O (sigma), 1e-9, 10 },
  [F_ENTROPY] = { "entropy", T_NUM, O (entropy), 0, 100 },
  [F_ENVS_PER_TASK] = { "envs-per-task", T_INT, O (envs_per_task), 1, 4096 },
  [F_ROLLOUT_LEN] = { "rollout-len", T_INT, O (rollout), 1, 4096 },
  [F_ADAPT_PARAMS] = { "adapt-params", T_PARAMS, O (head_only), 0, 0 },
  [F_WEIGHT_DECAY] = { "weight-decay", T_NUM, O (weight_decay), 0, 1 },
  [F_HIDDEN] = { "hidden", T_INT, O (hidden), 1, 4096 },
  [F_LAYERS] = { "layers", T_INT, O (layers), 0, RA_TARGET_MAX_LAYERS },
  [F_ADDRESS] = { "address", T_STR, O (address), 0, 0 },
  [F_CHECKPOINT_OUT] = { "checkpoint-out", T_STR, O (ckpt_out), 0, 0 },
  [F_CHECKPOINT_IN] = { "checkpoint-in", T_STR, O (ckpt_in), 0, 0 },
  [F_METRICS] = { "metrics", T_STR, O (metrics), 0, 0 },
  [F_QUIET] = { "quiet", T_BOOL, O (quiet), 0, 0 },
  [F_CONFIG] = { "config", T_STR, O (config), 0, 0 },
  [F_SIM_CONFIG] = { "sim-config", T_SIMCFG, O (sim_config), 0, 0 },
  [F_TEMP] = { "temp", T_NUM, O (temp), RA_TARGET_TEMP_MIN, RA_TARGET_TEMP_MAX },
  [F_VAL_ACT] = { "val-act", T_VALACT, O (val_act), 0, 0 },
  [F_INNER_OPT] = { "inner-opt", T_OPT, O (inner_sgd), 0, 0 },
  [F_SLOT_CREDIT] = { "slot-credit", T_NUM, O (slot_credit), 0, RA_TARGET_SLOT_CREDIT_MAX },
  [F_SLOT_FEEDBACK] = { "slot-feedback", T_INT, O (slot_feedback), 0, RA_TARGET_SLOT_FEEDBACK_MAX },
  [F_AFFINITY] = { "affinity", T_BOOL, O (affinity), 0, 0 },
  [F_VAL_ADAPT_PARAMS] = { "val-adapt-params", T_VALPARAMS, O (val_head_only), 0, 0 },
  [F_CONTEXT] = { "context", T_NUM, O (context), 0, RA_TARGET_CONTEXT_MAX },
  [F_CHECKPOINT_LAST] = { "checkpoint-last", T_STR, O (ckpt_last), 0, 0 },
  [F_VAL_AT_START] = { "val-at-start", T_BOOL, O (val_at_start), 0, 0 },
  [F_ANNEAL_OVER] = { "anneal-over", T_ANNEAL, O (anneal_run), 0, 0 },
  [F_CONTEXT_RESIDUAL] = { "context-residual", T_BOOL, O (context_residual), 0, 0 },
  [F_SCORER_YIELD] = { "scorer-yield", T_BOOL, O (scorer_yield), 0, 0 },
  [F_CONTEXT_TS] = { "context-ts", T_NUM, O (context_ts), 0, RA_TARGET_CONTEXT_TS_MAX },
  [F_CONTEXT_SESSION] = { "context-session", T_NUM, O (context_session), 0, RA_TARGET_CONTEXT_SESSION_MAX },
  [F_CONTEXT_BASELINE] = { "context-baseline", T_NUM, O (context_baseline), 0, 1 },
  [F_CONTEXT_HANDOVER] = { "context-handover", T_NUM, O (context_handover), 0, RA_TARGET_CONTEXT_HANDOVER_MAX },
  [F_VAL_INNER_LR] = { "val-inner-lr", T_NUM, O (val_inner_lr), 0, 10 },
  [F_CONTEXT_KERNEL] = { "context-kernel", T_NUM, O (context_kernel), 0, RA_TARGET_CONTEXT_KERNEL_MAX },
  [F_TEACHER] = { "teacher", T_STR, O (teacher), 0, 0 },
  [F_TEACHER_WEIGHT] = { "teacher-weight", T_NUM, O (teacher_weight), 1e-9, RA_TARGET_TEACHER_WEIGHT_MAX },
  [F_TEACHER_SIM_CONFIG] = { "teacher-sim-config", T_SIMCFG, O (teacher_config), 0, 0 },
  [F_TEACHER_GATE] = { "teacher-gate", T_BOOL, O (teacher_gate), 0, 0 },
  [F_TEACHER_TEMP] = { "teacher-temp", T_NUM, O (teacher_temp), RA_TARGET_TEMP_MIN, RA_TARGET_TEMP_MAX },
  [F_TEACHER_CRITIC] = { "teacher-critic", T_BOOL, O (teacher_critic), 0, 0 },
  [F_TASK_CREDIT] = { "task-credit", T_NUM, O (task_credit), 0, RA_TARGET_TASK_CREDIT_MAX },
  [F_PATIENCE] = { "patience", T_INT, O (patience), 0, 1e9 },
  [F_OUTER_OPT] = { "outer-opt", T_OUTER_OPT, O (outer_adam), 0, 0 },
};
#define NFLAGS F_COUNT

static void s_usage (FILE *f)
{
  fprintf (f,
    "usage: recarena-meta [--flag value ...]   (docs/meta.md)\n"
    "  --env SIM               ECommerce-v1 | Ads-v1 | News-v1 | Content-v1 (default ECommerce-v1)\n"
    "  --algo A                reptile | fomaml | es | es-maml | multitask | distill (default\n"
    "                        reptile)\n"
    "  --train-tasks SET       (default train:all)      --val-tasks SET (default val:0-15)\n"
    "  --budget-steps N        env steps of meta-training (default 200000)\n"
    "  --iters N               stop after N iterations too (default: budget only)\n"
    "  --patience N            stop early after N val points in a row without a better score\n"
    "                        (default 0: off; the budget and --iters still end the run)\n"
    "  --val-every N           meta-validate every N iterations (default 10)\n"
    "  --seed S (1)  --device cpu|cuda|auto (cpu)  --workers N threads stepping the sims (1)\n"
    "  --inner-lr X (3e-3)  --inner-steps K (5)  --rollout-len T (16)  --adapt-params all|head (all)\n"
    "  --inner-opt adam|sgd  optimizer of every adaptation (adam; stored in the checkpoint)\n"
    "  --outer-lr X          reptile epsilon (1.0), Adam lr of fomaml (1e-3), es/es-maml (5e-2),\n"
    "                        multitask (3e-3), distill (1e-3) and reptile with --outer-opt adam (1e-2)\n"
    "  --outer-opt eps|adam  reptile's outer step: theta += epsilon, annealed, times the tasks' mean\n"
    "                        phi - theta (eps), or that mean fed to AdamW like a gradient (adam)\n"
    "  --anneal-over lineage|run  reptile's epsilon falls to 0 over the whole lineage, the steps of\n"
    "                        a continued checkpoint included (lineage), or over this run's budget\n"
    "                        only, as if it started afresh (run; docs/meta.md 5)\n"
    "  --meta-batch B (8)  --population P (16, even)  --sigma X (0.1)  --weight-decay X (0)\n"
    "  --entropy X (0.01)  --envs-per-task N (16)  --hidden H (64)  --layers L (2)\n"
    "  --task-credit W       each env's reward in every update adds W times the mean reward of\n"
    "                        its task's other envs at that step (0; docs/agents.md T20)\n"
    "  --address EP[,EP...]  a server instead of the in-process sims: one for every rank, or\n"
    "                        one per rank (rank k uses the k-th; docs/scaling.md 5)\n"
    "  --checkpoint-out F    best-on-val meta-init (adaptation settings inside)\n"
    "  --checkpoint-last F   the latest theta, at every val point (to continue from where it was)\n"
    "  --checkpoint-in F     start from F (command-line settings win; the same algo continues;\n"
    "                        --context N0 on a file without it adds the context's inputs at 0)\n"
    "  --val-at-start true|false  validate the starting theta (true; false saves a val point when\n"
    "                        it is known, as a PBT member continuing its last one)\n"
    "  --metrics F           JSONL, appended   --config F  key = value lines   --quiet\n"
    "  --sim-config KEY=VALUE  simulator config, repeatable (e.g. hidden_tastes=1)\n"
    "  --temp X              sampling temperature of the policy (1; stored in the checkpoint)\n"
    "  --slot-credit X       weight of each rank's own feedback in the adaptation's gradient\n"
    "                        (0: the slate's return only; stored in the checkpoint)\n"
    "  --slot-feedback N     where that feedback starts in the response (0: clicks; docs/meta.md 4)\n"
    "  --affinity true|false  adds the affinity head s += c . (A u + a) to the scorer (false;\n"
    "                        a checkpoint's architecture wins unless given)\n"
    "  --val-act sample|greedy  validation plays sampled slates, as the A/B arm does while it\n"
    "                        adapts (default sample), or top-k\n"
    "  --val-adapt-params all|head  what validation's adaptation moves (default: --adapt-params;\n"
    "                        all: as an arm with adapt_params=all; not stored in the checkpoint)\n"
    "  --val-inner-lr X      the learning rate of validation's adaptation (default: --inner-lr;\n"
    "                        0: theta frozen, the task context alone adapts, as an arm with\n"
    "                        lr=0; not stored in the checkpoint)\n"
    "  --context N0          the task context: the networks also see S (G + N0 I)^-1 u, what the\n"
    "                        task's feedback so far says about users like u (0: off; multitask\n"
    "                        then trains in blocks of one task each; a checkpoint's setting\n"
    "                        unless given; docs/agents.md T8)\n"
    "  --context-residual true|false  with --context, the networks read n0 (G + N0 I)^-1 u in\n"
    "                        place of u, so the affinity head's block on it is a prior the\n"
    "                        task's feedback overrides (false; a checkpoint's setting unless\n"
    "                        given; docs/agents.md T9)\n"
    "  --scorer-yield true|false  with --context, the scorer's output for user u is scaled by\n"
    "                        n0 u.(G + N0 I)^-1 u / u.u, 1 on a new task and falling as the\n"
    "                        task's feedback covers users like u (false; a checkpoint's\n"
    "                        setting unless given; docs/agents.md T10)\n"
    "  --context-ts SIGMA    with --context, each act reads a draw of the context's regression\n"
    "                        from its posterior (scale SIGMA) instead of its mean: Thompson\n"
    "                        sampling in the context (0: off; a checkpoint's setting unless\n"
    "                        given; docs/agents.md T11)\n"
    "  --context-session M0  with --context, each env's rows also read its current user's\n"
    "                        session: the centred feedback so far over (steps + M0) (0: off;\n"
    "                        a checkpoint's setting unless given; docs/agents.md T12)\n"
    "  --context-baseline B  with --context, every step informs it, a slate without a click\n"
    "                        too: each rank's feedback measured against the click rate there\n"
    "                        of the same step's slates (prior B) (0: off; a\n"
    "                        checkpoint's setting unless given; docs/agents.md T13)\n"
    "  --context-handover C0 with --context-baseline, T13 hands over to T8 as the task's\n"
    "                        clicks accrue: T13's weight C0 / (C0 + slates with a click)\n"
    "                        (0: T13 alone; a checkpoint's setting unless given;\n"
    "                        docs/agents.md T14)\n"
    "  --context-kernel BETA with --context, the task context is a kernel regression over\n"
    "                        user prototypes, weight exp(BETA (cos - 1)), instead of T8's\n"
    "                        linear one (0: T8; not with --context-ts; a checkpoint's\n"
    "                        setting unless given; docs/agents.md T15)\n"
    "  --teacher F           distill: the checkpoint of the teacher, a network without the task\n"
    "                        context whose top-k slates the student imitates (docs/meta.md 2.8)\n"
    "  --teacher-weight W    distill: the imitation term's weight w (1; docs/agents.md T16)\n"
    "  --teacher-sim-config KEY=VALUE  distill: added to --sim-config for the envs the teacher\n"
    "                        observes, repeatable (e.g. reveal_tastes=true: it sees the hidden\n"
    "                        tastes); the same envs, seeds and tasks as the student's\n"
    "  --teacher-gate B      distill: weigh each row's imitation by 1 - its scorer yield, so\n"
    "                        the student imitates where its task context has feedback on\n"
    "                        such users (false; needs --scorer-yield; docs/agents.md T17)\n"
    "  --teacher-temp T      distill: the teacher's slates are samples of its Plackett-Luce at\n"
    "                        temperature T instead of its top-k (not given: top-k; one rank\n"
    "                        only; docs/agents.md T18)\n"
    "  --teacher-critic B    distill: the value head reads the teacher's view of each user in\n"
    "                        place of the student's (a privileged critic; false; docs/agents.md\n"
    "                        T19)\n");
}

static void s_defaults (opts_t *o)
{
  *o = (opts_t) { .env = "ECommerce-v1", .train = "train:all", .val = "val:0-15", .device = "cpu",
                  .algo = A_REPTILE, .budget = 200000, .val_every = 10, .seed = 1, .workers = 1,
                  .inner_lr = 3e-3, .inner_steps = 5, .outer_lr = -1, .meta_batch = 8,
                  .population = 16, .envs_per_task = 16, .rollout = 16, .hidden = 64,
                  .layers = 2, .sigma = 0.1, .entropy = 0.01, .weight_decay = 0, .temp = 1.0,
                  .val_act = RA_META_ACT_SAMPLE, .val_at_start = true, .teacher_weight = 1 };
  strcpy (o->algo_name, "reptile");
  strcpy (o->val_act_name, "sample");
  strcpy (o->params_name, "all");
  strcpy (o->opt_name, "adam");
  strcpy (o->anneal_name, "lineage");
  strcpy (o->outer_opt_name, "eps");
}

/* A value that must be one of two words: *second tells which, the word is kept in name (shown in
   the progress header); false (with the message printed) for anything else. */
static bool s_either (const char *text, const char *first, const char *second, const char *where, char *name,
                      size_t cap, bool *is_second)
{
  if (strcmp (text, first) && strcmp (text, second)) {
    meta_err ("%s: '%s', expected %s or %s\n", where, text, first, second);
    return false;
  }
  *is_second = !strcmp (text, second);
  snprintf (name, cap, "%s", text);
  return true;
}

/* Sets one setting from text; where names the source ("--inner-lr", "config F line 3: inner-lr").
   0 or -1 after a message. */
static int s_set (opts_t *o, const char *name, const char *text, const char *where)
{
  for (int i = 0; i < NFLAGS; i++) {
    const flag_t *f = &s_flags[i];
    if (strcmp (f->name, name) != 0)
      continue;
    char *p = (char *) o + f->off;
    ra_error_t err = { .code = RA_OK };
    long long x;
    double d;
    switch (f->type) {
    case T_STR:
      if (!*text) {
        meta_err ("%s: empty value\n", where);
        return -1;
      }
      *(const char **) p = text;
      break;
    case T_INT:
      if (ra_kv_parse_int (where, text, (long long) f->lo, (long long) f->hi, &x, &err) != RA_OK) {
        meta_err ("%s\n", err.message);
        return -1;
      }
      *(long long *) p = x;
      break;
    case T_NUM:
      if (ra_kv_parse_num (where, text, f->lo, f->hi, &d, &err) != RA_OK) {
        meta_err ("%s\n", err.message);
        return -1;
      }
      *(double *) p = d;
      break;
    case T_BOOL:
      if (!strcmp (text, "true") || !strcmp (text, "1"))
        *(bool *) p = true;
      else if (!strcmp (text, "false") || !strcmp (text, "0"))
        *(bool *) p = false;
      else {
        meta_err ("%s: '%s', expected true or false\n", where, text);
        return -1;
      }
      break;
    case T_ALGO: {
      int a = -1;
      for (int k = 0; k < NALGOS; k++)
        if (!strcmp (text, s_algos[k]))
          a = k;
      if (a < 0) {
        meta_err ("%s: '%s', expected reptile, fomaml, es, es-maml, multitask or distill\n",
                  where, text);
        return -1;
      }
      o->algo = (algo_t) a;
      snprintf (o->algo_name, sizeof o->algo_name, "%s", text);
      break;
    }
    case T_PARAMS:
      if (!s_either (text, "all", "head", where, o->params_name, sizeof o->params_name, &o->head_only))
        return -1;
      break;
    case T_VALPARAMS:
      if (!s_either (text, "all", "head", where, o->val_params_name, sizeof o->val_params_name,
                     &o->val_head_only))
        return -1;
      break;
    case T_VALACT: {
      bool greedy;
      if (!s_either (text, "sample", "greedy", where, o->val_act_name, sizeof o->val_act_name, &greedy))
        return -1;
      o->val_act = greedy ? RA_META_ACT_GREEDY : RA_META_ACT_SAMPLE;
      break;
    }
    case T_OPT:
      if (!s_either (text, "adam", "sgd", where, o->opt_name, sizeof o->opt_name, &o->inner_sgd))
        return -1;
      break;
    case T_ANNEAL:
      if (!s_either (text, "lineage", "run", where, o->anneal_name, sizeof o->anneal_name, &o->anneal_run))
        return -1;
      break;
    case T_OUTER_OPT:
      if (!s_either (text, "eps", "adam", where, o->outer_opt_name, sizeof o->outer_opt_name, &o->outer_adam))
        return -1;
      break;
    case T_SIMCFG:   /* appended: every entry reaches the sims' make config */
      if (ra_kv_list_parse ((ra_kv_list_t *) p, text, &err) != RA_OK) {
        meta_err ("%s: %s\n", where, err.message);
        return -1;
      }
      break;
    }
    o->set[i] = true;
    return 0;
  }
  meta_err ("%s: unknown setting '%s' (--help for the list)\n", where, name);
  return -1;
}

/* The text of every --config file read, newest first: the settings' string values point into it,
   so each is kept until the end of the run (a repeated --config reads every file, in order). */
typedef struct meta_cfg_text {
  struct meta_cfg_text *prev;
  char text[];
} cfg_text_t;

static void s_config_free (cfg_text_t *t)
{
  while (t) {
    cfg_text_t *prev = t->prev;
    free (t);
    t = prev;
  }
}

/* key = value lines; '#' starts a comment. The file's text joins o->cfg_text (freed by
   meta_opts_fini). */
static int s_config (opts_t *o, const char *path)
{
  FILE *f = fopen (path, "r");
  if (!f) {
    meta_err ("--config %s: %s\n", path, strerror (errno));
    return -1;
  }
  char *tmp = malloc (1 << 20);
  size_t len = tmp ? fread (tmp, 1, (1 << 20) - 1, f) : 0;
  bool failed = ferror (f); /* a directory opens and reads as nothing: not an empty config */
  fclose (f);
  cfg_text_t *t = tmp ? malloc (sizeof *t + len + 1) : NULL;
  if (t) {
    memcpy (t->text, tmp, len);
    t->text[len] = 0;
    t->prev = o->cfg_text;
    o->cfg_text = t;
  }
  free (tmp);
  if (!t) {
    meta_err ("--config %s: out of memory\n", path);
    return -1;
  }
  char *buf = t->text;
  if (failed) {
    meta_err ("--config %s: cannot read it\n", path);
    return -1;
  }
  if (len == (1 << 20) - 1) {
    meta_err ("--config %s: larger than 1 MiB\n", path);
    return -1;
  }
  const char *nul = memchr (buf, 0, len); /* what follows a NUL would be dropped unseen */
  if (nul) {
    int at = 1;
    for (const char *c = buf; c < nul; c++)
      at += *c == '\n';
    meta_err ("--config %.80s line %d: a NUL byte in the line\n", path, at);
    return -1;
  }
  int line = 0;
  for (char *s = buf; s && *s;) {
    char *e = strchr (s, '\n');
    if (e)
      *e = 0;
    line++;
    char *hash = strchr (s, '#');
    if (hash)
      *hash = 0;
    char where[160];
    snprintf (where, sizeof where, "--config %.80s line %d", path, line);
    char *key, *val;
    char *q = s;
    while (*q == ' ' || *q == '\t' || *q == '\r')
      q++;
    if (*q) {
      ra_error_t err;
      if (ra_kv_split (q, &key, &val, &err) != RA_OK) {
        meta_err ("%s: expected key = value\n", where);
        return -1;
      }
      size_t vl = strlen (val);
      while (vl && (val[vl - 1] == '\r' || val[vl - 1] == ' '))
        val[--vl] = 0;
      if (!strcmp (key, "config")) {
        meta_err ("%s: a config file cannot name another\n", where);
        return -1;
      }
      snprintf (where, sizeof where, "--config %.80s line %d: %s", path, line, key);
      if (s_set (o, key, val, where) != 0)
        return -1;
    }
    s = e ? e + 1 : NULL;
  }
  return 0;
}

int meta_opts_parse (int argc, char **argv, opts_t *o)
{
  s_defaults (o);
  /* the file first, so the command line overrides it */
  for (int i = 1; i + 1 < argc; i++)
    if (!strcmp (argv[i], "--config") && s_config (o, argv[i + 1]) != 0)
      return -1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp (a, "--help") || !strcmp (a, "-h")) {
      s_usage (stdout);
      return 1;
    }
    if (strncmp (a, "--", 2) != 0) {
      meta_err ("unexpected argument '%s' (--help for usage)\n", a);
      return -1;
    }
    if (!strcmp (a, "--quiet")) {
      o->quiet = true;
      continue;
    }
    if (i + 1 >= argc) {
      meta_err ("%s needs a value (--help for usage)\n", a);
      return -1;
    }
    if (!strcmp (a, "--config")) {
      i++;
      continue;
    }
    if (s_set (o, a + 2, argv[++i], a) != 0)
      return -1;
  }
  if (o->set[F_OUTER_OPT] && o->algo != A_REPTILE) { /* the others' outer step is AdamW always */
    meta_err ("--outer-opt %s: only reptile chooses its outer step; --algo %s's is AdamW\n", o->outer_opt_name,
              o->algo_name);
    return -1;
  }
  if (o->set[F_ANNEAL_OVER] && o->outer_adam) {
    meta_err ("--anneal-over %s: with --outer-opt adam reptile's step does not anneal\n", o->anneal_name);
    return -1;
  }
  if (o->outer_lr < 0)
    o->outer_lr = o->outer_adam ? REPTILE_ADAM_LR : s_outer_lr[o->algo];
  if ((o->algo == A_ES || o->algo == A_ESMAML) && o->population % 2) {
    meta_err ("--population %lld: ES needs an even population (antithetic pairs)\n", o->population);
    return -1;
  }
  if (o->set[F_ANNEAL_OVER] && o->algo != A_REPTILE) { /* only Reptile's epsilon anneals */
    meta_err ("--anneal-over %s: only reptile anneals its outer step (this run is --algo %s)\n", o->anneal_name,
              o->algo_name);
    return -1;
  }
  if (o->algo == A_DISTILL && !o->teacher) {
    meta_err ("--algo distill needs --teacher F, the checkpoint of the network it imitates\n");
    return -1;
  }
  for (int f = F_TEACHER; f <= F_TEACHER_CRITIC; f++)
    if (o->set[f] && o->algo != A_DISTILL) {
      meta_err ("--%s: only distill has a teacher (this run is --algo %s)\n", s_flags[f].name, o->algo_name);
      return -1;
    }
  return 0;
}

void meta_opts_fini (opts_t *o)
{
  ra_kv_list_fini (&o->sim_config);
  ra_kv_list_fini (&o->teacher_config);
  s_config_free (o->cfg_text);
}
