/* collect.h — the agent's background collection of dead objects: every
 * --gc-interval-ms (0: never, `sluice gc` does it), objects whose live
 * bytes reached 0 and that were made more than --gc-grace-ms ago are
 * deleted from the store and the metadata (storage/gc.h), one page per
 * job of the maintenance queue (agent/maintenance.h), so trims and a
 * drain never wait behind a whole pass. Also the purge of deleted topics'
 * batch rows, which makes their objects dead.
 *
 * Loop thread only. */
#ifndef SLUICE_COLLECT_H
#define SLUICE_COLLECT_H

struct agent;

/* 0 or SL_ENOMEM. */
int collect_start(struct agent *a);
/* Purge the batch rows deleted topics left in the metadata store
 * (meta_purge_deleted), one topic per job of the maintenance queue, until
 * none is left; called when a topic is deleted, and once at start for
 * what an earlier run left. Their objects are dead once the rows are
 * gone. */
void collect_purge_soon(struct agent *a);
/* Stop the timer (draining); a pass in flight ends after its page. */
void collect_stop(struct agent *a);
/* After the loop has stopped. */
void collect_free(struct agent *a);

#endif
