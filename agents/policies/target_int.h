/*  agents/policies/target_int.h - internals of the target policy shared by target.c (network,
    update), target_cfg.c (configuration), target_ckpt.c (checkpoints), target_run.c (driving a
    server env) and target_arm.c (the A/B arm). Not public.

    Layout: P replicas (cfg.population), each with its own N envs. Device and host rollout
    buffers are replica-major, [P, T, N, ...] (user rows [P, T+1, N, U]: row T is the bootstrap
    observation), so replica p's slice is contiguous and one nn call covers all P.             */
#ifndef RA_AGENTS_POLICIES_TARGET_INT_H
#define RA_AGENTS_POLICIES_TARGET_INT_H

#include "agents/policies/target.h"

struct ra_target {
  ra_target_cfg_t cfg;
  ra_nn_backend_t *be;                   /* borrowed */
  ra_nn_params_t *params;                /* owned, P replicas: scorer "l*" and value head "v*" */
  ra_nn_mlp_t pi, vf;                    /* pi: pair input (user, candidate); vf: user rows */
  int aff_w, aff_b;                      /* affinity head "a.w" [F, U], "a.b" [F] (T7), or -1 */
  int P;                                 /* cfg.population */
  int cap_users;                         /* T*N: most users per replica one act takes */
  int in_dim;                            /* the networks' user input: U, or U + F with cfg.context */
  double act_seconds;                    /* wall time spent in ra_target_act so far (a profile) */
  /* device buffers (replica-major) */
  float *d_user;                         /* [P, (T+1)N, U] */
  float *d_cand;                         /* [P, TN, K, F] */
  float *pact[RA_NN_MLP_MAX_LAYERS + 1]; /* scorer: [0] user-half scratch [P, TN, hidden],
                                            [i+1] layer i output [P, TNK, w_i] */
  float *vact[RA_NN_MLP_MAX_LAYERS + 1]; /* value: [i+1] [P, (T+1)N, w_i] ([0] unused) */
  float *dbuf[2];                        /* [P, TNK, hidden] activation gradients, ping-pong */
  float *d_dscores;                      /* [P, TNK] */
  float *d_tscores;                      /* [P, TNK] scores times 1/temp; NULL when temp is 1 */
  float *d_dv;                           /* [P, (T+1)N] */
  float *d_sqnorm;                       /* [P] */
  int32_t *d_slate;                      /* [P, TN, k] */
  float *d_rew;                          /* [P, TN] scaled rewards */
  uint8_t *d_done;                       /* [P, TN] */
  float *d_adv, *d_ret, *d_coef;         /* [P, TN] advantages, returns, -adv/M */
  float *d_logp, *d_ent;                 /* [P, TN] log P(slate), summed position entropies */
  float *d_vals, *d_dvc;                 /* [P, TN] values of the T steps and their gradient */
  float *d_vloss;                        /* [P] */
  float *d_pos;                          /* [P, TN, k] per-slot credit coefficients (T6); NULL when
                                            cfg.slot_credit is 0 */
  float *d_aff;                          /* [P, TN, F] affinity head scratch (T7); NULL without it */
  float *d_yield;                        /* [P, TN] the scorer yield of each rollout row (T10);
                                            NULL without cfg.scorer_yield */
  float *d_ydscores;                     /* [P, TNK] the scores' gradient times its row's yield: the
                                            scorer's (T10); NULL without cfg.scorer_yield */
  /* host rollout (replica-major, time-major inside: row t*N + i) */
  int steps;                             /* recorded steps, 0..T */
  int act_slot;                          /* slot whose scorer activations the last act computed, or -1 */
  uint8_t *slot_ok;                      /* [T] the device activations of slot t match the record */
  float *h_user;                         /* [P, (T+1)N, U] */
  float *h_cand;                         /* [P, TN, K, F] */
  int32_t *h_slate;                      /* [P, TN, k] */
  int32_t *h_sampled;                    /* [P, TN, k] act's download of the sampled slates */
  float *h_rew;                          /* [P, TN] */
  uint8_t *h_done;                       /* [P, TN] */
  float *h_values;                       /* [P, (T+1)N] (evaluation scratch) */
  float *h_adv, *h_logp, *h_ent;         /* [P, TN] downloaded for the loss summaries */
  float *h_rs;                           /* [P, TN] scaled rewards */
  float *h_fb;                           /* [P, TN, k] rank feedback of each step (T6; NULL when
                                            cfg.slot_credit is 0) */
  float *h_pos;                          /* [P, TN, k] staged d_pos */
  float *h_yield;                        /* [P, TN] staged d_yield (T10) */
  float *h_vloss;                        /* [P] */
  float *h_tmp;                          /* [2K] */
  /* the task context (T8; NULL without cfg.context, target_context.c) */
  double *ctx_s;                         /* [P, F, U] sum of centred feedback x u^T */
  double *ctx_g;                         /* [P, U, U] sum of u u^T over the same steps */
  double *ctx_l;                         /* [2 U U + U] scratch: G + n0 I, its factor, a solve */
  float *ctx_u;                          /* [P*N, U] users of the pending slates */
  float *ctx_x;                          /* [P*N, k, F] features of the pending slates' items */
  uint8_t *ctx_pending;                  /* [P*N] env i's last act waits for its feedback */
  float *h_aug;                          /* [P*TN, U + F] the augmented user rows of one call */
  float *ctx_yield;                      /* [P*TN] the scorer yield of the same rows (T10), or NULL */
  uint64_t *ctx_draw;                    /* [P] acts since the replica's context was reset: which
                                            posterior draw its rows read (T11), or NULL */
  double *ctx_e;                         /* [F, U] scratch: sigma L^-T z of one draw (T11) */
  double *ctx_m;                         /* [P*N, F] each env's session sum of centred feedback x
                                            (T12), or NULL */
  double *ctx_n;                         /* [P*N] its informative steps (T12) */
  uint8_t *ctx_ended;                    /* [P*N] its episode ended: empty M (T12), skip the reset's
                                            response (T13) at the next act */
  double *ctx_base;                      /* [k] one replica's click rates at this act (T13) */
  double *ctx_clicked;                   /* [P] the replica's steps whose rank feedback was not
                                            flat so far (with clicks: a click, not on every rank):
                                            T13's handover to T8 (T14), or NULL */
  float *ctx_proto;                      /* [P, C, U] the kernel context's unit user prototypes
                                            (T15; C = RA_TARGET_KERNEL_PROTOTYPES), or NULL */
  double *ctx_pk;                        /* [P, C] each prototype's weight K_c (T15) */
  double *ctx_pv;                        /* [P, C, F] its sum of centred feedback V_c (T15) */
  int *ctx_nproto;                       /* [P] prototypes in use (T15) */
  double *ctx_y;                         /* [F] scratch: one step's centred feedback, one row's V (T15) */
  float *reward_scale;                   /* [P], 0 until set */
  float *lr;                             /* [P] Adam learning rates (host copy of the device factors) */
  float *h_norm;                         /* [P] gradient norms of the last step */
  ra_nn_rng_t *rng;                      /* [P] sampling: replica p draws from stream 1 + p of cfg.seed */
  ra_target_losses_t *losses;            /* [P] of the last update */
  /* driving a server env (target_run.c) */
  bool have_obs;
  int64_t env_handle;
  const ra_rollout_t *src;               /* the source being trained on (begin_rollout), or NULL */
  float *cur_user, *cur_cand;            /* [P*N, U], [P*N, K, F] the observation to act on */
  float *cur_resp;                       /* [P*N, R] its response (slot_credit > 0, else NULL) */
  double *ep_ret;                        /* [P*T*N] running (unscaled) return */
  float *scratch;                        /* for unaligned reply tensors */
  size_t scratch_floats;
  int32_t *h_act;                        /* [P*TN, k] slates of a step */
  float *h_r;                            /* [P*TN] rewards of a step */
  uint8_t *h_d;                          /* [P*TN] done of a step */
  /* distillation from a teacher (T16, ra_target_set_teacher): NULL / 0 when detached */
  ra_target_t *teacher;                  /* borrowed */
  const ra_obs_batch_t *teacher_obs;     /* borrowed view of what the teacher acts on */
  int teacher_steps;                     /* rollout steps with the teacher's slate (0..T) */
  int32_t *h_tslate, *d_tslate;          /* [P, TN, k] the teacher's slate of each step */
  float *d_tcoef;                        /* [P, TN] -w / M, times 1 - the row's yield when gated */
  ra_target_teacher_opts_t teacher_opts; /* w, gate (T17: d_tcoef follows the rows' yield), sample (T18) */
  float *h_tcoef;                        /* [P, TN] staged d_tcoef, refilled by each gated update
                                            (T17); NULL when never gated */
  float *d_tlogp, *h_tlogp;              /* [P, TN] log P_tau(the teacher's slate) */
  float *h_cuser, *d_cuser;              /* [P, (T+1)N, in_dim] the value head's rows with a
                                            privileged critic (T19): the teacher's view of the user,
                                            written as the rollout runs, then h_user's context
                                            block; NULL when never a critic */
};

/* target_cfg.c: RA_OK when cfg is one ra_target_new can build (shapes, ranges, settings that need
   another, buffers of a sane size), else RA_ERR_BAD_CONFIG saying what is wrong. */
ra_err_t ra__target_check_cfg (const ra_target_cfg_t *cfg, ra_error_t *err);

/* target_context.c (docs/agents.md T8): allocation (false when out of memory), the feedback of the
   pending slates, the slates an act chose, and obs with its user rows augmented (returns obs itself
   without cfg.context; view is the storage). */
bool ra__target_context_alloc (ra_target_t *t);
void ra__target_context_free (ra_target_t *t);
void ra__target_context_copy (ra_target_t *dst, int d, const ra_target_t *src, int s);
void ra__target_context_observe (ra_target_t *t, const ra_obs_batch_t *obs);
void ra__target_context_pend (ra_target_t *t, const ra_obs_batch_t *obs, const int32_t *slates);
const ra_obs_batch_t *ra__target_context_view (ra_target_t *t, const ra_obs_batch_t *obs, ra_obs_batch_t *view);

#endif
