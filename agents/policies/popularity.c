/*  agents/policies/popularity.c - the popularity arm (docs/agents.md 1.2): per item key, the
    smoothed click rate score_j = (clicks_j + a) / (shows_j + n0), learned from every env of the
    batch; the top k by score (ties broken by a tiny seeded jitter). Settings: prior_clicks a
    (default 1), prior_shows n0 (default 10), max_items (table capacity, default 65536).      */
#include <stdlib.h>

#include "agents/policies/baseline.h"
#include "agents/policies/baselines.h"
#include "agents/policies/item_table.h"

typedef struct {
  ra_policy_t base;
  ra_rng_t rng;
  double a, n0;
  ra__item_table_t items;
  double *clicks, *shows;               /* cap + 1 slots (the last is the overflow) */
  float *score;                         /* K */
  int K;
} s_pop_t;

static void s_destroy (ra_policy_t **pp)
{
  if (!pp || !*pp)
    return;
  s_pop_t *p = (s_pop_t *) *pp;
  ra__item_table_fini (&p->items);
  free (p->clicks);
  free (p->shows);
  free (p->score);
  free (p);
  *pp = NULL;
}

static void s_forget (ra_policy_t *pol)
{
  s_pop_t *p = (s_pop_t *) pol;
  ra__item_table_clear (&p->items);
  p->clicks[p->items.cap] = 0;
  p->shows[p->items.cap] = 0;
}

static ra_err_t s_create (const ra_policy_args_t *args, ra_policy_t **out, ra_error_t *err)
{
  static const char *const keys[] = { "prior_clicks", "prior_shows", "max_items", NULL };
  double a, n0, cap;
  ra_err_t rc = ra__config_check (args, keys, err);
  if (rc == RA_OK)
    rc = ra__config_num (args, "prior_clicks", 1.0, 0.0, 1e6, &a, err);
  if (rc == RA_OK)
    rc = ra__config_num (args, "prior_shows", 10.0, 1e-6, 1e9, &n0, err);
  if (rc == RA_OK)
    rc = ra__config_num (args, "max_items", 65536, 16, 1 << 24, &cap, err);
  if (rc != RA_OK)
    return rc;
  s_pop_t *p = calloc (1, sizeof *p);
  if (!p)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "popularity arm: out of memory");
  p->base.cls = &ra_popularity_policy_class;
  p->a = a;
  p->n0 = n0;
  p->K = args->num_candidates;
  ra_rng_seed_splitmix (&p->rng, args->seed);
  if (!ra__item_table_init (&p->items, (int) cap))
    goto fail;
  p->clicks = calloc ((size_t) p->items.cap + 1, sizeof *p->clicks);
  p->shows = calloc ((size_t) p->items.cap + 1, sizeof *p->shows);
  p->score = calloc ((size_t) p->K, sizeof *p->score);
  if (!p->clicks || !p->shows || !p->score)
    goto fail;
  s_forget (&p->base);
  *out = &p->base;
  return RA_OK;
fail:
  s_destroy ((ra_policy_t **) &p);
  return ra_error_set (err, RA_ERR_NOMEM, -1, "popularity arm: out of memory");
}

static void s_act (ra_policy_t *pol, const ra_obs_batch_t *obs, int32_t *slates)
{
  s_pop_t *p = (s_pop_t *) pol;
  int K = obs->num_candidates, k = obs->slate_size;
  for (int i = 0; i < obs->num_envs; i++) {
    for (int c = 0; c < K; c++) {
      int s = ra__item_table_find (&p->items, ra__item_key (obs, i, c));
      double clicks = s >= 0 ? p->clicks[s] : 0, shows = s >= 0 ? p->shows[s] : 0;
      p->score[c] = (float) ((clicks + p->a) / (shows + p->n0) + 1e-7 * ra_rng_uniform_f64 (&p->rng));
    }
    ra__slate_top_k (p->score, K, k, slates + (size_t) i * k);
  }
}

static void s_learn (ra_policy_t *pol, const ra_obs_batch_t *obs, const ra_feedback_t *fb)
{
  s_pop_t *p = (s_pop_t *) pol;
  int k = obs->slate_size;
  for (int i = 0; i < obs->num_envs; i++)
    for (int r = 0; r < k; r++) {
      bool is_new;
      int s = ra__item_table_get (&p->items, ra__item_key (obs, i, fb->slates[(size_t) i * k + r]),
                                  &is_new);
      if (is_new)
        p->clicks[s] = p->shows[s] = 0;
      p->shows[s] += 1;
      p->clicks[s] += ra__slot_credit (fb, i, r, k);
    }
}

const ra_policy_class_t ra_popularity_policy_class = {
  .name = "popularity", .description = "smoothed click rate per item, (clicks + a) / (shows + n0)",
  .create = s_create, .destroy = s_destroy, .act = s_act, .learn = s_learn, .forget = s_forget,
};
