/* meta_bench.c — the metadata store's fsync-bound commit rates, measured
 * (never asserted) on a fresh SQLite store in a temp dir, or on the
 * PostgreSQL database a postgresql:// argument names (an empty one):
 *
 *   commit_object    1-batch objects per second (synchronous=FULL) and
 *                    the p50/p99 of one commit: the durable cost of the
 *                    write path's commit
 *   offset_commit    one-row consumer offset commits per second
 *
 * With --agents N[,N...] URL [--seconds S] [--shared] it runs the
 * capacity model instead: for each N, N threads, each with a store of its
 * own (meta_open: its own connections, as N agents would have), commit
 * 1-batch objects through meta_commit_objects for S seconds (default 3);
 * each thread to a partition of its own of a fresh N-partition topic, or
 * with --shared all to partition 0 of one topic. Prints commits/s summed
 * over the threads and the p50/p99/max of one commit, and a line
 * "agents:N,mode,commits,secs,commits_s,p50_ms,p99_ms,max_ms,errors"
 * for bench/cluster.py.
 *
 * These lived in the unit tests as printed figures; unit tests assert
 * behaviour, so the timing loops are here. Usage in bench/README.md. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>

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
	int rc = meta_topic_create(m, "rate", 1, NULL, 0, NULL, &t);
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

/* ---- the capacity model: N concurrent committers ---- */
#define CONC_MAX 64
#define CONC_SAMPLES 200000

struct conc_thread {
	struct meta *m;
	pthread_t th;
	int64_t tid;
	int32_t partition;
	int idx;
	int64_t deadline_us;
	int64_t *took_us;
	int n, errors;
};

static pthread_barrier_t conc_barrier;
static int64_t conc_t0;

static void *conc_run(void *arg)
{
	struct conc_thread *c = arg;
	pthread_barrier_wait(&conc_barrier);
	int64_t now = clock_mono_us();
	while (now < c->deadline_us && c->n < CONC_SAMPLES) {
		char key[80];
		struct meta_commit_batch b;
		memset(&b, 0, sizeof b);
		b.tid = c->tid;
		b.partition = c->partition;
		b.length = 1000;
		b.record_count = 10;
		b.last_offset_delta = 9;
		b.max_timestamp = c->n;
		b.producer_id = -1;
		b.producer_epoch = -1;
		b.base_sequence = -1;
		b.last_sequence = -1;
		snprintf(key, sizeof key, "conc-%" PRId64 "-%02d-%07d", conc_t0, c->idx, c->n);
		struct meta_commit_obj o = { key, 1100, &b, 1 };
		int64_t t0 = clock_mono_us();
		int rc = meta_commit_objects(c->m, &o, 1);
		now = clock_mono_us();
		if (rc) {
			c->errors++;
			continue;
		}
		c->took_us[c->n++] = now - t0;
	}
	return NULL;
}

