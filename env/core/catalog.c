/*  env/core/catalog.c - catalog allocation and the draws of docs/sims/ecommerce.md section 2. */
#include "env/core/catalog.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "env/core/users.h"

ra_err_t ra_catalog_init (ra_catalog_t *c, int n_items, int n_topics, int dim, ra_error_t *err)
{
  memset (c, 0, sizeof *c);
  c->n_items = n_items;
  c->n_topics = n_topics;
  c->dim = dim;
  c->stride = dim + RA_CATALOG_N_EXTRA;
  size_t n = (size_t) n_items;
  c->feat = malloc (n * (size_t) c->stride * sizeof (float));
  c->quality = malloc (n * sizeof (float));
  c->price = malloc (n * sizeof (float));
  c->margin = malloc (n * sizeof (float));
  c->topic = malloc (n * sizeof (int32_t));
  c->by_topic = malloc (n * sizeof (int32_t));
  c->topic_start = malloc ((size_t) (n_topics + 1) * sizeof (int32_t));
  c->centres = malloc ((size_t) n_topics * (size_t) dim * sizeof (float));
  c->topic_cdf = malloc ((size_t) n_topics * sizeof (double));
  if (!c->feat || !c->quality || !c->price || !c->margin || !c->topic || !c->by_topic
      || !c->topic_start || !c->centres || !c->topic_cdf) {
    ra_catalog_fini (c);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "catalog of %d items x %d dims: out of memory",
                         n_items, dim);
  }
  return RA_OK;
}

void ra_catalog_fini (ra_catalog_t *c)
{
  free (c->feat);
  free (c->quality);
  free (c->price);
  free (c->margin);
  free (c->topic);
  free (c->by_topic);
  free (c->topic_start);
  free (c->centres);
  free (c->topic_cdf);
  memset (c, 0, sizeof *c);
}

float ra_catalog_logprice_feature (double price)
{
  /* section 2: f_price = log(p / PRICE_MIN) / log(PRICE_MAX / PRICE_MIN) in [0, 1] */
  double f = log (price / RA_CATALOG_PRICE_MIN) / log (RA_CATALOG_PRICE_MAX / RA_CATALOG_PRICE_MIN);
  return (float) (f < 0 ? 0 : f > 1 ? 1 : f);
}

static double s_clamp (double x, double lo, double hi)
{
  return x < lo ? lo : x > hi ? hi : x;
}

/* Normalises v (dim) to unit length; a zero vector becomes e_0. */
static void s_normalise (float *v, int dim)
{
  double s = 0;
  for (int i = 0; i < dim; i++)
    s += (double) v[i] * v[i];
  if (s <= 0) {
    v[0] = 1;
    return;
  }
  float inv = (float) (1.0 / sqrt (s));
  for (int i = 0; i < dim; i++) {
    float x = v[i] * inv;   /* clamp: rounding never leaves [-1, 1] */
    v[i] = x > 1.0f ? 1.0f : x < -1.0f ? -1.0f : x;
  }
}

