/* inspect.c — the object dump behind `sluice inspect`: prints an object's
 * header, footer index and record batch headers (records too at
 * verbosity >= 2), checking each CRC on the way.
 *
 * One walk serves both entry points; it reads the object through a small
 * ranged-read callback, either from memory or from an object store, the
 * way the read path sees objects (trailer, footer, then byte ranges). */
#include "storage/inspect.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/limits.h"
#include "objstore/objstore.h"
#include "storage/batch.h"
#include "storage/crc32c.h"
#include "storage/object.h"

struct source {
	int (*read)(struct source *src, uint64_t off, size_t len, uint8_t *out);
	uint64_t size;
	const uint8_t *mem;   /* memory source */
	struct objstore *store; /* store source */
	const char *key;
};

static int mem_read(struct source *src, uint64_t off, size_t len, uint8_t *out)
{
	if (off > src->size || len > src->size - off)
		return SL_EPROTO;
	memcpy(out, src->mem + off, len);
	return 0;
}

static int store_read(struct source *src, uint64_t off, size_t len, uint8_t *out)
{
	return objstore_get(src->store, src->key, off, len, out);
}

/* Keeps the first error; later ones are printed but not returned. */
static void note(int *first, int rc)
{
	if (rc && !*first)
		*first = rc;
}

static void print_text8(FILE *out, const uint8_t *p)
{
	fputc('"', out);
	for (int i = 0; i < 8; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\')
			fputc(p[i], out);
		else
			fprintf(out, "\\x%02x", p[i]);
	}
	fputc('"', out);
}

static void print_uuid(FILE *out, const uint8_t *u)
{
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			fputc('-', out);
		fprintf(out, "%02x", u[i]);
	}
}

static const char *codec_name(int codec)
{
	static const char *names[] = { "none", "gzip", "snappy", "lz4", "zstd" };
	return codec >= 0 && codec <= 4 ? names[codec] : "unknown";
}

/* Records of one batch; rec points at the (decompressed) records. */
static int print_records(FILE *out, const uint8_t *rec, size_t len, int32_t count)
{
	struct kreader r;
	kreader_init(&r, rec, len);
	for (int32_t i = 0; i < count; i++) {
		int64_t rec_len = kreader_varint(&r);
		if (r.err || rec_len < 0 || (uint64_t)rec_len > kreader_left(&r)) {
			fprintf(out, "error: record %" PRId32 ": bad length\n", i);
			return SL_EPROTO;
		}
		struct kreader q;
		kreader_init(&q, kreader_take(&r, (size_t)rec_len), (size_t)rec_len);
		(void)kreader_i8(&q); /* attributes, unused */
		int64_t ts_delta = kreader_varint(&q);
		int64_t off_delta = kreader_varint(&q);
		int64_t key_len = kreader_varint(&q);
		if (key_len > 0)
			kreader_skip(&q, (size_t)key_len);
		int64_t value_len = kreader_varint(&q);
		if (value_len > 0)
			kreader_skip(&q, (size_t)value_len);
		int64_t headers = kreader_varint(&q);
		int bad = q.err || key_len < -1 || value_len < -1 || headers < 0 ||
			  (uint64_t)headers > kreader_left(&q);
		for (int64_t h = 0; !bad && h < headers; h++) {
			int64_t hk = kreader_varint(&q);
			if (hk > 0)
				kreader_skip(&q, (size_t)hk);
			int64_t hv = kreader_varint(&q);
			if (hv > 0)
				kreader_skip(&q, (size_t)hv);
			bad = q.err || hk < 0 || hv < -1;
		}
		if (bad || kreader_left(&q) != 0) {
			fprintf(out, "error: record %" PRId32 ": malformed\n", i);
			return SL_EPROTO;
		}
		fprintf(out, "      record offset_delta=%" PRId64 " timestamp_delta=%" PRId64,
			off_delta, ts_delta);
		if (key_len < 0)
			fprintf(out, " key=null");
		else
			fprintf(out, " key=%" PRId64 "B", key_len);
		if (value_len < 0)
			fprintf(out, " value=null");
		else
			fprintf(out, " value=%" PRId64 "B", value_len);
		fprintf(out, " headers=%" PRId64 "\n", headers);
	}
	if (kreader_left(&r) != 0) {
		fprintf(out, "error: %zu bytes after the last record\n", kreader_left(&r));
		return SL_EPROTO;
	}
	return 0;
}

