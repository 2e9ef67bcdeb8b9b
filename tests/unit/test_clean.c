/* test_clean.c — the cleaning pass's transactions hook
 * (storage/clean.h): which transactional batches lie in one of their
 * producer's aborted transactions. The pass itself (rows, bytes, the
 * swap) is tested end to end by tests/integration/test_compaction.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "meta/meta.h"
#include "storage/batch.h"
#include "storage/clean.h"

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
	/* Markers stay: their transaction's records are judged by theirs. */
	struct batch_info marker = { .attributes = BATCH_ATTR_TRANSACTIONAL | BATCH_ATTR_CONTROL,
				     .producer_id = 7 };
	assert_int_equal(clean_txn_verdict(&t, 500, &marker), COMPACT_TXN_KEEP);
	/* No aborted transaction: every batch stays. */
	struct clean_aborted none = { NULL, NULL, 0 };
	assert_int_equal(clean_txn_verdict(&none, 25, &p8), COMPACT_TXN_KEEP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aborted_ranges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
