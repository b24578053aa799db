/*  common/err.h - the one table of error codes and the error type every module returns
    (docs/architecture.md section 3).

    Codes and their wire strings are stable: never renumber, rename or reuse one. Codes up to
    RA_ERR_INTERNAL travel on the wire; the ones after it are local to a process (a client's deadline,
    a transport failure) and are never sent.
    Pure data and formatting; thread-safe.                                                          */
#ifndef RA_COMMON_ERR_H
#define RA_COMMON_ERR_H

#include <stdarg.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/*  X(enum name, number, wire string, human text) */
#define RA_ERR_LIST(X)                                                                        \
  X(RA_OK,                 0, "OK",             "success")                                   \
  X(RA_ERR_BAD_REQUEST,    1, "BAD_REQUEST",    "malformed request")                         \
  X(RA_ERR_UNKNOWN_OP,     2, "UNKNOWN_OP",     "unknown operation")                         \
  X(RA_ERR_VERSION,        3, "VERSION",        "protocol version not supported")            \
  X(RA_ERR_UNKNOWN_ENV,    4, "UNKNOWN_ENV",    "unknown environment")                       \
  X(RA_ERR_BAD_CONFIG,     5, "BAD_CONFIG",     "invalid configuration")                     \
  X(RA_ERR_BAD_ACTION,     6, "BAD_ACTION",     "invalid action")                            \
  X(RA_ERR_NO_SUCH_HANDLE, 7, "NO_SUCH_HANDLE", "no such handle")                            \
  X(RA_ERR_NEEDS_RESET,    8, "NEEDS_RESET",    "environment needs a reset")                 \
  X(RA_ERR_LIMIT,          9, "LIMIT",          "limit exceeded")                            \
  X(RA_ERR_INTERNAL,      10, "INTERNAL",       "internal error")                            \
  X(RA_ERR_TIMEOUT,       11, "TIMEOUT",        "no reply within the deadline")              \
  X(RA_ERR_TRANSPORT,     12, "TRANSPORT",      "transport failure")                         \
  X(RA_ERR_NOMEM,         13, "NOMEM",          "out of memory")                             \
  X(RA_ERR_IO,            14, "IO",             "file or library could not be loaded")

typedef enum {
#define RA__ERR_ENUM(name, num, wire, text) name = num,
  RA_ERR_LIST(RA__ERR_ENUM)
#undef RA__ERR_ENUM
  RA_ERR_COUNT
} ra_err_t;

/* Highest code that may appear on the wire. */
#define RA_ERR_LAST_WIRE RA_ERR_INTERNAL

/* A failure with its detail: what was wrong and what was expected. env_index is -1 unless the
   failure concerns one env of a batch. */
#define RA_ERROR_MESSAGE_MAX 256
typedef struct {
  ra_err_t code;
  int env_index;
  char message[RA_ERROR_MESSAGE_MAX];
} ra_error_t;

/* Stable wire string ("BAD_REQUEST"); "INTERNAL" for out-of-range values. */
const char *ra_err_code (ra_err_t err);
/* Short human text ("malformed request"). */
const char *ra_err_text (ra_err_t err);
/* Looks up a wire string of len bytes (not NUL-terminated); returns false if unknown. */
bool ra_err_from_code (const char *code, int len, ra_err_t *out);

/* Fills *e (which may be NULL: then nothing happens) and returns code, so callers can write
   `return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "key '%s' ...", key);`. The message is
   truncated to fit. */
ra_err_t ra_error_set (ra_error_t *e, ra_err_t code, int env_index, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));
/* Resets *e to RA_OK with an empty message. */
void ra_error_clear (ra_error_t *e);

#ifdef __cplusplus
}
#endif

#endif
