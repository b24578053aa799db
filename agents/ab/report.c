/*  agents/ab/report.c - statistics per arm and metric, and their three renderings (see
    report.h; docs/agents.md 2.2 - 2.5).                                                   */
#include "agents/ab/report.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Ratio sums of one metric over a set of cells. */
static double s_value (const ra_ab_cell_t *cells, int n, int episodes, int m)
{
  ra_ab_cell_t s;
  memset (&s, 0, sizeof s);
  for (int i = 0; i < n; i++) {
    s.reward += cells[i].reward;
    s.slots += cells[i].slots;
    s.clicks += cells[i].clicks;
    s.conversions += cells[i].conversions;
    s.main += cells[i].main;
    s.regret += cells[i].regret;
    s.diversity += cells[i].diversity;
    s.steps += cells[i].steps;
  }
  double sessions = (double) n * episodes;
  switch (m) {
  case RA_AB_M_RETURN: return s.reward / sessions;
  case RA_AB_M_CTR: return s.slots > 0 ? s.clicks / s.slots : 0;
  case RA_AB_M_CONVERSION: return s.clicks > 0 ? s.conversions / s.clicks : 0;
  case RA_AB_M_MAIN: return s.main / sessions;
  case RA_AB_M_DIVERSITY: return s.steps > 0 ? s.diversity / s.steps : 0;
  case RA_AB_M_REGRET: return s.regret / sessions;
  default: return 0;
  }
}

int ra_ab_unit_values (const ra_ab_result_t *r, ra_ab_unit_t unit, int a, int m, double *x)
{
  int n = 0;
  for (int t = 0; t < r->tasks; t++) {
    if (m == RA_AB_M_COVERAGE) {   /* per task: distinct ids over the catalog size */
      double d = r->distinct[(size_t) a * r->tasks + t];
      x[n++] = r->catalog_size > 0 ? d / r->catalog_size : d;
      continue;
    }
    const ra_ab_cell_t *cells = ra_ab_cell (r, a, t, 0);
    if (unit == RA_AB_UNIT_TASK)
      x[n++] = s_value (cells, r->num_envs, r->episodes, m);
    else
      for (int i = 0; i < r->num_envs; i++)
        x[n++] = s_value (cells + i, 1, r->episodes, m);
  }
  return n;
}

double ra_ab_task_value (const ra_ab_result_t *r, int a, int t, int m)
{
  double x;
  if (m == RA_AB_M_COVERAGE) {
    double d = r->distinct[(size_t) a * r->tasks + t];
    return r->catalog_size > 0 ? d / r->catalog_size : d;
  }
  x = s_value (ra_ab_cell (r, a, t, 0), r->num_envs, r->episodes, m);
  return x;
}

double ra_ab_task_curve (const ra_ab_result_t *r, int a, int t, int K)
{
  double s = 0;
  for (int i = 0; i < r->num_envs; i++)
    s += ra_ab_ep_return (r, a, t, i)[K];
  return s / r->num_envs;
}

double ra_ab_task_window (const ra_ab_result_t *r, int a, int t, int from, int to)
{
  double s = 0;
  for (int K = from; K <= to; K++)
    s += ra_ab_task_curve (r, a, t, K);
  return s / (to - from + 1);
}

int ra_ab_window_values (const ra_ab_result_t *r, ra_ab_unit_t unit, int a, int from, int to, double *x)
{
  int n = 0;
  for (int t = 0; t < r->tasks; t++) {
    if (unit == RA_AB_UNIT_TASK) {
      x[n++] = ra_ab_task_window (r, a, t, from, to);
      continue;
    }
    for (int i = 0; i < r->num_envs; i++) {
      const double *ep = ra_ab_ep_return (r, a, t, i);
      double s = 0;
      for (int K = from; K <= to; K++)
        s += ep[K];
      x[n++] = s / (to - from + 1);
    }
  }
  return n;
}

int ra_ab_curve_values (const ra_ab_result_t *r, ra_ab_unit_t unit, int a, int K, double *x)
{
  int n = 0;
  for (int t = 0; t < r->tasks; t++) {
    double s = 0;
    for (int i = 0; i < r->num_envs; i++) {
      double v = ra_ab_ep_return (r, a, t, i)[K];
      if (unit == RA_AB_UNIT_ENV)
        x[n++] = v;
      s += v;
    }
    if (unit == RA_AB_UNIT_TASK)
      x[n++] = s / r->num_envs;
  }
  return n;
}

