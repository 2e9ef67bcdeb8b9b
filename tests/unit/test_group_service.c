/* test_group_service.c — the group service (group/service.h) on a real
 * loop and sqlite store: offsets ops finish in queue order (a delete
 * queued after a commit removes it, a commit after a delete stays), the
 * memory of stored groups follows them, DeleteGroups of an unknown group;
 * a waiting JoinGroup is answered through its waiter, at once or by the
 * shutdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <unistd.h>

#include "base/err.h"
#include "group/service.h"
#include "meta/meta.h"
#include "proto/kerr.h"

struct env {
	char dir[64];
	uv_loop_t loop;
	struct meta *meta;
	struct group_svc *svc;
};

static void env_start(struct env *e)
{
	char url[128];
	strcpy(e->dir, "/tmp/sluice-group-svc-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(url, sizeof url, "sqlite:%s/meta.db", e->dir);
	assert_int_equal(meta_open(url, &e->meta), 0);
	assert_int_equal(uv_loop_init(&e->loop), 0);
	struct group_svc_config cfg = { .initial_rebalance_delay_ms = 3000,
					.offsets_retention_ms = 7LL * 24 * 3600 * 1000 };
	assert_int_equal(group_svc_start(&e->loop, e->meta, &cfg, &e->svc), 0);
	assert_true(group_svc_running(e->svc));
}

static void env_stop(struct env *e)
{
	group_svc_shutdown(e->svc);
	assert_false(group_svc_running(e->svc));
	uv_run(&e->loop, UV_RUN_DEFAULT);
	group_svc_free(e->svc);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	meta_close(e->meta);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", e->dir);
	assert_int_equal(system(cmd), 0);
}

static struct group_offsets_op *finished[8];
static int finished_count;

static void op_done(struct group_svc *s, struct group_offsets_op *op)
{
	finished[finished_count++] = op;
}

static int64_t fetched_offset(struct meta *m, const char *group, int32_t partition)
{
	struct meta_committed_offset *o;
	size_t n;
	int64_t off = -1;
	assert_int_equal(meta_offset_fetch(m, group, &o, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (o[i].partition == partition)
			off = o[i].committed_offset;
	meta_committed_offsets_free(o, n);
	return off;
}

static void count_group(void *arg, const char *id, const char *state, const char *type)
{
	assert_string_equal(state, "Empty");
	assert_string_equal(type, "consumer");
	(*(int *)arg)++;
}

static void test_offsets_queue_order(void **state)
{
	struct env e;
	env_start(&e);
	struct meta_offset_commit c1 = { "g1", 1, 0, 10, -1, NULL, 1000 };
	struct meta_offset_commit c3 = { "g1", 1, 1, 20, -1, NULL, 1001 };
	struct meta_offset_commit c4 = { "g2", 1, 0, 5, -1, NULL, 1002 };
	struct meta_offset_commit c5 = { "g3", 1, 0, 7, -1, NULL, 1003 };
	struct group_offsets_op ops[6] = {
		{ .group_id = "g1", .rows = &c1, .row_count = 1, .done = op_done },
		{ .group_id = "g1", .done = op_done },  /* delete every offset */
		{ .group_id = "g1", .rows = &c3, .row_count = 1, .done = op_done },
		{ .group_id = "g2", .rows = &c4, .row_count = 1, .done = op_done },
		{ .group_id = "g3", .rows = &c5, .row_count = 1, .done = op_done },
		{ .done = op_done },                    /* DeleteGroups g3 */
	};
	finished_count = 0;
	assert_int_equal(group_svc_offsets_commit(e.svc, &ops[0]), 0);
	assert_int_equal(group_svc_offsets_delete(e.svc, &ops[1]), 0);
	assert_int_equal(group_svc_offsets_commit(e.svc, &ops[2]), 0);
	assert_int_equal(group_svc_offsets_commit(e.svc, &ops[3]), 0);
	assert_int_equal(group_svc_offsets_commit(e.svc, &ops[4]), 0);
	/* g3 has nothing stored yet, but a commit on its way: queued behind it. */
	bool queued = false;
	assert_int_equal(group_svc_group_delete(e.svc, "g3", &ops[5], &queued), KERR_NONE);
	assert_true(queued);
	struct group_offsets_op unknown = { .done = op_done };
	assert_int_equal(group_svc_group_delete(e.svc, "none", &unknown, &queued),
			 KERR_GROUP_ID_NOT_FOUND);
	assert_false(queued);

	while (finished_count < 6)
		uv_run(&e.loop, UV_RUN_ONCE);
	for (int i = 0; i < 6; i++) {
		assert_ptr_equal(finished[i], &ops[i]);
		assert_int_equal(ops[i].rc, 0);
	}
	assert_int_equal(ops[1].deleted, 1);
	assert_int_equal(ops[5].deleted, 1);
	assert_int_equal(fetched_offset(e.meta, "g1", 0), -1);
	assert_int_equal(fetched_offset(e.meta, "g1", 1), 20);
	assert_int_equal(fetched_offset(e.meta, "g2", 0), 5);
	assert_int_equal(fetched_offset(e.meta, "g3", 0), -1);
	assert_true(group_svc_has_offsets(e.svc, "g1"));
	assert_true(group_svc_has_offsets(e.svc, "g2"));
	assert_false(group_svc_has_offsets(e.svc, "g3"));
	int listed = 0;
	group_svc_groups_each(e.svc, count_group, &listed);
	assert_int_equal(listed, 2);
	/* Known only by offsets: OffsetDelete may go ahead; unknown: not found. */
	assert_int_equal(group_svc_offsets_deletable(e.svc, "g2"), KERR_NONE);
	assert_int_equal(group_svc_offsets_deletable(e.svc, "g3"), KERR_GROUP_ID_NOT_FOUND);
	env_stop(&e);
}

