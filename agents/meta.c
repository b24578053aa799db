/*  agents/meta.c - recarena-meta: meta-trains an initialisation of the target policy over a set
    of train tasks and keeps the one that adapts best on the val tasks (docs/meta.md). Algorithms:
    reptile, fomaml, es, es-maml (agents/meta/core.h for the update math, agents/meta/adapt.h
    for the adaptation operator), distill (a student imitating a teacher that sees more of the
    same envs, through a paired source) and multitask, the pretrain-then-fine-tune ablation that
    trains through the same task-set source as recarena-target --task SET (with --context, in
    blocks of one task each: distill's loop without a teacher).

    Envs: in-process rollout sources (the sims stepped in this process) unless --address names a
    server (one for every rank, or a comma-separated list of one per rank). A work policy of P
    replicas acts on P blocks of --envs-per-task envs, block r on task r of the meta-batch
    (set_task with masks: one batch holds every task of the iteration).

    Command line and metrics: the contract in docs/meta.md section 5 (flags, `key = value` config
    files, JSONL lines, exit codes 0 / 1 runtime / 2 bad command line); the flags are read in
    agents/meta/opts.c, the checks that need a checkpoint, the sims or the rank count are main's
    steps here.

    Files: this one sets the run up (main's steps: sources, policies, buffers, checkpoint
    settings) and holds main; agents/meta/iterate.c runs the algorithms' meta-iterations and
    agents/meta/train.c the meta-training loop (meta-validation, progress and metrics lines,
    checkpoint writes); agents/meta/run.h holds the run's state that the three share.

    Ranks (docs/scaling.md 5): under mpirun every rank runs its own sources and evaluates its
    slice of the ES population, of the meta-batch (multitask: of its blocks of envs) and of the
    val tasks (agents/dist); the ranks exchange (index, fitness) pairs or per-task vectors summed
    in task order, so every rank applies the same update and the result does not depend on the
    rank count. Rank 0 alone writes metrics, progress and checkpoints.                         */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/dist/dist.h"
#include "agents/meta/adapt.h"
#include "agents/meta/core.h"
#include "agents/meta/opts.h"
#include "agents/meta/run.h"
#include "agents/nn/nn.h"
#include "agents/outpath.h"
#include "agents/policies/rollout_inproc.h"
#include "agents/policies/rollout_paired.h"
#include "agents/policies/rollout_tasks.h"
#include "agents/policies/target.h"
#include "agents/policies/taskset.h"
#include "common/kv.h"
#include "protocol/client.h"

/* --address: one endpoint for every rank, or a comma-separated list of exactly one per rank
   (rank k connects to the k-th: a server per rank or per node, docs/scaling.md 5). Writes this
   rank's endpoint into out. 0, or -1 after a message naming the flag and the rank count. */
static int s_rank_address (const char *list, int rank, int size, char *out, size_t cap)
{
  int n = 1;
  for (const char *p = list; *p; p++)
    n += *p == ',';
  if (n == 1) {
    if (strlen (list) >= cap) {
      meta_err ("--address: longer than %zu characters\n", cap - 1);
      return -1;
    }
    strcpy (out, list);
    return 0;
  }
  if (n != size) {
    meta_err ("--address: %d endpoints for %d rank%s; give one endpoint (every rank uses it) or "
           "exactly one per rank, comma-separated (rank k uses the k-th)\n", n, size,
           size == 1 ? "" : "s");
    return -1;
  }
  const char *p = list;
  for (int k = 0; k < n; k++) {
    const char *e = strchr (p, ',');
    size_t len = e ? (size_t) (e - p) : strlen (p);
    if (len == 0) {
      meta_err ("--address: endpoint %d of %d is empty; expected one endpoint per rank, "
             "comma-separated\n", k, n);
      return -1;
    }
    if (k == rank) {
      if (len >= cap) {
        meta_err ("--address: endpoint %d is longer than %zu characters\n", k, cap - 1);
        return -1;
      }
      memcpy (out, p, len);
      out[len] = 0;
    }
    p = e ? e + 1 : p + len;
  }
  return 0;
}

/* ------------------------------------------------------------------------------ sources */

