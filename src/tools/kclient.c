/* kclient.c — the tools' blocking Kafka client (kclient.h): connect,
 * frame a request with its header, read and decode the answer. */
#include "tools/kclient.h"

#include <errno.h>
#include <stdarg.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/err.h"
#include "base/limits.h"
#include "proto/header.h"
#include "proto/kerr.h"

const char *kclient_default_bootstrap(void)
{
	const char *b = getenv("SLUICE_BOOTSTRAP");
	return b && *b ? b : "127.0.0.1:9092";
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return SL_EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return SL_EIO;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int kclient_connect(struct kclient *c, const char *tool, const char *client_id,
		    const char *bootstrap)
{
	*c = (struct kclient){ .tool = tool, .client_id = client_id, .fd = -1 };
	char host[256];
	const char *colon = strrchr(bootstrap, ':');
	const char *h = bootstrap;
	size_t len = colon ? (size_t)(colon - bootstrap) : 0;
	if (len >= 2 && h[0] == '[' && h[len - 1] == ']') {
		h++;
		len -= 2;
	}
	if (!colon || len == 0 || len >= sizeof host || !colon[1]) {
		fprintf(stderr, "%s: bad --bootstrap %s (HOST:PORT)\n", tool, bootstrap);
		return SL_EINVAL;
	}
	memcpy(host, h, len);
	host[len] = 0;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || !res) {
		fprintf(stderr, "%s: cannot resolve %s\n", tool, bootstrap);
		return SL_EIO;
	}
	int err = 0;
	for (struct addrinfo *ai = res; ai && c->fd < 0; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			c->fd = fd;
		} else {
			err = errno;
			close(fd);
		}
	}
	freeaddrinfo(res);
	if (c->fd < 0) {
		fprintf(stderr, "%s: cannot connect to %s: %s\n", tool, bootstrap, strerror(err));
		return SL_EIO;
	}
	arena_init(&c->arena, SL_ARENA_BYTES_MAX);
	return 0;
}

void kclient_close(struct kclient *c)
{
	if (c->fd < 0)
		return;
	close(c->fd);
	c->fd = -1;
	for (int i = 0; i < c->frame_count; i++)
		free(c->frames[i]);
	c->frame_count = 0;
	arena_free(&c->arena);
}

int kclient_call(struct kclient *c, int16_t key, int16_t version, kclient_encode_fn enc,
		 const void *req, kclient_decode_fn dec, void *resp)
{
	struct kbuf b;
	kbuf_init(&b);
	kbuf_put_i32(&b, 0);
	kbuf_put_i16(&b, key);
	kbuf_put_i16(&b, version);
	int32_t corr = ++c->correlation_id;
	kbuf_put_i32(&b, corr);
	kbuf_put_i16(&b, (int16_t)strlen(c->client_id));
	kbuf_put(&b, c->client_id, strlen(c->client_id));
	if (proto_req_header_version(key, version) >= 2)
		kbuf_put_uvarint(&b, 0);
	enc(&b, version, req);
	if (b.oom) {
		kbuf_free(&b);
		return SL_ENOMEM;
	}
	kbuf_patch_i32(&b, 0, (int32_t)(b.len - 4));
	int rc = write_all(c->fd, b.data, b.len);
	kbuf_free(&b);
	uint8_t size_bytes[4];
	if (!rc)
		rc = read_all(c->fd, size_bytes, 4);
	if (rc) {
		fprintf(stderr, "%s: connection lost\n", c->tool);
		return rc;
	}
	uint32_t size = be32_load(size_bytes);
	if (size < 4 || size > SL_TOOL_RESPONSE_BYTES_MAX || c->frame_count == KCLIENT_FRAMES_MAX) {
		fprintf(stderr, "%s: bad response size %u\n", c->tool, size);
		return SL_EPROTO;
	}
	uint8_t *frame = malloc(size);
	if (!frame)
		return SL_ENOMEM;
	c->frames[c->frame_count++] = frame;
	if (read_all(c->fd, frame, size) != 0) {
		fprintf(stderr, "%s: connection lost\n", c->tool);
		return SL_EIO;
	}
	struct kreader r;
	kreader_init(&r, frame, size);
	if (kreader_i32(&r) != corr) {
		fprintf(stderr, "%s: response out of order\n", c->tool);
		return SL_EPROTO;
	}
	if (proto_resp_header_version(key, version) >= 1) {
		uint64_t tags = kreader_uvarint(&r);
		for (uint64_t i = 0; i < tags && !r.err; i++) {
			kreader_uvarint(&r);
			kreader_skip(&r, (size_t)kreader_uvarint(&r));
		}
	}
	if (r.err || dec(&r, version, resp, &c->arena) != 0) {
		fprintf(stderr, "%s: malformed response to api %d v%d\n", c->tool, key, version);
		return SL_EPROTO;
	}
	return 0;
}

