/* compaction.c — the agent's cleaner of compacted topics
 * (agent/compaction.h). */
#include "agent/compaction.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/maintenance.h"
#include "agent/topic_config.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/log.h"
#include "cluster/lease.h"
#include "storage/batch_index.h"
#include "storage/clean.h"
#include "storage/merge.h"
#include "storage/writer.h"
#include "txn/aborted_index.h"

/* One agent of a cluster cleans at a time: two cleaning one partition at
 * once would both read and rewrite it, and one swap would be refused. */
#define JOB_COMPACT "job/compact"

/* A partition of a compacted topic, with its topic's configs as the
 * catalog had them at the pass's start (the pool reads no catalog). */
struct clean_item {
	int64_t tid;
	int32_t partition;
	uint8_t uuid[16];
	struct compact_config cfg;
	struct clean_stats plan;  /* the planning job's */
	int64_t hwm;              /* the partition's when the pass began */
	int err;
};

struct cleaner {
	struct agent *a;
	uv_timer_t timer;
	struct maint_job job;
	bool queued, stopped;
	bool planning;            /* the job plans every item, else cleans cur */
	struct clean_item *items; /* the pass's partitions */
	size_t n, cap, next;
	size_t idle;              /* partitions left out: idle (clean_idle_hwm) */
	struct clean_item *cur;
	struct clean_pass *pass;  /* cur's, between its chunks; kept paused
				     between checks (of partition held) */
	struct clean_item held;   /* pass's partition and configs */
	bool part_done;           /* the cleaning job finished cur's pass */
	uint64_t chunks;          /* cleaning jobs this check */
	uint64_t swaps_seen;      /* of st.swaps, told to the indexes */
	int64_t now_ms;
	int64_t pass_start_us;    /* monotonic, for the pass's line */
	struct clean_stats st;    /* the cleaning job's */
	uint64_t cleaned, refused;
	uint64_t bytes_read, bytes_written;
};

static void clean_work(struct maint_job *job, struct agent *a)
{
	struct cleaner *g = job->arg;
	if (g->planning) {
		for (size_t i = 0; i < g->n && !maint_abandoning(a); i++) {
			struct clean_item *it = &g->items[i];
			memset(&it->plan, 0, sizeof it->plan);
			it->err = clean_plan_partition(a->meta, it->tid, it->partition, &it->cfg,
						       g->now_ms, &it->plan);
		}
		return;
	}
	/* One chunk per job: the loop learns of each swap before the next,
	 * and trims and drains wait for one chunk at most. */
	struct clean_item *it = g->cur;
	g->part_done = true;
	if (maint_abandoning(a))
		return;
	if (!g->pass) {
		it->err = clean_pass_begin(a->meta, a->store, it->tid, it->partition, it->uuid,
					   &it->cfg, g->now_ms, false,
					   (size_t)a->cfg.compaction_pass_bytes, maint_buf(a), &g->st,
					   &g->pass);
		if (it->err || !g->pass)
			return;
		g->held = *it;
	}
	bool done = false;
	it->err = clean_pass_step(g->pass, &g->st, &done);
	g->part_done = done || it->err;
	merge_buf_idle(maint_buf(a));
}

static void pass_drop(struct cleaner *g)
{
	clean_pass_free(g->pass);
	g->pass = NULL;
}

/* The check ends; with keep, the partition's pass under way stays, to
 * resume at the next check (resume_held). */
static void pass_end(struct cleaner *g, const char *why, bool keep)
{
	if (g->cleaned || g->refused)
		log_info("compaction: %" PRIu64 " partition(s) cleaned (%" PRIu64 " bytes into %" PRIu64
			 "), %" PRIu64 " refused%s; the pass took %" PRId64 " ms",
			 g->cleaned, g->bytes_read, g->bytes_written, g->refused, why,
			 (clock_mono_us() - g->pass_start_us) / 1000);
	if (!keep)
		pass_drop(g);
	else if (g->pass)
		log_debug("compaction: %" PRId64 "/%d: the pass pauses%s, to resume at the next check",
			  g->held.tid, g->held.partition, why);
	g->n = g->next = 0;
	g->queued = false;
}

