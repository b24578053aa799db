/*  agents/nn/nn.h - small neural networks for RL recommenders, on a CPU or a GPU (docs/nn.md).

    Layout (both backends): row-major, batch x features. A matrix "[B, F]" is B rows of F floats,
    element (b, f) at b*F + f. Weights of a linear layer are [out, in] (PyTorch convention).

    Replicas: a parameter buffer holds P >= 1 networks of the same shape back to back (an ES
    population, a meta-batch of adapted copies). Replica p's copy of every tensor sits at
    data + p*n + offset, where n is the floats in one replica. Every layer runs all P replicas in one
    call (one strided-batched GEMM per layer); activations are then [P, B, F]. P = 1 is the plain case.

    Gradients: parameter gradients accumulate (+=) into params->grad; activation gradients are
    written (=). Exception, stated per function: loss backwards take `accumulate` so several losses
    can add into one gradient buffer.

    Memory: "device" pointers (activations, parameter data) live where the backend computes: host
    memory for cpu, GPU memory for cuda. Move data with ra_nn_upload / ra_nn_download. Calls are
    asynchronous on cuda; ra_nn_download and ra_nn_sync wait.

    No CUDA types appear here; a CPU-only build offers the same API ("cuda" then fails to open).
    Objects are not thread-safe; one backend per thread.                                          */
#ifndef RA_AGENTS_NN_H
#define RA_AGENTS_NN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* ---------------------------------------------------------------------------------- backends */

typedef struct ra_nn_backend ra_nn_backend_t;

typedef struct {
  int blas_threads;  /* cpu: OpenBLAS threads; 0 = env RA_NN_BLAS_THREADS, else 1 (reproducible) */
  bool allow_tf32;   /* cuda: let cuBLAS use TF32 tensor cores (faster, ~1e-3 relative error) */
  int device;        /* cuda: device ordinal */
} ra_nn_backend_opts_t;

/* Opens a backend by name: "cpu", "cuda" or "auto" (cuda when built with it and a GPU is
   present, else cpu). opts may be NULL (defaults). Returns RA_OK and *out (owned by the caller), or
   RA_ERR_BAD_CONFIG (unknown name; "cuda" in a build without CUDA or on a machine without a GPU)
   with the reason in *err. */
ra_err_t ra_nn_backend_open (const char *name, const ra_nn_backend_opts_t *opts,
                             ra_nn_backend_t **out, ra_error_t *err);
void ra_nn_backend_destroy (ra_nn_backend_t **be_p);
/* "cpu" or "cuda". */
const char *ra_nn_backend_name (const ra_nn_backend_t *be);
/* RA_OK, or the first failure of asynchronous device work so far (cuda: a kernel or cuBLAS call
   failed; the message says which, with file:line). Results computed after it are undefined. */
ra_err_t ra_nn_backend_status (ra_nn_backend_t *be, ra_error_t *err);
/* True if this build contains the CUDA backend (a GPU may still be absent). */
bool ra_nn_have_cuda_build (void);

/* Device memory. ra_nn_alloc returns zeroed floats or NULL when out of memory. */
float *ra_nn_alloc (ra_nn_backend_t *be, size_t count);
void ra_nn_free (ra_nn_backend_t *be, void *p);
void ra_nn_upload (ra_nn_backend_t *be, float *dst, const float *host, size_t count);
void ra_nn_upload_bytes (ra_nn_backend_t *be, void *dst, const void *host, size_t bytes);
/* Host staging memory (zeroed; page-locked on cuda, plain on cpu), NULL when out of memory;
   ra_nn_host_free accepts NULL and waits for pending work first. ra_nn_upload_async copies
   `bytes` from such memory without waiting: the caller leaves it unchanged until the next call
   that waits (ra_nn_download, ra_nn_sync, ra_nn_host_free). Plain uploads wait every time. */
void *ra_nn_host_alloc (ra_nn_backend_t *be, size_t bytes);
void ra_nn_host_free (ra_nn_backend_t *be, void *p);
void ra_nn_upload_async (ra_nn_backend_t *be, void *dst, const void *host, size_t bytes);
/* The same for `rows` rows of row_bytes, host_pitch bytes apart in host staging memory and
   dst_pitch apart on the device, in one copy (one call per step where P replicas' rows are
   strided, not P). */
