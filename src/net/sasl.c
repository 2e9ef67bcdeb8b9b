/* sasl.c — SASL PLAIN and SCRAM-SHA-256/512 as pure logic (sasl.h): the
 * token parsers, the SCRAM keys and proofs, and one exchange's states.
 *
 * What Kafka 3.9 accepts is the guide where the RFCs leave room: only
 * the "n" channel-binding flag, extensions after the nonce ignored, an
 * authorization id accepted only when it names the user itself, the
 * client's nonce printable ASCII without ',', a final nonce that ends
 * with the exchange's (librdkafka before 2.6.1 repeats the client's
 * part in front). Secrets held between steps
 * (a PLAIN password, SCRAM keys) are wiped when the exchange ends. */
#include "net/sasl.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"

const char *const sasl_mech_names[SASL_MECH_COUNT] = { "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512" };

enum sasl_mech sasl_mech_parse(const char *name, size_t len)
{
	static const enum sasl_mech mechs[SASL_MECH_COUNT] = {
		SASL_MECH_PLAIN, SASL_MECH_SCRAM_SHA_256, SASL_MECH_SCRAM_SHA_512 };
	for (int i = 0; i < SASL_MECH_COUNT; i++)
		if (strlen(sasl_mech_names[i]) == len && !memcmp(sasl_mech_names[i], name, len))
			return mechs[i];
	return SASL_MECH_NONE;
}

const char *sasl_mech_name(enum sasl_mech m)
{
	switch (m) {
	case SASL_MECH_PLAIN: return "PLAIN";
	case SASL_MECH_SCRAM_SHA_256: return "SCRAM-SHA-256";
	case SASL_MECH_SCRAM_SHA_512: return "SCRAM-SHA-512";
	default: return "";
	}
}

/* ---- keys ---- */

size_t scram_hash_len(int mech)
{
	return mech == SASL_MECH_SCRAM_SHA_256 ? 32 : mech == SASL_MECH_SCRAM_SHA_512 ? 64 : 0;
}

static const EVP_MD *scram_md(int mech)
{
	return mech == SASL_MECH_SCRAM_SHA_256 ? EVP_sha256() : EVP_sha512();
}

static void hmac(int mech, const uint8_t *key, size_t key_len, const void *data, size_t len,
		 uint8_t *out)
{
	unsigned int n = 0;
	HMAC(scram_md(mech), key, (int)key_len, data, len, out, &n);
}

void scram_hmac(int mech, const uint8_t *key, size_t key_len, const void *data, size_t len,
		uint8_t *out)
{
	hmac(mech, key, key_len, data, len, out);
}

void scram_hash(int mech, const void *data, size_t len, uint8_t *out)
{
	unsigned int n = 0;
	EVP_Digest(data, len, out, &n, scram_md(mech), NULL);
}

static void hash(int mech, const uint8_t *data, size_t len, uint8_t *out)
{
	unsigned int n = 0;
	EVP_Digest(data, len, out, &n, scram_md(mech), NULL);
}

int scram_salted_password(int mech, const uint8_t *password, size_t password_len,
			  const uint8_t *salt, size_t salt_len, int32_t iterations, uint8_t *out)
{
	size_t n = scram_hash_len(mech);
	if (!n || password_len > SL_SASL_PASSWORD_BYTES_MAX || salt_len == 0 ||
	    salt_len > SL_SCRAM_SALT_BYTES_MAX || iterations <= 0)
		return SL_EINVAL;
	if (PKCS5_PBKDF2_HMAC((const char *)password, (int)password_len, salt, (int)salt_len,
			      iterations, scram_md(mech), (int)n, out) != 1)
		return SL_EINVAL;
	return 0;
}

