/* test_proto.c — the generated Kafka codec (kmsg.c) and proto/header.c:
 * round trips of every api at every version, golden byte vectors built by
 * hand from the protocol guide's layouts, requests captured from real
 * clients (tests/unit/golden/, made by tools/capture-requests.py), and
 * malformed input that must give SL_EPROTO without crashing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "kmsg.h"
#include "proto/header.h"

#define SEEDS_PER_VERSION 24
#define TEST_ARENA_BYTES (16 * 1024 * 1024)

/* ---------------------------------------------------------------- helpers */

static void expect_bytes(const struct kbuf *b, const uint8_t *want, size_t n)
{
	if (b->len != n || memcmp(b->data, want, n) != 0) {
		fprintf(stderr, "got %zu bytes:", b->len);
		for (size_t i = 0; i < b->len; i++)
			fprintf(stderr, " %02x", b->data[i]);
		fprintf(stderr, "\nwant %zu bytes:", n);
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, " %02x", want[i]);
		fprintf(stderr, "\n");
		fail_msg("encoding differs");
	}
}

/* Decodes every strict prefix of buf; each must fail with SL_EPROTO. */
static void expect_prefixes_fail(const struct kmsg_codec *c, int16_t v, const uint8_t *buf,
				 size_t len)
{
	void *m = malloc(c->size);

	assert_non_null(m);
	for (size_t n = 0; n < len; n++) {
		struct arena a;
		struct kreader r;
		uint8_t *copy = malloc(n ? n : 1); /* exact size so ASan sees overreads */

		assert_non_null(copy);
		memcpy(copy, buf, n);
		arena_init(&a, TEST_ARENA_BYTES);
		kreader_init(&r, copy, n);
		int rc = c->decode(&r, v, m, &a);
		if (rc != SL_EPROTO)
			fail_msg("prefix %zu of %zu at v%d decoded with %d", n, len, v, rc);
		arena_free(&a);
		free(copy);
	}
	free(m);
}

/* fill -> encode -> decode -> equal -> encode -> byte compare. */
static size_t round_trips, round_trip_bytes;

static void round_trip(const char *api, const char *side, const struct kmsg_codec *c,
		       int16_t v, uint32_t seed, bool prefixes)
{
	struct arena a;
	struct kbuf b1, b2;
	struct kreader r;
	void *m1 = malloc(c->size), *m2 = malloc(c->size);

	assert_non_null(m1);
	assert_non_null(m2);
	arena_init(&a, TEST_ARENA_BYTES);
	kbuf_init(&b1);
	kbuf_init(&b2);
	c->fill_test(m1, v, &a, &seed);
	c->encode(&b1, v, m1);
	assert_false(b1.oom);
	kreader_init(&r, b1.data, b1.len);
	int rc = c->decode(&r, v, m2, &a);
	if (rc != 0)
		fail_msg("%s %s v%d seed %u: decode failed %d", api, side, v, seed, rc);
	if (r.pos != b1.len)
		fail_msg("%s %s v%d: decode used %zu of %zu bytes", api, side, v, r.pos, b1.len);
	if (!c->equal(m1, m2, v))
		fail_msg("%s %s v%d seed %u: decoded struct differs", api, side, v, seed);
	c->encode(&b2, v, m2);
	if (b1.len != b2.len || (b1.len && memcmp(b1.data, b2.data, b1.len) != 0))
		fail_msg("%s %s v%d seed %u: re-encoding differs", api, side, v, seed);
	if (prefixes)
		expect_prefixes_fail(c, v, b1.data, b1.len);
	round_trips++;
	round_trip_bytes += b1.len;
	kbuf_free(&b1);
	kbuf_free(&b2);
	arena_free(&a);
	free(m1);
	free(m2);
}

/* ---------------------------------------------------------------- (1) round trips */

static void test_round_trip_every_api_and_version(void **state)
{
	(void)state;
	assert_true(kmsg_api_desc_count > 0);
	for (size_t i = 0; i < kmsg_api_desc_count; i++) {
		const struct kmsg_api_desc *d = &kmsg_api_descs[i];
		const struct kmsg_api_codec *c = &kmsg_api_codecs[i];

		assert_int_equal(c->key, d->key);
		assert_ptr_equal(kmsg_api_find(d->key), d);
		assert_ptr_equal(kmsg_api_codec_find(d->key), c);
		assert_true(d->min_version <= d->max_version);
		for (int16_t v = d->min_version; v <= d->max_version; v++) {
			for (uint32_t s = 1; s <= SEEDS_PER_VERSION; s++) {
				round_trip(d->name, "request", &c->req, v, s * 2654435761u, s <= 2);
				round_trip(d->name, "response", &c->resp, v, s * 2246822519u, s <= 2);
			}
		}
	}
	printf("%zu apis, %zu round trips, %zu bytes encoded\n", kmsg_api_desc_count,
	       round_trips, round_trip_bytes);
}

static void test_api_table(void **state)
{
	(void)state;
	assert_null(kmsg_api_find(-1));
	assert_null(kmsg_api_find(9999));
	for (size_t i = 1; i < kmsg_api_desc_count; i++)
		assert_true(kmsg_api_descs[i - 1].key < kmsg_api_descs[i].key);
	const struct kmsg_api_desc *d = kmsg_api_find(KMSG_API_VERSIONS_KEY);
	assert_non_null(d);
	assert_int_equal(d->min_version, 0);
	assert_int_equal(d->max_version, 4);
	assert_int_equal(d->first_flexible, 3);
	d = kmsg_api_find(KMSG_PRODUCE_KEY);
	assert_int_equal(d->min_version, 3);
	assert_int_equal(d->max_version, 11);
	assert_int_equal(d->first_flexible, 9);
	d = kmsg_api_find(KMSG_FETCH_KEY);
	assert_int_equal(d->min_version, 4);
	assert_int_equal(d->max_version, 17);
	assert_int_equal(d->first_flexible, 12);
	d = kmsg_api_find(KMSG_METADATA_KEY);
	assert_int_equal(d->min_version, 0);
	assert_int_equal(d->max_version, 12);
	assert_int_equal(d->first_flexible, 9);
}

static void test_version_out_of_range(void **state)
{
	struct kmsg_produce_req m;
	struct arena a;
	struct kreader r;
	uint8_t zeros[64] = { 0 };

	(void)state;
	arena_init(&a, TEST_ARENA_BYTES);
	kreader_init(&r, zeros, sizeof zeros);
	assert_int_equal(kmsg_produce_req_decode(&r, 2, &m, &a), SL_EUNSUPPORTED);
	kreader_init(&r, zeros, sizeof zeros);
	assert_int_equal(kmsg_produce_req_decode(&r, 12, &m, &a), SL_EUNSUPPORTED);
	arena_free(&a);
}

/* ---------------------------------------------------------------- headers */

