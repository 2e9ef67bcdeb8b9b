/* header.c — request header decode and response header encode; which
 * header version an (api key, version) uses comes from the generated
 * api table (kmsg_api_find). */
#include "proto/header.h"

#include "base/err.h"
#include "kmsg.h"

#define PROTO_API_VERSIONS_KEY 18

int proto_req_header_version(int16_t key, int16_t version)
{
	const struct kmsg_api_desc *d = kmsg_api_find(key);

	if (d && d->first_flexible >= 0 && version >= d->first_flexible)
		return 2;
	return 1;
}

int proto_resp_header_version(int16_t key, int16_t version)
{
	const struct kmsg_api_desc *d = kmsg_api_find(key);

	if (key == PROTO_API_VERSIONS_KEY || !d)
		return 0;
	if (d->first_flexible >= 0 && version >= d->first_flexible)
		return 1;
	return 0;
}

static int skip_tags(struct kreader *r)
{
	uint64_t n = kreader_uvarint(r);

	if (n > kreader_left(r))
		return SL_EPROTO;
	for (uint64_t i = 0; i < n && !r->err; i++) {
		(void)kreader_uvarint(r); /* tag */
		uint64_t size = kreader_uvarint(r);

		if (size > kreader_left(r))
			return SL_EPROTO;
		kreader_skip(r, (size_t)size);
	}
	return r->err ? SL_EPROTO : 0;
}

static int read_rest(struct kreader *r, struct proto_req_header *h, int header_version)
{
	h->client_id = KSTR_NULL;
	if (header_version >= 1) {
		int16_t n = kreader_i16(r);

		if (n >= 0) {
			const uint8_t *p = kreader_take(r, (size_t)n);

			if (p)
				h->client_id = (kstr){ (const char *)p, n };
		} else if (n != -1) {
			return SL_EPROTO;
		}
	}
	if (r->err)
		return SL_EPROTO;
	if (header_version >= 2)
		return skip_tags(r);
	return 0;
}

int proto_req_header_decode(struct kreader *r, struct proto_req_header *h, int header_version)
{
	if (header_version < 0 || header_version > 2)
		return SL_EINVAL;
	h->api_key = kreader_i16(r);
	h->api_version = kreader_i16(r);
	h->correlation_id = kreader_i32(r);
	if (r->err) {
		h->client_id = KSTR_NULL;
		return SL_EPROTO;
	}
	return read_rest(r, h, header_version);
}

int proto_req_header_read(struct kreader *r, struct proto_req_header *h)
{
	h->api_key = kreader_i16(r);
	h->api_version = kreader_i16(r);
	h->correlation_id = kreader_i32(r);
	if (r->err) {
		h->client_id = KSTR_NULL;
		return SL_EPROTO;
	}
	return read_rest(r, h, proto_req_header_version(h->api_key, h->api_version));
}

void proto_resp_header_encode(struct kbuf *b, int32_t correlation_id, int header_version)
{
	kbuf_put_i32(b, correlation_id);
	if (header_version >= 1)
		kbuf_put_uvarint(b, 0);
}
