/*  tests/protocol/golden_msgs.c - builders of the golden messages (see golden_msgs.h).
    Every value here is mirrored by the checks in test_msg.c and by the .json files the generator
    writes; change them together and regenerate (tests/data/golden/README.md).                   */
#include "golden_msgs.h"

#include <stdlib.h>
#include <string.h>

#include "protocol/space.h"

static ra_space_t *s_obs_space, *s_act_space;

static void s_spaces (void)
{
  if (s_obs_space)
    return;
  int64_t user_shape[1] = { 3 }, cand_shape[2] = { 5, 4 }, act_shape[1] = { 3 }, nvec[3] = { 5, 5, 5 };
  s_obs_space = ra_space_dict (2);
  ra_space_t *user = ra_space_box (RA_DTYPE_F32, 1, user_shape, -1.0, 1.0);
  ra_space_t *cand = ra_space_box (RA_DTYPE_F32, 2, cand_shape, 0.0, 1.0);
  ra_space_set_child (s_obs_space, 0, "user", &user);
  ra_space_set_child (s_obs_space, 1, "candidates", &cand);
  s_act_space = ra_space_multi_discrete (1, act_shape, nvec);
}

void ra_golden_fini (void)
{
  ra_space_destroy (&s_obs_space);
  ra_space_destroy (&s_act_space);
}

/* Tensor payloads (N = 4 envs, slate of 3 from 5 candidates with 4 features, 3 user features). */
static const float s_user[4 * 3] = { 0.5f, -0.25f, 1.0f, 0.0f, 0.125f, -1.0f, 0.75f, 0.5f, 0.25f, -0.5f, 0.0f, 1.0f };
static float s_cand[4 * 5 * 4];
static const int64_t s_action[4 * 3] = { 0, 1, 2, 4, 3, 2, 1, 0, 4, 2, 3, 1 };
static const float s_reward[4] = { 1.5f, 0.0f, -0.5f, 2.25f };
static const bool s_term[4] = { false, true, false, false };
static const bool s_trunc[4] = { false, false, false, true };
static const bool s_mask[4] = { true, false, true, true };
static const int32_t s_clicks[4] = { 1, 0, 2, 3 };
static const bool s_clicks_mask[4] = { true, true, true, true };
static const bool s_final_mask[4] = { false, true, false, true };

static void s_cand_fill (void)
{
  for (int i = 0; i < 4 * 5 * 4; i++)
    s_cand[i] = (float) i / 80.0f;
}

static void s_obs (ra_msg_out_t *m)
{
  int64_t us[2] = { 4, 3 }, cs[3] = { 4, 5, 4 };
  s_cand_fill ();
  ra_msg_out_map (m, 2);
  ra_msg_out_str (m, "user");
  ra_msg_out_tensor (m, RA_DTYPE_F32, 2, us, s_user);
  ra_msg_out_str (m, "candidates");
  ra_msg_out_tensor (m, RA_DTYPE_F32, 3, cs, s_cand);
}

static void s_hello_request (ra_msg_out_t *m)
{
  ra_msg_out_request (m, 1, "hello", 2);
  ra_msg_out_str (m, "client"); ra_msg_out_str (m, "recarena-c/0.1");
  ra_msg_out_str (m, "versions"); ra_msg_out_array (m, 1); ra_msg_out_int (m, 1);
}

static void s_hello_reply (ra_msg_out_t *m)
{
  ra_msg_out_reply (m, 1, 6);
  ra_msg_out_str (m, "server"); ra_msg_out_str (m, "recarena-server");
  ra_msg_out_str (m, "version"); ra_msg_out_int (m, 1);
  ra_msg_out_str (m, "build"); ra_msg_out_str (m, "0.1.0");
  ra_msg_out_str (m, "capabilities"); ra_msg_out_array (m, 1); ra_msg_out_str (m, "tasks");
  ra_msg_out_str (m, "limits"); ra_msg_out_map (m, 3);
  ra_msg_out_str (m, "max_envs"); ra_msg_out_int (m, 4096);
  ra_msg_out_str (m, "max_sessions"); ra_msg_out_int (m, 64);
  ra_msg_out_str (m, "max_message_bytes"); ra_msg_out_int (m, 268435456);
  ra_msg_out_str (m, "envs"); ra_msg_out_array (m, 2);
  ra_msg_out_str (m, "ECommerce-v1"); ra_msg_out_str (m, "News-v1");
}