/* The batches filling one entry's range; base is its object offset. */
static int print_batches(FILE *out, const struct object_entry *e, const uint8_t *p,
			 int verbosity)
{
	int first = 0;
	size_t pos = 0, len = e->length;
	int64_t records = 0;
	while (pos < len) {
		struct batch_info b;
		int rc = batch_parse_header(p + pos, len - pos, &b);
		size_t total = rc ? 0 : batch_total_bytes(&b);
		if (!rc && (total < BATCH_HEADER_BYTES || total > len - pos))
			rc = SL_EPROTO;
		if (rc) {
			fprintf(out, "error: batch at object offset %" PRIu64 ": bad header (%s)\n",
				e->byte_offset + pos, sl_strerror(rc));
			note(&first, rc);
			break;
		}
		uint32_t crc = crc32c(0, p + pos + 21, total - 21);
		int codec = b.attributes & 7;
		fprintf(out,
			"    batch @%" PRIu64 ": base_offset=%" PRId64 " length=%" PRId32
			" magic=%d crc=%08" PRIx32 "%s attributes=0x%04x (codec=%s%s%s%s)"
			" last_offset_delta=%" PRId32 " base_timestamp=%" PRId64
			" max_timestamp=%" PRId64 " producer_id=%" PRId64 " producer_epoch=%d"
			" base_sequence=%" PRId32 " records=%" PRId32 "\n",
			e->byte_offset + pos, b.base_offset, b.batch_length, b.magic, b.crc,
			crc == b.crc ? "" : " (BAD)", (unsigned)(uint16_t)b.attributes,
			codec_name(codec), b.attributes & 8 ? " log-append-time" : "",
			b.attributes & 16 ? " transactional" : "",
			b.attributes & 32 ? " control" : "", b.last_offset_delta,
			b.base_timestamp, b.max_timestamp, b.producer_id, b.producer_epoch,
			b.base_sequence, b.record_count);
		if (crc != b.crc) {
			fprintf(out, "error: batch at object offset %" PRIu64
				": CRC mismatch (stored %08" PRIx32 ", computed %08" PRIx32 ")\n",
				e->byte_offset + pos, b.crc, crc);
			note(&first, SL_ECORRUPT);
		} else if (verbosity >= 2) {
			const uint8_t *rec = p + pos + BATCH_HEADER_BYTES;
			size_t rec_len = total - BATCH_HEADER_BYTES;
			struct kbuf dec;
			kbuf_init(&dec);
			rc = 0;
			if (codec != BATCH_CODEC_NONE) {
				rc = batch_decompress((enum batch_codec)codec, rec, rec_len, &dec,
						      SL_DECOMPRESSED_BYTES_MAX);
				rec = dec.data;
				rec_len = dec.len;
				if (rc)
					fprintf(out, "error: cannot decompress records (%s)\n",
						sl_strerror(rc));
			}
			if (!rc)
				rc = print_records(out, rec, rec_len, b.record_count);
			note(&first, rc);
			kbuf_free(&dec);
		}
		records += b.record_count;
		pos += total;
	}
	if (!first && records != e->record_count) {
		fprintf(out, "error: the index says %" PRId32 " records, the batches hold %" PRId64 "\n",
			e->record_count, records);
		first = SL_EPROTO;
	}
	return first;
}

