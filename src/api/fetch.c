/* fetch.c — Fetch: find the batch rows at or after each fetch offset,
 * take their bytes from the read cache (or ranged reads of the store),
 * patch baseOffset and the leader epoch, follow Kafka's size rules, and
 * long-poll until min_bytes are there or max_wait_ms passes. The records
 * are not copied into the response: it is written in pieces (encoded
 * fields, then a partition's records as pieces straight from the cached
 * objects and from f->data, ...). Cached bytes are patched in place and
 * referenced (cache_obj_ref) until the write is done; only runs of
 * cached bytes under FETCH_GAP_MIN_BYTES are copied, into f->data, where
 * the store reads of this fetch land too.
 *
 * Batches missing from the read cache are read through the store's
 * asynchronous get (adjacent ranges coalesced); the loop never blocks.
 * Rows of up to 64 partitions come from one metadata lookup. Where a
 * partition's budget runs out, the batches it continues with that are not
 * in memory already are loaded into the read cache ahead of the
 * consumer's next fetch (read-ahead), and
 * a fetch that misses a range being loaded (one starting at its batch, or
 * earlier in the object) waits for it rather than reading it twice.
 *
 * Fetch sessions (KIP-227) are not kept: every response carries session
 * id 0, which tells clients to send full fetch requests. */
#include <stdlib.h>
#include <string.h>

#include "base/grow.h"
#include "agent/agent.h"
#include "api/api.h"
#include "api/handlers.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/log.h"
#include "kmsg.h"
#include "objstore/objstore.h"
#include "proto/kerr.h"
#include "storage/batch.h"
#include "storage/cache.h"

/* Rows read per metadata query while filling one partition. */
#define FETCH_ROWS_PER_QUERY 64
/* Partitions per batch lookup (meta_batches_from_many), and rows each
 * gets in it: a catch-up fetch of 64 partitions costs one lookup. */
#define FETCH_BULK_PARTITIONS 64
#define FETCH_BULK_ROWS 16
/* Read-ahead: when a partition's budget in a fetch runs out, the batches
 * it continues with are loaded into the read cache (ranges of at most
 * FETCH_READAHEAD_RUN_MAX, adjacent batches of one object in one get), as
 * many bytes as it returned now, between 1 and 8 MiB, so that the
 * consumer's next fetch of it finds them in memory. The cache bounds
 * what is in flight to half its size. */
#define FETCH_READAHEAD_MIN (1024 * 1024)
#define FETCH_READAHEAD_MAX (8 * 1024 * 1024)
#define FETCH_READAHEAD_RUN_MAX (4 * 1024 * 1024)
/* Row lookups (of FETCH_ROWS_PER_QUERY) one read-ahead makes at most past
 * the rows it has: what is in memory already is skipped, not loaded. */
#define FETCH_READAHEAD_LOOKUPS 4
/* Partitions that got no room in a full response whose next batches are
 * loaded ahead as well (the client's next fetch puts them first). */
#define FETCH_READAHEAD_PARTITIONS 1
/* Largest fetch response we build, whatever max_bytes says. Clients ask
 * for up to 50 MiB; answering with less only means another fetch, while
 * buffers of that size are page-faulted afresh every time (measured:
 * catch-up reads spent a third of the agent's CPU faulting 32-64 MiB
 * response buffers). 8 MiB responses fit the loop's buffer pool. */
#define FETCH_RESPONSE_BYTES_MAX (8 * 1024 * 1024)
/* Records of a partition shorter than this are copied into the response
 * buffer; longer ones are written as pieces of their own. Runs of cached
 * bytes shorter than this (small batches) are copied into f->data rather
 * than referenced: an iovec per tiny batch costs more than the copy. */
#define FETCH_GAP_MIN_BYTES 1024

/* A batch that was not in the read cache: read from the store into data
 * at data_off, then patched. */
struct fetch_read {
	char key[META_OBJECT_KEY_BYTES];
	uint64_t byte_offset;
	uint32_t length;
	size_t data_off;
	int64_t base_offset;
	struct kmsg_fetch_resp_partition_data *rp;
	int err;
};

/* A piece of a partition's records, in wire order: bytes of a cached
 * object (referenced), or of f->data. */
struct fetch_piece {
	struct cache_obj *obj; /* holds a reference; NULL: f->data at off */
	const uint8_t *ptr;    /* obj: into obj->data */
	size_t off;
	size_t len;
};

