/* s3_pure.c — the S3 store's logic that does no I/O, declared in
 * s3_int.h so the unit tests reach it directly: the s3:// URL and the
 * request base URL it resolves to, URI encoding for SigV4, the XML of
 * ListObjectsV2 pages, DeleteObjects requests and answers and error bodies
 * (expat), timestamps, the shared credentials file's text, and the retry
 * policy (which failures to retry, backoff with full jitter, deadlines),
 * run against an injectable clock. */
#include <ctype.h>
#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "base/buf.h"
#include "base/err.h"
#include "objstore/s3_int.h"
static void why_set(char *why, size_t cap, const char *fmt, const char *arg)
{
	if (why && cap)
		snprintf(why, cap, fmt, arg ? arg : "");
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* %-decode [s, s+n) into out (cap bytes, NUL included). */
static int pct_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= n)
				return SL_EINVAL;
			int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
			if (h < 0 || l < 0)
				return SL_EINVAL;
			c = h * 16 + l;
			i += 2;
		}
		if (c == 0 || o + 1 >= cap)
			return SL_EINVAL;
		out[o++] = (char)c;
	}
	out[o] = 0;
	return 0;
}

static int parse_bool(const char *v, int *out)
{
	if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes")) {
		*out = 1;
		return 0;
	}
	if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no")) {
		*out = 0;
		return 0;
	}
	return SL_EINVAL;
}

static int parse_ms(const char *v, uint32_t *out)
{
	if (!*v || strlen(v) > 10)
		return SL_EINVAL;
	uint64_t n = 0;
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9')
			return SL_EINVAL;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (n < S3_TIMEOUT_MS_MIN || n > S3_TIMEOUT_MS_MAX)
		return SL_EINVAL;
	*out = (uint32_t)n;
	return 0;
}

