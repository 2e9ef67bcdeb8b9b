/* service.h — the consumer group service: drives the coordinator
 * (coordinator.h, pure logic) from the event loop and keeps committed
 * offsets in the metadata store. The Kafka group APIs (api/groups.c)
 * decode a request, call one function here and encode the answer.
 *
 * It owns: the coordinator and its timers (session, join and sync
 * deadlines: a 100 ms tick, and a one-shot timer each tick arms for a
 * deadline due before the next one, so members expire at their
 * deadline); performing the coordinator's effects, which answer waiting
 * JoinGroup and SyncGroup requests through struct group_waiter; the
 * offsets write queue (commits, deletes) run on the thread pool; the
 * offsets retention sweep (--offsets-retention-minutes); storing each
 * group's membership where Kafka writes its GroupMetadata record (a
 * completed generation before its SyncGroups are answered) and
 * loading it with the group (a restart, a takeover); forgetting Empty
 * groups without offsets (their record deleted, as Kafka's cleanup
 * tombstones it); the set of
 * groups with stored offsets, loaded once at start and kept in memory so
 * that no list, describe or delete scans the store on the loop.
 *
 * Threads: every function is called on the loop thread, and every
 * callback (group_waiter.answer, group_offsets_op.done) fires there.
 * Only the store transactions of the write queue run on a pool thread.
 *
 * Errors: the group protocol's answers are Kafka error codes, as the
 * coordinator's are (int16_t returns); store outcomes are 0 or negative
 * SL_E* codes (int returns, op->rc).
 *
 * Lifetime: group_svc_start, then requests until group_svc_shutdown (the
 * drain), then group_svc_free once the loop has stopped. Between shutdown
 * and free group_svc_running is false and callers must not call the rest;
 * the API answers NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE instead. */
#ifndef SLUICE_GROUP_SERVICE_H
#define SLUICE_GROUP_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "base/buf.h"
#include "group/coordinator.h"
#include "meta/meta.h"

struct group_svc;

struct lease_set;

struct group_svc_config {
	int64_t initial_rebalance_delay_ms; /* group.initial.rebalance.delay.ms */
	int64_t offsets_retention_ms;       /* offsets.retention.minutes, in ms */
	/* Cluster mode (cluster/lease.h): a group is coordinated only while
	 * its lease is held, and its offset writes are fenced by the lease's
	 * epoch; the offsets retention sweep runs only on the holder of the
	 * job/offsets-retention lease. NULL: every group asked about is
	 * coordinated here, unfenced (unit tests). */
	struct lease_set *leases;
	/* The registered agent the retention deletes are fenced for (NULL: a
	 * store this agent claims, where nothing needs fencing). */
	const struct meta_agent *self;
	/* Whether placement puts group_id on this agent (NULL: always): a
	 * group that moves elsewhere is unloaded and its lease released. */
	bool (*placed_here)(void *arg, const char *group_id);
	void *placed_arg;
	/* A group without members and requests for this long is unloaded
	 * and its lease released (0: SL_GROUP_LEASE_IDLE_MS; tests lower
	 * it); an Empty group without offsets not before it is forgotten. */
	int64_t idle_ms;
	/* An Empty group without offsets is forgotten (dropped from memory,
	 * its stored membership deleted, fenced by its lease) after this long
	 * Empty (0: SL_GROUP_EMPTY_FORGET_MS; tests lower it). */
	int64_t empty_forget_ms;
};

/* Create the coordinator, load which groups have stored offsets (one
 * store read, on the loop) and start the timer. meta must outlive the
 * service. Returns 0 or SL_ENOMEM; a failed load of the stored groups is
 * logged, not fatal. */
int group_svc_start(uv_loop_t *loop, struct meta *meta, const struct group_svc_config *cfg,
		    struct group_svc **out);
/* The drain: answer every waiting JoinGroup/SyncGroup (NOT_COORDINATOR)
 * and stop the timer. Queued store ops still run and call their done.
 * NULL or a second call: nothing. */
void group_svc_shutdown(struct group_svc *s);
/* After the loop has stopped (no store op in flight). NULL: nothing. */
void group_svc_free(struct group_svc *s);
/* Started and not shut down (false for NULL). */
bool group_svc_running(const struct group_svc *s);

