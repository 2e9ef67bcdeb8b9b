/* test_fetch_session.c — the fetch session cache as pure logic (no
 * broker): what a full and an incremental fetch list, which partitions
 * an incremental answer carries, forgotten partitions, a session left
 * empty, and the cache's bounds: a stale least recently used session
 * gives up its slot, a fresh one only to a larger session, the
 * partition budgets (all sessions', one session's), names longer
 * than any topic's, and what an incremental fetch reads (named, pending
 * and journaled partitions only, all when it cannot tell). tests/integration/test_fetch_sessions.py drives the
 * same over the wire. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/fetch_session.h"
#include "base/arena.h"
#include "base/limits.h"
#include "proto/kerr.h"

static struct arena arena;

/* A Fetch v12 request for topic "t": n partitions from parts (offset 10
 * each), forgetting nf from forget. */
static struct kmsg_fetch_req *req(int32_t session_id, int32_t epoch, const int32_t *parts,
				  int n, const int32_t *forget, int nf)
{
	struct kmsg_fetch_req *m = arena_alloc(&arena, sizeof *m);
	kmsg_fetch_req_init(m);
	m->session_id = session_id;
	m->session_epoch = epoch;
	m->topics_count = n ? 1 : 0;
	m->topics = arena_alloc(&arena, sizeof *m->topics);
	kmsg_fetch_req_fetch_topic_init(m->topics);
	m->topics->topic = KSTR("t");
	m->topics->partitions_count = n;
	m->topics->partitions = arena_alloc(&arena, (n ? n : 1) * sizeof *m->topics->partitions);
	for (int i = 0; i < n; i++) {
		kmsg_fetch_req_fetch_partition_init(&m->topics->partitions[i]);
		m->topics->partitions[i].partition = parts[i];
		m->topics->partitions[i].fetch_offset = 10;
		m->topics->partitions[i].partition_max_bytes = 1000;
	}
	m->forgotten_topics_data_count = nf ? 1 : 0;
	m->forgotten_topics_data = arena_alloc(&arena, sizeof *m->forgotten_topics_data);
	kmsg_fetch_req_forgotten_topic_init(m->forgotten_topics_data);
	m->forgotten_topics_data->topic = KSTR("t");
	m->forgotten_topics_data->partitions_count = nf;
	m->forgotten_topics_data->partitions = (int32_t *)forget;
	return m;
}

/* Full fetch opening a session at now_ms; every partition answered with
 * high watermark 20. Returns the session id. */
static int32_t open_session(struct fetch_sessions *c, int64_t now_ms, const int32_t *parts, int n)
{
	struct fetch_session_ctx ctx;
	assert_int_equal(fetch_session_begin(c, &arena, now_ms, 12, req(0, 0, parts, n, NULL, 0),
					     NULL, &ctx), 0);
	assert_int_equal(ctx.kind, FETCH_SESSION_FULL);
	for (size_t i = 0; i < ctx.count; i++)
		ctx.parts[i].high_watermark = 20;
	return fetch_session_end(c, now_ms, &ctx);
}

/* An incremental fetch with nothing new; returns its error. */
static int16_t touch(struct fetch_sessions *c, int64_t now_ms, int32_t id, int32_t epoch)
{
	struct fetch_session_ctx ctx;
	assert_int_equal(fetch_session_begin(c, &arena, now_ms, 12, req(id, epoch, NULL, 0, NULL, 0),
					     NULL, &ctx), 0);
	if (ctx.error)
		return ctx.error;
	for (size_t i = 0; i < ctx.count; i++)
		ctx.parts[i].high_watermark = 20;
	fetch_session_end(c, now_ms, &ctx);
	return 0;
}

