/*  tests/nn/test_ckpt_fuzz.c - ra_nn_checkpoint_load on damaged files (tests/nn/ckpt_mutate.h).

    A real checkpoint of a small table is saved, then damaged: thousands of seeded random
    mutations (header bit flips and bytes, the length field, the data cut, header bytes removed)
    and a table of targeted ones (each field of each entry given a wrong type, sign, fraction,
    range; entries and keys removed or doubled; overlapping and reversed data_offsets; NaN and
    infinities planted in each tensor's data, of which only +inf in adam_v loads). Every load
    must either fail with a message naming the file and leave the destination exactly as it was
    (data, moments or their absence, step, rng), or succeed with what the undamaged file holds.
    Three setups: P = 1 with moments on both sides, P = 2 with moments in the file only, P = 1
    without moments in the file. Under ASan in about a second.                                   */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents/nn/nn.h"
#include "tests/nn/ckpt_mutate.h"

static ra_nn_backend_t *BE;
static void setup (void) { cr_assert_eq (ra_nn_backend_open ("cpu", NULL, &BE, NULL), RA_OK); }
static void teardown (void) { ra_nn_backend_destroy (&BE); }
TestSuite (nn_ckpt_fuzz, .init = setup, .fini = teardown, .timeout = 120);

static const char *const s_names[3] = { "l0.w", "l0.b", "l1.w" };

typedef struct {
  int P;
  bool file_adam, dest_adam;
} s_setup_t;

/* The table: l0.w [3, 4], l0.b [4], l1.w [4, 2]; data a ramp from base; one Adam step (with a
   gradient, so the moments are not zero) when adam. */
static ra_nn_params_t *s_params (int P, float base, bool adam, uint64_t counter)
{
  ra_nn_params_t *p = ra_nn_params_new (BE, P, 5);
  ra_nn_params_add (p, s_names[0], 2, (int[]) { 3, 4 });
  ra_nn_params_add (p, s_names[1], 1, (int[]) { 4 });
  ra_nn_params_add (p, s_names[2], 2, (int[]) { 4, 2 });
  cr_assert_eq (ra_nn_params_alloc (p, NULL), RA_OK);
  size_t n = p->n * (size_t) P;
  float *h = malloc (n * sizeof *h);
  for (size_t i = 0; i < n; i++)
    h[i] = base + 0.25f * (float) i;
  ra_nn_upload (BE, p->data, h, n);
  if (adam) {
    for (size_t i = 0; i < n; i++)
      h[i] = 0.5f - 0.125f * (float) (i % 9);
    ra_nn_upload (BE, p->grad, h, n);
    ra_nn_adam_t cfg = { .lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f };
    cr_assert_eq (ra_nn_adam_step (p, &cfg, NULL), RA_OK);
  }
  p->rng.counter = counter;
  free (h);
  return p;
}

typedef struct {
  s_setup_t su;
  const char *path;
  ck_file_t file;   /* the undamaged checkpoint */
  ck_snap_t want;   /* what loading it gives */
  size_t n;
  int loads, refused;
  char msg[256]; /* the last refusal's message */
} s_ctx_t;

static void s_ctx_init (s_ctx_t *c, s_setup_t su, const char *tag)
{
  static char path[4][128];
  static int k;
  char *pt = path[k++ % 4];
  snprintf (pt, sizeof path[0], "%s/ra_ckpt_fuzz_%d_%s.safetensors", ck_tmp_dir (), (int) getpid (), tag);
  *c = (s_ctx_t) { .su = su, .path = pt };
  ra_nn_params_t *src = s_params (su.P, 1.0f, su.file_adam, 4242);
  ra_error_t err;
  cr_assert_eq (ra_nn_checkpoint_save (src, pt, &err), RA_OK, "%s", err.message);
  c->file = ck_read (pt);
  ra_nn_params_t *dst = s_params (su.P, -7.0f, su.dest_adam, 99);
  cr_assert_eq (ra_nn_checkpoint_load (dst, pt, &err), RA_OK, "%s", err.message);
  c->want = ck_snap (BE, dst);
  c->n = dst->n * (size_t) su.P;
  ra_nn_params_destroy (&dst);
  ra_nn_params_destroy (&src);
}

