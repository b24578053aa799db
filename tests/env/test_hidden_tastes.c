/*  tests/env/test_hidden_tastes.c - the hidden_tastes config key of every simulator
    (docs/sims/shared.md section 4): off (absent or 0) and the default task are bit-identical to
    a recording taken from the code before the key existed; on, a drawn task's users click by
    tastes the observation does not show, the same for two runs with one seed and different for
    two tasks whose observations are identical; describe_task says whether it is on, never the
    secret; bad values are BAD_CONFIG naming the key. reveal_tastes (shared.md 4.7; ECommerce-v1, Ads-v1)
    shows the secret in the observation and changes nothing else.

    The recording: FNV-1a digests of every output byte of 150 random-slate steps of 16 envs
    (seed 7, terminated envs reset) per sim and case, taken before hidden_tastes was added.   */
#include <criterion/criterion.h>
#include <string.h>

#include "env/core/sim.h"
#include "env/sims/ads.h"
#include "env/sims/content.h"
#include "env/sims/ecommerce.h"
#include "env/sims/news.h"
#include "env/sims/registry.h"
#include "sim_harness.h"

#define S_NENV 16
#define S_STEPS 150
#define S_SWITCH 75

static const ra_sim_class_t *s_class (const char *name)
{
  const ra_sim_class_t *c = ra_sims_find (name, (int) strlen (name));
  cr_assert_not_null (c, "no sim %s", name);
  return c;
}

static uint64_t s_fnv (uint64_t h, const void *p, size_t n)
{
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ c[i]) * 0x100000001B3ull;
  return h;
}

static uint64_t s_digest (const harness_t *h, uint64_t d)
{
  for (int f = 0; f < h->spec->n_obs; f++)
    d = s_fnv (d, h->buf.obs[f], h->obs_bytes[f] * (size_t) h->n);
  for (int f = 0; f < h->spec->n_info; f++)
    d = s_fnv (d, h->buf.info[f], h->info_bytes[f] * (size_t) h->n);
  d = s_fnv (d, h->buf.reward, (size_t) h->n * sizeof (float));
  return s_fnv (d, h->buf.terminated, (size_t) h->n);
}

/* Env i's user row (observation field 0; its first embedding_dim floats are the tastes). */
static float *s_user_row (const harness_t *h, int i)
{
  return (float *) h->buf.obs[0] + h->obs_bytes[0] / sizeof (float) * (size_t) i;
}

/* s_digest with each user row's first `blank` floats (its tastes) set to 0 first, so it compares
   everything but them; blank 0: s_digest. */
static uint64_t s_digest_blanked (harness_t *h, uint64_t d, int blank)
{
  for (int i = 0; blank > 0 && i < h->n; i++)
    memset (s_user_row (h, i), 0, (size_t) blank * sizeof (float));
  return s_digest (h, d);
}

/* Digest of S_STEPS random steps of S_NENV envs made with cfg on task `start` (NULL: default), with
   set_task(`later`) at step S_SWITCH when later is not NULL; with the user rows' first
   `blank` floats left out when blank > 0. */
static uint64_t s_play (const ra_sim_class_t *cls, const ra_kv_t *cfg, int n_cfg, const ra_task_t *start,
                        const ra_task_t *later, int blank)
{
  ra_sim_t *sim = h_make (cls, S_NENV, 7, cfg, n_cfg, start);
  harness_t h;
  h_init (&h, cls->spec (sim), S_NENV);
  const int K = h.spec->num_candidates, k = h.spec->slate_size;
  ra_rng_t arng;
  ra_rng_seed (&arng, 99, 3);
  int32_t act[S_NENV * RA_CHOICE_MAX_SLATE];
  uint64_t d = 0xcbf29ce484222325ull;
  cls->reset (sim, 0, S_NENV, NULL, NULL, &h.buf);
  d = s_digest_blanked (&h, d, blank);
  for (int t = 0; t < S_STEPS; t++) {
    if (later && t == S_SWITCH) {
      ra_error_t err;
      cr_assert_eq (cls->set_task (sim, later, NULL, &err), RA_OK, "%s", err.message);
    }
    for (int i = 0; i < S_NENV; i++)
      h_random_slate (&arng, K, k, act + (size_t) i * k);
    cls->step (sim, 0, S_NENV, act, &h.buf);
    d = s_digest_blanked (&h, d, blank);
    cls->reset (sim, 0, S_NENV, NULL, h.buf.terminated, &h.buf);
    d = s_digest_blanked (&h, d, blank);
  }
  h_fini (&h);
  cls->destroy (&sim);
  return d;
}

