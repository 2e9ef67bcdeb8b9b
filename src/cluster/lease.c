/* lease.c — the agent's leases (lease.h): a map of the leases it wants
 * or is giving up, one timer, one pool job at a time that syncs them all
 * with the metadata store (meta_leases_sync; PostgreSQL: on a connection of its own),
 * applied on the loop. */
#include "cluster/lease.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/log.h"
#include "base/strmap.h"

struct lease {
	char name[META_LEASE_NAME_BYTES];
	lease_change_fn fn;
	void *arg;
	bool want;            /* false: release it, then forget it */
	bool held;
	bool known;           /* a sync answered since it was wanted */
	bool in_job;
	int64_t epoch;
	int32_t holder;
	uint64_t valid_until; /* uv_now ms: the hold counts until then */
};

struct lease_set {
	uv_loop_t *loop;
	struct meta *meta;
	const struct meta_agent *self; /* NULL: a claimed store */
	struct strmap map;             /* name -> struct lease */
	uv_timer_t timer;
	uv_work_t work;
	bool running, again, stopping;
	bool failing;                  /* logged once per run of failures */
	/* the job's */
	struct meta_lease *batch;
	struct lease **of;
	size_t n;
	int rc;
	uint64_t started;              /* uv_now when the job was queued */
	const int64_t *beat_ok_us;     /* lease_set_beat's; NULL: unbounded */
};

static void sync_start(struct lease_set *s);

static void fire(struct lease *l)
{
	if (l->fn)
		l->fn(l->arg, l->name, l->held, l->epoch, l->holder);
}

static void job_work(uv_work_t *w)
{
	struct lease_set *s = w->data;
	s->rc = meta_leases_sync(s->meta, s->self, SL_LEASE_MS, s->batch, s->n);
}

/* A renewed hold's end (uv_now ms), no later than other agents may drop
 * this one's registry row (lease_set_beat). */
static uint64_t hold_end(const struct lease_set *s, uint64_t until)
{
	if (!s->beat_ok_us || *s->beat_ok_us <= 0)
		return until;
	int64_t left_ms = (*s->beat_ok_us + (int64_t)SL_CLUSTER_LEASE_MS * 1000 - clock_mono_us()) / 1000;
	uint64_t now = uv_now(s->loop);
	uint64_t row_end = left_ms > 0 ? now + (uint64_t)left_ms : now;
	return row_end < until ? row_end : until;
}

static void job_done(uv_work_t *w, int status)
{
	struct lease_set *s = w->data;
	/* running stays set until the end: a callback that wants a lease
	 * must not start a job over this one's batch. */
	if (status)
		s->rc = SL_EIO;
	if (s->rc && !s->failing)
		log_warn("leases: syncing %zu leases failed (%s); holds count for %d ms after "
			 "their last renewal", s->n, sl_strerror(s->rc), SL_LEASE_MS);
	else if (!s->rc && s->failing)
		log_info("leases: synced again");
	s->failing = s->rc != 0;
	for (size_t i = 0; i < s->n; i++) {
		struct lease *l = s->of[i];
		const struct meta_lease *ml = &s->batch[i];
		l->in_job = false;
		if (!l->want) {
			if (!ml->release && !s->rc && ml->epoch > 0) {
				/* Dropped while this sync took it: release it
				 * next, so its next holder need not wait. */
				l->held = true;
				l->epoch = ml->epoch;
				s->again = true;
				continue;
			}
			/* Released; a failed release runs out by itself, or
			 * ends with this agent's registry row. */
			free(strmap_del(&s->map, l->name));
			continue;
		}
		if (s->rc || s->stopping)
			continue; /* the timer ends holds that run out */
		bool was = l->held;
		int64_t was_epoch = l->epoch;
		bool first = !l->known;
		l->known = true;
		l->holder = ml->holder;
		l->held = ml->epoch > 0;
		l->epoch = ml->epoch;
		if (l->held) {
			l->valid_until = hold_end(s, s->started + (uint64_t)ml->expires_in_ms);
			if (l->valid_until <= uv_now(s->loop)) {
				/* Renewed, but this agent's registry row may
				 * be gone already: not acting for it. */
				l->held = false;
				l->epoch = 0;
			}
		}
		if (l->held != was || (l->held && l->epoch != was_epoch)) {
			if (l->held)
				log_info("lease %s: held at epoch %" PRId64, l->name, l->epoch);
			else
				log_info("lease %s: lost to node %" PRId32, l->name, l->holder);
			fire(l);
		} else if (first && !l->held) {
			fire(l); /* the first answer: another holds it */
		}
	}
	free(s->batch);
	free(s->of);
	s->batch = NULL;
	s->of = NULL;
	s->n = 0;
	s->running = false;
	if (s->again && !s->stopping) {
		s->again = false;
		sync_start(s);
	}
}

struct collect_arg {
	struct lease_set *s;
	size_t n;
};

static void collect_each(void *arg, const char *key, void *value)
{
	struct collect_arg *c = arg;
	struct lease *l = value;
	c->s->of[c->n] = l;
	c->s->batch[c->n] = (struct meta_lease){ .name = l->name, .release = !l->want };
	l->in_job = true;
	c->n++;
}

