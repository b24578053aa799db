/*  tests/protocol/golden_msgs.h - the messages behind tests/data/golden: one builder per file,
    shared by the generator (gen_golden.c) and the tests that check the committed bytes.
    Builders use only static data (and spaces made once), so built frames stay valid until
    ra_golden_fini. Single-threaded.                                                              */
#ifndef RA_TESTS_GOLDEN_MSGS_H
#define RA_TESTS_GOLDEN_MSGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/msg.h"

typedef struct {
  const char *name;           /* file stem: tests/data/golden/<name>.frames and .json */
  bool is_request;
  void (*build) (ra_msg_out_t *m);
} ra_golden_t;

extern const ra_golden_t ra_golden[];
extern const int ra_golden_count;
/* Frees the spaces the builders keep. */
void ra_golden_fini (void);

/* On-disk form (tests/data/golden/README.md): u32 LE frame count, then per frame u32 LE length and
   the bytes. Returns a malloc'd buffer (caller frees) or NULL. */
unsigned char *ra_golden_serialize (const ra_msg_out_t *m, size_t *len);
/* Parses that form in place: fills up to max frames as pointers into buf. Returns the frame count,
   or -1 when the bytes are not in that form. */
int ra_golden_parse (const unsigned char *buf, size_t len, const void **frames, size_t *sizes, int max);

#endif
