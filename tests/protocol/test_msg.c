/*  tests/protocol/test_msg.c - the message codec: round trips of every op, golden files, tensor
    references, typed accessors, and hostile bytes (truncations, byte flips, bombs).             */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "golden_msgs.h"
#include "protocol/msg.h"

/* ---------------------------------------------------------------------------------------------
   Helpers                                                                                        */

/* Decodes an outgoing message as it would arrive. */
static ra_err_t s_decode (ra_msg_in_t *in, const ra_msg_out_t *out, bool is_request, ra_error_t *err)
{
  const void *frames[RA_MSG_MAX_FRAMES];
  size_t sizes[RA_MSG_MAX_FRAMES];
  for (int i = 0; i < out->nframes; i++) {
    frames[i] = out->frames[i].data;
    sizes[i] = out->frames[i].nbytes;
  }
  return ra_msg_in_decode (in, out->head.data, out->head.size, out->nframes, frames, sizes, is_request, err);
}

static unsigned char *s_read_file (const char *path, size_t *len)
{
  FILE *f = fopen (path, "rb");
  cr_assert (f, "cannot open %s", path);
  fseek (f, 0, SEEK_END);
  long n = ftell (f);
  fseek (f, 0, SEEK_SET);
  unsigned char *buf = malloc ((size_t) n + 1);
  cr_assert (fread (buf, 1, (size_t) n, f) == (size_t) n);
  fclose (f);
  *len = (size_t) n;
  return buf;
}

/* A header from raw msgpack bytes built by a callback. */
typedef struct {
  msgpack_sbuffer sb;
  msgpack_packer pk;
} s_raw_t;

static void s_raw_init (s_raw_t *r)
{
  msgpack_sbuffer_init (&r->sb);
  msgpack_packer_init (&r->pk, &r->sb, msgpack_sbuffer_write);
}

static void s_key (msgpack_packer *pk, const char *s)
{
  msgpack_pack_str (pk, strlen (s));
  msgpack_pack_str_body (pk, s, strlen (s));
}

/* ---------------------------------------------------------------------------------------------
   Round trips                                                                                    */

Test (msg, every_golden_message_round_trips)
{
  for (int g = 0; g < ra_golden_count; g++) {
    ra_msg_out_t out;
    ra_msg_in_t in;
    ra_error_t err;
    ra_msg_out_init (&out);
    ra_msg_in_init (&in);
    ra_golden[g].build (&out);
    cr_assert_eq (s_decode (&in, &out, ra_golden[g].is_request, &err), RA_OK, "%s: %s", ra_golden[g].name,
                  err.message);
    cr_assert (in.has_id);
    cr_assert_eq (in.nframes, out.nframes);
    if (ra_golden[g].is_request) {
      size_t n = strcspn (ra_golden[g].name, "_");
      if (strncmp (ra_golden[g].name, "set_task", 8) == 0)
        n = 8;
      cr_assert_eq ((size_t) in.op_len, n, "%s", ra_golden[g].name);
      cr_assert (memcmp (in.op, ra_golden[g].name, n) == 0);
    } else
      cr_assert_eq (in.ok, strncmp (ra_golden[g].name, "error", 5) != 0, "%s", ra_golden[g].name);
    /* Every tensor reference in the header resolves. */
    ra_msg_in_fini (&in);
    ra_msg_out_fini (&out);
  }
  ra_golden_fini ();
}

Test (msg, tensor_refs_of_every_dtype_round_trip)
{
  unsigned char data[RA_DTYPE_COUNT][2 * 3 * 8];
  for (int d = 0; d < RA_DTYPE_COUNT; d++)
    for (size_t i = 0; i < sizeof data[d]; i++)
      data[d][i] = (unsigned char) (d == RA_DTYPE_BOOL ? i & 1 : (i * 37 + (size_t) d));
  ra_msg_out_t out;
  ra_msg_in_t in;
  ra_error_t err;
  ra_msg_out_init (&out);
  ra_msg_in_init (&in);
  int64_t shape[2] = { 2, 3 };
  ra_msg_out_request (&out, 77, "step", RA_DTYPE_COUNT);
  for (int d = 0; d < RA_DTYPE_COUNT; d++) {
    ra_msg_out_str (&out, ra_dtype_name ((ra_dtype_t) d));
    cr_assert_eq (ra_msg_out_tensor (&out, (ra_dtype_t) d, 2, shape, data[d]), RA_OK);
  }
  cr_assert_eq (s_decode (&in, &out, true, &err), RA_OK, "%s", err.message);
  cr_assert_eq (in.id, 77);
  for (int d = 0; d < RA_DTYPE_COUNT; d++) {
    ra_tensor_t t;
    cr_assert_eq (ra_get_tensor (&in, in.root, ra_dtype_name ((ra_dtype_t) d), &t, &err), RA_OK, "%s", err.message);
    cr_assert_eq (t.dtype, (ra_dtype_t) d);
    cr_assert_eq (t.ndim, 2);
    cr_assert_eq (t.shape[0], 2);
    cr_assert_eq (t.shape[1], 3);
    cr_assert_eq (t.nbytes, 6 * ra_dtype_size ((ra_dtype_t) d));
    cr_assert (memcmp (t.data, data[d], t.nbytes) == 0);
  }
  /* A scalar (ndim 0) and an empty tensor. */
  ra_msg_out_clear (&out);
  int64_t zero = 0;
  double x = 2.5;
  ra_msg_out_request (&out, 78, "step", 2);
  ra_msg_out_str (&out, "scalar");
  ra_msg_out_tensor (&out, RA_DTYPE_F64, 0, NULL, &x);
  ra_msg_out_str (&out, "empty");
  ra_msg_out_tensor (&out, RA_DTYPE_I32, 1, &zero, NULL);
  cr_assert_eq (s_decode (&in, &out, true, &err), RA_OK, "%s", err.message);
  ra_tensor_t t;
  cr_assert_eq (ra_get_tensor (&in, in.root, "scalar", &t, &err), RA_OK, "%s", err.message);
  cr_assert_eq (t.ndim, 0);
  cr_assert_eq (t.nbytes, 8);
  cr_assert_eq (ra_get_tensor (&in, in.root, "empty", &t, &err), RA_OK, "%s", err.message);
  cr_assert_eq (t.nbytes, 0);
  ra_msg_in_fini (&in);
  ra_msg_out_fini (&out);
}

