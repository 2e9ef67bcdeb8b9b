/* batch_index.c — recent batch rows per partition (batch_index.h).
 *
 * A partition has two runs, each a ring of rows sorted by offset: the
 * tail (appends at the end, seeds that reach it at the front) and the
 * run behind it (store rows further back, for a consumer catching up:
 * seeds that continue it at the end, others replace it); trims and the
 * per-run bound drop from the front; lookups binary-search by
 * last_offset. Rows of one object
 * share one reference-counted copy of its key (a commit's rows across
 * partitions, or a seed's consecutive rows of one object). Partitions
 * sit in a chained hash by (tid, partition) and on an LRU list that
 * appends and lookups move to the front; over bytes_max, partitions are
 * dropped from the back. Drops are remembered per slot of a small
 * table partitions hash into (batch_index_dropped_since): a collision
 * only makes a lookup skip a seed. */
#include "storage/batch_index.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/sl_assert.h"
#include "meta/meta.h"

/* batch_index_dropped_since's table: 8 KiB. */
#define BIX_DROP_SLOTS 1024

struct bix_obj {
	uint32_t refs;
	uint64_t size;
	char key[]; /* NUL-terminated */
};

struct bix_row {
	int64_t base_offset;
	int64_t last_offset;
	uint64_t byte_offset;
	int64_t max_timestamp;
	struct bix_obj *obj; /* holds a reference */
	uint32_t length;
	int32_t record_count;
};

struct bix_run {
	struct bix_row *ring;
	size_t head, n, cap;
};

struct bix_part {
	int64_t tid;
	int32_t partition;
	struct bix_part *hash_next;
	struct bix_part *lru_prev, *lru_next; /* prev: more recently used */
	struct bix_run tail;   /* up to the high watermark */
	struct bix_run behind; /* further back, not touching the tail */
};

struct batch_index {
	size_t bytes_max, rows_max;
	size_t bytes;
	struct bix_part **buckets;
	size_t bucket_count; /* a power of two */
	size_t count;
	struct bix_part *lru_head, *lru_tail;
	uint64_t drops;
	/* Per slot of partitions (hashed, held or not: a dropped partition
	 * is freed), the drops count at its latest drop. */
	uint64_t dropped_at[BIX_DROP_SLOTS];
};

static size_t obj_bytes(const struct bix_obj *o)
{
	return sizeof *o + strlen(o->key) + 1;
}

static struct bix_obj *obj_new(struct batch_index *ix, const char *key, uint64_t size)
{
	size_t len = strlen(key);
	struct bix_obj *o = malloc(sizeof *o + len + 1);
	if (!o)
		return NULL;
	o->refs = 1;
	o->size = size;
	memcpy(o->key, key, len + 1);
	ix->bytes += obj_bytes(o);
	return o;
}

static void obj_unref(struct batch_index *ix, struct bix_obj *o)
{
	if (!o)
		return;
	SL_ASSERT(o->refs > 0);
	if (--o->refs)
		return;
	SL_ASSERT(ix->bytes >= obj_bytes(o));
	ix->bytes -= obj_bytes(o);
	free(o);
}

static uint64_t part_hash(int64_t tid, int32_t p)
{
	uint64_t h = (uint64_t)tid * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uint32_t)p * 0xc2b2ae3d27d4eb4full;
	return h ^ h >> 29;
}

static size_t bucket_of(const struct batch_index *ix, int64_t tid, int32_t p)
{
	return (size_t)part_hash(tid, p) & (ix->bucket_count - 1);
}

static size_t drop_slot(int64_t tid, int32_t p)
{
	return (size_t)(part_hash(tid, p) >> 32) % BIX_DROP_SLOTS;
}

static struct bix_part *part_find(const struct batch_index *ix, int64_t tid, int32_t p)
{
	for (struct bix_part *x = ix->buckets[bucket_of(ix, tid, p)]; x; x = x->hash_next)
		if (x->tid == tid && x->partition == p)
			return x;
	return NULL;
}

static struct bix_row *row_at(const struct bix_run *x, size_t i)
{
	return &x->ring[(x->head + i) % x->cap];
}

