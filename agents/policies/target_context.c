/*  agents/policies/target_context.c - the target policy's task context (docs/agents.md T8): what
    the feedback so far says about this task, as extra user features, so a network trained across
    tasks can adapt to a new one without a gradient step.

    Per replica p (one task: all its N envs pool their feedback), after each env step whose rank
    feedback f (k entries of "response" from cfg.slot_feedback on) is not the same at every rank:

        S_p <- S_p + sum_j (f_j - mean_j f) x_j u^T,   G_p <- G_p + u u^T                 (T8)

    with u the user row the slate was chosen for and x_j the features of the item at rank j. The
    networks see [u, v(u)], v(u) = S_p (G_p + n0 I)^-1 u (n0 = cfg.context): the ridge regression
    of what was clicked on who clicked it, read at u. With cfg.context_residual they see
    [r(u), v(u)], r(u) = n0 (G_p + n0 I)^-1 u (T9): u where the task has said nothing yet,
    shrinking where it has, so that c . (M r(u) + v(u)) is the same regression with prior mean M.
    With cfg.scorer_yield each row also gets gamma(u) = u . r(u) / u . u (T10, with r(u) as in T9
    whether or not the networks read it): 1 on a new task, falling toward 0 where the task's
    feedback covers users like u; the scorer's output for the row is scaled by it (target.c).
    With cfg.context_ts = sigma > 0 the context block reads a draw from the regression's posterior
    instead of its mean (T11): every row of W ~ N(row of S (G + n0 I)^-1, sigma^2 (G + n0 I)^-1),
    v(u) = W u, one draw per replica and act. Draw d of replica p (acts since its reset) is read
    from its sampling stream's (seed, stream ^ "TS") at counter 2 d F U, so the rows of one act
    are the same whenever they are read (record reads them again) and a replica's draws follow
    its sampling stream (the A/B arm's forget and the meta learners' explicit seeds reset both).
    With cfg.context_session = m0 > 0 each env e also keeps its current user's session (T12):

        M_e <- M_e + sum_j (f_j - mean_j f) x_j,   n_e <- n_e + 1                              (T12)

    over the same informative steps, and its rows read v(u) + M_e / (n_e + m0): what this user has
    clicked so far, beside what the task's users like it clicked. The task context pools users
    through u, so one user's first clicks move v(u) by about 1 / (1 + n0); the session term moves
    by 1 / (1 + m0). ra_target_end_sessions marks the envs whose session ended (done); the next
    act takes in their last feedback (a reset's zeros: none) and then empties M_e and n_e.
    With cfg.context_baseline = b > 0 (T13) a slate without a click informs too: every step
    counts, each rank's feedback measured against the click rate at that rank of the same step's
    slates (the replica's other users, shown slates by the same policy at the same time) instead
    of the slate's mean, and weighs the clicks those rates expect of a slate in G and n_e, so n0
    and m0 keep their unit of clicks:

        b_pj = (C_pj + 1/k) / (V_p + 1 / (k b)),   S_p <- S_p + sum_j (f_j - b_pj) x_j u^T,
        G_p <- G_p + (sum_j b_pj) u u^T   (M_e, n_e alike)                                     (T13)

    C_pj the feedback at rank j over the V_p slates this act counts: b is every rank's prior, worth
    1/k of a click. A rate per rank takes out the position effect (a first rank clicked more
    whatever it shows), and a rate of the same step does not lag an arm that improves (a task's
    average so far would, and the context would then push whatever the arm shows now). A step
    that ended the env's episode is skipped at the next act: its response is the reset's zeros,
    not a slate without a click.
    With cfg.context_handover = c0 > 0 (T14) T13 hands over to T8 as the task's clicks accrue:
    each step adds alpha_p times its T13 terms and (1 - alpha_p) times its T8 terms (nothing
    for a flat step), in S, G, M_e and n_e alike,

        alpha_p = c0 / (c0 + C_p),   S_p <- S_p + sum_j (f_j - alpha_p b_pj - (1 - alpha_p) mean_j f) x_j u^T,
        G_p <- G_p + (alpha_p sum_j b_pj + (1 - alpha_p) [f not flat]) u u^T                  (T14)

    with C_p the replica's steps with rank feedback not flat so far (T8's informative steps; a
    reset of the context empties it), alpha_p fixed for the act. A slate without a click informs
    a new task as T13 does and a long history is T8's: T13 helps before anything else is known
    and costs once T8 has clicks to compare (docs/meta.md 6.42).
    With cfg.context_kernel = beta > 0 (T15) the task context is a kernel regression instead of
    T8's linear one, which must map every user direction through one matrix: with hidden tastes
    users the platform sees as one topic like another, a lookup no linear map of u makes. Each
    step's centred feedback y (what T8 adds as y u^T) and weight g (what it adds as g u u^T) go to
    the nearest of the replica's user prototypes p_c (unit rows, at most C), or start a new one
    where the nearest has k_c < 1/2 and fewer than C exist:

        k_c(u) = exp(beta (cos(u, p_c) - 1)),   K_c <- K_c + g,   V_c <- V_c + y,
        v(u) = sum_c k_c V_c / (K(u) + n0),   K(u) = sum_c k_c K_c                              (T15)

    and T9 and T10 read r(u) = n0 u / (K(u) + n0) and gamma(u) = n0 / (K(u) + n0). A zero user
    row neither adds nor reads (T8 gives it nothing either).
    Sums in double, in env order: the same history gives the same bits. Allocates in
    ra__target_context_alloc only.                                                            */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agents/policies/linalg.h"
