/* test_fetch_segments.c — Fetch responses written in pieces.
 *
 * The read path (storage/reader.c) against the in-memory object store, a
 * real SQLite metadata store and the read cache: the pieces of a slot put
 * together are its batches, patched with their offsets, whether they come
 * from a cached object (referenced; short runs copied) or from ranged
 * store reads; Kafka's size rules (the response's first batch whole,
 * partition and response budgets, nothing at or past the high
 * watermark); a failed store read leaves its slot empty with an error;
 * past the pin budget cached runs are copied, not referenced;
 * read_committed: nothing at or past the last stable offset, and the
 * aborted transactions the records overlap, from the aborted index or
 * looked up (injected rows) in the same pool job as the batch rows, a
 * cut lookup bounding the records, a failed one failing the slot.
 *
 * The encoding: the encoded fields with the records left out
 * (kmsg_fetch_resp_encode_gaps) and the records from where they are (a
 * partition's possibly in several pieces at one offset: cached objects
 * and the fetch's buffer), put together as the server writes them
 * (response_pieces), must be exactly the bytes of the contiguous encoder,
 * at every Fetch version, for hand-built responses (several topics and
 * partitions, null, empty, short and long records, error partitions,
 * tagged fields) and for the codec's pseudo-random ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "kmsg.h"
#include "meta/meta.h"
#include "net/server.h"
#include "objstore/objstore.h"
#include "proto/kerr.h"
#include "storage/batch.h"
#include "storage/batch_index.h"
#include "storage/cache.h"
#include "storage/reader.h"
#include "agent/agent.h"
#include "txn/aborted_index.h"
#include "txn/coordinator.h"

#define TEST_ARENA_BYTES (16 * 1024 * 1024)

/* The pieces of head with gaps g[0..n) (as the server writes them) put
 * together must be whole's bytes. */
static void assert_pieces_whole(const struct kbuf *head, const struct kmsg_gap *g, size_t n,
				const struct kbuf *whole, int16_t v)
{
	uv_buf_t *bufs = malloc((2 * n + 1) * sizeof *bufs);
	assert_non_null(bufs);
	size_t nb = response_pieces(head->data, head->len, g, n, bufs);
	assert_true(nb <= 2 * n + 1);
	uint8_t *cat = malloc(whole->len ? whole->len : 1);
	assert_non_null(cat);
	size_t at = 0;
	for (size_t i = 0; i < nb; i++) {
		assert_true(bufs[i].len > 0);
		assert_true(at + bufs[i].len <= whole->len);
		memcpy(cat + at, bufs[i].base, bufs[i].len);
		at += bufs[i].len;
	}
	assert_int_equal(at, whole->len);
	if (memcmp(cat, whole->data, whole->len) != 0)
		fail_msg("pieces differ from the contiguous encoding at v%d", v);
	free(cat);
	free(bufs);
}

/* Encode m both ways at version v and compare; min_len as the gap list's.
 * Returns how many gaps the pieces had. */
static size_t check_same(const struct kmsg_fetch_resp *m, int16_t v, size_t min_len)
{
	struct kbuf whole, head;
	kbuf_init(&whole);
	kbuf_init(&head);
	/* A header in front, as request_begin_response leaves it. */
	kbuf_put_i32(&whole, 0);
	kbuf_put_i32(&whole, 1234);
	kbuf_put_i32(&head, 0);
	kbuf_put_i32(&head, 1234);
	kmsg_fetch_resp_encode(&whole, v, m);
	struct kmsg_gaps g = { .min_len = min_len };
	kmsg_fetch_resp_encode_gaps(&head, v, m, &g);
	assert_false(whole.oom);
	assert_false(head.oom);
	assert_int_equal(head.len + g.bytes, whole.len);

	size_t sum = 0;
	for (size_t i = 0; i < g.n; i++) {
		assert_true(g.v[i].len >= min_len && g.v[i].len > 0);
		assert_true(g.v[i].at <= head.len);
		if (i)
			assert_true(g.v[i].at >= g.v[i - 1].at);
		sum += g.v[i].len;
	}
	assert_int_equal(sum, g.bytes);

	assert_pieces_whole(&head, g.v, g.n, &whole, v);
	size_t n = g.n;
	free(g.v);
	kbuf_free(&whole);
	kbuf_free(&head);
	return n;
}

static kbytes fill_records(struct arena *a, size_t len, uint8_t seed)
{
	uint8_t *p = arena_alloc(a, len ? len : 1);
	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
	return (kbytes){ p, (int32_t)len };
}

/* Two topics: records of several sizes, null and empty records, error
 * partitions, aborted transactions (null and empty), tagged fields. */
