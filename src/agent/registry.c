/* registry.c — the agent registry's agent side (registry.h): one timer
 * and two pool jobs, each one at a time and applied on the loop: the
 * heartbeat when due, and the catalog poll on a shared store (with the
 * listening connection's reconnect). They run on connections of their
 * own, so a long poll (an agent's first reads every topic and
 * partition) never holds a heartbeat up. And the change notifications of
 * a shared store, read on the loop as they arrive (uv_poll on the
 * listening connection's socket). */
#include "agent/registry.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/compaction.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/log.h"
#include "storage/batch_index.h"

struct registry {
	struct agent *a;
	uv_timer_t timer;
	uv_work_t beat_work, poll_work;
	bool beat_running;       /* the heartbeat job is on the pool */
	bool poll_running;       /* the poll job is */
	bool stopping;
	bool registered;
	bool beat_failing;       /* logged once per run of failures */
	struct meta_agent self;
	uint64_t beat_last_ms;   /* uv_now of the last heartbeat's start */
	/* clock_mono_us: when the heartbeat job was due and queued, when it
	 * began on the pool, and when the last successful one began; a gap
	 * longer than the lease is logged with where the time went. */
	int64_t beat_late_ms, beat_queued_us, beat_began_us, beat_ok_us;
	int64_t catalog_version; /* applied; -1: reload the topics */
	int64_t parts_since;     /* the poll's change mark; -1: every partition */
	/* the jobs' outputs */
	int beat_rc, poll_rc;
	struct meta_cluster_view view;
	struct meta_catalog catalog;
	uint64_t jobs_done;      /* a->jobs_done when the job started */
	bool jobs_idle;          /* no agent_job queued then */
	/* Change notifications (meta_listen_*): while listen_poll watches
	 * the socket, the catalog poll is only the fallback for a lost
	 * notice (every SL_CLUSTER_POLL_FALLBACK_MS); without it, it runs
	 * every tick and each job tries to listen again (backoff). */
	bool notices;            /* the store has them */
	uv_poll_t *listen_poll;  /* NULL: not listening */
	bool listen;             /* poll job input: (re)connect, then poll (resync) */
	int listen_rc;
	bool listen_failing;     /* logged once per run of failures */
	uint64_t listen_retry_ms, listen_backoff_ms;
	uint64_t poll_last_ms;   /* uv_now of the last poll's start */
	bool poll_now;           /* a catalog notice came: poll at once */
	bool woken;              /* a notice raised a high watermark or a log start */
};

static void on_timer(uv_timer_t *t);

/* This agent's endpoints as the registry keeps them: one per listener,
 * "NAME://host:port" joined by commas (Kafka's advertised.listeners). */
static void endpoints_format(const struct config *cfg, char *out, size_t cap)
{
	size_t len = 0;
	out[0] = 0;
	for (size_t i = 0; i < cfg->listener_count && len < cap; i++) {
		const struct listener_config *l = &cfg->listeners[i];
		len += (size_t)snprintf(out + len, cap - len, "%s%s://%s:%d", i ? "," : "",
					l->name, l->advertise_host,
					l->advertise_port);
	}
}

/* endpoints_format's text back (any agent's): false when it does not
 * parse (placement_set checks names, hosts and ports further). The port
 * follows the last ':', so an IPv6 host needs no brackets. */
static bool endpoints_parse(const char *text, struct placement_agent *pa)
{
	pa->endpoint_count = 0;
	const char *s = text;
	while (*s) {
		if (pa->endpoint_count == SL_LISTENERS_MAX)
			return false;
		size_t item = strcspn(s, ",");
		const char *sep = strstr(s, "://");
		if (!sep || sep >= s + item)
			return false;
		const char *host = sep + 3, *colon = NULL;
		for (const char *c = host; c < s + item; c++)
			if (*c == ':')
				colon = c;
		struct placement_endpoint *e = &pa->endpoints[pa->endpoint_count++];
		size_t name_len = (size_t)(sep - s), host_len = colon ? (size_t)(colon - host) : 0;
		if (!colon || name_len >= sizeof e->listener || host_len >= sizeof e->host)
			return false;
		memcpy(e->listener, s, name_len);
		e->listener[name_len] = 0;
		memcpy(e->host, host, host_len);
		e->host[host_len] = 0;
		char *end;
		long port = strtol(colon + 1, &end, 10);
		if (end != s + item || port < 0 || port > 65535)
			return false;
		e->port = (int32_t)port;
		s += item;
		if (*s == ',')
			s++;
	}
	return pa->endpoint_count > 0;
}

