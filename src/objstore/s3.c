/* s3.c — the S3-compatible object store ("s3://BUCKET/PREFIX?...").
 *
 * Owns: the URL and credentials, a pool of libcurl easy handles (each
 * keeps its connections alive between calls), SigV4 signing through
 * libcurl's CURLOPT_AWS_SIGV4 with the x-amz-content-sha256 header set to
 * the real SHA-256 of the body, retries (capped exponential backoff with
 * full jitter up to a total deadline), the request counters, and the
 * bucket check at open. Calls block, as the objstore seam asks, and are
 * safe from many threads: the only shared state is the handle pool (under
 * a mutex) and the counters (atomics).
 *
 * The pure helpers declared in s3_int.h (URL, URI encoding, XML, the
 * credentials file, the retry policy) are in s3_pure.c.
 *
 * Key K of the store lives at object PREFIX/K of the bucket. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <uv.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "objstore/objstore.h"
#include "objstore/s3_int.h"

/* Backoff: 50 ms doubling to 2 s, full jitter. A short cap matters more
 * than a polite one here: a produce waits for the retry. */
#define S3_BACKOFF_BASE_MS 50
#define S3_BACKOFF_CAP_MS 2000
/* At open, fail fast: three attempts within 10 s. */
#define S3_OPEN_ATTEMPTS 3
#define S3_OPEN_TIMEOUT_MS 10000
#define S3_CONNECT_TIMEOUT_MS 3000
/* Idle handles kept for reuse; one per worker thread is enough. */
#define S3_HANDLES_MAX 64
#define S3_URL_MAX (S3_ENDPOINT_MAX + S3_BUCKET_MAX + 3 * (S3_PREFIX_MAX + S3_KEY_MAX) + 3 * 2048)

/* SHA-256 of the empty body. */
static const char EMPTY_SHA256[] =
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct s3_store {
	struct objstore base; /* first: the methods pointer */
	struct s3_config cfg;
	char base_url[S3_ENDPOINT_MAX + S3_BUCKET_MAX + 8];
	char sigv4[S3_REGION_MAX + 32];
	char key_id[256];
	char secret[S3_SECRET_MAX];
	char token_header[S3_SECRET_MAX + 32]; /* "" without a session token */
	struct s3_retry_policy policy;
	struct s3_async *as; /* the asynchronous machinery, once used */
	int async_closed;     /* s3_async_close was called */

	pthread_mutex_t lock; /* guards the handle pool */
	CURL *handles[S3_HANDLES_MAX];
	size_t handles_n;

	atomic_uint_fast64_t calls[OBJSTORE_OP_COUNT];
	atomic_uint_fast64_t requests[OBJSTORE_OP_COUNT];
	atomic_uint_fast64_t retries[OBJSTORE_OP_COUNT];
	atomic_uint_fast64_t errors[OBJSTORE_OP_COUNT];
	atomic_uint_fast64_t bytes_written;
	atomic_uint_fast64_t bytes_read;
};

static const struct objstore_methods s3_methods;

/* One call (with all its attempts). */
struct s3_call {
	struct s3_store *st;
	int op;
	const char *what; /* "PUT" ... for messages */
	char url[S3_URL_MAX];
	struct curl_slist *headers;
	const void *body;
	size_t body_len;
	int post; /* POST the body (DeleteObjects) rather than PUT it */
	/* GET into a caller's buffer: skip bytes first when the server
	 * ignored the Range and sent the whole object. */
	uint8_t *out;
	size_t out_len;
	uint64_t offset;
	/* per attempt */
	CURL *h;
	size_t got;
	uint64_t skip;
	int started; /* the body of a 2xx answer has begun */
	int done_early;
	int too_long;
	struct kbuf resp; /* error or listing body */
	int resp_over;
	long status;
	int curl_code;
	char curl_err[CURL_ERROR_SIZE];
	char code[64];
	char msg[256];
	curl_off_t content_length;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_init_rc;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : SL_ENOMEM;
}

static int64_t real_now_ms(void *arg)
{
	return clock_mono_us() / 1000;
}

static void real_sleep_ms(void *arg, int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static uint64_t real_random(void *arg)
{
	static _Thread_local uint64_t state;
	if (!state) {
		if (getrandom(&state, sizeof state, GRND_NONBLOCK) != sizeof state)
			state = (uint64_t)clock_mono_us() ^ (uint64_t)(uintptr_t)&state;
		state |= 1;
	}
	/* xorshift64* */
	state ^= state >> 12;
	state ^= state << 25;
	state ^= state >> 27;
	return state * 2685821657736338717ULL;
}

static const struct s3_clock real_clock = {
	.now_ms = real_now_ms, .sleep_ms = real_sleep_ms, .random = real_random,
};

static CURL *handle_get(struct s3_store *st)
{
	CURL *h = NULL;
	pthread_mutex_lock(&st->lock);
	if (st->handles_n)
		h = st->handles[--st->handles_n];
	pthread_mutex_unlock(&st->lock);
	if (!h)
		h = curl_easy_init();
	else
		curl_easy_reset(h); /* keeps its connections and DNS cache */
	return h;
}

static void handle_put(struct s3_store *st, CURL *h)
{
	pthread_mutex_lock(&st->lock);
	if (st->handles_n < S3_HANDLES_MAX) {
		st->handles[st->handles_n++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&st->lock);
	if (h)
		curl_easy_cleanup(h);
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct s3_call *c = arg;
	size_t len = size * nmemb, all = len;
	long status = 0;
	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
	if (c->out && status >= 200 && status < 300) {
		/* A plain 200 is the whole object: skip to our range. */
		if (!c->started && status == 200)
			c->skip = c->offset;
		c->started = 1;
		if (c->skip) {
			size_t k = c->skip < len ? (size_t)c->skip : len;
			p += k;
			len -= k;
			c->skip -= k;
		}
		if (len > c->out_len - c->got) {
			/* A 200 with the whole object: we have what we asked
			 * for once got reaches out_len; stop there. */
			size_t k = c->out_len - c->got;
			memcpy(c->out + c->got, p, k);
			c->got += k;
			if (status == 200)
				c->done_early = 1;
			else
				c->too_long = 1;
			return 0;
		}
		memcpy(c->out + c->got, p, len);
		c->got += len;
		return all;
	}
	if (c->resp.len + len > S3_RESPONSE_BYTES_MAX) {
		c->resp_over = 1;
		return 0;
	}
	kbuf_put(&c->resp, p, len);
	return c->resp.oom ? 0 : all;
}

/* extra: one more header line (Range, Content-MD5) or NULL. */
static int call_headers(struct s3_call *c, const char *payload_sha256, const char *extra)
{
	char line[128];
	struct curl_slist *l = NULL, *t;
	snprintf(line, sizeof line, "x-amz-content-sha256: %s", payload_sha256);
	if (!(t = curl_slist_append(l, line)))
		goto out_oom;
	l = t;
	if (c->st->token_header[0]) {
		if (!(t = curl_slist_append(l, c->st->token_header)))
			goto out_oom;
		l = t;
	}
	if (extra) {
		if (!(t = curl_slist_append(l, extra)))
			goto out_oom;
		l = t;
	}
	if (c->body) {
		if (!(t = curl_slist_append(l, c->post ? "Content-Type: application/xml"
						       : "Content-Type: application/octet-stream")))
			goto out_oom;
		l = t;
	}
	c->headers = l;
	return 0;
out_oom:
	curl_slist_free_all(l);
	return SL_ENOMEM;
}

static void call_free(struct s3_call *c)
{
	curl_slist_free_all(c->headers);
	kbuf_free(&c->resp);
}

/* The first half of an attempt, on easy handle h (fresh or reset): the
 * per-attempt state of c and every option of the request. */
static void attempt_setup(struct s3_call *c, CURL *h, uint32_t timeout_ms)
{
	struct s3_store *st = c->st;
	c->h = h;
	c->got = 0;
	c->skip = 0;
	c->started = 0;
	c->done_early = c->too_long = c->resp_over = 0;
	c->resp.len = 0;
	c->resp.oom = false;
	c->status = 0;
	c->curl_code = 0;
	c->curl_err[0] = c->code[0] = c->msg[0] = 0;
	c->content_length = -1;

	curl_easy_setopt(h, CURLOPT_URL, c->url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(timeout_ms < S3_CONNECT_TIMEOUT_MS ? timeout_ms : S3_CONNECT_TIMEOUT_MS));
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, st->sigv4);
	curl_easy_setopt(h, CURLOPT_USERNAME, st->key_id);
	curl_easy_setopt(h, CURLOPT_PASSWORD, st->secret);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->curl_err);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (!st->cfg.verify_tls) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (c->post) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
	} else switch (c->op) {
	case OBJSTORE_OP_PUT:
		/* POSTFIELDS (not a read callback) so curl can resend the
		 * body by itself; the method is then overridden to PUT. */
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
		break;
	case OBJSTORE_OP_HEAD:
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
		break;
	case OBJSTORE_OP_DELETE:
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
		break;
	default:
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		break;
	}
	atomic_fetch_add(&st->requests[c->op], 1);
}

