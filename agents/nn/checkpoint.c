/*  agents/nn/checkpoint.c - safetensors checkpoints of a parameter buffer (docs/nn.md).

    File: 8-byte little-endian header length N, N bytes of JSON
      {"<name>": {"dtype": "F32", "shape": [...], "data_offsets": [a, b]}, ...,
       "__metadata__": {"format": "recarena-nn-1", "step": "...", "rng_seed": "...", ...}}
    padded with spaces to a multiple of 8, then the raw little-endian float32 data.
    Reading needs cJSON (RA_HAVE_CJSON); writing does not. Not thread-safe.                      */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agents/nn/backend.h"
#include "agents/nn/nn.h"
#ifdef RA_HAVE_CJSON
#include <cJSON.h>
#endif

typedef struct {
  char buf[160];
} s_name_t;

static bool s_little_endian (void)
{
  uint32_t one = 1;
  unsigned char c;
  memcpy (&c, &one, 1);
  return c == 1;
}

/* Tensor k of the file: kind 0 params, 1 adam_m, 2 adam_v. */
static s_name_t s_file_name (const ra_nn_tensor_t *t, int kind)
{
  static const char *prefix[3] = { "", "adam_m.", "adam_v." };
  s_name_t n;
  snprintf (n.buf, sizeof n.buf, "%s%s", prefix[kind], t->name);
  return n;
}

static const float *s_buffer (const ra_nn_params_t *p, int kind)
{
  return kind == 0 ? p->data : kind == 1 ? p->adam_m : p->adam_v;
}

/* Appends printf output to a growing string; returns false when out of memory. */
static bool s_append (char **s, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));
#include <stdarg.h>
static bool s_append (char **s, size_t *len, size_t *cap, const char *fmt, ...)
{
  for (;;) {
    va_list ap;
    va_start (ap, fmt);
    int k = vsnprintf (*s + *len, *cap - *len, fmt, ap);
    va_end (ap);
    if (k < 0)
      return false;
    if (*len + (size_t) k < *cap) {
      *len += (size_t) k;
      return true;
    }
    size_t ncap = (*cap + (size_t) k) * 2;
    char *n = realloc (*s, ncap);
    if (!n)
      return false;
    *s = n;
    *cap = ncap;
  }
}

ra_err_t ra_nn_checkpoint_save (const ra_nn_params_t *p, const char *path, ra_error_t *err)
{
  return ra_nn_checkpoint_save_meta (p, path, NULL, NULL, 0, err);
}

