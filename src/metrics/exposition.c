/* exposition.c — what --metrics-listen serves: /metrics renders the
 * registry (metrics.h), the per-topic counters, the gauges read from the
 * agent's parts at scrape time (connections, queued bytes, the read
 * cache, consumer groups and their committed-offset lag) and the
 * process' CPU and memory, in Prometheus' text format 0.0.4; /healthz
 * answers while the loop turns; /readyz once the agent serves and until
 * it drains. */
#include "metrics/exposition.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "agent/agent.h"
#include "api/api.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/log.h"
#include "group/service.h"
#include "metrics/http.h"
#include "metrics/metrics.h"
#include "net/server.h"
#include "objstore/objstore.h"
#include "proto/kerr.h"
#include "storage/cache.h"
#include "storage/reader.h"
#include "storage/writer.h"

static void out_printf(struct kbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void out_printf(struct kbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	uint8_t *p = kbuf_reserve(b, (size_t)n + 1);
	if (!p)
		return;
	va_start(ap, fmt);
	vsnprintf((char *)p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static void family(struct kbuf *b, const char *name, const char *type, const char *help)
{
	out_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* One histogram's series; labels is "" or `name="value",` pairs ending
 * in a comma. ns: observed in nanoseconds, printed in seconds. */
static void histogram(struct kbuf *b, const char *name, const char *labels,
		      const struct metrics_hist *h, const struct metrics_buckets *bk, bool ns)
{
	uint64_t cum = 0;
	for (int i = 0; i <= bk->count; i++) {
		cum += load(&h->bucket[i]);
		out_printf(b, "%s_bucket{%sle=\"%s\"} %" PRIu64 "\n", name, labels,
			   i < bk->count ? bk->text[i] : "+Inf", cum);
	}
	/* _sum and _count: the labels without the trailing comma. */
	char rest[128] = "";
	size_t l = strlen(labels);
	if (l)
		snprintf(rest, sizeof rest, "{%.*s}", (int)(l - 1), labels);
	if (ns)
		out_printf(b, "%s_sum%s %.9f\n", name, rest, (double)load(&h->sum) / 1e9);
	else
		out_printf(b, "%s_sum%s %" PRIu64 "\n", name, rest, load(&h->sum));
	out_printf(b, "%s_count%s %" PRIu64 "\n", name, rest, cum);
}

/* The length of the UTF-8 sequence at p (strictly: no overlong forms,
 * no surrogates, nothing past U+10FFFF, as Prometheus' parser checks),
 * or 0 when it is not one. */
static int utf8_char(const unsigned char *p)
{
	if (p[0] < 0x80)
		return 1;
	int n = p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : p[0] >= 0xe0 && p[0] <= 0xef ? 3
	      : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : 0;
	for (int i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) ||
	    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
		return 0;
	return n;
}

char *metrics_label_escape(const char *s)
{
	size_t len = strlen(s);
	char *out = malloc(2 * len + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		int n = utf8_char(p);
		if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f) && *p != '\n')) {
			out[o++] = '?';
			p++;
		} else if (*p == '\\' || *p == '"' || *p == '\n') {
			out[o++] = '\\';
			out[o++] = *p == '\n' ? 'n' : (char)*p;
			p++;
		} else {
			memcpy(out + o, p, (size_t)n);
			o += (size_t)n;
			p += n;
		}
	}
	out[o] = 0;
	return out;
}

static const char *api_label(int k, char *buf, size_t cap)
{
	if (k == 0)
		return "unknown";
	const struct api_row *row = api_row_find((int16_t)(k - 1));
	if (row)
		return row->name;
	snprintf(buf, cap, "ApiKey%d", k - 1);
	return buf;
}

static void render_requests(struct kbuf *b)
{
	char kb[24];
	family(b, "sluice_requests_total", "counter",
	       "Kafka requests handled, by API and version (every way a request ends).");
	for (int k = 0; k <= METRICS_API_KEYS; k++)
		for (int v = 0; v < METRICS_API_VERSIONS; v++)
			if (metrics.requests[k][v])
				out_printf(b, "sluice_requests_total{api=\"%s\",version=\"%d\"} %" PRIu64 "\n",
					   api_label(k, kb, sizeof kb), v, metrics.requests[k][v]);
	family(b, "sluice_request_duration_seconds", "histogram",
	       "Time from a request's arrival until its answer is queued, by API.");
	for (int k = 0; k <= METRICS_API_KEYS; k++) {
		if (!metrics.request_duration[k].count)
			continue;
		char labels[64];
		snprintf(labels, sizeof labels, "api=\"%s\",", api_label(k, kb, sizeof kb));
		histogram(b, "sluice_request_duration_seconds", labels, &metrics.request_duration[k],
			  &metrics_duration_buckets, true);
	}
	family(b, "sluice_request_errors_total", "counter",
	       "Error codes in responses (top level and per partition), by API and error.");
	for (int k = 0; k <= METRICS_API_KEYS; k++)
		for (int e = 0; e < METRICS_ERROR_CODES; e++)
			if (metrics.request_errors[k][e])
				out_printf(b, "sluice_request_errors_total{api=\"%s\",error=\"%s\",code=\"%d\"} %" PRIu64 "\n",
					   api_label(k, kb, sizeof kb), kerr_name((int16_t)(e - 1)), e - 1,
					   metrics.request_errors[k][e]);
}

/* ---- per topic ---- */

struct topic_family {
	const char *name, *help;
	size_t offset; /* of the counter in struct metrics_topic */
};

static const struct topic_family topic_families[] = {
	{ "sluice_topic_bytes_in_total", "Record batch bytes accepted by Produce.",
	  offsetof(struct metrics_topic, bytes_in) },
	{ "sluice_topic_records_in_total", "Records accepted by Produce.",
	  offsetof(struct metrics_topic, records_in) },
	{ "sluice_topic_produce_batches_total", "Record batches accepted by Produce.",
	  offsetof(struct metrics_topic, batches_in) },
	{ "sluice_topic_bytes_out_total", "Record batch bytes sent in Fetch responses.",
	  offsetof(struct metrics_topic, bytes_out) },
	{ "sluice_topic_records_out_total", "Records in the batches sent in Fetch responses.",
	  offsetof(struct metrics_topic, records_out) },
};

struct topic_walk {
	struct kbuf *b;
	const struct topic_family *f;
};

static void topic_each(void *arg, struct topic_state *t)
{
	struct topic_walk *w = arg;
	uint64_t v;
	memcpy(&v, (const char *)&t->metrics + w->f->offset, sizeof v);
	out_printf(w->b, "%s{topic=\"%s\"} %" PRIu64 "\n", w->f->name, t->name, v);
}

static void render_topics(struct agent *a, struct kbuf *b)
{
	for (size_t i = 0; i < sizeof topic_families / sizeof topic_families[0]; i++) {
		struct topic_walk w = { b, &topic_families[i] };
		family(b, w.f->name, "counter", w.f->help);
		agent_topics_each(a, topic_each, &w);
	}
	family(b, "sluice_topics", "gauge", "Topics in the catalog.");
	out_printf(b, "sluice_topics %zu\n", agent_topic_count(a));
}

/* Records in one slot's batches: their headers' record counts (v2
 * batch: length at byte 8, record count at byte 57), read across the
 * pieces, which need not split at batch boundaries. */
static uint64_t slot_records(const struct reader_fetch *rf, size_t slot)
{
	enum { LENGTH_AT = 8, COUNT_AT = 57, HEADER_BYTES = 61, LOG_OVERHEAD = 12 };
	uint8_t h[HEADER_BYTES];
	size_t have = 0;
	uint64_t pos = 0, batch = 0, records = 0;
	for (size_t i = 0, n = reader_piece_count(rf, slot); i < n; i++) {
		size_t len;
		const uint8_t *p = reader_piece(rf, slot, i, &len);
		for (size_t off = 0; off < len;) {
			if (pos + off < batch) { /* inside a batch's records */
				uint64_t skip = batch - (pos + off);
				off += skip < len - off ? (size_t)skip : len - off;
				continue;
			}
			size_t take = HEADER_BYTES - have < len - off ? HEADER_BYTES - have : len - off;
			memcpy(h + have, p + off, take);
			have += take;
			off += take;
			if (have < HEADER_BYTES)
				continue;
			int32_t length = (int32_t)be32_load(h + LENGTH_AT);
			int32_t count = (int32_t)be32_load(h + COUNT_AT);
			if (length < HEADER_BYTES - LOG_OVERHEAD)
				return records; /* not a batch: stop counting */
			records += count > 0 ? (uint64_t)count : 0;
			batch += LOG_OVERHEAD + (uint64_t)length;
			have = 0;
		}
		pos += len;
	}
	return records;
}

void metrics_fetch_out(struct agent *a, int16_t version, const struct kmsg_fetch_resp *r,
		       const struct reader_fetch *rf, const size_t *resp_slot)
{
	size_t n = 0;
	for (int32_t i = 0; i < r->responses_count; i++) {
		const struct kmsg_fetch_resp_fetchable_topic_response *rt = &r->responses[i];
		uint64_t bytes = 0, records = 0;
		for (int32_t j = 0; j < rt->partitions_count; j++, n++) {
			if (rt->partitions[j].records.len <= 0)
				continue;
			bytes += (uint64_t)rt->partitions[j].records.len;
			records += slot_records(rf, resp_slot[n]);
		}
		if (!bytes)
			continue;
		struct topic_state *t = version >= 13 ? agent_topic_by_uuid(a, rt->topic_id)
						      : agent_topic(a, rt->topic);
		if (t) {
			t->metrics.bytes_out += bytes;
			t->metrics.records_out += records;
		}
	}
}

/* ---- the write path, the store, the cache ---- */

static void render_storage(struct agent *a, struct kbuf *b)
{
	family(b, "sluice_objects_sealed_total", "counter",
	       "Objects sealed, written to the store and committed to the metadata store.");
	out_printf(b, "sluice_objects_sealed_total %" PRIu64 "\n", metrics.objects_committed);
	family(b, "sluice_object_size_bytes", "histogram", "Sizes of the objects committed.");
	histogram(b, "sluice_object_size_bytes", "", &metrics.object_size, &metrics_size_buckets, false);
	family(b, "sluice_object_upload_duration_seconds", "histogram",
	       "Encoding and durably writing one object, from seal to stored.");
	histogram(b, "sluice_object_upload_duration_seconds", "", &metrics.object_upload,
		  &metrics_duration_buckets, true);
	family(b, "sluice_meta_commit_duration_seconds", "histogram",
	       "The metadata transaction that commits an object's batches (a group commit is "
	       "observed once per object in it).");
	histogram(b, "sluice_meta_commit_duration_seconds", "", &metrics.meta_commit,
		  &metrics_commit_buckets, true);
	struct writer_stats ws = { 0 };
	if (a->writer)
		writer_get_stats(a->writer, &ws);
	family(b, "sluice_object_write_errors_total", "counter",
	       "Objects whose write or commit failed (their produce requests got an error).");
	out_printf(b, "sluice_object_write_errors_total %" PRIu64 "\n", ws.flush_errors);
	family(b, "sluice_write_buffer_bytes", "gauge",
	       "Produce bytes held while their objects are written and committed.");
	out_printf(b, "sluice_write_buffer_bytes %zu\n", a->writer ? writer_buffered_bytes(a->writer) : 0);

	struct objstore_stats st;
	objstore_stats(a->store, &st); /* zeros for a store without counters */
	static const struct {
		const char *name, *help;
	} store_families[] = {
		{ "sluice_object_store_requests_total", "Object store calls, by operation." },
		{ "sluice_object_store_errors_total", "Object store calls that failed (not found is an answer)." },
		{ "sluice_object_store_bytes_total", "Bytes written (put) and read (get) by successful calls." },
		{ "sluice_object_store_retries_total", "Object store requests that were retries (S3)." },
	};
	for (int f = 0; f < 4; f++) {
		family(b, store_families[f].name, "counter", store_families[f].help);
		for (int op = 0; op < METRICS_STORE_OPS; op++) {
			uint64_t v = f == 0 ? load(&metrics.store_calls[op])
				   : f == 1 ? load(&metrics.store_errors[op])
				   : f == 2 ? load(&metrics.store_bytes[op]) : st.retries[op];
			out_printf(b, "%s{operation=\"%s\"} %" PRIu64 "\n", store_families[f].name,
				   objstore_op_name(op), v);
		}
	}
	family(b, "sluice_object_store_request_duration_seconds", "histogram",
	       "Object store call latency (retries included), by operation.");
	for (int op = 0; op < METRICS_STORE_OPS; op++) {
		char labels[48];
		snprintf(labels, sizeof labels, "operation=\"%s\",", objstore_op_name(op));
		histogram(b, "sluice_object_store_request_duration_seconds", labels,
			  &metrics.store_duration[op], &metrics_duration_buckets, true);
	}

	family(b, "sluice_read_cache_hits_total", "counter", "Fetch reads served by the read cache.");
	out_printf(b, "sluice_read_cache_hits_total %" PRIu64 "\n", a->cache ? cache_hits(a->cache) : 0);
	family(b, "sluice_read_cache_misses_total", "counter", "Fetch reads the read cache did not hold.");
	out_printf(b, "sluice_read_cache_misses_total %" PRIu64 "\n", a->cache ? cache_misses(a->cache) : 0);
	family(b, "sluice_read_cache_load_bytes_total", "counter",
	       "Bytes read from the object store into the read cache.");
	out_printf(b, "sluice_read_cache_load_bytes_total %" PRIu64 "\n",
		   a->cache ? cache_load_bytes(a->cache) : 0);
	family(b, "sluice_read_cache_bytes", "gauge", "Bytes the read cache holds.");
	out_printf(b, "sluice_read_cache_bytes %zu\n", a->cache ? cache_bytes(a->cache) : 0);
}

/* ---- connections, groups ---- */

static const char *const group_states[] = {
	"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead",
};
#define GROUP_STATES (sizeof group_states / sizeof group_states[0])

/* One scrape of /metrics: the groups walked on the loop, then their
 * committed offsets read on libuv's pool (a PostgreSQL round trip per
 * group must not hold the loop), then everything rendered on the loop. */
struct scrape {
	uv_work_t work;
	struct agent *a;
	struct meta *meta;
	struct metrics_http_reply *reply;
	size_t per_state[GROUP_STATES];
	char **ids;      /* the groups to read lag of (malloc'd copies) */
	size_t n, cap;
	size_t left_out;
	struct scrape_offsets {
		struct meta_committed_offset *o;
		size_t n;
		int rc;
	} *offsets;      /* per id, filled on the pool */
};

static void group_each(void *arg, const char *group_id, const char *state, const char *ptype)
{
	struct scrape *sc = arg;
	for (size_t i = 0; i < GROUP_STATES; i++)
		if (state && !strcmp(state, group_states[i]))
			sc->per_state[i]++;
	if (sc->n == sc->cap) {
		sc->left_out++;
		return;
	}
	if ((sc->ids[sc->n] = strdup(group_id)) != NULL)
		sc->n++;
}

static void scrape_free(struct scrape *sc)
{
	for (size_t g = 0; g < sc->n; g++) {
		free(sc->ids[g]);
		if (sc->offsets)
			meta_committed_offsets_free(sc->offsets[g].o, sc->offsets[g].n);
	}
	free(sc->ids);
	free(sc->offsets);
	free(sc);
}

/* The groups this agent knows (at most SL_METRICS_LAG_GROUPS_MAX of them
 * keep their ids for the lag). NULL when out of memory. */
static struct scrape *scrape_new(struct agent *a)
{
	struct scrape *sc = calloc(1, sizeof *sc);
	if (!sc)
		return NULL;
	sc->a = a;
	sc->meta = a->meta;
	if (!group_svc_running(a->groups))
		return sc;
	size_t max = group_svc_group_count_max(a->groups);
	sc->cap = max < SL_METRICS_LAG_GROUPS_MAX ? max : SL_METRICS_LAG_GROUPS_MAX;
	sc->ids = calloc(sc->cap + 1, sizeof *sc->ids);
	sc->offsets = calloc(sc->cap + 1, sizeof *sc->offsets);
	if (!sc->ids || !sc->offsets) {
		scrape_free(sc);
		return NULL;
	}
	group_svc_groups_each(a->groups, group_each, sc);
	return sc;
}

/* [pool: read]: each group's committed offsets. */
static void scrape_read_offsets(struct scrape *sc)
{
	for (size_t g = 0; g < sc->n; g++)
		sc->offsets[g].rc = meta_offset_fetch(sc->meta, sc->ids[g], &sc->offsets[g].o,
						      &sc->offsets[g].n);
}

/* Lag of every partition a group has committed an offset for: the high
 * watermark this agent serves now minus the committed offset read. */
static void render_lag(struct agent *a, struct kbuf *b, const struct scrape *sc)
{
	family(b, "sluice_consumer_group_lag_records", "gauge",
	       "High watermark minus the group's committed offset, per partition.");
	size_t series = 0, dropped = 0;
	for (size_t g = 0; g < sc->n; g++) {
		const struct meta_committed_offset *o = sc->offsets[g].o;
		size_t n = sc->offsets[g].rc == 0 ? sc->offsets[g].n : 0;
		char *gid = n ? metrics_label_escape(sc->ids[g]) : NULL;
		for (size_t i = 0; gid && i < n; i++) {
			struct topic_state *t = agent_topic_by_tid(a, o[i].tid);
			if (!t || o[i].partition < 0 || o[i].partition >= t->partition_count ||
			    o[i].committed_offset < 0)
				continue;
			if (series == SL_METRICS_LAG_SERIES_MAX) {
				dropped++;
				continue;
			}
			int64_t lag = t->parts[o[i].partition].high_watermark - o[i].committed_offset;
			out_printf(b, "sluice_consumer_group_lag_records{group=\"%s\",topic=\"%s\",partition=\"%" PRId32 "\"} %" PRId64 "\n",
				   gid, t->name, o[i].partition, lag > 0 ? lag : 0);
			series++;
		}
		free(gid);
	}
	family(b, "sluice_consumer_group_lag_series_dropped", "gauge",
	       "Lag series left out of this scrape by its bound (groups beyond the bound count "
	       "as one each).");
	out_printf(b, "sluice_consumer_group_lag_series_dropped %zu\n", dropped + sc->left_out);
}

static void render_groups(struct agent *a, struct kbuf *b, const struct scrape *sc)
{
	family(b, "sluice_consumer_groups", "gauge", "Consumer groups this agent coordinates, by state.");
	for (size_t i = 0; i < GROUP_STATES; i++)
		out_printf(b, "sluice_consumer_groups{state=\"%s\"} %zu\n", group_states[i], sc->per_state[i]);
	render_lag(a, b, sc);
}

static void render_process(struct agent *a, struct kbuf *b)
{
	family(b, "sluice_connections", "gauge", "Open Kafka client connections.");
	out_printf(b, "sluice_connections %zu\n", a->server ? server_connection_count(a->server) : 0);
	family(b, "sluice_connections_accepted_total", "counter", "Kafka client connections accepted.");
	out_printf(b, "sluice_connections_accepted_total %" PRIu64 "\n", metrics.connections_accepted);
	family(b, "sluice_queued_request_bytes", "gauge",
	       "Request bytes received and not yet answered (--queued-request-bytes bounds them).");
	out_printf(b, "sluice_queued_request_bytes %zu\n", a->server ? server_queued_bytes(a->server) : 0);
	family(b, "sluice_ready", "gauge", "1 while the agent serves, 0 while it drains.");
	out_printf(b, "sluice_ready %d\n", a->server && !a->draining);

	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		family(b, "process_cpu_seconds_total", "counter", "User and system CPU time spent.");
		out_printf(b, "process_cpu_seconds_total %.6f\n",
			   (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
				   (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	}
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long pages_total, pages_resident;
	if (f) {
		if (fscanf(f, "%lu %lu", &pages_total, &pages_resident) == 2) {
			family(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
			out_printf(b, "process_resident_memory_bytes %lu\n",
				   pages_resident * (unsigned long)sysconf(_SC_PAGESIZE));
		}
		fclose(f);
	}
}

static void render(struct agent *a, struct kbuf *out, const struct scrape *sc)
{
	render_requests(out);
	render_topics(a, out);
	render_storage(a, out);
	render_groups(a, out, sc);
	render_process(a, out);
	family(out, "sluice_metrics_http_requests_total", "counter",
	       "Requests the metrics endpoint has answered or is answering.");
	out_printf(out, "sluice_metrics_http_requests_total %" PRIu64 "\n", metrics.http_requests);
}

/* ---- the endpoint ---- */

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static void scrape_work(uv_work_t *w)
{
	scrape_read_offsets(w->data);
}

static void scrape_done(uv_work_t *w, int status)
{
	struct scrape *sc = w->data;
	struct kbuf body;
	kbuf_init(&body);
	render(sc->a, &body, sc);
	struct metrics_http_reply *reply = sc->reply;
	scrape_free(sc);
	metrics_http_reply(reply, body.oom ? 500 : 200, &body, METRICS_CONTENT_TYPE);
}

static int route(void *arg, const char *path, size_t len, struct kbuf *body, const char **type,
		 struct metrics_http_reply *reply)
{
	struct agent *a = arg;
	if (len == 8 && !memcmp(path, "/metrics", 8)) {
		*type = METRICS_CONTENT_TYPE;
		struct scrape *sc = scrape_new(a);
		if (!sc)
			return 500;
		if (sc->n > 0) {
			sc->reply = reply;
			sc->work.data = sc;
			if (uv_queue_work(a->loop, &sc->work, scrape_work, scrape_done) == 0)
				return METRICS_HTTP_LATER;
			sc->reply = NULL;
			scrape_read_offsets(sc); /* cannot happen with libuv's pool */
		}
		render(a, body, sc);
		scrape_free(sc);
		return body->oom ? 500 : 200;
	}
	if (len == 8 && !memcmp(path, "/healthz", 8)) {
		kbuf_put(body, "ok\n", 3);
		return 200;
	}
	if (len == 7 && !memcmp(path, "/readyz", 7)) {
		/* Ready from the end of agent_start (stores open, listeners
		 * accepting) until a drain begins. */
		bool ready = a->server && !a->draining;
		const char *msg = ready ? "ready\n" : "draining\n";
		kbuf_put(body, msg, strlen(msg));
		return ready ? 200 : 503;
	}
	kbuf_put(body, "not found\n", 10);
	return 404;
}

int metrics_agent_start(struct agent *a)
{
	metrics_init();
	if (!a->cfg.metrics_host[0])
		return 0;
	struct metrics_http_config hc = { a->cfg.metrics_host, a->cfg.metrics_port, route, a };
	int rc = metrics_http_start(a->loop, &hc, &a->metrics_http);
	if (rc)
		return rc;
	log_info("metrics on http://%s:%d/metrics (/healthz, /readyz)", a->cfg.metrics_host,
		 metrics_http_port(a->metrics_http));
	return 0;
}

void metrics_agent_stop(struct agent *a)
{
	metrics_http_close(a->metrics_http);
	a->metrics_http = NULL;
}
