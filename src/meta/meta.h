/* meta.h — the metadata store seam: the single source of truth for
 * topics, partitions, objects and the batches inside them (and, later,
 * consumer groups and agents).
 *
 * Backends sit behind a table of methods (sqlite now; postgres later).
 *
 * Who calls what, and how long a call may block. Each call below says
 * one of:
 *   [loop]    the event loop thread. Reads only, from one snapshot, no
 *             write lock taken: microseconds when the pages are cached,
 *             a disk read otherwise; never waits on another caller's
 *             transaction or fsync.
 *   [pool: X] a libuv pool thread, on the backend's connection for X,
 *             never the loop. Writes: waits for the store's write lock
 *             (behind a produce commit, or one trim chunk: milliseconds;
 *             given up after 5 s with SL_EMETA) and for an fsync
 *             (milliseconds). Calls of one kind X run one at a time as
 *             the caller orders them (commit: seal order; offsets: the
 *             group service's queue and the transaction service's, the
 *             two serialized by the connection's lock; maintenance: the
 *             trim queue; admin: the agent's jobs).
 *   [start]   the loop thread before it serves requests (loading the
 *             catalog): may scan whole tables.
 *   [tool]    a command-line tool's only thread.
 *   [pool: read] a libuv pool thread, on the backend's connection for
 *             the read path's lookups: reads only, as [loop], but off
 *             the loop, where a PostgreSQL round trip must not run (the
 *             reader's pool jobs, storage/reader.c; ListOffsets' and
 *             OffsetFetch's pool jobs; SASL logins' credential
 *             lookups, api/sasl.c; the agents' ACL poll). While serving,
 *             the loop makes no store call but meta_listen_fd/_read
 *             (no round trip); its connection serves [start] and tools.
 * A backend keeps one connection per kind (loop, read, commit, offsets,
 * maintenance, admin; offsets one per lane, meta_offsets_lanes), so no
 * call waits on a lock another kind holds for long, and the loop never waits for a write. A call from the wrong
 * thread is serialized by the connection's lock, not corrupted.
 *
 * The agent registry, the catalog poll and the lease syncs (cluster
 * mode) run on connections of their own (PostgreSQL: "cluster",
 * "catalog", "leases"), so a heartbeat never waits behind a topic delete
 * on the admin connection, a large catalog's poll or a lease sync; change notifications arrive on one
 * more, "listen", which the loop reads without blocking (libpq's
 * asynchronous interface: the loop polls its socket) and only the
 * registry's poll job (re)connects.
 *
 * A store that cannot be reached (PostgreSQL stopped or restarting):
 * every call fails with SL_EMETA, quickly — a broken connection is
 * reconnected at most once per backoff interval (100 ms doubling to
 * 2 s), and between attempts calls fail without a round trip — and the
 * outage is logged once when it starts and once when it ends. A store
 * that stops answering on an open connection: a call gives up at its
 * deadline (PostgreSQL: limits.h SL_META_PG_*; a heartbeat or a lease
 * sync as a whole, 500 ms before what the last one renewed ends, at
 * least 1.5 s; 10 s a round trip for commits, offsets and reads; 60 s
 * for the rest) with SL_EMETA, and the next reconnects. A commit
 * whose outcome the store never confirmed returns SL_EMETA too, so
 * nothing is acknowledged without its commit.
 *
 * Strings returned inside structs are copied into the struct (fixed
 * arrays) or into malloc'd arrays the caller frees with the matching
 * *_free function. */
#ifndef SLUICE_META_H
#define SLUICE_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/authorizer.h"
#include "base/err.h"
#include "txn/coordinator.h"

#define META_TOPIC_NAME_BYTES 250 /* 249 chars + NUL */
#define META_CONFIG_NAME_BYTES 256
#define META_CONFIG_VALUE_BYTES 1024
#define META_OBJECT_KEY_BYTES 128

struct meta;

/* One change of a topic config: value NULL deletes it. */
struct meta_config_change {
	const char *name;
	const char *value;
};

struct meta_config {
	char name[META_CONFIG_NAME_BYTES];
	char value[META_CONFIG_VALUE_BYTES];
};

/* A manual replica assignment (CreateTopics, CreatePartitions: issue
 * 16) of the partitions from first on: replication broker ids each,
 * partition first + i's at ids[i * replication]. The store replicates, so
 * it is recorded and reported, never acted on. */
struct meta_replicas {
	int32_t first;        /* 0 for a new topic; a grown one's old count */
	int16_t replication;  /* ids per partition, 1..SL_CLUSTER_AGENTS_MAX */
	const int32_t *ids;
};

struct meta_topic {
	int64_t tid;                /* the store's integer key */
	char name[META_TOPIC_NAME_BYTES];
	uint8_t uuid[16];           /* Kafka topic id */
	int32_t partition_count;
	struct meta_config *configs; /* malloc'd; only set-on-topic configs */
	int32_t config_count;
	/* The partitions' assignments: NULL when none has one; else malloc'd,
	 * partition_count * replication ids, partition p's from
	 * replicas[p * replication], -1 there for a partition without one.
	 * Every assigned partition of a topic has the same replication (as
	 * Kafka checks). */
	int32_t *replicas;
	int16_t replication;
};

struct meta_partition {
	int64_t tid;
	int32_t partition;
	int64_t log_start_offset;
	int64_t high_watermark;
	/* The last stable offset: the first offset of the partition's
	 * earliest open transaction, never below the log start; the high
	 * watermark when none is open (docs/transactions.md, section 5). */
	int64_t last_stable_offset;
	/* The compacted-topic cleaner's checkpoint (schema version 12):
	 * offsets below it were cleaned by an earlier pass (0 before any),
	 * so the first dirty offset is max(it, log start). Set only by
	 * meta_compact_swap; filled by meta_partition_get only. */
	int64_t clean_offset;
};

/* What meta_partition_trim removes from the front of a partition: every
 * limit below 0 is off. */
struct meta_trim {
	int64_t offset;          /* DeleteRecords: the new log start, at least */
	int64_t cutoff_ms;       /* retention.ms: batches from the oldest on
				    whose max_timestamp is below it */
	int64_t retention_bytes; /* retention.bytes: then the oldest batches
				    while the bytes left stay >= it */
	int64_t limit;           /* never past this offset (the high watermark
				    the caller serves) */
	int64_t producers_before_ms; /* idempotent producers' state in the
				    partition last written before it (wall
				    ms) goes: Kafka's producer.id.expiration.ms;
				    0 keeps all */
};

/* What a commit made of one batch (meta_commit_batch.result). An
 * idempotent batch (producer_id >= 0, base_sequence >= 0) is checked
 * against its producer's state in the partition inside the commit
 * transaction, as Kafka 3.9 checks an append: a retry of one of the
 * producer's last META_PRODUCER_BATCHES batches (same epoch, same first
 * and last sequence) is a duplicate, an older epoch is fenced, a new
 * epoch must start at sequence 0 and a batch of the current one must
 * continue the sequence. A batch that gets no row keeps its bytes in the
 * object, where nothing references them (the object's live_bytes never
 * counted them). */
enum meta_batch_result {
	META_BATCH_APPENDED,      /* a row, at base_offset */
	META_BATCH_DUPLICATE,     /* no row: base_offset is the original's */
	META_BATCH_OUT_OF_ORDER,  /* no row: OUT_OF_ORDER_SEQUENCE_NUMBER */
	META_BATCH_FENCED,        /* no row: INVALID_PRODUCER_EPOCH */
	META_BATCH_NO_PARTITION,  /* no row: the partition was deleted */
	/* Transactions (meta_batch_kind; docs/transactions.md, sections 3-4),
	 * no row for any of them. INVALID_PRODUCER_EPOCH is META_BATCH_FENCED. */
	META_BATCH_TXN_UNKNOWN,   /* TXN_DATA: no such transactional id, or
				     another producer id: INVALID_PRODUCER_ID_MAPPING */
	META_BATCH_TXN_COMPLETING, /* TXN_DATA: its transaction is in
				     PrepareCommit/PrepareAbort: NOT_ENOUGH_REPLICAS */
	META_BATCH_TXN_NOT_ADDED, /* TXN_DATA: no Ongoing transaction holds the
				     partition: INVALID_TXN_STATE (Produce v0-10),
				     TRANSACTION_ABORTABLE (v11) */
	META_BATCH_TXN_OPEN,      /* DATA from a producer id with an open
				     transaction in the partition: INVALID_TXN_STATE */
	META_BATCH_MARKER_REFUSED, /* MARKER: not for the transaction the id is
				     completing, or already written there (stale,
				     duplicate): dropped without an answer */
};
/* A producer's state in a partition as DescribeProducers answers it
 * (Kafka's ProducerStateEntry), from producer_state and partition_txns. */
struct meta_producer_desc {
	int64_t producer_id;
	int16_t producer_epoch;
	int32_t last_sequence;    /* of its last batch there; -1 with none */
	int64_t last_ms;          /* when its last batch or marker was committed (wall ms) */
	int32_t coordinator_epoch; /* of the last marker written for it there; -1 */
	int64_t txn_start_offset; /* its open transaction's first offset there; -1 */
};

/* Batches of a producer's state per partition (Kafka's
 * max.in.flight.requests.per.connection for idempotence). */
#define META_PRODUCER_BATCHES 5

/* What a batch is to the store's transaction checks. */
enum meta_batch_kind {
	META_BATCH_DATA = 0,     /* a plain or idempotent producer's */
	META_BATCH_TXN_DATA,     /* a transactional producer's (transactional_id) */
	META_BATCH_MARKER,       /* a COMMIT/ABORT control batch ending
				    transaction txn_seq of transactional_id */
};