int scram_credential_from_salted(int mech, const uint8_t *salted, size_t salted_len,
				 struct meta_scram_credential *c)
{
	size_t n = scram_hash_len(mech);
	if (!n || salted_len == 0 || salted_len > 1024)
		return SL_EINVAL;
	uint8_t client_key[META_SCRAM_KEY_BYTES];
	hmac(mech, salted, salted_len, "Client Key", 10, client_key);
	hash(mech, client_key, n, c->stored_key);
	hmac(mech, salted, salted_len, "Server Key", 10, c->server_key);
	OPENSSL_cleanse(client_key, sizeof client_key);
	c->mechanism = (int8_t)mech;
	c->key_len = (uint32_t)n;
	return 0;
}

int scram_credential_new(int mech, const char *user, const uint8_t *password,
			 size_t password_len, int32_t iterations, struct meta_scram_credential *c)
{
	memset(c, 0, sizeof *c);
	size_t ulen = strlen(user);
	if (ulen == 0 || ulen > SL_SASL_USER_BYTES_MAX || iterations < SL_SCRAM_ITERATIONS_MIN ||
	    iterations > SL_SCRAM_ITERATIONS_MAX)
		return SL_EINVAL;
	memcpy(c->user, user, ulen + 1);
	c->salt_len = 32;
	if (RAND_bytes(c->salt, (int)c->salt_len) != 1)
		return SL_EIO;
	c->iterations = iterations;
	uint8_t salted[META_SCRAM_KEY_BYTES];
	int rc = scram_salted_password(mech, password, password_len, c->salt, c->salt_len,
				       iterations, salted);
	if (!rc)
		rc = scram_credential_from_salted(mech, salted, scram_hash_len(mech), c);
	OPENSSL_cleanse(salted, sizeof salted);
	return rc;
}

bool scram_password_matches(const struct meta_scram_credential *c, const uint8_t *password,
			    size_t password_len)
{
	size_t n = scram_hash_len(c->mechanism);
	if (!n || c->key_len != n)
		return false;
	uint8_t salted[META_SCRAM_KEY_BYTES];
	struct meta_scram_credential d;
	bool ok = scram_salted_password(c->mechanism, password, password_len, c->salt, c->salt_len,
					c->iterations, salted) == 0 &&
		  scram_credential_from_salted(c->mechanism, salted, n, &d) == 0;
	/* Both keys, so a credential whose keys were stored apart from one
	 * password never matches. Constant time: a mismatch's position says
	 * nothing. */
	ok = ok && (CRYPTO_memcmp(d.stored_key, c->stored_key, n) |
		    CRYPTO_memcmp(d.server_key, c->server_key, n)) == 0;
	OPENSSL_cleanse(salted, sizeof salted);
	OPENSSL_cleanse(&d, sizeof d);
	return ok;
}

/* ---- base64 ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t sasl_base64_encode(const uint8_t *p, size_t n, char *out)
{
	size_t j = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
			     (i + 2 < n ? p[i + 2] : 0);
		out[j++] = b64[v >> 18 & 63];
		out[j++] = b64[v >> 12 & 63];
		out[j++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
		out[j++] = i + 2 < n ? b64[v & 63] : '=';
	}
	out[j] = 0;
	return j;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '+') return 62;
	if (c == '/') return 63;
	return -1;
}

long sasl_base64_decode(const char *s, size_t len, uint8_t *out, size_t cap)
{
	if (len % 4)
		return -1;
	size_t n = 0;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		int pad = last ? (s[i + 3] == '=') + (s[i + 2] == '=' && s[i + 3] == '=') : 0;
		int v[4];
		for (int k = 0; k < 4; k++) {
			v[k] = k >= 4 - pad ? 0 : b64_value(s[i + k]);
			if (v[k] < 0)
				return -1;
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
			     (uint32_t)v[3];
		int bytes = 3 - pad;
		if (n + (size_t)bytes > cap)
			return -1;
		out[n++] = (uint8_t)(w >> 16);
		if (bytes > 1)
			out[n++] = (uint8_t)(w >> 8);
		if (bytes > 2)
			out[n++] = (uint8_t)w;
	}
	return (long)n;
}

/* ---- message parsers ---- */

