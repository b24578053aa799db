/*  tests/policies/test_target_temp.c - the target policy's sampling temperature tau (cfg "temp",
    docs/agents.md T5): slates are Plackett-Luce samples of s / tau and the log-probability,
    entropy and their gradients are those of the same tempered distribution.

    Checked: at tau = 1 nothing tempered is allocated (the untempered code path, bit for bit);
    a power-of-two tau gives exactly the slates, losses and gradients of the untempered policy with
    its last scorer layer divided by tau (the scores are linear in it, and the scaling is exact in
    float); the update's scorer gradient equals central finite differences of the tempered loss
    (and not of the untempered one); sampled slate frequencies match P_tau(slate) (and not P_1);
    the checkpoint round trip and the arm's precedence; bad values are refused naming the key.
    No server.                                                                                  */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents/policies/target_int.h"

enum { K = 3, k = 2, U = 2, F = 2, NS = 6 };

static ra_nn_backend_t *BE;
static void setup (void) { cr_assert_eq (ra_nn_backend_open ("cpu", NULL, &BE, NULL), RA_OK); }
static void teardown (void) { ra_nn_backend_destroy (&BE); }
TestSuite (target_temp, .init = setup, .fini = teardown, .timeout = 120);

static const float USER[U] = { 0.7f, -0.4f };
static const float CAND[K * F] = { 0.5f, -1.0f, -0.3f, 0.8f, 1.2f, 0.1f };
static const int32_t SLATES[NS][k] = { { 0, 1 }, { 0, 2 }, { 1, 0 }, { 1, 2 }, { 2, 0 }, { 2, 1 } };

/* n envs that all see USER and CAND (the caller frees the two buffers) */
static ra_obs_batch_t s_obs (int n, float **users, float **cands)
{
  *users = malloc (sizeof (float) * U * n);
  *cands = malloc (sizeof (float) * K * F * n);
  for (int i = 0; i < n; i++) {
    memcpy (*users + i * U, USER, sizeof USER);
    memcpy (*cands + i * K * F, CAND, sizeof CAND);
  }
  return (ra_obs_batch_t) { .num_envs = n, .num_candidates = K, .slate_size = k, .user_dim = U,
                            .cand_dim = F, .user = *users, .candidates = *cands };
}

/* n envs with users and candidates drawn from a fixed LCG (distinct rows) */
static ra_obs_batch_t s_obs_random (int n, int Kc, int Fc, int Uc, unsigned seed, float **users, float **cands)
{
  *users = malloc (sizeof (float) * Uc * n);
  *cands = malloc (sizeof (float) * Kc * Fc * n);
  unsigned x = seed;
  for (int i = 0; i < Uc * n; i++)
    (*users)[i] = (float) ((x = x * 1664525u + 1013904223u) >> 8) / 16777216.0f * 2 - 1;
  for (int i = 0; i < Kc * Fc * n; i++)
    (*cands)[i] = (float) ((x = x * 1664525u + 1013904223u) >> 8) / 16777216.0f * 2 - 1;
  return (ra_obs_batch_t) { .num_envs = n, .num_candidates = Kc, .slate_size = 2, .user_dim = Uc,
                            .cand_dim = Fc, .user = *users, .candidates = *cands };
}

static ra_target_t *s_new (const ra_target_cfg_t *c)
{
  ra_target_t *t = NULL;
  ra_error_t err;
  cr_assert_eq (ra_target_new (BE, c, &t, &err), RA_OK, "%s", err.message);
  return t;
}

/* Multiplies the last scorer layer (weights and bias) of every replica by f. */
static void s_scale_last_layer (ra_target_t *t, float f)
{
  int last = t->pi.n - 1;
  int ids[2] = { t->pi.w[last], t->pi.b[last] };
  for (int i = 0; i < 2; i++)
    for (int r = 0; r < t->P; r++)
      ra_nn_scale (BE, ra_nn_param (t->params, ids[i]) + (size_t) r * t->params->n, f,
                   t->params->tensors[ids[i]].numel);
}

