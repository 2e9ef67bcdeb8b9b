/* test_aborted_index.c — the in-memory aborted-transaction index of the
 * read_committed path: Kafka's query (marker at or after the fetch
 * offset, first offset before the records' end) answered in first-offset
 * order, the known range (ranges that touch join, a gap starts over, an
 * older apart range is not held, a query outside it is not answered),
 * duplicates (several producer ids at one marker are not), the
 * per-partition bound (oldest markers go and the range moves past
 * them), the total bound (least recently used partitions go), trims
 * below the log start, and drops. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "txn/aborted_index.h"

#define BIG ((size_t)64 << 20)

static struct aborted_txn tx(int64_t pid, int64_t first, int64_t last)
{
	return (struct aborted_txn){ .producer_id = pid, .first_offset = first, .last_offset = last };
}

/* The list for a fetch of [offset, end) with markers known to upto; must
 * be answered. Returns how many, copied into out (room for 64). */
static size_t get(struct aborted_index *ix, int64_t tid, int32_t p, int64_t offset, int64_t end,
		  int64_t upto, struct aborted_txn *out)
{
	size_t n = 99;
	assert_true(aborted_index_get(ix, tid, p, offset, end, upto, out, 64, &n));
	assert_true(n <= 64);
	return n;
}

static void assert_tx(const struct aborted_txn *t, int64_t pid, int64_t first, int64_t last)
{
	assert_int_equal(t->producer_id, pid);
	assert_int_equal(t->first_offset, first);
	assert_int_equal(t->last_offset, last);
}

/* Kafka's overlap rule and the first-offset order. */
static void test_query(void **state)
{
	(void)state;
	struct aborted_index *ix = aborted_index_new(BIG, 1024);
	assert_non_null(ix);
	/* Markers in commit order; transactions interleaved: pid 7 from 10
	 * to its marker at 40, pid 8 from 5 to 30, pid 9 from 50 to 60. */
	struct aborted_txn v[] = { tx(8, 5, 30), tx(7, 10, 40), tx(9, 50, 60) };
	assert_int_equal(aborted_index_add(ix, 1, 0, 0, 100, v, 3), 0);
	struct aborted_txn out[64];
	/* Everything from 0 with records to 100: all three, by first offset. */
	assert_int_equal(get(ix, 1, 0, 0, 100, 100, out), 3);
	assert_tx(&out[0], 8, 5, 30);
	assert_tx(&out[1], 7, 10, 40);
	assert_tx(&out[2], 9, 50, 60);
	/* Records [0, 8): only pid 8's started before 8. */
	assert_int_equal(get(ix, 1, 0, 0, 8, 100, out), 1);
	assert_tx(&out[0], 8, 5, 30);
	/* From 31: pid 8's marker (30) is behind; pid 7's is not. */
	assert_int_equal(get(ix, 1, 0, 31, 100, 100, out), 2);
	assert_tx(&out[0], 7, 10, 40);
	assert_tx(&out[1], 9, 50, 60);
	/* From 40 exactly: the marker itself is read, its producer listed. */
	assert_int_equal(get(ix, 1, 0, 40, 45, 100, out), 1);
	assert_tx(&out[0], 7, 10, 40);
	/* First offset == end: its records are not in this fetch. */
	assert_int_equal(get(ix, 1, 0, 41, 50, 100, out), 0);
	/* cap 0 counts. */
	size_t n = 0;
	assert_true(aborted_index_get(ix, 1, 0, 0, 100, 100, NULL, 0, &n));
	assert_int_equal(n, 3);
	/* cap 1 copies one and counts all. */
	assert_true(aborted_index_get(ix, 1, 0, 0, 100, 100, out, 1, &n));
	assert_int_equal(n, 3);
	assert_tx(&out[0], 8, 5, 30);
	/* Another partition or topic is not held. */
	assert_false(aborted_index_get(ix, 1, 1, 0, 100, 100, out, 64, &n));
	assert_int_equal(n, 0);
	assert_false(aborted_index_get(ix, 2, 0, 0, 100, 100, out, 64, &n));
	aborted_index_free(ix);
}

