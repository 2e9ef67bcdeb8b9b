/* test_writer.c — the write path against the in-memory object store with
 * scripted faults and a real SQLite metadata store:
 *  - an append is answered only after its object is stored and committed,
 *    with dense offsets (invariants 1 and 2);
 *  - a failed store write fails every batch of the object and assigns no
 *    offsets; the next object gets the offsets the failed one did not use;
 *  - when an earlier upload stalls, a later object does not commit before
 *    it (commits in seal order, invariant 6);
 *  - objects queued behind a failed one are failed without being written,
 *    and the object open then fails too;
 *  - with seal_when_idle, an append to an idle writer is committed without
 *    waiting out the flush interval, appends that arrive while an object
 *    is in the pipeline go together into the next, and without it the
 *    interval is waited out; a stream's object (idle_seal_hold_bytes
 *    arrived while one was in the pipeline) waits for idle_seal_age_us
 *    before the emptied pipeline seals it, and appends meanwhile join
 *    it, while a smaller one goes at once;
 *  - the commit's idempotent-producer verdicts reach each appender;
 *  - transactional batches and markers reach the commit with their id,
 *    number and type, and writer_seal_soon seals a marker's object at
 *    once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "base/clock.h"

#include "base/err.h"
#include "meta/meta.h"
#include "objstore/objstore.h"
#include "storage/batch.h"
#include "storage/object.h"
#include "storage/writer.h"
#include "txn/coordinator.h"

struct fixture {
	char dir[64];
	uv_loop_t loop;
	struct objstore *store;
	struct meta *meta;
	struct writer *w;
	struct meta_topic topic;
	int commits;           /* commit hook calls, in order */
	size_t hook_rows;      /* batches the hook was given, in all */
	int64_t hook_first_offset[16];
	int64_t hook_lso[16];  /* the last batch's partition's LSO */
	int64_t hook_aborted_pid[16];
};

struct result {
	int done;
	int err;
	int64_t base_offset;
	int order;             /* when it was answered, across results */
	int64_t done_us;       /* clock_mono_us() when answered */
};

static int answered;

static void on_done(void *arg, int err, int64_t base_offset)
{
	struct result *r = arg;
	r->done++;
	r->err = err;
	r->base_offset = base_offset;
	r->order = answered++;
	r->done_us = clock_mono_us();
}

/* A batch of `records` records; the writer looks only at the header.
 * Partition 1's batches come from a buffer of their own with other bytes
 * (filled by setup), so the object's layout is checked byte for byte. */
static uint8_t batch_bytes[256], batch_bytes2[256];

/* The object the store got from the writer's gathered put: it parses,
 * its footer names every batch where the hook's pieces say, and each
 * piece's bytes (the appender's own, not a copy) are what the store
 * holds there. */
static void check_stored_object(struct fixture *f, const char *key, uint64_t object_len,
				const struct kpiece *pieces, size_t n_pieces)
{
	uint64_t size = 0;
	assert_int_equal(objstore_head(f->store, key, &size), 0);
	assert_int_equal(size, object_len);
	uint8_t *obj = malloc(object_len);
	assert_non_null(obj);
	assert_int_equal(objstore_get(f->store, key, 0, object_len, obj), 0);
	struct object_entry *e = NULL;
	uint32_t count = 0;
	assert_int_equal(object_parse(obj, object_len, &e, &count), 0);
	assert_int_equal(count, n_pieces);
	for (size_t i = 0; i < n_pieces; i++) {
		assert_int_equal(e[i].byte_offset, pieces[i].offset);
		assert_int_equal(e[i].length, pieces[i].len);
		assert_memory_equal(obj + pieces[i].offset, pieces[i].data, pieces[i].len);
		assert_true(pieces[i].data == batch_bytes || pieces[i].data == batch_bytes2);
	}
	free(e);
	free(obj);
}

