/* test_metrics.c — the metrics registry and the HTTP head parser
 * (metrics/metrics.c, metrics/http.c): which status each malformed head
 * earns, keep-alive by version and Connection, the path without its
 * query; histogram buckets (an observation on a bound lands in that
 * bucket, past the last in +Inf); request and error counters by key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/limits.h"
#include "metrics/exposition.h"
#include "metrics/http.h"
#include "metrics/metrics.h"

static int parse(const char *s, struct metrics_http_request *rq)
{
	return metrics_http_parse(s, strlen(s), rq);
}

static void parse_good(void **state)
{
	struct metrics_http_request rq;
	const char *s = "GET /metrics?name[]=x HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\nGET";
	assert_int_equal(parse(s, &rq), (int)strlen(s) - 3);
	assert_int_equal(rq.path_len, 8);
	assert_memory_equal(rq.path, "/metrics", 8);
	assert_true(rq.keep_alive);
	assert_int_equal(parse("GET /healthz HTTP/1.0\r\n\r\n", &rq), 25);
	assert_false(rq.keep_alive);
	assert_true(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &rq) > 0);
	assert_true(rq.keep_alive);
	assert_true(parse("GET / HTTP/1.1\r\nhost: a\r\nConnection: te, close\r\n\r\n", &rq) > 0);
	assert_false(rq.keep_alive);
	assert_true(parse("\r\nGET / HTTP/1.1\r\nHost:a\r\nContent-Length: 0\r\n\r\n", &rq) > 0);
}

static void parse_incomplete(void **state)
{
	struct metrics_http_request rq;
	assert_int_equal(parse("", &rq), 0);
	assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: a\r\n", &rq), 0);
	assert_int_equal(parse("GET /met", &rq), 0);
	/* Wrong before it is complete: answered at once, not at the timeout. */
	assert_int_equal(parse("\x16\x03\x01\x02", &rq), -400);
	assert_int_equal(parse("PUT / HTTP/1.1\r\nHost", &rq), -405);
	char big[SL_METRICS_HTTP_HEAD_BYTES_MAX + 10];
	memset(big, 'a', sizeof big);
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	assert_int_equal(metrics_http_parse(big, sizeof big, &rq), -431);
	assert_int_equal(metrics_http_parse(big, SL_METRICS_HTTP_HEAD_BYTES_MAX - 1, &rq), 0);
}

static void parse_bad(void **state)
{
	struct metrics_http_request rq;
	assert_int_equal(parse("POST /metrics HTTP/1.1\r\nHost: a\r\n\r\n", &rq), -405);
	assert_int_equal(parse("HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\n", &rq), -405);
	assert_int_equal(parse("GET /metrics HTTP/1.1\r\n\r\n", &rq), -400);       /* no Host */
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", &rq), -400);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost : a\r\n\r\n", &rq), -400);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", &rq), -400);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", &rq), -400);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", &rq), -400);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", &rq), -400); /* bare LF */
	assert_int_equal(parse("GET metrics HTTP/1.1\r\nHost: a\r\n\r\n", &rq), -400);
	assert_int_equal(parse("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", &rq), -400);
	assert_int_equal(parse("GET / HTTP/2.0\r\nHost: a\r\n\r\n", &rq), -505);
	assert_int_equal(parse("GET / HTTX/1.1\r\nHost: a\r\n\r\n", &rq), -400);
	assert_int_equal(parse("G\x01T / HTTP/1.1\r\nHost: a\r\n\r\n", &rq), -400);
	char target[SL_METRICS_HTTP_TARGET_BYTES_MAX + 64];
	memset(target, 0, sizeof target);
	strcpy(target, "GET /");
	memset(target + 5, 'a', SL_METRICS_HTTP_TARGET_BYTES_MAX);
	strcat(target, " HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(parse(target, &rq), -414);
	char many[SL_METRICS_HTTP_HEAD_BYTES_MAX];
	size_t n = (size_t)snprintf(many, sizeof many, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (int i = 0; i < SL_METRICS_HTTP_HEADERS_MAX; i++)
		n += (size_t)snprintf(many + n, sizeof many - n, "X: %d\r\n", i);
	snprintf(many + n, sizeof many - n, "\r\n");
	assert_int_equal(parse(many, &rq), -431);
}

static void histogram_buckets(void **state)
{
	struct metrics_hist h;
	memset(&h, 0, sizeof h);
	const struct metrics_buckets *b = &metrics_size_buckets;
	metrics_hist_observe(&h, b, 0);
	metrics_hist_observe(&h, b, 1024);          /* on the first bound */
	metrics_hist_observe(&h, b, 1025);
	metrics_hist_observe(&h, b, 67108864);      /* on the last */
	metrics_hist_observe_atomic(&h, b, 67108865); /* past it: +Inf */
	assert_int_equal(h.bucket[0], 2);
	assert_int_equal(h.bucket[1], 1);
	assert_int_equal(h.bucket[b->count - 1], 1);
	assert_int_equal(h.bucket[b->count], 1);
	assert_int_equal(h.count, 5);
	assert_int_equal(h.sum, 1024 + 1025 + 67108864 + 67108865ULL);
	assert_int_equal(metrics_bucket_of(&metrics_duration_buckets, 500000), 0);
	assert_int_equal(metrics_bucket_of(&metrics_duration_buckets, 20000000000ULL),
			 metrics_duration_buckets.count);
}

static void counters(void **state)
{
	metrics_request_end(0, 9, 0);
	metrics_request_end(0, 9, 0);
	metrics_request_end(-1, 3, 0);              /* no key: key -1, version 0 */
	metrics_request_end(500, 99, 0);            /* beyond the table: the same */
	assert_int_equal(metrics.requests[1][9], 2);
	assert_int_equal(metrics.requests[0][0], 2);
	assert_int_equal(metrics.request_duration[1].count, 2);
	metrics_response_error(0, 3);
	metrics_response_error(0, -1);
	metrics_response_error(0, 30000);           /* unknown code: with -1's */
	assert_int_equal(metrics.request_errors[1][4], 1);
	assert_int_equal(metrics.request_errors[1][0], 2);
	metrics_store_call(0, 0, 100, 0);
	metrics_store_call(1, SL_EIO, 100, 0);       /* failed: no bytes */
	metrics_store_call(1, SL_ENOTFOUND, 0, 0);  /* an answer */
	metrics_store_call(9, 0, 1, 0);             /* no such op: ignored */
	assert_int_equal(metrics.store_calls[0], 1);
	assert_int_equal(metrics.store_bytes[0], 100);
	assert_int_equal(metrics.store_errors[1], 1);
	assert_int_equal(metrics.store_bytes[1], 0);
}

static void label_values(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "plain-group.1", "plain-group.1" },
		{ "a\"b\\c\nd", "a\\\"b\\\\c\\nd" },
		{ "tab\there\x7f", "tab?here?" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
		{ "over\xc0\xaflong", "over??long" },            /* overlong '/' */
		{ "sur\xed\xa0\x80rogate", "sur???rogate" },     /* U+D800 */
		{ "big\xf4\x90\x80\x80", "big????" },           /* past U+10FFFF */
		{ "cut\xe2\x82", "cut??" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *got = metrics_label_escape(cases[i].in);
		assert_non_null(got);
		assert_string_equal(got, cases[i].out);
		free(got);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_good),
		cmocka_unit_test(parse_incomplete),
		cmocka_unit_test(parse_bad),
		cmocka_unit_test(histogram_buckets),
		cmocka_unit_test(counters),
		cmocka_unit_test(label_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
