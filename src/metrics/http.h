/* http.h — the small HTTP/1.1 server of --metrics-listen: GET only, on
 * the agent's event loop (no thread of its own), with a bounded request
 * head, a timeout per connection, a bounded number of connections and
 * keep-alive. What a path answers is the caller's (metrics/exposition.c
 * routes /metrics, /healthz and /readyz).
 *
 * The request head parser is pure (metrics_http_parse) and fuzzed
 * (tests/fuzz/fuzz_http.c). Debian 12 packages no llhttp and only the
 * archived http-parser, and a GET-only server needs a few dozen lines of
 * parsing, so the parser is ours.
 *
 * Loop thread only. */
#ifndef SLUICE_METRICS_HTTP_H
#define SLUICE_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "base/buf.h"

/* A parsed request head. path is a view into the parsed bytes, without
 * the query string. */
struct metrics_http_request {
	const char *path;
	size_t path_len;
	bool keep_alive;  /* HTTP/1.1 without "Connection: close", or 1.0
			     with "Connection: keep-alive" */
};

/* Parse a request head at the start of p[0, len). Returns the head's
 * length (> 0: the request is complete, a GET has no body), 0 when more
 * bytes are needed, or a negative HTTP status the request earns: -400
 * (malformed, a body announced, an HTTP/1.1 request without one Host),
 * -405 (a method other than GET), -414 (target too long), -431 (head
 * longer than SL_METRICS_HTTP_HEAD_BYTES_MAX or too many headers), -505
 * (an HTTP version other than 1.0 and 1.1). */
int metrics_http_parse(const char *p, size_t len, struct metrics_http_request *out);

/* A request whose answer comes later (metrics_http_reply). */
struct metrics_http_reply;
#define METRICS_HTTP_LATER 0

/* What a GET of path answers: its HTTP status (200, 404, 503, ...), the
 * body appended to body and its content type; or METRICS_HTTP_LATER, and
 * then the route answers with metrics_http_reply(reply, ...) exactly
 * once, later, on the loop (body is then the route's to free). */
typedef int (*metrics_http_route_fn)(void *arg, const char *path, size_t path_len,
				     struct kbuf *body, const char **content_type,
				     struct metrics_http_reply *reply);

struct metrics_http_config {
	const char *host;        /* an address or a hostname (first address) */
	int port;
	metrics_http_route_fn route;
	void *arg;
};

struct metrics_http;

/* Listen. Returns 0, or SL_EINVAL (the host does not resolve) or SL_EIO
 * (the address cannot be bound) after logging why. */
int metrics_http_start(uv_loop_t *loop, const struct metrics_http_config *cfg,
		       struct metrics_http **out);
/* The port it listens on (the one bound for port 0). */
int metrics_http_port(const struct metrics_http *h);
/* The answer to a request its route put off: status, body (taken and
 * freed) and content type. The connection may have closed meanwhile
 * (timeout, client gone, metrics_http_close): the answer is dropped. */
void metrics_http_reply(struct metrics_http_reply *reply, int status, struct kbuf *body,
			const char *content_type);

/* Stop listening, close every connection (answers being written are
 * cut) and free h once its handles are closed. NULL: nothing. */
void metrics_http_close(struct metrics_http *h);

#endif