static void test_header_versions(void **state)
{
	(void)state;
	assert_int_equal(proto_req_header_version(18, 0), 1);
	assert_int_equal(proto_req_header_version(18, 3), 2);
	assert_int_equal(proto_req_header_version(18, 7), 2); /* future version */
	assert_int_equal(proto_resp_header_version(18, 3), 0);
	assert_int_equal(proto_resp_header_version(18, 4), 0);
	assert_int_equal(proto_req_header_version(3, 8), 1);
	assert_int_equal(proto_req_header_version(3, 9), 2);
	assert_int_equal(proto_resp_header_version(3, 8), 0);
	assert_int_equal(proto_resp_header_version(3, 9), 1);
	assert_int_equal(proto_req_header_version(1, 12), 2);
	assert_int_equal(proto_resp_header_version(1, 11), 0);
	assert_int_equal(proto_req_header_version(12345, 0), 1);
	assert_int_equal(proto_resp_header_version(12345, 0), 0);
}

static void test_response_header_encode(void **state)
{
	struct kbuf b;
	static const uint8_t v0[] = { 0x00, 0x00, 0x01, 0x02 };
	static const uint8_t v1[] = { 0x00, 0x00, 0x01, 0x02, 0x00 };

	(void)state;
	kbuf_init(&b);
	proto_resp_header_encode(&b, 0x102, 0);
	expect_bytes(&b, v0, sizeof v0);
	kbuf_free(&b);
	kbuf_init(&b);
	proto_resp_header_encode(&b, 0x102, 1);
	expect_bytes(&b, v1, sizeof v1);
	kbuf_free(&b);
}

static void test_request_header_malformed(void **state)
{
	struct proto_req_header h;
	struct kreader r;
	/* ApiVersions v3 (header v2), client id length 5 but 2 bytes left */
	static const uint8_t short_id[] = { 0x00, 0x12, 0x00, 0x03, 0, 0, 0, 9, 0x00, 0x05, 'a', 'b' };
	/* client id length -2 */
	static const uint8_t neg_id[] = { 0x00, 0x12, 0x00, 0x00, 0, 0, 0, 9, 0xff, 0xfe };
	/* header v2 whose tag section claims 3 tags with nothing after */
	static const uint8_t bad_tags[] = { 0x00, 0x12, 0x00, 0x03, 0, 0, 0, 9, 0xff, 0xff, 0x03 };
	/* null client id, one unknown header tag (5, 2 bytes) */
	static const uint8_t tag_ok[] = { 0x00, 0x12, 0x00, 0x03, 0, 0, 0, 9, 0xff, 0xff,
					   0x01, 0x05, 0x02, 0xaa, 0xbb, 0x77 };

	(void)state;
	kreader_init(&r, short_id, sizeof short_id);
	assert_int_equal(proto_req_header_read(&r, &h), SL_EPROTO);
	assert_int_equal(h.correlation_id, 9);
	kreader_init(&r, neg_id, sizeof neg_id);
	assert_int_equal(proto_req_header_read(&r, &h), SL_EPROTO);
	kreader_init(&r, bad_tags, sizeof bad_tags);
	assert_int_equal(proto_req_header_read(&r, &h), SL_EPROTO);
	kreader_init(&r, tag_ok, sizeof tag_ok);
	assert_int_equal(proto_req_header_read(&r, &h), 0);
	assert_int_equal(h.client_id.len, -1);
	assert_int_equal(kreader_left(&r), 1);
	for (size_t n = 0; n < 8; n++) {
		kreader_init(&r, tag_ok, n);
		assert_int_equal(proto_req_header_read(&r, &h), SL_EPROTO);
	}
	kreader_init(&r, tag_ok, sizeof tag_ok);
	assert_int_equal(proto_req_header_decode(&r, &h, 3), SL_EINVAL);
	kreader_init(&r, tag_ok, sizeof tag_ok);
	assert_int_equal(proto_req_header_decode(&r, &h, 0), 0);
	assert_int_equal(r.pos, 8);
}

/* ---------------------------------------------------------------- (2) golden vectors */

/* A request frame (without the 4-byte size): header then body. */
struct golden_req {
	const uint8_t *bytes;
	size_t len;
	size_t header_len;
};

static void check_req_header(const uint8_t *p, size_t len, size_t header_len, int16_t key,
			     int16_t ver, int32_t corr, const char *client_id)
{
	struct proto_req_header h;
	struct kreader r;

	kreader_init(&r, p, len);
	assert_int_equal(proto_req_header_read(&r, &h), 0);
	assert_int_equal(h.api_key, key);
	assert_int_equal(h.api_version, ver);
	assert_int_equal(h.correlation_id, corr);
	assert_true(kstr_eq(h.client_id, client_id));
	assert_int_equal(r.pos, header_len);
}

static void test_golden_api_versions_v0(void **state)
{
	/* header v1: key 18, version 0, correlation 1, client "rdkafka"; empty body */
	static const uint8_t req[] = {
		0x00, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
		0x00, 0x07, 'r', 'd', 'k', 'a', 'f', 'k', 'a',
	};
	/* error 0; api_keys [ {18, 0, 4} ] */
	static const uint8_t resp[] = {
		0x00, 0x00,
		0x00, 0x00, 0x00, 0x01,
		0x00, 0x12, 0x00, 0x00, 0x00, 0x04,
	};
	struct kmsg_api_versions_req q;
	struct kmsg_api_versions_resp p, p2;
	struct kmsg_api_versions_resp_api_version k = { 18, 0, 4 };
	struct arena a;
	struct kbuf b;
	struct kreader r;

	(void)state;
	arena_init(&a, TEST_ARENA_BYTES);
	check_req_header(req, sizeof req, sizeof req, 18, 0, 1, "rdkafka");
	kreader_init(&r, req + sizeof req, 0);
	assert_int_equal(kmsg_api_versions_req_decode(&r, 0, &q, &a), 0);
	kbuf_init(&b);
	kmsg_api_versions_req_init(&q);
	kmsg_api_versions_req_encode(&b, 0, &q);
	assert_int_equal(b.len, 0);
	kbuf_free(&b);

	kmsg_api_versions_resp_init(&p);
	p.api_keys_count = 1;
	p.api_keys = &k;
	p.throttle_time_ms = 99; /* v1+ only: must not appear */
	kbuf_init(&b);
	kmsg_api_versions_resp_encode(&b, 0, &p);
	expect_bytes(&b, resp, sizeof resp);
	kbuf_free(&b);
	kreader_init(&r, resp, sizeof resp);
	assert_int_equal(kmsg_api_versions_resp_decode(&r, 0, &p2, &a), 0);
	assert_int_equal(p2.error_code, 0);
	assert_int_equal(p2.api_keys_count, 1);
	assert_int_equal(p2.api_keys[0].api_key, 18);
	assert_int_equal(p2.api_keys[0].min_version, 0);
	assert_int_equal(p2.api_keys[0].max_version, 4);
	assert_int_equal(p2.throttle_time_ms, 0);
	assert_int_equal(p2.finalized_features_epoch, -1);
	arena_free(&a);
}