/* Before serving a request for a group placement puts here: KERR_NONE
 * when this agent holds the group's lease and has loaded the group;
 * COORDINATOR_LOAD_IN_PROGRESS while it acquires the lease or loads the
 * group's offsets (the caller parks the request, group_svc_park, and
 * asks again when that settles; retriable for the client otherwise);
 * NOT_COORDINATOR when another live agent holds the lease (views of the
 * live agents differ for a moment: the client asks FindCoordinator
 * again). Without leases (cfg.leases NULL): KERR_NONE. */
int16_t group_svc_acquire(struct group_svc *s, kstr group_id);

/* A request parked while its group's lease is acquired and its offsets
 * loaded (group_svc_park); the caller's, e.g. in the request's arena. */
struct group_park {
	/* Called on the loop once, when the group is ready here, known to
	 * be another agent's, dropped, when wait_ms passed or the service
	 * stops: ask group_svc_acquire again. */
	void (*resume)(struct group_park *p);
	/* the service's */
	struct group_park *next;
	int64_t deadline_ms;
	char group_id[COORD_GROUP_ID_BYTES_MAX + 1];
};
/* Park p until group_id's acquire settles (see resume), at most wait_ms.
 * 0; SL_EINVAL for an id too long, SL_EBUSY once the service stops
 * (not parked: answer now). resume never runs before this returns. */
int group_svc_park(struct group_svc *s, kstr group_id, int64_t wait_ms, struct group_park *p);

/* ---- JoinGroup and SyncGroup: requests that wait ---- */

/* A JoinGroup or SyncGroup waiting inside the coordinator. The caller
 * allocates it (it must live until answer fires; the request's arena is
 * the natural place) and sets answer; the rest is the service's. */
struct group_waiter {
	/* Fires exactly once, on the loop, possibly before group_svc_join or
	 * group_svc_sync returns: with the coordinator's answer f (valid only
	 * during the call; copy what must outlive it), or with f NULL when the
	 * answer was lost to out-of-memory, and then the caller must close the
	 * request's connection (the client reconnects and rejoins). */
	void (*answer)(struct group_waiter *w, const struct coord_effect *f);
	struct group_waiter *prev, *next; /* the service's list of waiters */
	bool pending;                     /* scratch for the out-of-memory sweep */
};

/* JoinGroup / SyncGroup (args as coordinator.h). w->answer fires later
 * or now; also when a later call, the timer or group_svc_shutdown
 * decides. */
void group_svc_join(struct group_svc *s, const struct coord_join_args *args,
		    struct group_waiter *w);
void group_svc_sync(struct group_svc *s, const struct coord_sync_args *args,
		    struct group_waiter *w);

/* ---- requests answered at once (Kafka error codes) ---- */

int16_t group_svc_heartbeat(struct group_svc *s, kstr group_id, int32_t generation_id,
			    kstr member_id, kstr group_instance_id);
/* One member leaves (coord_leave); other members' waiting requests it
 * settles are answered before this returns. */
int16_t group_svc_leave(struct group_svc *s, kstr group_id, kstr member_id,
			kstr group_instance_id);
/* May an OffsetCommit be stored (coord_commit_check)? */
int16_t group_svc_commit_check(struct group_svc *s, kstr group_id, int32_t generation_id,
			       kstr member_id, kstr group_instance_id, int16_t api_version);
/* May a TxnOffsetCommit be stored (coord_txn_commit_check)? */
int16_t group_svc_txn_commit_check(struct group_svc *s, kstr group_id, int32_t generation_id,
				   kstr member_id, kstr group_instance_id);

/* ---- reading groups (ListGroups, DescribeGroups) ---- */

/* Expire what is due now (members past their session, phases past
 * their deadline), answering the requests that settles. ListGroups,
 * DescribeGroups and DeleteGroups call it first: the deadline timer
 * fires on the loop's next turn, and a request read in the same turn
 * must not see a member whose session has ended. */
void group_svc_expire(struct group_svc *s);

/* The coordinator's view of a group in memory, or NULL. Valid until the
 * next call into the service or the next turn of the loop. */
const struct coord_group *group_svc_group_find(const struct group_svc *s, kstr group_id);
/* Whether offsets of the group are stored, as far as this agent knows. */
bool group_svc_has_offsets(const struct group_svc *s, const char *group_id);
/* Whether the store is shared with other agents (cluster mode): groups
 * committed through them are in the store but not in what this agent
 * knows, so listing them needs a store read (meta_group_list). */
bool group_svc_store_shared(const struct group_svc *s);
/* An upper bound on the groups group_svc_groups_each lists. */
size_t group_svc_group_count_max(const struct group_svc *s);
/* Every group: those in memory with their state and protocol type (NULL:
 * none yet), then those known only by stored offsets (e.g. after a
 * restart) as "Empty", "consumer". The strings are valid during the call. */
