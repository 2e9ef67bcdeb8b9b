/* groups.c — the consumer group APIs: FindCoordinator, JoinGroup,
 * SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, ListGroups,
 * DescribeGroups, DeleteGroups, OffsetDelete; and the group service that
 * drives the coordinator (src/group) from the loop: its 100 ms timer, the
 * effects it returns, the OffsetCommit write queue and the offsets
 * retention sweep.
 *
 * Every agent coordinates every group (one agent, or a shared metadata
 * store: membership is in memory, offsets in the store). JoinGroup and
 * SyncGroup wait inside the coordinator until it answers them through an
 * effect. OffsetCommit is answered once its offsets are durable: commits
 * queue while one store transaction runs on a pool thread, then all of
 * them go in the next transaction (group commit, one fsync). Deletes of
 * offsets (DeleteGroups, OffsetDelete, retention) go through the same
 * queue, in order with the commits; the loop thread only reads the store
 * (OffsetFetch), and knows which groups have offsets from memory. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/agent.h"
#include "api/api.h"
#include "api/handlers.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/grow.h"
#include "base/log.h"
#include "base/strmap.h"
#include "group/coordinator.h"
#include "kmsg.h"
#include "proto/kerr.h"

#ifndef KERR_GROUP_SUBSCRIBED_TO_TOPIC
#define KERR_GROUP_SUBSCRIBED_TO_TOPIC 86
#endif

#define GROUPS_TICK_MS 100
/* The retention sweep runs this often. */
#define GROUPS_SWEEP_MS (60 * 1000)
/* An in-memory Empty group with no committed offsets is forgotten after
 * this long (Kafka drops such groups at its next offsets cleanup). */
#define GROUPS_EMPTY_FORGET_MS (10 * 60 * 1000)
/* Offset rows in one store transaction (more wait for the next one). */
#define GROUPS_COMMIT_BATCH_ROWS 100000
/* ACL operations a described group reports when asked (no ACLs here):
 * READ (3), DELETE (6), DESCRIBE (8). */
#define GROUP_AUTHORIZED_OPERATIONS ((1 << 3) | (1 << 6) | (1 << 8))

/* A JoinGroup or SyncGroup waiting inside the coordinator: the opaque
 * pointer the coordinator answers through (in the request's arena, so it
 * lives until the request is answered). Every waiter is on the service's
 * list until its effect arrives, so one whose answer was lost to
 * out-of-memory can be found and failed. */
struct waiter {
	struct waiter *prev, *next;
	struct request *req;
	bool pending;               /* scratch for the out-of-memory sweep */
};

/* A write to the offsets store: an OffsetCommit's rows, or a delete of a
 * group's offsets (DeleteGroups, OffsetDelete, retention). Ops run on a
 * pool thread one batch at a time, in queue order: a delete queued after
 * a commit of the same group removes what that commit stored, and a
 * commit queued after a delete is kept. Consecutive commits share one
 * transaction (group commit, one fsync); a delete runs alone. The loop
 * thread never writes to the store. */
enum store_op_kind { OP_COMMIT, OP_DELETE };

struct store_op {
	struct store_op *next;
	enum store_op_kind kind;
	const char *group_id;
	/* OP_COMMIT */
	struct meta_offset_commit *rows;
	size_t row_count;
	/* OP_DELETE: tids NULL deletes every offset of the group */
	const int64_t *tids;
	const int32_t *partitions;
	size_t n;
	/* results */
	int rc;
	int64_t deleted;
	/* On the loop once the op is done (or failed before it ran). */
	void (*done)(struct group_svc *s, struct store_op *op);
};

/* What this agent knows of a group's committed offsets without asking
 * the store: loaded once at start (meta_group_list), then kept by the
 * ops above. ListGroups, DescribeGroups, DeleteGroups, OffsetDelete and
 * the retention sweep read it instead of scanning the store on the loop.
 * (With a metadata store shared by several agents, groups that commit
 * only through other agents appear here after a restart.) */
struct stored_group {
	int64_t last_commit_ms;     /* newest commit timestamp; -1: none stored */
	int32_t ops;                /* store ops queued or running for it */
	bool expiring;              /* a retention delete is queued */
};

struct commit_job {
	struct store_op op;         /* first */
	struct request *req;
	struct kmsg_offset_commit_resp resp;
};

struct group_svc {
	struct agent *a;
	struct coordinator *coord;
	struct coord_effects effects;
	struct waiter waiters;      /* list head */
	uv_timer_t timer;
	int64_t next_sweep_ms;
	struct strmap stored;       /* group id -> struct stored_group */
	/* the store op queue */
	struct store_op *queue_head, *queue_tail;
	struct store_op *batch;     /* in the store now */
	struct meta_offset_commit *batch_rows;
	size_t batch_row_count;
	uv_work_t work;
	bool stopped;
	/* counters for logs and the bench */
	uint64_t commit_transactions;
	uint64_t commit_requests;
};

static int64_t now_ms(void)
{
	return clock_mono_us() / 1000;
}

static kstr kstr_or_empty(const char *s)
{
	return s ? KSTR(s) : KSTR("");
}

static kstr kstr_or_null(const char *s)
{
	return s ? KSTR(s) : KSTR_NULL;
}

/* ---- performing the coordinator's effects ---- */

static void respond_join(struct request *req, const struct coord_effect *f)
{
	struct kmsg_join_group_resp r;
	kmsg_join_group_resp_init(&r);
	r.error_code = f->error;
	r.generation_id = f->generation_id;
	int16_t v = req->api_version;
	/* v7+: nullable type and name; before, empty strings. */
	r.protocol_type = v >= 7 ? kstr_or_null(f->protocol_type) : kstr_or_empty(f->protocol_type);
	r.protocol_name = v >= 7 ? kstr_or_null(f->protocol_name) : kstr_or_empty(f->protocol_name);
	r.leader = kstr_or_empty(f->leader_id);
	r.member_id = kstr_or_empty(f->member_id);
	r.skip_assignment = f->skip_assignment;
	if (f->member_count > 0) {
		if (!REQ_ARRAY(req, f->member_count, r.members)) {
			request_fail_close(req);
			return;
		}
		r.members_count = f->member_count;
		for (int32_t i = 0; i < f->member_count; i++) {
			struct kmsg_join_group_resp_join_group_response_member *m = &r.members[i];
			kmsg_join_group_resp_join_group_response_member_init(m);
			m->member_id = KSTR(f->members[i].member_id);
			m->group_instance_id = kstr_or_null(f->members[i].group_instance_id);
			m->metadata = (kbytes){ f->members[i].metadata, f->members[i].metadata_len };
		}
	}
	kmsg_join_group_resp_encode(&req->resp, v, &r);
	request_respond(req);
}

static void respond_sync(struct request *req, const struct coord_effect *f)
{
	struct kmsg_sync_group_resp r;
	kmsg_sync_group_resp_init(&r);
	r.error_code = f->error;
	r.protocol_type = kstr_or_null(f->protocol_type);
	r.protocol_name = kstr_or_null(f->protocol_name);
	r.assignment = f->assignment ? (kbytes){ f->assignment, f->assignment_len }
				     : (kbytes){ (const uint8_t *)"", 0 };
	kmsg_sync_group_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}

static void waiter_unlink(struct waiter *w)
{
	w->prev->next = w->next;
	w->next->prev = w->prev;
	w->prev = w->next = w;
}

/* A waiter for req, on the list; NULL (the connection is then closed)
 * when the arena is full. */
