/* kclient.c — the tools' blocking Kafka client (kclient.h): connect
 * (TCP, then TLS and a SASL login when asked), frame a request with its
 * header, read and decode the answer. The SASL client side (PLAIN, and
 * SCRAM's client messages and proof, RFC 5802) lives here; the key
 * derivation and base64 are net/sasl.h's. */
#include "tools/kclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "base/err.h"
#include "base/limits.h"
#include "net/sasl.h"
#include "proto/header.h"
#include "proto/kerr.h"

#define PASSWORD_ENV "SLUICE_SASL_PASSWORD"
#define SCRAM_MIN_ITERATIONS 4096 /* Kafka's clients refuse fewer */

static int write_all(struct kclient *c, const uint8_t *p, size_t n)
{
	while (n) {
		size_t done = 0;
		ssize_t w;
		if (c->ssl)
			w = SSL_write_ex(c->ssl, p, n, &done) == 1 ? (ssize_t)done : -1;
		else
			w = write(c->fd, p, n);
		if (w < 0 && !c->ssl && errno == EINTR)
			continue;
		if (w <= 0)
			return SL_EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(struct kclient *c, uint8_t *p, size_t n)
{
	while (n) {
		size_t done = 0;
		ssize_t r;
		if (c->ssl)
			r = SSL_read_ex(c->ssl, p, n, &done) == 1 ? (ssize_t)done : -1;
		else
			r = read(c->fd, p, n);
		if (r < 0 && !c->ssl && errno == EINTR)
			continue;
		if (r <= 0)
			return SL_EIO;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* If argv[*i] is one of KCLIENT_SECURITY_USAGE's flags, take it and its
 * value (advancing *i) into sec: 1; 0 when it is none of them; -1, having
 * said why, for a bad or missing value. */
static int security_flag(struct kclient_security *sec, const char *tool, int argc, char **argv,
			 int *i)
{
	static const char *const flags[] = { "--security-protocol", "--tls-ca", "--tls-cert",
					     "--tls-key", "--sasl-mechanism", "--sasl-username" };
	const char *a = argv[*i];
	size_t k = 0;
	while (k < sizeof flags / sizeof flags[0] && strcmp(a, flags[k]))
		k++;
	if (k == sizeof flags / sizeof flags[0])
		return 0;
	if (*i + 1 >= argc || !argv[*i + 1][0]) {
		fprintf(stderr, "%s: %s needs a value\n", tool, a);
		return -1;
	}
	const char *v = argv[++*i];
	if (!sec->mechanism)
		sec->mechanism = SASL_MECH_SCRAM_SHA_512;
	switch (k) {
	case 0:
		if (strcmp(v, "PLAINTEXT") && strcmp(v, "SSL") && strcmp(v, "SASL_PLAINTEXT") &&
		    strcmp(v, "SASL_SSL")) {
			fprintf(stderr, "%s: --security-protocol is PLAINTEXT, SSL, SASL_PLAINTEXT or "
					"SASL_SSL\n", tool);
			return -1;
		}
		sec->tls = strstr(v, "SSL") != NULL;
		sec->sasl = strncmp(v, "SASL_", 5) == 0;
		return 1;
	case 1: sec->ca_file = v; return 1;
	case 2: sec->cert_file = v; return 1;
	case 3: sec->key_file = v; return 1;
	case 4:
		sec->mechanism = sasl_mech_parse(v, strlen(v));
		if (sec->mechanism == SASL_MECH_NONE) {
			fprintf(stderr, "%s: --sasl-mechanism is PLAIN, SCRAM-SHA-256 or "
					"SCRAM-SHA-512\n", tool);
			return -1;
		}
		return 1;
	default: sec->user = v; return 1;
	}
}

int kclient_args_parse(struct kclient_args *args, const char *tool, void (*usage)(FILE *out),
		       int argc, char **argv, kclient_arg_fn own, void *tool_args)
{
	const char *env = getenv("SLUICE_BOOTSTRAP");
	memset(args, 0, sizeof *args);
	args->bootstrap = env && *env ? env : "127.0.0.1:9092";
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int taken = security_flag(&args->sec, tool, argc, argv, &i);
		if (taken) {
			/* a security flag, or a bad one */
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--bootstrap") || !strcmp(a, "--bootstrap-server")) {
			if (++i < argc) {
				args->bootstrap = argv[i];
				taken = 1;
			} else {
				fprintf(stderr, "%s: %s needs a value\n", tool, a);
				taken = -1;
			}
		} else {
			taken = own(tool_args, argc, argv, &i) == 0 ? 1 : -1;
		}
		if (taken < 0) {
			usage(stderr);
			return 2;
		}
	}
	return -1;
}

static void print_tls_error(const char *tool, const char *what)
{
	unsigned long e = ERR_get_error();
	char msg[256] = "";
	if (e)
		ERR_error_string_n(e, msg, sizeof msg);
	fprintf(stderr, "%s: %s%s%s\n", tool, what, e ? ": " : "", msg);
	ERR_clear_error();
}

/* TLS over c->fd as a client of host: the broker's certificate chains
 * to the CAs and names host (a DNS name or an IP address). */
static int tls_start(struct kclient *c, const char *host, const struct kclient_security *sec)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	c->ssl_ctx = ctx;
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
		print_tls_error(c->tool, "TLS setup failed");
		return SL_EIO;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if ((sec->ca_file ? SSL_CTX_load_verify_locations(ctx, sec->ca_file, NULL)
			  : SSL_CTX_set_default_verify_paths(ctx)) != 1) {
		print_tls_error(c->tool, "cannot load --tls-ca");
		return SL_EIO;
	}
	if (sec->cert_file && (SSL_CTX_use_certificate_chain_file(ctx, sec->cert_file) != 1 ||
			       SSL_CTX_use_PrivateKey_file(ctx, sec->key_file ? sec->key_file
								       : sec->cert_file,
							   SSL_FILETYPE_PEM) != 1)) {
		print_tls_error(c->tool, "cannot load --tls-cert/--tls-key");
		return SL_EIO;
	}
	SSL *ssl = SSL_new(ctx);
	c->ssl = ssl;
	if (!ssl || SSL_set_fd(ssl, c->fd) != 1) {
		print_tls_error(c->tool, "TLS setup failed");
		return SL_EIO;
	}
	unsigned char addr[16];
	bool is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
	X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
	if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1
		  : (SSL_set_tlsext_host_name(ssl, host) != 1 || SSL_set1_host(ssl, host) != 1)) {
		print_tls_error(c->tool, "TLS setup failed");
		return SL_EIO;
	}
	if (SSL_connect(ssl) != 1) {
		long v = SSL_get_verify_result(ssl);
		if (v != X509_V_OK) {
			fprintf(stderr, "%s: TLS: the broker's certificate: %s\n", c->tool,
				X509_verify_cert_error_string(v));
			ERR_clear_error();
		} else {
			print_tls_error(c->tool, "TLS handshake failed");
		}
		return SL_EIO;
	}
	return 0;
}

/* ---- SASL ---- */

static void sasl_handshake_encode(struct kbuf *b, int16_t v, const void *m)
{
	kmsg_sasl_handshake_req_encode(b, v, m);
}

static int sasl_handshake_decode(struct kreader *r, int16_t v, void *m, struct arena *a)
{
	return kmsg_sasl_handshake_resp_decode(r, v, m, a);
}

static void sasl_authenticate_encode(struct kbuf *b, int16_t v, const void *m)
{
	kmsg_sasl_authenticate_req_encode(b, v, m);
}

static int sasl_authenticate_decode(struct kreader *r, int16_t v, void *m, struct arena *a)
{
	return kmsg_sasl_authenticate_resp_decode(r, v, m, a);
}

/* One SaslAuthenticate (v1) round: token out, the broker's in (a view
 * into the client's frames). A refusal is printed with Kafka's error. */
static int authenticate(struct kclient *c, const void *token, size_t len, kbytes *answer)
{
	struct kmsg_sasl_authenticate_req q;
	struct kmsg_sasl_authenticate_resp r;
	kmsg_sasl_authenticate_req_init(&q);
	kmsg_sasl_authenticate_resp_init(&r);
	q.auth_bytes = (kbytes){ token, (int32_t)len };
	int rc = kclient_call(c, KMSG_SASL_AUTHENTICATE_KEY, 1, sasl_authenticate_encode, &q,
			      sasl_authenticate_decode, &r);
	if (rc)
		return rc;
	if (r.error_code) {
		kclient_print_error(c, r.error_code, r.error_message, "SASL login");
		return SL_EIO;
	}
	*answer = r.auth_bytes;
	return 0;
}

/* "a=1,b=2": the value of attribute name in msg, or NULL. */
static const char *scram_attr(const char *msg, char name, size_t *len)
{
	for (const char *p = msg; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
		if (p[0] == name && p[1] == '=') {
			*len = strcspn(p + 2, ",");
			return p + 2;
		}
	}
	return NULL;
}

/* RFC 5802 as the client: client-first, the proof from server-first,
 * then the server's signature checked. */
static int scram_login(struct kclient *c, int mech, const char *user, const char *password)
{
	enum { MSG_MAX = 2048 };
	static char bare[MSG_MAX], first[MSG_MAX + 8], server_first[MSG_MAX], final[MSG_MAX],
		auth[3 * MSG_MAX];
	uint8_t raw_nonce[24];
	char nonce[64];
	if (RAND_bytes(raw_nonce, sizeof raw_nonce) != 1)
		return SL_EIO;
	sasl_base64_encode(raw_nonce, sizeof raw_nonce, nonce);
	/* saslname: ',' and '=' escaped */
	size_t o = (size_t)snprintf(bare, sizeof bare, "n=");
	for (const char *p = user; *p && o + 4 < sizeof bare; p++)
		o += (size_t)snprintf(bare + o, sizeof bare - o, "%s",
				      *p == ',' ? "=2C" : *p == '=' ? "=3D" : (char[]){ *p, 0 });
	snprintf(bare + o, sizeof bare - o, ",r=%s", nonce);
	snprintf(first, sizeof first, "n,,%s", bare);
	kbytes answer;
	int rc = authenticate(c, first, strlen(first), &answer);
	if (rc)
		return rc;
	if (answer.len <= 0 || (size_t)answer.len >= sizeof server_first)
		goto bad_server;
	memcpy(server_first, answer.ptr, (size_t)answer.len);
	server_first[answer.len] = 0;
	size_t nonce_len, salt_len, iter_len;
	const char *full_nonce = scram_attr(server_first, 'r', &nonce_len);
	const char *salt64 = scram_attr(server_first, 's', &salt_len);
	const char *iter = scram_attr(server_first, 'i', &iter_len);
	uint8_t salt[256];
	long salt_n = salt64 ? sasl_base64_decode(salt64, salt_len, salt, sizeof salt) : -1;
	long iterations = iter ? strtol(iter, NULL, 10) : 0;
	if (server_first[0] == 'm' || !full_nonce || nonce_len <= strlen(nonce) ||
	    strncmp(full_nonce, nonce, strlen(nonce)) || salt_n <= 0)
		goto bad_server;
	if (iterations < SCRAM_MIN_ITERATIONS || iterations > SL_SCRAM_ITERATIONS_MAX) {
		fprintf(stderr, "%s: SASL login: the broker asks for %ld SCRAM iterations (%d to %d "
				"taken)\n", c->tool, iterations, SCRAM_MIN_ITERATIONS,
			SL_SCRAM_ITERATIONS_MAX);
		return SL_EIO;
	}
	size_t h = scram_hash_len(mech);
	uint8_t salted[64], client_key[64], stored_key[64], signature[64], server_key[64];
	if (scram_salted_password(mech, (const uint8_t *)password, strlen(password), salt,
				  (size_t)salt_n, (int32_t)iterations, salted) != 0)
		return SL_EIO;
	scram_hmac(mech, salted, h, "Client Key", 10, client_key);
	scram_hash(mech, client_key, h, stored_key);
	int without_proof = snprintf(final, sizeof final, "c=biws,r=%.*s", (int)nonce_len,
				     full_nonce);
	snprintf(auth, sizeof auth, "%s,%s,%s", bare, server_first, final);
	scram_hmac(mech, stored_key, h, auth, strlen(auth), signature);
	uint8_t proof[64];
	for (size_t i = 0; i < h; i++)
		proof[i] = client_key[i] ^ signature[i];
	char proof64[100];
	sasl_base64_encode(proof, h, proof64);
	snprintf(final + without_proof, sizeof final - (size_t)without_proof, ",p=%s", proof64);
	rc = authenticate(c, final, strlen(final), &answer);
	if (!rc) {
		/* v=ServerSignature: the broker knew the password too */
		char server_final[256], want64[100];
		if (answer.len <= 0 || (size_t)answer.len >= sizeof server_final)
			goto bad_server;
		memcpy(server_final, answer.ptr, (size_t)answer.len);
		server_final[answer.len] = 0;
		scram_hmac(mech, salted, h, "Server Key", 10, server_key);
		scram_hmac(mech, server_key, h, auth, strlen(auth), signature);
		sasl_base64_encode(signature, h, want64);
		size_t vlen;
		const char *v = scram_attr(server_final, 'v', &vlen);
		if (!v || vlen != strlen(want64) || CRYPTO_memcmp(v, want64, vlen)) {
			fprintf(stderr, "%s: SASL login: the broker's SCRAM signature is wrong\n",
				c->tool);
			rc = SL_EIO;
		}
	}
	OPENSSL_cleanse(salted, sizeof salted);
	OPENSSL_cleanse(client_key, sizeof client_key);
	return rc;
bad_server:
	fprintf(stderr, "%s: SASL login: a SCRAM message the client cannot use\n", c->tool);
	return SL_EPROTO;
}

static int sasl_login(struct kclient *c, const struct kclient_security *sec)
{
	const char *password = getenv(PASSWORD_ENV);
	if (!sec->user || !password) {
		fprintf(stderr, "%s: SASL needs --sasl-username and $%s\n", c->tool, PASSWORD_ENV);
		return SL_EINVAL;
	}
	const char *mech = sasl_mech_name(sec->mechanism);
	struct kmsg_sasl_handshake_req q;
	struct kmsg_sasl_handshake_resp r;
	kmsg_sasl_handshake_req_init(&q);
	kmsg_sasl_handshake_resp_init(&r);
	q.mechanism = KSTR(mech);
	int rc = kclient_call(c, KMSG_SASL_HANDSHAKE_KEY, 1, sasl_handshake_encode, &q,
			      sasl_handshake_decode, &r);
	if (rc)
		return rc;
	if (r.error_code) {
		kclient_print_error(c, r.error_code, KSTR_NULL, "SASL mechanism %s", mech);
		return SL_EIO;
	}
	if (sec->mechanism != SASL_MECH_PLAIN)
		return scram_login(c, sec->mechanism, sec->user, password);
	/* PLAIN: NUL user NUL password */
	size_t ul = strlen(sec->user), pl = strlen(password);
	uint8_t *token = arena_alloc(&c->arena, ul + pl + 2);
	if (!token)
		return SL_ENOMEM;
	token[0] = 0;
	memcpy(token + 1, sec->user, ul);
	token[1 + ul] = 0;
	memcpy(token + 2 + ul, password, pl);
	kbytes answer;
	rc = authenticate(c, token, ul + pl + 2, &answer);
	OPENSSL_cleanse(token, ul + pl + 2);
	return rc;
}

int kclient_connect(struct kclient *c, const char *tool, const char *client_id,
		    const char *bootstrap, const struct kclient_security *sec)
{
	*c = (struct kclient){ .tool = tool, .client_id = client_id, .fd = -1 };
	char host[256];
	const char *colon = strrchr(bootstrap, ':');
	const char *h = bootstrap;
	size_t len = colon ? (size_t)(colon - bootstrap) : 0;
	if (len >= 2 && h[0] == '[' && h[len - 1] == ']') {
		h++;
		len -= 2;
	}
	if (!colon || len == 0 || len >= sizeof host || !colon[1]) {
		fprintf(stderr, "%s: bad --bootstrap %s (HOST:PORT)\n", tool, bootstrap);
		return SL_EINVAL;
	}
	memcpy(host, h, len);
	host[len] = 0;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || !res) {
		fprintf(stderr, "%s: cannot resolve %s\n", tool, bootstrap);
		return SL_EIO;
	}
	int err = 0;
	for (struct addrinfo *ai = res; ai && c->fd < 0; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			c->fd = fd;
		} else {
			err = errno;
			close(fd);
		}
	}
	freeaddrinfo(res);
	if (c->fd < 0) {
		fprintf(stderr, "%s: cannot connect to %s: %s\n", tool, bootstrap, strerror(err));
		return SL_EIO;
	}
	arena_init(&c->arena, SL_ARENA_BYTES_MAX);
	int rc = 0;
	if (sec && sec->tls)
		rc = tls_start(c, host, sec);
	if (!rc && sec && sec->sasl)
		rc = sasl_login(c, sec);
	if (rc)
		kclient_close(c);
	return rc;
}