Test (msg, out_tensor_is_limited_to_max_frames)
{
  ra_msg_out_t out;
  ra_msg_out_init (&out);
  int64_t n = 1;
  char b = 0;
  ra_msg_out_array (&out, RA_MSG_MAX_FRAMES);
  for (int i = 0; i < RA_MSG_MAX_FRAMES; i++)
    cr_assert_eq (ra_msg_out_tensor (&out, RA_DTYPE_U8, 1, &n, &b), RA_OK);
  size_t before = out.head.size;
  cr_assert_eq (ra_msg_out_tensor (&out, RA_DTYPE_U8, 1, &n, &b), RA_ERR_LIMIT);
  cr_assert_eq (out.head.size, before, "a refused tensor writes nothing");
  ra_msg_out_fini (&out);
}

Test (msg, error_replies_carry_code_message_and_optional_env_index)
{
  ra_msg_out_t out;
  ra_msg_in_t in;
  ra_error_t e, err;
  ra_msg_out_init (&out);
  ra_msg_in_init (&in);
  for (int with_index = 0; with_index < 2; with_index++) {
    ra_error_set (&e, RA_ERR_BAD_ACTION, with_index ? 3 : -1, "action for env 3 has 2 items, slate size is 3");
    ra_msg_out_reply (&out, 1, 0);   /* ra_msg_out_error clears what was there */
    ra_msg_out_error (&out, 12345678901234ull, &e);
    cr_assert_eq (s_decode (&in, &out, false, &err), RA_OK, "%s", err.message);
    cr_assert_eq (in.id, 12345678901234ull);
    cr_assert_not (in.ok);
    const msgpack_object *em;
    const char *s;
    int len;
    int64_t idx = -7;
    cr_assert_eq (ra_get_map (in.root, "error", &em, &err), RA_OK);
    cr_assert_eq (ra_get_str (em, "code", &s, &len, &err), RA_OK);
    cr_assert_eq (len, 10);
    cr_assert (memcmp (s, "BAD_ACTION", 10) == 0);
    cr_assert_eq (ra_get_str (em, "message", &s, &len, &err), RA_OK);
    cr_assert (len == (int) strlen (e.message) && memcmp (s, e.message, (size_t) len) == 0);
    cr_assert_eq (ra_opt_int (em, "env_index", &idx, &err), RA_OK);
    cr_assert_eq (idx, with_index ? 3 : -7, "env_index only travels when >= 0");
    cr_assert_eq (em->via.map.size, with_index ? 3u : 2u);
  }
  ra_msg_in_fini (&in);
  ra_msg_out_fini (&out);
}

/* ---------------------------------------------------------------------------------------------
   Golden files                                                                                   */

typedef struct {
  unsigned char *buf;
  int n;
  const void *frames[RA_MSG_MAX_FRAMES + 1];
  size_t sizes[RA_MSG_MAX_FRAMES + 1];
  ra_msg_in_t in;
} s_golden_file_t;

static void s_load_golden (s_golden_file_t *g, const char *name, bool is_request)
{
  char path[1024];
  size_t len;
  ra_error_t err;
  snprintf (path, sizeof path, "%s/tests/data/golden/%s.frames", RA_SOURCE_DIR, name);
  g->buf = s_read_file (path, &len);
  g->n = ra_golden_parse (g->buf, len, g->frames, g->sizes, RA_MSG_MAX_FRAMES + 1);
  cr_assert (g->n >= 1, "%s is not in the golden frame format", path);
  ra_msg_in_init (&g->in);
  cr_assert_eq (ra_msg_in_decode (&g->in, g->frames[0], g->sizes[0], g->n - 1, g->frames + 1, g->sizes + 1,
                                  is_request, &err), RA_OK, "%s: %s", name, err.message);
}

static void s_free_golden (s_golden_file_t *g)
{
  ra_msg_in_fini (&g->in);
  free (g->buf);
}

