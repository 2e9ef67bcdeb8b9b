/* tls.c — OpenSSL on the loop: contexts (certificate, key, client-auth
 * policy; refcounted so a reload leaves live connections alone) and
 * server-side connections driven by memory, never by sockets.
 *
 * Each connection's SSL object talks to one BIO of our own instead of a
 * pair of BIO_s_mem: reads come straight from the buffer the server just
 * read (what is left over is kept, usually nothing), writes append the
 * records to the buffer the server will hand to libuv. Two memory BIOs
 * would copy every byte once more each way and keep their buffers'
 * high-water size on every idle connection. */
#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/sl_assert.h"

/* Tuning: response pieces shorter than this are gathered into one
 * record instead of one record each (a fetch's fields between record
 * runs are a few dozen bytes). */
#define COALESCE_BYTES 4096
/* Format: room per TLS record beyond its plaintext (header, explicit IV,
 * MAC or tag, CBC padding), generously. */
#define RECORD_OVERHEAD_BYTES 512
#define RECORD_PLAINTEXT_BYTES 16384

struct tls_ctx {
	SSL_CTX *ssl_ctx;
	int refs;
	char desc[256];            /* subject and serial of the certificate */
};

struct tls_conn {
	SSL *ssl;
	struct tls_ctx *ctx;
	const uint8_t *in;         /* borrowed ciphertext (tls_conn_input) */
	size_t in_len, in_off;
	uint8_t *rest;             /* owned ciphertext left over from earlier */
	size_t rest_len, rest_off;
	struct kbuf out;           /* ciphertext to send */
	char *principal;           /* NULL: User:ANONYMOUS */
	bool ready;                /* handshake done */
	bool refused;              /* renegotiation attempted */
	bool failed;               /* a fatal error: no SSL_shutdown after it */
	bool shut;                 /* close_notify queued */
};

static BIO_METHOD *conn_bio_method;
static int conn_ex_index = -1;

/* ---- the connection's BIO ---- */

static int bio_read_ex(BIO *b, char *buf, size_t cap, size_t *got)
{
	struct tls_conn *t = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	const uint8_t *src;
	size_t avail;
	if (t->rest_off < t->rest_len) {
		src = t->rest + t->rest_off;
		avail = t->rest_len - t->rest_off;
	} else {
		src = t->in + t->in_off;
		avail = t->in_len - t->in_off;
	}
	if (avail == 0) {
		BIO_set_retry_read(b);
		*got = 0;
		return 0;
	}
	size_t n = avail < cap ? avail : cap;
	memcpy(buf, src, n);
	if (t->rest_off < t->rest_len)
		t->rest_off += n;
	else
		t->in_off += n;
	*got = n;
	return 1;
}

static int bio_write_ex(BIO *b, const char *data, size_t len, size_t *written)
{
	struct tls_conn *t = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	uint8_t *p = kbuf_reserve(&t->out, len);
	if (!p)
		return 0; /* out.oom stays set: tls_conn_write fails */
	memcpy(p, data, len);
	t->out.len += len;
	*written = len;
	return 1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1; /* the server sends what was written after each call */
	default:
		return 0;
	}
}

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

/* ---- contexts ---- */

/* Log OpenSSL's error queue (and empty it: it is per thread, and a stale
 * entry would be blamed on the next connection). */
static void log_ssl_errors(const char *what, const char *file)
{
	unsigned long e;
	char msg[256];
	bool any = false;
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, msg, sizeof msg);
		log_error("%s %s: %s", what, file ? file : "", msg);
		any = true;
	}
	if (!any)
		log_error("%s %s failed", what, file ? file : "");
}

/* Renegotiation (TLS 1.2) ends the connection: OpenSSL refuses it with a
 * warning alert and would go on; a client that tries it is not one of
 * ours. */
