/* retention.h — background maintenance (Kafka's log retention and file
 * deletion). Every --retention-check-interval-ms, each partition of a
 * topic whose cleanup.policy includes "delete" loses, from its front, the
 * batches its retention.ms and retention.bytes expire; DeleteRecords moves
 * log starts on request. Both go through the trim queue: the log start
 * moves in the metadata store and then in the agent's partition state;
 * batch rows go and their objects' live bytes fall. Every
 * --gc-interval-ms, objects whose live bytes reached 0 and that are older
 * than --gc-grace-ms are deleted from the store (storage/gc.h), through
 * the same queue. */
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

/* Trims queued together: jobs run one at a time on the thread pool, in
 * order (the sweep's and DeleteRecords'), so trims never hold more than
 * one pool thread. When a job is back, the agent's log starts have risen
 * to the store's (a topic deleted meanwhile is skipped), then done runs
 * on the loop. */
struct trim_job {
	struct trim_job *next;
	/* On the pool instead of trimming items (the dead-object collection). */
	void (*work)(struct trim_job *job, struct agent *a);
	struct trim_item *items;
	size_t n;
	bool abandonable;  /* the sweep's: its items get SL_EBUSY once draining */
	size_t moved;      /* out: log starts that rose */
	void (*done)(struct trim_job *job, void *arg);
	void *arg;
};

void trim_submit(struct agent *a, struct trim_job *job);

int retention_start(struct agent *a);
/* Stop the timers (draining); a sweep in flight skips the partitions it
 * has not reached, a queued DeleteRecords still runs. */
void retention_stop(struct agent *a);
/* After the loop has stopped. */
void retention_free(struct agent *a);

/* Whether the topic's cleanup.policy includes "delete" (retention and
 * DeleteRecords apply only then). */
bool retention_policy_deletes(const struct topic_state *t);

#endif
