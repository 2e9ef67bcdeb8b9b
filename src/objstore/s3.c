/* s3.c — the S3-compatible object store ("s3://BUCKET/PREFIX?..."): the
 * store and one request, shared by its two clients.
 *
 * Owns: opening (the URL, credentials from the environment or the shared
 * credentials file, the bucket check), closing, the request counters
 * (atomics) and the methods table; and what every request is, however it
 * is driven: the object URL of a key, the headers (x-amz-content-sha256
 * set to the real SHA-256 of the body, or UNSIGNED-PAYLOAD for a PUT to a
 * store that does not sign payloads; the session token), the options of
 * one attempt on a curl easy handle (SigV4 signing through libcurl's
 * CURLOPT_AWS_SIGV4), the body callback, and what a finished attempt
 * means (status and S3 error code to an sl_err, retryable or not), and
 * the log line of a failed call.
 *
 * The blocking client (s3_blocking.c: put, get, head, del, del_many, list,
 * for tools and the thread pool) and the asynchronous one on the event
 * loop (s3_async.c: put_async, get_async) drive those requests; the pure
 * helpers (URL, URI encoding, XML, retry policy) are in s3_pure.c.
 *
 * Key K of the store lives at object PREFIX/K of the bucket. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>

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

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_init_rc;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : SL_ENOMEM;
}

int64_t s3_clock_now_ms(void *arg)
{
	return clock_mono_us() / 1000;
}

uint64_t s3_clock_random(void *arg)
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
	if (c->resp.len + len > SL_S3_RESPONSE_BYTES_MAX) {
		c->resp_over = 1;
		return 0;
	}
	kbuf_put(&c->resp, p, len);
	return c->resp.oom ? 0 : all;
}

/* A paced body's bytes handed to curl at a time: a tenth of a second's
 * worth of the bound, at least this much, so the connection is never
 * idle long enough for a server to give up on the upload (S3 answers
 * RequestTimeout after about 20 s without a byte). */
#define S3_PACED_SLICE_MIN 1024

/* curl asks for the next bytes of a PUT's body: copy them out of the
 * caller's pieces (curl's own send buffer is the one copy left). A paced
 * body's (c->pace) wait for the bound first, on the blocking client's
 * thread, a slice at a time. */
static size_t on_read(char *p, size_t size, size_t nmemb, void *arg)
{
	struct s3_call *c = arg;
	size_t room = size * nmemb, n = 0;
	if (c->pace && c->pace->bytes_per_sec) {
		uint64_t slice = c->pace->bytes_per_sec / 10;
		if (slice < S3_PACED_SLICE_MIN)
			slice = S3_PACED_SLICE_MIN;
		if (room > slice)
			room = (size_t)slice;
		size_t left = 0;
		for (int i = c->iov_at; i < c->iovcnt; i++)
			left += c->iov[i].iov_len - (i == c->iov_at ? c->iov_skip : 0);
		if (left)
			objstore_pace_wait(c->pace, room < left ? room : left);
	}
	while (n < room && c->iov_at < c->iovcnt) {
		const struct iovec *v = &c->iov[c->iov_at];
		size_t take = v->iov_len - c->iov_skip;
		if (take > room - n)
			take = room - n;
		memcpy(p + n, (const uint8_t *)v->iov_base + c->iov_skip, take);
		n += take;
		c->iov_skip += take;
		if (c->iov_skip == v->iov_len) {
			c->iov_at++;
			c->iov_skip = 0;
		}
	}
	return n;
}

/* curl rewinds the body (a resend within one attempt: a redirect, an
 * auth retry, a reused connection that turned out closed). */
static int on_seek(void *arg, curl_off_t offset, int origin)
{
	struct s3_call *c = arg;
	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > c->body_len)
		return CURL_SEEKFUNC_CANTSEEK;
	c->iov_at = 0;
	c->iov_skip = 0;
	size_t left = (size_t)offset;
	while (c->iov_at < c->iovcnt && left >= c->iov[c->iov_at].iov_len)
		left -= c->iov[c->iov_at++].iov_len;
	c->iov_skip = left;
	return CURL_SEEKFUNC_OK;
}

