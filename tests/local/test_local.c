/*  tests/local/test_local.c - the in-process C API (env/local/local.h): argument errors with the
    server's codes, stable buffers, step validation that changes nothing on error, thread count
    never changing results, and News-v1 trajectories bit-identical to a recording.

    The recording: FNV-1a digests of every output byte of 300 steps of News-v1 (37 envs, next_step
    autoreset, a reseeding reset and a set_task midway) under nine configs, taken from the code
    before News-v1's state layout was compacted (docs/sims/news.md section 12). A change that
    alters any trajectory changes a digest.                                                     */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env/local/local.h"

static ra_local_t *s_make (const char *env, int n, const ra_kv_t *cfg, int ncfg, const char *ar,
                           int threads)
{
  ra_local_args_t a = { .env = env, .num_envs = n, .seed = 17, .config = cfg, .n_config = ncfg,
                        .autoreset = ar, .threads = threads };
  ra_local_t *l = NULL;
  ra_error_t err;
  ra_err_t rc = ra_local_new (&a, &l, &err);
  cr_assert_eq (rc, RA_OK, "make %s: %s", env, err.message);
  return l;
}

static uint64_t s_splitmix (uint64_t *x)
{
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* A random valid slate per env: k distinct of K. */
static void s_actions (ra_local_t *l, uint64_t *rng, int64_t *a)
{
  int n = ra_local_num_envs (l), K = ra_local_num_candidates (l), k = ra_local_slate_size (l);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < k; j++) {
      int64_t v;
      bool dup;
      do {
        v = (int64_t) (s_splitmix (rng) % (uint64_t) K);
        dup = false;
        for (int jj = 0; jj < j; jj++)
          dup |= a[i * k + jj] == v;
      } while (dup);
      a[i * k + j] = v;
    }
}

static uint64_t s_fnv (uint64_t h, const void *p, size_t n)
{
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ c[i]) * 0x100000001B3ull;
  return h;
}

static size_t s_bytes (const ra_local_field_t *f, int n)
{
  static const size_t dsize[] = { 4, 8, 4, 8, 1, 1, 1 };
  size_t b = (size_t) n * dsize[f->dtype];
  for (int d = 0; d < f->ndim; d++)
    b *= (size_t) f->shape[d];
  return b;
}

/* Digest of every output buffer of the batch. */
static uint64_t s_digest_out (const ra_local_t *l, uint64_t h)
{
  int n = ra_local_num_envs (l);
  ra_local_buffers_t b;
  ra_local_buffers (l, &b);
  ra_local_field_t f;
  for (int i = 0; ra_local_field (l, false, i, &f); i++)
    h = s_fnv (h, b.obs[i], s_bytes (&f, n));
  for (int i = 0; ra_local_field (l, true, i, &f); i++)
    h = s_fnv (h, b.info[i], s_bytes (&f, n));
  h = s_fnv (h, b.reward, (size_t) n * sizeof (float));
  h = s_fnv (h, b.terminated, (size_t) n);
  return s_fnv (h, b.truncated, (size_t) n);
}

static uint64_t s_run_digest (const char *env, const ra_kv_t *cfg, int ncfg, int threads)
{
  ra_local_t *l = s_make (env, 37, cfg, ncfg, NULL, threads);
  int n = ra_local_num_envs (l), k = ra_local_slate_size (l);
  int64_t *a = malloc (sizeof *a * (size_t) n * (size_t) k), shape[2] = { n, k };
  uint64_t rng = 99, h = 0xcbf29ce484222325ull;
  ra_error_t err;
  cr_assert_eq (ra_local_reset (l, NULL, NULL), RA_OK);
  h = s_digest_out (l, h);
  for (int t = 0; t < 300; t++) {
    if (t == 120) {   /* reseed half of the envs: their streams restart */
      uint64_t seeds[64];
      uint8_t mask[64];
      for (int i = 0; i < n; i++) {
        seeds[i] = 1000 + (uint64_t) i;
        mask[i] = i % 2;
      }
      cr_assert_eq (ra_local_reset (l, seeds, mask), RA_OK);
      h = s_digest_out (l, h);
    }
    if (t == 200) {   /* a new task from the next reset on */
      ra_task_t task = { .split = "test", .id = 3 };
      cr_assert_eq (ra_local_set_task (l, &task, NULL, &err), RA_OK, "%s", err.message);
    }
    s_actions (l, &rng, a);
    cr_assert_eq (ra_local_step (l, a, k == 1 ? 1 : 2, shape, &err), RA_OK, "%s", err.message);
    h = s_digest_out (l, h);
  }
  free (a);
  ra_local_destroy (&l);
  return h;
}