void kclient_print_kstr(kstr s, int width)
{
	printf("%-*.*s", width, s.len > 0 ? s.len : 0, s.len > 0 ? s.ptr : "");
}

void kclient_print_error(const struct kclient *c, int16_t code, kstr message,
			 const char *what_fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", c->tool);
	va_start(ap, what_fmt);
	vfprintf(stderr, what_fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s (%d)", kerr_name(code), code);
	if (message.len > 0)
		fprintf(stderr, ": %.*s", message.len, message.ptr);
	fprintf(stderr, "\n");
}

static void incremental_alter_configs_encode(struct kbuf *b, int16_t v, const void *m)
{
	kmsg_incremental_alter_configs_req_encode(b, v, m);
}

static int incremental_alter_configs_decode(struct kreader *r, int16_t v, void *m, struct arena *a)
{
	return kmsg_incremental_alter_configs_resp_decode(r, v, m, a);
}

int kclient_alter_configs(struct kclient *c, int8_t type, const char *name,
			  struct kmsg_incremental_alter_configs_req_alterable_config *ops, int32_t n)
{
	struct kmsg_incremental_alter_configs_req q;
	struct kmsg_incremental_alter_configs_resp r;
	struct kmsg_incremental_alter_configs_req_alter_configs_resource res;
	kmsg_incremental_alter_configs_req_init(&q);
	kmsg_incremental_alter_configs_resp_init(&r);
	kmsg_incremental_alter_configs_req_alter_configs_resource_init(&res);
	res.resource_type = type;
	res.resource_name = KSTR(name);
	res.configs = ops;
	res.configs_count = n;
	q.resources = &res;
	q.resources_count = 1;
	/* v1: flexible; served by Kafka 2.4+ */
	if (kclient_call(c, KMSG_INCREMENTAL_ALTER_CONFIGS_KEY, 1, incremental_alter_configs_encode,
			 &q, incremental_alter_configs_decode, &r) != 0 || r.responses_count != 1)
		return 1;
	const char *kind = type == 2 ? "topic" : "broker";
	if (r.responses[0].error_code) {
		kclient_print_error(c, r.responses[0].error_code, r.responses[0].error_message,
				    "alter %s %s", kind, name);
		return 1;
	}
	printf("Completed updating config for %s %s.\n", kind, name);
	return 0;
}

void kclient_uuid_string(const uint8_t uuid[16], char out[23])
{
	static const char digits[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	for (int i = 0; i < 16; i += 3) {
		uint32_t v = (uint32_t)uuid[i] << 16;
		if (i + 1 < 16)
			v |= (uint32_t)uuid[i + 1] << 8;
		if (i + 2 < 16)
			v |= uuid[i + 2];
		int chars = i + 2 < 16 ? 4 : i + 1 < 16 ? 3 : 2;
		for (int k = 0; k < chars; k++)
			out[o++] = digits[(v >> (18 - 6 * k)) & 63];
	}
	out[o] = 0;
}
