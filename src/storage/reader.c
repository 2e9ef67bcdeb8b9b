/* reader.c — the read path: for each slot, the batch rows at or after its
 * offset (rows of up to 64 partitions in one metadata lookup), their bytes
 * from the read cache or ranged reads of the store, baseOffset and the
 * leader epoch patched, Kafka's size rules on which batches go, and
 * read-ahead into the cache.
 *
 * The records are not copied into one buffer: a slot's records are
 * pieces, straight from the cached objects and from rf->data. Cached
 * bytes are patched in place and referenced (cache_obj_ref) until the
 * hold is released; only runs of cached bytes under READER_PIECE_BYTES_MIN
 * (or of evicted objects past the pin budget) are copied, into rf->data,
 * where the store reads of this fetch land too.
 *
 * Batches missing from the read cache are read through the store's
 * asynchronous get (adjacent ranges coalesced); the loop never blocks.
 * Where a slot's budget runs out, the batches it continues with that are
 * not in memory already are loaded into the read cache ahead of the
 * consumer's next fetch (read-ahead), and a fetch that misses a range
 * being loaded (one starting at its batch, or earlier in the object)
 * waits for it rather than reading it twice.
 *
 * The long poll (min_bytes, max_wait_ms) is not here but in api/fetch.c:
 * it is the request's semantics, it needs the request to answer and the
 * agent's waiter list that commits wake, and between gathers the reader
 * holds nothing that waiting would need. The reader only reads what is
 * visible now. */
#include "storage/reader.h"

#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/grow.h"
#include "base/limits.h"
#include "base/log.h"
#include "meta/meta.h"
#include "objstore/objstore.h"
#include "storage/batch.h"
#include "storage/batch_index.h"
#include "storage/cache.h"

/* Tuning knobs, not limits (none bounds memory or work a client can ask
 * for beyond what SL_FETCH_RESPONSE_BYTES_MAX does), so they stay here. */

/* Rows read per metadata query while filling one slot. */
#define READER_ROWS_PER_QUERY 64
/* Slots per batch lookup (meta_batches_from_many), and rows each gets in
 * it: a catch-up fetch of 64 partitions costs one lookup. */
#define READER_BULK_PARTITIONS 64
#define READER_BULK_ROWS 16
/* Read-ahead: when a slot's budget in a fetch runs out, the batches it
 * continues with are loaded into the read cache (ranges of at most
 * READER_READAHEAD_RUN_MAX, adjacent batches of one object in one get), as
 * many bytes as it returned now, between 1 and 8 MiB, so that the
 * consumer's next fetch of it finds them in memory. The cache bounds
 * what is in flight to half its size. */
#define READER_READAHEAD_MIN (1024 * 1024)
#define READER_READAHEAD_MAX (8 * 1024 * 1024)
#define READER_READAHEAD_RUN_MAX (4 * 1024 * 1024)
/* Row lookups (of READER_ROWS_PER_QUERY) one read-ahead makes at most past
 * the rows it has: what is in memory already is skipped, not loaded. */
#define READER_READAHEAD_LOOKUPS 4
/* Slots that got no room in a full response whose next batches are
 * loaded ahead as well (the client's next fetch puts them first). */
#define READER_READAHEAD_PARTITIONS 1

struct reader {
	uv_loop_t *loop;
	struct objstore *store;
	struct meta *meta;
	struct cache *cache;
	struct batch_index *index;
	size_t pinned_evicted_bytes_max;
};

/* A batch that was not in the read cache: read from the store into data
 * at data_off, then patched. */
struct reader_read {
	char key[META_OBJECT_KEY_BYTES];
	uint64_t byte_offset;
	uint32_t length;
	size_t data_off;
	int64_t base_offset;
	size_t slot;
	int err;
};

/* A piece of a slot's records, in wire order: bytes of a cached object
 * (referenced), or of rf->data. */
struct reader_piece {
	struct cache_obj *obj; /* holds a reference; NULL: rf->data at off */
	const uint8_t *ptr;    /* obj: into obj->data */
	size_t off;
	size_t len;
};

