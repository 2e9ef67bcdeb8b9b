/* test_batch_index.c — the in-memory index of recent batch rows:
 * appends that continue a run, gaps that start it over, lookups from an
 * offset (inside, before and past the run), the per-partition and total
 * bounds (oldest rows, then least recently used partitions), trims,
 * partition and topic drops, and seeding from store rows (backwards only,
 * or a fresh run that reaches the high watermark). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "meta/meta.h"
#include "storage/batch_index.h"

#define BIG ((size_t)64 << 20)

/* n rows of 2 records each from base, 100 bytes apart in one object. */
static void rows_make(struct batch_index_row *r, size_t n, int64_t base)
{
	for (size_t i = 0; i < n; i++)
		r[i] = (struct batch_index_row){ .base_offset = base + 2 * (int64_t)i,
			.last_offset = base + 2 * (int64_t)i + 1, .byte_offset = 100 * i,
			.length = 100, .record_count = 2, .max_timestamp = 1000 + (int64_t)i };
}

static void append(struct batch_index *ix, int64_t tid, int32_t p, const char *key, size_t n,
		   int64_t base)
{
	struct batch_index_row r[64];
	assert_true(n <= 64);
	rows_make(r, n, base);
	assert_int_equal(batch_index_append(ix, tid, p, key, 4096, r, n), 0);
}

static void assert_range(struct batch_index *ix, int64_t tid, int32_t p, int64_t first, int64_t end)
{
	int64_t f, e;
	assert_true(batch_index_range(ix, tid, p, &f, &e));
	assert_int_equal(f, first);
	assert_int_equal(e, end);
}

static void test_append_lookup(void **state)
{
	(void)state;
	struct batch_index *ix = batch_index_new(BIG, 1024);
	assert_non_null(ix);
	append(ix, 7, 0, "objects/a", 3, 0);   /* offsets 0..5 */
	append(ix, 7, 0, "objects/b", 2, 6);   /* 6..9: continues */
	append(ix, 7, 1, "objects/b", 1, 0);   /* another partition */
	assert_range(ix, 7, 0, 0, 10);
	assert_range(ix, 7, 1, 0, 2);
	assert_int_equal(batch_index_partitions(ix), 2);

	struct meta_batch_row out[8];
	size_t n;
	int64_t end;
	/* From inside a batch: that batch first. */
	assert_true(batch_index_rows(ix, 7, 0, 3, out, 8, &n, &end));
	assert_int_equal(n, 4);
	assert_int_equal(end, 10);
	assert_int_equal(out[0].base_offset, 2);
	assert_int_equal(out[0].last_offset, 3);
	assert_int_equal(out[0].byte_offset, 100);
	assert_int_equal(out[0].length, 100);
	assert_int_equal(out[0].record_count, 2);
	assert_int_equal(out[0].max_timestamp, 1001);
	assert_int_equal(out[0].object_size, 4096);
	assert_string_equal(out[0].object_key, "objects/a");
	assert_string_equal(out[2].object_key, "objects/b");
	assert_int_equal(out[3].base_offset, 8);
	/* cap bounds the copy. */
	assert_true(batch_index_rows(ix, 7, 0, 0, out, 2, &n, &end));
	assert_int_equal(n, 2);
	/* At the end: held, nothing there. */
	assert_true(batch_index_rows(ix, 7, 0, 10, out, 8, &n, &end));
	assert_int_equal(n, 0);
	assert_int_equal(end, 10);
	/* Not indexed. */
	assert_false(batch_index_rows(ix, 7, 2, 0, out, 8, &n, &end));
	assert_false(batch_index_rows(ix, 8, 0, 0, out, 8, &n, &end));
	batch_index_free(ix);
}

/* A commit that does not start where the run ends (one this index did
 * not see): the run starts over from it; older offsets are misses. */