/* An aborted transaction in a partition (Kafka's AbortedTransaction):
 * its producer id, its first offset there and its ABORT marker's
 * offset. */
struct meta_aborted_txn {
	int64_t producer_id;
	int64_t first_offset;
	int64_t last_offset;
};

/* The aborted transactions one marker's batch reports (struct
 * meta_commit_batch.aborted): its own producer id's and one older
 * producer id's (a rotated-away id's transaction left open, rare). */
#define META_MARKER_ABORTED_MAX 2

/* Batch header attributes the store keeps (batches.attributes). */
#define META_BATCH_ATTR_TRANSACTIONAL 0x10
#define META_BATCH_ATTR_CONTROL 0x20

/* One batch of a sealed object, as passed to meta_commit_object. The
 * store assigns base_offset = partition's high watermark, and advances the
 * high watermark by record_count (via last_offset_delta + 1). */
struct meta_commit_batch {
	int64_t tid;
	int32_t partition;
	uint64_t byte_offset;   /* in the object */
	uint32_t length;
	int32_t record_count;
	int32_t last_offset_delta; /* from the batch header; offsets used = +1 */
	int64_t max_timestamp;
	int64_t producer_id;
	int16_t producer_epoch;
	int32_t base_sequence;
	int32_t last_sequence;
	int16_t attributes;     /* the header's; only META_BATCH_ATTR_* are kept */
	enum meta_batch_kind kind;
	const char *transactional_id; /* TXN_DATA, MARKER; outlives the commit call */
	int64_t txn_seq;        /* MARKER: the transaction it ends */
	bool marker_commit;     /* MARKER: COMMIT, else ABORT */
	/* MARKER: its coordinator epoch, kept in the producer's state
	 * (Kafka's ProducerStateEntry.coordinatorEpoch). */
	int32_t coordinator_epoch;
	/* out: */
	int64_t base_offset;    /* assigned by the commit (the original's for a
				   duplicate); -1 when the batch got no offset */
	enum meta_batch_result result;
	/* The partition's last stable offset as of this batch's end (the
	 * high watermark just past it): what a reader that has applied the
	 * commit up to this batch may serve, so a notice cut between
	 * batches never raises an LSO past an ABORT marker its reader has
	 * not seen yet. For a batch that got no offset, as of its object's
	 * end. -1 when the partition is gone. */
	int64_t last_stable_offset;
	/* The aborted_txns rows an applied marker added (last_offset = the
	 * marker's offset), n_aborted of them: an ABORT's for its own
	 * producer id's open transaction in the partition (first), and for
	 * either kind one per older producer id of its transactional id
	 * still open there (no marker can close those any more: markers
	 * apply only to the id's current producer id, docs/transactions.md
	 * §4). The first META_MARKER_ABORTED_MAX are in aborted[]; more are
	 * recorded in the store but not here (the reader looks them up).
	 * Unused entries have producer_id -1. */
	struct meta_aborted_txn aborted[META_MARKER_ABORTED_MAX];
	uint32_t n_aborted;
};

/* A sealed object to commit: its key, size and batches. */
struct meta_commit_obj {
	const char *key;
	uint64_t size;
	struct meta_commit_batch *batches;
	size_t n;
};
#define META_COMMIT_OBJECTS_MAX 64

/* One batch as the read path sees it. The store keeps the adjacent
 * batches of a partition in one object in one row (meta_int.h); every
 * read below hands them out one by one, each with its own offsets, byte
 * range and max timestamp. */
struct meta_batch_row {
	int64_t base_offset;
	int64_t last_offset;
	char object_key[META_OBJECT_KEY_BYTES];
	uint64_t byte_offset;
	uint32_t length;
	int32_t record_count;
	int64_t max_timestamp;
	uint64_t object_size;   /* the whole object's bytes; set only by
				   meta_batches_from_many */
	int16_t attributes;     /* the row's META_BATCH_ATTR_* bits (a stored
				   row never mixes them); set only by
				   meta_batches_from_many */
};

/* One partition's part of meta_batches_from_many. */
struct meta_batch_query {
	int64_t tid;
	int32_t partition;
	int64_t offset;         /* rows with last_offset >= offset */
	size_t max_rows;
	/* out: this query's rows are rows[first, first + n) */
	size_t first, n;
};

/* One batch row a merge replaces (meta_merge_swap): the row as the merge
 * read it (offsets, object key and byte range: the swap refuses when the
 * store's row differs) and its byte offset in the merged object. */
struct meta_merge_row {
	int64_t base_offset;
	int64_t last_offset;
	char object_key[META_OBJECT_KEY_BYTES];
	uint64_t byte_offset;
	uint32_t length;
	uint64_t new_byte_offset;
};

/* One batch of a cleaned object (meta_compact_swap): its offsets, where
 * it lies in the object, and what a row keeps of it. */
struct meta_compact_batch {
	int64_t base_offset;
	int64_t last_offset;
	uint64_t byte_offset;
	uint32_t length;
	int32_t record_count;   /* 0: a batch the cleaner emptied */
	int64_t max_timestamp;
	int16_t attributes;     /* the header's; only META_BATCH_ATTR_* are kept */
};

/* A merged object (storage/merge_plan.h, agent/merge.c): one partition's
 * rows, ascending, rewritten into object key of size bytes. A cleaning
 * pass (storage/clean.h) swaps the same way, with the object's own
 * batches: they replace the rows, covering exactly the rows' offsets,
 * each offset once (the cleaner keeps every offset: docs/compaction.md),
 * and the partition's cleaner checkpoint rises to clean_offset. */
struct meta_merge {
	int64_t tid;
	int32_t partition;
	const char *key;
	uint64_t size;
	const struct meta_merge_row *rows;
	size_t n;
	/* meta_compact_swap only (NULL, 0 for a merge): */
	const struct meta_compact_batch *batches;
	size_t nb;
	int64_t clean_offset;
	/* The ABORT markers, by offset (ascending, among the batches),
	 * whose aborted transactions have no batch left: their
	 * aborted_txns rows go in the swap's transaction (Kafka's cleaner
	 * leaves them out of the cleaned transaction index). */
	const int64_t *aborted_gone;
	size_t n_aborted_gone;
	/* meta_merge_swap only: the object's row is in the store already (an
	 * earlier swap of the same object, its first chunk, inserted it):
	 * these rows join it. */
	bool continues;
};

/* Consumer group offsets (group_offsets table). Kafka's
 * offset.metadata.max.bytes default bounds the metadata string. */
#define META_OFFSET_METADATA_BYTES_MAX 4096

/* One committed offset to store (offset_commit). */
struct meta_offset_commit {
	const char *group_id;
	int64_t tid;
	int32_t partition;
	int64_t committed_offset;
	int32_t leader_epoch;       /* -1: none */
	const char *metadata;       /* NULL: null */
	int64_t commit_timestamp_ms;
};

/* One committed offset as stored (offset_fetch). */
struct meta_committed_offset {
	int64_t tid;
	int32_t partition;
	int64_t committed_offset;
	int32_t leader_epoch;
	char *metadata;             /* malloc'd; NULL: null */
	int64_t commit_timestamp_ms;
};

/* A group that has committed offsets (group_list). */
struct meta_group_summary {
	char *group_id;             /* malloc'd */
	int64_t offset_count;
	int64_t last_commit_ms;     /* newest commit timestamp */
};

/* An object row, as the garbage collector (`sluice gc`) sees it. */
struct meta_object {
	int64_t oid;                /* never reused: a cursor for paging */
	char key[META_OBJECT_KEY_BYTES];
	uint64_t size;
	int64_t live_bytes;
	bool deleting;              /* state 'deleting' (a collector began) */
	int64_t created_ms;
};

/* One agent of the registry (agents table). Its endpoints are one per
 * listener, as Kafka's advertised.listeners writes them:
 * "PLAINTEXT://host:port,SSL://host:port" (8 listeners of a 32-byte name
 * and a 255-byte host fit). */
#define META_AGENT_ENDPOINTS_BYTES 2560
#define META_AGENT_ZONE_BYTES 65
struct meta_agent {
	int32_t node_id;        /* -1 to meta_agent_register: take an unused one */
	char endpoints[META_AGENT_ENDPOINTS_BYTES];
	char zone[META_AGENT_ZONE_BYTES]; /* "" without one */
	int64_t incarnation;    /* random, per start: tells a restarted agent's
				   row from the one it replaced */
	int64_t start_ms;       /* the store's clock at registration */
};

/* The live agents and the epoch that names their set (agents_epoch:
 * raised in the same transaction as every join, leave and expiry, never
 * lowered). */
struct meta_cluster_view {
	int64_t epoch;
	struct meta_agent *agents; /* malloc'd, by node_id; free() */
	size_t count;
};

/* What meta_catalog_read found: the catalog version (raised by every
 * topic create, delete, grow and config change), the topics when that
 * version differs from the one the caller knows, and the log start,
 * high watermark and LSO of every partition whose row changed since
 * the caller's last read, all from one snapshot. */
struct meta_catalog {
	int64_t version;
	bool topics_read;         /* topics below are the whole catalog */
	struct meta_topic *topics; /* meta_topics_free */
	size_t topic_count;
	struct meta_partition *parts; /* free() */
	size_t part_count;
	/* The next read's parts_since: every partition row written after
	 * this snapshot (or not visible in it) is at or above it. */
	int64_t parts_next;
};

/* A consumer group's membership as its coordinator stored it: Kafka's
 * GroupMetadata record (what it keeps in __consumer_offsets), so the
 * next coordinator (a takeover, a restart) keeps the generation and its
 * members. members is the coordinator's encoding of the member list
 * (coord_group_encode), opaque here. Strings NUL-terminated, NULL where
 * the group has none; everything malloc'd (meta_group_states_free). */
