/* batch.c — Kafka record batch (magic 2) header parsing and validation.
 *
 * Owns the rules a produced batch must pass before the write path accepts
 * it: lengths, magic, CRC-32C, record count against lastOffsetDelta, the
 * codec, and the exact framing of every record (after bounded
 * decompression, see compress.c). Also the in-place header patches the
 * read path applies. Pure logic: bytes in, a verdict out. */
#include "storage/batch.h"

#include "base/buf.h"
#include "base/err.h"
#include "base/limits.h"
#include "storage/crc32c.h"

/* batchLength counts everything after itself: the 49 header bytes from
 * partitionLeaderEpoch to recordCount, then the records. */
#define BATCH_LENGTH_MIN (BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD)
#define BATCH_CRC_START 21

/* Smallest encoded record: length varint + attributes + timestampDelta +
 * offsetDelta + keyLength + valueLength + header count, one byte each. */
#define RECORD_BYTES_MIN 7

int batch_parse_header(const uint8_t *p, size_t len, struct batch_info *out)
{
	if (len < BATCH_LOG_OVERHEAD)
		return SL_EPROTO;
	int32_t batch_length = (int32_t)be32_load(p + 8);
	if (batch_length < BATCH_LENGTH_MIN)
		return SL_EPROTO;
	if (batch_length > SL_BATCH_BYTES_MAX)
		return SL_ELIMIT;
	if ((size_t)batch_length > len - BATCH_LOG_OVERHEAD)
		return SL_EPROTO;
	/* Magic 0/1 (the pre-0.11 message sets) are malformed for us: the
	 * API layer answers CORRUPT_MESSAGE, not a silent conversion. */
	if ((int8_t)p[16] != 2)
		return SL_EPROTO;

	struct kreader r;
	kreader_init(&r, p, BATCH_HEADER_BYTES);
	out->base_offset = kreader_i64(&r);
	out->batch_length = kreader_i32(&r);
	out->leader_epoch = kreader_i32(&r);
	out->magic = kreader_i8(&r);
	out->crc = kreader_u32(&r);
	out->attributes = kreader_i16(&r);
	out->last_offset_delta = kreader_i32(&r);
	out->base_timestamp = kreader_i64(&r);
	out->max_timestamp = kreader_i64(&r);
	out->producer_id = kreader_i64(&r);
	out->producer_epoch = kreader_i16(&r);
	out->base_sequence = kreader_i32(&r);
	out->record_count = kreader_i32(&r);
	return r.err ? SL_EPROTO : 0;
}

/* A signed varint that must fit in int32 (Kafka's readVarint). Inline,
 * as kreader_varint: six of them per record of every produced batch. */
static inline int32_t read_varint32(struct kreader *r)
{
	int64_t v = kreader_varint(r);
	if (v < INT32_MIN || v > INT32_MAX) {
		r->err = true;
		return 0;
	}
	return (int32_t)v;
}

/* A length-prefixed byte string inside a record: -1 is null when allowed,
 * otherwise 0 .. bytes left. Returns its bytes (NULL when null) and sets
 * *len to its length or -1. */
static inline const uint8_t *bytes_field(struct kreader *r, bool nullable, int32_t *len)
{
	int32_t n = read_varint32(r);
	*len = n;
	if (n == -1 && nullable)
		return NULL;
	if (n < 0) {
		r->err = true;
		*len = -1;
		return NULL;
	}
	return kreader_take(r, (size_t)n);
}

/* Decode one record's body (after its length prefix) into rec's key,
 * value, headers, deltas and attributes. Returns 0 or SL_EPROTO. */
