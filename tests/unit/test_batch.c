/* test_batch.c — record batch parsing, validation, patching and bounded
 * decompression. Batches are built here by a small builder (records with
 * keys, values and headers; each codec through its own library; the CRC
 * through crc32c), independently of the code under test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/limits.h"
#include "storage/batch.h"
#include "storage/crc32c.h"

/* ---- builder ---- */

struct test_header {
	const char *key;
	const char *value; /* NULL: null value */
};

struct test_record {
	const char *key;   /* NULL: null key */
	const char *value; /* NULL: null value */
	int header_count;
	struct test_header headers[3];
};

static void put_nullable(struct kbuf *b, const char *s)
{
	if (!s) {
		kbuf_put_varint(b, -1);
		return;
	}
	kbuf_put_varint(b, (int64_t)strlen(s));
	kbuf_put(b, s, strlen(s));
}

/* One record, framed with its length. */
static void put_record(struct kbuf *out, const struct test_record *r,
		       int64_t offset_delta, int64_t timestamp_delta)
{
	struct kbuf body;
	kbuf_init(&body);
	kbuf_put_i8(&body, 0);
	kbuf_put_varint(&body, timestamp_delta);
	kbuf_put_varint(&body, offset_delta);
	put_nullable(&body, r->key);
	put_nullable(&body, r->value);
	kbuf_put_varint(&body, r->header_count);
	for (int i = 0; i < r->header_count; i++) {
		put_nullable(&body, r->headers[i].key);
		put_nullable(&body, r->headers[i].value);
	}
	kbuf_put_varint(out, (int64_t)body.len);
	kbuf_put(out, body.data, body.len);
	kbuf_free(&body);
}

static const struct test_record sample[] = {
	{ "key-0", "value zero", 0, { { 0 } } },
	{ NULL, "value with null key", 1, { { "h1", "v1" } } },
	{ "key-2", NULL, 2, { { "trace", "abc" }, { "empty", NULL } } },
	{ "", "", 0, { { 0 } } },
};
#define SAMPLE_COUNT 4

static void sample_records(struct kbuf *out)
{
	for (int i = 0; i < SAMPLE_COUNT; i++)
		put_record(out, &sample[i], i, i * 10);
}

static void compress_gzip(const uint8_t *in, size_t len, struct kbuf *out)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8,
				      Z_DEFAULT_STRATEGY), Z_OK);
	size_t cap = deflateBound(&z, len) + 64;
	uint8_t *d = kbuf_reserve(out, cap);
	assert_non_null(d);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = d;
	z.avail_out = (uInt)cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	out->len += cap - z.avail_out;
	deflateEnd(&z);
}

static void compress_snappy_raw(const uint8_t *in, size_t len, struct kbuf *out)
{
	size_t cap = snappy_max_compressed_length(len);
	uint8_t *d = kbuf_reserve(out, cap);
	assert_non_null(d);
	assert_int_equal(snappy_compress((const char *)in, len, (char *)d, &cap), SNAPPY_OK);
	out->len += cap;
}

/* snappy-java's framing: magic, version, compatible version, then
 * [int32 length][raw block] with blocks of at most block_bytes input. */
static void compress_snappy_xerial(const uint8_t *in, size_t len, struct kbuf *out,
				   size_t block_bytes)
{
	static const uint8_t magic[8] = { 0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0 };
	kbuf_put(out, magic, 8);
	kbuf_put_i32(out, 1);
	kbuf_put_i32(out, 1);
	for (size_t pos = 0; pos < len; pos += block_bytes) {
		size_t n = len - pos < block_bytes ? len - pos : block_bytes;
		size_t at = out->len;
		kbuf_put_i32(out, 0);
		compress_snappy_raw(in + pos, n, out);
		kbuf_patch_i32(out, at, (int32_t)(out->len - at - 4));
	}
}

static void compress_lz4(const uint8_t *in, size_t len, struct kbuf *out)
{
	size_t cap = LZ4F_compressFrameBound(len, NULL);
	uint8_t *d = kbuf_reserve(out, cap);
	assert_non_null(d);
	size_t n = LZ4F_compressFrame(d, cap, in, len, NULL);
	assert_false(LZ4F_isError(n));
	out->len += n;
}

static void compress_zstd(const uint8_t *in, size_t len, struct kbuf *out)
{
	size_t cap = ZSTD_compressBound(len);
	uint8_t *d = kbuf_reserve(out, cap);
	assert_non_null(d);
	size_t n = ZSTD_compress(d, cap, in, len, 3);
	assert_false(ZSTD_isError(n));
	out->len += n;
}

/* Streaming zstd without a pledged size: the frame does not record its
 * content size (as zstd-jni's ZstdOutputStream writes it). */
