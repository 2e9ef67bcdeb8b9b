/* clean.c — one cleaning pass over a compacted partition (clean.h):
 * rows and bytes in, the cleaner's verdicts applied, one new object and
 * its swap out. */
#include "storage/clean.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/grow.h"
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
	/* A marker: whether its own transaction is still listed (its row,
	 * last offset the marker's). */
	bool control = info->attributes & BATCH_ATTR_CONTROL;
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
		if (t->v[k].producer_id == info->producer_id &&
		    (control ? t->v[k].last_offset == base_offset : t->v[k].last_offset >= base_offset))
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

/* A pass over one partition: its plan, then chunks to scan, then chunks
 * to clean (clean.h). */
struct clean_pass {
	struct meta *m;
	struct objstore *s;
	int64_t tid;
	int32_t partition;
	uint8_t topic_id[16];
	struct compact_config c;
	int64_t now_ms;
	uint64_t bytes_max;
	struct meta_partition part;
	struct clean_row *rows;   /* from the first row reaching the log start */
	size_t nr, capr;
	bool whole;               /* read to the partition's end */
	uint64_t batches_read;    /* batch rows the planning was handed */
	bool may_be_idle;         /* plan_may_be_due: all past the
				     checkpoint may be the tail row */
	struct compact_plan plan;
	int64_t first_dirty;
	/* The pass itself (clean_pass_begin on): */
	struct clean_aborted aborted;
	struct compact_scan *scan;
	size_t scan_rows;         /* rows [0, scan_rows) are scanned */
	size_t clean_rows;        /* rows [0, clean_rows) are cleaned: those
				     starting below the pass's end */
	size_t next;              /* the next row to scan or clean */
	bool cleaning;            /* scanned: now cleaning */
	int64_t end;              /* the pass's end (the new checkpoint) */
	struct chunk *held;       /* the one chunk, when it holds all to scan
				     (cleaned in the step that scanned it) */
	struct merge_buf *buf;    /* a chunk's bytes: the caller's, or own */
	struct merge_buf own;
};

/* Rows of batches as meta_batches_from_many hands them out, joined into
 * the stored rows and planned, from offset 0 (a trim deletes rows below
 * the log start in chunks; a row may straddle it), at most
 * SL_COMPACT_PLAN_ROWS_MAX (past them the last one read stands for the
 * tail: not cleaned). */
static int plan_rows(struct clean_pass *x)
{
	size_t cap = CLEAN_PAGE_BATCHES + MERGE_ROW_BATCHES_MAX;
	struct meta_batch_row *b = malloc(cap * sizeof *b), *j = malloc(cap * sizeof *j);
	uint32_t *counts = malloc(cap * sizeof *counts);
	int rc = SL_ENOMEM;
	if (!b || !j || !counts)
		goto out;
	size_t carry = 0;
	int64_t from = 0;
	x->whole = true;
	for (;;) {
		struct meta_batch_query q = { .tid = x->tid, .partition = x->partition,
					      .offset = from, .max_rows = CLEAN_PAGE_BATCHES };
		rc = meta_batches_from_many(x->m, &q, 1, b + carry, CLEAN_PAGE_BATCHES);
		if (rc)
			goto out;
		x->batches_read += q.n;
		size_t n = carry + q.n;
		bool more = q.n == CLEAN_PAGE_BATCHES;
		if (n == 0)
			break;
		from = b[n - 1].last_offset + 1;
		memcpy(j, b, n * sizeof *j);
		size_t nj = merge_rows_join(j, n, counts);
		/* The last row may go on in the next page. */
		size_t take = more ? nj - 1 : nj;
		for (size_t k = 0; k < take; k++) {
			if (j[k].last_offset < x->part.log_start_offset)
				continue;
			if (x->nr == SL_COMPACT_PLAN_ROWS_MAX) {
				x->whole = false;
				rc = 0;
				goto out;
			}
			if (array_grow(&x->rows, &x->capr, x->nr, sizeof *x->rows, 1024) != 0) {
				rc = SL_ENOMEM;
				goto out;
			}
			x->rows[x->nr++] = (struct clean_row){ j[k].base_offset, j[k].last_offset,
							       j[k].max_timestamp, j[k].length,
							       counts[k] };
		}
		if (!more)
			break;
		carry = counts[nj - 1];
		memmove(b, b + n - carry, carry * sizeof *b);
	}
	rc = 0;
out:
	free(b);
	free(j);
	free(counts);
	return rc;
}

