/* meta_int.h — what the metadata backends (sqlite.c, postgres.c) share
 * and callers of meta.h never see: argument checks, topic UUIDs, the gc
 * fence check of a commit and the retention scan's decision, all free of
 * SQL; and each backend's open function, which meta.c picks by URL. */
#ifndef SLUICE_META_INT_H
#define SLUICE_META_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/limits.h"
#include "meta/meta.h"

/* sqlite.c: create says whether a missing file and schema may be made. */
/* How a store is opened: by a tool or test (created if missing), by a
 * tool that must not create one, or by the agent that will serve from it
 * (created if missing; an embedded store is claimed first, see
 * meta_open_agent). */
enum meta_open_mode { META_OPEN_CREATE, META_OPEN_EXISTING, META_OPEN_AGENT };

int meta_sqlite_open(const char *path, enum meta_open_mode mode, struct meta **out);
/* sqlite_wal.c: the name of the VFS whose WAL files gather a
 * transaction's writes into one (registered on the first call), or NULL
 * if SQLite's default VFS cannot carry it (then the default is used). */
const char *meta_sqlite_wal_vfs(void);
/* postgres.c: conninfo is any libpq connection string (a postgresql:// or
 * postgres:// URL here); create as above, for the schema. */
int meta_postgres_open(const char *conninfo, bool create, struct meta **out);

/* Version-4 random UUID (never all-zero, so never Kafka's "no topic
 * id"). 0 or SL_EIO (logged). */
int meta_random_uuid(uint8_t uuid[16]);

/* topic_create's arguments: 0 or SL_EINVAL. */
int meta_topic_create_check(const char *name, int32_t partitions,
			    const struct meta_config *configs, int32_t config_count);
/* A config change's name and value (value NULL: a delete). */
bool meta_config_ok(const char *name, const char *value);
/* topic_configs_set's arguments: 0 or SL_EINVAL. */
int meta_configs_check(const struct meta_config_change *changes, size_t n);
/* After a successful topic_create: fills out (its configs and replicas
 * arrays already allocated by meta_topic_out_alloc) with tid, uuid set by
 * the backend. */
int meta_topic_out_alloc(struct meta_topic *out, int32_t config_count, int32_t partitions,
			 const struct meta_replicas *replicas);
void meta_topic_out_fill(struct meta_topic *out, const char *name, int32_t partitions,
			 const struct meta_config *configs, int32_t config_count,
			 const struct meta_replicas *replicas);

/* Replica assignments (schema version 11): one row per assigned
 * partition, its broker ids as decimal text joined by commas, in the
 * order given (the first is Kafka's preferred leader). */
#define META_REPLICAS_TEXT_BYTES (SL_CLUSTER_AGENTS_MAX * 12)
/* An assignment of count partitions: 0 or SL_EINVAL (replication out of
 * 1..SL_CLUSTER_AGENTS_MAX, a negative id, past
 * SL_REPLICA_ASSIGNMENT_IDS_MAX). */
int meta_replicas_check(const struct meta_replicas *r, int32_t count);
/* Partition i's (of r) ids as the row's text; out holds
 * META_REPLICAS_TEXT_BYTES. */
void meta_replicas_format(const struct meta_replicas *r, int32_t i, char *out);
/* A stored row into t->replicas (allocated on first use): 0, SL_ENOMEM,
 * or SL_ECORRUPT (logged) for text this code did not write or a
 * partition out of range (the row is then left out). */
int meta_topic_replicas_put(struct meta_topic *t, int32_t partition, const char *text);

/* commit_objects' arguments: 0 or SL_EINVAL; sets every base_offset to -1
 * (the value a failed commit leaves). */
int meta_commit_check(struct meta_commit_obj *objs, size_t count);
void meta_commit_offsets_clear(struct meta_commit_obj *objs, size_t count);
/* Inside the commit transaction, with the fence read from the store:
 * SL_EMETA (logged) when an object's key was sealed before it. */
int meta_commit_fence_check(const struct meta_commit_obj *objs, size_t count, int64_t fence_ms);

/* ---- transactions, checked inside the commit transaction
 * (docs/transactions.md, sections 3-4) ----
 * What a commit reads of a transactional id's row. */
