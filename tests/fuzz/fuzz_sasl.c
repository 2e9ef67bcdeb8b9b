/* fuzz_sasl.c — fuzz target for the SASL parsers and exchange (net/sasl.c):
 * the PLAIN token, SCRAM's client-first and client-final messages, and
 * a whole exchange fed the input's tokens against a fixed credential.
 *
 * Input: the first byte picks what is fed (0: PLAIN, 1: client-first,
 * 2: client-final, 3: a SCRAM-SHA-256 exchange whose two tokens are the
 * rest split at the first NUL, 4: base64). Checks the contracts every
 * input must keep: only the documented error codes, views inside the
 * input, a failed step leaves the session FAILED with nothing to send,
 * an exchange that completes does so only with RFC 7677's proof. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "net/sasl.h"

static void inside(const void *p, size_t n, const uint8_t *data, size_t size)
{
	if (n && ((const uint8_t *)p < data || (const uint8_t *)p + n > data + size))
		abort();
}

/* RFC 7677's user/pencil, derived once. */
static const struct meta_scram_credential *pencil(void)
{
	static struct meta_scram_credential c;
	static int ready;
	if (!ready) {
		memset(&c, 0, sizeof c);
		c.iterations = 4096;
		c.salt_len = (uint32_t)sasl_base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==", 24, c.salt,
							  sizeof c.salt);
		uint8_t salted[32];
		if (scram_salted_password(SASL_MECH_SCRAM_SHA_256, (const uint8_t *)"pencil", 6, c.salt,
					  c.salt_len, 4096, salted) != 0 ||
		    scram_credential_from_salted(SASL_MECH_SCRAM_SHA_256, salted, 32, &c) != 0)
			abort();
		ready = 1;
	}
	return &c;
}

static void exchange(const uint8_t *p, size_t n)
{
	const uint8_t *nul = memchr(p, 0, n);
	size_t first = nul ? (size_t)(nul - p) : n;
	struct sasl_session s;
	sasl_session_init(&s);
	if (sasl_handshake(&s, "SCRAM-SHA-256", 13, 1) != 0)
		abort();
	int rc = sasl_first_token(&s, p, first);
	if (rc != 0) {
		if (rc != SL_EPROTO || s.state != SASL_STATE_FAILED)
			abort();
		return;
	}
	uint8_t out[1024];
	size_t out_len;
	rc = sasl_lookup_done(&s, pencil(), 1, false, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", out,
			      sizeof out, &out_len);
	if (rc != 0) {
		if (rc != SL_EPROTO || s.state != SASL_STATE_FAILED || out_len)
			abort();
		return;
	}
	if (!nul)
		return;
	rc = sasl_final_token(&s, nul + 1, n - first - 1, out, sizeof out, &out_len);
	if (rc == 0 && (s.state != SASL_STATE_COMPLETE || out_len < 3 || memcmp(out, "v=", 2)))
		abort();
	if (rc != 0 && (rc != SL_EPROTO || s.state != SASL_STATE_FAILED || out_len))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const uint8_t *p = data + 1;
	size_t n = size - 1;
	switch (data[0] % 5) {
	case 0: {
		struct sasl_plain pl;
		int rc = sasl_plain_parse(p, n, &pl);
		if (rc == 0) {
			inside(pl.user, pl.user_len, p, n);
			inside(pl.password, pl.password_len, p, n);
			if (!pl.user_len || !pl.password_len)
				abort();
		} else if (rc != SL_EPROTO) {
			abort();
		}
		break;
	}
	case 1: {
		struct scram_client_first f;
		int rc = scram_client_first_parse(p, n, &f);
		if (rc == 0) {
			inside(f.nonce, f.nonce_len, p, n);
			inside(f.bare, f.bare_len, p, n);
			if (!f.user[0] || !f.nonce_len || f.gs2_header_len + f.bare_len != n)
				abort();
		} else if (rc != SL_EPROTO) {
			abort();
		}
		break;
	}
	case 2: {
		struct scram_client_final f;
		int rc = scram_client_final_parse(p, n, &f);
		if (rc == 0) {
			inside(f.nonce, f.nonce_len, p, n);
			if (f.without_proof_len >= n || !f.proof_len)
				abort();
		} else if (rc != SL_EPROTO) {
			abort();
		}
		break;
	}
	case 3:
		exchange(p, n);
		break;
	default: {
		uint8_t out[256];
		long got = sasl_base64_decode((const char *)p, n, out, sizeof out);
		if (got > (long)sizeof out)
			abort();
		if (got >= 0) {
			char enc[4 * ((sizeof out + 2) / 3) + 1];
			uint8_t again[sizeof out];
			size_t e = sasl_base64_encode(out, (size_t)got, enc);
			/* What decodes encodes to as many characters and decodes
			 * back the same (unused low bits of the last character
			 * may differ: they are ignored, as Java's decoder does). */
			if (e != n || sasl_base64_decode(enc, e, again, sizeof again) != got ||
			    memcmp(again, out, (size_t)got))
				abort();
		}
	}
	}
	return 0;
}