static void test_incremental(void **state)
{
	struct fetch_sessions *c = fetch_sessions_new(10, 100, 1000);
	static const int32_t p012[] = { 0, 1, 2 };
	int32_t id = open_session(c, 0, p012, 3);
	assert_true(id > 0);

	/* Partition 1 moves on and 5 joins: the fetch reads the session's
	 * partitions, with the new position. */
	struct fetch_session_ctx ctx;
	static const int32_t p15[] = { 1, 5 };
	struct kmsg_fetch_req *m = req(id, 1, p15, 2, NULL, 0);
	m->topics->partitions[0].fetch_offset = 15;
	assert_int_equal(fetch_session_begin(c, &arena, 1, 12, m, NULL, &ctx), 0);
	assert_int_equal(ctx.kind, FETCH_SESSION_INCREMENTAL);
	assert_int_equal(ctx.count, 4);
	assert_int_equal(ctx.parts[1].partition, 1);
	assert_int_equal(ctx.parts[1].fetch_offset, 15);
	assert_int_equal(ctx.parts[3].partition, 5);
	for (size_t i = 0; i < ctx.count; i++)
		ctx.parts[i].high_watermark = 20;
	ctx.parts[0].records_bytes = 100;      /* records */
	ctx.parts[2].high_watermark = 21;      /* moved */
	assert_int_equal(fetch_session_end(c, 1, &ctx), id);
	/* 0 (records), 2 (moved), 5 (new); 1 unchanged. */
	assert_true(ctx.parts[0].respond && !ctx.parts[1].respond && ctx.parts[2].respond &&
		    ctx.parts[3].respond);

	/* Answered ones went to the end: 1 first now. An error is answered
	 * every time. */
	assert_int_equal(fetch_session_begin(c, &arena, 2, 12, req(id, 2, NULL, 0, NULL, 0), NULL, &ctx), 0);
	assert_int_equal(ctx.parts[0].partition, 1);
	assert_int_equal(ctx.parts[1].partition, 0);
	for (size_t i = 0; i < ctx.count; i++)
		ctx.parts[i].high_watermark = ctx.parts[i].partition == 2 ? 21 : 20;
	ctx.parts[0].error = KERR_OFFSET_OUT_OF_RANGE;
	fetch_session_end(c, 2, &ctx);
	for (size_t i = 0; i < ctx.count; i++)
		assert_int_equal(ctx.parts[i].respond, i == 0);

	/* Wrong epoch, wrong id, wrong version. */
	assert_int_equal(touch(c, 3, id, 2), KERR_INVALID_FETCH_SESSION_EPOCH);
	assert_int_equal(touch(c, 3, id + 1, 3), KERR_FETCH_SESSION_ID_NOT_FOUND);
	assert_int_equal(fetch_session_begin(c, &arena, 3, 13, req(id, 3, NULL, 0, NULL, 0), NULL, &ctx), 0);
	assert_int_equal(ctx.error, KERR_FETCH_SESSION_TOPIC_ID_ERROR);

	/* Forgetting every partition closes it: answered sessionless. */
	static const int32_t all[] = { 0, 1, 2, 5 };
	assert_int_equal(fetch_session_begin(c, &arena, 4, 12, req(id, 3, NULL, 0, all, 4), NULL, &ctx), 0);
	assert_int_equal(ctx.kind, FETCH_SESSIONLESS);
	assert_int_equal(fetch_sessions_count(c), 0);
	fetch_sessions_free(c);
}

static void test_slots(void **state)
{
	/* Two slots, sessions idle for over 1000 ms are stale. */
	struct fetch_sessions *c = fetch_sessions_new(2, 100, 1000);
	static const int32_t p0[] = { 0 }, p01[] = { 0, 1 }, p012[] = { 0, 1, 2 };
	int32_t a = open_session(c, 0, p01, 2);
	int32_t b = open_session(c, 0, p01, 2);
	assert_true(a > 0 && b > 0 && a != b);
	/* Full, nothing stale: the same size gets no session, nor a smaller. */
	assert_int_equal(open_session(c, 500, p01, 2), 0);
	assert_int_equal(open_session(c, 500, p0, 1), 0);
	/* b used at 600: at 1200 a is stale (idle 1200 ms) and gives way,
	 * even to a smaller session. */
	assert_int_equal(touch(c, 600, b, 1), 0);
	int32_t d = open_session(c, 1200, p0, 1);
	assert_true(d > 0);
	assert_int_equal(touch(c, 1200, a, 1), KERR_FETCH_SESSION_ID_NOT_FOUND);
	/* Nothing stale: a larger session takes the smallest's slot (d). */
	int32_t e = open_session(c, 1300, p012, 3);
	assert_true(e > 0);
	assert_int_equal(touch(c, 1300, d, 1), KERR_FETCH_SESSION_ID_NOT_FOUND);
	assert_int_equal(touch(c, 1300, b, 2), 0);
	assert_int_equal(fetch_sessions_count(c), 2);
	fetch_sessions_free(c);
}

