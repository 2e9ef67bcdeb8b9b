/* test_buf.c — the loop's buffer pool: blocks released are handed out
 * again by size class, and a pool at its bound makes room for a released
 * block by freeing the blocks released longest ago (of any size), so a
 * catch-up's 4 MiB buffers are kept even after a produce load filled the
 * pool with 1 MiB frames (only a block of at most a quarter of the
 * bound displaces others). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/buf.h"

#define MiB ((size_t)1 << 20)

static uint8_t *take(size_t size)
{
	size_t cap = size;
	uint8_t *d = kbuf_alloc(&cap);
	assert_non_null(d);
	assert_int_equal(cap, size);
	return d;
}

/* A pool bound at 8 MiB, holding eight 1 MiB blocks released in order. */
static void fill_with_small(uint8_t *small[8])
{
	kbuf_pool_enable(8 * MiB);
	for (int i = 0; i < 8; i++)
		small[i] = take(MiB);
	for (int i = 0; i < 8; i++)
		kbuf_release(small[i], MiB);
	assert_int_equal(kbuf_pool_bytes(MiB), 8 * MiB);
}

static int empty_pool(void **state)
{
	(void)state;
	kbuf_pool_enable(0);
	assert_int_equal(kbuf_pool_bytes(0), 0);
	return 0;
}

static void test_reuse_by_class(void **state)
{
	(void)state;
	kbuf_pool_enable(4 * MiB);
	uint8_t *a = take(MiB);
	kbuf_release(a, MiB);
	assert_int_equal(kbuf_pool_bytes(MiB), MiB);
	/* Exactly its class: a 512 KiB request does not take the 1 MiB block. */
	uint8_t *half = take(MiB / 2);
	assert_true(half != a);
	assert_ptr_equal(take(MiB), a);
	assert_int_equal(kbuf_pool_bytes(0), 0);
	kbuf_release(half, MiB / 2);
	kbuf_release(a, MiB);
	assert_int_equal(kbuf_pool_bytes(0), MiB + MiB / 2);
}

/* A pool full of 1 MiB blocks keeps a released 2 MiB one: the two
 * released longest ago go. */
static void test_large_displaces_oldest(void **state)
{
	(void)state;
	uint8_t *small[8];
	fill_with_small(small);
	uint8_t *big = take(2 * MiB);
	kbuf_release(big, 2 * MiB);
	assert_int_equal(kbuf_pool_bytes(2 * MiB), 2 * MiB);
	assert_int_equal(kbuf_pool_bytes(MiB), 6 * MiB);
	assert_int_equal(kbuf_pool_bytes(0), 8 * MiB);
	assert_ptr_equal(take(2 * MiB), big);
	/* The newest are handed out first; small[0] and small[1] went. */
	for (int i = 7; i >= 2; i--)
		assert_ptr_equal(take(MiB), small[i]);
	assert_int_equal(kbuf_pool_bytes(0), 0);
	for (int i = 2; i < 8; i++)
		kbuf_release(small[i], MiB);
	kbuf_release(big, 2 * MiB);
}

/* A block taken out and released again counts as released then: it
 * outlives blocks released before it, and only as many blocks go as make
 * room. */
static void test_age_is_the_last_release(void **state)
{
	(void)state;
	uint8_t *small[8];
	fill_with_small(small);
	assert_ptr_equal(take(MiB), small[7]);
	uint8_t *x = malloc(MiB), *y = malloc(MiB);
	assert_non_null(x);
	assert_non_null(y);
	kbuf_release(x, MiB);         /* fits: 8 MiB */
	kbuf_release(small[7], MiB);  /* small[0] goes */
	kbuf_release(y, MiB);         /* small[1] goes */
	uint8_t *mid = take(2 * MiB); /* fresh */
	kbuf_release(mid, 2 * MiB);   /* small[2] and small[3] go */
	assert_int_equal(kbuf_pool_bytes(MiB), 6 * MiB);
	uint8_t *want[] = { y, small[7], x, small[6], small[5], small[4] };
	for (size_t i = 0; i < sizeof want / sizeof *want; i++)
		assert_ptr_equal(take(MiB), want[i]);
	for (size_t i = 0; i < sizeof want / sizeof *want; i++)
		kbuf_release(want[i], MiB);
	assert_int_equal(kbuf_pool_bytes(0), 8 * MiB);
}