static void build(struct kmsg_fetch_resp *m, struct arena *a)
{
	kmsg_fetch_resp_init(m);
	m->throttle_time_ms = 5;
	m->error_code = 0;
	m->session_id = 0;
	m->responses_count = 2;
	m->responses = arena_alloc(a, 2 * sizeof *m->responses);
	assert_non_null(m->responses);
	static const size_t sizes[] = { 3000, 0, 1, 70000, 1023, 1024, 5000 };
	const size_t np = sizeof sizes / sizeof sizes[0] + 2;
	for (int t = 0; t < 2; t++) {
		struct kmsg_fetch_resp_fetchable_topic_response *rt = &m->responses[t];
		kmsg_fetch_resp_fetchable_topic_response_init(rt);
		rt->topic = t ? KSTR("other") : KSTR("topic-a");
		for (int i = 0; i < 16; i++)
			rt->topic_id[i] = (uint8_t)(t * 16 + i + 1);
		rt->partitions_count = (int32_t)np;
		rt->partitions = arena_alloc(a, np * sizeof *rt->partitions);
		assert_non_null(rt->partitions);
		for (size_t j = 0; j < np; j++) {
			struct kmsg_fetch_resp_partition_data *rp = &rt->partitions[j];
			kmsg_fetch_resp_partition_data_init(rp);
			rp->partition_index = (int32_t)j;
			rp->high_watermark = 1000 + (int64_t)j;
			rp->last_stable_offset = rp->high_watermark;
			rp->log_start_offset = 0;
			rp->aborted_transactions_count = 0;
			rp->preferred_read_replica = -1;
			if (j < np - 2) {
				rp->error_code = KERR_NONE;
				rp->records = fill_records(a, sizes[j], (uint8_t)(j + t));
			} else if (j == np - 2) {
				/* An error partition: null records. */
				rp->error_code = KERR_OFFSET_OUT_OF_RANGE;
				rp->high_watermark = -1;
				rp->aborted_transactions_count = -1;
				rp->records = KBYTES_NULL;
			} else {
				/* An error after a failed read: empty, not null. */
				rp->error_code = KERR_KAFKA_STORAGE_ERROR;
				rp->records = (kbytes){ NULL, 0 };
				rp->has_current_leader = true;
				rp->current_leader.leader_id = 1;
				rp->current_leader.leader_epoch = 0;
			}
		}
	}
}

static void test_hand_built(void **state)
{
	(void)state;
	for (int16_t v = KMSG_FETCH_MIN_VERSION; v <= KMSG_FETCH_MAX_VERSION; v++) {
		struct arena a;
		struct kmsg_fetch_resp m;
		arena_init(&a, TEST_ARENA_BYTES);
		build(&m, &a);
		/* Every non-empty records a gap; or only those from 1 KiB. */
		assert_int_equal(check_same(&m, v, 0), 12);
		assert_int_equal(check_same(&m, v, 1024), 8);
		/* No records at all. */
		for (int t = 0; t < m.responses_count; t++)
			for (int32_t j = 0; j < m.responses[t].partitions_count; j++)
				m.responses[t].partitions[j].records = KBYTES_NULL;
		assert_int_equal(check_same(&m, v, 0), 0);
		/* A top-level error and no topics. */
		m.error_code = KERR_FETCH_SESSION_ID_NOT_FOUND;
		m.responses_count = 0;
		assert_int_equal(check_same(&m, v, 0), 0);
		arena_free(&a);
	}
}

static void test_random(void **state)
{
	(void)state;
	for (int16_t v = KMSG_FETCH_MIN_VERSION; v <= KMSG_FETCH_MAX_VERSION; v++) {
		for (uint32_t s = 1; s <= 32; s++) {
			struct arena a;
			struct kmsg_fetch_resp m;
			uint32_t seed = s * 2654435761u + (uint32_t)v;
			arena_init(&a, TEST_ARENA_BYTES);
			kmsg_fetch_resp_fill_test(&m, v, &a, &seed);
			check_same(&m, v, 0);
			check_same(&m, v, 4);
			arena_free(&a);
		}
	}
}

/* The pieces of a buffer with gaps at its start, its end and twice at
 * one place. */
static void test_pieces_edges(void **state)
{
	(void)state;
	const uint8_t head[] = "abcdef";
	const uint8_t x[] = "XY", y[] = "Z";
	struct kmsg_gap g[] = {
		{ 0, x, 2 }, { 3, y, 1 }, { 3, x, 2 }, { 6, y, 1 },
	};
	uv_buf_t bufs[9];
	size_t n = response_pieces(head, 6, g, 4, bufs);
	char out[32];
	size_t at = 0;
	for (size_t i = 0; i < n; i++) {
		memcpy(out + at, bufs[i].base, bufs[i].len);
		at += bufs[i].len;
	}
	out[at] = 0;
	assert_string_equal(out, "XYabcZXYdefZ");
	assert_int_equal(n, 6);
}

/* A partition's records as the fetch writes them: several pieces at its
 * gap's offset (from different cached objects and the fetch's buffer).
 * Each gap of m's encoding is split into up to `parts` pieces, each a
 * copy in a buffer of its own; the pieces must give the contiguous
 * encoder's bytes. */
static void check_split(const struct kmsg_fetch_resp *m, int16_t v, size_t min_len, size_t parts,
			uint32_t *seed)
{
	struct kbuf whole, head;
	kbuf_init(&whole);
	kbuf_init(&head);
	kbuf_put_i32(&whole, 0);
	kbuf_put_i32(&head, 0);
	kmsg_fetch_resp_encode(&whole, v, m);
	struct kmsg_gaps g = { .min_len = min_len };
	kmsg_fetch_resp_encode_gaps(&head, v, m, &g);
	assert_int_equal(head.len + g.bytes, whole.len);

	struct kmsg_gap *split = malloc((g.n * parts + 1) * sizeof *split);
	uint8_t **copies = malloc((g.n * parts + 1) * sizeof *copies);
	assert_non_null(split);
	assert_non_null(copies);
	size_t ns = 0;
	for (size_t i = 0; i < g.n; i++) {
		size_t left = g.v[i].len, pos = 0;
		for (size_t q = 0; q < parts && left; q++) {
			*seed = *seed * 1103515245u + 12345u;
			size_t len = q + 1 == parts ? left : 1 + (*seed >> 8) % left;
			uint8_t *c = malloc(len);
			assert_non_null(c);
			memcpy(c, g.v[i].ptr + pos, len);
			copies[ns] = c;
			split[ns++] = (struct kmsg_gap){ g.v[i].at, c, len };
			pos += len;
			left -= len;
		}
		assert_int_equal(pos, g.v[i].len);
	}
	assert_pieces_whole(&head, split, ns, &whole, v);
	for (size_t i = 0; i < ns; i++)
		free(copies[i]);
	free(copies);
	free(split);
	free(g.v);
	kbuf_free(&whole);
	kbuf_free(&head);
}

