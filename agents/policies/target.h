/*  agents/policies/target.h - the target policy (docs/agents.md, "Target policy"): an MLP scorer over every
    (user, candidate) pair, Plackett-Luce slates (sampled while training, top-k when greedy), a
    value head on the user features, and actor-critic updates with GAE over T steps x N envs.

    One ra_nn parameter buffer holds the scorer ("l<i>.w", "l<i>.b") and the value head
    ("v<i>.w", "v<i>.b"), so cloning is one copy, the flat vector is one array, a checkpoint one
    safetensors file. The policy owns its rollout buffer (host), its activation buffers (device)
    and its RNG; nothing is allocated after ra_target_new. It talks to a server through a
    borrowed ra_client_t (ra_target_collect, ra_target_adapt, ra_target_evaluate), or is driven
    by the A/B harness as the arm ra_target_policy_class. Not thread-safe; one thread per policy.

    Defaults and the equations: docs/agents.md, section "Target policy".                       */
#ifndef RA_AGENTS_POLICIES_TARGET_H
#define RA_AGENTS_POLICIES_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agents/nn/nn.h"
#include "agents/policies/policy.h"
#include "agents/policies/rollout.h"
#include "protocol/client.h"
#include "common/kv.h"

#define RA_TARGET_MAX_LAYERS 6
#define RA_TARGET_MAX_POPULATION 4096
#define RA_TARGET_SLOT_CREDIT_MAX 100.0 /* the per-slot credit weight's range is [0, this] */
#define RA_TARGET_SLOT_FEEDBACK_MAX 4096 /* and its feedback offset's [0, this] */
#define RA_TARGET_TASK_CREDIT_MAX 4096.0 /* the task credit's range is [0, this] (T20) */
#define RA_TARGET_TEACHER_WEIGHT_MAX 100.0 /* the imitation weight's range is (0, this] (T16) */
#define RA_TARGET_TEMP_MIN 1e-3        /* the sampling temperature's range (cfg.temp) */
#define RA_TARGET_TEMP_MAX 1e3
#define RA_TARGET_CONTEXT_MAX 1e6      /* the task context's n0 is in [0, this] (cfg.context) */
#define RA_TARGET_CONTEXT_TS_MAX 100.0 /* its posterior scale sigma is in [0, this] (cfg.context_ts) */
#define RA_TARGET_CONTEXT_SESSION_MAX 1e6 /* the session memory's m0 is in [0, this] (cfg.context_session) */
#define RA_TARGET_CONTEXT_HANDOVER_MAX 1e6 /* T13's handover c0 is in [0, this] (cfg.context_handover) */
#define RA_TARGET_CONTEXT_KERNEL_MAX 1e3 /* the kernel context's sharpness beta is in [0, this] (cfg.context_kernel) */
#define RA_TARGET_KERNEL_PROTOTYPES 256 /* user prototypes per replica of the kernel context (T15) */

