/* sqlite.c — the embedded metadata store: SQLite behind meta.h.
 *
 * Owns the schema (docs/metadata-schema.md), its creation and version
 * check, and two connections to one database file in WAL mode:
 *   - "loop": the event loop thread's reads (and the tools' calls);
 *   - "read": the read path's lookups from pool threads (batches,
 *     ListOffsets' by time, committed offsets, the group list, SASL
 *     logins' credentials), so they never wait on, or hold up, the
 *     loop's connection lock;
 *   - "commit": commit_objects only (one worker thread at a time);
 *   - "admin": topic creation, deletion and changes and producer id
 *     blocks, from the agent's pool jobs (agent_job), so their fsyncs and
 *     a topic delete's long row deletion never hold a lock the loop's
 *     reads need;
 *   - "offsets": consumer group offset writes (offset_commit and
 *     group_delete_offsets, from one worker thread at a time: the group
 *     service queues both; also the transaction coordinator's records
 *     and pending transactional offsets), so an OffsetCommit fsync blocks neither
 *     fetches nor produce commits' statements, and the loop never waits
 *     on this connection's lock or busy timeout;
 *   - "trim": maintenance from worker threads: partition_trim
 *     (retention, DeleteRecords) and the dead-object calls of garbage
 *     collection, so their scans hold no lock a commit or a loop read
 *     needs, and their writes are short transactions.
 * WAL lets the loop connection read while the commit connection holds the
 * write lock and fsyncs, so a commit never blocks a fetch. Each connection
 * is opened NOMUTEX and guarded by its own pthread mutex, which also
 * protects its cached prepared statements; a caller that breaks the
 * thread model is serialized rather than corrupted.
 *
 * synchronous=FULL: a commit that returned 0 survives power loss
 * (invariant 1). Every connection opens the file through sqlite_wal.c's
 * VFS, which writes a transaction's WAL frames with one call. Every
 * transaction runs through sq_txn (one body function between BEGIN and
 * COMMIT, rolled back on any error); writers use BEGIN IMMEDIATE so two
 * writers wait for each other (busy_retry) instead of failing on a lock
 * upgrade. */
#define _GNU_SOURCE /* qsort_r */
#include "base/grow.h"
#include "meta/meta.h"
#include "meta/meta_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/log.h"
#include "base/sl_assert.h"

/* 2: gc_fence (a version-1 database gains it when opened); 3: the
 * objects_dead index; 4: the agent registry (agents as it is now, which
 * replaces an unused placeholder, and cluster's counters); 5: SCRAM
 * credentials; 6: leases; 7: producer_state (filled from the batch rows
 * on the upgrade); 8: batches.spans (a row may hold several batches:
 * meta_int.h); 9: ACLs; 10: transactions (docs/transactions.md: the
 * coordinator's records, open and aborted transactions per partition,
 * pending transactional offsets, partitions.first_unstable_offset,
 * batches.attributes, group_offsets.commit_seq); 11: partition_replicas;
 * 12: partitions.change_seq and its index (the catalog poll's change
 * marker: meta_catalog_read); 13: group_state (a group's membership as
 * its coordinator stored it: meta_group_state_store); 14:
 * partitions.clean_offset (the compacted-topic cleaner's checkpoint);
 * 15: producer_state.coordinator_epoch (of the producer's last marker
 * there, -1 before one: DescribeProducers); 16: aborted_txns keyed by
 * (tid, partition, last_offset, producer_id), as one marker may record
 * several producer ids' (meta_marker_aborts). */
#define SCHEMA_VERSION 16
#define BUSY_TIMEOUT_MS 5000

/* aborted_txns as schema_sql creates it (and version 16's rebuild). */
#define ABORTED_TXNS_TABLE(name)                                               \
	"CREATE TABLE IF NOT EXISTS " name " ("                                \
	" tid INTEGER NOT NULL,"                                               \
	" partition INTEGER NOT NULL,"                                         \
	" last_offset INTEGER NOT NULL,"                                       \
	" first_offset INTEGER NOT NULL,"                                      \
	" producer_id INTEGER NOT NULL,"                                       \
	" seq INTEGER NOT NULL,"                                               \
	" PRIMARY KEY (tid, partition, last_offset, producer_id)) WITHOUT ROWID;"

/* The schema; PostgreSQL will share it (types there: BIGINT, BYTEA).
 * AUTOINCREMENT: a tid or oid is never reused, so a commit still holding
 * a deleted topic's tid can never land in a new topic of the same name. No
 * foreign keys: deletes are done explicitly in topic_delete, and the
 * hot path (one batch row per produced batch) pays for no checks. */