static void on_commit(void *arg, const char *key, uint64_t object_len,
		      const struct kpiece *pieces, size_t n_pieces,
		      const struct writer_committed *b, size_t n)
{
	struct fixture *f = arg;
	check_stored_object(f, key, object_len, pieces, n_pieces);
	if (f->commits < 16) {
		f->hook_first_offset[f->commits] = n ? b[0].row.base_offset : -1;
		f->hook_lso[f->commits] = n ? b[n - 1].last_stable_offset : -2;
		f->hook_aborted_pid[f->commits] = n ? b[n - 1].aborted[0].producer_id : -2;
	}
	f->hook_rows += n;
	f->commits++;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	strcpy(f->dir, "/tmp/sluice-writer-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	char url[128];
	snprintf(url, sizeof url, "sqlite:%s/meta.db", f->dir);
	assert_int_equal(meta_open(url, &f->meta), 0);
	assert_int_equal(objstore_open("mem:", &f->store), 0);
	assert_int_equal(meta_topic_create(f->meta, "t", 2, NULL, 0, NULL, &f->topic), 0);
	uv_loop_init(&f->loop);
	for (size_t i = 0; i < sizeof batch_bytes; i++) {
		batch_bytes[i] = (uint8_t)i;
		batch_bytes2[i] = (uint8_t)(0xA5 ^ i);
	}
	struct writer_config cfg = { .flush_interval_ms = 1, .flush_bytes = 1 << 20,
				     .buffered_bytes_max = 1 << 26, .uploads_max = 4 };
	assert_int_equal(writer_new(&f->loop, f->store, f->meta, &cfg, on_commit, f, &f->w), 0);
	answered = 0;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	writer_free(f->w);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	uv_loop_close(&f->loop);
	meta_topic_free(&f->topic);
	meta_close(f->meta);
	objstore_close(f->store);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}


static struct batch_info info_of(int records)
{
	struct batch_info info;
	memset(&info, 0, sizeof info);
	info.batch_length = (int32_t)sizeof batch_bytes - BATCH_LOG_OVERHEAD;
	info.magic = 2;
	info.record_count = records;
	info.last_offset_delta = records - 1;
	info.producer_id = -1;
	info.base_sequence = -1;
	info.max_timestamp = 1000;
	return info;
}

static void append(struct fixture *f, int32_t partition, int records, struct result *r)
{
	struct batch_info info = info_of(records);
	assert_int_equal(writer_append(f->w, f->topic.tid, f->topic.uuid, partition,
				       partition == 1 ? batch_bytes2 : batch_bytes, NULL, &info,
				       on_done, r), 0);
}

/* The fixture's writer again, with another flush interval and upload
 * limit. */
static void writer_restart(struct fixture *f, int flush_interval_ms, int uploads_max)
{
	writer_free(f->w);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	struct writer_config cfg = { .flush_interval_ms = flush_interval_ms, .flush_bytes = 1 << 20,
				     .buffered_bytes_max = 1 << 26, .uploads_max = uploads_max };
	assert_int_equal(writer_new(&f->loop, f->store, f->meta, &cfg, on_commit, f, &f->w), 0);
}

static void run_until_idle(struct fixture *f)
{
	while (!writer_idle(f->w))
		uv_run(&f->loop, UV_RUN_ONCE);
}

static void test_offsets_dense_after_commit(void **state)
{
	struct fixture *f = *state;
	struct result r[3] = { 0 };
	append(f, 0, 5, &r[0]);
	append(f, 1, 2, &r[1]);
	append(f, 0, 3, &r[2]);
	/* Nothing is answered before the loop runs the flush. */
	assert_int_equal(r[0].done + r[1].done + r[2].done, 0);
	run_until_idle(f);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(r[i].done, 1);
		assert_int_equal(r[i].err, 0);
	}
	assert_int_equal(r[0].base_offset, 0);
	assert_int_equal(r[2].base_offset, 5);
	assert_int_equal(r[1].base_offset, 0);
	struct meta_partition p;
	assert_int_equal(meta_partition_get(f->meta, f->topic.tid, 0, &p), 0);
	assert_int_equal(p.high_watermark, 8);
	/* The object is in the store: a batch row points into it. */
	struct meta_batch_row rows[4];
	size_t n = 0;
	assert_int_equal(meta_batches_from(f->meta, f->topic.tid, 0, 0, 4, rows, &n), 0);
	assert_int_equal(n, 2);
	uint64_t size = 0;
	assert_int_equal(objstore_head(f->store, rows[0].object_key, &size), 0);
	assert_true(size > 2 * sizeof batch_bytes);
}