static void s_make_request (ra_msg_out_t *m)
{
  ra_msg_out_request (m, 2, "make", 6);
  ra_msg_out_str (m, "env"); ra_msg_out_str (m, "ECommerce-v1");
  ra_msg_out_str (m, "num_envs"); ra_msg_out_int (m, 4);
  ra_msg_out_str (m, "seed"); ra_msg_out_int (m, 42);
  ra_msg_out_str (m, "config"); ra_msg_out_map (m, 2);
  ra_msg_out_str (m, "slate_size"); ra_msg_out_int (m, 3);
  ra_msg_out_str (m, "reward_weights"); ra_msg_out_map (m, 2);
  ra_msg_out_str (m, "clicks"); ra_msg_out_double (m, 1.5);
  ra_msg_out_str (m, "revenue"); ra_msg_out_int (m, 1);
  ra_msg_out_str (m, "autoreset"); ra_msg_out_str (m, "same_step");
  ra_msg_out_str (m, "max_episode_steps"); ra_msg_out_int (m, 100);
}

static void s_make_reply (ra_msg_out_t *m)
{
  s_spaces ();
  ra_msg_out_reply (m, 2, 8);
  ra_msg_out_str (m, "handle"); ra_msg_out_int (m, 7);
  ra_msg_out_str (m, "observation_space"); ra_space_encode (s_obs_space, m);
  ra_msg_out_str (m, "action_space"); ra_space_encode (s_act_space, m);
  ra_msg_out_str (m, "reward_range"); ra_msg_out_array (m, 2);
  ra_msg_out_double (m, -1.0); ra_msg_out_double (m, 10.0);
  ra_msg_out_str (m, "max_episode_steps"); ra_msg_out_int (m, 100);
  ra_msg_out_str (m, "autoreset"); ra_msg_out_str (m, "same_step");
  ra_msg_out_str (m, "task"); ra_msg_out_map (m, 2);
  ra_msg_out_str (m, "split"); ra_msg_out_str (m, "train");
  ra_msg_out_str (m, "id"); ra_msg_out_int (m, 3);
  ra_msg_out_str (m, "metadata"); ra_msg_out_map (m, 1);
  ra_msg_out_str (m, "render_modes"); ra_msg_out_array (m, 1); ra_msg_out_str (m, "ansi");
}

static void s_reset_request (ra_msg_out_t *m)
{
  int64_t n = 4;
  ra_msg_out_request (m, 3, "reset", 3);
  ra_msg_out_str (m, "handle"); ra_msg_out_int (m, 7);
  ra_msg_out_str (m, "seed"); ra_msg_out_array (m, 4);
  for (int i = 0; i < 4; i++)
    ra_msg_out_int (m, 42 + i);
  ra_msg_out_str (m, "options"); ra_msg_out_map (m, 1);
  ra_msg_out_str (m, "reset_mask"); ra_msg_out_tensor (m, RA_DTYPE_BOOL, 1, &n, s_mask);
}

static void s_reset_reply (ra_msg_out_t *m)
{
  int64_t n = 4;
  ra_msg_out_reply (m, 3, 2);
  ra_msg_out_str (m, "obs"); s_obs (m);
  ra_msg_out_str (m, "info"); ra_msg_out_map (m, 2);
  ra_msg_out_str (m, "clicks"); ra_msg_out_tensor (m, RA_DTYPE_I32, 1, &n, s_clicks);
  ra_msg_out_str (m, "_clicks"); ra_msg_out_tensor (m, RA_DTYPE_BOOL, 1, &n, s_clicks_mask);
}

static void s_step_request (ra_msg_out_t *m)
{
  int64_t shape[2] = { 4, 3 };
  ra_msg_out_request (m, 4, "step", 2);
  ra_msg_out_str (m, "handle"); ra_msg_out_int (m, 7);
  ra_msg_out_str (m, "action"); ra_msg_out_tensor (m, RA_DTYPE_I64, 2, shape, s_action);
}

