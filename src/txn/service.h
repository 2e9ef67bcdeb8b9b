/* service.h — the transaction service: drives the transaction
 * coordinator (coordinator.h, pure logic) from the event loop and keeps
 * its records in the metadata store (docs/transactions.md, step 4).
 *
 * It owns: the coordinator; loading the stored records at start
 * (meta_txn_load on the pool, requests answered
 * COORDINATOR_LOAD_IN_PROGRESS meanwhile, Prepare* records handed their
 * markers again when it is done); performing the coordinator's effects —
 * PERSIST and DELETE as meta_txn_persist / meta_txn_delete at the
 * version this service last read or wrote (one pool job at a time, in
 * order, so the writes of an id land in the order the coordinator made
 * them; a version refused, SL_EBUSY — another agent's write, or one of
 * ours whose outcome was lost — drops the id, which is then read again
 * from the store alone, meta_txn_load_one, its requests answered
 * COORDINATOR_LOAD_IN_PROGRESS meanwhile), MARKERS through the caller's marker writer (or
 * meta_txn_settle for a transaction that has groups and no partition
 * left), ANSWER
 * through the caller's answer callback; and the tick timer (timeouts,
 * id expiry, retries).
 *
 * It does not know the agent: the marker writer, the producer id
 * allocator and the answers are callbacks, so the agent (or a test)
 * plugs in the writer's marker path and its producer id block.
 *
 * Fenced mode (cluster: several agents on one store): nothing is loaded
 * at start; the caller adopts an id once it holds the id's lease
 * (txn_svc_adopt: the id is read from the store, its requests answered
 * COORDINATOR_LOAD_IN_PROGRESS meanwhile, a Prepare* record gets its
 * markers again, an Ongoing one times out here) and releases it when
 * the lease is lost or given up (txn_svc_release). Every write of an
 * id is fenced by its lease's epoch in the store transaction, so a
 * deposed coordinator's late write is refused (SL_EBUSY); requests for
 * an id not adopted are answered NOT_COORDINATOR.
 *
 * Threads: every function is called on the loop thread, and every
 * callback fires there; only the store calls run on a pool thread.
 *
 * Lifetime: txn_svc_start, requests until txn_svc_shutdown (held
 * requests answered NOT_COORDINATOR, no new store write or marker
 * started), txn_svc_free once no job is in flight (txn_svc_idle) or the
 * loop has stopped. */
#ifndef SLUICE_TXN_SERVICE_H
#define SLUICE_TXN_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "meta/meta.h"
#include "txn/coordinator.h"

struct txn_svc;

struct txn_svc_config {
	/* The coordinator's (alloc_producer_id must be set: it is called on
	 * the loop and must not block — the agent's producer id block). */
	struct txn_config coord;
	/* The epoch every write is fenced by when not fenced mode: 0, a
	 * store this agent claims. */
	int64_t coord_epoch;
	/* Fenced mode (above): ids are served once adopted, each write
	 * fenced by the epoch it was adopted at. */
	bool fenced;
	int64_t tick_ms;                /* <= 0: 100 */
	/* Which stored ids this agent loads (NULL: all). Runs on the pool
	 * thread of the load. */
	meta_txn_want_fn *want;
	void *want_arg;
	/* Answer request e->req (e: TXN_EFFECT_ANSWER, valid during the
	 * call). Fires once per request handed in, possibly before the call
	 * that handed it in returns. */
	void (*answer)(void *arg, const struct txn_effect *e);
	/* Write the COMMIT (e->commit) or ABORT markers of transaction
	 * e->record.txn_seq of e->transactional_id, at (e->record.producer_id,
	 * e->record.producer_epoch), into each of e->record.partitions (e is
	 * valid during the call; copy what must outlive it); then, later and
	 * never from within this call, txn_svc_markers_done. Returns 0, or a
	 * negative SL_E* code when nothing was started (retried after the
	 * coordinator's backoff). NULL: every marker write fails (the service
	 * runs, transactions cannot complete). */
	int (*write_markers)(void *arg, const struct txn_effect *e);
	void *arg;
	/* Wall clock in ms (NULL: clock_wall_ms; tests move time). */
	int64_t (*now_ms)(void *arg);
};