struct reader_fetch {
	struct reader *r;
	struct reader_slot *slots;
	size_t n;
	struct kbuf data;             /* records of every slot */
	struct reader_piece *pieces;  /* every slot's, in slot order */
	size_t piece_count, piece_cap;
	struct reader_piece run;      /* cached bytes being gathered into a piece */
	struct meta_batch_query bulk_q[READER_BULK_PARTITIONS];
	struct meta_batch_row *bulk_rows; /* READER_BULK_PARTITIONS * READER_BULK_ROWS */
	bool bulk_failed;
	struct reader_read *reads;    /* cache misses of the last gather */
	size_t read_count, read_cap;
	size_t reads_pending;         /* ranges being read */
	size_t cur_slot;              /* slot being gathered */
	size_t stop_slot;             /* read_slot: its budget ran out (or SIZE_MAX), */
	int64_t stop_offset;          /* where, */
	size_t stop_bytes;            /* and after how many bytes */
	size_t loads_pending;         /* read-ahead loads waited on */
	bool no_load;                 /* waited once: read the rest by ranges */
	reader_fn loaded, done;
	void *loaded_arg, *done_arg;
};

/* What a response's pieces point into, released when its write is done
 * (or the response dropped): rf->data's buffer and the cached objects. */
struct reader_hold {
	uint8_t *data;
	size_t cap;
	struct reader_piece *pieces; /* each holds a reference (or none) */
	size_t n;
};

/* slot.query: an index into bulk_q, or one of these. */
enum {
	QUERY_NONE = -1,    /* not looked up yet */
	QUERY_UNWANTED = -2, /* nothing to read */
	QUERY_FAILED = -3,  /* the batch lookup failed: per slot */
	QUERY_INDEX = -4,   /* the batch index has its rows */
};

int reader_new(uv_loop_t *loop, struct objstore *store, struct meta *meta, struct cache *cache,
	       const struct reader_config *cfg, struct reader **out)
{
	struct reader *r = malloc(sizeof *r);
	if (!r)
		return SL_ENOMEM;
	*r = (struct reader){ loop, store, meta, cache, cfg->index, cfg->pinned_evicted_bytes_max };
	*out = r;
	return 0;
}

void reader_free(struct reader *r)
{
	free(r);
}

/* One slot's read-ahead: bytes wanted, and counted so far (loaded now,
 * or in memory or on their way already). */
struct ahead {
	size_t want, loaded;
	bool stop; /* enough, the partition's end, or no room to load */
};

/* Load what rows[0..n) continue with (the slot's budget ran out at
 * rows[0]) into the cache, unless it is there or on its way. */
static void read_ahead(struct reader_fetch *rf, const struct reader_slot *s,
		       const struct meta_batch_row *rows, size_t n, struct ahead *ah)
{
	struct reader *r = rf->r;
	int64_t hw = s->high_watermark;
	size_t i = 0;
	while (i < n && !ah->stop) {
		const struct meta_batch_row *first = &rows[i];
		if (ah->loaded >= ah->want || first->base_offset >= hw) {
			ah->stop = true;
			break;
		}
		/* Bytes in memory already count as loaded and are not read
		 * again: the whole object (the write path puts every commit
		 * in: a consumer slightly behind a tail reads from there), or
		 * ranges loaded earlier, or being loaded, that hold the batch. */
		if (cache_contains(r->cache, first->object_key) ||
		    cache_ahead_end(r->cache, first->object_key, first->byte_offset) >=
			    first->byte_offset + first->length) {
			ah->loaded += first->length;
			i++;
			continue;
		}
		uint64_t len = first->length;
		size_t j = i + 1;
		while (j < n && rows[j].base_offset < hw &&
		       !strcmp(rows[j].object_key, first->object_key) &&
		       rows[j].byte_offset == first->byte_offset + len &&
		       len + rows[j].length <= READER_READAHEAD_RUN_MAX &&
		       cache_ahead_end(r->cache, rows[j].object_key, rows[j].byte_offset) ==
			       rows[j].byte_offset) {
			len += rows[j].length;
			j++;
		}
		int rc = cache_load(r->cache, r->store, r->loop, first->object_key,
				    first->byte_offset, (size_t)len, NULL, NULL);
		if (rc < 0) {
			ah->stop = true; /* no cache, no room in flight, or the store refused */
			break;
		}
		ah->loaded += len;
		i = j;
	}
	if (ah->loaded >= ah->want)
		ah->stop = true;
}