struct meta_group_state {
	char *group_id;
	int32_t generation;
	char *protocol_type;
	char *protocol_name;
	char *leader_id;
	uint8_t *members;
	size_t members_len;
};

/* SCRAM credentials (KIP-554), one per user and mechanism: what RFC 5802
 * has a server keep (salt, iterations, StoredKey, ServerKey), never the
 * password. Mechanisms use Kafka's type numbers. */
#define META_SCRAM_SHA_256 1
#define META_SCRAM_SHA_512 2
#define META_SCRAM_MECHANISMS 2    /* per user, at most */
#define META_SCRAM_USER_BYTES 256  /* SL_SASL_USER_BYTES_MAX + NUL */
#define META_SCRAM_SALT_BYTES 128  /* SL_SCRAM_SALT_BYTES_MAX */
#define META_SCRAM_KEY_BYTES 64    /* SHA-512's; SHA-256 uses 32 */
struct meta_scram_credential {
	char user[META_SCRAM_USER_BYTES];
	int8_t mechanism;
	int32_t iterations;
	uint8_t salt[META_SCRAM_SALT_BYTES];
	uint32_t salt_len;
	uint8_t stored_key[META_SCRAM_KEY_BYTES];
	uint8_t server_key[META_SCRAM_KEY_BYTES];
	uint32_t key_len;          /* the mechanism's hash length: 32 or 64 */
};

/* One change of meta_scram_alter. */
struct meta_scram_change {
	bool remove;               /* delete cred.user's cred.mechanism (0: every
				      mechanism of the user); else insert or
				      replace cred */
	struct meta_scram_credential cred;
	int result;                /* out: 0, or SL_ENOTFOUND (nothing to delete) */
};

/* A named, fenced lease (leases table): held by one agent (node id and
 * incarnation) until its expiry in the store's clock (PostgreSQL's, so
 * agents' clocks do not matter), with an epoch raised on every change
 * of holder and never lowered. Free when nobody holds it (released), its
 * expiry has passed, or its holder's registry row is gone (the agent
 * left, or the registry expired it). cluster/lease.h is the policy; a
 * group's lease is META_LEASE_GROUP_PREFIX + the group id. */
#define META_LEASE_NAME_BYTES (16 + 1024 + 1) /* a prefix and a group id */
#define META_LEASE_GROUP_PREFIX "group/"
struct meta_lease {
	const char *name;   /* in: at most META_LEASE_NAME_BYTES - 1 bytes */
	bool release;       /* in: give it up (if self holds it) instead */
	int64_t epoch;      /* out: the epoch self holds it at; 0: not held */
	int32_t holder;     /* out: its holder's node id when self does not
			       hold it; -1: nobody (released, or SL_EINVAL) */
	int64_t expires_in_ms; /* out: what is left of self's hold (the
				  store's clock); 0 when not held */
};

/* A transactional id's durable record as the store holds it (tables
 * transactions, txn_partitions, txn_groups): the coordinator's record,
 * the optimistic version of the row (raised by every write) and the
 * coordinator epoch that wrote it (the lease epoch in a cluster, 0
 * otherwise). Free an array with meta_txn_rows_free. */
struct meta_txn_row {
	char *transactional_id;     /* malloc'd */
	struct txn_record r;        /* partitions, groups malloc'd */
	int64_t version;
	int64_t coord_epoch;
};
/* Which ids meta_txn_load returns (the caller's placement rule). */
typedef bool meta_txn_want_fn(void *arg, const char *transactional_id);
/* A transactional id's lease (cluster mode): META_LEASE_TXN_PREFIX + id. */
#define META_LEASE_TXN_PREFIX "txn/"

/* One row of the aborted transactions feed (meta_aborted_txns_since). */
struct meta_aborted_feed {
	int64_t seq;                /* the feed's position: page by the last one */
	int64_t tid;
	int32_t partition;
	struct meta_aborted_txn txn;
};

/* One batch of a commit notification (meta_listen_read). */
struct meta_notice_batch {
	int64_t tid;
	int32_t partition;
	int64_t base_offset;
	int64_t last_offset;
	uint64_t byte_offset;   /* in the object */
	uint32_t length;
	int32_t record_count;
	int64_t max_timestamp;
	/* The partition's last stable offset once the commit was made (as
	 * meta_commit_batch's); -1 when the notice does not tell it. */
	int64_t last_stable_offset;
};

/* What another agent changed, as the store's notifications tell it. */
enum meta_notice_kind {
	META_NOTICE_CATALOG, /* a topic created, deleted or grown, configs
				changed: read the catalog (meta_catalog_read) */
	META_NOTICE_COMMIT,  /* batches committed in one object */
	META_NOTICE_LOG_START, /* a partition's log start moved (a trim) */
	META_NOTICE_REWRITTEN, /* a cleaning pass replaced a partition's rows
				  (meta_compact_swap): rows held in memory name
				  the uncleaned objects; tid, partition and
				  log_start_offset set */
};
struct meta_notice {
	enum meta_notice_kind kind;
	/* META_NOTICE_COMMIT: the object and its batches with their assigned
	 * offsets, each partition's in offset order (a big object's batches
	 * may come in several notices). Valid during the callback only. */
	const char *object_key;
	uint64_t object_size;
	const struct meta_notice_batch *batches;
	size_t n;
	/* META_NOTICE_LOG_START: the partition and its new log start. */
	int64_t tid;
	int32_t partition;
	int64_t log_start_offset;
};
typedef void meta_notice_fn(void *arg, const struct meta_notice *notice);

struct meta_methods {
	const char *name;
	/* Several agents may share the store: the catalog and the high
	 * watermarks change under an agent (it polls meta_catalog_read),
	 * and another agent may assign offsets in its partitions. False for
	 * an embedded store that one agent claims. */
	bool shared;
	/* Offsets connections (meta_offsets_lanes); 0: one. */
	int offsets_lanes;
	void (*close)(struct meta *m);

	int (*topic_create)(struct meta *m, const char *name, int32_t partitions,
			    const struct meta_config *configs, int32_t config_count,
			    const struct meta_replicas *replicas, struct meta_topic *out);
	int (*topic_delete)(struct meta *m, const char *name);
	/* May be NULL (see meta_purge_deleted). */
	int (*purge_deleted)(struct meta *m, bool *more);
	int (*topic_list)(struct meta *m, struct meta_topic **out, size_t *n);
	int (*topic_set_partitions)(struct meta *m, int64_t tid, int32_t new_count,
				    const struct meta_replicas *replicas);
	/* Apply every change to one topic's configs in one transaction. */
	int (*topic_configs_set)(struct meta *m, int64_t tid,
				 const struct meta_config_change *changes, size_t n);

	int (*partition_get)(struct meta *m, int64_t tid, int32_t partition,
			     struct meta_partition *out);
	int (*partition_list)(struct meta *m, struct meta_partition **out, size_t *n);
	int (*partition_set_log_start)(struct meta *m, int64_t tid, int32_t partition,
				       int64_t log_start_offset);
	int (*partition_trim)(struct meta *m, int64_t tid, int32_t partition,
			      const struct meta_trim *t, int64_t *log_start);

	/* Commit sealed objects, in seal order, in one transaction: all or
	 * none (a group commit when several uploads finished meanwhile). */
	int (*commit_objects)(struct meta *m, struct meta_commit_obj *objs, size_t n);

	int (*batches_from)(struct meta *m, int64_t tid, int32_t partition,
			    int64_t offset, size_t max_rows,
			    struct meta_batch_row *rows, size_t *n);
	int (*offset_for_timestamp)(struct meta *m, int64_t tid, int32_t partition,
				    int64_t timestamp_ms, int64_t *offset,
				    int64_t *batch_max_timestamp);
	int (*max_timestamp)(struct meta *m, int64_t tid, int32_t partition,
			     int64_t *offset, int64_t *timestamp);

