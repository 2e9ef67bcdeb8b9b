/* retention.c — the retention sweep: collects the partitions with
 * something to trim on the loop, trims them on the pool (one metadata
 * transaction each), and raises the agent's log start offsets when the
 * sweep comes back. */
#include "agent/retention.h"

#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/topic_config.h"
#include "base/clock.h"
#include "base/log.h"
#include "meta/meta.h"

struct retention_item {
	int64_t tid;
	int32_t partition;
	struct meta_trim trim;
	int64_t log_start; /* out */
	int err;           /* out */
};

struct retention {
	struct agent *a;
	uv_timer_t timer;
	uv_work_t work;
	bool running;      /* a sweep is on the pool */
	bool stopped;
	struct retention_item *items;
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
			struct retention_item *v = realloc(r->items, cap * sizeof *v);
			if (!v)
				return; /* the next sweep tries again */
			r->items = v;
			r->cap = cap;
		}
		r->items[r->n++] = (struct retention_item){ t->tid, p, trim, -1, 0 };
	}
}

static void sweep_work(uv_work_t *w)
{
	struct retention *r = w->data;
	for (size_t i = 0; i < r->n; i++) {
		struct retention_item *it = &r->items[i];
		it->err = meta_partition_trim(r->a->meta, it->tid, it->partition, &it->trim,
					      &it->log_start);
	}
}

static void sweep_done(uv_work_t *w, int status)
{
	struct retention *r = w->data;
	r->running = false;
	size_t moved = 0, failed = 0;
	for (size_t i = 0; status == 0 && !r->stopped && i < r->n; i++) {
		struct retention_item *it = &r->items[i];
		if (it->err) {
			/* A topic deleted meanwhile is not a failure. */
			failed += it->err != SL_ENOTFOUND;
			continue;
		}
		struct topic_state *t = agent_topic_by_tid(r->a, it->tid);
		if (!t || it->partition >= t->partition_count)
			continue;
		struct partition_state *ps = &t->parts[it->partition];
		if (it->log_start > ps->log_start_offset) {
			ps->log_start_offset = it->log_start;
			moved++;
		}
	}
	if (moved)
		log_info("retention: the log start of %zu partition(s) moved", moved);
	if (failed)
		log_warn("retention: %zu partition(s) could not be trimmed; the next sweep retries",
			 failed);
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
