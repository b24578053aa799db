/*  agents/policies/metats.c - the arm "metats": Meta-Thompson sampling (Kveton et al. 2021),
    linear-Gaussian variant (docs/agents.md 1.9, eq. MT5). At creation it draws mu~ from the
    hyper-posterior in its prior file (MT4) with its own RNG, then plays LinTS (the core of
    lints.h, 1.6) from the prior theta ~ N(mu~, sigma0^2 I), i.e. lambda = v^2 / sigma0^2 and
    theta_hat = A^-1 (lambda mu~ + B). It also keeps its task's statistics G and B, which
    `recarena-ab --learn-prior` folds into the hyper-posterior when a train task ends
    (agents/ab/learn_prior.h).

    Settings: prior=FILE (the hyper-posterior; v, sigma0 and sigma_q come from it) or prior=none
    (prior mean 0, i.e. LinTS with lambda = v^2 / sigma0^2; where learning starts: the learner
    then draws each task's mean itself) with v (0.5), sigma0 (0.5) and sigma_q (1).
    forget returns to the prior N(mu~, sigma0^2 I) with the same mu~. An arm belongs to one
    thread.                                                                                   */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agents/policies/baseline.h"
#include "agents/policies/baselines.h"
#include "agents/policies/lints.h"
#include "agents/policies/metats.h"

typedef struct {
  ra_policy_t base;
  ra__lints_t ts;
  double sigma0, sigma_q;
  int user_dim, cand_dim;
  bool has_prior;
  ra_metats_prior_t prior;              /* the loaded file, when has_prior */
} s_mts_t;

static void s_destroy (ra_policy_t **pp)
{
  if (!pp || !*pp)
    return;
  s_mts_t *p = (s_mts_t *) *pp;
  ra__lints_fini (&p->ts);
  ra_metats_prior_fini (&p->prior);
  free (p);
  *pp = NULL;
}

static void s_forget (ra_policy_t *pol)
{
  ra__lints_forget (&((s_mts_t *) pol)->ts);
}

static void s_act (ra_policy_t *pol, const ra_obs_batch_t *obs, int32_t *slates)
{
  ra__lints_act (&((s_mts_t *) pol)->ts, obs, slates);
}

static void s_learn (ra_policy_t *pol, const ra_obs_batch_t *obs, const ra_feedback_t *fb)
{
  ra__lints_learn (&((s_mts_t *) pol)->ts, obs, fb);
}

/* The prior file's model against the task the arm is about to play. */
static ra_err_t s_check_file (const ra_metats_prior_t *q, const char *path, const ra_policy_args_t *a,
                              ra_error_t *err)
{
  if (q->user_dim != a->user_dim || q->cand_dim != a->cand_dim)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "metats prior '%.100s' was learnt on %s with "
                         "%d user and %d candidate features; this task has %d and %d", path,
                         q->env_id[0] ? q->env_id : "a sim", q->user_dim, q->cand_dim, a->user_dim,
                         a->cand_dim);
  if (a->env_id && q->env_id[0] && strcmp (a->env_id, q->env_id) != 0)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "metats prior '%.100s' was learnt on %s; this "
                         "arm plays %.40s", path, q->env_id, a->env_id);
  if (a->credit && q->credit[0] && strcmp (a->credit, q->credit) != 0)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "metats prior '%.100s' was learnt from credit "
                         "%s; this arm learns from credit %s (give the arm credit=%s)", path,
                         q->credit, a->credit, q->credit);
  return RA_OK;
}