static void compress_zstd_stream(const uint8_t *in, size_t len, struct kbuf *out)
{
	ZSTD_CCtx *c = ZSTD_createCCtx();
	assert_non_null(c);
	assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0)));
	size_t cap = ZSTD_compressBound(len) + 64;
	uint8_t *d = kbuf_reserve(out, cap);
	assert_non_null(d);
	ZSTD_inBuffer ib = { in, len, 0 };
	ZSTD_outBuffer ob = { d, cap, 0 };
	size_t r;
	do {
		r = ZSTD_compressStream2(c, &ob, &ib, ZSTD_e_end);
		assert_false(ZSTD_isError(r));
	} while (r != 0);
	out->len += ob.pos;
	ZSTD_freeCCtx(c);
	assert_int_equal(ZSTD_getFrameContentSize(d, ob.pos), ZSTD_CONTENTSIZE_UNKNOWN);
}

enum test_codec {
	TC_NONE, TC_GZIP, TC_SNAPPY_RAW, TC_SNAPPY_XERIAL, TC_LZ4, TC_ZSTD, TC_ZSTD_STREAM,
};

static int codec_attr(enum test_codec c)
{
	switch (c) {
	case TC_NONE: return BATCH_CODEC_NONE;
	case TC_GZIP: return BATCH_CODEC_GZIP;
	case TC_SNAPPY_RAW:
	case TC_SNAPPY_XERIAL: return BATCH_CODEC_SNAPPY;
	case TC_LZ4: return BATCH_CODEC_LZ4;
	case TC_ZSTD:
	case TC_ZSTD_STREAM: return BATCH_CODEC_ZSTD;
	}
	return 0;
}

static void compress_with(enum test_codec c, const uint8_t *in, size_t len, struct kbuf *out)
{
	switch (c) {
	case TC_NONE: kbuf_put(out, in, len); break;
	case TC_GZIP: compress_gzip(in, len, out); break;
	case TC_SNAPPY_RAW: compress_snappy_raw(in, len, out); break;
	case TC_SNAPPY_XERIAL: compress_snappy_xerial(in, len, out, 32); break;
	case TC_LZ4: compress_lz4(in, len, out); break;
	case TC_ZSTD: compress_zstd(in, len, out); break;
	case TC_ZSTD_STREAM: compress_zstd_stream(in, len, out); break;
	}
}

/* Header fields the tests vary. */
struct batch_spec {
	int16_t attributes; /* codec bits are filled from the codec */
	int32_t last_offset_delta;
	int32_t record_count;
	int8_t magic;
};

/* Append a whole batch (header + payload) with a correct CRC and
 * batchLength to out. */
static void put_batch_payload(struct kbuf *out, const struct batch_spec *s,
			      const uint8_t *payload, size_t payload_len)
{
	size_t at = out->len;
	kbuf_put_i64(out, 1234);               /* baseOffset */
	kbuf_put_i32(out, 0);                  /* batchLength, patched */
	kbuf_put_i32(out, -1);                 /* partitionLeaderEpoch */
	kbuf_put_i8(out, s->magic);
	kbuf_put_u32(out, 0);                  /* crc, patched */
	kbuf_put_i16(out, s->attributes);
	kbuf_put_i32(out, s->last_offset_delta);
	kbuf_put_i64(out, 1700000000000);      /* baseTimestamp */
	kbuf_put_i64(out, 1700000000030);      /* maxTimestamp */
	kbuf_put_i64(out, 42);                 /* producerId */
	kbuf_put_i16(out, 3);                  /* producerEpoch */
	kbuf_put_i32(out, 100);                /* baseSequence */
	kbuf_put_i32(out, s->record_count);
	kbuf_put(out, payload, payload_len);
	assert_false(out->oom);
	uint8_t *b = out->data + at;
	size_t total = out->len - at;
	be32_store(b + 8, (uint32_t)(total - 12));
	be32_store(b + 17, crc32c(0, b + 21, total - 21));
}

static void fix_crc(uint8_t *b, size_t total)
{
	be32_store(b + 17, crc32c(0, b + 21, total - 21));
}

static void build_batch(struct kbuf *out, enum test_codec c, const uint8_t *records,
			size_t records_len, int32_t count)
{
	struct kbuf payload;
	kbuf_init(&payload);
	compress_with(c, records, records_len, &payload);
	struct batch_spec s = { (int16_t)codec_attr(c), count - 1, count, 2 };
	put_batch_payload(out, &s, payload.data, payload.len);
	kbuf_free(&payload);
}

static void build_sample(struct kbuf *out, enum test_codec c)
{
	struct kbuf recs;
	kbuf_init(&recs);
	sample_records(&recs);
	build_batch(out, c, recs.data, recs.len, SAMPLE_COUNT);
	kbuf_free(&recs);
}

/* ---- tests: valid batches ---- */

static void check_sample_info(const struct batch_info *info, int codec, size_t total)
{
	assert_int_equal(info->base_offset, 1234);
	assert_int_equal(batch_total_bytes(info), total);
	assert_int_equal(info->leader_epoch, -1);
	assert_int_equal(info->magic, 2);
	assert_int_equal(info->attributes & 7, codec);
	assert_int_equal(info->last_offset_delta, SAMPLE_COUNT - 1);
	assert_int_equal(info->base_timestamp, 1700000000000);
	assert_int_equal(info->max_timestamp, 1700000000030);
	assert_int_equal(info->producer_id, 42);
	assert_int_equal(info->producer_epoch, 3);
	assert_int_equal(info->base_sequence, 100);
	assert_int_equal(info->record_count, SAMPLE_COUNT);
}

