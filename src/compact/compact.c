/* compact.c — the compacted-topic cleaner's rules (see compact.h): the
 * pass planner over stored spans, the offset map, each batch's verdict and
 * the rewriting of batches that lose records. Pure logic: batches in,
 * verdicts and new batch bytes out. */
#include "compact/compact.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/grow.h"
#include "storage/batch.h"
#include "storage/crc32c.h"

#define BATCH_CRC_START 21
/* Attributes a rewritten batch keeps as they were; the codec is the
 * original's too, the delete horizon bit is set by the pass. */
#define ATTR_KEPT (BATCH_ATTR_CODEC_MASK | BATCH_ATTR_LOG_APPEND_TIME | BATCH_ATTR_TRANSACTIONAL | \
		   BATCH_ATTR_CONTROL | COMPACT_ATTR_DELETE_HORIZON)

static int64_t add_saturated(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	return a + b;
}

/* Timestamp arithmetic wraps as Java's does (a client may send any
 * int64), so base + delta read back is always the timestamp written. */
static int64_t wrap_add(int64_t a, int64_t b)
{
	return (int64_t)((uint64_t)a + (uint64_t)b);
}

static int64_t wrap_sub(int64_t a, int64_t b)
{
	return (int64_t)((uint64_t)a - (uint64_t)b);
}

/* now_ms - ts, saturated (timestamps come from clients: any int64). */
static int64_t age_ms(int64_t now_ms, int64_t ts)
{
	int64_t age;
	if (__builtin_sub_overflow(now_ms, ts, &age))
		return ts < 0 ? INT64_MAX : INT64_MIN;
	return age;
}

/* ---- the planner ---- */

int compact_plan(const struct compact_config *c, int64_t now_ms, int64_t first_dirty_offset,
		 int64_t last_stable_offset, const struct compact_span *spans, size_t n,
		 struct compact_plan *out)
{
	memset(out, 0, sizeof *out);
	out->clean_end = n ? spans[0].base_offset : 0;
	for (size_t i = 1; i < n; i++)
		if (spans[i].base_offset <= spans[i - 1].last_offset ||
		    spans[i].last_offset < spans[i].base_offset)
			return SL_EINVAL;
	/* The active head: Kafka rolls its active segment after segment.ms,
	 * or after max.compaction.lag.ms so that the lag can be honoured, or
	 * once it holds segment.bytes; data newer than the smaller time and
	 * within the last segment.bytes is in the head. */
	int64_t head_ms = c->segment_ms < c->max_compaction_lag_ms ? c->segment_ms
								   : c->max_compaction_lag_ms;
	int64_t suffix_bytes = 0; /* from span i to the end */
	for (size_t i = 0; i < n; i++)
		suffix_bytes = add_saturated(suffix_bytes, spans[i].bytes);
	int64_t dirty_start_ts = -1;
	/* The tail span stays: Kafka never cleans the active segment. */
	size_t i;
	for (i = 0; i + 1 < n; i++) {
		const struct compact_span *s = &spans[i];
		if (s->last_offset >= last_stable_offset)
			break;
		bool within_bytes = c->segment_bytes <= 0 || suffix_bytes <= c->segment_bytes;
		if (age_ms(now_ms, s->max_timestamp) < head_ms && within_bytes)
			break;
		if (c->min_compaction_lag_ms > 0 &&
		    age_ms(now_ms, s->max_timestamp) < c->min_compaction_lag_ms)
			break;
		out->cleanable_bytes += s->bytes;
		if (s->base_offset >= first_dirty_offset) {
			if (out->dirty_bytes == 0)
				dirty_start_ts = s->max_timestamp;
			out->dirty_bytes += s->bytes;
		}
		out->clean_end = s->last_offset + 1;
		suffix_bytes -= s->bytes;
	}
	out->spans_cleanable = i;
	if (out->dirty_bytes == 0)
		return 0;
	/* Kafka's maxCompactionDelay: the first dirty data's timestamp. */
	out->lag_due = dirty_start_ts >= 0 && age_ms(now_ms, dirty_start_ts) > c->max_compaction_lag_ms;
	double ratio = (double)out->dirty_bytes / (double)out->cleanable_bytes;
	out->due = out->lag_due || ratio > c->min_cleanable_dirty_ratio;
	return 0;
}

