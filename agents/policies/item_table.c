/*  agents/policies/item_table.c - item key -> dense slot (see item_table.h). */
#include "agents/policies/item_table.h"

#include <stdlib.h>

bool ra__item_table_init (ra__item_table_t *t, int cap)
{
  int c = 16;
  while (c < cap)
    c *= 2;
  t->cap = c;
  t->used = 0;
  t->keys = malloc ((size_t) c * sizeof *t->keys);
  t->slot = malloc ((size_t) c * sizeof *t->slot);
  if (!t->keys || !t->slot) {
    ra__item_table_fini (t);
    return false;
  }
  ra__item_table_clear (t);
  return true;
}

void ra__item_table_fini (ra__item_table_t *t)
{
  free (t->keys);
  free (t->slot);
  t->keys = NULL;
  t->slot = NULL;
}

void ra__item_table_clear (ra__item_table_t *t)
{
  for (int i = 0; i < t->cap; i++)
    t->keys[i] = -1;
  t->used = 0;
}

static uint32_t s_hash (int64_t key)
{
  uint64_t h = (uint64_t) key * 0x9E3779B97F4A7C15ull;
  return (uint32_t) (h >> 32);
}

static int s_probe (const ra__item_table_t *t, int64_t key)
{
  uint32_t mask = (uint32_t) t->cap - 1, h = s_hash (key) & mask;
  for (int n = 0; n < t->cap; n++, h = (h + 1) & mask)
    if (t->keys[h] == key || t->keys[h] < 0)
      return (int) h;
  return -1;
}

int ra__item_table_get (ra__item_table_t *t, int64_t key, bool *is_new)
{
  int h = s_probe (t, key);
  *is_new = false;
  if (h >= 0 && t->keys[h] == key)
    return t->slot[h];
  if (h < 0 || t->used >= t->cap * 3 / 4 + 1)   /* keep probes short: 75% load, then overflow */
    return t->cap;
  t->keys[h] = key;
  t->slot[h] = t->used++;
  *is_new = true;
  return t->slot[h];
}

int ra__item_table_find (const ra__item_table_t *t, int64_t key)
{
  int h = s_probe (t, key);
  return h >= 0 && t->keys[h] == key ? t->slot[h] : -1;
}
