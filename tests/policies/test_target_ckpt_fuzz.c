/*  tests/policies/test_target_ckpt_fuzz.c - the target policy's checkpoint readers on damaged
    files (tests/nn/ckpt_mutate.h): ra_target_load, ra_target_checkpoint_settings and
    ra_target_checkpoint_arch.

    A real checkpoint (P = 2, one hidden layer, the affinity head, the task context, reward scales
    set) is damaged by seeded random mutations and by targeted edits of every "target.*" metadata
    value (empty, NaN, inf, negative, huge, words, 5000 characters, a list). Every load either
    fails with a message naming the file and leaves the policy exactly as it was (parameters,
    moments, step, rng, reward scales), or loads the file's tensors; settings either fails leaving
    the cfg untouched or sets values in their ranges; arch never hands back a width outside
    [1, 4096]. ra_target_load opens the file once (fopen is counted here), so the header it reads
    and the tensors it loads are of the same file. No server.                                     */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents/policies/target_int.h"
#include "tests/nn/ckpt_mutate.h"

enum { P = 2, N = 3, T = 2, K = 5, k = 2, U = 4, F = 3, R = 2 * k + 1 };

/* Counts the opens of s_counted (the library code linked into this test calls this fopen). */
static const char *s_counted;
static int s_opens;
FILE *fopen (const char *path, const char *mode)
{
  static FILE *(*real) (const char *, const char *);
  if (!real)
    *(void **) &real = dlsym (RTLD_NEXT, "fopen");
  if (s_counted && !strcmp (path, s_counted))
    s_opens++;
  return real (path, mode);
}

static ra_nn_backend_t *BE;
static void setup (void) { cr_assert_eq (ra_nn_backend_open ("cpu", NULL, &BE, NULL), RA_OK); }
static void teardown (void) { ra_nn_backend_destroy (&BE); }
TestSuite (target_ckpt_fuzz, .init = setup, .fini = teardown, .timeout = 120);

static ra_target_cfg_t s_cfg (uint64_t seed)
{
  ra_target_cfg_t c;
  ra_target_cfg_default (&c);
  c.num_envs = N, c.num_candidates = K, c.slate_size = k, c.user_dim = U, c.cand_dim = F, c.response_dim = R;
  c.hidden = 6, c.layers = 1, c.rollout = T, c.population = P, c.seed = seed, c.affinity = true;
  c.context = 2.0f, c.slot_feedback = k;
  return c;
}

static ra_target_t *s_new (uint64_t seed, float scale)
{
  ra_target_cfg_t c = s_cfg (seed);
  ra_target_t *t = NULL;
  ra_error_t err;
  cr_assert_eq (ra_target_new (BE, &c, &t, &err), RA_OK, "%s", err.message);
  for (int p = 0; p < P; p++)
    t->reward_scale[p] = scale + (float) p;
  return t;
}

/* A load's effect on the policy: its parameter buffer and its reward scales. */
typedef struct {
  ck_snap_t nn;
  float scale[P];
} s_snap_t;

static s_snap_t s_snap (const ra_target_t *t)
{
  s_snap_t s = { ck_snap (BE, t->params), { 0 } };
  memcpy (s.scale, t->reward_scale, sizeof s.scale);
  return s;
}

static bool s_same (const s_snap_t *a, const s_snap_t *b, size_t n)
{
  return ck_same (&a->nn, &b->nn, n) && !memcmp (a->scale, b->scale, sizeof a->scale);
}

typedef struct {
  char path[128];
  ck_file_t file;
  s_snap_t want;
  size_t n;
  ra_target_t *dst; /* made again after a load that succeeded */
  int loads, refused, settings_refused;
} s_ctx_t;

static void s_ctx_init (s_ctx_t *c, const char *tag)
{
  *c = (s_ctx_t) { 0 };
  snprintf (c->path, sizeof c->path, "%s/ra_target_ckpt_fuzz_%d_%s.safetensors", ck_tmp_dir (), (int) getpid (),
            tag);
  ra_target_t *src = s_new (3, 1.5f);
  ra_error_t err;
  cr_assert_eq (ra_target_save (src, c->path, &err), RA_OK, "%s", err.message);
  c->file = ck_read (c->path);
  c->dst = s_new (11, 9.0f);
  cr_assert_eq (ra_target_load (c->dst, c->path, &err), RA_OK, "%s", err.message);
  c->want = s_snap (c->dst);
  c->n = c->dst->params->n * (size_t) P;
  ra_target_destroy (&c->dst);
  ra_target_destroy (&src);
  c->dst = s_new (11, 9.0f);
}

static void s_ctx_fini (s_ctx_t *c)
{
  unlink (c->path);
  free (c->file.b);
  ck_snap_free (&c->want.nn);
  ra_target_destroy (&c->dst);
}

