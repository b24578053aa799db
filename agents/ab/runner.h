/*  agents/ab/runner.h - the A/B runner (docs/agents.md section 2): plays every arm on the same
    tasks, users and episode starts (common random numbers at every episode, section 2.1)
    on a server through a protocol client, or on the same sims in this process (agents/ab/envs.h),
    and keeps raw sums per (arm, task, env). Statistics live in stats.h, tables and files in
    report.h. A runner call drives one client from its caller's thread, or with opts.threads
    the sims in this process from several.                                                      */
#ifndef RA_AGENTS_AB_RUNNER_H
#define RA_AGENTS_AB_RUNNER_H

#include <stdbool.h>
#include <stdint.h>

#include "agents/policies/policy.h"
#include "protocol/client.h"

#define RA_AB_MAX_ARM_SETTINGS 16
/* The longest arm spec, in bytes: room for a checkpoint path and a dozen settings (a spec of
   128 bytes, the first limit, could not hold a target arm with its path and the bench's keys). */
#define RA_AB_ARM_SPEC_MAX 1024

typedef enum { RA_AB_CREDIT_CLICKED, RA_AB_CREDIT_METRIC } ra_ab_credit_t;

/* One arm: a class plus its settings, parsed from "class:key=value:key=value". Two settings
   belong to the harness and are not passed on: name=LABEL replaces the spec as the display
   name, credit=clicked|metric sets the arm's per-slot credit (docs/agents.md 2.1; without it
   the run's default, ra_ab_opts_t.credit). config's strings point into store: parse it where it
   will stay (do not copy the struct). */
typedef struct {
  char spec[RA_AB_ARM_SPEC_MAX];        /* the display name: as given, or its name= setting */
  /* class and policy settings only: seeds the arm's RNG, so arms that differ only in name play
     identically; a file setting (checkpoint, prior) as a hash of the file's bytes (room for one
     per setting), so a copied file plays as the original */
  char key[RA_AB_ARM_SPEC_MAX + 20 * RA_AB_MAX_ARM_SETTINGS];
  const ra_policy_class_t *cls;
  ra_kv_t config[RA_AB_MAX_ARM_SETTINGS];
  int n_config;
  bool has_credit;                      /* credit= was given */
  ra_ab_credit_t credit;
  char store[RA_AB_ARM_SPEC_MAX];       /* keys and string values of config point in here */
} ra_ab_arm_t;

/* Parses spec ("linucb:alpha=0.5") against the policy registry. RA_ERR_BAD_CONFIG naming what
   is wrong (unknown arm, malformed setting). */
ra_err_t ra_ab_arm_parse (const char *spec, ra_ab_arm_t *out, ra_error_t *err);

typedef struct {
  const char *env_id;                   /* "ECommerce-v1" */
  const char *split;                    /* "test" */
  int tasks;                            /* how many tasks of split */
  const int64_t *task_ids;              /* [tasks] their ids; NULL: 0 .. tasks - 1 */
  int num_envs;                         /* envs per task (one user stream each) */
  int episodes;                         /* episodes each env plays on each task */
  uint64_t seed;                        /* episode seeds and arm seeds derive from it (2.1) */
  const ra_kv_t *config;                /* sim config; "oracle" is added when the sim accepts it */
  int n_config;
  int max_episode_steps;                /* <= 0: the server's default */
  ra_ab_credit_t credit;                /* what fb->slot_reward carries, for arms without credit= */
  int frozen_episodes;                  /* after the `episodes`, each env plays this many more with
                                           learning frozen (2.1): the adapted policy on fresh
                                           episodes; 0: none */
  /* Optional: called with each arm's policy right after it is created for a task (end false,
     before its first act) and after its episodes (end true, before it is destroyed); an error
     ends the run. recarena-ab --learn-prior drives Meta-TS through it (learn_prior.h). */
  ra_err_t (*arm_hook) (void *ud, int arm, int64_t task_id, ra_policy_t *pol, bool end,
                        ra_error_t *err);
  void *arm_hook_ud;
  /* Called after every (arm, task) pair and every ~256 steps: done / total in env-episodes. */
  void (*progress) (void *ud, const char *arm, int task, double done, double total);
  void *progress_ud;
  /* A dry run (recarena-ab --check): stop once every arm has been built for every task and
     dropped (2.1), before any arm plays, so a configuration is checked in seconds. *out then has
     the run's shape (arms, tasks and their ids, the sim's fields) but no cells: nothing to
     report. The arm hook is not called (no arm plays). */
  bool check_only;
  /* Tasks are played by this many threads at once (0 or 1: this one), each with its own env
     batch: the sims in this process only (c NULL), and no arm hook. The numbers are the same
     bits for any number. */
  int threads;
} ra_ab_opts_t;

