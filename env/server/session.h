/*  env/server/session.h - one handle's batch of num_envs envs of one simulator, with Gymnasium 1.x
    vector semantics on top of the simulator interface (docs/protocol.md, "Autoreset and seeding").

    A session owns the ra_sim_t, its output buffers, per-env episode counters and "needs reset"
    states, the autoreset mode and the time limit (truncation is applied here, like Gymnasium's
    TimeLimit), and the observation/action spaces.

    Autoreset (chosen at make):
      next_step  an env that ended is reset on the NEXT step, its action ignored: the step returns
                 the reset obs, reward 0, terminated and truncated false, and no step info
                 (mask false).
      same_step  an env that ends is reset within the same step: obs is the reset obs, reward and
                 flags are the step's; the terminal obs is kept in final_obs (mask final_mask) and
                 the step's info moves to final_info (same buffers, mask final_mask).
      disabled   stepping an ended env is NEEDS_RESET; reset with a mask resets some envs.
    Stepping an env that was never reset is NEEDS_RESET in every mode.

    Output buffers are reference counted (ra_outbufs_t) so that a reply can be sent without a copy:
    the sender takes a reference per frame; a session about to write buffers someone else still
    references first switches to a private buffer: one of a small pool of spares once their
    replies are sent, a fresh one beyond that; the current rows are copied into it only when the
    write keeps some of them (a masked reset, a same_step step). Big blocks are mapped from the kernel,
    so memory goes back when replies are sent and sessions close. Nothing waits, and nothing is
    ever written into a buffer a reply still references (no buffer: the request is refused).
    Threading: a session is used by one thread at a time; its step and reset fan out over a pool. */
#ifndef RA_ENV_SERVER_SESSION_H
#define RA_ENV_SERVER_SESSION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "env/core/sim.h"
#include "env/server/pool.h"
#include "protocol/space.h"

typedef enum { RA_AUTORESET_NEXT_STEP, RA_AUTORESET_SAME_STEP, RA_AUTORESET_DISABLED } ra_autoreset_t;

/* "next_step", "same_step", "disabled". */
const char *ra_autoreset_name (ra_autoreset_t mode);
/* Parses a name of len bytes; false if unknown. */
bool ra_autoreset_from_name (const char *name, int len, ra_autoreset_t *out);

/* Everything a reply may point to. Rows are env-major, as ra_sim_buffers_t. */
typedef struct {
  atomic_int refs;                      /* the session's own reference plus one per frame in flight */
  void *block;                          /* one allocation holding every buffer below */
  size_t nbytes;
  bool external;                        /* block belongs to someone else (a shared-memory segment) */
  ra_sim_buffers_t sim;                 /* obs, info, reward, terminated */
  uint8_t *truncated;                   /* N */
  uint8_t *info_mask;                   /* N: 1 where info came from this step (top-level info) */
  uint8_t *final_mask;                  /* N: same_step: 1 where the env ended in this step */
  void *final_obs[RA_SIM_MAX_FIELDS];   /* same_step: terminal obs rows, valid where final_mask */
} ra_outbufs_t;

/* Drops one reference; frees at zero. Thread-safe (called from ZeroMQ's I/O thread). */
void ra_outbufs_release (ra_outbufs_t *b);
/* Takes one reference. Thread-safe. */
void ra_outbufs_retain (ra_outbufs_t *b);

typedef struct ra_session ra_session_t;

typedef struct {
  const ra_sim_class_t *cls;
  ra_sim_args_t sim;                    /* config, task, num_envs, seed; borrowed for the call */
  ra_autoreset_t autoreset;
  int max_episode_steps;                /* <= 0: the sim's default (0 there too: no limit) */
} ra_session_args_t;

/* Builds the sim and every buffer. Errors from the sim's create (BAD_CONFIG) pass through;
   RA_ERR_NOMEM if allocation fails. Cost: the sim's create plus O(N * obs size). */
ra_err_t ra_session_new (const ra_session_args_t *args, ra_session_t **out, ra_error_t *err);
/* Accepts NULL; NULLs the pointer. Buffers still referenced by replies in flight live on until
   released. */
void ra_session_destroy (ra_session_t **session_p);

int ra_session_num_envs (const ra_session_t *s);
const ra_sim_class_t *ra_session_class (const ra_session_t *s);
ra_sim_t *ra_session_sim (ra_session_t *s);
const ra_sim_spec_t *ra_session_spec (const ra_session_t *s);
ra_autoreset_t ra_session_autoreset (const ra_session_t *s);
/* The time limit applied by the session; 0 when there is none. */
int ra_session_max_episode_steps (const ra_session_t *s);
/* Slate size k and candidates K. */
int ra_session_slate_size (const ra_session_t *s);
int ra_session_num_candidates (const ra_session_t *s);
/* Dict of Box fields from the sim spec; Discrete(K) or MultiDiscrete([K] * k). Owned by s. */
const ra_space_t *ra_session_observation_space (const ra_session_t *s);
const ra_space_t *ra_session_action_space (const ra_session_t *s);
/* The buffers the last reset or step wrote (borrowed; retain them to keep them past the next
   call). */
ra_outbufs_t *ra_session_out (ra_session_t *s);
/* Scratch for actions, N * k int32, filled by the caller before ra_session_step. */
int32_t *ra_session_actions (ra_session_t *s);

/* Resets the envs with mask == NULL or mask[i]; seeds NULL keeps each env's stream, else env i
   is reseeded with seeds[i]. Cost: O(N) over the pool (fork-join). RA_ERR_NOMEM: see _prepare. */
ra_err_t ra_session_reset (ra_session_t *s, ra_pool_t *pool, const uint64_t *seeds, const uint8_t *mask);
/* RA_ERR_NEEDS_RESET (naming the env) if some env was never reset, or, in disabled mode, ended
   and was not reset since. Nothing is changed. */
ra_err_t ra_session_check_step (const ra_session_t *s, ra_error_t *err);
/* Steps the whole batch with ra_session_actions (validated by the caller; ra_session_check_step
   passed). Cost: O(N) sim steps over the pool (fork-join). */
ra_err_t ra_session_step (ra_session_t *s, ra_pool_t *pool);

/* The same in two halves, for running the work elsewhere (ra_pool_submit): prepare on the owning
   thread (copies seeds and mask into the session, makes the output buffers private; RA_ERR_NOMEM
   when no private buffer can be had, nothing changed), then run the
   range function over [0, N) in any split, with nothing else touching the session meanwhile. */
ra_err_t ra_session_reset_prepare (ra_session_t *s, const uint64_t *seeds, const uint8_t *mask);
void ra_session_reset_range (void *session, int i0, int i1);
ra_err_t ra_session_step_prepare (ra_session_t *s);
void ra_session_step_range (void *session, int i0, int i1);

/* Shared-memory sessions (env/server/shm.c): the output buffers live in two caller-owned blocks
   of ra_session_block_bytes each (64-byte aligned, laid out as the session's own), and each step
   or reset writes into the one picked by ra_session_select_block, copying the current rows first
   where the write keeps some (as a switch to a spare does). Call use_blocks once, before the
   first reset; the blocks must outlive the session. No reply may reference them (shm replies
   carry offsets, not frames). RA_ERR_NOMEM if the wrappers cannot be allocated. */
size_t ra_session_block_bytes (const ra_session_t *s);
ra_err_t ra_session_use_blocks (ra_session_t *s, void *block0, void *block1);
void ra_session_select_block (ra_session_t *s, int j);

/* Batches of at least this many envs are split across the pool; smaller run inline. */
#define RA_SESSION_MIN_PARALLEL 64

#endif
