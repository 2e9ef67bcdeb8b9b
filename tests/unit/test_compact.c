/* test_compact.c — the compacted-topic cleaner (compact/compact.h): the
 * planner's end of the cleanable part (the tail, the active head of
 * segment.ms and segment.bytes, min.compaction.lag.ms, the last stable
 * offset) and when a
 * pass is due (dirty ratio, max.compaction.lag.ms); record selection
 * (latest per key, keyless records, tombstones kept until their delete
 * horizon, idempotent producers' last batches kept empty, headers kept,
 * the map's memory bound, the transactions hook, committed transactions
 * and their markers); rewritten batches for
 * each codec decoded back with their CRC, offsets, timestamps and
 * producer fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/err.h"
#include "compact/compact.h"
#include "storage/batch.h"
#include "storage/crc32c.h"

#define DAY_MS (24LL * 60 * 60 * 1000)
#define NOW (1700000000000LL)

struct rec {
	const char *key;   /* NULL: null key */
	const char *value; /* NULL: tombstone */
	int64_t ts;        /* absolute timestamp */
	const char *header; /* one header "h" with this value, or none */
	int key_bytes;      /* the key's length when it holds NULs, else 0 */
};

struct bspec {
	int64_t base_offset;
	enum batch_codec codec;
	int64_t producer_id;
	int16_t epoch;
	int32_t base_sequence;
	int16_t extra_attributes;
	int32_t last_offset_delta; /* -1: n - 1 */
};

/* Encode a magic-2 batch of n records (offset deltas 0..n-1), as a
 * producer would, independently of the cleaner's writer. */
static void make_batch(struct kbuf *out, const struct bspec *s, const struct rec *r, int n)
{
	struct kbuf recs;
	kbuf_init(&recs);
	int64_t base_ts = n ? r[0].ts : -1, max_ts = -1;
	for (int i = 0; i < n; i++) {
		struct kbuf body;
		kbuf_init(&body);
		kbuf_put_i8(&body, 0);
		kbuf_put_varint(&body, r[i].ts - base_ts);
		kbuf_put_varint(&body, i);
		if (r[i].key) {
			size_t kl = r[i].key_bytes ? (size_t)r[i].key_bytes : strlen(r[i].key);
			kbuf_put_varint(&body, (int64_t)kl);
			kbuf_put(&body, r[i].key, kl);
		} else {
			kbuf_put_varint(&body, -1);
		}
		if (r[i].value) {
			kbuf_put_varint(&body, (int64_t)strlen(r[i].value));
			kbuf_put(&body, r[i].value, strlen(r[i].value));
		} else {
			kbuf_put_varint(&body, -1);
		}
		kbuf_put_varint(&body, r[i].header ? 1 : 0);
		if (r[i].header) {
			kbuf_put_varint(&body, 1);
			kbuf_put(&body, "h", 1);
			kbuf_put_varint(&body, (int64_t)strlen(r[i].header));
			kbuf_put(&body, r[i].header, strlen(r[i].header));
		}
		kbuf_put_varint(&recs, (int64_t)body.len);
		kbuf_put(&recs, body.data, body.len);
		kbuf_free(&body);
		if (r[i].ts > max_ts)
			max_ts = r[i].ts;
	}
	size_t start = out->len;
	kbuf_put_i64(out, 0); /* as stored: the producer's base offset */
	kbuf_put_i32(out, 0);
	kbuf_put_i32(out, 5); /* partition leader epoch */
	kbuf_put_i8(out, 2);
	kbuf_put_u32(out, 0);
	kbuf_put_i16(out, (int16_t)(s->codec | s->extra_attributes));
	kbuf_put_i32(out, s->last_offset_delta >= 0 ? s->last_offset_delta : n - 1);
	kbuf_put_i64(out, base_ts);
	kbuf_put_i64(out, max_ts);
	kbuf_put_i64(out, s->producer_id);
	kbuf_put_i16(out, s->epoch);
	kbuf_put_i32(out, s->base_sequence);
	kbuf_put_i32(out, n);
	assert_int_equal(batch_compress(s->codec, recs.data, recs.len, out), 0);
	kbuf_free(&recs);
	uint8_t *b = out->data + start;
	size_t total = out->len - start;
	be32_store(b + 8, (uint32_t)(total - 12));
	be32_store(b + 17, crc32c(0, b + 21, total - 21));
}

/* A partition under test: its batches' bytes and inputs. */
struct part {
	struct kbuf bytes[64];
	struct compact_batch in[64];
	struct compact_span spans[64];
	int n;
};

static void part_add(struct part *p, const struct bspec *s, const struct rec *r, int nrec)
{
	struct kbuf *k = &p->bytes[p->n];
	kbuf_init(k);
	make_batch(k, s, r, nrec);
	struct batch_info info;
	assert_int_equal(batch_parse_header(k->data, k->len, &info), 0);
	p->in[p->n] = (struct compact_batch){ s->base_offset, k->data, k->len };
	p->spans[p->n] = (struct compact_span){ s->base_offset,
						s->base_offset + info.last_offset_delta,
						info.max_timestamp, (int64_t)k->len };
	p->n++;
}

/* Shorthand: a batch of plain (non-idempotent) records. */
static void add(struct part *p, int64_t base, const struct rec *r, int n)
{
	struct bspec s = { .base_offset = base, .producer_id = -1, .epoch = -1,
			   .base_sequence = -1, .last_offset_delta = -1 };
	part_add(p, &s, r, n);
}

static void part_free(struct part *p)
{
	for (int i = 0; i < p->n; i++)
		kbuf_free(&p->bytes[i]);
	p->n = 0;
}

static struct compact_config cfg(void)
{
	return (struct compact_config){
		.segment_ms = 1000,
		.min_compaction_lag_ms = 0,
		.max_compaction_lag_ms = INT64_MAX,
		.delete_retention_ms = DAY_MS,
		.min_cleanable_dirty_ratio = 0.5,
		.producer_expiration_ms = DAY_MS,
		.map_bytes_max = 1 << 20,
	};
}

/* Plan and clean p at now from first_dirty; the high watermark is the
 * end of the last batch. */
static void run(const struct compact_config *c, struct part *p, int64_t now, int64_t first_dirty,
		struct compact_plan *plan, struct compact_result *res)
{
	const struct compact_span *last = &p->spans[p->n - 1];
	assert_int_equal(compact_plan(c, now, first_dirty, last->last_offset + 1, p->spans,
				      (size_t)p->n, plan), 0);
	assert_int_equal(compact_clean(c, now, first_dirty, plan, p->in, (size_t)p->n, NULL, NULL,
				       res), 0);
}

struct seen {
	struct batch_record r[64];
	char keys[64][16], values[64][32], headers[64][32];
	int n;
};

