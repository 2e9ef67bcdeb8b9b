/* clean.h — one cleaning pass over a compacted topic's partition (issue
 * 15): the I/O around the cleaner's rules (compact/compact.h). The pass
 * reads the partition's cleaner checkpoint, log start and last stable
 * offset (meta_partition_get) and its rows from the first one reaching
 * the log start, plans (compact_plan: the active head, the lags, the
 * dirty ratio), reads the rows' bytes from the object store (adjacent
 * ranges of one object in one GET), cleans them (compact_clean: the
 * latest record of each key, tombstones until their delete horizon, the
 * active producers' last batches; the records of aborted transactions,
 * from meta_aborted_txns), writes the cleaned stretch as one new
 * object of the writer's key format (a background put,
 * OBJSTORE_PUT_PACED) and swaps it in
 * (meta_compact_swap: the rows replaced, the checkpoint raised and the
 * aborted_txns rows of aborted transactions with no batch left deleted,
 * in one metadata transaction; the agents' aborted indexes drop the
 * partition when they learn of the pass). A refused swap (rows merged, trimmed or cleaned
 * meanwhile, topic deleted) deletes the new object; a swap whose outcome
 * is unknown leaves it to the orphan sweep.
 *
 * Offsets never change and never go: a batch the cleaner empties keeps
 * its offsets as a header of no records, and a run of dropped batches
 * becomes one such header over all their offsets (docs/compaction.md).
 *
 * Memory: a pass plans over all of the partition's rows (40 bytes each,
 * up to SL_COMPACT_PLAN_ROWS_MAX), then reads at most bytes_max of
 * batches at a time (and SL_OBJECT_BATCHES_MAX batches,
 * SL_MERGE_RUN_ROWS_MAX rows): the scan, chunk by chunk, builds the
 * offset map over the whole dirty part (compact_scan_add), then the
 * partition is cleaned from its log start a chunk at a time, each chunk
 * its own object and swap, in offset order; the last raises the
 * checkpoint (docs/compaction.md, "A pass").
 * Blocking: the agent runs it on its maintenance queue, `sluice compact`
 * on its own thread. */
#ifndef SLUICE_CLEAN_H
#define SLUICE_CLEAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compact/compact.h"

struct merge_buf;
struct meta;
struct objstore;

struct clean_stats {
	bool due;                 /* the plan found the partition due */
	bool idle;                /* read to its end, nothing past the
				     checkpoint but the tail row (never
				     cleaned): no pass has work until the
				     partition grows */
	double dirty_ratio;       /* dirty / cleanable bytes (0: none) */
	int64_t dirty_bytes;
	uint64_t swaps;           /* cleaned objects committed (one per chunk) */
	uint64_t refused;         /* swaps refused (rows changed meanwhile) */
	uint64_t rows;            /* stored rows replaced */
	uint64_t bytes_read;      /* batch bytes cleaned (the replaced rows') */
	uint64_t bytes_written;   /* batch bytes of the cleaned object */
	uint64_t records_read, records_kept;
	uint64_t aborted_gone;    /* aborted transactions that left the
				     aborted index (their data all cleaned) */
	uint64_t gets;            /* object store reads */
	int64_t clean_offset;     /* the checkpoint after the pass */
	uint64_t plan_batches;    /* batch rows the planning read */
	bool bounded;             /* clean_plan_partition: not due by the
				     metadata's bounds, its rows not read */
};

/* Plan only: fills st->due, dirty_ratio, dirty_bytes, idle,
 * clean_offset, plan_batches and bounded for partition (tid, partition)
 * at now_ms, reading metadata alone: first bounds that need none of the
 * partition's rows (meta_clean_bytes and the first batches past the
 * checkpoint; compact_plan_may_be_due), and only when those say it may
 * be due all of its rows (up to SL_COMPACT_PLAN_ROWS_MAX). A partition
 * so found not due (bounded) has dirty_bytes, dirty_ratio 0 and is not
 * idle. 0, SL_ENOTFOUND (no such partition) or the store's error. */
int clean_plan_partition(struct meta *m, int64_t tid, int32_t partition,
			 const struct compact_config *c, int64_t now_ms, struct clean_stats *st);

