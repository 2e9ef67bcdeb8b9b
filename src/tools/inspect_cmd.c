/* inspect_cmd.c — `sluice inspect object` and `sluice inspect partition`. */
#include "tools/inspect_cmd.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "meta/meta.h"
#include "objstore/objstore.h"
#include "storage/inspect.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage:\n"
		"  sluice inspect object [-v] FILE              dump an object file\n"
		"  sluice inspect object [-v] --store URL KEY   dump an object of a store\n"
		"  sluice inspect partition [--meta URL | --data DIR] TOPIC PARTITION\n"
		"                                               dump a partition's batch rows\n"
		"-v (twice for records) prints more.\n");
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return SL_ENOTFOUND;
	size_t cap = 1 << 16, n = 0;
	uint8_t *buf = malloc(cap);
	size_t got;
	while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			uint8_t *b = realloc(buf, cap * 2);
			if (!b) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = b;
			cap *= 2;
		}
	}
	fclose(f);
	if (!buf)
		return SL_ENOMEM;
	*out = buf;
	*len = n;
	return 0;
}

static int inspect_object_cmd(int argc, char **argv)
{
	int verbosity = 1;
	const char *store_url = NULL, *target = NULL;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "-v"))
			verbosity++;
		else if (!strcmp(argv[i], "-vv"))
			verbosity += 2;
		else if (!strcmp(argv[i], "--store") && i + 1 < argc)
			store_url = argv[++i];
		else if (!target)
			target = argv[i];
		else {
			usage(stderr);
			return 2;
		}
	}
	if (!target) {
		usage(stderr);
		return 2;
	}
	int rc;
	if (store_url) {
		struct objstore *s;
		if (objstore_open(store_url, &s) != 0)
			return 1;
		rc = inspect_object_key(stdout, s, target, verbosity);
		objstore_close(s);
	} else {
		uint8_t *obj;
		size_t len;
		rc = read_file(target, &obj, &len);
		if (rc) {
			fprintf(stderr, "sluice: cannot read %s: %s\n", target, sl_strerror(rc));
			return 1;
		}
		rc = inspect_object(stdout, obj, len, verbosity);
		free(obj);
	}
	return rc ? 1 : 0;
}

/* Most aborted transactions listed: a partition may hold millions. */
#define INSPECT_ABORTED_MAX 10000

/* The transaction markers counted and the aborted transactions the
 * read_committed fetches are told of (the aborted_txns rows from the log
 * start on): what the cleaner removes once their data is gone. */
static int print_aborted(struct meta *m, int64_t tid, int32_t partition,
			 const struct meta_partition *p, uint64_t markers)
{
	struct meta_aborted_txn *v = malloc(INSPECT_ABORTED_MAX * sizeof *v);
	size_t n = 0;
	if (!v)
		return SL_ENOMEM;
	int rc = meta_aborted_txns(m, tid, partition, p->log_start_offset, INT64_MAX, v,
				   INSPECT_ABORTED_MAX, &n);
	if (rc == SL_EUNSUPPORTED)
		rc = 0;
	if (!rc) {
		printf("%" PRIu64 " transaction markers, %zu%s aborted transactions\n", markers, n,
		       n == INSPECT_ABORTED_MAX ? "+" : "");
		for (size_t i = 0; i < n; i++)
			printf("aborted transaction: producer %" PRId64 ", offsets %" PRId64
			       " to %" PRId64 "\n", v[i].producer_id, v[i].first_offset,
			       v[i].last_offset);
	}
	free(v);
	return rc;
}

