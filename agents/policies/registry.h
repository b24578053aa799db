/*  agents/policies/registry.h - the arms recarena-ab and the trainers can run, by name.
    Static data; thread-safe.                                                              */
#ifndef RA_AGENTS_POLICIES_REGISTRY_H
#define RA_AGENTS_POLICIES_REGISTRY_H

#include "agents/policies/policy.h"

/* All arms in a stable order; *n receives the count. */
const ra_policy_class_t *const *ra_policies_all (int *n);
/* The arm named name (NUL-terminated), or NULL. */
const ra_policy_class_t *ra_policies_find (const char *name);

#endif
