/* test_clean.c — the cleaning pass's transactions hook
 * (storage/clean.h): which transactional batches lie in one of their
 * producer's aborted transactions; the plan of a partition longer than
 * a pass may read, and of one cleaned up to its tail (a SQLite store);
 * the planning's bounds (a partition that cannot be due is not read, and
 * one the full plan finds due is never left unread, on random
 * partitions); a pass whose rows another process cleaned meanwhile
 * (refused); the input buffer the agent keeps between passes
 * (storage/merge.h).
 * The pass itself (rows, bytes, the swap) is tested end to end by
 * tests/integration/test_compaction.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "compact/compact.h"
#include "meta/meta.h"
#include "storage/batch.h"
#include "storage/clean.h"
#include "storage/merge.h"

static struct batch_info txn_batch(int64_t producer_id)
{
	return (struct batch_info){ .attributes = BATCH_ATTR_TRANSACTIONAL,
				    .producer_id = producer_id };
}

static void test_aborted_ranges(void **state)
{
	(void)state;
	/* By first offset; producer 7's long transaction spans the others. */
	struct meta_aborted_txn v[] = {
		{ 7, 10, 500 },
		{ 8, 20, 30 },
		{ 9, 40, 45 },
		{ 8, 600, 610 },
	};
	int64_t max_last[] = { 500, 500, 500, 610 };
	struct clean_aborted t = { v, max_last, 4 };
	struct batch_info p7 = txn_batch(7), p8 = txn_batch(8), p9 = txn_batch(9);
	assert_int_equal(clean_txn_verdict(&t, 10, &p7), COMPACT_TXN_ABORTED);
	assert_int_equal(clean_txn_verdict(&t, 499, &p7), COMPACT_TXN_ABORTED);
	assert_int_equal(clean_txn_verdict(&t, 500, &p7), COMPACT_TXN_ABORTED); /* its marker */
	assert_int_equal(clean_txn_verdict(&t, 501, &p7), COMPACT_TXN_KEEP);
	assert_int_equal(clean_txn_verdict(&t, 9, &p7), COMPACT_TXN_KEEP);
	/* Inside another producer's range only. */
	assert_int_equal(clean_txn_verdict(&t, 25, &p9), COMPACT_TXN_KEEP);
	assert_int_equal(clean_txn_verdict(&t, 25, &p8), COMPACT_TXN_ABORTED);
	assert_int_equal(clean_txn_verdict(&t, 35, &p8), COMPACT_TXN_KEEP);
	assert_int_equal(clean_txn_verdict(&t, 44, &p9), COMPACT_TXN_ABORTED);
	assert_int_equal(clean_txn_verdict(&t, 605, &p8), COMPACT_TXN_ABORTED);
	assert_int_equal(clean_txn_verdict(&t, 605, &p7), COMPACT_TXN_KEEP);
	assert_int_equal(clean_txn_verdict(&t, 5, &p8), COMPACT_TXN_KEEP);
	/* A marker: listed only as the end of its own aborted transaction
	 * (the cleaner keeps the marker while its row is stored). */
	struct batch_info marker = { .attributes = BATCH_ATTR_TRANSACTIONAL | BATCH_ATTR_CONTROL,
				     .producer_id = 7 };
	assert_int_equal(clean_txn_verdict(&t, 500, &marker), COMPACT_TXN_ABORTED);
	assert_int_equal(clean_txn_verdict(&t, 499, &marker), COMPACT_TXN_KEEP);
	marker.producer_id = 8;
	assert_int_equal(clean_txn_verdict(&t, 30, &marker), COMPACT_TXN_ABORTED);
	assert_int_equal(clean_txn_verdict(&t, 500, &marker), COMPACT_TXN_KEEP);
	/* No aborted transaction: every batch stays. */
	struct clean_aborted none = { NULL, NULL, 0 };
	assert_int_equal(clean_txn_verdict(&none, 25, &p8), COMPACT_TXN_KEEP);
}

/* Topic name's id, made with parts partitions. */
static int64_t create_topic(struct meta *m, const char *name, int32_t parts)
{
	struct meta_topic t;
	assert_int_equal(meta_topic_create(m, name, parts, NULL, 0, NULL, &t), 0);
	int64_t tid = t.tid;
	meta_topic_free(&t);
	return tid;
}