void group_svc_groups_each(const struct group_svc *s,
			   void (*fn)(void *arg, const char *group_id, const char *state,
				      const char *protocol_type),
			   void *arg);

/* ---- the offsets write queue ---- */

/* A write to the offsets store. Ops run on a pool thread one batch at a
 * time, in queue order: a delete queued after a commit of the same group
 * removes what that commit stored, and a commit queued after a delete is
 * kept. Consecutive commits share one transaction (group commit, one
 * fsync); a delete runs alone. The loop thread never writes the store.
 *
 * The caller owns the op and everything it points at, and keeps them
 * until done fires. */
struct group_offsets_op {
	/* in */
	const char *group_id;
	const struct meta_offset_commit *rows;  /* group_svc_offsets_commit */
	size_t row_count;
	/* group_svc_txn_offsets_commit: the transaction the rows are
	 * pending in */
	const char *transactional_id;
	int64_t producer_id;
	int16_t producer_epoch;
	const int64_t *tids;  /* group_svc_offsets_delete; NULL: every offset */
	const int32_t *partitions;
	size_t n;
	/* Fires once, on the loop, when the op is through the store, or has
	 * failed before reaching it (possibly before the queueing call
	 * returns, when its transaction cannot be started). */
	void (*done)(struct group_svc *s, struct group_offsets_op *op);
	/* out, when done fires: rc 0 (a commit is durable; a delete removed
	 * deleted rows) or a negative SL_E* code (nothing of it stored;
	 * SL_EBUSY: fenced, another agent coordinates the group now) */
	int rc;
	int64_t deleted;
	/* the service's */
	struct group_offsets_op *next;
	int kind;
	int64_t epoch;  /* the group lease's epoch the write is fenced by */
	bool emptied;   /* a delete left the group without offsets */
};

/* Queue an OffsetCommit's rows (row_count > 0). Returns 0 (done fires
 * later), or SL_ENOMEM without queueing it (done never fires). */
int group_svc_offsets_commit(struct group_svc *s, struct group_offsets_op *op);
/* Queue a TxnOffsetCommit's rows (row_count > 0) as pending offsets of
 * op->transactional_id's transaction (meta_txn_offset_commit), in one
 * store transaction of their own, after every op queued before: a plain
 * commit queued after them wins over them when the transaction commits,
 * as in Kafka. op->rc SL_EBUSY: the transaction is no longer Ongoing
 * with that producer (nothing stored). Returns as
 * group_svc_offsets_commit. */
int group_svc_txn_offsets_commit(struct group_svc *s, struct group_offsets_op *op);
/* Queue a delete of the listed partitions' offsets, or of all of them
 * (tids NULL), after every op queued before. Returns as
 * group_svc_offsets_commit. */
int group_svc_offsets_delete(struct group_svc *s, struct group_offsets_op *op);

/* DeleteGroups of one group: forget its membership and, when offsets of
 * it are stored or on their way to the store, queue op (group_id and
 * done set by the caller) to delete them all. Returns KERR_NONE with
 * *queued telling whether done will fire; NON_EMPTY_GROUP (it has
 * members); GROUP_ID_NOT_FOUND (neither in memory nor stored);
 * COORDINATOR_NOT_AVAILABLE (the op could not be queued: out of memory).
 * group_id must be a valid group id (no NUL, at most
 * COORD_GROUP_ID_BYTES_MAX bytes). */
int16_t group_svc_group_delete(struct group_svc *s, const char *group_id,
			       struct group_offsets_op *op, bool *queued);

/* OffsetDelete, as Kafka's coordinator decides it: GROUP_ID_NOT_FOUND when
 * the group is neither in memory nor known to the store queue;
 * NON_EMPTY_GROUP when it has members and is not a "consumer" group;
 * else KERR_NONE, and then each topic a member subscribes to
 * (group_svc_topic_subscribed) gets GROUP_SUBSCRIBED_TO_TOPIC and the
 * others are deleted through group_svc_offsets_delete. */
int16_t group_svc_offsets_deletable(const struct group_svc *s, const char *group_id);
/* Whether a member of a group that is not Empty subscribes to topic
 * (its metadata for the selected consumer protocol lists it). */
bool group_svc_topic_subscribed(const struct group_svc *s, const char *group_id, kstr topic);

#endif
