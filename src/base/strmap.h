/* strmap.h — a small chained hash map from NUL-terminated string keys to
 * pointers. The map copies keys; values are the caller's. */
#ifndef SLUICE_STRMAP_H
#define SLUICE_STRMAP_H

#include <stddef.h>

struct strmap_node;

struct strmap {
	struct strmap_node **buckets;
	size_t bucket_count;
	size_t count;
};

void strmap_init(struct strmap *m);
/* Frees the map's nodes and key copies, not the values. */
void strmap_free(struct strmap *m);
void *strmap_get(const struct strmap *m, const char *key);
/* Insert or replace. Returns 0 or SL_ENOMEM. */
int strmap_put(struct strmap *m, const char *key, void *value);
/* Returns the removed value, or NULL. */
void *strmap_del(struct strmap *m, const char *key);
/* Calls fn for each entry; fn must not modify the map. */
void strmap_each(const struct strmap *m, void (*fn)(void *arg, const char *key, void *value), void *arg);

#endif