int sasl_plain_parse(const uint8_t *token, size_t len, struct sasl_plain *out)
{
	const char *p = (const char *)token;
	const char *nul1 = memchr(p, 0, len);
	const char *nul2 = nul1 ? memchr(nul1 + 1, 0, len - (size_t)(nul1 + 1 - p)) : NULL;
	if (!nul2)
		return SL_EPROTO; /* fewer than three parts */
	out->authzid = p;
	out->authzid_len = (size_t)(nul1 - p);
	out->user = nul1 + 1;
	out->user_len = (size_t)(nul2 - out->user);
	out->password = nul2 + 1;
	out->password_len = len - (size_t)(out->password - p);
	if (memchr(out->password, 0, out->password_len) || out->user_len == 0 ||
	    out->password_len == 0 || out->user_len > SL_SASL_USER_BYTES_MAX ||
	    out->authzid_len > SL_SASL_USER_BYTES_MAX ||
	    out->password_len > SL_SASL_PASSWORD_BYTES_MAX)
		return SL_EPROTO;
	return 0;
}

/* A saslname up to the next ',' (or the end) decoded into out: any byte
 * but NUL, ',' and '=', and "=2C" / "=3D" for ',' and '='. *pos moves
 * past it. */
static int saslname(const char *m, size_t len, size_t *pos, char *out, size_t cap)
{
	size_t i = *pos, n = 0;
	while (i < len && m[i] != ',') {
		char c = m[i];
		if (c == '=') {
			if (i + 2 < len && m[i + 1] == '2' && m[i + 2] == 'C')
				c = ',';
			else if (i + 2 < len && m[i + 1] == '3' && m[i + 2] == 'D')
				c = '=';
			else
				return SL_EPROTO;
			i += 2;
		} else if (c == 0) {
			return SL_EPROTO;
		}
		if (n + 1 >= cap)
			return SL_EPROTO;
		out[n++] = c;
		i++;
	}
	if (n == 0)
		return SL_EPROTO;
	out[n] = 0;
	*pos = i;
	return 0;
}

/* "key=" at pos: moves past it. */
static bool take_key(const char *m, size_t len, size_t *pos, const char *key)
{
	size_t k = strlen(key);
	if (len - *pos < k || memcmp(m + *pos, key, k))
		return false;
	*pos += k;
	return true;
}

/* A printable value without ',' (a nonce): its length, moving past it. */
static size_t printable(const char *m, size_t len, size_t *pos)
{
	size_t start = *pos;
	while (*pos < len && m[*pos] != ',' && m[*pos] >= 0x21 && m[*pos] <= 0x7e)
		(*pos)++;
	return *pos - start;
}

/* Extensions (",name=value")* up to end: accepted and ignored, as Kafka
 * ignores those it does not know. */
static bool extensions(const char *m, size_t end, size_t *pos)
{
	while (*pos < end) {
		if (m[*pos] != ',' || *pos + 2 >= end)
			return false;
		(*pos)++;
		size_t name = *pos;
		while (*pos < end && ((m[*pos] >= 'a' && m[*pos] <= 'z') || (m[*pos] >= 'A' && m[*pos] <= 'Z')))
			(*pos)++;
		if (*pos == name || *pos >= end || m[*pos] != '=')
			return false;
		(*pos)++;
		while (*pos < end && m[*pos] != ',' && m[*pos] != 0)
			(*pos)++;
	}
	return true;
}