bool compact_plan_may_be_due(const struct compact_config *c, int64_t now_ms,
			     const struct compact_bound *b)
{
	if (!b->dirty_any || b->dirty_bytes_max <= 0)
		return false;
	if (b->dirty_ts_min < 0 || age_ms(now_ms, b->dirty_ts_min) > c->max_compaction_lag_ms)
		return true;
	/* compact_plan's ratio is dirty / (clean + dirty) in doubles: exact
	 * below 2^53 bytes, and rounding is monotonic, so the bound's
	 * quotient is at least the plan's. Past that, no claim. */
	const int64_t exact = (int64_t)1 << 53;
	if (b->clean_bytes_min < 0 || b->dirty_bytes_max >= exact ||
	    b->clean_bytes_min >= exact - b->dirty_bytes_max)
		return true;
	double ratio = (double)b->dirty_bytes_max /
		       (double)(b->clean_bytes_min + b->dirty_bytes_max);
	return ratio > c->min_cleanable_dirty_ratio;
}

/* ---- the offset map: whole keys, latest offset of each ---- */

struct map_slot {
	uint64_t hash; /* 0: empty */
	uint32_t key_pos;
	int32_t key_len;
	int64_t offset;
};

struct offset_map {
	struct map_slot *slots;
	size_t cap; /* a power of two, at most half full */
	size_t used;
	struct kbuf keys;
	size_t bytes_max;
	int64_t latest_offset; /* the last offset put; -1 when empty */
};

static uint64_t key_hash(const uint8_t *p, int32_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (int32_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h ? h : 1;
}

static size_t map_bytes(size_t cap, size_t key_bytes)
{
	return cap * sizeof(struct map_slot) + key_bytes;
}

/* The slot cap holding used + more keys at most half full. */
static size_t map_cap_for(const struct offset_map *m, size_t more)
{
	size_t cap = m->cap ? m->cap : 1024;
	while ((m->used + more) * 2 > cap)
		cap *= 2;
	return cap;
}

static struct map_slot *map_find(const struct offset_map *m, uint64_t h, const uint8_t *key,
				 int32_t len)
{
	for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		struct map_slot *s = &m->slots[i];
		if (s->hash == 0 ||
		    (s->hash == h && s->key_len == len &&
		     (len == 0 || memcmp(m->keys.data + s->key_pos, key, (size_t)len) == 0)))
			return s;
	}
}

static int map_grow(struct offset_map *m, size_t cap)
{
	if (cap == m->cap)
		return 0;
	struct map_slot *old = m->slots;
	size_t old_cap = m->cap;
	m->slots = calloc(cap, sizeof *m->slots);
	if (!m->slots) {
		m->slots = old;
		return SL_ENOMEM;
	}
	m->cap = cap;
	for (size_t i = 0; i < old_cap; i++) {
		if (!old[i].hash)
			continue;
		size_t k = old[i].hash & (cap - 1);
		while (m->slots[k].hash)
			k = (k + 1) & (cap - 1);
		m->slots[k] = old[i];
	}
	free(old);
	return 0;
}

static int64_t map_get(const struct offset_map *m, const uint8_t *key, int32_t len)
{
	if (!m->cap)
		return -1;
	const struct map_slot *s = map_find(m, key_hash(key, len), key, len);
	return s->hash ? s->offset : -1;
}

/* The keyed records of one batch, gathered before they go into the map
 * so that a batch goes in whole or not at all. */
struct keyed {
	const uint8_t *key;
	int32_t key_len;
	int64_t offset;
};

struct gather {
	int64_t base_offset;
	struct keyed *items;
	size_t n, cap;
	size_t key_bytes;
	bool oom;
};

static int gather_visit(void *arg, const struct batch_record *rec)
{
	struct gather *g = arg;
	if (rec->key_len < 0)
		return 0; /* dropped by the clean; not in the map */
	if (array_grow(&g->items, &g->cap, g->n, sizeof *g->items, 256) != 0)
		return SL_ENOMEM;
	g->items[g->n++] = (struct keyed){ rec->key, rec->key_len, g->base_offset + rec->offset_delta };
	g->key_bytes += (size_t)rec->key_len;
	return 0;
}

/* Put one batch's keys in the map. Returns 0, 1 when they do not fit in
 * bytes_max (nothing put), or an error. */
