/* sasl.h — the server side of SASL for the SASL_PLAINTEXT and SASL_SSL
 * listeners, as pure logic: the mechanism names, the PLAIN token (RFC
 * 4616), the SCRAM messages (RFC 5802, SCRAM-SHA-256 of RFC 7677 and
 * SCRAM-SHA-512) parsed and built, SCRAM's keys (OpenSSL's PBKDF2 and
 * HMAC, constant-time comparisons), and one connection's exchange as a
 * state machine fed tokens.
 *
 * No I/O and no threads of its own: a step that needs a user's
 * credentials says so, the caller (api/sasl.c) looks them up on the pool
 * and hands them to the next step. Every length read from a token is
 * checked against the bytes left and against the limits in limits.h. */
#ifndef SLUICE_SASL_H
#define SLUICE_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/limits.h"
#include "meta/meta.h"

/* SCRAM's values are Kafka's mechanism types (Describe/Alter-
 * UserScramCredentials, the metadata store's mechanism column). */
enum sasl_mech {
	SASL_MECH_NONE = 0,
	SASL_MECH_SCRAM_SHA_256 = META_SCRAM_SHA_256,
	SASL_MECH_SCRAM_SHA_512 = META_SCRAM_SHA_512,
	SASL_MECH_PLAIN = 3,
};

/* What SaslHandshake lists, in this order. */
#define SASL_MECH_COUNT 3
#define SASL_MECH_BIT(m) (1u << (m))
#define SASL_MECH_ALL (SASL_MECH_BIT(SASL_MECH_PLAIN) | SASL_MECH_BIT(SASL_MECH_SCRAM_SHA_256) | \
		       SASL_MECH_BIT(SASL_MECH_SCRAM_SHA_512))
extern const char *const sasl_mech_names[SASL_MECH_COUNT];

/* The mechanism a client names (exactly, as Kafka compares), or
 * SASL_MECH_NONE. */
enum sasl_mech sasl_mech_parse(const char *name, size_t len);
/* "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"; "" for NONE. */
const char *sasl_mech_name(enum sasl_mech m);

/* ---- SCRAM keys ---- */

/* The mechanism's hash length (32, 64), or 0 for a non-SCRAM one. */
size_t scram_hash_len(int mech);
/* SaltedPassword = PBKDF2-HMAC-H(password, salt, iterations) into out
 * (scram_hash_len bytes). 0, or SL_EINVAL (a mechanism or length out of
 * range). Milliseconds of CPU at 4,096 iterations: never on the loop. */
int scram_salted_password(int mech, const uint8_t *password, size_t password_len,
			  const uint8_t *salt, size_t salt_len, int32_t iterations, uint8_t *out);
/* HMAC-H(key, data) and H(data) into out (scram_hash_len bytes): the
 * SCRAM client's proof (the tools' kclient.c) is built from them. */
void scram_hmac(int mech, const uint8_t *key, size_t key_len, const void *data, size_t len,
		uint8_t *out);
void scram_hash(int mech, const void *data, size_t len, uint8_t *out);
/* A credential's StoredKey and ServerKey from a SaltedPassword of
 * salted_len bytes (AlterUserScramCredentials sends that); the caller set
 * or sets user, salt and iterations. 0 or SL_EINVAL. */
int scram_credential_from_salted(int mech, const uint8_t *salted, size_t salted_len,
				 struct meta_scram_credential *c);
/* The whole credential of a password with a fresh random salt (32 bytes)
 * (`sluice users add`). 0, SL_EINVAL or SL_EIO (no randomness). */
int scram_credential_new(int mech, const char *user, const uint8_t *password,
			 size_t password_len, int32_t iterations, struct meta_scram_credential *c);
/* Whether password is the one c was made from (PLAIN against a stored
 * SCRAM credential): the keys derived with c's salt and iterations,
 * compared in constant time. PBKDF2: pool only. */
bool scram_password_matches(const struct meta_scram_credential *c, const uint8_t *password,
			    size_t password_len);

/* ---- messages ---- */

/* RFC 4616: [authzid] NUL authcid NUL passwd. Views into the token. */
struct sasl_plain {
	const char *authzid, *user, *password;
	size_t authzid_len, user_len, password_len;
};
/* 0, or SL_EPROTO: not three parts, an empty user or password, a NUL
 * inside one, one over its limit. */
int sasl_plain_parse(const uint8_t *token, size_t len, struct sasl_plain *out);

/* client-first-message: gs2-header client-first-message-bare. The user
 * and authzid are decoded (=2C, =3D); the rest are views into the
 * message. */
struct scram_client_first {
	char user[SL_SASL_USER_BYTES_MAX + 1];
	char authzid[SL_SASL_USER_BYTES_MAX + 1]; /* "" when none */
	const char *gs2_header;  /* "n,," or "n,a=NAME," */
	size_t gs2_header_len;
	const char *bare;        /* client-first-message-bare */
	size_t bare_len;
	const char *nonce;
	size_t nonce_len;
};
/* 0, or SL_EPROTO: not "n" channel binding (y/p need channel binding
 * this server does not offer), a mandatory extension (m=), a bad
 * saslname, an empty or unprintable nonce, anything over its limit. */
int scram_client_first_parse(const uint8_t *msg, size_t len, struct scram_client_first *out);

/* client-final-message: "c=" base64 "," "r=" nonce [extensions] ",p="
 * base64. */