static uint64_t s_run (const ra_sim_class_t *cls, const ra_kv_t *cfg, int n_cfg, const ra_task_t *start,
                       const ra_task_t *later)
{
  return s_play (cls, cfg, n_cfg, start, later, 0);
}

typedef struct {
  const char *sim;
  uint64_t plain;       /* default task throughout */
  uint64_t switched;    /* default task, then test:3 from step S_SWITCH */
  uint64_t ood;         /* made on ood:2 */
} s_rec_t;

/* Recorded before hidden_tastes existed (see the header). */
static const s_rec_t s_rec[] = {
  { "ECommerce-v1", 0x08f79c3b087dc660ull, 0x61c47aa1ed086157ull, 0x3b7ed718ff9c9b05ull },
  { "Ads-v1", 0x53b1c6f2baa33872ull, 0xbd58a46c6e7927bdull, 0x505d44155e13e01full },
  { "News-v1", 0x51b4988fa3232abcull, 0xc64d2174c447dfc8ull, 0x5e0eda9fcc570cd2ull },
  { "Content-v1", 0x768b8d541e207660ull, 0x67b840b5024e4eddull, 0x1ef7c62b0c8bf2c9ull },
};
#define S_NREC ((int) (sizeof s_rec / sizeof s_rec[0]))

static const ra_task_t s_test3 = { .split = "test", .id = 3 };
static const ra_task_t s_ood2 = { .split = "ood", .id = 2 };

#define KN(k, v) { .key = k, .type = RA_KV_NUM, .num = v }

Test (hidden_tastes, off_matches_the_recording_from_before_the_key)
{
  static const ra_kv_t off = KN ("hidden_tastes", 0);
  int bad = 0;
  for (int r = 0; r < S_NREC; r++) {
    const ra_sim_class_t *cls = s_class (s_rec[r].sim);
    uint64_t got[6] = { s_run (cls, NULL, 0, NULL, NULL), s_run (cls, NULL, 0, NULL, &s_test3),
                        s_run (cls, NULL, 0, &s_ood2, NULL), s_run (cls, &off, 1, NULL, NULL),
                        s_run (cls, &off, 1, NULL, &s_test3), s_run (cls, &off, 1, &s_ood2, NULL) };
    uint64_t want[3] = { s_rec[r].plain, s_rec[r].switched, s_rec[r].ood };
    for (int c = 0; c < 6; c++)
      if (got[c] != want[c % 3]) {
        cr_log_error ("%s case %d%s: digest 0x%016llxull, recorded 0x%016llxull", s_rec[r].sim, c % 3,
                      c >= 3 ? " (hidden_tastes 0)" : "", (unsigned long long) got[c],
                      (unsigned long long) want[c % 3]);
        bad++;
      }
  }
  cr_assert_eq (bad, 0, "%d runs changed their trajectories", bad);
}

static const ra_kv_t s_on = KN ("hidden_tastes", 1);

Test (hidden_tastes, on_leaves_the_default_task_as_recorded)
{
  for (int r = 0; r < S_NREC; r++)
    cr_assert_eq (s_run (s_class (s_rec[r].sim), &s_on, 1, NULL, NULL), s_rec[r].plain,
                  "%s: the default task changed with hidden_tastes 1", s_rec[r].sim);
}