typedef struct {
  /* shapes (from the env; filled by the caller or ra_target_cfg_from_env) */
  int num_envs;          /* N envs per rollout */
  int num_candidates;    /* K */
  int slate_size;        /* k */
  int user_dim;          /* U: width of obs "user" */
  int cand_dim;          /* F: width of one row of obs "candidates" */
  int response_dim;      /* R: width of obs "response" (0 when unknown; slot_credit needs
                            slot_feedback + k) */
  /* network */
  int hidden;            /* width of every hidden layer (scorer and value head); default 64 */
  int layers;            /* hidden layers of each MLP, 0..RA_TARGET_MAX_LAYERS; default 2 */
  bool tanh;             /* activation: tanh instead of ReLU; default false */
  bool affinity;         /* adds the affinity head to the scores, s_j += c_j . (A u + a), A and a
                            starting at 0 (docs/agents.md T7); default false (the scorer alone, bit
                            for bit); tensors "a.w", "a.b" in checkpoints */
  /* actor-critic */
  int rollout;           /* T steps per update; default 16 */
  float lr;              /* Adam learning rate; default 3e-3 */
  float gamma;           /* discount; default 0.95 */
  float lambda;          /* GAE lambda; default 0.95 */
  float entropy_coef;    /* entropy bonus weight; default 0.01 */
  float value_coef;      /* value loss weight; default 0.5 */
  float clip_norm;       /* max global gradient norm; <= 0: no clipping; default 1.0 */
  float reward_scale;    /* rewards are multiplied by it before GAE; 0: 1 / std of the rewards of
                            the first rollout (kept afterwards); default 0 */
  bool normalize_adv;    /* advantages to zero mean, unit std per update; default true */
  float task_credit;     /* w: each env's reward in GAE adds w times the mean reward of its
                            replica's other envs at the same step, r + w mean_{e' != e} r_e'
                            (docs/agents.md T20): credit for what an action tells the task's other
                            users through the task context; 0 (default) = own reward, bit for
                            bit; in [0, RA_TARGET_TASK_CREDIT_MAX]; a training setting, not
                            stored in checkpoints */
  bool greedy;           /* act (arm, evaluate) with top-k; false: sample slates; default true */
  float temp;            /* sampling temperature tau: slates are sampled from, and the
                            Plackett-Luce log-probability, entropy and their gradients taken
                            over, the scores times 1/tau (docs/agents.md T5); top-k ignores it;
                            in [1e-3, 1e3], default 1 (exactly the untempered policy); stored
                            in checkpoints ("temp") */
  float slot_credit;     /* beta of the per-slot credit term (docs/agents.md T6): each placed
                            item's choice is also credited with its own rank's feedback, k
                            entries of the next observation's "response" from slot_feedback
                            on; 0 (default) = the slate gradient alone, bit for
                            bit; in [0, 100]; stored in checkpoints ("slot_credit") */
  int slot_feedback;     /* where the k per-rank feedback entries start in "response" (T6):
                            0 (default) = clicked per rank in every sim; k = the second block
                            (Content's watched fraction, News's dwell, ECommerce's purchases,
                            Ads' conversions); stored in checkpoints ("slot_feedback") */
  float context;         /* n0 of the task context (docs/agents.md T8): each replica sums its envs'
                            centred rank feedback as S += sum_j (f_j - mean f) x_j u^T, G += u u^T
                            (steps whose feedback is not the same at every rank), and the
                            networks' user input becomes [u, S (G + n0 I)^-1 u]; 0 (default) =
                            off, bit for bit; in [0, 1e6]; needs slot_feedback + k entries of
                            "response"; stored in checkpoints ("context") */
  bool context_residual; /* with context > 0, the networks read r(u) = n0 (G + n0 I)^-1 u, the
                            part of u the task's feedback has not explained yet, in place of u
                            (docs/agents.md T9): the affinity head's block on it is then the
                            ridge regression's prior mean, learnt across tasks; default false
                            (u itself, bit for bit); stored in checkpoints ("context_residual") */
  bool scorer_yield;     /* with context > 0, the scorer's output for user u is scaled by
                            gamma(u) = n0 u^T (G + n0 I)^-1 u / u^T u: 1 on a new task, falling
                            where the task's feedback has covered users like u, while the
                            affinity head's term keeps its weight (docs/agents.md T10); default
                            false (the scorer unscaled, bit for bit); stored in checkpoints
                            ("scorer_yield") */
  float context_ts;      /* sigma > 0, with context > 0: each act reads the context's regression
                            through a fresh draw from its posterior, W ~ N(S (G + n0 I)^-1,
                            sigma^2 (G + n0 I)^-1) row by row, in place of its mean (Thompson
                            sampling in the context, docs/agents.md T11); 0 (default) = the mean,
                            bit for bit; in [0, 100]; stored in checkpoints ("context_ts") */
  float context_session; /* m0 > 0, with context > 0: each env also keeps the centred feedback of
                            its current user's session, M += sum_j (f_j - mean f) x_j over its
                            n informative steps, and its rows' context block reads
                            v(u) + M / (n + m0) (docs/agents.md T12); a session ends at the
                            env's done (ra_target_end_sessions); 0 (default) = off, bit for
                            bit; in [0, 1e6]; stored in checkpoints ("context_session") */
  float context_baseline; /* b > 0, with context > 0: every step informs the context, a slate
                            without a click too: each rank's feedback is measured against the
                            click rate at that rank of the same act's slates (prior b, worth 1/k
                            of a click) instead of the slate's mean, and the step weighs the sum
                            of those rates in G (and in the session's n) (docs/agents.md T13); 0
                            (default) = off, bit for bit; in [0, 1]; stored in checkpoints
                            ("context_baseline") */
  float context_handover; /* c0 > 0, with context_baseline > 0: T13 hands over to T8 as the task's
                            clicks accrue: each step adds alpha times its T13 terms and 1 - alpha
                            times its T8 terms, alpha = c0 / (c0 + C), C the replica's slates with
                            a click so far (docs/agents.md T14); 0 (default) = T13 alone, bit for
                            bit; in [0, 1e6]; stored in checkpoints ("context_handover") */
  float context_kernel;  /* beta > 0, with context > 0 and not context_ts: the task context is a
                            kernel regression over user prototypes instead of T8's linear ridge:
                            v(u) = sum_c k_c V_c / (sum_c k_c K_c + n0), k_c = exp(beta (cos(u,
                            p_c) - 1)), so users unlike u do not blur its estimate
                            (docs/agents.md T15); 0 (default) = T8, bit for bit; in [0, 1e3];
                            stored in checkpoints ("context_kernel") */
  uint64_t seed;         /* initialisation and sampling; default 1 */
  int population;        /* P parameter replicas, each acting on its own num_envs envs and
                            learning from its own rollout in the same batched calls; default 1 */
  /* adaptation (docs/agents.md, "Adapting the target"; stored in checkpoints) */
  bool sgd;              /* optimizer: plain SGD (data -= lr * clipped grad) instead of Adam;
                            default false ("optimizer" = adam|sgd) */
  bool reset_optimizer;  /* the arm zeroes the optimizer state (Adam moments, step count) it
                            loaded, so adaptation starts fresh on every task; default true */
  int adapt_updates;     /* the arm stops learning after this many updates on a task and acts
                            as frozen from then on; 0: no limit; default 0 */
  bool adapt_head;       /* the arm adapts only the head (ra_target_head_mask): after each update
                            the rest goes back to the parameters it was created with, as
                            recarena-meta's --adapt-params head inner loop does; default false
                            ("adapt_params" = all|head) */
} ra_target_cfg_t;

