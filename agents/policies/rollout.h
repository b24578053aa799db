/*  agents/policies/rollout.h - rollout sources: where a training policy pulls observations from
    and pushes slates to (docs/agents.md, "Rollout sources").

    A source is a batch of N envs with autoreset "same_step" (an env that ends is reset within the
    step; done = terminated or truncated). Two kinds, with the same trajectories for the same env,
    config, task and seeds:
      protocol  any server over a borrowed ra_client_t (each step encodes the slates and decodes
                the observations);
      inproc    the simulator session stepped in this process (no message encoding, no copy: the
                views point into the session's output buffers). Declared in rollout_inproc.h
                (library ra_rollout_inproc, which links the server's session layer).
    Views returned by obs/reward/done stay valid until the next reset or step on the source.
    A source belongs to one thread.                                                             */
#ifndef RA_AGENTS_POLICIES_ROLLOUT_H
#define RA_AGENTS_POLICIES_ROLLOUT_H

#include <stdint.h>

#include "agents/policies/policy.h"
#include "protocol/client.h"
#include "common/err.h"

typedef struct ra_rollout ra_rollout_t;

/* What every kind implements (internal to the rollout modules). */
typedef struct {
  ra_err_t (*reset) (ra_rollout_t *src, const uint64_t *seeds, const uint8_t *mask, ra_error_t *err);
  ra_err_t (*step) (ra_rollout_t *src, const int32_t *slates, ra_error_t *err);
  ra_err_t (*set_task) (ra_rollout_t *src, const char *split, int64_t id, const uint8_t *mask,
                        ra_error_t *err);
  void (*destroy) (ra_rollout_t *src);
} ra_rollout_ops_t;

struct ra_rollout {
  const ra_rollout_ops_t *ops;
  const char *kind;       /* "protocol" or "inproc" */
  ra_obs_batch_t obs;     /* the current observation (after reset or step) */
  const float *reward;    /* [N] of the last step */
  const uint8_t *done;    /* [N] of the last step: terminated or truncated */
  double step_seconds;    /* wall time spent in ra_rollout_step so far (a profile; a wrapping
                             source's count includes the steps of the source it wraps) */
};

/* Resets all N envs (seeds: NULL keeps their streams, else N seeds) and sets obs. */
ra_err_t ra_rollout_reset (ra_rollout_t *src, const uint64_t *seeds, ra_error_t *err);
/* Resets the envs with mask[i] != 0 (mask NULL: all; seeds as above, entries of unmasked envs
   unused); the other envs keep their running episodes and their obs rows. */
ra_err_t ra_rollout_reset_masked (ra_rollout_t *src, const uint64_t *seeds, const uint8_t *mask,
                                  ra_error_t *err);
/* Sets task (split, id) on the envs with mask[i] != 0 (NULL: all), effective from each env's next
   reset, as a client's set_task with a mask: one batch can hold several tasks (as many distinct
   ones as the env's config task_slots allows; more is the sim's RA_ERR_BAD_CONFIG naming
   task_slots, nothing changed). */
ra_err_t ra_rollout_set_task (ra_rollout_t *src, const char *split, int64_t id, const uint8_t *mask,
                              ra_error_t *err);
/* Steps all N envs with slates [N, k]; sets obs (ended envs already reset), reward and done. */
ra_err_t ra_rollout_step (ra_rollout_t *src, const int32_t *slates, ra_error_t *err);
/* Accepts NULL; NULLs the pointer. */
void ra_rollout_destroy (ra_rollout_t **src_p);

/* A protocol source over env (borrowed with c; both must outlive the source). The env must have
   been made with autoreset "same_step" and have Dict observations with "user" and "candidates"
   (RA_ERR_BAD_CONFIG otherwise). */
ra_err_t ra_rollout_protocol_new (ra_client_t *c, const ra_client_env_t *env, ra_rollout_t **out,
                                  ra_error_t *err);

#endif
