/* coordinator.h — the classic consumer group protocol as pure logic.
 *
 * Groups (Empty, PreparingRebalance, CompletingRebalance, Stable, Dead),
 * their members, generations, protocol selection, leader choice, the
 * delayed initial rebalance, session and rebalance timeouts, static
 * membership and the error codes Apache Kafka's group coordinator answers
 * with. No I/O, no clock, no event loop: the caller passes the time
 * (monotonic milliseconds) into every call and performs the "effects"
 * the coordinator returns.
 *
 * JoinGroup and SyncGroup are answered through effects: a call names its
 * pending request with an opaque pointer, and that request is answered
 * (now or in a later call, including coord_tick) by exactly one effect
 * carrying the same pointer. Every pending request is answered at the
 * latest when its rebalance times out, or by coord_shutdown. An effects
 * list owns copies of everything it points at, so it stays valid until
 * coord_effects_reset/free, whatever the coordinator does meanwhile.
 *
 * Out of memory: when an effect (or a string in it) cannot be recorded,
 * out->oom is set. Answers in such a list may be incomplete, and a
 * request may have lost its answer: the caller then fails every request
 * in the list, and every request it handed in that is neither in the
 * list nor still waiting (coord_requests_each), by closing its
 * connection. The client reconnects and rejoins; no request is left
 * unanswered.
 *
 * Committed offsets are not kept here (they live in the metadata store);
 * coord_commit_check only decides whether a commit is allowed. What a
 * store keeps of a group's membership (Kafka's GroupMetadata record) is
 * encoded and restored here (coord_group_encode_members,
 * coord_group_restore). A generation completing (the leader's SyncGroup)
 * is stored before anyone hears of it, as Kafka's doSyncGroup answers
 * from its storeGroup callback: a COORD_EFFECT_PERSIST carries the
 * record, the group's SyncGroups wait, and coord_persist_done answers
 * them with the write's outcome. So is a static member's new id replacing
 * its old one in a Stable group (Kafka's updateStaticMemberAndRebalance):
 * the PERSIST names the member, its JoinGroup waits, and
 * coord_static_persist_done answers it or puts the old id back. Neither
 * waits forever for an outcome that does not come (a PERSIST dropped
 * with a list out of memory, a write stuck in the store): the SyncGroups
 * until the sync deadline, the JoinGroup until its rebalance timeout,
 * then answered REBALANCE_IN_PROGRESS as Kafka maps a timed-out write
 * (the static member's old id put back). The
 * change Kafka stores without holding an answer (the group empties) the
 * caller stores when store_version moves.
 *
 * Views returned by coord_group_find / coord_groups_each are valid until
 * the next call that changes the coordinator. Single-threaded. */
#ifndef SLUICE_GROUP_COORDINATOR_H
#define SLUICE_GROUP_COORDINATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/limits.h"

/* The coordinator's limits live in base/limits.h, with their reasons;
 * these are their older names. */
#define COORD_GROUPS_MAX SL_GROUPS_MAX
#define COORD_GROUP_MEMBERS_MAX SL_GROUP_MEMBERS_MAX
#define COORD_PROTOCOLS_MAX SL_GROUP_PROTOCOLS_MAX
#define COORD_MEMBER_METADATA_BYTES_MAX SL_GROUP_MEMBER_METADATA_BYTES_MAX
#define COORD_GROUP_METADATA_BYTES_MAX SL_GROUP_METADATA_BYTES_MAX
#define COORD_METADATA_BYTES_MAX SL_GROUPS_METADATA_BYTES_MAX
#define COORD_ASSIGNMENT_BYTES_MAX SL_GROUP_ASSIGNMENT_BYTES_MAX
#define COORD_GROUP_ID_BYTES_MAX SL_GROUP_ID_BYTES_MAX
#define COORD_NAME_BYTES_MAX SL_GROUP_NAME_BYTES_MAX
#define COORD_CLIENT_ID_BYTES_MAX SL_GROUP_CLIENT_ID_BYTES_MAX

enum coord_state {
	COORD_EMPTY,
	COORD_PREPARING_REBALANCE,
	COORD_COMPLETING_REBALANCE,
	COORD_STABLE,
	COORD_DEAD,
};

/* Kafka's names for the states ("Empty", "PreparingRebalance", ...). */
const char *coord_state_name(enum coord_state s);
/* Case-insensitive; returns -1 if unknown. */
int coord_state_parse(kstr name);

struct coord_config {
	int64_t initial_rebalance_delay_ms; /* group.initial.rebalance.delay.ms, 3000 */
	int32_t group_max_size;             /* group.max.size; <= 0: COORD_GROUP_MEMBERS_MAX */
	int32_t session_timeout_min_ms;     /* group.min.session.timeout.ms, 6000 */
	int32_t session_timeout_max_ms;     /* group.max.session.timeout.ms, 1800000 */
	uint64_t id_seed;                   /* makes member ids unique per agent run */
	/* Protocol metadata all groups may hold; 0 or more than
	 * SL_GROUPS_METADATA_BYTES_MAX: that limit (tests lower it). */
	size_t metadata_bytes_max;
};