/* Fills the defaults above (shapes 0). */
void ra_target_cfg_default (ra_target_cfg_t *cfg);
/* Applies key=value settings: hidden, layers, activation ("relu"/"tanh"), rollout, lr, gamma,
   lambda, entropy, value_coef, clip_norm, reward_scale, normalize_adv, greedy, temp, slot_credit,
   slot_feedback, population, seed, optimizer ("adam"/"sgd"), reset_optimizer, adapt_updates,
   adapt_params ("all"/"head"). A key not in that list is skipped when it is in ignore
   (NULL-terminated, may be NULL), else RA_ERR_BAD_CONFIG naming it; an out-of-range value is
   RA_ERR_BAD_CONFIG naming key and range. */
ra_err_t ra_target_cfg_apply (ra_target_cfg_t *cfg, const ra_kv_t *kv, int n,
                              const char *const *ignore, ra_error_t *err);
/* Reads K, k, U, F (and R when the obs has a "response" box) from an env made on the server (Dict obs with "user" and "candidates",
   MultiDiscrete or Discrete action) and sets num_envs to env->num_envs. RA_ERR_BAD_CONFIG naming
   what does not fit. */
ra_err_t ra_target_cfg_from_env (ra_target_cfg_t *cfg, const ra_client_env_t *env, ra_error_t *err);

typedef struct ra_target ra_target_t;

/* Builds a policy on be (borrowed; must outlive the policy) from cfg (copied): parameters
   initialised from cfg->seed, buffers for T x N transitions. RA_ERR_BAD_CONFIG / RA_ERR_NOMEM. */
