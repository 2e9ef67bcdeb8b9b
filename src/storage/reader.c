/* reader.c — the read path: for each slot, the batch rows at or after its
 * offset (from the agent's batch index, else from the metadata store in
 * one pool job for every slot that needs rows), their bytes from the read
 * cache or ranged reads of the store, baseOffset and the leader epoch
 * patched, Kafka's size rules on which batches go, and read-ahead into
 * the cache.
 *
 * Rows: a gather first checks that every slot's first rows are in the
 * index or among the rows this fetch looked up; if some are not, it
 * gathers nothing and says which (reader_rows_needed), and the caller
 * looks them up (reader_lookup) and gathers again. A slot whose rows run
 * out before its budget does (rows cut at READER_LOOKUP_ROWS, or an index
 * run short of the high watermark) needs more from there: another round,
 * READER_LOOKUP_ROUNDS at most per fetch. A tailing consumer's rows are
 * the index's: no lookup at all.
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
#include "base/sl_assert.h"
#include "meta/meta.h"
#include "objstore/objstore.h"
#include "storage/batch.h"
#include "storage/batch_index.h"
#include "storage/cache.h"
#include "txn/aborted_index.h"

/* Tuning knobs, not limits (none bounds memory or work a client can ask
 * for beyond what SL_FETCH_RESPONSE_BYTES_MAX does), so they stay here. */

/* Rows copied from the batch index at a time while filling one slot. */
#define READER_ROWS_PER_QUERY 64
/* Rows each slot gets from one store lookup (all the slots of a fetch
 * that need rows go in one pool job, meta_batches_from_many in calls of
 * READER_BULK_PARTITIONS queries), and the lookup rounds one fetch makes
 * at most: a slot whose budget outlasts its rows looks up again from
 * where they end; past the rounds it answers with what it has. In a
 * fetch of many partitions most get no room in the response: the slots
 * that can (the first ones whose partition budgets add up to the
 * response's) get READER_LOOKUP_ROWS, the others READER_LOOKUP_ROWS_FEW
 * (what read-ahead starts from), as the loop's lookups did before they
 * moved to the pool (16 rows per partition, 64 more while filling). */
#define READER_LOOKUP_ROWS 64
#define READER_LOOKUP_ROWS_FEW 16
#define READER_BULK_PARTITIONS 64
#define READER_LOOKUP_ROUNDS 4
/* Read-ahead: when a slot's budget in a fetch runs out, the batches it
 * continues with are loaded into the read cache (ranges of at most
 * READER_READAHEAD_RUN_MAX, adjacent batches of one object in one get), as
 * many bytes as it returned now, between 1 and 8 MiB, so that the
 * consumer's next fetch of it finds them in memory. The cache bounds
 * what is in flight to half its size. */
#define READER_READAHEAD_MIN (1024 * 1024)
#define READER_READAHEAD_MAX (8 * 1024 * 1024)
#define READER_READAHEAD_RUN_MAX (4 * 1024 * 1024)
/* Rows one read-ahead looks up past the rows the fetch has (one pool
 * job, not waited for: its rows are loaded when they come), and such
 * jobs in flight per reader at most (past it, no read-ahead lookup: it
 * is only a head start). */
#define READER_READAHEAD_LOOKUP_ROWS 64
#define READER_READAHEAD_JOBS 2
/* Slots that got no room in a full response whose next batches are
 * loaded ahead as well (the client's next fetch puts them first). */
#define READER_READAHEAD_PARTITIONS 1
/* Aborted transactions one read_committed lookup takes per slot (24
 * bytes each): past it the slot returns records only below the first
 * offset of the last one taken, and the consumer's next fetch looks up
 * from there. */
#define READER_ABORTED_LOOKUP_ROWS 4096

