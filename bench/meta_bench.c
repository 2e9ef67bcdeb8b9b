/* meta_bench.c — the metadata store's fsync-bound commit rates, measured
 * (never asserted) on a fresh SQLite store in a temp dir, or on the
 * PostgreSQL database a postgresql:// argument names (an empty one):
 *
 *   commit_object    1-batch objects per second (synchronous=FULL) and
 *                    the p50/p99 of one commit: the durable cost of the
 *                    write path's commit
 *   offset_commit    one-row consumer offset commits per second
 *
 * These lived in the unit tests as printed figures; unit tests assert
 * behaviour, so the timing loops are here. Usage in bench/README.md. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "meta/meta.h"

static int fail(const char *what, int rc)
{
	fprintf(stderr, "meta_bench: %s failed: %d\n", what, rc);
	return 1;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Commits 1-batch objects for up to seconds_max (or commits_max). */
static int bench_commit_object(struct meta *m, double seconds_max, int commits_max)
{
	struct meta_topic t;
	int rc = meta_topic_create(m, "rate", 1, NULL, 0, &t);
	if (rc)
		return fail("meta_topic_create", rc);
	int64_t tid = t.tid;
	meta_topic_free(&t);

	static int64_t took_us[100000];
	int64_t start = clock_mono_us(), now;
	int commits = 0;
	if (commits_max > 100000)
		commits_max = 100000;
	do {
		char key[64];
		struct meta_commit_batch b;
		memset(&b, 0, sizeof b);
		b.tid = tid;
		b.length = 1000;
		b.record_count = 10;
		b.last_offset_delta = 9;
		b.max_timestamp = commits;
		b.producer_id = -1;
		b.producer_epoch = -1;
		b.base_sequence = -1;
		b.last_sequence = -1;
		snprintf(key, sizeof key, "rate-%06d", commits);
		int64_t t0 = clock_mono_us();
		rc = meta_commit_object(m, key, 1100, &b, 1);
		if (rc)
			return fail("meta_commit_object", rc);
		now = clock_mono_us();
		took_us[commits++] = now - t0;
	} while (commits < commits_max && now - start < (int64_t)(seconds_max * 1e6));
	double secs = (double)(now - start) / 1e6;
	qsort(took_us, (size_t)commits, sizeof *took_us, cmp_i64);
	printf("commit_object  1 batch, %s: %d commits in %.2f s = %.0f/s "
	       "(%.2f ms each; p50 %.2f ms, p99 %.2f ms)\n", m->m->name, commits, secs,
	       commits / secs, secs * 1000 / commits, took_us[commits / 2] / 1e3,
	       took_us[commits * 99 / 100] / 1e3);
	return 0;
}

static int bench_offset_commit(struct meta *m, int count)
{
	int64_t t0 = clock_mono_us();
	for (int i = 0; i < count; i++) {
		struct meta_offset_commit r = { "bench", 1, i % 8, i, -1, NULL, i };
		int rc = meta_offset_commit(m, &r, 1);
		if (rc)
			return fail("meta_offset_commit", rc);
	}
	double secs = (double)(clock_mono_us() - t0) / 1e6;
	printf("offset_commit  one-row transactions: %d in %.2f s = %.0f/s\n", count, secs,
	       count / secs);
	return 0;
}

int main(int argc, char **argv)
{
	/* The store goes where the broker's would: pass a directory on the
	 * device to measure (default: a fresh dir under /tmp). */
	char dir[512], url[1200], cmd[600];
	struct meta *m = NULL;
	int rc;
	if (argc > 1 && (!strncmp(argv[1], "postgresql://", 13) || !strncmp(argv[1], "postgres://", 11))) {
		rc = meta_open(argv[1], &m);
		if (rc)
			return fail("meta_open", rc);
		rc = bench_commit_object(m, 1.0, 2000) || bench_offset_commit(m, 200);
		meta_close(m);
		return rc ? 1 : 0;
	}
	snprintf(dir, sizeof dir, "%s/sluice-meta-bench-XXXXXX", argc > 1 ? argv[1] : "/tmp");
	if (!mkdtemp(dir)) {
		perror(dir);
		return 1;
	}
	snprintf(url, sizeof url, "sqlite:%s/meta.db", dir);
	rc = meta_open(url, &m);
	if (rc) {
		fail("meta_open", rc);
		goto out_rm;
	}
	rc = bench_commit_object(m, 1.0, 2000) || bench_offset_commit(m, 200);
	meta_close(m);
out_rm:
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "meta_bench: could not remove %s\n", dir);
	return rc ? 1 : 0;
}
