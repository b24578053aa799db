/*  protocol/spin.c - the doorbell of a shared-memory session (see spin.h; docs/local.md 4).

    Ordering: the payload (request or reply bytes and length) is written with plain or relaxed
    stores before its sequence word, and read after an acquire load of that word, so a side that
    sees the word sees the bytes. The client's store of req_seq and the server's store of polling
    are seq_cst, and so are the loads each makes of the other's word afterwards: of two such
    stores one comes first in the single seq_cst order, so either the client sees polling == 1
    (and the server's later recheck sees the request) or the server's recheck after clearing
    polling sees the request, or the client sees polling == 0 and rings. Never neither.       */
#include "protocol/spin.h"

#include <sched.h>
#include <string.h>
#include <time.h>

_Static_assert (sizeof (ra_spin_hdr_t) <= RA_SPIN_HDR_BYTES, "the header fits its page");

#define S_PAUSE_SPINS 4096u

static ra_spin_hdr_t *s_hdr (void *area) { return area; }

static int64_t s_now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Tells the core it is in a spin loop (frees the pipeline for the sibling hyperthread). */
static inline void s_relax (void)
{
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause ();
#elif defined(__aarch64__)
  __asm__ __volatile__ ("yield");
#endif
}

bool ra_spin_post (void *area, const void *req, uint32_t len, uint64_t seq)
{
  ra_spin_hdr_t *h = s_hdr (area);
  memcpy (ra_spin_req_area (area), req, len);
  atomic_store_explicit (&h->req_len, len, memory_order_relaxed);
  atomic_store_explicit (&h->req_seq, seq, memory_order_seq_cst);
  return atomic_load_explicit (&h->polling, memory_order_seq_cst) != 0;
}

uint32_t ra_spin_reply (void *area, uint64_t seq)
{
  ra_spin_hdr_t *h = s_hdr (area);
  if (atomic_load_explicit (&h->rep_seq, memory_order_acquire) != seq)
    return 0;
  return atomic_load_explicit (&h->rep_len, memory_order_relaxed);
}

uint32_t ra_spin_wait (void *area, uint64_t seq, int spin_us)
{
  if (spin_us > RA_SPIN_MAX_US)
    spin_us = RA_SPIN_MAX_US;
  int64_t until = s_now_ns () + (int64_t) spin_us * 1000;
  for (unsigned i = 0;; i++) {
    uint32_t len = ra_spin_reply (area, seq);
    if (len)
      return len;
    /* The clock costs ~20 ns: read it every 64 pause-polls, and at every poll once they yield
       (a yield may give the core away for a whole time slice). */
    if ((i >= S_PAUSE_SPINS || (i & 63) == 63) && s_now_ns () >= until)
      return 0;
    /* Pause-spin first (the reply of a small step comes within microseconds); after that, yield
       each time, so that on a machine with more runnable threads than cores the server (or
       whoever) gets the core this spin would hold. */
    if (i < S_PAUSE_SPINS)
      s_relax ();
    else
      sched_yield ();
  }
}

uint64_t ra_spin_take (void *area, uint64_t last, void *buf, uint32_t cap, uint32_t *len)
{
  ra_spin_hdr_t *h = s_hdr (area);
  for (int tries = 1;; tries++) {
    uint64_t seq = atomic_load_explicit (&h->req_seq, memory_order_acquire);
    if (seq == last)
      return 0;
    uint32_t n = atomic_load_explicit (&h->req_len, memory_order_relaxed);
    *len = n;
    if (n > cap || n > RA_SPIN_REQ_BYTES)
      return seq;
    memcpy (buf, ra_spin_req_area (area), n);
    /* Seqlock check: if the client posted again while we copied, the copy may be torn. A client
       posts again only after giving up on a request (a deadline later), so one retry is the
       most it needs; a bound keeps one that never stops from pinning the server's thread. */
    atomic_thread_fence (memory_order_acquire);
    if (atomic_load_explicit (&h->req_seq, memory_order_relaxed) == seq)
      return seq;
    if (tries == RA_SPIN_TAKE_TRIES) {
      *len = RA_SPIN_TORN;
      return seq;
    }
  }
}

uint64_t ra_spin_posted (void *area)
{
  return atomic_load_explicit (&s_hdr (area)->req_seq, memory_order_seq_cst);
}

void ra_spin_answer (void *area, uint64_t seq, const void *rep, uint32_t len)
{
  ra_spin_hdr_t *h = s_hdr (area);
  memcpy (ra_spin_rep_area (area), rep, len);
  atomic_store_explicit (&h->rep_len, len, memory_order_relaxed);
  atomic_store_explicit (&h->rep_seq, seq, memory_order_release);
}

void ra_spin_set_polling (void *area, bool on)
{
  atomic_store_explicit (&s_hdr (area)->polling, on ? 1u : 0u, memory_order_seq_cst);
}