struct meta_txn_head {
	bool found;
	int64_t producer_id;
	int16_t producer_epoch;
	int state;           /* enum txn_state */
	int64_t txn_seq;
};
/* The batch header attributes a row keeps: batches of one row share them. */
static inline int16_t meta_batch_attributes(const struct meta_commit_batch *b)
{
	return (int16_t)(b->attributes & (META_BATCH_ATTR_TRANSACTIONAL | META_BATCH_ATTR_CONTROL));
}
/* A TXN_DATA batch against its id's row (added: the partition is in the
 * row's txn_partitions), in Kafka's order: META_BATCH_APPENDED when it
 * may go on to the idempotent checks. */
enum meta_batch_result meta_txn_data_check(const struct meta_txn_head *h, bool added,
					   const struct meta_commit_batch *b);
/* TxnOffsetCommit against its id's row, in the order of the
 * coordinator's check (txn_offset_commit): 0 when the transaction may
 * take offsets (the group's txn_groups row is checked next, SL_EBUSY
 * without it); SL_ETXNUNKNOWN (no row, another producer id), SL_EFENCED
 * (another epoch), SL_ETXNBUSY (Prepare*: completing), SL_EBUSY (not
 * Ongoing). */
int meta_txn_offsets_verdict(const struct meta_txn_head *h, int64_t producer_id,
			   int16_t producer_epoch);
/* Whether a MARKER batch applies: the row completes transaction
 * b->txn_seq of b's producer id and epoch in the Prepare* state of the
 * marker's type, and the partition's marker is still owed (its
 * txn_partitions row is there). */
bool meta_marker_applies(const struct meta_txn_head *h, bool owed,
			 const struct meta_commit_batch *b);
/* An applied marker closes every open transaction of its transactional
 * id in the partition (partition_txns rows, one per producer id): its
 * own producer id's, and any older producer id's the id rotated away
 * from with a transaction still open there, which no marker can close
 * any more (they apply only to the id's current producer id). Whether
 * the row of producer_id gets an aborted_txns row: at an ABORT every
 * one; at a COMMIT only an older producer id's (its fate unknown here,
 * it is aborted, as Kafka's `kafka-transactions.sh abort` would a
 * hanging transaction's). */
bool meta_marker_aborts(const struct meta_commit_batch *b, int64_t producer_id);
/* Reports an aborted_txns row marker b added (b->aborted, n_aborted):
 * the marker's own producer id's first, the others in the order given. */
void meta_marker_aborted_note(struct meta_commit_batch *b, struct meta_aborted_txn a);
/* The last stable offset from a partition's columns (first_unstable -1:
 * none open). */
int64_t meta_lso(int64_t log_start, int64_t hwm, int64_t first_unstable);
/* Retention never moves the log start past an open transaction's first
 * offset (its records and marker must stay together); DeleteRecords may:
 * the log start the time and size limits chose (point), capped so,
 * never below the one asked for (asked: DeleteRecords' offset, or the
 * log start). */
int64_t meta_trim_txn_cap(int64_t asked, int64_t point, int64_t first_unstable);
/* txn_persist's arguments (r NULL: the id only): 0 or SL_EINVAL. */
int meta_txn_record_check(const char *transactional_id, const struct txn_record *r);
/* txn_offset_commit's arguments: rows of one group, at most
 * SL_TXN_OFFSETS_MAX, metadata within its limit; 0 or SL_EINVAL. */
int meta_txn_offsets_check(const char *transactional_id, const struct meta_offset_commit *rows,
			   size_t n);
/* txn_load's rows: append one (its id copied, no partitions nor groups
 * yet), SL_ELIMIT past SL_TXN_IDS_MAX; then add its partitions and groups
 * (SL_ECORRUPT past their limits); find one by id in rows sorted by id. */
int meta_txn_row_push(struct meta_txn_row **rows, size_t *n, size_t *cap, const char *id,
		      const struct txn_record *r, int64_t version, int64_t coord_epoch);
int meta_txn_row_add_partition(struct meta_txn_row *row, int64_t tid, int32_t partition);
int meta_txn_row_add_group(struct meta_txn_row *row, const char *group);
struct meta_txn_row *meta_txn_row_find(struct meta_txn_row *rows, size_t n, const char *id);

