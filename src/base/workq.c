/* workq.c — jobs one at a time on the thread pool, in order (workq.h). */
#include "base/workq.h"

#include "base/sl_assert.h"

void workq_init(struct workq *q, uv_loop_t *loop)
{
	*q = (struct workq){ .loop = loop };
}

static void job_run(uv_work_t *w)
{
	struct workq_job *job = w->data;
	job->run(job);
}

static void job_done(uv_work_t *w, int status);

static void job_start(struct workq *q)
{
	struct workq_job *job = q->head;
	int rc = uv_queue_work(q->loop, &job->work, job_run, job_done);
	/* Fails only for a NULL callback: never here. */
	SL_ASSERT(rc == 0, "uv_queue_work: %s", uv_strerror(rc));
}

static void job_done(uv_work_t *w, int status)
{
	(void)status; /* never cancelled: nothing calls uv_cancel */
	struct workq_job *job = w->data;
	struct workq *q = job->q;
	SL_ASSERT(q->head == job && q->active && q->pending > 0);
	/* Off the queue before done: done may answer requests whose
	 * connections' next requests submit jobs, or submit this one again. */
	q->head = job->next;
	if (!q->head)
		q->tail = NULL;
	/* Not pending any more (workq_idle holds within the last job's
	 * done, so done can finish a drain), but still active: a job
	 * submitted from done only queues. */
	q->pending--;
	job->done(job);
	q->active = q->head != NULL;
	if (q->active)
		job_start(q);
}

void workq_submit(struct workq *q, struct workq_job *job)
{
	job->q = q;
	job->work.data = job;
	job->next = NULL;
	q->pending++;
	if (q->tail) {
		q->tail->next = job;
		q->tail = job;
		return;
	}
	q->head = q->tail = job;
	if (!q->active) {
		q->active = true;
		job_start(q);
	}
}

bool workq_idle(const struct workq *q)
{
	return q->pending == 0;
}
