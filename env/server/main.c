/*  env/server/main.c - recarena-server: parses flags (and an optional key = value config file),
    binds, serves until SIGINT or SIGTERM. Runs with no arguments on tcp://127.0.0.1:5555.       */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/kv.h"
#include "env/core/reward.h"
#include "env/server/server.h"

static ra_server_t *s_server;

static void s_on_signal (int sig)
{
  (void) sig;
  if (s_server)
    ra_server_stop (s_server);
}

static void s_log (void *ud, int level, const char *msg)
{
  (void) ud;
  static const char *const names[] = { "error", "warn", "info", "debug" };
  fprintf (stderr, "recarena-server: %s: %s\n", names[level < 0 ? 0 : level > 3 ? 3 : level], msg);
}

static void s_usage (FILE *f)
{
  fprintf (f,
           "usage: recarena-server [options]\n"
           "  --bind ENDPOINT          listen on ENDPOINT (repeatable; default tcp://127.0.0.1:5555;\n"
           "                           ipc://PATH works)\n"
           "  --workers N              threads stepping big batches; 1 steps inline (default: CPUs)\n"
           "  --max-envs N             most envs per make (default 65536)\n"
           "  --async-min-envs N       batches this big are stepped on the workers while the\n"
           "                           server keeps answering; smaller ones inline (default 1024)\n"
           "  --max-total-envs N       most envs over all handles (default 262144)\n"
           "  --max-sessions N         most live handles (default 1024)\n"
           "  --idle-timeout SECONDS   reclaim handles idle this long (default 600)\n"
           "  --max-message-bytes N    largest request accepted (default 67108864)\n"
           "  --seed N                 default make seed (env i gets N + i); default: from the clock\n"
           "  --reward-plugin PATH     load a custom reward model (a shared library with the ABI of\n"
           "                           env/core/reward_plugin.h); clients select it with config\n"
           "                           reward = \"plugin:<name>\" (repeatable)\n"
           "  --log-level LEVEL        error, warn, info (default) or debug\n"
           "  --config FILE            read options from FILE: lines 'name = value' with the names\n"
           "                           above without dashes ('#' starts a comment)\n"
           "  --help                   this text\n");
}

typedef struct {
  ra_server_opts_t opts;
  const char *binds[RA_SERVER_MAX_BINDS];
  char bind_store[RA_SERVER_MAX_BINDS][256];
  int nbinds;
} s_cfg_t;

/* Applies one option by name (without dashes). Returns false with a message on stderr. */
static bool s_apply (s_cfg_t *c, const char *name, const char *v)
{
  long long x;
  ra_error_t err;
  if (!strcmp (name, "bind")) {
    if (c->nbinds >= RA_SERVER_MAX_BINDS) {
      fprintf (stderr, "recarena-server: at most %d --bind\n", RA_SERVER_MAX_BINDS);
      return false;
    }
    if (strlen (v) >= sizeof c->bind_store[0]) {
      fprintf (stderr, "recarena-server: --bind endpoint is %zu characters, expected fewer than "
               "%zu\n", strlen (v), sizeof c->bind_store[0]);
      return false;
    }
    snprintf (c->bind_store[c->nbinds], sizeof c->bind_store[0], "%s", v);
    c->binds[c->nbinds] = c->bind_store[c->nbinds];
    c->nbinds++;
    return true;
  }
  if (!strcmp (name, "reward-plugin")) {
    /* Loaded here, at startup, never on a client's request (docs/sims/shared.md section 3.2). */
    if (ra_reward_plugins_load (v, &err) != RA_OK) {
      fprintf (stderr, "recarena-server: --reward-plugin: %s\n", err.message);
      return false;
    }
    return true;
  }
  if (!strcmp (name, "log-level")) {
    static const char *const names[] = { "error", "warn", "info", "debug" };
    for (int i = 0; i < 4; i++)
      if (!strcmp (v, names[i])) {
        c->opts.log_level = i;
        return true;
      }
    fprintf (stderr, "recarena-server: --log-level is '%s', expected error, warn, info or debug\n", v);
    return false;
  }
  if (!strcmp (name, "idle-timeout")) {
    double d;
    if (ra_kv_parse_num ("--idle-timeout", v, 0, 1e9, &d, &err) != RA_OK || !(d > 0)) {
      fprintf (stderr, "recarena-server: --idle-timeout is '%.64s', expected seconds in (0, 1e9]\n", v);
      return false;
    }
    c->opts.idle_timeout_s = d;
    return true;
  }
  struct { const char *name; long long lo, hi; } ints[] = {
    { "workers", 1, 64 }, { "max-envs", 1, 1 << 24 }, { "max-sessions", 1, 65535 },
    { "max-message-bytes", 1024, 1ll << 40 }, { "seed", 0, 9223372036854775807ll },
    { "max-total-envs", 1, 1 << 26 }, { "async-min-envs", 1, 1 << 26 },
  };
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    if (strcmp (name, ints[i].name))
      continue;
    char what[64];
    snprintf (what, sizeof what, "--%s", name);
    if (ra_kv_parse_int (what, v, ints[i].lo, ints[i].hi, &x, &err) != RA_OK) {
      fprintf (stderr, "recarena-server: %s\n", err.message);
      return false;
    }
    switch (i) {
    case 0: c->opts.workers = (int) x; break;
    case 1: c->opts.max_envs = (int) x; break;
    case 2: c->opts.max_sessions = (int) x; break;
    case 3: c->opts.max_message_bytes = x; break;
    case 4: c->opts.default_seed = (uint64_t) x; c->opts.has_default_seed = true; break;
    case 5: c->opts.max_total_envs = (int) x; break;
    default: c->opts.async_min_envs = (int) x; break;
    }
    return true;
  }
  fprintf (stderr, "recarena-server: unknown option '%.64s' (see --help)\n", name);
  return false;
}

