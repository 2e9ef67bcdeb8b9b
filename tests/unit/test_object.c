/* test_object.c — the object format (encode, parse and its refusals of
 * corrupt input) and the inspect dump. */
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
#include "base/limits.h"
#include "objstore/objstore.h"
#include "storage/batch.h"
#include "storage/crc32c.h"
#include "storage/inspect.h"
#include "storage/object.h"

/* A valid uncompressed magic-2 batch of n records with values of vlen
 * bytes, appended to b. */
static void make_batch(struct kbuf *b, int n, int vlen, int64_t producer_id)
{
	size_t start = b->len;
	kbuf_put_i64(b, 0);      /* baseOffset */
	kbuf_put_i32(b, 0);      /* batchLength, patched */
	kbuf_put_i32(b, -1);     /* partitionLeaderEpoch */
	kbuf_put_i8(b, 2);       /* magic */
	kbuf_put_u32(b, 0);      /* crc, patched */
	kbuf_put_i16(b, 0);      /* attributes */
	kbuf_put_i32(b, n - 1);  /* lastOffsetDelta */
	kbuf_put_i64(b, 1700000000000);
	kbuf_put_i64(b, 1700000000000 + n - 1);
	kbuf_put_i64(b, producer_id);
	kbuf_put_i16(b, 0);
	kbuf_put_i32(b, 0);
	kbuf_put_i32(b, n);
	for (int i = 0; i < n; i++) {
		struct kbuf r;
		kbuf_init(&r);
		kbuf_put_i8(&r, 0);
		kbuf_put_varint(&r, i);   /* timestampDelta */
		kbuf_put_varint(&r, i);   /* offsetDelta */
		kbuf_put_varint(&r, -1);  /* null key */
		kbuf_put_varint(&r, vlen);
		for (int j = 0; j < vlen; j++)
			kbuf_put_i8(&r, (int8_t)('a' + (i + j) % 26));
		kbuf_put_varint(&r, 0);   /* headers */
		kbuf_put_varint(b, (int64_t)r.len);
		kbuf_put(b, r.data, r.len);
		kbuf_free(&r);
	}
	assert_false(b->oom);
	kbuf_patch_i32(b, start + 8, (int32_t)(b->len - start - 12));
	be32_store(b->data + start + 17, crc32c(0, b->data + start + 21, b->len - start - 21));
}

#define PARTS 3
#define BATCHES 3
#define N (PARTS * BATCHES)

struct sample {
	struct kbuf batches[N];
	const uint8_t *data[N];
	struct object_entry entries[N];
	struct kbuf obj;
};

static void sample_build(struct sample *s)
{
	memset(s, 0, sizeof *s);
	for (int i = 0; i < N; i++) {
		kbuf_init(&s->batches[i]);
		int records = 1 + i % 4;
		make_batch(&s->batches[i], records, 10 + i, 1000 + i);
		s->data[i] = s->batches[i].data;
		for (int k = 0; k < 16; k++)
			s->entries[i].topic_id[k] = (uint8_t)(0x10 * (i / BATCHES) + k);
		s->entries[i].partition = i / BATCHES;
		s->entries[i].length = (uint32_t)s->batches[i].len;
		s->entries[i].record_count = records;
	}
	kbuf_init(&s->obj);
	assert_int_equal(object_encode(&s->obj, s->entries, s->data, N), 0);
}

static void sample_free(struct sample *s)
{
	for (int i = 0; i < N; i++)
		kbuf_free(&s->batches[i]);
	kbuf_free(&s->obj);
}

/* Re-seal the footer CRC after editing footer bytes on purpose. */
static void reseal_footer(struct kbuf *obj)
{
	uint8_t *t = obj->data + obj->len - OBJECT_TRAILER_BYTES;
	uint64_t off = be64_load(t);
	uint32_t count = be32_load(t + 8);
	size_t start = off <= obj->len ? (size_t)off : 0;
	(void)count;
	be32_store(t + 12, crc32c(0, obj->data + start, obj->len - start - 12));
}