#include "agents/policies/target_int.h"

#define S_TS_STREAM 0x5453000000000000ull /* "TS": T11's draws, apart from the slates' streams */

bool ra__target_context_alloc (ra_target_t *t)
{
  const ra_target_cfg_t *c = &t->cfg;
  if (c->context <= 0)
    return true;
  size_t P = (size_t) t->P, N = (size_t) c->num_envs, U = (size_t) c->user_dim, F = (size_t) c->cand_dim;
  size_t k = (size_t) c->slate_size;
  return (t->ctx_s = calloc (P * F * U, sizeof (double))) && (t->ctx_g = calloc (P * U * U, sizeof (double)))
         && (t->ctx_l = calloc (2 * U * U + U, sizeof (double)))
         && (t->ctx_u = calloc (P * N * U, sizeof (float))) && (t->ctx_x = calloc (P * N * k * F, sizeof (float)))
         && (t->ctx_pending = calloc (P * N, 1))
         && (t->h_aug = calloc (P * (size_t) t->cap_users * (U + F), sizeof (float)))
         && (!c->scorer_yield || (t->ctx_yield = calloc (P * (size_t) t->cap_users, sizeof (float))))
         && (!(c->context_ts > 0)
             || ((t->ctx_draw = calloc (P, sizeof (uint64_t))) && (t->ctx_e = calloc (F * U, sizeof (double)))))
         && (!(c->context_session > 0)
             || ((t->ctx_m = calloc (P * N * F, sizeof (double))) && (t->ctx_n = calloc (P * N, sizeof (double)))))
         && (!(c->context_session > 0 || c->context_baseline > 0) || (t->ctx_ended = calloc (P * N, 1)))
         && (!(c->context_baseline > 0) || (t->ctx_base = calloc (k, sizeof (double))))
         && (!(c->context_handover > 0) || (t->ctx_clicked = calloc (P, sizeof (double))))
         && (!(c->context_kernel > 0)
             || ((t->ctx_proto = calloc (P * RA_TARGET_KERNEL_PROTOTYPES * U, sizeof (float)))
                 && (t->ctx_pk = calloc (P * RA_TARGET_KERNEL_PROTOTYPES, sizeof (double)))
                 && (t->ctx_pv = calloc (P * RA_TARGET_KERNEL_PROTOTYPES * F, sizeof (double)))
                 && (t->ctx_nproto = calloc (P, sizeof (int))) && (t->ctx_y = calloc (F, sizeof (double)))));
}

void ra__target_context_free (ra_target_t *t)
{
  void *all[] = { t->ctx_s, t->ctx_g, t->ctx_l, t->ctx_u, t->ctx_x, t->ctx_pending, t->h_aug, t->ctx_yield,
                  t->ctx_draw, t->ctx_e, t->ctx_m, t->ctx_n, t->ctx_ended, t->ctx_base, t->ctx_clicked,
                  t->ctx_proto, t->ctx_pk, t->ctx_pv, t->ctx_nproto, t->ctx_y };
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    free (all[i]);
}

