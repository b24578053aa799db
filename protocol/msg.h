/*  protocol/msg.h - the message codec of protocol v1 (docs/protocol.md).

    A message is multipart: frame 0 is a msgpack map (the header); frames 1..n are raw tensor bytes
    referenced from the header by index. This module builds and parses those parts; it never
    touches a socket.

    Outgoing: ra_msg_out_t packs a header with msgpack-c's packer and collects tensor frames. Frame
    data is borrowed: it must stay valid until the message has been sent.
    Incoming: ra_msg_in_t decodes frame 0 into a msgpack object tree it owns, and borrows the
    tensor frames from the caller's receive buffers until ra_msg_in_fini or the next decode.
    Every accessor checks the type of what it reads; bytes from the network are untrusted.
    Objects are not thread-safe; one per thread.                                                  */
#ifndef RA_PROTOCOL_MSG_H
#define RA_PROTOCOL_MSG_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "protocol/tensor.h"

#define RA_PROTOCOL_VERSION 1
/* Most tensor frames one message may carry (frame 0, the header, not counted). */
#define RA_MSG_MAX_FRAMES 64
/* Most msgpack values (scalars, containers and their elements) a header may hold: bounds the
   decoded tree to about 24 MiB whatever the input (a seed list of 65536 envs is 65537 values).
   More is RA_ERR_LIMIT. */
#define RA_MSG_MAX_HEADER_VALUES (1 << 20)

/* ---------------------------------------------------------------------------------------------
   Outgoing messages                                                                              */

typedef struct {
  const void *data;     /* borrowed */
  size_t nbytes;
} ra_frame_t;

typedef struct {
  msgpack_sbuffer head;                   /* frame 0 bytes */
  msgpack_packer pk;                      /* packs into head; msgpack_pack_* may be used directly */
  int nframes;                            /* tensor frames appended so far */
  ra_frame_t frames[RA_MSG_MAX_FRAMES];   /* frames[i] travels as frame i + 1 */
} ra_msg_out_t;

void ra_msg_out_init (ra_msg_out_t *m);
void ra_msg_out_fini (ra_msg_out_t *m);
/* Empties the message, keeping its buffer for reuse. */
void ra_msg_out_clear (ra_msg_out_t *m);

/* Header of a request: a map of 3 + n_more entries whose first three are v, id, op. The caller
   then packs exactly n_more key/value pairs. */
void ra_msg_out_request (ra_msg_out_t *m, uint64_t id, const char *op, uint32_t n_more);
/* Header of a success reply: a map of 3 + n_more entries, first v, id, ok: true. */
void ra_msg_out_reply (ra_msg_out_t *m, uint64_t id, uint32_t n_more);
/* A complete error reply (clears m first): ok: false, error: {code, message, env_index?}. The
   message is sent as valid UTF-8: bytes that do not form a character (a client's raw bytes, a
   character cut by truncation) become '?'. */
void ra_msg_out_error (ra_msg_out_t *m, uint64_t id, const ra_error_t *e);

void ra_msg_out_str (ra_msg_out_t *m, const char *s);   /* also used for keys */
void ra_msg_out_int (ra_msg_out_t *m, int64_t v);
void ra_msg_out_uint (ra_msg_out_t *m, uint64_t v);
void ra_msg_out_double (ra_msg_out_t *m, double v);
void ra_msg_out_bool (ra_msg_out_t *m, bool v);
void ra_msg_out_nil (ra_msg_out_t *m);
void ra_msg_out_map (ra_msg_out_t *m, uint32_t n);
void ra_msg_out_array (ra_msg_out_t *m, uint32_t n);
/* Packs a tensor reference {"dtype", "shape", "frame"} and appends data (borrowed; numel *
   dtype size bytes) as the next frame. RA_ERR_LIMIT when RA_MSG_MAX_FRAMES are used (the map is
   then not written, so the caller must abandon the message). */
ra_err_t ra_msg_out_tensor (ra_msg_out_t *m, ra_dtype_t dtype, int ndim, const int64_t *shape,
                            const void *data);

/* ---------------------------------------------------------------------------------------------
   Incoming messages                                                                              */

typedef struct {
  msgpack_unpacked unp;                    /* owns the decoded header tree */
  const msgpack_object *root;              /* the header map, NULL before a successful decode */
  int nframes;                             /* tensor frames (frame 0 excluded) */
  const void *frame_data[RA_MSG_MAX_FRAMES];   /* borrowed from the caller */
  size_t frame_size[RA_MSG_MAX_FRAMES];
  bool has_id;                             /* id was readable (even if decoding failed later) */
  uint64_t id;
  const char *op;                          /* requests: op name, borrowed from the tree, not NUL-terminated */
  int op_len;
  bool ok;                                 /* replies: the "ok" flag */
} ra_msg_in_t;