int scram_client_first_parse(const uint8_t *msg, size_t len, struct scram_client_first *out)
{
	const char *m = (const char *)msg;
	size_t pos = 0;
	memset(out, 0, sizeof *out);
	if (len > SCRAM_AUTH_MESSAGE_BYTES_MAX / 2 || !take_key(m, len, &pos, "n,"))
		return SL_EPROTO;
	if (take_key(m, len, &pos, "a=") &&
	    saslname(m, len, &pos, out->authzid, sizeof out->authzid) != 0)
		return SL_EPROTO;
	if (pos >= len || m[pos] != ',')
		return SL_EPROTO;
	pos++;
	out->gs2_header = m;
	out->gs2_header_len = pos;
	out->bare = m + pos;
	out->bare_len = len - pos;
	/* "m=" would be a mandatory extension this server does not know. */
	if (!take_key(m, len, &pos, "n=") || saslname(m, len, &pos, out->user, sizeof out->user) != 0 ||
	    !take_key(m, len, &pos, ",r="))
		return SL_EPROTO;
	out->nonce = m + pos;
	out->nonce_len = printable(m, len, &pos);
	if (out->nonce_len == 0 || out->nonce_len > SL_SCRAM_NONCE_BYTES_MAX ||
	    !extensions(m, len, &pos))
		return SL_EPROTO;
	return 0;
}

int scram_client_final_parse(const uint8_t *msg, size_t len, struct scram_client_final *out)
{
	const char *m = (const char *)msg;
	memset(out, 0, sizeof *out);
	if (len > SCRAM_AUTH_MESSAGE_BYTES_MAX / 2)
		return SL_EPROTO;
	/* The proof is last: ",p=" and base64 to the end. */
	size_t p_at = 0;
	for (size_t i = len; i >= 3; i--) {
		if (!memcmp(m + i - 3, ",p=", 3)) {
			p_at = i - 3;
			break;
		}
	}
	size_t pos = 0;
	if (p_at == 0 || !take_key(m, p_at, &pos, "c="))
		return SL_EPROTO;
	size_t cb = pos;
	while (pos < p_at && m[pos] != ',')
		pos++;
	long n = sasl_base64_decode(m + cb, pos - cb, out->channel_binding,
				    sizeof out->channel_binding);
	if (n < 0 || !take_key(m, p_at, &pos, ",r="))
		return SL_EPROTO;
	out->channel_binding_len = (size_t)n;
	out->nonce = m + pos;
	out->nonce_len = printable(m, p_at, &pos);
	if (out->nonce_len == 0 || !extensions(m, p_at, &pos))
		return SL_EPROTO;
	out->without_proof_len = p_at;
	n = sasl_base64_decode(m + p_at + 3, len - p_at - 3, out->proof, sizeof out->proof);
	if (n <= 0)
		return SL_EPROTO;
	out->proof_len = (size_t)n;
	return 0;
}

/* ---- the exchange ---- */

void sasl_session_init(struct sasl_session *s)
{
	memset(s, 0, sizeof *s);
	s->state = SASL_STATE_INITIAL;
	s->offered = SASL_MECH_ALL;
}

void sasl_session_clear(struct sasl_session *s)
{
	OPENSSL_cleanse(s->password, sizeof s->password);
	OPENSSL_cleanse(&s->cred, sizeof s->cred);
	s->password_len = 0;
}

static int fail(struct sasl_session *s, enum sasl_failure why)
{
	s->state = SASL_STATE_FAILED;
	s->failure = why;
	sasl_session_clear(s);
	return SL_EPROTO;
}

bool sasl_api_versions(struct sasl_session *s)
{
	if (s->state != SASL_STATE_INITIAL)
		return false;
	s->state = SASL_STATE_HANDSHAKE;
	return true;
}

int sasl_handshake(struct sasl_session *s, const char *mech, size_t len, int16_t version)
{
	if (s->state != SASL_STATE_INITIAL && s->state != SASL_STATE_HANDSHAKE)
		return SL_EPROTO;
	s->mech = sasl_mech_parse(mech, len);
	if (s->mech == SASL_MECH_NONE || !(s->offered & SASL_MECH_BIT(s->mech))) {
		s->state = SASL_STATE_FAILED;
		return SL_EUNSUPPORTED;
	}
	s->raw = version == 0;
	s->state = SASL_STATE_AUTHENTICATE;
	return 0;
}

