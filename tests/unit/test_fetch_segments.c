/* test_fetch_segments.c — Fetch responses written in pieces: the encoded
 * fields with the records left out (kmsg_fetch_resp_encode_gaps) and the
 * records from where they are (a partition's possibly in several pieces
 * at one offset: cached objects and the fetch's buffer), put together as
 * the server writes them (response_pieces), must be exactly the bytes of the contiguous encoder,
 * at every Fetch version, for hand-built responses (several topics and
 * partitions, null, empty, short and long records, error partitions,
 * tagged fields) and for the codec's pseudo-random ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/arena.h"
#include "base/buf.h"
#include "kmsg.h"
#include "net/server.h"
#include "proto/kerr.h"

#define TEST_ARENA_BYTES (16 * 1024 * 1024)

/* The pieces of head with gaps g[0..n) (as the server writes them) put
 * together must be whole's bytes. */
static void assert_pieces_whole(const struct kbuf *head, const struct kmsg_gap *g, size_t n,
				const struct kbuf *whole, int16_t v)
{
	uv_buf_t *bufs = malloc((2 * n + 1) * sizeof *bufs);
	assert_non_null(bufs);
	size_t nb = response_pieces(head->data, head->len, g, n, bufs);
	assert_true(nb <= 2 * n + 1);
	uint8_t *cat = malloc(whole->len ? whole->len : 1);
	assert_non_null(cat);
	size_t at = 0;
	for (size_t i = 0; i < nb; i++) {
		assert_true(bufs[i].len > 0);
		assert_true(at + bufs[i].len <= whole->len);
		memcpy(cat + at, bufs[i].base, bufs[i].len);
		at += bufs[i].len;
	}
	assert_int_equal(at, whole->len);
	if (memcmp(cat, whole->data, whole->len) != 0)
		fail_msg("pieces differ from the contiguous encoding at v%d", v);
	free(cat);
	free(bufs);
}

/* Encode m both ways at version v and compare; min_len as the gap list's.
 * Returns how many gaps the pieces had. */
static size_t check_same(const struct kmsg_fetch_resp *m, int16_t v, size_t min_len)
{
	struct kbuf whole, head;
	kbuf_init(&whole);
	kbuf_init(&head);
	/* A header in front, as request_begin_response leaves it. */
	kbuf_put_i32(&whole, 0);
	kbuf_put_i32(&whole, 1234);
	kbuf_put_i32(&head, 0);
	kbuf_put_i32(&head, 1234);
	kmsg_fetch_resp_encode(&whole, v, m);
	struct kmsg_gaps g = { .min_len = min_len };
	kmsg_fetch_resp_encode_gaps(&head, v, m, &g);
	assert_false(whole.oom);
	assert_false(head.oom);
	assert_int_equal(head.len + g.bytes, whole.len);

	size_t sum = 0;
	for (size_t i = 0; i < g.n; i++) {
		assert_true(g.v[i].len >= min_len && g.v[i].len > 0);
		assert_true(g.v[i].at <= head.len);
		if (i)
			assert_true(g.v[i].at >= g.v[i - 1].at);
		sum += g.v[i].len;
	}
	assert_int_equal(sum, g.bytes);

	assert_pieces_whole(&head, g.v, g.n, &whole, v);
	size_t n = g.n;
	free(g.v);
	kbuf_free(&whole);
	kbuf_free(&head);
	return n;
}

static kbytes fill_records(struct arena *a, size_t len, uint8_t seed)
{
	uint8_t *p = arena_alloc(a, len ? len : 1);
	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
	return (kbytes){ p, (int32_t)len };
}

/* Two topics: records of several sizes, null and empty records, error
 * partitions, aborted transactions (null and empty), tagged fields. */