static void test_split(void **state)
{
	(void)state;
	uint32_t seed = 7;
	for (int16_t v = KMSG_FETCH_MIN_VERSION; v <= KMSG_FETCH_MAX_VERSION; v++) {
		struct arena a;
		struct kmsg_fetch_resp m;
		arena_init(&a, TEST_ARENA_BYTES);
		build(&m, &a);
		for (size_t parts = 1; parts <= 5; parts++) {
			check_split(&m, v, 1024, parts, &seed);
			check_split(&m, v, 1, parts, &seed);
		}
		arena_free(&a);
		for (uint32_t s = 1; s <= 16; s++) {
			uint32_t fs = s * 2246822519u + (uint32_t)v;
			arena_init(&a, TEST_ARENA_BYTES);
			kmsg_fetch_resp_fill_test(&m, v, &a, &fs);
			check_split(&m, v, 1, 1 + s % 4, &seed);
			arena_free(&a);
		}
	}
}

/* ---- the reader ---- */

/* One object of batches of these lengths (pseudo-random bytes; the reader
 * patches only baseOffset and the leader epoch), two records each, all
 * of partition 0, committed at offsets 0, 2, 4, ... */
static const uint32_t obj_lengths[] = { 100, 3000, 200, 300, 5000, 61, 2048 };
#define OBJ_BATCHES (sizeof obj_lengths / sizeof obj_lengths[0])
/* A cache with room for one such object only. */
#define OBJ_CACHE_ONE 12000
#define OBJ_KEY "objects/0000000000001-test-1.obj"

/* The reader's metadata: the fixture's store behind a wrapper that
 * counts the batch lookups (the only calls the reader makes), so a test
 * can tell a fetch the batch index answered from one that asked the
 * store. */
struct counting_meta {
	struct meta base; /* first: the methods pointer */
	struct meta_methods methods;
	struct meta *inner;
	int lookups;
	bool fail; /* lookups fail with SL_EMETA */
};

static int counting_batches_from(struct meta *m, int64_t tid, int32_t p, int64_t offset,
				 size_t max_rows, struct meta_batch_row *rows, size_t *n)
{
	struct counting_meta *c = (struct counting_meta *)m;
	c->lookups++;
	return meta_batches_from(c->inner, tid, p, offset, max_rows, rows, n);
}

static int counting_batches_from_many(struct meta *m, struct meta_batch_query *q, size_t nq,
				      struct meta_batch_row *rows, size_t rows_cap)
{
	struct counting_meta *c = (struct counting_meta *)m;
	c->lookups++;
	if (c->fail)
		return SL_EMETA;
	return meta_batches_from_many(c->inner, q, nq, rows, rows_cap);
}

static int counting_aborted_txns(struct meta *m, int64_t tid, int32_t p, int64_t from, int64_t to,
				 struct meta_aborted_txn *out, size_t cap, size_t *n)
{
	struct counting_meta *c = (struct counting_meta *)m;
	return meta_aborted_txns(c->inner, tid, p, from, to, out, cap, n);
}

struct rfix {
	char dir[64];
	uv_loop_t loop;
	struct objstore *store;
	struct meta *meta;
	struct counting_meta counted; /* meta, for the reader */
	struct batch_index *index;    /* NULL unless rfix_index */
	struct cache *cache;
	struct reader *reader;
	struct meta_topic topic;
	struct arena arena;
	uint8_t *obj;          /* the object's bytes as stored */
	size_t obj_len;
	uint64_t at[OBJ_BATCHES]; /* each batch's byte offset */
};

/* read_committed's store side for the next rfix_new: the aborted index,
 * the lookup, its row count (rfix_new_with puts them in the reader's
 * config). The lookup answers from ab_store (as the store would: by
 * first offset, cut at cap) and counts its calls; ab_fail fails it. */
static struct aborted_index *rc_index;
static reader_aborted_fn rc_from;
static size_t rc_max;
static struct aborted_txn ab_store[8];
static size_t ab_store_n;
static int ab_calls;
static bool ab_fail;

static int ab_from(struct meta *m, int64_t tid, int32_t p, int64_t offset, int64_t first_below,
		   struct aborted_txn *out, size_t cap, size_t *n)
{
	(void)m, (void)tid, (void)p;
	ab_calls++;
	*n = 0;
	if (ab_fail)
		return SL_EMETA;
	for (size_t i = 0; i < ab_store_n && *n < cap; i++) /* ab_store is by first offset */
		if (ab_store[i].last_offset >= offset && ab_store[i].first_offset < first_below)
			out[(*n)++] = ab_store[i];
	return 0;
}

static struct rfix *rfix_new_with(size_t cache_bytes, size_t pinned_max, bool cached,
				  struct batch_index *index)
{
	struct rfix *x = calloc(1, sizeof *x);
	assert_non_null(x);
	strcpy(x->dir, "/tmp/sluice-reader-XXXXXX");
	assert_non_null(mkdtemp(x->dir));
	char url[128];
	snprintf(url, sizeof url, "sqlite:%s/meta.db", x->dir);
	assert_int_equal(meta_open(url, &x->meta), 0);
	assert_int_equal(objstore_open("mem:", &x->store), 0);
	assert_int_equal(meta_topic_create(x->meta, "t", 2, NULL, 0, NULL, &x->topic), 0);
	uv_loop_init(&x->loop);
	x->cache = cache_new(cache_bytes);
	assert_non_null(x->cache);
	x->counted.inner = x->meta;
	x->counted.methods.name = "counting";
	x->counted.methods.batches_from = counting_batches_from;
	x->counted.methods.batches_from_many = counting_batches_from_many;
	x->counted.methods.aborted_txns = counting_aborted_txns;
	x->counted.base.m = &x->counted.methods;
	struct reader_config cfg = { .pinned_evicted_bytes_max = pinned_max, .index = index,
				     .aborted = rc_index, .aborted_from = rc_from,
				     .aborted_lookup_max = rc_max };
	assert_int_equal(reader_new(&x->loop, x->store, &x->counted.base, x->cache, &cfg, &x->reader), 0);
	x->index = index;
	arena_init(&x->arena, TEST_ARENA_BYTES);