/* The settings a cfg may hold (ra_target_cfg_apply's ranges). */
static bool s_settings_in_range (const ra_target_cfg_t *c)
{
  return c->lr >= 0 && c->lr <= 10 && c->temp >= RA_TARGET_TEMP_MIN && c->temp <= RA_TARGET_TEMP_MAX
         && c->slot_credit >= 0 && c->slot_credit <= RA_TARGET_SLOT_CREDIT_MAX && c->context >= 0
         && c->context <= RA_TARGET_CONTEXT_MAX && c->adapt_updates >= 0 && c->rollout >= 1 && c->rollout <= 4096
         && c->slot_feedback >= 0 && c->slot_feedback <= RA_TARGET_SLOT_FEEDBACK_MAX;
}

/* load: 1 must succeed, 0 must fail, -1 either; settings: 0 must fail, -1 either. */
static void s_try (s_ctx_t *c, const ck_file_t *f, int load, int settings, const char *what)
{
  cr_assert_eq (ck_write (c->path, f), 0);
  ra_error_t err = { 0 };
  /* the readers a binary calls before load */
  ra_target_cfg_t cfg = s_cfg (5), before_cfg = cfg;
  ra_err_t rc = ra_target_checkpoint_settings (c->path, &cfg, &err);
  if (rc != RA_OK) {
    c->settings_refused++;
    cr_expect (!memcmp (&cfg, &before_cfg, sizeof cfg), "%s: refused settings changed the cfg", what);
    cr_expect (strstr (err.message, c->path) != NULL, "%s: %s", what, err.message);
  } else {
    cr_expect_neq (settings, 0, "%s: damaged settings accepted", what);
    cr_expect (s_settings_in_range (&cfg), "%s: settings out of range accepted", what);
  }
  int hidden = -1, layers = -1;
  bool aff = false;
  if (ra_target_checkpoint_arch (c->path, &hidden, &layers, &aff, &err) == RA_OK)
    cr_expect (hidden >= 1 && hidden <= 4096 && layers >= 0 && layers <= RA_TARGET_MAX_LAYERS,
               "%s: arch hidden %d layers %d", what, hidden, layers);
  s_snap_t before = s_snap (c->dst);
  rc = ra_target_load (c->dst, c->path, &err);
  s_snap_t after = s_snap (c->dst);
  c->loads++;
  if (rc != RA_OK) {
    c->refused++;
    cr_expect_neq (load, 1, "%s: a valid file refused: %s", what, err.message);
    cr_expect (strstr (err.message, c->path) != NULL, "%s: the message does not name the file: %s", what,
               err.message);
    cr_expect (s_same (&before, &after, c->n), "%s: a refused load changed the policy (%s)", what, err.message);
  } else {
    cr_expect_neq (load, 0, "%s: a damaged file loaded", what);
    cr_expect (ck_same_tensors (&after.nn, &c->want.nn, c->n), "%s: loaded tensors that are not the file's", what);
    for (int p = 0; p < P; p++)
      cr_expect (after.scale[p] >= 0 && isfinite (after.scale[p]), "%s: reward scale %g", what,
                 (double) after.scale[p]);
    ra_target_destroy (&c->dst);
    c->dst = s_new (11, 9.0f);
  }
  ck_snap_free (&before.nn);
  ck_snap_free (&after.nn);
}

Test (target_ckpt_fuzz, random_mutations_are_refused_whole_or_load_the_files_tensors)
{
  s_ctx_t c;
  s_ctx_init (&c, "random");
  uint64_t rng = 0x51ed270b27a1c3d5ull;
  for (int i = 0; i < 1500; i++) {
    ck_file_t f;
    char what[96];
    snprintf (what, sizeof what, "case %d: %s", i, ck_random (&c.file, &rng, &f));
    s_try (&c, &f, -1, -1, what);
    free (f.b);
  }
  cr_expect_gt (c.refused, 1000, "only %d of %d refused: the mutations miss", c.refused, c.loads);
  s_ctx_fini (&c);
}

static const char *const s_keys[] = { "target.reward_scale", "target.lr", "target.optimizer",
                                      "target.reset_optimizer", "target.adapt_updates", "target.rollout",
                                      "target.temp", "target.slot_credit", "target.slot_feedback",
                                      "target.adapt_params", "target.context" };
static const char *const s_bad[] = { "\"\"", "\"nan\"", "\"inf\"", "\"-1\"", "\"1e300\"", "\"abc\"",
                                     "\"1,2,3\"", "\"0x\"", "\"2 \"", "\"truex\"" };