/* Whether the batch index holds slot s's rows from offset on (up to its
 * high watermark). */
static bool index_covers(const struct reader *r, const struct reader_slot *s, int64_t offset)
{
	int64_t first, end;
	return r->index && batch_index_range(r->index, s->tid, s->partition, &first, &end) &&
	       first <= offset && end >= s->high_watermark;
}

/* Rows of slot s's partition from offset on: from the batch index when
 * it holds them, else from the store. */
static int lookup_rows(struct reader_fetch *rf, const struct reader_slot *s, int64_t offset,
		       struct meta_batch_row *rows, size_t cap, size_t *n)
{
	int64_t tid = s->tid, end;
	int32_t p = s->partition;
	if (rf->r->index && batch_index_rows(rf->r->index, tid, p, offset, rows, cap, n, &end) &&
	    (*n > 0 || end >= s->high_watermark))
		return 0;
	struct meta_batch_query q = { .tid = tid, .partition = p, .offset = offset, .max_rows = cap };
	int rc = meta_batches_from_many(rf->r->meta, &q, 1, rows, cap);
	if (rc != SL_EUNSUPPORTED) {
		*n = q.n;
		return rc;
	}
	return meta_batches_from(rf->r->meta, tid, p, offset, cap, rows, n);
}

/* Drop a stored piece's pin and reference. */
static void piece_release(struct reader_piece *p)
{
	if (!p->obj)
		return;
	cache_obj_unpin(p->obj);
	cache_obj_unref(p->obj);
}

/* Drop every piece (and the references they hold). */
static void pieces_reset(struct reader_fetch *rf)
{
	for (size_t i = 0; i < rf->piece_count; i++)
		piece_release(&rf->pieces[i]);
	rf->piece_count = 0;
	cache_obj_unref(rf->run.obj);
	rf->run = (struct reader_piece){ 0 };
}

/* Append a piece to slot rf->cur_slot (taking over p.obj's reference),
 * merged with the one before when it continues it. Out of memory: the
 * fetch fails (rf->data.oom). A piece of a cached buffer comes pinned
 * (cache_obj_pin). */
static void piece_add(struct reader_fetch *rf, struct reader_piece p)
{
	if (rf->piece_count > rf->slots[rf->cur_slot].piece_first) {
		struct reader_piece *last = &rf->pieces[rf->piece_count - 1];
		if (!p.obj && !last->obj && last->off + last->len == p.off) {
			last->len += p.len;
			return;
		}
		if (p.obj && last->obj == p.obj && last->ptr + last->len == p.ptr) {
			last->len += p.len;
			piece_release(&p);
			return;
		}
	}
	if (array_grow(&rf->pieces, &rf->piece_cap, rf->piece_count, sizeof *rf->pieces, 64) != 0) {
		piece_release(&p);
		rf->data.oom = true;
		return;
	}
	rf->pieces[rf->piece_count++] = p;
}

/* The run of cached bytes ends: a piece of its own, or copied into
 * rf->data when short or when its buffer may not be pinned. */
static void run_flush(struct reader_fetch *rf)
{
	struct reader_piece p = rf->run;
	rf->run = (struct reader_piece){ 0 };
	if (!p.obj)
		return;
	if (p.len >= READER_PIECE_BYTES_MIN && cache_obj_pin(p.obj, rf->r->pinned_evicted_bytes_max)) {
		piece_add(rf, p);
		return;
	}
	uint8_t *dst = kbuf_reserve(&rf->data, p.len);
	if (dst) {
		memcpy(dst, p.ptr, p.len);
		piece_add(rf, (struct reader_piece){ .off = rf->data.len, .len = p.len });
		rf->data.len += p.len;
	}
	cache_obj_unref(p.obj);
}

