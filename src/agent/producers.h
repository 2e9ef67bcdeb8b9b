/* producers.h — the agent's first filter for idempotent producers: per
 * (topic, partition, producer id), the epoch and the sequence ranges of
 * the last five batches this agent appended, as Kafka keeps them, so that
 * a retry of a batch this agent committed is answered with its original
 * offset without writing it again, a retry of one still in flight is told
 * to come back, and (on a store this agent alone writes) a gap in the
 * sequence or an old epoch is refused at once.
 *
 * The authority is the commit transaction (meta.h, enum
 * meta_batch_result): it checks every idempotent batch against the
 * producer's state in the metadata store, so a batch this filter lets
 * through by mistake (a producer it has never seen, after a restart; one
 * whose other batches went to other agents) is still deduplicated or
 * refused there. Hence no seeding from the store: a producer unknown here
 * is let through.
 *
 * Pure logic, loop thread only. A cache (invariant 5). */
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

/* Check a batch and, when the verdict is PRODUCER_APPEND, record it as in
 * flight. last_seq is base_seq + lastOffsetDelta (wrapping past
 * INT32_MAX to 0, as Kafka's sequences do). A new epoch must start at
 * sequence 0 (PRODUCER_OUT_OF_ORDER otherwise), as in Kafka. */
enum producer_verdict producers_check(struct producers *p, int64_t tid, int32_t partition,
				      int64_t producer_id, int16_t epoch, int32_t base_seq,
				      int32_t last_seq, int64_t *offset);
/* The batch starting at base_seq was committed at base_offset. */
void producers_committed(struct producers *p, int64_t tid, int32_t partition,
			 int64_t producer_id, int16_t epoch, int32_t base_seq, int64_t base_offset);
/* The batch starting at base_seq failed: forget it and every later batch
 * of that producer still in flight (the writer fails those too), so the
 * producer's retry continues the sequence; the whole state when nothing
 * is left of it. */
void producers_failed(struct producers *p, int64_t tid, int32_t partition,
		      int64_t producer_id, int16_t epoch, int32_t base_seq);
/* Drop the producer's state here (the commit refused one of its batches,
 * or other agents may have moved it on): the next batch is let through
 * to the commit's check. */
void producers_forget(struct producers *p, int64_t tid, int32_t partition, int64_t producer_id);

#endif
