/*  agents/policies/egreedy.c - epsilon-greedy over a ridge regression on phi(u, c)
    (docs/agents.md 1.3): score_c = theta . phi(u, c) with theta = A^-1 b; each slot, with
    probability epsilon, shows a uniformly drawn candidate not yet in the slate instead of the
    next-best one. Settings: epsilon (default 0.1), lambda (ridge prior precision, default 1). */
#include <stdlib.h>

#include "agents/policies/baseline.h"
#include "agents/policies/baselines.h"
#include "agents/policies/ridge.h"

typedef struct {
  ra_policy_t base;
  ra_rng_t rng;
  double epsilon;
  ra__ridge_t model;
  int D;
  float *phi;                           /* D */
  float *score;                         /* K */
} s_eg_t;

static void s_destroy (ra_policy_t **pp)
{
  if (!pp || !*pp)
    return;
  s_eg_t *p = (s_eg_t *) *pp;
  ra__ridge_fini (&p->model);
  free (p->phi);
  free (p->score);
  free (p);
  *pp = NULL;
}

static void s_forget (ra_policy_t *pol)
{
  ra__ridge_clear (&((s_eg_t *) pol)->model);
}

static ra_err_t s_create (const ra_policy_args_t *args, ra_policy_t **out, ra_error_t *err)
{
  static const char *const keys[] = { "epsilon", "lambda", NULL };
  double eps, lambda;
  ra_err_t rc = ra__config_check (args, keys, err);
  if (rc == RA_OK)
    rc = ra__config_num (args, "epsilon", 0.1, 0.0, 1.0, &eps, err);
  if (rc == RA_OK)
    rc = ra__config_num (args, "lambda", 1.0, 1e-6, 1e6, &lambda, err);
  if (rc != RA_OK)
    return rc;
  s_eg_t *p = calloc (1, sizeof *p);
  if (!p)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "egreedy arm: out of memory");
  p->base.cls = &ra_egreedy_policy_class;
  p->epsilon = eps;
  p->D = ra__phi_dim (args->user_dim, args->cand_dim);
  ra_rng_seed_splitmix (&p->rng, args->seed);
  p->phi = malloc ((size_t) p->D * sizeof *p->phi);
  p->score = malloc ((size_t) args->num_candidates * sizeof *p->score);
  if (!p->phi || !p->score || !ra__ridge_init (&p->model, p->D, lambda)) {
    s_destroy ((ra_policy_t **) &p);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "egreedy arm: out of memory");
  }
  *out = &p->base;
  return RA_OK;
}

static void s_act (ra_policy_t *pol, const ra_obs_batch_t *obs, int32_t *slates)
{
  s_eg_t *p = (s_eg_t *) pol;
  int K = obs->num_candidates, k = obs->slate_size, F = obs->cand_dim, U = obs->user_dim;
  ra__ridge_solve (&p->model);
  for (int i = 0; i < obs->num_envs; i++) {
    for (int c = 0; c < K; c++) {
      ra__phi (obs->user + (size_t) i * U, U, obs->candidates + ((size_t) i * K + c) * F, F, p->phi);
      double s = 0;
      for (int j = 0; j < p->D; j++)
        s += p->model.theta[j] * p->phi[j];
      p->score[c] = (float) s;
    }
    int32_t *slate = slates + (size_t) i * k;
    for (int r = 0; r < k; r++) {
      int pick = -1;
      if (ra_rng_uniform_f64 (&p->rng) < p->epsilon) {   /* explore: a uniform unused candidate */
        int u = (int) ra_rng_below (&p->rng, (uint32_t) (K - r));
        for (int c = 0; c < K && pick < 0; c++)
          if (p->score[c] > -1e30f && u-- == 0)
            pick = c;
      } else {
        for (int c = 0; c < K; c++)
          if (p->score[c] > -1e30f && (pick < 0 || p->score[c] > p->score[pick]))
            pick = c;
      }
      slate[r] = pick;
      p->score[pick] = -3e38f;
    }
  }
}

static void s_learn (ra_policy_t *pol, const ra_obs_batch_t *obs, const ra_feedback_t *fb)
{
  s_eg_t *p = (s_eg_t *) pol;
  int K = obs->num_candidates, k = obs->slate_size, F = obs->cand_dim, U = obs->user_dim;
  for (int i = 0; i < obs->num_envs; i++)
    for (int r = 0; r < k; r++) {
      int c = fb->slates[(size_t) i * k + r];
      ra__phi (obs->user + (size_t) i * U, U, obs->candidates + ((size_t) i * K + c) * F, F, p->phi);
      ra__ridge_add (&p->model, p->phi, ra__slot_credit (fb, i, r, k));
    }
}

const ra_policy_class_t ra_egreedy_policy_class = {
  .name = "egreedy", .description = "epsilon-greedy over a ridge regression on phi(user, candidate)",
  .create = s_create, .destroy = s_destroy, .act = s_act, .learn = s_learn, .forget = s_forget,
};