static void info_cb(const SSL *ssl, int where, int ret)
{
	struct tls_conn *t = SSL_get_ex_data(ssl, conn_ex_index);
	if (!t)
		return;
	if ((where & SSL_CB_ALERT) && (where & SSL_CB_WRITE) &&
	    (ret & 0xff) == SSL_AD_NO_RENEGOTIATION)
		t->refused = true;
	if ((where & SSL_CB_HANDSHAKE_START) && t->ready && SSL_version(ssl) < TLS1_3_VERSION)
		t->refused = true;
}

static int global_init(void)
{
	if (conn_bio_method)
		return 0;
	conn_ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sluice conn");
	if (conn_ex_index < 0 || !m || !BIO_meth_set_read_ex(m, bio_read_ex) ||
	    !BIO_meth_set_write_ex(m, bio_write_ex) || !BIO_meth_set_ctrl(m, bio_ctrl) ||
	    !BIO_meth_set_create(m, bio_create)) {
		BIO_meth_free(m);
		return SL_ENOMEM;
	}
	conn_bio_method = m; /* kept for the life of the process */
	return 0;
}

int tls_ctx_new(const struct tls_config *cfg, struct tls_ctx **out)
{
	if (global_init() != 0)
		return SL_ENOMEM;
	ERR_clear_error();
	struct tls_ctx *ctx = calloc(1, sizeof *ctx);
	SSL_CTX *c = SSL_CTX_new(TLS_server_method());
	if (!ctx || !c) {
		free(ctx);
		SSL_CTX_free(c);
		return SL_ENOMEM;
	}
	ctx->ssl_ctx = c;
	ctx->refs = 1;
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
				       SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* An idle connection gives its 16 KiB read and write buffers back. */
	SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
	/* Kafka clients do not resume sessions (librdkafka, kafka-python and
	 * kafkajs open each connection afresh): tickets would cost two
	 * encryptions and a write per handshake for nothing. */
	SSL_CTX_set_num_tickets(c, 0);
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_info_callback(c, info_cb);
	if (SSL_CTX_use_certificate_chain_file(c, cfg->cert_file) != 1) {
		log_ssl_errors("TLS certificate", cfg->cert_file);
		goto out_free_ctx;
	}
	if (SSL_CTX_use_PrivateKey_file(c, cfg->key_file, SSL_FILETYPE_PEM) != 1) {
		log_ssl_errors("TLS key", cfg->key_file);
		goto out_free_ctx;
	}
	if (SSL_CTX_check_private_key(c) != 1) {
		log_ssl_errors("TLS key does not match the certificate:", cfg->key_file);
		goto out_free_ctx;
	}
	if (cfg->ca_file && cfg->ca_file[0]) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca_file);
		if (SSL_CTX_load_verify_locations(c, cfg->ca_file, NULL) != 1 || !names) {
			sk_X509_NAME_pop_free(names, X509_NAME_free);
			log_ssl_errors("TLS CA file", cfg->ca_file);
			goto out_free_ctx;
		}
		SSL_CTX_set_client_CA_list(c, names);
	}
	int mode = cfg->client_auth == TLS_CLIENT_AUTH_REQUIRED
			   ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
		   : cfg->client_auth == TLS_CLIENT_AUTH_REQUESTED ? SSL_VERIFY_PEER
								   : SSL_VERIFY_NONE;
	SSL_CTX_set_verify(c, mode, NULL);
	X509 *cert = SSL_CTX_get0_certificate(c);
	char subject[200] = "?";
	X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
	char *serial = NULL;
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	if (bn)
		serial = BN_bn2hex(bn);
	snprintf(ctx->desc, sizeof ctx->desc, "%s serial %s", subject, serial ? serial : "?");
	OPENSSL_free(serial);
	BN_free(bn);
	*out = ctx;
	return 0;

out_free_ctx:
	SSL_CTX_free(c);
	free(ctx);
	return SL_EIO;
}

void tls_ctx_ref(struct tls_ctx *ctx)
{
	ctx->refs++;
}