static bool s_read_config (s_cfg_t *c, const char *path)
{
  FILE *f = fopen (path, "r");
  if (!f) {
    fprintf (stderr, "recarena-server: cannot open config %s: %s\n", path, strerror (errno));
    return false;
  }
  char line[1024];
  int lineno = 0;
  bool ok = true;
  while (ok && fgets (line, sizeof line, f)) {
    lineno++;
    size_t len = strlen (line);
    if (len == sizeof line - 1 && line[len - 1] != '\n' && !feof (f)) {
      fprintf (stderr, "recarena-server: %s:%d: line longer than %zu characters\n", path, lineno,
               sizeof line - 2);
      ok = false;
      break;
    }
    char *hash = strchr (line, '#');
    if (hash)
      *hash = '\0';
    line[strcspn (line, "\r\n")] = '\0';
    if (!line[strspn (line, " \t\r\n")])
      continue;
    char *name, *value;
    ra_error_t err;
    if (ra_kv_split (line, &name, &value, &err) != RA_OK) {
      fprintf (stderr, "recarena-server: %s:%d: expected 'name = value': %s\n", path, lineno,
               err.message);
      ok = false;
      break;
    }
    for (char *p = name; *p; p++)
      if (*p == '_')
        *p = '-';
    if (!s_apply (c, name, value)) {
      fprintf (stderr, "recarena-server: in %s:%d\n", path, lineno);
      ok = false;
    }
  }
  fclose (f);
  return ok;
}

int main (int argc, char **argv)
{
  static s_cfg_t c;
  ra_server_opts_default (&c.opts);
  c.opts.log = s_log;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp (a, "--help") || !strcmp (a, "-h")) {
      s_usage (stdout);
      return 0;
    }
    if (strncmp (a, "--", 2) != 0) {
      fprintf (stderr, "recarena-server: unexpected argument '%s' (see --help)\n", a);
      return 2;
    }
    const char *name = a + 2, *eq = strchr (name, '=');
    char buf[64];
    const char *value;
    if (eq) {
      snprintf (buf, sizeof buf, "%.*s", (int) (eq - name), name);
      name = buf;
      value = eq + 1;
    } else {
      if (i + 1 >= argc) {
        fprintf (stderr, "recarena-server: %s needs a value\n", a);
        return 2;
      }
      value = argv[++i];
    }
    bool ok = !strcmp (name, "config") ? s_read_config (&c, value) : s_apply (&c, name, value);
    if (!ok) {
      ra_reward_plugins_unload_all ();
      return 2;
    }
  }
  if (c.nbinds == 0)
    c.binds[c.nbinds++] = "tcp://127.0.0.1:5555";

  ra_error_t err;
  ra_server_t *srv;
  if (ra_server_new (&c.opts, &srv, &err) != RA_OK) {
    fprintf (stderr, "recarena-server: %s\n", err.message);
    return 1;
  }
  for (int i = 0; i < c.nbinds; i++)
    if (ra_server_bind (srv, c.binds[i], &err) != RA_OK) {
      fprintf (stderr, "recarena-server: %s\n", err.message);
      ra_server_destroy (&srv);
      return 1;
    }
  s_server = srv;
  struct sigaction sa;
  memset (&sa, 0, sizeof sa);
  sa.sa_handler = s_on_signal;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  signal (SIGPIPE, SIG_IGN);
  for (int i = 0; i < c.nbinds; i++)
    printf ("recarena-server: listening on %s\n", ra_server_endpoint (srv, i));
  for (int i = 0; i < ra_reward_plugins_count (); i++)
    printf ("recarena-server: reward plugin '%s' loaded\n", ra_reward_plugins_get (i)->name);
  fflush (stdout);
  ra_err_t rc = ra_server_run (srv);
  s_server = NULL;
  ra_server_destroy (&srv);
  ra_reward_plugins_unload_all ();
  return rc == RA_OK ? 0 : 1;
}