/* Dirtiest first. */
static int cmp_dirty(const void *x, const void *y)
{
	const struct clean_item *a = x, *b = y;
	if (a->plan.dirty_ratio != b->plan.dirty_ratio)
		return a->plan.dirty_ratio < b->plan.dirty_ratio ? 1 : -1;
	return (a->plan.dirty_bytes < b->plan.dirty_bytes) - (a->plan.dirty_bytes > b->plan.dirty_bytes);
}

/* Whether the pass goes on (after a chunk of a partition): not while
 * draining, without the lease, or under produce backpressure. The reason
 * it stops, else NULL; *keep whether the partition's pass under way may
 * resume at the next check (a pause), or must start over (the lease
 * lost: another agent may clean meanwhile). */
static const char *pass_stops(struct cleaner *g, bool *keep)
{
	struct agent *a = g->a;
	*keep = false;
	if (g->stopped)
		return "";
	if (!lease_held(a->leases, JOB_COMPACT, NULL))
		return " (stopped: the job/compact lease was lost)";
	*keep = true;
	if (a->writer && writer_buffered_bytes(a->writer) >= (size_t)a->cfg.write_buffer_bytes / 2)
		return " (paused: produce backpressure)";
	if (a->cfg.compaction_pause_chunks && g->chunks >= (uint64_t)a->cfg.compaction_pause_chunks)
		return " (paused: SLUICE_COMPACTION_PAUSE_CHUNKS)";
	return NULL;
}

static bool same_config(const struct compact_config *x, const struct compact_config *y)
{
	return x->segment_ms == y->segment_ms && x->segment_bytes == y->segment_bytes &&
	       x->min_compaction_lag_ms == y->min_compaction_lag_ms &&
	       x->max_compaction_lag_ms == y->max_compaction_lag_ms &&
	       x->delete_retention_ms == y->delete_retention_ms &&
	       x->min_cleanable_dirty_ratio == y->min_cleanable_dirty_ratio &&
	       x->producer_expiration_ms == y->producer_expiration_ms &&
	       x->map_bytes_max == y->map_bytes_max;
}

/* After the planning: the pass paused at an earlier check resumes first,
 * due or not (the chunks it cleaned lowered the dirty ratio the plan
 * sees, not the work left), if its partition is still planned (the
 * topic and its compact policy still there), with the same configs and
 * the checkpoint it planned from; else it is dropped and the partition,
 * when due, is planned over. (Rows changed meanwhile end it at its next
 * chunk: clean.h.) */
static void resume_held(struct cleaner *g)
{
	if (!g->pass)
		return;
	const struct clean_item *h = &g->held;
	const char *why = "its partition is no longer planned";
	for (size_t i = 0; i < g->n; i++) {
		struct clean_item *it = &g->items[i];
		if (it->tid != h->tid || it->partition != h->partition)
			continue;
		if (it->err)
			why = "its planning failed";
		else if (!same_config(&it->cfg, &h->cfg))
			why = "the topic's configs changed";
		else if (it->plan.clean_offset != clean_pass_checkpoint(g->pass))
			why = "the checkpoint moved";
		else {
			it->plan.due = true;
			struct clean_item t = g->items[0];
			g->items[0] = *it;
			*it = t;
			return;
		}
		break;
	}
	log_debug("compaction: %" PRId64 "/%d: the paused pass starts over: %s", h->tid,
		  h->partition, why);
	pass_drop(g);
}

/* The next due partition, unless draining, the lease is gone or produce
 * is under backpressure. */
static void submit_next(struct cleaner *g)
{
	struct agent *a = g->a;
	while (g->next < g->n && (g->items[g->next].err || !g->items[g->next].plan.due))
		g->next++;
	if (g->stopped || g->next >= g->n) {
		pass_end(g, "", false);
		return;
	}
	bool keep;
	const char *why = pass_stops(g, &keep);
	if (why) {
		pass_end(g, why, keep);
		return;
	}
	g->planning = false;
	g->cur = &g->items[g->next++];
	/* The paused pass resumes first (resume_held), or not at all. */
	if (g->pass && (g->cur->tid != g->held.tid || g->cur->partition != g->held.partition))
		pass_drop(g);
	g->now_ms = clock_wall_ms();
	memset(&g->st, 0, sizeof g->st);
	g->swaps_seen = 0;
	maint_submit(a, &g->job);
}