/* The second half: what the transfer on c->h that ended with cc means.
 * Reads the handle's status before the caller gives the handle back.
 * Returns 0 or a negative sl_err, and sets *retryable. */
static int attempt_finish(struct s3_call *c, CURLcode cc, int *retryable)
{
	*retryable = 0;
	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &c->status);
	curl_easy_getinfo(c->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &c->content_length);
	c->h = NULL;

	if (cc == CURLE_WRITE_ERROR && c->done_early)
		cc = CURLE_OK;
	if (cc != CURLE_OK) {
		c->curl_code = (int)cc;
		if (c->too_long || c->resp_over)
			return SL_EPROTO;
		if (c->resp.oom)
			return SL_ENOMEM;
		*retryable = s3_retryable((int)cc, 0, NULL);
		return cc == CURLE_OPERATION_TIMEDOUT ? SL_ETIMEDOUT : SL_ESTORE;
	}
	if (c->status >= 200 && c->status < 300) {
		if (c->op == OBJSTORE_OP_GET && c->got != c->out_len)
			return SL_EPROTO; /* the object is shorter than asked */
		return 0;
	}
	if (c->resp.len)
		s3_xml_error_parse((const char *)c->resp.data, c->resp.len, c->code,
				   sizeof c->code, c->msg, sizeof c->msg);
	if (c->status == 404)
		return strcmp(c->code, "NoSuchBucket") == 0 ? SL_ESTORE : SL_ENOTFOUND;
	if (c->status == 416)
		return SL_EPROTO;
	*retryable = s3_retryable(0, c->status, c->code);
	return SL_ESTORE;
}

/* One blocking attempt (s3_attempt_fn for s3_retry_run). */
static int s3_attempt(void *arg, uint32_t timeout_ms, int *retryable)
{
	struct s3_call *c = arg;
	*retryable = 0;
	CURL *h = handle_get(c->st);
	if (!h)
		return SL_ENOMEM;
	attempt_setup(c, h, timeout_ms);
	CURLcode cc = curl_easy_perform(h);
	int rc = attempt_finish(c, cc, retryable);
	handle_put(c->st, h);
	return rc;
}

/* A description of the last attempt's failure, for one log line. */
static const char *call_why(struct s3_call *c, char *buf, size_t cap)
{
	if (c->curl_code)
		snprintf(buf, cap, "%s", c->curl_err[0] ? c->curl_err
							: curl_easy_strerror((CURLcode)c->curl_code));
	else if (c->status / 100 == 2 && c->out)
		snprintf(buf, cap, "HTTP %ld with %zu of %zu bytes: the object is shorter",
			 c->status, c->got, c->out_len);
	else if (c->code[0])
		snprintf(buf, cap, "HTTP %ld %s: %s", c->status, c->code, c->msg);
	else
		snprintf(buf, cap, "HTTP %ld", c->status);
	return buf;
}

static int call_run(struct s3_call *c, const struct s3_retry_policy *policy)
{
	unsigned retries = 0;
	int rc = s3_retry_run(policy, &real_clock, s3_attempt, c, &retries);
	if (retries)
		atomic_fetch_add(&c->st->retries[c->op], retries);
	if (rc && retries)
		log_debug("s3: %s %s: gave up after %u retries", c->what, c->url, retries);
	return rc;
}

/* A store key we can put in a URL: 1..S3_KEY_MAX printable ASCII bytes
 * without spaces, not starting with '/'. */
static int s3_key_ok(const char *key)
{
	size_t kn = strlen(key);
	if (kn == 0 || kn > S3_KEY_MAX || key[0] == '/')
		return 0;
	for (size_t i = 0; i < kn; i++)
		if (key[i] <= 0x20 || key[i] >= 0x7f)
			return 0;
	return 1;
}

/* Object URL of store key (NULL: the bucket root, for listings). */
static int call_init(struct s3_call *c, struct s3_store *st, int op, const char *what,
		     const char *key)
{
	memset(c, 0, sizeof *c);
	kbuf_init(&c->resp);
	c->st = st;
	c->op = op;
	c->what = what;
	atomic_fetch_add(&st->calls[op], 1);
	if (!key)
		return 0;
	if (!s3_key_ok(key))
		return SL_EINVAL;
	char full[S3_PREFIX_MAX + S3_KEY_MAX + 2], enc[3 * sizeof full];
	snprintf(full, sizeof full, "%s%s", st->cfg.prefix, key);
	if (s3_uri_encode(full, 1, enc, sizeof enc))
		return SL_EINVAL;
	int n = snprintf(c->url, sizeof c->url, "%s/%s", st->base_url, enc);
	if (n < 0 || (size_t)n >= sizeof c->url)
		return SL_EINVAL;
	return 0;
}

static void call_fail_log(struct s3_call *c, const char *key, int rc)
{
	char why[400];
	atomic_fetch_add(&c->st->errors[c->op], 1);
	log_error("s3: %s s3://%s/%s%s failed: %s (%s)", c->what, c->st->cfg.bucket,
		  c->st->cfg.prefix, key, call_why(c, why, sizeof why), sl_strerror(rc));
}

static int sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		return SL_ENOMEM;
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

