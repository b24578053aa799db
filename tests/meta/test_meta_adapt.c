/*  tests/meta/test_meta_adapt.c - the adaptation operator and its checkpoints (agents/meta/adapt.h,
    docs/meta.md 1): the settings and the training state (docs/meta.md 5) survive a checkpoint
    round trip next to the parameters (which a plain target loader still reads); head-only adaptation leaves the scorer's body at theta while
    all-parameter adaptation moves it; adaptation is a deterministic function of theta and seeds,
    independent of what the work policy did before (fresh inner optimiser); a replica adapted alone
    at its batch index (ra_meta_adapt_at) gets the same phi as in the batch; damaged settings,
    training state or header length are refused with the file named, the outputs untouched; an
    evaluation or a new rollout after an adaptation starts every env with a new user's session. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents/meta/adapt.h"
#include "agents/policies/rollout_inproc.h"
#include "tests/nn/ckpt_mutate.h"

enum { P = 2, N = 4 };

static ra_nn_backend_t *be;
static ra_rollout_t *src;
static ra_target_cfg_t tc;

static void setup (void)
{
  ra_error_t err;
  cr_assert_eq (ra_nn_backend_open ("cpu", NULL, &be, &err), RA_OK);
  static const ra_kv_t cfg[] = { { .key = "task_slots", .type = RA_KV_NUM, .num = 5 } };
  ra_rollout_inproc_opts_t o = { .env = "ECommerce-v1", .num_envs = P * N, .seed = 3, .config = cfg, .n_config = 1 };
  cr_assert_eq (ra_rollout_inproc_new (&o, &src, &err), RA_OK, "%s", err.message);
  ra_target_cfg_default (&tc);
  tc.num_envs = N, tc.population = P, tc.hidden = 16, tc.rollout = 4, tc.seed = 5;
  tc.num_candidates = src->obs.num_candidates, tc.slate_size = src->obs.slate_size;
  tc.user_dim = src->obs.user_dim, tc.cand_dim = src->obs.cand_dim;
}

static void teardown (void)
{
  ra_rollout_destroy (&src);
  ra_nn_backend_destroy (&be);
}

TestSuite (meta_adapt, .init = setup, .fini = teardown, .timeout = 100);

Test (meta_adapt, checkpoint_round_trip_keeps_parameters_and_adaptation_settings)
{
  ra_target_cfg_t c = tc;
  c.population = 1;
  ra_target_t *a = NULL, *b = NULL;
  ra_error_t err;
  c.seed = 1;
  cr_assert_eq (ra_target_new (be, &c, &a, &err), RA_OK, "%s", err.message);
  c.seed = 2;
  cr_assert_eq (ra_target_new (be, &c, &b, &err), RA_OK, "%s", err.message);
  char path[] = "/tmp/test_meta_ckpt_XXXXXX";
  int fd = mkstemp (path);
  cr_assert_geq (fd, 0);
  close (fd);
  ra_meta_adapt_cfg_t s = { .inner_lr = 0.0123f, .steps = 7, .rollout = 8, .head_only = true }, back;
  ra_meta_adapt_cfg_default (&back);
  cr_assert_eq (ra_meta_ckpt_save (a, path, &s, "fomaml", NULL, &err), RA_OK, "%s", err.message);
  bool found = false;
  char algo[16];
  cr_assert_eq (ra_meta_ckpt_read (path, &back, &found, algo, sizeof algo, &err), RA_OK, "%s", err.message);
  cr_assert (found);
  cr_assert_eq (back.inner_lr, s.inner_lr);
  cr_assert_eq (back.steps, 7);
  cr_assert_eq (back.rollout, 8);
  cr_assert (back.head_only);
  cr_assert_str_eq (algo, "fomaml");
  /* the target loader reads the extended file: same parameters */
  cr_assert_eq (ra_target_load (b, path, &err), RA_OK, "%s", err.message);
  size_t n = ra_target_num_params (a);
  float *x = malloc (n * sizeof *x), *y = malloc (n * sizeof *y);
  ra_target_get_params (a, x);
  ra_target_get_params (b, y);
  cr_assert_eq (memcmp (x, y, n * sizeof *x), 0);
  /* a plain checkpoint has no settings: found is false, the settings untouched */
  cr_assert_eq (ra_target_save (a, path, &err), RA_OK);
  back.steps = 99;
  cr_assert_eq (ra_meta_ckpt_read (path, &back, &found, NULL, 0, &err), RA_OK, "%s", err.message);
  cr_assert_not (found);
  cr_assert_eq (back.steps, 99);
  cr_assert_neq (ra_meta_ckpt_read ("/nonexistent/x.safetensors", &back, &found, NULL, 0, &err), RA_OK);
  remove (path);
  free (x);
  free (y);
  ra_target_destroy (&a);
  ra_target_destroy (&b);
}