	struct meta_commit_batch b[OBJ_BATCHES];
	for (size_t i = 0; i < OBJ_BATCHES; i++)
		x->obj_len += obj_lengths[i];
	x->obj = malloc(x->obj_len);
	assert_non_null(x->obj);
	uint64_t at = 0;
	for (size_t i = 0; i < OBJ_BATCHES; i++) {
		for (uint32_t j = 0; j < obj_lengths[i]; j++)
			x->obj[at + j] = (uint8_t)(i * 31 + j * 7 + 1);
		x->at[i] = at;
		b[i] = (struct meta_commit_batch){ .tid = x->topic.tid, .partition = 0,
			.byte_offset = at, .length = obj_lengths[i], .record_count = 2,
			.last_offset_delta = 1, .max_timestamp = 1000, .producer_id = -1,
			.producer_epoch = -1, .base_sequence = -1, .last_sequence = -1 };
		at += obj_lengths[i];
	}
	assert_int_equal(objstore_put(x->store, OBJ_KEY, x->obj, x->obj_len), 0);
	assert_int_equal(meta_commit_object(x->meta, OBJ_KEY, x->obj_len, b, OBJ_BATCHES), 0);
	if (cached) {
		uint8_t *copy = malloc(x->obj_len);
		assert_non_null(copy);
		memcpy(copy, x->obj, x->obj_len);
		cache_put(x->cache, OBJ_KEY, copy, x->obj_len, 0);
	}
	if (index) {
		/* As the agent's commit hook does: the rows of the commit. */
		struct batch_index_row rows[OBJ_BATCHES];
		for (size_t i = 0; i < OBJ_BATCHES; i++)
			rows[i] = (struct batch_index_row){ b[i].base_offset, b[i].base_offset + 1,
				b[i].byte_offset, b[i].length, b[i].record_count, b[i].max_timestamp };
		assert_int_equal(batch_index_append(index, x->topic.tid, 0, OBJ_KEY, x->obj_len, rows,
						    OBJ_BATCHES), 0);
	}
	return x;
}

static struct rfix *rfix_new(size_t cache_bytes, size_t pinned_max, bool cached)
{
	return rfix_new_with(cache_bytes, pinned_max, cached, NULL);
}

static void rfix_free(struct rfix *x)
{
	uv_run(&x->loop, UV_RUN_DEFAULT);
	arena_free(&x->arena);
	reader_free(x->reader);
	batch_index_free(x->index);
	cache_free(x->cache);
	uv_loop_close(&x->loop);
	meta_topic_free(&x->topic);
	meta_close(x->meta);
	objstore_close(x->store);
	free(x->obj);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", x->dir);
	assert_int_equal(system(cmd), 0);
	free(x);
}

static void slot_set(struct reader_slot *s, const struct rfix *x, int64_t offset, int32_t max_bytes)
{
	s->tid = x->topic.tid;
	s->partition = 0;
	s->offset = offset;
	s->high_watermark = 2 * (int64_t)OBJ_BATCHES;
	s->stable_offset = -1;
	s->max_bytes = max_bytes;
	s->wanted = true;
}

/* Slot k's pieces put together must be batches [first, first + count)
 * of the object, each patched with its base offset and epoch 0. */
static void assert_slot_batches(const struct rfix *x, struct reader_fetch *rf,
				const struct reader_slot *s, size_t k, size_t first, size_t count)
{
	size_t expect = 0;
	for (size_t i = first; i < first + count; i++)
		expect += obj_lengths[i];
	assert_int_equal(s->bytes, expect);
	assert_int_equal(s->err, 0);
	uint8_t *cat = malloc(expect ? expect : 1);
	assert_non_null(cat);
	size_t got = 0;
	for (size_t i = 0; i < reader_piece_count(rf, k); i++) {
		size_t len;
		const uint8_t *p = reader_piece(rf, k, i, &len);
		assert_true(got + len <= expect);
		memcpy(cat + got, p, len);
		got += len;
	}
	assert_int_equal(got, expect);
	if (expect && expect < READER_PIECE_BYTES_MIN)
		assert_memory_equal(reader_records(rf, k), cat, expect);
	size_t at = 0;
	for (size_t i = first; i < first + count; i++) {
		uint8_t want[8192];
		memcpy(want, x->obj + x->at[i], obj_lengths[i]);
		batch_patch(want, 2 * (int64_t)i, 0);
		assert_memory_equal(cat + at, want, obj_lengths[i]);
		at += obj_lengths[i];
	}
	free(cat);
}

/* Whether any of slot k's pieces points into o's bytes. */
static bool slot_refers_to(struct reader_fetch *rf, size_t k, const struct cache_obj *o)
{
	for (size_t i = 0; i < reader_piece_count(rf, k); i++) {
		size_t len;
		const uint8_t *p = reader_piece(rf, k, i, &len);
		if (p >= o->data && p < o->data + o->len)
			return true;
	}
	return false;
}

static void on_read(void *arg)
{
	(*(int *)arg)++;
}

/* A fetch of n slots in x's arena. */
static struct reader_fetch *rfetch_new(struct rfix *x, size_t n, struct reader_slot **slots)
{
	struct reader_fetch *rf;
	*slots = arena_alloc(&x->arena, n * sizeof **slots);
	assert_non_null(*slots);
	assert_int_equal(reader_fetch_new(x->reader, &x->arena, *slots, n, &rf), 0);
	return rf;
}