static int s3_put(struct objstore *s, const char *key, const void *data, size_t len)
{
	struct s3_store *st = (struct s3_store *)s;
	struct s3_call c;
	char sha[65];
	int rc = call_init(&c, st, OBJSTORE_OP_PUT, "PUT", key);
	if (rc)
		goto out;
	rc = sha256_hex(data, len, sha);
	if (rc)
		goto out;
	c.body = len ? data : "";
	c.body_len = len;
	rc = call_headers(&c, sha, NULL);
	if (rc)
		goto out;
	rc = call_run(&c, &st->policy);
	if (rc == 0)
		atomic_fetch_add(&st->bytes_written, len);
	else
		call_fail_log(&c, key, rc);
out:
	if (rc == SL_EINVAL || rc == SL_ENOMEM)
		atomic_fetch_add(&st->errors[OBJSTORE_OP_PUT], 1);
	call_free(&c);
	return rc;
}

static int s3_head(struct objstore *s, const char *key, uint64_t *size)
{
	struct s3_store *st = (struct s3_store *)s;
	struct s3_call c;
	int rc = call_init(&c, st, OBJSTORE_OP_HEAD, "HEAD", key);
	if (rc == 0)
		rc = call_headers(&c, EMPTY_SHA256, NULL);
	if (rc == 0) {
		rc = call_run(&c, &st->policy);
		if (rc == 0) {
			if (c.content_length < 0)
				rc = SL_EPROTO;
			else
				*size = (uint64_t)c.content_length;
		}
		if (rc && rc != SL_ENOTFOUND)
			call_fail_log(&c, key, rc);
	} else {
		atomic_fetch_add(&st->errors[OBJSTORE_OP_HEAD], 1);
	}
	call_free(&c);
	return rc;
}

static int s3_get(struct objstore *s, const char *key, uint64_t offset, size_t len, void *out)
{
	struct s3_store *st = (struct s3_store *)s;
	if (offset > (uint64_t)INT64_MAX - len)
		return SL_EINVAL;
	if (len == 0) {
		/* No empty Range exists: check the object instead. */
		uint64_t size;
		int rc = s3_head(s, key, &size);
		return rc ? rc : offset > size ? SL_EPROTO : 0;
	}
	struct s3_call c;
	char range[80];
	int rc = call_init(&c, st, OBJSTORE_OP_GET, "GET", key);
	if (rc)
		goto out;
	snprintf(range, sizeof range, "Range: bytes=%llu-%llu", (unsigned long long)offset,
		 (unsigned long long)(offset + len - 1));
	rc = call_headers(&c, EMPTY_SHA256, range);
	if (rc)
		goto out;
	c.out = out;
	c.out_len = len;
	c.offset = offset;
	rc = call_run(&c, &st->policy);
	if (rc == 0)
		atomic_fetch_add(&st->bytes_read, len);
	else if (rc != SL_ENOTFOUND)
		call_fail_log(&c, key, rc);
out:
	if (rc == SL_EINVAL || rc == SL_ENOMEM)
		atomic_fetch_add(&st->errors[OBJSTORE_OP_GET], 1);
	call_free(&c);
	return rc;
}

static int s3_del(struct objstore *s, const char *key)
{
	struct s3_store *st = (struct s3_store *)s;
	struct s3_call c;
	int rc = call_init(&c, st, OBJSTORE_OP_DELETE, "DELETE", key);
	if (rc == 0)
		rc = call_headers(&c, EMPTY_SHA256, NULL);
	if (rc == 0) {
		rc = call_run(&c, &st->policy);
		if (rc == SL_ENOTFOUND)
			rc = 0; /* some servers say 404; S3 says 204 */
		if (rc)
			call_fail_log(&c, key, rc);
	} else {
		atomic_fetch_add(&st->errors[OBJSTORE_OP_DELETE], 1);
	}
	call_free(&c);
	return rc;
}

/* ---- DeleteObjects ---- */

/* The keys of one DeleteObjects request and what became of them. */
struct del_chunk {
	struct s3_store *st;
	const char *const *keys; /* m keys, without the store's prefix */
	const size_t *index;     /* their places in the caller's arrays */
	size_t m;
	bool *failed;            /* the caller's (may be NULL) */
	size_t failed_n;
	char first_key[S3_KEY_MAX + S3_PREFIX_MAX + 2];
	char first_why[320];
};

static void del_chunk_mark(struct del_chunk *d, size_t i)
{
	if (d->failed && !d->failed[d->index[i]]) {
		d->failed[d->index[i]] = true;
		d->failed_n++;
	} else if (!d->failed) {
		d->failed_n++;
	}
}

static void on_delete_error(void *arg, const char *key, const char *code, const char *msg)
{
	struct del_chunk *d = arg;
	size_t plen = strlen(d->st->cfg.prefix);
	int found = 0;
	if (!d->first_key[0]) {
		snprintf(d->first_key, sizeof d->first_key, "%s", key);
		snprintf(d->first_why, sizeof d->first_why, "%s: %s", code, msg);
	}
	if (!strncmp(key, d->st->cfg.prefix, plen))
		for (size_t i = 0; i < d->m; i++)
			if (!strcmp(d->keys[i], key + plen)) {
				del_chunk_mark(d, i);
				found = 1;
			}
	if (!found) /* not one of ours: trust none of them */
		for (size_t i = 0; i < d->m; i++)
			del_chunk_mark(d, i);
}

/* Content-MD5 (base64 of the body's MD5), which DeleteObjects requires. */
static int md5_base64(const void *data, size_t len, char out[32])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	/* Fails where MD5 is unavailable (a FIPS provider), not only out of
	 * memory: say so once per call. */
	if (!EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL) || mdlen != 16) {
		log_error("s3: DeleteObjects needs an MD5 Content-MD5 header and this "
			  "OpenSSL cannot compute MD5 (FIPS mode?): keys not deleted");
		return SL_ESTORE;
	}
	EVP_EncodeBlock((unsigned char *)out, md, 16); /* 24 chars and NUL */
	return 0;
}

/* One DeleteObjects request for d's keys (at most S3_DELETE_KEYS_MAX).
 * Returns 0 when every key is gone; marks failed keys in d. */
