/*  agents/outpath.h - checks, before a long run, that a file it writes at the end can be
    written: a missing directory or a path that names a directory then fails in the first second
    instead of losing the run's result after hours. Nothing is created or changed.          */
#ifndef RA_AGENTS_OUTPATH_H
#define RA_AGENTS_OUTPATH_H

#include "common/err.h"

/* RA_OK when path's directory exists and is writable and path is not a directory (nor an existing
   file this process cannot write). RA_ERR_IO otherwise, the message starting with flag and the
   path and saying why. An access() check: a later write may still fail (a full disk). */
ra_err_t ra_outpath_check (const char *flag, const char *path, ra_error_t *err);

#endif