/* Read what the last gather lacked and wait until it is back. */
static void read_missing_wait(struct rfix *x, struct reader_fetch *rf)
{
	int done = 0;
	reader_read_missing(rf, on_read, &done);
	while (!done)
		uv_run(&x->loop, UV_RUN_ONCE);
	assert_int_equal(done, 1);
}

/* Gather; when rows are needed, look them up on the pool, wait, and
 * gather again (as api/fetch.c does). */
static size_t gather(struct rfix *x, struct reader_fetch *rf, size_t max_bytes, bool read_ahead)
{
	for (;;) {
		size_t n = reader_gather(rf, max_bytes, read_ahead);
		if (!reader_rows_needed(rf))
			return n;
		int done = 0;
		assert_true(reader_lookup(rf, on_read, &done));
		assert_int_equal(done, 0); /* never from within the call */
		while (!done)
			uv_run(&x->loop, UV_RUN_ONCE);
		assert_int_equal(done, 1);
	}
}

/* A cached object: every batch comes from memory, long runs referenced. */
static void test_reader_cached(void **state)
{
	(void)state;
	struct rfix *x = rfix_new(64 << 20, 64 << 20, true);
	struct reader_slot *s;
	struct reader_fetch *rf = rfetch_new(x, 2, &s);
	slot_set(&s[0], x, 0, 1 << 20);
	s[1].wanted = false; /* e.g. an unknown partition */
	size_t total = gather(x, rf, 1 << 20, false);
	assert_int_equal(reader_status(rf), 0);
	assert_false(reader_missing(rf));
	assert_int_equal(total, x->obj_len);
	assert_slot_batches(x, rf, &s[0], 0, 0, OBJ_BATCHES);
	assert_int_equal(s[1].bytes, 0);
	assert_int_equal(reader_piece_count(rf, 1), 0);
	struct cache_obj *o = cache_get(x->cache, OBJ_KEY);
	assert_non_null(o);
	assert_true(slot_refers_to(rf, 0, o));
	/* A fetch from the middle: offset 5 is inside the third batch. */
	slot_set(&s[0], x, 5, 1 << 20);
	total = gather(x, rf, 1 << 20, false);
	assert_slot_batches(x, rf, &s[0], 0, 2, OBJ_BATCHES - 2);
	/* The hold keeps the pieces valid after the fetch ends. */
	struct reader_hold *h = reader_hold_take(rf);
	assert_non_null(h);
	reader_fetch_end(rf);
	cache_obj_unref(o);
	reader_hold_release(h);
	rfix_free(x);
}

/* No cache: the batches are read from the store, coalesced, patched. */
static void test_reader_store_reads(void **state)
{
	(void)state;
	struct rfix *x = rfix_new(0, 64 << 20, false);
	struct reader_slot *s;
	struct reader_fetch *rf = rfetch_new(x, 1, &s);
	slot_set(&s[0], x, 2, 1 << 20);
	size_t total = gather(x, rf, 1 << 20, true);
	assert_int_equal(total, x->obj_len - obj_lengths[0]);
	assert_true(reader_missing(rf));
	assert_false(reader_wait_loads(rf, on_read, NULL)); /* nothing loading */
	read_missing_wait(x, rf);
	assert_slot_batches(x, rf, &s[0], 0, 1, OBJ_BATCHES - 1);

	/* A failed read: the slot has no records and says why. */
	assert_int_equal(objstore_mem_fault(x->store, OBJSTORE_FAULT_FAIL, 1, 0), 0);
	gather(x, rf, 1 << 20, false);
	read_missing_wait(x, rf);
	assert_int_equal(s[0].bytes, 0);
	assert_true(s[0].err < 0);

	/* Dropped (shutdown): no records, no error. */
	gather(x, rf, 1 << 20, false);
	reader_drop_missing(rf);
	assert_false(reader_missing(rf));
	assert_int_equal(s[0].bytes, 0);
	reader_fetch_end(rf);
	rfix_free(x);
}

/* Kafka's size rules. */
static void test_reader_size_rules(void **state)
{
	(void)state;
	struct rfix *x = rfix_new(64 << 20, 64 << 20, true);
	struct reader_slot *s;
	struct reader_fetch *rf = rfetch_new(x, 3, &s);
	/* The response's first batch goes whole, even past both budgets;
	 * then nothing more fits anywhere. */
	slot_set(&s[0], x, 2, 10);
	slot_set(&s[1], x, 0, 1 << 20);
	s[2].wanted = false;
	assert_int_equal(gather(x, rf, 10, false), obj_lengths[1]);
	assert_slot_batches(x, rf, &s[0], 0, 1, 1);
	assert_int_equal(s[1].bytes, 0);
	/* A partition's budget: batches while they fit. */
	slot_set(&s[0], x, 0, 100 + 3000 + 200 + 1);
	slot_set(&s[1], x, 0, 1 << 20);
	assert_int_equal(gather(x, rf, 1 << 20, false), 3300 + x->obj_len);
	assert_slot_batches(x, rf, &s[0], 0, 0, 3);
	assert_slot_batches(x, rf, &s[1], 1, 0, OBJ_BATCHES);
	/* The response's budget: the second slot gets what is left. */
	assert_int_equal(gather(x, rf, 3300 + 100 + 3000, false), 3300 + 3100);
	assert_slot_batches(x, rf, &s[1], 1, 0, 2);
	/* Nothing at or past the high watermark. */
	s[0].high_watermark = 4;
	s[1].wanted = false;
	assert_int_equal(gather(x, rf, 1 << 20, false), 3100);
	assert_slot_batches(x, rf, &s[0], 0, 0, 2);
	assert_int_equal(s[0].records_end, 4);
	/* read_committed: nothing at or past the last stable offset either
	 * (an open transaction's first batch at 6), and where the records
	 * end is said for the aborted list. */
	slot_set(&s[0], x, 2, 1 << 20);
	s[0].stable_offset = 6;
	assert_int_equal(gather(x, rf, 1 << 20, false), 3000 + 200);
	assert_slot_batches(x, rf, &s[0], 0, 1, 2);
	assert_int_equal(s[0].records_end, 6);
	/* A stable offset at the fetch offset: nothing, no error. */
	s[0].stable_offset = 2;
	assert_int_equal(gather(x, rf, 1 << 20, false), 0);
	assert_int_equal(s[0].err, 0);
	assert_int_equal(s[0].records_end, 2);
	reader_fetch_end(rf);
	rfix_free(x);
}

