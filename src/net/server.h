/* server.h — the Kafka listener: TCP connections on the event loop,
 * request framing, in-order responses, and backpressure.
 *
 * Requests of one connection are decoded and handed to the API layer as
 * they arrive (pipelined, up to SL_CONN_INFLIGHT_MAX), may complete in
 * any order, and are answered in arrival order, as Kafka requires.
 * Loop thread only. */
#ifndef SLUICE_SERVER_H
#define SLUICE_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/arena.h"
#include "base/buf.h"
#include "kmsg.h"

struct server;
struct conn;

/* How a request ended: set once, by the one request_* call that ends it. */
enum request_end {
	REQUEST_RUNNING,           /* the handler has not finished it yet */
	REQUEST_RESPONDED,         /* request_respond(_pieces): resp goes out */
	REQUEST_NO_REPLY,          /* request_no_reply: nothing is sent */
	REQUEST_FAIL_CLOSE,        /* request_fail_close: nothing is sent, the
				      connection closes now */
	REQUEST_CLOSE_AFTER,       /* request_close_after: nothing is sent, the
				      connection closes once this one's turn
				      comes (earlier answers still go out) */
	REQUEST_RESPONDED_CLOSE,   /* request_respond_close: resp goes out, then
				      the connection closes */
};

/* One request frame, from arrival until its response is queued. */
struct request {
	struct request *next;      /* the connection's queue */
	struct conn *conn;
	void *ctx;                 /* the server's handler argument */
	uint8_t *frame;            /* the request bytes after the size: owned,
				      or a view of the connection's read
				      buffer (a small produce frame) */
	size_t frame_len;
	size_t frame_cap;          /* frame's buffer size (kbuf_alloc; 0: a view) */
	struct kshared *frame_shared; /* frame's owner: a view's read buffer, or
				      once request_frame_share, its own */
	int16_t api_key;
	int16_t api_version;
	int32_t correlation_id;
	kstr client_id;            /* view into frame */
	struct kreader body;       /* positioned after the request header */
	struct arena arena;        /* decoded structures; freed with the request */
	struct kbuf resp;          /* response frame: the server writes the
				      size and header, the handler appends the
				      body */
	struct kmsg_gaps gaps;     /* response bytes outside resp
				      (request_respond_pieces), owned */
	void (*release)(void *);   /* called once when the bytes the gaps */
	void *release_arg;         /* point into may go (or NULL) */
	enum request_end end;      /* how the handler finished it */
	void *state;               /* handler's async state */
	uint64_t received_ns;      /* uv_hrtime() at arrival (request latency) */
};

/* Called for each request. The handler eventually calls exactly one of
 * request_respond / request_respond_pieces / request_no_reply /
 * request_fail_close / request_close_after, at once or later from the
 * loop; a second one aborts (SL_ASSERT): it would answer a correlation id
 * twice or free the request under the first. */
typedef void (*server_handle_fn)(struct request *req);

/* One address to accept connections on. */
struct server_listener {
	const char *host;          /* an IP address or a hostname: a name is
				      resolved at start (getaddrinfo) and the
				      first address it gives is bound */
	int port;
	bool tls;                  /* connections speak TLS (server_config.tls) */
	bool sasl;                 /* clients authenticate with SASL before any
				      other request (request_sasl) */
};

struct tls_ctx;

struct server_config {
	const struct server_listener *listeners;
	size_t listener_count;     /* 1..SL_LISTENERS_MAX */
	struct tls_ctx *tls;       /* for tls listeners (the server takes its own
				      reference); NULL when none is */
	uint64_t tls_handshake_ms; /* a handshake not done by then closes */
	uint64_t sasl_login_ms;    /* a SASL login not done by then closes */
	size_t connections_max;
	/* Request bytes received and not yet answered, over all connections
	 * (Kafka's queued.max.request.bytes): a connection whose next frame
	 * would go beyond it waits (its reading stops) until answers free
	 * room; a frame is always taken when nothing else is queued. */
	size_t queued_bytes_max;
};

/* host (an address, or a name: the first address getaddrinfo gives) and
 * port as a socket address to bind. 0, or SL_EINVAL after logging why. */
int server_resolve(const char *host, int port, struct sockaddr_storage *addr);

int server_start(uv_loop_t *loop, const struct server_config *cfg,
		 server_handle_fn handle, void *ctx, struct server **out);
