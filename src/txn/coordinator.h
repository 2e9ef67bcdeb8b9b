/* coordinator.h — the transaction coordinator as pure logic (issue 14).
 *
 * Per transactional id: Kafka 3.9's TransactionMetadata (producer id and
 * epoch, the previous ones, timeout, state, partitions and groups of the
 * current transaction, start and update times) with its states (Empty,
 * Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort,
 * Dead, PrepareEpochFence), its transitions and the checks and error
 * codes of Kafka's TransactionCoordinator, in Kafka's order: InitProducerId
 * (epoch bumps, KIP-360 recovery, producer id rotation at epoch
 * exhaustion, fencing an ongoing transaction), AddPartitionsToTxn (the
 * client form and the v4+ verify-only form), AddOffsetsToTxn, EndTxn,
 * the TxnOffsetCommit check, transaction timeouts and id expiry.
 *
 * No I/O and no clock: every call takes now_ms, *wall-clock*
 * milliseconds (transaction start times are persisted and compared by
 * whichever agent loads them), and returns "effects" for the caller to
 * perform:
 *  - TXN_EFFECT_PERSIST: make this record of the id durable, then call
 *    txn_persisted with the effect's write_id (at most one write per id is
 *    outstanding: Kafka's pending transition);
 *  - TXN_EFFECT_DELETE: remove the id (expiry; Kafka's tombstone), then
 *    txn_persisted;
 *  - TXN_EFFECT_MARKERS: write a COMMIT/ABORT marker at (producer id,
 *    epoch) into every listed partition and settle the listed groups'
 *    transactional offsets, for the transaction numbered txn_seq; then
 *    call txn_markers_done;
 *  - TXN_EFFECT_ANSWER: answer request req (the opaque pointer the caller
 *    handed in) with error (already mapped for the request's version) and,
 *    for InitProducerId, producer id and epoch.
 * Every request handed in is answered by exactly one ANSWER effect, now or
 * in a later call (txn_persisted, txn_markers_done, txn_tick,
 * txn_shutdown).
 *
 * EndTxn is answered once the Complete* state is durable (every marker
 * written), or, when that takes longer than config.end_answer_max_ms
 * after the Prepare* state became durable, at that point (the outcome is
 * decided and will be completed). Kafka answers right after Prepare*;
 * end_answer_max_ms = 0 does the same. Answering at Complete* means a
 * committed EndTxn implies the data is visible to read_committed readers,
 * and the client's next transaction does not meet CONCURRENT_TRANSACTIONS
 * (kafkajs does not retry it on EndTxn).
 *
 * Sluice's addition to Kafka's record: txn_seq, a number that grows each
 * time an id starts a transaction, carried by its markers, so that a
 * marker written for an earlier transaction can be recognised and
 * refused (the stale-marker hazard, KAFKA-17754's internal form).
 *
 * Out of memory: when an effect cannot be recorded, out->oom is set; the
 * caller treats the coordinator as lost (drops it, answers what it holds
 * with NOT_COORDINATOR by closing connections) and reloads from the store.
 * Views returned by txn_find / txn_each are valid until the next call that
 * changes the coordinator. Single-threaded. */
#ifndef SLUICE_TXN_COORDINATOR_H
#define SLUICE_TXN_COORDINATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

enum txn_state {
	TXN_EMPTY = 0,
	TXN_ONGOING = 1,
	TXN_PREPARE_COMMIT = 2,
	TXN_PREPARE_ABORT = 3,
	TXN_COMPLETE_COMMIT = 4,
	TXN_COMPLETE_ABORT = 5,
	TXN_DEAD = 6,
	TXN_PREPARE_EPOCH_FENCE = 7,
};
#define TXN_STATE_COUNT 8

/* Kafka's names ("Empty", "Ongoing", "PrepareCommit", ...), as
 * DescribeTransactions and ListTransactions carry them. */
const char *txn_state_name(enum txn_state s);
/* Exact (case-sensitive, as Kafka's TransactionState.fromName); -1 if
 * unknown. */
int txn_state_parse(kstr name);