static void s_step_reply (ra_msg_out_t *m)
{
  int64_t n = 4, us[2] = { 4, 3 };
  ra_msg_out_reply (m, 4, 5);
  ra_msg_out_str (m, "obs"); s_obs (m);
  ra_msg_out_str (m, "reward"); ra_msg_out_tensor (m, RA_DTYPE_F32, 1, &n, s_reward);
  ra_msg_out_str (m, "terminated"); ra_msg_out_tensor (m, RA_DTYPE_BOOL, 1, &n, s_term);
  ra_msg_out_str (m, "truncated"); ra_msg_out_tensor (m, RA_DTYPE_BOOL, 1, &n, s_trunc);
  ra_msg_out_str (m, "info"); ra_msg_out_map (m, 4);
  ra_msg_out_str (m, "clicks"); ra_msg_out_tensor (m, RA_DTYPE_I32, 1, &n, s_clicks);
  ra_msg_out_str (m, "_clicks"); ra_msg_out_tensor (m, RA_DTYPE_BOOL, 1, &n, s_clicks_mask);
  ra_msg_out_str (m, "final_obs"); ra_msg_out_map (m, 1);
  ra_msg_out_str (m, "user"); ra_msg_out_tensor (m, RA_DTYPE_F32, 2, us, s_user);
  ra_msg_out_str (m, "_final_obs"); ra_msg_out_tensor (m, RA_DTYPE_BOOL, 1, &n, s_final_mask);
}

static void s_set_task_request (ra_msg_out_t *m)
{
  int64_t n = 4;
  ra_msg_out_request (m, 5, "set_task", 3);
  ra_msg_out_str (m, "handle"); ra_msg_out_int (m, 7);
  ra_msg_out_str (m, "task"); ra_msg_out_map (m, 2);
  ra_msg_out_str (m, "split"); ra_msg_out_str (m, "ood");
  ra_msg_out_str (m, "id"); ra_msg_out_int (m, 11);
  ra_msg_out_str (m, "mask"); ra_msg_out_tensor (m, RA_DTYPE_BOOL, 1, &n, s_mask);
}

static void s_set_task_params_request (ra_msg_out_t *m)
{
  ra_msg_out_request (m, 6, "set_task", 2);
  ra_msg_out_str (m, "handle"); ra_msg_out_int (m, 7);
  ra_msg_out_str (m, "task"); ra_msg_out_map (m, 1);
  ra_msg_out_str (m, "params"); ra_msg_out_map (m, 2);
  ra_msg_out_str (m, "choice"); ra_msg_out_map (m, 1);
  ra_msg_out_str (m, "temperature"); ra_msg_out_double (m, 0.5);
  ra_msg_out_str (m, "drift"); ra_msg_out_double (m, 0.01);
}

static void s_set_task_reply (ra_msg_out_t *m)
{
  ra_msg_out_reply (m, 5, 1);
  ra_msg_out_str (m, "task"); ra_msg_out_map (m, 2);
  ra_msg_out_str (m, "split"); ra_msg_out_str (m, "ood");
  ra_msg_out_str (m, "id"); ra_msg_out_int (m, 11);
}

static void s_render_request (ra_msg_out_t *m)
{
  ra_msg_out_request (m, 7, "render", 2);
  ra_msg_out_str (m, "handle"); ra_msg_out_int (m, 7);
  ra_msg_out_str (m, "index"); ra_msg_out_int (m, 2);
}

static void s_render_reply (ra_msg_out_t *m)
{
  ra_msg_out_reply (m, 7, 1);
  ra_msg_out_str (m, "text"); ra_msg_out_str (m, "user 2: budget 31.5, slate [4 3 2]");
}

static void s_close_request (ra_msg_out_t *m)
{
  ra_msg_out_request (m, 8, "close", 1);
  ra_msg_out_str (m, "handle"); ra_msg_out_int (m, 7);
}

static void s_close_reply (ra_msg_out_t *m) { ra_msg_out_reply (m, 8, 0); }
static void s_ping_request (ra_msg_out_t *m) { ra_msg_out_request (m, 9, "ping", 0); }
static void s_ping_reply (ra_msg_out_t *m) { ra_msg_out_reply (m, 9, 0); }
static void s_stats_request (ra_msg_out_t *m) { ra_msg_out_request (m, 10, "stats", 0); }