Test (meta_adapt, checkpoint_round_trip_keeps_the_training_state)
{
  ra_target_cfg_t c = tc;
  c.population = 1;
  ra_target_t *a = NULL;
  ra_error_t err;
  cr_assert_eq (ra_target_new (be, &c, &a, &err), RA_OK, "%s", err.message);
  char path[] = "/tmp/test_meta_state_XXXXXX";
  int fd = mkstemp (path);
  cr_assert_geq (fd, 0);
  close (fd);
  size_t n = ra_target_num_params (a);
  float *m = malloc (n * sizeof *m), *v = malloc (n * sizeof *v), *m2 = calloc (n, sizeof *m2),
        *v2 = calloc (n, sizeof *v2), *x = malloc (n * sizeof *x), *y = malloc (n * sizeof *y);
  for (size_t j = 0; j < n; j++) {
    m[j] = 0.5f - (float) j / (float) n;
    v[j] = 1e-6f * (float) (j + 1);
  }
  ra_meta_adapt_cfg_t s = { .inner_lr = 0.01f, .steps = 2, .rollout = 4 };
  ra_meta_resume_t at = { .iter = 37, .env_steps = 123456, .rng_counter = 99, .adam_t = 36,
                          .adam_m = m, .adam_v = v, .n = n };
  cr_assert_eq (ra_meta_ckpt_save (a, path, &s, "es", &at, &err), RA_OK, "%s", err.message);
  /* the counts alone, then the moments; a target loader still reads the parameters */
  ra_meta_resume_t back = { 0 };
  bool found = false;
  cr_assert_eq (ra_meta_ckpt_read_resume (path, &back, &found, &err), RA_OK, "%s", err.message);
  cr_assert (found);
  cr_assert_eq (back.iter, 37);
  cr_assert_eq (back.env_steps, 123456);
  cr_assert_eq (back.rng_counter, 99u);
  cr_assert_eq (back.adam_t, 36);
  back = (ra_meta_resume_t) { .adam_m = m2, .adam_v = v2, .n = n };
  cr_assert_eq (ra_meta_ckpt_read_resume (path, &back, &found, &err), RA_OK, "%s", err.message);
  cr_assert_eq (memcmp (m, m2, n * sizeof *m), 0);
  cr_assert_eq (memcmp (v, v2, n * sizeof *v), 0);
  ra_target_get_params (a, x);
  ra_target_set_params (a, m); /* anything else, then load */
  cr_assert_eq (ra_target_load (a, path, &err), RA_OK, "%s", err.message);
  ra_target_get_params (a, y);
  cr_assert_eq (memcmp (x, y, n * sizeof *x), 0);
  /* moments of another size: refused, naming both sizes */
  back.n = n - 1;
  cr_assert_eq (ra_meta_ckpt_read_resume (path, &back, &found, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "outer-optimiser moments"), "%s", err.message);
  /* without a state (NULL at, or a plain target checkpoint): found is false */
  cr_assert_eq (ra_meta_ckpt_save (a, path, &s, "es", NULL, &err), RA_OK, "%s", err.message);
  back = (ra_meta_resume_t) { .iter = 5 };
  cr_assert_eq (ra_meta_ckpt_read_resume (path, &back, &found, &err), RA_OK, "%s", err.message);
  cr_assert_not (found);
  cr_assert_eq (back.iter, 5);
  remove (path);
  free (m), free (v), free (m2), free (v2), free (x), free (y);
  ra_target_destroy (&a);
}

