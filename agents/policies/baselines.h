/*  agents/policies/baselines.h - the classic baseline arms (docs/agents.md section 1). Each is a
    ra_policy_class_t; the registry (registry.h) lists them by name. Static data; thread-safe.  */
#ifndef RA_AGENTS_POLICIES_BASELINES_H
#define RA_AGENTS_POLICIES_BASELINES_H

#include "agents/policies/policy.h"

extern const ra_policy_class_t ra_random_policy_class;        /* "random" */
extern const ra_policy_class_t ra_popularity_policy_class;    /* "popularity" */
extern const ra_policy_class_t ra_egreedy_policy_class;       /* "egreedy" */
extern const ra_policy_class_t ra_linucb_policy_class;        /* "linucb" (disjoint) */
extern const ra_policy_class_t ra_linucb_hybrid_policy_class; /* "linucb_hybrid" */
extern const ra_policy_class_t ra_lints_policy_class;         /* "lints" */
extern const ra_policy_class_t ra_metats_policy_class;        /* "metats" (metats.h) */
extern const ra_policy_class_t ra_logts_policy_class;         /* "logts" */
extern const ra_policy_class_t ra_oracle_policy_class;        /* "oracle" */

/* Internal, for tests: the UCB score the LinUCB arms give candidate c of env i now. */
double ra__linucb_score (ra_policy_t *p, const ra_obs_batch_t *obs, int i, int c);
double ra__linucb_hybrid_score (ra_policy_t *p, const ra_obs_batch_t *obs, int i, int c);

#endif
