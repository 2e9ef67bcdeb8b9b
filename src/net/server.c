/* server.c — libuv TCP server: accept, frame, queue, answer in order.
 *
 * A connection is freed only when its socket handle has closed and no
 * request of it is still running (refs), never inside its own callbacks.
 *
 * No produce frame is copied: a large one is read into its own buffer, a
 * small one is a view of the read buffer, which is then shared with its
 * views (never moved or overwritten below what was read) and left to
 * them when it is full (rbuf_switch). */
#include "net/server.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/limits.h"
#include "base/log.h"
#include "base/sl_assert.h"
#include "metrics/metrics.h"
#include "net/sasl.h"
#include "net/tls.h"
#include "proto/header.h"

/* Tuning, not a bound: bytes asked of each read; frames larger than
 * this are read straight into their own buffer, and a frame this small
 * from an idle connection always passes the queued-bytes budget. */
#define READ_CHUNK_BYTES (64 * 1024)
/* Tuning: a connection's read buffer. Produce frames go out as views of
 * it and the read cache may keep it long after, so it stays under
 * main.c's mmap threshold (256 KiB): from the heap, reused, where a
 * fresh mapping per buffer page-faulted on every page and was unmapped
 * when the cache let go (measured: a third of the agent's CPU). Larger
 * than a read so that a switch, which copies the partial frame at a
 * shared buffer's end, comes once per several frames. */
#define SHARED_CHUNK_BYTES (192 * 1024)
/* Tuning: a shared read buffer with less room than this (and a frame
 * whose size is not known yet) is left for a new one. */
#define SHARED_READ_MIN_BYTES (4 * 1024)
/* A connection idle this long gives back a shared read buffer it kept. */
#define SHARED_IDLE_MS 1000
/* Tuning: ciphertext bytes asked of each read of a TLS connection (into
 * one buffer the server shares: it is decrypted before the next read). */
#define TLS_READ_BYTES (64 * 1024)
/* Tuning: plaintext encrypted and handed to the socket at a time while
 * it takes everything (tls_send_pieces): small enough that its records
 * stay in the L2 cache until the kernel copies them, large enough that
 * the system calls cost little beside the encryption. */
#define TLS_STREAM_BYTES (128 * 1024)
#define TLS_STREAM_PIECES 64

struct conn {
	uv_tcp_t tcp;              /* first: the handle's data is the conn */
	struct server *server;
	struct conn *prev, *next;  /* server's list */
	struct kbuf rbuf;          /* bytes read, not yet framed */
	size_t rstart;             /* framed up to here */
	/* rbuf's buffer as shared with the produce frames dispatched as views
	 * of it (NULL: none is). While set, rbuf only grows at its end: it is
	 * never compacted, moved or reused below len (the views point into
	 * it); when it lacks room for the next read, a new buffer takes the
	 * unframed tail and the views keep the old one (rbuf_switch). */
	struct kshared *rshared;
	size_t rviewed;            /* bytes of it the views cover */
	bool viewed;               /* it sent a produce frame read into rbuf:
				      its read buffers are SHARED_CHUNK_BYTES */
	uint64_t read_ms;          /* when it last received bytes */
	uint8_t *big;              /* a large frame read straight into its own
				      buffer (no copy out of rbuf) */
	size_t big_len, big_have, big_cap;
	/* Its last frame was a big one (a producer's, most likely): the next
	 * read takes only the size prefix, so a big frame after it goes to
	 * its own buffer whole, none of it copied out of rbuf. */
	bool frames_big;
	bool wants_budget;         /* its next frame waits for the server's
				      queued-bytes budget */
	uint64_t big_progress_ms;  /* when the big frame last received bytes */
	bool close_pending;        /* a request will close it: read no more */
	struct request *head, *tail; /* in arrival order */
	int inflight;
	size_t inflight_bytes;     /* frames received, not yet answered */
	int refs;                  /* 1 for the socket + 1 per request */
	bool closing;              /* no more reads or writes */
	bool reading;
	uint8_t listener;          /* index in server.listeners */
	struct tls_conn *tls;      /* NULL on a plaintext listener */
	uint64_t accepted_ms;      /* for the TLS handshake's deadline */
	bool sasl;                 /* of a SASL listener */
	bool authenticated;        /* SASL done (always true elsewhere) */
	bool write_closed;         /* a response that closes it was queued:
				      nothing more is written or read */
	struct sasl_session *sasl_session; /* the exchange, until done */
	char *principal;           /* "User:NAME" after SASL, else NULL */
	uv_shutdown_t shutdown;    /* closes it once that response is out */
	char peer[64];
	char host[48];             /* the peer's IP address alone (ACL hosts) */
};

/* One bound address. */
struct listener {
	uv_tcp_t tcp;              /* first: the handle's data is the listener */
	struct server *server;
	uint8_t index;
	bool tls;
	bool sasl;
	bool open;                 /* until its handle has closed */
};

struct server {
	uv_loop_t *loop;
	struct listener listeners[SL_LISTENERS_MAX];
	size_t listener_count;
	int listeners_open;
	server_handle_fn handle;
	void *ctx;
	struct conn *conns;
	size_t conn_count;
	size_t connections_max;
	size_t queued_bytes, queued_bytes_max; /* all connections' frames */
	bool starved;              /* some connection waits for budget */
	uv_idle_t wake;            /* retries waiting connections from the top
				      of the loop, never from inside a handler */
	uv_timer_t sweep;          /* closes connections whose frame stalls;
				      once closing, those that outlive
				      SL_SHUTDOWN_CLOSE_MS */
	int handles_open;          /* wake + sweep, until closed */
	bool sweep_open;           /* until the server closes it: the last
				      connection gone */
	bool paused;
	bool closing;
	struct tls_ctx *tls;       /* for new TLS connections */
	uint64_t tls_handshake_ms;
	uint64_t sasl_login_ms;
	uint8_t *tls_scratch;      /* TLS_READ_BYTES: every TLS read lands here */
};

/* One response being written: its buffer, and the release hook of the
 * bytes its records come from (a fetch's), both run when the write
 * completes. */