/* The placement view from the registry's. */
static void view_apply(struct agent *a, const struct meta_cluster_view *v)
{
	struct placement_agent *pa = calloc(v->count + 1, sizeof *pa);
	if (!pa)
		return;
	size_t n = 0;
	for (size_t i = 0; i < v->count; i++) {
		if (!endpoints_parse(v->agents[i].endpoints, &pa[n])) {
			log_warn("registry: node %" PRId32 " registered endpoints \"%s\" that do not "
				 "parse; left out", v->agents[i].node_id, v->agents[i].endpoints);
			continue;
		}
		pa[n].node_id = v->agents[i].node_id;
		snprintf(pa[n].zone, sizeof pa[n].zone, "%s", v->agents[i].zone);
		pa[n].start_ms = v->agents[i].start_ms;
		n++;
	}
	int32_t epoch = v->epoch > INT32_MAX ? INT32_MAX : (int32_t)v->epoch;
	int32_t was = a->placement.epoch;
	size_t had = a->placement.count;
	int rc = placement_set(&a->placement, pa, n, epoch);
	free(pa);
	if (rc)
		log_warn("registry: cannot use the agent set of epoch %" PRId32 " (%zu agents): %s",
			 epoch, v->count, sl_strerror(rc));
	else if (epoch != was)
		log_info("registry: %zu live agents at epoch %" PRId32 " (was %zu at %" PRId32 ")",
			 v->count, epoch, had, was);
}

/* High watermarks, LSOs and log starts other agents moved; true when
 * any rose (long polls are woken). *all: every row found its partition
 * here (a row of a topic not applied yet must be read again). */
static bool partitions_apply(struct agent *a, const struct meta_catalog *c, bool *all)
{
	bool moved = false;
	struct topic_state *t = NULL;
	for (size_t i = 0; i < c->part_count; i++) {
		const struct meta_partition *mp = &c->parts[i];
		if (!t || t->tid != mp->tid)
			t = agent_topic_by_tid(a, mp->tid);
		if (!t || mp->partition < 0 || mp->partition >= t->partition_count) {
			*all = false;
			continue;
		}
		struct partition_state *ps = &t->parts[mp->partition];
		bool changed = false; /* for fetch sessions (agent_partition_changed) */
		if (mp->high_watermark > ps->high_watermark) {
			ps->high_watermark = mp->high_watermark;
			changed = true;
		}
		/* The snapshot's LSO (the store's, raise-only here). It says
		 * nothing of aborted transactions:
		 * other agents' markers reach the aborted index through the
		 * reader's lookups (or a feed of aborted rows, later), never
		 * as a range claimed empty here. */
		if (partition_raise_stable(ps, mp->last_stable_offset))
			changed = true;
		if (changed)
			agent_partition_changed(a, t->tid, mp->partition);
		moved |= changed;
		if (partition_raise_log_start(ps, mp->log_start_offset)) {
			agent_log_start_raised(a, t, mp->partition);
			moved = true; /* it may lift the LSO; waiting fetches look again */
		}
	}
	return moved;
}

/* rows [i, j) of a commit notice, one partition's, into the batch index. */
static void index_notice(struct agent *a, const struct meta_notice *n, size_t i, size_t j)
{
	struct batch_index_row rows[64];
	while (i < j) {
		size_t k = 0;
		for (; k < 64 && i < j; k++, i++) {
			const struct meta_notice_batch *b = &n->batches[i];
			rows[k] = (struct batch_index_row){
				.base_offset = b->base_offset, .last_offset = b->last_offset,
				.byte_offset = b->byte_offset, .length = b->length,
				.record_count = b->record_count, .max_timestamp = b->max_timestamp,
			};
		}
		/* Out of memory drops the partition: fetches look it up. */
		batch_index_append(a->index, n->batches[i - 1].tid, n->batches[i - 1].partition,
				   n->object_key, n->object_size, rows, k);
	}
}