/* Kafka's defaults (id_seed 0: the caller should set one). */
void coord_config_default(struct coord_config *c);

struct coord_protocol {
	char *name;
	uint8_t *metadata;
	int32_t metadata_len;
};

struct coord_member {
	char *member_id;
	char *group_instance_id;    /* NULL: dynamic member */
	char *client_id;
	char *client_host;
	int32_t session_timeout_ms;
	int32_t rebalance_timeout_ms;
	struct coord_protocol *protocols;
	int32_t protocol_count;
	uint8_t *assignment;        /* NULL until the leader's SyncGroup */
	int32_t assignment_len;
	int64_t last_heartbeat_ms;
	void *join_req;             /* pending JoinGroup, or NULL */
	void *sync_req;             /* pending SyncGroup, or NULL */
	bool is_new;                /* joined but not yet in a generation */
	bool pending_sync;          /* in this generation, SyncGroup not yet seen */
	/* Stable: a static member's new id is out for storing (its
	 * JoinGroup waits in join_req); what it replaced, put back if the
	 * write fails. NULL otherwise. */
	struct coord_replaced *replaced;
};

/* A member id handed out with MEMBER_ID_REQUIRED, not yet used to join. */
struct coord_pending_member {
	char *member_id;
	int64_t deadline_ms;
};

struct coord_group {
	char *group_id;
	enum coord_state state;
	int64_t state_since_ms;     /* when it entered its state */
	int32_t generation_id;
	char *protocol_type;        /* NULL: none yet */
	char *protocol_name;        /* NULL: none selected */
	char *leader_id;            /* NULL: no leader */
	struct coord_member **members; /* in join order */
	int32_t member_count;
	size_t member_cap;
	struct coord_pending_member *pending;
	int32_t pending_count;
	size_t pending_cap;
	/* PreparingRebalance: when the join phase ends at the latest. */
	int64_t join_deadline_ms;
	bool initial_delay;         /* this join phase is the delayed initial one */
	int64_t initial_delay_remaining_ms;
	bool new_member_added;
	/* CompletingRebalance: when members that have not synced are removed. */
	int64_t sync_deadline_ms;
	/* Protocol metadata bytes its members hold (SL_GROUP_METADATA_BYTES_MAX). */
	size_t metadata_bytes;
	/* Raised whenever what a store keeps of the group changes, where
	 * Kafka's classic coordinator writes its GroupMetadata record
	 * without holding an answer for it: the group empties. 0 for a
	 * group created or restored. (A completed generation and a static
	 * member's replaced id go out as a COORD_EFFECT_PERSIST instead.) */
	uint64_t store_version;
	/* CompletingRebalance: the leader's assignments are in the members
	 * and their record is out for storing (COORD_EFFECT_PERSIST);
	 * SyncGroups wait for coord_persist_done. */
	bool persist_pending;
};

/* JOIN and SYNC answer a request; PERSIST asks the caller to store a
 * group's record (req NULL) and then call coord_persist_done. */
enum coord_effect_kind { COORD_EFFECT_JOIN, COORD_EFFECT_SYNC, COORD_EFFECT_PERSIST };

/* One member as a leader's JoinGroup response lists it. */
struct coord_member_view {
	char *member_id;
	char *group_instance_id;    /* NULL: dynamic */
	uint8_t *metadata;          /* for the selected protocol */
	int32_t metadata_len;
};

/* The answer to one pending JoinGroup or SyncGroup request. Strings are
 * NULL where Kafka sends null / nothing; a JoinGroup error answer still
 * carries member_id ("" when none; MEMBER_ID_REQUIRED carries the new id). */
struct coord_effect {
	void *req;
	enum coord_effect_kind kind;
	int16_t error;                  /* Kafka error code */
	/* JoinGroup */
	int32_t generation_id;
	char *protocol_type;
	char *protocol_name;
	char *leader_id;
	char *member_id;
	bool skip_assignment;
	struct coord_member_view *members;
	int32_t member_count;
	/* SyncGroup (protocol_type/name too) */
	uint8_t *assignment;
	int32_t assignment_len;
	/* PERSIST: the group's record as coord_group_record holds it
	 * (generation_id, protocol_type/name, leader_id too; member_id: the
	 * static member whose new id it stores, NULL for a generation) */
	char *group_id;
	uint8_t *members_record;    /* coord_group_encode_members' bytes */
	size_t members_record_len;
};