/* Past the pin budget (0 here), runs of a cached object not pinned yet
 * are copied into the fetch's buffer rather than referenced. */
static void test_reader_pin_budget(void **state)
{
	(void)state;
	/* The cache holds one object: a second evicts the first. */
	struct rfix *x = rfix_new(OBJ_CACHE_ONE, 0, true);
	struct reader_slot *s;
	struct reader_fetch *rf = rfetch_new(x, 1, &s);
	slot_set(&s[0], x, 0, 1 << 20);
	gather(x, rf, 1 << 20, false);
	struct cache_obj *o = cache_get(x->cache, OBJ_KEY);
	assert_non_null(o);
	assert_true(slot_refers_to(rf, 0, o)); /* nothing evicted yet: pinned */
	struct reader_hold *h = reader_hold_take(rf);
	reader_fetch_end(rf);
	/* Evicted while the hold pins it; cached again under another key. */
	uint8_t *copy = malloc(x->obj_len);
	assert_non_null(copy);
	memcpy(copy, x->obj, x->obj_len);
	cache_put(x->cache, "other", copy, x->obj_len, 0);
	copy = malloc(x->obj_len);
	assert_non_null(copy);
	memcpy(copy, x->obj, x->obj_len);
	cache_put(x->cache, OBJ_KEY, copy, x->obj_len, 0);
	struct cache_obj *o2 = cache_get(x->cache, OBJ_KEY);
	assert_non_null(o2);
	assert_true(o2 != o);
	struct reader_slot *s2;
	struct reader_fetch *rf2 = rfetch_new(x, 1, &s2);
	slot_set(&s2[0], x, 0, 1 << 20);
	gather(x, rf2, 1 << 20, false);
	assert_slot_batches(x, rf2, &s2[0], 0, 0, OBJ_BATCHES);
	assert_false(slot_refers_to(rf2, 0, o2)); /* copied */
	reader_fetch_end(rf2);
	cache_obj_unref(o2);
	cache_obj_unref(o);
	reader_hold_release(h);
	rfix_free(x);
}

/* The batch index holds the partition's rows: fetches from any offset it
 * holds look nothing up in the metadata store, with the same records as
 * the store's rows give; older offsets, or a partition it does not hold,
 * are looked up. */
static void test_reader_index_hit(void **state)
{
	(void)state;
	struct batch_index *ix = batch_index_new(1 << 20, 1024);
	assert_non_null(ix);
	struct rfix *x = rfix_new_with(64 << 20, 64 << 20, true, ix);
	struct reader_slot *s;
	struct reader_fetch *rf = rfetch_new(x, 1, &s);
	slot_set(&s[0], x, 0, 1 << 20);
	assert_int_equal(gather(x, rf, 1 << 20, true), x->obj_len);
	assert_slot_batches(x, rf, &s[0], 0, 0, OBJ_BATCHES);
	slot_set(&s[0], x, 5, 1000); /* a budget: the third and fourth batches */
	gather(x, rf, 1 << 20, true);
	assert_slot_batches(x, rf, &s[0], 0, 2, 2);
	assert_int_equal(x->counted.lookups, 0);
	reader_fetch_end(rf);

	/* Not indexed any more (dropped, evicted): a gather says which rows
	 * it needs, gathers nothing, and the rows come from one pool job. */
	batch_index_drop(ix, x->topic.tid, 0);
	rf = rfetch_new(x, 1, &s);
	slot_set(&s[0], x, 4, 1 << 20);
	assert_int_equal(reader_gather(rf, 1 << 20, false), 0);
	assert_true(reader_rows_needed(rf));
	assert_int_equal(x->counted.lookups, 0); /* not on the loop */
	assert_int_equal(gather(x, rf, 1 << 20, false), x->obj_len - 100 - 3000);
	assert_slot_batches(x, rf, &s[0], 0, 2, OBJ_BATCHES - 2);
	assert_int_equal(x->counted.lookups, 1);
	reader_fetch_end(rf);
	/* Those rows reach the high watermark: they are the index's run now,
	 * and the next fetch from there looks nothing up. */
	int64_t first, end;
	assert_true(batch_index_range(ix, x->topic.tid, 0, &first, &end));
	assert_int_equal(first, 4);
	assert_int_equal(end, 2 * (int64_t)OBJ_BATCHES);
	rf = rfetch_new(x, 1, &s);
	slot_set(&s[0], x, 6, 1 << 20);
	gather(x, rf, 1 << 20, false);
	assert_slot_batches(x, rf, &s[0], 0, 3, OBJ_BATCHES - 3);
	assert_int_equal(x->counted.lookups, 1);
	reader_fetch_end(rf);
	/* Older than the run: looked up, and the rows extend it backwards. */
	rf = rfetch_new(x, 1, &s);
	slot_set(&s[0], x, 0, 1 << 20);
	gather(x, rf, 1 << 20, false);
	assert_slot_batches(x, rf, &s[0], 0, 0, OBJ_BATCHES);
	assert_int_equal(x->counted.lookups, 2);
	assert_true(batch_index_range(ix, x->topic.tid, 0, &first, &end));
	assert_int_equal(first, 0);
	reader_fetch_end(rf);

	/* A run that ends short of the high watermark (a commit it did not
	 * see): its rows, then the rest from the store. */
	batch_index_drop(ix, x->topic.tid, 0);
	struct batch_index_row rows[3];
	for (size_t i = 0; i < 3; i++)
		rows[i] = (struct batch_index_row){ 2 * (int64_t)i, 2 * (int64_t)i + 1, x->at[i],
						    obj_lengths[i], 2, 1000 };
	assert_int_equal(batch_index_append(ix, x->topic.tid, 0, OBJ_KEY, x->obj_len, rows, 3), 0);
	rf = rfetch_new(x, 1, &s);
	slot_set(&s[0], x, 0, 1 << 20);
	reader_gather(rf, 1 << 20, false);
	assert_true(reader_rows_needed(rf));
	gather(x, rf, 1 << 20, false);
	assert_slot_batches(x, rf, &s[0], 0, 0, OBJ_BATCHES);
	assert_int_equal(x->counted.lookups, 3);
	reader_fetch_end(rf);

	/* A failed lookup: the slot says so, nothing is gathered. */
	batch_index_drop(ix, x->topic.tid, 0);
	x->counted.fail = true;
	rf = rfetch_new(x, 1, &s);
	slot_set(&s[0], x, 0, 1 << 20);
	assert_int_equal(gather(x, rf, 1 << 20, false), 0);
	assert_int_equal(s[0].err, SL_EMETA);
	reader_fetch_end(rf);
	rfix_free(x);
}


