/* compaction.h — the agent's cleaner of compacted topics (issue 15):
 * every --compaction-check-interval-ms (Kafka's log.cleaner.backoff.ms;
 * 0: never, leave it to `sluice compact`) a pass takes the partitions of
 * the topics whose cleanup.policy includes "compact" as the catalog says
 * now (so a policy changed at runtime counts from the next pass), plans
 * each from its metadata (storage/clean.h: due by min.cleanable.dirty.ratio
 * or max.compaction.lag.ms), then cleans the due ones dirtiest first,
 * one chunk of one partition per job of the maintenance queue
 * (agent/maintenance.h; storage/clean.h's clean_pass_step), so trims, the
 * collection and a drain never wait behind a whole pass. A chunk reads at
 * most SL_COMPACT_PASS_BYTES (the hidden SLUICE_COMPACTION_PASS_BYTES,
 * for tests), into the maintenance queue's buffer (maint_buf, kept
 * between passes). The pass pauses while produce backpressure is active
 * (the write buffer half full): the check ends, and the partition's pass
 * under way (plan, offset map, position) is kept and resumes first at the
 * next check, unless its partition left the plan, its topic's configs
 * changed, its checkpoint moved or the lease was lost meanwhile (then it
 * starts over; clean.h says what the pass checks itself). A
 * partition, at each chunk swapped, leaves
 * the batch index, so fetches find its rows in the cleaned object, and
 * the aborted index, as the pass may have deleted aborted transactions
 * with no batch left. The planning also notices a checkpoint moved by
 * another process's pass (`sluice compact`; on SQLite nothing else
 * tells) and drops that partition from both indexes too; on PostgreSQL
 * the swap's notice tells the other agents (agent/registry.c). A
 * partition the planning found idle (cleaned up to its tail row) is not
 * planned again, nor its rows read, until its high watermark moves.
 *
 * In a cluster only the holder of the job/compact lease
 * (cluster/lease.h) cleans, so two agents never clean one partition at
 * once; a pass ends when the lease is lost. The swap does not need the
 * lease to be safe (it refuses rows that changed): the lease keeps two
 * agents from doing the same work.
 *
 * Loop thread only. */
#ifndef SLUICE_AGENT_COMPACTION_H
#define SLUICE_AGENT_COMPACTION_H

#include <stdint.h>

struct agent;

/* 0 or SL_ENOMEM. */
int compaction_start(struct agent *a);
/* Stop the timer (draining); a partition in flight finishes its pass. */
void compaction_stop(struct agent *a);
/* After the loop has stopped. */
void compaction_free(struct agent *a);
/* A pass (this agent's, another's, `sluice compact`'s) replaced the
 * partition's rows: it leaves the batch index and the aborted index. */
void compaction_swapped(struct agent *a, int64_t tid, int32_t partition);

#endif