/* Sums over one env's first `episodes` episodes on one task. */
typedef struct {
  double reward;                        /* env reward */
  double slots, clicks;                 /* slots shown, slots clicked */
  double conversions;                   /* purchases / conversions */
  double main;                          /* the sim's main per-slot metric (revenue, watch time) */
  double regret;                        /* info "regret", summed over steps */
  double diversity;                     /* summed per-step slate diversity (docs/agents.md 2.2) */
  double steps;
} ra_ab_cell_t;

typedef struct {
  int arms, tasks, num_envs, episodes;
  int frozen;                           /* frozen evaluation episodes per env after `episodes` */
  char arm_names[32][RA_AB_ARM_SPEC_MAX]; /* display names (arm specs or their name=) */
  ra_ab_credit_t arm_credit[32];        /* the credit each arm learned from */
  char arm_class[32][32];               /* each arm's policy class ("oracle", "expert", ...) */
  int64_t *task_ids;                    /* [tasks] the split's ids, in run order */
  ra_ab_cell_t *cells;                  /* arms x tasks x num_envs */
  double *ep_return;                    /* arms x tasks x num_envs x (episodes + frozen): return of
                                           episode e (e >= episodes: the frozen evaluation) */
  double *distinct;                     /* arms x tasks: distinct catalog ids shown */
  double catalog_size;                  /* from the sim's "num_items"; 0 when unknown */
  bool has_conversion, has_main, has_regret, has_items;
  char conversion_name[32];             /* "purchased", "converted" */
  char main_name[32];                   /* "revenue", "watch_time", "dwell" */
  bool oracle_on;                       /* the env was made with oracle=true */
} ra_ab_result_t;

#define RA_AB_MAX_ARMS 32

/* The seed of env i's episode e on task (split, task_id) (docs/agents.md 2.1, eq. AB1): a
   counter-based hash of the tuple, so every arm meets the same user at the start of every
   episode, whatever it did before and however many envs run. */
uint64_t ra_ab_episode_seed (uint64_t seed, const char *split, int64_t task_id, int env, int episode);

/* Runs every arm on every task on the server c is connected to, or with c NULL on the sims in
   this process (the same numbers); fills *out (release with ra_ab_result_fini). Errors from
   the server or the sims come back as they are; RA_ERR_BAD_CONFIG for bad options or arm settings. With
   opts->check_only, everything up to the first episode (see check_only). */
ra_err_t ra_ab_run (ra_client_t *c, const ra_ab_opts_t *opts, const ra_ab_arm_t *arms, int n_arms,
                    ra_ab_result_t *out, ra_error_t *err);
void ra_ab_result_fini (ra_ab_result_t *r);

/* Index helpers. */
static inline ra_ab_cell_t *ra_ab_cell (const ra_ab_result_t *r, int arm, int task, int env)
{
  return &r->cells[((size_t) arm * r->tasks + task) * r->num_envs + env];
}
static inline double *ra_ab_ep_return (const ra_ab_result_t *r, int arm, int task, int env)
{
  return &r->ep_return[(((size_t) arm * r->tasks + task) * r->num_envs + env) * (r->episodes + r->frozen)];
}

#endif
