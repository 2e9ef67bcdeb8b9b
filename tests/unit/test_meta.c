/* test_meta.c — the metadata store, against SQLite and (when a server is
 * given: meta_backends.h) PostgreSQL: URL dispatch, topics
 * with configs, partitions, dense offsets from commit_object across
 * objects, partitions and a reopen, batches_from, timestamp lookups, log
 * start offsets, commits racing a topic delete, live bytes, the gc fence
 * and meta_open_existing, a commit thread racing reads, the registry,
 * a heartbeat's and a lease sync's reconnect within their bound
 * (PostgreSQL) and change notifications (LISTEN/NOTIFY on PostgreSQL).
 * (The commit rate is measured by bench/meta_bench, not here.) */
#define _GNU_SOURCE /* nftw, in meta_backends.h */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "meta_backends.h"

#include "base/clock.h"
#include "base/err.h"
#include "meta/meta.h"
#include "storage/merge.h"

static struct meta *open_store(void)
{
	struct meta *m = NULL;
	assert_int_equal(meta_open(tb_url, &m), 0);
	assert_non_null(m);
	assert_string_equal(m->m->name, tb_name());
	return m;
}

static int64_t create_topic(struct meta *m, const char *name, int32_t partitions)
{
	struct meta_topic t;
	assert_int_equal(meta_topic_create(m, name, partitions, NULL, 0, NULL, &t), 0);
	int64_t tid = t.tid;
	meta_topic_free(&t);
	return tid;
}

/* Delete a topic and purge its rows, as the agent does (the purge on its
 * maintenance queue right after). */
static void delete_topic(struct meta *m, const char *name)
{
	assert_int_equal(meta_topic_delete(m, name), 0);
	for (bool more = true; more;)
		assert_int_equal(meta_purge_deleted(m, &more), 0);
}

static struct meta_commit_batch mk_batch(int64_t tid, int32_t p, int32_t delta,
					 uint64_t byte_offset, uint32_t length, int64_t ts)
{
	struct meta_commit_batch b;
	memset(&b, 0, sizeof b);
	b.tid = tid;
	b.partition = p;
	b.byte_offset = byte_offset;
	b.length = length;
	b.record_count = delta + 1;
	b.last_offset_delta = delta;
	b.max_timestamp = ts;
	b.producer_id = -1;
	b.producer_epoch = -1;
	b.base_sequence = -1;
	b.last_sequence = -1;
	b.base_offset = 12345; /* must be overwritten */
	return b;
}

static int64_t hwm(struct meta *m, int64_t tid, int32_t p)
{
	struct meta_partition mp;
	assert_int_equal(meta_partition_get(m, tid, p, &mp), 0);
	assert_int_equal(mp.tid, tid);
	assert_int_equal(mp.partition, p);
	return mp.high_watermark;
}

static void check_clean_bytes(struct meta *m, int64_t tid, int32_t p, int64_t log_start,
			      int64_t first_dirty, int64_t want_clean, int64_t want_dirty)
{
	int64_t clean = -1, dirty = -1;
	assert_int_equal(meta_clean_bytes(m, tid, p, log_start, first_dirty, &clean, &dirty), 0);
	assert_int_equal(clean, want_clean);
	assert_int_equal(dirty, want_dirty);
}

/* The cleaner's planning bounds (meta_clean_bytes): bytes of the rows
 * wholly in [log start, first dirty), and of those reaching it or past. */
static void test_clean_bytes(void **state)
{
	(void)state;
	struct meta *m = open_store();
	int64_t tid = create_topic(m, "bytes", 2);
	struct meta_commit_batch a[] = { mk_batch(tid, 0, 4, 16, 100, 1) };
	struct meta_commit_batch b[] = { mk_batch(tid, 0, 4, 16, 50, 2) };
	struct meta_commit_batch c[] = { mk_batch(tid, 0, 4, 16, 80, 3) };
	struct meta_commit_batch d[] = { mk_batch(tid, 0, 4, 16, 60, 4) };
	assert_int_equal(meta_commit_object(m, "o/a", 200, a, 1), 0); /* 0-4 */
	assert_int_equal(meta_commit_object(m, "o/b", 200, b, 1), 0); /* 5-9 */
	assert_int_equal(meta_commit_object(m, "o/c", 200, c, 1), 0); /* 10-14 */
	assert_int_equal(meta_commit_object(m, "o/d", 200, d, 1), 0); /* 15-19 */
	check_clean_bytes(m, tid, 0, 0, 10, 150, 140);
	/* A row reaching the first dirty offset counts dirty. */
	check_clean_bytes(m, tid, 0, 0, 7, 100, 190);
	/* A row reaching below the log start counts in neither. */
	check_clean_bytes(m, tid, 0, 3, 15, 130, 60);
	check_clean_bytes(m, tid, 0, 5, 100, 190, 0);
	/* Empty: nothing either side. */
	check_clean_bytes(m, tid, 1, 0, 0, 0, 0);
	meta_close(m);
}

/* The batch rows an object's batches are stored in (past the store). */
static int64_t rows_of_object(const char *key)
{
	return tb_query_i64("SELECT count(*) FROM batches AS b JOIN objects AS o ON o.oid = b.oid"
			    " WHERE o.key = $1", key);
}

/* Reads objects.live_bytes past the store (a connection of its own). */
static int64_t live_bytes(const char *key)
{
	int64_t v = tb_query_i64("SELECT live_bytes FROM objects WHERE key = $1", key);
	assert_int_not_equal(v, -1);
	return v;
}

/* PostgreSQL: a URL libpq cannot parse, a wrong password, a database
 * that does not exist and a port nothing listens on each fail the open
 * (EINVAL for the first, EMETA for the others). */
static void pg_open_urls(void)
{
	struct meta *m = (struct meta *)1;
	char bad[1400];
	snprintf(bad, sizeof bad, "%s?no_such_option=1", tb_url);
	assert_int_equal(meta_open(bad, &m), SL_EINVAL);
	assert_null(m);
	char *at = strchr(tb_pg_base + strlen("postgresql://"), '@');
	assert_non_null(at);
	snprintf(bad, sizeof bad, "postgresql://postgres:wrong%s%s", at, tb_dbname);
	assert_int_equal(meta_open(bad, &m), SL_EMETA);
	assert_null(m);
	snprintf(bad, sizeof bad, "%ssluice_no_such_db", tb_pg_base);
	assert_int_equal(meta_open(bad, &m), SL_EMETA);
	snprintf(bad, sizeof bad, "postgres://postgres@127.0.0.1:1/x");
	assert_int_equal(meta_open(bad, &m), SL_EMETA);
	assert_int_equal(meta_open(tb_url, &m), 0);
	assert_string_equal(m->m->name, "postgres");
	meta_close(m);
}

/* What logs show of a store's URL: never its password. */
static void test_url_redact(void **state)
{
	static const char *const cases[][2] = {
		{ "postgresql://u:s3cret@h:5432/db", "postgresql://u:***@h:5432/db" },
		{ "postgres://u@h/db", "postgres://u@h/db" },
		{ "postgresql://h/db?sslmode=require&password=s3cret&x=1",
		  "postgresql://h/db?sslmode=require&password=***&x=1" },
		{ "host=h password=s3cret dbname=d", "host=h password=*** dbname=d" },
		{ "postgresql://u:p:q@h/db", "postgresql://u:***@h/db" },
		{ "postgresql://u:p@h/db?x=a@b", "postgresql://u:***@h/db?x=a@b" },
		{ "sqlite:./data/meta.db", "sqlite:./data/meta.db" },
		{ "", "" },
	};
	char out[128];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		meta_url_redact(cases[i][0], out, sizeof out);
		assert_string_equal(out, cases[i][1]);
	}
	char small[8];
	meta_url_redact("postgresql://u:s3cret@h/db", small, sizeof small);
	assert_string_equal(small, "postgre");
}

static void test_open_urls(void **state)
{
	if (tb == TB_POSTGRES) {
		pg_open_urls();
		return;
	}
	struct meta *m = (struct meta *)1;
	assert_int_equal(meta_open("postgresql://localhost/sluice?no_such_option=1", &m), SL_EINVAL);
	assert_null(m);
	assert_int_equal(meta_open("bogus:x", &m), SL_EINVAL);
	assert_int_equal(meta_open("sqlite:", &m), SL_EINVAL);
	assert_int_equal(meta_open("", &m), SL_EINVAL);
	char bad[600];
	snprintf(bad, sizeof bad, "sqlite:%s/no/such/dir/meta.db", tb_root);
	assert_int_equal(meta_open(bad, &m), SL_EMETA);
	assert_null(m);
	/* sqlite://PATH works like sqlite:PATH. */
	char alt[600];
	snprintf(alt, sizeof alt, "sqlite://%s", tb_db_path);
	assert_int_equal(meta_open(alt, &m), 0);
	meta_close(m);
	meta_close(NULL);
}

static const struct meta_topic *find_topic(const struct meta_topic *t, size_t n,
					   const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i].name, name) == 0)
			return &t[i];
	return NULL;
}

static const char *find_config(const struct meta_topic *t, const char *name)
{
	for (int32_t i = 0; i < t->config_count; i++)
		if (strcmp(t->configs[i].name, name) == 0)
			return t->configs[i].value;
	return NULL;
}

