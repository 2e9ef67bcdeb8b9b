/* test_txn_service.c — the transaction service (txn/service.c) on a real
 * metadata store, SQLite and (meta_backends.h) PostgreSQL: records
 * loaded at start and requests answered COORDINATOR_LOAD_IN_PROGRESS
 * until then; a transaction's records stored at each step with the
 * version read and answered only once durable; markers handed to the
 * marker writer only after Prepare* is stored and Complete* stored after
 * they are in; a new service on the same store completing a commit the
 * previous one left in PrepareCommit (takeover); a timed-out transaction
 * aborted at a bumped epoch; a transaction with offsets and no partition
 * settled by the store; a second writer of an id fencing the first
 * (NOT_COORDINATOR), which then reads the id again; in fenced (cluster)
 * mode an id served only once adopted at its lease's epoch, and a deposed
 * coordinator's late write refused by the lease while a new one adopts
 * the id and completes its commit. The marker writer
 * here acknowledges when the test says so: the writer's marker path is
 * another module's. */
#define _GNU_SOURCE /* nftw, in meta_backends.h */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "meta_backends.h"

#include "base/clock.h"
#include "base/err.h"
#include "meta/meta.h"
#include "proto/kerr.h"
#include "txn/service.h"

#define MAX_REQS 1024
#define MAX_MARKERS 16

struct marker_call {
	char id[64];
	bool commit;
	int64_t producer_id;
	int16_t producer_epoch;
	int64_t txn_seq;
	int32_t partition_count;
};

static struct {
	uv_loop_t loop;
	int64_t now;                /* the services' wall clock */
	int64_t next_pid;
	int answered[MAX_REQS];
	int16_t error[MAX_REQS];
	int64_t pid[MAX_REQS];
	int16_t epoch[MAX_REQS];
	int next_req;
	struct marker_call markers[MAX_MARKERS];
	int marker_count;
} T;

static void on_answer(void *arg, const struct txn_effect *e)
{
	(void)arg;
	int r = (int)(intptr_t)e->req;
	assert_true(r > 0 && r < MAX_REQS);
	T.answered[r]++;
	T.error[r] = e->error;
	T.pid[r] = e->producer_id;
	T.epoch[r] = e->producer_epoch;
}

static int on_markers(void *arg, const struct txn_effect *e)
{
	(void)arg;
	assert_true(T.marker_count < MAX_MARKERS);
	struct marker_call *m = &T.markers[T.marker_count++];
	snprintf(m->id, sizeof m->id, "%s", e->transactional_id);
	m->commit = e->commit;
	m->producer_id = e->record.producer_id;
	m->producer_epoch = e->record.producer_epoch;
	m->txn_seq = e->record.txn_seq;
	m->partition_count = e->record.partition_count;
	return 0;
}

static int alloc_pid(void *arg, int64_t *out)
{
	(void)arg;
	*out = T.next_pid++;
	return 0;
}

static int64_t clock_now(void *arg)
{
	(void)arg;
	return T.now;
}

static struct meta *open_store(void)
{
	struct meta *m = NULL;
	assert_int_equal(meta_open(tb_url, &m), 0);
	return m;
}

static struct txn_svc *start_mode(struct meta *m, bool fenced)
{
	struct txn_svc_config cfg = { 0 };
	cfg.fenced = fenced;
	txn_config_default(&cfg.coord);
	cfg.coord.alloc_producer_id = alloc_pid;
	cfg.answer = on_answer;
	cfg.write_markers = on_markers;
	cfg.now_ms = clock_now;
	cfg.tick_ms = 10;
	struct txn_svc *s = NULL;
	assert_int_equal(txn_svc_start(&T.loop, m, &cfg, &s), 0);
	return s;
}

static struct txn_svc *start(struct meta *m)
{
	return start_mode(m, false);
}