Test (hidden_tastes, on_changes_drawn_tasks_the_same_way_for_the_same_seed)
{
  static const ra_kv_t half = KN ("hidden_tastes", 0.5);
  for (int r = 0; r < S_NREC; r++) {
    const ra_sim_class_t *cls = s_class (s_rec[r].sim);
    uint64_t a = s_run (cls, &s_on, 1, NULL, &s_test3), b = s_run (cls, &s_on, 1, NULL, &s_test3);
    cr_assert_eq (a, b, "%s: two runs with one seed differ", s_rec[r].sim);
    cr_assert_neq (a, s_rec[r].switched, "%s: hidden_tastes 1 changed nothing on test:3", s_rec[r].sim);
    uint64_t o = s_run (cls, &s_on, 1, &s_ood2, NULL);
    cr_assert_neq (o, s_rec[r].ood, "%s: hidden_tastes 1 changed nothing on ood:2", s_rec[r].sim);
    cr_assert_eq (o, s_run (cls, &s_on, 1, &s_ood2, NULL), "%s: ood:2 not reproducible", s_rec[r].sim);
    uint64_t h = s_run (cls, &half, 1, NULL, &s_test3);
    cr_assert (h != a && h != s_rec[r].switched, "%s: strength 0.5 is neither 0 nor 1", s_rec[r].sim);
  }
}

/* Digest of the outputs of `steps` random steps of n envs made on task (seed 11), after
   comparing the reset observations with ref (when ref is not NULL; else they are stored in
   *obs0, malloc'd). */
static uint64_t s_short (const ra_sim_class_t *cls, const ra_kv_t *cfg, int n_cfg, const ra_task_t *task,
                         int n, int steps, unsigned char **obs0, const unsigned char *ref)
{
  ra_sim_t *sim = h_make (cls, n, 11, cfg, n_cfg, task);
  harness_t h;
  h_init (&h, cls->spec (sim), n);
  const int K = h.spec->num_candidates, k = h.spec->slate_size;
  size_t rb = h_obs_row_bytes (&h);
  cls->reset (sim, 0, n, NULL, NULL, &h.buf);
  unsigned char *o = malloc (rb * (size_t) n);
  for (int i = 0; i < n; i++)
    h_record_obs (&h, i, o + rb * (size_t) i);
  if (ref) {
    cr_assert_eq (memcmp (o, ref, rb * (size_t) n), 0, "%s: reset observations differ", cls->name);
    free (o);
  } else {
    *obs0 = o;
  }
  ra_rng_t arng;
  ra_rng_seed (&arng, 5, 1);
  int32_t *act = malloc (sizeof *act * (size_t) (n * k));
  uint64_t d = 0xcbf29ce484222325ull;
  for (int t = 0; t < steps; t++) {
    for (int i = 0; i < n; i++)
      h_random_slate (&arng, K, k, act + (size_t) i * k);
    cls->step (sim, 0, n, act, &h.buf);
    d = s_digest (&h, d);
    cls->reset (sim, 0, n, NULL, h.buf.terminated, &h.buf);
  }
  free (act);
  h_fini (&h);
  cls->destroy (&sim);
  return d;
}

/* Two tasks with identical parameters (test:1 overridden with every value of test:0) show
   identical observations; off they play identically, on their users click differently. */
Test (hidden_tastes, identical_observations_click_differently_across_tasks)
{
  for (int r = 0; r < S_NREC; r++) {
    const ra_sim_class_t *cls = s_class (s_rec[r].sim);
    static const ra_task_t t0 = { .split = "test", .id = 0 };
    ra_sim_t *sim = h_make (cls, 1, 1, NULL, 0, &t0);
    ra_kv_t desc[64];
    int nd = cls->describe_task (sim, 0, desc, 64);
    cr_assert_gt (nd, 2);
    ra_task_t t1 = { .split = "test", .id = 1, .params = desc + 2, .n_params = nd - 2 };
    for (int on = 0; on < 2; on++) {
      const ra_kv_t *cfg = on ? &s_on : NULL;
      unsigned char *obs = NULL;
      uint64_t a = s_short (cls, cfg, on, &t0, 64, 3, &obs, NULL);
      uint64_t b = s_short (cls, cfg, on, &t1, 64, 3, NULL, obs);
      free (obs);
      if (on)
        cr_assert_neq (a, b, "%s: hidden tastes of test:0 and test:1 click alike", cls->name);
      else
        cr_assert_eq (a, b, "%s: same parameters, different play with hidden_tastes off", cls->name);
    }
    cls->destroy (&sim);
  }
}