static void build(struct kmsg_fetch_resp *m, struct arena *a)
{
	kmsg_fetch_resp_init(m);
	m->throttle_time_ms = 5;
	m->error_code = 0;
	m->session_id = 0;
	m->responses_count = 2;
	m->responses = arena_alloc(a, 2 * sizeof *m->responses);
	assert_non_null(m->responses);
	static const size_t sizes[] = { 3000, 0, 1, 70000, 1023, 1024, 5000 };
	const size_t np = sizeof sizes / sizeof sizes[0] + 2;
	for (int t = 0; t < 2; t++) {
		struct kmsg_fetch_resp_fetchable_topic_response *rt = &m->responses[t];
		kmsg_fetch_resp_fetchable_topic_response_init(rt);
		rt->topic = t ? KSTR("other") : KSTR("topic-a");
		for (int i = 0; i < 16; i++)
			rt->topic_id[i] = (uint8_t)(t * 16 + i + 1);
		rt->partitions_count = (int32_t)np;
		rt->partitions = arena_alloc(a, np * sizeof *rt->partitions);
		assert_non_null(rt->partitions);
		for (size_t j = 0; j < np; j++) {
			struct kmsg_fetch_resp_partition_data *rp = &rt->partitions[j];
			kmsg_fetch_resp_partition_data_init(rp);
			rp->partition_index = (int32_t)j;
			rp->high_watermark = 1000 + (int64_t)j;
			rp->last_stable_offset = rp->high_watermark;
			rp->log_start_offset = 0;
			rp->aborted_transactions_count = 0;
			rp->preferred_read_replica = -1;
			if (j < np - 2) {
				rp->error_code = KERR_NONE;
				rp->records = fill_records(a, sizes[j], (uint8_t)(j + t));
			} else if (j == np - 2) {
				/* An error partition: null records. */
				rp->error_code = KERR_OFFSET_OUT_OF_RANGE;
				rp->high_watermark = -1;
				rp->aborted_transactions_count = -1;
				rp->records = KBYTES_NULL;
			} else {
				/* An error after a failed read: empty, not null. */
				rp->error_code = KERR_KAFKA_STORAGE_ERROR;
				rp->records = (kbytes){ NULL, 0 };
				rp->has_current_leader = true;
				rp->current_leader.leader_id = 1;
				rp->current_leader.leader_epoch = 0;
			}
		}
	}
}

static void test_hand_built(void **state)
{
	(void)state;
	for (int16_t v = KMSG_FETCH_MIN_VERSION; v <= KMSG_FETCH_MAX_VERSION; v++) {
		struct arena a;
		struct kmsg_fetch_resp m;
		arena_init(&a, TEST_ARENA_BYTES);
		build(&m, &a);
		/* Every non-empty records a gap; or only those from 1 KiB. */
		assert_int_equal(check_same(&m, v, 0), 12);
		assert_int_equal(check_same(&m, v, 1024), 8);
		/* No records at all. */
		for (int t = 0; t < m.responses_count; t++)
			for (int32_t j = 0; j < m.responses[t].partitions_count; j++)
				m.responses[t].partitions[j].records = KBYTES_NULL;
		assert_int_equal(check_same(&m, v, 0), 0);
		/* A top-level error and no topics. */
		m.error_code = KERR_FETCH_SESSION_ID_NOT_FOUND;
		m.responses_count = 0;
		assert_int_equal(check_same(&m, v, 0), 0);
		arena_free(&a);
	}
}

static void test_random(void **state)
{
	(void)state;
	for (int16_t v = KMSG_FETCH_MIN_VERSION; v <= KMSG_FETCH_MAX_VERSION; v++) {
		for (uint32_t s = 1; s <= 32; s++) {
			struct arena a;
			struct kmsg_fetch_resp m;
			uint32_t seed = s * 2654435761u + (uint32_t)v;
			arena_init(&a, TEST_ARENA_BYTES);
			kmsg_fetch_resp_fill_test(&m, v, &a, &seed);
			check_same(&m, v, 0);
			check_same(&m, v, 4);
			arena_free(&a);
		}
	}
}