static void sync_start(struct lease_set *s)
{
	if (s->stopping || !s->self)
		return;
	if (s->running) {
		s->again = true;
		return;
	}
	size_t n = s->map.count;
	if (n == 0)
		return;
	s->batch = calloc(n, sizeof *s->batch);
	s->of = calloc(n, sizeof *s->of);
	if (!s->batch || !s->of) {
		free(s->batch);
		free(s->of);
		s->batch = NULL;
		s->of = NULL;
		return; /* the next tick tries again */
	}
	struct collect_arg c = { s, 0 };
	strmap_each(&s->map, collect_each, &c);
	s->n = c.n;
	s->started = uv_now(s->loop);
	s->work.data = s;
	if (uv_queue_work(s->loop, &s->work, job_work, job_done) == 0) {
		s->running = true;
		return;
	}
	for (size_t i = 0; i < s->n; i++)
		s->of[i]->in_job = false;
	free(s->batch);
	free(s->of);
	s->batch = NULL;
	s->of = NULL;
	s->n = 0;
}

struct expire_arg {
	uint64_t now;
	struct lease **ran_out;
	size_t n;
};

static void expire_each(void *arg, const char *key, void *value)
{
	struct expire_arg *x = arg;
	struct lease *l = value;
	if (l->want && l->held && x->now >= l->valid_until)
		x->ran_out[x->n++] = l;
}

/* Holds that ran out without a renewal end here; then the next sync. */
static void on_timer(uv_timer_t *t)
{
	struct lease_set *s = t->data;
	struct lease **ran_out = calloc(s->map.count + 1, sizeof *ran_out);
	if (ran_out) {
		struct expire_arg x = { uv_now(s->loop), ran_out, 0 };
		strmap_each(&s->map, expire_each, &x);
		for (size_t i = 0; i < x.n; i++) {
			struct lease *l = ran_out[i];
			l->held = false;
			l->epoch = 0;
			l->holder = -1;
			log_warn("lease %s: not renewed for %d ms; no longer acting for it", l->name,
				 SL_LEASE_MS);
			fire(l); /* may drop others: only flags change, nothing is freed */
		}
		free(ran_out);
	}
	sync_start(s);
}

int lease_set_new(uv_loop_t *loop, struct meta *meta, const struct meta_agent *self,
		  struct lease_set **out)
{
	struct lease_set *s = calloc(1, sizeof *s);
	if (!s)
		return SL_ENOMEM;
	s->loop = loop;
	s->meta = meta;
	s->self = self;
	strmap_init(&s->map);
	uv_timer_init(loop, &s->timer);
	s->timer.data = s;
	if (self)
		uv_timer_start(&s->timer, on_timer, SL_LEASE_RENEW_INTERVAL_MS,
			       SL_LEASE_RENEW_INTERVAL_MS);
	*out = s;
	return 0;
}

int lease_want(struct lease_set *s, const char *name, lease_change_fn fn, void *arg)
{
	size_t len = strlen(name);
	if (len == 0 || len >= META_LEASE_NAME_BYTES)
		return SL_EINVAL;
	struct lease *l = strmap_get(&s->map, name);
	if (l) {
		l->fn = fn;
		l->arg = arg;
		if (!l->want) {
			/* Wanted again before its release ran: keep it (a
			 * release queued in a running job may still go; the
			 * next sync then takes it again). */
			l->want = true;
			l->known = false;
			sync_start(s);
		}
		return 0;
	}
	if (s->map.count >= SL_LEASES_MAX)
		return SL_ELIMIT;
	l = calloc(1, sizeof *l);
	if (!l)
		return SL_ENOMEM;
	memcpy(l->name, name, len + 1);
	l->fn = fn;
	l->arg = arg;
	l->want = true;
	l->holder = -1;
	if (!s->self) {
		l->held = l->known = true; /* a claimed store: nobody else */
		l->holder = -1;
	}
	if (strmap_put(&s->map, l->name, l) != 0) {
		free(l);
		return SL_ENOMEM;
	}
	sync_start(s);
	return 0;
}

void lease_drop(struct lease_set *s, const char *name)
{
	struct lease *l = strmap_get(&s->map, name);
	if (!l || !l->want)
		return;
	l->want = false;
	l->fn = NULL;
	if (!s->self || (!l->held && !l->in_job)) {
		free(strmap_del(&s->map, name));
		return;
	}
	sync_start(s);
}

void lease_set_beat(struct lease_set *s, const int64_t *beat_ok_us)
{
	s->beat_ok_us = beat_ok_us;
}

bool lease_held(const struct lease_set *s, const char *name, int64_t *epoch)
{
	const struct lease *l = strmap_get(&s->map, name);
	bool held = l && l->want && l->held &&
		    (!s->self || uv_now(s->loop) < l->valid_until); /* ran out: the timer ends it */
	if (epoch)
		*epoch = held ? l->epoch : 0;
	return held;
}

bool lease_known(const struct lease_set *s, const char *name, int32_t *holder)
{
	const struct lease *l = strmap_get(&s->map, name);
	if (holder)
		*holder = l ? l->holder : -1;
	return l && l->want && l->known;
}

void lease_set_stop(struct lease_set *s)
{
	if (!s || s->stopping)
		return;
	s->stopping = true;
	uv_timer_stop(&s->timer);
	uv_close((uv_handle_t *)&s->timer, NULL);
}

static void free_each(void *arg, const char *key, void *value)
{
	free(value);
}

void lease_set_free(struct lease_set *s)
{
	if (!s)
		return;
	strmap_each(&s->map, free_each, NULL);
	strmap_free(&s->map);
	free(s->batch);
	free(s->of);
	free(s);
}