static void s_ctx_fini (s_ctx_t *c)
{
  unlink (c->path);
  free (c->file.b);
  ck_snap_free (&c->want);
}

/* Loads f into a fresh destination; expect: 1 must load (tensors as the undamaged file), 0 must
   be refused, -1 either (a random mutation). */
static void s_try (s_ctx_t *c, const ck_file_t *f, int expect, const char *what)
{
  cr_assert_eq (ck_write (c->path, f), 0);
  ra_nn_params_t *dst = s_params (c->su.P, -7.0f, c->su.dest_adam, 99);
  ck_snap_t before = ck_snap (BE, dst);
  ra_error_t err = { 0 };
  ra_err_t rc = ra_nn_checkpoint_load (dst, c->path, &err);
  ck_snap_t after = ck_snap (BE, dst);
  c->loads++;
  if (rc != RA_OK) {
    c->refused++;
    snprintf (c->msg, sizeof c->msg, "%s", err.message);
    cr_expect_neq (expect, 1, "%s: a valid file refused: %s", what, err.message);
    cr_expect (strstr (err.message, c->path) != NULL, "%s: the message does not name the file: %s", what,
               err.message);
    cr_expect (ck_same (&before, &after, c->n), "%s: a refused load changed the destination (%s)", what,
               err.message);
  } else {
    cr_expect_neq (expect, 0, "%s: a damaged file loaded", what);
    cr_expect (ck_same_tensors (&after, &c->want, c->n), "%s: loaded tensors that are not the file's", what);
  }
  ck_snap_free (&before);
  ck_snap_free (&after);
  ra_nn_params_destroy (&dst);
}

static void s_try_header (s_ctx_t *c, const char *hdr, int expect, const char *what)
{
  cr_assert (hdr, "%s: the field to edit is absent", what);
  ck_file_t f = ck_with_header (&c->file, hdr, 1);
  s_try (c, &f, expect, what);
  free (f.b);
}

static const s_setup_t s_setups[3] = { { 1, true, true }, { 2, true, false }, { 1, false, true } };

Test (nn_ckpt_fuzz, random_mutations_are_refused_whole_or_load_the_files_tensors)
{
  for (int s = 0; s < 3; s++) {
    s_ctx_t c;
    s_ctx_init (&c, s_setups[s], "random");
    uint64_t rng = 0x9e3779b97f4a7c15ull + (uint64_t) s;
    for (int i = 0; i < 1200; i++) {
      ck_file_t f;
      char what[96];
      snprintf (what, sizeof what, "setup %d case %d: %s", s, i, ck_random (&c.file, &rng, &f));
      s_try (&c, &f, -1, what);
      free (f.b);
    }
    cr_expect_gt (c.refused, 800, "setup %d: only %d of %d refused: the mutations miss", s, c.refused, c.loads);
    s_ctx_fini (&c);
  }
}

/* The wrong values for one field; "=" stands for the field's own value edited as named. */
static const char *const s_bad_dtype[] = { "\"F16\"", "\"f32\"", "\"\"", "32", "null", "\"F32 \"", "[\"F32\"]" };
static const char *const s_bad_shape[] = { "[]", "[-1]", "[0]", "[1e9]", "[\"3\"]", "null", "3", "[2147483648,4]",
                                           "[3,4,2,1]", "[[3],4]" };
static const char *const s_bad_meta[] = { "\"-1\"", "\"1.5\"", "\"nan\"", "\"inf\"", "\"\"", "\"abc\"", "\" 7\"",
                                          "\"7 \"", "\"+7\"", "\"99999999999999999999999\"", "7", "null",
                                          "\"0x10\"", "\"1e3\"" };
static const char *const s_meta_keys[] = { "step", "rng_seed", "rng_stream", "rng_counter", "replicas" };

/* Offsets [a, b] of entry in hdr. */
static void s_offsets (const char *hdr, const char *entry, long *a, long *b)
{
  size_t at, len;
  cr_assert (ck_find (hdr, entry, "data_offsets", &at, &len));
  cr_assert_eq (sscanf (hdr + at, "[%ld,%ld]", a, b), 2);
}