	/* Take count consecutive producer ids: *first .. *first + count - 1,
	 * never handed out before by any agent of this store (SL_ELIMIT when
	 * the id space is used up). */
	int (*producer_ids_alloc)(struct meta *m, int64_t count, int64_t *first);
	int (*producers_describe)(struct meta *m, int64_t tid, int32_t partition, size_t max,
				  struct meta_producer_desc *out, size_t *n);
	/* Consumer groups (may be NULL in a backend without them). */
	int (*offset_commit)(struct meta *m, const struct meta_offset_commit *rows, size_t n);
	int (*offset_fetch)(struct meta *m, const char *group_id,
			    struct meta_committed_offset **out, size_t *n);
	int (*txn_offsets_pending)(struct meta *m, const char *group_id, struct txn_tp **out,
				   size_t *n);
	int (*group_list)(struct meta *m, struct meta_group_summary **out, size_t *n);
	int (*group_delete_offsets)(struct meta *m, const char *group_id, const int64_t *tids,
				    const int32_t *partitions, size_t n, int64_t *deleted);
	/* Read path (may be NULL: callers fall back to batches_from). */
	int (*batches_from_many)(struct meta *m, struct meta_batch_query *q, size_t nq,
				 struct meta_batch_row *rows, size_t rows_cap);
	/* Garbage collection (may be NULL: see meta_objects_dead). */
	int (*objects_dead)(struct meta *m, int64_t created_before_ms, int64_t after_oid,
			    size_t max_rows, struct meta_object *rows, size_t *n);
	int (*objects_mark_deleting)(struct meta *m, const char *const *keys, size_t n,
				     bool *marked);
	int (*objects_forget)(struct meta *m, const char *const *keys, size_t n,
			      size_t *forgotten);
	int (*object_known)(struct meta *m, const char *key, bool *known);
	/* May be NULL (see meta_gc_fence_raise). */
	int (*gc_fence_raise)(struct meta *m, int64_t fence_ms, int64_t *now_fence_ms);
	/* May be NULL (see meta_merge_swap). */
	/* Both swaps: mg->batches tells a cleaning pass from a merge. */
	int (*merge_swap)(struct meta *m, const struct meta_merge *mg);
	/* May be NULL (see meta_clean_bytes). */
	int (*clean_bytes)(struct meta *m, int64_t tid, int32_t partition, int64_t log_start,
			   int64_t first_dirty, int64_t *clean, int64_t *dirty);
	/* The agent registry (may be NULL: SL_EUNSUPPORTED). */
	int (*agent_register)(struct meta *m, struct meta_agent *self, int64_t lease_ms,
			      struct meta_cluster_view *view);
	int (*agent_heartbeat)(struct meta *m, const struct meta_agent *self, int64_t lease_ms,
			       struct meta_cluster_view *view);
	int (*agent_deregister)(struct meta *m, const struct meta_agent *self);
	/* SCRAM credentials (may be NULL: SL_EUNSUPPORTED). */
	int (*scram_get)(struct meta *m, const char *user, struct meta_scram_credential *out,
			 size_t *n);
	int (*scram_list)(struct meta *m, struct meta_scram_credential **out, size_t *n);
	int (*scram_alter)(struct meta *m, struct meta_scram_change *changes, size_t n);
	/* ACLs (may be NULL: SL_EUNSUPPORTED). */
	int (*acl_read)(struct meta *m, int64_t known_version, int64_t *version,
			struct acl_binding **out, size_t *n);
	int (*acl_alter)(struct meta *m, const struct acl_binding *add, size_t add_count,
			 const struct acl_binding *remove, size_t remove_count);
	/* NULL in a store that is not shared. */
	int (*catalog_read)(struct meta *m, int64_t known_version, int64_t parts_since,
			    struct meta_catalog *out);
	/* Leases and the writes they fence (may be NULL: SL_EUNSUPPORTED). */
	int (*leases_sync)(struct meta *m, const struct meta_agent *self, int64_t lease_ms,
			   struct meta_lease *leases, size_t n);
	int (*offset_commit_fenced)(struct meta *m, const struct meta_offset_commit *rows,
				    const int64_t *epochs, size_t n, bool *refused);
	int (*group_state_store)(struct meta *m, const struct meta_group_state *g, int64_t epoch);
	int (*group_state_load)(struct meta *m, const char *group_id, struct meta_group_state **out,
				size_t *n);
	int (*group_delete_offsets_fenced)(struct meta *m, const char *group_id,
					   const struct meta_agent *self, int64_t epoch,
					   const int64_t *tids, const int32_t *partitions,
					   size_t n, int64_t *deleted);
	int (*group_forget)(struct meta *m, const char *group_id, const struct meta_agent *self,
			    int64_t epoch);
	int (*group_states_expire)(struct meta *m, int64_t idle_ms, int64_t *deleted);

	/* Transactions (may be NULL: SL_EUNSUPPORTED). */
	int (*txn_persist)(struct meta *m, const char *transactional_id,
			   const struct txn_record *r, int64_t coord_epoch, int64_t *version);
	int (*txn_delete)(struct meta *m, const char *transactional_id, int64_t coord_epoch,
			  int64_t version);
	int (*txn_load)(struct meta *m, const char *transactional_id, meta_txn_want_fn *want,
			void *arg, struct meta_txn_row **out, size_t *n);
	int (*txn_open_list)(struct meta *m, struct meta_txn_row **out, size_t *n);
	int (*txn_offset_commit)(struct meta *m, const char *transactional_id,
				 int64_t producer_id, int16_t producer_epoch,
				 const struct meta_offset_commit *rows, size_t n);
	int (*txn_settle)(struct meta *m, const char *transactional_id, int64_t txn_seq,
			  bool commit);
	int (*aborted_txns)(struct meta *m, int64_t tid, int32_t partition, int64_t from,
			    int64_t to, struct meta_aborted_txn *out, size_t cap, size_t *n);
	int (*aborted_txns_since)(struct meta *m, int64_t after_seq,
				  struct meta_aborted_feed *out, size_t cap, size_t *n);

	/* Change notifications (NULL in a store without them). */
	int (*listen_start)(struct meta *m);
	int (*listen_fd)(struct meta *m);
	int (*listen_read)(struct meta *m, meta_notice_fn *fn, void *arg);
};

struct meta {
	const struct meta_methods *m;
};

/* Open a store by URL: "sqlite:PATH" (created with its schema if
 * missing). Returns 0, SL_EINVAL (bad URL) or SL_EMETA, after logging one
 * line that says why. */
int meta_open(const char *url, struct meta **out);
/* meta_open for tools that must not take an empty store for the truth
 * (`sluice gc`): never creates the database, and refuses one without a
 * schema (SL_EMETA, after logging why). An older schema is upgraded. */
int meta_open_existing(const char *url, struct meta **out);
/* meta_open for the agent that will serve from the store. An embedded
 * store (SQLite) serves one agent: it is claimed before anything is read
 * or written (its schema created or upgraded), and a second claim of the
 * same database, from any process, fails with SL_EBUSY after logging who
 * holds it, instead of two agents each assigning offsets the other does
 * not see. The claim lasts until meta_close or the process ends; tools
 * open with meta_open / meta_open_existing and do not claim. A store
 * built for many agents (PostgreSQL) opens as with meta_open. A SQLite
 * file's folder is created if missing (SL_EIO when it cannot be), and a
 * file the process may not write is refused (SL_EMETA), each with one
 * line naming the path. [start]. */
int meta_open_agent(const char *url, struct meta **out);
/* url as it may be shown (logs): a password in it — between "user:" and
 * "@", or a password=... parameter — becomes ***. Truncated to cap. */
void meta_url_redact(const char *url, char *out, size_t cap);
static inline void meta_close(struct meta *m) { if (m) m->m->close(m); }

/* Create a topic with a fresh random UUID and its partitions (log start
 * 0, high watermark 0), with replicas (NULL: none) the assignment of
 * every partition. Returns 0, SL_EEXIST, SL_EINVAL. Fills *out (configs
 * and replicas copied; free with meta_topic_free). [pool: admin]: one
 * transaction, an fsync. */
static inline int meta_topic_create(struct meta *m, const char *name, int32_t partitions,
				    const struct meta_config *c, int32_t nc,
				    const struct meta_replicas *replicas, struct meta_topic *out)
{ return m->m->topic_create(m, name, partitions, c, nc, replicas, out); }
/* Delete a topic: gone for every call once this returns (0, or
 * SL_ENOTFOUND). Its partitions' batch rows may stay until
 * meta_purge_deleted removes them; their objects become garbage for the
 * cleaner then. [pool: admin]: one short transaction and an fsync
 * (PostgreSQL deletes the rows in it too: row locks, so other topics'
 * commits do not wait). */
static inline int meta_topic_delete(struct meta *m, const char *name)
{ return m->m->topic_delete(m, name); }
/* Remove the batch rows of one deleted topic (meta_topic_delete left
 * them, or an earlier purge stopped half-way): *more tells whether one
 * was found (call again). Backends that delete rows with the topic have
 * none. [pool: maintenance], [tool]: a chunk of META_TRIM_CHUNK_ROWS rows
 * per transaction with a pause between, so commits wait one chunk at
 * most; seconds in all for millions of rows. */
static inline int meta_purge_deleted(struct meta *m, bool *more)
{
	*more = false;
	return m->m->purge_deleted ? m->m->purge_deleted(m, more) : 0;
}
/* All topics with their configs. Free with meta_topics_free. [start],
 * [tool]. */
static inline int meta_topic_list(struct meta *m, struct meta_topic **out, size_t *n)
{ return m->m->topic_list(m, out, n); }
/* Grow a topic to new_count partitions, replicas (NULL: none) the
 * assignment of the new ones. SL_EINVAL if not larger (or, with
 * replicas, if the topic does not have replicas->first partitions: grown
 * meanwhile), SL_ENOTFOUND for an unknown topic. [pool: admin]: an
 * fsync. */
static inline int meta_topic_set_partitions(struct meta *m, int64_t tid, int32_t n,
					    const struct meta_replicas *replicas)
{ return m->m->topic_set_partitions(m, tid, n, replicas); }
/* Set (value) or delete (NULL) configs of a topic, all in one
 * transaction. SL_ENOTFOUND for an unknown topic. [pool: admin]: an
 * fsync. */
static inline int meta_topic_configs_set(struct meta *m, int64_t tid,
					 const struct meta_config_change *c, size_t n)
{ return m->m->topic_configs_set(m, tid, c, n); }
static inline int meta_topic_config_set(struct meta *m, int64_t tid, const char *k, const char *v)
{ struct meta_config_change c = { k, v }; return meta_topic_configs_set(m, tid, &c, 1); }
/* SL_ENOTFOUND if absent. [tool]; the cleaner's pass (storage/clean.c)
 * on [pool: maintenance] (the loop's connection, idle while serving). */
static inline int meta_partition_get(struct meta *m, int64_t tid, int32_t p, struct meta_partition *out)
{ return m->m->partition_get(m, tid, p, out); }
/* Every partition of every topic. Free with free(). [start]. */
static inline int meta_partition_list(struct meta *m, struct meta_partition **out, size_t *n)
{ return m->m->partition_list(m, out, n); }
/* Raise the log start offset (never lowers it; capped at the HWM). A
 * write on the loop's connection: tests and tools only (the agent's log
 * starts move by meta_partition_trim). */
