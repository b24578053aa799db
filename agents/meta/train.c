/*  agents/meta/train.c - recarena-meta's meta-training loop (agents/meta/run.h; docs/meta.md 3
    and 5): meta-iterations (agents/meta/iterate.c) until the budget, --iters or --patience ends
    them, meta-validation at the val points with the checkpoints written there, the progress lines
    on stderr, the train, val and done lines of --metrics and the summary on stdout. */
#include "agents/meta/run.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agents/dist/dist.h"
#include "agents/meta/adapt.h"
#include "agents/policies/target.h"
#include "common/duration.h"

double meta_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static bool s_finite (const float *x, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (!isfinite (x[i]))
      return false;
  return true;
}

/* Meta-validation: R@j = return on fixed fresh episodes after j inner updates (j = 0..7), slates
   sampled at the policy's temperature (--val-act sample, from fixed streams) or top-k, mean over
   the val tasks (docs/meta.md 3). */
static ra_err_t s_validate (run_t *r, double R[8], ra_error_t *err)
{
  int V = r->V, N = r->N, Vl = r->Vl, vlo = r->vlo;
  meta_tile (r, r->theta, Vl);
  ra_meta_adapt_cfg_t a0 = r->ad;
  a0.steps = 0;
  a0.inner_lr = (float) r->o->val_inner_lr;
  /* seeds of all V tasks, then this rank's share of them: task v's seeds whatever the rank */
  uint64_t *es = r->seeds, *as = r->seeds + (size_t) V * N;
  meta_seeds (es, V, N, (uint64_t) r->o->seed, 0xe7a1, 0, 1);
  const uint64_t *esl = es + (size_t) vlo * N, *asl = as + (size_t) vlo * N;
  double ret[4096];
  ra_err_t rc = RA_OK;
  for (int j = 0; rc == RA_OK && j < 8; j++) {
    if (j == 0) {
      meta_seeds (as, V, N, (uint64_t) r->o->seed, 0xada, 0, 1);
      /* the same sampling streams at every validation: comparable R@j */
      rc = ra_meta_adapt_at (r->valp, vlo, r->rows, r->o->val_head_only ? r->mask : NULL, r->vsrc.src, &a0, asl,
                             meta_mix ((uint64_t) r->o->seed ^ 0xe7a1), NULL, r->scratch, err);
    } else {
      meta_seeds (as, V, N, (uint64_t) r->o->seed, 0xada, (uint64_t) j, 1);
      rc = ra_target_begin_rollout (r->valp, r->vsrc.src, asl, err);
      if (rc == RA_OK)
        rc = ra_meta_adapt_more (r->valp, r->rows, r->o->val_head_only ? r->mask : NULL, r->vsrc.src,
                                 NULL, r->scratch, err);
    }
    if (rc == RA_OK) /* sampled: val task v draws from stream 1 + v, the same at every j */
      rc = ra_meta_evaluate_as (r->valp, r->vsrc.src, esl, 100000, r->o->val_act, vlo,
                                meta_mix ((uint64_t) r->o->seed ^ 0x5a3e), ret, NULL, err);
    for (int v = 0; rc == RA_OK && v < Vl; v++)
      r->pmine[j * Vl + v] = (ra_dist_pair_t) { .index = (int64_t) j * V + vlo + v, .fitness = ret[v] };
  }
  /* every rank's error stops the job (main), so reaching the gather means all got here */
  if (rc == RA_OK)
    rc = ra_dist_allgather_pairs (r->d, r->pmine, 8 * Vl, r->pall, 8 * V, err);
  for (int j = 0; rc == RA_OK && j < 8; j++) {
    double s = 0;
    for (int v = 0; v < V; v++) /* task order: the same sum on every rank */
      s += r->pall[j * V + v].fitness;
    R[j] = s / V;
  }
  return rc;
}

/* Writes the checkpoint (rank 0, through ra_dist_on_root). */
typedef struct {
  run_t *r;
  const char *path;
  int64_t iter;   /* the iteration theta is from */
} ckpt_ctx_t;

/* Written beside the path and renamed over it, so a job killed while writing (a rank lost, mpirun
   ending the rest) leaves the previous checkpoint whole for --checkpoint-in. */
static ra_err_t s_write_ckpt (void *ctx, ra_error_t *err)
{
  ckpt_ctx_t *c = ctx;
  char part[4096];
  if (snprintf (part, sizeof part, "%s.part", c->path) >= (int) sizeof part)
    return ra_error_set (err, RA_ERR_IO, -1, "checkpoint path longer than %zu characters",
                         sizeof part - 6);
  run_t *r = c->r;
  ra_meta_resume_t at = { .iter = c->iter, .env_steps = r->steps_before + r->env_steps,
                          .rng_counter = r->rng.counter, .adam_t = r->adam.t,
                          .adam_m = r->adam.m, .adam_v = r->adam.v, .n = r->n };
  ra_err_t rc = ra_meta_ckpt_save (r->one, part, &r->ad, r->o->algo_name, &at, err);
  if (rc == RA_OK && rename (part, c->path) != 0)
    rc = ra_error_set (err, RA_ERR_IO, -1, "cannot rename %s to %s: %s", part, c->path,
                       strerror (errno));
  if (rc != RA_OK)
    remove (part);
  return rc;
}