static int bucket_check(const char *b, size_t n)
{
	if (n < 3 || n > S3_BUCKET_MAX)
		return SL_EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = b[i];
		if (!(isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_'))
			return SL_EINVAL;
	}
	return 0;
}

/* "http[s]://host[:port][/]": host of letters, digits, '.', '-', or a
 * bracketed IPv6 address; the port all digits. */
static int endpoint_check(char *e)
{
	const char *host;
	if (!strncmp(e, "http://", 7))
		host = e + 7;
	else if (!strncmp(e, "https://", 8))
		host = e + 8;
	else
		return SL_EINVAL;
	size_t n = strlen(e);
	if (n > 0 && e[n - 1] == '/')
		e[--n] = 0;
	if (!*host)
		return SL_EINVAL;
	const char *p = host;
	if (*p == '[') {
		const char *close = strchr(p, ']');
		if (!close)
			return SL_EINVAL;
		p = close + 1;
	} else {
		while (*p && (isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_'))
			p++;
		if (p == host)
			return SL_EINVAL;
	}
	if (*p == ':') {
		p++;
		if (!*p)
			return SL_EINVAL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p ? SL_EINVAL : 0;
}

int s3_url_parse(const char *url, struct s3_config *out, char *why, size_t why_cap)
{
	memset(out, 0, sizeof *out);
	out->path_style = -1;
	out->verify_tls = 1;
	out->payload_signing = -1;
	out->attempt_timeout_ms = S3_ATTEMPT_TIMEOUT_MS_DEFAULT;
	out->total_timeout_ms = S3_TOTAL_TIMEOUT_MS_DEFAULT;
	if (!url || strncmp(url, "s3://", 5) != 0) {
		why_set(why, why_cap, "does not start with s3://", NULL);
		return SL_EINVAL;
	}
	const char *b = url + 5;
	size_t bn = strcspn(b, "/?#");
	if (bucket_check(b, bn)) {
		why_set(why, why_cap, "bucket name must be 3-63 letters, digits, '.', '-' or '_'",
			NULL);
		return SL_EINVAL;
	}
	memcpy(out->bucket, b, bn);
	out->bucket[bn] = 0;

	const char *p = b + bn;
	if (*p == '#') {
		why_set(why, why_cap, "'#' is not allowed", NULL);
		return SL_EINVAL;
	}
	while (*p == '/')
		p++;
	size_t pn = strcspn(p, "?#");
	if (p[pn] == '#') {
		why_set(why, why_cap, "'#' is not allowed", NULL);
		return SL_EINVAL;
	}
	/* The prefix is used verbatim (no %-decoding): printable ASCII,
	 * no empty, "." or ".." components. */
	while (pn > 0 && p[pn - 1] == '/')
		pn--;
	if (pn + 1 > S3_PREFIX_MAX) {
		why_set(why, why_cap, "prefix is too long", NULL);
		return SL_EINVAL;
	}
	for (size_t i = 0; i < pn; i++) {
		if (p[i] <= 0x20 || p[i] >= 0x7f || p[i] == '\\') {
			why_set(why, why_cap, "prefix must be printable ASCII without spaces", NULL);
			return SL_EINVAL;
		}
	}
	if (pn) {
		memcpy(out->prefix, p, pn);
		out->prefix[pn] = '/';
		out->prefix[pn + 1] = 0;
		for (const char *c = out->prefix; *c;) {
			size_t len = strcspn(c, "/");
			if (len == 0 || (len == 1 && c[0] == '.') ||
			    (len == 2 && c[0] == '.' && c[1] == '.')) {
				why_set(why, why_cap, "prefix has an empty, '.' or '..' component",
					NULL);
				return SL_EINVAL;
			}
			c += len + 1;
		}
	}

	const char *q = p + strcspn(p, "?");
	if (*q != '?')
		return 0;
	q++;
	while (*q) {
		size_t n = strcspn(q, "&");
		const char *eq = memchr(q, '=', n);
		char name[32], value[S3_ENDPOINT_MAX + 1];
		if (n == 0) {
			q++;
			continue;
		}
		if (!eq || (size_t)(eq - q) >= sizeof name) {
			why_set(why, why_cap, "query parameters must be NAME=VALUE", NULL);
			return SL_EINVAL;
		}
		memcpy(name, q, (size_t)(eq - q));
		name[eq - q] = 0;
		if (pct_decode(eq + 1, n - (size_t)(eq - q) - 1, value, sizeof value)) {
			why_set(why, why_cap, "value of '%s' is too long or badly %%-encoded", name);
			return SL_EINVAL;
		}
		int bad = 0;
		if (!strcmp(name, "endpoint")) {
			bad = strlen(value) > S3_ENDPOINT_MAX || endpoint_check(value);
			if (!bad)
				snprintf(out->endpoint, sizeof out->endpoint, "%s", value);
		} else if (!strcmp(name, "region")) {
			size_t rn = strlen(value);
			bad = rn == 0 || rn > S3_REGION_MAX;
			for (size_t i = 0; i < rn && !bad; i++)
				bad = !(isalnum((unsigned char)value[i]) || value[i] == '-' ||
					value[i] == '_');
			if (!bad)
				memcpy(out->region, value, rn + 1);
		} else if (!strcmp(name, "path_style")) {
			bad = parse_bool(value, &out->path_style) != 0;
		} else if (!strcmp(name, "verify_tls")) {
			bad = parse_bool(value, &out->verify_tls) != 0;
		} else if (!strcmp(name, "payload_signing")) {
			bad = parse_bool(value, &out->payload_signing) != 0;
		} else if (!strcmp(name, "timeout_ms")) {
			bad = parse_ms(value, &out->attempt_timeout_ms) != 0;
		} else if (!strcmp(name, "total_timeout_ms")) {
			bad = parse_ms(value, &out->total_timeout_ms) != 0;
		} else {
			why_set(why, why_cap,
				"unknown parameter '%s' (expected endpoint, region, path_style, "
				"verify_tls, payload_signing, timeout_ms, total_timeout_ms)",
				name);
			return SL_EINVAL;
		}
		if (bad) {
			why_set(why, why_cap, "bad value for '%s'", name);
			return SL_EINVAL;
		}
		q += n;
		if (*q == '&')
			q++;
	}
	if (out->total_timeout_ms < out->attempt_timeout_ms)
		out->total_timeout_ms = out->attempt_timeout_ms;
	return 0;
}

int s3_config_resolve(struct s3_config *c, const char *env_region, char *base, size_t base_cap)
{
	if (!c->region[0]) {
		const char *r = env_region && *env_region ? env_region : "us-east-1";
		if (strlen(r) > S3_REGION_MAX)
			return SL_EINVAL;
		strcpy(c->region, r);
	}
	int aws = !c->endpoint[0];
	if (aws) {
		int n = snprintf(c->endpoint, sizeof c->endpoint, "https://s3.%s.amazonaws.com",
				 c->region);
		if (n < 0 || (size_t)n >= sizeof c->endpoint)
			return SL_EINVAL;
	}
	if (c->path_style < 0)
		/* Dotted bucket names break TLS with virtual hosts: the SDKs
		 * fall back to path style for them, so do we. */
		c->path_style = !aws || strchr(c->bucket, '.') != NULL;
	if (c->payload_signing < 0)
		/* Hashing a body costs ~0.65 CPU s/GB (SHA-256 at 1.5 GB/s):
		 * worth it only where nothing else guards the body. */
		c->payload_signing = strncmp(c->endpoint, "https://", 8) != 0;
	int n;
	if (c->path_style) {
		n = snprintf(base, base_cap, "%s/%s", c->endpoint, c->bucket);
	} else {
		const char *host = strstr(c->endpoint, "://") + 3;
		n = snprintf(base, base_cap, "%.*s%s.%s", (int)(host - c->endpoint), c->endpoint,
			     c->bucket, host);
	}
	if (n < 0 || (size_t)n >= base_cap)
		return SL_EINVAL;
	return 0;
}

int s3_uri_encode(const char *in, int keep_slash, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		int keep = isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~' ||
			   (keep_slash && *p == '/');
		if (keep) {
			if (o + 2 > cap)
				return SL_EINVAL;
			out[o++] = (char)*p;
		} else {
			if (o + 4 > cap)
				return SL_EINVAL;
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	if (o + 1 > cap)
		return SL_EINVAL;
	out[o] = 0;
	return 0;
}

int64_t s3_time_parse_ms(const char *s)
{
	int y, mo, d, h, mi, se, used = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &se, &used) != 6 ||
	    used != 19)
		return -1;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return -1;
	const char *p = s + used;
	int ms = 0;
	if (*p == '.') {
		int digits = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				ms = ms * 10 + (*p - '0');
		if (digits == 0)
			return -1;
		for (; digits < 3; digits++)
			ms *= 10;
	}
	if (strcmp(p, "Z") != 0 && *p)
		return -1;
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
			 .tm_hour = h, .tm_min = mi, .tm_sec = se };
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	return (int64_t)t * 1000 + ms;
}

/* ---- XML (expat) ---- */

/* The text of one element we want; keys are the longest (1024). */
#define XML_TEXT_MAX 4096
#define XML_DEPTH_MAX 64

enum xml_kind { XML_LIST, XML_ERROR, XML_DELETE };

struct xml_ctx {
	XML_Parser parser;
	enum xml_kind kind;
	int rc;
	int depth;
	int in_contents;
	int capture; /* collecting text for the current element */
	char text[XML_TEXT_MAX + 1];
	size_t text_len;
	/* list */
	struct s3_list_page *page;
	size_t cap;
	struct s3_list_entry cur;
	int cur_has_key;
	/* error */
	char *code, *msg;
	size_t code_cap, msg_cap;
	int seen_root;
	/* DeleteObjects result: the <Error> entry being read */
	int in_del_error;
	char del_key[S3_PREFIX_MAX + S3_KEY_MAX + 2];
	char del_code[64];
	char del_msg[256];
	size_t deleted, errors;
	s3_delete_error_fn del_fn;
	void *del_arg;
};

static void xml_fail(struct xml_ctx *x, int rc)
{
	if (x->rc == 0)
		x->rc = rc;
	XML_StopParser(x->parser, XML_FALSE);
}

static void XMLCALL xml_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
	struct xml_ctx *x = arg;
	if (x->rc)
		return;
	x->depth++;
	if (x->depth > XML_DEPTH_MAX) {
		xml_fail(x, SL_EPROTO);
		return;
	}
	x->capture = 0;
	x->text_len = 0;
	if (x->depth == 1) {
		const char *want = x->kind == XML_LIST	 ? "ListBucketResult"
				   : x->kind == XML_ERROR ? "Error"
							  : "DeleteResult";
		if (strcmp(name, want) != 0) {
			xml_fail(x, SL_EPROTO);
			return;
		}
		x->seen_root = 1;
		return;
	}
	if (x->kind == XML_ERROR) {
		x->capture = x->depth == 2 && (!strcmp(name, "Code") || !strcmp(name, "Message"));
		return;
	}
	if (x->kind == XML_DELETE) {
		if (x->depth == 2 && !strcmp(name, "Error")) {
			x->in_del_error = 1;
			x->del_key[0] = x->del_code[0] = x->del_msg[0] = 0;
		}
		x->capture = x->depth == 3 && x->in_del_error &&
			     (!strcmp(name, "Key") || !strcmp(name, "Code") ||
			      !strcmp(name, "Message"));
		return;
	}
	if (x->depth == 2) {
		if (!strcmp(name, "Contents")) {
			x->in_contents = 1;
			memset(&x->cur, 0, sizeof x->cur);
			x->cur_has_key = 0;
		} else {
			x->capture = !strcmp(name, "IsTruncated") ||
				     !strcmp(name, "NextContinuationToken");
		}
	} else if (x->depth == 3 && x->in_contents) {
		x->capture = !strcmp(name, "Key") || !strcmp(name, "Size") ||
			     !strcmp(name, "LastModified");
	}
}

static void XMLCALL xml_chars(void *arg, const XML_Char *s, int len)
{
	struct xml_ctx *x = arg;
	if (x->rc || !x->capture || len <= 0)
		return;
	if (x->text_len + (size_t)len > XML_TEXT_MAX) {
		xml_fail(x, SL_ELIMIT);
		return;
	}
	memcpy(x->text + x->text_len, s, (size_t)len);
	x->text_len += (size_t)len;
}

static int parse_u64(const char *s, uint64_t *out)
{
	if (!*s || strlen(s) > 20)
		return SL_EPROTO;
	uint64_t n = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return SL_EPROTO;
		uint64_t d = (uint64_t)(*s - '0');
		if (n > (UINT64_MAX - d) / 10)
			return SL_EPROTO;
		n = n * 10 + d;
	}
	*out = n;
	return 0;
}