static void test_valid_each_codec(void **state)
{
	for (int c = TC_NONE; c <= TC_ZSTD_STREAM; c++) {
		struct kbuf b;
		kbuf_init(&b);
		build_sample(&b, (enum test_codec)c);
		struct batch_info info;
		memset(&info, 0, sizeof info);
		assert_int_equal(batch_parse_header(b.data, b.len, &info), 0);
		check_sample_info(&info, codec_attr(c), b.len);
		memset(&info, 0, sizeof info);
		int rc = batch_validate(b.data, b.len, &info);
		if (rc)
			fail_msg("codec %d: %s", c, sl_strerror(rc));
		check_sample_info(&info, codec_attr(c), b.len);
		assert_int_equal(info.crc, crc32c(0, b.data + 21, b.len - 21));
		kbuf_free(&b);
	}
}

static void test_control_and_transactional(void **state)
{
	/* A commit marker: control + transactional, one record whose key is
	 * the control record type. */
	struct kbuf recs, b;
	kbuf_init(&recs);
	kbuf_init(&b);
	struct kbuf key;
	kbuf_init(&key);
	kbuf_put_i16(&key, 0);
	kbuf_put_i16(&key, 1);
	struct kbuf body;
	kbuf_init(&body);
	kbuf_put_i8(&body, 0);
	kbuf_put_varint(&body, 0);
	kbuf_put_varint(&body, 0);
	kbuf_put_varint(&body, (int64_t)key.len);
	kbuf_put(&body, key.data, key.len);
	kbuf_put_varint(&body, 6);
	kbuf_put(&body, "\0\0\0\0\0\0", 6);
	kbuf_put_varint(&body, 0);
	kbuf_put_varint(&recs, (int64_t)body.len);
	kbuf_put(&recs, body.data, body.len);
	struct batch_spec s = { 0x30, 0, 1, 2 };
	put_batch_payload(&b, &s, recs.data, recs.len);
	struct batch_info info;
	assert_int_equal(batch_validate(b.data, b.len, &info), 0);
	assert_int_equal(info.attributes, 0x30);
	kbuf_free(&recs);
	kbuf_free(&b);
	kbuf_free(&key);
	kbuf_free(&body);
}

static void test_many_records_compressed(void **state)
{
	/* Enough records that every codec needs several output chunks. */
	enum { N = 20000 };
	struct kbuf recs;
	kbuf_init(&recs);
	char val[64];
	for (int i = 0; i < N; i++) {
		snprintf(val, sizeof val, "value number %d with some padding", i);
		struct test_record r = { "k", val, 1, { { "hk", "hv" } } };
		put_record(&recs, &r, i, i);
	}
	assert_true(recs.len > 256 * 1024);
	for (int c = TC_NONE; c <= TC_ZSTD_STREAM; c++) {
		struct kbuf b;
		kbuf_init(&b);
		if (c == TC_SNAPPY_XERIAL) {
			struct kbuf payload;
			kbuf_init(&payload);
			compress_snappy_xerial(recs.data, recs.len, &payload, 32 * 1024);
			struct batch_spec s = { BATCH_CODEC_SNAPPY, N - 1, N, 2 };
			put_batch_payload(&b, &s, payload.data, payload.len);
			kbuf_free(&payload);
		} else {
			build_batch(&b, (enum test_codec)c, recs.data, recs.len, N);
		}
		struct batch_info info;
		int rc = batch_validate(b.data, b.len, &info);
		if (rc)
			fail_msg("codec %d: %s", c, sl_strerror(rc));
		assert_int_equal(info.record_count, N);

		/* And the decompressed bytes are the records. */
		if (c != TC_NONE) {
			struct kbuf plain;
			kbuf_init(&plain);
			assert_int_equal(batch_decompress((enum batch_codec)codec_attr(c),
							  b.data + 61, b.len - 61, &plain,
							  SL_DECOMPRESSED_BYTES_MAX), 0);
			assert_int_equal(plain.len, recs.len);
			assert_memory_equal(plain.data, recs.data, recs.len);
			kbuf_free(&plain);
		}
		kbuf_free(&b);
	}
	kbuf_free(&recs);
}

/* ---- tests: corrupt batches ---- */

static void test_flipped_bit(void **state)
{
	for (int c = TC_NONE; c <= TC_ZSTD; c++) {
		struct kbuf b;
		kbuf_init(&b);
		build_sample(&b, (enum test_codec)c);
		struct batch_info info;
		/* Every bit from attributes to the end is covered by the CRC. */
		for (size_t byte = 21; byte < b.len; byte += 3) {
			b.data[byte] ^= 0x10;
			assert_int_equal(batch_validate(b.data, b.len, &info), SL_ECORRUPT);
			b.data[byte] ^= 0x10;
		}
		/* The stored CRC itself. */
		b.data[18] ^= 1;
		assert_int_equal(batch_validate(b.data, b.len, &info), SL_ECORRUPT);
		b.data[18] ^= 1;
		assert_int_equal(batch_validate(b.data, b.len, &info), 0);
		kbuf_free(&b);
	}
}