static inline int meta_partition_set_log_start(struct meta *m, int64_t tid, int32_t p, int64_t off)
{ return m->m->partition_set_log_start(m, tid, p, off); }
/* Retention and DeleteRecords: (first, when t->producers_before_ms > 0,
 * the partition's idempotent producers idle since before it are
 * forgotten: a batch of theirs is then accepted at any sequence, as in
 * Kafka after producer.id.expiration.ms), then the partition's log
 * start moves forward (never back, never past the high watermark) to
 * t->offset, then past the oldest batches that t's time and size limits
 * expire, as Kafka deletes segments (time first, stopping at the first
 * batch not expired; a batch without timestamps counts from when its
 * object was made; then size), per batch instead of per segment, never
 * past t->limit, and never past the first offset of an open transaction
 * (t->offset may go past it: DeleteRecords). Aborted transactions whose
 * markers fall below the log start go with their batch rows. The log start is written in its own transaction; then
 * the batch rows wholly below it are deleted and their bytes subtracted
 * from their objects' live_bytes, a bounded chunk per transaction, so an
 * object nothing reads any more goes to the collector (rows a failed or
 * interrupted trim left below the log start go in the next one; their
 * failure is logged, not returned: the log start stands). *log_start gets
 * the log start. SL_ENOTFOUND for an unknown partition (also one deleted
 * meanwhile).
 * [pool: maintenance]: it may scan a long partition (reads, no lock),
 * then short transactions, each an fsync. */
static inline int meta_partition_trim(struct meta *m, int64_t tid, int32_t p,
				      const struct meta_trim *t, int64_t *log_start)
{ return m->m->partition_trim ? m->m->partition_trim(m, tid, p, t, log_start) : SL_EUNSUPPORTED; }
/* One transaction: insert the object row, then for each batch in order
 * check it against the transactions (its kind: docs/transactions.md,
 * sections 3-4) and an idempotent producer's batch against its state
 * (enum meta_batch_result) and, if it is appended, assign base_offset
 * from its partition's high watermark, insert the batch row, update the
 * producer's state and the partition's open transactions (a TXN_DATA
 * batch opens one, a MARKER closes its id's, recording an ABORT's range
 * in aborted_txns and settling the transaction's offsets with its last
 * partition). Batches of partitions that no longer exist get
 * base_offset -1 and no row (a MARKER's partition is owed no more). Each
 * batch's result says what happened, with its partition's last stable
 * offset after the commit.
 * The object's live_bytes counts the appended batches only. Durable (synchronous) when it returns 0; SL_EMETA
 * otherwise, with nothing committed. [pool: commit]: an fsync; waits
 * behind a topic delete or a trim chunk. */
static inline int meta_commit_objects(struct meta *m, struct meta_commit_obj *objs, size_t n)
{ return m->m->commit_objects(m, objs, n); }
static inline int meta_commit_object(struct meta *m, const char *key, uint64_t size,
				     struct meta_commit_batch *b, size_t n)
{ struct meta_commit_obj o = { key, size, b, n }; return meta_commit_objects(m, &o, 1); }
/* Batches of a partition with last_offset >= offset, ascending, at
 * most max_rows. [pool: read] (ListOffsets' pool job; the reader's pool
 * jobs fall back to it for a backend without meta_batches_from_many),
 * [tool]. */
static inline int meta_batches_from(struct meta *m, int64_t tid, int32_t p, int64_t off,
				    size_t max_rows, struct meta_batch_row *rows, size_t *n)
{ return m->m->batches_from(m, tid, p, off, max_rows, rows, n); }
/* meta_batches_from for several partitions at once (one statement,
 * stepped per query: a fetch of many partitions costs one lookup), and
 * each row also carries its object's size. Query i gets at most
 * q[i].max_rows rows, stored from q[i].first; rows_cap bounds them all
 * (queries that find no room get n = 0). Returns 0, SL_EMETA, or
 * SL_EUNSUPPORTED for a backend without it (call meta_batches_from per
 * partition then). [pool: read] (from the loop it works, serialized
 * with the pool's calls by the connection's lock). */
static inline int meta_batches_from_many(struct meta *m, struct meta_batch_query *q, size_t nq,
					 struct meta_batch_row *rows, size_t rows_cap)
{ return m->m->batches_from_many ? m->m->batches_from_many(m, q, nq, rows, rows_cap) : SL_EUNSUPPORTED; }
/* ---- garbage collection (storage/gc.c for `sluice gc` and the agent's
 * collection; objects_dead, objects_mark_deleting and objects_forget are
 * [pool: maintenance] or [tool], object_known and gc_fence_raise [tool])
 * ----
 * An object row's live_bytes falls once committed (topic deletes,
 * trims, swaps subtract their batches) and rises only in a merged
 * object's later swap chunk, which requires it 'live' and above 0, so a
 * 'live' row at 0 that is older than the grace is garbage for good. Each returns SL_EUNSUPPORTED for a backend
 * without it, SL_EMETA on a store error. */

/* Dead objects: live_bytes <= 0 and either state 'deleting' (a collector
 * stopped half-way) or created before created_before_ms; oid >
 * after_oid, ascending, at most max_rows. Page with the last row's oid. */
static inline int meta_objects_dead(struct meta *m, int64_t created_before_ms, int64_t after_oid,
				    size_t max_rows, struct meta_object *rows, size_t *n)
{
	*n = 0;
	return m->m->objects_dead ? m->m->objects_dead(m, created_before_ms, after_oid, max_rows, rows, n)
				  : SL_EUNSUPPORTED;
}
/* In one transaction, set state 'deleting' on each key's row whose
 * live_bytes is still <= 0; marked[i] tells which were (a missing row or
 * one with live bytes is not). Only marked keys may be deleted from the
 * object store. */
static inline int meta_objects_mark_deleting(struct meta *m, const char *const *keys, size_t n,
					     bool *marked)
{ return m->m->objects_mark_deleting ? m->m->objects_mark_deleting(m, keys, n, marked) : SL_EUNSUPPORTED; }
/* After the store delete: remove the rows of keys in state 'deleting',
 * in one transaction; *forgotten (may be NULL) counts them. */
static inline int meta_objects_forget(struct meta *m, const char *const *keys, size_t n,
				      size_t *forgotten)
{ return m->m->objects_forget ? m->m->objects_forget(m, keys, n, forgotten) : SL_EUNSUPPORTED; }
/* Whether an object row with this key exists (any state). */
static inline int meta_object_known(struct meta *m, const char *key, bool *known)
{ return m->m->object_known ? m->m->object_known(m, key, known) : SL_EUNSUPPORTED; }
/* The collector's fence against late commits: in its own transaction,
 * fence = max(fence, fence_ms); *now_fence_ms (may be NULL) gets the
 * result. From then on meta_commit_objects refuses (SL_EMETA, nothing
 * committed) any object whose key's seal time (meta_object_key_seal_ms)
 * is below the fence. Raise it to the orphan cutoff before listing: a
 * commit is then either visible to meta_object_known or refused, so an
 * orphan the collector deletes can never be committed later. */
static inline int meta_gc_fence_raise(struct meta *m, int64_t fence_ms, int64_t *now_fence_ms)
{ return m->m->gc_fence_raise ? m->m->gc_fence_raise(m, fence_ms, now_fence_ms) : SL_EUNSUPPORTED; }

/* The merge swap (issue 15), in one transaction: insert the merged
 * object's row (live_bytes: its rows' bytes; created_ms: the oldest
 * source object's, so retention of batches without timestamps, which
 * counts from it, is unchanged), replace the rows by the merged object's
 * (their batches at the new byte offsets, adjacent ones joined into rows
 * of up to META_ROW_BATCHES_MAX batches as a commit joins them; offsets,
 * lengths and timestamps per batch unchanged), and subtract the rows'
 * bytes from their old objects' live_bytes;
 * an old object left without live bytes gets created_ms = now, so the
 * collector's grace (--gc-grace-ms) counts from the merge and covers reads
 * still aimed at it. Refused with nothing written: SL_ENOTFOUND when the
 * partition is gone (topic deleted) or any row is no longer as the merge
 * read it (trimmed by retention or DeleteRecords, below the log start,
 * moved by another merge), or the store has a row between two of them
 * (a merge's rows are consecutive); SL_EMETA when the key was sealed before the gc
 * fence (the collector may take it for an orphan) or the store failed.
 * The caller deletes the merged object after a refusal of its first swap
 * (nothing names it). SL_EINVAL for no rows or rows out of order.
 *
 * The transaction holds the store's write lock (SQLite; PostgreSQL: the
 * partition's row) that produce commits wait for, a few us a row, so a
 * caller swaps a large merged object's rows in chunks, one transaction
 * each (--merge-swap-rows): the first as above, its object's live bytes
 * that chunk's; each later one with mg->continues, which checks its rows
 * the same way, repoints them to the object (found by key), subtracts
 * their bytes from their old objects and adds them to the object's live
 * bytes (and lowers its created_ms to their objects' oldest). Each chunk
 * is consistent alone: every row names bytes that exist, and an object's
 * live bytes are those of the rows naming it. A later chunk is refused
 * (SL_ENOTFOUND) like the first, and also when the object's row is gone
 * or has no live bytes left (its earlier chunks' rows were trimmed: the
 * collector may be deleting it); the object then stays partly live, and
 * the caller must not delete it. [pool: maintenance], [tool]: an fsync. */