static int map_put_batch(struct offset_map *m, struct gather *g, int64_t last_offset)
{
	size_t cap = map_cap_for(m, g->n);
	if (map_bytes(cap, m->keys.len + g->key_bytes) > m->bytes_max ||
	    m->keys.len + g->key_bytes > UINT32_MAX)
		return 1;
	int rc = map_grow(m, cap);
	if (rc)
		return rc;
	for (size_t i = 0; i < g->n; i++) {
		const struct keyed *k = &g->items[i];
		uint64_t h = key_hash(k->key, k->key_len);
		struct map_slot *s = map_find(m, h, k->key, k->key_len);
		if (!s->hash) {
			*s = (struct map_slot){ h, (uint32_t)m->keys.len, k->key_len, k->offset };
			if (k->key_len > 0)
				kbuf_put(&m->keys, k->key, (size_t)k->key_len);
			m->used++;
		} else if (k->offset > s->offset) {
			s->offset = k->offset;
		}
	}
	if (m->keys.oom)
		return SL_ENOMEM;
	m->latest_offset = last_offset;
	return 0;
}

static void map_free(struct offset_map *m)
{
	free(m->slots);
	kbuf_free(&m->keys);
}

/* ---- rewriting ---- */

/* The records one batch keeps, in order, as views (valid while the
 * batch's plain buffer is). */
struct kept {
	struct batch_record *recs;
	size_t n, cap;
	int32_t read;
	bool tombstones; /* a kept record has a null value */
};

static int kept_add(struct kept *k, const struct batch_record *rec)
{
	if (array_grow(&k->recs, &k->cap, k->n, sizeof *k->recs, 256) != 0)
		return SL_ENOMEM;
	k->recs[k->n++] = *rec;
	if (rec->value_len < 0)
		k->tombstones = true;
	return 0;
}

static void put_record(struct kbuf *b, const struct batch_record *r, int64_t ts_delta)
{
	/* The body's length first: encode it aside, it is small. */
	struct kbuf body;
	kbuf_init(&body);
	kbuf_put_i8(&body, r->attributes);
	kbuf_put_varint(&body, ts_delta);
	kbuf_put_varint(&body, r->offset_delta);
	kbuf_put_varint(&body, r->key_len);
	if (r->key_len > 0)
		kbuf_put(&body, r->key, (size_t)r->key_len);
	kbuf_put_varint(&body, r->value_len);
	if (r->value_len > 0)
		kbuf_put(&body, r->value, (size_t)r->value_len);
	kbuf_put_varint(&body, r->header_count);
	if (r->headers_len)
		kbuf_put(&body, r->headers, r->headers_len);
	if (body.oom)
		b->oom = true;
	kbuf_put_varint(b, (int64_t)body.len);
	kbuf_put(b, body.data, body.len);
	kbuf_free(&body);
}

/* Append to out a batch holding the kept records of the batch at orig
 * (header info): Kafka's buildRetainedRecordsInto (base offset and last
 * offset delta kept) or, with no record, writeEmptyHeader. horizon: the
 * delete horizon to carry, or -1. */
