/* test_merge_plan.c — the merge planner: which rows of a partition it
 * picks to rewrite, where it cuts runs, and what it leaves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/limits.h"
#include "storage/merge_plan.h"

#define NOW 10000000
#define MIB (1024 * 1024)

/* n rows of len bytes, one per object (ids from id0), each object of
 * object_size bytes made age_ms before NOW, offsets from 0, 10 each. */
static void rows_fill(struct merge_plan_row *r, size_t n, uint64_t id0, uint32_t len,
		      uint64_t object_size, int64_t age_ms)
{
	for (size_t i = 0; i < n; i++)
		r[i] = (struct merge_plan_row){ .base_offset = (int64_t)i * 10,
						.last_offset = (int64_t)i * 10 + 9,
						.object_id = id0 + i,
						.object_size = object_size,
						.object_created_ms = NOW - age_ms,
						.length = len };
}

static struct merge_plan_config config(void)
{
	struct merge_plan_config c = { .target_bytes = 64 * MIB, .min_age_ms = 60000 };
	merge_plan_defaults(&c);
	return c;
}

static void test_defaults(void **state)
{
	struct merge_plan_config c = config();
	assert_int_equal(c.small_object_bytes, 32 * MIB);
	assert_int_equal(c.min_objects, 2);
	assert_int_equal(c.min_rows, 2);
	assert_int_equal(c.swap_rows, SL_MERGE_SWAP_ROWS);
}

