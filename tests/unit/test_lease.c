/* test_lease.c — the agent's leases (cluster/lease.c) on a real store
 * (SQLite, two handles and two registered agents, as two agents of a
 * cluster would be): one holder at a time, the other told who holds it,
 * a drop handing it over at a higher epoch within a renewal, and on a
 * store one agent claims every lease held at once, unfenced. */
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
#include "base/limits.h"
#include "cluster/lease.h"
#include "meta/meta.h"

struct seen {
	int calls;
	bool held;
	int64_t epoch;
	int32_t holder;
};

static void on_change(void *arg, const char *name, bool held, int64_t epoch, int32_t holder)
{
	struct seen *s = arg;
	assert_string_equal(name, "job/t");
	s->calls++;
	s->held = held;
	s->epoch = epoch;
	s->holder = holder;
}

struct until {
	bool (*done)(void *arg);
	void *arg;
	uint64_t deadline;
	bool met;
};

static void check_cb(uv_timer_t *t)
{
	struct until *u = t->data;
	if (u->done(u->arg)) {
		u->met = true;
		uv_stop(t->loop);
	} else if (uv_now(t->loop) >= u->deadline) {
		uv_stop(t->loop);
	}
}

/* Runs the loop until done(arg) or timeout_ms; returns whether done. */
static bool run_until(uv_loop_t *loop, bool (*done)(void *), void *arg, uint64_t timeout_ms)
{
	uv_timer_t t;
	struct until u = { done, arg, uv_now(loop) + timeout_ms, false };
	uv_timer_init(loop, &t);
	t.data = &u;
	uv_timer_start(&t, check_cb, 5, 5);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return u.met;
}

static bool seen_held(void *arg)
{
	return ((struct seen *)arg)->held;
}

static bool seen_answered(void *arg)
{
	return ((struct seen *)arg)->calls > 0;
}

static struct meta_agent agent(struct meta *m)
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

static void stop_free(uv_loop_t *loop, struct lease_set *s1, struct lease_set *s2)
{
	lease_set_stop(s1);
	lease_set_stop(s2);
	uv_run(loop, UV_RUN_DEFAULT); /* the timers' close, a sync in flight */
	lease_set_free(s1);
	lease_set_free(s2);
}

static void test_one_holder(void **state)
{
	char dir[] = "/tmp/sluice-lease-XXXXXX", url[64];
	assert_non_null(mkdtemp(dir));
	snprintf(url, sizeof url, "sqlite:%s/meta.db", dir);
	struct meta *m1, *m2;
	assert_int_equal(meta_open(url, &m1), 0);
	assert_int_equal(meta_open(url, &m2), 0);
	struct meta_agent a1 = agent(m1), a2 = agent(m2);
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct lease_set *s1, *s2;
	assert_int_equal(lease_set_new(&loop, m1, &a1, &s1), 0);
	assert_int_equal(lease_set_new(&loop, m2, &a2, &s2), 0);
	struct seen r1 = { 0 }, r2 = { 0 };

	assert_int_equal(lease_want(s1, "job/t", on_change, &r1), 0);
	assert_false(lease_held(s1, "job/t", NULL));
	assert_true(run_until(&loop, seen_held, &r1, 2000));
	int64_t epoch;
	assert_true(lease_held(s1, "job/t", &epoch));
	assert_int_equal(epoch, 1);
	assert_int_equal(r1.epoch, 1);

	/* The second agent is told who holds it. */
	assert_int_equal(lease_want(s2, "job/t", on_change, &r2), 0);
	assert_true(run_until(&loop, seen_answered, &r2, 2000));
	int32_t holder;
	assert_false(r2.held);
	assert_int_equal(r2.holder, a1.node_id);
	assert_true(lease_known(s2, "job/t", &holder));
	assert_int_equal(holder, a1.node_id);
	assert_false(lease_held(s2, "job/t", NULL));

	/* Renewals keep it where it is. */
	run_until(&loop, seen_answered, &(struct seen){ 0 }, SL_LEASE_RENEW_INTERVAL_MS + 500);
	assert_true(lease_held(s1, "job/t", NULL));
	assert_false(lease_held(s2, "job/t", NULL));
	assert_int_equal(r1.calls, 1);

	/* Dropped: released, and the other takes it within a renewal. */
	lease_drop(s1, "job/t");
	assert_false(lease_held(s1, "job/t", NULL));
	assert_true(run_until(&loop, seen_held, &r2, SL_LEASE_RENEW_INTERVAL_MS + 1000));
	assert_true(lease_held(s2, "job/t", &epoch));
	assert_int_equal(epoch, 2);
	assert_int_equal(r1.calls, 1); /* a dropped lease calls back no more */

	/* Names: empty, too long. */
	char long_name[META_LEASE_NAME_BYTES + 1];
	memset(long_name, 'x', sizeof long_name - 1);
	long_name[sizeof long_name - 1] = 0;
	assert_int_equal(lease_want(s1, "", NULL, NULL), SL_EINVAL);
	assert_int_equal(lease_want(s1, long_name, NULL, NULL), SL_EINVAL);

	stop_free(&loop, s1, s2);
	assert_int_equal(uv_loop_close(&loop), 0);
	meta_close(m1);
	meta_close(m2);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* Syncs that succeed while the heartbeats do not: the hold ends no later
 * than other agents may drop this one's registry row (the start of its
 * last successful heartbeat plus SL_CLUSTER_LEASE_MS), since a lease whose
 * holder is not registered is free to take. */
