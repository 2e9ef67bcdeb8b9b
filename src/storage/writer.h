/* writer.h — the write path: the agent's one open object, sealing, and
 * the flush pipeline (write the object, make it durable — one store sync
 * for every object of a commit group — then commit its batches in one
 * metadata transaction, in seal order).
 *
 * Loop thread API. The object write (upload) and the commit run on the
 * writer's own threads (base/workers.h: not libuv's pool, whose wake-up of
 * the loop spins). Uploads of consecutive objects may overlap (up to
 * uploads_max); commits run one at a time in seal order (invariant 6); an
 * append is answered only after both (invariant 1). While the upload
 * slots are full the open object keeps filling, so the object size adapts
 * to the store's latency (group commit); with seal_when_idle an append
 * that finds nothing in the pipeline is sealed at the end of its loop
 * turn instead of waiting out the interval (natural group commit), and
 * what arrived while the pipeline was busy when it empties, once
 * idle_seal_age_us old. */
#ifndef SLUICE_WRITER_H
#define SLUICE_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"
#include "meta/meta.h"
#include "storage/batch.h"
#include "storage/batch_index.h"

struct writer;
struct objstore;

/* Called on the loop thread when an appended batch is committed (err 0,
 * base_offset assigned; for an idempotent producer's retry that the
 * commit found a duplicate of, the original's offset, and no row) or has
 * failed (err < 0: SL_ESTORE, SL_EMETA; SL_ENOTFOUND when its partition
 * was deleted before the commit; SL_ESEQUENCE or SL_EFENCED when the
 * commit's producer check refused it; the SL_ETXN* verdicts of
 * writer_append_txn). A batch that got no row of its
 * own leaves dead bytes in its object (meta_commit_objects). */
typedef void (*writer_done_fn)(void *arg, int err, int64_t base_offset);

/* One committed batch, as reported to the commit hook: enough for the
 * batch row the store now has (the agent's batch index keeps it). */
struct writer_committed {
	int64_t tid;
	int32_t partition;
	struct batch_index_row row; /* offsets, byte range, counts */
	/* The partition's last stable offset as of this batch's end, and
	 * the aborted transactions a marker recorded (n_aborted; the first
	 * META_MARKER_ABORTED_MAX in aborted[]): meta_commit_batch's. */
	int64_t last_stable_offset;
	struct meta_aborted_txn aborted[META_MARKER_ABORTED_MAX];
	uint32_t n_aborted;
};

/* Called on the loop thread after each successful commit, before the
 * appenders' callbacks: the sealed object is object_len bytes, and its
 * batches (all of them, in object order, committed or not) are pieces[]:
 * each batch's place in the object and its bytes where the appender's
 * request brought them (owner: the appender's shared frame, or NULL).
 * The bytes stay valid only until the appenders are answered; the hook
 * keeps them longer by a reference to their owners (the read cache). */
typedef void (*writer_commit_hook)(void *arg, const char *object_key, uint64_t object_len,
				   const struct kpiece *pieces, size_t n_pieces,
				   const struct writer_committed *batches, size_t n);

struct writer_config {
	int64_t flush_interval_ms;
	size_t flush_bytes;
	size_t buffered_bytes_max;  /* appends fail with SL_EBUSY above it */
	int uploads_max;            /* sealed objects being written at once */
	/* Seal as soon as no sealed object is being written or committed,
	 * rather than at flush_interval_ms (the upper bound either way). For
	 * stores where an object costs little beyond the device's latency; a
	 * store billed per request (S3) keeps the interval. */
	bool seal_when_idle;
	/* With seal_when_idle: an open object begun while the pipeline was
	 * busy and holding idle_seal_hold_bytes or more when it empties (a
	 * stream: that much arrived in one put-and-commit time) is sealed
	 * only once its first batch is idle_seal_age_us old, so a steady
	 * stream does not pay an object's fixed cost per put-and-commit time
	 * (0: at once). An object begun with the pipeline empty (a lone
	 * request), or smaller (light load: a few producers waiting on the
	 * device), goes at once. */
	int64_t idle_seal_age_us;
	size_t idle_seal_hold_bytes;
};

int writer_new(uv_loop_t *loop, struct objstore *store, struct meta *meta,
	       const struct writer_config *cfg, writer_commit_hook hook,
	       void *hook_arg, struct writer **out);
/* Add one validated batch to the open object. The batch bytes are never
 * copied (the object is written from them by gather I/O): they must stay
 * valid until done is called. frame, when not NULL, is the shared buffer
 * holding them, handed to the commit hook so it can keep them (the
 * writer takes no reference: done comes after the hook). Returns 0 (done
 * will be called exactly once later), SL_EBUSY when buffered bytes exceed
 * the limit, or SL_ENOMEM (done is not called). */
int writer_append(struct writer *w, int64_t tid, const uint8_t topic_id[16],
		  int32_t partition, const uint8_t *batch, struct kshared *frame,
		  const struct batch_info *info, writer_done_fn done, void *arg);
/* What a transactional batch is to the store (meta_commit_batch's
 * fields): META_BATCH_TXN_DATA with the Produce request's transactional
 * id, or META_BATCH_MARKER ending transaction txn_seq of the id, COMMIT
 * or ABORT. The id is copied (at most SL_TXN_ID_BYTES_MAX bytes). */
struct writer_txn {
	enum meta_batch_kind kind;
	const char *transactional_id;
	size_t transactional_id_len;
	int64_t txn_seq;
	bool marker_commit;
	int32_t coordinator_epoch;  /* a marker's (its control record's) */
};
/* writer_append for a transactional batch or a marker (txn NULL or kind
 * META_BATCH_DATA: a plain one). Its done also reports the store's
 * transaction verdicts: SL_ETXNUNKNOWN, SL_EFENCED, SL_ETXNBUSY,
 * SL_ETXNNOTADDED, SL_ETXNSTATE (a plain batch of a producer with an
 * open transaction there), SL_ETXNSTALE (a marker refused: not for the
 * transaction the id is completing, or already written there). Returns
 * as writer_append does, or SL_ELIMIT for an id too long. */
int writer_append_txn(struct writer *w, int64_t tid, const uint8_t topic_id[16],
		      int32_t partition, const uint8_t *batch, struct kshared *frame,
		      const struct batch_info *info, const struct writer_txn *txn,
		      writer_done_fn done, void *arg);
/* Seal the open object after this loop turn (once an upload slot is
 * free) rather than at the flush interval: transaction markers, so a
 * transaction costs one small object, not a flush interval. */
void writer_seal_soon(struct writer *w);
/* Bytes appended and not yet committed or failed. */
size_t writer_buffered_bytes(const struct writer *w);
/* Seal the open object now (if not empty); used on shutdown. */
void writer_flush_now(struct writer *w);
/* True when nothing is open, sealed or being written. */
int writer_idle(const struct writer *w);
/* Called when buffered bytes drop back under the limit after SL_EBUSY,
 * and when the writer becomes idle. */
void writer_set_drain_hook(struct writer *w, void (*fn)(void *arg), void *arg);
/* Stops the timer; the writer must be idle. */
void writer_free(struct writer *w);

struct writer_stats {
	uint64_t objects_written;
	uint64_t bytes_written;
	uint64_t batches_committed;
	uint64_t flush_errors;
	uint64_t upload_us_total;   /* layout + durable write, summed */
	uint64_t commit_us_total;   /* each object's metadata transaction, summed */
	uint64_t commits;           /* metadata transactions (a group commit is one) */
};
void writer_get_stats(const struct writer *w, struct writer_stats *out);

#endif
