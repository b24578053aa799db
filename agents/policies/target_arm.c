/*  agents/policies/target_arm.c - the target policy as A/B arms (docs/agents.md, "Adapting the
    target"). "target": plays a checkpoint (or a fresh network) and adapts to the task as it
    plays: while it learns it samples its slates from the policy it updates, so the
    actor-critic gradient is on-policy; once frozen (lr = 0, after adapt_updates updates, or
    when the harness freezes it for its evaluation episodes) it acts greedily. "expert": the
    same arm on the task's own expert, <dir>/<split>-<id>.safetensors (scripts/train_experts.sh
    --dir), frozen unless lr is given. adapt_params=head: only the head adapts (the rest
    is put back after each update). forget = back to the parameters, optimizer state reward
    scale and sampling stream it was created with (it then plays as a fresh arm).

    Owns its backend, its policy and a copy of the initial parameters. One thread.             */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/policies/target_int.h"

typedef struct {
  ra_policy_t base;
  ra_nn_backend_t *be;
  ra_target_t *t;
  ra_nn_params_t *init;        /* parameters and optimizer state at creation */
  float init_reward_scale;
  ra_nn_rng_t init_rng;        /* the sampling stream at creation */
  bool pending;                /* a full rollout waits for its bootstrap observation */
  bool frozen;                 /* freeze was called (until forget) */
  int updates;                 /* updates on the current task */
  uint8_t *head;               /* adapt_params=head: ra_target_head_mask; else NULL */
  float *init_host, *now_host; /* with head: the initial parameters, and room for the current */
} s_arm_t;

static void s_destroy (ra_policy_t **p_p)
{
  if (!p_p || !*p_p)
    return;
  s_arm_t *a = (s_arm_t *) *p_p;
  ra_nn_params_destroy (&a->init);
  free (a->head);
  free (a->init_host);
  free (a->now_host);
  ra_target_destroy (&a->t);
  ra_nn_backend_destroy (&a->be);
  free (a);
  *p_p = NULL;
}

static const ra_kv_t *s_find (const ra_policy_args_t *args, const char *key)
{
  for (int i = 0; i < args->n_config; i++)
    if (!strcmp (args->config[i].key, key))
      return &args->config[i];
  return NULL;
}

static const char *s_str (const ra_policy_args_t *args, const char *key)
{
  const ra_kv_t *e = s_find (args, key);
  return e ? (e->type == RA_KV_STR ? e->str : "") : NULL;
}

/* Learning now: a positive lr, updates left, not frozen. */
static bool s_learning (const s_arm_t *a)
{
  const ra_target_cfg_t *c = &a->t->cfg;
  return !a->frozen && c->lr > 0 && (c->adapt_updates == 0 || a->updates < c->adapt_updates);
}