static int list_push(struct xml_ctx *x)
{
	struct s3_list_page *pg = x->page;
	if (!x->cur_has_key)
		return SL_EPROTO;
	if (pg->n >= SL_S3_LIST_ENTRIES_MAX)
		return SL_ELIMIT;
	if (pg->n == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 64;
		struct s3_list_entry *v = realloc(pg->v, cap * sizeof *v);
		if (!v)
			return SL_ENOMEM;
		pg->v = v;
		x->cap = cap;
	}
	pg->v[pg->n++] = x->cur;
	memset(&x->cur, 0, sizeof x->cur);
	x->cur_has_key = 0;
	return 0;
}

static void XMLCALL xml_end(void *arg, const XML_Char *name)
{
	struct xml_ctx *x = arg;
	if (x->rc)
		return;
	int was_capture = x->capture;
	x->capture = 0;
	x->text[x->text_len] = 0;
	int depth = x->depth--;
	if (x->kind == XML_ERROR) {
		if (!was_capture)
			return;
		if (!strcmp(name, "Code"))
			snprintf(x->code, x->code_cap, "%s", x->text);
		else
			snprintf(x->msg, x->msg_cap, "%s", x->text);
		return;
	}
	if (x->kind == XML_DELETE) {
		if (depth == 2 && !strcmp(name, "Deleted")) {
			x->deleted++;
		} else if (depth == 2 && !strcmp(name, "Error")) {
			x->in_del_error = 0;
			if (!x->del_key[0]) {
				xml_fail(x, SL_EPROTO);
				return;
			}
			x->errors++;
			if (x->del_fn)
				x->del_fn(x->del_arg, x->del_key, x->del_code, x->del_msg);
		} else if (was_capture && !strcmp(name, "Key")) {
			if (x->text_len >= sizeof x->del_key) {
				xml_fail(x, SL_ELIMIT);
				return;
			}
			memcpy(x->del_key, x->text, x->text_len + 1);
		} else if (was_capture && !strcmp(name, "Code")) {
			snprintf(x->del_code, sizeof x->del_code, "%.*s",
				 (int)sizeof x->del_code - 1, x->text);
		} else if (was_capture) {
			snprintf(x->del_msg, sizeof x->del_msg, "%.*s",
				 (int)sizeof x->del_msg - 1, x->text);
		}
		return;
	}
	int rc = 0;
	if (depth == 2 && !strcmp(name, "Contents")) {
		x->in_contents = 0;
		rc = list_push(x);
	} else if (was_capture && depth == 2 && !strcmp(name, "IsTruncated")) {
		x->page->truncated = !strcmp(x->text, "true");
	} else if (was_capture && depth == 2) { /* NextContinuationToken */
		free(x->page->next_token);
		x->page->next_token = strdup(x->text);
		if (!x->page->next_token)
			rc = SL_ENOMEM;
	} else if (was_capture && !strcmp(name, "Key")) {
		if (x->text_len == 0 || x->text_len > S3_KEY_MAX) {
			rc = x->text_len ? SL_ELIMIT : SL_EPROTO;
		} else {
			free(x->cur.key);
			x->cur.key = strdup(x->text);
			x->cur_has_key = x->cur.key != NULL;
			if (!x->cur.key)
				rc = SL_ENOMEM;
		}
	} else if (was_capture && !strcmp(name, "Size")) {
		rc = parse_u64(x->text, &x->cur.size);
	} else if (was_capture) { /* LastModified */
		int64_t t = s3_time_parse_ms(x->text);
		x->cur.mtime_ms = t < 0 ? 0 : t;
	}
	if (rc)
		xml_fail(x, rc);
}