static void s_targeted_entry (s_ctx_t *c, const char *hdr, const char *e, const char *other, long dlen)
{
  char what[160], v[128];
  for (size_t j = 0; j < sizeof s_bad_dtype / sizeof *s_bad_dtype; j++) {
    snprintf (what, sizeof what, "%.64s dtype %.80s", e, s_bad_dtype[j]);
    char *h = ck_set (hdr, e, "dtype", s_bad_dtype[j]);
    s_try_header (c, h, 0, what);
    free (h);
  }
  for (size_t j = 0; j < sizeof s_bad_shape / sizeof *s_bad_shape; j++) {
    snprintf (what, sizeof what, "%.64s shape %.80s", e, s_bad_shape[j]);
    char *h = ck_set (hdr, e, "shape", s_bad_shape[j]);
    s_try_header (c, h, 0, what);
    free (h);
  }
  long a, b, oa, ob;
  s_offsets (hdr, e, &a, &b);
  s_offsets (hdr, other, &oa, &ob);
  long sz = b - a;
  char off[12][128];
  int no = 0;
  snprintf (off[no++], sizeof off[0], "[%ld,%ld]", b, a);                     /* reversed */
  snprintf (off[no++], sizeof off[0], "[%ld,%ld]", a + 1, b + 1);             /* on the neighbour / past the end */
  snprintf (off[no++], sizeof off[0], "[%ld.5,%ld.5]", a, b);                 /* fractions */
  snprintf (off[no++], sizeof off[0], "[%ld,%ld]", dlen - sz + 4, dlen + 4);  /* past the end */
  snprintf (off[no++], sizeof off[0], "[%ld,%ld]", -sz, 0L);                  /* negative */
  snprintf (off[no++], sizeof off[0], "[%ld,%ld]", oa, oa + sz);              /* on another tensor */
  snprintf (off[no++], sizeof off[0], "[1e20,%.17g]", 1e20 + (double) sz);    /* huge */
  snprintf (off[no++], sizeof off[0], "[\"%ld\",\"%ld\"]", a, b);             /* strings */
  snprintf (off[no++], sizeof off[0], "[%ld]", a);
  snprintf (off[no++], sizeof off[0], "[%ld,%ld,%ld]", a, b, b);
  snprintf (off[no++], sizeof off[0], "null");
  snprintf (off[no++], sizeof off[0], "[%ld,%ld]", a, a);
  for (int j = 0; j < no; j++) {
    snprintf (what, sizeof what, "%.64s data_offsets %.80s", e, off[j]);
    char *h = ck_set (hdr, e, "data_offsets", off[j]);
    s_try_header (c, h, 0, what);
    free (h);
  }
  /* the entry removed; the entry twice (after itself) */
  size_t at, len;
  cr_assert (ck_find_entry (hdr, e, &at, &len));
  snprintf (what, sizeof what, "%s removed", e);
  char *h = ck_splice (hdr, at, len, "");
  s_try_header (c, h, 0, what);
  free (h);
  snprintf (what, sizeof what, "%s twice", e);
  snprintf (v, sizeof v, "%.*s", (int) len, hdr + at);
  h = ck_splice (hdr, at, 0, v);
  s_try_header (c, h, 0, what);
  free (h);
}