Test (target_ckpt_fuzz, damaged_settings_are_refused_by_the_reader_that_reads_them)
{
  s_ctx_t c;
  s_ctx_init (&c, "targeted");
  char *hdr = ck_header (&c.file);
  char what[160];
  char *big = malloc (5003);
  memset (big, '1', 5002);
  big[0] = big[5001] = '"';
  big[5002] = 0;
  for (size_t j = 0; j < sizeof s_keys / sizeof *s_keys; j++) {
    /* load reads the reward scales and the context; settings everything but the scales */
    bool by_load = !strcmp (s_keys[j], "target.reward_scale") || !strcmp (s_keys[j], "target.context");
    bool by_settings = strcmp (s_keys[j], "target.reward_scale") != 0;
    for (size_t b = 0; b <= sizeof s_bad / sizeof *s_bad; b++) {
      const char *val = b < sizeof s_bad / sizeof *s_bad ? s_bad[b] : big;
      snprintf (what, sizeof what, "%s %.16s", s_keys[j], val);
      char *h = ck_set (hdr, "__metadata__", s_keys[j], val);
      cr_assert (h, "%s absent", s_keys[j]);
      ck_file_t f = ck_with_header (&c.file, h, 1);
      s_try (&c, &f, by_load ? 0 : 1, by_settings ? 0 : -1, what);
      free (f.b);
      free (h);
    }
  }
  /* an older file without reward scales: the cfg's */
  size_t at, len;
  cr_assert (ck_find (hdr, "__metadata__", "target.reward_scale", &at, &len));
  size_t kat = at - strlen ("target.reward_scale") - 3;
  char *h = ck_splice (hdr, kat, at + len + 1 - kat, "");
  ck_file_t f = ck_with_header (&c.file, h, 1);
  s_try (&c, &f, 1, -1, "no reward scales");
  free (f.b);
  free (h);
  /* a hidden width to make a policy of is in range */
  h = ck_set (hdr, "l0.w", "shape", "[1000000,4]");
  f = ck_with_header (&c.file, h, 1);
  s_try (&c, &f, 0, -1, "l0.w of a million rows");
  free (f.b);
  free (h);
  cr_expect_geq (c.settings_refused, 10 * 11);
  free (big);
  free (hdr);
  s_ctx_fini (&c);
}

/* A metadata key twice: each reader searches the header text for the first, the nn load refuses
   the file; every reader refuses it, naming the file and the key ("replicas" is arch's). */
Test (target_ckpt_fuzz, a_metadata_key_twice_is_refused_by_every_reader)
{
  s_ctx_t c;
  s_ctx_init (&c, "twice");
  char *hdr = ck_header (&c.file);
  const char *keys[sizeof s_keys / sizeof *s_keys + 1];
  memcpy (keys, s_keys, sizeof s_keys);
  keys[sizeof s_keys / sizeof *s_keys] = "replicas";
  for (size_t j = 0; j < sizeof keys / sizeof *keys; j++) {
    size_t at, len, mat, mlen;
    cr_assert (ck_find (hdr, "__metadata__", keys[j], &at, &len), "%s absent", keys[j]);
    size_t kat = at - strlen (keys[j]) - 3;
    char dup[128], *h;
    snprintf (dup, sizeof dup, "%.*s,", (int) (at + len - kat), hdr + kat); /* first in the block */
    cr_assert (ck_find_entry (hdr, "__metadata__", &mat, &mlen));
    h = ck_splice (hdr, mat + strlen ("\"__metadata__\":{"), 0, dup);
    ck_file_t f = ck_with_header (&c.file, h, 1);
    cr_assert_eq (ck_write (c.path, &f), 0);
    ra_target_cfg_t cfg = s_cfg (5);
    int hidden, layers;
    bool aff;
    ra_error_t err[3] = { 0 };
    ra_err_t rc[3] = { ra_target_checkpoint_settings (c.path, &cfg, &err[0]),
                       ra_target_checkpoint_arch (c.path, &hidden, &layers, &aff, &err[1]),
                       ra_target_load (c.dst, c.path, &err[2]) };
    for (int r = 0; r < 3; r++) {
      cr_expect_neq (rc[r], RA_OK, "%s twice: reader %d accepted it", keys[j], r);
      cr_expect (rc[r] == RA_OK || (strstr (err[r].message, c.path) && strstr (err[r].message, keys[j])),
                 "%s twice: reader %d: %s", keys[j], r, err[r].message);
    }
    free (f.b);
    free (h);
  }
  free (hdr);
  s_ctx_fini (&c);
}

/* One read: a writer that replaces the file (rename) between two reads would give a header (reward
   scales, context) of one file and the tensors of another. */
Test (target_ckpt_fuzz, load_opens_the_file_once)
{
  s_ctx_t c;
  s_ctx_init (&c, "once");
  ra_error_t err;
  s_counted = c.path;
  s_opens = 0;
  cr_expect_eq (ra_target_load (c.dst, c.path, &err), RA_OK, "%s", err.message);
  s_counted = NULL;
  cr_expect_eq (s_opens, 1, "ra_target_load opened its file %d times", s_opens);
  s_ctx_fini (&c);
}

/* A population's file has a leading replica dimension on every tensor: the width is the second. */
Test (target_ckpt_fuzz, arch_reads_the_width_of_a_population_file)
{
  ra_target_t *t = s_new (3, 1.0f);
  char path[128];
  snprintf (path, sizeof path, "/tmp/ra_target_ckpt_fuzz_%d_arch.safetensors", (int) getpid ());
  ra_error_t err;
  cr_assert_eq (ra_target_save (t, path, &err), RA_OK, "%s", err.message);
  int hidden = 0, layers = 0;
  bool aff = false;
  cr_assert_eq (ra_target_checkpoint_arch (path, &hidden, &layers, &aff, &err), RA_OK, "%s", err.message);
  cr_expect_eq (hidden, 6);
  cr_expect_eq (layers, 1);
  cr_expect (aff);
  unlink (path);
  ra_target_destroy (&t);
}