struct join {
	struct group_waiter w;      /* first */
	int answers;
	int16_t error;
	char member_id[128];
};

static void join_answer(struct group_waiter *w, const struct coord_effect *f)
{
	struct join *j = (struct join *)w;
	assert_non_null(f);
	j->answers++;
	j->error = f->error;
	snprintf(j->member_id, sizeof j->member_id, "%s", f->member_id ? f->member_id : "");
}

static void test_join_waiter(void **state)
{
	struct env e;
	env_start(&e);
	struct coord_join_protocol p = { KSTR("range"), { (const uint8_t *)"", 0 } };
	struct coord_join_args args = {
		.group_id = KSTR("gj"),
		.member_id = KSTR(""),
		.group_instance_id = KSTR_NULL,
		.protocol_type = KSTR("consumer"),
		.client_id = KSTR("c"),
		.client_host = KSTR("/127.0.0.1"),
		.session_timeout_ms = 10000,
		.rebalance_timeout_ms = 10000,
		.api_version = 5,
		.protocol_count = 1,
		.protocols = &p,
	};
	/* A first join without a member id is answered before the call returns. */
	struct join first = { .w.answer = join_answer };
	group_svc_join(e.svc, &args, &first.w);
	assert_int_equal(first.answers, 1);
	assert_int_equal(first.error, KERR_MEMBER_ID_REQUIRED);
	assert_true(first.member_id[0] != 0);
	/* With the id it waits out the initial rebalance delay... */
	struct join second = { .w.answer = join_answer };
	args.member_id = KSTR(first.member_id);
	group_svc_join(e.svc, &args, &second.w);
	assert_int_equal(second.answers, 0);
	assert_non_null(group_svc_group_find(e.svc, KSTR("gj")));
	/* ...and the drain answers it. */
	group_svc_shutdown(e.svc);
	assert_int_equal(second.answers, 1);
	assert_int_equal(second.error, KERR_NOT_COORDINATOR);
	env_stop(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_offsets_queue_order),
		cmocka_unit_test(test_join_waiter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
