/*  agents/policies/metats_prior.c - the Meta-TS hyper-posterior and its file (see metats.h;
    docs/agents.md 1.9, eqs. MT2-MT4).

    Kept in information form: Lambda_hat = I / sigma_q^2 + sum_l Lambda_l and
    eta_hat = sum_l eta_l, so folding a task is one addition and the result does not depend on
    how the tasks were grouped. A task's information (MT2) is computed without inverting G
    (which is singular when a feature never varied): with M = I + (sigma0^2 / v^2) G,
    Lambda_l = M^-1 G / v^2 and eta_l = M^-1 B / v^2, through one Cholesky factor of M.      */
#include "agents/policies/metats.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/policies/baseline.h"
#include "agents/policies/linalg.h"

#define S_MAGIC "recarena-metats-prior"
#define S_VERSION 1
#define S_MAX_DIM 2048              /* user and candidate features: the sims have tens */
#define S_MAX_FILE ((size_t) 1 << 30)

static bool s_pos (double x)
{
  return isfinite (x) && x > 0;
}

ra_err_t ra_metats_prior_init (ra_metats_prior_t *q, int user_dim, int cand_dim, double v,
                               double sigma0, double sigma_q, ra_error_t *err)
{
  memset (q, 0, sizeof *q);
  if (user_dim < 1 || user_dim > S_MAX_DIM || cand_dim < 1 || cand_dim > S_MAX_DIM)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "metats prior: user and candidate dims must be "
                         "in [1, %d], got %d and %d", S_MAX_DIM, user_dim, cand_dim);
  if (!s_pos (v) || !s_pos (sigma0) || !s_pos (sigma_q))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "metats prior: v, sigma0 and sigma_q must be "
                         "positive and finite, got %g, %g, %g", v, sigma0, sigma_q);
  q->user_dim = user_dim;
  q->cand_dim = cand_dim;
  q->D = ra__phi_dim (user_dim, cand_dim);
  q->v = v;
  q->sigma0 = sigma0;
  q->sigma_q = sigma_q;
  size_t D = (size_t) q->D;
  q->prec = malloc (D * D * sizeof *q->prec);
  q->eta = calloc (D, sizeof *q->eta);
  if (!q->prec || !q->eta) {
    ra_metats_prior_fini (q);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "metats prior: out of memory for D = %zu", D);
  }
  ra__set_identity (q->prec, q->D, 1.0 / (sigma_q * sigma_q));   /* MT3 with no task */
  return RA_OK;
}

void ra_metats_prior_fini (ra_metats_prior_t *q)
{
  free (q->prec);
  free (q->eta);
  memset (q, 0, sizeof *q);
}

ra_err_t ra_metats_prior_copy (ra_metats_prior_t *dst, const ra_metats_prior_t *src, ra_error_t *err)
{
  *dst = *src;
  size_t D = (size_t) src->D;
  dst->prec = malloc (D * D * sizeof *dst->prec);
  dst->eta = malloc (D * sizeof *dst->eta);
  if (!dst->prec || !dst->eta) {
    ra_metats_prior_fini (dst);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "metats prior: out of memory for D = %zu", D);
  }
  memcpy (dst->prec, src->prec, D * D * sizeof *dst->prec);
  memcpy (dst->eta, src->eta, D * sizeof *dst->eta);
  return RA_OK;
}

ra_err_t ra_metats_prior_update (ra_metats_prior_t *q, const double *gram, const double *bsum,
                                 ra_error_t *err)
{
  int D = q->D;
  size_t DD = (size_t) D * D;
  double *m = calloc (DD, sizeof *m), *l = malloc (DD * sizeof *l), *lam = malloc (DD * sizeof *lam);
  double *col = malloc ((size_t) D * sizeof *col);
  ra_err_t rc = RA_OK;
  if (!m || !l || !lam || !col) {
    rc = ra_error_set (err, RA_ERR_NOMEM, -1, "metats prior: out of memory for D = %d", D);
    goto out;
  }
  /* MT2: M = I + c G, c = sigma0^2 / v^2 (symmetric positive definite: G is a Gram matrix) */
  const double c = q->sigma0 * q->sigma0 / (q->v * q->v), iv2 = 1.0 / (q->v * q->v);
  for (int a = 0; a < D; a++)
    for (int b = 0; b < D; b++)
      m[(size_t) a * D + b] = (a == b) + c * 0.5 * (gram[(size_t) a * D + b] + gram[(size_t) b * D + a]);
  if (!ra__cholesky (m, D, l)) {
    rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "metats prior: a task's Gram matrix is not "
                       "positive semi-definite (non-finite features or credit?)");
    goto out;
  }
  for (int j = 0; j < D; j++) {   /* column j of Lambda_l = M^-1 G / v^2 */
    for (int a = 0; a < D; a++)
      col[a] = gram[(size_t) a * D + j] * iv2;
    ra__chol_solve (l, D, col, col);
    for (int a = 0; a < D; a++)
      lam[(size_t) a * D + j] = col[a];
  }
  for (int a = 0; a < D; a++)     /* Lambda_l is symmetric (M and G commute): drop rounding */
    for (int b = 0; b < D; b++)
      q->prec[(size_t) a * D + b] += 0.5 * (lam[(size_t) a * D + b] + lam[(size_t) b * D + a]);
  for (int a = 0; a < D; a++)     /* eta_l = M^-1 B / v^2 */
    col[a] = bsum[a] * iv2;
  ra__chol_solve (l, D, col, col);
  for (int a = 0; a < D; a++)
    q->eta[a] += col[a];
  q->n_tasks++;
