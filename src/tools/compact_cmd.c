/* compact_cmd.c — `sluice compact [flags] TOPIC [PARTITION]`: forces one
 * pass over a topic's partitions, for tests and operators: a cleaning
 * pass (storage/clean.h) when the topic's cleanup.policy includes
 * "compact", else a merge pass (storage/merge.h).
 *
 * It works on the object and metadata stores directly, also while agents
 * serve: every swap is one metadata transaction that refuses when a row
 * changed since it was read (a commit only appends rows, a trim deletes
 * them, a topic delete removes them, and each of those serializes with
 * the swap), and the objects it empties stay readable for the collector's
 * grace counted from the swap (--gc-grace-ms, an hour by default), which
 * covers an agent's fetches planned before it. An agent's batch index may
 * keep naming the old objects for longer: see architecture.md (merging). */
#include "tools/compact_cmd.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "meta/meta.h"
#include "objstore/objstore.h"
#include "agent/topic_config.h"
#include "base/limits.h"
#include "storage/clean.h"
#include "storage/merge.h"

#define COMPACT_URL_BYTES 1100

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sluice compact [--data DIR] [--store URL] [--meta URL]\n"
		"                      [--merge-target-bytes N] [--merge-swap-rows N]\n"
		"                      [--merge-min-age-ms N]\n"
		"                      [--compaction-memory-bytes N] TOPIC [PARTITION]\n\n"
		"On a topic whose cleanup.policy includes compact: cleans it as the agent's\n"
		"cleaner does (the latest record of each key, tombstones until\n"
		"delete.retention.ms after their first cleaning; the active head of\n"
		"segment.ms and min.compaction.lag.ms left alone), whatever its dirty\n"
		"ratio; offsets never change. On other topics: merges batches held in small\n"
		"objects into one object per partition and run of up to\n"
		"--merge-target-bytes (default 64 MiB), as the agent's merge job does;\n"
		"offsets and bytes served do not change. Safe while agents serve. The\n"
		"emptied objects go to the garbage collector.\n"
		"  --data DIR              default store and meta URLs (default ./data)\n"
		"  --store URL             object store (default file:DATA/objects)\n"
		"  --meta URL              metadata store (default sqlite:DATA/meta.db)\n"
		"  --merge-target-bytes N  batch bytes per merged object (default 67108864)\n"
		"  --merge-swap-rows N     batch rows per metadata transaction of a merged\n"
		"                          object's swap (default 512; produce commits wait\n"
		"                          behind each)\n"
		"  --merge-min-age-ms N    leave objects younger than this (default 0)\n"
		"  --compaction-memory-bytes N  batch bytes one chunk of a cleaning pass\n"
		"                          reads at most (default 134217728); a longer\n"
		"                          partition is cleaned a chunk at a time\n");
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (!*s || *end || *s == '-')
		return false;
	*out = v;
	return true;
}

static const char *topic_lookup(void *arg, const char *name)
{
	const struct meta_topic *t = arg;
	for (int32_t i = 0; i < t->config_count; i++)
		if (!strcmp(t->configs[i].name, name))
			return t->configs[i].value;
	return NULL;
}

/* One forced cleaning pass over partition p; 0 or 1 (reported). */
static int clean_one(struct meta *m, struct objstore *store, const struct meta_topic *t,
		     int32_t p, const struct compact_config *cc, size_t pass_bytes,
		     struct merge_buf *buf)
{
	struct clean_stats st = { 0 };
	int rc = clean_partition(m, store, t->tid, p, t->uuid, cc, clock_wall_ms(), true, pass_bytes,
				 NULL, NULL, buf, &st);
	printf("compact: %s-%d: cleaned %" PRIu64 " rows (%" PRIu64 " records, %" PRIu64
	       " bytes) into %" PRIu64 " records (%" PRIu64 " bytes), dirty ratio %.3f, %" PRIu64
	       " reads, checkpoint %" PRId64 ", %" PRIu64 " refused, %" PRIu64
	       " aborted transactions gone\n",
	       t->name, p, st.rows, st.records_read, st.bytes_read, st.records_kept,
	       st.bytes_written, st.dirty_ratio, st.gets, st.clean_offset, st.refused,
	       st.aborted_gone);
	if (rc) {
		fprintf(stderr, "sluice compact: %s-%d: %s\n", t->name, p, sl_strerror(rc));
		return 1;
	}
	return 0;
}