static int bench_concurrent(const char *url, int agents, double seconds, int shared)
{
	struct conc_thread th[CONC_MAX];
	struct meta_topic t;
	char name[64];
	int rc = 0, opened = 0;
	if (agents < 1 || agents > CONC_MAX)
		return fail("--agents (1..64)", agents);
	memset(th, 0, sizeof th);
	for (; opened < agents; opened++) {
		rc = meta_open(url, &th[opened].m);
		if (rc) {
			fail("meta_open", rc);
			goto out;
		}
	}
	conc_t0 = clock_mono_us();
	snprintf(name, sizeof name, "conc-%d-%s-%" PRId64, agents, shared ? "shared" : "own",
		 conc_t0);
	rc = meta_topic_create(th[0].m, name, shared ? 1 : agents, NULL, 0, NULL, &t);
	if (rc) {
		fail("meta_topic_create", rc);
		goto out;
	}
	int64_t tid = t.tid;
	meta_topic_free(&t);
	pthread_barrier_init(&conc_barrier, NULL, (unsigned)agents + 1);
	int64_t start = 0;
	for (int i = 0; i < agents; i++) {
		th[i].tid = tid;
		th[i].partition = shared ? 0 : i;
		th[i].idx = i;
		th[i].took_us = malloc(sizeof(int64_t) * CONC_SAMPLES);
		if (!th[i].took_us) {
			fprintf(stderr, "meta_bench: out of memory\n");
			exit(1);
		}
	}
	start = clock_mono_us() + 100000;
	for (int i = 0; i < agents; i++) {
		th[i].deadline_us = start + (int64_t)(seconds * 1e6);
		if (pthread_create(&th[i].th, NULL, conc_run, &th[i]) != 0) {
			fprintf(stderr, "meta_bench: pthread_create failed\n");
			exit(1);
		}
	}
	pthread_barrier_wait(&conc_barrier);
	start = clock_mono_us();
	for (int i = 0; i < agents; i++)
		pthread_join(th[i].th, NULL);
	double secs = (double)(clock_mono_us() - start) / 1e6;
	pthread_barrier_destroy(&conc_barrier);
	size_t total = 0;
	int errors = 0;
	for (int i = 0; i < agents; i++) {
		total += (size_t)th[i].n;
		errors += th[i].errors;
	}
	int64_t *all = malloc(sizeof(int64_t) * (total ? total : 1));
	if (!all) {
		fprintf(stderr, "meta_bench: out of memory\n");
		exit(1);
	}
	size_t k = 0;
	for (int i = 0; i < agents; i++) {
		memcpy(all + k, th[i].took_us, sizeof(int64_t) * (size_t)th[i].n);
		k += (size_t)th[i].n;
		free(th[i].took_us);
	}
	qsort(all, total, sizeof *all, cmp_i64);
	double p50 = total ? all[total / 2] / 1e3 : 0, p99 = total ? all[total * 99 / 100] / 1e3 : 0;
	double mx = total ? all[total - 1] / 1e3 : 0;
	printf("commit_objects %2d committers (%s partitions), %s: %zu commits in %.2f s = "
	       "%.0f/s (p50 %.2f ms, p99 %.2f ms, max %.2f ms, %d errors)\n", agents,
	       shared ? "one shared" : "own", th[0].m->m->name, total, secs, total / secs, p50, p99,
	       mx, errors);
	printf("agents:%d,%s,%zu,%.3f,%.1f,%.3f,%.3f,%.3f,%d\n", agents, shared ? "shared" : "own",
	       total, secs, total / secs, p50, p99, mx, errors);
	free(all);
	rc = 0;
out:
	for (int i = 0; i < opened; i++)
		meta_close(th[i].m);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	/* The store goes where the broker's would: pass a directory on the
	 * device to measure (default: a fresh dir under /tmp). */
	char dir[512], url[1200], cmd[600];
	struct meta *m = NULL;
	int rc;
	const char *agents = NULL, *target = NULL;
	double seconds = 3;
	int shared = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--agents") && i + 1 < argc)
			agents = argv[++i];
		else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--shared"))
			shared = 1;
		else
			target = argv[i];
	}
	if (agents) {
		if (!target) {
			fprintf(stderr, "usage: meta_bench --agents N[,N...] [--seconds S] [--shared] URL\n");
			return 2;
		}
		for (const char *p = agents; *p;) {
			rc = bench_concurrent(target, atoi(p), seconds, shared);
			if (rc)
				return 1;
			p = strchr(p, ',');
			if (!p)
				break;
			p++;
		}
		return 0;
	}
	if (target && (!strncmp(target, "postgresql://", 13) || !strncmp(target, "postgres://", 11))) {
		rc = meta_open(target, &m);
		if (rc)
			return fail("meta_open", rc);
		rc = bench_commit_object(m, 1.0, 2000) || bench_offset_commit(m, 200);
		meta_close(m);
		return rc ? 1 : 0;
	}
	snprintf(dir, sizeof dir, "%s/sluice-meta-bench-XXXXXX", target ? target : "/tmp");
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
