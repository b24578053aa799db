/*  env/core/choice.c - the click models of docs/sims/ecommerce.md section 4. */
#include "env/core/choice.h"

#include <assert.h>
#include <math.h>

const char *const ra_choice_names[RA_CHOICE_COUNT] = { "logit" };

void ra_choice_init (ra_choice_t *c, ra_choice_kind_t kind, int k, double eta, double v0)
{
  assert (k >= 1 && k <= RA_CHOICE_MAX_SLATE);
  c->kind = kind;
  c->k = k;
  c->no_click_weight = (float) exp (v0);
  for (int r = 0; r < RA_CHOICE_MAX_SLATE; r++)
    c->examine[r] = r < k ? (float) pow (1.0 / (r + 1), eta) : 0.0f;   /* 4.1 b_r = (1/r)^eta */
}

float ra_choice_probs (const ra_choice_t *c, const float *v, float *probs)
{
  /* 4.1 P(r) = b_r e^{v_r} / (e^{v0} + sum_s b_s e^{v_s}); P(none) = e^{v0} / (...) */
  float w[RA_CHOICE_MAX_SLATE];
  ra_choice_weights (c, v, w);
  float total = c->no_click_weight;
  for (int r = 0; r < c->k; r++)
    total += w[r];
  float inv = 1.0f / total;
  for (int r = 0; r < c->k; r++)
    probs[r] = w[r] * inv;
  return c->no_click_weight * inv;
}

int ra_choice_sample (const ra_choice_t *c, const float *v, ra_rng_t *rng, uint8_t *clicked)
{
  float w[RA_CHOICE_MAX_SLATE];
  ra_choice_weights (c, v, w);
  float total = c->no_click_weight;
  for (int r = 0; r < c->k; r++) {
    total += w[r];
    clicked[r] = 0;
  }
  /* 4.2 inverse-CDF over (slot 1, ..., slot k, none) with one uniform */
  float x = ra_rng_uniform (rng) * total;
  for (int r = 0; r < c->k; r++) {
    if (x < w[r]) {
      clicked[r] = 1;
      return 1;
    }
    x -= w[r];
  }
  return 0;
}

float ra_choice_expected (const ra_choice_t *c, const float *v, const float *g)
{
  float w[RA_CHOICE_MAX_SLATE];
  ra_choice_weights (c, v, w);
  float num = 0, den = c->no_click_weight;
  for (int r = 0; r < c->k; r++) {
    num += w[r] * g[r];
    den += w[r];
  }
  return num / den;
}

/* For a fixed lambda, the best slate maximises sum_r b_r a_j (g_j - lambda): take the k largest
   c_j = a_j (g_j - lambda) in decreasing order (b_r is decreasing). O(n k). */
static void s_top_k (const float *a, const float *g, float lambda, int n, int k, int32_t *slate)
{
  float best[RA_CHOICE_MAX_SLATE];
  int m = 0;
  for (int j = 0; j < n; j++) {
    float cj = a[j] * (g[j] - lambda);
    if (m == k && cj <= best[k - 1])
      continue;
    int r = m < k ? m++ : k - 1;
    while (r > 0 && best[r - 1] < cj) {
      best[r] = best[r - 1];
      slate[r] = slate[r - 1];
      r--;
    }
    best[r] = cj;
    slate[r] = j;
  }
}

float ra_choice_best_slate (const ra_choice_t *c, const float *a, const float *g, int n,
                            int32_t *slate)
{
  assert (n >= c->k && n <= RA_CHOICE_MAX_CANDIDATES);
  const int k = c->k;
  /* 4.3 Dinkelbach: lambda_{t+1} = F(S_t) where S_t = argmax_S N(S) - lambda_t D(S); F increases
     strictly until S repeats, and the fixed point is the optimum. */
  float lambda = 0, value = 0;
  int32_t prev[RA_CHOICE_MAX_SLATE];
  for (int it = 0; it < 64; it++) {
    s_top_k (a, g, lambda, n, k, slate);
    float num = 0, den = c->no_click_weight;
    for (int r = 0; r < k; r++) {
      float w = c->examine[r] * a[slate[r]];
      num += w * g[slate[r]];
      den += w;
    }
    value = num / den;
    int same = it > 0;
    for (int r = 0; r < k && same; r++)
      same = prev[r] == slate[r];
    if (same || value <= lambda)
      break;
    lambda = value;
    for (int r = 0; r < k; r++)
      prev[r] = slate[r];
  }
  if (value < lambda) {   /* float ties: keep the better previous slate */
    for (int r = 0; r < k; r++)
      slate[r] = prev[r];
    value = lambda;
  }
  return value;
}