static int write_batch(struct kbuf *out, const uint8_t *orig, const struct batch_info *info,
		       const struct kept *k, int64_t horizon)
{
	size_t start = out->len;
	int16_t attributes = (int16_t)(info->attributes & ATTR_KEPT & ~COMPACT_ATTR_DELETE_HORIZON);
	int64_t base_ts = -1, max_ts = info->max_timestamp;
	struct kbuf recs;
	kbuf_init(&recs);
	int rc = 0;
	if (k->n == 0) {
		/* Kafka's empty header: no codec, no base timestamp, the
		 * original max timestamp. */
		attributes &= (int16_t)~BATCH_ATTR_CODEC_MASK;
	} else {
		/* Record timestamps as stored (base + delta: for LogAppendTime
		 * batches the max timestamp stands for them, unchanged). */
		base_ts = horizon >= 0 ? horizon
				       : wrap_add(info->base_timestamp, k->recs[0].timestamp_delta);
		if (horizon >= 0)
			attributes |= COMPACT_ATTR_DELETE_HORIZON;
		if (!(info->attributes & BATCH_ATTR_LOG_APPEND_TIME))
			max_ts = -1;
		for (size_t i = 0; i < k->n; i++) {
			int64_t ts = wrap_add(info->base_timestamp, k->recs[i].timestamp_delta);
			if (!(info->attributes & BATCH_ATTR_LOG_APPEND_TIME) && ts > max_ts)
				max_ts = ts;
			put_record(&recs, &k->recs[i], wrap_sub(ts, base_ts));
		}
		if (recs.oom) {
			rc = SL_ENOMEM;
			goto out_free_recs;
		}
	}
	uint8_t h[BATCH_HEADER_BYTES];
	memcpy(h, orig, 17); /* baseOffset, (length), leader epoch, magic */
	memset(h + 17, 0, 4); /* the CRC, computed last */
	h[21] = (uint8_t)((uint16_t)attributes >> 8);
	h[22] = (uint8_t)attributes;
	be32_store(h + 23, (uint32_t)info->last_offset_delta);
	be64_store(h + 27, (uint64_t)base_ts);
	be64_store(h + 35, (uint64_t)max_ts);
	be64_store(h + 43, (uint64_t)info->producer_id);
	h[51] = (uint8_t)((uint16_t)info->producer_epoch >> 8);
	h[52] = (uint8_t)info->producer_epoch;
	be32_store(h + 53, (uint32_t)info->base_sequence);
	be32_store(h + 57, (uint32_t)k->n);
	kbuf_put(out, h, sizeof h);
	if (k->n) {
		rc = batch_compress((enum batch_codec)(attributes & BATCH_ATTR_CODEC_MASK), recs.data,
				    recs.len, out);
		if (rc)
			goto out_free_recs;
	}
	if (out->oom) {
		rc = SL_ENOMEM;
		goto out_free_recs;
	}
	uint8_t *b = out->data + start;
	size_t total = out->len - start;
	be32_store(b + 8, (uint32_t)(total - BATCH_LOG_OVERHEAD));
	be32_store(b + 17, crc32c(0, b + BATCH_CRC_START, total - BATCH_CRC_START));
out_free_recs:
	kbuf_free(&recs);
	if (rc)
		out->len = start;
	return rc;
}

int compact_write_empty(struct kbuf *out, int64_t base_offset, int32_t leader_epoch,
			int32_t last_offset_delta, int64_t max_timestamp)
{
	/* As the header of a batch that lost every record, with no
	 * producer: write_batch takes the first 17 bytes from the batch. */
	uint8_t orig[17] = { 0 };
	be64_store(orig, (uint64_t)base_offset);
	be32_store(orig + 12, (uint32_t)leader_epoch);
	orig[16] = 2;
	struct batch_info info = { .last_offset_delta = last_offset_delta, .base_timestamp = -1,
				   .max_timestamp = max_timestamp, .producer_id = -1,
				   .producer_epoch = -1, .base_sequence = -1 };
	struct kept none = { 0 };
	return write_batch(out, orig, &info, &none, -1);
}

/* ---- the pass ---- */

struct clean_ctx {
	const struct offset_map *map;
	int64_t base_offset;
	bool control;          /* control records are kept (not keyed data) */
	bool discard;          /* the batch's records all go */
	bool horizon_passed;   /* its tombstones may go */
	struct kept kept;
};

static int clean_visit(void *arg, const struct batch_record *rec)
{
	struct clean_ctx *x = arg;
	x->kept.read++;
	if (x->discard)
		return 0;
	if (!x->control) {
		/* Kafka's Cleaner.shouldRetainRecord. */
		int64_t offset = x->base_offset + rec->offset_delta;
		if (rec->key_len < 0)
			return 0;
		if (offset <= x->map->latest_offset) {
			if (offset < map_get(x->map, rec->key, rec->key_len))
				return 0;
			if (rec->value_len < 0 && x->horizon_passed)
				return 0;
		}
	}
	return kept_add(&x->kept, rec);
}

#define MARKER_ABORT 0

/* A marker's control record type (its key: version, then type; 0 ABORT,
 * 1 COMMIT), -1 for none or an unknown one. */
static int marker_visit(void *arg, const struct batch_record *rec)
{
	int *type = arg;
	if (rec->index == 0 && rec->key_len >= 4 && be16_load(rec->key + 2) <= 1)
		*type = be16_load(rec->key + 2);
	return 0;
}