Test (nn_ckpt_fuzz, targeted_edits_of_every_field_are_refused)
{
  for (int s = 0; s < 3; s++) {
    s_ctx_t c;
    s_ctx_init (&c, s_setups[s], "targeted");
    char *hdr = ck_header (&c.file);
    long dlen = (long) (c.file.n - 8 - ck_hlen (&c.file));
    char entry[64], other[64];
    for (int k = 0; k < (c.su.file_adam ? 3 : 1); k++)
      for (int i = 0; i < 3; i++) {
        static const char *const prefix[3] = { "", "adam_m.", "adam_v." };
        snprintf (entry, sizeof entry, "%s%s", prefix[k], s_names[i]);
        snprintf (other, sizeof other, "%s%s", prefix[(k + 1) % (c.su.file_adam ? 3 : 1)], s_names[(i + 1) % 3]);
        s_targeted_entry (&c, hdr, entry, other, dlen);
      }
    char what[160];
    for (size_t k = 0; k < sizeof s_meta_keys / sizeof *s_meta_keys; k++) {
      for (size_t j = 0; j < sizeof s_bad_meta / sizeof *s_bad_meta; j++) {
        snprintf (what, sizeof what, "__metadata__ %s %s", s_meta_keys[k], s_bad_meta[j]);
        char *h = ck_set (hdr, "__metadata__", s_meta_keys[k], s_bad_meta[j]);
        s_try_header (&c, h, 0, what);
        free (h);
      }
      /* the key removed, the key twice */
      size_t at, len;
      cr_assert (ck_find (hdr, "__metadata__", s_meta_keys[k], &at, &len));
      size_t kat = at - strlen (s_meta_keys[k]) - 3;
      char *h = hdr[at + len] == ',' ? ck_splice (hdr, kat, at + len + 1 - kat, "")
                                     : ck_splice (hdr, kat - 1, at + len + 1 - kat, ""); /* the last: its comma before */
      snprintf (what, sizeof what, "__metadata__ %s removed", s_meta_keys[k]);
      s_try_header (&c, h, 0, what);
      free (h);
      char dup[96];
      snprintf (dup, sizeof dup, "%.*s,", (int) (at + len - kat), hdr + kat);
      h = ck_splice (hdr, kat, 0, dup);
      snprintf (what, sizeof what, "__metadata__ %s twice", s_meta_keys[k]);
      s_try_header (&c, h, 0, what);
      free (h);
    }
    char rep[32];
    snprintf (rep, sizeof rep, "\"%d\"", c.su.P + 1);
    char *h = ck_set (hdr, "__metadata__", "replicas", rep);
    s_try_header (&c, h, 0, "replicas P + 1");
    free (h);
    h = ck_set (hdr, "__metadata__", "step", "\"2147483648\"");
    s_try_header (&c, h, 0, "step past int32");
    free (h);
    /* not an object, trailing bytes, a NUL inside */
    s_try_header (&c, "[]", 0, "header []");
    s_try_header (&c, "\"x\"", 0, "header a string");
    s_try_header (&c, "", 0, "header empty");
    size_t hl = strlen (hdr);
    while (hl && hdr[hl - 1] == ' ')
      hl--;
    char *t = malloc (hl + 8);
    snprintf (t, hl + 8, "%.*sx", (int) hl, hdr);
    s_try_header (&c, t, 0, "trailing byte after the JSON");
    snprintf (t, hl + 8, "%.*s}", (int) hl, hdr);
    s_try_header (&c, t, 0, "trailing brace after the JSON");
    ck_file_t f = ck_copy (&c.file);
    f.b[8 + hl + (hl % 8 ? 0 : -1)] = 0; /* in the padding, or on the last brace */
    s_try (&c, &f, 0, "NUL in the header");
    free (f.b);
    free (t);
    free (hdr);
    s_ctx_fini (&c);
  }
}

Test (nn_ckpt_fuzz, harmless_edits_still_load)
{
  for (int s = 0; s < 3; s++) {
    s_ctx_t c;
    s_ctx_init (&c, s_setups[s], "harmless");
    char *hdr = ck_header (&c.file);
    size_t hl = strlen (hdr);
    while (hl && hdr[hl - 1] == ' ')
      hl--;
    hdr[hl] = 0;
    ck_file_t f = ck_with_header (&c.file, hdr, 0);
    s_try (&c, &f, 1, "unpadded header");
    free (f.b);
    char *long_val = malloc (20000);
    memset (long_val, 'a', 20000);
    memcpy (long_val, "\"", 1);
    memcpy (long_val + 19998, "\"", 2);
    char *h = ck_set (hdr, "__metadata__", "format", long_val);
    s_try_header (&c, h, 1, "a 20000-byte unknown metadata value");
    free (h);
    h = ck_set (hdr, "__metadata__", "rng_seed", "\"18446744073709551615\"");
    s_try_header (&c, h, 1, "rng_seed 2^64 - 1");
    free (h);
    h = ck_splice (hdr, 1, 0, "\"extra\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}, ");
    s_try_header (&c, h, 1, "an extra empty tensor");
    free (h);
    free (long_val);
    free (hdr);
    s_ctx_fini (&c);
  }
}