static void test_golden_api_versions_v3(void **state)
{
	/* header v2: key 18, version 3, correlation 2, client "test", no tags;
	 * body: compact "sluice", compact "1.0", no tags */
	static const uint8_t req[] = {
		0x00, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x02,
		0x00, 0x04, 't', 'e', 's', 't', 0x00,
		0x07, 's', 'l', 'u', 'i', 'c', 'e',
		0x04, '1', '.', '0',
		0x00,
	};
	/* error 0; api_keys compact [ {18,0,4,tags0}, {3,0,12,tags0} ];
	 * throttle 0; tags: 1 (finalized epoch) = 5, 3 (zk migration) = true */
	static const uint8_t resp[] = {
		0x00, 0x00,
		0x03,
		0x00, 0x12, 0x00, 0x00, 0x00, 0x04, 0x00,
		0x00, 0x03, 0x00, 0x00, 0x00, 0x0c, 0x00,
		0x00, 0x00, 0x00, 0x00,
		0x02,
		0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
		0x03, 0x01, 0x01,
	};
	/* same request body with an unknown tag 7 of 2 bytes: skipped */
	static const uint8_t req_unknown_tag[] = {
		0x07, 's', 'l', 'u', 'i', 'c', 'e',
		0x04, '1', '.', '0',
		0x01, 0x07, 0x02, 0xde, 0xad,
	};
	struct kmsg_api_versions_req q, q2;
	struct kmsg_api_versions_resp p, p2;
	struct kmsg_api_versions_resp_api_version keys[2] = { { 18, 0, 4 }, { 3, 0, 12 } };
	struct arena a;
	struct kbuf b;
	struct kreader r;
	const size_t hl = 15;

	(void)state;
	arena_init(&a, TEST_ARENA_BYTES);
	check_req_header(req, sizeof req, hl, 18, 3, 2, "test");
	kreader_init(&r, req + hl, sizeof req - hl);
	assert_int_equal(kmsg_api_versions_req_decode(&r, 3, &q, &a), 0);
	assert_true(kstr_eq(q.client_software_name, "sluice"));
	assert_true(kstr_eq(q.client_software_version, "1.0"));
	assert_int_equal(kreader_left(&r), 0);
	kbuf_init(&b);
	kmsg_api_versions_req_encode(&b, 3, &q);
	expect_bytes(&b, req + hl, sizeof req - hl);
	kbuf_free(&b);
	kreader_init(&r, req_unknown_tag, sizeof req_unknown_tag);
	assert_int_equal(kmsg_api_versions_req_decode(&r, 3, &q2, &a), 0);
	assert_true(kstr_eq(q2.client_software_version, "1.0"));
	assert_int_equal(kreader_left(&r), 0);

	kmsg_api_versions_resp_init(&p);
	p.api_keys_count = 2;
	p.api_keys = keys;
	p.finalized_features_epoch = 5;
	p.zk_migration_ready = true;
	kbuf_init(&b);
	kmsg_api_versions_resp_encode(&b, 3, &p);
	expect_bytes(&b, resp, sizeof resp);
	kbuf_free(&b);
	kreader_init(&r, resp, sizeof resp);
	assert_int_equal(kmsg_api_versions_resp_decode(&r, 3, &p2, &a), 0);
	assert_int_equal(p2.api_keys_count, 2);
	assert_int_equal(p2.api_keys[1].api_key, 3);
	assert_int_equal(p2.api_keys[1].max_version, 12);
	assert_int_equal(p2.finalized_features_epoch, 5);
	assert_true(p2.zk_migration_ready);
	assert_int_equal(p2.supported_features_count, 0);
	assert_int_equal(kreader_left(&r), 0);
	arena_free(&a);
}

static void test_golden_metadata_v1(void **state)
{
	/* topics [ "foo" ] */
	static const uint8_t req[] = {
		0x00, 0x00, 0x00, 0x01, 0x00, 0x03, 'f', 'o', 'o',
	};
	/* null topics: all topics */
	static const uint8_t req_all[] = { 0xff, 0xff, 0xff, 0xff };
	struct kmsg_metadata_req q, q2;
	struct kmsg_metadata_req_metadata_request_topic t;
	struct arena a;
	struct kbuf b;
	struct kreader r;

	(void)state;
	arena_init(&a, TEST_ARENA_BYTES);
	kmsg_metadata_req_init(&q);
	kmsg_metadata_req_metadata_request_topic_init(&t);
	t.name = KSTR("foo");
	q.topics_count = 1;
	q.topics = &t;
	kbuf_init(&b);
	kmsg_metadata_req_encode(&b, 1, &q);
	expect_bytes(&b, req, sizeof req);
	kbuf_free(&b);
	kreader_init(&r, req, sizeof req);
	assert_int_equal(kmsg_metadata_req_decode(&r, 1, &q2, &a), 0);
	assert_int_equal(q2.topics_count, 1);
	assert_true(kstr_eq(q2.topics[0].name, "foo"));
	assert_true(q2.allow_auto_topic_creation); /* default, v4+ only */

	kreader_init(&r, req_all, sizeof req_all);
	assert_int_equal(kmsg_metadata_req_decode(&r, 1, &q2, &a), 0);
	assert_int_equal(q2.topics_count, -1);
	q.topics_count = -1;
	kbuf_init(&b);
	kmsg_metadata_req_encode(&b, 1, &q);
	expect_bytes(&b, req_all, sizeof req_all);
	kbuf_free(&b);
	/* v0 has no null topics */
	kreader_init(&r, req_all, sizeof req_all);
	assert_int_equal(kmsg_metadata_req_decode(&r, 0, &q2, &a), SL_EPROTO);
	arena_free(&a);
}

static void test_golden_metadata_v12(void **state)
{
	/* header v2: key 3, version 12, correlation 7, client "c", no tags;
	 * topics compact [ {topic_id 01..10, name null, tags} ],
	 * allow_auto_topic_creation true, include_topic_authorized_operations false,
	 * tags */
	static const uint8_t req[] = {
		0x00, 0x03, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x07,
		0x00, 0x01, 'c', 0x00,
		0x02,
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
		0x00,
		0x00,
		0x01,
		0x00,
		0x00,
	};
	const size_t hl = 12;
	struct kmsg_metadata_req q, q2;
	struct kmsg_metadata_req_metadata_request_topic t;
	struct arena a;
	struct kbuf b;
	struct kreader r;

	(void)state;
	arena_init(&a, TEST_ARENA_BYTES);
	check_req_header(req, sizeof req, hl, 3, 12, 7, "c");
	kmsg_metadata_req_init(&q);
	kmsg_metadata_req_metadata_request_topic_init(&t);
	for (int i = 0; i < 16; i++)
		t.topic_id[i] = (uint8_t)(i + 1);
	t.name = KSTR_NULL;
	q.topics_count = 1;
	q.topics = &t;
	q.include_cluster_authorized_operations = true; /* v8-10 only */
	kbuf_init(&b);
	kmsg_metadata_req_encode(&b, 12, &q);
	expect_bytes(&b, req + hl, sizeof req - hl);
	kbuf_free(&b);
	kreader_init(&r, req + hl, sizeof req - hl);
	assert_int_equal(kmsg_metadata_req_decode(&r, 12, &q2, &a), 0);
	assert_int_equal(q2.topics_count, 1);
	assert_int_equal(q2.topics[0].name.len, -1);
	assert_memory_equal(q2.topics[0].topic_id, t.topic_id, 16);
	assert_true(q2.allow_auto_topic_creation);
	assert_false(q2.include_topic_authorized_operations);
	assert_false(q2.include_cluster_authorized_operations);
	arena_free(&a);
}

