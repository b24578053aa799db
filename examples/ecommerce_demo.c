/*  examples/ecommerce_demo.c - the smallest useful C client: connects to a running
    recarena-server, makes 256 ECommerce-v1 users, and compares a random policy with a greedy one
    that scores candidates from what it observes (user interest estimate . candidate embedding,
    plus quality, minus price relative to budget). Both policies see the same users (same seed).

    usage: ecommerce_demo [--endpoint tcp://127.0.0.1:5555] [--episodes 3] [--num-envs 256]
           ecommerce_demo --ping [--endpoint EP]     exits 0 when the server answers a ping */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/kv.h"
#include "common/rng.h"
#include "protocol/client.h"

typedef struct {
  double impressions, clicks, purchases, revenue, sessions;
} metrics_t;

typedef void (*policy_fn) (const ra_step_result_t *r, int n, int K, int k, int32_t *slates,
                           ra_rng_t *rng);

static void s_random (const ra_step_result_t *r, int n, int K, int k, int32_t *slates, ra_rng_t *rng)
{
  (void) r;
  int32_t idx[256];
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < K; j++)
      idx[j] = j;
    for (int j = 0; j < k; j++) {   /* partial Fisher-Yates: k distinct candidates */
      int p = j + (int) ra_rng_below (rng, (uint32_t) (K - j));
      int32_t t = idx[j];
      idx[j] = idx[p];
      idx[p] = t;
      slates[i * k + j] = idx[j];
    }
  }
}

static float s_f32 (const ra_tensor_t *t, int64_t i)
{
  float v;
  memcpy (&v, (const char *) t->data + 4 * i, 4);
  return v;
}

/* Candidate row: [embedding (d), log price, quality, margin, price / budget]; user row:
   [interest estimate (d), budget fraction, log budget, step fraction, click rate]. */
static void s_greedy (const ra_step_result_t *r, int n, int K, int k, int32_t *slates, ra_rng_t *rng)
{
  (void) rng;
  const ra_tensor_t *user = &r->obs.tensors[ra_fields_find (&r->obs, "user")];
  const ra_tensor_t *cand = &r->obs.tensors[ra_fields_find (&r->obs, "candidates")];
  int fu = (int) user->shape[1], fc = (int) cand->shape[2], d = fu - 4;
  float score[256];
  for (int i = 0; i < n; i++) {
    for (int c = 0; c < K; c++) {
      int64_t row = ((int64_t) i * K + c) * fc;
      float s = 0;
      for (int q = 0; q < d; q++)
        s += s_f32 (user, (int64_t) i * fu + q) * s_f32 (cand, row + q);
      s += 0.5f * s_f32 (cand, row + d + 1);   /* quality */
      s -= 1.0f * s_f32 (cand, row + d + 3);   /* price relative to the remaining budget */
      score[c] = s;
    }
    for (int j = 0; j < k; j++) {   /* top-k by selection */
      int best = -1;
      for (int c = 0; c < K; c++)
        if (best < 0 || score[c] > score[best])
          best = c;
      slates[i * k + j] = best;
      score[best] = -1e30f;
    }
  }
}

