/* test_cache.c — the read cache: LRU bound, whole objects, ranges loaded
 * ahead through cache_load (mem store on a libuv loop): waiters, joins,
 * the in-flight and unread bounds, failures, drop after reading, the
 * furthest of overlapping ranges, loads found from inside, references
 * held past eviction (responses in flight) returning pooled buffers, and
 * the pool's fresh blocks mapped before their first touch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <unistd.h>
#include <uv.h>

#include "base/buf.h"
#include "base/err.h"
#include "objstore/objstore.h"
#include "storage/cache.h"

static uint8_t *filled(size_t n, uint8_t v)
{
	uint8_t *p = malloc(n);
	assert_non_null(p);
	memset(p, v, n);
	return p;
}

static void test_lru_bound(void **state)
{
	(void)state;
	struct cache *c = cache_new(100);
	cache_put(c, "a", filled(40, 1), 40, 0);
	cache_put(c, "b", filled(40, 2), 40, 0);
	struct cache_obj *o = cache_get(c, "a"); /* a is now the most recent */
	assert_non_null(o);
	cache_put(c, "c", filled(40, 3), 40, 0);     /* evicts b */
	assert_null(cache_get(c, "b"));
	assert_int_equal(cache_bytes(c), 80);
	cache_put(c, "d", filled(200, 4), 200, 0);   /* larger than the cache */
	assert_null(cache_get(c, "d"));
	/* a held by us survives eviction */
	cache_put(c, "e", filled(40, 5), 40, 0);
	cache_put(c, "f", filled(40, 6), 40, 0);
	assert_int_equal(o->data[39], 1);
	cache_obj_unref(o);
	cache_free(c);
}

struct waited {
	int calls;
	int err;
};

static void on_loaded(void *arg, int err)
{
	struct waited *w = arg;
	w->calls++;
	w->err = err;
}

/* A loop, and a mem store holding obj (1000 bytes: 0, 1, 2, ...) as key. */
static struct objstore *mem_store(uv_loop_t *loop, uint8_t obj[1000], const char *key)
{
	assert_int_equal(uv_loop_init(loop), 0);
	struct objstore *s;
	assert_int_equal(objstore_mem_open(&s), 0);
	for (int i = 0; i < 1000; i++)
		obj[i] = (uint8_t)i;
	assert_int_equal(objstore_put(s, key, obj, 1000), 0);
	return s;
}

