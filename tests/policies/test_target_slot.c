/*  tests/policies/test_target_slot.c - the target policy's per-slot credit (cfg "slot_credit" and
    "slot_feedback", docs/agents.md T6): each placed item's choice is also credited with its own
    rank's feedback, read from the next observation's "response".

    Checked: at slot_credit 0 nothing is allocated and no response is needed (the old path);
    the update's score gradient with the term minus the one without equals T6 computed here from
    the responses (feedback of step t from the observation after it, centred per rank over the
    steps that did not end an episode, pooled std, 0 on ended steps) through position-wise
    Plackett-Luce gradients of the reference; bad values and a response too short are refused
    naming the key; the checkpoint round trip. No server.                                      */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents/nn/nn_ref.h"
#define FIXTURE_SEED 12345u
#include "tests/policies/target_fixture.h"

enum { P = 2, N = 4, T = 3, K = 5, k = 2, U = 3, F = 2, RD = 5, FB = 1 };

TestSuite (target_slot, .init = setup, .fini = teardown, .timeout = 120);

typedef struct {
  float user[P * N * U], cand[P * N * K * F], resp[P * N * RD];
  ra_obs_batch_t obs;
} obs_t;

/* random users and candidates; the response's entries are 0/1 draws (clicks) */
static void s_obs (obs_t *o)
{
  s_random_obs (&o->obs, o->user, o->cand, P * N, K, k, U, F);
  for (int i = 0; i < P * N * RD; i++)
    o->resp[i] = s_uniform () < 0.4f ? 1.0f : 0.0f;
  o->obs.response_dim = RD, o->obs.response = o->resp;
}

static void s_cfg (ra_target_cfg_t *c, float beta)
{
  ra_target_cfg_default (c);
  c->num_envs = N, c->num_candidates = K, c->slate_size = k, c->user_dim = U, c->cand_dim = F;
  c->response_dim = RD, c->hidden = 8, c->layers = 1, c->rollout = T, c->population = P, c->seed = 5;
  c->slot_credit = beta, c->slot_feedback = FB;
}

static ra_target_t *s_new (const ra_target_cfg_t *c)
{
  ra_target_t *t = NULL;
  ra_error_t err;
  cr_assert_eq (ra_target_new (BE, c, &t, &err), RA_OK, "%s", err.message);
  return t;
}

Test (target_slot, zero_slot_credit_allocates_nothing_and_needs_no_response)
{
  ra_target_cfg_t c;
  s_cfg (&c, 0);
  c.response_dim = 0;
  ra_target_t *t = s_new (&c);
  cr_assert (!t->d_pos && !t->h_fb && !t->h_pos && !t->cur_resp);
  ra_target_destroy (&t);
  ra_target_cfg_t d;
  ra_target_cfg_default (&d);
  cr_assert_eq (d.slot_credit, 0.0f, "the default is the slate gradient alone");
  cr_assert_eq (d.slot_feedback, 0);
}