/* The meta checkpoint readers on one edited file: one refuses it at least, naming it; a reader that
   refuses writes nothing. */
static void s_refused (const ck_file_t *f, const char *path, size_t n, const char *what)
{
  cr_assert_eq (ck_write (path, f), 0);
  ra_meta_adapt_cfg_t a = { .inner_lr = 7 }, a0 = a;
  float m[4] = { 1, 2, 3, 4 };
  ra_meta_resume_t at = { .iter = 5, .adam_m = n == 4 ? m : NULL, .adam_v = n == 4 ? m : NULL, .n = n }, at0 = at;
  bool found = false, found2 = false;
  ra_error_t err = { 0 };
  ra_err_t r1 = ra_meta_ckpt_read (path, &a, &found, NULL, 0, &err);
  if (r1 != RA_OK)
    cr_expect (strstr (err.message, path), "%s: %s", what, err.message);
  ra_err_t r2 = ra_meta_ckpt_read_resume (path, &at, &found2, &err);
  if (r2 != RA_OK)
    cr_expect (strstr (err.message, path), "%s: %s", what, err.message);
  cr_expect (r1 != RA_OK || r2 != RA_OK, "%s: accepted", what);
  cr_expect (r1 == RA_OK || !memcmp (&a, &a0, sizeof a), "%s: refused settings written", what);
  cr_expect (r2 == RA_OK || (!memcmp (&at, &at0, sizeof at) && m[3] == 4), "%s: refused state written", what);
}

/* The first n bytes equal to x in [from, to), or NULL. */
static unsigned char *s_find (unsigned char *from, const unsigned char *to, const void *x, size_t n)
{
  for (; from + n <= to; from++)
    if (!memcmp (from, x, n))
      return from;
  return NULL;
}