/* Epochs at or past this are exhausted: the next InitProducerId rotates
 * to a new producer id (Kafka: Short.MaxValue - 1). */
#define TXN_EPOCH_EXHAUSTED 32766

struct txn_config {
	int32_t max_timeout_ms;         /* transaction.max.timeout.ms, 900000 */
	int64_t id_expiration_ms;       /* transactional.id.expiration.ms, 7 days */
	/* EndTxn answered at Complete*, or this long after Prepare* is
	 * durable at the latest; 0: at Prepare* (Kafka). Default 5000. */
	int64_t end_answer_max_ms;
	int64_t retry_backoff_ms;       /* failed marker or Complete* writes, 100 */
	int32_t ids_max;                /* <= 0: SL_TXN_IDS_MAX */
	/* New producer ids (a new transactional id, a rotation, a null id).
	 * Returns 0, or an error: the request gets
	 * COORDINATOR_LOAD_IN_PROGRESS and is retried by the client (Kafka's
	 * answer while a new id block is being fetched). */
	int (*alloc_producer_id)(void *arg, int64_t *out);
	void *alloc_arg;
};

/* Kafka's defaults; alloc_producer_id must be set by the caller. */
void txn_config_default(struct txn_config *c);

/* A partition, by the store's topic key. */
struct txn_tp {
	int64_t tid;
	int32_t partition;
};

/* The durable record of one transactional id (the store's row). Arrays
 * are sorted (partitions by tid then partition; groups by bytes) and
 * without duplicates. */
struct txn_record {
	int64_t producer_id;
	int64_t last_producer_id;
	int16_t producer_epoch;
	int16_t last_producer_epoch;
	int32_t timeout_ms;
	enum txn_state state;       /* never Dead nor PrepareEpochFence */
	int64_t txn_seq;
	int64_t start_ms;           /* -1: no transaction */
	int64_t update_ms;
	struct txn_tp *partitions;
	int32_t partition_count;
	char **groups;              /* AddOffsetsToTxn participants */
	int32_t group_count;
};

enum txn_req_kind {
	TXN_REQ_INIT_PRODUCER_ID,
	TXN_REQ_ADD_PARTITIONS,
	TXN_REQ_ADD_OFFSETS,
	TXN_REQ_END_TXN,
};

enum txn_effect_kind {
	TXN_EFFECT_PERSIST,
	TXN_EFFECT_DELETE,
	TXN_EFFECT_MARKERS,
	TXN_EFFECT_ANSWER,
};

struct txn_effect {
	enum txn_effect_kind kind;
	char *transactional_id;
	/* PERSIST, DELETE */
	uint64_t write_id;
	struct txn_record record;   /* PERSIST: what to store */
	/* MARKERS: record.producer_id/epoch, txn_seq, partitions, groups */
	bool commit;
	/* ANSWER */
	void *req;
	enum txn_req_kind req_kind;
	int16_t error;
	int64_t producer_id;        /* InitProducerId: -1 on error */
	int16_t producer_epoch;
};

struct txn_effects {
	struct txn_effect *v;
	size_t n, cap;
	bool oom;
	/* Fault injection for tests: > 0, the fail_after-th recording and
	 * every later one fail as on oom. */
	int32_t fail_after;
};

void txn_effects_init(struct txn_effects *e);
/* Drop the effects (after performing them); keeps the array. */
void txn_effects_reset(struct txn_effects *e);
void txn_effects_free(struct txn_effects *e);

/* In memory per id: the record plus what is in flight. */
struct txn_meta {
	char *transactional_id;
	struct txn_record r;
	bool pending;               /* a write is outstanding */
	enum txn_state pending_state; /* its target (PrepareEpochFence too) */
	uint64_t write_id;
	struct txn_record transit;  /* the record being written */
	bool has_failed_epoch_fence;
	bool fencing;               /* the outstanding write is a fence's abort */
	/* The request waiting for the outstanding write. */
	void *req;
	enum txn_req_kind req_kind;
	int16_t req_version;
	bool req_fence;             /* InitProducerId that fences: CONCURRENT_TRANSACTIONS */
	/* An EndTxn answered at Complete* (end_answer_max_ms). */
	void *end_req;
	int16_t end_req_version;
	int64_t end_answer_at_ms;
	/* Prepare*: markers handed out and not done; retry times (-1: none). */
	bool markers_out;
	int64_t markers_retry_at_ms;
	int64_t complete_retry_at_ms;
	/* TxnOffsetCommit partitions of this transaction, per group:
	 * parallel arrays, for OffsetFetch's require_stable. */
	char **offset_groups;       /* owned copies */
	struct txn_tp *offset_tps;
	int32_t offset_count;
	size_t offset_cap;
};