void ra_nn_upload_rows_async (ra_nn_backend_t *be, void *dst, size_t dst_pitch, const void *host,
                              size_t host_pitch, size_t row_bytes, size_t rows);
/* Waits for pending work, then copies. */
void ra_nn_download (ra_nn_backend_t *be, float *host, const float *src, size_t count);
void ra_nn_copy (ra_nn_backend_t *be, float *dst, const float *src, size_t count);
void ra_nn_zero (ra_nn_backend_t *be, float *x, size_t count);
void ra_nn_sync (ra_nn_backend_t *be);

/* y += a*x and x *= a over count floats (Reptile, ES). */
void ra_nn_axpy (ra_nn_backend_t *be, float *y, float a, const float *x, size_t count);
void ra_nn_scale (ra_nn_backend_t *be, float *x, float a, size_t count);
/* Row r < R of replica p < P of a [P, pitch, K] buffer times its own factor:
   x[(p*pitch + r)*K + j] *= g[p*pitch + r] (the target's scorer yield, docs/agents.md T10). */
void ra_nn_scale_rows (ra_nn_backend_t *be, float *x, const float *g, int P, int R, int K, size_t pitch);

/* ------------------------------------------------------------------------------------- RNG */

/* Counter-based: the k-th draw is a pure function of (seed, stream, k), so results never depend on
   thread scheduling or on how many draws another stream made. */
typedef struct {
  uint64_t seed, stream, counter;
} ra_nn_rng_t;

void ra_nn_rng_init (ra_nn_rng_t *r, uint64_t seed, uint64_t stream);
uint64_t ra_nn_rng_u64 (ra_nn_rng_t *r);
float ra_nn_rng_uniform (ra_nn_rng_t *r);  /* [0, 1) */
float ra_nn_rng_normal (ra_nn_rng_t *r);   /* N(0, 1), Box-Muller */

/* --------------------------------------------------------------------------------- parameters */

#define RA_NN_NAME_MAX 64
#define RA_NN_MAX_DIMS 4

typedef struct {
  char name[RA_NN_NAME_MAX];
  int ndim;
  int shape[RA_NN_MAX_DIMS];
  size_t offset; /* floats from the start of a replica */
  size_t numel;
} ra_nn_tensor_t;

typedef struct {
  ra_nn_backend_t *be; /* borrowed */
  int replicas;        /* P */
  int ntensors;
  ra_nn_tensor_t *tensors;
  size_t n;            /* floats per replica (tensors padded to 16-float boundaries) */
  float *data;         /* [P, n] device */
  float *grad;         /* [P, n] device */
  float *adam_m, *adam_v; /* [P, n] device, allocated on the first Adam step */
  int32_t *step;       /* [P] device: optimizer steps per replica (Adam bias correction) */
  float *lr_scale;     /* [P] device: per-replica learning-rate factor (1 after alloc) */
  float *scratch;      /* device: [P] losses/norms etc. */
  size_t scratch_len;
  ra_nn_rng_t rng;     /* host RNG used for init; saved in checkpoints */
  bool add_failed;     /* a tensor could not be added (out of memory); alloc reports it */
} ra_nn_params_t;

/* Builds an empty table of P replicas on be. Add tensors, then ra_nn_params_alloc. */
ra_nn_params_t *ra_nn_params_new (ra_nn_backend_t *be, int replicas, uint64_t seed);
void ra_nn_params_destroy (ra_nn_params_t **p_p);
/* Adds a tensor before allocation; returns its index, or -1 when out of memory (then
   ra_nn_params_alloc fails with RA_ERR_NOMEM). Names must be unique. */
int ra_nn_params_add (ra_nn_params_t *p, const char *name, int ndim, const int *shape);
/* Allocates data, grad (zeroed). Returns RA_ERR_NOMEM with *err on failure. */
ra_err_t ra_nn_params_alloc (ra_nn_params_t *p, ra_error_t *err);
/* Index of a tensor by name, or -1. */
int ra_nn_params_find (const ra_nn_params_t *p, const char *name);
/* Device pointer to replica 0 of tensor t; ra_nn_grad likewise into grad. */
float *ra_nn_param (const ra_nn_params_t *p, int t);
float *ra_nn_grad (const ra_nn_params_t *p, int t);
/* Initialises every replica the same: weights ("*.w", 2-D) uniform(+-sqrt(6/(in+out)))*gain,
   layer-norm gains 1, everything else 0. Draws from p->rng. O(n). */