static int del_chunk_run(struct del_chunk *d)
{
	struct s3_store *st = d->st;
	struct s3_call c;
	struct kbuf body;
	char sha[65], md5[32], md5_line[64];
	kbuf_init(&body);
	call_init(&c, st, OBJSTORE_OP_DELETE, "DeleteObjects", NULL);
	int rc = s3_delete_body(st->cfg.prefix, d->keys, d->m, &body);
	if (rc == 0)
		rc = sha256_hex(body.data, body.len, sha);
	if (rc == 0)
		rc = md5_base64(body.data, body.len, md5);
	if (rc)
		goto out_fail_all;
	snprintf(md5_line, sizeof md5_line, "Content-MD5: %s", md5);
	/* "delete=": the empty value keeps curl's SigV4 canonical query
	 * right whatever its version. */
	int n = snprintf(c.url, sizeof c.url, "%s%s?delete=", st->base_url,
			 st->cfg.path_style ? "" : "/");
	if (n < 0 || (size_t)n >= sizeof c.url) {
		rc = SL_EINVAL;
		goto out_fail_all;
	}
	c.body = body.data;
	c.body_len = body.len;
	c.post = 1;
	rc = call_headers(&c, sha, md5_line);
	if (rc)
		goto out_fail_all;
	rc = call_run(&c, &st->policy);
	if (rc) {
		call_fail_log(&c, "?delete", rc);
		goto out_mark_all;
	}
	/* Quiet mode: when every key was deleted S3 may answer 2xx with an
	 * empty body (documented by AWS); only a body can name failures. */
	size_t blank = 0;
	for (char ch; blank < c.resp.len; blank++) {
		ch = ((const char *)c.resp.data)[blank];
		if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n')
			break;
	}
	if (blank == c.resp.len)
		goto out;
	size_t deleted, errors;
	rc = s3_xml_delete_parse((const char *)c.resp.data, c.resp.len, &deleted, &errors,
				 on_delete_error, d);
	if (rc) {
		snprintf(c.msg, sizeof c.msg, "unparsable DeleteObjects answer (%s)",
			 sl_strerror(rc));
		call_fail_log(&c, "?delete", rc);
		goto out_mark_all;
	}
	if (errors) {
		atomic_fetch_add(&st->errors[OBJSTORE_OP_DELETE], 1);
		log_error("s3: DeleteObjects s3://%s: %zu of %zu keys not deleted, first %s (%s)",
			  st->cfg.bucket, errors, d->m, d->first_key, d->first_why);
		rc = SL_ESTORE;
	}
	goto out;
out_fail_all:
	atomic_fetch_add(&st->errors[OBJSTORE_OP_DELETE], 1);
out_mark_all:
	for (size_t i = 0; i < d->m; i++)
		del_chunk_mark(d, i);
out:
	call_free(&c);
	kbuf_free(&body);
	return rc;
}

static int s3_del_many(struct objstore *s, const char *const *keys, size_t n, size_t *deleted,
		       bool *failed)
{
	struct s3_store *st = (struct s3_store *)s;
	size_t cap = n < S3_DELETE_KEYS_MAX ? n : S3_DELETE_KEYS_MAX;
	const char **chunk = malloc(cap * sizeof *chunk);
	size_t *index = malloc(cap * sizeof *index);
	size_t gone = 0;
	int first = 0;
	if (!chunk || !index) {
		first = SL_ENOMEM;
		if (failed)
			for (size_t i = 0; i < n; i++)
				failed[i] = true;
		goto out;
	}
	for (size_t i = 0; i < n;) {
		struct del_chunk d = { .st = st, .keys = chunk, .index = index, .failed = failed };
		for (; i < n && d.m < S3_DELETE_KEYS_MAX; i++) {
			if (!s3_key_ok(keys[i])) {
				if (failed)
					failed[i] = true;
				if (!first) {
					first = SL_EINVAL;
					log_error("s3: cannot delete key '%s': not a valid key",
						  keys[i]);
				}
				continue;
			}
			chunk[d.m] = keys[i];
			index[d.m++] = i;
		}
		if (d.m == 0)
			break;
		int rc = del_chunk_run(&d);
		gone += d.m - (d.failed_n < d.m ? d.failed_n : d.m);
		if (rc && !first)
			first = rc;
	}
out:
	free(chunk);
	free(index);
	if (deleted)
		*deleted = gone;
	return first;
}

/* One ListObjectsV2 page of the bucket's keys under full_prefix (prefix
 * of the store included). The call's failure details stay in *c. */
static int list_page(struct s3_store *st, struct s3_call *c, const char *full_prefix,
		     const char *token, unsigned max_keys, const struct s3_retry_policy *policy,
		     struct s3_list_page *page)
{
	char enc_prefix[3 * (S3_PREFIX_MAX + S3_KEY_MAX) + 1];
	char enc_token[3 * 2048 + 1] = "";
	if (s3_uri_encode(full_prefix, 0, enc_prefix, sizeof enc_prefix))
		return SL_EINVAL;
	if (token && s3_uri_encode(token, 0, enc_token, sizeof enc_token))
		return SL_EPROTO;
	/* SigV4 wants the query sorted by name; curl signs it as given. */
	int n = snprintf(c->url, sizeof c->url, "%s%s?%s%s%slist-type=2&max-keys=%u&prefix=%s",
			 st->base_url, st->cfg.path_style ? "" : "/", token ? "continuation-token=" : "",
			 enc_token, token ? "&" : "", max_keys, enc_prefix);
	if (n < 0 || (size_t)n >= sizeof c->url)
		return SL_EINVAL;
	int rc = call_run(c, policy);
	if (rc)
		return rc;
	rc = s3_xml_list_parse((const char *)c->resp.data, c->resp.len, page);
	if (rc)
		snprintf(c->msg, sizeof c->msg, "unparsable ListObjectsV2 page (%s)", sl_strerror(rc));
	return rc;
}

static int s3_list(struct objstore *s, const char *prefix, objstore_list_fn fn, void *arg)
{
	struct s3_store *st = (struct s3_store *)s;
	struct s3_call c;
	char full[S3_PREFIX_MAX + S3_KEY_MAX + 2];
	char *token = NULL;
	size_t plen = strlen(st->cfg.prefix);
	if (!prefix)
		prefix = "";
	int rc = call_init(&c, st, OBJSTORE_OP_LIST, "LIST", NULL);
	if (strlen(prefix) > S3_KEY_MAX) {
		rc = SL_EINVAL;
		goto out;
	}
	snprintf(full, sizeof full, "%s%s", st->cfg.prefix, prefix);
	rc = call_headers(&c, EMPTY_SHA256, NULL);
	while (rc == 0) {
		struct s3_list_page page;
		rc = list_page(st, &c, full, token, 1000, &st->policy, &page);
		if (rc) {
			call_fail_log(&c, prefix, rc);
			break;
		}
		for (size_t i = 0; i < page.n && rc == 0; i++) {
			const char *k = page.v[i].key;
			if (strncmp(k, st->cfg.prefix, plen) != 0 || !k[plen])
				continue;
			rc = fn(arg, k + plen, page.v[i].size, page.v[i].mtime_ms);
		}
		if (rc == 0 && page.truncated) {
			if (!page.next_token || (token && !strcmp(token, page.next_token))) {
				log_error("s3: LIST s3://%s/%s: truncated page without a new "
					  "continuation token", st->cfg.bucket, full);
				atomic_fetch_add(&st->errors[OBJSTORE_OP_LIST], 1);
				rc = SL_EPROTO;
			} else {
				free(token);
				token = page.next_token;
				page.next_token = NULL;
			}
		} else {
			s3_list_page_free(&page);
			break;
		}
		s3_list_page_free(&page);
	}
out:
	free(token);
	call_free(&c);
	return rc;
}

static void s3_stats(struct objstore *s, struct objstore_stats *out)
{
	struct s3_store *st = (struct s3_store *)s;
	for (int i = 0; i < OBJSTORE_OP_COUNT; i++) {
		out->calls[i] = atomic_load(&st->calls[i]);
		out->requests[i] = atomic_load(&st->requests[i]);
		out->retries[i] = atomic_load(&st->retries[i]);
		out->errors[i] = atomic_load(&st->errors[i]);
	}
	out->bytes_written = atomic_load(&st->bytes_written);
	out->bytes_read = atomic_load(&st->bytes_read);
}

