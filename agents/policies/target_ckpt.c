/*  agents/policies/target_ckpt.c - the target policy's checkpoints (docs/agents.md, "Adapting the
    target"): one safetensors file of the parameters with the settings an arm plays by as
    metadata. A load checks the file against the policy before it sets anything; the settings and
    the architecture of a file are read from its header alone.                                 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/policies/target_int.h"

/* Metadata keys of the target in a checkpoint (docs/agents.md, "Adapting the target"). */
enum { S_META_SCALE, S_META_LR, S_META_OPT, S_META_RESET, S_META_ADAPT, S_META_ROLLOUT, S_META_TEMP,
       S_META_SLOT, S_META_SLOT_FB, S_META_PARAMS, S_META_CONTEXT, S_META_CONTEXT_RESIDUAL, S_META_SCORER_YIELD,
       S_META_CONTEXT_TS, S_META_CONTEXT_SESSION, S_META_CONTEXT_BASELINE,
       S_META_CONTEXT_HANDOVER, S_META_CONTEXT_KERNEL, S_META_N };
static const char *const s_meta_keys[S_META_N] = {
  "target.reward_scale", "target.lr", "target.optimizer", "target.reset_optimizer",
  "target.adapt_updates", "target.rollout", "target.temp", "target.slot_credit",
  "target.slot_feedback", "target.adapt_params", "target.context", "target.context_residual",
  "target.scorer_yield", "target.context_ts", "target.context_session", "target.context_baseline",
  "target.context_handover", "target.context_kernel",
};

ra_err_t ra_target_save (const ra_target_t *t, const char *path, ra_error_t *err)
{
  /* reward scales: P numbers separated by commas, %.9g (a float round-trips) */
  size_t cap = (size_t) t->P * 18 + 1;
  char *scales = malloc (cap), lr[32], adapt[24], rollout[24], temp[32], slot[32], slot_fb[24], context[32],
       ts[32], session[32], baseline[32], handover[32], kernel[32];
  if (!scales)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "target: out of memory");
  size_t len = 0;
  for (int p = 0; p < t->P; p++)
    len += (size_t) snprintf (scales + len, cap - len, "%s%.9g", p ? "," : "", (double) t->reward_scale[p]);
  snprintf (lr, sizeof lr, "%.9g", (double) t->cfg.lr);
  snprintf (adapt, sizeof adapt, "%d", t->cfg.adapt_updates);
  snprintf (rollout, sizeof rollout, "%d", t->cfg.rollout);
  snprintf (temp, sizeof temp, "%.9g", (double) t->cfg.temp);
  snprintf (slot, sizeof slot, "%.9g", (double) t->cfg.slot_credit);
  snprintf (slot_fb, sizeof slot_fb, "%d", t->cfg.slot_feedback);
  snprintf (context, sizeof context, "%.9g", (double) t->cfg.context);
  snprintf (ts, sizeof ts, "%.9g", (double) t->cfg.context_ts);
  snprintf (session, sizeof session, "%.9g", (double) t->cfg.context_session);
  snprintf (baseline, sizeof baseline, "%.9g", (double) t->cfg.context_baseline);
  snprintf (handover, sizeof handover, "%.9g", (double) t->cfg.context_handover);
  snprintf (kernel, sizeof kernel, "%.9g", (double) t->cfg.context_kernel);
  const char *vals[S_META_N] = { scales, lr, t->cfg.sgd ? "sgd" : "adam",
                                 t->cfg.reset_optimizer ? "true" : "false", adapt, rollout, temp, slot, slot_fb,
                                 t->cfg.adapt_head ? "head" : "all", context,
                                 t->cfg.context_residual ? "true" : "false",
                                 t->cfg.scorer_yield ? "true" : "false", ts, session, baseline, handover, kernel };
  /* the keys from context_residual on only when on: a policy without T9-T15 writes the bytes it
     wrote before they existed, and recarena-ab keys an arm's streams by its checkpoint's bytes
     (docs/agents.md 2.1) */
  const char *keys[S_META_N], *kept[S_META_N];
  int n_meta = 0;
  for (int i = 0; i < S_META_N; i++)
    if (i < S_META_CONTEXT_RESIDUAL || (strcmp (vals[i], "false") && strcmp (vals[i], "0"))) {
      keys[n_meta] = s_meta_keys[i];
      kept[n_meta++] = vals[i];
    }
  ra_err_t rc = ra_nn_checkpoint_save_meta (t->params, path, keys, kept, n_meta, err);
  free (scales);
  return rc;
}