/* Only a block of at most a quarter of the bound displaces others: a
 * larger one is kept only if it fits, so one big frame cannot empty the
 * pool. */
static void test_big_block_does_not_displace(void **state)
{
	(void)state;
	uint8_t *small[8];
	fill_with_small(small);
	uint8_t *half = take(4 * MiB);
	kbuf_release(half, 4 * MiB); /* half the bound: no room, freed */
	assert_int_equal(kbuf_pool_bytes(4 * MiB), 0);
	assert_int_equal(kbuf_pool_bytes(MiB), 8 * MiB);
	for (int i = 7; i >= 4; i--)
		assert_ptr_equal(take(MiB), small[i]);
	half = take(4 * MiB);
	kbuf_release(half, 4 * MiB); /* room: kept */
	assert_int_equal(kbuf_pool_bytes(4 * MiB), 4 * MiB);
	for (int i = 4; i < 8; i++)
		kbuf_release(small[i], MiB); /* fit: 8 MiB */
	assert_int_equal(kbuf_pool_bytes(4 * MiB), 4 * MiB);
	/* A small block displaces the big one, the oldest. */
	uint8_t *one = malloc(MiB);
	assert_non_null(one);
	kbuf_release(one, MiB);
	assert_int_equal(kbuf_pool_bytes(4 * MiB), 0);
	assert_int_equal(kbuf_pool_bytes(MiB), 5 * MiB);
}

/* A block larger than the whole bound is freed and empties nothing. */
static void test_larger_than_bound(void **state)
{
	(void)state;
	kbuf_pool_enable(2 * MiB);
	uint8_t *a = take(MiB);
	kbuf_release(a, MiB);
	uint8_t *huge = take(4 * MiB);
	kbuf_release(huge, 4 * MiB);
	assert_int_equal(kbuf_pool_bytes(0), MiB);
	assert_ptr_equal(take(MiB), a);
	kbuf_release(a, MiB);
	/* A lower bound trims the pool at once. */
	kbuf_pool_enable(MiB / 2);
	assert_int_equal(kbuf_pool_bytes(0), 0);
}

/* A growing kbuf takes the smallest pooled block that fits, at once (up
 * to 8 times its size), and gives its old one back when it outgrows it. */
static void test_kbuf_grows_into_pooled_block(void **state)
{
	(void)state;
	kbuf_pool_enable(8 * MiB);
	uint8_t *mid = take(2 * MiB);
	kbuf_release(mid, 2 * MiB);
	struct kbuf b;
	kbuf_init(&b);
	assert_non_null(kbuf_reserve(&b, 300 << 10));
	assert_ptr_equal(b.data, mid);
	assert_int_equal(b.cap, 2 * MiB);
	memset(b.data, 7, 300 << 10);
	b.len = 300 << 10;
	assert_non_null(kbuf_reserve(&b, 3 * MiB));
	assert_int_equal(b.cap, 4 * MiB);
	assert_int_equal(b.data[(300 << 10) - 1], 7);
	assert_int_equal(kbuf_pool_bytes(2 * MiB), 2 * MiB);
	kbuf_free(&b);
	assert_int_equal(kbuf_pool_bytes(4 * MiB), 4 * MiB);
	/* A 256 KiB buffer takes the 2 MiB block (8 times), then not the
	 * 4 MiB one (16 times): a fresh block. */
	struct kbuf s, t;
	kbuf_init(&s);
	kbuf_init(&t);
	assert_non_null(kbuf_reserve(&s, 200 << 10));
	assert_ptr_equal(s.data, mid);
	assert_non_null(kbuf_reserve(&t, 200 << 10));
	assert_int_equal(t.cap, 256 << 10);
	assert_int_equal(kbuf_pool_bytes(4 * MiB), 4 * MiB);
	kbuf_free(&s);
	kbuf_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_reuse_by_class, empty_pool),
		cmocka_unit_test_teardown(test_large_displaces_oldest, empty_pool),
		cmocka_unit_test_teardown(test_age_is_the_last_release, empty_pool),
		cmocka_unit_test_teardown(test_big_block_does_not_displace, empty_pool),
		cmocka_unit_test_teardown(test_larger_than_bound, empty_pool),
		cmocka_unit_test_teardown(test_kbuf_grows_into_pooled_block, empty_pool),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