void ra_nn_params_init (ra_nn_params_t *p, float gain);
void ra_nn_params_zero_grad (ra_nn_params_t *p);
/* Copies replica src of a into replica dst of b (same table): parameters, Adam moments, step
   count and lr factor, so the copy continues exactly as the source would (a source without moments
   yet leaves the copy without them: zeros). O(n). */
void ra_nn_params_copy_replica (ra_nn_params_t *b, int dst, const ra_nn_params_t *a, int src);
/* Copies everything (data, grad, optimizer state, steps, lr factors, rng) of src into dst, an
   existing table of the same shape on the same backend: no allocation, except the Adam moments
   once when src has them and dst not yet (RA_ERR_NOMEM when that fails). */
ra_err_t ra_nn_params_copy (ra_nn_params_t *dst, const ra_nn_params_t *src, ra_error_t *err);
/* Deep copy (data, optimizer state, step, rng) on the same backend, or NULL when out of memory. */
ra_nn_params_t *ra_nn_params_clone (const ra_nn_params_t *p);
/* Per-replica learning rates: Adam uses cfg->lr * host[r] for replica r (host: P floats). */
void ra_nn_params_set_lr_scale (ra_nn_params_t *p, const float *host);

/* ------------------------------------------------------------------ layers (forward/backward) */
/* B is rows per replica; all activations are [P, B, ...] with P = params->replicas. */

/* y[B, out] = x[B, in] w^T + b; w = tensor w [out, in], b = tensor b [out]. */
void ra_nn_linear_forward (const ra_nn_params_t *p, int w, int b, const float *x, float *y, int B);
/* dw += dy^T x; db += sum_rows dy; dx[B, in] = dy w (skipped when dx is NULL). */
void ra_nn_linear_backward (const ra_nn_params_t *p, int w, int b, const float *x, const float *dy,
                            float *dx, int B);

/* Value head: v[B] = x[B, in] w^T + b with w [1, in], b [1] (a linear layer with one output). */
void ra_nn_value_forward (const ra_nn_params_t *p, int w, int b, const float *x, float *v, int B);
/* dw += v-gradient^T x; db += sum dv; dx[B, in] = dv w (skipped when dx is NULL). */
void ra_nn_value_backward (const ra_nn_params_t *p, int w, int b, const float *x, const float *dv, float *dx, int B);

/* Elementwise over count floats; backward uses the forward output y. In-place allowed. */
void ra_nn_relu_forward (ra_nn_backend_t *be, const float *x, float *y, size_t count);
void ra_nn_relu_backward (ra_nn_backend_t *be, const float *y, const float *dy, float *dx, size_t count);
void ra_nn_tanh_forward (ra_nn_backend_t *be, const float *x, float *y, size_t count);
void ra_nn_tanh_backward (ra_nn_backend_t *be, const float *y, const float *dy, float *dx, size_t count);

/* Layer norm over the last axis: y[B, D] = (x - mean) * rstd * g + b; g, b are tensors [D].
   mean, rstd [P*B] are saved for backward. eps 1e-5. */
void ra_nn_layernorm_forward (const ra_nn_params_t *p, int g, int b, const float *x, float *y,
                              float *mean, float *rstd, int B);
void ra_nn_layernorm_backward (const ra_nn_params_t *p, int g, int b, const float *x,
                               const float *mean, const float *rstd, const float *dy, float *dx, int B);

/* Softmax / log-softmax over the candidate axis: x[R, C] -> y[R, C] (R = all rows, P*U).
   To exclude candidates (Plackett-Luce slates: items already placed), add -1e9 to their logits
   first (ra_nn_axpy with a mask); use a finite value, not -inf, so entropy stays finite. */
