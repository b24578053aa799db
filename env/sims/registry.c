/*  env/sims/registry.c - the table of hosted simulators (env/sims/registry.h). Static data;
    thread-safe. To add a simulator: declare its class in its header and append it below.      */
#include "env/sims/registry.h"

#include <string.h>

#include "env/sims/ecommerce.h"
#include "env/sims/ads.h"
#include "env/sims/content.h"
#include "env/sims/news.h"

static const ra_sim_class_t *const s_sims[] = {
  &ra_ecommerce_class,
  &ra_ads_class,
  &ra_content_class,
  &ra_news_class,
};
#define S_N_SIMS ((int) (sizeof s_sims / sizeof s_sims[0]))

const ra_sim_class_t *const *ra_sims_all (int *n)
{
  *n = S_N_SIMS;
  return s_sims;
}

const ra_sim_class_t *ra_sims_find (const char *name, int len)
{
  if (!name || len < 0)
    return NULL;
  for (int i = 0; i < S_N_SIMS; i++)
    if ((int) strlen (s_sims[i]->name) == len && memcmp (s_sims[i]->name, name, (size_t) len) == 0)
      return s_sims[i];
  return NULL;
}