static int seen_visit(void *arg, const struct batch_record *rec)
{
	struct seen *s = arg;
	s->r[s->n] = *rec;
	snprintf(s->keys[s->n], 16, "%.*s", rec->key_len < 0 ? 0 : rec->key_len,
		 rec->key ? (const char *)rec->key : "");
	snprintf(s->values[s->n], 32, "%.*s", rec->value_len < 0 ? 0 : rec->value_len,
		 rec->value ? (const char *)rec->value : "");
	memcpy(s->headers[s->n], rec->headers, rec->headers_len < 32 ? rec->headers_len : 32);
	s->n++;
	return 0;
}

/* Decode a rewritten batch: its CRC must hold; returns its header. */
static struct batch_info decode(const uint8_t *b, size_t len, struct seen *s, struct kbuf *plain)
{
	struct batch_info info;
	assert_int_equal(batch_parse_header(b, len, &info), 0);
	assert_int_equal(batch_total_bytes(&info), len);
	assert_int_equal(crc32c(0, b + 21, len - 21), info.crc);
	memset(s, 0, sizeof *s);
	assert_int_equal(batch_records_view(b, len, plain, seen_visit, s), 0);
	assert_int_equal(s->n, info.record_count);
	return info;
}

static const uint8_t *out_of(const struct compact_result *r, int i)
{
	return r->out.data + r->batches[i].pos;
}

static void test_latest_per_key(void **state)
{
	(void)state;
	struct compact_config c = cfg();
	struct part p = { 0 };
	int64_t t = NOW - 10000;
	add(&p, 0, (struct rec[]){ { "k1", "a", t }, { "k2", "b", t + 1 } }, 2);
	add(&p, 2, (struct rec[]){ { "k1", "c", t + 2 } }, 1);
	add(&p, 3, (struct rec[]){ { "k3", "d", t + 3 }, { NULL, "keyless", t + 3 } }, 2);
	add(&p, 5, (struct rec[]){ { "k1", "e", t + 4 } }, 1); /* the tail */
	struct compact_plan plan;
	struct compact_result res;
	run(&c, &p, NOW, 0, &plan, &res);
	assert_int_equal(plan.clean_end, 5);
	assert_int_equal(plan.spans_cleanable, 3);
	assert_true(plan.due); /* all dirty: ratio 1 */
	assert_int_equal(res.clean_end, 5);
	/* k1@0 goes (k1@2 is later), k2@1 stays; k1@2 stays (k1@5 is in
	 * the tail, past the map); the keyless record goes. */
	assert_int_equal(res.batches[0].verdict, COMPACT_REWRITE);
	assert_int_equal(res.batches[1].verdict, COMPACT_KEEP);
	assert_int_equal(res.batches[2].verdict, COMPACT_REWRITE);
	assert_int_equal(res.batches[3].verdict, COMPACT_KEEP);
	assert_int_equal(res.records_read, 5);
	assert_int_equal(res.records_kept, 3);
	struct seen s;
	struct kbuf plain;
	kbuf_init(&plain);
	struct batch_info info = decode(out_of(&res, 0), res.batches[0].len, &s, &plain);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.keys[0], "k2");
	assert_int_equal(s.r[0].offset_delta, 1);
	assert_int_equal(s.r[0].timestamp, t + 1);
	assert_int_equal(info.last_offset_delta, 1); /* kept: the batch still ends at 1 */
	assert_int_equal(info.base_timestamp, t + 1);
	assert_int_equal(info.max_timestamp, t + 1);
	assert_int_equal(info.leader_epoch, 5);
	info = decode(out_of(&res, 2), res.batches[2].len, &s, &plain);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.keys[0], "k3");
	assert_int_equal(info.last_offset_delta, 1);
	kbuf_free(&plain);
	compact_result_free(&res);
	part_free(&p);
}

static void test_tombstones_delete_horizon(void **state)
{
	(void)state;
	struct compact_config c = cfg();
	struct part p = { 0 };
	int64_t t = NOW - 10000;
	add(&p, 0, (struct rec[]){ { "k1", "v", t } }, 1);
	add(&p, 1, (struct rec[]){ { "k1", NULL, t + 1 }, { "k2", "x", t + 1 } }, 2);
	add(&p, 3, (struct rec[]){ { "k9", "tail", t + 2 } }, 1);
	struct compact_plan plan;
	struct compact_result res;
	run(&c, &p, NOW, 0, &plan, &res);
	assert_int_equal(res.batches[0].verdict, COMPACT_DROP);
	/* The first pass keeps the tombstone and stamps its batch with the
	 * horizon now + delete.retention.ms (KIP-534). */
	assert_int_equal(res.batches[1].verdict, COMPACT_REWRITE);
	struct seen s;
	struct kbuf plain;
	kbuf_init(&plain);
	struct batch_info info = decode(out_of(&res, 1), res.batches[1].len, &s, &plain);
	assert_true(info.attributes & COMPACT_ATTR_DELETE_HORIZON);
	assert_int_equal(info.base_timestamp, NOW + DAY_MS);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.r[0].value_len, -1);
	/* Record timestamps survive the new base. */
	assert_int_equal(s.r[0].timestamp, t + 1);
	assert_int_equal(s.r[1].timestamp, t + 1);
	assert_int_equal(info.max_timestamp, t + 1);

	/* The next passes see the rewritten batch, a new dirty batch
	 * (k2 again) and a new tail. */
	struct part q = { 0 };
	struct kbuf rewritten;
	kbuf_init(&rewritten);
	kbuf_put(&rewritten, out_of(&res, 1), res.batches[1].len);
	compact_result_free(&res);
	q.bytes[0] = rewritten;
	q.in[0] = (struct compact_batch){ 1, rewritten.data, rewritten.len };
	q.spans[0] = (struct compact_span){ 1, 2, t + 1, (int64_t)rewritten.len };
	q.n = 1;
	add(&q, 3, (struct rec[]){ { "k2", "y", t + 2 } }, 1);
	add(&q, 4, (struct rec[]){ { "k9", "tail", t + 3 } }, 1);
	/* Before the horizon: the tombstone stays (k2@2 goes). */
	run(&c, &q, NOW + DAY_MS - 1, 3, &plan, &res);
	assert_int_equal(res.batches[0].verdict, COMPACT_REWRITE);
	info = decode(out_of(&res, 0), res.batches[0].len, &s, &plain);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.keys[0], "k1");
	assert_int_equal(info.base_timestamp, NOW + DAY_MS); /* the horizon is not moved */
	compact_result_free(&res);
	/* At the horizon it goes, and the emptied batch with it. */
	run(&c, &q, NOW + DAY_MS, 3, &plan, &res);
	assert_int_equal(res.batches[0].verdict, COMPACT_DROP);
	assert_int_equal(res.batches[1].verdict, COMPACT_KEEP);
	compact_result_free(&res);
	kbuf_free(&plain);
	part_free(&q);
	part_free(&p);
}

