/*  protocol/shm.c - the client's side of the shared-memory data plane (see shm.h).
    Every offset from the server is checked against the mapping before use.                      */
#define _DEFAULT_SOURCE
#include "protocol/shm.h"

#include "protocol/spin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct ra_shm_map {
  void *base;
  size_t bytes;
  int fd;                       /* kept open: it holds the LOCK_SH that says this client lives */
  size_t off_action[2];
  int n, k;
  int next;
  void *spin;                   /* the doorbell area, or NULL */
  uint64_t seq;                 /* the last request posted there */
};

bool ra_shm_endpoint_local (const char *ep)
{
  return strncmp (ep, "ipc://", 6) == 0 || strncmp (ep, "tcp://127.", 10) == 0
         || strncmp (ep, "tcp://localhost:", 16) == 0 || strncmp (ep, "tcp://[::1]:", 12) == 0;
}

static bool s_uint (const msgpack_object *o, uint64_t *out)
{
  if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
    return false;
  *out = o->via.u64;
  return true;
}

ra_err_t ra_shm_map_open (const msgpack_object *desc, int n, int k, ra_shm_map_t **out,
                          ra_error_t *err)
{
  *out = NULL;
  const msgpack_object *name = ra_map_get (desc, "name"), *act = ra_map_get (desc, "action");
  uint64_t bytes, off[2];
  char path[128];
  if (!name || name->type != MSGPACK_OBJECT_STR || name->via.str.size < 2
      || name->via.str.size >= sizeof path || name->via.str.ptr[0] != '/'
      || memchr (name->via.str.ptr + 1, '/', name->via.str.size - 1)
      || memchr (name->via.str.ptr, '\0', name->via.str.size)
      || !s_uint (ra_map_get (desc, "bytes"), &bytes) || !act || act->type != MSGPACK_OBJECT_ARRAY
      || act->via.array.size != 2 || !s_uint (&act->via.array.ptr[0], &off[0])
      || !s_uint (&act->via.array.ptr[1], &off[1]))
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                         "malformed reply: field 'shm' must be {name: '/...', bytes, action: [o0, o1]}");
  uint64_t abytes = (uint64_t) n * (uint64_t) (k > 0 ? k : 1) * 4;
  for (int j = 0; j < 2; j++)
    if (off[j] > bytes || abytes > bytes - off[j] || off[j] % 4)
      return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                           "malformed reply: shm action area %d (offset %llu) does not fit the segment", j,
                           (unsigned long long) off[j]);
  memcpy (path, name->via.str.ptr, name->via.str.size);
  path[name->via.str.size] = '\0';
  int fd = shm_open (path, O_RDWR | O_CLOEXEC, 0);
  if (fd < 0)
    return ra_error_set (err, RA_ERR_TRANSPORT, -1, "cannot open shared-memory segment %s: %s", path,
                         strerror (errno));
  /* The shared lock lives as long as this descriptor (and its copies in forked children): the
     server takes the segment's client for gone once no process holds it (docs/protocol.md
     section "Shared memory"). */
  struct stat st;
  void *base = MAP_FAILED;
  if (flock (fd, LOCK_SH | LOCK_NB) == 0 && fstat (fd, &st) == 0 && (uint64_t) st.st_size >= bytes
      && bytes > 0)
    base = mmap (NULL, (size_t) bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int e = errno;
  if (base == MAP_FAILED) {
    close (fd);
    return ra_error_set (err, RA_ERR_TRANSPORT, -1,
                         "cannot lock and map shared-memory segment %s of %llu bytes: %s", path,
                         (unsigned long long) bytes, strerror (e));
  }
  ra_shm_map_t *m = calloc (1, sizeof *m);
  if (!m) {
    munmap (base, (size_t) bytes);
    close (fd);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory");
  }
  *m = (ra_shm_map_t) { .base = base, .bytes = (size_t) bytes, .fd = fd,
                        .off_action = { off[0], off[1] }, .n = n, .k = k > 0 ? k : 1 };
  /* A doorbell this build cannot use (other sizes, outside the segment) is left alone: the
     session still answers every request over ZeroMQ. */
  const msgpack_object *spin = ra_map_get (desc, "spin");
  uint64_t so, rq, rp;
  if (spin && spin->type == MSGPACK_OBJECT_MAP && s_uint (ra_map_get (spin, "offset"), &so)
      && s_uint (ra_map_get (spin, "request_bytes"), &rq) && s_uint (ra_map_get (spin, "reply_bytes"), &rp)
      && rq == RA_SPIN_REQ_BYTES && rp == RA_SPIN_REP_BYTES && so % 64 == 0 && so <= bytes
      && bytes - so >= RA_SPIN_AREA_BYTES)
    m->spin = (char *) base + so;
  *out = m;
  return RA_OK;
}

void ra_shm_map_close (ra_shm_map_t **map_p)
{
  ra_shm_map_t *m = *map_p;
  if (!m)
    return;
  munmap (m->base, m->bytes);
  close (m->fd);
  free (m);
  *map_p = NULL;
}

int ra_shm_map_next (ra_shm_map_t *m)
{
  int j = m->next;
  m->next ^= 1;
  return j;
}

void *ra_shm_map_spin (const ra_shm_map_t *m) { return m->spin; }

uint64_t ra_shm_map_next_seq (ra_shm_map_t *m) { return ++m->seq; }

bool ra_shm_map_put_action (ra_shm_map_t *m, int j, const ra_tensor_t *a)
{
  bool shape_ok = m->k == 1 ? a->ndim == 1 && a->shape[0] == m->n
                            : a->ndim == 2 && a->shape[0] == m->n && a->shape[1] == m->k;
  if (!shape_ok || !ra_dtype_is_integer (a->dtype))
    return false;
  int64_t numel = (int64_t) m->n * m->k;
  int32_t *dst = (int32_t *) ((char *) m->base + m->off_action[j]);
  if (a->dtype == RA_DTYPE_I32) {
    memcpy (dst, a->data, (size_t) numel * sizeof *dst);
    return true;
  }
  for (int64_t i = 0; i < numel; i++) {
    int64_t v = ra_tensor_get_int (a, i);
    if (v < INT32_MIN || v > INT32_MAX)
      return false;
    dst[i] = (int32_t) v;
  }
  return true;
}

ra_err_t ra_shm_map_resolve (const ra_shm_map_t *m, ra_msg_in_t *reply, ra_error_t *err)
{
  const msgpack_object *t = ra_map_get (reply->root, "shm");
  if (!t || t->type != MSGPACK_OBJECT_ARRAY || t->via.array.size % 2
      || t->via.array.size / 2 > RA_MSG_MAX_FRAMES)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                         "malformed reply: field 'shm' must be an array of offset, size pairs");
  int nframes = (int) (t->via.array.size / 2);
  for (int i = 0; i < nframes; i++) {
    uint64_t off, nb;
    if (!s_uint (&t->via.array.ptr[2 * i], &off) || !s_uint (&t->via.array.ptr[2 * i + 1], &nb)
        || off > m->bytes || nb > m->bytes - off)
      return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                           "malformed reply: shm tensor %d lies outside the %zu-byte segment", i, m->bytes);
    reply->frame_data[i] = (const char *) m->base + off;
    reply->frame_size[i] = (size_t) nb;
  }
  reply->nframes = nframes;
  return RA_OK;
}