struct fetch_wait {
	struct fetch_wait *prev, *next;
	uv_timer_t timer;
	struct agent *a;
	struct request *req;
	const struct kmsg_fetch_req *m; /* in the request arena */
	struct kmsg_fetch_resp r;
	struct kbuf data;         /* records of every partition */
	size_t *data_off;         /* per response partition: offset into data */
	struct fetch_piece *pieces; /* every partition's, in response order */
	size_t piece_count, piece_cap;
	size_t *piece_first;      /* per response partition (+ 1): its first */
	struct fetch_piece run;   /* cached bytes being gathered into a piece */
	size_t parts;             /* response partitions */
	struct topic_state **slot_topic; /* per response partition */
	int32_t *slot_partition;
	int32_t *slot_query;      /* per response partition: index into bulk_q,
				     -1 not looked up yet, -2 nothing to read */
	struct meta_batch_query bulk_q[FETCH_BULK_PARTITIONS];
	struct meta_batch_row *bulk_rows; /* FETCH_BULK_PARTITIONS * FETCH_BULK_ROWS */
	bool bulk_failed;
	struct fetch_read *reads; /* cache misses of the last gather */
	size_t read_count, read_cap;
	size_t reads_pending;     /* ranges being read */
	size_t cur_slot;          /* response partition being gathered */
	size_t stop_slot;         /* read_partition: its budget ran out (or SIZE_MAX), */
	int64_t stop_offset;      /* where, */
	size_t stop_bytes;        /* and after how many bytes */
	size_t loads_pending;     /* read-ahead loads waited on */
	bool no_load;             /* waited once: read the rest by ranges */
	bool waiting;
};

/* One partition's read-ahead: bytes wanted, and counted so far (loaded
 * now, or in memory or on their way already). */
struct ahead {
	size_t want, loaded;
	bool stop; /* enough, the partition's end, or no room to load */
};

/* Load what rows[0..n) continue with (the partition's budget ran out at
 * rows[0]) into the cache, unless it is there or on its way. */