static void test_gap(void **state)
{
	(void)state;
	struct batch_index *ix = batch_index_new(BIG, 1024);
	append(ix, 1, 0, "objects/a", 3, 0);
	append(ix, 1, 0, "objects/c", 2, 20);
	assert_range(ix, 1, 0, 20, 24);
	struct meta_batch_row out[8];
	size_t n;
	assert_false(batch_index_rows(ix, 1, 0, 5, out, 8, &n, NULL));
	assert_true(batch_index_rows(ix, 1, 0, 21, out, 8, &n, NULL));
	assert_int_equal(n, 2);
	assert_string_equal(out[0].object_key, "objects/c");
	/* Rows that end before the run does came late (another agent's
	 * notice overtook this agent's commit): ignored, the run stays. */
	append(ix, 1, 0, "objects/d", 1, 22);
	append(ix, 1, 0, "objects/e", 2, 10);
	assert_range(ix, 1, 0, 20, 24);
	assert_true(batch_index_rows(ix, 1, 0, 22, out, 8, &n, NULL));
	assert_string_equal(out[0].object_key, "objects/c");
	/* Rows that overlap its end are a gap. */
	append(ix, 1, 0, "objects/f", 2, 22);
	assert_range(ix, 1, 0, 22, 26);
	batch_index_free(ix);
}

/* At most rows_max rows per partition: the oldest go. */
static void test_rows_bound(void **state)
{
	(void)state;
	struct batch_index *ix = batch_index_new(BIG, 8);
	for (int i = 0; i < 5; i++)
		append(ix, 1, 0, "objects/a", 3, 6 * i); /* 15 rows in all */
	assert_range(ix, 1, 0, 30 - 16, 30);
	struct meta_batch_row out[16];
	size_t n;
	assert_false(batch_index_rows(ix, 1, 0, 13, out, 16, &n, NULL));
	assert_true(batch_index_rows(ix, 1, 0, 14, out, 16, &n, NULL));
	assert_int_equal(n, 8);
	for (size_t i = 1; i < n; i++)
		assert_int_equal(out[i].base_offset, out[i - 1].last_offset + 1);
	/* More rows in one append than the bound: the newest. */
	append(ix, 1, 0, "objects/b", 10, 30);
	assert_range(ix, 1, 0, 34, 50);
	batch_index_free(ix);
}

/* Over bytes_max, the least recently used partitions go; a lookup makes
 * a partition recent; memory comes back to the empty index's. */
static void test_bytes_bound(void **state)
{
	(void)state;
	struct batch_index *probe = batch_index_new(BIG, 16);
	size_t empty = batch_index_bytes(probe);
	append(probe, 1, 0, "objects/a", 16, 0);
	size_t one = batch_index_bytes(probe) - empty;
	batch_index_free(probe);

	struct batch_index *ix = batch_index_new(empty + 3 * one + one / 2, 16);
	append(ix, 1, 0, "objects/a", 16, 0);
	append(ix, 1, 1, "objects/a", 16, 0);
	append(ix, 1, 2, "objects/a", 16, 0);
	assert_int_equal(batch_index_partitions(ix), 3);
	struct meta_batch_row out[1];
	size_t n;
	assert_true(batch_index_rows(ix, 1, 0, 0, out, 1, &n, NULL)); /* 0 is now recent */
	append(ix, 1, 3, "objects/a", 16, 0);                          /* evicts 1 */
	assert_int_equal(batch_index_partitions(ix), 3);
	assert_false(batch_index_rows(ix, 1, 1, 0, out, 1, &n, NULL));
	assert_true(batch_index_rows(ix, 1, 0, 0, out, 1, &n, NULL));
	assert_true(batch_index_rows(ix, 1, 2, 0, out, 1, &n, NULL));
	assert_true(batch_index_rows(ix, 1, 3, 0, out, 1, &n, NULL));
	assert_true(batch_index_bytes(ix) <= empty + 3 * one + one / 2);
	/* Many partitions (the hash grows): still bounded. */
	for (int32_t p = 0; p < 500; p++)
		append(ix, 2, p, "objects/b", 16, 0);
	assert_true(batch_index_bytes(ix) <= empty + 3 * one + one / 2 + 8 * 1024);
	batch_index_drop_topic(ix, 1, 4);
	batch_index_drop_topic(ix, 2, 500);
	assert_int_equal(batch_index_partitions(ix), 0);
	batch_index_free(ix);
}