/* ================= asynchronous calls: curl multi on the loop =================
 *
 * One CURLM per store, driven by the loop of the first asynchronous call
 * (all of them come from that loop's thread): a uv_poll_t for each socket
 * curl asks us to watch, a uv_timer_t for curl's timeouts and one for the
 * backoffs between attempts. The multi handle's connection cache keeps
 * connections alive between requests. At most S3_ASYNC_ACTIVE_MAX requests
 * are in the multi at once; the others wait in a FIFO queue (a retry goes
 * to its head: it is older than what waits). A call's deadline
 * (total_timeout_ms) runs from its start, time in the queue included, so
 * a dead store fails every pending call within the deadline. PUT bodies
 * are hashed (SHA-256, for x-amz-content-sha256) on the thread pool.
 *
 * The retry policy and the error mapping are the blocking calls' own:
 * s3_retry_timeout_ms / s3_retry_next and attempt_setup /
 * attempt_finish. The uv handles keep the loop alive only while calls
 * are pending, so the loop can end without s3_async_close. */

struct areq_list {
	struct s3_areq *head, *tail;
	size_t n;
};

struct s3_areq {
	struct s3_call c;
	struct s3_async *as;
	struct s3_areq *prev, *next;
	struct areq_list *on; /* hashing, queued, active, backoff or NULL */
	objstore_done_fn done;
	void *arg;
	int64_t deadline_ms;
	int64_t due_ms;       /* on backoff: when to try again */
	unsigned attempts;    /* finished attempts */
	int head_check;       /* a get of 0 bytes: a HEAD, then offset <= size */
	uint64_t head_offset;
	uv_work_t work;       /* hashing the body on the thread pool */
	int hash_rc;
	char sha[65];
	char key[S3_KEY_MAX + 1];
};

struct s3_sock {
	uv_poll_t poll;
	curl_socket_t fd;
	struct s3_async *as;
	struct s3_sock *prev, *next;
};

struct s3_async {
	struct s3_store *st; /* NULL once the store is closed */
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t curl_timer;
	uv_timer_t retry_timer;
	struct areq_list hashing, queued, active, backoff;
	struct s3_sock *socks;
	CURL *idle[S3_ASYNC_ACTIVE_MAX]; /* easy handles for reuse */
	size_t idle_n;
	int handles_open; /* uv handles not closed yet */
	int referenced;   /* do our handles keep the loop alive? */
	int closing;      /* s3_async_close or s3_close began */
	int dead;         /* torn down by s3_close: never touch the loop */
};

static void areq_push(struct areq_list *l, struct s3_areq *r, int at_head)
{
	r->on = l;
	if (at_head) {
		r->prev = NULL;
		r->next = l->head;
		if (l->head)
			l->head->prev = r;
		else
			l->tail = r;
		l->head = r;
	} else {
		r->next = NULL;
		r->prev = l->tail;
		if (l->tail)
			l->tail->next = r;
		else
			l->head = r;
		l->tail = r;
	}
	l->n++;
}

static void areq_unlink(struct s3_areq *r)
{
	struct areq_list *l = r->on;
	if (!l)
		return;
	if (r->prev)
		r->prev->next = r->next;
	else
		l->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		l->tail = r->prev;
	l->n--;
	r->prev = r->next = NULL;
	r->on = NULL;
}

static size_t async_pending(const struct s3_async *as)
{
	return as->hashing.n + as->queued.n + as->active.n + as->backoff.n;
}

/* Our handles keep the loop alive exactly while calls are pending (idle
 * connections in curl's cache must not hold a draining agent). */
static void async_ref_update(struct s3_async *as)
{
	int want = async_pending(as) > 0;
	if (as->closing || want == as->referenced)
		return;
	as->referenced = want;
	void (*f)(uv_handle_t *) = want ? uv_ref : uv_unref;
	f((uv_handle_t *)&as->curl_timer);
	for (struct s3_sock *sk = as->socks; sk; sk = sk->next)
		f((uv_handle_t *)&sk->poll);
}

static void async_maybe_free(struct s3_async *as)
{
	if (!as->closing || as->handles_open || as->hashing.n)
		return;
	if (as->st)
		as->st->as = NULL;
	free(as);
}

static void sock_closed(uv_handle_t *h)
{
	struct s3_sock *sk = h->data;
	struct s3_async *as = sk->as;
	free(sk);
	as->handles_open--;
	async_maybe_free(as);
}

static void timer_closed(uv_handle_t *h)
{
	struct s3_async *as = h->data;
	as->handles_open--;
	async_maybe_free(as);
}

static void sock_close(struct s3_async *as, struct s3_sock *sk)
{
	if (sk->prev)
		sk->prev->next = sk->next;
	else
		as->socks = sk->next;
	if (sk->next)
		sk->next->prev = sk->prev;
	if (as->dead) {
		free(sk);
		return;
	}
	uv_close((uv_handle_t *)&sk->poll, sock_closed);
}

static void handle_release(struct s3_async *as, CURL *h)
{
	if (!as->closing && as->idle_n < S3_ASYNC_ACTIVE_MAX)
		as->idle[as->idle_n++] = h;
	else
		curl_easy_cleanup(h);
}

/* The call is over (r on no list): count, log, free, then tell. */
static void areq_complete(struct s3_areq *r, int rc)
{
	struct s3_async *as = r->as;
	struct s3_store *st = as->st;
	struct s3_call *c = &r->c;
	if (st && r->head_check && rc == 0) {
		if (c->content_length < 0) {
			rc = SL_EPROTO;
			call_fail_log(c, r->key, rc);
		} else if (r->head_offset > (uint64_t)c->content_length) {
			rc = SL_EPROTO;
		}
	} else if (st && rc == 0) {
		if (c->op == OBJSTORE_OP_PUT)
			atomic_fetch_add(&st->bytes_written, c->body_len);
		else
			atomic_fetch_add(&st->bytes_read, c->out_len);
	} else if (st && (rc != SL_ENOTFOUND || c->op == OBJSTORE_OP_PUT)) {
		call_fail_log(c, r->key, rc);
		if (r->attempts > 1)
			log_debug("s3: %s %s: gave up after %u retries", c->what, c->url,
				  r->attempts - 1);
	}
	objstore_done_fn done = r->done;
	void *arg = r->arg;
	call_free(c);
	free(r);
	done(arg, rc);
}

/* Fail r without a request, with why for the log line. */
static void areq_fail(struct s3_areq *r, int rc, CURLcode cc, const char *why)
{
	r->c.curl_code = (int)cc;
	snprintf(r->c.curl_err, sizeof r->c.curl_err, "%s", why);
	areq_complete(r, rc);
}

/* Start r's next attempt in the multi (a slot is free). */
static int areq_launch(struct s3_async *as, struct s3_areq *r)
{
	struct s3_store *st = as->st;
	CURL *h;
	if (as->idle_n) {
		h = as->idle[--as->idle_n];
		curl_easy_reset(h);
	} else if (!(h = curl_easy_init())) {
		return SL_ENOMEM;
	}
	attempt_setup(&r->c, h, s3_retry_timeout_ms(&st->policy, r->deadline_ms, real_now_ms(NULL)));
	curl_easy_setopt(h, CURLOPT_PRIVATE, (void *)r);
	if (curl_multi_add_handle(as->multi, h) != CURLM_OK) {
		r->c.h = NULL;
		curl_easy_cleanup(h);
		return SL_ENOMEM;
	}
	if (r->attempts)
		atomic_fetch_add(&st->retries[r->c.op], 1);
	areq_push(&as->active, r, 0);
	return 0;
}

