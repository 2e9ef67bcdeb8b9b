/* producers.h — idempotent producer state: per (topic, partition,
 * producer id), the epoch and the sequence ranges of the last five
 * batches, as Kafka keeps them, so that a retried batch is answered with
 * its original offset instead of being written twice, and a gap in the
 * sequence is refused.
 *
 * Pure logic, loop thread only. The state is a cache (invariant 5): the
 * API layer seeds a producer it does not know from the batch rows of the
 * metadata store (producers_seed), so retries across a restart are still
 * recognised. */
#ifndef SLUICE_PRODUCERS_H
#define SLUICE_PRODUCERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/strmap.h"

#define PRODUCERS_RECENT_BATCHES 5  /* Kafka's max.in.flight for idempotence */

struct producers {
	struct strmap entries;
};

enum producer_verdict {
	PRODUCER_APPEND,            /* new batch, in sequence: write it */
	PRODUCER_DUPLICATE,         /* already committed at *offset */
	PRODUCER_DUPLICATE_PENDING, /* the original is still being committed */
	PRODUCER_OUT_OF_ORDER,      /* OUT_OF_ORDER_SEQUENCE_NUMBER */
	PRODUCER_FENCED,            /* an older epoch: INVALID_PRODUCER_EPOCH */
};

void producers_init(struct producers *p);
void producers_free(struct producers *p);

/* A batch as stored, for seeding: offsets of committed batches. */
struct producer_seed_batch {
	int64_t base_offset;
	int16_t epoch;
	int32_t base_seq, last_seq;
};

/* Whether there is state for (tid, partition, producer). */
bool producers_known(struct producers *p, int64_t tid, int32_t partition, int64_t producer_id);
/* Create state from committed batches, newest first (n <= 5 is used). */
void producers_seed(struct producers *p, int64_t tid, int32_t partition, int64_t producer_id,
		    const struct producer_seed_batch *newest_first, size_t n);

/* Check a batch and, when the verdict is PRODUCER_APPEND, record it as in
 * flight. last_seq is base_seq + lastOffsetDelta (wrapping past
 * INT32_MAX to 0, as Kafka's sequences do). */
enum producer_verdict producers_check(struct producers *p, int64_t tid, int32_t partition,
				      int64_t producer_id, int16_t epoch, int32_t base_seq,
				      int32_t last_seq, int64_t *offset);
/* The batch starting at base_seq was committed at base_offset. */
void producers_committed(struct producers *p, int64_t tid, int32_t partition,
			 int64_t producer_id, int16_t epoch, int32_t base_seq, int64_t base_offset);
/* The batch starting at base_seq failed: forget it and every later batch
 * of that producer still in flight (the writer fails those too), so the
 * producer's retry continues the sequence. */
void producers_failed(struct producers *p, int64_t tid, int32_t partition,
		      int64_t producer_id, int16_t epoch, int32_t base_seq);

#endif