int compact_cmd(int argc, char **argv)
{
	char data[COMPACT_URL_BYTES] = "data", store_url[COMPACT_URL_BYTES] = "",
	     meta_url[COMPACT_URL_BYTES] = "";
	const char *topic = NULL, *part = NULL;
	uint64_t target = 64ull << 20, min_age = 0, pass_bytes = SL_COMPACT_PASS_BYTES,
		 swap_rows = SL_MERGE_SWAP_ROWS;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if ((!strcmp(a, "--data") || !strcmp(a, "--store") || !strcmp(a, "--meta")) && v) {
			char *dst = a[2] == 'd' ? data : a[2] == 's' ? store_url : meta_url;
			i++;
			if ((size_t)snprintf(dst, COMPACT_URL_BYTES, "%s", v) >= COMPACT_URL_BYTES) {
				fprintf(stderr, "sluice compact: %s value too long\n", a);
				return 2;
			}
		} else if (!strcmp(a, "--merge-target-bytes") && v) {
			i++;
			if (!parse_u64(v, &target) || target < 1024 || target > (1ull << 40)) {
				fprintf(stderr, "sluice compact: bad --merge-target-bytes '%s' (1024 to 2^40)\n", v);
				return 2;
			}
		} else if (!strcmp(a, "--merge-swap-rows") && v) {
			i++;
			if (!parse_u64(v, &swap_rows) || swap_rows < 1 || swap_rows > SL_MERGE_RUN_ROWS_MAX) {
				fprintf(stderr, "sluice compact: bad --merge-swap-rows '%s' (1 to %d)\n", v,
					SL_MERGE_RUN_ROWS_MAX);
				return 2;
			}
		} else if (!strcmp(a, "--merge-min-age-ms") && v) {
			i++;
			if (!parse_u64(v, &min_age) || min_age > INT64_MAX / 2) {
				fprintf(stderr, "sluice compact: bad --merge-min-age-ms '%s'\n", v);
				return 2;
			}
		} else if (!strcmp(a, "--compaction-memory-bytes") && v) {
			i++;
			if (!parse_u64(v, &pass_bytes) || pass_bytes < 1024 || pass_bytes > (1ull << 34)) {
				fprintf(stderr, "sluice compact: bad --compaction-memory-bytes '%s' (1024 to 2^34)\n", v);
				return 2;
			}
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "sluice compact: unknown or incomplete flag '%s'\n\n", a);
			usage(stderr);
			return 2;
		} else if (!topic) {
			topic = a;
		} else if (!part) {
			part = a;
		} else {
			usage(stderr);
			return 2;
		}
	}
	uint64_t partition_arg = 0;
	if (!topic || (part && (!parse_u64(part, &partition_arg) || partition_arg > INT32_MAX))) {
		usage(stderr);
		return 2;
	}
	if ((!store_url[0] && (size_t)snprintf(store_url, sizeof store_url, "file:%s/objects",
					       data) >= sizeof store_url) ||
	    (!meta_url[0] && (size_t)snprintf(meta_url, sizeof meta_url, "sqlite:%s/meta.db",
					      data) >= sizeof meta_url)) {
		fprintf(stderr, "sluice compact: --data value too long\n");
		return 2;
	}
	struct objstore *store = NULL;
	struct meta *m = NULL;
	struct meta_topic *topics = NULL;
	size_t nt = 0;
	/* One buffer for the partitions' passes, as the agent keeps one. */
	struct merge_buf buf = { 0 };
	int status = 1;
	if (objstore_open(store_url, &store) != 0)
		return 1;
	if (meta_open_existing(meta_url, &m) != 0)
		goto out_close_store;
	if (meta_topic_list(m, &topics, &nt) != 0)
		goto out_close;
	const struct meta_topic *t = NULL;
	for (size_t i = 0; i < nt; i++)
		if (!strcmp(topics[i].name, topic))
			t = &topics[i];
	if (!t || (part && (int64_t)partition_arg >= t->partition_count)) {
		fprintf(stderr, "sluice compact: no topic %s%s%s\n", topic, part ? " partition " : "",
			part ? part : "");
		goto out_close;
	}
	struct merge_plan_config c = { .target_bytes = target, .min_age_ms = (int64_t)min_age,
				       .swap_rows = (size_t)swap_rows };
	merge_plan_defaults(&c);
	int32_t first = part ? (int32_t)partition_arg : 0;
	int32_t end = part ? first + 1 : t->partition_count;
	status = 0;
	if (topic_config_compacts(topic_lookup, (void *)t)) {
		struct compact_config cc;
		topic_config_compact(topic_lookup, (void *)t, &cc);
		for (int32_t p = first; p < end; p++)
			if (clean_one(m, store, t, p, &cc, (size_t)pass_bytes, &buf) != 0)
				status = 1;
		goto out_close;
	}
	for (int32_t p = first; p < end; p++) {
		struct merge_stats st = { 0 };
		int rc = merge_partition(m, store, t->tid, p, t->uuid, &c, clock_wall_ms(), NULL, NULL,
					 &buf, NULL, &st);
		printf("compact: %s-%d: %" PRIu64 " rows (%" PRIu64 " batches) from %" PRIu64
		       " objects into %" PRIu64 " merged objects (%" PRIu64 " bytes, %" PRIu64
		       " reads), %" PRIu64 " refused; %" PRIu64 " swap transactions, the longest %.1f ms;"
		       " %" PRIu64 " of the rows into %" PRIu64 " partly merged objects\n",
		       topic, p, st.rows, st.batches, st.sources, st.runs, st.bytes, st.gets,
		       st.refused, st.swaps, (double)st.swap_us_max / 1000.0, st.resumed,
		       st.resumed_objects);
		if (rc) {
			fprintf(stderr, "sluice compact: %s-%d: %s\n", topic, p, sl_strerror(rc));
			status = 1;
		}
	}
out_close:
	merge_buf_free(&buf);
	meta_topics_free(topics, nt);
	meta_close(m);
out_close_store:
	objstore_close(store);
	return status;
}
