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

#include <stdbool.h>
#include <stdint.h>

struct agent;
struct topic_state;
struct meta_trim;

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
