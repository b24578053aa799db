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

typedef struct {
  const char *env, *train, *val, *device, *address, *ckpt_in, *ckpt_out, *ckpt_last, *metrics, *config, *teacher;
  char algo_name[16], params_name[8], val_params_name[8], val_act_name[8], opt_name[8], anneal_name[8];
  algo_t algo;
  ra_meta_act_t val_act;  /* how validation plays (docs/meta.md 3) */
  long long budget, iters, val_every, seed, workers, inner_steps, meta_batch, population,
    envs_per_task, rollout, hidden, layers, slot_feedback, patience;
  double inner_lr, val_inner_lr, outer_lr, sigma, entropy, weight_decay, temp, slot_credit, context, context_ts,
    context_session, context_baseline, context_handover, context_kernel, teacher_weight, teacher_temp, task_credit;
  bool quiet, head_only, val_head_only, inner_sgd, affinity, val_at_start, context_residual,
      scorer_yield, teacher_gate, teacher_critic;
  bool anneal_run;     /* Reptile's epsilon anneals over this run's budget only (--anneal-over run) */
  bool set[64];        /* which settings the command line or file gave (by table index, F_ below) */
  ra_kv_list_t sim_config;   /* --sim-config KEY=VALUE entries, in order (the sims' make config) */
  ra_kv_list_t teacher_config; /* --teacher-sim-config: added to sim_config for the teacher's envs */
  struct meta_cfg_text *cfg_text; /* the --config files' text, which the string settings point into */
} opts_t;

/* Indices of set[] that are read by name: entries of the flag table in agents/meta/opts.c. */
enum { F_ITERS = 5, F_INNER_LR = 10, F_INNER_STEPS = 11, F_ROLLOUT = 18, F_PARAMS = 19, F_HIDDEN = 21,
       F_LAYERS = 22, F_TEMP = 30, F_INNER_OPT = 32, F_SLOT_CREDIT = 33, F_SLOT_FEEDBACK = 34,
       F_AFFINITY = 35, F_VAL_PARAMS = 36, F_CONTEXT = 37, F_ANNEAL = 40, F_CONTEXT_RESIDUAL = 41,
       F_SCORER_YIELD = 42, F_CONTEXT_TS = 43, F_CONTEXT_SESSION = 44, F_CONTEXT_BASELINE = 45,
       F_CONTEXT_HANDOVER = 46, F_VAL_INNER_LR = 47, F_CONTEXT_KERNEL = 48, F_TEACHER = 49,
       F_TEACHER_WEIGHT = 50, F_TEACHER_SIM_CONFIG = 51, F_TEACHER_GATE = 52, F_TEACHER_TEMP = 53,
       F_TEACHER_CRITIC = 54 };

/* The defaults, then every --config file, then the other arguments. 0; 1 after --help (usage on
   stdout); -1 after a message. o is whole either way: meta_opts_fini frees it. */
int meta_opts_parse (int argc, char **argv, opts_t *o);
void meta_opts_fini (opts_t *o);

/* recarena-meta's messages on stderr, "recarena-meta: " first; once meta_err_rank has said the
   job has several ranks, "recarena-meta: rank R: " (docs/meta.md 5: errors name the rank). */
void meta_err_rank (int rank, int size);
__attribute__ ((format (printf, 1, 2))) void meta_err (const char *fmt, ...);

#endif