static void read_ahead(struct fetch_wait *f, struct topic_state *t, int32_t p,
		       const struct meta_batch_row *rows, size_t n, struct ahead *ah)
{
	struct agent *a = f->a;
	int64_t hw = t->parts[p].high_watermark;
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
		if (cache_contains(a->cache, first->object_key) ||
		    cache_ahead_end(a->cache, first->object_key, first->byte_offset) >=
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
		       len + rows[j].length <= FETCH_READAHEAD_RUN_MAX &&
		       cache_ahead_end(a->cache, rows[j].object_key, rows[j].byte_offset) ==
			       rows[j].byte_offset) {
			len += rows[j].length;
			j++;
		}
		int rc = cache_load(a->cache, a->store, a->loop, first->object_key,
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

/* Rows of one partition from offset on. */
static int lookup_rows(struct fetch_wait *f, int64_t tid, int32_t p, int64_t offset,
		       struct meta_batch_row *rows, size_t cap, size_t *n)
{
	struct meta_batch_query q = { .tid = tid, .partition = p, .offset = offset, .max_rows = cap };
	int rc = meta_batches_from_many(f->a->meta, &q, 1, rows, cap);
	if (rc != SL_EUNSUPPORTED) {
		*n = q.n;
		return rc;
	}
	return meta_batches_from(f->a->meta, tid, p, offset, cap, rows, n);
}

/* An evicted cached buffer lives on while pieces of unsent responses
 * point into it, outside --cache-bytes (a 1 KiB piece may hold an 8 MiB
 * object): past FETCH_PINNED_EVICTED_MAX of such buffers, runs from
 * buffers not pinned yet are copied instead (cache_obj_pin), so clients
 * that stop reading cannot keep memory without bound. */
#ifndef FETCH_PINNED_EVICTED_MAX /* tests build with 0: copy more */
#define FETCH_PINNED_EVICTED_MAX ((size_t)64 * 1024 * 1024)
#endif

/* Drop a stored piece's pin and reference. */
static void piece_release(struct fetch_piece *p)
{
	if (!p->obj)
		return;
	cache_obj_unpin(p->obj);
	cache_obj_unref(p->obj);
}

/* Drop every piece (and the references they hold). */
static void pieces_reset(struct fetch_wait *f)
{
	for (size_t i = 0; i < f->piece_count; i++)
		piece_release(&f->pieces[i]);
	f->piece_count = 0;
	cache_obj_unref(f->run.obj);
	f->run = (struct fetch_piece){ 0 };
}

/* Append a piece to response partition f->cur_slot (taking over p.obj's
 * reference), merged with the one before when it continues it. Out of
 * memory: the response fails (f->data.oom). A piece of a cached buffer
 * comes pinned (cache_obj_pin). */
static void piece_add(struct fetch_wait *f, struct fetch_piece p)
{
	if (f->piece_count > f->piece_first[f->cur_slot]) {
		struct fetch_piece *last = &f->pieces[f->piece_count - 1];
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
	if (array_grow(&f->pieces, &f->piece_cap, f->piece_count, sizeof *f->pieces, 64) != 0) {
		piece_release(&p);
		f->data.oom = true;
		return;
	}
	f->pieces[f->piece_count++] = p;
}

/* The run of cached bytes ends: a piece of its own, or copied into
 * f->data when short or when its buffer may not be pinned. */
static void run_flush(struct fetch_wait *f)
{
	struct fetch_piece r = f->run;
	f->run = (struct fetch_piece){ 0 };
	if (!r.obj)
		return;
	if (r.len >= FETCH_GAP_MIN_BYTES && cache_obj_pin(r.obj, FETCH_PINNED_EVICTED_MAX)) {
		piece_add(f, r);
		return;
	}
	uint8_t *dst = kbuf_reserve(&f->data, r.len);
	if (dst) {
		memcpy(dst, r.ptr, r.len);
		piece_add(f, (struct fetch_piece){ .off = f->data.len, .len = r.len });
		f->data.len += r.len;
	}
	cache_obj_unref(r.obj);
}

/* len cached bytes at ptr in o (patched already) come next. */
static void run_add(struct fetch_wait *f, struct cache_obj *o, const uint8_t *ptr, size_t len)
{
	if (f->run.obj == o && f->run.ptr + f->run.len == ptr) {
		f->run.len += len;
		return;
	}
	run_flush(f);
	cache_obj_ref(o);
	f->run = (struct fetch_piece){ .obj = o, .ptr = ptr, .len = len };
}

/* Fill one partition's records starting at offset: bytes from the read
 * cache (whole objects, or ranges loaded ahead) are patched in place and
 * become pieces (short runs copied), the rest become fetch_reads. budget
 * is how many bytes it may add; the first batch of the response is added
 * even when larger (first_in_response).
 * Where the budget runs out, what the partition continues with is loaded
 * ahead. rows/n are rows already looked up (full: there may be more).
 * Returns bytes added. */
static size_t read_partition(struct fetch_wait *f, struct topic_state *t, int32_t p,
			     int64_t offset, size_t budget, bool first_in_response,
			     const struct meta_batch_row *rows, size_t n, bool full,
			     struct kmsg_fetch_resp_partition_data *rp, int16_t *error)
{
	struct agent *a = f->a;
	struct kbuf *out = &f->data;
	struct meta_batch_row more[FETCH_ROWS_PER_QUERY];
	/* The cached range the previous batch came from: the next batches of
	 * the partition usually follow it in the same object. */
	struct cache_obj *range = NULL;
	const char *range_key = NULL;
	size_t added = 0;
	if (!rows) {
		if (lookup_rows(f, t->tid, p, offset, more, FETCH_ROWS_PER_QUERY, &n) != 0) {
			*error = KERR_KAFKA_STORAGE_ERROR;
			return 0;
		}
		rows = more;
		full = n == FETCH_ROWS_PER_QUERY;
	}
	for (;;) {
		for (size_t i = 0; i < n; i++) {
			const struct meta_batch_row *row = &rows[i];
			/* A commit the loop has not seen yet (its rows are already
			 * readable): not visible before its producer is answered. */
			if (row->base_offset >= t->parts[p].high_watermark)
				goto out;
			bool fits = added + row->length <= budget || (first_in_response && added == 0);
			if (!fits) {
				f->stop_slot = f->cur_slot;
				f->stop_offset = row->base_offset;
				f->stop_bytes = added;
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
			} else if ((o = cache_get(a->cache, row->object_key)) &&
				   row->byte_offset + row->length <= o->len) {
				src = o->data + row->byte_offset;
				from = o;
			} else if ((o = (cache_obj_unref(o), cache_get_range(a->cache, row->object_key,
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
				run_add(f, from, src, row->length);
				/* A range read to its end will not be read again:
				 * make room for the next ones at once. */
				if (range && src >= range->data && src < range->data + range->len &&
				    row->byte_offset + row->length == range->base + range->len)
					cache_drop_range(a->cache, row->object_key, range->base);
			} else {
				run_flush(f);
				if (!kbuf_reserve(out, row->length) ||
				    array_grow(&f->reads, &f->read_cap, f->read_count,
					       sizeof *f->reads, 16) != 0) {
					cache_obj_unref(o);
					goto out;
				}
				struct fetch_read *fr = &f->reads[f->read_count++];
				memcpy(fr->key, row->object_key, sizeof fr->key);
				fr->byte_offset = row->byte_offset;
				fr->length = row->length;
				fr->data_off = out->len;
				fr->base_offset = row->base_offset;
				fr->rp = rp;
				fr->err = 0;
				piece_add(f, (struct fetch_piece){ .off = out->len, .len = row->length });
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
		    range_key < (const char *)(more + FETCH_ROWS_PER_QUERY)) {
			cache_obj_unref(range);
			range = NULL;
		}
		if (lookup_rows(f, t->tid, p, offset, more, FETCH_ROWS_PER_QUERY, &n) != 0) {
			if (!added)
				*error = KERR_KAFKA_STORAGE_ERROR;
			break;
		}
		rows = more;
		full = n == FETCH_ROWS_PER_QUERY;
		if (n == 0)
			break;
	}
out:
	run_flush(f);
	cache_obj_unref(range);
	return added;
}

static bool zero_uuid(const uint8_t u[16])
{
	for (int i = 0; i < 16; i++)
		if (u[i])
			return false;
	return true;
}

/* Look up the rows of the next (up to) FETCH_BULK_PARTITIONS partitions
 * that have data, from response partition k on, in one call. */
static void bulk_lookup(struct fetch_wait *f, size_t k)
{
	if (!f->bulk_rows && !f->bulk_failed) {
		f->bulk_rows = malloc(sizeof *f->bulk_rows * FETCH_BULK_PARTITIONS * FETCH_BULK_ROWS);
		f->bulk_failed = !f->bulk_rows;
	}
	size_t nq = 0;
	size_t ks[FETCH_BULK_PARTITIONS];
	const struct kmsg_fetch_req *m = f->m;
	size_t idx = 0;
	for (int32_t i = 0; i < m->topics_count && nq < FETCH_BULK_PARTITIONS; i++) {
		struct kmsg_fetch_req_fetch_topic *qt = &m->topics[i];
		for (int32_t j = 0; j < qt->partitions_count && nq < FETCH_BULK_PARTITIONS; j++, idx++) {
			if (idx < k || f->slot_query[idx] != -1)
				continue;
			struct meta_batch_query *q = &f->bulk_q[nq];
			q->tid = f->slot_topic[idx]->tid;
			q->partition = qt->partitions[j].partition;
			q->offset = qt->partitions[j].fetch_offset;
			q->max_rows = FETCH_BULK_ROWS;
			ks[nq++] = idx;
		}
	}
	int rc = f->bulk_failed ? SL_ENOMEM
				: meta_batches_from_many(f->a->meta, f->bulk_q, nq, f->bulk_rows,
							 FETCH_BULK_PARTITIONS * FETCH_BULK_ROWS);
	if (rc)
		f->bulk_failed = true; /* per partition from now on */
	for (size_t i = 0; i < nq; i++)
		f->slot_query[ks[i]] = rc ? -3 : (int32_t)i;
	if (rc)
		return;
	/* One reservation for what these rows will put in f->data, not a
	 * growth per batch: those the cache lacks, and small ones (copied).
	 * A partition's rows mostly follow one another in one object: what
	 * the cache holds of it is looked up once. */
	size_t sum = 0;
	for (size_t i = 0; i < nq; i++) {
		const char *key = NULL;
		uint64_t held_from = 0, held_to = 0; /* cached bytes of key */
		for (size_t r = 0; r < f->bulk_q[i].n; r++) {
			const struct meta_batch_row *row = &f->bulk_rows[f->bulk_q[i].first + r];
			uint64_t end = row->byte_offset + row->length;
			if (!key || strcmp(key, row->object_key) || row->byte_offset < held_from ||
			    end > held_to) {
				key = row->object_key;
				held_from = row->byte_offset;
				held_to = cache_contains(f->a->cache, key)
						  ? UINT64_MAX
						  : cache_range_end(f->a->cache, key, row->byte_offset);
			}
			if (row->length < FETCH_GAP_MIN_BYTES || end > held_to)
				sum += row->length;
		}
	}
	if (sum > FETCH_RESPONSE_BYTES_MAX)
		sum = FETCH_RESPONSE_BYTES_MAX;
	kbuf_reserve(&f->data, sum);
}

/* Load ahead what response partition k holds from offset on. Where the
 * rows looked up are all in memory (the fetch stopped inside a range
 * loaded earlier), more are looked up past them, a few lookups at most,
 * so that the next range is on its way before the current one is read. */
static void read_ahead_slot(struct fetch_wait *f, size_t k, int64_t offset, size_t want)
{
	struct meta_batch_row rows[FETCH_ROWS_PER_QUERY];
	struct topic_state *t = f->slot_topic[k];
	int32_t p = f->slot_partition[k];
	if (f->a->draining)
		return;
	if (want < FETCH_READAHEAD_MIN)
		want = FETCH_READAHEAD_MIN;
	if (want > FETCH_READAHEAD_MAX)
		want = FETCH_READAHEAD_MAX;
	struct ahead ah = { .want = want };
	if (f->slot_query[k] >= 0) {
		/* The batch lookup has its rows from the fetch offset on. */
		struct meta_batch_query *q = &f->bulk_q[f->slot_query[k]];
		const struct meta_batch_row *r = f->bulk_rows + q->first;
		size_t skip = 0;
		while (skip < q->n && r[skip].last_offset < offset)
			skip++;
		if (skip < q->n) {
			read_ahead(f, t, p, r + skip, q->n - skip, &ah);
			if (q->n < q->max_rows)
				return; /* the partition's end */
			offset = r[q->n - 1].last_offset + 1;
		}
	}
	for (int l = 0; l < FETCH_READAHEAD_LOOKUPS && !ah.stop; l++) {
		size_t n = 0;
		if (lookup_rows(f, t->tid, p, offset, rows, FETCH_ROWS_PER_QUERY, &n) != 0 || n == 0)
			return;
		read_ahead(f, t, p, rows, n, &ah);
		if (n < FETCH_ROWS_PER_QUERY)
			return;
		offset = rows[n - 1].last_offset + 1;
	}
}

/* Build the response from the current state. Returns bytes of records. */
static size_t fetch_gather(struct fetch_wait *f)
{
	struct agent *a = f->a;
	struct request *req = f->req;
	int16_t v = req->api_version;
	const struct kmsg_fetch_req *m = f->m;
	f->data.len = 0;
	f->read_count = 0;
	pieces_reset(f);
	size_t total = 0, k = 0, ahead_partitions = 0;
	size_t last_stop = SIZE_MAX, last_stop_bytes = 0;
	int64_t last_stop_offset = 0;
	size_t max_bytes = m->max_bytes > 0 ? (size_t)m->max_bytes : 0;
	if (max_bytes > FETCH_RESPONSE_BYTES_MAX)
		max_bytes = FETCH_RESPONSE_BYTES_MAX;
	/* First: errors, watermarks, and which partitions have records. */
	for (int32_t i = 0; i < m->topics_count; i++) {
		struct kmsg_fetch_req_fetch_topic *qt = &m->topics[i];
		struct kmsg_fetch_resp_fetchable_topic_response *rt = &f->r.responses[i];
		struct topic_state *t = v >= 13 ? (zero_uuid(qt->topic_id) ? NULL : agent_topic_by_uuid(a, qt->topic_id))
						: agent_topic(a, qt->topic);
		for (int32_t j = 0; j < qt->partitions_count; j++, k++) {
			struct kmsg_fetch_req_fetch_partition *qp = &qt->partitions[j];
			struct kmsg_fetch_resp_partition_data *rp = &rt->partitions[j];
			f->slot_topic[k] = t;
			f->slot_partition[k] = qp->partition;
			f->slot_query[k] = -2;
			rp->records = KBYTES_NULL;
			rp->records.len = 0;
			if (!t || qp->partition < 0 || qp->partition >= t->partition_count) {
				rp->error_code = v >= 13 ? KERR_UNKNOWN_TOPIC_ID
							 : KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			struct partition_state *ps = &t->parts[qp->partition];
			rp->high_watermark = ps->high_watermark;
			rp->last_stable_offset = ps->high_watermark;
			rp->log_start_offset = ps->log_start_offset;
			if (qp->fetch_offset < ps->log_start_offset || qp->fetch_offset > ps->high_watermark) {
				rp->error_code = KERR_OFFSET_OUT_OF_RANGE;
				continue;
			}
			rp->error_code = KERR_NONE;
			if (qp->fetch_offset == ps->high_watermark)
				continue;
			f->slot_query[k] = -1;
		}
	}
	k = 0;
	for (int32_t i = 0; i < m->topics_count; i++) {
		struct kmsg_fetch_req_fetch_topic *qt = &m->topics[i];
		struct kmsg_fetch_resp_fetchable_topic_response *rt = &f->r.responses[i];
		for (int32_t j = 0; j < qt->partitions_count; j++, k++) {
			struct kmsg_fetch_req_fetch_partition *qp = &qt->partitions[j];
			struct kmsg_fetch_resp_partition_data *rp = &rt->partitions[j];
			f->data_off[k] = f->data.len;
			f->piece_first[k] = f->piece_count;
			if (f->slot_query[k] == -2)
				continue;
			size_t budget = qp->partition_max_bytes > 0 ? (size_t)qp->partition_max_bytes : 0;
			if (total >= max_bytes)
				budget = 0;
			else if (budget > max_bytes - total)
				budget = max_bytes - total;
			if (f->slot_query[k] == -1 && !f->bulk_failed)
				bulk_lookup(f, k);
			if (budget == 0 && total > 0) {
				/* No room left: clients rotate the order of their
				 * partitions, so the next fetch most likely starts
				 * here. Load what it will take. */
				if (ahead_partitions < FETCH_READAHEAD_PARTITIONS) {
					size_t want = qp->partition_max_bytes > 0 ? (size_t)qp->partition_max_bytes : 0;
					read_ahead_slot(f, k, qp->fetch_offset, want < max_bytes ? want : max_bytes);
					ahead_partitions++;
				}
				continue;
			}
			const struct meta_batch_row *rows = NULL;
			size_t n = 0;
			bool full = false;
			if (f->slot_query[k] >= 0) {
				struct meta_batch_query *q = &f->bulk_q[f->slot_query[k]];
				rows = f->bulk_rows + q->first;
				n = q->n;
				full = q->n == q->max_rows;
			}
			int16_t err = KERR_NONE;
			f->cur_slot = k;
			f->stop_slot = SIZE_MAX;
			size_t got = read_partition(f, f->slot_topic[k], qp->partition, qp->fetch_offset,
						    budget, total == 0, rows, n, full, rp, &err);
			rp->error_code = got ? KERR_NONE : err;
			rp->records.len = (int32_t)got;
			if (f->stop_slot == k && got == 0 && total > 0) {
				/* Its first batch did not fit: as above. */
				if (ahead_partitions < FETCH_READAHEAD_PARTITIONS) {
					size_t want = qp->partition_max_bytes > 0 ? (size_t)qp->partition_max_bytes : 0;
					read_ahead_slot(f, k, qp->fetch_offset, want < max_bytes ? want : max_bytes);
					ahead_partitions++;
				}
			} else if (f->stop_slot == k) {
				last_stop = k;
				last_stop_offset = f->stop_offset;
				last_stop_bytes = f->stop_bytes;
			}
			total += got;
		}
	}
	f->piece_first[k] = f->piece_count;
	/* Every partition with data got room: the next fetch most likely
	 * continues the last one that ran out of it. */
	if (ahead_partitions == 0 && last_stop != SIZE_MAX)
		read_ahead_slot(f, last_stop, last_stop_offset, last_stop_bytes);
	return total;
}

static void fetch_free(uv_handle_t *h)
{
	struct fetch_wait *f = h->data;
	pieces_reset(f);
	free(f->pieces);
	kbuf_free(&f->data);
	free(f->reads);
	free(f->bulk_rows);
	free(f);
}

static void fetch_unlink(struct fetch_wait *f)
{
	if (!f->waiting)
		return;
	f->waiting = false;
	if (f->prev) f->prev->next = f->next; else f->a->waiters = f->next;
	if (f->next) f->next->prev = f->prev;
	f->prev = f->next = NULL;
}

/* What a response's pieces point into, released when its write is done
 * (or the response dropped): f->data's buffer and the cached objects. */
struct fetch_hold {
	uint8_t *data;
	size_t cap;
	struct fetch_piece *pieces; /* each holds a reference (or none) */
	size_t n;
};

static void fetch_hold_release(void *arg)
{
	struct fetch_hold *h = arg;
	kbuf_release(h->data, h->cap);
	for (size_t i = 0; i < h->n; i++)
		piece_release(&h->pieces[i]);
	free(h->pieces);
	free(h);
}

/* The encoder left out one gap per partition with records of at least
 * FETCH_GAP_MIN_BYTES (the list had room for all: it never copies them),
 * in response order: put each partition's pieces in its place, all at
 * its gap's offset. Returns 0, or SL_ENOMEM / SL_EINVAL (a mismatch). */
static int pieces_expand(struct fetch_wait *f, struct kmsg_gaps *g)
{
	size_t n = 0, j = 0, k = 0;
	/* At most every piece, each a gap of its own. */
	struct kmsg_gap *v = malloc((f->piece_count ? f->piece_count : 1) * sizeof *v);
	if (!v)
		return SL_ENOMEM;
	for (int32_t i = 0; i < f->r.responses_count; i++) {
		struct kmsg_fetch_resp_fetchable_topic_response *rt = &f->r.responses[i];
		for (int32_t p = 0; p < rt->partitions_count; p++, k++) {
			kbytes rec = rt->partitions[p].records;
			if (rec.len <= 0 || (size_t)rec.len < g->min_len)
				continue;
			if (j == g->n || g->v[j].len != (size_t)rec.len)
				goto mismatch;
			size_t at = g->v[j++].at, sum = 0;
			for (size_t q = f->piece_first[k]; q < f->piece_first[k + 1]; q++) {
				const struct fetch_piece *pc = &f->pieces[q];
				const uint8_t *ptr = pc->obj ? pc->ptr : f->data.data + pc->off;
				v[n++] = (struct kmsg_gap){ at, ptr, pc->len };
				sum += pc->len;
			}
			if (sum != (size_t)rec.len)
				goto mismatch;
		}
	}
	if (j != g->n)
		goto mismatch;
	free(g->v);
	g->v = v;
	g->n = g->cap = n;
	return 0;
mismatch:
	free(v);
	log_error("fetch: response pieces do not match the records");
	return SL_EINVAL;
}

static void fetch_respond(struct fetch_wait *f)
{
	struct request *req = f->req;
	size_t k = 0;
	struct fetch_hold *h = NULL;
	struct kmsg_gaps gaps = { .min_len = FETCH_GAP_MIN_BYTES };
	if (f->data.oom)
		goto out_fail;
	for (int32_t i = 0; i < f->r.responses_count; i++) {
		struct kmsg_fetch_resp_fetchable_topic_response *rt = &f->r.responses[i];
		for (int32_t j = 0; j < rt->partitions_count; j++, k++) {
			struct kmsg_fetch_resp_partition_data *rp = &rt->partitions[j];
			/* Records under FETCH_GAP_MIN_BYTES are all in f->data
			 * (every cached run of them was copied) and are copied
			 * from there; longer ones are written as pieces. */
			rp->records.ptr = f->data.data ? f->data.data + f->data_off[k] : NULL;
		}
	}
	/* Room for a gap per partition: the encoder never falls back to
	 * copying records (it cannot: they are not contiguous). */
	gaps.cap = f->parts ? f->parts : 1;
	gaps.v = malloc(gaps.cap * sizeof *gaps.v);
	h = malloc(sizeof *h);
	if (!gaps.v || !h)
		goto out_fail;
	kmsg_fetch_resp_encode_gaps(&req->resp, req->api_version, &f->r, &gaps);
	if (req->resp.oom || pieces_expand(f, &gaps) != 0)
		goto out_fail;
	/* f->data's buffer and the pieces' references move to the hold,
	 * released by the server once the response is written or dropped. */
	*h = (struct fetch_hold){ f->data.data, f->data.cap, f->pieces, f->piece_count };
	kbuf_init(&f->data);
	f->pieces = NULL;
	f->piece_count = f->piece_cap = 0;
	fetch_unlink(f);
	uv_timer_stop(&f->timer);
	request_respond_pieces(req, &gaps, fetch_hold_release, h);
	uv_close((uv_handle_t *)&f->timer, fetch_free);
	return;
out_fail:
	free(gaps.v);
	free(h);
	fetch_unlink(f);
	uv_timer_stop(&f->timer);
	request_fail_close(req);
	uv_close((uv_handle_t *)&f->timer, fetch_free);
}

static int cmp_read(const void *x, const void *y)
{
	const struct fetch_read *a = x, *b = y;
	int c = strcmp(a->key, b->key);
	if (c)
		return c;
	return a->byte_offset < b->byte_offset ? -1 : a->byte_offset > b->byte_offset;
}

static void reads_done(struct fetch_wait *f)
{
	for (size_t i = 0; i < f->read_count; i++) {
		struct fetch_read *fr = &f->reads[i];
		if (fr->err) {
			/* The partition's data is incomplete: send none of it. */
			fr->rp->error_code = KERR_KAFKA_STORAGE_ERROR;
			fr->rp->records.len = 0;
		} else {
			batch_patch(f->data.data + fr->data_off, fr->base_offset, 0);
		}
	}
	fetch_respond(f);
}

/* One coalesced range came back: mark its reads. */
struct range_read {
	struct fetch_wait *f;
	size_t first, end; /* f->reads[first, end) */
};

static void range_done(void *arg, int err)
{
	struct range_read *rr = arg;
	struct fetch_wait *f = rr->f;
	if (err)
		log_error("reading %s@%llu: %s", f->reads[rr->first].key,
			  (unsigned long long)f->reads[rr->first].byte_offset, sl_strerror(err));
	for (size_t k = rr->first; k < rr->end; k++)
		f->reads[k].err = err;
	free(rr);
	if (--f->reads_pending == 0)
		reads_done(f);
}

/* Read what the cache lacked through the store's asynchronous get, the
 * adjacent ranges of one object (consecutive batches of a partition)
 * coalesced into one ranged read. */
static void reads_start(struct fetch_wait *f)
{
	qsort(f->reads, f->read_count, sizeof *f->reads, cmp_read);
	f->reads_pending = 1; /* held while starting */
	for (size_t i = 0; i < f->read_count;) {
		struct fetch_read *first = &f->reads[i];
		size_t j = i + 1;
		uint64_t len = first->length;
		while (j < f->read_count && !strcmp(f->reads[j].key, first->key) &&
		       f->reads[j].byte_offset == first->byte_offset + len &&
		       f->reads[j].data_off == first->data_off + len) {
			len += f->reads[j].length;
			j++;
		}
		struct range_read *rr = malloc(sizeof *rr);
		int rc = SL_ENOMEM;
		if (rr) {
			*rr = (struct range_read){ f, i, j };
			f->reads_pending++;
			rc = objstore_get_start(f->a->store, f->a->loop, first->key, first->byte_offset,
						(size_t)len, f->data.data + first->data_off, range_done, rr);
			if (rc) {
				f->reads_pending--;
				free(rr);
			}
		}
		if (rc)
			for (size_t k = i; k < j; k++)
				f->reads[k].err = rc;
		i = j;
	}
	if (--f->reads_pending == 0)
		reads_done(f);
}

static void fetch_finish(struct fetch_wait *f);

/* The read-ahead loads this fetch waited on are done (or failed): build
 * it again from the cache; what is still missing is read by ranges. */
static void fetch_loaded(void *arg, int err)
{
	struct fetch_wait *f = arg;
	if (--f->loads_pending)
		return;
	f->no_load = true;
	fetch_gather(f);
	fetch_finish(f);
}

/* Respond now; or once the read-ahead loads already in flight for what
 * it misses have arrived (rather than reading the same bytes twice); or
 * after reading the batches the cache did not have by ranges. */
static void fetch_finish(struct fetch_wait *f)
{
	struct agent *a = f->a;
	for (size_t i = 0; i < f->read_count && !f->no_load && !f->data.oom; i++)
		if (cache_wait(a->cache, f->reads[i].key, f->reads[i].byte_offset, fetch_loaded, f) == 0)
			f->loads_pending++;
	if (f->loads_pending) {
		fetch_unlink(f);
		uv_timer_stop(&f->timer);
		return;
	}
	if (f->read_count == 0 || f->data.oom) {
		fetch_respond(f);
		return;
	}
	fetch_unlink(f);
	uv_timer_stop(&f->timer);
	reads_start(f);
}

static void fetch_timeout(uv_timer_t *t)
{
	struct fetch_wait *f = t->data;
	fetch_gather(f);
	fetch_finish(f);
}

void fetch_wake(struct agent *a)
{
	struct fetch_wait *f = a->waiters;
	while (f) {
		struct fetch_wait *next = f->next;
		size_t n = fetch_gather(f);
		if (n >= (size_t)(f->m->min_bytes > 0 ? f->m->min_bytes : 0) || !request_conn_open(f->req))
			fetch_finish(f);
		f = next;
	}
}

void fetch_shutdown(struct agent *a)
{
	while (a->waiters) {
		struct fetch_wait *f = a->waiters;
		fetch_gather(f);
		/* Shutting down: no store reads; what the cache had goes out. */
		for (size_t i = 0; i < f->read_count; i++)
			f->reads[i].rp->records.len = 0;
		f->read_count = 0;
		fetch_respond(f);
	}
}

void handle_fetch(struct agent *a, struct request *req, const struct kmsg_fetch_req *m)
{
	struct fetch_wait *f = calloc(1, sizeof *f);
	if (!f) {
		request_fail_close(req);
		return;
	}
	f->a = a;
	f->req = req;
	kbuf_init(&f->data);
	uv_timer_init(a->loop, &f->timer);
	f->timer.data = f;
	f->m = m;
	struct kmsg_fetch_resp *r = &f->r;
	kmsg_fetch_resp_init(r);
	r->error_code = KERR_NONE;
	r->session_id = 0;
	int32_t topics = m->topics_count > 0 ? m->topics_count : 0;
	size_t parts = 0;
	r->responses_count = topics;
	if (!REQ_ARRAY(req, topics, r->responses))
		goto out_fail;
	for (int32_t i = 0; i < topics; i++) {
		struct kmsg_fetch_req_fetch_topic *qt = &m->topics[i];
		struct kmsg_fetch_resp_fetchable_topic_response *rt = &r->responses[i];
		kmsg_fetch_resp_fetchable_topic_response_init(rt);
		rt->topic = qt->topic;
		memcpy(rt->topic_id, qt->topic_id, 16);
		rt->partitions_count = qt->partitions_count > 0 ? qt->partitions_count : 0;
		if (!REQ_ARRAY(req, rt->partitions_count, rt->partitions))
			goto out_fail;
		for (int32_t j = 0; j < rt->partitions_count; j++) {
			kmsg_fetch_resp_partition_data_init(&rt->partitions[j]);
			rt->partitions[j].partition_index = qt->partitions[j].partition;
			rt->partitions[j].aborted_transactions_count = req->api_version >= 4 ? 0 : -1;
			rt->partitions[j].preferred_read_replica = -1;
		}
		parts += (size_t)rt->partitions_count;
	}
	f->parts = parts;
	if (!REQ_ARRAY(req, parts + 1, f->data_off) || !REQ_ARRAY(req, parts + 1, f->piece_first) ||
	    !REQ_ARRAY(req, parts + 1, f->slot_topic) ||
	    !REQ_ARRAY(req, parts + 1, f->slot_partition) ||
	    !REQ_ARRAY(req, parts + 1, f->slot_query))
		goto out_fail;
	/* Sessions are not kept: a fetch in an unknown session is refused so
	 * the client starts over with a full fetch. */
	if (req->api_version >= 7 && m->session_id != 0) {
		r->error_code = KERR_FETCH_SESSION_ID_NOT_FOUND;
		fetch_respond(f);
		return;
	}
	size_t n = fetch_gather(f);
	int64_t wait_ms = m->max_wait_ms;
	if (wait_ms > SL_FETCH_WAIT_MS_MAX)
		wait_ms = SL_FETCH_WAIT_MS_MAX;
	if (n >= (size_t)(m->min_bytes > 0 ? m->min_bytes : 0) || wait_ms <= 0 || a->draining) {
		fetch_finish(f);
		return;
	}
	f->waiting = true;
	f->next = a->waiters;
	if (a->waiters)
		a->waiters->prev = f;
	a->waiters = f;
	uv_timer_start(&f->timer, fetch_timeout, (uint64_t)wait_ms, 0);
	return;
out_fail:
	uv_close((uv_handle_t *)&f->timer, fetch_free);
	request_fail_close(req);
}