/* f with element e of tensor entry's data set to x. */
static ck_file_t s_plant (const ck_file_t *file, const char *hdr, const char *entry, size_t e, float x)
{
  long a, b;
  s_offsets (hdr, entry, &a, &b);
  ck_file_t f = ck_copy (file);
  memcpy (f.b + 8 + ck_hlen (file) + (size_t) a + e * sizeof x, &x, sizeof x);
  return f;
}

/* f (+inf planted in one adam_v element) loads: the file's tensors, that one value +inf. */
static void s_try_inf_v (s_ctx_t *c, const ck_file_t *f, const char *what)
{
  cr_assert_eq (ck_write (c->path, f), 0);
  ra_nn_params_t *dst = s_params (c->su.P, -7.0f, c->su.dest_adam, 99);
  ra_error_t err = { 0 };
  cr_expect_eq (ra_nn_checkpoint_load (dst, c->path, &err), RA_OK, "%s: refused: %s", what, err.message);
  ck_snap_t after = ck_snap (BE, dst);
  int inf = 0;
  bool rest = after.v && !memcmp (after.data, c->want.data, c->n * sizeof (float))
              && !memcmp (after.m, c->want.m, c->n * sizeof (float));
  for (size_t i = 0; rest && i < c->n; i++)
    if (after.v[i] == INFINITY)
      inf++;
    else
      rest = after.v[i] == c->want.v[i];
  cr_expect (rest && inf == 1, "%s: loaded %d infinities, the rest %s the file's", what, inf,
             rest ? "as" : "not as");
  ck_snap_free (&after);
  ra_nn_params_destroy (&dst);
}

/* NaN or an infinity in any tensor's data (the last element: the last replica's when P = 2) is
   refused whole, naming the tensor; +inf in adam_v loads (training reaches it: checkpoint.c). */
Test (nn_ckpt_fuzz, non_finite_data_is_refused_but_an_infinite_adam_v)
{
  static const float planted[3] = { NAN, INFINITY, -INFINITY };
  for (int s = 0; s < 3; s++) {
    s_ctx_t c;
    s_ctx_init (&c, s_setups[s], "finite");
    char *hdr = ck_header (&c.file);
    for (int k = 0; k < (c.su.file_adam ? 3 : 1); k++)
      for (int i = 0; i < 3; i++) {
        static const char *const prefix[3] = { "", "adam_m.", "adam_v." };
        char entry[64], quoted[72], what[128];
        snprintf (entry, sizeof entry, "%s%s", prefix[k], s_names[i]);
        snprintf (quoted, sizeof quoted, "'%s'", entry);
        long a, b;
        s_offsets (hdr, entry, &a, &b);
        size_t last = (size_t) (b - a) / sizeof (float) - 1;
        for (int j = 0; j < 3; j++) {
          snprintf (what, sizeof what, "setup %d: %s element %zu %g", s, entry, last, (double) planted[j]);
          ck_file_t f = s_plant (&c.file, hdr, entry, last, planted[j]);
          if (k == 2 && planted[j] == INFINITY) {
            s_try_inf_v (&c, &f, what);
          } else {
            int refused = c.refused;
            s_try (&c, &f, 0, what);
            cr_expect (c.refused == refused || strstr (c.msg, quoted), "%s: %s", what, c.msg);
          }
          free (f.b);
        }
      }
    free (hdr);
    s_ctx_fini (&c);
  }
}

/* A directory opens like a file; its size is no size to allocate (ASan refused 2^63 bytes). */
Test (nn_ckpt_fuzz, a_directory_is_refused)
{
  ra_nn_params_t *p = s_params (1, 1.0f, false, 1);
  ra_error_t err;
  cr_expect_eq (ra_nn_checkpoint_load (p, "/tmp", &err), RA_ERR_IO);
  cr_expect (strstr (err.message, "'/tmp' is not a regular file") != NULL, "%s", err.message);
  ra_nn_params_destroy (&p);
}
