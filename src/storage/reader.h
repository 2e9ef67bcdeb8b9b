/* reader.h — the read path: the batches of a set of partitions from
 * given offsets, following Kafka's size rules, taken from the read cache
 * or read from the object store, as pieces that a response is written
 * from without copying them. The sibling of writer.h (the write path).
 *
 * Loop thread API. Batch rows come from the agent's batch index
 * (storage/batch_index.h: recent rows of each partition, fed by commits)
 * or, when it does not hold them, from the metadata store in a pool job
 * (reader_lookup, meta_batches_from_many [pool: read]); batches the cache
 * lacks are read through the store's asynchronous get (adjacent ranges
 * coalesced). So the loop never waits on either store. It knows nothing
 * of Kafka requests or responses: the caller (api/fetch.c) says which
 * partitions, from where and up to which high watermark, turns the
 * slots' results into error codes, and decides when to gather (long
 * polls wait there).
 *
 * One fetch: reader_fetch_new, then reader_gather (again whenever the
 * caller wants the current state: a long poll woken by a commit); while
 * reader_rows_needed, reader_lookup and gather again when it is done;
 * then reader_wait_loads / reader_read_missing for what the gather could
 * not take from memory, then reader_hold_take and reader_fetch_end. */
#ifndef SLUICE_READER_H
#define SLUICE_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct reader;
struct reader_fetch;
struct reader_hold;
struct arena;
struct batch_index;
struct cache;
struct meta;
struct objstore;
struct aborted_index;
struct aborted_txn;

/* A slot's records shorter than this are contiguous in the fetch's
 * buffer (reader_records): a caller encoding a response copies those and
 * writes longer ones as pieces (reader_piece). A tuning knob, not a
 * limit: an iovec per tiny batch costs more than copying it, so cached
 * runs under it are copied rather than referenced. */
#define READER_PIECE_BYTES_MIN 1024

/* read_committed's store lookup of aborted transactions, made in the
 * same pool job as the batch rows' ([pool: read], like
 * meta_batches_from_many): those of (tid, p) with last_offset >= offset
 * and first_offset < first_below, ascending by first_offset, at most cap
 * into out (*n of them). Returns 0 or a negative code (SL_EMETA). */
typedef int (*reader_aborted_fn)(struct meta *m, int64_t tid, int32_t p, int64_t offset,
				 int64_t first_below, struct aborted_txn *out, size_t cap,
				 size_t *n);

struct reader_config {
	/* Bytes of evicted cached objects that unsent responses may keep
	 * alive (cache_obj_pin's bound); past it, cached runs are copied.
	 * SL_FETCH_PINNED_EVICTED_BYTES_MAX for the agent; with 0, runs of
	 * buffers not pinned yet are copied as soon as any evicted object
	 * is still pinned. */
	size_t pinned_evicted_bytes_max;
	/* The agent's batch index (storage/batch_index.h), consulted before
	 * the metadata store; NULL: none. */
	struct batch_index *index;
	/* read_committed: the agent's aborted index (txn/aborted_index.h),
	 * consulted first, and the store lookup of what it lacks (its
	 * complete answers seed the index). aborted_from NULL: no store
	 * lookup (the agent's until transactional batches are accepted:
	 * none is aborted), so a range the index lacks has none; aborted
	 * NULL as well: read_committed lists none. aborted_lookup_max: rows
	 * one lookup takes (0: READER_ABORTED_LOOKUP_ROWS); a slot whose
	 * lookup was cut returns records only below the cut. */
	struct aborted_index *aborted;
	reader_aborted_fn aborted_from;
	size_t aborted_lookup_max;
};

/* The agent's reader over its stores and read cache (all must outlive
 * it). Returns 0 or SL_ENOMEM. */
int reader_new(uv_loop_t *loop, struct objstore *store, struct meta *meta, struct cache *cache,
	       const struct reader_config *cfg, struct reader **out);
/* Call when no fetch is left (reader_fetch_end for each). */
void reader_free(struct reader *r);

/* One partition of a fetch. The caller fills the first fields before
 * each reader_gather; the gather fills the rest. */
struct reader_slot {
	int64_t tid;
	int32_t partition;
	int64_t offset;          /* the first offset wanted */
	int64_t high_watermark;  /* batches from here on are not visible yet */
	/* read_committed: batches from here on are not returned either
	 * (the last stable offset, <= high_watermark: a batch boundary);
	 * -1: read_uncommitted, up to the high watermark. */
	int64_t stable_offset;
	int32_t max_bytes;       /* Kafka's partition_max_bytes (<= 0: none) */
	bool wanted;             /* false: nothing to read (an error, or the
				    offset is the high watermark) */
	/* out: bytes of records gathered, and 0 or why there are none
	 * (a row lookup's error: SL_EMETA, SL_ENOMEM; or a store read's);
	 * the offset after the last batch gathered (offset when none): a
	 * read_committed answer lists the aborted transactions that begin
	 * before it. */
	size_t bytes;
	int err;
	int64_t records_end;
	/* private to the reader */
	int64_t need;            /* rows needed from here (-1: none), */
	uint32_t need_rows;      /* about this many */
	bool need_aborted;       /* read_committed: aborted transactions needed */
	int64_t aborted_end;     /* they are known for records below it */
	size_t data_off, piece_first, piece_end;
	size_t aborted_first, aborted_count; /* the slot's list in the fetch's */
};

