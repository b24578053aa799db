/*  env/server/main.c - recarena-server: parses flags (and an optional key = value config file),
    binds, serves until SIGINT or SIGTERM. Runs with no arguments on tcp://127.0.0.1:5555.       */
#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <zmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/kv.h"
#include "env/core/reward.h"
#include "env/server/server.h"
#include "protocol/spin.h"

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
           "  --idle-timeout SECONDS   reclaim handles idle this long, at least 0.001 (default 600)\n"
           "  --max-message-bytes N    largest request accepted, all frames together (default 67108864)\n"
           "  --max-queued-bytes N     bytes of one client key's requests that may wait for its busy\n"
           "                           sessions (big steps running); more get LIMIT at once\n"
           "                           (default: 4 x --max-message-bytes)\n"
           "  --max-session-bytes N    estimated bytes one session may hold; bigger makes and\n"
           "                           set_tasks get LIMIT (default: a quarter of physical memory)\n"
           "  --max-total-bytes N      the same over all sessions (default: half of physical memory)\n"
           "  --max-sessions-per-key N, --max-envs-per-key N, --max-bytes-per-key N\n"
           "                           with CURVE, most live handles, envs and estimated bytes the\n"
           "                           sessions of one client key may hold together, so one key\n"
           "                           cannot starve the others (default: the server-wide limit\n"
           "                           divided by the number of allowed keys, at least a quarter\n"
           "                           of it)\n"
           "  --async-min-bytes N      steps writing this many output bytes run on the workers\n"
           "                           while the server keeps answering (default 1048576)\n"
           "  --rcv-hwm N              complete requests queued per client before the server stops\n"
           "                           reading its connection (default 64)\n"
           "  --drain-ms N             on SIGTERM, how long replies in flight may take to leave\n"
           "                           (default 5000)\n"
           "  --spin-us N              shared-memory sessions whose clients ask for it (spin) skip\n"
           "                           ZeroMQ while both sides are active: after each such request\n"
           "                           the server polls their segments for N microseconds instead of\n"
           "                           sleeping, which keeps one core busy meanwhile (0-1000000;\n"
           "                           default 0: off; docs/local.md section 4)\n"
           "  --curve-secret FILE      encrypt and authenticate with CURVE: the server key pair file\n"
           "                           written by --gen-keys\n"
           "  --allow-keys DIR         with --curve-secret: the client public keys (*.pub files)\n"
           "                           that may connect; sessions belong to the key that made them\n"
           "  --admin-key FILE         this client public key sees every session and the server's\n"
           "                           counters in stats (other keys: only their own)\n"
           "  --gen-keys PREFIX        write a new key pair to PREFIX.key (secret, mode 0600) and\n"
           "                           PREFIX.pub, then exit\n"
           "  --seed N                 default make seed (env i gets N + i); default: from the clock\n"
           "  --reward-plugin PATH     load a custom reward model (a shared library with the ABI of\n"
           "                           env/core/reward_plugin.h); clients select it with config\n"
           "                           reward = \"plugin:<name>\" (repeatable)\n"
           "  --log-level LEVEL        error, warn, info (default) or debug\n"
           "  --config FILE            read options from FILE: lines 'name = value' with the names\n"
           "                           above without the leading dashes, '_' or '-' inside them\n"
           "                           ('#' starts a comment)\n"
           "  --help                   this text\n"
           "A flag's value may also follow '=' (--workers=4), except --gen-keys'.\n");
}

#define S_MAX_KEYS 1024

typedef struct {
  ra_server_opts_t opts;
  char allow_store[S_MAX_KEYS][41];
  bool allow_given;
  const char *allow[S_MAX_KEYS];
  const char *binds[RA_SERVER_MAX_BINDS];
  char bind_store[RA_SERVER_MAX_BINDS][256];
  int nbinds;
} s_cfg_t;

/* One line of f into line (at most cap - 1 bytes, its '\n' kept), NUL-terminated; returns the
   bytes read, 0 at the end of the file. fgets cannot say how many bytes it read: with a NUL byte
   in the line strlen stops early, and in a last line without a newline nothing tells the two
   apart. */
static size_t s_read_line (FILE *f, char *line, size_t cap)
{
  size_t n = 0;
  int ch = 0;
  while (n + 1 < cap && ch != '\n' && (ch = getc (f)) != EOF)
    line[n++] = (char) ch;
  line[n] = '\0';
  return n;
}

/* Reads line lineno of path (s_read_line) and refuses it, saying so with path:lineno on stderr,
   when it is longer than cap - 2 characters (the rest would be read as a line of its own: a key
   hidden in a comment) or holds a NUL byte (what follows it would be dropped unseen). Returns the
   bytes read, 0 at the end of the file, -1 when refused. Used by the key and config readers. */