static const char *s_unit_name (ra_ab_unit_t u)
{
  return u == RA_AB_UNIT_TASK ? "task" : "env";
}

static void s_warn (ra_ab_report_t *rep, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static void s_warn (ra_ab_report_t *rep, const char *fmt, ...)
{
  if (rep->n_warnings == RA_AB_MAX_WARNINGS) {
    rep->warnings_dropped++;
    return;
  }
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (rep->warnings[rep->n_warnings++], sizeof rep->warnings[0], fmt, ap);
  va_end (ap);
}

/* One warning per degenerate interval or test, after the one-unit case (said once). */
static void s_check (ra_ab_report_t *rep, const ra_ab_result_t *r, const ra_ab_report_opts_t *o,
                     int a, const char *what, const ra_ab_ci_t *ci, const ra_ab_paired_t *vs)
{
  if (ci->degenerate == RA_AB_DEGEN_ONE_UNIT)
    return;   /* reported once, by the caller */
  if (ci->degenerate == RA_AB_DEGEN_ZERO_VAR)
    s_warn (rep, "%s of %s is the same on all %d units: its CI is a point", what, r->arm_names[a],
            ci->n);
  if (a != o->control && vs->degenerate == RA_AB_DEGEN_ZERO_VAR)
    s_warn (rep, "%s of %s differs from %s by the same %.6g on all %d units: the CI of the "
            "difference is a point", what, r->arm_names[a], r->arm_names[o->control], vs->diff, vs->n);
}

static uint64_t s_seed (uint64_t seed, int a, int m)
{
  return seed * 0x9E3779B97F4A7C15ull + (uint64_t) a * 1000003u + (uint64_t) m * 7919u + 1;
}

ra_err_t ra_ab_report_compute (const ra_ab_result_t *r, const ra_ab_report_opts_t *o,
                               ra_ab_report_t *rep, ra_error_t *err)
{
  memset (rep, 0, sizeof *rep);
  static const char *const keys[RA_AB_M_COUNT] = { "return", "ctr", "conversion", "main",
                                                   "diversity", "coverage", "regret" };
  static const char *const labels[RA_AB_M_COUNT] = { "return/session", "CTR", "conversion",
                                                     "main/session", "diversity", "coverage",
                                                     "regret/session" };
  for (int m = 0; m < RA_AB_M_COUNT; m++) {
    snprintf (rep->key[m], sizeof rep->key[m], "%s", keys[m]);
    snprintf (rep->label[m], sizeof rep->label[m], "%s", labels[m]);
    rep->available[m] = true;
  }
  rep->available[RA_AB_M_CONVERSION] = r->has_conversion;
  if (r->has_conversion)
    snprintf (rep->label[RA_AB_M_CONVERSION], sizeof rep->label[0], "%s/click", r->conversion_name);
  rep->available[RA_AB_M_MAIN] = r->has_main;
  if (r->has_main) {
    snprintf (rep->key[RA_AB_M_MAIN], sizeof rep->key[0], "%s", r->main_name);
    snprintf (rep->label[RA_AB_M_MAIN], sizeof rep->label[0], "%s/session", r->main_name);
  }
  rep->available[RA_AB_M_COVERAGE] = r->has_items;
  if (r->catalog_size <= 0)
    snprintf (rep->label[RA_AB_M_COVERAGE], sizeof rep->label[0], "distinct items");
  rep->available[RA_AB_M_REGRET] = r->has_regret;
  rep->n_win = 0;
  for (int j = 0; j <= o->n_win && j <= RA_AB_MAX_WINDOWS; j++) {
    bool auc = j == o->n_win;
    int from = auc ? 0 : o->win_from[j], to = auc ? r->episodes - 1 : o->win_to[j];
    if (from < 0 || from > to || to >= r->episodes)
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "window %d-%d of R@K: expected 0 <= A <= B "
                           "< %d (the episodes per env)", from, to, r->episodes);
    int k = rep->n_win++;
    rep->win_from[k] = from;
    rep->win_to[k] = to;
    if (auc)
      snprintf (rep->win_name[k], sizeof rep->win_name[k], "auc");
    else if ((from + to) % 2 == 0)
      snprintf (rep->win_name[k], sizeof rep->win_name[k], "R@%dw", (from + to) / 2);
    else
      snprintf (rep->win_name[k], sizeof rep->win_name[k], "R@%d-%d", from, to);
  }
  if (r->frozen > 0) { /* the adapted policy, learning frozen, on fresh episodes (2.1) */
    int k = rep->n_win++;
    rep->win_from[k] = r->episodes;
    rep->win_to[k] = r->episodes + r->frozen - 1;
    snprintf (rep->win_name[k], sizeof rep->win_name[k], "frozen");
  }
  size_t cap = (size_t) r->tasks * r->num_envs;
  double *x = malloc (cap * sizeof *x), *y = malloc (cap * sizeof *y);
  if (!x || !y) {
    free (x);
    free (y);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory for %zu units", cap);
  }
  int c = o->control;
  for (int a = 0; a < r->arms; a++) {
    for (int m = 0; m < RA_AB_M_COUNT; m++) {
      if (!rep->available[m])
        continue;
      int n = ra_ab_unit_values (r, o->unit, a, m, x);
      ra_ab_bootstrap_ci (x, n, o->bootstrap, o->level, s_seed (o->seed, a, m), &rep->ci[a][m]);
      ra_ab_unit_values (r, o->unit, c, m, y);
      ra_ab_paired_test (x, y, n, o->bootstrap, o->level, s_seed (o->seed, a, 100 + m), &rep->vs[a][m]);
      if (m == RA_AB_M_RETURN)
        rep->units = n;
      if (m == RA_AB_M_COVERAGE && n < 2 && a == 0 && o->unit == RA_AB_UNIT_ENV)
        s_warn (rep, "coverage has one unit per task and there is 1 task: no CI or test for it");
      s_check (rep, r, o, a, rep->key[m], &rep->ci[a][m], &rep->vs[a][m]);
    }
    for (int j = 0; j < o->n_curve; j++) {
      int n = ra_ab_curve_values (r, o->unit, a, o->curve_k[j], x);
      ra_ab_bootstrap_ci (x, n, o->bootstrap, o->level, s_seed (o->seed, a, 200 + j), &rep->curve[a][j]);
      ra_ab_curve_values (r, o->unit, c, o->curve_k[j], y);
      ra_ab_paired_test (x, y, n, o->bootstrap, o->level, s_seed (o->seed, a, 300 + j),
                         &rep->curve_vs[a][j]);
      char what[24];
      snprintf (what, sizeof what, "R@%d", o->curve_k[j]);
      s_check (rep, r, o, a, what, &rep->curve[a][j], &rep->curve_vs[a][j]);
    }
    for (int j = 0; j < rep->n_win; j++) {
      int n = ra_ab_window_values (r, o->unit, a, rep->win_from[j], rep->win_to[j], x);
      ra_ab_bootstrap_ci (x, n, o->bootstrap, o->level, s_seed (o->seed, a, 400 + j), &rep->win[a][j]);
      ra_ab_window_values (r, o->unit, c, rep->win_from[j], rep->win_to[j], y);
      ra_ab_paired_test (x, y, n, o->bootstrap, o->level, s_seed (o->seed, a, 500 + j),
                         &rep->win_vs[a][j]);
      s_check (rep, r, o, a, rep->win_name[j], &rep->win[a][j], &rep->win_vs[a][j]);
    }
  }
  if (rep->units >= 2 && rep->units < RA_AB_FEW_UNITS)
    s_warn (rep, "only %d %s units: with so few the bootstrap's intervals are too narrow and its "
            "p-values too small; use at least %d (--task-ids%s)", rep->units, s_unit_name (o->unit),
            RA_AB_FEW_UNITS, o->unit == RA_AB_UNIT_TASK ? " or --unit env" : "");
  if (rep->units < 2) {   /* before the others: it explains every "-" in the table */
    char first[200];
    snprintf (first, sizeof first, "only %d %s unit: no confidence intervals and no tests (a "
              "bootstrap of one unit is a point with p = 1); run more tasks (--task-ids)%s",
              rep->units, s_unit_name (o->unit), o->unit == RA_AB_UNIT_TASK ? " or use --unit env" : "");
    int n = rep->n_warnings < RA_AB_MAX_WARNINGS ? rep->n_warnings : RA_AB_MAX_WARNINGS - 1;
    rep->warnings_dropped += rep->n_warnings - n;
    memmove (rep->warnings[1], rep->warnings[0], (size_t) n * sizeof rep->warnings[0]);
    memcpy (rep->warnings[0], first, sizeof first);
    rep->n_warnings = n + 1;
  }
  free (x);
  free (y);
  return RA_OK;
}