void ra_msg_in_init (ra_msg_in_t *m);
void ra_msg_in_fini (ra_msg_in_t *m);

/* Decodes frame 0 (exactly one msgpack map, nothing after it) and records the nframes tensor
   frames (borrowed). Checks "v" (RA_ERR_VERSION if it is not RA_PROTOCOL_VERSION), "id" (an
   unsigned integer) and, for requests, "op" (a string); for replies, "ok" (a bool). Any other
   problem is RA_ERR_BAD_REQUEST with a message naming the field. Sets has_id/id as soon as the id
   is known so that an error reply can carry it. More than RA_MSG_MAX_FRAMES frames is
   RA_ERR_LIMIT, and so is a header of more than RA_MSG_MAX_HEADER_VALUES values. Cost: O(header
   bytes); memory at most 24 bytes per header byte and about 24 MiB in all. */
ra_err_t ra_msg_in_decode (ra_msg_in_t *m, const void *head, size_t head_len, int nframes,
                           const void *const *frames, const size_t *sizes, bool is_request,
                           ra_error_t *err);

/* Resolves a tensor reference map: checks dtype name, shape (array of 0..RA_TENSOR_MAX_DIMS
   non-negative integers, product without overflow), frame index (1..nframes) and that the frame
   holds exactly numel * dtype size bytes. name is used in error messages ("action"). The view
   borrows the frame. RA_ERR_BAD_REQUEST on any mismatch. Tensor data may be unaligned: read it
   with memcpy or check alignment. */
ra_err_t ra_msg_in_tensor (const ra_msg_in_t *m, const msgpack_object *ref, const char *name,
                           ra_tensor_t *out, ra_error_t *err);

/* ---------------------------------------------------------------------------------------------
   Typed access to header maps. A key that is absent or nil is "missing". ra_get_* require the
   key (missing is RA_ERR_BAD_REQUEST "missing field 'x'"); ra_opt_* leave *out untouched and
   return RA_OK when it is missing. A present value of the wrong type is RA_ERR_BAD_REQUEST
   ("field 'x' must be an integer, got a string").                                               */

/* The value under key, or NULL if map is not a map, the key is absent, or the value is nil. */
const msgpack_object *ra_map_get (const msgpack_object *map, const char *key);
/* True if o is a string equal to s. */
bool ra_obj_is_str (const msgpack_object *o, const char *s);
/* "an integer", "a string", "a map", ... for error messages. */
const char *ra_obj_type_name (const msgpack_object *o);

ra_err_t ra_get_int (const msgpack_object *map, const char *key, int64_t *out, ra_error_t *err);
ra_err_t ra_opt_int (const msgpack_object *map, const char *key, int64_t *out, ra_error_t *err);
ra_err_t ra_get_uint (const msgpack_object *map, const char *key, uint64_t *out, ra_error_t *err);
ra_err_t ra_opt_uint (const msgpack_object *map, const char *key, uint64_t *out, ra_error_t *err);
/* Accepts integers and floats. */
ra_err_t ra_get_double (const msgpack_object *map, const char *key, double *out, ra_error_t *err);
ra_err_t ra_opt_double (const msgpack_object *map, const char *key, double *out, ra_error_t *err);
ra_err_t ra_get_bool (const msgpack_object *map, const char *key, bool *out, ra_error_t *err);
ra_err_t ra_opt_bool (const msgpack_object *map, const char *key, bool *out, ra_error_t *err);
/* Strings are borrowed from the tree and not NUL-terminated. */
ra_err_t ra_get_str (const msgpack_object *map, const char *key, const char **out, int *len,
                     ra_error_t *err);
ra_err_t ra_opt_str (const msgpack_object *map, const char *key, const char **out, int *len,
                     ra_error_t *err);
ra_err_t ra_get_map (const msgpack_object *map, const char *key, const msgpack_object **out,
                     ra_error_t *err);
ra_err_t ra_opt_map (const msgpack_object *map, const char *key, const msgpack_object **out,
                     ra_error_t *err);
ra_err_t ra_get_array (const msgpack_object *map, const char *key, const msgpack_object **out,
                       ra_error_t *err);
/* A required tensor reference under key, resolved as ra_msg_in_tensor. */
ra_err_t ra_get_tensor (const ra_msg_in_t *m, const msgpack_object *map, const char *key,
                        ra_tensor_t *out, ra_error_t *err);
ra_err_t ra_opt_tensor (const ra_msg_in_t *m, const msgpack_object *map, const char *key,
                        ra_tensor_t *out, bool *found, ra_error_t *err);

#endif