static ra_err_t s_create_as (const ra_policy_args_t *args, bool expert, ra_policy_t **out, ra_error_t *err)
{
  *out = NULL;
  const char *name = expert ? "expert" : "target";
  static const char *const own_target[] = { "checkpoint", "init", "device", NULL };
  static const char *const own_expert[] = { "dir", "device", NULL };
  const char *dev = s_str (args, "device");
  if (dev && !*dev)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "%s: 'device' must be a non-empty string", name);
  char path[1024];
  const char *ckpt = NULL;
  if (expert) {
    const char *dir = s_str (args, "dir");
    if (!dir || !*dir)
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "expert: needs dir=DIR, the directory "
                           "scripts/train_experts.sh --dir wrote the experts to");
    if (!args->task_split)
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "expert: the harness did not say which task "
                           "the arm plays, so it cannot pick the task's expert");
    if ((size_t) snprintf (path, sizeof path, "%s/%s-%lld.safetensors", dir, args->task_split,
                           (long long) args->task_id) >= sizeof path)
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "expert: dir '%s' is too long", dir);
    FILE *f = fopen (path, "rb");
    if (!f)
      return ra_error_set (err, RA_ERR_IO, -1, "expert: no expert for task %s:%lld: cannot open '%s' "
                           "(train it with scripts/train_experts.sh --dir %s --env SIM --split %s --ids %lld)",
                           args->task_split, (long long) args->task_id, path, dir, args->task_split,
                           (long long) args->task_id);
    fclose (f);
    ckpt = path;
  } else {
    ckpt = s_str (args, "checkpoint");
    if (ckpt && !*ckpt)
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: 'checkpoint' must be a non-empty string");
    /* init=FILE is checkpoint=FILE; init=random the fresh network (no checkpoint) */
    const char *init = s_str (args, "init");
    if (init && ckpt)
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: give 'init' or 'checkpoint', not both");
    if (init && !*init)
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: 'init' must be a checkpoint file or \"random\"");
    if (init && strcmp (init, "random"))
      ckpt = init;
  }
  /* defaults, then the checkpoint's adaptation settings, then the arm's own settings */
  ra_target_cfg_t cfg;
  ra_target_cfg_default (&cfg);
  ra_err_t rc;
  if (ckpt && (rc = ra_target_checkpoint_settings (ckpt, &cfg, err)) != RA_OK)
    return rc;
  if (expert)
    cfg.lr = 0; /* the expert is the reference, not a learner, unless lr is given */
  rc = ra_target_cfg_apply (&cfg, args->config, args->n_config, expert ? own_expert : own_target, err);
  if (rc != RA_OK)
    return rc;
  cfg.seed = args->seed;
  if (cfg.population != 1) /* the harness hands one batch of N envs: one replica */
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "%s: the A/B arm runs one replica; 'population' must be 1, got %d", name,
                         cfg.population);
  const ra_kv_t *g = s_find (args, "greedy");
  if (g && cfg.greedy && cfg.lr > 0)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "%s: greedy=true with lr > 0 would apply the on-policy gradient to slates "
                         "the policy did not sample; a learning arm samples (greedy applies once "
                         "frozen: lr=0 or after adapt_updates)", name);
  cfg.num_envs = args->num_envs;
  cfg.num_candidates = args->num_candidates;
  cfg.slate_size = args->slate_size;
  cfg.user_dim = args->user_dim;
  cfg.cand_dim = args->cand_dim;
  cfg.response_dim = args->response_dim;
  if (ckpt && (rc = ra_target_checkpoint_arch (ckpt, &cfg.hidden, &cfg.layers, &cfg.affinity, err)) != RA_OK)
    return rc;
  s_arm_t *a = calloc (1, sizeof *a);
  if (!a)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "%s: out of memory", name);
  a->base.cls = expert ? &ra_expert_policy_class : &ra_target_policy_class;
  if ((rc = ra_nn_backend_open (dev ? dev : "cpu", NULL, &a->be, err)) != RA_OK)
    goto fail;
  if ((rc = ra_target_new (a->be, &cfg, &a->t, err)) != RA_OK)
    goto fail;
  if (ckpt && (rc = ra_target_load (a->t, ckpt, err)) != RA_OK)
    goto fail;
  if (s_find (args, "reward_scale")) /* given: it wins over the checkpoint's (0: measure per task) */
    a->t->reward_scale[0] = cfg.reward_scale;
  if (cfg.reset_optimizer)
    ra_target_reset_optimizer (a->t);
  if (!(a->init = ra_nn_params_clone (ra_target_params (a->t)))) {
    rc = ra_error_set (err, RA_ERR_NOMEM, -1, "%s: out of memory", name);
    goto fail;
  }
  if (cfg.adapt_head) {
    size_t n = ra_target_num_params (a->t);
    a->head = malloc (n);
    a->init_host = malloc (n * sizeof (float));
    a->now_host = malloc (n * sizeof (float));
    if (!a->head || !a->init_host || !a->now_host) {
      rc = ra_error_set (err, RA_ERR_NOMEM, -1, "%s: out of memory", name);
      goto fail;
    }
    ra_target_head_mask (a->t, a->head);
    ra_target_get_params (a->t, a->init_host);
  }
  a->init_reward_scale = a->t->reward_scale[0];
  a->init_rng = *ra_target_rng (a->t, 0);
  *out = &a->base;
  return RA_OK;