/* more: config entries after --sim-config's (the teacher's view), or NULL */
static ra_err_t s_source (const opts_t *o, const ra_kv_list_t *more, int n, int slots, uint64_t seed, source_t *s,
                          ra_error_t *err)
{
  /* the --sim-config entries but those more names (more's win: a server refuses a key given
     twice), more's, then task_slots unless they name it */
  int ns = o->sim_config.n, nm = more ? more->n : 0, nc = 0;
  ra_kv_t *kv = s->config = calloc ((size_t) (ns + nm) + 1, sizeof *kv);
  if (!kv)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "sim config of %d entries: out of memory", ns + nm);
  for (int q = 0; q < ns; q++) {
    bool overridden = false;
    for (int m = 0; m < nm; m++)
      overridden |= !strcmp (o->sim_config.items[q].key, more->items[m].key);
    if (!overridden)
      kv[nc++] = o->sim_config.items[q];
  }
  for (int m = 0; m < nm; m++)
    kv[nc++] = more->items[m];
  bool named = false;
  for (int q = 0; q < nc; q++)
    named |= !strcmp (kv[q].key, "task_slots");
  if (!named)
    kv[nc++] = (ra_kv_t) { .key = "task_slots", .type = RA_KV_NUM, .num = slots > 4096 ? 4096 : slots };
  ra_err_t rc;
  if (!o->address) {
    ra_rollout_inproc_opts_t io = { .env = o->env, .num_envs = n, .seed = seed, .config = kv,
                                    .n_config = nc, .workers = (int) o->workers - 1 };
    return ra_rollout_inproc_new (&io, &s->src, err);
  }
  rc = ra_client_new (o->address, 0, &s->c, err);
  ra_make_opts_t mo = { .has_seed = true, .seed = seed, .config = kv, .n_config = nc, .autoreset = "same_step" };
  if (rc == RA_OK && (rc = ra_client_make (s->c, o->env, n, &mo, &s->env, err)) == RA_OK)
    s->have_env = true;
  if (rc == RA_OK)
    rc = ra_rollout_protocol_new (s->c, &s->env, &s->src, err);
  return rc;
}

static void s_source_fini (source_t *s)
{
  ra_rollout_destroy (&s->src);
  if (s->have_env) {
    ra_error_t e;
    ra_client_close (s->c, &s->env, &e);
    ra_client_env_fini (&s->env);
  }
  ra_client_destroy (&s->c);
  free (s->config);
  s->config = NULL;
}

/* ------------------------------------------------------------------------------ the run */

static void s_fini (run_t *r)
{
  if (r->metrics)
    fclose (r->metrics);
  ra_target_destroy (&r->work);
  ra_target_destroy (&r->valp);
  ra_target_destroy (&r->mt);
  ra_target_destroy (&r->one);
  ra_target_destroy (&r->teacher);
  ra_rollout_destroy (&r->tsrc);
  ra_rollout_destroy (&r->psrc);
  s_source_fini (&r->wsrc);
  s_source_fini (&r->tview);
  s_source_fini (&r->vsrc);
  s_source_fini (&r->msrc);
  free (r->theta);
  free (r->rows);
  free (r->scratch);
  free (r->g);
  free (r->fit);
  free (r->util);
  free (r->mask);
  free (r->idx);
  free (r->ids);
  free (r->seeds);
  free (r->tidx);
  free (r->pmine);
  free (r->pall);
  free (r->smine);
  free (r->sall);
  ra_meta_noise_fini (&r->noise);
  ra_meta_adam_fini (&r->adam);
  ra_taskset_fini (&r->train);
  ra_taskset_fini (&r->val);
  ra_nn_backend_destroy (&r->be);
}

/* Builds a policy of P replicas over num_envs envs each. */
static ra_err_t s_policy (run_t *r, int P, int num_envs, ra_target_t **out, ra_error_t *err)
{
  ra_target_cfg_t c = r->tc;
  c.population = P;
  c.num_envs = num_envs;
  return ra_target_new (r->be, &c, out, err);
}

/* Distill's teacher: --teacher's network (its own architecture, no task context) as one replica
   over this rank's work envs, top-k on the paired source's second view (docs/meta.md 2.8). */
static ra_err_t s_teacher (run_t *r, ra_error_t *err)
{
  const char *path = r->o->teacher;
  ra_target_cfg_t c;
  ra_target_cfg_default (&c);
  ra_err_t rc = ra_target_checkpoint_settings (path, &c, err);
  if (rc == RA_OK && c.context > 0)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "it reads a task context (n0 = %g); a teacher acts on what "
                         "it observes alone", (double) c.context);
  if (rc == RA_OK)
    rc = ra_target_checkpoint_arch (path, &c.hidden, &c.layers, &c.affinity, err);
  c.num_envs = r->Pl * r->N;
  c.population = 1;
  c.num_candidates = r->tc.num_candidates;
  c.slate_size = r->tc.slate_size;
  c.user_dim = r->tc.user_dim;
  c.cand_dim = r->tc.cand_dim;
  c.response_dim = r->tc.response_dim;
  c.rollout = 1;
  /* a sampling teacher (T18) draws from (seed, stream 1): apart from the task draws' (seed,
     0x7a5c) and the work replicas' per-iteration mixed seeds */
  c.seed = (uint64_t) r->o->seed;
  if (r->o->set[F_TEACHER_TEMP])
    c.temp = (float) r->o->teacher_temp;
  if (rc == RA_OK)
    rc = ra_target_new (r->be, &c, &r->teacher, err);
  if (rc == RA_OK)
    rc = ra_target_load (r->teacher, path, err);
  if (rc == RA_OK)
    rc = ra_target_set_teacher (r->work, r->teacher, ra_rollout_paired_second (r->psrc),
                                &(ra_target_teacher_opts_t) { .weight = (float) r->o->teacher_weight,
                                                              .gate = r->o->teacher_gate,
                                                              .sample = r->o->set[F_TEACHER_TEMP],
                                                              .critic = r->o->teacher_critic },
                                err);
  return rc;
}