static void test_truncated(void **state)
{
	struct kbuf b;
	kbuf_init(&b);
	build_sample(&b, TC_NONE);
	struct batch_info info;
	for (size_t len = 0; len < b.len; len++) {
		assert_int_equal(batch_parse_header(b.data, len, &info), SL_EPROTO);
		assert_int_equal(batch_validate(b.data, len, &info), SL_EPROTO);
		if (len > 0)
			assert_int_equal(records_validate(b.data, len, NULL, NULL), SL_EPROTO);
	}
	kbuf_free(&b);
}

static void test_batch_length(void **state)
{
	struct kbuf b;
	kbuf_init(&b);
	build_sample(&b, TC_NONE);
	struct batch_info info;
	uint32_t good = be32_load(b.data + 8);

	be32_store(b.data + 8, 48); /* below the header */
	assert_int_equal(batch_parse_header(b.data, b.len, &info), SL_EPROTO);
	assert_int_equal(batch_validate(b.data, b.len, &info), SL_EPROTO);
	be32_store(b.data + 8, (uint32_t)-5);
	assert_int_equal(batch_validate(b.data, b.len, &info), SL_EPROTO);
	be32_store(b.data + 8, good + 1); /* beyond the buffer */
	assert_int_equal(batch_validate(b.data, b.len, &info), SL_EPROTO);
	be32_store(b.data + 8, SL_BATCH_BYTES_MAX + 1); /* above the limit */
	assert_int_equal(batch_parse_header(b.data, b.len, &info), SL_ELIMIT);
	assert_int_equal(batch_validate(b.data, b.len, &info), SL_ELIMIT);
	be32_store(b.data + 8, good - 1); /* shorter than the buffer */
	assert_int_equal(batch_validate(b.data, b.len, &info), SL_EPROTO);
	be32_store(b.data + 8, good);
	assert_int_equal(batch_validate(b.data, b.len, &info), 0);
	kbuf_free(&b);
}

static void test_magic(void **state)
{
	struct kbuf recs;
	kbuf_init(&recs);
	sample_records(&recs);
	for (int magic = 0; magic <= 3; magic++) {
		struct kbuf b;
		kbuf_init(&b);
		struct batch_spec s = { 0, SAMPLE_COUNT - 1, SAMPLE_COUNT, (int8_t)magic };
		put_batch_payload(&b, &s, recs.data, recs.len);
		struct batch_info info;
		assert_int_equal(batch_validate(b.data, b.len, &info), magic == 2 ? 0 : SL_EPROTO);
		kbuf_free(&b);
	}
	kbuf_free(&recs);
}

/* Build a batch from the sample records with a header override. */
static int validate_spec(const struct batch_spec *s, const uint8_t *recs, size_t len)
{
	struct kbuf b;
	kbuf_init(&b);
	put_batch_payload(&b, s, recs, len);
	struct batch_info info;
	int rc = batch_validate(b.data, b.len, &info);
	kbuf_free(&b);
	return rc;
}

static void test_record_count(void **state)
{
	struct kbuf recs;
	kbuf_init(&recs);
	sample_records(&recs);
	const uint8_t *r = recs.data;
	size_t n = recs.len;
	struct batch_spec s;

	s = (struct batch_spec){ 0, SAMPLE_COUNT - 1, -1, 2 };
	assert_int_equal(validate_spec(&s, r, n), SL_EPROTO); /* negative */
	s = (struct batch_spec){ 0, -1, 0, 2 };
	assert_int_equal(validate_spec(&s, r, n), SL_EPROTO); /* empty */
	s = (struct batch_spec){ 0, SAMPLE_COUNT - 1, SAMPLE_COUNT - 1, 2 };
	assert_int_equal(validate_spec(&s, r, n), SL_EPROTO); /* count too small */
	s = (struct batch_spec){ 0, SAMPLE_COUNT - 2, SAMPLE_COUNT - 1, 2 };
	assert_int_equal(validate_spec(&s, r, n), SL_EPROTO); /* a record left over */
	s = (struct batch_spec){ 0, SAMPLE_COUNT, SAMPLE_COUNT + 1, 2 };
	assert_int_equal(validate_spec(&s, r, n), SL_EPROTO); /* one missing */
	s = (struct batch_spec){ 0, SAMPLE_COUNT, SAMPLE_COUNT, 2 };
	assert_int_equal(validate_spec(&s, r, n), SL_EPROTO); /* vs lastOffsetDelta */
	s = (struct batch_spec){ 0, SL_BATCH_RECORDS_MAX, SL_BATCH_RECORDS_MAX + 1, 2 };
	assert_int_equal(validate_spec(&s, r, n), SL_ELIMIT);
	s = (struct batch_spec){ 0, INT32_MAX - 1, INT32_MAX, 2 };
	assert_int_equal(validate_spec(&s, r, n), SL_ELIMIT);
	s = (struct batch_spec){ 0, SAMPLE_COUNT - 1, SAMPLE_COUNT, 2 };
	assert_int_equal(validate_spec(&s, r, n), 0);
	kbuf_free(&recs);
}