void tls_ctx_unref(struct tls_ctx *ctx)
{
	if (!ctx)
		return;
	SL_ASSERT(ctx->refs > 0);
	if (--ctx->refs > 0)
		return;
	SSL_CTX_free(ctx->ssl_ctx);
	free(ctx);
}

void tls_ctx_describe(const struct tls_ctx *ctx, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s", ctx->desc);
}

/* ---- connections ---- */

int tls_conn_new(struct tls_ctx *ctx, struct tls_conn **out)
{
	struct tls_conn *t = calloc(1, sizeof *t);
	SSL *ssl = SSL_new(ctx->ssl_ctx);
	BIO *bio = BIO_new(conn_bio_method);
	if (!t || !ssl || !bio) {
		free(t);
		SSL_free(ssl);
		BIO_free(bio);
		ERR_clear_error();
		return SL_ENOMEM;
	}
	BIO_set_data(bio, t);
	SSL_set_bio(ssl, bio, bio); /* owns our one reference, for both directions */
	SSL_set_ex_data(ssl, conn_ex_index, t);
	SSL_set_accept_state(ssl);
	kbuf_init(&t->out);
	t->ssl = ssl;
	t->ctx = ctx;
	tls_ctx_ref(ctx);
	*out = t;
	return 0;
}

void tls_conn_free(struct tls_conn *t)
{
	if (!t)
		return;
	SSL_free(t->ssl);
	tls_ctx_unref(t->ctx);
	kbuf_free(&t->out);
	free(t->rest);
	free(t->principal);
	free(t);
}

void tls_conn_input(struct tls_conn *t, const uint8_t *data, size_t len)
{
	t->in = data;
	t->in_len = len;
	t->in_off = 0;
}

int tls_conn_input_done(struct tls_conn *t)
{
	const uint8_t *left_at = t->in + t->in_off;
	size_t left = t->in_len - t->in_off;
	size_t kept = t->rest_len - t->rest_off;
	t->in = NULL;
	t->in_len = t->in_off = 0;
	if (kept == 0) {
		free(t->rest);
		t->rest = NULL;
		t->rest_len = t->rest_off = 0;
	}
	if (left == 0)
		return 0;
	/* Reading paused mid-buffer (backpressure): keep the rest for when
	 * it resumes (at most one read's worth: the socket is not read
	 * meanwhile). */
	uint8_t *r = malloc(kept + left);
	if (!r)
		return SL_ENOMEM;
	if (kept)
		memcpy(r, t->rest + t->rest_off, kept);
	memcpy(r + kept, left_at, left);
	free(t->rest);
	t->rest = r;
	t->rest_len = kept + left;
	t->rest_off = 0;
	return 0;
}

bool tls_conn_has_input(const struct tls_conn *t)
{
	return t->rest_off < t->rest_len || SSL_has_pending(t->ssl);
}

/* The handshake is done: who the client is. */
static void conn_ready(struct tls_conn *t)
{
	t->ready = true;
	X509 *peer = SSL_get0_peer_certificate(t->ssl);
	if (!peer)
		return;
	X509_NAME *name = X509_get_subject_name(peer);
	int at = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	if (at < 0)
		return;
	unsigned char *cn = NULL;
	int len = ASN1_STRING_to_UTF8(&cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, at)));
	if (len > 0 && (t->principal = malloc((size_t)len + 6))) {
		memcpy(t->principal, "User:", 5);
		memcpy(t->principal + 5, cn, (size_t)len);
		t->principal[5 + len] = 0;
		/* It is logged and compared: no control characters. */
		for (char *p = t->principal; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
	}
	OPENSSL_free(cn);
}