static struct waiter *waiter_new(struct group_svc *s, struct request *req)
{
	struct waiter *w;
	if (!REQ_ARRAY(req, 1, w)) {
		request_fail_close(req);
		return NULL;
	}
	w->req = req;
	w->next = &s->waiters;
	w->prev = s->waiters.prev;
	w->prev->next = w;
	s->waiters.prev = w;
	return w;
}

static void mark_pending(void *arg, void *req)
{
	((struct waiter *)req)->pending = true;
}

static void perform_effects(struct group_svc *s)
{
	struct coord_effects *e = &s->effects;
	bool oom = e->oom;
	size_t answered = e->n;
	for (size_t i = 0; i < e->n; i++) {
		struct coord_effect *f = &e->v[i];
		struct waiter *w = f->req;
		waiter_unlink(w);
		/* After out-of-memory an answer may be incomplete: close the
		 * connection rather than send it. */
		if (oom)
			request_fail_close(w->req);
		else if (f->kind == COORD_EFFECT_JOIN)
			respond_join(w->req, f);
		else
			respond_sync(w->req, f);
	}
	coord_effects_reset(e);
	if (!oom)
		return;
	/* A request that is neither answered nor still waiting inside the
	 * coordinator lost its answer: fail it, so none hangs forever. */
	size_t lost = 0;
	for (struct waiter *w = s->waiters.next; w != &s->waiters; w = w->next)
		w->pending = false;
	coord_requests_each(s->coord, mark_pending, NULL);
	for (struct waiter *w = s->waiters.next; w != &s->waiters;) {
		struct waiter *next = w->next;
		if (!w->pending) {
			waiter_unlink(w);
			request_fail_close(w->req);
			lost++;
		}
		w = next;
	}
	log_error("group coordinator: out of memory recording responses; %zu connections "
		  "closed without an answer", answered + lost);
}

/* ---- what is stored, per group ---- */

static struct stored_group *stored_get(struct group_svc *s, const char *id)
{
	return strmap_get(&s->stored, id);
}

/* The entry for id, created (with nothing stored) if needed; NULL on oom. */
static struct stored_group *stored_ref(struct group_svc *s, const char *id)
{
	struct stored_group *g = strmap_get(&s->stored, id);
	if (g)
		return g;
	g = calloc(1, sizeof *g);
	if (!g)
		return NULL;
	g->last_commit_ms = -1;
	if (strmap_put(&s->stored, id, g) != 0) {
		free(g);
		return NULL;
	}
	return g;
}

/* Drop the entry once nothing is stored and no op is on its way. */
static void stored_maybe_drop(struct group_svc *s, const char *id)
{
	struct stored_group *g = strmap_get(&s->stored, id);
	if (g && g->last_commit_ms < 0 && g->ops == 0 && !g->expiring)
		free(strmap_del(&s->stored, id));
}

/* Does the store (as far as this agent knows) hold offsets of id? */
static bool stored_has(struct group_svc *s, const char *id)
{
	struct stored_group *g = stored_get(s, id);
	return g && g->last_commit_ms >= 0;
}

/* ---- the store op queue ---- */

static void store_batch_start(struct group_svc *s);

static void store_work(uv_work_t *w)
{
	struct group_svc *s = w->data;
	struct store_op *op = s->batch;
	if (op->kind == OP_COMMIT) {
		int rc = meta_offset_commit(s->a->meta, s->batch_rows, s->batch_row_count);
		for (; op; op = op->next)
			op->rc = rc;
		return;
	}
	op->rc = meta_group_delete_offsets(s->a->meta, op->group_id, op->tids, op->partitions,
					   op->n, &op->deleted);
}

/* Keep the per-group knowledge, then hand the op to its owner. */
static void store_op_finish(struct group_svc *s, struct store_op *op)
{
	struct stored_group *g = stored_get(s, op->group_id);
	if (g) {
		g->ops--;
		if (op->kind == OP_COMMIT && op->rc == 0) {
			for (size_t i = 0; i < op->row_count; i++)
				if (op->rows[i].commit_timestamp_ms > g->last_commit_ms)
					g->last_commit_ms = op->rows[i].commit_timestamp_ms;
			/* a commit of a timestamp before 0 still stored a row */
			if (op->row_count && g->last_commit_ms < 0)
				g->last_commit_ms = 0;
		} else if (op->kind == OP_DELETE && op->rc == 0) {
			struct meta_committed_offset *o = NULL;
			size_t n = 0;
			/* Partial deletes are rare (OffsetDelete): one keyed read
			 * tells whether any offset is left. */
			if (!op->tids || (meta_offset_fetch(s->a->meta, op->group_id, &o, &n) == 0 &&
					  n == 0))
				g->last_commit_ms = -1;
			meta_committed_offsets_free(o, n);
		}
	}
	/* op (and group_id) may be freed by done */
	char id[COORD_GROUP_ID_BYTES_MAX + 1];
	snprintf(id, sizeof id, "%s", op->group_id);
	op->done(s, op);
	stored_maybe_drop(s, id);
}

static void store_after(uv_work_t *w, int status)
{
	struct group_svc *s = w->data;
	struct store_op *op = s->batch;
	s->batch = NULL;
	free(s->batch_rows);
	s->batch_rows = NULL;
	if (op && op->kind == OP_COMMIT) {
		s->commit_transactions++;
		if (status || op->rc)
			log_error("group offsets: commit of %zu rows failed: %s", s->batch_row_count,
				  sl_strerror(status ? SL_EIO : op->rc));
	}
	while (op) {
		struct store_op *next = op->next;
		if (status)
			op->rc = SL_EIO;
		store_op_finish(s, op);
		op = next;
	}
	store_batch_start(s);
}

static void store_batch_start(struct group_svc *s)
{
	if (s->batch || !s->queue_head)
		return;
	/* A delete alone; or queued commits up to the row bound (at least one). */
	size_t rows = 0;
	struct store_op *last = s->queue_head, *j = s->queue_head;
	if (j->kind == OP_COMMIT) {
		while (j && j->kind == OP_COMMIT &&
		       (rows == 0 || rows + j->row_count <= GROUPS_COMMIT_BATCH_ROWS)) {
			rows += j->row_count;
			last = j;
			j = j->next;
		}
	}
	struct store_op *first = s->queue_head;
	s->queue_head = last->next;
	if (!s->queue_head)
		s->queue_tail = NULL;
	last->next = NULL;
	s->batch_rows = NULL;
	s->batch_row_count = rows;
	if (first->kind == OP_COMMIT) {
		struct meta_offset_commit *all = malloc(sizeof *all * (rows ? rows : 1));
		if (!all) {
			/* Answer them with an error rather than hold them. */
			s->batch = first;
			for (j = first; j; j = j->next)
				j->rc = SL_ENOMEM;
			store_after(&s->work, 0);
			return;
		}
		size_t k = 0;
		for (j = first; j; j = j->next) {
			memcpy(&all[k], j->rows, sizeof *all * j->row_count);
			k += j->row_count;
		}
		s->batch_rows = all;
	}
	s->batch = first;
	s->work.data = s;
	if (uv_queue_work(s->a->loop, &s->work, store_work, store_after) != 0)
		store_after(&s->work, UV_EINVAL);
}

/* Queue op (its group_id, kind and fields set); done is called later,
 * or at once when the group's entry cannot be made (rc SL_ENOMEM). */