/* Warns when training or validation reads tasks a result is meant to be held out on: test or
   ood tasks, or val tasks that training also draws. Allowed (it may be meant), never silent. */
static void s_warn_not_held_out (const ra_taskset_t *train, const ra_taskset_t *val)
{
  const char *held[] = { "test", "ood" };
  for (int j = 0; j < 2; j++) {
    if (!strcmp (train->split, held[j]))
      meta_err ("warning: --train-tasks draws from %s: results on those tasks are not held out\n",
             held[j]);
    if (!strcmp (val->split, held[j]))
      meta_err ("warning: --val-tasks on %s keeps the theta that does best there: results on those "
             "tasks are not held out\n", held[j]);
  }
  if (strcmp (train->split, val->split))
    return;
  int shared = 0;
  for (int v = 0; v < val->n; v++)
    for (int t = 0; t < train->n; t++)
      if (val->ids[v] == train->ids[t]) {
        shared++;
        break;
      }
  if (shared)
    meta_err ("warning: %d of the %d val tasks are also training tasks: validation is not held out\n",
           shared, val->n);
}

/* ------------------------------------------------------------------------------ main's steps

   Each step returns 0 or, after its message, the exit code (docs/meta.md 5): 2 for a bad command
   line, checkpoint or output path, 1 for a failure at runtime. */

/* Where the run starts (docs/meta.md 5): from scratch, from --checkpoint-in's theta afresh, or
   continuing the run that wrote it. */
typedef struct {
  ra_meta_resume_t at;   /* where the continued run stood; counts only until s_restore_state */
  bool resume;           /* it continues the checkpoint's run */
  bool add_context;      /* --context on a file without it: the networks widen, the run starts afresh */
} start_t;

/* The settings every rank reads alike from the same command line: this rank's --address
   endpoint, the task sets, and whether every rank gets a share of the work. A failure here stops
   every rank the same way, so no rank waits on another (main need not abort the job). */
static int s_job_settings (opts_t *o, run_t *r)
{
  ra_error_t err;
  const int rank = ra_dist_rank (r->d), size = ra_dist_size (r->d);
  if (o->address) { /* every rank checks the whole list: a bad one stops all alike */
    if (s_rank_address (o->address, rank, size, r->address, sizeof r->address) != 0)
      return 2;
    o->address = r->address;
  }
  if (ra_taskset_parse ("--train-tasks", o->train, &r->train, &err) != RA_OK
      || ra_taskset_parse ("--val-tasks", o->val, &r->val, &err) != RA_OK) {
    meta_err ("%s\n", err.message);
    return 2;
  }
  if (ra_dist_is_root (r->d))
    s_warn_not_held_out (&r->train, &r->val);
  long long need = meta_es (o) ? o->population : o->meta_batch;
  if (need < size || r->val.n < size) {
    meta_err ("%d ranks need at least one %s and one val task each (%lld and %d given)\n", size,
              meta_es (o) ? "population member" : "meta-batch task", need, r->val.n);
    return 2;
  }
  if (o->set[F_TEACHER_TEMP] && size > 1) { /* one stream over this rank's envs: another split, other draws */
    meta_err ("--teacher-temp %g: a sampling teacher draws from one stream over its rank's envs, so its slates "
              "would depend on the number of ranks (%d); run it with one rank\n", o->teacher_temp, size);
    return 2;
  }
  return 0;
}

/* Rank 0's outputs: the checkpoints are written at val points, so a path that cannot take them
   fails now, not after the first val_every iterations; --metrics is opened for appending. */
static int s_open_outputs (run_t *r)
{
  const opts_t *o = r->o;
  if (!ra_dist_is_root (r->d))
    return 0;
  ra_error_t err;
  const char *flags[] = { "--checkpoint-out", "--checkpoint-last" }, *paths[] = { o->ckpt_out, o->ckpt_last };
  for (int j = 0; j < 2; j++)
    if (paths[j] && ra_outpath_check (flags[j], paths[j], &err) != RA_OK) {
      meta_err ("%s\n", err.message);
      return 2;
    }
  if (o->metrics && !(r->metrics = fopen (o->metrics, "a"))) {
    meta_err ("--metrics %s: %s\n", o->metrics, strerror (errno));
    return 2;
  }
  return 0;
}

static int s_open_device (run_t *r)
{
  ra_error_t err;
  if (ra_nn_backend_open (r->o->device, NULL, &r->be, &err) != RA_OK) {
    meta_err ("--device %s: %s\n", r->o->device, err.message);
    return 2;
  }
  return 0;
}

/* The target settings a checkpoint stores that the command line gives too, from the options into
   c: every policy's (s_target_cfg), and the values a checkpoint without them keeps. */
static void s_target_settings_from_opts (const opts_t *o, ra_target_cfg_t *c)
{
  c->temp = (float) o->temp;
  c->slot_credit = (float) o->slot_credit;
  c->slot_feedback = (int) o->slot_feedback;
  c->context = (float) o->context;
  c->context_residual = o->context_residual;
  c->scorer_yield = o->scorer_yield;
  c->context_ts = (float) o->context_ts;
  c->context_session = (float) o->context_session;
  c->context_baseline = (float) o->context_baseline;
  c->context_handover = (float) o->context_handover;
  c->context_kernel = (float) o->context_kernel;
}

