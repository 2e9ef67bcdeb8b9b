/* clean.c — one cleaning pass over a compacted partition (clean.h):
 * rows and bytes in, the cleaner's verdicts applied, one new object and
 * its swap out. */
#include "storage/clean.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/log.h"
#include "meta/meta.h"
#include "objstore/objstore.h"
#include "storage/batch.h"
#include "storage/merge.h"
#include "storage/object.h"

/* Batches asked of the store at a time. */
#define CLEAN_PAGE_BATCHES 20000
/* Aborted transactions a pass reads at most: past them it cleans only up
 * to the first offset of the last one read. */
#define CLEAN_ABORTED_MAX 4096

enum compact_txn_verdict clean_txn_verdict(void *arg, int64_t base_offset,
					   const struct batch_info *info)
{
	const struct clean_aborted *t = arg;
	if (info->attributes & BATCH_ATTR_CONTROL)
		return COMPACT_TXN_KEEP;
	/* The last transaction starting at or before the batch, then back
	 * while one of those could still reach it. */
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->v[mid].first_offset <= base_offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t k = lo; k-- > 0 && t->max_last[k] >= base_offset;)
		if (t->v[k].producer_id == info->producer_id && t->v[k].last_offset >= base_offset)
			return COMPACT_TXN_ABORTED;
	return COMPACT_TXN_KEEP;
}

/* Reads the aborted transactions overlapping [from, *end); lowers *end
 * when there are more than CLEAN_ABORTED_MAX. */
static int aborted_read(struct meta *m, int64_t tid, int32_t partition, int64_t from,
			int64_t *end, struct clean_aborted *t)
{
	t->v = malloc(CLEAN_ABORTED_MAX * sizeof *t->v);
	t->max_last = malloc(CLEAN_ABORTED_MAX * sizeof *t->max_last);
	if (!t->v || !t->max_last)
		return SL_ENOMEM;
	int rc = meta_aborted_txns(m, tid, partition, from, *end, t->v, CLEAN_ABORTED_MAX, &t->n);
	if (rc == SL_EUNSUPPORTED) {
		t->n = 0;
		return 0;
	}
	if (rc)
		return rc;
	if (t->n == CLEAN_ABORTED_MAX && t->v[t->n - 1].first_offset < *end)
		*end = t->v[t->n - 1].first_offset;
	for (size_t i = 0; i < t->n; i++)
		t->max_last[i] = i && t->max_last[i - 1] > t->v[i].last_offset ? t->max_last[i - 1]
										 : t->v[i].last_offset;
	return 0;
}

/* What a pass read of the partition. */
struct pass {
	struct meta_partition part;
	struct meta_batch_row *b; /* batches from the store's first row on */
	size_t nb, capb;
	struct meta_batch_row *rows; /* b joined into the stored rows */
	uint32_t *counts;            /* batches per row */
	size_t nr;
	size_t r0;                   /* the first row reaching the log start */
	size_t b0;                   /* its first batch in b */
	bool whole;                  /* rows read to the partition's end */
	struct compact_plan plan;
	int64_t first_dirty;
};

static void pass_free(struct pass *x)
{
	free(x->b);
	free(x->rows);
	free(x->counts);
}