static void assert_aborted(struct reader_fetch *rf, size_t k, const struct aborted_txn *want,
			   size_t n)
{
	size_t got;
	const struct aborted_txn *v = reader_aborted(rf, k, &got);
	assert_int_equal(got, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(v[i].producer_id, want[i].producer_id);
		assert_int_equal(v[i].first_offset, want[i].first_offset);
		assert_int_equal(v[i].last_offset, want[i].last_offset);
	}
}

/* A fixture whose reader has a fresh aborted index and the lookup from
 * (max rows per lookup, 0: the reader's default). */
static struct rfix *rc_fix(reader_aborted_fn from, size_t max)
{
	rc_index = aborted_index_new(1 << 20, 64);
	rc_from = from;
	rc_max = max;
	ab_calls = 0;
	return rfix_new(64 << 20, 64 << 20, true);
}

/* A one-slot read_committed fetch from offset, everything stable,
 * gathered (looked up as needed). */
static struct reader_fetch *rc_fetch(struct rfix *x, int64_t offset, struct reader_slot **s)
{
	struct reader_fetch *rf = rfetch_new(x, 1, s);
	slot_set(&(*s)[0], x, offset, 1 << 20);
	(*s)[0].stable_offset = (*s)[0].high_watermark;
	gather(x, rf, 1 << 20, false);
	return rf;
}

static void rc_fix_free(struct rfix *x)
{
	rfix_free(x);
	aborted_index_free(rc_index);
	rc_index = NULL;
}

/* read_committed slots: the aborted transactions their records overlap.
 * The object's batch i holds offsets 2i and 2i+1; the store knows three
 * aborted transactions (A: 0-3, B: 4-11, C: 10-12, as first offset and
 * marker). */
static void test_reader_aborted(void **state)
{
	(void)state;
	struct aborted_txn A = { 1, 0, 3 }, B = { 2, 4, 11 }, C = { 3, 10, 12 };
	ab_store[0] = A, ab_store[1] = B, ab_store[2] = C;
	ab_store_n = 3;
	ab_fail = false;
	struct rfix *x = rc_fix(ab_from, 0);
	struct reader_slot *s;

	/* From 2, all visible (LSO = HW): rows and aborted transactions are
	 * looked up in one pool job; all three overlap. */
	struct reader_fetch *rf = rc_fetch(x, 2, &s);
	assert_slot_batches(x, rf, &s[0], 0, 1, OBJ_BATCHES - 1);
	assert_int_equal(x->counted.lookups, 1);
	assert_int_equal(ab_calls, 1);
	struct aborted_txn abc[] = { A, B, C };
	assert_aborted(rf, 0, abc, 3);
	/* The complete answer seeded the index: [2, HW) known. */
	int64_t from, to;
	assert_true(aborted_index_range(rc_index, x->topic.tid, 0, &from, &to));
	assert_int_equal(from, 2);
	assert_int_equal(to, 2 * (int64_t)OBJ_BATCHES);
	reader_fetch_end(rf);

	/* Another fetch from 4, one batch: from the index, no lookup; A's
	 * marker is behind, C starts after the records. */
	rf = rfetch_new(x, 1, &s);
	slot_set(&s[0], x, 4, 1);
	s[0].stable_offset = s[0].high_watermark;
	gather(x, rf, 1 << 20, false);
	assert_slot_batches(x, rf, &s[0], 0, 2, 1);
	assert_int_equal(ab_calls, 1);
	struct aborted_txn b[] = { B };
	assert_aborted(rf, 0, b, 1);
	/* An open transaction at 8: records end there; B only. */
	slot_set(&s[0], x, 4, 1 << 20);
	s[0].stable_offset = 8;
	gather(x, rf, 1 << 20, false);
	assert_slot_batches(x, rf, &s[0], 0, 2, 2);
	assert_aborted(rf, 0, b, 1);
	/* read_uncommitted lists none. */
	slot_set(&s[0], x, 4, 1 << 20);
	gather(x, rf, 1 << 20, false);
	assert_aborted(rf, 0, NULL, 0);
	reader_fetch_end(rf);
	rc_fix_free(x);

	/* A lookup cut at its row count (2: A and B, by first offset) is
	 * complete only below B's first offset: records stop there, and the
	 * index is not seeded. */
	x = rc_fix(ab_from, 2);
	rf = rc_fetch(x, 2, &s);
	assert_int_equal(ab_calls, 1);
	assert_slot_batches(x, rf, &s[0], 0, 1, 1);
	struct aborted_txn a[] = { A };
	assert_aborted(rf, 0, a, 1);
	assert_false(aborted_index_range(rc_index, x->topic.tid, 0, &from, &to));
	reader_fetch_end(rf);

	/* A failed lookup: no records, the error said. */
	ab_fail = true;
	rf = rc_fetch(x, 2, &s);
	assert_int_equal(s[0].bytes, 0);
	assert_int_equal(s[0].err, SL_EMETA);
	reader_fetch_end(rf);
	rc_fix_free(x);
	ab_fail = false;

	/* No store lookup (the store records none yet): records, no list. */
	x = rc_fix(NULL, 0);
	rf = rc_fetch(x, 2, &s);
	assert_slot_batches(x, rf, &s[0], 0, 1, OBJ_BATCHES - 1);
	assert_aborted(rf, 0, NULL, 0);
	assert_int_equal(ab_calls, 0);
	reader_fetch_end(rf);
	rc_fix_free(x);
}

