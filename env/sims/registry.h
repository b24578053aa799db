/*  env/sims/registry.h - the table of simulators the server can host. Static data; thread-safe. */
#ifndef RA_ENV_SIMS_REGISTRY_H
#define RA_ENV_SIMS_REGISTRY_H

#include "env/core/sim.h"

/* All simulators, in a stable order; *n receives the count. */
const ra_sim_class_t *const *ra_sims_all (int *n);
/* The simulator named name (len bytes, not NUL-terminated), or NULL. */
const ra_sim_class_t *ra_sims_find (const char *name, int len);

#endif
