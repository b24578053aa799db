/*  env/server/handles.c - session handles as unguessable capabilities (docs/protocol.md section
    "Handles and ownership").

    A handle is SipHash-2-4 of a counter under a 128-bit key drawn from getrandom at server start,
    masked to 63 bits (a positive msgpack int64 every client reads as an integer). Without the key,
    knowing any number of handles says nothing about the others (SipHash is a PRF), so guessing a
    live handle succeeds with probability about sessions / 2^63; and since every run draws a fresh
    key, a handle from a previous run is an unknown value to this one. A table (open addressing,
    linear probing, deletion by backward shift) maps handles to session slots in O(1).
    Owns: the key, the counter and the table. Threading: the server's one thread.              */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "env/server/server_int.h"

static uint64_t s_rotl (uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

#define S_SIPROUND                                                                             \
  do {                                                                                         \
    v0 += v1; v1 = s_rotl (v1, 13); v1 ^= v0; v0 = s_rotl (v0, 32);                            \
    v2 += v3; v3 = s_rotl (v3, 16); v3 ^= v2;                                                  \
    v0 += v3; v3 = s_rotl (v3, 21); v3 ^= v0;                                                  \
    v2 += v1; v1 = s_rotl (v1, 17); v1 ^= v2; v2 = s_rotl (v2, 32);                            \
  } while (0)

/* SipHash-2-4 of one 8-byte little-endian word m under key (k0, k1) (Aumasson and Bernstein,
   2012): two compression rounds for the word and for the length block, four finalisation rounds. */
static uint64_t s_siphash_u64 (uint64_t k0, uint64_t k1, uint64_t m)
{
  uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
  uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
  v3 ^= m;
  S_SIPROUND;
  S_SIPROUND;
  v0 ^= m;
  uint64_t b = (uint64_t) 8 << 56;      /* message length 8, no tail bytes */
  v3 ^= b;
  S_SIPROUND;
  S_SIPROUND;
  v0 ^= b;
  v2 ^= 0xff;
  S_SIPROUND;
  S_SIPROUND;
  S_SIPROUND;
  S_SIPROUND;
  return v0 ^ v1 ^ v2 ^ v3;
}

/* Fills buf from the kernel's random source; false if it cannot. */
static bool s_random_bytes (void *buf, size_t n)
{
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom ((char *) buf + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    got += (size_t) r;
  }
  if (got == n)
    return true;
  int fd = open ("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  while (got < n) {
    ssize_t r = read (fd, (char *) buf + got, n - got);
    if (r <= 0 && errno != EINTR)
      break;
    if (r > 0)
      got += (size_t) r;
  }
  close (fd);
  return got == n;
}

ra_err_t ra__handles_init (ra_server_t *srv, ra_error_t *err)
{
  if (!s_random_bytes (srv->handle_key, sizeof srv->handle_key))
    return ra_error_set (err, RA_ERR_INTERNAL, -1,
                         "cannot read 16 random bytes for the handle key (getrandom and /dev/urandom failed)");
  srv->handle_counter = 0;
  uint32_t cap = 16;
  while (cap < 2u * (uint32_t) srv->opts.max_sessions)
    cap <<= 1;
  srv->htab = malloc ((size_t) cap * sizeof *srv->htab);
  if (!srv->htab)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory for the handle table");
  for (uint32_t i = 0; i < cap; i++)
    srv->htab[i] = -1;
  srv->hmask = cap - 1;
  return RA_OK;
}

void ra__handles_fini (ra_server_t *srv)
{
  free (srv->htab);
  srv->htab = NULL;
  memset (srv->handle_key, 0, sizeof srv->handle_key);
}

/* Where the probe for handle starts: its low bits are already uniformly random. */
static uint32_t s_home (const ra_server_t *srv, int64_t handle)
{
  return (uint32_t) ((uint64_t) handle ^ ((uint64_t) handle >> 32)) & srv->hmask;
}

int ra__handle_find (const ra_server_t *srv, int64_t handle)
{
  if (handle <= 0 || !srv->htab)
    return -1;
  for (uint32_t i = s_home (srv, handle);; i = (i + 1) & srv->hmask) {
    int32_t s = srv->htab[i];
    if (s < 0)
      return -1;
    if (srv->slots[s].handle == handle)
      return s;
  }
}

int64_t ra__handle_new (ra_server_t *srv)
{
  for (;;) {
    uint64_t h = s_siphash_u64 (srv->handle_key[0], srv->handle_key[1], ++srv->handle_counter);
    int64_t handle = (int64_t) (h & (uint64_t) INT64_MAX);
    if (handle != 0 && ra__handle_find (srv, handle) < 0)
      return handle;
  }
}

void ra__handle_put (ra_server_t *srv, int64_t handle, int slot_i)
{
  uint32_t i = s_home (srv, handle);
  while (srv->htab[i] >= 0)
    i = (i + 1) & srv->hmask;
  srv->htab[i] = slot_i;
}

void ra__handle_del (ra_server_t *srv, int64_t handle)
{
  if (handle <= 0 || !srv->htab)
    return;
  uint32_t i = s_home (srv, handle);
  for (;; i = (i + 1) & srv->hmask) {
    if (srv->htab[i] < 0)
      return;
    if (srv->slots[srv->htab[i]].handle == handle)
      break;
  }
  /* Backward shift: move later entries of the run into the hole when their home allows it. */
  uint32_t hole = i;
  for (uint32_t j = (hole + 1) & srv->hmask; srv->htab[j] >= 0; j = (j + 1) & srv->hmask) {
    uint32_t home = s_home (srv, srv->slots[srv->htab[j]].handle);
    /* The entry at j may move to hole if home is not cyclically in (hole, j]. */
    bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!stays) {
      srv->htab[hole] = srv->htab[j];
      hole = j;
    }
  }
  srv->htab[hole] = -1;
}

uint64_t ra__secret_u64 (ra_server_t *srv)
{
  /* Same stream, another key (domain separation): these values and the handles say nothing about
     each other. */
  return s_siphash_u64 (srv->handle_key[0] ^ 0x53484d5345475331ull, srv->handle_key[1],
                        ++srv->handle_counter);
}
