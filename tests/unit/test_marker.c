/* test_marker.c — transaction markers (proto/marker.c): the exact bytes
 * of a COMMIT marker (its CRC computed by an independent bitwise CRC-32C,
 * not by crc32c.c), the fields clients filter on (attributes 0x30, base
 * sequence -1, the 4-byte key 00 00 00 0x), decode of what encode wrote,
 * that the batch validator the read path uses accepts it, and every way
 * a control batch can be wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/err.h"
#include "proto/marker.h"
#include "storage/batch.h"
#include "storage/crc32c.h"

/* COMMIT, pid 0x0102030405060708, epoch 7, coordinator epoch 3, leader
 * epoch 9, timestamp 1700000000123. */
static const uint8_t commit_marker[MARKER_BATCH_BYTES] = {
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* baseOffset */
	0x00, 0x00, 0x00, 0x42,                         /* batchLength 66 */
	0x00, 0x00, 0x00, 0x09,                         /* partitionLeaderEpoch */
	0x02,                                           /* magic */
	0x20, 0xb3, 0x42, 0xc6,                         /* CRC-32C */
	0x00, 0x30,                                     /* attributes */
	0x00, 0x00, 0x00, 0x00,                         /* lastOffsetDelta */
	0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x7b, /* baseTimestamp */
	0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x7b, /* maxTimestamp */
	0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* producerId */
	0x00, 0x07,                                     /* producerEpoch */
	0xff, 0xff, 0xff, 0xff,                         /* baseSequence */
	0x00, 0x00, 0x00, 0x01,                         /* recordCount */
	0x20, 0x00, 0x00, 0x00,       /* length 16, attributes, ts and offset deltas */
	0x08, 0x00, 0x00, 0x00, 0x01, /* key: 4 bytes, version 0, COMMIT */
	0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, /* value: 6 bytes, version 0, epoch 3 */
	0x00,                         /* headers */
};

static const struct marker commit_fields = {
	.commit = true,
	.producer_id = 0x0102030405060708,
	.producer_epoch = 7,
	.coordinator_epoch = 3,
	.leader_epoch = 9,
	.timestamp_ms = 1700000000123,
};

static void fix_crc(uint8_t *p, size_t len)
{
	be32_store(p + 17, crc32c(0, p + 21, len - 21));
}

static void test_encode_bytes(void **state)
{
	uint8_t out[MARKER_BATCH_BYTES];

	(void)state;
	memset(out, 0xee, sizeof out);
	marker_encode(out, &commit_fields);
	assert_memory_equal(out, commit_marker, sizeof out);
}

static void test_abort_key_and_header(void **state)
{
	uint8_t out[MARKER_BATCH_BYTES];
	struct marker m = commit_fields, d;
	struct batch_info b;
	static const uint8_t abort_key[] = { 0x00, 0x00, 0x00, 0x00 };

	(void)state;
	m.commit = false;
	m.producer_epoch = 32767; /* a fence bump's epoch may reach the top */
	m.coordinator_epoch = -1;
	marker_encode(out, &m);
	/* kafkajs recognises an abort by exactly these key bytes. */
	assert_memory_equal(out + BATCH_HEADER_BYTES + 5, abort_key, sizeof abort_key);
	assert_int_equal(batch_validate(out, sizeof out, &b), 0);
	assert_int_equal(b.attributes, BATCH_ATTR_TRANSACTIONAL | BATCH_ATTR_CONTROL);
	assert_int_equal(b.base_sequence, -1);
	assert_int_equal(b.record_count, 1);
	assert_int_equal(b.last_offset_delta, 0);
	assert_int_equal(b.producer_epoch, 32767);
	assert_int_equal(b.base_timestamp, b.max_timestamp);
	assert_int_equal(batch_total_bytes(&b), MARKER_BATCH_BYTES);
	assert_true(marker_is_control(b.attributes));
	assert_false(marker_is_control(BATCH_ATTR_TRANSACTIONAL));
	assert_int_equal(marker_decode(out, sizeof out, &d), 0);
	assert_false(d.commit);
	assert_int_equal(d.producer_epoch, 32767);
	assert_int_equal(d.coordinator_epoch, -1);
}