/* Trims drop rows wholly below the log start; drops forget. */
static void test_trim_drop(void **state)
{
	(void)state;
	struct batch_index *ix = batch_index_new(BIG, 1024);
	append(ix, 1, 0, "objects/a", 5, 0); /* 0..9 */
	size_t full = batch_index_bytes(ix);
	batch_index_trim(ix, 1, 0, 5);       /* the row 4..5 holds 5: it stays */
	assert_range(ix, 1, 0, 4, 10);
	struct meta_batch_row out[8];
	size_t n;
	assert_false(batch_index_rows(ix, 1, 0, 3, out, 8, &n, NULL));
	batch_index_trim(ix, 1, 0, 6);
	assert_range(ix, 1, 0, 6, 10);
	batch_index_trim(ix, 1, 0, 10);      /* everything: the partition goes */
	assert_false(batch_index_range(ix, 1, 0, &(int64_t){ 0 }, &(int64_t){ 0 }));
	assert_true(batch_index_bytes(ix) < full);
	/* Commits after a trim start a new run. */
	append(ix, 1, 0, "objects/b", 1, 10);
	assert_range(ix, 1, 0, 10, 12);
	/* A deleted topic is forgotten; a new topic (new tid) starts empty. */
	append(ix, 1, 1, "objects/b", 1, 0);
	batch_index_drop_topic(ix, 1, 2);
	assert_int_equal(batch_index_partitions(ix), 0);
	assert_false(batch_index_rows(ix, 1, 0, 10, out, 8, &n, NULL));
	batch_index_trim(ix, 9, 0, 5); /* unknown: nothing */
	/* Every drop counts (held or not): a lookup asked before one does
	 * not seed what it read. */
	uint64_t drops = batch_index_drops(ix);
	assert_int_equal(drops, 2);
	batch_index_drop(ix, 9, 0);
	assert_int_equal(batch_index_drops(ix), drops + 1);
	assert_true(batch_index_dropped_since(ix, 9, 0, drops));
	assert_false(batch_index_dropped_since(ix, 9, 0, drops + 1));
	/* Per partition: the drops of one (a pass cleaning partition 0 chunk
	 * by chunk) do not stop a lookup of another from seeding (before,
	 * any drop did); partitions hash into a table, so the few sharing
	 * partition 0's slot do count it. */
	drops = batch_index_drops(ix);
	for (int i = 0; i < 50; i++)
		batch_index_drop(ix, 9, 0);
	assert_true(batch_index_dropped_since(ix, 9, 0, drops));
	assert_false(batch_index_dropped_since(ix, 9, 1, drops));
	size_t shared = 0;
	for (int64_t t = 1000; t < 3000; t++)
		shared += batch_index_dropped_since(ix, t, (int32_t)(t % 7), drops);
	assert_true(shared <= 12);
	batch_index_free(ix);
}

static void store_rows(struct meta_batch_row *r, size_t n, int64_t base, const char *key)
{
	for (size_t i = 0; i < n; i++) {
		memset(&r[i], 0, sizeof r[i]);
		r[i].base_offset = base + 2 * (int64_t)i;
		r[i].last_offset = base + 2 * (int64_t)i + 1;
		r[i].byte_offset = 100 * i;
		r[i].length = 100;
		r[i].record_count = 2;
		r[i].object_size = 8192;
		snprintf(r[i].object_key, sizeof r[i].object_key, "%s", key);
	}
}

/* Store rows extend the tail backwards when they reach it, or start it
 * when they reach the high watermark; rows further back go to the run
 * behind it (a consumer catching up), which they continue or replace. */
static void test_seed(void **state)
{
	(void)state;
	struct batch_index *ix = batch_index_new(BIG, 8);
	struct meta_batch_row r[8], out[16];
	size_t n;
	/* Not indexed: rows reaching the high watermark are the tail. */
	store_rows(r, 3, 0, "objects/s");
	assert_int_equal(batch_index_seed(ix, 1, 0, r, 3, 6), 3);
	assert_range(ix, 1, 0, 0, 6);
	/* Continuing the tail backwards. */
	append(ix, 1, 1, "objects/t", 2, 20);   /* 20..23 */
	store_rows(r, 4, 14, "objects/s");      /* 14..21: overlaps the tail */
	assert_int_equal(batch_index_seed(ix, 1, 1, r, 4, 24), 3);
	assert_range(ix, 1, 1, 14, 24);
	assert_true(batch_index_rows(ix, 1, 1, 14, out, 16, &n, NULL));
	assert_int_equal(n, 5);
	assert_string_equal(out[0].object_key, "objects/s");
	assert_int_equal(out[0].object_size, 8192);
	assert_string_equal(out[3].object_key, "objects/t");
	/* The bound: only the rows nearest the tail. */
	store_rows(r, 7, 0, "objects/s");       /* 0..13, 7 rows; room for 3 */
	assert_int_equal(batch_index_seed(ix, 1, 1, r, 7, 24), 3);
	assert_range(ix, 1, 1, 8, 24);
	/* Appends after a seed continue the tail. */
	append(ix, 1, 1, "objects/u", 1, 24);
	assert_range(ix, 1, 1, 10, 26);
	/* Store rows after the tail (commits it did not see) continue it. */
	store_rows(r, 2, 26, "objects/v");
	assert_int_equal(batch_index_seed(ix, 1, 1, r, 2, 30), 2);
	assert_range(ix, 1, 1, 14, 30);
	batch_index_free(ix);
}

