/* merge.c — the agent's merge job (agent/merge.h). */
#include "agent/merge.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/maintenance.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "cluster/lease.h"
#include "storage/batch_index.h"
#include "storage/merge.h"
#include "storage/writer.h"

/* One agent of a cluster merges at a time: two merging one partition at
 * once would both read and write it, and one swap would be refused. */
#define JOB_MERGE "job/merge"

struct merge_item {
	int64_t tid;
	int32_t partition;
	uint8_t uuid[16];
};

struct merger {
	struct agent *a;
	uv_timer_t timer;
	struct maint_job job;
	bool queued, stopped;
	struct merge_plan_config plan;
	struct merge_item *items; /* the pass's partitions, taken at its start */
	size_t n, next;
	struct merge_item cur;    /* the job's: copied, the pool reads no catalog */
	int64_t now_ms;
	int64_t pass_start_us; /* monotonic, for the pass's line */
	struct merge_stats job_stats, pass;
	/* The job's, used on the maintenance queue only. */
	struct merge_memo *memo;
	int err;
};

static bool abandoning(void *arg)
{
	return maint_abandoning(arg);
}

static void merge_work(struct maint_job *job, struct agent *a)
{
	struct merger *g = job->arg;
	memset(&g->job_stats, 0, sizeof g->job_stats);
	g->err = maint_abandoning(a) ? 0
		: merge_partition(a->meta, a->store, g->cur.tid, g->cur.partition, g->cur.uuid,
				  &g->plan, g->now_ms, abandoning, a, maint_buf(a), g->memo,
				  &g->job_stats);
	merge_buf_idle(maint_buf(a));
}

static void pass_end(struct merger *g, const char *why)
{
	const struct merge_stats *st = &g->pass;
	/* A pass that only read (resume checks) or did nothing: debug. */
	enum log_level level = st->runs || st->refused || st->resumed ? LOG_INFO : LOG_DEBUG;
	if (log_level_current >= level)
		log_msg(level, "merge: %" PRIu64 " rows from %" PRIu64 " objects into %" PRIu64
			 " merged objects (%" PRIu64 " bytes), %" PRIu64 " refused%s; %" PRIu64
			 " swap transactions, the longest %.1f ms; the pass took %" PRId64 " ms;"
			 " %" PRIu64 " of the rows into %" PRIu64 " partly merged objects;"
			 " %" PRIu64 " store reads",
			 st->rows, st->sources, st->runs, st->bytes, st->refused, why, st->swaps,
			 (double)st->swap_us_max / 1000.0, (clock_mono_us() - g->pass_start_us) / 1000,
			 st->resumed, st->resumed_objects, st->gets);
	free(g->items);
	g->items = NULL;
	g->n = g->next = 0;
	g->queued = false;
}

/* The next partition, unless draining or produce is under backpressure. */
static void submit_next(struct merger *g)
{
	struct agent *a = g->a;
	if (g->stopped || g->next >= g->n) {
		pass_end(g, "");
		return;
	}
	if (!lease_held(a->leases, JOB_MERGE, NULL)) {
		pass_end(g, " (stopped: the job/merge lease was lost)");
		return;
	}
	if (a->writer && writer_buffered_bytes(a->writer) >= (size_t)a->cfg.write_buffer_bytes / 2) {
		pass_end(g, " (paused: produce backpressure)");
		return;
	}
	g->cur = g->items[g->next++];
	g->now_ms = clock_wall_ms();
	maint_submit(a, &g->job);
}

static void merge_done(struct maint_job *job, void *arg)
{
	struct merger *g = arg;
	const struct merge_stats *st = &g->job_stats;
	if (g->err && g->err != SL_ENOTFOUND)
		log_warn("merge: partition %" PRId64 "/%d: %s (the next pass retries)", g->cur.tid,
			 g->cur.partition, sl_strerror(g->err));
	/* Its rows now name the merged objects: fetches look them up there
	 * instead of reading the old objects one by one. */
	if (st->runs || st->resumed)
		batch_index_drop(g->a->index, g->cur.tid, g->cur.partition);
	merge_stats_add(&g->pass, st);
	submit_next(g);
}

struct collect_arg {
	struct merger *g;
	size_t cap;
	bool oom;
};

static void add_topic(void *arg, struct topic_state *t)
{
	struct collect_arg *c = arg;
	struct merger *g = c->g;
	if (t->deleting || c->oom)
		return;
	for (int32_t p = 0; p < t->partition_count; p++) {
		if (g->n == c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 64;
			struct merge_item *it = realloc(g->items, cap * sizeof *it);
			if (!it) {
				c->oom = true;
				return;
			}
			g->items = it;
			c->cap = cap;
		}
		struct merge_item *it = &g->items[g->n++];
		it->tid = t->tid;
		it->partition = p;
		memcpy(it->uuid, t->uuid, 16);
	}
}

static void on_timer(uv_timer_t *timer)
{
	struct merger *g = timer->data;
	struct agent *a = g->a;
	if (g->queued || g->stopped || !lease_held(a->leases, JOB_MERGE, NULL))
		return;
	struct collect_arg c = { g, 0, false };
	agent_topics_each(a, add_topic, &c);
	if (c.oom) {
		log_warn("merge: out of memory listing partitions: the next pass retries");
		free(g->items);
		g->items = NULL;
		g->n = 0;
		return;
	}
	memset(&g->pass, 0, sizeof g->pass);
	merge_memo_pass(g->memo);
	g->pass_start_us = clock_mono_us();
	g->queued = true;
	g->next = 0;
	submit_next(g);
}

int merge_start(struct agent *a)
{
	struct merger *g = calloc(1, sizeof *g);
	if (!g)
		return SL_ENOMEM;
	g->a = a;
	g->memo = merge_memo_new();
	g->job.work = merge_work;
	g->job.done = merge_done;
	g->job.arg = g;
	int rc = lease_want(a->leases, JOB_MERGE, NULL, NULL);
	if (rc) {
		merge_memo_free(g->memo);
		free(g);
		return rc;
	}
	g->plan = (struct merge_plan_config){ .target_bytes = (uint64_t)a->cfg.merge_target_bytes,
					      .min_age_ms = a->cfg.merge_min_age_ms,
					      .swap_rows = (size_t)a->cfg.merge_swap_rows };
	merge_plan_defaults(&g->plan);
	uv_timer_init(a->loop, &g->timer);
	g->timer.data = g;
	if (a->cfg.merge_interval_ms > 0)
		uv_timer_start(&g->timer, on_timer, (uint64_t)a->cfg.merge_interval_ms,
			       (uint64_t)a->cfg.merge_interval_ms);
	a->merger = g;
	return 0;
}

void merge_stop(struct agent *a)
{
	struct merger *g = a->merger;
	if (!g || g->stopped)
		return;
	g->stopped = true;
	uv_close((uv_handle_t *)&g->timer, NULL);
}

void merge_free(struct agent *a)
{
	if (a->merger) {
		free(a->merger->items);
		merge_memo_free(a->merger->memo);
	}
	free(a->merger);
	a->merger = NULL;
}
