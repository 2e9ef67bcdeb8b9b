/* s3_int.h — the S3 store's private interface, shared by its files.
 *
 * First its pure half (s3_pure.c), kept free of I/O so the unit tests can
 * reach it: URL parsing, URI encoding for SigV4, the XML of ListObjectsV2
 * pages, DeleteObjects requests and answers and error bodies (expat), the
 * shared credentials file, and the retry policy (capped exponential
 * backoff with full jitter, driven by an injectable clock and random
 * source). Then the store itself: its state, one request (s3.c) and the
 * methods of its blocking client (s3_blocking.c) and of its asynchronous
 * client on the event loop (s3_async.c). */
#ifndef SLUICE_OBJSTORE_S3_INT_H
#define SLUICE_OBJSTORE_S3_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "base/buf.h"
#include "base/limits.h"

/* S3's own formats and this client's tuning stay here; the limits on
 * what a server or the agent can make the client hold (list entries,
 * response bytes, calls in flight and queued) are in base/limits.h. */

/* S3 bucket names are 3..63 chars. */
#define S3_BUCKET_MAX 63
/* Our keys are short; S3 allows 1024 bytes per key, prefix included. */
#define S3_PREFIX_MAX 512
#define S3_KEY_MAX 1024
#define S3_ENDPOINT_MAX 256
#define S3_REGION_MAX 63
/* DeleteObjects takes at most 1000 keys a request (S3's limit). */
#define S3_DELETE_KEYS_MAX 1000
/* Credentials and tokens (session tokens run to ~2 KiB). */
#define S3_SECRET_MAX 4096

/* PUT bodies at least this big have their SHA-256 computed on the thread
 * pool rather than on the loop (8 MiB take ~20-40 ms). */
#define S3_ASYNC_SHA_POOL_BYTES (64 * 1024)

#define S3_ATTEMPT_TIMEOUT_MS_DEFAULT 10000
#define S3_TOTAL_TIMEOUT_MS_DEFAULT 30000
/* Bounds for the URL's timeouts: at least 100 ms, at most 1 hour. */
#define S3_TIMEOUT_MS_MIN 100
#define S3_TIMEOUT_MS_MAX 3600000

struct s3_config {
	char bucket[S3_BUCKET_MAX + 1];
	char prefix[S3_PREFIX_MAX + 1];       /* "" or ends with '/' */
	char endpoint[S3_ENDPOINT_MAX + 1];   /* "scheme://host[:port]", no
					       * trailing '/'; "" = AWS */
	char region[S3_REGION_MAX + 1];       /* "" = not given */
	int path_style;                       /* -1 = not given */
	int verify_tls;                       /* 0 or 1 */
	int payload_signing;                  /* -1 = not given: resolved to 1
					       * for http, 0 for https */
	uint32_t attempt_timeout_ms;
	uint32_t total_timeout_ms;
};

/* Parse "s3://BUCKET[/PREFIX][?k=v&...]" (query values may be
 * %-encoded). Returns 0, or SL_EINVAL with a reason in why. */
int s3_url_parse(const char *url, struct s3_config *out, char *why, size_t why_cap);

/* Fill in what the URL left out (region, endpoint, path_style,
 * payload_signing) given the
 * region found in the environment (NULL: none). Then the base URL of
 * every request is written to base: "scheme://host[:port]/BUCKET" for
 * path style, "scheme://BUCKET.host[:port]" otherwise. Returns 0 or
 * SL_EINVAL (too long). */
int s3_config_resolve(struct s3_config *c, const char *env_region, char *base,
		      size_t base_cap);

/* SigV4 URI encoding: A-Z a-z 0-9 - . _ ~ stay, '/' stays when
 * keep_slash, every other byte becomes %XX (upper-case hex). Returns 0 or
 * SL_EINVAL (does not fit in cap, NUL included). */
int s3_uri_encode(const char *in, int keep_slash, char *out, size_t cap);

/* ---- XML ---- */

struct s3_list_entry {
	char *key;        /* owned by the page */
	uint64_t size;
	int64_t mtime_ms; /* 0 if absent or unparsable */
};