static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS topics ("
	" tid INTEGER PRIMARY KEY AUTOINCREMENT,"
	" name TEXT UNIQUE NOT NULL,"
	" uuid BLOB NOT NULL UNIQUE CHECK (length(uuid) = 16),"
	" partition_count INTEGER NOT NULL,"
	" created_ms INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS topic_configs ("
	" tid INTEGER NOT NULL,"
	" name TEXT NOT NULL,"
	" value TEXT NOT NULL,"
	" PRIMARY KEY (tid, name));"
	"CREATE TABLE IF NOT EXISTS partitions ("
	" tid INTEGER NOT NULL,"
	" partition INTEGER NOT NULL,"
	" log_start_offset INTEGER NOT NULL,"
	" high_watermark INTEGER NOT NULL,"
	" first_unstable_offset INTEGER NOT NULL DEFAULT -1,"
	" change_seq INTEGER NOT NULL DEFAULT 0,"
	" clean_offset INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (tid, partition)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS objects ("
	" oid INTEGER PRIMARY KEY AUTOINCREMENT,"
	" key TEXT UNIQUE NOT NULL,"
	" size INTEGER NOT NULL,"
	" live_bytes INTEGER NOT NULL,"
	" state TEXT NOT NULL CHECK (state IN ('live', 'deleting')),"
	" created_ms INTEGER NOT NULL);"
	/* Dead objects (the agent's collection scans for them every few
	 * minutes): a partial index, so the scan reads only them. */
	"CREATE INDEX IF NOT EXISTS objects_dead ON objects (oid) WHERE live_bytes <= 0;"
	"CREATE TABLE IF NOT EXISTS batches ("
	" tid INTEGER NOT NULL,"
	" partition INTEGER NOT NULL,"
	" base_offset INTEGER NOT NULL,"
	" last_offset INTEGER NOT NULL,"
	" oid INTEGER NOT NULL,"
	" byte_offset INTEGER NOT NULL,"
	" length INTEGER NOT NULL,"
	" record_count INTEGER NOT NULL,"
	" max_timestamp INTEGER NOT NULL,"
	" producer_id INTEGER NOT NULL,"
	" producer_epoch INTEGER NOT NULL,"
	" base_sequence INTEGER NOT NULL,"
	" last_sequence INTEGER NOT NULL,"
	" spans TEXT,"
	" attributes INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (tid, partition, last_offset)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS group_offsets ("
	" group_id TEXT NOT NULL,"
	" tid INTEGER NOT NULL,"
	" partition INTEGER NOT NULL,"
	" committed_offset INTEGER NOT NULL,"
	" leader_epoch INTEGER NOT NULL,"
	" metadata TEXT,"
	" commit_timestamp_ms INTEGER NOT NULL,"
	" commit_seq INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (group_id, tid, partition)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS producer_ids ("
	" id INTEGER PRIMARY KEY CHECK (id = 1),"
	" next_producer_id INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO producer_ids (id, next_producer_id) VALUES (1, 0);"
	/* Idempotent producers' state per partition (version 7), written by
	 * the commits that append their batches (meta_int.h: the batches
	 * column's format). */
	"CREATE TABLE IF NOT EXISTS producer_state ("
	" tid INTEGER NOT NULL,"
	" partition INTEGER NOT NULL,"
	" producer_id INTEGER NOT NULL,"
	" producer_epoch INTEGER NOT NULL,"
	" batches TEXT NOT NULL,"
	" updated_ms INTEGER NOT NULL,"
	" coordinator_epoch INTEGER NOT NULL DEFAULT -1,"
	" PRIMARY KEY (tid, partition, producer_id)) WITHOUT ROWID;"
	/* The agent registry (version 4): one row per live agent; a row
	 * whose heartbeat is older than the lease is a dead agent's. */
	"CREATE TABLE IF NOT EXISTS agents ("
	" node_id INTEGER PRIMARY KEY,"
	" incarnation INTEGER NOT NULL,"
	" endpoints TEXT NOT NULL,"
	" zone TEXT NOT NULL,"
	" start_ms INTEGER NOT NULL,"
	" heartbeat_ms INTEGER NOT NULL);"
	/* Cluster-wide counters (version 4): agents_epoch names the set of
	 * live agents (raised with every join, leave and expiry: the
	 * partitions' leader epoch); catalog_version is raised by topic
	 * changes in a shared store (PostgreSQL), for the other agents'
	 * polls. */
	"CREATE TABLE IF NOT EXISTS cluster ("
	" name TEXT PRIMARY KEY,"
	" value INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO cluster (name, value) VALUES ('agents_epoch', 0);"
	"INSERT OR IGNORE INTO cluster (name, value) VALUES ('catalog_version', 0);"
	/* The garbage collector's fence: objects sealed before fence_ms (the
	 * wall-clock ms in their key) are never committed, because gc may
	 * have deleted them as orphans. Raised by gc only, read by every
	 * commit transaction. */
	"CREATE TABLE IF NOT EXISTS gc_fence ("
	" id INTEGER PRIMARY KEY CHECK (id = 1),"
	" fence_ms INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO gc_fence (id, fence_ms) VALUES (1, 0);"
	/* SASL/SCRAM credentials (version 5): RFC 5802's salt, iteration
	 * count, StoredKey and ServerKey per user and mechanism (1:
	 * SCRAM-SHA-256, 2: SCRAM-SHA-512); never a password. */
	"CREATE TABLE IF NOT EXISTS scram_credentials ("
	" name TEXT NOT NULL,"
	" mechanism INTEGER NOT NULL,"
	" salt BLOB NOT NULL,"
	" iterations INTEGER NOT NULL,"
	" stored_key BLOB NOT NULL,"
	" server_key BLOB NOT NULL,"
	" PRIMARY KEY (name, mechanism)) WITHOUT ROWID;"
	/* Fenced leases (version 6; meta.h's struct meta_lease): holder -1
	 * is a released lease; epoch only rises. */
	"CREATE TABLE IF NOT EXISTS leases ("
	" name TEXT PRIMARY KEY,"
	" holder INTEGER NOT NULL,"
	" incarnation INTEGER NOT NULL,"
	" epoch INTEGER NOT NULL,"
	" expires_ms INTEGER NOT NULL) WITHOUT ROWID;"
	/* ACLs (version 9): Kafka's bindings, codes as on the wire; every
	 * change raises cluster's acl_version, which agents poll. */
	"CREATE TABLE IF NOT EXISTS acls ("
	" resource_type INTEGER NOT NULL,"
	" resource_name TEXT NOT NULL,"
	" pattern_type INTEGER NOT NULL,"
	" principal TEXT NOT NULL,"
	" host TEXT NOT NULL,"
	" operation INTEGER NOT NULL,"
	" permission INTEGER NOT NULL,"
	" PRIMARY KEY (resource_type, resource_name, pattern_type, principal, host,"
	" operation, permission)) WITHOUT ROWID;"
	"INSERT OR IGNORE INTO cluster (name, value) VALUES ('acl_version', 0);"
	/* Transactions (version 10; docs/transactions.md). The coordinator's
	 * record of each transactional id, written only with the version it
	 * read (optimistic); the partitions and groups of its current
	 * transaction (a partition's row goes with its marker's commit, so
	 * in Prepare* the rows left are the markers owed). */
	"CREATE TABLE IF NOT EXISTS transactions ("
	" transactional_id TEXT PRIMARY KEY,"
	" producer_id INTEGER NOT NULL UNIQUE,"
	" last_producer_id INTEGER NOT NULL,"
	" producer_epoch INTEGER NOT NULL,"
	" last_producer_epoch INTEGER NOT NULL,"
	" timeout_ms INTEGER NOT NULL,"
	" state INTEGER NOT NULL,"
	" txn_seq INTEGER NOT NULL,"
	" start_ms INTEGER NOT NULL,"
	" update_ms INTEGER NOT NULL,"
	" coord_epoch INTEGER NOT NULL,"
	" version INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS txn_partitions ("
	" transactional_id TEXT NOT NULL,"
	" tid INTEGER NOT NULL,"
	" partition INTEGER NOT NULL,"
	" PRIMARY KEY (transactional_id, tid, partition)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS txn_groups ("
	" transactional_id TEXT NOT NULL,"
	" group_id TEXT NOT NULL,"
	" PRIMARY KEY (transactional_id, group_id)) WITHOUT ROWID;"
	/* Open transactions per partition (their first offset there: the
	 * LSO is the smallest), aborted ones (the read_committed fetch's
	 * AbortedTransactions; seq is the other agents' feed, from
	 * cluster's aborted_seq, in commit order) and pending
	 * TxnOffsetCommit offsets (commit_seq from cluster's
	 * offset_commit_seq, as group_offsets'). */
	"CREATE TABLE IF NOT EXISTS partition_txns ("
	" tid INTEGER NOT NULL,"
	" partition INTEGER NOT NULL,"
	" producer_id INTEGER NOT NULL,"
	" producer_epoch INTEGER NOT NULL,"
	" first_offset INTEGER NOT NULL,"
	" transactional_id TEXT NOT NULL,"
	" PRIMARY KEY (tid, partition, producer_id)) WITHOUT ROWID;"
	ABORTED_TXNS_TABLE("aborted_txns")
	"CREATE INDEX IF NOT EXISTS aborted_txns_seq ON aborted_txns (seq);"
	"CREATE TABLE IF NOT EXISTS txn_offsets ("
	" group_id TEXT NOT NULL,"
	" tid INTEGER NOT NULL,"
	" partition INTEGER NOT NULL,"
	" producer_id INTEGER NOT NULL,"
	" transactional_id TEXT NOT NULL,"
	" committed_offset INTEGER NOT NULL,"
	" leader_epoch INTEGER NOT NULL,"
	" metadata TEXT,"
	" commit_timestamp_ms INTEGER NOT NULL,"
	" commit_seq INTEGER NOT NULL,"
	" PRIMARY KEY (group_id, tid, partition, producer_id)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS txn_offsets_id ON txn_offsets (transactional_id);"
	"INSERT OR IGNORE INTO cluster (name, value) VALUES ('aborted_seq', 0);"
	"INSERT OR IGNORE INTO cluster (name, value) VALUES ('offset_commit_seq', 0);"
	/* The catalog poll's change marker (version 12): every write of a
	 * partition row stamps it with change_seq + 1, and a poll raises
	 * change_seq, so the next poll reads only rows written since. */
	"INSERT OR IGNORE INTO cluster (name, value) VALUES ('change_seq', 0);"
	/* Consumer groups' membership (version 13): Kafka's GroupMetadata
	 * record, written when a generation completes or the group empties,
	 * loaded by the next coordinator (meta_group_state_store). */
	"CREATE TABLE IF NOT EXISTS group_state ("
	" group_id TEXT PRIMARY KEY,"
	" generation INTEGER NOT NULL,"
	" protocol_type TEXT,"
	" protocol_name TEXT,"
	" leader_id TEXT,"
	" members BLOB NOT NULL,"
	" updated_ms INTEGER NOT NULL) WITHOUT ROWID;"
	/* Manual replica assignments (version 11; meta_int.h): a row per
	 * assigned partition, gone with its topic. */
	"CREATE TABLE IF NOT EXISTS partition_replicas ("
	" tid INTEGER NOT NULL,"
	" partition INTEGER NOT NULL,"
	" replicas TEXT NOT NULL,"
	" PRIMARY KEY (tid, partition)) WITHOUT ROWID;";

/* The upgrade to version 7: each idempotent producer's state from its
 * newest batch rows (up to 5 of its newest epoch), as the agents seeded
 * it before. group_concat's order is not defined; meta_pstate_parse
 * sorts. */
/* Version 16: aborted_txns keyed by producer id too (a marker may
 * record several: meta_marker_aborts). A key changes only with a new
 * table. */
static const char aborted_txns_rekey_sql[] =
	ABORTED_TXNS_TABLE("aborted_txns_16")
	"INSERT INTO aborted_txns_16 SELECT tid, partition, last_offset, first_offset,"
	" producer_id, seq FROM aborted_txns;"
	"DROP TABLE aborted_txns;"
	"ALTER TABLE aborted_txns_16 RENAME TO aborted_txns;"
	"CREATE INDEX aborted_txns_seq ON aborted_txns (seq);";

static const char producer_state_fill_sql[] =
	"INSERT OR IGNORE INTO producer_state (tid, partition, producer_id, producer_epoch,"
	" batches, updated_ms)"
	" SELECT tid, partition, producer_id, max(producer_epoch),"
	"  group_concat(base_sequence || ':' || last_sequence || ':' || base_offset, ' '),"
	"  CAST(strftime('%s', 'now') AS INTEGER) * 1000"
	" FROM (SELECT b.*, row_number() OVER w AS rn, first_value(producer_epoch) OVER w AS newest"
	"  FROM batches AS b WHERE producer_id >= 0 AND base_sequence >= 0"
	"  WINDOW w AS (PARTITION BY tid, partition, producer_id ORDER BY last_offset DESC))"
	" WHERE rn <= 5 AND producer_epoch = newest"
	" GROUP BY tid, partition, producer_id";

enum stmt {
	ST_BEGIN,
	ST_BEGIN_READ,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_TOPIC_ID_BY_NAME,
	ST_TOPIC_INSERT,
	ST_TOPIC_COUNT,
	ST_TOPIC_SET_COUNT,
	ST_TOPIC_LIST,
	ST_TOPIC_DELETE,
	ST_CONFIG_LIST,
	ST_CONFIG_UPSERT,
	ST_CONFIG_DELETE,
	ST_CONFIG_DELETE_TOPIC,
	ST_REPLICAS_INSERT,
	ST_REPLICAS_LIST,
	ST_REPLICAS_DELETE_TOPIC,
	ST_PARTITION_INSERT,
	ST_PARTITION_GET,
	ST_PARTITION_LIST,
	ST_PARTITION_SET_LOG_START,
	ST_PARTITION_SET_HWM,
	ST_PARTITION_SET_HWM_STAMPED,
	ST_PARTITION_LIST_SINCE,
	ST_CHANGE_SEQ_RAISE,
	ST_CATALOG_VERSION,
	ST_PARTITION_DROP,
	ST_PARTITION_OF_TOPIC,
	ST_TOPIC_PURGE_NEXT,
	ST_OBJECT_INSERT,
	ST_OBJECT_INSERT_LIVE,
	ST_OBJECT_SET_LIVE,
	ST_OBJECTS_DEAD,
	ST_OBJECT_MARK_DELETING,
	ST_OBJECT_FORGET,
	ST_OBJECT_KNOWN,
	ST_GC_FENCE_GET,
	ST_GC_FENCE_RAISE,
	ST_BATCH_INSERT,
	ST_BATCHES_TRIM_SCAN,
	ST_BATCHES_LIVE_BYTES,
	ST_BATCHES_CHUNK_END,
	ST_OBJECT_SUBTRACT_BELOW,
	ST_BATCH_DELETE_BELOW,
	ST_BATCHES_FROM,
	ST_OFFSET_FOR_TIMESTAMP,
	ST_MAX_TIMESTAMP,
	ST_CLEAN_BYTES,
	ST_OFFSET_UPSERT,
	ST_OFFSET_FETCH,
	ST_TXN_OFFSETS_PENDING,
	ST_GROUP_LIST,
	ST_PSTATE_GET,
	ST_PSTATE_PUT,
	ST_PSTATE_DELETE_TOPIC,
	ST_PSTATE_EXPIRE,
	ST_PSTATE_MARKER,
	ST_PSTATE_DESCRIBE,
	ST_PRODUCER_IDS_ALLOC,
	ST_OFFSET_DELETE_GROUP,
	ST_GROUP_STATE_UPSERT,
	ST_GROUP_STATE_GET,
	ST_GROUP_STATE_LIST,
	ST_GROUP_STATE_DELETE,
	ST_GROUP_FORGET,
	ST_GROUP_STATES_EXPIRE,
	ST_OFFSET_DELETE_ONE,
	ST_OFFSET_DELETE_TOPIC,
	ST_AGENT_FORGET_ALL,
	ST_AGENT_EXPIRE,
	ST_AGENT_IDS,
	ST_AGENT_INSERT,
	ST_AGENT_BEAT,
	ST_AGENT_DELETE,
	ST_AGENT_LIST,
	ST_EPOCH_RAISE,
	ST_EPOCH_GET,
	ST_SCRAM_GET,
	ST_SCRAM_LIST,
	ST_SCRAM_UPSERT,
	ST_SCRAM_DELETE,
	ST_ACL_VERSION,
	ST_ACL_LIST,
	ST_ACL_INSERT,
	ST_ACL_DELETE,
	ST_ACL_COUNT,
	ST_ACL_RAISE,
	ST_TXN_HEAD,
	ST_TXN_VERSION,
	ST_TXN_UPSERT,
	ST_TXN_DELETE,
	ST_TXN_LIST,
	ST_TXN_LIST_ONE,
	ST_TXN_OPEN_LIST,
	ST_TXN_PART_LIST_ONE,
	ST_TXN_GROUP_LIST_ONE,
	ST_TXN_PART_GET,
	ST_TXN_PART_INSERT,
	ST_TXN_PART_DELETE,
	ST_TXN_PART_LEFT,
	ST_TXN_PARTS_CLEAR,
	ST_TXN_PART_LIST,
	ST_TXN_GROUP_GET,
	ST_TXN_GROUP_INSERT,
	ST_TXN_GROUPS_CLEAR,
	ST_TXN_GROUP_LIST,
	ST_PTXN_OPEN,
	ST_PTXN_INSERT,
	ST_PTXN_TAKE,
	ST_PTXN_FIRST,
	ST_PTXN_DELETE_TOPIC,
	ST_ABORTED_SEQ,
	ST_ABORTED_INSERT,
	ST_ABORTED_RANGE,
	ST_ABORTED_SINCE,
	ST_ABORTED_TRIM,
	ST_ABORTED_GONE,
	ST_ABORTED_DELETE_TOPIC,
	ST_OFFSET_SEQ,
	ST_TXN_OFFSET_UPSERT,
	ST_TXN_OFFSETS_SETTLE,
	ST_TXN_OFFSETS_DROP,
	ST_TXN_OFFSETS_DELETE_TOPIC,
	ST_MERGE_ROWS_GET,
	ST_MERGE_OBJECTS_SUBTRACT,
	ST_MERGE_ROWS_DELETE,
	ST_MERGE_OBJECT_FIND,
	ST_MERGE_OBJECT_ADD,
	ST_CLEAN_OFFSET_RAISE,
	ST_COUNT
};

/* What the read path needs of a batch row (batch_row_read), its spans
 * last. */
#define BATCH_COLUMNS "b.base_offset, b.last_offset, o.key, b.byte_offset, b.length," \
	" b.record_count, b.max_timestamp, b.spans"

/* The change marker a partition row's write stamps (version 12). */
#define CHANGE_SEQ_NEXT "(SELECT value + 1 FROM cluster WHERE name = 'change_seq')"

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_BEGIN_READ] = "BEGIN",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_TOPIC_ID_BY_NAME] = "SELECT tid FROM topics WHERE name = ?1",
	[ST_TOPIC_INSERT] = "INSERT INTO topics (name, uuid, partition_count, created_ms)"
		" VALUES (?1, ?2, ?3, ?4)",
	[ST_TOPIC_COUNT] = "SELECT partition_count FROM topics WHERE tid = ?1",
	[ST_TOPIC_SET_COUNT] = "UPDATE topics SET partition_count = ?2 WHERE tid = ?1",
	[ST_TOPIC_LIST] = "SELECT tid, name, uuid, partition_count FROM topics ORDER BY tid",
	[ST_TOPIC_DELETE] = "DELETE FROM topics WHERE tid = ?1",
	[ST_CONFIG_LIST] = "SELECT tid, name, value FROM topic_configs ORDER BY tid, name",
	[ST_CONFIG_UPSERT] = "INSERT INTO topic_configs (tid, name, value) VALUES (?1, ?2, ?3)"
		" ON CONFLICT (tid, name) DO UPDATE SET value = excluded.value",
	[ST_CONFIG_DELETE] = "DELETE FROM topic_configs WHERE tid = ?1 AND name = ?2",
	[ST_CONFIG_DELETE_TOPIC] = "DELETE FROM topic_configs WHERE tid = ?1",
	[ST_REPLICAS_INSERT] = "INSERT INTO partition_replicas (tid, partition, replicas)"
		" VALUES (?1, ?2, ?3)",
	[ST_REPLICAS_LIST] = "SELECT tid, partition, replicas FROM partition_replicas"
		" ORDER BY tid, partition",
	[ST_REPLICAS_DELETE_TOPIC] = "DELETE FROM partition_replicas WHERE tid = ?1",
	[ST_PARTITION_INSERT] = "INSERT INTO partitions (tid, partition, log_start_offset,"
		" high_watermark, change_seq) VALUES (?1, ?2, 0, 0, " CHANGE_SEQ_NEXT ")",
	/* Partitions of a deleted topic, left until their rows are purged,
	 * are invisible: commits, trims and readers find no partition. */
	[ST_PARTITION_GET] = "SELECT p.log_start_offset, p.high_watermark, p.first_unstable_offset,"
		" p.clean_offset, p.change_seq FROM partitions AS p"
		" WHERE p.tid = ?1 AND p.partition = ?2"
		" AND EXISTS (SELECT 1 FROM topics AS t WHERE t.tid = p.tid)",
	[ST_PARTITION_LIST] = "SELECT p.tid, p.partition, p.log_start_offset, p.high_watermark,"
		" p.first_unstable_offset FROM partitions AS p WHERE EXISTS (SELECT 1 FROM topics AS t WHERE t.tid = p.tid)"
		" ORDER BY p.tid, p.partition",
	/* Never lowers the log start, never raises it past the HWM. */
	[ST_PARTITION_SET_LOG_START] = "UPDATE partitions SET log_start_offset ="
		" min(max(log_start_offset, ?3), high_watermark), change_seq = " CHANGE_SEQ_NEXT
		" WHERE tid = ?1 AND partition = ?2",
	/* A commit's: the row's change_seq is stamped only when not
	 * stamped since the last poll already (partitions_change then
	 * stays as it is: one page fewer to write per commit). */
	[ST_PARTITION_SET_HWM] = "UPDATE partitions SET high_watermark = ?3,"
		" first_unstable_offset = ?4, change_seq = " CHANGE_SEQ_NEXT
		" WHERE tid = ?1 AND partition = ?2",
	[ST_PARTITION_SET_HWM_STAMPED] = "UPDATE partitions SET high_watermark = ?3,"
		" first_unstable_offset = ?4 WHERE tid = ?1 AND partition = ?2",
	[ST_PARTITION_LIST_SINCE] = "SELECT p.tid, p.partition, p.log_start_offset,"
		" p.high_watermark, p.first_unstable_offset FROM partitions AS p"
		" WHERE p.change_seq >= ?1 AND EXISTS (SELECT 1 FROM topics AS t WHERE t.tid = p.tid)"
		" ORDER BY p.tid, p.partition",
	[ST_CHANGE_SEQ_RAISE] = "UPDATE cluster SET value = value + 1 WHERE name = 'change_seq'"
		" RETURNING value",
	[ST_CATALOG_VERSION] = "SELECT value FROM cluster WHERE name = 'catalog_version'",
	/* A deleted topic's partitions stay until their rows are purged. */
	[ST_PARTITION_DROP] = "DELETE FROM partitions WHERE tid = ?1 AND partition = ?2",
	[ST_PARTITION_OF_TOPIC] = "SELECT partition FROM partitions WHERE tid = ?1"
		" ORDER BY partition LIMIT 1",
	[ST_TOPIC_PURGE_NEXT] = "SELECT p.tid FROM partitions AS p WHERE NOT EXISTS"
		" (SELECT 1 FROM topics AS t WHERE t.tid = p.tid) LIMIT 1",
	[ST_OBJECT_INSERT] = "INSERT INTO objects (key, size, live_bytes, state, created_ms)"
		" VALUES (?1, ?2, 0, 'live', ?3)",
	/* A commit's object, with the bytes of all its batches live: one
	 * statement and no objects_dead entry in the common case. */
	[ST_OBJECT_INSERT_LIVE] = "INSERT INTO objects (key, size, live_bytes, state, created_ms)"
		" VALUES (?1, ?2, ?4, 'live', ?3)",
	[ST_OBJECT_SET_LIVE] = "UPDATE objects SET live_bytes = ?2 WHERE oid = ?1",
	/* One aggregate pass over the topic's batch rows (UPDATE ... FROM:
	 * SQLite 3.33+ and PostgreSQL). */
	/* The collectors' (the agent's and sluice gc): through the partial
	 * index objects_dead. */
	[ST_OBJECTS_DEAD] = "SELECT oid, key, size, live_bytes, state, created_ms FROM objects"
		" WHERE oid > ?1 AND live_bytes <= 0 AND (state = 'deleting' OR created_ms < ?2)"
		" ORDER BY oid LIMIT ?3",
	[ST_OBJECT_MARK_DELETING] = "UPDATE objects SET state = 'deleting'"
		" WHERE key = ?1 AND live_bytes <= 0",
	[ST_OBJECT_FORGET] = "DELETE FROM objects WHERE key = ?1 AND state = 'deleting'",
	[ST_OBJECT_KNOWN] = "SELECT 1 FROM objects WHERE key = ?1",
	/* With the change_seq a partition row written now gets (a commit's
	 * ST_PARTITION_SET_HWM_STAMPED). */
	[ST_GC_FENCE_GET] = "SELECT fence_ms, " CHANGE_SEQ_NEXT " FROM gc_fence WHERE id = 1",
	[ST_GC_FENCE_RAISE] = "UPDATE gc_fence SET fence_ms = max(fence_ms, ?1) WHERE id = 1",
	[ST_BATCH_INSERT] = "INSERT INTO batches (tid, partition, base_offset, last_offset, oid,"
		" byte_offset, length, record_count, max_timestamp, producer_id,"
		" producer_epoch, base_sequence, last_sequence, spans, attributes)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
	/* Trimming the front of one partition (retention, DeleteRecords). */
	/* A batch without timestamps (max_timestamp -1) counts from when its
	 * object was made, as Kafka falls back to a segment's mtime. */
	[ST_BATCHES_TRIM_SCAN] = "SELECT b.base_offset, b.last_offset, b.byte_offset, b.length,"
		" b.max_timestamp, o.created_ms, b.spans FROM batches AS b"
		" JOIN objects AS o ON o.oid = b.oid"
		" WHERE b.tid = ?1 AND b.partition = ?2 AND b.last_offset >= ?3"
		" ORDER BY b.last_offset",
	[ST_BATCHES_LIVE_BYTES] = "SELECT coalesce(sum(length), 0) FROM batches"
		" WHERE tid = ?1 AND partition = ?2 AND last_offset >= ?3",
	/* Where a chunk of the rows below the log start ends: the
	 * META_TRIM_CHUNK_ROWS-th row's last offset (none: fewer rows are left). */
	[ST_BATCHES_CHUNK_END] = "SELECT last_offset FROM batches WHERE tid = ?1"
		" AND partition = ?2 AND last_offset < ?3 ORDER BY last_offset LIMIT 1 OFFSET ?4",
	/* An object left without live bytes starts the collector's grace now
	 * (?4), as a merge's does: a fetch the batch index still serves from
	 * the trimmed rows finds its object (Kafka: file.delete.delay.ms). */
	[ST_OBJECT_SUBTRACT_BELOW] = "UPDATE objects SET live_bytes = objects.live_bytes - d.bytes,"
		" created_ms = CASE WHEN objects.live_bytes - d.bytes <= 0"
		" THEN max(objects.created_ms, ?4) ELSE objects.created_ms END"
		" FROM (SELECT oid, sum(length) AS bytes FROM batches WHERE tid = ?1"
		" AND partition = ?2 AND last_offset < ?3 GROUP BY oid) AS d"
		" WHERE objects.oid = d.oid",
	[ST_BATCH_DELETE_BELOW] = "DELETE FROM batches WHERE tid = ?1 AND partition = ?2"
		" AND last_offset < ?3",
	[ST_BATCHES_FROM] = "SELECT " BATCH_COLUMNS
		" FROM batches AS b JOIN objects AS o ON o.oid = b.oid"
		" WHERE b.tid = ?1 AND b.partition = ?2 AND b.last_offset >= ?3"
		" ORDER BY b.last_offset LIMIT ?4",
	/* The row, then the batch inside it (ts_row_pick): rows from ?4 on,
	 * and never below the log start (the last column). */
	[ST_OFFSET_FOR_TIMESTAMP] = "SELECT " BATCH_COLUMNS ", p.log_start_offset"
		" FROM partitions AS p JOIN batches AS b ON b.tid = p.tid AND b.partition = p.partition"
		" JOIN objects AS o ON o.oid = b.oid"
		" WHERE p.tid = ?1 AND p.partition = ?2 AND b.max_timestamp >= ?3"
		" AND b.last_offset >= max(p.log_start_offset, ?4)"
		" ORDER BY b.last_offset LIMIT 1",
	/* The cleaner's bounds (meta_clean_bytes): one range of the
	 * primary key, from the log start. */
	[ST_CLEAN_BYTES] = "SELECT coalesce(sum(CASE WHEN last_offset < ?4 AND base_offset >= ?3"
		" THEN length ELSE 0 END), 0),"
		" coalesce(sum(CASE WHEN last_offset >= ?4 THEN length ELSE 0 END), 0)"
		" FROM batches WHERE tid = ?1 AND partition = ?2 AND last_offset >= ?3",
	[ST_MAX_TIMESTAMP] = "SELECT " BATCH_COLUMNS ", p.log_start_offset"
		" FROM partitions AS p JOIN batches AS b ON b.tid = p.tid AND b.partition = p.partition"
		" JOIN objects AS o ON o.oid = b.oid"
		" WHERE p.tid = ?1 AND p.partition = ?2 AND b.last_offset >= max(p.log_start_offset, ?3)"
		" ORDER BY b.max_timestamp DESC, b.last_offset ASC LIMIT 1",
	[ST_PSTATE_GET] = "SELECT producer_epoch, batches FROM producer_state"
		" WHERE tid = ?1 AND partition = ?2 AND producer_id = ?3",
	[ST_PSTATE_PUT] = "INSERT INTO producer_state (tid, partition, producer_id, producer_epoch,"
		" batches, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
		" ON CONFLICT (tid, partition, producer_id) DO UPDATE SET"
		" producer_epoch = excluded.producer_epoch, batches = excluded.batches,"
		" updated_ms = excluded.updated_ms",
	[ST_PSTATE_DELETE_TOPIC] = "DELETE FROM producer_state WHERE tid = ?1",
	[ST_PSTATE_EXPIRE] = "DELETE FROM producer_state WHERE tid = ?1 AND partition = ?2"
		" AND updated_ms < ?3",
	/* An applied marker, as Kafka's appendEndTxnMarker: the producer's
	 * state there (made if it has none) takes the marker's coordinator
	 * epoch and time, and a newer epoch (a fence's or a timeout's abort)
	 * with no batch of it yet. */
	[ST_PSTATE_MARKER] = "INSERT INTO producer_state (tid, partition, producer_id,"
		" producer_epoch, batches, updated_ms, coordinator_epoch)"
		" VALUES (?1, ?2, ?3, ?4, '', ?5, ?6)"
		" ON CONFLICT (tid, partition, producer_id) DO UPDATE SET"
		" batches = CASE WHEN excluded.producer_epoch > producer_epoch THEN ''"
		"  ELSE batches END,"
		" producer_epoch = max(producer_epoch, excluded.producer_epoch),"
		" updated_ms = excluded.updated_ms, coordinator_epoch = excluded.coordinator_epoch",
	[ST_PSTATE_DESCRIBE] = "SELECT s.producer_id, s.producer_epoch, s.batches, s.updated_ms,"
		" s.coordinator_epoch,"
		" coalesce(t.first_offset, -1) FROM producer_state AS s"
		" LEFT JOIN partition_txns AS t ON t.tid = s.tid AND t.partition = s.partition"
		" AND t.producer_id = s.producer_id"
		" WHERE s.tid = ?1 AND s.partition = ?2 ORDER BY s.producer_id LIMIT ?3",
	[ST_PRODUCER_IDS_ALLOC] = "UPDATE producer_ids SET next_producer_id = next_producer_id + ?1"
		" WHERE id = 1 AND next_producer_id <= ?2 RETURNING next_producer_id - ?1",
	[ST_OFFSET_UPSERT] = "INSERT INTO group_offsets (group_id, tid, partition,"
		" committed_offset, leader_epoch, metadata, commit_timestamp_ms, commit_seq)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
		" ON CONFLICT (group_id, tid, partition) DO UPDATE SET"
		" committed_offset = excluded.committed_offset,"
		" leader_epoch = excluded.leader_epoch, metadata = excluded.metadata,"
		" commit_timestamp_ms = excluded.commit_timestamp_ms, commit_seq = excluded.commit_seq",
	[ST_OFFSET_FETCH] = "SELECT tid, partition, committed_offset, leader_epoch, metadata,"
		" commit_timestamp_ms FROM group_offsets WHERE group_id = ?1"
		" ORDER BY tid, partition",
	[ST_TXN_OFFSETS_PENDING] = "SELECT DISTINCT tid, partition FROM txn_offsets"
		" WHERE group_id = ?1 ORDER BY tid, partition",
	[ST_GROUP_LIST] = "SELECT group_id, count(*), max(commit_timestamp_ms)"
		" FROM group_offsets GROUP BY group_id ORDER BY group_id",
	[ST_OFFSET_DELETE_GROUP] = "DELETE FROM group_offsets WHERE group_id = ?1",
	[ST_GROUP_STATE_UPSERT] = "INSERT INTO group_state (group_id, generation, protocol_type,"
		" protocol_name, leader_id, members, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
		" ON CONFLICT (group_id) DO UPDATE SET generation = excluded.generation,"
		" protocol_type = excluded.protocol_type, protocol_name = excluded.protocol_name,"
		" leader_id = excluded.leader_id, members = excluded.members,"
		" updated_ms = excluded.updated_ms",
	[ST_GROUP_STATE_GET] = "SELECT group_id, generation, protocol_type, protocol_name, leader_id,"
		" members FROM group_state WHERE group_id = ?1",
	[ST_GROUP_STATE_LIST] = "SELECT group_id, generation, protocol_type, protocol_name, leader_id,"
		" members FROM group_state ORDER BY group_id",
	[ST_GROUP_STATE_DELETE] = "DELETE FROM group_state WHERE group_id = ?1",
	[ST_GROUP_FORGET] = "DELETE FROM group_state WHERE group_id = ?1"
		" AND NOT EXISTS (SELECT 1 FROM group_offsets WHERE group_id = ?1)"
		" AND NOT EXISTS (SELECT 1 FROM txn_offsets WHERE group_id = ?1)",
	[ST_GROUP_STATES_EXPIRE] = "DELETE FROM group_state WHERE updated_ms < ?1"
		" AND NOT EXISTS (SELECT 1 FROM group_offsets AS o"
		" WHERE o.group_id = group_state.group_id)"
		" AND NOT EXISTS (SELECT 1 FROM txn_offsets AS p"
		" WHERE p.group_id = group_state.group_id)"
		" AND NOT EXISTS (SELECT 1 FROM leases AS l WHERE l.name = '" META_LEASE_GROUP_PREFIX
		"' || group_state.group_id AND l.expires_ms >= ?1)",
	[ST_OFFSET_DELETE_ONE] = "DELETE FROM group_offsets"
		" WHERE group_id = ?1 AND tid = ?2 AND partition = ?3",
	[ST_OFFSET_DELETE_TOPIC] = "DELETE FROM group_offsets WHERE tid = ?1",
	[ST_AGENT_FORGET_ALL] = "DELETE FROM agents",
	[ST_AGENT_EXPIRE] = "DELETE FROM agents WHERE heartbeat_ms < ?1",
	[ST_AGENT_IDS] = "SELECT node_id FROM agents ORDER BY node_id",
	[ST_AGENT_INSERT] = "INSERT INTO agents (node_id, incarnation, endpoints, zone, start_ms,"
		" heartbeat_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_AGENT_BEAT] = "UPDATE agents SET heartbeat_ms = ?3 WHERE node_id = ?1 AND incarnation = ?2",
	[ST_AGENT_DELETE] = "DELETE FROM agents WHERE node_id = ?1 AND incarnation = ?2",
	[ST_AGENT_LIST] = "SELECT node_id, incarnation, endpoints, zone, start_ms FROM agents"
		" ORDER BY node_id",
	[ST_EPOCH_RAISE] = "UPDATE cluster SET value = value + 1 WHERE name = 'agents_epoch'",
	[ST_EPOCH_GET] = "SELECT value FROM cluster WHERE name = 'agents_epoch'",
	[ST_SCRAM_GET] = "SELECT name, mechanism, salt, iterations, stored_key, server_key"
		" FROM scram_credentials WHERE name = ?1 ORDER BY mechanism",
	[ST_SCRAM_LIST] = "SELECT name, mechanism, salt, iterations, stored_key, server_key"
		" FROM scram_credentials ORDER BY name, mechanism",
	[ST_SCRAM_UPSERT] = "INSERT INTO scram_credentials (name, mechanism, salt, iterations,"
		" stored_key, server_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
		" ON CONFLICT (name, mechanism) DO UPDATE SET salt = excluded.salt,"
		" iterations = excluded.iterations, stored_key = excluded.stored_key,"
		" server_key = excluded.server_key",
	[ST_SCRAM_DELETE] = "DELETE FROM scram_credentials WHERE name = ?1"
		" AND (?2 = 0 OR mechanism = ?2)",
	[ST_ACL_VERSION] = "SELECT value FROM cluster WHERE name = 'acl_version'",
	[ST_ACL_LIST] = "SELECT resource_type, resource_name, pattern_type, principal, host,"
		" operation, permission FROM acls",
	[ST_ACL_INSERT] = "INSERT OR IGNORE INTO acls (resource_type, resource_name, pattern_type,"
		" principal, host, operation, permission) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_ACL_DELETE] = "DELETE FROM acls WHERE resource_type = ?1 AND resource_name = ?2"
		" AND pattern_type = ?3 AND principal = ?4 AND host = ?5 AND operation = ?6"
		" AND permission = ?7",
	[ST_ACL_COUNT] = "SELECT count(*) FROM acls",
	[ST_ACL_RAISE] = "UPDATE cluster SET value = value + 1 WHERE name = 'acl_version'",
	[ST_TXN_HEAD] = "SELECT producer_id, producer_epoch, state, txn_seq FROM transactions"
		" WHERE transactional_id = ?1",
	[ST_TXN_VERSION] = "SELECT version FROM transactions WHERE transactional_id = ?1",
	[ST_TXN_UPSERT] = "INSERT INTO transactions (transactional_id, producer_id,"
		" last_producer_id, producer_epoch, last_producer_epoch, timeout_ms, state, txn_seq,"
		" start_ms, update_ms, coord_epoch, version)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
		" ON CONFLICT (transactional_id) DO UPDATE SET producer_id = excluded.producer_id,"
		" last_producer_id = excluded.last_producer_id,"
		" producer_epoch = excluded.producer_epoch,"
		" last_producer_epoch = excluded.last_producer_epoch,"
		" timeout_ms = excluded.timeout_ms, state = excluded.state,"
		" txn_seq = excluded.txn_seq, start_ms = excluded.start_ms,"
		" update_ms = excluded.update_ms, coord_epoch = excluded.coord_epoch,"
		" version = excluded.version",
	[ST_TXN_DELETE] = "DELETE FROM transactions WHERE transactional_id = ?1",
	[ST_TXN_LIST] = "SELECT transactional_id, producer_id, last_producer_id, producer_epoch,"
		" last_producer_epoch, timeout_ms, state, txn_seq, start_ms, update_ms, coord_epoch,"
		" version FROM transactions ORDER BY transactional_id",
	/* The three lists for one id (meta_txn_load_one). */
	/* States 1-3: TXN_ONGOING, TXN_PREPARE_COMMIT, TXN_PREPARE_ABORT. */
	[ST_TXN_OPEN_LIST] = "SELECT transactional_id, state FROM transactions"
		" WHERE state IN (1, 2, 3) ORDER BY transactional_id",
	[ST_TXN_LIST_ONE] = "SELECT transactional_id, producer_id, last_producer_id, producer_epoch,"
		" last_producer_epoch, timeout_ms, state, txn_seq, start_ms, update_ms, coord_epoch,"
		" version FROM transactions WHERE transactional_id = ?1",
	[ST_TXN_PART_LIST_ONE] = "SELECT transactional_id, tid, partition FROM txn_partitions"
		" WHERE transactional_id = ?1 ORDER BY tid, partition",
	[ST_TXN_GROUP_LIST_ONE] = "SELECT transactional_id, group_id FROM txn_groups"
		" WHERE transactional_id = ?1 ORDER BY group_id",
	[ST_TXN_PART_GET] = "SELECT 1 FROM txn_partitions WHERE transactional_id = ?1"
		" AND tid = ?2 AND partition = ?3",
	[ST_TXN_PART_INSERT] = "INSERT OR IGNORE INTO txn_partitions (transactional_id, tid,"
		" partition) VALUES (?1, ?2, ?3)",
	[ST_TXN_PART_DELETE] = "DELETE FROM txn_partitions WHERE transactional_id = ?1"
		" AND tid = ?2 AND partition = ?3",
	[ST_TXN_PART_LEFT] = "SELECT 1 FROM txn_partitions WHERE transactional_id = ?1 LIMIT 1",
	[ST_TXN_PARTS_CLEAR] = "DELETE FROM txn_partitions WHERE transactional_id = ?1",
	[ST_TXN_PART_LIST] = "SELECT transactional_id, tid, partition FROM txn_partitions"
		" ORDER BY transactional_id, tid, partition",
	[ST_TXN_GROUP_GET] = "SELECT 1 FROM txn_groups WHERE transactional_id = ?1"
		" AND group_id = ?2",
	[ST_TXN_GROUP_INSERT] = "INSERT OR IGNORE INTO txn_groups (transactional_id, group_id)"
		" VALUES (?1, ?2)",
	[ST_TXN_GROUPS_CLEAR] = "DELETE FROM txn_groups WHERE transactional_id = ?1",
	[ST_TXN_GROUP_LIST] = "SELECT transactional_id, group_id FROM txn_groups"
		" ORDER BY transactional_id, group_id",
	[ST_PTXN_OPEN] = "SELECT 1 FROM partition_txns WHERE tid = ?1 AND partition = ?2"
		" AND producer_id = ?3",
	[ST_PTXN_INSERT] = "INSERT OR IGNORE INTO partition_txns (tid, partition, producer_id,"
		" producer_epoch, first_offset, transactional_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_PTXN_TAKE] = "DELETE FROM partition_txns WHERE tid = ?1 AND partition = ?2"
		" AND transactional_id = ?3 RETURNING producer_id, first_offset",
	[ST_PTXN_FIRST] = "SELECT coalesce(min(first_offset), -1) FROM partition_txns"
		" WHERE tid = ?1 AND partition = ?2",
	[ST_PTXN_DELETE_TOPIC] = "DELETE FROM partition_txns WHERE tid = ?1",
	[ST_ABORTED_SEQ] = "UPDATE cluster SET value = value + 1 WHERE name = 'aborted_seq'"
		" RETURNING value",
	[ST_ABORTED_INSERT] = "INSERT INTO aborted_txns (tid, partition, last_offset,"
		" first_offset, producer_id, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_ABORTED_RANGE] = "SELECT producer_id, first_offset, last_offset FROM aborted_txns"
		" WHERE tid = ?1 AND partition = ?2 AND last_offset >= ?3 AND first_offset < ?4"
		" ORDER BY first_offset, last_offset LIMIT ?5",
	[ST_ABORTED_SINCE] = "SELECT seq, tid, partition, producer_id, first_offset, last_offset"
		" FROM aborted_txns WHERE seq > ?1 ORDER BY seq LIMIT ?2",
	[ST_ABORTED_TRIM] = "DELETE FROM aborted_txns WHERE tid = ?1 AND partition = ?2"
		" AND last_offset < ?3",
	[ST_ABORTED_DELETE_TOPIC] = "DELETE FROM aborted_txns WHERE tid = ?1",
	[ST_ABORTED_GONE] = "DELETE FROM aborted_txns WHERE tid = ?1 AND partition = ?2"
		" AND last_offset = ?3",
	[ST_OFFSET_SEQ] = "UPDATE cluster SET value = value + 1 WHERE name = 'offset_commit_seq'"
		" RETURNING value",
	[ST_TXN_OFFSET_UPSERT] = "INSERT INTO txn_offsets (group_id, tid, partition, producer_id,"
		" transactional_id, committed_offset, leader_epoch, metadata, commit_timestamp_ms,"
		" commit_seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
		" ON CONFLICT (group_id, tid, partition, producer_id) DO UPDATE SET"
		" transactional_id = excluded.transactional_id,"
		" committed_offset = excluded.committed_offset,"
		" leader_epoch = excluded.leader_epoch, metadata = excluded.metadata,"
		" commit_timestamp_ms = excluded.commit_timestamp_ms, commit_seq = excluded.commit_seq",
	/* A COMMIT's pending offsets: each where it is newer than the
	 * group's (a plain commit stored after it wins, as in Kafka); not
	 * for a topic deleted meanwhile. */
	[ST_TXN_OFFSETS_SETTLE] = "INSERT INTO group_offsets (group_id, tid, partition,"
		" committed_offset, leader_epoch, metadata, commit_timestamp_ms, commit_seq)"
		" SELECT x.group_id, x.tid, x.partition, x.committed_offset, x.leader_epoch,"
		" x.metadata, x.commit_timestamp_ms, x.commit_seq FROM txn_offsets AS x"
		" WHERE x.transactional_id = ?1"
		" AND EXISTS (SELECT 1 FROM topics AS t WHERE t.tid = x.tid)"
		" ON CONFLICT (group_id, tid, partition) DO UPDATE SET"
		" committed_offset = excluded.committed_offset,"
		" leader_epoch = excluded.leader_epoch, metadata = excluded.metadata,"
		" commit_timestamp_ms = excluded.commit_timestamp_ms, commit_seq = excluded.commit_seq"
		" WHERE excluded.commit_seq > group_offsets.commit_seq",
	[ST_TXN_OFFSETS_DROP] = "DELETE FROM txn_offsets WHERE transactional_id = ?1",
	[ST_TXN_OFFSETS_DELETE_TOPIC] = "DELETE FROM txn_offsets WHERE tid = ?1",
	/* The merge swap (issue 15): the rows as they stand in the merged
	 * range (?3, ?4: the first and last row's last_offset), each checked
	 * against the merge's; their bytes subtracted from their objects, one
	 * UPDATE per object (an object left without live bytes starts the
	 * collector's grace now: created_ms is its clock); then they are
	 * deleted and replaced by the merged object's rows (meta_merge_rows).
	 * Range statements, not one per row: a swap of a few thousand rows
	 * holds the write lock that produce commits wait for. */
	[ST_MERGE_ROWS_GET] = "SELECT b.base_offset, b.last_offset, b.byte_offset, b.length, o.key,"
		" o.created_ms, b.spans, b.record_count, b.max_timestamp, b.attributes"
		" FROM batches AS b JOIN objects AS o ON o.oid = b.oid"
		" WHERE b.tid = ?1 AND b.partition = ?2 AND b.last_offset BETWEEN ?3 AND ?4"
		" ORDER BY b.last_offset",
	[ST_MERGE_OBJECTS_SUBTRACT] = "UPDATE objects SET live_bytes = live_bytes - d.bytes,"
		" created_ms = CASE WHEN live_bytes - d.bytes <= 0 THEN max(created_ms, ?5)"
		" ELSE created_ms END"
		" FROM (SELECT oid, sum(length) AS bytes FROM batches"
		" WHERE tid = ?1 AND partition = ?2 AND last_offset BETWEEN ?3 AND ?4"
		" GROUP BY oid) AS d WHERE objects.oid = d.oid",
	[ST_MERGE_ROWS_DELETE] = "DELETE FROM batches"
		" WHERE tid = ?1 AND partition = ?2 AND last_offset BETWEEN ?3 AND ?4",
	/* A later chunk of one merged object's swap (meta_merge.continues):
	 * the object an earlier chunk inserted, only while rows still name
	 * it (without live bytes the collector may be deleting it); then its
	 * live bytes grow by the chunk's. */
	[ST_MERGE_OBJECT_FIND] = "SELECT oid FROM objects"
		" WHERE key = ?1 AND size = ?2 AND state = 'live' AND live_bytes > 0",
	[ST_MERGE_OBJECT_ADD] = "UPDATE objects SET live_bytes = live_bytes + ?2,"
		" created_ms = min(created_ms, ?3) WHERE oid = ?1",
	[ST_CLEAN_OFFSET_RAISE] = "UPDATE partitions SET clean_offset = max(clean_offset, ?3)"
		" WHERE tid = ?1 AND partition = ?2",
};