/* Whether entry j of one replica's flat vector belongs to the last scorer layer. */
static bool s_in_last (const ra_target_t *t, size_t j)
{
  int last = t->pi.n - 1;
  int ids[2] = { t->pi.w[last], t->pi.b[last] };
  for (int i = 0; i < 2; i++) {
    const ra_nn_tensor_t *x = &t->params->tensors[ids[i]];
    if (j >= x->offset && j < x->offset + x->numel)
      return true;
  }
  return false;
}

Test (target_temp, temperature_one_takes_the_untempered_path)
{
  ra_target_cfg_t c;
  ra_target_cfg_default (&c);
  cr_assert_eq (c.temp, 1.0f, "the default temperature is 1");
  c.num_envs = 4, c.num_candidates = K, c.slate_size = k, c.user_dim = U, c.cand_dim = F;
  ra_target_t *t = s_new (&c);
  cr_assert_null (t->d_tscores, "temp 1 must not allocate (or use) tempered scores");
  ra_target_destroy (&t);
  c.temp = 0.5f;
  t = s_new (&c);
  cr_assert_not_null (t->d_tscores);
  ra_target_destroy (&t);
}

/* Policy a at temperature tau against policy b at 1 whose last scorer layer is a's divided by tau
   (tau a power of two, so every scaling is exact in float): identical slates, losses and gradients,
   except the last layer's, where d/dW_a = (1/tau) d/dW_b (the chain rule through W_b = W_a / tau). */
static void s_check_power_of_two (float tau)
{
  enum { P = 2, N = 8, T = 4, KK = 10, FF = 3, UU = 4 };
  ra_target_cfg_t c;
  ra_target_cfg_default (&c);
  c.num_envs = N, c.num_candidates = KK, c.slate_size = 2, c.user_dim = UU, c.cand_dim = FF;
  c.hidden = 8, c.layers = 2, c.rollout = T, c.population = P, c.seed = 9, c.entropy_coef = 0.05f;
  c.temp = tau;
  ra_target_t *a = s_new (&c);
  c.temp = 1.0f;
  ra_target_t *b = s_new (&c);
  s_scale_last_layer (a, 50.0f); /* spread scores: the temperature then changes the slates */
  s_scale_last_layer (b, 50.0f / tau);
  /* and a third policy at temperature 1 with a's parameters: its slates must differ from a's */
  ra_target_t *u = s_new (&c);
  s_scale_last_layer (u, 50.0f);
  int32_t sa[P * N * 2], sb[P * N * 2], su[P * N * 2];
  float rew[P * N];
  uint8_t done[P * N];
  int differ = 0;
  for (int s = 0; s <= T; s++) {
    float *us, *cs;
    ra_obs_batch_t o = s_obs_random (P * N, KK, FF, UU, 100u + (unsigned) s, &us, &cs);
    if (s == T) {
      ra_target_losses_t la[P], lb[P];
      ra_error_t err;
      cr_assert_eq (ra_target_grad (a, &o, la, &err), RA_OK, "%s", err.message);
      cr_assert_eq (ra_target_grad (b, &o, lb, &err), RA_OK, "%s", err.message);
      for (int p = 0; p < P; p++) {
        cr_assert_eq (la[p].policy_loss, lb[p].policy_loss, "tau %g: policy loss", (double) tau);
        cr_assert_eq (la[p].entropy, lb[p].entropy, "tau %g: entropy", (double) tau);
        cr_assert_eq (la[p].value_loss, lb[p].value_loss);
      }
      size_t n = a->params->n;
      float *ga = malloc (sizeof (float) * n * P), *gb = malloc (sizeof (float) * n * P);
      ra_nn_download (BE, ga, a->params->grad, n * P);
      ra_nn_download (BE, gb, b->params->grad, n * P);
      int moved = 0;
      for (int r = 0; r < P; r++)
        for (size_t j = 0; j < n; j++) {
          float x = ga[r * n + j], y = gb[r * n + j];
          float want = s_in_last (a, j) ? y / tau : y;
          cr_assert_eq (x, want, "tau %g: gradient entry %zu of replica %d: %.9g, expected %.9g",
                        (double) tau, j, r, (double) x, (double) want);
          moved += x != 0;
        }
      cr_assert_gt (moved, 10, "the gradient must not be zero");
      free (ga), free (gb);
    } else {
      ra_target_act (a, &o, false, sa);
      ra_target_act (b, &o, false, sb);
      ra_target_act (u, &o, false, su);
      cr_assert_eq (memcmp (sa, sb, sizeof sa), 0, "tau %g: slates differ at step %d", (double) tau, s);
      differ += memcmp (sa, su, sizeof sa) != 0;
      for (int i = 0; i < P * N; i++) {
        rew[i] = (float) ((sa[2 * i] * 7 + sa[2 * i + 1] * 3 + s) % 5);
        done[i] = (uint8_t) ((i + s) % 3 == 0);
      }
      ra_target_record (a, &o, sa, rew, done);
      ra_target_record (b, &o, sb, rew, done);
      ra_target_record (u, &o, su, rew, done);
    }
    free (us), free (cs);
  }
  cr_assert_gt (differ, 0, "tau %g: the tempered policy samples the same slates as the untempered one",
                (double) tau);
  ra_target_destroy (&a);
  ra_target_destroy (&b);
  ra_target_destroy (&u);
}