struct coord_effects {
	struct coord_effect *v;
	size_t n, cap;
	struct coord_effect_chunk *chunks; /* owned copies */
	bool oom;                        /* an effect could not be recorded */
	/* Fault injection for tests: > 0, the fail_after-th recording (an
	 * effect or a string in it) and every later one fail as on oom. */
	int32_t fail_after;
};

void coord_effects_init(struct coord_effects *e);
/* Drop the effects (after performing them); keeps the storage. */
void coord_effects_reset(struct coord_effects *e);
void coord_effects_free(struct coord_effects *e);

struct coord_join_protocol {
	kstr name;
	kbytes metadata;
};

struct coord_join_args {
	kstr group_id;
	kstr member_id;             /* "" for a first join */
	kstr group_instance_id;     /* null (len -1) for dynamic members */
	kstr protocol_type;
	kstr client_id;
	kstr client_host;
	int32_t session_timeout_ms;
	int32_t rebalance_timeout_ms; /* <= 0: session_timeout_ms (v0) */
	int16_t api_version;        /* v4+: MEMBER_ID_REQUIRED; v9+: skip_assignment */
	int32_t protocol_count;
	const struct coord_join_protocol *protocols;
};

struct coord_sync_assignment {
	kstr member_id;
	kbytes assignment;
};

struct coord_sync_args {
	kstr group_id;
	int32_t generation_id;
	kstr member_id;
	kstr group_instance_id;
	kstr protocol_type;         /* null: not checked (before v5) */
	kstr protocol_name;
	int32_t assignment_count;   /* the leader's; others send none */
	const struct coord_sync_assignment *assignments;
};

struct coordinator;

/* Returns 0 or SL_ENOMEM. */
int coord_new(const struct coord_config *cfg, struct coordinator **out);
void coord_free(struct coordinator *c);

/* JoinGroup. The answer for req is appended to out now or later. Returns
 * 0, or SL_ENOMEM (req is then answered with UNKNOWN_SERVER_ERROR when
 * an effect can still be recorded). */
int coord_join(struct coordinator *c, int64_t now_ms, const struct coord_join_args *a,
	       void *req, struct coord_effects *out);
/* SyncGroup; same contract as coord_join. */
int coord_sync(struct coordinator *c, int64_t now_ms, const struct coord_sync_args *a,
	       void *req, struct coord_effects *out);
/* The outcome of a COORD_EFFECT_PERSIST for group_id's generation_id:
 * KERR_NONE once the record is durable, else the Kafka error the
 * SyncGroups get (Kafka's storeGroup maps its append error). Success
 * makes the group Stable and answers every waiting SyncGroup with its
 * assignment; an error answers them with it and the group rebalances
 * (Kafka's resetAndPropagateAssignmentError). Nothing when the group has
 * moved on meanwhile (a rebalance, another generation, unloaded), as
 * Kafka's callback checks CompletingRebalance at the same generation. */
void coord_persist_done(struct coordinator *c, int64_t now_ms, kstr group_id,
			int32_t generation_id, int16_t error, struct coord_effects *out);
/* The outcome of a COORD_EFFECT_PERSIST naming member_id (a static
 * member's new id), as coord_persist_done's. Success answers its
 * JoinGroup (the old id stays fenced); an error puts the old id, its
 * protocols and leadership back and answers the JoinGroup with the error
 * and no member id. Nothing when the group left Stable meanwhile (the
 * rebalance answers the JoinGroup) or the id was replaced again. */
void coord_static_persist_done(struct coordinator *c, int64_t now_ms, kstr group_id,
			       kstr member_id, int16_t error, struct coord_effects *out);
/* Heartbeat: answered at once with the returned Kafka error code. */
int16_t coord_heartbeat(struct coordinator *c, int64_t now_ms, kstr group_id,
			int32_t generation_id, kstr member_id, kstr group_instance_id);
/* LeaveGroup of one member (member_id "" with an instance id: by
 * instance, as admin clients do). Returns the member's Kafka error code;
 * the leave may answer other members' pending requests. *group_found is
 * false when there is no such group. */
int16_t coord_leave(struct coordinator *c, int64_t now_ms, kstr group_id, kstr member_id,
		    kstr group_instance_id, bool *group_found, struct coord_effects *out);
/* Timers: session expiry, join phase and sync phase deadlines, a static
 * member's replaced id waiting for its write too long: everything
 * due at now_ms (a deadline equal to now_ms is due). Call every ~100 ms,
 * and at coord_next_deadline; calling it more often changes nothing. */
void coord_tick(struct coordinator *c, int64_t now_ms, struct coord_effects *out);
/* The earliest time at which coord_tick has something to do (a member's
 * session, a pending member id, a join or sync phase ends), or INT64_MAX.
 * It can only move earlier by a call that adds a deadline, and a session
 * ends at least group.min.session.timeout.ms after it is set; so a caller
 * that ticks every ~100 ms and, at each tick, arms a timer for this
 * time, expires members at their deadline. (A join or sync phase shorter
 * than the tick may end up to a tick late.) */
