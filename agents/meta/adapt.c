/*  agents/meta/adapt.c - the adaptation operator, frozen evaluation and checkpoints carrying the
    adaptation settings (see adapt.h; docs/meta.md 1).

    Reaches into the target's internals (target_int.h) for two things the inner loop must reset
    per adaptation: the reward scale (measured again on each task) and the current observation the
    evaluation loop acts on; the optimiser state is reset through the public parameter buffer. */
#include "agents/meta/adapt.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/policies/target_int.h"

void ra_meta_adapt_cfg_default (ra_meta_adapt_cfg_t *a)
{
  *a = (ra_meta_adapt_cfg_t) { .inner_lr = 3e-3f, .steps = 5, .rollout = 16, .head_only = false };
}

void ra_meta_adapt_mask (const ra_target_t *t, bool head_only, uint8_t *mask)
{
  if (head_only)
    ra_target_head_mask (t, mask);
  else
    memset (mask, 1, t->params->n);
}

ra_err_t ra_meta_set_block_tasks (ra_rollout_t *src, int P, int N, const char *split,
                                  const int64_t *ids, ra_error_t *err)
{
  uint8_t *mask = calloc ((size_t) P * N, 1);
  if (!mask)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "meta: out of memory");
  ra_err_t rc = RA_OK;
  for (int r = 0; rc == RA_OK && r < P; r++) {
    bool first = true; /* replicas on the same task share one set_task */
    for (int q = 0; q < r; q++)
      first &= ids[q] != ids[r];
    if (!first)
      continue;
    for (int q = 0; q < P; q++)
      memset (mask + (size_t) q * N, ids[q] == ids[r], (size_t) N);
    rc = ra_rollout_set_task (src, split, ids[r], mask, err);
  }
  free (mask);
  return rc;
}

/* A fresh inner optimiser: zero Adam moments and step counts, the inner lr, the reward scale of
   the config (0: measured again from the first rollout). */
static void s_fresh_optimiser (ra_target_t *w, float lr)
{
  ra_nn_params_t *p = w->params;
  size_t all = p->n * (size_t) p->replicas;
  if (p->adam_m)
    ra_nn_zero (p->be, p->adam_m, all);
  if (p->adam_v)
    ra_nn_zero (p->be, p->adam_v, all);
  if (p->step)
    ra_nn_zero (p->be, (float *) p->step, (size_t) p->replicas); /* int32 zeros are float zeros */
  for (int r = 0; r < w->P; r++) {
    ra_target_set_lr (w, r, lr);
    w->reward_scale[r] = w->cfg.reward_scale;
  }
}

/* Head only: entries outside the mask go back to theta. */
static void s_restore_body (ra_target_t *w, const float *theta, const uint8_t *mask, float *scratch)
{
  if (!mask)
    return;
  size_t n = w->params->n;
  ra_target_get_params (w, scratch);
  for (int r = 0; r < w->P; r++)
    for (size_t j = 0; j < n; j++)
      if (!mask[j])
        scratch[r * n + j] = theta[r * n + j];
  ra_target_set_params (w, scratch);
}

ra_err_t ra_meta_adapt (ra_target_t *w, const float *theta, const uint8_t *mask, ra_rollout_t *src,
                        const ra_meta_adapt_cfg_t *a, const uint64_t *seeds, uint64_t rng_seed,
                        ra_target_stats_t *stats, float *scratch, ra_error_t *err)
{
  return ra_meta_adapt_at (w, 0, theta, mask, src, a, seeds, rng_seed, stats, scratch, err);
}

ra_err_t ra_meta_adapt_at (ra_target_t *w, int64_t first, const float *theta, const uint8_t *mask,
                           ra_rollout_t *src, const ra_meta_adapt_cfg_t *a, const uint64_t *seeds,
                           uint64_t rng_seed, ra_target_stats_t *stats, float *scratch, ra_error_t *err)
{
  if (a->rollout != w->cfg.rollout)
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "meta: adaptation rollout %d but the policy was built for %d",
                         a->rollout, w->cfg.rollout);
  ra_target_set_params (w, theta);
  s_fresh_optimiser (w, a->inner_lr);
  for (int r = 0; r < w->P; r++)
    ra_nn_rng_init (ra_target_rng (w, r), rng_seed, 1 + (uint64_t) (first + r));
  ra_target_reset_context (w); /* a task's adaptation starts from its own feedback only */
  ra_err_t rc = ra_target_begin_rollout (w, src, seeds, err);
  for (int u = 0; rc == RA_OK && u < a->steps; u++)
    rc = ra_meta_adapt_more (w, theta, mask, src, stats, scratch, err);
  return rc;
}

