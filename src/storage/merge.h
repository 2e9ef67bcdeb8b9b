/* merge.h — merging one partition's rows out of small objects (issue 15):
 * the I/O around the planner (storage/merge_plan.h). For each run the
 * planner picks, the batches' bytes are read from the object store
 * (adjacent ranges of one object in one GET) untouched, in offset order,
 * straight into their places in one new object laid out as the writer
 * lays out objects (header, body, footer index), which is PUT under a key of
 * the writer's format (a background put, OBJSTORE_PUT_PACED), and the
 * metadata is swapped (meta_merge_swap) in chunks of swap_rows rows
 * (--merge-swap-rows), one transaction each, a short pause between two
 * so produce commits waiting for the store's write lock get it: each
 * chunk leaves the store consistent (meta.h). A refused first chunk
 * (rows trimmed or moved meanwhile, topic deleted) deletes the new object
 * again: nothing names it. A later chunk refused, a failure or a kill
 * between chunks leaves the object partly live: the next pass swaps the
 * rows left into it, when its footer and bytes show it holds them, by
 * later chunks, without a write; a first chunk whose outcome is unknown
 * (the store failed) leaves it too, and the orphan sweep of `sluice gc`
 * collects it if it was not committed.
 *
 * Offsets, timestamps and bytes served never change: only where the
 * bytes lie. Blocking: the agent runs it on its maintenance queue, `sluice
 * compact` on its own thread. */
#ifndef SLUICE_MERGE_H
#define SLUICE_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/merge_plan.h"

struct meta;
struct meta_batch_row;
struct objstore;

struct merge_stats {
	uint64_t runs;        /* merged objects committed */
	uint64_t rows;        /* stored rows moved into them */
	uint64_t batches;     /* the batches those rows hold */
	uint64_t sources;     /* source objects counted by the planner */
	uint64_t bytes;       /* batch bytes copied */
	uint64_t gets;        /* object store reads */
	uint64_t refused;     /* swaps refused (rows changed meanwhile) */
	uint64_t swaps;       /* swap transactions (an object's rows are
				 swapped in chunks of swap_rows) */
	uint64_t swap_us_max; /* the longest swap transaction (the wait for
				 the store's write lock included) */
	uint64_t resumed;     /* of rows: swapped into a partly live merged
				 object, which held their bytes already */
	uint64_t resumed_objects; /* partly live merged objects swapped into
				     (each once however many pages its
				     rows span) */
};
/* Adds b into a: every count summed, swap_us_max the larger. */
void merge_stats_add(struct merge_stats *a, const struct merge_stats *b);

/* A pass's input buffer, kept by its caller between passes (the agent:
 * one for its merge and cleaning jobs, which run one at a time on its
 * maintenance queue), so that a pass of up to SL_COMPACT_PASS_BYTES
 * does not map, fault in and zero fresh pages each time (a third of a
 * pass's CPU went to that) and unmap them after. Zero it to start. */
struct merge_buf {
	uint8_t *data;
	size_t cap;
};
/* b's bytes with room for n (what it held is not kept when it grows),
 * or NULL when out of memory. */
uint8_t *merge_buf_reserve(struct merge_buf *b, size_t n);
/* Between passes: the kernel may take the pages back under memory
 * pressure (MADV_FREE); otherwise the next pass finds them mapped. */
void merge_buf_idle(struct merge_buf *b);
void merge_buf_free(struct merge_buf *b);

/* What resumes found, kept by the agent between passes so that a merged
 * (or cleaned) object found whole, or holding nothing for the rows that
 * follow it, is not read again each pass (a GET of its trailer, and of
 * its footer, up to 36 MB, when rows follow that its entries do not
 * match). Kept per partition ((tid, partition): its two newest verdicts,
 * each valid while the rows it was found for stay as they were, objects
 * never changing) in a hash table that grows with the partitions holding
 * one: 32 bytes a slot, 2 to 4 slots per such partition (at most 128
 * bytes each), 2^21 slots (64 MiB, 1,572,864 partitions: more than an
 * agent holds) at most. A trailer or footer that does not parse is
 * remembered the second time in a row only. A wrong or stale verdict only skips a resume (its rows
 * are merged anew): nothing is swapped without its bytes compared. */
struct merge_memo;
/* NULL when out of memory (passes then read as without one). */
struct merge_memo *merge_memo_new(void);
/* A pass starts: partitions not looked at for a few passes (a deleted
 * topic's) are dropped when the table next grows (or, full, is rebuilt). */
void merge_memo_pass(struct merge_memo *memo);
void merge_memo_free(struct merge_memo *memo);

/* One pass over partition (tid, partition) whose topic id is topic_id:
 * merges what c picks at now_ms among the partition's rows, read a page
 * at a time (on the metadata store's read connection), a run that
 * reaches a page's end planned again with the next's, and finishes the
 * swaps of partly live merged objects. stop (may be NULL) is asked between
 * runs (an agent draining, produce backpressure): true ends the pass.
 * st accumulates (zero it first). Returns 0 (also when nothing was worth
 * merging, an unknown partition, or a swap was refused: counted), or the
 * store's or metadata store's error (the pass stops;
 * what was merged stays merged). Each run's object is built in buf (NULL:
 * a buffer of the call's own); memo (may be NULL) spares resume reads. */
int merge_partition(struct meta *m, struct objstore *s, int64_t tid, int32_t partition,
		    const uint8_t topic_id[16], const struct merge_plan_config *c, int64_t now_ms,
		    bool (*stop)(void *arg), void *stop_arg, struct merge_buf *buf,
		    struct merge_memo *memo, struct merge_stats *st);

/* What the cleaning pass (storage/clean.c) shares with merging. */
/* Batches per stored row (meta_int.h's META_ROW_BATCHES_MAX): the read
 * path hands out batches, so a pass joins them back into the rows the
 * commit made (adjacent in offsets and bytes of one object, at most this
 * many); a wrong guess only makes the swap refuse. */
#define MERGE_ROW_BATCHES_MAX 256
/* A fresh object key of the writer's format (storage/writer.c), marked
 * as a merged object's, so the gc fence and orphan sweep treat it as an
 * ingest object and the merge job never merges it again. */
void merge_key(char *key, size_t cap);
/* Joins rows[0, n) (batches as meta_batches_from_many hands them out,
 * ascending, with their attribute bits) back into the rows the store
 * holds (adjacent in offsets and bytes of one object, the same
 * transactional and control bits, at most 256 each: a wrong guess only
 * makes a swap refuse); returns how many, with each one's batch count in
 * batches[]. */
size_t merge_rows_join(struct meta_batch_row *rows, size_t n, uint32_t *batches);
/* Reads rows[0, n)'s bytes into body (laid out back to back): one GET per
 * stretch of rows adjacent in one object; *gets counts them. 0 or the
 * store's error. */
int merge_read_rows(struct objstore *s, const struct meta_batch_row *rows, size_t n,
		    uint8_t *body, uint64_t *gets);

#endif