int s3_call_headers(struct s3_call *c, const char *payload_sha256, const char *extra)
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
	if (c->body || c->iov) {
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

void s3_call_free(struct s3_call *c)
{
	curl_slist_free_all(c->headers);
	kbuf_free(&c->resp);
}

void s3_attempt_setup(struct s3_call *c, CURL *h, uint32_t timeout_ms)
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
		/* From the caller's pieces, from the first one on every
		 * attempt: a retry sends the same bytes. */
		c->iov_at = 0;
		c->iov_skip = 0;
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, c);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, c);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)c->body_len);
		/* libcurl sends "Expect: 100-continue" with a large body and
		 * waits for the server's interim answer (up to 1 s) before the
		 * first byte of it: a round trip per object written, to save
		 * sending a body that a refusal (credentials, a wrong region)
		 * would discard, which only a misconfigured store does. Send
		 * at once. (The header itself stays: removing it with
		 * "Expect:" breaks the SigV4 signature of libcurl < 8.3, which
		 * signs the removed header, curl issue 11664.) */
		curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 0L);
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

int s3_attempt_finish(struct s3_call *c, CURLcode cc, int *retryable)
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

int s3_key_ok(const char *key)
{
	size_t kn = strlen(key);
	if (kn == 0 || kn > S3_KEY_MAX || key[0] == '/')
		return 0;
	for (size_t i = 0; i < kn; i++)
		if (key[i] <= 0x20 || key[i] >= 0x7f)
			return 0;
	return 1;
}

