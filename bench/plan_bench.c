/* plan_bench.c — the compaction planner's cost per check for a busy
 * compacted partition that is not due (issue 15; docs/compaction.md,
 * "The agent's job"), measured (never asserted) on a fresh SQLite store
 * in a temp dir, or on the PostgreSQL database a postgresql:// argument
 * names (a topic of its own in it):
 *
 *   plan_bench [URL] [--rows N] [--rounds R]
 *
 * One partition of N one-batch rows (default 100,000; 1 KiB each, 10
 * offsets), its checkpoint set at 90% of it (as a pass's swap leaves
 * it: the dirty ratio at most 0.1, below the default 0.5), no lag
 * passed. Then R rounds (default 10), alternating in each: the agent's
 * planning (clean_plan_partition: the metadata bounds, rows unread) and
 * the plan over all rows (clean_pass_begin, not forced: what every check
 * did before the bounds). Prints ms per check (mean, min, max) and
 * batch rows read of each, and one line "plan:rows,mode,mean_ms,..."
 * per mode. */
#include <inttypes.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compact/compact.h"
#include "meta/meta.h"
#include "storage/clean.h"

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int set_checkpoint(const char *url, const char *path, int64_t tid, int64_t offset)
{
	char sql[256];
	snprintf(sql, sizeof sql, "UPDATE partitions SET clean_offset = %" PRId64
		 " WHERE tid = %" PRId64 " AND partition = 0", offset, tid);
	if (path) {
		sqlite3 *db;
		if (sqlite3_open(path, &db) != SQLITE_OK)
			return -1;
		sqlite3_busy_timeout(db, 10000);
		int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
		sqlite3_close(db);
		return rc == SQLITE_OK ? 0 : -1;
	}
	PGconn *c = PQconnectdb(url);
	PGresult *r = PQexec(c, sql);
	int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
	PQclear(r);
	PQfinish(c);
	return rc;
}

int main(int argc, char **argv)
{
	const char *url = NULL;
	long rows = 100000, rounds = 10;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--rows") && i + 1 < argc)
			rows = atol(argv[++i]);
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atol(argv[++i]);
		else
			url = argv[i];
	}
	char dir[] = "/tmp/sluice-plan-bench-XXXXXX", path[96] = "", sq[128];
	if (!url) {
		if (!mkdtemp(dir))
			return 1;
		snprintf(path, sizeof path, "%s/meta.db", dir);
		snprintf(sq, sizeof sq, "sqlite:%s", path);
		url = sq;
	}
	struct meta *m;
	struct meta_topic t;
	char topic[64];
	snprintf(topic, sizeof topic, "plan-bench-%ld", (long)getpid());
	if (meta_open(url, &m) || meta_topic_create(m, topic, 1, NULL, 0, NULL, &t)) {
		fprintf(stderr, "plan_bench: cannot open %s or create the topic\n", url);
		return 1;
	}
	int64_t tid = t.tid;
	meta_topic_free(&t);
	const int64_t wall = (int64_t)time(NULL) * 1000;
	/* Objects of one batch, committed META_COMMIT_OBJECTS_MAX at a time. */
	struct meta_commit_batch b[META_COMMIT_OBJECTS_MAX];
	struct meta_commit_obj o[META_COMMIT_OBJECTS_MAX];
	char keys[META_COMMIT_OBJECTS_MAX][96];
	double t0 = now_ms();
	for (long done = 0; done < rows;) {
		size_t n = 0;
		for (; n < META_COMMIT_OBJECTS_MAX && done < rows; n++, done++) {
			b[n] = (struct meta_commit_batch){ .tid = tid, .byte_offset = 0, .length = 1024,
							   .record_count = 10, .last_offset_delta = 9,
							   .max_timestamp = wall - 60000, .producer_id = -1,
							   .producer_epoch = -1, .base_sequence = -1,
							   .last_sequence = -1 };
			snprintf(keys[n], sizeof keys[n], "%s/%ld", topic, done);
			o[n] = (struct meta_commit_obj){ keys[n], 1024, &b[n], 1 };
		}
		if (meta_commit_objects(m, o, n)) {
			fprintf(stderr, "plan_bench: commit failed\n");
			return 1;
		}
	}
	fprintf(stderr, "plan_bench: %ld rows committed in %.0f ms\n", rows, now_ms() - t0);
	if (set_checkpoint(url, path[0] ? path : NULL, tid, rows * 10 * 9 / 10)) {
		fprintf(stderr, "plan_bench: cannot set the checkpoint\n");
		return 1;
	}
	struct compact_config c = { .segment_ms = 7 * 86400000LL, .max_compaction_lag_ms = INT64_MAX,
				    .delete_retention_ms = 86400000, .min_cleanable_dirty_ratio = 0.5,
				    .producer_expiration_ms = 86400000, .map_bytes_max = 1 << 20 };
	double sum[2] = { 0 }, lo[2] = { 1e18, 1e18 }, hi[2] = { 0 };
	uint64_t read[2] = { 0 };
	static const uint8_t id[16];
	for (long r = 0; r < rounds; r++) {
		for (int k = 0; k < 2; k++) {
			int mode = (int)((r + k) % 2); /* alternate which goes first */
			struct clean_stats st = { 0 };
			double s = now_ms();
			int rc;
			if (mode == 0) {
				rc = clean_plan_partition(m, tid, 0, &c, wall, &st);
				read[0] = st.plan_batches;
				if (!rc && (st.due || !st.bounded))
					fprintf(stderr, "plan_bench: the bounds did not skip the rows\n");
			} else {
				struct clean_pass *p = NULL;
				rc = clean_pass_begin(m, NULL, tid, 0, id, &c, wall, false, 1 << 20, NULL,
						      &st, &p);
				clean_pass_free(p);
				read[1] = st.plan_batches;
				if (!rc && st.due)
					fprintf(stderr, "plan_bench: due\n");
			}
			double e = now_ms() - s;
			if (rc) {
				fprintf(stderr, "plan_bench: planning failed: %d\n", rc);
				return 1;
			}
			sum[mode] += e;
			lo[mode] = e < lo[mode] ? e : lo[mode];
			hi[mode] = e > hi[mode] ? e : hi[mode];
		}
	}
	static const char *names[2] = { "bounds", "all-rows" };
	for (int k = 0; k < 2; k++) {
		printf("%-8s %ld rows: %.2f ms per check (min %.2f, max %.2f), %" PRIu64
		       " batch rows read\n",
		       names[k], rows, sum[k] / (double)rounds, lo[k], hi[k], read[k]);
		printf("plan:%ld,%s,%.3f,%.3f,%.3f,%" PRIu64 "\n", rows, names[k],
		       sum[k] / (double)rounds, lo[k], hi[k], read[k]);
	}
	meta_close(m);
	if (path[0]) {
		char f[128];
		const char *sfx[] = { "", "-wal", "-shm" };
		for (int i = 0; i < 3; i++) {
			snprintf(f, sizeof f, "%s%s", path, sfx[i]);
			unlink(f);
		}
		rmdir(dir);
	}
	return 0;
}