static int64_t first_dirty(const struct meta_partition *p)
{
	return p->clean_offset > p->log_start_offset ? p->clean_offset : p->log_start_offset;
}

/* Whether the plan may find the partition due, from bounds the metadata
 * gives without its rows (compact_plan_may_be_due): the bytes on each
 * side of the first dirty offset (one aggregate), and the first batches
 * from it, as many as the first dirty span may start after: the span
 * holding the first batch at or past it may begin below it and joins at
 * most MERGE_ROW_BATCHES_MAX batches (merge_rows_join), so the first
 * dirty span starts at one of the first MERGE_ROW_BATCHES_MAX, and its
 * largest timestamp is at least theirs. On a store without the
 * aggregate, always maybe. */
static int plan_may_be_due(struct clean_pass *x, bool *maybe)
{
	*maybe = true;
	int64_t fd = first_dirty(&x->part);
	struct compact_bound bd = { .dirty_ts_min = INT64_MAX };
	int rc = meta_clean_bytes(x->m, x->tid, x->partition, x->part.log_start_offset, fd,
				  &bd.clean_bytes_min, &bd.dirty_bytes_max);
	if (rc == SL_EUNSUPPORTED)
		return 0;
	if (rc)
		return rc;
	/* One more than the span bound: the first may start below fd. */
	enum { WANT = MERGE_ROW_BATCHES_MAX + 1 };
	struct meta_batch_row *b = malloc(WANT * sizeof *b);
	if (!b)
		return SL_ENOMEM;
	struct meta_batch_query q = { .tid = x->tid, .partition = x->partition, .offset = fd,
				      .max_rows = WANT };
	rc = meta_batches_from_many(x->m, &q, 1, b, WANT);
	if (!rc) {
		x->batches_read += q.n;
		/* Idle (plan_stats) needs every batch from fd on in the last
		 * joined span: one object's, adjacent, read to the end. */
		x->may_be_idle = q.n < WANT;
		size_t seen = 0;
		for (size_t i = 0; i < q.n && seen < MERGE_ROW_BATCHES_MAX; i++) {
			if (i > 0 && (strcmp(b[i].object_key, b[i - 1].object_key) ||
				      b[i].attributes != b[i - 1].attributes ||
				      b[i].byte_offset != b[i - 1].byte_offset + b[i - 1].length))
				x->may_be_idle = false;
			if (b[i].base_offset < fd)
				continue;
			seen++;
			bd.dirty_any = true;
			int64_t ts = b[i].max_timestamp < 0 ? -1 : b[i].max_timestamp;
			if (ts < bd.dirty_ts_min)
				bd.dirty_ts_min = ts;
		}
		*maybe = compact_plan_may_be_due(&x->c, x->now_ms, &bd);
	}
	free(b);
	return rc;
}

/* Reads the partition's rows and plans (the partition read). */
static int pass_plan_rows(struct clean_pass *x)
{
	int rc = plan_rows(x);
	if (rc || x->nr == 0)
		return rc;
	struct compact_span *spans = malloc(x->nr * sizeof *spans);
	if (!spans)
		return SL_ENOMEM;
	for (size_t i = 0; i < x->nr; i++) {
		const struct clean_row *r = &x->rows[i];
		spans[i] = (struct compact_span){ r->base_offset, r->last_offset, r->max_timestamp,
						  (int64_t)r->bytes };
	}
	x->first_dirty = first_dirty(&x->part);
	rc = compact_plan(&x->c, x->now_ms, x->first_dirty, x->part.last_stable_offset, spans,
			  x->nr, &x->plan);
	free(spans);
	return rc;
}