/* ---- idempotent producers' state, checked inside the commit
 * transaction (meta.h, enum meta_batch_result) ----
 * The producer_state table holds one row per (tid, partition, producer
 * id): the epoch and the producer's last META_PRODUCER_BATCHES batches
 * (first and last sequence, base offset) as text, "bseq:lseq:offset"
 * oldest first, separated by spaces. Only commits write it, under the
 * partition's write lock (SQLite's, PostgreSQL's row lock on the
 * partition), so a commit reads its rows after taking that lock. */
struct meta_pstate_batch {
	int32_t base_sequence, last_sequence;
	int64_t base_offset;
};
struct meta_pstate {
	int64_t tid;
	int32_t partition;
	int64_t producer_id;
	int16_t epoch;       /* -1: no state (any sequence is accepted) */
	int count;           /* batches[0, count), oldest first */
	struct meta_pstate_batch batches[META_PRODUCER_BATCHES];
	bool loaded;         /* read from the store in this transaction */
	bool dirty;          /* to be written back */
};
/* The distinct producers a commit's idempotent batches name, sorted (a
 * bsearch per batch). */
struct meta_pstates {
	struct meta_pstate *v;
	size_t n;
};
/* Whether a commit batch is an idempotent producer's. */
static inline bool meta_batch_idempotent(const struct meta_commit_batch *b)
{
	return b->producer_id >= 0 && b->base_sequence >= 0;
}
/* Fills *s with the producers of objs' idempotent batches, each with no
 * state and not loaded. 0 or SL_ENOMEM; free s->v with free(). */
int meta_pstates_collect(const struct meta_commit_obj *objs, size_t count,
			 struct meta_pstates *s);
struct meta_pstate *meta_pstates_find(struct meta_pstates *s, int64_t tid, int32_t partition,
				      int64_t producer_id);
/* The verdict for b against st (Kafka 3.9's duplicate, epoch and sequence
 * checks, in that order); *dup_offset gets the original's base offset of a
 * duplicate. */
enum meta_batch_result meta_pstate_check(const struct meta_pstate *st,
					 const struct meta_commit_batch *b, int64_t *dup_offset);
/* b was appended at b->base_offset: st takes it (a new epoch starts the
 * batches over; the oldest of a full set leaves). */
void meta_pstate_append(struct meta_pstate *st, const struct meta_commit_batch *b);
/* The batches column: out holds META_PSTATE_TEXT_BYTES. */
#define META_PSTATE_TEXT_BYTES 256
void meta_pstate_format(const struct meta_pstate *st, char *out);
/* A stored row into st (sets epoch, batches, loaded). SL_ECORRUPT (logged)
 * for text this file did not write. */
int meta_pstate_parse(struct meta_pstate *st, int64_t epoch, const char *text);
/* One producer_state row (joined with its partition_txns row's first
 * offset, -1 without one) as DescribeProducers answers it. SL_ECORRUPT
 * (logged) as meta_pstate_parse. */
int meta_producer_desc_fill(struct meta_producer_desc *d, int64_t tid, int32_t partition,
			    int64_t producer_id, int64_t epoch, const char *batches,
			    int64_t updated_ms, int64_t coordinator_epoch,
			    int64_t txn_start_offset);

/* ---- rows of several batches (schema version 6) ----
 * The batches of one partition that a commit appends one after another
 * in one object (consecutive offsets, adjacent bytes) share one batch
 * row: its first base offset and last offset, their byte range, summed
 * record count and largest max timestamp (what retention, trims and the
 * row lookups by offset and time need). Its spans column lists each
 * batch as "offsets:records:bytes:max_timestamp", in order, separated by
 * spaces (NULL for a row of one batch), so that reads hand out the
 * batches one by one (meta_row_expand): Kafka's size rules, the fetch
 * offset and ListOffsets work per batch. Sequences live in
 * producer_state, not in the row. */
#define META_ROW_BATCHES_MAX 256 /* batches per row: bounds its spans text */
struct meta_run {
	bool open;
	int64_t tid;
	int32_t partition;
	struct meta_batch_row row;   /* object_key and object_size unused */
	/* A copy of the run's first batch (its producer columns, alone, and
	 * the attributes every batch of the row shares): a merge builds each
	 * batch in the same variable, so a pointer would see the latest. */
	struct meta_commit_batch first;
	size_t count;
	char *spans;
	size_t spans_len, spans_cap;
};
/* Whether appended batch b (base_offset assigned) continues r's row. */
bool meta_run_continues(const struct meta_run *r, const struct meta_commit_batch *b);
/* Starts r at b (r not open) or adds b to it. 0 or SL_ENOMEM. */
int meta_run_add(struct meta_run *r, const struct meta_commit_batch *b);
/* The spans column of r's row: NULL for one batch. */
const char *meta_run_spans(const struct meta_run *r);
/* The row is written: r is closed (its buffer kept for the next). */
static inline void meta_run_close(struct meta_run *r) { r->open = false; }
void meta_run_free(struct meta_run *r);

