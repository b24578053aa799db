/*  env/core/reward_plugin.c - the process-wide registry of reward plugins: dlopen, symbol and
    ABI checks (docs/sims/shared.md section 3).

    Owns: up to RA_REWARD_PLUGINS_MAX (dlopen handle, plugin description) pairs in static
    storage. Threading: ra_reward_plugins_load and _unload_all only during single-threaded
    startup or shutdown; _find, _count and _get are read-only and thread-safe in between.       */
#include "env/core/reward.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  void *handle;
  const ra_reward_plugin_v1_t *plugin;
} s_loaded_t;

static s_loaded_t s_loaded[RA_REWARD_PLUGINS_MAX];
static int s_n_loaded;

ra_err_t ra_reward_plugins_load (const char *path, ra_error_t *err)
{
  if (!path || !*path)
    return ra_error_set (err, RA_ERR_IO, -1, "reward plugin: empty path, expected a shared library file");
  if (s_n_loaded == RA_REWARD_PLUGINS_MAX)
    return ra_error_set (err, RA_ERR_LIMIT, -1, "reward plugin %s: %d plugins already loaded, the most there can be",
                         path, RA_REWARD_PLUGINS_MAX);
  /* A path, never a library name: dlopen searches the library path for a name without '/', so
     "plugin.so" in the working directory was "cannot open shared object file" (and a name that
     is also a system library's loaded that library). */
  char local[4096];
  const char *open_path = path;
  if (!strchr (path, '/')) {
    if (snprintf (local, sizeof local, "./%s", path) >= (int) sizeof local)
      return ra_error_set (err, RA_ERR_IO, -1, "reward plugin %.64s...: path longer than %zu bytes",
                           path, sizeof local - 3);
    open_path = local;
  }
  dlerror ();
  void *h = dlopen (open_path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *why = dlerror ();
    return ra_error_set (err, RA_ERR_IO, -1, "reward plugin %s: cannot load: %s", path, why ? why : "unknown error");
  }
  ra_err_t rc;
  /* POSIX guarantees a function pointer round-trips through void *; copy the bits to stay ISO C. */
  void *sym = dlsym (h, RA_REWARD_PLUGIN_SYMBOL);
  ra_reward_plugin_entry_v1_t entry;
  const ra_reward_plugin_v1_t *p = NULL;
  if (!sym) {
    rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "reward plugin %s: no symbol %s, expected a recarena reward plugin "
                       "(env/core/reward_plugin.h)", path, RA_REWARD_PLUGIN_SYMBOL);
    goto fail;
  }
  memcpy (&entry, &sym, sizeof entry);
  p = entry ();
  if (!p) {
    rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "reward plugin %s: %s returned NULL, expected its description",
                       path, RA_REWARD_PLUGIN_SYMBOL);
    goto fail;
  }
  if (p->abi_version != RA_REWARD_PLUGIN_ABI_VERSION) {
    rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "reward plugin %s: ABI version %u, expected %u", path,
                       (unsigned) p->abi_version, (unsigned) RA_REWARD_PLUGIN_ABI_VERSION);
    goto fail;
  }
  size_t len = p->name ? strlen (p->name) : 0;
  if (len == 0 || len > RA_REWARD_PLUGIN_NAME_MAX || strchr (p->name, ':')) {
    rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "reward plugin %s: name '%s' is invalid, expected 1 to %d "
                       "characters without ':'", path, p->name ? p->name : "(null)", RA_REWARD_PLUGIN_NAME_MAX);
    goto fail;
  }
  if (!p->create || !p->reward || !p->destroy) {
    rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "reward plugin %s (%s): create, reward and destroy must all be set",
                       path, p->name);
    goto fail;
  }
  if (ra_reward_plugins_find (p->name)) {
    rc = ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "reward plugin %s: a plugin named '%s' is already loaded", path,
                       p->name);
    goto fail;
  }
  s_loaded[s_n_loaded++] = (s_loaded_t) { h, p };
  return RA_OK;
fail:
  dlclose (h);
  return rc;
}

const ra_reward_plugin_v1_t *ra_reward_plugins_find (const char *name)
{
  for (int i = 0; i < s_n_loaded; i++)
    if (strcmp (s_loaded[i].plugin->name, name) == 0)
      return s_loaded[i].plugin;
  return NULL;
}

int ra_reward_plugins_count (void)
{
  return s_n_loaded;
}

const ra_reward_plugin_v1_t *ra_reward_plugins_get (int i)
{
  return i >= 0 && i < s_n_loaded ? s_loaded[i].plugin : NULL;
}

void ra_reward_plugins_unload_all (void)
{
  for (int i = s_n_loaded - 1; i >= 0; i--) {
    dlclose (s_loaded[i].handle);
    s_loaded[i] = (s_loaded_t) { 0 };
  }
  s_n_loaded = 0;
}