struct scram_client_final {
	uint8_t channel_binding[SL_SASL_USER_BYTES_MAX * 3 + 8];
	size_t channel_binding_len;
	const char *nonce;       /* view */
	size_t nonce_len;
	uint8_t proof[META_SCRAM_KEY_BYTES];
	size_t proof_len;
	size_t without_proof_len; /* client-final-message-without-proof */
};
/* 0, or SL_EPROTO. */
int scram_client_final_parse(const uint8_t *msg, size_t len, struct scram_client_final *out);

/* Standard base64 with padding (RFC 4648): encode into out (room for
 * 4 * ((n + 2) / 3) + 1), NUL-terminated; returns the length. */
size_t sasl_base64_encode(const uint8_t *p, size_t n, char *out);
/* Decode strictly (padding required, no whitespace) into at most cap
 * bytes: the length, or -1. */
long sasl_base64_decode(const char *s, size_t len, uint8_t *out, size_t cap);

/* ---- one connection's exchange ---- */

enum sasl_state {
	SASL_STATE_INITIAL,     /* ApiVersions or SaslHandshake */
	SASL_STATE_HANDSHAKE,   /* after ApiVersions: SaslHandshake only */
	SASL_STATE_AUTHENTICATE, /* the mechanism's first token */
	SASL_STATE_LOOKUP,      /* the caller is looking the user up */
	SASL_STATE_SCRAM_FINAL, /* SCRAM's client-final-message */
	SASL_STATE_COMPLETE,    /* authenticated as user */
	SASL_STATE_FAILED,
};

/* Why an exchange failed, worded for the client as Kafka 3.9 words it
 * (sasl_failure_message). */
enum sasl_failure {
	SASL_FAIL_CREDENTIALS,  /* unknown user, wrong proof, a bad message */
	SASL_FAIL_PLAIN,        /* PLAIN: no such user and password */
	SASL_FAIL_AUTHZID,      /* an authorization id other than the user */
};

#define SCRAM_AUTH_MESSAGE_BYTES_MAX 2048

struct sasl_session {
	enum sasl_state state;
	enum sasl_mech mech;
	bool raw;                /* SaslHandshake v0: tokens are framed
				    without Kafka headers (KIP-152) */
	enum sasl_failure failure; /* set with SASL_STATE_FAILED */
	unsigned offered;        /* SASL_MECH_BIT of each mechanism the
				    listener offers (--sasl-mechanisms);
				    all after sasl_session_init */
	char user[SL_SASL_USER_BYTES_MAX + 1]; /* who is being (or was)
						  authenticated */
	/* PLAIN, until the lookup verified it (then wiped). */
	uint8_t password[SL_SASL_PASSWORD_BYTES_MAX];
	size_t password_len;
	/* SCRAM between its rounds: the credential looked up, the nonce
	 * (client's + server's) and AuthMessage's first two parts
	 * (client-first-message-bare "," server-first-message ","). */
	struct meta_scram_credential cred;
	char nonce[SL_SCRAM_NONCE_BYTES_MAX + 64];
	size_t nonce_len;
	char auth[SCRAM_AUTH_MESSAGE_BYTES_MAX];
	size_t auth_len;
	size_t server_first_at, server_first_len; /* in auth */
	size_t client_nonce_len;
};

void sasl_session_init(struct sasl_session *s);
/* Wipes the secrets it may hold (a password, keys). */
void sasl_session_clear(struct sasl_session *s);

/* ApiVersions before the handshake: allowed once (INITIAL -> HANDSHAKE)
 * as Kafka allows; false otherwise (the connection closes). A version the
 * caller refused does not count (the client retries with another). */
bool sasl_api_versions(struct sasl_session *s);
/* SaslHandshake: 0 (AUTHENTICATE; raw when version is 0), SL_EUNSUPPORTED
 * (a mechanism not offered: FAILED, answered UNSUPPORTED_SASL_MECHANISM),
 * SL_EPROTO (not expected now). */
int sasl_handshake(struct sasl_session *s, const char *mech, size_t len, int16_t version);
/* The mechanism's first token (state AUTHENTICATE): parses it and moves
 * to LOOKUP, with s->user the user whose credentials the caller must
 * look up (meta_scram_get) and hand to sasl_lookup_done. SL_EPROTO: a
 * malformed token (FAILED). */
int sasl_first_token(struct sasl_session *s, const uint8_t *token, size_t len);
/* The lookup's result, n credentials of s->user (any mechanisms), on the
 * loop. For PLAIN, matched says whether the password matched one of them
 * (scram_password_matches, run on the pool with the lookup); for SCRAM,
 * server_nonce (printable, no ',') is this exchange's random part. On
 * success: PLAIN is COMPLETE with an empty reply; SCRAM is SCRAM_FINAL
 * with the server-first-message in out (*out_len bytes of at most cap).
 * SL_EPROTO on failure (FAILED, s->failure says why). */
int sasl_lookup_done(struct sasl_session *s, const struct meta_scram_credential *creds, size_t n,
		     bool matched, const char *server_nonce, uint8_t *out, size_t cap,
		     size_t *out_len);
/* SCRAM's client-final-message: verifies the proof (constant time) and
 * puts the server-final-message in out: COMPLETE, 0. SL_EPROTO: FAILED. */
int sasl_final_token(struct sasl_session *s, const uint8_t *token, size_t len, uint8_t *out,
		     size_t cap, size_t *out_len);
/* The error message Kafka sends for s->failure. */
void sasl_failure_message(const struct sasl_session *s, char *buf, size_t cap);

#endif