/* ------------------------------------------------------------------------------------------ */

/* Numbers with enough digits to compare, few enough to read; never locale-dependent output
   beyond printf's "C" default. */
static void s_num (FILE *f, double v)
{
  if (isfinite (v))
    fprintf (f, "%.6g", v);
  else
    fputs ("null", f);
}

static void s_json_str (FILE *f, const char *s)
{
  fputc ('"', f);
  for (; *s; s++) {
    unsigned char ch = (unsigned char) *s;
    if (ch == '"' || ch == '\\')
      fprintf (f, "\\%c", ch);
    else if (ch < 0x20)
      fprintf (f, "\\u%04x", ch);
    else
      fputc (ch, f);
  }
  fputc ('"', f);
}

static void s_cell (char *buf, size_t n, double v)
{
  double a = fabs (v);
  if (!isfinite (v))
    snprintf (buf, n, "-");
  else if (a != 0 && (a < 0.01 || a >= 1e5))
    snprintf (buf, n, "%.3g", v);
  else
    snprintf (buf, n, "%.3f", v);
}

static void s_table_fractions (const ra_ab_result_t *r, const ra_ab_report_opts_t *o,
                               const ra_ab_report_t *rep, FILE *f, int w);
static void s_table_curve (const ra_ab_result_t *r, const ra_ab_report_opts_t *o,
                           const ra_ab_report_t *rep, FILE *f, int w);

