/* fuzz_request.c — fuzz target for request parsing: the request header
 * and, when the api and version are known, the generated body decoder.
 *
 * Input: one request as the connection layer hands it over, i.e. a frame
 * without its 4-byte size prefix (header, then body). A decoded body is
 * re-encoded, decoded again and re-encoded; the two encodings must match
 * (the codec is stable on its own output). The body bytes are also fed
 * to the response decoder of the same api and version, for coverage. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "kmsg.h"
#include "proto/header.h"

#define FUZZ_ARENA_BYTES (16 * 1024 * 1024)

static void check_stable(const struct kmsg_codec *c, int16_t v, const uint8_t *p, size_t n)
{
	struct arena a;
	struct kreader r;
	struct kbuf b1, b2;
	void *m = malloc(c->size), *m2 = malloc(c->size);

	if (!m || !m2)
		abort();
	arena_init(&a, FUZZ_ARENA_BYTES);
	kbuf_init(&b1);
	kbuf_init(&b2);
	kreader_init(&r, p, n);
	int rc = c->decode(&r, v, m, &a);
	if (rc != 0 && rc != SL_EPROTO && rc != SL_ENOMEM)
		abort();
	if (rc == 0) {
		c->encode(&b1, v, m);
		if (!b1.oom) {
			kreader_init(&r, b1.data, b1.len);
			if (c->decode(&r, v, m2, &a) != 0 || r.pos != b1.len)
				abort();
			if (!c->equal(m, m2, v))
				abort();
			c->encode(&b2, v, m2);
			if (!b2.oom && (b1.len != b2.len ||
					(b1.len && memcmp(b1.data, b2.data, b1.len) != 0)))
				abort();
		}
	}
	kbuf_free(&b1);
	kbuf_free(&b2);
	arena_free(&a);
	free(m);
	free(m2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_req_header h;
	struct kreader r;
	const struct kmsg_api_desc *d;
	const struct kmsg_api_codec *c;

	kreader_init(&r, data, size);
	if (proto_req_header_read(&r, &h) != 0)
		return 0;
	d = kmsg_api_find(h.api_key);
	c = kmsg_api_codec_find(h.api_key);
	if (!d || !c || h.api_version < d->min_version || h.api_version > d->max_version)
		return 0;
	check_stable(&c->req, h.api_version, data + r.pos, size - r.pos);
	check_stable(&c->resp, h.api_version, data + r.pos, size - r.pos);
	return 0;
}