static void lru_unlink(struct batch_index *ix, struct bix_part *x)
{
	if (x->lru_prev) x->lru_prev->lru_next = x->lru_next; else ix->lru_head = x->lru_next;
	if (x->lru_next) x->lru_next->lru_prev = x->lru_prev; else ix->lru_tail = x->lru_prev;
	x->lru_prev = x->lru_next = NULL;
}

static void lru_front(struct batch_index *ix, struct bix_part *x)
{
	if (ix->lru_head == x)
		return;
	if (x->lru_prev || x->lru_next || ix->lru_tail == x)
		lru_unlink(ix, x);
	x->lru_next = ix->lru_head;
	if (ix->lru_head)
		ix->lru_head->lru_prev = x;
	ix->lru_head = x;
	if (!ix->lru_tail)
		ix->lru_tail = x;
}

/* Drop the oldest k rows of x. */
static void drop_front(struct batch_index *ix, struct bix_run *x, size_t k)
{
	for (size_t i = 0; i < k; i++) {
		obj_unref(ix, row_at(x, 0)->obj);
		x->head = (x->head + 1) % x->cap;
		x->n--;
	}
	if (x->n == 0)
		x->head = 0;
}

static void run_free(struct batch_index *ix, struct bix_run *x)
{
	drop_front(ix, x, x->n);
	ix->bytes -= x->cap * sizeof *x->ring;
	free(x->ring);
	*x = (struct bix_run){ 0 };
}

static void part_free(struct batch_index *ix, struct bix_part *x)
{
	run_free(ix, &x->tail);
	run_free(ix, &x->behind);
	struct bix_part **pp = &ix->buckets[bucket_of(ix, x->tid, x->partition)];
	while (*pp != x)
		pp = &(*pp)->hash_next;
	*pp = x->hash_next;
	lru_unlink(ix, x);
	ix->count--;
	ix->bytes -= sizeof *x;
	free(x);
}

static int buckets_grow(struct batch_index *ix)
{
	size_t count = ix->bucket_count * 2;
	struct bix_part **b = calloc(count, sizeof *b);
	if (!b)
		return SL_ENOMEM;
	struct bix_part **old = ix->buckets;
	size_t old_count = ix->bucket_count;
	ix->buckets = b;
	ix->bucket_count = count;
	for (size_t i = 0; i < old_count; i++) {
		for (struct bix_part *x = old[i], *next; x; x = next) {
			next = x->hash_next;
			size_t h = bucket_of(ix, x->tid, x->partition);
			x->hash_next = b[h];
			b[h] = x;
		}
	}
	ix->bytes += (count - old_count) * sizeof *b;
	free(old);
	return 0;
}

static struct bix_part *part_new(struct batch_index *ix, int64_t tid, int32_t p)
{
	if (ix->count >= ix->bucket_count && buckets_grow(ix) != 0)
		return NULL;
	struct bix_part *x = calloc(1, sizeof *x);
	if (!x)
		return NULL;
	x->tid = tid;
	x->partition = p;
	size_t h = bucket_of(ix, tid, p);
	x->hash_next = ix->buckets[h];
	ix->buckets[h] = x;
	ix->count++;
	ix->bytes += sizeof *x;
	lru_front(ix, x);
	return x;
}

/* Room for want rows in x's ring (want <= rows_max). */
static int ring_reserve(struct batch_index *ix, struct bix_run *x, size_t want)
{
	if (want <= x->cap)
		return 0;
	size_t cap = x->cap ? x->cap : 8;
	while (cap < want)
		cap *= 2;
	if (cap > ix->rows_max)
		cap = ix->rows_max;
	struct bix_row *ring = malloc(cap * sizeof *ring);
	if (!ring)
		return SL_ENOMEM;
	for (size_t i = 0; i < x->n; i++)
		ring[i] = *row_at(x, i);
	ix->bytes += (cap - x->cap) * sizeof *ring;
	free(x->ring);
	x->ring = ring;
	x->cap = cap;
	x->head = 0;
	return 0;
}