void ra_target_reset_context (ra_target_t *t)
{
  const ra_target_cfg_t *c = &t->cfg;
  if (!t->ctx_s)
    return;
  size_t P = (size_t) t->P;
  memset (t->ctx_s, 0, P * (size_t) c->cand_dim * c->user_dim * sizeof (double));
  memset (t->ctx_g, 0, P * (size_t) c->user_dim * c->user_dim * sizeof (double));
  memset (t->ctx_pending, 0, P * (size_t) c->num_envs);
  if (t->ctx_draw)
    memset (t->ctx_draw, 0, P * sizeof (uint64_t));
  size_t n = P * (size_t) c->num_envs;
  if (t->ctx_m) {
    memset (t->ctx_m, 0, n * (size_t) c->cand_dim * sizeof (double));
    memset (t->ctx_n, 0, n * sizeof (double));
  }
  if (t->ctx_ended)
    memset (t->ctx_ended, 0, n);
  if (t->ctx_clicked)
    memset (t->ctx_clicked, 0, P * sizeof (double));
  if (t->ctx_nproto) { /* T15: no prototypes, every slot at zero (a new prototype adds to its slot) */
    memset (t->ctx_nproto, 0, P * sizeof (int));
    memset (t->ctx_pk, 0, P * RA_TARGET_KERNEL_PROTOTYPES * sizeof (double));
    memset (t->ctx_pv, 0, P * RA_TARGET_KERNEL_PROTOTYPES * (size_t) c->cand_dim * sizeof (double));
  }
}

void ra_target_end_sessions (ra_target_t *t, const uint8_t *done, int n)
{
  if (!t->ctx_ended || n != t->P * t->cfg.num_envs)
    return;
  for (int e = 0; e < n; e++)
    t->ctx_ended[e] |= done[e] != 0;
}

void ra_target_end_all_sessions (ra_target_t *t)
{
  if (t->ctx_ended)
    memset (t->ctx_ended, 1, (size_t) t->P * t->cfg.num_envs);
}

void ra__target_context_copy (ra_target_t *dst, int d, const ra_target_t *src, int s)
{
  const ra_target_cfg_t *c = &src->cfg;
  if (!dst->ctx_s || !src->ctx_s || dst->cfg.num_envs != c->num_envs) /* no context, or another batch */
    return;
  size_t N = (size_t) c->num_envs, U = (size_t) c->user_dim, FU = (size_t) c->cand_dim * U;
  size_t kF = (size_t) c->slate_size * c->cand_dim;
  memcpy (dst->ctx_s + d * FU, src->ctx_s + s * FU, FU * sizeof (double));
  memcpy (dst->ctx_g + d * U * U, src->ctx_g + s * U * U, U * U * sizeof (double));
  memcpy (dst->ctx_u + d * N * U, src->ctx_u + s * N * U, N * U * sizeof (float));
  memcpy (dst->ctx_x + d * N * kF, src->ctx_x + s * N * kF, N * kF * sizeof (float));
  memcpy (dst->ctx_pending + d * N, src->ctx_pending + s * N, N);
  if (dst->ctx_draw && src->ctx_draw)
    dst->ctx_draw[d] = src->ctx_draw[s];
  if (dst->ctx_m && src->ctx_m) {
    size_t F = (size_t) c->cand_dim;
    memcpy (dst->ctx_m + d * N * F, src->ctx_m + s * N * F, N * F * sizeof (double));
    memcpy (dst->ctx_n + d * N, src->ctx_n + s * N, N * sizeof (double));
  }
  if (dst->ctx_ended && src->ctx_ended)
    memcpy (dst->ctx_ended + d * N, src->ctx_ended + s * N, N);
  if (dst->ctx_clicked && src->ctx_clicked)
    dst->ctx_clicked[d] = src->ctx_clicked[s];
  if (dst->ctx_nproto && src->ctx_nproto) {
    size_t C = RA_TARGET_KERNEL_PROTOTYPES, F = (size_t) c->cand_dim;
    memcpy (dst->ctx_proto + d * C * U, src->ctx_proto + s * C * U, C * U * sizeof (float));
    memcpy (dst->ctx_pk + d * C, src->ctx_pk + s * C, C * sizeof (double));
    memcpy (dst->ctx_pv + d * C * F, src->ctx_pv + s * C * F, C * F * sizeof (double));
    dst->ctx_nproto[d] = src->ctx_nproto[s];
  }
}

/* T15: the length of the user row u. */
static double s_norm (const float *u, size_t U)
{
  double uu = 0;
  for (size_t b = 0; b < U; b++)
    uu += (double) u[b] * u[b];
  return sqrt (uu);
}