/* Reads the partition and its rows, and plans. */
static int pass_plan(struct clean_pass *x)
{
	int rc = meta_partition_get(x->m, x->tid, x->partition, &x->part);
	return rc ? rc : pass_plan_rows(x);
}

static void plan_stats(const struct clean_pass *x, struct clean_stats *st)
{
	st->due = x->plan.due;
	st->dirty_bytes = x->plan.dirty_bytes;
	st->dirty_ratio = x->plan.cleanable_bytes > 0
		? (double)x->plan.dirty_bytes / (double)x->plan.cleanable_bytes : 0;
	st->clean_offset = x->part.clean_offset;
	st->idle = x->whole && x->nr > 0 && x->first_dirty >= x->rows[x->nr - 1].base_offset;
	st->plan_batches = x->batches_read;
}

size_t clean_chunk_end(const struct clean_row *rows, size_t i, size_t n, uint64_t bytes_max)
{
	if (i >= n)
		return n;
	uint64_t bytes = rows[i].bytes, batches = rows[i].batches;
	size_t j = i + 1;
	while (j < n && j - i < SL_MERGE_RUN_ROWS_MAX && bytes + rows[j].bytes <= bytes_max &&
	       batches + rows[j].batches <= SL_OBJECT_BATCHES_MAX) {
		bytes += rows[j].bytes;
		batches += rows[j].batches;
		j++;
	}
	return j;
}

/* What one chunk read: the stored rows [r, r + nr) of the plan. */
struct chunk {
	size_t r, nr;
	struct meta_batch_row *b;    /* its batches */
	size_t nb;
	struct meta_batch_row *rows; /* b joined: the stored rows */
	uint32_t *counts;            /* batches per row */
	uint8_t *body;               /* in the pass's buffer */
	struct compact_batch *in;    /* per batch, in body */
};

static void chunk_free(struct chunk *ck)
{
	if (!ck)
		return;
	free(ck->b);
	free(ck->rows);
	free(ck->counts);
	free(ck->in);
	free(ck);
}

/* A chunk's rows changed since the plan (merged, trimmed, cleaned by
 * another process): the pass ends there, as a refused swap. */
#define CHUNK_CHANGED 1

/* Reads the plan's rows [r, r2): their batches from the metadata store,
 * checked against the plan, and their bytes. 0, CHUNK_CHANGED or an
 * error. */