out:
  free (m);
  free (l);
  free (lam);
  free (col);
  return rc;
}

/* The lower Cholesky factor of Lambda_hat into l (D x D). */
static ra_err_t s_factor (const ra_metats_prior_t *q, double *l, ra_error_t *err)
{
  if (!ra__cholesky (q->prec, q->D, l))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "metats prior: the precision is not positive "
                         "definite");
  return RA_OK;
}

ra_err_t ra_metats_prior_mean (const ra_metats_prior_t *q, double *mean, double *cov, ra_error_t *err)
{
  int D = q->D;
  double *l = malloc ((size_t) D * D * sizeof *l);
  if (!l)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "metats prior: out of memory for D = %d", D);
  ra_err_t rc = s_factor (q, l, err);
  if (rc == RA_OK) {
    ra__chol_solve (l, D, q->eta, mean);            /* MT4: mu_hat = Lambda_hat^-1 eta_hat */
    for (int c = 0; cov && c < D; c++) {           /* Sigma_hat = Lambda_hat^-1, by columns */
      double *col = cov + (size_t) c * D;          /* column c, written as row c: symmetric */
      for (int i = 0; i < D; i++)
        col[i] = i == c;
      ra__chol_solve (l, D, col, col);
    }
  }
  free (l);
  return rc;
}

ra_err_t ra_metats_prior_sample (const ra_metats_prior_t *q, ra_rng_t *rng, double *out,
                                 ra_error_t *err)
{
  int D = q->D;
  double *l = malloc ((size_t) D * D * sizeof *l), *z = malloc ((size_t) D * sizeof *z);
  ra_err_t rc = !l || !z ? ra_error_set (err, RA_ERR_NOMEM, -1, "metats prior: out of memory")
                         : s_factor (q, l, err);
  if (rc == RA_OK) {
    for (int j = 0; j < D; j++)
      z[j] = ra_rng_normal (rng);
    ra__chol_solve_upper (l, D, z, z);             /* R^-T z ~ N(0, Lambda_hat^-1) */
    ra__chol_solve (l, D, q->eta, out);
    for (int j = 0; j < D; j++)
      out[j] += z[j];
  }
  free (l);
  free (z);
  return rc;
}

/* ---- the file ------------------------------------------------------------------------------ */

static const char *s_or_dash (const char *s)
{
  return s[0] ? s : "-";
}

ra_err_t ra_metats_prior_save (const ra_metats_prior_t *q, const char *path, ra_error_t *err)
{
  FILE *f = fopen (path, "w");
  if (!f)
    return ra_error_set (err, RA_ERR_IO, -1, "cannot write metats prior '%.160s': %s", path,
                         strerror (errno));
  int D = q->D;
  fprintf (f, "%s %d\nenv %s\ncredit %s\ntasks %s\nuser_dim %d\ncand_dim %d\ndim %d\n"
           "v %.17g\nsigma0 %.17g\nsigma_q %.17g\ntask_count %lld\neta", S_MAGIC, S_VERSION,
           s_or_dash (q->env_id), s_or_dash (q->credit), s_or_dash (q->tasks), q->user_dim,
           q->cand_dim, D, q->v, q->sigma0, q->sigma_q, (long long) q->n_tasks);
  for (int j = 0; j < D; j++)
    fprintf (f, " %.17g", q->eta[j]);
  fputs ("\nprecision\n", f);
  for (int a = 0; a < D; a++)
    for (int b = 0; b < D; b++)
      fprintf (f, "%.17g%c", q->prec[(size_t) a * D + b], b + 1 < D ? ' ' : '\n');
  fputs ("end\n", f);
  bool bad = ferror (f) != 0;
  if (fclose (f) != 0 || bad)
    return ra_error_set (err, RA_ERR_IO, -1, "cannot write metats prior '%.160s'", path);
  return RA_OK;
}