static inline int meta_merge_swap(struct meta *m, const struct meta_merge *mg)
{ return m->m->merge_swap && !mg->batches ? m->m->merge_swap(m, mg) : SL_EUNSUPPORTED; }
/* The swap of a cleaning pass (issue 15; storage/clean.h): as
 * meta_merge_swap, in one transaction and with the same refusals (rows
 * trimmed, moved or cleaned since the pass read them: SL_ENOTFOUND,
 * nothing written), except that the rows are replaced by cp->batches, the
 * cleaned object's own (live bytes: theirs), and the partition's cleaner
 * checkpoint rises to cp->clean_offset (never falls). SL_EINVAL when the
 * batches do not cover the rows' offsets exactly, one after another, or
 * lie past the object. [pool: maintenance], [tool]: an fsync. */
static inline int meta_compact_swap(struct meta *m, const struct meta_merge *cp)
{ return m->m->merge_swap && cp->batches ? m->m->merge_swap(m, cp) : SL_EUNSUPPORTED; }

/* The cleaner's planning without the rows (storage/clean.c): one
 * aggregate over the partition's stored rows by the primary key, no row
 * handed out. *clean: the bytes of the rows wholly in [log_start,
 * first_dirty); *dirty: those of the rows whose last offset is at or
 * past first_dirty. SL_EUNSUPPORTED when the backend has none. [pool:
 * maintenance], [tool]. */
static inline int meta_clean_bytes(struct meta *m, int64_t tid, int32_t p, int64_t log_start,
				   int64_t first_dirty, int64_t *clean, int64_t *dirty)
{ return m->m->clean_bytes ? m->m->clean_bytes(m, tid, p, log_start, first_dirty, clean, dirty)
			   : SL_EUNSUPPORTED; }

/* The seal time in an object key of the writer's format
 * (storage/writer.c: "objects/%013 wall ms-%016 hex nonce-%08 hex
 * counter.obj"). False for any other key (no seal time known).
 * (In meta.c, beside the fence check that uses it.) */
bool meta_object_key_seal_ms(const char *key, int64_t *seal_ms);

/* The base offset of the first batch whose max_timestamp >= ts
 * (ListOffsets by timestamp: the caller then scans that batch for the
 * exact record). SL_ENOTFOUND if none. [pool: read] (ListOffsets' pool
 * job). */
static inline int meta_offset_for_timestamp(struct meta *m, int64_t tid, int32_t p, int64_t ts,
					    int64_t *off, int64_t *batch_max_ts)
{ return m->m->offset_for_timestamp(m, tid, p, ts, off, batch_max_ts); }
/* The batch holding the partition's largest timestamp (earliest such):
 * its base offset and that timestamp. SL_ENOTFOUND if empty. [pool:
 * read] (ListOffsets' pool job). */
static inline int meta_max_timestamp(struct meta *m, int64_t tid, int32_t p, int64_t *off, int64_t *ts)
{ return m->m->max_timestamp(m, tid, p, off, ts); }

/* Take count consecutive producer ids: *first .. *first + count - 1,
 * never handed out before by any agent of this store (SL_ELIMIT when the
 * id space is used up). [pool: admin]: an fsync. */
#define META_PRODUCER_ID_BLOCK_MAX 1000000
static inline int meta_producer_ids_alloc(struct meta *m, int64_t count, int64_t *first)
{ return m->m->producer_ids_alloc ? m->m->producer_ids_alloc(m, count, first) : SL_EUNSUPPORTED; }
/* Store committed offsets (insert or replace), all rows in one
 * transaction, durable when it returns 0; SL_EMETA with nothing stored
 * otherwise. [pool: offsets]: an fsync. SL_EUNSUPPORTED if the backend
 * has no groups. */
static inline int meta_offset_commit(struct meta *m, const struct meta_offset_commit *rows, size_t n)
{ return m->m->offset_commit ? m->m->offset_commit(m, rows, n) : SL_EUNSUPPORTED; }
/* The producers with state in a partition, by producer id, at most max
 * of them into out (n gets the count; none for an unknown partition).
 * [pool: read] (DescribeProducers' pool job). */
static inline int meta_producers_describe(struct meta *m, int64_t tid, int32_t partition,
					  size_t max, struct meta_producer_desc *out, size_t *n)
{
	*n = 0;
	return m->m->producers_describe ? m->m->producers_describe(m, tid, partition, max, out, n)
					: SL_EUNSUPPORTED;
}
/* Every committed offset of a group, by (tid, partition). Free with
 * meta_committed_offsets_free. An unknown group gives n = 0. [pool:
 * read]: OffsetFetch's pool job, the group service's store jobs (loading
 * a group whose lease this agent took, what an OffsetDelete left), a
 * /metrics scrape's pool job (metrics/exposition.c). */
static inline int meta_offset_fetch(struct meta *m, const char *group,
				    struct meta_committed_offset **out, size_t *n)
{ return m->m->offset_fetch ? m->m->offset_fetch(m, group, out, n) : SL_EUNSUPPORTED; }
/* The partitions of a group with an offset pending in a transaction not
 * yet completed (TxnOffsetCommit rows, txn_offsets), by (tid, partition),
 * no duplicates: what OffsetFetch's require_stable answers
 * UNSTABLE_OFFSET_COMMIT for when the transactions' coordinator may be
 * another agent. *out malloc'd (NULL when n = 0). [pool: read]:
 * OffsetFetch's pool job. */
static inline int meta_txn_offsets_pending(struct meta *m, const char *group,
					   struct txn_tp **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	return m->m->txn_offsets_pending ? m->m->txn_offsets_pending(m, group, out, n)
					 : SL_EUNSUPPORTED;
}
/* Groups with committed offsets, by id (a scan of every offset row: the
 * group service calls it once, at start). Free with
 * meta_group_summaries_free. [start]; in a cluster also [pool: read]
 * once a minute (the offsets retention sweep's holder). */
static inline int meta_group_list(struct meta *m, struct meta_group_summary **out, size_t *n)
{ return m->m->group_list ? m->m->group_list(m, out, n) : SL_EUNSUPPORTED; }
/* Delete a group's offsets: the n listed (tid, partition) pairs, or all
 * of them when tids is NULL, in one durable transaction. *deleted (may
 * be NULL) gets the row count. [pool: offsets], ordered with the
 * commits. */
static inline int meta_group_delete_offsets(struct meta *m, const char *group, const int64_t *tids,
					    const int32_t *partitions, size_t n, int64_t *deleted)
{
	return m->m->group_delete_offsets ? m->m->group_delete_offsets(m, group, tids, partitions, n, deleted)
					  : SL_EUNSUPPORTED;
}

/* ---- the agent registry (cluster mode; [start] for register, [pool:
 * cluster] for the others). A row whose last heartbeat is older than
 * lease_ms (the store's clock) is an agent that died: whichever call
 * finds it first deletes it and raises the epoch in the same
 * transaction. Leases pause while the store is out of reach: a heartbeat
 * whose agent had not beaten for a lease itself first renews every row
 * that was live when it was cut off (on a shared store), so the first
 * agent back after an outage does not expire the others. Each call fills *view (the live agents, itself included,
 * and their epoch, read in one snapshot after its own changes); free
 * view->agents with free(). ---- */

/* Join: expire dead rows, take self->node_id (or, when it is -1, the
 * lowest id >= 1 no live agent holds, set in self->node_id), insert the
 * row with the store's clock as start and heartbeat (self->start_ms set),
 * raise the epoch. SL_EBUSY (nothing written) when a live agent holds the
 * requested id: a restart after kill -9 waits out its old lease. An
 * embedded store forgets every earlier row (its claim says none of them
 * is alive). */
static inline int meta_agent_register(struct meta *m, struct meta_agent *self, int64_t lease_ms,
				      struct meta_cluster_view *view)
{ return m->m->agent_register ? m->m->agent_register(m, self, lease_ms, view) : SL_EUNSUPPORTED; }
/* Refresh self's heartbeat and expire dead rows. When self's row is gone
 * (the agent was expired: it could not reach the store for a lease), it
 * joins again under the same id and incarnation, unless a live agent took
 * that id meanwhile: SL_EBUSY. */
static inline int meta_agent_heartbeat(struct meta *m, const struct meta_agent *self,
				       int64_t lease_ms, struct meta_cluster_view *view)
{ return m->m->agent_heartbeat ? m->m->agent_heartbeat(m, self, lease_ms, view) : SL_EUNSUPPORTED; }
/* Leave (a clean stop): delete self's row, raise the epoch. 0 also when
 * the row was gone already. */
static inline int meta_agent_deregister(struct meta *m, const struct meta_agent *self)
{ return m->m->agent_deregister ? m->m->agent_deregister(m, self) : SL_EUNSUPPORTED; }
/* Catalog and high watermarks as other agents changed them, from one
 * snapshot: out->version always; out->topics (and topics_read) only when
 * the version differs from known_version; out->parts: the partitions
 * whose row was written (a commit, a trim, DeleteRecords, a marker
 * moving the LSO, a creation) since the read that returned parts_since
 * as its parts_next, every partition for parts_since -1. Rows are
 * marked by partitions.change_seq (docs/metadata-schema.md: on
 * PostgreSQL the writing transaction's id, and parts_next the
 * snapshot's xmin, so a transaction that commits after a later-numbered
 * one is never skipped). Free with meta_catalog_free. SQLite raises
 * its change counter in the read (a write transaction).
 * [pool: cluster]: the registry's poll, after a catalog notice and as
 * the fallback for lost notifications (meta_listen_read). */