/* Start a fetch of slots[0..n) (which stay the caller's, and must live
 * as long as the fetch). The fetch is allocated from arena: call
 * reader_fetch_end before the arena is freed. Returns 0 or SL_ENOMEM
 * (the arena's limit). */
int reader_fetch_new(struct reader *r, struct arena *arena, struct reader_slot *slots, size_t n,
		     struct reader_fetch **out);
/* Release what the fetch still holds (its buffer, cached objects, rows).
 * Nothing may be in flight (no reader_wait_loads or reader_read_missing
 * whose callback has not run). */
void reader_fetch_end(struct reader_fetch *rf);

/* Gather the slots' records from the current state, dropping what an
 * earlier gather took. Kafka's size rules: each slot adds batches while
 * its max_bytes and the response's max_bytes (capped at
 * SL_FETCH_RESPONSE_BYTES_MAX) have room, except that the first batch of
 * the response always goes whole (KIP-74). Batches in memory are patched
 * (baseOffset, leader epoch 0) and referenced; the others are left for
 * reader_read_missing. With read_ahead, where the room runs out the
 * batches the consumer continues with are loaded into the cache
 * (cache_load) for its next fetch. Returns bytes of records gathered. */
size_t reader_gather(struct reader_fetch *rf, size_t max_bytes, bool read_ahead);
/* 0, or SL_ENOMEM when the last gather ran out of memory (its records
 * are incomplete: the fetch cannot be answered). */
int reader_status(const struct reader_fetch *rf);

typedef void (*reader_fn)(void *arg);

/* Whether the last gather stopped at slots whose rows (or, for
 * read_committed, aborted transactions) neither the batch index (the
 * aborted index) nor this fetch's earlier lookups have: its records are
 * not to be answered with (a first gather that needs them gathers
 * nothing). Look them up, then gather again. A fetch makes a few lookup
 * rounds at most; past them, a slot has what it got (a read_committed
 * slot still lacking its aborted transactions: no records). */
bool reader_rows_needed(const struct reader_fetch *rf);
/* Look the rows the last gather needed up in the metadata store, all in
 * one job on libuv's pool (meta_batches_from_many, [pool: read]): the
 * loop never waits on the store. Returns true when started: done(arg) is
 * called on the loop exactly once when they are back (or failed: those
 * slots then get err at the next gather), never from within this call;
 * no other reader call may be made on the fetch until then. false: out
 * of memory, nothing started and done is not called; those slots get err
 * at the next gather. The rows seed the batch index (batch_index_seed). */
bool reader_lookup(struct reader_fetch *rf, reader_fn done, void *arg);

/* Batches the last gather lacked that read-ahead loads already in
 * flight will bring (the first time only: after a wait, the rest is read
 * by ranges). Returns true when waiting: loaded(arg) is called on the
 * loop once they have all come (or failed), never from within this call;
 * gather again then. false: nothing to wait for, loaded is not called. */
bool reader_wait_loads(struct reader_fetch *rf, reader_fn loaded, void *arg);
/* Whether the last gather left batches to read from the store. */
bool reader_missing(const struct reader_fetch *rf);
/* Read them (ranged gets, adjacent ranges of one object coalesced) and
 * patch them. done(arg) is called exactly once, when all are back, maybe
 * from within this call (the store refused at once); a slot with a
 * failed read then has no records and err set. */
void reader_read_missing(struct reader_fetch *rf, reader_fn done, void *arg);
/* Forget them instead (shutdown): their slots get no records. */
void reader_drop_missing(struct reader_fetch *rf);

/* read_committed (stable_offset >= 0): the aborted transactions the
 * slot's records of the last gather overlap (last_offset >= offset,
 * first_offset < records_end), ascending by first_offset: *n of them at
 * the pointer returned (NULL when none), valid until the next gather or
 * reader_fetch_end. None for a slot without records. */
const struct aborted_txn *reader_aborted(const struct reader_fetch *rf, size_t slot, size_t *n);

/* The slot's records, valid until reader_hold_take or the next gather:
 * when shorter than READER_PIECE_BYTES_MIN they are contiguous here;
 * otherwise use the pieces. NULL when the fetch has no buffer. */
const uint8_t *reader_records(const struct reader_fetch *rf, size_t slot);
/* The slot's records as pieces in wire order, i < reader_piece_count:
 * *len bytes at the pointer returned. Valid until reader_hold_release of
 * the hold taken after them, or the next gather. */
size_t reader_piece_count(const struct reader_fetch *rf, size_t slot);
const uint8_t *reader_piece(const struct reader_fetch *rf, size_t slot, size_t i, size_t *len);
/* Move what the pieces point into (the fetch's buffer, references to
 * cached objects) to a hold, which keeps every pointer reader_records and
 * reader_piece gave valid until reader_hold_release (the server's release
 * hook once the response is written or dropped). NULL on ENOMEM, with
 * nothing moved. */
struct reader_hold *reader_hold_take(struct reader_fetch *rf);
void reader_hold_release(void *hold);

#endif
