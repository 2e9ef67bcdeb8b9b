/* fuzz_batch.c — fuzz target for record batch parsing and validation.
 *
 * Feeds the input to records_validate as a Produce records blob, and to
 * batch_parse_header / batch_validate as one batch; also to
 * batch_decompress under each codec with a small limit, and to
 * marker_decode (transaction markers, with the CRC fixed up too). Checks the
 * contracts that must hold for any bytes: only documented error codes,
 * a parsed header stays within the input, and decompression never
 * produces more than its limit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "proto/marker.h"
#include "storage/batch.h"
#include "storage/crc32c.h"

static int visit(void *arg, const uint8_t *batch, const struct batch_info *info)
{
	const uint8_t **end = arg;
	if (batch + batch_total_bytes(info) > *end || info->magic != 2)
		abort();
	return 0;
}

static int known_error(int rc)
{
	return rc == 0 || rc == SL_EPROTO || rc == SL_ECORRUPT || rc == SL_ELIMIT ||
	       rc == SL_EUNSUPPORTED || rc == SL_ENOMEM;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *end = data + size;
	int rc = records_validate(data, size, visit, &end);
	if (!known_error(rc))
		abort();

	struct batch_info info;
	rc = batch_parse_header(data, size, &info);
	if (rc == 0) {
		if (batch_total_bytes(&info) > size)
			abort();
		size_t total = batch_total_bytes(&info);
		rc = batch_validate(data, total, &info);
		if (!known_error(rc))
			abort();
		/* Again with the CRC fixed up, so mutations reach the
		 * record framing and the codecs instead of stopping at the
		 * checksum. */
		uint8_t *copy = malloc(total);
		if (!copy)
			return 0;
		memcpy(copy, data, total);
		be32_store(copy + 17, crc32c(0, copy + 21, total - 21));
		rc = batch_validate(copy, total, &info);
		if (!known_error(rc) || rc == SL_ECORRUPT)
			abort();
		struct marker m;
		rc = marker_decode(copy, total, &m);
		if ((!known_error(rc) && rc != SL_ENOTFOUND) || rc == SL_ECORRUPT)
			abort();
		free(copy);
	}

	/* The first byte picks a codec; the rest is its payload. */
	if (size >= 1) {
		enum batch_codec codec = (enum batch_codec)(data[0] % 6);
		size_t limit = 1 << 16;
		struct kbuf out;
		kbuf_init(&out);
		rc = batch_decompress(codec, data + 1, size - 1, &out, limit);
		if (!known_error(rc) || out.len > limit || out.cap > limit)
			abort();
		kbuf_free(&out);
	}
	return 0;
}