/* Fill free slots from the queue, oldest first. Not called from a start
 * (it may complete calls, and a start never completes one). */
static void async_pump(struct s3_async *as)
{
	while (!as->closing && as->active.n < S3_ASYNC_ACTIVE_MAX && as->queued.head) {
		struct s3_areq *r = as->queued.head;
		areq_unlink(r);
		if (real_now_ms(NULL) + S3_TIMEOUT_MS_MIN / 2 >= r->deadline_ms) {
			areq_fail(r, SL_ETIMEDOUT, CURLE_OPERATION_TIMEDOUT,
				  "the deadline passed while waiting for a free connection");
			continue;
		}
		int rc = areq_launch(as, r);
		if (rc)
			areq_fail(r, rc, CURLE_OUT_OF_MEMORY, "cannot start a request");
	}
}

static void on_retry_timer(uv_timer_t *t);

static void retry_timer_arm(struct s3_async *as)
{
	if (!as->backoff.head) {
		uv_timer_stop(&as->retry_timer);
		return;
	}
	int64_t due = INT64_MAX, now = real_now_ms(NULL);
	for (struct s3_areq *r = as->backoff.head; r; r = r->next)
		if (r->due_ms < due)
			due = r->due_ms;
	uv_timer_start(&as->retry_timer, on_retry_timer, due > now ? (uint64_t)(due - now) : 0, 0);
}

static void on_retry_timer(uv_timer_t *t)
{
	struct s3_async *as = t->data;
	int64_t now = real_now_ms(NULL);
	/* From the tail, each to the queue's head: their order is kept. */
	for (struct s3_areq *r = as->backoff.tail, *prev; r; r = prev) {
		prev = r->prev;
		if (r->due_ms <= now) {
			areq_unlink(r);
			areq_push(&as->queued, r, 1);
		}
	}
	retry_timer_arm(as);
	async_pump(as);
	async_ref_update(as);
}

/* An attempt of r finished with rc: retry later, or complete. */
static void areq_attempted(struct s3_async *as, struct s3_areq *r, int rc, int retryable)
{
	int64_t delay, now = real_now_ms(NULL);
	if (rc && retryable && !as->closing &&
	    s3_retry_next(&as->st->policy, r->deadline_ms, now, r->attempts, real_random(NULL),
			  &delay)) {
		r->due_ms = now + delay;
		areq_push(&as->backoff, r, 0);
		retry_timer_arm(as);
		return;
	}
	areq_complete(r, rc);
}

