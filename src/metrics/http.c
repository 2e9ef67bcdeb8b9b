/* http.c — the metrics HTTP server (http.h): the request head parser,
 * and connections on the loop that read one head at a time, answer it
 * through the route function and either close or wait for the next
 * (keep-alive). A bad request gets its status and a close. */
#define _GNU_SOURCE /* memmem */
#include "metrics/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/limits.h"
#include "base/log.h"
#include "metrics/metrics.h"
#include "net/server.h"

/* ---- the parser ---- */

/* RFC 9110 tchar: the characters of a method or a header name. */
static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A field value's characters: visible, space, tab, obs-text. */
static bool is_value_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool name_is(const char *p, size_t n, const char *name)
{
	return strlen(name) == n && strncasecmp(p, name, n) == 0;
}

/* Does a Connection value (a comma-separated token list) list token? */
static bool list_has(const char *v, size_t n, const char *token)
{
	size_t tl = strlen(token), i = 0;
	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t start = i;
		while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
			i++;
		if (i - start == tl && strncasecmp(v + start, token, tl) == 0)
			return true;
	}
	return false;
}

/* The request line at p[0, n) (no CRLF). */
static int parse_request_line(const char *p, size_t n, struct metrics_http_request *out,
			      bool *http11)
{
	size_t i = 0;
	while (i < n && is_tchar((unsigned char)p[i]))
		i++;
	if (i == 0 || i >= n || p[i] != ' ')
		return -400;
	bool get = i == 3 && memcmp(p, "GET", 3) == 0;
	size_t t = ++i;
	while (i < n && p[i] != ' ') {
		unsigned char c = (unsigned char)p[i];
		if (c <= 0x20 || c >= 0x7f)
			return -400;
		i++;
	}
	if (i >= n || i == t)
		return -400;
	size_t target_len = i - t;
	const char *v = p + i + 1;
	size_t vn = n - i - 1;
	if (vn != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
	    v[7] < '0' || v[7] > '9')
		return -400;
	if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
		return -505;
	if (!get)
		return -405;
	if (target_len > SL_METRICS_HTTP_TARGET_BYTES_MAX)
		return -414;
	if (p[t] != '/')
		return -400;
	const char *q = memchr(p + t, '?', target_len);
	out->path = p + t;
	out->path_len = q ? (size_t)(q - (p + t)) : target_len;
	*http11 = v[7] == '1';
	return 0;
}

int metrics_http_parse(const char *p, size_t len, struct metrics_http_request *out)
{
	memset(out, 0, sizeof *out);
	size_t limit = len < SL_METRICS_HTTP_HEAD_BYTES_MAX ? len : SL_METRICS_HTTP_HEAD_BYTES_MAX;
	/* RFC 9112 2.2: empty lines before the request line are ignored. */
	size_t pos = 0;
	while (pos + 1 < limit && p[pos] == '\r' && p[pos + 1] == '\n')
		pos += 2;
	const char *head = pos < limit ? memmem(p + pos, limit - pos, "\r\n\r\n", 4) : NULL;
	bool http11 = false;
	if (!head) {
		/* Not complete: refuse a request line that is wrong already
		 * (a TLS hello, binary noise) instead of waiting for the
		 * timeout. */
		const char *eol = memmem(p + pos, limit - pos, "\r\n", 2);
		if (eol) {
			int rc = parse_request_line(p + pos, (size_t)(eol - (p + pos)), out, &http11);
			if (rc)
				return rc;
		} else {
			for (size_t i = pos; i < limit; i++)
				if (((unsigned char)p[i] < 0x20 && p[i] != '\r') || (unsigned char)p[i] >= 0x7f)
					return -400;
		}
		memset(out, 0, sizeof *out);
		return len >= SL_METRICS_HTTP_HEAD_BYTES_MAX ? -431 : 0;
	}
	size_t end = (size_t)(head - p) + 2; /* past the last header's CRLF */
	const char *eol = memmem(p + pos, end - pos, "\r\n", 2);
	int rc = parse_request_line(p + pos, (size_t)(eol - (p + pos)), out, &http11);
	if (rc)
		return rc;
	bool keep_alive = http11, conn_close = false;
	int hosts = 0, headers = 0;
	for (pos = (size_t)(eol - p) + 2; pos < end; pos = (size_t)(eol - p) + 2) {
		eol = memmem(p + pos, end - pos, "\r\n", 2);
		const char *line = p + pos;
		size_t n = (size_t)(eol - line), k = 0;
		if (++headers > SL_METRICS_HTTP_HEADERS_MAX)
			return -431;
		/* A name, a colon at once (no space before it: RFC 9112 5.1),
		 * then the value; obsolete line folding is refused. */
		while (k < n && is_tchar((unsigned char)line[k]))
			k++;
		if (k == 0 || k >= n || line[k] != ':')
			return -400;
		size_t vs = k + 1, ve = n;
		for (size_t j = vs; j < n; j++)
			if (!is_value_char((unsigned char)line[j]))
				return -400;
		while (vs < ve && (line[vs] == ' ' || line[vs] == '\t'))
			vs++;
		while (ve > vs && (line[ve - 1] == ' ' || line[ve - 1] == '\t'))
			ve--;
		const char *v = line + vs;
		size_t vn = ve - vs;
		if (name_is(line, k, "host")) {
			hosts++;
		} else if (name_is(line, k, "content-length")) {
			/* A GET here has no body: one announced cannot be
			 * skipped safely, so it is refused. */
			if (vn != 1 || v[0] != '0')
				return -400;
		} else if (name_is(line, k, "transfer-encoding")) {
			return -400;
		} else if (name_is(line, k, "connection")) {
			conn_close |= list_has(v, vn, "close");
			if (list_has(v, vn, "keep-alive"))
				keep_alive = true;
		}
	}
	/* RFC 9112 3.2: an HTTP/1.1 request without exactly one Host is a 400. */
	if ((http11 && hosts != 1) || hosts > 1)
		return -400;
	out->keep_alive = keep_alive && !conn_close;
	return (int)end + 2;
}

