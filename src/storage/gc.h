/* gc.h — collecting dead objects: metadata rows whose live_bytes reached 0
 * (every batch in them was deleted: DeleteTopics, retention,
 * DeleteRecords), created before a cutoff. Used by `sluice gc` and by the
 * agent's background collection; orphans (keys no row names) are the
 * tool's alone. */
#ifndef SLUICE_GC_H
#define SLUICE_GC_H

#include <stdbool.h>
#include <stdint.h>

struct meta;
struct objstore;

struct gc_dead_stats {
	uint64_t deleted, bytes; /* gone from the store and the metadata */
	uint64_t failed;         /* the store kept them: the next pass retries */
	int store_err;           /* the store's first error, or 0 */
};

/* One pass: a page of dead rows at a time is marked 'deleting' in one
 * transaction (only rows still at 0 live bytes are: a row that gained
 * some, or went, is not ours), deleted from the store, and forgotten once
 * the store says the keys are gone; rows left 'deleting' by a pass that
 * stopped half-way are finished by the next. With dry, nothing changes:
 * dry(key, size, arg) is called for each dead object instead. Blocking
 * (store and metadata calls): a tool's thread or a worker thread. Returns
 * 0 or the metadata store's error; store errors are in st. */
int gc_dead_objects(struct meta *m, struct objstore *s, int64_t cutoff_ms,
		    void (*dry)(const char *key, uint64_t size, void *arg), void *dry_arg,
		    struct gc_dead_stats *st);

#endif
