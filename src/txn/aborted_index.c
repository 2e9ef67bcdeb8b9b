/* aborted_index.c — aborted transactions per partition
 * (aborted_index.h).
 *
 * Partitions are a sorted array of pointers, by (tid, partition), found
 * by binary search: an aborted transaction is rare next to a commit, and
 * most partitions never see one, so a partition costs one small record
 * and no table of buckets. Each holds its entries sorted by
 * (first_offset, last_offset, producer_id); a marker offset and a
 * producer id name one transaction (a marker may record several
 * producer ids': meta_marker_aborts), so a duplicate is an equal
 * neighbour after sorting. Recency is a counter
 * stamped on each use; over bytes_max the least recent partitions go
 * (a scan, rare: only when the bound is reached, and then down to 7/8 of
 * it so the next additions do not scan again). */
#include "txn/aborted_index.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/grow.h"

struct aix_part {
	int64_t tid;
	int32_t partition;
	int64_t from, to;          /* every marker in [from, to) is held */
	uint64_t used;             /* the index's clock at the last use */
	struct aborted_txn *v;     /* sorted by (first_offset, last_offset, producer_id) */
	size_t n, cap;
};

struct aborted_index {
	size_t bytes_max, entries_max;
	size_t bytes;
	struct aix_part **parts;   /* sorted by (tid, partition) */
	size_t count, cap;
	uint64_t clock;
};

static int part_cmp(int64_t tid, int32_t p, const struct aix_part *x)
{
	if (tid != x->tid)
		return tid < x->tid ? -1 : 1;
	if (p != x->partition)
		return p < x->partition ? -1 : 1;
	return 0;
}

/* The position of (tid, p), or where it would go; *found says which. */
static size_t part_pos(const struct aborted_index *ix, int64_t tid, int32_t p, bool *found)
{
	size_t lo = 0, hi = ix->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = part_cmp(tid, p, ix->parts[mid]);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*found = false;
	return lo;
}

static struct aix_part *part_find(const struct aborted_index *ix, int64_t tid, int32_t p)
{
	bool found;
	size_t i = part_pos(ix, tid, p, &found);
	return found ? ix->parts[i] : NULL;
}

static size_t part_bytes(const struct aix_part *x)
{
	return sizeof *x + x->cap * sizeof *x->v;
}

static void part_remove_at(struct aborted_index *ix, size_t i)
{
	struct aix_part *x = ix->parts[i];
	ix->bytes -= part_bytes(x);
	free(x->v);
	free(x);
	memmove(&ix->parts[i], &ix->parts[i + 1], (ix->count - i - 1) * sizeof *ix->parts);
	ix->count--;
}

struct aborted_index *aborted_index_new(size_t bytes_max, size_t entries_max)
{
	struct aborted_index *ix = calloc(1, sizeof *ix);
	if (!ix)
		return NULL;
	ix->bytes_max = bytes_max;
	ix->entries_max = entries_max ? entries_max : 1;
	ix->bytes = sizeof *ix;
	return ix;
}

void aborted_index_free(struct aborted_index *ix)
{
	if (!ix)
		return;
	for (size_t i = 0; i < ix->count; i++) {
		free(ix->parts[i]->v);
		free(ix->parts[i]);
	}
	free(ix->parts);
	free(ix);
}

/* Over the budget: drop the least recently used partitions (never keep,
 * the one being added to) until under 7/8 of it. */
static void evict(struct aborted_index *ix, const struct aix_part *keep)
{
	if (ix->bytes <= ix->bytes_max)
		return;
	size_t target = ix->bytes_max - ix->bytes_max / 8;
	while (ix->bytes > target) {
		size_t oldest = SIZE_MAX;
		for (size_t i = 0; i < ix->count; i++)
			if (ix->parts[i] != keep &&
			    (oldest == SIZE_MAX || ix->parts[i]->used < ix->parts[oldest]->used))
				oldest = i;
		if (oldest == SIZE_MAX)
			return; /* only keep is left: it stays, however large */
		part_remove_at(ix, oldest);
	}
}

static int entry_cmp(const void *x, const void *y)
{
	const struct aborted_txn *a = x, *b = y;
	if (a->first_offset != b->first_offset)
		return a->first_offset < b->first_offset ? -1 : 1;
	if (a->last_offset != b->last_offset)
		return a->last_offset < b->last_offset ? -1 : 1;
	if (a->producer_id != b->producer_id)
		return a->producer_id < b->producer_id ? -1 : 1;
	return 0;
}

/* Keep only the entries with a marker in [x->from, x->to). */
static void entries_clip(struct aix_part *x)
{
	size_t k = 0;
	for (size_t i = 0; i < x->n; i++)
		if (x->v[i].last_offset >= x->from && x->v[i].last_offset < x->to)
			x->v[k++] = x->v[i];
	x->n = k;
}

/* Past entries_max: the oldest markers go, and the range starts after
 * the newest of them (it no longer holds them). */