static int inspect_source(FILE *out, struct source *src, int verbosity)
{
	int first = 0, rc;
	uint8_t h[OBJECT_HEADER_BYTES], t[OBJECT_TRAILER_BYTES];
	uint8_t *footer = NULL, *body = NULL;
	struct object_entry *entries = NULL;
	uint32_t count = 0;

	fprintf(out, "object: %" PRIu64 " bytes\n", src->size);
	if (src->size < OBJECT_HEADER_BYTES + OBJECT_TRAILER_BYTES) {
		fprintf(out, "error: shorter than a header and a trailer (%d bytes)\n",
			OBJECT_HEADER_BYTES + OBJECT_TRAILER_BYTES);
		return SL_EPROTO;
	}

	if ((rc = src->read(src, 0, sizeof h, h))) {
		fprintf(out, "error: cannot read the header (%s)\n", sl_strerror(rc));
		return rc;
	}
	uint32_t hcrc = crc32c(0, h, 12);
	fprintf(out, "header: magic=");
	print_text8(out, h);
	fprintf(out, " version=%u flags=%u header_crc=%08" PRIx32 "%s\n", be16_load(h + 8),
		be16_load(h + 10), be32_load(h + 12), hcrc == be32_load(h + 12) ? "" : " (BAD)");
	if (memcmp(h, "SLUICEOB", 8) != 0) {
		fprintf(out, "error: bad header magic (not a Sluice object?)\n");
		note(&first, SL_ECORRUPT);
	} else if (hcrc != be32_load(h + 12)) {
		fprintf(out, "error: header CRC mismatch (stored %08" PRIx32 ", computed %08" PRIx32 ")\n",
			be32_load(h + 12), hcrc);
		note(&first, SL_ECORRUPT);
	} else if (be16_load(h + 8) != OBJECT_VERSION || be16_load(h + 10) != 0) {
		fprintf(out, "error: unsupported version or flags\n");
		note(&first, SL_EUNSUPPORTED);
	}

	if ((rc = src->read(src, src->size - sizeof t, sizeof t, t))) {
		fprintf(out, "error: cannot read the trailer (%s)\n", sl_strerror(rc));
		return rc;
	}
	fprintf(out, "trailer: footer_offset=%" PRIu64 " entries=%" PRIu32
		" footer_crc=%08" PRIx32 " magic=", be64_load(t), be32_load(t + 8),
		be32_load(t + 12));
	print_text8(out, t + 16);
	fputc('\n', out);
	uint64_t footer_offset;
	rc = object_parse_trailer(t, src->size, &footer_offset, &count);
	if (rc) {
		fprintf(out, "error: %s\n", rc == SL_ECORRUPT ? "bad trailer magic" :
			"footer offset or entry count inconsistent with the object's size");
		note(&first, rc);
		return first;
	}

	size_t footer_len = (size_t)(src->size - footer_offset);
	footer = malloc(footer_len);
	if (!footer)
		return SL_ENOMEM;
	if ((rc = src->read(src, footer_offset, footer_len, footer))) {
		fprintf(out, "error: cannot read the footer (%s)\n", sl_strerror(rc));
		note(&first, rc);
		goto out_free;
	}
	uint32_t fcrc = crc32c(0, footer, footer_len - 12);
	rc = object_parse_footer(footer, footer_len, footer_offset, &entries, &count);
	if (rc) {
		if (fcrc != be32_load(t + 12))
			fprintf(out, "error: footer CRC mismatch (stored %08" PRIx32
				", computed %08" PRIx32 ")\n", be32_load(t + 12), fcrc);
		else
			fprintf(out, "error: footer index malformed (%s): an entry lies outside the body\n",
				sl_strerror(rc));
		note(&first, rc);
		goto out_free;
	}

	fprintf(out, "index: %" PRIu32 " entries, body %" PRIu64 " bytes\n", count,
		footer_offset - OBJECT_HEADER_BYTES);
	for (uint32_t i = 0; i < count; i++) {
		fprintf(out, "  [%" PRIu32 "] topic=", i);
		print_uuid(out, entries[i].topic_id);
		fprintf(out, " partition=%" PRId32 " offset=%" PRIu64 " length=%" PRIu32
			" records=%" PRId32 "\n", entries[i].partition, entries[i].byte_offset,
			entries[i].length, entries[i].record_count);
	}

	for (uint32_t i = 0; i < count; i++) {
		struct object_entry *e = &entries[i];
		fprintf(out, "entry [%" PRIu32 "] topic=", i);
		print_uuid(out, e->topic_id);
		fprintf(out, " partition=%" PRId32 ":\n", e->partition);
		body = malloc(e->length ? e->length : 1);
		if (!body) {
			note(&first, SL_ENOMEM);
			goto out_free;
		}
		rc = src->read(src, e->byte_offset, e->length, body);
		if (rc)
			fprintf(out, "error: cannot read entry %" PRIu32 " (%s)\n", i, sl_strerror(rc));
		else
			rc = print_batches(out, e, body, verbosity);
		note(&first, rc);
		free(body);
		body = NULL;
	}
	if (!first)
		fprintf(out, "ok\n");

out_free:
	free(entries);
	free(footer);
	return first;
}

int inspect_object(FILE *out, const uint8_t *obj, size_t len, int verbosity)
{
	struct source src = { .read = mem_read, .size = len, .mem = obj };
	return inspect_source(out, &src, verbosity);
}

int inspect_object_key(FILE *out, struct objstore *s, const char *key, int verbosity)
{
	struct source src = { .read = store_read, .store = s, .key = key };
	int rc = objstore_head(s, key, &src.size);
	if (rc) {
		fprintf(out, "error: %s: %s\n", key, sl_strerror(rc));
		return rc;
	}
	fprintf(out, "key: %s\n", key);
	return inspect_source(out, &src, verbosity);
}