ra_err_t ra_target_new (ra_nn_backend_t *be, const ra_target_cfg_t *cfg, ra_target_t **out,
                        ra_error_t *err);
/* Accepts NULL; NULLs the pointer. */
void ra_target_destroy (ra_target_t **t_p);
/* A deep copy: parameters, Adam state, reward scale and RNG (so it takes the same actions);
   its rollout buffer starts empty. NULL when out of memory. O(parameters + buffers). */
ra_target_t *ra_target_clone (const ra_target_t *t);
/* The same into an existing policy of the same shapes, without reallocating (Adam moments are
   allocated once if dst has none and src has). Empties dst's rollout. RA_ERR_BAD_CONFIG when the
   shapes differ. O(parameters). */
ra_err_t ra_target_copy (ra_target_t *dst, const ra_target_t *src, ra_error_t *err);
/* Copies replica s of src into replica d of dst (same architecture): parameters, Adam moments and
   step count, learning rate, reward scale, sampling RNG. O(parameters of one replica). */
void ra_target_copy_replica (ra_target_t *dst, int d, const ra_target_t *src, int s);
/* Replica r's sampling RNG (stream 1 + r of cfg.seed), to read or set. */
ra_nn_rng_t *ra_target_rng (ra_target_t *t, int replica);
/* Replica r's Adam learning rate (initially cfg.lr). */
void ra_target_set_lr (ra_target_t *t, int replica, float lr);
/* Replica r's reward scale (0 until the first update when cfg.reward_scale is 0). */
float ra_target_reward_scale (const ra_target_t *t, int replica);
const ra_target_cfg_t *ra_target_cfg (const ra_target_t *t);
/* The parameter buffer (borrowed), for axpy-style meta updates on the device. */
ra_nn_params_t *ra_target_params (ra_target_t *t);

/* Flat parameter vector of all P replicas, replica-major: ra_target_num_params floats (tensor
   padding included, zeros). get copies it to host memory; set copies host memory in (optimizer
   state untouched). */
size_t ra_target_num_params (const ra_target_t *t);
void ra_target_get_params (const ra_target_t *t, float *host);
void ra_target_set_params (ra_target_t *t, const float *host);
/* mask[j] = 1 when entry j of one replica's flat vector is in the head: the scorer's last layer
   l<L>.*, the value MLP v* and the affinity head a.* (T7); 0 for the scorer's body. mask has
   ra_target_num_params / P entries. */
void ra_target_head_mask (const ra_target_t *t, uint8_t *mask);

/* Checkpoints (safetensors, agents/nn): parameters, Adam state, RNG, and in the metadata each
   replica's reward scale and the adaptation settings (lr, optimizer, reset_optimizer,
   adapt_updates, adapt_params, rollout, temp, slot_credit, slot_feedback). load restores the
   reward scales (a file without them leaves them 0: measured on the first update); the settings
   are read by ra_target_checkpoint_settings. load needs a policy of the same architecture
   (ra_target_checkpoint_arch reads it from the file).
   RA_ERR_IO / RA_ERR_BAD_CONFIG with the reason. */
ra_err_t ra_target_save (const ra_target_t *t, const char *path, ra_error_t *err);
ra_err_t ra_target_load (ra_target_t *t, const char *path, ra_error_t *err);
/* load for a file written without the task context into t, which has it (cfg.context > 0):
   the file's weights, the columns that read v(u) added at 0 (the affinity head's block at the
   identity), so t plays as the file does while its context is empty. A file with the context, or
   of another architecture, is refused as load refuses it. */
ra_err_t ra_target_load_adding_context (ra_target_t *t, const char *path, ra_error_t *err);
/* Writes into *cfg the adaptation settings stored in a checkpoint (those it has; a file written
   before they were stored changes nothing). RA_ERR_IO when the file cannot be read. */