static void test_roundtrip(void **state)
{
	struct sample s;
	sample_build(&s);
	struct object_entry *e = NULL;
	uint32_t count = 0;
	assert_int_equal(object_parse(s.obj.data, s.obj.len, &e, &count), 0);
	assert_int_equal(count, N);
	for (int i = 0; i < N; i++) {
		assert_memory_equal(e[i].topic_id, s.entries[i].topic_id, 16);
		assert_int_equal(e[i].partition, s.entries[i].partition);
		assert_int_equal(e[i].byte_offset, s.entries[i].byte_offset);
		assert_int_equal(e[i].length, s.entries[i].length);
		assert_int_equal(e[i].record_count, s.entries[i].record_count);
		assert_memory_equal(s.obj.data + e[i].byte_offset, s.data[i], e[i].length);
	}
	assert_int_equal(e[0].byte_offset, OBJECT_HEADER_BYTES);
	assert_int_equal(s.obj.len, OBJECT_HEADER_BYTES + (e[N - 1].byte_offset - OBJECT_HEADER_BYTES) +
			 e[N - 1].length + N * OBJECT_ENTRY_BYTES + OBJECT_TRAILER_BYTES);
	free(e);

	/* The ranged path: trailer, then footer. */
	uint64_t footer_offset;
	assert_int_equal(object_parse_trailer(s.obj.data + s.obj.len - OBJECT_TRAILER_BYTES,
					      s.obj.len, &footer_offset, &count), 0);
	assert_int_equal(count, N);
	assert_int_equal(object_parse_footer(s.obj.data + footer_offset, s.obj.len - footer_offset,
					     footer_offset, &e, &count), 0);
	assert_int_equal(count, N);
	free(e);
	/* A footer offset that disagrees with the trailer. */
	assert_int_equal(object_parse_footer(s.obj.data + footer_offset, s.obj.len - footer_offset,
					     footer_offset - 1, &e, &count), SL_EPROTO);
	assert_null(e);
	sample_free(&s);
}

static void test_empty_object(void **state)
{
	struct kbuf obj;
	kbuf_init(&obj);
	assert_int_equal(object_encode(&obj, NULL, NULL, 0), 0);
	assert_int_equal(obj.len, OBJECT_HEADER_BYTES + OBJECT_TRAILER_BYTES);
	struct object_entry *e = NULL;
	uint32_t count = 7;
	assert_int_equal(object_parse(obj.data, obj.len, &e, &count), 0);
	assert_int_equal(count, 0);
	free(e);
	kbuf_free(&obj);
}

static void test_encode_limit(void **state)
{
	struct kbuf obj;
	kbuf_init(&obj);
	assert_int_equal(object_encode(&obj, NULL, NULL, (size_t)SL_OBJECT_BATCHES_MAX + 1),
			 SL_ELIMIT);
	kbuf_free(&obj);
}

static void test_corrupt_footer_crc(void **state)
{
	struct sample s;
	sample_build(&s);
	struct object_entry *e = NULL;
	uint32_t count;
	size_t footer = s.entries[N - 1].byte_offset + s.entries[N - 1].length;
	/* A flipped bit in an entry's record count. */
	s.obj.data[footer + 35] ^= 1;
	assert_int_equal(object_parse(s.obj.data, s.obj.len, &e, &count), SL_ECORRUPT);
	assert_null(e);
	s.obj.data[footer + 35] ^= 1;
	/* A flipped bit in the stored CRC itself. */
	s.obj.data[s.obj.len - 12] ^= 0x80;
	assert_int_equal(object_parse(s.obj.data, s.obj.len, &e, &count), SL_ECORRUPT);
	s.obj.data[s.obj.len - 12] ^= 0x80;
	assert_int_equal(object_parse(s.obj.data, s.obj.len, &e, &count), 0);
	free(e);
	sample_free(&s);
}

static void test_bad_magic_and_header(void **state)
{
	struct sample s;
	sample_build(&s);
	struct object_entry *e = NULL;
	uint32_t count;
	s.obj.data[0] = 'X';
	assert_int_equal(object_parse(s.obj.data, s.obj.len, &e, &count), SL_ECORRUPT);
	s.obj.data[0] = 'S';
	s.obj.data[s.obj.len - 1] = 'X'; /* trailer magic */
	assert_int_equal(object_parse(s.obj.data, s.obj.len, &e, &count), SL_ECORRUPT);
	s.obj.data[s.obj.len - 1] = '1';
	s.obj.data[13] ^= 4; /* header CRC */
	assert_int_equal(object_parse(s.obj.data, s.obj.len, &e, &count), SL_ECORRUPT);
	s.obj.data[13] ^= 4;
	/* Version 2 with a good header CRC. */
	s.obj.data[9] = 2;
	be32_store(s.obj.data + 12, crc32c(0, s.obj.data, 12));
	assert_int_equal(object_parse(s.obj.data, s.obj.len, &e, &count), SL_EUNSUPPORTED);
	assert_null(e);
	sample_free(&s);
}