struct sq_conn {
	sqlite3 *db;
	const char *role; /* "loop", "commit", ...: for messages */
	pthread_mutex_t lock;
	bool lock_ready;
	int64_t busy_since_us; /* when the current wait for a lock began */
	sqlite3_stmt *st[ST_COUNT];
};

struct meta_sqlite {
	struct meta base; /* first: the methods pointer */
	char *path;
	struct sq_conn loop;
	struct sq_conn read;
	struct sq_conn commit;
	struct sq_conn offsets;
	struct sq_conn trim;
	struct sq_conn admin;
	struct sq_conn cluster; /* the agent registry */
	int claim_fd;     /* sq_claim's lock file, or -1 */
};

static struct meta_sqlite *sq_of(struct meta *m)
{
	return (struct meta_sqlite *)m;
}

/* Logs the connection's last error once and maps it to SL_EMETA. */
static int sq_fail(struct sq_conn *c, const char *what)
{
	log_error("metadata store (%s): %s: %s", c->role, what, sqlite3_errmsg(c->db));
	return SL_EMETA;
}

static sqlite3_stmt *sq_stmt(struct sq_conn *c, enum stmt s)
{
	sqlite3_stmt *st = c->st[s];
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

/* Runs a statement that returns no rows (or whose rows are ignored). */
static int sq_exec_stmt(struct sq_conn *c, sqlite3_stmt *st, const char *what)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE) {
		int err = sq_fail(c, what);
		sqlite3_reset(st);
		return err;
	}
	sqlite3_reset(st);
	return 0;
}

/* Rolls back if a transaction is open; the error being reported is the
 * one that led here, so a rollback failure is only logged. */
static void sq_rollback(struct sq_conn *c)
{
	if (sqlite3_get_autocommit(c->db))
		return;
	sqlite3_stmt *st = sq_stmt(c, ST_ROLLBACK);
	if (sqlite3_step(st) != SQLITE_DONE)
		log_error("metadata store (%s): ROLLBACK: %s", c->role, sqlite3_errmsg(c->db));
	sqlite3_reset(st);
}

/* ---- transactions ----
 * Every transaction goes through sq_txn: the one place that decides how
 * one begins, ends and fails, instead of a copy of lock / BEGIN / COMMIT /
 * ROLLBACK / unlock in each call. A PostgreSQL backend mirrors the shape
 * (one connection per thread, BEGIN ... COMMIT, and the body run again
 * after a serialization failure); SQLite needs no retry: BEGIN IMMEDIATE
 * takes the write lock up front, and a writer that finds it taken waits
 * in the busy handler (busy_retry) rather than failing later on a lock
 * upgrade. */

/* A transaction's work, run between BEGIN and COMMIT with the
 * connection's lock held: returns 0, or a negative SL_E* code and the
 * transaction rolls back. A backend may run a body more than once (after
 * a serialization failure), so a body sets its outputs in arg afresh on
 * each run, and the caller trusts them only when the transaction returned
 * 0. */
typedef int (*sq_txn_body)(struct sq_conn *c, void *arg);

enum txn_mode {
	TXN_WRITE, /* BEGIN IMMEDIATE: every write */
	TXN_READ,  /* BEGIN: several reads from one snapshot */
};

/* With c's lock held (the trim keeps it across its reads and chunks):
 * BEGIN, body, COMMIT; ROLLBACK when any of them fails. Returns 0, the
 * body's error, or SL_EMETA (logged) when BEGIN or COMMIT failed. */
static int sq_txn_locked(struct sq_conn *c, enum txn_mode mode, sq_txn_body body, void *arg)
{
	int rc = sq_exec_stmt(c, sq_stmt(c, mode == TXN_READ ? ST_BEGIN_READ : ST_BEGIN), "BEGIN");
	if (rc)
		return rc;
	rc = body(c, arg);
	if (!rc)
		rc = sq_exec_stmt(c, sq_stmt(c, ST_COMMIT), "COMMIT");
	if (rc)
		sq_rollback(c);
	return rc;
}

/* sq_txn_locked under c's lock: the usual way to run a transaction. */
static int sq_txn(struct sq_conn *c, enum txn_mode mode, sq_txn_body body, void *arg)
{
	pthread_mutex_lock(&c->lock);
	int rc = sq_txn_locked(c, mode, body, arg);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static void conn_close(struct sq_conn *c)
{
	for (int i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(c->st[i]);
		c->st[i] = NULL;
	}
	if (c->db)
		sqlite3_close_v2(c->db);
	c->db = NULL;
	if (c->lock_ready)
		pthread_mutex_destroy(&c->lock);
	c->lock_ready = false;
}

static int conn_pragma(struct sq_conn *c, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_error("metadata store (%s): %s: %s", c->role, sql, msg ? msg : "?");
		sqlite3_free(msg);
		return SL_EMETA;
	}
	return 0;
}

static int conn_user_version(struct sq_conn *c, int *version)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return sq_fail(c, "PRAGMA user_version");
	int rc = sqlite3_step(st);
	*version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : sq_fail(c, "PRAGMA user_version");
}

/* Whether a table has a column (an upgrade adds it; a database a test
 * set back to an older version keeps it). */
static bool table_has_column(struct sq_conn *c, const char *table, const char *column)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(c->db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2", -1,
			       &st, NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, column, -1, SQLITE_STATIC);
	bool have = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return have;
}

/* Columns later versions added to tables of earlier ones. */
static const struct {
	int version;
	const char *table, *column, *sql;
} added_columns[] = {
	{ 8, "batches", "spans", "ALTER TABLE batches ADD COLUMN spans TEXT" },
	{ 10, "partitions", "first_unstable_offset",
	  "ALTER TABLE partitions ADD COLUMN first_unstable_offset INTEGER NOT NULL DEFAULT -1" },
	{ 10, "batches", "attributes",
	  "ALTER TABLE batches ADD COLUMN attributes INTEGER NOT NULL DEFAULT 0" },
	{ 10, "group_offsets", "commit_seq",
	  "ALTER TABLE group_offsets ADD COLUMN commit_seq INTEGER NOT NULL DEFAULT 0" },
	{ 12, "partitions", "change_seq",
	  "ALTER TABLE partitions ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0" },
	{ 14, "partitions", "clean_offset",
	  "ALTER TABLE partitions ADD COLUMN clean_offset INTEGER NOT NULL DEFAULT 0" },
	{ 15, "producer_state", "coordinator_epoch",
	  "ALTER TABLE producer_state ADD COLUMN coordinator_epoch INTEGER NOT NULL DEFAULT -1" },
};

/* Indexes on added columns: after added_columns. */
static const char schema_indexes_sql[] =
	"CREATE INDEX IF NOT EXISTS partitions_change ON partitions (change_seq);";

/* Creates the schema on a new database, or checks the version of an
 * existing one. A later version adds its migrations here, keyed by the
 * version found. */
static int conn_schema(struct sq_conn *c, const char *path, bool create)
{
	int rc = conn_pragma(c, "BEGIN IMMEDIATE");
	if (rc)
		return rc;
	int version;
	rc = conn_user_version(c, &version);
	if (rc)
		goto out_rollback;
	if (version > SCHEMA_VERSION) {
		log_error("metadata store %s has schema version %d; this build knows up to %d",
			  path, version, SCHEMA_VERSION);
		rc = SL_EMETA;
		goto out_rollback;
	}
	if (version == 0 && !create) {
		log_error("metadata store %s has no schema: not a sluice metadata store "
			  "(refusing to create one here)", path);
		rc = SL_EMETA;
		goto out_rollback;
	}
	if (version < SCHEMA_VERSION) {
		char sql[64];
		/* Before version 4, agents was a placeholder nothing wrote. */
		if (version > 0 && version < 4)
			rc = conn_pragma(c, "DROP TABLE IF EXISTS agents");
		if (!rc)
			rc = conn_pragma(c, schema_sql);
		if (!rc && version > 0 && version < 7)
			rc = conn_pragma(c, producer_state_fill_sql);
		if (!rc && version >= 10 && version < 16)
			rc = conn_pragma(c, aborted_txns_rekey_sql);
		for (size_t i = 0; i < sizeof added_columns / sizeof added_columns[0]; i++)
			if (!rc && version > 0 && version < added_columns[i].version &&
			    !table_has_column(c, added_columns[i].table, added_columns[i].column))
				rc = conn_pragma(c, added_columns[i].sql);
		if (!rc)
			rc = conn_pragma(c, schema_indexes_sql);
		if (rc)
			goto out_rollback;
		snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SCHEMA_VERSION);
		rc = conn_pragma(c, sql);
		if (rc)
			goto out_rollback;
		if (version == 0)
			log_info("metadata store %s: created schema version %d", path,
				 SCHEMA_VERSION);
		else
			log_info("metadata store %s: schema version %d upgraded to %d", path,
				 version, SCHEMA_VERSION);
	}
	return conn_pragma(c, "COMMIT");
out_rollback:
	conn_pragma(c, "ROLLBACK");
	return rc;
}

/* How a connection opens its file: CONN_CREATE creates the file and the
 * schema if missing (the agent's loop connection); CONN_EXISTING never
 * creates the file and refuses a database without a schema, but upgrades
 * an older one (tools that must not take an empty store for the truth);
 * CONN_PLAIN opens what the first connection set up. */
enum conn_mode { CONN_CREATE, CONN_EXISTING, CONN_PLAIN };

/* Busy handler: retry every millisecond for up to BUSY_TIMEOUT_MS.
 * SQLite's own (sqlite3_busy_timeout) sleeps longer and longer between
 * tries, so a commit waiting behind a run of short transactions (a trim's
 * chunks) could miss every gap between them. The bound is on the clock,
 * not a count of tries: a usleep(1000) lasts 1.1 ms on an idle machine
 * and 2.5 ms on a loaded one, where 5000 tries took 13 s. */
static int busy_retry(void *arg, int count)
{
	struct sq_conn *c = arg;
	int64_t now_us = clock_mono_us();
	if (count == 0)
		c->busy_since_us = now_us;
	else if (now_us - c->busy_since_us >= (int64_t)BUSY_TIMEOUT_MS * 1000)
		return 0;
	usleep(1000);
	return 1;
}

static int conn_open(struct sq_conn *c, const char *role, const char *path,
		     enum conn_mode mode)
{
	c->role = role;
	if (pthread_mutex_init(&c->lock, NULL) != 0)
		return SL_ENOMEM;
	c->lock_ready = true;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
		    (mode == CONN_CREATE ? SQLITE_OPEN_CREATE : 0);
	if (sqlite3_open_v2(path, &c->db, flags, meta_sqlite_wal_vfs()) != SQLITE_OK) {
		log_error("metadata store: cannot open %s: %s", path,
			  c->db ? sqlite3_errmsg(c->db) : "out of memory");
		return SL_EMETA;
	}
	/* SQLite opens a file it may not write read-only without a word;
	 * the agent would then fail at its first write, far from here. */
	if (sqlite3_db_readonly(c->db, "main") == 1) {
		log_error("metadata store: %s is not writable", path);
		return SL_EMETA;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_handler(c->db, busy_retry, c);
	int rc, version;
	/* Before any pragma writes to it: an empty or foreign file stays
	 * untouched. */
	if (mode == CONN_EXISTING) {
		rc = conn_user_version(c, &version);
		if (rc)
			return rc;
		if (version == 0) {
			log_error("metadata store %s has no schema: not a sluice metadata "
				  "store (refusing to create one here)", path);
			return SL_EMETA;
		}
	}
	rc = conn_pragma(c, "PRAGMA journal_mode = WAL");
	if (!rc)
		rc = conn_pragma(c, "PRAGMA synchronous = FULL");
	if (!rc)
		rc = conn_pragma(c, "PRAGMA foreign_keys = OFF");
	if (!rc && mode != CONN_PLAIN)
		rc = conn_schema(c, path, mode == CONN_CREATE);
	if (rc)
		return rc;
	for (int i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(c->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &c->st[i], NULL) != SQLITE_OK) {
			log_error("metadata store: preparing \"%s\": %s", stmt_sql[i],
				  sqlite3_errmsg(c->db));
			return SL_EMETA;
		}
	}
	return 0;
}

static void sq_close(struct meta *m)
{
	struct meta_sqlite *s = sq_of(m);
	conn_close(&s->cluster);
	conn_close(&s->admin);
	conn_close(&s->trim);
	conn_close(&s->offsets);
	conn_close(&s->commit);
	conn_close(&s->read);
	conn_close(&s->loop);
	if (s->claim_fd >= 0)
		close(s->claim_fd);
	free(s->path);
	free(s);
}

/* meta.h, meta_open_agent. One agent per SQLite file: an exclusive
 * flock on PATH.lock, held until the process exits (the kernel drops it
 * when the agent dies, so a killed agent never leaves a stale claim).
 * flock, not SQLite's own fcntl locks: tools (sluice gc, inspect) open
 * the same database while the agent serves, and must. The file keeps
 * the holder's pid for the next claimant's message. */
static int sq_claim(struct meta_sqlite *s)
{
	char lock_path[4096];
	if (snprintf(lock_path, sizeof lock_path, "%s.lock", s->path) >= (int)sizeof lock_path)
		return SL_EINVAL;
	int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		log_error("metadata store: cannot open %s: %s", lock_path, strerror(errno));
		return SL_EIO;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int err = errno;
		char pid[32] = "";
		ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
		pid[n > 0 ? n : 0] = 0;
		pid[strcspn(pid, "\n")] = 0;
		close(fd);
		if (err != EWOULDBLOCK) {
			log_error("metadata store: cannot lock %s: %s", lock_path, strerror(err));
			return SL_EIO;
		}
		log_error("metadata store: %s is in use by another agent%s%s%s; one agent per "
			  "SQLite data dir (several agents need a postgresql:// metadata store)",
			  s->path, pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
		return SL_EBUSY;
	}
	char pid[32];
	int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
		log_warn("metadata store: cannot write the pid into %s", lock_path);
	s->claim_fd = fd;
	return 0;
}

/* Inside a transaction: the topic's tid, or SL_ENOTFOUND. */
static int topic_id_by_name(struct sq_conn *c, const char *name, int64_t *tid)
{
	sqlite3_stmt *st = sq_stmt(c, ST_TOPIC_ID_BY_NAME);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*tid = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SL_ENOTFOUND : sq_fail(c, "looking up a topic");
}

static int topic_partition_count(struct sq_conn *c, int64_t tid, int32_t *count)
{
	sqlite3_stmt *st = sq_stmt(c, ST_TOPIC_COUNT);
	sqlite3_bind_int64(st, 1, tid);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*count = sqlite3_column_int(st, 0);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SL_ENOTFOUND : sq_fail(c, "reading a topic");
}

static int partitions_insert(struct sq_conn *c, int64_t tid, int32_t from, int32_t to)
{
	for (int32_t p = from; p < to; p++) {
		sqlite3_stmt *st = sq_stmt(c, ST_PARTITION_INSERT);
		sqlite3_bind_int64(st, 1, tid);
		sqlite3_bind_int(st, 2, p);
		int rc = sq_exec_stmt(c, st, "inserting a partition");
		if (rc)
			return rc;
	}
	return 0;
}

/* Partitions [r->first, r->first + count)'s assignment rows. */
static int replicas_insert(struct sq_conn *c, int64_t tid, const struct meta_replicas *r,
			   int32_t count)
{
	char text[META_REPLICAS_TEXT_BYTES];
	for (int32_t i = 0; r && i < count; i++) {
		meta_replicas_format(r, i, text);
		sqlite3_stmt *st = sq_stmt(c, ST_REPLICAS_INSERT);
		sqlite3_bind_int64(st, 1, tid);
		sqlite3_bind_int(st, 2, r->first + i);
		sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
		int rc = sq_exec_stmt(c, st, "inserting a replica assignment");
		if (rc)
			return rc;
	}
	return 0;
}

static int config_set(struct sq_conn *c, int64_t tid, const char *name, const char *value)
{
	sqlite3_stmt *st = sq_stmt(c, value ? ST_CONFIG_UPSERT : ST_CONFIG_DELETE);
	sqlite3_bind_int64(st, 1, tid);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	if (value)
		sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC);
	return sq_exec_stmt(c, st, value ? "setting a topic config" : "deleting a topic config");
}

struct topic_create_txn {
	const char *name;
	int32_t partitions;
	const struct meta_config *configs;
	int32_t config_count;
	const struct meta_replicas *replicas;
	uint8_t *uuid; /* out, with tid */
	int64_t tid;
};

static int topic_create_body(struct sq_conn *c, void *arg)
{
	struct topic_create_txn *x = arg;
	int rc = topic_id_by_name(c, x->name, &x->tid);
	if (rc == 0)
		return SL_EEXIST;
	if (rc != SL_ENOTFOUND)
		return rc;
	/* A UUID collision (2^-122) would fail the UNIQUE constraint; try a
	 * few fresh ones before calling it an error. */
	for (int attempt = 0;; attempt++) {
		rc = meta_random_uuid(x->uuid);
		if (rc)
			return rc;
		sqlite3_stmt *st = sq_stmt(c, ST_TOPIC_INSERT);
		sqlite3_bind_text(st, 1, x->name, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 2, x->uuid, 16, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, x->partitions);
		sqlite3_bind_int64(st, 4, clock_wall_ms());
		int step = sqlite3_step(st);
		sqlite3_reset(st);
		if (step == SQLITE_DONE)
			break;
		if (step != SQLITE_CONSTRAINT_UNIQUE || attempt == 3)
			return sq_fail(c, "inserting a topic");
	}
	x->tid = sqlite3_last_insert_rowid(c->db);
	rc = partitions_insert(c, x->tid, 0, x->partitions);
	if (!rc)
		rc = replicas_insert(c, x->tid, x->replicas, x->partitions);
	for (int32_t i = 0; !rc && i < x->config_count; i++)
		rc = config_set(c, x->tid, x->configs[i].name, x->configs[i].value);
	return rc;
}

static int sq_topic_create(struct meta *m, const char *name, int32_t partitions,
			   const struct meta_config *configs, int32_t config_count,
			   const struct meta_replicas *replicas, struct meta_topic *out)
{
	int rc = meta_topic_create_check(name, partitions, configs, config_count);
	if (!rc && replicas && (replicas->first != 0 || meta_replicas_check(replicas, partitions)))
		rc = SL_EINVAL;
	if (!rc)
		rc = meta_topic_out_alloc(out, config_count, partitions, replicas);
	if (rc)
		return rc;
	struct topic_create_txn x = { name, partitions, configs, config_count, replicas, out->uuid,
				      0 };
	rc = sq_txn(&sq_of(m)->admin, TXN_WRITE, topic_create_body, &x);
	if (rc) {
		meta_topic_free(out);
		return rc;
	}
	out->tid = x.tid;
	meta_topic_out_fill(out, name, partitions, configs, config_count, replicas);
	return 0;
}

struct topic_delete_txn {
	const char *name;
	int64_t tid; /* out */
};

/* The topic goes at once (its row, configs and committed offsets); its
 * partitions' rows stay, without a topic, until their batch rows are
 * gone (purge_topic_rows), so a purge that stops half-way (a crash) is
 * found and finished later (sq_purge_deleted). */
static int topic_delete_body(struct sq_conn *c, void *arg)
{
	static const enum stmt deletes[] = {
		ST_OFFSET_DELETE_TOPIC,
		ST_PSTATE_DELETE_TOPIC,
		ST_PTXN_DELETE_TOPIC,
		ST_ABORTED_DELETE_TOPIC,
		ST_TXN_OFFSETS_DELETE_TOPIC,
		ST_CONFIG_DELETE_TOPIC,
		ST_REPLICAS_DELETE_TOPIC,
		ST_TOPIC_DELETE,
	};
	struct topic_delete_txn *x = arg;
	int rc = topic_id_by_name(c, x->name, &x->tid);
	for (size_t i = 0; !rc && i < sizeof deletes / sizeof deletes[0]; i++) {
		sqlite3_stmt *st = sq_stmt(c, deletes[i]);
		sqlite3_bind_int64(st, 1, x->tid);
		rc = sq_exec_stmt(c, st, "deleting a topic");
	}
	return rc;
}