static void test_plan_bounds(void **state)
{
	(void)state;
	struct compact_config c = cfg();
	c.segment_ms = 7 * DAY_MS;
	struct compact_span s[] = {
		{ 0, 9, NOW - 30 * DAY_MS, 1000 },
		{ 10, 19, NOW - 20 * DAY_MS, 1000 },
		{ 20, 29, NOW - 8 * DAY_MS, 1000 },
		{ 30, 39, NOW - 6 * DAY_MS, 1000 }, /* within segment.ms: the head */
		{ 40, 49, NOW - 30 * DAY_MS, 1000 },
	};
	struct compact_plan plan;
	assert_int_equal(compact_plan(&c, NOW, 0, 50, s, 5, &plan), 0);
	assert_int_equal(plan.clean_end, 30);
	assert_int_equal(plan.spans_cleanable, 3);
	assert_int_equal(plan.cleanable_bytes, 3000);
	/* min.compaction.lag.ms stops at the first span newer than it. */
	c.min_compaction_lag_ms = 15 * DAY_MS;
	assert_int_equal(compact_plan(&c, NOW, 0, 50, s, 5, &plan), 0);
	assert_int_equal(plan.clean_end, 20);
	c.min_compaction_lag_ms = 0;
	/* max.compaction.lag.ms below segment.ms rolls the head sooner. */
	c.max_compaction_lag_ms = 5 * DAY_MS;
	assert_int_equal(compact_plan(&c, NOW, 0, 50, s, 5, &plan), 0);
	assert_int_equal(plan.clean_end, 40);
	c.max_compaction_lag_ms = INT64_MAX;
	/* segment.bytes rolls the head too: only spans both within
	 * segment.ms and within the last segment.bytes are in it. */
	c.segment_bytes = 1500;
	assert_int_equal(compact_plan(&c, NOW, 0, 50, s, 5, &plan), 0);
	assert_int_equal(plan.clean_end, 40); /* 30-39 is 2000 bytes from the end */
	c.segment_bytes = 2000;
	assert_int_equal(compact_plan(&c, NOW, 0, 50, s, 5, &plan), 0);
	assert_int_equal(plan.clean_end, 30);
	c.segment_bytes = 0;
	/* The tail span is never cleaned, old as it may be. */
	c.segment_ms = 1;
	assert_int_equal(compact_plan(&c, NOW, 0, 50, s, 5, &plan), 0);
	assert_int_equal(plan.clean_end, 40);
	/* Nor anything at or past the last stable offset. */
	assert_int_equal(compact_plan(&c, NOW, 0, 15, s, 5, &plan), 0);
	assert_int_equal(plan.clean_end, 10);
	/* Nothing cleanable: the end is the log start, nothing due. */
	assert_int_equal(compact_plan(&c, NOW, 0, 50, s, 1, &plan), 0);
	assert_int_equal(plan.clean_end, 0);
	assert_false(plan.due);
	/* Spans out of order are refused. */
	struct compact_span bad[] = { { 10, 19, 0, 1 }, { 5, 9, 0, 1 } };
	assert_int_equal(compact_plan(&c, NOW, 0, 50, bad, 2, &plan), SL_EINVAL);
}

static void test_plan_due(void **state)
{
	(void)state;
	struct compact_config c = cfg();
	c.segment_ms = 1;
	struct compact_span s[] = {
		{ 0, 9, NOW - 30 * DAY_MS, 3000 }, /* cleaned before */
		{ 10, 19, NOW - 20 * DAY_MS, 1000 },
		{ 20, 29, NOW - 10 * DAY_MS, 1000 },
		{ 30, 39, NOW, 1000 },
	};
	struct compact_plan plan;
	/* Dirty 2000 of 5000: 0.4, not above 0.5. */
	assert_int_equal(compact_plan(&c, NOW, 10, 40, s, 4, &plan), 0);
	assert_int_equal(plan.dirty_bytes, 2000);
	assert_int_equal(plan.cleanable_bytes, 5000);
	assert_false(plan.lag_due);
	assert_false(plan.due);
	c.min_cleanable_dirty_ratio = 0.39;
	assert_int_equal(compact_plan(&c, NOW, 10, 40, s, 4, &plan), 0);
	assert_true(plan.due);
	/* The first dirty data older than max.compaction.lag.ms makes the
	 * pass due whatever the ratio. */
	c.min_cleanable_dirty_ratio = 0.9;
	c.max_compaction_lag_ms = 15 * DAY_MS;
	assert_int_equal(compact_plan(&c, NOW, 10, 40, s, 4, &plan), 0);
	assert_true(plan.lag_due);
	assert_true(plan.due);
	/* Nothing dirty: never due. */
	assert_int_equal(compact_plan(&c, NOW, 30, 40, s, 4, &plan), 0);
	assert_int_equal(plan.dirty_bytes, 0);
	assert_false(plan.due);
}

static void test_min_compaction_lag_records(void **state)
{
	(void)state;
	/* Records newer than min.compaction.lag.ms are neither cleaned nor
	 * in the map: an older value of their key stays. */
	struct compact_config c = cfg();
	c.min_compaction_lag_ms = 60000;
	struct part p = { 0 };
	add(&p, 0, (struct rec[]){ { "k", "old", NOW - 120000 } }, 1);
	add(&p, 1, (struct rec[]){ { "k", "new", NOW - 1000 } }, 1);
	add(&p, 2, (struct rec[]){ { "z", "tail", NOW - 500 } }, 1);
	struct compact_plan plan;
	struct compact_result res;
	run(&c, &p, NOW, 0, &plan, &res);
	assert_int_equal(plan.clean_end, 1);
	assert_int_equal(res.batches[0].verdict, COMPACT_KEEP);
	assert_int_equal(res.batches[1].verdict, COMPACT_KEEP);
	compact_result_free(&res);
	/* Once the lag has passed, the old value goes. */
	run(&c, &p, NOW + 60000, 0, &plan, &res);
	assert_int_equal(plan.clean_end, 2);
	assert_int_equal(res.batches[0].verdict, COMPACT_DROP);
	assert_int_equal(res.batches[1].verdict, COMPACT_KEEP);
	compact_result_free(&res);
	part_free(&p);
}

