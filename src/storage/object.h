/* object.h — the object format: one immutable object holds record batches
 * of many partitions, grouped by partition, exactly as producers sent
 * them, followed by a footer index.
 *
 *   header (16 bytes):  magic "SLUICEOB" | version u16 (=1) | flags u16 (=0)
 *                       | header_crc u32 (CRC-32C of the first 12 bytes)
 *   body:               batches, contiguous, grouped by partition
 *   footer entries:     entry_count x 36 bytes:
 *                       topic_id[16] | partition i32 | byte_offset u64
 *                       | length u32 | record_count i32
 *   trailer (24 bytes): footer_offset u64 | entry_count u32
 *                       | footer_crc u32 (CRC-32C of entries + first 12
 *                         trailer bytes) | magic "SLOBEND1"
 *
 * All integers big-endian. A reader that has only ranged access reads the
 * last OBJECT_TRAILER_BYTES, then the footer. */
#ifndef SLUICE_OBJECT_H
#define SLUICE_OBJECT_H

#include <stddef.h>
#include <stdint.h>

#define OBJECT_HEADER_BYTES 16
#define OBJECT_TRAILER_BYTES 24
#define OBJECT_ENTRY_BYTES 36
#define OBJECT_VERSION 1

struct object_entry {
	uint8_t topic_id[16];
	int32_t partition;
	uint64_t byte_offset;  /* from the start of the object */
	uint32_t length;
	int32_t record_count;
};

struct kbuf;

/* Serialize an object into out (appended): header, then data[i] for each
 * entry in the order given (the caller groups by partition), then the
 * footer. Fills entries[i].byte_offset. Returns 0, SL_ENOMEM or SL_ELIMIT
 * (more than SL_OBJECT_BATCHES_MAX entries). */
int object_encode(struct kbuf *out, struct object_entry *entries,
		  const uint8_t *const *data, size_t n);

/* The same object in pieces, for gather I/O (the batches are written from
 * where they are, never copied into one buffer): the header, the
 * entries' places, then the footer (entries and trailer).
 * object_layout sets entries[i].byte_offset for the batches laid out in
 * the order given after the header and returns the footer's offset;
 * object_encode_footer writes object_footer_bytes(n) bytes into out.
 * Returns 0 or SL_ELIMIT (more than SL_OBJECT_BATCHES_MAX entries). */
void object_encode_header(uint8_t out[OBJECT_HEADER_BYTES]);
uint64_t object_layout(struct object_entry *entries, size_t n);
size_t object_footer_bytes(size_t n);
int object_encode_footer(uint8_t *out, const struct object_entry *entries, size_t n,
			 uint64_t footer_offset);

/* Parse the trailer (the last OBJECT_TRAILER_BYTES of an object of
 * object_len bytes). Returns 0, SL_EPROTO or SL_ECORRUPT (bad magic). */
int object_parse_trailer(const uint8_t *trailer, uint64_t object_len,
			 uint64_t *footer_offset, uint32_t *entry_count);

/* Parse and check the footer: footer holds entry_count entries followed
 * by the trailer (footer_len = entry_count*36 + 24). Allocates *entries
 * (free with free()). Checks the CRC, and that every entry lies inside
 * [OBJECT_HEADER_BYTES, footer_offset). Returns 0, SL_ECORRUPT, SL_EPROTO
 * or SL_ENOMEM. */
int object_parse_footer(const uint8_t *footer, size_t footer_len,
			uint64_t footer_offset, struct object_entry **entries,
			uint32_t *entry_count);

/* Check the header of a whole object and parse its footer. Same returns,
 * plus SL_EUNSUPPORTED for an unknown version or nonzero flags. */
int object_parse(const uint8_t *obj, size_t len, struct object_entry **entries,
		 uint32_t *entry_count);

#endif
