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
 * With --produce-objects N [--partitions P] [--batches B] [DIR] it
 * commits N objects shaped like the produce load's (issue 17): each of
 * B adjacent plain batches in each of P partitions (defaults 8 and 1),
 * one object per transaction through meta_commit_objects, on a fresh
 * SQLite store under DIR (use a tmpfs dir for the CPU, not the device).
 * Prints the committing thread's CPU per object (user + system,
 * CLOCK_THREAD_CPUTIME_ID: SQLite's statements, its WAL writes and
 * fdatasync, all on that thread) and the wall time per object, and
 * "produce_objects:N,P,B,cpu_us_per_object,wall_us_per_object".
 *
 * With --poll N URL [--seconds S] it measures the cluster agents'
 * catalog poll (meta_catalog_read, issue 12) on a fresh N-partition
 * topic while one committer appends 1-batch objects to random partitions
 * at 50/s: for S seconds (default 5) each, a poll every 100 ms that
 * reads every partition (parts_since -1: what every poll read before
 * partitions.change_seq), then polls that read from the previous poll's
 * mark. Per mode: polls, partition rows returned per poll, ms per poll
 * (mean, p50, max), rows PostgreSQL read from the partitions table per
 * poll (pg_stat_user_tables: seq_tup_read + idx_tup_fetch, the
 * committer's own reads subtracted as measured in a phase without polls)
 * and the server's CPU ms per poll (utime + stime of every process of the
 * server's postmaster, from /proc, less the same committer-only phase).
 * Prints "poll:mode,polls,rows_per_poll,mean_ms,p50_ms,max_ms,
 * tup_read_per_poll,pg_cpu_ms_per_poll".
 *
 * These lived in the unit tests as printed figures; unit tests assert
 * behaviour, so the timing loops are here. Usage in bench/README.md. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>

#include <dirent.h>
#include <libpq-fe.h>

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

static int64_t thread_cpu_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* --produce-objects: the produce path's commit, one object per
 * transaction, as the writer makes them under a steady load. */
static int bench_produce_objects(struct meta *m, int objects, int partitions, int batches)
{
	struct meta_topic t;
	if (partitions < 1 || batches < 1 || objects < 1)
		return fail("--produce-objects/--partitions/--batches (>= 1)", 0);
	int rc = meta_topic_create(m, "produce", partitions, NULL, 0, NULL, &t);
	if (rc)
		return fail("meta_topic_create", rc);
	int64_t tid = t.tid;
	meta_topic_free(&t);
	size_t n = (size_t)partitions * (size_t)batches;
	struct meta_commit_batch *b = calloc(n, sizeof *b);
	if (!b)
		return fail("calloc", 0);
	int64_t nonce = clock_mono_us(), cpu0 = thread_cpu_us(), wall0 = clock_mono_us();
	for (int i = 0; i < objects && !rc; i++) {
		char key[80];
		uint64_t off = 16;
		for (size_t k = 0; k < n; k++) {
			b[k] = (struct meta_commit_batch){
				.tid = tid, .partition = (int32_t)(k / (size_t)batches),
				.byte_offset = off, .length = 196000, .record_count = 180,
				.last_offset_delta = 179, .max_timestamp = clock_wall_ms(),
				.producer_id = -1, .producer_epoch = -1, .base_sequence = -1,
				.last_sequence = -1 };
			off += b[k].length;
		}
		snprintf(key, sizeof key, "objects/%013" PRId64 "-%016" PRIx64 "-%08x.obj",
			 clock_wall_ms(), (uint64_t)nonce, i + 1);
		struct meta_commit_obj o = { key, off + 64, b, n };
		rc = meta_commit_objects(m, &o, 1);
		if (rc)
			fail("meta_commit_objects", rc);
	}
	double cpu = (double)(thread_cpu_us() - cpu0) / objects;
	double wall = (double)(clock_mono_us() - wall0) / objects;
	free(b);
	if (rc)
		return 1;
	printf("produce_objects %d objects of %d partition(s) x %d batch(es): %.1f us CPU and "
	       "%.1f us wall per object\n", objects, partitions, batches, cpu, wall);
	printf("produce_objects:%d,%d,%d,%.1f,%.1f\n", objects, partitions, batches, cpu, wall);
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

/* ---- the catalog poll ---- */
struct poll_committer {
	struct meta *m;
	int64_t tid;
	int32_t partitions;
	volatile int stop;
	int n, errors;
};

static void *poll_commit_run(void *arg)
{
	struct poll_committer *c = arg;
	uint64_t x = 88172645463325252ull;
	while (!c->stop) {
		char key[80];
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		struct meta_commit_batch b;
		memset(&b, 0, sizeof b);
		b.tid = c->tid;
		b.partition = (int32_t)(x % (uint64_t)c->partitions);
		b.length = 1000;
		b.record_count = 1;
		b.producer_id = -1;
		b.producer_epoch = -1;
		b.base_sequence = -1;
		b.last_sequence = -1;
		snprintf(key, sizeof key, "poll-%" PRId64 "-%07d", c->tid, c->n);
		if (meta_commit_object(c->m, key, 1100, &b, 1))
			c->errors++;
		c->n++;
		usleep(20 * 1000); /* 50 commits/s */
	}
	return NULL;
}

/* CPU ms (utime + stime) of the server's processes: every process whose
 * parent is the postmaster (pid), and itself. */
static double pg_cpu_ms(long postmaster)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	double ticks = 0;
	while (d && (e = readdir(d))) {
		char path[300], buf[1024];
		snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t len = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[len] = 0;
		char *rp = strrchr(buf, ')');
		long ppid = 0;
		unsigned long ut = 0, st = 0;
		if (!rp || sscanf(rp + 2, "%*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ppid,
				  &ut, &st) != 3)
			continue;
		if (ppid == postmaster || atol(e->d_name) == postmaster)
			ticks += (double)(ut + st);
	}
	if (d)
		closedir(d);
	return ticks * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static int64_t pg_value(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	int64_t v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
		? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : -1;
	PQclear(r);
	return v;
}

/* Rows the server read from partitions so far (an idle backend reports
 * its statistics up to 10 s late: the caller waits before reading). */
static int64_t pg_tup_read(PGconn *c)
{
	PQclear(PQexec(c, "SELECT pg_stat_clear_snapshot()"));
	return pg_value(c, "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)"
			   " FROM pg_stat_user_tables WHERE relname = 'partitions'");
}

struct poll_phase {
	const char *mode;
	int polls;
	double rows, mean_ms, p50_ms, max_ms, tup_read, cpu_ms;
};

/* polls < 0: no polls, the committer alone (the baseline). */
static int poll_phase(struct meta *m, PGconn *pc, long postmaster, double seconds, int polls,
		      bool incremental, struct poll_phase *out)
{
	static int64_t took[10000];
	int64_t since = -1, rows = 0;
	int n = 0;
	if (incremental) { /* an agent's first poll reads every row: the steady state follows */
		struct meta_catalog cat;
		int rc = meta_catalog_read(m, -2, -1, &cat);
		if (rc)
			return fail("meta_catalog_read", rc);
		since = cat.parts_next;
		meta_catalog_free(&cat);
	}
	usleep(1200 * 1000);
	int64_t tup0 = pg_tup_read(pc);
	double cpu0 = pg_cpu_ms(postmaster);
	int64_t end = clock_mono_us() + (int64_t)(seconds * 1e6);
	while (clock_mono_us() < end) {
		if (polls >= 0 && n < 10000) {
			struct meta_catalog cat;
			int64_t t0 = clock_mono_us();
			int rc = meta_catalog_read(m, -2, incremental ? since : -1, &cat);
			took[n] = clock_mono_us() - t0;
			if (rc)
				return fail("meta_catalog_read", rc);
			rows += (int64_t)cat.part_count;
			since = cat.parts_next;
			meta_catalog_free(&cat);
			n++;
		}
		usleep(100 * 1000);
	}
	double cpu = pg_cpu_ms(postmaster) - cpu0;
	/* An idle backend flushes its statistics up to 10 s late. */
	usleep(11 * 1000 * 1000);
	int64_t tup = pg_tup_read(pc) - tup0;
	qsort(took, (size_t)n, sizeof *took, cmp_i64);
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += (double)took[i];
	out->polls = n;
	out->rows = n ? (double)rows / n : 0;
	out->mean_ms = n ? sum / n / 1e3 : 0;
	out->p50_ms = n ? took[n / 2] / 1e3 : 0;
	out->max_ms = n ? took[n - 1] / 1e3 : 0;
	out->tup_read = (double)tup;
	out->cpu_ms = cpu;
	return 0;
}

static int bench_poll(const char *url, int32_t partitions, double seconds)
{
	struct meta *m, *cm;
	PGconn *pc = PQconnectdb(url);
	if (PQstatus(pc) != CONNECTION_OK) {
		fprintf(stderr, "meta_bench: %s", PQerrorMessage(pc));
		PQfinish(pc);
		return 1;
	}
	PGresult *r = PQexec(pc, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'");
	long checkpointer = PQntuples(r) == 1 ? atol(PQgetvalue(r, 0, 0)) : 0;
	PQclear(r);
	long postmaster = 0;
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%ld/stat", checkpointer);
	FILE *f = fopen(path, "r");
	if (f) {
		size_t len = fread(buf, 1, sizeof buf - 1, f);
		buf[len] = 0;
		fclose(f);
		char *rp = strrchr(buf, ')');
		if (rp)
			sscanf(rp + 2, "%*c %ld", &postmaster);
	}
	if (!postmaster)
		fprintf(stderr, "meta_bench: the server's processes are not readable here; CPU is 0\n");
	int rc = meta_open(url, &m);
	if (!rc)
		rc = meta_open(url, &cm);
	if (rc)
		return fail("meta_open", rc);
	struct meta_topic t;
	char name[64];
	snprintf(name, sizeof name, "poll-%" PRId64, clock_mono_us());
	rc = meta_topic_create(m, name, partitions, NULL, 0, NULL, &t);
	if (rc)
		return fail("meta_topic_create", rc);
	struct poll_committer c = { .m = cm, .tid = t.tid, .partitions = partitions };
	meta_topic_free(&t);
	pthread_t th;
	pthread_create(&th, NULL, poll_commit_run, &c);
	struct poll_phase base = { "commits only" }, ph[2] = { { "every row" }, { "changed rows" } };
	rc = poll_phase(m, pc, postmaster, seconds, -1, false, &base);
	for (int i = 0; !rc && i < 2; i++)
		rc = poll_phase(m, pc, postmaster, seconds, 0, i == 1, &ph[i]);
	c.stop = 1;
	pthread_join(th, NULL);
	printf("catalog poll, %d partitions, %d commits at 50/s to random partitions (%d errors);"
	       " baseline without polls: %.0f rows read, %.0f ms server CPU in %.0f s\n",
	       partitions, c.n, c.errors, base.tup_read, base.cpu_ms, seconds);
	for (int i = 0; !rc && i < 2; i++) {
		struct poll_phase *p = &ph[i];
		double tup = p->polls ? (p->tup_read - base.tup_read) / p->polls : 0;
		double cpu = p->polls ? (p->cpu_ms - base.cpu_ms) / p->polls : 0;
		printf("  %-13s %4d polls: %8.1f rows returned, %8.1f rows read, %7.3f ms (p50 %.3f, "
		       "max %.3f), server CPU %.3f ms per poll\n", p->mode, p->polls, p->rows, tup,
		       p->mean_ms, p->p50_ms, p->max_ms, cpu);
		printf("poll:%s,%d,%.1f,%.3f,%.3f,%.3f,%.1f,%.3f\n", i ? "changed" : "every", p->polls,
		       p->rows, p->mean_ms, p->p50_ms, p->max_ms, tup, cpu);
	}
	meta_close(cm);
	meta_close(m);
	PQfinish(pc);
	return rc;
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
	int shared = 0, poll = 0, produce_objects = 0, partitions = 8, batches = 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--poll") && i + 1 < argc)
			poll = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--produce-objects") && i + 1 < argc)
			produce_objects = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--partitions") && i + 1 < argc)
			partitions = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--batches") && i + 1 < argc)
			batches = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--agents") && i + 1 < argc)
			agents = argv[++i];
		else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--shared"))
			shared = 1;
		else
			target = argv[i];
	}
	if (poll > 0) {
		if (!target) {
			fprintf(stderr, "usage: meta_bench --poll PARTITIONS [--seconds S] URL\n");
			return 2;
		}
		return bench_poll(target, poll, seconds == 3 ? 5 : seconds);
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
	if (produce_objects)
		rc = bench_produce_objects(m, produce_objects, partitions, batches);
	else
		rc = bench_commit_object(m, 1.0, 2000) || bench_offset_commit(m, 200);
	meta_close(m);
out_rm:
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "meta_bench: could not remove %s\n", dir);
	return rc ? 1 : 0;
}