static void test_store_failure_assigns_nothing(void **state)
{
	struct fixture *f = *state;
	struct result r[2] = { 0 };
	assert_int_equal(objstore_mem_fault(f->store, OBJSTORE_FAULT_FAIL, 1, 0), 0);
	append(f, 0, 4, &r[0]);
	run_until_idle(f);
	assert_int_equal(r[0].done, 1);
	assert_int_equal(r[0].err, SL_ESTORE);
	assert_int_equal(r[0].base_offset, -1);
	struct meta_partition p;
	assert_int_equal(meta_partition_get(f->meta, f->topic.tid, 0, &p), 0);
	assert_int_equal(p.high_watermark, 0);
	assert_int_equal(f->commits, 0);
	/* The store is back: the next batch takes offset 0. */
	append(f, 0, 4, &r[1]);
	run_until_idle(f);
	assert_int_equal(r[1].err, 0);
	assert_int_equal(r[1].base_offset, 0);
}

static void test_lost_response_is_not_acknowledged(void **state)
{
	struct fixture *f = *state;
	struct result r = { 0 };
	/* The store kept the bytes but said it timed out: not acknowledged,
	 * no offsets (the object becomes an orphan for the cleaner). */
	assert_int_equal(objstore_mem_fault(f->store, OBJSTORE_FAULT_LOSE, 1, 0), 0);
	append(f, 1, 1, &r);
	run_until_idle(f);
	assert_int_equal(r.err, SL_ESTORE);
	struct meta_partition p;
	assert_int_equal(meta_partition_get(f->meta, f->topic.tid, 1, &p), 0);
	assert_int_equal(p.high_watermark, 0);
}

static void test_commits_in_seal_order(void **state)
{
	struct fixture *f = *state;
	struct result r[2] = { 0 };
	/* The first object's upload stalls; the second's does not. */
	assert_int_equal(objstore_mem_fault(f->store, OBJSTORE_FAULT_STALL_MS, 1, 200), 0);
	append(f, 0, 1, &r[0]);
	writer_flush_now(f->w);
	append(f, 0, 1, &r[1]);
	writer_flush_now(f->w);
	run_until_idle(f);
	assert_int_equal(r[0].err, 0);
	assert_int_equal(r[1].err, 0);
	assert_int_equal(r[0].base_offset, 0);
	assert_int_equal(r[1].base_offset, 1);
	assert_true(r[0].order < r[1].order);
	assert_int_equal(f->commits, 2);
	assert_int_equal(f->hook_first_offset[0], 0);
	assert_int_equal(f->hook_first_offset[1], 1);
	/* No transaction open: the LSO is the high watermark. */
	assert_int_equal(f->hook_lso[0], 1);
	assert_int_equal(f->hook_lso[1], 2);
	assert_int_equal(f->hook_aborted_pid[0], -1);
}

/* Objects whose uploads finished while an earlier one was still being
 * written commit together, in one metadata transaction, in seal order
 * (the first, started with nothing ahead of it, commits in its own
 * upload job). */
static void test_group_commit(void **state)
{
	struct fixture *f = *state;
	struct result r[3] = { 0 };
	assert_int_equal(objstore_mem_fault(f->store, OBJSTORE_FAULT_STALL_MS, 1, 500), 0);
	append(f, 0, 1, &r[0]);
	writer_flush_now(f->w);
	/* Let the first object reach its (stalled) put before the others. */
	for (int i = 0; i < 20; i++) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		usleep(5 * 1000);
	}
	for (int i = 1; i < 3; i++) {
		append(f, 0, 1, &r[i]);
		writer_flush_now(f->w);
	}
	run_until_idle(f);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(r[i].err, 0);
		assert_int_equal(r[i].base_offset, i);
		assert_int_equal(f->hook_first_offset[i], i);
	}
	assert_true(r[0].order < r[1].order && r[1].order < r[2].order);
	struct writer_stats st;
	writer_get_stats(f->w, &st);
	assert_int_equal(st.objects_written, 3);
	assert_int_equal(st.commits, 2);
}