void ra_catalog_build (ra_catalog_t *c, const ra_catalog_params_t *p)
{
  const int d = c->dim, T = c->n_topics, N = c->n_items;
  ra_rng_t rng;
  ra_rng_seed (&rng, p->world_seed, 0x636174616c6f67ULL);   /* "catalog" */

  /* 2.1 topic centres: c_t = n / |n|, n ~ N(0, I_d) */
  for (int t = 0; t < T; t++) {
    ra_rng_normals (&rng, c->centres + (size_t) t * d, d);
    s_normalise (c->centres + (size_t) t * d, d);
  }
  /* 2.2 topic popularity: Zipf over a random permutation of ranks, pi_t ∝ rank_t^-skew.
     Permutation by Fisher-Yates over topic_start (as scratch). */
  for (int t = 0; t < T; t++)
    c->topic_start[t] = t;
  for (int t = T - 1; t > 0; t--) {
    int j = (int) ra_rng_below (&rng, (uint32_t) (t + 1));
    int32_t tmp = c->topic_start[t];
    c->topic_start[t] = c->topic_start[j];
    c->topic_start[j] = tmp;
  }
  double total = 0;
  for (int t = 0; t < T; t++) {
    c->topic_cdf[t] = pow (1.0 + c->topic_start[t], -p->topic_skew);
    total += c->topic_cdf[t];
  }
  double acc = 0;
  for (int t = 0; t < T; t++) {
    acc += c->topic_cdf[t] / total;
    c->topic_cdf[t] = acc;
  }
  c->topic_cdf[T - 1] = 1.0;

  /* 2.3 per-topic price location mu_t = log(price_median) + 0.6 z and margin rate
     m_t ~ U(0.1, 0.4), redrawn per item from a stream keyed by (world_seed, t) so that no
     scratch memory is needed. */
  double noise_scale = p->item_noise / sqrt ((double) d);
  c->min_price = (float) RA_CATALOG_PRICE_MAX;
  for (int i = 0; i < N; i++) {
    int t = ra_catalog_sample_topic (c, ra_rng_uniform_f64 (&rng));
    ra_rng_t trng;
    ra_rng_seed (&trng, p->world_seed, 0x746f706963ULL + (uint64_t) t);   /* topic stream */
    double mu_t = log (p->price_median) + 0.6 * ra_rng_normal (&trng);
    double m_t = ra_rng_range (&trng, 0.1, 0.4);

    float *x = c->feat + (size_t) i * c->stride;
    /* 2.4 x_i = normalise(c_t + item_noise / sqrt(d) * n) */
    ra_rng_normals (&rng, x, d);
    for (int k = 0; k < d; k++)
      x[k] = c->centres[(size_t) t * d + k] + (float) noise_scale * x[k];
    s_normalise (x, d);
    /* 2.5 q_i = sigmoid(z), public estimate qhat_i = clamp(q_i + 0.1 z', 0, 1) */
    double q = 1.0 / (1.0 + exp (-ra_rng_normal (&rng)));
    double qhat = s_clamp (q + 0.1 * ra_rng_normal (&rng), 0, 1);
    /* 2.6 price_i = clamp(exp(mu_t + 0.5 z), PRICE_MIN, PRICE_MAX); margin rate
       r_i = clamp(m_t + 0.05 z, 0.02, 0.6); margin_i = r_i * price_i */
    double price = s_clamp (exp (mu_t + 0.5 * ra_rng_normal (&rng)), RA_CATALOG_PRICE_MIN,
                            RA_CATALOG_PRICE_MAX);
    double rate = s_clamp (m_t + 0.05 * ra_rng_normal (&rng), 0.02, 0.6);
    c->topic[i] = t;
    c->quality[i] = (float) q;
    c->price[i] = (float) price;
    c->margin[i] = (float) (rate * price);
    if (c->price[i] < c->min_price)
      c->min_price = c->price[i];
    x[d + RA_CATALOG_F_LOGPRICE] = ra_catalog_logprice_feature (price);
    x[d + RA_CATALOG_F_QUALITY] = (float) qhat;
    x[d + RA_CATALOG_F_MARGIN] = (float) rate;
  }
  /* group item ids by topic (counting sort; stable, so ascending within a topic) */
  for (int t = 0; t <= T; t++)
    c->topic_start[t] = 0;
  for (int i = 0; i < N; i++)
    c->topic_start[c->topic[i] + 1]++;
  for (int t = 0; t < T; t++)
    c->topic_start[t + 1] += c->topic_start[t];
  for (int i = 0; i < N; i++) {
    /* topic_start[t] is used as a cursor then restored below */
    c->by_topic[c->topic_start[c->topic[i]]++] = i;
  }
  for (int t = T; t > 0; t--)
    c->topic_start[t] = c->topic_start[t - 1];
  c->topic_start[0] = 0;
}

int ra_catalog_sample_topic (const ra_catalog_t *c, double u)
{
  for (int t = 0; t < c->n_topics - 1; t++)
    if (u < c->topic_cdf[t])
      return t;
  return c->n_topics - 1;
}

int ra_catalog_near_topic (const ra_catalog_t *c, const float *theta_hat)
{
  int best = 0;
  float bv = -INFINITY;
  for (int t = 0; t < c->n_topics; t++) {
    float v = ra_users_dot (c->centres + (size_t) t * c->dim, theta_hat, c->dim);
    if (v > bv) {
      bv = v;
      best = t;
    }
  }
  return best;
}

void ra_catalog_retrieve (const ra_catalog_t *c, int near_topic, int n_near, int K, ra_rng_t *rng_p,
                          int32_t *cand)
{
  ra_rng_t rng = *rng_p;   /* a local copy stays in registers (no store-forwarding stalls) */
  uint64_t filt[16];       /* 1024-bit filter of the ids drawn so far */
  memset (filt, 0, sizeof filt);
  const int32_t *list = c->by_topic + c->topic_start[near_topic];
  uint32_t n_list = (uint32_t) (c->topic_start[near_topic + 1] - c->topic_start[near_topic]);
  for (int r = 0; r < K; r++) {
    int32_t id = -1;
    for (int attempt = 0; attempt < 64; attempt++) {
      int32_t x;
      if (r < n_near && attempt < 4 && n_list > 0)
        x = list[ra_rng_below (&rng, n_list)];
      else
        x = (int32_t) ra_rng_below (&rng, (uint32_t) c->n_items);
      uint64_t bit = (uint64_t) 1 << (x & 63);
      int w = (x >> 6) & 15;
      bool dup = false;
      if (filt[w] & bit)
        for (int q = 0; q < r && !dup; q++)
          dup = cand[q] == x;
      if (!dup) {
        id = x;
        break;
      }
    }
    if (id < 0) {   /* 64 collisions in a row: the smallest unused id (deterministic) */
      for (int32_t x = 0; id < 0; x++) {
        bool dup = false;
        for (int q = 0; q < r && !dup; q++)
          dup = cand[q] == x;
        if (!dup)
          id = x;
      }
    }
    filt[(id >> 6) & 15] |= (uint64_t) 1 << (id & 63);
    cand[r] = id;
  }
  *rng_p = rng;
}
