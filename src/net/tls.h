/* tls.h — TLS for the server's connections, with OpenSSL, on the loop.
 *
 * No sockets here: a tls_conn takes the ciphertext the server read
 * (tls_conn_input), gives back plaintext (tls_conn_read) and collects the
 * ciphertext to send (handshake records, alerts, tickets, encrypted
 * responses) in an output buffer the server takes and writes
 * (tls_conn_take_output). The handshake runs inside tls_conn_read, driven
 * by whatever arrives; nothing blocks and no thread is involved.
 *
 * A tls_ctx is the certificate, key and client-auth policy; connections
 * hold a reference to the one they started with, so a reload (a new ctx
 * for new connections) never disturbs them. Loop thread only. */
#ifndef SLUICE_TLS_H
#define SLUICE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct tls_ctx;
struct tls_conn;

struct tls_config {
	const char *cert_file;     /* PEM chain, leaf first */
	const char *key_file;      /* PEM private key */
	const char *ca_file;       /* PEM CAs for client certificates, or NULL */
	int client_auth;           /* enum tls_client_auth (agent/config.h) */
};

/* Load the files into a new context (TLS 1.2 and 1.3 only, no
 * renegotiation, no compression). Returns 0 and one reference, or
 * SL_EIO after logging why (unreadable file, key not matching the
 * certificate, ...). */
int tls_ctx_new(const struct tls_config *cfg, struct tls_ctx **out);
void tls_ctx_ref(struct tls_ctx *ctx);
void tls_ctx_unref(struct tls_ctx *ctx);
/* The certificate's subject and serial, for the reload log line. */
void tls_ctx_describe(const struct tls_ctx *ctx, char *buf, size_t cap);

/* A server-side connection of ctx (which it references until freed).
 * Returns 0 or SL_ENOMEM. */
int tls_conn_new(struct tls_ctx *ctx, struct tls_conn **out);
void tls_conn_free(struct tls_conn *t);

/* Ciphertext read from the socket: borrowed until tls_conn_input_done,
 * which keeps (copies) whatever tls_conn_read did not consume. Returns
 * 0 or SL_ENOMEM. */
void tls_conn_input(struct tls_conn *t, const uint8_t *data, size_t len);
int tls_conn_input_done(struct tls_conn *t);
/* True when ciphertext is kept or decrypted bytes are buffered inside
 * OpenSSL: tls_conn_read may give more without reading the socket. */
bool tls_conn_has_input(const struct tls_conn *t);

/* Up to cap bytes of plaintext into buf. Returns how many (> 0), 0 when
 * more ciphertext is needed, or a negative code: SL_EPROTO (a failed
 * handshake, a bad record, a renegotiation attempt, plaintext on a TLS
 * port), SL_EIO (the peer sent close_notify), SL_ENOMEM. Any of those
 * ends the connection. */
long tls_conn_read(struct tls_conn *t, uint8_t *buf, size_t cap);
/* Encrypt the n pieces, in order, into the output buffer. Returns 0 or
 * a negative code (the connection must close). */
int tls_conn_write(struct tls_conn *t, const uv_buf_t *bufs, size_t n);
/* The ciphertext collected so far, in place: *len bytes at the
 * returned address (NULL when none), valid until the next call on t. */
const uint8_t *tls_conn_output(const struct tls_conn *t, size_t *len);
/* The first n bytes of that output have been sent: drop them (the rest
 * moves to the front). With nothing left and keep false the buffer goes,
 * so an idle connection holds none; keep it for more output soon. */
void tls_conn_output_sent(struct tls_conn *t, size_t n, bool keep);
/* The ciphertext collected so far, if any: moves the buffer (kbuf_alloc'd,
 * cap bytes; free with kbuf_release) to the caller. Returns its length. */
size_t tls_conn_take_output(struct tls_conn *t, uint8_t **data, size_t *cap);

/* A clean end (the peer's close_notify came, or the server closes after
 * a last response): queue our close_notify alert in the output buffer,
 * once, as TLS asks (RFC 8446 6.1) and Kafka's SslTransportLayer does.
 * Returns 0, or SL_EPROTO (no handshake completed, or a fatal error
 * came first: OpenSSL must not shut down then) / SL_EIO, where the
 * connection just closes. */
int tls_conn_close_notify(struct tls_conn *t);

/* The handshake has completed. */
bool tls_conn_ready(const struct tls_conn *t);
/* "User:" + the client certificate's subject CN, or "User:ANONYMOUS"
 * (no certificate, or one without a CN). Valid until tls_conn_free. */
const char *tls_conn_principal(const struct tls_conn *t);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" after the handshake, for the log. */
void tls_conn_describe(const struct tls_conn *t, char *buf, size_t cap);

#endif