/* The run behind the tail: rows that reach neither the tail nor the high
 * watermark; lookups inside it only; continued by the next rows, started
 * over by others; trimmed and dropped with the tail. */
static void test_behind(void **state)
{
	(void)state;
	struct batch_index *ix = batch_index_new(BIG, 8);
	struct meta_batch_row r[8], out[16];
	size_t n;
	int64_t end;
	append(ix, 1, 0, "objects/t", 2, 100);  /* tail 100..103 */
	store_rows(r, 3, 10, "objects/a");      /* 10..15 */
	assert_int_equal(batch_index_seed(ix, 1, 0, r, 3, 104), 3);
	assert_range(ix, 1, 0, 100, 104);       /* the tail as it was */
	assert_true(batch_index_rows(ix, 1, 0, 12, out, 16, &n, &end));
	assert_int_equal(n, 2);
	assert_int_equal(out[0].base_offset, 12);
	assert_int_equal(end, 16);               /* the behind run's end */
	assert_false(batch_index_rows(ix, 1, 0, 16, out, 16, &n, &end)); /* past it */
	assert_false(batch_index_rows(ix, 1, 0, 9, out, 16, &n, &end));  /* before it */
	/* Continued (overlapping rows skipped), past its bound: the newest. */
	store_rows(r, 7, 14, "objects/b");      /* 14..27 */
	assert_int_equal(batch_index_seed(ix, 1, 0, r, 7, 104), 6);
	assert_false(batch_index_rows(ix, 1, 0, 11, out, 16, &n, &end));
	assert_true(batch_index_rows(ix, 1, 0, 12, out, 16, &n, &end));
	assert_int_equal(n, 8);
	assert_int_equal(end, 28);
	assert_string_equal(out[7].object_key, "objects/b");
	/* Elsewhere: started over. */
	store_rows(r, 2, 50, "objects/c");
	assert_int_equal(batch_index_seed(ix, 1, 0, r, 2, 104), 2);
	assert_false(batch_index_rows(ix, 1, 0, 20, out, 16, &n, &end));
	assert_true(batch_index_rows(ix, 1, 0, 50, out, 16, &n, &end));
	/* A partition with no tail: rows short of the high watermark. */
	store_rows(r, 2, 0, "objects/d");
	assert_int_equal(batch_index_seed(ix, 1, 5, r, 2, 40), 2);
	assert_false(batch_index_range(ix, 1, 5, &(int64_t){ 0 }, &end));
	assert_true(batch_index_rows(ix, 1, 5, 0, out, 16, &n, &end));
	assert_int_equal(end, 4);
	/* Trims take both runs; a partition left empty goes. */
	batch_index_trim(ix, 1, 0, 102);
	assert_false(batch_index_rows(ix, 1, 0, 50, out, 16, &n, &end));
	assert_range(ix, 1, 0, 102, 104);
	batch_index_trim(ix, 1, 5, 4);
	assert_int_equal(batch_index_partitions(ix), 1);
	size_t bytes = batch_index_bytes(ix);
	batch_index_drop(ix, 1, 0);
	assert_true(batch_index_bytes(ix) < bytes);
	assert_int_equal(batch_index_partitions(ix), 0);
	batch_index_free(ix);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_lookup),
		cmocka_unit_test(test_gap),
		cmocka_unit_test(test_rows_bound),
		cmocka_unit_test(test_bytes_bound),
		cmocka_unit_test(test_trim_drop),
		cmocka_unit_test(test_seed),
		cmocka_unit_test(test_behind),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