static void entries_bound(struct aborted_index *ix, struct aix_part *x)
{
	while (x->n > ix->entries_max) {
		size_t drop = x->n - ix->entries_max;
		/* The drop-th smallest marker, by selection: drop is small
		 * (an add past the bound by a few entries). */
		int64_t cut = INT64_MIN;
		for (size_t d = 0; d < drop; d++) {
			int64_t next = INT64_MAX;
			for (size_t i = 0; i < x->n; i++)
				if (x->v[i].last_offset > cut && x->v[i].last_offset < next)
					next = x->v[i].last_offset;
			cut = next;
		}
		x->from = cut + 1;
		entries_clip(x);
	}
}

static struct aix_part *part_get(struct aborted_index *ix, int64_t tid, int32_t p)
{
	bool found;
	size_t i = part_pos(ix, tid, p, &found);
	if (found)
		return ix->parts[i];
	size_t cap_was = ix->cap;
	if (array_grow(&ix->parts, &ix->cap, ix->count, sizeof *ix->parts, 16) != 0)
		return NULL;
	ix->bytes += (ix->cap - cap_was) * sizeof *ix->parts;
	struct aix_part *x = calloc(1, sizeof *x);
	if (!x)
		return NULL;
	x->tid = tid;
	x->partition = p;
	x->from = x->to = 0;
	memmove(&ix->parts[i + 1], &ix->parts[i], (ix->count - i) * sizeof *ix->parts);
	ix->parts[i] = x;
	ix->count++;
	ix->bytes += part_bytes(x);
	return x;
}

int aborted_index_add(struct aborted_index *ix, int64_t tid, int32_t p, int64_t from, int64_t to,
		      const struct aborted_txn *v, size_t n)
{
	if (from > to)
		return SL_EINVAL;
	struct aix_part *x = part_find(ix, tid, p);
	bool fresh = !x;
	if (x && to < x->from)
		return 0; /* older and apart: not held */
	if (x && from > x->to) {
		/* Newer and apart (markers this agent did not see between):
		 * start over from this range. */
		x->n = 0;
		fresh = true;
	}
	if (!x && !(x = part_get(ix, tid, p)))
		return SL_ENOMEM;
	x->used = ++ix->clock;
	if (fresh) {
		x->from = from;
		x->to = to;
	} else {
		if (from < x->from)
			x->from = from;
		if (to > x->to)
			x->to = to;
	}
	size_t in = 0;
	for (size_t i = 0; i < n; i++)
		if (v[i].last_offset >= from && v[i].last_offset < to)
			in++;
	if (in) {
		size_t cap_was = x->cap;
		while (x->cap < x->n + in)
			if (array_grow(&x->v, &x->cap, x->cap, sizeof *x->v, 4) != 0)
				goto out_drop;
		ix->bytes += (x->cap - cap_was) * sizeof *x->v;
		for (size_t i = 0; i < n; i++)
			if (v[i].last_offset >= from && v[i].last_offset < to)
				x->v[x->n++] = v[i];
		qsort(x->v, x->n, sizeof *x->v, entry_cmp);
		size_t k = 0;
		for (size_t i = 0; i < x->n; i++)
			if (k == 0 || entry_cmp(&x->v[k - 1], &x->v[i]) != 0)
				x->v[k++] = x->v[i];
		x->n = k;
		entries_bound(ix, x);
	}
	evict(ix, x);
	return 0;
out_drop:
	aborted_index_drop(ix, tid, p);
	return SL_ENOMEM;
}

bool aborted_index_get(struct aborted_index *ix, int64_t tid, int32_t p, int64_t offset,
		       int64_t end, int64_t upto, struct aborted_txn *out, size_t cap, size_t *n)
{
	*n = 0;
	struct aix_part *x = part_find(ix, tid, p);
	if (!x || x->from > offset || x->to < upto)
		return false;
	x->used = ++ix->clock;
	for (size_t i = 0; i < x->n && x->v[i].first_offset < end; i++) {
		if (x->v[i].last_offset < offset)
			continue;
		if (*n < cap)
			out[*n] = x->v[i];
		(*n)++;
	}
	return true;
}

void aborted_index_trim(struct aborted_index *ix, int64_t tid, int32_t p, int64_t log_start)
{
	bool found;
	size_t i = part_pos(ix, tid, p, &found);
	if (!found)
		return;
	struct aix_part *x = ix->parts[i];
	if (x->to < log_start) {
		part_remove_at(ix, i); /* nothing known at or past it */
		return;
	}
	if (x->from < log_start) {
		x->from = log_start;
		entries_clip(x);
	}
}

void aborted_index_drop(struct aborted_index *ix, int64_t tid, int32_t p)
{
	bool found;
	size_t i = part_pos(ix, tid, p, &found);
	if (found)
		part_remove_at(ix, i);
}

void aborted_index_drop_topic(struct aborted_index *ix, int64_t tid, int32_t partition_count)
{
	for (int32_t p = 0; p < partition_count; p++)
		aborted_index_drop(ix, tid, p);
}

size_t aborted_index_bytes(const struct aborted_index *ix)
{
	return ix->bytes;
}

size_t aborted_index_partitions(const struct aborted_index *ix)
{
	return ix->count;
}

bool aborted_index_range(const struct aborted_index *ix, int64_t tid, int32_t p, int64_t *from,
			 int64_t *to)
{
	const struct aix_part *x = part_find(ix, tid, p);
	if (!x)
		return false;
	*from = x->from;
	*to = x->to;
	return true;
}