/* One line: label, arm, mean [CI], and against the control (vs NULL: this is the control). */
static void s_table_row (FILE *f, const char *label, int w, const char *arm, const ra_ab_ci_t *ci,
                         const ra_ab_paired_t *vs)
{
  char mean[32], lo[32], hi[32], ci_s[72], d[32], dlo[32], dhi[32], dci[72];
  s_cell (mean, sizeof mean, ci->mean);
  s_cell (lo, sizeof lo, ci->lo);
  s_cell (hi, sizeof hi, ci->hi);
  snprintf (ci_s, sizeof ci_s, "[%s, %s]", lo, hi);
  fprintf (f, "%-18s %-*s %10s %22s", label, w, arm, mean, ci_s);
  if (!vs) {
    fprintf (f, "   %10s\n", "(control)");
    return;
  }
  s_cell (d, sizeof d, vs->diff);
  s_cell (dlo, sizeof dlo, vs->lo);
  s_cell (dhi, sizeof dhi, vs->hi);
  snprintf (dci, sizeof dci, "[%s, %s]", dlo, dhi);
  if (isfinite (vs->p))
    fprintf (f, "   %10s %22s %8.4f\n", d, dci, vs->p);
  else
    fprintf (f, "   %10s %22s %8s\n", d, dci, "-");
}