void ra_nn_softmax_forward (ra_nn_backend_t *be, const float *x, float *y, int R, int C);
void ra_nn_softmax_backward (ra_nn_backend_t *be, const float *y, const float *dy, float *dx, int R, int C);
void ra_nn_log_softmax_forward (ra_nn_backend_t *be, const float *x, float *y, int R, int C);
void ra_nn_log_softmax_backward (ra_nn_backend_t *be, const float *y, const float *dy, float *dx,
                                 int R, int C);

/* Pairs for the scorer: out[R*C, du+dc] row (r, c) = [user[r, :], cand[r, c, :]]. backward writes
   duser[R, du] (sum over c) and dcand[R, C, dc]; either may be NULL. */
void ra_nn_pairs_forward (ra_nn_backend_t *be, const float *user, const float *cand, float *out,
                          int R, int C, int du, int dc);
void ra_nn_pairs_backward (ra_nn_backend_t *be, const float *dout, float *duser, float *dcand,
                           int R, int C, int du, int dc);

/* ------------------------------------------------------------------------------------ losses */
/* Each forward writes one value per replica into loss[P] (device), a mean over the U rows of that
   replica. Each backward writes (accumulate = false) or adds (true) scale * dloss/dinput. */

/* Policy gradient: loss = -(1/U) sum_u adv[u] * logp[u, act[u]]; logp [P, U, C], act/adv [P, U]. */
void ra_nn_pg_loss_forward (ra_nn_backend_t *be, const float *logp, const int32_t *act, const float *adv,
                            float *loss, int P, int U, int C);
void ra_nn_pg_loss_backward (ra_nn_backend_t *be, const int32_t *act, const float *adv, float *dlogp,
                             float scale, bool accumulate, int P, int U, int C);
/* Entropy: H = -(1/U) sum_u sum_c exp(logp) logp. For a bonus, backward with scale = -coef. */
void ra_nn_entropy_forward (ra_nn_backend_t *be, const float *logp, float *loss, int P, int U, int C);
void ra_nn_entropy_backward (ra_nn_backend_t *be, const float *logp, float *dlogp, float scale,
                             bool accumulate, int P, int U, int C);
/* Value MSE: loss = (1/U) sum_u (v[u] - target[u])^2; v, target [P, U]. */
void ra_nn_mse_forward (ra_nn_backend_t *be, const float *v, const float *target, float *loss, int P, int U);
void ra_nn_mse_backward (ra_nn_backend_t *be, const float *v, const float *target, float *dv,
                         float scale, bool accumulate, int P, int U);

/* ------------------------------------------------------------------ slates and advantages */
/* The per-step and per-update host work of a slate policy as device ops, so act and update can
   stay on the device (docs/nn.md, "Slate and advantage ops"). R rows of K candidate scores. */

/* slates [R, k] (device int32): the top k of each row's scores (greedy), or a Plackett-Luce
   sample: the top k of s_j + g_j, g_j = -log(-log u_j) with u_j the draw of rng at counter
   rng->counter + r*K + j (clamped to >= 1e-12); ties go to the lower index. Sampling advances
   rng->counter by R*K; greedy draws nothing. O(R k^2 K). */
void ra_nn_slate_sample (ra_nn_backend_t *be, const float *scores, int R, int K, int k, bool greedy,
                         ra_nn_rng_t *rng, int32_t *slates);
/* The same for P replicas at once: replica p's R rows start at row p*pstride of scores and slates
   and draw from rng[p] (each advanced as above): the slates of P separate calls, in one launch per
   128 replicas on the GPU. */
void ra_nn_slate_sample_pop (ra_nn_backend_t *be, const float *scores, int P, size_t pstride, int R, int K, int k,
                             bool greedy, ra_nn_rng_t *rng, int32_t *slates);
/* Plackett-Luce over each row: logp[r] = sum_i s[a_i] - logsumexp(s over candidates not in
   a_0..a_{i-1}); ent[r] = sum_i of the entropy of that softmax. Either output may be NULL. */
void ra_nn_pl_forward (ra_nn_backend_t *be, const float *scores, const int32_t *slates, int R, int K, int k,
                       float *logp, float *ent);
/* dscores[r, j] = (or += when accumulate) coef[r] d logp_r/ds_j + ent_coef d ent_r/ds_j
   + sum_i pos_coef[r, i] d log p_i(a_i)/ds_j, where log p_i(a_i) is position i's term of logp_r
   (S6: a coefficient per placed item; pos_coef [R, k] device floats, NULL for none). */