/* Due at a dirty ratio of 0.5, a segment rolled after 1 s, no lag. */
static struct compact_config plain_config(void)
{
	return (struct compact_config){ .segment_ms = 1000, .max_compaction_lag_ms = INT64_MAX,
					.delete_retention_ms = 1000,
					.min_cleanable_dirty_ratio = 0.5,
					.producer_expiration_ms = 1000, .map_bytes_max = 1 << 20 };
}

/* Rows of 100 bytes, each its own object: the plan covers all of the
 * partition's rows, whatever a chunk of the pass reads (it used to plan
 * over the first 128 MiB only: a partition whose cleaned part alone was
 * longer was never cleaned again). */
static void test_plan_whole_partition(void **state)
{
	(void)state;
	char dir[] = "/tmp/sluice-test-clean-XXXXXX", url[128], path[96];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/meta.db", dir);
	snprintf(url, sizeof url, "sqlite:%s", path);
	struct meta *m = NULL;
	assert_int_equal(meta_open(url, &m), 0);
	int64_t tid = create_topic(m, "bound", 1);
	const int64_t now = 1700000000000LL;
	for (int i = 0; i < 4; i++) {
		struct meta_commit_batch b = { .tid = tid, .byte_offset = 16, .length = 100,
					       .record_count = 10, .last_offset_delta = 9,
					       .max_timestamp = now - 60000, .producer_id = -1,
					       .producer_epoch = -1, .base_sequence = -1,
					       .last_sequence = -1 };
		char key[32];
		snprintf(key, sizeof key, "o/%d", i);
		assert_int_equal(meta_commit_object(m, key, 200, &b, 1), 0);
	}
	struct compact_config c = plain_config();
	struct clean_stats st = { 0 };
	/* The last row is the tail. */
	assert_int_equal(clean_plan_partition(m, tid, 0, &c, now, &st), 0);
	assert_true(st.due);
	assert_int_equal(st.dirty_bytes, 300);
	assert_false(st.idle);

	/* Cleaned up to the tail (a swap raising the checkpoint to 30):
	 * idle, whatever the time, until the partition grows. */
	struct meta_merge_row mr[3];
	struct meta_compact_batch cb[3];
	for (int i = 0; i < 3; i++) {
		mr[i] = (struct meta_merge_row){ .base_offset = 10 * i, .last_offset = 10 * i + 9,
						 .byte_offset = 16, .length = 100 };
		snprintf(mr[i].object_key, sizeof mr[i].object_key, "o/%d", i);
		cb[i] = (struct meta_compact_batch){ 10 * i, 10 * i + 9, 16 + 100 * (uint64_t)i, 100,
						     10, now - 60000, 0 };
	}
	struct meta_merge cp = { tid, 0, "o/clean", 400, mr, 3, cb, 3, 30, NULL, 0 };
	assert_int_equal(meta_compact_swap(m, &cp), 0);
	memset(&st, 0, sizeof st);
	assert_int_equal(clean_plan_partition(m, tid, 0, &c, now + 86400000, &st), 0);
	assert_true(st.idle);
	assert_false(st.due);
	assert_int_equal(st.dirty_bytes, 0);
	struct meta_commit_batch more = { .tid = tid, .byte_offset = 16, .length = 100,
					  .record_count = 10, .last_offset_delta = 9,
					  .max_timestamp = now - 60000, .producer_id = -1,
					  .producer_epoch = -1, .base_sequence = -1,
					  .last_sequence = -1 };
	assert_int_equal(meta_commit_object(m, "o/4", 200, &more, 1), 0);
	memset(&st, 0, sizeof st);
	assert_int_equal(clean_plan_partition(m, tid, 0, &c, now, &st), 0);
	assert_false(st.idle);
	/* Not due by its bounds (at most 200 dirty bytes of 500): unread. */
	assert_true(st.bounded);
	assert_int_equal(st.dirty_bytes, 0);
	c.min_cleanable_dirty_ratio = 0.2;
	memset(&st, 0, sizeof st);
	assert_int_equal(clean_plan_partition(m, tid, 0, &c, now, &st), 0);
	assert_false(st.bounded);
	assert_false(st.idle);
	assert_int_equal(st.dirty_bytes, 100);
	meta_close(m);
	unlink(path);
	char side[128];
	snprintf(side, sizeof side, "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof side, "%s-shm", path);
	unlink(side);
	rmdir(dir);
}

/* A SQLite store in a temp dir, and the SQL the tests set a partition's
 * checkpoint and log start with (as a pass's swap and a trim would). */
struct store {
	char dir[64], path[96];
	struct meta *m;
	sqlite3 *db;
};

static void store_open(struct store *x)
{
	strcpy(x->dir, "/tmp/sluice-test-clean-XXXXXX");
	assert_non_null(mkdtemp(x->dir));
	snprintf(x->path, sizeof x->path, "%s/meta.db", x->dir);
	char url[128];
	snprintf(url, sizeof url, "sqlite:%s", x->path);
	assert_int_equal(meta_open(url, &x->m), 0);
	assert_int_equal(sqlite3_open(x->path, &x->db), SQLITE_OK);
	sqlite3_busy_timeout(x->db, 10000);
}

static void store_set(struct store *x, int64_t tid, int32_t p, int64_t clean_offset,
		      int64_t log_start)
{
	char sql[256];
	snprintf(sql, sizeof sql,
		 "UPDATE partitions SET clean_offset = %lld, log_start_offset = %lld"
		 " WHERE tid = %lld AND partition = %d",
		 (long long)clean_offset, (long long)log_start, (long long)tid, p);
	assert_int_equal(sqlite3_exec(x->db, sql, NULL, NULL, NULL), SQLITE_OK);
}

static void store_close(struct store *x)
{
	sqlite3_close(x->db);
	meta_close(x->m);
	const char *sfx[] = { "", "-wal", "-shm" };
	for (int i = 0; i < 3; i++) {
		char f[128];
		snprintf(f, sizeof f, "%s%s", x->path, sfx[i]);
		unlink(f);
	}
	rmdir(x->dir);
}

/* One object of n batches of 10 offsets each to (tid, p). */
static void commit_obj(struct meta *m, int64_t tid, int32_t p, const char *key, int n,
		       const uint32_t *len, const int64_t *ts)
{
	struct meta_commit_batch *b = calloc((size_t)n, sizeof *b);
	assert_non_null(b);
	uint64_t at = 16;
	for (int i = 0; i < n; i++) {
		b[i] = (struct meta_commit_batch){ .tid = tid, .partition = p, .byte_offset = at,
						   .length = len[i], .record_count = 10,
						   .last_offset_delta = 9, .max_timestamp = ts[i],
						   .producer_id = -1, .producer_epoch = -1,
						   .base_sequence = -1, .last_sequence = -1 };
		at += len[i];
	}
	assert_int_equal(meta_commit_object(m, key, at, b, (size_t)n), 0);
	free(b);
}

/* The plan a pass makes (clean_pass_begin reads all of the rows). */
static bool full_plan_due(struct meta *m, int64_t tid, int32_t p, const struct compact_config *c,
			  int64_t now)
{
	struct clean_stats st = { 0 };
	struct clean_pass *pass = NULL;
	static const uint8_t id[16];
	assert_int_equal(clean_pass_begin(m, NULL, tid, p, id, c, now, false, 1 << 20, NULL, &st,
					  &pass),
			 0);
	assert_true(st.due == (pass != NULL));
	clean_pass_free(pass);
	return st.due;
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(uint64_t n)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return n ? rnd_state % n : 0;
}

/* Random partitions (objects of one to 300 batches, so rows joined past
 * MERGE_ROW_BATCHES_MAX; timestamps missing at times; a checkpoint and a
 * log start anywhere, a row straddling either) and random configs and
 * clocks: whenever the plan over all rows finds the partition due, the
 * planning read its rows (its bounds said it may be). */
static void test_plan_bounds_sound(void **state)
{
	(void)state;
	struct store x;
	store_open(&x);
	enum { PARTS = 40, CONFIGS = 80 };
	int64_t tid = create_topic(x.m, "rnd", PARTS);
	const int64_t now = 1700000000000LL;
	size_t due = 0, bounded = 0, checks = 0;
	static uint32_t len[300];
	static int64_t ts[300];
	for (int32_t p = 0; p < PARTS; p++) {
		int objects = 1 + (int)rnd(40);
		bool untimed = rnd(4) == 0; /* some batches without timestamps */
		int64_t hw = 0;
		for (int o = 0; o < objects; o++) {
			int n = rnd(8) == 0 ? 1 + (int)rnd(300) : 1 + (int)rnd(4);
			for (int i = 0; i < n; i++) {
				len[i] = 61 + (uint32_t)rnd(5000);
				ts[i] = untimed && rnd(20) == 0 ? -1 : now - (int64_t)rnd(600000);
			}
			char key[48];
			snprintf(key, sizeof key, "o/%d/%d", p, o);
			commit_obj(x.m, tid, p, key, n, len, ts);
			hw += 10 * n;
		}
		int64_t checkpoint = rnd(4) == 0 ? 0
				     : rnd(2) ? hw - (int64_t)rnd((uint64_t)hw / 4 + 1)
					      : (int64_t)rnd((uint64_t)hw + 1);
		int64_t log_start = rnd(3) == 0 ? (int64_t)rnd((uint64_t)checkpoint + 1) : 0;
		store_set(&x, tid, p, checkpoint, log_start);
		for (int k = 0; k < CONFIGS; k++) {
			static const double ratios[] = { 0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 1 };
			struct compact_config c = {
				.segment_ms = (int64_t)rnd(700000),
				.segment_bytes = rnd(2) ? 0 : 1000 + (int64_t)rnd(200000),
				.min_compaction_lag_ms = rnd(2) ? 0 : (int64_t)rnd(700000),
				.max_compaction_lag_ms = rnd(3) ? INT64_MAX : (int64_t)rnd(900000),
				.delete_retention_ms = 1000,
				.min_cleanable_dirty_ratio = rnd(2) ? ratios[rnd(8)]
								    : (double)rnd(10001) / 10000,
				.producer_expiration_ms = 1000,
				.map_bytes_max = 1 << 20,
			};
			int64_t at = now + (int64_t)rnd(600000);
			struct clean_stats st = { 0 };
			assert_int_equal(clean_plan_partition(x.m, tid, p, &c, at, &st), 0);
			bool full = full_plan_due(x.m, tid, p, &c, at);
			checks++;
			due += full;
			bounded += st.bounded;
			if (full) {
				if (st.bounded)
					fail_msg("partition %d: due, but its rows were left unread "
						 "(checkpoint %lld, log start %lld)",
						 p, (long long)checkpoint, (long long)log_start);
				assert_true(st.due);
			} else {
				assert_false(st.due);
			}
		}
	}
	/* Neither side vacuous. */
	print_message("bounds: %zu checks, %zu due, %zu left unread\n", checks, due, bounded);
	assert_true(due > checks / 10);
	assert_true(bounded > checks / 50);
	store_close(&x);
}

/* A meta store that counts the batch rows handed out. */
struct counting_meta {
	struct meta base;
	struct meta_methods methods;
	struct meta *inner;
	uint64_t rows;
};

static int counting_partition_get(struct meta *m, int64_t tid, int32_t p, struct meta_partition *out)
{
	return meta_partition_get(((struct counting_meta *)m)->inner, tid, p, out);
}

static int counting_clean_bytes(struct meta *m, int64_t tid, int32_t p, int64_t log_start,
				int64_t first_dirty, int64_t *clean, int64_t *dirty)
{
	return meta_clean_bytes(((struct counting_meta *)m)->inner, tid, p, log_start, first_dirty,
				clean, dirty);
}

static int counting_batches_from_many(struct meta *m, struct meta_batch_query *q, size_t nq,
				      struct meta_batch_row *rows, size_t cap)
{
	struct counting_meta *c = (struct counting_meta *)m;
	int rc = meta_batches_from_many(c->inner, q, nq, rows, cap);
	for (size_t i = 0; i < nq; i++)
		c->rows += q[i].n;
	return rc;
}

/* A busy partition that is not due (a large cleaned part, a little
 * dirty, no lag passed): the planning reads its bounds, not its 20,000
 * batch rows; once it may be due, all of them. */
static void test_plan_busy_not_due_unread(void **state)
{
	(void)state;
	struct store x;
	store_open(&x);
	int64_t tid = create_topic(x.m, "busy", 1);
	const int64_t now = 1700000000000LL;
	enum { OBJECTS = 2000, PER = 10 };
	uint32_t len[PER];
	int64_t ts[PER];
	for (int i = 0; i < PER; i++) {
		len[i] = 100;
		ts[i] = now - 60000;
	}
	for (int o = 0; o < OBJECTS; o++) {
		char key[32];
		snprintf(key, sizeof key, "o/%d", o);
		commit_obj(x.m, tid, 0, key, PER, len, ts);
	}
	/* 90% cleaned: the dirty ratio is at most 0.1. */
	store_set(&x, tid, 0, (int64_t)OBJECTS * PER * 10 * 9 / 10, 0);
	struct counting_meta cm = { .inner = x.m };
	cm.methods.name = "counting";
	cm.methods.partition_get = counting_partition_get;
	cm.methods.clean_bytes = counting_clean_bytes;
	cm.methods.batches_from_many = counting_batches_from_many;
	cm.base.m = &cm.methods;
	struct compact_config c = plain_config();
	struct clean_stats st = { 0 };
	assert_int_equal(clean_plan_partition(&cm.base, tid, 0, &c, now, &st), 0);
	assert_false(st.due);
	assert_false(st.idle);
	/* 20,000 before the bounds. */
	if (cm.rows > MERGE_ROW_BATCHES_MAX + 1)
		fail_msg("the planning read %llu batch rows of a partition not due",
			 (unsigned long long)cm.rows);
	assert_true(st.bounded);
	assert_int_equal(st.plan_batches, cm.rows);
	assert_false(full_plan_due(x.m, tid, 0, &c, now));
	/* The lag passed for the oldest dirty record: due, read whole. */
	c.max_compaction_lag_ms = 30000;
	cm.rows = 0;
	memset(&st, 0, sizeof st);
	assert_int_equal(clean_plan_partition(&cm.base, tid, 0, &c, now, &st), 0);
	assert_true(st.due);
	assert_false(st.bounded);
	assert_true(cm.rows >= OBJECTS * PER);
	/* A ratio the dirty part passes: due too. */
	c.max_compaction_lag_ms = INT64_MAX;
	c.min_cleanable_dirty_ratio = 0.05;
	memset(&st, 0, sizeof st);
	assert_int_equal(clean_plan_partition(&cm.base, tid, 0, &c, now, &st), 0);
	assert_true(st.due);
	store_close(&x);
}

/* Rows cleaned by another process between the plan and a chunk's read
 * (two rows swapped into one, the checkpoint raised): the pass ends at
 * that chunk as a refused swap, with no error and nothing read from the
 * object store (it has none here: no read is made). */
static void test_pass_rows_changed(void **state)
{
	(void)state;
	struct store x;
	store_open(&x);
	int64_t tid = create_topic(x.m, "changed", 1);
	const int64_t now = 1700000000000LL;
	uint32_t len[1] = { 100 };
	int64_t ts[1] = { now - 60000 };
	for (int o = 0; o < 4; o++) {
		char key[32];
		snprintf(key, sizeof key, "o/%d", o);
		commit_obj(x.m, tid, 0, key, 1, len, ts);
	}
	struct compact_config c = plain_config();
	struct clean_stats st = { 0 };
	struct clean_pass *pass = NULL;
	static const uint8_t id[16];
	assert_int_equal(clean_pass_begin(x.m, NULL, tid, 0, id, &c, now, true, 1 << 20, NULL, &st,
					  &pass),
			 0);
	assert_non_null(pass);
	struct meta_merge_row mr[2];
	for (int i = 0; i < 2; i++) {
		mr[i] = (struct meta_merge_row){ .base_offset = 10 * i, .last_offset = 10 * i + 9,
						 .byte_offset = 16, .length = 100 };
		snprintf(mr[i].object_key, sizeof mr[i].object_key, "o/%d", i);
	}
	struct meta_compact_batch cb[1] = { { 0, 19, 16, 150, 20, now - 60000, 0 } };
	struct meta_merge cp = { tid, 0, "o/other", 200, mr, 2, cb, 1, 20, NULL, 0 };
	assert_int_equal(meta_compact_swap(x.m, &cp), 0);
	bool done = false;
	assert_int_equal(clean_pass_step(pass, &st, &done), 0);
	assert_true(done);
	assert_int_equal(st.refused, 1);
	assert_int_equal(st.swaps, 0);
	assert_int_equal(st.gets, 0);
	clean_pass_free(pass);
	store_close(&x);
}

/* The buffer a pass reads into is the same memory pass after pass (no
 * new mapping to fault in), left idle between them, and grows only when
 * a pass needs more. */
static void test_pass_buffer(void **state)
{
	(void)state;
	struct merge_buf b = { 0 };
	uint8_t *p = merge_buf_reserve(&b, 1000);
	assert_non_null(p);
	assert_true(b.cap >= 1000);
	assert_int_equal((uintptr_t)p % (uintptr_t)sysconf(_SC_PAGESIZE), 0);
	size_t cap = b.cap;
	memset(p, 0xab, cap);
	merge_buf_idle(&b);
	/* Idle: kept, and writable again at once. */
	assert_ptr_equal(merge_buf_reserve(&b, cap), p);
	memset(p, 0xcd, cap);
	assert_int_equal(p[cap - 1], 0xcd);
	/* A pass larger than any before: a larger buffer, the old one gone. */
	uint8_t *q = merge_buf_reserve(&b, cap + 1);
	assert_non_null(q);
	assert_true(b.cap >= cap + 1);
	q[cap] = 1;
	assert_ptr_equal(merge_buf_reserve(&b, 10), q);
	merge_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.cap, 0);
	merge_buf_idle(&b); /* nothing held: no-op */
}