int sasl_first_token(struct sasl_session *s, const uint8_t *token, size_t len)
{
	if (s->state != SASL_STATE_AUTHENTICATE)
		return SL_EPROTO;
	if (s->mech == SASL_MECH_PLAIN) {
		struct sasl_plain p;
		if (sasl_plain_parse(token, len, &p) != 0)
			return fail(s, SASL_FAIL_CREDENTIALS);
		memcpy(s->user, p.user, p.user_len);
		s->user[p.user_len] = 0;
		memcpy(s->password, p.password, p.password_len);
		s->password_len = p.password_len;
		/* Kafka checks the password first, then the authorization id:
		 * remember a mismatch for sasl_lookup_done. */
		if (p.authzid_len && (p.authzid_len != p.user_len || memcmp(p.authzid, p.user, p.user_len)))
			s->failure = SASL_FAIL_AUTHZID;
		else
			s->failure = SASL_FAIL_PLAIN;
		s->state = SASL_STATE_LOOKUP;
		return 0;
	}
	struct scram_client_first f;
	if (scram_client_first_parse(token, len, &f) != 0)
		return fail(s, SASL_FAIL_CREDENTIALS);
	memcpy(s->user, f.user, sizeof s->user);
	s->failure = f.authzid[0] && strcmp(f.authzid, f.user) ? SASL_FAIL_AUTHZID
							       : SASL_FAIL_CREDENTIALS;
	memcpy(s->nonce, f.nonce, f.nonce_len);
	s->nonce_len = s->client_nonce_len = f.nonce_len;
	/* AuthMessage starts with client-first-message-bare ",". */
	memcpy(s->auth, f.bare, f.bare_len);
	s->auth[f.bare_len] = ',';
	s->auth_len = f.bare_len + 1;
	/* The gs2 header, for the channel binding check of the final
	 * message, is kept in the password buffer (unused by SCRAM). */
	memcpy(s->password, f.gs2_header, f.gs2_header_len);
	s->password_len = f.gs2_header_len;
	s->state = SASL_STATE_LOOKUP;
	return 0;
}

int sasl_lookup_done(struct sasl_session *s, const struct meta_scram_credential *creds, size_t n,
		     bool matched, const char *server_nonce, uint8_t *out, size_t cap,
		     size_t *out_len)
{
	*out_len = 0;
	if (s->state != SASL_STATE_LOOKUP)
		return SL_EPROTO;
	if (s->mech == SASL_MECH_PLAIN) {
		OPENSSL_cleanse(s->password, sizeof s->password);
		s->password_len = 0;
		if (!matched)
			return fail(s, SASL_FAIL_PLAIN);
		if (s->failure == SASL_FAIL_AUTHZID)
			return fail(s, SASL_FAIL_AUTHZID);
		s->state = SASL_STATE_COMPLETE;
		return 0;
	}
	const struct meta_scram_credential *c = NULL;
	for (size_t i = 0; i < n; i++)
		if (creds[i].mechanism == (int8_t)s->mech)
			c = &creds[i];
	if (!c || c->key_len != scram_hash_len(s->mech))
		return fail(s, SASL_FAIL_CREDENTIALS);
	if (s->failure == SASL_FAIL_AUTHZID)
		return fail(s, SASL_FAIL_AUTHZID);
	if (c->iterations < SL_SCRAM_ITERATIONS_MIN || c->salt_len == 0)
		return fail(s, SASL_FAIL_CREDENTIALS);
	size_t sn = strlen(server_nonce);
	if (s->nonce_len + sn >= sizeof s->nonce)
		return fail(s, SASL_FAIL_CREDENTIALS);
	memcpy(s->nonce + s->nonce_len, server_nonce, sn);
	s->nonce_len += sn;
	char salt[4 * ((META_SCRAM_SALT_BYTES + 2) / 3) + 1];
	sasl_base64_encode(c->salt, c->salt_len, salt);
	int len = snprintf((char *)out, cap, "r=%.*s,s=%s,i=%d", (int)s->nonce_len, s->nonce, salt,
			   (int)c->iterations);
	if (len < 0 || (size_t)len >= cap || s->auth_len + (size_t)len + 1 > sizeof s->auth)
		return fail(s, SASL_FAIL_CREDENTIALS);
	s->server_first_at = s->auth_len;
	s->server_first_len = (size_t)len;
	memcpy(s->auth + s->auth_len, out, (size_t)len);
	s->auth_len += (size_t)len;
	s->auth[s->auth_len++] = ',';
	s->cred = *c;
	s->state = SASL_STATE_SCRAM_FINAL;
	*out_len = (size_t)len;
	return 0;
}

