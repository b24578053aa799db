/*  agents/policies/registry.c - the table of arms (see registry.h). New arms append a line. */
#include "agents/policies/registry.h"

#include <string.h>

#include "agents/policies/baselines.h"
#include "agents/policies/target.h"

static const ra_policy_class_t *const s_all[] = {
  &ra_random_policy_class,
  &ra_popularity_policy_class,
  &ra_egreedy_policy_class,
  &ra_linucb_policy_class,
  &ra_linucb_hybrid_policy_class,
  &ra_lints_policy_class,
  &ra_metats_policy_class,
  &ra_logts_policy_class,
  &ra_oracle_policy_class,
  &ra_target_policy_class,
  &ra_expert_policy_class,
};

const ra_policy_class_t *const *ra_policies_all (int *n)
{
  *n = (int) (sizeof s_all / sizeof s_all[0]);
  return s_all;
}

const ra_policy_class_t *ra_policies_find (const char *name)
{
  for (size_t i = 0; i < sizeof s_all / sizeof s_all[0]; i++)
    if (strcmp (s_all[i]->name, name) == 0)
      return s_all[i];
  return NULL;
}
