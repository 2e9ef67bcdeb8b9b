/* maintenance.c — the maintenance queue (maintenance.h): a workq (one job
 * at a time on the thread pool, in submission order) whose trim jobs
 * raise the agent's log starts before their done runs. */
#include "agent/maintenance.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "agent/agent.h"
#include "base/err.h"
#include "objstore/objstore.h"
#include "storage/merge.h"

struct maint {
	struct workq q;
	atomic_bool abandon; /* draining: abandonable jobs stop early */
	struct merge_buf buf; /* maint_buf */
	struct objstore_pace pace; /* the store's bound on the passes' puts */
};

static void maint_run(struct workq_job *wq)
{
	struct maint_job *job = (struct maint_job *)wq;
	struct agent *a = job->a;
	if (job->work) {
		job->work(job, a);
		return;
	}
	for (size_t i = 0; i < job->n; i++) {
		struct maint_trim *it = &job->items[i];
		it->log_start = -1;
		it->err = job->abandonable && maint_abandoning(a)
			? SL_EBUSY
			: meta_partition_trim(a->meta, it->tid, it->partition, &it->trim,
					      &it->log_start);
	}
}

static void maint_done(struct workq_job *wq)
{
	struct maint_job *job = (struct maint_job *)wq;
	for (size_t i = 0; i < job->n; i++) {
		struct maint_trim *it = &job->items[i];
		if (it->err)
			continue;
		/* A topic deleted meanwhile has nothing to raise. */
		struct topic_state *t = agent_topic_by_tid(job->a, it->tid);
		if (t && it->partition < t->partition_count &&
		    partition_raise_log_start(&t->parts[it->partition], it->log_start)) {
			job->moved++;
			/* The rows below are gone from the store: free them
			 * here too (fetches below the log start are refused). */
			agent_log_start_raised(job->a, t, it->partition);
		}
	}
	/* A raised log start may lift the LSO, and a long poll's offset
	 * may now lie below the log start: waiting fetches look again. */
	if (job->moved)
		job->a->hooks->committed(job->a);
	job->done(job, job->arg);
}

void maint_submit(struct agent *a, struct maint_job *job)
{
	job->a = a;
	job->moved = 0;
	job->wq.run = maint_run;
	job->wq.done = maint_done;
	workq_submit(&a->maint->q, &job->wq);
}

int maint_start(struct agent *a)
{
	struct maint *q = calloc(1, sizeof *q);
	if (!q)
		return SL_ENOMEM;
	workq_init(&q->q, a->loop);
	a->maint = q;
	/* The merge and cleaning passes put their objects paced (storage/
	 * merge.c, clean.c); this bounds them. */
	if (a->cfg.maintenance_io_bytes_per_sec > 0) {
		q->pace.bytes_per_sec = (uint64_t)a->cfg.maintenance_io_bytes_per_sec;
		/* Draining: the pass's put under way ends at full speed. */
		q->pace.hurry = &q->abandon;
		objstore_set_pace(a->store, &q->pace);
	}
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

struct merge_buf *maint_buf(struct agent *a)
{
	return &a->maint->buf;
}

void maint_free(struct agent *a)
{
	if (a->maint) {
		merge_buf_free(&a->maint->buf);
		if (a->store)
			objstore_set_pace(a->store, NULL);
	}
	free(a->maint);
	a->maint = NULL;
}
