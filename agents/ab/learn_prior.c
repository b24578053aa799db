/*  agents/ab/learn_prior.c - Meta-TS on train tasks through the runner's arm hook (see
    learn_prior.h; docs/agents.md 1.9).                                                       */
#include "agents/ab/learn_prior.h"

#include <stdio.h>
#include <string.h>

#include "agents/policies/baselines.h"

typedef struct {
  ra_metats_prior_t q;
  bool started;
} s_learn_t;

/* Start of a task: the first arm sets the model (its file's hyper-posterior, or its hyper-prior);
   every arm draws its prior mean from the hyper-posterior learnt so far. End of a task: fold. */
static ra_err_t s_hook (void *ud, int arm, int64_t task_id, ra_policy_t *pol, bool end, ra_error_t *err)
{
  (void) arm;
  (void) task_id;
  s_learn_t *l = ud;
  if (end)
    return ra_metats_arm_fold (pol, &l->q, err);
  if (!l->started) {
    const ra_metats_prior_t *file = ra_metats_arm_prior (pol);
    ra_err_t rc = file ? ra_metats_prior_copy (&l->q, file, err) : ra_metats_arm_hyper_prior (pol, &l->q, err);
    if (rc != RA_OK)
      return rc;
    l->started = true;
  }
  return ra_metats_arm_draw (pol, &l->q, err);
}

ra_err_t ra_ab_learn_prior (ra_client_t *c, const ra_ab_opts_t *opts, const ra_ab_arm_t *arm,
                            const char *tasks_text, ra_metats_prior_t *out, ra_ab_result_t *res,
                            ra_error_t *err)
{
  memset (out, 0, sizeof *out);
  memset (res, 0, sizeof *res);
  if (arm->cls != &ra_metats_policy_class)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "--learn-prior learns the prior of a metats arm "
                         "(e.g. metats:prior=none:credit=metric), got '%s'", arm->spec);
  if (opts->arm_hook)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "ra_ab_learn_prior: opts->arm_hook is taken");
  if (opts->check_only)   /* a dry run plays nothing, so there would be nothing to learn */
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "ra_ab_learn_prior: a check_only run learns "
                         "nothing; check with ra_ab_run");
  s_learn_t l;
  memset (&l, 0, sizeof l);
  ra_ab_opts_t o = *opts;
  o.arm_hook = s_hook;
  o.threads = 1;   /* the hyper-posterior learns from the tasks in order */
  o.arm_hook_ud = &l;
  ra_err_t rc = ra_ab_run (c, &o, arm, 1, res, err);
  if (rc != RA_OK) {
    ra_metats_prior_fini (&l.q);
    return rc;
  }
  ra_ab_credit_t credit = arm->has_credit ? arm->credit : opts->credit;
  snprintf (l.q.env_id, sizeof l.q.env_id, "%s", opts->env_id);
  snprintf (l.q.credit, sizeof l.q.credit, "%s", credit == RA_AB_CREDIT_METRIC ? "metric" : "clicked");
  if (strlen (tasks_text) < sizeof l.q.tasks)   /* informational; a long set is left out */
    snprintf (l.q.tasks, sizeof l.q.tasks, "%s", tasks_text);
  *out = l.q;
  return RA_OK;
}
