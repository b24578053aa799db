/*  env/core/catalog.h - the item catalog of one task's world (docs/sims/ecommerce.md section 2).

    Items have a topic, a unit embedding x in R^d (normalised topic centre plus noise), a true
    quality q in (0, 1), a noisy public quality estimate, a log-normal price by topic and a margin.
    A catalog depends only on its ra_catalog_params_t (never on env seeds or batch sizes).
    ra_catalog_init allocates every array once; ra_catalog_build refills them in place with no
    allocation. Read-only after build: any number of threads may read it concurrently.           */
#ifndef RA_ENV_CORE_CATALOG_H
#define RA_ENV_CORE_CATALOG_H

#include <stdint.h>

#include "common/rng.h"

#include "common/err.h"

#define RA_CATALOG_PRICE_MIN 0.1    /* prices are clamped to [MIN, MAX] (price units) */
#define RA_CATALOG_PRICE_MAX 10000.0

/* Public item features per row, after the d embedding components. */
enum { RA_CATALOG_F_LOGPRICE = 0, RA_CATALOG_F_QUALITY, RA_CATALOG_F_MARGIN, RA_CATALOG_N_EXTRA };

typedef struct {
  uint64_t world_seed;                  /* keys every draw of the catalog */
  double topic_skew;                    /* Zipf exponent of topic popularity, >= 0 */
  double item_noise;                    /* norm scale of the embedding noise around the topic centre */
  double price_median;                  /* median price over topics (price units) */
} ra_catalog_params_t;

typedef struct {
  int n_items, n_topics, dim;
  int stride;                           /* floats per feat row: dim + RA_CATALOG_N_EXTRA */
  float *feat;                          /* n_items x stride: x (dim, unit norm), then log-price in
                                           [0, 1], public quality estimate in [0, 1], margin rate in [0, 1] */
  float *quality;                       /* n_items: true quality q in (0, 1) */
  float *price;                         /* n_items: price units, in [PRICE_MIN, PRICE_MAX] */
  float *margin;                        /* n_items: margin in price units (rate x price) */
  int32_t *topic;                       /* n_items */
  int32_t *by_topic;                    /* n_items: item ids grouped by topic, ascending within one */
  int32_t *topic_start;                 /* n_topics + 1: topic t owns by_topic[start[t] .. start[t+1]) */
  float *centres;                       /* n_topics x dim: unit topic centres */
  double *topic_cdf;                    /* n_topics: cumulative topic popularity, last = 1 */
  float min_price;                      /* cheapest item's price */
} ra_catalog_t;

/* Allocates a catalog of the given sizes (contents undefined until build). RA_ERR_NOMEM on
   failure, with nothing left allocated. */
ra_err_t ra_catalog_init (ra_catalog_t *c, int n_items, int n_topics, int dim, ra_error_t *err);
/* Frees what init allocated; safe on a zeroed or already finished catalog. */
void ra_catalog_fini (ra_catalog_t *c);
/* Draws the whole catalog from p (section 2). Deterministic; no allocation.
   O(n_items * dim + n_topics * dim). */
void ra_catalog_build (ra_catalog_t *c, const ra_catalog_params_t *p);
/* Draws a topic from the popularity distribution given u uniform in [0, 1). O(n_topics). */
int ra_catalog_sample_topic (const ra_catalog_t *c, double u);
/* Maps a price to the public log-price feature in [0, 1]. */
float ra_catalog_logprice_feature (double price);

/* The topic whose centre has the largest dot product with theta_hat (dim floats); ties go to the
   lowest topic. O(n_topics * dim). */
int ra_catalog_near_topic (const ra_catalog_t *c, const float *theta_hat);

/* Candidate retrieval (docs/sims/ecommerce.md 8.1, shared by ECommerce-v1, Ads-v1 and
   Content-v1): K distinct item ids into cand[0..K), the first n_near drawn from near_topic's
   items (up to 4 tries each), the rest uniform over the catalog; duplicates are rejected through
   a 1024-bit filter, then a scan of the ids so far; after 64 collisions in a row the smallest
   unused id is taken (deterministic). Advances *rng. No allocation. O(K^2) worst case. */
void ra_catalog_retrieve (const ra_catalog_t *c, int near_topic, int n_near, int K, ra_rng_t *rng,
                          int32_t *cand);

#endif
