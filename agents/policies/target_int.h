/*  agents/policies/target_int.h - internals of the target policy shared by target.c (network,
    update), target_run.c (driving a server env) and target_arm.c (the A/B arm). Not public.   */
#ifndef RA_AGENTS_POLICIES_TARGET_INT_H
#define RA_AGENTS_POLICIES_TARGET_INT_H

#include "agents/policies/target.h"

/* An MLP stored in the policy's parameter buffer: n linear layers, activation between them. */
typedef struct {
  int n;                                 /* linear layers (hidden + output) */
  int in;                                /* input width */
  int w[RA_TARGET_MAX_LAYERS + 1], b[RA_TARGET_MAX_LAYERS + 1];
  int width[RA_TARGET_MAX_LAYERS + 1];   /* output width of layer i (last: 1) */
} ra__target_mlp_t;

struct ra_target {
  ra_target_cfg_t cfg;
  ra_nn_backend_t *be;                   /* borrowed */
  ra_nn_params_t *params;                /* owned: scorer "l*" and value head "v*" */
  ra__target_mlp_t pi, vf;
  int cap_users;                         /* T*N: most users one scorer forward takes */
  /* device buffers */
  float *d_user;                         /* [(T+1)N, U] */
  float *d_cand;                         /* [TN, K, F] */
  float *pact[RA_TARGET_MAX_LAYERS + 2]; /* scorer: [0] pairs [TNK, U+F], [i+1] layer i output */
  float *vact[RA_TARGET_MAX_LAYERS + 2]; /* value: [0] = d_user (borrowed), [i+1] [(T+1)N, w] */
  float *dbuf[2];                        /* [TNK, hidden] activation gradients, ping-pong */
  float *d_dscores;                      /* [TNK] */
  float *d_dv;                           /* [(T+1)N] */
  float *d_sqnorm;                       /* [1] */
  /* host rollout, time-major (row t*N + i) */
  int steps;                             /* recorded steps, 0..T */
  float *h_user;                         /* [(T+1)N, U] */
  float *h_cand;                         /* [(T+1)N, K, F] (row T used by act only) */
  int32_t *h_slate;                      /* [TN, k] */
  float *h_rew;                          /* [TN] */
  uint8_t *h_done;                       /* [TN] */
  float *h_scores;                       /* [TN, K] */
  float *h_values;                       /* [(T+1)N] */
  float *h_adv, *h_ret;                  /* [TN] */
  float *h_dscores;                      /* [TN, K] */
  float *h_dv;                           /* [(T+1)N] */
  float *h_tmp;                          /* [2K] */
  float reward_scale;                    /* 0 until set */
  ra_nn_rng_t rng;                       /* sampling (stream 1 of cfg.seed) */
  /* driving a server env (target_run.c) */
  bool have_obs;
  int64_t env_handle;
  float *cur_user, *cur_cand;            /* [N, U], [N, K, F] the observation to act on */
  double *ep_ret;                        /* [N] running (unscaled) return */
  float *scratch;                        /* for unaligned reply tensors */
  size_t scratch_floats;
  int32_t *h_act;                        /* [TN, k] slates of a step */
  float *h_r;                            /* [TN] rewards of a step */
  uint8_t *h_d;                          /* [TN] done of a step */
};

#endif