fail:;
  ra_policy_t *p = &a->base;
  s_destroy (&p);
  return rc;
}

static ra_err_t s_create (const ra_policy_args_t *args, ra_policy_t **out, ra_error_t *err)
{
  return s_create_as (args, false, out, err);
}

static ra_err_t s_create_expert (const ra_policy_args_t *args, ra_policy_t **out, ra_error_t *err)
{
  return s_create_as (args, true, out, err);
}

/* adapt_params=head: everything outside the head back to the initial parameters (its Adam
   moments still move, but nothing reads them: the body is put back after every update). */
static void s_keep_body (s_arm_t *a)
{
  if (!a->head)
    return;
  size_t n = ra_target_num_params (a->t);
  ra_target_get_params (a->t, a->now_host);
  for (size_t j = 0; j < n; j++)
    if (!a->head[j])
      a->now_host[j] = a->init_host[j];
  ra_target_set_params (a->t, a->now_host);
}

static void s_act (ra_policy_t *p, const ra_obs_batch_t *obs, int32_t *slates)
{
  s_arm_t *a = (s_arm_t *) p;
  if (a->pending) { /* obs is the observation after the last recorded step */
    ra_error_t err;
    if (ra_target_update (a->t, obs, NULL, &err) == RA_OK) { /* out of memory: the arm keeps acting */
      a->updates++;
      s_keep_body (a);
    }
    a->pending = false;
  }
  /* learning: a sample of the policy being updated (on-policy); frozen: top-k unless greedy=false */
  ra_target_act (a->t, obs, s_learning (a) ? false : a->t->cfg.greedy, slates);
}

static void s_learn (ra_policy_t *p, const ra_obs_batch_t *obs, const ra_feedback_t *fb)
{
  s_arm_t *a = (s_arm_t *) p;
  if (!s_learning (a) || a->pending || obs->num_envs != a->t->cfg.num_envs) {
    ra_target_end_sessions (a->t, fb->done, obs->num_envs); /* record does it when learning (T12) */
    return; /* frozen, or a batch of another size that cannot join the rollout */
  }
  a->pending = ra_target_record (a->t, obs, fb->slates, fb->reward, fb->done);
}

static void s_freeze (ra_policy_t *p)
{
  s_arm_t *a = (s_arm_t *) p;
  a->frozen = true;
  a->pending = false; /* a rollout still waiting for its update is dropped */
  ra_target_clear_rollout (a->t);
  ra_target_end_all_sessions (a->t); /* the harness resets every env next (frozen episodes) */
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
  *ra_target_rng (a->t, 0) = a->init_rng; /* a forgotten arm samples as a fresh one */
  ra_target_clear_rollout (a->t);
  ra_target_reset_context (a->t); /* the next task's feedback starts from nothing (T8) */
  a->pending = false;
  a->frozen = false;
  a->updates = 0;
}

ra_target_t *ra_target_arm_policy (ra_policy_t *p)
{
  assert (p->cls == &ra_target_policy_class || p->cls == &ra_expert_policy_class);
  return ((s_arm_t *) p)->t;
}

const ra_policy_class_t ra_target_policy_class = {
  .name = "target",
  .description = "MLP scorer over (user, candidate) pairs, Plackett-Luce slates, actor-critic "
                 "with GAE; adapts on-policy (sampled slates) every T steps, greedy once frozen",
  .create = s_create,
  .destroy = s_destroy,
  .act = s_act,
  .learn = s_learn,
  .forget = s_forget,
  .freeze = s_freeze,
};

const ra_policy_class_t ra_expert_policy_class = {
  .name = "expert",
  .description = "the task's own expert (a target policy trained on that task by "
                 "scripts/train_experts.sh --dir DIR), frozen and greedy; dir=DIR",
  .create = s_create_expert,
  .destroy = s_destroy,
  .act = s_act,
  .learn = s_learn,
  .forget = s_forget,
  .freeze = s_freeze,
};