int s3_call_init(struct s3_call *c, struct s3_store *st, int op, const char *what,
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

void s3_call_fail_log(struct s3_call *c, const char *key, int rc)
{
	char why[400];
	atomic_fetch_add(&c->st->errors[c->op], 1);
	log_error("s3: %s s3://%s/%s%s failed: %s (%s)", c->what, c->st->cfg.bucket,
		  c->st->cfg.prefix, key, call_why(c, why, sizeof why), sl_strerror(rc));
}

int s3_call_range(struct s3_call *c, uint64_t offset, size_t len, void *out)
{
	char range[80];
	snprintf(range, sizeof range, "Range: bytes=%llu-%llu", (unsigned long long)offset,
		 (unsigned long long)(offset + len - 1));
	c->out = out;
	c->out_len = len;
	c->offset = offset;
	return s3_call_headers(c, S3_EMPTY_SHA256, range);
}

int s3_call_end(struct s3_call *c, const char *key, int rc)
{
	struct s3_store *st = c->st;
	if (rc == 0 && c->op == OBJSTORE_OP_PUT)
		atomic_fetch_add(&st->bytes_written, c->body_len);
	else if (rc == 0 && c->op == OBJSTORE_OP_GET)
		atomic_fetch_add(&st->bytes_read, c->out_len);
	else if (rc == 0 && c->op == OBJSTORE_OP_HEAD && c->content_length < 0)
		rc = SL_EPROTO;
	/* A missing key is an answer to a read, not a failure of the store. */
	if (rc && (rc != SL_ENOTFOUND || c->op == OBJSTORE_OP_PUT))
		s3_call_fail_log(c, key, rc);
	return rc;
}

int s3_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		return SL_ENOMEM;
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

int s3_sha256_iov_hex(const struct iovec *iov, int iovcnt, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (int i = 0; ok && i < iovcnt; i++)
		ok = EVP_DigestUpdate(ctx, iov[i].iov_base, iov[i].iov_len);
	ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen == 32;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return SL_ENOMEM;
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

int s3_put_payload_hash(const struct s3_store *st, const struct iovec *iov, int iovcnt,
			char out[65])
{
	if (st->cfg.payload_signing)
		return s3_sha256_iov_hex(iov, iovcnt, out);
	snprintf(out, 65, "UNSIGNED-PAYLOAD");
	return 0;
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

static void s3_close(struct objstore *s)
{
	struct s3_store *st = (struct s3_store *)s;
	if (st->as)
		s3_async_free(st);
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

/* Check the bucket at open: a listing of one key also proves the
 * credentials and the list permission. A wrong endpoint, bucket or key
 * fails fast (three attempts within S3_OPEN_TIMEOUT_MS); a store that
 * answers 5xx or throttles (restarting, overloaded) is retried until the
 * store's total_timeout_ms, as the AWS SDKs retry it, so one bad answer
 * during a restart does not keep the agent down. Returns 0, or
 * SL_ESTORE / SL_ENOMEM after one error line. */
static int open_check(struct s3_store *st)
{
	int64_t deadline = s3_clock_now_ms(NULL) + (int64_t)st->policy.total_timeout_ms;
	bool warned = false;
	for (;;) {
		/* One round: a few quick attempts, inside what is left. */
		int64_t left = deadline - s3_clock_now_ms(NULL);
		struct s3_retry_policy check = st->policy;
		check.attempts_max = S3_OPEN_ATTEMPTS;
		if (check.total_timeout_ms > S3_OPEN_TIMEOUT_MS)
			check.total_timeout_ms = S3_OPEN_TIMEOUT_MS;
		if ((int64_t)check.total_timeout_ms > left)
			check.total_timeout_ms = left > S3_TIMEOUT_MS_MIN ? (uint32_t)left : S3_TIMEOUT_MS_MIN;
		if (check.attempt_timeout_ms > check.total_timeout_ms)
			check.attempt_timeout_ms = check.total_timeout_ms;
		struct s3_call c;
		struct s3_list_page page;
		int rc = s3_call_init(&c, st, OBJSTORE_OP_LIST, "LIST", NULL);
		if (rc == 0)
			rc = s3_call_headers(&c, S3_EMPTY_SHA256, NULL);
		if (rc == 0)
			rc = s3_list_page_get(st, &c, st->cfg.prefix, NULL, 1, &check, &page);
		if (rc == 0) {
			s3_list_page_free(&page);
			s3_call_free(&c);
			return 0;
		}
		char detail[400];
		if (rc == SL_EPROTO && !c.curl_code && c.status / 100 == 2)
			snprintf(detail, sizeof detail, "%s", c.msg);
		else
			call_why(&c, detail, sizeof detail);
		bool busy = rc != SL_ENOMEM && !c.curl_code && s3_retryable(0, c.status, c.code);
		left = deadline - s3_clock_now_ms(NULL);
		if (busy && left > S3_TIMEOUT_MS_MIN) {
			if (!warned)
				log_warn("object store: bucket %s at %s: %s; retrying for up to %u ms "
					 "(total_timeout_ms)", st->cfg.bucket, st->cfg.endpoint, detail,
					 st->policy.total_timeout_ms);
			warned = true;
			s3_call_free(&c);
			/* The last pause leaves room for one more attempt, so the
			 * check goes on until total_timeout_ms, not a pause short. */
			int64_t pause_ms = S3_BACKOFF_CAP_MS / 2;
			if (pause_ms > left - S3_TIMEOUT_MS_MIN)
				pause_ms = left - S3_TIMEOUT_MS_MIN;
			struct timespec ts = { pause_ms / 1000, (long)(pause_ms % 1000) * 1000000L };
			nanosleep(&ts, NULL);
			continue;
		}
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
		log_error("object store: cannot use bucket %s at %s: %s%s", st->cfg.bucket,
			  st->cfg.endpoint, detail, hint);
		atomic_fetch_add(&st->errors[OBJSTORE_OP_LIST], 1);
		s3_call_free(&c);
		return rc == SL_ENOMEM ? rc : SL_ESTORE;
	}
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

	rc = open_check(st);
	if (rc) {
		s3_close(&st->base);
		return rc;
	}
	log_info("object store: s3://%s/%s at %s (region %s, %s-style, credentials from %s)",
		 st->cfg.bucket, st->cfg.prefix, st->cfg.endpoint, st->cfg.region,
		 st->cfg.path_style ? "path" : "virtual-hosted", why);
	*out = &st->base;
	return 0;

out_free:
	s3_close(&st->base);
	return rc;
}
