/*  agents/policies/target_arm.c - the target policy as an A/B arm ("target"): greedy (or
    sampled) slates, fine-tuning by actor-critic every T steps while the harness plays, and
    forget = back to the parameters it was created or loaded with.

    Owns its backend, its policy and a copy of the initial parameters. One thread.             */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "agents/policies/target_int.h"

typedef struct {
  ra_policy_t base;
  ra_nn_backend_t *be;
  ra_target_t *t;
  ra_nn_params_t *init;        /* parameters and optimizer state at creation */
  float init_reward_scale;
  bool pending;                /* a full rollout waits for its bootstrap observation */
} s_arm_t;

static void s_destroy (ra_policy_t **p_p)
{
  if (!p_p || !*p_p)
    return;
  s_arm_t *a = (s_arm_t *) *p_p;
  ra_nn_params_destroy (&a->init);
  ra_target_destroy (&a->t);
  ra_nn_backend_destroy (&a->be);
  free (a);
  *p_p = NULL;
}

static const char *s_str (const ra_policy_args_t *args, const char *key)
{
  for (int i = 0; i < args->n_config; i++)
    if (!strcmp (args->config[i].key, key))
      return args->config[i].type == RA_KV_STR ? args->config[i].str : "";
  return NULL;
}

static ra_err_t s_create (const ra_policy_args_t *args, ra_policy_t **out, ra_error_t *err)
{
  *out = NULL;
  ra_target_cfg_t cfg;
  ra_target_cfg_default (&cfg);
  cfg.seed = args->seed;
  static const char *const own[] = { "checkpoint", "device", NULL };
  ra_err_t rc = ra_target_cfg_apply (&cfg, args->config, args->n_config, own, err);
  if (rc != RA_OK)
    return rc;
  if (cfg.population != 1) /* the harness hands one batch of N envs: one replica */
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "target: the A/B arm runs one replica; 'population' must be 1, got %d",
                         cfg.population);
  cfg.num_envs = args->num_envs;
  cfg.num_candidates = args->num_candidates;
  cfg.slate_size = args->slate_size;
  cfg.user_dim = args->user_dim;
  cfg.cand_dim = args->cand_dim;
  const char *ckpt = s_str (args, "checkpoint"), *dev = s_str (args, "device");
  if ((ckpt && !*ckpt) || (dev && !*dev))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: '%s' must be a non-empty string",
                         ckpt && !*ckpt ? "checkpoint" : "device");
  if (ckpt && (rc = ra_target_checkpoint_arch (ckpt, &cfg.hidden, &cfg.layers, err)) != RA_OK)
    return rc;
  s_arm_t *a = calloc (1, sizeof *a);
  if (!a)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "target: out of memory");
  a->base.cls = &ra_target_policy_class;
  if ((rc = ra_nn_backend_open (dev ? dev : "cpu", NULL, &a->be, err)) != RA_OK)
    goto fail;
  if ((rc = ra_target_new (a->be, &cfg, &a->t, err)) != RA_OK)
    goto fail;
  if (ckpt && (rc = ra_target_load (a->t, ckpt, err)) != RA_OK)
    goto fail;
  if (!(a->init = ra_nn_params_clone (ra_target_params (a->t)))) {
    rc = ra_error_set (err, RA_ERR_NOMEM, -1, "target: out of memory");
    goto fail;
  }
  a->init_reward_scale = a->t->reward_scale[0];
  *out = &a->base;
  return RA_OK;
fail:;
  ra_policy_t *p = &a->base;
  s_destroy (&p);
  return rc;
}

static void s_act (ra_policy_t *p, const ra_obs_batch_t *obs, int32_t *slates)
{
  s_arm_t *a = (s_arm_t *) p;
  if (a->pending) { /* obs is the observation after the last recorded step */
    ra_error_t err;
    (void) ra_target_update (a->t, obs, NULL, &err); /* out of memory: the arm keeps acting */
    a->pending = false;
  }
  ra_target_act (a->t, obs, a->t->cfg.greedy, slates);
}

static void s_learn (ra_policy_t *p, const ra_obs_batch_t *obs, const ra_feedback_t *fb)
{
  s_arm_t *a = (s_arm_t *) p;
  if (a->pending || obs->num_envs != a->t->cfg.num_envs)
    return; /* a batch of another size cannot join the rollout */
  a->pending = ra_target_record (a->t, obs, fb->slates, fb->reward, fb->done);
}

static void s_forget (ra_policy_t *p)
{
  s_arm_t *a = (s_arm_t *) p;
  /* same table, no reallocation; moments exist on both sides once allocated, so this cannot fail
     after the first forget that found them (and if allocating them fails, data is still copied) */
  ra_error_t err;
  if (ra_nn_params_copy (a->t->params, a->init, &err) != RA_OK)
    ra_nn_copy (a->be, a->t->params->data, a->init->data, a->init->n);
  a->t->reward_scale[0] = a->init_reward_scale;
  ra_target_clear_rollout (a->t);
  a->pending = false;
}

const ra_policy_class_t ra_target_policy_class = {
  .name = "target",
  .description = "MLP scorer over (user, candidate) pairs, Plackett-Luce slates, actor-critic "
                 "with GAE; fine-tunes every T steps",
  .create = s_create,
  .destroy = s_destroy,
  .act = s_act,
  .learn = s_learn,
  .forget = s_forget,
};