static void test_failure_fails_later_objects(void **state)
{
	struct fixture *f = *state;
	struct result r[3] = { 0 };
	/* The first put takes the fault and fails 300 ms later: the second
	 * object is sealed after the fault is taken but before the failure
	 * is known. The put starts from a loop turn, so turn the loop until
	 * the store has handed out the fault (not a fixed sleep: on a loaded
	 * machine the pool may not run for a while). */
	assert_int_equal(objstore_mem_fault(f->store, OBJSTORE_FAULT_FAIL, 1, 300), 0);
	append(f, 0, 1, &r[0]);
	writer_flush_now(f->w);
	for (int i = 0; i < 2000 && objstore_mem_faults_left(f->store) != 0; i++) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	assert_int_equal(objstore_mem_faults_left(f->store), 0);
	assert_false(r[0].done);
	append(f, 0, 1, &r[1]);
	writer_flush_now(f->w);
	run_until_idle(f);
	/* The second object was sealed before the first one's failure was
	 * known: it must not commit ahead of a retry of the first. */
	assert_int_equal(r[0].err, SL_ESTORE);
	assert_int_equal(r[1].err, SL_ESTORE);
	assert_int_equal(f->commits, 0);
	/* What comes after works and starts at offset 0. */
	append(f, 0, 1, &r[2]);
	run_until_idle(f);
	assert_int_equal(r[2].err, 0);
	assert_int_equal(r[2].base_offset, 0);
}

/* A batch in the object still open when an earlier one fails fails too:
 * committed, it would be acknowledged ahead of the retry of the earlier
 * one (an idempotent client takes the earlier batch as written then). */
static void test_failure_fails_open_object(void **state)
{
	struct fixture *f = *state;
	struct result r[3] = { 0 };
	writer_restart(f, 200, 4);
	assert_int_equal(objstore_mem_fault(f->store, OBJSTORE_FAULT_FAIL, 1, 0), 0);
	append(f, 0, 1, &r[0]);
	writer_flush_now(f->w);
	append(f, 0, 1, &r[1]); /* open until its flush interval, after the failure */
	run_until_idle(f);
	assert_int_equal(r[0].err, SL_ESTORE);
	assert_int_equal(r[1].err, SL_ESTORE);
	assert_int_equal(f->commits, 0);
	/* The object opened after the failure is not doomed. */
	append(f, 0, 1, &r[2]);
	run_until_idle(f);
	assert_int_equal(r[2].err, 0);
	assert_int_equal(r[2].base_offset, 0);
}

static int count_key(void *arg, const char *key, uint64_t size, int64_t mtime_ms)
{
	(*(int *)arg)++;
	return 0;
}

static void test_queued_behind_failure_not_written(void **state)
{
	struct fixture *f = *state;
	struct result r[3] = { 0 };
	/* One upload at a time: the second and third objects wait in the
	 * queue while the first one's write fails. */
	writer_restart(f, 1, 1);
	assert_int_equal(objstore_mem_fault(f->store, OBJSTORE_FAULT_FAIL, 1, 0), 0);
	for (int i = 0; i < 3; i++) {
		append(f, 0, 1, &r[i]);
		writer_flush_now(f->w);
	}
	run_until_idle(f);
	for (int i = 0; i < 3; i++)
		assert_int_equal(r[i].err, SL_ESTORE);
	assert_int_equal(f->commits, 0);
	int objects = 0;
	assert_int_equal(objstore_list(f->store, "", count_key, &objects), 0);
	assert_int_equal(objects, 0);
}

static void append_idem(struct fixture *f, int16_t epoch, int32_t seq, struct result *r)
{
	struct batch_info info = info_of(1);
	info.producer_id = 77;
	info.producer_epoch = epoch;
	info.base_sequence = seq;
	assert_int_equal(writer_append(f->w, f->topic.tid, f->topic.uuid, 0, batch_bytes, NULL,
				       &info, on_done, r), 0);
}

/* The commit's producer checks reach the appenders: a retry in the same
 * object is answered with the original's offset, a gap with SL_ESEQUENCE,
 * an old epoch with SL_EFENCED; the rest of the object commits with dense
 * offsets, and the commit hook (the batch index) sees only the batches
 * that got a row. */