ra_err_t ra_nn_checkpoint_save_meta (const ra_nn_params_t *p, const char *path, const char *const *keys,
                                     const char *const *vals, int n_meta, ra_error_t *err)
{
  assert (p && p->data && path);
  if (!s_little_endian ())
    return ra__nn_error (err, RA_ERR_IO, "nn checkpoint: big-endian hosts are not supported");
  int kinds = p->adam_m ? 3 : 1, P = p->replicas;
  size_t cap = 1024, len = 0, off = 0;
  char *hdr = malloc (cap);
  float *host = malloc (sizeof (float) * (p->n * (size_t) P + 1));
  FILE *f = NULL;
  ra_err_t rc = RA_OK;
  if (!hdr || !host) {
    rc = ra__nn_error (err, RA_ERR_NOMEM, "nn checkpoint: out of memory");
    goto done;
  }
  hdr[0] = 0;
  bool ok = s_append (&hdr, &len, &cap, "{");
  for (int k = 0; k < kinds; k++)
    for (int i = 0; i < p->ntensors; i++) {
      const ra_nn_tensor_t *t = &p->tensors[i];
      size_t bytes = t->numel * P * sizeof (float);
      ok = ok && s_append (&hdr, &len, &cap, "\"%s\":{\"dtype\":\"F32\",\"shape\":[", s_file_name (t, k).buf);
      if (P > 1)
        ok = ok && s_append (&hdr, &len, &cap, "%d%s", P, ",");
      for (int d = 0; d < t->ndim; d++)
        ok = ok && s_append (&hdr, &len, &cap, "%d%s", t->shape[d], d + 1 < t->ndim ? "," : "");
      ok = ok && s_append (&hdr, &len, &cap, "],\"data_offsets\":[%zu,%zu]},", off, off + bytes);
      off += bytes;
    }
  ok = ok && s_append (&hdr, &len, &cap,
                       "\"__metadata__\":{\"format\":\"recarena-nn-1\",\"replicas\":\"%d\",\"step\":\"%d\","
                       "\"rng_seed\":\"%" PRIu64 "\",\"rng_stream\":\"%" PRIu64 "\",\"rng_counter\":\"%" PRIu64
                       "\"}}",
                       P, ra_nn_params_steps (p), p->rng.seed, p->rng.stream, p->rng.counter);
  if (ok) { /* the caller's keys go before the closing braces: len - 2 */
    len -= 2;
    for (int i = 0; ok && i < n_meta; i++) {
      if (strpbrk (keys[i], "\"\\") || strpbrk (vals[i], "\"\\")) {
        rc = ra__nn_error (err, RA_ERR_BAD_CONFIG, "nn checkpoint: metadata '%s' has a quote or backslash",
                           keys[i]);
        goto done;
      }
      ok = s_append (&hdr, &len, &cap, ",\"%s\":\"%s\"", keys[i], vals[i]);
    }
    ok = ok && s_append (&hdr, &len, &cap, "}}");
  }
  while (ok && len % 8)
    ok = s_append (&hdr, &len, &cap, " ");
  if (!ok) {
    rc = ra__nn_error (err, RA_ERR_NOMEM, "nn checkpoint: out of memory");
    goto done;
  }
  f = fopen (path, "wb");
  if (!f) {
    rc = ra__nn_error (err, RA_ERR_IO, "nn checkpoint: cannot open '%s' for writing", path);
    goto done;
  }
  uint64_t n64 = len;
  ok = fwrite (&n64, 8, 1, f) == 1 && fwrite (hdr, 1, len, f) == len;
  for (int k = 0; ok && k < kinds; k++) {
    ra_nn_download (p->be, host, s_buffer (p, k), p->n * (size_t) P);
    for (int i = 0; ok && i < p->ntensors; i++)
      for (int r = 0; ok && r < P; r++) {
        const ra_nn_tensor_t *t = &p->tensors[i];
        ok = fwrite (host + (size_t) r * p->n + t->offset, sizeof (float), t->numel, f) == t->numel;
      }
  }
  if (fclose (f) != 0)
    ok = false;
  if (!ok)
    rc = ra__nn_error (err, RA_ERR_IO, "nn checkpoint: write to '%s' failed", path);
done:
  free (hdr);
  free (host);
  return rc;
}

#ifdef RA_HAVE_CJSON
/* A metadata string of decimal digits alone (strtoull alone takes "-1", " 7" and "7x"). */
static bool s_meta_u64 (const cJSON *meta, const char *key, uint64_t *out)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (meta, key);
  if (!cJSON_IsString (v) || v->valuestring[0] < '0' || v->valuestring[0] > '9')
    return false;
  char *end;
  errno = 0;
  *out = strtoull (v->valuestring, &end, 10);
  return *end == 0 && errno == 0;
}

