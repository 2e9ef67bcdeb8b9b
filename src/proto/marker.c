/* marker.c — encode and decode COMMIT/ABORT control batches (marker.h):
 * the fixed 78-byte layout Kafka's brokers write and clients filter on. */
#include "proto/marker.h"

#include "base/buf.h"
#include "base/err.h"
#include "storage/batch.h"
#include "storage/crc32c.h"

#define MARKER_ATTRIBUTES (BATCH_ATTR_TRANSACTIONAL | BATCH_ATTR_CONTROL)
#define MARKER_RECORD_BODY_BYTES 16 /* the record after its length varint */
#define MARKER_KEY_BYTES 4          /* version, type */
#define MARKER_VALUE_BYTES 6        /* version, coordinator epoch */

static void be16_put(uint8_t *p, int16_t v)
{
	p[0] = (uint8_t)((uint16_t)v >> 8);
	p[1] = (uint8_t)v;
}

void marker_encode(uint8_t out[MARKER_BATCH_BYTES], const struct marker *m)
{
	uint8_t *r = out + BATCH_HEADER_BYTES;

	be64_store(out + 0, 0);
	be32_store(out + 8, MARKER_BATCH_BYTES - BATCH_LOG_OVERHEAD);
	be32_store(out + 12, (uint32_t)m->leader_epoch);
	out[16] = 2;
	be16_put(out + 21, MARKER_ATTRIBUTES);
	be32_store(out + 23, 0);
	be64_store(out + 27, (uint64_t)m->timestamp_ms);
	be64_store(out + 35, (uint64_t)m->timestamp_ms);
	be64_store(out + 43, (uint64_t)m->producer_id);
	be16_put(out + 51, m->producer_epoch);
	be32_store(out + 53, UINT32_MAX); /* baseSequence -1 */
	be32_store(out + 57, 1);
	/* The record; every varint here is one byte (zigzag doubles it). */
	r[0] = MARKER_RECORD_BODY_BYTES * 2;
	r[1] = 0; /* attributes */
	r[2] = 0; /* timestampDelta */
	r[3] = 0; /* offsetDelta */
	r[4] = MARKER_KEY_BYTES * 2;
	be16_put(r + 5, 0);
	be16_put(r + 7, m->commit ? MARKER_TYPE_COMMIT : MARKER_TYPE_ABORT);
	r[9] = MARKER_VALUE_BYTES * 2;
	be16_put(r + 10, 0);
	be32_store(r + 12, (uint32_t)m->coordinator_epoch);
	r[16] = 0; /* headers */
	be32_store(out + 17, crc32c(0, out + 21, MARKER_BATCH_BYTES - 21));
}

int marker_decode(const uint8_t *p, size_t len, struct marker *out)
{
	struct batch_info b;
	struct kreader r;

	if (batch_parse_header(p, len, &b) != 0 || batch_total_bytes(&b) != len)
		return SL_EPROTO;
	if (crc32c(0, p + 21, len - 21) != b.crc)
		return SL_ECORRUPT;
	if (!marker_is_control(b.attributes) || (b.attributes & 0x07) != BATCH_CODEC_NONE)
		return SL_EPROTO;
	if (b.record_count == 0 && len == BATCH_HEADER_BYTES)
		return SL_ENOTFOUND;
	if (b.record_count != 1 || b.last_offset_delta != 0)
		return SL_EPROTO;
	kreader_init(&r, p + BATCH_HEADER_BYTES, len - BATCH_HEADER_BYTES);
	int64_t body = kreader_varint(&r);
	if (r.err || body < 0 || (uint64_t)body != kreader_left(&r))
		return SL_EPROTO;
	(void)kreader_i8(&r);     /* attributes: unused */
	(void)kreader_varint(&r); /* timestampDelta */
	int64_t offset_delta = kreader_varint(&r);
	int64_t key_len = kreader_varint(&r);
	if (r.err || offset_delta != 0 || key_len < 0 || (uint64_t)key_len > kreader_left(&r))
		return SL_EPROTO;
	const uint8_t *key = kreader_take(&r, (size_t)key_len);
	int64_t value_len = kreader_varint(&r);
	if (r.err || value_len < -1 || value_len > (int64_t)kreader_left(&r))
		return SL_EPROTO;
	const uint8_t *value = value_len > 0 ? kreader_take(&r, (size_t)value_len) : NULL;
	int64_t headers = kreader_varint(&r);
	if (r.err || headers != 0 || kreader_left(&r) != 0)
		return SL_EPROTO;
	/* A record well framed, but not a marker Sluice knows: skipped. */
	if (key_len != MARKER_KEY_BYTES || be16_load(key) != 0)
		return SL_EUNSUPPORTED;
	uint16_t type = be16_load(key + 2);
	if (type != MARKER_TYPE_ABORT && type != MARKER_TYPE_COMMIT)
		return SL_EUNSUPPORTED;
	/* Kafka reads version then coordinator epoch and ignores any more. */
	if (value_len < MARKER_VALUE_BYTES || be16_load(value) != 0)
		return SL_EUNSUPPORTED;
	out->commit = type == MARKER_TYPE_COMMIT;
	out->producer_id = b.producer_id;
	out->producer_epoch = b.producer_epoch;
	out->coordinator_epoch = (int32_t)be32_load(value + 2);
	out->leader_epoch = b.leader_epoch;
	out->timestamp_ms = b.max_timestamp;
	return 0;
}