static int inspect_partition_cmd(int argc, char **argv)
{
	char meta_url[1100] = "sqlite:./data/meta.db";
	const char *topic = NULL, *part = NULL;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--meta") && i + 1 < argc)
			snprintf(meta_url, sizeof meta_url, "%s", argv[++i]);
		else if (!strcmp(argv[i], "--data") && i + 1 < argc)
			snprintf(meta_url, sizeof meta_url, "sqlite:%s/meta.db", argv[++i]);
		else if (!topic)
			topic = argv[i];
		else if (!part)
			part = argv[i];
		else {
			usage(stderr);
			return 2;
		}
	}
	if (!topic || !part) {
		usage(stderr);
		return 2;
	}
	int32_t partition = atoi(part);
	struct meta *m;
	if (meta_open(meta_url, &m) != 0)
		return 1;
	struct meta_topic *topics;
	size_t n;
	int status = 1;
	if (meta_topic_list(m, &topics, &n) != 0)
		goto out_close;
	struct meta_topic *t = NULL;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(topics[i].name, topic))
			t = &topics[i];
	struct meta_partition p;
	if (!t || meta_partition_get(m, t->tid, partition, &p) != 0) {
		char shown[1024];
		meta_url_redact(meta_url, shown, sizeof shown);
		fprintf(stderr, "sluice: no partition %s-%d in %s\n", topic, partition, shown);
		goto out_free_topics;
	}
	printf("topic %s partition %d: log start offset %" PRId64 ", high watermark %" PRId64 "\n",
	       topic, partition, p.log_start_offset, p.high_watermark);
	printf("%12s %12s %8s %22s %12s %8s %6s  %s\n", "base_offset", "last_offset", "records",
	       "max_timestamp", "byte_offset", "length", "kind", "object");
	int64_t offset = 0;
	/* Which objects hold the partition (merging, issue 15, cuts them):
	 * counted as the rows go by, distinct keys among neighbours (a
	 * partition's rows of one object are contiguous unless two agents'
	 * commits interleave, where this counts one object twice). */
	uint64_t batch_count = 0, objects = 0, bytes = 0, markers = 0;
	char last_key[META_OBJECT_KEY_BYTES] = "";
	for (;;) {
		struct meta_batch_row rows[256];
		/* The many-partition form: it tells the rows' attributes. */
		struct meta_batch_query q = { .tid = t->tid, .partition = partition,
					      .offset = offset, .max_rows = 256 };
		if (meta_batches_from_many(m, &q, 1, rows, 256) != 0)
			goto out_free_topics;
		size_t got = q.n;
		for (size_t i = 0; i < got; i++) {
			batch_count++;
			bytes += rows[i].length;
			if (strcmp(rows[i].object_key, last_key)) {
				objects++;
				snprintf(last_key, sizeof last_key, "%s", rows[i].object_key);
			}
		}
		for (size_t i = 0; i < got; i++) {
			int16_t attr = rows[i].attributes;
			markers += (attr & META_BATCH_ATTR_CONTROL) != 0;
			printf("%12" PRId64 " %12" PRId64 " %8d %22" PRId64 " %12" PRIu64 " %8u %6s  %s\n",
			       rows[i].base_offset, rows[i].last_offset, rows[i].record_count,
			       rows[i].max_timestamp, rows[i].byte_offset, rows[i].length,
			       attr & META_BATCH_ATTR_CONTROL ? "marker"
			       : attr & META_BATCH_ATTR_TRANSACTIONAL ? "txn" : "-",
			       rows[i].object_key);
		}
		if (got < 256)
			break;
		offset = rows[got - 1].last_offset + 1;
	}
	printf("%" PRIu64 " batches, %" PRIu64 " bytes in %" PRIu64 " objects\n", batch_count,
	       bytes, objects);
	if (print_aborted(m, t->tid, partition, &p, markers) == 0)
		status = 0;
out_free_topics:
	meta_topics_free(topics, n);
out_close:
	meta_close(m);
	return status;
}

int inspect_cmd(int argc, char **argv)
{
	if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
		usage(argc < 1 ? stderr : stdout);
		return argc < 1 ? 2 : 0;
	}
	if (!strcmp(argv[0], "object"))
		return inspect_object_cmd(argc - 1, argv + 1);
	if (!strcmp(argv[0], "partition"))
		return inspect_partition_cmd(argc - 1, argv + 1);
	usage(stderr);
	return 2;
}
