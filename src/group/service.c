/* service.c — the consumer group service (service.h): the coordinator
 * driven from the loop (its timer, its effects answering waiting
 * JoinGroup/SyncGroup requests), the offsets write queue on the thread
 * pool, the offsets retention sweep and the set of groups with stored
 * offsets.
 *
 * In cluster mode a group is coordinated only by the agent placement puts
 * it on, and only while that agent holds the group's lease
 * (cluster/lease.h): taking it loads what the store has of the group,
 * losing it (or the group moving elsewhere) unloads the group, and every
 * offset write is fenced by the lease's epoch in its transaction. With
 * one agent every group is its own. Membership is in memory and stored
 * where Kafka stores its GroupMetadata record (a generation completes:
 * the coordinator's PERSIST effect, whose outcome answers the group's
 * SyncGroups, so none hears of a generation the store does not hold; so
 * is a static member's new id, before its JoinGroup is answered; the
 * group empties: coord_group.store_version), through the same queue and fence, and loaded with the
 * group's offsets, so a new coordinator (a takeover, a restart) keeps the
 * generation and its members. OffsetCommit is
 * answered once its offsets are durable: commits queue while one store
 * transaction runs on a pool thread, then all of them go in the next
 * transaction (group commit, one fsync); one such queue per offsets lane
 * of the store (meta_offsets_lanes, by group id), so a write stuck on
 * one group's rows does not hold up the groups of the other lanes. Deletes of offsets (DeleteGroups,
 * OffsetDelete, retention) go through the same queue, in order with the
 * commits; the loop thread never writes the store, and knows which groups
 * have offsets from memory. */
#include "group/service.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/grow.h"
#include "base/log.h"
#include "base/strmap.h"
#include "cluster/lease.h"
#include "proto/kerr.h"

/* Tuning: how often the coordinator's deadlines are checked, and the
 * offsets retention sweep runs (limits are in base/limits.h). */
#define GROUPS_TICK_MS 100
#define GROUPS_SWEEP_MS (60 * 1000)
/* How often groups coordinated here are checked against placement and
 * for idleness (their leases released), in cluster mode. */
#define GROUPS_OWN_CHECK_MS 1000
/* The offsets retention sweep's lease: one agent sweeps at a time. */
#define JOB_OFFSETS_RETENTION "job/offsets-retention"

/* group_offsets_op.kind; OP_LOAD reads what the store has of a group
 * whose lease this agent just took, in order with its writes. */
enum { OP_COMMIT, OP_DELETE, OP_FORGET, OP_LOAD, OP_STATE, OP_TXN_COMMIT };

/* OP_STATE: a group's membership to store (encoded on the loop when it
 * changed); OP_LOAD: also its stored membership, read back. */
struct state_op {
	struct group_offsets_op op;
	struct meta_group_state st; /* st.group_id is op.group_id */
	struct meta_group_state *loaded;
	size_t loaded_count;
	/* A PERSIST storing a static member's new id: that id (NULL for a
	 * completed generation). */
	char *static_member;
};

/* A group this agent coordinates or is about to, in cluster mode: its
 * lease is wanted from the first request on, and requests are served
 * once it is held and the group loaded. */
enum { OWN_ACQUIRING, OWN_LOADING, OWN_READY };
struct owned_group {
	int state;
	int64_t epoch;         /* the lease's, while LOADING or READY */
	int64_t last_used_ms;  /* the last request for it */
};

/* What this agent knows of a group's committed offsets without asking
 * the store: loaded once at start (meta_group_list), then kept by the
 * ops of the write queue. ListGroups, DescribeGroups, DeleteGroups,
 * OffsetDelete and the retention sweep read it instead of scanning the
 * store on the loop. (With a metadata store shared by several agents,
 * groups that commit only through other agents appear here after a
 * restart.) */
struct stored_group {
	int64_t last_commit_ms;     /* newest commit timestamp; -1: none stored */
	int32_t ops;                /* store ops queued or running for it */
	bool expiring;              /* a retention delete is queued */
};

/* One queue of store ops per offsets lane (meta_offsets_lanes): a
 * group's ops go to its lane's, in order; each lane runs one store
 * transaction at a time, the lanes side by side, so a write stuck on
 * one group's rows holds up only the groups of its lane. */
struct store_lane {
	struct group_svc *s;
	struct group_offsets_op *queue_head, *queue_tail;
	struct group_offsets_op *batch; /* in the store now */
	struct meta_offset_commit *batch_rows;
	size_t batch_row_count;
	uv_work_t work;
};

struct group_svc {
	uv_loop_t *loop;
	struct meta *meta;
	struct group_svc_config cfg;
	struct coordinator *coord;
	struct coord_effects effects;
	struct group_waiter waiters; /* list head */
	uv_timer_t timer;
	/* One-shot, armed by each tick for a deadline before the next tick:
	 * a member expires at its deadline, as in Kafka, not up to a tick
	 * later (a DeleteGroups sent just after session.timeout.ms finds the
	 * group empty). */
	uv_timer_t deadline_timer;
	int64_t next_sweep_ms;
	struct strmap stored;       /* group id -> struct stored_group */
	struct strmap owned;        /* group id -> struct owned_group (leases) */
	struct strmap persisted;    /* group id -> uint64_t: store_version queued */
	uint64_t store_seen;        /* coord_store_changes at the last scan */
	struct group_park *parked;  /* requests waiting for a group's load */
	int64_t next_own_check_ms;
	/* cluster mode: the retention sweep first lists every stored group */
	uv_work_t list_work;
	bool listing;
	struct meta_group_summary *list;
	size_t list_count;
	int list_rc;
	/* ... and deletes the membership of groups nobody coordinated for
	 * abandoned_ms (meta_group_states_expire) */
	int64_t abandoned_ms;
	int64_t expired_states;
	int expire_rc;
	/* the store op queues */
	struct store_lane lanes[META_OFFSETS_LANES_MAX];
	bool stopped;
	/* counters for logs and the bench */
	uint64_t commit_transactions;
	uint64_t commit_requests;
};

static int64_t now_ms(void)
{
	return clock_mono_us() / 1000;
}

/* ---- performing the coordinator's effects ---- */

static void waiter_unlink(struct group_waiter *w)
{
	w->prev->next = w->next;
	w->next->prev = w->prev;
	w->prev = w->next = w;
}

static void waiter_link(struct group_svc *s, struct group_waiter *w)
{
	w->pending = false;
	w->next = &s->waiters;
	w->prev = s->waiters.prev;
	w->prev->next = w;
	s->waiters.prev = w;
}

static void mark_pending(void *arg, void *req)
{
	((struct group_waiter *)req)->pending = true;
}

