/* cache.h — the read cache: whole recent objects kept in memory, bounded
 * by bytes, evicted least recently used first. Loop thread only.
 *
 * Objects are refcounted: a fetch that holds an object (cache_obj_ref)
 * keeps its bytes valid after eviction until it drops the reference. */
#ifndef SLUICE_CACHE_H
#define SLUICE_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct cache;

struct cache_obj {
	uint8_t *data;   /* owned; the whole object */
	size_t len;
	int refs;
};

/* A cache of at most limit_bytes (0 disables it). NULL on ENOMEM. */
struct cache *cache_new(size_t limit_bytes);
void cache_free(struct cache *c);
/* Take ownership of data (malloc'd, len bytes) under key, evicting others
 * to fit. Objects larger than the limit are freed, not cached. */
void cache_put(struct cache *c, const char *key, uint8_t *data, size_t len);
/* A referenced object, or NULL on a miss. Drop with cache_obj_unref. */
struct cache_obj *cache_get(struct cache *c, const char *key);
void cache_obj_unref(struct cache_obj *o);
size_t cache_bytes(const struct cache *c);
uint64_t cache_hits(const struct cache *c);
uint64_t cache_misses(const struct cache *c);

#endif