static void test_topics(void **state)
{
	struct meta *m = open_store();
	struct meta_config cfg[2];
	memset(cfg, 0, sizeof cfg);
	strcpy(cfg[0].name, "retention.ms");
	strcpy(cfg[0].value, "60000");
	strcpy(cfg[1].name, "cleanup.policy");
	strcpy(cfg[1].value, "delete");

	struct meta_topic a, b, dup;
	assert_int_equal(meta_topic_create(m, "alpha", 3, cfg, 2, NULL, &a), 0);
	assert_true(a.tid > 0);
	assert_string_equal(a.name, "alpha");
	assert_int_equal(a.partition_count, 3);
	assert_int_equal(a.config_count, 2);
	assert_string_equal(a.configs[0].value, "60000");
	assert_int_equal(a.uuid[6] >> 4, 4);       /* version 4 */
	assert_int_equal(a.uuid[8] & 0xc0, 0x80);  /* variant */
	assert_int_equal(meta_topic_create(m, "beta", 1, NULL, 0, NULL, &b), 0);
	assert_int_not_equal(a.tid, b.tid);
	assert_memory_not_equal(a.uuid, b.uuid, 16);
	assert_int_equal(meta_topic_create(m, "alpha", 5, NULL, 0, NULL, &dup), SL_EEXIST);
	assert_int_equal(meta_topic_create(m, "", 1, NULL, 0, NULL, &dup), SL_EINVAL);
	assert_int_equal(meta_topic_create(m, "zero", 0, NULL, 0, NULL, &dup), SL_EINVAL);

	struct meta_topic *list;
	size_t n;
	assert_int_equal(meta_topic_list(m, &list, &n), 0);
	assert_int_equal(n, 2);
	const struct meta_topic *la = find_topic(list, n, "alpha");
	assert_non_null(la);
	assert_int_equal(la->tid, a.tid);
	assert_memory_equal(la->uuid, a.uuid, 16);
	assert_int_equal(la->partition_count, 3);
	assert_int_equal(la->config_count, 2);
	assert_string_equal(find_config(la, "retention.ms"), "60000");
	assert_string_equal(find_config(la, "cleanup.policy"), "delete");
	assert_int_equal(find_topic(list, n, "beta")->config_count, 0);
	meta_topics_free(list, n);

	/* Configs: set (new), set (replace), delete, delete of an absent one. */
	assert_int_equal(meta_topic_config_set(m, b.tid, "max.message.bytes", "2048"), 0);
	assert_int_equal(meta_topic_config_set(m, a.tid, "retention.ms", "1000"), 0);
	assert_int_equal(meta_topic_config_set(m, a.tid, "cleanup.policy", NULL), 0);
	assert_int_equal(meta_topic_config_set(m, a.tid, "cleanup.policy", NULL), 0);
	assert_int_equal(meta_topic_config_set(m, 9999, "x", "y"), SL_ENOTFOUND);
	assert_int_equal(meta_topic_list(m, &list, &n), 0);
	la = find_topic(list, n, "alpha");
	assert_int_equal(la->config_count, 1);
	assert_string_equal(find_config(la, "retention.ms"), "1000");
	assert_string_equal(find_config(find_topic(list, n, "beta"), "max.message.bytes"), "2048");
	meta_topics_free(list, n);

	/* Partitions: grow, not shrink. */
	struct meta_partition p;
	assert_int_equal(meta_partition_get(m, a.tid, 2, &p), 0);
	assert_int_equal(p.log_start_offset, 0);
	assert_int_equal(p.high_watermark, 0);
	assert_int_equal(meta_partition_get(m, a.tid, 3, &p), SL_ENOTFOUND);
	assert_int_equal(meta_topic_set_partitions(m, a.tid, 5, NULL), 0);
	assert_int_equal(meta_partition_get(m, a.tid, 4, &p), 0);
	assert_int_equal(meta_topic_set_partitions(m, a.tid, 5, NULL), SL_EINVAL);
	assert_int_equal(meta_topic_set_partitions(m, a.tid, 2, NULL), SL_EINVAL);
	assert_int_equal(meta_topic_set_partitions(m, 9999, 2, NULL), SL_ENOTFOUND);
	struct meta_partition *parts;
	assert_int_equal(meta_partition_list(m, &parts, &n), 0);
	assert_int_equal(n, 6);
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(parts[i].tid, a.tid);
		assert_int_equal(parts[i].partition, (int32_t)i);
	}
	assert_int_equal(parts[5].tid, b.tid);
	free(parts);

	/* Delete; a second delete finds nothing; the name can be reused. */
	assert_int_equal(meta_topic_delete(m, "beta"), 0);
	assert_int_equal(meta_topic_delete(m, "beta"), SL_ENOTFOUND);
	assert_int_equal(meta_partition_get(m, b.tid, 0, &p), SL_ENOTFOUND);
	assert_int_equal(meta_topic_list(m, &list, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].name, "alpha");
	assert_int_equal(list[0].partition_count, 5);
	meta_topics_free(list, n);
	assert_int_equal(meta_topic_create(m, "beta", 2, NULL, 0, NULL, &dup), 0);
	assert_int_not_equal(dup.tid, b.tid);
	meta_topic_free(&dup);

	meta_topic_free(&a);
	meta_topic_free(&b);
	meta_close(m);

	/* Everything survives a reopen. */
	m = open_store();
	assert_int_equal(meta_topic_list(m, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(find_config(find_topic(list, n, "alpha"), "retention.ms"), "1000");
	meta_topics_free(list, n);
	meta_close(m);
}

static void check_row(const struct meta_batch_row *r, int64_t base, int64_t last,
		      const char *key, uint64_t byte_offset, uint32_t length)
{
	assert_int_equal(r->base_offset, base);
	assert_int_equal(r->last_offset, last);
	assert_string_equal(r->object_key, key);
	assert_int_equal(r->byte_offset, byte_offset);
	assert_int_equal(r->length, length);
	assert_int_equal(r->record_count, last - base + 1);
}

static void test_commit_offsets(void **state)
{
	struct meta *m = open_store();
	int64_t t1 = create_topic(m, "t1", 2);
	int64_t t2 = create_topic(m, "t2", 1);

	/* Sorted, two batches of t1/0 in one object. */
	struct meta_commit_batch o1[] = {
		mk_batch(t1, 0, 2, 16, 100, 1000),
		mk_batch(t1, 0, 0, 116, 50, 1001),
		mk_batch(t1, 1, 4, 166, 70, 1002),
		mk_batch(t2, 0, 9, 236, 80, 1003),
	};
	assert_int_equal(meta_commit_object(m, "obj-1", 400, o1, 4), 0);
	assert_int_equal(o1[0].base_offset, 0);
	assert_int_equal(o1[1].base_offset, 3);
	assert_int_equal(o1[2].base_offset, 0);
	assert_int_equal(o1[3].base_offset, 0);
	assert_int_equal(hwm(m, t1, 0), 4);
	assert_int_equal(hwm(m, t1, 1), 5);
	assert_int_equal(hwm(m, t2, 0), 10);
	assert_int_equal(live_bytes("obj-1"), 300);

	/* Unsorted: each partition keeps its batches' given order. */
	struct meta_commit_batch o2[] = {
		mk_batch(t2, 0, 0, 16, 10, 2000),
		mk_batch(t1, 0, 1, 26, 20, 2001),
		mk_batch(t2, 0, 1, 46, 30, 2002),
		mk_batch(t1, 0, 0, 76, 40, 2003),
	};
	assert_int_equal(meta_commit_object(m, "obj-2", 200, o2, 4), 0);
	assert_int_equal(o2[0].base_offset, 10);
	assert_int_equal(o2[1].base_offset, 4);
	assert_int_equal(o2[2].base_offset, 11);
	assert_int_equal(o2[3].base_offset, 6);
	assert_int_equal(hwm(m, t1, 0), 7);
	assert_int_equal(hwm(m, t2, 0), 13);

	/* A reused object key fails the whole commit: nothing changes. */
	struct meta_commit_batch dup[] = { mk_batch(t1, 0, 0, 16, 10, 1) };
	assert_int_equal(meta_commit_object(m, "obj-2", 100, dup, 1), SL_EMETA);
	assert_int_equal(dup[0].base_offset, -1);
	assert_int_equal(hwm(m, t1, 0), 7);
	/* The same store commits again at once (PostgreSQL: the commit's
	 * connection got past the failed statement, its pipeline and its
	 * transaction). */
	assert_int_equal(meta_commit_object(m, "obj-after-dup", 40, NULL, 0), 0);
	bool known = false;
	assert_int_equal(meta_object_known(m, "obj-after-dup", &known), 0);
	assert_true(known);

	meta_close(m);

	/* Reopen: state kept, offsets continue densely. */
	m = open_store();
	assert_int_equal(hwm(m, t1, 0), 7);
	assert_int_equal(hwm(m, t1, 1), 5);
	assert_int_equal(hwm(m, t2, 0), 13);
	struct meta_commit_batch o3[] = { mk_batch(t1, 0, 2, 16, 60, 3000) };
	assert_int_equal(meta_commit_object(m, "obj-3", 100, o3, 1), 0);
	assert_int_equal(o3[0].base_offset, 7);
	assert_int_equal(hwm(m, t1, 0), 10);

	/* An object with no batches (all dropped before commit) is fine. */
	assert_int_equal(meta_commit_object(m, "obj-empty", 40, NULL, 0), 0);

	struct meta_batch_row rows[10];
	size_t n;
	assert_int_equal(meta_batches_from(m, t1, 0, 0, 10, rows, &n), 0);
	assert_int_equal(n, 5);
	check_row(&rows[0], 0, 2, "obj-1", 16, 100);
	check_row(&rows[1], 3, 3, "obj-1", 116, 50);
	check_row(&rows[2], 4, 5, "obj-2", 26, 20);
	check_row(&rows[3], 6, 6, "obj-2", 76, 40);
	check_row(&rows[4], 7, 9, "obj-3", 16, 60);
	assert_int_equal(rows[4].max_timestamp, 3000);
	for (size_t i = 1; i < n; i++)
		assert_int_equal(rows[i].base_offset, rows[i - 1].last_offset + 1);

	/* An offset inside a batch returns that batch first. */
	assert_int_equal(meta_batches_from(m, t1, 0, 2, 10, rows, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(rows[0].base_offset, 0);
	assert_int_equal(meta_batches_from(m, t1, 0, 5, 2, rows, &n), 0);
	assert_int_equal(n, 2);
	check_row(&rows[0], 4, 5, "obj-2", 26, 20);
	check_row(&rows[1], 6, 6, "obj-2", 76, 40);
	assert_int_equal(meta_batches_from(m, t1, 0, 10, 10, rows, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(meta_batches_from(m, t1, 0, 0, 0, rows, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(meta_batches_from(m, t2, 0, 0, 10, rows, &n), 0);
	assert_int_equal(n, 3);
	check_row(&rows[0], 0, 9, "obj-1", 236, 80);
	check_row(&rows[1], 10, 10, "obj-2", 16, 10);
	check_row(&rows[2], 11, 12, "obj-2", 46, 30);
	assert_int_equal(meta_batches_from(m, 9999, 0, 0, 10, rows, &n), 0);
	assert_int_equal(n, 0);
	meta_close(m);
}

static void test_timestamps_and_log_start(void **state)
{
	struct meta *m = open_store();
	int64_t t = create_topic(m, "ts", 1);
	int64_t off, ts;
	assert_int_equal(meta_max_timestamp(m, t, 0, &off, &ts), SL_ENOTFOUND);
	assert_int_equal(meta_offset_for_timestamp(m, t, 0, 0, &off, &ts), SL_ENOTFOUND);

	struct meta_commit_batch b[] = {
		mk_batch(t, 0, 1, 16, 10, 100),  /* 0-1 */
		mk_batch(t, 0, 1, 26, 10, 300),  /* 2-3 */
		mk_batch(t, 0, 1, 36, 10, 200),  /* 4-5 */
		mk_batch(t, 0, 1, 46, 10, 300),  /* 6-7 */
		mk_batch(t, 0, 1, 56, 10, 250),  /* 8-9 */
	};
	assert_int_equal(meta_commit_object(m, "ts-1", 100, b, 5), 0);
	/* One row holds the five (adjacent in the object); every lookup
	 * below still answers per batch. */
	assert_int_equal(rows_of_object("ts-1"), 1);

	assert_int_equal(meta_offset_for_timestamp(m, t, 0, 50, &off, &ts), 0);
	assert_int_equal(off, 0);
	assert_int_equal(ts, 100);
	assert_int_equal(meta_offset_for_timestamp(m, t, 0, 150, &off, &ts), 0);
	assert_int_equal(off, 2);
	assert_int_equal(ts, 300);
	assert_int_equal(meta_offset_for_timestamp(m, t, 0, 300, &off, &ts), 0);
	assert_int_equal(off, 2);
	assert_int_equal(meta_offset_for_timestamp(m, t, 0, 301, &off, &ts), SL_ENOTFOUND);
	assert_int_equal(meta_max_timestamp(m, t, 0, &off, &ts), 0);
	assert_int_equal(off, 2); /* the earliest of the two 300s */
	assert_int_equal(ts, 300);

	/* Log start: raised, never lowered, capped at the HWM; batches
	 * wholly below it are out of the timestamp lookups. */
	struct meta_partition p;
	assert_int_equal(meta_partition_set_log_start(m, t, 0, 4), 0);
	assert_int_equal(meta_partition_get(m, t, 0, &p), 0);
	assert_int_equal(p.log_start_offset, 4);
	assert_int_equal(meta_partition_set_log_start(m, t, 0, 1), 0);
	assert_int_equal(meta_partition_get(m, t, 0, &p), 0);
	assert_int_equal(p.log_start_offset, 4);
	assert_int_equal(meta_offset_for_timestamp(m, t, 0, 150, &off, &ts), 0);
	assert_int_equal(off, 4);
	assert_int_equal(ts, 200);
	assert_int_equal(meta_max_timestamp(m, t, 0, &off, &ts), 0);
	assert_int_equal(off, 6);
	/* A log start inside a batch keeps that batch. */
	assert_int_equal(meta_partition_set_log_start(m, t, 0, 7), 0);
	assert_int_equal(meta_max_timestamp(m, t, 0, &off, &ts), 0);
	assert_int_equal(off, 6);
	assert_int_equal(meta_partition_set_log_start(m, t, 0, 1000), 0);
	assert_int_equal(meta_partition_get(m, t, 0, &p), 0);
	assert_int_equal(p.log_start_offset, 10);
	assert_int_equal(p.high_watermark, 10);
	assert_int_equal(meta_max_timestamp(m, t, 0, &off, &ts), SL_ENOTFOUND);
	assert_int_equal(meta_partition_set_log_start(m, t, 5, 1), SL_ENOTFOUND);
	/* batches_from leaves the log start to the caller. */
	struct meta_batch_row rows[8];
	size_t n;
	assert_int_equal(meta_batches_from(m, t, 0, 0, 8, rows, &n), 0);
	assert_int_equal(n, 5);

	/* A row whose largest timestamp went below the log start: the
	 * largest is then a later row's. */
	int64_t t2 = create_topic(m, "ts2", 1);
	struct meta_commit_batch r1[] = { mk_batch(t2, 0, 1, 16, 10, 500), mk_batch(t2, 0, 1, 26, 10, 300) };
	struct meta_commit_batch r2[] = { mk_batch(t2, 0, 1, 16, 10, 400) };
	assert_int_equal(meta_commit_object(m, "ts2-1", 100, r1, 2), 0);
	assert_int_equal(meta_commit_object(m, "ts2-2", 100, r2, 1), 0);
	assert_int_equal(meta_max_timestamp(m, t2, 0, &off, &ts), 0);
	assert_int_equal(off, 0);
	assert_int_equal(ts, 500);
	assert_int_equal(meta_partition_set_log_start(m, t2, 0, 2), 0);
	assert_int_equal(meta_max_timestamp(m, t2, 0, &off, &ts), 0);
	assert_int_equal(off, 4);
	assert_int_equal(ts, 400);
	assert_int_equal(meta_offset_for_timestamp(m, t2, 0, 450, &off, &ts), SL_ENOTFOUND);
	assert_int_equal(meta_offset_for_timestamp(m, t2, 0, 350, &off, &ts), 0);
	assert_int_equal(off, 4);
	assert_int_equal(meta_offset_for_timestamp(m, t2, 0, 0, &off, &ts), 0);
	assert_int_equal(off, 2);
	assert_int_equal(ts, 300);
	meta_close(m);
}

/* Retention and DeleteRecords: the log start moves forward only, past
 * whole expired batches (time first, stopping at the first batch not
 * expired, then size); the rows below it go and their objects' live
 * bytes fall, so an object wholly below it becomes the collector's. */
static void test_partition_trim(void **state)
{
	struct meta *m = open_store();
	int64_t t = create_topic(m, "trim", 2);
	struct meta_commit_batch o1[] = {
		mk_batch(t, 0, 1, 16, 100, 1000),  /* 0-1 */
		mk_batch(t, 0, 1, 116, 100, 3000), /* 2-3 */
		mk_batch(t, 1, 0, 216, 40, 1000),  /* p1: 0 */
	};
	struct meta_commit_batch o2[] = {
		mk_batch(t, 0, 1, 16, 100, 2000),  /* 4-5: older than the one before */
		mk_batch(t, 0, 1, 116, 100, 5000), /* 6-7 */
	};
	assert_int_equal(meta_commit_object(m, "o/1", 300, o1, 3), 0);
	assert_int_equal(meta_commit_object(m, "o/2", 250, o2, 2), 0);
	/* Adjacent batches of a partition share a row: 0-3 and 4-7. */
	assert_int_equal(rows_of_object("o/1"), 2);
	assert_int_equal(rows_of_object("o/2"), 1);
	int64_t start = -1;
	const struct meta_trim none = { -1, -1, -1, -1 };
	assert_int_equal(meta_partition_trim(m, t, 0, &none, &start), 0);
	assert_int_equal(start, 0);

	/* Time: stops at the first batch not expired (2-3), although 4-5
	 * is older than the cutoff: the log start moves per batch, while
	 * the row 0-3 stays until all of it is below the log start (its
	 * bytes still live). */
	struct meta_trim by_time = { -1, 2500, -1, -1 };
	assert_int_equal(meta_partition_trim(m, t, 0, &by_time, &start), 0);
	assert_int_equal(start, 2);
	assert_int_equal(live_bytes("o/1"), 240);
	struct meta_partition p;
	assert_int_equal(meta_partition_get(m, t, 0, &p), 0);
	assert_int_equal(p.log_start_offset, 2);
	struct meta_batch_row rows[8];
	size_t n;
	assert_int_equal(meta_batches_from(m, t, 0, 2, 8, rows, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(rows[0].base_offset, 2);
	assert_int_equal(rows[0].byte_offset, 116);
	assert_int_equal(rows[0].length, 100);
	assert_int_equal(rows[0].max_timestamp, 3000);

	/* Size: 300 bytes live from the log start (the row 0-3's first
	 * batch is not counted); keep at least 150: 2-3 goes (200 left),
	 * 4-5 would leave 100 and stays. */
	struct meta_trim by_size = { -1, -1, 150, -1 };
	assert_int_equal(meta_partition_trim(m, t, 0, &by_size, &start), 0);
	assert_int_equal(start, 4);
	assert_int_equal(live_bytes("o/1"), 40); /* partition 1's batch */
	assert_int_equal(live_bytes("o/2"), 200);

	/* DeleteRecords inside a batch keeps the batch; never backwards;
	 * capped at the high watermark. */
	struct meta_trim to5 = { 5, -1, -1, -1 }, to1 = { 1, -1, -1, -1 }, past = { 99, -1, -1, -1 };
	assert_int_equal(meta_partition_trim(m, t, 0, &to5, &start), 0);
	assert_int_equal(start, 5);
	assert_int_equal(live_bytes("o/2"), 200);
	assert_int_equal(meta_partition_trim(m, t, 0, &to1, &start), 0);
	assert_int_equal(start, 5);
	assert_int_equal(meta_partition_trim(m, t, 0, &past, &start), 0);
	assert_int_equal(start, 8);
	assert_int_equal(live_bytes("o/2"), 0);
	assert_int_equal(meta_batches_from(m, t, 0, 0, 8, rows, &n), 0);
	assert_int_equal(n, 0);
	/* New batches land at the high watermark as before. */
	struct meta_commit_batch o3[] = { mk_batch(t, 0, 0, 16, 10, 9000) };
	assert_int_equal(meta_commit_object(m, "o/3", 100, o3, 1), 0);
	assert_int_equal(o3[0].base_offset, 8);
	/* A limit holds the log start back (the agent's high watermark). */
	struct meta_trim capped = { -1, 100000, -1, 8 };
	assert_int_equal(meta_partition_trim(m, t, 0, &capped, &start), 0);
	assert_int_equal(start, 8);
	/* A batch without timestamps (-1) counts from its object's creation:
	 * not expired by a cutoff an hour ago, expired by one in the future. */
	struct meta_commit_batch o4[] = { mk_batch(t, 0, 0, 16, 10, -1) };
	assert_int_equal(meta_commit_object(m, "o/4", 100, o4, 1), 0);
	int64_t now = clock_wall_ms();
	struct meta_trim hour_ago = { 9, now - 3600 * 1000, -1, -1 };
	assert_int_equal(meta_partition_trim(m, t, 0, &hour_ago, &start), 0);
	assert_int_equal(start, 9);
	assert_int_equal(live_bytes("o/4"), 10);
	struct meta_trim later = { -1, now + 60000, -1, -1 };
	assert_int_equal(meta_partition_trim(m, t, 0, &later, &start), 0);
	assert_int_equal(start, 10);
	assert_int_equal(live_bytes("o/4"), 0);
	/* Everything expired: the log start reaches the high watermark. */
	struct meta_trim all = { -1, 10000, -1, -1 };
	assert_int_equal(meta_partition_trim(m, t, 1, &all, &start), 0);
	assert_int_equal(start, 1);
	assert_int_equal(live_bytes("o/1"), 0);
	assert_int_equal(meta_partition_trim(m, t, 7, &all, &start), SL_ENOTFOUND);

	/* Many rows go in several transactions (chunks of 10,000), all of
	 * them, with the object's live bytes in step. */
	int64_t big = create_topic(m, "trim-big", 1);
	enum { ROWS = 25000 };
	struct meta_commit_batch *many = calloc(ROWS, sizeof *many);
	assert_non_null(many);
	for (int i = 0; i < ROWS; i++)
		many[i] = mk_batch(big, 0, 0, 16 + (uint64_t)i * 8, 4, 1000); /* a row each */
	assert_int_equal(meta_commit_object(m, "o/many", 16 + ROWS * 8, many, ROWS), 0);
	free(many);
	struct meta_trim most = { ROWS - 3, -1, -1, -1 };
	assert_int_equal(meta_partition_trim(m, big, 0, &most, &start), 0);
	assert_int_equal(start, ROWS - 3);
	assert_int_equal(live_bytes("o/many"), 3 * 4);
	assert_int_equal(meta_batches_from(m, big, 0, 0, 8, rows, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(rows[0].base_offset, ROWS - 3);

	/* Rows left below the log start (a trim that stopped half-way; here
	 * the log start moved without one) go in the next trim, whatever its
	 * limits. */
	assert_int_equal(meta_partition_set_log_start(m, big, 0, ROWS - 1), 0);
	assert_int_equal(live_bytes("o/many"), 3 * 4);
	assert_int_equal(meta_partition_trim(m, big, 0, &none, &start), 0);
	assert_int_equal(start, ROWS - 1);
	assert_int_equal(live_bytes("o/many"), 4);
	assert_int_equal(meta_batches_from(m, big, 0, 0, 8, rows, &n), 0);
	assert_int_equal(n, 1);
	meta_close(m);
}

static void test_deleted_topic(void **state)
{
	struct meta *m = open_store();
	int64_t gone = create_topic(m, "gone", 2);
	int64_t kept = create_topic(m, "kept", 1);
	struct meta_commit_batch b1[] = {
		mk_batch(gone, 0, 0, 16, 100, 1),
		mk_batch(gone, 1, 0, 116, 200, 1),
		mk_batch(kept, 0, 0, 316, 300, 1),
	};
	assert_int_equal(meta_commit_object(m, "mixed", 700, b1, 3), 0);
	assert_int_equal(live_bytes("mixed"), 600);

	assert_int_equal(meta_topic_delete(m, "gone"), 0);
	/* Gone for every call at once; its rows, and so the live bytes of
	 * their objects, with the purge. */
	assert_int_equal(meta_topic_delete(m, "gone"), SL_ENOTFOUND);
	for (bool more = true; more;)
		assert_int_equal(meta_purge_deleted(m, &more), 0);
	assert_int_equal(live_bytes("mixed"), 300); /* the rest is garbage */
	struct meta_batch_row rows[4];
	size_t n;
	assert_int_equal(meta_batches_from(m, gone, 0, 0, 4, rows, &n), 0);
	assert_int_equal(n, 0);

	/* A commit that raced the delete: its batches get no offset. */
	struct meta_commit_batch b2[] = {
		mk_batch(gone, 0, 3, 16, 100, 1),
		mk_batch(kept, 0, 0, 116, 50, 1),
		mk_batch(gone, 1, 0, 166, 20, 1),
	};
	assert_int_equal(meta_commit_object(m, "late", 300, b2, 3), 0);
	assert_int_equal(b2[0].base_offset, -1);
	assert_int_equal(b2[1].base_offset, 1);
	assert_int_equal(b2[2].base_offset, -1);
	assert_int_equal(live_bytes("late"), 50);
	assert_int_equal(hwm(m, kept, 0), 2);
	/* None of its bytes live: dead once past the grace. */
	struct meta_commit_batch b3[] = { mk_batch(gone, 1, 0, 16, 40, 1) };
	assert_int_equal(meta_commit_object(m, "all-late", 100, b3, 1), 0);
	assert_int_equal(live_bytes("all-late"), 0);
	struct meta_object dead[4];
	assert_int_equal(meta_objects_dead(m, clock_wall_ms() + 60000, 0, 4, dead, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(dead[0].key, "all-late");
	meta_close(m);
}

/* No object is dead for a grace that ends at `before` (taken after they
 * were made, before they lost their live bytes); `count` are for one
 * that ends a minute from now. */
static void assert_dead_since(struct meta *m, int64_t before, size_t count)
{
	struct meta_object dead[8];
	size_t n = 9;
	assert_int_equal(meta_objects_dead(m, before, 0, 8, dead, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(meta_objects_dead(m, clock_wall_ms() + 60000, 0, 8, dead, &n), 0);
	assert_int_equal(n, count);
}

/* An object a trim or a topic deletion leaves without live bytes is dead
 * only once the collector's grace has passed since then, not since it was
 * made (as after a merge): a fetch the batch index still serves from the
 * rows that went finds its object (Kafka's file.delete.delay.ms). */
static void test_trim_restarts_grace(void **state)
{
	(void)state;
	struct meta *m = open_store();
	int64_t t = create_topic(m, "trimmed", 1);
	int64_t d = create_topic(m, "deleted", 1);
	struct meta_commit_batch a[] = { mk_batch(t, 0, 0, 16, 100, 1000) };
	struct meta_commit_batch b[] = { mk_batch(d, 0, 0, 16, 100, 1000) };
	assert_int_equal(meta_commit_object(m, "o/trimmed", 200, a, 1), 0);
	assert_int_equal(meta_commit_object(m, "o/deleted", 200, b, 1), 0);
	usleep(20000);
	int64_t before = clock_wall_ms();
	int64_t start;
	const struct meta_trim all = { 1, -1, -1, -1 };
	assert_int_equal(meta_partition_trim(m, t, 0, &all, &start), 0);
	assert_int_equal(start, 1);
	assert_int_equal(live_bytes("o/trimmed"), 0);
	assert_int_equal(meta_topic_delete(m, "deleted"), 0);
	for (bool more = true; more;)
		assert_int_equal(meta_purge_deleted(m, &more), 0);
	assert_int_equal(live_bytes("o/deleted"), 0);
	/* A grace that had passed since both were made has not passed
	 * since they lost their bytes. */
	assert_dead_since(m, before, 2);
	meta_close(m);
}

/* PostgreSQL: a topic deleted while a merge of one of its partitions
 * is in flight (the merge's statements, by hand on a connection of the
 * test's: the partition locked, a merged object, the rows repointed to
 * it, the merged-from object's bytes subtracted) waits for it and then
 * takes what the merge left: the merged object's bytes, not the
 * merged-from object's a second time (which another topic's row still
 * names: gone below its bytes, gc would collect them). */
static void *delete_gone(void *arg)
{
	return (void *)(intptr_t)meta_topic_delete(arg, "gone");
}

static void test_deleted_topic_during_merge(void **state)
{
	(void)state;
	if (tb != TB_POSTGRES)
		skip();
	struct meta *m = open_store();
	int64_t gone = create_topic(m, "gone", 1);
	int64_t kept = create_topic(m, "kept", 1);
	struct meta_commit_batch b[] = {
		mk_batch(gone, 0, 0, 16, 100, 1),
		mk_batch(kept, 0, 0, 116, 300, 1),
	};
	assert_int_equal(meta_commit_object(m, "mixed", 500, b, 2), 0);
	assert_int_equal(live_bytes("mixed"), 400);
	PGconn *merge = PQconnectdb(tb_url);
	assert_int_equal(PQstatus(merge), CONNECTION_OK);
	char sql[512];
	tb_pg_exec(merge, "BEGIN");
	snprintf(sql, sizeof sql, "SELECT 1 FROM partitions WHERE tid = %" PRId64
		 " AND partition = 0 FOR UPDATE", gone);
	tb_pg_exec(merge, sql);
	tb_pg_exec(merge, "INSERT INTO objects (key, size, live_bytes, state, created_ms)"
			  " VALUES ('merged', 100, 100, 'live', 0)");
	snprintf(sql, sizeof sql, "UPDATE batches SET byte_offset = 0, oid = (SELECT oid FROM"
		 " objects WHERE key = 'merged') WHERE tid = %" PRId64 " AND partition = 0", gone);
	tb_pg_exec(merge, sql);
	tb_pg_exec(merge, "UPDATE objects SET live_bytes = live_bytes - 100 WHERE key = 'mixed'");
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, delete_gone, m), 0);
	/* The deletion waits on a lock the merge holds. */
	int64_t until = clock_mono_us() + 30 * 1000000LL;
	while (tb_query_i64("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
			    " AND wait_event_type = 'Lock'", "sluice") < 1 &&
	       clock_mono_us() < until)
		usleep(10 * 1000);
	tb_pg_exec(merge, "COMMIT");
	PQfinish(merge);
	void *rc;
	pthread_join(t, &rc);
	assert_int_equal((int)(intptr_t)rc, 0);
	assert_int_equal(live_bytes("mixed"), 300); /* kept's row */
	assert_int_equal(live_bytes("merged"), 0);  /* garbage now */
	meta_close(m);
}

/* A topic with more rows than one purge chunk: meta_topic_delete makes it
 * gone at once (no partition, a commit to it gets no offsets); on SQLite
 * its rows stay until meta_purge_deleted, which removes them all, drops
 * the partitions and lowers the objects' live bytes, then finds nothing
 * more. A topic deleted while its rows were being purged (a crash) is
 * the same state, so this is also the restart path. */
static void test_deleted_topic_chunks(void **state)
{
	struct meta *m = open_store();
	int64_t gone = create_topic(m, "big", 2);
	int64_t kept = create_topic(m, "kept", 1);
	enum { N = 2 * 2000 + 7 }; /* META_TRIM_CHUNK_ROWS = 2000 */
	static struct meta_commit_batch b[N + 1];
	for (int i = 0; i < N; i++)
		b[i] = mk_batch(gone, i < N - 3 ? 0 : 1, 0, 16 + (uint64_t)i * 10, 10, 1);
	b[N] = mk_batch(kept, 0, 0, 16 + (uint64_t)N * 10, 5, 1);
	assert_int_equal(meta_commit_object(m, "many", 16 + (N + 1) * 10, b, N + 1), 0);
	assert_int_equal(live_bytes("many"), N * 10 + 5);
	assert_int_equal(meta_topic_delete(m, "big"), 0);

	struct meta_partition mp;
	assert_int_equal(meta_partition_get(m, gone, 0, &mp), SL_ENOTFOUND);
	struct meta_commit_batch late[] = { mk_batch(gone, 0, 0, 16, 10, 1),
					    mk_batch(kept, 0, 0, 26, 5, 1) };
	assert_int_equal(meta_commit_object(m, "late", 100, late, 2), 0);
	assert_int_equal(late[0].base_offset, -1);
	assert_int_equal(late[1].base_offset, 1);

	char tid[32];
	snprintf(tid, sizeof tid, "%" PRId64, gone);
	bool more = false;
	int purges = 0;
	do {
		assert_int_equal(meta_purge_deleted(m, &more), 0);
	} while (more && ++purges < 10);
	assert_false(more);
	assert_int_equal(live_bytes("many"), 5);
	assert_int_equal(tb_query_i64("SELECT count(*) FROM batches WHERE tid = $1", tid), 0);
	assert_int_equal(tb_query_i64("SELECT count(*) FROM partitions WHERE tid = $1", tid), 0);
	assert_int_equal(hwm(m, kept, 0), 2);
	meta_close(m);
}

/* What `sluice gc` relies on: a deleted topic's objects reach live_bytes
 * 0 and are listed as dead after the grace; marking refuses objects with
 * live bytes; forgetting takes only marked rows; lookups by key. */
static void test_gc_objects(void **state)
{
	struct meta *m = open_store();
	int64_t gone = create_topic(m, "gone", 1);
	int64_t kept = create_topic(m, "kept", 1);
	struct meta_commit_batch b1[] = { mk_batch(gone, 0, 0, 16, 100, 1),
					  mk_batch(kept, 0, 0, 116, 50, 1) };
	struct meta_commit_batch b2[] = { mk_batch(gone, 0, 0, 16, 70, 1) };
	struct meta_commit_batch b3[] = { mk_batch(kept, 0, 0, 16, 30, 1) };
	assert_int_equal(meta_commit_object(m, "o/mixed", 200, b1, 2), 0);
	assert_int_equal(meta_commit_object(m, "o/only-gone", 100, b2, 1), 0);
	assert_int_equal(meta_commit_object(m, "o/only-kept", 100, b3, 1), 0);
	int64_t later = clock_wall_ms() + 60000;
	struct meta_object rows[8];
	size_t n = 9;
	assert_int_equal(meta_objects_dead(m, later, 0, 8, rows, &n), 0);
	assert_int_equal(n, 0);

	delete_topic(m, "gone");
	assert_int_equal(live_bytes("o/only-gone"), 0);
	assert_int_equal(live_bytes("o/mixed"), 50);
	/* Not dead within the grace; dead after it. */
	assert_int_equal(meta_objects_dead(m, 0, 0, 8, rows, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(meta_objects_dead(m, later, 0, 8, rows, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].key, "o/only-gone");
	assert_int_equal(rows[0].size, 100);
	assert_int_equal(rows[0].live_bytes, 0);
	assert_false(rows[0].deleting);
	assert_true(rows[0].created_ms > 0 && rows[0].created_ms < later);
	/* Paging past the last oid. */
	assert_int_equal(meta_objects_dead(m, later, rows[0].oid, 8, rows, &n), 0);
	assert_int_equal(n, 0);

	const char *keys[] = { "o/only-gone", "o/mixed", "o/unknown" };
	bool marked[3] = { false, true, true };
	assert_int_equal(meta_objects_mark_deleting(m, keys, 3, marked), 0);
	assert_true(marked[0]);
	assert_false(marked[1]);
	assert_false(marked[2]);
	/* A 'deleting' row is listed whatever the grace (a collector that
	 * stopped half-way is finished by the next). */
	assert_int_equal(meta_objects_dead(m, 0, 0, 8, rows, &n), 0);
	assert_int_equal(n, 1);
	assert_true(rows[0].deleting);

	bool known = false;
	assert_int_equal(meta_object_known(m, "o/only-gone", &known), 0);
	assert_true(known);
	assert_int_equal(meta_object_known(m, "o/unknown", &known), 0);
	assert_false(known);

	size_t forgotten = 9;
	assert_int_equal(meta_objects_forget(m, keys, 3, &forgotten), 0);
	assert_int_equal(forgotten, 1); /* mixed is live: kept */
	assert_int_equal(meta_object_known(m, "o/only-gone", &known), 0);
	assert_false(known);
	assert_int_equal(meta_object_known(m, "o/mixed", &known), 0);
	assert_true(known);
	assert_int_equal(meta_objects_dead(m, later, 0, 8, rows, &n), 0);
	assert_int_equal(n, 0);
	meta_close(m);
}

/* Merge rows from the store's rows, laid out from byte 16 of the merged
 * object in offset order. */
static size_t merge_rows(const struct meta_batch_row *b, size_t n, struct meta_merge_row *out)
{
	uint64_t pos = 16;
	for (size_t i = 0; i < n; i++) {
		out[i] = (struct meta_merge_row){ .base_offset = b[i].base_offset,
						  .last_offset = b[i].last_offset,
						  .byte_offset = b[i].byte_offset,
						  .length = b[i].length,
						  .new_byte_offset = pos };
		snprintf(out[i].object_key, sizeof out[i].object_key, "%s", b[i].object_key);
		pos += b[i].length;
	}
	return (size_t)pos;
}

/* The merge swap (issue 15): rows move to the merged object with their
 * offsets, the old objects lose their bytes, one left empty is dead only
 * after a grace counted from the swap; a stale, trimmed or deleted row
 * refuses the swap whole. */
static void test_merge_swap(void **state)
{
	struct meta *m = open_store();
	int64_t tid = create_topic(m, "merge", 2);
	struct meta_commit_batch a[] = { mk_batch(tid, 0, 4, 16, 100, 1),
					 mk_batch(tid, 1, 0, 116, 50, 1) };
	struct meta_commit_batch b[] = { mk_batch(tid, 0, 4, 16, 80, 2) };
	struct meta_commit_batch c[] = { mk_batch(tid, 0, 4, 16, 60, 3) };
	assert_int_equal(meta_commit_object(m, "o/a", 200, a, 2), 0);
	assert_int_equal(meta_commit_object(m, "o/b", 120, b, 1), 0);
	assert_int_equal(meta_commit_object(m, "o/c", 100, c, 1), 0);
	int64_t made_a = tb_query_i64("SELECT created_ms FROM objects WHERE key = $1", "o/a");
	usleep(20000);
	int64_t before = clock_wall_ms();
	struct meta_batch_row rows[8];
	size_t n = 0;
	assert_int_equal(meta_batches_from(m, tid, 0, 0, 8, rows, &n), 0);
	assert_int_equal(n, 3);
	struct meta_merge_row mr[8];
	size_t size = merge_rows(rows, n, mr) + 40;
	struct meta_merge mg = { tid, 0, "o/merged", size, mr, n };
	struct meta_merge none = { tid, 0, "o/merged", size, mr, 0 };
	assert_int_equal(meta_merge_swap(m, &none), SL_EINVAL);
	assert_int_equal(meta_merge_swap(m, &mg), 0);

	size_t got = 0;
	struct meta_batch_row after[8];
	assert_int_equal(meta_batches_from(m, tid, 0, 0, 8, after, &got), 0);
	assert_int_equal(got, 3);
	for (size_t i = 0; i < got; i++) {
		assert_string_equal(after[i].object_key, "o/merged");
		assert_int_equal(after[i].base_offset, rows[i].base_offset);
		assert_int_equal(after[i].last_offset, rows[i].last_offset);
		assert_int_equal(after[i].length, rows[i].length);
		assert_int_equal(after[i].max_timestamp, rows[i].max_timestamp);
		assert_int_equal(after[i].byte_offset, mr[i].new_byte_offset);
	}
	/* Adjacent in the merged object: one stored row, its batches in
	 * its spans (as a commit would have stored them). */
	assert_int_equal(rows_of_object("o/merged"), 1);
	assert_int_equal(tb_query_i64("SELECT count(*) FROM batches AS b JOIN objects AS o"
				      " ON o.oid = b.oid WHERE o.key = $1 AND b.spans IS NOT NULL",
				      "o/merged"), 1);
	assert_int_equal(hwm(m, tid, 0), 15);
	assert_int_equal(live_bytes("o/merged"), 240);
	assert_int_equal(live_bytes("o/a"), 50); /* partition 1 still lives there */
	assert_int_equal(live_bytes("o/b"), 0);
	assert_int_equal(live_bytes("o/c"), 0);
	/* The merged object is as old as its oldest source (retention of
	 * batches without timestamps counts from it). */
	assert_int_equal(tb_query_i64("SELECT created_ms FROM objects WHERE key = $1", "o/merged"),
			 made_a);
	/* The emptied objects are dead only once the grace has passed since
	 * the swap, not since they were made. */
	assert_dead_since(m, before, 2);

	/* Stale rows (they name o/a..o/c, now in o/merged): refused, nothing
	 * written. */
	struct meta_merge again = { tid, 0, "o/merged-2", size, mr, n };
	bool known = true;
	assert_int_equal(meta_merge_swap(m, &again), SL_ENOTFOUND);
	assert_int_equal(meta_object_known(m, "o/merged-2", &known), 0);
	assert_false(known);

	/* Rows a trim is removing (below the log start): refused. */
	struct meta_commit_batch d[] = { mk_batch(tid, 0, 4, 16, 70, 4) };
	struct meta_commit_batch e[] = { mk_batch(tid, 0, 4, 16, 90, 5) };
	assert_int_equal(meta_commit_object(m, "o/d", 100, d, 1), 0);
	assert_int_equal(meta_commit_object(m, "o/e", 100, e, 1), 0);
	assert_int_equal(meta_batches_from(m, tid, 0, 15, 8, rows, &n), 0);
	assert_int_equal(n, 2);
	size = merge_rows(rows, n, mr) + 40;
	struct meta_merge de = { tid, 0, "o/merged-de", size, mr, n };
	assert_int_equal(meta_partition_set_log_start(m, tid, 0, 20), 0);
	assert_int_equal(meta_merge_swap(m, &de), SL_ENOTFOUND);
	assert_int_equal(live_bytes("o/d"), 70);
	/* Only the rows from the log start on: merged. */
	struct meta_merge e_only = { tid, 0, "o/merged-e", size, mr + 1, 1 };
	assert_int_equal(meta_merge_swap(m, &e_only), 0);
	assert_int_equal(live_bytes("o/e"), 0);
	/* A deleted topic: refused. */
	assert_int_equal(meta_batches_from(m, tid, 1, 0, 8, rows, &n), 0);
	assert_int_equal(n, 1);
	size = merge_rows(rows, n, mr) + 40;
	struct meta_merge p1 = { tid, 1, "o/merged-p1", size, mr, n };
	assert_int_equal(meta_topic_delete(m, "merge"), 0);
	assert_int_equal(meta_merge_swap(m, &p1), SL_ENOTFOUND);
	assert_int_equal(meta_object_known(m, "o/merged-p1", &known), 0);
	assert_false(known);
	meta_close(m);
}

/* Objects whose live bytes are not the bytes of the rows naming them
 * (keys starting "o/"): 0 in a consistent store. */
static int64_t live_bytes_off(void)
{
	return tb_query_i64("SELECT count(*) FROM objects AS o WHERE o.key LIKE $1 AND"
			    " o.live_bytes <> (SELECT coalesce(sum(b.length), 0) FROM batches AS b"
			    " WHERE b.oid = o.oid)", "o/%");
}

/* One merged object's swap in chunks (meta_merge.continues): each chunk
 * is its own transaction and leaves the store consistent (rows name the
 * object, its live bytes are theirs, the old objects lose theirs); a
 * chunk refused (a row moved, the object unknown or emptied by a trim)
 * writes nothing and leaves the chunks before it in place. */
static void test_merge_swap_chunks(void **state)
{
	struct meta *m = open_store();
	int64_t tid = create_topic(m, "chunks", 1);
	char key[8][16];
	for (int i = 0; i < 8; i++) {
		struct meta_commit_batch b[] = { mk_batch(tid, 0, 3, 16, 100 + 10 * (uint32_t)i, i) };
		snprintf(key[i], sizeof key[i], "o/%d", i);
		assert_int_equal(meta_commit_object(m, key[i], 300, b, 1), 0);
	}
	int64_t made_0 = tb_query_i64("SELECT created_ms FROM objects WHERE key = $1", "o/0");
	struct meta_batch_row rows[8];
	size_t n = 0;
	assert_int_equal(meta_batches_from(m, tid, 0, 0, 8, rows, &n), 0);
	assert_int_equal(n, 8);
	struct meta_merge_row mr[8];
	size_t size = merge_rows(rows, 6, mr) + 40;
	/* A later chunk of an object no swap inserted: refused. */
	struct meta_merge orphan = { tid, 0, "o/m", size, mr, 2, .continues = true };
	assert_int_equal(meta_merge_swap(m, &orphan), SL_ENOTFOUND);

	struct meta_merge c0 = { tid, 0, "o/m", size, mr, 2 };
	assert_int_equal(meta_merge_swap(m, &c0), 0);
	assert_int_equal(live_bytes("o/m"), 100 + 110);
	assert_int_equal(tb_query_i64("SELECT created_ms FROM objects WHERE key = $1", "o/m"),
			 made_0);
	assert_int_equal(live_bytes("o/0"), 0);
	assert_int_equal(live_bytes("o/2"), 120);
	assert_int_equal(live_bytes_off(), 0);

	struct meta_merge c1 = { tid, 0, "o/m", size, mr + 2, 2, .continues = true };
	assert_int_equal(meta_merge_swap(m, &c1), 0);
	assert_int_equal(live_bytes("o/m"), 100 + 110 + 120 + 130);
	assert_int_equal(live_bytes("o/3"), 0);
	assert_int_equal(live_bytes_off(), 0);
	/* Adjacent across chunks, still a row per chunk (each joins its own). */
	assert_int_equal(rows_of_object("o/m"), 2);

	/* A row not as the merge read it (a cleaner or another merge moved
	 * it): refused, nothing written; the chunks before stay. */
	struct meta_merge_row stale[2] = { mr[4], mr[5] };
	stale[1].byte_offset += 1;
	struct meta_merge c2_stale = { tid, 0, "o/m", size, stale, 2, .continues = true };
	assert_int_equal(meta_merge_swap(m, &c2_stale), SL_ENOTFOUND);
	assert_int_equal(live_bytes("o/m"), 460);
	assert_int_equal(live_bytes("o/4"), 140);
	assert_int_equal(live_bytes_off(), 0);
	/* Another object's size under the same key: refused. */
	struct meta_merge c2_size = { tid, 0, "o/m", size + 1, mr + 4, 2, .continues = true };
	assert_int_equal(meta_merge_swap(m, &c2_size), SL_ENOTFOUND);
	struct meta_merge c2 = { tid, 0, "o/m", size, mr + 4, 2, .continues = true };
	assert_int_equal(meta_merge_swap(m, &c2), 0);
	assert_int_equal(live_bytes("o/m"), 100 + 110 + 120 + 130 + 140 + 150);
	assert_int_equal(live_bytes_off(), 0);
	size_t got = 0;
	struct meta_batch_row after[8];
	assert_int_equal(meta_batches_from(m, tid, 0, 0, 8, after, &got), 0);
	assert_int_equal(got, 8);
	for (size_t i = 0; i < got; i++) {
		assert_string_equal(after[i].object_key, i < 6 ? "o/m" : key[i]);
		assert_int_equal(after[i].base_offset, rows[i].base_offset);
		assert_int_equal(after[i].last_offset, rows[i].last_offset);
		assert_int_equal(after[i].length, rows[i].length);
		assert_int_equal(after[i].byte_offset, i < 6 ? mr[i].new_byte_offset
							     : rows[i].byte_offset);
	}
	assert_int_equal(hwm(m, tid, 0), 32);
	/* A cleaning pass's swap is never chunked. */
	struct meta_compact_batch cb = { 24, 27, 16, 160, 4, 6, 0 };
	struct meta_merge cp = { tid, 0, "o/m", size, mr, 1, &cb, 1, 0, .continues = true };
	assert_int_equal(meta_compact_swap(m, &cp), SL_EINVAL);

	/* The first chunk's rows trimmed (retention, DeleteRecords) before
	 * the next chunk: the object has no live bytes left (the collector
	 * may delete it), so the next chunk is refused and its rows stay. */
	size = merge_rows(rows + 6, 2, mr) + 40;
	struct meta_merge t0 = { tid, 0, "o/m2", size, mr, 1 };
	assert_int_equal(meta_merge_swap(m, &t0), 0);
	assert_int_equal(live_bytes("o/m2"), 160);
	int64_t start = -1;
	const struct meta_trim to_28 = { 28, -1, -1, -1 };
	assert_int_equal(meta_partition_trim(m, tid, 0, &to_28, &start), 0);
	assert_int_equal(start, 28);
	assert_int_equal(live_bytes("o/m2"), 0);
	struct meta_merge t1 = { tid, 0, "o/m2", size, mr + 1, 1, .continues = true };
	assert_int_equal(meta_merge_swap(m, &t1), SL_ENOTFOUND);
	assert_int_equal(live_bytes("o/7"), 170);
	assert_int_equal(live_bytes("o/m2"), 0);
	assert_int_equal(live_bytes_off(), 0);
	meta_close(m);
}

/* Batches whose stored attributes differ (a control batch between plain
 * ones) stay in rows of their own after a merge, each row keeping its
 * batch's attributes, as a commit stores them (a row's batches share
 * them: the reader tells the transactional bits from the row). */
static void test_merge_keeps_attributes(void **state)
{
	struct meta *m = open_store();
	int64_t tid = create_topic(m, "merge-attr", 1);
	struct meta_commit_batch a[] = { mk_batch(tid, 0, 4, 16, 100, 1) };
	struct meta_commit_batch b[] = { mk_batch(tid, 0, 0, 16, 78, 2) };
	struct meta_commit_batch c[] = { mk_batch(tid, 0, 4, 16, 60, 3) };
	b[0].attributes = META_BATCH_ATTR_CONTROL;
	assert_int_equal(meta_commit_object(m, "o/a", 200, a, 1), 0);
	assert_int_equal(meta_commit_object(m, "o/b", 120, b, 1), 0);
	assert_int_equal(meta_commit_object(m, "o/c", 100, c, 1), 0);
	struct meta_batch_row rows[8];
	size_t n = 0;
	assert_int_equal(meta_batches_from(m, tid, 0, 0, 8, rows, &n), 0);
	assert_int_equal(n, 3);
	struct meta_merge_row mr[8];
	size_t size = merge_rows(rows, n, mr) + 40;
	struct meta_merge mg = { tid, 0, "o/merged", size, mr, n };
	assert_int_equal(meta_merge_swap(m, &mg), 0);
	assert_int_equal(rows_of_object("o/merged"), 3);
	assert_int_equal(tb_query_i64("SELECT count(*) FROM batches AS b JOIN objects AS o"
				      " ON o.oid = b.oid WHERE o.key = $1 AND b.attributes = 32"
				      " AND b.base_offset = 5", "o/merged"), 1);
	assert_int_equal(tb_query_i64("SELECT count(*) FROM batches AS b JOIN objects AS o"
				      " ON o.oid = b.oid WHERE o.key = $1 AND b.attributes = 0",
				      "o/merged"), 2);
	meta_close(m);
}

/* A transaction's batches and marker next to plain ones in one object
 * are rows of their own (a commit splits at the attribute bits):
 * meta_batches_from_many tells each batch's bits, so the merge's join
 * (merge_rows_join) gives back the rows the store holds and a swap of
 * them is taken, where joining across the bits made it refuse. */
static void test_merge_join_attributes(void **state)
{
	struct meta *m = open_store();
	int64_t tid = create_topic(m, "merge-join", 1);
	struct meta_commit_batch a[] = { mk_batch(tid, 0, 1, 16, 50, 1),
					 mk_batch(tid, 0, 1, 66, 50, 2),
					 mk_batch(tid, 0, 1, 116, 50, 3),
					 mk_batch(tid, 0, 0, 166, 78, 4),
					 mk_batch(tid, 0, 1, 244, 50, 5) };
	a[1].attributes = a[2].attributes = META_BATCH_ATTR_TRANSACTIONAL;
	a[3].attributes = META_BATCH_ATTR_TRANSACTIONAL | META_BATCH_ATTR_CONTROL;
	struct meta_commit_batch b[] = { mk_batch(tid, 0, 1, 16, 50, 6) };
	assert_int_equal(meta_commit_object(m, "o/a", 400, a, 5), 0);
	assert_int_equal(meta_commit_object(m, "o/b", 100, b, 1), 0);
	assert_int_equal(rows_of_object("o/a"), 4);
	struct meta_batch_row rows[8];
	struct meta_batch_query q = { .tid = tid, .partition = 0, .offset = 0, .max_rows = 8 };
	assert_int_equal(meta_batches_from_many(m, &q, 1, rows, 8), 0);
	assert_int_equal(q.n, 6);
	static const int16_t want[] = { 0, 16, 16, 48, 0, 0 };
	for (size_t i = 0; i < 6; i++)
		assert_int_equal(rows[i].attributes, want[i]);
	uint32_t counts[8];
	size_t n = merge_rows_join(rows, q.n, counts);
	assert_int_equal(n, 5);
	assert_int_equal(counts[1], 2);
	assert_int_equal(rows[1].last_offset, 5);
	struct meta_merge_row mr[8];
	size_t size = merge_rows(rows, n, mr) + 40;
	struct meta_merge mg = { tid, 0, "o/merged", size, mr, n };
	assert_int_equal(meta_merge_swap(m, &mg), 0);
	assert_int_equal(rows_of_object("o/merged"), 4);
	assert_int_equal(tb_query_i64("SELECT count(*) FROM batches AS b JOIN objects AS o"
				      " ON o.oid = b.oid WHERE o.key = $1 AND b.attributes = 16"
				      " AND b.base_offset = 2 AND b.last_offset = 5", "o/merged"), 1);
	meta_close(m);
}

/* The swap of a cleaning pass (issue 15): the cleaned object's batches
 * replace the rows over the same offsets (an emptied batch keeps its
 * offsets: record count 0), the old objects lose their bytes, the new
 * one counts its own, the checkpoint only rises; stale rows or batches
 * that do not cover the rows refuse it; a store of the version before
 * the checkpoint is upgraded to 0. */
static void test_compact_swap(void **state)
{
	struct meta *m = open_store();
	int64_t tid = create_topic(m, "clean", 1);
	struct meta_commit_batch a[] = { mk_batch(tid, 0, 4, 16, 100, 1) };
	struct meta_commit_batch b[] = { mk_batch(tid, 0, 4, 16, 80, 2) };
	struct meta_commit_batch c[] = { mk_batch(tid, 0, 4, 16, 60, 3) };
	assert_int_equal(meta_commit_object(m, "o/a", 200, a, 1), 0);
	assert_int_equal(meta_commit_object(m, "o/b", 120, b, 1), 0);
	assert_int_equal(meta_commit_object(m, "o/c", 100, c, 1), 0);
	struct meta_partition part;
	assert_int_equal(meta_partition_get(m, tid, 0, &part), 0);
	assert_int_equal(part.clean_offset, 0);
	struct meta_batch_row rows[8];
	size_t n = 0;
	assert_int_equal(meta_batches_from(m, tid, 0, 0, 8, rows, &n), 0);
	assert_int_equal(n, 3);
	struct meta_merge_row mr[8];
	merge_rows(rows, n, mr);
	/* 0-4 rewritten (2 records left), 5-9 emptied, 10-14 untouched. */
	struct meta_compact_batch cb[] = {
		{ 0, 4, 16, 70, 2, 1, 0 },
		{ 5, 9, 86, 61, 0, 2, 0 },
		{ 10, 14, 147, 60, 5, 3, 0 },
	};
	struct meta_merge cp = { tid, 0, "o/clean", 300, mr, n, cb, 3, 10 };
	struct meta_compact_batch gap[] = { cb[0], cb[2] };
	struct meta_merge bad = { tid, 0, "o/clean", 300, mr, n, gap, 2, 10 };
	assert_int_equal(meta_compact_swap(m, &bad), SL_EINVAL);
	struct meta_merge short_ = { tid, 0, "o/clean", 300, mr, n, cb, 2, 10 };
	assert_int_equal(meta_compact_swap(m, &short_), SL_EINVAL);
	struct meta_merge as_merge = { tid, 0, "o/clean", 300, mr, n };
	assert_int_equal(meta_compact_swap(m, &as_merge), SL_EUNSUPPORTED);
	assert_int_equal(meta_merge_swap(m, &cp), SL_EUNSUPPORTED);
	assert_int_equal(meta_compact_swap(m, &cp), 0);

	size_t got = 0;
	struct meta_batch_row after[8];
	assert_int_equal(meta_batches_from(m, tid, 0, 0, 8, after, &got), 0);
	assert_int_equal(got, 3);
	for (size_t i = 0; i < got; i++) {
		assert_string_equal(after[i].object_key, "o/clean");
		assert_int_equal(after[i].base_offset, cb[i].base_offset);
		assert_int_equal(after[i].last_offset, cb[i].last_offset);
		assert_int_equal(after[i].byte_offset, cb[i].byte_offset);
		assert_int_equal(after[i].length, cb[i].length);
		assert_int_equal(after[i].record_count, cb[i].record_count);
		assert_int_equal(after[i].max_timestamp, cb[i].max_timestamp);
	}
	assert_int_equal(rows_of_object("o/clean"), 1);
	/* A fetch from inside the emptied batch starts at it. */
	assert_int_equal(meta_batches_from(m, tid, 0, 7, 8, after, &got), 0);
	assert_int_equal(got, 2);
	assert_int_equal(after[0].base_offset, 5);
	assert_int_equal(hwm(m, tid, 0), 15);
	assert_int_equal(live_bytes("o/clean"), 191);
	assert_int_equal(live_bytes("o/a"), 0);
	assert_int_equal(live_bytes("o/b"), 0);
	assert_int_equal(live_bytes("o/c"), 0);
	assert_int_equal(meta_partition_get(m, tid, 0, &part), 0);
	assert_int_equal(part.clean_offset, 10);
	assert_int_equal(part.high_watermark, 15);

	/* Stale rows: refused, nothing written, the checkpoint as it was. */
	struct meta_merge again = { tid, 0, "o/clean-2", 300, mr, n, cb, 3, 15 };
	bool known = true;
	assert_int_equal(meta_compact_swap(m, &again), SL_ENOTFOUND);
	assert_int_equal(meta_object_known(m, "o/clean-2", &known), 0);
	assert_false(known);
	assert_int_equal(meta_partition_get(m, tid, 0, &part), 0);
	assert_int_equal(part.clean_offset, 10);

	/* A second pass over the cleaned rows: the checkpoint never falls. */
	assert_int_equal(meta_batches_from(m, tid, 0, 0, 8, rows, &n), 0);
	struct meta_merge_row row1;
	row1 = (struct meta_merge_row){ .base_offset = 0, .last_offset = 14, .byte_offset = 16,
				        .length = 191 };
	snprintf(row1.object_key, sizeof row1.object_key, "o/clean");
	struct meta_compact_batch one[] = { { 0, 14, 0, 61, 0, 3, 0 } };
	struct meta_merge lower = { tid, 0, "o/clean-3", 61, &row1, 1, one, 1, 5 };
	assert_int_equal(meta_compact_swap(m, &lower), 0);
	assert_int_equal(meta_partition_get(m, tid, 0, &part), 0);
	assert_int_equal(part.clean_offset, 10);
	assert_int_equal(live_bytes("o/clean"), 0);
	assert_int_equal(live_bytes("o/clean-3"), 61);

	/* Back to the version before the checkpoint: the next open adds it
	 * at 0 and the rows stay. */
	meta_close(m);
	if (tb == TB_POSTGRES) {
		tb_pg_exec(tb_pg, "ALTER TABLE partitions DROP COLUMN clean_offset;"
			   " UPDATE schema_version SET version = 11");
	} else {
		sqlite3 *db;
		assert_int_equal(sqlite3_open(tb_db_path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_exec(db, "ALTER TABLE partitions DROP COLUMN clean_offset;"
					      " PRAGMA user_version = 13", NULL, NULL, NULL),
				 SQLITE_OK);
		sqlite3_close(db);
	}
	m = open_store();
	assert_int_equal(meta_partition_get(m, tid, 0, &part), 0);
	assert_int_equal(part.clean_offset, 0);
	assert_int_equal(part.high_watermark, 15);
	assert_int_equal(meta_batches_from(m, tid, 0, 0, 8, after, &got), 0);
	assert_int_equal(got, 1);
	meta_close(m);
}

static void seal_key(char *key, size_t cap, int64_t seal_ms, unsigned counter)
{
	snprintf(key, cap, "objects/%013lld-00c0ffee12345678-%08x.obj", (long long)seal_ms,
		 counter);
}

/* The collector's fence: a commit of an object sealed before it fails
 * and changes nothing (also inside a group); one sealed at or after it,
 * or with a key of another format, commits; the fence never goes down. */
static void test_gc_fence(void **state)
{
	int64_t ms;
	assert_true(meta_object_key_seal_ms("objects/1700000000123-0123456789abcdef-0000002a.obj",
					    &ms));
	assert_int_equal(ms, 1700000000123LL);
	assert_true(meta_object_key_seal_ms(
		"objects/0000000000001-0123456789abcdef-0123456789abcdef.obj", &ms));
	assert_int_equal(ms, 1);
	assert_false(meta_object_key_seal_ms("objects/orphan.obj", &ms));
	assert_false(meta_object_key_seal_ms("objects/170000000012-0123456789abcdef-0000002a.obj",
					     &ms));
	assert_false(meta_object_key_seal_ms("objects/1700000000123-0123456789ABCDEF-0000002a.obj",
					     &ms));
	assert_false(meta_object_key_seal_ms("objects/1700000000123-0123456789abcdef-002a.obj",
					     &ms));
	assert_false(meta_object_key_seal_ms("objects/1700000000123-0123456789abcdef-0000002a.obj/x",
					     &ms));
	assert_false(meta_object_key_seal_ms("x/1700000000123-0123456789abcdef-0000002a.obj", &ms));

	struct meta *m = open_store();
	int64_t t = create_topic(m, "fenced", 1);
	int64_t fence = 1700000000000LL, got = 0;
	assert_int_equal(meta_gc_fence_raise(m, fence, &got), 0);
	assert_int_equal(got, fence);
	assert_int_equal(meta_gc_fence_raise(m, fence - 5000, &got), 0);
	assert_int_equal(got, fence); /* never lowered */

	char old[128], late[128], fresh[128];
	seal_key(old, sizeof old, fence - 1, 1);
	seal_key(late, sizeof late, fence - 1, 2);
	seal_key(fresh, sizeof fresh, fence, 3);
	struct meta_commit_batch b[] = { mk_batch(t, 0, 2, 16, 10, 1) };
	assert_int_equal(meta_commit_object(m, old, 100, b, 1), SL_EMETA);
	assert_int_equal(b[0].base_offset, -1);
	bool known = true;
	assert_int_equal(meta_object_known(m, old, &known), 0);
	assert_false(known);
	assert_int_equal(hwm(m, t, 0), 0);

	/* A group with one object below the fence commits nothing. */
	struct meta_commit_batch g1[] = { mk_batch(t, 0, 0, 16, 10, 1) };
	struct meta_commit_batch g2[] = { mk_batch(t, 0, 0, 16, 10, 1) };
	struct meta_commit_obj group[] = { { fresh, 100, g1, 1 }, { late, 100, g2, 1 } };
	assert_int_equal(meta_commit_objects(m, group, 2), SL_EMETA);
	assert_int_equal(g1[0].base_offset, -1);
	assert_int_equal(meta_object_known(m, fresh, &known), 0);
	assert_false(known);
	assert_int_equal(hwm(m, t, 0), 0);

	/* Sealed at the fence: commits. So does a key without a seal time. */
	assert_int_equal(meta_commit_object(m, fresh, 100, b, 1), 0);
	assert_int_equal(b[0].base_offset, 0);
	assert_int_equal(meta_object_known(m, fresh, &known), 0);
	assert_true(known);
	assert_int_equal(meta_commit_object(m, "objects/not-a-writer-key.obj", 100, g1, 1), 0);
	assert_int_equal(hwm(m, t, 0), 4);
	meta_close(m);

	/* The fence survives a reopen. */
	m = open_store();
	assert_int_equal(meta_gc_fence_raise(m, 0, &got), 0);
	assert_int_equal(got, fence);
	assert_int_equal(meta_commit_object(m, late, 100, b, 1), SL_EMETA);
	meta_close(m);
}

static off_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : -1;
}

/* meta_open_existing never creates a database and refuses one without a
 * schema, leaving the file as it was; it opens (and upgrades) a real one. */
/* PostgreSQL: meta_open_existing creates nothing in a database without
 * the schema and refuses it; a store's own schema opens; a newer schema
 * version is refused by both opens. */
static void pg_open_existing(void)
{
	struct meta *m = (struct meta *)1;
	assert_int_equal(meta_open_existing(tb_url, &m), SL_EMETA);
	assert_null(m);
	assert_int_equal(tb_query_i64("SELECT count(*) FROM pg_tables WHERE schemaname = $1",
				      "public"), 0);
	m = open_store();
	int64_t t = create_topic(m, "t", 1);
	meta_close(m);
	assert_int_equal(meta_open_existing(tb_url, &m), 0);
	assert_int_equal(hwm(m, t, 0), 0);
	meta_close(m);
	tb_pg_exec(tb_pg, "UPDATE schema_version SET version = 99");
	assert_int_equal(meta_open(tb_url, &m), SL_EMETA);
	assert_null(m);
	assert_int_equal(meta_open_existing(tb_url, &m), SL_EMETA);
	assert_null(m);
}

static void test_open_existing(void **state)
{
	if (tb == TB_POSTGRES) {
		pg_open_existing();
		return;
	}
	struct meta *m = (struct meta *)1;
	assert_int_equal(meta_open_existing(tb_url, &m), SL_EMETA);
	assert_null(m);
	assert_int_equal(access(tb_db_path, F_OK), -1);
	assert_int_equal(meta_open_existing("bogus:x", &m), SL_EINVAL);
	assert_int_equal(meta_open_existing("sqlite:", &m), SL_EINVAL);

	FILE *f = fopen(tb_db_path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(meta_open_existing(tb_url, &m), SL_EMETA);
	assert_int_equal(file_size(tb_db_path), 0);

	/* A SQLite database of something else (user_version 0). */
	sqlite3 *db;
	assert_int_equal(sqlite3_open(tb_db_path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE other (x INTEGER)", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(meta_open_existing(tb_url, &m), SL_EMETA);
	assert_null(m);
	unlink(tb_db_path);

	/* A version-1 database (no gc_fence) is upgraded on open. */
	m = open_store();
	int64_t t = create_topic(m, "t", 1);
	meta_close(m);
	assert_int_equal(sqlite3_open(tb_db_path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE gc_fence; PRAGMA user_version = 1", NULL,
				      NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(meta_open_existing(tb_url, &m), 0);
	assert_non_null(m);
	int64_t got = -1;
	assert_int_equal(meta_gc_fence_raise(m, 1000, &got), 0);
	assert_int_equal(got, 1000);
	assert_int_equal(hwm(m, t, 0), 0);
	meta_close(m);
}

struct racer {
	struct meta *m;
	int64_t tid;
	int commits;
	int err;
};

static void *commit_thread(void *arg)
{
	struct racer *r = arg;
	for (int i = 0; i < r->commits && !r->err; i++) {
		char key[64];
		snprintf(key, sizeof key, "race-%06d", i);
		struct meta_commit_batch b[] = {
			mk_batch(r->tid, 0, i % 3, 16, 64, i),
			mk_batch(r->tid, 1, 0, 80, 32, i),
		};
		__atomic_store_n(&r->err, meta_commit_object(r->m, key, 200, b, 2),
				 __ATOMIC_RELAXED);
	}
	return NULL;
}

/* commit_object on a second thread while the loop thread reads. */
/* A group commit is all or nothing: a reused key in the second object
 * undoes the first; then two fresh objects commit together with offsets
 * continuing from one to the next. */
static void test_group_commit(void **state)
{
	struct meta *m = open_store();
	int64_t t1 = create_topic(m, "grp", 1);
	struct meta_commit_batch b0[] = { mk_batch(t1, 0, 4, 16, 10, 1) };
	assert_int_equal(meta_commit_object(m, "obj-1", 100, b0, 1), 0);
	struct meta_commit_batch g1[] = { mk_batch(t1, 0, 0, 16, 10, 1) };
	struct meta_commit_batch g2[] = { mk_batch(t1, 0, 1, 16, 10, 1) };
	struct meta_commit_obj group[] = {
		{ "obj-g1", 100, g1, 1 }, { "obj-1", 100, g2, 1 },
	};
	assert_int_equal(meta_commit_objects(m, group, 2), SL_EMETA);
	assert_int_equal(g1[0].base_offset, -1);
	assert_int_equal(g2[0].base_offset, -1);
	assert_int_equal(hwm(m, t1, 0), 5);
	bool known = true;
	assert_int_equal(meta_object_known(m, "obj-g1", &known), 0);
	assert_false(known);
	assert_int_equal(meta_commit_objects(m, group, 0), SL_EINVAL);
	group[1].key = "obj-g2";
	assert_int_equal(meta_commit_objects(m, group, 2), 0);
	assert_int_equal(g1[0].base_offset, 5);
	assert_int_equal(g2[0].base_offset, 6);
	assert_int_equal(hwm(m, t1, 0), 8);
	meta_close(m);
}

/* Producer id blocks never overlap, also across two connections to the
 * same database (two agents) and a reopen. */
static void test_producer_ids(void **state)
{
	struct meta *a = open_store(), *b = open_store();
	int64_t x, y, z;
	assert_int_equal(meta_producer_ids_alloc(a, 1000, &x), 0);
	assert_int_equal(meta_producer_ids_alloc(b, 1000, &y), 0);
	assert_int_equal(meta_producer_ids_alloc(a, 5, &z), 0);
	assert_true(x >= 0 && y >= 0 && z >= 0);
	assert_true(y >= x + 1000 || x >= y + 1000);
	assert_true(z >= x + 1000 && z >= y + 1000);
	assert_int_equal(meta_producer_ids_alloc(a, 0, &z), SL_EINVAL);
	assert_int_equal(meta_producer_ids_alloc(a, META_PRODUCER_ID_BLOCK_MAX + 1, &z), SL_EINVAL);
	meta_close(a);
	meta_close(b);
	a = open_store();
	int64_t w;
	assert_int_equal(meta_producer_ids_alloc(a, 1, &w), 0);
	assert_true(w >= z + 5);
	meta_close(a);
}

static void test_commit_thread_races_reads(void **state)
{
	struct meta *m = open_store();
	struct racer r = { .m = m, .tid = create_topic(m, "race", 2), .commits = 300 };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, commit_thread, &r), 0);
	static struct meta_batch_row rows[512];
	int64_t last_hwm = 0;
	size_t reads = 0;
	for (;;) {
		struct meta_partition p;
		assert_int_equal(meta_partition_get(m, r.tid, 0, &p), 0);
		assert_true(p.high_watermark >= last_hwm);
		last_hwm = p.high_watermark;
		size_t n;
		assert_int_equal(meta_batches_from(m, r.tid, 0, 0, 512, rows, &n), 0);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(rows[i].base_offset, i ? rows[i - 1].last_offset + 1 : 0);
			assert_memory_equal(rows[i].object_key, "race-", 5);
		}
		reads++;
		if (n > 0 && rows[n - 1].last_offset + 1 > last_hwm) {
			/* rows committed after our HWM read: fine, never beyond the
			 * current HWM */
			assert_int_equal(meta_partition_get(m, r.tid, 0, &p), 0);
			assert_true(rows[n - 1].last_offset < p.high_watermark);
		}
		if (__atomic_load_n(&r.err, __ATOMIC_RELAXED))
			break;
		int64_t expect = 0;
		for (int i = 0; i < r.commits; i++)
			expect += i % 3 + 1;
		if (last_hwm == expect)
			break;
	}
	pthread_join(th, NULL);
	assert_int_equal(r.err, 0);
	assert_int_equal(hwm(m, r.tid, 1), r.commits);
	size_t n;
	assert_int_equal(meta_batches_from(m, r.tid, 1, 0, 512, rows, &n), 0);
	assert_int_equal(n, r.commits);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(rows[i].base_offset, (int64_t)i);
	printf("  (%zu read passes while %d objects were committed)\n", reads, r.commits);
	meta_close(m);
}

static struct meta_commit_batch mk_idem(int64_t tid, int32_t p, int32_t delta, int64_t pid,
				       int16_t epoch, int32_t bseq, uint64_t byte_offset)
{
	struct meta_commit_batch b = mk_batch(tid, p, delta, byte_offset, 10, 1);
	b.producer_id = pid;
	b.producer_epoch = epoch;
	b.base_sequence = bseq;
	b.last_sequence = bseq + delta;
	return b;
}

/* One batch committed alone on m: its result and offset. */
static void commit_one_idem(struct meta *m, const char *key, struct meta_commit_batch b,
			    enum meta_batch_result result, int64_t offset)
{
	assert_int_equal(meta_commit_object(m, key, 100, &b, 1), 0);
	assert_int_equal(b.result, result);
	assert_int_equal(b.base_offset, offset);
}

static int64_t rows_of(struct meta *m, int64_t tid, int32_t p)
{
	static struct meta_batch_row rows[64];
	size_t n;
	assert_int_equal(meta_batches_from(m, tid, p, 0, 64, rows, &n), 0);
	return (int64_t)n;
}

/* Idempotent producers are checked inside the commit transaction, against
 * the store's state, whichever store (agent) committed before: a retry
 * of one of the last five batches gets the original's offset and no row
 * (also within one object), a gap is out of order, an older epoch fenced,
 * a new epoch must start at 0; refused batches take no offset and no
 * live bytes, and the rest of their object commits as if they were not
 * there. The state survives a reopen and leaves with its topic. */
static void test_producer_checks(void **state)
{
	struct meta *a = open_store(), *b = open_store();
	int64_t t = create_topic(a, "idem", 2);
	commit_one_idem(a, "idem-1", mk_idem(t, 0, 2, 7, 0, 0, 16), META_BATCH_APPENDED, 0);
	/* b never saw producer 7. */
	struct meta_commit_batch o2[] = {
		mk_batch(t, 0, 0, 16, 10, 1),   /* not idempotent: 3 */
		mk_idem(t, 0, 2, 7, 0, 0, 26),  /* the retry of 0..2 */
		mk_idem(t, 0, 0, 7, 0, 3, 36),  /* 4 */
		mk_idem(t, 0, 0, 7, 0, 5, 46),  /* a gap: 4 is next */
		mk_idem(t, 0, 0, 7, 0, 4, 56),  /* 5 */
		mk_idem(t, 0, 0, 7, 0, 4, 66),  /* a retry in the same object */
		mk_idem(t, 1, 0, 7, 0, 9, 76),  /* no state there: any sequence */
	};
	assert_int_equal(meta_commit_object(b, "idem-2", 200, o2, 7), 0);
	static const enum meta_batch_result want[] = {
		META_BATCH_APPENDED, META_BATCH_DUPLICATE, META_BATCH_APPENDED,
		META_BATCH_OUT_OF_ORDER, META_BATCH_APPENDED, META_BATCH_DUPLICATE,
		META_BATCH_APPENDED,
	};
	static const int64_t want_offset[] = { 3, 0, 4, -1, 5, 5, 0 };
	for (int i = 0; i < 7; i++) {
		assert_int_equal(o2[i].result, want[i]);
		assert_int_equal(o2[i].base_offset, want_offset[i]);
	}
	assert_int_equal(hwm(a, t, 0), 6);
	assert_int_equal(hwm(a, t, 1), 1);
	assert_int_equal(rows_of(a, t, 0), 4);
	assert_int_equal(live_bytes("idem-2"), 4 * 10);

	/* Epochs: a new one starts at sequence 0, an older one is fenced. */
	commit_one_idem(a, "idem-3", mk_idem(t, 0, 0, 7, 1, 3, 16), META_BATCH_OUT_OF_ORDER, -1);
	commit_one_idem(b, "idem-4", mk_idem(t, 0, 0, 7, 1, 0, 16), META_BATCH_APPENDED, 6);
	commit_one_idem(a, "idem-5", mk_idem(t, 0, 0, 7, 0, 5, 16), META_BATCH_FENCED, -1);
	commit_one_idem(a, "idem-6", mk_idem(t, 0, 0, 7, 1, 0, 16), META_BATCH_DUPLICATE, 6);
	assert_int_equal(live_bytes("idem-3"), 0);
	assert_int_equal(live_bytes("idem-5"), 0);

	/* Only the last five batches are remembered. */
	for (int32_t i = 1; i <= 5; i++) {
		char key[32];
		snprintf(key, sizeof key, "idem-seq-%d", i);
		commit_one_idem(i % 2 ? a : b, key, mk_idem(t, 0, 0, 7, 1, i, 16),
				META_BATCH_APPENDED, 6 + i);
	}
	commit_one_idem(b, "idem-7", mk_idem(t, 0, 0, 7, 1, 0, 16), META_BATCH_OUT_OF_ORDER, -1);
	commit_one_idem(a, "idem-8", mk_idem(t, 0, 0, 7, 1, 1, 16), META_BATCH_DUPLICATE, 7);

	/* After a reopen, from the store alone. */
	meta_close(a);
	a = open_store();
	commit_one_idem(a, "idem-9", mk_idem(t, 0, 0, 7, 1, 5, 16), META_BATCH_DUPLICATE, 11);
	commit_one_idem(a, "idem-10", mk_idem(t, 0, 0, 7, 1, 6, 16), META_BATCH_APPENDED, 12);
	assert_int_equal(hwm(b, t, 0), 13);
	char tid_text[24];
	snprintf(tid_text, sizeof tid_text, "%" PRId64, t);
	assert_int_equal(tb_query_i64("SELECT count(*) FROM producer_state WHERE tid = $1",
				      tid_text), 2);

	/* DescribeProducers' read: the epoch and the last batch's last
	 * sequence, no open transaction; none for an unknown partition. */
	struct meta_producer_desc d[2];
	size_t n;
	assert_int_equal(meta_producers_describe(b, t, 0, 2, d, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(d[0].producer_id, 7);
	assert_int_equal(d[0].producer_epoch, 1);
	assert_int_equal(d[0].last_sequence, 6);
	assert_int_equal(d[0].txn_start_offset, -1);
	assert_true(d[0].last_ms > clock_wall_ms() - 60000 && d[0].last_ms <= clock_wall_ms());
	assert_int_equal(meta_producers_describe(b, t, 1, 2, d, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(d[0].producer_epoch, 0);
	assert_int_equal(d[0].last_sequence, 9);
	assert_int_equal(meta_producers_describe(b, t, 7, 2, d, &n), 0);
	assert_int_equal(n, 0);

	/* Idle past producer.id.expiration.ms (the retention sweep's trim
	 * drops it): the producer is accepted at any sequence again. A trim
	 * with an older cutoff keeps it. */
	int64_t start;
	struct meta_trim keep = { -1, -1, -1, -1, clock_wall_ms() - 60000 };
	assert_int_equal(meta_partition_trim(a, t, 1, &keep, &start), 0);
	commit_one_idem(a, "idem-11", mk_idem(t, 1, 0, 7, 0, 42, 16), META_BATCH_OUT_OF_ORDER, -1);
	struct meta_trim expire = { -1, -1, -1, -1, clock_wall_ms() + 1000 };
	assert_int_equal(meta_partition_trim(a, t, 1, &expire, &start), 0);
	assert_int_equal(tb_query_i64("SELECT count(*) FROM producer_state WHERE tid = $1",
				      tid_text), 1);
	commit_one_idem(a, "idem-12", mk_idem(t, 1, 0, 7, 0, 42, 16), META_BATCH_APPENDED, 1);
	assert_int_equal(tb_query_i64("SELECT count(*) FROM producer_state WHERE tid = $1",
				      tid_text), 2);
	delete_topic(a, "idem");
	assert_int_equal(tb_query_i64("SELECT count(*) FROM producer_state WHERE tid = $1",
				      tid_text), 0);
	meta_close(a);
	meta_close(b);
}

/* A store of the schema before producer_state (SQLite 6, PostgreSQL 4)
 * gets each producer's state from its batch rows on the upgrade: a retry
 * of a batch committed before it is still a duplicate. */
static void test_producer_state_upgrade(void **state)
{
	struct meta *m = open_store();
	int64_t t = create_topic(m, "up", 1);
	for (int32_t i = 0; i < 10; i++) {
		char key[32];
		snprintf(key, sizeof key, "up-%d", i);
		commit_one_idem(m, key, mk_idem(t, 0, 1, 42, i < 3 ? 0 : 2, i < 3 ? 2 * i : 2 * (i - 3),
						16), META_BATCH_APPENDED, 2 * i);
	}
	meta_close(m);
	if (tb == TB_POSTGRES) {
		tb_pg_exec(tb_pg, "DROP TABLE producer_state; ALTER TABLE batches DROP COLUMN spans;"
			   " UPDATE schema_version SET version = 4");
	} else {
		sqlite3 *db;
		assert_int_equal(sqlite3_open(tb_db_path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_exec(db, "DROP TABLE producer_state;"
					      " ALTER TABLE batches DROP COLUMN spans;"
					      " PRAGMA user_version = 6", NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
	}
	m = open_store();
	/* Epoch 2's sequences 0..13 at offsets 6..19: the last five batches
	 * are sequences 4..13. */
	commit_one_idem(m, "up-a", mk_idem(t, 0, 1, 42, 2, 2, 16), META_BATCH_OUT_OF_ORDER, -1);
	commit_one_idem(m, "up-b", mk_idem(t, 0, 1, 42, 2, 4, 16), META_BATCH_DUPLICATE, 10);
	commit_one_idem(m, "up-c", mk_idem(t, 0, 1, 42, 2, 12, 16), META_BATCH_DUPLICATE, 18);
	commit_one_idem(m, "up-d", mk_idem(t, 0, 1, 42, 0, 6, 16), META_BATCH_FENCED, -1);
	commit_one_idem(m, "up-e", mk_idem(t, 0, 1, 42, 2, 14, 16), META_BATCH_APPENDED, 20);
	meta_close(m);
}

/* Manual replica assignments (issue 16): stored with the topic and its
 * grown partitions, listed per partition in the order given, refused
 * when inconsistent, gone with the topic; a store of the schema before
 * them (SQLite 10, PostgreSQL 8) gains the table on open. */
static void test_replica_assignments(void **state)
{
	(void)state;
	struct meta *m = open_store();
	int32_t ids[] = { 1, 2, 2, 3, 3, 1 };
	struct meta_replicas r = { .first = 0, .replication = 2, .ids = ids };
	struct meta_topic a, b;
	assert_int_equal(meta_topic_create(m, "ra", 3, NULL, 0, &r, &a), 0);
	assert_int_equal(a.replication, 2);
	assert_memory_equal(a.replicas, ids, sizeof ids);
	meta_topic_free(&a);
	/* first must be 0, ids non-negative, replication in range. */
	struct meta_replicas bad = r;
	bad.first = 1;
	assert_int_equal(meta_topic_create(m, "rb", 3, NULL, 0, &bad, &b), SL_EINVAL);
	bad = r;
	bad.replication = 0;
	assert_int_equal(meta_topic_create(m, "rb", 3, NULL, 0, &bad, &b), SL_EINVAL);
	assert_int_equal(meta_topic_create(m, "rb", 1, NULL, 0, NULL, &b), 0);

	/* Grown with an assignment from the count the caller saw. */
	int32_t more[] = { 4, 1 };
	struct meta_replicas g = { .first = 3, .replication = 2, .ids = more };
	int32_t two_more[] = { 4, 1, 1, 4 };
	struct meta_replicas stale = { .first = 2, .replication = 2, .ids = two_more };
	struct meta_topic *list;
	size_t n;
	assert_int_equal(meta_topic_list(m, &list, &n), 0);
	int64_t tid = find_topic(list, n, "ra")->tid;
	meta_topics_free(list, n);
	assert_int_equal(meta_topic_set_partitions(m, tid, 4, &stale), SL_EINVAL);
	assert_int_equal(meta_topic_set_partitions(m, tid, 4, &g), 0);
	assert_int_equal(meta_topic_set_partitions(m, tid, 5, NULL), 0);
	/* A topic without one gains it for its new partitions only. */
	int32_t one[] = { 7 };
	struct meta_replicas gb = { .first = 1, .replication = 1, .ids = one };
	assert_int_equal(meta_topic_set_partitions(m, b.tid, 2, &gb), 0);

	for (int round = 0; round < 2; round++) {
		assert_int_equal(meta_topic_list(m, &list, &n), 0);
		const struct meta_topic *la = find_topic(list, n, "ra");
		assert_int_equal(la->partition_count, 5);
		assert_int_equal(la->replication, 2);
		int32_t want[] = { 1, 2, 2, 3, 3, 1, 4, 1, -1 };
		assert_memory_equal(la->replicas, want, sizeof want);
		const struct meta_topic *lb = find_topic(list, n, "rb");
		assert_int_equal(lb->replication, 1);
		assert_int_equal(lb->replicas[0], -1);
		assert_int_equal(lb->replicas[1], 7);
		meta_topics_free(list, n);
		if (round)
			break;
		/* Back to the version before the table, which the next open
		 * creates again: the assignments made since are gone with it,
		 * nothing else is. */
		meta_close(m);
		if (tb == TB_POSTGRES) {
			tb_pg_exec(tb_pg, "DROP TABLE partition_replicas;"
				   " UPDATE schema_version SET version = 8");
		} else {
			sqlite3 *db;
			assert_int_equal(sqlite3_open(tb_db_path, &db), SQLITE_OK);
			assert_int_equal(sqlite3_exec(db, "DROP TABLE partition_replicas;"
						      " PRAGMA user_version = 10", NULL, NULL, NULL),
					 SQLITE_OK);
			sqlite3_close(db);
		}
		m = open_store();
		assert_int_equal(meta_topic_list(m, &list, &n), 0);
		assert_null(find_topic(list, n, "ra")->replicas);
		assert_int_equal(find_topic(list, n, "ra")->partition_count, 5);
		meta_topics_free(list, n);
		assert_int_equal(meta_topic_delete(m, "ra"), 0);
		assert_int_equal(meta_topic_delete(m, "rb"), 0);
		int32_t four[] = { 1, 2, 2, 3, 3, 1, 4, 1 };
		struct meta_replicas r4 = { .first = 0, .replication = 2, .ids = four };
		assert_int_equal(meta_topic_create(m, "ra", 4, NULL, 0, &r4, &a), 0);
		tid = a.tid;
		meta_topic_free(&a);
		assert_int_equal(meta_topic_set_partitions(m, tid, 5, NULL), 0);
		assert_int_equal(meta_topic_create(m, "rb", 2, NULL, 0, NULL, &b), 0);
		assert_int_equal(meta_topic_set_partitions(m, b.tid, 2, &gb), SL_EINVAL);
		meta_topic_free(&b);
		assert_int_equal(meta_topic_delete(m, "rb"), 0);
		assert_int_equal(meta_topic_create(m, "rb", 1, NULL, 0, NULL, &b), 0);
		assert_int_equal(meta_topic_set_partitions(m, b.tid, 2, &gb), 0);
	}
	/* Gone with the topic: a new one of the name has none. */
	assert_int_equal(meta_topic_delete(m, "ra"), 0);
	assert_int_equal(meta_topic_create(m, "ra", 3, NULL, 0, NULL, &a), 0);
	assert_null(a.replicas);
	meta_topic_free(&a);
	assert_int_equal(meta_topic_list(m, &list, &n), 0);
	assert_null(find_topic(list, n, "ra")->replicas);
	meta_topics_free(list, n);
	meta_topic_free(&b);
	meta_close(m);
}

struct agent_racer {
	struct meta *m;
	int64_t tid;
	int id, commits, err;
};

/* Each object writes partitions 1 then 0 for one racer, 0 then 1 for the
 * other: opposite orders, so a backend that locked in the given order
 * could deadlock. */
static void *agent_commits(void *arg)
{
	struct agent_racer *r = arg;
	for (int i = 0; i < r->commits && !r->err; i++) {
		char key[64];
		snprintf(key, sizeof key, "agent%d-%04d", r->id, i);
		int32_t first = r->id ? 1 : 0;
		struct meta_commit_batch b[] = {
			mk_batch(r->tid, first, 1, 16, 10, i),
			mk_batch(r->tid, 1 - first, 0, 26, 10, i),
		};
		r->err = meta_commit_object(r->m, key, 100, b, 2);
		if (!r->err && (b[0].base_offset < 0 || b[1].base_offset < 0))
			r->err = -999;
	}
	return NULL;
}

/* Two stores on one database (two agents) commit to the same partitions
 * at once: every batch gets an offset, offsets stay dense, no gap, no
 * overlap. */
static void test_two_agents_commit(void **state)
{
	struct meta *a = open_store(), *b = open_store();
	struct agent_racer ra = { a, create_topic(a, "shared", 2), 0, 150, 0 };
	struct agent_racer rb = { b, ra.tid, 1, 150, 0 };
	pthread_t ta, tb_thread;
	assert_int_equal(pthread_create(&ta, NULL, agent_commits, &ra), 0);
	assert_int_equal(pthread_create(&tb_thread, NULL, agent_commits, &rb), 0);
	pthread_join(ta, NULL);
	pthread_join(tb_thread, NULL);
	assert_int_equal(ra.err, 0);
	assert_int_equal(rb.err, 0);
	static struct meta_batch_row rows[1024];
	for (int32_t p = 0; p < 2; p++) {
		size_t n;
		assert_int_equal(meta_batches_from(a, ra.tid, p, 0, 1024, rows, &n), 0);
		assert_int_equal(n, 300);
		int64_t next = 0;
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(rows[i].base_offset, next);
			next = rows[i].last_offset + 1;
		}
		assert_int_equal(hwm(b, ra.tid, p), next);
		assert_int_equal(next, 300 * 3 / 2);
	}
	meta_close(a);
	meta_close(b);
}

static struct meta_agent reg_agent(int32_t node_id, int64_t incarnation, const char *zone)
{
	struct meta_agent ag;
	memset(&ag, 0, sizeof ag);
	ag.node_id = node_id;
	ag.incarnation = incarnation;
	snprintf(ag.endpoints, sizeof ag.endpoints, "PLAINTEXT://host-%d:%d,SSL://host-%d:%d",
		 (int)incarnation, 9000 + (int)incarnation, (int)incarnation, 9100 + (int)incarnation);
	snprintf(ag.zone, sizeof ag.zone, "%s", zone);
	return ag;
}

/* The PostgreSQL server's postmaster (tb_pg is a superuser's). */
static pid_t postmaster_pid(void)
{
	PGresult *r = PQexec(tb_pg, "SHOW data_directory");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	char path[1200];
	snprintf(path, sizeof path, "%s/postmaster.pid", PQgetvalue(r, 0, 0));
	PQclear(r);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	long pid = 0;
	assert_int_equal(fscanf(f, "%ld", &pid), 1);
	fclose(f);
	assert_true(pid > 1);
	return (pid_t)pid;
}

/* A heartbeat and a lease sync that must reconnect are bounded as a
 * whole, the reconnect included: with the postmaster stopped the kernel
 * still completes the handshake but nothing answers, and each call gives
 * up at its bound (SLUICE_PG_CLUSTER_TIMEOUT_MS, 300 ms here; nothing
 * renewed within the lease). Before, the reconnect (the heartbeat's
 * PQreset, the leases connection's first connect) blocked for libpq's
 * connect_timeout, 2 s at least, past it. Once the server answers again,
 * both reconnect. */
static void test_reconnect_within_call_bound(void **state)
{
	(void)state;
	if (tb != TB_POSTGRES)
		skip();
	setenv("SLUICE_PG_CLUSTER_TIMEOUT_MS", "300", 1);
	struct meta *m = open_store();
	unsetenv("SLUICE_PG_CLUSTER_TIMEOUT_MS");
	struct meta_cluster_view v;
	struct meta_agent self = reg_agent(-1, 1, "");
	assert_int_equal(meta_agent_register(m, &self, 3000, &v), 0);
	free(v.agents);
	/* Its backends go: the next call on each connection reconnects. */
	tb_pg_exec(tb_pg, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
			  " WHERE application_name = 'sluice'");
	int64_t until = clock_mono_us() + 30 * 1000000LL;
	while (tb_query_i64("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
			    "sluice") > 0 && clock_mono_us() < until)
		usleep(20 * 1000);
	pid_t pm = postmaster_pid();
	assert_int_equal(kill(pm, SIGSTOP), 0);
	/* A lease of the renewal margin: the bound is the cluster one. */
	int64_t t0 = clock_mono_us();
	int beat = meta_agent_heartbeat(m, &self, 500, &v);
	int64_t t1 = clock_mono_us();
	struct meta_lease l = { .name = "job/a" };
	int sync = meta_leases_sync(m, &self, 500, &l, 1);
	int64_t t2 = clock_mono_us();
	kill(pm, SIGCONT);
	print_message("heartbeat %d in %" PRId64 " ms, lease sync %d in %" PRId64 " ms\n", beat,
		      (t1 - t0) / 1000, sync, (t2 - t1) / 1000);
	assert_int_equal(beat, SL_EMETA);
	assert_int_equal(sync, SL_EMETA);
	assert_true(t1 - t0 < 1500 * 1000);
	assert_true(t2 - t1 < 1500 * 1000);
	/* Back: both reconnect (after their backoff). */
	until = clock_mono_us() + 30 * 1000000LL;
	do {
		usleep(50 * 1000);
		beat = meta_agent_heartbeat(m, &self, 3000, &v);
		if (!beat)
			free(v.agents);
		sync = meta_leases_sync(m, &self, 3000, &l, 1);
	} while ((beat || sync) && clock_mono_us() < until);
	assert_int_equal(beat, 0);
	assert_int_equal(sync, 0);
	meta_close(m);
}

/* A URL naming two hosts, the first of which accepts connections and
 * never answers (a listening socket nobody accepts on): the store opens
 * on the second, as libpq's own failover does, each host given its
 * connect_timeout. A connect bounded as a whole by one connect_timeout
 * (conn_poll) spent it all on the first host and never tried the second. */
static void test_failover_to_second_host(void **state)
{
	(void)state;
	if (tb != TB_POSTGRES)
		skip();
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sa;
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(fd, 64), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	/* tb_url is postgresql://USER[:PASS]@HOST:PORT/DB */
	const char *at = strchr(tb_url, '@');
	assert_non_null(at);
	char url[1400];
	snprintf(url, sizeof url, "%.*s127.0.0.1:%d,%s?connect_timeout=2", (int)(at + 1 - tb_url),
		 tb_url, ntohs(sa.sin_port), at + 1);
	struct meta *m = NULL;
	int64_t t0 = clock_mono_us();
	int rc = meta_open(url, &m);
	print_message("open over two hosts: %d in %" PRId64 " ms\n", rc,
		      (clock_mono_us() - t0) / 1000);
	assert_int_equal(rc, 0);
	int64_t tid = create_topic(m, "failover", 1);
	assert_true(tid > 0);
	meta_close(m);
	close(fd);
}

/* The registry: ids taken and chosen, the epoch raised by every join,
 * expiry and leave and by nothing else, a dead agent's row expired by the
 * next heartbeat of another, an expired agent joining again; and, on a
 * shared store, the catalog version the poll reads. */
static struct meta_scram_change scram_change(bool remove, const char *user, int8_t mech, uint8_t fill)
{
	struct meta_scram_change c = { .remove = remove };
	snprintf(c.cred.user, sizeof c.cred.user, "%s", user);
	c.cred.mechanism = mech;
	c.cred.iterations = 4096 + fill;
	c.cred.salt_len = 16 + fill;
	memset(c.cred.salt, fill, c.cred.salt_len);
	c.cred.key_len = mech == META_SCRAM_SHA_256 ? 32 : 64;
	memset(c.cred.stored_key, fill + 1, c.cred.key_len);
	memset(c.cred.server_key, fill + 2, c.cred.key_len);
	return c;
}

/* SCRAM credentials: upserts replace, a user has one per mechanism, a
 * delete of nothing says so without undoing the others, bad changes are
 * refused whole; a second store handle (another agent) sees each change
 * at once. */
static void test_scram_credentials(void **state)
{
	struct meta *m = open_store(), *other = open_store();
	struct meta_scram_credential got[META_SCRAM_MECHANISMS];
	size_t n;
	assert_int_equal(meta_scram_get(other, "alice", got, &n), 0);
	assert_int_equal(n, 0);
	struct meta_scram_change ch[3] = {
		scram_change(false, "alice", META_SCRAM_SHA_512, 7),
		scram_change(false, "alice", META_SCRAM_SHA_256, 3),
		scram_change(false, "bob, =x", META_SCRAM_SHA_256, 1),
	};
	assert_int_equal(meta_scram_alter(m, ch, 3), 0);
	assert_int_equal(meta_scram_get(other, "alice", got, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(got[0].mechanism, META_SCRAM_SHA_256);
	assert_int_equal(got[0].iterations, 4099);
	assert_int_equal(got[0].salt_len, 19);
	assert_int_equal(got[0].key_len, 32);
	assert_memory_equal(got[0].salt, ch[1].cred.salt, 19);
	assert_memory_equal(got[0].stored_key, ch[1].cred.stored_key, 32);
	assert_memory_equal(got[0].server_key, ch[1].cred.server_key, 32);
	assert_int_equal(got[1].mechanism, META_SCRAM_SHA_512);
	assert_int_equal(got[1].key_len, 64);
	assert_memory_equal(got[1].server_key, ch[0].cred.server_key, 64);
	/* Replace one, delete one that is not there, and one that is. */
	struct meta_scram_change ch2[3] = {
		scram_change(false, "alice", META_SCRAM_SHA_256, 9),
		scram_change(true, "carol", 0, 0),
		scram_change(true, "bob, =x", META_SCRAM_SHA_256, 0),
	};
	assert_int_equal(meta_scram_alter(m, ch2, 3), 0);
	assert_int_equal(ch2[0].result, 0);
	assert_int_equal(ch2[1].result, SL_ENOTFOUND);
	assert_int_equal(ch2[2].result, 0);
	struct meta_scram_credential *all;
	assert_int_equal(meta_scram_list(other, &all, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(all[0].user, "alice");
	assert_int_equal(all[0].iterations, 4096 + 9);
	assert_string_equal(all[1].user, "alice");
	free(all);
	/* An empty user or an unknown mechanism: nothing applied. */
	struct meta_scram_change bad[2] = {
		scram_change(true, "alice", 0, 0),
		scram_change(false, "", META_SCRAM_SHA_256, 1),
	};
	assert_int_equal(meta_scram_alter(m, bad, 2), SL_EINVAL);
	bad[1] = scram_change(false, "dave", 3, 1);
	assert_int_equal(meta_scram_alter(m, bad, 2), SL_EINVAL);
	assert_int_equal(meta_scram_get(m, "alice", got, &n), 0);
	assert_int_equal(n, 2);
	/* Mechanism 0 deletes every one of the user's. */
	assert_int_equal(meta_scram_alter(m, bad, 1), 0);
	assert_int_equal(meta_scram_get(other, "alice", got, &n), 0);
	assert_int_equal(n, 0);
	meta_close(other);
	meta_close(m);
}

static void test_registry(void **state)
{
	struct meta *a = open_store(), *b = open_store();
	struct meta_cluster_view v;
	struct meta_agent sa = reg_agent(-1, 1, "za"), sb = reg_agent(-1, 2, ""), sc = reg_agent(2, 3, "");
	assert_int_equal(meta_agent_register(a, &sa, 3000, &v), 0);
	assert_int_equal(sa.node_id, 1);
	assert_int_equal(v.epoch, 1);
	assert_int_equal(v.count, 1);
	assert_string_equal(v.agents[0].endpoints, "PLAINTEXT://host-1:9001,SSL://host-1:9101");
	assert_string_equal(v.agents[0].zone, "za");
	free(v.agents);
	assert_int_equal(meta_agent_register(b, &sb, 3000, &v), 0);
	assert_int_equal(sb.node_id, 2);
	assert_int_equal(v.epoch, 2);
	assert_int_equal(v.count, 2);
	free(v.agents);
	/* A live agent holds id 2: refused, nothing written. */
	assert_int_equal(meta_agent_register(b, &sc, 3000, &v), SL_EBUSY);
	assert_int_equal(sc.node_id, 2);
	/* A heartbeat that changes nothing keeps the epoch. */
	assert_int_equal(meta_agent_heartbeat(a, &sa, 3000, &v), 0);
	assert_int_equal(v.epoch, 2);
	assert_int_equal(v.count, 2);
	assert_int_equal(v.agents[0].node_id, 1);
	assert_int_equal(v.agents[1].node_id, 2);
	free(v.agents);
	/* b stops beating: a's next heartbeat with a short lease expires it
	 * (a beats on meanwhile: an agent that missed a lease itself would
	 * renew the others, see below). */
	usleep(150 * 1000);
	assert_int_equal(meta_agent_heartbeat(a, &sa, 3000, &v), 0);
	free(v.agents);
	assert_int_equal(meta_agent_heartbeat(a, &sa, 100, &v), 0);
	assert_int_equal(v.epoch, 3);
	assert_int_equal(v.count, 1);
	assert_int_equal(v.agents[0].node_id, 1);
	free(v.agents);
	/* b beats again: it joins under its id. */
	assert_int_equal(meta_agent_heartbeat(b, &sb, 3000, &v), 0);
	assert_int_equal(v.epoch, 4);
	assert_int_equal(v.count, 2);
	free(v.agents);
	/* Its id taken meanwhile by another agent: SL_EBUSY. */
	struct meta_agent stale = sb;
	stale.incarnation = 99;
	assert_int_equal(meta_agent_heartbeat(b, &stale, 3000, &v), SL_EBUSY);
	/* Leaving raises the epoch once. */
	assert_int_equal(meta_agent_deregister(b, &sb), 0);
	assert_int_equal(meta_agent_deregister(b, &sb), 0);
	assert_int_equal(meta_agent_heartbeat(a, &sa, 3000, &v), 0);
	assert_int_equal(v.epoch, 5);
	assert_int_equal(v.count, 1);
	free(v.agents);

	struct meta_catalog cat;
	if (meta_shared(a)) {
		assert_int_equal(meta_catalog_read(a, -1, -1, &cat), 0);
		assert_true(cat.topics_read);
		assert_int_equal(cat.topic_count, 0);
		int64_t known = cat.version;
		meta_catalog_free(&cat);
		int64_t tid = create_topic(b, "polled", 3);
		assert_int_equal(meta_catalog_read(a, known, -1, &cat), 0);
		assert_true(cat.topics_read && cat.version > known);
		assert_int_equal(cat.topic_count, 1);
		assert_int_equal(cat.topics[0].tid, tid);
		assert_int_equal(cat.part_count, 3);
		known = cat.version;
		meta_catalog_free(&cat);
		assert_int_equal(meta_catalog_read(a, known, -1, &cat), 0);
		assert_false(cat.topics_read);
		assert_int_equal(cat.part_count, 3);
		meta_catalog_free(&cat);
		assert_int_equal(meta_topic_config_set(b, tid, "retention.ms", "1000"), 0);
		assert_int_equal(meta_catalog_read(a, known, -1, &cat), 0);
		assert_true(cat.topics_read && cat.version > known);
		assert_int_equal(cat.topics[0].config_count, 1);
		meta_catalog_free(&cat);

		/* An outage: every heartbeat is 10 s old when the store is
		 * back. The first agent to beat renews the others' leases
		 * instead of expiring them; the set and its epoch stay. */
		struct meta_agent sd = reg_agent(-1, 4, "");
		assert_int_equal(meta_agent_register(b, &sd, 3000, &v), 0);
		int64_t epoch = v.epoch;
		free(v.agents);
		assert_int_equal(tb_query_i64("WITH u AS (UPDATE agents SET heartbeat_ms ="
					      " heartbeat_ms - $1::bigint RETURNING 1)"
					      " SELECT count(*) FROM u", "10000"), 2);
		assert_int_equal(meta_agent_heartbeat(a, &sa, 3000, &v), 0);
		assert_int_equal(v.count, 2);
		assert_int_equal(v.epoch, epoch);
		free(v.agents);
		/* A dead agent still goes, a lease later. */
		usleep(150 * 1000);
		assert_int_equal(meta_agent_heartbeat(a, &sa, 3000, &v), 0);
		free(v.agents);
		assert_int_equal(meta_agent_heartbeat(a, &sa, 100, &v), 0);
		assert_int_equal(v.count, 1);
		assert_int_equal(v.epoch, epoch + 1);
		free(v.agents);
	}
	meta_close(a);
	meta_close(b);
}

/* The catalog poll's change marker: a read from the previous read's
 * mark returns exactly the partitions a commit, a log start move or a
 * creation wrote since; on PostgreSQL a transaction that took its id
 * first but commits last is not skipped; a mark above the store's
 * counter (a restored copy) reads every row. */
static void expect_parts(struct meta *m, int64_t *since, size_t n, const int32_t *parts)
{
	struct meta_catalog cat;
	assert_int_equal(meta_catalog_read(m, -2, *since, &cat), 0);
	assert_int_equal(cat.part_count, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(cat.parts[i].partition, parts[i]);
	*since = cat.parts_next;
	meta_catalog_free(&cat);
}

/* Reads until a read finds nothing new. On PostgreSQL a mark is a
 * snapshot's xmin, which another session's open transaction (any
 * database of the server) holds back, so a read may return rows again;
 * once one read is empty, the next returns exactly what was written
 * after it. A store that returned every row each time never settles. */
static void settle(struct meta *m, int64_t *since)
{
	for (int i = 0; i < 300; i++) {
		struct meta_catalog cat;
		assert_int_equal(meta_catalog_read(m, -2, *since, &cat), 0);
		size_t n = cat.part_count;
		*since = cat.parts_next;
		meta_catalog_free(&cat);
		if (n == 0)
			return;
		usleep(10 * 1000);
	}
	fail_msg("the catalog read never came back empty");
}

static void test_catalog_changes(void **state)
{
	struct meta *a = open_store(), *b = open_store();
	int64_t tid = create_topic(b, "marked", 4), since = -1;
	expect_parts(a, &since, 4, (int32_t[]){ 0, 1, 2, 3 });
	settle(a, &since);
	struct meta_commit_batch c1 = mk_batch(tid, 1, 2, 0, 100, 10);
	assert_int_equal(meta_commit_object(b, "ch-1", 100, &c1, 1), 0);
	struct meta_catalog cat;
	assert_int_equal(meta_catalog_read(a, -2, since, &cat), 0);
	assert_int_equal(cat.part_count, 1);
	assert_int_equal(cat.parts[0].partition, 1);
	assert_int_equal(cat.parts[0].high_watermark, 3);
	since = cat.parts_next;
	meta_catalog_free(&cat);
	settle(a, &since);
	/* Two commits between reads (the second finds its row stamped
	 * already), then one after a read: each read sees the latest HWM. */
	for (int round = 0; round < 2; round++) {
		for (int k = 0; k < 2 - round; k++) {
			struct meta_commit_batch c2 = mk_batch(tid, 1, 0, 0, 100, 10);
			char key[32];
			snprintf(key, sizeof key, "ch-2-%d-%d", round, k);
			assert_int_equal(meta_commit_object(b, key, 100, &c2, 1), 0);
		}
		assert_int_equal(meta_catalog_read(a, -2, since, &cat), 0);
		assert_int_equal(cat.part_count, 1);
		assert_int_equal(cat.parts[0].partition, 1);
		assert_int_equal(cat.parts[0].high_watermark, round == 0 ? 5 : 6);
		since = cat.parts_next;
		meta_catalog_free(&cat);
		settle(a, &since);
	}
	assert_int_equal(meta_partition_set_log_start(b, tid, 1, 2), 0);
	assert_int_equal(meta_catalog_read(a, -2, since, &cat), 0);
	assert_int_equal(cat.part_count, 1);
	assert_int_equal(cat.parts[0].log_start_offset, 2);
	since = cat.parts_next;
	meta_catalog_free(&cat);
	settle(a, &since);
	assert_int_equal(meta_topic_set_partitions(b, tid, 6, NULL), 0);
	expect_parts(a, &since, 2, (int32_t[]){ 4, 5 });
	if (tb == TB_POSTGRES) {
		/* A writer that took its transaction id before b's commit and
		 * commits after the poll that saw b's. */
		char sql[256];
		settle(a, &since);
		tb_pg_exec(tb_pg, "BEGIN");
		snprintf(sql, sizeof sql, "UPDATE partitions SET high_watermark = 7, change_seq ="
			 " pg_current_xact_id()::text::bigint WHERE tid = %lld AND partition = 2",
			 (long long)tid);
		tb_pg_exec(tb_pg, sql);
		struct meta_commit_batch c3 = mk_batch(tid, 3, 0, 0, 50, 10);
		assert_int_equal(meta_commit_object(b, "ch-3", 50, &c3, 1), 0);
		expect_parts(a, &since, 1, (int32_t[]){ 3 });
		tb_pg_exec(tb_pg, "COMMIT");
		assert_int_equal(meta_catalog_read(a, -2, since, &cat), 0);
		bool seen = false;
		for (size_t i = 0; i < cat.part_count; i++)
			seen |= cat.parts[i].partition == 2 && cat.parts[i].high_watermark == 7;
		assert_true(seen);
		meta_catalog_free(&cat);
	}
	since = INT64_MAX / 2;
	expect_parts(a, &since, 6, (int32_t[]){ 0, 1, 2, 3, 4, 5 });
	meta_close(a);
	meta_close(b);
}

/* Fenced leases: taken when free, renewed at the same epoch, refused
 * while another live holder's hold lasts, free after a release, an
 * expiry or its holder's leaving, the epoch raised by every change of
 * holder; offset commits and deletes fenced by a group's lease. */
static void lease_one(struct meta *m, const struct meta_agent *self, const char *name,
		      int64_t lease_ms, bool release, int64_t epoch, int32_t holder)
{
	struct meta_lease l = { .name = name, .release = release };
	assert_int_equal(meta_leases_sync(m, self, lease_ms, &l, 1), 0);
	assert_int_equal(l.epoch, epoch);
	assert_int_equal(l.holder, holder);
	assert_true(epoch ? l.expires_in_ms == lease_ms : l.expires_in_ms == 0);
}

/* Two stores, each with an agent registered on it. */
static void two_agents(struct meta **a, struct meta **b, struct meta_agent *sa,
		       struct meta_agent *sb)
{
	struct meta_cluster_view v;
	*a = open_store();
	*b = open_store();
	*sa = reg_agent(-1, 1, "");
	*sb = reg_agent(-1, 2, "");
	assert_int_equal(meta_agent_register(*a, sa, 3000, &v), 0);
	free(v.agents);
	assert_int_equal(meta_agent_register(*b, sb, 3000, &v), 0);
	free(v.agents);
}

static void test_leases(void **state)
{
	struct meta *a, *b;
	struct meta_cluster_view v;
	struct meta_agent sa, sb;
	two_agents(&a, &b, &sa, &sb);
	lease_one(a, &sa, "job/x", 3000, false, 1, sa.node_id);
	lease_one(b, &sb, "job/x", 3000, false, 0, sa.node_id);
	lease_one(a, &sa, "job/x", 3000, false, 1, sa.node_id); /* renewed */
	/* Released: b takes it at a higher epoch; a release of what one does
	 * not hold changes nothing. */
	lease_one(b, &sb, "job/x", 3000, true, 0, sa.node_id);
	lease_one(a, &sa, "job/x", 3000, true, 0, -1);
	lease_one(b, &sb, "job/x", 100, false, 2, sb.node_id);
	lease_one(a, &sa, "job/x", 3000, false, 0, sb.node_id);
	/* b's hold runs out: a takes it; b's renewal finds a there. */
	usleep(150 * 1000);
	lease_one(a, &sa, "job/x", 3000, false, 3, sa.node_id);
	lease_one(b, &sb, "job/x", 3000, false, 0, sa.node_id);
	/* Several in one call, each with its own outcome. */
	struct meta_lease two[2] = { { .name = "job/x" }, { .name = "job/y" } };
	assert_int_equal(meta_leases_sync(b, &sb, 3000, two, 2), 0);
	assert_int_equal(two[0].epoch, 0);
	assert_int_equal(two[1].epoch, 1);
	/* A holder that left the registry holds nothing, though its hold
	 * has not run out. */
	assert_int_equal(meta_agent_deregister(a, &sa), 0);
	lease_one(b, &sb, "job/x", 3000, false, 4, sb.node_id);
	/* A restarted agent (same id, new incarnation) is another holder. */
	struct meta_agent sa2 = reg_agent(sa.node_id, 7, "");
	assert_int_equal(meta_agent_register(a, &sa2, 3000, &v), 0);
	free(v.agents);
	lease_one(a, &sa2, "job/x", 3000, false, 0, sb.node_id);
	/* Many in one call (one statement each way on PostgreSQL), names
	 * with the characters an array literal quotes, unsorted, some new,
	 * some held by the other, some released in the same call. */
	enum { MANY = 40 };
	char names[MANY][32];
	struct meta_lease many[MANY];
	for (int i = 0; i < MANY; i++) {
		snprintf(names[i], sizeof names[i], "group/m\"{%d},'\\ %02d", (i * 7) % MANY, i);
		many[i] = (struct meta_lease){ .name = names[i] };
	}
	assert_int_equal(meta_leases_sync(a, &sa2, 3000, many, MANY / 2), 0);
	for (int i = 0; i < MANY / 2; i++) {
		assert_int_equal(many[i].epoch, 1);
		assert_int_equal(many[i].holder, sa2.node_id);
	}
	for (int i = 0; i < MANY / 4; i++)
		many[i].release = true;
	assert_int_equal(meta_leases_sync(a, &sa2, 3000, many, MANY / 2), 0);
	for (int i = 0; i < MANY; i++)
		many[i].release = false;
	assert_int_equal(meta_leases_sync(b, &sb, 3000, many, MANY), 0);
	for (int i = 0; i < MANY; i++) {
		bool a_holds = i >= MANY / 4 && i < MANY / 2;
		assert_int_equal(many[i].epoch, a_holds ? 0 : i < MANY / 4 ? 2 : 1);
		assert_int_equal(many[i].holder, a_holds ? sa2.node_id : sb.node_id);
	}
	/* Names: empty or too long are refused, nothing written. */
	char long_name[META_LEASE_NAME_BYTES + 1];
	memset(long_name, 'n', sizeof long_name - 1);
	long_name[sizeof long_name - 1] = 0;
	struct meta_lease bad[2] = { { .name = "job/z" }, { .name = long_name } };
	assert_int_equal(meta_leases_sync(a, &sa2, 3000, bad, 2), SL_EINVAL);
	lease_one(b, &sb, "job/z", 3000, false, 1, sb.node_id);

	/* Offsets fenced by group g's lease (b holds it at epoch 1). */
	int64_t tid = create_topic(a, "fenced", 2);
	lease_one(b, &sb, META_LEASE_GROUP_PREFIX "g", 3000, false, 1, sb.node_id);
	struct meta_offset_commit rows[3] = {
		{ .group_id = "g", .tid = tid, .partition = 0, .committed_offset = 5, .leader_epoch = -1,
		  .commit_timestamp_ms = 1000 },
		{ .group_id = "g", .tid = tid, .partition = 1, .committed_offset = 6, .leader_epoch = -1,
		  .commit_timestamp_ms = 1000 },
		{ .group_id = "h", .tid = tid, .partition = 0, .committed_offset = 7, .leader_epoch = -1,
		  .commit_timestamp_ms = 1000 },
	};
	int64_t epochs[3] = { 1, 1, 0 };
	bool refused[3] = { true, true, true };
	assert_int_equal(meta_offset_commit_fenced(b, rows, epochs, 3, refused), 0);
	assert_false(refused[0] || refused[1] || refused[2]);
	/* a takes g over after b's hold ran out: b's stale commit is refused,
	 * the unfenced row of the same call is stored. */
	lease_one(b, &sb, META_LEASE_GROUP_PREFIX "g", 100, false, 1, sb.node_id);
	usleep(150 * 1000);
	lease_one(a, &sa2, META_LEASE_GROUP_PREFIX "g", 3000, false, 2, sa2.node_id);
	rows[0].committed_offset = 50;
	rows[2].committed_offset = 70;
	assert_int_equal(meta_offset_commit_fenced(b, rows, epochs, 3, refused), 0);
	assert_true(refused[0] && refused[1]);
	assert_false(refused[2]);
	struct meta_committed_offset *o;
	size_t n;
	assert_int_equal(meta_offset_fetch(a, "g", &o, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(o[0].committed_offset, 5);
	meta_committed_offsets_free(o, n);
	assert_int_equal(meta_offset_fetch(a, "h", &o, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(o[0].committed_offset, 70);
	meta_committed_offsets_free(o, n);
	epochs[0] = epochs[1] = 2;
	assert_int_equal(meta_offset_commit_fenced(a, rows, epochs, 2, refused), 0);
	assert_false(refused[0] || refused[1]);
	/* The group's membership: stored by the lease's holder only, read
	 * back whole by another store (a new coordinator), replaced by the
	 * next store, deleted with the group's offsets below. */
	uint8_t blob[300];
	for (size_t i = 0; i < sizeof blob; i++)
		blob[i] = (uint8_t)(i * 7);
	struct meta_group_state st = { .group_id = "g", .generation = 4, .protocol_type = "consumer",
				       .protocol_name = "range", .leader_id = "m-1", .members = blob,
				       .members_len = sizeof blob };
	assert_int_equal(meta_group_state_store(b, &st, 1), SL_EBUSY);
	struct meta_group_state *got;
	assert_int_equal(meta_group_state_load(b, "g", &got, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(meta_group_state_store(a, &st, 2), 0);
	st.generation = 5;
	st.leader_id = NULL;
	st.members_len = 10;
	assert_int_equal(meta_group_state_store(a, &st, 2), 0);
	assert_int_equal(meta_group_state_load(b, "g", &got, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(got[0].group_id, "g");
	assert_int_equal(got[0].generation, 5);
	assert_string_equal(got[0].protocol_type, "consumer");
	assert_string_equal(got[0].protocol_name, "range");
	assert_null(got[0].leader_id);
	assert_int_equal(got[0].members_len, 10);
	assert_memory_equal(got[0].members, blob, 10);
	meta_group_states_free(got, n);
	st.group_id = "h";
	assert_int_equal(meta_group_state_store(a, &st, 0), 0); /* unfenced */
	assert_int_equal(meta_group_state_load(b, NULL, &got, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(got[1].group_id, "h");
	meta_group_states_free(got, n);
	/* A forget (an Empty group its agent believes without offsets): a
	 * stale epoch is refused; the holder's leaves the membership of a
	 * group the store holds offsets of (the agent's belief may be short
	 * of the store's) and never deletes offsets. */
	assert_int_equal(meta_group_forget(b, "g", &sb, 1), SL_EBUSY);
	assert_int_equal(meta_group_forget(a, "g", &sa2, 2), 0);
	assert_int_equal(meta_offset_fetch(a, "g", &o, &n), 0);
	assert_int_equal(n, 2);
	meta_committed_offsets_free(o, n);
	assert_int_equal(meta_group_state_load(b, "g", &got, &n), 0);
	assert_int_equal(n, 1);
	meta_group_states_free(got, n);
	/* Deletes: a stale epoch, and "free or mine" by a non-holder, are
	 * refused; the holder's go through. */
	int64_t deleted = -1;
	assert_int_equal(meta_group_delete_offsets_fenced(b, "g", &sb, 1, NULL, NULL, 0, &deleted),
			 SL_EBUSY);
	assert_int_equal(meta_group_delete_offsets_fenced(b, "g", &sb, 0, NULL, NULL, 0, &deleted),
			 SL_EBUSY);
	assert_int_equal(meta_group_delete_offsets_fenced(a, "g", &sa2, 0, NULL, NULL, 0, &deleted), 0);
	assert_int_equal(deleted, 2);
	assert_int_equal(meta_group_state_load(b, NULL, &got, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(got[0].group_id, "h");
	meta_group_states_free(got, n);
	/* "free": a group nobody ever leased. */
	assert_int_equal(meta_group_delete_offsets_fenced(b, "h", &sb, 0, NULL, NULL, 0, &deleted), 0);
	assert_int_equal(deleted, 1);
	/* Without offsets, the holder's forget deletes the membership. */
	st.group_id = "g";
	assert_int_equal(meta_group_state_store(a, &st, 2), 0);
	assert_int_equal(meta_group_forget(a, "g", &sa2, 2), 0);
	assert_int_equal(meta_group_state_load(b, "g", &got, &n), 0);
	assert_int_equal(n, 0);
	/* Abandoned groups (meta_group_states_expire): the membership of a
	 * group without offsets whose lease has been free for idle_ms goes
	 * ("never": no lease ever); a held lease ("g"), stored offsets
	 * ("k") or a recent update (all, at first) keep it. */
	lease_one(a, &sa2, META_LEASE_GROUP_PREFIX "g", 30000, false, 2, sa2.node_id);
	char *const kept[] = { "g", "k", "never" };
	for (size_t i = 0; i < 3; i++) {
		st.group_id = kept[i];
		assert_int_equal(meta_group_state_store(a, &st, i == 0 ? 2 : 0), 0);
	}
	struct meta_offset_commit k_row = { .group_id = "k", .tid = tid, .partition = 0,
					    .committed_offset = 3, .leader_epoch = -1,
					    .commit_timestamp_ms = 1000 };
	assert_int_equal(meta_offset_commit(a, &k_row, 1), 0);
	int64_t expired = -1;
	assert_int_equal(meta_group_states_expire(b, 60000, &expired), 0);
	assert_int_equal(expired, 0);
	usleep(50 * 1000);
	assert_int_equal(meta_group_states_expire(b, 20, &expired), 0);
	assert_int_equal(expired, 1);
	assert_int_equal(meta_group_state_load(b, NULL, &got, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(got[0].group_id, "g");
	assert_string_equal(got[1].group_id, "k");
	meta_group_states_free(got, n);
	meta_close(a);
	meta_close(b);
}

/* A store call on a thread of its own, to see whether it finishes while
 * another session holds a lock (without hanging the test when not). */
struct bg_call {
	struct meta *m;
	const struct meta_agent *self;
	struct meta_lease *leases;     /* a sync of these, or */
	size_t n;
	const struct meta_group_state *st; /* a fenced membership store */
	int64_t epoch;
	int rc;
	volatile bool done;
	pthread_t th;
};

static void *bg_call_run(void *arg)
{
	struct bg_call *c = arg;
	c->rc = c->st ? meta_group_state_store(c->m, c->st, c->epoch)
		      : meta_leases_sync(c->m, c->self, 3000, c->leases, c->n);
	c->done = true;
	return NULL;
}

static void bg_start(struct bg_call *c)
{
	c->done = false;
	assert_int_equal(pthread_create(&c->th, NULL, bg_call_run, c), 0);
}

/* Whether it finished within ms. */
static bool bg_done_within(struct bg_call *c, int ms)
{
	for (int i = 0; i < ms / 10 && !c->done; i++)
		usleep(10 * 1000);
	return c->done;
}

/* PostgreSQL: a fenced write blocked inside its transaction (here on a
 * group_state row another session holds) stops neither its agent's
 * renewal of that lease nor of the others in the same sync; another
 * agent's take of it, once expired, waits for the next sync while the
 * write is open (the sync's other leases are taken), so the write
 * either commits under the old epoch or sees the new one. */
static void test_lease_sync_not_held_by_fenced_write(void **state)
{
	if (tb != TB_POSTGRES)
		skip();
	struct meta *a, *b;
	struct meta_agent sa, sb;
	two_agents(&a, &b, &sa, &sb);
	struct meta_lease mine[2] = { { .name = META_LEASE_GROUP_PREFIX "g" }, { .name = "job/a" } };
	assert_int_equal(meta_leases_sync(a, &sa, 3000, mine, 2), 0);
	assert_int_equal(mine[0].epoch, 1);
	uint8_t blob[4] = { 1, 2, 3, 4 };
	struct meta_group_state st = { .group_id = "g", .generation = 1, .protocol_type = "consumer",
				       .members = blob, .members_len = sizeof blob };
	assert_int_equal(meta_group_state_store(a, &st, 1), 0);

	tb_pg_exec(tb_pg, "BEGIN");
	tb_pg_exec(tb_pg, "SELECT 1 FROM group_state WHERE group_id = 'g' FOR UPDATE");
	st.generation = 2;
	struct bg_call w = { .m = a, .st = &st, .epoch = 1 };
	bg_start(&w);
	assert_false(bg_done_within(&w, 300)); /* blocked on the row */
	struct bg_call renew = { .m = a, .self = &sa, .leases = mine, .n = 2 };
	bg_start(&renew);
	bool renewed = bg_done_within(&renew, 3000);
	/* a's hold runs out (100 ms), and b asks for it with another lease */
	struct meta_lease short_hold = { .name = META_LEASE_GROUP_PREFIX "g" };
	if (renewed)
		assert_int_equal(meta_leases_sync(a, &sa, 100, &short_hold, 1), 0);
	usleep(200 * 1000);
	struct meta_lease theirs[2] = { { .name = META_LEASE_GROUP_PREFIX "g" }, { .name = "job/b" } };
	struct bg_call take = { .m = b, .self = &sb, .leases = theirs, .n = 2 };
	bool took = false;
	if (renewed) {
		bg_start(&take);
		took = bg_done_within(&take, 3000);
	}
	tb_pg_exec(tb_pg, "ROLLBACK");
	pthread_join(w.th, NULL);
	pthread_join(renew.th, NULL);
	if (renewed)
		pthread_join(take.th, NULL);
	assert_true(renewed);
	assert_int_equal(renew.rc, 0);
	assert_int_equal(mine[0].epoch, 1);
	assert_int_equal(mine[1].epoch, 1);
	assert_int_equal(short_hold.epoch, 1);
	assert_true(took);
	assert_int_equal(take.rc, 0);
	assert_int_equal(theirs[0].epoch, 0); /* left for the next sync */
	assert_int_equal(theirs[0].holder, -1);
	assert_int_equal(theirs[1].epoch, 1);
	/* The write went in under the epoch it was fenced by. */
	assert_int_equal(w.rc, 0);
	struct meta_group_state *got;
	size_t n;
	assert_int_equal(meta_group_state_load(b, "g", &got, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(got[0].generation, 2);
	meta_group_states_free(got, n);
	/* Now b takes it; a's late write is refused. */
	assert_int_equal(meta_leases_sync(b, &sb, 3000, theirs, 2), 0);
	assert_int_equal(theirs[0].epoch, 2);
	st.generation = 3;
	assert_int_equal(meta_group_state_store(a, &st, 1), SL_EBUSY);
	meta_close(a);
	meta_close(b);
}

/* What meta_listen_read reported, copied out of the callback. */
struct heard {
	int catalog;
	size_t commits;
	char key[META_OBJECT_KEY_BYTES];
	uint64_t size;
	struct meta_notice_batch rows[1024];
	size_t n;
	int64_t log_start_tid, log_start;
	int32_t log_start_partition;
};

static void hear(void *arg, const struct meta_notice *notice)
{
	struct heard *h = arg;
	if (notice->kind == META_NOTICE_CATALOG) {
		h->catalog++;
		return;
	}
	if (notice->kind == META_NOTICE_LOG_START) {
		h->log_start_tid = notice->tid;
		h->log_start_partition = notice->partition;
		h->log_start = notice->log_start_offset;
		return;
	}
	h->commits++;
	snprintf(h->key, sizeof h->key, "%s", notice->object_key);
	h->size = notice->object_size;
	for (size_t i = 0; i < notice->n && h->n < 1024; i++)
		h->rows[h->n++] = notice->batches[i];
}

/* Reads notices until want() holds, waiting on the socket (5 s at most). */
static void listen_until(struct meta *m, struct heard *h, bool (*want)(const struct heard *))
{
	for (int i = 0; i < 50 && !want(h); i++) {
		struct pollfd pfd = { meta_listen_fd(m), POLLIN, 0 };
		assert_true(pfd.fd >= 0);
		poll(&pfd, 1, 100);
		assert_int_equal(meta_listen_read(m, hear, h), 0);
	}
	assert_true(want(h));
}

static bool heard_catalog(const struct heard *h) { return h->catalog > 0; }
static bool heard_two_rows(const struct heard *h) { return h->n >= 2; }
static bool heard_big(const struct heard *h) { return h->n >= 600; }
static bool heard_log_start(const struct heard *h) { return h->log_start > 0; }

/* Change notifications: another store's topic change, commits and log
 * start moves reach a listener, each batch with its offsets (a big
 * object's rows in several notices, each under PostgreSQL's payload
 * limit); the listener's own commits do not; after meta_listen_start
 * again it hears on. An embedded store has none. */
static void test_notices(void **state)
{
	struct meta *a = open_store(), *b = open_store();
	if (!meta_shared(a)) {
		assert_int_equal(meta_listen_start(a), SL_EUNSUPPORTED);
		assert_int_equal(meta_listen_fd(a), -1);
		goto out_close;
	}
	static struct heard h;
	memset(&h, 0, sizeof h);
	assert_int_equal(meta_listen_start(a), 0);
	int64_t tid = create_topic(b, "heard", 2);
	listen_until(a, &h, heard_catalog);

	/* a's own commit first: not reported, but it moves the offsets. */
	struct meta_commit_batch mine = mk_batch(tid, 0, 4, 0, 100, 1);
	assert_int_equal(meta_commit_object(a, "objects/mine", 100, &mine, 1), 0);
	struct meta_commit_batch theirs[2] = { mk_batch(tid, 0, 2, 0, 50, 7),
					       mk_batch(tid, 1, 0, 50, 60, 8) };
	assert_int_equal(meta_commit_object(b, "objects/theirs", 110, theirs, 2), 0);
	listen_until(a, &h, heard_two_rows);
	assert_int_equal(h.commits, 1);
	assert_string_equal(h.key, "objects/theirs");
	assert_int_equal(h.size, 110);
	assert_int_equal(h.n, 2);
	assert_int_equal(h.rows[0].tid, tid);
	assert_int_equal(h.rows[0].partition, 0);
	assert_int_equal(h.rows[0].base_offset, 5);
	assert_int_equal(h.rows[0].last_offset, 7);
	assert_int_equal(h.rows[0].byte_offset, 0);
	assert_int_equal(h.rows[0].length, 50);
	assert_int_equal(h.rows[0].record_count, 3);
	assert_int_equal(h.rows[0].max_timestamp, 7);
	assert_int_equal(h.rows[1].partition, 1);
	assert_int_equal(h.rows[1].base_offset, 0);
	assert_int_equal(h.rows[1].last_offset, 0);
	assert_int_equal(h.rows[1].byte_offset, 50);
	/* Each row tells its partition's LSO after the commit (no open
	 * transaction: the high watermark), for other agents' read_committed
	 * fetches. */
	assert_int_equal(h.rows[0].last_stable_offset, 8);
	assert_int_equal(h.rows[1].last_stable_offset, 1);

	/* Subscribed again (a reconnect): a big object, in several notices. */
	assert_int_equal(meta_listen_start(a), 0);
	memset(&h, 0, sizeof h);
	static struct meta_commit_batch big[600];
	for (size_t i = 0; i < 600; i++)
		big[i] = mk_batch(tid, 1, 0, 1000 * i, 1000, INT64_C(1) << 40);
	assert_int_equal(meta_commit_object(b, "objects/big", 600000, big, 600), 0);
	listen_until(a, &h, heard_big);
	assert_true(h.commits >= 3);
	assert_int_equal(h.n, 600);
	for (size_t i = 0; i < 600; i++) {
		assert_int_equal(h.rows[i].base_offset, 1 + (int64_t)i);
		assert_int_equal(h.rows[i].byte_offset, 1000 * i);
	}
	assert_string_equal(h.key, "objects/big");

	/* A log start moved (DeleteRecords, retention). */
	assert_int_equal(meta_partition_set_log_start(b, tid, 1, 300), 0);
	listen_until(a, &h, heard_log_start);
	assert_int_equal(h.log_start_tid, tid);
	assert_int_equal(h.log_start_partition, 1);
	assert_int_equal(h.log_start, 300);
out_close:
	meta_close(a);
	meta_close(b);
}

static struct acl_binding acl_row(const char *name, int8_t pattern, const char *principal, int8_t op)
{
	return (struct acl_binding){ ACL_RESOURCE_TOPIC, pattern, op, ACL_PERM_ALLOW, (char *)name,
				     (char *)principal, (char *)"*" };
}

/* ACLs: stored and listed by another connection, a version that moves
 * with every change (and a read that skips the rows when it has not),
 * duplicates kept once, exact deletes. */
static void test_acls(void **state)
{
	(void)state;
	struct meta *m = open_store(), *other = open_store();
	struct acl_binding *got;
	size_t n;
	int64_t v0, v1, v2;
	assert_int_equal(meta_acl_read(other, -1, &v0, &got, &n), 0);
	assert_int_equal(n, 0);
	struct acl_binding add[3] = {
		acl_row("orders", ACL_PATTERN_LITERAL, "User:alice", ACL_OP_READ),
		acl_row("orders-", ACL_PATTERN_PREFIXED, "User:bob, with 'quotes'", ACL_OP_WRITE),
		acl_row("orders", ACL_PATTERN_LITERAL, "User:alice", ACL_OP_READ),
	};
	assert_int_equal(meta_acl_alter(m, add, 3, NULL, 0), 0);
	assert_int_equal(meta_acl_read(other, v0, &v1, &got, &n), 0);
	assert_true(v1 != v0);
	assert_int_equal(n, 2);
	bool saw_bob = false;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(got[i].principal, "User:bob, with 'quotes'")) {
			saw_bob = true;
			assert_int_equal(got[i].pattern_type, ACL_PATTERN_PREFIXED);
			assert_int_equal(got[i].operation, ACL_OP_WRITE);
			assert_int_equal(got[i].permission, ACL_PERM_ALLOW);
			assert_int_equal(got[i].resource_type, ACL_RESOURCE_TOPIC);
			assert_string_equal(got[i].resource_name, "orders-");
			assert_string_equal(got[i].host, "*");
		}
	assert_true(saw_bob);
	acl_bindings_free(got, n);
	/* Nothing changed: the version alone. */
	assert_int_equal(meta_acl_read(other, v1, &v2, &got, &n), 0);
	assert_int_equal(v2, v1);
	assert_null(got);
	/* Remove one and one that is not there. */
	struct acl_binding rm[2] = { add[0], acl_row("none", ACL_PATTERN_LITERAL, "User:x", ACL_OP_READ) };
	assert_int_equal(meta_acl_alter(m, NULL, 0, rm, 2), 0);
	assert_int_equal(meta_acl_read(other, v1, &v2, &got, &n), 0);
	assert_true(v2 != v1);
	assert_int_equal(n, 1);
	assert_string_equal(got[0].resource_name, "orders-");
	acl_bindings_free(got, n);
	meta_close(other);
	meta_close(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_urls, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_url_redact, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_topics, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_commit_offsets, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_timestamps_and_log_start, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_deleted_topic, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_trim_restarts_grace, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_deleted_topic_during_merge, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_deleted_topic_chunks, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_gc_objects, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_gc_fence, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_merge_swap, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_merge_swap_chunks, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_merge_keeps_attributes, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_merge_join_attributes, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_compact_swap, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_clean_bytes, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_partition_trim, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_open_existing, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_producer_ids, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_producer_checks, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_producer_state_upgrade, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_commit_thread_races_reads, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_two_agents_commit, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_registry, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_catalog_changes, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_scram_credentials, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_leases, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_lease_sync_not_held_by_fenced_write, tb_setup,
						tb_teardown),
		cmocka_unit_test_setup_teardown(test_reconnect_within_call_bound, tb_setup,
						tb_teardown),
		cmocka_unit_test_setup_teardown(test_failover_to_second_host, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_notices, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_acls, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_replica_assignments, tb_setup, tb_teardown),
	};
	return meta_backends_run("meta", tests, sizeof tests / sizeof tests[0]);
}