struct txn_coordinator;

/* Returns 0 or SL_ENOMEM. The config is copied. */
int txn_new(const struct txn_config *cfg, struct txn_coordinator **out);
/* Frees everything; requests still held are forgotten (txn_shutdown
 * first answers them). */
void txn_free(struct txn_coordinator *c);

/* Loading (an agent starting, or taking a coordinator over): between
 * txn_load_begin and txn_load_done every request is answered
 * COORDINATOR_LOAD_IN_PROGRESS; txn_load adds one stored record (state
 * Empty..CompleteAbort); txn_load_done resumes what was left half done:
 * PrepareCommit/PrepareAbort get their markers written again and
 * Complete* stored (takeover mid-commit); Ongoing ones are left to their
 * timeout, counted from their stored start. Returns 0, SL_EINVAL (a bad
 * record), SL_ELIMIT (too many ids) or SL_ENOMEM. */
void txn_load_begin(struct txn_coordinator *c);
int txn_load(struct txn_coordinator *c, kstr transactional_id, const struct txn_record *r);
void txn_load_done(struct txn_coordinator *c, int64_t now_ms, struct txn_effects *out);

struct txn_init_args {
	kstr transactional_id;      /* null: an idempotent producer */
	int32_t timeout_ms;
	int64_t producer_id;        /* v3+: the producer's current id, or -1 */
	int16_t producer_epoch;     /* v3+: its epoch, or -1 */
	int16_t api_version;        /* < 4: PRODUCER_FENCED as INVALID_PRODUCER_EPOCH */
};
void txn_init_producer_id(struct txn_coordinator *c, int64_t now_ms,
			  const struct txn_init_args *a, void *req, struct txn_effects *out);

/* AddPartitionsToTxn, the client form (v0-3, and v4+ without
 * verify_only). The caller has checked the partitions exist (Kafka
 * answers UNKNOWN_TOPIC_OR_PARTITION for those and
 * OPERATION_NOT_ATTEMPTED for the rest without asking the coordinator);
 * the one error answered applies to every partition. */
struct txn_add_args {
	kstr transactional_id;
	int64_t producer_id;
	int16_t producer_epoch;
	const struct txn_tp *partitions;
	int32_t partition_count;
	int16_t api_version;        /* < 2: PRODUCER_FENCED as INVALID_PRODUCER_EPOCH */
};
void txn_add_partitions(struct txn_coordinator *c, int64_t now_ms,
			const struct txn_add_args *a, void *req, struct txn_effects *out);

/* AddPartitionsToTxn v4+ with verify_only (KIP-890 part 1: a partition
 * leader asks before appending a transactional batch): answered at once,
 * one error per partition in errors[] (NONE, or TRANSACTION_ABORTABLE
 * when the partition is not in the transaction; every partition gets the
 * transaction's error otherwise). */
void txn_verify_partitions(const struct txn_coordinator *c, const struct txn_add_args *a,
			   int16_t *errors);

struct txn_add_offsets_args {
	kstr transactional_id;
	int64_t producer_id;
	int16_t producer_epoch;
	kstr group_id;
	int16_t api_version;        /* < 2: PRODUCER_FENCED as INVALID_PRODUCER_EPOCH */
};
void txn_add_offsets(struct txn_coordinator *c, int64_t now_ms,
		     const struct txn_add_offsets_args *a, void *req, struct txn_effects *out);