/* The little-endian header length at the start of a checkpoint. */
static uint64_t s_header_len (const unsigned char *b)
{
  uint64_t len = 0;
  for (int i = 7; i >= 0; i--)
    len = len << 8 | b[i];
  return len;
}

/* The JSON header of a checkpoint whose first n bytes are b (read from path) into *out (malloc'ed,
   NUL-terminated), checked as a load checks it (no key twice: s_meta takes the first), or an
   error with *out NULL. */
static ra_err_t s_header (const char *b, size_t n, const char *path, char **out, ra_error_t *err)
{
  uint64_t len = n >= 8 ? s_header_len ((const unsigned char *) b) : 0;
  *out = len > 0 && len <= n - 8 ? malloc (len + 1) : NULL;
  if (!*out)
    return ra_error_set (err, RA_ERR_IO, -1, "target: '%s' has no readable safetensors header", path);
  memcpy (*out, b + 8, len);
  (*out)[len] = 0;
  ra_err_t rc = ra_nn_checkpoint_check_header (*out, len, path, err);
  if (rc != RA_OK) {
    free (*out);
    *out = NULL;
  }
  return rc;
}

/* s_header of the checkpoint at path, reading no more of the file than its header. */
static ra_err_t s_read_header (const char *path, char **out, ra_error_t *err)
{
  *out = NULL;
  FILE *f = fopen (path, "rb");
  if (!f)
    return ra_error_set (err, RA_ERR_IO, -1, "target: cannot open checkpoint '%s'", path);
  unsigned char len8[8];
  char *b = NULL;
  size_t n = fread (len8, 1, 8, f);
  uint64_t len = n == 8 ? s_header_len (len8) : 0;
  if (n == 8 && len <= (64u << 20) && (b = malloc (8 + len))) {
    memcpy (b, len8, 8);
    n += fread (b + 8, 1, len, f);
  }
  fclose (f);
  ra_err_t rc = s_header (b, b ? n : 0, path, out, err);
  free (b);
  return rc;
}

/* The string value of metadata key in hdr (written by ra_target_save: no escapes) into buf:
   1, 0 when absent, -1 (buf "") when unterminated or longer than cap - 1: damage, not absence
   (an absent setting silently keeps the default). */
static int s_meta (const char *hdr, const char *key, char *buf, size_t cap)
{
  char pat[64];
  snprintf (pat, sizeof pat, "\"%s\":\"", key);
  const char *m = strstr (hdr, "\"__metadata__\"");
  const char *v = m ? strstr (m, pat) : NULL;
  buf[0] = 0;
  if (!v)
    return 0;
  v += strlen (pat);
  const char *e = strchr (v, '"');
  if (!e || (size_t) (e - v) >= cap)
    return -1;
  memcpy (buf, v, (size_t) (e - v));
  buf[e - v] = 0;
  return 1;
}

/* Finds `"<name>": {... "shape": [a, b` in a safetensors header; false if absent. */
static bool s_header_shape (const char *hdr, const char *name, long *a, long *b)
{
  char key[RA_NN_NAME_MAX + 4];
  snprintf (key, sizeof key, "\"%s\"", name);
  const char *p = strstr (hdr, key);
  if (!p)
    return false;
  const char *s = strstr (p, "\"shape\"");
  const char *e = strchr (p, '}');
  if (!s || (e && s > e) || !(s = strchr (s, '[')))
    return false;
  return sscanf (s, "[%ld , %ld", a, b) == 2;
}

/* The P reward scales stored in hdr (as ra_target_save writes them) into scale; absent: the
   cfg's. RA_ERR_BAD_CONFIG naming the key when damaged. */