static ra_err_t s_create (const ra_policy_args_t *args, ra_policy_t **out, ra_error_t *err)
{
  static const char *const keys[] = { "prior", "v", "sigma0", "sigma_q", NULL };
  ra_err_t rc = ra__config_check (args, keys, err);
  if (rc != RA_OK)
    return rc;
  const ra_kv_t *prior = NULL;
  bool model_given = false;
  for (int i = 0; i < args->n_config; i++) {
    if (!strcmp (args->config[i].key, "prior"))
      prior = &args->config[i];
    else
      model_given = true;
  }
  if (!prior || prior->type != RA_KV_STR || !prior->str[0])
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "metats arm needs prior=FILE (a hyper-posterior "
                         "written by recarena-ab --learn-prior FILE) or prior=none (the hyper-prior)");
  s_mts_t *p = calloc (1, sizeof *p);
  if (!p)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "metats arm: out of memory");
  p->base.cls = &ra_metats_policy_class;
  p->user_dim = args->user_dim;
  p->cand_dim = args->cand_dim;
  double v = 0.5;
  p->sigma0 = 0.5;
  p->sigma_q = 1.0;
  if (strcmp (prior->str, "none") != 0) {
    if (model_given) {
      rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "metats arm: v, sigma0 and sigma_q are read "
                         "from the prior file '%.100s'; set them when learning it (prior=none:...)",
                         prior->str);
      goto fail;
    }
    if ((rc = ra_metats_prior_load (prior->str, &p->prior, err)) != RA_OK
        || (rc = s_check_file (&p->prior, prior->str, args, err)) != RA_OK)
      goto fail;
    p->has_prior = true;
    v = p->prior.v;
    p->sigma0 = p->prior.sigma0;
    p->sigma_q = p->prior.sigma_q;
  } else if ((rc = ra__config_num (args, "v", 0.5, 1e-6, 1e6, &v, err)) != RA_OK
             || (rc = ra__config_num (args, "sigma0", 0.5, 1e-6, 1e6, &p->sigma0, err)) != RA_OK
             || (rc = ra__config_num (args, "sigma_q", 1.0, 1e-6, 1e6, &p->sigma_q, err)) != RA_OK) {
    goto fail;
  }
  /* MT5: prior N(mu, sigma0^2 I) on the LinTS scale v^2 A^-1 means lambda = v^2 / sigma0^2 */
  if (!ra__lints_init (&p->ts, args, v, v * v / (p->sigma0 * p->sigma0), true)) {
    rc = ra_error_set (err, RA_ERR_NOMEM, -1, "metats arm: out of memory");
    goto fail;
  }
  if (p->has_prior && (rc = ra_metats_arm_draw (&p->base, &p->prior, err)) != RA_OK)
    goto fail;
  *out = &p->base;
  return RA_OK;
fail:
  s_destroy ((ra_policy_t **) &p);
  return rc;
}

const ra_policy_class_t ra_metats_policy_class = {
  .name = "metats", .description = "Meta-Thompson sampling: LinTS from a prior mean learnt on train "
  "tasks (prior=FILE)",
  .create = s_create, .destroy = s_destroy, .act = s_act, .learn = s_learn, .forget = s_forget,
};

/* ---- for the learner and the tests (metats.h) ---------------------------------------------- */

static s_mts_t *s_of (const ra_policy_t *pol)
{
  return pol && pol->cls == &ra_metats_policy_class ? (s_mts_t *) pol : NULL;
}

/* q's model against the arm's. */
static ra_err_t s_same_model (const s_mts_t *p, const ra_metats_prior_t *q, ra_error_t *err)
{
  if (!p)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "not a metats arm");
  if (q->user_dim != p->user_dim || q->cand_dim != p->cand_dim || q->v != p->ts.v
      || q->sigma0 != p->sigma0)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "metats: the hyper-posterior's model (dims %d, "
                         "%d, v %g, sigma0 %g) is not the arm's (dims %d, %d, v %g, sigma0 %g)",
                         q->user_dim, q->cand_dim, q->v, q->sigma0, p->user_dim, p->cand_dim,
                         p->ts.v, p->sigma0);
  return RA_OK;
}

const ra_metats_prior_t *ra_metats_arm_prior (const ra_policy_t *pol)
{
  s_mts_t *p = s_of (pol);
  return p && p->has_prior ? &p->prior : NULL;
}

ra_err_t ra_metats_arm_hyper_prior (const ra_policy_t *pol, ra_metats_prior_t *out, ra_error_t *err)
{
  s_mts_t *p = s_of (pol);
  if (!p)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "not a metats arm");
  return ra_metats_prior_init (out, p->user_dim, p->cand_dim, p->ts.v, p->sigma0, p->sigma_q, err);
}

ra_err_t ra_metats_arm_draw (ra_policy_t *pol, const ra_metats_prior_t *q, ra_error_t *err)
{
  s_mts_t *p = s_of (pol);
  ra_err_t rc = s_same_model (p, q, err);
  if (rc != RA_OK)
    return rc;
  double *mu = malloc ((size_t) p->ts.D * sizeof *mu);
  if (!mu)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "metats arm: out of memory");
  if ((rc = ra_metats_prior_sample (q, &p->ts.rng, mu, err)) == RA_OK)   /* MT4 */
    ra__lints_set_prior_mean (&p->ts, mu);                               /* MT5 */
  free (mu);
  return rc;
}

ra_err_t ra_metats_arm_fold (const ra_policy_t *pol, ra_metats_prior_t *q, ra_error_t *err)
{
  s_mts_t *p = s_of (pol);
  ra_err_t rc = s_same_model (p, q, err);
  return rc != RA_OK ? rc : ra_metats_prior_update (q, p->ts.gram, p->ts.bsum, err);
}

const double *ra_metats_arm_prior_mean (const ra_policy_t *pol)
{
  s_mts_t *p = s_of (pol);
  return p ? p->ts.mu : NULL;
}