/* len cached bytes at ptr in o (patched already) come next. */
static void run_add(struct reader_fetch *rf, struct cache_obj *o, const uint8_t *ptr, size_t len)
{
	if (rf->run.obj == o && rf->run.ptr + rf->run.len == ptr) {
		rf->run.len += len;
		return;
	}
	run_flush(rf);
	cache_obj_ref(o);
	rf->run = (struct reader_piece){ .obj = o, .ptr = ptr, .len = len };
}

/* Fill slot k's records starting at offset: bytes from the read cache
 * (whole objects, or ranges loaded ahead) are patched in place and
 * become pieces (short runs copied), the rest become reader_reads. budget
 * is how many bytes it may add; the first batch of the response is added
 * even when larger (first_in_response).
 * Where the budget runs out, rf->stop_* say where. rows/n are rows
 * already looked up (full: there may be more). Returns bytes added;
 * *err is set when there are none because a lookup failed. */
static size_t read_slot(struct reader_fetch *rf, size_t k, int64_t offset, size_t budget,
			bool first_in_response, const struct meta_batch_row *rows, size_t n,
			bool full, int *err)
{
	struct reader *r = rf->r;
	const struct reader_slot *s = &rf->slots[k];
	struct kbuf *out = &rf->data;
	struct meta_batch_row more[READER_ROWS_PER_QUERY];
	/* The cached range the previous batch came from: the next batches of
	 * the partition usually follow it in the same object. */
	struct cache_obj *range = NULL;
	const char *range_key = NULL;
	size_t added = 0;
	if (!rows) {
		int rc = lookup_rows(rf, s, offset, more, READER_ROWS_PER_QUERY, &n);
		if (rc != 0) {
			*err = rc;
			return 0;
		}
		rows = more;
		full = n == READER_ROWS_PER_QUERY;
	}
	for (;;) {
		for (size_t i = 0; i < n; i++) {
			const struct meta_batch_row *row = &rows[i];
			/* A commit the loop has not seen yet (its rows are already
			 * readable): not visible before its producer is answered. */
			if (row->base_offset >= s->high_watermark)
				goto out;
			bool fits = added + row->length <= budget || (first_in_response && added == 0);
			if (!fits) {
				rf->stop_slot = k;
				rf->stop_offset = row->base_offset;
				rf->stop_bytes = added;
				goto out;
			}
			uint8_t *src = NULL;
			struct cache_obj *from = NULL;
			bool in_range = range && !strcmp(range_key, row->object_key) &&
					row->byte_offset >= range->base &&
					row->byte_offset + row->length <= range->base + range->len;
			struct cache_obj *o = NULL;
			if (in_range) {
				src = range->data + (row->byte_offset - range->base);
				from = range;
			} else if ((o = cache_get(r->cache, row->object_key)) &&
				   row->byte_offset + row->length <= o->len) {
				src = o->data + row->byte_offset;
				from = o;
			} else if ((o = (cache_obj_unref(o), cache_get_range(r->cache, row->object_key,
										row->byte_offset))) &&
				   row->byte_offset + row->length <= o->base + o->len) {
				/* A range loaded from this batch, or one that
				 * holds it (an earlier fetch stopped inside it). */
				cache_obj_unref(range);
				range = o;
				range_key = row->object_key;
				o = NULL;
				src = range->data + (row->byte_offset - range->base);
				from = range;
			}
			if (src) {
				/* In place: the same batch always gets the same base
				 * offset and epoch (outside its CRC), and nothing
				 * reads the producer's values from the cache. */
				batch_patch(src, row->base_offset, 0);
				run_add(rf, from, src, row->length);
				/* A range read to its end will not be read again:
				 * make room for the next ones at once. */
				if (range && src >= range->data && src < range->data + range->len &&
				    row->byte_offset + row->length == range->base + range->len)
					cache_drop_range(r->cache, row->object_key, range->base);
			} else {
				run_flush(rf);
				if (!kbuf_reserve(out, row->length) ||
				    array_grow(&rf->reads, &rf->read_cap, rf->read_count,
					       sizeof *rf->reads, 16) != 0) {
					cache_obj_unref(o);
					goto out;
				}
				struct reader_read *rd = &rf->reads[rf->read_count++];
				memcpy(rd->key, row->object_key, sizeof rd->key);
				rd->byte_offset = row->byte_offset;
				rd->length = row->length;
				rd->data_off = out->len;
				rd->base_offset = row->base_offset;
				rd->slot = k;
				rd->err = 0;
				piece_add(rf, (struct reader_piece){ .off = out->len, .len = row->length });
				out->len += row->length;
			}
			cache_obj_unref(o);
			added += row->length;
			offset = row->last_offset + 1;
		}
		if (!full || added >= budget)
			break;
		/* more[] is about to be overwritten: range_key may point into it. */
		if (range && range_key >= (const char *)more &&
		    range_key < (const char *)(more + READER_ROWS_PER_QUERY)) {
			cache_obj_unref(range);
			range = NULL;
		}
		int rc = lookup_rows(rf, s, offset, more, READER_ROWS_PER_QUERY, &n);
		if (rc != 0) {
			if (!added)
				*err = rc;
			break;
		}
		rows = more;
		full = n == READER_ROWS_PER_QUERY;
		if (n == 0)
			break;
	}
out:
	run_flush(rf);
	cache_obj_unref(range);
	return added;
}