/* The same settings back from a checkpoint's c, where the command line did not give them. */
static void s_opts_from_target_settings (opts_t *o, const ra_target_cfg_t *c)
{
  if (!o->set[F_TEMP])
    o->temp = c->temp;
  if (!o->set[F_SLOT_CREDIT])
    o->slot_credit = c->slot_credit;
  if (!o->set[F_SLOT_FEEDBACK])
    o->slot_feedback = c->slot_feedback;
  if (!o->set[F_CONTEXT])
    o->context = c->context;
  if (!o->set[F_CONTEXT_RESIDUAL])
    o->context_residual = c->context_residual;
  if (!o->set[F_SCORER_YIELD])
    o->scorer_yield = c->scorer_yield;
  if (!o->set[F_CONTEXT_TS])
    o->context_ts = c->context_ts;
  if (!o->set[F_CONTEXT_SESSION])
    o->context_session = c->context_session;
  if (!o->set[F_CONTEXT_BASELINE])
    o->context_baseline = c->context_baseline;
  if (!o->set[F_CONTEXT_HANDOVER])
    o->context_handover = c->context_handover;
  if (!o->set[F_CONTEXT_KERNEL])
    o->context_kernel = c->context_kernel;
}

/* A checkpoint's adaptation settings, where the command line did not give them. */
static void s_opts_from_adapt_settings (opts_t *o, const ra_meta_adapt_cfg_t *ad)
{
  if (!o->set[F_INNER_LR])
    o->inner_lr = ad->inner_lr;
  if (!o->set[F_INNER_STEPS])
    o->inner_steps = ad->steps;
  if (!o->set[F_ROLLOUT_LEN])
    o->rollout = ad->rollout;
  if (!o->set[F_ADAPT_PARAMS]) {
    o->head_only = ad->head_only;
    strcpy (o->params_name, o->head_only ? "head" : "all");
  }
}

/* A checkpoint's architecture (hidden h, layers l, the affinity head aff) is the run's: its
   tensors fix it, so a --hidden, --layers or --affinity that differs is refused. */
static int s_arch_from_checkpoint (opts_t *o, int h, int l, bool aff)
{
  bool hidden_differs = o->set[F_HIDDEN] && o->hidden != h;
  if (hidden_differs || (o->set[F_LAYERS] && o->layers != l)) {
    meta_err ("--%s %lld: --checkpoint-in %s has hidden %d, layers %d (architecture comes from the file)\n",
              hidden_differs ? "hidden" : "layers", hidden_differs ? o->hidden : o->layers, o->ckpt_in, h, l);
    return 2;
  }
  o->hidden = h;
  o->layers = l;
  if (o->set[F_AFFINITY] && o->affinity != aff) {
    meta_err ("--affinity %s: --checkpoint-in %s %s the affinity head (architecture comes from the file)\n",
              o->affinity ? "true" : "false", o->ckpt_in, aff ? "has" : "has not");
    return 2;
  }
  o->affinity = aff;
  return 0;
}

/* --checkpoint-in: the file's adaptation settings, architecture and target settings, the command
   line's winning where it gives them, and whether the run continues the file's (start). */
static int s_settings_from_checkpoint (opts_t *o, start_t *start)
{
  ra_error_t err;
  ra_meta_adapt_cfg_t ad;
  ra_meta_adapt_cfg_default (&ad);
  bool found, aff = false;
  int h = 0, l = 0;
  char algo[32];
  if (ra_meta_ckpt_read (o->ckpt_in, &ad, &found, algo, sizeof algo, &err) != RA_OK
      || ra_meta_ckpt_read_resume (o->ckpt_in, &start->at, &start->resume, &err) != RA_OK
      || ra_target_checkpoint_arch (o->ckpt_in, &h, &l, &aff, &err) != RA_OK) {
    meta_err ("--checkpoint-in %s: %s\n", o->ckpt_in, err.message);
    return 2;
  }
  if (s_arch_from_checkpoint (o, h, l, aff) != 0)
    return 2;
  if (found)
    s_opts_from_adapt_settings (o, &ad);
  ra_target_cfg_t stored; /* the settings the checkpoint was written with (the options' where it has none) */
  ra_target_cfg_default (&stored);
  s_target_settings_from_opts (o, &stored);
  if (ra_target_checkpoint_settings (o->ckpt_in, &stored, &err) != RA_OK) {
    meta_err ("--checkpoint-in %s: %s\n", o->ckpt_in, err.message);
    return 2;
  }
  start->add_context = o->context > 0 && !(stored.context > 0); /* --context on a file without it */
  /* another algorithm, or the wider network of add_context, starts afresh from the file's theta */
  if (start->resume && (start->add_context || !found || strcmp (algo, o->algo_name) != 0)) {
    start->resume = false;
    start->at = (ra_meta_resume_t) { 0 };
  }
  s_opts_from_target_settings (o, &stored);
  if (!o->set[F_INNER_OPT]) {
    o->inner_sgd = stored.sgd;
    strcpy (o->opt_name, stored.sgd ? "sgd" : "adam");
  }
  return 0;
}