struct reader {
	uv_loop_t *loop;
	struct objstore *store;
	struct meta *meta;
	struct cache *cache;
	struct batch_index *index;
	struct aborted_index *aborted;
	reader_aborted_fn aborted_from;
	size_t aborted_lookup_max;
	size_t pinned_evicted_bytes_max;
	int ahead_jobs; /* read-ahead lookups in flight */
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

/* One slot's rows looked up in the store by this fetch: the rows with
 * last_offset >= from, ascending; below covered_end there are no others
 * (as of the lookup: the store's end then, or the last row's end when
 * the lookup was cut at its row count). err: the lookup failed. */
struct slot_rows {
	int64_t tid;
	int32_t partition;
	int64_t from, covered_end;
	struct meta_batch_row *v;
	size_t n, cap;
	int err;
	bool valid;
};

/* One read_committed slot's aborted transactions looked up in the store
 * by this fetch: every one with last_offset >= offset and first_offset <
 * end, ascending by first_offset (end: the high watermark when asked, or
 * where a lookup cut at its row count stopped). err: the lookup failed. */
struct slot_aborted {
	int64_t tid;
	int32_t partition;
	int64_t offset, end;
	struct aborted_txn *v;
	size_t n;
	int err;
	bool valid;
};

struct reader_fetch {
	struct reader *r;
	struct reader_slot *slots;
	size_t n;
	struct kbuf data;             /* records of every slot */
	struct reader_piece *pieces;  /* every slot's, in slot order */
	size_t piece_count, piece_cap;
	struct reader_piece run;      /* cached bytes being gathered into a piece */
	struct slot_rows *rows;       /* per slot, from the first lookup on */
	size_t need_count;            /* slots of the last gather that need rows */
	struct slot_aborted *aborted; /* per slot, from the first such lookup on */
	size_t need_aborted_count;    /* slots that need aborted transactions */
	struct aborted_txn *ab_out;   /* every slot's list of the last gather */
	size_t ab_count, ab_cap;
	int lookups;                  /* lookup rounds made */
	bool looking_up;
	struct reader_read *reads;    /* cache misses of the last gather */
	size_t read_count, read_cap;
	size_t reads_pending;         /* ranges being read */
	size_t cur_slot;              /* slot being gathered */
	size_t stop_slot;             /* read_slot: its budget ran out (or SIZE_MAX), */
	int64_t stop_offset;          /* where, */
	size_t stop_bytes;            /* and after how many bytes */
	size_t loads_pending;         /* read-ahead loads waited on */
	bool no_load;                 /* waited once: read the rest by ranges */
	reader_fn loaded, done, looked_up;
	void *loaded_arg, *done_arg, *looked_up_arg;
};

/* What a response's pieces point into, released when its write is done
 * (or the response dropped): rf->data's buffer and the cached objects. */
struct reader_hold {
	uint8_t *data;
	size_t cap;
	struct reader_piece *pieces; /* each holds a reference (or none) */
	size_t n;
};

int reader_new(uv_loop_t *loop, struct objstore *store, struct meta *meta, struct cache *cache,
	       const struct reader_config *cfg, struct reader **out)
{
	struct reader *r = malloc(sizeof *r);
	if (!r)
		return SL_ENOMEM;
	*r = (struct reader){
		.loop = loop, .store = store, .meta = meta, .cache = cache, .index = cfg->index,
		.aborted = cfg->aborted, .aborted_from = cfg->aborted_from,
		.aborted_lookup_max = cfg->aborted_lookup_max ? cfg->aborted_lookup_max
							      : READER_ABORTED_LOOKUP_ROWS,
		.pinned_evicted_bytes_max = cfg->pinned_evicted_bytes_max,
	};
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
 * rows[0]) into the cache, unless it is there or on its way; nothing at
 * or past hw. */
static void read_ahead(struct reader *r, int64_t hw, const struct meta_batch_row *rows, size_t n,
		       struct ahead *ah)
{
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

/* Where slot s's visible batches end: the high watermark, or for
 * read_committed the last stable offset below it, and below where its
 * aborted transactions are known. */
static int64_t slot_end(const struct reader_slot *s)
{
	if (s->stable_offset < 0)
		return s->high_watermark;
	int64_t end = s->stable_offset < s->high_watermark ? s->stable_offset : s->high_watermark;
	return s->aborted_end < end ? s->aborted_end : end;
}

/* Where rows_at found a slot's rows. */
enum {
	ROWS_OK,   /* *rows, *n (>= 1) */
	ROWS_END,  /* nothing visible at or past the offset */
	ROWS_NEED, /* neither the index nor this fetch's lookups have them */
};

/* The rows of slot k with last_offset >= *offset: from the batch index
 * (copied into buf, cap rows at most), or from what this fetch looked up
 * in the store (in place). ROWS_NEED: *offset is where the rows it lacks
 * start. A failed lookup's error (< 0). With buf NULL, only says which
 * (probing what a gather would need). */
static int rows_at(struct reader_fetch *rf, size_t k, int64_t *offset, struct meta_batch_row *buf,
		   size_t cap, const struct meta_batch_row **rows, size_t *n)
{
	const struct reader_slot *s = &rf->slots[k];
	struct batch_index *ix = rf->r->index;
	const struct slot_rows *sr = rf->rows && rf->rows[k].valid && rf->rows[k].tid == s->tid &&
					     rf->rows[k].partition == s->partition
				     ? &rf->rows[k] : NULL;
	int64_t off = *offset, visible = slot_end(s);
	*n = 0;
	for (;;) {
		if (off >= visible)
			return ROWS_END;
		int64_t end;
		size_t got;
		if (ix && batch_index_rows(ix, s->tid, s->partition, off, buf, buf ? cap : 0, &got, &end)) {
			if (off < end) {
				*n = got;
				*rows = buf;
				return ROWS_OK;
			}
			if (end >= visible)
				return ROWS_END;
			/* The index ends short of the high watermark (a commit it
			 * did not see): the rest comes from the store. */
		}
		if (!sr || sr->from > off)
			break;
		if (sr->err)
			return sr->err;
		size_t lo = 0, hi = sr->n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (sr->v[mid].last_offset < off)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < sr->n) {
			*rows = sr->v + lo;
			*n = sr->n - lo;
			return ROWS_OK;
		}
		if (off >= sr->covered_end)
			break;
		/* Nothing in [off, covered_end) (a trim removed rows): on from
		 * there. */
		off = sr->covered_end;
	}
	*offset = off;
	return ROWS_NEED;
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

/* Slot k needs rows from offset on (a lookup will bring them), unless
 * this fetch has made its lookup rounds: then it has what it got. */
static void need_rows(struct reader_fetch *rf, size_t k, int64_t offset, uint32_t rows)
{
	if (rf->lookups >= READER_LOOKUP_ROUNDS)
		return;
	rf->slots[k].need = offset;
	rf->slots[k].need_rows = rows;
	rf->need_count++;
}

/* Fill slot k's records starting at offset: bytes from the read cache
 * (whole objects, or ranges loaded ahead) are patched in place and
 * become pieces (short runs copied), the rest become reader_reads. budget
 * is how many bytes it may add; the first batch of the response is added
 * even when larger (first_in_response).
 * Where the budget runs out, rf->stop_* say where; where its rows run
 * out, the slot needs a lookup (need_rows). Returns bytes added; *err is
 * set when there are none because a lookup failed. */
static size_t read_slot(struct reader_fetch *rf, size_t k, int64_t offset, size_t budget,
			bool first_in_response, int *err)
{
	struct reader *r = rf->r;
	const struct reader_slot *s = &rf->slots[k];
	struct kbuf *out = &rf->data;
	struct meta_batch_row buf[READER_ROWS_PER_QUERY];
	int64_t visible = slot_end(s);
	/* The cached range the previous batch came from: the next batches of
	 * the partition usually follow it in the same object. */
	struct cache_obj *range = NULL;
	char range_key[META_OBJECT_KEY_BYTES];
	size_t added = 0;
	for (;;) {
		const struct meta_batch_row *rows = NULL;
		size_t n = 0;
		int64_t at = offset;
		int rc = rows_at(rf, k, &at, buf, READER_ROWS_PER_QUERY, &rows, &n);
		if (rc == ROWS_NEED) {
			need_rows(rf, k, at, READER_LOOKUP_ROWS);
			break;
		}
		if (rc < 0) {
			if (!added)
				*err = rc;
			break;
		}
		if (rc == ROWS_END)
			break;
		for (size_t i = 0; i < n; i++) {
			const struct meta_batch_row *row = &rows[i];
			/* A commit the loop has not seen yet (its rows are already
			 * readable): not visible before its producer is answered.
			 * For read_committed, nor an open transaction's. */
			if (row->base_offset >= visible)
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
				   (src = cache_obj_bytes(o, row->byte_offset, row->length))) {
				from = o;
			} else if ((o = (cache_obj_unref(o), cache_get_range(r->cache, row->object_key,
										row->byte_offset))) &&
				   row->byte_offset + row->length <= o->base + o->len) {
				/* A range loaded from this batch, or one that
				 * holds it (an earlier fetch stopped inside it). */
				cache_obj_unref(range);
				range = o;
				memcpy(range_key, row->object_key, sizeof range_key);
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
				 * make room for the next ones at once (not in a
				 * gather that is waiting for rows: it runs again). */
				if (range && src >= range->data && src < range->data + range->len &&
				    row->byte_offset + row->length == range->base + range->len &&
				    rf->need_count == 0)
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
			rf->slots[k].records_end = offset;
		}
		if (added >= budget)
			break;
	}
out:
	run_flush(rf);
	cache_obj_unref(range);
	return added;
}

/* ---- lookups on the pool ----
 * The loop never waits on the metadata store: rows the index and the
 * fetch lack are looked up in a pool job ([pool: read]), one for all the
 * slots of a fetch that need rows, and the fetch gathers again when they
 * are back. The rows seed the index (batch_index_seed): rows that reach
 * the tail run extend it, rows further back make the run behind it. A
 * consumer catching up then reads on from there without waiting for a
 * lookup: read-ahead looks up the rows past what it has in the
 * background, and they continue that run before its next fetch. */

struct lookup_job {
	uv_work_t work;
	struct reader *r;
	struct reader_fetch *rf;   /* NULL: a read-ahead's */
	struct meta_batch_query *q;
	size_t *slot;              /* rf's slot of each query */
	int64_t *hwm;              /* its high watermark when asked */
	uint64_t drops;            /* the batch index's drops when asked */
	size_t nq;
	struct meta_batch_row *rows;
	size_t rows_cap;
	int rc;
	struct ahead ah;           /* a read-ahead's state */
	/* read_committed slots' aborted transactions: na queries, each
	 * with room for the reader's aborted_lookup_max rows */
	size_t na;
	struct ab_query *aq;
	struct aborted_txn *ab_rows;
};

struct ab_query {
	size_t slot;
	int64_t tid;
	int32_t partition;
	int64_t offset, first_below;
	size_t n;
	int rc;
};

static void lookup_work(uv_work_t *w)
{
	struct lookup_job *j = w->data;
	struct meta *m = j->r->meta;
	size_t base = 0; /* where a call's rows start: room for each query's max */
	j->rc = 0;
	for (size_t i = 0; i < j->nq && !j->rc; i += READER_BULK_PARTITIONS) {
		size_t nq = j->nq - i < READER_BULK_PARTITIONS ? j->nq - i : READER_BULK_PARTITIONS;
		size_t room = 0;
		for (size_t k = 0; k < nq; k++)
			room += j->q[i + k].max_rows;
		struct meta_batch_row *rows = j->rows + base;
		j->rc = meta_batches_from_many(m, j->q + i, nq, rows, room);
		if (j->rc == SL_EUNSUPPORTED) {
			j->rc = 0;
			size_t at = 0;
			for (size_t k = 0; k < nq && !j->rc; k++) {
				struct meta_batch_query *q = &j->q[i + k];
				q->first = at;
				at += q->max_rows;
				j->rc = meta_batches_from(m, q->tid, q->partition, q->offset, q->max_rows,
							  rows + q->first, &q->n);
			}
		}
		for (size_t k = 0; k < nq; k++)
			j->q[i + k].first += base;
		base += room;
	}
	size_t cap = j->r->aborted_lookup_max;
	for (size_t i = 0; i < j->na; i++) {
		struct ab_query *a = &j->aq[i];
		a->rc = j->rc ? j->rc : j->r->aborted_from(m, a->tid, a->partition, a->offset,
							   a->first_below, j->ab_rows + i * cap,
							   cap, &a->n);
		if (a->rc || a->n > cap)
			a->n = 0;
	}
}

static void lookup_job_free(struct lookup_job *j)
{
	free(j->aq);
	free(j->ab_rows);
	free(j->q);
	free(j->slot);
	free(j->hwm);
	free(j->rows);
	free(j);
}

/* A job of nq queries, rows_cap rows in all (the sum of their max_rows). */
static struct lookup_job *lookup_job_new(struct reader *r, size_t nq, size_t rows_cap)
{
	struct lookup_job *j = calloc(1, sizeof *j);
	if (!j)
		return NULL;
	j->r = r;
	j->nq = nq;
	j->drops = r->index ? batch_index_drops(r->index) : 0;
	/* At least one of each: a job may look up aborted transactions only. */
	j->q = calloc(nq ? nq : 1, sizeof *j->q);
	j->slot = calloc(nq ? nq : 1, sizeof *j->slot);
	j->hwm = calloc(nq ? nq : 1, sizeof *j->hwm);
	j->rows_cap = rows_cap;
	j->rows = malloc((j->rows_cap ? j->rows_cap : 1) * sizeof *j->rows);
	j->work.data = j;
	if (!j->q || !j->slot || !j->hwm || !j->rows) {
		lookup_job_free(j);
		return NULL;
	}
	return j;
}

/* Query i's rows of job j. */
static const struct meta_batch_row *job_rows(const struct lookup_job *j, size_t i)
{
	return j->rows + j->q[i].first;
}

/* Rows of one partition looked up from the store may extend the index,
 * unless the partition was dropped since the job was asked (a cleaning
 * swap: they may name the objects it replaced; the next lookup reads
 * the rows anew). */
static void seed_index(const struct lookup_job *j, const struct meta_batch_query *q,
		       const struct meta_batch_row *rows, int64_t hwm)
{
	struct reader *r = j->r;
	if (!r->index || batch_index_dropped_since(r->index, q->tid, q->partition, j->drops))
		return;
	size_t n = q->n;
	while (n > 0 && rows[n - 1].base_offset >= hwm)
		n--; /* not visible yet: its commit will append it */
	batch_index_seed(r->index, q->tid, q->partition, rows, n, hwm);
}

/* Slot k's lookup from q->offset came back (rc): keep its rows, after
 * the ones it has when they continue them. */
static void slot_rows_take(struct reader_fetch *rf, size_t k, const struct meta_batch_query *q,
			   const struct meta_batch_row *rows, int64_t hwm, int rc)
{
	struct slot_rows *sr = &rf->rows[k];
	if (rc) {
		*sr = (struct slot_rows){ .tid = q->tid, .partition = q->partition, .from = q->offset,
					  .covered_end = q->offset, .v = sr->v, .cap = sr->cap,
					  .err = rc, .valid = true };
		return;
	}
	bool cont = sr->valid && !sr->err && sr->tid == q->tid && sr->partition == q->partition &&
		    sr->covered_end == q->offset;
	if (!cont)
		*sr = (struct slot_rows){ .tid = q->tid, .partition = q->partition, .from = q->offset,
					  .v = sr->v, .cap = sr->cap, .valid = true };
	if (sr->n + q->n > sr->cap) {
		size_t cap = sr->cap ? sr->cap : 16;
		while (cap < sr->n + q->n)
			cap *= 2;
		struct meta_batch_row *v = realloc(sr->v, cap * sizeof *v);
		if (!v) {
			sr->err = SL_ENOMEM;
			sr->n = 0;
			sr->from = sr->covered_end = q->offset;
			return;
		}
		sr->v = v;
		sr->cap = cap;
	}
	memcpy(sr->v + sr->n, rows, q->n * sizeof *rows);
	sr->n += q->n;
	int64_t end = q->n ? rows[q->n - 1].last_offset + 1 : q->offset;
	bool whole = q->n < q->max_rows; /* the store had no more then */
	sr->covered_end = whole && hwm > end ? hwm : end;
	if (sr->covered_end <= q->offset)
		sr->covered_end = q->offset + 1; /* progress, whatever the store said */
}

/* A slot's aborted transactions came back from the store (a->rc): the
 * fetch keeps them; a complete answer (not cut at the row count) is every
 * one with a marker in [offset, high watermark then) and seeds the
 * aborted index. */
static void slot_aborted_take(struct reader_fetch *rf, const struct ab_query *a,
			      const struct aborted_txn *rows)
{
	struct slot_aborted *sa = &rf->aborted[a->slot];
	free(sa->v);
	*sa = (struct slot_aborted){ .tid = a->tid, .partition = a->partition, .offset = a->offset,
				     .end = a->first_below, .err = a->rc, .valid = true };
	if (a->rc) {
		log_error("looking up aborted transactions: %s", sl_strerror(a->rc));
		return;
	}
	bool whole = a->n < rf->r->aborted_lookup_max;
	if (!whole)
		sa->end = rows[a->n - 1].first_offset; /* complete below it */
	if (whole && rf->r->aborted)
		aborted_index_add(rf->r->aborted, a->tid, a->partition, a->offset, a->first_below,
				  rows, a->n);
	if (a->n) {
		sa->v = malloc(a->n * sizeof *sa->v);
		if (!sa->v) {
			sa->err = SL_ENOMEM;
			return;
		}
		memcpy(sa->v, rows, a->n * sizeof *sa->v);
		sa->n = a->n;
	}
}

static void lookup_after(uv_work_t *w, int status)
{
	(void)status; /* never cancelled */
	struct lookup_job *j = w->data;
	struct reader_fetch *rf = j->rf;
	for (size_t i = 0; i < j->nq; i++) {
		if (!j->rc)
			seed_index(j, &j->q[i], job_rows(j, i), j->hwm[i]);
		slot_rows_take(rf, j->slot[i], &j->q[i], job_rows(j, i), j->hwm[i], j->rc);
	}
	for (size_t i = 0; i < j->na; i++)
		slot_aborted_take(rf, &j->aq[i], j->ab_rows + i * j->r->aborted_lookup_max);
	if (j->rc)
		log_error("looking up batch rows: %s", sl_strerror(j->rc));
	lookup_job_free(j);
	rf->looking_up = false;
	rf->looked_up(rf->looked_up_arg);
}

bool reader_rows_needed(const struct reader_fetch *rf)
{
	return rf->need_count > 0 || rf->need_aborted_count > 0;
}

bool reader_lookup(struct reader_fetch *rf, reader_fn done, void *arg)
{
	SL_ASSERT(!rf->looking_up && (rf->need_count > 0 || rf->need_aborted_count > 0));
	rf->lookups++;
	struct lookup_job *j = NULL;
	if (!rf->rows)
		rf->rows = calloc(rf->n, sizeof *rf->rows);
	if (!rf->aborted && rf->need_aborted_count)
		rf->aborted = calloc(rf->n, sizeof *rf->aborted);
	size_t rows_cap = 0;
	for (size_t k = 0; k < rf->n; k++)
		if (rf->slots[k].need >= 0)
			rows_cap += rf->slots[k].need_rows;
	if (rf->rows && (rf->aborted || !rf->need_aborted_count))
		j = lookup_job_new(rf->r, rf->need_count, rows_cap);
	if (j && rf->need_aborted_count) {
		j->na = rf->need_aborted_count;
		j->aq = calloc(j->na, sizeof *j->aq);
		j->ab_rows = malloc(j->na * rf->r->aborted_lookup_max * sizeof *j->ab_rows);
		if (!j->aq || !j->ab_rows) {
			lookup_job_free(j);
			j = NULL;
		}
	}
	if (!j) {
		/* The slots needing rows fail (storage error), the rest goes. */
		for (size_t k = 0; rf->rows && k < rf->n; k++) {
			struct reader_slot *s = &rf->slots[k];
			if (s->need >= 0) {
				struct meta_batch_query q = { .tid = s->tid, .partition = s->partition,
							      .offset = s->need };
				slot_rows_take(rf, k, &q, NULL, 0, SL_ENOMEM);
			}
			if (s->need_aborted && rf->aborted) {
				struct ab_query a = { .slot = k, .tid = s->tid, .partition = s->partition,
						      .offset = s->offset, .rc = SL_ENOMEM };
				slot_aborted_take(rf, &a, NULL);
			}
		}
		if (!rf->rows || (!rf->aborted && rf->need_aborted_count))
			rf->lookups = READER_LOOKUP_ROUNDS; /* nothing to keep: give up */
		return false;
	}
	j->rf = rf;
	size_t ia = 0;
	for (size_t k = 0; k < rf->n; k++) {
		const struct reader_slot *s = &rf->slots[k];
		if (s->need_aborted)
			j->aq[ia++] = (struct ab_query){ .slot = k, .tid = s->tid,
							 .partition = s->partition, .offset = s->offset,
							 .first_below = s->high_watermark };
	}
	size_t i = 0;
	for (size_t k = 0; k < rf->n; k++) {
		const struct reader_slot *s = &rf->slots[k];
		if (s->need < 0)
			continue;
		j->q[i] = (struct meta_batch_query){ .tid = s->tid, .partition = s->partition,
						     .offset = s->need, .max_rows = s->need_rows };
		j->slot[i] = k;
		j->hwm[i] = s->high_watermark;
		i++;
	}
	rf->looking_up = true;
	rf->looked_up = done;
	rf->looked_up_arg = arg;
	int rc = uv_queue_work(rf->r->loop, &j->work, lookup_work, lookup_after);
	SL_ASSERT(rc == 0, "uv_queue_work: %d", rc); /* only for invalid arguments */
	return true;
}

/* A read-ahead's rows came back: load what they hold. */
static void ahead_after(uv_work_t *w, int status)
{
	(void)status;
	struct lookup_job *j = w->data;
	struct reader *r = j->r;
	r->ahead_jobs--;
	if (!j->rc) {
		seed_index(j, &j->q[0], job_rows(j, 0), j->hwm[0]);
		read_ahead(r, j->hwm[0], job_rows(j, 0), j->q[0].n, &j->ah);
	}
	lookup_job_free(j);
}

/* Look up slot s's rows from offset on in the background and load them
 * ahead (ah: what is counted so far). Not waited for: the fetch goes on
 * without; nothing happens when too many are in flight or out of memory. */
static void read_ahead_lookup(struct reader *r, const struct reader_slot *s, int64_t offset,
			      const struct ahead *ah)
{
	if (r->ahead_jobs >= READER_READAHEAD_JOBS)
		return;
	struct lookup_job *j = lookup_job_new(r, 1, READER_READAHEAD_LOOKUP_ROWS);
	if (!j)
		return;
	j->q[0] = (struct meta_batch_query){ .tid = s->tid, .partition = s->partition,
					     .offset = offset, .max_rows = READER_READAHEAD_LOOKUP_ROWS };
	j->hwm[0] = s->high_watermark;
	j->ah = *ah;
	r->ahead_jobs++;
	int rc = uv_queue_work(r->loop, &j->work, lookup_work, ahead_after);
	SL_ASSERT(rc == 0, "uv_queue_work: %d", rc);
}

/* Load ahead what slot k holds from offset on: the rows the index and
 * this fetch have, then, past them, rows looked up in the background. */
static void read_ahead_slot(struct reader_fetch *rf, size_t k, int64_t offset, size_t want)
{
	struct meta_batch_row buf[READER_ROWS_PER_QUERY];
	const struct reader_slot *s = &rf->slots[k];
	if (want < READER_READAHEAD_MIN)
		want = READER_READAHEAD_MIN;
	if (want > READER_READAHEAD_MAX)
		want = READER_READAHEAD_MAX;
	struct ahead ah = { .want = want };
	while (!ah.stop) {
		const struct meta_batch_row *rows;
		size_t n;
		int64_t at = offset;
		int rc = rows_at(rf, k, &at, buf, READER_ROWS_PER_QUERY, &rows, &n);
		if (rc == ROWS_NEED)
			read_ahead_lookup(rf->r, s, at, &ah);
		if (rc != ROWS_OK)
			return;
		read_ahead(rf->r, s->high_watermark, rows, n, &ah);
		offset = rows[n - 1].last_offset + 1;
	}
}

/* One reservation for what the slots' rows will put in rf->data, not a
 * growth (and a copy) per batch: those the cache lacks, and small ones
 * (copied), up to each slot's budget (without it a cold catch-up spent
 * 12% of the agent's CPU in memmove, perf). A partition's rows mostly follow
 * one another in one object: what the cache holds of it is looked up
 * once. */
static void data_reserve(struct reader_fetch *rf, size_t max_bytes)
{
	struct reader *r = rf->r;
	struct meta_batch_row buf[READER_ROWS_PER_QUERY];
	size_t sum = 0;
	for (size_t k = 0; k < rf->n && sum < max_bytes; k++) {
		const struct reader_slot *s = &rf->slots[k];
		const struct meta_batch_row *rows;
		size_t n, slot_sum = 0, slot_max = s->max_bytes > 0 ? (size_t)s->max_bytes : 0;
		int64_t at = s->offset;
		if (!s->wanted || rows_at(rf, k, &at, buf, READER_ROWS_PER_QUERY, &rows, &n) != ROWS_OK)
			continue;
		const char *key = NULL;
		uint64_t held_from = 0, held_to = 0; /* cached bytes of key */
		for (size_t j = 0; j < n && slot_sum < slot_max; j++) {
			const struct meta_batch_row *row = &rows[j];
			uint64_t end = row->byte_offset + row->length;
			if (row->base_offset >= slot_end(s))
				break;
			if (!key || strcmp(key, row->object_key) || row->byte_offset < held_from ||
			    end > held_to) {
				key = row->object_key;
				held_from = row->byte_offset;
				held_to = cache_contains(r->cache, key)
						  ? UINT64_MAX
						  : cache_range_end(r->cache, key, row->byte_offset);
			}
			if (row->length < READER_PIECE_BYTES_MIN || end > held_to)
				slot_sum += row->length;
		}
		sum += slot_sum;
	}
	kbuf_reserve(&rf->data, sum < max_bytes ? sum : max_bytes);
}

int reader_fetch_new(struct reader *r, struct arena *arena, struct reader_slot *slots, size_t n,
		     struct reader_fetch **out)
{
	struct reader_fetch *rf = arena_alloc(arena, sizeof *rf);
	if (!rf)
		return SL_ENOMEM;
	memset(rf, 0, sizeof *rf);
	rf->r = r;
	rf->slots = slots;
	rf->n = n;
	kbuf_init(&rf->data);
	*out = rf;
	return 0;
}

void reader_fetch_end(struct reader_fetch *rf)
{
	SL_ASSERT(!rf->looking_up);
	pieces_reset(rf);
	free(rf->pieces);
	rf->pieces = NULL;
	rf->piece_cap = 0;
	kbuf_free(&rf->data);
	free(rf->reads);
	rf->reads = NULL;
	rf->read_count = rf->read_cap = 0;
	for (size_t k = 0; rf->rows && k < rf->n; k++)
		free(rf->rows[k].v);
	free(rf->rows);
	rf->rows = NULL;
	for (size_t k = 0; rf->aborted && k < rf->n; k++)
		free(rf->aborted[k].v);
	free(rf->aborted);
	rf->aborted = NULL;
	free(rf->ab_out);
	rf->ab_out = NULL;
	rf->ab_count = rf->ab_cap = 0;
}

/* This fetch's lookup of slot k's aborted transactions from its
 * offset, or NULL. */
static const struct slot_aborted *slot_aborted_of(const struct reader_fetch *rf, size_t k)
{
	const struct reader_slot *s = &rf->slots[k];
	const struct slot_aborted *sa = rf->aborted ? &rf->aborted[k] : NULL;
	if (!sa || !sa->valid || sa->tid != s->tid || sa->partition != s->partition ||
	    sa->offset != s->offset)
		return NULL;
	return sa;
}

/* Where read_committed slot k's aborted transactions come from: the
 * aborted index when it holds every marker from the slot's offset to the
 * high watermark; else this fetch's lookup (records only below where it
 * is complete; none after a failed one); else, with no store lookup,
 * none exist; else the slot needs a lookup (no records until then, and
 * none once the fetch's lookup rounds are spent). */
static void aborted_check(struct reader_fetch *rf, size_t k)
{
	struct reader *r = rf->r;
	struct reader_slot *s = &rf->slots[k];
	size_t n;
	if (s->stable_offset < 0 || !r->aborted ||
	    aborted_index_get(r->aborted, s->tid, s->partition, s->offset, s->offset,
			      s->high_watermark, NULL, 0, &n))
		return;
	const struct slot_aborted *sa = slot_aborted_of(rf, k);
	if (sa) {
		s->aborted_end = sa->err ? s->offset : sa->end;
		return;
	}
	if (!r->aborted_from)
		return;
	s->aborted_end = s->offset;
	if (rf->lookups >= READER_LOOKUP_ROUNDS)
		return;
	s->need_aborted = true;
	rf->need_aborted_count++;
}

/* Slot k's records of this gather end at s->records_end: copy the
 * aborted transactions they overlap to the fetch's list. */
static void aborted_list(struct reader_fetch *rf, size_t k)
{
	struct reader *r = rf->r;
	struct reader_slot *s = &rf->slots[k];
	const struct slot_aborted *sa = NULL;
	size_t n = 0;
	s->aborted_first = rf->ab_count;
	if (s->stable_offset < 0 || !r->aborted || s->bytes == 0)
		return;
	bool indexed = aborted_index_get(r->aborted, s->tid, s->partition, s->offset,
					 s->records_end, s->high_watermark, NULL, 0, &n);
	if (!indexed) {
		sa = slot_aborted_of(rf, k);
		if (!sa || sa->err)
			return;
		while (n < sa->n && sa->v[n].first_offset < s->records_end)
			n++;
	}
	if (!n)
		return;
	if (rf->ab_count + n > rf->ab_cap) {
		size_t cap = rf->ab_cap ? rf->ab_cap : 16;
		while (cap < rf->ab_count + n)
			cap *= 2;
		struct aborted_txn *v = realloc(rf->ab_out, cap * sizeof *v);
		if (!v) {
			rf->data.oom = true; /* the fetch cannot be answered */
			return;
		}
		rf->ab_out = v;
		rf->ab_cap = cap;
	}
	struct aborted_txn *out = rf->ab_out + rf->ab_count;
	if (indexed)
		aborted_index_get(r->aborted, s->tid, s->partition, s->offset, s->records_end,
				  s->high_watermark, out, n, &n);
	else
		memcpy(out, sa->v, n * sizeof *out);
	s->aborted_count = n;
	rf->ab_count += n;
}

const struct aborted_txn *reader_aborted(const struct reader_fetch *rf, size_t slot, size_t *n)
{
	const struct reader_slot *s = &rf->slots[slot];
	*n = s->aborted_count;
	return s->aborted_count ? rf->ab_out + s->aborted_first : NULL;
}

size_t reader_gather(struct reader_fetch *rf, size_t max_bytes, bool read_ahead)
{
	SL_ASSERT(!rf->looking_up);
	rf->data.len = 0;
	rf->read_count = 0;
	rf->need_count = 0;
	rf->need_aborted_count = 0;
	rf->ab_count = 0;
	pieces_reset(rf);
	size_t total = 0, ahead_partitions = 0;
	size_t last_stop = SIZE_MAX, last_stop_bytes = 0;
	int64_t last_stop_offset = 0;
	if (max_bytes > SL_FETCH_RESPONSE_BYTES_MAX)
		max_bytes = SL_FETCH_RESPONSE_BYTES_MAX;
	for (size_t k = 0; k < rf->n; k++) {
		struct reader_slot *s = &rf->slots[k];
		s->bytes = 0;
		s->err = 0;
		s->records_end = s->offset;
		s->need = -1;
		s->need_aborted = false;
		s->aborted_end = INT64_MAX;
		s->aborted_first = s->aborted_count = 0;
		s->data_off = 0;
		s->piece_first = s->piece_end = 0;
	}
	/* Every slot whose first rows are not in memory is looked up before
	 * anything is gathered (one lookup for all; a catch-up fetch of many
	 * partitions then costs one), more rows for those that may get room. */
	size_t room = 0;
	for (size_t k = 0; k < rf->n; k++) {
		struct reader_slot *s = &rf->slots[k];
		const struct meta_batch_row *rows;
		size_t n;
		int64_t at = s->offset;
		if (!s->wanted)
			continue;
		aborted_check(rf, k);
		size_t slot_max = s->max_bytes > 0 ? (size_t)s->max_bytes : 0;
		bool may_fit = room < max_bytes || room == 0;
		room += slot_max < max_bytes ? slot_max : max_bytes;
		if (rows_at(rf, k, &at, NULL, 0, &rows, &n) == ROWS_NEED)
			need_rows(rf, k, at, may_fit ? READER_LOOKUP_ROWS : READER_LOOKUP_ROWS_FEW);
	}
	if (rf->need_count > 0 || rf->need_aborted_count > 0)
		return 0;
	data_reserve(rf, max_bytes);
	size_t k;
	for (k = 0; k < rf->n; k++) {
		struct reader_slot *s = &rf->slots[k];
		s->data_off = rf->data.len;
		s->piece_first = s->piece_end = rf->piece_count;
		if (!s->wanted)
			continue;
		size_t slot_max = s->max_bytes > 0 ? (size_t)s->max_bytes : 0;
		size_t budget = slot_max;
		if (total >= max_bytes)
			budget = 0;
		else if (budget > max_bytes - total)
			budget = max_bytes - total;
		bool ahead = read_ahead && rf->need_count == 0;
		if (budget == 0 && total > 0) {
			/* No room left: clients rotate the order of their
			 * partitions, so the next fetch most likely starts
			 * here. Load what it will take. */
			if (ahead && ahead_partitions < READER_READAHEAD_PARTITIONS) {
				read_ahead_slot(rf, k, s->offset, slot_max < max_bytes ? slot_max : max_bytes);
				ahead_partitions++;
			}
			continue;
		}
		int err = 0;
		rf->cur_slot = k;
		rf->stop_slot = SIZE_MAX;
		size_t got = read_slot(rf, k, s->offset, budget, total == 0, &err);
		const struct slot_aborted *sa = slot_aborted_of(rf, k);
		if (!got && !err && sa && sa->err)
			err = sa->err; /* its aborted transactions could not be looked up */
		s->bytes = got;
		s->err = got ? 0 : err;
		s->piece_end = rf->piece_count;
		aborted_list(rf, k);
		if (rf->stop_slot == k && got == 0 && total > 0) {
			/* Its first batch did not fit: as above. */
			if (ahead && ahead_partitions < READER_READAHEAD_PARTITIONS) {
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
	if (read_ahead && rf->need_count == 0 && ahead_partitions == 0 && last_stop != SIZE_MAX)
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
			struct reader_slot *s = &rf->slots[rd->slot];
			s->err = rd->err;
			s->bytes = 0;
			/* An object gone from the store while a row in the index
			 * still names it: a merge moved the rows (issue 15) and
			 * the collector deleted the object after its grace. The
			 * store's rows are right: look them up next time. */
			if (rd->err == SL_ENOTFOUND && rf->r->index)
				batch_index_drop(rf->r->index, s->tid, s->partition);
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
