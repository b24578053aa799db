/*  tests/protocol/test_spin.c - the server's side of a doorbell (protocol/spin.c) against a client
    that never stops rewriting its request. The ordering and lost-wake-up cases run against a real
    server in tests/server/test_shm.c (suite spin).

    A client rewriting req_seq in a tight loop from another thread tears the server's copies only
    while both threads run at once, which no scheduler promises; here the rewrites happen inside
    the copy itself: the request area's first and last pages are never readable together, and each
    fault on one of them makes it readable, the other not, and bumps req_seq, as such a client
    would between the two reads. So every copy is torn, deterministically.                      */
#define _DEFAULT_SOURCE   /* MAP_ANONYMOUS, siginfo_t */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "protocol/spin.h"

static char *s_area, *s_first, *s_last;
static volatile sig_atomic_t s_faults;

/* A page of the request area was read while not readable: swap which of the two pages is. Past
   1000 faults both stay readable, so a take without a bound ends too (and the test fails). */
static void s_on_segv (int sig, siginfo_t *si, void *uc)
{
  (void) uc;
  char *p = si->si_addr;
  bool first = p >= s_first && p < s_first + 4096, last = p >= s_last && p < s_last + 4096;
  if (!first && !last) {   /* a real crash: let it happen */
    signal (sig, SIG_DFL);
    return;
  }
  s_faults++;
  mprotect (first ? s_first : s_last, 4096, PROT_READ | PROT_WRITE);
  if (s_faults < 1000)
    mprotect (first ? s_last : s_first, 4096, PROT_NONE);
  ra_spin_hdr_t *h = (ra_spin_hdr_t *) s_area;
  atomic_fetch_add (&h->req_seq, 1);
}

Test (spin, take_gives_up_on_a_request_rewritten_under_every_copy)
{
  if (sysconf (_SC_PAGESIZE) != 4096)
    cr_skip_test ("the fault trick needs 4 KiB pages");
  s_area = mmap (NULL, RA_SPIN_AREA_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  cr_assert (s_area != MAP_FAILED);
  static char req[RA_SPIN_REQ_BYTES], buf[RA_SPIN_REQ_BYTES];
  memset (req, 'x', sizeof req);
  ra_spin_post (s_area, req, sizeof req, 1);
  s_first = ra_spin_req_area (s_area);
  s_last = s_first + RA_SPIN_REQ_BYTES - 4096;
  struct sigaction sa, old;
  memset (&sa, 0, sizeof sa);
  sa.sa_sigaction = s_on_segv;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset (&sa.sa_mask);
  cr_assert_eq (sigaction (SIGSEGV, &sa, &old), 0);
  cr_assert_eq (mprotect (s_first, 4096, PROT_NONE), 0);

  uint32_t len = 0;
  uint64_t seq = ra_spin_take (s_area, 0, buf, sizeof buf, &len);
  int faults = s_faults;
  mprotect (s_first, RA_SPIN_REQ_BYTES, PROT_READ | PROT_WRITE);
  sigaction (SIGSEGV, &old, NULL);
  /* Two faults a copy: RA_SPIN_TAKE_TRIES copies, then the request is given up as torn. */
  cr_assert_leq (faults, 2 * RA_SPIN_TAKE_TRIES, "%d faults: the take kept copying", faults);
  cr_assert_eq (len, RA_SPIN_TORN, "length %u", len);
  cr_assert_gt (seq, 1);

  /* A request that holds still is taken as before. */
  ra_spin_post (s_area, "abc", 3, seq + 1);
  cr_assert_eq (ra_spin_take (s_area, seq, buf, sizeof buf, &len), seq + 1);
  cr_assert_eq (len, 3);
  cr_assert_eq (memcmp (buf, "abc", 3), 0);
  cr_assert_eq (ra_spin_take (s_area, seq + 1, buf, sizeof buf, &len), 0);
  munmap (s_area, RA_SPIN_AREA_BYTES);
}
