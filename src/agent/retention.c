/* retention.c — the maintenance queue, the retention sweep and the
 * background collection of dead objects. Jobs (the sweep's,
 * DeleteRecords', the collection's) run one at a time on the thread pool,
 * in order, so maintenance never holds more than one pool thread; when a
 * trim job comes back, the agent's log starts rise to what the metadata
 * store has. The sweep collects, on the loop, the partitions its topics'
 * limits apply to. */
#include "agent/retention.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/topic_config.h"
#include "base/clock.h"
#include "base/log.h"
#include "meta/meta.h"
#include "storage/gc.h"

struct retention {
	struct agent *a;
	uv_timer_t timer;
	uv_work_t work;
	struct trim_job *head, *tail; /* queued; head is on the pool when running */
	bool running;
	bool stopped;
	atomic_bool abandon;          /* draining: abandonable jobs stop early */
	/* The sweep's own job, queued at most once at a time. */
	struct trim_job sweep;
	bool sweep_queued;
	size_t cap;
	/* The dead-object collection: its timer and job. */
	uv_timer_t gc_timer;
	struct trim_job gc;
	bool gc_queued;
	struct gc_dead_stats gc_stats; /* this pass so far */
	int64_t gc_after;              /* the pass's cursor */
	int64_t gc_cutoff;
	bool gc_more;
	int gc_err;
};

static int64_t config_i64(const struct topic_state *t, const char *name)
{
	const struct topic_config_def *d = topic_config_find(name);
	return agent_topic_config_i64(t, name, d ? strtoll(d->default_value, NULL, 10) : -1);
}

bool retention_policy_deletes(const struct topic_state *t)
{
	const char *policy = agent_topic_config(t, "cleanup.policy");
	if (!policy)
		policy = topic_config_find("cleanup.policy")->default_value;
	return strstr(policy, "delete") != NULL;
}

/* The topic's limits now, from its configs or Kafka's defaults (now_ms:
 * wall clock). Returns 0 when cleanup.policy has no "delete" or both
 * limits are off (nothing to trim), 1 otherwise. */
static int retention_limits(const struct topic_state *t, int64_t now_ms, struct meta_trim *out)
{
	out->offset = -1;
	out->cutoff_ms = -1;
	out->limit = -1;
	out->retention_bytes = config_i64(t, "retention.bytes");
	if (!retention_policy_deletes(t))
		return 0;
	int64_t ms = config_i64(t, "retention.ms");
	/* retention.ms beyond the clock (Long.MAX_VALUE) keeps everything. */
	if (ms >= 0 && ms <= now_ms)
		out->cutoff_ms = now_ms - ms;
	if (out->retention_bytes < 0)
		out->retention_bytes = -1;
	return out->cutoff_ms >= 0 || out->retention_bytes >= 0;
}

/* ---- the queue ---- */

static void queue_next(struct retention *r);

static void job_work(uv_work_t *w)
{
	struct retention *r = w->data;
	struct trim_job *job = r->head;
	if (job->work) {
		job->work(job, r->a);
		return;
	}
	for (size_t i = 0; i < job->n; i++) {
		struct trim_item *it = &job->items[i];
		it->log_start = -1;
		it->err = job->abandonable && atomic_load(&r->abandon)
			? SL_EBUSY
			: meta_partition_trim(r->a->meta, it->tid, it->partition, &it->trim,
					      &it->log_start);
	}
}

static void job_done(uv_work_t *w, int status)
{
	struct retention *r = w->data;
	struct trim_job *job = r->head;
	r->head = job->next;
	if (!r->head)
		r->tail = NULL;
	r->running = false;
	for (size_t i = 0; i < job->n; i++) {
		struct trim_item *it = &job->items[i];
		if (status != 0)
			it->err = SL_EIO;
		if (it->err)
			continue;
		/* A topic deleted meanwhile has nothing to raise. */
		struct topic_state *t = agent_topic_by_tid(r->a, it->tid);
		if (t && it->partition < t->partition_count &&
		    partition_raise_log_start(&t->parts[it->partition], it->log_start))
			job->moved++;
	}
	job->done(job, job->arg);
	queue_next(r);
}

static void queue_next(struct retention *r)
{
	if (r->running || !r->head)
		return;
	r->work.data = r;
	if (uv_queue_work(r->a->loop, &r->work, job_work, job_done) == 0) {
		r->running = true;
		return;
	}
	/* Cannot happen with a valid loop: fail every queued job. */
	while (r->head) {
		struct trim_job *job = r->head;
		r->head = job->next;
		for (size_t i = 0; i < job->n; i++)
			job->items[i].err = SL_EIO;
		job->done(job, job->arg);
	}
	r->tail = NULL;
}

void trim_submit(struct agent *a, struct trim_job *job)
{
	struct retention *r = a->retention;
	job->next = NULL;
	job->moved = 0;
	if (r->tail)
		r->tail->next = job;
	else
		r->head = job;
	r->tail = job;
	queue_next(r);
}

/* ---- the sweep ---- */