/* A whitespace tokenizer over the file's text that counts lines. */
typedef struct {
  char *p;
  int line;                             /* the line x->p is on */
  int tline;                            /* the line of the last token */
  size_t left;                          /* characters of the file (a bound on its numbers) */
  const char *path;
} s_lex_t;

/* The next token (NUL-terminated in place) or NULL at the end. */
static char *s_next (s_lex_t *x)
{
  while (*x->p == ' ' || *x->p == '\t' || *x->p == '\r' || *x->p == '\n')
    x->line += *x->p++ == '\n';
  x->tline = x->line;
  if (!*x->p)
    return NULL;
  char *t = x->p;
  while (*x->p && *x->p != ' ' && *x->p != '\t' && *x->p != '\r' && *x->p != '\n')
    x->p++;
  if (*x->p) {
    x->line += *x->p == '\n';
    *x->p++ = 0;
  }
  return t;
}

static ra_err_t s_bad (const s_lex_t *x, ra_error_t *err, const char *what)
{
  return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "metats prior '%.120s', line %d: %s", x->path,
                       x->tline, what);
}

/* Expects the token key, then one value token into *val. */
static ra_err_t s_field (s_lex_t *x, const char *key, char **val, ra_error_t *err)
{
  char *t = s_next (x), msg[96];
  if (!t || strcmp (t, key) != 0) {
    snprintf (msg, sizeof msg, "expected the field '%s'", key);
    return s_bad (x, err, msg);
  }
  if (!(*val = s_next (x))) {
    snprintf (msg, sizeof msg, "field '%s' has no value", key);
    return s_bad (x, err, msg);
  }
  return RA_OK;
}

static ra_err_t s_num (s_lex_t *x, const char *t, const char *what, double *out, ra_error_t *err)
{
  char *end, msg[96];
  errno = 0;
  *out = t ? strtod (t, &end) : 0;
  if (!t || end == t || *end || !isfinite (*out)) {
    snprintf (msg, sizeof msg, "%s is not a finite number ('%.24s')", what, t ? t : "end of file");
    return s_bad (x, err, msg);
  }
  return RA_OK;
}

static ra_err_t s_int_field (s_lex_t *x, const char *key, long long lo, long long hi, long long *out,
                             ra_error_t *err)
{
  char *t, *end, msg[112];
  ra_err_t rc = s_field (x, key, &t, err);
  if (rc != RA_OK)
    return rc;
  errno = 0;
  *out = strtoll (t, &end, 10);
  if (end == t || *end || errno || *out < lo || *out > hi) {
    snprintf (msg, sizeof msg, "'%s' must be an integer in [%lld, %lld], got '%.24s'", key, lo, hi, t);
    return s_bad (x, err, msg);
  }
  return RA_OK;
}

static ra_err_t s_str_field (s_lex_t *x, const char *key, char *out, size_t cap, ra_error_t *err)
{
  char *t, msg[96];
  ra_err_t rc = s_field (x, key, &t, err);
  if (rc != RA_OK)
    return rc;
  if (strlen (t) >= cap) {
    snprintf (msg, sizeof msg, "'%s' is longer than %zu characters", key, cap - 1);
    return s_bad (x, err, msg);
  }
  snprintf (out, cap, "%s", strcmp (t, "-") ? t : "");
  return RA_OK;
}