static bool seen_not_held(void *arg)
{
	struct seen *s = arg;
	return s->calls >= 2 && !s->held;
}

static void test_hold_bounded_by_heartbeat(void **state)
{
	(void)state;
	char dir[] = "/tmp/sluice-lease-XXXXXX", url[64];
	assert_non_null(mkdtemp(dir));
	snprintf(url, sizeof url, "sqlite:%s/meta.db", dir);
	struct meta *m1;
	assert_int_equal(meta_open(url, &m1), 0);
	struct meta_agent a1 = agent(m1);
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct lease_set *s1;
	assert_int_equal(lease_set_new(&loop, m1, &a1, &s1), 0);
	int64_t beat_ok = clock_mono_us(); /* a heartbeat now, then none */
	lease_set_beat(s1, &beat_ok);
	struct seen r1 = { 0 };
	assert_int_equal(lease_want(s1, "job/t", on_change, &r1), 0);
	assert_true(run_until(&loop, seen_held, &r1, 2000));
	assert_true(lease_held(s1, "job/t", NULL));
	/* Renewals go on, but the hold ends with the row's lease. */
	uint64_t t0 = uv_now(&loop);
	assert_true(run_until(&loop, seen_not_held, &r1, SL_CLUSTER_LEASE_MS + 3000));
	assert_true(uv_now(&loop) - t0 <= SL_CLUSTER_LEASE_MS + SL_LEASE_RENEW_INTERVAL_MS + 500);
	assert_false(lease_held(s1, "job/t", NULL));
	/* A heartbeat again: the next sync holds it once more. */
	beat_ok = clock_mono_us();
	assert_true(run_until(&loop, seen_held, &r1, SL_LEASE_RENEW_INTERVAL_MS + 2000));
	assert_true(lease_held(s1, "job/t", NULL));

	lease_set_stop(s1);
	uv_run(&loop, UV_RUN_DEFAULT);
	lease_set_free(s1);
	assert_int_equal(uv_loop_close(&loop), 0);
	meta_close(m1);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* A store one agent claims: held at once, at epoch 0 (nothing fenced),
 * without a store call. */
static void test_claimed_store(void **state)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct lease_set *s;
	assert_int_equal(lease_set_new(&loop, NULL, NULL, &s), 0);
	assert_int_equal(lease_want(s, "job/t", on_change, NULL), 0);
	int64_t epoch = -1;
	assert_true(lease_held(s, "job/t", &epoch));
	assert_int_equal(epoch, 0);
	lease_drop(s, "job/t");
	assert_false(lease_held(s, "job/t", NULL));
	stop_free(&loop, s, NULL);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_holder),
		cmocka_unit_test(test_hold_bounded_by_heartbeat),
		cmocka_unit_test(test_claimed_store),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