/* The adaptation operator's settings, once a checkpoint's are in; validation adapts as the inner
   loop unless told otherwise. */
static void s_adapt_settings (opts_t *o, run_t *r)
{
  if (!o->set[F_VAL_ADAPT_PARAMS]) {
    o->val_head_only = o->head_only;
    strcpy (o->val_params_name, o->params_name);
  }
  if (!o->set[F_VAL_INNER_LR])
    o->val_inner_lr = o->inner_lr;
  r->ad = (ra_meta_adapt_cfg_t) { .inner_lr = (float) o->inner_lr, .steps = (int) o->inner_steps,
                                  .rollout = (int) o->rollout, .head_only = o->head_only };
}

/* The job's shape: N envs per task, P work replicas (the ES population or the meta-batch), V val
   tasks, and this rank's slices of the replicas and of the val tasks. */
static int s_shape (run_t *r)
{
  const opts_t *o = r->o;
  r->N = (int) o->envs_per_task;
  r->P = meta_es (o) ? (int) o->population : (int) o->meta_batch;
  r->V = r->val.n;
  if (r->V > 4096) {
    meta_err ("--val-tasks: at most 4096 tasks\n");
    return 2;
  }
  int64_t lo, hi;
  ra_dist_slice (r->d, r->P, &lo, &hi);
  r->lo = (int) lo, r->Pl = (int) (hi - lo);
  ra_dist_slice (r->d, r->V, &lo, &hi);
  r->vlo = (int) lo, r->Vl = (int) (hi - lo);
  return 0;
}

/* Multitask's seed of its task draws and envs: they run across iterations, so a continued run
   cannot replay them; it draws fresh tasks and episodes from a seed moved by the iterations done. */
static uint64_t s_multitask_seed (const opts_t *o, const start_t *start)
{
  uint64_t seed = (uint64_t) o->seed;
  return start->at.iter > 0 ? meta_mix (seed ^ (uint64_t) start->at.iter) : seed;
}

/* This rank's share of the sources: work (P blocks; distill's paired with the same envs as the
   teacher sees them), or multitask's task-set source (P blocks of N envs over the train set, env i
   of this rank playing as env lo N + i of the job), and val (V blocks on their tasks, reset). */
static int s_open_sources (run_t *r, uint64_t mseed)
{
  const opts_t *o = r->o;
  uint64_t seed = (uint64_t) o->seed;
  ra_error_t err;
  ra_err_t rc;
  if (meta_task_draws (o)) {
    int nm = r->Pl * r->N;
    rc = s_source (o, NULL, nm, ra_rollout_tasks_slots (&r->train, nm), mseed, &r->msrc, &err);
    ra_rollout_tasks_opts_t to = { .seed = mseed, .redraw = true, .first_env = (int64_t) r->lo * r->N };
    if (rc == RA_OK)
      rc = ra_rollout_tasks_new (r->msrc.src, nm, &r->train, &to, &r->tsrc, &err);
  } else {
    rc = s_source (o, NULL, r->Pl * r->N, 2 * r->P + 1, seed, &r->wsrc, &err);
  }
  if (rc == RA_OK && o->algo == A_DISTILL) { /* the same envs as the teacher sees them, stepped in pairs */
    rc = s_source (o, &o->teacher_config, r->Pl * r->N, 2 * r->P + 1, seed, &r->tview, &err);
    if (rc == RA_OK)
      rc = ra_rollout_paired_new (r->wsrc.src, r->tview.src, &r->psrc, &err);
  }
  if (rc == RA_OK)
    rc = s_source (o, NULL, r->Vl * r->N, r->V + 1, seed + 7777, &r->vsrc, &err);
  if (rc == RA_OK)
    rc = ra_meta_set_block_tasks (r->vsrc.src, r->Vl, r->N, r->val.split, r->val.ids + r->vlo, &err);
  if (rc == RA_OK)
    rc = ra_rollout_reset (r->vsrc.src, NULL, &err);
  if (rc != RA_OK) {
    meta_err ("%s%s%s\n", o->address ? o->address : "", o->address ? ": " : "", err.message);
    return 1;
  }
  return 0;
}

/* The settings of every policy of the run: the sim's shapes (from the val source) and the
   options. */
static void s_target_cfg (run_t *r)
{
  const opts_t *o = r->o;
  const ra_obs_batch_t *ob = &r->vsrc.src->obs;
  ra_target_cfg_t *c = &r->tc;
  ra_target_cfg_default (c);
  c->num_candidates = ob->num_candidates;
  c->slate_size = ob->slate_size;
  c->user_dim = ob->user_dim;
  c->cand_dim = ob->cand_dim;
  c->response_dim = ob->response_dim;
  c->hidden = (int) o->hidden;
  c->layers = (int) o->layers;
  c->affinity = o->affinity;
  c->rollout = (int) o->rollout;
  c->lr = (float) o->inner_lr;
  c->entropy_coef = (float) o->entropy;
  c->task_credit = (float) o->task_credit;
  s_target_settings_from_opts (o, c);
  c->sgd = o->inner_sgd;
  c->adapt_head = o->head_only; /* stored in the checkpoints, so the A/B arm adapts the same way */
  c->seed = (uint64_t) o->seed;
}