static void test_idempotent_last_batch_kept_empty(void **state)
{
	(void)state;
	struct compact_config c = cfg();
	struct part p = { 0 };
	int64_t t = NOW - 10000;
	struct bspec s0 = { 0, BATCH_CODEC_NONE, 7, 3, 0, 0, -1 };
	struct bspec s1 = { 2, BATCH_CODEC_ZSTD, 7, 3, 2, 0, -1 };
	part_add(&p, &s0, (struct rec[]){ { "k", "a", t }, { "j", "b", t } }, 2);
	part_add(&p, &s1, (struct rec[]){ { "k", "c", t + 1 }, { "j", "d", t + 1 } }, 2);
	add(&p, 4, (struct rec[]){ { "k", "e", t + 2 }, { "j", "f", t + 2 } }, 2);
	add(&p, 6, (struct rec[]){ { "z", "tail", t + 3 } }, 1);
	struct compact_plan plan;
	struct compact_result res;
	run(&c, &p, NOW, 0, &plan, &res);
	/* Producer 7's older batch goes; its last keeps its header only. */
	assert_int_equal(res.batches[0].verdict, COMPACT_DROP);
	assert_int_equal(res.batches[1].verdict, COMPACT_REWRITE);
	assert_int_equal(res.batches[1].records_kept, 0);
	struct seen s;
	struct kbuf plain;
	kbuf_init(&plain);
	struct batch_info info = decode(out_of(&res, 1), res.batches[1].len, &s, &plain);
	assert_int_equal(res.batches[1].len, BATCH_HEADER_BYTES);
	assert_int_equal(info.record_count, 0);
	assert_int_equal(info.last_offset_delta, 1);
	assert_int_equal(info.producer_id, 7);
	assert_int_equal(info.producer_epoch, 3);
	assert_int_equal(info.base_sequence, 2);
	assert_int_equal(info.attributes & 0x07, BATCH_CODEC_NONE);
	assert_int_equal(info.base_timestamp, -1);
	assert_int_equal(info.max_timestamp, t + 1);
	compact_result_free(&res);
	/* A producer expired (its last batch older than
	 * producer.id.expiration.ms) keeps nothing. */
	run(&c, &p, t + 1 + DAY_MS, 0, &plan, &res);
	assert_int_equal(res.batches[1].verdict, COMPACT_DROP);
	compact_result_free(&res);
	kbuf_free(&plain);
	part_free(&p);
}

static void test_headers_kept(void **state)
{
	(void)state;
	struct compact_config c = cfg();
	struct part p = { 0 };
	int64_t t = NOW - 10000;
	add(&p, 0, (struct rec[]){ { "a", "1", t, "x" }, { "b", "2", t + 5, "header-of-b" } }, 2);
	add(&p, 2, (struct rec[]){ { "a", "3", t + 9 } }, 1);
	add(&p, 3, (struct rec[]){ { "z", "tail", t + 9 } }, 1);
	struct compact_plan plan;
	struct compact_result res;
	run(&c, &p, NOW, 0, &plan, &res);
	assert_int_equal(res.batches[0].verdict, COMPACT_REWRITE);
	struct seen s;
	struct kbuf plain;
	kbuf_init(&plain);
	decode(out_of(&res, 0), res.batches[0].len, &s, &plain);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.r[0].header_count, 1);
	assert_int_equal(s.r[0].headers_len, 1 + 1 + 1 + strlen("header-of-b"));
	assert_memory_equal(s.headers[0] + 3, "header-of-b", strlen("header-of-b"));
	assert_int_equal(s.r[0].timestamp, t + 5);
	kbuf_free(&plain);
	compact_result_free(&res);
	part_free(&p);
}

/* Each codec: a batch losing half its records comes back in the same
 * codec, its survivors' keys, values, offset deltas and timestamps and
 * its producer fields and leader epoch intact. */
static void test_rewrite_each_codec(void **state)
{
	(void)state;
	for (int codec = BATCH_CODEC_NONE; codec <= BATCH_CODEC_ZSTD; codec++) {
		struct compact_config c = cfg();
		struct part p = { 0 };
		int64_t t = NOW - 10000;
		struct rec r[40];
		char keys[40][8], values[40][32];
		for (int i = 0; i < 40; i++) {
			snprintf(keys[i], sizeof keys[i], "k%d", i % 20);
			snprintf(values[i], sizeof values[i], "value number %d of many", i);
			r[i] = (struct rec){ keys[i], values[i], t + 3 * i - (i == 25 ? 50 : 0) };
		}
		struct bspec s = { 100, (enum batch_codec)codec, 42, 1, 77, 0, -1 };
		part_add(&p, &s, r, 40);
		add(&p, 140, (struct rec[]){ { "z", "tail", t + 200 } }, 1);
		/* The base offset field as stored is left as it was. */
		struct compact_plan plan;
		struct compact_result res;
		run(&c, &p, NOW, 100, &plan, &res);
		assert_int_equal(res.batches[0].verdict, COMPACT_REWRITE);
		struct seen got;
		struct kbuf plain;
		kbuf_init(&plain);
		const uint8_t *b = out_of(&res, 0);
		struct batch_info info = decode(b, res.batches[0].len, &got, &plain);
		assert_int_equal(info.attributes & 0x07, codec);
		assert_int_equal(info.record_count, 20);
		assert_int_equal(info.last_offset_delta, 39);
		assert_int_equal(info.producer_id, 42);
		assert_int_equal(info.producer_epoch, 1);
		assert_int_equal(info.base_sequence, 77);
		assert_int_equal(info.leader_epoch, 5);
		assert_int_equal(info.base_offset, 0);
		assert_int_equal(info.base_timestamp, t + 60);
		assert_int_equal(info.max_timestamp, t + 117);
		for (int i = 0; i < 20; i++) {
			assert_int_equal(got.r[i].offset_delta, 20 + i);
			assert_string_equal(got.keys[i], keys[20 + i]);
			assert_string_equal(got.values[i], values[20 + i]);
			assert_int_equal(got.r[i].timestamp, r[20 + i].ts);
		}
		/* And the rewrite is stable: cleaning it again keeps it. */
		struct part q = { 0 };
		q.in[0] = (struct compact_batch){ 100, b, res.batches[0].len };
		q.spans[0] = (struct compact_span){ 100, 139, t + 117, (int64_t)res.batches[0].len };
		q.in[1] = p.in[1];
		q.spans[1] = p.spans[1];
		q.n = 2;
		struct compact_result again;
		run(&c, &q, NOW, 100, &plan, &again);
		assert_int_equal(again.batches[0].verdict, COMPACT_KEEP);
		compact_result_free(&again);
		kbuf_free(&plain);
		compact_result_free(&res);
		part_free(&p);
	}
}

static void test_map_bound(void **state)
{
	(void)state;
	struct compact_config c = cfg();
	struct part p = { 0 };
	int64_t t = NOW - 10000;
	struct rec r[200];
	char keys[200][8];
	for (int i = 0; i < 200; i++) {
		snprintf(keys[i], sizeof keys[i], "k%03d", i);
		r[i] = (struct rec){ keys[i], "v", t };
	}
	add(&p, 0, r, 200);         /* 200 keys */
	add(&p, 200, r + 100, 100); /* k100..k199 again */
	add(&p, 300, r, 1);
	/* Room for the first batch's keys only: the pass cleans up to the
	 * second batch and says so (the next pass goes on from there). */
	c.map_bytes_max = 1024 * 24 + 200 * 4;
	struct compact_plan plan;
	struct compact_result res;
	run(&c, &p, NOW, 0, &plan, &res);
	assert_int_equal(plan.clean_end, 300);
	assert_int_equal(res.clean_end, 200);
	assert_int_equal(res.batches[0].verdict, COMPACT_KEEP);
	assert_int_equal(res.batches[1].verdict, COMPACT_KEEP);
	compact_result_free(&res);
	/* Not even the first batch fits: refused. */
	c.map_bytes_max = 1000;
	assert_int_equal(compact_clean(&c, NOW, 0, &plan, p.in, (size_t)p.n, NULL, NULL, &res),
			 SL_ELIMIT);
	part_free(&p);
}

