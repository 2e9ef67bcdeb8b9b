/* cache.h — the read cache: whole recent objects kept in memory, bounded
 * by bytes, evicted least recently used first. Loop thread only. An
 * object the write path puts in is kept as references to the produce
 * requests' frames that hold its batches (no copy; cache_put_pieces).
 *
 * Objects are refcounted: a fetch that holds an object (cache_obj_ref)
 * keeps its bytes valid after eviction until it drops the reference.
 * Readers may patch a batch's baseOffset and partitionLeaderEpoch in the
 * cached bytes (outside the batch CRC; the same values every time, so
 * idempotent): nothing reads the producer's original values from here.
 *
 * Besides the whole objects the write path puts in, the cache holds
 * ranges of objects that the read path loads ahead of a consumer
 * (cache_load): the batches a partition continues with, so that the
 * consumer's next fetch finds them in memory. Loads in flight count
 * against the same byte budget: at most half of it is being loaded at
 * once, and no single range is larger than a quarter of it. */
#ifndef SLUICE_CACHE_H
#define SLUICE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"

struct cache;
struct objstore;

struct cache_obj {
	uint8_t *data;   /* owned; the whole object, or a range of it; NULL
			  * for an object kept as pieces */
	size_t len;
	int refs;
	uint64_t base;   /* the object's byte offset of data[0] (0: whole) */
	size_t pool_cap; /* data's buffer size for kbuf_release (0: malloc'd) */
	int pins;        /* response pieces pointing into it (cache_obj_pin) */
	bool evicted;    /* pinned when the cache let it go */
	/* An object the write path put in: its batches where the produce
	 * requests brought them (each owner referenced), in offset order;
	 * header and footer are not kept. Read through cache_obj_bytes. */
	struct kpiece *pieces;
	size_t piece_count;
};

/* Where the object's bytes [offset, offset + len) are (offsets within
 * the object, also for a range), or NULL when o does not hold them in
 * one piece. Valid while the reference is held. */
uint8_t *cache_obj_bytes(const struct cache_obj *o, uint64_t offset, size_t len);

/* A cache of at most limit_bytes (0 disables it). NULL on ENOMEM. */
struct cache *cache_new(size_t limit_bytes);
/* A range loaded ahead and not read for this long (ms, the loop's clock)
 * may be dropped for a new load: a consumer reading in order takes its
 * read-ahead within a fetch or two. */
#define CACHE_UNREAD_STALE_MS 1000
/* Another age than CACHE_UNREAD_STALE_MS (tests). */
void cache_set_unread_stale_ms(struct cache *c, uint64_t ms);
/* Call with no load in flight (after the loop has run to its end); loads
 * still in flight are leaked, not freed under the store's feet. */
void cache_free(struct cache *c);
/* Take ownership of data (len bytes; a buffer of pool_cap bytes for
 * kbuf_release, or 0 when plain malloc'd) under key, evicting others to
 * fit. Objects larger than the limit are freed, not cached. */
void cache_put(struct cache *c, const char *key, uint8_t *data, size_t len, size_t pool_cap);
/* Put object key (len bytes) in as the pieces holding its batches (no
 * copy: each piece's owner gets a reference; the bytes of pieces without
 * an owner are copied). Counted as len bytes, as a whole object. */
void cache_put_pieces(struct cache *c, const char *key, uint64_t len,
		      const struct kpiece *pieces, size_t n);
/* A referenced object, or NULL on a miss. Drop with cache_obj_unref. */
struct cache_obj *cache_get(struct cache *c, const char *key);
void cache_obj_unref(struct cache_obj *o);
/* Pins: what unsent responses point into. An object the cache evicts
 * while pinned lives on outside the cache's limit until its last pin
 * goes; cache_obj_pin refuses a new pin (the caller copies the bytes
 * instead) once such objects hold more than max_evicted bytes, so memory
 * stays bounded by the cache's limit + max_evicted (+ one object).
 * The caller holds a reference for each pin. Loop thread only. */
bool cache_obj_pin(struct cache_obj *o, size_t max_evicted);
void cache_obj_unpin(struct cache_obj *o);
/* One more reference to o (held past eviction, e.g. by a response whose
 * pieces point into o->data until its write completes). Loop thread:
 * the last unref returns the buffer to the loop's pool. */
void cache_obj_ref(struct cache_obj *o);
/* Whether the whole object key is cached (no LRU move, not counted). */
bool cache_contains(const struct cache *c, const char *key);
/* The range of object key loaded from byte offset (cache_load), or else
 * the cached range of it holding byte offset that reaches furthest
 * (o->base <= offset), or NULL. Drop with cache_obj_unref. */
struct cache_obj *cache_get_range(struct cache *c, const char *key, uint64_t offset);
/* Where the cached range of object key that holds byte offset ends (the
 * object's byte offset after its last byte; of the ranges holding it, the
 * one reaching furthest); offset itself when no cached range holds it.
 * No LRU move, not counted. */
uint64_t cache_range_end(const struct cache *c, const char *key, uint64_t offset);
/* As cache_range_end, counting loads in flight as well, and following
 * ranges that continue one another: where the bytes of object key from
 * offset on that are cached or on their way end. */
uint64_t cache_ahead_end(const struct cache *c, const char *key, uint64_t offset);
/* Whether that range is cached or being loaded (no LRU move, not counted). */
bool cache_has_range(const struct cache *c, const char *key, uint64_t offset);

/* Completion of a load, on the loop thread: err 0 means the object went
 * into the cache (it may already be evicted again by later puts). */
typedef void (*cache_load_fn)(void *arg, int err);

/* Load len bytes of object key from byte offset into the cache (one
 * get), as a range that cache_get_range(key, offset) finds. Returns
 *   1  it is already cached (that range, the whole object, or a range
 *      holding all of it): nothing started, done is not called;
 *   0  a load of it is in flight (started now or earlier, from offset
 *      or from earlier in the object holding all of it): done(arg, err)
 *      is called once when it ends (done may be NULL: read-ahead);
 *  <0  it cannot be loaded now: SL_EINVAL (cache off, len 0 or larger
 *      than a quarter of the cache), SL_EBUSY (half the cache is being
 *      loaded already, or ranges loaded and not yet read would pass
 *      three quarters of it with this one), SL_ENOMEM, or the store's
 *      refusal. done is never called.
 * A range loaded and not read for CACHE_UNREAD_STALE_MS was a wrong guess:
 * it goes (the oldest first) to make room for a new one; younger ones
 * are about to be read and stay. */
int cache_load(struct cache *c, struct objstore *s, uv_loop_t *loop, const char *key,
	       uint64_t offset, size_t len, cache_load_fn done, void *arg);
/* Forget a range that its reader has read to the end (references held
 * stay valid). */
void cache_drop_range(struct cache *c, const char *key, uint64_t offset);
/* Wait for a load of that range already in flight, or else for one that
 * holds byte offset: 0 (done will be called as for cache_load), or
 * SL_ENOTFOUND when none is. */
int cache_wait(struct cache *c, const char *key, uint64_t offset, cache_load_fn done, void *arg);

size_t cache_bytes(const struct cache *c);
uint64_t cache_hits(const struct cache *c);
uint64_t cache_misses(const struct cache *c);
/* Loads started, and bytes they read, since cache_new. */
uint64_t cache_loads(const struct cache *c);
uint64_t cache_load_bytes(const struct cache *c);

#endif