static long s_next_line (FILE *f, const char *path, int lineno, char *line, size_t cap)
{
  size_t len = s_read_line (f, line, cap);
  if (len == cap - 1 && line[len - 1] != '\n' && !feof (f)) {
    fprintf (stderr, "recarena-server: %s:%d: line longer than %zu characters\n", path, lineno,
             cap - 2);
    return -1;
  }
  if (strlen (line) != len) {
    fprintf (stderr, "recarena-server: %s:%d: a NUL byte in the line; expected a text file\n",
             path, lineno);
    return -1;
  }
  return (long) len;
}

/* Reads the "name = VALUE" line of a key file into out (40 Z85 characters that decode). */
static bool s_read_key (const char *path, const char *name, char out[41])
{
  FILE *f = fopen (path, "r");
  if (!f) {
    fprintf (stderr, "recarena-server: cannot open key file %s: %s\n", path, strerror (errno));
    return false;
  }
  char line[256];
  bool ok = false;
  long len;
  for (int lineno = 1; !ok && (len = s_next_line (f, path, lineno, line, sizeof line)) != 0; lineno++) {
    char *key, *value;
    ra_error_t err;
    if (len < 0) {
      fclose (f);
      return false;
    }
    line[strcspn (line, "\r\n")] = '\0';
    if (line[0] == '#' || ra_kv_split (line, &key, &value, &err) != RA_OK || strcmp (key, name) != 0
        || strlen (value) != 40)
      continue;
    uint8_t bin[32];
    memcpy (out, value, 41);
    ok = zmq_z85_decode (bin, out) != NULL;
    memset (bin, 0, sizeof bin);
  }
  /* A directory opens and reads as nothing: say so, not that it lacks the line. */
  bool unreadable = !ok && ferror (f);
  int e = errno;
  fclose (f);
  if (unreadable)
    fprintf (stderr, "recarena-server: cannot read key file %s: %s\n", path, strerror (e));
  else if (!ok)
    fprintf (stderr, "recarena-server: %s has no '%s = <40 Z85 characters>' line\n", path, name);
  return ok;
}

/* Writes a new key pair to prefix.key (secret, 0600) and prefix.pub. Returns the exit status:
   2 for a prefix it cannot write (a bad value, docs/protocol.md "Server command line"), 1 when
   libzmq cannot make a pair. */