/* Look up the rows of the next (up to) READER_BULK_PARTITIONS slots that
 * have data, from slot k on, in one call. */
static void bulk_lookup(struct reader_fetch *rf, size_t k)
{
	struct reader *r = rf->r;
	if (!rf->bulk_rows && !rf->bulk_failed) {
		rf->bulk_rows = malloc(sizeof *rf->bulk_rows * READER_BULK_PARTITIONS * READER_BULK_ROWS);
		rf->bulk_failed = !rf->bulk_rows;
	}
	size_t nq = 0;
	size_t ks[READER_BULK_PARTITIONS];
	for (size_t idx = k; idx < rf->n && nq < READER_BULK_PARTITIONS; idx++) {
		const struct reader_slot *s = &rf->slots[idx];
		if (s->query != QUERY_NONE)
			continue;
		struct meta_batch_query *q = &rf->bulk_q[nq];
		q->tid = s->tid;
		q->partition = s->partition;
		q->offset = s->offset;
		q->max_rows = READER_BULK_ROWS;
		ks[nq++] = idx;
	}
	int rc = rf->bulk_failed ? SL_ENOMEM
				 : meta_batches_from_many(r->meta, rf->bulk_q, nq, rf->bulk_rows,
							  READER_BULK_PARTITIONS * READER_BULK_ROWS);
	if (rc)
		rf->bulk_failed = true; /* per slot from now on */
	for (size_t i = 0; i < nq; i++)
		rf->slots[ks[i]].query = rc ? QUERY_FAILED : (int32_t)i;
	if (rc)
		return;
	/* One reservation for what these rows will put in rf->data, not a
	 * growth per batch: those the cache lacks, and small ones (copied).
	 * A partition's rows mostly follow one another in one object: what
	 * the cache holds of it is looked up once. */
	size_t sum = 0;
	for (size_t i = 0; i < nq; i++) {
		const char *key = NULL;
		uint64_t held_from = 0, held_to = 0; /* cached bytes of key */
		for (size_t j = 0; j < rf->bulk_q[i].n; j++) {
			const struct meta_batch_row *row = &rf->bulk_rows[rf->bulk_q[i].first + j];
			uint64_t end = row->byte_offset + row->length;
			if (!key || strcmp(key, row->object_key) || row->byte_offset < held_from ||
			    end > held_to) {
				key = row->object_key;
				held_from = row->byte_offset;
				held_to = cache_contains(r->cache, key)
						  ? UINT64_MAX
						  : cache_range_end(r->cache, key, row->byte_offset);
			}
			if (row->length < READER_PIECE_BYTES_MIN || end > held_to)
				sum += row->length;
		}
	}
	if (sum > SL_FETCH_RESPONSE_BYTES_MAX)
		sum = SL_FETCH_RESPONSE_BYTES_MAX;
	kbuf_reserve(&rf->data, sum);
}