Test (target_temp, a_power_of_two_temperature_is_the_last_layer_divided_by_it)
{
  s_check_power_of_two (0.5f);
  s_check_power_of_two (0.25f);
  s_check_power_of_two (2.0f);
}

/* The scores of a one-env copy whose parameters are theta (same obs for every env). */
static void s_scores (ra_target_t *one, const float *theta, float *scores)
{
  float *us, *cs;
  ra_target_set_params (one, theta);
  ra_obs_batch_t o = s_obs (1, &us, &cs);
  int32_t slate[k];
  ra_target_act (one, &o, true, slate);
  ra_nn_download (BE, scores, one->pact[one->pi.n], K);
  ra_target_clear_rollout (one);
  free (us), free (cs);
}

/* Host loss of the update with the advantages adv: -(1/M) sum_i adv_i log P_tau(a_i) - c_H (1/M)
   sum_i H_tau(a_i), env i showing SLATES[i], over the scores times 1/tau. */
static double s_loss (const float *scores, const float *adv, float tau, float ent_coef)
{
  float st[K];
  for (int j = 0; j < K; j++)
    st[j] = scores[j] * (1.0f / tau);
  double L = 0;
  for (int i = 0; i < NS; i++) {
    double h = 0, lp = ra_target_pl_logprob (st, K, SLATES[i], k, NULL, &h, NULL);
    L += -(double) adv[i] * lp - ent_coef * h;
  }
  return L / NS;
}

