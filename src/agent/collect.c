/* collect.c — the agent's background collection of dead objects and
 * purge of deleted topics' rows (collect.h). In a cluster each runs only
 * on the holder of its lease (job/gc, job/purge: cluster/lease.h), which
 * another agent takes over when the holder dies. */
#include "agent/collect.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/maintenance.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "cluster/lease.h"
#include "storage/gc.h"

#define JOB_GC "job/gc"
#define JOB_PURGE "job/purge"

struct collect {
	struct agent *a;
	uv_timer_t timer;
	struct maint_job job;
	bool queued;
	bool stopped;
	struct gc_dead_stats stats; /* this pass so far */
	int64_t after;              /* the pass's cursor */
	int64_t cutoff_ms;
	bool more;
	int err;
	/* Purging deleted topics' rows: its job, queued at most once. */
	struct maint_job purge;
	bool purge_queued;
	bool purge_again;  /* a topic was deleted while the job was queued */
	bool purge_more;
	int purge_err;
};

/* One page of the pass per job, so trims (DeleteRecords waits for an
 * answer) and a drain never wait behind a whole pass. */
static void collect_work(struct maint_job *job, struct agent *a)
{
	struct collect *c = job->arg;
	c->more = false;
	if (maint_abandoning(a))
		return;
	c->err = gc_dead_objects(a->meta, a->store, c->cutoff_ms, NULL, NULL, &c->after, 1,
				 &c->more, &c->stats);
}

static void collect_done(struct maint_job *job, void *arg)
{
	struct collect *c = arg;
	/* The next page only while the lease is still held. */
	if (c->more && !c->err && !c->stopped && lease_held(c->a->leases, JOB_GC, NULL)) {
		maint_submit(c->a, job); /* the next page, behind what queued meanwhile */
		return;
	}
	const struct gc_dead_stats *st = &c->stats;
	if (st->deleted)
		log_info("gc: deleted %" PRIu64 " dead objects (%" PRIu64 " bytes)", st->deleted,
			 st->bytes);
	if (c->err || st->failed)
		log_warn("gc: %" PRIu64 " dead objects stay for the next pass: %s", st->failed,
			 sl_strerror(c->err ? c->err : st->store_err));
	memset(&c->stats, 0, sizeof c->stats);
	c->err = 0;
	c->queued = false;
}

static void on_timer(uv_timer_t *timer)
{
	struct collect *c = timer->data;
	if (c->queued || c->stopped || !lease_held(c->a->leases, JOB_GC, NULL))
		return;
	c->queued = true;
	c->after = 0;
	c->cutoff_ms = clock_wall_ms() - c->a->cfg.gc_grace_ms;
	maint_submit(c->a, &c->job);
}

/* One deleted topic per job: trims (DeleteRecords waits for an answer)
 * and a drain wait for one topic's rows at most. */
static void purge_work(struct maint_job *job, struct agent *a)
{
	struct collect *c = job->arg;
	c->purge_more = false;
	if (!maint_abandoning(a))
		c->purge_err = meta_purge_deleted(a->meta, &c->purge_more);
}

static void purge_done(struct maint_job *job, void *arg)
{
	struct collect *c = arg;
	if (c->purge_err)
		log_warn("deleted topics' rows stay for the next purge: %s",
			 sl_strerror(c->purge_err));
	else if ((c->purge_more || c->purge_again) && !c->stopped &&
		 lease_held(c->a->leases, JOB_PURGE, NULL)) {
		c->purge_again = false;
		maint_submit(c->a, job);
		return;
	}
	c->purge_err = 0;
	c->purge_queued = false;
}

void collect_purge_soon(struct agent *a)
{
	struct collect *c = a->collect;
	if (!c || c->stopped)
		return;
	/* Another agent purges; a store that deletes rows with their topic
	 * (PostgreSQL) has nothing to purge anyway. */
	if (!lease_held(a->leases, JOB_PURGE, NULL))
		return;
	if (c->purge_queued) {
		c->purge_again = true;
		return;
	}
	c->purge_queued = true;
	maint_submit(a, &c->purge);
}

int collect_start(struct agent *a)
{
	struct collect *c = calloc(1, sizeof *c);
	if (!c)
		return SL_ENOMEM;
	c->a = a;
	c->job.work = collect_work;
	c->job.done = collect_done;
	c->job.arg = c;
	c->purge.work = purge_work;
	c->purge.done = purge_done;
	c->purge.arg = c;
	int rc = lease_want(a->leases, JOB_GC, NULL, NULL);
	if (!rc)
		rc = lease_want(a->leases, JOB_PURGE, NULL, NULL);
	if (rc) {
		free(c);
		return rc;
	}
	uv_timer_init(a->loop, &c->timer);
	c->timer.data = c;
	if (a->cfg.gc_interval_ms > 0)
		uv_timer_start(&c->timer, on_timer, (uint64_t)a->cfg.gc_interval_ms,
			       (uint64_t)a->cfg.gc_interval_ms);
	a->collect = c;
	collect_purge_soon(a); /* what an earlier run left */
	return 0;
}

void collect_stop(struct agent *a)
{
	struct collect *c = a->collect;
	if (!c || c->stopped)
		return;
	c->stopped = true;
	uv_close((uv_handle_t *)&c->timer, NULL);
}

void collect_free(struct agent *a)
{
	free(a->collect);
	a->collect = NULL;
}