/* Load ahead what slot k holds from offset on. Where the rows looked up
 * are all in memory (the fetch stopped inside a range loaded earlier),
 * more are looked up past them, a few lookups at most, so that the next
 * range is on its way before the current one is read. */
static void read_ahead_slot(struct reader_fetch *rf, size_t k, int64_t offset, size_t want)
{
	struct meta_batch_row rows[READER_ROWS_PER_QUERY];
	const struct reader_slot *s = &rf->slots[k];
	if (want < READER_READAHEAD_MIN)
		want = READER_READAHEAD_MIN;
	if (want > READER_READAHEAD_MAX)
		want = READER_READAHEAD_MAX;
	struct ahead ah = { .want = want };
	if (s->query >= 0) {
		/* The batch lookup has its rows from the fetch offset on. */
		struct meta_batch_query *q = &rf->bulk_q[s->query];
		const struct meta_batch_row *r = rf->bulk_rows + q->first;
		size_t skip = 0;
		while (skip < q->n && r[skip].last_offset < offset)
			skip++;
		if (skip < q->n) {
			read_ahead(rf, s, r + skip, q->n - skip, &ah);
			if (q->n < q->max_rows)
				return; /* the partition's end */
			offset = r[q->n - 1].last_offset + 1;
		}
	}
	for (int l = 0; l < READER_READAHEAD_LOOKUPS && !ah.stop; l++) {
		size_t n = 0;
		if (lookup_rows(rf, s, offset, rows, READER_ROWS_PER_QUERY, &n) != 0 ||
		    n == 0)
			return;
		read_ahead(rf, s, rows, n, &ah);
		if (n < READER_ROWS_PER_QUERY)
			return;
		offset = rows[n - 1].last_offset + 1;
	}
}

int reader_fetch_new(struct reader *r, struct arena *arena, struct reader_slot *slots, size_t n,
		     struct reader_fetch **out)
{
	struct reader_fetch *rf = arena_alloc(arena, sizeof *rf);
	if (!rf)
		return SL_ENOMEM;
	rf->r = r;
	rf->slots = slots;
	rf->n = n;
	kbuf_init(&rf->data);
	*out = rf;
	return 0;
}

void reader_fetch_end(struct reader_fetch *rf)
{
	pieces_reset(rf);
	free(rf->pieces);
	rf->pieces = NULL;
	rf->piece_cap = 0;
	kbuf_free(&rf->data);
	free(rf->reads);
	rf->reads = NULL;
	rf->read_count = rf->read_cap = 0;
	free(rf->bulk_rows);
	rf->bulk_rows = NULL;
}