struct s3_list_page {
	struct s3_list_entry *v;
	size_t n;
	int truncated;
	char *next_token; /* NULL when absent; owned by the page */
};

/* Parse one ListObjectsV2 page (<ListBucketResult>). Returns 0,
 * SL_EPROTO (not well-formed, another root, a DOCTYPE, a bad number),
 * SL_ELIMIT (too many keys, a key too long) or SL_ENOMEM; on error the
 * page is left empty. Free with s3_list_page_free. */
int s3_xml_list_parse(const char *xml, size_t len, struct s3_list_page *out);
void s3_list_page_free(struct s3_list_page *p);

/* Parse an S3 error body (<Error><Code>..</Code><Message>..</Message>).
 * code and message are truncated to fit. Returns 0 or SL_EPROTO (then
 * both are ""). */
int s3_xml_error_parse(const char *xml, size_t len, char *code, size_t code_cap, char *msg,
		       size_t msg_cap);

/* The body of one DeleteObjects request (quiet mode: only failures are
 * answered) for n keys, each under prefix, XML-escaped, into out (its
 * previous content replaced). Returns 0, SL_EINVAL (n is 0 or over
 * S3_DELETE_KEYS_MAX, a key empty or longer than S3_KEY_MAX, prefix too
 * long) or SL_ENOMEM. */
int s3_delete_body(const char *prefix, const char *const *keys, size_t n, struct kbuf *out);

/* Called for each <Error> of a DeleteObjects answer: the full key (the
 * store's prefix included), S3's code and message ("" when absent). */
typedef void (*s3_delete_error_fn)(void *arg, const char *key, const char *code,
				   const char *msg);

/* Parse a DeleteObjects answer (<DeleteResult>): *deleted counts the
 * <Deleted> entries (none in quiet mode), *errors the <Error> entries, each
 * also passed to fn (may be NULL). Returns 0, or SL_EPROTO (not
 * well-formed, another root, a DOCTYPE, an <Error> without a key) or
 * SL_ELIMIT (a key too long), with both counts 0. */
int s3_xml_delete_parse(const char *xml, size_t len, size_t *deleted, size_t *errors,
			s3_delete_error_fn fn, void *arg);

/* "2009-10-12T17:50:30.000Z" (fraction optional) → ms since the epoch;
 * -1 when it does not parse. */
int64_t s3_time_parse_ms(const char *s);

/* ---- credentials file ---- */

/* From the text of an AWS shared credentials or config file, take the
 * keys of section [profile] or [profile NAME]. Outputs absent from the
 * section are left "". Returns 0 when both the key id and the secret were
 * found, SL_ENOTFOUND otherwise. */
int s3_profile_parse(const char *text, const char *profile, char *key_id, size_t key_id_cap,
		     char *secret, size_t secret_cap, char *token, size_t token_cap);

/* ---- retries ---- */

/* Is a failed attempt worth retrying? curl_code is the CURLcode of the
 * transfer (0 if it completed), http_status the HTTP status (0 if none),
 * error_code the S3 <Code> ("" or NULL if none). Retried: connection
 * failures, resets and timeouts; 5xx; 429; the throttling and transient
 * codes AWS SDKs retry (SlowDown, RequestTimeout, ...). Not retried:
 * other 4xx, TLS verification failures, malformed URLs. */
int s3_retryable(int curl_code, long http_status, const char *error_code);

struct s3_retry_policy {
	uint32_t base_ms;            /* first backoff cap */
	uint32_t cap_ms;             /* backoff cap after growth */
	uint32_t attempt_timeout_ms; /* one request */
	uint32_t total_timeout_ms;   /* the whole call, backoffs included */
	uint32_t attempts_max;       /* 0: until the total deadline */
};

/* Full jitter: a uniformly random delay in [0, min(cap, base * 2^retry)],
 * retry counting from 0, drawn from random. */
uint64_t s3_backoff_ms(const struct s3_retry_policy *p, unsigned retry, uint64_t random);