/* Reads the partition's rows (up to bytes_max of batches) and plans. */
static int pass_plan(struct meta *m, int64_t tid, int32_t partition,
		     const struct compact_config *c, int64_t now_ms, size_t bytes_max,
		     struct pass *x)
{
	int rc = meta_partition_get(m, tid, partition, &x->part);
	if (rc)
		return rc;
	/* From offset 0, so the first rows come whole (a trim deletes rows
	 * below the log start in chunks; a row may straddle it). */
	int64_t from = 0;
	uint64_t bytes = 0;
	bool truncated = false;
	for (;;) {
		if (x->capb - x->nb < CLEAN_PAGE_BATCHES) {
			size_t cap = x->capb ? x->capb * 2 : CLEAN_PAGE_BATCHES;
			struct meta_batch_row *v = realloc(x->b, cap * sizeof *v);
			if (!v)
				return SL_ENOMEM;
			x->b = v;
			x->capb = cap;
		}
		struct meta_batch_query q = { .tid = tid, .partition = partition, .offset = from,
					      .max_rows = CLEAN_PAGE_BATCHES };
		rc = meta_batches_from_many(m, &q, 1, x->b + x->nb, CLEAN_PAGE_BATCHES);
		if (rc)
			return rc;
		size_t i;
		for (i = 0; i < q.n && !truncated; i++) {
			bytes += x->b[x->nb + i].length;
			truncated = bytes > bytes_max || x->nb + i + 1 >= SL_OBJECT_BATCHES_MAX;
		}
		x->nb += i;
		if (truncated || q.n < CLEAN_PAGE_BATCHES)
			break;
		from = x->b[x->nb - 1].last_offset + 1;
	}
	if (x->nb == 0)
		return 0;
	x->rows = malloc(x->nb * sizeof *x->rows);
	x->counts = malloc(x->nb * sizeof *x->counts);
	if (!x->rows || !x->counts)
		return SL_ENOMEM;
	memcpy(x->rows, x->b, x->nb * sizeof *x->rows);
	size_t joined = merge_rows_join(x->rows, x->nb, x->counts);
	x->nr = joined;
	x->whole = !truncated && joined <= SL_MERGE_RUN_ROWS_MAX;
	/* A read cut short may end inside a row: the last one waits. */
	if (truncated && x->nr > 0)
		x->nr--;
	if (x->nr > SL_MERGE_RUN_ROWS_MAX)
		x->nr = SL_MERGE_RUN_ROWS_MAX;
	while (x->r0 < x->nr && x->rows[x->r0].last_offset < x->part.log_start_offset)
		x->b0 += x->counts[x->r0++];
	size_t n = x->nr - x->r0;
	if (n == 0)
		return 0;
	/* The row after those taken (cut by the bound, or past the row
	 * limit) goes to the plan as its last span: the partition's tail is
	 * further on, so the last row taken may be cleaned. (Without it a
	 * pass of two rows, the cleaned head and one merged object of 64
	 * MiB, would take that object for the tail and clean nothing, ever.) */
	size_t ns = n + (x->nr < joined);
	struct compact_span *spans = malloc(ns * sizeof *spans);
	if (!spans)
		return SL_ENOMEM;
	for (size_t i = 0; i < ns; i++) {
		const struct meta_batch_row *r = &x->rows[x->r0 + i];
		spans[i] = (struct compact_span){ r->base_offset, r->last_offset, r->max_timestamp,
						  r->length };
	}
	x->first_dirty = x->part.clean_offset > x->part.log_start_offset ? x->part.clean_offset
									 : x->part.log_start_offset;
	rc = compact_plan(c, now_ms, x->first_dirty, x->part.last_stable_offset, spans, ns, &x->plan);
	free(spans);
	return rc;
}

static void plan_stats(const struct pass *x, struct clean_stats *st)
{
	st->due = x->plan.due;
	st->dirty_bytes = x->plan.dirty_bytes;
	st->dirty_ratio = x->plan.cleanable_bytes > 0
		? (double)x->plan.dirty_bytes / (double)x->plan.cleanable_bytes : 0;
	st->clean_offset = x->part.clean_offset;
	st->idle = x->whole && x->nr > x->r0 && x->first_dirty >= x->rows[x->nr - 1].base_offset;
}

int clean_plan_partition(struct meta *m, int64_t tid, int32_t partition,
			 const struct compact_config *c, int64_t now_ms, size_t bytes_max,
			 struct clean_stats *st)
{
	struct pass x = { 0 };
	int rc = pass_plan(m, tid, partition, c, now_ms, bytes_max, &x);
	if (!rc)
		plan_stats(&x, st);
	pass_free(&x);
	return rc;
}

/* The cleaned object's batches, built from the verdicts. */
struct out {
	struct meta_compact_batch *cb;
	struct object_entry *entries;
	const uint8_t **data;
	size_t n;
	struct kbuf fillers; /* the empty headers standing for dropped runs */
	size_t *filler_pos;  /* per output batch: its place in fillers, or SIZE_MAX */
};

static void out_free(struct out *o)
{
	free(o->cb);
	free(o->entries);
	free(o->data);
	free(o->filler_pos);
	kbuf_free(&o->fillers);
}

/* Appends one output batch of bytes p (len), or, with p NULL, the
 * filler at fpos. */
static int out_add(struct out *o, const uint8_t *topic_id, int32_t partition, const uint8_t *p,
		   size_t len, size_t fpos, int64_t base_offset, int64_t last_offset,
		   int64_t max_timestamp)
{
	struct batch_info info;
	const uint8_t *h = p ? p : o->fillers.data + fpos;
	int rc = batch_parse_header(h, len, &info);
	if (rc)
		return rc;
	size_t i = o->n++;
	o->cb[i] = (struct meta_compact_batch){
		.base_offset = base_offset, .last_offset = last_offset, .length = (uint32_t)len,
		.record_count = info.record_count, .max_timestamp = max_timestamp,
		.attributes = (int16_t)(info.attributes &
					(META_BATCH_ATTR_TRANSACTIONAL | META_BATCH_ATTR_CONTROL)) };
	memcpy(o->entries[i].topic_id, topic_id, 16);
	o->entries[i].partition = partition;
	o->entries[i].length = (uint32_t)len;
	o->entries[i].record_count = info.record_count;
	o->data[i] = p;
	o->filler_pos[i] = p ? SIZE_MAX : fpos;
	return 0;
}