/* A pass swapped (tid, partition): the batch index drops the rows it
 * holds, which name the uncleaned objects (the next fetch reads the
 * cleaned ones; before that the agent serves the uncleaned bytes, a
 * superset of what was kept, still readable for the collector's grace),
 * and the aborted index the partition, as the pass may have deleted
 * aborted transactions with no batch left (the next read_committed fetch
 * looks them up). Dropped at every pass, not only those that deleted
 * one: a lookup that raced one may have put such a transaction back, and
 * must not outlive the later pass that removes its ABORT marker. */
void compaction_swapped(struct agent *a, int64_t tid, int32_t partition)
{
	batch_index_drop(a->index, tid, partition);
	if (a->aborted)
		aborted_index_drop(a->aborted, tid, partition);
}

/* The cleaner's checkpoint of a partition as the store has it: one that
 * moved without this agent's pass is another process's (`sluice compact`
 * on the same store; on PostgreSQL its swap's notice has told this agent
 * already): compaction_swapped. */
static void checkpoint_seen(struct agent *a, int64_t tid, int32_t partition, int64_t clean_offset)
{
	struct topic_state *t = agent_topic_by_tid(a, tid);
	if (!t || partition >= t->partition_count)
		return;
	struct partition_state *ps = &t->parts[partition];
	if (ps->clean_offset == clean_offset)
		return;
	ps->clean_offset = clean_offset;
	compaction_swapped(a, tid, partition);
}

static void idle_seen(struct agent *a, int64_t tid, int32_t partition, int64_t hwm)
{
	struct topic_state *t = agent_topic_by_tid(a, tid);
	if (t && partition < t->partition_count)
		t->parts[partition].clean_idle_hwm = hwm;
}

/* The cleaning job's partition (its pass, or the part of it done by a
 * check that stops) into the check's totals. */
static void count_partition(struct cleaner *g)
{
	g->cleaned += g->st.swaps != 0;
	g->refused += g->st.refused;
	g->bytes_read += g->st.bytes_read;
	g->bytes_written += g->st.bytes_written;
}

static void clean_done(struct maint_job *job, void *arg)
{
	struct cleaner *g = arg;
	(void)job;
	if (g->planning) {
		size_t due = 0, bounded = 0;
		uint64_t batches = 0;
		for (size_t i = 0; i < g->n; i++) {
			struct clean_item *it = &g->items[i];
			bounded += !it->err && it->plan.bounded;
			batches += it->plan.plan_batches;
			if (it->err && it->err != SL_ENOTFOUND)
				log_warn("compaction: planning %" PRId64 "/%d: %s (the next pass retries)",
					 it->tid, it->partition, sl_strerror(it->err));
			due += !it->err && it->plan.due;
			if (!it->err)
				checkpoint_seen(g->a, it->tid, it->partition, it->plan.clean_offset);
			/* The plan read at least the rows below it->hwm. */
			if (!it->err)
				idle_seen(g->a, it->tid, it->partition, it->plan.idle ? it->hwm : 0);
		}
		/* Tests read this line: rows a not-due partition costs. */
		log_debug("compaction: planned %zu partition(s): %zu due, %zu not due by bounds"
			  " (rows unread), %" PRIu64 " batch rows read in %" PRId64 " ms",
			  g->n, due, bounded, batches, (clock_mono_us() - g->pass_start_us) / 1000);
		if (due)
			qsort(g->items, g->n, sizeof *g->items, cmp_dirty);
		resume_held(g);
		submit_next(g);
		return;
	}
	struct clean_item *it = g->cur;
	if (it->err && it->err != SL_ENOTFOUND)
		log_warn("compaction: cleaning %" PRId64 "/%d: %s (the next pass retries)", it->tid,
			 it->partition, sl_strerror(it->err));
	/* Its rows now name the cleaned objects: fetches look them up there
	 * (at each chunk swapped, before the next). */
	if (g->st.swaps > g->swaps_seen) {
		g->swaps_seen = g->st.swaps;
		compaction_swapped(g->a, it->tid, it->partition);
	}
	g->chunks++;
	if (!g->part_done) {
		bool keep;
		const char *why = pass_stops(g, &keep);
		if (why) {
			count_partition(g);
			pass_end(g, why, keep);
			return;
		}
		maint_submit(g->a, &g->job);
		return;
	}
	pass_drop(g);
	if (g->st.swaps) {
		checkpoint_seen(g->a, it->tid, it->partition, g->st.clean_offset);
		log_debug("compaction: %" PRId64 "/%d: %" PRIu64 " rows, %" PRIu64 " records into %" PRIu64
			  ", %" PRIu64 " aborted transaction(s) gone, checkpoint %" PRId64, it->tid,
			  it->partition, g->st.rows, g->st.records_read, g->st.records_kept,
			  g->st.aborted_gone, g->st.clean_offset);
	}
	count_partition(g);
	submit_next(g);
}