/* Over bytes_max: drop the least recently used partitions, keep (the one
 * just fed) last of all. */
static void evict(struct batch_index *ix, struct bix_part *keep)
{
	while (ix->bytes > ix->bytes_max && ix->lru_tail) {
		struct bix_part *x = ix->lru_tail;
		if (x == keep) {
			if (x->lru_prev) {
				/* Every other partition is more recent: take the next one. */
				x = x->lru_prev;
			} else {
				part_free(ix, x); /* it alone is too big */
				return;
			}
		}
		part_free(ix, x);
	}
}

static int64_t run_end(const struct bix_run *x)
{
	return row_at(x, x->n - 1)->last_offset + 1;
}

/* Append rows[0..n) (contiguous, continuing x) to run x of one object o,
 * dropping its oldest rows past rows_max. */
static int run_append(struct batch_index *ix, struct bix_run *x, struct bix_obj *o,
		      const struct batch_index_row *rows, size_t n)
{
	if (n > ix->rows_max) {
		rows += n - ix->rows_max;
		n = ix->rows_max;
		drop_front(ix, x, x->n);
	}
	if (x->n + n > ix->rows_max)
		drop_front(ix, x, x->n + n - ix->rows_max);
	if (ring_reserve(ix, x, x->n + n) != 0)
		return SL_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		SL_ASSERT(i == 0 || rows[i].base_offset == rows[i - 1].last_offset + 1);
		o->refs++;
		*row_at(x, x->n++) = (struct bix_row){
			.base_offset = rows[i].base_offset, .last_offset = rows[i].last_offset,
			.byte_offset = rows[i].byte_offset, .max_timestamp = rows[i].max_timestamp,
			.obj = o, .length = rows[i].length, .record_count = rows[i].record_count,
		};
	}
	return 0;
}

struct batch_index *batch_index_new(size_t bytes_max, size_t rows_max)
{
	struct batch_index *ix = calloc(1, sizeof *ix);
	if (!ix)
		return NULL;
	ix->bucket_count = 64;
	ix->buckets = calloc(ix->bucket_count, sizeof *ix->buckets);
	if (!ix->buckets) {
		free(ix);
		return NULL;
	}
	ix->bytes_max = bytes_max;
	ix->rows_max = rows_max ? rows_max : 1;
	ix->bytes = sizeof *ix + ix->bucket_count * sizeof *ix->buckets;
	return ix;
}

void batch_index_free(struct batch_index *ix)
{
	if (!ix)
		return;
	while (ix->lru_head)
		part_free(ix, ix->lru_head);
	free(ix->buckets);
	free(ix);
}

int batch_index_append(struct batch_index *ix, int64_t tid, int32_t p, const char *object_key,
		       uint64_t object_size, const struct batch_index_row *rows, size_t n)
{
	if (n == 0)
		return 0;
	struct bix_part *x = part_find(ix, tid, p);
	/* Rows that end before the run does came late (in a cluster, another
	 * agent's notice overtook this agent's commit): their offsets were
	 * assigned once, so the run holds them or has moved past them. */
	if (x && x->tail.n && rows[n - 1].last_offset < run_end(&x->tail))
		return 0;
	if (x && x->tail.n && run_end(&x->tail) != rows[0].base_offset)
		drop_front(ix, &x->tail, x->tail.n); /* a gap: start over from these rows */
	if (!x && !(x = part_new(ix, tid, p)))
		return SL_ENOMEM;
	lru_front(ix, x);
	struct bix_obj *o = obj_new(ix, object_key, object_size);
	if (!o)
		goto out_drop;
	/* The newest rows_max of what it holds and these. */
	int rc = run_append(ix, &x->tail, o, rows, n);
	obj_unref(ix, o); /* the creation's reference */
	if (rc)
		goto out_drop;
	evict(ix, x);
	return 0;
out_drop:
	part_free(ix, x);
	return SL_ENOMEM;
}

/* Prepend store rows[0..take) (ascending; they end where run x begins, or
 * x is empty) to x. Returns how many were taken (all but those past a
 * key copy that failed). */
