/*  tests/policies/test_target_adapt.c - the target arm adapts correctly (docs/agents.md, "Adapting
    the target"): on a tiny case its update equals, within Monte Carlo error, the exact gradient of
    the expected reward (finite differences over the enumerated slates) because it learns from
    slates it sampled; the same estimator on greedy slates does not. Checkpoints carry the reward
    scale and the adaptation settings; the arm reads them, its own settings win; the optimizer
    state is reset when asked; adapt_updates stops learning; greedy with learning is refused; the
    expert arm finds its task's file or says which one is missing. No server.               */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents/policies/target_int.h"

enum { K = 3, k = 2, U = 2, F = 2, M = 20000, NS = 6 };

static ra_nn_backend_t *BE;
static void setup (void) { cr_assert_eq (ra_nn_backend_open ("cpu", NULL, &BE, NULL), RA_OK); }
static void teardown (void) { ra_nn_backend_destroy (&BE); }
TestSuite (target_adapt, .init = setup, .fini = teardown, .timeout = 120);

static const float USER[U] = { 0.7f, -0.4f };
static const float CAND[K * F] = { 0.5f, -1.0f, -0.3f, 0.8f, 1.2f, 0.1f };
static const int32_t SLATES[NS][k] = { { 0, 1 }, { 0, 2 }, { 1, 0 }, { 1, 2 }, { 2, 0 }, { 2, 1 } };

/* The reward of a slate: the first slot matters most. */
static float s_reward (const int32_t *a) { return (a[0] == 0 ? 1.0f : a[0] == 2 ? 0.4f : 0.0f) + 0.3f * (a[1] == 1); }

/* n envs that all see USER and CAND */
static float *s_users, *s_cands;
static ra_obs_batch_t s_obs (int n)
{
  free (s_users);
  free (s_cands);
  s_users = malloc (sizeof (float) * U * n);
  s_cands = malloc (sizeof (float) * K * F * n);
  for (int i = 0; i < n; i++) {
    memcpy (s_users + i * U, USER, sizeof USER);
    memcpy (s_cands + i * K * F, CAND, sizeof CAND);
  }
  return (ra_obs_batch_t) { .num_envs = n, .num_candidates = K, .slate_size = k, .user_dim = U,
                            .cand_dim = F, .user = s_users, .candidates = s_cands };
}

/* A kv list from "key=value" texts (NULL-terminated); the caller ra_kv_list_fini's it. */
static ra_kv_list_t s_list (const char *const *settings)
{
  ra_kv_list_t l = { 0 };
  ra_error_t err;
  for (int i = 0; settings[i]; i++)
    cr_assert_eq (ra_kv_list_parse (&l, settings[i], &err), RA_OK, "%s: %s", settings[i], err.message);
  return l;
}

static ra_policy_args_t s_args (const ra_kv_list_t *l, int num_envs)
{
  return (ra_policy_args_t) { .config = l->items, .n_config = l->n, .seed = 11, .num_envs = num_envs,
                              .num_candidates = K, .slate_size = k, .user_dim = U, .cand_dim = F };
}

/* Exact J(theta) = sum over the 6 ordered slates of P(slate) r(slate), with the scores of a
   one-env policy whose parameters are theta. */
static double s_expected_reward (ra_target_t *one, const float *theta)
{
  ra_target_set_params (one, theta);
  ra_obs_batch_t o = s_obs (1);
  int32_t slate[k];
  ra_target_act (one, &o, true, slate);
  float scores[K];
  ra_nn_download (BE, scores, one->pact[one->pi.n], K);
  double J = 0;
  for (int s = 0; s < NS; s++)
    J += exp (ra_target_pl_logprob (scores, K, SLATES[s], k, NULL, NULL, NULL)) * s_reward (SLATES[s]);
  return J;
}

/* Indexes (into one replica's flat vector) of the scorer's parameters "l*". */
static int s_scorer_index (const ra_target_t *t, int *idx)
{
  int n = 0;
  for (int i = 0; i < t->params->ntensors; i++) {
    const ra_nn_tensor_t *x = &t->params->tensors[i];
    if (x->name[0] == 'l')
      for (size_t j = 0; j < x->numel; j++)
        idx[n++] = (int) (x->offset + j);
  }
  return n;
}

/* relative L2 error of est against -grad J over the scorer's parameters */
static double s_rel_err (const double *est, const double *dJ, int n)
{
  double d = 0, m = 0;
  for (int j = 0; j < n; j++) {
    d += (est[j] + dJ[j]) * (est[j] + dJ[j]);
    m += dJ[j] * dJ[j];
  }
  return sqrt (d / m);
}

