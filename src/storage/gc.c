/* gc.c — one pass over the dead objects (see gc.h). */
#include "storage/gc.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/limits.h"
#include "meta/meta.h"
#include "objstore/objstore.h"

/* One page of dead rows: mark, delete from the store, forget. */
static int dead_page(struct meta *m, struct objstore *s, struct meta_object *rows, size_t n,
		     struct gc_dead_stats *st)
{
	const char *keys[SL_GC_PAGE_OBJECTS];
	bool marked[SL_GC_PAGE_OBJECTS], failed[SL_GC_PAGE_OBJECTS];
	uint64_t sizes[SL_GC_PAGE_OBJECTS];
	for (size_t i = 0; i < n; i++)
		keys[i] = rows[i].key;
	int rc = meta_objects_mark_deleting(m, keys, n, marked);
	if (rc)
		return rc;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (marked[i]) {
			sizes[k] = rows[i].size;
			keys[k++] = rows[i].key;
		}
	if (k == 0)
		return 0;
	size_t deleted = 0;
	rc = objstore_del_many(s, keys, k, &deleted, failed);
	if (rc) {
		if (!st->store_err)
			st->store_err = rc;
		st->failed += k - deleted;
	}
	/* Forget only what the store says is gone; the rest stays
	 * 'deleting' for the next pass. */
	size_t gone = 0;
	for (size_t i = 0; i < k; i++)
		if (!failed[i]) {
			st->bytes += sizes[i];
			keys[gone++] = keys[i];
		}
	st->deleted += gone;
	return gone ? meta_objects_forget(m, keys, gone, NULL) : 0;
}

int gc_dead_objects(struct meta *m, struct objstore *s, int64_t cutoff_ms,
		    void (*dry)(const char *key, uint64_t size, void *arg), void *dry_arg,
		    int64_t *after_oid, size_t max_pages, bool *more, struct gc_dead_stats *st)
{
	/* A pass starts by finishing deleted topics whose rows a delete left
	 * (their objects are dead only once those rows are gone). */
	if (*after_oid == 0 && !dry) {
		bool found = true;
		for (int i = 0; found && i < SL_GC_PURGES_PER_PASS; i++) {
			int rc = meta_purge_deleted(m, &found);
			if (rc)
				return rc;
		}
	}
	struct meta_object *rows = malloc(SL_GC_PAGE_OBJECTS * sizeof *rows);
	if (!rows)
		return SL_ENOMEM;
	bool left = false;
	int rc = 0;
	for (size_t page = 0; page < max_pages; page++) {
		size_t n = 0;
		rc = meta_objects_dead(m, cutoff_ms, *after_oid, SL_GC_PAGE_OBJECTS, rows, &n);
		if (rc || n == 0)
			break;
		*after_oid = rows[n - 1].oid;
		if (dry) {
			for (size_t i = 0; i < n; i++) {
				dry(rows[i].key, rows[i].size, dry_arg);
				st->deleted++;
				st->bytes += rows[i].size;
			}
		} else {
			rc = dead_page(m, s, rows, n, st);
			if (rc)
				break;
		}
		left = n == SL_GC_PAGE_OBJECTS;
		if (!left)
			break;
	}
	free(rows);
	if (more)
		*more = !rc && left;
	return rc;
}