Test (meta_adapt, damaged_settings_and_training_state_are_refused)
{
  ra_target_cfg_t c = tc;
  c.population = 1;
  ra_target_t *t = NULL;
  ra_error_t err;
  cr_assert_eq (ra_target_new (be, &c, &t, &err), RA_OK, "%s", err.message);
  char path[] = "/tmp/test_meta_damaged_XXXXXX";
  int fd = mkstemp (path);
  cr_assert_geq (fd, 0);
  close (fd);
  float mom[4] = { 0.5f, 0.25f, 0.125f, 1 };
  ra_meta_adapt_cfg_t s = { .inner_lr = 0.01f, .steps = 2, .rollout = 4 };
  ra_meta_resume_t at = { .iter = 3, .env_steps = 100, .rng_counter = 9, .adam_t = 2, .adam_m = mom,
                          .adam_v = mom, .n = 4 };
  cr_assert_eq (ra_meta_ckpt_save (t, path, &s, "es", &at, &err), RA_OK, "%s", err.message);
  ck_file_t file = ck_read (path), f;
  char *hdr = ck_header (&file);
  /* header lengths that wrap an unchecked hlen + 8 */
  static const uint64_t lens[] = { UINT64_MAX, UINT64_MAX - 7, UINT64_MAX - 8, (uint64_t) 1 << 63 };
  for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
    f = ck_copy (&file);
    ck_set_hlen (&f, lens[i]);
    s_refused (&f, path, 4, "a huge header length");
    free (f.b);
  }
  static const struct {
    const char *key, *val;
  } bad[] = { { "meta_inner_lr", "\"inf\"" }, { "meta_inner_lr", "\"nan\"" }, { "meta_inner_lr", "\"0.1x\"" },
              { "meta_inner_lr", "\"1e9\"" }, { "meta_inner_steps", "\"abc\"" }, { "meta_inner_steps", "\"5x\"" },
              { "meta_inner_steps", "\"99999999999\"" }, { "meta_inner_steps", "\"-1\"" },
              { "meta_rollout", "\"0\"" }, { "meta_rollout", "\"1e3\"" }, { "meta_rollout", "\"4097\"" },
              { "meta_adapt_params", "\"heads\"" },
              { "meta_inner_lr", "\"0.0100000000000000000000000000000000000000000000000000000\"" },
              { "meta_iter", "\"abc\"" }, { "meta_iter", "\"-3\"" }, { "meta_iter", "\"3.5\"" },
              { "meta_iter", "\"99999999999999999999\"" }, { "meta_env_steps", "\"\"" }, { "meta_adam_t", "\"x\"" },
              { "meta_rng_counter", "\"-1\"" }, { "meta_rng_counter", "\"9x\"" },
              { "meta_rng_counter", "\"999999999999999999999\"" },
              { "meta_iter", "\"0000000000000000000000000000000000000003\"" } };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char *h = ck_set (hdr, "__metadata__", bad[i].key, bad[i].val), what[128];
    cr_assert (h, "%s absent", bad[i].key);
    snprintf (what, sizeof what, "%s %s", bad[i].key, bad[i].val);
    f = ck_with_header (&file, h, 1);
    s_refused (&f, path, 4, what);
    free (f.b);
    free (h);
  }
  /* a key twice, the first a valid value of its own: the readers search the header text for the
     first, the nn load refuses the file; both readers refuse it, naming the file and the key */
  static const char *const twice[] = { "meta_inner_lr", "meta_inner_steps", "meta_rollout", "meta_adapt_params",
                                       "meta_algo", "meta_iter", "meta_env_steps", "meta_rng_counter",
                                       "meta_adam_t" };
  for (size_t i = 0; i < sizeof twice / sizeof *twice; i++) {
    size_t at, len, mat, mlen;
    cr_assert (ck_find (hdr, "__metadata__", twice[i], &at, &len), "%s absent", twice[i]);
    cr_assert (ck_find_entry (hdr, "__metadata__", &mat, &mlen));
    char dup[96];
    snprintf (dup, sizeof dup, "\"%s\":\"%s\",", twice[i], !strcmp (twice[i], "meta_adapt_params") ? "head" : "1");
    char *h = ck_splice (hdr, mat + strlen ("\"__metadata__\":{"), 0, dup);
    f = ck_with_header (&file, h, 1);
    cr_assert_eq (ck_write (path, &f), 0);
    ra_meta_adapt_cfg_t a = { 0 };
    ra_meta_resume_t r = { .n = 4 };
    bool found;
    ra_error_t e1 = { 0 }, e2 = { 0 };
    cr_expect_neq (ra_meta_ckpt_read (path, &a, &found, NULL, 0, &e1), RA_OK, "%s twice: settings read", twice[i]);
    cr_expect (strstr (e1.message, path) && strstr (e1.message, twice[i]), "%s", e1.message);
    cr_expect_neq (ra_meta_ckpt_read_resume (path, &r, &found, &e2), RA_OK, "%s twice: state read", twice[i]);
    cr_expect (strstr (e2.message, path) && strstr (e2.message, twice[i]), "%s", e2.message);
    free (f.b);
    free (h);
  }
  /* a NaN or an infinity planted in a moment: refused naming the tensor and entry, except +inf in v
     (an overflowed second moment, accepted as the nn load accepts it in adam_v) */
  unsigned char *data = file.b + 8 + ck_hlen (&file);
  unsigned char *m_at = s_find (data, file.b + file.n, mom, sizeof mom);
  cr_assert (m_at, "the moments' bytes not found");
  unsigned char *v_at = s_find (m_at + sizeof mom, file.b + file.n, mom, sizeof mom);
  cr_assert (v_at, "adam_v's bytes not found after adam_m's");
  static const struct {
    bool in_v;
    float x;
    bool accepted;
    const char *what;
  } plant[] = { { false, NAN, false, "meta.adam_m[2]" }, { false, INFINITY, false, "meta.adam_m[2]" },
                { false, -INFINITY, false, "meta.adam_m[2]" }, { true, NAN, false, "meta.adam_v[2]" },
                { true, -INFINITY, false, "meta.adam_v[2]" }, { true, INFINITY, true, NULL } };
  for (size_t i = 0; i < sizeof plant / sizeof *plant; i++) {
    f = ck_copy (&file);
    memcpy (f.b + ((plant[i].in_v ? v_at : m_at) - file.b) + 2 * sizeof (float), &plant[i].x, sizeof (float));
    cr_assert_eq (ck_write (path, &f), 0);
    float m4[4] = { 0 }, v4[4] = { 0 };
    ra_meta_resume_t r = { .adam_m = m4, .adam_v = v4, .n = 4 };
    bool found = false;
    ra_error_t e = { 0 };
    ra_err_t rc = ra_meta_ckpt_read_resume (path, &r, &found, &e);
    if (plant[i].accepted) {
      cr_expect_eq (rc, RA_OK, "+inf in adam_v: %s", e.message);
      cr_expect (found && v4[2] == INFINITY && m4[2] == mom[2]);
    } else {
      cr_expect_eq (rc, RA_ERR_IO, "%s = %g accepted", plant[i].what, (double) plant[i].x);
      cr_expect (strstr (e.message, path) && strstr (e.message, plant[i].what), "%s", e.message);
      cr_expect (!found && r.iter == 0 && m4[0] == 0 && v4[0] == 0, "%s: refused state written", plant[i].what);
    }
    free (f.b);
  }
  /* the moments past the data */
  char *h = ck_set (hdr, "meta.adam_v", "data_offsets", "[1000000,1000016]");
  f = ck_with_header (&file, h, 1);
  s_refused (&f, path, 4, "meta.adam_v past the data");
  free (f.b);
  free (h);
  free (hdr);
  free (file.b);
  remove (path);
  ra_target_destroy (&t);
}