struct write_req {
	uv_write_t w;
	struct conn *conn;
	uint8_t *data;
	size_t cap;
	void (*release)(void *);
	void *release_arg;
};

static void conn_unref(struct conn *c);
static void conn_close(struct conn *c);
static void conn_update_reading(struct conn *c);
static void conn_close_after_writes(struct conn *c);
static void tls_send_output(struct conn *c);

static void budget_release(struct server *s, size_t n);
static void server_maybe_free(struct server *s);
static void budget_wake(uv_idle_t *h);

static void request_free(struct request *r)
{
	budget_release(r->conn->server, r->frame_len);
	if (r->frame_shared)
		kshared_unref(r->frame_shared);
	else
		kbuf_release(r->frame, r->frame_cap);
	arena_free(&r->arena);
	kbuf_free(&r->resp);
	free(r->gaps.v);
	if (r->release)
		r->release(r->release_arg);
	free(r);
}

/* c lets go of its read buffer (none is left): a shared one stays with
 * its views, the bytes they do not cover counted as waste while it
 * lives. */
static void rbuf_drop(struct conn *c)
{
	if (c->rshared) {
		kshared_waste(c->rshared, c->rshared->cap - c->rviewed);
		kshared_unref(c->rshared);
		c->rshared = NULL;
		c->rviewed = 0;
		kbuf_init(&c->rbuf);
	} else {
		kbuf_free(&c->rbuf);
	}
	c->rstart = 0;
}

/* The shared read buffer has no room for the next want bytes: a new one
 * takes the unframed tail (the only bytes copied: a part of one frame),
 * the views keep the old. False when out of memory. */
static bool rbuf_switch(struct conn *c, size_t want)
{
	size_t rest = c->rbuf.len - c->rstart;
	size_t cap = rest + want > SHARED_CHUNK_BYTES ? rest + want : SHARED_CHUNK_BYTES;
	uint8_t *p = kbuf_alloc(&cap);
	if (!p)
		return false;
	if (rest)
		memcpy(p, c->rbuf.data + c->rstart, rest);
	rbuf_drop(c);
	c->rbuf = (struct kbuf){ .data = p, .len = rest, .cap = cap };
	return true;
}

/* Release what a write request holds: its buffer, and the bytes behind
 * its pieces (the release hook). */
static void write_req_free(struct write_req *wr)
{
	kbuf_release(wr->data, wr->cap);
	if (wr->release)
		wr->release(wr->release_arg);
	free(wr);
}

static void write_done(uv_write_t *w, int status)
{
	struct write_req *wr = (struct write_req *)w;
	struct conn *c = wr->conn;
	write_req_free(wr);
	if (status < 0 && !c->closing)
		conn_close(c);
	else if (!c->closing)
		conn_update_reading(c);
	conn_unref(c);
}

size_t response_pieces(const uint8_t *base, size_t len, const struct kmsg_gap *gaps, size_t n,
		       uv_buf_t *out)
{
	size_t k = 0, pos = 0;
	for (size_t i = 0; i <= n; i++) {
		size_t at = i < n ? gaps[i].at : len;
		if (at > pos)
			out[k++] = uv_buf_init((char *)base + pos, (unsigned)(at - pos));
		pos = at;
		if (i < n && gaps[i].len)
			out[k++] = uv_buf_init((char *)gaps[i].ptr, (unsigned)gaps[i].len);
	}
	return k;
}

/* Encrypt a response's pieces for c. While the socket takes all that is
 * written at once (nothing queued before it: a loopback or an idle
 * link), the records go out TLS_STREAM_BYTES at a time from one buffer
 * with uv_try_write, so the kernel copies the ciphertext while it is
 * still in the CPU's cache rather than after a response-sized buffer of
 * it went to memory and back (one pass over memory less per byte of a
 * catch-up). From the first write the socket does not take whole, the
 * rest is encrypted behind what is left, for the caller to queue
 * (tls_conn_take_output). Returns 0, 1 when the socket failed (the peer
 * has gone), or a negative code from TLS. */
static int tls_send_pieces(struct conn *c, const uv_buf_t *bufs, size_t n)
{
	uv_stream_t *st = (uv_stream_t *)&c->tcp;
	bool stream = uv_stream_get_write_queue_size(st) == 0;
	size_t i = 0, at = 0; /* the next byte: piece i, offset at */
	while (stream && i < n) {
		uv_buf_t chunk[TLS_STREAM_PIECES];
		size_t k = 0, bytes = 0;
		while (i < n && k < TLS_STREAM_PIECES && bytes < TLS_STREAM_BYTES) {
			size_t take = bufs[i].len - at;
			if (take > TLS_STREAM_BYTES - bytes)
				take = TLS_STREAM_BYTES - bytes;
			chunk[k++] = uv_buf_init(bufs[i].base + at, (unsigned)take);
			bytes += take;
			at += take;
			if (at == bufs[i].len) {
				i++;
				at = 0;
			}
		}
		int rc = tls_conn_write(c->tls, chunk, k);
		if (rc != 0)
			return rc;
		size_t len;
		const uint8_t *out = tls_conn_output(c->tls, &len);
		uv_buf_t b = uv_buf_init((char *)out, (unsigned)len);
		int sent = len ? uv_try_write(st, &b, 1) : 0;
		if (sent < 0 && sent != UV_EAGAIN)
			return 1;
		sent = sent < 0 ? 0 : sent;
		stream = (size_t)sent == len;
		tls_conn_output_sent(c->tls, (size_t)sent, i < n);
	}
	if (i == n)
		return 0;
	if (at == 0) /* whole pieces left: small ones still share records */
		return tls_conn_write(c->tls, bufs + i, n - i);
	uv_buf_t first = uv_buf_init(bufs[i].base + at, (unsigned)(bufs[i].len - at));
	int rc = tls_conn_write(c->tls, &first, 1);
	return rc ? rc : tls_conn_write(c->tls, bufs + i + 1, n - i - 1);
}

/* Write r's response: its buffer, with the records it left out (gaps)
 * in their places, as one write of several pieces. The buffers move to
 * the write request and are released when it completes; on any failure
 * the connection closes (and request_free releases what did not move). */