ra_err_t ra_meta_adapt_more (ra_target_t *w, const float *theta, const uint8_t *mask,
                             ra_rollout_t *src, ra_target_stats_t *stats, float *scratch,
                             ra_error_t *err)
{
  ra_err_t rc = ra_target_train_rollout (w, src, stats, err);
  if (rc == RA_OK)
    s_restore_body (w, theta, mask, scratch);
  return rc;
}

ra_err_t ra_meta_evaluate (ra_target_t *w, ra_rollout_t *src, const uint64_t *seeds, int max_steps,
                           double *ret, int64_t *steps, ra_error_t *err)
{
  return ra_meta_evaluate_as (w, src, seeds, max_steps, RA_META_ACT_GREEDY, 0, 0, ret, steps, err);
}

ra_err_t ra_meta_evaluate_as (ra_target_t *w, ra_rollout_t *src, const uint64_t *seeds, int max_steps,
                              ra_meta_act_t how, int64_t first, uint64_t rng_seed, double *ret,
                              int64_t *steps, ra_error_t *err)
{
  bool greedy = how == RA_META_ACT_GREEDY;
  ra_nn_rng_t *saved = NULL;
  if (!greedy) { /* the evaluation's own streams; the adaptation's are restored at the end */
    if (!(saved = malloc ((size_t) w->P * sizeof *saved)))
      return ra_error_set (err, RA_ERR_NOMEM, -1, "meta: out of memory for %d sampling streams", w->P);
    for (int r = 0; r < w->P; r++) {
      saved[r] = *ra_target_rng (w, r);
      ra_nn_rng_init (ra_target_rng (w, r), rng_seed, 1 + (uint64_t) (first + r));
    }
  }
  int P = w->P, N = w->cfg.num_envs, n = P * N;
  /* scratch from the policy's own buffers: ep_ret [P T N] doubles, h_done [P T N] bytes */
  double *acc = w->ep_ret;
  uint8_t *ended = w->h_done;
  ra_target_clear_rollout (w);
  w->have_obs = false;
  memset (acc, 0, (size_t) n * sizeof (double));
  memset (ended, 0, (size_t) n);
  ra_err_t rc = ra_rollout_reset (src, seeds, err);
  ra_target_end_all_sessions (w); /* the adaptation's users do not run on into these episodes */
  int left = n;
  for (int s = 0; rc == RA_OK && left > 0 && s < max_steps; s++) {
    ra_target_act (w, &src->obs, greedy, w->h_act);
    ra_target_clear_rollout (w);
    if ((rc = ra_rollout_step (src, w->h_act, err)) != RA_OK)
      break;
    ra_target_end_sessions (w, src->done, n); /* T12: an ended env's next user starts afresh */
    if (steps)
      *steps += n;
    for (int i = 0; i < n; i++) {
      if (ended[i])
        continue;
      acc[i] += src->reward[i];
      if (src->done[i]) {
        ended[i] = 1;
        left--;
      }
    }
  }
  for (int r = 0; r < P; r++) {
    double s = 0;
    for (int i = 0; i < N; i++)
      s += acc[r * N + i];
    ret[r] = s / N;
  }
  memset (acc, 0, (size_t) n * sizeof (double));
  ra_target_clear_rollout (w);
  for (int r = 0; saved && r < w->P; r++)
    *ra_target_rng (w, r) = saved[r];
  free (saved);
  return rc;
}

/* ---------------------------------------------------------------------------- checkpoints */

/* The whole checkpoint into *buf, NUL-terminated (the header is searched as text), through the nn
   library's one-read reader: longer than the 8-byte header length or an error naming path. */
static ra_err_t s_read_all (const char *path, char **buf, size_t *len, ra_error_t *err)
{
  ra_err_t rc = ra_nn_checkpoint_read (path, buf, len, err);
  if (rc != RA_OK)
    return rc;
  (*buf)[*len] = 0; /* the reader allocates one byte past the data */
  if (*len > 8)
    return RA_OK;
  free (*buf);
  *buf = NULL;
  return ra_error_set (err, RA_ERR_IO, -1, "meta: checkpoint '%s' is %zu bytes, too short to be one", path,
                       *len);
}