/* Another agent committed: its rows go into the batch index (a fetch of
 * them touches no database) when they are new here or continue the
 * indexed run — rows that arrive after this agent moved past them stay
 * in the store, where a lookup finds them — then the high watermarks
 * move past them. A partition not known here yet waits for the poll. */
static void commit_apply(struct registry *r, const struct meta_notice *n)
{
	struct agent *a = r->a;
	struct topic_state *t = NULL;
	for (size_t i = 0, j; i < n->n; i = j) {
		const struct meta_notice_batch *b = &n->batches[i];
		for (j = i + 1; j < n->n && n->batches[j].tid == b->tid &&
		     n->batches[j].partition == b->partition; j++)
			;
		if (!t || t->tid != b->tid)
			t = agent_topic_by_tid(a, b->tid);
		if (!t || b->partition >= t->partition_count)
			continue;
		struct partition_state *ps = &t->parts[b->partition];
		int64_t first, end;
		if (b->base_offset >= ps->high_watermark ||
		    (batch_index_range(a->index, b->tid, b->partition, &first, &end) &&
		     end == b->base_offset))
			index_notice(a, n, i, j);
		int64_t last = n->batches[j - 1].last_offset;
		if (last >= ps->high_watermark && last >= ps->log_start_offset) {
			ps->high_watermark = last + 1;
			r->woken = true;
		}
		/* The store's LSO after that commit (a notice of an older
		 * agent does not tell it: the poll brings it then; a high
		 * watermark alone cannot raise it past a transaction another
		 * agent opened). The aborted rows stay the reader's to look
		 * up: a notice claims no range of the aborted index. */
		int64_t lso = n->batches[j - 1].last_stable_offset;
		if (lso >= 0 && partition_raise_stable(ps, lso))
			r->woken = true;
		agent_partition_changed(a, t->tid, b->partition); /* fetch sessions */
	}
}

/* A trim moved a log start (this agent's own too: raising it again is a
 * no-op): what fell below it leaves the batch index at once, and waiting
 * fetches look again (the LSO may have risen with it). */
static void log_start_apply(struct registry *r, const struct meta_notice *n)
{
	struct agent *a = r->a;
	struct topic_state *t = agent_topic_by_tid(a, n->tid);
	if (!t || n->partition < 0 || n->partition >= t->partition_count)
		return;
	struct partition_state *ps = &t->parts[n->partition];
	if (partition_raise_log_start(ps, n->log_start_offset)) {
		agent_log_start_raised(a, t, n->partition);
		r->woken = true;
	}
}

static void on_notice(void *arg, const struct meta_notice *n)
{
	struct registry *r = arg;
	if (n->kind == META_NOTICE_CATALOG)
		r->poll_now = true; /* the poll reads it: one snapshot, applied as polls are */
	else if (n->kind == META_NOTICE_COMMIT)
		commit_apply(r, n);
	else if (n->kind == META_NOTICE_LOG_START)
		log_start_apply(r, n);
	else if (n->kind == META_NOTICE_REWRITTEN)
		/* Another agent cleaned it: the next fetch looks its rows (and
		 * aborted transactions) up. */
		compaction_swapped(r->a, n->tid, n->partition);
}

static void listen_closed(uv_handle_t *h)
{
	free(h);
}

static void listen_stop(struct registry *r)
{
	if (!r->listen_poll)
		return;
	uv_poll_stop(r->listen_poll);
	uv_close((uv_handle_t *)r->listen_poll, listen_closed);
	r->listen_poll = NULL;
}

static void on_listen(uv_poll_t *h, int status, int events)
{
	struct registry *r = h->data;
	(void)events;
	if (r->stopping)
		return;
	r->woken = false;
	int rc = status < 0 ? SL_EMETA : meta_listen_read(r->a->meta, on_notice, r);
	if (r->woken)
		r->a->hooks->committed(r->a);
	if (rc) {
		listen_stop(r);
		if (!r->listen_failing)
			log_warn("registry: change notifications lost (the metadata store's connection "
				 "broke): polling every %d ms until they resume",
				 SL_CLUSTER_POLL_INTERVAL_MS);
		r->listen_failing = true;
	}
	if (r->poll_now || rc)
		on_timer(&r->timer); /* a poll now, unless one runs: its done starts the next */
}