/* Mean theta . theta_hat over n users of task test:3 after one reset: how well the observation
   shows the tastes clicks follow. With `observed`, the observation's user row (its first 16
   floats) in place of the sim's theta_hat. */
static double s_alignment (const ra_sim_class_t *cls, const ra_kv_t *cfg, int n_cfg, int n, bool observed)
{
  ra_sim_t *sim = h_make (cls, n, 3, cfg, n_cfg, &s_test3);
  harness_t h;
  h_init (&h, cls->spec (sim), n);
  cls->reset (sim, 0, n, NULL, NULL, &h.buf);
  double sum = 0;
  for (int i = 0; i < n; i++) {
    const float *th, *hat;
    if (cls == &ra_ecommerce_class) {
      ra_ecommerce_view_t v;
      ra_ecommerce_view (sim, i, &v);
      th = v.theta, hat = v.theta_hat;
    } else if (cls == &ra_ads_class) {
      ra_ads_view_t v;
      ra_ads_view (sim, i, &v);
      th = v.theta, hat = v.theta_hat;
    } else if (cls == &ra_news_class) {
      ra_news_view_t v;
      ra_news_view (sim, i, &v);
      th = v.theta, hat = v.theta_hat;
    } else {
      ra_content_view_t v;
      ra_content_view (sim, i, &v);
      th = v.theta, hat = v.theta_hat;
    }
    if (observed)
      hat = s_user_row (&h, i);
    sum += ra_users_dot (th, hat, 16);   /* every sim's default embedding_dim */
  }
  h_fini (&h);
  cls->destroy (&sim);
  return sum / n;
}

/* Off, theta_hat is theta plus noise (alignment ~0.95); at strength 1 theta sits around the
   centre of the secret topic pi(z), which is z for only about one topic in T, so a user's
   observed and true tastes share little more than chance. */
Test (hidden_tastes, observed_tastes_no_longer_show_the_clicking_ones)
{
  for (int r = 0; r < S_NREC; r++) {
    const ra_sim_class_t *cls = s_class (s_rec[r].sim);
    double off = s_alignment (cls, NULL, 0, 256, false), on = s_alignment (cls, &s_on, 1, 256, false);
    cr_log_info ("%s: mean theta . theta_hat off %.3f, hidden_tastes 1 %.3f", cls->name, off, on);
    cr_assert_gt (off, 0.85, "%s: off alignment %.3f", cls->name, off);
    cr_assert_lt (on, 0.5, "%s: on alignment %.3f", cls->name, on);
  }
}

/* reveal_tastes (shared.md 4.7; ECommerce-v1 and Ads-v1): the observed theta_hat moves as theta
   does, so the observation shows the tastes clicks follow; retrieval, clicks and every other
   output are those of the same seed without it. Off, or without hidden tastes, it changes nothing.
   The other two sims reject the key as unknown. */
static const ra_kv_t s_reveal[] = { KN ("hidden_tastes", 1), { .key = "reveal_tastes", .type = RA_KV_BOOL, .num = 1 } };