/* The credit settings against the sim and the algorithm: the k per-rank feedback entries of
   --slot-credit and --context must fit the sim's response, and --task-credit needs an
   actor-critic step over one task's envs. */
static int s_check_credit (const run_t *r)
{
  const opts_t *o = r->o;
  const ra_obs_batch_t *ob = &r->vsrc.src->obs;
  if ((o->slot_credit > 0 || o->context > 0) && o->slot_feedback + ob->slate_size > ob->response_dim) {
    meta_err ("--slot-feedback %lld: the k = %d per-rank entries from there do not fit %s's response (%d wide)\n",
              o->slot_feedback, ob->slate_size, o->env, ob->response_dim);
    return 2;
  }
  if (o->task_credit > 0 && (o->algo == A_ES || meta_task_draws (o))) { /* T20 shares within one task */
    meta_err ("--task-credit %g: %s\n", o->task_credit,
              o->algo == A_ES ? "es takes no actor-critic step to credit"
                              : "without the task context multitask's envs each draw their own task, so an "
                                "update's envs are not one task's users (give --context N0 > 0)");
    return 2;
  }
  return 0;
}

/* The settings that read the task context (and T14, which needs T13), possibly from the
   checkpoint: checked after it. The message names where a setting came from. */
static int s_check_context_needs (const opts_t *o)
{
  char ts_shown[48], session_shown[48], baseline_shown[48], handover_shown[48], kernel_shown[48];
  snprintf (ts_shown, sizeof ts_shown, "--context-ts %g", o->context_ts);
  snprintf (session_shown, sizeof session_shown, "--context-session %g", o->context_session);
  snprintf (baseline_shown, sizeof baseline_shown, "--context-baseline %g", o->context_baseline);
  snprintf (handover_shown, sizeof handover_shown, "--context-handover %g", o->context_handover);
  snprintf (kernel_shown, sizeof kernel_shown, "--context-kernel %g", o->context_kernel);
  const bool ctx = o->context > 0;
  const char *give_ctx = "--context N0 > 0";
  const struct { /* a setting that is on, and whether what it needs (give) is there */
    bool on, met;
    int flag;
    const char *shown, *why, *give;
  } needs[] = {
    { o->context_residual, ctx, F_CONTEXT_RESIDUAL, "--context-residual true", "r(u) is read from the task context",
      give_ctx },
    { o->scorer_yield, ctx, F_SCORER_YIELD, "--scorer-yield true", "the yield is read from the task context", give_ctx },
    { o->context_ts > 0, ctx, F_CONTEXT_TS, ts_shown, "the draws are of the task context", give_ctx },
    { o->context_session > 0, ctx, F_CONTEXT_SESSION, session_shown, "the session adds to the task context", give_ctx },
    { o->context_baseline > 0, ctx, F_CONTEXT_BASELINE, baseline_shown, "it weighs the task context's feedback",
      give_ctx },
    { o->context_handover > 0, o->context_baseline > 0, F_CONTEXT_HANDOVER, handover_shown,
      "it hands T13's weighing of the feedback over to T8's", "--context-baseline B > 0" },
    { o->context_kernel > 0, ctx, F_CONTEXT_KERNEL, kernel_shown, "the kernel reads the task context", give_ctx },
    { o->context_kernel > 0, !(o->context_ts > 0), F_CONTEXT_KERNEL, kernel_shown,
      "the kernel replaces T8's linear regression, which --context-ts draws from", "--context-ts 0" },
  };
  for (size_t j = 0; j < sizeof needs / sizeof needs[0]; j++)
    if (needs[j].on && !needs[j].met) {
      bool from_file = !o->set[needs[j].flag] && o->ckpt_in;
      meta_err ("%s%s%s%s: %s; give %s\n", needs[j].shown, from_file ? " (from --checkpoint-in " : "",
                from_file ? o->ckpt_in : "", from_file ? ")" : "", needs[j].why, needs[j].give);
      return 2;
    }
  return 0;
}

/* The run's policies: one (--checkpoint-in's theta, widened by add_context), valp over this
   rank's val tasks, and the training replicas: work, or multitask's mt (its blocks' replicas
   give gradients only, clipped after the sum: agents/meta/iterate.c s_multitask). */
static int s_build_policies (run_t *r, const start_t *start)
{
  const opts_t *o = r->o;
  ra_error_t err;
  ra_err_t rc;
  if ((rc = s_policy (r, 1, r->N, &r->one, &err)) == RA_OK && o->ckpt_in)
    rc = (start->add_context ? ra_target_load_adding_context : ra_target_load) (r->one, o->ckpt_in, &err);
  if (rc == RA_OK)
    rc = s_policy (r, r->Vl, r->N, &r->valp, &err);
  if (rc == RA_OK && meta_task_draws (o)) {
    ra_target_cfg_t keep = r->tc;
    r->tc.clip_norm = 0;
    rc = s_policy (r, r->Pl, r->N, &r->mt, &err);
    r->tc = keep;
  } else if (rc == RA_OK)
    rc = s_policy (r, r->Pl, r->N, &r->work, &err);
  if (rc != RA_OK) {
    meta_err ("%s%s\n", o->ckpt_in ? "--checkpoint-in: " : "", err.message);
    return 1;
  }
  return 0;
}