/* A DOCTYPE may declare entities (billion laughs); S3 never sends one. */
static void XMLCALL xml_doctype(void *arg, const XML_Char *name, const XML_Char *sysid,
				const XML_Char *pubid, int has_internal_subset)
{
	xml_fail(arg, SL_EPROTO);
}

static int xml_run(struct xml_ctx *x, const char *xml, size_t len)
{
	if (len > SL_S3_RESPONSE_BYTES_MAX)
		return SL_ELIMIT;
	x->parser = XML_ParserCreate(NULL);
	if (!x->parser)
		return SL_ENOMEM;
	XML_SetUserData(x->parser, x);
	XML_SetElementHandler(x->parser, xml_start, xml_end);
	XML_SetCharacterDataHandler(x->parser, xml_chars);
	XML_SetStartDoctypeDeclHandler(x->parser, xml_doctype);
	enum XML_Status st = XML_Parse(x->parser, xml, (int)len, XML_TRUE);
	int rc = x->rc;
	if (rc == 0 && (st != XML_STATUS_OK || !x->seen_root))
		rc = SL_EPROTO;
	XML_ParserFree(x->parser);
	return rc;
}

void s3_list_page_free(struct s3_list_page *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].key);
	free(p->v);
	free(p->next_token);
	memset(p, 0, sizeof *p);
}