static ra_err_t s_load_scales (const ra_target_t *t, const char *hdr, const char *path, float *scale,
                               ra_error_t *err)
{
  size_t cap = (size_t) t->P * 40 + 1;
  char *buf = malloc (cap);
  if (!buf)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "target: out of memory");
  ra_err_t rc = RA_OK;
  int got = s_meta (hdr, s_meta_keys[S_META_SCALE], buf, cap);
  if (got) {
    const char *q = buf;
    for (int p = 0; p < t->P && rc == RA_OK; p++) {
      char *end;
      double x = strtod (q, &end);
      if (got < 0 || end == q || !(x >= 0 && x < 1e30) || (*end != ',' && *end != 0)
          || (p + 1 < t->P) != (*end == ','))
        rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: '%s': target.reward_scale '%.64s' is not "
                           "%d non-negative numbers separated by commas", path, buf, t->P);
      else
        scale[p] = (float) x;
      q = end + (*end == ',');
    }
  } else {
    for (int p = 0; p < t->P; p++)
      scale[p] = t->cfg.reward_scale; /* an older file: measure it again (0) or the cfg's */
  }
  free (buf);
  return rc;
}

/* Everything in the file is checked before anything is set: a refused file leaves t as it was. */
ra_err_t ra_target_load (ra_target_t *t, const char *path, ra_error_t *err)
{
  char *file, *hdr;
  size_t n;
  ra_err_t rc = ra_nn_checkpoint_read (path, &file, &n, err); /* once: the header and the tensors
                                                                  of one file */
  if (rc != RA_OK)
    return rc;
  if ((rc = s_header (file, n, path, &hdr, err)) != RA_OK) {
    free (file);
    return rc;
  }
  float *scale = malloc (sizeof *scale * (size_t) t->P);
  if (!scale) {
    free (hdr);
    free (file);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "target: out of memory");
  }
  /* the tensor table alone would load a file with the affinity head into a policy without one,
     dropping the head in silence */
  long a, b;
  bool affinity = s_header_shape (hdr, "a.w", &a, &b);
  char v[32], *end;
  int got = s_meta (hdr, s_meta_keys[S_META_CONTEXT], v, sizeof v);
  double ctx = got > 0 ? strtod (v, &end) : 0;
  bool context = ctx > 0;
  if (got < 0 || (got > 0 && (end == v || *end || !(ctx >= 0 && ctx <= RA_TARGET_CONTEXT_MAX))))
    rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: '%s': %s '%s' is not in [0, %g]", path,
                       s_meta_keys[S_META_CONTEXT], v, (double) RA_TARGET_CONTEXT_MAX);
  else if (affinity != (t->aff_w >= 0))
    rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                       "target: '%s' %s the affinity head (tensor a.w) and this policy %s (affinity = %s)",
                       path, affinity ? "has" : "has not", affinity ? "has not" : "has",
                       affinity ? "false" : "true");
  else if (context != (t->cfg.context > 0)) /* T8 changes the networks' input width */
    rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                       "target: '%s' %s trained with the task context and this policy %s (context = %g)", path,
                       context ? "was" : "was not", context ? "has none" : "has it", (double) t->cfg.context);
  if (rc == RA_OK)
    rc = s_load_scales (t, hdr, path, scale, err);
  if (rc == RA_OK)
    rc = ra_nn_checkpoint_load_bytes (t->params, file, n, path, err);
  if (rc == RA_OK)
    memcpy (t->reward_scale, scale, sizeof *scale * (size_t) t->P);
  free (scale);
  free (hdr);
  free (file);
  return rc;
}

/* A context-less file into a policy with the context (docs/agents.md, "Task context"): the file is
   loaded into a policy of t's architecture without the context (so every check of ra_target_load
   applies), then each tensor is copied into t; the three that read the user row (the first layers
   of the scorer and the value head, the affinity head's matrix) gain the F columns of v(u) after
   the U of u: 0 in the two first layers, the identity block ra_target_new starts the affinity
   head with. While the context is empty (v = 0) t scores and values as the file does. */