Test (hidden_tastes, reveal_shows_the_clicking_tastes_and_changes_nothing_else)
{
  const int d = 16;
  for (int r = 0; r < 2; r++) {   /* s_rec[0] ECommerce-v1, s_rec[1] Ads-v1 */
    const ra_sim_class_t *cls = s_class (s_rec[r].sim);
    cr_assert_eq (s_play (cls, s_reveal, 2, NULL, &s_test3, d), s_play (cls, &s_on, 1, NULL, &s_test3, d),
                  "%s: reveal_tastes changed more than the user rows' tastes", cls->name);
    cr_assert_neq (s_run (cls, s_reveal, 2, NULL, &s_test3), s_run (cls, &s_on, 1, NULL, &s_test3),
                   "%s: reveal_tastes changed no observation", cls->name);
    cr_assert_eq (s_run (cls, s_reveal, 2, NULL, NULL), s_rec[r].plain, "%s: reveal_tastes changed the default task",
                  cls->name);
    cr_assert_eq (s_run (cls, s_reveal + 1, 1, NULL, &s_test3), s_rec[r].switched,
                  "%s: reveal_tastes without hidden tastes changed test:3", cls->name);
    double hidden = s_alignment (cls, &s_on, 1, 256, true), shown = s_alignment (cls, s_reveal, 2, 256, true);
    cr_log_info ("%s: mean theta . observed row, hidden %.3f, revealed %.3f", cls->name, hidden, shown);
    cr_assert_lt (hidden, 0.5, "%s: hidden alignment %.3f", cls->name, hidden);
    cr_assert_gt (shown, 0.85, "%s: revealed alignment %.3f", cls->name, shown);
    h_expect_bad_config (cls, "reveal_tastes",
                         (ra_kv_t) { .key = "reveal_tastes", .type = RA_KV_STR, .str = "yes" }, "a string");
  }
  for (int r = 2; r < S_NREC; r++)
    h_expect_bad_config (s_class (s_rec[r].sim), "reveal_tastes", s_reveal[1], "an unknown key");
}

static double s_describe (const ra_sim_class_t *cls, ra_sim_t *sim, int *n_out, bool *has)
{
  ra_kv_t kv[64];
  int n = cls->describe_task (sim, 0, kv, 64);
  *n_out = n;
  *has = false;
  for (int q = 0; q < n; q++)
    if (!strcmp (kv[q].key, "hidden_tastes")) {
      *has = true;
      return kv[q].num;
    }
  return -1;
}

Test (hidden_tastes, describe_task_says_whether_it_is_on_and_bad_values_are_bad_config)
{
  static const ra_kv_t some = KN ("hidden_tastes", 0.7);
  for (int r = 0; r < S_NREC; r++) {
    const ra_sim_class_t *cls = s_class (s_rec[r].sim);
    int n_off, n_on;
    bool has;
    ra_sim_t *off = h_make (cls, 2, 1, NULL, 0, &s_test3);
    s_describe (cls, off, &n_off, &has);
    cr_assert (!has, "%s: describe_task names hidden_tastes while it is off", cls->name);
    cls->destroy (&off);
    ra_sim_t *on = h_make (cls, 2, 1, &some, 1, NULL);
    cr_assert_eq (s_describe (cls, on, &n_on, &has), 0.0, "%s: the default task is never hidden", cls->name);
    cr_assert (has);
    cr_assert_eq (n_on, n_off + 1, "%s: on adds exactly the one entry", cls->name);
    ra_error_t err;
    cr_assert_eq (cls->set_task (on, &s_test3, NULL, &err), RA_OK, "%s", err.message);
    cr_assert_eq (s_describe (cls, on, &n_on, &has), 0.7, "%s: a drawn task runs at the config's strength",
                  cls->name);
    cls->destroy (&on);
    h_expect_bad_config (cls, "hidden_tastes", (ra_kv_t) KN ("hidden_tastes", 1.5), "above 1");
    h_expect_bad_config (cls, "hidden_tastes", (ra_kv_t) KN ("hidden_tastes", -0.1), "below 0");
    h_expect_bad_config (cls, "hidden_tastes", (ra_kv_t) { .key = "hidden_tastes", .type = RA_KV_STR, .str = "on" },
                         "a string");
  }
}

/* ra_users_draw with hidden tastes is the draw without them, then
   theta <- normalise(theta + s (c_pi(z) - c_z)): theta_hat, the rest of the user and the stream
   are unchanged. */