/* The topic goes in one short transaction; its batch rows stay for
 * sq_purge_deleted, which removes them a chunk per transaction so that
 * commits to other topics wait for one chunk at most instead of the whole
 * delete (as Kafka deletes a topic's metadata at once and its log
 * segments afterwards). */
static int sq_topic_delete(struct meta *m, const char *name)
{
	if (!name)
		return SL_EINVAL;
	struct topic_delete_txn x = { name, 0 };
	return sq_txn(&sq_of(m)->admin, TXN_WRITE, topic_delete_body, &x);
}

static void copy_text(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

/* Steps st (bound, its connection locked) for at most max_rows rows,
 * handing each to row as row i of out, then resets it. *n gets the rows
 * read (0 on error). */
static int sq_read_rows(struct sq_conn *c, sqlite3_stmt *st, size_t max_rows,
			void (*row)(sqlite3_stmt *st, void *out, size_t i), void *out, size_t *n,
			const char *what)
{
	size_t count = 0;
	int rc = 0, step = SQLITE_DONE;
	while (count < max_rows && (step = sqlite3_step(st)) == SQLITE_ROW)
		row(st, out, count++);
	if (count < max_rows && step != SQLITE_DONE)
		rc = sq_fail(c, what);
	sqlite3_reset(st);
	*n = rc ? 0 : count;
	return rc;
}

/* A row query on the loop connection: statement id with its integer
 * parameters ?1..?nb (the last being the row limit), rows read by row. */
static int sq_query_rows_on(struct sq_conn *c, enum stmt id, const int64_t *binds, int nb,
			    size_t max_rows, void (*row)(sqlite3_stmt *st, void *out, size_t i),
			    void *out, size_t *n, const char *what)
{
	*n = 0;
	if (max_rows == 0)
		return 0;
	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st = sq_stmt(c, id);
	for (int i = 0; i < nb; i++)
		sqlite3_bind_int64(st, i + 1, binds[i]);
	int rc = sq_read_rows(c, st, max_rows, row, out, n, what);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* ---- garbage collection ---- */

static void object_row_read(sqlite3_stmt *st, void *out, size_t i)
{
	struct meta_object *o = (struct meta_object *)out + i;
	o->oid = sqlite3_column_int64(st, 0);
	copy_text(o->key, sizeof o->key, st, 1);
	o->size = (uint64_t)sqlite3_column_int64(st, 2);
	o->live_bytes = sqlite3_column_int64(st, 3);
	const unsigned char *state = sqlite3_column_text(st, 4);
	o->deleting = state && !strcmp((const char *)state, "deleting");
	o->created_ms = sqlite3_column_int64(st, 5);
}

static int sq_objects_dead(struct meta *m, int64_t created_before_ms, int64_t after_oid,
			   size_t max_rows, struct meta_object *rows, size_t *n)
{
	if (max_rows > INT32_MAX)
		max_rows = INT32_MAX;
	int64_t binds[] = { after_oid, created_before_ms, (int64_t)max_rows };
	/* The maintenance connection: the scan holds no lock a loop read
	 * needs (the agent collects in the background). */
	return sq_query_rows_on(&sq_of(m)->trim, ST_OBJECTS_DEAD, binds, 3, max_rows,
				object_row_read, rows, n, "listing dead objects");
}

struct objects_each_txn {
	enum stmt s;
	const char *what;
	const char *const *keys;
	size_t n;
	bool *hit;      /* out (may be NULL) */
	size_t changed; /* out */
};

static int objects_each_body(struct sq_conn *c, void *arg)
{
	struct objects_each_txn *x = arg;
	x->changed = 0;
	for (size_t i = 0; i < x->n; i++) {
		sqlite3_stmt *st = sq_stmt(c, x->s);
		sqlite3_bind_text(st, 1, x->keys[i], -1, SQLITE_STATIC);
		int rc = sq_exec_stmt(c, st, x->what);
		if (rc)
			return rc;
		int k = sqlite3_changes(c->db);
		if (x->hit)
			x->hit[i] = k > 0;
		x->changed += (size_t)k;
	}
	return 0;
}

/* Runs statement s (?1 = key) for each key in one transaction: hit[i]
 * (may be NULL) tells whether it changed a row; *count counts them. */
static int objects_each(struct meta *m, enum stmt s, const char *what, const char *const *keys,
			size_t n, bool *hit, size_t *count)
{
	struct objects_each_txn x = { s, what, keys, n, hit, 0 };
	/* The maintenance connection, as objects_dead. */
	int rc = sq_txn(&sq_of(m)->trim, TXN_WRITE, objects_each_body, &x);
	if (rc) {
		if (hit)
			memset(hit, 0, n * sizeof *hit);
		return rc;
	}
	if (count)
		*count = x.changed;
	return 0;
}

static int sq_objects_mark_deleting(struct meta *m, const char *const *keys, size_t n,
				    bool *marked)
{
	return objects_each(m, ST_OBJECT_MARK_DELETING, "marking objects deleting", keys, n,
			    marked, NULL);
}

static int sq_objects_forget(struct meta *m, const char *const *keys, size_t n,
			     size_t *forgotten)
{
	return objects_each(m, ST_OBJECT_FORGET, "forgetting deleted objects", keys, n, NULL,
			    forgotten);
}

struct fence_txn {
	int64_t fence_ms;
	int64_t now; /* out */
};

static int gc_fence_raise_body(struct sq_conn *c, void *arg)
{
	struct fence_txn *x = arg;
	sqlite3_stmt *st = sq_stmt(c, ST_GC_FENCE_RAISE);
	sqlite3_bind_int64(st, 1, x->fence_ms);
	int rc = sq_exec_stmt(c, st, "raising the gc fence");
	if (rc)
		return rc;
	if (sqlite3_changes(c->db) != 1) {
		log_error("metadata store (%s): the gc_fence row is missing", c->role);
		return SL_EMETA;
	}
	st = sq_stmt(c, ST_GC_FENCE_GET);
	if (sqlite3_step(st) == SQLITE_ROW)
		x->now = sqlite3_column_int64(st, 0);
	else
		rc = sq_fail(c, "reading the gc fence");
	sqlite3_reset(st);
	return rc;
}

static int sq_gc_fence_raise(struct meta *m, int64_t fence_ms, int64_t *now_fence_ms)
{
	struct fence_txn x = { fence_ms, 0 };
	int rc = sq_txn(&sq_of(m)->loop, TXN_WRITE, gc_fence_raise_body, &x);
	if (!rc && now_fence_ms)
		*now_fence_ms = x.now;
	return rc;
}

static int sq_object_known(struct meta *m, const char *key, bool *known)
{
	struct sq_conn *c = &sq_of(m)->loop;
	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st = sq_stmt(c, ST_OBJECT_KNOWN);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	int step = sqlite3_step(st), rc = 0;
	if (step == SQLITE_ROW)
		*known = true;
	else if (step == SQLITE_DONE)
		*known = false;
	else
		rc = sq_fail(c, "looking an object up");
	sqlite3_reset(st);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* Hands each row of statement id (ordered by tid, the tid first) to row
 * with its topic in t (ordered by tid); rows of topics that are gone are
 * skipped. 0, SL_ENOMEM (from row) or SL_EMETA. */
static int topics_attach(struct sq_conn *c, enum stmt id, struct meta_topic *t, size_t n,
			 int (*row)(struct meta_topic *t, sqlite3_stmt *st), const char *what)
{
	sqlite3_stmt *st = sq_stmt(c, id);
	size_t i = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t tid = sqlite3_column_int64(st, 0);
		while (i < n && t[i].tid < tid)
			i++;
		if (i == n)
			break;
		if (t[i].tid == tid && row(&t[i], st) != 0) {
			sqlite3_reset(st);
			return SL_ENOMEM;
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		rc = sq_fail(c, what);
		sqlite3_reset(st);
		return rc;
	}
	sqlite3_reset(st);
	return 0;
}

static int config_row(struct meta_topic *t, sqlite3_stmt *st)
{
	if (t->config_count >= SL_CONFIGS_MAX)
		return 0;
	struct meta_config *cf = realloc(t->configs, (size_t)(t->config_count + 1) * sizeof *cf);
	if (!cf)
		return SL_ENOMEM;
	t->configs = cf;
	cf += t->config_count++;
	copy_text(cf->name, sizeof cf->name, st, 1);
	copy_text(cf->value, sizeof cf->value, st, 2);
	return 0;
}

/* A row this code cannot read is left out (logged). */
static int replicas_row(struct meta_topic *t, sqlite3_stmt *st)
{
	const char *text = (const char *)sqlite3_column_text(st, 2);
	if (text && meta_topic_replicas_put(t, sqlite3_column_int(st, 1), text) == SL_ENOMEM)
		return SL_ENOMEM;
	return 0;
}

struct topic_list_txn {
	struct meta_topic *t; /* out */
	size_t count;
};

static int topic_list_body(struct sq_conn *c, void *arg)
{
	struct topic_list_txn *x = arg;
	size_t cap = 0;
	meta_topics_free(x->t, x->count);
	x->t = NULL;
	x->count = 0;
	sqlite3_stmt *st = sq_stmt(c, ST_TOPIC_LIST);
	int step, rc = 0;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (array_grow(&x->t, &cap, x->count, sizeof *x->t, 16) != 0) {
			rc = SL_ENOMEM;
			break;
		}
		struct meta_topic *tp = &x->t[x->count++];
		memset(tp, 0, sizeof *tp);
		tp->tid = sqlite3_column_int64(st, 0);
		copy_text(tp->name, sizeof tp->name, st, 1);
		if (sqlite3_column_bytes(st, 2) == 16)
			memcpy(tp->uuid, sqlite3_column_blob(st, 2), 16);
		tp->partition_count = sqlite3_column_int(st, 3);
	}
	if (!rc && step != SQLITE_DONE)
		rc = sq_fail(c, "listing topics");
	sqlite3_reset(st);
	if (!rc)
		rc = topics_attach(c, ST_CONFIG_LIST, x->t, x->count, config_row,
				   "listing topic configs");
	return rc ? rc : topics_attach(c, ST_REPLICAS_LIST, x->t, x->count, replicas_row,
				       "listing replica assignments");
}

static int sq_topic_list(struct meta *m, struct meta_topic **out, size_t *n)
{
	struct topic_list_txn x = { NULL, 0 };
	*out = NULL;
	*n = 0;
	/* One read transaction, so topics and configs are one snapshot. */
	int rc = sq_txn(&sq_of(m)->loop, TXN_READ, topic_list_body, &x);
	if (rc) {
		meta_topics_free(x.t, x.count);
		return rc;
	}
	*out = x.t;
	*n = x.count;
	return 0;
}

struct set_partitions_txn {
	int64_t tid;
	int32_t new_count;
	const struct meta_replicas *replicas;
};

static int topic_set_partitions_body(struct sq_conn *c, void *arg)
{
	struct set_partitions_txn *x = arg;
	int32_t old_count;
	int rc = topic_partition_count(c, x->tid, &old_count);
	if (rc)
		return rc;
	if (x->new_count <= old_count || (x->replicas && x->replicas->first != old_count))
		return SL_EINVAL;
	rc = partitions_insert(c, x->tid, old_count, x->new_count);
	if (!rc)
		rc = replicas_insert(c, x->tid, x->replicas, x->new_count - old_count);
	if (rc)
		return rc;
	sqlite3_stmt *st = sq_stmt(c, ST_TOPIC_SET_COUNT);
	sqlite3_bind_int64(st, 1, x->tid);
	sqlite3_bind_int(st, 2, x->new_count);
	return sq_exec_stmt(c, st, "growing a topic");
}

static int sq_topic_set_partitions(struct meta *m, int64_t tid, int32_t new_count,
				   const struct meta_replicas *replicas)
{
	if (new_count < 1 || new_count > SL_PARTITIONS_PER_TOPIC_MAX ||
	    (replicas && (replicas->first >= new_count ||
			  meta_replicas_check(replicas, new_count - replicas->first))))
		return SL_EINVAL;
	struct set_partitions_txn x = { tid, new_count, replicas };
	return sq_txn(&sq_of(m)->admin, TXN_WRITE, topic_set_partitions_body, &x);
}

struct configs_set_txn {
	int64_t tid;
	const struct meta_config_change *changes;
	size_t n;
};

static int topic_configs_set_body(struct sq_conn *c, void *arg)
{
	struct configs_set_txn *x = arg;
	int32_t count;
	int rc = topic_partition_count(c, x->tid, &count); /* SL_ENOTFOUND: no such topic */
	for (size_t i = 0; !rc && i < x->n; i++)
		rc = config_set(c, x->tid, x->changes[i].name, x->changes[i].value);
	return rc;
}

static int sq_topic_configs_set(struct meta *m, int64_t tid,
				const struct meta_config_change *changes, size_t n)
{
	int rc = meta_configs_check(changes, n);
	if (rc)
		return rc;
	struct configs_set_txn x = { tid, changes, n };
	return sq_txn(&sq_of(m)->admin, TXN_WRITE, topic_configs_set_body, &x);
}

/* A partition's log start and high watermark, on c (its lock held):
 * SL_ENOTFOUND when it has no row (an unknown or deleted topic). */
/* A partition's row: log start, high watermark and, when first_unstable
 * is not NULL, the first offset of its earliest open transaction (-1:
 * none); when clean_offset is not NULL, the cleaner's checkpoint. */
/* The partition row's columns (those pointers that are not NULL). */
static int partition_read_row(struct sq_conn *c, int64_t tid, int32_t partition,
			      int64_t *log_start, int64_t *hwm, int64_t *first_unstable,
			      int64_t *clean_offset, int64_t *change_seq)
{
	sqlite3_stmt *st = sq_stmt(c, ST_PARTITION_GET);
	sqlite3_bind_int64(st, 1, tid);
	sqlite3_bind_int(st, 2, partition);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*log_start = sqlite3_column_int64(st, 0);
		*hwm = sqlite3_column_int64(st, 1);
		if (first_unstable)
			*first_unstable = sqlite3_column_int64(st, 2);
		if (clean_offset)
			*clean_offset = sqlite3_column_int64(st, 3);
		if (change_seq)
			*change_seq = sqlite3_column_int64(st, 4);
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? SL_ENOTFOUND : sq_fail(c, "reading a partition");
	}
	sqlite3_reset(st);
	return rc;
}

static int partition_read_full(struct sq_conn *c, int64_t tid, int32_t partition,
			       int64_t *log_start, int64_t *hwm, int64_t *first_unstable)
{
	return partition_read_row(c, tid, partition, log_start, hwm, first_unstable, NULL, NULL);
}

static int partition_read(struct sq_conn *c, int64_t tid, int32_t partition, int64_t *log_start,
			  int64_t *hwm)
{
	return partition_read_full(c, tid, partition, log_start, hwm, NULL);
}

static int sq_partition_get(struct meta *m, int64_t tid, int32_t partition,
			    struct meta_partition *out)
{
	struct sq_conn *c = &sq_of(m)->loop;
	int64_t first_unstable;
	pthread_mutex_lock(&c->lock);
	int rc = partition_read_row(c, tid, partition, &out->log_start_offset,
				    &out->high_watermark, &first_unstable, &out->clean_offset, NULL);
	pthread_mutex_unlock(&c->lock);
	if (!rc) {
		out->tid = tid;
		out->partition = partition;
		out->last_stable_offset = meta_lso(out->log_start_offset, out->high_watermark,
						   first_unstable);
	}
	return rc;
}

/* st's rows (ST_PARTITION_LIST's columns) into *out, *n; resets st. */
static int partitions_read(struct sq_conn *c, sqlite3_stmt *st, struct meta_partition **out,
			   size_t *n)
{
	struct meta_partition *p = NULL;
	size_t count = 0, cap = 0;
	int rc = 0, step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (array_grow(&p, &cap, count, sizeof *p, 64) != 0) {
			rc = SL_ENOMEM;
			break;
		}
		p[count].tid = sqlite3_column_int64(st, 0);
		p[count].partition = sqlite3_column_int(st, 1);
		p[count].log_start_offset = sqlite3_column_int64(st, 2);
		p[count].high_watermark = sqlite3_column_int64(st, 3);
		p[count].last_stable_offset = meta_lso(p[count].log_start_offset,
						       p[count].high_watermark,
						       sqlite3_column_int64(st, 4));
		count++;
	}
	if (!rc && step != SQLITE_DONE)
		rc = sq_fail(c, "listing partitions");
	sqlite3_reset(st);
	if (rc) {
		free(p);
		return rc;
	}
	*out = p;
	*n = count;
	return 0;
}

