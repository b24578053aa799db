/*  env/server/reply.c - packing the replies that carry data (docs/protocol.md): key/value maps and
    tasks, tensors as frames or as references to a frame already packed, the observation and info
    maps, and the reset and step replies (the step reply's header kept as a template).          */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env/server/server_int.h"

void ra__pack_kv_map (ra_msg_out_t *rep, const ra_kv_t *kv, int n)
{
  ra_msg_out_map (rep, (uint32_t) n);
  for (int i = 0; i < n; i++) {
    ra_msg_out_str (rep, kv[i].key ? kv[i].key : "");
    switch (kv[i].type) {
    case RA_KV_STR: ra_msg_out_str (rep, kv[i].str ? kv[i].str : ""); break;
    case RA_KV_BOOL: ra_msg_out_bool (rep, kv[i].num != 0); break;
    default:
      if (kv[i].num == floor (kv[i].num) && fabs (kv[i].num) < 9e15)
        ra_msg_out_int (rep, (int64_t) kv[i].num);
      else
        ra_msg_out_double (rep, kv[i].num);
    }
  }
}

void ra__pack_task (ra_msg_out_t *rep, ra_session_t *s, int env_index)
{
  ra_kv_t kv[128];
  int n = ra_session_class (s)->describe_task (ra_session_sim (s), env_index, kv, 128);
  if (n < 0)
    n = 0;
  if (n > 128)
    n = 128;
  ra__pack_kv_map (rep, kv, n);
}

/* A tensor reference to an already appended frame (1-based index k). */
static void s_pack_ref (ra_msg_out_t *rep, ra_dtype_t dtype, int ndim, const int64_t *shape, int k)
{
  ra_msg_out_map (rep, 3);
  ra_msg_out_str (rep, "dtype");
  ra_msg_out_str (rep, ra_dtype_name (dtype));
  ra_msg_out_str (rep, "shape");
  ra_msg_out_array (rep, (uint32_t) ndim);
  for (int d = 0; d < ndim; d++)
    ra_msg_out_int (rep, shape[d]);
  ra_msg_out_str (rep, "frame");
  ra_msg_out_int (rep, k);
}

/* Appends a batch tensor (N, field shape...). Returns the frame index or -1. */
static int s_pack_field (ra_msg_out_t *rep, const ra_field_spec_t *f, int n, const void *data)
{
  int64_t shape[RA_TENSOR_MAX_DIMS];
  shape[0] = n;
  for (int d = 0; d < f->ndim; d++)
    shape[d + 1] = f->shape[d];
  if (ra_msg_out_tensor (rep, f->dtype, f->ndim + 1, shape, data) != RA_OK)
    return -1;
  return rep->nframes;
}

static int s_pack_vec (ra_msg_out_t *rep, ra_dtype_t dtype, int n, const void *data)
{
  int64_t shape[1] = { n };
  if (ra_msg_out_tensor (rep, dtype, 1, shape, data) != RA_OK)
    return -1;
  return rep->nframes;
}

static bool s_pack_obs (ra_msg_out_t *rep, const ra_sim_spec_t *sp, int n, void *const *bufs)
{
  ra_msg_out_map (rep, (uint32_t) sp->n_obs);
  for (int f = 0; f < sp->n_obs; f++) {
    ra_msg_out_str (rep, sp->obs[f].name);
    if (s_pack_field (rep, &sp->obs[f], n, bufs[f]) < 0)
      return false;
  }
  return true;
}

/* Info map: every field plus "_field" masks, all masks referencing one frame, and room for
   n_extra more entries the caller packs next. info_frames receives each field's frame so that
   final_info can reference the same bytes. */