/* What a merge swap reads of each row it moves beyond the merge's view:
 * its spans (NULL: one batch; malloc'd), record count, max timestamp
 * and attributes. */
struct meta_merge_stored {
	char *spans;
	int32_t record_count;
	int64_t max_timestamp;
	int16_t attributes; /* the row's (batches.attributes): its batches' */
};
/* The merged object's rows (both backends' swaps): the batches of mg's
 * rows (stored[i]: row i as the store has it) at their new byte offsets,
 * joined as a commit joins adjacent batches (meta_run: at most
 * META_ROW_BATCHES_MAX per row), so a partition's run of small rows
 * becomes a few rows. emit gets each finished run and must close it (the
 * backends' row inserts do). 0, SL_ENOMEM, SL_ECORRUPT (spans this code
 * did not write), or emit's error. */
int meta_merge_rows(const struct meta_merge *mg, const struct meta_merge_stored *stored,
		    int (*emit)(void *arg, struct meta_run *r), void *arg);
/* The batches of a stored row, one by one (spans NULL or "": one batch,
 * the row itself). meta_spans_next: 1 with *out set (object key and size
 * copied), 0 at the end, or SL_ECORRUPT (logged) for spans that do not
 * add up to the row. row and spans must outlive the iteration. */
struct meta_spans {
	const struct meta_batch_row *row;
	const char *spans, *p;
	int64_t base;
	uint64_t pos;
};
void meta_spans_begin(struct meta_spans *it, const struct meta_batch_row *row, const char *spans);
int meta_spans_next(struct meta_spans *it, struct meta_batch_row *out);
/* A stored row (spans NULL or "": one batch) as the batches it holds
 * whose last offset >= from, into out[0, cap) (object key and size
 * copied): how many, or SL_ECORRUPT (logged) for spans that do not add
 * up to the row. */
int meta_row_expand(const struct meta_batch_row *row, const char *spans, int64_t from,
		    struct meta_batch_row *out, size_t cap);

/* ListOffsets inside the row its query found (rows whose last offset is
 * at or after log_start): with ts, the first batch at or after the log
 * start whose max timestamp >= *ts; without, the batch with the largest
 * (earliest of equals). 1 with *offset and *batch_ts set, 0 when the row
 * holds none (look at the rows after it), or SL_ECORRUPT / SL_ENOMEM. */
int meta_ts_row_pick(const struct meta_batch_row *row, const char *spans, int64_t log_start,
		     const int64_t *ts, int64_t *offset, int64_t *batch_ts);

/* One row of a backend's ListOffsets query by time: the first row by
 * offset with max timestamp >= *ts (ts set) or the row with the largest
 * (ts NULL), among rows with last offset >= max(log start, after); *row
 * gets it and meta_ts_row_pick's answer is returned (SL_ENOTFOUND: no
 * row). */
typedef int (*meta_ts_row_fn)(void *ctx, const int64_t *ts, int64_t after,
			      struct meta_batch_row *row, int64_t *offset, int64_t *batch_ts);
/* offset_for_timestamp (ts set) and max_timestamp (ts NULL) from such
 * rows: on past a row that holds no batch at or after the log start with
 * the time; for the largest, also the best row after one that straddles
 * the log start with its largest timestamp below it. 0, SL_ENOTFOUND or
 * an error. */
int meta_ts_lookup(meta_ts_row_fn fn, void *ctx, const int64_t *ts, int64_t *offset,
		   int64_t *batch_ts);

/* merge_swap's arguments: 0 or SL_EINVAL (no rows, rows out of order,
 * a byte range past the merged object). */
int meta_merge_check(const struct meta_merge *mg);

/* The retention scan of meta_partition_trim, fed the partition's rows
 * from the log start on, oldest first: time first (stopping at the first
 * batch not expired), then size. */