Test (msg, golden_files_match_the_encoder_byte_for_byte)
{
  for (int g = 0; g < ra_golden_count; g++) {
    char path[1024];
    size_t len, elen;
    snprintf (path, sizeof path, "%s/tests/data/golden/%s.frames", RA_SOURCE_DIR, ra_golden[g].name);
    unsigned char *file = s_read_file (path, &len);
    ra_msg_out_t out;
    ra_msg_out_init (&out);
    ra_golden[g].build (&out);
    unsigned char *enc = ra_golden_serialize (&out, &elen);
    cr_assert (elen == len && memcmp (enc, file, len) == 0,
               "%s differs from the encoder's output; regenerate on purpose (tests/data/golden/README.md)", path);
    free (enc);
    free (file);
    ra_msg_out_fini (&out);
  }
  ra_golden_fini ();
}

Test (msg, golden_hello_and_make_decode_to_their_fields)
{
  s_golden_file_t g;
  ra_error_t err;
  const char *s;
  int len;
  int64_t v;
  const msgpack_object *o;

  s_load_golden (&g, "hello_request", true);
  cr_assert_eq (g.in.id, 1);
  cr_assert_eq (ra_get_str (g.in.root, "client", &s, &len, &err), RA_OK);
  cr_assert (len == 14 && memcmp (s, "recarena-c/0.1", 14) == 0);
  cr_assert_eq (ra_get_array (g.in.root, "versions", &o, &err), RA_OK);
  cr_assert (o->via.array.size == 1 && o->via.array.ptr[0].via.u64 == 1);
  s_free_golden (&g);

  s_load_golden (&g, "hello_reply", false);
  cr_assert (g.in.ok);
  cr_assert_eq (ra_get_int (g.in.root, "version", &v, &err), RA_OK);
  cr_assert_eq (v, 1);
  cr_assert_eq (ra_get_map (g.in.root, "limits", &o, &err), RA_OK);
  cr_assert_eq (ra_get_int (o, "max_envs", &v, &err), RA_OK);
  cr_assert_eq (v, 4096);
  cr_assert_eq (ra_get_int (o, "max_message_bytes", &v, &err), RA_OK);
  cr_assert_eq (v, 268435456);
  s_free_golden (&g);

  s_load_golden (&g, "make_request", true);
  cr_assert_eq (ra_get_int (g.in.root, "num_envs", &v, &err), RA_OK);
  cr_assert_eq (v, 4);
  cr_assert_eq (ra_get_map (g.in.root, "config", &o, &err), RA_OK);
  cr_assert_eq (ra_get_map (o, "reward_weights", &o, &err), RA_OK);
  double d;
  cr_assert_eq (ra_get_double (o, "clicks", &d, &err), RA_OK);
  cr_assert_float_eq (d, 1.5, 0);
  cr_assert_eq (ra_get_double (o, "revenue", &d, &err), RA_OK, "integers read as doubles");
  cr_assert_float_eq (d, 1.0, 0);
  s_free_golden (&g);

  s_load_golden (&g, "make_reply", false);
  cr_assert_eq (g.n, 5);
  cr_assert_eq (ra_get_int (g.in.root, "handle", &v, &err), RA_OK);
  cr_assert_eq (v, 7);
  cr_assert_eq (ra_get_str (g.in.root, "autoreset", &s, &len, &err), RA_OK);
  cr_assert (len == 9 && memcmp (s, "same_step", 9) == 0);
  cr_assert_eq (ra_get_map (g.in.root, "observation_space", &o, &err), RA_OK);
  cr_assert_eq (ra_get_array (o, "keys", &o, &err), RA_OK);
  cr_assert (ra_obj_is_str (&o->via.array.ptr[0], "user") && ra_obj_is_str (&o->via.array.ptr[1], "candidates"));
  s_free_golden (&g);
}

Test (msg, golden_reset_step_and_error_decode_to_their_fields)
{
  s_golden_file_t g;
  ra_error_t err;
  ra_tensor_t t;
  const msgpack_object *o;

  s_load_golden (&g, "reset_request", true);
  cr_assert_eq (ra_get_array (g.in.root, "seed", &o, &err), RA_OK);
  cr_assert (o->via.array.size == 4 && o->via.array.ptr[3].via.u64 == 45);
  cr_assert_eq (ra_get_map (g.in.root, "options", &o, &err), RA_OK);
  cr_assert_eq (ra_get_tensor (&g.in, o, "reset_mask", &t, &err), RA_OK, "%s", err.message);
  cr_assert (t.dtype == RA_DTYPE_BOOL && t.ndim == 1 && t.shape[0] == 4);
  cr_assert_eq (ra_tensor_get_int (&t, 0), 1);
  cr_assert_eq (ra_tensor_get_int (&t, 1), 0);
  s_free_golden (&g);

  s_load_golden (&g, "step_request", true);
  cr_assert_eq (ra_get_tensor (&g.in, g.in.root, "action", &t, &err), RA_OK, "%s", err.message);
  cr_assert (t.dtype == RA_DTYPE_I64 && t.ndim == 2 && t.shape[0] == 4 && t.shape[1] == 3);
  cr_assert_eq (ra_tensor_get_int (&t, 3), 4);
  cr_assert_eq (ra_tensor_get_int (&t, 11), 1);
  s_free_golden (&g);

  s_load_golden (&g, "step_reply", false);
  cr_assert_eq (ra_get_tensor (&g.in, g.in.root, "reward", &t, &err), RA_OK);
  float r;
  memcpy (&r, (char *) t.data + 12, 4);
  cr_assert_float_eq (r, 2.25f, 0);
  cr_assert_eq (ra_get_tensor (&g.in, g.in.root, "terminated", &t, &err), RA_OK);
  cr_assert_eq (ra_tensor_get_int (&t, 1), 1);
  cr_assert_eq (ra_get_map (g.in.root, "info", &o, &err), RA_OK);
  cr_assert_eq (ra_get_tensor (&g.in, o, "_final_obs", &t, &err), RA_OK);
  cr_assert_eq (ra_get_map (o, "final_obs", &o, &err), RA_OK);
  cr_assert_eq (ra_get_tensor (&g.in, o, "user", &t, &err), RA_OK);
  cr_assert (t.shape[0] == 4 && t.shape[1] == 3);
  cr_assert_eq (ra_get_map (g.in.root, "obs", &o, &err), RA_OK);
  cr_assert_eq (ra_get_tensor (&g.in, o, "candidates", &t, &err), RA_OK);
  cr_assert (t.ndim == 3 && t.shape[1] == 5 && t.shape[2] == 4);
  s_free_golden (&g);

  s_load_golden (&g, "error_reply", false);
  cr_assert_not (g.in.ok);
  cr_assert_eq (g.in.id, 4);
  int64_t idx;
  const char *s;
  int len;
  ra_err_t code;
  cr_assert_eq (ra_get_map (g.in.root, "error", &o, &err), RA_OK);
  cr_assert_eq (ra_get_str (o, "code", &s, &len, &err), RA_OK);
  cr_assert (ra_err_from_code (s, len, &code) && code == RA_ERR_BAD_ACTION);
  cr_assert_eq (ra_get_int (o, "env_index", &idx, &err), RA_OK);
  cr_assert_eq (idx, 3);
  s_free_golden (&g);
}

