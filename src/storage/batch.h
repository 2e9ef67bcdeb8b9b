/* batch.h — Kafka record batches (magic 2): header parsing, validation,
 * and the in-place patches the read path applies.
 *
 * Layout (all big-endian), offsets from the start of the batch:
 *    0 baseOffset int64        | not covered by the CRC
 *    8 batchLength int32       | bytes after this field
 *   12 partitionLeaderEpoch int32
 *   16 magic int8 (= 2)
 *   17 crc uint32             (CRC-32C of bytes 21 .. end)
 *   21 attributes int16       (bits 0-2 codec, 3 timestamp type,
 *                              4 transactional, 5 control)
 *   23 lastOffsetDelta int32
 *   27 baseTimestamp int64
 *   35 maxTimestamp int64
 *   43 producerId int64
 *   51 producerEpoch int16
 *   53 baseSequence int32
 *   57 recordCount int32
 *   61 records...
 */
#ifndef SLUICE_BATCH_H
#define SLUICE_BATCH_H

#include <stddef.h>
#include <stdint.h>

#define BATCH_HEADER_BYTES 61
#define BATCH_LOG_OVERHEAD 12 /* baseOffset + batchLength */
#define BATCH_ATTR_CODEC_MASK 0x07
#define BATCH_ATTR_LOG_APPEND_TIME 0x08
#define BATCH_ATTR_TRANSACTIONAL 0x10
#define BATCH_ATTR_CONTROL 0x20

enum batch_codec {
	BATCH_CODEC_NONE = 0,
	BATCH_CODEC_GZIP = 1,
	BATCH_CODEC_SNAPPY = 2,
	BATCH_CODEC_LZ4 = 3,
	BATCH_CODEC_ZSTD = 4,
};

struct batch_info {
	int64_t base_offset;
	int32_t batch_length;    /* as on the wire: total bytes - 12 */
	int32_t leader_epoch;
	int8_t magic;
	uint32_t crc;
	int16_t attributes;
	int32_t last_offset_delta;
	int64_t base_timestamp;
	int64_t max_timestamp;
	int64_t producer_id;
	int16_t producer_epoch;
	int32_t base_sequence;
	int32_t record_count;
	int32_t keyless_records; /* set by batch_validate only: records whose
				    key is null (compacted topics refuse them) */
};

static inline size_t batch_total_bytes(const struct batch_info *b)
{
	return (size_t)b->batch_length + BATCH_LOG_OVERHEAD;
}

/* Parse the header of the batch at p (len bytes available) without
 * checking the CRC or the records. Returns 0, SL_EPROTO if the header is
 * truncated or inconsistent (batchLength < 49, beyond len, magic != 2),
 * or SL_ELIMIT if batchLength exceeds SL_BATCH_BYTES_MAX. */
int batch_parse_header(const uint8_t *p, size_t len, struct batch_info *out);

/* Full validation of one batch of exactly batch_total_bytes() bytes:
 * header, CRC-32C, record count vs lastOffsetDelta, and the framing of
 * every record (after decompressing, bounded by SL_DECOMPRESSED_BYTES_MAX).
 * Returns 0, SL_ECORRUPT (CRC), SL_EPROTO (framing), SL_EUNSUPPORTED
 * (unknown codec) or SL_ELIMIT. */
int batch_validate(const uint8_t *p, size_t len, struct batch_info *out);

/* Callback for records_validate: called once per valid batch. */
typedef int (*batch_visit_fn)(void *arg, const uint8_t *batch, const struct batch_info *info);

/* Validate a Produce "records" blob: one or more whole batches that fill
 * it exactly. Calls visit for each batch (a nonzero return stops and is
 * returned). Returns 0, or the first batch error as batch_validate does,
 * or SL_EPROTO if the blob is empty or ends in a partial batch. */
int records_validate(const uint8_t *p, size_t len, batch_visit_fn visit, void *arg);

/* Called for each record by batch_records_each: its offsetDelta and its
 * timestamp (baseTimestamp + timestampDelta). Nonzero stops the walk. */
typedef int (*batch_record_fn)(void *arg, int32_t offset_delta, int64_t timestamp);

/* Walk the records of one batch (decompressing it, bounded by
 * SL_DECOMPRESSED_BYTES_MAX), checking their framing as batch_validate
 * does but not the CRC. Returns 0, the visitor's nonzero return, or
 * SL_EPROTO / SL_EUNSUPPORTED / SL_ELIMIT. */
int batch_records_each(const uint8_t *batch, size_t len, batch_record_fn visit, void *arg);

/* One record of a batch as batch_records_view decodes it. The pointers
 * are views into the batch (uncompressed) or into the plain buffer given
 * to batch_records_view (compressed), valid while both are unchanged. */
struct batch_record {
	int32_t index;            /* position in the batch, from 0 */
	int8_t attributes;        /* unused in magic 2, kept for rewriting */
	int64_t timestamp_delta;
	int64_t timestamp;        /* the batch's base (or, for LogAppendTime,
				     max) timestamp + timestamp_delta */
	int32_t offset_delta;
	const uint8_t *key;       /* NULL when key_len == -1 (null key) */
	int32_t key_len;
	const uint8_t *value;     /* NULL when value_len == -1 (tombstone) */
	int32_t value_len;
	int32_t header_count;
	const uint8_t *headers;   /* the encoded headers after their count */
	size_t headers_len;
	const uint8_t *raw;       /* the whole record, length prefix included */
	size_t raw_len;
};

typedef int (*batch_record_view_fn)(void *arg, const struct batch_record *rec);

/* Walk the records of one batch as batch_records_each does, handing each
 * decoded record to visit. plain (an initialised kbuf, reused between
 * calls to save allocations) receives the decompressed records of a
 * compressed batch. Returns 0, the visitor's nonzero return, or
 * SL_EPROTO / SL_EUNSUPPORTED / SL_ELIMIT / SL_ENOMEM. */
struct kbuf;
int batch_records_view(const uint8_t *batch, size_t len, struct kbuf *plain,
		       batch_record_view_fn visit, void *arg);

/* Patch a stored batch before it is sent: set baseOffset (bytes 0-7) and
 * partitionLeaderEpoch (12-15). Neither is covered by the CRC. */
void batch_patch(uint8_t *batch, int64_t base_offset, int32_t leader_epoch);

/* Decompress a batch's records section into out (growing it), bounded by
 * limit bytes. Returns 0, SL_EPROTO, SL_EUNSUPPORTED or SL_ELIMIT. Used by
 * validation and by tools. */
int batch_decompress(enum batch_codec codec, const uint8_t *in, size_t in_len,
		     struct kbuf *out, size_t limit);

/* Compress a records section with codec, appending to out (gzip with its
 * gzip wrapper, snappy in xerial framing as Kafka's broker writes it, the
 * lz4 frame format, zstd level 3). Used by the cleaner's rewrites.
 * Returns 0, SL_ENOMEM (out unchanged) or SL_EUNSUPPORTED. */
int batch_compress(enum batch_codec codec, const uint8_t *in, size_t in_len, struct kbuf *out);

#endif