ra_err_t ra_target_checkpoint_settings (const char *path, ra_target_cfg_t *cfg, ra_error_t *err);
/* Zeroes the optimizer state of every replica (Adam moments and step counts). */
void ra_target_reset_optimizer (ra_target_t *t);
/* Reads hidden width and hidden layers of the scorer stored in a checkpoint's header, and whether
   it has the affinity head (tensor "a.w"; affinity may be NULL). */
ra_err_t ra_target_checkpoint_arch (const char *path, int *hidden, int *layers, bool *affinity, ra_error_t *err);

/* ---------------------------------------------------------------------------- acting, learning */

/* Writes obs->num_envs slates of k distinct indexes from the scores of the scorer: top-k when
   greedy, else a Plackett-Luce sample of the scores times 1/cfg.temp (Gumbel top-k, replica p
   drawing from its own RNG). The
   batch holds P equal blocks of R envs, replica-major (block p is replica p's), R <= T*N; the
   shapes of obs must match the cfg. When R = N and the rollout is not full, the observation and
   the scorer activations go to the next rollout slot, and the update reuses them if
   ra_target_record then records that same observation. O(P R K (U + F) hidden). */
void ra_target_act (ra_target_t *t, const ra_obs_batch_t *obs, bool greedy, int32_t *slates);
/* Wall time spent in ra_target_act so far, device waits included (a profile: recarena-meta's act_s). */
double ra_target_act_seconds (const ra_target_t *t);
/* With cfg.context (docs/agents.md T8): act on an R = N batch first adds the feedback its
   "response" carries for the slates the previous such act chose, then acts on [u, S (G + n0 I)^-1 u].
   The context is each replica's own task's history: call this when a replica's envs move to
   another task (the A/B arm's forget, recarena-meta's adaptation and ES evaluation do). It
   empties every replica's S, G and pending slates. A no-op without cfg.context. */
void ra_target_reset_context (ra_target_t *t);

/* Marks the envs whose done is set (n = P num_envs flags) as starting a new user's session: with
   cfg.context_session their session memory (T12) is emptied at the next act, after that act has
   taken in the feedback of the step that ended it; with cfg.context_baseline (T13) that act skips
   their response (the reset's zeros). Nothing to do without either. ra_target_record
   calls it; a caller that steps the policy without recording (a frozen A/B arm) calls it after
   every step. */
void ra_target_end_sessions (ra_target_t *t, const uint8_t *done, int n);

/* ra_target_end_sessions for every env: all of them start a new user, as after an explicit reset
   of the envs' stream (ra_target_begin_rollout and ra_meta_evaluate_as call it after theirs, the
   A/B arm at its freeze, before the harness resets every env), so no session runs on into another
   user's episode and the reset's zeros are not taken for a slate without a click. */
void ra_target_end_all_sessions (ra_target_t *t);

/* Appends one transition per env (P*N, replica-major) to the rollout buffer: the observation act
   saw, the slates, the env reward (unscaled) and done (terminated or truncated; treated as
   terminal). Returns true when the buffer holds T steps (then ra_target_update needs the next
   observation). */
bool ra_target_record (ra_target_t *t, const ra_obs_batch_t *obs, const int32_t *slates,
                       const float *reward, const uint8_t *done);

typedef struct {
  float policy_loss;     /* -(1/M) sum adv * log pi(slate) (with the advantages used) */
  float value_loss;      /* (1/M) sum (V - return)^2, in scaled reward units */
  float entropy;         /* mean over samples of the summed per-position entropies (nats) */
  float grad_norm;       /* before clipping */
  float reward_scale;
  float imitation;       /* -(1/M) sum log P_tau(the teacher's slate) (T16); 0 without a teacher */
} ra_target_losses_t;

/* The gradient of one actor-critic update on the full rollout buffer of every replica,
   bootstrapping from next_obs (P*N envs: the observation after the last recorded step): values of
   all T+1 observations, GAE (gamma, lambda), Plackett-Luce policy gradient + entropy bonus (both
   of the tempered scores, s / cfg.temp) + the per-slot credit term (cfg.slot_credit > 0: the
   rank feedback of the last step is next_obs's "response") + value MSE, into params->grad (overwritten). Empties the buffer. losses (P entries, may be NULL)
   get the losses (grad_norm 0: the step computes it). A backend failure is returned. */
