/*  tests/policies/test_target_pop.c - the target policy's population axis and its optimizer API
    on synthetic observations (no server): P batched replicas act, compute gradients and step
    like P separate one-replica policies (P = 1, 4, 64); grad then step equals update; copying a
    replica carries its Adam state; the update's reuse of act's activations equals recomputing
    them; copying into an existing policy reallocates nothing.                                  */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agents/policies/target_int.h"

enum { N = 3, K = 6, k = 2, U = 5, F = 4, T = 4 };

static ra_nn_backend_t *BE;
static void setup (void) { cr_assert_eq (ra_nn_backend_open ("cpu", NULL, &BE, NULL), RA_OK); }
static void teardown (void) { ra_nn_backend_destroy (&BE); }
TestSuite (target_pop, .init = setup, .fini = teardown, .timeout = 120);

static ra_target_t *s_new (int P, uint64_t seed)
{
  ra_target_cfg_t c;
  ra_target_cfg_default (&c);
  c.num_envs = N, c.num_candidates = K, c.slate_size = k, c.user_dim = U, c.cand_dim = F;
  c.hidden = 16, c.layers = 2, c.rollout = T, c.seed = seed, c.population = P;
  c.entropy_coef = 0.05f;
  ra_target_t *t = NULL;
  ra_error_t err;
  cr_assert_eq (ra_target_new (BE, &c, &t, &err), RA_OK, "%s", err.message);
  return t;
}

/* Observations, rewards and done flags for P*N envs drawn from r. */
typedef struct {
  float user[64 * N * U], cand[64 * N * K * F], rew[64 * N];
  uint8_t done[64 * N];
  ra_obs_batch_t obs;
} batch_t;

static void s_batch (batch_t *b, int P, ra_nn_rng_t *r)
{
  for (int i = 0; i < P * N * U; i++)
    b->user[i] = ra_nn_rng_normal (r);
  for (int i = 0; i < P * N * K * F; i++)
    b->cand[i] = ra_nn_rng_normal (r);
  for (int i = 0; i < P * N; i++) {
    b->rew[i] = ra_nn_rng_uniform (r) * 3.0f;
    b->done[i] = ra_nn_rng_uniform (r) < 0.2f;
  }
  b->obs = (ra_obs_batch_t) { .num_envs = P * N, .num_candidates = K, .slate_size = k, .user_dim = U,
                              .cand_dim = F, .user = b->user, .candidates = b->cand };
}

/* Replica p's block of a batch as a one-replica batch. */
static ra_obs_batch_t s_block (const batch_t *b, int p)
{
  return (ra_obs_batch_t) { .num_envs = N, .num_candidates = K, .slate_size = k, .user_dim = U, .cand_dim = F,
                            .user = b->user + (size_t) p * N * U, .candidates = b->cand + (size_t) p * N * K * F };
}

/* max |a - b| / max |a| over n floats */
static double s_rel (const float *a, const float *b, size_t n)
{
  double d = 0, m = 1e-30;
  for (size_t i = 0; i < n; i++) {
    d = fmax (d, fabs ((double) a[i] - b[i]));
    m = fmax (m, fabs ((double) a[i]));
  }
  return d / m;
}

