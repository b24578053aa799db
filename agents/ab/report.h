/*  agents/ab/report.h - from the runner's raw sums to the report (docs/agents.md sections 2.2,
    2.4): per arm and metric a mean with its bootstrap CI and a paired test against the control
    arm, and the learning curve R@K; written as a terminal table, JSON and CSV to streams the
    caller owns. Deterministic: the same result and options give byte-identical output.     */
#ifndef RA_AGENTS_AB_REPORT_H
#define RA_AGENTS_AB_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "agents/ab/runner.h"
#include "agents/ab/stats.h"

enum { RA_AB_M_RETURN, RA_AB_M_CTR, RA_AB_M_CONVERSION, RA_AB_M_MAIN, RA_AB_M_DIVERSITY,
       RA_AB_M_COVERAGE, RA_AB_M_REGRET, RA_AB_M_COUNT };
#define RA_AB_MAX_CURVE 16
#define RA_AB_MAX_WARNINGS 12
#define RA_AB_FEW_UNITS 5                  /* below this many units the report warns (2.3) */
#define RA_AB_MAX_WINDOWS 8                /* given windows; the report adds the AUC after them */

typedef enum { RA_AB_UNIT_TASK, RA_AB_UNIT_ENV } ra_ab_unit_t;

typedef struct {
  /* what was run, for the header and the JSON */
  const char *env_id, *split;
  const char *tasks_text;               /* the task set, canonical ("test:0-7"); NULL: by count */
  uint64_t seed;
  const ra_kv_t *config;
  int n_config;
  ra_ab_unit_t unit;
  int bootstrap;                        /* resamples B */
  double level;                         /* 0.95 */
  int control;                          /* arm index of the control */
  const char *credit;                   /* "clicked" or "metric" */
  int curve_k[RA_AB_MAX_CURVE];         /* episodes of learning K (each < episodes) */
  int n_curve;
  int win_from[RA_AB_MAX_WINDOWS], win_to[RA_AB_MAX_WINDOWS];   /* R@K windows, 0 <= from <= to < episodes */
  int n_win;
} ra_ab_report_opts_t;

typedef struct {
  bool available[RA_AB_M_COUNT];
  char key[RA_AB_M_COUNT][40];          /* JSON / CSV name: "return", "ctr", "revenue", ... */
  char label[RA_AB_M_COUNT][40];        /* table label: "return/session", ... */
  ra_ab_ci_t ci[RA_AB_MAX_ARMS][RA_AB_M_COUNT];
  ra_ab_paired_t vs[RA_AB_MAX_ARMS][RA_AB_M_COUNT];
  ra_ab_ci_t curve[RA_AB_MAX_ARMS][RA_AB_MAX_CURVE];
  ra_ab_paired_t curve_vs[RA_AB_MAX_ARMS][RA_AB_MAX_CURVE];
  /* R@K windows (docs/agents.md 2.2): the given ones, then the AUC (0 .. episodes - 1), then
     "frozen" (the frozen evaluation episodes, episodes .. episodes + frozen - 1) when run */
  int n_win;
  int win_from[RA_AB_MAX_WINDOWS + 2], win_to[RA_AB_MAX_WINDOWS + 2];
  char win_name[RA_AB_MAX_WINDOWS + 2][32];   /* "R@5w" (3-7), "R@3-6", "auc", "frozen" */
  ra_ab_ci_t win[RA_AB_MAX_ARMS][RA_AB_MAX_WINDOWS + 2];
  ra_ab_paired_t win_vs[RA_AB_MAX_ARMS][RA_AB_MAX_WINDOWS + 2];
  int units;                            /* units per arm for the non-coverage metrics */
  /* What the statistics cannot say (docs/agents.md 2.3): one unit, zero variance. */
  char warnings[RA_AB_MAX_WARNINGS][200];
  int n_warnings, warnings_dropped;
} ra_ab_report_t;

/* Unit values of metric m for arm a into x (tasks or tasks x num_envs values); returns the
   count. Coverage always has one unit per task. */
int ra_ab_unit_values (const ra_ab_result_t *r, ra_ab_unit_t unit, int a, int m, double *x);
/* Unit values of R@K (return of episode K, 0-based) for arm a. */
int ra_ab_curve_values (const ra_ab_result_t *r, ra_ab_unit_t unit, int a, int K, double *x);
/* The value of metric m / of R@K for arm a on task index t, its envs pooled (the per-task rows). */
double ra_ab_task_value (const ra_ab_result_t *r, int a, int t, int m);
double ra_ab_task_curve (const ra_ab_result_t *r, int a, int t, int K);
/* Window [from, to] of R@K: per unit the mean of R@from .. R@to (unit values into x; count), and
   per task index t. */
int ra_ab_window_values (const ra_ab_result_t *r, ra_ab_unit_t unit, int a, int from, int to, double *x);
double ra_ab_task_window (const ra_ab_result_t *r, int a, int t, int from, int to);

/* Index of the first arm of policy class cls ("oracle", "expert") other than the control, or -1. */
int ra_ab_ref_arm (const ra_ab_result_t *r, const ra_ab_report_opts_t *o, const char *cls);
/* An arm's paired gain over the control as a fraction of the reference arm's (docs/agents.md
   2.2): diff(a) / diff(ref); NAN when ref < 0 or the reference gains nothing. */
double ra_ab_gain_fraction (const ra_ab_paired_t *a, const ra_ab_paired_t *ref, bool a_is_control);

/* Computes every CI and test. RA_ERR_BAD_CONFIG for a window outside 0 .. episodes - 1 or with
   from > to; RA_ERR_NOMEM. */
ra_err_t ra_ab_report_compute (const ra_ab_result_t *r, const ra_ab_report_opts_t *o,
                               ra_ab_report_t *out, ra_error_t *err);
void ra_ab_report_table (const ra_ab_result_t *r, const ra_ab_report_opts_t *o,
                         const ra_ab_report_t *rep, FILE *f);
void ra_ab_report_json (const ra_ab_result_t *r, const ra_ab_report_opts_t *o,
                        const ra_ab_report_t *rep, FILE *f);
void ra_ab_report_csv (const ra_ab_result_t *r, const ra_ab_report_opts_t *o,
                       const ra_ab_report_t *rep, FILE *f);

#endif
