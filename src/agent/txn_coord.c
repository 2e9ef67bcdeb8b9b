/* txn_coord.c — the transaction coordinator in the agent (issue 14):
 * starts the transaction service (txn/service.h) with the agent's
 * producer id block, its marker write path (agent_txn_write_markers) and
 * the handlers' answers (struct agent_txn_req).
 *
 * On a store this agent claims (SQLite) it coordinates every id. On a
 * shared store (cluster mode) it coordinates the ids placement puts on
 * it (rendezvous over the live agents, as groups: FindCoordinator key
 * type 1), each only while it holds the id's lease "txn/<id>"
 * (cluster/lease.h): the first request for an id takes the lease, then
 * the service adopts the id at the lease's epoch (reads its record;
 * every write of it fenced by that epoch); a lost lease releases it. An
 * agent taking over must also finish what a dead coordinator left
 * without waiting for its producer: a scan of the stored ids, whenever
 * the live agents change and every TXN_SCAN_MS, takes the lease of each
 * id placed here whose transaction is open (Ongoing: it times out here;
 * PrepareCommit/PrepareAbort: its markers are written again). Ids placed
 * elsewhere now, and idle ones without an open transaction, are given
 * up. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/grow.h"
#include "base/limits.h"
#include "base/log.h"
#include "base/strmap.h"
#include "cluster/lease.h"
#include "cluster/placement.h"
#include "proto/kerr.h"
#include "txn/service.h"

/* As the idempotent producers' block (api/admin.c): ids only need to be
 * unique, a block is taken from the store when this one runs out. */
#define TXN_PRODUCER_ID_BLOCK 1000

struct pid_refill {
	struct agent_job job;
	int64_t first;
	int rc;
};

static void refill_run(struct agent_job *job)
{
	struct pid_refill *r = (struct pid_refill *)job;
	r->rc = meta_producer_ids_alloc(job->a->meta, TXN_PRODUCER_ID_BLOCK, &r->first);
}

static void refill_done(struct agent_job *job)
{
	struct pid_refill *r = (struct pid_refill *)job;
	struct agent *a = job->a;
	a->txn_pid_refilling = false;
	if (r->rc)
		log_error("txn: allocating producer ids: %s", sl_strerror(r->rc));
	else if (a->producer_id_next >= a->producer_id_end) {
		a->producer_id_next = r->first;
		a->producer_id_end = r->first + TXN_PRODUCER_ID_BLOCK;
	}
	free(r);
}

/* Take a block from the store unless one is being taken. */
static void refill(struct agent *a)
{
	if (a->txn_pid_refilling)
		return;
	struct pid_refill *r = calloc(1, sizeof *r);
	if (!r)
		return;
	r->job.run = refill_run;
	r->job.done = refill_done;
	a->txn_pid_refilling = true;
	agent_job_submit(a, &r->job);
}

/* The coordinator's allocator: from the agent's block; when it is empty
 * the request answers COORDINATOR_LOAD_IN_PROGRESS (Kafka's answer while
 * its id manager fetches a block) and the client's retry finds the new
 * block. */
static int alloc_pid(void *arg, int64_t *out)
{
	struct agent *a = arg;
	if (a->producer_id_next < a->producer_id_end) {
		*out = a->producer_id_next++;
		return 0;
	}
	refill(a);
	return SL_EBUSY;
}

static void answer(void *arg, const struct txn_effect *e)
{
	struct agent_txn_req *r = e->req;
	(void)arg;
	r->answered(r, e);
}

struct markers_call {
	struct agent *a;
	int64_t txn_seq;
	char id[];
};

static void markers_done(void *arg, int err)
{
	struct markers_call *m = arg;
	if (err)
		log_warn("txn: markers of %s: %s (writing them again)", m->id, sl_strerror(err));
	if (m->a->txns)
		txn_svc_markers_done(m->a->txns, m->id, m->txn_seq,
				     err ? KERR_KAFKA_STORAGE_ERROR : KERR_NONE);
	free(m);
}