/* ---------------------------------------------------------------------------------------------
   Header validation                                                                              */

static ra_err_t s_decode_raw (ra_msg_in_t *in, const s_raw_t *r, bool is_request, ra_error_t *err)
{
  return ra_msg_in_decode (in, r->sb.data, r->sb.size, 0, NULL, NULL, is_request, err);
}

Test (msg, decode_checks_version_id_op_and_ok)
{
  ra_msg_in_t in;
  ra_error_t err;
  ra_msg_in_init (&in);
  s_raw_t r;

  /* v = 2: VERSION, with the id already known for the error reply. */
  s_raw_init (&r);
  msgpack_pack_map (&r.pk, 3);
  s_key (&r.pk, "v"); msgpack_pack_int (&r.pk, 2);
  s_key (&r.pk, "id"); msgpack_pack_int (&r.pk, 9);
  s_key (&r.pk, "op"); s_key (&r.pk, "ping");
  cr_assert_eq (s_decode_raw (&in, &r, true, &err), RA_ERR_VERSION);
  cr_assert (in.has_id && in.id == 9);
  cr_assert (strstr (err.message, "version 2"), "%s", err.message);
  msgpack_sbuffer_destroy (&r.sb);

  /* v missing, id negative, op an integer, ok a string, not a map. */
  struct { const char *what; int v; int64_t id; int op_int; int ok_str; bool is_req; const char *want; } cases[] = {
    { "no v", -1, 1, 0, 0, true, "missing field 'v'" },
    { "negative id", 1, -5, 0, 0, true, "field 'id' must be a non-negative integer" },
    { "op integer", 1, 1, 1, 0, true, "field 'op' must be a string, got an integer" },
    { "ok string", 1, 1, 0, 1, false, "field 'ok' must be a bool, got a string" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    s_raw_init (&r);
    msgpack_pack_map (&r.pk, 2 + (cases[i].v >= 0));
    if (cases[i].v >= 0) {
      s_key (&r.pk, "v"); msgpack_pack_int (&r.pk, cases[i].v);
    }
    s_key (&r.pk, "id"); msgpack_pack_int64 (&r.pk, cases[i].id);
    if (cases[i].is_req) {
      s_key (&r.pk, "op");
      if (cases[i].op_int) msgpack_pack_int (&r.pk, 3); else s_key (&r.pk, "ping");
    } else {
      s_key (&r.pk, "ok");
      if (cases[i].ok_str) s_key (&r.pk, "yes"); else msgpack_pack_true (&r.pk);
    }
    cr_assert_eq (s_decode_raw (&in, &r, cases[i].is_req, &err), RA_ERR_BAD_REQUEST, "%s", cases[i].what);
    cr_assert (strstr (err.message, cases[i].want), "%s: %s", cases[i].what, err.message);
    msgpack_sbuffer_destroy (&r.sb);
  }

  /* Not a map; two maps; trailing byte. */
  s_raw_init (&r);
  msgpack_pack_array (&r.pk, 0);
  cr_assert_eq (s_decode_raw (&in, &r, true, &err), RA_ERR_BAD_REQUEST);
  cr_assert (strstr (err.message, "must be a map, got an array"), "%s", err.message);
  msgpack_sbuffer_destroy (&r.sb);
  s_raw_init (&r);
  msgpack_pack_map (&r.pk, 0);
  msgpack_pack_map (&r.pk, 0);
  cr_assert_eq (s_decode_raw (&in, &r, true, &err), RA_ERR_BAD_REQUEST);
  cr_assert (strstr (err.message, "after its msgpack value"), "%s", err.message);
  msgpack_sbuffer_destroy (&r.sb);
  cr_assert_eq (ra_msg_in_decode (&in, "", 0, 0, NULL, NULL, true, &err), RA_ERR_BAD_REQUEST);

  /* Too many frames. */
  const void *frames[RA_MSG_MAX_FRAMES + 1] = { 0 };
  size_t sizes[RA_MSG_MAX_FRAMES + 1] = { 0 };
  ra_msg_out_t out;
  ra_msg_out_init (&out);
  ra_msg_out_request (&out, 1, "ping", 0);
  cr_assert_eq (ra_msg_in_decode (&in, out.head.data, out.head.size, RA_MSG_MAX_FRAMES + 1, frames, sizes, true, &err),
                RA_ERR_LIMIT);
  ra_msg_out_fini (&out);
  ra_msg_in_fini (&in);
}

Test (msg, decode_rejects_memory_and_depth_bombs)
{
  ra_msg_in_t in;
  ra_error_t err;
  ra_msg_in_init (&in);
  /* A map whose value announces 4e9 array elements in 5 bytes. */
  unsigned char bomb[] = { 0x81, 0xa1, 'x', 0xdd, 0xff, 0xff, 0xff, 0xff, 0x00 };
  cr_assert_eq (ra_msg_in_decode (&in, bomb, sizeof bomb, 0, NULL, NULL, true, &err), RA_ERR_BAD_REQUEST);
  cr_assert (strstr (err.message, "more elements than bytes"), "%s", err.message);
  /* str32 claiming 4 GB. */
  unsigned char str[] = { 0x81, 0xa1, 'x', 0xdb, 0xff, 0xff, 0xff, 0xf0, 'a' };
  cr_assert_eq (ra_msg_in_decode (&in, str, sizeof str, 0, NULL, NULL, true, &err), RA_ERR_BAD_REQUEST);
  /* 100000 nested one-element arrays inside a map. */
  size_t n = 100000;
  unsigned char *deep = malloc (n + 4);
  deep[0] = 0x81, deep[1] = 0xa1, deep[2] = 'x';
  memset (deep + 3, 0x91, n);
  deep[n + 3] = 0xc0;
  cr_assert_eq (ra_msg_in_decode (&in, deep, n + 4, 0, NULL, NULL, true, &err), RA_ERR_BAD_REQUEST);
  cr_assert (strstr (err.message, "nested too deeply"), "%s", err.message);
  free (deep);
  ra_msg_in_fini (&in);
}

Test (msg, decode_rejects_every_truncation)
{
  for (int g = 0; g < ra_golden_count; g++) {
    ra_msg_out_t out;
    ra_msg_in_t in;
    ra_error_t err;
    ra_msg_out_init (&out);
    ra_msg_in_init (&in);
    ra_golden[g].build (&out);
    for (size_t len = 0; len < out.head.size; len++) {
      unsigned char *copy = malloc (len + 1);   /* exact size, so ASan sees any over-read */
      memcpy (copy, out.head.data, len);
      ra_err_t rc = ra_msg_in_decode (&in, copy, len, 0, NULL, NULL, ra_golden[g].is_request, &err);
      cr_assert_eq (rc, RA_ERR_BAD_REQUEST, "%s truncated to %zu bytes gave %s", ra_golden[g].name, len,
                    ra_err_code (rc));
      cr_assert_null (in.root);
      free (copy);
    }
    ra_msg_in_fini (&in);
    ra_msg_out_fini (&out);
  }
  ra_golden_fini ();
}

static volatile unsigned char s_sink;   /* keeps the reads of tensor bytes */

/* Resolves every tensor reference-looking map in the tree; must never crash. */
static void s_touch_tensors (const ra_msg_in_t *in, const msgpack_object *o, int depth)
{
  if (depth > 40)
    return;
  if (o->type == MSGPACK_OBJECT_MAP) {
    ra_tensor_t t;
    ra_error_t err;
    if (ra_msg_in_tensor (in, o, "x", &t, &err) == RA_OK && t.nbytes) {
      for (size_t i = 0; i < t.nbytes; i++)
        s_sink ^= ((const unsigned char *) t.data)[i];
    }
    for (uint32_t i = 0; i < o->via.map.size; i++)
      s_touch_tensors (in, &o->via.map.ptr[i].val, depth + 1);
  } else if (o->type == MSGPACK_OBJECT_ARRAY)
    for (uint32_t i = 0; i < o->via.array.size; i++)
      s_touch_tensors (in, &o->via.array.ptr[i], depth + 1);
}

Test (msg, random_byte_flips_never_crash)
{
  ra_rng_t rng;
  ra_rng_seed (&rng, 1, 0);
  int decoded = 0, rejected = 0;
  for (int iter = 0; iter < 10000; iter++) {
    int g = iter % ra_golden_count;
    ra_msg_out_t out;
    ra_msg_in_t in;
    ra_error_t err;
    ra_msg_out_init (&out);
    ra_msg_in_init (&in);
    ra_golden[g].build (&out);
    size_t len = out.head.size;
    unsigned char *copy = malloc (len);
    memcpy (copy, out.head.data, len);
    int flips = 1 + iter % 4;
    for (int f = 0; f < flips; f++) {
      uint64_t x = ra_rng_next (&rng);
      copy[(x >> 8) % len] ^= (unsigned char) (1u << (x % 8));
    }
    const void *frames[RA_MSG_MAX_FRAMES];
    size_t sizes[RA_MSG_MAX_FRAMES];
    for (int i = 0; i < out.nframes; i++)
      frames[i] = out.frames[i].data, sizes[i] = out.frames[i].nbytes;
    ra_err_t rc = ra_msg_in_decode (&in, copy, len, out.nframes, frames, sizes, ra_golden[g].is_request, &err);
    cr_assert (rc == RA_OK || rc == RA_ERR_BAD_REQUEST || rc == RA_ERR_VERSION || rc == RA_ERR_LIMIT,
               "iteration %d gave %s", iter, ra_err_code (rc));
    if (rc == RA_OK) {
      decoded++;
      s_touch_tensors (&in, in.root, 0);
    } else
      rejected++;
    free (copy);
    ra_msg_in_fini (&in);
    ra_msg_out_fini (&out);
  }
  ra_golden_fini ();
  cr_assert (decoded > 0 && rejected > 0, "decoded %d, rejected %d", decoded, rejected);
}

/* ---------------------------------------------------------------------------------------------
   Typed accessors                                                                                */

Test (msg, accessors_reject_wrong_types_with_a_clear_message)
{
  s_raw_t r;
  s_raw_init (&r);
  msgpack_pack_map (&r.pk, 9);
  s_key (&r.pk, "v"); msgpack_pack_int (&r.pk, 1);
  s_key (&r.pk, "id"); msgpack_pack_int (&r.pk, 1);
  s_key (&r.pk, "op"); s_key (&r.pk, "x");
  s_key (&r.pk, "str"); s_key (&r.pk, "hello");
  s_key (&r.pk, "int"); msgpack_pack_int (&r.pk, -3);
  s_key (&r.pk, "big"); msgpack_pack_uint64 (&r.pk, UINT64_MAX);
  s_key (&r.pk, "flt"); msgpack_pack_double (&r.pk, 0.25);
  s_key (&r.pk, "arr"); msgpack_pack_array (&r.pk, 0);
  s_key (&r.pk, "nil"); msgpack_pack_nil (&r.pk);
  ra_msg_in_t in;
  ra_error_t err;
  ra_msg_in_init (&in);
  cr_assert_eq (s_decode_raw (&in, &r, true, &err), RA_OK, "%s", err.message);
  const msgpack_object *m = in.root, *o;
  int64_t i64;
  uint64_t u64;
  double d;
  bool b;
  const char *s;
  int len;
  ra_tensor_t t;

#define EXPECT_BAD(call, text)                                                                      \
  do {                                                                                              \
    ra_error_clear (&err);                                                                          \
    cr_assert_eq ((call), RA_ERR_BAD_REQUEST, #call);                                               \
    cr_assert (strstr (err.message, text), "%s: '%s' lacks '%s'", #call, err.message, text);        \
  } while (0)

  EXPECT_BAD (ra_get_int (m, "str", &i64, &err), "field 'str' must be an integer, got a string");
  EXPECT_BAD (ra_opt_int (m, "arr", &i64, &err), "field 'arr' must be an integer, got an array");
  EXPECT_BAD (ra_get_int (m, "flt", &i64, &err), "must be an integer, got a float");
  EXPECT_BAD (ra_get_int (m, "big", &i64, &err), "out of range");
  EXPECT_BAD (ra_get_uint (m, "int", &u64, &err), "must be a non-negative integer");
  EXPECT_BAD (ra_opt_uint (m, "str", &u64, &err), "got a string");
  EXPECT_BAD (ra_get_double (m, "str", &d, &err), "field 'str' must be a number, got a string");
  EXPECT_BAD (ra_opt_double (m, "arr", &d, &err), "got an array");
  EXPECT_BAD (ra_get_bool (m, "int", &b, &err), "field 'int' must be a bool, got an integer");
  EXPECT_BAD (ra_opt_bool (m, "str", &b, &err), "got a string");
  EXPECT_BAD (ra_get_str (m, "int", &s, &len, &err), "field 'int' must be a string, got an integer");
  EXPECT_BAD (ra_opt_str (m, "arr", &s, &len, &err), "got an array");
  EXPECT_BAD (ra_get_map (m, "arr", &o, &err), "field 'arr' must be a map, got an array");
  EXPECT_BAD (ra_opt_map (m, "str", &o, &err), "got a string");
  EXPECT_BAD (ra_get_array (m, "str", &o, &err), "field 'str' must be an array, got a string");
  EXPECT_BAD (ra_get_tensor (&in, m, "str", &t, &err), "must be a tensor reference");
  bool found;
  EXPECT_BAD (ra_opt_tensor (&in, m, "int", &t, &found, &err), "must be a tensor reference");
  cr_assert (found);

  /* Missing (absent or nil): ra_get_* fail, ra_opt_* leave *out alone. */
  const char *keys[] = { "absent", "nil" };
  for (int k = 0; k < 2; k++) {
    EXPECT_BAD (ra_get_int (m, keys[k], &i64, &err), "missing field");
    EXPECT_BAD (ra_get_uint (m, keys[k], &u64, &err), "missing field");
    EXPECT_BAD (ra_get_double (m, keys[k], &d, &err), "missing field");
    EXPECT_BAD (ra_get_bool (m, keys[k], &b, &err), "missing field");
    EXPECT_BAD (ra_get_str (m, keys[k], &s, &len, &err), "missing field");
    EXPECT_BAD (ra_get_map (m, keys[k], &o, &err), "missing field");
    EXPECT_BAD (ra_get_array (m, keys[k], &o, &err), "missing field");
    EXPECT_BAD (ra_get_tensor (&in, m, keys[k], &t, &err), "missing field");
    i64 = 5, u64 = 6, d = 7, b = true, s = "keep", o = NULL;
    cr_assert_eq (ra_opt_int (m, keys[k], &i64, &err), RA_OK);
    cr_assert_eq (ra_opt_uint (m, keys[k], &u64, &err), RA_OK);
    cr_assert_eq (ra_opt_double (m, keys[k], &d, &err), RA_OK);
    cr_assert_eq (ra_opt_bool (m, keys[k], &b, &err), RA_OK);
    cr_assert_eq (ra_opt_str (m, keys[k], &s, &len, &err), RA_OK);
    cr_assert_eq (ra_opt_map (m, keys[k], &o, &err), RA_OK);
    cr_assert_eq (ra_opt_tensor (&in, m, keys[k], &t, &found, &err), RA_OK);
    cr_assert (i64 == 5 && u64 == 6 && d == 7 && b && strcmp (s, "keep") == 0 && !o && !found);
  }
  cr_assert_null (ra_map_get (m, "nil"));
  cr_assert_null (ra_map_get (&m->via.map.ptr[3].val, "x"), "a string is not a map");

  /* Good reads. */
  cr_assert_eq (ra_get_int (m, "int", &i64, &err), RA_OK);
  cr_assert_eq (i64, -3);
  cr_assert_eq (ra_get_uint (m, "big", &u64, &err), RA_OK);
  cr_assert_eq (u64, UINT64_MAX);
  cr_assert_eq (ra_get_double (m, "int", &d, &err), RA_OK);
  cr_assert_float_eq (d, -3.0, 0);
  cr_assert_eq (ra_get_double (m, "flt", &d, &err), RA_OK);
  cr_assert_float_eq (d, 0.25, 0);
  cr_assert (ra_obj_is_str (ra_map_get (m, "str"), "hello"));
  cr_assert_not (ra_obj_is_str (ra_map_get (m, "str"), "hell"));
  cr_assert_str_eq (ra_obj_type_name (ra_map_get (m, "flt")), "a float");
#undef EXPECT_BAD
  ra_msg_in_fini (&in);
  msgpack_sbuffer_destroy (&r.sb);
}

/* Packs {"v":1,"id":1,"op":"step","t": <ref>} with a ref built by the callback. */
typedef void (*s_ref_fn) (msgpack_packer *pk);

static ra_err_t s_try_ref (s_ref_fn fn, size_t frame_bytes, ra_error_t *err)
{
  s_raw_t r;
  s_raw_init (&r);
  msgpack_pack_map (&r.pk, 4);
  s_key (&r.pk, "v"); msgpack_pack_int (&r.pk, 1);
  s_key (&r.pk, "id"); msgpack_pack_int (&r.pk, 1);
  s_key (&r.pk, "op"); s_key (&r.pk, "step");
  s_key (&r.pk, "t"); fn (&r.pk);
  static unsigned char data[64];
  const void *frames[2] = { data, data };
  size_t sizes[2] = { frame_bytes, 8 };
  ra_msg_in_t in;
  ra_msg_in_init (&in);
  ra_err_t rc = ra_msg_in_decode (&in, r.sb.data, r.sb.size, 2, frames, sizes, true, err);
  cr_assert_eq (rc, RA_OK, "%s", err->message);
  ra_tensor_t t;
  rc = ra_get_tensor (&in, in.root, "t", &t, err);
  ra_msg_in_fini (&in);
  msgpack_sbuffer_destroy (&r.sb);
  return rc;
}

static void s_ref (msgpack_packer *pk, const char *dtype, int ndim, const int64_t *shape, int64_t frame)
{
  msgpack_pack_map (pk, 3);
  s_key (pk, "dtype"); s_key (pk, dtype);
  s_key (pk, "shape"); msgpack_pack_array (pk, (size_t) ndim);
  for (int i = 0; i < ndim; i++)
    msgpack_pack_int64 (pk, shape[i]);
  s_key (pk, "frame"); msgpack_pack_int64 (pk, frame);
}

static void s_ref_good (msgpack_packer *pk) { s_ref (pk, "f32", 2, (int64_t[]) { 2, 2 }, 1); }
static void s_ref_bad_dtype (msgpack_packer *pk) { s_ref (pk, "f16", 1, (int64_t[]) { 4 }, 1); }
static void s_ref_negative (msgpack_packer *pk) { s_ref (pk, "u8", 2, (int64_t[]) { 4, -4 }, 1); }
static void s_ref_huge (msgpack_packer *pk) { s_ref (pk, "u8", 1, (int64_t[]) { 1ll << 40 }, 1); }
static void s_ref_overflow (msgpack_packer *pk)
{
  int64_t s[8] = { 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647 };
  s_ref (pk, "f64", 8, s, 1);
}
static void s_ref_size_overflow (msgpack_packer *pk)
{
  int64_t s[3] = { 1ll << 30, 1ll << 30, 4 };   /* numel = 2^62 fits, numel * 8 = 2^65 does not */
  s_ref (pk, "f64", 3, s, 1);
}
static void s_ref_nine_dims (msgpack_packer *pk) { s_ref (pk, "u8", 9, (int64_t[]) { 1, 1, 1, 1, 1, 1, 1, 1, 1 }, 1); }
static void s_ref_frame0 (msgpack_packer *pk) { s_ref (pk, "f32", 2, (int64_t[]) { 2, 2 }, 0); }
static void s_ref_frame3 (msgpack_packer *pk) { s_ref (pk, "f32", 2, (int64_t[]) { 2, 2 }, 3); }
static void s_ref_frame_neg (msgpack_packer *pk) { s_ref (pk, "f32", 2, (int64_t[]) { 2, 2 }, -1); }
static void s_ref_dtype_int (msgpack_packer *pk)
{
  msgpack_pack_map (pk, 3);
  s_key (pk, "dtype"); msgpack_pack_int (pk, 1);
  s_key (pk, "shape"); msgpack_pack_array (pk, 0);
  s_key (pk, "frame"); msgpack_pack_int (pk, 1);
}
static void s_ref_shape_map (msgpack_packer *pk)
{
  msgpack_pack_map (pk, 3);
  s_key (pk, "dtype"); s_key (pk, "u8");
  s_key (pk, "shape"); msgpack_pack_map (pk, 0);
  s_key (pk, "frame"); msgpack_pack_int (pk, 1);
}
static void s_ref_dim_float (msgpack_packer *pk)
{
  msgpack_pack_map (pk, 3);
  s_key (pk, "dtype"); s_key (pk, "u8");
  s_key (pk, "shape"); msgpack_pack_array (pk, 1); msgpack_pack_double (pk, 4.0);
  s_key (pk, "frame"); msgpack_pack_int (pk, 1);
}
static void s_ref_no_frame (msgpack_packer *pk)
{
  msgpack_pack_map (pk, 2);
  s_key (pk, "dtype"); s_key (pk, "u8");
  s_key (pk, "shape"); msgpack_pack_array (pk, 0);
}

Test (msg, tensor_refs_reject_bad_dtype_shape_frame_and_size)
{
  ra_error_t err;
  cr_assert_eq (s_try_ref (s_ref_good, 16, &err), RA_OK, "%s", err.message);
  struct { s_ref_fn fn; size_t bytes; const char *want; } cases[] = {
    { s_ref_bad_dtype, 16, "unknown dtype 'f16'" },
    { s_ref_dtype_int, 1, "dtype must be a string, got an integer" },
    { s_ref_negative, 16, "shape[1] must be a non-negative integer, got a negative integer" },
    { s_ref_huge, 16, "exceeds" },
    { s_ref_overflow, 16, "shape overflows" },
    { s_ref_size_overflow, 16, "size overflows" },
    { s_ref_nine_dims, 1, "9 dims" },
    { s_ref_shape_map, 1, "shape must be an array, got a map" },
    { s_ref_dim_float, 4, "shape[0] must be a non-negative integer, got a float" },
    { s_ref_frame0, 16, "frame 0 does not exist" },
    { s_ref_frame3, 16, "frame 3 does not exist, the message has frames 1..2" },
    { s_ref_frame_neg, 16, "frame must be a positive integer, got a negative integer" },
    { s_ref_no_frame, 1, "frame must be a positive integer, got nothing" },
    { s_ref_good, 15, "frame 1 has 15 bytes, expected 16" },
    { s_ref_good, 17, "frame 1 has 17 bytes, expected 16" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ra_error_clear (&err);
    cr_assert_eq (s_try_ref (cases[i].fn, cases[i].bytes, &err), RA_ERR_BAD_REQUEST, "case %zu", i);
    cr_assert (strstr (err.message, cases[i].want), "case %zu: '%s' lacks '%s'", i, err.message, cases[i].want);
    cr_assert (strstr (err.message, "'t'"), "names the field: %s", err.message);
  }
}

Test (msg, out_clear_reuses_the_buffer)
{
  ra_msg_out_t out;
  ra_msg_in_t in;
  ra_error_t err;
  ra_msg_out_init (&out);
  ra_msg_in_init (&in);
  int64_t n = 2;
  int32_t x[2] = { 1, 2 };
  ra_msg_out_request (&out, 1, "step", 1);
  ra_msg_out_str (&out, "a");
  ra_msg_out_tensor (&out, RA_DTYPE_I32, 1, &n, x);
  ra_msg_out_clear (&out);
  cr_assert_eq (out.nframes, 0);
  ra_msg_out_reply (&out, 2, 4);
  ra_msg_out_str (&out, "n"); ra_msg_out_nil (&out);
  ra_msg_out_str (&out, "b"); ra_msg_out_bool (&out, false);
  ra_msg_out_str (&out, "u"); ra_msg_out_uint (&out, 5);
  ra_msg_out_str (&out, "d"); ra_msg_out_double (&out, -0.5);
  cr_assert_eq (s_decode (&in, &out, false, &err), RA_OK, "%s", err.message);
  bool b = true;
  double d;
  cr_assert (in.ok && in.id == 2);
  cr_assert_eq (ra_get_bool (in.root, "b", &b, &err), RA_OK);
  cr_assert_not (b);
  cr_assert_eq (ra_get_double (in.root, "d", &d, &err), RA_OK);
  cr_assert_float_eq (d, -0.5, 0);
  cr_assert_null (ra_map_get (in.root, "n"));
  ra_msg_in_fini (&in);
  ra_msg_out_fini (&out);
}