static void async_check_done(struct s3_async *as)
{
	CURLMsg *m;
	int left;
	/* A done callback may close the machinery: stop touching it then. */
	while (!as->closing && (m = curl_multi_info_read(as->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURL *h = m->easy_handle;
		CURLcode cc = m->data.result;
		char *priv = NULL;
		curl_easy_getinfo(h, CURLINFO_PRIVATE, &priv);
		struct s3_areq *r = (struct s3_areq *)priv;
		curl_multi_remove_handle(as->multi, h);
		areq_unlink(r);
		int retryable;
		int rc = attempt_finish(&r->c, cc, &retryable);
		handle_release(as, h);
		r->attempts++;
		areq_attempted(as, r, rc, retryable);
	}
	async_pump(as);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	struct s3_sock *sk = p->data;
	struct s3_async *as = sk->as;
	int flags = 0, running;
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(as->multi, sk->fd, flags, &running);
	async_check_done(as);
	async_ref_update(as);
}

static void on_curl_timeout(uv_timer_t *t)
{
	struct s3_async *as = t->data;
	int running;
	curl_multi_socket_action(as->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	async_check_done(as);
	async_ref_update(as);
}

/* CURLMOPT_TIMERFUNCTION: (re)arm or stop the one curl timer. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct s3_async *as = userp;
	if (as->closing)
		return 0;
	if (timeout_ms < 0)
		uv_timer_stop(&as->curl_timer);
	else
		uv_timer_start(&as->curl_timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
	return 0;
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what curl wants. */
static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct s3_async *as = userp;
	struct s3_sock *sk = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (sk)
			sock_close(as, sk);
		return 0;
	}
	if (as->closing)
		return 0;
	if (!sk) {
		sk = calloc(1, sizeof *sk);
		if (!sk)
			return -1;
		if (uv_poll_init_socket(as->loop, &sk->poll, fd) != 0) {
			free(sk);
			return -1;
		}
		sk->fd = fd;
		sk->as = as;
		sk->poll.data = sk;
		sk->next = as->socks;
		if (as->socks)
			as->socks->prev = sk;
		as->socks = sk;
		as->handles_open++;
		if (!as->referenced)
			uv_unref((uv_handle_t *)&sk->poll);
		curl_multi_assign(as->multi, fd, sk);
	}
	int ev = 0;
	if (what & CURL_POLL_IN)
		ev |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		ev |= UV_WRITABLE;
	if (ev)
		uv_poll_start(&sk->poll, ev, on_poll);
	else
		uv_poll_stop(&sk->poll);
	return 0;
}

/* The machinery of st on loop, made on first use. */
static int async_get(struct s3_store *st, uv_loop_t *loop, struct s3_async **out)
{
	struct s3_async *as = st->as;
	if (st->async_closed || (as && as->closing))
		return SL_ESTORE;
	if (as) {
		if (as->loop != loop)
			return SL_EINVAL;
		*out = as;
		return 0;
	}
	as = calloc(1, sizeof *as);
	if (!as)
		return SL_ENOMEM;
	as->multi = curl_multi_init();
	if (!as->multi) {
		free(as);
		return SL_ENOMEM;
	}
	as->st = st;
	as->loop = loop;
	curl_multi_setopt(as->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(as->multi, CURLMOPT_SOCKETDATA, as);
	curl_multi_setopt(as->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(as->multi, CURLMOPT_TIMERDATA, as);
	curl_multi_setopt(as->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)S3_ASYNC_ACTIVE_MAX);
	curl_multi_setopt(as->multi, CURLMOPT_MAXCONNECTS, (long)S3_ASYNC_ACTIVE_MAX);
	uv_timer_init(loop, &as->curl_timer);
	uv_timer_init(loop, &as->retry_timer);
	as->curl_timer.data = as->retry_timer.data = as;
	as->handles_open = 2;
	as->referenced = 1;
	st->as = as;
	*out = as;
	return 0;
}

/* Stop everything. With the loop alive (s3_async_close): uv handles are
 * closed, and pending calls complete with SL_ESTORE now (hashing ones
 * when their work returns). Dead (s3_close after the loop ended): no uv
 * call and no callback; the handles' memory goes with the store. */
static void async_teardown(struct s3_async *as, int dead)
{
	struct areq_list failed = { 0 };
	struct areq_list *lists[] = { &as->active, &as->queued, &as->backoff };
	as->closing = 1;
	as->dead = dead;
	for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
		while (lists[i]->head) {
			struct s3_areq *r = lists[i]->head;
			areq_unlink(r);
			if (r->c.h) {
				curl_multi_remove_handle(as->multi, r->c.h);
				curl_easy_cleanup(r->c.h);
				r->c.h = NULL;
			}
			areq_push(&failed, r, 0);
		}
	}
	while (as->idle_n)
		curl_easy_cleanup(as->idle[--as->idle_n]);
	if (!dead)
		for (struct s3_areq *r = as->hashing.head; r; r = r->next)
			uv_cancel((uv_req_t *)&r->work);
	curl_multi_cleanup(as->multi);
	as->multi = NULL;
	while (as->socks)
		sock_close(as, as->socks);
	if (dead) {
		as->handles_open = 0;
	} else {
		uv_close((uv_handle_t *)&as->curl_timer, timer_closed);
		uv_close((uv_handle_t *)&as->retry_timer, timer_closed);
	}
	while (failed.head) {
		struct s3_areq *r = failed.head;
		areq_unlink(r);
		if (dead) {
			call_free(&r->c);
			free(r);
		} else {
			areq_fail(r, SL_ESTORE, CURLE_ABORTED_BY_CALLBACK, "the store is closing");
		}
	}
}

static void sha_work(uv_work_t *w)
{
	struct s3_areq *r = w->data;
	r->hash_rc = sha256_hex(r->c.body, r->c.body_len, r->sha);
}

/* Queue r, or start it when nothing waits and a slot is free. Never
 * completes a call (it runs inside a start). */
static int areq_submit(struct s3_async *as, struct s3_areq *r)
{
	if (!as->queued.head && as->active.n < S3_ASYNC_ACTIVE_MAX)
		return areq_launch(as, r);
	areq_push(&as->queued, r, 0);
	return 0;
}

static void sha_after(uv_work_t *w, int status)
{
	struct s3_areq *r = w->data;
	struct s3_async *as = r->as;
	areq_unlink(r);
	if (as->closing) {
		if (as->st)
			areq_fail(r, SL_ESTORE, CURLE_ABORTED_BY_CALLBACK, "the store is closing");
		else {
			call_free(&r->c);
			free(r);
		}
		async_maybe_free(as);
		return;
	}
	int rc = status ? SL_EIO : r->hash_rc;
	if (rc == 0)
		rc = call_headers(&r->c, r->sha, NULL);
	if (rc == 0) {
		areq_push(&as->queued, r, 0);
		async_pump(as);
	} else {
		areq_fail(r, rc, CURLE_OUT_OF_MEMORY, "cannot hash the body");
	}
	async_ref_update(as);
}

/* A new call on st's machinery (counted like a blocking call). */
static int areq_new(struct s3_store *st, uv_loop_t *loop, int op, const char *what,
		    const char *key, objstore_done_fn done, void *arg, struct s3_areq **out)
{
	struct s3_async *as;
	int rc = async_get(st, loop, &as);
	if (rc)
		return rc;
	if (as->queued.n >= S3_ASYNC_QUEUED_MAX)
		return SL_EBUSY;
	struct s3_areq *r = calloc(1, sizeof *r);
	if (!r)
		return SL_ENOMEM;
	rc = call_init(&r->c, st, op, what, key);
	if (rc) {
		atomic_fetch_add(&st->errors[op], 1);
		call_free(&r->c);
		free(r);
		return rc;
	}
	snprintf(r->key, sizeof r->key, "%s", key);
	r->as = as;
	r->done = done;
	r->arg = arg;
	r->deadline_ms = real_now_ms(NULL) + (int64_t)st->policy.total_timeout_ms;
	*out = r;
	return 0;
}

/* A start that fails after areq_new: counted, freed, done never called. */
static int areq_abandon(struct s3_areq *r, int rc)
{
	struct s3_async *as = r->as;
	atomic_fetch_add(&as->st->errors[r->c.op], 1);
	call_free(&r->c);
	free(r);
	async_ref_update(as);
	return rc;
}

static int s3_put_async(struct objstore *s, uv_loop_t *loop, const char *key, const void *data,
			size_t len, objstore_done_fn done, void *arg)
{
	struct s3_store *st = (struct s3_store *)s;
	struct s3_areq *r;
	int rc = areq_new(st, loop, OBJSTORE_OP_PUT, "PUT", key, done, arg, &r);
	if (rc)
		return rc;
	struct s3_async *as = r->as;
	r->c.body = len ? data : "";
	r->c.body_len = len;
	if (len >= S3_ASYNC_SHA_POOL_BYTES) {
		r->work.data = r;
		if (uv_queue_work(loop, &r->work, sha_work, sha_after) == 0) {
			areq_push(&as->hashing, r, 0);
			async_ref_update(as);
			return 0;
		}
	}
	rc = sha256_hex(r->c.body, len, r->sha);
	if (rc == 0)
		rc = call_headers(&r->c, r->sha, NULL);
	if (rc == 0)
		rc = areq_submit(as, r);
	if (rc)
		return areq_abandon(r, rc);
	async_ref_update(as);
	return 0;
}

static int s3_get_async(struct objstore *s, uv_loop_t *loop, const char *key, uint64_t offset,
			size_t len, void *out, objstore_done_fn done, void *arg)
{
	struct s3_store *st = (struct s3_store *)s;
	struct s3_areq *r;
	if (offset > (uint64_t)INT64_MAX - len)
		return SL_EINVAL;
	/* No empty Range exists: check the object instead, as s3_get. */
	int rc = len ? areq_new(st, loop, OBJSTORE_OP_GET, "GET", key, done, arg, &r)
		     : areq_new(st, loop, OBJSTORE_OP_HEAD, "HEAD", key, done, arg, &r);
	if (rc)
		return rc;
	if (len) {
		char range[80];
		snprintf(range, sizeof range, "Range: bytes=%llu-%llu", (unsigned long long)offset,
			 (unsigned long long)(offset + len - 1));
		rc = call_headers(&r->c, EMPTY_SHA256, range);
		r->c.out = out;
		r->c.out_len = len;
		r->c.offset = offset;
	} else {
		r->head_check = 1;
		r->head_offset = offset;
		rc = call_headers(&r->c, EMPTY_SHA256, NULL);
	}
	if (rc == 0)
		rc = areq_submit(r->as, r);
	if (rc)
		return areq_abandon(r, rc);
	async_ref_update(r->as);
	return 0;
}

static void s3_async_close(struct objstore *s)
{
	struct s3_store *st = (struct s3_store *)s;
	st->async_closed = 1;
	if (st->as && !st->as->closing)
		async_teardown(st->as, 0);
}

static void s3_close(struct objstore *s)
{
	struct s3_store *st = (struct s3_store *)s;
	struct s3_async *as = st->as;
	if (as) {
		/* Without s3_async_close the loop has ended (our handles held
		 * it while calls were pending): free without touching it. */
		if (!as->closing)
			async_teardown(as, 1);
		as->st = NULL;
		st->as = NULL;
		/* Else freed by the last close callback or work. */
		if (!as->handles_open && !as->hashing.n)
			free(as);
	}
	for (size_t i = 0; i < st->handles_n; i++)
		curl_easy_cleanup(st->handles[i]);
	pthread_mutex_destroy(&st->lock);
	/* Scrub the secret before giving the memory back. */
	memset(st->secret, 0, sizeof st->secret);
	memset(st->token_header, 0, sizeof st->token_header);
	free(st);
}

static const struct objstore_methods s3_methods = {
	.name = "s3",
	.put = s3_put,
	.get = s3_get,
	.head = s3_head,
	.del = s3_del,
	.list = s3_list,
	.close = s3_close,
	.stats = s3_stats,
	.put_async = s3_put_async,
	.get_async = s3_get_async,
	.async_close = s3_async_close,
	.del_many = s3_del_many,
};

/* Credentials from the environment, else the shared credentials file. */
static int credentials_load(struct s3_store *st, char *where, size_t where_cap)
{
	const char *id = getenv("AWS_ACCESS_KEY_ID");
	const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
	const char *token = getenv("AWS_SESSION_TOKEN");
	char token_buf[S3_SECRET_MAX] = "";
	if (id && *id && secret && *secret) {
		snprintf(where, where_cap, "environment");
		if (strlen(id) >= sizeof st->key_id || strlen(secret) >= sizeof st->secret ||
		    (token && strlen(token) >= S3_SECRET_MAX))
			return SL_EINVAL;
		strcpy(st->key_id, id);
		strcpy(st->secret, secret);
	} else {
		const char *path = getenv("AWS_SHARED_CREDENTIALS_FILE");
		const char *profile = getenv("AWS_PROFILE");
		char def[1024];
		if (!path || !*path) {
			const char *home = getenv("HOME");
			if (!home)
				return SL_ENOTFOUND;
			snprintf(def, sizeof def, "%s/.aws/credentials", home);
			path = def;
		}
		if (!profile || !*profile)
			profile = "default";
		snprintf(where, where_cap, "%s [%s]", path, profile);
		FILE *f = fopen(path, "r");
		if (!f)
			return SL_ENOTFOUND;
		/* Credentials files are small; 1 MiB is plenty. */
		char *text = malloc(1024 * 1024 + 1);
		if (!text) {
			fclose(f);
			return SL_ENOMEM;
		}
		size_t n = fread(text, 1, 1024 * 1024, f);
		fclose(f);
		text[n] = 0;
		int rc = s3_profile_parse(text, profile, st->key_id, sizeof st->key_id, st->secret,
					  sizeof st->secret, token_buf, sizeof token_buf);
		memset(text, 0, n);
		free(text);
		if (rc)
			return rc;
		token = token_buf;
	}
	if (token && *token)
		snprintf(st->token_header, sizeof st->token_header, "x-amz-security-token: %s",
			 token);
	memset(token_buf, 0, sizeof token_buf);
	return 0;
}

int objstore_s3_open(const char *url, struct objstore **out)
{
	*out = NULL;
	char why[1300] = "";
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc) {
		log_error("object store: libcurl failed to initialise");
		return SL_ENOMEM;
	}
	struct s3_store *st = calloc(1, sizeof *st);
	if (!st)
		return SL_ENOMEM;
	st->base.m = &s3_methods;
	pthread_mutex_init(&st->lock, NULL);
	int rc = s3_url_parse(url, &st->cfg, why, sizeof why);
	if (rc) {
		log_error("object store: bad S3 URL '%s': %s (expected "
			  "s3://BUCKET/PREFIX?endpoint=URL&region=NAME)", url, why);
		goto out_free;
	}
	const char *env_region = getenv("AWS_REGION");
	if (!env_region || !*env_region)
		env_region = getenv("AWS_DEFAULT_REGION");
	if (s3_config_resolve(&st->cfg, env_region, st->base_url, sizeof st->base_url)) {
		log_error("object store: '%s': endpoint or region too long", url);
		rc = SL_EINVAL;
		goto out_free;
	}
	snprintf(st->sigv4, sizeof st->sigv4, "aws:amz:%s:s3", st->cfg.region);
	rc = credentials_load(st, why, sizeof why);
	if (rc) {
		log_error("object store: s3://%s: no usable credentials (set AWS_ACCESS_KEY_ID and "
			  "AWS_SECRET_ACCESS_KEY, or a profile in ~/.aws/credentials; looked in %s)",
			  st->cfg.bucket, why);
		rc = SL_EINVAL;
		goto out_free;
	}
	st->policy = (struct s3_retry_policy){
		.base_ms = S3_BACKOFF_BASE_MS,
		.cap_ms = S3_BACKOFF_CAP_MS,
		.attempt_timeout_ms = st->cfg.attempt_timeout_ms,
		.total_timeout_ms = st->cfg.total_timeout_ms,
	};

	/* Check the bucket: a listing of one key also proves the
	 * credentials and the list permission. */
	struct s3_retry_policy check = st->policy;
	check.attempts_max = S3_OPEN_ATTEMPTS;
	if (check.total_timeout_ms > S3_OPEN_TIMEOUT_MS)
		check.total_timeout_ms = S3_OPEN_TIMEOUT_MS;
	if (check.attempt_timeout_ms > check.total_timeout_ms)
		check.attempt_timeout_ms = check.total_timeout_ms;
	struct s3_call c;
	struct s3_list_page page;
	call_init(&c, st, OBJSTORE_OP_LIST, "LIST", NULL);
	rc = call_headers(&c, EMPTY_SHA256, NULL);
	if (rc == 0)
		rc = list_page(st, &c, st->cfg.prefix, NULL, 1, &check, &page);
	if (rc == 0) {
		s3_list_page_free(&page);
	} else {
		char detail[400];
		const char *hint = "";
		if (c.curl_code)
			hint = " (is the endpoint right and the server up?)";
		else if (!strcmp(c.code, "NoSuchBucket") || c.status == 404)
			hint = " (create the bucket first)";
		else if (c.status == 403 || c.status == 401)
			hint = " (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the "
			       "bucket policy)";
		else if (c.status == 301 || !strcmp(c.code, "PermanentRedirect") ||
			 !strcmp(c.code, "AuthorizationHeaderMalformed"))
			hint = " (is region= right?)";
		if (rc == SL_EPROTO && !c.curl_code && c.status / 100 == 2)
			snprintf(detail, sizeof detail, "%s", c.msg);
		else
			call_why(&c, detail, sizeof detail);
		log_error("object store: cannot use bucket %s at %s: %s%s", st->cfg.bucket,
			  st->cfg.endpoint, detail, hint);
		atomic_fetch_add(&st->errors[OBJSTORE_OP_LIST], 1);
		call_free(&c);
		rc = rc == SL_ENOMEM ? rc : SL_ESTORE;
		s3_close(&st->base);
		return rc;
	}
	call_free(&c);
	log_info("object store: s3://%s/%s at %s (region %s, %s-style, credentials from %s)",
		 st->cfg.bucket, st->cfg.prefix, st->cfg.endpoint, st->cfg.region,
		 st->cfg.path_style ? "path" : "virtual-hosted", why);
	*out = &st->base;
	return 0;

out_free:
	s3_close(&st->base);
	return rc;
}