/* The known range: joins, gaps, older ranges, queries outside it. */
static void test_range(void **state)
{
	(void)state;
	struct aborted_index *ix = aborted_index_new(BIG, 1024);
	struct aborted_txn out[64];
	size_t n;
	int64_t from, to;
	/* Commits of this agent, one after the other: [100, 110), [110, 130). */
	assert_int_equal(aborted_index_add(ix, 1, 0, 100, 110, NULL, 0), 0);
	struct aborted_txn a = tx(3, 105, 120);
	assert_int_equal(aborted_index_add(ix, 1, 0, 110, 130, &a, 1), 0);
	assert_true(aborted_index_range(ix, 1, 0, &from, &to));
	assert_int_equal(from, 100);
	assert_int_equal(to, 130);
	assert_int_equal(get(ix, 1, 0, 100, 130, 130, out), 1);
	/* A fetch from below the range, or with markers possible past it
	 * (the high watermark moved on), is not answered. */
	assert_false(aborted_index_get(ix, 1, 0, 99, 130, 130, out, 64, &n));
	assert_false(aborted_index_get(ix, 1, 0, 100, 130, 131, out, 64, &n));
	/* A store lookup below that reaches it extends it backwards. */
	struct aborted_txn b = tx(4, 60, 70);
	assert_int_equal(aborted_index_add(ix, 1, 0, 50, 100, &b, 1), 0);
	assert_true(aborted_index_range(ix, 1, 0, &from, &to));
	assert_int_equal(from, 50);
	assert_int_equal(to, 130);
	assert_int_equal(get(ix, 1, 0, 50, 130, 130, out), 2);
	assert_tx(&out[0], 4, 60, 70);
	assert_tx(&out[1], 3, 105, 120);
	/* An overlapping lookup brings what is held again: taken once. */
	struct aborted_txn again[] = { tx(4, 60, 70), tx(3, 105, 120) };
	assert_int_equal(aborted_index_add(ix, 1, 0, 60, 125, again, 2), 0);
	assert_int_equal(get(ix, 1, 0, 50, 130, 130, out), 2);
	/* Entries outside the range they come with are not taken. */
	struct aborted_txn outside = tx(5, 10, 20);
	assert_int_equal(aborted_index_add(ix, 1, 0, 30, 50, &outside, 1), 0);
	assert_int_equal(get(ix, 1, 0, 30, 130, 130, out), 2);
	/* An older range apart from it is not held. */
	struct aborted_txn old = tx(6, 1, 2);
	assert_int_equal(aborted_index_add(ix, 1, 0, 0, 10, &old, 1), 0);
	assert_true(aborted_index_range(ix, 1, 0, &from, &to));
	assert_int_equal(from, 30);
	assert_false(aborted_index_get(ix, 1, 0, 0, 130, 130, out, 64, &n));
	/* A newer range apart from it (commits not seen here) starts over:
	 * what was held before it is no longer claimed. */
	struct aborted_txn c = tx(7, 200, 210);
	assert_int_equal(aborted_index_add(ix, 1, 0, 200, 220, &c, 1), 0);
	assert_true(aborted_index_range(ix, 1, 0, &from, &to));
	assert_int_equal(from, 200);
	assert_int_equal(to, 220);
	assert_false(aborted_index_get(ix, 1, 0, 100, 220, 220, out, 64, &n));
	assert_int_equal(get(ix, 1, 0, 200, 220, 220, out), 1);
	assert_tx(&out[0], 7, 200, 210);
	/* A range ending where it starts touches it. */
	assert_int_equal(aborted_index_add(ix, 1, 0, 190, 200, NULL, 0), 0);
	assert_true(aborted_index_range(ix, 1, 0, &from, &to));
	assert_int_equal(from, 190);
	assert_int_equal(aborted_index_add(ix, 1, 0, 5, 4, NULL, 0), SL_EINVAL);
	aborted_index_free(ix);
}

/* No transaction ever aborted: every range is known and empty. */
static void test_empty(void **state)
{
	(void)state;
	struct aborted_index *ix = aborted_index_new(BIG, 1024);
	struct aborted_txn out[64];
	for (int64_t hw = 0; hw < 1000; hw += 10)
		assert_int_equal(aborted_index_add(ix, 9, 3, hw, hw + 10, NULL, 0), 0);
	assert_int_equal(get(ix, 9, 3, 0, 1000, 1000, out), 0);
	assert_int_equal(get(ix, 9, 3, 500, 600, 1000, out), 0);
	assert_int_equal(aborted_index_partitions(ix), 1);
	aborted_index_free(ix);
}

/* Past entries_max the oldest markers go and the range starts after
 * them: a fetch from there is looked up, not answered without them. */
static void test_partition_bound(void **state)
{
	(void)state;
	struct aborted_index *ix = aborted_index_new(BIG, 4);
	struct aborted_txn out[64];
	size_t n;
	int64_t from, to;
	/* Six aborted transactions, markers 10, 20, ..., 60, added in two
	 * commits; the first ones started late (first offsets descending)
	 * so that first-offset order and marker order differ. */
	struct aborted_txn v1[] = { tx(1, 9, 10), tx(2, 8, 20), tx(3, 7, 30) };
	struct aborted_txn v2[] = { tx(4, 35, 40), tx(5, 45, 50), tx(6, 55, 60) };
	assert_int_equal(aborted_index_add(ix, 1, 0, 0, 31, v1, 3), 0);
	assert_int_equal(aborted_index_add(ix, 1, 0, 31, 70, v2, 3), 0);
	assert_true(aborted_index_range(ix, 1, 0, &from, &to));
	assert_int_equal(from, 21); /* markers 10 and 20 went */
	assert_int_equal(to, 70);
	assert_false(aborted_index_get(ix, 1, 0, 20, 70, 70, out, 64, &n));
	assert_int_equal(get(ix, 1, 0, 21, 70, 70, out), 4);
	assert_tx(&out[0], 3, 7, 30);
	assert_tx(&out[3], 6, 55, 60);
	aborted_index_free(ix);
}

