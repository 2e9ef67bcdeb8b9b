/* test_sasl.c — SASL as pure logic (net/sasl.c): RFC 7677's SCRAM-SHA-256
 * exchange byte for byte, a SCRAM-SHA-512 exchange against known answers
 * (computed with Python's hashlib, an independent implementation, for
 * the same inputs), wrong proofs, nonces and channel bindings, unknown
 * users and authorization ids, PLAIN against stored SCRAM credentials,
 * the handshake's states, the parsers' edges, and base64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "net/sasl.h"

#define CLIENT_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define SERVER_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define SERVER_FIRST "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," \
	"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define FINAL_NO_PROOF "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
/* RFC 7677, section 3. */
#define PROOF_256 "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define VERIFIER_256 "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
/* The proof librdkafka before 2.6.1 would send (its doubled nonce). */
#define PROOF_DOUBLED "1Y75+q7XaCGJj/r6vyQWwoNxSzV5ksS8xhp5Lqyriec="
/* The same inputs with SHA-512 (hashlib.pbkdf2_hmac, hmac). */
#define PROOF_512 "gMGXRcevScNtxZ6/8lQYpGtnsNAc3mGcmNomv+xnoOMw+3R2xNJdMNnzMlTN8PPC6wdp6dybEmDYXYTxwnYPJQ=="
#define VERIFIER_512 "v=ZQnYEgWQMFmmsM8aQMF0nDDCy/AgCzkwk8CmMZYcMg0vSVlKDanekLtifDSeVGT4+5ZxXnJq199RVG2rR7N7Zw=="
#define STORED_512 "e8002e6f7d3ae446119b216933644dc2a2be7869eb918b8459b5e7d7d2ec12606aceef106825cd735170a675fd3611f684affad1dce3f43a0ee43bd590e1dbbe"
#define SERVER_512 "8d91db6230b5687874fe129bc7206e1858c3ae08e02934f57ac03b6b05a229c459d28ff46f5c9611e6c179256490215ec1ff759cb0df285db89af0f99e613aac"