static int sq_partition_list(struct meta *m, struct meta_partition **out, size_t *n)
{
	struct sq_conn *c = &sq_of(m)->loop;
	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&c->lock);
	int rc = partitions_read(c, sq_stmt(c, ST_PARTITION_LIST), out, n);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static int sq_partition_set_log_start(struct meta *m, int64_t tid, int32_t partition,
				      int64_t log_start_offset)
{
	struct sq_conn *c = &sq_of(m)->loop;
	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st = sq_stmt(c, ST_PARTITION_SET_LOG_START);
	sqlite3_bind_int64(st, 1, tid);
	sqlite3_bind_int(st, 2, partition);
	sqlite3_bind_int64(st, 3, log_start_offset);
	int rc = sq_exec_stmt(c, st, "setting the log start offset");
	if (!rc && sqlite3_changes(c->db) == 0)
		rc = SL_ENOTFOUND;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* Where t's time and size limits put the log start, from `from` on
 * (inside the caller's transaction). */
static int trim_point(struct sq_conn *c, int64_t tid, int32_t partition, int64_t from,
		      const struct meta_trim *t, int64_t *point)
{
	*point = from;
	if (!meta_trim_needs_scan(t))
		return 0;
	int64_t live = 0;
	if (t->retention_bytes >= 0) {
		sqlite3_stmt *st = sq_stmt(c, ST_BATCHES_LIVE_BYTES);
		sqlite3_bind_int64(st, 1, tid);
		sqlite3_bind_int(st, 2, partition);
		sqlite3_bind_int64(st, 3, from);
		if (sqlite3_step(st) != SQLITE_ROW) {
			int err = sq_fail(c, "summing a partition's bytes");
			sqlite3_reset(st);
			return err;
		}
		live = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
	}
	struct meta_trim_scan scan;
	meta_trim_scan_init(&scan, t, from, live);
	sqlite3_stmt *st = sq_stmt(c, ST_BATCHES_TRIM_SCAN);
	sqlite3_bind_int64(st, 1, tid);
	sqlite3_bind_int(st, 2, partition);
	sqlite3_bind_int64(st, 3, from);
	int rc, err = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct meta_batch_row row = {
			.base_offset = sqlite3_column_int64(st, 0),
			.last_offset = sqlite3_column_int64(st, 1),
			.byte_offset = (uint64_t)sqlite3_column_int64(st, 2),
			.length = (uint32_t)sqlite3_column_int64(st, 3),
			.max_timestamp = sqlite3_column_int64(st, 4),
		};
		if (!meta_trim_scan_batches(&scan, &row, (const char *)sqlite3_column_text(st, 6),
					    sqlite3_column_int64(st, 5), from, &err))
			break;
	}
	if (err) {
		sqlite3_reset(st);
		return err;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		int err = sq_fail(c, "scanning a partition's batches");
		sqlite3_reset(st);
		return err;
	}
	sqlite3_reset(st);
	*point = scan.point;
	return 0;
}

/* Runs stmt (tid ?1, partition ?2, offset ?3) on c. */
static int trim_exec(struct sq_conn *c, enum stmt which, int64_t tid, int32_t partition,
		     int64_t offset, const char *what)
{
	sqlite3_stmt *st = sq_stmt(c, which);
	sqlite3_bind_int64(st, 1, tid);
	sqlite3_bind_int(st, 2, partition);
	sqlite3_bind_int64(st, 3, offset);
	if (which == ST_OBJECT_SUBTRACT_BELOW)
		sqlite3_bind_int64(st, 4, clock_wall_ms());
	return sq_exec_stmt(c, st, what);
}

/* 1 with *out set, 0 when there is none, or SL_EMETA. */
static int step_first_int64(struct sq_conn *c, sqlite3_stmt *st, int64_t *out, const char *what)
{
	int step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	int rc = step == SQLITE_ROW ? 1 : step == SQLITE_DONE ? 0 : sq_fail(c, what);
	sqlite3_reset(st);
	return rc;
}

/* The last offset of the (skip + 1)-th row below `below` (ST_BATCHES_CHUNK_END):
 * 1 with *last set, 0 when there are not that many rows, or SL_EMETA. */
static int chunk_end(struct sq_conn *c, int64_t tid, int32_t partition, int64_t below,
		     int64_t skip, int64_t *last)
{
	sqlite3_stmt *st = sq_stmt(c, ST_BATCHES_CHUNK_END);
	sqlite3_bind_int64(st, 1, tid);
	sqlite3_bind_int(st, 2, partition);
	sqlite3_bind_int64(st, 3, below);
	sqlite3_bind_int64(st, 4, skip);
	return step_first_int64(c, st, last, "finding rows to trim");
}

struct trim_chunk_txn {
	int64_t tid;
	int32_t partition;
	int64_t below;
	bool more; /* out */
};

static int trim_chunk_body(struct sq_conn *c, void *arg)
{
	struct trim_chunk_txn *x = arg;
	int64_t end = x->below;
	int rc = chunk_end(c, x->tid, x->partition, x->below, META_TRIM_CHUNK_ROWS - 1, &end);
	if (rc < 0)
		return rc;
	if (rc == 1)
		end++;
	rc = trim_exec(c, ST_OBJECT_SUBTRACT_BELOW, x->tid, x->partition, end,
		       "trimming a partition");
	if (!rc)
		rc = trim_exec(c, ST_BATCH_DELETE_BELOW, x->tid, x->partition, end,
			       "trimming a partition");
	if (!rc) /* aborted transactions whose markers went */
		rc = trim_exec(c, ST_ABORTED_TRIM, x->tid, x->partition, end,
			       "trimming a partition");
	x->more = end < x->below;
	return rc;
}

/* One transaction (c's lock held): the rows below `below`, at most
 * META_TRIM_CHUNK_ROWS of them, leave, and their objects' live bytes fall by
 * theirs. *more: rows below `below` are left. */
static int trim_chunk(struct sq_conn *c, int64_t tid, int32_t partition, int64_t below,
		      bool *more)
{
	int64_t last;
	*more = false;
	/* Nothing below the log start (the usual case): no write lock. */
	int rc = chunk_end(c, tid, partition, below, 0, &last);
	if (rc <= 0)
		return rc;
	struct trim_chunk_txn x = { tid, partition, below, false };
	rc = sq_txn_locked(c, TXN_WRITE, trim_chunk_body, &x);
	*more = x.more;
	return rc;
}

static int sq_partition_trim(struct meta *m, int64_t tid, int32_t partition,
			     const struct meta_trim *t, int64_t *log_start)
{
	struct sq_conn *c = &sq_of(m)->trim;
	pthread_mutex_lock(&c->lock);
	/* Where the limits put the log start: read outside any write lock
	 * (only trims move the log start, and they move it forward, so a
	 * point computed from a slightly old snapshot is still a valid one;
	 * commits only add rows above the high watermark). */
	int64_t start, hwm, first_unstable;
	int rc = partition_read_full(c, tid, partition, &start, &hwm, &first_unstable);
	if (!rc && t->producers_before_ms > 0)
		rc = trim_exec(c, ST_PSTATE_EXPIRE, tid, partition, t->producers_before_ms,
			       "expiring producers' state");
	if (rc)
		goto out;
	int64_t point = t->offset > start ? t->offset : start;
	if (point > hwm)
		point = hwm;
	int64_t asked = point;
	rc = trim_point(c, tid, partition, point, t, &point);
	if (rc)
		goto out;
	point = meta_trim_txn_cap(asked, point, first_unstable);
	if (t->limit >= 0 && point > t->limit)
		point = t->limit;
	if (point > start) {
		/* Never lowers the log start, never past the high watermark. */
		rc = trim_exec(c, ST_PARTITION_SET_LOG_START, tid, partition, point,
			       "moving the log start");
		if (rc)
			goto out;
	}
	/* No row now: the topic was deleted meanwhile (SL_ENOTFOUND). */
	rc = partition_read(c, tid, partition, log_start, &hwm);
	if (rc)
		goto out;
	/* Then the rows below it, a chunk per transaction (also rows an
	 * earlier trim left when it stopped half-way). The log start stands
	 * whatever happens here: rows left below it are the next trim's. */
	int chunk_rc = 0;
	for (bool more = true, first = true; !chunk_rc && more; first = false) {
		if (!first) {
			pthread_mutex_unlock(&c->lock);
			usleep(META_TRIM_CHUNK_PAUSE_US);
			pthread_mutex_lock(&c->lock);
		}
		chunk_rc = trim_chunk(c, tid, partition, *log_start, &more);
	}
	if (chunk_rc)
		log_warn("metadata store: rows below the log start of partition %d of topic %"
			 PRId64 " stay for the next trim", partition, tid);
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* ---- purging a deleted topic's rows ---- */

struct partition_drop_txn {
	int64_t tid;
	int32_t partition;
};

/* The partition's row goes in the same transaction as the check that no
 * batch row is left (a guard: commits find no partition once the topic
 * is gone, so none can add rows). */
static int partition_drop_body(struct sq_conn *c, void *arg)
{
	struct partition_drop_txn *x = arg;
	int64_t last;
	int rc = chunk_end(c, x->tid, x->partition, INT64_MAX, 0, &last);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	sqlite3_stmt *st = sq_stmt(c, ST_PARTITION_DROP);
	sqlite3_bind_int64(st, 1, x->tid);
	sqlite3_bind_int(st, 2, x->partition);
	return sq_exec_stmt(c, st, "dropping a deleted topic's partition");
}

/* Every batch row of a deleted topic (tid), partition by partition, a
 * chunk of META_TRIM_CHUNK_ROWS per transaction with a pause between
 * (c's lock released meanwhile), their objects' live bytes falling by
 * theirs (trim_chunk below any offset); each partition's row goes once
 * its rows are gone. c's lock held. */
static int purge_topic_rows(struct sq_conn *c, int64_t tid)
{
	for (;;) {
		sqlite3_stmt *st = sq_stmt(c, ST_PARTITION_OF_TOPIC);
		sqlite3_bind_int64(st, 1, tid);
		int64_t partition;
		int rc = step_first_int64(c, st, &partition, "finding a deleted topic's partitions");
		if (rc <= 0)
			return rc;
		for (bool more = true; more;) {
			rc = trim_chunk(c, tid, (int32_t)partition, INT64_MAX, &more);
			if (rc)
				return rc;
			pthread_mutex_unlock(&c->lock);
			usleep(META_TRIM_CHUNK_PAUSE_US);
			pthread_mutex_lock(&c->lock);
		}
		struct partition_drop_txn x = { tid, (int32_t)partition };
		rc = sq_txn_locked(c, TXN_WRITE, partition_drop_body, &x);
		if (rc)
			return rc;
	}
}

/* meta.h: the rows of one deleted topic, on the maintenance connection. */
static int sq_purge_deleted(struct meta *m, bool *more)
{
	struct sq_conn *c = &sq_of(m)->trim;
	*more = false;
	pthread_mutex_lock(&c->lock);
	int64_t tid;
	int rc = step_first_int64(c, sq_stmt(c, ST_TOPIC_PURGE_NEXT), &tid,
				  "finding deleted topics' rows");
	if (rc == 1) {
		log_info("metadata store: purging the rows of deleted topic %" PRId64, tid);
		rc = purge_topic_rows(c, tid);
		*more = rc == 0;
	}
	pthread_mutex_unlock(&c->lock);
	return rc < 0 ? rc : 0;
}

/* commit_one visits batches grouped by partition, each partition's
 * batches in their given order (so one producer's order is kept). */
static int cmp_batch_index(const void *a, const void *b, void *arg)
{
	const struct meta_commit_batch *base = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	const struct meta_commit_batch *x = &base[i], *y = &base[j];
	if (x->tid != y->tid)
		return x->tid < y->tid ? -1 : 1;
	if (x->partition != y->partition)
		return x->partition < y->partition ? -1 : 1;
	return i < j ? -1 : i > j;
}

static bool sorted_by_partition(const struct meta_commit_batch *b, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (b[i].tid < b[i - 1].tid ||
		    (b[i].tid == b[i - 1].tid && b[i].partition < b[i - 1].partition))
			return false;
	return true;
}

/* stamped: the row's change_seq is the current stamp already (see
 * ST_PARTITION_SET_HWM_STAMPED). */
static int hwm_write(struct sq_conn *c, int64_t tid, int32_t partition, int64_t hwm,
		     int64_t first_unstable, bool stamped)
{
	sqlite3_stmt *st = sq_stmt(c, stamped ? ST_PARTITION_SET_HWM_STAMPED : ST_PARTITION_SET_HWM);
	sqlite3_bind_int64(st, 1, tid);
	sqlite3_bind_int(st, 2, partition);
	sqlite3_bind_int64(st, 3, hwm);
	sqlite3_bind_int64(st, 4, first_unstable);
	return sq_exec_stmt(c, st, "advancing a high watermark");
}

/* The row of r's batches (one, or several: meta_int.h), then r closes.
 * The producer columns say a lone batch's; a row of several has -1 there
 * (producer_state holds the sequences). */
static int row_insert(struct sq_conn *c, int64_t oid, struct meta_run *r)
{
	if (!r->open)
		return 0;
	const struct meta_commit_batch *f = &r->first;
	bool alone = r->count == 1;
	const char *spans = meta_run_spans(r);
	sqlite3_stmt *st = sq_stmt(c, ST_BATCH_INSERT);
	sqlite3_bind_int64(st, 1, r->tid);
	sqlite3_bind_int(st, 2, r->partition);
	sqlite3_bind_int64(st, 3, r->row.base_offset);
	sqlite3_bind_int64(st, 4, r->row.last_offset);
	sqlite3_bind_int64(st, 5, oid);
	sqlite3_bind_int64(st, 6, (int64_t)r->row.byte_offset);
	sqlite3_bind_int64(st, 7, r->row.length);
	sqlite3_bind_int(st, 8, r->row.record_count);
	sqlite3_bind_int64(st, 9, r->row.max_timestamp);
	sqlite3_bind_int64(st, 10, alone ? f->producer_id : -1);
	sqlite3_bind_int(st, 11, alone ? f->producer_epoch : -1);
	sqlite3_bind_int(st, 12, alone ? f->base_sequence : -1);
	sqlite3_bind_int(st, 13, alone ? f->last_sequence : -1);
	if (spans)
		sqlite3_bind_text(st, 14, spans, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 14);
	sqlite3_bind_int(st, 15, meta_batch_attributes(f));
	meta_run_close(r);
	return sq_exec_stmt(c, st, "inserting a batch row");
}

/* A producer's state, read on its first batch in the transaction (the
 * write lock is held: no other commit changes it meanwhile). */
static int pstate_load(struct sq_conn *c, struct meta_pstate *st)
{
	if (st->loaded)
		return 0;
	sqlite3_stmt *q = sq_stmt(c, ST_PSTATE_GET);
	sqlite3_bind_int64(q, 1, st->tid);
	sqlite3_bind_int(q, 2, st->partition);
	sqlite3_bind_int64(q, 3, st->producer_id);
	int step = sqlite3_step(q), rc = 0;
	if (step == SQLITE_ROW)
		rc = meta_pstate_parse(st, sqlite3_column_int64(q, 0),
				       (const char *)sqlite3_column_text(q, 1));
	else if (step == SQLITE_DONE)
		st->loaded = true;
	else
		rc = sq_fail(c, "reading a producer's state");
	sqlite3_reset(q);
	return rc;
}

/* The states the transaction changed, written back at its end. */
static int pstates_store(struct sq_conn *c, const struct meta_pstates *ps)
{
	int64_t now = clock_wall_ms();
	for (size_t i = 0; i < ps->n; i++) {
		const struct meta_pstate *st = &ps->v[i];
		if (!st->dirty)
			continue;
		char text[META_PSTATE_TEXT_BYTES];
		meta_pstate_format(st, text);
		sqlite3_stmt *q = sq_stmt(c, ST_PSTATE_PUT);
		sqlite3_bind_int64(q, 1, st->tid);
		sqlite3_bind_int(q, 2, st->partition);
		sqlite3_bind_int64(q, 3, st->producer_id);
		sqlite3_bind_int(q, 4, st->epoch);
		sqlite3_bind_text(q, 5, text, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(q, 6, now);
		int rc = sq_exec_stmt(c, q, "writing a producer's state");
		if (rc)
			return rc;
	}
	return 0;
}

/* An idempotent batch against its producer's state: b->result and, for a
 * duplicate, b->base_offset. */
static int pstate_judge(struct sq_conn *c, struct meta_pstates *ps, struct meta_commit_batch *b)
{
	if (!meta_batch_idempotent(b))
		return 0;
	struct meta_pstate *st = meta_pstates_find(ps, b->tid, b->partition, b->producer_id);
	SL_ASSERT(st, "producer %" PRId64 " not collected", b->producer_id);
	int rc = pstate_load(c, st);
	if (!rc)
		b->result = meta_pstate_check(st, b, &b->base_offset);
	return rc;
}

/* ---- transactions in the commit (docs/transactions.md, sections 3-4) ---- */

/* Binds text ?1 and int64s ?2.. of st: the common shape of the txn
 * statements. */
static sqlite3_stmt *txn_stmt(struct sq_conn *c, enum stmt s, const char *text, int n, ...)
{
	sqlite3_stmt *st = sq_stmt(c, s);
	int i = 1;
	if (text)
		sqlite3_bind_text(st, i++, text, -1, SQLITE_STATIC);
	va_list ap;
	va_start(ap, n);
	for (int k = 0; k < n; k++)
		sqlite3_bind_int64(st, i++, va_arg(ap, int64_t));
	va_end(ap);
	return st;
}

/* Steps a statement that yields at most one row: 1 (a row: its first
 * column in *v when v), 0 (none) or an error. */
static int txn_step_one(struct sq_conn *c, sqlite3_stmt *st, int64_t *v, const char *what)
{
	int step = sqlite3_step(st), rc;
	if (step == SQLITE_ROW) {
		if (v)
			*v = sqlite3_column_int64(st, 0);
		rc = 1;
	} else {
		rc = step == SQLITE_DONE ? 0 : sq_fail(c, what);
	}
	sqlite3_reset(st);
	return rc;
}

static int txn_head_read(struct sq_conn *c, const char *id, struct meta_txn_head *h)
{
	sqlite3_stmt *st = txn_stmt(c, ST_TXN_HEAD, id, 0);
	int step = sqlite3_step(st), rc = 0;
	memset(h, 0, sizeof *h);
	if (step == SQLITE_ROW) {
		h->found = true;
		h->producer_id = sqlite3_column_int64(st, 0);
		h->producer_epoch = (int16_t)sqlite3_column_int(st, 1);
		h->state = sqlite3_column_int(st, 2);
		h->txn_seq = sqlite3_column_int64(st, 3);
	} else if (step != SQLITE_DONE) {
		rc = sq_fail(c, "reading a transaction");
	}
	sqlite3_reset(st);
	return rc;
}

/* The store's check of a batch against the transactions (b->result). */
static int txn_judge(struct sq_conn *c, struct meta_commit_batch *b, int64_t first_unstable)
{
	struct meta_txn_head h;
	int rc;
	switch (b->kind) {
	case META_BATCH_DATA:
		/* Only a partition with an open transaction can refuse one. */
		if (b->producer_id < 0 || first_unstable < 0)
			return 0;
		rc = txn_step_one(c, txn_stmt(c, ST_PTXN_OPEN, NULL, 3, b->tid, (int64_t)b->partition,
					      b->producer_id), NULL, "reading open transactions");
		if (rc > 0)
			b->result = META_BATCH_TXN_OPEN;
		return rc < 0 ? rc : 0;
	case META_BATCH_TXN_DATA:
	case META_BATCH_MARKER:
		rc = txn_head_read(c, b->transactional_id, &h);
		if (!rc)
			rc = txn_step_one(c, txn_stmt(c, ST_TXN_PART_GET, b->transactional_id, 2, b->tid,
						      (int64_t)b->partition),
					  NULL, "reading a transaction's partitions");
		if (rc < 0)
			return rc;
		if (b->kind == META_BATCH_TXN_DATA)
			b->result = meta_txn_data_check(&h, rc > 0, b);
		else if (!meta_marker_applies(&h, rc > 0, b))
			b->result = META_BATCH_MARKER_REFUSED;
		return 0;
	}
	return SL_EINVAL;
}

static int txn_exec(struct sq_conn *c, sqlite3_stmt *st, const char *what)
{
	return sq_exec_stmt(c, st, what);
}

/* The groups of a transaction whose markers are all in: COMMIT moves its
 * pending offsets to group_offsets, ABORT drops them. */
static int txn_settle_groups(struct sq_conn *c, const char *id, bool commit)
{
	int rc = 0;
	if (commit)
		rc = txn_exec(c, txn_stmt(c, ST_TXN_OFFSETS_SETTLE, id, 0), "committing txn offsets");
	if (!rc)
		rc = txn_exec(c, txn_stmt(c, ST_TXN_OFFSETS_DROP, id, 0), "dropping txn offsets");
	if (!rc)
		rc = txn_exec(c, txn_stmt(c, ST_TXN_GROUPS_CLEAR, id, 0), "dropping txn groups");
	return rc;
}

/* A marker's partition is done: its txn_partitions row goes, and with
 * the last one the transaction's groups are settled. */
static int txn_partition_done(struct sq_conn *c, const struct meta_commit_batch *b)
{
	const char *id = b->transactional_id;
	int rc = txn_exec(c, txn_stmt(c, ST_TXN_PART_DELETE, id, 2, b->tid, (int64_t)b->partition),
			  "dropping a transaction's partition");
	if (!rc)
		rc = txn_step_one(c, txn_stmt(c, ST_TXN_PART_LEFT, id, 0), NULL,
				  "reading a transaction's partitions");
	if (rc == 0)
		rc = txn_settle_groups(c, id, b->marker_commit);
	return rc < 0 ? rc : 0;
}

/* An appended batch's effect on the partition's transactions: TXN_DATA
 * opens one (at its base offset) unless open; a MARKER closes the id's
 * (each producer id's open one: an ABORT leaves an aborted_txns row for
 * each, a COMMIT for an older producer id's), and the first unstable offset
 * follows. */
static int txn_appended(struct sq_conn *c, struct meta_commit_batch *b, int64_t *first_unstable)
{
	if (b->kind == META_BATCH_TXN_DATA) {
		sqlite3_stmt *st = txn_stmt(c, ST_PTXN_INSERT, NULL, 5, b->tid, (int64_t)b->partition,
					    b->producer_id, (int64_t)b->producer_epoch, b->base_offset);
		sqlite3_bind_text(st, 6, b->transactional_id, -1, SQLITE_STATIC);
		int rc = txn_exec(c, st, "opening a transaction in a partition");
		if (!rc && *first_unstable < 0)
			*first_unstable = b->base_offset;
		return rc;
	}
	if (b->kind != META_BATCH_MARKER)
		return 0;
	/* The id's open rows here, one per producer id (meta_marker_aborts),
	 * read whole before the aborted rows are written. */
	struct meta_aborted_txn *open = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st = txn_stmt(c, ST_PTXN_TAKE, NULL, 2, b->tid, (int64_t)b->partition);
	sqlite3_bind_text(st, 3, b->transactional_id, -1, SQLITE_STATIC);
	int step, rc = 0;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (array_grow(&open, &cap, n, sizeof *open, 2) != 0) {
			rc = SL_ENOMEM;
			break;
		}
		open[n++] = (struct meta_aborted_txn){ sqlite3_column_int64(st, 0),
						       sqlite3_column_int64(st, 1), b->base_offset };
	}
	sqlite3_reset(st);
	if (!rc && step != SQLITE_DONE)
		rc = sq_fail(c, "closing a transaction in a partition");
	for (size_t i = 0; !rc && i < n; i++) {
		if (!meta_marker_aborts(b, open[i].producer_id))
			continue;
		int64_t seq = 0;
		rc = txn_step_one(c, sq_stmt(c, ST_ABORTED_SEQ), &seq, "numbering an abort");
		if (rc > 0)
			rc = txn_exec(c, txn_stmt(c, ST_ABORTED_INSERT, NULL, 6, b->tid,
						  (int64_t)b->partition, b->base_offset,
						  open[i].first_offset, open[i].producer_id, seq),
				      "recording an abort");
		else if (rc == 0)
			rc = sq_fail(c, "numbering an abort");
		if (!rc)
			meta_marker_aborted_note(b, open[i]);
	}
	free(open);
	if (!rc && n > 0)
		rc = txn_step_one(c, txn_stmt(c, ST_PTXN_FIRST, NULL, 2, b->tid, (int64_t)b->partition),
				  first_unstable, "reading open transactions");
	if (rc >= 0)
		rc = txn_exec(c, txn_stmt(c, ST_PSTATE_MARKER, NULL, 6, b->tid, (int64_t)b->partition,
					  b->producer_id, (int64_t)b->producer_epoch, clock_wall_ms(),
					  (int64_t)b->coordinator_epoch),
			      "recording a marker in its producer's state");
	if (rc >= 0)
		rc = txn_partition_done(c, b);
	return rc < 0 ? rc : 0;
}

/* One object's rows, inside the caller's transaction: the object row
 * (all its bytes live; corrected at the end if some batch was not
 * appended), then per run of one partition its HWM read once, offsets
 * assigned (to the batches their producers' states accept), the HWM
 * written back once. stamp: the change_seq a partition row written now
 * gets (CHANGE_SEQ_NEXT, the same all through the transaction). */
static int commit_one(struct sq_conn *c, struct meta_commit_obj *o, struct meta_pstates *ps,
		      int64_t stamp)
{
	struct meta_commit_batch *batches = o->batches;
	size_t n = o->n, *order = NULL;
	struct meta_run run = { 0 };
	/* The write path sorts by partition already; only an unsorted caller
	 * pays for the index sort. */
	if (!sorted_by_partition(batches, n)) {
		order = malloc(n * sizeof *order);
		if (!order)
			return SL_ENOMEM;
		for (size_t i = 0; i < n; i++)
			order[i] = i;
		qsort_r(order, n, sizeof *order, cmp_batch_index, batches);
	}
	int64_t all_bytes = 0, live_bytes = 0;
	for (size_t i = 0; i < n; i++)
		all_bytes += batches[i].length;
	sqlite3_stmt *st = sq_stmt(c, ST_OBJECT_INSERT_LIVE);
	sqlite3_bind_text(st, 1, o->key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)o->size);
	sqlite3_bind_int64(st, 3, clock_wall_ms());
	sqlite3_bind_int64(st, 4, all_bytes);
	int rc = sq_exec_stmt(c, st, "inserting an object");
	if (rc)
		goto out;
	int64_t oid = sqlite3_last_insert_rowid(c->db);
	size_t k = 0;
	while (k < n) {
		struct meta_commit_batch *first = &batches[order ? order[k] : k];
		size_t end = k;
		while (end < n) {
			const struct meta_commit_batch *b = &batches[order ? order[end] : end];
			if (b->tid != first->tid || b->partition != first->partition)
				break;
			end++;
		}
		int64_t log_start, hwm, first_unstable, change_seq;
		rc = partition_read_row(c, first->tid, first->partition, &log_start, &hwm,
					&first_unstable, NULL, &change_seq);
		if (rc == SL_ENOTFOUND) { /* deleted meanwhile: base_offset stays -1 */
			/* Its markers are owed no more. */
			rc = 0;
			for (size_t j = k; j < end; j++) {
				struct meta_commit_batch *b = &batches[order ? order[j] : j];
				if (b->kind != META_BATCH_MARKER)
					continue;
				b->result = META_BATCH_APPENDED;
				rc = txn_judge(c, b, -1);
				if (!rc && b->result == META_BATCH_APPENDED)
					rc = txn_partition_done(c, b);
				b->result = META_BATCH_NO_PARTITION;
				if (rc)
					goto out;
			}
			k = end;
			continue;
		}
		if (rc)
			goto out;
		for (size_t j = k; j < end; j++) {
			struct meta_commit_batch *b = &batches[order ? order[j] : j];
			b->result = META_BATCH_APPENDED;
			rc = txn_judge(c, b, first_unstable);
			if (!rc && b->result == META_BATCH_APPENDED)
				rc = pstate_judge(c, ps, b);
			if (rc)
				goto out;
			if (b->result != META_BATCH_APPENDED)
				continue; /* its bytes stay in the object, dead */
			b->base_offset = hwm;
			/* Adjacent batches share a row (meta_int.h). */
			if (!meta_run_continues(&run, b))
				rc = row_insert(c, oid, &run);
			if (!rc)
				rc = meta_run_add(&run, b);
			if (rc)
				goto out;
			if (meta_batch_idempotent(b))
				meta_pstate_append(meta_pstates_find(ps, b->tid, b->partition,
								     b->producer_id), b);
			rc = txn_appended(c, b, &first_unstable);
			if (rc)
				goto out;
			hwm += (int64_t)b->last_offset_delta + 1;
			b->last_stable_offset = meta_lso(log_start, hwm, first_unstable); /* as of its end */
			live_bytes += b->length;
		}
		rc = row_insert(c, oid, &run);
		if (!rc)
			rc = hwm_write(c, first->tid, first->partition, hwm, first_unstable,
				       change_seq == stamp);
		if (rc)
			goto out;
		for (size_t j = k; j < end; j++) {
			struct meta_commit_batch *b = &batches[order ? order[j] : j];
			if (b->result != META_BATCH_APPENDED)
				b->last_stable_offset = meta_lso(log_start, hwm, first_unstable);
		}
		k = end;
	}
	if (live_bytes != all_bytes) {
		st = sq_stmt(c, ST_OBJECT_SET_LIVE);
		sqlite3_bind_int64(st, 1, oid);
		sqlite3_bind_int64(st, 2, live_bytes);
		rc = sq_exec_stmt(c, st, "setting an object's live bytes");
	}
out:
	meta_run_free(&run);
	free(order);
	return rc;
}

/* Inside the commit transaction: refuse objects sealed before the
 * collector's fence (it may have deleted them as orphans already). The
 * transaction serialises with gc_fence_raise, so a commit is either
 * visible to the collector's known-key check or refused here. Keys not
 * in the writer's format carry no seal time and are not checked (gc
 * judges those by store mtime). */
static int fence_check_stamp(struct sq_conn *c, const struct meta_commit_obj *objs,
			     size_t count, int64_t *stamp)
{
	sqlite3_stmt *st = sq_stmt(c, ST_GC_FENCE_GET);
	int step = sqlite3_step(st);
	int64_t fence = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	if (stamp)
		*stamp = step == SQLITE_ROW ? sqlite3_column_int64(st, 1) : -1;
	sqlite3_reset(st);
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		return sq_fail(c, "reading the gc fence");
	return meta_commit_fence_check(objs, count, fence);
}

static int commit_fence_check(struct sq_conn *c, const struct meta_commit_obj *objs,
			      size_t count)
{
	return fence_check_stamp(c, objs, count, NULL);
}

struct commit_txn {
	struct meta_commit_obj *objs;
	size_t count;
	struct meta_pstates pstates;
};

static int commit_objects_body(struct sq_conn *c, void *arg)
{
	struct commit_txn *x = arg;
	for (size_t i = 0; i < x->pstates.n; i++) /* a rerun starts afresh */
		x->pstates.v[i] = (struct meta_pstate){ .tid = x->pstates.v[i].tid,
			.partition = x->pstates.v[i].partition,
			.producer_id = x->pstates.v[i].producer_id, .epoch = -1 };
	int64_t stamp;
	int rc = fence_check_stamp(c, x->objs, x->count, &stamp);
	for (size_t k = 0; !rc && k < x->count; k++)
		rc = commit_one(c, &x->objs[k], &x->pstates, stamp);
	if (!rc)
		rc = pstates_store(c, &x->pstates);
	return rc;
}

/* Several objects, in seal order, in one transaction (group commit): all
 * are committed or none. */
static int sq_commit_objects(struct meta *m, struct meta_commit_obj *objs, size_t count)
{
	int rc = meta_commit_check(objs, count);
	if (rc)
		return rc;
	struct commit_txn x = { objs, count, { NULL, 0 } };
	rc = meta_pstates_collect(objs, count, &x.pstates);
	if (!rc)
		rc = sq_txn(&sq_of(m)->commit, TXN_WRITE, commit_objects_body, &x);
	free(x.pstates.v);
	if (rc) /* nothing was committed: no batch has an offset */
		meta_commit_offsets_clear(objs, count);
	return rc < 0 && rc != SL_ENOMEM ? SL_EMETA : rc;
}

/* ---- the merge swap (meta.h: meta_merge_swap) ---- */

struct merge_txn {
	const struct meta_merge *mg;
	struct meta_merge_stored *stored; /* per row */
	struct sq_conn *c;
	int64_t oid;       /* the merged object's */
};

/* The rows in the merged range as they stand must be exactly the rows
 * the merge read (one for one, nothing between them): x->stored gets
 * what the swap keeps of each, *created_ms the oldest of their objects'.
 * SL_ENOTFOUND otherwise. */
static int merge_rows_check(struct sq_conn *c, struct merge_txn *x, int64_t *created_ms)
{
	const struct meta_merge *mg = x->mg;
	sqlite3_stmt *st = sq_stmt(c, ST_MERGE_ROWS_GET);
	sqlite3_bind_int64(st, 1, mg->tid);
	sqlite3_bind_int(st, 2, mg->partition);
	sqlite3_bind_int64(st, 3, mg->rows[0].last_offset);
	sqlite3_bind_int64(st, 4, mg->rows[mg->n - 1].last_offset);
	size_t i = 0;
	int step, rc = 0;
	while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
		const struct meta_merge_row *r = &mg->rows[i];
		const char *key = (const char *)sqlite3_column_text(st, 4);
		if (i == mg->n || sqlite3_column_int64(st, 0) != r->base_offset ||
		    sqlite3_column_int64(st, 1) != r->last_offset ||
		    (uint64_t)sqlite3_column_int64(st, 2) != r->byte_offset ||
		    sqlite3_column_int64(st, 3) != r->length || !key || strcmp(key, r->object_key)) {
			rc = SL_ENOTFOUND;
			break;
		}
		struct meta_merge_stored *stored = &x->stored[i++];
		int64_t made = sqlite3_column_int64(st, 5);
		if (made < *created_ms)
			*created_ms = made;
		const char *spans = (const char *)sqlite3_column_text(st, 6);
		free(stored->spans);
		stored->spans = spans ? strdup(spans) : NULL;
		stored->record_count = sqlite3_column_int(st, 7);
		stored->max_timestamp = sqlite3_column_int64(st, 8);
		stored->attributes = (int16_t)sqlite3_column_int(st, 9);
		if (spans && !stored->spans)
			rc = SL_ENOMEM;
	}
	if (!rc && step != SQLITE_DONE)
		rc = sq_fail(c, "reading the batch rows to merge");
	else if (!rc && i != mg->n)
		rc = SL_ENOTFOUND;
	sqlite3_reset(st);
	return rc;
}

