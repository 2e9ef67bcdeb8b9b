/* compact.h — the cleaner of compacted topics (cleanup.policy=compact,
 * issue 15) as pure logic: Kafka 3.9's LogCleaner rules applied to one
 * partition's batches in memory. No I/O and no clock: the caller reads
 * the batches, passes the time, and stores what comes back (a new object
 * and a metadata swap, in the agent's job).
 *
 * A pass has two steps.
 *
 * compact_plan works on the partition's stored spans (metadata rows:
 * offsets, bytes, largest timestamp; no record bytes) and decides how far
 * this pass may clean and whether it is due, as LogCleanerManager does:
 * nothing at or past the last stable offset, the tail span (Kafka's active
 * segment is never cleaned), the active head, nor the first span newer
 * than min.compaction.lag.ms. The active head stands for Kafka's active
 * segment, which rolls after segment.ms (or max.compaction.lag.ms, so
 * that the lag can be honoured) or once it holds segment.bytes: it starts
 * at the first span both newer than the smaller of those times and within
 * the last segment.bytes of the partition. The pass is due when the dirty part (from the
 * cleaner's checkpoint, first_dirty_offset, to that end) is more than
 * min.cleanable.dirty.ratio of the cleanable bytes, or its oldest data is
 * older than max.compaction.lag.ms.
 *
 * compact_clean takes the batches from the log start to the plan's end
 * (and those after it, which are only read for producer state), builds
 * the offset map (latest offset of each key) over the dirty part, and
 * decides each batch as Kafka's Cleaner.cleanInto and
 * MemoryRecords.filterTo do:
 *  - a record is kept when no later record of its key lies in the map's
 *    range; a record without a key is dropped (Kafka counts it invalid);
 *  - a tombstone (null value) kept is kept until its batch's delete
 *    horizon (KIP-534): the first pass that keeps a tombstone rewrites its
 *    batch with the horizon now + delete.retention.ms in the base
 *    timestamp (attribute bit 6); a later pass past the horizon drops it;
 *  - a batch whose records all stay, needing no horizon, is kept as it is
 *    (its bytes untouched); one left with no record is dropped, unless it
 *    is the last data batch of a producer still active (its last batch's
 *    timestamp within producer_expiration_ms): then its header is kept,
 *    with no record, so the producer's last sequence and epoch survive;
 *  - otherwise it is rewritten: base offset, last offset delta (so the
 *    last sequence), offset deltas, record timestamps, producer id, epoch,
 *    base sequence, partition leader epoch and attributes kept, the codec
 *    reapplied, the CRC-32C computed anew.
 *  Control batches and transactional batches are kept untouched without
 *  the hook for transactions (txn). With it, as Kafka's
 *  CleanedTransactionMetadata: the hook tells aborted batches (their
 *  records dropped; they never enter the map), a committed transaction's
 *  records are cleaned as any others, and a marker, COMMIT or ABORT,
 *  whose transaction has no batch left (none of its producer's
 *  transactional batches since its previous marker is still stored)
 *  gets a delete horizon, and goes with the first pass past it. An
 *  ABORT marker so found whose transaction is still listed (the hook)
 *  gets a first horizon instead; the first pass past it takes the
 *  transaction out of the aborted index (compact_outcome.aborted_gone,
 *  as Kafka leaves it out of the cleaned segment's transaction index)
 *  and gives the marker its second horizon, past which it goes. So the
 *  transaction stays listed delete.retention.ms after a pass found its
 *  records gone (a fetch serving bytes read before that still lists it),
 *  and leaves delete.retention.ms before the marker goes (no
 *  read_committed consumer is told of it without meeting its marker: it
 *  would take the producer's later batches as aborted).
 *
 * The offset map keeps whole keys (no hash collisions, unlike Kafka's MD5
 * map), within map_bytes_max; when the dirty part does not fit, the pass
 * cleans up to the last batch that did and reports that as the new
 * checkpoint (Kafka does the same at segment boundaries). */
#ifndef SLUICE_COMPACT_H
#define SLUICE_COMPACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* Attribute bit 6: the base timestamp is the batch's delete horizon. */
#define COMPACT_ATTR_DELETE_HORIZON 0x40