struct s3_clock {
	int64_t (*now_ms)(void *arg);             /* monotonic */
	void (*sleep_ms)(void *arg, int64_t ms);
	uint64_t (*random)(void *arg);
	void *arg;
};

/* One attempt, given its timeout. Returns 0 or a negative sl_err, and sets
 * *retryable when a failure may be retried. */
typedef int (*s3_attempt_fn)(void *arg, uint32_t timeout_ms, int *retryable);

/* The steps of the policy, shared by s3_retry_run (blocking) and the
 * asynchronous calls on the event loop (s3_async.c), which cannot sleep.
 *
 * The timeout of an attempt started at now for a call whose deadline is
 * deadline_ms: attempt_timeout_ms, cut to the time left, at least 1. */
uint32_t s3_retry_timeout_ms(const struct s3_retry_policy *p, int64_t deadline_ms, int64_t now);

/* After attempts (>= 1) attempts of which the last failed retryably, at
 * now: returns 1 and sets *delay_ms to the backoff before the next
 * attempt, or 0 when the call should give up (attempts_max reached, or
 * the backoff would leave the next attempt less than S3_TIMEOUT_MS_MIN/2
 * before the deadline). random feeds the jitter. */
int s3_retry_next(const struct s3_retry_policy *p, int64_t deadline_ms, int64_t now,
		  unsigned attempts, uint64_t random, int64_t *delay_ms);

/* Call attempt until it succeeds, fails for good, attempts_max is reached
 * or the next backoff would end past the total deadline; each attempt's
 * timeout is cut to the time left. Always makes at least one attempt.
 * Returns what the last attempt returned; *retries counts the attempts
 * after the first. */
int s3_retry_run(const struct s3_retry_policy *p, const struct s3_clock *clk,
		 s3_attempt_fn attempt, void *arg, unsigned *retries);

/* ==== the store: s3.c, and its two clients s3_blocking.c, s3_async.c ==== */

#include <pthread.h>
#include <stdatomic.h>

#include <curl/curl.h>
#include <uv.h>

#include "objstore/objstore.h"

/* Idle handles kept for reuse; one per worker thread is enough. */
#define S3_HANDLES_MAX 64
#define S3_URL_MAX (S3_ENDPOINT_MAX + S3_BUCKET_MAX + 3 * (S3_PREFIX_MAX + S3_KEY_MAX) + 3 * 2048)
/* SHA-256 of the empty body. */
#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct s3_async; /* s3_async.c */

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

	/* The blocking client's idle easy handles. */
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
	/* A PUT's body: the caller's pieces, read by curl through a callback
	 * (never gathered into one buffer; an attempt and a rewind start
	 * again from the first piece). body_len is their sum. */
	const struct iovec *iov;
	int iovcnt;
	int iov_at;        /* the piece being sent */
	size_t iov_skip;   /* bytes of it sent */
	/* A background put's (OBJSTORE_PUT_PACED, the blocking client's):
	 * the body is read no faster than this bound (NULL: at once). */
	struct objstore_pace *pace;
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

/* ---- one request (s3.c) ---- */

/* Start call c of operation op ("PUT"... in what, for messages) on st:
 * counts the call; with key, c's URL is that key's object (NULL: the
 * bucket root, for listings and DeleteObjects, whose URL the caller
 * writes). Returns 0 or SL_EINVAL (not a valid key, URL too long); c must
 * be freed with s3_call_free either way. */
int s3_call_init(struct s3_call *c, struct s3_store *st, int op, const char *what,
		 const char *key);
void s3_call_free(struct s3_call *c);

/* c's headers: x-amz-content-sha256 of payload_sha256, the session
 * token, extra (one more header line: Range, Content-MD5; or NULL) and
 * the content type when c has a body. Returns 0 or SL_ENOMEM. */
int s3_call_headers(struct s3_call *c, const char *payload_sha256, const char *extra);

/* The first half of an attempt, on easy handle h (fresh or reset): the
 * per-attempt state of c and every option of the request. Counts the
 * request. */
void s3_attempt_setup(struct s3_call *c, CURL *h, uint32_t timeout_ms);