static void test_offset_deltas(void **state)
{
	struct test_record r = { "k", "v", 0, { { 0 } } };
	struct kbuf recs;
	struct batch_spec s = { 0, 2, 3, 2 };

	/* Repeated delta. */
	kbuf_init(&recs);
	put_record(&recs, &r, 0, 0);
	put_record(&recs, &r, 1, 0);
	put_record(&recs, &r, 1, 0);
	assert_int_equal(validate_spec(&s, recs.data, recs.len), SL_EPROTO);
	kbuf_free(&recs);

	/* Decreasing. */
	kbuf_init(&recs);
	put_record(&recs, &r, 0, 0);
	put_record(&recs, &r, 2, 0);
	put_record(&recs, &r, 1, 0);
	assert_int_equal(validate_spec(&s, recs.data, recs.len), SL_EPROTO);
	kbuf_free(&recs);

	/* Beyond lastOffsetDelta. */
	kbuf_init(&recs);
	put_record(&recs, &r, 0, 0);
	put_record(&recs, &r, 1, 0);
	put_record(&recs, &r, 3, 0);
	assert_int_equal(validate_spec(&s, recs.data, recs.len), SL_EPROTO);
	kbuf_free(&recs);

	/* Negative. */
	kbuf_init(&recs);
	put_record(&recs, &r, -1, 0);
	put_record(&recs, &r, 1, 0);
	put_record(&recs, &r, 2, 0);
	assert_int_equal(validate_spec(&s, recs.data, recs.len), SL_EPROTO);
	kbuf_free(&recs);

	/* Fine, with negative timestamp deltas. */
	kbuf_init(&recs);
	put_record(&recs, &r, 0, -5);
	put_record(&recs, &r, 1, 7);
	put_record(&recs, &r, 2, -100000000000);
	assert_int_equal(validate_spec(&s, recs.data, recs.len), 0);
	kbuf_free(&recs);
}

/* Encode one record body by hand (after the length prefix). */
static void raw_record(struct kbuf *out, int64_t declared_len, const uint8_t *body, size_t body_len)
{
	kbuf_put_varint(out, declared_len);
	kbuf_put(out, body, body_len);
}

static void test_record_framing(void **state)
{
	struct batch_spec s = { 0, 0, 1, 2 };
	struct kbuf recs;
	/* attributes, tsDelta 0, offsetDelta 0, key len 1 'k', value len 1 'v', 0 headers */
	static const uint8_t good[] = { 0, 0, 0, 2, 'k', 2, 'v', 0 };

	kbuf_init(&recs);
	raw_record(&recs, sizeof good, good, sizeof good);
	assert_int_equal(validate_spec(&s, recs.data, recs.len), 0);
	kbuf_free(&recs);

	/* Length says one more byte than the record has (and the batch ends). */
	kbuf_init(&recs);
	raw_record(&recs, sizeof good + 1, good, sizeof good);
	assert_int_equal(validate_spec(&s, recs.data, recs.len), SL_EPROTO);
	kbuf_free(&recs);

	/* Length says one more, and a byte follows: the record has a byte
	 * its fields do not account for. */
	kbuf_init(&recs);
	raw_record(&recs, sizeof good + 1, good, sizeof good);
	kbuf_put_i8(&recs, 0);
	assert_int_equal(validate_spec(&s, recs.data, recs.len), SL_EPROTO);
	kbuf_free(&recs);

	/* Length says one less. */
	kbuf_init(&recs);
	raw_record(&recs, sizeof good - 1, good, sizeof good);
	assert_int_equal(validate_spec(&s, recs.data, recs.len), SL_EPROTO);
	kbuf_free(&recs);

	/* Negative length. */
	kbuf_init(&recs);
	raw_record(&recs, -1, good, sizeof good);
	assert_int_equal(validate_spec(&s, recs.data, recs.len), SL_EPROTO);
	kbuf_free(&recs);

	/* Trailing garbage after the last record. */
	kbuf_init(&recs);
	raw_record(&recs, sizeof good, good, sizeof good);
	kbuf_put(&recs, "xyz", 3);
	assert_int_equal(validate_spec(&s, recs.data, recs.len), SL_EPROTO);
	kbuf_free(&recs);

	/* Key length beyond the record. */
	static const uint8_t long_key[] = { 0, 0, 0, 20, 'k', 2, 'v', 0 };
	kbuf_init(&recs);
	raw_record(&recs, sizeof long_key, long_key, sizeof long_key);
	assert_int_equal(validate_spec(&s, recs.data, recs.len), SL_EPROTO);
	kbuf_free(&recs);

	/* Key length -2 (only -1 means null). */
	static const uint8_t bad_key[] = { 0, 0, 0, 3, 2, 'v', 0, 0 };
	kbuf_init(&recs);
	raw_record(&recs, sizeof bad_key, bad_key, sizeof bad_key);
	assert_int_equal(validate_spec(&s, recs.data, recs.len), SL_EPROTO);
	kbuf_free(&recs);

	/* Null header key. */
	static const uint8_t null_hkey[] = { 0, 0, 0, 1, 1, 2, 1, 2, 'v' };
	kbuf_init(&recs);
	raw_record(&recs, sizeof null_hkey, null_hkey, sizeof null_hkey);
	assert_int_equal(validate_spec(&s, recs.data, recs.len), SL_EPROTO);
	kbuf_free(&recs);

	/* Header with null value is fine. */
	static const uint8_t null_hval[] = { 0, 0, 0, 1, 1, 2, 2, 'h', 1 };
	kbuf_init(&recs);
	raw_record(&recs, sizeof null_hval, null_hval, sizeof null_hval);
	assert_int_equal(validate_spec(&s, recs.data, recs.len), 0);
	kbuf_free(&recs);

	/* Negative and huge header counts. */
	static const uint8_t neg_headers[] = { 0, 0, 0, 1, 1, 1, 2, 'h', 1 };
	kbuf_init(&recs);
	raw_record(&recs, sizeof neg_headers, neg_headers, sizeof neg_headers);
	assert_int_equal(validate_spec(&s, recs.data, recs.len), SL_EPROTO);
	kbuf_free(&recs);
	static const uint8_t many_headers[] = { 0, 0, 0, 1, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f };
	kbuf_init(&recs);
	raw_record(&recs, sizeof many_headers, many_headers, sizeof many_headers);
	assert_int_equal(validate_spec(&s, recs.data, recs.len), SL_EPROTO);
	kbuf_free(&recs);

	/* An over-long varint (11 bytes) for the timestamp delta. */
	static const uint8_t long_varint[] = { 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
					       0x80, 0x80, 0x80, 0x00, 0, 1, 1, 0 };
	kbuf_init(&recs);
	raw_record(&recs, sizeof long_varint, long_varint, sizeof long_varint);
	assert_int_equal(validate_spec(&s, recs.data, recs.len), SL_EPROTO);
	kbuf_free(&recs);

	/* Empty records section. */
	assert_int_equal(validate_spec(&s, NULL, 0), SL_EPROTO);
}