/* ---- the server ---- */

struct hconn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t write;
	uv_shutdown_t shutdown;
	struct metrics_http *h;
	struct hconn *prev, *next;
	struct kbuf out;         /* the answer being written */
	size_t len;              /* bytes in head */
	size_t consumed;         /* of head, the request being answered */
	int handles;             /* open: tcp, timer */
	bool closing, writing, keep_alive;
	bool later;              /* its route answers later: the memory stays
				    until metrics_http_reply, even closed */
	bool lingering;          /* answered and closing: reading what the
				    client still sends, so that unread bytes
				    do not turn the close into a reset that
				    loses the answer */
	char head[SL_METRICS_HTTP_HEAD_BYTES_MAX];
};

struct metrics_http {
	uv_loop_t *loop;
	uv_tcp_t listener;
	metrics_http_route_fn route;
	void *arg;
	struct hconn *conns;
	size_t conn_count;
	int port;
	bool closing, listener_open;
};

static void http_maybe_free(struct metrics_http *h)
{
	if (h->closing && !h->listener_open && !h->conns)
		free(h);
}

/* Once its handles are closed and no answer is owed. */
static void hconn_free_maybe(struct hconn *c)
{
	if (c->handles > 0 || c->later)
		return;
	struct metrics_http *h = c->h;
	if (c->prev) c->prev->next = c->next; else h->conns = c->next;
	if (c->next) c->next->prev = c->prev;
	h->conn_count--;
	kbuf_free(&c->out);
	free(c);
	http_maybe_free(h);
}

static void hconn_handle_closed(uv_handle_t *handle)
{
	struct hconn *c = handle->data;
	c->handles--;
	hconn_free_maybe(c);
}

static void hconn_close(struct hconn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->tcp, hconn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, hconn_handle_closed);
}

static void hconn_timeout(uv_timer_t *t)
{
	hconn_close(t->data);
}

static const char *status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Internal Server Error";
	}
}

static void hconn_read(struct hconn *c);
static void hconn_next(struct hconn *c);

static void hconn_shut(uv_shutdown_t *req, int status)
{
}

/* Closing after an answer: send FIN, discard what arrives until the
 * client closes or a short while passes. */
static void hconn_linger(struct hconn *c)
{
	c->lingering = true;
	c->len = 0;
	uv_timer_start(&c->timer, hconn_timeout, SL_METRICS_HTTP_LINGER_MS, 0);
	if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, hconn_shut) != 0)
		hconn_close(c);
	else
		hconn_read(c);
}

static void hconn_written(uv_write_t *w, int status)
{
	struct hconn *c = w->data;
	c->writing = false;
	kbuf_free(&c->out);
	if (status != 0 || c->h->closing) {
		hconn_close(c);
		return;
	}
	if (!c->keep_alive) {
		hconn_linger(c);
		return;
	}
	/* Keep-alive: what followed the head is the next request. */
	memmove(c->head, c->head + c->consumed, c->len - c->consumed);
	c->len -= c->consumed;
	c->consumed = 0;
	uv_timer_start(&c->timer, hconn_timeout, SL_METRICS_HTTP_TIMEOUT_MS, 0);
	hconn_next(c);
}

/* Send status with body (and close after it unless keep_alive). */
static void hconn_answer(struct hconn *c, int status, struct kbuf *body, const char *type)
{
	char top[256];
	int n = snprintf(top, sizeof top,
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Cache-Control: no-store\r\n%sConnection: %s\r\n\r\n",
			 status, status_text(status), type, body->len,
			 status == 405 ? "Allow: GET\r\n" : "", c->keep_alive ? "keep-alive" : "close");
	kbuf_init(&c->out);
	kbuf_put(&c->out, top, (size_t)n);
	kbuf_put(&c->out, body->data, body->len);
	kbuf_free(body);
	if (c->out.oom) {
		hconn_close(c);
		return;
	}
	uv_read_stop((uv_stream_t *)&c->tcp);
	uv_buf_t b = uv_buf_init((char *)c->out.data, (unsigned)c->out.len);
	c->write.data = c;
	c->writing = true;
	if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, hconn_written) != 0) {
		c->writing = false;
		hconn_close(c);
	}
}

