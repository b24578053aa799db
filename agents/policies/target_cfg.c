/*  agents/policies/target_cfg.c - the target policy's configuration: the defaults, the settings
    by key (flags and arm configs arrive as text), the shapes an env's spaces give, and the check
    ra_target_new makes of a whole cfg before it allocates anything.                           */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agents/policies/target_int.h"

void ra_target_cfg_default (ra_target_cfg_t *cfg)
{
  *cfg = (ra_target_cfg_t) {
    .hidden = 64, .layers = 2, .tanh = false, .rollout = 16, .lr = 3e-3f, .gamma = 0.95f,
    .lambda = 0.95f, .entropy_coef = 0.01f, .value_coef = 0.5f, .clip_norm = 1.0f,
    .reward_scale = 0.0f, .normalize_adv = true, .greedy = true, .temp = 1.0f, .seed = 1, .population = 1,
    .sgd = false, .reset_optimizer = true, .adapt_updates = 0,
  };
}

static bool s_in (const char *key, const char *const *list)
{
  for (; list && *list; list++)
    if (strcmp (key, *list) == 0)
      return true;
  return false;
}

/* Reads a number in [lo, hi] (strings are parsed too: flags arrive as text). */
static ra_err_t s_num (const ra_kv_t *kv, double lo, double hi, double *out, ra_error_t *err)
{
  double v = kv->num;
  if (kv->type == RA_KV_STR) {
    char *end = NULL;
    v = kv->str ? strtod (kv->str, &end) : NAN;
    if (!kv->str || end == kv->str || *end)
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: '%s' must be a number, got '%s'",
                           kv->key, kv->str ? kv->str : "");
  }
  if (!(v >= lo && v <= hi))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: '%s' is %g, expected [%g, %g]",
                         kv->key, v, lo, hi);
  *out = v;
  return RA_OK;
}

static ra_err_t s_bool (const ra_kv_t *kv, bool *out, ra_error_t *err)
{
  if (kv->type == RA_KV_STR && kv->str) {
    if (!strcmp (kv->str, "true") || !strcmp (kv->str, "1")) {
      *out = true;
      return RA_OK;
    }
    if (!strcmp (kv->str, "false") || !strcmp (kv->str, "0")) {
      *out = false;
      return RA_OK;
    }
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: '%s' must be true or false, got '%s'",
                         kv->key, kv->str);
  }
  double v = 0;
  ra_err_t rc = s_num (kv, 0, 1, &v, err);
  if (rc == RA_OK && v != 0 && v != 1) /* 0.5 is no answer to a yes-or-no setting */
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: '%s' must be true or false (1 or 0), got %g",
                         kv->key, v);
  if (rc == RA_OK)
    *out = v != 0;
  return rc;
}