static int write_markers(void *arg, const struct txn_effect *e)
{
	struct agent *a = arg;
	size_t len = strlen(e->transactional_id);
	struct markers_call *m = malloc(sizeof *m + len + 1);
	if (!m)
		return SL_ENOMEM;
	m->a = a;
	m->txn_seq = e->record.txn_seq;
	memcpy(m->id, e->transactional_id, len + 1);
	/* Alone, the coordinator epoch is the agents epoch (0), as the
	 * leader epoch is; in a cluster the id's lease epoch. Markers need
	 * no fence: the store applies one only while the record it ends is
	 * in Prepare*, so a deposed coordinator's copy is refused or is the
	 * same marker. */
	int64_t epoch = 0;
	txn_svc_adopted(a->txns, (kstr){ e->transactional_id, (int32_t)len }, &epoch);
	int32_t coordinator_epoch = epoch > INT32_MAX ? INT32_MAX : (int32_t)epoch;
	int rc = agent_txn_write_markers(a, e->transactional_id, e->record.producer_id,
					 e->record.producer_epoch, coordinator_epoch,
					 e->record.txn_seq, e->commit,
					 e->record.partitions, (size_t)e->record.partition_count,
					 markers_done, m);
	if (rc)
		free(m);
	return rc;
}

/* ---------------------------------------------------------------- cluster mode */

/* How often the stored ids are scanned for open transactions placed
 * here besides each change of the live agents (a safety net: a lease
 * that ran out without the agent set changing), and the own check. */
#define TXN_SCAN_MS 10000
#define TXN_OWN_CHECK_MS 1000

/* An id this agent coordinates or is taking. */
struct owned_id {
	int64_t last_used_ms;   /* the last request (or scan) for it */
	bool held;              /* its lease is held and the id adopted */
};

struct txn_owner {
	struct agent *a;
	struct strmap ids;      /* id -> struct owned_id */
	uv_timer_t timer;
	int32_t scanned_epoch;  /* the placement epoch of the last scan */
	int64_t next_scan_ms;
	bool scanning;
	bool stopped;
};

static bool placed_here(const struct agent *a, kstr id)
{
	return placement_is_coordinator(&a->placement, PLACEMENT_KEY_TRANSACTION, id,
					a->cfg.node_id);
}

static void on_txn_lease(void *arg, const char *name, bool held, int64_t epoch, int32_t holder)
{
	struct txn_owner *o = arg;
	const char *id = name + strlen(META_LEASE_TXN_PREFIX);
	struct owned_id *x = strmap_get(&o->ids, id);
	if (!x || o->stopped)
		return;
	if (held) {
		int rc = txn_svc_adopt(o->a->txns, id, epoch);
		x->held = rc == 0;
		if (rc)
			log_warn("txn %s: lease held but not adopted: %s", id, sl_strerror(rc));
		else
			log_info("txn %s: coordinated here at lease epoch %" PRId64, id, epoch);
	} else if (x->held) {
		log_info("txn %s: lease lost (held by node %" PRId32 ")", id, holder);
		txn_svc_release(o->a->txns, id);
		x->held = false;
	}
}

/* Want the id's lease (it is taken by the next sync). */
static struct owned_id *own(struct txn_owner *o, const char *id)
{
	struct owned_id *x = strmap_get(&o->ids, id);
	if (x)
		return x;
	char name[META_LEASE_NAME_BYTES];
	if (!meta_lease_txn_name(id, name) || !(x = calloc(1, sizeof *x)))
		return NULL;
	if (strmap_put(&o->ids, id, x) != 0) {
		free(x);
		return NULL;
	}
	if (lease_want(o->a->leases, name, on_txn_lease, o) != 0) {
		free(strmap_del(&o->ids, id));
		return NULL;
	}
	int64_t epoch;
	if (lease_held(o->a->leases, name, &epoch))
		on_txn_lease(o, name, true, epoch, o->a->cfg.node_id);
	return x;
}