static bool s_pack_info (ra_msg_out_t *rep, const ra_sim_spec_t *sp, int n, void *const *bufs,
                         const uint8_t *mask, uint32_t n_extra, int *info_frames, int *mask_frame)
{
  ra_msg_out_map (rep, (uint32_t) (2 * sp->n_info) + n_extra);
  int64_t shape[1] = { n };
  for (int f = 0; f < sp->n_info; f++) {
    ra_msg_out_str (rep, sp->info[f].name);
    if ((info_frames[f] = s_pack_field (rep, &sp->info[f], n, bufs[f])) < 0)
      return false;
    char key[80];
    snprintf (key, sizeof key, "_%s", sp->info[f].name);
    ra_msg_out_str (rep, key);
    if (*mask_frame < 0) {
      if ((*mask_frame = s_pack_vec (rep, RA_DTYPE_BOOL, n, mask)) < 0)
        return false;
    } else {
      s_pack_ref (rep, RA_DTYPE_BOOL, 1, shape, *mask_frame);
    }
  }
  return true;
}

/* final_info: references to the info frames, masked by final_mask's frame. */
static void s_pack_final_info (ra_msg_out_t *rep, const ra_sim_spec_t *sp, int n,
                               const int *info_frames, int final_frame)
{
  ra_msg_out_map (rep, (uint32_t) (2 * sp->n_info));
  int64_t shape[1] = { n };
  for (int f = 0; f < sp->n_info; f++) {
    const ra_field_spec_t *fs = &sp->info[f];
    int64_t fshape[RA_TENSOR_MAX_DIMS];
    fshape[0] = n;
    for (int d = 0; d < fs->ndim; d++)
      fshape[d + 1] = fs->shape[d];
    ra_msg_out_str (rep, fs->name);
    s_pack_ref (rep, fs->dtype, fs->ndim + 1, fshape, info_frames[f]);
    char key[80];
    snprintf (key, sizeof key, "_%s", fs->name);
    ra_msg_out_str (rep, key);
    s_pack_ref (rep, RA_DTYPE_BOOL, 1, shape, final_frame);
  }
}

/* Where a reply's tensors go: a request that named a shared-memory slot gets their offsets in
   the segment; frames of a session with a segment are copied into the message (the segment's
   blocks are rewritten by later requests, whatever ZeroMQ still holds); other frames are sent
   without a copy, holding a reference to their buffers. */
static ra_err_t s_reply_data (ra_server_t *srv, const ra__slot_t *slot, ra_outbufs_t *b,
                              ra_msg_out_t *rep, ra_error_t *err)
{
  srv->reply_owner = slot->shm ? NULL : b;
  return slot->shm_reply ? ra__shm_reply (slot, rep, err) : RA_OK;
}

ra_err_t ra__reply_reset (ra_server_t *srv, ra__slot_t *slot, uint64_t id, ra_msg_out_t *rep,
                          ra_error_t *err)
{
  ra_session_t *s = slot->session;
  ra_outbufs_t *b = ra_session_out (s);
  ra_msg_out_reply (rep, id, 2 + slot->shm_reply);
  ra_msg_out_str (rep, "obs");
  if (!s_pack_obs (rep, ra_session_spec (s), ra_session_num_envs (s), b->sim.obs))
    return ra_error_set (err, RA_ERR_INTERNAL, -1, "reply needs too many frames");
  ra_msg_out_str (rep, "info");
  ra_msg_out_map (rep, 0);
  return s_reply_data (srv, slot, b, rep, err);
}

/* A session's step reply without final_obs differs from one step to the next only in its id and in
   which of the session's buffer blocks its frames point to: the header after "ok": true (keys,
   dtypes, shapes, frame numbers, the "_name" mask keys) is packed once, at the first such step,
   and copied after a freshly packed {v, id, ok} at every later one; frames are kept as offsets
   into the block (every buffer block of a session has one layout, session.c s_bind). */
struct ra__step_tpl {
  size_t len;                           /* header bytes after "ok": true */
  int nframes;
  size_t off[RA_MSG_MAX_FRAMES], nbytes[RA_MSG_MAX_FRAMES];
  unsigned char bytes[];
};

/* Keeps the header rep holds from byte start on, and its frames, as slot's template. Frames that
   do not all point into b's block (never the case today) leave the slot without one. */