static void test_producer_checks_reach_appenders(void **state)
{
	struct fixture *f = *state;
	struct result r[6] = { 0 };
	append_idem(f, 1, 0, &r[0]);
	append_idem(f, 1, 0, &r[1]); /* a retry */
	append_idem(f, 1, 5, &r[2]); /* a gap */
	append_idem(f, 1, 1, &r[3]);
	append_idem(f, 0, 2, &r[4]); /* an old epoch */
	append(f, 0, 2, &r[5]);
	run_until_idle(f);
	static const int want_err[] = { 0, 0, SL_ESEQUENCE, 0, SL_EFENCED, 0 };
	static const int64_t want_offset[] = { 0, 0, -1, 1, -1, 2 };
	for (int i = 0; i < 6; i++) {
		assert_int_equal(r[i].done, 1);
		assert_int_equal(r[i].err, want_err[i]);
		assert_int_equal(r[i].base_offset, want_offset[i]);
	}
	struct meta_partition p;
	assert_int_equal(meta_partition_get(f->meta, f->topic.tid, 0, &p), 0);
	assert_int_equal(p.high_watermark, 4);
	assert_int_equal(f->commits, 1);
	assert_int_equal(f->hook_rows, 3);
}

static void test_deleted_topic_gets_not_found(void **state)
{
	struct fixture *f = *state;
	struct result r = { 0 };
	append(f, 0, 1, &r);
	assert_int_equal(meta_topic_delete(f->meta, "t"), 0);
	run_until_idle(f);
	assert_int_equal(r.err, SL_ENOTFOUND);
}

/* A writer of this fixture's with its own interval and idle rule. */
static void writer_replace_aged(struct fixture *f, int64_t interval_ms, bool seal_when_idle,
				int64_t idle_seal_age_us, size_t idle_seal_hold_bytes)
{
	writer_free(f->w);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	struct writer_config cfg = { .flush_interval_ms = interval_ms, .flush_bytes = 1 << 20,
				     .buffered_bytes_max = 1 << 26, .uploads_max = 4,
				     .seal_when_idle = seal_when_idle,
				     .idle_seal_age_us = idle_seal_age_us,
				     .idle_seal_hold_bytes = idle_seal_hold_bytes };
	assert_int_equal(writer_new(&f->loop, f->store, f->meta, &cfg, on_commit, f, &f->w), 0);
}

static void writer_replace(struct fixture *f, int64_t interval_ms, bool seal_when_idle)
{
	writer_replace_aged(f, interval_ms, seal_when_idle, 0, 0);
}

static int64_t ms_since(int64_t t0_us)
{
	return (clock_mono_us() - t0_us) / 1000;
}

/* Idle: the appends of one loop turn are one object, committed long
 * before the 10 s interval. */
static void test_idle_seals_at_once(void **state)
{
	struct fixture *f = *state;
	struct result r[2] = { 0 };
	writer_replace(f, 10000, true);
	int64_t t0 = clock_mono_us();
	append(f, 0, 1, &r[0]);
	append(f, 1, 1, &r[1]);
	run_until_idle(f);
	assert_true(ms_since(t0) < 2000);
	assert_int_equal(r[0].err, 0);
	assert_int_equal(r[1].err, 0);
	struct writer_stats st;
	writer_get_stats(f->w, &st);
	assert_int_equal(st.objects_written, 1);
}

/* Busy: what arrives while an object is being written waits for it, then
 * goes as one object, at once (not after the 10 s interval). */
static void test_busy_appends_share_next_object(void **state)
{
	struct fixture *f = *state;
	struct result r[4] = { 0 };
	writer_replace(f, 10000, true);
	assert_int_equal(objstore_mem_fault(f->store, OBJSTORE_FAULT_STALL_MS, 1, 300), 0);
	int64_t t0 = clock_mono_us();
	append(f, 0, 1, &r[0]);
	/* Sealed at the end of this turn, its put stalls. */
	for (int i = 0; i < 10; i++) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		usleep(5 * 1000);
	}
	struct writer_stats st;
	writer_get_stats(f->w, &st);
	assert_int_equal(st.objects_written, 0);
	for (int i = 1; i < 4; i++) {
		append(f, i % 2, 1, &r[i]);
		uv_run(&f->loop, UV_RUN_NOWAIT);
	}
	run_until_idle(f);
	assert_true(ms_since(t0) < 5000);
	for (int i = 0; i < 4; i++)
		assert_int_equal(r[i].err, 0);
	assert_true(r[0].order < r[1].order);
	writer_get_stats(f->w, &st);
	assert_int_equal(st.objects_written, 2);
	assert_int_equal(r[3].base_offset, 1); /* partition 1: r[1], r[3] */
	assert_int_equal(r[2].base_offset, 1); /* partition 0: r[0], r[2] */
}