/* Turn the loop until cond holds (at most 10 s). */
#define RUN_UNTIL(cond)                                                            \
	do {                                                                       \
		int64_t until_ = clock_mono_us() + 10000000;                       \
		while (!(cond)) {                                                  \
			if (clock_mono_us() > until_)                              \
				fail_msg("timed out waiting for %s", #cond);       \
			uv_run(&T.loop, UV_RUN_ONCE);                              \
		}                                                                  \
	} while (0)

static struct txn_svc *start_loaded(struct meta *m)
{
	struct txn_svc *s = start(m);
	/* Nothing may be read until the records are in. */
	assert_int_equal(txn_svc_read_status(s, KSTR_NULL), KERR_COORDINATOR_LOAD_IN_PROGRESS);
	RUN_UNTIL(txn_svc_loaded(s));
	assert_int_equal(txn_svc_read_status(s, KSTR_NULL), KERR_NONE);
	return s;
}

static void stop(struct txn_svc *s)
{
	txn_svc_shutdown(s);
	assert_int_equal(txn_svc_read_status(s, KSTR_NULL), KERR_COORDINATOR_NOT_AVAILABLE);
	RUN_UNTIL(txn_svc_idle(s));
	uv_run(&T.loop, UV_RUN_NOWAIT); /* the timers' close callbacks */
	txn_svc_free(s);
}

static int setup(void **state)
{
	assert_int_equal(tb_setup(state), 0);
	memset(&T, 0, sizeof T);
	assert_int_equal(uv_loop_init(&T.loop), 0);
	T.now = clock_wall_ms();
	T.next_pid = 5000;
	return 0;
}

static int teardown(void **state)
{
	uv_run(&T.loop, UV_RUN_NOWAIT);
	assert_int_equal(uv_loop_close(&T.loop), 0);
	return tb_teardown(state);
}

static kstr K(const char *s)
{
	return (kstr){ s, (int32_t)strlen(s) };
}

static int new_req(void)
{
	int r = ++T.next_req;
	assert_true(r < MAX_REQS);
	return r;
}

static int init(struct txn_svc *s, const char *id, int32_t timeout_ms)
{
	int r = new_req();
	struct txn_init_args a = { K(id), timeout_ms, -1, -1, 4 };
	txn_svc_init_producer_id(s, &a, (void *)(intptr_t)r);
	return r;
}

/* A producer that ran InitProducerId on id and got its answer: its
 * producer id (epoch 0 for a new id). */
static int64_t producer(struct txn_svc *s, const char *id, int32_t timeout_ms)
{
	int r = init(s, id, timeout_ms);
	RUN_UNTIL(T.answered[r]);
	assert_int_equal(T.error[r], KERR_NONE);
	return T.pid[r];
}

/* Request r (made by call) answered after the loop turned. */
#define AWAIT(r, call)                        \
	do {                                  \
		r = (call);                   \
		RUN_UNTIL(T.answered[r]);     \
	} while (0)

static const struct txn_tp TPS[2] = { { 3, 0 }, { 3, 1 } };

static int add(struct txn_svc *s, const char *id, int64_t pid, int16_t epoch, int32_t n)
{
	int r = new_req();
	struct txn_add_args a = { K(id), pid, epoch, TPS, n, 1 };
	txn_svc_add_partitions(s, &a, (void *)(intptr_t)r);
	return r;
}

static int add_offsets(struct txn_svc *s, const char *id, int64_t pid, int16_t epoch,
		       const char *group)
{
	int r = new_req();
	struct txn_add_offsets_args a = { K(id), pid, epoch, K(group), 1 };
	txn_svc_add_offsets(s, &a, (void *)(intptr_t)r);
	return r;
}

static int end(struct txn_svc *s, const char *id, int64_t pid, int16_t epoch, bool commit)
{
	int r = new_req();
	struct txn_end_args a = { K(id), pid, epoch, commit, 1 };
	txn_svc_end(s, &a, (void *)(intptr_t)r);
	return r;
}

/* The store's record of id (found: true), read through another
 * connection. */
static bool stored(const char *id, struct meta_txn_row *out)
{
	struct meta *m = open_store();
	struct meta_txn_row *rows;
	size_t n;
	bool found = false;
	assert_int_equal(meta_txn_load(m, NULL, NULL, &rows, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (strcmp(rows[i].transactional_id, id) == 0) {
			found = true;
			out->r = rows[i].r;
			out->r.partitions = NULL;
			out->r.groups = NULL;
			out->version = rows[i].version;
		}
	meta_txn_rows_free(rows, n);
	meta_close(m);
	return found;
}

static void expect_stored(const char *id, enum txn_state st, int16_t epoch, int32_t parts,
			  int32_t groups)
{
	struct meta_txn_row row;
	assert_true(stored(id, &row));
	assert_int_equal(row.r.state, st);
	assert_int_equal(row.r.producer_epoch, epoch);
	assert_int_equal(row.r.partition_count, parts);
	assert_int_equal(row.r.group_count, groups);
}

static void test_commit(void **state)
{
	(void)state;
	struct meta *m = open_store();
	struct txn_svc *s = start(m);
	/* Before the load is in: COORDINATOR_LOAD_IN_PROGRESS. */
	int r = init(s, "t", 60000);
	assert_int_equal(T.answered[r], 1);
	assert_int_equal(T.error[r], KERR_COORDINATOR_LOAD_IN_PROGRESS);
	RUN_UNTIL(txn_svc_loaded(s));

	/* Each answer waits for its record to be stored. */
	r = init(s, "t", 60000);
	assert_int_equal(T.answered[r], 0);
	RUN_UNTIL(T.answered[r]);
	assert_int_equal(T.error[r], KERR_NONE);
	int64_t pid = T.pid[r];
	assert_int_equal(pid, 5000);
	assert_int_equal(T.epoch[r], 0);
	expect_stored("t", TXN_EMPTY, 0, 0, 0);

	r = add(s, "t", pid, 0, 2);
	assert_int_equal(T.answered[r], 0);
	RUN_UNTIL(T.answered[r]);
	assert_int_equal(T.error[r], KERR_NONE);
	expect_stored("t", TXN_ONGOING, 0, 2, 0);
	r = add_offsets(s, "t", pid, 0, "g");
	RUN_UNTIL(T.answered[r]);
	assert_int_equal(T.error[r], KERR_NONE);
	expect_stored("t", TXN_ONGOING, 0, 2, 1);

	/* EndTxn: PrepareCommit stored, then the markers; answered once
	 * CompleteCommit is stored. */
	r = end(s, "t", pid, 0, true);
	RUN_UNTIL(T.marker_count == 1);
	expect_stored("t", TXN_PREPARE_COMMIT, 0, 2, 1);
	assert_true(T.markers[0].commit);
	assert_int_equal(T.markers[0].producer_id, pid);
	assert_int_equal(T.markers[0].producer_epoch, 0);
	assert_int_equal(T.markers[0].partition_count, 2);
	assert_int_equal(T.markers[0].txn_seq, 1);
	assert_int_equal(T.answered[r], 0);
	/* A retry meanwhile: CONCURRENT_TRANSACTIONS. */
	int r2 = end(s, "t", pid, 0, true);
	assert_int_equal(T.error[r2], KERR_CONCURRENT_TRANSACTIONS);
	txn_svc_markers_done(s, "t", 1, KERR_NONE);
	RUN_UNTIL(T.answered[r]);
	assert_int_equal(T.error[r], KERR_NONE);
	expect_stored("t", TXN_COMPLETE_COMMIT, 0, 0, 0);
	/* A retry after: NONE at once; the other outcome INVALID_TXN_STATE. */
	r = end(s, "t", pid, 0, true);
	assert_int_equal(T.error[r], KERR_NONE);
	r = end(s, "t", pid, 0, false);
	assert_int_equal(T.error[r], KERR_INVALID_TXN_STATE);
	stop(s);

	/* A restarted agent loads the record: the producer's next
	 * InitProducerId bumps the epoch, the old one is fenced. */
	s = start_loaded(m);
	r = init(s, "t", 60000);
	RUN_UNTIL(T.answered[r]);
	assert_int_equal(T.error[r], KERR_NONE);
	assert_int_equal(T.pid[r], pid);
	assert_int_equal(T.epoch[r], 1);
	r = add(s, "t", pid, 0, 1);
	assert_int_equal(T.error[r], KERR_INVALID_PRODUCER_EPOCH);
	stop(s);
	meta_close(m);
}

/* The agent dies after PrepareCommit is stored and before its markers
 * are in: the next one completes the commit. */
static void test_takeover_mid_commit(void **state)
{
	(void)state;
	struct meta *m = open_store();
	struct txn_svc *s = start_loaded(m);
	int64_t pid = producer(s, "t", 60000);
	int r;
	AWAIT(r, add(s, "t", pid, 0, 2));
	int e = end(s, "t", pid, 0, true);
	RUN_UNTIL(T.marker_count == 1);
	stop(s); /* its EndTxn is answered NOT_COORDINATOR; markers never acknowledged */
	assert_int_equal(T.error[e], KERR_NOT_COORDINATOR);
	expect_stored("t", TXN_PREPARE_COMMIT, 0, 2, 0);

	s = start(m);
	RUN_UNTIL(T.marker_count == 2);
	assert_true(T.markers[1].commit);
	assert_int_equal(T.markers[1].txn_seq, T.markers[0].txn_seq);
	assert_int_equal(T.markers[1].producer_epoch, 0);
	/* The client's retried EndTxn waits for the commit to complete. */
	e = end(s, "t", pid, 0, true);
	assert_int_equal(T.error[e], KERR_CONCURRENT_TRANSACTIONS);
	txn_svc_markers_done(s, "t", T.markers[1].txn_seq, KERR_NONE);
	RUN_UNTIL(!txn_find(txn_svc_coordinator(s), K("t"))->pending);
	expect_stored("t", TXN_COMPLETE_COMMIT, 0, 0, 0);
	e = end(s, "t", pid, 0, true);
	assert_int_equal(T.error[e], KERR_NONE);
	stop(s);
	meta_close(m);
}

/* transaction.timeout.ms: the tick aborts the transaction at a bumped
 * epoch; the producer is fenced. A failed marker write is retried. */
static void test_timeout_abort(void **state)
{
	(void)state;
	struct meta *m = open_store();
	struct txn_svc *s = start_loaded(m);
	int64_t pid = producer(s, "t", 1000);
	int r;
	AWAIT(r, add(s, "t", pid, 0, 1));
	T.now += 1001;
	RUN_UNTIL(T.marker_count == 1);
	assert_false(T.markers[0].commit);
	assert_int_equal(T.markers[0].producer_epoch, 1);
	expect_stored("t", TXN_PREPARE_ABORT, 1, 1, 0);
	txn_svc_markers_done(s, "t", T.markers[0].txn_seq, KERR_KAFKA_STORAGE_ERROR);
	T.now += 200;
	RUN_UNTIL(T.marker_count == 2);
	assert_int_equal(T.markers[1].producer_epoch, 1);
	txn_svc_markers_done(s, "t", T.markers[1].txn_seq, KERR_NONE);
	RUN_UNTIL(!txn_find(txn_svc_coordinator(s), K("t"))->pending);
	expect_stored("t", TXN_COMPLETE_ABORT, 1, 0, 0);
	r = end(s, "t", pid, 0, true);
	assert_int_equal(T.error[r], KERR_INVALID_PRODUCER_EPOCH);
	stop(s);
	meta_close(m);
}

/* Offsets only (AddOffsetsToTxn, no partition): no marker to write, the
 * store settles the groups and the commit completes. */
static void test_offsets_only(void **state)
{
	(void)state;
	struct meta *m = open_store();
	struct txn_svc *s = start_loaded(m);
	int64_t pid = producer(s, "t", 60000);
	int r;
	AWAIT(r, add_offsets(s, "t", pid, 0, "g"));
	AWAIT(r, end(s, "t", pid, 0, true));
	assert_int_equal(T.error[r], KERR_NONE);
	assert_int_equal(T.marker_count, 0);
	expect_stored("t", TXN_COMPLETE_COMMIT, 0, 0, 0);
	stop(s);
	meta_close(m);
}

/* Two services on one store (an id taken over by another agent, or a
 * write whose outcome was lost): the one holding a stale version is
 * refused by the store and answers NOT_COORDINATOR, dropping the id;
 * nothing it asked is stored, and it reads the id again. */
static void test_stale_writer(void **state)
{
	(void)state;
	struct meta *ma = open_store(), *mb = open_store();
	struct txn_svc *a = start_loaded(ma);
	int64_t pid = producer(a, "t", 60000);
	struct txn_svc *b = start_loaded(mb);
	int r;
	AWAIT(r, init(b, "t", 60000));
	assert_int_equal(T.error[r], KERR_NONE);
	assert_int_equal(T.epoch[r], 1);
	AWAIT(r, add(a, "t", pid, 0, 1));
	assert_int_equal(T.error[r], KERR_NOT_COORDINATOR);
	assert_null(txn_find(txn_svc_coordinator(a), K("t")));
	expect_stored("t", TXN_EMPTY, 1, 0, 0);
	/* It reads the id again (the store's truth: epoch 1), answering
	 * COORDINATOR_LOAD_IN_PROGRESS meanwhile; then it serves the
	 * current producer and fences the old one. */
	r = add(a, "t", pid, 1, 1);
	assert_int_equal(T.error[r], KERR_COORDINATOR_LOAD_IN_PROGRESS);
	assert_int_equal(txn_svc_read_status(a, K("t")), KERR_COORDINATOR_LOAD_IN_PROGRESS);
	assert_int_equal(txn_svc_read_status(a, K("other")), KERR_NONE);
	RUN_UNTIL(txn_find(txn_svc_coordinator(a), K("t")));
	assert_int_equal(txn_svc_read_status(a, K("t")), KERR_NONE);
	AWAIT(r, add(a, "t", pid, 1, 1));
	assert_int_equal(T.error[r], KERR_NONE);
	expect_stored("t", TXN_ONGOING, 1, 1, 0);
	r = add(a, "t", pid, 0, 2);
	assert_int_equal(T.error[r], KERR_INVALID_PRODUCER_EPOCH);
	stop(a);
	stop(b);
	meta_close(ma);
	meta_close(mb);
}

/* A registered agent on m (cluster mode) and the lease it takes. */
static struct meta_agent agent_on(struct meta *m)
{
	struct meta_agent a;
	struct meta_cluster_view v;
	memset(&a, 0, sizeof a);
	a.node_id = -1;
	a.incarnation = (int64_t)getpid() * 1000 + rand() % 1000;
	snprintf(a.endpoints, sizeof a.endpoints, "PLAINTEXT://h:1");
	assert_int_equal(meta_agent_register(m, &a, 60000, &v), 0);
	free(v.agents);
	return a;
}

static int64_t take_lease(struct meta *m, const struct meta_agent *self, const char *name)
{
	struct meta_lease l = { .name = name };
	assert_int_equal(meta_leases_sync(m, self, 60000, &l, 1), 0);
	return l.epoch;
}

/* InitProducerId retried while the id is read (a client's retries of
 * COORDINATOR_LOAD_IN_PROGRESS): the producer id. */
static int64_t producer_once_loaded(struct txn_svc *s, const char *id)
{
	int64_t until = clock_mono_us() + 10000000;
	for (;;) {
		int r = init(s, id, 60000);
		RUN_UNTIL(T.answered[r]);
		if (T.error[r] != KERR_COORDINATOR_LOAD_IN_PROGRESS) {
			assert_int_equal(T.error[r], KERR_NONE);
			return T.pid[r];
		}
		assert_true(clock_mono_us() < until);
		uv_run(&T.loop, UV_RUN_ONCE);
	}
}

/* Cluster mode (fenced): an id is served only once adopted at its
 * lease's epoch. Its coordinator's agent stops counting (deregistered,
 * as by a kill) after storing PrepareCommit: another agent takes the
 * lease, adopts the id and writes the markers again. The deposed one,
 * its markers acknowledged late, is refused its CompleteCommit by the
 * lease's fence (its version alone would still pass), answers its
 * EndTxn NOT_COORDINATOR and drops the id; released, it answers
 * NOT_COORDINATOR. The new coordinator completes the commit. */
static void test_fenced_takeover(void **state)
{
	(void)state;
	struct meta *ma = open_store(), *mb = open_store();
	struct meta_agent aa = agent_on(ma), ab = agent_on(mb);
	struct txn_svc *a = start_mode(ma, true);
	assert_true(txn_svc_loaded(a)); /* nothing to load up front */
	int r = init(a, "t", 60000);
	assert_int_equal(T.error[r], KERR_NOT_COORDINATOR);
	int64_t ea = take_lease(ma, &aa, META_LEASE_TXN_PREFIX "t");
	assert_true(ea > 0);
	assert_int_equal(take_lease(mb, &ab, META_LEASE_TXN_PREFIX "t"), 0);
	assert_int_equal(txn_svc_adopt(a, "t", ea), 0);
	r = init(a, "t", 60000);
	assert_int_equal(T.error[r], KERR_COORDINATOR_LOAD_IN_PROGRESS);
	int64_t got;
	assert_true(txn_svc_adopted(a, K("t"), &got));
	assert_int_equal(got, ea);
	int64_t pid = producer_once_loaded(a, "t");
	AWAIT(r, add(a, "t", pid, 0, 2));
	assert_int_equal(T.error[r], KERR_NONE);
	int e = end(a, "t", pid, 0, true);
	RUN_UNTIL(T.marker_count == 1);
	expect_stored("t", TXN_PREPARE_COMMIT, 0, 2, 0);

	/* a's agent is gone: b takes the lease at a higher epoch. */
	assert_int_equal(meta_agent_deregister(ma, &aa), 0);
	int64_t eb = take_lease(mb, &ab, META_LEASE_TXN_PREFIX "t");
	assert_true(eb > ea);
	struct txn_svc *b = start_mode(mb, true);
	assert_int_equal(txn_svc_adopt(b, "t", eb), 0);
	RUN_UNTIL(T.marker_count == 2);
	assert_true(T.markers[1].commit);
	assert_int_equal(T.markers[1].txn_seq, T.markers[0].txn_seq);

	/* The deposed coordinator's late CompleteCommit is fenced. */
	txn_svc_markers_done(a, "t", T.markers[0].txn_seq, KERR_NONE);
	RUN_UNTIL(T.answered[e]);
	assert_int_equal(T.error[e], KERR_NOT_COORDINATOR);
	expect_stored("t", TXN_PREPARE_COMMIT, 0, 2, 0);
	txn_svc_release(a, "t");
	assert_false(txn_svc_adopted(a, K("t"), NULL));
	r = end(a, "t", pid, 0, true);
	assert_int_equal(T.error[r], KERR_NOT_COORDINATOR);

	/* The new coordinator completes it; the retried EndTxn succeeds. */
	txn_svc_markers_done(b, "t", T.markers[1].txn_seq, KERR_NONE);
	RUN_UNTIL(!txn_find(txn_svc_coordinator(b), K("t"))->pending);
	expect_stored("t", TXN_COMPLETE_COMMIT, 0, 0, 0);
	e = end(b, "t", pid, 0, true);
	assert_int_equal(T.error[e], KERR_NONE);
	/* Released, b drops it; adopted again it reads it back. */
	txn_svc_release(b, "t");
	assert_null(txn_find(txn_svc_coordinator(b), K("t")));
	assert_int_equal(txn_svc_adopt(b, "t", eb), 0);
	RUN_UNTIL(txn_find(txn_svc_coordinator(b), K("t")));
	assert_int_equal(txn_find(txn_svc_coordinator(b), K("t"))->r.state, TXN_COMPLETE_COMMIT);
	stop(a);
	stop(b);
	meta_close(ma);
	meta_close(mb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_takeover_mid_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offsets_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fenced_takeover, setup, teardown),
	};
	return meta_backends_run("txn_service", tests, sizeof tests / sizeof tests[0]);
}
