/* fuzz_object.c — fuzz target for the object format parser: object_parse
 * on arbitrary bytes, then the ranged path (trailer, footer) on the same
 * bytes, checking that every entry returned lies inside the input. */
#include <stdint.h>
#include <stdlib.h>

#include "storage/object.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct object_entry *e = NULL;
	uint32_t count = 0;
	if (object_parse(data, size, &e, &count) == 0) {
		volatile uint8_t sink = 0;
		for (uint32_t i = 0; i < count; i++) {
			if (e[i].byte_offset + e[i].length > size)
				abort();
			if (e[i].length)
				sink ^= data[e[i].byte_offset + e[i].length - 1];
		}
		(void)sink;
	}
	free(e);

	if (size >= OBJECT_TRAILER_BYTES) {
		uint64_t footer_offset;
		if (object_parse_trailer(data + size - OBJECT_TRAILER_BYTES, size,
					 &footer_offset, &count) == 0) {
			if (footer_offset > size)
				abort();
			e = NULL;
			if (object_parse_footer(data + footer_offset, size - (size_t)footer_offset,
						footer_offset, &e, &count) == 0) {
				for (uint32_t i = 0; i < count; i++)
					if (e[i].byte_offset + e[i].length > footer_offset)
						abort();
			}
			free(e);
		}
	}
	return 0;
}