/* Decide one batch below the plan's end and write its rewrite if any.
 * lone: a marker whose transaction has no batch left (mark_lone_markers). */
static int clean_batch(const struct compact_config *c, int64_t now_ms,
		       const struct offset_map *map, const struct compact_batch *b,
		       const struct batch_info *info, bool producer_last, bool lone,
		       compact_txn_fn txn, void *txn_arg, struct kbuf *plain,
		       struct compact_result *res, struct compact_outcome *o)
{
	bool control = info->attributes & BATCH_ATTR_CONTROL;
	bool has_horizon = info->attributes & COMPACT_ATTR_DELETE_HORIZON;
	bool horizon_passed = has_horizon && now_ms >= info->base_timestamp;
	bool empty_marker = false;
	int rc;
	if (control || (info->attributes & BATCH_ATTR_TRANSACTIONAL)) {
		/* Without the hook (no transactions) such batches stay as
		 * they are. With it, a committed transaction's data is cleaned
		 * as any other (Kafka's shouldRetainRecord), an aborted one's
		 * goes, and a marker, COMMIT or ABORT, goes once its
		 * transaction has no batch left and its delete horizon passed.
		 * An ABORT marker's transaction leaves the aborted index
		 * delete.retention.ms before the marker goes: a read_committed
		 * consumer given the transaction but not its marker would take
		 * the producer's later batches as aborted. And it leaves it
		 * only delete.retention.ms after a pass first found it empty,
		 * so at least that long after its records went: a fetch
		 * serving bytes read before they went (rows held by a long
		 * poll, a batch index not yet told of the swap) still finds
		 * the transaction listed (docs/compaction.md, "Transactions").
		 * Two horizons do it: the first pass finding it empty gives
		 * the marker one while its row is still listed; the first
		 * pass past it deletes the row and sets the second, after
		 * which the marker goes. */
		bool keep = !txn;
		bool listed = false; /* an empty ABORT marker whose row is */
		if (txn && control) {
			int type = -1;
			rc = batch_records_view(b->bytes, b->len, plain, marker_visit, &type);
			if (rc)
				return rc;
			empty_marker = lone && type >= 0;
			keep = !empty_marker;
			listed = empty_marker && type == MARKER_ABORT &&
				 txn(txn_arg, b->base_offset, info) == COMPACT_TXN_ABORTED;
			/* Kafka's CleanedTransactionMetadata leaves an aborted
			 * transaction with no batch left out of the cleaned
			 * index: here its row goes at the first horizon, once
			 * (the next pass finds it no longer listed). */
			o->aborted_gone = listed && horizon_passed;
			if (listed && has_horizon && !horizon_passed)
				keep = true;
		}
		if (keep) {
			o->verdict = COMPACT_KEEP;
			o->records_kept = info->record_count;
			return 0;
		}
		if (listed) {
			/* The marker stays, rewritten with its next horizon. */
			struct clean_ctx k = { .map = map, .base_offset = b->base_offset,
					       .control = true };
			rc = batch_records_view(b->bytes, b->len, plain, clean_visit, &k);
			if (!rc) {
				res->records_read += k.kept.read;
				o->records_kept = (int32_t)k.kept.n;
				res->records_kept += o->records_kept;
				o->verdict = COMPACT_REWRITE;
				o->pos = res->out.len;
				rc = write_batch(&res->out, b->bytes, info, &k.kept,
						 add_saturated(now_ms, c->delete_retention_ms));
				o->len = res->out.len - o->pos;
			}
			free(k.kept.recs);
			return rc;
		}
	}
	struct clean_ctx x = { .map = map, .base_offset = b->base_offset, .control = control };
	x.horizon_passed = horizon_passed;
	x.discard = (empty_marker && horizon_passed) ||
		    (!control && (info->attributes & BATCH_ATTR_TRANSACTIONAL) &&
		     txn(txn_arg, b->base_offset, info) == COMPACT_TXN_ABORTED);
	rc = batch_records_view(b->bytes, b->len, plain, clean_visit, &x);
	if (rc)
		goto out_free;
	res->records_read += x.kept.read;
	bool need_horizon = (x.kept.tombstones || (empty_marker && x.kept.n)) && !has_horizon;
	o->records_kept = (int32_t)x.kept.n;
	if (x.kept.n == (size_t)x.kept.read && !need_horizon) {
		o->verdict = COMPACT_KEEP;
	} else if (x.kept.n == 0 && !producer_last) {
		o->verdict = COMPACT_DROP;
	} else {
		int64_t horizon = need_horizon ? add_saturated(now_ms, c->delete_retention_ms)
			        : has_horizon ? info->base_timestamp : -1;
		o->verdict = COMPACT_REWRITE;
		o->pos = res->out.len;
		rc = write_batch(&res->out, b->bytes, info, &x.kept, horizon);
		o->len = res->out.len - o->pos;
	}
	res->records_kept += o->records_kept;
out_free:
	free(x.kept.recs);
	return rc;
}