static int s_cmp_str (const void *a, const void *b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* A key that obj holds twice (cJSON keeps both and finds the first: a file that two writers
   disagree on), or NULL; "" when out of memory. Sorted, so a huge header stays fast. */
static const char *s_duplicate_key (const cJSON *obj)
{
  int n = cJSON_GetArraySize (obj);
  const char **keys = malloc (sizeof *keys * (size_t) (n + 1));
  if (!keys)
    return "";
  int k = 0;
  for (const cJSON *c = obj->child; c; c = c->next)
    keys[k++] = c->string;
  qsort (keys, (size_t) k, sizeof *keys, s_cmp_str);
  const char *dup = NULL;
  for (int i = 1; i < k && !dup; i++)
    if (!strcmp (keys[i - 1], keys[i]))
      dup = keys[i];
  free (keys);
  return dup;
}

/* The header's hlen bytes parsed into *root (the caller deletes it, also on failure): one JSON
   object and nothing else (the whole header is the JSON and its padding: a NUL or trailing bytes
   are damage), no key twice in it or in its __metadata__. */
static ra_err_t s_parse_header (const char *hdr, size_t hlen, const char *path, cJSON **root, ra_error_t *err)
{
  char *s = malloc (hlen + 1);
  *root = NULL;
  if (!s)
    return ra__nn_error (err, RA_ERR_NOMEM, "nn checkpoint: out of memory");
  memcpy (s, hdr, hlen);
  s[hlen] = 0;
  *root = strlen (s) == hlen ? cJSON_ParseWithOpts (s, NULL, true) : NULL;
  free (s);
  if (!cJSON_IsObject (*root))
    return ra__nn_error (err, RA_ERR_IO, "nn checkpoint: '%s' header is not one JSON object", path);
  const cJSON *meta = cJSON_GetObjectItemCaseSensitive (*root, "__metadata__");
  const char *dup = s_duplicate_key (*root);
  if (!dup && cJSON_IsObject (meta))
    dup = s_duplicate_key (meta);
  if (!dup)
    return RA_OK;
  return *dup ? ra__nn_error (err, RA_ERR_IO, "nn checkpoint: '%s' header has the key '%.64s' twice", path, dup)
              : ra__nn_error (err, RA_ERR_NOMEM, "nn checkpoint: out of memory");
}

typedef struct {
  size_t a, b; /* byte range in the data section */
} s_span_t;

static int s_cmp_span (const void *x, const void *y)
{
  const s_span_t *a = x, *b = y;
  return a->a < b->a ? -1 : a->a > b->a;
}

/* The first float of bytes [s.a, s.b) of data that a load refuses, into *x, as an index into the
   tensor, or SIZE_MAX: a NaN or an infinity (a diverged run or damage: the format has no
   checksum), except +inf in adam_v (kind 2). That one training reaches and goes on with: with
   clipping off (clip_norm <= 0) a gradient past about 6e20 overflows (1 - b2) g g to +inf in v,
   and that weight's update is m / sqrt(inf) = 0. */
static size_t s_bad_value (const char *data, s_span_t s, int kind, float *x)
{
  for (size_t i = s.a; i + sizeof *x <= s.b; i += sizeof *x) {
    memcpy (x, data + i, sizeof *x);
    if (!isfinite (*x) && !(kind == 2 && *x == INFINITY))
      return (i - s.a) / sizeof *x;
  }
  return SIZE_MAX;
}

/* dims[0..ndim) as "[a, b]" (n >= 2) */
static void s_dims_text (char *buf, size_t n, const double *dims, int ndim)
{
  size_t used = (size_t) snprintf (buf, n, "[");
  for (int d = 0; d < ndim && used < n; d++)
    used += (size_t) snprintf (buf + used, n - used, "%s%.0f", d ? ", " : "", dims[d]);
  if (used < n)
    snprintf (buf + used, n - used, "]");
}

/* Why tensor entry e cannot be t (kind k) of P replicas in a data section of dlen bytes (in why,
   n bytes), or NULL with its byte range in *s. */
static const char *s_check_tensor (const cJSON *e, const ra_nn_tensor_t *t, int P, size_t dlen, s_span_t *s,
                                   char *why, size_t n)
{
  const cJSON *dt = cJSON_GetObjectItemCaseSensitive (e, "dtype");
  const cJSON *sh = cJSON_GetObjectItemCaseSensitive (e, "shape");
  const cJSON *of = cJSON_GetObjectItemCaseSensitive (e, "data_offsets");
  int lead = P > 1 ? 1 : 0;
  if (!cJSON_IsObject (e))
    return "is missing";
  if (!cJSON_IsString (dt) || strcmp (dt->valuestring, "F32") != 0)
    return "dtype is not F32";
  bool ok = cJSON_IsArray (sh) && cJSON_GetArraySize (sh) == t->ndim + lead;
  for (int d = 0; ok && d < t->ndim + lead; d++) {
    const cJSON *v = cJSON_GetArrayItem (sh, d);
    ok = cJSON_IsNumber (v) && v->valuedouble == (d < lead ? P : t->shape[d - lead]);
  }
  if (!ok) {
    /* a network of another env or other flags: both shapes say which */
    double want[RA_NN_MAX_DIMS + 1] = { P }, got[RA_NN_MAX_DIMS + 1];
    for (int d = 0; d < t->ndim; d++)
      want[d + lead] = t->shape[d];
    int ngot = cJSON_IsArray (sh) ? cJSON_GetArraySize (sh) : 0;
    bool listed = cJSON_IsArray (sh) && ngot <= RA_NN_MAX_DIMS + 1;
    for (int d = 0; listed && d < ngot; d++) {
      const cJSON *v = cJSON_GetArrayItem (sh, d);
      listed = cJSON_IsNumber (v);
      got[d] = listed ? v->valuedouble : 0;
    }
    char wtext[96], gtext[96] = "not a short list of numbers";
    s_dims_text (wtext, sizeof wtext, want, t->ndim + lead);
    if (listed)
      s_dims_text (gtext, sizeof gtext, got, ngot);
    snprintf (why, n, "shape %s, expected %s (a checkpoint of another env or network flags?)", gtext, wtext);
    return why;
  }
  const cJSON *va = cJSON_GetArrayItem (of, 0), *vb = cJSON_GetArrayItem (of, 1);
  if (!cJSON_IsArray (of) || cJSON_GetArraySize (of) != 2 || !cJSON_IsNumber (va) || !cJSON_IsNumber (vb))
    return "data_offsets is not two numbers";
  double a = va->valuedouble, b = vb->valuedouble, bytes = (double) (t->numel * (size_t) P * sizeof (float));
  /* in range first: only then is the cast defined, and a fraction is refused, not truncated */
  if (!(a >= 0 && b <= (double) dlen && b - a == bytes) || (double) (size_t) a != a)
    return "data_offsets is not a whole range of the expected size inside the data";
  s->a = (size_t) a;
  s->b = (size_t) b;
  return NULL;
}
#endif

ra_err_t ra_nn_checkpoint_read (const char *path, char **file, size_t *len, ra_error_t *err)
{
  assert (path && file && len);
  *file = NULL;
  *len = 0;
  FILE *f = fopen (path, "rb");
  if (!f)
    return ra__nn_error (err, RA_ERR_IO, "nn checkpoint: cannot open '%s'", path);
  ra_err_t rc = RA_OK;
  struct stat st; /* a directory opens, and its ftell can be 2^63 - 1: not a size to allocate */
  long size = -1;
  if (fstat (fileno (f), &st) != 0 || !S_ISREG (st.st_mode))
    rc = ra__nn_error (err, RA_ERR_IO, "nn checkpoint: '%s' is not a regular file", path);
  else if (fseek (f, 0, SEEK_END) != 0 || (size = ftell (f)) < 0 || fseek (f, 0, SEEK_SET) != 0
           || !(*file = malloc ((size_t) size + 1)) || fread (*file, 1, (size_t) size, f) != (size_t) size) {
    free (*file);
    *file = NULL;
    rc = ra__nn_error (err, RA_ERR_IO, "nn checkpoint: cannot read %ld bytes of '%s'", size, path);
  } else
    *len = (size_t) size;
  fclose (f);
  return rc;
}

/* Checks the whole file before writing anything into p: a refused file leaves p as it was
   (data, moments, step, rng), so a caller can report the error and go on with what it had. */
ra_err_t ra_nn_checkpoint_load (ra_nn_params_t *p, const char *path, ra_error_t *err)
{
  assert (p && p->data && p->ntensors > 0 && path);
  char *file;
  size_t len;
  ra_err_t rc = ra_nn_checkpoint_read (path, &file, &len, err);
  if (rc == RA_OK)
    rc = ra_nn_checkpoint_load_bytes (p, file, len, path, err);
  free (file);
  return rc;
}

ra_err_t ra_nn_checkpoint_load_bytes (ra_nn_params_t *p, const char *file, size_t size, const char *path,
                                      ra_error_t *err)
{
  assert (p && p->data && p->ntensors > 0 && file && path);
#ifndef RA_HAVE_CJSON
  (void) size;
  return ra__nn_error (err, RA_ERR_IO, "nn checkpoint: cannot read '%s': built without cJSON", path);
#else
  if (size < 8)
    return ra__nn_error (err, RA_ERR_IO, "nn checkpoint: '%s' is shorter than the 8-byte header length", path);
  uint64_t hlen;
  memcpy (&hlen, file, 8);
  if (hlen > (uint64_t) size - 8)
    return ra__nn_error (err, RA_ERR_IO, "nn checkpoint: '%s' header length %" PRIu64 " exceeds file size %zu",
                         path, hlen, size);
  ra_err_t rc = RA_OK;
  cJSON *root = NULL;
  float *host = NULL, *adam_m = NULL, *adam_v = NULL;
  s_span_t *spans = NULL;
  int P = p->replicas;
  host = malloc (sizeof (float) * (p->n * (size_t) P + 1));
  int nmax = 3 * p->ntensors; /* spans: every kind of every tensor */
  spans = malloc (sizeof *spans * (size_t) nmax);
  if (!host || !spans) {
    rc = ra__nn_error (err, RA_ERR_NOMEM, "nn checkpoint: out of memory");
    goto done;
  }
  if ((rc = s_parse_header (file + 8, hlen, path, &root, err)) != RA_OK)
    goto done;
  const cJSON *meta = cJSON_GetObjectItemCaseSensitive (root, "__metadata__");
  uint64_t step = 0, seed = 0, stream = 0, counter = 0, reps = 0;
  if (!cJSON_IsObject (meta) || !s_meta_u64 (meta, "step", &step) || !s_meta_u64 (meta, "rng_seed", &seed)
      || !s_meta_u64 (meta, "rng_stream", &stream) || !s_meta_u64 (meta, "rng_counter", &counter)
      || !s_meta_u64 (meta, "replicas", &reps)) {
    rc = ra__nn_error (err, RA_ERR_IO, "nn checkpoint: '%s' header has no __metadata__ with step, rng_seed, "
                       "rng_stream, rng_counter and replicas (decimal strings)", path);
    goto done;
  }
  if (step > INT32_MAX) { /* the device counts in int32 */
    rc = ra__nn_error (err, RA_ERR_IO, "nn checkpoint: '%s' __metadata__ step %" PRIu64 " is out of range",
                       path, step);
    goto done;
  }
  if (reps != (uint64_t) P) {
    rc = ra__nn_error (err, RA_ERR_BAD_CONFIG, "nn checkpoint: '%s' has %" PRIu64 " replicas, params have %d",
                       path, reps, P);
    goto done;
  }
  const char *data = file + 8 + hlen;
  size_t dlen = size - 8 - hlen;
  /* any moment in the file means all of them: one damaged name must not drop the rest */
  bool has_adam = false;
  for (int k = 1; k < 3; k++)
    for (int i = 0; i < p->ntensors; i++)
      has_adam = has_adam || cJSON_GetObjectItemCaseSensitive (root, s_file_name (&p->tensors[i], k).buf);
  int kinds = has_adam ? 3 : 1, nspans = kinds * p->ntensors;
  for (int k = 0; k < kinds; k++)
    for (int i = 0; i < p->ntensors; i++) {
      s_name_t name = s_file_name (&p->tensors[i], k);
      char buf[256];
      const char *why = s_check_tensor (cJSON_GetObjectItemCaseSensitive (root, name.buf), &p->tensors[i], P,
                                        dlen, &spans[k * p->ntensors + i], buf, sizeof buf);
      if (why) {
        rc = ra__nn_error (err, RA_ERR_BAD_CONFIG, "nn checkpoint: '%s' tensor '%s': %s", path, name.buf, why);
        goto done;
      }
    }
  /* the data ends where the file's last tensor ends (as safetensors requires; other writers'
     tensors count too): a header length off by a few bytes of padding shifts every tensor onto
     its neighbour's bytes, and only this sees it */
  double end = 0;
  for (const cJSON *c = root->child; c; c = c->next) {
    const cJSON *b = cJSON_GetArrayItem (cJSON_GetObjectItemCaseSensitive (c, "data_offsets"), 1);
    if (cJSON_IsNumber (b) && b->valuedouble > end)
      end = b->valuedouble;
  }
  if (end != (double) dlen) {
    rc = ra__nn_error (err, RA_ERR_IO, "nn checkpoint: '%s' has %zu bytes of data after the header, its tensors "
                       "end at %.0f (a wrong header length?)", path, dlen, end);
    goto done;
  }
  /* two tensors on the same bytes would load the same numbers twice */
  s_span_t *sorted = malloc (sizeof *sorted * (size_t) nspans);
  if (!sorted) {
    rc = ra__nn_error (err, RA_ERR_NOMEM, "nn checkpoint: out of memory");
    goto done;
  }
  memcpy (sorted, spans, sizeof *sorted * (size_t) nspans);
  qsort (sorted, (size_t) nspans, sizeof *sorted, s_cmp_span);
  bool overlap = false;
  for (int j = 1; j < nspans; j++)
    overlap = overlap || sorted[j].a < sorted[j - 1].b;
  free (sorted);
  if (overlap) {
    rc = ra__nn_error (err, RA_ERR_BAD_CONFIG, "nn checkpoint: '%s' has tensors whose data_offsets overlap", path);
    goto done;
  }
  for (int j = 0; j < nspans; j++) {
    float x;
    size_t at = s_bad_value (data, spans[j], j / p->ntensors, &x);
    if (at != SIZE_MAX) {
      rc = ra__nn_error (err, RA_ERR_IO, "nn checkpoint: '%s' tensor '%s' element %zu is %g, not a finite number "
                         "(a diverged run or a damaged file)", path,
                         s_file_name (&p->tensors[j % p->ntensors], j / p->ntensors).buf, at, (double) x);
      goto done;
    }
  }
  if (has_adam && !p->adam_m) {
    size_t total = p->n * (size_t) P;
    adam_m = ra_nn_alloc (p->be, total);
    adam_v = ra_nn_alloc (p->be, total);
    if (!adam_m || !adam_v) {
      rc = ra__nn_error (err, RA_ERR_NOMEM, "nn checkpoint: out of memory for Adam moments");
      goto done;
    }
    p->adam_m = adam_m;
    p->adam_v = adam_v;
    adam_m = adam_v = NULL;
  }
  /* from here on nothing fails */
  for (int k = 0; k < kinds; k++) {
    memset (host, 0, sizeof (float) * p->n * (size_t) P);
    for (int i = 0; i < p->ntensors; i++) {
      const ra_nn_tensor_t *t = &p->tensors[i];
      size_t a = spans[k * p->ntensors + i].a;
      for (int r = 0; r < P; r++)
        memcpy (host + (size_t) r * p->n + t->offset, data + a + (size_t) r * t->numel * sizeof (float),
                t->numel * sizeof (float));
    }
    float *dst = k == 0 ? p->data : k == 1 ? p->adam_m : p->adam_v;
    ra_nn_upload (p->be, dst, host, p->n * (size_t) P);
  }
  if (!has_adam && p->adam_m) {
    ra_nn_zero (p->be, p->adam_m, p->n * (size_t) P);
    ra_nn_zero (p->be, p->adam_v, p->n * (size_t) P);
  }
  for (int r = 0; r < p->replicas; r++) { /* one count in the file: every replica gets it */
    int32_t s32 = (int32_t) step;
    ra_nn_upload_bytes (p->be, p->step + r, &s32, sizeof s32);
  }
  p->rng.seed = seed;
  p->rng.stream = stream;
  p->rng.counter = counter;
  ra_nn_params_zero_grad (p);
  ra_nn_sync (p->be);
done:
  cJSON_Delete (root);
  if (adam_m)
    ra_nn_free (p->be, adam_m);
  if (adam_v)
    ra_nn_free (p->be, adam_v);
  free (host);
  free (spans);
  return rc;
#endif
}

ra_err_t ra_nn_checkpoint_check_header (const char *hdr, size_t hlen, const char *path, ra_error_t *err)
{
  assert (hdr && path);
#ifndef RA_HAVE_CJSON
  (void) hlen;
  return ra__nn_error (err, RA_ERR_IO, "nn checkpoint: cannot read '%s': built without cJSON", path);
#else
  cJSON *root;
  ra_err_t rc = s_parse_header (hdr, hlen, path, &root, err);
  cJSON_Delete (root);
  return rc;
#endif
}