/* Give the id up: released here, its lease released by the next sync. */
static void disown(struct txn_owner *o, const char *id)
{
	char name[META_LEASE_NAME_BYTES];
	struct owned_id *x = strmap_del(&o->ids, id);
	if (x && x->held)
		txn_svc_release(o->a->txns, id);
	if (meta_lease_txn_name(id, name))
		lease_drop(o->a->leases, name);
	free(x);
}

int16_t agent_txn_acquire(struct agent *a, kstr transactional_id)
{
	if (!a->txns)
		return KERR_COORDINATOR_NOT_AVAILABLE;
	struct txn_owner *o = a->txn_owner;
	char id[SL_TXN_ID_BYTES_MAX + 1];
	/* Alone every id is here; an id the coordinator refuses as such
	 * (empty, too long) gets its answer from it. */
	if (!o || transactional_id.len <= 0 || transactional_id.len > SL_TXN_ID_BYTES_MAX ||
	    memchr(transactional_id.ptr, 0, (size_t)transactional_id.len))
		return KERR_NONE;
	if (!placed_here(a, transactional_id))
		return KERR_NOT_COORDINATOR;
	memcpy(id, transactional_id.ptr, (size_t)transactional_id.len);
	id[transactional_id.len] = 0;
	struct owned_id *x = own(o, id);
	if (!x)
		return KERR_COORDINATOR_NOT_AVAILABLE;
	x->last_used_ms = clock_wall_ms();
	if (x->held)
		return KERR_NONE; /* the service answers LOAD_IN_PROGRESS while it reads */
	char name[META_LEASE_NAME_BYTES];
	int32_t holder;
	if (meta_lease_txn_name(id, name) && lease_known(a->leases, name, &holder) && holder >= 0)
		return KERR_NOT_COORDINATOR; /* another live agent holds it */
	return KERR_COORDINATOR_LOAD_IN_PROGRESS;
}

/* An id worth keeping: a transaction open or completing, or a write in
 * flight (giving it up then would only make the next owner redo it). */
static bool busy(const struct txn_meta *t)
{
	return t && (t->pending || t->markers_out || t->r.state == TXN_ONGOING ||
		     t->r.state == TXN_PREPARE_COMMIT || t->r.state == TXN_PREPARE_ABORT);
}

struct own_check {
	struct txn_owner *o;
	int64_t now;
	char **ids;
	size_t n, cap;
};

static void own_check_each(void *arg, const char *id, void *value)
{
	struct own_check *c = arg;
	const struct owned_id *x = value;
	struct agent *a = c->o->a;
	kstr k = KSTR(id);
	bool moved = !placed_here(a, k);
	bool idle = c->now - x->last_used_ms > SL_GROUP_LEASE_IDLE_MS &&
		    !busy(txn_find(txn_svc_coordinator(a->txns), k));
	if ((moved || idle) && array_grow(&c->ids, &c->cap, c->n, sizeof *c->ids, 16) == 0 &&
	    (c->ids[c->n] = strdup(id)))
		c->n++;
}

/* Ids placement moved elsewhere, and ids without an open transaction
 * nobody asked about for SL_GROUP_LEASE_IDLE_MS, are given up (the next
 * owner takes a released lease at its next sync). */
static void own_check(struct txn_owner *o, int64_t now)
{
	struct own_check c = { o, now, NULL, 0, 0 };
	strmap_each(&o->ids, own_check_each, &c);
	for (size_t i = 0; i < c.n; i++) {
		log_info("txn %s: given up (%s)", c.ids[i],
			 placed_here(o->a, KSTR(c.ids[i])) ? "idle" : "placed on another agent now");
		disown(o, c.ids[i]);
		free(c.ids[i]);
	}
	free(c.ids);
}

struct scan_job {
	struct agent_job job;
	struct txn_owner *o;
	struct meta_txn_row *rows;
	size_t n;
	int rc;
};

static void scan_run(struct agent_job *job)
{
	struct scan_job *j = (struct scan_job *)job;
	j->rc = meta_txn_open_list(job->a->meta, &j->rows, &j->n);
}

