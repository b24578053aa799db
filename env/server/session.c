/*  env/server/session.c - Gymnasium vector semantics over one ra_sim_t (see session.h).

    Per-env state: ep_steps (steps in the current episode) and state: RUNNING, ENDED (terminated
    or truncated, not reset since) or FRESH (never reset). Every per-env write in step and reset
    touches only rows of the range being processed, so ranges run concurrently on the pool and
    the results do not depend on how the batch was split.                                        */
#define _DEFAULT_SOURCE   /* MAP_ANONYMOUS */
#include "env/server/session.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Output blocks at least this big are mapped from the kernel directly, so that freeing one gives
   its pages back at once (malloc keeps big freed blocks once its mmap threshold has grown). */
#define S_MMAP_MIN (256u << 10)
/* Buffer sets a session keeps for reuse while replies are in flight (besides the current one). */
#define S_SPARES 2

enum { S_RUNNING = 0, S_ENDED = 1, S_FRESH = 2 };

struct ra_session {
  const ra_sim_class_t *cls;
  ra_sim_t *sim;
  const ra_sim_spec_t *spec;
  int n;                                /* num_envs */
  int K, k;                             /* candidates, slate size */
  ra_autoreset_t autoreset;
  int max_steps;                        /* 0: no time limit */

  /* Layout of one ra_outbufs_t block: byte offsets. */
  size_t off_obs[RA_SIM_MAX_FIELDS], off_info[RA_SIM_MAX_FIELDS], off_final[RA_SIM_MAX_FIELDS];
  size_t off_reward, off_term, off_trunc, off_info_mask, off_final_mask, block_bytes;
  size_t obs_row[RA_SIM_MAX_FIELDS];    /* bytes per env row of each obs field */
  size_t info_row[RA_SIM_MAX_FIELDS];
  ra_outbufs_t *out;                    /* current buffers (the session holds one reference) */
  ra_outbufs_t *spare[S_SPARES];        /* earlier buffers, reused once no reply holds them */
  ra_outbufs_t *ext[2];                 /* shared-memory sessions: the two external blocks */
  int ext_next;                         /* the block the next write goes to */

  int32_t *actions;                     /* N * k */
  int64_t *ep_steps;                    /* N */
  uint8_t *state;                       /* N: S_* */
  uint8_t *scratch;                     /* N: per-range masks */
  ra_space_t *obs_space, *act_space;

  /* Arguments of the reset in progress (owned copies; NULL when absent). */
  uint64_t *seeds_buf;                  /* N */
  uint8_t *mask_buf;                    /* N */
  const uint64_t *seeds;
  const uint8_t *mask;
};

const char *ra_autoreset_name (ra_autoreset_t mode)
{
  switch (mode) {
  case RA_AUTORESET_SAME_STEP: return "same_step";
  case RA_AUTORESET_DISABLED: return "disabled";
  default: return "next_step";
  }
}

bool ra_autoreset_from_name (const char *name, int len, ra_autoreset_t *out)
{
  static const ra_autoreset_t modes[] = { RA_AUTORESET_NEXT_STEP, RA_AUTORESET_SAME_STEP,
                                          RA_AUTORESET_DISABLED };
  for (int i = 0; i < 3; i++) {
    const char *s = ra_autoreset_name (modes[i]);
    if ((int) strlen (s) == len && memcmp (s, name, (size_t) len) == 0) {
      *out = modes[i];
      return true;
    }
  }
  return false;
}

/* ------------------------------------------------------------------------------------------ */
/* Output buffers                                                                              */

void ra_outbufs_retain (ra_outbufs_t *b)
{
  atomic_fetch_add_explicit (&b->refs, 1, memory_order_relaxed);
}