/* The second half: what the transfer on c->h that ended with cc means.
 * Reads the handle's status before the caller gives the handle back.
 * Returns 0 or a negative sl_err (SL_ENOTFOUND for a 404 but
 * NoSuchBucket, SL_EPROTO for an answer that does not fit, SL_ETIMEDOUT,
 * SL_ESTORE), and sets *retryable. */
int s3_attempt_finish(struct s3_call *c, CURLcode cc, int *retryable);

/* Make c a GET of bytes [offset, offset + len) (len > 0) into out: the
 * Range header and where the body goes. Returns 0 or SL_ENOMEM. */
int s3_call_range(struct s3_call *c, uint64_t offset, size_t len, void *out);

/* What a finished PUT, GET, HEAD or DELETE call's result rc means, for
 * both clients: counts the bytes of a success, turns a HEAD answer
 * without a length into SL_EPROTO, and counts and logs a failure (a
 * missing key only for a PUT). Returns rc, or that SL_EPROTO. */
int s3_call_end(struct s3_call *c, const char *key, int rc);

/* Count a failed call and log one line with the last attempt's cause. */
void s3_call_fail_log(struct s3_call *c, const char *key, int rc);

/* A store key we can put in a URL: 1..S3_KEY_MAX printable ASCII bytes
 * without spaces, not starting with '/'. Returns 1 or 0. */
int s3_key_ok(const char *key);

/* Lower-case hex SHA-256 of data (of iov[0..iovcnt) in order). Returns 0
 * or SL_ENOMEM. */
int s3_sha256_hex(const void *data, size_t len, char out[65]);
int s3_sha256_iov_hex(const struct iovec *iov, int iovcnt, char out[65]);
/* The x-amz-content-sha256 of a PUT of iov: its SHA-256 in hex, or
 * UNSIGNED-PAYLOAD when the store does not sign payloads (https: TLS
 * guards the body on the way, as the AWS CLI's payload_signing_enabled
 * default; the records inside carry their own CRC-32C). */
int s3_put_payload_hash(const struct s3_store *st, const struct iovec *iov, int iovcnt,
			char out[65]);

/* The real clock for the retry policy: monotonic ms, and a per-thread
 * random source for the jitter (arg unused). */
int64_t s3_clock_now_ms(void *arg);
uint64_t s3_clock_random(void *arg);

/* ---- the blocking client (s3_blocking.c): objstore's blocking methods ---- */

int s3_put(struct objstore *s, const char *key, const struct iovec *iov, int iovcnt,
	   unsigned flags);
int s3_get(struct objstore *s, const char *key, uint64_t offset, size_t len, void *out);
int s3_head(struct objstore *s, const char *key, uint64_t *size);
int s3_del(struct objstore *s, const char *key);
int s3_del_many(struct objstore *s, const char *const *keys, size_t n, size_t *deleted,
		bool *failed);
int s3_list(struct objstore *s, const char *prefix, objstore_list_fn fn, void *arg);

/* One ListObjectsV2 page (at most max_keys) of the bucket's keys under
 * full_prefix (the store's prefix included), after token (NULL: the
 * first), with policy; c comes from s3_call_init and s3_call_headers and
 * keeps the failure details. Returns 0 (free page with
 * s3_list_page_free) or a negative sl_err. */
int s3_list_page_get(struct s3_store *st, struct s3_call *c, const char *full_prefix,
		     const char *token, unsigned max_keys, const struct s3_retry_policy *policy,
		     struct s3_list_page *page);

/* ---- the asynchronous client (s3_async.c): objstore's methods on the loop ---- */

int s3_put_async(struct objstore *s, uv_loop_t *loop, const char *key, const struct iovec *iov,
		 int iovcnt, unsigned flags, objstore_done_fn done, void *arg);
int s3_get_async(struct objstore *s, uv_loop_t *loop, const char *key, uint64_t offset,
		 size_t len, void *out, objstore_done_fn done, void *arg);
void s3_async_close(struct objstore *s);

/* At s3_close, st->as set: tear the machinery down, without touching the
 * loop when s3_async_close was not called (the loop has ended then). */
void s3_async_free(struct s3_store *st);

#endif
