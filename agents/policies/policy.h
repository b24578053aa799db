/*  agents/policies/policy.h - the arm interface: what the A/B harness and the trainers run
    (docs/architecture.md section 6.2).

    Every sim's observation is a Dict of "user" (U), "candidates" (K x F) and "response" (R), plus
    "item_ids" (K, i32) where the sim exposes catalog ids; a policy sees one batch of N envs as a
    ra_obs_batch_t view and answers with N slates of k distinct candidate indexes. After each step
    it may learn from a ra_feedback_t. Views borrow the client's reply: valid until the next call
    on that client. A policy object belongs to one thread.                                      */
#ifndef RA_AGENTS_POLICY_H
#define RA_AGENTS_POLICY_H

#include <stdint.h>

#include "protocol/client.h"
#include "common/err.h"
#include "common/kv.h"

/* One batch of observations; float fields are converted to contiguous f32 if needed. */
typedef struct {
  int num_envs;                         /* N */
  int num_candidates;                   /* K */
  int slate_size;                       /* k */
  int user_dim;                         /* U */
  int cand_dim;                         /* F */
  int response_dim;                     /* R */
  const float *user;                    /* (N, U) */
  const float *candidates;              /* (N, K, F) */
  const float *response;                /* (N, R) */
  const int32_t *item_ids;              /* (N, K) catalog ids, or NULL when the sim has none */
} ra_obs_batch_t;

/* What happened to the slates chosen on the previous observation. */
typedef struct {
  const int32_t *slates;                /* (N, k) the actions taken */
  const float *reward;                  /* (N) the env reward */
  const float *slot_reward;             /* (N, k) per-slot credit (e.g. revenue, dwell, clicked) */
  const uint8_t *clicked;               /* (N, k) */
  const uint8_t *done;                  /* (N) terminated or truncated */
  const int32_t *oracle_slates;         /* (N, k) best slate for the NEW obs, or NULL */
} ra_feedback_t;

typedef struct {
  const ra_kv_t *config;                /* the arm's own settings ("alpha", "epsilon", ...) */
  int n_config;
  uint64_t seed;                        /* the arm's RNG stream */
  const char *task_split;               /* the task the arm plays ("test"), or NULL when unknown */
  int64_t task_id;                      /* its id (valid when task_split is set) */
  int num_envs, num_candidates, slate_size, user_dim, cand_dim, response_dim;
  const char *env_id;                   /* the sim ("ECommerce-v1"), or NULL when unknown */
  const char *credit;                   /* what fb->slot_reward carries, "clicked" or "metric",
                                           or NULL when unknown (arms that load a model learnt
                                           on one sim and credit check these) */
} ra_policy_args_t;

typedef struct ra_policy ra_policy_t;

typedef struct {
  const char *name;                     /* "random", "linucb", "target", ... */
  const char *description;              /* one line */
  /* Builds the arm; unknown or bad config keys are RA_ERR_BAD_CONFIG naming the key. */
  ra_err_t (*create) (const ra_policy_args_t *args, ra_policy_t **out, ra_error_t *err);
  /* Accepts NULL; NULLs the pointer. */
  void (*destroy) (ra_policy_t **policy_p);
  /* Writes N slates of k distinct indexes in [0, K) into slates (N, k). */
  void (*act) (ra_policy_t *p, const ra_obs_batch_t *obs, int32_t *slates);
  /* Learns from the outcome of the slates chosen on obs (the observation act saw). May be a
     no-op (random, oracle). */
  void (*learn) (ra_policy_t *p, const ra_obs_batch_t *obs, const ra_feedback_t *fb);
  /* Forgets what was learned (a new task starts); keeps pre-trained parameters if any. */
  void (*forget) (ra_policy_t *p);
  /* Optional (NULL: nothing to do): learning stops and the arm acts as it would be deployed
     (greedy where it samples to learn) until forget; the harness calls it before the frozen
     evaluation episodes (docs/agents.md 2.1) and calls learn no more. */
  void (*freeze) (ra_policy_t *p);
} ra_policy_class_t;

/* A policy instance starts with its class pointer, so generic code can dispatch. */
struct ra_policy {
  const ra_policy_class_t *cls;
};

/* Fills *out from an obs field list of a reply: checks that "user", "candidates", "response"
   exist with matching leading axis N and f32 dtype, and takes "item_ids" if present. Tensor data
   that is not 4-byte aligned is copied into scratch (a buffer the caller owns, of at least
   scratch_floats floats; pass NULL/0 to refuse unaligned data). RA_ERR_BAD_REQUEST naming the
   field when the layout is not the one above. slate_size comes from the caller (action space). */
ra_err_t ra_obs_batch_from_fields (const ra_fields_t *obs, int slate_size, float *scratch,
                                   size_t scratch_floats, ra_obs_batch_t *out, ra_error_t *err);

#endif