static uint64_t s_hlen (const char *file)
{
  const unsigned char *b = (const unsigned char *) file;
  uint64_t h = 0;
  for (int i = 7; i >= 0; i--)
    h = h << 8 | b[i];
  return h;
}

ra_err_t ra_meta_ckpt_save (const ra_target_t *t, const char *path, const ra_meta_adapt_cfg_t *a,
                            const char *algo, const ra_meta_resume_t *at, ra_error_t *err)
{
  ra_err_t rc = ra_target_save (t, path, err);
  if (rc != RA_OK)
    return rc;
  char *buf = NULL;
  size_t len = 0;
  if ((rc = s_read_all (path, &buf, &len, err)) != RA_OK)
    return rc;
  uint64_t h = s_hlen (buf);
  const char *key = "\"__metadata__\":{";
  char *meta = h + 8 <= len ? strstr (buf + 8, key) : NULL;
  if (!meta || meta >= buf + 8 + h) {
    free (buf);
    return ra_error_set (err, RA_ERR_IO, -1, "meta: '%s' has no metadata block to extend", path);
  }
  char add[768];
  int al = snprintf (add, sizeof add,
                     "\"meta_inner_lr\":\"%.9g\",\"meta_inner_steps\":\"%d\",\"meta_rollout\":\"%d\","
                     "\"meta_adapt_params\":\"%s\",\"meta_algo\":\"%s\",",
                     (double) a->inner_lr, a->steps, a->rollout, a->head_only ? "head" : "all",
                     algo ? algo : "none");
  /* the training state: its keys join the metadata, its moments go after the data as two
     more tensors, listed before "__metadata__" */
  char tens[512];
  int tl = 0;
  size_t data = len - 8 - h, mb = at ? at->n * sizeof (float) : 0;
  if (at) {
    al += snprintf (add + al, sizeof add - (size_t) al,
                    "\"meta_iter\":\"%lld\",\"meta_env_steps\":\"%lld\",\"meta_rng_counter\":\"%llu\","
                    "\"meta_adam_t\":\"%lld\",", (long long) at->iter, (long long) at->env_steps,
                    (unsigned long long) at->rng_counter, (long long) at->adam_t);
    tl = snprintf (tens, sizeof tens,
                   "\"meta.adam_m\":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":[%zu,%zu]},"
                   "\"meta.adam_v\":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":[%zu,%zu]},",
                   at->n, data, data + mb, at->n, data + mb, data + 2 * mb);
  }
  /* new header: the old one up to "__metadata__", the new tensors, up to the metadata's '{', the
     new keys, the rest without its trailing padding, padded again to a multiple of 8 */
  size_t tat = (size_t) (meta - buf) - 8;
  size_t kat = tat + strlen (key);
  size_t rest = h;
  while (rest > 0 && buf[8 + rest - 1] == ' ')
    rest--;
  size_t nh = rest + (size_t) tl + (size_t) al;
  size_t pad = (8 - nh % 8) % 8;
  char tmp[4096];
  snprintf (tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen (tmp, "wb");
  if (!f) {
    free (buf);
    return ra_error_set (err, RA_ERR_IO, -1, "meta: cannot write '%s': %s", tmp, strerror (errno));
  }
  unsigned char l8[8];
  uint64_t total = nh + pad;
  for (int i = 0; i < 8; i++)
    l8[i] = (unsigned char) (total >> (8 * i));
  bool ok = fwrite (l8, 1, 8, f) == 8 && fwrite (buf + 8, 1, tat, f) == tat
            && fwrite (tens, 1, (size_t) tl, f) == (size_t) tl
            && fwrite (buf + 8 + tat, 1, kat - tat, f) == kat - tat
            && fwrite (add, 1, (size_t) al, f) == (size_t) al
            && fwrite (buf + 8 + kat, 1, rest - kat, f) == rest - kat;
  for (size_t i = 0; ok && i < pad; i++)
    ok = fputc (' ', f) != EOF;
  ok = ok && fwrite (buf + 8 + h, 1, data, f) == data;
  if (at) /* little-endian F32, as the data before (nn/checkpoint.c refuses other hosts) */
    ok = ok && fwrite (at->adam_m, sizeof (float), at->n, f) == at->n
         && fwrite (at->adam_v, sizeof (float), at->n, f) == at->n;
  ok = (fclose (f) == 0) && ok;
  free (buf);
  if (!ok || rename (tmp, path) != 0) {
    remove (tmp);
    return ra_error_set (err, RA_ERR_IO, -1, "meta: cannot write '%s'", path);
  }
  return RA_OK;
}