/* The run of dropped batches [base, last] as one empty header. Without
 * a timestamp: ListOffsets by time must not answer offsets whose records
 * are gone (it skips batches without one), and retention counts it from
 * its object's creation, the oldest source's. */
static int out_filler(struct out *o, const uint8_t *topic_id, int32_t partition, int64_t base,
		      int64_t last, int32_t leader_epoch)
{
	const int64_t max_timestamp = -1;
	while (base <= last) {
		int64_t end = last - base > INT32_MAX ? base + INT32_MAX : last;
		size_t pos = o->fillers.len;
		int rc = compact_write_empty(&o->fillers, base, leader_epoch, (int32_t)(end - base),
					     max_timestamp);
		if (rc)
			return rc;
		rc = out_add(o, topic_id, partition, NULL, o->fillers.len - pos, pos, base, end,
			     max_timestamp);
		if (rc)
			return rc;
		base = end + 1;
	}
	return 0;
}

int clean_partition(struct meta *m, struct objstore *s, int64_t tid, int32_t partition,
		    const uint8_t topic_id[16], const struct compact_config *c, int64_t now_ms,
		    bool force, size_t bytes_max, struct merge_buf *buf, struct clean_stats *st)
{
	struct merge_buf own = { 0 };
	if (!buf)
		buf = &own;
	struct pass x = { 0 };
	struct compact_result res = { 0 };
	struct out o = { 0 };
	kbuf_init(&o.fillers);
	struct kbuf obj;
	kbuf_init(&obj);
	struct compact_batch *in = NULL;
	struct meta_merge_row *mr = NULL;
	int64_t *gone = NULL;
	size_t ngone = 0;
	struct clean_aborted aborted = { 0 };
	int rc = pass_plan(m, tid, partition, c, now_ms, bytes_max, &x);
	if (rc)
		goto out;
	plan_stats(&x, st);
	if (x.nr == x.r0 || x.plan.spans_cleanable == 0 || x.plan.dirty_bytes == 0 ||
	    (!force && !x.plan.due))
		goto out;

	/* The bytes of every row read: those past the plan's end only tell
	 * the producers' last batches. */
	size_t nrows = x.nr - x.r0, nb = 0;
	uint64_t total = 0;
	for (size_t i = x.r0; i < x.nr; i++) {
		total += x.rows[i].length;
		nb += x.counts[i];
	}
	rc = SL_ENOMEM;
	uint8_t *body = merge_buf_reserve(buf, total ? total : 1);
	in = calloc(nb, sizeof *in);
	if (!body || !in)
		goto out;
	rc = merge_read_rows(s, x.rows + x.r0, nrows, body, &st->gets);
	if (rc)
		goto out;
	uint64_t pos = 0;
	for (size_t i = 0; i < nb; i++) {
		const struct meta_batch_row *b = &x.b[x.b0 + i];
		in[i] = (struct compact_batch){ b->base_offset, body + pos, b->length };
		pos += b->length;
	}
	rc = aborted_read(m, tid, partition, x.rows[x.r0].base_offset, &x.plan.clean_end, &aborted);
	if (rc)
		goto out;
	rc = compact_clean(c, now_ms, x.first_dirty, &x.plan, in, nb, clean_txn_verdict, &aborted, &res);
	if (rc)
		goto out;
	/* The rows cleaned: those starting below the pass's end (the last
	 * may reach past it: its batches there stay as they are). */
	size_t rk = x.r0, nbk = 0;
	while (rk < x.nr && x.rows[rk].base_offset < res.clean_end)
		nbk += x.counts[rk++];
	if (rk == x.r0)
		goto out;

	rc = SL_ENOMEM;
	o.cb = calloc(nbk, sizeof *o.cb);
	o.entries = calloc(nbk, sizeof *o.entries);
	o.data = calloc(nbk, sizeof *o.data);
	o.filler_pos = calloc(nbk, sizeof *o.filler_pos);
	mr = calloc(rk - x.r0, sizeof *mr);
	gone = malloc(nbk * sizeof *gone);
	if (!o.cb || !o.entries || !o.data || !o.filler_pos || !mr || !gone)
		goto out;
	for (size_t i = 0; i < nbk; i++)
		if (res.batches[i].aborted_gone)
			gone[ngone++] = x.b[x.b0 + i].base_offset;
	rc = 0;
	int64_t run_base = -1, run_last = -1;
	int32_t run_epoch = 0;
	for (size_t i = 0; !rc && i < nbk; i++) {
		const struct compact_outcome *v = &res.batches[i];
		const struct meta_batch_row *b = &x.b[x.b0 + i];
		if (v->verdict == COMPACT_DROP) {
			if (run_base < 0) {
				run_base = b->base_offset;
				run_epoch = (int32_t)be32_load(in[i].bytes + 12);
			}
			run_last = b->last_offset;
			continue;
		}
		if (run_base >= 0) {
			rc = out_filler(&o, topic_id, partition, run_base, run_last, run_epoch);
			run_base = -1;
			if (rc)
				break;
		}
		if (v->verdict == COMPACT_KEEP) {
			rc = out_add(&o, topic_id, partition, in[i].bytes, in[i].len, 0,
				     b->base_offset, b->last_offset, b->max_timestamp);
		} else {
			const uint8_t *p = res.out.data + v->pos;
			struct batch_info info;
			rc = batch_parse_header(p, v->len, &info);
			if (!rc)
				rc = out_add(&o, topic_id, partition, p, v->len, 0, b->base_offset,
					     b->last_offset, info.max_timestamp);
		}
	}
	if (!rc && run_base >= 0)
		rc = out_filler(&o, topic_id, partition, run_base, run_last, run_epoch);
	if (!rc && o.fillers.oom)
		rc = SL_ENOMEM;
	if (rc)
		goto out;
	/* The fillers' buffer moved while it grew: point at it now. */
	for (size_t i = 0; i < o.n; i++)
		if (o.filler_pos[i] != SIZE_MAX)
			o.data[i] = o.fillers.data + o.filler_pos[i];
	/* Room for the whole object at once: growing by doubling would copy
	 * it over and over. */
	size_t obj_bytes = OBJECT_HEADER_BYTES + object_footer_bytes(o.n);
	for (size_t i = 0; i < o.n; i++)
		obj_bytes += o.entries[i].length;
	rc = SL_ENOMEM;
	if (!kbuf_reserve(&obj, obj_bytes))
		goto out;
	rc = object_encode(&obj, o.entries, o.data, o.n);
	if (rc)
		goto out;
	uint64_t written = 0;
	for (size_t i = 0; i < o.n; i++) {
		o.cb[i].byte_offset = o.entries[i].byte_offset;
		written += o.cb[i].length;
	}
	uint64_t read = 0;
	for (size_t i = x.r0; i < rk; i++) {
		const struct meta_batch_row *r = &x.rows[i];
		struct meta_merge_row *w = &mr[i - x.r0];
		*w = (struct meta_merge_row){ .base_offset = r->base_offset,
					      .last_offset = r->last_offset,
					      .byte_offset = r->byte_offset, .length = r->length };
		memcpy(w->object_key, r->object_key, sizeof w->object_key);
		read += r->length;
	}
	char key[META_OBJECT_KEY_BYTES];
	merge_key(key, sizeof key);
	rc = objstore_put(s, key, obj.data, obj.len);
	if (rc)
		goto out;
	struct meta_merge cp = { tid, partition, key, obj.len, mr, rk - x.r0,
				 o.cb, o.n, res.clean_end, gone, ngone };
	rc = meta_compact_swap(m, &cp);
	if (rc == SL_ENOTFOUND) {
		/* Nothing names the new object (a failure leaves it to the
		 * orphan sweep). */
		st->refused++;
		objstore_del(s, key);
		rc = 0;
	} else if (!rc) {
		st->swaps++;
		st->rows += rk - x.r0;
		st->bytes_read += read;
		st->bytes_written += written;
		st->records_read += (uint64_t)res.records_read;
		st->records_kept += (uint64_t)res.records_kept;
		st->aborted_gone += ngone;
		st->clean_offset = res.clean_end > x.part.clean_offset ? res.clean_end
								       : x.part.clean_offset;
	}
out:
	free(aborted.v);
	free(aborted.max_last);
	free(gone);
	kbuf_free(&obj);
	free(mr);
	out_free(&o);
	compact_result_free(&res);
	free(in);
	merge_buf_free(&own);
	pass_free(&x);
	return rc;
}