static void conn_write(struct conn *c, struct request *r)
{
	size_t n = r->gaps.n;
	size_t total = r->resp.len - 4 + r->gaps.bytes;
	if (total > INT32_MAX) {
		log_error("%s: response of %zu bytes; closing", c->peer, total);
		conn_close(c);
		return;
	}
	kbuf_patch_i32(&r->resp, 0, (int32_t)total);
	struct write_req *wr = malloc(sizeof *wr);
	uv_buf_t one, *bufs = &one;
	if (n && (n > (SIZE_MAX / sizeof *bufs - 1) / 2 || !(bufs = malloc((2 * n + 1) * sizeof *bufs))))
		bufs = NULL;
	if (!wr || !bufs) {
		free(wr);
		conn_close(c);
		return;
	}
	size_t nbufs = response_pieces(r->resp.data, r->resp.len, r->gaps.v, n, bufs);
	*wr = (struct write_req){ .conn = c, .data = r->resp.data, .cap = r->resp.cap,
				  .release = r->release, .release_arg = r->release_arg };
	/* The buffer and the release hook moved to wr. */
	kbuf_init(&r->resp);
	r->release = NULL;
	r->release_arg = NULL;
	if (c->tls) {
		/* The pieces become TLS records (tls_send_pieces); what the
		 * socket did not take at once is in one buffer, which replaces
		 * the response's in wr; the release hook still waits for the
		 * write, as on a plaintext connection. */
		size_t len = 0;
		int rc = tls_send_pieces(c, bufs, nbufs);
		kbuf_release(wr->data, wr->cap); /* the first pieces were in it */
		wr->data = NULL;
		wr->cap = 0;
		if (rc == 0)
			len = tls_conn_take_output(c->tls, &wr->data, &wr->cap);
		if (bufs != &one)
			free(bufs);
		bufs = &one;
		if (rc != 0) {
			if (rc < 0)
				log_warn("%s: TLS write: %s; closing", c->peer, sl_strerror(rc));
			write_req_free(wr);
			conn_close(c);
			return;
		}
		if (len == 0) {
			write_req_free(wr); /* all of it is in the socket */
			return;
		}
		one = uv_buf_init((char *)wr->data, (unsigned)len);
		nbufs = 1;
	}
	c->refs++;
	/* libuv copies the buffer list (any length: it writes IOV_MAX pieces
	 * per writev and goes on with the rest); the bytes stay where they
	 * are until write_done. */
	int rc = uv_write(&wr->w, (uv_stream_t *)&c->tcp, bufs, (unsigned)nbufs, write_done);
	if (bufs != &one)
		free(bufs);
	if (rc < 0) {
		c->refs--;
		write_req_free(wr);
		conn_close(c);
	}
}

static void shutdown_done(uv_shutdown_t *sh, int status)
{
	struct conn *c = sh->data;
	(void)status;
	conn_close(c);
	conn_unref(c);
}

/* Close c once what is queued for writing has gone out (a response that
 * ends the connection): read and write nothing more, shut the socket's
 * sending side down after the writes, then close. */
static void conn_close_after_writes(struct conn *c)
{
	if (c->closing || c->write_closed)
		return;
	c->write_closed = true;
	c->close_pending = true;
	conn_update_reading(c);
	/* TLS: close_notify after the last response, before the FIN */
	if (c->tls && tls_conn_close_notify(c->tls) == 0)
		tls_send_output(c);
	c->shutdown.data = c;
	c->refs++;
	if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, shutdown_done) != 0) {
		c->refs--;
		conn_close(c);
	}
}

/* Send (or drop) finished requests from the head of the queue. */
static void conn_flush(struct conn *c)
{
	c->refs++;
	while (c->head && c->head->end != REQUEST_RUNNING) {
		struct request *r = c->head;
		c->head = r->next;
		if (!c->head)
			c->tail = NULL;
		SL_ASSERT(c->inflight > 0 && c->inflight_bytes >= r->frame_len);
		c->inflight--;
		c->inflight_bytes -= r->frame_len;
		bool responded = r->end == REQUEST_RESPONDED || r->end == REQUEST_RESPONDED_CLOSE;
		if (!c->closing && !c->write_closed && responded && r->resp.len >= 4) {
			if (r->resp.oom) {
				log_error("%s: out of memory building a response; closing", c->peer);
				conn_close(c);
			} else {
				conn_write(c, r);
			}
		}
		if (r->end == REQUEST_RESPONDED_CLOSE)
			conn_close_after_writes(c);
		bool close_after = r->end == REQUEST_CLOSE_AFTER;
		request_free(r);
		if (close_after && !c->closing) {
			log_debug("%s: closing after a failed acks=0 produce", c->peer);
			conn_close(c);
		}
		conn_unref(c);
	}
	if (!c->closing)
		conn_update_reading(c);
	conn_unref(c);
}

/* Every way a request ends passes here: exactly once per request. */
static void request_end(struct request *req, enum request_end how)
{
	SL_ASSERT(req->end == REQUEST_RUNNING, "%s: request api %d v%d correlation id %d ended twice"
		  " (%d, then %d)", req->conn->peer, req->api_key, req->api_version,
		  req->correlation_id, req->end, how);
	req->end = how;
	metrics_request_end(req->api_key, req->api_version, req->received_ns);
}

void request_begin_response(struct request *req, int header_version)
{
	SL_ASSERT(req->end == REQUEST_RUNNING);
	req->resp.len = 0;
	kbuf_put_i32(&req->resp, 0); /* size, patched when sent */
	proto_resp_header_encode(&req->resp, req->correlation_id, header_version);
}

void request_respond(struct request *req)
{
	request_end(req, REQUEST_RESPONDED);
	conn_flush(req->conn);
}

void request_respond_close(struct request *req)
{
	request_end(req, REQUEST_RESPONDED_CLOSE);
	conn_flush(req->conn);
}

void request_begin_raw_response(struct request *req)
{
	SL_ASSERT(req->end == REQUEST_RUNNING);
	req->resp.len = 0;
	kbuf_put_i32(&req->resp, 0); /* size, patched when sent */
}