static void test_bad_compressed_payload(void **state)
{
	struct kbuf recs;
	kbuf_init(&recs);
	sample_records(&recs);
	for (int c = TC_GZIP; c <= TC_ZSTD_STREAM; c++) {
		struct kbuf payload;
		kbuf_init(&payload);
		compress_with((enum test_codec)c, recs.data, recs.len, &payload);
		struct batch_spec s = { (int16_t)codec_attr(c), SAMPLE_COUNT - 1, SAMPLE_COUNT, 2 };

		/* Garbage in place of the payload. */
		uint8_t garbage[64];
		for (size_t i = 0; i < sizeof garbage; i++)
			garbage[i] = (uint8_t)(i * 37 + 11);
		assert_int_equal(validate_spec(&s, garbage, sizeof garbage), SL_EPROTO);
		/* Empty payload. */
		assert_int_equal(validate_spec(&s, NULL, 0), SL_EPROTO);
		/* Truncated payload: every prefix fails cleanly. Raw snappy
		 * can decode a prefix that claims fewer bytes, but never to
		 * the right records. */
		for (size_t len = 0; len < payload.len; len++) {
			int rc = validate_spec(&s, payload.data, len);
			if (rc != SL_EPROTO)
				fail_msg("codec %d, prefix %zu: %d", c, len, rc);
		}
		/* Flipped bytes inside the payload (with the CRC fixed up):
		 * never a crash; any error is EPROTO. */
		for (size_t i = 0; i < payload.len; i++) {
			payload.data[i] ^= 0x5a;
			int rc = validate_spec(&s, payload.data, payload.len);
			assert_true(rc == 0 || rc == SL_EPROTO);
			payload.data[i] ^= 0x5a;
		}
		/* Trailing garbage after the compressed stream. */
		size_t good_len = payload.len;
		kbuf_put(&payload, "\x01\x02\x03", 3);
		if (c != TC_SNAPPY_XERIAL) /* xerial: a block length that runs out */
			assert_int_equal(validate_spec(&s, payload.data, payload.len), SL_EPROTO);
		payload.len = good_len;
		assert_int_equal(validate_spec(&s, payload.data, payload.len), 0);
		kbuf_free(&payload);
	}
	kbuf_free(&recs);
}

static void test_unknown_codec(void **state)
{
	struct kbuf recs;
	kbuf_init(&recs);
	sample_records(&recs);
	for (int codec = 5; codec <= 7; codec++) {
		struct batch_spec s = { (int16_t)codec, SAMPLE_COUNT - 1, SAMPLE_COUNT, 2 };
		assert_int_equal(validate_spec(&s, recs.data, recs.len), SL_EUNSUPPORTED);
	}
	struct kbuf out;
	kbuf_init(&out);
	assert_int_equal(batch_decompress((enum batch_codec)6, recs.data, recs.len, &out, 1000),
			 SL_EUNSUPPORTED);
	kbuf_free(&out);
	kbuf_free(&recs);
}