static void store_enqueue(struct group_svc *s, struct store_op *op)
{
	struct stored_group *g = stored_ref(s, op->group_id);
	if (!g) {
		op->rc = SL_ENOMEM;
		op->done(s, op);
		return;
	}
	g->ops++;
	op->next = NULL;
	op->rc = 0;
	op->deleted = 0;
	if (s->queue_tail)
		s->queue_tail->next = op;
	else
		s->queue_head = op;
	s->queue_tail = op;
	store_batch_start(s);
}

/* ---- the timer: coordinator deadlines, retention ---- */

struct forget_arg {
	struct group_svc *s;
	int64_t now;
	char **ids;
	size_t count, cap;
};

static void collect_forgettable(void *arg, const struct coord_group *g)
{
	struct forget_arg *f = arg;
	if (g->state != COORD_EMPTY || g->member_count || g->pending_count ||
	    f->now - g->state_since_ms < GROUPS_EMPTY_FORGET_MS ||
	    stored_get(f->s, g->group_id))
		return;
	if (array_grow(&f->ids, &f->cap, f->count, sizeof *f->ids, 16) != 0)
		return;
	f->ids[f->count] = strdup(g->group_id);
	if (f->ids[f->count])
		f->count++;
}

struct expire_arg {
	struct group_svc *s;
	int64_t now, wall, retention_ms;
	struct forget_arg *list;
};

static void collect_expired(void *arg, const char *id, void *value)
{
	struct expire_arg *x = arg;
	struct stored_group *g = value;
	if (g->last_commit_ms < 0 || g->ops > 0 || g->expiring ||
	    g->last_commit_ms + x->retention_ms > x->wall)
		return;
	const struct coord_group *cg = coord_group_find(x->s->coord, KSTR(id));
	if (cg && (cg->state != COORD_EMPTY || x->now - cg->state_since_ms < x->retention_ms))
		return;
	struct forget_arg *l = x->list;
	if (array_grow(&l->ids, &l->cap, l->count, sizeof *l->ids, 16) != 0)
		return;
	l->ids[l->count] = strdup(id);
	if (l->ids[l->count])
		l->count++;
}

static void expire_done(struct group_svc *s, struct store_op *op)
{
	struct stored_group *g = stored_get(s, op->group_id);
	if (g)
		g->expiring = false;
	if (op->rc == 0) {
		log_info("group %s: %" PRId64 " committed offsets expired", op->group_id,
			 op->deleted);
		coord_group_delete(s->coord, KSTR(op->group_id));
	}
	free((char *)op->group_id);
	free(op);
}

/* offsets.retention.minutes: the offsets of a group that has been empty
 * (or unknown to this agent) and uncommitted for that long are deleted,
 * through the store op queue. Reads only memory on the loop. */
static void retention_sweep(struct group_svc *s, int64_t now)
{
	struct agent *a = s->a;
	struct forget_arg expired = { s, now, NULL, 0, 0 };
	struct expire_arg x = { s, now, clock_wall_ms(),
				(int64_t)a->cfg.offsets_retention_minutes * 60 * 1000, &expired };
	strmap_each(&s->stored, collect_expired, &x);
	for (size_t i = 0; i < expired.count; i++) {
		struct store_op *op = calloc(1, sizeof *op);
		if (!op) {
			free(expired.ids[i]);
			continue;
		}
		op->kind = OP_DELETE;
		op->group_id = expired.ids[i]; /* the op owns it now */
		op->done = expire_done;
		struct stored_group *g = stored_get(s, op->group_id);
		if (g)
			g->expiring = true;
		store_enqueue(s, op);
	}
	free(expired.ids);
	struct forget_arg f = { s, now, NULL, 0, 0 };
	coord_groups_each(s->coord, collect_forgettable, &f);
	for (size_t i = 0; i < f.count; i++) {
		coord_group_delete(s->coord, KSTR(f.ids[i]));
		free(f.ids[i]);
	}
	free(f.ids);
}

static void on_timer(uv_timer_t *t)
{
	struct group_svc *s = t->data;
	int64_t now = now_ms();
	coord_tick(s->coord, now, &s->effects);
	perform_effects(s);
	if (now >= s->next_sweep_ms) {
		s->next_sweep_ms = now + GROUPS_SWEEP_MS;
		retention_sweep(s, now);
	}
}

/* The groups with stored offsets, once, at start (a GROUP BY scan). */
static void stored_load(struct group_svc *s)
{
	struct meta_group_summary *g = NULL;
	size_t n = 0;
	int rc = meta_group_list(s->a->meta, &g, &n);
	if (rc) {
		log_error("groups: listing stored group offsets failed: %s", sl_strerror(rc));
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct stored_group *e = stored_ref(s, g[i].group_id);
		if (e)
			e->last_commit_ms = g[i].last_commit_ms >= 0 ? g[i].last_commit_ms : 0;
	}
	meta_group_summaries_free(g, n);
}

int groups_start(struct agent *a)
{
	struct group_svc *s = calloc(1, sizeof *s);
	if (!s)
		return SL_ENOMEM;
	s->a = a;
	struct coord_config cc;
	coord_config_default(&cc);
	cc.initial_rebalance_delay_ms = a->cfg.group_initial_rebalance_delay_ms;
	cc.id_seed = (uint64_t)clock_wall_ms() * 6364136223846793005ULL ^ (uint64_t)clock_mono_us() ^
		     ((uint64_t)(uintptr_t)s << 16);
	int rc = coord_new(&cc, &s->coord);
	if (rc) {
		free(s);
		return rc;
	}
	coord_effects_init(&s->effects);
	s->waiters.next = s->waiters.prev = &s->waiters;
	strmap_init(&s->stored);
	stored_load(s);
	uv_timer_init(a->loop, &s->timer);
	s->timer.data = s;
	s->next_sweep_ms = now_ms() + GROUPS_SWEEP_MS;
	uv_timer_start(&s->timer, on_timer, GROUPS_TICK_MS, GROUPS_TICK_MS);
	a->groups = s;
	return 0;
}

void groups_shutdown(struct agent *a)
{
	struct group_svc *s = a->groups;
	if (!s || s->stopped)
		return;
	s->stopped = true;
	coord_shutdown(s->coord, &s->effects);
	perform_effects(s);
	uv_timer_stop(&s->timer);
	uv_close((uv_handle_t *)&s->timer, NULL);
	log_info("groups: %" PRIu64 " offset commit requests in %" PRIu64 " store transactions",
		 s->commit_requests, s->commit_transactions);
}

static void free_stored(void *arg, const char *key, void *value)
{
	free(value);
}

void groups_free(struct agent *a)
{
	struct group_svc *s = a->groups;
	if (!s)
		return;
	coord_effects_free(&s->effects);
	coord_free(s->coord);
	strmap_each(&s->stored, free_stored, NULL);
	strmap_free(&s->stored);
	free(s);
	a->groups = NULL;
}

/* A coordinator is only there while the agent runs. */
static struct group_svc *svc(struct agent *a)
{
	return a->groups && !a->groups->stopped ? a->groups : NULL;
}

/* ---- FindCoordinator ---- */

static int16_t coordinator_for(int8_t key_type, kstr *message)
{
	switch (key_type) {
	case 0:
		*message = KSTR_NULL;
		return KERR_NONE;
	case 1:
		*message = KSTR("transactions are not supported yet");
		return KERR_COORDINATOR_NOT_AVAILABLE;
	default:
		*message = KSTR("unknown key type");
		return KERR_INVALID_REQUEST;
	}
}