#define KN(k, v) { .key = k, .type = RA_KV_NUM, .num = v }
#define KB(k, v) { .key = k, .type = RA_KV_BOOL, .num = v }
#define KS(k, v) { .key = k, .type = RA_KV_STR, .str = v }

typedef struct {
  const char *what;
  ra_kv_t cfg[4];
  int n;
  uint64_t digest;
} s_case_t;

/* Recorded from the code before the News-v1 compaction (see the header). */
static const s_case_t s_news_cases[] = {
  { "defaults", { { 0 } }, 0, 0x1585249849358699ull },
  { "oracle", { KB ("oracle", 1) }, 1, 0x2968fc5b7cdd1cdaull },
  { "logit choice", { KS ("choice_model", "logit"), KN ("num_candidates", 30) }, 2, 0x0975e46880530adcull },
  { "drift and return", { KB ("dynamics.drift", 1), KB ("dynamics.return", 1) }, 2, 0xe25d53da504581b7ull },
  { "no boredom, no budget", { KB ("dynamics.boredom", 0), KB ("dynamics.time_budget", 0) }, 2, 0x3230d8babccaa296ull },
  { "wide ring", { KN ("publish_rate", 7), KN ("max_age", 40), KN ("embedding_dim", 13),
                   KN ("num_topics", 200) }, 4, 0x325583ce31906ae7ull },
  { "small ring", { KN ("publish_rate", 1), KN ("max_age", 20), KN ("retrieval_mix", 0.9),
                    KN ("slate_size", 1) }, 4, 0x27e4077d713d8d5aull },
  { "huge ring (prefetching path)", { KN ("publish_rate", 64), KN ("max_age", 64) }, 2, 0xa77518e8be383d6aull },
  { "position based", { KS ("choice_model", "position_based"), KS ("reward", "weighted"),
                        KB ("oracle", 1) }, 3, 0xd285f184acf69017ull },
};

Test (local, news_trajectories_match_the_recording)
{
  int bad = 0;
  for (size_t c = 0; c < sizeof s_news_cases / sizeof s_news_cases[0]; c++) {
    const s_case_t *sc = &s_news_cases[c];
    uint64_t h = s_run_digest ("News-v1", sc->cfg, sc->n, 0);
    if (h != sc->digest) {
      cr_log_error ("News-v1 %s: digest 0x%016llxull, recorded 0x%016llxull", sc->what,
                    (unsigned long long) h, (unsigned long long) sc->digest);
      bad++;
    }
  }
  cr_assert_eq (bad, 0, "%d News-v1 configs changed their trajectories", bad);
}

Test (local, worker_threads_never_change_results)
{
  const s_case_t *sc = &s_news_cases[3];
  cr_assert_eq (s_run_digest ("News-v1", sc->cfg, sc->n, 3), sc->digest);
  cr_assert_eq (s_run_digest ("ECommerce-v1", NULL, 0, 0), s_run_digest ("ECommerce-v1", NULL, 0, 2));
}

static ra_err_t s_try_make (const char *env, int64_t n, const char *ar, bool has_max, int64_t max,
                            const ra_kv_t *cfg, int ncfg, ra_error_t *err)
{
  ra_local_args_t a = { .env = env, .num_envs = n, .autoreset = ar, .has_max_episode_steps = has_max,
                        .max_episode_steps = max, .config = cfg, .n_config = ncfg };
  ra_local_t *l = NULL;
  ra_err_t rc = ra_local_new (&a, &l, err);
  cr_assert_eq (rc == RA_OK, l != NULL);
  ra_local_destroy (&l);
  return rc;
}