static void s_pop_vs_separate (int P)
{
  ra_target_t *pop = s_new (P, 5), **one = calloc ((size_t) P, sizeof *one);
  cr_assert (one);
  size_t n = pop->params->n;
  /* distinct replicas: perturb each, give each its own lr */
  float *all = malloc (sizeof (float) * n * P);
  ra_target_get_params (pop, all);
  ra_nn_rng_t r;
  ra_nn_rng_init (&r, 77, 0);
  for (size_t i = 0; i < n * P; i++)
    all[i] += 0.05f * ra_nn_rng_normal (&r);
  ra_target_set_params (pop, all);
  for (int p = 0; p < P; p++) {
    ra_target_set_lr (pop, p, 1e-3f * (1 + p % 5));
    one[p] = s_new (1, 5);
    ra_target_set_params (one[p], all + (size_t) p * n);
    ra_target_set_lr (one[p], 0, 1e-3f * (1 + p % 5));
    *ra_target_rng (one[p], 0) = *ra_target_rng (pop, p);
  }
  static batch_t b;
  int32_t sl[64 * N * k], so[N * k];
  ra_error_t err;
  for (int round = 0; round < 2; round++) {
    for (int s = 0; s < T; s++) {
      s_batch (&b, P, &r);
      ra_target_act (pop, &b.obs, false, sl);
      ra_target_record (pop, &b.obs, sl, b.rew, b.done);
      for (int p = 0; p < P; p++) {
        ra_obs_batch_t o = s_block (&b, p);
        ra_target_act (one[p], &o, false, so);
        cr_assert_eq (memcmp (so, sl + (size_t) p * N * k, sizeof so), 0, "P=%d replica %d: slates differ", P, p);
        ra_target_record (one[p], &o, so, b.rew + p * N, b.done + p * N);
      }
    }
    s_batch (&b, P, &r);
    cr_assert_eq (ra_target_grad (pop, &b.obs, NULL, &err), RA_OK, "%s", err.message);
    for (int p = 0; p < P; p++) {
      ra_obs_batch_t o = s_block (&b, p);
      cr_assert_eq (ra_target_grad (one[p], &o, NULL, &err), RA_OK, "%s", err.message);
      double d = s_rel (one[p]->params->grad, pop->params->grad + (size_t) p * n, n);
      cr_assert_leq (d, 1e-6, "P=%d replica %d: gradients differ by %g (relative)", P, p, d);
    }
    cr_assert_eq (ra_target_step (pop, NULL, &err), RA_OK, "%s", err.message);
    for (int p = 0; p < P; p++) {
      cr_assert_eq (ra_target_step (one[p], NULL, &err), RA_OK, "%s", err.message);
      double d = s_rel (one[p]->params->data, pop->params->data + (size_t) p * n, n);
      cr_assert_leq (d, 1e-6, "P=%d replica %d: parameters after step differ by %g", P, p, d);
      cr_assert_eq (ra_nn_params_replica_steps (pop->params, p), round + 1);
    }
  }
  /* the replicas really are different policies */
  if (P > 1)
    cr_assert_gt (s_rel (pop->params->data, pop->params->data + n, n), 1e-3);
  for (int p = 0; p < P; p++)
    ra_target_destroy (&one[p]);
  free (one);
  free (all);
  ra_target_destroy (&pop);
}

Test (target_pop, one_replica_batched_equals_a_separate_policy) { s_pop_vs_separate (1); }
Test (target_pop, four_replicas_batched_equal_four_separate_policies) { s_pop_vs_separate (4); }
Test (target_pop, sixty_four_replicas_batched_equal_sixty_four_separate_policies) { s_pop_vs_separate (64); }

/* Fills one rollout (act + record on every step) and returns the bootstrap batch in *b. */
static void s_rollout (ra_target_t *t, batch_t *b, uint64_t seed, bool act)
{
  ra_nn_rng_t r;
  ra_nn_rng_init (&r, seed, 0);
  int32_t sl[64 * N * k];
  for (int s = 0; s < T; s++) {
    s_batch (b, t->P, &r);
    if (act)
      ra_target_act (t, &b->obs, false, sl);
    else
      for (int i = 0; i < t->P * N * k; i++)
        sl[i] = (i % k) + (int) (ra_nn_rng_u64 (&r) % 2) * k; /* distinct within a slate */
    ra_target_record (t, &b->obs, sl, b->rew, b->done);
  }
  s_batch (b, t->P, &r);
}

Test (target_pop, grad_then_step_equals_update)
{
  ra_target_t *a = s_new (3, 9), *c = ra_target_clone (a);
  cr_assert (c);
  static batch_t b;
  ra_error_t err;
  ra_target_losses_t la[3], lc[3];
  float norms[3];
  for (int round = 0; round < 3; round++) {
    s_rollout (a, &b, 100 + round, false);
    cr_assert_eq (ra_target_update (a, &b.obs, la, &err), RA_OK, "%s", err.message);
    s_rollout (c, &b, 100 + round, false);
    cr_assert_eq (ra_target_grad (c, &b.obs, lc, &err), RA_OK, "%s", err.message);
    cr_assert_eq (ra_target_step (c, norms, &err), RA_OK, "%s", err.message);
    for (int p = 0; p < 3; p++) {
      cr_assert_eq (la[p].policy_loss, lc[p].policy_loss);
      cr_assert_eq (la[p].grad_norm, norms[p]);
      cr_assert (norms[p] > 0 && isfinite (norms[p]));
    }
  }
  size_t n = ra_target_num_params (a);
  cr_assert_eq (memcmp (a->params->data, c->params->data, n * sizeof (float)), 0);
  cr_assert_eq (memcmp (a->params->adam_v, c->params->adam_v, n * sizeof (float)), 0);
  ra_target_destroy (&a);
  ra_target_destroy (&c);
}

