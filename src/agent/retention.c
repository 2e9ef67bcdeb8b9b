/* retention.c — the retention sweep: collects the partitions with
 * something to trim on the loop, trims them on the pool (one metadata
 * transaction each), and raises the agent's log start offsets when the
 * sweep comes back. */
#include "agent/retention.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/topic_config.h"
#include "base/clock.h"
#include "base/log.h"
#include "meta/meta.h"

struct retention {
	struct agent *a;
	uv_timer_t timer;
	uv_work_t work;
	bool running;      /* a sweep is on the pool */
	bool stopped;
	atomic_bool abandon; /* draining: the sweep on the pool stops early */
	struct trim_item *items;
	size_t n, cap;
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

int retention_limits(const struct topic_state *t, int64_t now_ms, struct meta_trim *out)
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

static void collect_topic(void *arg, struct topic_state *t)
{
	struct retention *r = arg;
	struct meta_trim trim;
	if (!retention_limits(t, clock_wall_ms(), &trim))
		return;
	for (int32_t p = 0; p < t->partition_count; p++) {
		if (t->parts[p].high_watermark <= t->parts[p].log_start_offset)
			continue; /* empty: nothing to trim */
		if (r->n == r->cap) {
			size_t cap = r->cap ? r->cap * 2 : 64;
			struct trim_item *v = realloc(r->items, cap * sizeof *v);
			if (!v)
				return; /* the next sweep tries again */
			r->items = v;
			r->cap = cap;
		}
		/* Never past what the agent serves: a commit the store made may
		 * not have reached the agent's partition state yet. */
		trim.limit = t->parts[p].high_watermark;
		r->items[r->n++] = (struct trim_item){ t->tid, p, trim, -1, 0 };
	}
}

void trim_items_run(struct meta *m, struct trim_item *items, size_t n,
		    const atomic_bool *abandon)
{
	for (size_t i = 0; i < n; i++) {
		struct trim_item *it = &items[i];
		it->err = abandon && atomic_load(abandon)
			? SL_EBUSY
			: meta_partition_trim(m, it->tid, it->partition, &it->trim, &it->log_start);
	}
}

size_t trim_items_apply(struct agent *a, const struct trim_item *items, size_t n)
{
	size_t moved = 0;
	for (size_t i = 0; i < n; i++) {
		const struct trim_item *it = &items[i];
		if (it->err)
			continue;
		struct topic_state *t = agent_topic_by_tid(a, it->tid);
		if (t && it->partition < t->partition_count &&
		    partition_raise_log_start(&t->parts[it->partition], it->log_start))
			moved++;
	}
	return moved;
}

static void sweep_work(uv_work_t *w)
{
	struct retention *r = w->data;
	trim_items_run(r->a->meta, r->items, r->n, &r->abandon);
}

static void sweep_done(uv_work_t *w, int status)
{
	struct retention *r = w->data;
	r->running = false;
	if (status == 0 && !r->stopped) {
		size_t failed = 0;
		for (size_t i = 0; i < r->n; i++)
			/* A topic deleted meanwhile is not a failure. */
			failed += r->items[i].err && r->items[i].err != SL_ENOTFOUND &&
				  r->items[i].err != SL_EBUSY;
		size_t moved = trim_items_apply(r->a, r->items, r->n);
		if (moved)
			log_info("retention: the log start of %zu partition(s) moved", moved);
		if (failed)
			log_warn("retention: %zu partition(s) could not be trimmed; the next "
				 "sweep retries", failed);
	}
	r->n = 0;
}

static void on_timer(uv_timer_t *timer)
{
	struct retention *r = timer->data;
	if (r->running || r->stopped)
		return;
	r->n = 0;
	agent_topics_each(r->a, collect_topic, r);
	if (r->n == 0)
		return;
	r->work.data = r;
	if (uv_queue_work(r->a->loop, &r->work, sweep_work, sweep_done) == 0)
		r->running = true;
}

int retention_start(struct agent *a)
{
	struct retention *r = calloc(1, sizeof *r);
	if (!r)
		return SL_ENOMEM;
	r->a = a;
	uv_timer_init(a->loop, &r->timer);
	r->timer.data = r;
	uint64_t every = (uint64_t)a->cfg.retention_check_interval_ms;
	uv_timer_start(&r->timer, on_timer, every, every);
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
}

void retention_free(struct agent *a)
{
	struct retention *r = a->retention;
	if (!r)
		return;
	free(r->items);
	free(r);
	a->retention = NULL;
}