ra_err_t ra_target_load_adding_context (ra_target_t *t, const char *path, ra_error_t *err)
{
  if (!(t->cfg.context > 0))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: '%s': adding the task context needs a policy "
                         "with context > 0", path);
  ra_target_cfg_t c = t->cfg;
  c.population = 1;
  c.context = 0;
  c.context_residual = c.scorer_yield = false;
  c.context_ts = c.context_session = c.context_baseline = c.context_handover = c.context_kernel = 0;
  ra_target_t *src = NULL;
  ra_err_t rc = ra_target_new (t->be, &c, &src, err);
  if (rc == RA_OK)
    rc = ra_target_load (src, path, err);
  float *from = NULL, *to = NULL;
  if (rc == RA_OK && (!(from = malloc (sizeof *from * ra_target_num_params (src)))
                      || !(to = malloc (sizeof *to * ra_target_num_params (t)))))
    rc = ra_error_set (err, RA_ERR_NOMEM, -1, "target: out of memory");
  if (rc == RA_OK) {
    ra_target_get_params (src, from);
    ra_target_get_params (t, to); /* the affinity head's identity block is already in place */
    const int U = t->cfg.user_dim, F = t->cfg.cand_dim;
    for (int i = 0; i < t->params->ntensors; i++) {
      const ra_nn_tensor_t *a = &src->params->tensors[i], *b = &t->params->tensors[i];
      bool reads_u = i == t->pi.w[0] || i == t->vf.w[0] || i == t->aff_w;
      size_t rows = reads_u ? (size_t) a->shape[0] : 1, wa = a->numel / rows, wb = b->numel / rows;
      for (int p = 0; p < t->P; p++)
        for (size_t r = 0; r < rows; r++) {
          const float *x = from + a->offset + r * wa;
          float *y = to + (size_t) p * t->params->n + b->offset + r * wb;
          if (!reads_u) {
            memcpy (y, x, sizeof *y * wa);
            continue;
          }
          memcpy (y, x, sizeof *y * (size_t) U);
          if (i != t->aff_w)
            memset (y + U, 0, sizeof *y * (size_t) F);
          memcpy (y + U + F, x + U, sizeof *y * (wa - (size_t) U)); /* the candidate's columns */
        }
    }
    ra_target_set_params (t, to);
    for (int p = 0; p < t->P; p++)
      t->reward_scale[p] = src->reward_scale[0];
  }
  free (from);
  free (to);
  ra_target_destroy (&src);
  return rc;
}