static const char *topic_lookup(void *arg, const char *name)
{
	return agent_topic_config(arg, name);
}

static void add_topic(void *arg, struct topic_state *t)
{
	struct cleaner *g = arg;
	if (t->deleting || !topic_config_compacts(topic_lookup, t))
		return;
	struct compact_config cfg;
	topic_config_compact(topic_lookup, t, &cfg);
	for (int32_t p = 0; p < t->partition_count; p++) {
		const struct partition_state *ps = &t->parts[p];
		if (ps->high_watermark == ps->log_start_offset)
			continue; /* nothing stored */
		/* Idle since the last planning: its rows are not read again
		 * (thousands of cleaned partitions cost nothing per check). */
		if (ps->clean_idle_hwm > 0 && ps->clean_idle_hwm == ps->high_watermark) {
			g->idle++;
			continue;
		}
		if (g->n == g->cap) {
			size_t cap = g->cap ? g->cap * 2 : 64;
			struct clean_item *v = realloc(g->items, cap * sizeof *v);
			if (!v)
				return; /* this pass goes without the rest */
			g->items = v;
			g->cap = cap;
		}
		struct clean_item *it = &g->items[g->n++];
		memset(it, 0, sizeof *it);
		it->tid = t->tid;
		it->partition = p;
		it->hwm = ps->high_watermark;
		memcpy(it->uuid, t->uuid, 16);
		it->cfg = cfg;
	}
}

static void on_timer(uv_timer_t *timer)
{
	struct cleaner *g = timer->data;
	struct agent *a = g->a;
	if (g->queued || g->stopped)
		return;
	if (!lease_held(a->leases, JOB_COMPACT, NULL)) {
		pass_drop(g); /* another agent may clean it meanwhile */
		return;
	}
	g->n = g->next = g->idle = 0;
	g->chunks = 0;
	g->cleaned = g->refused = g->bytes_read = g->bytes_written = 0;
	agent_topics_each(a, add_topic, g);
	if (g->n || g->idle)
		log_debug("compaction: planning %zu partition(s), %zu idle left out", g->n, g->idle);
	if (g->n == 0)
		return;
	g->queued = true;
	g->planning = true;
	g->pass_start_us = clock_mono_us();
	g->now_ms = clock_wall_ms();
	maint_submit(a, &g->job);
}

int compaction_start(struct agent *a)
{
	struct cleaner *g = calloc(1, sizeof *g);
	if (!g)
		return SL_ENOMEM;
	g->a = a;
	g->job.work = clean_work;
	g->job.done = clean_done;
	g->job.arg = g;
	int rc = lease_want(a->leases, JOB_COMPACT, NULL, NULL);
	if (rc) {
		free(g);
		return rc;
	}
	uv_timer_init(a->loop, &g->timer);
	g->timer.data = g;
	if (a->cfg.compaction_check_interval_ms > 0)
		uv_timer_start(&g->timer, on_timer, (uint64_t)a->cfg.compaction_check_interval_ms,
			       (uint64_t)a->cfg.compaction_check_interval_ms);
	a->cleaner = g;
	return 0;
}

void compaction_stop(struct agent *a)
{
	struct cleaner *g = a->cleaner;
	if (!g || g->stopped)
		return;
	g->stopped = true;
	uv_close((uv_handle_t *)&g->timer, NULL);
}

void compaction_free(struct agent *a)
{
	if (a->cleaner) {
		pass_drop(a->cleaner);
		free(a->cleaner->items);
	}
	free(a->cleaner);
	a->cleaner = NULL;
}