static size_t run_prepend(struct batch_index *ix, struct bix_run *x,
			  const struct meta_batch_row *rows, size_t take)
{
	if (ring_reserve(ix, x, x->n + take) != 0)
		return 0;
	struct bix_obj *o = NULL;
	size_t taken = 0;
	for (size_t i = take; i-- > 0;) {
		const struct meta_batch_row *r = &rows[i];
		if (!o || strcmp(o->key, r->object_key) != 0) {
			struct bix_obj *next = obj_new(ix, r->object_key, r->object_size);
			obj_unref(ix, o);
			if (!(o = next))
				break; /* the rows taken so far stay: still a run */
		}
		o->refs++;
		x->head = (x->head + x->cap - 1) % x->cap;
		x->n++;
		*row_at(x, 0) = (struct bix_row){
			.base_offset = r->base_offset, .last_offset = r->last_offset,
			.byte_offset = r->byte_offset, .max_timestamp = r->max_timestamp,
			.obj = o, .length = r->length, .record_count = r->record_count,
		};
		taken++;
	}
	obj_unref(ix, o);
	return taken;
}

/* Append store rows[0..n) (continuing run x) to it, the newest rows_max
 * kept. Returns how many were taken. */
static size_t run_append_store(struct batch_index *ix, struct bix_run *x,
			       const struct meta_batch_row *rows, size_t n)
{
	struct batch_index_row one[16];
	size_t taken = 0;
	while (taken < n) {
		/* Runs of one object, at most 16 rows at a time. */
		const char *key = rows[taken].object_key;
		size_t k = 0;
		while (taken + k < n && k < 16 && !strcmp(rows[taken + k].object_key, key)) {
			const struct meta_batch_row *r = &rows[taken + k];
			one[k++] = (struct batch_index_row){ r->base_offset, r->last_offset, r->byte_offset,
							     r->length, r->record_count, r->max_timestamp };
		}
		struct bix_obj *o = obj_new(ix, key, rows[taken].object_size);
		if (!o)
			break;
		int rc = run_append(ix, x, o, one, k);
		obj_unref(ix, o);
		if (rc)
			break;
		taken += k;
	}
	return taken;
}

size_t batch_index_seed(struct batch_index *ix, int64_t tid, int32_t p,
			const struct meta_batch_row *rows, size_t n, int64_t high_watermark)
{
	/* The rows that are contiguous from rows[0] (the store's rows of a
	 * partition always are; this is cheap insurance). */
	size_t m = n;
	for (size_t i = 1; i < n; i++) {
		if (rows[i].base_offset != rows[i - 1].last_offset + 1) {
			m = i;
			break;
		}
	}
	if (m == 0)
		return 0;
	struct bix_part *x = part_find(ix, tid, p);
	size_t take = 0;
	bool to_tail = false;
	if (x && x->tail.n && rows[0].base_offset == run_end(&x->tail)) {
		/* After the tail: commits it did not see (another agent's). */
		lru_front(ix, x);
		size_t taken = run_append_store(ix, &x->tail, rows, m);
		evict(ix, x);
		return taken;
	}
	if (x && x->tail.n) {
		/* Before the tail, reaching its first offset. */
		int64_t first = row_at(&x->tail, 0)->base_offset;
		while (take < m && rows[take].last_offset < first)
			take++;
		to_tail = take > 0 && rows[take - 1].last_offset + 1 == first;
		if (!to_tail)
			m = take; /* the rows below the tail go behind it */
	} else if (rows[m - 1].last_offset + 1 == high_watermark) {
		take = m;
		to_tail = true;
	}
	if (!to_tail && m == 0)
		return 0;
	if (!x && !(x = part_new(ix, tid, p)))
		return 0;
	lru_front(ix, x);
	size_t taken = 0;
	if (to_tail) {
		size_t room = ix->rows_max - x->tail.n;
		if (take > room) {
			/* Keep the newest: the rows nearest the tail. */
			rows += take - room;
			take = room;
		}
		taken = take ? run_prepend(ix, &x->tail, rows, take) : 0;
	} else {
		/* Behind the tail: continue the run there, or start it over. */
		struct bix_run *b = &x->behind;
		size_t skip = 0;
		if (b->n) {
			int64_t end = run_end(b);
			while (skip < m && rows[skip].last_offset < end)
				skip++;
			if (skip == 0 || rows[skip - 1].last_offset + 1 != end ||
			    row_at(b, 0)->base_offset > rows[0].base_offset) {
				drop_front(ix, b, b->n);
				skip = 0;
			}
		}
		taken = run_append_store(ix, b, rows + skip, m - skip);
	}
	if (x->tail.n == 0 && x->behind.n == 0) {
		part_free(ix, x);
		return 0;
	}
	evict(ix, x);
	return taken;
}