ra_err_t ra_target_cfg_apply (ra_target_cfg_t *cfg, const ra_kv_t *kv, int n,
                              const char *const *ignore, ra_error_t *err)
{
  for (int i = 0; i < n; i++) {
    const ra_kv_t *e = &kv[i];
    const char *k = e->key;
    double v = 0;
    ra_err_t rc = RA_OK;
    if (!strcmp (k, "hidden")) {
      if ((rc = s_num (e, 1, 4096, &v, err)) == RA_OK)
        cfg->hidden = (int) v;
    } else if (!strcmp (k, "layers")) {
      if ((rc = s_num (e, 0, RA_TARGET_MAX_LAYERS, &v, err)) == RA_OK)
        cfg->layers = (int) v;
    } else if (!strcmp (k, "affinity")) { /* docs/agents.md T7 */
      rc = s_bool (e, &cfg->affinity, err);
    } else if (!strcmp (k, "activation")) {
      if (e->type != RA_KV_STR || (strcmp (e->str, "relu") && strcmp (e->str, "tanh")))
        return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                             "target: 'activation' must be \"relu\" or \"tanh\"");
      cfg->tanh = !strcmp (e->str, "tanh");
    } else if (!strcmp (k, "rollout")) {
      if ((rc = s_num (e, 1, 4096, &v, err)) == RA_OK)
        cfg->rollout = (int) v;
    } else if (!strcmp (k, "lr")) {
      if ((rc = s_num (e, 0, 10, &v, err)) == RA_OK)
        cfg->lr = (float) v;
    } else if (!strcmp (k, "gamma")) {
      if ((rc = s_num (e, 0, 1, &v, err)) == RA_OK)
        cfg->gamma = (float) v;
    } else if (!strcmp (k, "lambda")) {
      if ((rc = s_num (e, 0, 1, &v, err)) == RA_OK)
        cfg->lambda = (float) v;
    } else if (!strcmp (k, "entropy")) {
      if ((rc = s_num (e, 0, 100, &v, err)) == RA_OK)
        cfg->entropy_coef = (float) v;
    } else if (!strcmp (k, "value_coef")) {
      if ((rc = s_num (e, 0, 100, &v, err)) == RA_OK)
        cfg->value_coef = (float) v;
    } else if (!strcmp (k, "clip_norm")) {
      if ((rc = s_num (e, -1, 1e9, &v, err)) == RA_OK)
        cfg->clip_norm = (float) v;
    } else if (!strcmp (k, "reward_scale")) {
      if ((rc = s_num (e, 0, 1e9, &v, err)) == RA_OK)
        cfg->reward_scale = (float) v;
    } else if (!strcmp (k, "task_credit")) { /* docs/agents.md T20 */
      if ((rc = s_num (e, 0, RA_TARGET_TASK_CREDIT_MAX, &v, err)) == RA_OK)
        cfg->task_credit = (float) v;
    } else if (!strcmp (k, "normalize_adv")) {
      rc = s_bool (e, &cfg->normalize_adv, err);
    } else if (!strcmp (k, "greedy")) {
      rc = s_bool (e, &cfg->greedy, err);
    } else if (!strcmp (k, "temp")) { /* docs/agents.md T5 */
      if ((rc = s_num (e, RA_TARGET_TEMP_MIN, RA_TARGET_TEMP_MAX, &v, err)) == RA_OK)
        cfg->temp = (float) v;
    } else if (!strcmp (k, "slot_credit")) { /* docs/agents.md T6 */
      if ((rc = s_num (e, 0, RA_TARGET_SLOT_CREDIT_MAX, &v, err)) == RA_OK)
        cfg->slot_credit = (float) v;
    } else if (!strcmp (k, "slot_feedback")) {
      if ((rc = s_num (e, 0, RA_TARGET_SLOT_FEEDBACK_MAX, &v, err)) == RA_OK)
        cfg->slot_feedback = (int) v;
    } else if (!strcmp (k, "optimizer")) {
      if (e->type != RA_KV_STR || (strcmp (e->str, "adam") && strcmp (e->str, "sgd")))
        return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                             "target: 'optimizer' must be \"adam\" or \"sgd\"");
      cfg->sgd = !strcmp (e->str, "sgd");
    } else if (!strcmp (k, "reset_optimizer")) {
      rc = s_bool (e, &cfg->reset_optimizer, err);
    } else if (!strcmp (k, "adapt_params")) {
      if (e->type != RA_KV_STR || (strcmp (e->str, "all") && strcmp (e->str, "head")))
        return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                             "target: 'adapt_params' must be \"all\" or \"head\"");
      cfg->adapt_head = !strcmp (e->str, "head");
    } else if (!strcmp (k, "adapt_updates")) {
      if ((rc = s_num (e, 0, 1e9, &v, err)) == RA_OK)
        cfg->adapt_updates = (int) v;
    } else if (!strcmp (k, "context")) { /* docs/agents.md T8 */
      if ((rc = s_num (e, 0, RA_TARGET_CONTEXT_MAX, &v, err)) == RA_OK)
        cfg->context = (float) v;
    } else if (!strcmp (k, "context_residual")) { /* docs/agents.md T9 */
      rc = s_bool (e, &cfg->context_residual, err);
    } else if (!strcmp (k, "scorer_yield")) { /* docs/agents.md T10 */
      rc = s_bool (e, &cfg->scorer_yield, err);
    } else if (!strcmp (k, "context_ts")) { /* docs/agents.md T11 */
      if ((rc = s_num (e, 0, RA_TARGET_CONTEXT_TS_MAX, &v, err)) == RA_OK)
        cfg->context_ts = (float) v;
    } else if (!strcmp (k, "context_session")) { /* docs/agents.md T12 */
      if ((rc = s_num (e, 0, RA_TARGET_CONTEXT_SESSION_MAX, &v, err)) == RA_OK)
        cfg->context_session = (float) v;
    } else if (!strcmp (k, "context_baseline")) { /* docs/agents.md T13 */
      if ((rc = s_num (e, 0, 1, &v, err)) == RA_OK)
        cfg->context_baseline = (float) v;
    } else if (!strcmp (k, "context_handover")) { /* docs/agents.md T14 */
      if ((rc = s_num (e, 0, RA_TARGET_CONTEXT_HANDOVER_MAX, &v, err)) == RA_OK)
        cfg->context_handover = (float) v;
    } else if (!strcmp (k, "context_kernel")) { /* docs/agents.md T15 */
      if ((rc = s_num (e, 0, RA_TARGET_CONTEXT_KERNEL_MAX, &v, err)) == RA_OK)
        cfg->context_kernel = (float) v;
    } else if (!strcmp (k, "population")) {
      if ((rc = s_num (e, 1, RA_TARGET_MAX_POPULATION, &v, err)) == RA_OK)
        cfg->population = (int) v;
    } else if (!strcmp (k, "seed")) {
      if ((rc = s_num (e, 0, 9007199254740992.0, &v, err)) == RA_OK)
        cfg->seed = (uint64_t) v;
    } else if (!s_in (k, ignore)) {
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                           "target: unknown config key '%s' (expected hidden, layers, affinity, activation, "
                           "rollout, lr, gamma, lambda, entropy, value_coef, clip_norm, "
                           "reward_scale, task_credit, normalize_adv, greedy, temp, slot_credit, slot_feedback, context, "
                           "context_residual, scorer_yield, context_ts, context_session, context_baseline, "
                           "context_handover, context_kernel, population, seed, optimizer, reset_optimizer, "
                           "adapt_updates, adapt_params)", k);
    }
    if (rc != RA_OK)
      return rc;
  }
  return RA_OK;
}