Test (target_adapt, the_adapting_arms_update_is_the_gradient_of_the_expected_reward)
{
  /* plain policy gradient: SGD, no clipping, no advantage normalisation, no entropy, one-step
     episodes (gamma 0), unit reward scale; tanh for smooth finite differences */
  static const char *const set[] = { "lr=0.01", "optimizer=sgd", "clip_norm=0", "normalize_adv=false",
                                     "entropy=0", "gamma=0", "reward_scale=1", "rollout=1", "layers=1",
                                     "hidden=4", "activation=tanh", NULL };
  ra_kv_list_t l = s_list (set);
  ra_policy_args_t a = s_args (&l, M);
  ra_policy_t *arm = NULL;
  ra_error_t err;
  cr_assert_eq (ra_target_policy_class.create (&a, &arm, &err), RA_OK, "%s", err.message);
  ra_target_t *t = ra_target_arm_policy (arm);
  size_t n = ra_target_num_params (t);
  float *theta0 = malloc (sizeof (float) * n), *theta1 = malloc (sizeof (float) * n);
  int *idx = malloc (sizeof (int) * n);
  int ns = s_scorer_index (t, idx);
  ra_target_get_params (t, theta0);

  /* exact gradient of J by central differences, in the parameters of a one-env copy */
  ra_target_cfg_t c1 = t->cfg;
  c1.num_envs = 1;
  ra_target_t *one = NULL;
  cr_assert_eq (ra_target_new (BE, &c1, &one, &err), RA_OK, "%s", err.message);
  double *dJ = calloc ((size_t) ns, sizeof *dJ), *est = calloc ((size_t) ns, sizeof *est);
  float *th = malloc (sizeof (float) * n);
  const float h = 1e-2f;
  for (int j = 0; j < ns; j++) {
    memcpy (th, theta0, sizeof (float) * n);
    th[idx[j]] = theta0[idx[j]] + h;
    double jp = s_expected_reward (one, th);
    th[idx[j]] = theta0[idx[j]] - h;
    double jm = s_expected_reward (one, th);
    dJ[j] = (jp - jm) / ((double) (theta0[idx[j]] + h) - (double) (theta0[idx[j]] - h));
  }

  /* the arm: act on M identical envs (it samples: it learns), one-step episodes, then the next
     act runs the update; with SGD, (theta0 - theta1) / lr is the gradient it applied */
  ra_obs_batch_t o = s_obs (M);
  int32_t *sl = malloc (sizeof (int32_t) * M * k);
  float *rew = malloc (sizeof (float) * M);
  uint8_t *done = malloc (M);
  arm->cls->act (arm, &o, sl);
  int distinct_first[K] = { 0 };
  for (int i = 0; i < M; i++) {
    rew[i] = s_reward (sl + i * k);
    done[i] = 1;
    distinct_first[sl[i * k]] = 1;
  }
  cr_assert (distinct_first[0] && distinct_first[1] && distinct_first[2], "the arm must sample");
  ra_feedback_t fb = { .slates = sl, .reward = rew, .done = done };
  arm->cls->learn (arm, &o, &fb);
  arm->cls->act (arm, &o, sl);
  ra_target_get_params (t, theta1);
  for (int j = 0; j < ns; j++)
    est[j] = ((double) theta0[idx[j]] - theta1[idx[j]]) / 0.01;
  double e_sampled = s_rel_err (est, dJ, ns);

  /* the old defect: the same estimator on greedy slates (every env shows the top-k) */
  ra_target_t *g = ra_target_clone (t);
  cr_assert (g);
  ra_target_set_params (g, theta0);
  ra_target_act (g, &o, true, sl);
  for (int i = 0; i < M; i++)
    rew[i] = s_reward (sl + i * k);
  ra_target_record (g, &o, sl, rew, done);
  cr_assert_eq (ra_target_grad (g, &o, NULL, &err), RA_OK, "%s", err.message);
  float *grad = malloc (sizeof (float) * n);
  ra_nn_download (BE, grad, g->params->grad, n);
  for (int j = 0; j < ns; j++)
    est[j] = grad[idx[j]];
  double e_greedy = s_rel_err (est, dJ, ns);
  cr_log_info ("relative error of the update against the exact gradient: sampled slates %.4f, "
               "greedy slates %.4f", e_sampled, e_greedy);
  cr_assert_lt (e_sampled, 0.1, "sampled slates: relative error %.3f of the update against the exact "
                "gradient (greedy: %.3f)", e_sampled, e_greedy);
  cr_assert_gt (e_greedy, 0.5, "greedy slates should give a biased gradient (error %.3f)", e_greedy);

  free (grad);
  ra_target_destroy (&g);
  free (sl), free (rew), free (done), free (th), free (dJ), free (est), free (idx), free (theta0),
    free (theta1);
  ra_target_destroy (&one);
  arm->cls->destroy (&arm);
  ra_kv_list_fini (&l);
}
