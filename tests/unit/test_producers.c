/* test_producers.c — idempotent producer state: in-sequence batches are
 * appended, retries of committed batches get their original offset,
 * retries of in-flight batches are told to retry, gaps and old epochs are
 * refused, a failure forgets the failed batch and those after it, a new
 * epoch starts over at sequence 0, and a forgotten producer is let
 * through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "agent/producers.h"

#define TID 7
#define PART 3
#define PID 1000

static enum producer_verdict check(struct producers *p, int16_t epoch, int32_t base, int32_t last,
				   int64_t *off)
{
	return producers_check(p, TID, PART, PID, epoch, base, last, off);
}

static void test_sequence_and_duplicates(void **state)
{
	struct producers p;
	producers_init(&p);
	int64_t off = -2;
	assert_int_equal(check(&p, 0, 0, 9, &off), PRODUCER_APPEND);
	/* In flight: a retry is told to come back later. */
	assert_int_equal(check(&p, 0, 0, 9, &off), PRODUCER_DUPLICATE_PENDING);
	producers_committed(&p, TID, PART, PID, 0, 0, 100);
	assert_int_equal(check(&p, 0, 0, 9, &off), PRODUCER_DUPLICATE);
	assert_int_equal(off, 100);
	/* The next batch must start at 10. */
	assert_int_equal(check(&p, 0, 11, 12, &off), PRODUCER_OUT_OF_ORDER);
	assert_int_equal(check(&p, 0, 10, 19, &off), PRODUCER_APPEND);
	/* Another partition of the same producer is independent. */
	assert_int_equal(producers_check(&p, TID, PART + 1, PID, 0, 5, 5, &off), PRODUCER_APPEND);
	producers_free(&p);
}

static void test_only_last_five_remembered(void **state)
{
	struct producers p;
	producers_init(&p);
	int64_t off;
	for (int32_t i = 0; i < 7; i++) {
		assert_int_equal(check(&p, 0, i, i, &off), PRODUCER_APPEND);
		producers_committed(&p, TID, PART, PID, 0, i, 50 + i);
	}
	assert_int_equal(check(&p, 0, 6, 6, &off), PRODUCER_DUPLICATE);
	assert_int_equal(off, 56);
	assert_int_equal(check(&p, 0, 2, 2, &off), PRODUCER_DUPLICATE);
	assert_int_equal(off, 52);
	/* Batch 1 fell out of the window: it is not the next in sequence
	 * either, so it is refused rather than written twice. */
	assert_int_equal(check(&p, 0, 1, 1, &off), PRODUCER_OUT_OF_ORDER);
	producers_free(&p);
}

static void test_failure_forgets_later_batches(void **state)
{
	struct producers p;
	producers_init(&p);
	int64_t off;
	assert_int_equal(check(&p, 0, 0, 4, &off), PRODUCER_APPEND);
	producers_committed(&p, TID, PART, PID, 0, 0, 0);
	assert_int_equal(check(&p, 0, 5, 9, &off), PRODUCER_APPEND);
	assert_int_equal(check(&p, 0, 10, 14, &off), PRODUCER_APPEND);
	producers_failed(&p, TID, PART, PID, 0, 5);
	/* The producer retries from 5: accepted, in sequence. */
	assert_int_equal(check(&p, 0, 5, 9, &off), PRODUCER_APPEND);
	assert_int_equal(check(&p, 0, 10, 14, &off), PRODUCER_APPEND);
	producers_free(&p);
}

static void test_epochs(void **state)
{
	struct producers p;
	producers_init(&p);
	int64_t off;
	assert_int_equal(check(&p, 3, 0, 0, &off), PRODUCER_APPEND);
	assert_int_equal(check(&p, 2, 1, 1, &off), PRODUCER_FENCED);
	/* A bumped epoch starts a new sequence, at 0 (Kafka's
	 * OUT_OF_ORDER_SEQUENCE_NUMBER otherwise). */
	assert_int_equal(check(&p, 4, 7, 7, &off), PRODUCER_OUT_OF_ORDER);
	assert_int_equal(check(&p, 4, 0, 0, &off), PRODUCER_APPEND);
	assert_int_equal(check(&p, 3, 1, 1, &off), PRODUCER_FENCED);
	producers_free(&p);
}

/* Forgotten (the commit refused a batch, or other agents moved the
 * producer on), or failed with nothing left: the next batch is let
 * through to the commit's check, whatever its sequence. */
static void test_forget(void **state)
{
	struct producers p;
	producers_init(&p);
	int64_t off;
	assert_int_equal(check(&p, 0, 0, 0, &off), PRODUCER_APPEND);
	producers_committed(&p, TID, PART, PID, 0, 0, 0);
	assert_int_equal(check(&p, 0, 9, 9, &off), PRODUCER_OUT_OF_ORDER);
	producers_forget(&p, TID, PART, PID);
	assert_int_equal(check(&p, 0, 9, 9, &off), PRODUCER_APPEND);
	producers_failed(&p, TID, PART, PID, 0, 9);
	assert_int_equal(check(&p, 5, 3, 3, &off), PRODUCER_APPEND);
	producers_free(&p);
}

static void test_sequence_wraps(void **state)
{
	struct producers p;
	producers_init(&p);
	int64_t off;
	assert_int_equal(check(&p, 0, INT32_MAX - 1, INT32_MAX, &off), PRODUCER_APPEND);
	assert_int_equal(check(&p, 0, 0, 3, &off), PRODUCER_APPEND);
	producers_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sequence_and_duplicates),
		cmocka_unit_test(test_only_last_five_remembered),
		cmocka_unit_test(test_failure_forgets_later_batches),
		cmocka_unit_test(test_epochs),
		cmocka_unit_test(test_forget),
		cmocka_unit_test(test_sequence_wraps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