size_t reader_gather(struct reader_fetch *rf, size_t max_bytes, bool read_ahead)
{
	rf->data.len = 0;
	rf->read_count = 0;
	pieces_reset(rf);
	size_t total = 0, ahead_partitions = 0;
	size_t last_stop = SIZE_MAX, last_stop_bytes = 0;
	int64_t last_stop_offset = 0;
	if (max_bytes > SL_FETCH_RESPONSE_BYTES_MAX)
		max_bytes = SL_FETCH_RESPONSE_BYTES_MAX;
	/* Every slot's query is known before the first batch lookup, which
	 * takes the wanted slots from k on. */
	for (size_t k = 0; k < rf->n; k++) {
		struct reader_slot *s = &rf->slots[k];
		s->query = !s->wanted ? QUERY_UNWANTED
			   : index_covers(rf->r, s, s->offset) ? QUERY_INDEX : QUERY_NONE;
		s->bytes = 0;
		s->err = 0;
	}
	size_t k;
	for (k = 0; k < rf->n; k++) {
		struct reader_slot *s = &rf->slots[k];
		s->data_off = rf->data.len;
		s->piece_first = s->piece_end = rf->piece_count;
		if (s->query == QUERY_UNWANTED)
			continue;
		size_t slot_max = s->max_bytes > 0 ? (size_t)s->max_bytes : 0;
		size_t budget = slot_max;
		if (total >= max_bytes)
			budget = 0;
		else if (budget > max_bytes - total)
			budget = max_bytes - total;
		if (s->query == QUERY_NONE && !rf->bulk_failed)
			bulk_lookup(rf, k);
		if (budget == 0 && total > 0) {
			/* No room left: clients rotate the order of their
			 * partitions, so the next fetch most likely starts
			 * here. Load what it will take. */
			if (read_ahead && ahead_partitions < READER_READAHEAD_PARTITIONS) {
				read_ahead_slot(rf, k, s->offset, slot_max < max_bytes ? slot_max : max_bytes);
				ahead_partitions++;
			}
			continue;
		}
		const struct meta_batch_row *rows = NULL;
		size_t n = 0;
		bool full = false;
		if (s->query >= 0) {
			struct meta_batch_query *q = &rf->bulk_q[s->query];
			rows = rf->bulk_rows + q->first;
			n = q->n;
			full = q->n == q->max_rows;
		}
		int err = 0;
		rf->cur_slot = k;
		rf->stop_slot = SIZE_MAX;
		size_t got = read_slot(rf, k, s->offset, budget, total == 0, rows, n, full, &err);
		s->bytes = got;
		s->err = got ? 0 : err;
		s->piece_end = rf->piece_count;
		if (rf->stop_slot == k && got == 0 && total > 0) {
			/* Its first batch did not fit: as above. */
			if (read_ahead && ahead_partitions < READER_READAHEAD_PARTITIONS) {
				read_ahead_slot(rf, k, s->offset, slot_max < max_bytes ? slot_max : max_bytes);
				ahead_partitions++;
			}
		} else if (rf->stop_slot == k) {
			last_stop = k;
			last_stop_offset = rf->stop_offset;
			last_stop_bytes = rf->stop_bytes;
		}
		total += got;
	}
	/* Every slot with data got room: the next fetch most likely
	 * continues the last one that ran out of it. */
	if (read_ahead && ahead_partitions == 0 && last_stop != SIZE_MAX)
		read_ahead_slot(rf, last_stop, last_stop_offset, last_stop_bytes);
	return total;
}

int reader_status(const struct reader_fetch *rf)
{
	return rf->data.oom ? SL_ENOMEM : 0;
}

static int cmp_read(const void *x, const void *y)
{
	const struct reader_read *a = x, *b = y;
	int c = strcmp(a->key, b->key);
	if (c)
		return c;
	return a->byte_offset < b->byte_offset ? -1 : a->byte_offset > b->byte_offset;
}

static void reads_done(struct reader_fetch *rf)
{
	for (size_t i = 0; i < rf->read_count; i++) {
		struct reader_read *rd = &rf->reads[i];
		if (rd->err) {
			/* The slot's data is incomplete: send none of it. */
			rf->slots[rd->slot].err = rd->err;
			rf->slots[rd->slot].bytes = 0;
		} else {
			batch_patch(rf->data.data + rd->data_off, rd->base_offset, 0);
		}
	}
	rf->done(rf->done_arg);
}

/* One coalesced range came back: mark its reads. */
struct range_read {
	struct reader_fetch *rf;
	size_t first, end; /* rf->reads[first, end) */
};

static void range_done(void *arg, int err)
{
	struct range_read *rr = arg;
	struct reader_fetch *rf = rr->rf;
	if (err)
		log_error("reading %s@%llu: %s", rf->reads[rr->first].key,
			  (unsigned long long)rf->reads[rr->first].byte_offset, sl_strerror(err));
	for (size_t k = rr->first; k < rr->end; k++)
		rf->reads[k].err = err;
	free(rr);
	if (--rf->reads_pending == 0)
		reads_done(rf);
}