int s3_xml_list_parse(const char *xml, size_t len, struct s3_list_page *out)
{
	memset(out, 0, sizeof *out);
	struct xml_ctx x = { .kind = XML_LIST, .page = out };
	int rc = xml_run(&x, xml, len);
	free(x.cur.key);
	if (rc)
		s3_list_page_free(out);
	return rc;
}

int s3_xml_error_parse(const char *xml, size_t len, char *code, size_t code_cap, char *msg,
		       size_t msg_cap)
{
	if (code_cap)
		code[0] = 0;
	if (msg_cap)
		msg[0] = 0;
	if (!code_cap || !msg_cap)
		return SL_EINVAL;
	struct xml_ctx x = { .kind = XML_ERROR, .code = code, .code_cap = code_cap,
			     .msg = msg, .msg_cap = msg_cap };
	int rc = xml_run(&x, xml, len);
	if (rc) {
		code[0] = 0;
		msg[0] = 0;
	}
	return rc;
}

int s3_xml_delete_parse(const char *xml, size_t len, size_t *deleted, size_t *errors,
			s3_delete_error_fn fn, void *arg)
{
	struct xml_ctx x = { .kind = XML_DELETE, .del_fn = fn, .del_arg = arg };
	int rc = xml_run(&x, xml, len);
	*deleted = rc ? 0 : x.deleted;
	*errors = rc ? 0 : x.errors;
	return rc;
}