void ra_ab_report_table (const ra_ab_result_t *r, const ra_ab_report_opts_t *o,
                         const ra_ab_report_t *rep, FILE *f)
{
  fprintf (f, "%s, tasks ", o->env_id);
  if (o->tasks_text)
    fputs (o->tasks_text, f);
  else
    fprintf (f, "%s (%d)", o->split, r->tasks);
  fprintf (f, ", %d envs x %d episodes per task, seed %llu\n", r->num_envs, r->episodes,
           (unsigned long long) o->seed);
  bool mixed = false;
  for (int a = 1; a < r->arms; a++)
    mixed |= r->arm_credit[a] != r->arm_credit[0];
  if (mixed) {
    fputs ("per-slot credit:", f);
    for (int a = 0; a < r->arms; a++)
      fprintf (f, "%s %s %s", a ? "," : "", r->arm_names[a],
               r->arm_credit[a] == RA_AB_CREDIT_METRIC ? "metric" : "clicked");
    fputc ('\n', f);
  }
  fprintf (f, "%.0f%% bootstrap CIs over %d %s units (B = %d); paired bootstrap test vs %s\n\n",
           100 * o->level, rep->units, s_unit_name (o->unit), o->bootstrap, r->arm_names[o->control]);
  int w = 8;
  for (int a = 0; a < r->arms; a++)
    if ((int) strlen (r->arm_names[a]) > w)
      w = (int) strlen (r->arm_names[a]);
  fprintf (f, "%-18s %-*s %10s %22s   %10s %22s %8s\n", "metric", w, "arm", "mean", "95% CI",
           "diff", "95% CI of diff", "p");
  for (int m = 0; m < RA_AB_M_COUNT; m++)
    if (rep->available[m])
      for (int a = 0; a < r->arms; a++)
        s_table_row (f, a == 0 ? rep->label[m] : "", w, r->arm_names[a], &rep->ci[a][m],
                     a == o->control ? NULL : &rep->vs[a][m]);
  if (o->n_curve > 0)
    s_table_curve (r, o, rep, f, w);
  fprintf (f, "\nR@K windows (per unit the mean of R@A..R@B; R@5w = R@3..R@7) and auc, the area "
              "under R@K per episode (mean of R@0..R@%d)\n", r->episodes - 1);
  if (r->frozen > 0)
    fprintf (f, "frozen: the arm after its %d episodes of learning, learning off (greedy), on %d "
                "fresh episodes per env\n", r->episodes, r->frozen);
  fprintf (f, "%-18s %-*s %10s %22s   %10s %22s %8s\n", "window", w, "arm", "mean", "95% CI",
           "diff", "95% CI of diff", "p");
  for (int j = 0; j < rep->n_win; j++)
    for (int a = 0; a < r->arms; a++) {
      char label[96];
      if (!strcmp (rep->win_name[j], "auc"))
        snprintf (label, sizeof label, "auc (0-%d)", rep->win_to[j]);
      else if (!strcmp (rep->win_name[j], "frozen"))
        snprintf (label, sizeof label, "frozen (%d-%d)", rep->win_from[j], rep->win_to[j]);
      else
        snprintf (label, sizeof label, "%s (%d-%d)", rep->win_name[j], rep->win_from[j], rep->win_to[j]);
      s_table_row (f, a == 0 ? label : "", w, r->arm_names[a], &rep->win[a][j],
                   a == o->control ? NULL : &rep->win_vs[a][j]);
    }
  s_table_fractions (r, o, rep, f, w);
  for (int i = 0; i < rep->n_warnings; i++)
    fprintf (f, "%swarning: %s\n", i == 0 ? "\n" : "", rep->warnings[i]);
  if (rep->warnings_dropped > 0)
    fprintf (f, "warning: %d more like these (see the JSON's per-task rows)\n", rep->warnings_dropped);
}

int ra_ab_ref_arm (const ra_ab_result_t *r, const ra_ab_report_opts_t *o, const char *cls)
{
  for (int a = 0; a < r->arms; a++)
    if (a != o->control && !strcmp (r->arm_class[a], cls))
      return a;
  return -1;
}

double ra_ab_gain_fraction (const ra_ab_paired_t *a, const ra_ab_paired_t *ref, bool a_is_control)
{
  if (!ref || !(fabs (ref->diff) > 1e-12))
    return NAN;
  return a_is_control ? 0.0 : a->diff / ref->diff;
}

/* Gains over the control as fractions of the oracle's and the expert's, per window (2.2). */
static void s_table_fractions (const ra_ab_result_t *r, const ra_ab_report_opts_t *o,
                               const ra_ab_report_t *rep, FILE *f, int w)
{
  static const char *const refs[2] = { "oracle", "expert" };
  for (int q = 0; q < 2; q++) {
    int ref = ra_ab_ref_arm (r, o, refs[q]);
    if (ref < 0)
      continue;
    fprintf (f, "\nfraction of the %s's gain: (arm - %s) / (%s - %s), paired means over units\n",
             refs[q], r->arm_names[o->control], r->arm_names[ref], r->arm_names[o->control]);
    fprintf (f, "%-*s", w, "arm");
    for (int j = 0; j < rep->n_win; j++)
      fprintf (f, " %10s", rep->win_name[j]);
    fputc ('\n', f);
    for (int a = 0; a < r->arms; a++) {
      fprintf (f, "%-*s", w, r->arm_names[a]);
      for (int j = 0; j < rep->n_win; j++)
        fprintf (f, " %10.3f", ra_ab_gain_fraction (&rep->win_vs[a][j], &rep->win_vs[ref][j], a == o->control));
      fputc ('\n', f);
    }
  }
}