static enum compact_txn_verdict aborted_all(void *arg, int64_t base_offset,
					    const struct batch_info *info)
{
	(void)base_offset;
	int *calls = arg;
	(*calls)++;
	return (info->attributes & BATCH_ATTR_CONTROL) ? COMPACT_TXN_KEEP : COMPACT_TXN_ABORTED;
}

static void test_transactions_hook(void **state)
{
	(void)state;
	struct compact_config c = cfg();
	struct part p = { 0 };
	int64_t t = NOW - 10000;
	struct bspec txn = { 0, BATCH_CODEC_NONE, 9, 0, 0, BATCH_ATTR_TRANSACTIONAL, -1 };
	struct bspec marker = { 2, BATCH_CODEC_NONE, 9, 0, -1,
				BATCH_ATTR_TRANSACTIONAL | BATCH_ATTR_CONTROL, -1 };
	part_add(&p, &txn, (struct rec[]){ { "k", "aborted", t }, { "j", "aborted", t } }, 2);
	part_add(&p, &marker, (struct rec[]){ { "\x00\x00\x00\x00", "abort", t } }, 1);
	add(&p, 3, (struct rec[]){ { "z", "tail", t } }, 1);
	struct compact_plan plan;
	struct compact_result res;
	/* Without the hook (no transactions yet) both stay untouched. */
	run(&c, &p, NOW, 0, &plan, &res);
	assert_int_equal(res.batches[0].verdict, COMPACT_KEEP);
	assert_int_equal(res.batches[1].verdict, COMPACT_KEEP);
	compact_result_free(&res);
	/* With it, the aborted data goes (producer 9's last data batch:
	 * its header stays); the ABORT marker stays. */
	int calls = 0;
	assert_int_equal(compact_clean(&c, NOW, 0, &plan, p.in, (size_t)p.n, aborted_all, &calls,
				       &res), 0);
	assert_true(calls >= 2);
	assert_int_equal(res.batches[0].verdict, COMPACT_REWRITE);
	assert_int_equal(res.batches[0].records_kept, 0);
	assert_int_equal(res.batches[1].verdict, COMPACT_KEEP);
	/* Its transaction keeps a batch (the empty header): it stays in the
	 * aborted index, as Kafka keeps it in the cleaned transaction index. */
	assert_false(res.batches[1].aborted_gone);
	compact_result_free(&res);
	part_free(&p);
}

static enum compact_txn_verdict none_aborted(void *arg, int64_t base_offset,
					     const struct batch_info *info)
{
	(void)arg;
	(void)base_offset;
	(void)info;
	return COMPACT_TXN_KEEP;
}

/* A batch as stored by an earlier pass (bytes as they are). */
static void part_raw(struct part *p, int64_t base, const uint8_t *b, size_t len)
{
	struct kbuf *k = &p->bytes[p->n];
	kbuf_init(k);
	kbuf_put(k, b, len);
	struct batch_info info;
	assert_int_equal(batch_parse_header(k->data, k->len, &info), 0);
	p->in[p->n] = (struct compact_batch){ base, k->data, k->len };
	p->spans[p->n] = (struct compact_span){ base, base + info.last_offset_delta,
						info.max_timestamp, (int64_t)k->len };
	p->n++;
}

/* A pass over all of p with the transactions hook txn (none_aborted
 * when NULL). */
static void clean_txn_with_arg(const struct compact_config *c, struct part *p, int64_t now,
			       compact_txn_fn txn, void *arg, struct compact_result *res)
{
	struct compact_plan plan;
	const struct compact_span *last = &p->spans[p->n - 1];
	assert_int_equal(compact_plan(c, now, 0, last->last_offset + 1, p->spans, (size_t)p->n,
				      &plan), 0);
	assert_int_equal(compact_clean(c, now, 0, &plan, p->in, (size_t)p->n,
				       txn ? txn : none_aborted, arg, res), 0);
}

static void clean_txn_with(const struct compact_config *c, struct part *p, int64_t now,
			   compact_txn_fn txn, struct compact_result *res)
{
	clean_txn_with_arg(c, p, now, txn, NULL, res);
}

/* A marker's control record: key version 0, type 1 (COMMIT) or 0
 * (ABORT). */
static struct rec marker_rec(bool commit, int64_t ts)
{
	return (struct rec){ commit ? "\x00\x00\x00\x01" : "\x00\x00\x00\x00", "", ts, NULL, 4 };
}

static void clean_txn(const struct compact_config *c, struct part *p, int64_t now,
		      struct compact_result *res)
{
	clean_txn_with(c, p, now, NULL, res);
}

/* Committed transactions are cleaned as Kafka's cleaner cleans them: their
 * records by key; a COMMIT marker is kept while a batch of its
 * transaction is stored, then gets a delete horizon, then goes; so does
 * an ABORT marker, whose transaction leaves the aborted index when the
 * horizon is set. Three passes, each over what the one before stored. */