/* The whole file into *buf (NUL-terminated, *len bytes) and its safetensors header length into
   *h; an error (nothing to free) when it cannot be read, the header does not fit or a load would
   refuse the header (a key twice: s_get takes the first). */
static ra_err_t s_read_checkpoint (const char *path, char **buf, size_t *len, uint64_t *h,
                                   ra_error_t *err)
{
  ra_err_t rc = s_read_all (path, buf, len, err);
  if (rc != RA_OK)
    return rc;
  *h = s_hlen (*buf);
  if (*h > *len - 8) { /* not *h + 8 > *len: a huge length wraps past the test */
    free (*buf);
    *buf = NULL;
    return ra_error_set (err, RA_ERR_IO, -1, "meta: '%s' is not a safetensors checkpoint", path);
  }
  if ((rc = ra_nn_checkpoint_check_header (*buf + 8, *h, path, err)) != RA_OK) {
    free (*buf);
    *buf = NULL;
  }
  return rc;
}

/* The string value of "key":"value" inside the header, into out; false if absent. Unterminated
   or longer than cap - 1 is damage, not absence: true with out "", which no reader accepts. */
static bool s_get (const char *hdr, const char *key, char *out, size_t cap)
{
  char k[64];
  snprintf (k, sizeof k, "\"%s\":\"", key);
  const char *p = strstr (hdr, k);
  out[0] = 0;
  if (!p)
    return false;
  p += strlen (k);
  const char *e = strchr (p, '"');
  if (!e || (size_t) (e - p) >= cap)
    return true;
  memcpy (out, p, (size_t) (e - p));
  out[e - p] = 0;
  return true;
}

/* A decimal integer in [lo, hi] and nothing else (atoi reads "5x" as 5 and "x" as 0). */
static bool s_int (const char *s, long long lo, long long hi, long long *out)
{
  char *end;
  errno = 0;
  long long v = strtoll (s, &end, 10);
  if (end == s || *end || errno || v < lo || v > hi)
    return false;
  *out = v;
  return true;
}

ra_err_t ra_meta_ckpt_read (const char *path, ra_meta_adapt_cfg_t *a, bool *found, char *algo,
                            size_t cap, ra_error_t *err)
{
  *found = false;
  char *buf = NULL;
  size_t len = 0;
  uint64_t h = 0;
  ra_err_t rc = s_read_checkpoint (path, &buf, &len, &h, err);
  if (rc != RA_OK)
    return rc;
  buf[8 + h] = 0; /* the header alone */
  const char *hdr = buf + 8;
  char lr[32], k[32], T[32], pa[16];
  if (s_get (hdr, "meta_inner_lr", lr, sizeof lr) && s_get (hdr, "meta_inner_steps", k, sizeof k)
      && s_get (hdr, "meta_rollout", T, sizeof T) && s_get (hdr, "meta_adapt_params", pa, sizeof pa)) {
    /* the ranges recarena-meta's --inner-lr, --inner-steps and --rollout-len accept */
    char *end;
    long long steps = 0, rollout = 0;
    double ilr = strtod (lr, &end);
    if (end == lr || *end || !(ilr >= 1e-9 && ilr <= 10) || !s_int (k, 0, 1000, &steps)
        || !s_int (T, 1, 4096, &rollout) || (strcmp (pa, "head") && strcmp (pa, "all"))) {
      free (buf);
      return ra_error_set (err, RA_ERR_IO, -1, "meta: '%s' has bad adaptation settings (meta_inner_lr '%s' in "
                           "[1e-9, 10], meta_inner_steps '%s' in [0, 1000], meta_rollout '%s' in [1, 4096], "
                           "meta_adapt_params '%s' all or head)", path, lr, k, T, pa);
    }
    ra_meta_adapt_cfg_t v = { .inner_lr = (float) ilr, .steps = (int) steps, .rollout = (int) rollout,
                              .head_only = !strcmp (pa, "head") };
    *a = v;
    *found = true;
    if (algo && cap && !s_get (hdr, "meta_algo", algo, cap))
      algo[0] = 0;
  }
  free (buf);
  return RA_OK;
}

/* The data offsets [a, b) of tensor name (one-dimensional F32) in hdr; false if absent or
   malformed. */