/* One topic's cleaner configs (Kafka's topic configs of the same names). */
struct compact_config {
	int64_t segment_ms;
	int64_t segment_bytes;          /* 0: no bound by size */
	int64_t min_compaction_lag_ms;
	int64_t max_compaction_lag_ms;
	int64_t delete_retention_ms;
	double min_cleanable_dirty_ratio;
	int64_t producer_expiration_ms; /* Kafka's producer.id.expiration.ms */
	size_t map_bytes_max;           /* the offset map's keys and slots */
};

/* One stored span of the partition (a metadata row: one or more batches),
 * in offset order. */
struct compact_span {
	int64_t base_offset;
	int64_t last_offset;
	int64_t max_timestamp; /* -1 when the batches carry none */
	int64_t bytes;
};

struct compact_plan {
	int64_t clean_end;       /* first offset this pass leaves alone; the
				    log start when nothing is cleanable */
	size_t spans_cleanable;  /* spans below clean_end (a prefix) */
	int64_t dirty_bytes;     /* from first_dirty_offset to clean_end */
	int64_t cleanable_bytes; /* from the log start to clean_end */
	bool lag_due;            /* max.compaction.lag.ms passed */
	bool due;                /* clean now: ratio above the minimum, or
				    lag_due, with dirty bytes to clean */
};

/* Plan a pass over n spans (the partition from its log start) at now_ms.
 * first_dirty_offset: the cleaner's checkpoint (offsets below were
 * cleaned by an earlier pass; the log start before any).
 * last_stable_offset: the first offset a read_committed consumer may not
 * read (the high watermark until transactions exist). Returns 0, or
 * SL_EINVAL when the spans are not in ascending order. */
int compact_plan(const struct compact_config *c, int64_t now_ms, int64_t first_dirty_offset,
		 int64_t last_stable_offset, const struct compact_span *spans, size_t n,
		 struct compact_plan *out);

/* What a partition's metadata tells in a few indexed reads, without its
 * rows (compact_plan_may_be_due): bounds on the plan's inputs, from the
 * first dirty offset D = max(checkpoint, log start). */
struct compact_bound {
	int64_t clean_bytes_min; /* at most the bytes the plan counts clean
				    when any is dirty (the stored rows wholly
				    in [log start, D)) */
	int64_t dirty_bytes_max; /* at least the bytes it counts dirty (the
				    rows reaching D or past it, the tail's
				    included) */
	bool dirty_any;          /* a batch starts at or past D */
	int64_t dirty_ts_min;    /* at most the largest timestamp of the
				    first dirty span: the least max
				    timestamp of the batches that span may
				    start at; -1 when one of them has none */
};

/* False only when compact_plan over the same partition at now_ms cannot
 * find it due: even counting every byte past the checkpoint dirty, the
 * dirty ratio stays at or below min.cleanable.dirty.ratio, and the
 * oldest dirty span is within max.compaction.lag.ms (or has no
 * timestamp). The head, the lags, the last stable offset and the tail
 * only leave bytes out of the plan's cleanable part, dirty ones last:
 * the ratio d / (clean + d) only falls with them (clean is all of it
 * when anything is dirty). tests/unit/test_compact.c checks this against
 * compact_plan on random partitions. */
bool compact_plan_may_be_due(const struct compact_config *c, int64_t now_ms,
			     const struct compact_bound *b);

/* One stored batch, in offset order. bytes is the batch as stored (its
 * baseOffset field may be anything: base_offset is the offset assigned). */
struct compact_batch {
	int64_t base_offset;
	const uint8_t *bytes;
	size_t len;
};

/* What becomes of a batch. */
enum compact_verdict {
	COMPACT_KEEP = 0,  /* unchanged */
	COMPACT_DROP,      /* nothing of it remains */
	COMPACT_REWRITE,   /* replaced by the bytes at out.data + pos */
};

/* The hook for transactions (issue 14): whether a transactional data
 * batch at base_offset (header in info) belongs to an aborted
 * transaction; for an ABORT marker with no batch of its transaction
 * left, whether its transaction is still listed among the aborted ones
 * (COMPACT_TXN_ABORTED: its row is still stored). */