static void test_truncated(void **state)
{
	struct sample s;
	sample_build(&s);
	struct object_entry *e = NULL;
	uint32_t count;
	/* Every prefix, and every suffix, of the object is refused. */
	for (size_t len = 0; len < s.obj.len; len++) {
		assert_int_not_equal(object_parse(s.obj.data, len, &e, &count), 0);
		assert_null(e);
		size_t cut = s.obj.len - len;
		if (len >= OBJECT_HEADER_BYTES + OBJECT_TRAILER_BYTES)
			assert_int_not_equal(object_parse(s.obj.data + cut, len, &e, &count), 0);
	}
	sample_free(&s);
}

static void test_entry_outside_body(void **state)
{
	struct sample s;
	sample_build(&s);
	struct object_entry *e = NULL;
	uint32_t count;
	uint64_t footer = s.entries[N - 1].byte_offset + s.entries[N - 1].length;
	uint8_t *last = s.obj.data + footer + (N - 1) * OBJECT_ENTRY_BYTES;
	uint8_t saved[OBJECT_ENTRY_BYTES];
	memcpy(saved, last, sizeof saved);

	/* Ends one byte into the footer. */
	be64_store(last + 20, s.entries[N - 1].byte_offset + 1);
	reseal_footer(&s.obj);
	assert_int_equal(object_parse(s.obj.data, s.obj.len, &e, &count), SL_EPROTO);
	/* Starts inside the header. */
	be64_store(last + 20, 4);
	reseal_footer(&s.obj);
	assert_int_equal(object_parse(s.obj.data, s.obj.len, &e, &count), SL_EPROTO);
	/* Offset + length wraps around. */
	be64_store(last + 20, UINT64_MAX - 10);
	reseal_footer(&s.obj);
	assert_int_equal(object_parse(s.obj.data, s.obj.len, &e, &count), SL_EPROTO);
	/* Length larger than the body. */
	memcpy(last, saved, sizeof saved);
	be32_store(last + 28, 0xffffffffu);
	reseal_footer(&s.obj);
	assert_int_equal(object_parse(s.obj.data, s.obj.len, &e, &count), SL_EPROTO);
	assert_null(e);
	/* Restored, it parses again. */
	memcpy(last, saved, sizeof saved);
	reseal_footer(&s.obj);
	assert_int_equal(object_parse(s.obj.data, s.obj.len, &e, &count), 0);
	free(e);
	sample_free(&s);
}

static void test_entry_count_absurd(void **state)
{
	struct sample s;
	sample_build(&s);
	struct object_entry *e = NULL;
	uint32_t count;
	uint8_t *t = s.obj.data + s.obj.len - OBJECT_TRAILER_BYTES;
	uint32_t values[] = { 0xffffffffu, SL_OBJECT_BATCHES_MAX + 1, N + 1, N - 1, 0 };
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		be32_store(t + 8, values[i]);
		reseal_footer(&s.obj);
		assert_int_equal(object_parse(s.obj.data, s.obj.len, &e, &count), SL_EPROTO);
		assert_null(e);
	}
	be32_store(t + 8, N);
	/* A footer offset that does not match the size. */
	be64_store(t, be64_load(t) + 1);
	assert_int_equal(object_parse(s.obj.data, s.obj.len, &e, &count), SL_EPROTO);
	be64_store(t, 0);
	assert_int_equal(object_parse(s.obj.data, s.obj.len, &e, &count), SL_EPROTO);
	uint64_t fo;
	assert_int_equal(object_parse_trailer(t, 10, &fo, &count), SL_EPROTO);
	sample_free(&s);
}

/* ---- inspect ---- */

