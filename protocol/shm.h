/*  protocol/shm.h - the client's side of the shared-memory data plane (docs/protocol.md section
    "Shared memory").

    A session made with shm on a local server comes with a segment the server created; the client
    maps it here, writes each step's actions into one of its two action areas, and reads the
    reply's tensors from the offsets the reply's header gives instead of from frames. Slots
    alternate, so the results of one step stay intact while the next is computed.
    With a doorbell (spin.h) a request itself may travel through the segment too.
    Owns: the mapping and a descriptor of the segment (with its shared lock). Belongs to the thread of its client.                                      */
#ifndef RA_PROTOCOL_SHM_H
#define RA_PROTOCOL_SHM_H

#include <stdbool.h>

#include "common/err.h"
#include "protocol/msg.h"

typedef struct ra_shm_map ra_shm_map_t;

/* True for endpoints that reach only this machine: ipc:// and tcp to a loopback address. */
bool ra_shm_endpoint_local (const char *endpoint);
/* Maps the segment that a make reply's "shm" value describes ({name, bytes, action: [o0, o1]})
   for a session of n envs whose actions are k int32 each, and holds flock(LOCK_SH) on it until
   ra_shm_map_close (the make said shm_lock: true: the server closes the session once no process
   holds that lock). RA_ERR_BAD_REQUEST for a malformed
   description, RA_ERR_TRANSPORT when the segment cannot be opened or is smaller than described. */
ra_err_t ra_shm_map_open (const msgpack_object *desc, int n, int k, ra_shm_map_t **out,
                          ra_error_t *err);
/* Accepts NULL; NULLs the pointer. Tensors resolved into the segment die with it. */
void ra_shm_map_close (ra_shm_map_t **map_p);
/* The slot the next request uses (alternates 0, 1, 0, ...). */
int ra_shm_map_next (ra_shm_map_t *m);
/* Writes action into slot j's action area as int32 and returns true when it is an integer tensor
   of shape (n,) (k == 1) or (n, k) with every value in int32 range; false otherwise (send it as
   a tensor then: the server answers it as over frames, errors included). */
bool ra_shm_map_put_action (ra_shm_map_t *m, int j, const ra_tensor_t *action);
/* The session's doorbell area (protocol/spin.h, docs/local.md section 4) when the make reply
   granted one ("spin": {offset, request_bytes, reply_bytes} with this build's sizes), or NULL. */
void *ra_shm_map_spin (const ra_shm_map_t *m);
/* The sequence number of the next request posted in the doorbell (1, 2, ...). */
uint64_t ra_shm_map_next_seq (ra_shm_map_t *m);
/* Points reply's frames at the segment per its "shm": [offset, bytes, ...] entry, so that its
   tensor references resolve as usual. RA_ERR_BAD_REQUEST when the entry is missing, malformed or
   points outside the segment. The frames stay valid until the server writes that slot again
   (two requests later). */
ra_err_t ra_shm_map_resolve (const ra_shm_map_t *m, ra_msg_in_t *reply, ra_error_t *err);

#endif
