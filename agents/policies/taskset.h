/*  agents/policies/taskset.h - task sets: the one parser for every flag that names tasks
    (recarena-ab --task-ids, and recarena-target's task flags), docs/agents.md section 2.7.

    Forms: SPLIT:all, SPLIT:A-B (inclusive), SPLIT:I,J,K and mixtures (test:0-3,9), with SPLIT
    one of train, val, test, ood; ids are decimal, 0 <= id < 2^31, and may not repeat. "all" is a
    fixed, documented count per split (ra_taskset_all_count): the sims draw a task for any id, so
    a split has no natural size. Anything else is RA_ERR_BAD_CONFIG naming the flag and the
    expected form. A set owns its id array (ra_taskset_fini). Pure functions; thread-safe.     */
#ifndef RA_AGENTS_POLICIES_TASKSET_H
#define RA_AGENTS_POLICIES_TASKSET_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define RA_TASKSET_MAX_TASKS 65536

typedef struct {
  char split[8];                        /* "train", "val", "test" or "ood" */
  int n;                                /* tasks in the set, >= 1 */
  int64_t *ids;                         /* [n] in the order written */
} ra_taskset_t;

/* How many tasks SPLIT:all means: train 1024, val 64, test 64, ood 64; -1 for another name. */
int ra_taskset_all_count (const char *split);

/* Parses text into *out (zeroed first; release with ra_taskset_fini). flag names the option in
   the error ("--task-ids"). RA_ERR_BAD_CONFIG: the message starts with flag and the text, says
   what is wrong and gives the expected form; *out stays empty. RA_ERR_NOMEM. O(n log n). */
ra_err_t ra_taskset_parse (const char *flag, const char *text, ra_taskset_t *out, ra_error_t *err);

/* Frees the ids; accepts a zeroed or finished set. */
void ra_taskset_fini (ra_taskset_t *ts);

/* Writes the set back in canonical form ("test:0-31", "train:0,3,7-9"): runs of consecutive
   ids become ranges. Always NUL-terminates; returns the length it needed (snprintf-like). */
size_t ra_taskset_format (const ra_taskset_t *ts, char *buf, size_t cap);

#endif