static void state_scan(struct group_svc *s);
static void state_forget(struct group_svc *s, const char *id);
static struct group_offsets_op *persist_make(const struct coord_effect *f);
static void persist_queue(struct group_svc *s, struct group_offsets_op *op);
static int16_t persist_error(int rc);
static void persist_outcome(struct group_svc *s, const char *group_id, int32_t generation,
			    const char *static_member, int16_t err);

static void perform_effects(struct group_svc *s)
{
	struct coord_effects *e = &s->effects;
	size_t answered = 0;
	/* Writes are queued once the list is done with (a write that fails
	 * at once answers through a list of its own). */
	struct group_offsets_op *writes = NULL, **tail = &writes;
	/* e->n grows when a write that cannot be queued answers its
	 * group's SyncGroups here: those answers come later in the list. */
	for (size_t i = 0; i < e->n; i++) {
		struct coord_effect *f = &e->v[i];
		if (f->kind == COORD_EFFECT_PERSIST) {
			/* In a list marked oom it is not performed: the
			 * coordinator failed it already (its record could not
			 * be made), or what waits for it is answered at its
			 * deadline, as a write that timed out (coordinator.h). */
			if (e->oom)
				continue;
			struct group_offsets_op *op = persist_make(f);
			if (op) {
				*tail = op;
				tail = &op->next;
			} else {
				persist_outcome(s, f->group_id, f->generation_id, f->member_id,
						persist_error(SL_ENOMEM));
			}
			continue;
		}
		struct group_waiter *w = f->req;
		waiter_unlink(w);
		answered++;
		/* After out-of-memory an answer may be incomplete: the
		 * connection is closed rather than sent it. */
		w->answer(w, e->oom ? NULL : f);
	}
	bool oom = e->oom;
	coord_effects_reset(e);
	while (writes) {
		struct group_offsets_op *op = writes;
		writes = op->next;
		persist_queue(s, op);
	}
	if (coord_store_changes(s->coord) != s->store_seen)
		state_scan(s);
	if (!oom)
		return;
	/* A request that is neither answered nor still waiting inside the
	 * coordinator lost its answer: fail it, so none hangs forever. */
	size_t lost = 0;
	for (struct group_waiter *w = s->waiters.next; w != &s->waiters; w = w->next)
		w->pending = false;
	coord_requests_each(s->coord, mark_pending, NULL);
	for (struct group_waiter *w = s->waiters.next; w != &s->waiters;) {
		struct group_waiter *next = w->next;
		if (!w->pending) {
			waiter_unlink(w);
			w->answer(w, NULL);
			lost++;
		}
		w = next;
	}
	log_error("group coordinator: out of memory recording responses; %zu connections "
		  "closed without an answer", answered + lost);
}

void group_svc_join(struct group_svc *s, const struct coord_join_args *args,
		    struct group_waiter *w)
{
	waiter_link(s, w);
	coord_join(s->coord, now_ms(), args, w, &s->effects);
	perform_effects(s);
}

void group_svc_sync(struct group_svc *s, const struct coord_sync_args *args,
		    struct group_waiter *w)
{
	waiter_link(s, w);
	coord_sync(s->coord, now_ms(), args, w, &s->effects);
	perform_effects(s);
}

int16_t group_svc_heartbeat(struct group_svc *s, kstr group_id, int32_t generation_id,
			    kstr member_id, kstr group_instance_id)
{
	return coord_heartbeat(s->coord, now_ms(), group_id, generation_id, member_id,
			       group_instance_id);
}

int16_t group_svc_leave(struct group_svc *s, kstr group_id, kstr member_id,
			kstr group_instance_id)
{
	bool found;
	int16_t err = coord_leave(s->coord, now_ms(), group_id, member_id, group_instance_id,
				  &found, &s->effects);
	perform_effects(s);
	return err;
}

int16_t group_svc_commit_check(struct group_svc *s, kstr group_id, int32_t generation_id,
			       kstr member_id, kstr group_instance_id, int16_t api_version)
{
	return coord_commit_check(s->coord, now_ms(), group_id, generation_id, member_id,
				  group_instance_id, api_version);
}

int16_t group_svc_txn_commit_check(struct group_svc *s, kstr group_id, int32_t generation_id,
				   kstr member_id, kstr group_instance_id)
{
	return coord_txn_commit_check(s->coord, now_ms(), group_id, generation_id, member_id,
				      group_instance_id);
}

/* ---- what is stored, per group ---- */

static struct stored_group *stored_get(const struct group_svc *s, const char *id)
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
static bool stored_has(const struct group_svc *s, const char *id)
{
	struct stored_group *g = stored_get(s, id);
	return g && g->last_commit_ms >= 0;
}

/* ---- the store op queue ---- */

static void store_batch_start(struct store_lane *l);

/* A batch of commits, fenced by each op's lease epoch in cluster mode:
 * an op with a refused row gets SL_EBUSY (another agent coordinates its
 * group now), the others are stored. */
static void commit_work(struct store_lane *l, struct group_offsets_op *op)
{
	struct group_svc *s = l->s;
	int rc;
	bool *refused = NULL;
	int64_t *epochs = NULL;
	if (!s->cfg.self) {
		rc = meta_offset_commit(s->meta, l->batch_rows, l->batch_row_count);
	} else {
		refused = calloc(l->batch_row_count, sizeof *refused);
		epochs = calloc(l->batch_row_count, sizeof *epochs);
		size_t k = 0;
		for (struct group_offsets_op *j = op; epochs && j; j = j->next)
			for (size_t i = 0; i < j->row_count; i++)
				epochs[k++] = j->epoch;
		rc = refused && epochs ? meta_offset_commit_fenced(s->meta, l->batch_rows, epochs,
								   l->batch_row_count, refused)
				       : SL_ENOMEM;
	}
	for (size_t k = 0; op; op = op->next) {
		op->rc = rc;
		for (size_t i = 0; refused && i < op->row_count; i++, k++)
			if (!rc && refused[k])
				op->rc = SL_EBUSY;
	}
	free(refused);
	free(epochs);
}

/* The newest commit timestamp of the group's stored offsets (-1: none),
 * in op->deleted. */
static void load_work(struct group_svc *s, struct group_offsets_op *op)
{
	struct meta_committed_offset *o = NULL;
	size_t n = 0;
	op->rc = meta_offset_fetch(s->meta, op->group_id, &o, &n);
	op->deleted = -1;
	for (size_t i = 0; !op->rc && i < n; i++)
		if (o[i].commit_timestamp_ms > op->deleted)
			op->deleted = o[i].commit_timestamp_ms;
	if (!op->rc && n && op->deleted < 0)
		op->deleted = 0;
	meta_committed_offsets_free(o, n);
	struct state_op *x = (struct state_op *)op;
	if (!op->rc)
		op->rc = meta_group_state_load(s->meta, op->group_id, &x->loaded, &x->loaded_count);
	if (op->rc == SL_EUNSUPPORTED)
		op->rc = 0;
}