static void test_range_load(void **state)
{
	(void)state;
	uv_loop_t loop;
	uint8_t obj[1000];
	struct objstore *s = mem_store(&loop, obj, "k");

	struct cache *c = cache_new(1000);
	struct waited w1 = { 0 }, w2 = { 0 };
	assert_int_equal(cache_load(c, s, &loop, "k", 100, 200, on_loaded, &w1), 0);
	assert_true(cache_has_range(c, "k", 100));
	assert_false(cache_has_range(c, "k", 101));
	/* a second reader joins the load in flight */
	assert_int_equal(cache_wait(c, "k", 100, on_loaded, &w2), 0);
	assert_int_equal(cache_wait(c, "k", 300, on_loaded, &w2), SL_ENOTFOUND);
	/* read-ahead without a waiter; then the in-flight bound (half) */
	assert_int_equal(cache_load(c, s, &loop, "k", 300, 250, NULL, NULL), 0);
	assert_int_equal(cache_load(c, s, &loop, "k", 550, 100, NULL, NULL), SL_EBUSY);
	/* larger than a quarter of the cache: never */
	assert_int_equal(cache_load(c, s, &loop, "k", 0, 251, NULL, NULL), SL_EINVAL);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(w1.calls, 1);
	assert_int_equal(w1.err, 0);
	assert_int_equal(w2.calls, 1);
	assert_int_equal(cache_loads(c), 2);
	assert_int_equal(cache_load_bytes(c), 450);

	/* loaded: cached, with its base */
	assert_int_equal(cache_load(c, s, &loop, "k", 100, 200, on_loaded, &w1), 1);
	struct cache_obj *o = cache_get_range(c, "k", 100);
	assert_non_null(o);
	assert_int_equal(o->base, 100);
	assert_int_equal(o->len, 200);
	assert_memory_equal(o->data, obj + 100, 200);
	cache_obj_unref(o);
	assert_null(cache_get(c, "k")); /* not the whole object */

	/* unread ranges are bounded (3/4 of the cache with what loads):
	 * 250 + 250 + 100 unread, + 250 > 750 */
	assert_int_equal(cache_load(c, s, &loop, "k", 600, 250, NULL, NULL), 0);
	assert_int_equal(cache_load(c, s, &loop, "k", 850, 100, NULL, NULL), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	/* young unread ranges are about to be read: the new load waits */
	assert_int_equal(cache_load(c, s, &loop, "k", 0, 250, NULL, NULL), SL_EBUSY);
	assert_true(cache_has_range(c, "k", 300));
	/* a range read is no longer unread: once 850 is read the load fits,
	 * and nothing goes though the others are past the stale age */
	cache_set_unread_stale_ms(c, 20);
	usleep(25 * 1000);
	uv_update_time(&loop);
	o = cache_get_range(c, "k", 850);
	assert_non_null(o);
	cache_obj_unref(o);
	assert_int_equal(cache_load(c, s, &loop, "k", 0, 250, NULL, NULL), 0);
	assert_true(cache_has_range(c, "k", 300));
	assert_true(cache_has_range(c, "k", 600));
	uv_run(&loop, UV_RUN_DEFAULT);
	/* 300 and 600 stale, 0 young: the oldest stale one (300) makes room
	 * for 50 more, and only it */
	assert_int_equal(cache_load(c, s, &loop, "k", 950, 50, NULL, NULL), 0);
	assert_false(cache_has_range(c, "k", 300));
	assert_true(cache_has_range(c, "k", 600));
	assert_true(cache_has_range(c, "k", 0));
	uv_run(&loop, UV_RUN_DEFAULT);
	o = cache_get_range(c, "k", 600);
	assert_false(cache_has_range(c, "k", 300));
	assert_true(cache_has_range(c, "k", 850));
	uv_run(&loop, UV_RUN_DEFAULT);
	/* dropping frees the bytes */
	cache_drop_range(c, "k", 600);
	assert_false(cache_has_range(c, "k", 600));
	assert_int_equal(o->data[0], obj[600]); /* our reference stays valid */
	cache_obj_unref(o);

	/* a failed load calls its waiter with the error and caches nothing */
	struct waited w3 = { 0 };
	assert_int_equal(cache_load(c, s, &loop, "missing", 0, 10, on_loaded, &w3), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(w3.calls, 1);
	assert_true(w3.err < 0);
	assert_false(cache_has_range(c, "missing", 0));

	/* no cache: nothing is ever loaded */
	struct cache *off = cache_new(0);
	assert_int_equal(cache_load(off, s, &loop, "k", 0, 10, NULL, NULL), SL_EINVAL);
	cache_free(off);

	cache_free(c);
	objstore_close(s);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* What is in memory already is not loaded again, and is found from
 * inside: the whole object, or a range holding the bytes asked for. */
static void test_held(void **state)
{
	(void)state;
	uv_loop_t loop;
	uint8_t obj[1000];
	struct objstore *s = mem_store(&loop, obj, "k");
	assert_int_equal(objstore_put(s, "w", obj, sizeof obj), 0);

	struct cache *c = cache_new(2000);
	/* a whole object: contained, and no load of any range of it */
	uint8_t *copy = malloc(sizeof obj);
	assert_non_null(copy);
	memcpy(copy, obj, sizeof obj);
	cache_put(c, "w", copy, sizeof obj, 0);
	assert_true(cache_contains(c, "w"));
	assert_false(cache_contains(c, "k"));
	assert_int_equal(cache_load(c, s, &loop, "w", 100, 200, NULL, NULL), 1);
	assert_int_equal(cache_loads(c), 0);

	/* cache_contains does not make an object recent: "a" and "w" go
	 * first when room is needed */
	cache_put(c, "a", filled(400, 1), 400, 0);
	cache_put(c, "b", filled(400, 2), 400, 0);
	uint64_t hits = cache_hits(c), misses = cache_misses(c);
	assert_true(cache_contains(c, "w"));
	assert_true(cache_contains(c, "a"));
	assert_int_equal(cache_hits(c), hits);
	assert_int_equal(cache_misses(c), misses);
	cache_put(c, "d", filled(500, 3), 500, 0); /* 1800 + 500: w goes */
	assert_false(cache_contains(c, "w"));
	assert_true(cache_contains(c, "a"));
	cache_put(c, "e", filled(800, 4), 800, 0); /* 1300 + 800: a goes */
	assert_false(cache_contains(c, "a"));

	/* a range [100, 500) of k */
	assert_int_equal(cache_load(c, s, &loop, "k", 100, 400, NULL, NULL), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(cache_loads(c), 1);
	assert_int_equal(cache_range_end(c, "k", 100), 500);
	assert_int_equal(cache_range_end(c, "k", 499), 500);
	assert_int_equal(cache_range_end(c, "k", 500), 500); /* not held */
	assert_int_equal(cache_range_end(c, "k", 99), 99);
	assert_int_equal(cache_range_end(c, "x", 10), 10);
	/* inside it: nothing loaded; past its end: a load */
	assert_int_equal(cache_load(c, s, &loop, "k", 300, 200, NULL, NULL), 1);
	assert_int_equal(cache_loads(c), 1);
	/* found from inside, at the right bytes */
	struct cache_obj *o = cache_get_range(c, "k", 300);
	assert_non_null(o);
	assert_int_equal(o->base, 100);
	assert_memory_equal(o->data + 200, obj + 300, 100);
	cache_obj_unref(o);
	assert_null(cache_get_range(c, "k", 500));
	assert_int_equal(cache_load(c, s, &loop, "k", 300, 300, NULL, NULL), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(cache_loads(c), 2);
	/* two ranges of k: each found; dropping one keeps the other */
	assert_int_equal(cache_range_end(c, "k", 550), 600);
	cache_drop_range(c, "k", 100);
	assert_int_equal(cache_range_end(c, "k", 200), 200);
	assert_int_equal(cache_range_end(c, "k", 450), 600);
	cache_drop_range(c, "k", 300);
	assert_int_equal(cache_range_end(c, "k", 450), 450);
	assert_null(cache_get_range(c, "k", 450));

	cache_free(c);
	objstore_close(s);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* Overlapping ranges: the one reaching furthest is taken. A load in
 * flight is found from inside it: a wait, or a load it holds all of,
 * joins it rather than reading the bytes again. */
static void test_furthest_and_in_flight(void **state)
{
	(void)state;
	uv_loop_t loop;
	uint8_t obj[1000];
	struct objstore *s = mem_store(&loop, obj, "k");

	struct cache *c = cache_new(4000);
	/* [0, 200) first, then [100, 600): the second reaches further */
	assert_int_equal(cache_load(c, s, &loop, "k", 0, 200, NULL, NULL), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(cache_load(c, s, &loop, "k", 100, 500, NULL, NULL), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(cache_loads(c), 2);
	assert_int_equal(cache_range_end(c, "k", 50), 200);
	assert_int_equal(cache_range_end(c, "k", 150), 600);
	struct cache_obj *o = cache_get_range(c, "k", 150);
	assert_non_null(o);
	assert_int_equal(o->base, 100);
	assert_memory_equal(o->data + 50, obj + 150, 300);
	cache_obj_unref(o);
	/* held by the further one: nothing loaded */
	assert_int_equal(cache_load(c, s, &loop, "k", 150, 400, NULL, NULL), 1);

	/* [600, 900) in flight: neither cached nor listed as cached */
	struct waited w1 = { 0 }, w2 = { 0 }, w3 = { 0 };
	assert_int_equal(cache_load(c, s, &loop, "k", 600, 300, NULL, NULL), 0);
	assert_int_equal(cache_loads(c), 3);
	assert_int_equal(cache_range_end(c, "k", 700), 700);
	assert_null(cache_get_range(c, "k", 700));
	/* ahead of 150: cached to 600, then on its way to 900 */
	assert_int_equal(cache_ahead_end(c, "k", 150), 900);
	assert_int_equal(cache_ahead_end(c, "k", 700), 900);
	assert_int_equal(cache_ahead_end(c, "k", 900), 900);
	assert_int_equal(cache_ahead_end(c, "x", 10), 10);
	/* a fetch landing inside it waits for it */
	assert_int_equal(cache_wait(c, "k", 700, on_loaded, &w1), 0);
	assert_int_equal(cache_wait(c, "k", 900, on_loaded, &w1), SL_ENOTFOUND);
	/* a load it holds all of joins it; one reaching past it does not */
	assert_int_equal(cache_load(c, s, &loop, "k", 650, 100, on_loaded, &w2), 0);
	assert_int_equal(cache_loads(c), 3);
	assert_int_equal(cache_load(c, s, &loop, "k", 800, 200, on_loaded, &w3), 0);
	assert_int_equal(cache_loads(c), 4);
	assert_int_equal(cache_ahead_end(c, "k", 0), 1000);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(w1.calls, 1);
	assert_int_equal(w1.err, 0);
	assert_int_equal(w2.calls, 1);
	assert_int_equal(w3.calls, 1);
	/* the joined load's bytes are found from inside */
	o = cache_get_range(c, "k", 650);
	assert_non_null(o);
	assert_int_equal(o->base, 600);
	assert_memory_equal(o->data + 50, obj + 650, 100);
	cache_obj_unref(o);
	assert_int_equal(cache_range_end(c, "k", 850), 1000);
	/* nothing in flight is listed any more */
	assert_int_equal(cache_wait(c, "k", 700, on_loaded, &w1), SL_ENOTFOUND);
	/* dropping the further range leaves the nearer one found */
	cache_drop_range(c, "k", 100);
	assert_int_equal(cache_range_end(c, "k", 150), 200);

	cache_free(c);
	objstore_close(s);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* Responses whose pieces point into a cached object hold references
 * (cache_obj_ref): eviction keeps the bytes (patched in place by their
 * readers) until the last one goes, and a pooled buffer then goes back
 * to the pool with its size (kbuf_release with pool_cap), once. */
static void test_refs_past_eviction(void **state)
{
	(void)state;
	kbuf_pool_enable(8u << 20);
	size_t cap = 300 * 1024; /* -> a 512 KiB block */
	uint8_t *data = kbuf_alloc(&cap);
	assert_non_null(data);
	assert_int_equal(cap, 512 * 1024);
	memset(data, 7, 300 * 1024);
	struct cache *c = cache_new(700 * 1024);
	cache_put(c, "obj", data, 300 * 1024, cap);
	struct cache_obj *o = cache_get(c, "obj");
	assert_non_null(o);
	assert_ptr_equal(o->data, data);
	/* two responses in flight take references; the fetch drops its own */
	cache_obj_ref(o);
	cache_obj_ref(o);
	cache_obj_unref(o);
	o->data[0] = 1; /* patched in place */
	/* evicted: another object needs the room */
	cache_put(c, "other", filled(500 * 1024, 9), 500 * 1024, 0);
	assert_false(cache_contains(c, "obj"));
	assert_int_equal(cache_bytes(c), 500 * 1024);
	assert_int_equal(o->data[0], 1);
	assert_int_equal(o->data[300 * 1024 - 1], 7);
	/* the first write completes; the second response is dropped later */
	cache_obj_unref(o);
	assert_int_equal(o->data[1], 7);
	cache_obj_unref(o);
	/* the block went back to the pool: the next of its class is it */
	size_t cap2 = 400 * 1024;
	uint8_t *again = kbuf_alloc(&cap2);
	assert_ptr_equal(again, data);
	assert_int_equal(cap2, 512 * 1024);
	kbuf_release(again, cap2);
	cache_free(c);
}

/* Pages of [p, p+n) resident now. */
static size_t resident_pages(const uint8_t *p, size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uintptr_t start = (uintptr_t)p & ~(uintptr_t)(page - 1);
	size_t pages = ((uintptr_t)p + n - start + page - 1) / page;
	unsigned char *v = calloc(pages, 1);
	assert_non_null(v);
	assert_int_equal(mincore((void *)start, pages * page, v), 0);
	size_t k = 0;
	for (size_t i = 0; i < pages; i++)
		k += v[i] & 1;
	free(v);
	return k;
}

/* A block the pool has none of yet (a frame's, a response's) comes with
 * its pages already mapped, so the socket read or the encoding that
 * first writes it takes no page fault per page; so does a response
 * buffer grown into the pool's sizes. Its bytes are usable as before. */
static void test_pool_fresh_blocks_mapped(void **state)
{
	(void)state;
	kbuf_pool_enable(8u << 20);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *probe = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(probe != MAP_FAILED);
	bool populate = madvise(probe, page, 23 /* MADV_POPULATE_WRITE */) == 0;
	munmap(probe, page);
	if (!populate)
		skip(); /* before Linux 5.14: the pages fault in as before */
	struct kbuf b;
	kbuf_init(&b);
	uint8_t x[1000];
	memset(x, 6, sizeof x);
	for (int i = 0; i < 1100; i++) /* ~1.1 MB: grows into a 2 MiB block */
		kbuf_put(&b, x, sizeof x);
	assert_false(b.oom);
	assert_int_equal(b.cap, 2u << 20);
	assert_true(resident_pages(b.data, b.cap) >= b.cap / page);
	assert_int_equal(b.data[1100 * 1000 - 1], 6);
	kbuf_free(&b);

	size_t cap = 3u << 20; /* a 4 MiB class: nothing of it pooled yet */
	uint8_t *d = kbuf_alloc(&cap);
	assert_non_null(d);
	assert_int_equal(cap, 4u << 20);
	size_t pages = cap / page;
	assert_true(resident_pages(d, cap) >= pages);
	memset(d, 5, cap);
	assert_int_equal(d[cap - 1], 5);
	kbuf_release(d, cap);
}

/* An object the write path puts in as pieces: each batch is read where
 * its frame holds it (no copy), a read across pieces or outside them
 * misses, the frames live on while referenced (evicted or not) and go
 * back to the pool with the last reference; a piece without a frame is
 * copied. */
static void test_pieces(void **state)
{
	(void)state;
	kbuf_pool_enable(8u << 20);
	size_t cap_a = 300 * 1024, cap_b = 300 * 1024;
	uint8_t *a = kbuf_alloc(&cap_a), *b = kbuf_alloc(&cap_b);
	assert_non_null(a);
	assert_non_null(b);
	memset(a, 1, 300 * 1024);
	memset(b, 2, 300 * 1024);
	struct kshared *fa = kshared_new(a, cap_a), *fb = kshared_new(b, cap_b);
	uint8_t loose[100];
	memset(loose, 3, sizeof loose);
	/* header 16 | a+10: 1000 | b+20: 2000 | a+5000: 500 | loose: 100 | footer */
	struct kpiece p[] = {
		{ 16, a + 10, 1000, fa },
		{ 1016, b + 20, 2000, fb },
		{ 3016, a + 5000, 500, fa },
		{ 3516, loose, sizeof loose, NULL },
	};
	struct cache *c = cache_new(700 * 1024);
	cache_put_pieces(c, "obj", 3700, p, 4);
	assert_int_equal(cache_bytes(c), 3700);
	/* the produce requests are answered: their references go */
	kshared_unref(fa);
	kshared_unref(fb);
	memset(loose, 0, sizeof loose);
	struct cache_obj *o = cache_get(c, "obj");
	assert_non_null(o);
	assert_ptr_equal(cache_obj_bytes(o, 16, 1000), a + 10);
	assert_ptr_equal(cache_obj_bytes(o, 1016, 2000), b + 20);
	assert_ptr_equal(cache_obj_bytes(o, 1100, 100), b + 104);
	assert_ptr_equal(cache_obj_bytes(o, 3016, 500), a + 5000);
	uint8_t *l = cache_obj_bytes(o, 3516, 100);
	assert_non_null(l);
	assert_true(l != loose);
	assert_int_equal(l[0], 3);
	assert_int_equal(l[99], 3);
	assert_null(cache_obj_bytes(o, 0, 16));      /* header: not kept */
	assert_null(cache_obj_bytes(o, 1000, 100));  /* across two pieces */
	assert_null(cache_obj_bytes(o, 3516, 101));  /* past the last */
	assert_null(cache_obj_bytes(o, 3616, 1));    /* footer */
	/* evicted while a response still points into it */
	cache_put(c, "other", filled(699 * 1024, 9), 699 * 1024, 0);
	assert_false(cache_contains(c, "obj"));
	assert_int_equal(a[10], 1);
	assert_int_equal(b[20], 2);
	cache_obj_unref(o);
	/* both frames went back to the pool */
	size_t cap = 400 * 1024;
	uint8_t *x = kbuf_alloc(&cap), *y = kbuf_alloc(&cap);
	assert_true((x == a && y == b) || (x == b && y == a));
	kbuf_release(x, cap);
	kbuf_release(y, cap);
	cache_free(c);
}

/* Pins of evicted objects are counted, and refused past the bound. */
static void test_pins_bounded(void **state)
{
	(void)state;
	struct cache *c = cache_new(100);
	cache_put(c, "a", filled(60, 1), 60, 0);
	struct cache_obj *a = cache_get(c, "a");
	assert_non_null(a);
	assert_true(cache_obj_pin(a, 50));         /* in the cache: free */
	cache_put(c, "b", filled(60, 2), 60, 0);   /* evicts a, pinned: 60 */
	struct cache_obj *b = cache_get(c, "b");
	assert_non_null(b);
	assert_int_equal(a->data[0], 1);           /* still there */
	assert_false(cache_obj_pin(b, 50));        /* 60 > 50 evicted */
	cache_obj_ref(a);                          /* a reference per pin */
	assert_true(cache_obj_pin(a, 50));         /* already pinned: fine */
	cache_obj_unpin(a);
	cache_obj_unref(a);
	cache_obj_unpin(a);
	cache_obj_unref(a);
	assert_true(cache_obj_pin(b, 50));         /* a's 60 are gone */
	cache_put(c, "c", filled(60, 3), 60, 0);   /* evicts b: 60 */
	/* An object evicted before its first pin counts from that pin. */
	struct cache_obj *cc = cache_get(c, "c");
	cache_put(c, "d", filled(60, 4), 60, 0);   /* evicts c, unpinned */
	assert_false(cache_obj_pin(cc, 100));      /* 60 + 60 > 100 */
	cache_obj_unpin(b);
	assert_true(cache_obj_pin(cc, 100));       /* 60 <= 100 */
	cache_obj_unpin(cc);
	cache_obj_unref(cc);
	cache_obj_unref(b);
	cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lru_bound),
		cmocka_unit_test(test_range_load),
		cmocka_unit_test(test_held),
		cmocka_unit_test(test_furthest_and_in_flight),
		cmocka_unit_test(test_refs_past_eviction),
		cmocka_unit_test(test_pieces),
		cmocka_unit_test(test_pool_fresh_blocks_mapped),
		cmocka_unit_test(test_pins_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
