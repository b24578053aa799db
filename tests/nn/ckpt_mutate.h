/*  tests/nn/ckpt_mutate.h - deterministic damage to safetensors checkpoints, for the tests that
    load them (tests/nn/test_ckpt_fuzz.c, tests/policies/test_target_ckpt_fuzz.c).

    A file is 8 bytes of little-endian header length, the JSON header, the data. Mutations:
    random ones (bit flips and JSON-ish bytes in the header, the length field set to neighbours,
    huge values and off-by-padding values, the data cut or grown) and targeted ones (one field of
    one entry replaced, an entry or a key removed or doubled), the length field rewritten to fit
    the new header; and a snapshot of what a load writes. Header-only: static functions, no state. */
#ifndef RA_TESTS_CKPT_MUTATE_H
#define RA_TESTS_CKPT_MUTATE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents/nn/nn.h"

typedef struct {
  unsigned char *b;
  size_t n;
} ck_file_t;

/* What a load writes into a parameter buffer: data, moments (or their absence), step, rng. */
typedef struct {
  float *data, *m, *v;
  int step;
  ra_nn_rng_t rng;
} ck_snap_t;

static inline ck_snap_t ck_snap (ra_nn_backend_t *be, const ra_nn_params_t *p)
{
  size_t n = p->n * (size_t) p->replicas;
  ck_snap_t s = { malloc (n * sizeof (float)), NULL, NULL, ra_nn_params_steps (p), p->rng };
  ra_nn_download (be, s.data, p->data, n);
  if (p->adam_m) {
    s.m = malloc (n * sizeof (float));
    s.v = malloc (n * sizeof (float));
    ra_nn_download (be, s.m, p->adam_m, n);
    ra_nn_download (be, s.v, p->adam_v, n);
  }
  return s;
}

static inline void ck_snap_free (ck_snap_t *s)
{
  free (s->data);
  free (s->m);
  free (s->v);
}

/* Same tensors (the step and rng may differ: a digit of them is not damage a loader can see). */
static inline bool ck_same_tensors (const ck_snap_t *a, const ck_snap_t *b, size_t n)
{
  return !memcmp (a->data, b->data, n * sizeof (float)) && !a->m == !b->m
         && (!a->m || (!memcmp (a->m, b->m, n * sizeof (float)) && !memcmp (a->v, b->v, n * sizeof (float))));
}

static inline bool ck_same (const ck_snap_t *a, const ck_snap_t *b, size_t n)
{
  return ck_same_tensors (a, b, n) && a->step == b->step && !memcmp (&a->rng, &b->rng, sizeof a->rng);
}

static inline uint64_t ck_next (uint64_t *s) /* xorshift64* */
{
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ull;
}

static inline ck_file_t ck_read (const char *path)
{
  ck_file_t f = { 0 };
  FILE *fp = fopen (path, "rb");
  if (!fp)
    return f;
  fseek (fp, 0, SEEK_END);
  long n = ftell (fp);
  fseek (fp, 0, SEEK_SET);
  f.b = malloc ((size_t) n + 1);
  f.n = fread (f.b, 1, (size_t) n, fp);
  fclose (fp);
  return f;
}

static inline int ck_write (const char *path, const ck_file_t *f)
{
  FILE *fp = fopen (path, "wb");
  if (!fp)
    return -1;
  size_t w = fwrite (f->b, 1, f->n, fp);
  return fclose (fp) == 0 && w == f->n ? 0 : -1;
}

/* Where to write the damaged files: tmpfs when there is one (ext4 flushes a file truncated and
   written again on close, which made thousands of loads take seconds of disk). */