static int s_run (ra_client_t *c, const char *name, policy_fn policy, int n, int episodes,
                  metrics_t *m)
{
  ra_error_t err;
  ra_make_opts_t mo = { .has_seed = true, .seed = 2024 };
  ra_client_env_t env;
  if (ra_client_make (c, "ECommerce-v1", n, &mo, &env, &err) != RA_OK) {
    fprintf (stderr, "make: %s\n", err.message);
    return 1;
  }
  const ra_space_t *as = env.action_space;
  int K = (int) (as->type == RA_SPACE_DISCRETE ? as->n : as->nvec[0]);
  int k = as->type == RA_SPACE_DISCRETE ? 1 : (int) as->shape[0];
  if (K > 256 || k > K) {
    fprintf (stderr, "this demo handles at most 256 candidates\n");
    ra_client_env_fini (&env);
    return 1;
  }
  int32_t *slates = calloc ((size_t) n * k, sizeof *slates);
  int *done = calloc ((size_t) n, sizeof *done);
  ra_step_result_t r;
  ra_rng_t rng;
  ra_rng_seed (&rng, 1, 0);
  int rc = 1;
  memset (m, 0, sizeof *m);
  if (ra_client_reset (c, &env, NULL, NULL, &r, &err) != RA_OK) {
    fprintf (stderr, "reset: %s\n", err.message);
    goto out;
  }
  int limit = episodes * (env.max_episode_steps + 1) + 1, finished = 0;
  for (int t = 0; t < limit && finished < n; t++) {
    policy (&r, n, K, k, slates, &rng);
    int64_t shape[2] = { n, k };
    ra_tensor_t act = ra_tensor_view (RA_DTYPE_I32, k == 1 ? 1 : 2, shape, slates);
    if (ra_client_step (c, &env, &act, &r, &err) != RA_OK) {
      fprintf (stderr, "step: %s\n", err.message);
      goto out;
    }
    const ra_tensor_t *clicked = &r.info.tensors[ra_fields_find (&r.info, "clicked")];
    const ra_tensor_t *bought = &r.info.tensors[ra_fields_find (&r.info, "purchased")];
    const ra_tensor_t *revenue = &r.info.tensors[ra_fields_find (&r.info, "revenue")];
    const ra_tensor_t *mask = &r.info.tensors[ra_fields_find (&r.info, "_clicked")];
    const uint8_t *term = r.terminated.data, *trunc = r.truncated.data;
    for (int i = 0; i < n; i++) {
      if (done[i] >= episodes || !((const uint8_t *) mask->data)[i])
        continue;
      for (int j = 0; j < k; j++) {
        m->impressions += 1;
        m->clicks += ((const uint8_t *) clicked->data)[i * k + j];
        m->purchases += ((const uint8_t *) bought->data)[i * k + j];
        m->revenue += s_f32 (revenue, (int64_t) i * k + j);
      }
      if (term[i] || trunc[i]) {
        m->sessions += 1;
        if (++done[i] == episodes)
          finished++;
      }
    }
  }
  printf ("  %-8s done: %.0f sessions\n", name, m->sessions);
  rc = 0;
out:
  ra_client_close (c, &env, &err);
  ra_client_env_fini (&env);
  free (slates);
  free (done);
  return rc;
}

int main (int argc, char **argv)
{
  const char *endpoint = "tcp://127.0.0.1:5555";
  int episodes = 3, n = 256;
  bool ping_only = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp (a, "--ping")) {
      ping_only = true;
      continue;
    }
    if (!v || (strcmp (a, "--endpoint") && strcmp (a, "--episodes") && strcmp (a, "--num-envs"))) {
      fprintf (stderr, "usage: %s [--endpoint EP] [--episodes N] [--num-envs N] [--ping]\n", argv[0]);
      return 2;
    }
    i++;
    long long x;
    ra_error_t err;
    if (!strcmp (a, "--endpoint"))
      endpoint = v;
    else if (ra_kv_parse_int (a, v, 1, !strcmp (a, "--episodes") ? 1 << 20 : 1 << 16, &x, &err) != RA_OK) {
      fprintf (stderr, "%s\n", err.message);
      return 2;
    } else if (!strcmp (a, "--episodes"))
      episodes = (int) x;
    else
      n = (int) x;
  }
  if (episodes < 1 || n < 1) {
    fprintf (stderr, "--episodes and --num-envs must be positive\n");
    return 2;
  }
  ra_client_t *c;
  ra_error_t err;
  if (ra_client_new (endpoint, ping_only ? 500 : 10000, &c, &err) != RA_OK) {
    if (!ping_only)
      fprintf (stderr, "cannot reach recarena-server at %s: %s\n", endpoint, err.message);
    return 1;
  }
  if (ping_only) {
    ra_err_t rc = ra_client_ping (c, &err);
    ra_client_destroy (&c);
    return rc == RA_OK ? 0 : 1;
  }
  printf ("ECommerce-v1 on %s: %d users, %d episodes each\n", endpoint, n, episodes);
  struct { const char *name; policy_fn fn; metrics_t m; } arms[] = {
    { "random", s_random, { 0, 0, 0, 0, 0 } },
    { "greedy", s_greedy, { 0, 0, 0, 0, 0 } },
  };
  for (size_t a = 0; a < 2; a++)
    if (s_run (c, arms[a].name, arms[a].fn, n, episodes, &arms[a].m) != 0) {
      ra_client_destroy (&c);
      return 1;
    }
  printf ("\n%-8s %10s %12s %20s\n", "policy", "CTR", "conversion", "revenue/session");
  for (size_t a = 0; a < 2; a++) {
    const metrics_t *m = &arms[a].m;
    printf ("%-8s %9.2f%% %11.2f%% %20.2f\n", arms[a].name,
            m->impressions ? 100 * m->clicks / m->impressions : 0,
            m->clicks ? 100 * m->purchases / m->clicks : 0, m->sessions ? m->revenue / m->sessions : 0);
  }
  printf ("(CTR: clicks per slot shown; conversion: purchases per click)\n");
  ra_client_destroy (&c);
  return 0;
}
