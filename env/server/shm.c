/*  env/server/shm.c - the shared-memory data plane of local clients (docs/protocol.md section
    "Shared memory").

    A session made with "shm": true on a server bound only to local endpoints gets a POSIX shared
    memory segment, created here with mode 0600 under an unguessable name
    ("/recarena-shm-<pid>-<128 bits from the server's secret stream>"), holding two output blocks
    (the session's buffers, session.h ra_session_use_blocks) and two action areas:

        [block 0][block 1][actions 0][actions 1]([doorbell])      each part page-aligned

    The doorbell (protocol/spin.h, docs/local.md section 4) is there when the make asked for
    spin, the server runs with --spin-us and the session's steps run inline (spin.c serves it).

    A request names a slot j (0 or 1): the client wrote its actions into actions j (unless the
    request carries an "action" tensor), the session writes its results into block j, and the
    reply's header carries the byte offsets of its tensors in the segment instead of frames. A
    client alternating j reads step t's results while the server writes step t+1's.
    A client that says so in its make (shm_lock: true) holds flock(LOCK_SH) on its own descriptor
    of the segment from mapping it until it unmaps it; once it has used the segment, a LOCK_EX
    the server gets without waiting (ra__shm_client_gone, at the idle sweep) means no process
    holds the segment any more: its client died or dropped it, and the session goes.
    Owns: the segment (its name until unlinked, the server's descriptor and mapping). The name is unlinked at
    the first request that names a slot (the client has mapped it by then, so nobody else can open
    it afterwards) or when the session goes, whichever comes first; segments of a server that died
    are swept by the next server's start (ra__shm_sweep). Threading: the server's one thread. */
#define _GNU_SOURCE   /* posix_fallocate, shm_open, fstatat */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "env/server/server_int.h"
#include "protocol/spin.h"

#define S_PREFIX "recarena-shm-"
#define S_PAGE 4096u

struct ra__shm {
  char name[80];                /* "/recarena-shm-..." */
  bool linked;                  /* the name still exists */
  bool client_locks;            /* the client holds flock(LOCK_SH) while it has it mapped */
  int fd;                       /* the server's descriptor (for the flock test), or -1 */
  void *base;
  size_t bytes;
  size_t off_block[2], off_action[2], action_bytes;
  size_t off_spin;              /* the doorbell area, 0: none (it never starts a segment) */
  ra_server_t *srv;             /* whose doorbell list holds it */
};

static size_t s_pages (size_t n) { return (n + S_PAGE - 1) & ~(size_t) (S_PAGE - 1); }

bool ra__shm_offered (const ra_server_t *srv)
{
  if (srv->nbinds == 0)
    return false;
  for (int i = 0; i < srv->nbinds; i++) {
    const char *ep = srv->endpoints[i];
    bool local = strncmp (ep, "ipc://", 6) == 0
                 || strncmp (ep, "tcp://127.", 10) == 0 || strncmp (ep, "tcp://[::1]:", 12) == 0
                 || strncmp (ep, "tcp://localhost:", 16) == 0;
    if (!local)
      return false;
  }
  return true;
}