struct txn_end_args {
	kstr transactional_id;
	int64_t producer_id;
	int16_t producer_epoch;
	bool commit;
	int16_t api_version;        /* < 2: PRODUCER_FENCED as INVALID_PRODUCER_EPOCH */
};
void txn_end(struct txn_coordinator *c, int64_t now_ms, const struct txn_end_args *a,
	     void *req, struct txn_effects *out);

/* TxnOffsetCommit: may these offsets be stored as pending offsets of the
 * transaction? Kafka 3.9 verifies that the group was added
 * (AddOffsetsToTxn) and maps the verification's errors as its group
 * coordinator does: not added → TRANSACTION_ABORTABLE (v4+) or
 * INVALID_TXN_STATE; fenced epoch → INVALID_PRODUCER_EPOCH; a
 * transaction completing → COORDINATOR_NOT_AVAILABLE (retriable);
 * loading → COORDINATOR_LOAD_IN_PROGRESS (v2+, COORDINATOR_NOT_AVAILABLE
 * before). Member and generation checks are the group coordinator's. On
 * KERR_NONE the partitions are recorded as pending for the group
 * (txn_offset_pending) until the transaction completes. More than
 * SL_TXN_OFFSETS_MAX pending partitions in one transaction: INVALID_REQUEST,
 * nothing recorded. */
struct txn_offset_commit_args {
	kstr transactional_id;
	int64_t producer_id;
	int16_t producer_epoch;
	kstr group_id;
	const struct txn_tp *partitions;
	int32_t partition_count;
	int16_t api_version;
};
int16_t txn_offset_commit(struct txn_coordinator *c, const struct txn_offset_commit_args *a);
/* Has some transaction not yet completed committed an offset of this
 * group's partition (OffsetFetch with require_stable answers
 * UNSTABLE_OFFSET_COMMIT)? */
bool txn_offset_pending(const struct txn_coordinator *c, kstr group_id, struct txn_tp tp);

/* The outstanding write of transactional_id numbered write_id is done:
 * error KERR_NONE, or the Kafka error the write failed with
 * (COORDINATOR_NOT_AVAILABLE: the store failed; NOT_COORDINATOR: this
 * agent no longer owns the id, which is then dropped from memory). A
 * write_id that is not outstanding (already settled, or the id dropped)
 * is ignored. */
void txn_persisted(struct txn_coordinator *c, int64_t now_ms, kstr transactional_id,
		   uint64_t write_id, int16_t error, struct txn_effects *out);
/* The markers of transaction txn_seq of transactional_id are written
 * (error KERR_NONE), failed (any other error: written again after
 * retry_backoff_ms), or this agent lost the id (NOT_COORDINATOR: dropped
 * from memory). Ignored when that transaction is not waiting for them. */
void txn_markers_done(struct txn_coordinator *c, int64_t now_ms, kstr transactional_id,
		      int64_t txn_seq, int16_t error, struct txn_effects *out);

/* Timers: transactions past their timeout are aborted with a bumped
 * epoch (the producer is fenced); ids idle past id_expiration_ms are
 * deleted; failed marker and Complete* writes are retried; EndTxn answers
 * past end_answer_max_ms are sent. Call every ~100 ms-1 s. */
void txn_tick(struct txn_coordinator *c, int64_t now_ms, struct txn_effects *out);
/* Answer every held request with NOT_COORDINATOR (agent shutdown). */
void txn_shutdown(struct txn_coordinator *c, struct txn_effects *out);
/* This agent no longer coordinates the id (cluster mode: its lease was
 * lost or released): its held requests are answered NOT_COORDINATOR and
 * it is forgotten; an outstanding write's or markers' outcome is then
 * ignored (write ids are never reused). Unknown ids: nothing. */
void txn_unload(struct txn_coordinator *c, kstr transactional_id, struct txn_effects *out);

/* NULL if the id is not in memory (or Dead). */
const struct txn_meta *txn_find(const struct txn_coordinator *c, kstr transactional_id);
void txn_each(const struct txn_coordinator *c, void (*fn)(void *arg, const struct txn_meta *t),
	      void *arg);
size_t txn_count(const struct txn_coordinator *c);

#endif
