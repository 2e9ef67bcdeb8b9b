/* test_s3.c — the pure half of the S3 store (src/objstore/s3_pure.c): URL
 * parsing and resolution, SigV4 URI encoding, ListObjectsV2 and error XML,
 * timestamps, the credentials file, retry classification, backoff and the
 * retry loop under an injected clock, and the policy's steps; plus
 * objstore_open's refusals that need no server (bad URL, no credentials,
 * unreachable endpoint). And the asynchronous calls (curl multi on a uv
 * loop) against a scripted HTTP server on a thread of this test: bounded
 * concurrency, retries on SlowDown, timeouts against a server that never
 * answers while the loop stays responsive, closing with calls in flight. */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <uv.h>

#include "base/clock.h"
#include "base/err.h"
#include "objstore/objstore.h"
#include "objstore/s3_int.h"

/* ---- URLs ---- */

static void test_url_basic(void **state)
{
	struct s3_config c;
	char why[256];
	assert_int_equal(s3_url_parse("s3://my-bucket/a/b//?endpoint=http://127.0.0.1:9000/"
				      "&region=eu-west-1&timeout_ms=500&total_timeout_ms=2000"
				      "&verify_tls=false&path_style=true&payload_signing=no",
				      &c, why, sizeof why),
			 0);
	assert_int_equal(c.payload_signing, 0);
	assert_string_equal(c.bucket, "my-bucket");
	assert_string_equal(c.prefix, "a/b/");
	assert_string_equal(c.endpoint, "http://127.0.0.1:9000");
	assert_string_equal(c.region, "eu-west-1");
	assert_int_equal(c.attempt_timeout_ms, 500);
	assert_int_equal(c.total_timeout_ms, 2000);
	assert_int_equal(c.verify_tls, 0);
	assert_int_equal(c.path_style, 1);

	assert_int_equal(s3_url_parse("s3://bkt", &c, why, sizeof why), 0);
	assert_string_equal(c.bucket, "bkt");
	assert_string_equal(c.prefix, "");
	assert_string_equal(c.endpoint, "");
	assert_string_equal(c.region, "");
	assert_int_equal(c.path_style, -1);
	assert_int_equal(c.verify_tls, 1);
	assert_int_equal(c.payload_signing, -1);
	assert_int_equal(c.attempt_timeout_ms, S3_ATTEMPT_TIMEOUT_MS_DEFAULT);
	assert_int_equal(c.total_timeout_ms, S3_TOTAL_TIMEOUT_MS_DEFAULT);

	/* %-encoded values; total below attempt is raised to it. */
	assert_int_equal(s3_url_parse("s3://bkt/p?endpoint=https%3A%2F%2Fminio.local%3A9000"
				      "&timeout_ms=5000&total_timeout_ms=1000",
				      &c, why, sizeof why),
			 0);
	assert_string_equal(c.endpoint, "https://minio.local:9000");
	assert_string_equal(c.prefix, "p/");
	assert_int_equal(c.total_timeout_ms, 5000);

	assert_int_equal(s3_url_parse("s3://bkt/?", &c, why, sizeof why), 0);
	assert_string_equal(c.prefix, "");
}

static void test_url_bad(void **state)
{
	static const char *const bad[] = {
		"file:/x",
		"s3://",
		"s3://ab",                        /* bucket too short */
		"s3://bad*bucket/x",
		"s3://bkt/a/../b",
		"s3://bkt/a/./b",
		"s3://bkt/a b",
		"s3://bkt/x#frag",
		"s3://bkt/x?nope=1",              /* unknown parameter */
		"s3://bkt/x?endpoint",            /* no '=' */
		"s3://bkt/x?endpoint=ftp://h",    /* scheme */
		"s3://bkt/x?endpoint=http://",    /* no host */
		"s3://bkt/x?endpoint=http://h/path",
		"s3://bkt/x?endpoint=http://h:",
		"s3://bkt/x?path_style=maybe",
		"s3://bkt/x?verify_tls=",
		"s3://bkt/x?payload_signing=sometimes",
		"s3://bkt/x?timeout_ms=abc",
		"s3://bkt/x?timeout_ms=5",        /* below the minimum */
		"s3://bkt/x?timeout_ms=99999999999",
		"s3://bkt/x?region=",
		"s3://bkt/x?region=a/b",
		"s3://bkt/x?region=%zz",
		"s3://bkt/x?region=%4",
	};
	struct s3_config c;
	char why[256];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why[0] = 0;
		if (s3_url_parse(bad[i], &c, why, sizeof why) != SL_EINVAL)
			fail_msg("accepted %s", bad[i]);
		assert_true(why[0] != 0);
	}
	char longp[S3_PREFIX_MAX + 32] = "s3://bkt/";
	memset(longp + 9, 'a', S3_PREFIX_MAX + 5);
	longp[9 + S3_PREFIX_MAX + 5] = 0;
	assert_int_equal(s3_url_parse(longp, &c, why, sizeof why), SL_EINVAL);
}

static void test_url_resolve(void **state)
{
	struct s3_config c;
	char base[512];
	/* AWS: virtual-hosted, regional endpoint, region from the env. */
	assert_int_equal(s3_url_parse("s3://bkt/p", &c, NULL, 0), 0);
	assert_int_equal(s3_config_resolve(&c, "eu-central-1", base, sizeof base), 0);
	assert_string_equal(c.region, "eu-central-1");
	assert_string_equal(c.endpoint, "https://s3.eu-central-1.amazonaws.com");
	assert_int_equal(c.path_style, 0);
	assert_string_equal(base, "https://bkt.s3.eu-central-1.amazonaws.com");
	assert_int_equal(c.payload_signing, 0); /* https: TLS guards the body */

	/* No region anywhere: us-east-1. A dotted bucket goes path-style. */
	assert_int_equal(s3_url_parse("s3://my.bkt", &c, NULL, 0), 0);
	assert_int_equal(s3_config_resolve(&c, NULL, base, sizeof base), 0);
	assert_string_equal(c.region, "us-east-1");
	assert_int_equal(c.path_style, 1);
	assert_string_equal(base, "https://s3.us-east-1.amazonaws.com/my.bkt");

	/* A custom endpoint: path style unless told otherwise; the URL's
	 * region wins over the environment. */
	assert_int_equal(s3_url_parse("s3://bkt?endpoint=http://127.0.0.1:4568&region=r1",
				      &c, NULL, 0),
			 0);
	assert_int_equal(s3_config_resolve(&c, "env-region", base, sizeof base), 0);
	assert_string_equal(c.region, "r1");
	assert_string_equal(base, "http://127.0.0.1:4568/bkt");
	assert_int_equal(c.payload_signing, 1); /* http: nothing else does */
	assert_int_equal(s3_url_parse("s3://bkt?endpoint=http://h:1&payload_signing=false", &c,
				      NULL, 0),
			 0);
	assert_int_equal(s3_config_resolve(&c, NULL, base, sizeof base), 0);
	assert_int_equal(c.payload_signing, 0);
	assert_int_equal(s3_url_parse("s3://bkt?endpoint=http://minio:9000&path_style=false",
				      &c, NULL, 0),
			 0);
	assert_int_equal(s3_config_resolve(&c, NULL, base, sizeof base), 0);
	assert_string_equal(base, "http://bkt.minio:9000");
	assert_int_equal(s3_config_resolve(&c, NULL, base, 8), SL_EINVAL);
}