static void test_partition_budget(void **state)
{
	struct fetch_sessions *c = fetch_sessions_new(10, 5, 1000);
	static const int32_t p0123[] = { 0, 1, 2, 3 }, p01[] = { 0, 1 }, p45[] = { 4, 5 };
	int32_t a = open_session(c, 0, p0123, 4);
	assert_true(a > 0);
	assert_int_equal(open_session(c, 100, p01, 2), 0);
	/* An incremental fetch growing past the budget: the session goes and
	 * the request is answered sessionless. */
	struct fetch_session_ctx ctx;
	assert_int_equal(fetch_session_begin(c, &arena, 200, 12, req(a, 1, p45, 2, NULL, 0), NULL, &ctx), 0);
	assert_int_equal(ctx.kind, FETCH_SESSIONLESS);
	assert_int_equal(ctx.count, 2);
	assert_int_equal(fetch_sessions_count(c), 0);
	/* Room again. */
	assert_true(open_session(c, 300, p01, 2) > 0);
	fetch_sessions_free(c);
}

/* A name no topic can have is not kept: no session of it. */
static void test_long_name(void **state)
{
	struct fetch_sessions *c = fetch_sessions_new(10, 100, 1000);
	static const int32_t p0[] = { 0 };
	static char name[300];
	memset(name, 'x', sizeof name);
	struct kmsg_fetch_req *m = req(0, 0, p0, 1, NULL, 0);
	m->topics->topic = (kstr){ name, (int32_t)sizeof name };
	struct fetch_session_ctx ctx;
	assert_int_equal(fetch_session_begin(c, &arena, 0, 12, m, NULL, &ctx), 0);
	assert_int_equal(fetch_session_end(c, 0, &ctx), 0);
	assert_true(ctx.parts[0].respond);
	assert_int_equal(fetch_sessions_count(c), 0);
	m->topics->topic = (kstr){ name, 249 };
	assert_int_equal(fetch_session_begin(c, &arena, 0, 12, m, NULL, &ctx), 0);
	assert_true(fetch_session_end(c, 0, &ctx) > 0);
	fetch_sessions_free(c);
}

/* One session holds at most SL_FETCH_SESSION_PARTITIONS_EACH_MAX. */
static void test_session_size_cap(void **state)
{
	struct fetch_sessions *c = fetch_sessions_new(10, 1000000, 1000);
	enum { N = SL_FETCH_SESSION_PARTITIONS_EACH_MAX };
	int32_t *parts = malloc((N + 1) * sizeof *parts);
	assert_non_null(parts);
	for (int i = 0; i <= N; i++)
		parts[i] = i;
	assert_int_equal(open_session(c, 0, parts, N + 1), 0);
	int32_t id = open_session(c, 0, parts, N);
	assert_true(id > 0);
	/* One more: dropped, answered sessionless. */
	struct fetch_session_ctx ctx;
	assert_int_equal(fetch_session_begin(c, &arena, 1, 12, req(id, 1, parts + N, 1, NULL, 0),
					     NULL, &ctx), 0);
	assert_int_equal(ctx.kind, FETCH_SESSIONLESS);
	assert_int_equal(fetch_sessions_count(c), 0);
	free(parts);
	fetch_sessions_free(c);
}

static int setup(void **state)
{
	arena_init(&arena, 1 << 26);
	return 0;
}

static int teardown(void **state)
{
	arena_free(&arena);
	return 0;
}

/* A last stable offset that moved alone (a marker commit reaching this
 * agent by a later poll than its high watermark) is answered, so a
 * read_committed client learns its partition's end; one unchanged is
 * not. */
static void test_last_stable_offset(void **state)
{
	(void)state;
	struct fetch_sessions *c = fetch_sessions_new(10, 100, 1000);
	static const int32_t p01[] = { 0, 1 };
	struct fetch_session_ctx ctx;
	assert_int_equal(fetch_session_begin(c, &arena, 0, 12, req(0, 0, p01, 2, NULL, 0), NULL, &ctx), 0);
	for (size_t i = 0; i < ctx.count; i++) {
		ctx.parts[i].high_watermark = 20;
		ctx.parts[i].last_stable_offset = 12; /* a transaction open at 12 */
	}
	int32_t id = fetch_session_end(c, 0, &ctx);
	assert_true(id > 0);
	assert_int_equal(fetch_session_begin(c, &arena, 1, 12, req(id, 1, NULL, 0, NULL, 0), NULL, &ctx), 0);
	assert_int_equal(ctx.count, 2);
	for (size_t i = 0; i < ctx.count; i++) {
		ctx.parts[i].high_watermark = 20;
		ctx.parts[i].last_stable_offset = ctx.parts[i].partition == 1 ? 20 : 12;
	}
	fetch_session_end(c, 1, &ctx);
	for (size_t i = 0; i < ctx.count; i++)
		assert_int_equal(ctx.parts[i].respond, ctx.parts[i].partition == 1);
	/* Told once: the next fetch with the same state answers nothing. */
	assert_int_equal(fetch_session_begin(c, &arena, 2, 12, req(id, 2, NULL, 0, NULL, 0), NULL, &ctx), 0);
	for (size_t i = 0; i < ctx.count; i++) {
		ctx.parts[i].high_watermark = 20;
		ctx.parts[i].last_stable_offset = ctx.parts[i].partition == 1 ? 20 : 12;
	}
	fetch_session_end(c, 2, &ctx);
	for (size_t i = 0; i < ctx.count; i++)
		assert_false(ctx.parts[i].respond);
	fetch_sessions_free(c);
}

