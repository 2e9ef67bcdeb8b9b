/* test_meta_txn.c — transactions in the metadata store (docs/transactions.md,
 * sections 2-4), SQLite and (when a server is given: meta_backends.h)
 * PostgreSQL: the coordinator's records (persist with the version read,
 * lease fencing, delete, load), transactional batches checked in the
 * commit (each refusal's result), markers applied only to the
 * transaction they were built for (stale and duplicate markers refused
 * without an offset), open transactions holding the last stable offset
 * back, aborted transactions recorded, read and trimmed, transactional
 * offsets materialized at COMMIT (ordered against plain commits) and
 * dropped at ABORT, retention stopping at an open transaction, the
 * upgrade from the schema before transactions, and two agents committing
 * a transaction's batches, plain batches and duplicate markers at once. */
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
#include <pthread.h>
#include <unistd.h>

#include "meta_backends.h"

#include "base/clock.h"
#include "base/err.h"
#include "base/limits.h"
#include "meta/meta.h"

static struct meta *open_store(void)
{
	struct meta *m = NULL;
	assert_int_equal(meta_open(tb_url, &m), 0);
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

/* A plain batch of delta + 1 records. */
static struct meta_commit_batch mk_plain(int64_t tid, int32_t p, int32_t delta)
{
	struct meta_commit_batch b;
	memset(&b, 0, sizeof b);
	b.tid = tid;
	b.partition = p;
	b.byte_offset = 0;
	b.length = 100;
	b.record_count = delta + 1;
	b.last_offset_delta = delta;
	b.max_timestamp = clock_wall_ms();
	b.producer_id = -1;
	b.producer_epoch = -1;
	b.base_sequence = -1;
	b.last_sequence = -1;
	b.base_offset = 12345;
	return b;
}

/* An idempotent (kind DATA) batch. */
static struct meta_commit_batch mk_idem(int64_t tid, int32_t p, int32_t delta, int64_t pid,
					int16_t epoch, int32_t seq)
{
	struct meta_commit_batch b = mk_plain(tid, p, delta);
	b.producer_id = pid;
	b.producer_epoch = epoch;
	b.base_sequence = seq;
	b.last_sequence = seq + delta;
	return b;
}

static struct meta_commit_batch mk_txn(int64_t tid, int32_t p, int32_t delta, int64_t pid,
				       int16_t epoch, int32_t seq, const char *id)
{
	struct meta_commit_batch b = mk_idem(tid, p, delta, pid, epoch, seq);
	b.kind = META_BATCH_TXN_DATA;
	b.attributes = META_BATCH_ATTR_TRANSACTIONAL;
	b.transactional_id = id;
	return b;
}

static struct meta_commit_batch mk_marker(int64_t tid, int32_t p, int64_t pid, int16_t epoch,
					  const char *id, int64_t txn_seq, bool commit)
{
	struct meta_commit_batch b = mk_plain(tid, p, 0);
	b.length = 78;
	b.producer_id = pid;
	b.producer_epoch = epoch;
	b.kind = META_BATCH_MARKER;
	b.attributes = META_BATCH_ATTR_TRANSACTIONAL | META_BATCH_ATTR_CONTROL;
	b.transactional_id = id;
	b.txn_seq = txn_seq;
	b.marker_commit = commit;
	return b;
}

static int key_counter;

/* Commits one batch in an object of its own; returns the batch (result,
 * offset, LSO set). */
static struct meta_commit_batch commit1(struct meta *m, struct meta_commit_batch b)
{
	char key[64];
	snprintf(key, sizeof key, "txn-%d", key_counter++);
	assert_int_equal(meta_commit_object(m, key, 1000, &b, 1), 0);
	return b;
}

static struct meta_partition part(struct meta *m, int64_t tid, int32_t p)
{
	struct meta_partition mp;
	assert_int_equal(meta_partition_get(m, tid, p, &mp), 0);
	return mp;
}

/* A record of the id's transaction (partitions and groups given). */
struct rec {
	struct txn_record r;
	struct txn_tp tps[8];
	char *groups[4];
};

static void rec_init(struct rec *x, int64_t pid, int16_t epoch, enum txn_state state, int64_t seq)
{
	memset(x, 0, sizeof *x);
	x->r.producer_id = pid;
	x->r.last_producer_id = -1;
	x->r.producer_epoch = epoch;
	x->r.last_producer_epoch = -1;
	x->r.timeout_ms = 60000;
	x->r.state = state;
	x->r.txn_seq = seq;
	x->r.start_ms = state == TXN_EMPTY ? -1 : 1000;
	x->r.update_ms = 2000;
	x->r.partitions = x->tps;
	x->r.groups = x->groups;
}

static void rec_tp(struct rec *x, int64_t tid, int32_t p)
{
	x->tps[x->r.partition_count++] = (struct txn_tp){ tid, p };
}

static void rec_group(struct rec *x, char *group)
{
	x->groups[x->r.group_count++] = group;
}

static void persist(struct meta *m, const char *id, struct rec *x, int64_t *version)
{
	int64_t before = *version;
	assert_int_equal(meta_txn_persist(m, id, &x->r, 0, version), 0);
	assert_int_equal(*version, before + 1);
}

/* A record with one partition and no group. */
static void persist1(struct meta *m, const char *id, int64_t pid, int16_t epoch,
		     enum txn_state state, int64_t seq, int64_t tid, int32_t p, int64_t *version)
{
	struct rec x;
	rec_init(&x, pid, epoch, state, seq);
	rec_tp(&x, tid, p);
	persist(m, id, &x, version);
}

static int64_t committed_offset(struct meta *m, const char *group, int64_t tid, int32_t p)
{
	struct meta_committed_offset *o;
	size_t n;
	int64_t v = -1;
	assert_int_equal(meta_offset_fetch(m, group, &o, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (o[i].tid == tid && o[i].partition == p)
			v = o[i].committed_offset;
	meta_committed_offsets_free(o, n);
	return v;
}

static int64_t count_rows(const char *sql, const char *arg)
{
	return tb_query_i64(sql, arg);
}

static bool want_prefix_a(void *arg, const char *id)
{
	(void)arg;
	return id[0] == 'a';
}

/* The coordinator's records: written only with the version read (a
 * stale writer is refused, nothing written), with the lease's epoch when
 * one is given, loaded with their partitions and groups, deleted whole. */
static void test_records(void **state)
{
	(void)state;
	struct meta *m = open_store(), *other = open_store();
	struct rec a, b;
	rec_init(&a, 100, 3, TXN_ONGOING, 7);
	rec_tp(&a, 5, 1);
	rec_tp(&a, 5, 2);
	rec_group(&a, "g1");
	int64_t va = 0, vb = 0;
	persist(m, "alpha", &a, &va);
	rec_init(&b, 101, 0, TXN_EMPTY, 0);
	persist(other, "beta", &b, &vb);

	/* Another writer's version: refused. */
	int64_t stale = 0;
	assert_int_equal(meta_txn_persist(other, "alpha", &b.r, 0, &stale), SL_EBUSY);
	assert_int_equal(stale, 0);
	stale = 5;
	assert_int_equal(meta_txn_persist(other, "alpha", &b.r, 0, &stale), SL_EBUSY);
	assert_int_equal(meta_txn_persist(m, "", &b.r, 0, &stale), SL_EINVAL);

	struct meta_txn_row *rows;
	size_t n;
	assert_int_equal(meta_txn_load(other, NULL, NULL, &rows, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].transactional_id, "alpha");
	assert_int_equal(rows[0].version, 1);
	assert_int_equal(rows[0].r.producer_id, 100);
	assert_int_equal(rows[0].r.producer_epoch, 3);
	assert_int_equal(rows[0].r.state, TXN_ONGOING);
	assert_int_equal(rows[0].r.txn_seq, 7);
	assert_int_equal(rows[0].r.timeout_ms, 60000);
	assert_int_equal(rows[0].r.start_ms, 1000);
	assert_int_equal(rows[0].r.update_ms, 2000);
	assert_int_equal(rows[0].r.last_producer_id, -1);
	assert_int_equal(rows[0].r.partition_count, 2);
	assert_int_equal(rows[0].r.partitions[1].partition, 2);
	assert_int_equal(rows[0].r.group_count, 1);
	assert_string_equal(rows[0].r.groups[0], "g1");
	assert_string_equal(rows[1].transactional_id, "beta");
	assert_int_equal(rows[1].r.partition_count, 0);
	assert_int_equal(rows[1].r.start_ms, -1);
	meta_txn_rows_free(rows, n);
	assert_int_equal(meta_txn_load(other, want_prefix_a, NULL, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].transactional_id, "alpha");
	meta_txn_rows_free(rows, n);
	/* The open ones only (beta is Empty), with their states alone. */
	assert_int_equal(meta_txn_open_list(other, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].transactional_id, "alpha");
	assert_int_equal(rows[0].r.state, TXN_ONGOING);
	assert_int_equal(rows[0].r.partition_count, 0);
	meta_txn_rows_free(rows, n);

	/* A new record replaces partitions and groups. */
	persist1(other, "alpha", 100, 3, TXN_PREPARE_COMMIT, 7, 5, 2, &va);
	assert_int_equal(va, 2);
	assert_int_equal(meta_txn_open_list(m, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].r.state, TXN_PREPARE_COMMIT);
	meta_txn_rows_free(rows, n);
	assert_int_equal(count_rows("SELECT count(*) FROM txn_partitions WHERE transactional_id = $1",
				    "alpha"), 1);
	assert_int_equal(count_rows("SELECT count(*) FROM txn_groups WHERE transactional_id = $1",
				    "alpha"), 0);

	/* Fenced by the id's lease: a write at an epoch the lease is not at
	 * is refused. */
	struct meta_agent self = { .node_id = 1, .incarnation = 77 };
	struct meta_cluster_view view;
	assert_int_equal(meta_agent_register(m, &self, 30000, &view), 0);
	free(view.agents);
	struct meta_lease l = { .name = "txn/beta" };
	assert_int_equal(meta_leases_sync(m, &self, 30000, &l, 1), 0);
	assert_true(l.epoch > 0);
	int64_t v = vb;
	assert_int_equal(meta_txn_persist(m, "beta", &b.r, l.epoch + 1, &v), SL_EBUSY);
	assert_int_equal(meta_txn_persist(m, "beta", &b.r, l.epoch, &v), 0);
	assert_int_equal(v, vb + 1);
	vb = v;
	assert_int_equal(meta_txn_load(m, NULL, NULL, &rows, &n), 0);
	assert_int_equal(rows[1].coord_epoch, l.epoch);
	meta_txn_rows_free(rows, n);

	/* Delete: only at the stored version. */
	assert_int_equal(meta_txn_delete(m, "beta", 0, vb - 1), SL_EBUSY);
	assert_int_equal(meta_txn_delete(m, "beta", 0, 0), SL_EINVAL);
	assert_int_equal(meta_txn_delete(m, "beta", 0, vb), 0);
	assert_int_equal(meta_txn_delete(m, "beta", 0, vb), SL_EBUSY);
	assert_int_equal(meta_txn_delete(m, "alpha", 0, va), 0);
	assert_int_equal(meta_txn_load(m, NULL, NULL, &rows, &n), 0);
	assert_int_equal(n, 0);
	assert_null(rows);
	assert_int_equal(meta_txn_open_list(m, &rows, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(count_rows("SELECT count(*) FROM txn_partitions WHERE transactional_id = $1",
				    "alpha"), 0);
	meta_close(m);
	meta_close(other);
}

static bool want_none(void *arg, const char *id)
{
	(void)arg;
	(void)id;
	return false;
}

/* meta_txn_load_one: the one id's record with its own partitions and
 * groups (not a neighbour's sharing its prefix), nothing for an id not
 * stored, one the filter refuses or one deleted; a bad id refused. */
static void test_load_one(void **state)
{
	(void)state;
	struct meta *m = open_store();
	struct rec a, ab, b;
	rec_init(&a, 100, 3, TXN_PREPARE_ABORT, 7);
	rec_tp(&a, 5, 1);
	rec_tp(&a, 6, 0);
	rec_group(&a, "g1");
	rec_group(&a, "g2");
	int64_t va = 0, vab = 0, vb = 0;
	persist(m, "alpha", &a, &va);
	rec_init(&ab, 102, 0, TXN_ONGOING, 1);
	rec_tp(&ab, 5, 3);
	rec_group(&ab, "g3");
	persist(m, "alphabet", &ab, &vab);
	rec_init(&b, 101, 0, TXN_EMPTY, 0);
	persist(m, "beta", &b, &vb);
	persist(m, "beta", &b, &vb);

	struct meta_txn_row *rows;
	size_t n;
	assert_int_equal(meta_txn_load_one(m, "alpha", NULL, NULL, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].transactional_id, "alpha");
	assert_int_equal(rows[0].version, 1);
	assert_int_equal(rows[0].r.producer_id, 100);
	assert_int_equal(rows[0].r.producer_epoch, 3);
	assert_int_equal(rows[0].r.state, TXN_PREPARE_ABORT);
	assert_int_equal(rows[0].r.txn_seq, 7);
	assert_int_equal(rows[0].r.partition_count, 2);
	assert_true(rows[0].r.partitions[0].tid == 5 && rows[0].r.partitions[0].partition == 1);
	assert_true(rows[0].r.partitions[1].tid == 6 && rows[0].r.partitions[1].partition == 0);
	assert_int_equal(rows[0].r.group_count, 2);
	assert_string_equal(rows[0].r.groups[0], "g1");
	assert_string_equal(rows[0].r.groups[1], "g2");
	meta_txn_rows_free(rows, n);
	assert_int_equal(meta_txn_load_one(m, "beta", NULL, NULL, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].version, 2);
	assert_int_equal(rows[0].r.partition_count, 0);
	assert_int_equal(rows[0].r.group_count, 0);
	meta_txn_rows_free(rows, n);

	assert_int_equal(meta_txn_load_one(m, "alph", NULL, NULL, &rows, &n), 0);
	assert_int_equal(n, 0);
	assert_null(rows);
	assert_int_equal(meta_txn_load_one(m, "alpha", want_none, NULL, &rows, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(meta_txn_load_one(m, "alpha", want_prefix_a, NULL, &rows, &n), 0);
	assert_int_equal(n, 1);
	meta_txn_rows_free(rows, n);
	char too_long[SL_TXN_ID_BYTES_MAX + 2];
	memset(too_long, 'x', sizeof too_long - 1);
	too_long[sizeof too_long - 1] = 0;
	assert_int_equal(meta_txn_load_one(m, "", NULL, NULL, &rows, &n), SL_EINVAL);
	assert_int_equal(meta_txn_load_one(m, too_long, NULL, NULL, &rows, &n), SL_EINVAL);

	assert_int_equal(meta_txn_delete(m, "alpha", 0, va), 0);
	assert_int_equal(meta_txn_load_one(m, "alpha", NULL, NULL, &rows, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(meta_txn_load_one(m, "alphabet", NULL, NULL, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].r.partition_count, 1);
	assert_int_equal(rows[0].r.partitions[0].partition, 3);
	meta_txn_rows_free(rows, n);
	meta_close(m);
}

/* Transactional data in the commit: each refusal with its result (no
 * offset, bytes not live), and an accepted batch opens the transaction
 * in the partition, holding the LSO at its first offset. */
static void test_txn_data(void **state)
{
	(void)state;
	struct meta *m = open_store();
	int64_t t = create_topic(m, "td", 3);
	int64_t v = 0;
	persist1(m, "tx", 100, 3, TXN_ONGOING, 1, t, 0, &v);

	struct meta_commit_batch b = commit1(m, mk_plain(t, 0, 1));
	assert_int_equal(b.last_stable_offset, 2);
	assert_int_equal(part(m, t, 0).last_stable_offset, 2);

	/* One object: refused batches keep no bytes live. */
	struct meta_commit_batch o[] = {
		mk_txn(t, 0, 2, 100, 3, 0, "tx"),     /* 2..4: opens the transaction */
		mk_txn(t, 0, 0, 100, 3, 0, "nope"),   /* no such id */
		mk_txn(t, 0, 0, 99, 3, 0, "tx"),      /* another producer id */
		mk_txn(t, 0, 0, 100, 2, 3, "tx"),     /* an older epoch */
		mk_txn(t, 0, 0, 100, 4, 0, "tx"),     /* a newer one */
		mk_txn(t, 1, 0, 100, 3, 0, "tx"),     /* not added */
		mk_idem(t, 0, 0, 100, 3, 3),          /* outside its open transaction */
		mk_idem(t, 1, 0, 100, 3, 0),          /* none open there: fine */
		mk_idem(t, 0, 0, 555, 0, 0),          /* another producer: 5 */
		mk_txn(t, 0, 0, 100, 3, 3, "tx"),     /* continues: 6 */
		mk_txn(t, 0, 2, 100, 3, 0, "tx"),     /* its retry: a duplicate */
	};
	size_t n = sizeof o / sizeof o[0];
	for (size_t i = 0; i < n; i++)
		o[i].byte_offset = 100 * i;
	assert_int_equal(meta_commit_object(m, "td-1", 2000, o, n), 0);
	static const enum meta_batch_result want[] = {
		META_BATCH_APPENDED, META_BATCH_TXN_UNKNOWN, META_BATCH_TXN_UNKNOWN,
		META_BATCH_FENCED, META_BATCH_FENCED, META_BATCH_TXN_NOT_ADDED,
		META_BATCH_TXN_OPEN, META_BATCH_APPENDED, META_BATCH_APPENDED, META_BATCH_APPENDED,
		META_BATCH_DUPLICATE,
	};
	static const int64_t want_offset[] = { 2, -1, -1, -1, -1, -1, -1, 0, 5, 6, 2 };
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(o[i].result, want[i]);
		assert_int_equal(o[i].base_offset, want_offset[i]);
	}
	assert_int_equal(count_rows("SELECT live_bytes FROM objects WHERE key = $1", "td-1"), 400);
	/* The LSO stays at the transaction's first offset; the HWM moves. */
	assert_int_equal(o[0].last_stable_offset, 2);
	assert_int_equal(o[9].last_stable_offset, 2);
	assert_int_equal(o[7].last_stable_offset, 1);
	struct meta_partition p0 = part(m, t, 0);
	assert_int_equal(p0.high_watermark, 7);
	assert_int_equal(p0.last_stable_offset, 2);
	struct meta_partition *parts;
	size_t np;
	assert_int_equal(meta_partition_list(m, &parts, &np), 0);
	assert_int_equal(np, 3);
	assert_int_equal(parts[0].last_stable_offset, 2);
	assert_int_equal(parts[1].last_stable_offset, 1);
	free(parts);
	assert_int_equal(count_rows("SELECT count(*) FROM batches WHERE attributes = $1", "16"), 2);

	/* Completing: NOT_ENOUGH_REPLICAS (retriable); not Ongoing:
	 * INVALID_TXN_STATE. */
	persist1(m, "tx", 100, 3, TXN_PREPARE_COMMIT, 1, t, 0, &v);
	assert_int_equal(commit1(m, mk_txn(t, 0, 0, 100, 3, 4, "tx")).result,
			 META_BATCH_TXN_COMPLETING);
	struct rec x;
	rec_init(&x, 100, 3, TXN_COMPLETE_COMMIT, 1);
	persist(m, "tx", &x, &v);
	b = commit1(m, mk_txn(t, 0, 0, 100, 3, 4, "tx"));
	assert_int_equal(b.result, META_BATCH_TXN_NOT_ADDED);
	assert_int_equal(b.base_offset, -1);
	assert_int_equal(part(m, t, 0).high_watermark, 7);

	/* A malformed transactional batch is the caller's bug. */
	struct meta_commit_batch bad = mk_txn(t, 0, 0, 100, 3, 4, NULL);
	assert_int_equal(meta_commit_object(m, "td-bad", 100, &bad, 1), SL_EINVAL);
	meta_close(m);
}

/* Each appended batch reports the LSO as of its own end: another agent
 * applies a commit's rows as notices bring them (one object's rows may
 * come in several payloads) and raises its LSO with the last row it
 * applied, so a row before an ABORT marker must not carry an LSO past
 * the marker's transaction. */
static void test_lso_per_batch(void **state)
{
	(void)state;
	struct meta *m = open_store();
	int64_t t = create_topic(m, "lpb", 1);
	struct rec x;
	rec_init(&x, 200, 0, TXN_ONGOING, 1);
	rec_tp(&x, t, 0);
	int64_t v = 0;
	persist(m, "c", &x, &v);
	struct meta_commit_batch b = commit1(m, mk_plain(t, 0, 0));   /* 0 */
	b = commit1(m, mk_txn(t, 0, 0, 200, 0, 0, "c"));               /* 1: opens */
	assert_int_equal(b.last_stable_offset, 1);
	persist1(m, "c", 200, 0, TXN_PREPARE_ABORT, 1, t, 0, &v);
	/* One object: a plain batch, the ABORT, another plain batch. */
	struct meta_commit_batch o[] = {
		mk_plain(t, 0, 1),                          /* 2..3 */
		mk_marker(t, 0, 200, 0, "c", 1, false),     /* 4 */
		mk_plain(t, 0, 0),                          /* 5 */
	};
	o[1].byte_offset = 100;
	o[2].byte_offset = 200;
	assert_int_equal(meta_commit_object(m, "lpb-1", 300, o, 3), 0);
	assert_int_equal(o[0].base_offset, 2);
	assert_int_equal(o[1].base_offset, 4);
	assert_int_equal(o[1].aborted[0].first_offset, 1);
	assert_int_equal(o[2].base_offset, 5);
	assert_int_equal(o[0].last_stable_offset, 1); /* "c" still open at 4 */
	assert_int_equal(o[1].last_stable_offset, 5);
	assert_int_equal(o[2].last_stable_offset, 6);
	assert_int_equal(part(m, t, 0).last_stable_offset, 6);
	meta_close(m);
}

/* One transactional id, two producer ids open in one partition: producer
 * id old's transaction (0..1) was never closed there when the id moved
 * to old + 1 (a rotation at the exhausted epoch; the coordinator rotates
 * only once every marker is in, so this is reached here by writing the
 * records directly). old + 1's marker (3) closes both: an ABORT records
 * each producer id's own aborted transaction with its own first offset
 * (the old code's second row of the same key failed the commit every
 * time), a COMMIT records old's as aborted (no marker can close it any
 * more; the old code recorded none, so its records read as committed);
 * the batch reports every one, the LSO passes both. */
static void two_producer_ids(struct meta *m, const char *topic, bool commit, int64_t old)
{
	const int64_t pid = old + 1;
	int64_t t = create_topic(m, topic, 1);
	const char *id = topic;
	int64_t v = 0;
	persist1(m, id, old, 32766, TXN_ONGOING, 1, t, 0, &v);
	struct meta_commit_batch b = commit1(m, mk_txn(t, 0, 1, old, 32766, 0, id)); /* 0..1 */
	assert_int_equal(b.result, META_BATCH_APPENDED);
	struct rec x;
	rec_init(&x, pid, 0, TXN_ONGOING, 2);
	x.r.last_producer_id = old;
	x.r.last_producer_epoch = 32766;
	rec_tp(&x, t, 0);
	persist(m, id, &x, &v);
	b = commit1(m, mk_txn(t, 0, 0, pid, 0, 0, id)); /* 2 */
	assert_int_equal(b.result, META_BATCH_APPENDED);
	assert_int_equal(part(m, t, 0).last_stable_offset, 0);
	x.r.state = commit ? TXN_PREPARE_COMMIT : TXN_PREPARE_ABORT;
	persist(m, id, &x, &v);
	b = commit1(m, mk_marker(t, 0, pid, 0, id, 2, commit)); /* 3 */
	assert_int_equal(b.result, META_BATCH_APPENDED);
	assert_int_equal(b.base_offset, 3);
	assert_int_equal(b.last_stable_offset, 4);
	assert_int_equal(part(m, t, 0).last_stable_offset, 4);
	struct meta_aborted_txn ab[4];
	size_t n;
	assert_int_equal(meta_aborted_txns(m, t, 0, 0, 4, ab, 4, &n), 0);
	if (commit) {
		assert_int_equal(b.n_aborted, 1);
		assert_int_equal(b.aborted[0].producer_id, old);
		assert_int_equal(b.aborted[0].first_offset, 0);
		assert_int_equal(b.aborted[0].last_offset, 3);
		assert_int_equal(n, 1);
	} else {
		/* The marker's own producer id's first. */
		assert_int_equal(b.n_aborted, 2);
		assert_int_equal(b.aborted[0].producer_id, pid);
		assert_int_equal(b.aborted[0].first_offset, 2);
		assert_int_equal(b.aborted[0].last_offset, 3);
		assert_int_equal(b.aborted[1].producer_id, old);
		assert_int_equal(b.aborted[1].first_offset, 0);
		assert_int_equal(b.aborted[1].last_offset, 3);
		assert_int_equal(n, 2);
		assert_int_equal(ab[1].producer_id, pid);
		assert_int_equal(ab[1].first_offset, 2);
		assert_int_equal(ab[1].last_offset, 3);
	}
	/* By first offset. */
	assert_int_equal(ab[0].producer_id, old);
	assert_int_equal(ab[0].first_offset, 0);
	assert_int_equal(ab[0].last_offset, 3);
	/* The feed has each (other agents' aborted indexes). */
	struct meta_aborted_feed feed[8];
	assert_int_equal(meta_aborted_txns_since(m, 0, feed, 8, &n), 0);
	size_t mine = 0;
	for (size_t i = 0; i < n; i++)
		mine += feed[i].tid == t;
	assert_int_equal(mine, commit ? 1 : 2);
	/* Nothing of the id is open any more. */
	assert_int_equal(count_rows("SELECT count(*) FROM partition_txns WHERE transactional_id = $1",
				    id), 0);
}

static void test_two_producer_ids(void **state)
{
	(void)state;
	struct meta *m = open_store();
	two_producer_ids(m, "tpa", false, 400);
	two_producer_ids(m, "tpc", true, 500);
	meta_close(m);
}

/* Markers: applied only to the transaction they were built for, once per
 * partition; COMMIT materializes the transaction's offsets (where newer
 * than the group's), ABORT records the aborted range and drops them; a
 * delayed marker of an earlier transaction is refused; the LSO never
 * falls. */
static void test_markers(void **state)
{
	(void)state;
	struct meta *m = open_store();
	int64_t t = create_topic(m, "mk", 2);
	int64_t lso_seen[2] = { 0, 0 };
#define LSO_RISES(bt)                                                                  \
	do {                                                                           \
		struct meta_commit_batch _b = (bt);                                    \
		if (_b.last_stable_offset >= 0) {                                      \
			assert_true(_b.last_stable_offset >= lso_seen[_b.partition]); \
			lso_seen[_b.partition] = _b.last_stable_offset;              \
		}                                                                      \
	} while (0)

	/* Transaction 1 of "c": partitions 0 and 1, group g. */
	struct rec x;
	rec_init(&x, 200, 0, TXN_ONGOING, 1);
	rec_tp(&x, t, 0);
	rec_tp(&x, t, 1);
	rec_group(&x, "g");
	int64_t v = 0;
	persist(m, "c", &x, &v);
	struct meta_commit_batch b;
	LSO_RISES(b = commit1(m, mk_plain(t, 0, 0)));                /* 0 */
	LSO_RISES(b = commit1(m, mk_txn(t, 0, 1, 200, 0, 0, "c")));  /* 1..2 */
	assert_int_equal(b.last_stable_offset, 1);
	LSO_RISES(b = commit1(m, mk_txn(t, 1, 0, 200, 0, 0, "c")));  /* 0 */
	assert_int_equal(b.last_stable_offset, 0);

	/* Offsets: (g, t, 0) pending at 10, then a plain commit of 5 after
	 * it (the plain one wins); (g, t, 1): a plain 3 before a pending 20
	 * (the pending one wins). A group not added is refused. */
	struct meta_offset_commit plain1 = { "g", t, 1, 3, -1, NULL, 1000 };
	assert_int_equal(meta_offset_commit(m, &plain1, 1), 0);
	struct meta_offset_commit pend[] = {
		{ "g", t, 0, 10, 1, "m0", 1001 },
		{ "g", t, 1, 20, 1, "m1", 1002 },
	};
	assert_int_equal(meta_txn_offset_commit(m, "c", 200, 0, pend, 2), 0);
	struct meta_offset_commit other = { "h", t, 0, 1, -1, NULL, 1003 };
	/* Refused, in the coordinator's order and with its distinctions
	 * (the group coordinator answers them as it would). */
	assert_int_equal(meta_txn_offset_commit(m, "c", 200, 0, &other, 1), SL_EBUSY);
	assert_int_equal(meta_txn_offset_commit(m, "c", 200, 1, pend, 2), SL_EFENCED);
	assert_int_equal(meta_txn_offset_commit(m, "c", 201, 0, pend, 2), SL_ETXNUNKNOWN);
	assert_int_equal(meta_txn_offset_commit(m, "nobody", 200, 0, pend, 2), SL_ETXNUNKNOWN);
	struct meta_offset_commit plain0 = { "g", t, 0, 5, -1, NULL, 1004 };
	assert_int_equal(meta_offset_commit(m, &plain0, 1), 0);
	assert_int_equal(committed_offset(m, "g", t, 1), 3); /* not visible yet */
	/* Pending for OffsetFetch's require_stable: g's two partitions, none
	 * of h's (refused above). */
	struct txn_tp *pending;
	size_t pending_n;
	assert_int_equal(meta_txn_offsets_pending(m, "g", &pending, &pending_n), 0);
	assert_int_equal(pending_n, 2);
	assert_true(pending[0].tid == t && pending[0].partition == 0);
	assert_true(pending[1].tid == t && pending[1].partition == 1);
	free(pending);
	assert_int_equal(meta_txn_offsets_pending(m, "h", &pending, &pending_n), 0);
	assert_int_equal(pending_n, 0);
	assert_null(pending);

	/* A marker before Prepare*: refused, no offset. */
	b = commit1(m, mk_marker(t, 0, 200, 0, "c", 1, true));
	assert_int_equal(b.result, META_BATCH_MARKER_REFUSED);
	assert_int_equal(b.base_offset, -1);
	rec_init(&x, 200, 0, TXN_PREPARE_COMMIT, 1);
	rec_tp(&x, t, 0);
	rec_tp(&x, t, 1);
	rec_group(&x, "g");
	persist(m, "c", &x, &v);
	assert_int_equal(meta_txn_offset_commit(m, "c", 200, 0, pend, 2), SL_ETXNBUSY);
	/* Wrong number, wrong type, wrong epoch: refused. */
	assert_int_equal(commit1(m, mk_marker(t, 0, 200, 0, "c", 2, true)).result,
			 META_BATCH_MARKER_REFUSED);
	assert_int_equal(commit1(m, mk_marker(t, 0, 200, 0, "c", 1, false)).result,
			 META_BATCH_MARKER_REFUSED);
	assert_int_equal(commit1(m, mk_marker(t, 0, 200, 1, "c", 1, true)).result,
			 META_BATCH_MARKER_REFUSED);
	assert_int_equal(part(m, t, 0).high_watermark, 3);

	/* The COMMIT of partition 0 and a duplicate of it in one object. */
	struct meta_commit_batch two[] = { mk_marker(t, 0, 200, 0, "c", 1, true),
					   mk_marker(t, 0, 200, 0, "c", 1, true) };
	two[1].byte_offset = 78;
	assert_int_equal(meta_commit_object(m, "mk-two", 156, two, 2), 0);
	assert_int_equal(two[0].result, META_BATCH_APPENDED);
	assert_int_equal(two[0].base_offset, 3);
	assert_int_equal(two[0].aborted[0].producer_id, -1);
	assert_int_equal(two[1].result, META_BATCH_MARKER_REFUSED);
	assert_int_equal(two[1].base_offset, -1);
	LSO_RISES(two[0]);
	assert_int_equal(two[0].last_stable_offset, 4);
	assert_int_equal(part(m, t, 0).last_stable_offset, 4);
	assert_int_equal(count_rows("SELECT live_bytes FROM objects WHERE key = $1", "mk-two"), 78);
	assert_int_equal(count_rows("SELECT attributes FROM batches WHERE base_offset = $1"
				    " AND partition = 0", "3"), 0x30);
	/* Not every marker in: offsets still pending. */
	assert_int_equal(committed_offset(m, "g", t, 1), 3);
	b = commit1(m, mk_marker(t, 1, 200, 0, "c", 1, true));
	LSO_RISES(b);
	assert_int_equal(b.result, META_BATCH_APPENDED);
	assert_int_equal(b.base_offset, 1);
	assert_int_equal(b.last_stable_offset, 2);
	assert_int_equal(committed_offset(m, "g", t, 0), 5);
	assert_int_equal(committed_offset(m, "g", t, 1), 20);
	assert_int_equal(count_rows("SELECT count(*) FROM txn_offsets WHERE transactional_id = $1",
				    "c"), 0);
	assert_int_equal(meta_txn_offsets_pending(m, "g", &pending, &pending_n), 0);
	assert_int_equal(pending_n, 0); /* settled: stable */
	assert_int_equal(count_rows("SELECT count(*) FROM txn_groups WHERE transactional_id = $1",
				    "c"), 0);
	assert_int_equal(count_rows("SELECT count(*) FROM partition_txns WHERE transactional_id = $1",
				    "c"), 0);
	/* Again after the last: refused (every partition got its one). */
	assert_int_equal(commit1(m, mk_marker(t, 1, 200, 0, "c", 1, true)).result,
			 META_BATCH_MARKER_REFUSED);
	rec_init(&x, 200, 0, TXN_COMPLETE_COMMIT, 1);
	persist(m, "c", &x, &v);
	assert_int_equal(meta_txn_offset_commit(m, "c", 200, 0, pend, 2), SL_EBUSY);

	/* Transaction 2 of "c" and "d"'s transaction open at once on
	 * partition 0: the LSO is the earlier first offset. */
	rec_init(&x, 200, 0, TXN_ONGOING, 2);
	rec_tp(&x, t, 0);
	rec_group(&x, "g");
	persist(m, "c", &x, &v);
	struct rec y;
	rec_init(&y, 300, 5, TXN_ONGOING, 9);
	rec_tp(&y, t, 0);
	int64_t vy = 0;
	persist(m, "d", &y, &vy);
	LSO_RISES(b = commit1(m, mk_txn(t, 0, 0, 300, 5, 0, "d")));  /* 4 */
	LSO_RISES(b = commit1(m, mk_txn(t, 0, 1, 200, 0, 2, "c")));  /* 5..6 */
	assert_int_equal(b.result, META_BATCH_APPENDED);
	assert_int_equal(b.last_stable_offset, 4);
	struct meta_offset_commit pend2 = { "g", t, 0, 50, -1, NULL, 2000 };
	assert_int_equal(meta_txn_offset_commit(m, "c", 200, 0, &pend2, 1), 0);

	/* A delayed COMMIT of transaction 1 (the stale-marker hazard): refused. */
	b = commit1(m, mk_marker(t, 0, 200, 0, "c", 1, true));
	assert_int_equal(b.result, META_BATCH_MARKER_REFUSED);
	assert_int_equal(b.base_offset, -1);
	LSO_RISES(b);

	/* "c" aborts: its range is recorded, the LSO stays at "d"'s. */
	rec_init(&x, 200, 0, TXN_PREPARE_ABORT, 2);
	rec_tp(&x, t, 0);
	rec_group(&x, "g");
	persist(m, "c", &x, &v);
	LSO_RISES(b = commit1(m, mk_marker(t, 0, 200, 0, "c", 2, false)));
	assert_int_equal(b.result, META_BATCH_APPENDED);
	assert_int_equal(b.base_offset, 7);
	assert_int_equal(b.aborted[0].producer_id, 200);
	assert_int_equal(b.aborted[0].first_offset, 5);
	assert_int_equal(b.aborted[0].last_offset, 7);
	assert_int_equal(b.last_stable_offset, 4);
	assert_int_equal(committed_offset(m, "g", t, 0), 5); /* dropped */
	assert_int_equal(count_rows("SELECT count(*) FROM txn_offsets WHERE transactional_id = $1",
				    "c"), 0);
	/* "d" commits: the LSO reaches the high watermark. */
	persist1(m, "d", 300, 5, TXN_PREPARE_COMMIT, 9, t, 0, &vy);
	LSO_RISES(b = commit1(m, mk_marker(t, 0, 300, 5, "d", 9, true)));
	assert_int_equal(b.base_offset, 8);
	assert_int_equal(b.last_stable_offset, 9);
	assert_int_equal(part(m, t, 0).last_stable_offset, 9);

	/* The aborted transactions, for the read path and the feed. */
	struct meta_aborted_txn ab[4];
	size_t n;
	assert_int_equal(meta_aborted_txns(m, t, 0, 0, 9, ab, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ab[0].producer_id, 200);
	assert_int_equal(ab[0].first_offset, 5);
	assert_int_equal(ab[0].last_offset, 7);
	assert_int_equal(meta_aborted_txns(m, t, 0, 7, 8, ab, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(meta_aborted_txns(m, t, 0, 8, 9, ab, 4, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(meta_aborted_txns(m, t, 0, 0, 5, ab, 4, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(meta_aborted_txns(m, t, 1, 0, 100, ab, 4, &n), 0);
	assert_int_equal(n, 0);
	struct meta_aborted_feed feed[4];
	assert_int_equal(meta_aborted_txns_since(m, 0, feed, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(feed[0].tid, t);
	assert_int_equal(feed[0].partition, 0);
	assert_int_equal(feed[0].txn.first_offset, 5);
	assert_int_equal(meta_aborted_txns_since(m, feed[0].seq, feed, 4, &n), 0);
	assert_int_equal(n, 0);
	meta_close(m);
#undef LSO_RISES
}

/* A group commit reports each batch's LSO as of its own object, as the
 * agent applies the objects one by one: "a" opened at 0 and aborted by a
 * marker in the second object while "b" opens in the first, so the first
 * object's LSO is 0 (a still open), the second's b's first offset. */
static void test_group_lso(void **state)
{
	(void)state;
	struct meta *m = open_store();
	int64_t t = create_topic(m, "gl", 1);
	int64_t va = 0, vb = 0;
	persist1(m, "a", 300, 0, TXN_ONGOING, 1, t, 0, &va);
	persist1(m, "b", 301, 0, TXN_ONGOING, 1, t, 0, &vb);
	assert_int_equal(commit1(m, mk_txn(t, 0, 1, 300, 0, 0, "a")).base_offset, 0); /* 0..1 */
	persist1(m, "a", 300, 0, TXN_PREPARE_ABORT, 1, t, 0, &va);
	struct meta_commit_batch first[] = { mk_plain(t, 0, 0), mk_txn(t, 0, 0, 301, 0, 0, "b") };
	struct meta_commit_batch second = mk_marker(t, 0, 300, 0, "a", 1, false);
	first[1].byte_offset = 100;
	struct meta_commit_obj objs[] = { { "gl-1", 1000, first, 2 }, { "gl-2", 1000, &second, 1 } };
	assert_int_equal(meta_commit_objects(m, objs, 2), 0);
	assert_int_equal(first[0].base_offset, 2);
	assert_int_equal(first[1].base_offset, 3);
	assert_int_equal(second.base_offset, 4);
	assert_int_equal(first[0].last_stable_offset, 0);
	assert_int_equal(first[1].last_stable_offset, 0);
	assert_int_equal(second.last_stable_offset, 3);
	assert_int_equal(second.aborted[0].producer_id, 300);
	assert_int_equal(second.aborted[0].first_offset, 0);
	assert_int_equal(second.aborted[0].last_offset, 4);
	assert_int_equal(part(m, t, 0).last_stable_offset, 3);
	meta_close(m);
}

/* A transaction with groups and no partition settles by meta_txn_settle
 * (only in the matching Prepare* state, once its markers are all in); a
 * marker for a partition deleted meanwhile is owed no more. */
static void test_settle_and_deleted(void **state)
{
	(void)state;
	struct meta *m = open_store();
	int64_t t = create_topic(m, "st", 1), u = create_topic(m, "gone", 1);
	struct rec x;
	rec_init(&x, 400, 0, TXN_ONGOING, 3);
	rec_group(&x, "g");
	int64_t v = 0;
	persist(m, "s", &x, &v);
	struct meta_offset_commit pend = { "g", t, 0, 42, -1, "x", 1 };
	assert_int_equal(meta_txn_offset_commit(m, "s", 400, 0, &pend, 1), 0);
	assert_int_equal(meta_txn_settle(m, "s", 3, true), 0); /* Ongoing: nothing */
	assert_int_equal(committed_offset(m, "g", t, 0), -1);
	rec_init(&x, 400, 0, TXN_PREPARE_COMMIT, 3);
	rec_group(&x, "g");
	persist(m, "s", &x, &v);
	assert_int_equal(meta_txn_settle(m, "s", 2, true), 0);  /* another one */
	assert_int_equal(meta_txn_settle(m, "s", 3, false), 0); /* another type */
	assert_int_equal(committed_offset(m, "g", t, 0), -1);
	assert_int_equal(meta_txn_settle(m, "s", 3, true), 0);
	assert_int_equal(committed_offset(m, "g", t, 0), 42);

	/* A partition deleted while its marker was owed. */
	persist1(m, "s", 400, 0, TXN_ONGOING, 4, u, 0, &v);
	assert_int_equal(commit1(m, mk_txn(u, 0, 0, 400, 0, 0, "s")).result, META_BATCH_APPENDED);
	persist1(m, "s", 400, 0, TXN_PREPARE_ABORT, 4, u, 0, &v);
	assert_int_equal(meta_topic_delete(m, "gone"), 0);
	struct meta_commit_batch b = commit1(m, mk_marker(u, 0, 400, 0, "s", 4, false));
	assert_int_equal(b.result, META_BATCH_NO_PARTITION);
	assert_int_equal(b.base_offset, -1);
	assert_int_equal(count_rows("SELECT count(*) FROM txn_partitions WHERE transactional_id = $1",
				    "s"), 0);
	/* Reloaded, the record says no marker is owed. */
	struct meta_txn_row *rows;
	size_t n;
	assert_int_equal(meta_txn_load(m, NULL, NULL, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].r.state, TXN_PREPARE_ABORT);
	assert_int_equal(rows[0].r.partition_count, 0);
	meta_txn_rows_free(rows, n);
	meta_close(m);
}

/* Retention never moves the log start past an open transaction's first
 * offset; DeleteRecords may (and the LSO rises with the log start);
 * aborted rows below the log start go with their batches. */
static void test_trim(void **state)
{
	(void)state;
	struct meta *m = open_store();
	int64_t t = create_topic(m, "tr", 1);
	int64_t v = 0;
	persist1(m, "r", 500, 0, TXN_ONGOING, 1, t, 0, &v);
	commit1(m, mk_plain(t, 0, 1));                                 /* 0..1 */
	commit1(m, mk_txn(t, 0, 0, 500, 0, 0, "r"));                   /* 2 */
	persist1(m, "r", 500, 0, TXN_PREPARE_ABORT, 1, t, 0, &v);
	struct meta_commit_batch b = commit1(m, mk_marker(t, 0, 500, 0, "r", 1, false)); /* 3 */
	assert_int_equal(b.aborted[0].first_offset, 2);
	persist1(m, "r", 500, 0, TXN_ONGOING, 2, t, 0, &v);
	commit1(m, mk_plain(t, 0, 0));                                 /* 4 */
	commit1(m, mk_txn(t, 0, 1, 500, 0, 1, "r"));                   /* 5..6 */
	commit1(m, mk_plain(t, 0, 0));                                 /* 7 */
	assert_int_equal(part(m, t, 0).last_stable_offset, 5);

	/* Everything expired by time: the log start stops at 5. */
	int64_t start;
	struct meta_trim all = { -1, clock_wall_ms() + 60000, -1, -1, 0 };
	assert_int_equal(meta_partition_trim(m, t, 0, &all, &start), 0);
	assert_int_equal(start, 5);
	struct meta_aborted_txn ab[4];
	size_t n;
	assert_int_equal(meta_aborted_txns(m, t, 0, 0, 100, ab, 4, &n), 0);
	assert_int_equal(n, 0); /* its marker (3) is below the log start */
	/* DeleteRecords past it: allowed; the LSO rises with the log start. */
	struct meta_trim dr = { 6, -1, -1, -1, 0 };
	assert_int_equal(meta_partition_trim(m, t, 0, &dr, &start), 0);
	assert_int_equal(start, 6);
	struct meta_partition p = part(m, t, 0);
	assert_int_equal(p.last_stable_offset, 6);
	assert_int_equal(p.high_watermark, 8);
	meta_close(m);
}

/* A cleaning pass that found an aborted transaction with no batch left
 * deletes its row in the swap's transaction (issue 15); a refused swap
 * deletes nothing; a marker outside the swapped rows is refused. */
static void test_cleaned_aborted(void **state)
{
	(void)state;
	struct meta *m = open_store();
	int64_t t = create_topic(m, "ca", 1);
	int64_t v = 0;
	commit1(m, mk_plain(t, 0, 1));                                 /* 0..1 */
	for (int64_t seq = 1; seq <= 2; seq++) {                       /* 2, 3; 4, 5 */
		persist1(m, "r", 500, 0, TXN_ONGOING, seq, t, 0, &v);
		commit1(m, mk_txn(t, 0, 0, 500, 0, (int32_t)seq - 1, "r"));
		persist1(m, "r", 500, 0, TXN_PREPARE_ABORT, seq, t, 0, &v);
		commit1(m, mk_marker(t, 0, 500, 0, "r", seq, false));
	}
	commit1(m, mk_plain(t, 0, 0));                                 /* 6 */
	struct meta_aborted_txn ab[4];
	size_t n;
	assert_int_equal(meta_aborted_txns(m, t, 0, 0, 100, ab, 4, &n), 0);
	assert_int_equal(n, 2);

	struct meta_batch_row rows[8];
	assert_int_equal(meta_batches_from(m, t, 0, 0, 8, rows, &n), 0);
	assert_int_equal(n, 6);
	struct meta_merge_row mr[4];
	struct meta_compact_batch cb[4];
	for (size_t i = 0; i < 4; i++) {
		mr[i] = (struct meta_merge_row){ .base_offset = rows[i].base_offset,
						 .last_offset = rows[i].last_offset,
						 .byte_offset = rows[i].byte_offset,
						 .length = rows[i].length };
		snprintf(mr[i].object_key, sizeof mr[i].object_key, "%s", rows[i].object_key);
		cb[i] = (struct meta_compact_batch){ rows[i].base_offset, rows[i].last_offset,
						     10 * i, 10, i == 1 ? 0 : 1, 1, 0 };
	}
	/* The first transaction's row goes (marker 3); the second's stays. */
	int64_t gone[] = { 3 }, outside[] = { 5 };
	struct meta_merge bad = { t, 0, "o/ca-0", 100, mr, 4, cb, 4, 4, outside, 1 };
	assert_int_equal(meta_compact_swap(m, &bad), SL_EINVAL);
	struct meta_merge as_merge = { t, 0, "o/ca-0", 100, mr, 4, NULL, 0, 0, gone, 1 };
	assert_int_equal(meta_merge_swap(m, &as_merge), SL_EINVAL);
	/* Stale rows: refused, the row stays. */
	mr[0].length++;
	struct meta_merge stale = { t, 0, "o/ca-1", 100, mr, 4, cb, 4, 4, gone, 1 };
	assert_int_equal(meta_compact_swap(m, &stale), SL_ENOTFOUND);
	assert_int_equal(meta_aborted_txns(m, t, 0, 0, 100, ab, 4, &n), 0);
	assert_int_equal(n, 2);
	mr[0].length--;
	struct meta_merge cp = { t, 0, "o/ca-2", 100, mr, 4, cb, 4, 4, gone, 1 };
	assert_int_equal(meta_compact_swap(m, &cp), 0);
	assert_int_equal(meta_aborted_txns(m, t, 0, 0, 100, ab, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ab[0].producer_id, 500);
	assert_int_equal(ab[0].first_offset, 4);
	assert_int_equal(ab[0].last_offset, 5);
	struct meta_partition p = part(m, t, 0);
	assert_int_equal(p.high_watermark, 7);
	assert_int_equal(p.last_stable_offset, 7);
	meta_close(m);
}

/* A store of the schema before transactions (SQLite 9, PostgreSQL 7) is
 * upgraded: the new columns take their defaults (no open transaction:
 * LSO = HWM; commit_seq 0, so a later commit wins), the new tables
 * appear. */
static void test_upgrade(void **state)
{
	(void)state;
	struct meta *m = open_store();
	int64_t t = create_topic(m, "up", 1);
	commit1(m, mk_plain(t, 0, 4));
	struct meta_offset_commit o = { "g", t, 0, 3, -1, NULL, 1 };
	assert_int_equal(meta_offset_commit(m, &o, 1), 0);
	meta_close(m);
	static const char drop[] = "DROP TABLE transactions; DROP TABLE txn_partitions;"
		" DROP TABLE txn_groups; DROP TABLE partition_txns; DROP TABLE aborted_txns;"
		" DROP TABLE txn_offsets; ALTER TABLE partitions DROP COLUMN first_unstable_offset;"
		" ALTER TABLE batches DROP COLUMN attributes;"
		" ALTER TABLE group_offsets DROP COLUMN commit_seq;"
		" DELETE FROM cluster WHERE name IN ('aborted_seq', 'offset_commit_seq');";
	if (tb == TB_POSTGRES) {
		char sql[1024];
		snprintf(sql, sizeof sql, "%s DROP SEQUENCE IF EXISTS offset_commit_seq;"
			 " UPDATE schema_version SET version = 7", drop);
		tb_pg_exec(tb_pg, sql);
	} else {
		char sql[1024];
		snprintf(sql, sizeof sql, "%s PRAGMA user_version = 9", drop);
		sqlite3 *db;
		assert_int_equal(sqlite3_open(tb_db_path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
	}
	m = open_store();
	struct meta_partition p = part(m, t, 0);
	assert_int_equal(p.last_stable_offset, 5);
	struct rec x;
	rec_init(&x, 600, 0, TXN_ONGOING, 1);
	rec_tp(&x, t, 0);
	rec_group(&x, "g");
	int64_t v = 0;
	persist(m, "u", &x, &v);
	assert_int_equal(commit1(m, mk_txn(t, 0, 0, 600, 0, 0, "u")).result, META_BATCH_APPENDED);
	struct meta_offset_commit pend = { "g", t, 0, 9, -1, NULL, 2 };
	assert_int_equal(meta_txn_offset_commit(m, "u", 600, 0, &pend, 1), 0);
	rec_init(&x, 600, 0, TXN_PREPARE_COMMIT, 1);
	rec_tp(&x, t, 0);
	rec_group(&x, "g");
	persist(m, "u", &x, &v);
	struct meta_commit_batch b = commit1(m, mk_marker(t, 0, 600, 0, "u", 1, true));
	assert_int_equal(b.result, META_BATCH_APPENDED);
	assert_int_equal(b.last_stable_offset, 7);
	assert_int_equal(committed_offset(m, "g", t, 0), 9);
	meta_close(m);
}

/* A store from before aborted_txns was keyed by producer id (SQLite
 * 15, PostgreSQL 13) keeps its aborted rows and takes two of one marker
 * after the upgrade. */
static void test_upgrade_aborted_key(void **state)
{
	(void)state;
	struct meta *m = open_store();
	two_producer_ids(m, "ak1", true, 400);
	meta_close(m);
	if (tb == TB_POSTGRES) {
		tb_pg_exec(tb_pg, "ALTER TABLE aborted_txns DROP CONSTRAINT aborted_txns_pkey,"
				  " ADD PRIMARY KEY (tid, partition, last_offset);"
				  " UPDATE schema_version SET version = 13");
	} else {
		sqlite3 *db;
		assert_int_equal(sqlite3_open(tb_db_path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_exec(db, "CREATE TABLE a15 (tid INTEGER NOT NULL,"
					      " partition INTEGER NOT NULL, last_offset INTEGER NOT NULL,"
					      " first_offset INTEGER NOT NULL, producer_id INTEGER NOT NULL,"
					      " seq INTEGER NOT NULL,"
					      " PRIMARY KEY (tid, partition, last_offset)) WITHOUT ROWID;"
					      " INSERT INTO a15 SELECT * FROM aborted_txns;"
					      " DROP TABLE aborted_txns; ALTER TABLE a15 RENAME TO aborted_txns;"
					      " CREATE INDEX aborted_txns_seq ON aborted_txns (seq);"
					      " PRAGMA user_version = 15", NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
	}
	m = open_store();
	assert_int_equal(count_rows("SELECT count(*) FROM aborted_txns WHERE producer_id = $1",
				    "400"), 1);
	two_producer_ids(m, "ak2", false, 500);
	meta_close(m);
}

struct racer {
	struct meta *m;
	int64_t tid;
	const char *id;     /* transactional: this id's batches; NULL: plain */
	int rounds;
	bool markers;       /* then: one marker per partition */
	int applied, err;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	for (int i = 0; i < r->rounds && !r->err; i++) {
		char key[64];
		snprintf(key, sizeof key, "race-%p-%d-%d", (void *)r, r->markers, i);
		struct meta_commit_batch b[2];
		for (int32_t p = 0; p < 2; p++) {
			if (r->markers)
				b[p] = mk_marker(r->tid, p, 700, 0, "race", 1, true);
			else if (r->id)
				b[p] = mk_txn(r->tid, p, 1, 700, 0, 2 * i, r->id);
			else
				b[p] = mk_plain(r->tid, p, 1);
			b[p].byte_offset = 100 * (uint64_t)p;
		}
		r->err = meta_commit_object(r->m, key, 200, b, 2);
		for (int32_t p = 0; !r->err && p < 2; p++) {
			if (b[p].result == META_BATCH_APPENDED)
				r->applied++;
			else if (!r->markers || b[p].result != META_BATCH_MARKER_REFUSED)
				r->err = -999;
		}
	}
	return NULL;
}

/* Two agents at once: one commits a transaction's batches while the
 * other commits plain ones to the same partitions (the LSO stays at the
 * transaction's first offset, offsets stay dense); then both send every
 * marker again and again: each partition takes exactly one. */
static void test_two_agents(void **state)
{
	(void)state;
	struct meta *a = open_store(), *b = open_store();
	int64_t t = create_topic(a, "race", 2);
	commit1(a, mk_plain(t, 0, 0));
	struct rec x;
	rec_init(&x, 700, 0, TXN_ONGOING, 1);
	rec_tp(&x, t, 0);
	rec_tp(&x, t, 1);
	int64_t v = 0;
	persist(a, "race", &x, &v);
	struct racer ra = { a, t, "race", 40, false, 0, 0 }, rb = { b, t, NULL, 40, false, 0, 0 };
	pthread_t ta, tb_thread;
	assert_int_equal(pthread_create(&ta, NULL, race, &ra), 0);
	assert_int_equal(pthread_create(&tb_thread, NULL, race, &rb), 0);
	pthread_join(ta, NULL);
	pthread_join(tb_thread, NULL);
	assert_int_equal(ra.err, 0);
	assert_int_equal(rb.err, 0);
	struct meta_partition p0 = part(b, t, 0), p1 = part(b, t, 1);
	assert_int_equal(p0.high_watermark, 1 + 80 + 80);
	assert_int_equal(p1.high_watermark, 80 + 80);
	int64_t first0 = tb_query_i64("SELECT first_offset FROM partition_txns WHERE partition = 0"
				      " AND transactional_id = $1", "race");
	assert_int_equal(p0.last_stable_offset, first0);
	assert_true(first0 >= 1);
	static struct meta_batch_row rows[512];
	size_t n;
	assert_int_equal(meta_batches_from(a, t, 0, 0, 512, rows, &n), 0);
	for (size_t i = 1; i < n; i++)
		assert_int_equal(rows[i].base_offset, rows[i - 1].last_offset + 1);

	rec_init(&x, 700, 0, TXN_PREPARE_COMMIT, 1);
	rec_tp(&x, t, 0);
	rec_tp(&x, t, 1);
	persist(b, "race", &x, &v);
	ra = (struct racer){ a, t, "race", 10, true, 0, 0 };
	rb = (struct racer){ b, t, "race", 10, true, 0, 0 };
	assert_int_equal(pthread_create(&ta, NULL, race, &ra), 0);
	assert_int_equal(pthread_create(&tb_thread, NULL, race, &rb), 0);
	pthread_join(ta, NULL);
	pthread_join(tb_thread, NULL);
	assert_int_equal(ra.err, 0);
	assert_int_equal(rb.err, 0);
	assert_int_equal(ra.applied + rb.applied, 2);
	assert_int_equal(part(a, t, 0).last_stable_offset, 1 + 160 + 1);
	assert_int_equal(part(a, t, 1).last_stable_offset, 160 + 1);
	meta_close(a);
	meta_close(b);
}

/* DescribeProducers' producer state after markers, as Kafka's
 * appendEndTxnMarker leaves it: the marker's coordinator epoch (-1
 * before any marker, also for rows of the schema before the column), a
 * state made for a partition the producer added but never wrote, and a
 * bumped epoch (a fence's abort) forgetting the older epoch's batches. */
static struct meta_producer_desc producer_in(struct meta *m, int64_t tid, int32_t p,
					     int64_t pid)
{
	struct meta_producer_desc d[4];
	size_t n;
	assert_int_equal(meta_producers_describe(m, tid, p, 4, d, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (d[i].producer_id == pid)
			return d[i];
	fail_msg("producer %lld not in partition %d", (long long)pid, p);
	return d[0];
}

static void test_marker_producer_state(void **state)
{
	(void)state;
	struct meta *m = open_store();
	int64_t t = create_topic(m, "pe", 2);
	struct rec x;
	rec_init(&x, 300, 2, TXN_ONGOING, 1);
	rec_tp(&x, t, 0);
	rec_tp(&x, t, 1);
	int64_t v = 0;
	persist(m, "pe", &x, &v);
	assert_int_equal(commit1(m, mk_txn(t, 0, 1, 300, 2, 0, "pe")).result, META_BATCH_APPENDED);
	meta_close(m);

	/* Back to the schema before the column: the row takes -1. */
	if (tb == TB_POSTGRES) {
		tb_pg_exec(tb_pg, "ALTER TABLE producer_state DROP COLUMN coordinator_epoch;"
			   " UPDATE schema_version SET version = 12");
	} else {
		sqlite3 *db;
		assert_int_equal(sqlite3_open(tb_db_path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_exec(db, "ALTER TABLE producer_state DROP COLUMN"
					      " coordinator_epoch; PRAGMA user_version = 14",
					      NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
	}
	m = open_store();
	struct meta_producer_desc d = producer_in(m, t, 0, 300);
	assert_int_equal(d.coordinator_epoch, -1);
	assert_int_equal(d.producer_epoch, 2);
	assert_int_equal(d.last_sequence, 1);
	assert_int_equal(d.txn_start_offset, 0);

	/* COMMIT markers at coordinator epoch 5; partition 1 had no batch. */
	rec_init(&x, 300, 2, TXN_PREPARE_COMMIT, 1);
	rec_tp(&x, t, 0);
	rec_tp(&x, t, 1);
	persist(m, "pe", &x, &v);
	struct meta_commit_batch mk[] = { mk_marker(t, 0, 300, 2, "pe", 1, true),
					  mk_marker(t, 1, 300, 2, "pe", 1, true) };
	mk[0].coordinator_epoch = mk[1].coordinator_epoch = 5;
	mk[1].byte_offset = 78;
	assert_int_equal(meta_commit_object(m, "pe-commit", 156, mk, 2), 0);
	assert_int_equal(mk[0].result, META_BATCH_APPENDED);
	assert_int_equal(mk[1].result, META_BATCH_APPENDED);
	d = producer_in(m, t, 0, 300);
	assert_int_equal(d.coordinator_epoch, 5);
	assert_int_equal(d.producer_epoch, 2);
	assert_int_equal(d.last_sequence, 1);
	assert_int_equal(d.txn_start_offset, -1);
	d = producer_in(m, t, 1, 300);
	assert_int_equal(d.coordinator_epoch, 5);
	assert_int_equal(d.producer_epoch, 2);
	assert_int_equal(d.last_sequence, -1);
	assert_true(d.last_ms > clock_wall_ms() - 60000 && d.last_ms <= clock_wall_ms());
	/* The sequence goes on at the same epoch. */
	persist1(m, "pe", 300, 2, TXN_COMPLETE_COMMIT, 1, t, 0, &v);
	rec_init(&x, 300, 2, TXN_ONGOING, 2);
	rec_tp(&x, t, 0);
	persist(m, "pe", &x, &v);
	assert_int_equal(commit1(m, mk_txn(t, 0, 0, 300, 2, 2, "pe")).result, META_BATCH_APPENDED);
	assert_int_equal(producer_in(m, t, 0, 300).coordinator_epoch, 5);

	/* Timed out: aborted at epoch 3 by the coordinator at epoch 6. The
	 * old epoch's batches are forgotten, and it is fenced. */
	rec_init(&x, 300, 3, TXN_PREPARE_ABORT, 2);
	rec_tp(&x, t, 0);
	persist(m, "pe", &x, &v);
	struct meta_commit_batch ab = mk_marker(t, 0, 300, 3, "pe", 2, false);
	ab.coordinator_epoch = 6;
	assert_int_equal(commit1(m, ab).result, META_BATCH_APPENDED);
	d = producer_in(m, t, 0, 300);
	assert_int_equal(d.coordinator_epoch, 6);
	assert_int_equal(d.producer_epoch, 3);
	assert_int_equal(d.last_sequence, -1);
	assert_int_equal(commit1(m, mk_idem(t, 0, 0, 300, 2, 3)).result, META_BATCH_FENCED);
	/* A refused marker changes nothing. */
	ab.coordinator_epoch = 9;
	assert_int_equal(commit1(m, ab).result, META_BATCH_MARKER_REFUSED);
	assert_int_equal(producer_in(m, t, 0, 300).coordinator_epoch, 6);
	meta_close(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_records, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_load_one, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_txn_data, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_markers, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_lso_per_batch, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_two_producer_ids, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_group_lso, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_settle_and_deleted, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_trim, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_cleaned_aborted, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_upgrade, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_aborted_key, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_marker_producer_state, tb_setup, tb_teardown),
		cmocka_unit_test_setup_teardown(test_two_agents, tb_setup, tb_teardown),
	};
	return meta_backends_run("meta_txn", tests, sizeof tests / sizeof tests[0]);
}