/* One of the range statements (ST_MERGE_OBJECTS_SUBTRACT,
 * ST_MERGE_ROWS_DELETE) over the merged rows. */
static int merge_range_exec(struct sq_conn *c, const struct meta_merge *mg, enum stmt stmt,
			    const char *what)
{
	sqlite3_stmt *st = sq_stmt(c, stmt);
	sqlite3_bind_int64(st, 1, mg->tid);
	sqlite3_bind_int(st, 2, mg->partition);
	sqlite3_bind_int64(st, 3, mg->rows[0].last_offset);
	sqlite3_bind_int64(st, 4, mg->rows[mg->n - 1].last_offset);
	if (stmt == ST_MERGE_OBJECTS_SUBTRACT)
		sqlite3_bind_int64(st, 5, clock_wall_ms());
	return sq_exec_stmt(c, st, what);
}

static int merge_row_emit(void *arg, struct meta_run *r)
{
	struct merge_txn *x = arg;
	return row_insert(x->c, x->oid, r);
}

static int merge_swap_body(struct sq_conn *c, void *arg)
{
	struct merge_txn *x = arg;
	const struct meta_merge *mg = x->mg;
	struct meta_commit_obj o = { .key = mg->key, .size = mg->size };
	/* A later chunk's object has its row: the orphan sweep leaves it. */
	int rc = mg->continues ? 0 : commit_fence_check(c, &o, 1);
	if (rc)
		return rc;
	int64_t log_start, hwm;
	rc = partition_read(c, mg->tid, mg->partition, &log_start, &hwm);
	if (rc)
		return rc;
	if (mg->rows[0].last_offset < log_start)
		return SL_ENOTFOUND; /* a trim is deleting these rows */
	int64_t created_ms = INT64_MAX, live = 0;
	rc = merge_rows_check(c, x, &created_ms);
	if (rc)
		return rc;
	for (size_t i = 0; i < mg->n; i++)
		live += mg->rows[i].length;
	sqlite3_stmt *st;
	if (mg->batches) {
		/* A cleaning pass: the object holds what the cleaner kept. */
		live = 0;
		for (size_t i = 0; i < mg->nb; i++)
			live += mg->batches[i].length;
		st = sq_stmt(c, ST_CLEAN_OFFSET_RAISE);
		sqlite3_bind_int64(st, 1, mg->tid);
		sqlite3_bind_int(st, 2, mg->partition);
		sqlite3_bind_int64(st, 3, mg->clean_offset);
		rc = sq_exec_stmt(c, st, "raising the cleaner's checkpoint");
		for (size_t i = 0; !rc && i < mg->n_aborted_gone; i++) {
			st = sq_stmt(c, ST_ABORTED_GONE);
			sqlite3_bind_int64(st, 1, mg->tid);
			sqlite3_bind_int(st, 2, mg->partition);
			sqlite3_bind_int64(st, 3, mg->aborted_gone[i]);
			rc = sq_exec_stmt(c, st, "deleting a cleaned aborted transaction");
		}
		if (rc)
			return rc;
	}
	x->c = c;
	if (mg->continues) {
		st = sq_stmt(c, ST_MERGE_OBJECT_FIND);
		sqlite3_bind_text(st, 1, mg->key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (int64_t)mg->size);
		rc = txn_step_one(c, st, &x->oid, "reading a merged object");
		if (rc <= 0)
			return rc ? rc : SL_ENOTFOUND;
	} else {
		st = sq_stmt(c, ST_OBJECT_INSERT);
		sqlite3_bind_text(st, 1, mg->key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (int64_t)mg->size);
		sqlite3_bind_int64(st, 3, created_ms);
		rc = sq_exec_stmt(c, st, "inserting a merged object");
		if (rc)
			return rc;
		x->oid = sqlite3_last_insert_rowid(c->db);
	}
	rc = merge_range_exec(c, mg, ST_MERGE_OBJECTS_SUBTRACT, "subtracting merged bytes");
	if (!rc)
		rc = merge_range_exec(c, mg, ST_MERGE_ROWS_DELETE, "deleting merged batch rows");
	if (!rc)
		rc = meta_merge_rows(mg, x->stored, merge_row_emit, x);
	if (rc)
		return rc;
	if (mg->continues) {
		st = sq_stmt(c, ST_MERGE_OBJECT_ADD);
		sqlite3_bind_int64(st, 3, created_ms);
	} else {
		st = sq_stmt(c, ST_OBJECT_SET_LIVE);
	}
	sqlite3_bind_int64(st, 1, x->oid);
	sqlite3_bind_int64(st, 2, live);
	return sq_exec_stmt(c, st, "setting a merged object's live bytes");
}

static int sq_merge_swap(struct meta *m, const struct meta_merge *mg)
{
	int rc = meta_merge_check(mg);
	if (rc)
		return rc;
	struct merge_txn x = { mg, calloc(mg->n, sizeof *x.stored), NULL, 0 };
	rc = x.stored ? sq_txn(&sq_of(m)->trim, TXN_WRITE, merge_swap_body, &x) : SL_ENOMEM;
	for (size_t i = 0; x.stored && i < mg->n; i++)
		free(x.stored[i].spans);
	free(x.stored);
	return rc < 0 && rc != SL_ENOMEM && rc != SL_ENOTFOUND ? SL_EMETA : rc;
}

static void batch_row_read(sqlite3_stmt *st, void *out, size_t i)
{
	struct meta_batch_row *r = (struct meta_batch_row *)out + i;
	r->base_offset = sqlite3_column_int64(st, 0);
	r->last_offset = sqlite3_column_int64(st, 1);
	copy_text(r->object_key, sizeof r->object_key, st, 2);
	r->byte_offset = (uint64_t)sqlite3_column_int64(st, 3);
	r->length = (uint32_t)sqlite3_column_int64(st, 4);
	r->record_count = sqlite3_column_int(st, 5);
	r->max_timestamp = sqlite3_column_int64(st, 6);
}

/* Steps st (a query of BATCH_COLUMNS rows, then the object's size and
 * the row's attributes when sized) and expands each row into the batches it holds with last
 * offset >= from, into rows[*n, cap). */
static int batch_rows_expand(struct sq_conn *c, sqlite3_stmt *st, int64_t from,
			     struct meta_batch_row *rows, size_t cap, size_t *n, bool sized,
			     const char *what)
{
	int rc = 0, step = SQLITE_DONE;
	while (*n < cap && (step = sqlite3_step(st)) == SQLITE_ROW) {
		struct meta_batch_row row;
		batch_row_read(st, &row, 0);
		row.object_size = sized ? (uint64_t)sqlite3_column_int64(st, 8) : 0;
		row.attributes = sized ? (int16_t)sqlite3_column_int(st, 9) : 0;
		int got = meta_row_expand(&row, (const char *)sqlite3_column_text(st, 7), from,
					  rows + *n, cap - *n);
		if (got < 0) {
			rc = got;
			break;
		}
		*n += (size_t)got;
	}
	if (!rc && *n < cap && step != SQLITE_DONE)
		rc = sq_fail(c, what);
	sqlite3_reset(st);
	return rc;
}

static int sq_batches_from(struct meta *m, int64_t tid, int32_t partition, int64_t offset,
			   size_t max_rows, struct meta_batch_row *rows, size_t *n)
{
	struct sq_conn *c = &sq_of(m)->read;
	*n = 0;
	if (max_rows == 0)
		return 0;
	if (max_rows > INT32_MAX)
		max_rows = INT32_MAX;
	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st = sq_stmt(c, ST_BATCHES_FROM);
	sqlite3_bind_int64(st, 1, tid);
	sqlite3_bind_int(st, 2, partition);
	sqlite3_bind_int64(st, 3, offset);
	sqlite3_bind_int64(st, 4, (int64_t)max_rows);
	int rc = batch_rows_expand(c, st, offset, rows, max_rows, n, false, "reading batches");
	pthread_mutex_unlock(&c->lock);
	if (rc)
		*n = 0;
	return rc;
}

/* ListOffsets by time (meta_ts_lookup's rows), on the read connection
 * with its lock held. */
struct ts_query {
	struct sq_conn *c;
	int64_t tid;
	int32_t partition;
};

static int ts_row(void *arg, const int64_t *ts, int64_t after, struct meta_batch_row *row,
		  int64_t *offset, int64_t *batch_ts)
{
	struct ts_query *q = arg;
	sqlite3_stmt *st = sq_stmt(q->c, ts ? ST_OFFSET_FOR_TIMESTAMP : ST_MAX_TIMESTAMP);
	sqlite3_bind_int64(st, 1, q->tid);
	sqlite3_bind_int(st, 2, q->partition);
	if (ts)
		sqlite3_bind_int64(st, 3, *ts);
	sqlite3_bind_int64(st, ts ? 4 : 3, after);
	int step = sqlite3_step(st), rc;
	if (step == SQLITE_ROW) {
		batch_row_read(st, row, 0);
		rc = meta_ts_row_pick(row, (const char *)sqlite3_column_text(st, 7),
				      sqlite3_column_int64(st, 8), ts, offset, batch_ts);
	} else {
		rc = step == SQLITE_DONE ? SL_ENOTFOUND : sq_fail(q->c, "finding an offset by time");
	}
	sqlite3_reset(st);
	return rc;
}

static int offset_ts_query(struct meta *m, int64_t tid, int32_t partition, const int64_t *ts,
			   int64_t *offset, int64_t *batch_ts)
{
	struct ts_query q = { &sq_of(m)->read, tid, partition };
	pthread_mutex_lock(&q.c->lock);
	int rc = meta_ts_lookup(ts_row, &q, ts, offset, batch_ts);
	pthread_mutex_unlock(&q.c->lock);
	return rc;
}

static int sq_offset_for_timestamp(struct meta *m, int64_t tid, int32_t partition,
				   int64_t timestamp_ms, int64_t *offset,
				   int64_t *batch_max_timestamp)
{
	return offset_ts_query(m, tid, partition, &timestamp_ms, offset, batch_max_timestamp);
}

static int sq_max_timestamp(struct meta *m, int64_t tid, int32_t partition,
			    int64_t *offset, int64_t *timestamp)
{
	return offset_ts_query(m, tid, partition, NULL, offset, timestamp);
}

static int sq_clean_bytes(struct meta *m, int64_t tid, int32_t partition, int64_t log_start,
			  int64_t first_dirty, int64_t *clean, int64_t *dirty)
{
	struct sq_conn *c = &sq_of(m)->read;
	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st = sq_stmt(c, ST_CLEAN_BYTES);
	sqlite3_bind_int64(st, 1, tid);
	sqlite3_bind_int(st, 2, partition);
	sqlite3_bind_int64(st, 3, log_start);
	sqlite3_bind_int64(st, 4, first_dirty);
	int rc = 0;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*clean = sqlite3_column_int64(st, 0);
		*dirty = sqlite3_column_int64(st, 1);
	} else {
		rc = sq_fail(c, "summing a partition's bytes");
	}
	sqlite3_reset(st);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* One statement, so one transaction: the block is taken atomically even
 * when several agents share the store. */
static int sq_producer_ids_alloc(struct meta *m, int64_t count, int64_t *first)
{
	struct sq_conn *c = &sq_of(m)->admin;
	if (count < 1 || count > META_PRODUCER_ID_BLOCK_MAX)
		return SL_EINVAL;
	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st = sq_stmt(c, ST_PRODUCER_IDS_ALLOC);
	sqlite3_bind_int64(st, 1, count);
	sqlite3_bind_int64(st, 2, INT64_MAX - count);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*first = sqlite3_column_int64(st, 0);
		/* The statement (and its implicit transaction) commits when it
		 * runs to the end: the block is only ours once that succeeded. */
		rc = sqlite3_step(st) == SQLITE_DONE && sqlite3_reset(st) == SQLITE_OK
			? 0 : sq_fail(c, "allocating producer ids");
	} else if (rc == SQLITE_DONE) {
		rc = SL_ELIMIT; /* the id space is used up */
	} else {
		rc = sq_fail(c, "allocating producer ids");
	}
	sqlite3_reset(st);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* ---- consumer group offsets ---- */

struct offset_commit_txn {
	const struct meta_offset_commit *rows;
	size_t n;
};

/* The next offset commit number (group_offsets.commit_seq): the order
 * plain and transactional commits were stored in. */
static int offset_seq_next(struct sq_conn *c, int64_t *seq)
{
	int rc = txn_step_one(c, sq_stmt(c, ST_OFFSET_SEQ), seq, "numbering an offset commit");
	return rc > 0 ? 0 : rc == 0 ? sq_fail(c, "numbering an offset commit") : rc;
}

static int offset_commit_body(struct sq_conn *c, void *arg)
{
	struct offset_commit_txn *x = arg;
	int64_t seq;
	int rc0 = offset_seq_next(c, &seq);
	if (rc0)
		return rc0;
	for (size_t i = 0; i < x->n; i++) {
		const struct meta_offset_commit *r = &x->rows[i];
		if (!r->group_id || (r->metadata && strlen(r->metadata) > META_OFFSET_METADATA_BYTES_MAX))
			return SL_EINVAL;
		sqlite3_stmt *st = sq_stmt(c, ST_OFFSET_UPSERT);
		sqlite3_bind_text(st, 1, r->group_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, r->tid);
		sqlite3_bind_int(st, 3, r->partition);
		sqlite3_bind_int64(st, 4, r->committed_offset);
		sqlite3_bind_int(st, 5, r->leader_epoch);
		if (r->metadata)
			sqlite3_bind_text(st, 6, r->metadata, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 6);
		sqlite3_bind_int64(st, 7, r->commit_timestamp_ms);
		sqlite3_bind_int64(st, 8, seq);
		int rc = sq_exec_stmt(c, st, "committing an offset");
		if (rc)
			return rc;
	}
	return 0;
}

static int sq_offset_commit(struct meta *m, const struct meta_offset_commit *rows, size_t n)
{
	if (n == 0)
		return 0;
	struct offset_commit_txn x = { rows, n };
	return sq_txn(&sq_of(m)->offsets, TXN_WRITE, offset_commit_body, &x);
}

static int sq_offset_fetch(struct meta *m, const char *group_id,
			   struct meta_committed_offset **out, size_t *n)
{
	struct sq_conn *c = &sq_of(m)->read;
	struct meta_committed_offset *o = NULL;
	size_t count = 0, cap = 0;
	int rc = 0, step;
	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st = sq_stmt(c, ST_OFFSET_FETCH);
	sqlite3_bind_text(st, 1, group_id, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (array_grow(&o, &cap, count, sizeof *o, 16) != 0) {
			rc = SL_ENOMEM;
			break;
		}
		struct meta_committed_offset *r = &o[count++];
		r->tid = sqlite3_column_int64(st, 0);
		r->partition = sqlite3_column_int(st, 1);
		r->committed_offset = sqlite3_column_int64(st, 2);
		r->leader_epoch = sqlite3_column_int(st, 3);
		r->metadata = NULL;
		const unsigned char *md = sqlite3_column_text(st, 4);
		if (md && !(r->metadata = strdup((const char *)md))) {
			rc = SL_ENOMEM;
			break;
		}
		r->commit_timestamp_ms = sqlite3_column_int64(st, 5);
	}
	if (!rc && step != SQLITE_DONE)
		rc = sq_fail(c, "fetching committed offsets");
	sqlite3_reset(st);
	pthread_mutex_unlock(&c->lock);
	if (rc) {
		meta_committed_offsets_free(o, count);
		return rc;
	}
	*out = o;
	*n = count;
	return 0;
}

static int sq_txn_offsets_pending(struct meta *m, const char *group_id, struct txn_tp **out,
				  size_t *n)
{
	struct sq_conn *c = &sq_of(m)->read;
	struct txn_tp *v = NULL;
	size_t count = 0, cap = 0;
	int rc = 0, step;
	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st = sq_stmt(c, ST_TXN_OFFSETS_PENDING);
	sqlite3_bind_text(st, 1, group_id, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (array_grow(&v, &cap, count, sizeof *v, 16) != 0) {
			rc = SL_ENOMEM;
			break;
		}
		v[count++] = (struct txn_tp){ sqlite3_column_int64(st, 0), sqlite3_column_int(st, 1) };
	}
	if (!rc && step != SQLITE_DONE)
		rc = sq_fail(c, "reading pending transactional offsets");
	sqlite3_reset(st);
	pthread_mutex_unlock(&c->lock);
	if (rc) {
		free(v);
		return rc;
	}
	*out = v;
	*n = count;
	return 0;
}

static int sq_producers_describe(struct meta *m, int64_t tid, int32_t partition, size_t max,
				 struct meta_producer_desc *out, size_t *n)
{
	struct sq_conn *c = &sq_of(m)->read;
	int rc = 0, step;
	size_t count = 0;
	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st = sq_stmt(c, ST_PSTATE_DESCRIBE);
	sqlite3_bind_int64(st, 1, tid);
	sqlite3_bind_int(st, 2, partition);
	sqlite3_bind_int64(st, 3, (int64_t)max);
	while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *text = sqlite3_column_text(st, 2);
		rc = meta_producer_desc_fill(&out[count], tid, partition, sqlite3_column_int64(st, 0),
					     sqlite3_column_int64(st, 1),
					     text ? (const char *)text : "",
					     sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 4),
					     sqlite3_column_int64(st, 5));
		count += !rc;
	}
	if (!rc && step != SQLITE_DONE)
		rc = sq_fail(c, "describing producers");
	sqlite3_reset(st);
	pthread_mutex_unlock(&c->lock);
	*n = rc ? 0 : count;
	return rc;
}

static int sq_group_list(struct meta *m, struct meta_group_summary **out, size_t *n)
{
	struct sq_conn *c = &sq_of(m)->read;
	struct meta_group_summary *g = NULL;
	size_t count = 0, cap = 0;
	int rc = 0, step;
	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st = sq_stmt(c, ST_GROUP_LIST);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (array_grow(&g, &cap, count, sizeof *g, 16) != 0) {
			rc = SL_ENOMEM;
			break;
		}
		const unsigned char *id = sqlite3_column_text(st, 0);
		g[count].group_id = strdup(id ? (const char *)id : "");
		if (!g[count].group_id) {
			rc = SL_ENOMEM;
			break;
		}
		g[count].offset_count = sqlite3_column_int64(st, 1);
		g[count].last_commit_ms = sqlite3_column_int64(st, 2);
		count++;
	}
	if (!rc && step != SQLITE_DONE)
		rc = sq_fail(c, "listing groups");
	sqlite3_reset(st);
	pthread_mutex_unlock(&c->lock);
	if (rc) {
		meta_group_summaries_free(g, count);
		return rc;
	}
	*out = g;
	*n = count;
	return 0;
}

struct delete_offsets_txn {
	const char *group_id;
	const int64_t *tids;
	const int32_t *partitions;
	size_t n;
	int64_t count; /* out */
};

static int group_delete_offsets_body(struct sq_conn *c, void *arg)
{
	struct delete_offsets_txn *x = arg;
	x->count = 0;
	if (!x->tids) {
		sqlite3_stmt *st = sq_stmt(c, ST_OFFSET_DELETE_GROUP);
		sqlite3_bind_text(st, 1, x->group_id, -1, SQLITE_STATIC);
		int rc = sq_exec_stmt(c, st, "deleting a group's offsets");
		x->count = sqlite3_changes(c->db);
		/* The whole group goes (DeleteGroups, retention): its stored
		 * membership too. */
		if (!rc) {
			st = sq_stmt(c, ST_GROUP_STATE_DELETE);
			sqlite3_bind_text(st, 1, x->group_id, -1, SQLITE_STATIC);
			rc = sq_exec_stmt(c, st, "deleting a group's membership");
		}
		return rc;
	}
	for (size_t i = 0; i < x->n; i++) {
		sqlite3_stmt *st = sq_stmt(c, ST_OFFSET_DELETE_ONE);
		sqlite3_bind_text(st, 1, x->group_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, x->tids[i]);
		sqlite3_bind_int(st, 3, x->partitions[i]);
		int rc = sq_exec_stmt(c, st, "deleting an offset");
		if (rc)
			return rc;
		x->count += sqlite3_changes(c->db);
	}
	return 0;
}

static int sq_group_delete_offsets(struct meta *m, const char *group_id, const int64_t *tids,
				   const int32_t *partitions, size_t n, int64_t *deleted)
{
	struct delete_offsets_txn x = { group_id, tids, partitions, n, 0 };
	int rc = sq_txn(&sq_of(m)->offsets, TXN_WRITE, group_delete_offsets_body, &x);
	if (!rc && deleted)
		*deleted = x.count;
	return rc;
}

static int sq_batches_from_many(struct meta *m, struct meta_batch_query *q, size_t nq,
				struct meta_batch_row *rows, size_t rows_cap);

/* ---- the agent registry (meta.h): on the cluster connection. The
 * store's clock is this machine's: an embedded store has one agent. ---- */

struct registry_txn {
	struct meta_agent *self;
	int64_t lease_ms;
	bool forget_all;       /* register on a claimed store */
	bool join;             /* register (else heartbeat) */
	struct meta_cluster_view *view; /* out */
};

static int sq_changes_exec(struct sq_conn *c, sqlite3_stmt *st, const char *what, int *changed)
{
	int rc = sq_exec_stmt(c, st, what);
	*changed = rc ? 0 : sqlite3_changes(c->db);
	return rc;
}

/* Whether a row holds node_id. */
static int agent_id_taken(struct sq_conn *c, int32_t node_id, bool *taken, int32_t *unused)
{
	sqlite3_stmt *st = sq_stmt(c, ST_AGENT_IDS);
	int32_t ids[SL_CLUSTER_AGENTS_MAX];
	size_t n = 0;
	int step;
	*taken = false;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int32_t id = sqlite3_column_int(st, 0);
		if (id == node_id)
			*taken = true;
		if (n < SL_CLUSTER_AGENTS_MAX)
			ids[n++] = id;
	}
	sqlite3_reset(st);
	if (step != SQLITE_DONE)
		return sq_fail(c, "listing agents");
	if (unused)
		*unused = meta_agent_unused_id(ids, n);
	return 0;
}

