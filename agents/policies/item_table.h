/*  agents/policies/item_table.h - a fixed-capacity map from item keys (catalog ids) to dense
    slots, for the arms that keep per-item state (popularity, disjoint and hybrid LinUCB).
    Open addressing with linear probing; allocated once at create. When full, every new key
    shares one overflow slot (index cap), so callers size their state for cap + 1 slots.
    Not thread-safe.                                                                         */
#ifndef RA_AGENTS_POLICIES_ITEM_TABLE_H
#define RA_AGENTS_POLICIES_ITEM_TABLE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
  int64_t *keys;        /* cap entries, -1 = empty */
  int32_t *slot;        /* cap entries: dense slot of the key */
  int cap;              /* power of two */
  int used;             /* dense slots handed out, <= cap */
} ra__item_table_t;

/* cap is rounded up to a power of two. False on out of memory. */
bool ra__item_table_init (ra__item_table_t *t, int cap);
void ra__item_table_fini (ra__item_table_t *t);
/* Empties the table (every key forgotten). */
void ra__item_table_clear (ra__item_table_t *t);
/* Dense slot of key (>= 0); inserts it when absent (*is_new set). Returns t->cap (the overflow
   slot) when the table is full. O(1) expected. */
int ra__item_table_get (ra__item_table_t *t, int64_t key, bool *is_new);
/* Slot of key or -1, without inserting. */
int ra__item_table_find (const ra__item_table_t *t, int64_t key);

#endif
