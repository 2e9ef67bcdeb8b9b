/* batch_index.h — the agent's in-memory index of recent batch rows per
 * partition, in front of the metadata store: a fetch of fresh data finds
 * its rows here and touches no database (the design brief's read path;
 * issue 12: with PostgreSQL a lookup is a network round trip).
 *
 * Per (topic id, partition), a run of batch rows contiguous in offsets
 * that ends at the partition's high watermark as this agent knows it: it
 * is fed by this agent's commits (and, in a cluster, by other agents'
 * commit notifications) through batch_index_append, which takes rows
 * that start where the run ends; a gap (a commit this agent did not see)
 * starts the run over from the new rows, so the run never claims offsets
 * it lacks. Rows looked up from the store may extend it backwards, and
 * rows further back make a second run behind it, for consumers catching
 * up (batch_index_seed). Bounded: at most rows_max rows per run (the
 * oldest go first) and bytes_max in all (the least recently used
 * partitions go first); what it does not hold is looked up in the store.
 *
 * Why a row may be served from here: a batch row names offsets that are
 * assigned once (invariant 2) in an object that never changes (invariant
 * 3), so a row never becomes wrong; it only stops being referenced —
 * below a log start that a trim raised (the fetch handler refuses those
 * offsets, and batch_index_trim drops them), or of a deleted topic (tids
 * are never reused; batch_index_drop_topic frees them). Keyed by tid, so
 * a topic deleted and created again under its name starts empty, and
 * partitions added later start empty.
 *
 * Loop thread only; no locks. Rows handed out are copies. */
#ifndef SLUICE_BATCH_INDEX_H
#define SLUICE_BATCH_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct batch_index;
struct meta_batch_row;

/* One committed batch of an object, as the commit hook knows it. */
struct batch_index_row {
	int64_t base_offset;
	int64_t last_offset;
	uint64_t byte_offset;  /* in the object */
	uint32_t length;
	int32_t record_count;
	int64_t max_timestamp;
};

/* An index keeping at most rows_max rows per partition (>= 1) and about
 * bytes_max bytes in all (its rows, their object keys and per-partition
 * overhead). NULL on ENOMEM. */
struct batch_index *batch_index_new(size_t bytes_max, size_t rows_max);
void batch_index_free(struct batch_index *ix);

/* Rows rows[0..n) of partition (tid, p), all in object key (of
 * object_size bytes), ascending and contiguous, were committed: they
 * follow the partition's run when rows[0].base_offset is where it ends;
 * rows that end before the run's end came late and are ignored.
 * Otherwise (a gap, or a partition not indexed) the run starts over from
 * them. Returns 0, or SL_ENOMEM with the partition dropped (it is then
 * looked up in the store). */
int batch_index_append(struct batch_index *ix, int64_t tid, int32_t p, const char *object_key,
		       uint64_t object_size, const struct batch_index_row *rows, size_t n);

/* Rows read from the store for (tid, p) (ascending, contiguous, keys
 * inline, all below high_watermark, the partition's visible end then):
 * they join the tail run when they reach its first offset (before it) or
 * start at its end (commits it missed), or start the tail when the
 * partition has none and they reach high_watermark. Other rows go to
 * the run behind the tail (a consumer catching up reads on from there
 * without lookups: the rows its read-ahead looked up continue it), which
 * they continue or else replace. Each run keeps at most rows_max rows:
 * the tail the newest, the run behind the newest too. Returns how many
 * rows were taken. */
size_t batch_index_seed(struct batch_index *ix, int64_t tid, int32_t p,
			const struct meta_batch_row *rows, size_t n, int64_t high_watermark);

/* The rows of (tid, p) with last_offset >= offset, at most cap, copied
 * into out (object_size set; cap 0 only asks). Returns true when the
 * tail run starts at or before offset (*n rows, maybe 0 when offset is at
 * or past its end) or the run behind it holds offset; *end (may be NULL)
 * gets the offset after that run's last row: rows at or past it are not
 * in that run. false: not held (look it up in the store). */
bool batch_index_rows(struct batch_index *ix, int64_t tid, int32_t p, int64_t offset,
		      struct meta_batch_row *out, size_t cap, size_t *n, int64_t *end);

/* The partition's log start moved to log_start: drop the rows wholly
 * below it (a row holding log_start stays, as the store keeps it). */
void batch_index_trim(struct batch_index *ix, int64_t tid, int32_t p, int64_t log_start);
/* Forget one partition, or partitions [0, partition_count) of a topic. */
void batch_index_drop(struct batch_index *ix, int64_t tid, int32_t p);
/* How many drops so far: rows a store lookup of (tid, p) read before a
 * drop of that partition (a cleaning swap's: they name the objects the
 * swap replaced) must not seed the index after it, or it would name
 * them again until the next drop, past the collector's grace. A lookup
 * notes batch_index_drops when asked, and seeds only if not
 * batch_index_dropped_since that count: true when (tid, p) was dropped
 * since (or, rarely, another partition sharing its slot of a fixed
 * table was: the lookup then only skips the seed), so the drops of
 * other partitions (a pass cleaning one chunk after another) do not
 * keep a consumer catching up on this one from being indexed. */
uint64_t batch_index_drops(const struct batch_index *ix);
bool batch_index_dropped_since(const struct batch_index *ix, int64_t tid, int32_t p,
			       uint64_t drops);
void batch_index_drop_topic(struct batch_index *ix, int64_t tid, int32_t partition_count);

/* Bytes held, partitions indexed, and [*first, *end) of one partition's
 * run (false when not indexed): for tests and the agent's stats. */
size_t batch_index_bytes(const struct batch_index *ix);
size_t batch_index_partitions(const struct batch_index *ix);
bool batch_index_range(const struct batch_index *ix, int64_t tid, int32_t p, int64_t *first,
		       int64_t *end);

#endif