Test (meta_adapt, head_only_keeps_the_body_and_adaptation_is_deterministic)
{
  ra_target_t *w = NULL;
  ra_error_t err;
  cr_assert_eq (ra_target_new (be, &tc, &w, &err), RA_OK, "%s", err.message);
  size_t all = ra_target_num_params (w), n = all / P;
  float *theta = malloc (all * sizeof (float)), *phi = malloc (all * sizeof (float)),
        *phi2 = malloc (all * sizeof (float)), *scratch = malloc (all * sizeof (float));
  uint8_t *mask = malloc (n);
  ra_target_get_params (w, theta);
  int64_t ids[P] = { 4, 9 };
  cr_assert_eq (ra_meta_set_block_tasks (src, P, N, "train", ids, &err), RA_OK, "%s", err.message);
  uint64_t seeds[P * N];
  for (int i = 0; i < P * N; i++)
    seeds[i] = 40 + (uint64_t) i;
  ra_meta_adapt_cfg_t a = { .inner_lr = 1e-2f, .steps = 3, .rollout = 4, .head_only = true };
  ra_meta_adapt_mask (w, true, mask);
  size_t body = 0;
  for (size_t j = 0; j < n; j++)
    body += !mask[j];
  cr_assert_gt (body, 0);
  cr_assert_lt (body, n);
  ra_target_stats_t st = { 0 };
  cr_assert_eq (ra_meta_adapt (w, theta, mask, src, &a, seeds, 77, &st, scratch, &err), RA_OK, "%s", err.message);
  cr_assert_eq (st.env_steps, 3 * 4 * P * N);
  ra_target_get_params (w, phi);
  size_t moved_head = 0;
  for (int r = 0; r < P; r++)
    for (size_t j = 0; j < n; j++) {
      if (!mask[j])
        cr_assert_eq (phi[r * n + j], theta[r * n + j], "body entry %zu of replica %d moved", j, r);
      else
        moved_head += phi[r * n + j] != theta[r * n + j];
    }
  cr_assert_gt (moved_head, 0);
  /* the same call again: identical phi, whatever the work policy did before */
  cr_assert_eq (ra_meta_adapt (w, theta, mask, src, &a, seeds, 77, NULL, scratch, &err), RA_OK, "%s", err.message);
  ra_target_get_params (w, phi2);
  cr_assert_eq (memcmp (phi, phi2, all * sizeof (float)), 0);
  /* all parameters: the body moves too */
  a.head_only = false;
  cr_assert_eq (ra_meta_adapt (w, theta, NULL, src, &a, seeds, 77, NULL, scratch, &err), RA_OK, "%s", err.message);
  ra_target_get_params (w, phi2);
  size_t moved_body = 0;
  for (size_t j = 0; j < n; j++)
    moved_body += !mask[j] && phi2[j] != theta[j];
  cr_assert_gt (moved_body, 0);
  /* the two replicas ran different tasks: different phi even from one theta */
  memcpy (theta + n, theta, n * sizeof (float));
  cr_assert_eq (ra_meta_adapt (w, theta, NULL, src, &a, seeds, 77, NULL, scratch, &err), RA_OK, "%s", err.message);
  ra_target_get_params (w, phi2);
  cr_assert_neq (memcmp (phi2, phi2 + n, n * sizeof (float)), 0);
  /* frozen evaluation: one mean return per replica, deterministic */
  double r1[P], r2[P];
  int64_t steps = 0;
  cr_assert_eq (ra_meta_evaluate (w, src, seeds, 10000, r1, &steps, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_meta_evaluate (w, src, seeds, 10000, r2, NULL, &err), RA_OK, "%s", err.message);
  cr_assert_gt (steps, 0);
  cr_assert_eq (memcmp (r1, r2, sizeof r1), 0);
  a.rollout = 5; /* not what the policy was built for */
  cr_assert_eq (ra_meta_adapt (w, theta, NULL, src, &a, seeds, 77, NULL, scratch, &err), RA_ERR_BAD_CONFIG);
  free (theta);
  free (phi);
  free (phi2);
  free (scratch);
  free (mask);
  ra_target_destroy (&w);
}

/* A rank that plays replica 1 alone (a P = 1 policy over its own N envs, ra_meta_adapt_at with
   first = 1) gets the very phi that replica 1 gets in the P = 2 batch: what lets recarena-meta split
   a meta-batch over MPI ranks (docs/scaling.md 5). With first = 0 it samples replica 0's stream
   and the phi differs, so the check can fail. */
Test (meta_adapt, a_replica_adapted_alone_at_its_index_matches_the_batch)
{
  ra_target_t *w = NULL, *w1 = NULL;
  ra_rollout_t *src1 = NULL;
  ra_error_t err;
  cr_assert_eq (ra_target_new (be, &tc, &w, &err), RA_OK, "%s", err.message);
  ra_target_cfg_t c1 = tc;
  c1.population = 1;
  cr_assert_eq (ra_target_new (be, &c1, &w1, &err), RA_OK, "%s", err.message);
  static const ra_kv_t cfg[] = { { .key = "task_slots", .type = RA_KV_NUM, .num = 5 } };
  ra_rollout_inproc_opts_t o = { .env = "ECommerce-v1", .num_envs = N, .seed = 3, .config = cfg, .n_config = 1 };
  cr_assert_eq (ra_rollout_inproc_new (&o, &src1, &err), RA_OK, "%s", err.message);
  size_t all = ra_target_num_params (w), n = all / P;
  float *theta = malloc (all * sizeof (float)), *phi = malloc (all * sizeof (float)),
        *phi1 = malloc (n * sizeof (float)), *scratch = malloc (all * sizeof (float));
  ra_target_get_params (w, theta);
  memcpy (theta + n, theta, n * sizeof (float));
  int64_t ids[P] = { 4, 9 };
  cr_assert_eq (ra_meta_set_block_tasks (src, P, N, "train", ids, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_meta_set_block_tasks (src1, 1, N, "train", ids + 1, &err), RA_OK, "%s", err.message);
  uint64_t seeds[P * N];
  for (int i = 0; i < P * N; i++)
    seeds[i] = 40 + (uint64_t) i;
  ra_meta_adapt_cfg_t a = { .inner_lr = 1e-2f, .steps = 3, .rollout = 4, .head_only = false };
  cr_assert_eq (ra_meta_adapt (w, theta, NULL, src, &a, seeds, 77, NULL, scratch, &err), RA_OK, "%s", err.message);
  ra_target_get_params (w, phi);
  cr_assert_eq (ra_meta_adapt_at (w1, 1, theta + n, NULL, src1, &a, seeds + N, 77, NULL, scratch, &err), RA_OK,
                "%s", err.message);
  ra_target_get_params (w1, phi1);
  cr_assert_eq (memcmp (phi + n, phi1, n * sizeof (float)), 0, "replica 1 alone differs from replica 1 in the batch");
  cr_assert_eq (ra_meta_adapt_at (w1, 0, theta + n, NULL, src1, &a, seeds + N, 77, NULL, scratch, &err), RA_OK,
                "%s", err.message);
  ra_target_get_params (w1, phi1);
  cr_assert_neq (memcmp (phi + n, phi1, n * sizeof (float)), 0, "the sampling stream should matter");
  free (theta);
  free (phi);
  free (phi1);
  free (scratch);
  ra_rollout_destroy (&src1);
  ra_target_destroy (&w1);
  ra_target_destroy (&w);
}

/* --val-act sample (docs/meta.md 3): a sampled evaluation draws from its own streams and puts the
   replicas' sampling RNGs back, so an adaptation continued after it gives the same phi as after a
   greedy evaluation (which draws nothing); it is deterministic, and it scores something else than
   top-k play. */
Test (meta_adapt, a_sampled_evaluation_leaves_the_adaptation_streams_alone)
{
  ra_target_t *w = NULL;
  ra_error_t err;
  cr_assert_eq (ra_target_new (be, &tc, &w, &err), RA_OK, "%s", err.message);
  size_t all = ra_target_num_params (w);
  float *theta = malloc (all * sizeof (float)), *phi_g = malloc (all * sizeof (float)),
        *phi_s = malloc (all * sizeof (float)), *scratch = malloc (all * sizeof (float));
  ra_target_get_params (w, theta);
  int64_t ids[P] = { 2, 6 };
  cr_assert_eq (ra_meta_set_block_tasks (src, P, N, "train", ids, &err), RA_OK, "%s", err.message);
  uint64_t seeds[P * N], eseeds[P * N];
  for (int i = 0; i < P * N; i++)
    seeds[i] = 90 + (uint64_t) i, eseeds[i] = 500 + (uint64_t) i;
  ra_meta_adapt_cfg_t a = { .inner_lr = 1e-2f, .steps = 2, .rollout = 4, .head_only = false };
  double rg[P], rs[P], rs2[P];
  for (int mode = 0; mode < 2; mode++) {
    cr_assert_eq (ra_meta_adapt (w, theta, NULL, src, &a, seeds, 77, NULL, scratch, &err), RA_OK, "%s", err.message);
    if (mode == 0)
      cr_assert_eq (ra_meta_evaluate (w, src, eseeds, 10000, rg, NULL, &err), RA_OK, "%s", err.message);
    else
      cr_assert_eq (ra_meta_evaluate_as (w, src, eseeds, 10000, RA_META_ACT_SAMPLE, 0, 123, rs, NULL, &err),
                    RA_OK, "%s", err.message);
    cr_assert_eq (ra_target_begin_rollout (w, src, seeds, &err), RA_OK, "%s", err.message);
    cr_assert_eq (ra_meta_adapt_more (w, theta, NULL, src, NULL, scratch, &err), RA_OK, "%s", err.message);
    ra_target_get_params (w, mode == 0 ? phi_g : phi_s);
  }
  cr_assert_eq (memcmp (phi_g, phi_s, all * sizeof (float)), 0,
                "the adaptation after a sampled evaluation differs from the one after a greedy evaluation");
  cr_assert_eq (ra_meta_evaluate_as (w, src, eseeds, 10000, RA_META_ACT_SAMPLE, 0, 123, rs2, NULL, &err), RA_OK,
                "%s", err.message);
  double rs3[P];
  cr_assert_eq (ra_meta_evaluate_as (w, src, eseeds, 10000, RA_META_ACT_SAMPLE, 0, 123, rs3, NULL, &err), RA_OK,
                "%s", err.message);
  cr_assert_eq (memcmp (rs2, rs3, sizeof rs2), 0, "a sampled evaluation must be deterministic");
  double rg2[P];
  cr_assert_eq (ra_meta_evaluate (w, src, eseeds, 10000, rg2, NULL, &err), RA_OK, "%s", err.message);
  cr_assert (rg2[0] != rs2[0] || rg2[1] != rs2[1], "sampled and top-k play scored the same (%g %g)", rg2[0],
             rs2[0]);
  free (theta);
  free (phi_g);
  free (phi_s);
  free (scratch);
  ra_target_destroy (&w);
}

/* Validation evaluates after an adaptation, then adapts on (agents/meta/train.c s_validate): both reset
   every env with explicit seeds mid-episode. With the user's session (T12) and slates without a
   click (T13) in the context, each must start every env with a new user, as if the envs had been
   marked done (ra_target_end_sessions): no session runs on into another user's episode, and the
   reset's zeros are not a slate without a click. A clone marked so by hand is the reference. */
Test (meta_adapt, an_evaluation_and_a_new_rollout_start_new_users)
{
  ra_target_cfg_t c = tc;
  c.affinity = true, c.context = 2.0f, c.context_session = 1.0f, c.context_baseline = 0.1f;
  c.response_dim = src->obs.response_dim;
  ra_target_t *w = NULL;
  ra_error_t err;
  cr_assert_eq (ra_target_new (be, &c, &w, &err), RA_OK, "%s", err.message);
  size_t all = ra_target_num_params (w);
  float *theta = malloc (all * sizeof (float)), *scratch = malloc (all * sizeof (float));
  float *phi_w = malloc (all * sizeof (float)), *phi_r = malloc (all * sizeof (float));
  ra_target_get_params (w, theta);
  int64_t ids[P] = { 1, 4 };
  cr_assert_eq (ra_meta_set_block_tasks (src, P, N, "train", ids, &err), RA_OK, "%s", err.message);
  uint64_t seeds[P * N], eseeds[P * N], more[P * N];
  uint8_t ones[P * N];
  for (int i = 0; i < P * N; i++)
    seeds[i] = 40 + (uint64_t) i, eseeds[i] = 700 + (uint64_t) i, more[i] = 900 + (uint64_t) i, ones[i] = 1;
  ra_meta_adapt_cfg_t a = { .inner_lr = 1e-2f, .steps = 3, .rollout = 4, .head_only = false };
  cr_assert_eq (ra_meta_adapt (w, theta, NULL, src, &a, seeds, 77, NULL, scratch, &err), RA_OK, "%s", err.message);
  ra_target_t *ref = ra_target_clone (w);
  cr_assert_not_null (ref);
  ra_target_end_sessions (ref, ones, P * N);
  double rw[P], rr[P];
  cr_assert_eq (ra_meta_evaluate (w, src, eseeds, 10000, rw, NULL, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_meta_evaluate (ref, src, eseeds, 10000, rr, NULL, &err), RA_OK, "%s", err.message);
  cr_assert (rw[0] == rr[0] && rw[1] == rr[1], "the evaluation read the adaptation's sessions (%g %g against %g %g)",
             rw[0], rw[1], rr[0], rr[1]);
  /* and the adaptation after it, from the evaluation's last slates */
  ra_target_end_sessions (ref, ones, P * N);
  cr_assert_eq (ra_target_begin_rollout (w, src, more, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_meta_adapt_more (w, theta, NULL, src, NULL, scratch, &err), RA_OK, "%s", err.message);
  ra_target_get_params (w, phi_w);
  cr_assert_eq (ra_target_begin_rollout (ref, src, more, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_meta_adapt_more (ref, theta, NULL, src, NULL, scratch, &err), RA_OK, "%s", err.message);
  ra_target_get_params (ref, phi_r);
  cr_assert_eq (memcmp (phi_w, phi_r, all * sizeof (float)), 0,
                "the rollout after the evaluation read the evaluation's sessions or the reset's zeros");
  free (theta);
  free (scratch);
  free (phi_w);
  free (phi_r);
  ra_target_destroy (&ref);
  ra_target_destroy (&w);
}