void handle_find_coordinator(struct agent *a, struct request *req, const struct kmsg_find_coordinator_req *m)
{
	struct kmsg_find_coordinator_resp r;
	kmsg_find_coordinator_resp_init(&r);
	if (req->api_version < 4) {
		kstr msg;
		r.error_code = coordinator_for(m->key_type, &msg);
		r.error_message = msg;
		r.node_id = r.error_code ? -1 : a->cfg.node_id;
		r.host = r.error_code ? KSTR("") : KSTR(a->cfg.advertise_host);
		r.port = r.error_code ? -1 : a->cfg.advertise_port;
	} else {
		int32_t n = m->coordinator_keys_count > 0 ? m->coordinator_keys_count : 0;
		if (!REQ_ARRAY(req, n, r.coordinators)) {
			request_fail_close(req);
			return;
		}
		r.coordinators_count = n;
		for (int32_t i = 0; i < n; i++) {
			struct kmsg_find_coordinator_resp_coordinator *c = &r.coordinators[i];
			kmsg_find_coordinator_resp_coordinator_init(c);
			kstr msg;
			c->key = m->coordinator_keys[i];
			c->error_code = coordinator_for(m->key_type, &msg);
			c->error_message = msg;
			c->node_id = c->error_code ? -1 : a->cfg.node_id;
			c->host = c->error_code ? KSTR("") : KSTR(a->cfg.advertise_host);
			c->port = c->error_code ? -1 : a->cfg.advertise_port;
		}
	}
	kmsg_find_coordinator_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}

/* ---- JoinGroup, SyncGroup, Heartbeat, LeaveGroup ---- */

/* Kafka's client host: "/" and the peer's address without the port. */
static kstr client_host(struct request *req)
{
	const char *peer = request_peer(req);
	const char *colon = strrchr(peer, ':');
	size_t n = colon ? (size_t)(colon - peer) : strlen(peer);
	char *p = arena_alloc(&req->arena, n + 2);
	if (!p)
		return KSTR("");
	p[0] = '/';
	memcpy(p + 1, peer, n);
	p[n + 1] = 0;
	return (kstr){ p, (int32_t)(n + 1) };
}

static void join_answer_now(struct request *req, int16_t error)
{
	struct coord_effect f = { .req = req, .kind = COORD_EFFECT_JOIN, .error = error,
				  .generation_id = -1 };
	respond_join(req, &f);
}

void handle_join_group(struct agent *a, struct request *req, const struct kmsg_join_group_req *m)
{
	struct group_svc *s = svc(a);
	if (!s) {
		join_answer_now(req, KERR_NOT_COORDINATOR);
		return;
	}
	struct coord_join_protocol *p = NULL;
	int32_t n = m->protocols_count > 0 ? m->protocols_count : 0;
	if (n > COORD_PROTOCOLS_MAX) {
		join_answer_now(req, KERR_INVALID_REQUEST);
		return;
	}
	if (!REQ_ARRAY(req, n, p)) {
		request_fail_close(req);
		return;
	}
	for (int32_t i = 0; i < n; i++) {
		p[i].name = m->protocols[i].name;
		p[i].metadata = m->protocols[i].metadata;
	}
	struct coord_join_args args = {
		.group_id = m->group_id,
		.member_id = m->member_id,
		.group_instance_id = m->group_instance_id,
		.protocol_type = m->protocol_type,
		.client_id = req->client_id,
		.client_host = client_host(req),
		.session_timeout_ms = m->session_timeout_ms,
		.rebalance_timeout_ms = m->rebalance_timeout_ms,
		.api_version = req->api_version,
		.protocol_count = n,
		.protocols = p,
	};
	struct waiter *w = waiter_new(s, req);
	if (!w)
		return;
	coord_join(s->coord, now_ms(), &args, w, &s->effects);
	perform_effects(s);
}

void handle_sync_group(struct agent *a, struct request *req, const struct kmsg_sync_group_req *m)
{
	struct group_svc *s = svc(a);
	if (!s) {
		struct coord_effect f = { .req = req, .kind = COORD_EFFECT_SYNC,
					  .error = KERR_NOT_COORDINATOR };
		respond_sync(req, &f);
		return;
	}
	struct coord_sync_assignment *as = NULL;
	int32_t n = m->assignments_count > 0 ? m->assignments_count : 0;
	if (!REQ_ARRAY(req, n, as)) {
		request_fail_close(req);
		return;
	}
	for (int32_t i = 0; i < n; i++) {
		as[i].member_id = m->assignments[i].member_id;
		as[i].assignment = m->assignments[i].assignment;
	}
	struct coord_sync_args args = {
		.group_id = m->group_id,
		.generation_id = m->generation_id,
		.member_id = m->member_id,
		.group_instance_id = m->group_instance_id,
		.protocol_type = req->api_version >= 5 ? m->protocol_type : KSTR_NULL,
		.protocol_name = req->api_version >= 5 ? m->protocol_name : KSTR_NULL,
		.assignment_count = n,
		.assignments = as,
	};
	struct waiter *w = waiter_new(s, req);
	if (!w)
		return;
	coord_sync(s->coord, now_ms(), &args, w, &s->effects);
	perform_effects(s);
}

void handle_heartbeat(struct agent *a, struct request *req, const struct kmsg_heartbeat_req *m)
{
	struct group_svc *s = svc(a);
	struct kmsg_heartbeat_resp r;
	kmsg_heartbeat_resp_init(&r);
	r.error_code = s ? coord_heartbeat(s->coord, now_ms(), m->group_id, m->generation_id,
					   m->member_id, m->group_instance_id)
			 : KERR_NOT_COORDINATOR;
	kmsg_heartbeat_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}

void handle_leave_group(struct agent *a, struct request *req, const struct kmsg_leave_group_req *m)
{
	struct group_svc *s = svc(a);
	struct kmsg_leave_group_resp r;
	kmsg_leave_group_resp_init(&r);
	if (!s) {
		r.error_code = KERR_NOT_COORDINATOR;
	} else if (req->api_version < 3) {
		bool found;
		r.error_code = coord_leave(s->coord, now_ms(), m->group_id, m->member_id, KSTR_NULL,
					   &found, &s->effects);
	} else {
		int32_t n = m->members_count > 0 ? m->members_count : 0;
		if (!REQ_ARRAY(req, n, r.members)) {
			request_fail_close(req);
			return;
		}
		r.members_count = n;
		for (int32_t i = 0; i < n; i++) {
			struct kmsg_leave_group_resp_member_response *mr = &r.members[i];
			kmsg_leave_group_resp_member_response_init(mr);
			mr->member_id = m->members[i].member_id;
			mr->group_instance_id = m->members[i].group_instance_id;
			bool found;
			mr->error_code = coord_leave(s->coord, now_ms(), m->group_id,
						     m->members[i].member_id,
						     m->members[i].group_instance_id, &found,
						     &s->effects);
			if (mr->error_code == KERR_COORDINATOR_NOT_AVAILABLE)
				r.error_code = mr->error_code;
		}
	}
	kmsg_leave_group_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
	if (s)
		perform_effects(s);
}

/* ---- OffsetCommit ---- */

static bool has_nul(kstr s)
{
	return s.len > 0 && memchr(s.ptr, 0, (size_t)s.len) != NULL;
}