static int record_decode(const uint8_t *p, size_t len, struct batch_record *rec)
{
	struct kreader r;
	kreader_init(&r, p, len);
	const uint8_t *attributes = kreader_take(&r, 1);
	rec->attributes = attributes ? (int8_t)*attributes : 0; /* unused in magic 2 */
	rec->timestamp_delta = kreader_varint(&r);
	rec->offset_delta = read_varint32(&r);
	rec->key = bytes_field(&r, true, &rec->key_len);
	rec->value = bytes_field(&r, true, &rec->value_len);
	int32_t headers = read_varint32(&r);
	/* Each header is at least two bytes (two length varints). */
	if (headers < 0 || (size_t)headers > kreader_left(&r) / 2)
		return SL_EPROTO;
	rec->header_count = headers;
	rec->headers = p + r.pos;
	for (int32_t i = 0; i < headers && !r.err; i++) {
		int32_t n;
		(void)bytes_field(&r, false, &n); /* header key: never null */
		(void)bytes_field(&r, true, &n);  /* header value */
	}
	if (r.err || kreader_left(&r) != 0)
		return SL_EPROTO;
	rec->headers_len = (size_t)(p + len - rec->headers);
	return 0;
}

/* The records section holds exactly count records whose offsetDeltas
 * strictly increase from >= 0 and do not pass last_offset_delta. When
 * visit is given it sees each record (a nonzero return stops the walk
 * and is returned). *keyless counts the records with a null key. */
static int records_check(const uint8_t *p, size_t len, int32_t count,
			 int32_t last_offset_delta, batch_record_view_fn visit, void *arg,
			 int64_t base_timestamp, int32_t *keyless)
{
	if ((size_t)count > len / RECORD_BYTES_MIN)
		return SL_EPROTO;
	struct kreader r;
	kreader_init(&r, p, len);
	int64_t prev_delta = -1;
	*keyless = 0;
	for (int32_t i = 0; i < count; i++) {
		size_t start = r.pos;
		int32_t rec_len = read_varint32(&r);
		if (r.err || rec_len < RECORD_BYTES_MIN - 1 ||
		    (size_t)rec_len > kreader_left(&r))
			return SL_EPROTO;
		const uint8_t *body = kreader_take(&r, (size_t)rec_len);
		struct batch_record rec;
		if (record_decode(body, (size_t)rec_len, &rec))
			return SL_EPROTO;
		if (rec.offset_delta <= prev_delta || rec.offset_delta > last_offset_delta)
			return SL_EPROTO;
		prev_delta = rec.offset_delta;
		if (rec.key_len < 0)
			(*keyless)++;
		if (visit) {
			rec.index = i;
			/* Wrapping, as Java's: a client may send any int64. */
			rec.timestamp = (int64_t)((uint64_t)base_timestamp +
						  (uint64_t)rec.timestamp_delta);
			rec.raw = p + start;
			rec.raw_len = r.pos - start;
			int rc = visit(arg, &rec);
			if (rc)
				return rc;
		}
	}
	/* Nothing may follow the last record (Kafka: "Incorrect declared
	 * batch size, records still remaining"). */
	if (r.err || kreader_left(&r) != 0)
		return SL_EPROTO;
	return 0;
}

int batch_validate(const uint8_t *p, size_t len, struct batch_info *out)
{
	int rc = batch_parse_header(p, len, out);
	if (rc)
		return rc;
	size_t total = batch_total_bytes(out);
	if (len != total)
		return SL_EPROTO;

	uint32_t crc = crc32c(0, p + BATCH_CRC_START, total - BATCH_CRC_START);
	if (crc != out->crc)
		return SL_ECORRUPT;

	int codec = out->attributes & BATCH_ATTR_CODEC_MASK;
	if (codec > BATCH_CODEC_ZSTD)
		return SL_EUNSUPPORTED;

	/* Producer batches: at least one record, and offsets 0 ..
	 * lastOffsetDelta all used (Kafka's LogValidator requires both for
	 * client appends; Sluice stores nothing else). The high watermark
	 * advances by record_count, so the two must agree. */
	if (out->record_count <= 0 || out->last_offset_delta < 0)
		return SL_EPROTO;
	if (out->record_count > SL_BATCH_RECORDS_MAX)
		return SL_ELIMIT;
	if ((int64_t)out->last_offset_delta + 1 != out->record_count)
		return SL_EPROTO;

	const uint8_t *records = p + BATCH_HEADER_BYTES;
	size_t records_len = total - BATCH_HEADER_BYTES;
	if (codec == BATCH_CODEC_NONE)
		return records_check(records, records_len, out->record_count,
				     out->last_offset_delta, NULL, NULL, 0, &out->keyless_records);

	struct kbuf plain;
	kbuf_init(&plain);
	rc = batch_decompress((enum batch_codec)codec, records, records_len,
			      &plain, SL_DECOMPRESSED_BYTES_MAX);
	if (rc == 0)
		rc = records_check(plain.data, plain.len, out->record_count,
				   out->last_offset_delta, NULL, NULL, 0, &out->keyless_records);
	kbuf_free(&plain);
	return rc;
}