void ra_nn_pl_backward (ra_nn_backend_t *be, const float *scores, const int32_t *slates, int R, int K, int k,
                        const float *coef, const float *pos_coef, float ent_coef, float *dscores,
                        bool accumulate);
/* GAE(lambda) of each replica over T steps x N envs, time-major inside a replica: reward, done
   [P, T, N] (done cuts the bootstrap after that step), values [P, T+1, N] (row T bootstraps);
   adv and ret = adv + values, [P, T, N]. Sums in double. */
void ra_nn_gae (ra_nn_backend_t *be, const float *reward, const uint8_t *done, const float *values, int P, int T,
                int N, float gamma, float lambda, float *adv, float *ret);
/* Per replica p: x[p, i] = (x[p, i] - mean_p) / (std_p + 1e-8) over n floats (population std;
   double sums in index order). */
void ra_nn_normalize (ra_nn_backend_t *be, float *x, int P, size_t n);

/* --------------------------------------------------------------------------------- optimizers */

typedef struct {
  float lr, beta1, beta2, eps, weight_decay; /* weight_decay decoupled (AdamW); 0 = plain Adam */
} ra_nn_adam_t;

/* Per replica: scales grad so its L2 norm is at most max_norm. Squared norms before clipping
   [P] go to sqnorms (device, may be NULL). Deterministic two-pass reduction (fixed chunks, fixed order; no atomics). */
void ra_nn_clip_grad_norm (ra_nn_params_t *p, float max_norm, float *sqnorms);
/* Sum of squares of x per replica: out[P] (device) = sum over n floats at x + p*stride. */
void ra_nn_sumsq (ra_nn_backend_t *be, const float *x, size_t n, int P, size_t stride, float *out);
/* data -= lr * grad. */
void ra_nn_sgd_step (ra_nn_params_t *p, float lr);
/* One Adam step over all replicas; increments each replica's device step counter and uses its lr
   factor. Returns RA_ERR_NOMEM when the moment buffers cannot be allocated (first call only). */
ra_err_t ra_nn_adam_step (ra_nn_params_t *p, const ra_nn_adam_t *cfg, ra_error_t *err);
/* Optimizer steps taken by replica 0 / by replica r (downloads the counter). */
int ra_nn_params_steps (const ra_nn_params_t *p);
int ra_nn_params_replica_steps (const ra_nn_params_t *p, int replica);

/* -------------------------------------------------------------------------------------- MLPs */

/* One MLP stored in a parameter table (so several can share one buffer: a scorer and a value
   head): n linear layers "<prefix><i>.w" [width_i, in_i], "<prefix><i>.b" [width_i], with an
   activation between them, all P replicas at once (docs/nn.md, "MLP module").
   Input: cands = 0: rows of du features. cands = C > 0: (user, candidate) pairs, user [R, du]
   and candidates [R, C, dc]; layer 0 then splits its weight into the user and candidate columns,
   W0 [u; c] = W0u u + W0c c, so the user half is computed once per user and the pairs are never
   materialised. A "row" below is an input row or a pair; C' = max(cands, 1).

   Strides: R users per replica are used; replica p of x starts xs users (xs*du floats) after
   replica p-1; of cand, every act and every dbuf buffer S users (S*C' rows) after. This lets a
   caller run a forward on one time slice of a [P, T, N, ...] rollout buffer (R = N, S = T*N).
   Buffers (caller-owned, device): act[0]: pairs only, scratch [P][S, width_0]; act[i+1]: output
   of layer i [P][S*C', width_i] (after the activation); dbuf[0..1]: [P][S*C', max width].  */
#define RA_NN_MLP_MAX_LAYERS 9

typedef enum { RA_NN_ACT_RELU = 0, RA_NN_ACT_TANH = 1 } ra_nn_act_t;

typedef struct {
  int n;                                /* linear layers (hidden + output) */
  int du, dc, cands;                    /* input widths; cands = 0: plain rows of du */
  ra_nn_act_t act;
  int w[RA_NN_MLP_MAX_LAYERS], b[RA_NN_MLP_MAX_LAYERS];
  int width[RA_NN_MLP_MAX_LAYERS];      /* output width of layer i */
  int max_width;                        /* widest layer output (dbuf rows) */
} ra_nn_mlp_t;