/* Fenced by the lease in a cluster; a store one agent claims needs none. */
static void state_work(struct group_svc *s, struct group_offsets_op *op)
{
	struct state_op *x = (struct state_op *)op;
	op->rc = meta_group_state_store(s->meta, &x->st, s->cfg.self ? op->epoch : 0);
}

/* A delete, and whether the group has offsets left after it (partial
 * deletes are rare, OffsetDelete: one keyed read tells). */
static void delete_work(struct group_svc *s, struct group_offsets_op *op)
{
	if (s->cfg.self)
		op->rc = meta_group_delete_offsets_fenced(s->meta, op->group_id, s->cfg.self, op->epoch,
							  op->tids, op->partitions, op->n,
							  &op->deleted);
	else
		op->rc = meta_group_delete_offsets(s->meta, op->group_id, op->tids, op->partitions,
						   op->n, &op->deleted);
	op->emptied = !op->rc && !op->tids;
	if (!op->rc && op->tids) {
		struct meta_committed_offset *o = NULL;
		size_t n = 0;
		op->emptied = meta_offset_fetch(s->meta, op->group_id, &o, &n) == 0 && n == 0;
		meta_committed_offsets_free(o, n);
	}
}

/* A forgotten group's stored membership, deleted by the store only
 * while it holds no offsets of the group (meta_group_forget): this
 * agent's knowledge of them may be short of the store's. */
static void forget_work(struct group_svc *s, struct group_offsets_op *op)
{
	op->rc = meta_group_forget(s->meta, op->group_id, s->cfg.self, s->cfg.self ? op->epoch : 0);
}

static void store_work(uv_work_t *w)
{
	struct store_lane *l = w->data;
	struct group_svc *s = l->s;
	struct group_offsets_op *op = l->batch;
	if (op->kind == OP_COMMIT)
		commit_work(l, op);
	else if (op->kind == OP_LOAD)
		load_work(s, op);
	else if (op->kind == OP_STATE)
		state_work(s, op);
	else if (op->kind == OP_FORGET)
		forget_work(s, op);
	else if (op->kind == OP_TXN_COMMIT)
		op->rc = meta_txn_offset_commit(s->meta, op->transactional_id, op->producer_id,
						op->producer_epoch, op->rows, op->row_count);
	else
		delete_work(s, op);
}