/* The agent as an incremental fetch sees it: topic "t" is tid 7 (or
 * what tid says), and a change journal of at most 16 entries. */
struct fake_env {
	int64_t tid;
	bool readable;
	int32_t journal[16];       /* partitions of tid 7, change n at [n] */
	uint64_t seq;
	uint64_t lost;             /* positions below this are gone */
};

static void fake_topic(void *arg, kstr name, const uint8_t id[16], int64_t *tid, bool *readable)
{
	struct fake_env *e = arg;
	(void)id;
	*tid = kstr_eq(name, "t") ? e->tid : -1;
	*readable = e->readable;
}

static bool fake_changes(void *arg, uint64_t since, void (*fn)(void *, int64_t, int32_t), void *fn_arg)
{
	struct fake_env *e = arg;
	if (since < e->lost)
		return false;
	for (uint64_t q = since; q < e->seq; q++)
		fn(fn_arg, 7, e->journal[q]);
	return true;
}

static void journal(struct fake_env *e, int32_t partition)
{
	e->journal[e->seq++] = partition;
}

/* An incremental fetch of env's session id at epoch (no partitions
 * named); its parts, each answered at offset 10 = high watermark unless
 * hw says otherwise for partition hw_part. */
static void fetch_incr(struct fetch_sessions *c, struct fake_env *fe, int32_t id, int32_t epoch,
		       struct fetch_session_ctx *ctx)
{
	struct fetch_env env = { .arg = fe, .topic = fake_topic, .changes = fake_changes, .seq = fe->seq };
	assert_int_equal(fetch_session_begin(c, &arena, epoch, 12, req(id, epoch, NULL, 0, NULL, 0),
					     &env, ctx), 0);
	assert_int_equal(ctx->kind, FETCH_SESSION_INCREMENTAL);
}

static void answer(struct fetch_session_ctx *ctx, int64_t hw)
{
	for (size_t i = 0; i < ctx->count; i++) {
		ctx->parts[i].high_watermark = hw;
		ctx->parts[i].tid = 7;
		ctx->parts[i].readable = true;
	}
}

static bool has(const struct fetch_session_ctx *ctx, int32_t partition)
{
	for (size_t i = 0; i < ctx->count; i++)
		if (ctx->parts[i].partition == partition)
			return true;
	return false;
}

/* An incremental fetch reads only the partitions that may answer: named
 * ones, pending ones (records left, an error) and those the change
 * journal lists; all of them when a topic changed, the journal lost its
 * place, or another fetch began before the last ended. A woken long poll
 * adds what the journal lists since (fetch_session_more). */