/* Adds the tensors of an MLP with nhidden hidden layers of the given widths and an output layer
   of width out to p (before ra_nn_params_alloc). Returns false on a bad shape (nhidden + 1 >
   RA_NN_MLP_MAX_LAYERS, a width < 1, du + dc < 1, dc > 0 without cands) or when a tensor could not
   be added (then ra_nn_params_alloc fails). */
bool ra_nn_mlp_add (ra_nn_params_t *p, ra_nn_mlp_t *m, const char *prefix, int du, int dc, int cands,
                    int nhidden, const int *hidden, int out, ra_nn_act_t act);
/* act[n] = the MLP on x (rows, or users with cand) for R users per replica; returns act[n]. */
const float *ra_nn_mlp_forward (const ra_nn_params_t *p, const ra_nn_mlp_t *m, const float *x,
                                const float *cand, float *const *act, int R, size_t xs, size_t S);
/* dout [P][S*C', out] (same strides as act) -> parameter gradients (+=), from the activations of
   the last forward over the same rows. Overwrites act[0] (pairs) and dbuf. No input gradient. */
void ra_nn_mlp_backward (ra_nn_params_t *p, const ra_nn_mlp_t *m, const float *x, const float *cand,
                         float *const *act, const float *dout, float *const *dbuf, int R, size_t xs,
                         size_t S);
/* Multiply-adds of one forward over R users (per replica, times P). */
double ra_nn_mlp_flops (const ra_nn_mlp_t *m, int R, int P);

/* ---------------------------------------------------------------------------- affinity head */

/* A score term bilinear in (user, candidate) (docs/nn.md, "Affinity head"): with A = tensor w
   [F, U] and a = tensor b [F] of every replica, s[r, j] += c[r, j] . (A u_r + a) for R users per
   replica and their K candidates. Strides as the pair MLP: replicas of u sit xs users apart, of
   cand and scores S users apart. t: caller scratch, [P][R, F] contiguous. */
void ra_nn_affinity_forward (const ra_nn_params_t *p, int w, int b, const float *u, size_t xs, const float *cand,
                             int K, float *scores, float *t, int R, size_t S);
/* dA += sum_r dt_r u_r^T and da += sum_r dt_r (+=, like every backward), dt_r = sum_j ds[r, j] c[r, j],
   from dscores [P][S, K] (same strides as the forward's scores); overwrites t with dt. */
void ra_nn_affinity_backward (ra_nn_params_t *p, int w, int b, const float *u, size_t xs, const float *cand,
                              int K, const float *dscores, float *t, int R, size_t S);

/* ------------------------------------------------------------------------------------- scorer */

/* MLP applied to every (user, candidate) pair of a batch: pairs [U*C, du+dc] -> hidden layers
   (linear + act) -> linear -> scores [U, C]. Tensor names "l<i>.w", "l<i>.b". A ra_nn_mlp_t with
   pair input: one GEMM per layer for all pairs of all replicas. */
#define RA_NN_SCORER_MAX_LAYERS 8

typedef struct {
  int du, dc;            /* user and candidate feature widths */
  int nhidden;           /* hidden layers */
  int hidden[RA_NN_SCORER_MAX_LAYERS];
  ra_nn_act_t act;
  int max_users, cands;  /* largest U per call, C */
} ra_nn_scorer_cfg_t;

typedef struct {
  ra_nn_scorer_cfg_t cfg;
  ra_nn_params_t *params;             /* owned */
  ra_nn_mlp_t mlp;                    /* pair input: du user, dc candidate features */
  int wt[RA_NN_SCORER_MAX_LAYERS + 1], bt[RA_NN_SCORER_MAX_LAYERS + 1];
  float *act[RA_NN_SCORER_MAX_LAYERS + 2]; /* act[0] = user-half scratch, act[i+1] = layer i output */
  float *dbuf[2];                     /* ping-pong activation gradients */
  int last_users;
  const float *last_user, *last_cand; /* inputs of the last forward (borrowed; backward reads them) */
} ra_nn_scorer_t;