int batch_records_view(const uint8_t *p, size_t len, struct kbuf *plain,
		       batch_record_view_fn visit, void *arg)
{
	struct batch_info info;
	int rc = batch_parse_header(p, len, &info);
	if (rc)
		return rc;
	size_t total = batch_total_bytes(&info);
	if (len < total || info.record_count < 0 || info.record_count > SL_BATCH_RECORDS_MAX)
		return SL_EPROTO;
	int codec = info.attributes & BATCH_ATTR_CODEC_MASK;
	if (codec > BATCH_CODEC_ZSTD)
		return SL_EUNSUPPORTED;
	/* LogAppendTime batches (attribute bit 3): every record carries the
	 * batch's max timestamp. */
	bool log_append = info.attributes & BATCH_ATTR_LOG_APPEND_TIME;
	const uint8_t *records = p + BATCH_HEADER_BYTES;
	size_t records_len = total - BATCH_HEADER_BYTES;
	if (codec != BATCH_CODEC_NONE) {
		plain->len = 0;
		rc = batch_decompress((enum batch_codec)codec, records, records_len, plain,
				      SL_DECOMPRESSED_BYTES_MAX);
		if (rc)
			return rc;
		records = plain->data;
		records_len = plain->len;
	}
	int32_t keyless;
	return records_check(records, records_len, info.record_count, info.last_offset_delta,
			     visit, arg, log_append ? info.max_timestamp : info.base_timestamp,
			     &keyless);
}

struct each_adapter {
	batch_record_fn visit;
	void *arg;
};

static int each_visit(void *arg, const struct batch_record *rec)
{
	struct each_adapter *ad = arg;
	return ad->visit(ad->arg, rec->offset_delta, rec->timestamp);
}

int batch_records_each(const uint8_t *p, size_t len, batch_record_fn visit, void *arg)
{
	struct kbuf plain;
	kbuf_init(&plain);
	struct each_adapter ad = { visit, arg };
	int rc = batch_records_view(p, len, &plain, each_visit, &ad);
	kbuf_free(&plain);
	return rc;
}

int records_validate(const uint8_t *p, size_t len, batch_visit_fn visit, void *arg)
{
	if (len == 0)
		return SL_EPROTO;
	size_t pos = 0;
	while (pos < len) {
		struct batch_info info;
		int rc = batch_parse_header(p + pos, len - pos, &info);
		if (rc)
			return rc; /* includes a partial batch at the end */
		size_t total = batch_total_bytes(&info);
		rc = batch_validate(p + pos, total, &info);
		if (rc)
			return rc;
		if (visit) {
			rc = visit(arg, p + pos, &info);
			if (rc)
				return rc;
		}
		pos += total;
	}
	return 0;
}

void batch_patch(uint8_t *batch, int64_t base_offset, int32_t leader_epoch)
{
	be64_store(batch, (uint64_t)base_offset);
	be32_store(batch + 12, (uint32_t)leader_epoch);
}