int s3_delete_body(const char *prefix, const char *const *keys, size_t n, struct kbuf *out)
{
	if (n == 0 || n > S3_DELETE_KEYS_MAX)
		return SL_EINVAL;
	size_t plen = strlen(prefix);
	if (plen > S3_PREFIX_MAX)
		return SL_EINVAL;
	out->len = 0;
	static const char head[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
				   "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
				   "<Quiet>true</Quiet>";
	kbuf_put(out, head, sizeof head - 1);
	for (size_t i = 0; i < n; i++) {
		size_t kn = strlen(keys[i]);
		if (kn == 0 || kn > S3_KEY_MAX)
			return SL_EINVAL;
		kbuf_put(out, "<Object><Key>", 13);
		for (int part = 0; part < 2; part++) {
			const char *k = part ? keys[i] : prefix;
			for (; *k; k++) {
				const char *esc = NULL;
				switch (*k) {
				case '&': esc = "&amp;"; break;
				case '<': esc = "&lt;"; break;
				case '>': esc = "&gt;"; break;
				case '"': esc = "&quot;"; break;
				case '\'': esc = "&apos;"; break;
				}
				if (esc)
					kbuf_put(out, esc, strlen(esc));
				else
					kbuf_put(out, k, 1);
			}
		}
		kbuf_put(out, "</Key></Object>", 15);
	}
	kbuf_put(out, "</Delete>", 9);
	return out->oom ? SL_ENOMEM : 0;
}

/* ---- credentials file ---- */

static void trim(const char **s, size_t *n)
{
	while (*n && isspace((unsigned char)**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && isspace((unsigned char)(*s)[*n - 1]))
		(*n)--;
}

static void copy_n(char *out, size_t cap, const char *s, size_t n)
{
	if (!cap)
		return;
	if (n >= cap)
		n = cap - 1;
	memcpy(out, s, n);
	out[n] = 0;
}

int s3_profile_parse(const char *text, const char *profile, char *key_id, size_t key_id_cap,
		     char *secret, size_t secret_cap, char *token, size_t token_cap)
{
	copy_n(key_id, key_id_cap, "", 0);
	copy_n(secret, secret_cap, "", 0);
	copy_n(token, token_cap, "", 0);
	size_t plen = strlen(profile);
	int in = 0;
	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line) : strlen(line);
		const char *s = line;
		line = nl ? nl + 1 : NULL;
		trim(&s, &n);
		if (n == 0 || s[0] == '#' || s[0] == ';')
			continue;
		if (s[0] == '[') {
			if (s[n - 1] != ']') {
				in = 0;
				continue;
			}
			s++;
			n -= 2;
			trim(&s, &n);
			if (n > 8 && !strncmp(s, "profile", 7) && isspace((unsigned char)s[7])) {
				s += 8;
				n -= 8;
				trim(&s, &n);
			}
			in = n == plen && !strncmp(s, profile, n);
			continue;
		}
		if (!in)
			continue;
		const char *eq = memchr(s, '=', n);
		if (!eq)
			continue;
		const char *k = s, *v = eq + 1;
		size_t kn = (size_t)(eq - s), vn = n - kn - 1;
		trim(&k, &kn);
		trim(&v, &vn);
		if (kn == 17 && !strncmp(k, "aws_access_key_id", kn))
			copy_n(key_id, key_id_cap, v, vn);
		else if (kn == 21 && !strncmp(k, "aws_secret_access_key", kn))
			copy_n(secret, secret_cap, v, vn);
		else if (kn == 17 && !strncmp(k, "aws_session_token", kn))
			copy_n(token, token_cap, v, vn);
	}
	return key_id_cap && secret_cap && key_id[0] && secret[0] ? 0 : SL_ENOTFOUND;
}