static void commit_respond(struct commit_job *j, int rc)
{
	if (rc) {
		/* Nothing of the transaction was stored. */
		for (int32_t t = 0; t < j->resp.topics_count; t++)
			for (int32_t p = 0; p < j->resp.topics[t].partitions_count; p++) {
				int16_t *err = &j->resp.topics[t].partitions[p].error_code;
				if (*err == KERR_NONE)
					*err = KERR_COORDINATOR_NOT_AVAILABLE;
			}
	}
	kmsg_offset_commit_resp_encode(&j->req->resp, j->req->api_version, &j->resp);
	request_respond(j->req);
}

static void commit_done(struct group_svc *s, struct store_op *op)
{
	commit_respond((struct commit_job *)op, op->rc);
}

void handle_offset_commit(struct agent *a, struct request *req, const struct kmsg_offset_commit_req *m)
{
	struct group_svc *s = svc(a);
	struct commit_job *j;
	if (!REQ_ARRAY(req, 1, j)) {
		request_fail_close(req);
		return;
	}
	j->req = req;
	kmsg_offset_commit_resp_init(&j->resp);
	int16_t check = !s ? KERR_NOT_COORDINATOR
			   : coord_commit_check(s->coord, now_ms(), m->group_id,
						m->generation_id_or_member_epoch, m->member_id,
						m->group_instance_id, req->api_version);
	char *group = api_cstr_dup(req, m->group_id);
	size_t total = 0;
	int32_t nt = m->topics_count > 0 ? m->topics_count : 0;
	for (int32_t t = 0; t < nt; t++)
		total += m->topics[t].partitions_count > 0 ? (size_t)m->topics[t].partitions_count : 0;
	if (!group || !REQ_ARRAY(req, nt, j->resp.topics) || !REQ_ARRAY(req, total, j->op.rows)) {
		request_fail_close(req);
		return;
	}
	j->resp.topics_count = nt;
	int64_t wall = clock_wall_ms();
	for (int32_t t = 0; t < nt; t++) {
		struct kmsg_offset_commit_req_offset_commit_request_topic *qt = &m->topics[t];
		struct kmsg_offset_commit_resp_offset_commit_response_topic *rt = &j->resp.topics[t];
		kmsg_offset_commit_resp_offset_commit_response_topic_init(rt);
		rt->name = qt->name;
		int32_t np = qt->partitions_count > 0 ? qt->partitions_count : 0;
		if (!REQ_ARRAY(req, np, rt->partitions)) {
			request_fail_close(req);
			return;
		}
		rt->partitions_count = np;
		struct topic_state *ts = check ? NULL : agent_topic(a, qt->name);
		for (int32_t p = 0; p < np; p++) {
			struct kmsg_offset_commit_req_offset_commit_request_partition *qp = &qt->partitions[p];
			struct kmsg_offset_commit_resp_offset_commit_response_partition *rp = &rt->partitions[p];
			kmsg_offset_commit_resp_offset_commit_response_partition_init(rp);
			rp->partition_index = qp->partition_index;
			if (check) {
				rp->error_code = check;
				continue;
			}
			if (!ts || qp->partition_index < 0 || qp->partition_index >= ts->partition_count) {
				rp->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			if (qp->committed_metadata.len > META_OFFSET_METADATA_BYTES_MAX) {
				rp->error_code = KERR_OFFSET_METADATA_TOO_LARGE;
				continue;
			}
			if (has_nul(qp->committed_metadata)) {
				rp->error_code = KERR_INVALID_REQUEST;
				continue;
			}
			struct meta_offset_commit *row = &j->op.rows[j->op.row_count++];
			row->group_id = group;
			row->tid = ts->tid;
			row->partition = qp->partition_index;
			row->committed_offset = qp->committed_offset;
			row->leader_epoch = qp->committed_leader_epoch;
			row->metadata = api_cstr_dup(req, qp->committed_metadata);
			/* v2-4's retention_time_ms is ignored, as Kafka 3.x does:
			 * offsets expire by --offsets-retention-minutes once the
			 * group is empty (KIP-211). */
			row->commit_timestamp_ms = req->api_version == 1 && qp->commit_timestamp >= 0
						   ? qp->commit_timestamp : wall;
		}
	}
	if (j->op.row_count == 0) {
		commit_respond(j, 0);
		return;
	}
	j->op.kind = OP_COMMIT;
	j->op.group_id = group;
	j->op.done = commit_done;
	s->commit_requests++;
	store_enqueue(s, &j->op);
}

/* ---- OffsetFetch ---- */

/* A group's committed offsets, sorted by (tid, partition). */
struct fetched {
	struct meta_committed_offset *o;
	size_t n;
	int rc;
};

static const struct meta_committed_offset *fetched_find(const struct fetched *f, int64_t tid,
						       int32_t partition)
{
	size_t lo = 0, hi = f->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct meta_committed_offset *x = &f->o[mid];
		if (x->tid == tid && x->partition == partition)
			return x;
		if (x->tid < tid || (x->tid == tid && x->partition < partition))
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* One partition's answer, in the shape shared by every version. */
struct part_answer {
	int32_t partition;
	int64_t offset;
	int32_t leader_epoch;
	kstr metadata;
	int16_t error;
};

struct topic_answer {
	kstr name;
	int32_t count;
	struct part_answer *parts;
};

struct group_answer {
	int16_t error;
	int32_t count;
	struct topic_answer *topics;
};

static void answer_part(struct request *req, struct part_answer *pa, const struct fetched *f,
			struct topic_state *t, int32_t partition)
{
	const struct meta_committed_offset *o = t ? fetched_find(f, t->tid, partition) : NULL;
	pa->partition = partition;
	pa->offset = o ? o->committed_offset : -1;
	pa->leader_epoch = o ? o->leader_epoch : -1;
	pa->metadata = o && o->metadata ? api_kstr_dup(req, o->metadata) : KSTR("");
	pa->error = KERR_NONE;
}

struct tid_name {
	int64_t tid;
	struct topic_state *t;
};

/* Answer one group: the listed topics, or (topics_count < 0) every
 * topic it has offsets for. */
static int answer_group(struct agent *a, struct request *req, kstr group_id,
			int32_t topics_count, const kstr *names, const int32_t *part_counts,
			int32_t *const *parts, struct group_answer *out)
{
	char key[COORD_GROUP_ID_BYTES_MAX + 1];
	memset(out, 0, sizeof *out);
	struct fetched f = { 0 };
	if (has_nul(group_id) || !kstr_copy(group_id, key, sizeof key))
		out->error = KERR_INVALID_GROUP_ID;
	else if ((f.rc = meta_offset_fetch(a->meta, key, &f.o, &f.n)) != 0)
		out->error = KERR_COORDINATOR_NOT_AVAILABLE;
	if (out->error) {
		/* OffsetFetch v0-1 has no group-level error field: the error
		 * must ride on every listed partition, or the client would
		 * take "nothing committed" and reset its position. */
		if (topics_count < 0 || !REQ_ARRAY(req, topics_count, out->topics))
			return 0;
		out->count = topics_count;
		for (int32_t i = 0; i < topics_count; i++) {
			struct topic_answer *ta = &out->topics[i];
			ta->name = names[i];
			ta->count = part_counts[i] > 0 ? part_counts[i] : 0;
			if (!REQ_ARRAY(req, ta->count, ta->parts)) {
				ta->count = 0;
				continue;
			}
			for (int32_t p = 0; p < ta->count; p++) {
				answer_part(req, &ta->parts[p], &f, NULL, parts[i][p]);
				ta->parts[p].error = out->error;
			}
		}
		return 0;
	}
	int rc = 0;
	if (topics_count >= 0) {
		if (!REQ_ARRAY(req, topics_count, out->topics)) {
			rc = SL_ENOMEM;
			goto out_free;
		}
		out->count = topics_count;
		for (int32_t i = 0; i < topics_count; i++) {
			struct topic_answer *ta = &out->topics[i];
			struct topic_state *t = agent_topic(a, names[i]);
			ta->name = names[i];
			ta->count = part_counts[i] > 0 ? part_counts[i] : 0;
			if (!REQ_ARRAY(req, ta->count, ta->parts)) {
				rc = SL_ENOMEM;
				goto out_free;
			}
			for (int32_t p = 0; p < ta->count; p++)
				answer_part(req, &ta->parts[p], &f, t, parts[i][p]);
		}
		goto out_free;
	}
	/* All topics: rows are sorted by tid; one topic per run of rows. */
	int32_t runs = 0;
	for (size_t i = 0; i < f.n; i++)
		if (i == 0 || f.o[i].tid != f.o[i - 1].tid)
			runs++;
	if (!REQ_ARRAY(req, runs, out->topics)) {
		rc = SL_ENOMEM;
		goto out_free;
	}
	for (size_t i = 0; i < f.n;) {
		size_t e = i;
		while (e < f.n && f.o[e].tid == f.o[i].tid)
			e++;
		struct topic_state *t = agent_topic_by_tid(a, f.o[i].tid);
		if (t) {
			struct topic_answer *ta = &out->topics[out->count++];
			ta->name = api_kstr_dup(req, t->name);
			ta->count = (int32_t)(e - i);
			if (!REQ_ARRAY(req, ta->count, ta->parts)) {
				rc = SL_ENOMEM;
				goto out_free;
			}
			for (size_t k = i; k < e; k++)
				answer_part(req, &ta->parts[k - i], &f, t, f.o[k].partition);
		}
		i = e;
	}
out_free:
	meta_committed_offsets_free(f.o, f.n);
	return rc;
}

void handle_offset_fetch(struct agent *a, struct request *req, const struct kmsg_offset_fetch_req *m)
{
	/* require_stable: no transactional offsets exist here, so nothing is
	 * ever pending and every offset is stable. */
	struct kmsg_offset_fetch_resp r;
	kmsg_offset_fetch_resp_init(&r);
	int32_t ngroups = req->api_version >= 8 ? (m->groups_count > 0 ? m->groups_count : 0) : 1;
	struct group_answer *ga;
	if (!REQ_ARRAY(req, ngroups, ga))
		goto out_fail;
	for (int32_t g = 0; g < ngroups; g++) {
		kstr gid;
		int32_t tc;
		kstr *names = NULL;
		int32_t *counts = NULL;
		int32_t **parts = NULL;
		if (req->api_version >= 8) {
			gid = m->groups[g].group_id;
			tc = m->groups[g].topics_count;
		} else {
			gid = m->group_id;
			/* v0-1 have no null list: an empty one is just empty. */
			tc = m->topics_count;
		}
		int32_t n = tc > 0 ? tc : 0;
		if (!REQ_ARRAY(req, n, names) || !REQ_ARRAY(req, n, counts) || !REQ_ARRAY(req, n, parts))
			goto out_fail;
		for (int32_t i = 0; i < n; i++) {
			if (req->api_version >= 8) {
				names[i] = m->groups[g].topics[i].name;
				counts[i] = m->groups[g].topics[i].partition_indexes_count;
				parts[i] = m->groups[g].topics[i].partition_indexes;
			} else {
				names[i] = m->topics[i].name;
				counts[i] = m->topics[i].partition_indexes_count;
				parts[i] = m->topics[i].partition_indexes;
			}
		}
		if (answer_group(a, req, gid, tc, names, counts, parts, &ga[g]) != 0)
			goto out_fail;
	}
	if (req->api_version >= 8) {
		if (!REQ_ARRAY(req, ngroups, r.groups))
			goto out_fail;
		r.groups_count = ngroups;
		for (int32_t g = 0; g < ngroups; g++) {
			struct kmsg_offset_fetch_resp_offset_fetch_response_group *rg = &r.groups[g];
			kmsg_offset_fetch_resp_offset_fetch_response_group_init(rg);
			rg->group_id = m->groups[g].group_id;
			rg->error_code = ga[g].error;
			rg->topics_count = ga[g].count;
			if (!REQ_ARRAY(req, ga[g].count, rg->topics))
				goto out_fail;
			for (int32_t t = 0; t < ga[g].count; t++) {
				struct topic_answer *ta = &ga[g].topics[t];
				struct kmsg_offset_fetch_resp_offset_fetch_response_topics *rt = &rg->topics[t];
				kmsg_offset_fetch_resp_offset_fetch_response_topics_init(rt);
				rt->name = ta->name;
				rt->partitions_count = ta->count;
				if (!REQ_ARRAY(req, ta->count, rt->partitions))
					goto out_fail;
				for (int32_t p = 0; p < ta->count; p++) {
					struct kmsg_offset_fetch_resp_offset_fetch_response_partitions *rp = &rt->partitions[p];
					kmsg_offset_fetch_resp_offset_fetch_response_partitions_init(rp);
					rp->partition_index = ta->parts[p].partition;
					rp->committed_offset = ta->parts[p].offset;
					rp->committed_leader_epoch = ta->parts[p].leader_epoch;
					rp->metadata = ta->parts[p].metadata;
					rp->error_code = ta->parts[p].error;
				}
			}
		}
	} else {
		r.error_code = ga[0].error;
		r.topics_count = ga[0].count;
		if (!REQ_ARRAY(req, ga[0].count, r.topics))
			goto out_fail;
		for (int32_t t = 0; t < ga[0].count; t++) {
			struct topic_answer *ta = &ga[0].topics[t];
			struct kmsg_offset_fetch_resp_offset_fetch_response_topic *rt = &r.topics[t];
			kmsg_offset_fetch_resp_offset_fetch_response_topic_init(rt);
			rt->name = ta->name;
			rt->partitions_count = ta->count;
			if (!REQ_ARRAY(req, ta->count, rt->partitions))
				goto out_fail;
			for (int32_t p = 0; p < ta->count; p++) {
				struct kmsg_offset_fetch_resp_offset_fetch_response_partition *rp = &rt->partitions[p];
				kmsg_offset_fetch_resp_offset_fetch_response_partition_init(rp);
				rp->partition_index = ta->parts[p].partition;
				rp->committed_offset = ta->parts[p].offset;
				rp->committed_leader_epoch = ta->parts[p].leader_epoch;
				rp->metadata = ta->parts[p].metadata;
				/* before v2 a group-level error goes on each partition */
				rp->error_code = req->api_version < 2 && ga[0].error ? ga[0].error
										  : ta->parts[p].error;
			}
		}
	}
	kmsg_offset_fetch_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
	return;
out_fail:
	request_fail_close(req);
}

/* ---- ListGroups, DescribeGroups ---- */

struct listed {
	struct request *req;
	struct kmsg_list_groups_resp *r;
	int32_t cap;
	const struct kmsg_list_groups_req *m;
	struct group_svc *s;
};

static bool state_wanted(const struct kmsg_list_groups_req *m, int16_t version, const char *state)
{
	if (version < 4 || m->states_filter_count <= 0)
		return true;
	for (int32_t i = 0; i < m->states_filter_count; i++) {
		kstr f = m->states_filter[i];
		if (f.len == (int32_t)strlen(state) && strncasecmp(f.ptr, state, (size_t)f.len) == 0)
			return true;
	}
	return false;
}

static void list_add(struct listed *l, const char *id, const char *state, const char *type)
{
	if (!state_wanted(l->m, l->req->api_version, state) || l->r->groups_count >= l->cap)
		return;
	struct kmsg_list_groups_resp_listed_group *g = &l->r->groups[l->r->groups_count++];
	kmsg_list_groups_resp_listed_group_init(g);
	g->group_id = api_kstr_dup(l->req, id);
	g->protocol_type = api_kstr_dup(l->req, type ? type : "");
	g->group_state = KSTR(state);
	g->group_type = KSTR("classic");
}

static void list_each(void *arg, const struct coord_group *g)
{
	list_add(arg, g->group_id, coord_state_name(g->state), g->protocol_type);
}

static void list_stored(void *arg, const char *id, void *value)
{
	struct listed *l = arg;
	const struct stored_group *g = value;
	if (g->last_commit_ms >= 0 && !coord_group_find(l->s->coord, KSTR(id)))
		list_add(l, id, "Empty", "consumer");
}

void handle_list_groups(struct agent *a, struct request *req, const struct kmsg_list_groups_req *m)
{
	struct kmsg_list_groups_resp r;
	kmsg_list_groups_resp_init(&r);
	struct group_svc *s = svc(a);
	bool classic = true;
	if (req->api_version >= 5 && m->types_filter_count > 0) {
		classic = false;
		for (int32_t i = 0; i < m->types_filter_count; i++)
			if (m->types_filter[i].len == 7 &&
			    strncasecmp(m->types_filter[i].ptr, "classic", 7) == 0)
				classic = true;
	}
	if (!s) {
		r.error_code = KERR_COORDINATOR_NOT_AVAILABLE;
	} else if (classic) {
		int32_t cap = (int32_t)(coord_group_count(s->coord) + s->stored.count);
		if (!REQ_ARRAY(req, cap, r.groups)) {
			request_fail_close(req);
			return;
		}
		struct listed l = { req, &r, cap, m, s };
		coord_groups_each(s->coord, list_each, &l);
		/* Groups known only by their offsets (e.g. after a restart). */
		strmap_each(&s->stored, list_stored, &l);
	}
	kmsg_list_groups_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}

static int describe_one(struct agent *a, struct group_svc *s, struct request *req, kstr id,
			bool include_ops, struct kmsg_describe_groups_resp_described_group *d)
{
	char key[COORD_GROUP_ID_BYTES_MAX + 1];
	d->group_id = id;
	d->authorized_operations = include_ops ? GROUP_AUTHORIZED_OPERATIONS : INT32_MIN;
	d->protocol_type = KSTR("");
	d->protocol_data = KSTR("");
	if (!s) {
		d->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
		d->group_state = KSTR("");
		return 0;
	}
	if (has_nul(id) || !kstr_copy(id, key, sizeof key)) {
		d->error_code = KERR_INVALID_GROUP_ID;
		d->group_state = KSTR("");
		return 0;
	}
	const struct coord_group *g = coord_group_find(s->coord, id);
	if (!g) {
		/* As Kafka: an unknown group is described as Dead, no error. */
		bool stored = stored_has(s, key);
		d->group_state = KSTR(stored ? "Empty" : "Dead");
		d->protocol_type = KSTR(stored ? "consumer" : "");
		return 0;
	}
	d->group_state = KSTR(coord_state_name(g->state));
	d->protocol_type = api_kstr_dup(req, g->protocol_type ? g->protocol_type : "");
	bool stable = g->state == COORD_STABLE;
	/* As Kafka's group summary: the protocol, member metadata and
	 * assignments only for a Stable group. */
	if (stable && g->protocol_name)
		d->protocol_data = api_kstr_dup(req, g->protocol_name);
	if (!REQ_ARRAY(req, g->member_count, d->members))
		return SL_ENOMEM;
	d->members_count = g->member_count;
	for (int32_t i = 0; i < g->member_count; i++) {
		const struct coord_member *cm = g->members[i];
		struct kmsg_describe_groups_resp_described_group_member *dm = &d->members[i];
		kmsg_describe_groups_resp_described_group_member_init(dm);
		dm->member_id = api_kstr_dup(req, cm->member_id);
		dm->group_instance_id = cm->group_instance_id ? api_kstr_dup(req, cm->group_instance_id)
							      : KSTR_NULL;
		dm->client_id = api_kstr_dup(req, cm->client_id);
		dm->client_host = api_kstr_dup(req, cm->client_host);
		dm->member_metadata = (kbytes){ (const uint8_t *)"", 0 };
		dm->member_assignment = (kbytes){ (const uint8_t *)"", 0 };
		if (!stable)
			continue;
		/* Copies: the coordinator may change before the response is sent
		 * (it is sent at once, but keep the rule simple). */
		const struct coord_protocol *p = coord_member_protocol(g, cm);
		if (p && p->metadata_len > 0) {
			uint8_t *c = arena_alloc(&req->arena, (size_t)p->metadata_len);
			if (!c)
				return SL_ENOMEM;
			memcpy(c, p->metadata, (size_t)p->metadata_len);
			dm->member_metadata = (kbytes){ c, p->metadata_len };
		}
		if (cm->assignment && cm->assignment_len > 0) {
			uint8_t *c = arena_alloc(&req->arena, (size_t)cm->assignment_len);
			if (!c)
				return SL_ENOMEM;
			memcpy(c, cm->assignment, (size_t)cm->assignment_len);
			dm->member_assignment = (kbytes){ c, cm->assignment_len };
		}
	}
	return 0;
}

void handle_describe_groups(struct agent *a, struct request *req, const struct kmsg_describe_groups_req *m)
{
	struct kmsg_describe_groups_resp r;
	kmsg_describe_groups_resp_init(&r);
	int32_t n = m->groups_count > 0 ? m->groups_count : 0;
	if (!REQ_ARRAY(req, n, r.groups)) {
		request_fail_close(req);
		return;
	}
	r.groups_count = n;
	struct group_svc *s = svc(a);
	for (int32_t i = 0; i < n; i++) {
		kmsg_describe_groups_resp_described_group_init(&r.groups[i]);
		if (describe_one(a, s, req, m->groups[i], m->include_authorized_operations,
				 &r.groups[i]) != 0) {
			request_fail_close(req);
			return;
		}
	}
	kmsg_describe_groups_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}

/* ---- DeleteGroups, OffsetDelete ---- */

/* One DeleteGroups request: answered when the last of its groups'
 * deletes has been through the store. */
struct delete_groups {
	struct request *req;
	struct kmsg_delete_groups_resp r;
	int32_t waiting;
};

struct group_delete {
	struct store_op op;         /* first */
	struct delete_groups *d;
	int32_t index;
};

static void delete_groups_respond(struct delete_groups *d)
{
	kmsg_delete_groups_resp_encode(&d->req->resp, d->req->api_version, &d->r);
	request_respond(d->req);
}

static void group_delete_done(struct group_svc *s, struct store_op *op)
{
	struct group_delete *gd = (struct group_delete *)op;
	struct delete_groups *d = gd->d;
	if (op->rc)
		d->r.results[gd->index].error_code = KERR_COORDINATOR_NOT_AVAILABLE;
	else
		log_info("group %s deleted (%" PRId64 " committed offsets)", op->group_id,
			 op->deleted);
	if (--d->waiting == 0)
		delete_groups_respond(d);
}

void handle_delete_groups(struct agent *a, struct request *req, const struct kmsg_delete_groups_req *m)
{
	struct delete_groups *d;
	struct group_delete *gd;
	int32_t n = m->groups_names_count > 0 ? m->groups_names_count : 0;
	if (!REQ_ARRAY(req, 1, d) || !REQ_ARRAY(req, n, gd)) {
		request_fail_close(req);
		return;
	}
	d->req = req;
	kmsg_delete_groups_resp_init(&d->r);
	if (!REQ_ARRAY(req, n, d->r.results)) {
		request_fail_close(req);
		return;
	}
	d->r.results_count = n;
	/* Held at 1 until every group is queued, so no early answer. */
	d->waiting = 1;
	struct group_svc *s = svc(a);
	for (int32_t i = 0; i < n; i++) {
		struct kmsg_delete_groups_resp_deletable_group_result *res = &d->r.results[i];
		kmsg_delete_groups_resp_deletable_group_result_init(res);
		kstr id = m->groups_names[i];
		res->group_id = id;
		if (!s) {
			res->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
			continue;
		}
		char *key = api_cstr_dup(req, id);
		if (!key || has_nul(id) || id.len > COORD_GROUP_ID_BYTES_MAX) {
			res->error_code = KERR_INVALID_GROUP_ID;
			continue;
		}
		bool in_memory = coord_group_find(s->coord, id) != NULL;
		res->error_code = coord_group_delete(s->coord, id);
		if (res->error_code)
			continue;
		struct stored_group *sg = stored_get(s, key);
		if (!sg) {
			/* Nothing stored, nothing on its way to the store. */
			if (!in_memory)
				res->error_code = KERR_GROUP_ID_NOT_FOUND;
			else
				log_info("group %s deleted (no committed offsets)", key);
			continue;
		}
		/* Through the store queue, after any commit of the group
		 * already queued, so none of those brings offsets back. */
		gd[i].d = d;
		gd[i].index = i;
		gd[i].op.kind = OP_DELETE;
		gd[i].op.group_id = key;
		gd[i].op.done = group_delete_done;
		d->waiting++;
		store_enqueue(s, &gd[i].op);
	}
	if (--d->waiting == 0)
		delete_groups_respond(d);
}

/* The topics a consumer-protocol member subscribes to (its metadata for
 * the selected protocol: int16 version, then an array of strings). */
static bool subscribed(const struct coord_group *g, kstr topic)
{
	for (int32_t i = 0; i < g->member_count; i++) {
		const struct coord_protocol *p = coord_member_protocol(g, g->members[i]);
		if (!p)
			continue;
		struct kreader r;
		kreader_init(&r, p->metadata, (size_t)p->metadata_len);
		kreader_i16(&r);
		int32_t n = kreader_i32(&r);
		for (int32_t k = 0; k < n && !r.err; k++) {
			int16_t len = kreader_i16(&r);
			if (len < 0)
				break;
			const uint8_t *s = kreader_take(&r, (size_t)len);
			if (s && topic.len == len && memcmp(s, topic.ptr, (size_t)len) == 0)
				return true;
		}
	}
	return false;
}

struct offset_delete {
	struct store_op op;         /* first */
	struct request *req;
	struct kmsg_offset_delete_resp r;
};

static void offset_delete_respond(struct offset_delete *od)
{
	kmsg_offset_delete_resp_encode(&od->req->resp, od->req->api_version, &od->r);
	request_respond(od->req);
}

static void offset_delete_done(struct group_svc *s, struct store_op *op)
{
	struct offset_delete *od = (struct offset_delete *)op;
	if (op->rc)
		od->r.error_code = KERR_COORDINATOR_NOT_AVAILABLE;
	offset_delete_respond(od);
}

void handle_offset_delete(struct agent *a, struct request *req, const struct kmsg_offset_delete_req *m)
{
	struct offset_delete *od;
	if (!REQ_ARRAY(req, 1, od)) {
		request_fail_close(req);
		return;
	}
	od->req = req;
	struct kmsg_offset_delete_resp *r = &od->r;
	kmsg_offset_delete_resp_init(r);
	struct group_svc *s = svc(a);
	char *key = NULL;
	const struct coord_group *g = NULL;
	if (!s) {
		r->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
		goto out_respond;
	}
	key = api_cstr_dup(req, m->group_id);
	if (!key || has_nul(m->group_id) || m->group_id.len > COORD_GROUP_ID_BYTES_MAX) {
		r->error_code = KERR_INVALID_GROUP_ID;
		goto out_respond;
	}
	g = coord_group_find(s->coord, m->group_id);
	if (!g && !stored_get(s, key)) {
		r->error_code = KERR_GROUP_ID_NOT_FOUND;
		goto out_respond;
	}
	bool busy = g && g->state != COORD_EMPTY;
	if (busy && (!g->protocol_type || strcmp(g->protocol_type, "consumer") != 0)) {
		r->error_code = KERR_NON_EMPTY_GROUP;
		goto out_respond;
	}
	int32_t nt = m->topics_count > 0 ? m->topics_count : 0;
	size_t total = 0;
	for (int32_t t = 0; t < nt; t++)
		total += m->topics[t].partitions_count > 0 ? (size_t)m->topics[t].partitions_count : 0;
	int64_t *tids;
	int32_t *parts;
	if (!REQ_ARRAY(req, nt, r->topics) || !REQ_ARRAY(req, total, tids) ||
	    !REQ_ARRAY(req, total, parts)) {
		request_fail_close(req);
		return;
	}
	size_t k = 0;
	r->topics_count = nt;
	for (int32_t t = 0; t < nt; t++) {
		struct kmsg_offset_delete_resp_offset_delete_response_topic *rt = &r->topics[t];
		kmsg_offset_delete_resp_offset_delete_response_topic_init(rt);
		rt->name = m->topics[t].name;
		int32_t np = m->topics[t].partitions_count > 0 ? m->topics[t].partitions_count : 0;
		if (!REQ_ARRAY(req, np, rt->partitions)) {
			request_fail_close(req);
			return;
		}
		rt->partitions_count = np;
		struct topic_state *ts = agent_topic(a, rt->name);
		bool sub = busy && subscribed(g, rt->name);
		for (int32_t p = 0; p < np; p++) {
			struct kmsg_offset_delete_resp_offset_delete_response_partition *rp = &rt->partitions[p];
			kmsg_offset_delete_resp_offset_delete_response_partition_init(rp);
			rp->partition_index = m->topics[t].partitions[p].partition_index;
			if (!ts || rp->partition_index < 0 || rp->partition_index >= ts->partition_count)
				rp->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
			else if (sub)
				rp->error_code = KERR_GROUP_SUBSCRIBED_TO_TOPIC;
			else {
				tids[k] = ts->tid;
				parts[k++] = rp->partition_index;
			}
		}
	}
	if (k == 0)
		goto out_respond;
	/* Through the store queue, ordered with the group's commits. */
	od->op.kind = OP_DELETE;
	od->op.group_id = key;
	od->op.tids = tids;
	od->op.partitions = parts;
	od->op.n = k;
	od->op.done = offset_delete_done;
	store_enqueue(s, &od->op);
	return;
out_respond:
	offset_delete_respond(od);
}
