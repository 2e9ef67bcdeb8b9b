/* metrics.c — the registry's storage, its bucket layouts and the hooks
 * the subsystems call (metrics.h). */
#include "metrics/metrics.h"

#include <uv.h>

#include "base/err.h"
#include "kmsg.h"

struct metrics_registry metrics;

static const char *const duration_text[] = {
	"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
	"0.1", "0.25", "0.5", "1", "2.5", "5", "10",
};
static const uint64_t duration_ns[] = {
	500000, 1000000, 2500000, 5000000, 10000000, 25000000, 50000000,
	100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};
const struct metrics_buckets metrics_duration_buckets = {
	duration_text, duration_ns, (int)(sizeof duration_ns / sizeof duration_ns[0]),
};

static const char *const commit_text[] = {
	"0.0005", "0.001", "0.002", "0.003", "0.005", "0.0075", "0.01", "0.0125", "0.015",
	"0.0175", "0.02", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "10",
};
static const uint64_t commit_ns[] = {
	500000, 1000000, 2000000, 3000000, 5000000, 7500000, 10000000, 12500000, 15000000,
	17500000, 20000000, 25000000, 50000000, 100000000, 250000000, 500000000, 1000000000,
	2500000000, 10000000000,
};
const struct metrics_buckets metrics_commit_buckets = {
	commit_text, commit_ns, (int)(sizeof commit_ns / sizeof commit_ns[0]),
};

static const char *const size_text[] = {
	"1024", "4096", "16384", "65536", "262144", "1048576", "4194304", "16777216", "67108864",
};
static const uint64_t size_bytes[] = {
	1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
};
const struct metrics_buckets metrics_size_buckets = {
	size_text, size_bytes, (int)(sizeof size_bytes / sizeof size_bytes[0]),
};

_Static_assert(sizeof duration_ns / sizeof duration_ns[0] <= METRICS_BUCKETS_MAX, "buckets");
_Static_assert(sizeof commit_ns / sizeof commit_ns[0] <= METRICS_BUCKETS_MAX, "buckets");
_Static_assert(sizeof commit_text / sizeof commit_text[0] ==
	       sizeof commit_ns / sizeof commit_ns[0], "buckets");

void metrics_request_end(int16_t api_key, int16_t api_version, uint64_t received_ns)
{
	int k = api_key >= 0 && api_key < METRICS_API_KEYS ? api_key + 1 : 0;
	int v = api_version >= 0 && api_version < METRICS_API_VERSIONS ? api_version : 0;
	if (k == 0)
		v = 0;
	metrics.requests[k][v]++;
	uint64_t now = uv_hrtime();
	metrics_hist_observe(&metrics.request_duration[k], &metrics_duration_buckets,
			     now > received_ns ? now - received_ns : 0);
}

void metrics_response_error(int16_t api_key, int16_t error_code)
{
	int k = api_key >= 0 && api_key < METRICS_API_KEYS ? api_key + 1 : 0;
	int e = error_code >= -1 && error_code < METRICS_ERROR_CODES - 1 ? error_code + 1 : 0;
	metrics.request_errors[k][e]++;
}

void metrics_object_committed(uint64_t size, int64_t upload_us, int64_t commit_us)
{
	metrics.objects_committed++;
	metrics_hist_observe(&metrics.object_size, &metrics_size_buckets, size);
	metrics_hist_observe(&metrics.object_upload, &metrics_duration_buckets,
			     upload_us > 0 ? (uint64_t)upload_us * 1000 : 0);
	metrics_hist_observe(&metrics.meta_commit, &metrics_commit_buckets,
			     commit_us > 0 ? (uint64_t)commit_us * 1000 : 0);
}

void metrics_store_call(int op, int rc, uint64_t bytes, uint64_t started_ns)
{
	if (op < 0 || op >= METRICS_STORE_OPS)
		return;
	uint64_t now = uv_hrtime();
	__atomic_fetch_add(&metrics.store_calls[op], 1, __ATOMIC_RELAXED);
	if (rc != 0 && rc != SL_ENOTFOUND)
		__atomic_fetch_add(&metrics.store_errors[op], 1, __ATOMIC_RELAXED);
	else if (bytes)
		__atomic_fetch_add(&metrics.store_bytes[op], bytes, __ATOMIC_RELAXED);
	metrics_hist_observe_atomic(&metrics.store_duration[op], &metrics_duration_buckets,
				    now > started_ns ? now - started_ns : 0);
}

void metrics_init(void)
{
	kmsg_resp_error_hook = metrics_response_error;
}