Test (hidden_tastes, users_draw_moves_theta_to_the_secret_topic_and_nothing_else)
{
  ra_catalog_t c;
  ra_error_t err;
  const int d = 16, T = 12;
  cr_assert_eq (ra_catalog_init (&c, 200, T, d, &err), RA_OK);
  ra_catalog_params_t cp = { 3, 1.0, 0.5, 20 };
  ra_catalog_build (&c, &cp);
  ra_user_pop_t plain = { .interest_spread = 0.5, .obs_noise = 0.3, .budget_mean = 100,
                          .price_sensitivity = 2, .patience_mean = 15 };
  ra_user_pop_t hid = plain, again = plain, other = plain, half = plain;
  ra_users_hide_tastes (&hid, 1.0, 42, T);
  ra_users_hide_tastes (&again, 1.0, 42, T);
  ra_users_hide_tastes (&half, 0.5, 42, T);
  ra_users_hide_tastes (&other, 1.0, 43, T);
  cr_assert_eq (memcmp (hid.taste_perm, again.taste_perm, sizeof hid.taste_perm), 0, "same key, different pi");
  cr_assert_neq (memcmp (hid.taste_perm, other.taste_perm, sizeof hid.taste_perm), 0, "keys 42 and 43 drew one pi");
  int seen[12] = { 0 };
  for (int q = 0; q < T; q++)
    seen[hid.taste_perm[q]]++;
  for (int q = 0; q < T; q++)
    cr_assert_eq (seen[q], 1, "taste_perm is not a permutation of 0..%d", T - 1);
  ra_users_hide_tastes (&other, 0.0, 43, T);
  cr_assert_eq (other.hidden, 0.0);
  const ra_user_pop_t *pops[2] = { &hid, &half };
  for (int p = 0; p < 2; p++)
    for (int u = 0; u < 50; u++) {
      ra_rng_t r1, r2;
      ra_rng_seed (&r1, (uint64_t) u, 0);
      ra_rng_seed (&r2, (uint64_t) u, 0);
      ra_user_t a, b;
      float th_a[16], hat_a[16], th_b[16], hat_b[16];
      ra_users_draw (&plain, &c, &r1, &a, th_a, hat_a);
      ra_users_draw (pops[p], &c, &r2, &b, th_b, hat_b);
      cr_assert_eq (memcmp (hat_a, hat_b, sizeof hat_a), 0);
      cr_assert_eq (memcmp (&a, &b, sizeof a), 0);
      cr_assert_eq (ra_rng_next (&r1), ra_rng_next (&r2), "hidden tastes drew from the user's stream");
      const float *cz = c.centres + (size_t) a.topic * d, *cp2 = c.centres + (size_t) pops[p]->taste_perm[a.topic] * d;
      float want[16], n2 = 0;
      for (int q = 0; q < d; q++) {
        want[q] = th_a[q] + (float) pops[p]->hidden * (cp2[q] - cz[q]);
        n2 += want[q] * want[q];
      }
      for (int q = 0; q < d; q++)
        cr_assert_float_eq (th_b[q], want[q] / sqrtf (n2), 1e-5, "user %d coordinate %d", u, q);
      /* ra_users_reveal is that move, bit for bit, on any vector (reveal_tastes: on theta_hat) */
      float moved[16];
      memcpy (moved, th_a, sizeof moved);
      ra_users_reveal (pops[p], &c, a.topic, moved);
      cr_assert_eq (memcmp (moved, th_b, sizeof moved), 0, "user %d: reveal is not the draw's move", u);
      memcpy (moved, hat_a, sizeof moved);
      ra_users_reveal (&plain, &c, a.topic, moved);
      cr_assert_eq (memcmp (moved, hat_a, sizeof moved), 0, "user %d: reveal without hidden tastes moved", u);
    }
  ra_catalog_fini (&c);
}

/* The largest topic counts each sim accepts (more than a byte can index) and the smallest
   embedding run with hidden tastes on (the sanitizer build checks every index). */
Test (hidden_tastes, many_topics_and_small_embeddings_run)
{
  static const ra_kv_t big[] = { KN ("hidden_tastes", 1), KN ("num_topics", 1024), KN ("num_items", 2048),
                                 KN ("embedding_dim", 2) };
  static const ra_kv_t news[] = { KN ("hidden_tastes", 1), KN ("num_topics", 256), KN ("embedding_dim", 2) };
  for (int r = 0; r < S_NREC; r++) {
    const ra_sim_class_t *cls = s_class (s_rec[r].sim);
    bool is_news = cls == &ra_news_class;
    unsigned char *obs = NULL;
    s_short (cls, is_news ? news : big, is_news ? 3 : 4, &s_test3, 8, 20, &obs, NULL);
    free (obs);
  }
}