ra_err_t ra_target_grad (ra_target_t *t, const ra_obs_batch_t *next_obs, ra_target_losses_t *losses,
                         ra_error_t *err);
/* One optimizer step from params->grad: per-replica clipping to clip_norm, then Adam with each
   replica's lr and step count (or SGD with each replica's lr when cfg.sgd). grad_norms (P entries, may be NULL) get the norms before clipping.
   RA_ERR_NOMEM (first Adam step) or a backend failure. */
ra_err_t ra_target_step (ra_target_t *t, float *grad_norms, ra_error_t *err);
/* ra_target_grad then ra_target_step; losses (P entries, may be NULL) include the grad norms. */
ra_err_t ra_target_update (ra_target_t *t, const ra_obs_batch_t *next_obs,
                           ra_target_losses_t *losses, ra_error_t *err);
/* Empties the rollout buffer (and the running episode returns). */
void ra_target_clear_rollout (ra_target_t *t);
/* Distillation from a privileged teacher (docs/agents.md T16). While attached, every step of
   ra_target_train_rollout first asks teacher for its slate on *teacher_obs, which must be the same
   envs as the source's (ra_rollout_paired_second of a paired source: the candidates are compared
   byte for byte), and the update adds -w (1/M) sum log P_tau(teacher's slate) to the loss.
   teacher: population 1 over all P*N envs, the same K, k and candidate width, no task context;
   borrowed, like teacher_obs. The first attach allocates the buffers (kept until
   ra_target_destroy); teacher NULL detaches (opts unread). Clones and copies do not inherit it.
   RA_ERR_BAD_CONFIG naming what does not match, RA_ERR_NOMEM. */
typedef struct {
  float weight; /* w, in (0, 100] */
  bool gate;    /* T17: each row's term times 1 - its scorer yield (T10), so the student imitates
                   where its task context has feedback on users like the row's; needs
                   cfg.scorer_yield */
  bool sample;  /* T18: the teacher's slate is a sample of its Plackett-Luce at its cfg.temp (its
                   own sampling stream) instead of its top-k */
  bool critic;  /* T19: the value head reads each row with the teacher's view of the user in place
                   of the student's user block (a privileged critic); the teacher's view must have
                   the student's user width */
} ra_target_teacher_opts_t;
ra_err_t ra_target_set_teacher (ra_target_t *t, ra_target_t *teacher, const ra_obs_batch_t *teacher_obs,
                                const ra_target_teacher_opts_t *opts, ra_error_t *err);

/* --------------------------------------------------------------------- driving a server env */

typedef struct {
  int64_t env_steps;     /* transitions collected (N per step) */
  int64_t episodes;      /* episodes that ended */
  double return_sum;     /* sum of the (unscaled) returns of those episodes */
  double reward_sum;     /* sum of rewards over env_steps */
  int updates;
  ra_target_losses_t last;
  double imitation_sum;  /* the imitation loss (T16) summed over updates and replicas */
} ra_target_stats_t;

/* Resets the N envs of env (seeds: NULL to keep their streams, else N seeds) and keeps the
   first observation, so collect can start. The env must have been made with autoreset
   "same_step" (ended envs come back already reset) and match the cfg (N, K, k, U, F). */
ra_err_t ra_target_begin (ra_target_t *t, ra_client_t *c, const ra_client_env_t *env,
                          const uint64_t *seeds, ra_error_t *err);
/* Plays T steps with sampled slates, records them and runs one update; adds to *stats (may be
   NULL). ra_target_begin must have been called on this env. Errors: the client's, or a reply
   whose fields do not fit (RA_ERR_BAD_REQUEST). */
ra_err_t ra_target_train_step (ra_target_t *t, ra_client_t *c, const ra_client_env_t *env,
                               ra_target_stats_t *stats, ra_error_t *err);
/* Adaptation for the meta learners: ra_target_begin (seeds as there) then k_updates train
   steps on env (one task), leaving the adapted parameters in t. stats may be NULL. */
