/* aborted_index.h — the agent's in-memory index of aborted transactions
 * per partition, for read_committed fetches (issue 14, docs/transactions.md
 * §6): a Fetch at isolation_level 1 lists every aborted transaction whose
 * records its batches may hold, so the client drops them (Kafka's
 * FetchResponse aborted_transactions, filled from its transaction index).
 *
 * Per (topic id, partition): the aborted transactions whose ABORT marker
 * (last_offset) lies in a known range [from, to) of offsets, sorted by
 * first_offset (kafkajs walks the list in that order and assumes it;
 * Kafka's own order is by marker). "Known" is the contract: every aborted
 * transaction with a marker in [from, to) is held, so a query whose
 * markers may lie anywhere in [fetch offset, high watermark) is answered
 * from memory only when that range is inside [from, to); otherwise the
 * caller looks the range up in the metadata store and adds what it found.
 * The range grows by aborted_index_add with ranges that touch or overlap
 * it (this agent's commits at the top, store lookups below); a newer range
 * that does not touch it (commits this agent did not see) starts it over,
 * so it never claims offsets it did not see. A marker offset is assigned
 * once (invariant 2), so an entry never becomes wrong while its marker is
 * stored; it stops mattering below a log start (aborted_index_trim) or
 * with its topic (tids are never reused). On a compacted topic the
 * cleaner deletes the store's row of an aborted transaction it emptied
 * (delete.retention.ms after it found it empty), and its marker
 * delete.retention.ms later: the agent drops the partition at each
 * cleaning swap (aborted_index_drop), before then.
 *
 * Bounded: at most entries_max entries per partition (past it the
 * entries with the oldest markers go and the range starts after them) and
 * about bytes_max bytes in all (the least recently used partitions go);
 * what is not held is looked up again.
 *
 * Pure logic, no I/O; loop thread only, no locks. */
#ifndef SLUICE_TXN_ABORTED_INDEX_H
#define SLUICE_TXN_ABORTED_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One aborted transaction on a partition: its producer, its first
 * offset there, and its ABORT marker's offset. The shape of the metadata
 * store's aborted rows (aborted_txns). */
struct aborted_txn {
	int64_t producer_id;
	int64_t first_offset;
	int64_t last_offset;
};

struct aborted_index;

/* An index of at most entries_max (>= 1) entries per partition and
 * about bytes_max bytes in all. NULL on ENOMEM. */
struct aborted_index *aborted_index_new(size_t bytes_max, size_t entries_max);
void aborted_index_free(struct aborted_index *ix);

/* Every aborted transaction of (tid, p) whose marker lies in [from, to)
 * is among v[0..n) (entries outside the range are ignored; duplicates of
 * held ones are taken once). The range joins the partition's when it
 * touches or overlaps it; a range starting after the partition's end
 * replaces it; one ending before its start is ignored (nothing is kept
 * for it). Returns 0, or SL_ENOMEM with the partition dropped (it is
 * then looked up), or SL_EINVAL for from > to. */
int aborted_index_add(struct aborted_index *ix, int64_t tid, int32_t p, int64_t from, int64_t to,
		      const struct aborted_txn *v, size_t n);

/* The aborted transactions of (tid, p) a fetch from offset whose
 * records end before end must list: last_offset >= offset and
 * first_offset < end, sorted by first_offset, at most cap copied into out
 * (cap 0 only counts); *n gets how many there are. Returns true when the
 * index knows every marker in [offset, upto) (upto: the high watermark,
 * past which no marker is committed yet); false: not held, *n is 0 (look
 * it up). */
bool aborted_index_get(struct aborted_index *ix, int64_t tid, int32_t p, int64_t offset,
		       int64_t end, int64_t upto, struct aborted_txn *out, size_t cap, size_t *n);

/* The partition's log start moved: entries whose marker is below it are
 * never listed again (a fetch starts at or after the log start) and go;
 * the range starts there at the earliest. */
void aborted_index_trim(struct aborted_index *ix, int64_t tid, int32_t p, int64_t log_start);
/* Forget one partition, or partitions [0, partition_count) of a topic. */
void aborted_index_drop(struct aborted_index *ix, int64_t tid, int32_t p);
void aborted_index_drop_topic(struct aborted_index *ix, int64_t tid, int32_t partition_count);

/* Bytes held, partitions held, and the known range of one partition
 * (false when not held): for tests and stats. */
size_t aborted_index_bytes(const struct aborted_index *ix);
size_t aborted_index_partitions(const struct aborted_index *ix);
bool aborted_index_range(const struct aborted_index *ix, int64_t tid, int32_t p, int64_t *from,
			 int64_t *to);

#endif