void request_respond_pieces(struct request *req, struct kmsg_gaps *gaps,
			    void (*release)(void *), void *arg)
{
	req->gaps = *gaps;
	*gaps = (struct kmsg_gaps){ 0 };
	req->release = release;
	req->release_arg = arg;
	request_respond(req);
}

void request_no_reply(struct request *req)
{
	request_end(req, REQUEST_NO_REPLY);
	conn_flush(req->conn);
}

void request_fail_close(struct request *req)
{
	struct conn *c = req->conn;
	request_end(req, REQUEST_FAIL_CLOSE);
	/* Earlier responses still go out; then the connection closes. */
	c->refs++;
	conn_flush(c);
	if (!c->closing)
		conn_close(c);
	conn_unref(c);
}

void request_close_after(struct request *req)
{
	request_end(req, REQUEST_CLOSE_AFTER);
	req->conn->close_pending = true; /* nothing after it runs (as Kafka) */
	conn_update_reading(req->conn);
	conn_flush(req->conn);
}

bool request_conn_open(const struct request *req)
{
	return !req->conn->closing;
}

const char *request_peer(const struct request *req)
{
	return req->conn->peer;
}

const char *request_host(const struct request *req)
{
	return req->conn->host;
}

size_t request_listener(const struct request *req)
{
	return req->conn->listener;
}

const char *request_principal(const struct request *req)
{
	const struct conn *c = req->conn;
	if (c->principal)
		return c->principal;
	return c->tls && !c->sasl ? tls_conn_principal(c->tls) : "User:ANONYMOUS";
}

struct sasl_session *request_sasl(struct request *req)
{
	struct conn *c = req->conn;
	if (!c->sasl || c->authenticated)
		return NULL;
	if (!c->sasl_session) {
		c->sasl_session = malloc(sizeof *c->sasl_session);
		if (!c->sasl_session)
			return NULL;
		sasl_session_init(c->sasl_session);
	}
	return c->sasl_session;
}

bool request_authenticated(const struct request *req)
{
	return !req->conn->sasl || req->conn->authenticated;
}

static void conn_sasl_free(struct conn *c)
{
	if (c->sasl_session) {
		sasl_session_clear(c->sasl_session);
		free(c->sasl_session);
		c->sasl_session = NULL;
	}
}

int request_set_authenticated(struct request *req, const char *user)
{
	struct conn *c = req->conn;
	size_t n = strlen(user) + sizeof "User:";
	char *p = malloc(n);
	if (!p)
		return SL_ENOMEM;
	snprintf(p, n, "User:%s", user);
	free(c->principal);
	c->principal = p;
	c->authenticated = true;
	conn_sasl_free(c);
	return 0;
}

static void helper_closed(uv_handle_t *h);

/* The server goes once it is closing and its listener, helper handles
 * and connections are all gone; the sweep timer closes after the last
 * connection (it bounds their shutdown). */
static void server_maybe_free(struct server *s)
{
	if (!s->closing || s->conns || s->listeners_open > 0)
		return;
	if (s->sweep_open) {
		s->sweep_open = false;
		uv_close((uv_handle_t *)&s->sweep, helper_closed);
		return; /* helper_closed comes back here */
	}
	if (s->handles_open == 0) {
		tls_ctx_unref(s->tls);
		free(s->tls_scratch);
		free(s);
	}
}

static void conn_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	conn_unref(c);
}

static void conn_unref(struct conn *c)
{
	SL_ASSERT(c->refs > 0);
	if (--c->refs > 0)
		return;
	struct server *s = c->server;
	if (c->prev) c->prev->next = c->next; else s->conns = c->next;
	if (c->next) c->next->prev = c->prev;
	s->conn_count--;
	rbuf_drop(c);
	tls_conn_free(c->tls);
	conn_sasl_free(c);
	free(c->principal);
	if (c->big)
		budget_release(s, c->big_len);
	kbuf_release(c->big, c->big_cap);
	free(c);
	server_maybe_free(s);
}

/* Every big frame that received nothing for SL_FRAME_STALL_MS: its
 * connection is closed, so a client that announces a large request and
 * stops sending cannot hold the queued-bytes budget. */
static void sweep_fired(uv_timer_t *t)
{
	struct server *s = t->data;
	uint64_t now = uv_now(s->loop);
	if (s->paused)
		return; /* the agent stopped reading, not the clients */
	for (struct conn *c = s->conns; c; c = c->next) {
		if (c->tls && !c->closing && !tls_conn_ready(c->tls) &&
		    now - c->accepted_ms > s->tls_handshake_ms) {
			log_warn("%s: TLS handshake not done after %llu ms; closing", c->peer,
				 (unsigned long long)s->tls_handshake_ms);
			conn_close(c);
			continue;
		}
		if (c->sasl && !c->authenticated && !c->closing &&
		    now - c->accepted_ms > s->sasl_login_ms) {
			log_warn("%s: SASL login not done after %llu ms; closing", c->peer,
				 (unsigned long long)s->sasl_login_ms);
			conn_close(c);
			continue;
		}
		/* A shared read buffer kept across frames (it had room) goes
		 * back once the connection has been idle a while. */
		if (c->rshared && c->rbuf.len == c->rstart && now - c->read_ms > SHARED_IDLE_MS)
			rbuf_drop(c);
		if (c->big && c->reading && !c->closing && now - c->big_progress_ms > SL_FRAME_STALL_MS) {
			log_warn("%s: request of %zu bytes stalled at %zu for %d s; closing", c->peer,
				 c->big_len, c->big_have, SL_FRAME_STALL_MS / 1000);
			conn_close(c);
		}
	}
}

static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	log_debug("%s: closing connection", c->peer);
	uv_read_stop((uv_stream_t *)&c->tcp);
	c->reading = false;
	/* Requests still running keep refs; their responses are dropped. */
	uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

/* Where c's next bytes (plaintext) go: the big frame's buffer, or
 * rbuf sized for the frame being read. */