static bool s_tensor_span (const char *hdr, const char *name, size_t *a, size_t *b)
{
  char k[64];
  snprintf (k, sizeof k, "\"%s\":{", name);
  const char *p = strstr (hdr, k);
  const char *e = p ? strchr (p + strlen (k), '}') : NULL;
  const char *o = p ? strstr (p, "\"data_offsets\":[") : NULL;
  const char *d = p ? strstr (p, "\"dtype\":\"F32\"") : NULL;
  unsigned long long lo, hi;
  if (!e || !o || o > e || !d || d > e
      || sscanf (o + strlen ("\"data_offsets\":["), "%llu,%llu", &lo, &hi) != 2 || hi < lo)
    return false;
  *a = (size_t) lo;
  *b = (size_t) hi;
  return true;
}

/* The outer optimiser's moments as stored (n floats of m at m_bytes, of v at v_bytes): RA_OK, or
   RA_ERR_IO naming path, the tensor and the entry for a NaN or an infinity (a diverged run or
   damage), except +inf in v, as the nn load accepts it in adam_v: an overflowed second moment is a
   state training goes on with (that weight's update is m / sqrt(inf) = 0). A resume from a NaN
   moment would turn theta into NaN at its first outer step. */
static ra_err_t s_check_moments (const char *m_bytes, const char *v_bytes, size_t n,
                                 const char *path, ra_error_t *err)
{
  for (size_t j = 0; j < n; j++) {
    float m, v;
    memcpy (&m, m_bytes + j * sizeof m, sizeof m);
    memcpy (&v, v_bytes + j * sizeof v, sizeof v);
    if (!isfinite (m))
      return ra_error_set (err, RA_ERR_IO, -1, "meta: '%s' meta.adam_m[%zu] is %g", path, j, (double) m);
    if (!isfinite (v) && v != INFINITY)
      return ra_error_set (err, RA_ERR_IO, -1, "meta: '%s' meta.adam_v[%zu] is %g", path, j, (double) v);
  }
  return RA_OK;
}

ra_err_t ra_meta_ckpt_read_resume (const char *path, ra_meta_resume_t *at, bool *found, ra_error_t *err)
{
  *found = false;
  char *buf = NULL;
  size_t len = 0;
  uint64_t h = 0;
  ra_err_t rc = s_read_checkpoint (path, &buf, &len, &h, err);
  if (rc != RA_OK)
    return rc;
  const char *data = buf + 8 + h;
  size_t dlen = len - 8 - h;
  char *hdr = malloc (h + 1);
  if (!hdr) {
    free (buf);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "meta: out of memory for '%s''s header", path);
  }
  memcpy (hdr, buf + 8, h);
  hdr[h] = 0;
  char it[32], es[32], cnt[32], t[32], *end;
  size_t ma, mb, va, vb, want = at->n * sizeof (float);
  long long iter = 0, env_steps = 0, adam_t = 0;
  unsigned long long counter = 0;
  if (s_get (hdr, "meta_iter", it, sizeof it)) {
    errno = 0;
    if (!s_get (hdr, "meta_env_steps", es, sizeof es) || !s_get (hdr, "meta_rng_counter", cnt, sizeof cnt)
        || !s_get (hdr, "meta_adam_t", t, sizeof t) || !s_int (es, 0, INT64_MAX, &env_steps)
        || !s_tensor_span (hdr, "meta.adam_m", &ma, &mb) || !s_tensor_span (hdr, "meta.adam_v", &va, &vb)
        || mb > dlen || vb > dlen || !s_int (it, 0, INT64_MAX, &iter) || !s_int (t, 0, INT64_MAX, &adam_t)
        || cnt[0] < '0' || cnt[0] > '9' || (counter = strtoull (cnt, &end, 10), *end || errno)) {
      rc = ra_error_set (err, RA_ERR_IO, -1, "meta: '%s' has a damaged training state (meta_iter without "
                         "meta_env_steps, meta_rng_counter, meta_adam_t or the meta.adam_m/v tensors)", path);
    } else if (at->adam_m && (mb - ma != want || vb - va != want)) {
      rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "meta: '%s' holds %zu outer-optimiser moments, the "
                         "network has %zu parameters", path, (mb - ma) / sizeof (float), at->n);
    } else if (!at->adam_m || (rc = s_check_moments (data + ma, data + va, at->n, path, err)) == RA_OK) {
      at->iter = iter;
      at->env_steps = env_steps;
      at->rng_counter = counter;
      at->adam_t = adam_t;
      if (at->adam_m) {
        memcpy (at->adam_m, data + ma, want);
        memcpy (at->adam_v, data + va, want);
      }
      *found = true;
    }
  }
  free (hdr);
  free (buf);
  return rc;
}
