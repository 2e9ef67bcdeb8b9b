/* registry.h — this agent in the cluster's registry (issue 12): it
 * registers at start (taking an unused node id when --node-id is not
 * given), heartbeats from the thread pool, feeds the live agents and
 * their epoch to the placement view, and on a shared store (PostgreSQL)
 * learns what other agents changed — topics, partitions, configs, high
 * watermarks (with the committed rows, for the batch index) — from
 * change notifications as they arrive, and polls the catalog, high
 * watermarks and log starts as the fallback (every second; every 250 ms
 * while notifications are lost). A clean stop deregisters.
 *
 * Loop thread only (the store calls run on the pool: the heartbeats in
 * one job at a time, the poll in another, on the metadata store's
 * "cluster" and "catalog" connections). */
#ifndef SLUICE_REGISTRY_H
#define SLUICE_REGISTRY_H

#include <stdint.h>

struct agent;
struct meta_agent;

/* [start]: register (waiting out the lease of a dead agent that held the
 * requested id, at most SL_CLUSTER_LEASE_MS plus a heartbeat; trying
 * again while the store fails, SL_EMETA, for up to
 * SL_CLUSTER_REGISTER_RETRY_MS), set a->cfg.node_id, feed the placement
 * view, start the timer. 0, or an error after logging why (SL_EBUSY: a
 * live agent holds the id). */
int registry_start(struct agent *a);
/* This agent as registered in a store several agents share (its leases'
 * holder), or NULL: not registered, or a store this agent claims (where
 * leases need no store). Valid until registry_free. */
const struct meta_agent *registry_self(struct agent *a);
/* Where the start (clock_mono_us) of this agent's last successful
 * heartbeat (or its registration) is kept, updated on the loop: other
 * agents may drop this one SL_CLUSTER_LEASE_MS after it, and with it
 * every lease it holds (lease_set_beat). NULL without a registry. */
const int64_t *registry_beat_ok(struct agent *a);
/* Draining: stop the timer; a job in flight is dropped when done. */
void registry_stop(struct agent *a);
/* After the loop has stopped: deregister (blocking) and free. */
void registry_free(struct agent *a);

#endif