/* The pieces of a buffer with gaps at its start, its end and twice at
 * one place. */
static void test_pieces_edges(void **state)
{
	(void)state;
	const uint8_t head[] = "abcdef";
	const uint8_t x[] = "XY", y[] = "Z";
	struct kmsg_gap g[] = {
		{ 0, x, 2 }, { 3, y, 1 }, { 3, x, 2 }, { 6, y, 1 },
	};
	uv_buf_t bufs[9];
	size_t n = response_pieces(head, 6, g, 4, bufs);
	char out[32];
	size_t at = 0;
	for (size_t i = 0; i < n; i++) {
		memcpy(out + at, bufs[i].base, bufs[i].len);
		at += bufs[i].len;
	}
	out[at] = 0;
	assert_string_equal(out, "XYabcZXYdefZ");
	assert_int_equal(n, 6);
}

/* A partition's records as the fetch writes them: several pieces at its
 * gap's offset (from different cached objects and the fetch's buffer).
 * Each gap of m's encoding is split into up to `parts` pieces, each a
 * copy in a buffer of its own; the pieces must give the contiguous
 * encoder's bytes. */
static void check_split(const struct kmsg_fetch_resp *m, int16_t v, size_t min_len, size_t parts,
			uint32_t *seed)
{
	struct kbuf whole, head;
	kbuf_init(&whole);
	kbuf_init(&head);
	kbuf_put_i32(&whole, 0);
	kbuf_put_i32(&head, 0);
	kmsg_fetch_resp_encode(&whole, v, m);
	struct kmsg_gaps g = { .min_len = min_len };
	kmsg_fetch_resp_encode_gaps(&head, v, m, &g);
	assert_int_equal(head.len + g.bytes, whole.len);

	struct kmsg_gap *split = malloc((g.n * parts + 1) * sizeof *split);
	uint8_t **copies = malloc((g.n * parts + 1) * sizeof *copies);
	assert_non_null(split);
	assert_non_null(copies);
	size_t ns = 0;
	for (size_t i = 0; i < g.n; i++) {
		size_t left = g.v[i].len, pos = 0;
		for (size_t q = 0; q < parts && left; q++) {
			*seed = *seed * 1103515245u + 12345u;
			size_t len = q + 1 == parts ? left : 1 + (*seed >> 8) % left;
			uint8_t *c = malloc(len);
			assert_non_null(c);
			memcpy(c, g.v[i].ptr + pos, len);
			copies[ns] = c;
			split[ns++] = (struct kmsg_gap){ g.v[i].at, c, len };
			pos += len;
			left -= len;
		}
		assert_int_equal(pos, g.v[i].len);
	}
	assert_pieces_whole(&head, split, ns, &whole, v);
	for (size_t i = 0; i < ns; i++)
		free(copies[i]);
	free(copies);
	free(split);
	free(g.v);
	kbuf_free(&whole);
	kbuf_free(&head);
}

static void test_split(void **state)
{
	(void)state;
	uint32_t seed = 7;
	for (int16_t v = KMSG_FETCH_MIN_VERSION; v <= KMSG_FETCH_MAX_VERSION; v++) {
		struct arena a;
		struct kmsg_fetch_resp m;
		arena_init(&a, TEST_ARENA_BYTES);
		build(&m, &a);
		for (size_t parts = 1; parts <= 5; parts++) {
			check_split(&m, v, 1024, parts, &seed);
			check_split(&m, v, 1, parts, &seed);
		}
		arena_free(&a);
		for (uint32_t s = 1; s <= 16; s++) {
			uint32_t fs = s * 2246822519u + (uint32_t)v;
			arena_init(&a, TEST_ARENA_BYTES);
			kmsg_fetch_resp_fill_test(&m, v, &a, &fs);
			check_split(&m, v, 1, 1 + s % 4, &seed);
			arena_free(&a);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hand_built),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_pieces_edges),
		cmocka_unit_test(test_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
