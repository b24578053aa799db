/*  tests/protocol/fuzz_decode.c - libFuzzer harness for the message decoder (clang only; build
    with -DRA_FUZZ=ON, then run <build>/tests/protocol/fuzz_decode CORPUS_DIR).
    Input: the golden on-disk frame format is not required; the first byte picks request/reply and
    how many bytes of the rest form frame 0, the remainder is split into up to 4 tensor frames.
    Every reachable tensor reference and space is resolved.                                       */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "protocol/msg.h"
#include "protocol/space.h"

static volatile unsigned char s_sink;   /* keeps the reads of tensor bytes */

static void s_walk (const ra_msg_in_t *in, const msgpack_object *o, int depth)
{
  if (depth > 40)
    return;
  ra_error_t err;
  if (o->type == MSGPACK_OBJECT_MAP) {
    ra_tensor_t t;
    if (ra_msg_in_tensor (in, o, "x", &t, &err) == RA_OK && t.nbytes) {
      for (size_t i = 0; i < t.nbytes; i++)
        s_sink ^= ((const unsigned char *) t.data)[i];
    }
    ra_space_t *s = NULL;
    if (ra_space_decode (in, o, &s, &err) == RA_OK)
      ra_space_destroy (&s);
    for (uint32_t i = 0; i < o->via.map.size; i++)
      s_walk (in, &o->via.map.ptr[i].val, depth + 1);
  } else if (o->type == MSGPACK_OBJECT_ARRAY)
    for (uint32_t i = 0; i < o->via.array.size; i++)
      s_walk (in, &o->via.array.ptr[i], depth + 1);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 2)
    return 0;
  bool is_request = data[0] & 1;
  size_t head = (size_t) data[1] * (size - 2) / 255;
  const uint8_t *rest = data + 2 + head;
  size_t left = size - 2 - head;
  const void *frames[4];
  size_t sizes[4];
  int n = (data[0] >> 1) % 5;
  for (int i = 0; i < n; i++) {
    size_t k = i + 1 < n ? left / 2 : left;
    frames[i] = rest, sizes[i] = k;
    rest += k, left -= k;
  }
  ra_msg_in_t in;
  ra_error_t err;
  ra_msg_in_init (&in);
  if (ra_msg_in_decode (&in, data + 2, head, n, frames, sizes, is_request, &err) == RA_OK)
    s_walk (&in, in.root, 0);
  ra_msg_in_fini (&in);
  return 0;
}