ra_err_t ra_target_adapt (ra_target_t *t, ra_client_t *c, const ra_client_env_t *env,
                          int k_updates, const uint64_t *seeds, ra_target_stats_t *stats,
                          ra_error_t *err);

/* The same two calls over any rollout source (rollout.h; protocol or in-process): begin resets
   the source's envs (P*N of them) with seeds (NULL: keep their streams) and keeps the first
   observation; train_rollout plays T steps with sampled slates, records them and runs one update.
   For the same env, seeds and policy, both kinds of source give identical trajectories and
   identical trained parameters. */
ra_err_t ra_target_begin_rollout (ra_target_t *t, ra_rollout_t *src, const uint64_t *seeds,
                                  ra_error_t *err);
ra_err_t ra_target_train_rollout (ra_target_t *t, ra_rollout_t *src, ra_target_stats_t *stats,
                                  ra_error_t *err);

typedef enum { RA_TARGET_EVAL_GREEDY, RA_TARGET_EVAL_SAMPLE, RA_TARGET_EVAL_RANDOM } ra_target_eval_t;
/* Resets env's n envs (n <= T*N of the policy; any autoreset mode) with seeds[i] and plays
   until each has ended one episode; the policy acts per mode (RANDOM: uniform slates from the
   policy's RNG). *mean_return = mean over the n first episodes, *mean_len their mean length.
   Empties the rollout buffer and ends the training stream (call ra_target_begin before training
   again). max_steps bounds the loop (envs still running then count with their partial return). */
ra_err_t ra_target_evaluate (ra_target_t *t, ra_client_t *c, const ra_client_env_t *env,
                             const uint64_t *seeds, ra_target_eval_t mode, int max_steps,
                             double *mean_return, double *mean_len, ra_error_t *err);

/* ------------------------------------------------------------------------ pure helpers (tests) */

/* log P(slate) under Plackett-Luce over scores[K]: sum over positions r of
   s[a_r] - logsumexp(s over candidates not in a_0..a_{r-1}). If dlogp is not NULL adds
   d log P / d s to it. If entropy is not NULL, writes the sum over positions of the entropy of
   the softmax over the remaining candidates, and adds its gradient to dent (if not NULL). O(kK). */
double ra_target_pl_logprob (const float *scores, int K, const int32_t *slate, int k, float *dlogp,
                             double *entropy, float *dent);
/* GAE(lambda) over T steps x N envs (time-major: index t*N + i). values has (T+1)*N entries (the
   last row bootstraps); done[t*N+i] cuts the bootstrap after step t. Writes adv and ret
   (= adv + values) of T*N entries. O(TN). */
void ra_target_gae (const float *reward, const uint8_t *done, const float *values, int T, int N,
                    float gamma, float lambda, float *adv, float *ret);

/* --------------------------------------------------------------------------------------- arm */

/* "target": while it learns (lr > 0, fewer than adapt_updates updates, not frozen) act samples
   Plackett-Luce slates from the current policy and learn records them, running an update every T
   steps (at the next act, which brings the bootstrap observation); frozen, act is top-k (greedy
   false: samples). greedy=true given with lr > 0 is refused (off-policy). reset_optimizer zeroes
   the loaded optimizer state; forget restores the parameters, optimizer state, reward scale and
   sampling RNG it was created with. Settings: defaults, then the checkpoint's stored adaptation settings, then the
   arm's config (the keys of ra_target_cfg_apply plus "checkpoint" (path; its architecture
   overrides hidden/layers) and "device" (cpu|cuda|auto, default cpu)). docs/agents.md, "Adapting
   the target". */
extern const ra_policy_class_t ra_target_policy_class;
/* "expert": the same arm on <dir>/<task split>-<task id>.safetensors (the task the harness names
   in ra_policy_args_t), lr 0 unless given. Config: "dir" plus the target's keys. */
extern const ra_policy_class_t ra_expert_policy_class;
/* The policy inside a target or expert arm (borrowed), for tests and reports. */
ra_target_t *ra_target_arm_policy (ra_policy_t *p);

#endif