/* New TLS connections use ctx from now on (a reloaded certificate);
 * connections already accepted keep the one they started with. The
 * server takes a reference and drops the previous one. */
void server_set_tls(struct server *s, struct tls_ctx *ctx);
/* Stop accepting new connections (existing ones keep working). */
void server_stop_listening(struct server *s);
/* Close every connection and free the server once they are closed. */
void server_close(struct server *s);
/* Backpressure from the write path: while paused, no connection reads
 * further requests. */
void server_pause_reads(struct server *s);
void server_resume_reads(struct server *s);
size_t server_connection_count(const struct server *s);
/* Request bytes received and not yet answered (queued_bytes_max's count). */
size_t server_queued_bytes(const struct server *s);

/* Prepare req->resp for a response header of the given version
 * (0: correlation id; 1: plus empty tagged fields). The dispatcher calls
 * this before the handler. */
void request_begin_response(struct request *req, int header_version);
/* The body is complete: queue the response. */
void request_respond(struct request *req);
/* The body is complete but its records are not in req->resp: they are
 * the gaps (from a <msg>_encode_gaps into req->resp, possibly several at
 * one offset, in wire order). Takes gaps->v: the response goes out as one
 * write of several pieces, and release(arg) (if not NULL) is called
 * exactly once, on the loop, once the bytes the gaps point to are no
 * longer needed: when that write has completed, or when the response is
 * dropped (the connection closed first) or could not be written. */
void request_respond_pieces(struct request *req, struct kmsg_gaps *gaps,
			    void (*release)(void *), void *arg);
/* The pieces of a response of len bytes at base with those gaps, in wire
 * order, into out (room for 2 * n + 1; empty pieces are left out).
 * Returns how many. For tests. */
size_t response_pieces(const uint8_t *base, size_t len, const struct kmsg_gap *gaps, size_t n,
		       uv_buf_t *out);
/* The body is complete: queue the response, and close the connection
 * once it is written (a failed authentication, as Kafka does). */
void request_respond_close(struct request *req);
/* Make req->resp a raw frame: the size only, no response header (SASL
 * tokens after a SaslHandshake v0, KIP-152); the handler appends the
 * token. */
void request_begin_raw_response(struct request *req);
/* acks=0 produce: finish without a response. */
void request_no_reply(struct request *req);
/* A protocol error: close the connection (after earlier responses). */
void request_fail_close(struct request *req);
/* No answer, and close the connection once every earlier request has been
 * answered (acks=0 produce that failed). */
void request_close_after(struct request *req);
/* False once the client has gone; an async handler may then skip work. */
bool request_conn_open(const struct request *req);
/* The frame as a shared buffer, so that what points into it (a produce's
 * batches, kept by the read cache) may outlive the request: the request
 * keeps one reference until it is freed, the caller takes its own with
 * kshared_ref. NULL when out of memory. Loop thread. */
struct kshared *request_frame_share(struct request *req);
/* The peer's address as text, for logs. */
const char *request_peer(const struct request *req);
/* The peer's IP address alone ("10.0.0.1", "::1"), as Kafka's ACL hosts
 * name it; "" if unknown. */
const char *request_host(const struct request *req);
/* The position in server_config.listeners of the listener the request's
 * connection came in on (Metadata answers with that listener's address). */
size_t request_listener(const struct request *req);
/* Who the connection authenticated as, for authorization — the one place
 * that says who a client is: "User:" and the SASL user on a SASL
 * listener once authenticated; else "User:" and the client certificate's
 * subject CN on a TLS connection that presented one; "User:ANONYMOUS"
 * otherwise. Valid while the request lives. */
const char *request_principal(const struct request *req);

struct sasl_session;
/* On a SASL listener before the client has authenticated: the
 * connection's exchange (net/sasl.h; made on first use, freed with the
 * connection or at request_authenticated). NULL on any other listener,
 * once authenticated, or when out of memory (check
 * request_authenticated to tell). */
struct sasl_session *request_sasl(struct request *req);
/* False only on a SASL listener before request_authenticated. */
bool request_authenticated(const struct request *req);
/* The client authenticated as user: its principal is "User:" + user from
 * now on, every API is served, and the exchange's memory goes. 0 or
 * SL_ENOMEM. */
int request_set_authenticated(struct request *req, const char *user);

#endif