ra_err_t ra__shm_new (ra_server_t *srv, ra__slot_t *slot, ra_error_t *err)
{
  ra_session_t *s = slot->session;
  int n = ra_session_num_envs (s), k = ra_session_slate_size (s);
  ra__shm_t *m = calloc (1, sizeof *m);
  if (!m)
    return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory for a shared-memory segment");
  size_t block = s_pages (ra_session_block_bytes (s));
  m->action_bytes = (size_t) n * (size_t) (k > 0 ? k : 1) * sizeof (int32_t);
  m->off_block[0] = 0;
  m->off_block[1] = block;
  m->off_action[0] = 2 * block;
  m->off_action[1] = 2 * block + s_pages (m->action_bytes);
  m->bytes = m->off_action[1] + s_pages (m->action_bytes);
  /* A doorbell only for sessions stepped inline: a step on the workers is answered later, by the
     loop, and costs far more than the wake-ups a doorbell saves. */
  if (slot->mk_spin && srv->opts.spin_us > 0 && !ra__session_async (srv, slot)) {
    m->off_spin = m->bytes;
    m->bytes += s_pages (RA_SPIN_AREA_BYTES);
  }
  /* The estimate counts the output rows once (docs/protocol.md section "Limits"); the second
     block, the action areas and the doorbell are this segment's own. */
  double extra = (double) m->bytes - (double) ra_session_block_bytes (s);
  ra_err_t arc = ra__admit (srv, slot->owner, (double) slot->bytes, extra, "the shared-memory segment", err);
  if (arc != RA_OK) {
    free (m);
    return arc;
  }
  m->srv = srv;
  m->fd = -1;
  m->client_locks = slot->mk_shm_lock;
  uint64_t r0 = ra__secret_u64 (srv), r1 = ra__secret_u64 (srv);
  snprintf (m->name, sizeof m->name, "/" S_PREFIX "%ld-%016" PRIx64 "%016" PRIx64, (long) getpid (),
            r0, r1);
  int fd = shm_open (m->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    int e = errno;
    free (m);
    return ra_error_set (err, RA_ERR_INTERNAL, -1, "cannot create a shared-memory segment: %s",
                         strerror (e));
  }
  m->linked = true;
  m->fd = fd;
  /* Reserved, not just sized: a sparse segment on a full tmpfs (a container's small /dev/shm)
     would raise SIGBUS at the first write to a missing page; posix_fallocate says ENOSPC now,
     and the session falls back to frames. */
  int frc = posix_fallocate (fd, 0, (off_t) m->bytes);
  if (frc != 0)
    errno = frc;
  if (frc != 0
      || (m->base = mmap (NULL, m->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
    int e = errno;
    size_t bytes = m->bytes;
    m->base = NULL;
    slot->shm = m;
    ra__shm_drop (slot);   /* frees m */
    return ra_error_set (err, RA_ERR_LIMIT, -1, "cannot size a shared-memory segment of %zu bytes: %s",
                         bytes, strerror (e));
  }
  char *base = m->base;
  if (ra_session_use_blocks (s, base + m->off_block[0], base + m->off_block[1]) != RA_OK) {
    slot->shm = m;
    ra__shm_drop (slot);
    return ra_error_set (err, RA_ERR_NOMEM, -1, "out of memory for a shared-memory segment");
  }
  slot->shm = m;
  slot->spin_seq = 0;
  slot->bytes += (int64_t) extra;
  srv->nbytes += (int64_t) extra;
  if (m->off_spin)
    ra__spin_add (srv, slot);
  return RA_OK;
}

void *ra__shm_spin_area (const ra__slot_t *slot)
{
  const ra__shm_t *m = slot->shm;
  return m && m->off_spin && m->base ? (char *) m->base + m->off_spin : NULL;
}

void ra__shm_drop (ra__slot_t *slot)
{
  ra__shm_t *m = slot->shm;
  if (!m)
    return;
  if (m->off_spin && m->base) {
    /* A client spinning on it stops waiting for a poller that is gone, and rings. */
    ra_spin_set_polling ((char *) m->base + m->off_spin, false);
    ra__spin_remove (m->srv, slot);
  }
  if (m->linked)
    shm_unlink (m->name);
  if (m->base)
    munmap (m->base, m->bytes);
  if (m->fd >= 0)
    close (m->fd);
  free (m);
  slot->shm = NULL;
}

bool ra__shm_client_gone (const ra__slot_t *slot)
{
  const ra__shm_t *m = slot->shm;
  /* Only after the client's first use (it mapped and locked the segment before that request). */
  if (!m || !m->client_locks || m->linked || m->fd < 0)
    return false;
  if (flock (m->fd, LOCK_EX | LOCK_NB) != 0)
    return false;   /* EWOULDBLOCK: a client still holds its LOCK_SH */
  flock (m->fd, LOCK_UN);
  return true;
}

void ra__shm_pack_make (ra_msg_out_t *rep, const ra__slot_t *slot)
{
  const ra__shm_t *m = slot->shm;
  ra_msg_out_map (rep, 3 + (m->off_spin != 0));
  ra_msg_out_str (rep, "name");
  ra_msg_out_str (rep, m->name);
  ra_msg_out_str (rep, "bytes");
  ra_msg_out_uint (rep, m->bytes);
  ra_msg_out_str (rep, "action");
  ra_msg_out_array (rep, 2);
  ra_msg_out_uint (rep, m->off_action[0]);
  ra_msg_out_uint (rep, m->off_action[1]);
  if (m->off_spin) {
    ra_msg_out_str (rep, "spin");
    ra_msg_out_map (rep, 3);
    ra_msg_out_str (rep, "offset");
    ra_msg_out_uint (rep, m->off_spin);
    ra_msg_out_str (rep, "request_bytes");
    ra_msg_out_uint (rep, RA_SPIN_REQ_BYTES);
    ra_msg_out_str (rep, "reply_bytes");
    ra_msg_out_uint (rep, RA_SPIN_REP_BYTES);
  }
}

ra_err_t ra__shm_request (ra__slot_t *slot, const ra_msg_in_t *req, int *j, ra_error_t *err)
{
  *j = -1;
  const msgpack_object *o = ra_map_get (req->root, "shm");
  if (!o)
    return RA_OK;
  if (!slot->shm)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1,
                         "field 'shm' names a shared-memory slot, but this session was made without "
                         "one (make with shm: true on a local server)");
  if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > 1)
    return ra_error_set (err, RA_ERR_BAD_REQUEST, -1, "field 'shm' must be 0 or 1, got %s",
                         o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? "a larger integer"
                                                                    : ra_obj_type_name (o));
  if (slot->shm->linked) {
    shm_unlink (slot->shm->name);
    slot->shm->linked = false;
  }
  *j = (int) o->via.u64;
  return RA_OK;
}