Test (target_temp, the_tempered_gradient_matches_central_differences)
{
  const float tau = 0.3f, ent = 0.05f;
  ra_target_cfg_t c;
  ra_target_cfg_default (&c);
  c.num_envs = NS, c.num_candidates = K, c.slate_size = k, c.user_dim = U, c.cand_dim = F;
  c.hidden = 4, c.layers = 1, c.tanh = true, c.rollout = 1, c.gamma = 0, c.normalize_adv = false;
  c.entropy_coef = ent, c.reward_scale = 1, c.seed = 4, c.temp = tau;
  ra_target_t *t = s_new (&c);
  s_scale_last_layer (t, 30.0f); /* away from uniform: the temperature matters */
  ra_target_cfg_t c1 = c;
  c1.num_envs = 1;
  ra_target_t *one = s_new (&c1);
  size_t n = ra_target_num_params (t);
  float *theta = malloc (sizeof (float) * n), *th = malloc (sizeof (float) * n);
  ra_target_get_params (t, theta);

  /* one step of the 6 slates, rewards, then the update's gradient */
  float *us, *cs;
  ra_obs_batch_t o = s_obs (NS, &us, &cs);
  int32_t sl[NS * k];
  float rew[NS];
  uint8_t done[NS];
  for (int i = 0; i < NS; i++) {
    memcpy (sl + i * k, SLATES[i], sizeof SLATES[i]);
    rew[i] = 0.3f * (float) i - 0.4f * (float) (i % 2);
    done[i] = 1;
  }
  ra_target_record (t, &o, sl, rew, done);
  ra_error_t err;
  cr_assert_eq (ra_target_grad (t, &o, NULL, &err), RA_OK, "%s", err.message);
  float *grad = malloc (sizeof (float) * n), adv[NS];
  ra_nn_download (BE, grad, t->params->grad, n);
  memcpy (adv, t->h_adv, sizeof adv); /* the advantages the update used (r - V, gamma 0) */

  /* central differences of the tempered loss (and of the untempered one) in the scorer's
     parameters */
  double d = 0, m = 0, d1 = 0;
  int ns = 0;
  const float h = 1e-3f;
  float sp[K], sm[K];
  for (int i = 0; i < t->params->ntensors; i++) {
    const ra_nn_tensor_t *x = &t->params->tensors[i];
    if (x->name[0] != 'l')
      continue;
    for (size_t e = 0; e < x->numel; e++, ns++) {
      size_t j = x->offset + e;
      memcpy (th, theta, sizeof (float) * n);
      th[j] = theta[j] + h;
      s_scores (one, th, sp);
      th[j] = theta[j] - h;
      s_scores (one, th, sm);
      double step = (double) (theta[j] + h) - (double) (theta[j] - h);
      double fd = (s_loss (sp, adv, tau, ent) - s_loss (sm, adv, tau, ent)) / step;
      double fd1 = (s_loss (sp, adv, 1.0f, ent) - s_loss (sm, adv, 1.0f, ent)) / step;
      d += (grad[j] - fd) * (grad[j] - fd);
      d1 += (grad[j] - fd1) * (grad[j] - fd1);
      m += fd * fd;
    }
  }
  double e_tau = sqrt (d / m), e_one = sqrt (d1 / m);
  cr_log_info ("tempered gradient vs central differences over %d scorer entries: relative error %.2e "
               "(against the untempered loss: %.2e)", ns, e_tau, e_one);
  cr_assert_gt (m, 1e-6, "the gradient must not vanish");
  cr_assert_lt (e_tau, 1e-2, "relative error %.3g of the gradient at tau %g", e_tau, (double) tau);
  cr_assert_gt (e_one, 0.2, "the gradient should not match the untempered loss (error %.3g)", e_one);
  free (theta), free (th), free (grad), free (us), free (cs);
  ra_target_destroy (&t);
  ra_target_destroy (&one);
}

