/*  tests/policies/test_target_credit.c - the target policy's task credit (cfg "task_credit",
    docs/agents.md T20): each env's reward in GAE adds w times the mean reward of its replica's
    other envs at the same step.

    Checked: the update with w > 0 on rewards r has the gradient of the update without it on
    the rewards r + w mean_{e' != e} r_e' computed here (so a credit that is ignored, taken
    over the wrong envs or across replicas fails); bad values are refused naming the key; the
    default is 0. No server.                                                                  */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE_SEED 777u
#include "tests/policies/target_fixture.h"

enum { P = 2, N = 4, T = 3, K = 5, k = 2, U = 3, F = 2 };

TestSuite (target_credit, .init = setup, .fini = teardown, .timeout = 120);

typedef struct {
  float user[P * N * U], cand[P * N * K * F];
  ra_obs_batch_t obs;
} obs_t;

static void s_obs (obs_t *o) { s_random_obs (&o->obs, o->user, o->cand, P * N, K, k, U, F); }

static ra_target_t *s_new (float w)
{
  ra_target_cfg_t c;
  ra_target_cfg_default (&c);
  c.num_envs = N, c.num_candidates = K, c.slate_size = k, c.user_dim = U, c.cand_dim = F;
  c.hidden = 8, c.layers = 1, c.rollout = T, c.population = P, c.seed = 9;
  c.reward_scale = 1; /* the same scale for both policies: a measured one would differ */
  c.task_credit = w;
  ra_target_t *t = NULL;
  ra_error_t err;
  cr_assert_eq (ra_target_new (BE, &c, &t, &err), RA_OK, "%s", err.message);
  return t;
}

Test (target_credit, the_update_is_the_one_on_rewards_with_the_task_mean_added)
{
  const float w = 2.5f;
  ra_target_t *a = s_new (w), *b = s_new (0); /* same seed: same parameters */
  static obs_t o[T + 1];
  int32_t slates[T][P * N * k];
  float rew[T][P * N], shaped[T][P * N];
  uint8_t done[T][P * N];
  for (int s = 0; s <= T; s++)
    s_obs (&o[s]);
  for (int s = 0; s < T; s++)
    for (int i = 0; i < P * N; i++) {
      s_random_pair (slates[s] + i * k, K);
      rew[s][i] = s_uniform () * (1 + (i >= N) * 3); /* replica 1's rewards on another scale */
      done[s][i] = s_uniform () < 0.25f;
    }
  for (int s = 0; s < T; s++)
    for (int p = 0; p < P; p++)
      for (int e = 0; e < N; e++) {
        double others = 0;
        for (int f = 0; f < N; f++)
          others += f == e ? 0 : rew[s][p * N + f];
        shaped[s][p * N + e] = (float) (rew[s][p * N + e] + w * others / (N - 1));
      }
  for (int s = 0; s < T; s++) {
    ra_target_record (a, &o[s].obs, slates[s], rew[s], done[s]);
    ra_target_record (b, &o[s].obs, slates[s], shaped[s], done[s]);
  }
  ra_error_t err;
  cr_assert_eq (ra_target_grad (a, &o[T].obs, NULL, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_target_grad (b, &o[T].obs, NULL, &err), RA_OK, "%s", err.message);
  size_t n = ra_target_num_params (a);
  float *ga = malloc (n * sizeof *ga), *gb = malloc (n * sizeof *gb);
  ra_nn_download (BE, ga, a->params->grad, n);
  ra_nn_download (BE, gb, b->params->grad, n);
  double worst = 0, size = 0;
  for (size_t j = 0; j < n; j++) {
    worst = fmax (worst, fabs ((double) ga[j] - gb[j]));
    size = fmax (size, fabs ((double) gb[j]));
  }
  cr_assert_gt (size, 1e-3, "the gradient must not vanish");
  cr_assert_lt (worst, 1e-6 * size + 1e-9, "gradients differ by up to %g (largest %g)", worst, size);

  /* and the credit changes the update: the same rewards without it give another gradient */
  ra_target_t *c = s_new (0);
  for (int s = 0; s < T; s++)
    ra_target_record (c, &o[s].obs, slates[s], rew[s], done[s]);
  cr_assert_eq (ra_target_grad (c, &o[T].obs, NULL, &err), RA_OK, "%s", err.message);
  ra_nn_download (BE, gb, c->params->grad, n);
  double apart = 0;
  for (size_t j = 0; j < n; j++)
    apart = fmax (apart, fabs ((double) ga[j] - gb[j]));
  cr_assert_gt (apart, 1e-2 * size, "the task credit left the gradient as it was (%g)", apart);
  free (ga);
  free (gb);
  ra_target_destroy (&a);
  ra_target_destroy (&b);
  ra_target_destroy (&c);
}

Test (target_credit, bad_values_are_refused_naming_the_key)
{
  ra_target_cfg_t c;
  ra_target_cfg_default (&c);
  cr_assert_eq (c.task_credit, 0.0f, "the default is each env's own reward");
  ra_error_t err;
  const ra_kv_t bad[] = { { .key = "task_credit", .type = RA_KV_NUM, .num = -1 },
                          { .key = "task_credit", .type = RA_KV_NUM, .num = 1e9 },
                          { .key = "task_credit", .type = RA_KV_STR, .str = "many" } };
  for (int i = 0; i < 3; i++) {
    cr_assert_eq (ra_target_cfg_apply (&c, bad + i, 1, NULL, &err), RA_ERR_BAD_CONFIG);
    cr_assert (strstr (err.message, "task_credit"), "%s", err.message);
  }
  const ra_kv_t good[] = { { .key = "task_credit", .type = RA_KV_STR, .str = "0.5" } };
  cr_assert_eq (ra_target_cfg_apply (&c, good, 1, NULL, &err), RA_OK, "%s", err.message);
  cr_assert_eq (c.task_credit, 0.5f);
}