static void hex_decode(const char *hex, uint8_t *out)
{
	for (size_t i = 0; hex[2 * i]; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

/* user/pencil with RFC 7677's salt and 4,096 iterations. */
static struct meta_scram_credential pencil(int mech)
{
	struct meta_scram_credential c;
	memset(&c, 0, sizeof c);
	strcpy(c.user, "user");
	c.iterations = 4096;
	long n = sasl_base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==", 24, c.salt, sizeof c.salt);
	assert_int_equal(n, 16);
	c.salt_len = 16;
	uint8_t salted[64];
	assert_int_equal(scram_salted_password(mech, (const uint8_t *)"pencil", 6, c.salt, 16, 4096,
					       salted), 0);
	assert_int_equal(scram_credential_from_salted(mech, salted, scram_hash_len(mech), &c), 0);
	return c;
}

static void start(struct sasl_session *s, const char *mech, int16_t version)
{
	sasl_session_init(s);
	assert_int_equal(sasl_handshake(s, mech, strlen(mech), version), 0);
	assert_int_equal(s->state, SASL_STATE_AUTHENTICATE);
}

/* Handshake, client-first, lookup (cred), server-first; returns the
 * session in SCRAM_FINAL. */
static void scram_first(struct sasl_session *s, const char *mech,
			const struct meta_scram_credential *cred)
{
	start(s, mech, 1);
	assert_int_equal(sasl_first_token(s, (const uint8_t *)CLIENT_FIRST, strlen(CLIENT_FIRST)), 0);
	assert_int_equal(s->state, SASL_STATE_LOOKUP);
	assert_string_equal(s->user, "user");
	uint8_t out[512];
	size_t n;
	assert_int_equal(sasl_lookup_done(s, cred, 1, false, SERVER_NONCE, out, sizeof out, &n), 0);
	assert_int_equal(n, strlen(SERVER_FIRST));
	assert_memory_equal(out, SERVER_FIRST, n);
	assert_int_equal(s->state, SASL_STATE_SCRAM_FINAL);
}

static void scram_rfc7677_sha256(void **state)
{
	struct meta_scram_credential c = pencil(SASL_MECH_SCRAM_SHA_256);
	uint8_t want[32];
	/* StoredKey and ServerKey of user/pencil (RFC 7677's inputs). */
	hex_decode("586e5df283e6dceb5c3e791d8b8528ec191e664045ce971792e2e6b5bb13e2a6", want);
	assert_memory_equal(c.stored_key, want, 32);
	hex_decode("c1f3cbc1c13a9d35a14c0990eed97629ea225863e566a4314ab99f3f00e5d9d5", want);
	assert_memory_equal(c.server_key, want, 32);
	struct sasl_session s;
	scram_first(&s, "SCRAM-SHA-256", &c);
	const char *final = FINAL_NO_PROOF ",p=" PROOF_256;
	uint8_t out[256];
	size_t n;
	assert_int_equal(sasl_final_token(&s, (const uint8_t *)final, strlen(final), out, sizeof out, &n), 0);
	assert_int_equal(n, strlen(VERIFIER_256));
	assert_memory_equal(out, VERIFIER_256, n);
	assert_int_equal(s.state, SASL_STATE_COMPLETE);
	assert_string_equal(s.user, "user");
}

static void scram_sha512_known_answer(void **state)
{
	struct meta_scram_credential c = pencil(SASL_MECH_SCRAM_SHA_512);
	uint8_t want[64];
	hex_decode(STORED_512, want);
	assert_memory_equal(c.stored_key, want, 64);
	hex_decode(SERVER_512, want);
	assert_memory_equal(c.server_key, want, 64);
	struct sasl_session s;
	scram_first(&s, "SCRAM-SHA-512", &c);
	const char *final = FINAL_NO_PROOF ",p=" PROOF_512;
	uint8_t out[256];
	size_t n;
	assert_int_equal(sasl_final_token(&s, (const uint8_t *)final, strlen(final), out, sizeof out, &n), 0);
	assert_int_equal(n, strlen(VERIFIER_512));
	assert_memory_equal(out, VERIFIER_512, n);
}

/* librdkafka before 2.6.1 sends the client's nonce twice in its final
 * message (and signs that): Kafka 3.9 accepts a nonce ending with the
 * exchange's, and so do we. */
static void scram_librdkafka_nonce(void **state)
{
	struct meta_scram_credential c = pencil(SASL_MECH_SCRAM_SHA_256);
	struct sasl_session s;
	scram_first(&s, "SCRAM-SHA-256", &c);
	/* The proof over this AuthMessage, from hashlib as above. */
	const char *final = "c=biws,r=rOprNGfwEbeRWgbNEkqOrOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
			    ",p=" PROOF_DOUBLED;
	uint8_t out[256];
	size_t n;
	assert_int_equal(sasl_final_token(&s, (const uint8_t *)final, strlen(final), out, sizeof out, &n), 0);
	assert_int_equal(s.state, SASL_STATE_COMPLETE);
}

/* A final message that is wrong in one way each fails the exchange with
 * Kafka's message. */
static void scram_wrong_final(void **state)
{
	struct meta_scram_credential c = pencil(SASL_MECH_SCRAM_SHA_256);
	const char *bad[] = {
		/* another password's proof (one bit off) */
		FINAL_NO_PROOF ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVU=",
		/* the client's nonce alone */
		"c=biws,r=rOprNGfwEbeRWgbNEkqO,p=" PROOF_256,
		/* channel binding of another gs2 header ("y,,") */
		"c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=" PROOF_256,
		/* a proof of the wrong length */
		FINAL_NO_PROOF ",p=dHzbZapWIk4jUhN+Ute9",
		/* no proof */
		FINAL_NO_PROOF,
		"",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct sasl_session s;
		scram_first(&s, "SCRAM-SHA-256", &c);
		uint8_t out[256];
		size_t n = 99;
		assert_int_equal(sasl_final_token(&s, (const uint8_t *)bad[i], strlen(bad[i]), out,
						  sizeof out, &n), SL_EPROTO);
		assert_int_equal(n, 0);
		assert_int_equal(s.state, SASL_STATE_FAILED);
		char msg[256];
		sasl_failure_message(&s, msg, sizeof msg);
		assert_string_equal(msg, "Authentication failed during authentication due to invalid "
				    "credentials with SASL mechanism SCRAM-SHA-256");
	}
}

static void scram_unknown_user_and_authzid(void **state)
{
	struct sasl_session s;
	uint8_t out[512];
	size_t n;
	start(&s, "SCRAM-SHA-512", 1);
	assert_int_equal(sasl_first_token(&s, (const uint8_t *)CLIENT_FIRST, strlen(CLIENT_FIRST)), 0);
	/* No credential at all, or only one of the other mechanism. */
	assert_int_equal(sasl_lookup_done(&s, NULL, 0, false, "x", out, sizeof out, &n), SL_EPROTO);
	assert_int_equal(s.failure, SASL_FAIL_CREDENTIALS);
	struct meta_scram_credential c = pencil(SASL_MECH_SCRAM_SHA_256);
	start(&s, "SCRAM-SHA-512", 1);
	assert_int_equal(sasl_first_token(&s, (const uint8_t *)CLIENT_FIRST, strlen(CLIENT_FIRST)), 0);
	assert_int_equal(sasl_lookup_done(&s, &c, 1, false, "x", out, sizeof out, &n), SL_EPROTO);
	/* An authorization id other than the user. */
	start(&s, "SCRAM-SHA-256", 1);
	const char *az = "n,a=admin,n=user,r=abc";
	assert_int_equal(sasl_first_token(&s, (const uint8_t *)az, strlen(az)), 0);
	assert_int_equal(sasl_lookup_done(&s, &c, 1, false, "x", out, sizeof out, &n), SL_EPROTO);
	char msg[256];
	sasl_failure_message(&s, msg, sizeof msg);
	assert_string_equal(msg, "Authentication failed: Client requested an authorization id that "
			    "is different from username");
	/* The user's own name as authorization id is fine. */
	start(&s, "SCRAM-SHA-256", 1);
	az = "n,a=user,n=user,r=abc";
	assert_int_equal(sasl_first_token(&s, (const uint8_t *)az, strlen(az)), 0);
	assert_int_equal(sasl_lookup_done(&s, &c, 1, false, "x", out, sizeof out, &n), 0);
	/* Iterations below the minimum stored somehow: refused. */
	c.iterations = 100;
	start(&s, "SCRAM-SHA-256", 1);
	assert_int_equal(sasl_first_token(&s, (const uint8_t *)CLIENT_FIRST, strlen(CLIENT_FIRST)), 0);
	assert_int_equal(sasl_lookup_done(&s, &c, 1, false, "x", out, sizeof out, &n), SL_EPROTO);
}

static void scram_client_first_edges(void **state)
{
	struct scram_client_first f;
	const char *ok = "n,,n=a=2Cb=3Dc,r=nonce,ext=value";
	assert_int_equal(scram_client_first_parse((const uint8_t *)ok, strlen(ok), &f), 0);
	assert_string_equal(f.user, "a,b=c");
	assert_int_equal(f.nonce_len, 5);
	assert_int_equal(f.bare_len, strlen(ok) - 3);
	assert_int_equal(f.gs2_header_len, 3);
	const char *bad[] = {
		"y,,n=user,r=abc",          /* channel binding flags */
		"p=tls-unique,,n=user,r=abc",
		"n,,m=ext,n=user,r=abc",    /* a mandatory extension */
		"n,,n=,r=abc",              /* empty user */
		"n,,n=a=2Xb,r=abc",         /* bad escape */
		"n,,n=ab=,r=abc",
		"n,,n=user,r=",             /* empty nonce */
		"n,,n=user,r=a b",          /* unprintable nonce */
		"n,,n=user",
		"n,n=user,r=abc",
		"n,,n=user,r=abc,",
		"n,,n=user,r=abc,=x",
		"",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(scram_client_first_parse((const uint8_t *)bad[i], strlen(bad[i]), &f),
				 SL_EPROTO);
	/* A user of 255 bytes passes, 256 do not. */
	char m[600];
	memset(m, 'u', sizeof m);
	memcpy(m, "n,,n=", 5);
	memcpy(m + 5 + 255, ",r=x", 4);
	assert_int_equal(scram_client_first_parse((const uint8_t *)m, 5 + 255 + 4, &f), 0);
	memcpy(m + 5 + 256, ",r=x", 4);
	assert_int_equal(scram_client_first_parse((const uint8_t *)m, 5 + 256 + 4, &f), SL_EPROTO);
	/* A NUL inside the user. */
	const char nul[] = "n,,n=us\0er,r=abc";
	assert_int_equal(scram_client_first_parse((const uint8_t *)nul, sizeof nul - 1, &f), SL_EPROTO);
}

/* PLAIN checks the password against the stored SCRAM credential. */
static void plain_against_scram(void **state)
{
	struct meta_scram_credential c;
	assert_int_equal(scram_credential_new(SASL_MECH_SCRAM_SHA_512, "alice", (const uint8_t *)"s3cret",
					      6, 4096, &c), 0);
	assert_int_equal(c.salt_len, 32);
	assert_true(scram_password_matches(&c, (const uint8_t *)"s3cret", 6));
	assert_false(scram_password_matches(&c, (const uint8_t *)"s3creT", 6));
	assert_false(scram_password_matches(&c, (const uint8_t *)"s3cre", 5));
	struct meta_scram_credential d;
	assert_int_equal(scram_credential_new(SASL_MECH_SCRAM_SHA_512, "alice", (const uint8_t *)"s3cret",
					      6, 4096, &d), 0);
	assert_memory_not_equal(c.salt, d.salt, 32); /* fresh salt each time */
	assert_int_equal(scram_credential_new(SASL_MECH_SCRAM_SHA_256, "alice", (const uint8_t *)"x", 1,
					      4095, &d), SL_EINVAL);
	assert_int_equal(scram_credential_new(SASL_MECH_SCRAM_SHA_256, "alice", (const uint8_t *)"x", 1,
					      16385, &d), SL_EINVAL);

	struct sasl_session s;
	uint8_t out[64];
	size_t n;
	const char tok[] = "\0alice\0s3cret";
	start(&s, "PLAIN", 0);
	assert_true(s.raw);
	assert_int_equal(sasl_first_token(&s, (const uint8_t *)tok, sizeof tok - 1), 0);
	assert_string_equal(s.user, "alice");
	assert_int_equal(s.password_len, 6);
	bool matched = scram_password_matches(&c, s.password, s.password_len);
	assert_int_equal(sasl_lookup_done(&s, &c, 1, matched, NULL, out, sizeof out, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(s.state, SASL_STATE_COMPLETE);
	assert_int_equal(s.password_len, 0);

	start(&s, "PLAIN", 1);
	assert_false(s.raw);
	assert_int_equal(sasl_first_token(&s, (const uint8_t *)tok, sizeof tok - 1), 0);
	assert_int_equal(sasl_lookup_done(&s, &c, 1, false, NULL, out, sizeof out, &n), SL_EPROTO);
	char msg[256];
	sasl_failure_message(&s, msg, sizeof msg);
	assert_string_equal(msg, "Authentication failed: Invalid username or password");
	/* Right password, another authorization id. */
	const char az[] = "bob\0alice\0s3cret";
	start(&s, "PLAIN", 1);
	assert_int_equal(sasl_first_token(&s, (const uint8_t *)az, sizeof az - 1), 0);
	assert_int_equal(sasl_lookup_done(&s, &c, 1, true, NULL, out, sizeof out, &n), SL_EPROTO);
	assert_int_equal(s.failure, SASL_FAIL_AUTHZID);
	/* Malformed tokens: Kafka's generic message. */
	const struct { const char *t; size_t n; } bad[] = {
		{ "alice\0s3cret", 12 }, { "\0\0s3cret", 8 }, { "\0alice\0", 7 }, { "\0a\0b\0c", 6 },
		{ "", 0 },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		start(&s, "PLAIN", 1);
		assert_int_equal(sasl_first_token(&s, (const uint8_t *)bad[i].t, bad[i].n), SL_EPROTO);
		sasl_failure_message(&s, msg, sizeof msg);
		assert_string_equal(msg, "Authentication failed during authentication due to invalid "
				    "credentials with SASL mechanism PLAIN");
	}
}

static void handshake_states(void **state)
{
	struct sasl_session s;
	sasl_session_init(&s);
	assert_true(sasl_api_versions(&s));
	assert_false(sasl_api_versions(&s)); /* once, as Kafka */
	assert_int_equal(sasl_handshake(&s, "GSSAPI", 6, 1), SL_EUNSUPPORTED);
	assert_int_equal(s.state, SASL_STATE_FAILED);
	sasl_session_init(&s);
	assert_int_equal(sasl_handshake(&s, "scram-sha-256", 13, 1), SL_EUNSUPPORTED);
	/* --sasl-mechanisms: a known mechanism the listener does not offer */
	sasl_session_init(&s);
	s.offered = SASL_MECH_BIT(SASL_MECH_SCRAM_SHA_512);
	assert_int_equal(sasl_handshake(&s, "PLAIN", 5, 1), SL_EUNSUPPORTED);
	assert_int_equal(s.state, SASL_STATE_FAILED);
	sasl_session_init(&s);
	s.offered = SASL_MECH_BIT(SASL_MECH_SCRAM_SHA_512);
	assert_int_equal(sasl_handshake(&s, "SCRAM-SHA-512", 13, 1), 0);
	sasl_session_init(&s);
	assert_int_equal(sasl_handshake(&s, "SCRAM-SHA-256", 13, 1), 0);
	assert_int_equal(sasl_handshake(&s, "SCRAM-SHA-256", 13, 1), SL_EPROTO);
	assert_false(sasl_api_versions(&s));
	/* Steps out of order. */
	uint8_t out[64];
	size_t n;
	assert_int_equal(sasl_final_token(&s, (const uint8_t *)"x", 1, out, sizeof out, &n), SL_EPROTO);
	assert_int_equal(sasl_lookup_done(&s, NULL, 0, true, "x", out, sizeof out, &n), SL_EPROTO);
	assert_int_equal(sasl_mech_parse("PLAIN", 5), SASL_MECH_PLAIN);
	assert_string_equal(sasl_mech_name(SASL_MECH_SCRAM_SHA_512), "SCRAM-SHA-512");
}

static void base64_strict(void **state)
{
	char enc[16];
	assert_int_equal(sasl_base64_encode((const uint8_t *)"n,,", 3, enc), 4);
	assert_string_equal(enc, "biws");
	assert_int_equal(sasl_base64_encode((const uint8_t *)"ab", 2, enc), 4);
	assert_string_equal(enc, "YWI=");
	uint8_t out[8];
	assert_int_equal(sasl_base64_decode("YWI=", 4, out, sizeof out), 2);
	assert_memory_equal(out, "ab", 2);
	assert_int_equal(sasl_base64_decode("YQ==", 4, out, sizeof out), 1);
	assert_int_equal(sasl_base64_decode("YWI", 3, out, sizeof out), -1);
	assert_int_equal(sasl_base64_decode("Y=I=", 4, out, sizeof out), -1);
	assert_int_equal(sasl_base64_decode("YW I", 4, out, sizeof out), -1);
	assert_int_equal(sasl_base64_decode("YWJjZGVmZ2hp", 12, out, sizeof out), -1); /* 9 > 8 */
	assert_int_equal(sasl_base64_decode("", 0, out, sizeof out), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(scram_rfc7677_sha256),
		cmocka_unit_test(scram_sha512_known_answer),
		cmocka_unit_test(scram_librdkafka_nonce),
		cmocka_unit_test(scram_wrong_final),
		cmocka_unit_test(scram_unknown_user_and_authzid),
		cmocka_unit_test(scram_client_first_edges),
		cmocka_unit_test(plain_against_scram),
		cmocka_unit_test(handshake_states),
		cmocka_unit_test(base64_strict),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