static int chunk_read(struct clean_pass *x, size_t r, size_t r2, struct chunk **out,
		      struct clean_stats *st)
{
	struct chunk *ck = calloc(1, sizeof *ck);
	if (!ck)
		return SL_ENOMEM;
	ck->r = r;
	ck->nr = r2 - r;
	size_t want = 0;
	uint64_t bytes = 0;
	for (size_t i = r; i < r2; i++) {
		want += x->rows[i].batches;
		bytes += x->rows[i].bytes;
	}
	int rc = SL_ENOMEM;
	ck->b = malloc(want * sizeof *ck->b);
	ck->rows = malloc(want * sizeof *ck->rows);
	ck->counts = malloc(want * sizeof *ck->counts);
	ck->in = calloc(want, sizeof *ck->in);
	ck->body = merge_buf_reserve(x->buf, bytes ? bytes : 1);
	if (!ck->b || !ck->rows || !ck->counts || !ck->in || !ck->body)
		goto out;
	int64_t from = x->rows[r].base_offset;
	while (ck->nb < want) {
		size_t page = want - ck->nb < CLEAN_PAGE_BATCHES ? want - ck->nb : CLEAN_PAGE_BATCHES;
		struct meta_batch_query q = { .tid = x->tid, .partition = x->partition,
					      .offset = from, .max_rows = page };
		rc = meta_batches_from_many(x->m, &q, 1, ck->b + ck->nb, page);
		if (rc)
			goto out;
		ck->nb += q.n;
		if (q.n < page)
			break;
		from = ck->b[ck->nb - 1].last_offset + 1;
	}
	memcpy(ck->rows, ck->b, ck->nb * sizeof *ck->rows);
	size_t nj = merge_rows_join(ck->rows, ck->nb, ck->counts);
	rc = CHUNK_CHANGED;
	if (ck->nb != want || nj != ck->nr)
		goto out;
	for (size_t i = 0; i < nj; i++) {
		const struct clean_row *p = &x->rows[r + i];
		if (ck->rows[i].base_offset != p->base_offset ||
		    ck->rows[i].last_offset != p->last_offset || ck->rows[i].length != p->bytes ||
		    ck->counts[i] != p->batches)
			goto out;
	}
	rc = merge_read_rows(x->s, ck->rows, nj, ck->body, &st->gets);
	if (rc)
		goto out;
	uint64_t pos = 0;
	for (size_t i = 0; i < ck->nb; i++) {
		ck->in[i] = (struct compact_batch){ ck->b[i].base_offset, ck->body + pos,
						    ck->b[i].length };
		pos += ck->b[i].length;
	}
	*out = ck;
	return 0;
out:
	chunk_free(ck);
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

/* Writes the cleaned rows [0, nrk) of chunk ck (their first nbk
 * batches: res's verdicts) as one object and swaps it in, the checkpoint
 * raised to clean_offset. *refused when the swap was. */
static int chunk_swap(struct clean_pass *x, const struct chunk *ck, size_t nrk, size_t nbk,
		      const struct compact_result *res, int64_t clean_offset,
		      struct clean_stats *st, bool *refused)
{
	const uint8_t *topic_id = x->topic_id;
	int32_t partition = x->partition;
	struct out o = { 0 };
	kbuf_init(&o.fillers);
	struct kbuf obj;
	kbuf_init(&obj);
	int64_t *gone = NULL;
	size_t ngone = 0;
	int rc = SL_ENOMEM;
	o.cb = calloc(nbk, sizeof *o.cb);
	o.entries = calloc(nbk, sizeof *o.entries);
	o.data = calloc(nbk, sizeof *o.data);
	o.filler_pos = calloc(nbk, sizeof *o.filler_pos);
	struct meta_merge_row *mr = calloc(nrk, sizeof *mr);
	gone = malloc(nbk * sizeof *gone);
	if (!o.cb || !o.entries || !o.data || !o.filler_pos || !mr || !gone)
		goto out;
	for (size_t i = 0; i < nbk; i++)
		if (res->batches[i].aborted_gone)
			gone[ngone++] = ck->b[i].base_offset;
	rc = 0;
	int64_t run_base = -1, run_last = -1;
	int32_t run_epoch = 0;
	for (size_t i = 0; !rc && i < nbk; i++) {
		const struct compact_outcome *v = &res->batches[i];
		const struct meta_batch_row *b = &ck->b[i];
		const struct compact_batch *in = &ck->in[i];
		if (v->verdict == COMPACT_DROP) {
			if (run_base < 0) {
				run_base = b->base_offset;
				run_epoch = (int32_t)be32_load(in->bytes + 12);
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
			rc = out_add(&o, topic_id, partition, in->bytes, in->len, 0, b->base_offset,
				     b->last_offset, b->max_timestamp);
		} else {
			const uint8_t *p = res->out.data + v->pos;
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
	for (size_t i = 0; i < nrk; i++) {
		const struct meta_batch_row *r = &ck->rows[i];
		struct meta_merge_row *w = &mr[i];
		*w = (struct meta_merge_row){ .base_offset = r->base_offset,
					      .last_offset = r->last_offset,
					      .byte_offset = r->byte_offset, .length = r->length };
		memcpy(w->object_key, r->object_key, sizeof w->object_key);
		read += r->length;
	}
	char key[META_OBJECT_KEY_BYTES];
	merge_key(key, sizeof key);
	struct iovec one = { obj.data, obj.len };
	rc = objstore_putv(x->s, key, &one, 1, OBJSTORE_PUT_PACED);
	if (rc)
		goto out;
	struct meta_merge cp = { x->tid, partition, key, obj.len, mr, nrk,
				 o.cb, o.n, clean_offset, gone, ngone };
	rc = meta_compact_swap(x->m, &cp);
	if (rc == SL_ENOTFOUND) {
		/* Nothing names the new object (a failure leaves it to the
		 * orphan sweep). */
		st->refused++;
		*refused = true;
		objstore_del(x->s, key);
		rc = 0;
	} else if (!rc) {
		st->swaps++;
		st->rows += nrk;
		st->bytes_read += read;
		st->bytes_written += written;
		st->aborted_gone += ngone;
		if (clean_offset > st->clean_offset)
			st->clean_offset = clean_offset;
	}
out:
	free(gone);
	kbuf_free(&obj);
	free(mr);
	out_free(&o);
	return rc;
}

void clean_pass_free(struct clean_pass *x)
{
	if (!x)
		return;
	free(x->aborted.v);
	free(x->aborted.max_last);
	compact_scan_free(x->scan);
	chunk_free(x->held);
	free(x->rows);
	merge_buf_free(&x->own);
	free(x);
}

static struct clean_pass *pass_new(struct meta *m, struct objstore *s, int64_t tid,
				   int32_t partition, const struct compact_config *c,
				   int64_t now_ms)
{
	struct clean_pass *x = calloc(1, sizeof *x);
	if (x) {
		x->m = m;
		x->s = s;
		x->tid = tid;
		x->partition = partition;
		x->c = *c;
		x->now_ms = now_ms;
	}
	return x;
}

int clean_plan_partition(struct meta *m, int64_t tid, int32_t partition,
			 const struct compact_config *c, int64_t now_ms, struct clean_stats *st)
{
	struct clean_pass *x = pass_new(m, NULL, tid, partition, c, now_ms);
	if (!x)
		return SL_ENOMEM;
	/* A partition that cannot be due is not read: its rows cost
	 * nothing per check, however busy it is. One that may be idle is,
	 * so that it is found idle and left out until it grows. */
	bool maybe = true;
	int rc = meta_partition_get(x->m, x->tid, x->partition, &x->part);
	if (!rc)
		rc = plan_may_be_due(x, &maybe);
	bool read = maybe || x->may_be_idle;
	if (!rc && read)
		rc = pass_plan_rows(x);
	if (!rc) {
		plan_stats(x, st);
		st->bounded = !read;
	}
	clean_pass_free(x);
	return rc;
}

int clean_pass_begin(struct meta *m, struct objstore *s, int64_t tid, int32_t partition,
		     const uint8_t topic_id[16], const struct compact_config *c, int64_t now_ms,
		     bool force, size_t bytes_max, struct merge_buf *buf, struct clean_stats *st,
		     struct clean_pass **out)
{
	*out = NULL;
	struct clean_pass *x = pass_new(m, s, tid, partition, c, now_ms);
	if (!x)
		return SL_ENOMEM;
	x->buf = buf ? buf : &x->own;
	memcpy(x->topic_id, topic_id, 16);
	x->bytes_max = bytes_max;
	int rc = pass_plan(x);
	if (rc)
		goto fail;
	plan_stats(x, st);
	if (x->nr == 0 || x->plan.spans_cleanable == 0 || x->plan.dirty_bytes == 0 ||
	    (!force && !x->plan.due))
		goto fail;
	/* The rows scanned: the cleanable ones, then as many more as one
	 * chunk holds (they only tell the producers' last batches: a
	 * producer whose later batches lie further on keeps an empty
	 * header more). */
	size_t k = x->plan.spans_cleanable;
	x->scan_rows = clean_chunk_end(x->rows, k, x->nr, bytes_max);
	rc = aborted_read(m, tid, partition, x->rows[0].base_offset, &x->plan.clean_end,
			  &x->aborted);
	if (!rc)
		rc = compact_scan_new(c, now_ms, x->first_dirty, &x->plan, clean_txn_verdict,
				      &x->aborted, &x->scan);
	if (rc)
		goto fail;
	*out = x;
	return 0;
fail:
	clean_pass_free(x);
	return rc;
}

/* One chunk of the scan; CHUNK_CHANGED as chunk_read. */
static int pass_scan(struct clean_pass *x, struct clean_stats *st, bool *done)
{
	size_t r2 = clean_chunk_end(x->rows, x->next, x->scan_rows, x->bytes_max);
	struct chunk *ck = NULL;
	int rc = chunk_read(x, x->next, r2, &ck, st);
	if (rc)
		return rc;
	rc = compact_scan_add(x->scan, ck->in, ck->nb);
	x->next = r2;
	/* All of it in one chunk: cleaned from the bytes read (one read). */
	if (!rc && x->next == x->scan_rows && ck->r == 0)
		x->held = ck;
	else
		chunk_free(ck);
	if (rc || x->next < x->scan_rows)
		return rc;
	rc = compact_scan_finish(x->scan, &x->end);
	if (rc)
		return rc;
	/* The rows cleaned: those starting below the pass's end (the last
	 * may reach past it: its batches there stay as they are). */
	while (x->clean_rows < x->nr && x->rows[x->clean_rows].base_offset < x->end)
		x->clean_rows++;
	x->cleaning = true;
	x->next = 0;
	*done = x->clean_rows == 0;
	return 0;
}

/* One chunk of the cleaning, swapped in; the last raises the
 * checkpoint. CHUNK_CHANGED as chunk_read. */
static int pass_clean(struct clean_pass *x, struct clean_stats *st, bool *done)
{
	struct chunk *ck = x->held;
	x->held = NULL;
	int rc = 0;
	if (!ck) {
		size_t r2 = clean_chunk_end(x->rows, x->next, x->clean_rows, x->bytes_max);
		rc = chunk_read(x, x->next, r2, &ck, st);
	}
	if (rc)
		return rc;
	struct compact_result res = { 0 };
	rc = compact_clean_chunk(x->scan, ck->in, ck->nb, &res);
	if (rc)
		goto out;
	size_t nrk = 0, nbk = 0;
	while (nrk < ck->nr && ck->r + nrk < x->clean_rows)
		nbk += ck->counts[nrk++];
	x->next = ck->r + nrk;
	bool last = x->next >= x->clean_rows, changed = false;
	for (size_t i = 0; i < nbk; i++)
		changed |= res.batches[i].verdict != COMPACT_KEEP;
	st->records_read += (uint64_t)res.records_read;
	st->records_kept += (uint64_t)res.records_kept;
	bool refused = false;
	/* A chunk the pass leaves as it is needs no new object; the last
	 * one is swapped all the same, for the checkpoint. */
	if (changed || last)
		rc = chunk_swap(x, ck, nrk, nbk, &res,
				last ? x->end : x->part.clean_offset, st, &refused);
	*done = last || refused;
out:
	compact_result_free(&res);
	chunk_free(ck);
	return rc;
}

int64_t clean_pass_checkpoint(const struct clean_pass *x)
{
	return x->part.clean_offset;
}

int clean_pass_step(struct clean_pass *x, struct clean_stats *st, bool *done)
{
	*done = false;
	bool scanning = !x->cleaning;
	int rc = scanning ? pass_scan(x, st, done) : 0;
	/* The one chunk scanned is cleaned now, while its bytes are in the
	 * buffer (the caller may lend it to others between steps). */
	if (!rc && !*done && (!scanning || x->held))
		rc = pass_clean(x, st, done);
	if (rc == CHUNK_CHANGED) {
		st->refused++;
		*done = true;
		return 0;
	}
	return rc;
}

int clean_partition(struct meta *m, struct objstore *s, int64_t tid, int32_t partition,
		    const uint8_t topic_id[16], const struct compact_config *c, int64_t now_ms,
		    bool force, size_t bytes_max, bool (*stop)(void *arg), void *stop_arg,
		    struct merge_buf *buf, struct clean_stats *st)
{
	struct clean_pass *x;
	int rc = clean_pass_begin(m, s, tid, partition, topic_id, c, now_ms, force, bytes_max, buf,
				  st, &x);
	bool done = !x;
	while (!rc && !done && !(stop && stop(stop_arg)))
		rc = clean_pass_step(x, st, &done);
	clean_pass_free(x);
	return rc;
}
