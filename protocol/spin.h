/*  protocol/spin.h - the doorbell of a shared-memory session (docs/local.md section 4): the
    layout of its area in the segment and the atomic steps of each side.

    A session made with spin on a server started with --spin-us has, besides the blocks and action
    areas of docs/protocol.md section "Shared memory", a doorbell area: a header of sequence
    words, a request area the client writes a request's msgpack header into, and a reply area the
    server writes the reply's header into. A request travels without ZeroMQ when the server is
    polling the segment; otherwise (and whenever the client stops spinning without a reply) the
    client sends a "ring" request over ZeroMQ, which the server answers once that request has been
    answered in the segment. The no-lost-wake-up argument is in docs/local.md section 4.3.
    Owns nothing: the functions work on an area mapped by the caller. Each side of one area
    belongs to one thread (the client's thread, the server's loop).
    Also built as librecarena_spin.so for the Python client (ctypes), hence plain C types.      */
#ifndef RA_PROTOCOL_SPIN_H
#define RA_PROTOCOL_SPIN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The header, at the start of the doorbell area; each word on its own cache line so that the
   side that polls a word does not slow down the side that writes the other. */
typedef struct {
  _Alignas (64) _Atomic uint64_t req_seq;   /* client: the sequence number of the last request posted */
  _Atomic uint32_t req_len;                 /* client: its length in the request area */
  _Alignas (64) _Atomic uint64_t rep_seq;   /* server: the request whose reply is in the reply area */
  _Atomic uint32_t rep_len;                 /* server: that reply's length */
  _Alignas (64) _Atomic uint32_t polling;   /* server: 1 while it polls this area without sleeping */
} ra_spin_hdr_t;

/* Layout of the doorbell area: [header: 4 KiB][request area][reply area]. */
#define RA_SPIN_HDR_BYTES 4096u
#define RA_SPIN_REQ_BYTES 16384u
#define RA_SPIN_REP_BYTES 65536u
#define RA_SPIN_AREA_BYTES (RA_SPIN_HDR_BYTES + RA_SPIN_REQ_BYTES + RA_SPIN_REP_BYTES)
/* --spin-us and the clients' spin bound are at most this (a second of a busy core). */
#define RA_SPIN_MAX_US 1000000

/* Client: copies the request header (len <= RA_SPIN_REQ_BYTES) into the request area and
   publishes it as request seq (seq_cst). Returns whether the server is polling the area at that
   moment (seq_cst load after the store: see docs/local.md 4.3); when false, the caller must ring. */
bool ra_spin_post (void *area, const void *req, uint32_t len, uint64_t seq);
/* Client: waits up to spin_us microseconds for the reply to request seq (acquire). Returns its
   length (> 0) once it is in the reply area, 0 when the time ran out. */
uint32_t ra_spin_wait (void *area, uint64_t seq, int spin_us);
/* Client: the reply area's current reply: its length when it answers seq (acquire), else 0. */
uint32_t ra_spin_reply (void *area, uint64_t seq);
/* The request and reply areas of an area. */
static inline char *ra_spin_req_area (void *area) { return (char *) area + RA_SPIN_HDR_BYTES; }
static inline char *ra_spin_rep_area (void *area)
{
  return (char *) area + RA_SPIN_HDR_BYTES + RA_SPIN_REQ_BYTES;
}

/* Server: the request posted after request last, if any: copies it into buf (cap bytes) and
   returns its sequence number, or 0 when there is none. A copy torn by a client that posted
   again meanwhile (only after giving up on a request) is retried, at most RA_SPIN_TAKE_TRIES
   copies in all: a client that rewrites the area faster than it is copied gets *len =
   RA_SPIN_TORN, for the caller to refuse, rather than holding the server's thread in this loop.
   Otherwise *len is the length; a length above cap or RA_SPIN_REQ_BYTES is reported as is
   (nothing copied) for the caller to refuse. */
#define RA_SPIN_TAKE_TRIES 8
#define RA_SPIN_TORN UINT32_MAX
uint64_t ra_spin_take (void *area, uint64_t last, void *buf, uint32_t cap, uint32_t *len);
/* Server: the latest posted sequence number (seq_cst, for the recheck of docs/local.md 4.3). */
uint64_t ra_spin_posted (void *area);
/* Server: writes the reply (len <= RA_SPIN_REP_BYTES) and publishes it for request seq (release). */
void ra_spin_answer (void *area, uint64_t seq, const void *rep, uint32_t len);
/* Server: says whether it polls the area (seq_cst store). */
void ra_spin_set_polling (void *area, bool on);

#endif
