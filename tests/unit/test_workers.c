/* test_workers.c — the writer's threads (base/workers.h): every job runs
 * off the loop thread and its done on it, once; dones submitted from a
 * done run too; the loop stays alive while jobs are outstanding and
 * returns once they are done; a free after all that leaves nothing open
 * on the loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <uv.h>

#include "base/workers.h"

#define JOBS 2000

struct job {
	struct worker_job wj;
	uv_thread_t loop_thread;
	atomic_bool ran_off_loop;
	int dones;
	int resubmits; /* left */
	struct workers *ws;
	int *total_dones;
};

static void job_run(struct worker_job *wj)
{
	struct job *j = wj->data;
	uv_thread_t self = uv_thread_self();
	atomic_store(&j->ran_off_loop, !uv_thread_equal(&self, &j->loop_thread));
}

static void job_done(struct worker_job *wj)
{
	struct job *j = wj->data;
	uv_thread_t self = uv_thread_self();
	assert_true(uv_thread_equal(&self, &j->loop_thread));
	assert_true(atomic_load(&j->ran_off_loop));
	j->dones++;
	(*j->total_dones)++;
	if (j->resubmits > 0) {
		j->resubmits--;
		atomic_store(&j->ran_off_loop, false);
		workers_submit(j->ws, &j->wj);
	}
}

static void test_jobs_run_off_loop_done_on_loop(void **state)
{
	(void)state;
	uv_loop_t loop;
	assert_int_equal(uv_loop_init(&loop), 0);
	struct workers *ws;
	assert_int_equal(workers_new(&loop, 3, &ws), 0);
	/* Idle workers do not keep the loop alive. */
	assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0);

	struct job *jobs = calloc(JOBS, sizeof *jobs);
	int total = 0;
	for (int i = 0; i < JOBS; i++) {
		jobs[i].wj = (struct worker_job){ .run = job_run, .done = job_done, .data = &jobs[i] };
		jobs[i].loop_thread = uv_thread_self();
		jobs[i].ws = ws;
		jobs[i].total_dones = &total;
		jobs[i].resubmits = i % 3;
		workers_submit(ws, &jobs[i].wj);
	}
	/* Returns only when every done (resubmissions included) was called. */
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	int want = 0;
	for (int i = 0; i < JOBS; i++) {
		assert_int_equal(jobs[i].dones, 1 + i % 3);
		want += 1 + i % 3;
	}
	assert_int_equal(total, want);

	/* Usable again after the loop went idle. */
	jobs[0].resubmits = 0;
	workers_submit(ws, &jobs[0].wj);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(jobs[0].dones, 2);

	workers_free(ws);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
	free(jobs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jobs_run_off_loop_done_on_loop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
