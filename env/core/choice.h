/*  env/core/choice.h - click models over a shown slate (docs/sims/shared.md section 1;
    docs/sims/ecommerce.md section 4 for the logit).

    A ra_choice_t holds one model's per-task constants (position weights, no-click utility,
    cascade continuation). The model is chosen by kind, by config key "choice_model" in every sim:
      "logit"          multinomial logit with a no-click option and position bias (one click at most)
      "proportional"   RecSim's proportional model: P(r) ~ b_r max(v_r, 0) against max(v0, 0)
      "cascade"        top-down scan, click with sigmoid(v_r - v0), continue after a click with
                       probability cont (several clicks allowed)
      "position_based" independent clicks with (1/r)^eta sigmoid(v_r - v0) (several clicks allowed)
    v is always the slate's scaled utilities and v0 the scaled no-click utility; the equations are
    in docs/sims/shared.md section 1. Callers loop over clicked[]: several clicks per slate are
    part of the interface.
    Pure functions of their inputs and one RNG; no allocation; thread-safe.                       */
#ifndef RA_ENV_CORE_CHOICE_H
#define RA_ENV_CORE_CHOICE_H

#include <math.h>
#include <stdint.h>

#include "common/rng.h"

#define RA_CHOICE_MAX_SLATE 16
#define RA_CHOICE_MAX_CANDIDATES 256
#define RA_CHOICE_CONTINUE_DEFAULT 0.5   /* cascade: P(keep scanning after a click) */

typedef enum { RA_CHOICE_LOGIT = 0, RA_CHOICE_PROPORTIONAL, RA_CHOICE_CASCADE, RA_CHOICE_POSITION_BASED,
               RA_CHOICE_COUNT } ra_choice_kind_t;

/* Config names of the kinds, indexed by ra_choice_kind_t:
   "logit", "proportional", "cascade", "position_based". */
extern const char *const ra_choice_names[RA_CHOICE_COUNT];

typedef struct {
  ra_choice_kind_t kind;
  int k;                                /* slate size, 1..RA_CHOICE_MAX_SLATE */
  float no_click_weight;                /* logit: exp(v0); proportional: max(v0, 0); others: 1 */
  float examine[RA_CHOICE_MAX_SLATE];   /* b_r = (1 / r)^eta for rank r = 1..k (1 for cascade) */
  float v0;                             /* scaled no-click utility */
  float cont;                           /* cascade: P(continue after a click), in [0, 1] */
} ra_choice_t;

/* Sets the constants: position bias eta >= 0 (ignored by the cascade, whose position effect is
   the scan itself), v0 the scaled no-click utility; cont = RA_CHOICE_CONTINUE_DEFAULT. */
void ra_choice_init (ra_choice_t *c, ra_choice_kind_t kind, int k, double eta, double v0);

/* Cascade continuation after a click, p in [0, 1] (default RA_CHOICE_CONTINUE_DEFAULT); the
   other kinds ignore it. */
void ra_choice_set_continue (ra_choice_t *c, double p);

/* The kind's attraction a(v) of one item with scaled utility v (shared.md 1.1):
   logit e^v; proportional max(v, 0); cascade and position_based sigmoid(v - v0). */
static inline float ra_choice_attraction (const ra_choice_t *c, float v)
{
  switch (c->kind) {
  case RA_CHOICE_LOGIT:
    return expf (v);
  case RA_CHOICE_PROPORTIONAL:
    return v > 0 ? v : 0.0f;
  default:
    return 1.0f / (1.0f + expf (c->v0 - v));
  }
}

/* Attraction weights w_r = b_r a(v_r) of a slate of scaled utilities v[0..k) (for the logit
   b_r exp(v_r), section 4.1 of ecommerce.md). O(k). */
static inline void ra_choice_weights (const ra_choice_t *c, const float *v, float *w)
{
  for (int r = 0; r < c->k; r++)
    w[r] = c->examine[r] * ra_choice_attraction (c, v[r]);
}

/* Marginal click probability of each slot into probs[0..k); returns P(no click at all).
   For the logit and proportional (one click at most) they sum to 1; for cascade and
   position_based several clicks are possible, so sum_r probs[r] >= 1 - P(no click). O(k). */
float ra_choice_probs (const ra_choice_t *c, const float *v, float *probs);

/* Samples the user's clicks: clicked[r] = 1 for each clicked slot, 0 otherwise; returns the
   number of clicks (0 or 1 for logit and proportional, 0..k otherwise). Draws: one uniform
   (logit, proportional), k (position_based), up to 2k (cascade). O(k). */
int ra_choice_sample (const ra_choice_t *c, const float *v, ra_rng_t *rng, uint8_t *clicked);

/* Expected reward of a slate: sum_r P(click r) g[r] (marginals), with g the expected reward
   given a click on slot r's item. O(k). */
float ra_choice_expected (const ra_choice_t *c, const float *v, const float *g);

/* The best ordered slate of k distinct candidates out of n (n <= RA_CHOICE_MAX_CANDIDATES):
   maximises ra_choice_expected over all ordered slates, with a[j] = ra_choice_attraction (c, v_j)
   (e^{v_j} for the logit) and any real g[j] per candidate. Exact for every kind (shared.md 1.3):
   logit and proportional by Dinkelbach iteration on the ratio (each iteration solved exactly by
   the rearrangement inequality; O(n k) per iteration, a handful of iterations); position_based
   by rearrangement (top k of a_j g_j against decreasing b_r; O(n k)); cascade by sorting on g
   and a dynamic programme over (candidate, slots left) (O(n log n + n k)).
   Writes slate[0..k); returns its value. */
float ra_choice_best_slate (const ra_choice_t *c, const float *a, const float *g, int n,
                            int32_t *slate);

#endif
