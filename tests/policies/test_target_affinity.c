/*  tests/policies/test_target_affinity.c - the target policy's affinity head (cfg "affinity",
    docs/agents.md T7): s_j = scorer(u, c_j) + c_j . (A u + a), A [F, U] and a [F] in the
    parameter vector after the two MLPs.

    Checked: off by default and allocating nothing; on, it starts at A = 0, a = 0 and leaves every
    score, slate and MLP parameter as without it; with A, a set, act's scores minus the scorer's
    are T7 computed here; the update's gradients of A and a are sum_j ds_j c_j u^T and
    sum_j ds_j c_j over the rollout's steps, from the update's own score gradient; the key's bad
    values are refused naming it; a checkpoint keeps the head, ra_target_checkpoint_arch reports
    it, and a policy without the head refuses the file. No server.                         */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIXTURE_SEED 777u
#include "tests/policies/target_fixture.h"

enum { P = 2, N = 3, T = 2, K = 5, k = 2, U = 4, F = 3 };

TestSuite (target_affinity, .init = setup, .fini = teardown, .timeout = 120);

typedef struct {
  float user[P * N * U], cand[P * N * K * F];
  ra_obs_batch_t obs;
} obs_t;

static void s_obs (obs_t *o) { s_random_obs (&o->obs, o->user, o->cand, P * N, K, k, U, F); }

static ra_target_t *s_new (bool affinity, int population)
{
  ra_target_cfg_t c;
  ra_target_cfg_default (&c);
  c.num_envs = N, c.num_candidates = K, c.slate_size = k, c.user_dim = U, c.cand_dim = F;
  c.hidden = 6, c.layers = 1, c.rollout = T, c.population = population, c.seed = 9, c.affinity = affinity;
  ra_target_t *t = NULL;
  ra_error_t err;
  cr_assert_eq (ra_target_new (BE, &c, &t, &err), RA_OK, "%s", err.message);
  return t;
}

/* replica p's host copy of tensor i */
static const float *s_tensor (const ra_target_t *t, const float *flat, int p, int i)
{
  return flat + (size_t) p * t->params->n + t->params->tensors[i].offset;
}

Test (target_affinity, off_by_default_and_on_it_starts_as_the_scorer_alone)
{
  ra_target_cfg_t d;
  ra_target_cfg_default (&d);
  cr_assert_not (d.affinity);
  ra_target_t *a = s_new (true, P), *b = s_new (false, P);
  cr_assert (!b->d_aff && b->aff_w < 0 && b->aff_b < 0);
  cr_assert (a->d_aff && a->aff_w >= 0);
  size_t n = a->params->n;
  float *pa = malloc (sizeof (float) * n * P), *pb = malloc (sizeof (float) * b->params->n * P);
  ra_target_get_params (a, pa);
  ra_target_get_params (b, pb);
  for (int p = 0; p < P; p++) {
    size_t head = a->params->tensors[a->aff_w].offset; /* the MLPs come first, at the same offsets */
    cr_assert_eq (memcmp (pa + p * n, pb + p * b->params->n, head * sizeof (float)), 0);
    for (int x = 0; x < 2; x++) {
      int i = x ? a->aff_b : a->aff_w;
      const float *v = s_tensor (a, pa, p, i);
      for (size_t j = 0; j < a->params->tensors[i].numel; j++)
        cr_assert_eq (v[j], 0.0f, "the affinity head starts at 0");
    }
  }
  obs_t o;
  s_obs (&o);
  int32_t sa[P * N * k], sb[P * N * k];
  ra_target_act (a, &o.obs, false, sa);
  ra_target_act (b, &o.obs, false, sb);
  cr_assert_eq (memcmp (sa, sb, sizeof sa), 0, "same sampled slates");
  cr_assert_eq (memcmp (a->pact[a->pi.n], b->pact[b->pi.n], sizeof (float) * P * T * N * K), 0,
                "same scores, bit for bit");
  free (pa), free (pb);
  ra_target_destroy (&a);
  ra_target_destroy (&b);
}