static void s_table_curve (const ra_ab_result_t *r, const ra_ab_report_opts_t *o,
                           const ra_ab_report_t *rep, FILE *f, int w)
{
  fprintf (f, "\nlearning curve R@K: mean return of each env's episode K + 1 on a task, after K "
              "episodes of learning on it (all envs of a task feed one learner)\n");
  fprintf (f, "%-*s", w, "arm");
  for (int j = 0; j < o->n_curve; j++) {
    char h[16];
    snprintf (h, sizeof h, "K=%d", o->curve_k[j]);
    fprintf (f, " %10s", h);
  }
  fputc ('\n', f);
  for (int a = 0; a < r->arms; a++) {
    fprintf (f, "%-*s", w, r->arm_names[a]);
    for (int j = 0; j < o->n_curve; j++) {
      char v[32];
      s_cell (v, sizeof v, rep->curve[a][j].mean);
      fprintf (f, " %10s", v);
    }
    fputc ('\n', f);
  }
}

static void s_json_degen (FILE *f, ra_ab_degen_t d)
{
  static const char *const names[] = { "null", "\"one_unit\"", "\"zero_variance\"" };
  fprintf (f, ", \"degenerate\": %s", names[d]);
}

/* The fields of a CI, without braces. */
static void s_json_ci (FILE *f, const ra_ab_ci_t *ci)
{
  fputs ("\"mean\": ", f);
  s_num (f, ci->mean);
  fputs (", \"lo\": ", f);
  s_num (f, ci->lo);
  fputs (", \"hi\": ", f);
  s_num (f, ci->hi);
  fprintf (f, ", \"n\": %d", ci->n);
  s_json_degen (f, ci->degenerate);
}

static void s_json_vs (FILE *f, const ra_ab_paired_t *vs)
{
  fputs ("{\"diff\": ", f);
  s_num (f, vs->diff);
  fputs (", \"lo\": ", f);
  s_num (f, vs->lo);
  fputs (", \"hi\": ", f);
  s_num (f, vs->hi);
  fputs (", \"p\": ", f);
  s_num (f, vs->p);
  s_json_degen (f, vs->degenerate);
  fputs ("}", f);
}