int64_t coord_next_deadline(const struct coordinator *c);
/* Answer every pending request with NOT_COORDINATOR (agent shutdown). */
void coord_shutdown(struct coordinator *c, struct coord_effects *out);

/* OffsetCommit: may this commit be stored? Returns a Kafka error code
 * for every partition of the request (KERR_NONE: store it), with Kafka's
 * rules (ClassicGroup.validateOffsetCommit): generation < 0 on an Empty
 * group is accepted whatever the member id (admin clients, consumers
 * managing their own partitions), and creates an unknown group; an
 * unknown group with generation >= 0 gets GROUP_ID_NOT_FOUND from
 * api_version 9, ILLEGAL_GENERATION before. */
int16_t coord_commit_check(struct coordinator *c, int64_t now_ms, kstr group_id,
			   int32_t generation_id, kstr member_id, kstr group_instance_id,
			   int16_t api_version);

/* TxnOffsetCommit: may this transactional commit be stored? Kafka 3.9's
 * GroupCoordinator.handleTxnCommitOffsets: an unknown group is created
 * Empty whatever the generation (a plain commit's generation is illegal
 * there), then validateOffsetCommit: generation < 0 on an Empty group is
 * accepted, a commit without member information (generation -1, no
 * member or instance id: v0-2) too whatever the group's state; else the
 * instance, the member and the generation, and no REBALANCE_IN_PROGRESS
 * (a plain commit's answer while the group completes its rebalance).
 * An empty group id is INVALID_GROUP_ID, as for every group API but the
 * plain offset ones. */
int16_t coord_txn_commit_check(struct coordinator *c, int64_t now_ms, kstr group_id,
			       int32_t generation_id, kstr member_id, kstr group_instance_id);

/* Every request waiting inside the coordinator (a pending JoinGroup or
 * SyncGroup), in no particular order. */
void coord_requests_each(const struct coordinator *c, void (*fn)(void *arg, void *req), void *arg);

/* NULL if the coordinator has no such group in memory. */
const struct coord_group *coord_group_find(const struct coordinator *c, kstr group_id);
/* Every group in memory, in no particular order. */
void coord_groups_each(const struct coordinator *c,
		       void (*fn)(void *arg, const struct coord_group *g), void *arg);
size_t coord_group_count(const struct coordinator *c);
/* DeleteGroups: KERR_NONE (removed from memory, or not in memory),
 * NON_EMPTY_GROUP when it has members. The caller deletes the offsets. */
int16_t coord_group_delete(struct coordinator *c, kstr group_id);
/* Another agent coordinates the group now (cluster mode: this agent lost
 * its lease): its waiting requests are answered NOT_COORDINATOR and it
 * leaves memory, members and all (they rejoin at the new coordinator). */
void coord_group_unload(struct coordinator *c, kstr group_id, struct coord_effects *out);
/* The sum of every group's store_version moves (it only grows): a caller
 * looks for groups to store only when it changed. */
uint64_t coord_store_changes(const struct coordinator *c);

/* The group's members as a store keeps them, appended to out (out->oom
 * on failure): Kafka's GroupMetadataValue version 3 member array after
 * an int16 version (3): int32 count, then per member member_id,
 * group_instance_id (nullable), client_id, client_host (int16-length
 * strings), rebalance and session timeouts (int32), the subscription
 * for the selected protocol and the assignment (int32-length bytes). */
void coord_group_encode_members(const struct coord_group *g, struct kbuf *out);

/* A group as a store kept it (generation, protocol, leader and the
 * encoded members). */
struct coord_group_record {
	int32_t generation_id;
	const char *protocol_type;  /* NULL: none */
	const char *protocol_name;  /* NULL: none */
	const char *leader_id;      /* NULL: none */
	const uint8_t *members;     /* coord_group_encode_members' bytes */
	size_t members_len;
};

/* Bring a stored group back (a new coordinator after a takeover, or a
 * restart), as Kafka's coordinator loads its GroupMetadata: Stable at
 * the stored generation with its members and their assignments, or
 * Empty when it has none; each member's session counts from now_ms, so
 * members that heartbeat carry on and silent ones expire. 0; SL_EBUSY
 * when the group is in memory already (left as it is); SL_EINVAL when
 * the record does not decode, breaks a limit or its leader is not a
 * member (nothing restored: members rejoin); SL_ENOMEM. */
int coord_group_restore(struct coordinator *c, int64_t now_ms, kstr group_id,
			const struct coord_group_record *r);

/* The member's metadata for the group's selected protocol (NULL, 0 if none). */
const struct coord_protocol *coord_member_protocol(const struct coord_group *g,
						   const struct coord_member *m);

#endif
