/* lease.h — the leases this agent holds in a cluster (issue 12): a
 * group's coordinator ("group/<id>") and each background job
 * ("job/<name>") act only while they hold their lease, so two agents
 * never both act for one group or run one job, even while their views
 * of the live agents differ.
 *
 * The primitive is the metadata store's (meta.h, struct meta_lease: a
 * holder, an epoch raised on every change of holder, an expiry in the
 * store's clock). This is the policy: which leases the agent wants, one
 * pool job at a time that acquires, renews and releases all of them
 * every SL_LEASE_RENEW_INTERVAL_MS, and when a hold stops counting
 * locally: SL_LEASE_MS after the start of the last sync that renewed it
 * (the store's expiry is measured from a later instant, so the agent
 * stops acting before anyone else may start). Writes that matter are
 * fenced by the epoch in their transaction besides (meta.h), so a hold
 * that outlived itself cannot overwrite a successor's.
 *
 * On a store one agent claims (embedded SQLite), every lease is held at
 * once at epoch 0 ("not fenced"): nobody else can take it.
 *
 * Loop thread only; callbacks fire on the loop. */
#ifndef SLUICE_LEASE_H
#define SLUICE_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "meta/meta.h"

struct lease_set;

/* A lease's hold changed: held (at epoch; 0 on a claimed store) or not
 * (holder: the node holding it, -1 when unknown or nobody). Fired after
 * a sync that changed it, or when a hold ran out locally. */
typedef void (*lease_change_fn)(void *arg, const char *name, bool held, int64_t epoch,
				int32_t holder);

/* A set for self (a registered agent, outliving the set), or NULL self
 * for a store one agent claims (every lease held at once). 0 or
 * SL_ENOMEM. */
int lease_set_new(uv_loop_t *loop, struct meta *meta, const struct meta_agent *self,
		  struct lease_set **out);
/* Bound every hold by the agent's registry row as well: a lease whose
 * holder is not registered is free to take (meta_lease_decide), and
 * other agents drop this one's row SL_CLUSTER_LEASE_MS after the start
 * of its last successful heartbeat, *beat_ok_us (clock_mono_us, updated
 * on the loop; 0: not yet). Without it, syncs that succeed while the
 * heartbeats fail (their connections, or their pool jobs, are apart)
 * would keep a hold counting after another agent took it. */
void lease_set_beat(struct lease_set *s, const int64_t *beat_ok_us);
/* Want the lease name (at most META_LEASE_NAME_BYTES - 1 bytes): it is
 * acquired as soon as a sync can (one is started now when none runs),
 * then renewed until lease_drop. Wanting it again changes fn and arg.
 * fn may be NULL. 0, SL_EINVAL (name), SL_ELIMIT (SL_LEASES_MAX wanted),
 * SL_ENOMEM. */
int lease_want(struct lease_set *s, const char *name, lease_change_fn fn, void *arg);
/* Stop wanting it: released by the next sync when held (fn no longer
 * fires). Unknown names: nothing. */
void lease_drop(struct lease_set *s, const char *name);
/* Whether the lease counts as held now (its hold has not run out, even
 * where the timer has not ended it yet); *epoch (may be NULL) gets its
 * epoch (0 when not held, or on a claimed store). */
bool lease_held(const struct lease_set *s, const char *name, int64_t *epoch);
/* Whether a sync answered for name since it was wanted (false: still
 * asking); *holder (may be NULL) gets the holder it saw. */
bool lease_known(const struct lease_set *s, const char *name, int32_t *holder);
/* The drain: no more syncs (a sync in flight is dropped when done). The
 * holds end with the agent's registry row (a clean stop deregisters, and
 * a lease whose holder is not registered is free). */
void lease_set_stop(struct lease_set *s);
/* After the loop has stopped. NULL: nothing. */
void lease_set_free(struct lease_set *s);

#endif
