/* test_meta_offsets.c — committed consumer group offsets in the metadata
 * store, SQLite and (when a server is given: meta_backends.h) PostgreSQL: commit (insert and replace, several groups in one
 * transaction), fetch, list, delete some or all, durable across a reopen.
 * (The rate of one-row commits is measured by bench/meta_bench.) */
#define _GNU_SOURCE /* nftw, in meta_backends.h */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <unistd.h>

#include "meta_backends.h"

#include "base/err.h"
#include "meta/meta.h"

static void test_offsets(void **state)
{
	struct meta *m;
	assert_int_equal(meta_open(tb_url, &m), 0);
	struct meta_offset_commit rows[] = {
		{ "g1", 1, 0, 10, 3, "meta-a", 1000 },
		{ "g1", 1, 1, 20, -1, NULL, 1001 },
		{ "g2", 2, 0, 5, -1, "", 1002 },
	};
	assert_int_equal(meta_offset_commit(m, rows, 3), 0);
	struct meta_offset_commit again = { "g1", 1, 0, 11, 4, "meta-b", 2000 };
	assert_int_equal(meta_offset_commit(m, &again, 1), 0);

	struct meta_committed_offset *o;
	size_t n;
	assert_int_equal(meta_offset_fetch(m, "g1", &o, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(o[0].partition, 0);
	assert_int_equal(o[0].committed_offset, 11);
	assert_int_equal(o[0].leader_epoch, 4);
	assert_string_equal(o[0].metadata, "meta-b");
	assert_int_equal(o[0].commit_timestamp_ms, 2000);
	assert_null(o[1].metadata);
	meta_committed_offsets_free(o, n);
	assert_int_equal(meta_offset_fetch(m, "none", &o, &n), 0);
	assert_int_equal(n, 0);
	meta_committed_offsets_free(o, n);

	struct meta_group_summary *g;
	assert_int_equal(meta_group_list(m, &g, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(g[0].group_id, "g1");
	assert_int_equal(g[0].offset_count, 2);
	assert_int_equal(g[0].last_commit_ms, 2000);
	meta_group_summaries_free(g, n);

	/* too much metadata: nothing stored */
	char *big = malloc(META_OFFSET_METADATA_BYTES_MAX + 2);
	memset(big, 'x', META_OFFSET_METADATA_BYTES_MAX + 1);
	big[META_OFFSET_METADATA_BYTES_MAX + 1] = 0;
	struct meta_offset_commit bad[] = { { "g3", 1, 0, 1, -1, NULL, 1 }, { "g3", 1, 1, 1, -1, big, 1 } };
	assert_int_equal(meta_offset_commit(m, bad, 2), SL_EINVAL);
	free(big);
	assert_int_equal(meta_offset_fetch(m, "g3", &o, &n), 0);
	assert_int_equal(n, 0);
	meta_committed_offsets_free(o, n);

	/* delete one partition, then reopen, then delete the group */
	int64_t tids[] = { 1 }, deleted = 0;
	int32_t parts[] = { 1 };
	assert_int_equal(meta_group_delete_offsets(m, "g1", tids, parts, 1, &deleted), 0);
	assert_int_equal(deleted, 1);
	meta_close(m);
	assert_int_equal(meta_open(tb_url, &m), 0);
	assert_int_equal(meta_offset_fetch(m, "g1", &o, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(o[0].committed_offset, 11);
	meta_committed_offsets_free(o, n);
	assert_int_equal(meta_group_delete_offsets(m, "g1", NULL, NULL, 0, &deleted), 0);
	assert_int_equal(deleted, 1);
	assert_int_equal(meta_group_list(m, &g, &n), 0);
	assert_int_equal(n, 1);
	meta_group_summaries_free(g, n);

	meta_close(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_offsets, tb_setup, tb_teardown),
	};
	return meta_backends_run("meta_offsets", tests, sizeof tests / sizeof tests[0]);
}
