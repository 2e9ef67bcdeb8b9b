/* gc.h — collecting dead objects: metadata rows whose live_bytes reached 0
 * (every batch in them was deleted: DeleteTopics, retention,
 * DeleteRecords), created before a cutoff. Used by `sluice gc` and by the
 * agent's background collection; orphans (keys no row names) are the
 * tool's alone. */
#ifndef SLUICE_GC_H
#define SLUICE_GC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct meta;
struct objstore;

struct gc_dead_stats {
	uint64_t deleted, bytes; /* gone from the store and the metadata */
	uint64_t failed;         /* the store kept them: the next pass retries */
	int store_err;           /* the store's first error, or 0 */
};

/* Dead rows a page at a time, from after *after_oid on, at most max_pages
 * pages: each page is marked 'deleting' in one transaction (only rows
 * still at 0 live bytes are: a row that gained some, or went, is not
 * ours), deleted from the store, and forgotten once the store says the
 * keys are gone; rows left 'deleting' (a failed delete, a pass stopped
 * half-way) are retried by the next pass. *after_oid moves past the pages
 * done; *more (may be NULL) tells whether dead rows may be left after it.
 * st accumulates (zero it first). With dry, nothing changes: dry(key,
 * size, arg) is called for each dead object instead. A pass (*after_oid
 * 0, not dry) first purges the rows deleted topics left
 * (meta_purge_deleted, up to SL_GC_PURGES_PER_PASS topics). Blocking (store and
 * metadata calls): a tool's thread or a worker thread. Returns 0 or the
 * metadata store's error; store errors are in st. */
int gc_dead_objects(struct meta *m, struct objstore *s, int64_t cutoff_ms,
		    void (*dry)(const char *key, uint64_t size, void *arg), void *dry_arg,
		    int64_t *after_oid, size_t max_pages, bool *more, struct gc_dead_stats *st);

#endif