/* After meta_listen_start: watch the new socket (what arrived with the
 * LISTEN's answer is read at once: libpq holds it, the socket will not
 * show it), or retry after a backoff. */
static void listen_started(struct registry *r)
{
	struct agent *a = r->a;
	int rc = r->listen_rc;
	int fd = rc ? -1 : meta_listen_fd(a->meta);
	if (!rc && fd < 0)
		rc = SL_EMETA;
	if (!rc && !(r->listen_poll = malloc(sizeof *r->listen_poll)))
		rc = SL_ENOMEM;
	if (!rc && uv_poll_init_socket(a->loop, r->listen_poll, fd) != 0) {
		free(r->listen_poll);
		r->listen_poll = NULL;
		rc = SL_EIO;
	}
	if (rc == SL_EUNSUPPORTED) {
		r->notices = false;
		return;
	}
	if (rc) {
		r->listen_backoff_ms = r->listen_backoff_ms ? r->listen_backoff_ms * 2 : SL_CLUSTER_POLL_INTERVAL_MS;
		if (r->listen_backoff_ms > SL_CLUSTER_LISTEN_RETRY_MAX_MS)
			r->listen_backoff_ms = SL_CLUSTER_LISTEN_RETRY_MAX_MS;
		r->listen_retry_ms = uv_now(a->loop) + r->listen_backoff_ms;
		if (!r->listen_failing)
			log_warn("registry: cannot listen for change notifications (%s): polling every "
				 "%d ms meanwhile", sl_strerror(rc), SL_CLUSTER_POLL_INTERVAL_MS);
		r->listen_failing = true;
		return;
	}
	if (r->listen_failing)
		log_info("registry: change notifications resumed");
	r->listen_failing = false;
	r->listen_backoff_ms = 0;
	r->listen_poll->data = r;
	uv_poll_start(r->listen_poll, UV_READABLE, on_listen);
	on_listen(r->listen_poll, 0, UV_READABLE);
}

static void beat_work(uv_work_t *w)
{
	struct registry *r = w->data;
	r->beat_began_us = clock_mono_us();
	r->beat_rc = meta_agent_heartbeat(r->a->meta, &r->self, SL_CLUSTER_LEASE_MS, &r->view);
}

/* A heartbeat that began more than a lease after the last successful one:
 * the other agents may have dropped this one meanwhile (it joins again
 * with this beat, raising the epoch) though no call failed: the loop or
 * the thread pool was too busy to run it in time. Logged, since nothing
 * else says why the agent left the view. */
static void beat_gap_check(struct registry *r)
{
	int64_t gap_ms = (r->beat_began_us - r->beat_ok_us) / 1000;
	if (r->beat_ok_us && gap_ms > SL_CLUSTER_LEASE_MS)
		log_warn("registry: a heartbeat %" PRId64 " ms after the last (the lease is %d ms): "
			 "other agents may have dropped this one meanwhile; it was queued %" PRId64
			 " ms late and waited %" PRId64 " ms for a pool thread", gap_ms,
			 SL_CLUSTER_LEASE_MS, r->beat_late_ms,
			 (r->beat_began_us - r->beat_queued_us) / 1000);
	r->beat_ok_us = r->beat_began_us;
}

static void beat_done(uv_work_t *w, int status)
{
	struct registry *r = w->data;
	if (status != 0 || r->stopping)
		goto out_free;
	if (r->beat_rc == 0) {
		if (r->beat_failing)
			log_info("registry: heartbeats reach the metadata store again");
		r->beat_failing = false;
		beat_gap_check(r);
		view_apply(r->a, &r->view);
	} else if (!r->beat_failing) {
		r->beat_failing = true;
		if (r->beat_rc == SL_EBUSY)
			log_error("registry: node id %" PRId32 " was taken by another agent after "
				  "this one's lease ran out; this agent is not listed until it is "
				  "restarted", r->self.node_id);
		else
			log_warn("registry: heartbeat failed (%s); other agents drop this one "
				 "after %d ms without one", sl_strerror(r->beat_rc),
				 SL_CLUSTER_LEASE_MS);
	}
out_free:
	free(r->view.agents);
	memset(&r->view, 0, sizeof r->view);
	r->beat_running = false;
}

