/* object.c — encodes and parses Sluice's object format (layout in
 * object.h): the header, the body of batches, the footer index and the
 * trailer with their CRC-32C checks.
 *
 * Parsing trusts nothing in the bytes: counts are bounded by the bytes
 * present and by SL_OBJECT_BATCHES_MAX, every offset is checked against
 * the object's length before use, and the CRCs are checked before any
 * entry is returned. */
#include "storage/object.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/limits.h"
#include "storage/crc32c.h"

static const char header_magic[8] = { 'S', 'L', 'U', 'I', 'C', 'E', 'O', 'B' };
static const char trailer_magic[8] = { 'S', 'L', 'O', 'B', 'E', 'N', 'D', '1' };

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

void object_encode_header(uint8_t h[OBJECT_HEADER_BYTES])
{
	memcpy(h, header_magic, 8);
	put_be16(h + 8, OBJECT_VERSION);
	put_be16(h + 10, 0);
	be32_store(h + 12, crc32c(0, h, 12));
}

uint64_t object_layout(struct object_entry *entries, size_t n)
{
	uint64_t at = OBJECT_HEADER_BYTES;
	for (size_t i = 0; i < n; i++) {
		entries[i].byte_offset = at;
		at += entries[i].length;
	}
	return at;
}

size_t object_footer_bytes(size_t n)
{
	return n * OBJECT_ENTRY_BYTES + OBJECT_TRAILER_BYTES;
}

int object_encode_footer(uint8_t *out, const struct object_entry *entries, size_t n,
			 uint64_t footer_offset)
{
	if (n > SL_OBJECT_BATCHES_MAX)
		return SL_ELIMIT;
	uint8_t *e = out;
	for (size_t i = 0; i < n; i++, e += OBJECT_ENTRY_BYTES) {
		memcpy(e, entries[i].topic_id, 16);
		be32_store(e + 16, (uint32_t)entries[i].partition);
		be64_store(e + 20, entries[i].byte_offset);
		be32_store(e + 28, entries[i].length);
		be32_store(e + 32, (uint32_t)entries[i].record_count);
	}
	be64_store(e, footer_offset);
	be32_store(e + 8, (uint32_t)n);
	be32_store(e + 12, crc32c(0, out, (size_t)(e - out) + 12));
	memcpy(e + 16, trailer_magic, 8);
	return 0;
}

int object_encode(struct kbuf *out, struct object_entry *entries,
		  const uint8_t *const *data, size_t n)
{
	if (n > SL_OBJECT_BATCHES_MAX)
		return SL_ELIMIT;
	uint8_t *p = kbuf_reserve(out, OBJECT_HEADER_BYTES);
	if (!p)
		return SL_ENOMEM;
	object_encode_header(p);
	out->len += OBJECT_HEADER_BYTES;
	uint64_t footer_offset = object_layout(entries, n);
	for (size_t i = 0; i < n; i++)
		kbuf_put(out, data[i], entries[i].length);
	uint8_t *f = kbuf_reserve(out, object_footer_bytes(n));
	if (!f)
		return SL_ENOMEM;
	object_encode_footer(f, entries, n, footer_offset);
	out->len += object_footer_bytes(n);
	return out->oom ? SL_ENOMEM : 0;
}

int object_parse_trailer(const uint8_t *trailer, uint64_t object_len,
			 uint64_t *footer_offset, uint32_t *entry_count)
{
	if (memcmp(trailer + 16, trailer_magic, 8) != 0)
		return SL_ECORRUPT;
	if (object_len < OBJECT_HEADER_BYTES + OBJECT_TRAILER_BYTES)
		return SL_EPROTO;
	uint64_t off = be64_load(trailer);
	uint32_t count = be32_load(trailer + 8);
	if (count > SL_OBJECT_BATCHES_MAX)
		return SL_EPROTO;
	uint64_t footer_bytes = (uint64_t)count * OBJECT_ENTRY_BYTES + OBJECT_TRAILER_BYTES;
	/* The footer must end exactly at the end of the object and begin
	 * after the header. */
	if (footer_bytes > object_len - OBJECT_HEADER_BYTES ||
	    off != object_len - footer_bytes)
		return SL_EPROTO;
	*footer_offset = off;
	*entry_count = count;
	return 0;
}

int object_parse_footer(const uint8_t *footer, size_t footer_len,
			uint64_t footer_offset, struct object_entry **entries,
			uint32_t *entry_count)
{
	*entries = NULL;
	*entry_count = 0;
	if (footer_len < OBJECT_TRAILER_BYTES ||
	    (footer_len - OBJECT_TRAILER_BYTES) % OBJECT_ENTRY_BYTES != 0)
		return SL_EPROTO;
	const uint8_t *t = footer + footer_len - OBJECT_TRAILER_BYTES;
	if (memcmp(t + 16, trailer_magic, 8) != 0)
		return SL_ECORRUPT;
	uint64_t off = be64_load(t);
	uint32_t count = be32_load(t + 8);
	if (count > SL_OBJECT_BATCHES_MAX ||
	    (uint64_t)count * OBJECT_ENTRY_BYTES != footer_len - OBJECT_TRAILER_BYTES)
		return SL_EPROTO;
	if (off != footer_offset || off < OBJECT_HEADER_BYTES)
		return SL_EPROTO;
	if (crc32c(0, footer, footer_len - 12) != be32_load(t + 12))
		return SL_ECORRUPT;

	struct object_entry *v = calloc(count ? count : 1, sizeof *v);
	if (!v)
		return SL_ENOMEM;
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *e = footer + (size_t)i * OBJECT_ENTRY_BYTES;
		memcpy(v[i].topic_id, e, 16);
		v[i].partition = (int32_t)be32_load(e + 16);
		v[i].byte_offset = be64_load(e + 20);
		v[i].length = be32_load(e + 28);
		v[i].record_count = (int32_t)be32_load(e + 32);
		/* Written as: byte_offset <= footer_offset - length, so
		 * nothing here can overflow. */
		if (v[i].byte_offset < OBJECT_HEADER_BYTES ||
		    v[i].length > footer_offset - OBJECT_HEADER_BYTES ||
		    v[i].byte_offset > footer_offset - v[i].length ||
		    v[i].partition < 0 || v[i].record_count < 0) {
			free(v);
			return SL_EPROTO;
		}
	}
	*entries = v;
	*entry_count = count;
	return 0;
}

int object_parse(const uint8_t *obj, size_t len, struct object_entry **entries,
		 uint32_t *entry_count)
{
	*entries = NULL;
	*entry_count = 0;
	if (len < OBJECT_HEADER_BYTES + OBJECT_TRAILER_BYTES)
		return SL_EPROTO;
	if (memcmp(obj, header_magic, 8) != 0)
		return SL_ECORRUPT;
	if (crc32c(0, obj, 12) != be32_load(obj + 12))
		return SL_ECORRUPT;
	if (be16_load(obj + 8) != OBJECT_VERSION || be16_load(obj + 10) != 0)
		return SL_EUNSUPPORTED;

	uint64_t footer_offset;
	uint32_t count;
	int rc = object_parse_trailer(obj + len - OBJECT_TRAILER_BYTES, len,
				      &footer_offset, &count);
	if (rc)
		return rc;
	return object_parse_footer(obj + footer_offset, len - (size_t)footer_offset,
				   footer_offset, entries, entry_count);
}