/* T15: the kernel weight of prototype q (unit, U floats) for the user row u of length norm > 0. */
static double s_kernel (const float *q, const float *u, double norm, size_t U, double beta)
{
  double dot = 0;
  for (size_t b = 0; b < U; b++)
    dot += (double) q[b] * u[b];
  return exp (beta * (dot / norm - 1));
}

/* T15: one step's centred feedback y and weight g, from the user row u, into replica p's nearest
   prototype, or a new one where the nearest's kernel weight is below 1/2 and there is room. */
static void s_kernel_add (ra_target_t *t, size_t p, const float *u, const double *y, double g)
{
  const ra_target_cfg_t *c = &t->cfg;
  size_t U = (size_t) c->user_dim, F = (size_t) c->cand_dim, C = RA_TARGET_KERNEL_PROTOTYPES;
  double norm = s_norm (u, U);
  if (norm == 0)
    return;
  float *proto = t->ctx_proto + p * C * U;
  int n = t->ctx_nproto[p], best = -1;
  double best_k = 0;
  for (int q = 0; q < n; q++) {
    double k = s_kernel (proto + (size_t) q * U, u, norm, U, c->context_kernel);
    if (best < 0 || k > best_k) {
      best = q;
      best_k = k;
    }
  }
  if (best < 0 || (best_k < 0.5 && n < (int) C)) { /* a user unlike every prototype so far */
    best = t->ctx_nproto[p]++;
    for (size_t b = 0; b < U; b++)
      proto[(size_t) best * U + b] = (float) (u[b] / norm);
  }
  t->ctx_pk[p * C + (size_t) best] += g;
  double *v = t->ctx_pv + (p * C + (size_t) best) * F;
  for (size_t a = 0; a < F; a++)
    v[a] += y[a];
}

/* The feedback of env e's pending slate (replica p), if any, into S, G (T8; with T13 against the
   replica's click rates at this act, ctx_base, weighed alpha against T8, T14) and its session
   (T12). Returns whether its rank feedback was not flat (T8 informative). */
static bool s_observe_env (ra_target_t *t, const ra_obs_batch_t *obs, size_t p, size_t e, double alpha)
{
  const ra_target_cfg_t *c = &t->cfg;
  if (!t->ctx_pending[e])
    return false;
  t->ctx_pending[e] = 0;
  size_t U = (size_t) c->user_dim, F = (size_t) c->cand_dim, k = (size_t) c->slate_size;
  const float *f = obs->response + e * (size_t) obs->response_dim + c->slot_feedback;
  double mean = 0, weight = 1; /* the slate's mean feedback (T8); the step's weight in G */
  bool flat = true;
  for (size_t j = 0; j < k; j++) {
    mean += f[j];
    flat = flat && f[j] == f[0];
  }
  mean /= (double) k;
  const double *base = t->ctx_base; /* with T13, what each rank is measured against */
  if (base) { /* T13: every step, a slate without a click too */
    if (t->ctx_ended[e]) /* the reset's zeros of the env's next episode, not feedback */
      return false;
    weight = 0;
    for (size_t j = 0; j < k; j++)
      weight += base[j];
    weight = alpha * weight + (1 - alpha) * !flat; /* T14: T8 weighs its informative steps 1 */
  } else if (flat) { /* a reset's zeros, or nothing to tell the ranks apart: no information */
    return false;
  }
  const float *u = t->ctx_u + e * U;
  double *S = t->ctx_s + p * F * U, *G = t->ctx_g + p * U * U, *M = t->ctx_m ? t->ctx_m + e * F : NULL;
  double *y = t->ctx_y; /* T15: the step's centred feedback, summed, in place of S and G */
  if (y)
    memset (y, 0, F * sizeof *y);
  else
    for (size_t a = 0; a < U; a++)
      for (size_t b = 0; b < U; b++)
        G[a * U + b] += weight * u[a] * u[b];
  for (size_t j = 0; j < k; j++) {
    double w = base ? f[j] - alpha * base[j] - (1 - alpha) * mean : f[j] - mean; /* T14, T8 */
    const float *x = t->ctx_x + (e * k + j) * F;
    for (size_t a = 0; a < F; a++) {
      if (y)
        y[a] += w * x[a];
      else
        for (size_t b = 0; b < U; b++)
          S[a * U + b] += w * x[a] * u[b];
      if (M)
        M[a] += w * x[a];
    }
  }
  if (y)
    s_kernel_add (t, p, u, y, weight);
  if (M)
    t->ctx_n[e] += weight;
  return !flat;
}

/* T13: replica p's click rate per rank over the slates this act counts (pending, not a reset's),
   prior b at each rank, into ctx_base. */