struct meta_trim_scan {
	int64_t cutoff_ms; /* -1: time is off, or no longer drops */
	int64_t excess;    /* live bytes above retention.bytes; -1: off */
	int64_t point;     /* out: the log start so far */
};
/* Whether t needs a scan at all (false: the point stays at from). */
static inline bool meta_trim_needs_scan(const struct meta_trim *t)
{
	return t->cutoff_ms >= 0 || t->retention_bytes >= 0;
}
/* live_bytes: the partition's bytes from `from` on (only read when
 * t->retention_bytes >= 0). */
void meta_trim_scan_init(struct meta_trim_scan *s, const struct meta_trim *t, int64_t from,
			 int64_t live_bytes);
/* One stored row with last offset >= from (the rows in order): its
 * batches through meta_trim_scan_row, each with its max timestamp or,
 * without one, its object's creation time; batches below from only
 * correct the live bytes (live_bytes counted the whole row). false: stop
 * (a batch stays, or *err: SL_ECORRUPT). */
bool meta_trim_scan_batches(struct meta_trim_scan *s, const struct meta_batch_row *row,
			    const char *spans, int64_t created_ms, int64_t from, int *err);
/* One row; false: it stays, and so do all after it (stop scanning). */
bool meta_trim_scan_row(struct meta_trim_scan *s, int64_t last_offset, int64_t length,
			int64_t max_timestamp);

/* The registry's id for an agent that names none: the lowest id >= 1
 * not in ids (ascending). */
int32_t meta_agent_unused_id(const int32_t *ids, size_t n);
/* Appends one agent to a view being read (*cap: its room). 0 or
 * SL_ENOMEM. */
int meta_view_add(struct meta_cluster_view *v, size_t *cap, const struct meta_agent *ag);

/* scram_alter's changes: 0, or SL_EINVAL (logged) for an empty or
 * over-long user, a mechanism other than META_SCRAM_SHA_256/512 (0 also in
 * a delete: every mechanism), or an upsert whose salt, key length or
 * iterations are out of range. */
int meta_scram_changes_check(const struct meta_scram_change *changes, size_t n);
/* A lease row as a backend read it (found false: no row yet). */
struct meta_lease_row {
	bool found;
	int32_t holder;          /* -1: released */
	int64_t incarnation;
	int64_t epoch;
	int64_t expires_ms;
	bool holder_alive;       /* the holder's registry row exists */
};
enum meta_lease_action {
	META_LEASE_KEEP,    /* held by another: leave it (epoch 0 out) */
	META_LEASE_RENEW,   /* self's: new expiry, same epoch */
	META_LEASE_TAKE,    /* free: self at epoch + 1 (1 when no row) */
	META_LEASE_RELEASE, /* self's, given up: holder -1, expired */
};
/* What leases_sync does with one lease, from its row and the store's
 * clock (the same rule in both backends). */
enum meta_lease_action meta_lease_decide(const struct meta_lease_row *row,
					 const struct meta_agent *self, bool release, int64_t now_ms);
/* Whether row is free, or held by self (the retention delete's fence). */
bool meta_lease_free_or_self(const struct meta_lease_row *row, const struct meta_agent *self,
			     int64_t now_ms);

/* leases_sync's arguments: 0, or SL_EINVAL (an empty or too long name). */
int meta_leases_check(const struct meta_lease *l, size_t n);
/* What a failed leases_sync leaves: nothing held, holders unknown. */
void meta_leases_clear(struct meta_lease *l, size_t n);

/* offset_commit_fenced: how many rows from i on share rows[i]'s group
 * and fence epoch (checked once for them all). At least 1. */
size_t meta_offset_fence_run(const struct meta_offset_commit *rows, const int64_t *epochs,
			     size_t n, size_t i);

/* Appends one ACL read from a row to *v (*cap: its room), its strings
 * copied. 0 or SL_ENOMEM. */
int meta_acl_push(struct acl_binding **v, size_t *count, size_t *cap, const struct acl_binding *row);

/* Rows deleted per trim transaction (~2 ms of SQLite's write lock), and
 * the pause between two chunks, in which a waiting commit gets its turn. */
#define META_TRIM_CHUNK_ROWS 2000
#define META_TRIM_CHUNK_PAUSE_US 1000

#endif