Test (target_temp, sampled_slates_follow_plackett_luce_of_the_scores_over_tau)
{
  enum { M = 40000 };
  const float taus[] = { 0.5f, 2.0f };
  for (int q = 0; q < 2; q++) {
    float tau = taus[q];
    ra_target_cfg_t c;
    ra_target_cfg_default (&c);
    c.num_envs = M, c.num_candidates = K, c.slate_size = k, c.user_dim = U, c.cand_dim = F;
    c.hidden = 4, c.layers = 1, c.rollout = 1, c.seed = 21, c.temp = tau;
    ra_target_t *t = s_new (&c);
    s_scale_last_layer (t, 200.0f);
    float *us, *cs;
    ra_obs_batch_t o = s_obs (M, &us, &cs);
    int32_t *sl = malloc (sizeof (int32_t) * M * k);
    ra_target_act (t, &o, false, sl);
    float scores[K], st[K];
    ra_nn_download (BE, scores, t->pact[t->pi.n], K);
    float spread = fmaxf (fmaxf (scores[0], scores[1]), scores[2]) - fminf (fminf (scores[0], scores[1]), scores[2]);
    cr_assert_gt (spread, 0.5f, "scores %g %g %g too close to tell temperatures apart", (double) scores[0],
                  (double) scores[1], (double) scores[2]);
    int count[NS] = { 0 };
    for (int i = 0; i < M; i++)
      for (int s = 0; s < NS; s++)
        count[s] += sl[i * k] == SLATES[s][0] && sl[i * k + 1] == SLATES[s][1];
    double worst = 0, worst1 = 0;
    for (int s = 0; s < NS; s++) {
      for (int j = 0; j < K; j++)
        st[j] = scores[j] * (1.0f / tau);
      double p = exp (ra_target_pl_logprob (st, K, SLATES[s], k, NULL, NULL, NULL));
      double p1 = exp (ra_target_pl_logprob (scores, K, SLATES[s], k, NULL, NULL, NULL));
      double f = (double) count[s] / M, sd = sqrt (fmax (p * (1 - p), 1e-6) / M);
      worst = fmax (worst, fabs (f - p) / sd);
      worst1 = fmax (worst1, fabs (f - p1) / sqrt (fmax (p1 * (1 - p1), 1e-6) / M));
    }
    cr_log_info ("tau %g: largest deviation of the slate frequencies from P_tau %.2f sd (from P_1 %.1f sd)",
                 (double) tau, worst, worst1);
    cr_assert_lt (worst, 4.5, "tau %g: slate frequencies %.2f sd from P_tau", (double) tau, worst);
    cr_assert_gt (worst1, 10, "tau %g: frequencies should not match the untempered P (%.1f sd)", (double) tau,
                  worst1);
    free (sl), free (us), free (cs);
    ra_target_destroy (&t);
  }
}

static char s_path[64];
static const char *s_tmpfile (void)
{
  snprintf (s_path, sizeof s_path, "/tmp/test_target_temp_%d.safetensors", (int) getpid ());
  return s_path;
}

/* Replaces the first occurrence of from by to (same length) in the file at path. */
static void s_patch (const char *path, const char *from, const char *to)
{
  FILE *f = fopen (path, "rb");
  cr_assert (f);
  fseek (f, 0, SEEK_END);
  long len = ftell (f);
  fseek (f, 0, SEEK_SET);
  char *buf = malloc ((size_t) len);
  cr_assert_eq (fread (buf, 1, (size_t) len, f), (size_t) len);
  fclose (f);
  size_t fl = strlen (from);
  cr_assert_eq (fl, strlen (to));
  char *at = NULL;
  for (long i = 0; !at && i + (long) fl <= len; i++)
    if (!memcmp (buf + i, from, fl))
      at = buf + i;
  cr_assert (at, "'%s' not in the file", from);
  memcpy (at, to, fl);
  f = fopen (path, "wb");
  cr_assert_eq (fwrite (buf, 1, (size_t) len, f), (size_t) len);
  fclose (f);
  free (buf);
}