static void test_changed_only(void **state)
{
	(void)state;
	struct fetch_sessions *c = fetch_sessions_new(10, 100, 1000);
	struct fake_env fe = { .tid = 7, .readable = true };
	struct fetch_env env = { .arg = &fe, .topic = fake_topic, .changes = fake_changes };
	static const int32_t p[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	struct fetch_session_ctx ctx;
	assert_int_equal(fetch_session_begin(c, &arena, 0, 12, req(0, 0, p, 10, NULL, 0), &env, &ctx), 0);
	answer(&ctx, 10); /* at the end: nothing pending */
	int32_t id = fetch_session_end(c, 0, &ctx);
	assert_true(id > 0);

	/* Nothing moved: nothing read. */
	fetch_incr(c, &fe, id, 1, &ctx);
	assert_int_equal(ctx.count, 0);
	fetch_session_end(c, 1, &ctx);

	/* The journal lists 3 (twice) and 6: those two, in session order. */
	journal(&fe, 6);
	journal(&fe, 3);
	journal(&fe, 3);
	fetch_incr(c, &fe, id, 2, &ctx);
	assert_int_equal(ctx.count, 2);
	assert_int_equal(ctx.parts[0].partition, 3);
	assert_int_equal(ctx.parts[1].partition, 6);
	answer(&ctx, 11); /* 3 and 6 got a record each: pending, answered */
	fetch_session_end(c, 2, &ctx);
	assert_true(ctx.parts[0].respond && ctx.parts[1].respond);

	/* Still behind the high watermark: read again without a journal
	 * entry; the request moves 3 on, named; answered 3 and 6 went to
	 * the end of the order. */
	struct kmsg_fetch_req *m = req(id, 3, (const int32_t[]){ 3 }, 1, NULL, 0);
	m->topics->partitions[0].fetch_offset = 11;
	env.seq = fe.seq;
	assert_int_equal(fetch_session_begin(c, &arena, 3, 12, m, &env, &ctx), 0);
	assert_int_equal(ctx.count, 2);
	assert_true(has(&ctx, 3) && has(&ctx, 6));
	answer(&ctx, 11);
	fetch_session_end(c, 3, &ctx);
	/* 6 still behind (offset 10 < 11): pending; 3 caught up. */
	fetch_incr(c, &fe, id, 4, &ctx);
	assert_int_equal(ctx.count, 1);
	assert_int_equal(ctx.parts[0].partition, 6);
	answer(&ctx, 10);
	fetch_session_end(c, 4, &ctx);

	/* A long poll: nothing at first, then the journal lists 8 and 1. */
	fetch_incr(c, &fe, id, 5, &ctx);
	assert_int_equal(ctx.count, 0);
	journal(&fe, 8);
	journal(&fe, 1);
	env.seq = fe.seq;
	assert_int_equal(fetch_session_more(c, &arena, &env, &ctx), 2);
	assert_int_equal(ctx.count, 2);
	assert_int_equal(ctx.parts[0].partition, 1);
	assert_int_equal(ctx.parts[1].partition, 8);
	assert_int_equal(fetch_session_more(c, &arena, &env, &ctx), 0);
	journal(&fe, 8);
	env.seq = fe.seq;
	assert_int_equal(fetch_session_more(c, &arena, &env, &ctx), 0); /* already read */
	answer(&ctx, 10);
	fetch_session_end(c, 5, &ctx);

	/* The journal lost its place: all. */
	fe.lost = fe.seq + 1;
	fe.seq += 1;
	fetch_incr(c, &fe, id, 6, &ctx);
	assert_int_equal(ctx.count, 10);
	answer(&ctx, 10);
	fetch_session_end(c, 6, &ctx);
	fetch_incr(c, &fe, id, 7, &ctx);
	assert_int_equal(ctx.count, 0);
	fetch_session_end(c, 7, &ctx);

	/* The topic was recreated (another tid), or may no longer be
	 * read: all, once. */
	fe.tid = 8;
	fetch_incr(c, &fe, id, 8, &ctx);
	assert_int_equal(ctx.count, 10);
	for (size_t i = 0; i < ctx.count; i++)
		ctx.parts[i].tid = 8, ctx.parts[i].readable = true, ctx.parts[i].high_watermark = 10;
	fetch_session_end(c, 8, &ctx);
	fetch_incr(c, &fe, id, 9, &ctx);
	assert_int_equal(ctx.count, 0);
	fetch_session_end(c, 9, &ctx);
	fe.readable = false;
	fetch_incr(c, &fe, id, 10, &ctx);
	assert_int_equal(ctx.count, 10);
	for (size_t i = 0; i < ctx.count; i++)
		ctx.parts[i].tid = 8, ctx.parts[i].error = KERR_TOPIC_AUTHORIZATION_FAILED;
	fetch_session_end(c, 10, &ctx);
	/* errors are pending: read (and answered) every time */
	fetch_incr(c, &fe, id, 11, &ctx);
	assert_int_equal(ctx.count, 10);
	fe.readable = true;
	for (size_t i = 0; i < ctx.count; i++)
		ctx.parts[i].tid = 8, ctx.parts[i].readable = true, ctx.parts[i].high_watermark = 10;
	fetch_session_end(c, 11, &ctx);

	/* Two fetches of the session at once (a client pipelining epochs):
	 * the second reads all, and so does the one after the first ends
	 * last. */
	fe.tid = 8;
	fe.readable = true;
	struct fetch_session_ctx first, second;
	fetch_incr(c, &fe, id, 12, &first);
	assert_int_equal(first.count, 0);
	fetch_incr(c, &fe, id, 13, &second);
	assert_int_equal(second.count, 10);
	for (size_t i = 0; i < second.count; i++)
		second.parts[i].tid = 8, second.parts[i].readable = true, second.parts[i].high_watermark = 10;
	fetch_session_end(c, 13, &second);
	fetch_session_end(c, 12, &first);
	fetch_incr(c, &fe, id, 14, &ctx);
	assert_int_equal(ctx.count, 10);
	fetch_sessions_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_incremental, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partition_budget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_size_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_last_stable_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changed_only, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
