/* marker.h — transaction markers: the COMMIT/ABORT control batches a
 * transaction coordinator writes into every partition of a transaction
 * when it ends (Kafka's EndTransactionMarker).
 *
 * A marker is a whole record batch (magic 2, uncompressed, CREATE_TIME)
 * of exactly one control record, MARKER_BATCH_BYTES long:
 *   attributes 0x0030 (transactional | control), lastOffsetDelta 0,
 *   base and max timestamp = the write time, the transaction's producer
 *   id and epoch (for a fence or timeout abort: the bumped epoch),
 *   baseSequence -1 (markers carry no sequence), recordCount 1;
 *   the record: attributes 0, timestamp and offset deltas 0,
 *   key   = int16 version 0, int16 type (ABORT 0, COMMIT 1),
 *   value = int16 version 0, int32 coordinator epoch, no headers.
 * Clients depend on this exact shape: librdkafka skips keys of another
 * version or size, kafkajs recognises an abort by the key bytes
 * 00 00 00 00. baseOffset (outside the CRC) is written as 0 and set where
 * the batch gets its offset, like any batch's. */
#ifndef SLUICE_PROTO_MARKER_H
#define SLUICE_PROTO_MARKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MARKER_BATCH_BYTES 78 /* 61-byte batch header + 17-byte record */
#define MARKER_TYPE_ABORT 0
#define MARKER_TYPE_COMMIT 1

struct marker {
	bool commit;               /* COMMIT, else ABORT */
	int64_t producer_id;
	int16_t producer_epoch;
	int32_t coordinator_epoch;
	int32_t leader_epoch;      /* partitionLeaderEpoch */
	int64_t timestamp_ms;
};

/* Writes the marker batch into out (MARKER_BATCH_BYTES), CRC included. */
void marker_encode(uint8_t out[MARKER_BATCH_BYTES], const struct marker *m);

/* Is this batch's attributes word a control batch's? */
static inline bool marker_is_control(int16_t attributes)
{
	return (attributes & 0x20) != 0;
}

/* Reads the control batch at p (exactly len bytes, one whole batch).
 * Returns 0 with *out filled; SL_ECORRUPT when the CRC does not match;
 * SL_EPROTO when it is not a well-formed uncompressed control batch of
 * one record (truncated, trailing bytes, a record framed wrongly, not
 * the control attribute); SL_ENOTFOUND for a control batch with no
 * record (what compaction leaves of a marker); SL_EUNSUPPORTED for a
 * control record that is not a version-0 COMMIT/ABORT marker (KRaft's
 * other control types, a future key or value version), which readers
 * skip as librdkafka does. */
int marker_decode(const uint8_t *p, size_t len, struct marker *out);

#endif