/* ---- the scan: offset map and producers over the whole partition ---- */

/* One producer of the partition (the scan's table). */
struct producer_slot {
	int64_t producer_id;  /* -1: empty */
	int64_t last_data;    /* base offset of its last data batch, or -1 */
	int64_t last_any;     /* base offset of its last batch */
	int64_t last_any_ts;  /* that batch's max timestamp */
	bool txn_seen;        /* a transactional data batch since its last marker */
};

struct compact_scan {
	struct compact_config c;
	int64_t now_ms, first_dirty;
	int64_t end;               /* the plan's end, lowered when the map fills */
	bool map_full, finished;
	compact_txn_fn txn;
	void *txn_arg;
	struct offset_map map;
	struct kbuf plain;
	struct gather g;
	struct producer_slot *prod; /* open addressing, at most half full */
	size_t prod_cap, prod_used;
	int64_t *lone;             /* lone markers' base offsets, ascending */
	size_t nlone, lone_cap;
	int64_t *last;             /* active producers' kept batches, ascending */
	size_t nlast;
	int64_t prev_last;         /* the last offset of the batch added last */
};

/* Bytes of the scan's producer table and marker list (the map counts its
 * own): bounded by map_bytes_max as well. */
static size_t scan_side_bytes(const struct compact_scan *s)
{
	return s->prod_cap * sizeof *s->prod + s->lone_cap * sizeof *s->lone;
}

static struct producer_slot *prod_find(struct producer_slot *t, size_t cap, int64_t pid)
{
	size_t k = ((uint64_t)pid * 0x9e3779b97f4a7c15ULL) & (cap - 1);
	while (t[k].producer_id >= 0 && t[k].producer_id != pid)
		k = (k + 1) & (cap - 1);
	return &t[k];
}

/* The slot of pid (pid >= 0), claimed for it when new. */
static int prod_slot(struct compact_scan *s, int64_t pid, struct producer_slot **out)
{
	if ((s->prod_used + 1) * 2 > s->prod_cap) {
		size_t cap = s->prod_cap ? s->prod_cap * 2 : 64;
		if ((cap - s->prod_cap) * sizeof *s->prod + scan_side_bytes(s) > s->c.map_bytes_max)
			return SL_ELIMIT;
		struct producer_slot *t = malloc(cap * sizeof *t);
		if (!t)
			return SL_ENOMEM;
		for (size_t i = 0; i < cap; i++)
			t[i].producer_id = -1;
		for (size_t i = 0; i < s->prod_cap; i++)
			if (s->prod[i].producer_id >= 0)
				*prod_find(t, cap, s->prod[i].producer_id) = s->prod[i];
		free(s->prod);
		s->prod = t;
		s->prod_cap = cap;
	}
	struct producer_slot *p = prod_find(s->prod, s->prod_cap, pid);
	if (p->producer_id < 0) {
		*p = (struct producer_slot){ pid, -1, -1, -1, false };
		s->prod_used++;
	}
	*out = p;
	return 0;
}

int compact_scan_new(const struct compact_config *c, int64_t now_ms, int64_t first_dirty_offset,
		     const struct compact_plan *plan, compact_txn_fn txn, void *txn_arg,
		     struct compact_scan **out)
{
	struct compact_scan *s = calloc(1, sizeof *s);
	if (!s)
		return SL_ENOMEM;
	s->c = *c;
	s->now_ms = now_ms;
	s->first_dirty = first_dirty_offset;
	s->end = plan->clean_end;
	s->txn = txn;
	s->txn_arg = txn_arg;
	s->map = (struct offset_map){ .bytes_max = c->map_bytes_max, .latest_offset = -1 };
	kbuf_init(&s->map.keys);
	kbuf_init(&s->plain);
	s->prev_last = -1;
	*out = s;
	return 0;
}