static void test_golden_produce_v3(void **state)
{
	/* transactional_id null, acks -1, timeout 30000,
	 * topic_data [ { "t", [ { 0, records (3 bytes) } ] } ] */
	static const uint8_t req[] = {
		0xff, 0xff,
		0xff, 0xff,
		0x00, 0x00, 0x75, 0x30,
		0x00, 0x00, 0x00, 0x01,
		0x00, 0x01, 't',
		0x00, 0x00, 0x00, 0x01,
		0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x03, 0xaa, 0xbb, 0xcc,
	};
	static const uint8_t recs[] = { 0xaa, 0xbb, 0xcc };
	struct kmsg_produce_req q, q2;
	struct kmsg_produce_req_topic_produce_data td;
	struct kmsg_produce_req_partition_produce_data pd;
	struct arena a;
	struct kbuf b;
	struct kreader r;

	(void)state;
	arena_init(&a, TEST_ARENA_BYTES);
	kmsg_produce_req_init(&q);
	kmsg_produce_req_topic_produce_data_init(&td);
	kmsg_produce_req_partition_produce_data_init(&pd);
	assert_int_equal(q.transactional_id.len, -1); /* default=null */
	q.acks = -1;
	q.timeout_ms = 30000;
	q.topic_data_count = 1;
	q.topic_data = &td;
	td.name = KSTR("t");
	td.partition_data_count = 1;
	td.partition_data = &pd;
	pd.index = 0;
	pd.records = (kbytes){ recs, 3 };
	kbuf_init(&b);
	kmsg_produce_req_encode(&b, 3, &q);
	expect_bytes(&b, req, sizeof req);
	kbuf_free(&b);
	kreader_init(&r, req, sizeof req);
	assert_int_equal(kmsg_produce_req_decode(&r, 3, &q2, &a), 0);
	assert_int_equal(q2.transactional_id.len, -1);
	assert_int_equal(q2.acks, -1);
	assert_int_equal(q2.timeout_ms, 30000);
	assert_int_equal(q2.topic_data_count, 1);
	assert_true(kstr_eq(q2.topic_data[0].name, "t"));
	assert_int_equal(q2.topic_data[0].partition_data_count, 1);
	assert_int_equal(q2.topic_data[0].partition_data[0].records.len, 3);
	assert_memory_equal(q2.topic_data[0].partition_data[0].records.ptr, recs, 3);
	arena_free(&a);
}

static void test_golden_produce_v9(void **state)
{
	/* header v2 (key 0, v9, corr 3, client null, no tags); transactional_id
	 * compact null, acks 1, timeout 1000, topic_data compact [ { "t",
	 * [ { 2, compact records (3 bytes), tags } ], tags } ], tags */
	static const uint8_t req[] = {
		0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x03,
		0xff, 0xff, 0x00,
		0x00,
		0x00, 0x01,
		0x00, 0x00, 0x03, 0xe8,
		0x02,
		0x02, 't',
		0x02,
		0x00, 0x00, 0x00, 0x02,
		0x04, 0xaa, 0xbb, 0xcc,
		0x00,
		0x00,
		0x00,
	};
	const size_t hl = 11;
	static const uint8_t recs[] = { 0xaa, 0xbb, 0xcc };
	struct kmsg_produce_req q, q2;
	struct kmsg_produce_req_topic_produce_data td;
	struct kmsg_produce_req_partition_produce_data pd;
	struct proto_req_header h;
	struct arena a;
	struct kbuf b;
	struct kreader r;

	(void)state;
	arena_init(&a, TEST_ARENA_BYTES);
	kreader_init(&r, req, sizeof req);
	assert_int_equal(proto_req_header_read(&r, &h), 0);
	assert_int_equal(h.client_id.len, -1);
	assert_int_equal(r.pos, hl);
	kmsg_produce_req_init(&q);
	kmsg_produce_req_topic_produce_data_init(&td);
	kmsg_produce_req_partition_produce_data_init(&pd);
	q.acks = 1;
	q.timeout_ms = 1000;
	q.topic_data_count = 1;
	q.topic_data = &td;
	td.name = KSTR("t");
	td.partition_data_count = 1;
	td.partition_data = &pd;
	pd.index = 2;
	pd.records = (kbytes){ recs, 3 };
	kbuf_init(&b);
	kmsg_produce_req_encode(&b, 9, &q);
	expect_bytes(&b, req + hl, sizeof req - hl);
	kbuf_free(&b);
	assert_int_equal(kmsg_produce_req_decode(&r, 9, &q2, &a), 0);
	assert_int_equal(kreader_left(&r), 0);
	assert_int_equal(q2.acks, 1);
	assert_int_equal(q2.timeout_ms, 1000);
	assert_int_equal(q2.topic_data[0].partition_data[0].index, 2);
	assert_memory_equal(q2.topic_data[0].partition_data[0].records.ptr, recs, 3);
	arena_free(&a);
}