/* One pass over (tid, partition), topic_id its Kafka id (the object's
 * footer): cleans when due, or always with force (`sluice compact`),
 * reading at most bytes_max of batches at a time into buf (NULL: a
 * buffer of the call's own). stop (may be NULL) is
 * asked between chunks: true ends the pass (what was swapped stays; the
 * checkpoint has not moved, so the next pass does it all again). st is
 * filled (zero it first). Returns 0 (also when nothing was due or
 * cleanable, or a swap was refused: st says), SL_ENOTFOUND (no such
 * partition), or the store's, the metadata store's or the cleaner's
 * error (SL_ECORRUPT for a batch that does not decode; SL_ELIMIT when
 * the map cannot hold one batch's keys or the producers): the pass stops
 * there. */
int clean_partition(struct meta *m, struct objstore *s, int64_t tid, int32_t partition,
		    const uint8_t topic_id[16], const struct compact_config *c, int64_t now_ms,
		    bool force, size_t bytes_max, bool (*stop)(void *arg), void *stop_arg,
		    struct merge_buf *buf, struct clean_stats *st);

/* The same pass a chunk at a time (the agent runs each step as its own
 * maintenance job, so a swap is known to the loop before the next one,
 * and trims wait for one chunk at most). clean_pass_begin plans (st as
 * clean_partition's) and sets *out to NULL when there is nothing to do;
 * then clean_pass_step until *done (each step reads one chunk into buf,
 * which the caller may use for other work between steps; st
 * accumulates; st->swaps rises with each chunk swapped); then
 * clean_pass_free (also mid-pass: see stop above). */
struct clean_pass;
int clean_pass_begin(struct meta *m, struct objstore *s, int64_t tid, int32_t partition,
		     const uint8_t topic_id[16], const struct compact_config *c, int64_t now_ms,
		     bool force, size_t bytes_max, struct merge_buf *buf, struct clean_stats *st,
		     struct clean_pass **out);
int clean_pass_step(struct clean_pass *x, struct clean_stats *st, bool *done);
void clean_pass_free(struct clean_pass *x);
/* A pass may wait between steps as long as the caller likes (the agent
 * keeps one paused across its checks): each chunk's rows are checked
 * against the plan before it is read, so rows merged, trimmed or cleaned
 * meanwhile end the pass as a refused swap would, and rows appended
 * past the pass's end do not concern it. What the rows do not show is
 * the caller's to check before the next step: the topic's configs
 * (the pass keeps those it began with) and the checkpoint, which
 * another process's pass may have raised. The checkpoint the pass
 * planned from: */
int64_t clean_pass_checkpoint(const struct clean_pass *x);

/* One stored row as the plan knows it. */
struct clean_row {
	int64_t base_offset;
	int64_t last_offset;
	int64_t max_timestamp;
	uint64_t bytes;
	uint32_t batches;
};
/* Where the chunk starting at rows[i] ends (rows[i, result), result <=
 * n): as many rows as fit in bytes_max, SL_MERGE_RUN_ROWS_MAX rows and
 * SL_OBJECT_BATCHES_MAX batches, and at least one (a row larger than
 * bytes_max is a chunk of its own: rows are objects, bounded). */
size_t clean_chunk_end(const struct clean_row *rows, size_t i, size_t n, uint64_t bytes_max);

/* A partition's aborted transactions (meta_aborted_txns) over a pass's
 * range, by first offset, max_last[i] the largest last offset of v[0..i]
 * (so a search stops early). */
struct meta_aborted_txn;
struct clean_aborted {
	struct meta_aborted_txn *v;
	int64_t *max_last;
	size_t n;
};
/* The cleaner's transactions hook (compact_txn_fn; arg a struct
 * clean_aborted): a transactional data batch inside one of its
 * producer's aborted transactions is COMPACT_TXN_ABORTED (its records go
 * and never enter the offset map, as in Kafka); committed ones
 * COMPACT_TXN_KEEP (cleaned by key; compact.h decides the markers). A
 * marker is COMPACT_TXN_ABORTED when it ends one of the aborted
 * transactions (still listed: its row stored). */
struct batch_info;
enum compact_txn_verdict clean_txn_verdict(void *arg, int64_t base_offset,
					   const struct batch_info *info);

#endif
