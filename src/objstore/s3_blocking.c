/* s3_blocking.c — the S3 store's blocking client: put, get, head, del,
 * del_many (DeleteObjects, 1000 keys a request) and list (ListObjectsV2
 * pages), as the objstore seam's blocking calls. The tools use them, and
 * the agent on libuv's thread pool (listing, deletes); they also check the
 * bucket at open.
 *
 * Each call runs its attempts with s3_retry_run, sleeping between them,
 * on an easy handle from a pool (each keeps its connections alive between
 * calls). Calls are safe from many threads: the only shared state is the
 * handle pool (under a mutex) and the counters (atomics). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "objstore/objstore.h"
#include "objstore/s3_int.h"

static void real_sleep_ms(void *arg, int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static const struct s3_clock real_clock = {
	.now_ms = s3_clock_now_ms, .sleep_ms = real_sleep_ms, .random = s3_clock_random,
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

/* One blocking attempt (s3_attempt_fn for s3_retry_run). */
static int s3_attempt(void *arg, uint32_t timeout_ms, int *retryable)
{
	struct s3_call *c = arg;
	*retryable = 0;
	CURL *h = handle_get(c->st);
	if (!h)
		return SL_ENOMEM;
	s3_attempt_setup(c, h, timeout_ms);
	CURLcode cc = curl_easy_perform(h);
	int rc = s3_attempt_finish(c, cc, retryable);
	handle_put(c->st, h);
	return rc;
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

/* A paced put's extra time, its body at the bound plus a second, for each
 * attempt and twice over for the call (a retry sends it again). */
static uint32_t paced_ms(const struct objstore_pace *p, size_t body_len)
{
	uint64_t ms = (uint64_t)body_len * 1000u / p->bytes_per_sec + 1000u;
	return ms > UINT32_MAX / 4 ? UINT32_MAX / 4 : (uint32_t)ms;
}

int s3_put(struct objstore *s, const char *key, const struct iovec *iov, int iovcnt,
	   unsigned flags)
{
	/* A PUT answered 200 is durable: nothing to defer (OBJSTORE_PUT_*
	 * but PACED mean nothing here). */
	struct s3_store *st = (struct s3_store *)s;
	struct s3_retry_policy policy = st->policy;
	struct s3_call c;
	char sha[65];
	int rc = s3_call_init(&c, st, OBJSTORE_OP_PUT, "PUT", key);
	if (rc)
		goto out;
	rc = s3_put_payload_hash(st, iov, iovcnt, sha);
	if (rc)
		goto out;
	c.iov = iov;
	c.iovcnt = iovcnt;
	for (int i = 0; i < iovcnt; i++)
		c.body_len += iov[i].iov_len;
	/* A merged or cleaned object: at most the store's bound (the
	 * agent's --maintenance-io-bytes-per-sec), the deadlines stretched
	 * by the time that takes. Produce puts (the asynchronous client)
	 * are never paced. */
	if ((flags & OBJSTORE_PUT_PACED) && s->pace && s->pace->bytes_per_sec) {
		c.pace = s->pace;
		uint32_t extra = paced_ms(s->pace, c.body_len);
		policy.attempt_timeout_ms += extra;
		policy.total_timeout_ms += 2 * extra;
	}
	rc = s3_call_headers(&c, sha, NULL);
	if (rc)
		goto out;
	rc = s3_call_end(&c, key, call_run(&c, &policy));
out:
	if (rc == SL_EINVAL || rc == SL_ENOMEM)
		atomic_fetch_add(&st->errors[OBJSTORE_OP_PUT], 1);
	s3_call_free(&c);
	return rc;
}

int s3_head(struct objstore *s, const char *key, uint64_t *size)
{
	struct s3_store *st = (struct s3_store *)s;
	struct s3_call c;
	int rc = s3_call_init(&c, st, OBJSTORE_OP_HEAD, "HEAD", key);
	if (rc == 0)
		rc = s3_call_headers(&c, S3_EMPTY_SHA256, NULL);
	if (rc == 0) {
		rc = s3_call_end(&c, key, call_run(&c, &st->policy));
		if (rc == 0)
			*size = (uint64_t)c.content_length;
	} else {
		atomic_fetch_add(&st->errors[OBJSTORE_OP_HEAD], 1);
	}
	s3_call_free(&c);
	return rc;
}

int s3_get(struct objstore *s, const char *key, uint64_t offset, size_t len, void *out)
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
	int rc = s3_call_init(&c, st, OBJSTORE_OP_GET, "GET", key);
	if (rc == 0)
		rc = s3_call_range(&c, offset, len, out);
	if (rc == 0)
		rc = s3_call_end(&c, key, call_run(&c, &st->policy));
	if (rc == SL_EINVAL || rc == SL_ENOMEM)
		atomic_fetch_add(&st->errors[OBJSTORE_OP_GET], 1);
	s3_call_free(&c);
	return rc;
}

int s3_del(struct objstore *s, const char *key)
{
	struct s3_store *st = (struct s3_store *)s;
	struct s3_call c;
	int rc = s3_call_init(&c, st, OBJSTORE_OP_DELETE, "DELETE", key);
	if (rc == 0)
		rc = s3_call_headers(&c, S3_EMPTY_SHA256, NULL);
	if (rc == 0) {
		rc = call_run(&c, &st->policy);
		if (rc == SL_ENOTFOUND)
			rc = 0; /* some servers say 404; S3 says 204 */
		rc = s3_call_end(&c, key, rc);
	} else {
		atomic_fetch_add(&st->errors[OBJSTORE_OP_DELETE], 1);
	}
	s3_call_free(&c);
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
	s3_call_init(&c, st, OBJSTORE_OP_DELETE, "DeleteObjects", NULL);
	int rc = s3_delete_body(st->cfg.prefix, d->keys, d->m, &body);
	if (rc == 0)
		rc = s3_sha256_hex(body.data, body.len, sha);
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
	rc = s3_call_headers(&c, sha, md5_line);
	if (rc)
		goto out_fail_all;
	rc = call_run(&c, &st->policy);
	if (rc) {
		s3_call_fail_log(&c, "?delete", rc);
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
		s3_call_fail_log(&c, "?delete", rc);
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
	s3_call_free(&c);
	kbuf_free(&body);
	return rc;
}

int s3_del_many(struct objstore *s, const char *const *keys, size_t n, size_t *deleted,
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

int s3_list_page_get(struct s3_store *st, struct s3_call *c, const char *full_prefix,
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

int s3_list(struct objstore *s, const char *prefix, objstore_list_fn fn, void *arg)
{
	struct s3_store *st = (struct s3_store *)s;
	struct s3_call c;
	char full[S3_PREFIX_MAX + S3_KEY_MAX + 2];
	char *token = NULL;
	size_t plen = strlen(st->cfg.prefix);
	if (!prefix)
		prefix = "";
	int rc = s3_call_init(&c, st, OBJSTORE_OP_LIST, "LIST", NULL);
	if (strlen(prefix) > S3_KEY_MAX) {
		rc = SL_EINVAL;
		goto out;
	}
	snprintf(full, sizeof full, "%s%s", st->cfg.prefix, prefix);
	rc = s3_call_headers(&c, S3_EMPTY_SHA256, NULL);
	while (rc == 0) {
		struct s3_list_page page;
		rc = s3_list_page_get(st, &c, full, token, 1000, &st->policy, &page);
		if (rc) {
			s3_call_fail_log(&c, prefix, rc);
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
	s3_call_free(&c);
	return rc;
}