Test (target_pop, copying_a_replica_carries_its_adam_state)
{
  ra_target_t *t = s_new (2, 4);
  static batch_t b;
  ra_error_t err;
  ra_target_set_lr (t, 0, 2e-3f);
  for (int round = 0; round < 2; round++) { /* replica 0 takes 2 steps with its own data */
    s_rollout (t, &b, 200 + round, false);
    cr_assert_eq (ra_target_update (t, &b.obs, NULL, &err), RA_OK, "%s", err.message);
  }
  ra_target_copy_replica (t, 1, t, 0);
  size_t n = t->params->n;
  ra_nn_params_t *q = t->params;
  cr_assert_eq (memcmp (q->adam_m, q->adam_m + n, n * sizeof (float)), 0);
  cr_assert_eq (memcmp (q->adam_v, q->adam_v + n, n * sizeof (float)), 0);
  cr_assert_eq (ra_nn_params_replica_steps (q, 1), 2);
  /* both replicas now see the same data: they must stay identical, which needs equal moments,
     step counts and learning rates */
  ra_nn_rng_t r;
  ra_nn_rng_init (&r, 300, 0);
  int32_t sl[2 * N * k];
  for (int s = 0; s < T; s++) {
    s_batch (&b, 2, &r);
    memcpy (b.user + N * U, b.user, sizeof (float) * N * U);
    memcpy (b.cand + N * K * F, b.cand, sizeof (float) * N * K * F);
    memcpy (b.rew + N, b.rew, sizeof (float) * N);
    memcpy (b.done + N, b.done, N);
    ra_target_act (t, &b.obs, true, sl);
    ra_target_record (t, &b.obs, sl, b.rew, b.done);
  }
  s_batch (&b, 2, &r);
  memcpy (b.user + N * U, b.user, sizeof (float) * N * U);
  cr_assert_eq (ra_target_update (t, &b.obs, NULL, &err), RA_OK, "%s", err.message);
  cr_assert_eq (memcmp (q->data, q->data + n, n * sizeof (float)), 0, "replica 1 diverged from replica 0");
  cr_assert_eq (ra_nn_params_replica_steps (q, 1), 3);
  ra_target_destroy (&t);
}

Test (target_pop, update_reusing_act_activations_equals_recomputing_them)
{
  ra_target_t *a = s_new (2, 6), *c = ra_target_clone (a);
  static batch_t b;
  ra_error_t err;
  int32_t sl[2 * N * k];
  ra_nn_rng_t r;
  ra_nn_rng_init (&r, 400, 0);
  for (int s = 0; s < T; s++) {
    s_batch (&b, 2, &r);
    ra_target_act (a, &b.obs, false, sl);
    ra_target_record (a, &b.obs, sl, b.rew, b.done); /* act saw it: reused */
    ra_target_record (c, &b.obs, sl, b.rew, b.done); /* never acted: recomputed */
  }
  cr_assert (a->slot_ok[0] && a->slot_ok[T - 1] && !c->slot_ok[0]);
  s_batch (&b, 2, &r);
  cr_assert_eq (ra_target_update (a, &b.obs, NULL, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_target_update (c, &b.obs, NULL, &err), RA_OK, "%s", err.message);
  size_t n = ra_target_num_params (a);
  double d = s_rel (a->params->data, c->params->data, n);
  cr_assert_leq (d, 1e-6, "reuse vs recompute differ by %g", d);
  /* act on one observation, record another: the slot must not be reused */
  s_batch (&b, 2, &r);
  ra_target_act (a, &b.obs, false, sl);
  b.cand[7] += 1.0f;
  ra_target_record (a, &b.obs, sl, b.rew, b.done);
  cr_assert (!a->slot_ok[0]);
  ra_target_destroy (&a);
  ra_target_destroy (&c);
}

Test (target_pop, copy_into_an_existing_policy_reallocates_nothing)
{
  ra_target_t *a = s_new (2, 1), *c = s_new (2, 2);
  static batch_t b;
  ra_error_t err;
  s_rollout (a, &b, 500, true);
  cr_assert_eq (ra_target_update (a, &b.obs, NULL, &err), RA_OK, "%s", err.message);
  s_rollout (c, &b, 501, true);
  cr_assert_eq (ra_target_update (c, &b.obs, NULL, &err), RA_OK, "%s", err.message);
  float *data = c->params->data, *m = c->params->adam_m;
  cr_assert_eq (ra_target_copy (c, a, &err), RA_OK, "%s", err.message);
  cr_assert_eq (c->params->data, data);
  cr_assert_eq (c->params->adam_m, m);
  size_t n = ra_target_num_params (a);
  cr_assert_eq (memcmp (a->params->data, c->params->data, n * sizeof (float)), 0);
  cr_assert_eq (memcmp (a->params->adam_m, c->params->adam_m, n * sizeof (float)), 0);
  cr_assert_eq (ra_target_reward_scale (c, 1), ra_target_reward_scale (a, 1));
  ra_target_t *w = s_new (3, 1);
  cr_assert_eq (ra_target_copy (w, a, &err), RA_ERR_BAD_CONFIG);
  ra_target_destroy (&w);
  ra_target_destroy (&a);
  ra_target_destroy (&c);
}