static void test_committed_transactions(void **state)
{
	(void)state;
	struct compact_config c = cfg();
	int64_t t = NOW - 10000;
	const int16_t TX = BATCH_ATTR_TRANSACTIONAL, CTL = BATCH_ATTR_TRANSACTIONAL | BATCH_ATTR_CONTROL;
	struct rec commit = marker_rec(true, t), abort_ = marker_rec(false, t);
	struct part p = { 0 };
	part_add(&p, &(struct bspec){ 0, BATCH_CODEC_NONE, 9, 0, 0, TX, -1 },
		 (struct rec[]){ { "k", "a1", t }, { "j", "j1", t } }, 2);
	part_add(&p, &(struct bspec){ 2, BATCH_CODEC_NONE, 9, 0, -1, CTL, -1 }, &commit, 1);
	part_add(&p, &(struct bspec){ 3, BATCH_CODEC_NONE, 8, 0, 0, TX, -1 },
		 (struct rec[]){ { "m", "m1", t } }, 1);
	part_add(&p, &(struct bspec){ 4, BATCH_CODEC_NONE, 8, 0, -1, CTL, -1 }, &commit, 1);
	part_add(&p, &(struct bspec){ 5, BATCH_CODEC_NONE, 8, 0, 1, TX, -1 },
		 (struct rec[]){ { "k", "a2", t } }, 1);
	part_add(&p, &(struct bspec){ 6, BATCH_CODEC_NONE, 8, 0, -1, CTL, -1 }, &commit, 1);
	add(&p, 7, (struct rec[]){ { "m", "m2", t } }, 1);
	part_add(&p, &(struct bspec){ 8, BATCH_CODEC_NONE, 7, 0, -1, CTL, -1 }, &abort_, 1);
	add(&p, 9, (struct rec[]){ { "z", "tail", t } }, 1);

	/* Without the hook transactional batches stay as they are. */
	struct compact_plan plan;
	struct compact_result res;
	run(&c, &p, NOW, 0, &plan, &res);
	assert_int_equal(res.batches[0].verdict, COMPACT_KEEP);
	assert_int_equal(res.batches[2].verdict, COMPACT_KEEP);
	compact_result_free(&res);

	/* Pass 1: the committed records are cleaned by key: k=a1 goes (its
	 * batch rewritten with j1, still transactional), m=m1's batch is
	 * dropped. The COMMIT markers stay: each saw a batch of its
	 * transaction. Producer 7's ABORT marker saw none: it gets a delete
	 * horizon (its transaction is not listed as aborted here: no row to
	 * take out of the index, so no first horizon either). */
	clean_txn(&c, &p, NOW, &res);
	assert_int_equal(res.batches[0].verdict, COMPACT_REWRITE);
	assert_int_equal(res.batches[0].records_kept, 1);
	struct seen s;
	struct kbuf plain;
	kbuf_init(&plain);
	struct batch_info info = decode(out_of(&res, 0), res.batches[0].len, &s, &plain);
	assert_string_equal(s.keys[0], "j");
	assert_true(info.attributes & BATCH_ATTR_TRANSACTIONAL);
	assert_int_equal(info.producer_id, 9);
	assert_int_equal(res.batches[2].verdict, COMPACT_DROP);
	for (int i = 1; i < 7; i++)
		if (i != 2)
			assert_int_equal(res.batches[i].verdict, COMPACT_KEEP);
	assert_int_equal(res.batches[7].verdict, COMPACT_REWRITE);
	for (int i = 0; i < 8; i++)
		assert_false(res.batches[i].aborted_gone);
	struct batch_info ab = decode(out_of(&res, 7), res.batches[7].len, &s, &plain);
	assert_true(ab.attributes & COMPACT_ATTR_DELETE_HORIZON);
	assert_int_equal(ab.base_timestamp, NOW + DAY_MS);
	struct kbuf abort_horizon;
	kbuf_init(&abort_horizon);
	kbuf_put(&abort_horizon, out_of(&res, 7), res.batches[7].len);

	/* Pass 2 over what pass 1 stored: m1's transaction has no batch
	 * left, so its COMMIT marker gets a delete horizon. */
	struct part q = { 0 };
	part_raw(&q, 0, out_of(&res, 0), res.batches[0].len);
	compact_result_free(&res);
	part_raw(&q, 2, p.in[1].bytes, p.in[1].len);
	struct kbuf filler;
	kbuf_init(&filler);
	assert_int_equal(compact_write_empty(&filler, 3, 5, 0, -1), 0);
	part_raw(&q, 3, filler.data, filler.len);
	for (int i = 3; i < p.n; i++)
		if (i == 7)
			part_raw(&q, 8, abort_horizon.data, abort_horizon.len);
		else
			part_raw(&q, p.in[i].base_offset, p.in[i].bytes, p.in[i].len);
	clean_txn(&c, &q, NOW, &res);
	assert_int_equal(res.batches[3].verdict, COMPACT_REWRITE);
	assert_int_equal(res.batches[3].records_kept, 1);
	info = decode(out_of(&res, 3), res.batches[3].len, &s, &plain);
	assert_true(info.attributes & BATCH_ATTR_CONTROL);
	assert_true(info.attributes & COMPACT_ATTR_DELETE_HORIZON);
	assert_int_equal(info.base_timestamp, NOW + DAY_MS);
	for (int i = 0; i < q.n - 1; i++) {
		if (i != 3)
			assert_int_equal(res.batches[i].verdict, COMPACT_KEEP);
		/* Its transaction left the aborted index with pass 1. */
		assert_false(res.batches[i].aborted_gone);
	}

	/* Pass 3, past the horizons: that marker and the ABORT marker go.
	 * The other COMMIT markers stay (j1 and a2 are stored). */
	struct part r = { 0 };
	for (int i = 0; i < q.n; i++)
		if (i == 3)
			part_raw(&r, 4, out_of(&res, 3), res.batches[3].len);
		else
			part_raw(&r, q.in[i].base_offset, q.in[i].bytes, q.in[i].len);
	compact_result_free(&res);
	clean_txn(&c, &r, NOW + DAY_MS + 1, &res);
	assert_int_equal(res.batches[3].verdict, COMPACT_DROP);
	assert_int_equal(res.batches[7].verdict, COMPACT_DROP);
	for (int i = 0; i < r.n - 1; i++)
		if (i != 3 && i != 7)
			assert_int_equal(res.batches[i].verdict, COMPACT_KEEP);
	compact_result_free(&res);
	kbuf_free(&abort_horizon);
	kbuf_free(&filler);
	kbuf_free(&plain);
	part_free(&r);
	part_free(&q);
	part_free(&p);
}

/* Producer 5's transaction at 0..1 is aborted (marker at 2). */
/* Producer 5's transaction up to its ABORT marker at 2 is aborted; its
 * row is listed unless arg points at a true bool. */
static enum compact_txn_verdict aborted_first(void *arg, int64_t base_offset,
					      const struct batch_info *info)
{
	if ((info->attributes & BATCH_ATTR_CONTROL) && arg && *(bool *)arg)
		return COMPACT_TXN_KEEP; /* its row deleted */
	return info->producer_id == 5 && base_offset <= 2 ? COMPACT_TXN_ABORTED : COMPACT_TXN_KEEP;
}

/* An aborted transaction as Kafka's CleanedTransactionMetadata treats
 * it: the pass that drops its data keeps the ABORT marker and the
 * aborted index row (it saw a batch of the transaction); the next finds
 * none left: the marker gets a first delete horizon, the row stays
 * listed (a fetch serving the bytes from before the records went must
 * still list it); a pass past it deletes the row (aborted_gone, once)
 * and gives the marker its second horizon; a pass past that drops the
 * marker. */