static int agent_insert(struct sq_conn *c, const struct meta_agent *a, int64_t now)
{
	sqlite3_stmt *st = sq_stmt(c, ST_AGENT_INSERT);
	sqlite3_bind_int(st, 1, a->node_id);
	sqlite3_bind_int64(st, 2, a->incarnation);
	sqlite3_bind_text(st, 3, a->endpoints, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, a->zone, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, a->start_ms);
	sqlite3_bind_int64(st, 6, now);
	return sq_exec_stmt(c, st, "registering an agent");
}

static int view_read(struct sq_conn *c, struct meta_cluster_view *v)
{
	free(v->agents);
	memset(v, 0, sizeof *v);
	sqlite3_stmt *st = sq_stmt(c, ST_EPOCH_GET);
	int step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		v->epoch = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (step != SQLITE_ROW)
		return sq_fail(c, "reading the agents epoch");
	st = sq_stmt(c, ST_AGENT_LIST);
	size_t cap = 0;
	int rc = 0;
	while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
		struct meta_agent ag;
		memset(&ag, 0, sizeof ag);
		ag.node_id = sqlite3_column_int(st, 0);
		ag.incarnation = sqlite3_column_int64(st, 1);
		copy_text(ag.endpoints, sizeof ag.endpoints, st, 2);
		copy_text(ag.zone, sizeof ag.zone, st, 3);
		ag.start_ms = sqlite3_column_int64(st, 4);
		rc = meta_view_add(v, &cap, &ag);
	}
	if (!rc && step != SQLITE_DONE)
		rc = sq_fail(c, "listing agents");
	sqlite3_reset(st);
	return rc;
}

static int registry_body(struct sq_conn *c, void *arg)
{
	struct registry_txn *x = arg;
	int64_t now = clock_wall_ms();
	int expired = 0, beat = 0, rc = 0;
	sqlite3_stmt *st;
	if (!x->join) { /* first: this agent is not among the expired */
		st = sq_stmt(c, ST_AGENT_BEAT);
		sqlite3_bind_int(st, 1, x->self->node_id);
		sqlite3_bind_int64(st, 2, x->self->incarnation);
		sqlite3_bind_int64(st, 3, now);
		rc = sq_changes_exec(c, st, "refreshing a heartbeat", &beat);
	}
	st = sq_stmt(c, x->forget_all ? ST_AGENT_FORGET_ALL : ST_AGENT_EXPIRE);
	if (!x->forget_all)
		sqlite3_bind_int64(st, 1, now - x->lease_ms);
	if (!rc)
		rc = sq_changes_exec(c, st, "expiring agents", &expired);
	bool joins = x->join || beat == 0;
	if (!rc && joins) {
		bool taken;
		int32_t unused;
		rc = agent_id_taken(c, x->self->node_id, &taken, &unused);
		if (!rc && x->self->node_id < 0)
			x->self->node_id = unused;
		else if (!rc && taken)
			rc = SL_EBUSY;
		if (!rc && x->join)
			x->self->start_ms = now;
		if (!rc)
			rc = agent_insert(c, x->self, now);
	}
	if (!rc && (joins || expired > 0))
		rc = sq_exec_stmt(c, sq_stmt(c, ST_EPOCH_RAISE), "raising the agents epoch");
	return rc ? rc : view_read(c, x->view);
}

static int sq_agent_register(struct meta *m, struct meta_agent *self, int64_t lease_ms,
			     struct meta_cluster_view *view)
{
	struct meta_sqlite *s = sq_of(m);
	int32_t asked = self->node_id;
	struct registry_txn x = { self, lease_ms, s->claim_fd >= 0, true, view };
	memset(view, 0, sizeof *view);
	int rc = sq_txn(&s->cluster, TXN_WRITE, registry_body, &x);
	if (rc) {
		self->node_id = asked;
		free(view->agents);
		memset(view, 0, sizeof *view);
	}
	return rc;
}

static int sq_agent_heartbeat(struct meta *m, const struct meta_agent *self, int64_t lease_ms,
			      struct meta_cluster_view *view)
{
	struct meta_agent me = *self;
	struct registry_txn x = { &me, lease_ms, false, false, view };
	memset(view, 0, sizeof *view);
	int rc = sq_txn(&sq_of(m)->cluster, TXN_WRITE, registry_body, &x);
	if (rc) {
		free(view->agents);
		memset(view, 0, sizeof *view);
	}
	return rc;
}

static int deregister_body(struct sq_conn *c, void *arg)
{
	const struct meta_agent *self = arg;
	sqlite3_stmt *st = sq_stmt(c, ST_AGENT_DELETE);
	sqlite3_bind_int(st, 1, self->node_id);
	sqlite3_bind_int64(st, 2, self->incarnation);
	int gone = 0;
	int rc = sq_changes_exec(c, st, "deregistering an agent", &gone);
	if (!rc && gone)
		rc = sq_exec_stmt(c, sq_stmt(c, ST_EPOCH_RAISE), "raising the agents epoch");
	return rc;
}

static int sq_agent_deregister(struct meta *m, const struct meta_agent *self)
{
	return sq_txn(&sq_of(m)->cluster, TXN_WRITE, deregister_body, (void *)self);
}

struct catalog_txn {
	int64_t known, since;
	struct meta_catalog *out;
};

/* One write transaction: the poll raises change_seq first, so a write
 * of a partition row after it stamps a higher value than any row read. */
static int catalog_body(struct sq_conn *c, void *arg)
{
	struct catalog_txn *x = arg;
	struct meta_catalog *out = x->out;
	meta_catalog_free(out);
	out->topics_read = false;
	int64_t seq = 0;
	int rc = step_first_int64(c, sq_stmt(c, ST_CHANGE_SEQ_RAISE), &seq,
				  "raising the change marker");
	if (rc == 1)
		rc = step_first_int64(c, sq_stmt(c, ST_CATALOG_VERSION), &out->version,
				      "reading the catalog version");
	rc = rc == 1 ? 0 : rc ? rc : SL_EMETA;
	out->parts_next = seq + 1;
	if (!rc && out->version != x->known) {
		struct topic_list_txn t = { NULL, 0 };
		rc = topic_list_body(c, &t);
		out->topics = t.t;
		out->topic_count = t.count;
		out->topics_read = !rc;
	}
	if (!rc) {
		/* A mark from another database (restored from a copy): every row. */
		sqlite3_stmt *st = sq_stmt(c, ST_PARTITION_LIST_SINCE);
		sqlite3_bind_int64(st, 1, x->since > out->parts_next ? -1 : x->since);
		rc = partitions_read(c, st, &out->parts, &out->part_count);
	}
	return rc;
}

static int sq_catalog_read(struct meta *m, int64_t known_version, int64_t parts_since,
			   struct meta_catalog *out)
{
	memset(out, 0, sizeof *out);
	struct catalog_txn x = { known_version, parts_since, out };
	int rc = sq_txn(&sq_of(m)->cluster, TXN_WRITE, catalog_body, &x);
	if (rc)
		meta_catalog_free(out);
	return rc;
}

/* ---- SCRAM credentials ---- */

static void blob_copy(uint8_t *dst, size_t cap, uint32_t *len, sqlite3_stmt *st, int col)
{
	size_t n = (size_t)sqlite3_column_bytes(st, col);
	const void *p = sqlite3_column_blob(st, col);
	if (n > cap || !p)
		n = 0; /* stored by scram_alter, which checked the sizes */
	memcpy(dst, p ? p : "", n);
	if (len)
		*len = (uint32_t)n;
}

static void scram_row_read(sqlite3_stmt *st, void *out, size_t i)
{
	struct meta_scram_credential *c = (struct meta_scram_credential *)out + i;
	memset(c, 0, sizeof *c);
	copy_text(c->user, sizeof c->user, st, 0);
	c->mechanism = (int8_t)sqlite3_column_int(st, 1);
	blob_copy(c->salt, sizeof c->salt, &c->salt_len, st, 2);
	c->iterations = sqlite3_column_int(st, 3);
	blob_copy(c->stored_key, sizeof c->stored_key, &c->key_len, st, 4);
	blob_copy(c->server_key, sizeof c->server_key, NULL, st, 5);
}

static int sq_scram_get(struct meta *m, const char *user, struct meta_scram_credential *out,
			size_t *n)
{
	struct sq_conn *c = &sq_of(m)->read;
	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st = sq_stmt(c, ST_SCRAM_GET);
	sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
	int rc = sq_read_rows(c, st, META_SCRAM_MECHANISMS, scram_row_read, out, n,
			      "reading a SCRAM credential");
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static int sq_scram_list(struct meta *m, struct meta_scram_credential **out, size_t *n)
{
	struct sq_conn *c = &sq_of(m)->admin;
	struct meta_scram_credential *v = NULL;
	size_t count = 0, cap = 0;
	int rc = 0, step;
	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st = sq_stmt(c, ST_SCRAM_LIST);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		rc = array_grow(&v, &cap, count, sizeof *v, 16);
		if (rc)
			break;
		scram_row_read(st, v, count++);
	}
	if (!rc && step != SQLITE_DONE)
		rc = sq_fail(c, "listing SCRAM credentials");
	sqlite3_reset(st);
	pthread_mutex_unlock(&c->lock);
	if (rc) {
		free(v);
		return rc;
	}
	*out = v;
	*n = count;
	return 0;
}

struct scram_alter_txn {
	struct meta_scram_change *changes;
	size_t n;
};

static int scram_alter_body(struct sq_conn *c, void *arg)
{
	struct scram_alter_txn *x = arg;
	for (size_t i = 0; i < x->n; i++) {
		struct meta_scram_change *ch = &x->changes[i];
		const struct meta_scram_credential *cr = &ch->cred;
		ch->result = 0;
		sqlite3_stmt *st = sq_stmt(c, ch->remove ? ST_SCRAM_DELETE : ST_SCRAM_UPSERT);
		sqlite3_bind_text(st, 1, cr->user, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, cr->mechanism);
		if (!ch->remove) {
			sqlite3_bind_blob(st, 3, cr->salt, (int)cr->salt_len, SQLITE_STATIC);
			sqlite3_bind_int(st, 4, cr->iterations);
			sqlite3_bind_blob(st, 5, cr->stored_key, (int)cr->key_len, SQLITE_STATIC);
			sqlite3_bind_blob(st, 6, cr->server_key, (int)cr->key_len, SQLITE_STATIC);
		}
		int rc = sq_exec_stmt(c, st, "writing a SCRAM credential");
		if (rc)
			return rc;
		if (ch->remove && sqlite3_changes(c->db) == 0)
			ch->result = SL_ENOTFOUND;
	}
	return 0;
}

static int sq_scram_alter(struct meta *m, struct meta_scram_change *changes, size_t n)
{
	int rc = meta_scram_changes_check(changes, n);
	if (rc)
		return rc;
	struct scram_alter_txn x = { changes, n };
	return sq_txn(&sq_of(m)->admin, TXN_WRITE, scram_alter_body, &x);
}
static int sq_leases_sync(struct meta *m, const struct meta_agent *self, int64_t lease_ms,
			  struct meta_lease *leases, size_t n);
static int sq_offset_commit_fenced(struct meta *m, const struct meta_offset_commit *rows,
				   const int64_t *epochs, size_t n, bool *refused);
static int sq_txn_persist(struct meta *m, const char *id, const struct txn_record *r,
			  int64_t coord_epoch, int64_t *version);
static int sq_txn_delete(struct meta *m, const char *id, int64_t coord_epoch, int64_t version);
static int sq_txn_load(struct meta *m, const char *id, meta_txn_want_fn *want, void *arg,
		       struct meta_txn_row **out, size_t *n);
static int sq_txn_open_list(struct meta *m, struct meta_txn_row **out, size_t *n);
static int sq_txn_offset_commit(struct meta *m, const char *id, int64_t producer_id,
				int16_t producer_epoch, const struct meta_offset_commit *rows,
				size_t n);
static int sq_txn_settle(struct meta *m, const char *id, int64_t txn_seq, bool commit);
static int sq_aborted_txns(struct meta *m, int64_t tid, int32_t partition, int64_t from,
			   int64_t to, struct meta_aborted_txn *out, size_t cap, size_t *n);
static int sq_aborted_txns_since(struct meta *m, int64_t after_seq,
				 struct meta_aborted_feed *out, size_t cap, size_t *n);
static int sq_group_delete_offsets_fenced(struct meta *m, const char *group_id,
					  const struct meta_agent *self, int64_t epoch,
					  const int64_t *tids, const int32_t *partitions, size_t n,
					  int64_t *deleted);
static int sq_group_forget(struct meta *m, const char *group_id, const struct meta_agent *self,
			   int64_t epoch);
static int sq_group_states_expire(struct meta *m, int64_t idle_ms, int64_t *deleted);
static int sq_group_state_store(struct meta *m, const struct meta_group_state *g, int64_t epoch);
static int sq_group_state_load(struct meta *m, const char *group_id,
			       struct meta_group_state **out, size_t *n);

/* ---- ACLs ---- */

struct acl_read_txn {
	int64_t known, *version;
	struct acl_binding *v;
	size_t count, cap;
};

static int acl_read_body(struct sq_conn *c, void *arg)
{
	struct acl_read_txn *x = arg;
	sqlite3_stmt *st = sq_stmt(c, ST_ACL_VERSION);
	int step = sqlite3_step(st);
	*x->version = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (step != SQLITE_ROW)
		return sq_fail(c, "reading the ACL version");
	if (*x->version == x->known)
		return 0;
	int rc = 0;
	st = sq_stmt(c, ST_ACL_LIST);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct acl_binding row = {
			.resource_type = (int8_t)sqlite3_column_int(st, 0),
			.resource_name = (char *)sqlite3_column_text(st, 1),
			.pattern_type = (int8_t)sqlite3_column_int(st, 2),
			.principal = (char *)sqlite3_column_text(st, 3),
			.host = (char *)sqlite3_column_text(st, 4),
			.operation = (int8_t)sqlite3_column_int(st, 5),
			.permission = (int8_t)sqlite3_column_int(st, 6),
		};
		rc = meta_acl_push(&x->v, &x->count, &x->cap, &row);
		if (rc)
			break;
	}
	if (!rc && step != SQLITE_DONE)
		rc = sq_fail(c, "listing ACLs");
	sqlite3_reset(st);
	return rc;
}

static int sq_acl_read(struct meta *m, int64_t known_version, int64_t *version,
		       struct acl_binding **out, size_t *n)
{
	struct acl_read_txn x = { known_version, version, NULL, 0, 0 };
	int rc = sq_txn(&sq_of(m)->read, TXN_READ, acl_read_body, &x);
	if (rc) {
		acl_bindings_free(x.v, x.count);
		return rc;
	}
	*out = x.v;
	*n = x.count;
	return 0;
}

struct acl_alter_txn {
	const struct acl_binding *add, *remove;
	size_t add_count, remove_count;
};

static void acl_bind(sqlite3_stmt *st, const struct acl_binding *b)
{
	sqlite3_bind_int(st, 1, b->resource_type);
	sqlite3_bind_text(st, 2, b->resource_name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, b->pattern_type);
	sqlite3_bind_text(st, 4, b->principal, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, b->host, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, b->operation);
	sqlite3_bind_int(st, 7, b->permission);
}

static int acl_alter_body(struct sq_conn *c, void *arg)
{
	struct acl_alter_txn *x = arg;
	int rc = 0;
	for (size_t i = 0; !rc && i < x->remove_count; i++) {
		sqlite3_stmt *st = sq_stmt(c, ST_ACL_DELETE);
		acl_bind(st, &x->remove[i]);
		rc = sq_exec_stmt(c, st, "deleting an ACL");
	}
	for (size_t i = 0; !rc && i < x->add_count; i++) {
		sqlite3_stmt *st = sq_stmt(c, ST_ACL_INSERT);
		acl_bind(st, &x->add[i]);
		rc = sq_exec_stmt(c, st, "adding an ACL");
	}
	if (rc)
		return rc;
	sqlite3_stmt *st = sq_stmt(c, ST_ACL_COUNT);
	int64_t count = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_reset(st);
	if (count < 0)
		return sq_fail(c, "counting ACLs");
	if (count > SL_ACLS_MAX)
		return SL_ELIMIT;
	return sq_exec_stmt(c, sq_stmt(c, ST_ACL_RAISE), "raising the ACL version");
}

static int sq_acl_alter(struct meta *m, const struct acl_binding *add, size_t add_count,
			const struct acl_binding *remove, size_t remove_count)
{
	struct acl_alter_txn x = { add, remove, add_count, remove_count };
	return sq_txn(&sq_of(m)->admin, TXN_WRITE, acl_alter_body, &x);
}

static const struct meta_methods sqlite_methods = {
	.name = "sqlite",
	.close = sq_close,
	.topic_create = sq_topic_create,
	.topic_delete = sq_topic_delete,
	.purge_deleted = sq_purge_deleted,
	.topic_list = sq_topic_list,
	.topic_set_partitions = sq_topic_set_partitions,
	.topic_configs_set = sq_topic_configs_set,
	.partition_get = sq_partition_get,
	.partition_list = sq_partition_list,
	.partition_set_log_start = sq_partition_set_log_start,
	.partition_trim = sq_partition_trim,
	.commit_objects = sq_commit_objects,
	.batches_from = sq_batches_from,
	.offset_for_timestamp = sq_offset_for_timestamp,
	.max_timestamp = sq_max_timestamp,
	.clean_bytes = sq_clean_bytes,
	.producer_ids_alloc = sq_producer_ids_alloc,
	.offset_commit = sq_offset_commit,
	.offset_fetch = sq_offset_fetch,
	.txn_offsets_pending = sq_txn_offsets_pending,
	.group_list = sq_group_list,
	.producers_describe = sq_producers_describe,
	.group_delete_offsets = sq_group_delete_offsets,
	.batches_from_many = sq_batches_from_many,
	.objects_dead = sq_objects_dead,
	.objects_mark_deleting = sq_objects_mark_deleting,
	.objects_forget = sq_objects_forget,
	.object_known = sq_object_known,
	.gc_fence_raise = sq_gc_fence_raise,
	.merge_swap = sq_merge_swap,
	.agent_register = sq_agent_register,
	.agent_heartbeat = sq_agent_heartbeat,
	.agent_deregister = sq_agent_deregister,
	.catalog_read = sq_catalog_read,
	.scram_get = sq_scram_get,
	.scram_list = sq_scram_list,
	.scram_alter = sq_scram_alter,
	.leases_sync = sq_leases_sync,
	.offset_commit_fenced = sq_offset_commit_fenced,
	.group_delete_offsets_fenced = sq_group_delete_offsets_fenced,
	.group_forget = sq_group_forget,
	.group_states_expire = sq_group_states_expire,
	.group_state_store = sq_group_state_store,
	.group_state_load = sq_group_state_load,
	.acl_read = sq_acl_read,
	.acl_alter = sq_acl_alter,
	.txn_persist = sq_txn_persist,
	.txn_delete = sq_txn_delete,
	.txn_load = sq_txn_load,
	.txn_open_list = sq_txn_open_list,
	.txn_offset_commit = sq_txn_offset_commit,
	.txn_settle = sq_txn_settle,
	.aborted_txns = sq_aborted_txns,
	.aborted_txns_since = sq_aborted_txns_since,
};

/* meta_int.h; meta.c checked that a file not to be created exists. */
int meta_sqlite_open(const char *path, enum meta_open_mode mode, struct meta **out)
{
	bool create = mode != META_OPEN_EXISTING;
	*out = NULL;
	if (!sqlite3_threadsafe()) {
		log_error("metadata store: SQLite was built without thread support");
		return SL_EMETA;
	}
	struct meta_sqlite *s = calloc(1, sizeof *s);
	if (!s)
		return SL_ENOMEM;
	s->base.m = &sqlite_methods;
	s->claim_fd = -1;
	s->path = strdup(path);
	if (!s->path) {
		free(s);
		return SL_ENOMEM;
	}
	/* An agent's claim comes first: a refused second agent must not
	 * create or upgrade the schema under the one serving. */
	int rc = mode == META_OPEN_AGENT ? sq_claim(s) : 0;
	/* The loop connection creates the file and the schema (or, not
	 * creating, checks them); the others then open what exists. */
	if (!rc)
		rc = conn_open(&s->loop, "loop", path, create ? CONN_CREATE : CONN_EXISTING);
	if (!rc)
		rc = conn_open(&s->read, "read", path, CONN_PLAIN);
	if (!rc)
		rc = conn_open(&s->commit, "commit", path, CONN_PLAIN);
	if (!rc)
		rc = conn_open(&s->offsets, "offsets", path, CONN_PLAIN);
	if (!rc)
		rc = conn_open(&s->trim, "trim", path, CONN_PLAIN);
	if (!rc)
		rc = conn_open(&s->admin, "admin", path, CONN_PLAIN);
	if (!rc)
		rc = conn_open(&s->cluster, "cluster", path, CONN_PLAIN);
	if (rc) {
		sq_close(&s->base);
		return rc == SL_ENOMEM || rc == SL_EBUSY ? rc : SL_EMETA;
	}
	log_debug("metadata store: opened sqlite:%s", path);
	*out = &s->base;
	return 0;
}

/* ---- read path: batch rows of several partitions at once ----
 * One statement prepared per call (not kept with the others: a call
 * serves a whole fetch), stepped once per partition. */
static int sq_batches_from_many(struct meta *m, struct meta_batch_query *q, size_t nq,
				struct meta_batch_row *rows, size_t rows_cap)
{
	static const char sql[] = "SELECT " BATCH_COLUMNS ", o.size, b.attributes"
		" FROM batches AS b JOIN objects AS o ON o.oid = b.oid"
		" WHERE b.tid = ?1 AND b.partition = ?2 AND b.last_offset >= ?3"
		" ORDER BY b.last_offset LIMIT ?4";
	struct sq_conn *c = &sq_of(m)->read;
	for (size_t i = 0; i < nq; i++)
		q[i].first = q[i].n = 0;
	if (nq == 0)
		return 0;
	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
		rc = sq_fail(c, "preparing the batch lookup");
		goto out_unlock;
	}
	size_t used = 0;
	for (size_t i = 0; i < nq && !rc; i++) {
		size_t want = q[i].max_rows < rows_cap - used ? q[i].max_rows : rows_cap - used;
		q[i].first = used;
		if (want == 0)
			continue;
		sqlite3_bind_int64(st, 1, q[i].tid);
		sqlite3_bind_int(st, 2, q[i].partition);
		sqlite3_bind_int64(st, 3, q[i].offset);
		sqlite3_bind_int64(st, 4, (int64_t)want);
		size_t count = 0;
		rc = batch_rows_expand(c, st, q[i].offset, rows + used, want, &count, true,
				       "reading batches");
		q[i].n = count;
		used += count;
	}
	sqlite3_finalize(st);
out_unlock:
	pthread_mutex_unlock(&c->lock);
	if (rc)
		for (size_t i = 0; i < nq; i++)
			q[i].n = 0;
	return rc ? SL_EMETA : 0;
}

/* ---- leases (meta.h) ----
 * On an embedded store the agent is alone: a lease is only ever taken
 * over from an earlier run of it, whose registry row the claim forgot
 * (so its leases are free at once). The same rule as PostgreSQL's
 * (meta_lease_decide); statements are prepared per call (a few a
 * second at most). */

static int sq_prepare(struct sq_conn *c, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(c->db, sql, -1, st, NULL) != SQLITE_OK)
		return sq_fail(c, "preparing a lease statement");
	return 0;
}

static int lease_row_read(struct sq_conn *c, const char *name, struct meta_lease_row *row)
{
	static const char sql[] = "SELECT l.holder, l.incarnation, l.epoch, l.expires_ms,"
		" EXISTS (SELECT 1 FROM agents AS a WHERE a.node_id = l.holder"
		" AND a.incarnation = l.incarnation)"
		" FROM leases AS l WHERE l.name = ?1";
	sqlite3_stmt *st;
	int rc = sq_prepare(c, sql, &st);
	if (rc)
		return rc;
	memset(row, 0, sizeof *row);
	row->holder = -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		row->found = true;
		row->holder = sqlite3_column_int(st, 0);
		row->incarnation = sqlite3_column_int64(st, 1);
		row->epoch = sqlite3_column_int64(st, 2);
		row->expires_ms = sqlite3_column_int64(st, 3);
		row->holder_alive = sqlite3_column_int(st, 4) != 0;
	} else if (step != SQLITE_DONE) {
		rc = sq_fail(c, "reading a lease");
	}
	sqlite3_finalize(st);
	return rc;
}