static void s_click_rates (ra_target_t *t, const ra_obs_batch_t *obs, size_t p)
{
  const ra_target_cfg_t *c = &t->cfg;
  size_t N = (size_t) c->num_envs, k = (size_t) c->slate_size;
  double slates = 1.0 / ((double) k * c->context_baseline);
  for (size_t j = 0; j < k; j++)
    t->ctx_base[j] = 1.0 / (double) k;
  for (size_t e = p * N; e < (p + 1) * N; e++) {
    if (!t->ctx_pending[e] || t->ctx_ended[e])
      continue;
    const float *f = obs->response + e * (size_t) obs->response_dim + c->slot_feedback;
    for (size_t j = 0; j < k; j++)
      t->ctx_base[j] += f[j];
    slates += 1;
  }
  for (size_t j = 0; j < k; j++)
    t->ctx_base[j] /= slates;
}

void ra__target_context_observe (ra_target_t *t, const ra_obs_batch_t *obs)
{
  const ra_target_cfg_t *c = &t->cfg;
  if (t->ctx_draw) /* every act reads a new posterior draw (T11) */
    for (int p = 0; p < t->P; p++)
      t->ctx_draw[p]++;
  if (!t->ctx_s || obs->num_envs != t->P * c->num_envs)
    return;
  size_t N = (size_t) c->num_envs, F = (size_t) c->cand_dim;
  for (size_t p = 0; p < (size_t) t->P; p++) {
    if (t->ctx_base) /* T13: what this act's slates are measured against */
      s_click_rates (t, obs, p);
    double c0 = c->context_handover, alpha = t->ctx_clicked ? c0 / (c0 + t->ctx_clicked[p]) : 1; /* T14 */
    for (size_t i = 0; i < N; i++) {
      size_t e = p * N + i;
      bool clicked = s_observe_env (t, obs, p, e, alpha);
      if (t->ctx_clicked)
        t->ctx_clicked[p] += clicked;
      if (t->ctx_ended && t->ctx_ended[e]) { /* a new user: this env's session starts empty (T12) */
        if (t->ctx_m) {
          memset (t->ctx_m + e * F, 0, F * sizeof (double));
          t->ctx_n[e] = 0;
        }
        t->ctx_ended[e] = 0;
      }
    }
  }
}

void ra__target_context_pend (ra_target_t *t, const ra_obs_batch_t *obs, const int32_t *slates)
{
  const ra_target_cfg_t *c = &t->cfg;
  if (!t->ctx_s)
    return;
  size_t n = (size_t) t->P * c->num_envs;
  if ((size_t) obs->num_envs != n) { /* not the envs' stream: nothing waits for feedback */
    memset (t->ctx_pending, 0, n);
    return;
  }
  size_t U = (size_t) c->user_dim, F = (size_t) c->cand_dim, K = (size_t) c->num_candidates, k = (size_t) c->slate_size;
  memcpy (t->ctx_u, obs->user, n * U * sizeof (float));
  for (size_t e = 0; e < n; e++)
    for (size_t j = 0; j < k; j++)
      memcpy (t->ctx_x + (e * k + j) * F, obs->candidates + (e * K + (size_t) slates[e * k + j]) * F, F * sizeof (float));
  memset (t->ctx_pending, 1, n);
}

/* T11: draw ctx_draw[p] of replica p into ctx_e, given L, the Cholesky factor of G + n0 I. */
static void s_draw (ra_target_t *t, int p, const double *L)
{
  const ra_target_cfg_t *c = &t->cfg;
  size_t U = (size_t) c->user_dim, F = (size_t) c->cand_dim;
  ra_nn_rng_t r = t->rng[p];
  r.stream ^= S_TS_STREAM;
  r.counter = t->ctx_draw[p] * 2 * F * U; /* a normal takes two draws */
  for (size_t a = 0; a < F; a++) {
    double *e = t->ctx_e + a * U;
    for (size_t b = 0; b < U; b++)
      e[b] = ra_nn_rng_normal (&r);
    ra__chol_solve_upper (L, (int) U, e, e);
    for (size_t b = 0; b < U; b++)
      e[b] *= c->context_ts;
  }
}

/* T15: replica p's kernel regression read at the user row u: V(u) / (K(u) + n0) into t->ctx_y;
   returns n0 / (K(u) + n0), T9's shrink of u and T10's gamma (1 for u = 0 or a new task). */