static void poll_work(uv_work_t *w)
{
	struct registry *r = w->data;
	struct meta *m = r->a->meta;
	/* First: the poll after it then covers what was committed before
	 * the LISTEN (the resync). */
	if (r->listen)
		r->listen_rc = meta_listen_start(m);
	r->poll_rc = meta_catalog_read(m, r->catalog_version, r->parts_since, &r->catalog);
}

static void poll_done(uv_work_t *w, int status)
{
	struct registry *r = w->data;
	struct agent *a = r->a;
	/* r->poll_running stays set until the results are used: a notice
	 * read meanwhile (listen_started) must not start the next poll. */
	if (status != 0 || r->stopping)
		goto out_free;
	if (r->listen)
		listen_started(r);
	if (r->poll_rc == 0) {
		/* The topics are applied only when no agent_job (a topic change
		 * of this agent) ran meanwhile: such a job's done may already
		 * have applied a change this snapshot predates, and it will
		 * apply one it follows. The next poll reads them again. */
		if (r->catalog.topics_read) {
			if (r->jobs_idle && workq_idle(&a->jobs) && a->jobs_done == r->jobs_done) {
				if (agent_catalog_replace(a, r->catalog.topics, r->catalog.topic_count) == 0)
					r->catalog_version = r->catalog.version;
			}
		}
		bool all = true;
		if (partitions_apply(a, &r->catalog, &all))
			a->hooks->committed(a);
		if (all)
			r->parts_since = r->catalog.parts_next;
	}
out_free:
	meta_catalog_free(&r->catalog);
	r->poll_running = false;
	if (r->poll_now && !r->stopping)
		on_timer(&r->timer); /* a catalog notice came during the poll */
}

static void on_timer(uv_timer_t *t)
{
	struct registry *r = t->data;
	struct agent *a = r->a;
	if (r->stopping)
		return;
	uint64_t now = uv_now(a->loop);
	if (!r->beat_running && r->registered &&
	    now - r->beat_last_ms >= SL_CLUSTER_HEARTBEAT_INTERVAL_MS) {
		r->beat_work.data = r;
		r->beat_late_ms = (int64_t)(now - r->beat_last_ms) - SL_CLUSTER_HEARTBEAT_INTERVAL_MS;
		r->beat_queued_us = clock_mono_us();
		if (uv_queue_work(a->loop, &r->beat_work, beat_work, beat_done) == 0) {
			r->beat_running = true;
			r->beat_last_ms = now;
		}
	}
	if (r->poll_running || !meta_shared(a->meta))
		return;
	r->listen = r->notices && !r->listen_poll && now >= r->listen_retry_ms;
	if (r->listen_poll && !r->listen && !r->poll_now &&
	    now - r->poll_last_ms < SL_CLUSTER_POLL_FALLBACK_MS)
		return;
	r->poll_last_ms = now;
	r->poll_now = false;
	r->jobs_done = a->jobs_done;
	r->jobs_idle = workq_idle(&a->jobs);
	r->poll_work.data = r;
	if (uv_queue_work(a->loop, &r->poll_work, poll_work, poll_done) == 0)
		r->poll_running = true;
}

static int64_t incarnation_new(void)
{
	uint64_t x;
	if (getrandom(&x, sizeof x, 0) != (ssize_t)sizeof x)
		x = (uint64_t)clock_wall_ms() << 20 ^ (uint64_t)getpid();
	return (int64_t)(x >> 1);
}