static void s_stats_reply (ra_msg_out_t *m)
{
  ra_msg_out_reply (m, 10, 5);
  ra_msg_out_str (m, "sessions"); ra_msg_out_int (m, 2);
  ra_msg_out_str (m, "envs"); ra_msg_out_int (m, 260);
  ra_msg_out_str (m, "steps"); ra_msg_out_int (m, 123456789);
  ra_msg_out_str (m, "errors"); ra_msg_out_int (m, 3);
  ra_msg_out_str (m, "uptime_s"); ra_msg_out_double (m, 12.5);
}

static void s_error_reply (ra_msg_out_t *m)
{
  ra_error_t e;
  ra_error_set (&e, RA_ERR_BAD_ACTION, 3, "action for env 3 repeats candidate 2, a slate needs distinct items");
  ra_msg_out_error (m, 4, &e);
}

static void s_error_reply_no_index (ra_msg_out_t *m)
{
  ra_error_t e;
  ra_error_set (&e, RA_ERR_NO_SUCH_HANDLE, -1, "handle 7 does not exist (closed or expired)");
  ra_msg_out_error (m, 8, &e);
}

const ra_golden_t ra_golden[] = {
  { "hello_request", true, s_hello_request },       { "hello_reply", false, s_hello_reply },
  { "make_request", true, s_make_request },         { "make_reply", false, s_make_reply },
  { "reset_request", true, s_reset_request },       { "reset_reply", false, s_reset_reply },
  { "step_request", true, s_step_request },         { "step_reply", false, s_step_reply },
  { "set_task_request", true, s_set_task_request }, { "set_task_params_request", true, s_set_task_params_request },
  { "set_task_reply", false, s_set_task_reply },    { "render_request", true, s_render_request },
  { "render_reply", false, s_render_reply },        { "close_request", true, s_close_request },
  { "close_reply", false, s_close_reply },          { "ping_request", true, s_ping_request },
  { "ping_reply", false, s_ping_reply },            { "stats_request", true, s_stats_request },
  { "stats_reply", false, s_stats_reply },          { "error_reply", false, s_error_reply },
  { "error_reply_no_index", false, s_error_reply_no_index },
};
const int ra_golden_count = (int) (sizeof ra_golden / sizeof ra_golden[0]);

static void s_put_u32 (unsigned char *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char) (v >> (8 * i));
}

static uint32_t s_get_u32 (const unsigned char *p)
{
  return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

unsigned char *ra_golden_serialize (const ra_msg_out_t *m, size_t *len)
{
  size_t n = 4 + 4 + m->head.size;
  for (int i = 0; i < m->nframes; i++)
    n += 4 + m->frames[i].nbytes;
  unsigned char *buf = malloc (n), *p = buf;
  if (!buf)
    return NULL;
  s_put_u32 (p, (uint32_t) (1 + m->nframes)), p += 4;
  s_put_u32 (p, (uint32_t) m->head.size), p += 4;
  memcpy (p, m->head.data, m->head.size), p += m->head.size;
  for (int i = 0; i < m->nframes; i++) {
    s_put_u32 (p, (uint32_t) m->frames[i].nbytes), p += 4;
    if (m->frames[i].nbytes)
      memcpy (p, m->frames[i].data, m->frames[i].nbytes);
    p += m->frames[i].nbytes;
  }
  *len = n;
  return buf;
}

int ra_golden_parse (const unsigned char *buf, size_t len, const void **frames, size_t *sizes, int max)
{
  if (len < 4)
    return -1;
  uint32_t count = s_get_u32 (buf);
  size_t off = 4;
  if (count > (uint32_t) max)
    return -1;
  for (uint32_t i = 0; i < count; i++) {
    if (len - off < 4)
      return -1;
    uint32_t n = s_get_u32 (buf + off);
    off += 4;
    if (n > len - off)
      return -1;
    frames[i] = buf + off;
    sizes[i] = n;
    off += n;
  }
  return off == len ? (int) count : -1;
}