/* Builds params (P replicas, initialised from seed) and activation buffers. */
ra_err_t ra_nn_scorer_new (ra_nn_backend_t *be, const ra_nn_scorer_cfg_t *cfg, int replicas,
                           uint64_t seed, ra_nn_scorer_t **out, ra_error_t *err);
void ra_nn_scorer_destroy (ra_nn_scorer_t **s_p);
/* user [P, U, du], cand [P, U, C, dc] -> scores [P, U, C] (device; valid until the next forward). */
const float *ra_nn_scorer_forward (ra_nn_scorer_t *s, const float *user, const float *cand, int U);
/* dscores [P, U, C] -> parameter grads (+=). Uses the activations and the inputs (user, cand: the
   caller keeps them unchanged) of the last forward. */
void ra_nn_scorer_backward (ra_nn_scorer_t *s, const float *dscores);
/* Floating-point operations of one forward at U users (backward is about twice that). */
double ra_nn_scorer_flops (const ra_nn_scorer_t *s, int U);

/* ----------------------------------------------------------------------------- CUDA graphs */

typedef struct ra_nn_graph ra_nn_graph_t;
/* Records fn(arg) without running it (fn must issue only device work of fixed shapes on this
   backend: no downloads, no allocation, no host reads of device results) and replays it with
   ra_nn_graph_launch. On cpu nothing is recorded: launch simply calls fn(arg). */
ra_err_t ra_nn_graph_capture (ra_nn_backend_t *be, void (*fn) (void *), void *arg,
                              ra_nn_graph_t **out, ra_error_t *err);
void ra_nn_graph_launch (ra_nn_graph_t *g);
void ra_nn_graph_destroy (ra_nn_graph_t **g_p);

/* ------------------------------------------------------------------------------- checkpoints */

/* Writes a safetensors file: params as "<name>" (shape [P, ...] when P > 1), Adam moments as
   "adam_m.<name>" / "adam_v.<name>", metadata: step, rng seed/stream/counter, replicas.
   Returns RA_ERR_IO with the reason on failure. */
ra_err_t ra_nn_checkpoint_save (const ra_nn_params_t *p, const char *path, ra_error_t *err);
/* The same with n_meta more string entries in __metadata__ (keys[i] = vals[i]; no quotes or
   backslashes: RA_ERR_BAD_CONFIG), for what a caller keeps beside its parameters. */
ra_err_t ra_nn_checkpoint_save_meta (const ra_nn_params_t *p, const char *path, const char *const *keys,
                                     const char *const *vals, int n_meta, ra_error_t *err);
/* Loads a file written by save into p (same table: names and shapes must match). Restores data,
   Adam moments, step and rng; clears grad. RA_ERR_IO / RA_ERR_BAD_CONFIG on mismatch. */
ra_err_t ra_nn_checkpoint_load (ra_nn_params_t *p, const char *path, ra_error_t *err);
/* The whole regular file at path into *file (malloc'ed, the caller frees; NULL on failure) and
   its size into *len (one byte more is allocated, so a caller may NUL-terminate it at
   (*file)[*len]); RA_ERR_IO naming path. With ra_nn_checkpoint_load_bytes, for a caller that
   reads the file's header itself: one read, so the header and the tensors are of the same file
   even when a writer replaces it (rename) in between. */
ra_err_t ra_nn_checkpoint_read (const char *path, char **file, size_t *len, ra_error_t *err);
/* ra_nn_checkpoint_load of the len bytes at file, read from path (named in the errors). */
ra_err_t ra_nn_checkpoint_load_bytes (ra_nn_params_t *p, const char *file, size_t len, const char *path,
                                      ra_error_t *err);
/* Checks the header of the checkpoint at path (its hlen bytes after the length field, hdr) as a
   load does: one JSON object, no NUL, no key twice in it or in its __metadata__. For a caller
   that reads its own metadata from the header text before it loads: a text search would take the
   first of two values, the load refuses the file. RA_OK, or RA_ERR_IO naming path (and the key). */
ra_err_t ra_nn_checkpoint_check_header (const char *hdr, size_t hlen, const char *path, ra_error_t *err);

#endif