Test (target_slot, update_credits_each_rank_with_its_own_centred_feedback)
{
  const float beta = 1.7f;
  ra_target_cfg_t c;
  s_cfg (&c, beta);
  ra_target_t *a = s_new (&c);
  s_cfg (&c, 0);
  ra_target_t *b = s_new (&c); /* same seed: same parameters */
  static obs_t o[T + 1];
  int32_t slates[T][P * N * k];
  float rew[T][P * N];
  uint8_t done[T][P * N];
  for (int s = 0; s <= T; s++)
    s_obs (&o[s]);
  for (int s = 0; s < T; s++)
    for (int i = 0; i < P * N; i++) {
      s_random_pair (slates[s] + i * k, K);
      rew[s][i] = s_uniform ();
      done[s][i] = s_uniform () < 0.25f;
    }
  done[1][0] = 1; /* at least one ended step in replica 0 */
  for (int s = 0; s < T; s++) {
    ra_target_record (a, &o[s].obs, slates[s], rew[s], done[s]);
    ra_target_record (b, &o[s].obs, slates[s], rew[s], done[s]);
  }
  ra_error_t err;
  cr_assert_eq (ra_target_grad (a, &o[T].obs, NULL, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_target_grad (b, &o[T].obs, NULL, &err), RA_OK, "%s", err.message);

  /* T6 from the responses: step s's feedback is the response of observation s + 1 */
  const float *scores = a->pact[a->pi.n]; /* [P, TN, K], the same in b */
  const float M = (float) (T * N);
  double worst = 0;
  int nonzero = 0;
  for (int p = 0; p < P; p++) {
    double fb[T * N][k], mean[k] = { 0 }, ss = 0;
    int n = 0;
    for (int s = 0; s < T; s++)
      for (int e = 0; e < N; e++) {
        int x = s * N + e, env = p * N + e;
        for (int i = 0; i < k; i++)
          fb[x][i] = o[s + 1].resp[env * RD + FB + i];
        if (!done[s][env]) {
          n++;
          for (int i = 0; i < k; i++)
            mean[i] += fb[x][i];
        }
      }
    for (int i = 0; i < k; i++)
      mean[i] /= n;
    for (int s = 0; s < T; s++)
      for (int e = 0; e < N; e++)
        for (int i = 0; i < k && !done[s][p * N + e]; i++)
          ss += (fb[s * N + e][i] - mean[i]) * (fb[s * N + e][i] - mean[i]);
    double sd = sqrt (ss / (n * k));
    for (int s = 0; s < T; s++)
      for (int e = 0; e < N; e++) {
        int x = s * N + e, env = p * N + e;
        size_t row = (size_t) p * T * N + x;
        double sc[K], prev[K] = { 0 }, want[K] = { 0 };
        for (int j = 0; j < K; j++)
          sc[j] = scores[row * K + j];
        for (int i = 0; i < k; i++) {
          double coef = done[s][env] ? 0.0 : -beta / M * (fb[x][i] - mean[i]) / (sd + 1e-8), upto[K], h;
          ra_nn_ref_pl (sc, slates[s] + env * k, K, i + 1, &h, upto, NULL);
          for (int j = 0; j < K; j++) {
            want[j] += coef * (upto[j] - prev[j]);
            prev[j] = upto[j];
          }
        }
        for (int j = 0; j < K; j++) {
          double got = (double) a->d_dscores[row * K + j] - b->d_dscores[row * K + j];
          worst = fmax (worst, fabs (got - want[j]));
          nonzero += fabs (want[j]) > 1e-4;
          if (done[s][env])
            cr_assert_eq (a->d_dscores[row * K + j], b->d_dscores[row * K + j],
                          "an ended step gets no slot credit (replica %d, step %d, env %d)", p, s, e);
        }
      }
  }
  cr_assert_lt (worst, 2e-6, "d scores differ from T6 by up to %g", worst);
  cr_assert_gt (nonzero, P * T * N, "the term must change the gradient");
  ra_target_destroy (&a);
  ra_target_destroy (&b);
}

Test (target_slot, bad_values_and_a_short_response_are_refused_naming_the_key)
{
  ra_target_cfg_t c;
  s_cfg (&c, 0);
  ra_error_t err;
  ra_kv_t bad[] = { { .key = "slot_credit", .type = RA_KV_NUM, .num = -1 } };
  cr_assert_eq (ra_target_cfg_apply (&c, bad, 1, NULL, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "slot_credit"), "%s", err.message);
  ra_kv_t badfb[] = { { .key = "slot_feedback", .type = RA_KV_STR, .str = "x" } };
  cr_assert_eq (ra_target_cfg_apply (&c, badfb, 1, NULL, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "slot_feedback"), "%s", err.message);
  ra_kv_t good[] = { { .key = "slot_credit", .type = RA_KV_STR, .str = "2.5" },
                     { .key = "slot_feedback", .type = RA_KV_NUM, .num = 3 } };
  cr_assert_eq (ra_target_cfg_apply (&c, good, 2, NULL, &err), RA_OK, "%s", err.message);
  cr_assert_eq (c.slot_credit, 2.5f);
  cr_assert_eq (c.slot_feedback, 3);
  ra_target_t *t = NULL;
  /* 3 + k = 5 entries fit a response of 5; 4 + k do not */
  cr_assert_eq (ra_target_new (BE, &c, &t, &err), RA_OK, "%s", err.message);
  ra_target_destroy (&t);
  c.slot_feedback = 4;
  cr_assert_eq (ra_target_new (BE, &c, &t, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "slot_credit") && strstr (err.message, "response has 5"), "%s", err.message);
  cr_assert_null (t);
}

Test (target_slot, checkpoint_round_trip_keeps_the_settings)
{
  ra_target_cfg_t c;
  s_cfg (&c, 0.75f);
  c.slot_feedback = 2;
  ra_target_t *t = s_new (&c);
  char path[64];
  snprintf (path, sizeof path, "/tmp/test_target_slot_%d.safetensors", (int) getpid ());
  ra_error_t err;
  cr_assert_eq (ra_target_save (t, path, &err), RA_OK, "%s", err.message);
  ra_target_cfg_t back;
  ra_target_cfg_default (&back);
  cr_assert_eq (ra_target_checkpoint_settings (path, &back, &err), RA_OK, "%s", err.message);
  cr_assert_eq (back.slot_credit, 0.75f);
  cr_assert_eq (back.slot_feedback, 2);
  unlink (path);
  ra_target_destroy (&t);
}