/* 100 old rows of 1 MiB in 100 small objects: one run of 64, one of 36. */
static void test_cut_at_target(void **state)
{
	struct merge_plan_row r[100];
	rows_fill(r, 100, 1, MIB, 4 * MIB, 120000);
	struct merge_plan_config c = config();
	struct merge_plan_run runs[8];
	size_t n = 0;
	assert_int_equal(merge_plan(r, 100, &c, NOW, runs, 8, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(runs[0].first, 0);
	assert_int_equal(runs[0].n, 64);
	assert_int_equal(runs[0].bytes, 64 * MIB);
	assert_int_equal(runs[0].objects, 64);
	assert_int_equal(runs[1].first, 64);
	assert_int_equal(runs[1].n, 36);
}

/* Young objects, and big ones (a merged object), split runs and are left. */
static void test_age_and_size(void **state)
{
	struct merge_plan_row r[10];
	rows_fill(r, 10, 1, 1000, 100000, 120000);
	r[4].object_created_ms = NOW - 1000;      /* too young */
	r[7].object_size = 40 * MIB;              /* already merged */
	struct merge_plan_config c = config();
	struct merge_plan_run runs[8];
	size_t n = 0;
	assert_int_equal(merge_plan(r, 10, &c, NOW, runs, 8, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(runs[0].first, 0);
	assert_int_equal(runs[0].n, 4);
	assert_int_equal(runs[1].first, 5);
	assert_int_equal(runs[1].n, 2);
	assert_int_equal(runs[2].first, 8);
	assert_int_equal(runs[2].n, 2);
	/* Everything young: nothing. */
	c.min_age_ms = 200000;
	assert_int_equal(merge_plan(r, 10, &c, NOW, runs, 8, &n), 0);
	assert_int_equal(n, 0);
}

/* Rows of one object merge into nothing: a run must span min_objects. */
static void test_min_objects_and_rows(void **state)
{
	struct merge_plan_row r[6];
	rows_fill(r, 6, 1, 1000, 100000, 120000);
	for (int i = 0; i < 6; i++)
		r[i].object_id = 7;
	struct merge_plan_config c = config();
	struct merge_plan_run runs[4];
	size_t n = 9;
	assert_int_equal(merge_plan(r, 6, &c, NOW, runs, 4, &n), 0);
	assert_int_equal(n, 0);
	r[5].object_id = 8;
	assert_int_equal(merge_plan(r, 6, &c, NOW, runs, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(runs[0].objects, 2);
	c.min_objects = 3;
	assert_int_equal(merge_plan(r, 6, &c, NOW, runs, 4, &n), 0);
	assert_int_equal(n, 0);
	/* min_rows: two objects, two rows, but 3 asked. */
	c = config();
	c.min_rows = 3;
	assert_int_equal(merge_plan(r + 4, 2, &c, NOW, runs, 4, &n), 0);
	assert_int_equal(n, 0);
}

/* A row larger than the target is left; its neighbours still merge. */
static void test_oversized_row(void **state)
{
	struct merge_plan_row r[5];
	rows_fill(r, 5, 1, 1000, 10000, 120000);
	r[2].length = 5000;
	struct merge_plan_config c = { .target_bytes = 4000, .small_object_bytes = 1 << 20,
				       .min_age_ms = 0 };
	merge_plan_defaults(&c);
	struct merge_plan_run runs[4];
	size_t n = 0;
	assert_int_equal(merge_plan(r, 5, &c, NOW, runs, 4, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(runs[0].first, 0);
	assert_int_equal(runs[0].n, 2);
	assert_int_equal(runs[1].first, 3);
	assert_int_equal(runs[1].n, 2);
}

/* runs_cap stops planning; bad input is refused. */
static void test_cap_and_refusals(void **state)
{
	struct merge_plan_row r[8];
	rows_fill(r, 8, 1, 1000, 10000, 120000);
	struct merge_plan_config c = { .target_bytes = 2000, .min_age_ms = 0,
				       .small_object_bytes = 1 << 20 };
	merge_plan_defaults(&c);
	struct merge_plan_run runs[2];
	size_t n = 0;
	assert_int_equal(merge_plan(r, 8, &c, NOW, runs, 2, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(runs[1].first, 2);
	r[3].base_offset = r[2].last_offset; /* overlapping rows */
	assert_int_equal(merge_plan(r, 8, &c, NOW, runs, 2, &n), SL_EINVAL);
	c.target_bytes = 0;
	assert_int_equal(merge_plan(r, 0, &c, NOW, runs, 2, &n), SL_EINVAL);
}

/* 11,000 old rows of 1 KiB, each in an object of its own (a partition
 * fed small batches one at a time): one run, not one per swap_rows rows
 * (the swap is cut into transactions, not the object). */
static void test_small_batches_one_run(void **state)
{
	static struct merge_plan_row r[11000];
	rows_fill(r, 11000, 1, 1024, 2048, 120000);
	struct merge_plan_config c = config();
	struct merge_plan_run runs[8];
	size_t n = 0;
	for (size_t swap_rows = 1; swap_rows <= SL_MERGE_SWAP_ROWS * 4; swap_rows *= 16) {
		c.swap_rows = swap_rows;
		assert_int_equal(merge_plan(r, 11000, &c, NOW, runs, 8, &n), 0);
		assert_int_equal(n, 1);
		assert_int_equal(runs[0].first, 0);
		assert_int_equal(runs[0].n, 11000);
		assert_int_equal(runs[0].objects, 11000);
		assert_int_equal(runs[0].bytes, 11000 * 1024);
	}
}

/* More rows than one run may take: cut at SL_MERGE_RUN_ROWS_MAX. */
static void test_row_cap(void **state)
{
	size_t total = SL_MERGE_RUN_ROWS_MAX + 10;
	struct merge_plan_row *r = test_malloc(total * sizeof *r);
	rows_fill(r, total, 1, 10, 1000, 120000);
	struct merge_plan_config c = config();
	struct merge_plan_run runs[4];
	size_t n = 0;
	assert_int_equal(merge_plan(r, total, &c, NOW, runs, 4, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(runs[0].n, SL_MERGE_RUN_ROWS_MAX);
	assert_int_equal(runs[1].n, 10);
	test_free(r);
}

/* merge_plan_open: where the run reaching the rows' end starts, paying
 * or not (one row: too few yet), or the end when no run reaches it. */
static void test_open_run(void **state)
{
	struct merge_plan_row r[100];
	rows_fill(r, 100, 1, MIB, 4 * MIB, 120000);
	struct merge_plan_config c = config();
	assert_int_equal(merge_plan_open(r, 100, &c, NOW), 64);  /* 64 | 36 */
	assert_int_equal(merge_plan_open(r, 64, &c, NOW), 0);    /* one full run */
	assert_int_equal(merge_plan_open(r, 65, &c, NOW), 64);   /* one row, not a run yet */
	r[99].object_created_ms = NOW;                           /* too young */
	assert_int_equal(merge_plan_open(r, 100, &c, NOW), 100);
	assert_int_equal(merge_plan_open(r, 0, &c, NOW), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_cut_at_target),
		cmocka_unit_test(test_age_and_size),
		cmocka_unit_test(test_min_objects_and_rows),
		cmocka_unit_test(test_oversized_row),
		cmocka_unit_test(test_cap_and_refusals),
		cmocka_unit_test(test_small_batches_one_run),
		cmocka_unit_test(test_row_cap),
		cmocka_unit_test(test_open_run),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