long tls_conn_read(struct tls_conn *t, uint8_t *buf, size_t cap)
{
	ERR_clear_error();
	size_t got = 0;
	int rc = SSL_read_ex(t->ssl, buf, cap, &got);
	if (t->refused)
		return SL_EPROTO;
	if (!t->ready && SSL_is_init_finished(t->ssl))
		conn_ready(t);
	if (rc == 1)
		return (long)got;
	switch (SSL_get_error(t->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		return t->out.oom ? SL_ENOMEM : 0;
	case SSL_ERROR_ZERO_RETURN:
		return SL_EIO;
	default: {
		unsigned long e = ERR_peek_error();
		char msg[200] = "";
		if (e)
			ERR_error_string_n(e, msg, sizeof msg);
		log_debug("TLS: %s", e ? msg : "connection failed");
		ERR_clear_error();
		t->failed = true;
		return t->out.oom ? SL_ENOMEM : SL_EPROTO;
	}
	}
}

static int write_all(struct tls_conn *t, const void *p, size_t len)
{
	if (len == 0)
		return 0;
	size_t written;
	ERR_clear_error();
	if (SSL_write_ex(t->ssl, p, len, &written) != 1 || written != len || t->out.oom) {
		ERR_clear_error();
		t->failed = true;
		return t->out.oom ? SL_ENOMEM : SL_EIO;
	}
	return 0;
}

int tls_conn_write(struct tls_conn *t, const uv_buf_t *bufs, size_t n)
{
	/* Loop thread only: one staging buffer for every connection. */
	static uint8_t stage[RECORD_PLAINTEXT_BYTES];
	size_t staged = 0, total = 0;
	for (size_t i = 0; i < n; i++)
		total += bufs[i].len;
	/* Room for every record up front: the buffer does not grow (copy)
	 * while a large fetch response is encrypted into it. */
	if (!kbuf_reserve(&t->out, total + (total / RECORD_PLAINTEXT_BYTES + n + 1) *
						    RECORD_OVERHEAD_BYTES))
		return SL_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = (const uint8_t *)bufs[i].base;
		size_t len = bufs[i].len;
		if (len < COALESCE_BYTES) {
			if (staged + len > sizeof stage) {
				if (write_all(t, stage, staged) != 0)
					return SL_EIO;
				staged = 0;
			}
			memcpy(stage + staged, p, len);
			staged += len;
			continue;
		}
		int rc = write_all(t, stage, staged);
		staged = 0;
		if (rc == 0)
			rc = write_all(t, p, len);
		if (rc)
			return rc;
	}
	return write_all(t, stage, staged);
}

int tls_conn_close_notify(struct tls_conn *t)
{
	if (!t->ready || t->refused || t->failed || t->shut)
		return SL_EPROTO;
	t->shut = true;
	ERR_clear_error();
	/* 0: ours is out, the peer's not seen yet (we do not wait for it);
	 * 1: the peer's came first. Either way the alert is in t->out. */
	int rc = SSL_shutdown(t->ssl);
	ERR_clear_error();
	return rc >= 0 && !t->out.oom ? 0 : SL_EIO;
}

const uint8_t *tls_conn_output(const struct tls_conn *t, size_t *len)
{
	*len = t->out.len;
	return t->out.len ? t->out.data : NULL;
}

void tls_conn_output_sent(struct tls_conn *t, size_t n, bool keep)
{
	SL_ASSERT(n <= t->out.len);
	if (n == t->out.len && !keep) {
		kbuf_free(&t->out);
		return;
	}
	memmove(t->out.data, t->out.data + n, t->out.len - n);
	t->out.len -= n;
}

size_t tls_conn_take_output(struct tls_conn *t, uint8_t **data, size_t *cap)
{
	size_t len = t->out.len;
	if (len == 0)
		return 0;
	*data = t->out.data;
	*cap = t->out.cap;
	kbuf_init(&t->out);
	return len;
}

bool tls_conn_ready(const struct tls_conn *t)
{
	return t->ready;
}

const char *tls_conn_principal(const struct tls_conn *t)
{
	return t->principal ? t->principal : "User:ANONYMOUS";
}

void tls_conn_describe(const struct tls_conn *t, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s %s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl));
}