/* ------------------------------------------------------------------------------ the loop */

/* The val score: the mean of R@3 .. R@7 (docs/meta.md 3). */
static double s_r5w (const double R[8])
{
  return (R[3] + R[4] + R[5] + R[6] + R[7]) / 5;
}

/* "budget" or "iters" when the run has reached that limit, else NULL. */
static const char *s_limit_reached (const run_t *r, const loop_t *l)
{
  const opts_t *o = r->o;
  if (r->env_steps >= o->budget)
    return "budget";
  if (o->set[F_ITERS] && l->it - l->first >= o->iters)
    return "iters";
  return NULL;
}

/* A val point: R@j of theta, its val line, --checkpoint-out when it scores best so far and
   --checkpoint-last always; the --patience-th in a row without a better score stops the run
   (every rank validates alike, so all stop here). */
static int s_val_point (run_t *r, loop_t *l)
{
  const opts_t *o = r->o;
  ra_error_t err;
  if (s_validate (r, l->R, &err) != RA_OK) {
    meta_err ("validation at iter %lld: %s\n", (long long) l->it, err.message);
    return 1;
  }
  double w5 = s_r5w (l->R);
  if (!isfinite (w5) || !isfinite (l->R[0])) {
    meta_err ("NaN in the validation returns at iter %lld\n", (long long) l->it);
    return 1;
  }
  if (r->metrics) {
    fprintf (r->metrics, "{\"kind\":\"val\",\"iter\":%lld,\"env_steps\":%lld,\"R@0\":%.6g,\"R@1\":%.6g,"
             "\"R@5w\":%.6g,\"score\":%.6g}\n", (long long) l->it, (long long) r->env_steps, l->R[0], l->R[1], w5, w5);
    fflush (r->metrics);
  }
  ra_target_set_params (r->one, r->theta);
  ckpt_ctx_t cc = { .r = r, .path = o->ckpt_out, .iter = l->it };
  l->stale = w5 > l->best ? 0 : l->stale + 1;
  if (!l->stopped && o->patience > 0 && l->stale >= o->patience)
    l->stopped = "patience";
  if (w5 > l->best) {
    l->best = w5;
    l->best_iter = l->it;
    if (o->ckpt_out && ra_dist_on_root (r->d, s_write_ckpt, &cc, &err) != RA_OK) {
      meta_err ("--checkpoint-out: %s\n", err.message);
      return 1;
    }
  }
  cc.path = o->ckpt_last;
  if (o->ckpt_last && ra_dist_on_root (r->d, s_write_ckpt, &cc, &err) != RA_OK) {
    meta_err ("--checkpoint-last: %s\n", err.message);
    return 1;
  }
  return 0;
}

/* The progress line (rank 0, on stderr unless --quiet): every 2 s and at the end. */
static void s_print_progress (const run_t *r, loop_t *l)
{
  const opts_t *o = r->o;
  double now = meta_now ();
  if (o->quiet || !ra_dist_is_root (r->d) || (now - l->last < 2.0 && !l->stopped))
    return;
  double sps = r->env_steps / fmax (now - l->t0, 1e-9);
  char eta[32];
  ra_fmt_duration ((o->budget - r->env_steps) / sps, eta, sizeof eta);
  char mr[32];
  snprintf (mr, sizeof mr, isfinite (l->mret) ? "%.2f" : "-", l->mret);
  char im[40] = ""; /* distill: how far the student is from the teacher's slates */
  if (o->algo == A_DISTILL && l->it > l->first)
    snprintf (im, sizeof im, "  imitation %.3f", r->imitation);
  fprintf (stderr, "iter %lld  steps %lld/%lld  meta-return %s%s  val R@0 %.2f R@5w %.2f (best %.2f @%lld)  "
           "%.0f samples/s  ETA %s\n", (long long) l->it, (long long) r->env_steps, o->budget, mr, im, l->R[0],
           s_r5w (l->R), l->best, (long long) l->best_iter, sps, eta);
  l->last = now;
}

/* A train line (docs/meta.md 5) for the iteration just done: its steps env steps in el seconds,
   env_s and act_s of them stepping the envs and acting. */