static void test_aborted_marker_goes(void **state)
{
	(void)state;
	struct compact_config c = cfg();
	int64_t t = NOW - 10000;
	const int16_t TX = BATCH_ATTR_TRANSACTIONAL, CTL = BATCH_ATTR_TRANSACTIONAL | BATCH_ATTR_CONTROL;
	struct rec commit = marker_rec(true, t), abort_ = marker_rec(false, t);
	struct part p = { 0 };
	part_add(&p, &(struct bspec){ 0, BATCH_CODEC_NONE, 5, 0, 0, TX, -1 },
		 (struct rec[]){ { "k", "aborted", t }, { "j", "aborted", t } }, 2);
	part_add(&p, &(struct bspec){ 2, BATCH_CODEC_NONE, 5, 0, -1, CTL, -1 }, &abort_, 1);
	part_add(&p, &(struct bspec){ 3, BATCH_CODEC_NONE, 5, 0, 2, TX, -1 },
		 (struct rec[]){ { "k", "k1", t } }, 1);
	part_add(&p, &(struct bspec){ 4, BATCH_CODEC_NONE, 5, 0, -1, CTL, -1 }, &commit, 1);
	add(&p, 5, (struct rec[]){ { "z", "tail", t } }, 1);

	/* Pass 1: the aborted batch goes (not its producer's last); the
	 * marker stays and so does its transaction's row. */
	struct compact_result res;
	clean_txn_with(&c, &p, NOW, aborted_first, &res);
	assert_int_equal(res.batches[0].verdict, COMPACT_DROP);
	for (int i = 1; i < p.n; i++)
		assert_int_equal(res.batches[i].verdict, COMPACT_KEEP);
	for (int i = 0; i < p.n; i++)
		assert_false(res.batches[i].aborted_gone);
	compact_result_free(&res);

	/* Pass 2 over what pass 1 stored (a filler over 0..1): the marker
	 * gets its first horizon, the row stays. */
	struct part q = { 0 };
	struct kbuf filler;
	kbuf_init(&filler);
	assert_int_equal(compact_write_empty(&filler, 0, 0, 1, -1), 0);
	part_raw(&q, 0, filler.data, filler.len);
	for (int i = 1; i < p.n; i++)
		part_raw(&q, p.in[i].base_offset, p.in[i].bytes, p.in[i].len);
	clean_txn_with(&c, &q, NOW, aborted_first, &res);
	assert_int_equal(res.batches[1].verdict, COMPACT_REWRITE);
	assert_false(res.batches[1].aborted_gone);
	struct seen s;
	struct kbuf plain;
	kbuf_init(&plain);
	struct batch_info info = decode(out_of(&res, 1), res.batches[1].len, &s, &plain);
	assert_true(info.attributes & BATCH_ATTR_CONTROL);
	assert_true(info.attributes & COMPACT_ATTR_DELETE_HORIZON);
	assert_int_equal(info.base_timestamp, NOW + DAY_MS);
	assert_int_equal(info.producer_id, 5);
	for (int i = 0; i < q.n; i++)
		if (i != 1) {
			assert_int_equal(res.batches[i].verdict, COMPACT_KEEP);
			assert_false(res.batches[i].aborted_gone);
		}

	/* Pass 3 before the first horizon: kept, the row listed; past it:
	 * the row goes, the marker gets its second horizon. The COMMIT
	 * marker stays (k1 is stored). */
	struct part r = { 0 };
	for (int i = 0; i < q.n; i++)
		if (i == 1)
			part_raw(&r, 2, out_of(&res, 1), res.batches[1].len);
		else
			part_raw(&r, q.in[i].base_offset, q.in[i].bytes, q.in[i].len);
	compact_result_free(&res);
	clean_txn_with(&c, &r, NOW + DAY_MS - 1, aborted_first, &res);
	for (int i = 0; i < r.n; i++) {
		assert_int_equal(res.batches[i].verdict, COMPACT_KEEP);
		assert_false(res.batches[i].aborted_gone);
	}
	compact_result_free(&res);
	clean_txn_with(&c, &r, NOW + DAY_MS, aborted_first, &res);
	assert_int_equal(res.batches[1].verdict, COMPACT_REWRITE);
	assert_true(res.batches[1].aborted_gone);
	info = decode(out_of(&res, 1), res.batches[1].len, &s, &plain);
	assert_true(info.attributes & COMPACT_ATTR_DELETE_HORIZON);
	assert_int_equal(info.base_timestamp, NOW + 2 * DAY_MS);
	assert_int_equal(s.n, 1); /* the marker's control record */
	assert_int_equal(res.batches[3].verdict, COMPACT_KEEP);
	struct part u = { 0 };
	for (int i = 0; i < r.n; i++)
		if (i == 1)
			part_raw(&u, 2, out_of(&res, 1), res.batches[1].len);
		else
			part_raw(&u, r.in[i].base_offset, r.in[i].bytes, r.in[i].len);
	compact_result_free(&res);

	/* Pass 4, the row gone: the marker stays until its second horizon,
	 * then goes. */
	bool row_gone = true;
	clean_txn_with_arg(&c, &u, NOW + 2 * DAY_MS - 1, aborted_first, &row_gone, &res);
	for (int i = 0; i < u.n; i++) {
		assert_int_equal(res.batches[i].verdict, COMPACT_KEEP);
		assert_false(res.batches[i].aborted_gone);
	}
	compact_result_free(&res);
	clean_txn_with_arg(&c, &u, NOW + 2 * DAY_MS, aborted_first, &row_gone, &res);
	assert_int_equal(res.batches[1].verdict, COMPACT_DROP);
	assert_false(res.batches[1].aborted_gone);
	assert_int_equal(res.batches[3].verdict, COMPACT_KEEP);
	compact_result_free(&res);
	part_free(&u);
	kbuf_free(&plain);
	kbuf_free(&filler);
	part_free(&r);
	part_free(&q);
	part_free(&p);
}

/* Clean p scanned and cleaned in chunks of k batches (the last shorter);
 * out gets each batch's outcome, rewrites appended to *bytes. */
static void run_chunked(const struct compact_config *c, struct part *p, int64_t now,
			const struct compact_plan *plan, int k, compact_txn_fn txn, void *arg,
			struct compact_outcome *out, struct kbuf *bytes, int64_t *clean_end)
{
	struct compact_scan *sc;
	assert_int_equal(compact_scan_new(c, now, 0, plan, txn, arg, &sc), 0);
	for (int i = 0; i < p->n; i += k)
		assert_int_equal(compact_scan_add(sc, p->in + i, (size_t)(p->n - i < k ? p->n - i : k)),
				 0);
	assert_int_equal(compact_scan_finish(sc, clean_end), 0);
	for (int i = 0; i < p->n; i += k) {
		size_t n = (size_t)(p->n - i < k ? p->n - i : k);
		struct compact_result res;
		assert_int_equal(compact_clean_chunk(sc, p->in + i, n, &res), 0);
		assert_int_equal(res.clean_end, *clean_end);
		for (size_t j = 0; j < n; j++) {
			out[i + (int)j] = res.batches[j];
			if (res.batches[j].verdict == COMPACT_REWRITE) {
				out[i + (int)j].pos = bytes->len;
				kbuf_put(bytes, res.out.data + res.batches[j].pos, res.batches[j].len);
			}
		}
		compact_result_free(&res);
	}
	/* Chunks in offset order only. */
	struct compact_result res;
	assert_int_equal(compact_clean_chunk(sc, p->in, 1, &res), SL_EINVAL);
	compact_scan_free(sc);
}