static void test_decode(void **state)
{
	struct marker d;
	uint8_t copy[MARKER_BATCH_BYTES];

	(void)state;
	assert_int_equal(marker_decode(commit_marker, sizeof commit_marker, &d), 0);
	assert_true(d.commit);
	assert_true(d.producer_id == commit_fields.producer_id);
	assert_int_equal(d.producer_epoch, 7);
	assert_int_equal(d.coordinator_epoch, 3);
	assert_int_equal(d.leader_epoch, 9);
	assert_true(d.timestamp_ms == commit_fields.timestamp_ms);
	/* baseOffset and leader epoch are patched on the read path, outside
	 * the CRC: still a marker. */
	memcpy(copy, commit_marker, sizeof copy);
	be64_store(copy, 123456);
	be32_store(copy + 12, 77);
	assert_int_equal(marker_decode(copy, sizeof copy, &d), 0);
	assert_int_equal(d.leader_epoch, 77);
}

static void test_decode_truncated_and_crc(void **state)
{
	struct marker d;
	uint8_t big[MARKER_BATCH_BYTES + 1];

	(void)state;
	for (size_t n = 0; n < MARKER_BATCH_BYTES; n++) {
		uint8_t *p = malloc(n ? n : 1); /* exact size so ASan sees overreads */
		assert_non_null(p);
		memcpy(p, commit_marker, n);
		assert_int_equal(marker_decode(p, n, &d), SL_EPROTO);
		free(p);
	}
	/* One byte more than the batch says it holds. */
	memcpy(big, commit_marker, MARKER_BATCH_BYTES);
	big[MARKER_BATCH_BYTES] = 0;
	assert_int_equal(marker_decode(big, sizeof big, &d), SL_EPROTO);
	/* Any bit flipped under the CRC. */
	for (size_t i = 21; i < MARKER_BATCH_BYTES; i++) {
		uint8_t copy[MARKER_BATCH_BYTES];
		memcpy(copy, commit_marker, sizeof copy);
		copy[i] ^= 0x04;
		assert_int_equal(marker_decode(copy, sizeof copy, &d), SL_ECORRUPT);
	}
}

/* Change one byte of the marker, fix the CRC, decode. */
static int decode_with(size_t at, uint8_t value)
{
	uint8_t copy[MARKER_BATCH_BYTES];
	struct marker d;

	memcpy(copy, commit_marker, sizeof copy);
	copy[at] = value;
	fix_crc(copy, sizeof copy);
	return marker_decode(copy, sizeof copy, &d);
}

static void test_decode_not_a_marker(void **state)
{
	const size_t rec = BATCH_HEADER_BYTES;

	(void)state;
	assert_int_equal(decode_with(22, 0x10), SL_EPROTO);       /* not control */
	assert_int_equal(decode_with(22, 0x31), SL_EPROTO);       /* compressed */
	assert_int_equal(decode_with(60, 2), SL_EPROTO);          /* two records */
	assert_int_equal(decode_with(26, 1), SL_EPROTO);          /* lastOffsetDelta 1 */
	assert_int_equal(decode_with(rec + 0, 0x22), SL_EPROTO);  /* length 17 */
	assert_int_equal(decode_with(rec + 3, 0x02), SL_EPROTO);  /* offsetDelta 1 */
	assert_int_equal(decode_with(rec + 16, 0x02), SL_EPROTO); /* one header */
	/* Well-framed control records that are not version-0 markers. */
	assert_int_equal(decode_with(rec + 6, 1), SL_EUNSUPPORTED);  /* key version 1 */
	assert_int_equal(decode_with(rec + 8, 3), SL_EUNSUPPORTED);  /* KRaft type */
	assert_int_equal(decode_with(rec + 11, 1), SL_EUNSUPPORTED); /* value version 1 */
	assert_int_equal(decode_with(rec + 8, 0), 0);                /* ABORT */
}

static void test_decode_empty_control_batch(void **state)
{
	uint8_t p[BATCH_HEADER_BYTES];
	struct marker d;

	(void)state;
	memcpy(p, commit_marker, sizeof p);
	be32_store(p + 8, BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD);
	be32_store(p + 57, 0);
	fix_crc(p, sizeof p);
	assert_int_equal(marker_decode(p, sizeof p, &d), SL_ENOTFOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_bytes),
		cmocka_unit_test(test_abort_key_and_header),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_decode_truncated_and_crc),
		cmocka_unit_test(test_decode_not_a_marker),
		cmocka_unit_test(test_decode_empty_control_batch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