/* A pass's chunks: as many rows as bytes_max holds, at least one. */
static void test_chunk_end(void **state)
{
	(void)state;
	struct clean_row r[6] = {
		{ 0, 9, 0, 100, 1 },    { 10, 19, 0, 100, 1 }, { 20, 29, 0, 500, 1 },
		{ 30, 39, 0, 100, 1 },  { 40, 49, 0, 100, 1 }, { 50, 59, 0, 100, 1 },
	};
	assert_int_equal(clean_chunk_end(r, 0, 6, 250), 2);
	assert_int_equal(clean_chunk_end(r, 0, 6, 200), 2);
	assert_int_equal(clean_chunk_end(r, 2, 6, 250), 3); /* a large row alone */
	assert_int_equal(clean_chunk_end(r, 3, 6, 250), 5);
	assert_int_equal(clean_chunk_end(r, 5, 6, 250), 6);
	assert_int_equal(clean_chunk_end(r, 6, 6, 250), 6);
	assert_int_equal(clean_chunk_end(r, 0, 6, 1 << 20), 6);
	assert_int_equal(clean_chunk_end(r, 0, 4, 1 << 20), 4); /* never past n */
	/* Chunks tile the rows in order, each within the bound but for a
	 * row larger than it. */
	size_t i = 0, chunks = 0;
	while (i < 6) {
		size_t j = clean_chunk_end(r, i, 6, 300);
		assert_true(j > i);
		uint64_t b = 0;
		for (size_t k = i; k < j; k++)
			b += r[k].bytes;
		assert_true(b <= 300 || j == i + 1);
		i = j;
		chunks++;
	}
	assert_int_equal(chunks, 3);
	/* At most SL_OBJECT_BATCHES_MAX batches per chunk. */
	struct clean_row big[3] = { { 0, 9, 0, 10, 600000 }, { 10, 19, 0, 10, 600000 },
				    { 20, 29, 0, 10, 1 } };
	assert_int_equal(clean_chunk_end(big, 0, 3, 1 << 20), 1);
	assert_int_equal(clean_chunk_end(big, 1, 3, 1 << 20), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aborted_ranges),
		cmocka_unit_test(test_plan_whole_partition),
		cmocka_unit_test(test_plan_bounds_sound),
		cmocka_unit_test(test_plan_busy_not_due_unread),
		cmocka_unit_test(test_pass_rows_changed),
		cmocka_unit_test(test_pass_buffer),
		cmocka_unit_test(test_chunk_end),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
