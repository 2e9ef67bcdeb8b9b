/* header.h — Kafka request and response headers.
 *
 * Request header v1: api_key int16, api_version int16, correlation_id
 * int32, client_id nullable int16-length string. v2 adds a tagged-field
 * section (client_id keeps its int16 length even then, so any broker can
 * read any ApiVersions request). v0 (no client_id) is only used by
 * ControlledShutdown v0, which Sluice does not speak; it is decoded anyway.
 *
 * Response header v0: correlation_id int32. v1 adds an empty tagged-field
 * section. ApiVersions responses always use v0, whatever their version. */
#ifndef SLUICE_PROTO_HEADER_H
#define SLUICE_PROTO_HEADER_H

#include <stdint.h>

#include "base/buf.h"

struct proto_req_header {
	int16_t api_key;
	int16_t api_version;
	int32_t correlation_id;
	kstr client_id; /* view into the frame; null (len -1) in v0 or if sent null */
};

/* Header version of a request: 2 at or above the api's first flexible
 * version, else 1. An unknown api gets 1 (enough to read its correlation
 * id and answer with an error). */
int proto_req_header_version(int16_t key, int16_t version);

/* Header version of a response: 1 at or above the api's first flexible
 * version, else 0; always 0 for ApiVersions (key 18) and unknown apis. */
int proto_resp_header_version(int16_t key, int16_t version);

/* Decodes a request header of the given version (0, 1 or 2) from r,
 * leaving r at the start of the body. Unknown header tags are skipped.
 * Returns 0, SL_EPROTO (truncated or malformed) or SL_EINVAL (bad
 * header_version). */
int proto_req_header_decode(struct kreader *r, struct proto_req_header *h, int header_version);

/* Decodes a request header, choosing its version from the api key and
 * version it carries (proto_req_header_version). Same returns. When the
 * result is SL_EPROTO, h->api_key, api_version and correlation_id are
 * still filled if the first 8 bytes were present, so an error can be
 * answered. */
int proto_req_header_read(struct kreader *r, struct proto_req_header *h);

/* Appends a response header of version 0 or 1. */
void proto_resp_header_encode(struct kbuf *b, int32_t correlation_id, int header_version);

#endif