Test (local, bad_make_gets_the_servers_codes)
{
  ra_error_t err;
  ra_kv_t bad_key[] = { KN ("no_such_key", 1) }, bad_val[] = { KN ("num_candidates", 1) };
  cr_assert_eq (s_try_make ("Nope-v1", 1, NULL, false, 0, NULL, 0, &err), RA_ERR_UNKNOWN_ENV);
  cr_assert (strstr (err.message, "News-v1"), "%s", err.message);
  cr_assert_eq (s_try_make ("News-v1", 0, NULL, false, 0, NULL, 0, &err), RA_ERR_BAD_REQUEST);
  cr_assert_eq (s_try_make ("News-v1", RA_LOCAL_MAX_ENVS + 1, NULL, false, 0, NULL, 0, &err), RA_ERR_LIMIT);
  cr_assert_eq (s_try_make ("News-v1", 1, "often", false, 0, NULL, 0, &err), RA_ERR_BAD_CONFIG);
  cr_assert_eq (s_try_make ("News-v1", 1, NULL, true, 0, NULL, 0, &err), RA_ERR_BAD_CONFIG);
  cr_assert_eq (s_try_make ("News-v1", 1, NULL, false, 0, bad_key, 1, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "no_such_key"), "%s", err.message);
  cr_assert_eq (s_try_make ("News-v1", 1, NULL, false, 0, bad_val, 1, &err), RA_ERR_BAD_CONFIG);
  cr_assert_eq (s_try_make ("News-v1", 1, "same_step", true, 5, NULL, 0, &err), RA_OK);
}

Test (local, bad_steps_change_nothing_and_buffers_stay_put)
{
  ra_local_t *l = s_make ("ECommerce-v1", 3, NULL, 0, "disabled", 0);
  int K = ra_local_num_candidates (l), k = ra_local_slate_size (l);
  cr_assert_gt (k, 1);
  ra_local_buffers_t b0, b1;
  ra_local_buffers (l, &b0);
  int64_t a[3 * 16], shape[2] = { 3, k };
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < k; j++)
      a[i * k + j] = j;
  ra_error_t err;
  cr_assert_eq (ra_local_step (l, a, 2, shape, &err), RA_ERR_NEEDS_RESET);   /* never reset */
  cr_assert_eq (ra_local_reset (l, NULL, NULL), RA_OK);
  uint64_t before = s_digest_out (l, 1);
  int64_t wrong[2] = { 3, k + 1 };
  cr_assert_eq (ra_local_step (l, a, 2, wrong, &err), RA_ERR_BAD_ACTION);
  cr_assert_eq (ra_local_step (l, a, 1, shape, &err), RA_ERR_BAD_ACTION);
  a[2 * k + 1] = a[2 * k];   /* env 2 repeats a candidate */
  cr_assert_eq (ra_local_step (l, a, 2, shape, &err), RA_ERR_BAD_ACTION);
  cr_assert_eq (err.env_index, 2);
  a[2 * k + 1] = K;          /* out of range */
  cr_assert_eq (ra_local_step (l, a, 2, shape, &err), RA_ERR_BAD_ACTION);
  cr_assert (strstr (err.message, "expected 0.."), "%s", err.message);
  cr_assert_eq (s_digest_out (l, 1), before, "a rejected step changed the outputs");
  a[2 * k + 1] = 1;
  int32_t a32[3 * 16];
  for (int i = 0; i < 3 * k; i++)
    a32[i] = (int32_t) a[i];
  cr_assert_eq (ra_local_step_i32 (l, a32, 2, shape, &err), RA_OK, "%s", err.message);
  ra_local_buffers (l, &b1);
  cr_assert (memcmp (&b0, &b1, sizeof b0) == 0, "the buffers moved");
  ra_task_t bad = { .split = "nope", .id = 1 };
  cr_assert_eq (ra_local_set_task (l, &bad, NULL, &err), RA_ERR_BAD_CONFIG);
  ra_kv_t desc[64];
  cr_assert_gt (ra_local_describe_task (l, 0, desc, 64), 0);
  cr_assert_eq (ra_local_describe_task (l, 3, desc, 64), -1);
  char text[4096];
  cr_assert_gt (ra_local_render (l, 1, text, sizeof text), 0);
  cr_assert_eq (ra_local_render (l, 5, text, sizeof text), -1);
  ra_local_destroy (&l);
  ra_local_destroy (&l);
}