int registry_start(struct agent *a)
{
	struct registry *r = calloc(1, sizeof *r);
	if (!r)
		return SL_ENOMEM;
	a->registry = r;
	r->a = a;
	r->catalog_version = -1;
	r->parts_since = -1;
	r->self.node_id = a->cfg.node_id;
	endpoints_format(&a->cfg, r->self.endpoints, sizeof r->self.endpoints);
	snprintf(r->self.zone, sizeof r->self.zone, "%s", a->cfg.zone);
	r->self.incarnation = incarnation_new();
	uv_timer_init(a->loop, &r->timer);
	r->timer.data = r;

	struct meta_cluster_view view;
	/* A live holder of the asked id: wait out its lease. The store not
	 * answering in time (restarting, loaded): try again for a while, as
	 * a heartbeat would, rather than fail the start. */
	int64_t start = clock_mono_us() / 1000;
	int64_t busy_end = start + SL_CLUSTER_LEASE_MS + SL_CLUSTER_HEARTBEAT_INTERVAL_MS;
	int64_t meta_end = start + SL_CLUSTER_REGISTER_RETRY_MS;
	bool waited = false, retried = false;
	int rc;
	for (;;) {
		rc = meta_agent_register(a->meta, &r->self, SL_CLUSTER_LEASE_MS, &view);
		int64_t now = clock_mono_us() / 1000;
		if (rc == SL_EBUSY && now < busy_end) {
			if (!waited)
				log_info("registry: node id %" PRId32 " is held by an agent that heartbeat "
					 "within %d ms; waiting for its lease to run out", r->self.node_id,
					 SL_CLUSTER_LEASE_MS);
			waited = true;
		} else if (rc == SL_EMETA && now < meta_end) {
			if (!retried)
				log_warn("registry: cannot register this agent yet (%s): trying again "
					 "for up to %d s", sl_strerror(rc),
					 SL_CLUSTER_REGISTER_RETRY_MS / 1000);
			retried = true;
		} else {
			break;
		}
		usleep(250 * 1000);
	}
	if (rc == SL_EUNSUPPORTED)
		return 0; /* a store without a registry: the agent alone */
	if (rc == SL_EBUSY) {
		log_error("registry: node id %" PRId32 " is in use by a live agent; give this one "
			  "another --node-id, or none to take an unused one", r->self.node_id);
		return rc;
	}
	if (rc) {
		log_error("registry: cannot register this agent: %s", sl_strerror(rc));
		return rc;
	}
	r->registered = true;
	a->cfg.node_id = r->self.node_id;
	r->beat_last_ms = uv_now(a->loop);
	r->beat_ok_us = clock_mono_us(); /* about when it registered */
	log_info("registry: registered as node %" PRId32 " (%s%s%s)", r->self.node_id,
		 r->self.endpoints, r->self.zone[0] ? ", zone " : "", r->self.zone);
	view_apply(a, &view);
	free(view.agents);
	/* Listening from the start; the first tick's poll reads what was
	 * committed between loading the catalog and the LISTEN. */
	r->notices = meta_shared(a->meta);
	if (r->notices) {
		r->listen_rc = meta_listen_start(a->meta);
		listen_started(r);
	}
	uv_timer_start(&r->timer, on_timer, SL_CLUSTER_POLL_INTERVAL_MS, SL_CLUSTER_POLL_INTERVAL_MS);
	return 0;
}

const struct meta_agent *registry_self(struct agent *a)
{
	struct registry *r = a->registry;
	return r && r->registered && meta_shared(a->meta) ? &r->self : NULL;
}

const int64_t *registry_beat_ok(struct agent *a)
{
	struct registry *r = a->registry;
	return r ? &r->beat_ok_us : NULL;
}

void registry_stop(struct agent *a)
{
	struct registry *r = a->registry;
	if (!r || r->stopping)
		return;
	r->stopping = true;
	listen_stop(r);
	uv_timer_stop(&r->timer);
	uv_close((uv_handle_t *)&r->timer, NULL);
}

void registry_free(struct agent *a)
{
	struct registry *r = a->registry;
	if (!r)
		return;
	if (r->registered) {
		int rc = meta_agent_deregister(a->meta, &r->self);
		if (rc)
			log_warn("registry: cannot deregister (%s); other agents drop this one after "
				 "%d ms", sl_strerror(rc), SL_CLUSTER_LEASE_MS);
		else
			log_info("registry: node %" PRId32 " deregistered", r->self.node_id);
	}
	free(r);
	a->registry = NULL;
}