/* Over bytes_max the least recently used partitions go. */
static void test_total_bound(void **state)
{
	(void)state;
	struct aborted_index *ix = aborted_index_new(4096, 1024);
	struct aborted_txn out[64];
	size_t n;
	struct aborted_txn v[16];
	for (int i = 0; i < 16; i++)
		v[i] = tx(i, 10 * i, 10 * i + 5);
	for (int32_t p = 0; p < 40; p++) {
		assert_int_equal(aborted_index_add(ix, 1, p, 0, 200, v, 16), 0);
		/* Partition 0 is used all along: it stays. */
		assert_true(aborted_index_get(ix, 1, 0, 0, 200, 200, out, 64, &n));
		assert_int_equal(n, 16);
	}
	assert_true(aborted_index_bytes(ix) <= 4096);
	assert_true(aborted_index_partitions(ix) < 40);
	assert_true(aborted_index_get(ix, 1, 39, 0, 200, 200, out, 64, &n));
	assert_false(aborted_index_get(ix, 1, 1, 0, 200, 200, out, 64, &n));
	aborted_index_free(ix);
}

/* Trims and drops. */
static void test_trim_drop(void **state)
{
	(void)state;
	struct aborted_index *ix = aborted_index_new(BIG, 1024);
	struct aborted_txn out[64];
	size_t n;
	int64_t from, to;
	struct aborted_txn v[] = { tx(1, 0, 10), tx(2, 5, 30), tx(3, 40, 50) };
	assert_int_equal(aborted_index_add(ix, 1, 0, 0, 60, v, 3), 0);
	aborted_index_trim(ix, 1, 0, 20);
	assert_true(aborted_index_range(ix, 1, 0, &from, &to));
	assert_int_equal(from, 20);
	assert_int_equal(to, 60);
	/* pid 1's marker is below the log start: gone; pid 2's is not (its
	 * records before the log start are not fetched, its later ones may
	 * be). */
	assert_int_equal(get(ix, 1, 0, 20, 60, 60, out), 2);
	assert_tx(&out[0], 2, 5, 30);
	assert_tx(&out[1], 3, 40, 50);
	/* A trim to the range's end keeps an empty range that commits
	 * continue; past it, nothing is held. */
	aborted_index_trim(ix, 1, 0, 60);
	assert_int_equal(get(ix, 1, 0, 60, 60, 60, out), 0);
	aborted_index_trim(ix, 1, 0, 61);
	assert_false(aborted_index_range(ix, 1, 0, &from, &to));
	assert_int_equal(aborted_index_add(ix, 2, 0, 0, 10, NULL, 0), 0);
	assert_int_equal(aborted_index_add(ix, 2, 1, 0, 10, NULL, 0), 0);
	assert_int_equal(aborted_index_add(ix, 3, 0, 0, 10, NULL, 0), 0);
	aborted_index_drop(ix, 3, 0);
	assert_false(aborted_index_get(ix, 3, 0, 0, 10, 10, out, 64, &n));
	aborted_index_drop_topic(ix, 2, 2);
	assert_int_equal(aborted_index_partitions(ix), 0);
	aborted_index_free(ix);
}

/* One marker that recorded two producer ids' transactions (an older
 * producer id of its transactional id still open there:
 * meta_marker_aborts): both held, in first-offset order, and a lookup
 * bringing them again takes each once. */
static void test_one_marker_two_producers(void **state)
{
	(void)state;
	struct aborted_index *ix = aborted_index_new(BIG, 1024);
	assert_non_null(ix);
	struct aborted_txn two[] = { tx(11, 27, 28), tx(10, 22, 28) };
	assert_int_equal(aborted_index_add(ix, 1, 0, 0, 30, two, 2), 0);
	assert_int_equal(aborted_index_add(ix, 1, 0, 20, 30, two, 2), 0);
	struct aborted_txn out[64];
	assert_int_equal(get(ix, 1, 0, 0, 30, 30, out), 2);
	assert_tx(&out[0], 10, 22, 28);
	assert_tx(&out[1], 11, 27, 28);
	aborted_index_free(ix);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_range),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_partition_bound),
		cmocka_unit_test(test_total_bound),
		cmocka_unit_test(test_trim_drop),
		cmocka_unit_test(test_one_marker_two_producers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
