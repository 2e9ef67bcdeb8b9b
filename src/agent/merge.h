/* merge.h — the agent's merge job (issue 15): every --merge-interval-ms
 * (0: never; `sluice compact` forces a pass) a pass over every partition
 * merges the rows held in small objects older than --merge-min-age-ms
 * into per-partition objects of up to --merge-target-bytes
 * (storage/merge.h), one partition per job of the maintenance queue
 * (agent/maintenance.h), so trims, the collection and a drain never wait
 * behind a whole pass. A pass pauses (ends, the next tick starts again)
 * while produce backpressure is active (the write buffer half full), and
 * a merged partition leaves the batch index, so fetches find its rows in
 * the merged object. The job keeps what resumes found between passes
 * (struct merge_memo, per partition: storage/merge.h), so merged objects
 * found whole, or holding nothing for the row after them, are not read
 * again, however many partitions hold one.
 *
 * In a cluster only the holder of the job/merge lease (cluster/lease.h)
 * runs passes; a pass ends when the lease is lost. The swap does not need
 * the lease to be safe (it refuses rows that changed): the lease only
 * keeps two agents from doing the same work.
 *
 * Loop thread only. */
#ifndef SLUICE_AGENT_MERGE_H
#define SLUICE_AGENT_MERGE_H

struct agent;

/* 0 or SL_ENOMEM. */
int merge_start(struct agent *a);
/* Stop the timer (draining); a partition in flight stops between runs. */
void merge_stop(struct agent *a);
/* After the loop has stopped. */
void merge_free(struct agent *a);

#endif
