/* test_lso.c — a partition's last stable offset in the agent (issue 14):
 * the first unstable offset a commit or poll reports bounds it, no open
 * transaction makes it the high watermark, it never goes down (a source
 * that is behind says less), never above the high watermark nor below
 * the log start, and rises with the log start; agent_partition_txns (the
 * store side's entry point) feeds the aborted index with the rows of the
 * offsets it covers and says when the LSO moved, so fetches are woken. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/agent.h"
#include "txn/aborted_index.h"

static void test_raise_stable(void **state)
{
	(void)state;
	struct partition_state ps = { 0 };
	/* Nothing open: the LSO follows the high watermark. */
	ps.high_watermark = 10;
	assert_true(partition_raise_stable(&ps, -1));
	assert_int_equal(ps.last_stable_offset, 10);
	assert_false(partition_raise_stable(&ps, -1));
	/* A transaction opened at 10; the log grows to 20: the LSO stays. */
	ps.high_watermark = 20;
	assert_false(partition_raise_stable(&ps, 10));
	assert_int_equal(ps.last_stable_offset, 10);
	/* A second one opened at 15, the first completed (marker at 20). */
	ps.high_watermark = 21;
	assert_true(partition_raise_stable(&ps, 15));
	assert_int_equal(ps.last_stable_offset, 15);
	/* A source that is behind (an older snapshot: first unstable 10)
	 * does not lower it. */
	assert_false(partition_raise_stable(&ps, 10));
	assert_int_equal(ps.last_stable_offset, 15);
	/* A first unstable offset past the high watermark served (the store
	 * is ahead of this agent): no higher than the high watermark. */
	assert_true(partition_raise_stable(&ps, 30));
	assert_int_equal(ps.last_stable_offset, 21);
	/* All completed. */
	ps.high_watermark = 25;
	assert_true(partition_raise_stable(&ps, -1));
	assert_int_equal(ps.last_stable_offset, 25);
}

static void test_log_start(void **state)
{
	(void)state;
	struct partition_state ps = { .high_watermark = 40 };
	assert_true(partition_raise_stable(&ps, 12)); /* open at 12 */
	/* DeleteRecords to 20: the LSO rises with the log start (Kafka). */
	assert_true(partition_raise_log_start(&ps, 20));
	assert_int_equal(ps.log_start_offset, 20);
	assert_int_equal(ps.last_stable_offset, 20);
	/* The open transaction's first offset is below the log start now:
	 * the LSO is not below it. */
	assert_false(partition_raise_stable(&ps, 12));
	assert_int_equal(ps.last_stable_offset, 20);
	/* A log start below the LSO leaves it. */
	assert_true(partition_raise_stable(&ps, 30));
	assert_true(partition_raise_log_start(&ps, 25));
	assert_int_equal(ps.last_stable_offset, 30);
	/* Never past the high watermark (clamped as the log start is). */
	assert_true(partition_raise_log_start(&ps, 99));
	assert_int_equal(ps.log_start_offset, 40);
	assert_int_equal(ps.last_stable_offset, 40);
}

/* The store side's entry point: a commit's aborted rows reach the index
 * for exactly the offsets it covers, and the LSO moves. */
static void test_partition_txns(void **state)
{
	(void)state;
	struct agent a;
	memset(&a, 0, sizeof a);
	a.aborted = aborted_index_new(1 << 20, 64);
	assert_non_null(a.aborted);
	struct partition_state parts[2] = { 0 };
	struct topic_state t = { .tid = 7, .partition_count = 2, .parts = parts };
	/* A transaction of producer 5 opened at 0; data to 10. */
	parts[1].high_watermark = 10;
	assert_false(agent_partition_txns(&a, &t, 1, 0, 10, 0, NULL, 0));
	assert_int_equal(parts[1].last_stable_offset, 0);
	/* Its ABORT marker committed at 10: nothing open, one aborted row. */
	struct aborted_txn ab = { .producer_id = 5, .first_offset = 0, .last_offset = 10 };
	parts[1].high_watermark = 11;
	assert_true(agent_partition_txns(&a, &t, 1, 10, 11, -1, &ab, 1));
	assert_int_equal(parts[1].last_stable_offset, 11);
	struct aborted_txn out[4];
	size_t n;
	assert_true(aborted_index_get(a.aborted, 7, 1, 0, 11, 11, out, 4, &n));
	assert_int_equal(n, 1);
	assert_int_equal(out[0].producer_id, 5);
	assert_int_equal(out[0].first_offset, 0);
	/* Other partitions know nothing of it. */
	assert_false(aborted_index_get(a.aborted, 7, 0, 0, 11, 11, out, 4, &n));
	/* An empty range with no rows adds nothing (a poll that saw no new
	 * offsets), and moves nothing. */
	assert_false(agent_partition_txns(&a, &t, 0, 0, 0, -1, NULL, 0));
	assert_int_equal(aborted_index_partitions(a.aborted), 1);
	/* Each call told fetch sessions (the change journal). */
	assert_int_equal(a.changes_seq, 3);
	assert_int_equal(a.changes[1].tid, 7);
	assert_int_equal(a.changes[1].partition, 1);
	aborted_index_free(a.aborted);
	free(a.changes);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raise_stable),
		cmocka_unit_test(test_log_start),
		cmocka_unit_test(test_partition_txns),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
