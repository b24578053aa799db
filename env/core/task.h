/*  env/core/task.h - tasks: deterministic draws of a sim's world/population parameters from
    (sim, split, id), explicit overrides, and descriptions (docs/sims/ecommerce.md section 6).

    A sim describes its parameters once, in a static table of ra_task_param_def_t. Splits
    "train", "val" and "test" draw every parameter from its in-distribution range with
    disjoint streams (the split is part of the stream key); "ood" draws from the shifted range.
    Overrides by name are applied after the draw (or on the sim's default task when split is
    NULL). Resolved tasks are plain arrays of doubles in table order.
    No allocation; pure functions; thread-safe.                                                  */
#ifndef RA_ENV_CORE_TASK_H
#define RA_ENV_CORE_TASK_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/kv.h"
#include "env/core/sim.h"

#define RA_TASK_MAX_PARAMS 32

typedef enum { RA_SPLIT_DEFAULT = 0, RA_SPLIT_TRAIN, RA_SPLIT_VAL, RA_SPLIT_TEST, RA_SPLIT_OOD,
               RA_SPLIT_COUNT } ra_split_t;

/* Names of the splits ("default", "train", "val", "test", "ood"); static strings. */
extern const char *const ra_split_names[RA_SPLIT_COUNT];

typedef struct {
  const char *name;                     /* parameter name, as in set_task params */
  double lo, hi;                        /* train/val/test range */
  double ood_lo, ood_hi;                /* ood range */
  bool log_scale;                       /* draw log-uniformly (both bounds > 0) */
  bool integer;                         /* round draws; overrides must be integral */
  double min, max;                      /* what an override may be */
} ra_task_param_def_t;

typedef struct {
  ra_split_t split;
  int64_t id;                           /* -1 for the default task */
  double values[RA_TASK_MAX_PARAMS];    /* in the def table's order */
} ra_task_values_t;

/* Resolves task (NULL: the defaults) for the sim keyed by sim_key: draws values from (split, id)
   or copies defaults[], then applies task->params overrides. Unknown split, negative id, unknown
   parameter or out-of-range value: RA_ERR_BAD_CONFIG naming it, *out unspecified. O(n_defs + n_params). */
ra_err_t ra_task_resolve (const ra_task_param_def_t *defs, int n_defs, uint64_t sim_key,
                          const double *defaults, const ra_task_t *task, ra_task_values_t *out,
                          ra_error_t *err);

/* Draws parameter values for (split, id) into values[0..n_defs); split must be TRAIN..OOD.
   Deterministic. O(n_defs). */
void ra_task_draw (const ra_task_param_def_t *defs, int n_defs, uint64_t sim_key, ra_split_t split,
                   int64_t id, double *values);

/* The key of task (split, id)'s own stream, hash(sim, split, id): what its parameter draws
   (6.1) and its hidden tastes (docs/sims/shared.md 4) are keyed by. */
uint64_t ra_task_key (uint64_t sim_key, ra_split_t split, int64_t id);

/* Describes a task as "split", "id", then every parameter by name (all strings static or from
   defs). Returns the number written (at most cap). */
int ra_task_describe (const ra_task_param_def_t *defs, int n_defs, const ra_task_values_t *v,
                      ra_kv_t *out, int cap);

/* True when two resolved tasks have the same parameter values (the split and id are labels). */
bool ra_task_same_world (const ra_task_values_t *a, const ra_task_values_t *b, int n_defs);

#endif