static int lease_row_write(struct sq_conn *c, const char *name, int32_t holder,
			   int64_t incarnation, int64_t epoch, int64_t expires_ms)
{
	static const char sql[] = "INSERT INTO leases (name, holder, incarnation, epoch, expires_ms)"
		" VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO UPDATE SET"
		" holder = excluded.holder, incarnation = excluded.incarnation,"
		" epoch = excluded.epoch, expires_ms = excluded.expires_ms";
	sqlite3_stmt *st;
	int rc = sq_prepare(c, sql, &st);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, holder);
	sqlite3_bind_int64(st, 3, incarnation);
	sqlite3_bind_int64(st, 4, epoch);
	sqlite3_bind_int64(st, 5, expires_ms);
	rc = sq_exec_stmt(c, st, "writing a lease");
	sqlite3_finalize(st);
	return rc;
}

struct leases_txn {
	const struct meta_agent *self;
	int64_t lease_ms;
	struct meta_lease *l;
	size_t n;
};

static int leases_sync_body(struct sq_conn *c, void *arg)
{
	struct leases_txn *x = arg;
	int64_t now = clock_wall_ms();
	for (size_t i = 0; i < x->n; i++) {
		struct meta_lease *l = &x->l[i];
		struct meta_lease_row row;
		int rc = lease_row_read(c, l->name, &row);
		if (rc)
			return rc;
		l->epoch = 0;
		l->expires_in_ms = 0;
		l->holder = row.found ? row.holder : -1;
		enum meta_lease_action act = meta_lease_decide(&row, x->self, l->release, now);
		switch (act) {
		case META_LEASE_KEEP:
			continue;
		case META_LEASE_RELEASE:
			l->holder = -1;
			rc = lease_row_write(c, l->name, -1, 0, row.epoch, 0);
			break;
		case META_LEASE_RENEW:
		case META_LEASE_TAKE: {
			int64_t epoch = row.epoch + (act == META_LEASE_TAKE);
			rc = lease_row_write(c, l->name, x->self->node_id, x->self->incarnation, epoch,
					     now + x->lease_ms);
			l->epoch = epoch;
			l->holder = x->self->node_id;
			l->expires_in_ms = x->lease_ms;
			break;
		}
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int sq_leases_sync(struct meta *m, const struct meta_agent *self, int64_t lease_ms,
			  struct meta_lease *leases, size_t n)
{
	int rc = meta_leases_check(leases, n);
	if (rc || n == 0)
		return rc;
	struct leases_txn x = { self, lease_ms, leases, n };
	rc = sq_txn(&sq_of(m)->cluster, TXN_WRITE, leases_sync_body, &x);
	if (rc)
		meta_leases_clear(leases, n);
	return rc;
}

/* Inside a write transaction: whether group's lease is at epoch (epoch
 * above 0), or free or self's (epoch 0). */
static int group_fence_check(struct sq_conn *c, const char *group, const struct meta_agent *self,
			     int64_t epoch, bool *ok)
{
	char name[META_LEASE_NAME_BYTES];
	struct meta_lease_row row;
	*ok = false;
	if (!meta_lease_group_name(group, name))
		return SL_EINVAL;
	int rc = lease_row_read(c, name, &row);
	if (!rc)
		*ok = epoch > 0 ? row.found && row.epoch == epoch
				: meta_lease_free_or_self(&row, self, clock_wall_ms());
	return rc;
}

struct fenced_commit_txn {
	const struct meta_offset_commit *rows;
	const int64_t *epochs;
	size_t n;
	bool *refused;
};

static int offset_commit_fenced_body(struct sq_conn *c, void *arg)
{
	struct fenced_commit_txn *x = arg;
	/* Rows of one group are checked once per run of them. */
	for (size_t i = 0, run; i < x->n; i += run) {
		run = meta_offset_fence_run(x->rows, x->epochs, x->n, i);
		bool ok = true;
		int rc = 0;
		if (x->epochs[i] > 0 && x->rows[i].group_id)
			rc = group_fence_check(c, x->rows[i].group_id, NULL, x->epochs[i], &ok);
		for (size_t k = i; k < i + run; k++)
			x->refused[k] = !ok;
		if (!rc && ok) {
			struct offset_commit_txn one = { &x->rows[i], run };
			rc = offset_commit_body(c, &one);
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int sq_offset_commit_fenced(struct meta *m, const struct meta_offset_commit *rows,
				   const int64_t *epochs, size_t n, bool *refused)
{
	if (n == 0)
		return 0;
	struct fenced_commit_txn x = { rows, epochs, n, refused };
	return sq_txn(&sq_of(m)->offsets, TXN_WRITE, offset_commit_fenced_body, &x);
}

struct fenced_delete_txn {
	struct delete_offsets_txn del;
	const struct meta_agent *self;
	int64_t epoch;
};

static int group_delete_fenced_body(struct sq_conn *c, void *arg)
{
	struct fenced_delete_txn *x = arg;
	bool ok;
	int rc = group_fence_check(c, x->del.group_id, x->self, x->epoch, &ok);
	if (!rc && !ok)
		rc = SL_EBUSY;
	return rc ? rc : group_delete_offsets_body(c, &x->del);
}

static int sq_group_delete_offsets_fenced(struct meta *m, const char *group_id,
					  const struct meta_agent *self, int64_t epoch,
					  const int64_t *tids, const int32_t *partitions, size_t n,
					  int64_t *deleted)
{
	struct fenced_delete_txn x = { { group_id, tids, partitions, n, 0 }, self, epoch };
	int rc = sq_txn(&sq_of(m)->offsets, TXN_WRITE, group_delete_fenced_body, &x);
	if (!rc && deleted)
		*deleted = x.del.count;
	return rc;
}

struct forget_txn {
	const char *group_id;
	const struct meta_agent *self;
	int64_t epoch;
};

static int group_forget_body(struct sq_conn *c, void *arg)
{
	struct forget_txn *x = arg;
	if (x->self) {
		bool ok;
		int rc = group_fence_check(c, x->group_id, x->self, x->epoch, &ok);
		if (rc || !ok)
			return rc ? rc : SL_EBUSY;
	}
	sqlite3_stmt *st = sq_stmt(c, ST_GROUP_FORGET);
	sqlite3_bind_text(st, 1, x->group_id, -1, SQLITE_STATIC);
	return sq_exec_stmt(c, st, "deleting a forgotten group's membership");
}

static int sq_group_forget(struct meta *m, const char *group_id, const struct meta_agent *self,
			   int64_t epoch)
{
	struct forget_txn x = { group_id, self, epoch };
	return sq_txn(&sq_of(m)->offsets, TXN_WRITE, group_forget_body, &x);
}

struct states_expire_txn {
	int64_t before_ms;
	int64_t deleted;
};

static int group_states_expire_body(struct sq_conn *c, void *arg)
{
	struct states_expire_txn *x = arg;
	sqlite3_stmt *st = sq_stmt(c, ST_GROUP_STATES_EXPIRE);
	sqlite3_bind_int64(st, 1, x->before_ms);
	int rc = sq_exec_stmt(c, st, "deleting abandoned groups' membership");
	x->deleted = rc ? 0 : sqlite3_changes(c->db);
	return rc;
}

static int sq_group_states_expire(struct meta *m, int64_t idle_ms, int64_t *deleted)
{
	struct states_expire_txn x = { clock_wall_ms() - idle_ms, 0 };
	int rc = sq_txn(&sq_of(m)->offsets, TXN_WRITE, group_states_expire_body, &x);
	if (!rc)
		*deleted = x.deleted;
	return rc;
}

/* ---- consumer groups' membership (group_state) ---- */

struct group_state_txn {
	const struct meta_group_state *g;
	int64_t epoch;
};

static int group_state_store_body(struct sq_conn *c, void *arg)
{
	struct group_state_txn *x = arg;
	const struct meta_group_state *g = x->g;
	bool ok = true;
	int rc = x->epoch > 0 ? group_fence_check(c, g->group_id, NULL, x->epoch, &ok) : 0;
	if (!rc && !ok)
		rc = SL_EBUSY;
	if (rc)
		return rc;
	sqlite3_stmt *st = sq_stmt(c, ST_GROUP_STATE_UPSERT);
	sqlite3_bind_text(st, 1, g->group_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, g->generation);
	sqlite3_bind_text(st, 3, g->protocol_type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, g->protocol_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, g->leader_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob64(st, 6, g->members ? (const void *)g->members : "", g->members_len,
			    SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, clock_wall_ms());
	return sq_exec_stmt(c, st, "storing a group's membership");
}

static int sq_group_state_store(struct meta *m, const struct meta_group_state *g, int64_t epoch)
{
	struct group_state_txn x = { g, epoch };
	return sq_txn(&sq_of(m)->offsets, TXN_WRITE, group_state_store_body, &x);
}

static char *column_dup(sqlite3_stmt *st, int col)
{
	const char *t = (const char *)sqlite3_column_text(st, col);
	return t ? strdup(t) : NULL;
}

static int sq_group_state_load(struct meta *m, const char *group_id,
			       struct meta_group_state **out, size_t *n)
{
	struct sq_conn *c = &sq_of(m)->offsets;
	struct meta_group_state *v = NULL;
	size_t count = 0, cap = 0;
	int rc = 0, step;
	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st = sq_stmt(c, group_id ? ST_GROUP_STATE_GET : ST_GROUP_STATE_LIST);
	if (group_id)
		sqlite3_bind_text(st, 1, group_id, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (array_grow(&v, &cap, count, sizeof *v, 4) != 0) {
			rc = SL_ENOMEM;
			break;
		}
		struct meta_group_state *g = &v[count++];
		memset(g, 0, sizeof *g);
		g->group_id = column_dup(st, 0);
		g->generation = sqlite3_column_int(st, 1);
		g->protocol_type = column_dup(st, 2);
		g->protocol_name = column_dup(st, 3);
		g->leader_id = column_dup(st, 4);
		g->members_len = (size_t)sqlite3_column_bytes(st, 5);
		g->members = malloc(g->members_len ? g->members_len : 1);
		if (g->members && g->members_len)
			memcpy(g->members, sqlite3_column_blob(st, 5), g->members_len);
		if (!g->group_id || !g->members) {
			rc = SL_ENOMEM;
			break;
		}
	}
	if (!rc && step != SQLITE_DONE)
		rc = sq_fail(c, "reading groups' membership");
	sqlite3_reset(st);
	pthread_mutex_unlock(&c->lock);
	if (rc) {
		meta_group_states_free(v, count);
		return rc;
	}
	*out = v;
	*n = count;
	return 0;
}

/* ---- the transaction coordinator's records (meta.h) ---- */

struct txn_write {
	const char *id;
	const struct txn_record *r; /* NULL: delete */
	int64_t coord_epoch;
	int64_t version;            /* in: expected; out: written */
};

/* The id's stored version is the expected one, and its lease (with a
 * coordinator epoch) at that epoch: else SL_EBUSY. */
static int txn_write_check(struct sq_conn *c, const struct txn_write *x)
{
	int64_t stored = 0;
	int rc = txn_step_one(c, txn_stmt(c, ST_TXN_VERSION, x->id, 0), &stored,
			      "reading a transaction's version");
	if (rc < 0)
		return rc;
	if (stored != x->version)
		return SL_EBUSY;
	rc = 0;
	if (x->coord_epoch > 0) {
		char name[META_LEASE_NAME_BYTES];
		struct meta_lease_row row;
		if (!meta_lease_txn_name(x->id, name))
			return SL_EINVAL;
		rc = lease_row_read(c, name, &row);
		if (!rc && !(row.found && row.epoch == x->coord_epoch))
			rc = SL_EBUSY;
	}
	return rc;
}

static int txn_write_body(struct sq_conn *c, void *arg)
{
	struct txn_write *x = arg;
	const struct txn_record *r = x->r;
	int rc = txn_write_check(c, x);
	static const enum stmt clear[] = { ST_TXN_PARTS_CLEAR, ST_TXN_GROUPS_CLEAR,
					   ST_TXN_DELETE, ST_TXN_OFFSETS_DROP };
	/* A persist replaces partitions and groups; a delete takes the row
	 * and its pending offsets too. */
	for (size_t i = 0; !rc && i < (r ? 2 : 4); i++)
		rc = txn_exec(c, txn_stmt(c, clear[i], x->id, 0), "clearing a transaction");
	if (rc || !r)
		return rc;
	sqlite3_stmt *st = txn_stmt(c, ST_TXN_UPSERT, x->id, 11, r->producer_id,
				    r->last_producer_id, (int64_t)r->producer_epoch,
				    (int64_t)r->last_producer_epoch, (int64_t)r->timeout_ms,
				    (int64_t)r->state, r->txn_seq, r->start_ms, r->update_ms,
				    x->coord_epoch, x->version + 1);
	rc = txn_exec(c, st, "writing a transaction");
	for (int32_t i = 0; !rc && i < r->partition_count; i++)
		rc = txn_exec(c, txn_stmt(c, ST_TXN_PART_INSERT, x->id, 2, r->partitions[i].tid,
					  (int64_t)r->partitions[i].partition),
			      "writing a transaction's partitions");
	for (int32_t i = 0; !rc && i < r->group_count; i++) {
		st = txn_stmt(c, ST_TXN_GROUP_INSERT, x->id, 0);
		sqlite3_bind_text(st, 2, r->groups[i], -1, SQLITE_STATIC);
		rc = txn_exec(c, st, "writing a transaction's groups");
	}
	return rc;
}

static int sq_txn_persist(struct meta *m, const char *id, const struct txn_record *r,
			  int64_t coord_epoch, int64_t *version)
{
	int rc = meta_txn_record_check(id, r);
	if (rc || !r)
		return rc ? rc : SL_EINVAL;
	struct txn_write x = { id, r, coord_epoch, *version };
	rc = sq_txn(&sq_of(m)->offsets, TXN_WRITE, txn_write_body, &x);
	if (!rc)
		*version = x.version + 1;
	return rc;
}

static int sq_txn_delete(struct meta *m, const char *id, int64_t coord_epoch, int64_t version)
{
	int rc = meta_txn_record_check(id, NULL);
	if (!rc && version < 1)
		rc = SL_EINVAL;
	if (rc)
		return rc;
	struct txn_write x = { id, NULL, coord_epoch, version };
	return sq_txn(&sq_of(m)->offsets, TXN_WRITE, txn_write_body, &x);
}

struct txn_load_txn {
	const char *id;             /* NULL: every id */
	meta_txn_want_fn *want;
	void *arg;
	struct meta_txn_row *rows;
	size_t n, cap;
};

static int txn_load_body(struct sq_conn *c, void *arg)
{
	struct txn_load_txn *x = arg;
	meta_txn_rows_free(x->rows, x->n); /* a rerun starts afresh */
	x->rows = NULL;
	x->n = x->cap = 0;
	int rc = 0, step;
	sqlite3_stmt *st = x->id ? txn_stmt(c, ST_TXN_LIST_ONE, x->id, 0) : sq_stmt(c, ST_TXN_LIST);
	while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		if (x->want && !x->want(x->arg, id))
			continue;
		struct txn_record r = {
			.producer_id = sqlite3_column_int64(st, 1),
			.last_producer_id = sqlite3_column_int64(st, 2),
			.producer_epoch = (int16_t)sqlite3_column_int(st, 3),
			.last_producer_epoch = (int16_t)sqlite3_column_int(st, 4),
			.timeout_ms = sqlite3_column_int(st, 5),
			.state = (enum txn_state)sqlite3_column_int(st, 6),
			.txn_seq = sqlite3_column_int64(st, 7),
			.start_ms = sqlite3_column_int64(st, 8),
			.update_ms = sqlite3_column_int64(st, 9),
		};
		rc = meta_txn_row_push(&x->rows, &x->n, &x->cap, id, &r, sqlite3_column_int64(st, 11),
				       sqlite3_column_int64(st, 10));
	}
	if (!rc && step != SQLITE_DONE)
		rc = sq_fail(c, "listing transactions");
	sqlite3_reset(st);
	st = x->id ? txn_stmt(c, ST_TXN_PART_LIST_ONE, x->id, 0) : sq_stmt(c, ST_TXN_PART_LIST);
	while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
		struct meta_txn_row *row = meta_txn_row_find(
			x->rows, x->n, (const char *)sqlite3_column_text(st, 0));
		if (row)
			rc = meta_txn_row_add_partition(row, sqlite3_column_int64(st, 1),
							sqlite3_column_int(st, 2));
	}
	if (!rc && step != SQLITE_DONE)
		rc = sq_fail(c, "listing transactions' partitions");
	sqlite3_reset(st);
	st = x->id ? txn_stmt(c, ST_TXN_GROUP_LIST_ONE, x->id, 0) : sq_stmt(c, ST_TXN_GROUP_LIST);
	while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
		struct meta_txn_row *row = meta_txn_row_find(
			x->rows, x->n, (const char *)sqlite3_column_text(st, 0));
		if (row)
			rc = meta_txn_row_add_group(row, (const char *)sqlite3_column_text(st, 1));
	}
	if (!rc && step != SQLITE_DONE)
		rc = sq_fail(c, "listing transactions' groups");
	sqlite3_reset(st);
	return rc;
}

static int sq_txn_load(struct meta *m, const char *id, meta_txn_want_fn *want, void *arg,
		       struct meta_txn_row **out, size_t *n)
{
	if (id && meta_txn_record_check(id, NULL))
		return SL_EINVAL;
	struct txn_load_txn x = { id, want, arg, NULL, 0, 0 };
	int rc = sq_txn(&sq_of(m)->offsets, TXN_READ, txn_load_body, &x);
	if (rc) {
		meta_txn_rows_free(x.rows, x.n);
		return rc;
	}
	*out = x.rows;
	*n = x.n;
	return 0;
}

static int txn_open_list_body(struct sq_conn *c, void *arg)
{
	struct txn_load_txn *x = arg;
	meta_txn_rows_free(x->rows, x->n);
	x->rows = NULL;
	x->n = x->cap = 0;
	int rc = 0, step;
	sqlite3_stmt *st = sq_stmt(c, ST_TXN_OPEN_LIST);
	while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
		struct txn_record r = { .state = (enum txn_state)sqlite3_column_int(st, 1) };
		rc = meta_txn_row_push(&x->rows, &x->n, &x->cap,
				       (const char *)sqlite3_column_text(st, 0), &r, 0, 0);
	}
	if (!rc && step != SQLITE_DONE)
		rc = sq_fail(c, "listing open transactions");
	sqlite3_reset(st);
	return rc;
}

static int sq_txn_open_list(struct meta *m, struct meta_txn_row **out, size_t *n)
{
	struct txn_load_txn x = { 0 };
	int rc = sq_txn(&sq_of(m)->offsets, TXN_READ, txn_open_list_body, &x);
	if (rc) {
		meta_txn_rows_free(x.rows, x.n);
		return rc;
	}
	*out = x.rows;
	*n = x.n;
	return 0;
}

struct txn_offsets_txn {
	const char *id;
	int64_t producer_id;
	int16_t producer_epoch;
	const struct meta_offset_commit *rows;
	size_t n;
};

static int txn_offset_commit_body(struct sq_conn *c, void *arg)
{
	struct txn_offsets_txn *x = arg;
	struct meta_txn_head h;
	int rc = txn_head_read(c, x->id, &h);
	if (rc)
		return rc;
	rc = meta_txn_offsets_verdict(&h, x->producer_id, x->producer_epoch);
	if (rc)
		return rc;
	sqlite3_stmt *st = txn_stmt(c, ST_TXN_GROUP_GET, x->id, 0);
	sqlite3_bind_text(st, 2, x->rows[0].group_id, -1, SQLITE_STATIC);
	rc = txn_step_one(c, st, NULL, "reading a transaction's groups");
	if (rc <= 0)
		return rc < 0 ? rc : SL_EBUSY;
	int64_t seq;
	rc = offset_seq_next(c, &seq);
	for (size_t i = 0; !rc && i < x->n; i++) {
		const struct meta_offset_commit *r = &x->rows[i];
		st = txn_stmt(c, ST_TXN_OFFSET_UPSERT, r->group_id, 3, r->tid, (int64_t)r->partition,
			      x->producer_id);
		sqlite3_bind_text(st, 5, x->id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, r->committed_offset);
		sqlite3_bind_int(st, 7, r->leader_epoch);
		if (r->metadata)
			sqlite3_bind_text(st, 8, r->metadata, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 8);
		sqlite3_bind_int64(st, 9, r->commit_timestamp_ms);
		sqlite3_bind_int64(st, 10, seq);
		rc = txn_exec(c, st, "storing a transactional offset");
	}
	return rc;
}

static int sq_txn_offset_commit(struct meta *m, const char *id, int64_t producer_id,
				int16_t producer_epoch, const struct meta_offset_commit *rows,
				size_t n)
{
	int rc = meta_txn_offsets_check(id, rows, n);
	if (rc)
		return rc;
	struct txn_offsets_txn x = { id, producer_id, producer_epoch, rows, n };
	return sq_txn(&sq_of(m)->offsets, TXN_WRITE, txn_offset_commit_body, &x);
}

struct txn_settle_txn {
	const char *id;
	int64_t txn_seq;
	bool commit;
};

static int txn_settle_body(struct sq_conn *c, void *arg)
{
	struct txn_settle_txn *x = arg;
	struct meta_txn_head h;
	int rc = txn_head_read(c, x->id, &h);
	if (rc || !h.found || h.txn_seq != x->txn_seq ||
	    h.state != (x->commit ? TXN_PREPARE_COMMIT : TXN_PREPARE_ABORT))
		return rc;
	rc = txn_step_one(c, txn_stmt(c, ST_TXN_PART_LEFT, x->id, 0), NULL,
			  "reading a transaction's partitions");
	if (rc == 0)
		rc = txn_settle_groups(c, x->id, x->commit);
	return rc < 0 ? rc : 0;
}

static int sq_txn_settle(struct meta *m, const char *id, int64_t txn_seq, bool commit)
{
	int rc = meta_txn_record_check(id, NULL);
	if (rc)
		return rc;
	struct txn_settle_txn x = { id, txn_seq, commit };
	return sq_txn(&sq_of(m)->offsets, TXN_WRITE, txn_settle_body, &x);
}

/* ---- aborted transactions (the read path) ---- */

static int sq_aborted_txns(struct meta *m, int64_t tid, int32_t partition, int64_t from,
			   int64_t to, struct meta_aborted_txn *out, size_t cap, size_t *n)
{
	struct sq_conn *c = &sq_of(m)->read;
	int rc = 0, step;
	*n = 0;
	if (cap == 0 || from >= to)
		return 0;
	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st = txn_stmt(c, ST_ABORTED_RANGE, NULL, 5, tid, (int64_t)partition, from, to,
				    (int64_t)cap);
	while ((step = sqlite3_step(st)) == SQLITE_ROW && *n < cap)
		out[(*n)++] = (struct meta_aborted_txn){ sqlite3_column_int64(st, 0),
							 sqlite3_column_int64(st, 1),
							 sqlite3_column_int64(st, 2) };
	if (step != SQLITE_DONE && step != SQLITE_ROW)
		rc = sq_fail(c, "reading aborted transactions");
	sqlite3_reset(st);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static int sq_aborted_txns_since(struct meta *m, int64_t after_seq,
				 struct meta_aborted_feed *out, size_t cap, size_t *n)
{
	struct sq_conn *c = &sq_of(m)->cluster;
	int rc = 0, step;
	*n = 0;
	if (cap == 0)
		return 0;
	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st = txn_stmt(c, ST_ABORTED_SINCE, NULL, 2, after_seq, (int64_t)cap);
	while ((step = sqlite3_step(st)) == SQLITE_ROW && *n < cap)
		out[(*n)++] = (struct meta_aborted_feed){
			.seq = sqlite3_column_int64(st, 0),
			.tid = sqlite3_column_int64(st, 1),
			.partition = sqlite3_column_int(st, 2),
			.txn = { sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 4),
				 sqlite3_column_int64(st, 5) },
		};
	if (step != SQLITE_DONE && step != SQLITE_ROW)
		rc = sq_fail(c, "reading the aborted transactions feed");
	sqlite3_reset(st);
	pthread_mutex_unlock(&c->lock);
	return rc;
}