static void collect_topic(void *arg, struct topic_state *t)
{
	struct retention *r = arg;
	struct meta_trim trim;
	if (!retention_limits(t, clock_wall_ms(), &trim))
		return;
	for (int32_t p = 0; p < t->partition_count; p++) {
		/* Never had data: nothing to trim. (A partition trimmed to its
		 * high watermark stays in: rows an interrupted trim left below
		 * its log start go in the next one.) */
		if (t->parts[p].high_watermark == 0)
			continue;
		if (r->sweep.n == r->cap) {
			size_t cap = r->cap ? r->cap * 2 : 64;
			struct trim_item *v = realloc(r->sweep.items, cap * sizeof *v);
			if (!v)
				return; /* the next sweep tries again */
			r->sweep.items = v;
			r->cap = cap;
		}
		/* Never past what the agent serves: a commit the store made may
		 * not have reached the agent's partition state yet. */
		trim.limit = t->parts[p].high_watermark;
		r->sweep.items[r->sweep.n++] = (struct trim_item){ t->tid, p, trim, -1, 0 };
	}
}

static void sweep_done(struct trim_job *job, void *arg)
{
	struct retention *r = arg;
	size_t failed = 0;
	for (size_t i = 0; i < job->n; i++)
		/* A topic deleted meanwhile is not a failure. */
		failed += job->items[i].err && job->items[i].err != SL_ENOTFOUND &&
			  job->items[i].err != SL_EBUSY;
	if (job->moved)
		log_info("retention: the log start of %zu partition(s) moved", job->moved);
	if (failed)
		log_warn("retention: %zu partition(s) could not be trimmed; the next sweep retries",
			 failed);
	job->n = 0;
	r->sweep_queued = false;
}

static void on_timer(uv_timer_t *timer)
{
	struct retention *r = timer->data;
	if (r->sweep_queued || r->stopped)
		return;
	r->sweep.n = 0;
	agent_topics_each(r->a, collect_topic, r);
	if (r->sweep.n == 0)
		return;
	r->sweep_queued = true;
	trim_submit(r->a, &r->sweep);
}

/* ---- dead objects ---- */

/* One page of the pass per job, so trims (DeleteRecords waits for an
 * answer) and a drain never wait behind a whole pass. */
static void gc_work(struct trim_job *job, struct agent *a)
{
	struct retention *r = job->arg;
	r->gc_more = false;
	if (atomic_load(&r->abandon))
		return;
	r->gc_err = gc_dead_objects(a->meta, a->store, r->gc_cutoff, NULL, NULL, &r->gc_after, 1,
				    &r->gc_more, &r->gc_stats);
}

static void gc_done(struct trim_job *job, void *arg)
{
	struct retention *r = arg;
	if (r->gc_more && !r->gc_err && !r->stopped) {
		trim_submit(r->a, job); /* the next page, behind what queued meanwhile */
		return;
	}
	const struct gc_dead_stats *st = &r->gc_stats;
	if (st->deleted)
		log_info("gc: deleted %" PRIu64 " dead objects (%" PRIu64 " bytes)", st->deleted,
			 st->bytes);
	if (r->gc_err || st->failed)
		log_warn("gc: %" PRIu64 " dead objects stay for the next pass: %s", st->failed,
			 sl_strerror(r->gc_err ? r->gc_err : st->store_err));
	memset(&r->gc_stats, 0, sizeof r->gc_stats);
	r->gc_err = 0;
	r->gc_queued = false;
}

static void on_gc_timer(uv_timer_t *timer)
{
	struct retention *r = timer->data;
	if (r->gc_queued || r->stopped)
		return;
	r->gc_queued = true;
	r->gc_after = 0;
	r->gc_cutoff = clock_wall_ms() - r->a->cfg.gc_grace_ms;
	trim_submit(r->a, &r->gc);
}

/* A repeating timer (none when every_ms is 0); closed by retention_stop. */
static void start_every(struct retention *r, uv_timer_t *t, uv_timer_cb cb, int64_t every_ms)
{
	uv_timer_init(r->a->loop, t);
	t->data = r;
	if (every_ms > 0)
		uv_timer_start(t, cb, (uint64_t)every_ms, (uint64_t)every_ms);
}

int retention_start(struct agent *a)
{
	struct retention *r = calloc(1, sizeof *r);
	if (!r)
		return SL_ENOMEM;
	r->a = a;
	r->sweep.abandonable = true;
	r->sweep.done = sweep_done;
	r->sweep.arg = r;
	r->gc.work = gc_work;
	r->gc.done = gc_done;
	r->gc.arg = r;
	start_every(r, &r->timer, on_timer, a->cfg.retention_check_interval_ms);
	start_every(r, &r->gc_timer, on_gc_timer, a->cfg.gc_interval_ms);
	a->retention = r;
	return 0;
}

void retention_stop(struct agent *a)
{
	struct retention *r = a->retention;
	if (!r || r->stopped)
		return;
	r->stopped = true;
	atomic_store(&r->abandon, true);
	uv_close((uv_handle_t *)&r->timer, NULL);
	uv_close((uv_handle_t *)&r->gc_timer, NULL);
}

void retention_free(struct agent *a)
{
	struct retention *r = a->retention;
	if (!r)
		return;
	free(r->sweep.items);
	free(r);
	a->retention = NULL;
}