static void scan_done(struct agent_job *job)
{
	struct scan_job *j = (struct scan_job *)job;
	struct txn_owner *o = j->o;
	o->scanning = false;
	if (j->rc)
		log_warn("txn: scanning the stored transactional ids: %s", sl_strerror(j->rc));
	for (size_t i = 0; !j->rc && !o->stopped && i < j->n; i++) {
		const struct meta_txn_row *row = &j->rows[i];
		enum txn_state st = row->r.state;
		if (st != TXN_ONGOING && st != TXN_PREPARE_COMMIT && st != TXN_PREPARE_ABORT)
			continue;
		if (!placed_here(o->a, KSTR(row->transactional_id)) ||
		    strmap_get(&o->ids, row->transactional_id))
			continue;
		log_info("txn %s: %s, placed here: taking it over", row->transactional_id,
			 txn_state_name(st));
		struct owned_id *x = own(o, row->transactional_id);
		if (x)
			x->last_used_ms = clock_wall_ms();
	}
	meta_txn_rows_free(j->rows, j->n);
	free(j);
}

static void scan(struct txn_owner *o)
{
	struct scan_job *j = calloc(1, sizeof *j);
	if (!j)
		return;
	j->o = o;
	j->job.run = scan_run;
	j->job.done = scan_done;
	o->scanning = true;
	agent_job_submit(o->a, &j->job);
}

static void owner_tick(uv_timer_t *t)
{
	struct txn_owner *o = t->data;
	int64_t now = clock_wall_ms();
	own_check(o, now);
	if (!o->scanning && (o->scanned_epoch != o->a->placement.epoch || now >= o->next_scan_ms)) {
		o->scanned_epoch = o->a->placement.epoch;
		o->next_scan_ms = now + TXN_SCAN_MS;
		scan(o);
	}
}

static int owner_start(struct agent *a)
{
	struct txn_owner *o = calloc(1, sizeof *o);
	if (!o)
		return SL_ENOMEM;
	o->a = a;
	o->scanned_epoch = -1;
	strmap_init(&o->ids);
	uv_timer_init(a->loop, &o->timer);
	o->timer.data = o;
	uv_timer_start(&o->timer, owner_tick, TXN_OWN_CHECK_MS, TXN_OWN_CHECK_MS);
	a->txn_owner = o;
	return 0;
}

static void owner_free_each(void *arg, const char *key, void *value)
{
	(void)arg;
	(void)key;
	free(value);
}

/* ---------------------------------------------------------------- lifetime */

int agent_txn_start(struct agent *a)
{
	struct txn_svc_config cfg = { 0 };
	txn_config_default(&cfg.coord);
	cfg.coord.max_timeout_ms = a->cfg.transaction_max_timeout_ms;
	cfg.coord.alloc_producer_id = alloc_pid;
	cfg.coord.alloc_arg = a;
	cfg.answer = answer;
	cfg.write_markers = write_markers;
	cfg.arg = a;
	cfg.fenced = meta_shared(a->meta);
	/* A block ready before the first producer asks (librdkafka logs
	 * the retriable refusal as a warning). */
	if (a->producer_id_next >= a->producer_id_end)
		refill(a);
	int rc = txn_svc_start(a->loop, a->meta, &cfg, &a->txns);
	if (!rc && cfg.fenced)
		rc = owner_start(a);
	return rc;
}

/* The leases end with the agent's registry row (a clean stop
 * deregisters), so nothing is released one by one. */
void agent_txn_stop(struct agent *a)
{
	struct txn_owner *o = a->txn_owner;
	if (o && !o->stopped) {
		o->stopped = true;
		uv_timer_stop(&o->timer);
		uv_close((uv_handle_t *)&o->timer, NULL);
	}
	txn_svc_shutdown(a->txns);
}

void agent_txn_free(struct agent *a)
{
	struct txn_owner *o = a->txn_owner;
	if (o) {
		strmap_each(&o->ids, owner_free_each, NULL);
		strmap_free(&o->ids);
		free(o);
		a->txn_owner = NULL;
	}
	txn_svc_free(a->txns);
	a->txns = NULL;
}
