/*  env/core/task.c - task draws, overrides and descriptions (docs/sims/ecommerce.md section 6). */
#include "env/core/task.h"

#include <math.h>
#include <string.h>

#include "common/rng.h"
#include "env/core/config.h"

const char *const ra_split_names[RA_SPLIT_COUNT] = { "default", "train", "val", "test", "ood" };

uint64_t ra_task_key (uint64_t sim_key, ra_split_t split, int64_t id)
{
  return ra_rng_hash (sim_key, (uint64_t) split, (uint64_t) id);
}

void ra_task_draw (const ra_task_param_def_t *defs, int n_defs, uint64_t sim_key, ra_split_t split,
                   int64_t id, double *values)
{
  /* 6.1 one stream per (sim, split, id): train/val/test share ranges, never a stream */
  ra_rng_t rng;
  ra_rng_seed (&rng, ra_task_key (sim_key, split, id), 0x7461736bULL);
  for (int p = 0; p < n_defs; p++) {
    const ra_task_param_def_t *d = &defs[p];
    double lo = split == RA_SPLIT_OOD ? d->ood_lo : d->lo;
    double hi = split == RA_SPLIT_OOD ? d->ood_hi : d->hi;
    double u = ra_rng_uniform_f64 (&rng);
    double x = d->log_scale ? exp (log (lo) + u * (log (hi) - log (lo))) : lo + u * (hi - lo);
    values[p] = d->integer ? floor (x) : x;
  }
}

ra_err_t ra_task_resolve (const ra_task_param_def_t *defs, int n_defs, uint64_t sim_key,
                          const double *defaults, const ra_task_t *task, ra_task_values_t *out,
                          ra_error_t *err)
{
  memset (out, 0, sizeof *out);
  out->split = RA_SPLIT_DEFAULT;
  out->id = -1;
  for (int p = 0; p < n_defs; p++)
    out->values[p] = defaults[p];
  if (!task)
    return RA_OK;
  if (task->split) {
    int s = -1;
    for (int i = RA_SPLIT_TRAIN; i < RA_SPLIT_COUNT; i++)
      if (strcmp (task->split, ra_split_names[i]) == 0)
        s = i;
    if (s < 0)
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                           "task split '%s' is unknown, expected 'train', 'val', 'test' or 'ood'",
                           task->split);
    if (task->id < 0 || task->id > ((int64_t) 1 << 53))
      return ra_error_set (err, RA_ERR_BAD_CONFIG, -1, "task id %lld is out of range, expected 0..2^53",
                           (long long) task->id);
    out->split = (ra_split_t) s;
    out->id = task->id;
    ra_task_draw (defs, n_defs, sim_key, out->split, out->id, out->values);
  }
  ra_config_t c;
  ra_err_t rc = ra_config_init (&c, task->params, task->n_params, "task parameter", err);
  if (rc != RA_OK)
    return rc;
  for (int p = 0; p < n_defs; p++) {
    const ra_task_param_def_t *d = &defs[p];
    if (d->integer) {
      int64_t v;
      rc = ra_config_get_int (&c, d->name, (int64_t) out->values[p], (int64_t) d->min,
                              (int64_t) d->max, &v, err);
      out->values[p] = (double) v;
    } else {
      rc = ra_config_get_num (&c, d->name, out->values[p], d->min, d->max, &out->values[p], err);
    }
    if (rc != RA_OK)
      return rc;
  }
  char known[512];
  size_t len = 0;
  known[0] = '\0';
  for (int p = 0; p < n_defs && len < sizeof known; p++) {
    size_t l = strlen (defs[p].name);
    if (len + l + 3 >= sizeof known)
      break;
    if (p) {
      memcpy (known + len, ", ", 2);
      len += 2;
    }
    memcpy (known + len, defs[p].name, l + 1);
    len += l;
  }
  return ra_config_check_unknown (&c, known, err);
}

int ra_task_describe (const ra_task_param_def_t *defs, int n_defs, const ra_task_values_t *v,
                      ra_kv_t *out, int cap)
{
  int n = 0;
  if (n < cap)
    out[n++] = (ra_kv_t) { .key = "split", .type = RA_KV_STR, .str = ra_split_names[v->split] };
  if (n < cap)
    out[n++] = (ra_kv_t) { .key = "id", .type = RA_KV_NUM, .num = (double) v->id };
  for (int p = 0; p < n_defs && n < cap; p++)
    out[n++] = (ra_kv_t) { .key = defs[p].name, .type = RA_KV_NUM, .num = v->values[p] };
  return n;
}

bool ra_task_same_world (const ra_task_values_t *a, const ra_task_values_t *b, int n_defs)
{
  for (int p = 0; p < n_defs; p++)
    if (a->values[p] != b->values[p])
      return false;
  return true;
}
