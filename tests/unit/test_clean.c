/* test_clean.c — the cleaning pass's transactions hook
 * (storage/clean.h): which transactional batches lie in one of their
 * producer's aborted transactions; the plan of a partition longer than
 * a pass may read, and of one cleaned up to its tail (a SQLite store);
 * the input buffer the agent keeps between passes (storage/merge.h).
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
	struct meta_topic t;
	assert_int_equal(meta_topic_create(m, "bound", 1, NULL, 0, NULL, &t), 0);
	int64_t tid = t.tid;
	meta_topic_free(&t);
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
	struct compact_config c = { .segment_ms = 1000, .max_compaction_lag_ms = INT64_MAX,
				    .delete_retention_ms = 1000, .min_cleanable_dirty_ratio = 0.5,
				    .producer_expiration_ms = 1000, .map_bytes_max = 1 << 20 };
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
		cmocka_unit_test(test_pass_buffer),
		cmocka_unit_test(test_chunk_end),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
