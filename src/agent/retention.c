/* retention.c — the retention sweep (retention.h): every
 * --retention-check-interval-ms it collects, on the loop, the partitions
 * its topics' limits apply to and submits them as one job of the
 * maintenance queue (agent/maintenance.h). In a cluster only the holder
 * of the job/retention lease (cluster/lease.h) sweeps; the others skip
 * their turns, and take the lease over when its holder dies. */
#include "agent/retention.h"

#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/maintenance.h"
#include "agent/topic_config.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "cluster/lease.h"
#include "meta/meta.h"

#define JOB_RETENTION "job/retention"

struct retention {
	struct agent *a;
	uv_timer_t timer;
	bool stopped;
	/* The sweep's own job, queued at most once at a time. */
	struct maint_job sweep;
	bool sweep_queued;
	size_t cap;
};
static int64_t config_i64(const struct topic_state *t, const char *name)
{
	const struct topic_config_def *d = topic_config_find(name);
	return agent_topic_config_i64(t, name, d ? strtoll(d->default_value, NULL, 10) : -1);
}

static bool policy_has(const struct topic_state *t, const char *word)
{
	const char *policy = agent_topic_config(t, "cleanup.policy");
	if (!policy)
		policy = topic_config_find("cleanup.policy")->default_value;
	return strstr(policy, word) != NULL;
}

bool retention_policy_deletes(const struct topic_state *t)
{
	return policy_has(t, "delete");
}

bool retention_policy_compacts(const struct topic_state *t)
{
	return policy_has(t, "compact");
}

/* The topic's limits now, from its configs or Kafka's defaults (now_ms:
 * wall clock). Returns 0 when cleanup.policy has no "delete" or both
 * limits are off (nothing to trim), 1 otherwise. */
static int retention_limits(const struct topic_state *t, int64_t now_ms, struct meta_trim *out)
{
	out->offset = -1;
	out->cutoff_ms = -1;
	out->limit = -1;
	out->producers_before_ms = now_ms - SL_PRODUCER_EXPIRATION_MS;
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
		/* Never had data: nothing to trim. (A partition trimmed to its
		 * high watermark stays in: rows an interrupted trim left below
		 * its log start go in the next one.) */
		if (t->parts[p].high_watermark == 0)
			continue;
		if (r->sweep.n == r->cap) {
			size_t cap = r->cap ? r->cap * 2 : 64;
			struct maint_trim *v = realloc(r->sweep.items, cap * sizeof *v);
			if (!v)
				return; /* the next sweep tries again */
			r->sweep.items = v;
			r->cap = cap;
		}
		/* Never past what the agent serves: a commit the store made may
		 * not have reached the agent's partition state yet. */
		trim.limit = t->parts[p].high_watermark;
		r->sweep.items[r->sweep.n++] = (struct maint_trim){ t->tid, p, trim, -1, 0 };
	}
}

static void sweep_done(struct maint_job *job, void *arg)
{
	struct retention *r = arg;
	size_t failed = 0;
	for (size_t i = 0; i < job->n; i++)
		/* A topic deleted meanwhile is not a failure. */
		failed += job->items[i].err && job->items[i].err != SL_ENOTFOUND &&
			  job->items[i].err != SL_EBUSY;
	if (job->moved)
		log_info("retention: the log start of %zu partition(s) moved (swept %zu)", job->moved,
			 job->n);
	if (failed)
		log_warn("retention: %zu partition(s) could not be trimmed; the next sweep retries",
			 failed);
	job->n = 0;
	r->sweep_queued = false;
}

static void on_timer(uv_timer_t *timer)
{
	struct retention *r = timer->data;
	if (r->sweep_queued || r->stopped || !lease_held(r->a->leases, JOB_RETENTION, NULL))
		return;
	r->sweep.n = 0;
	agent_topics_each(r->a, collect_topic, r);
	if (r->sweep.n == 0)
		return;
	r->sweep_queued = true;
	maint_submit(r->a, &r->sweep);
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
	int rc = lease_want(a->leases, JOB_RETENTION, NULL, NULL);
	if (rc) {
		free(r);
		return rc;
	}
	uv_timer_init(a->loop, &r->timer);
	r->timer.data = r;
	if (a->cfg.retention_check_interval_ms > 0)
		uv_timer_start(&r->timer, on_timer, (uint64_t)a->cfg.retention_check_interval_ms,
			       (uint64_t)a->cfg.retention_check_interval_ms);
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
	free(r->sweep.items);
	free(r);
	a->retention = NULL;
}