ra_err_t ra_target_checkpoint_settings (const char *path, ra_target_cfg_t *out, ra_error_t *err)
{
  char *hdr, v[64];
  ra_err_t rc = s_read_header (path, &hdr, err);
  if (rc != RA_OK)
    return rc;
  ra_target_cfg_t c = *out, *cfg = &c; /* *out only once every setting is read */
  char *end;
  /* the numbers, each in its range (absent: untouched) */
  static const int fkey[9] = { S_META_LR, S_META_TEMP, S_META_SLOT, S_META_CONTEXT, S_META_CONTEXT_TS,
                               S_META_CONTEXT_SESSION, S_META_CONTEXT_BASELINE, S_META_CONTEXT_HANDOVER,
                               S_META_CONTEXT_KERNEL };
  static const double flo[9] = { 0, RA_TARGET_TEMP_MIN, 0, 0, 0, 0, 0, 0, 0 },
                      fhi[9] = { 10, RA_TARGET_TEMP_MAX, RA_TARGET_SLOT_CREDIT_MAX, RA_TARGET_CONTEXT_MAX,
                                 RA_TARGET_CONTEXT_TS_MAX, RA_TARGET_CONTEXT_SESSION_MAX, 1,
                                 RA_TARGET_CONTEXT_HANDOVER_MAX, RA_TARGET_CONTEXT_KERNEL_MAX };
  float *fdst[9] = { &cfg->lr, &cfg->temp, &cfg->slot_credit, &cfg->context, &cfg->context_ts,
                     &cfg->context_session, &cfg->context_baseline, &cfg->context_handover,
                     &cfg->context_kernel };
  for (int j = 0; j < 9 && rc == RA_OK; j++)
    if (s_meta (hdr, s_meta_keys[fkey[j]], v, sizeof v)) {
      double x = strtod (v, &end);
      if (end == v || *end || !(x >= flo[j] && x <= fhi[j]))
        rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: '%s': %s '%s' is not in [%g, %g]", path,
                           s_meta_keys[fkey[j]], v, flo[j], fhi[j]);
      else
        *fdst[j] = (float) x;
    }
  /* the two-word settings: the flag is set by the second word */
  static const int wkey[4] = { S_META_OPT, S_META_PARAMS, S_META_CONTEXT_RESIDUAL, S_META_SCORER_YIELD };
  static const char *const wfirst[4] = { "adam", "all", "false", "false" },
                           *const wsecond[4] = { "sgd", "head", "true", "true" };
  bool *wdst[4] = { &cfg->sgd, &cfg->adapt_head, &cfg->context_residual, &cfg->scorer_yield };
  for (int j = 0; j < 4 && rc == RA_OK; j++)
    if (s_meta (hdr, s_meta_keys[wkey[j]], v, sizeof v)) {
      if (strcmp (v, wfirst[j]) && strcmp (v, wsecond[j]))
        rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: '%s': %s '%s' is not %s or %s", path,
                           s_meta_keys[wkey[j]], v, wfirst[j], wsecond[j]);
      else
        *wdst[j] = !strcmp (v, wsecond[j]);
    }
  if (rc == RA_OK && s_meta (hdr, s_meta_keys[S_META_RESET], v, sizeof v)) {
    if (strcmp (v, "true") && strcmp (v, "false"))
      rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: '%s': %s '%s' is not true or false", path,
                         s_meta_keys[S_META_RESET], v);
    else
      cfg->reset_optimizer = !strcmp (v, "true");
  }
  static const int key[3] = { S_META_ADAPT, S_META_ROLLOUT, S_META_SLOT_FB };
  static const int lo[3] = { 0, 1, 0 }, hi[3] = { 1000000000, 4096, RA_TARGET_SLOT_FEEDBACK_MAX };
  int *dst[3] = { &cfg->adapt_updates, &cfg->rollout, &cfg->slot_feedback };
  for (int j = 0; j < 3 && rc == RA_OK; j++)
    if (s_meta (hdr, s_meta_keys[key[j]], v, sizeof v)) {
      long x = strtol (v, &end, 10);
      if (end == v || *end || x < lo[j] || x > hi[j])
        rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: '%s': %s '%s' is not in [%d, %d]", path,
                           s_meta_keys[key[j]], v, lo[j], hi[j]);
      else
        *dst[j] = (int) x;
    }
  if (rc == RA_OK)
    *out = c;
  free (hdr);
  return rc;
}

ra_err_t ra_target_checkpoint_arch (const char *path, int *hidden, int *layers, bool *affinity, ra_error_t *err)
{
  char *hdr;
  ra_err_t rc = s_read_header (path, &hdr, err);
  if (rc != RA_OK)
    return rc;
  long a, b, width = 0;
  int n = 0;
  char name[32], reps[16];
  /* a population's tensors lead with the replica dimension: the width is the next one */
  bool lead = s_meta (hdr, "replicas", reps, sizeof reps) > 0 && strcmp (reps, "1") != 0;
  for (;; n++) {
    snprintf (name, sizeof name, "l%d.w", n);
    if (!s_header_shape (hdr, name, &a, &b))
      break;
    if (n == 0)
      width = lead ? b : a;
  }
  if (n < 1 || n - 1 > RA_TARGET_MAX_LAYERS)
    goto bad;
  if (n > 1 && (width < 1 || width > 4096)) { /* the range of cfg "hidden": a damaged shape is not
                                                 a width to allocate */
    rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "target: '%s': tensor l0.w has %ld rows, not a hidden "
                       "width in [1, 4096]", path, width);
    goto done;
  }
  *layers = n - 1;
  *hidden = n == 1 ? 64 : (int) width; /* no hidden layer: width unused */
  if (affinity)
    *affinity = s_header_shape (hdr, "a.w", &a, &b);
  goto done;
bad:
  rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                     "target: '%s' is not a target-policy checkpoint (no scorer tensors l0.w...)", path);
done:
  free (hdr);
  return rc;
}
