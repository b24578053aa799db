/*  agents/ab/learn_prior.h - learns a Meta-TS prior on train tasks (docs/agents.md 1.9): the
    runner (runner.h) plays one metats arm on every task of a set, in order, and after each task
    folds what the arm saw into the hyper-posterior (MT2, MT3), which the next task's arm draws
    its prior mean from (MT4): Meta-TS run sequentially on the train tasks, as in Kveton et al.
    2021. Behind `recarena-ab --learn-prior FILE`. One thread (it drives one client).          */
#ifndef RA_AGENTS_AB_LEARN_PRIOR_H
#define RA_AGENTS_AB_LEARN_PRIOR_H

#include "agents/ab/runner.h"
#include "agents/policies/metats.h"

/* Plays arm (class metats: prior=none, or prior=FILE to continue from FILE's hyper-posterior) on
   the tasks of opts (opts->arm_hook must be NULL: it is used here; opts->check_only false: a dry
   run learns nothing) and returns the learnt hyper-posterior in *out (release with
   ra_metats_prior_fini), with its env, credit and tasks (tasks_text, canonical form) filled in;
   *res gets the run (release with ra_ab_result_fini), for a summary. RA_ERR_BAD_CONFIG for
   another arm class; the runner's errors as they are. */
ra_err_t ra_ab_learn_prior (ra_client_t *c, const ra_ab_opts_t *opts, const ra_ab_arm_t *arm,
                            const char *tasks_text, ra_metats_prior_t *out, ra_ab_result_t *res,
                            ra_error_t *err);

#endif