static double s_kernel_read (ra_target_t *t, size_t p, const float *u)
{
  const ra_target_cfg_t *c = &t->cfg;
  size_t U = (size_t) c->user_dim, F = (size_t) c->cand_dim, C = RA_TARGET_KERNEL_PROTOTYPES;
  double *v = t->ctx_y, norm = s_norm (u, U), K = 0;
  memset (v, 0, F * sizeof *v);
  for (int q = 0; norm > 0 && q < t->ctx_nproto[p]; q++) {
    double k = s_kernel (t->ctx_proto + (p * C + (size_t) q) * U, u, norm, U, c->context_kernel);
    const double *V = t->ctx_pv + (p * C + (size_t) q) * F;
    K += k * t->ctx_pk[p * C + (size_t) q];
    for (size_t a = 0; a < F; a++)
      v[a] += k * V[a];
  }
  double shrink = c->context / (K + c->context);
  for (size_t a = 0; a < F; a++)
    v[a] *= shrink / c->context;
  return shrink;
}

const ra_obs_batch_t *ra__target_context_view (ra_target_t *t, const ra_obs_batch_t *obs, ra_obs_batch_t *view)
{
  const ra_target_cfg_t *c = &t->cfg;
  if (!t->ctx_s)
    return obs;
  size_t U = (size_t) c->user_dim, F = (size_t) c->cand_dim, D = U + F, R = (size_t) obs->num_envs / t->P;
  double *A = t->ctx_l, *L = A + U * U, *w = L + U * U; /* G + n0 I, its Cholesky factor, (G + n0 I)^-1 u */
  const bool kernel = t->ctx_nproto != NULL; /* T15 in place of T8's ridge */
  for (size_t p = 0; p < (size_t) t->P; p++) {
    const double *S = t->ctx_s + p * F * U, *G = t->ctx_g + p * U * U;
    bool ok = true;
    if (!kernel) {
      for (size_t a = 0; a < U * U; a++)
        A[a] = G[a] + (a % (U + 1) == 0 ? c->context : 0.0);
      ok = ra__cholesky (A, (int) U, L); /* G is positive semi-definite and n0 > 0: always */
      if (t->ctx_e && ok) /* T11: E = sigma Z L^-1, row a = sigma L^-T z_a ~ N(0, sigma^2 (G + n0 I)^-1) */
        s_draw (t, (int) p, L);
    }
    for (size_t i = 0; i < R; i++) {
      const float *u = obs->user + (p * R + i) * U;
      float *row = t->h_aug + (p * R + i) * D;
      if (kernel) { /* T15: w = (K(u) + n0)^-1 u, read by T9 and T10 as T8's solve is */
        double shrink = s_kernel_read (t, p, u);
        for (size_t b = 0; b < U; b++)
          w[b] = shrink / c->context * u[b];
      } else {
        for (size_t b = 0; b < U; b++)
          w[b] = u[b];
        if (ok)
          ra__chol_solve (L, (int) U, w, w);
      }
      for (size_t b = 0; b < U; b++) /* T9: r(u) = n0 w; u itself where the solve failed */
        row[b] = c->context_residual && ok ? (float) (c->context * w[b]) : u[b];
      if (t->ctx_yield) { /* T10: gamma(u) = n0 u . w / u . u, in (0, 1]; 1 for u = 0 */
        double uw = 0, uu = 0;
        for (size_t b = 0; b < U; b++) {
          uw += (double) u[b] * w[b];
          uu += (double) u[b] * u[b];
        }
        t->ctx_yield[p * R + i] = ok && uu > 0 ? (float) (c->context * uw / uu) : 1.0f;
      }
      /* T12: the env's own session, on the envs' stream only (R = N: row i is env p N + i) */
      const double *M = t->ctx_m && R == (size_t) c->num_envs ? t->ctx_m + (p * R + i) * F : NULL;
      double m_w = M ? 1.0 / (t->ctx_n[p * R + i] + c->context_session) : 0.0;
      for (size_t a = 0; a < F; a++) {
        double v = 0;
        if (kernel)
          v = t->ctx_y[a];
        else
          for (size_t b = 0; b < U; b++)
            v += S[a * U + b] * w[b] + (t->ctx_e ? t->ctx_e[a * U + b] * u[b] : 0.0);
        row[U + a] = ok ? (float) (M ? v + M[a] * m_w : v) : 0.0f;
      }
    }
  }
  *view = *obs;
  view->user = t->h_aug;
  view->user_dim = (int) D;
  return view;
}