/* Which batches producers still active need kept: its last data batch
 * (it holds the last sequence), or, when it has none, its last batch (a
 * marker holding its epoch), as Kafka's lastRecordsOfActiveProducers;
 * and which markers are lone: no transactional data batch of their
 * producer since its previous marker, as Kafka's
 * CleanedTransactionMetadata tracks them (ongoingCommittedTxns,
 * lastObservedBatchOffset). The batches looked at are those still
 * stored, from the log start: a pass that drops a transaction's last
 * batch keeps its marker, the next one finds it lone. */
static int scan_producer(struct compact_scan *s, int64_t base_offset, const struct batch_info *info)
{
	if (info->producer_id < 0)
		return 0;
	struct producer_slot *p;
	int rc = prod_slot(s, info->producer_id, &p);
	if (rc)
		return rc;
	bool control = info->attributes & BATCH_ATTR_CONTROL;
	p->last_any = base_offset;
	p->last_any_ts = info->max_timestamp;
	if (!control)
		p->last_data = base_offset;
	if (!s->txn || !(info->attributes & (BATCH_ATTR_TRANSACTIONAL | BATCH_ATTR_CONTROL)))
		return 0;
	if (!control) {
		p->txn_seen = true;
		return 0;
	}
	bool lone = !p->txn_seen;
	p->txn_seen = false;
	if (!lone)
		return 0;
	if (s->nlone == s->lone_cap && s->lone_cap &&
	    s->lone_cap * sizeof *s->lone + scan_side_bytes(s) > s->c.map_bytes_max)
		return SL_ELIMIT;
	if (array_grow(&s->lone, &s->lone_cap, s->nlone, sizeof *s->lone, 256) != 0)
		return SL_ENOMEM;
	s->lone[s->nlone++] = base_offset;
	return 0;
}

/* The offset map over the dirty part, whole batches, up to the plan's
 * end or as far as map_bytes_max allows. */
static int scan_map(struct compact_scan *s, const struct compact_batch *b,
		    const struct batch_info *info, int64_t last_offset)
{
	if (s->map_full || last_offset >= s->end || b->base_offset < s->first_dirty ||
	    (info->attributes & BATCH_ATTR_CONTROL))
		return 0;
	/* Aborted records never make an older record of their key go
	 * (Kafka leaves them out of the map). */
	if ((info->attributes & BATCH_ATTR_TRANSACTIONAL) && s->txn &&
	    s->txn(s->txn_arg, b->base_offset, info) == COMPACT_TXN_ABORTED)
		return 0;
	s->g.n = 0;
	s->g.key_bytes = 0;
	s->g.base_offset = b->base_offset;
	int rc = batch_records_view(b->bytes, b->len, &s->plain, gather_visit, &s->g);
	if (rc)
		return rc;
	rc = map_put_batch(&s->map, &s->g, last_offset);
	if (rc != 1)
		return rc;
	if (s->map.latest_offset < 0)
		return SL_ELIMIT; /* not even one batch fits */
	s->end = b->base_offset;
	s->map_full = true;
	return 0;
}

/* The header of batch b (after prev_last), checked. */
static int batch_header(const struct compact_batch *b, int64_t prev_last, struct batch_info *info)
{
	int rc = batch_parse_header(b->bytes, b->len, info);
	if (rc)
		return rc;
	if (batch_total_bytes(info) != b->len)
		return SL_EPROTO;
	if (b->base_offset <= prev_last)
		return SL_EINVAL;
	return 0;
}

int compact_scan_add(struct compact_scan *s, const struct compact_batch *batches, size_t n)
{
	if (s->finished)
		return SL_EINVAL;
	/* Every header first: a batch that does not decode fails the scan
	 * before anything of its chunk is taken. */
	int64_t prev = s->prev_last;
	for (size_t i = 0; i < n; i++) {
		struct batch_info info;
		int rc = batch_header(&batches[i], prev, &info);
		if (rc)
			return rc;
		prev = batches[i].base_offset + info.last_offset_delta;
	}
	for (size_t i = 0; i < n; i++) {
		struct batch_info info;
		batch_parse_header(batches[i].bytes, batches[i].len, &info);
		int64_t last_offset = batches[i].base_offset + info.last_offset_delta;
		int rc = scan_producer(s, batches[i].base_offset, &info);
		if (!rc)
			rc = scan_map(s, &batches[i], &info, last_offset);
		if (rc)
			return rc;
		s->prev_last = last_offset;
	}
	return 0;
}