static void plain_buffer(struct conn *c, uv_buf_t *buf)
{
	if (c->big) {
		buf->base = (char *)c->big + c->big_have;
		buf->len = c->big_len - c->big_have;
		return;
	}
	size_t want = READ_CHUNK_BYTES;
	size_t have = c->rbuf.len - c->rstart;
	size_t frame_rest = 0; /* what the frame being read still lacks, if known */
	if (have < 4 && c->frames_big) {
		want = 4 - have;
	} else if (have >= 4) {
		int32_t size = (int32_t)be32_load(c->rbuf.data + c->rstart);
		if (size > 0 && size <= SL_REQUEST_BYTES_MAX && (size_t)size + 4 > have) {
			frame_rest = (size_t)size + 4 - have;
			if (frame_rest > want)
				want = frame_rest;
		}
	}
	if (c->rshared && c->rbuf.cap - c->rbuf.len < want) {
		/* Read into what is left while the frame fits there (or its
		 * size is not known and a fair amount is left), else move on
		 * to a new buffer. */
		size_t room = c->rbuf.cap - c->rbuf.len;
		if (frame_rest ? frame_rest <= room : room >= SHARED_READ_MIN_BYTES)
			want = room;
		else if (!rbuf_switch(c, want))
			want = 0;
	}
	if (want && !c->rbuf.data && c->viewed) {
		size_t cap = want > SHARED_CHUNK_BYTES ? want : SHARED_CHUNK_BYTES;
		uint8_t *fresh = kbuf_alloc(&cap);
		if (fresh)
			c->rbuf = (struct kbuf){ .data = fresh, .cap = cap };
	}
	uint8_t *before = c->rbuf.data;
	uint8_t *p = want ? kbuf_reserve(&c->rbuf, want) : NULL;
	if (!p) {
		buf->base = NULL;
		buf->len = 0;
		return;
	}
	/* Views point into a shared buffer: it must never move. */
	SL_ASSERT(!c->rshared || p == before + c->rbuf.len);
	buf->base = (char *)p;
	buf->len = want;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	plain_buffer(h->data, buf);
}

/* A TLS connection reads ciphertext into the server's scratch buffer;
 * tls_pump decrypts it into plain_buffer's places. */
static void tls_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	struct conn *c = h->data;
	*buf = uv_buf_init((char *)c->server->tls_scratch, TLS_READ_BYTES);
}

/* Take n bytes of the server's queued-request budget for c's next frame;
 * false (and c waits) when they do not fit beside what is queued. */
static bool budget_take(struct conn *c, size_t n)
{
	struct server *s = c->server;
	/* A small request from a connection with nothing queued always
	 * passes, so Metadata, ApiVersions and heartbeats keep moving while
	 * large frames fill the budget. */
	bool small_first = n <= READ_CHUNK_BYTES && c->inflight == 0;
	/* Like Kafka's memory pool, not strict: a frame is taken while any
	 * room is left (overshooting by at most one frame), so a large frame
	 * never waits for a moment with nothing queued, which steady small
	 * traffic (long polls) would never leave. */
	if (s->queued_bytes >= s->queued_bytes_max && !small_first) {
		if (!c->wants_budget)
			log_debug("%s: %zu queued request bytes; waiting", c->peer, s->queued_bytes);
		c->wants_budget = true;
		s->starved = true;
		return false;
	}
	s->queued_bytes += n;
	return true;
}

/* Answers freed n bytes: once under the budget, connections that waited
 * try their next frame again. */
static void budget_release(struct server *s, size_t n)
{
	SL_ASSERT(s->queued_bytes >= n, "releasing %zu of %zu queued bytes", n, s->queued_bytes);
	s->queued_bytes -= n;
	if (s->starved && s->queued_bytes < s->queued_bytes_max && !s->closing &&
	    !uv_is_active((uv_handle_t *)&s->wake))
		uv_idle_start(&s->wake, budget_wake);
}

/* From the top of the loop (an idle handle): connections that waited for
 * budget try their next frame again. Doing this inside budget_release
 * would run their handlers from within another request's completion and
 * recurse once per waiting connection. */
static void budget_wake(uv_idle_t *h)
{
	struct server *s = h->data;
	uv_idle_stop(h);
	s->starved = false;
	struct conn *next;
	for (struct conn *c = s->conns; c; c = next) {
		if (!c->wants_budget) {
			next = c->next;
			continue;
		}
		c->refs++; /* its handlers may close it */
		c->wants_budget = false;
		conn_update_reading(c);
		next = c->next;
		conn_unref(c);
	}
}

/* Queue a request for frame and hand it to the handler: frame owned
 * (kbuf_alloc'd, cap bytes), or, with shared, a view of shared's buffer
 * (the request takes a reference). Frame buffers come from the loop's
 * pool: a fresh mapping for every large produce request page-faulted on
 * each page. */
static void dispatch_owned(struct conn *c, uint8_t *frame, size_t len, size_t cap,
			   struct kshared *shared)
{
	struct request *r = calloc(1, sizeof *r);
	if (!r) {
		budget_release(c->server, len);
		if (!shared)
			kbuf_release(frame, cap);
		conn_close(c);
		return;
	}
	uint8_t *copy = frame;
	r->conn = c;
	r->ctx = c->server->ctx;
	r->frame = copy;
	r->frame_len = len;
	r->frame_cap = cap;
	if (shared) {
		kshared_ref(shared);
		r->frame_shared = shared;
	}
	r->received_ns = uv_hrtime();
	r->api_key = -1; /* until the header is read (metrics: "unknown") */
	arena_init(&r->arena, SL_ARENA_BYTES_MAX);
	kbuf_init(&r->resp);
	kreader_init(&r->body, copy, len);
	if (c->tail) c->tail->next = r; else c->head = r;
	c->tail = r;
	c->inflight++;
	c->inflight_bytes += len;
	c->refs++;
	c->server->handle(r);
}

struct kshared *request_frame_share(struct request *r)
{
	if (!r->frame_shared)
		r->frame_shared = kshared_new(r->frame, r->frame_cap);
	return r->frame_shared;
}

/* A frame read into rbuf: a produce request goes as a view of rbuf (its
 * batches then reach the store and the read cache with no copy at all),
 * any other is copied out (small, and a long poll must not keep a read
 * buffer alive for its wait), as produce frames are while the views'
 * waste is over SL_READ_WASTE_BYTES_MAX. */