static void test_uri_encode(void **state)
{
	char out[64];
	assert_int_equal(s3_uri_encode("objects/a-b_c.d~e", 1, out, sizeof out), 0);
	assert_string_equal(out, "objects/a-b_c.d~e");
	assert_int_equal(s3_uri_encode("a/b c+d=e%", 0, out, sizeof out), 0);
	assert_string_equal(out, "a%2Fb%20c%2Bd%3De%25");
	assert_int_equal(s3_uri_encode("\xc3\xa9", 1, out, sizeof out), 0);
	assert_string_equal(out, "%C3%A9");
	assert_int_equal(s3_uri_encode("", 1, out, sizeof out), 0);
	assert_string_equal(out, "");
	assert_int_equal(s3_uri_encode("abcd", 1, out, 5), 0);
	assert_int_equal(s3_uri_encode("abcd", 1, out, 4), SL_EINVAL);
	assert_int_equal(s3_uri_encode("a b", 1, out, 5), SL_EINVAL);
}

/* ---- XML ---- */

static const char LIST_PAGE[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	"<Name>bkt</Name><Prefix>p/objects/</Prefix><KeyCount>2</KeyCount>"
	"<MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>"
	"<Contents><Key>p/objects/a&amp;b.obj</Key>"
	"<LastModified>2024-01-02T03:04:05.678Z</LastModified>"
	"<ETag>&quot;abc&quot;</ETag><Size>123</Size><StorageClass>STANDARD</StorageClass>"
	"<Owner><ID>x</ID><DisplayName>y</DisplayName></Owner></Contents>"
	"<Contents><Key>p/objects/c.obj</Key><LastModified>1970-01-01T00:00:01Z</LastModified>"
	"<Size>18446744073709551615</Size></Contents>"
	"<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
	"</ListBucketResult>";

static void test_xml_list(void **state)
{
	struct s3_list_page p;
	assert_int_equal(s3_xml_list_parse(LIST_PAGE, strlen(LIST_PAGE), &p), 0);
	assert_int_equal(p.n, 2);
	assert_string_equal(p.v[0].key, "p/objects/a&b.obj");
	assert_int_equal(p.v[0].size, 123);
	assert_int_equal(p.v[0].mtime_ms, 1704164645678LL);
	assert_string_equal(p.v[1].key, "p/objects/c.obj");
	assert_true(p.v[1].size == UINT64_MAX);
	assert_int_equal(p.v[1].mtime_ms, 1000);
	assert_int_equal(p.truncated, 1);
	assert_string_equal(p.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
	s3_list_page_free(&p);

	/* The last page, and an empty listing. */
	static const char last[] =
		"<ListBucketResult><IsTruncated>false</IsTruncated>"
		"<Contents><Key>k</Key><Size>0</Size></Contents></ListBucketResult>";
	assert_int_equal(s3_xml_list_parse(last, strlen(last), &p), 0);
	assert_int_equal(p.n, 1);
	assert_int_equal(p.truncated, 0);
	assert_null(p.next_token);
	assert_int_equal(p.v[0].mtime_ms, 0);
	s3_list_page_free(&p);
	static const char empty[] = "<ListBucketResult><KeyCount>0</KeyCount></ListBucketResult>";
	assert_int_equal(s3_xml_list_parse(empty, strlen(empty), &p), 0);
	assert_int_equal(p.n, 0);
	s3_list_page_free(&p);

	/* A page split mid-way through the text still parses (expat hands
	 * character data in pieces). */
	static const char split[] = "<ListBucketResult><Contents><Key>a&lt;b&gt;c</Key>"
				    "<Size>7</Size></Contents></ListBucketResult>";
	assert_int_equal(s3_xml_list_parse(split, strlen(split), &p), 0);
	assert_string_equal(p.v[0].key, "a<b>c");
	s3_list_page_free(&p);
}

static void test_xml_list_bad(void **state)
{
	struct s3_list_page p;
	static const char *const bad_proto[] = {
		"",
		"not xml",
		"<ListBucketResult><Contents><Key>k</Key>",              /* truncated */
		"<Error><Code>NoSuchBucket</Code></Error>",              /* another root */
		"<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key></Key></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
		("<ListBucketResult><Contents><Key>k</Key><Size>99999999999999999999</Size>"
		 "</Contents></ListBucketResult>"),
		"<!DOCTYPE x [<!ENTITY a \"aaaa\">]><ListBucketResult/>",
	};
	for (size_t i = 0; i < sizeof bad_proto / sizeof bad_proto[0]; i++) {
		int rc = s3_xml_list_parse(bad_proto[i], strlen(bad_proto[i]), &p);
		if (rc != SL_EPROTO)
			fail_msg("case %zu: got %d", i, rc);
		assert_int_equal(p.n, 0);
		assert_null(p.v);
	}

	/* A key over 1024 bytes. */
	char *xml = malloc(4096);
	strcpy(xml, "<ListBucketResult><Contents><Key>");
	size_t n = strlen(xml);
	memset(xml + n, 'k', S3_KEY_MAX + 1);
	strcpy(xml + n + S3_KEY_MAX + 1, "</Key></Contents></ListBucketResult>");
	assert_int_equal(s3_xml_list_parse(xml, strlen(xml), &p), SL_ELIMIT);
	free(xml);

	/* Too many keys. */
	size_t cap = (SL_S3_LIST_ENTRIES_MAX + 2) * 48 + 64;
	xml = malloc(cap);
	n = (size_t)sprintf(xml, "<ListBucketResult>");
	for (int i = 0; i <= SL_S3_LIST_ENTRIES_MAX; i++)
		n += (size_t)sprintf(xml + n, "<Contents><Key>k%d</Key></Contents>", i);
	n += (size_t)sprintf(xml + n, "</ListBucketResult>");
	assert_int_equal(s3_xml_list_parse(xml, n, &p), SL_ELIMIT);
	assert_int_equal(p.n, 0);
	free(xml);
}

static void test_xml_error(void **state)
{
	char code[32], msg[64];
	static const char body[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
		"<RequestId>abc</RequestId><HostId>def</HostId></Error>";
	assert_int_equal(s3_xml_error_parse(body, strlen(body), code, sizeof code, msg, sizeof msg), 0);
	assert_string_equal(code, "SlowDown");
	assert_string_equal(msg, "Please reduce your request rate.");

	/* Truncated to fit. */
	char small[5];
	assert_int_equal(s3_xml_error_parse(body, strlen(body), small, sizeof small, msg, sizeof msg), 0);
	assert_string_equal(small, "Slow");

	/* Nested Code elsewhere is not the error code. */
	static const char nested[] = "<Error><Detail><Code>X</Code></Detail><Code>NoSuchKey</Code></Error>";
	assert_int_equal(s3_xml_error_parse(nested, strlen(nested), code, sizeof code, msg, sizeof msg), 0);
	assert_string_equal(code, "NoSuchKey");
	assert_string_equal(msg, "");

	assert_int_equal(s3_xml_error_parse("", 0, code, sizeof code, msg, sizeof msg), SL_EPROTO);
	assert_string_equal(code, "");
	static const char html[] = "<html><body>503</body></html>";
	assert_int_equal(s3_xml_error_parse(html, strlen(html), code, sizeof code, msg, sizeof msg),
			 SL_EPROTO);
	assert_string_equal(code, "");
}

/* ---- DeleteObjects ---- */

static size_t count_of(const char *hay, size_t len, const char *needle)
{
	size_t n = 0, nl = strlen(needle);
	for (size_t i = 0; i + nl <= len; i++)
		if (!memcmp(hay + i, needle, nl))
			n++;
	return n;
}

static void test_delete_body(void **state)
{
	struct kbuf b;
	kbuf_init(&b);
	const char *keys[] = { "objects/a.obj", "o/<&>\"'.obj" };
	assert_int_equal(s3_delete_body("pre/", keys, 2, &b), 0);
	char *xml = strndup((const char *)b.data, b.len);
	assert_non_null(strstr(xml, "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
				    "<Quiet>true</Quiet>"
				    "<Object><Key>pre/objects/a.obj</Key></Object>"
				    "<Object><Key>pre/o/&lt;&amp;&gt;&quot;&apos;.obj</Key></Object>"
				    "</Delete>"));
	free(xml);
	/* Replaces what was there. */
	assert_int_equal(s3_delete_body("", keys, 1, &b), 0);
	assert_int_equal(count_of((const char *)b.data, b.len, "<Object>"), 1);
	assert_int_equal(count_of((const char *)b.data, b.len, "<Key>objects/a.obj</Key>"), 1);

	/* At most 1000 keys, at least one; keys 1..1024 bytes. */
	const char **many = calloc(S3_DELETE_KEYS_MAX + 1, sizeof *many);
	for (int i = 0; i <= S3_DELETE_KEYS_MAX; i++)
		many[i] = "objects/x.obj";
	assert_int_equal(s3_delete_body("", many, S3_DELETE_KEYS_MAX, &b), 0);
	assert_int_equal(count_of((const char *)b.data, b.len, "<Object>"), S3_DELETE_KEYS_MAX);
	assert_int_equal(s3_delete_body("", many, S3_DELETE_KEYS_MAX + 1, &b), SL_EINVAL);
	assert_int_equal(s3_delete_body("", many, 0, &b), SL_EINVAL);
	free(many);
	const char *empty[] = { "" };
	assert_int_equal(s3_delete_body("", empty, 1, &b), SL_EINVAL);
	kbuf_free(&b);
}

struct del_errs {
	int n;
	char keys[4][64];
	char codes[4][32];
	char msgs[4][64];
};

static void on_del_err(void *arg, const char *key, const char *code, const char *msg)
{
	struct del_errs *e = arg;
	if (e->n < 4) {
		snprintf(e->keys[e->n], sizeof e->keys[0], "%s", key);
		snprintf(e->codes[e->n], sizeof e->codes[0], "%s", code);
		snprintf(e->msgs[e->n], sizeof e->msgs[0], "%s", msg);
	}
	e->n++;
}

/* Parse xml (0 expected) and check both counts and the callback's. */
static void expect_delete(const char *xml, size_t want_deleted, size_t want_errors,
			  struct del_errs *e)
{
	size_t deleted = 9, errors = 9;
	e->n = 0;
	assert_int_equal(s3_xml_delete_parse(xml, strlen(xml), &deleted, &errors, on_del_err, e), 0);
	assert_int_equal(deleted, want_deleted);
	assert_int_equal(errors, want_errors);
	assert_int_equal(e->n, (int)want_errors);
}

static void test_xml_delete(void **state)
{
	size_t deleted = 9, errors = 9;
	struct del_errs e = { 0 };
	/* Quiet mode, all deleted: an empty result. */
	static const char quiet[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
				    "<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
				    "</DeleteResult>";
	expect_delete(quiet, 0, 0, &e);

	static const char mixed[] =
		"<DeleteResult><Deleted><Key>p/a.obj</Key></Deleted>"
		"<Error><Key>p/b&amp;c.obj</Key><Code>AccessDenied</Code>"
		"<Message>Access Denied</Message></Error>"
		"<Deleted><Key>p/d.obj</Key><DeleteMarker>true</DeleteMarker></Deleted>"
		"<Error><Code>InternalError</Code><Key>p/e.obj</Key></Error>"
		"</DeleteResult>";
	expect_delete(mixed, 2, 2, &e);
	assert_string_equal(e.keys[0], "p/b&c.obj");
	assert_string_equal(e.codes[0], "AccessDenied");
	assert_string_equal(e.msgs[0], "Access Denied");
	assert_string_equal(e.keys[1], "p/e.obj");
	assert_string_equal(e.codes[1], "InternalError");
	assert_string_equal(e.msgs[1], "");
	/* fn may be NULL. */
	assert_int_equal(s3_xml_delete_parse(mixed, strlen(mixed), &deleted, &errors, NULL, NULL), 0);
	assert_int_equal(errors, 2);

	static const char *const bad[] = {
		"",
		"<Error><Code>AccessDenied</Code></Error>", /* a whole-request error */
		"<DeleteResult><Error><Code>X</Code></Error></DeleteResult>", /* no key */
		"<DeleteResult><Deleted><Key>a</Key>",      /* truncated */
		"<!DOCTYPE x [<!ENTITY a \"aaaa\">]><DeleteResult/>",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = s3_xml_delete_parse(bad[i], strlen(bad[i]), &deleted, &errors, NULL, NULL);
		if (rc != SL_EPROTO)
			fail_msg("case %zu: got %d", i, rc);
		assert_int_equal(deleted, 0);
		assert_int_equal(errors, 0);
	}
}

static void test_time(void **state)
{
	assert_int_equal(s3_time_parse_ms("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(s3_time_parse_ms("1970-01-01T00:00:00.5Z"), 500);
	assert_int_equal(s3_time_parse_ms("2009-10-12T17:50:30.000Z"), 1255369830000LL);
	assert_int_equal(s3_time_parse_ms("2009-10-12T17:50:30.123456Z"), 1255369830123LL);
	assert_int_equal(s3_time_parse_ms("2009-10-12"), -1);
	assert_int_equal(s3_time_parse_ms("2009-13-12T17:50:30Z"), -1);
	assert_int_equal(s3_time_parse_ms("2009-10-12T17:50:30.Z"), -1);
	assert_int_equal(s3_time_parse_ms("2009-10-12T17:50:30+01:00"), -1);
}

static void test_profile(void **state)
{
	static const char text[] =
		"# comment\n"
		"[default]\n"
		"aws_access_key_id = AKIDDEFAULT\n"
		"aws_secret_access_key=secretdefault  \n"
		"\n"
		"[profile ci]\r\n"
		"; another comment\r\n"
		"aws_access_key_id=AKIDCI\r\n"
		"aws_secret_access_key = secret ci\r\n"
		"aws_session_token = TOKEN\r\n"
		"[half]\n"
		"aws_access_key_id=only\n";
	char id[32], secret[32], token[32];
	assert_int_equal(s3_profile_parse(text, "default", id, sizeof id, secret, sizeof secret,
					  token, sizeof token), 0);
	assert_string_equal(id, "AKIDDEFAULT");
	assert_string_equal(secret, "secretdefault");
	assert_string_equal(token, "");
	assert_int_equal(s3_profile_parse(text, "ci", id, sizeof id, secret, sizeof secret, token,
					  sizeof token), 0);
	assert_string_equal(id, "AKIDCI");
	assert_string_equal(secret, "secret ci");
	assert_string_equal(token, "TOKEN");
	assert_int_equal(s3_profile_parse(text, "half", id, sizeof id, secret, sizeof secret, token,
					  sizeof token), SL_ENOTFOUND);
	assert_int_equal(s3_profile_parse(text, "none", id, sizeof id, secret, sizeof secret, token,
					  sizeof token), SL_ENOTFOUND);
	assert_int_equal(s3_profile_parse("", "default", id, sizeof id, secret, sizeof secret,
					  token, sizeof token), SL_ENOTFOUND);
}

/* ---- retries ---- */

static void test_retryable(void **state)
{
	/* Transport failures. */
	assert_true(s3_retryable(CURLE_COULDNT_CONNECT, 0, NULL));
	assert_true(s3_retryable(CURLE_OPERATION_TIMEDOUT, 0, NULL));
	assert_true(s3_retryable(CURLE_RECV_ERROR, 0, NULL));
	assert_true(s3_retryable(CURLE_SEND_ERROR, 0, NULL));
	assert_true(s3_retryable(CURLE_GOT_NOTHING, 0, NULL));
	assert_true(s3_retryable(CURLE_PARTIAL_FILE, 0, NULL));
	assert_false(s3_retryable(CURLE_URL_MALFORMAT, 0, NULL));
	assert_false(s3_retryable(CURLE_PEER_FAILED_VERIFICATION, 0, NULL));
	assert_false(s3_retryable(CURLE_WRITE_ERROR, 0, NULL));
	/* HTTP statuses and S3 codes. */
	assert_true(s3_retryable(0, 500, "InternalError"));
	assert_true(s3_retryable(0, 502, ""));
	assert_true(s3_retryable(0, 503, "SlowDown"));
	assert_true(s3_retryable(0, 503, NULL));
	assert_true(s3_retryable(0, 504, NULL));
	assert_true(s3_retryable(0, 429, NULL));
	assert_true(s3_retryable(0, 400, "RequestTimeout"));
	assert_true(s3_retryable(0, 403, "RequestTimeTooSkewed"));
	assert_false(s3_retryable(0, 501, "NotImplemented"));
	assert_false(s3_retryable(0, 400, "InvalidArgument"));
	assert_false(s3_retryable(0, 403, "AccessDenied"));
	assert_false(s3_retryable(0, 403, "InvalidAccessKeyId"));
	assert_false(s3_retryable(0, 403, "SignatureDoesNotMatch"));
	assert_false(s3_retryable(0, 404, "NoSuchBucket"));
	assert_false(s3_retryable(0, 301, "PermanentRedirect"));
	assert_false(s3_retryable(0, 412, NULL));
}

static void test_backoff(void **state)
{
	struct s3_retry_policy p = { .base_ms = 50, .cap_ms = 2000 };
	/* The ceiling doubles from base to cap; random picks within it. */
	assert_int_equal(s3_backoff_ms(&p, 0, UINT64_MAX), UINT64_MAX % 51);
	assert_int_equal(s3_backoff_ms(&p, 0, 50), 50);
	assert_int_equal(s3_backoff_ms(&p, 0, 51), 0);
	assert_int_equal(s3_backoff_ms(&p, 1, 100), 100);
	assert_int_equal(s3_backoff_ms(&p, 2, 200), 200);
	assert_int_equal(s3_backoff_ms(&p, 5, 1600), 1600);
	assert_int_equal(s3_backoff_ms(&p, 6, 2000), 2000);
	assert_int_equal(s3_backoff_ms(&p, 6, 2001), 0);
	assert_int_equal(s3_backoff_ms(&p, 1000, 2000), 2000);
	for (unsigned r = 0; r < 64; r++)
		for (uint64_t x = 0; x < 5000; x += 37)
			assert_true(s3_backoff_ms(&p, r, x * 7919) <= 2000);
}

/* A fake clock: sleeping advances it, and so does each attempt. */
struct fake {
	int64_t now;
	int64_t attempt_cost_ms;
	uint64_t rnd;
	int64_t slept[64];
	int sleeps;
	uint32_t timeouts[64];
	int attempts;
	const int *script; /* per attempt: 0 ok, 1 retryable, 2 fatal */
	int script_len;
};

static int64_t fake_now(void *arg)
{
	return ((struct fake *)arg)->now;
}

static void fake_sleep(void *arg, int64_t ms)
{
	struct fake *f = arg;
	assert_true(ms >= 0);
	if (f->sleeps < 64)
		f->slept[f->sleeps] = ms;
	f->sleeps++;
	f->now += ms;
}

static uint64_t fake_random(void *arg)
{
	return ((struct fake *)arg)->rnd;
}

static int fake_attempt(void *arg, uint32_t timeout_ms, int *retryable)
{
	struct fake *f = arg;
	int i = f->attempts++;
	if (i < 64)
		f->timeouts[i] = timeout_ms;
	int what = i < f->script_len ? f->script[i] : 1;
	int64_t cost = f->attempt_cost_ms < (int64_t)timeout_ms ? f->attempt_cost_ms : timeout_ms;
	f->now += cost;
	*retryable = what == 1;
	return what == 0 ? 0 : what == 1 ? SL_ESTORE : SL_ENOTFOUND;
}

static void test_retry_run(void **state)
{
	struct s3_retry_policy p = { .base_ms = 50, .cap_ms = 2000, .attempt_timeout_ms = 1000,
				     .total_timeout_ms = 10000 };
	unsigned retries;

	/* Two retryable failures, then success: two sleeps of the full
	 * jitter ceiling (random = UINT64_MAX - 0 picks modulo). */
	static const int s1[] = { 1, 1, 0 };
	struct fake f = { .now = 1000, .attempt_cost_ms = 10, .rnd = 100, .script = s1,
			  .script_len = 3 };
	struct s3_clock clk = { fake_now, fake_sleep, fake_random, &f };
	assert_int_equal(s3_retry_run(&p, &clk, fake_attempt, &f, &retries), 0);
	assert_int_equal(f.attempts, 3);
	assert_int_equal(retries, 2);
	assert_int_equal(f.sleeps, 2);
	assert_int_equal(f.slept[0], 100 % 51);  /* ceiling 50 */
	assert_int_equal(f.slept[1], 100);       /* ceiling 100 */
	assert_int_equal(f.timeouts[0], 1000);

	/* A fatal error stops at once. */
	static const int s2[] = { 1, 2, 0 };
	f = (struct fake){ .attempt_cost_ms = 10, .rnd = 7, .script = s2, .script_len = 3 };
	assert_int_equal(s3_retry_run(&p, &clk, fake_attempt, &f, &retries), SL_ENOTFOUND);
	assert_int_equal(f.attempts, 2);
	assert_int_equal(retries, 1);

	/* Always failing: stops at the total deadline, never past it, and
	 * the last attempt's timeout is cut to the time left. */
	f = (struct fake){ .attempt_cost_ms = 1000, .rnd = UINT64_MAX };
	assert_int_equal(s3_retry_run(&p, &clk, fake_attempt, &f, &retries), SL_ESTORE);
	assert_true(f.now <= 10000);
	assert_true(f.attempts >= 4);
	assert_int_equal(retries, (unsigned)f.attempts - 1);
	for (int i = 0; i < f.attempts && i < 64; i++)
		assert_true(f.timeouts[i] <= 1000 && f.timeouts[i] >= 1);
	for (int i = 0; i < f.sleeps && i < 64; i++)
		assert_true(f.slept[i] <= 2000);

	/* A timeout-only store (each attempt burns its whole timeout). */
	f = (struct fake){ .attempt_cost_ms = 1000000, .rnd = 0 };
	assert_int_equal(s3_retry_run(&p, &clk, fake_attempt, &f, &retries), SL_ESTORE);
	assert_true(f.now <= 10000);
	assert_int_equal(f.attempts, 10);

	/* attempts_max. */
	p.attempts_max = 3;
	f = (struct fake){ .attempt_cost_ms = 1, .rnd = 0 };
	assert_int_equal(s3_retry_run(&p, &clk, fake_attempt, &f, &retries), SL_ESTORE);
	assert_int_equal(f.attempts, 3);
	assert_int_equal(retries, 2);

	/* At least one attempt even with no time at all. */
	p.attempts_max = 0;
	p.total_timeout_ms = 0;
	f = (struct fake){ .attempt_cost_ms = 1, .rnd = 0 };
	assert_int_equal(s3_retry_run(&p, &clk, fake_attempt, &f, &retries), SL_ESTORE);
	assert_int_equal(f.attempts, 1);
	assert_int_equal(f.timeouts[0], 1);
}


static void test_retry_steps(void **state)
{
	struct s3_retry_policy p = { .base_ms = 50, .cap_ms = 2000, .attempt_timeout_ms = 1000,
				     .total_timeout_ms = 10000 };
	int64_t delay = -1;
	/* The attempt's timeout: the policy's, cut to the time left, >= 1. */
	assert_int_equal(s3_retry_timeout_ms(&p, 5000, 0), 1000);
	assert_int_equal(s3_retry_timeout_ms(&p, 5000, 4700), 300);
	assert_int_equal(s3_retry_timeout_ms(&p, 5000, 5000), 1);
	assert_int_equal(s3_retry_timeout_ms(&p, 5000, 9000), 1);

	/* Next: the jittered backoff of the attempt count. */
	assert_int_equal(s3_retry_next(&p, 10000, 0, 1, 100, &delay), 1);
	assert_int_equal(delay, 100 % 51);
	assert_int_equal(s3_retry_next(&p, 10000, 0, 2, 100, &delay), 1);
	assert_int_equal(delay, 100);
	assert_int_equal(s3_retry_next(&p, 10000, 0, 30, 2000, &delay), 1);
	assert_int_equal(delay, 2000);
	/* Give up when the next attempt would get less than half of the
	 * minimum timeout before the deadline. */
	assert_int_equal(s3_retry_next(&p, 10000, 9950, 1, 0, &delay), 0);
	assert_int_equal(delay, 0);
	assert_int_equal(s3_retry_next(&p, 10000, 9949, 1, 0, &delay), 1);
	assert_int_equal(s3_retry_next(&p, 10000, 9000, 2, 100, &delay), 1);
	assert_int_equal(s3_retry_next(&p, 10000, 9000, 6, 1000, &delay), 0);
	/* attempts_max, and no attempt yet. */
	p.attempts_max = 3;
	assert_int_equal(s3_retry_next(&p, 10000, 0, 2, 0, &delay), 1);
	assert_int_equal(s3_retry_next(&p, 10000, 0, 3, 0, &delay), 0);
	assert_int_equal(s3_retry_next(&p, 10000, 0, 0, 0, &delay), 0);
}

/* ---- asynchronous calls against a scripted server ---- */

enum srv_mode { SRV_OK, SRV_SLOWDOWN_ODD, SRV_HANG };

struct srv_object {
	char path[512];
	uint8_t *data;
	size_t len;
};

static struct srv {
	int fd;
	int port;
	pthread_t thread;
	pthread_mutex_t lock;
	_Atomic int mode;
	_Atomic int stop;
	atomic_int requests, inflight, inflight_max, conns, conns_max;
	/* Never answer "100 Continue"; the longest wait for a whole body
	 * after its headers, in ms. */
	int no_continue;
	atomic_int body_wait_ms_max;
	int hold_ms; /* each answer waits this long (lets concurrency build) */
	struct srv_object objects[256];
	int objects_n;
	/* DeleteObjects requests seen: keys in each, bad Content-MD5s */
	int del_requests;
	int del_keys[16];
	int del_md5_bad;
	_Atomic int del_quiet_empty; /* all deleted: answer 200 with no body */
} srv;

static void srv_max(atomic_int *max, int v)
{
	int m = atomic_load(max);
	while (v > m && !atomic_compare_exchange_weak(max, &m, v))
		;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
		if (k <= 0)
			return -1;
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

static int srv_reply(int fd, int status, const char *reason, const void *body, size_t len)
{
	char head[256];
	int n = snprintf(head, sizeof head,
			 "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nContent-Type: application/xml\r\n\r\n",
			 status, reason, len);
	if (write_all(fd, head, (size_t)n))
		return -1;
	return len ? write_all(fd, body, len) : 0;
}

/* One request from buf (headers end at hdr_end, body follows). */
static int srv_handle(int fd, char *req, size_t hdr_len, uint8_t *body, size_t body_len)
{
	char method[16] = "", path[512] = "";
	sscanf(req, "%15s %511s", method, path);
	int n = atomic_fetch_add(&srv.requests, 1);
	srv_max(&srv.inflight_max, atomic_fetch_add(&srv.inflight, 1) + 1);
	if (srv.hold_ms)
		usleep((useconds_t)srv.hold_ms * 1000);
	int rc = 0;
	if (atomic_load(&srv.mode) == SRV_HANG) {
		while (atomic_load(&srv.mode) == SRV_HANG && !atomic_load(&srv.stop))
			usleep(10000);
		rc = -1; /* then drop the connection */
	} else if (atomic_load(&srv.mode) == SRV_SLOWDOWN_ODD && n % 2 == 1) {
		static const char slow[] = "<Error><Code>SlowDown</Code><Message>Reduce your "
					   "request rate.</Message></Error>";
		rc = srv_reply(fd, 503, "Slow Down", slow, sizeof slow - 1);
	} else if (!strcmp(method, "POST") && strstr(path, "?delete")) {
		/* DeleteObjects: check Content-MD5, count the keys, fail those
		 * named "bad" as S3 does, per key. */
		unsigned char md[16];
		char want[32] = "", got_md5[64] = "";
		EVP_Digest(body, body_len, md, NULL, EVP_md5(), NULL);
		EVP_EncodeBlock((unsigned char *)want, md, 16);
		char *h = strcasestr(req, "\r\nContent-MD5: ");
		if (h)
			sscanf(h + 15, "%63s", got_md5);
		char *xml = strndup((const char *)body, body_len);
		char answer[8192];
		size_t an = (size_t)snprintf(answer, sizeof answer, "<DeleteResult>");
		int keys = 0;
		for (char *k = strstr(xml, "<Key>"); k; k = strstr(k + 1, "<Key>")) {
			keys++;
			char *end = strstr(k, "</Key>");
			if (end && strstr(k, "bad") && strstr(k, "bad") < end && an < 4096)
				an += (size_t)snprintf(answer + an, sizeof answer - an,
						       "<Error><Key>%.*s</Key><Code>AccessDenied"
						       "</Code><Message>no</Message></Error>",
						       (int)(end - k - 5), k + 5);
		}
		free(xml);
		if (atomic_load(&srv.del_quiet_empty) && an == strlen("<DeleteResult>"))
			an = 0; /* S3's quiet mode may say nothing at all */
		else
			an += (size_t)snprintf(answer + an, sizeof answer - an, "</DeleteResult>");
		pthread_mutex_lock(&srv.lock);
		if (srv.del_requests < 16)
			srv.del_keys[srv.del_requests] = keys;
		srv.del_requests++;
		if (strcmp(want, got_md5) != 0)
			srv.del_md5_bad++;
		pthread_mutex_unlock(&srv.lock);
		rc = srv_reply(fd, 200, "OK", answer, an);
	} else if (strstr(path, "list-type=2")) {
		static const char list[] = "<ListBucketResult><IsTruncated>false</IsTruncated>"
					   "</ListBucketResult>";
		rc = srv_reply(fd, 200, "OK", list, sizeof list - 1);
	} else if (!strcmp(method, "PUT")) {
		pthread_mutex_lock(&srv.lock);
		struct srv_object *o = NULL;
		for (int i = 0; i < srv.objects_n && !o; i++)
			if (!strcmp(srv.objects[i].path, path))
				o = &srv.objects[i];
		if (!o && srv.objects_n < 256)
			o = &srv.objects[srv.objects_n++];
		if (o) {
			snprintf(o->path, sizeof o->path, "%s", path);
			free(o->data);
			o->data = malloc(body_len + 1);
			memcpy(o->data, body, body_len);
			o->len = body_len;
		}
		pthread_mutex_unlock(&srv.lock);
		rc = srv_reply(fd, 200, "OK", NULL, 0);
	} else {
		unsigned long long a = 0, b = 0;
		char *range = strcasestr(req, "\r\nRange: bytes=");
		int ranged = range && sscanf(range + 15, "%llu-%llu", &a, &b) == 2;
		pthread_mutex_lock(&srv.lock);
		struct srv_object *o = NULL;
		for (int i = 0; i < srv.objects_n && !o; i++)
			if (!strcmp(srv.objects[i].path, path))
				o = &srv.objects[i];
		if (!o) {
			static const char nk[] = "<Error><Code>NoSuchKey</Code></Error>";
			rc = srv_reply(fd, 404, "Not Found", nk, sizeof nk - 1);
		} else if (!ranged) {
			rc = srv_reply(fd, 200, "OK", o->data, o->len);
		} else {
			if (b >= o->len)
				b = o->len - 1;
			rc = srv_reply(fd, 206, "Partial Content", o->data + a, (size_t)(b - a + 1));
		}
		pthread_mutex_unlock(&srv.lock);
	}
	atomic_fetch_sub(&srv.inflight, 1);
	(void)hdr_len;
	return rc;
}

static void *srv_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	size_t cap = 4 << 20, len = 0;
	char *buf = malloc(cap + 1);
	srv_max(&srv.conns_max, atomic_fetch_add(&srv.conns, 1) + 1);
	for (;;) {
		char *end;
		buf[len] = 0;
		while (!(end = strstr(buf, "\r\n\r\n"))) {
			ssize_t k = recv(fd, buf + len, cap - len, 0);
			if (k <= 0 || len + (size_t)k >= cap)
				goto out;
			len += (size_t)k;
			buf[len] = 0;
		}
		size_t hdr_len = (size_t)(end - buf) + 4, body_len = 0;
		char *cl = strcasestr(buf, "\r\nContent-Length:");
		if (cl && cl < end)
			body_len = strtoul(cl + 17, NULL, 10);
		int64_t headers_us = clock_mono_us();
		if (!srv.no_continue && strcasestr(buf, "100-continue") && len == hdr_len &&
		    write_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25))
			goto out;
		if (hdr_len + body_len > cap)
			goto out;
		while (len < hdr_len + body_len) {
			ssize_t k = recv(fd, buf + len, cap - len, 0);
			if (k <= 0)
				goto out;
			len += (size_t)k;
		}
		srv_max(&srv.body_wait_ms_max, (int)((clock_mono_us() - headers_us) / 1000));
		char save = buf[hdr_len];
		buf[hdr_len] = 0;
		uint8_t *body = malloc(body_len + 1);
		body[0] = (uint8_t)save;
		memcpy(body + 1, buf + hdr_len + 1, body_len ? body_len - 1 : 0);
		int rc = srv_handle(fd, buf, hdr_len, body, body_len);
		free(body);
		if (rc)
			goto out;
		memmove(buf, buf + hdr_len + body_len, len - hdr_len - body_len);
		len -= hdr_len + body_len;
	}
out:
	atomic_fetch_sub(&srv.conns, 1);
	close(fd);
	free(buf);
	return NULL;
}

static void *srv_main(void *arg)
{
	while (!atomic_load(&srv.stop)) {
		struct pollfd p = { .fd = srv.fd, .events = POLLIN };
		if (poll(&p, 1, 50) <= 0)
			continue;
		int c = accept(srv.fd, NULL, NULL);
		if (c < 0)
			continue;
		pthread_t t;
		pthread_create(&t, NULL, srv_conn, (void *)(intptr_t)c);
		pthread_detach(t);
	}
	return NULL;
}

static void srv_start(void)
{
	memset(&srv, 0, sizeof srv);
	pthread_mutex_init(&srv.lock, NULL);
	srv.fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	assert_int_equal(bind(srv.fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(srv.fd, 128), 0);
	getsockname(srv.fd, (struct sockaddr *)&a, &al);
	srv.port = ntohs(a.sin_port);
	pthread_create(&srv.thread, NULL, srv_main, NULL);
}

static void srv_stop(void)
{
	atomic_store(&srv.stop, 1);
	pthread_join(srv.thread, NULL);
	close(srv.fd);
	/* Let connection threads see the stop and leave. */
	for (int i = 0; i < 100 && atomic_load(&srv.conns); i++)
		usleep(10000);
	for (int i = 0; i < srv.objects_n; i++)
		free(srv.objects[i].data);
}

struct waiter {
	int pending;
	int errs[256];
	int n;
	int64_t tick_gap_max_us, last_tick_us;
};

static struct waiter W;

static void on_done(void *arg, int err)
{
	W.pending--;
	if (W.n < 256)
		W.errs[W.n++] = err;
	(void)arg;
}

static void on_tick(uv_timer_t *t)
{
	int64_t now = clock_mono_us();
	if (W.last_tick_us && now - W.last_tick_us > W.tick_gap_max_us)
		W.tick_gap_max_us = now - W.last_tick_us;
	W.last_tick_us = now;
}

static void loop_until_done(uv_loop_t *loop)
{
	while (W.pending > 0)
		uv_run(loop, UV_RUN_ONCE);
}

static struct objstore *async_open(const char *extra)
{
	char url[256];
	struct objstore *s = NULL;
	setenv("AWS_ACCESS_KEY_ID", "id", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
	snprintf(url, sizeof url, "s3://bkt/pre?endpoint=http://127.0.0.1:%d&region=us-east-1%s",
		 srv.port, extra);
	assert_int_equal(objstore_open(url, &s), 0);
	return s;
}

static void test_async_concurrency_and_retries(void **state)
{
	srv_start();
	struct objstore *s = async_open("");
	uv_loop_t loop;
	uv_loop_init(&loop);
	enum { N = 48, SMALL = 1000, BIG = 300 * 1024 };
	static uint8_t data[N][SMALL], big[BIG], got[N][SMALL], got_big[BIG];
	char key[64];
	for (int i = 0; i < N; i++)
		for (int j = 0; j < SMALL; j++)
			data[i][j] = (uint8_t)(i * 13 + j);
	for (int j = 0; j < BIG; j++)
		big[j] = (uint8_t)(j * 7 + 3);

	/* Many puts at once, every other answer a 503 SlowDown: all
	 * succeed, with retries, never more than SL_S3_ASYNC_ACTIVE_MAX in
	 * flight, on at most that many connections (+1: the open's). */
	memset(&W, 0, sizeof W);
	srv.hold_ms = 20;
	atomic_store(&srv.mode, SRV_SLOWDOWN_ODD);
	atomic_store(&srv.requests, 0);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof key, "o/%02d", i);
		assert_int_equal(objstore_put_start(s, &loop, key, data[i], SMALL, on_done, NULL), 0);
		W.pending++;
	}
	/* The big one is hashed on the thread pool. */
	assert_int_equal(objstore_put_start(s, &loop, "o/big", big, BIG, on_done, NULL), 0);
	W.pending++;
	/* A bad key fails at the start and done is never called. */
	assert_int_equal(objstore_put_start(s, &loop, "/bad", big, 1, on_done, NULL), SL_EINVAL);
	loop_until_done(&loop);
	assert_int_equal(W.n, N + 1);
	for (int i = 0; i < W.n; i++)
		assert_int_equal(W.errs[i], 0);
	assert_true(atomic_load(&srv.inflight_max) <= SL_S3_ASYNC_ACTIVE_MAX);
	assert_true(atomic_load(&srv.inflight_max) >= 4); /* they did overlap */
	assert_true(atomic_load(&srv.conns_max) <= SL_S3_ASYNC_ACTIVE_MAX + 1);
	struct objstore_stats st;
	objstore_stats(s, &st);
	assert_int_equal(st.calls[OBJSTORE_OP_PUT], N + 2);
	assert_true(st.retries[OBJSTORE_OP_PUT] >= N / 2);
	assert_int_equal(st.requests[OBJSTORE_OP_PUT], N + 1 + st.retries[OBJSTORE_OP_PUT]);
	assert_int_equal(st.errors[OBJSTORE_OP_PUT], 1);
	assert_int_equal(st.bytes_written, (uint64_t)N * SMALL + BIG);

	/* Ranged reads of all of it (no faults), a missing key, a read
	 * past the end, a 0-byte read (a HEAD). */
	memset(&W, 0, sizeof W);
	srv.hold_ms = 0;
	atomic_store(&srv.mode, SRV_OK);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof key, "o/%02d", i);
		assert_int_equal(objstore_get_start(s, &loop, key, 10, SMALL - 10, got[i], on_done,
						    NULL), 0);
		W.pending++;
	}
	assert_int_equal(objstore_get_start(s, &loop, "o/big", 0, BIG, got_big, on_done, NULL), 0);
	W.pending++;
	loop_until_done(&loop);
	assert_int_equal(W.n, N + 1);
	for (int i = 0; i < W.n; i++)
		assert_int_equal(W.errs[i], 0);
	for (int i = 0; i < N; i++)
		assert_memory_equal(got[i], data[i] + 10, SMALL - 10);
	assert_memory_equal(got_big, big, BIG);
	memset(&W, 0, sizeof W);
	W.pending = 3;
	assert_int_equal(objstore_get_start(s, &loop, "o/none", 0, 10, got[0], on_done, NULL), 0);
	assert_int_equal(objstore_get_start(s, &loop, "o/00", 0, SMALL + 1, got[0], on_done, NULL), 0);
	assert_int_equal(objstore_get_start(s, &loop, "o/00", 5, 0, got[0], on_done, NULL), 0);
	loop_until_done(&loop);
	assert_int_equal(W.errs[0] == SL_ENOTFOUND || W.errs[1] == SL_ENOTFOUND ||
			 W.errs[2] == SL_ENOTFOUND, 1);
	int eproto = 0, ok = 0;
	for (int i = 0; i < 3; i++) {
		eproto += W.errs[i] == SL_EPROTO;
		ok += W.errs[i] == 0;
	}
	assert_int_equal(eproto, 1);
	assert_int_equal(ok, 1);
	objstore_stats(s, &st);
	assert_int_equal(st.bytes_read, (uint64_t)N * (SMALL - 10) + BIG);

	objstore_async_close(s);
	uv_run(&loop, UV_RUN_DEFAULT);
	objstore_close(s);
	assert_int_equal(uv_loop_close(&loop), 0);
	srv_stop();
}

static void test_async_hang_timeout_and_close(void **state)
{
	srv_start();
	struct objstore *s = async_open("&timeout_ms=200&total_timeout_ms=700");
	uv_loop_t loop;
	uv_loop_init(&loop);
	static uint8_t data[100 * 1024];
	char key[64];
	uv_timer_t tick;
	uv_timer_init(&loop, &tick);
	uv_timer_start(&tick, on_tick, 10, 10);

	/* A server that never answers: 40 calls (more than the slots) all
	 * fail within the deadline, and the loop keeps ticking. */
	memset(&W, 0, sizeof W);
	atomic_store(&srv.mode, SRV_HANG);
	int64_t t0 = clock_mono_us();
	for (int i = 0; i < 40; i++) {
		snprintf(key, sizeof key, "h/%02d", i);
		if (i % 2)
			assert_int_equal(objstore_put_start(s, &loop, key, data, sizeof data, on_done,
							    NULL), 0);
		else
			assert_int_equal(objstore_get_start(s, &loop, key, 0, 100, data, on_done,
							    NULL), 0);
		W.pending++;
	}
	loop_until_done(&loop);
	int64_t took_ms = (clock_mono_us() - t0) / 1000;
	assert_true(took_ms < 3000);
	for (int i = 0; i < W.n; i++)
		assert_int_equal(W.errs[i], SL_ETIMEDOUT);
	/* A call that blocked the loop would hold it for a whole attempt
	 * (200 ms) or more. Under ASan on a busy machine the loop's own
	 * ticks can be late by that much without anything blocking (seen
	 * once: the sanitized suite beside other builds), so there the bound
	 * is the total deadline a blocking call would take instead. */
	int64_t gap_max_us = getenv("SLUICE_SANITIZED") ? 650 * 1000 : 200 * 1000;
	assert_true(W.tick_gap_max_us < gap_max_us);
	struct objstore_stats st;
	objstore_stats(s, &st);
	assert_int_equal(st.errors[OBJSTORE_OP_PUT] + st.errors[OBJSTORE_OP_GET], 40);

	/* Close with calls in flight, queued and hashing: each completes
	 * once with SL_ESTORE; later starts fail; the loop can be closed. */
	memset(&W, 0, sizeof W);
	for (int i = 0; i < 30; i++) {
		snprintf(key, sizeof key, "c/%02d", i);
		assert_int_equal(objstore_put_start(s, &loop, key, data, i % 3 ? 100 : sizeof data,
						    on_done, NULL), 0);
		W.pending++;
	}
	uv_run(&loop, UV_RUN_NOWAIT);
	objstore_async_close(s);
	assert_int_equal(objstore_put_start(s, &loop, "c/late", data, 10, on_done, NULL), SL_ESTORE);
	assert_int_equal(objstore_get_start(s, &loop, "c/late", 0, 10, data, on_done, NULL),
			 SL_ESTORE);
	uv_close((uv_handle_t *)&tick, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(W.pending, 0);
	assert_int_equal(W.n, 30);
	for (int i = 0; i < W.n; i++)
		assert_int_equal(W.errs[i], SL_ESTORE);
	/* The blocking calls still work. */
	atomic_store(&srv.mode, SRV_OK);
	assert_int_equal(objstore_put(s, "c/blocking", data, 10), 0);
	objstore_close(s);
	assert_int_equal(uv_loop_close(&loop), 0);
	srv_stop();
}

/* Without objstore_async_close: once calls are done the loop ends by
 * itself (idle connections do not hold it), and closing the store after
 * the loop frees everything. */
static void test_async_loop_ends(void **state)
{
	srv_start();
	struct objstore *s = async_open("");
	/* The default loop, as the agent's: never closed. */
	uv_loop_t *loop = uv_default_loop();
	static uint8_t data[1000];
	memset(&W, 0, sizeof W);
	W.pending = 2;
	assert_int_equal(objstore_put_start(s, loop, "e/1", data, sizeof data, on_done, NULL), 0);
	assert_int_equal(objstore_put_start(s, loop, "e/2", data, sizeof data, on_done, NULL), 0);
	int64_t t0 = clock_mono_us();
	uv_run(loop, UV_RUN_DEFAULT);
	assert_int_equal(W.pending, 0);
	assert_true(clock_mono_us() - t0 < 2 * 1000000);
	/* A second loop is refused while the first one owns the machinery. */
	uv_loop_t other;
	uv_loop_init(&other);
	assert_int_equal(objstore_put_start(s, &other, "e/3", data, 1, on_done, NULL), SL_EINVAL);
	uv_loop_close(&other);
	objstore_close(s);
	srv_stop();
	/* The loop is never run again: the store took its handles' memory. */
}

/* A PUT of an agent-sized object (libcurl asks for 100 Continue above 1
 * MiB) sends its body without waiting for the server's interim answer: a
 * round trip less per object written, on either client. Against a server
 * that never answers it, libcurl's own wait is a second. */
static void test_put_no_expect_continue(void **state)
{
	srv_start();
	srv.no_continue = 1;
	struct objstore *s = async_open("");
	enum { BIG = 3 << 20 };
	uint8_t *big = malloc(BIG), *got = malloc(BIG);
	for (size_t j = 0; j < BIG; j++)
		big[j] = (uint8_t)(j * 11 + 5);
	uv_loop_t loop;
	uv_loop_init(&loop);
	memset(&W, 0, sizeof W);
	W.pending = 1;
	struct iovec iov[2] = { { big, BIG / 3 }, { big + BIG / 3, BIG - BIG / 3 } };
	assert_int_equal(objstore_putv_start(s, &loop, "x/async", iov, 2, 0, on_done, NULL), 0);
	loop_until_done(&loop);
	assert_int_equal(W.errs[0], 0);
	assert_int_equal(objstore_put(s, "x/blocking", big, BIG), 0);
	/* Well under libcurl's second (the body is 3 MiB on loopback). */
	assert_true(atomic_load(&srv.body_wait_ms_max) < 900);
	/* Both whole. */
	assert_int_equal(objstore_get(s, "x/async", 0, BIG, got), 0);
	assert_memory_equal(got, big, BIG);
	assert_int_equal(objstore_get(s, "x/blocking", 0, BIG, got), 0);
	assert_memory_equal(got, big, BIG);
	objstore_async_close(s);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	objstore_close(s);
	srv_stop();
	free(big);
	free(got);
}

/* objstore_del_many against the scripted server: 1000 keys a request,
 * per-key errors reported in failed[], invalid keys refused, SlowDown
 * retried. */
static void test_del_many(void **state)
{
	srv_start();
	struct objstore *s = async_open("");
	enum { N = 2500 };
	static char names[N][32];
	static const char *keys[N];
	static bool failed[N];
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof names[i], "objects/%05d.obj", i);
		keys[i] = names[i];
	}
	keys[7] = "has space.obj";    /* not a valid key: never sent */
	keys[1234] = "objects/bad.obj"; /* the server refuses it */
	size_t deleted = 0;
	assert_int_equal(objstore_del_many(s, keys, N, &deleted, failed), SL_EINVAL);
	assert_int_equal(deleted, N - 2);
	for (int i = 0; i < N; i++)
		if (failed[i] != (i == 7 || i == 1234))
			fail_msg("key %d: failed=%d", i, failed[i]);
	assert_int_equal(srv.del_requests, 3);
	assert_int_equal(srv.del_keys[0], 1000);
	assert_int_equal(srv.del_keys[1], 1000);
	assert_int_equal(srv.del_keys[2], 499);
	assert_int_equal(srv.del_md5_bad, 0);
	struct objstore_stats st;
	assert_int_equal(objstore_stats(s, &st), 0);
	assert_int_equal(st.calls[OBJSTORE_OP_DELETE], 3);
	assert_int_equal(st.requests[OBJSTORE_OP_DELETE], 3);
	assert_int_equal(st.errors[OBJSTORE_OP_DELETE], 1);

	/* Only the refused key: SL_ESTORE. failed may be NULL. */
	assert_int_equal(objstore_del_many(s, keys + 1200, 100, &deleted, NULL), SL_ESTORE);
	assert_int_equal(deleted, 99);

	/* SlowDown on every other request: retried, all deleted. */
	atomic_store(&srv.mode, SRV_SLOWDOWN_ODD);
	atomic_store(&srv.requests, 1); /* the next request is answered 503 */
	assert_int_equal(objstore_del_many(s, keys, 5, &deleted, failed), 0);
	assert_int_equal(deleted, 5);
	assert_false(failed[0]);
	assert_int_equal(objstore_stats(s, &st), 0);
	assert_true(st.retries[OBJSTORE_OP_DELETE] >= 1);
	atomic_store(&srv.mode, SRV_OK);

	/* A 200 with an empty body (quiet mode, all deleted): success. */
	atomic_store(&srv.del_quiet_empty, 1);
	int before = srv.del_requests;
	failed[0] = failed[1] = true;
	assert_int_equal(objstore_del_many(s, keys, 5, &deleted, failed), 0);
	assert_int_equal(deleted, 5);
	assert_false(failed[0] || failed[1]);
	assert_int_equal(srv.del_requests, before + 1);
	/* Still a body (and a failure) when a key is refused. */
	assert_int_equal(objstore_del_many(s, keys + 1230, 5, &deleted, failed), SL_ESTORE);
	assert_int_equal(deleted, 4);
	assert_true(failed[4]);
	atomic_store(&srv.del_quiet_empty, 0);

	/* Nothing to do: no request. */
	before = srv.del_requests;
	assert_int_equal(objstore_del_many(s, keys, 0, &deleted, NULL), 0);
	assert_int_equal(deleted, 0);
	assert_int_equal(srv.del_requests, before);
	objstore_close(s);
	srv_stop();
}

/* The fallback for stores without a batch delete (mem, file): one key at
 * a time, a missing key counts as deleted. */
static void test_del_many_fallback(void **state)
{
	struct objstore *m;
	assert_int_equal(objstore_mem_open(&m), 0);
	assert_int_equal(objstore_put(m, "objects/a", "x", 1), 0);
	assert_int_equal(objstore_put(m, "objects/b", "y", 1), 0);
	const char *keys[] = { "objects/a", "objects/missing", "objects/b" };
	bool failed[3] = { true, true, true };
	size_t deleted = 0;
	assert_int_equal(objstore_del_many(m, keys, 3, &deleted, failed), 0);
	assert_int_equal(deleted, 3);
	assert_false(failed[0] || failed[1] || failed[2]);
	uint64_t size;
	assert_int_equal(objstore_head(m, "objects/a", &size), SL_ENOTFOUND);
	assert_int_equal(objstore_head(m, "objects/b", &size), SL_ENOTFOUND);
	objstore_close(m);
}

/* ---- objstore_open refusals (no server needed) ---- */

static void test_open_refusals(void **state)
{
	struct objstore *s = (struct objstore *)1;
	assert_int_equal(objstore_open("s3://x", &s), SL_EINVAL);
	assert_null(s);
	assert_int_equal(objstore_open("s3://bkt/p?bogus=1", &s), SL_EINVAL);

	/* No credentials anywhere. */
	setenv("HOME", "/nonexistent-sluice-home", 1);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	assert_int_equal(objstore_open("s3://bkt/p?endpoint=http://127.0.0.1:1", &s), SL_EINVAL);
	assert_null(s);

	/* Unreachable endpoint: fails with SL_ESTORE, quickly (three
	 * connection refusals and short backoffs). */
	setenv("AWS_ACCESS_KEY_ID", "id", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
	int64_t t0 = clock_mono_us();
	assert_int_equal(objstore_open("s3://bkt/p?endpoint=http://127.0.0.1:1", &s), SL_ESTORE);
	assert_null(s);
	assert_true(clock_mono_us() - t0 < 5 * 1000000);

	/* Stats of a backend without counters. */
	struct objstore *m;
	struct objstore_stats st;
	assert_int_equal(objstore_mem_open(&m), 0);
	assert_int_equal(objstore_stats(m, &st), SL_EUNSUPPORTED);
	assert_int_equal(st.calls[OBJSTORE_OP_PUT], 0);
	objstore_close(m);
	assert_string_equal(objstore_op_name(OBJSTORE_OP_LIST), "list");
	assert_string_equal(objstore_op_name(99), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_basic),
		cmocka_unit_test(test_url_bad),
		cmocka_unit_test(test_url_resolve),
		cmocka_unit_test(test_uri_encode),
		cmocka_unit_test(test_xml_list),
		cmocka_unit_test(test_xml_list_bad),
		cmocka_unit_test(test_xml_error),
		cmocka_unit_test(test_delete_body),
		cmocka_unit_test(test_xml_delete),
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_profile),
		cmocka_unit_test(test_retryable),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_retry_run),
		cmocka_unit_test(test_retry_steps),
		cmocka_unit_test(test_async_concurrency_and_retries),
		cmocka_unit_test(test_async_hang_timeout_and_close),
		cmocka_unit_test(test_async_loop_ends),
		cmocka_unit_test(test_put_no_expect_continue),
		cmocka_unit_test(test_del_many),
		cmocka_unit_test(test_del_many_fallback),
		cmocka_unit_test(test_open_refusals),
	};
	/* TEST_FILTER=pattern runs only the matching tests. */
	if (getenv("TEST_FILTER"))
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
