/*  agents/ab/envs.h - the env batch an A/B run plays on: a session on a recarena-server through a
    protocol client, or the same sims stepped in this process through env/local (docs/local.md),
    with no server, no message and no thread hand-off. Both give the runner the same
    ra_step_result_t: the observation fields, reward, terminated and truncated of a step, and its
    info fields with their "_name" masks as the server's reply lists them (a reset's info is
    empty, as on the wire). The local batch runs the server's own session code, so a run gives the
    same numbers either way (tests/policies/test_ab_crn.c).
    One thread per batch.                                                                      */
#ifndef RA_AGENTS_AB_ENVS_H
#define RA_AGENTS_AB_ENVS_H

#include <stdbool.h>
#include <stdint.h>

#include "env/local/local.h"
#include "protocol/client.h"

typedef struct {
  ra_client_t *c;                       /* the server's client, or NULL: the sims in this process */
  ra_client_env_t env;                  /* the session (with c) */
  ra_local_t *local;                    /* the batch (without c) */
  int num_envs, K, k;                   /* envs; candidates; slate size (1: Discrete(K)) */
  int max_episode_steps;                /* the time limit in force; 0: none */
} ra_ab_envs_t;

/* make with autoreset disabled, env i seeded with seed + i. Errors as the server's make
   (BAD_CONFIG for a config key the sim does not take). */
ra_err_t ra_ab_envs_make (ra_ab_envs_t *e, ra_client_t *c, const char *env_id, int num_envs, uint64_t seed,
                          const ra_kv_t *config, int n_config, int max_episode_steps, ra_error_t *err);
/* The task (split, id) for every env, from its next reset. */
ra_err_t ra_ab_envs_set_task (ra_ab_envs_t *e, const char *split, int64_t id, ra_error_t *err);
/* Resets the envs in mask (NULL: all), env i from seeds[i] (seeds NULL: its own stream). */
ra_err_t ra_ab_envs_reset (ra_ab_envs_t *e, const uint64_t *seeds, const bool *mask, ra_step_result_t *out,
                           ra_error_t *err);
/* One step of every env with slates (N, k) of candidate indices. */
ra_err_t ra_ab_envs_step (ra_ab_envs_t *e, const int32_t *slates, ra_step_result_t *out, ra_error_t *err);
/* The sim's catalog size: config's num_items, else the sim's default; 0 if it has none. */
double ra_ab_envs_catalog_size (const ra_ab_envs_t *e, const char *env_id, const ra_kv_t *config,
                                int n_config);
/* Ends the session or frees the batch (a made or zeroed e). */
ra_err_t ra_ab_envs_close (ra_ab_envs_t *e, ra_error_t *err);

#endif