static char *dump(int *rc, const uint8_t *obj, size_t len, int verbosity)
{
	char *text = NULL;
	size_t text_len = 0;
	FILE *f = open_memstream(&text, &text_len);
	assert_non_null(f);
	*rc = inspect_object(f, obj, len, verbosity);
	fclose(f);
	return text;
}

static void test_inspect(void **state)
{
	struct sample s;
	sample_build(&s);
	int rc;
	char *text = dump(&rc, s.obj.data, s.obj.len, 2);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(text, "magic=\"SLUICEOB\" version=1"));
	assert_non_null(strstr(text, "index: 9 entries"));
	assert_non_null(strstr(text, "topic=00010203-0405-0607-0809-0a0b0c0d0e0f partition=0"));
	assert_non_null(strstr(text, "topic=20212223-2425-2627-2829-2a2b2c2d2e2f partition=2"));
	assert_non_null(strstr(text, "producer_id=1008"));
	assert_non_null(strstr(text, "codec=none"));
	assert_non_null(strstr(text, "record offset_delta=3 timestamp_delta=3 key=null value=13B headers=0"));
	assert_null(strstr(text, "error:"));
	assert_non_null(strstr(text, "\nok\n"));
	free(text);

	text = dump(&rc, s.obj.data, s.obj.len, 1);
	assert_int_equal(rc, 0);
	assert_null(strstr(text, "record offset_delta"));
	free(text);

	/* A bad batch CRC is found and named; the dump goes on. */
	size_t at = s.entries[4].byte_offset + 70;
	s.obj.data[at] ^= 1;
	text = dump(&rc, s.obj.data, s.obj.len, 0);
	assert_int_equal(rc, SL_ECORRUPT);
	assert_non_null(strstr(text, "CRC mismatch"));
	assert_non_null(strstr(text, "producer_id=1008"));
	free(text);
	s.obj.data[at] ^= 1;

	/* A bad footer CRC. */
	s.obj.data[s.obj.len - 12] ^= 1;
	text = dump(&rc, s.obj.data, s.obj.len, 0);
	assert_int_equal(rc, SL_ECORRUPT);
	assert_non_null(strstr(text, "footer CRC mismatch"));
	free(text);
	s.obj.data[s.obj.len - 12] ^= 1;

	/* Index record counts that disagree with the batches. */
	size_t footer = s.entries[N - 1].byte_offset + s.entries[N - 1].length;
	s.obj.data[footer + 35] ^= 8;
	reseal_footer(&s.obj);
	text = dump(&rc, s.obj.data, s.obj.len, 0);
	assert_int_equal(rc, SL_EPROTO);
	assert_non_null(strstr(text, "the index says"));
	free(text);
	s.obj.data[footer + 35] ^= 8;
	reseal_footer(&s.obj);

	/* Too short, and garbage. */
	text = dump(&rc, s.obj.data, 10, 0);
	assert_int_equal(rc, SL_EPROTO);
	free(text);
	uint8_t junk[100];
	memset(junk, 0x41, sizeof junk);
	text = dump(&rc, junk, sizeof junk, 0);
	assert_int_equal(rc, SL_ECORRUPT);
	assert_non_null(strstr(text, "bad header magic"));
	free(text);

	/* Through a store, with ranged reads. */
	struct objstore *st;
	assert_int_equal(objstore_open("mem:", &st), 0);
	assert_int_equal(objstore_put(st, "objects/1.obj", s.obj.data, s.obj.len), 0);
	FILE *f = open_memstream(&text, &(size_t){ 0 });
	assert_int_equal(inspect_object_key(f, st, "objects/1.obj", 2), 0);
	assert_int_equal(inspect_object_key(f, st, "objects/none.obj", 0), SL_ENOTFOUND);
	fclose(f);
	assert_non_null(strstr(text, "key: objects/1.obj"));
	assert_non_null(strstr(text, "\nok\n"));
	free(text);
	objstore_close(st);
	sample_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_empty_object),
		cmocka_unit_test(test_encode_limit),
		cmocka_unit_test(test_corrupt_footer_crc),
		cmocka_unit_test(test_bad_magic_and_header),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_entry_outside_body),
		cmocka_unit_test(test_entry_count_absurd),
		cmocka_unit_test(test_inspect),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