void ra_ab_report_json (const ra_ab_result_t *r, const ra_ab_report_opts_t *o,
                        const ra_ab_report_t *rep, FILE *f)
{
  fputs ("{\n  \"schema\": \"recarena-ab/2\",\n  \"env\": ", f);
  s_json_str (f, o->env_id);
  fputs (",\n  \"split\": ", f);
  s_json_str (f, o->split);
  fprintf (f, ",\n  \"tasks\": %d,\n  \"task_ids\": [", r->tasks);
  for (int t = 0; t < r->tasks; t++)
    fprintf (f, "%s%lld", t ? ", " : "", (long long) r->task_ids[t]);
  fprintf (f, "],\n  \"num_envs\": %d,\n  \"episodes\": %d,\n  \"seed\": %llu,\n",
           r->num_envs, r->episodes, (unsigned long long) o->seed);
  fputs ("  \"unit\": ", f);
  s_json_str (f, s_unit_name (o->unit));
  fprintf (f, ",\n  \"bootstrap\": %d,\n  \"level\": ", o->bootstrap);
  s_num (f, o->level);
  fputs (",\n  \"credit\": ", f);
  s_json_str (f, o->credit);
  fprintf (f, ",\n  \"oracle_info\": %s,\n  \"catalog_size\": ", r->oracle_on ? "true" : "false");
  s_num (f, r->catalog_size > 0 ? r->catalog_size : NAN);
  fputs (",\n  \"config\": {", f);
  for (int i = 0; i < o->n_config; i++) {
    fputs (i ? ", " : "", f);
    s_json_str (f, o->config[i].key);
    fputs (": ", f);
    if (o->config[i].type == RA_KV_STR)
      s_json_str (f, o->config[i].str);
    else if (o->config[i].type == RA_KV_BOOL)
      fputs (o->config[i].num ? "true" : "false", f);
    else
      s_num (f, o->config[i].num);
  }
  fputs ("},\n  \"control\": ", f);
  s_json_str (f, r->arm_names[o->control]);
  fputs (",\n  \"warnings\": [", f);
  for (int i = 0; i < rep->n_warnings; i++) {
    fputs (i ? ", " : "", f);
    s_json_str (f, rep->warnings[i]);
  }
  fprintf (f, "],\n  \"warnings_dropped\": %d", rep->warnings_dropped);
  fputs (",\n  \"metrics\": [", f);
  bool first = true;
  for (int m = 0; m < RA_AB_M_COUNT; m++) {
    if (!rep->available[m])
      continue;
    fputs (first ? "" : ", ", f);
    first = false;
    fputs ("{\"name\": ", f);
    s_json_str (f, rep->key[m]);
    fputs (", \"label\": ", f);
    s_json_str (f, rep->label[m]);
    fputs ("}", f);
  }
  fputs ("],\n  \"curve_k\": [", f);
  for (int j = 0; j < o->n_curve; j++)
    fprintf (f, "%s%d", j ? ", " : "", o->curve_k[j]);
  fputs ("],\n  \"windows\": [", f);
  for (int j = 0; j < rep->n_win; j++) {
    fprintf (f, "%s{\"name\": ", j ? ", " : "");
    s_json_str (f, rep->win_name[j]);
    fprintf (f, ", \"from\": %d, \"to\": %d}", rep->win_from[j], rep->win_to[j]);
  }
  fputs ("],\n  \"arms\": [\n", f);
  for (int a = 0; a < r->arms; a++) {
    fputs ("    {\"name\": ", f);
    s_json_str (f, r->arm_names[a]);
    fprintf (f, ", \"credit\": \"%s\"", r->arm_credit[a] == RA_AB_CREDIT_METRIC ? "metric" : "clicked");
    fputs (",\n     \"metrics\": {", f);
    first = true;
    for (int m = 0; m < RA_AB_M_COUNT; m++) {
      if (!rep->available[m])
        continue;
      fputs (first ? "\n" : ",\n", f);
      first = false;
      fputs ("       ", f);
      s_json_str (f, rep->key[m]);
      fputs (": {", f);
      s_json_ci (f, &rep->ci[a][m]);
      fputs (", \"vs_control\": ", f);
      if (a == o->control)
        fputs ("null", f);
      else
        s_json_vs (f, &rep->vs[a][m]);
      fputs ("}", f);
    }
    fputs ("},\n     \"curve\": [", f);
    for (int j = 0; j < o->n_curve; j++) {
      fprintf (f, "%s\n       {\"k\": %d, ", j ? "," : "", o->curve_k[j]);
      s_json_ci (f, &rep->curve[a][j]);
      fputs (", \"vs_control\": ", f);
      if (a == o->control)
        fputs ("null", f);
      else
        s_json_vs (f, &rep->curve_vs[a][j]);
      fputs ("}", f);
    }
    fputs ("],\n     \"windows\": [", f);
    for (int j = 0; j < rep->n_win; j++) {
      fprintf (f, "%s\n       {\"name\": ", j ? "," : "");
      s_json_str (f, rep->win_name[j]);
      fprintf (f, ", \"from\": %d, \"to\": %d, ", rep->win_from[j], rep->win_to[j]);
      s_json_ci (f, &rep->win[a][j]);
      fputs (", \"vs_control\": ", f);
      if (a == o->control)
        fputs ("null", f);
      else
        s_json_vs (f, &rep->win_vs[a][j]);
      static const char *const refs[2] = { "oracle", "expert" };
      for (int q = 0; q < 2; q++) { /* fraction of the reference's gain, null without it */
        int ref = ra_ab_ref_arm (r, o, refs[q]);
        fprintf (f, ", \"of_%s\": ", refs[q]);
        s_num (f, ref < 0 ? NAN : ra_ab_gain_fraction (&rep->win_vs[a][j], &rep->win_vs[ref][j], a == o->control));
      }
      fputs ("}", f);
    }
    fputs ("],\n     \"per_task\": [", f);
    for (int t = 0; t < r->tasks; t++) {
      fprintf (f, "%s\n       {\"task\": %lld", t ? "," : "", (long long) r->task_ids[t]);
      for (int m = 0; m < RA_AB_M_COUNT; m++) {
        if (!rep->available[m])
          continue;
        fputs (", ", f);
        s_json_str (f, rep->key[m]);
        fputs (": ", f);
        s_num (f, ra_ab_task_value (r, a, t, m));
      }
      fputs (", \"curve\": [", f);
      for (int j = 0; j < o->n_curve; j++) {
        fputs (j ? ", " : "", f);
        s_num (f, ra_ab_task_curve (r, a, t, o->curve_k[j]));
      }
      fputs ("], \"windows\": [", f);
      for (int j = 0; j < rep->n_win; j++) {
        fputs (j ? ", " : "", f);
        s_num (f, ra_ab_task_window (r, a, t, rep->win_from[j], rep->win_to[j]));
      }
      fputs ("]}", f);
    }
    fprintf (f, "]}%s\n", a + 1 < r->arms ? "," : "");
  }
  fputs ("  ]\n}\n", f);
}

