/*  env/core/choice.h - click models over a shown slate (docs/sims/ecommerce.md section 4).

    A ra_choice_t holds one model's per-task constants (position weights, no-click weight).
    The model is chosen by kind; today only the multinomial logit with a no-click option and
    position bias exists. Another model (RecSim proportional, cascade, position-based) adds a
    kind, a case in each function below, and nothing else: callers loop over clicked[] so several
    clicks per slate are already supported by the interface.
    Pure functions of their inputs and one RNG; no allocation; thread-safe.                       */
#ifndef RA_ENV_CORE_CHOICE_H
#define RA_ENV_CORE_CHOICE_H

#include <math.h>
#include <stdint.h>

#include "env/core/rng.h"

#define RA_CHOICE_MAX_SLATE 16
#define RA_CHOICE_MAX_CANDIDATES 256

typedef enum { RA_CHOICE_LOGIT = 0, RA_CHOICE_COUNT } ra_choice_kind_t;

/* Config names of the kinds, indexed by ra_choice_kind_t. */
extern const char *const ra_choice_names[RA_CHOICE_COUNT];

typedef struct {
  ra_choice_kind_t kind;
  int k;                                /* slate size, 1..RA_CHOICE_MAX_SLATE */
  float no_click_weight;                /* exp(v0), v0 = no-click utility / temperature */
  float examine[RA_CHOICE_MAX_SLATE];   /* b_r = (1 / r)^eta for rank r = 1..k */
} ra_choice_t;

/* Sets the constants: position bias eta >= 0, v0 the scaled no-click utility. */
void ra_choice_init (ra_choice_t *c, ra_choice_kind_t kind, int k, double eta, double v0);

/* Attraction weights w_r = b_r exp(v_r) of a slate of scaled utilities v[0..k) (section 4.1). O(k). */
static inline void ra_choice_weights (const ra_choice_t *c, const float *v, float *w)
{
  for (int r = 0; r < c->k; r++)
    w[r] = c->examine[r] * expf (v[r]);
}

/* Click probabilities of each slot into probs[0..k); returns P(no click). They sum to 1. O(k). */
float ra_choice_probs (const ra_choice_t *c, const float *v, float *probs);

/* Samples the user's clicks: clicked[r] = 1 for each clicked slot, 0 otherwise; returns the
   number of clicks (0 or 1 for the logit). Uses one uniform draw for the logit. O(k). */
int ra_choice_sample (const ra_choice_t *c, const float *v, ra_rng_t *rng, uint8_t *clicked);

/* Expected reward of a slate: sum_r P(click r) g[r], with g the expected reward given a click on
   slot r's item. O(k). */
float ra_choice_expected (const ra_choice_t *c, const float *v, const float *g);

/* The best ordered slate of k distinct candidates out of n (n <= RA_CHOICE_MAX_CANDIDATES):
   maximises ra_choice_expected over all ordered slates, with a[j] = exp(v_j) and any real g[j]
   per candidate. Exact for the logit (Dinkelbach iteration on the ratio; each iteration is solved
   exactly by the rearrangement inequality, section 4.3). Writes slate[0..k); returns its value.
   O(n k) per iteration, a handful of iterations. */
float ra_choice_best_slate (const ra_choice_t *c, const float *a, const float *g, int n,
                            int32_t *slate);

#endif