static inline const char *ck_tmp_dir (void)
{
  return access ("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
}

static inline uint64_t ck_hlen (const ck_file_t *f)
{
  uint64_t h = 0;
  for (int i = 7; i >= 0; i--)
    h = h << 8 | f->b[i];
  return h;
}

static inline void ck_set_hlen (ck_file_t *f, uint64_t h)
{
  for (int i = 0; i < 8; i++)
    f->b[i] = (unsigned char) (h >> (8 * i));
}

/* The header text of f (malloc'ed, NUL-terminated, padding kept). */
static inline char *ck_header (const ck_file_t *f)
{
  size_t h = (size_t) ck_hlen (f);
  char *s = malloc (h + 1);
  memcpy (s, f->b + 8, h);
  s[h] = 0;
  return s;
}

/* f's data after a new header hdr (padded to 8 with spaces when pad). */
static inline ck_file_t ck_with_header (const ck_file_t *f, const char *hdr, int pad)
{
  size_t old = (size_t) ck_hlen (f), h = strlen (hdr), p = pad ? (8 - h % 8) % 8 : 0, d = f->n - 8 - old;
  ck_file_t o = { malloc (8 + h + p + d + 1), 8 + h + p + d };
  ck_set_hlen (&o, h + p);
  memcpy (o.b + 8, hdr, h);
  memset (o.b + 8 + h, ' ', p);
  memcpy (o.b + 8 + h + p, f->b + 8 + old, d);
  return o;
}

static inline ck_file_t ck_copy (const ck_file_t *f)
{
  ck_file_t o = { malloc (f->n + 1), f->n };
  memcpy (o.b, f->b, f->n);
  return o;
}

/* hdr with [at, at + len) replaced by rep (malloc'ed). */
static inline char *ck_splice (const char *hdr, size_t at, size_t len, const char *rep)
{
  size_t n = strlen (hdr), r = strlen (rep);
  char *s = malloc (n - len + r + 1);
  memcpy (s, hdr, at);
  memcpy (s + at, rep, r);
  memcpy (s + at + r, hdr + at + len, n - at - len + 1);
  return s;
}

/* The value of field (`"shape"`, `"step"`...) inside entry (`"l0.w"`, `"__metadata__"`) of hdr,
   as [*at, *at + *len): a bracketed list, a quoted string or a bare token. False if absent. */
static inline int ck_find (const char *hdr, const char *entry, const char *field, size_t *at, size_t *len)
{
  char key[160];
  snprintf (key, sizeof key, "\"%s\":{", entry);
  const char *e = strstr (hdr, key);
  if (!e)
    return 0;
  snprintf (key, sizeof key, "\"%s\":", field);
  const char *v = strstr (e, key);
  const char *end = strchr (e, '}');
  if (!v || !end || v > end)
    return 0;
  v += strlen (key);
  const char *w = v;
  if (*w == '[')
    w = strchr (w, ']') + 1;
  else if (*w == '"')
    w = strchr (w + 1, '"') + 1;
  else
    w += strcspn (w, ",}");
  *at = (size_t) (v - hdr);
  *len = (size_t) (w - v);
  return 1;
}

/* hdr with that value replaced by rep (NULL when absent). */
static inline char *ck_set (const char *hdr, const char *entry, const char *field, const char *rep)
{
  size_t at, len;
  return ck_find (hdr, entry, field, &at, &len) ? ck_splice (hdr, at, len, rep) : NULL;
}

/* The whole `"entry":{...},` of hdr as [*at, *at + *len) (with its comma). */
static inline int ck_find_entry (const char *hdr, const char *entry, size_t *at, size_t *len)
{
  char key[160];
  snprintf (key, sizeof key, "\"%s\":{", entry);
  const char *e = strstr (hdr, key);
  if (!e)
    return 0;
  const char *end = strchr (e, '}') + 1;
  if (*end == ',')
    end++;
  *at = (size_t) (e - hdr);
  *len = (size_t) (end - e);
  return 1;
}

static const char ck_json_bytes[] = "0123456789-+.eE,:[]{}\" \t\nx\\/";

/* One random mutation of f into *o; returns what it did (static text). The length field stays
   the file's unless the mutation is of the length field. */
static inline const char *ck_random (const ck_file_t *f, uint64_t *rng, ck_file_t *o)
{
  size_t h = (size_t) ck_hlen (f);
  *o = ck_copy (f);
  uint64_t r = ck_next (rng);
  switch (r % 8) {
  case 0:
  case 1: { /* bit flips in the header */
    int flips = 1 + (int) (ck_next (rng) % 3);
    for (int i = 0; i < flips; i++)
      o->b[8 + ck_next (rng) % h] ^= (unsigned char) (1u << (ck_next (rng) % 8));
    return "header bit flips";
  }
  case 2:
  case 3: /* a JSON-ish byte in the header */
    o->b[8 + ck_next (rng) % h] = (unsigned char) ck_json_bytes[ck_next (rng) % (sizeof ck_json_bytes - 1)];
    return "header byte set";
  case 4: { /* the length field */
    static const uint64_t big[] = { 0, 1, 7, UINT64_MAX, UINT64_MAX - 7, UINT64_MAX - 8, (uint64_t) 1 << 63,
                                    (uint64_t) 1 << 32, 0xFFFFFFFFull, 64u << 20 };
    uint64_t v = ck_next (rng);
    uint64_t nh = v % 3 == 0 ? big[ck_next (rng) % (sizeof big / sizeof big[0])]
                  : v % 3 == 1 ? (uint64_t) h + (ck_next (rng) % 33) - 16
                               : (uint64_t) (f->n - 8) + (ck_next (rng) % 9) - 4;
    ck_set_hlen (o, nh);
    return "length field";
  }
  case 5: /* a bit of the length field */
    o->b[ck_next (rng) % 8] ^= (unsigned char) (1u << (ck_next (rng) % 8));
    return "length field bit flip";
  case 6: /* the data cut */
    o->n = 8 + h + ck_next (rng) % (f->n - 8 - h + 1);
    return "data cut";
  default: { /* bytes removed from the header, the length field following */
    char *hdr = ck_header (f);
    size_t at = ck_next (rng) % h, len = 1 + ck_next (rng) % 8;
    if (at + len > h)
      len = h - at;
    char *s = ck_splice (hdr, at, len, "");
    free (o->b);
    *o = ck_with_header (f, s, (int) (ck_next (rng) % 2));
    free (s);
    free (hdr);
    return "header bytes removed";
  }
  }
}

#endif