static ra_err_t s_parse (s_lex_t *x, ra_metats_prior_t *q, ra_error_t *err)
{
  char *t = s_next (x);
  long long ver, U, F, D, n;
  double v, s0, sq;
  char env[64], credit[16], tasks[128];
  if (!t || strcmp (t, S_MAGIC) != 0)
    return s_bad (x, err, "not a metats prior (it starts with '" S_MAGIC " 1'; write one with "
                  "recarena-ab --learn-prior)");
  ra_err_t rc;
  if ((t = s_next (x)) == NULL || sscanf (t, "%lld", &ver) != 1 || ver != S_VERSION)
    return s_bad (x, err, "unsupported version (expected 1)");
  if ((rc = s_str_field (x, "env", env, sizeof env, err)) != RA_OK
      || (rc = s_str_field (x, "credit", credit, sizeof credit, err)) != RA_OK
      || (rc = s_str_field (x, "tasks", tasks, sizeof tasks, err)) != RA_OK
      || (rc = s_int_field (x, "user_dim", 1, S_MAX_DIM, &U, err)) != RA_OK
      || (rc = s_int_field (x, "cand_dim", 1, S_MAX_DIM, &F, err)) != RA_OK
      || (rc = s_int_field (x, "dim", 1, 3 * S_MAX_DIM, &D, err)) != RA_OK)
    return rc;
  if (credit[0] && strcmp (credit, "clicked") && strcmp (credit, "metric"))
    return s_bad (x, err, "'credit' must be clicked, metric or -");
  if (D != ra__phi_dim ((int) U, (int) F)) {
    char msg[112];
    snprintf (msg, sizeof msg, "dim %lld does not match user_dim %lld and cand_dim %lld (expected %d)",
              D, U, F, ra__phi_dim ((int) U, (int) F));
    return s_bad (x, err, msg);
  }
  const char *keys[3] = { "v", "sigma0", "sigma_q" };
  double *vals[3] = { &v, &s0, &sq };
  for (int j = 0; j < 3; j++) {
    if ((rc = s_field (x, keys[j], &t, err)) != RA_OK || (rc = s_num (x, t, keys[j], vals[j], err)) != RA_OK)
      return rc;
    if (!(*vals[j] > 0))
      return s_bad (x, err, "v, sigma0 and sigma_q must be positive");
  }
  if ((rc = s_int_field (x, "task_count", 0, INT64_MAX, &n, err)) != RA_OK)
    return rc;
  if ((size_t) (D * D + D) > x->left / 2)   /* each number takes two characters at least */
    return s_bad (x, err, "the file is too short for dim x dim precision values");
  if ((rc = ra_metats_prior_init (q, (int) U, (int) F, v, s0, sq, err)) != RA_OK)
    return rc;
  snprintf (q->env_id, sizeof q->env_id, "%s", env);
  snprintf (q->credit, sizeof q->credit, "%s", credit);
  snprintf (q->tasks, sizeof q->tasks, "%s", tasks);
  q->n_tasks = n;
  if (!(t = s_next (x)) || strcmp (t, "eta"))
    return s_bad (x, err, "expected the field 'eta'");
  for (long long j = 0; j < D; j++)
    if ((rc = s_num (x, s_next (x), "an eta value", &q->eta[j], err)) != RA_OK)
      return rc;
  if (!(t = s_next (x)) || strcmp (t, "precision"))
    return s_bad (x, err, "expected the field 'precision' after dim eta values");
  for (long long j = 0; j < D * D; j++)
    if ((rc = s_num (x, s_next (x), "a precision value", &q->prec[j], err)) != RA_OK)
      return rc;
  if (!(t = s_next (x)) || strcmp (t, "end") || s_next (x))
    return s_bad (x, err, "expected 'end' after dim x dim precision values, and nothing after it");
  for (long long a = 0; a < D; a++)
    for (long long b = 0; b < a; b++) {
      double p = q->prec[a * D + b], r = q->prec[b * D + a];
      if (fabs (p - r) > 1e-9 * (fabs (p) + fabs (r)))
        return s_bad (x, err, "the precision is not symmetric");
    }
  double *l = malloc ((size_t) (D * D) * sizeof *l);
  if (!l)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "metats prior: out of memory");
  bool pd = ra__cholesky (q->prec, (int) D, l);
  free (l);
  return pd ? RA_OK : s_bad (x, err, "the precision is not positive definite");
}

ra_err_t ra_metats_prior_load (const char *path, ra_metats_prior_t *q, ra_error_t *err)
{
  memset (q, 0, sizeof *q);
  FILE *f = fopen (path, "rb");
  if (!f)
    return ra_error_set (err, RA_ERR_IO, -1, "cannot read metats prior '%.160s': %s (learn one with "
                         "recarena-ab --learn-prior)", path, strerror (errno));
  char *text = NULL;
  size_t n = 0, cap = 0;
  ra_err_t rc = RA_OK;
  for (;;) {
    if (n + 4096 + 1 > cap) {
      if (cap >= S_MAX_FILE) {
        rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "metats prior '%.160s' is larger than 1 GiB",
                           path);
        break;
      }
      cap = cap ? 2 * cap : 65536;
      char *grown = realloc (text, cap);
      if (!grown) {
        rc = ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory reading '%.160s'", path);
        break;
      }
      text = grown;
    }
    size_t got = fread (text + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0)
      break;
  }
  if (rc == RA_OK && ferror (f))
    rc = ra_error_set (err, RA_ERR_IO, -1, "cannot read metats prior '%.160s'", path);
  fclose (f);
  if (rc == RA_OK) {
    text[n] = 0;
    if (strlen (text) != n)
      rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "metats prior '%.160s' is not a text file", path);
  }
  if (rc == RA_OK) {
    s_lex_t x = { .p = text, .line = 1, .tline = 1, .left = n, .path = path };
    rc = s_parse (&x, q, err);
  }
  free (text);
  if (rc != RA_OK)
    ra_metats_prior_fini (q);
  return rc;
}
