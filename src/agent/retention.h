/* retention.h — the retention sweep (Kafka's log retention): every
 * --retention-check-interval-ms, each partition of a topic whose
 * cleanup.policy includes "delete" loses, from its front, the batches its
 * retention.ms and retention.bytes expire. The log start offset moves in
 * the metadata store and in the agent's partition state; batch rows go and
 * their objects' live bytes fall, so an object nothing reads any more is
 * left to `sluice gc`. The work runs on the thread pool, one sweep at a
 * time. */
#ifndef SLUICE_RETENTION_H
#define SLUICE_RETENTION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "meta/meta.h"

struct agent;
struct topic_state;

/* One partition to trim on the thread pool, and what came back. */
struct trim_item {
	int64_t tid;
	int32_t partition;
	struct meta_trim trim;
	int64_t log_start; /* out: the log start in the metadata store */
	int err;           /* out: 0, SL_EBUSY when abandoned, or the store's */
};

/* Pool thread: meta_partition_trim each item, in order; once *abandon
 * is set, the rest get SL_EBUSY without being tried. */
void trim_items_run(struct meta *m, struct trim_item *items, size_t n,
		    const atomic_bool *abandon);
/* Loop: raise the agent's log starts from the items that succeeded (a
 * topic deleted meanwhile is skipped); returns how many moved. */
size_t trim_items_apply(struct agent *a, const struct trim_item *items, size_t n);

int retention_start(struct agent *a);
/* Stop the timer (draining); a sweep in flight finishes and is dropped. */
void retention_stop(struct agent *a);
/* After the loop has stopped. */
void retention_free(struct agent *a);

/* Whether the topic's cleanup.policy includes "delete" (retention and
 * DeleteRecords apply only then). */
bool retention_policy_deletes(const struct topic_state *t);
/* The topic's limits now, from its configs or Kafka's defaults (now_ms:
 * wall clock). Returns 0 when cleanup.policy has no "delete" or both
 * limits are off (nothing to trim), 1 otherwise. */
int retention_limits(const struct topic_state *t, int64_t now_ms, struct meta_trim *out);

#endif