/* r[0] to an idle writer, whose put stalls 100 ms; r[1] while it is in
 * the pipeline; r[2] once r[0] is answered. Returns when r[1] was
 * appended. */
static int64_t trickle(struct fixture *f, size_t hold_bytes, struct result r[3])
{
	writer_replace_aged(f, 10000, true, 2000 * 1000, hold_bytes);
	assert_int_equal(objstore_mem_fault(f->store, OBJSTORE_FAULT_STALL_MS, 1, 100), 0);
	append(f, 0, 1, &r[0]); /* idle: sealed after this turn, its put stalls */
	uv_run(&f->loop, UV_RUN_NOWAIT);
	int64_t t1 = clock_mono_us();
	append(f, 1, 1, &r[1]); /* the pipeline is busy: opens the next object */
	while (!r[0].done)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(r[0].err, 0);
	append(f, 0, 1, &r[2]);
	run_until_idle(f);
	for (int i = 0; i < 3; i++)
		assert_int_equal(r[i].err, 0);
	assert_int_equal(r[2].base_offset, 1); /* partition 0: r[0], r[2] */
	return t1;
}

/* A stream (here every object counts as one: hold bytes 0): what arrived
 * while an object was in the pipeline is not sealed the moment the
 * pipeline empties but once it is idle_seal_age_us (2 s: a generous
 * margin over the first object's put and commit on a loaded machine) old, and an
 * append made after the pipeline emptied joins it instead of being
 * sealed on its own: two objects, not three, long before the 10 s
 * interval. */
static void test_stream_waits_idle_seal_age(void **state)
{
	struct fixture *f = *state;
	struct result r[3] = { 0 };
	int64_t t0 = clock_mono_us();
	int64_t t1 = trickle(f, 0, r);
	assert_true(ms_since(t0) < 8000);
	struct writer_stats st;
	writer_get_stats(f->w, &st);
	assert_int_equal(st.objects_written, 2);
	assert_true(r[1].done_us - t1 >= 1990 * 1000);
	assert_true(r[2].done_us - t1 >= 1990 * 1000); /* in r[1]'s object */
}

/* Light load (less than idle_seal_hold_bytes came during the put): the
 * emptied pipeline seals it at once, and r[2] goes in an object of its
 * own: three objects. */
static void test_light_load_seals_at_once(void **state)
{
	struct fixture *f = *state;
	struct result r[3] = { 0 };
	trickle(f, 1 << 20, r);
	struct writer_stats st;
	writer_get_stats(f->w, &st);
	assert_int_equal(st.objects_written, 3);
}

/* Without seal_when_idle (S3), a lone append waits out the interval. */
static void test_interval_without_idle_seal(void **state)
{
	struct fixture *f = *state;
	struct result r = { 0 };
	writer_replace(f, 300, false);
	int64_t t0 = clock_mono_us();
	append(f, 0, 1, &r);
	run_until_idle(f);
	assert_int_equal(r.err, 0);
	assert_true(ms_since(t0) >= 290);
}

static void append_txn(struct fixture *f, const struct writer_txn *txn, int64_t pid,
		       int32_t seq, struct result *r)
{
	struct batch_info info = info_of(1);
	info.producer_id = pid;
	info.producer_epoch = 0;
	info.base_sequence = seq;
	info.attributes = txn->kind == META_BATCH_MARKER ? 0x30 : 0x10;
	assert_int_equal(writer_append_txn(f->w, f->topic.tid, f->topic.uuid, 0, batch_bytes, NULL,
					   &info, txn, on_done, r), 0);
}

