/*  agents/policies/rollout_paired.h - two rollout sources stepped as one (docs/agents.md,
    "Rollout sources"): the same envs, seeds and tasks observed two ways, e.g. a sim with hidden
    tastes and the same sim with reveal_tastes (docs/sims/shared.md 4.7), so a teacher can act on
    what the second shows while a student acts on, and is trained from, the first (docs/agents.md
    T16).

    Every reset, set_task and step goes to both with the same arguments. obs, reward and done are
    the first's; the second's observation is ra_rollout_paired_second. After each call the two
    must report the same candidates, rewards and done flags, since only their observations of
    the users may differ; when they do not (different seeds, configs or sims), the call fails with
    RA_ERR_BAD_CONFIG saying what differs, rather than training on mismatched pairs.

    Borrows both sources (they must outlive it and take no other calls). One thread.             */
#ifndef RA_AGENTS_POLICIES_ROLLOUT_PAIRED_H
#define RA_AGENTS_POLICIES_ROLLOUT_PAIRED_H

#include "agents/policies/rollout.h"

/* RA_ERR_NOMEM. No call on either source is made here. */
ra_err_t ra_rollout_paired_new (ra_rollout_t *first, ra_rollout_t *second, ra_rollout_t **out, ra_error_t *err);
/* The second source's current observation (the same envs as src->obs): a view kept up to date by
   every call on src, valid as long as src. */
const ra_obs_batch_t *ra_rollout_paired_second (const ra_rollout_t *src);

#endif
