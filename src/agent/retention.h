/* retention.h — Kafka's log retention. Every
 * --retention-check-interval-ms, each partition of a topic whose
 * cleanup.policy includes "delete" loses, from its front, the batches its
 * retention.ms and retention.bytes expire (DeleteRecords moves log starts
 * on request). Both are trims of the maintenance queue
 * (agent/maintenance.h): the log start moves in the metadata store and
 * then in the agent's partition state; batch rows go and their objects'
 * live bytes fall, which makes them the dead objects agent/collect.h
 * deletes.
 *
 * Loop thread only. */
#ifndef SLUICE_RETENTION_H
#define SLUICE_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct agent;
struct topic_state;

/* 0 or SL_ENOMEM. */
int retention_start(struct agent *a);
/* Stop the timer (draining). A sweep in flight skips the partitions it
 * has not reached once maint_stop has run. */
void retention_stop(struct agent *a);
/* After the loop has stopped. */
void retention_free(struct agent *a);

/* Whether the topic's cleanup.policy includes "delete" (retention and
 * DeleteRecords apply only then). */
bool retention_policy_deletes(const struct topic_state *t);
/* Whether it includes "compact": Produce then refuses records without a
 * key, and the cleaner keeps the latest record of each key. */
bool retention_policy_compacts(const struct topic_state *t);

#endif