/* Create the coordinator, start loading the stored records (a pool
 * job) and the tick timer. meta must outlive the service. 0, SL_EINVAL
 * (no answer callback or producer id allocator), SL_ENOMEM. */
int txn_svc_start(uv_loop_t *loop, struct meta *meta, const struct txn_svc_config *cfg,
		  struct txn_svc **out);
/* Answer every held request NOT_COORDINATOR, stop the timer; store jobs
 * in flight finish, nothing new starts. NULL or again: nothing. */
void txn_svc_shutdown(struct txn_svc *s);
/* No store job queued or running. */
bool txn_svc_idle(const struct txn_svc *s);
/* After txn_svc_shutdown, once idle (or the loop stopped). */
void txn_svc_free(struct txn_svc *s);
/* Loaded (requests are served, not answered COORDINATOR_LOAD_IN_PROGRESS). */
bool txn_svc_loaded(const struct txn_svc *s);

/* The requests (args as coordinator.h); req is the caller's, handed back
 * in the answer. */
void txn_svc_init_producer_id(struct txn_svc *s, const struct txn_init_args *a, void *req);
void txn_svc_add_partitions(struct txn_svc *s, const struct txn_add_args *a, void *req);
void txn_svc_add_offsets(struct txn_svc *s, const struct txn_add_offsets_args *a, void *req);
void txn_svc_end(struct txn_svc *s, const struct txn_end_args *a, void *req);
/* Answered at once (coordinator.h): errors has a->partition_count slots. */
void txn_svc_verify_partitions(const struct txn_svc *s, const struct txn_add_args *a,
			       int16_t *errors);
int16_t txn_svc_offset_commit(struct txn_svc *s, const struct txn_offset_commit_args *a);
bool txn_svc_offset_pending(const struct txn_svc *s, kstr group_id, struct txn_tp tp);

/* The markers write_markers started are in (err KERR_NONE), failed (any
 * other Kafka error: written again after the backoff) or this agent lost
 * the id (NOT_COORDINATOR). */
void txn_svc_markers_done(struct txn_svc *s, const char *transactional_id, int64_t txn_seq,
			  int16_t err);

/* Fenced mode: serve transactional_id from now on, its writes fenced
 * by epoch (> 0, the id's lease's): it is read from the store first.
 * Adopted again at another epoch (the lease was lost and taken back): it
 * is released and read again. 0; SL_EINVAL (not fenced mode, epoch <= 0,
 * a bad id), SL_EBUSY (shut down), SL_ENOMEM (not adopted). */
int txn_svc_adopt(struct txn_svc *s, const char *transactional_id, int64_t epoch);
/* Fenced mode: stop serving it (the lease is lost or given up): held
 * requests answered NOT_COORDINATOR, what is in memory dropped, writes
 * in flight finish (fenced) with their outcome ignored. Not adopted:
 * nothing. */
void txn_svc_release(struct txn_svc *s, const char *transactional_id);
/* Fenced mode: whether the id is adopted; *epoch (may be NULL) its
 * lease epoch, 0 when not. */
bool txn_svc_adopted(const struct txn_svc *s, kstr transactional_id, int64_t *epoch);

/* The coordinator, for reading (DescribeTransactions, ListTransactions):
 * views valid until the next call into the service. */
const struct txn_coordinator *txn_svc_coordinator(const struct txn_svc *s);
/* May the coordinator's view of transactional_id be read now (a null
 * id: of every id, ListTransactions)? KERR_NONE;
 * COORDINATOR_NOT_AVAILABLE after txn_svc_shutdown (Kafka's inactive
 * coordinator); COORDINATOR_LOAD_IN_PROGRESS while the stored records,
 * or this id's, are being read. */
int16_t txn_svc_read_status(const struct txn_svc *s, kstr transactional_id);

#endif