/* Transactional batches and markers carry their id (copied: the
 * caller's buffer is gone before the commit), number and type to the
 * commit, whose verdicts reach the appenders; the commit hook gets the
 * LSO the open transaction holds and the aborted range its ABORT marker
 * closes. writer_seal_soon seals the marker's object at the end of the
 * loop turn, not at the (here 10 s) flush interval. */
static void test_transactions(void **state)
{
	struct fixture *f = *state;
	writer_replace(f, 10000, false);
	struct txn_tp tp = { f->topic.tid, 0 };
	struct txn_record rec = { .producer_id = 500, .last_producer_id = -1, .producer_epoch = 0,
				  .last_producer_epoch = -1, .timeout_ms = 60000,
				  .state = TXN_ONGOING, .txn_seq = 3, .start_ms = 1000,
				  .update_ms = 1000, .partitions = &tp, .partition_count = 1 };
	int64_t version = 0;
	assert_int_equal(meta_txn_persist(f->meta, "tx", &rec, 0, &version), 0);
	char id[8] = "tx", other[8] = "nobody";
	struct writer_txn data = { META_BATCH_TXN_DATA, id, 2, 0, false };
	struct writer_txn unknown = { META_BATCH_TXN_DATA, other, 6, 0, false };
	struct result r[4] = { 0 };
	append(f, 0, 2, &r[0]);                     /* 0..1 */
	append_txn(f, &data, 500, 0, &r[1]);        /* 2, opens the transaction */
	append_txn(f, &unknown, 501, 0, &r[2]);     /* no such id */
	memset(id, 'x', sizeof id);                 /* the writer kept its own copy */
	writer_flush_now(f->w);
	run_until_idle(f);
	assert_int_equal(r[0].err, 0);
	assert_int_equal(r[1].err, 0);
	assert_int_equal(r[1].base_offset, 2);
	assert_int_equal(r[2].err, SL_ETXNUNKNOWN);
	assert_int_equal(f->hook_lso[0], 2);
	rec.state = TXN_PREPARE_ABORT;
	assert_int_equal(meta_txn_persist(f->meta, "tx", &rec, 0, &version), 0);
	struct writer_txn stale = { META_BATCH_MARKER, "tx", 2, 2, false };
	struct writer_txn abort = { META_BATCH_MARKER, "tx", 2, 3, false };
	memset(r, 0, sizeof r);
	int64_t t0 = clock_mono_us();
	append_txn(f, &stale, 500, -1, &r[0]);      /* another transaction's */
	append_txn(f, &abort, 500, -1, &r[1]);
	writer_seal_soon(f->w);
	run_until_idle(f);
	assert_true(clock_mono_us() - t0 < 5000000);
	assert_int_equal(r[0].err, SL_ETXNSTALE);
	assert_int_equal(r[1].err, 0);
	assert_int_equal(r[1].base_offset, 3);
	assert_int_equal(f->commits, 2);
	assert_int_equal(f->hook_lso[1], 4);
	assert_int_equal(f->hook_aborted_pid[1], 500);
	/* Written again (a coordinator retrying after a lost answer):
	 * refused as already applied, no offset. */
	memset(r, 0, sizeof r);
	append_txn(f, &abort, 500, -1, &r[0]);
	writer_seal_soon(f->w);
	run_until_idle(f);
	assert_int_equal(r[0].err, SL_ETXNSTALE);
	struct meta_partition p;
	assert_int_equal(meta_partition_get(f->meta, f->topic.tid, 0, &p), 0);
	assert_int_equal(p.high_watermark, 4);
	assert_int_equal(p.last_stable_offset, 4);
}

int main(void)
{
	memset(batch_bytes, 0xab, sizeof batch_bytes);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_offsets_dense_after_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_failure_assigns_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_response_is_not_acknowledged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commits_in_seal_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_fails_later_objects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_fails_open_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queued_behind_failure_not_written, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deleted_topic_gets_not_found, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_seals_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy_appends_share_next_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_waits_idle_seal_age, setup, teardown),
		cmocka_unit_test_setup_teardown(test_light_load_seals_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interval_without_idle_seal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_producer_checks_reach_appenders, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