Test (target_affinity, scores_and_update_gradient_follow_t7)
{
  ra_target_t *a = s_new (true, P), *b = s_new (false, P);
  size_t n = a->params->n;
  float *pa = malloc (sizeof (float) * n * P);
  ra_target_get_params (a, pa);
  for (int p = 0; p < P; p++)
    for (int x = 0; x < 2; x++) {
      int i = x ? a->aff_b : a->aff_w;
      float *v = pa + (size_t) p * n + a->params->tensors[i].offset;
      for (size_t j = 0; j < a->params->tensors[i].numel; j++)
        v[j] = s_uniform () - 0.5f;
    }
  ra_target_set_params (a, pa);

  /* act: a's scores minus b's (the same MLP) = c_j . (A u + a) per replica */
  static obs_t o[T + 1];
  for (int s = 0; s <= T; s++)
    s_obs (&o[s]);
  int32_t slates[T][P * N * k];
  float rew[T][P * N];
  uint8_t done[T][P * N];
  double worst = 0;
  for (int s = 0; s < T; s++) {
    int32_t sb[P * N * k];
    ra_target_act (a, &o[s].obs, true, slates[s]);
    ra_target_act (b, &o[s].obs, true, sb);
    for (int p = 0; p < P; p++) {
      const float *A = s_tensor (a, pa, p, a->aff_w), *bias = s_tensor (a, pa, p, a->aff_b);
      for (int e = 0; e < N; e++) {
        const float *u = o[s].user + (p * N + e) * U;
        size_t row = (size_t) p * T * N + (size_t) s * N + e;
        for (int j = 0; j < K; j++) {
          const float *c = o[s].cand + ((p * N + e) * K + j) * F;
          double want = 0;
          for (int f = 0; f < F; f++) {
            double tf = bias[f];
            for (int i = 0; i < U; i++)
              tf += (double) A[f * U + i] * u[i];
            want += c[f] * tf;
          }
          double got = (double) a->pact[a->pi.n][row * K + j] - b->pact[b->pi.n][row * K + j];
          worst = fmax (worst, fabs (got - want));
        }
      }
    }
    for (int i = 0; i < P * N; i++) {
      rew[s][i] = s_uniform ();
      done[s][i] = s_uniform () < 0.2f;
    }
    ra_target_record (a, &o[s].obs, slates[s], rew[s], done[s]);
    ra_target_record (b, &o[s].obs, sb, rew[s], done[s]); /* b's next act fills the next rollout row */
  }
  cr_assert_lt (worst, 1e-5, "scores differ from T7 by up to %g", worst);

  /* update: dA = sum over steps of dt u^T, da = sum of dt, dt = sum_j ds_j c_j */
  ra_error_t err;
  cr_assert_eq (ra_target_grad (a, &o[T].obs, NULL, &err), RA_OK, "%s", err.message);
  float *g = malloc (sizeof (float) * n * P);
  ra_nn_download (BE, g, a->params->grad, n * P);
  double gworst = 0, gmax = 0;
  for (int p = 0; p < P; p++) {
    double dA[F * U] = { 0 }, da[F] = { 0 };
    for (int s = 0; s < T; s++)
      for (int e = 0; e < N; e++) {
        size_t row = (size_t) p * T * N + (size_t) s * N + e;
        const float *u = o[s].user + (p * N + e) * U;
        for (int f = 0; f < F; f++) {
          double dt = 0;
          for (int j = 0; j < K; j++)
            dt += (double) a->d_dscores[row * K + j] * o[s].cand[((p * N + e) * K + j) * F + f];
          da[f] += dt;
          for (int i = 0; i < U; i++)
            dA[f * U + i] += dt * u[i];
        }
      }
    const float *gA = s_tensor (a, g, p, a->aff_w), *ga = s_tensor (a, g, p, a->aff_b);
    for (int x = 0; x < F * U; x++) {
      gworst = fmax (gworst, fabs (gA[x] - dA[x]));
      gmax = fmax (gmax, fabs (dA[x]));
    }
    for (int f = 0; f < F; f++)
      gworst = fmax (gworst, fabs (ga[f] - da[f]));
  }
  cr_assert_gt (gmax, 1e-4, "the head gets a gradient");
  cr_assert_lt (gworst, 1e-6, "dA, da differ from T7's by up to %g", gworst);
  free (pa), free (g);
  ra_target_destroy (&a);
  ra_target_destroy (&b);
}

Test (target_affinity, bad_values_are_refused_and_a_checkpoint_keeps_the_head)
{
  ra_target_cfg_t c;
  ra_target_cfg_default (&c);
  ra_error_t err;
  ra_kv_t bad[] = { { .key = "affinity", .type = RA_KV_STR, .str = "maybe" } };
  cr_assert_eq (ra_target_cfg_apply (&c, bad, 1, NULL, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "affinity"), "%s", err.message);
  ra_kv_t good[] = { { .key = "affinity", .type = RA_KV_STR, .str = "true" } };
  cr_assert_eq (ra_target_cfg_apply (&c, good, 1, NULL, &err), RA_OK, "%s", err.message);
  cr_assert (c.affinity);

  ra_target_t *t = s_new (true, 1); /* a checkpoint holds one replica */
  char path[64];
  snprintf (path, sizeof path, "/tmp/test_target_affinity_%d.safetensors", (int) getpid ());
  cr_assert_eq (ra_target_save (t, path, &err), RA_OK, "%s", err.message);
  int hidden = 0, layers = 0;
  bool affinity = false;
  cr_assert_eq (ra_target_checkpoint_arch (path, &hidden, &layers, &affinity, &err), RA_OK, "%s", err.message);
  cr_assert (affinity && hidden == 6 && layers == 1);
  ra_target_t *same = s_new (true, 1), *plain = s_new (false, 1);
  cr_assert_eq (ra_target_load (same, path, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_target_load (plain, path, &err), RA_ERR_BAD_CONFIG, "a policy without the head refuses the file");
  cr_assert (strstr (err.message, "affinity"), "%s", err.message);
  cr_assert_eq (ra_target_save (plain, path, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_target_load (same, path, &err), RA_ERR_BAD_CONFIG, "and the other way round");
  cr_assert (strstr (err.message, "affinity"), "%s", err.message);
  unlink (path);
  ra_target_destroy (&t);
  ra_target_destroy (&same);
  ra_target_destroy (&plain);
}