static void dispatch_frame(struct conn *c, const uint8_t *frame, size_t len)
{
	if (len >= 2 && be16_load(frame) == KMSG_PRODUCE_KEY &&
	    kshared_waste_bytes() < SL_READ_WASTE_BYTES_MAX &&
	    (c->rshared || (c->rshared = kshared_new(c->rbuf.data, c->rbuf.cap)))) {
		c->rviewed += len;
		c->viewed = true;
		dispatch_owned(c, (uint8_t *)frame, len, 0, c->rshared);
		return;
	}
	size_t cap = len;
	uint8_t *copy = kbuf_alloc(&cap);
	if (!copy) {
		budget_release(c->server, len);
		conn_close(c);
		return;
	}
	memcpy(copy, frame, len);
	dispatch_owned(c, copy, len, cap, NULL);
}

static void conn_received(struct conn *c, size_t nread);

/* A read ended the connection (EOF or an error): close it. */
static bool read_ended(struct conn *c, ssize_t nread)
{
	if (nread >= 0)
		return false;
	if (nread != UV_EOF)
		log_debug("%s: read: %s", c->peer, uv_strerror((int)nread));
	conn_close(c);
	return true;
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = stream->data;
	if (read_ended(c, nread))
		return;
	if (buf->base == NULL && nread == 0) {
		log_warn("%s: out of memory for reading; closing", c->peer);
		conn_close(c);
		return;
	}
	conn_received(c, (size_t)nread);
}

/* nread more bytes of plaintext are where plain_buffer said: frame them
 * and hand complete frames to the handler. */
static void conn_received(struct conn *c, size_t nread)
{
	if (c->big) {
		c->big_have += (size_t)nread;
		c->big_progress_ms = uv_now(c->server->loop);
		if (c->big_have == c->big_len) {
			uint8_t *frame = c->big;
			c->big = NULL;
			c->frames_big = true;
			c->refs++;
			dispatch_owned(c, frame, c->big_len, c->big_cap, NULL);
			conn_update_reading(c);
			conn_unref(c);
		}
		return;
	}
	c->rbuf.len += nread;
	if (nread)
		c->read_ms = uv_now(c->server->loop);
	c->refs++; /* a handler may close the connection under us */
	while (!c->closing && c->rbuf.len - c->rstart >= 4) {
		int32_t size = (int32_t)be32_load(c->rbuf.data + c->rstart);
		/* Before SASL is done anyone may be sending: a small bound
		 * (Kafka's sasl.server.max.receive.size). */
		int32_t size_max = c->sasl && !c->authenticated ? SL_SASL_RECEIVE_BYTES_MAX
								 : SL_REQUEST_BYTES_MAX;
		if (size < 0 || size > size_max) {
			log_warn("%s: request size %d out of range; closing", c->peer, size);
			conn_close(c);
			break;
		}
		size_t have = c->rbuf.len - c->rstart - 4;
		if ((have >= (size_t)size || (size_t)size > READ_CHUNK_BYTES) &&
		    !budget_take(c, (size_t)size)) {
			conn_update_reading(c); /* stops until answers free room */
			break;
		}
		if (have < (size_t)size) {
			if ((size_t)size > READ_CHUNK_BYTES) {
				/* Read the rest straight into the frame's buffer. */
				c->big_cap = (size_t)size;
				c->big = kbuf_alloc(&c->big_cap);
				if (!c->big) {
					budget_release(c->server, (size_t)size);
					conn_close(c);
					break;
				}
				memcpy(c->big, c->rbuf.data + c->rstart + 4, have);
				c->big_len = (size_t)size;
				c->big_have = have;
				c->big_progress_ms = uv_now(c->server->loop);
				c->rstart = c->rbuf.len;
			}
			break;
		}
		const uint8_t *frame = c->rbuf.data + c->rstart + 4;
		c->rstart += 4 + (size_t)size;
		c->frames_big = false;
		dispatch_frame(c, frame, (size_t)size);
		if (c->inflight >= SL_CONN_INFLIGHT_MAX || c->inflight_bytes >= SL_CONN_PENDING_BYTES_MAX)
			break;
	}
	/* Compact: keep only the unframed tail (a shared buffer stays as
	 * it is: views point into it). */
	if (!c->closing) {
		size_t rest = c->rbuf.len - c->rstart;
		if (rest == 0 && (!c->rshared || c->rbuf.cap - c->rbuf.len < SHARED_READ_MIN_BYTES)) {
			/* Idle connections hold no read buffer (but a shared one
			 * with room: the next frames go on filling it, for a
			 * while: sweep_fired). */
			rbuf_drop(c);
		} else if (c->rstart > 0 && !c->rshared) {
			memmove(c->rbuf.data, c->rbuf.data + c->rstart, rest);
			c->rbuf.len = rest;
			c->rstart = 0;
		}
		conn_update_reading(c);
	}
	conn_unref(c);
}

static void conn_process_buffered(struct conn *c);
static void tls_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void conn_update_reading(struct conn *c)
{
	if (c->closing)
		return;
	bool want = !c->server->paused && !c->wants_budget && !c->close_pending &&
		    c->inflight < SL_CONN_INFLIGHT_MAX &&
		    c->inflight_bytes < SL_CONN_PENDING_BYTES_MAX &&
		    uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < SL_CONN_PENDING_BYTES_MAX;
	if (want && !c->reading) {
		c->reading = true;
		if (c->big) /* a stall counts from when we read again */
			c->big_progress_ms = uv_now(c->server->loop);
		if (c->tls)
			uv_read_start((uv_stream_t *)&c->tcp, tls_alloc_cb, tls_read_cb);
		else
			uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
		conn_process_buffered(c);
	} else if (!want && c->reading) {
		c->reading = false;
		uv_read_stop((uv_stream_t *)&c->tcp);
	}
}

static void tls_pump(struct conn *c);

/* Frames that arrived while reading was paused (and, on a TLS
 * connection, records read but not decrypted yet). */
static void conn_process_buffered(struct conn *c)
{
	if (!c->big && c->rbuf.len - c->rstart >= 4)
		conn_received(c, 0);
	if (c->tls && c->reading && !c->closing && tls_conn_has_input(c->tls))
		tls_pump(c);
}