void kclient_close(struct kclient *c)
{
	if (c->fd < 0)
		return;
	if (c->ssl)
		SSL_shutdown(c->ssl); /* close_notify, not waiting for the broker's */
	SSL_free(c->ssl);
	SSL_CTX_free(c->ssl_ctx);
	c->ssl = c->ssl_ctx = NULL;
	close(c->fd);
	c->fd = -1;
	for (int i = 0; i < c->frame_count; i++)
		free(c->frames[i]);
	c->frame_count = 0;
	arena_free(&c->arena);
}

int kclient_call(struct kclient *c, int16_t key, int16_t version, kclient_encode_fn enc,
		 const void *req, kclient_decode_fn dec, void *resp)
{
	struct kbuf b;
	kbuf_init(&b);
	kbuf_put_i32(&b, 0);
	kbuf_put_i16(&b, key);
	kbuf_put_i16(&b, version);
	int32_t corr = ++c->correlation_id;
	kbuf_put_i32(&b, corr);
	kbuf_put_i16(&b, (int16_t)strlen(c->client_id));
	kbuf_put(&b, c->client_id, strlen(c->client_id));
	if (proto_req_header_version(key, version) >= 2)
		kbuf_put_uvarint(&b, 0);
	enc(&b, version, req);
	if (b.oom) {
		kbuf_free(&b);
		return SL_ENOMEM;
	}
	kbuf_patch_i32(&b, 0, (int32_t)(b.len - 4));
	int rc = write_all(c, b.data, b.len);
	kbuf_free(&b);
	uint8_t size_bytes[4];
	if (!rc)
		rc = read_all(c, size_bytes, 4);
	if (rc) {
		fprintf(stderr, "%s: connection lost\n", c->tool);
		return rc;
	}
	uint32_t size = be32_load(size_bytes);
	if (size < 4 || size > SL_TOOL_RESPONSE_BYTES_MAX || c->frame_count == KCLIENT_FRAMES_MAX) {
		fprintf(stderr, "%s: bad response size %u\n", c->tool, size);
		return SL_EPROTO;
	}
	uint8_t *frame = malloc(size);
	if (!frame)
		return SL_ENOMEM;
	c->frames[c->frame_count++] = frame;
	if (read_all(c, frame, size) != 0) {
		fprintf(stderr, "%s: connection lost\n", c->tool);
		return SL_EIO;
	}
	struct kreader r;
	kreader_init(&r, frame, size);
	if (kreader_i32(&r) != corr) {
		fprintf(stderr, "%s: response out of order\n", c->tool);
		return SL_EPROTO;
	}
	if (proto_resp_header_version(key, version) >= 1) {
		uint64_t tags = kreader_uvarint(&r);
		for (uint64_t i = 0; i < tags && !r.err; i++) {
			kreader_uvarint(&r);
			kreader_skip(&r, (size_t)kreader_uvarint(&r));
		}
	}
	if (r.err || dec(&r, version, resp, &c->arena) != 0) {
		fprintf(stderr, "%s: malformed response to api %d v%d\n", c->tool, key, version);
		return SL_EPROTO;
	}
	return 0;
}