void reader_read_missing(struct reader_fetch *rf, reader_fn done, void *arg)
{
	rf->done = done;
	rf->done_arg = arg;
	qsort(rf->reads, rf->read_count, sizeof *rf->reads, cmp_read);
	rf->reads_pending = 1; /* held while starting */
	for (size_t i = 0; i < rf->read_count;) {
		struct reader_read *first = &rf->reads[i];
		size_t j = i + 1;
		uint64_t len = first->length;
		while (j < rf->read_count && !strcmp(rf->reads[j].key, first->key) &&
		       rf->reads[j].byte_offset == first->byte_offset + len &&
		       rf->reads[j].data_off == first->data_off + len) {
			len += rf->reads[j].length;
			j++;
		}
		struct range_read *rr = malloc(sizeof *rr);
		int rc = SL_ENOMEM;
		if (rr) {
			*rr = (struct range_read){ rf, i, j };
			rf->reads_pending++;
			rc = objstore_get_start(rf->r->store, rf->r->loop, first->key, first->byte_offset,
						(size_t)len, rf->data.data + first->data_off, range_done, rr);
			if (rc) {
				rf->reads_pending--;
				free(rr);
			}
		}
		if (rc)
			for (size_t k = i; k < j; k++)
				rf->reads[k].err = rc;
		i = j;
	}
	if (--rf->reads_pending == 0)
		reads_done(rf);
}

bool reader_missing(const struct reader_fetch *rf)
{
	return rf->read_count > 0 && !rf->data.oom;
}

void reader_drop_missing(struct reader_fetch *rf)
{
	for (size_t i = 0; i < rf->read_count; i++)
		rf->slots[rf->reads[i].slot].bytes = 0;
	rf->read_count = 0;
}

/* A read-ahead load waited on is done (or failed). */
static void load_done(void *arg, int err)
{
	struct reader_fetch *rf = arg;
	if (--rf->loads_pending)
		return;
	rf->no_load = true;
	rf->loaded(rf->loaded_arg);
}

bool reader_wait_loads(struct reader_fetch *rf, reader_fn loaded, void *arg)
{
	struct reader *r = rf->r;
	rf->loaded = loaded;
	rf->loaded_arg = arg;
	for (size_t i = 0; i < rf->read_count && !rf->no_load && !rf->data.oom; i++)
		if (cache_wait(r->cache, rf->reads[i].key, rf->reads[i].byte_offset, load_done, rf) == 0)
			rf->loads_pending++;
	return rf->loads_pending > 0;
}

const uint8_t *reader_records(const struct reader_fetch *rf, size_t slot)
{
	return rf->data.data ? rf->data.data + rf->slots[slot].data_off : NULL;
}

size_t reader_piece_count(const struct reader_fetch *rf, size_t slot)
{
	return rf->slots[slot].piece_end - rf->slots[slot].piece_first;
}

const uint8_t *reader_piece(const struct reader_fetch *rf, size_t slot, size_t i, size_t *len)
{
	const struct reader_piece *p = &rf->pieces[rf->slots[slot].piece_first + i];
	*len = p->len;
	return p->obj ? p->ptr : rf->data.data + p->off;
}

struct reader_hold *reader_hold_take(struct reader_fetch *rf)
{
	struct reader_hold *h = malloc(sizeof *h);
	if (!h)
		return NULL;
	*h = (struct reader_hold){ rf->data.data, rf->data.cap, rf->pieces, rf->piece_count };
	kbuf_init(&rf->data);
	rf->pieces = NULL;
	rf->piece_count = rf->piece_cap = 0;
	return h;
}

void reader_hold_release(void *arg)
{
	struct reader_hold *h = arg;
	kbuf_release(h->data, h->cap);
	for (size_t i = 0; i < h->n; i++)
		piece_release(&h->pieces[i]);
	free(h->pieces);
	free(h);
}
