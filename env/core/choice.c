/*  env/core/choice.c - the click models of docs/sims/shared.md section 1 (the logit is
    docs/sims/ecommerce.md section 4). */
#include "env/core/choice.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>

const char *const ra_choice_names[RA_CHOICE_COUNT] = { "logit", "proportional", "cascade",
                                                       "position_based" };

void ra_choice_init (ra_choice_t *c, ra_choice_kind_t kind, int k, double eta, double v0)
{
  assert (k >= 1 && k <= RA_CHOICE_MAX_SLATE);
  assert (kind >= 0 && kind < RA_CHOICE_COUNT);
  c->kind = kind;
  c->k = k;
  c->v0 = (float) v0;
  c->cont = (float) RA_CHOICE_CONTINUE_DEFAULT;
  if (kind == RA_CHOICE_LOGIT)
    c->no_click_weight = (float) exp (v0);
  else if (kind == RA_CHOICE_PROPORTIONAL)
    c->no_click_weight = v0 > 0 ? (float) v0 : 0.0f;                     /* 1.1 w0 = max(v0, 0) */
  else
    c->no_click_weight = 1.0f;
  for (int r = 0; r < RA_CHOICE_MAX_SLATE; r++) {
    double b = kind == RA_CHOICE_CASCADE ? 1.0 : pow (1.0 / (r + 1), eta);   /* b_r = (1/r)^eta */
    c->examine[r] = r < k ? (float) b : 0.0f;
  }
}

void ra_choice_set_continue (ra_choice_t *c, double p)
{
  assert (p >= 0 && p <= 1);
  c->cont = (float) p;
}

/* Ratio models (logit, proportional): one choice among slots and the outside option. */
static float s_ratio_probs (const ra_choice_t *c, const float *v, float *probs)
{
  /* 1.1 P(r) = w_r / (w0 + sum_s w_s), w_r = b_r a(v_r); P(none) = w0 / (...) */
  float w[RA_CHOICE_MAX_SLATE];
  ra_choice_weights (c, v, w);
  float total = c->no_click_weight;
  for (int r = 0; r < c->k; r++)
    total += w[r];
  if (!(total > 0)) {   /* proportional with nothing attractive and w0 = 0: no click */
    for (int r = 0; r < c->k; r++)
      probs[r] = 0;
    return 1.0f;
  }
  float inv = 1.0f / total;
  for (int r = 0; r < c->k; r++)
    probs[r] = w[r] * inv;
  return c->no_click_weight * inv;
}

float ra_choice_probs (const ra_choice_t *c, const float *v, float *probs)
{
  const int k = c->k;
  switch (c->kind) {
  case RA_CHOICE_LOGIT:
  case RA_CHOICE_PROPORTIONAL:
    return s_ratio_probs (c, v, probs);
  case RA_CHOICE_CASCADE: {
    /* 1.1 E_1 = 1, P(r) = E_r a_r, E_{r+1} = E_r (1 - (1 - cont) a_r); P(none) = prod (1 - a_r) */
    float e = 1, none = 1;
    for (int r = 0; r < k; r++) {
      float a = ra_choice_attraction (c, v[r]);
      probs[r] = e * a;
      e *= 1.0f - (1.0f - c->cont) * a;
      none *= 1.0f - a;
    }
    return none;
  }
  default: {
    /* 1.1 P(r) = b_r a_r independently; P(none) = prod (1 - b_r a_r) */
    float none = 1;
    for (int r = 0; r < k; r++) {
      probs[r] = c->examine[r] * ra_choice_attraction (c, v[r]);
      none *= 1.0f - probs[r];
    }
    return none;
  }
  }
}