static void test_golden_fetch_v4(void **state)
{
	/* replica -1, max_wait 500, min_bytes 1, max_bytes 52428800,
	 * isolation 1, topics [ { "t", [ { 0, offset 10, max 1048576 } ] } ] */
	static const uint8_t req[] = {
		0xff, 0xff, 0xff, 0xff,
		0x00, 0x00, 0x01, 0xf4,
		0x00, 0x00, 0x00, 0x01,
		0x03, 0x20, 0x00, 0x00,
		0x01,
		0x00, 0x00, 0x00, 0x01,
		0x00, 0x01, 't',
		0x00, 0x00, 0x00, 0x01,
		0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a,
		0x00, 0x10, 0x00, 0x00,
	};
	/* throttle 0, responses [ { "t", [ { 0, err 0, hw 11, lso 11,
	 * aborted null, records (2 bytes) } ] } ] */
	static const uint8_t resp[] = {
		0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x01,
		0x00, 0x01, 't',
		0x00, 0x00, 0x00, 0x01,
		0x00, 0x00, 0x00, 0x00,
		0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0b,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0b,
		0xff, 0xff, 0xff, 0xff,
		0x00, 0x00, 0x00, 0x02, 0x01, 0x02,
	};
	static const uint8_t recs[] = { 0x01, 0x02 };
	struct kmsg_fetch_req q, q2;
	struct kmsg_fetch_req_fetch_topic ft;
	struct kmsg_fetch_req_fetch_partition fp;
	struct kmsg_fetch_resp p, p2;
	struct kmsg_fetch_resp_fetchable_topic_response rt;
	struct kmsg_fetch_resp_partition_data pd;
	struct arena a;
	struct kbuf b;
	struct kreader r;

	(void)state;
	arena_init(&a, TEST_ARENA_BYTES);
	kmsg_fetch_req_init(&q);
	assert_int_equal(q.replica_id, -1);
	assert_int_equal(q.max_bytes, 0x7fffffff);
	kmsg_fetch_req_fetch_topic_init(&ft);
	kmsg_fetch_req_fetch_partition_init(&fp);
	q.max_wait_ms = 500;
	q.min_bytes = 1;
	q.max_bytes = 52428800;
	q.isolation_level = 1;
	q.topics_count = 1;
	q.topics = &ft;
	ft.topic = KSTR("t");
	ft.partitions_count = 1;
	ft.partitions = &fp;
	fp.fetch_offset = 10;
	fp.partition_max_bytes = 1048576;
	kbuf_init(&b);
	kmsg_fetch_req_encode(&b, 4, &q);
	expect_bytes(&b, req, sizeof req);
	kbuf_free(&b);
	kreader_init(&r, req, sizeof req);
	assert_int_equal(kmsg_fetch_req_decode(&r, 4, &q2, &a), 0);
	assert_int_equal(q2.max_wait_ms, 500);
	assert_int_equal(q2.max_bytes, 52428800);
	assert_int_equal(q2.isolation_level, 1);
	assert_int_equal(q2.session_epoch, -1);
	assert_true(kstr_eq(q2.topics[0].topic, "t"));
	assert_int_equal(q2.topics[0].partitions[0].fetch_offset, 10);
	assert_int_equal(q2.topics[0].partitions[0].partition_max_bytes, 1048576);
	assert_int_equal(q2.topics[0].partitions[0].log_start_offset, -1);

	kmsg_fetch_resp_init(&p);
	kmsg_fetch_resp_fetchable_topic_response_init(&rt);
	kmsg_fetch_resp_partition_data_init(&pd);
	assert_int_equal(pd.aborted_transactions_count, 0);
	p.responses_count = 1;
	p.responses = &rt;
	rt.topic = KSTR("t");
	rt.partitions_count = 1;
	rt.partitions = &pd;
	pd.high_watermark = 11;
	pd.last_stable_offset = 11;
	pd.aborted_transactions_count = -1;
	pd.records = (kbytes){ recs, 2 };
	kbuf_init(&b);
	kmsg_fetch_resp_encode(&b, 4, &p);
	expect_bytes(&b, resp, sizeof resp);
	kbuf_free(&b);
	kreader_init(&r, resp, sizeof resp);
	assert_int_equal(kmsg_fetch_resp_decode(&r, 4, &p2, &a), 0);
	assert_int_equal(p2.responses[0].partitions[0].high_watermark, 11);
	assert_int_equal(p2.responses[0].partitions[0].aborted_transactions_count, -1);
	assert_int_equal(p2.responses[0].partitions[0].records.len, 2);
	arena_free(&a);
}

static void test_golden_fetch_v12(void **state)
{
	/* header v2 (key 1, v12, corr 5, client "k"); body: replica -1,
	 * max_wait 500, min_bytes 1, max_bytes 0x7fffffff, isolation 0,
	 * session 0, epoch -1, topics [ { "t", [ { 0, cle -1, offset 0,
	 * lfe -1, lso -1, max 1048576, tags } ], tags } ], forgotten [],
	 * rack "", tags { 0: cluster_id "c1" } */
	static const uint8_t req[] = {
		0x00, 0x01, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x05,
		0x00, 0x01, 'k', 0x00,
		0xff, 0xff, 0xff, 0xff,
		0x00, 0x00, 0x01, 0xf4,
		0x00, 0x00, 0x00, 0x01,
		0x7f, 0xff, 0xff, 0xff,
		0x00,
		0x00, 0x00, 0x00, 0x00,
		0xff, 0xff, 0xff, 0xff,
		0x02,
		0x02, 't',
		0x02,
		0x00, 0x00, 0x00, 0x00,
		0xff, 0xff, 0xff, 0xff,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0x00, 0x10, 0x00, 0x00,
		0x00,
		0x00,
		0x01,
		0x01,
		0x01, 0x00, 0x03, 0x03, 'c', '1',
	};
	const size_t hl = 12;
	/* throttle 0, error 0, session 0, responses [ { "t", [ { 0, err 0,
	 * hw 11, lso 11, log start 0, aborted null, preferred -1, records
	 * (2 bytes), tags { 1: current_leader {1, 2} } } ], tags } ], tags */
	static const uint8_t resp[] = {
		0x00, 0x00, 0x00, 0x00,
		0x00, 0x00,
		0x00, 0x00, 0x00, 0x00,
		0x02,
		0x02, 't',
		0x02,
		0x00, 0x00, 0x00, 0x00,
		0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0b,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0b,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00,
		0xff, 0xff, 0xff, 0xff,
		0x03, 0x01, 0x02,
		0x01, 0x01, 0x09, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00,
		0x00,
		0x00,
	};
	static const uint8_t recs[] = { 0x01, 0x02 };
	struct kmsg_fetch_req q, q2;
	struct kmsg_fetch_req_fetch_topic ft;
	struct kmsg_fetch_req_fetch_partition fp;
	struct kmsg_fetch_resp p, p2;
	struct kmsg_fetch_resp_fetchable_topic_response rt;
	struct kmsg_fetch_resp_partition_data pd;
	struct arena a;
	struct kbuf b;
	struct kreader r;

	(void)state;
	arena_init(&a, TEST_ARENA_BYTES);
	check_req_header(req, sizeof req, hl, 1, 12, 5, "k");
	kmsg_fetch_req_init(&q);
	kmsg_fetch_req_fetch_topic_init(&ft);
	kmsg_fetch_req_fetch_partition_init(&fp);
	q.cluster_id = KSTR("c1");
	q.max_wait_ms = 500;
	q.min_bytes = 1;
	q.topics_count = 1;
	q.topics = &ft;
	ft.topic = KSTR("t");
	ft.partitions_count = 1;
	ft.partitions = &fp;
	fp.partition_max_bytes = 1048576;
	kbuf_init(&b);
	kmsg_fetch_req_encode(&b, 12, &q);
	expect_bytes(&b, req + hl, sizeof req - hl);
	kbuf_free(&b);
	kreader_init(&r, req + hl, sizeof req - hl);
	assert_int_equal(kmsg_fetch_req_decode(&r, 12, &q2, &a), 0);
	assert_int_equal(kreader_left(&r), 0);
	assert_true(kstr_eq(q2.cluster_id, "c1"));
	assert_int_equal(q2.forgotten_topics_data_count, 0);
	assert_true(kstr_eq(q2.rack_id, ""));
	assert_int_equal(q2.topics[0].partitions[0].last_fetched_epoch, -1);
	assert_false(q2.has_replica_state);

	kmsg_fetch_resp_init(&p);
	kmsg_fetch_resp_fetchable_topic_response_init(&rt);
	kmsg_fetch_resp_partition_data_init(&pd);
	p.responses_count = 1;
	p.responses = &rt;
	rt.topic = KSTR("t");
	rt.partitions_count = 1;
	rt.partitions = &pd;
	pd.high_watermark = 11;
	pd.last_stable_offset = 11;
	pd.log_start_offset = 0;
	pd.aborted_transactions_count = -1;
	pd.records = (kbytes){ recs, 2 };
	pd.has_current_leader = true;
	pd.current_leader.leader_id = 1;
	pd.current_leader.leader_epoch = 2;
	kbuf_init(&b);
	kmsg_fetch_resp_encode(&b, 12, &p);
	expect_bytes(&b, resp, sizeof resp);
	kbuf_free(&b);
	kreader_init(&r, resp, sizeof resp);
	assert_int_equal(kmsg_fetch_resp_decode(&r, 12, &p2, &a), 0);
	assert_int_equal(kreader_left(&r), 0);
	assert_true(p2.responses[0].partitions[0].has_current_leader);
	assert_false(p2.responses[0].partitions[0].has_diverging_epoch);
	assert_int_equal(p2.responses[0].partitions[0].diverging_epoch.epoch, -1);
	assert_int_equal(p2.responses[0].partitions[0].current_leader.leader_id, 1);
	assert_int_equal(p2.responses[0].partitions[0].current_leader.leader_epoch, 2);
	assert_int_equal(p2.responses[0].partitions[0].preferred_read_replica, -1);
	assert_int_equal(p2.responses[0].partitions[0].records.len, 2);
	arena_free(&a);
}