/* Hand the ciphertext TLS produced outside a response (handshake
 * records, alerts) to libuv. */
static void tls_send_output(struct conn *c)
{
	uint8_t *data;
	size_t cap;
	size_t len = tls_conn_take_output(c->tls, &data, &cap);
	if (len == 0 || c->closing) {
		if (len)
			kbuf_release(data, cap);
		return;
	}
	struct write_req *wr = malloc(sizeof *wr);
	if (!wr) {
		kbuf_release(data, cap);
		conn_close(c);
		return;
	}
	*wr = (struct write_req){ .conn = c, .data = data, .cap = cap };
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
	c->refs++;
	if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, write_done) < 0) {
		c->refs--;
		write_req_free(wr);
		conn_close(c);
	}
}

static void tls_log_ready(struct conn *c)
{
	if (log_level_current < LOG_DEBUG)
		return;
	char how[96];
	tls_conn_describe(c->tls, how, sizeof how);
	log_debug("%s: TLS handshake done (%s), principal %s", c->peer, how,
		  tls_conn_principal(c->tls));
}

/* Decrypt what TLS holds into the frame buffers, as long as the
 * connection reads (backpressure stops it as on plaintext), then send
 * what the handshake wrote. */
static void tls_pump(struct conn *c)
{
	bool was_ready = tls_conn_ready(c->tls);
	c->refs++;
	while (!c->closing && c->reading) {
		uv_buf_t b;
		plain_buffer(c, &b);
		if (!b.base) {
			log_warn("%s: out of memory for reading; closing", c->peer);
			conn_close(c);
			break;
		}
		long n = tls_conn_read(c->tls, (uint8_t *)b.base, b.len);
		if (!was_ready && tls_conn_ready(c->tls)) {
			/* Before the first request runs: its answer may reach
			 * the client before the end of this pump. */
			was_ready = true;
			tls_log_ready(c);
		}
		if (n == 0)
			break;
		if (n == SL_EIO) {
			/* The client's close_notify: answer ours, then close. */
			log_debug("%s: TLS: closed by the client", c->peer);
			conn_close_after_writes(c);
			break;
		}
		if (n < 0) {
			log_debug("%s: TLS: %s; closing", c->peer, sl_strerror((int)n));
			conn_close(c);
			break;
		}
		conn_received(c, (size_t)n);
	}
	if (!c->closing) {
		if (c->rbuf.len == c->rstart && !c->rshared)
			rbuf_drop(c); /* idle connections hold no read buffer */
		tls_send_output(c);
	}
	conn_unref(c);
}

static void tls_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = stream->data;
	if (read_ended(c, nread) || nread == 0)
		return;
	c->refs++;
	tls_conn_input(c->tls, (const uint8_t *)buf->base, (size_t)nread);
	tls_pump(c);
	if (tls_conn_input_done(c->tls) != 0 && !c->closing) {
		log_warn("%s: out of memory for TLS input; closing", c->peer);
		conn_close(c);
	}
	conn_unref(c);
}

static void on_connection(uv_stream_t *listener, int status)
{
	struct listener *l = listener->data;
	struct server *s = l->server;
	if (status < 0) {
		log_warn("accept: %s", uv_strerror(status));
		return;
	}
	struct conn *c = calloc(1, sizeof *c);
	if (!c)
		return;
	uv_tcp_init(s->loop, &c->tcp);
	c->tcp.data = c;
	c->server = s;
	c->listener = l->index;
	c->sasl = l->sasl;
	c->refs = 1;
	kbuf_init(&c->rbuf);
	if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
		c->closing = true;
		c->next = s->conns;
		if (s->conns) s->conns->prev = c;
		s->conns = c;
		s->conn_count++;
		uv_close((uv_handle_t *)&c->tcp, conn_closed);
		return;
	}
	c->next = s->conns;
	if (s->conns) s->conns->prev = c;
	s->conns = c;
	s->conn_count++;
	struct sockaddr_storage ss;
	int sl = sizeof ss;
	strcpy(c->peer, "?");
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
		char *ip = c->host;
		if (ss.ss_family == AF_INET) {
			uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof c->host);
			snprintf(c->peer, sizeof c->peer, "%s:%d", ip,
				 ntohs(((struct sockaddr_in *)&ss)->sin_port));
		} else {
			uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof c->host);
			snprintf(c->peer, sizeof c->peer, "[%s]:%d", ip,
				 ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
		}
	}
	if (s->conn_count > s->connections_max) {
		log_warn("%s: too many connections (%zu); closing", c->peer, s->connections_max);
		conn_close(c);
		return;
	}
	if (l->tls && tls_conn_new(s->tls, &c->tls) != 0) {
		log_warn("%s: out of memory for TLS; closing", c->peer);
		conn_close(c);
		return;
	}
	c->accepted_ms = uv_now(s->loop);
	metrics.connections_accepted++;
	uv_tcp_nodelay(&c->tcp, 1);
	log_debug("%s: connected", c->peer);
	conn_update_reading(c);
}

/* Resolve host (an address or a name: the first address getaddrinfo
 * gives) and port into addr. */
int server_resolve(const char *host, int port, struct sockaddr_storage *addr)
{
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)addr) == 0 ||
	    uv_ip6_addr(host, port, (struct sockaddr_in6 *)addr) == 0)
		return 0;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE }, *res;
	int rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0) {
		log_error("listen address %s: %s", host, gai_strerror(rc));
		return SL_EINVAL;
	}
	memcpy(addr, res->ai_addr, res->ai_addrlen);
	if (addr->ss_family == AF_INET)
		((struct sockaddr_in *)addr)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)addr)->sin6_port = htons((uint16_t)port);
	freeaddrinfo(res);
	return 0;
}

static void listener_closed(uv_handle_t *h)
{
	struct listener *l = h->data;
	l->open = false;
	l->server->listeners_open--;
	server_maybe_free(l->server);
}

/* A start that failed: the listeners opened so far close, and s is freed
 * by the last close callback (on the caller's next loop turn). */
static void start_failed(struct server *s)
{
	s->closing = true;
	bool any = false;
	for (size_t k = 0; k < s->listener_count; k++) {
		if (s->listeners[k].open) {
			uv_close((uv_handle_t *)&s->listeners[k].tcp, listener_closed);
			any = true;
		}
	}
	if (!any)
		server_maybe_free(s);
}

