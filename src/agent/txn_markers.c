/* txn_markers.c — the marker write path (issue 14, docs/transactions.md
 * §4): a transaction's COMMIT/ABORT control batches, one per partition,
 * appended to the writer as META_BATCH_MARKER batches in one loop turn
 * and sealed at once. The commit applies each only to the transaction it
 * was built for (txn_seq) and only once per partition, so writing them
 * again after a lost answer or a takeover is safe; its LSO and aborted
 * rows reach the partitions through the commit hook (on_commit), which
 * wakes long-polling fetches. */
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/limits.h"
#include "cluster/placement.h"
#include "proto/marker.h"
#include "storage/batch.h"
#include "storage/writer.h"
#include "txn/coordinator.h"

struct markers_op {
	agent_markers_done_fn *done;
	void *arg;
	size_t pending;   /* markers not answered yet */
	int err;          /* the first failure */
	uint8_t *bytes;   /* the markers, MARKER_BATCH_BYTES each */
};

/* One marker's commit: written, or refused by the commit as not (or no
 * longer) owed — already written there (a retry, a takeover), for a
 * transaction that is over — or its partition deleted meanwhile (the
 * commit then drops it from the transaction): nothing is left to write
 * for it either way. */
static void marker_done(void *arg, int err, int64_t base_offset)
{
	struct markers_op *op = arg;
	(void)base_offset;
	if (err && err != SL_ETXNSTALE && err != SL_ENOTFOUND && !op->err)
		op->err = err;
	if (--op->pending > 0)
		return;
	op->done(op->arg, op->err);
	free(op->bytes);
	free(op);
}

int agent_txn_write_markers(struct agent *a, const char *transactional_id, int64_t producer_id,
			    int16_t producer_epoch, int32_t coordinator_epoch, int64_t txn_seq,
			    bool commit, const struct txn_tp *partitions, size_t n,
			    agent_markers_done_fn *done, void *arg)
{
	size_t id_len = strlen(transactional_id);
	if (n == 0 || n > SL_TXN_PARTITIONS_MAX || id_len == 0 || id_len > SL_TXN_ID_BYTES_MAX ||
	    producer_id < 0 || producer_epoch < 0)
		return SL_EINVAL;
	/* All or none: the writer's buffer limit is checked for the lot
	 * (a marker is 78 bytes), so no append after the first can fail
	 * for want of room. */
	if (writer_buffered_bytes(a->writer) + n * MARKER_BATCH_BYTES >
	    (size_t)a->cfg.write_buffer_bytes)
		return SL_EBUSY;
	struct markers_op *op = calloc(1, sizeof *op);
	if (!op)
		return SL_ENOMEM;
	op->bytes = malloc(n * MARKER_BATCH_BYTES);
	if (!op->bytes) {
		free(op);
		return SL_ENOMEM;
	}
	op->done = done;
	op->arg = arg;
	struct marker m = { .commit = commit, .producer_id = producer_id,
			    .producer_epoch = producer_epoch, .coordinator_epoch = coordinator_epoch,
			    .leader_epoch = placement_leader_epoch(&a->placement),
			    .timestamp_ms = clock_wall_ms() };
	struct writer_txn txn = { .kind = META_BATCH_MARKER, .transactional_id = transactional_id,
				  .transactional_id_len = id_len, .txn_seq = txn_seq,
				  .marker_commit = commit, .coordinator_epoch = coordinator_epoch };
	/* Held until every marker is appended: an answer cannot come in
	 * this loop turn, but the count must not reach 0 before the last. */
	op->pending = 1;
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t *b = op->bytes + i * MARKER_BATCH_BYTES;
		marker_encode(b, &m);
		struct batch_info info;
		rc = batch_parse_header(b, MARKER_BATCH_BYTES, &info);
		if (rc)
			break;
		/* A topic this agent no longer knows (deleted): the marker
		 * still goes to the commit, which finds no partition and
		 * drops it from the transaction; the object names it under a
		 * zero topic id, with no row. */
		static const uint8_t no_uuid[16];
		struct topic_state *t = agent_topic_by_tid(a, partitions[i].tid);
		rc = writer_append_txn(a->writer, partitions[i].tid, t ? t->uuid : no_uuid,
				       partitions[i].partition, b, NULL, &info, &txn, marker_done, op);
		if (rc)
			break;
		op->pending++;
	}
	if (rc && op->pending == 1) {
		/* Nothing appended: no callback (the caller retries). */
		free(op->bytes);
		free(op);
		return rc;
	}
	if (rc)
		op->err = rc; /* some appended: done reports the failure */
	writer_seal_soon(a->writer);
	op->pending--;
	return 0;
}