ra_tensor_t ra__shm_action (const ra__slot_t *slot, int j, int n, int k)
{
  int64_t shape[2] = { n, k };
  return ra_tensor_view (RA_DTYPE_I32, k == 1 ? 1 : 2, shape,
                         (char *) slot->shm->base + slot->shm->off_action[j]);
}

ra_err_t ra__shm_reply (const ra__slot_t *slot, ra_msg_out_t *rep, ra_error_t *err)
{
  const ra__shm_t *m = slot->shm;
  const char *base = m->base;
  ra_msg_out_str (rep, "shm");
  ra_msg_out_array (rep, (uint32_t) (2 * rep->nframes));
  for (int i = 0; i < rep->nframes; i++) {
    const char *p = rep->frames[i].data;
    size_t nb = rep->frames[i].nbytes;
    if (p < base || (size_t) (p - base) > m->bytes || nb > m->bytes - (size_t) (p - base))
      return ra_error_set (err, RA_ERR_INTERNAL, -1, "reply tensor %d lies outside the shared segment", i);
    ra_msg_out_uint (rep, (uint64_t) (p - base));
    ra_msg_out_uint (rep, nb);
  }
  rep->nframes = 0;
  return RA_OK;
}

int ra__shm_sweep (void)
{
  DIR *d = opendir ("/dev/shm");
  if (!d)
    return 0;
  int removed = 0;
  struct dirent *e;
  while ((e = readdir (d)) != NULL) {
    if (strncmp (e->d_name, S_PREFIX, sizeof S_PREFIX - 1) != 0)
      continue;
    char *end;
    long pid = strtol (e->d_name + sizeof S_PREFIX - 1, &end, 10);
    if (end == e->d_name + sizeof S_PREFIX - 1 || *end != '-' || pid <= 0)
      continue;
    /* Only a segment whose server is gone, and only one of ours: a live server's segments, or
       another user's, are none of this server's business. */
    if (kill ((pid_t) pid, 0) == 0 || errno != ESRCH)
      continue;
    struct stat st;
    if (fstatat (dirfd (d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_uid != geteuid ())
      continue;
    char name[300];
    snprintf (name, sizeof name, "/%s", e->d_name);
    if (shm_unlink (name) == 0)
      removed++;
  }
  closedir (d);
  return removed;
}