Test (target_temp, the_temperature_travels_in_the_checkpoint_and_the_arm_can_override_it)
{
  ra_target_cfg_t c;
  ra_target_cfg_default (&c);
  c.num_envs = 4, c.num_candidates = K, c.slate_size = k, c.user_dim = U, c.cand_dim = F, c.temp = 0.25f;
  ra_target_t *t = s_new (&c);
  ra_error_t err;
  const char *path = s_tmpfile ();
  cr_assert_eq (ra_target_save (t, path, &err), RA_OK, "%s", err.message);
  ra_target_cfg_t back;
  ra_target_cfg_default (&back);
  cr_assert_eq (ra_target_checkpoint_settings (path, &back, &err), RA_OK, "%s", err.message);
  cr_assert_eq (back.temp, 0.25f, "stored temperature %g", (double) back.temp);

  /* the arm: the checkpoint's temperature, unless its own temp is given */
  ra_kv_list_t l = { 0 };
  char spec[128];
  snprintf (spec, sizeof spec, "checkpoint=%s", path);
  cr_assert_eq (ra_kv_list_parse (&l, spec, &err), RA_OK, "%s", err.message);
  ra_policy_args_t a = { .config = l.items, .n_config = l.n, .seed = 3, .num_envs = 4, .num_candidates = K,
                         .slate_size = k, .user_dim = U, .cand_dim = F };
  ra_policy_t *arm = NULL;
  cr_assert_eq (ra_target_policy_class.create (&a, &arm, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_target_arm_policy (arm)->cfg.temp, 0.25f);
  arm->cls->destroy (&arm);
  cr_assert_eq (ra_kv_list_parse (&l, "temp=0.5", &err), RA_OK, "%s", err.message);
  a.config = l.items, a.n_config = l.n;
  cr_assert_eq (ra_target_policy_class.create (&a, &arm, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_target_arm_policy (arm)->cfg.temp, 0.5f, "the arm's temp wins over the checkpoint's");
  arm->cls->destroy (&arm);
  ra_kv_list_fini (&l);

  /* a file written without it (plain nn checkpoint) leaves the setting as it was */
  cr_assert_eq (ra_nn_checkpoint_save (t->params, path, &err), RA_OK, "%s", err.message);
  back.temp = 0.75f;
  cr_assert_eq (ra_target_checkpoint_settings (path, &back, &err), RA_OK, "%s", err.message);
  cr_assert_eq (back.temp, 0.75f);

  /* a stored value out of range is an error naming the key and the file */
  cr_assert_eq (ra_target_save (t, path, &err), RA_OK, "%s", err.message);
  s_patch (path, "\"target.temp\":\"0.25\"", "\"target.temp\":\"-1.0\"");
  cr_assert_eq (ra_target_checkpoint_settings (path, &back, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "target.temp") && strstr (err.message, path), "%s", err.message);
  remove (path);
  ra_target_destroy (&t);
}

Test (target_temp, bad_temperatures_are_refused_naming_the_key)
{
  const char *bad[] = { "temp=0", "temp=-0.5", "temp=abc", "temp=1e9", "temp=nan", "temp=0.0001", NULL };
  ra_error_t err;
  for (int i = 0; bad[i]; i++) {
    ra_kv_list_t l = { 0 };
    cr_assert_eq (ra_kv_list_parse (&l, bad[i], &err), RA_OK, "%s", err.message);
    ra_target_cfg_t c;
    ra_target_cfg_default (&c);
    cr_assert_eq (ra_target_cfg_apply (&c, l.items, l.n, NULL, &err), RA_ERR_BAD_CONFIG, "%s accepted", bad[i]);
    cr_assert (strstr (err.message, "'temp'"), "%s: message does not name the key: %s", bad[i], err.message);
    cr_assert_eq (c.temp, 1.0f, "%s changed the setting", bad[i]);
    /* the arm refuses it too */
    ra_policy_args_t a = { .config = l.items, .n_config = l.n, .seed = 3, .num_envs = 4, .num_candidates = K,
                           .slate_size = k, .user_dim = U, .cand_dim = F };
    ra_policy_t *arm = NULL;
    cr_assert_eq (ra_target_policy_class.create (&a, &arm, &err), RA_ERR_BAD_CONFIG, "arm %s", bad[i]);
    cr_assert (strstr (err.message, "'temp'"), "arm %s: %s", bad[i], err.message);
    ra_kv_list_fini (&l);
  }
  /* a cfg built by hand is checked by ra_target_new */
  ra_target_cfg_t c;
  ra_target_cfg_default (&c);
  c.num_envs = 4, c.num_candidates = K, c.slate_size = k, c.user_dim = U, c.cand_dim = F, c.temp = 0;
  ra_target_t *t = NULL;
  cr_assert_eq (ra_target_new (BE, &c, &t, &err), RA_ERR_BAD_CONFIG);
  cr_assert (strstr (err.message, "'temp'"), "%s", err.message);
  cr_assert_null (t);
}