enum compact_txn_verdict {
	COMPACT_TXN_KEEP = 0,   /* committed: its records are cleaned by key */
	COMPACT_TXN_ABORTED,    /* aborted: its records go (the batch header
				   stays when it is its producer's last) */
};
struct batch_info;
typedef enum compact_txn_verdict (*compact_txn_fn)(void *arg, int64_t base_offset,
						   const struct batch_info *info);

struct compact_outcome {
	enum compact_verdict verdict;
	size_t pos, len;        /* COMPACT_REWRITE: the bytes in out */
	int32_t records_kept;
	bool aborted_gone;      /* an ABORT marker past its first horizon,
				   given its second: its transaction has no
				   batch left, and its aborted index row (last
				   offset: this batch's base offset) goes with
				   the pass */
};

struct compact_result {
	struct compact_outcome *batches; /* one per input batch */
	size_t n;
	struct kbuf out;                 /* the rewritten batches, back to back */
	int64_t clean_end;               /* the new checkpoint: the plan's end,
					    or lower when the map filled */
	int64_t records_read, records_kept;
	int64_t bytes_read, bytes_written;
};

/* Clean n batches (from the log start; those at or past plan->clean_end
 * are only read for producer state and come back COMPACT_KEEP) at now_ms.
 * txn may be NULL. On success *out must be freed with compact_result_free.
 * Returns 0; SL_EINVAL when the batches are out of order; SL_ECORRUPT /
 * SL_EPROTO / SL_EUNSUPPORTED / SL_ELIMIT for a batch that does not
 * decode; SL_ELIMIT also when map_bytes_max cannot hold the first dirty
 * batch's keys; SL_ENOMEM. */
int compact_clean(const struct compact_config *c, int64_t now_ms, int64_t first_dirty_offset,
		  const struct compact_plan *plan, const struct compact_batch *batches, size_t n,
		  compact_txn_fn txn, void *txn_arg, struct compact_result *out);

void compact_result_free(struct compact_result *r);

/* The same pass over a partition too long to hold in memory at once
 * (storage/clean.c cleans it in chunks, as Kafka's cleaner builds its
 * offset map over the dirty segments, then cleans segment groups from
 * the log start). compact_clean is these calls over one array.
 *
 * compact_scan_new, then compact_scan_add over every batch from the log
 * start on, in offset order, a chunk at a time (the chunk's memory may be
 * freed after the call): it builds the offset map over the dirty part
 * (up to plan->clean_end, lowered when map_bytes_max fills), each
 * producer's last batch and the lone markers. Those past the plan's end
 * are only read for producer state, and may be left out (a producer whose
 * later batches are not seen keeps an empty header more). Then
 * compact_scan_finish (*clean_end: the pass's end, the new checkpoint),
 * then compact_clean_chunk over the batches from the log start to the
 * end, a chunk at a time in offset order (their bytes as scanned: the
 * map tells which records are the latest), each chunk's verdicts and
 * rewrites in *out (free with compact_result_free; out->clean_end is the
 * pass's end). Memory: the map and the producer and marker tables within
 * map_bytes_max (SL_ELIMIT past it), whatever the partition's length.
 * Errors as compact_clean's; after one the scan is only to be freed. */
struct compact_scan;
int compact_scan_new(const struct compact_config *c, int64_t now_ms, int64_t first_dirty_offset,
		     const struct compact_plan *plan, compact_txn_fn txn, void *txn_arg,
		     struct compact_scan **out);
int compact_scan_add(struct compact_scan *s, const struct compact_batch *batches, size_t n);
int compact_scan_finish(struct compact_scan *s, int64_t *clean_end);
int compact_clean_chunk(struct compact_scan *s, const struct compact_batch *batches, size_t n,
			struct compact_result *out);
void compact_scan_free(struct compact_scan *s);

/* Append to out a batch of no records (magic 2, no codec, no producer:
 * id, epoch and base sequence -1, base timestamp -1, max_timestamp
 * kept, CRC-32C) over offsets base_offset .. base_offset +
 * last_offset_delta: what the pass stores in place of a run of batches it
 * dropped, so the partition keeps every offset (a consumer skips it as it
 * skips Kafka's emptied producer batches). 0 or SL_ENOMEM. */
int compact_write_empty(struct kbuf *out, int64_t base_offset, int32_t leader_epoch,
			int32_t last_offset_delta, int64_t max_timestamp);

#endif
