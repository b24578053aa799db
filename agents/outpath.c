/*  agents/outpath.c - see outpath.h. */
#include "agents/outpath.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

ra_err_t ra_outpath_check (const char *flag, const char *path, ra_error_t *err)
{
  char dir[4096];
  size_t n = strlen (path);
  if (n == 0 || n >= sizeof dir)
    return ra_error_set (err, RA_ERR_IO, -1, "%s '%.200s': expected a file path of 1..%zu "
                         "characters", flag, path, sizeof dir - 1);
  struct stat st;
  if (stat (path, &st) == 0) {
    if (S_ISDIR (st.st_mode))
      return ra_error_set (err, RA_ERR_IO, -1, "%s '%.200s' is a directory, expected a file path",
                           flag, path);
    if (access (path, W_OK) != 0)
      return ra_error_set (err, RA_ERR_IO, -1, "%s '%.200s' cannot be written: %s", flag, path,
                           strerror (errno));
    return RA_OK;
  }
  const char *slash = strrchr (path, '/');
  if (!slash)
    strcpy (dir, ".");
  else if (slash == path)
    strcpy (dir, "/");
  else
    snprintf (dir, sizeof dir, "%.*s", (int) (slash - path), path);
  if (stat (dir, &st) != 0 || !S_ISDIR (st.st_mode))
    return ra_error_set (err, RA_ERR_IO, -1, "%s '%.200s': directory '%.200s' does not exist", flag,
                         path, dir);
  if (access (dir, W_OK | X_OK) != 0)
    return ra_error_set (err, RA_ERR_IO, -1, "%s '%.200s': directory '%.200s' is not writable: %s",
                         flag, path, dir, strerror (errno));
  return RA_OK;
}
