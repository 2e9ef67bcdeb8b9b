/* cache.h — the read cache: whole recent objects kept in memory, bounded
 * by bytes, evicted least recently used first. Loop thread only.
 *
 * Objects are refcounted: a fetch that holds an object (cache_obj_ref)
 * keeps its bytes valid after eviction until it drops the reference.
 *
 * Besides the objects the write path puts in, the cache loads whole
 * objects from the store on demand (cache_load): a catch-up read fills it
 * one object at a time, and reads ahead into the objects that come next.
 * Loads in flight count against the same byte budget: at most half of it
 * is being loaded at once, and an object larger than a quarter of it is
 * never loaded (read it by ranges instead). */
#ifndef SLUICE_CACHE_H
#define SLUICE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct cache;
struct objstore;

struct cache_obj {
	uint8_t *data;   /* owned; the whole object */
	size_t len;
	int refs;
};

/* A cache of at most limit_bytes (0 disables it). NULL on ENOMEM. */
struct cache *cache_new(size_t limit_bytes);
/* Call with no load in flight (after the loop has run to its end); loads
 * still in flight are leaked, not freed under the store's feet. */
void cache_free(struct cache *c);
/* Take ownership of data (malloc'd, len bytes) under key, evicting others
 * to fit. Objects larger than the limit are freed, not cached. */
void cache_put(struct cache *c, const char *key, uint8_t *data, size_t len);
/* A referenced object, or NULL on a miss. Drop with cache_obj_unref. */
struct cache_obj *cache_get(struct cache *c, const char *key);
void cache_obj_unref(struct cache_obj *o);
/* Whether key is cached or being loaded (no LRU move, not counted). */
bool cache_has(const struct cache *c, const char *key);

/* Completion of a load, on the loop thread: err 0 means the object went
 * into the cache (it may already be evicted again by later puts). */
typedef void (*cache_load_fn)(void *arg, int err);

/* Make the whole object key (size bytes, from the metadata store)
 * resident, reading it from s with one get. Returns
 *   1  it is already cached: nothing started, done is not called;
 *   0  a load is in flight (started now or earlier): done(arg, err) is
 *      called once when it ends (done may be NULL: read-ahead);
 *  <0  it cannot be loaded now: SL_EINVAL (cache off, size 0 or larger
 *      than a quarter of the cache), SL_EBUSY (half the cache is being
 *      loaded already), SL_ENOMEM, or the store's refusal. done is never
 *      called; read what you need by ranges. */
int cache_load(struct cache *c, struct objstore *s, uv_loop_t *loop, const char *key,
	       uint64_t size, cache_load_fn done, void *arg);

size_t cache_bytes(const struct cache *c);
uint64_t cache_hits(const struct cache *c);
uint64_t cache_misses(const struct cache *c);
/* Loads started, and bytes they read, since cache_new. */
uint64_t cache_loads(const struct cache *c);
uint64_t cache_load_bytes(const struct cache *c);

#endif