/* A partition cleaned in chunks of any size gets the verdicts and bytes
 * of one pass over all of it: the map is built over the whole dirty
 * part first, the producers' last batches and lone markers over the
 * whole partition (storage/clean.c's chunked pass of a partition longer
 * than it may read at once). Also when the map fills mid-way. */
static void test_chunked_equals_whole(void **state)
{
	(void)state;
	struct compact_config c = cfg();
	struct part p = { 0 };
	int64_t t = NOW - 10000;
	char keys[40][8], vals[40][8];
	for (int i = 0; i < 40; i++) {
		snprintf(keys[i], sizeof keys[i], "k%02d", i % 7);
		snprintf(vals[i], sizeof vals[i], "v%d", i);
	}
	int64_t off = 0;
	for (int i = 0; i < 40; i += 2, off += 2) {
		struct rec r[2] = { { keys[i], i % 9 == 4 ? NULL : vals[i], t + i },
				    { keys[i + 1], vals[i + 1], t + i } };
		if (i % 5 == 1) {
			/* producer 7's batches: its last keeps a header */
			struct bspec s = { off, BATCH_CODEC_LZ4, 7, 1, i, 0, -1 };
			part_add(&p, &s, r, 2);
		} else {
			add(&p, off, r, 2);
		}
	}
	add(&p, off, (struct rec[]){ { "tail", "x", t + 50 } }, 1);
	const struct compact_span *last = &p.spans[p.n - 1];
	for (int round = 0; round < 2; round++) {
		if (round == 1)
			c.map_bytes_max = 1024 * 24 + 5 * 3; /* fills at the 6th key */
		struct compact_plan plan;
		assert_int_equal(compact_plan(&c, NOW, 0, last->last_offset + 1, p.spans,
					      (size_t)p.n, &plan), 0);
		struct compact_result whole;
		assert_int_equal(compact_clean(&c, NOW, 0, &plan, p.in, (size_t)p.n, NULL, NULL,
					       &whole), 0);
		if (round == 1)
			assert_true(whole.clean_end < plan.clean_end && whole.clean_end > 0);
		int dropped = 0;
		for (int i = 0; i < p.n; i++)
			dropped += whole.batches[i].verdict == COMPACT_DROP;
		assert_true(round == 1 || dropped > 0);
		for (int k = 1; k <= p.n; k++) {
			struct compact_outcome out[64];
			struct kbuf bytes;
			kbuf_init(&bytes);
			int64_t end;
			run_chunked(&c, &p, NOW, &plan, k, NULL, NULL, out, &bytes, &end);
			assert_int_equal(end, whole.clean_end);
			for (int i = 0; i < p.n; i++) {
				assert_int_equal(out[i].verdict, whole.batches[i].verdict);
				assert_int_equal(out[i].records_kept, whole.batches[i].records_kept);
				if (out[i].verdict != COMPACT_REWRITE)
					continue;
				assert_int_equal(out[i].len, whole.batches[i].len);
				assert_memory_equal(bytes.data + out[i].pos,
						    whole.out.data + whole.batches[i].pos, out[i].len);
			}
			kbuf_free(&bytes);
		}
		compact_result_free(&whole);
	}
	/* The producer table is bounded by map_bytes_max too. */
	struct part many = { 0 };
	for (int i = 0; i < 40; i++) {
		struct bspec s = { i, BATCH_CODEC_NONE, 100 + i, 1, 0, 0, -1 };
		part_add(&many, &s, (struct rec[]){ { "k", "v", t } }, 1);
	}
	c = cfg();
	c.map_bytes_max = 2048;
	struct compact_plan plan;
	assert_int_equal(compact_plan(&c, NOW, 0, 40, many.spans, (size_t)many.n, &plan), 0);
	struct compact_scan *sc;
	assert_int_equal(compact_scan_new(&c, NOW, 0, &plan, NULL, NULL, &sc), 0);
	assert_int_equal(compact_scan_add(sc, many.in, (size_t)many.n), SL_ELIMIT);
	compact_scan_free(sc);
	part_free(&many);
	part_free(&p);
}

static void test_refusals(void **state)
{
	(void)state;
	struct compact_config c = cfg();
	struct part p = { 0 };
	add(&p, 10, (struct rec[]){ { "a", "1", NOW } }, 1);
	add(&p, 5, (struct rec[]){ { "a", "1", NOW } }, 1);
	struct compact_plan plan = { .clean_end = 11 };
	struct compact_result res;
	assert_int_equal(compact_clean(&c, NOW, 0, &plan, p.in, 2, NULL, NULL, &res), SL_EINVAL);
	/* A corrupt record section is an error, not a crash. */
	p.bytes[0].data[BATCH_HEADER_BYTES] = 0x7f;
	p.in[1].base_offset = 11;
	assert_int_equal(compact_clean(&c, NOW, 0, &plan, p.in, 2, NULL, NULL, &res), SL_EPROTO);
	part_free(&p);
}

/* What a pass stores for a run of dropped batches: a valid batch (CRC,
 * framing) of no records over the run's offsets, no producer, no codec,
 * the largest timestamp kept. */
static void test_empty_header(void **state)
{
	(void)state;
	struct kbuf b;
	kbuf_init(&b);
	assert_int_equal(compact_write_empty(&b, 1000, 7, 41, 1700000000123LL), 0);
	assert_int_equal(b.len, BATCH_HEADER_BYTES);
	/* (batch_validate is the produce path's: it wants a record per
	 * offset, which a producer's batch has.) */
	struct batch_info info;
	assert_int_equal(batch_parse_header(b.data, b.len, &info), 0);
	assert_int_equal(batch_total_bytes(&info), b.len);
	assert_int_equal(info.crc, crc32c(0, b.data + 21, b.len - 21));
	assert_int_equal(info.magic, 2);
	assert_int_equal(info.base_offset, 1000);
	assert_int_equal(info.leader_epoch, 7);
	assert_int_equal(info.last_offset_delta, 41);
	assert_int_equal(info.record_count, 0);
	assert_int_equal(info.attributes, 0);
	assert_int_equal(info.producer_id, -1);
	assert_int_equal(info.producer_epoch, -1);
	assert_int_equal(info.base_sequence, -1);
	assert_int_equal(info.base_timestamp, -1);
	assert_int_equal(info.max_timestamp, 1700000000123LL);
	kbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_latest_per_key),
		cmocka_unit_test(test_empty_header),
		cmocka_unit_test(test_tombstones_delete_horizon),
		cmocka_unit_test(test_plan_bounds),
		cmocka_unit_test(test_plan_due),
		cmocka_unit_test(test_min_compaction_lag_records),
		cmocka_unit_test(test_idempotent_last_batch_kept_empty),
		cmocka_unit_test(test_headers_kept),
		cmocka_unit_test(test_rewrite_each_codec),
		cmocka_unit_test(test_map_bound),
		cmocka_unit_test(test_transactions_hook),
		cmocka_unit_test(test_committed_transactions),
		cmocka_unit_test(test_aborted_marker_goes),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_chunked_equals_whole),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