void kclient_print_kstr(kstr s, int width)
{
	printf("%-*.*s", width, s.len > 0 ? s.len : 0, s.len > 0 ? s.ptr : "");
}

void kclient_print_error(const struct kclient *c, int16_t code, kstr message,
			 const char *what_fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", c->tool);
	va_start(ap, what_fmt);
	vfprintf(stderr, what_fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s (%d)", kerr_name(code), code);
	if (message.len > 0)
		fprintf(stderr, ": %.*s", message.len, message.ptr);
	fprintf(stderr, "\n");
}

static void incremental_alter_configs_encode(struct kbuf *b, int16_t v, const void *m)
{
	kmsg_incremental_alter_configs_req_encode(b, v, m);
}

static int incremental_alter_configs_decode(struct kreader *r, int16_t v, void *m, struct arena *a)
{
	return kmsg_incremental_alter_configs_resp_decode(r, v, m, a);
}

int kclient_alter_configs(struct kclient *c, int8_t type, const char *name,
			  struct kmsg_incremental_alter_configs_req_alterable_config *ops, int32_t n)
{
	struct kmsg_incremental_alter_configs_req q;
	struct kmsg_incremental_alter_configs_resp r;
	struct kmsg_incremental_alter_configs_req_alter_configs_resource res;
	kmsg_incremental_alter_configs_req_init(&q);
	kmsg_incremental_alter_configs_resp_init(&r);
	kmsg_incremental_alter_configs_req_alter_configs_resource_init(&res);
	res.resource_type = type;
	res.resource_name = KSTR(name);
	res.configs = ops;
	res.configs_count = n;
	q.resources = &res;
	q.resources_count = 1;
	/* v1: flexible; served by Kafka 2.4+ */
	if (kclient_call(c, KMSG_INCREMENTAL_ALTER_CONFIGS_KEY, 1, incremental_alter_configs_encode,
			 &q, incremental_alter_configs_decode, &r) != 0 || r.responses_count != 1)
		return 1;
	const char *kind = type == 2 ? "topic" : "broker";
	if (r.responses[0].error_code) {
		kclient_print_error(c, r.responses[0].error_code, r.responses[0].error_message,
				    "alter %s %s", kind, name);
		return 1;
	}
	printf("Completed updating config for %s %s.\n", kind, name);
	return 0;
}

void kclient_uuid_string(const uint8_t uuid[16], char out[23])
{
	static const char digits[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	for (int i = 0; i < 16; i += 3) {
		uint32_t v = (uint32_t)uuid[i] << 16;
		if (i + 1 < 16)
			v |= (uint32_t)uuid[i + 1] << 8;
		if (i + 2 < 16)
			v |= uuid[i + 2];
		int chars = i + 2 < 16 ? 4 : i + 1 < 16 ? 3 : 2;
		for (int k = 0; k < chars; k++)
			out[o++] = digits[(v >> (18 - 6 * k)) & 63];
	}
	out[o] = 0;
}