static int cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
	return (a > b) - (a < b);
}

int compact_scan_finish(struct compact_scan *s, int64_t *clean_end)
{
	if (!s->finished) {
		s->last = malloc((s->prod_used ? s->prod_used : 1) * sizeof *s->last);
		if (!s->last)
			return SL_ENOMEM;
		for (size_t k = 0; k < s->prod_cap; k++) {
			const struct producer_slot *p = &s->prod[k];
			/* Kafka's isProducerExpired: by its last batch's timestamp. */
			if (p->producer_id < 0 ||
			    age_ms(s->now_ms, p->last_any_ts) >= s->c.producer_expiration_ms)
				continue;
			s->last[s->nlast++] = p->last_data >= 0 ? p->last_data : p->last_any;
		}
		qsort(s->last, s->nlast, sizeof *s->last, cmp_i64);
		s->finished = true;
		s->prev_last = -1;
	}
	*clean_end = s->end;
	return 0;
}

static bool offsets_has(const int64_t *v, size_t n, int64_t x)
{
	return n && bsearch(&x, v, n, sizeof *v, cmp_i64) != NULL;
}

int compact_clean_chunk(struct compact_scan *s, const struct compact_batch *batches, size_t n,
			struct compact_result *out)
{
	memset(out, 0, sizeof *out);
	kbuf_init(&out->out);
	out->clean_end = s->end;
	if (!s->finished)
		return SL_EINVAL;
	out->batches = calloc(n ? n : 1, sizeof *out->batches);
	out->n = n;
	if (!out->batches)
		return SL_ENOMEM;
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		struct batch_info info;
		rc = batch_header(&batches[i], s->prev_last, &info);
		if (rc)
			break;
		int64_t last_offset = batches[i].base_offset + info.last_offset_delta;
		s->prev_last = last_offset;
		struct compact_outcome *o = &out->batches[i];
		o->verdict = COMPACT_KEEP;
		o->records_kept = info.record_count;
		if (last_offset >= s->end)
			continue;
		out->bytes_read += (int64_t)batches[i].len;
		bool last = offsets_has(s->last, s->nlast, batches[i].base_offset);
		bool lone = offsets_has(s->lone, s->nlone, batches[i].base_offset);
		rc = clean_batch(&s->c, s->now_ms, &s->map, &batches[i], &info, last, lone, s->txn,
				 s->txn_arg, &s->plain, out, o);
		if (!rc)
			out->bytes_written += o->verdict == COMPACT_KEEP ? (int64_t)batches[i].len
					    : (int64_t)o->len;
	}
	if (rc)
		compact_result_free(out);
	return rc;
}

void compact_scan_free(struct compact_scan *s)
{
	if (!s)
		return;
	free(s->g.items);
	kbuf_free(&s->plain);
	map_free(&s->map);
	free(s->prod);
	free(s->lone);
	free(s->last);
	free(s);
}

int compact_clean(const struct compact_config *c, int64_t now_ms, int64_t first_dirty_offset,
		  const struct compact_plan *plan, const struct compact_batch *batches, size_t n,
		  compact_txn_fn txn, void *txn_arg, struct compact_result *out)
{
	memset(out, 0, sizeof *out);
	kbuf_init(&out->out);
	struct compact_scan *s;
	int rc = compact_scan_new(c, now_ms, first_dirty_offset, plan, txn, txn_arg, &s);
	if (rc)
		return rc;
	int64_t end;
	rc = compact_scan_add(s, batches, n);
	if (!rc)
		rc = compact_scan_finish(s, &end);
	if (!rc)
		rc = compact_clean_chunk(s, batches, n, out);
	compact_scan_free(s);
	return rc;
}

void compact_result_free(struct compact_result *r)
{
	free(r->batches);
	kbuf_free(&r->out);
	memset(r, 0, sizeof *r);
}