/* Distill's teacher (s_teacher). A gated teacher weighs by the student's scorer yield, which may
   come from the checkpoint, so it is checked only now. */
static int s_setup_teacher (run_t *r)
{
  const opts_t *o = r->o;
  ra_error_t err;
  if (o->teacher_gate && !r->tc.scorer_yield) {
    meta_err ("--teacher-gate true: it weighs each row's imitation by 1 - the row's scorer yield (docs/agents.md "
              "T17), and this student has no scorer yield (--scorer-yield true, which needs --context)\n");
    return 2;
  }
  if (o->algo == A_DISTILL && s_teacher (r, &err) != RA_OK) {
    meta_err ("--teacher %s: %s\n", o->teacher, err.message);
    return 2;
  }
  return 0;
}

/* The run's buffers, sized by the network (n parameters per replica) and the larger of the work
   replicas and the val tasks; tidx[p] = p. */
static int s_alloc_buffers (run_t *r)
{
  r->n = ra_target_num_params (r->one);
  int Pmax = r->P > r->V ? r->P : r->V;
  size_t rows = (size_t) Pmax * r->n;
  r->theta = malloc (r->n * sizeof (float));
  r->rows = malloc (rows * sizeof (float));
  r->scratch = malloc (rows * sizeof (float));
  r->g = malloc (r->n * sizeof (float));
  r->fit = malloc ((size_t) Pmax * sizeof (float));
  r->util = malloc ((size_t) Pmax * sizeof (float));
  r->idx = malloc ((size_t) Pmax * sizeof (int));
  r->ids = malloc ((size_t) Pmax * sizeof (int64_t));
  r->seeds = malloc ((size_t) 2 * Pmax * r->N * sizeof (uint64_t));
  r->mask = malloc (r->n);
  r->tidx = malloc ((size_t) Pmax * sizeof (int64_t));
  r->pmine = malloc ((size_t) 8 * Pmax * sizeof (ra_dist_pair_t));
  r->pall = malloc ((size_t) 8 * Pmax * sizeof (ra_dist_pair_t));
  r->smine = malloc (sizeof (ra_dist_pair_t));
  r->sall = malloc ((size_t) ra_dist_size (r->d) * sizeof (ra_dist_pair_t));
  if (!r->theta || !r->rows || !r->scratch || !r->g || !r->fit || !r->util || !r->idx || !r->ids || !r->seeds
      || !r->mask || !r->tidx || !r->pmine || !r->pall || !r->smine || !r->sall) {
    meta_err ("out of memory for %zu parameters x %d\n", r->n, Pmax);
    return 1;
  }
  for (int p = 0; p < Pmax; p++)
    r->tidx[p] = p;
  return 0;
}

/* The learner's start: theta (the policy one's), the adaptation mask, the task draws' RNG, ES's
   noise table and the outer optimiser. */
static int s_init_learner (run_t *r)
{
  const opts_t *o = r->o;
  uint64_t seed = (uint64_t) o->seed;
  ra_error_t err;
  ra_target_get_params (r->one, r->theta);
  ra_meta_adapt_mask (r->one, o->head_only, r->mask);
  ra_nn_rng_init (&r->rng, seed, 0x7a5c);
  if ((meta_es (o) && ra_meta_noise_new (seed ^ 0x6e6f, (size_t) (1 << 20) + r->n, &r->noise, &err) != RA_OK)
      || ra_meta_adam_init (&r->adam, r->n, (float) o->outer_lr, (float) o->weight_decay, &err) != RA_OK) {
    meta_err ("%s\n", err.message);
    return 1;
  }
  return 0;
}

/* A continued run's state (docs/meta.md 5): the outer optimiser's moments, read now that the
   network's size is known, its step count, the task draws' RNG and the env steps behind theta. */
static int s_restore_state (run_t *r, start_t *start)
{
  ra_error_t err;
  ra_meta_resume_t *at = &start->at;
  at->adam_m = r->adam.m;
  at->adam_v = r->adam.v;
  at->n = r->n;
  if (ra_meta_ckpt_read_resume (r->o->ckpt_in, at, &start->resume, &err) != RA_OK) {
    meta_err ("--checkpoint-in %s: %s\n", r->o->ckpt_in, err.message);
    return 2;
  }
  r->adam.t = at->adam_t;
  r->rng.counter = at->rng_counter;
  r->steps_before = at->env_steps;
  return 0;
}

/* Multitask's blocks start the rollout that runs across its iterations, without a step of their
   own (lr 0). Block b (this rank's replica b - lo) samples from stream 1 + b and its envs start
   from the seeds of envs b N .. b N + N-1: nothing depends on the rank count. */
