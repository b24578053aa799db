/*  agents/meta/opts.h - recarena-meta's command line (docs/meta.md sections 4 and 5): its settings
    and their defaults, read from `--flag value` arguments and `key = value` config files (the
    command line overriding the files), with the checks that need nothing but the command line.
    The checks that need a checkpoint, the sims or the rank count are agents/meta.c's.

    Compiled into the recarena-meta binary alone, not into ra_meta (agents/CMakeLists.txt): it
    prints its refusals on stderr itself, through meta_err, as the binary's other messages. */
#ifndef RA_AGENTS_META_OPTS_H
#define RA_AGENTS_META_OPTS_H

#include <stdbool.h>

#include "agents/meta/adapt.h"
#include "common/kv.h"

typedef enum { A_REPTILE, A_FOMAML, A_ES, A_ESMAML, A_MULTITASK, A_DISTILL } algo_t;

/* One index per flag, in the order of the flag table in agents/meta/opts.c, which is keyed by
   these (so adding a flag is one entry here and one there; F_COUNT sizes set[]). */
enum flag_index { F_ENV, F_ALGO, F_TRAIN_TASKS, F_VAL_TASKS, F_BUDGET_STEPS, F_ITERS, F_VAL_EVERY,
      F_SEED, F_DEVICE, F_WORKERS, F_INNER_LR, F_INNER_STEPS, F_OUTER_LR, F_META_BATCH,
      F_POPULATION, F_SIGMA, F_ENTROPY, F_ENVS_PER_TASK, F_ROLLOUT_LEN, F_ADAPT_PARAMS,
      F_WEIGHT_DECAY, F_HIDDEN, F_LAYERS, F_ADDRESS, F_CHECKPOINT_OUT, F_CHECKPOINT_IN, F_METRICS,
      F_QUIET, F_CONFIG, F_SIM_CONFIG, F_TEMP, F_VAL_ACT, F_INNER_OPT, F_SLOT_CREDIT,
      F_SLOT_FEEDBACK, F_AFFINITY, F_VAL_ADAPT_PARAMS, F_CONTEXT, F_CHECKPOINT_LAST, F_VAL_AT_START,
      F_ANNEAL_OVER, F_CONTEXT_RESIDUAL, F_SCORER_YIELD, F_CONTEXT_TS, F_CONTEXT_SESSION,
      F_CONTEXT_BASELINE, F_CONTEXT_HANDOVER, F_VAL_INNER_LR, F_CONTEXT_KERNEL, F_TEACHER,
      F_TEACHER_WEIGHT, F_TEACHER_SIM_CONFIG, F_TEACHER_GATE, F_TEACHER_TEMP, F_TEACHER_CRITIC,
      F_TASK_CREDIT, F_PATIENCE, F_OUTER_OPT, F_COUNT };

typedef struct {
  const char *env, *train, *val, *device, *address, *ckpt_in, *ckpt_out, *ckpt_last, *metrics, *config, *teacher;
  char algo_name[16], params_name[8], val_params_name[8], val_act_name[8], opt_name[8], anneal_name[8],
    outer_opt_name[8];
  algo_t algo;
  ra_meta_act_t val_act;  /* how validation plays (docs/meta.md 3) */
  long long budget, iters, val_every, seed, workers, inner_steps, meta_batch, population,
    envs_per_task, rollout, hidden, layers, slot_feedback, patience;
  double inner_lr, val_inner_lr, outer_lr, sigma, entropy, weight_decay, temp, slot_credit, context, context_ts,
    context_session, context_baseline, context_handover, context_kernel, teacher_weight, teacher_temp, task_credit;
  bool quiet, head_only, val_head_only, inner_sgd, affinity, val_at_start, context_residual,
      scorer_yield, teacher_gate, teacher_critic;
  bool anneal_run;     /* Reptile's epsilon anneals over this run's budget only (--anneal-over run) */
  bool outer_adam;     /* Reptile's mean difference goes to AdamW, not the annealed epsilon step */
  bool set[F_COUNT];   /* which settings the command line or file gave (by flag_index) */
  ra_kv_list_t sim_config;   /* --sim-config KEY=VALUE entries, in order (the sims' make config) */
  ra_kv_list_t teacher_config; /* --teacher-sim-config: added to sim_config for the teacher's envs */
  struct meta_cfg_text *cfg_text; /* the --config files' text, which the string settings point into */
} opts_t;

/* The defaults, then every --config file, then the other arguments. 0; 1 after --help (usage on
   stdout); -1 after a message. o is whole either way: meta_opts_fini frees it. */
int meta_opts_parse (int argc, char **argv, opts_t *o);
void meta_opts_fini (opts_t *o);

/* recarena-meta's messages on stderr, "recarena-meta: " first; once meta_err_rank has said the
   job has several ranks, "recarena-meta: rank R: " (docs/meta.md 5: errors name the rank). */
void meta_err_rank (int rank, int size);
__attribute__ ((format (printf, 1, 2))) void meta_err (const char *fmt, ...);

#endif
