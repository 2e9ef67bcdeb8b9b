/* maintenance.c — the maintenance queue (maintenance.h): one job at a
 * time on the thread pool, in submission order. */
#include "agent/maintenance.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "agent/agent.h"
#include "base/err.h"

struct maint {
	struct agent *a;
	uv_work_t work;
	struct maint_job *head, *tail; /* queued; head is on the pool when running */
	bool running;
	atomic_bool abandon;           /* draining: abandonable jobs stop early */
};

static void queue_next(struct maint *q);

static void job_work(uv_work_t *w)
{
	struct maint *q = w->data;
	struct maint_job *job = q->head;
	if (job->work) {
		job->work(job, q->a);
		return;
	}
	for (size_t i = 0; i < job->n; i++) {
		struct maint_trim *it = &job->items[i];
		it->log_start = -1;
		it->err = job->abandonable && atomic_load(&q->abandon)
			? SL_EBUSY
			: meta_partition_trim(q->a->meta, it->tid, it->partition, &it->trim,
					      &it->log_start);
	}
}

static void job_done(uv_work_t *w, int status)
{
	struct maint *q = w->data;
	struct maint_job *job = q->head;
	q->head = job->next;
	if (!q->head)
		q->tail = NULL;
	q->running = false;
	for (size_t i = 0; i < job->n; i++) {
		struct maint_trim *it = &job->items[i];
		if (status != 0)
			it->err = SL_EIO;
		if (it->err)
			continue;
		/* A topic deleted meanwhile has nothing to raise. */
		struct topic_state *t = agent_topic_by_tid(q->a, it->tid);
		if (t && it->partition < t->partition_count &&
		    partition_raise_log_start(&t->parts[it->partition], it->log_start))
			job->moved++;
	}
	job->done(job, job->arg);
	queue_next(q);
}

static void queue_next(struct maint *q)
{
	if (q->running || !q->head)
		return;
	q->work.data = q;
	if (uv_queue_work(q->a->loop, &q->work, job_work, job_done) == 0) {
		q->running = true;
		return;
	}
	/* Cannot happen with a valid loop: fail every queued job. */
	while (q->head) {
		struct maint_job *job = q->head;
		q->head = job->next;
		for (size_t i = 0; i < job->n; i++)
			job->items[i].err = SL_EIO;
		job->done(job, job->arg);
	}
	q->tail = NULL;
}

void maint_submit(struct agent *a, struct maint_job *job)
{
	struct maint *q = a->maint;
	job->next = NULL;
	job->moved = 0;
	if (q->tail)
		q->tail->next = job;
	else
		q->head = job;
	q->tail = job;
	queue_next(q);
}

int maint_start(struct agent *a)
{
	struct maint *q = calloc(1, sizeof *q);
	if (!q)
		return SL_ENOMEM;
	q->a = a;
	a->maint = q;
	return 0;
}

void maint_stop(struct agent *a)
{
	if (a->maint)
		atomic_store(&a->maint->abandon, true);
}

bool maint_abandoning(const struct agent *a)
{
	return atomic_load(&a->maint->abandon);
}

void maint_free(struct agent *a)
{
	free(a->maint);
	a->maint = NULL;
}
