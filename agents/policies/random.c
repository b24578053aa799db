/*  agents/policies/random.c - the random arm: k distinct candidates uniformly at random
    (docs/agents.md 1.1). No settings; learns nothing.                                     */
#include <stdlib.h>

#include "agents/policies/baseline.h"
#include "agents/policies/baselines.h"

typedef struct {
  ra_policy_t base;
  ra_rng_t rng;
  uint64_t seed;
} s_random_t;

static ra_err_t s_create (const ra_policy_args_t *args, ra_policy_t **out, ra_error_t *err)
{
  static const char *const keys[] = { NULL };
  ra_err_t rc = ra__config_check (args, keys, err);
  if (rc != RA_OK)
    return rc;
  if (args->num_candidates > RA__SLATE_RANDOM_MAX)   /* a server we do not control may offer more */
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "random arm: %d candidates, at most %d supported",
                         args->num_candidates, RA__SLATE_RANDOM_MAX);
  s_random_t *p = calloc (1, sizeof *p);
  if (!p)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "random arm: out of memory");
  p->base.cls = &ra_random_policy_class;
  p->seed = args->seed;
  ra_rng_seed_splitmix (&p->rng, args->seed);
  *out = &p->base;
  return RA_OK;
}

static void s_destroy (ra_policy_t **pp)
{
  if (pp && *pp) {
    free (*pp);
    *pp = NULL;
  }
}

static void s_act (ra_policy_t *pol, const ra_obs_batch_t *obs, int32_t *slates)
{
  s_random_t *p = (s_random_t *) pol;
  int k = obs->slate_size;
  for (int i = 0; i < obs->num_envs; i++)
    ra__slate_random (&p->rng, obs->num_candidates, k, slates + (size_t) i * k);
}

static void s_learn (ra_policy_t *pol, const ra_obs_batch_t *obs, const ra_feedback_t *fb)
{
  (void) pol;
  (void) obs;
  (void) fb;
}

static void s_forget (ra_policy_t *pol)
{
  (void) pol;
}

const ra_policy_class_t ra_random_policy_class = {
  .name = "random", .description = "k distinct candidates uniformly at random",
  .create = s_create, .destroy = s_destroy, .act = s_act, .learn = s_learn, .forget = s_forget,
};