ra_err_t ra_target_cfg_from_env (ra_target_cfg_t *cfg, const ra_client_env_t *env, ra_error_t *err)
{
  const ra_space_t *os = env->observation_space, *as = env->action_space;
  const ra_space_t *u = os && os->type == RA_SPACE_DICT ? ra_space_dict_get (os, "user") : NULL;
  const ra_space_t *c = os && os->type == RA_SPACE_DICT ? ra_space_dict_get (os, "candidates") : NULL;
  if (!u || !c || u->type != RA_SPACE_BOX || c->type != RA_SPACE_BOX || u->ndim != 1 || c->ndim != 2)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "target: the observation must be a Dict with \"user\" (U) and "
                         "\"candidates\" (K, F) boxes");
  int K = (int) c->shape[0], k;
  if (as->type == RA_SPACE_DISCRETE)
    k = 1;
  else if (as->type == RA_SPACE_MULTI_DISCRETE && as->ndim == 1)
    k = (int) as->shape[0];
  else
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "target: the action must be Discrete(K) or MultiDiscrete([K] * k)");
  if (k < 1 || k > K)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: slate size %d with %d candidates", k, K);
  cfg->num_envs = env->num_envs;
  cfg->num_candidates = K;
  cfg->slate_size = k;
  cfg->user_dim = (int) u->shape[0];
  cfg->cand_dim = (int) c->shape[1];
  const ra_space_t *r = ra_space_dict_get (os, "response");
  cfg->response_dim = r && r->type == RA_SPACE_BOX && r->ndim == 1 ? (int) r->shape[0] : 0;
  return RA_OK;
}