/* ---- bounded decompression ---- */

static void test_decompress_limit_exact(void **state)
{
	/* For each codec: a payload of exactly L bytes decompresses with
	 * limit L, and fails with SL_ELIMIT (allocating at most L) at L-1. */
	static const size_t sizes[] = { 1, 100, 65536, 65537, 300000 };
	for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
		size_t L = sizes[si];
		uint8_t *plain = malloc(L);
		assert_non_null(plain);
		for (size_t i = 0; i < L; i++)
			plain[i] = (uint8_t)((i * 7) ^ (i >> 9));
		for (int c = TC_GZIP; c <= TC_ZSTD_STREAM; c++) {
			struct kbuf z, out;
			kbuf_init(&z);
			kbuf_init(&out);
			compress_with((enum test_codec)c, plain, L, &z);
			enum batch_codec bc = (enum batch_codec)codec_attr(c);
			assert_int_equal(batch_decompress(bc, z.data, z.len, &out, L), 0);
			assert_int_equal(out.len, L);
			assert_memory_equal(out.data, plain, L);
			assert_true(out.cap <= L);
			kbuf_free(&out);

			kbuf_init(&out);
			int rc = batch_decompress(bc, z.data, z.len, &out, L - 1);
			if (rc != SL_ELIMIT)
				fail_msg("codec %d size %zu: %d", c, L, rc);
			assert_int_equal(out.len, 0);
			assert_true(out.cap <= L - 1);
			kbuf_free(&out);

			/* Appending to a buffer that already holds bytes. */
			kbuf_init(&out);
			kbuf_put(&out, "abc", 3);
			assert_int_equal(batch_decompress(bc, z.data, z.len, &out, L), 0);
			assert_int_equal(out.len, L + 3);
			assert_memory_equal(out.data + 3, plain, L);
			kbuf_free(&out);
			kbuf_free(&z);
		}
		free(plain);
	}
}

static void test_bombs(void **state)
{
	/* A batch whose records would decompress beyond
	 * SL_DECOMPRESSED_BYTES_MAX: zeros compress to almost nothing. */
	size_t L = SL_DECOMPRESSED_BYTES_MAX + 4096;
	uint8_t *zeros = calloc(1, L);
	assert_non_null(zeros);
	static const enum test_codec codecs[] = { TC_GZIP, TC_LZ4, TC_ZSTD, TC_ZSTD_STREAM,
						  TC_SNAPPY_XERIAL };
	for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++) {
		struct kbuf payload, b;
		kbuf_init(&payload);
		kbuf_init(&b);
		if (codecs[i] == TC_SNAPPY_XERIAL)
			compress_snappy_xerial(zeros, L, &payload, 1 << 20);
		else
			compress_with(codecs[i], zeros, L, &payload);
		assert_true(payload.len < SL_BATCH_BYTES_MAX);
		struct batch_spec s = { (int16_t)codec_attr(codecs[i]), 0, 1, 2 };
		put_batch_payload(&b, &s, payload.data, payload.len);
		struct batch_info info;
		int rc = batch_validate(b.data, b.len, &info);
		if (rc != SL_ELIMIT)
			fail_msg("codec %d: %d", codecs[i], rc);
		kbuf_free(&payload);
		kbuf_free(&b);
	}
	/* Raw snappy: one block claiming more than the limit. */
	struct kbuf payload, b;
	kbuf_init(&payload);
	kbuf_init(&b);
	compress_snappy_raw(zeros, L, &payload);
	struct batch_spec s = { BATCH_CODEC_SNAPPY, 0, 1, 2 };
	put_batch_payload(&b, &s, payload.data, payload.len);
	struct batch_info info;
	assert_int_equal(batch_validate(b.data, b.len, &info), SL_ELIMIT);
	kbuf_free(&payload);
	kbuf_free(&b);
	free(zeros);
}

static void test_zstd_window_too_large(void **state)
{
	/* A streaming frame (no content size) asking for a 2^27 window. */
	ZSTD_CCtx *c = ZSTD_createCCtx();
	assert_int_equal(ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, 27)), 0);
	uint8_t in[1000], zbuf[2000];
	memset(in, 'a', sizeof in);
	ZSTD_inBuffer ib = { in, sizeof in, 0 };
	ZSTD_outBuffer ob = { zbuf, sizeof zbuf, 0 };
	assert_int_equal(ZSTD_compressStream2(c, &ob, &ib, ZSTD_e_end), 0);
	ZSTD_freeCCtx(c);
	struct kbuf out;
	kbuf_init(&out);
	int rc = batch_decompress(BATCH_CODEC_ZSTD, zbuf, ob.pos, &out, SL_DECOMPRESSED_BYTES_MAX);
	/* Either refused for its window, or (if zstd shrank the window for
	 * this small input) decoded fine. Never a crash or a huge alloc. */
	assert_true(rc == SL_ELIMIT || rc == 0);
	kbuf_free(&out);
}

/* ---- records_validate ---- */