int server_start(uv_loop_t *loop, const struct server_config *cfg,
		 server_handle_fn handle, void *ctx, struct server **out)
{
	if (cfg->listener_count == 0 || cfg->listener_count > SL_LISTENERS_MAX)
		return SL_EINVAL;
	struct server *s = calloc(1, sizeof *s);
	if (!s)
		return SL_ENOMEM;
	s->loop = loop;
	s->handle = handle;
	s->ctx = ctx;
	s->connections_max = cfg->connections_max ? cfg->connections_max : SL_CONNECTIONS_MAX;
	s->queued_bytes_max = cfg->queued_bytes_max ? cfg->queued_bytes_max : SL_QUEUED_REQUEST_BYTES_MAX;
	s->tls_handshake_ms = cfg->tls_handshake_ms ? cfg->tls_handshake_ms : SL_TLS_HANDSHAKE_MS;
	s->sasl_login_ms = cfg->sasl_login_ms ? cfg->sasl_login_ms : SL_SASL_LOGIN_MS;
	uint64_t sweep_ms = SL_FRAME_STALL_MS / 4;
	for (size_t i = 0; i < cfg->listener_count; i++) {
		if (cfg->listeners[i].sasl && s->sasl_login_ms / 4 < sweep_ms)
			sweep_ms = s->sasl_login_ms / 4 ? s->sasl_login_ms / 4 : 1;
		if (!cfg->listeners[i].tls)
			continue;
		if (!cfg->tls) {
			free(s);
			return SL_EINVAL;
		}
		if (!s->tls_scratch && !(s->tls_scratch = malloc(TLS_READ_BYTES))) {
			free(s);
			return SL_ENOMEM;
		}
		s->tls = cfg->tls;
		if (s->tls_handshake_ms / 4 < sweep_ms)
			sweep_ms = s->tls_handshake_ms / 4 ? s->tls_handshake_ms / 4 : 1;
	}
	if (s->tls)
		tls_ctx_ref(s->tls);
	for (size_t i = 0; i < cfg->listener_count; i++) {
		const struct server_listener *sl = &cfg->listeners[i];
		struct listener *l = &s->listeners[i];
		struct sockaddr_storage addr;
		if (server_resolve(sl->host, sl->port, &addr) != 0) {
			start_failed(s);
			return SL_EINVAL;
		}
		l->server = s;
		l->index = (uint8_t)i;
		l->tls = sl->tls;
		l->sasl = sl->sasl;
		uv_tcp_init(loop, &l->tcp);
		l->tcp.data = l;
		l->open = true;
		s->listeners_open++;
		s->listener_count++;
		int rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&addr, 0);
		if (rc == 0)
			rc = uv_listen((uv_stream_t *)&l->tcp, 1024, on_connection);
		if (rc != 0) {
			log_error("cannot listen on %s:%d: %s", sl->host, sl->port, uv_strerror(rc));
			start_failed(s);
			return SL_EIO;
		}
	}
	uv_idle_init(loop, &s->wake);
	s->wake.data = s;
	uv_timer_init(loop, &s->sweep);
	s->sweep.data = s;
	uv_timer_start(&s->sweep, sweep_fired, sweep_ms, sweep_ms);
	uv_unref((uv_handle_t *)&s->sweep);
	s->handles_open = 2;
	s->sweep_open = true;
	*out = s;
	return 0;
}

static void helper_closed(uv_handle_t *h)
{
	struct server *s = h->data;
	s->handles_open--;
	server_maybe_free(s);
}

void server_set_tls(struct server *s, struct tls_ctx *ctx)
{
	tls_ctx_ref(ctx);
	tls_ctx_unref(s->tls);
	s->tls = ctx;
}

void server_stop_listening(struct server *s)
{
	for (size_t i = 0; i < s->listener_count; i++) {
		struct listener *l = &s->listeners[i];
		if (l->open && !uv_is_closing((uv_handle_t *)&l->tcp))
			uv_close((uv_handle_t *)&l->tcp, listener_closed);
	}
}

/* Connections still open SL_SHUTDOWN_CLOSE_MS after server_close: their
 * peers do not read what is queued for them. */
static void shutdown_overdue(uv_timer_t *t)
{
	struct server *s = t->data;
	struct conn *next;
	for (struct conn *c = s->conns; c; c = next) {
		next = c->next;
		if (!c->closing)
			log_debug("%s: not closed after %d ms of shutdown; closing", c->peer,
				  SL_SHUTDOWN_CLOSE_MS);
		conn_close(c);
	}
}

void server_close(struct server *s)
{
	s->closing = true;
	/* Each connection ends as on a last response: what is queued goes
	 * out, then a TLS close_notify, then the FIN (Kafka's shutdown closes
	 * its SSL channels with a close_notify too; without it a client sees
	 * a truncation, not an end). Responses of requests still running are
	 * dropped. The sweep timer, now unreferenced, bounds the wait. */
	struct conn *next;
	for (struct conn *c = s->conns; c; c = next) {
		c->refs++;
		conn_close_after_writes(c);
		next = c->next;
		conn_unref(c);
	}
	uv_close((uv_handle_t *)&s->wake, helper_closed);
	uv_timer_stop(&s->sweep);
	uv_timer_start(&s->sweep, shutdown_overdue, SL_SHUTDOWN_CLOSE_MS, 0);
	server_stop_listening(s);
	server_maybe_free(s); /* no connections: the sweep timer closes now */
}

void server_pause_reads(struct server *s)
{
	if (s->paused)
		return;
	s->paused = true;
	for (struct conn *c = s->conns; c; c = c->next)
		conn_update_reading(c);
}

void server_resume_reads(struct server *s)
{
	if (!s->paused)
		return;
	s->paused = false;
	for (struct conn *c = s->conns; c; c = c->next)
		conn_update_reading(c);
}

size_t server_connection_count(const struct server *s)
{
	return s->conn_count;
}

size_t server_queued_bytes(const struct server *s)
{
	return s->queued_bytes;
}