/* The first row of x with last_offset >= offset (x->n if none). */
static size_t row_search(const struct bix_run *x, int64_t offset)
{
	size_t lo = 0, hi = x->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (row_at(x, mid)->last_offset < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool batch_index_rows(struct batch_index *ix, int64_t tid, int32_t p, int64_t offset,
		      struct meta_batch_row *out, size_t cap, size_t *n, int64_t *end)
{
	*n = 0;
	struct bix_part *x = part_find(ix, tid, p);
	if (!x)
		return false;
	const struct bix_run *run = &x->tail;
	if (!run->n || offset < row_at(run, 0)->base_offset) {
		/* Behind the tail: only inside the run there. */
		run = &x->behind;
		if (!run->n || offset < row_at(run, 0)->base_offset || offset >= run_end(run))
			return false;
	}
	lru_front(ix, x);
	for (size_t i = row_search(run, offset); i < run->n && *n < cap; i++) {
		const struct bix_row *r = row_at(run, i);
		struct meta_batch_row *o = &out[(*n)++];
		o->base_offset = r->base_offset;
		o->last_offset = r->last_offset;
		o->byte_offset = r->byte_offset;
		o->length = r->length;
		o->record_count = r->record_count;
		o->max_timestamp = r->max_timestamp;
		o->object_size = r->obj->size;
		size_t len = strlen(r->obj->key);
		if (len >= sizeof o->object_key)
			len = sizeof o->object_key - 1;
		memcpy(o->object_key, r->obj->key, len);
		o->object_key[len] = 0;
	}
	if (end)
		*end = run_end(run);
	return true;
}

void batch_index_trim(struct batch_index *ix, int64_t tid, int32_t p, int64_t log_start)
{
	struct bix_part *x = part_find(ix, tid, p);
	if (!x)
		return;
	drop_front(ix, &x->tail, row_search(&x->tail, log_start));
	drop_front(ix, &x->behind, row_search(&x->behind, log_start));
	if (x->tail.n == 0 && x->behind.n == 0)
		part_free(ix, x);
}

void batch_index_drop(struct batch_index *ix, int64_t tid, int32_t p)
{
	struct bix_part *x = part_find(ix, tid, p);
	ix->dropped_at[drop_slot(tid, p)] = ++ix->drops;
	if (x)
		part_free(ix, x);
}

uint64_t batch_index_drops(const struct batch_index *ix)
{
	return ix->drops;
}

bool batch_index_dropped_since(const struct batch_index *ix, int64_t tid, int32_t p,
			       uint64_t drops)
{
	return ix->dropped_at[drop_slot(tid, p)] > drops;
}

void batch_index_drop_topic(struct batch_index *ix, int64_t tid, int32_t partition_count)
{
	for (int32_t p = 0; p < partition_count; p++)
		batch_index_drop(ix, tid, p);
}

size_t batch_index_bytes(const struct batch_index *ix)
{
	return ix->bytes;
}

size_t batch_index_partitions(const struct batch_index *ix)
{
	return ix->count;
}

bool batch_index_range(const struct batch_index *ix, int64_t tid, int32_t p, int64_t *first,
		       int64_t *end)
{
	const struct bix_part *x = part_find(ix, tid, p);
	if (!x || x->tail.n == 0)
		return false;
	*first = row_at(&x->tail, 0)->base_offset;
	*end = run_end(&x->tail);
	return true;
}