static inline int meta_catalog_read(struct meta *m, int64_t known_version, int64_t parts_since,
				    struct meta_catalog *out)
{
	return m->m->catalog_read ? m->m->catalog_read(m, known_version, parts_since, out)
				  : SL_EUNSUPPORTED;
}
/* ---- SCRAM credentials (SASL; `sluice users`, Describe/Alter-
 * UserScramCredentials) ---- */
/* A user's credentials, one per mechanism it has (*n of at most
 * META_SCRAM_MECHANISMS, by mechanism; 0 for an unknown user). [pool:
 * read]: a lookup per authentication, so a user added or removed
 * meanwhile counts for the next connection on every agent. */
static inline int meta_scram_get(struct meta *m, const char *user,
				 struct meta_scram_credential out[META_SCRAM_MECHANISMS], size_t *n)
{ *n = 0; return m->m->scram_get ? m->m->scram_get(m, user, out, n) : SL_EUNSUPPORTED; }
/* Every credential, by user then mechanism; free() *out. [pool: admin],
 * [tool]. */
static inline int meta_scram_list(struct meta *m, struct meta_scram_credential **out, size_t *n)
{ *out = NULL; *n = 0; return m->m->scram_list ? m->m->scram_list(m, out, n) : SL_EUNSUPPORTED; }
/* Apply the changes in order, in one transaction (all or none on a store
 * error: SL_EMETA); a delete that finds nothing sets its result to
 * SL_ENOTFOUND and the others still apply. SL_EINVAL for an empty user or
 * a mechanism other than 1 or 2 (0 only in deletes). [pool: admin],
 * [tool]: an fsync. */
static inline int meta_scram_alter(struct meta *m, struct meta_scram_change *changes, size_t n)
{ return m->m->scram_alter ? m->m->scram_alter(m, changes, n) : SL_EUNSUPPORTED; }
/* ---- ACLs (the authorizer, auth/authorizer.h; CreateAcls, DeleteAcls,
 * DescribeAcls) ---- */
/* The ACLs' version (raised by every change) and, when it differs from
 * known_version, every ACL (*out: free with acl_bindings_free; NULL when
 * there are none or the version is known), from one snapshot. [pool: read]: every agent polls it (a row
 * read when nothing changed), so a change counts on each within the
 * poll's period. */
static inline int meta_acl_read(struct meta *m, int64_t known_version, int64_t *version,
				struct acl_binding **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	return m->m->acl_read ? m->m->acl_read(m, known_version, version, out, n) : SL_EUNSUPPORTED;
}
/* Add bindings (one already stored is left as it is) and remove exact
 * bindings (one not stored is skipped), in one transaction that raises
 * the version. SL_ELIMIT (nothing applied) when more than SL_ACLS_MAX
 * would be stored. The bindings were checked (acl_binding_invalid).
 * [pool: admin]: an fsync. */
static inline int meta_acl_alter(struct meta *m, const struct acl_binding *add, size_t add_count,
				 const struct acl_binding *remove, size_t remove_count)
{
	return m->m->acl_alter ? m->m->acl_alter(m, add, add_count, remove, remove_count)
			       : SL_EUNSUPPORTED;
}
static inline bool meta_shared(const struct meta *m) { return m->m->shared; }
/* The store's offsets lanes: connections the [pool: offsets] calls of
 * different groups run on side by side, a group's (or a transactional
 * id's) always on lane meta_offsets_lane(m, id), each serialized as
 * before. A caller that keeps one queue per lane (the group service)
 * then sees a write stuck on one group's rows hold up only the groups
 * of its lane. A batch of offset rows runs on the lane of its first
 * row's group: its caller keeps its groups to one lane. PostgreSQL has
 * four; SQLite one (a single writer). */
#define META_OFFSETS_LANES_MAX 8
static inline size_t meta_offsets_lanes(const struct meta *m)
{
	int n = m->m->offsets_lanes;
	return n > META_OFFSETS_LANES_MAX ? META_OFFSETS_LANES_MAX : n > 1 ? (size_t)n : 1;
}
/* id's lane, below meta_offsets_lanes (FNV-1a of its bytes). In meta.c. */
size_t meta_offsets_lane(const struct meta *m, const char *id);

/* ---- leases (struct meta_lease) ---- */

/* A group's lease name, META_LEASE_GROUP_PREFIX + group, into
 * out[META_LEASE_NAME_BYTES]: false when it does not fit. (In meta.c.) */
bool meta_lease_group_name(const char *group, char *out);
/* A transactional id's, META_LEASE_TXN_PREFIX + id, likewise. */
bool meta_lease_txn_name(const char *transactional_id, char *out);

/* For each lease, in one transaction: acquire it when free (the epoch
 * rises), renew it when self holds it (expiry = the store's now +
 * lease_ms; the epoch stays), or leave it when another live holder's
 * hold has not expired (epoch 0, holder set); with release, give up
 * self's hold (the next holder's epoch rises). A free lease whose
 * previous holder's fenced write is still open (PostgreSQL) is left for
 * a later call (epoch 0, holder -1): renewals never wait for a fenced
 * write, takes never hold up the others. Self is a registered
 * agent (node id and incarnation). Returns 0 (each lease's outcome in
 * it), SL_EINVAL (a name too long or empty: nothing written),
 * SL_EMETA. [pool: cluster]. */
static inline int meta_leases_sync(struct meta *m, const struct meta_agent *self, int64_t lease_ms,
				   struct meta_lease *leases, size_t n)
{ return m->m->leases_sync ? m->m->leases_sync(m, self, lease_ms, leases, n) : SL_EUNSUPPORTED; }
/* meta_offset_commit fenced by each row's group lease: a row whose
 * epochs[i] is above 0 is stored only if its group's lease
 * (META_LEASE_GROUP_PREFIX + group id) is at that epoch when the
 * transaction checks it (PostgreSQL: under a key-share lock on the
 * lease row, so a takeover waits for the commit or the commit sees the
 * new epoch, while the holder's renewals do not wait); refused[i] tells which were not stored (a stale holder: answer
 * NOT_COORDINATOR). epochs[i] 0: not fenced. The rest of the
 * transaction stands. 0, SL_EINVAL, SL_EMETA (nothing stored).
 * [pool: offsets]. */
static inline int meta_offset_commit_fenced(struct meta *m, const struct meta_offset_commit *rows,
					    const int64_t *epochs, size_t n, bool *refused)
{
	return m->m->offset_commit_fenced ? m->m->offset_commit_fenced(m, rows, epochs, n, refused)
					  : SL_EUNSUPPORTED;
}
/* meta_group_delete_offsets fenced by the group's lease: with epoch
 * above 0, only if the lease is at that epoch (the coordinator's
 * DeleteGroups, OffsetDelete); with epoch 0, only if the lease is free
 * or self's (the offsets retention sweep: a group another agent
 * coordinates is left to it). SL_EBUSY (nothing deleted) otherwise.
 * [pool: offsets]. */
static inline int meta_group_delete_offsets_fenced(struct meta *m, const char *group,
						   const struct meta_agent *self, int64_t epoch,
						   const int64_t *tids, const int32_t *partitions,
						   size_t n, int64_t *deleted)
{
	return m->m->group_delete_offsets_fenced
		       ? m->m->group_delete_offsets_fenced(m, group, self, epoch, tids, partitions, n,
							   deleted)
		       : SL_EUNSUPPORTED;
}

/* A forgotten group (Empty without offsets, as Kafka's offsets cleanup
 * makes it Dead): its stored membership deleted, but only while the
 * store holds no committed or pending transactional offsets of it. The
 * forget acts on what its agent believes stored, and the store may hold
 * offsets the agent never saw (its load of the group failed, or a
 * transaction settled offsets after it): those and the membership stay.
 * Fenced as meta_group_delete_offsets_fenced when self is not NULL
 * (SL_EBUSY: nothing deleted); a store one agent claims needs none.
 * [pool: offsets]. */
static inline int meta_group_forget(struct meta *m, const char *group,
				    const struct meta_agent *self, int64_t epoch)
{
	return m->m->group_forget ? m->m->group_forget(m, group, self, epoch) : SL_EUNSUPPORTED;
}

/* The stored membership of every group nobody has coordinated for
 * idle_ms, which no coordinator's forget will delete (its coordinator
 * moved or died before the group had been Empty long enough, and nobody
 * asked for it since): rows not updated for idle_ms, whose group's
 * lease has been free for idle_ms (expired that long ago, or never
 * taken), of groups without committed or pending transactional offsets
 * (as meta_group_forget). With idle_ms past the longest session timeout
 * a group allows, any member left would have expired by Kafka's rules:
 * the group is Empty without offsets, which Kafka deletes. *deleted
 * gets the count. A take of a lease racing the delete loads the group
 * as new. The store's clock (PostgreSQL: the server's, as the leases).
 * [pool: offsets] (the offsets retention sweep's holder, in a cluster). */
static inline int meta_group_states_expire(struct meta *m, int64_t idle_ms, int64_t *deleted)
{
	*deleted = 0;
	return m->m->group_states_expire ? m->m->group_states_expire(m, idle_ms, deleted)
					 : SL_EUNSUPPORTED;
}
/* Store a group's membership, replacing what was stored. With epoch
 * above 0 only if the group's lease is at that epoch (a coordinator's
 * write; SL_EBUSY, nothing stored, otherwise), unfenced with 0 (a store
 * one agent claims). Deleted with the group's offsets when all of them
 * go (meta_group_delete_offsets with tids NULL: DeleteGroups, the
 * offsets retention sweep). [pool: offsets]: the group service's
 * queue, in order with the group's offset writes. */