/* The wiring to the metadata store: a transaction of producer 200
 * aborted in partition 1 (data at 0-1, ABORT marker at 2, committed
 * through meta_commit_object as the write path does) is what a
 * read_committed fetch lists, looked up through agent_aborted_from
 * (meta_aborted_txns) and then held by the index; the commit reports the
 * LSO the agent takes. */
static void test_reader_aborted_store(void **state)
{
	(void)state;
	struct rfix *x = rc_fix(agent_aborted_from, 0);
	int64_t tid = x->topic.tid;
	struct txn_tp tp = { tid, 1 };
	struct txn_record rec = { .producer_id = 200, .last_producer_id = -1, .producer_epoch = 0,
				  .last_producer_epoch = -1, .timeout_ms = 60000,
				  .state = TXN_ONGOING, .txn_seq = 1, .start_ms = 1000,
				  .update_ms = 1000, .partitions = &tp, .partition_count = 1 };
	int64_t version = 0;
	assert_int_equal(meta_txn_persist(x->meta, "tx", &rec, 0, &version), 0);
	struct meta_commit_batch b = { .tid = tid, .partition = 1, .byte_offset = x->at[0],
		.length = obj_lengths[0], .record_count = 2, .last_offset_delta = 1,
		.max_timestamp = 1000, .producer_id = 200, .producer_epoch = 0,
		.base_sequence = 0, .last_sequence = 1,
		.attributes = META_BATCH_ATTR_TRANSACTIONAL, .kind = META_BATCH_TXN_DATA,
		.transactional_id = "tx" };
	assert_int_equal(meta_commit_object(x->meta, "obj-txn-data", x->obj_len, &b, 1), 0);
	assert_int_equal(b.base_offset, 0);
	assert_int_equal(b.last_stable_offset, 0); /* open at 0 */
	rec.state = TXN_PREPARE_ABORT;
	assert_int_equal(meta_txn_persist(x->meta, "tx", &rec, 0, &version), 0);
	struct meta_commit_batch mk = { .tid = tid, .partition = 1, .byte_offset = x->at[1],
		.length = obj_lengths[1], .record_count = 1, .max_timestamp = 1000,
		.producer_id = 200, .producer_epoch = 0, .base_sequence = -1, .last_sequence = -1,
		.attributes = META_BATCH_ATTR_TRANSACTIONAL | META_BATCH_ATTR_CONTROL,
		.kind = META_BATCH_MARKER, .transactional_id = "tx", .txn_seq = 1,
		.marker_commit = false };
	assert_int_equal(meta_commit_object(x->meta, "obj-marker", x->obj_len, &mk, 1), 0);
	assert_int_equal(mk.base_offset, 2);
	assert_int_equal(mk.last_stable_offset, 3);
	assert_int_equal(mk.aborted[0].producer_id, 200);
	/* The agent's partition takes that LSO. */
	struct partition_state ps = { .high_watermark = 3 };
	assert_true(partition_raise_stable(&ps, mk.last_stable_offset));
	assert_int_equal(ps.last_stable_offset, 3);

	/* The objects hold the bytes the rows name (the reader reads them). */
	assert_int_equal(objstore_put(x->store, "obj-txn-data", x->obj, x->obj_len), 0);
	assert_int_equal(objstore_put(x->store, "obj-marker", x->obj, x->obj_len), 0);
	struct reader_slot *s;
	struct reader_fetch *rf = rfetch_new(x, 1, &s);
	slot_set(&s[0], x, 0, 1 << 20);
	s[0].partition = 1;
	s[0].high_watermark = 3;
	s[0].stable_offset = 3;
	gather(x, rf, 1 << 20, false);
	if (reader_missing(rf))
		read_missing_wait(x, rf);
	assert_int_equal(s[0].err, 0);
	assert_int_equal(s[0].bytes, obj_lengths[0] + obj_lengths[1]);
	struct aborted_txn want = { 200, 0, 2 };
	assert_aborted(rf, 0, &want, 1);
	reader_fetch_end(rf);
	int64_t from, to;
	assert_true(aborted_index_range(rc_index, tid, 1, &from, &to));
	assert_int_equal(from, 0);
	assert_int_equal(to, 3);
	rc_fix_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hand_built),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_pieces_edges),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_reader_cached),
		cmocka_unit_test(test_reader_store_reads),
		cmocka_unit_test(test_reader_size_rules),
		cmocka_unit_test(test_reader_pin_budget),
		cmocka_unit_test(test_reader_index_hit),
		cmocka_unit_test(test_reader_aborted),
		cmocka_unit_test(test_reader_aborted_store),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