static void s_csv_row (FILE *f, const char *arm, const char *metric, int k, const ra_ab_ci_t *ci,
                       const ra_ab_paired_t *vs)
{
  fprintf (f, "\"%s\",%s,", arm, metric);
  if (k >= 0)
    fprintf (f, "%d", k);
  fputc (',', f);   /* task: empty on the aggregate rows */
  double v[7] = { ci->mean, ci->lo, ci->hi, vs ? vs->diff : NAN, vs ? vs->lo : NAN,
                  vs ? vs->hi : NAN, vs ? vs->p : NAN };
  for (int i = 0; i < 7; i++) {
    fputc (',', f);
    if (i == 3)
      fprintf (f, "%d,", ci->n);
    if (isfinite (v[i]))
      fprintf (f, "%.6g", v[i]);
  }
  fputc ('\n', f);
}

static void s_csv_num (FILE *f, double v)
{
  if (isfinite (v))
    fprintf (f, "%.6g", v);
}

void ra_ab_report_csv (const ra_ab_result_t *r, const ra_ab_report_opts_t *o,
                       const ra_ab_report_t *rep, FILE *f)
{
  fputs ("arm,metric,k,task,mean,lo,hi,n,diff,diff_lo,diff_hi,p\n", f);
  for (int a = 0; a < r->arms; a++) {
    const ra_ab_paired_t *none = NULL;
    for (int m = 0; m < RA_AB_M_COUNT; m++)
      if (rep->available[m])
        s_csv_row (f, r->arm_names[a], rep->key[m], -1, &rep->ci[a][m],
                   a == o->control ? none : &rep->vs[a][m]);
    for (int j = 0; j < o->n_curve; j++)
      s_csv_row (f, r->arm_names[a], "R@K", o->curve_k[j], &rep->curve[a][j],
                 a == o->control ? none : &rep->curve_vs[a][j]);
    for (int j = 0; j < rep->n_win; j++)
      s_csv_row (f, r->arm_names[a], rep->win_name[j], -1, &rep->win[a][j],
                 a == o->control ? none : &rep->win_vs[a][j]);
  }
  /* per-task rows: the task's value (its envs pooled) and its difference from the control */
  for (int a = 0; a < r->arms; a++)
    for (int t = 0; t < r->tasks; t++) {
      for (int m = 0; m < RA_AB_M_COUNT + o->n_curve + rep->n_win; m++) {
        bool curve = m >= RA_AB_M_COUNT && m < RA_AB_M_COUNT + o->n_curve;
        int wj = m - RA_AB_M_COUNT - o->n_curve;   /* >= 0: a window */
        if (m < RA_AB_M_COUNT && !rep->available[m])
          continue;
        int K = curve ? o->curve_k[m - RA_AB_M_COUNT] : -1;
        double v, c;
        if (wj >= 0) {
          v = ra_ab_task_window (r, a, t, rep->win_from[wj], rep->win_to[wj]);
          c = ra_ab_task_window (r, o->control, t, rep->win_from[wj], rep->win_to[wj]);
        } else if (curve) {
          v = ra_ab_task_curve (r, a, t, K);
          c = ra_ab_task_curve (r, o->control, t, K);
        } else {
          v = ra_ab_task_value (r, a, t, m);
          c = ra_ab_task_value (r, o->control, t, m);
        }
        fprintf (f, "\"%s\",%s,", r->arm_names[a],
                 wj >= 0 ? rep->win_name[wj] : curve ? "R@K" : rep->key[m]);
        if (curve)
          fprintf (f, "%d", K);
        fprintf (f, ",%lld,", (long long) r->task_ids[t]);
        s_csv_num (f, v);
        fprintf (f, ",,,%d,", m == RA_AB_M_COVERAGE ? 1 : r->num_envs);
        if (a != o->control)
          s_csv_num (f, v - c);
        fputs (",,,\n", f);
      }
    }
}