/* Keep the per-group knowledge, then hand the op to its owner. */
static void store_op_finish(struct group_svc *s, struct group_offsets_op *op)
{
	struct stored_group *g = stored_get(s, op->group_id);
	if (g) {
		g->ops--;
		/* A transactional commit counts as one: its rows reach the
		 * group's offsets when the transaction commits. */
		if ((op->kind == OP_COMMIT || op->kind == OP_TXN_COMMIT) && op->rc == 0) {
			for (size_t i = 0; i < op->row_count; i++)
				if (op->rows[i].commit_timestamp_ms > g->last_commit_ms)
					g->last_commit_ms = op->rows[i].commit_timestamp_ms;
			/* a commit of a timestamp before 0 still stored a row */
			if (op->row_count && g->last_commit_ms < 0)
				g->last_commit_ms = 0;
		} else if (op->kind == OP_LOAD && op->rc == 0) {
			g->last_commit_ms = op->deleted;
		} else if (op->kind == OP_DELETE && op->rc == 0 && op->emptied) {
			g->last_commit_ms = -1;
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
	struct store_lane *l = w->data;
	struct group_svc *s = l->s;
	struct group_offsets_op *op = l->batch;
	l->batch = NULL;
	free(l->batch_rows);
	l->batch_rows = NULL;
	if (op && op->kind == OP_COMMIT) {
		s->commit_transactions++;
		if (status || op->rc)
			log_error("group offsets: commit of %zu rows failed: %s", l->batch_row_count,
				  sl_strerror(status ? SL_EIO : op->rc));
	}
	while (op) {
		struct group_offsets_op *next = op->next;
		if (status)
			op->rc = SL_EIO;
		store_op_finish(s, op);
		op = next;
	}
	store_batch_start(l);
}

static void store_batch_start(struct store_lane *l)
{
	if (l->batch || !l->queue_head)
		return;
	/* A delete alone; or queued commits up to the row bound (at least one). */
	size_t rows = 0;
	struct group_offsets_op *last = l->queue_head, *j = l->queue_head;
	if (j->kind == OP_COMMIT) {
		while (j && j->kind == OP_COMMIT &&
		       (rows == 0 || rows + j->row_count <= SL_GROUP_COMMIT_BATCH_ROWS)) {
			rows += j->row_count;
			last = j;
			j = j->next;
		}
	}
	struct group_offsets_op *first = l->queue_head;
	l->queue_head = last->next;
	if (!l->queue_head)
		l->queue_tail = NULL;
	last->next = NULL;
	l->batch_rows = NULL;
	l->batch_row_count = rows;
	if (first->kind == OP_COMMIT) {
		struct meta_offset_commit *all = malloc(sizeof *all * (rows ? rows : 1));
		if (!all) {
			/* Answer them with an error rather than hold them. */
			l->batch = first;
			for (j = first; j; j = j->next)
				j->rc = SL_ENOMEM;
			store_after(&l->work, 0);
			return;
		}
		size_t k = 0;
		for (j = first; j; j = j->next) {
			memcpy(&all[k], j->rows, sizeof *all * j->row_count);
			k += j->row_count;
		}
		l->batch_rows = all;
	}
	l->batch = first;
	if (uv_queue_work(l->s->loop, &l->work, store_work, store_after) != 0)
		store_after(&l->work, UV_EINVAL);
}

/* Queue op (its group_id, kind and fields set); done is called later
 * (or before this returns, when its transaction cannot be started).
 * Returns 0, or SL_ENOMEM when the group's entry cannot be made (done
 * never called). */
static int store_enqueue(struct group_svc *s, struct group_offsets_op *op)
{
	struct stored_group *g = stored_ref(s, op->group_id);
	if (!g)
		return SL_ENOMEM;
	g->ops++;
	struct owned_group *o = strmap_get(&s->owned, op->group_id);
	/* Fenced by the lease held now; 0 (a group not coordinated here:
	 * the retention sweep's delete) is "free or this agent's". */
	op->epoch = o && o->state != OWN_ACQUIRING ? o->epoch : 0;
	op->next = NULL;
	op->rc = 0;
	op->deleted = 0;
	op->emptied = false;
	struct store_lane *l = &s->lanes[meta_offsets_lane(s->meta, op->group_id)];
	if (l->queue_tail)
		l->queue_tail->next = op;
	else
		l->queue_head = op;
	l->queue_tail = op;
	store_batch_start(l);
	return 0;
}

int group_svc_offsets_commit(struct group_svc *s, struct group_offsets_op *op)
{
	op->kind = OP_COMMIT;
	s->commit_requests++;
	return store_enqueue(s, op);
}

int group_svc_txn_offsets_commit(struct group_svc *s, struct group_offsets_op *op)
{
	op->kind = OP_TXN_COMMIT;
	return store_enqueue(s, op);
}

int group_svc_offsets_delete(struct group_svc *s, struct group_offsets_op *op)
{
	op->kind = OP_DELETE;
	return store_enqueue(s, op);
}

/* ---- the timer: coordinator deadlines, retention ---- */

struct forget_arg {
	struct group_svc *s;
	int64_t now;
	char **ids;
	size_t count, cap;
};

/* An Empty group with nothing stored of its offsets and no store op on
 * its way (Kafka's cleanupGroupMetadata: Empty without offsets goes
 * Dead). */
static bool empty_without_offsets(const struct group_svc *s, const struct coord_group *g)
{
	return g->state == COORD_EMPTY && !g->member_count && !g->pending_count &&
	       !stored_get(s, g->group_id);
}

static void collect_forgettable(void *arg, const struct coord_group *g)
{
	struct forget_arg *f = arg;
	if (!empty_without_offsets(f->s, g) ||
	    f->now - g->state_since_ms < f->s->cfg.empty_forget_ms)
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

static void expire_done(struct group_svc *s, struct group_offsets_op *op)
{
	struct stored_group *g = stored_get(s, op->group_id);
	if (g)
		g->expiring = false;
	if (op->rc == 0) {
		log_info("group %s: %" PRId64 " committed offsets expired", op->group_id,
			 op->deleted);
		if (coord_group_delete(s->coord, KSTR(op->group_id)) == KERR_NONE)
			state_forget(s, op->group_id);
	}
	free((char *)op->group_id);
	free(op);
}

/* offsets.retention.minutes: the offsets of a group that has been empty
 * (or unknown to this agent) and uncommitted for that long are deleted,
 * through the store op queue. Reads only memory on the loop. */
static void retention_sweep(struct group_svc *s, int64_t now)
{
	struct forget_arg expired = { s, now, NULL, 0, 0 };
	struct expire_arg x = { s, now, clock_wall_ms(), s->cfg.offsets_retention_ms, &expired };
	strmap_each(&s->stored, collect_expired, &x);
	for (size_t i = 0; i < expired.count; i++) {
		struct group_offsets_op *op = calloc(1, sizeof *op);
		if (!op) {
			free(expired.ids[i]);
			continue;
		}
		op->group_id = expired.ids[i]; /* the op owns it now */
		op->done = expire_done;
		struct stored_group *g = stored_get(s, op->group_id);
		if (g)
			g->expiring = true;
		if (group_svc_offsets_delete(s, op) != 0) {
			op->rc = SL_ENOMEM;
			expire_done(s, op);
		}
	}
	free(expired.ids);
}

static void forget_done(struct group_svc *s, struct group_offsets_op *op)
{
	if (op->rc)
		log_warn("group %s: forgotten, but its stored membership was not deleted (%s)",
			 op->group_id, sl_strerror(op->rc));
	free((char *)op->group_id);
	free(op);
}

/* Empty groups without offsets, Empty for cfg.empty_forget_ms, are
 * forgotten, as Kafka's offsets cleanup makes them Dead: dropped from
 * memory and, when a generation may have been stored (Kafka writes no
 * tombstone for generation 0 either), their stored membership deleted
 * through the store queue, fenced by the group's lease like its other
 * writes (the lease is kept until that is through: own_check waits for
 * the group's ops), and only while the store holds no offsets of the
 * group: "without offsets" is this agent's knowledge, which a failed
 * load or transactional offsets settled elsewhere leave short of the
 * store's (offsets are never deleted by a forget). A later JoinGroup
 * starts a new group. */
static void forget_sweep(struct group_svc *s, int64_t now)
{
	struct forget_arg f = { s, now, NULL, 0, 0 };
	coord_groups_each(s->coord, collect_forgettable, &f);
	for (size_t i = 0; i < f.count; i++) {
		const struct coord_group *g = coord_group_find(s->coord, KSTR(f.ids[i]));
		bool stored = g && g->generation_id > 0;
		if (coord_group_delete(s->coord, KSTR(f.ids[i])) != KERR_NONE) {
			free(f.ids[i]);
			continue;
		}
		state_forget(s, f.ids[i]);
		log_info("group %s: Empty without offsets for %" PRId64 " ms; forgotten", f.ids[i],
			 s->cfg.empty_forget_ms);
		struct group_offsets_op *op = stored ? calloc(1, sizeof *op) : NULL;
		if (!op) {
			free(f.ids[i]);
			continue;
		}
		op->group_id = f.ids[i]; /* the op owns it now */
		op->done = forget_done;
		op->kind = OP_FORGET;
		if (store_enqueue(s, op) != 0) {
			op->rc = SL_ENOMEM;
			forget_done(s, op);
		}
	}
	free(f.ids);
}

static void own_check(struct group_svc *s, int64_t now);
static void park_wake(struct group_svc *s, const char *id, int64_t now);

/* In a cluster other agents commit groups this one never saw: the
 * sweep's holder lists every stored group first (a GROUP BY scan, on the
 * pool), taking their newest commit times into what it knows; and it
 * deletes the stored membership of groups nobody coordinated for
 * abandoned_ms, which no forget_sweep would (their coordinator moved or
 * died before the group had been Empty long enough). */
static void list_work(uv_work_t *w)
{
	struct group_svc *s = w->data;
	s->list_rc = meta_group_list(s->meta, &s->list, &s->list_count);
	s->expire_rc = meta_group_states_expire(s->meta, s->abandoned_ms, &s->expired_states);
}

static void list_done(uv_work_t *w, int status)
{
	struct group_svc *s = w->data;
	s->listing = false;
	if (!status && !s->expire_rc && s->expired_states > 0)
		log_info("groups: the stored membership of %" PRId64 " group(s) nobody coordinated "
			 "for %" PRId64 " ms deleted", s->expired_states, s->abandoned_ms);
	else if (!status && s->expire_rc && s->expire_rc != SL_EUNSUPPORTED)
		log_warn("groups: deleting abandoned groups' membership failed: %s",
			 sl_strerror(s->expire_rc));
	if (!status && !s->list_rc && !s->stopped) {
		for (size_t i = 0; i < s->list_count; i++) {
			struct stored_group *g = stored_ref(s, s->list[i].group_id);
			int64_t last = s->list[i].last_commit_ms >= 0 ? s->list[i].last_commit_ms : 0;
			if (g && last > g->last_commit_ms)
				g->last_commit_ms = last;
		}
		retention_sweep(s, now_ms());
	} else if (s->list_rc && !s->stopped) {
		log_warn("groups: listing stored groups for the offsets retention sweep failed: %s",
			 sl_strerror(s->list_rc));
	}
	meta_group_summaries_free(s->list, s->list_count);
	s->list = NULL;
	s->list_count = 0;
}

static void on_deadline(uv_timer_t *t);

/* Everything due now, then the timer for a deadline before the next
 * tick (coord_next_deadline's contract). */
static void expire_due(struct group_svc *s, int64_t now)
{
	coord_tick(s->coord, now, &s->effects);
	perform_effects(s);
	int64_t next = coord_next_deadline(s->coord);
	if (next < now + GROUPS_TICK_MS) {
		/* uv timers count from the loop's cached time in whole ms:
		 * one ms more so it never fires before the deadline. */
		uint64_t wait = next > now ? (uint64_t)(next - now) + 1 : 0;
		uv_timer_start(&s->deadline_timer, on_deadline, wait, 0);
	}
}

static void on_deadline(uv_timer_t *t)
{
	struct group_svc *s = t->data;
	uv_update_time(s->loop);
	expire_due(s, now_ms());
}

void group_svc_expire(struct group_svc *s)
{
	expire_due(s, now_ms());
}

static void on_timer(uv_timer_t *t)
{
	struct group_svc *s = t->data;
	int64_t now = now_ms();
	expire_due(s, now);
	if (now >= s->next_sweep_ms) {
		s->next_sweep_ms = now + GROUPS_SWEEP_MS;
		if (!s->cfg.leases) {
			retention_sweep(s, now);
		} else if (lease_held(s->cfg.leases, JOB_OFFSETS_RETENTION, NULL) && !s->listing) {
			if (!s->cfg.self) {
				retention_sweep(s, now); /* a claimed store: all is known */
			} else {
				s->list_work.data = s;
				s->listing = uv_queue_work(s->loop, &s->list_work, list_work,
							   list_done) == 0;
			}
		}
	}
	if (s->parked)
		park_wake(s, NULL, now);
	if (now >= s->next_own_check_ms) {
		s->next_own_check_ms = now + GROUPS_OWN_CHECK_MS;
		forget_sweep(s, now);
		if (s->cfg.leases)
			own_check(s, now);
	}
}

/* ---- cluster mode: the groups this agent coordinates ---- */

/* Forget the group's membership: its waiting requests get
 * NOT_COORDINATOR, its members rejoin wherever FindCoordinator sends
 * them. */
static void group_unload(struct group_svc *s, const char *id)
{
	coord_group_unload(s->coord, KSTR(id), &s->effects);
	perform_effects(s);
	state_forget(s, id);
}

/* A stored membership back into the coordinator (the group is not in
 * memory: requests for it wait for the load). */
static void state_restore(struct group_svc *s, const struct meta_group_state *st)
{
	struct coord_group_record rec = {
		.generation_id = st->generation, .protocol_type = st->protocol_type,
		.protocol_name = st->protocol_name, .leader_id = st->leader_id,
		.members = st->members, .members_len = st->members_len,
	};
	int rc = coord_group_restore(s->coord, now_ms(), KSTR(st->group_id), &rec);
	const struct coord_group *g = coord_group_find(s->coord, KSTR(st->group_id));
	if (!rc && g)
		log_info("group %s: generation %" PRId32 " with %" PRId32 " members loaded",
			 st->group_id, g->generation_id, g->member_count);
	else if (rc != SL_EBUSY)
		log_warn("group %s: its stored membership cannot be used (%s); members rejoin",
			 st->group_id, sl_strerror(rc));
}

static void load_done(struct group_svc *s, struct group_offsets_op *op)
{
	struct state_op *x = (struct state_op *)op;
	struct owned_group *o = strmap_get(&s->owned, op->group_id);
	if (op->rc)
		log_warn("group %s: loading its committed offsets and members failed (%s); "
			 "OffsetFetch reads them from the store anyway, members rejoin",
			 op->group_id, sl_strerror(op->rc));
	if (o && o->state == OWN_LOADING && o->epoch == op->epoch) {
		if (x->loaded_count == 1)
			state_restore(s, &x->loaded[0]);
		o->state = OWN_READY;
		log_info("group %s: coordinated here at lease epoch %" PRId64, op->group_id,
			 o->epoch);
	}
	park_wake(s, op->group_id, -1);
	meta_group_states_free(x->loaded, x->loaded_count);
	free((char *)op->group_id);
	free(x);
}

/* The lease is held at epoch: load the group (its stored membership, and
 * on a shared store its offsets; in order with its store ops), then
 * serve it. */
static void group_gained(struct group_svc *s, const char *id, struct owned_group *o,
			 int64_t epoch)
{
	o->epoch = epoch;
	o->state = OWN_LOADING;
	struct state_op *x = calloc(1, sizeof *x);
	if (x && (x->op.group_id = strdup(id))) {
		x->op.kind = OP_LOAD;
		x->op.done = load_done;
		if (store_enqueue(s, &x->op) == 0)
			return;
	}
	if (x)
		free((char *)x->op.group_id);
	free(x);
	o->state = OWN_READY; /* out of memory: serve it unloaded */
}

/* ---- storing groups' membership ---- */

static void state_free(struct state_op *x)
{
	free(x->st.protocol_type);
	free(x->st.protocol_name);
	free(x->st.leader_id);
	free(x->st.members);
	free(x->static_member);
	free((char *)x->op.group_id);
	free(x);
}

static void state_done(struct group_svc *s, struct group_offsets_op *op)
{
	if (op->rc == SL_EBUSY)
		log_info("group %s: membership not stored: another agent coordinates it now",
			 op->group_id);
	else if (op->rc)
		log_warn("group %s: storing its membership failed (%s); a new coordinator "
			 "would make members rejoin", op->group_id, sl_strerror(op->rc));
	state_free((struct state_op *)op);
}

/* The SyncGroup answer for a store outcome, as Kafka's storeGroup maps
 * its append's error: a fenced write (another agent holds the lease:
 * NOT_LEADER_OR_FOLLOWER) and a local storage failure
 * (KAFKA_STORAGE_ERROR) are NOT_COORDINATOR, a timeout REBALANCE_IN_PROGRESS,
 * a record too large UNKNOWN_SERVER_ERROR, and a store that cannot take
 * the write now (NOT_ENOUGH_REPLICAS; out of memory here)
 * COORDINATOR_NOT_AVAILABLE. A store without membership records has
 * nothing to make durable. */
static int16_t persist_error(int rc)
{
	switch (rc) {
	case 0:
	case SL_EUNSUPPORTED:
		return KERR_NONE;
	case SL_EBUSY:
	case SL_EIO:
	case SL_ECORRUPT:
		return KERR_NOT_COORDINATOR;
	case SL_ETIMEDOUT:
		return KERR_REBALANCE_IN_PROGRESS;
	case SL_ELIMIT:
		return KERR_UNKNOWN_SERVER_ERROR;
	default:
		return KERR_COORDINATOR_NOT_AVAILABLE;
	}
}

/* A PERSIST's outcome to the coordinator, which answers the requests
 * waiting for it (into s->effects: the caller performs them). */
static void persist_outcome(struct group_svc *s, const char *group_id, int32_t generation,
			    const char *static_member, int16_t err)
{
	if (static_member)
		coord_static_persist_done(s->coord, now_ms(), KSTR(group_id), KSTR(static_member),
					  err, &s->effects);
	else
		coord_persist_done(s->coord, now_ms(), KSTR(group_id), generation, err,
				   &s->effects);
}

/* A completed generation's write (or a static member's new id) is
 * through: its SyncGroups (its JoinGroup) hear how. */
static void persist_done(struct group_svc *s, struct group_offsets_op *op)
{
	struct state_op *x = (struct state_op *)op;
	int16_t err = persist_error(op->rc);
	if (err && x->static_member)
		log_warn("group %s: static member %s not stored (%s): its JoinGroup is answered "
			 "%s and its old id restored", op->group_id, x->static_member,
			 sl_strerror(op->rc), kerr_name(err));
	else if (err)
		log_warn("group %s: generation %" PRId32 " not stored (%s): its SyncGroups are "
			 "answered %s and the group rebalances", op->group_id, x->st.generation,
			 sl_strerror(op->rc), kerr_name(err));
	if (!s->stopped) {
		persist_outcome(s, op->group_id, x->st.generation, x->static_member, err);
		perform_effects(s);
	}
	state_free(x);
}

/* A COORD_EFFECT_PERSIST as a store op (copied: the effect goes with its
 * list); NULL on out-of-memory. */
static struct group_offsets_op *persist_make(const struct coord_effect *f)
{
	struct state_op *x = calloc(1, sizeof *x);
	if (!x)
		return NULL;
	x->st.group_id = strdup(f->group_id);
	x->st.generation = f->generation_id;
	x->st.protocol_type = f->protocol_type ? strdup(f->protocol_type) : NULL;
	x->st.protocol_name = f->protocol_name ? strdup(f->protocol_name) : NULL;
	x->st.leader_id = f->leader_id ? strdup(f->leader_id) : NULL;
	x->st.members = malloc(f->members_record_len ? f->members_record_len : 1);
	x->st.members_len = f->members_record_len;
	x->static_member = f->member_id ? strdup(f->member_id) : NULL;
	x->op.group_id = x->st.group_id;
	x->op.kind = OP_STATE;
	x->op.done = persist_done;
	if (!x->st.group_id || (f->protocol_type && !x->st.protocol_type) ||
	    (f->protocol_name && !x->st.protocol_name) || (f->leader_id && !x->st.leader_id) ||
	    !x->st.members || (f->member_id && !x->static_member)) {
		state_free(x);
		return NULL;
	}
	if (f->members_record_len)
		memcpy(x->st.members, f->members_record, f->members_record_len);
	return &x->op;
}

/* Through the offsets queue, in order with the group's other writes and
 * fenced by its lease like them. */
static void persist_queue(struct group_svc *s, struct group_offsets_op *op)
{
	if (store_enqueue(s, op) != 0) {
		op->rc = SL_ENOMEM;
		persist_done(s, op);
	}
}

/* The group's membership as it is now, queued for the store. */
static int state_queue(struct group_svc *s, const struct coord_group *g)
{
	struct state_op *x = calloc(1, sizeof *x);
	struct kbuf b;
	kbuf_init(&b);
	if (!x)
		return SL_ENOMEM;
	coord_group_encode_members(g, &b);
	x->st.group_id = strdup(g->group_id);
	x->st.generation = g->generation_id;
	x->st.protocol_type = g->protocol_type ? strdup(g->protocol_type) : NULL;
	x->st.protocol_name = g->protocol_name ? strdup(g->protocol_name) : NULL;
	x->st.leader_id = g->leader_id ? strdup(g->leader_id) : NULL;
	x->st.members = b.data;
	x->st.members_len = b.len;
	x->op.group_id = x->st.group_id;
	x->op.kind = OP_STATE;
	x->op.done = state_done;
	if (b.oom || !x->st.group_id || (g->protocol_type && !x->st.protocol_type) ||
	    (g->protocol_name && !x->st.protocol_name) || (g->leader_id && !x->st.leader_id) ||
	    store_enqueue(s, &x->op) != 0) {
		x->op.rc = SL_ENOMEM;
		state_done(s, &x->op);
		return SL_ENOMEM;
	}
	return 0;
}

static void state_scan_group(void *arg, const struct coord_group *g)
{
	struct group_svc *s = arg;
	uint64_t *v = strmap_get(&s->persisted, g->group_id);
	if ((v ? *v : 0) == g->store_version)
		return;
	if (!v && (!(v = malloc(sizeof *v)) || strmap_put(&s->persisted, g->group_id, v) != 0)) {
		free(v);
		return;
	}
	*v = g->store_version;
	state_queue(s, g);
}

/* Queue a store of every group whose membership changed since it was
 * last queued (loaded and restored groups start at version 0). */
static void state_scan(struct group_svc *s)
{
	s->store_seen = coord_store_changes(s->coord);
	if (s->stopped)
		return;
	coord_groups_each(s->coord, state_scan_group, s);
}

/* The group leaves memory: what was queued for it no longer counts. */
static void state_forget(struct group_svc *s, const char *id)
{
	free(strmap_del(&s->persisted, id));
}

/* ---- requests parked while a group loads ---- */

int group_svc_park(struct group_svc *s, kstr group_id, int64_t wait_ms, struct group_park *p)
{
	if (s->stopped)
		return SL_EBUSY;
	if (!kstr_copy(group_id, p->group_id, sizeof p->group_id))
		return SL_EINVAL;
	p->deadline_ms = now_ms() + wait_ms;
	p->next = s->parked;
	s->parked = p;
	return 0;
}

/* Resume the parked requests of id (NULL: every one), or those whose
 * wait ran out by now (now >= 0). A resumed request may park again: the
 * ones due are taken off the list before any resumes. */
static void park_wake(struct group_svc *s, const char *id, int64_t now)
{
	struct group_park *due = NULL, **pp = &s->parked;
	while (*pp) {
		struct group_park *p = *pp;
		bool wake = now >= 0 ? now >= p->deadline_ms : !id || strcmp(p->group_id, id) == 0;
		if (!wake) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		p->next = due;
		due = p;
	}
	while (due) {
		struct group_park *p = due;
		due = p->next;
		p->next = NULL;
		p->resume(p);
	}
}

static void on_group_lease(void *arg, const char *name, bool held, int64_t epoch, int32_t holder)
{
	struct group_svc *s = arg;
	const char *id = name + strlen(META_LEASE_GROUP_PREFIX);
	struct owned_group *o = strmap_get(&s->owned, id);
	if (!o || s->stopped)
		return;
	if (held && o->state != OWN_ACQUIRING && o->epoch == epoch)
		return;
	if (o->state != OWN_ACQUIRING) {
		/* Lost, or lost and taken again: what this agent knew of the
		 * group may be stale either way. */
		log_info("group %s: lease lost (held by node %" PRId32 "); unloaded", id, holder);
		group_unload(s, id);
		o->state = OWN_ACQUIRING;
		o->epoch = 0;
	}
	if (held)
		group_gained(s, id, o, epoch);
	/* Held (ready, or loading: they park again until load_done), or
	 * known to be another's: the waiting requests ask again. */
	park_wake(s, id, -1);
}

int16_t group_svc_acquire(struct group_svc *s, kstr group_id)
{
	if (!s->cfg.leases)
		return KERR_NONE;
	char id[COORD_GROUP_ID_BYTES_MAX + 1], name[META_LEASE_NAME_BYTES];
	if (!kstr_copy(group_id, id, sizeof id) || strlen(id) != (size_t)group_id.len ||
	    !meta_lease_group_name(id, name))
		return KERR_INVALID_GROUP_ID;
	struct owned_group *o = strmap_get(&s->owned, id);
	if (!o) {
		o = calloc(1, sizeof *o);
		if (!o || strmap_put(&s->owned, id, o) != 0) {
			free(o);
			return KERR_COORDINATOR_NOT_AVAILABLE;
		}
		o->state = OWN_ACQUIRING;
		if (lease_want(s->cfg.leases, name, on_group_lease, s) != 0) {
			free(strmap_del(&s->owned, id));
			return KERR_COORDINATOR_NOT_AVAILABLE;
		}
		int64_t epoch;
		if (lease_held(s->cfg.leases, name, &epoch))
			group_gained(s, id, o, epoch);
	}
	o->last_used_ms = now_ms();
	if (o->state == OWN_READY)
		return KERR_NONE;
	int32_t holder;
	if (o->state == OWN_ACQUIRING && lease_known(s->cfg.leases, name, &holder) && holder >= 0)
		return KERR_NOT_COORDINATOR; /* another live agent holds it */
	return KERR_COORDINATOR_LOAD_IN_PROGRESS;
}

struct own_check_arg {
	struct group_svc *s;
	int64_t now;
	char **ids;
	size_t count, cap;
};

static void own_check_each(void *arg, const char *id, void *value)
{
	struct own_check_arg *x = arg;
	struct group_svc *s = x->s;
	const struct owned_group *o = value;
	const struct coord_group *g = coord_group_find(s->coord, KSTR(id));
	const struct stored_group *sg = stored_get(s, id);
	bool moved = s->cfg.placed_here && !s->cfg.placed_here(s->cfg.placed_arg, id);
	/* An Empty group without offsets stays until forget_sweep deletes
	 * its stored membership (unloaded earlier, that record would stay
	 * behind: nobody here would forget it). */
	bool idle = x->now - o->last_used_ms > s->cfg.idle_ms &&
		    (!g || (g->member_count == 0 && g->pending_count == 0 &&
			    !(g->generation_id > 0 && empty_without_offsets(s, g)))) &&
		    (!sg || sg->ops == 0);
	if (!moved && !idle)
		return;
	if (array_grow(&x->ids, &x->cap, x->count, sizeof *x->ids, 16) != 0)
		return;
	if ((x->ids[x->count] = strdup(id)))
		x->count++;
}

/* Groups placement moved elsewhere, and groups nobody asked about for
 * cfg.idle_ms (SL_GROUP_LEASE_IDLE_MS), are unloaded and their leases released (the
 * new coordinator takes a released lease at once). */
static void own_check(struct group_svc *s, int64_t now)
{
	struct own_check_arg x = { s, now, NULL, 0, 0 };
	strmap_each(&s->owned, own_check_each, &x);
	for (size_t i = 0; i < x.count; i++) {
		char name[META_LEASE_NAME_BYTES];
		struct owned_group *o = strmap_del(&s->owned, x.ids[i]);
		if (o && o->state != OWN_ACQUIRING)
			log_info("group %s: released (%s)", x.ids[i],
				 s->cfg.placed_here && !s->cfg.placed_here(s->cfg.placed_arg, x.ids[i])
					 ? "placed on another agent now" : "idle");
		group_unload(s, x.ids[i]);
		if (meta_lease_group_name(x.ids[i], name))
			lease_drop(s->cfg.leases, name);
		free(o);
		park_wake(s, x.ids[i], -1);
		free(x.ids[i]);
	}
	free(x.ids);
}

/* The groups with stored offsets, once, at start (a GROUP BY scan). */
static void stored_load(struct group_svc *s)
{
	struct meta_group_summary *g = NULL;
	size_t n = 0;
	int rc = meta_group_list(s->meta, &g, &n);
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

int group_svc_start(uv_loop_t *loop, struct meta *meta, const struct group_svc_config *cfg,
		    struct group_svc **out)
{
	struct group_svc *s = calloc(1, sizeof *s);
	if (!s)
		return SL_ENOMEM;
	s->loop = loop;
	s->meta = meta;
	s->cfg = *cfg;
	if (s->cfg.idle_ms <= 0)
		s->cfg.idle_ms = SL_GROUP_LEASE_IDLE_MS;
	if (s->cfg.empty_forget_ms <= 0)
		s->cfg.empty_forget_ms = SL_GROUP_EMPTY_FORGET_MS;
	/* Set once: store_after also runs without the pool (failed starts). */
	for (size_t i = 0; i < META_OFFSETS_LANES_MAX; i++) {
		s->lanes[i].s = s;
		s->lanes[i].work.data = &s->lanes[i];
	}
	struct coord_config cc;
	coord_config_default(&cc);
	cc.initial_rebalance_delay_ms = cfg->initial_rebalance_delay_ms;
	/* Past the longest session timeout a member may have, a group
	 * whose lease nobody took (no request reached any agent) has no
	 * member left by Kafka's rules. */
	s->abandoned_ms = s->cfg.empty_forget_ms > cc.session_timeout_max_ms
				  ? s->cfg.empty_forget_ms : cc.session_timeout_max_ms;
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
	strmap_init(&s->owned);
	strmap_init(&s->persisted);
	stored_load(s);
	if (cfg->leases && lease_want(cfg->leases, JOB_OFFSETS_RETENTION, NULL, NULL) != 0)
		log_warn("groups: cannot ask for the offsets retention lease; this agent will not "
			 "sweep");
	uv_timer_init(loop, &s->timer);
	s->timer.data = s;
	uv_timer_init(loop, &s->deadline_timer);
	s->deadline_timer.data = s;
	s->next_sweep_ms = now_ms() + GROUPS_SWEEP_MS;
	uv_timer_start(&s->timer, on_timer, GROUPS_TICK_MS, GROUPS_TICK_MS);
	*out = s;
	return 0;
}

void group_svc_shutdown(struct group_svc *s)
{
	if (!s || s->stopped)
		return;
	s->stopped = true;
	coord_shutdown(s->coord, &s->effects);
	perform_effects(s);
	park_wake(s, NULL, -1); /* they are answered: parking is refused now */
	uv_timer_stop(&s->timer);
	uv_close((uv_handle_t *)&s->timer, NULL);
	uv_timer_stop(&s->deadline_timer);
	uv_close((uv_handle_t *)&s->deadline_timer, NULL);
	log_info("groups: %" PRIu64 " offset commit requests in %" PRIu64 " store transactions",
		 s->commit_requests, s->commit_transactions);
}

static void free_stored(void *arg, const char *key, void *value)
{
	free(value);
}

void group_svc_free(struct group_svc *s)
{
	if (!s)
		return;
	coord_effects_free(&s->effects);
	coord_free(s->coord);
	strmap_each(&s->stored, free_stored, NULL);
	strmap_free(&s->stored);
	strmap_each(&s->owned, free_stored, NULL);
	strmap_free(&s->owned);
	strmap_each(&s->persisted, free_stored, NULL);
	strmap_free(&s->persisted);
	free(s);
}

bool group_svc_running(const struct group_svc *s)
{
	return s && !s->stopped;
}

/* ---- reading groups ---- */

const struct coord_group *group_svc_group_find(const struct group_svc *s, kstr group_id)
{
	return coord_group_find(s->coord, group_id);
}

bool group_svc_has_offsets(const struct group_svc *s, const char *group_id)
{
	return stored_has(s, group_id);
}

bool group_svc_store_shared(const struct group_svc *s)
{
	return s->cfg.self != NULL;
}

size_t group_svc_group_count_max(const struct group_svc *s)
{
	return coord_group_count(s->coord) + s->stored.count;
}

struct groups_each_arg {
	const struct group_svc *s;
	void (*fn)(void *arg, const char *group_id, const char *state, const char *protocol_type);
	void *arg;
};

static void each_in_memory(void *arg, const struct coord_group *g)
{
	struct groups_each_arg *e = arg;
	e->fn(e->arg, g->group_id, coord_state_name(g->state), g->protocol_type);
}

static void each_stored(void *arg, const char *id, void *value)
{
	struct groups_each_arg *e = arg;
	const struct stored_group *g = value;
	if (g->last_commit_ms >= 0 && !coord_group_find(e->s->coord, KSTR(id)))
		e->fn(e->arg, id, "Empty", "consumer");
}

void group_svc_groups_each(const struct group_svc *s,
			   void (*fn)(void *arg, const char *group_id, const char *state,
				      const char *protocol_type),
			   void *arg)
{
	struct groups_each_arg e = { s, fn, arg };
	coord_groups_each(s->coord, each_in_memory, &e);
	/* Groups known only by their offsets (e.g. after a restart). */
	strmap_each(&s->stored, each_stored, &e);
}

/* ---- deleting groups and offsets ---- */

int16_t group_svc_group_delete(struct group_svc *s, const char *group_id,
			       struct group_offsets_op *op, bool *queued)
{
	kstr id = KSTR(group_id);
	*queued = false;
	bool in_memory = coord_group_find(s->coord, id) != NULL;
	int16_t err = coord_group_delete(s->coord, id);
	if (err)
		return err;
	state_forget(s, group_id);
	/* Nothing stored, nothing on its way to the store. A group in
	 * memory may have its membership stored: the delete goes too. */
	if (!stored_get(s, group_id) && !in_memory)
		return KERR_GROUP_ID_NOT_FOUND;
	/* Through the store queue, after any commit of the group already
	 * queued, so none of those brings offsets back. */
	op->group_id = group_id;
	op->tids = NULL;
	op->partitions = NULL;
	op->n = 0;
	if (group_svc_offsets_delete(s, op) != 0)
		return KERR_COORDINATOR_NOT_AVAILABLE;
	*queued = true;
	return KERR_NONE;
}

int16_t group_svc_offsets_deletable(const struct group_svc *s, const char *group_id)
{
	const struct coord_group *g = coord_group_find(s->coord, KSTR(group_id));
	if (!g && !stored_get(s, group_id))
		return KERR_GROUP_ID_NOT_FOUND;
	bool busy = g && g->state != COORD_EMPTY;
	if (busy && (!g->protocol_type || strcmp(g->protocol_type, "consumer") != 0))
		return KERR_NON_EMPTY_GROUP;
	return KERR_NONE;
}

/* The topics a consumer-protocol member subscribes to (its metadata for
 * the selected protocol: int16 version, then an array of strings). */
bool group_svc_topic_subscribed(const struct group_svc *s, const char *group_id, kstr topic)
{
	const struct coord_group *g = coord_group_find(s->coord, KSTR(group_id));
	if (!g || g->state == COORD_EMPTY)
		return false;
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
			const uint8_t *name = kreader_take(&r, (size_t)len);
			if (name && topic.len == len && memcmp(name, topic.ptr, (size_t)len) == 0)
				return true;
		}
	}
	return false;
}