static int s_gen_keys (const char *prefix)
{
  char pub[41], sec[41], path[1024];
  size_t len = strlen (prefix);
  /* "" or "dir/" would write the hidden files .key and .pub, in the working directory or dir. */
  if (len == 0 || prefix[len - 1] == '/') {
    fprintf (stderr, "recarena-server: --gen-keys PREFIX is '%.64s', expected a file name prefix "
             "such as 'server' (writes server.key and server.pub)\n", prefix);
    return 2;
  }
  if (len + 5 > sizeof path) {
    fprintf (stderr, "recarena-server: --gen-keys PREFIX is %zu characters, expected fewer than "
             "%zu\n", len, sizeof path - 4);
    return 2;
  }
  if (zmq_curve_keypair (pub, sec) != 0) {
    fprintf (stderr, "recarena-server: cannot make a key pair: %s\n", zmq_strerror (zmq_errno ()));
    return 1;
  }
  snprintf (path, sizeof path, "%s.key", prefix);
  int fd = open (path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  FILE *f = fd >= 0 ? fdopen (fd, "w") : NULL;
  if (!f) {
    fprintf (stderr, "recarena-server: --gen-keys: cannot create %s (it must not exist): %s\n", path,
             strerror (errno));
    return 2;
  }
  fprintf (f, "# recarena CURVE key pair: keep this file secret\npublic-key = %s\nsecret-key = %s\n", pub, sec);
  fclose (f);
  memset (sec, 0, sizeof sec);
  snprintf (path, sizeof path, "%s.pub", prefix);
  f = fopen (path, "w");
  if (!f) {
    fprintf (stderr, "recarena-server: --gen-keys: cannot create %s: %s\n", path, strerror (errno));
    return 2;
  }
  fprintf (f, "# recarena CURVE public key\npublic-key = %s\n", pub);
  fclose (f);
  printf ("recarena-server: wrote %s.key (secret) and %s.pub (public key %s)\n", prefix, prefix, pub);
  return 0;
}

/* Reads every file of dir whose name ends in .pub into the allowed keys. */
static bool s_read_allow_dir (s_cfg_t *c, const char *dir)
{
  c->allow_given = true;
  DIR *d = opendir (dir);
  if (!d) {
    fprintf (stderr, "recarena-server: cannot open --allow-keys %s: %s\n", dir, strerror (errno));
    return false;
  }
  struct dirent *e;
  bool ok = true;
  while (ok && (e = readdir (d))) {
    size_t n = strlen (e->d_name);
    if (n < 5 || strcmp (e->d_name + n - 4, ".pub") != 0)
      continue;
    if (c->opts.n_allow_keys >= S_MAX_KEYS) {
      fprintf (stderr, "recarena-server: --allow-keys: at most %d keys\n", S_MAX_KEYS);
      ok = false;
      break;
    }
    char path[2048];
    snprintf (path, sizeof path, "%s/%s", dir, e->d_name);
    int i = c->opts.n_allow_keys;
    if ((ok = s_read_key (path, "public-key", c->allow_store[i]))) {
      c->allow[i] = c->allow_store[i];
      c->opts.n_allow_keys++;
    }
  }
  closedir (d);
  c->opts.allow_keys = c->allow;
  return ok;
}

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
  if (!strcmp (name, "curve-secret"))
    return s_read_key (v, "secret-key", c->opts.curve_secret);
  if (!strcmp (name, "admin-key"))
    return s_read_key (v, "public-key", c->opts.admin_key);
  if (!strcmp (name, "allow-keys"))
    return s_read_allow_dir (c, v);
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
    /* At least a millisecond: the idle sweep runs every min(timeout / 4, 5 s) but not more often
       than every millisecond, and a timeout below the time between two requests expires every
       session before its next request (1e-300 was accepted). */
    if (ra_kv_parse_num ("--idle-timeout", v, 0.001, 1e9, &d, &err) != RA_OK) {
      fprintf (stderr, "recarena-server: --idle-timeout is '%.64s', expected seconds in [0.001, 1e9]\n", v);
      return false;
    }
    c->opts.idle_timeout_s = d;
    return true;
  }
  struct { const char *name; long long lo, hi; } ints[] = {
    { "workers", 1, 64 }, { "max-envs", 1, 1 << 24 }, { "max-sessions", 1, 65535 },
    { "max-message-bytes", 1024, 1ll << 40 }, { "seed", 0, 9223372036854775807ll },
    { "max-total-envs", 1, 1 << 26 }, { "async-min-envs", 1, 1 << 26 },
    { "max-session-bytes", 1 << 20, 1ll << 50 }, { "max-total-bytes", 1 << 20, 1ll << 50 },
    { "async-min-bytes", 1, 1ll << 40 }, { "rcv-hwm", 1, 1 << 20 }, { "drain-ms", 0, 600000 },
    { "spin-us", 0, RA_SPIN_MAX_US }, { "max-sessions-per-key", 1, 65535 },
    { "max-envs-per-key", 1, 1 << 26 }, { "max-bytes-per-key", 1 << 20, 1ll << 50 },
    { "max-queued-bytes", 1024, 1ll << 50 },
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
    case 6: c->opts.async_min_envs = (int) x; break;
    case 7: c->opts.max_session_bytes = x; break;
    case 8: c->opts.max_total_bytes = x; break;
    case 9: c->opts.async_min_bytes = x; break;
    case 10: c->opts.rcv_hwm = (int) x; break;
    case 11: c->opts.drain_linger_ms = (int) x; break;
    case 12: c->opts.spin_us = (int) x; break;
    case 13: c->opts.max_sessions_per_key = (int) x; break;
    case 14: c->opts.max_envs_per_key = (int) x; break;
    case 15: c->opts.max_bytes_per_key = x; break;
    default: c->opts.max_queued_bytes = x; break;
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
  long len;
  while (ok && (len = s_next_line (f, path, lineno + 1, line, sizeof line)) != 0) {
    lineno++;
    if (len < 0) {
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
  if (ok && ferror (f)) { /* a directory opens and reads as nothing: not an empty config */
    fprintf (stderr, "recarena-server: cannot read config %s: %s\n", path, strerror (errno));
    ok = false;
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
    if (!strcmp (a, "--gen-keys")) {
      if (i + 1 >= argc) {
        fprintf (stderr, "recarena-server: --gen-keys needs a PREFIX\n");
        return 2;
      }
      return s_gen_keys (argv[i + 1]);
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
  if ((c.allow_given || c.opts.admin_key[0]) && !c.opts.curve_secret[0]) {
    fprintf (stderr, "recarena-server: --allow-keys and --admin-key need --curve-secret\n");
    ra_reward_plugins_unload_all ();
    return 2;
  }
  if (c.opts.curve_secret[0] && c.opts.n_allow_keys == 0)
    fprintf (stderr, "recarena-server: warning: CURVE is on but no client key is allowed "
                     "(--allow-keys DIR with *.pub files); every client will be refused\n");

  ra_error_t err;
  ra_server_t *srv;
  if (ra_server_new (&c.opts, &srv, &err) != RA_OK) {
    fprintf (stderr, "recarena-server: %s\n", err.message);
    return 1;
  }
  /* An endpoint it cannot bind (malformed, an unknown transport, in use, a directory that does
     not exist) is a bad --bind value: exit 2, as for any flag (docs/protocol.md "Server command
     line"). */
  for (int i = 0; i < c.nbinds; i++)
    if (ra_server_bind (srv, c.binds[i], &err) != RA_OK) {
      fprintf (stderr, "recarena-server: --bind: %s\n", err.message);
      ra_server_destroy (&srv);
      ra_reward_plugins_unload_all ();
      return 2;
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