/* ---- retries ---- */

int s3_retryable(int curl_code, long http_status, const char *error_code)
{
	if (curl_code) {
		switch (curl_code) {
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_CONNECT:
		case CURLE_WEIRD_SERVER_REPLY:
		case CURLE_HTTP2:
		case CURLE_PARTIAL_FILE:
		case CURLE_OPERATION_TIMEDOUT:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_HTTP2_STREAM:
		case CURLE_HTTP3:
		case CURLE_QUIC_CONNECT_ERROR:
			return 1;
		default:
			return 0;
		}
	}
	/* The codes AWS SDKs treat as throttling or transient, whatever the
	 * status they come with. */
	static const char *const codes[] = {
		"SlowDown", "Throttling", "ThrottlingException", "ThrottledException",
		"RequestThrottledException", "TooManyRequestsException",
		"RequestLimitExceeded", "BandwidthLimitExceeded", "RequestThrottled",
		"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete",
		"InternalError", "ServiceUnavailable", "RequestTimeTooSkewed",
	};
	if (error_code && *error_code)
		for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
			if (!strcmp(error_code, codes[i]))
				return 1;
	if (http_status == 429)
		return 1;
	if (http_status >= 500 && http_status <= 599 && http_status != 501)
		return 1;
	return 0;
}

uint64_t s3_backoff_ms(const struct s3_retry_policy *p, unsigned retry, uint64_t random)
{
	uint64_t cap = p->cap_ms;
	uint64_t ceil = p->base_ms;
	for (unsigned i = 0; i < retry && ceil < cap; i++)
		ceil *= 2;
	if (ceil > cap)
		ceil = cap;
	return random % (ceil + 1);
}

uint32_t s3_retry_timeout_ms(const struct s3_retry_policy *p, int64_t deadline_ms, int64_t now)
{
	int64_t left = deadline_ms - now;
	uint32_t timeout = p->attempt_timeout_ms;
	if (left < (int64_t)timeout)
		timeout = left > 0 ? (uint32_t)left : 1;
	return timeout;
}

int s3_retry_next(const struct s3_retry_policy *p, int64_t deadline_ms, int64_t now,
		  unsigned attempts, uint64_t random, int64_t *delay_ms)
{
	*delay_ms = 0;
	if (attempts == 0 || (p->attempts_max && attempts >= p->attempts_max))
		return 0;
	int64_t delay = (int64_t)s3_backoff_ms(p, attempts - 1, random);
	/* Give the next attempt at least a little time. */
	if (now + delay + S3_TIMEOUT_MS_MIN / 2 >= deadline_ms)
		return 0;
	*delay_ms = delay;
	return 1;
}

int s3_retry_run(const struct s3_retry_policy *p, const struct s3_clock *clk,
		 s3_attempt_fn attempt, void *arg, unsigned *retries)
{
	int64_t deadline = clk->now_ms(clk->arg) + (int64_t)p->total_timeout_ms;
	unsigned n = 0;
	*retries = 0;
	for (;;) {
		uint32_t timeout = s3_retry_timeout_ms(p, deadline, clk->now_ms(clk->arg));
		int retryable = 0;
		int rc = attempt(arg, timeout, &retryable);
		n++;
		if (rc == 0 || !retryable)
			return rc;
		int64_t delay;
		uint64_t random = clk->random(clk->arg);
		if (!s3_retry_next(p, deadline, clk->now_ms(clk->arg), n, random, &delay))
			return rc;
		if (delay > 0)
			clk->sleep_ms(clk->arg, delay);
		(*retries)++;
	}
}