struct visit_log {
	int calls;
	size_t offsets[8];
	int stop_at;
};

static int visit_cb(void *arg, const uint8_t *batch, const struct batch_info *info)
{
	struct visit_log *v = arg;
	v->offsets[v->calls] = (size_t)(uintptr_t)batch;
	v->calls++;
	assert_int_equal(info->record_count, SAMPLE_COUNT);
	return v->calls == v->stop_at ? 99 : 0;
}

static void test_records_validate(void **state)
{
	struct kbuf blob;
	kbuf_init(&blob);
	build_sample(&blob, TC_NONE);
	size_t first = blob.len;
	build_sample(&blob, TC_ZSTD);

	struct visit_log v = { 0 };
	assert_int_equal(records_validate(blob.data, blob.len, visit_cb, &v), 0);
	assert_int_equal(v.calls, 2);
	assert_int_equal(v.offsets[0], (size_t)(uintptr_t)blob.data);
	assert_int_equal(v.offsets[1], (size_t)(uintptr_t)(blob.data + first));

	/* A nonzero visit result stops and is returned. */
	memset(&v, 0, sizeof v);
	v.stop_at = 1;
	assert_int_equal(records_validate(blob.data, blob.len, visit_cb, &v), 99);
	assert_int_equal(v.calls, 1);

	/* Without a callback. */
	assert_int_equal(records_validate(blob.data, blob.len, NULL, NULL), 0);

	/* A partial batch at the end. */
	memset(&v, 0, sizeof v);
	assert_int_equal(records_validate(blob.data, blob.len - 1, visit_cb, &v), SL_EPROTO);
	assert_int_equal(v.calls, 1);
	assert_int_equal(records_validate(blob.data, first + 5, NULL, NULL), SL_EPROTO);
	assert_int_equal(records_validate(blob.data, first + 20, NULL, NULL), SL_EPROTO);

	/* Empty blob. */
	assert_int_equal(records_validate(blob.data, 0, NULL, NULL), SL_EPROTO);

	/* A corrupt second batch. */
	blob.data[first + 40] ^= 1;
	assert_int_equal(records_validate(blob.data, blob.len, NULL, NULL), SL_ECORRUPT);
	kbuf_free(&blob);
}

/* ---- batch_patch ---- */

static void test_patch(void **state)
{
	struct kbuf b;
	kbuf_init(&b);
	build_sample(&b, TC_LZ4);
	uint8_t *orig = malloc(b.len);
	assert_non_null(orig);
	memcpy(orig, b.data, b.len);

	batch_patch(b.data, 0x0102030405060708ll, 77);
	for (size_t i = 0; i < b.len; i++) {
		if (i < 8 || (i >= 12 && i < 16))
			continue;
		assert_int_equal(b.data[i], orig[i]);
	}
	struct batch_info info;
	assert_int_equal(batch_validate(b.data, b.len, &info), 0);
	assert_int_equal(info.base_offset, 0x0102030405060708ll);
	assert_int_equal(info.leader_epoch, 77);

	batch_patch(b.data, -1, -1);
	assert_int_equal(batch_validate(b.data, b.len, &info), 0);
	assert_int_equal(info.base_offset, -1);
	assert_int_equal(info.leader_epoch, -1);
	free(orig);
	kbuf_free(&b);
	(void)fix_crc;
}

/* Writes seed files for the fuzz corpus when SLUICE_WRITE_CORPUS names a
 * directory (used once to create tests/fuzz/corpus/fuzz_batch). */
static void test_write_corpus(void **state)
{
	const char *dir = getenv("SLUICE_WRITE_CORPUS");
	if (!dir)
		skip();
	static const char *names[] = { "none", "gzip", "snappy_raw", "snappy_xerial",
				       "lz4", "zstd", "zstd_stream" };
	for (int c = TC_NONE; c <= TC_ZSTD_STREAM; c++) {
		struct kbuf b;
		kbuf_init(&b);
		build_sample(&b, (enum test_codec)c);
		if (c == TC_NONE)
			build_sample(&b, TC_GZIP); /* two batches in one blob */
		char path[512];
		snprintf(path, sizeof path, "%s/%s.bin", dir, names[c]);
		FILE *f = fopen(path, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(b.data, 1, b.len, f), b.len);
		fclose(f);
		kbuf_free(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_each_codec),
		cmocka_unit_test(test_control_and_transactional),
		cmocka_unit_test(test_many_records_compressed),
		cmocka_unit_test(test_flipped_bit),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_batch_length),
		cmocka_unit_test(test_magic),
		cmocka_unit_test(test_record_count),
		cmocka_unit_test(test_offset_deltas),
		cmocka_unit_test(test_record_framing),
		cmocka_unit_test(test_bad_compressed_payload),
		cmocka_unit_test(test_unknown_codec),
		cmocka_unit_test(test_decompress_limit_exact),
		cmocka_unit_test(test_bombs),
		cmocka_unit_test(test_zstd_window_too_large),
		cmocka_unit_test(test_records_validate),
		cmocka_unit_test(test_patch),
		cmocka_unit_test(test_write_corpus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