static void *s_block_alloc (size_t n)
{
  if (n < S_MMAP_MIN)
    return aligned_alloc (64, (n + 63) & ~(size_t) 63);
  void *p = mmap (NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static void s_block_free (void *p, size_t n)
{
  if (!p)
    return;
  if (n < S_MMAP_MIN)
    free (p);
  else
    munmap (p, n);
}

void ra_outbufs_release (ra_outbufs_t *b)
{
  if (b && atomic_fetch_sub_explicit (&b->refs, 1, memory_order_acq_rel) == 1) {
    if (!b->external)
      s_block_free (b->block, b->nbytes);
    free (b);
  }
}

static size_t s_field_numel (const ra_field_spec_t *f)
{
  size_t n = 1;
  for (int d = 0; d < f->ndim; d++)
    n *= (size_t) f->shape[d];
  return n;
}

static size_t s_take (size_t *at, size_t bytes)
{
  size_t off = *at;
  *at += (bytes + 63) & ~(size_t) 63;
  return off;
}

static void s_layout (ra_session_t *s)
{
  const ra_sim_spec_t *sp = s->spec;
  size_t at = 0, n = (size_t) s->n;
  for (int f = 0; f < sp->n_obs; f++) {
    s->obs_row[f] = s_field_numel (&sp->obs[f]) * ra_dtype_size (sp->obs[f].dtype);
    s->off_obs[f] = s_take (&at, n * s->obs_row[f]);
  }
  for (int f = 0; f < sp->n_info; f++) {
    s->info_row[f] = s_field_numel (&sp->info[f]) * ra_dtype_size (sp->info[f].dtype);
    s->off_info[f] = s_take (&at, n * s->info_row[f]);
  }
  s->off_reward = s_take (&at, n * sizeof (float));
  s->off_term = s_take (&at, n);
  s->off_trunc = s_take (&at, n);
  s->off_info_mask = s_take (&at, n);
  s->off_final_mask = s_take (&at, n);
  if (s->autoreset == RA_AUTORESET_SAME_STEP)
    for (int f = 0; f < sp->n_obs; f++)
      s->off_final[f] = s_take (&at, n * s->obs_row[f]);
  s->block_bytes = at ? at : 64;
}

/* Points b's fields into b->block according to s's layout. */
static void s_bind (const ra_session_t *s, ra_outbufs_t *b)
{
  char *base = b->block;
  for (int f = 0; f < s->spec->n_obs; f++) {
    b->sim.obs[f] = base + s->off_obs[f];
    b->final_obs[f] = s->autoreset == RA_AUTORESET_SAME_STEP ? base + s->off_final[f] : NULL;
  }
  for (int f = 0; f < s->spec->n_info; f++)
    b->sim.info[f] = base + s->off_info[f];
  b->sim.reward = (float *) (base + s->off_reward);
  b->sim.terminated = (uint8_t *) (base + s->off_term);
  b->truncated = (uint8_t *) (base + s->off_trunc);
  b->info_mask = (uint8_t *) (base + s->off_info_mask);
  b->final_mask = (uint8_t *) (base + s->off_final_mask);
}

/* A new buffer set with one reference; a copy of src when src is not NULL, else zeroed. */
static ra_outbufs_t *s_outbufs_new (const ra_session_t *s, const ra_outbufs_t *src)
{
  ra_outbufs_t *b = calloc (1, sizeof *b);
  if (!b)
    return NULL;
  b->block = s_block_alloc (s->block_bytes);
  if (!b->block) {
    free (b);
    return NULL;
  }
  b->nbytes = s->block_bytes;
  if (src)
    memcpy (b->block, src->block, s->block_bytes);
  else if (s->block_bytes < S_MMAP_MIN)
    memset (b->block, 0, s->block_bytes);   /* mapped pages come zeroed */
  atomic_init (&b->refs, 1);
  s_bind (s, b);
  return b;
}

/* Makes s->out private before a write: if a reply still references it, switch to a spare that
   no reply holds any more (or a new one while fewer than S_SPARES exist, or a one-off beyond that,
   freed when its reply is sent). keep: copy the current rows first (a masked reset keeps the
   others, and same_step keeps final_obs rows of envs that did not end); a step that rewrites every
   row skips the copy, which for big batches is most of the loop thread's work.
   RA_ERR_NOMEM if no private buffer can be had: the caller refuses the request, and nothing is
   ever written into a buffer ZeroMQ may still be sending. */
static ra_err_t s_own_out (ra_session_t *s, bool keep)
{
  if (s->ext[0]) {
    ra_outbufs_t *next = s->ext[s->ext_next];
    if (next != s->out && keep)
      memcpy (next->block, s->out->block, s->block_bytes);
    s->out = next;
    return RA_OK;
  }
  if (atomic_load_explicit (&s->out->refs, memory_order_acquire) == 1)
    return RA_OK;
  int free_i = -1, empty_i = -1;
  for (int i = 0; i < S_SPARES; i++) {
    if (!s->spare[i])
      empty_i = empty_i < 0 ? i : empty_i;
    else if (free_i < 0 && atomic_load_explicit (&s->spare[i]->refs, memory_order_acquire) == 1)
      free_i = i;
  }
  ra_outbufs_t *next;
  if (free_i >= 0) {
    next = s->spare[free_i];
    if (keep)
      memcpy (next->block, s->out->block, s->block_bytes);
    s->spare[free_i] = s->out;          /* the session keeps its reference for later reuse */
  } else {
    next = s_outbufs_new (s, keep ? s->out : NULL);
    if (!next)
      return RA_ERR_NOMEM;
    if (empty_i >= 0)
      s->spare[empty_i] = s->out;
    else
      ra_outbufs_release (s->out);      /* freed (unmapped) when its last frame is sent */
  }
  s->out = next;
  return RA_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Life cycle                                                                                  */

static ra_space_t *s_obs_space (const ra_sim_spec_t *sp)
{
  ra_space_t *dict = ra_space_dict (sp->n_obs);
  if (!dict)
    return NULL;
  for (int f = 0; f < sp->n_obs; f++) {
    const ra_field_spec_t *fs = &sp->obs[f];
    ra_space_t *box = ra_space_box (fs->dtype, fs->ndim, fs->shape, fs->low, fs->high);
    if (!box || ra_space_set_child (dict, f, fs->name, &box) != RA_OK) {
      ra_space_destroy (&box);
      ra_space_destroy (&dict);
      return NULL;
    }
  }
  return dict;
}

static ra_space_t *s_act_space (int K, int k)
{
  if (k == 1)
    return ra_space_discrete (K, 0);
  int64_t shape[1] = { k };
  int64_t *nvec = malloc ((size_t) k * sizeof *nvec);
  if (!nvec)
    return NULL;
  for (int j = 0; j < k; j++)
    nvec[j] = K;
  ra_space_t *sp = ra_space_multi_discrete (1, shape, nvec);
  free (nvec);
  return sp;
}

ra_err_t ra_session_new (const ra_session_args_t *args, ra_session_t **out, ra_error_t *err)
{
  *out = NULL;
  ra_session_t *s = calloc (1, sizeof *s);
  if (!s)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory creating a session");
  s->cls = args->cls;
  s->n = args->sim.num_envs;
  s->autoreset = args->autoreset;
  ra_err_t rc = args->cls->create (&args->sim, &s->sim, err);
  if (rc != RA_OK) {
    free (s);
    return rc;
  }
  s->spec = args->cls->spec (s->sim);
  s->K = s->spec->num_candidates;
  s->k = s->spec->slate_size;
  s->max_steps = args->max_episode_steps > 0 ? args->max_episode_steps
                 : (s->spec->max_episode_steps > 0 ? s->spec->max_episode_steps : 0);
  s_layout (s);
  size_t n = (size_t) s->n;
  s->out = s_outbufs_new (s, NULL);
  s->actions = calloc (n * (size_t) (s->k > 0 ? s->k : 1), sizeof *s->actions);
  s->ep_steps = calloc (n, sizeof *s->ep_steps);
  s->state = malloc (n);
  s->scratch = calloc (n, 1);
  s->seeds_buf = calloc (n, sizeof *s->seeds_buf);
  s->mask_buf = calloc (n, 1);
  s->obs_space = s_obs_space (s->spec);
  s->act_space = s_act_space (s->K, s->k);
  if (!s->out || !s->actions || !s->ep_steps || !s->state || !s->scratch || !s->seeds_buf
      || !s->mask_buf || !s->obs_space || !s->act_space) {
    ra_session_destroy (&s);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory creating %zu envs", n);
  }
  memset (s->state, S_FRESH, n);
  *out = s;
  return RA_OK;
}

void ra_session_destroy (ra_session_t **session_p)
{
  ra_session_t *s = *session_p;
  if (!s)
    return;
  s->cls->destroy (&s->sim);
  if (s->ext[0]) {
    ra_outbufs_release (s->ext[0]);   /* s->out is one of these */
    ra_outbufs_release (s->ext[1]);
  } else {
    ra_outbufs_release (s->out);
  }
  for (int i = 0; i < S_SPARES; i++)
    ra_outbufs_release (s->spare[i]);
  free (s->actions);
  free (s->ep_steps);
  free (s->state);
  free (s->scratch);
  free (s->seeds_buf);
  free (s->mask_buf);
  ra_space_destroy (&s->obs_space);
  ra_space_destroy (&s->act_space);
  free (s);
  *session_p = NULL;
}

int ra_session_num_envs (const ra_session_t *s) { return s->n; }
const ra_sim_class_t *ra_session_class (const ra_session_t *s) { return s->cls; }
ra_sim_t *ra_session_sim (ra_session_t *s) { return s->sim; }
const ra_sim_spec_t *ra_session_spec (const ra_session_t *s) { return s->spec; }
ra_autoreset_t ra_session_autoreset (const ra_session_t *s) { return s->autoreset; }
int ra_session_max_episode_steps (const ra_session_t *s) { return s->max_steps; }
int ra_session_slate_size (const ra_session_t *s) { return s->k; }
int ra_session_num_candidates (const ra_session_t *s) { return s->K; }
const ra_space_t *ra_session_observation_space (const ra_session_t *s) { return s->obs_space; }
const ra_space_t *ra_session_action_space (const ra_session_t *s) { return s->act_space; }
ra_outbufs_t *ra_session_out (ra_session_t *s) { return s->out; }
int32_t *ra_session_actions (ra_session_t *s) { return s->actions; }

/* ------------------------------------------------------------------------------------------ */
/* Reset and step                                                                              */

void ra_session_reset_range (void *ctx, int i0, int i1)
{
  ra_session_t *s = ctx;
  ra_outbufs_t *b = s->out;
  s->cls->reset (s->sim, i0, i1, s->seeds, s->mask, &b->sim);
  for (int i = i0; i < i1; i++) {
    if (s->mask && !s->mask[i])
      continue;
    s->ep_steps[i] = 0;
    s->state[i] = S_RUNNING;
    b->sim.reward[i] = 0.0f;
    b->sim.terminated[i] = 0;
    b->truncated[i] = 0;
    b->info_mask[i] = 0;
    b->final_mask[i] = 0;
  }
}

ra_err_t ra_session_reset_prepare (ra_session_t *s, const uint64_t *seeds, const uint8_t *mask)
{
  if (s_own_out (s, true) != RA_OK)
    return RA_ERR_NOMEM;
  s->seeds = NULL;
  s->mask = NULL;
  if (seeds) {
    memcpy (s->seeds_buf, seeds, (size_t) s->n * sizeof *seeds);
    s->seeds = s->seeds_buf;
  }
  if (mask) {
    memcpy (s->mask_buf, mask, (size_t) s->n);
    s->mask = s->mask_buf;
  }
  return RA_OK;
}

ra_err_t ra_session_reset (ra_session_t *s, ra_pool_t *pool, const uint64_t *seeds, const uint8_t *mask)
{
  if (ra_session_reset_prepare (s, seeds, mask) != RA_OK)
    return RA_ERR_NOMEM;
  ra_pool_run (pool, s->n, RA_SESSION_MIN_PARALLEL, ra_session_reset_range, s);
  return RA_OK;
}

ra_err_t ra_session_check_step (const ra_session_t *s, ra_error_t *err)
{
  for (int i = 0; i < s->n; i++) {
    if (s->state[i] == S_FRESH)
      return ra_error_set (err, RA_ERR_NEEDS_RESET, i,
                           "env %d was never reset; call reset before step", i);
    if (s->state[i] == S_ENDED && s->autoreset == RA_AUTORESET_DISABLED)
      return ra_error_set (err, RA_ERR_NEEDS_RESET, i,
                           "env %d ended and autoreset is disabled; reset it (reset_mask) first", i);
  }
  return RA_OK;
}

/* After sim step of env i: counts the step, applies the time limit, returns whether it ended. */
static bool s_after_step (ra_session_t *s, ra_outbufs_t *b, int i)
{
  s->ep_steps[i]++;
  bool term = b->sim.terminated[i] != 0;
  bool trunc = !term && s->max_steps > 0 && s->ep_steps[i] >= s->max_steps;
  b->sim.terminated[i] = term ? 1 : 0;
  b->truncated[i] = trunc ? 1 : 0;
  return term || trunc;
}

/* Sim step over the runs of envs in [i0, i1) whose scratch flag is 0. */
static void s_step_runs (ra_session_t *s, ra_outbufs_t *b, int i0, int i1)
{
  int i = i0;
  while (i < i1) {
    while (i < i1 && s->scratch[i])
      i++;
    int j = i;
    while (j < i1 && !s->scratch[j])
      j++;
    if (j > i)
      s->cls->step (s->sim, i, j, s->actions, &b->sim);
    i = j;
  }
}

static void s_step_next (ra_session_t *s, ra_outbufs_t *b, int i0, int i1)
{
  bool any = false;
  for (int i = i0; i < i1; i++) {
    s->scratch[i] = s->state[i] == S_ENDED;
    any |= s->scratch[i];
  }
  if (any) {
    s->cls->reset (s->sim, i0, i1, NULL, s->scratch, &b->sim);
    for (int i = i0; i < i1; i++)
      if (s->scratch[i]) {
        s->ep_steps[i] = 0;
        s->state[i] = S_RUNNING;
        b->sim.reward[i] = 0.0f;
        b->sim.terminated[i] = 0;
        b->truncated[i] = 0;
        b->info_mask[i] = 0;
        for (int f = 0; f < s->spec->n_info; f++)
          memset ((char *) b->sim.info[f] + (size_t) i * s->info_row[f], 0, s->info_row[f]);
      }
  }
  s_step_runs (s, b, i0, i1);
  for (int i = i0; i < i1; i++)
    if (!s->scratch[i]) {
      b->info_mask[i] = 1;
      s->state[i] = s_after_step (s, b, i) ? S_ENDED : S_RUNNING;
    }
}

static void s_step_same (ra_session_t *s, ra_outbufs_t *b, int i0, int i1)
{
  s->cls->step (s->sim, i0, i1, s->actions, &b->sim);
  bool any = false;
  for (int i = i0; i < i1; i++) {
    bool ended = s_after_step (s, b, i);
    s->scratch[i] = ended;
    b->final_mask[i] = ended;
    b->info_mask[i] = !ended;
    if (ended) {
      any = true;
      for (int f = 0; f < s->spec->n_obs; f++)
        memcpy ((char *) b->final_obs[f] + (size_t) i * s->obs_row[f],
                (const char *) b->sim.obs[f] + (size_t) i * s->obs_row[f], s->obs_row[f]);
    }
  }
  if (any) {
    s->cls->reset (s->sim, i0, i1, NULL, s->scratch, &b->sim);
    for (int i = i0; i < i1; i++)
      if (s->scratch[i])
        s->ep_steps[i] = 0;
  }
}

static void s_step_disabled (ra_session_t *s, ra_outbufs_t *b, int i0, int i1)
{
  s->cls->step (s->sim, i0, i1, s->actions, &b->sim);
  for (int i = i0; i < i1; i++) {
    b->info_mask[i] = 1;
    s->state[i] = s_after_step (s, b, i) ? S_ENDED : S_RUNNING;
  }
}

void ra_session_step_range (void *ctx, int i0, int i1)
{
  ra_session_t *s = ctx;
  switch (s->autoreset) {
  case RA_AUTORESET_SAME_STEP: s_step_same (s, s->out, i0, i1); break;
  case RA_AUTORESET_DISABLED: s_step_disabled (s, s->out, i0, i1); break;
  default: s_step_next (s, s->out, i0, i1); break;
  }
}

ra_err_t ra_session_step_prepare (ra_session_t *s)
{
  /* next_step and disabled write every row of every buffer in a step (ra_session_step_range);
     same_step writes final_obs rows only where an env ended. */
  return s_own_out (s, s->autoreset == RA_AUTORESET_SAME_STEP);
}

ra_err_t ra_session_step (ra_session_t *s, ra_pool_t *pool)
{
  if (ra_session_step_prepare (s) != RA_OK)
    return RA_ERR_NOMEM;
  ra_pool_run (pool, s->n, RA_SESSION_MIN_PARALLEL, ra_session_step_range, s);
  return RA_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* External (shared-memory) blocks                                                             */

size_t ra_session_block_bytes (const ra_session_t *s) { return s->block_bytes; }

ra_err_t ra_session_use_blocks (ra_session_t *s, void *block0, void *block1)
{
  void *blocks[2] = { block0, block1 };
  ra_outbufs_t *w[2] = { calloc (1, sizeof *w[0]), calloc (1, sizeof *w[1]) };
  if (!w[0] || !w[1]) {
    free (w[0]);
    free (w[1]);
    return RA_ERR_NOMEM;
  }
  for (int j = 0; j < 2; j++) {
    w[j]->block = blocks[j];
    w[j]->nbytes = s->block_bytes;
    w[j]->external = true;
    atomic_init (&w[j]->refs, 1);
    s_bind (s, w[j]);
    s->ext[j] = w[j];
  }
  /* The current rows (all zero before the first reset) move to block 0. */
  memcpy (block0, s->out->block, s->block_bytes);
  ra_outbufs_release (s->out);
  s->out = w[0];
  s->ext_next = 0;
  return RA_OK;
}

void ra_session_select_block (ra_session_t *s, int j)
{
  s->ext_next = j ? 1 : 0;
}