/* ---------------------------------------------------------------- (3) malformed */

static int decode_produce(const uint8_t *p, size_t n, int16_t v)
{
	struct kmsg_produce_req q;
	struct arena a;
	struct kreader r;
	int rc;

	arena_init(&a, TEST_ARENA_BYTES);
	kreader_init(&r, p, n);
	rc = kmsg_produce_req_decode(&r, v, &q, &a);
	assert_true(a.used_bytes < 4096); /* nothing sized from a bad count */
	arena_free(&a);
	return rc;
}

static void test_malformed_counts_and_lengths(void **state)
{
	(void)state;
	/* Produce v3: non-nullable topic_data with count -1 and -2 */
	static const uint8_t neg1[] = { 0xff, 0xff, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t neg2[] = { 0xff, 0xff, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe };
	/* count 0x7fffffff with nothing after it */
	static const uint8_t huge_count[] = { 0xff, 0xff, 0, 1, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff };
	/* topic name length 32767 with 1 byte present */
	static const uint8_t huge_str[] = { 0xff, 0xff, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0x7f, 0xff, 't' };
	/* topic name length -1: null where not nullable */
	static const uint8_t null_str[] = { 0xff, 0xff, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff };
	/* transactional id length -2 */
	static const uint8_t neg_str[] = { 0xff, 0xfe, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0 };
	/* records length 0x7fffffff with 2 bytes */
	static const uint8_t huge_bytes[] = { 0xff, 0xff, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 't',
					      0, 0, 0, 1, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 1, 2 };
	/* records length -2 */
	static const uint8_t neg_bytes[] = { 0xff, 0xff, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 't',
					     0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xfe };
	/* the valid one those are built from (records null) */
	static const uint8_t ok[] = { 0xff, 0xff, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 't',
				      0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff };

	assert_int_equal(decode_produce(ok, sizeof ok, 3), 0);
	assert_int_equal(decode_produce(neg1, sizeof neg1, 3), SL_EPROTO);
	assert_int_equal(decode_produce(neg2, sizeof neg2, 3), SL_EPROTO);
	assert_int_equal(decode_produce(huge_count, sizeof huge_count, 3), SL_EPROTO);
	assert_int_equal(decode_produce(huge_str, sizeof huge_str, 3), SL_EPROTO);
	assert_int_equal(decode_produce(null_str, sizeof null_str, 3), SL_EPROTO);
	assert_int_equal(decode_produce(neg_str, sizeof neg_str, 3), SL_EPROTO);
	assert_int_equal(decode_produce(huge_bytes, sizeof huge_bytes, 3), SL_EPROTO);
	assert_int_equal(decode_produce(neg_bytes, sizeof neg_bytes, 3), SL_EPROTO);
}

static void test_malformed_compact(void **state)
{
	(void)state;
	/* Produce v9 prefix: transactional_id null, acks 1, timeout 1000 */
#define P9 0x00, 0x00, 0x01, 0x00, 0x00, 0x03, 0xe8
	/* topic_data count varint of 10 bytes (2^64-1) */
	static const uint8_t ovf10[] = { P9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
	/* 11-byte varint: more than any uvarint may take */
	static const uint8_t ovf11[] = { P9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					 0x01 };
	/* 2^32 - 1: above INT32_MAX + 1 */
	static const uint8_t ovf32[] = { P9, 0xff, 0xff, 0xff, 0xff, 0x0f };
	/* INT32_MAX + 1 (count INT32_MAX): fits the type, not the bytes */
	static const uint8_t big[] = { P9, 0x80, 0x80, 0x80, 0x80, 0x08 };
	/* count 0 (null) where not nullable */
	static const uint8_t null_arr[] = { P9, 0x00, 0x00 };
	/* topic name compact length 2^31 with 1 byte */
	static const uint8_t huge_name[] = { P9, 0x02, 0x80, 0x80, 0x80, 0x80, 0x08, 't' };
	/* name ok, topic tag section claims a tag of 100 bytes with 2 left */
	static const uint8_t bad_tag[] = { P9, 0x02, 0x02, 't', 0x01, 0x01, 0x05, 0x64, 0x01, 0x02 };
	/* tag count larger than the bytes left */
	static const uint8_t many_tags[] = { P9, 0x01, 0x7f };
	/* the valid one: no topics, no tags */
	static const uint8_t ok[] = { P9, 0x01, 0x00 };
	/* valid with one unknown top-level tag 9 of 3 bytes */
	static const uint8_t ok_tag[] = { P9, 0x01, 0x01, 0x09, 0x03, 0x01, 0x02, 0x03 };

	assert_int_equal(decode_produce(ok, sizeof ok, 9), 0);
	assert_int_equal(decode_produce(ok_tag, sizeof ok_tag, 9), 0);
	assert_int_equal(decode_produce(ovf10, sizeof ovf10, 9), SL_EPROTO);
	assert_int_equal(decode_produce(ovf11, sizeof ovf11, 9), SL_EPROTO);
	assert_int_equal(decode_produce(ovf32, sizeof ovf32, 9), SL_EPROTO);
	assert_int_equal(decode_produce(big, sizeof big, 9), SL_EPROTO);
	assert_int_equal(decode_produce(null_arr, sizeof null_arr, 9), SL_EPROTO);
	assert_int_equal(decode_produce(huge_name, sizeof huge_name, 9), SL_EPROTO);
	assert_int_equal(decode_produce(bad_tag, sizeof bad_tag, 9), SL_EPROTO);
	assert_int_equal(decode_produce(many_tags, sizeof many_tags, 9), SL_EPROTO);
#undef P9
}

/* ---------------------------------------------------------------- captured requests */

/* Transactions (issue 14): AddPartitionsToTxn in its client form (v0, what
 * librdkafka sends) and its broker form (v4, batched, verify_only), and
 * EndTxn at its first flexible version, byte for byte from the protocol
 * guide's layouts. */
static void test_golden_add_partitions_to_txn(void **state)
{
	/* "tx", pid 7, epoch 1, [ { "t", [0, 2] } ] */
	static const uint8_t v0[] = {
		0x00, 0x02, 't', 'x',
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07,
		0x00, 0x01,
		0x00, 0x00, 0x00, 0x01,
		0x00, 0x01, 't',
		0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
	};
	/* [ { "tx", pid 7, epoch 1, verify_only, [ { "t", [0] } ] } ], compact */
	static const uint8_t v4[] = {
		0x02,
		0x03, 't', 'x',
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07,
		0x00, 0x01,
		0x01,
		0x02, 0x02, 't', 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00,
		0x00,
	};
	/* throttle 0, [ { "t", [ { 0, INVALID_TXN_STATE (48) } ] } ] */
	static const uint8_t resp_v0[] = {
		0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x01,
		0x00, 0x01, 't',
		0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x30,
	};
	struct kmsg_add_partitions_to_txn_req q;
	struct kmsg_add_partitions_to_txn_resp p;
	struct kmsg_add_partitions_to_txn_add_partitions_to_txn_topic_result tr;
	struct kmsg_add_partitions_to_txn_add_partitions_to_txn_partition_result pr = { 0, 48 };
	struct arena a;
	struct kbuf b;
	struct kreader r;

	(void)state;
	arena_init(&a, TEST_ARENA_BYTES);
	kreader_init(&r, v0, sizeof v0);
	assert_int_equal(kmsg_add_partitions_to_txn_req_decode(&r, 0, &q, &a), 0);
	assert_int_equal(r.pos, sizeof v0);
	assert_true(kstr_eq(q.v3_and_below_transactional_id, "tx"));
	assert_int_equal(q.v3_and_below_producer_id, 7);
	assert_int_equal(q.v3_and_below_producer_epoch, 1);
	assert_int_equal(q.v3_and_below_topics_count, 1);
	assert_true(kstr_eq(q.v3_and_below_topics[0].name, "t"));
	assert_int_equal(q.v3_and_below_topics[0].partitions_count, 2);
	assert_int_equal(q.v3_and_below_topics[0].partitions[1], 2);
	assert_int_equal(q.transactions_count, 0); /* v4+ only */
	kbuf_init(&b);
	kmsg_add_partitions_to_txn_req_encode(&b, 0, &q);
	expect_bytes(&b, v0, sizeof v0);
	kbuf_free(&b);

	kreader_init(&r, v4, sizeof v4);
	assert_int_equal(kmsg_add_partitions_to_txn_req_decode(&r, 4, &q, &a), 0);
	assert_int_equal(r.pos, sizeof v4);
	assert_int_equal(q.transactions_count, 1);
	assert_true(kstr_eq(q.transactions[0].transactional_id, "tx"));
	assert_int_equal(q.transactions[0].producer_id, 7);
	assert_int_equal(q.transactions[0].producer_epoch, 1);
	assert_true(q.transactions[0].verify_only);
	assert_int_equal(q.transactions[0].topics_count, 1);
	assert_int_equal(q.transactions[0].topics[0].partitions_count, 1);
	assert_int_equal(q.v3_and_below_transactional_id.len, 0); /* v0-3 only */
	kbuf_init(&b);
	kmsg_add_partitions_to_txn_req_encode(&b, 4, &q);
	expect_bytes(&b, v4, sizeof v4);
	kbuf_free(&b);

	kmsg_add_partitions_to_txn_resp_init(&p);
	tr.name = KSTR("t");
	tr.results_by_partition_count = 1;
	tr.results_by_partition = &pr;
	p.results_by_topic_v3_and_below_count = 1;
	p.results_by_topic_v3_and_below = &tr;
	p.error_code = 15; /* v4+ only: must not appear */
	kbuf_init(&b);
	kmsg_add_partitions_to_txn_resp_encode(&b, 0, &p);
	expect_bytes(&b, resp_v0, sizeof resp_v0);
	kbuf_free(&b);
	arena_free(&a);
}

static void test_golden_end_txn_v3(void **state)
{
	/* compact "tx", pid 258, epoch 3, committed, no tags */
	static const uint8_t req[] = {
		0x03, 't', 'x',
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02,
		0x00, 0x03,
		0x01,
		0x00,
	};
	/* throttle 0, CONCURRENT_TRANSACTIONS (51), no tags */
	static const uint8_t resp[] = { 0x00, 0x00, 0x00, 0x00, 0x00, 0x33, 0x00 };
	struct kmsg_end_txn_req q;
	struct kmsg_end_txn_resp p;
	struct arena a;
	struct kbuf b;
	struct kreader r;

	(void)state;
	arena_init(&a, TEST_ARENA_BYTES);
	kreader_init(&r, req, sizeof req);
	assert_int_equal(kmsg_end_txn_req_decode(&r, 3, &q, &a), 0);
	assert_int_equal(r.pos, sizeof req);
	assert_true(kstr_eq(q.transactional_id, "tx"));
	assert_int_equal(q.producer_id, 258);
	assert_int_equal(q.producer_epoch, 3);
	assert_true(q.committed);
	kbuf_init(&b);
	kmsg_end_txn_req_encode(&b, 3, &q);
	expect_bytes(&b, req, sizeof req);
	kbuf_free(&b);
	kmsg_end_txn_resp_init(&p);
	p.error_code = 51;
	kbuf_init(&b);
	kmsg_end_txn_resp_encode(&b, 3, &p);
	expect_bytes(&b, resp, sizeof resp);
	kbuf_free(&b);
	arena_free(&a);
}

/* Reads a golden .hex file: '#' lines are comments (the client and its
 * version), the rest is hex. Returns the byte count; *out is malloc'd. */
static size_t read_hex(const char *path, uint8_t **out)
{
	FILE *f = fopen(path, "r");
	char line[256];
	size_t n = 0, cap = 4096;
	uint8_t *b = malloc(cap);

	if (!f)
		fail_msg("cannot open %s", path);
	assert_non_null(b);
	while (fgets(line, sizeof line, f)) {
		if (line[0] == '#')
			continue;
		for (char *p = line; p[0] && p[0] != '\n'; p += 2) {
			unsigned x;
			if (!p[1] || sscanf(p, "%2x", &x) != 1)
				fail_msg("%s: bad hex", path);
			if (n == cap) {
				cap *= 2;
				b = realloc(b, cap);
				assert_non_null(b);
			}
			b[n++] = (uint8_t)x;
		}
	}
	fclose(f);
	*out = b;
	return n;
}

/* One captured request (header and body, no size prefix) from a real
 * client: the header carries the api and version the file is named for,
 * the body decodes using every byte, every strict prefix of it fails, and
 * re-encoding the decoded request gives the client's bytes back (the
 * encoding is canonical: no client here sends tagged fields we do not
 * know, which the codec would drop). */
static void check_captured(const char *path, int key, int version)
{
	uint8_t *frame;
	size_t len = read_hex(path, &frame);
	struct kreader r;
	struct proto_req_header h;
	struct arena a;
	struct kbuf b;

	kreader_init(&r, frame, len);
	if (proto_req_header_read(&r, &h) != 0)
		fail_msg("%s: header does not decode", path);
	if (h.api_key != key || h.api_version != version)
		fail_msg("%s: header says api %d v%d", path, h.api_key, h.api_version);
	const struct kmsg_api_codec *ac = kmsg_api_codec_find(h.api_key);
	if (!ac)
		fail_msg("%s: no codec for api %d", path, h.api_key);
	const uint8_t *body = frame + r.pos;
	size_t body_len = len - r.pos;
	void *m = malloc(ac->req.size);

	assert_non_null(m);
	arena_init(&a, TEST_ARENA_BYTES);
	kbuf_init(&b);
	kreader_init(&r, body, body_len);
	int rc = ac->req.decode(&r, h.api_version, m, &a);
	if (rc != 0)
		fail_msg("%s: body does not decode: %d", path, rc);
	if (r.pos != body_len)
		fail_msg("%s: decode used %zu of %zu body bytes", path, r.pos, body_len);
	ac->req.encode(&b, h.api_version, m);
	if (b.len != body_len || (body_len && memcmp(b.data, body, body_len) != 0)) {
		fprintf(stderr, "%s:\n", path);
		expect_bytes(&b, body, body_len);
	}
	expect_prefixes_fail(&ac->req, h.api_version, body, body_len);
	kbuf_free(&b);
	arena_free(&a);
	free(m);
	free(frame);
}

static void test_golden_captured(void **state)
{
	(void)state;
	const char *src = getenv("SLUICE_SOURCE_DIR");
	char dir[512], path[1024];
	size_t files = 0;

	snprintf(dir, sizeof dir, "%s/tests/unit/golden", src ? src : ".");
	DIR *d = opendir(dir);
	if (!d)
		fail_msg("cannot open %s (set SLUICE_SOURCE_DIR)", dir);
	for (struct dirent *e; (e = readdir(d));) {
		int key, version;
		size_t n = strlen(e->d_name);
		if (n < 5 || strcmp(e->d_name + n - 4, ".hex") != 0)
			continue;
		/* <key>-<api>-v<version>-<client>.hex */
		char *v = strstr(e->d_name, "-v");
		if (sscanf(e->d_name, "%d-", &key) != 1 || !v || sscanf(v, "-v%d-", &version) != 1)
			fail_msg("%s: name is not <key>-<api>-v<version>-<client>.hex", e->d_name);
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		check_captured(path, key, version);
		files++;
	}
	closedir(d);
	assert_true(files > 0);
	printf("%zu captured requests decode and re-encode to their bytes\n", files);
}

/* Flip bytes of valid encodings of every api and decode: any result is
 * fine as long as nothing crashes (ASan/UBSan builds check the rest). */
static void test_mutations_do_not_crash(void **state)
{
	(void)state;
	for (size_t i = 0; i < kmsg_api_desc_count; i++) {
		const struct kmsg_api_desc *d = &kmsg_api_descs[i];
		const struct kmsg_codec *codecs[2] = { &kmsg_api_codecs[i].req,
						       &kmsg_api_codecs[i].resp };

		for (int side = 0; side < 2; side++) {
			const struct kmsg_codec *c = codecs[side];
			void *m = malloc(c->size), *m2 = malloc(c->size);

			assert_non_null(m);
			assert_non_null(m2);
			for (int16_t v = d->min_version; v <= d->max_version; v++) {
				struct arena a;
				struct kbuf b;
				uint32_t seed = 77u + (uint32_t)v;

				arena_init(&a, TEST_ARENA_BYTES);
				kbuf_init(&b);
				c->fill_test(m, v, &a, &seed);
				c->encode(&b, v, m);
				for (size_t k = 0; k < b.len * 4; k++) {
					uint8_t *copy = malloc(b.len ? b.len : 1);
					struct arena a2;
					struct kreader r;
					uint32_t x = seed = seed * 1103515245u + 12345u;

					assert_non_null(copy);
					memcpy(copy, b.data, b.len);
					if (b.len)
						copy[(x >> 8) % b.len] ^= (uint8_t)(1u << (x % 8));
					if (b.len && (x & 0x10000))
						copy[(x >> 3) % b.len] = 0xff;
					arena_init(&a2, TEST_ARENA_BYTES);
					kreader_init(&r, copy, b.len);
					int rc = c->decode(&r, v, m2, &a2);
					assert_true(rc == 0 || rc == SL_EPROTO || rc == SL_ENOMEM);
					if (rc == 0) {
						struct kbuf b2;

						kbuf_init(&b2);
						c->encode(&b2, v, m2);
						kbuf_free(&b2);
					}
					arena_free(&a2);
					free(copy);
				}
				kbuf_free(&b);
				arena_free(&a);
			}
			free(m);
			free(m2);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_api_table),
		cmocka_unit_test(test_round_trip_every_api_and_version),
		cmocka_unit_test(test_version_out_of_range),
		cmocka_unit_test(test_header_versions),
		cmocka_unit_test(test_response_header_encode),
		cmocka_unit_test(test_request_header_malformed),
		cmocka_unit_test(test_golden_api_versions_v0),
		cmocka_unit_test(test_golden_api_versions_v3),
		cmocka_unit_test(test_golden_metadata_v1),
		cmocka_unit_test(test_golden_metadata_v12),
		cmocka_unit_test(test_golden_produce_v3),
		cmocka_unit_test(test_golden_produce_v9),
		cmocka_unit_test(test_golden_fetch_v4),
		cmocka_unit_test(test_golden_fetch_v12),
		cmocka_unit_test(test_golden_add_partitions_to_txn),
		cmocka_unit_test(test_golden_end_txn_v3),
		cmocka_unit_test(test_golden_captured),
		cmocka_unit_test(test_malformed_counts_and_lengths),
		cmocka_unit_test(test_malformed_compact),
		cmocka_unit_test(test_mutations_do_not_crash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