static void s_step_tpl_keep (ra__slot_t *slot, const ra_outbufs_t *b, const ra_msg_out_t *rep,
                             size_t start)
{
  const char *base = b->block;
  for (int i = 0; i < rep->nframes; i++) {
    const char *p = rep->frames[i].data;
    if (p < base || p + rep->frames[i].nbytes > base + b->nbytes)
      return;
  }
  size_t len = rep->head.size - start;
  struct ra__step_tpl *t = malloc (sizeof *t + len);
  if (!t)
    return;   /* no template: every step packs its header, as the first did */
  t->len = len;
  t->nframes = rep->nframes;
  for (int i = 0; i < rep->nframes; i++) {
    t->off[i] = (size_t) ((const char *) rep->frames[i].data - base);
    t->nbytes[i] = rep->frames[i].nbytes;
  }
  memcpy (t->bytes, rep->head.data + start, len);
  slot->step_tpl = t;
}

ra_err_t ra__reply_step (ra_server_t *srv, ra__slot_t *slot, uint64_t id, ra_msg_out_t *rep,
                         ra_error_t *err)
{
  ra_session_t *s = slot->session;
  int n = ra_session_num_envs (s);
  const ra_sim_spec_t *sp = ra_session_spec (s);
  ra_outbufs_t *b = ra_session_out (s);
  /* Gymnasium 1.x same_step: final_obs and final_info live inside info, and only in a step
     where some env ended (docs/protocol.md, "Autoreset and seeding"). */
  bool with_final = false;
  if (ra_session_autoreset (s) == RA_AUTORESET_SAME_STEP)
    for (int i = 0; i < n && !with_final; i++)
      with_final = b->final_mask[i] != 0;
  int info_frames[RA_SIM_MAX_FIELDS], mask_frame = -1;
  ra_msg_out_reply (rep, id, 5 + slot->shm_reply);
  const struct ra__step_tpl *tpl = slot->step_tpl;
  if (tpl && !with_final) {
    msgpack_sbuffer_write (&rep->head, (const char *) tpl->bytes, tpl->len);
    for (int i = 0; i < tpl->nframes; i++)
      rep->frames[i] = (ra_frame_t) { (const char *) b->block + tpl->off[i], tpl->nbytes[i] };
    rep->nframes = tpl->nframes;
    return s_reply_data (srv, slot, b, rep, err);
  }
  size_t start = rep->head.size;
  ra_msg_out_str (rep, "obs");
  if (!s_pack_obs (rep, sp, n, b->sim.obs))
    goto too_big;
  ra_msg_out_str (rep, "reward");
  if (s_pack_vec (rep, RA_DTYPE_F32, n, b->sim.reward) < 0)
    goto too_big;
  ra_msg_out_str (rep, "terminated");
  if (s_pack_vec (rep, RA_DTYPE_BOOL, n, b->sim.terminated) < 0)
    goto too_big;
  ra_msg_out_str (rep, "truncated");
  if (s_pack_vec (rep, RA_DTYPE_BOOL, n, b->truncated) < 0)
    goto too_big;
  ra_msg_out_str (rep, "info");
  if (!s_pack_info (rep, sp, n, b->sim.info, b->info_mask, with_final ? 4 : 0, info_frames,
                    &mask_frame))
    goto too_big;
  if (with_final) {
    ra_msg_out_str (rep, "final_obs");
    if (!s_pack_obs (rep, sp, n, b->final_obs))
      goto too_big;
    ra_msg_out_str (rep, "_final_obs");
    int final_frame = s_pack_vec (rep, RA_DTYPE_BOOL, n, b->final_mask);
    if (final_frame < 0)
      goto too_big;
    int64_t shape[1] = { n };
    ra_msg_out_str (rep, "final_info");
    s_pack_final_info (rep, sp, n, info_frames, final_frame);
    ra_msg_out_str (rep, "_final_info");
    s_pack_ref (rep, RA_DTYPE_BOOL, 1, shape, final_frame);
  }
  if (!with_final && !tpl)
    s_step_tpl_keep (slot, b, rep, start);
  return s_reply_data (srv, slot, b, rep, err);
too_big:
  return ra_error_set (err, RA_ERR_INTERNAL, -1, "step reply needs more than %d frames", RA_MSG_MAX_FRAMES);
}