ra_err_t ra__target_check_cfg (const ra_target_cfg_t *c, ra_error_t *err)
{
  if (c->num_envs < 1 || c->num_candidates < 1 || c->slate_size < 1
      || c->slate_size > c->num_candidates || c->user_dim < 0 || c->cand_dim < 0
      || c->user_dim + c->cand_dim < 1)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "target: bad shapes: %d envs, %d candidates, slate %d, user %d, "
                         "candidate %d features", c->num_envs, c->num_candidates, c->slate_size,
                         c->user_dim, c->cand_dim);
  if (c->hidden < 1 || c->layers < 0 || c->layers > RA_TARGET_MAX_LAYERS || c->rollout < 1
      || c->population < 1 || c->population > RA_TARGET_MAX_POPULATION)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "target: hidden %d (>= 1), layers %d (0..%d), rollout %d (>= 1), "
                         "population %d (1..%d)", c->hidden, c->layers, RA_TARGET_MAX_LAYERS,
                         c->rollout, c->population, RA_TARGET_MAX_POPULATION);
  if (!(c->temp >= RA_TARGET_TEMP_MIN && c->temp <= RA_TARGET_TEMP_MAX))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: 'temp' is %g, expected [%g, %g]",
                         (double) c->temp, RA_TARGET_TEMP_MIN, RA_TARGET_TEMP_MAX);
  if (!(c->slot_credit >= 0 && c->slot_credit <= RA_TARGET_SLOT_CREDIT_MAX))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: 'slot_credit' is %g, expected [0, %g]",
                         (double) c->slot_credit, RA_TARGET_SLOT_CREDIT_MAX);
  if (!(c->task_credit >= 0 && c->task_credit <= RA_TARGET_TASK_CREDIT_MAX))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: 'task_credit' is %g, expected [0, %g]",
                         (double) c->task_credit, RA_TARGET_TASK_CREDIT_MAX);
  if (!(c->context >= 0 && c->context <= RA_TARGET_CONTEXT_MAX))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: 'context' is %g, expected [0, %g]",
                         (double) c->context, RA_TARGET_CONTEXT_MAX);
  if (!(c->context_ts >= 0 && c->context_ts <= RA_TARGET_CONTEXT_TS_MAX))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: 'context_ts' is %g, expected [0, %g]",
                         (double) c->context_ts, RA_TARGET_CONTEXT_TS_MAX);
  if (!(c->context_session >= 0 && c->context_session <= RA_TARGET_CONTEXT_SESSION_MAX))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: 'context_session' is %g, expected [0, %g]",
                         (double) c->context_session, RA_TARGET_CONTEXT_SESSION_MAX);
  if (!(c->context_baseline >= 0 && c->context_baseline <= 1))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: 'context_baseline' is %g, expected [0, 1] "
                         "(a click rate per rank)", (double) c->context_baseline);
  if (!(c->context_handover >= 0 && c->context_handover <= RA_TARGET_CONTEXT_HANDOVER_MAX))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: 'context_handover' is %g, expected [0, %g] "
                         "(slates with a click)", (double) c->context_handover, RA_TARGET_CONTEXT_HANDOVER_MAX);
  if (!(c->context_kernel >= 0 && c->context_kernel <= RA_TARGET_CONTEXT_KERNEL_MAX))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: 'context_kernel' is %g, expected [0, %g]",
                         (double) c->context_kernel, RA_TARGET_CONTEXT_KERNEL_MAX);
  if (c->context_kernel > 0 && c->context_ts > 0)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: 'context_kernel' and 'context_ts' do not go "
                         "together: T11 draws from T8's linear regression, which the kernel replaces");
  const bool ctx = c->context > 0;
  const struct { /* T9-T15: settings meaningless without another (met: key 'need' > 0) */
    bool on, met;
    const char *key, *what, *need;
  } needs[] = {
    { c->context_handover > 0, c->context_baseline > 0, "context_handover", "hands T13 over to T8",
      "context_baseline" },
    { c->context_residual, ctx, "context_residual", "reads the task context", "context" },
    { c->scorer_yield, ctx, "scorer_yield", "reads the task context", "context" },
    { c->context_ts > 0, ctx, "context_ts", "samples the task context", "context" },
    { c->context_session > 0, ctx, "context_session", "adds to the task context", "context" },
    { c->context_baseline > 0, ctx, "context_baseline", "weighs the feedback of the task context", "context" },
    { c->context_kernel > 0, ctx, "context_kernel", "reads the task context through a kernel", "context" },
  };
  for (size_t j = 0; j < sizeof needs / sizeof needs[0]; j++)
    if (needs[j].on && !needs[j].met)
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: '%s' %s: it needs '%s' > 0", needs[j].key,
                           needs[j].what, needs[j].need);
  if ((c->slot_credit > 0 || c->context > 0)
      && (c->slot_feedback < 0 || c->response_dim < c->slot_feedback + c->slate_size))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "target: '%s' reads k = %d feedback entries of the observation's "
                         "\"response\" from 'slot_feedback' = %d on, but the response has %d",
                         c->slot_credit > 0 ? "slot_credit" : "context", c->slate_size, c->slot_feedback,
                         c->response_dim);
  double rows = (double) c->population * c->rollout * c->num_envs * c->num_candidates;
  if (rows * (c->user_dim + (c->context > 0 ? 2.0 : 1.0) * c->cand_dim + 2.0 * c->hidden) > 2e9)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "target: population %d x rollout %d x %d envs x %d candidates is too large "
                         "for one update's buffers (reduce --rollout or --num-envs)",
                         c->population, c->rollout, c->num_envs, c->num_candidates);
  return RA_OK;
}