int sasl_final_token(struct sasl_session *s, const uint8_t *token, size_t len, uint8_t *out,
		     size_t cap, size_t *out_len)
{
	*out_len = 0;
	if (s->state != SASL_STATE_SCRAM_FINAL)
		return SL_EPROTO;
	struct scram_client_final f;
	int mech = s->mech;
	size_t n = scram_hash_len(mech);
	/* The nonce must end with the exchange's (Kafka 3.8.1+ checks
	 * endsWith, not equals: librdkafka before 2.6.1 sends the client's
	 * nonce once more in front of it). */
	if (scram_client_final_parse(token, len, &f) != 0 || f.proof_len != n ||
	    f.nonce_len < s->nonce_len ||
	    memcmp(f.nonce + f.nonce_len - s->nonce_len, s->nonce, s->nonce_len) ||
	    f.channel_binding_len != s->password_len ||
	    memcmp(f.channel_binding, s->password, s->password_len) ||
	    s->auth_len + f.without_proof_len > sizeof s->auth)
		return fail(s, SASL_FAIL_CREDENTIALS);
	memcpy(s->auth + s->auth_len, token, f.without_proof_len);
	size_t auth_len = s->auth_len + f.without_proof_len;
	/* ClientKey = proof XOR HMAC(StoredKey, AuthMessage); the client
	 * knew the password if H(ClientKey) is the StoredKey. */
	uint8_t signature[META_SCRAM_KEY_BYTES], client_key[META_SCRAM_KEY_BYTES],
		stored[META_SCRAM_KEY_BYTES];
	hmac(mech, s->cred.stored_key, n, s->auth, auth_len, signature);
	for (size_t i = 0; i < n; i++)
		client_key[i] = f.proof[i] ^ signature[i];
	hash(mech, client_key, n, stored);
	bool ok = CRYPTO_memcmp(stored, s->cred.stored_key, n) == 0;
	OPENSSL_cleanse(client_key, sizeof client_key);
	if (!ok)
		return fail(s, SASL_FAIL_CREDENTIALS);
	hmac(mech, s->cred.server_key, n, s->auth, auth_len, signature);
	char v[4 * ((META_SCRAM_KEY_BYTES + 2) / 3) + 1];
	sasl_base64_encode(signature, n, v);
	int w = snprintf((char *)out, cap, "v=%s", v);
	if (w < 0 || (size_t)w >= cap)
		return fail(s, SASL_FAIL_CREDENTIALS);
	*out_len = (size_t)w;
	sasl_session_clear(s);
	s->state = SASL_STATE_COMPLETE;
	return 0;
}

void sasl_failure_message(const struct sasl_session *s, char *buf, size_t cap)
{
	switch (s->failure) {
	case SASL_FAIL_PLAIN:
		snprintf(buf, cap, "Authentication failed: Invalid username or password");
		break;
	case SASL_FAIL_AUTHZID:
		snprintf(buf, cap, "Authentication failed: Client requested an authorization id "
			 "that is different from username");
		break;
	default:
		snprintf(buf, cap, "Authentication failed during authentication due to invalid "
			 "credentials with SASL mechanism %s", sasl_mech_name(s->mech));
	}
}