static inline int meta_group_state_store(struct meta *m, const struct meta_group_state *g,
					 int64_t epoch)
{ return m->m->group_state_store ? m->m->group_state_store(m, g, epoch) : SL_EUNSUPPORTED; }
/* The stored membership of group_id (*n 0 or 1), or of every group
 * (group_id NULL, by id). [pool: offsets] (a coordinator's load of one
 * group), [start] (every group, on a store one agent claims). */
static inline int meta_group_state_load(struct meta *m, const char *group_id,
					struct meta_group_state **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	return m->m->group_state_load ? m->m->group_state_load(m, group_id, out, n)
				      : SL_EUNSUPPORTED;
}
void meta_group_states_free(struct meta_group_state *g, size_t n);

/* ---- transactions (docs/transactions.md; the txn service, issue 14)
 * ----
 * The coordinator's records: one row per transactional id with its
 * current transaction's partitions and groups. Every write names the
 * version it read (*version: 0 when it expects no row) and the
 * coordinator epoch it holds: with coord_epoch above 0 the write is made
 * only if the id's lease (META_LEASE_TXN_PREFIX + id) is at that epoch
 * (PostgreSQL: under a key-share lock on the lease row, as
 * meta_offset_commit_fenced). A version that is not the stored one (or a
 * lost lease) is SL_EBUSY, nothing written: another agent wrote the id
 * (the coordinator answers NOT_COORDINATOR and drops it). The
 * coordinator's writes share the offsets connection (a few per
 * transaction, ordered per id by the coordinator): [pool: offsets], an
 * fsync each. */

/* TXN_EFFECT_PERSIST: insert or replace the id's row, its partitions and
 * its groups with r, in one transaction; *version gets the new version.
 * 0, SL_EBUSY, SL_EINVAL (an empty or too long id, a state out of
 * range), SL_EMETA. */
static inline int meta_txn_persist(struct meta *m, const char *transactional_id,
				   const struct txn_record *r, int64_t coord_epoch, int64_t *version)
{
	return m->m->txn_persist ? m->m->txn_persist(m, transactional_id, r, coord_epoch, version)
				 : SL_EUNSUPPORTED;
}
/* TXN_EFFECT_DELETE: remove the id (its row, partitions, groups and
 * pending offsets) stored at version (>= 1: a persisted id). 0, SL_EBUSY
 * (another version, or no row), SL_EINVAL, SL_EMETA. */
static inline int meta_txn_delete(struct meta *m, const char *transactional_id,
				  int64_t coord_epoch, int64_t version)
{
	return m->m->txn_delete ? m->m->txn_delete(m, transactional_id, coord_epoch, version)
				: SL_EUNSUPPORTED;
}
/* Every stored id that want (NULL: all) accepts, with its record, from
 * one snapshot, by id: what txn_load feeds the coordinator. A record in
 * Prepare* lists only the partitions whose markers are still owed. Free
 * with meta_txn_rows_free. SL_ELIMIT past SL_TXN_IDS_MAX ids. [start],
 * [pool: offsets] (a takeover: an id adopted). want runs on the
 * calling thread. */
static inline int meta_txn_load(struct meta *m, meta_txn_want_fn *want, void *arg,
				struct meta_txn_row **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	return m->m->txn_load ? m->m->txn_load(m, NULL, want, arg, out, n) : SL_EUNSUPPORTED;
}
/* meta_txn_load of the one id (its primary key: the cost of one id, not
 * of every stored one): *n is 1 with its record, or 0 when it is not
 * stored or want (NULL: any) refuses it. SL_EINVAL for an empty or too
 * long id. [pool: offsets] (the txn service reading an id again: a
 * takeover's adoption, a write refused at the version it read). */
static inline int meta_txn_load_one(struct meta *m, const char *transactional_id,
				    meta_txn_want_fn *want, void *arg,
				    struct meta_txn_row **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	return m->m->txn_load ? m->m->txn_load(m, transactional_id, want, arg, out, n)
			      : SL_EUNSUPPORTED;
}
/* The ids with a transaction open (Ongoing, PrepareCommit,
 * PrepareAbort), by id, with only their record's state (no partitions,
 * groups nor the rest of the record): what a cluster agent's scan for
 * open transactions placed on it needs (at every change of the live
 * agents and every 10 s, agent/txn_coord.c), without reading every
 * stored id each time. Free with meta_txn_rows_free. SL_ELIMIT past
 * SL_TXN_IDS_MAX. [pool: offsets]. */
static inline int meta_txn_open_list(struct meta *m, struct meta_txn_row **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	return m->m->txn_open_list ? m->m->txn_open_list(m, out, n) : SL_EUNSUPPORTED;
}
void meta_txn_rows_free(struct meta_txn_row *rows, size_t n);
/* TxnOffsetCommit: store the rows (one group) as pending offsets of the
 * id's transaction, replacing what it committed before for the same
 * partitions; they reach group_offsets when its COMMIT settles and are
 * dropped by an ABORT. Only while the id's transaction is Ongoing with
 * this producer id and epoch and the group added (AddOffsetsToTxn);
 * otherwise nothing is stored (the transaction ended meanwhile: the
 * offsets would otherwise wait for the next one) and, in the order of
 * the coordinator's check: SL_ETXNUNKNOWN (no such id, another producer
 * id), SL_EFENCED (another epoch), SL_ETXNBUSY (completing, Prepare*),
 * SL_EBUSY (not Ongoing, or the group not added). [pool: offsets],
 * ordered with meta_offset_commit: a plain commit stored after these
 * rows wins over them at the settlement, as in Kafka. */
static inline int meta_txn_offset_commit(struct meta *m, const char *transactional_id,
					 int64_t producer_id, int16_t producer_epoch,
					 const struct meta_offset_commit *rows, size_t n)
{
	return m->m->txn_offset_commit ? m->m->txn_offset_commit(m, transactional_id, producer_id,
								 producer_epoch, rows, n)
				       : SL_EUNSUPPORTED;
}
/* Settle the groups of transaction txn_seq of the id when all its
 * markers are in (the last MARKER batch's commit does it itself; this is
 * for a transaction with groups and no partition, and for a settlement a
 * crash left owed): COMMIT moves its pending offsets to group_offsets
 * (where they are newer), ABORT drops them; its groups are forgotten.
 * Only while the record is in the matching Prepare* state at txn_seq with
 * no partition left: 0 without doing anything otherwise. [pool: offsets]. */
static inline int meta_txn_settle(struct meta *m, const char *transactional_id, int64_t txn_seq,
				  bool commit)
{
	return m->m->txn_settle ? m->m->txn_settle(m, transactional_id, txn_seq, commit)
				: SL_EUNSUPPORTED;
}
/* The aborted transactions of a partition that overlap [from, to)
 * (last_offset >= from and first_offset < to), by first offset, at most
 * cap (*n: how many; a full buffer may mean more). [pool: read]: the
 * read_committed fetch's lookup for ranges its in-memory index lacks. */
static inline int meta_aborted_txns(struct meta *m, int64_t tid, int32_t partition, int64_t from,
				    int64_t to, struct meta_aborted_txn *out, size_t cap, size_t *n)
{
	*n = 0;
	return m->m->aborted_txns ? m->m->aborted_txns(m, tid, partition, from, to, out, cap, n)
				  : SL_EUNSUPPORTED;
}
/* Aborted transactions recorded after feed position after_seq (0: from
 * the start), by seq, at most cap: how other agents' polls learn the
 * aborts of partitions they serve. Rows trimmed with their log are gone.
 * [pool: cluster]. */
static inline int meta_aborted_txns_since(struct meta *m, int64_t after_seq,
					  struct meta_aborted_feed *out, size_t cap, size_t *n)
{
	*n = 0;
	return m->m->aborted_txns_since ? m->m->aborted_txns_since(m, after_seq, out, cap, n)
					: SL_EUNSUPPORTED;
}

/* ---- change notifications (cluster mode): other agents' commits and
 * catalog changes pushed by the store (PostgreSQL's LISTEN/NOTIFY) on a
 * connection of their own, "listen", so a long poll wakes and a topic
 * appears without waiting for the catalog poll. A notification can be
 * lost (the connection broke): the poll stays as the fallback, and after
 * meta_listen_start the caller reads the catalog once (resync). This
 * agent's own commits are not reported to it. ---- */

/* (Re)open the listening connection and subscribe: what is committed
 * from its return on is reported. 0, SL_EMETA (not logged: the caller
 * logs once per outage), SL_EUNSUPPORTED for a store without
 * notifications. [start], [pool: cluster]; never while the socket of
 * meta_listen_fd is polled (it closes that socket). */
static inline int meta_listen_start(struct meta *m)
{ return m->m->listen_start ? m->m->listen_start(m) : SL_EUNSUPPORTED; }
/* The listening connection's socket, to poll for reading; -1 when none.
 * [loop]. */
static inline int meta_listen_fd(struct meta *m)
{ return m->m->listen_fd ? m->m->listen_fd(m) : -1; }
/* Reads what arrived without blocking and calls fn once per notice, in
 * commit order. 0 (also when nothing arrived); SL_EMETA when the
 * connection is lost: stop polling its socket, then meta_listen_start
 * from the pool. [loop]: no round trip. */
static inline int meta_listen_read(struct meta *m, meta_notice_fn *fn, void *arg)
{ return m->m->listen_read ? m->m->listen_read(m, fn, arg) : SL_EUNSUPPORTED; }
void meta_catalog_free(struct meta_catalog *c);

void meta_committed_offsets_free(struct meta_committed_offset *o, size_t n);
void meta_group_summaries_free(struct meta_group_summary *g, size_t n);

void meta_topic_free(struct meta_topic *t);          /* frees configs */
void meta_topics_free(struct meta_topic *t, size_t n); /* and the array */

#endif