static void s_write_train_line (const run_t *r, const loop_t *l, int64_t steps, double el, double env_s,
                                double act_s)
{
  FILE *m = r->metrics;
  fprintf (m, "{\"kind\":\"train\",\"iter\":%lld,\"env_steps\":%lld,\"meta_return\":", (long long) l->it,
           (long long) r->env_steps);
  fprintf (m, isfinite (l->mret) ? "%.6g" : "null", l->mret);
  if (r->o->algo == A_DISTILL)
    fprintf (m, ",\"imitation\":%.6g", r->imitation);
  fprintf (m, ",\"samples_per_s\":%.1f,\"iter_s\":%.4f,\"env_s\":%.4f,\"act_s\":%.4f,\"wall_s\":%.3f}\n",
           steps / fmax (el, 1e-9), el, env_s, act_s, meta_now () - l->t0);
  fflush (m);
}

/* The next meta-iteration (meta_iterate), its results checked for a non-finite value. */
static int s_train_iteration (run_t *r, loop_t *l)
{
  const opts_t *o = r->o;
  ra_error_t err;
  l->it++;
  double ti = meta_now ();
  int64_t before = r->env_steps;
  ra_rollout_t *train_src = meta_task_draws (o) ? r->tsrc : meta_work_src (r); /* the outer source */
  ra_target_t *train_pol = meta_task_draws (o) ? r->mt : r->work; /* the policy acting in it */
  double env_before = train_src->step_seconds, act_before = ra_target_act_seconds (train_pol);
  /* a continued run anneals over the lineage (the steps before count on both sides) unless
     --anneal-over run restarts the schedule */
  int64_t before_run = o->anneal_run ? 0 : r->steps_before;
  double frac = (double) (before_run + r->env_steps) / (double) (before_run + o->budget);
  if (meta_iterate (r, l->it, frac, &l->mret, &err) != RA_OK) {
    meta_err ("iter %lld: %s\n", (long long) l->it, err.message);
    return 1;
  }
  if (!s_finite (r->theta, r->n) || (!isfinite (l->mret) && !isnan (l->mret))) {
    meta_err ("NaN in the parameters at iter %lld\n", (long long) l->it);
    return 1;
  }
  if (isnan (l->mret) && meta_es (o)) {
    meta_err ("NaN in the returns at iter %lld\n", (long long) l->it);
    return 1;
  }
  double el = meta_now () - ti;
  if (r->metrics)
    s_write_train_line (r, l, r->env_steps - before, el, train_src->step_seconds - env_before,
                        ra_target_act_seconds (train_pol) - act_before);
  return 0;
}

int meta_train (run_t *r, loop_t *l)
{
  const opts_t *o = r->o;
  for (;;) {
    l->stopped = s_limit_reached (r, l);
    bool due = (l->it - l->first) % o->val_every == 0 && (l->it > l->first || o->val_at_start);
    if ((due || l->stopped) && s_val_point (r, l) != 0)
      return 1;
    s_print_progress (r, l);
    if (l->stopped)
      return 0;
    if (s_train_iteration (r, l) != 0)
      return 1;
  }
}

void meta_write_done_line (const run_t *r, const loop_t *l)
{
  FILE *m = r->metrics;
  const char *ckpt = r->o->ckpt_out;
  uint64_t sent, recvd; /* rank 0's payload bytes through agents/dist (docs/scaling.md 2) */
  ra_dist_bytes (r->d, &sent, &recvd);
  fprintf (m, "{\"kind\":\"done\",\"iter\":%lld,\"env_steps\":%lld,\"best_score\":%.6g,\"best_iter\":%lld,"
           "\"stopped\":\"%s\",\"ranks\":%d,\"root_bytes_sent\":%llu,\"root_bytes_received\":%llu,\"checkpoint\":",
           (long long) l->it, (long long) r->env_steps, l->best, (long long) l->best_iter, l->stopped,
           ra_dist_size (r->d), (unsigned long long) sent, (unsigned long long) recvd);
  if (ckpt) {
    fputc ('"', m);
    for (const char *p = ckpt; *p; p++)
      fprintf (m, (*p == '"' || *p == '\\') ? "\\%c" : (unsigned char) *p < 0x20 ? "?" : "%c", *p);
    fputc ('"', m);
  } else {
    fprintf (m, "null");
  }
  fprintf (m, "}\n");
  fflush (m);
}

void meta_print_summary (const run_t *r, const loop_t *l)
{
  const opts_t *o = r->o;
  if (!ra_dist_is_root (r->d))
    return;
  char start[64] = ""; /* which val point scored the starting theta, if one did */
  if (o->val_at_start)
    snprintf (start, sizeof start, " (R@0 at iter %lld was the initialisation's)", (long long) l->first);
  char early[96] = "";
  if (!strcmp (l->stopped, "patience"))
    snprintf (early, sizeof early, " (stopped early: %lld val points without a better score)", o->patience);
  printf ("%s: %lld iterations, %lld env steps in %.1f s%s; best val R@5w %.3f at iter %lld%s%s%s\n", o->algo_name,
          (long long) (l->it - l->first), (long long) r->env_steps, meta_now () - l->t0, early, l->best,
          (long long) l->best_iter, start, o->ckpt_out ? "; checkpoint " : "", o->ckpt_out ? o->ckpt_out : "");
}