/* Answer the request at the start of head if it is complete, else read. */
static void hconn_next(struct hconn *c)
{
	struct metrics_http_request rq;
	int rc = metrics_http_parse(c->head, c->len, &rq);
	if (rc == 0) {
		hconn_read(c);
		return;
	}
	struct kbuf body;
	kbuf_init(&body);
	const char *type = "text/plain; charset=utf-8";
	int status;
	if (rc < 0) {
		status = -rc;
		c->keep_alive = false;
		const char *msg = status_text(status);
		kbuf_put(&body, msg, strlen(msg));
		kbuf_put(&body, "\n", 1);
	} else {
		c->consumed = (size_t)rc;
		c->keep_alive = rq.keep_alive;
		metrics.http_requests++;
		status = c->h->route(c->h->arg, rq.path, rq.path_len, &body, &type,
				     (struct metrics_http_reply *)c);
		if (status == METRICS_HTTP_LATER) {
			c->later = true;
			return;
		}
	}
	hconn_answer(c, status, &body, type);
}

void metrics_http_reply(struct metrics_http_reply *reply, int status, struct kbuf *body,
			const char *content_type)
{
	struct hconn *c = (struct hconn *)reply;
	c->later = false;
	if (c->closing) {
		kbuf_free(body);
		hconn_free_maybe(c);
		return;
	}
	hconn_answer(c, status, body, content_type);
}

static void hconn_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct hconn *c = handle->data;
	buf->base = c->head + c->len;
	buf->len = sizeof c->head - c->len;
}

static void hconn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct hconn *c = stream->data;
	if (nread < 0) {
		hconn_close(c);
		return;
	}
	if (c->lingering) {
		c->len = 0;
		return;
	}
	c->len += (size_t)nread;
	if (nread > 0) {
		uv_read_stop(stream);
		hconn_next(c);
	}
}

static void hconn_read(struct hconn *c)
{
	if (c->len >= sizeof c->head) { /* the parser said 431 first */
		hconn_close(c);
		return;
	}
	if (uv_read_start((uv_stream_t *)&c->tcp, hconn_alloc, hconn_on_read) != 0)
		hconn_close(c);
}

static void on_http_connection(uv_stream_t *server, int status)
{
	struct metrics_http *h = server->data;
	if (status < 0 || h->closing)
		return;
	struct hconn *c = calloc(1, sizeof *c);
	if (!c)
		return;
	c->h = h;
	uv_tcp_init(h->loop, &c->tcp);
	uv_timer_init(h->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->handles = 2;
	if (h->conns) h->conns->prev = c;
	c->next = h->conns;
	h->conns = c;
	h->conn_count++;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
	    h->conn_count > SL_METRICS_HTTP_CONNECTIONS_MAX) {
		hconn_close(c);
		return;
	}
	uv_timer_start(&c->timer, hconn_timeout, SL_METRICS_HTTP_TIMEOUT_MS, 0);
	hconn_read(c);
}

static void listener_closed(uv_handle_t *handle)
{
	struct metrics_http *h = handle->data;
	h->listener_open = false;
	http_maybe_free(h);
}

int metrics_http_start(uv_loop_t *loop, const struct metrics_http_config *cfg,
		       struct metrics_http **out)
{
	*out = NULL;
	struct sockaddr_storage addr;
	if (server_resolve(cfg->host, cfg->port, &addr) != 0)
		return SL_EINVAL;
	struct metrics_http *h = calloc(1, sizeof *h);
	if (!h)
		return SL_ENOMEM;
	h->loop = loop;
	h->route = cfg->route;
	h->arg = cfg->arg;
	uv_tcp_init(loop, &h->listener);
	h->listener.data = h;
	h->listener_open = true;
	int rc = uv_tcp_bind(&h->listener, (struct sockaddr *)&addr, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&h->listener, 64, on_http_connection);
	if (rc != 0) {
		log_error("cannot listen for metrics on %s:%d: %s", cfg->host, cfg->port,
			  uv_strerror(rc));
		h->closing = true;
		uv_close((uv_handle_t *)&h->listener, listener_closed);
		return SL_EIO;
	}
	struct sockaddr_storage bound;
	int blen = sizeof bound;
	h->port = cfg->port;
	if (uv_tcp_getsockname(&h->listener, (struct sockaddr *)&bound, &blen) == 0)
		h->port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
							   : ((struct sockaddr_in6 *)&bound)->sin6_port);
	*out = h;
	return 0;
}

int metrics_http_port(const struct metrics_http *h)
{
	return h->port;
}

void metrics_http_close(struct metrics_http *h)
{
	if (!h || h->closing)
		return;
	h->closing = true;
	uv_close((uv_handle_t *)&h->listener, listener_closed);
	for (struct hconn *c = h->conns; c; c = c->next)
		hconn_close(c);
}
