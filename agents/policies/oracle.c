/*  agents/policies/oracle.c - the oracle arm (docs/agents.md 1.8): plays the sim's best slate
    for the current observation, fb->oracle_slates from the previous step (the env must be made
    with config oracle=true). Where no oracle slate exists for an env's observation (the first
    act after a reset, the first step of each new episode under autoreset, or a sim without
    oracle info) it falls back to the greedy affinity slate: the top k candidates by
    u[0:e] . c[0:e] (interest estimate times embedding, baseline.h). No settings.            */
#include <stdlib.h>
#include <string.h>

#include "agents/policies/baseline.h"
#include "agents/policies/baselines.h"

typedef struct {
  ra_policy_t base;
  int N, k;
  int32_t *next;                        /* N x k oracle slates for the coming act */
  uint8_t *have;                        /* N: next[i] is valid */
  float *score;                         /* K */
  int64_t fallbacks, plays;             /* counters, for tests and reports */
} s_or_t;

static void s_destroy (ra_policy_t **pp)
{
  if (!pp || !*pp)
    return;
  s_or_t *p = (s_or_t *) *pp;
  free (p->next);
  free (p->have);
  free (p->score);
  free (p);
  *pp = NULL;
}

static void s_forget (ra_policy_t *pol)
{
  s_or_t *p = (s_or_t *) pol;
  memset (p->have, 0, (size_t) p->N);
}

static ra_err_t s_create (const ra_policy_args_t *args, ra_policy_t **out, ra_error_t *err)
{
  static const char *const keys[] = { NULL };
  ra_err_t rc = ra__config_check (args, keys, err);
  if (rc != RA_OK)
    return rc;
  s_or_t *p = calloc (1, sizeof *p);
  if (!p)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "oracle arm: out of memory");
  p->base.cls = &ra_oracle_policy_class;
  p->N = args->num_envs;
  p->k = args->slate_size;
  p->next = calloc ((size_t) p->N * p->k, sizeof *p->next);
  p->have = calloc ((size_t) p->N, 1);
  p->score = calloc ((size_t) args->num_candidates, sizeof *p->score);
  if (!p->next || !p->have || !p->score) {
    s_destroy ((ra_policy_t **) &p);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "oracle arm: out of memory");
  }
  *out = &p->base;
  return RA_OK;
}

static void s_act (ra_policy_t *pol, const ra_obs_batch_t *obs, int32_t *slates)
{
  s_or_t *p = (s_or_t *) pol;
  int K = obs->num_candidates, k = obs->slate_size, U = obs->user_dim, F = obs->cand_dim;
  int e = ra__embed_dim (U, F);
  for (int i = 0; i < obs->num_envs; i++) {
    int32_t *slate = slates + (size_t) i * k;
    if (i < p->N && p->have[i]) {
      memcpy (slate, p->next + (size_t) i * k, (size_t) k * sizeof *slate);
      p->have[i] = 0;
      p->plays++;
      continue;
    }
    for (int c = 0; c < K; c++) {   /* greedy affinity fallback */
      const float *u = obs->user + (size_t) i * U, *x = obs->candidates + ((size_t) i * K + c) * F;
      float s = 0;
      for (int j = 0; j < e; j++)
        s += u[j] * x[j];
      p->score[c] = s;
    }
    ra__slate_top_k (p->score, K, k, slate);
    p->fallbacks++;
  }
}

static void s_learn (ra_policy_t *pol, const ra_obs_batch_t *obs, const ra_feedback_t *fb)
{
  s_or_t *p = (s_or_t *) pol;
  int k = obs->slate_size;
  for (int i = 0; i < obs->num_envs && i < p->N; i++) {
    /* after a done step the next observation starts a new episode: its oracle slate is not
       the one the sim reported (that one was for the final observation) */
    p->have[i] = fb->oracle_slates && !(fb->done && fb->done[i]);
    if (p->have[i])
      memcpy (p->next + (size_t) i * k, fb->oracle_slates + (size_t) i * k, (size_t) k * sizeof (int32_t));
  }
}

/* Nothing is learned: learn only keeps the next oracle slates, which the frozen evaluation still
   hands over (docs/agents.md 2.1). */
static void s_freeze (ra_policy_t *pol)
{
  (void) pol;
}

const ra_policy_class_t ra_oracle_policy_class = {
  .name = "oracle", .description = "the sim's best slate (config oracle=true); greedy affinity where none",
  .create = s_create, .destroy = s_destroy, .act = s_act, .learn = s_learn, .forget = s_forget,
  .freeze = s_freeze,
};