int ra_choice_sample (const ra_choice_t *c, const float *v, ra_rng_t *rng, uint8_t *clicked)
{
  const int k = c->k;
  for (int r = 0; r < k; r++)
    clicked[r] = 0;
  if (c->kind == RA_CHOICE_CASCADE) {
    /* 1.2 scan top-down: click with a_r; after a click continue with cont, else stop */
    int n = 0;
    for (int r = 0; r < k; r++) {
      if (ra_rng_uniform (rng) < ra_choice_attraction (c, v[r])) {
        clicked[r] = 1;
        n++;
        if (r + 1 < k && !(ra_rng_uniform (rng) < c->cont))
          break;
      }
    }
    return n;
  }
  if (c->kind == RA_CHOICE_POSITION_BASED) {
    int n = 0;   /* 1.2 one uniform per slot */
    for (int r = 0; r < k; r++) {
      clicked[r] = ra_rng_uniform (rng) < c->examine[r] * ra_choice_attraction (c, v[r]);
      n += clicked[r];
    }
    return n;
  }
  float w[RA_CHOICE_MAX_SLATE];
  ra_choice_weights (c, v, w);
  float total = c->no_click_weight;
  for (int r = 0; r < k; r++)
    total += w[r];
  /* 4.2 inverse-CDF over (slot 1, ..., slot k, none) with one uniform */
  float x = ra_rng_uniform (rng) * total;
  for (int r = 0; r < k; r++) {
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
  if (c->kind == RA_CHOICE_LOGIT || c->kind == RA_CHOICE_PROPORTIONAL) {
    float w[RA_CHOICE_MAX_SLATE];
    ra_choice_weights (c, v, w);
    float num = 0, den = c->no_click_weight;
    for (int r = 0; r < c->k; r++) {
      num += w[r] * g[r];
      den += w[r];
    }
    return den > 0 ? num / den : 0.0f;
  }
  float p[RA_CHOICE_MAX_SLATE], sum = 0;
  ra_choice_probs (c, v, p);
  for (int r = 0; r < c->k; r++)
    sum += p[r] * g[r];
  return sum;
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

static float s_ratio_best (const ra_choice_t *c, const float *a, const float *g, int n, int32_t *slate)
{
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
    value = den > 0 ? num / den : 0.0f;
    if (it > 0) {   /* the first lambda is F(S_0) whatever its sign; then F only increases */
      int same = 1;
      for (int r = 0; r < k && same; r++)
        same = prev[r] == slate[r];
      if (same || value <= lambda) {
        if (value < lambda) {   /* float ties: keep the better previous slate */
          for (int r = 0; r < k; r++)
            slate[r] = prev[r];
          value = lambda;
        }
        break;
      }
    }
    lambda = value;
    for (int r = 0; r < k; r++)
      prev[r] = slate[r];
  }
  return value;
}

typedef struct {
  float g;
  int32_t j;
} s_by_gain_t;

static int s_cmp_gain_desc (const void *x, const void *y)
{
  const s_by_gain_t *p = x, *q = y;
  if (p->g != q->g)
    return p->g > q->g ? -1 : 1;
  return p->j < q->j ? -1 : p->j > q->j;
}

/* 1.3 cascade: any fixed set is best shown in decreasing g (exchange argument), so the slate is
   a length-k subsequence of the candidates sorted by g; the DP from the back
   f[i][m] = max(f[i+1][m], a_i g_i + (1 - (1 - cont) a_i) f[i+1][m-1]) is exact because the
   factor (1 - (1 - cont) a_i) is >= 0. */
static float s_cascade_best (const ra_choice_t *c, const float *a, const float *g, int n, int32_t *slate)
{
  const int k = c->k;
  const float d = 1.0f - c->cont;
  s_by_gain_t order[RA_CHOICE_MAX_CANDIDATES];
  for (int j = 0; j < n; j++)
    order[j] = (s_by_gain_t) { g[j], j };
  qsort (order, (size_t) n, sizeof order[0], s_cmp_gain_desc);
  float f[RA_CHOICE_MAX_SLATE + 1];
  uint8_t take[RA_CHOICE_MAX_CANDIDATES][RA_CHOICE_MAX_SLATE + 1];
  f[0] = 0;
  for (int m = 1; m <= k; m++)
    f[m] = -INFINITY;
  for (int i = n - 1; i >= 0; i--) {
    float ai = a[order[i].j], gi = order[i].g;
    for (int m = 0; m <= k; m++)
      take[i][m] = 0;
    int top = n - i < k ? n - i : k;
    for (int m = top; m >= 1; m--) {   /* descending m: f[m - 1] is still f[i + 1][m - 1] */
      float with = f[m - 1] == -INFINITY ? -INFINITY : ai * gi + (1.0f - d * ai) * f[m - 1];
      take[i][m] = with >= f[m] || f[m] == -INFINITY;
      if (take[i][m])
        f[m] = with;
    }
  }
  int m = k, r = 0;
  for (int i = 0; i < n && m > 0; i++)
    if (take[i][m]) {
      slate[r++] = order[i].j;
      m--;
    }
  assert (r == k);
  return f[k];
}

float ra_choice_best_slate (const ra_choice_t *c, const float *a, const float *g, int n,
                            int32_t *slate)
{
  assert (n >= c->k && n <= RA_CHOICE_MAX_CANDIDATES);
  switch (c->kind) {
  case RA_CHOICE_LOGIT:
  case RA_CHOICE_PROPORTIONAL:
    return s_ratio_best (c, a, g, n, slate);
  case RA_CHOICE_CASCADE:
    return s_cascade_best (c, a, g, n, slate);
  default: {
    /* 1.3 position_based: sum_r b_r a_j g_j is maximised by the k largest a_j g_j in
       decreasing order (rearrangement, b_r decreasing) */
    s_top_k (a, g, 0, n, c->k, slate);
    float v = 0;
    for (int r = 0; r < c->k; r++)
      v += c->examine[r] * a[slate[r]] * g[slate[r]];
    return v;
  }
  }
}