static int s_start_multitask (run_t *r, uint64_t mseed)
{
  ra_error_t err;
  for (int p = 0; p < r->Pl; p++) {
    ra_target_set_lr (r->mt, p, 0.0f);
    ra_nn_rng_init (ra_target_rng (r->mt, p), meta_mix (mseed ^ 0x6d74), 1 + (uint64_t) (r->lo + p));
  }
  meta_seeds (r->seeds, r->P, r->N, mseed, 0x6d74, 0, 1);
  if (ra_target_begin_rollout (r->mt, r->tsrc, r->seeds + (size_t) r->lo * r->N, &err) != RA_OK) {
    meta_err ("%s\n", err.message);
    return 1;
  }
  return 0;
}

/* What runs, on what and how (rank 0, on stderr unless --quiet), and where a continued run
   continues from. */
static void s_print_header (const run_t *r, const start_t *start)
{
  const opts_t *o = r->o;
  if (o->quiet || !ra_dist_is_root (r->d))
    return;
  const int size = ra_dist_size (r->d);
  char tb[64], vb[64];
  ra_taskset_format (&r->train, tb, sizeof tb);
  ra_taskset_format (&r->val, vb, sizeof vb);
  fprintf (stderr,
           "recarena-meta: %s on %s, train %s, val %s (%d tasks), %s; %zu params%s, %s; budget %lld env steps; "
           "outer step: %s %g; adapt: %d %s updates of %d x %d steps, lr %g, params %s (validation: lr %g, params %s); temp %g; slot credit %g from response[%lld]; validation acts %s; "
           "%d rank%s\n",
           o->algo_name, o->env, tb, vb, r->V, o->address ? o->address : "in-process sims", r->n,
           o->affinity ? " (with the affinity head)" : "", ra_nn_backend_name (r->be), o->budget,
           o->algo == A_REPTILE && !o->outer_adam ? "epsilon, annealed from" : "AdamW, lr", o->outer_lr, r->ad.steps, o->opt_name, r->ad.rollout, r->N, (double) r->ad.inner_lr,
           o->params_name, o->val_inner_lr, o->val_params_name, o->temp, o->slot_credit, o->slot_feedback, o->val_act_name, size, size > 1 ? "s" : "");
  if (start->resume)
    fprintf (stderr, "recarena-meta: continuing %s from iteration %lld (%lld env steps done; the budget counts this run's)\n",
             o->ckpt_in, (long long) start->at.iter, (long long) start->at.env_steps);
}

int main (int argc, char **argv)
{
  ra_dist_t *dist = NULL;
  ra_error_t err;
  if (ra_dist_new (&argc, &argv, 0, &dist, &err) != RA_OK) {
    meta_err ("joining the MPI job: %s\n", err.message);
    return 1;
  }
  meta_err_rank (ra_dist_rank (dist), ra_dist_size (dist));
  opts_t o;
  int parsed = meta_opts_parse (argc, argv, &o);
  if (parsed != 0) { /* every rank parsed the same line: all stop alike */
    meta_opts_fini (&o);
    ra_dist_destroy (&dist);
    return parsed > 0 ? 0 : 2;
  }
  run_t r = { .o = &o, .d = dist };
  start_t start = { 0 };
  bool alike = true; /* a failure every rank meets the same way (no need to abort the job) */
  int code = s_job_settings (&o, &r);
  if (code != 0)
    goto out;
  alike = false;
  if ((code = s_open_outputs (&r)) != 0 || (code = s_open_device (&r)) != 0)
    goto out;
  if (o.ckpt_in && (code = s_settings_from_checkpoint (&o, &start)) != 0)
    goto out;
  s_adapt_settings (&o, &r);
  if ((code = s_shape (&r)) != 0)
    goto out;
  uint64_t mseed = s_multitask_seed (&o, &start);
  if ((code = s_open_sources (&r, mseed)) != 0)
    goto out;
  s_target_cfg (&r);
  if ((code = s_check_credit (&r)) != 0 || (code = s_check_context_needs (&o)) != 0)
    goto out;
  if ((code = s_build_policies (&r, &start)) != 0 || (code = s_setup_teacher (&r)) != 0)
    goto out;
  if ((code = s_alloc_buffers (&r)) != 0 || (code = s_init_learner (&r)) != 0)
    goto out;
  if (start.resume && (code = s_restore_state (&r, &start)) != 0)
    goto out;
  if (r.mt && (code = s_start_multitask (&r, mseed)) != 0)
    goto out;
  s_print_header (&r, &start);
  loop_t l = { .t0 = meta_now (), .last = -1e9, .best = -INFINITY, .first = start.at.iter, .it = start.at.iter,
               .best_iter = -1, .R = { NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN }, .mret = NAN };
  if ((code = meta_train (&r, &l)) != 0)
    goto out;
  if (r.metrics)
    meta_write_done_line (&r, &l);
  meta_print_summary (&r, &l);
out:
  s_fini (&r);
  meta_opts_fini (&o);
  /* a failure on some ranks leaves the others waiting in a collective: end the job */
  if (code != 0 && !alike)
    ra_dist_abort (dist, code);
  ra_dist_destroy (&dist);
  return code;
}
