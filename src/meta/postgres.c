/* postgres.c — the shared metadata store: PostgreSQL behind meta.h, so
 * several agents can share one catalog (issue 12).
 *
 * Owns the PostgreSQL schema (docs/metadata-schema.md: the SQLite
 * backend's tables in PostgreSQL types), its versioned migrations and
 * thirteen libpq connections, one per kind of caller as in sqlite.c: "loop"
 * (the start's catalog read, tools), "read" (the read path's lookups:
 * batches, ListOffsets, committed offsets, SASL logins' credentials,
 * from pool threads), "commit" (meta_commit_objects on the
 * writer's pool thread), "offsets" (group offset writes; four, one per
 * lane: meta_offsets_lanes), "trim"
 * (retention, DeleteRecords, dead-object collection), "admin" (topic
 * changes, producer id blocks), "cluster" (the registry), "leases" (lease
 * syncs), "catalog" (the registry's catalog poll; these two connected on
 * first use) and "listen" (LISTEN for other agents' commits and catalog
 * changes, which every commit and catalog change NOTIFYs in its
 * transaction; read on the loop with libpq's non-blocking calls). Each
 * is guarded by a mutex; a caller that breaks the thread model is
 * serialized, not corrupted.
 *
 * Every statement is prepared once per connection (on first use, then
 * PQsendQueryPrepared, alone or in a pipeline; PostgreSQL would
 * otherwise plan each call again) with text parameters. Every transaction runs through pg_txn, shaped as
 * sqlite.c's sq_txn (BEGIN, body, COMMIT, ROLLBACK on any error) and rerun
 * a bounded number of times after a serialization failure or deadlock
 * (SQLSTATE 40001, 40P01). Isolation is READ COMMITTED: what must not race
 * takes row locks. A commit takes the gc fence row FOR SHARE (gc's raise
 * updates it, so the two serialize as in SQLite), then the rows of every
 * partition it writes FOR UPDATE in (tid, partition) order (two agents
 * committing to the same partitions queue, never deadlock), reads the
 * producer_state rows of its idempotent batches (a statement of its own,
 * after the locks: its snapshot holds every earlier commit to those
 * partitions), judges those batches and assigns the offsets from the
 * high watermarks it read, and writes object, batch, high-watermark and
 * producer-state rows in one statement, then NOTIFYs them: two round
 * trips per group of objects, whatever their batch count, as libpq
 * pipelines (pg_pipe_run): BEGIN, fence, locks and producer states in
 * the first; write, NOTIFY and COMMIT in the second.
 * Transactional batches and markers add statements of their own (their
 * id's row FOR SHARE, its partitions, the partition's open transactions;
 * docs/transactions.md), as do batches of a producer with a transaction
 * open in their partition; other batches add none.
 *
 * Connections are non-blocking: every answer is awaited in poll() with
 * the connection's deadline, or the call's (pg_txn_within, pg_txn_renew:
 * heartbeats, lease syncs and the catalog poll are bounded as a whole)
 * (pg_await; limits.h SL_META_PG_*), so a
 * server that stops answering cannot hold a caller for ever; past it
 * the connection is shut down and counts as broken. Connect adds TCP
 * keepalives, tcp_user_timeout, statement_timeout and
 * idle_in_transaction_session_timeout, unless the URL sets them.
 * A connection found broken is reset (PQresetStart) before its next
 * call, at most once per backoff while the server cannot be reached
 * (calls between attempts fail at once), the outage logged once each
 * way; the call in flight fails with SL_EMETA, unless it was a BEGIN
 * (nothing ran: it runs again on the fresh connection). Connects are
 * non-blocking too (conn_poll), bounded by connect_timeout or, inside a
 * call bounded as a whole, by the call's end: a heartbeat's reconnect
 * counts against its bound.
 *
 * Nothing is looked up on the event loop while it serves: fetches take
 * recent rows from the agent's batch index (storage/batch_index.c) and
 * the rest from batches_from_many on the "read" connection in a pool job
 * (storage/reader.c); ListOffsets' lookups, committed offsets and the
 * group list are read on the "read" connection from pool jobs too. The
 * "loop" connection serves the start (the catalog) and tools. */
#include "meta/meta.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/log.h"
#include "meta/meta_int.h"

/* The schema_version table's version: migrations[v - 1] takes a database
 * from v - 1 to v. Version 1 is the SQLite schema's version 3, 2 its
 * version 4, 3 its version 5, 4 its version 6, 5 its version 7, 6 its
 * version 8, 7 its version 9, 8 its version 10, 9 its version 11, 10 its
 * version 12, 11 its version 13, 12 its version 14, 13 its version 15,
 * 14 its version 16. */
#define PG_SCHEMA_VERSION 14
/* pg_advisory_xact_lock key of the migrations ("sluice" in ASCII): agents
 * starting at once apply them one after the other. */
#define PG_MIGRATION_LOCK_KEY INT64_C(0x736c75696365)
/* Runs of a transaction body that met a serialization failure or a
 * deadlock before the call gives up (SL_EMETA). */
#define PG_TXN_TRIES 8
/* Rows per page of the retention scan. */
#define PG_TRIM_SCAN_PAGE 1000

/* A body's or statement's "run the transaction again": never returned
 * from this file's meta methods. */
#define PG_ERETRY (-1000)
/* A pipelined body's BEGIN found the connection closed (a restart while
 * it was idle): nothing ran, it runs again on a fresh connection. */
#define PG_ERECONNECT (-1001)

/* Change notifications (LISTEN/NOTIFY): commits carry their batch rows,
 * catalog changes the new catalog version, log start moves the
 * partition's new log start. PostgreSQL refuses a payload
 * of 8000 bytes or more: a commit's rows are split below that. */
#define PG_CHANNEL_COMMIT "sluice_commit"
#define PG_CHANNEL_CATALOG "sluice_catalog"
#define PG_CHANNEL_LOG_START "sluice_log_start"
/* A cleaning pass replaced a partition's rows (meta_compact_swap):
 * listeners forget the rows they hold in memory. Same payload as a log
 * start's. */
#define PG_CHANNEL_REWRITE "sluice_rewrite"
#define PG_NOTIFY_PAYLOAD_MAX 7900
/* The most rows one commit payload holds (each takes 16 bytes at least). */
#define PG_NOTICE_ROWS_MAX (PG_NOTIFY_PAYLOAD_MAX / 16)
/* Offsets connections (meta_offsets_lanes): a group's calls run on the
 * lane of its id, so a write stuck on one group's rows (a lock another
 * agent's stopped backend holds) holds up a quarter of the groups, not
 * all. Transactional ids' calls run on the lane of the id. */
#define PG_OFFSETS_LANES 4
static const char *const offsets_roles[PG_OFFSETS_LANES] = {
	"offsets/0", "offsets/1", "offsets/2", "offsets/3",
};

/* Reconnecting a broken connection: the first attempt at once, then
 * after this, doubling up to the cap (a PostgreSQL restart is back
 * within the cap; an outage costs one attempt per connection per cap). */
#define PG_RECONNECT_BACKOFF_MIN_MS 100
#define PG_RECONNECT_BACKOFF_MAX_MS 2000

static const char *const migrations[PG_SCHEMA_VERSION] = {
	/* 1: the SQLite schema version 3. Identity columns are never reused,
	 * as SQLite's AUTOINCREMENT. No foreign keys, as there. */
	"CREATE TABLE schema_version (version integer NOT NULL);"
	"INSERT INTO schema_version (version) VALUES (0);"
	"CREATE TABLE topics ("
	" tid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	" name text UNIQUE NOT NULL,"
	" uuid uuid UNIQUE NOT NULL,"
	" partition_count integer NOT NULL,"
	" created_ms bigint NOT NULL);"
	"CREATE TABLE topic_configs ("
	" tid bigint NOT NULL,"
	" name text NOT NULL,"
	" value text NOT NULL,"
	" PRIMARY KEY (tid, name));"
	"CREATE TABLE partitions ("
	" tid bigint NOT NULL,"
	" partition integer NOT NULL,"
	" log_start_offset bigint NOT NULL,"
	" high_watermark bigint NOT NULL,"
	" PRIMARY KEY (tid, partition));"
	"CREATE TABLE objects ("
	" oid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	" key text UNIQUE NOT NULL,"
	" size bigint NOT NULL,"
	" live_bytes bigint NOT NULL,"
	" state text NOT NULL CHECK (state IN ('live', 'deleting')),"
	" created_ms bigint NOT NULL);"
	"CREATE INDEX objects_dead ON objects (oid) WHERE live_bytes <= 0;"
	"CREATE TABLE batches ("
	" tid bigint NOT NULL,"
	" partition integer NOT NULL,"
	" base_offset bigint NOT NULL,"
	" last_offset bigint NOT NULL,"
	" oid bigint NOT NULL,"
	" byte_offset bigint NOT NULL,"
	" length bigint NOT NULL,"
	" record_count integer NOT NULL,"
	" max_timestamp bigint NOT NULL,"
	" producer_id bigint NOT NULL,"
	" producer_epoch integer NOT NULL,"
	" base_sequence integer NOT NULL,"
	" last_sequence integer NOT NULL,"
	" PRIMARY KEY (tid, partition, last_offset));"
	"CREATE TABLE group_offsets ("
	" group_id text NOT NULL,"
	" tid bigint NOT NULL,"
	" partition integer NOT NULL,"
	" committed_offset bigint NOT NULL,"
	" leader_epoch integer NOT NULL,"
	" metadata text,"
	" commit_timestamp_ms bigint NOT NULL,"
	" PRIMARY KEY (group_id, tid, partition));"
	"CREATE TABLE producer_ids ("
	" id integer PRIMARY KEY CHECK (id = 1),"
	" next_producer_id bigint NOT NULL);"
	"INSERT INTO producer_ids (id, next_producer_id) VALUES (1, 0);"
	"CREATE TABLE agents ("
	" agent_id integer PRIMARY KEY,"
	" host text NOT NULL,"
	" port integer NOT NULL,"
	" heartbeat_ms bigint NOT NULL);"
	"CREATE TABLE gc_fence ("
	" id integer PRIMARY KEY CHECK (id = 1),"
	" fence_ms bigint NOT NULL);"
	"INSERT INTO gc_fence (id, fence_ms) VALUES (1, 0);",
	/* 2: the agent registry (SQLite's version 4): agents replaces the
	 * placeholder nothing wrote; cluster holds the agents epoch and the
	 * catalog version. */
	"DROP TABLE agents;"
	"CREATE TABLE agents ("
	" node_id integer PRIMARY KEY,"
	" incarnation bigint NOT NULL,"
	" endpoints text NOT NULL,"
	" zone text NOT NULL,"
	" start_ms bigint NOT NULL,"
	" heartbeat_ms bigint NOT NULL);"
	"CREATE TABLE cluster ("
	" name text PRIMARY KEY,"
	" value bigint NOT NULL);"
	"INSERT INTO cluster (name, value) VALUES ('agents_epoch', 0), ('catalog_version', 0);",
	/* 3: SASL/SCRAM credentials (SQLite's version 5). */
	"CREATE TABLE scram_credentials ("
	" name text NOT NULL,"
	" mechanism smallint NOT NULL,"
	" salt bytea NOT NULL,"
	" iterations integer NOT NULL,"
	" stored_key bytea NOT NULL,"
	" server_key bytea NOT NULL,"
	" PRIMARY KEY (name, mechanism));",
	/* 4: fenced leases (SQLite's version 6): holder -1 is a released
	 * lease; epoch only rises. */
	"CREATE TABLE leases ("
	" name text PRIMARY KEY,"
	" holder integer NOT NULL,"
	" incarnation bigint NOT NULL,"
	" epoch bigint NOT NULL,"
	" expires_ms bigint NOT NULL);",
	/* 5: idempotent producers' state per partition (SQLite's version 7),
	 * filled from the batch rows: each producer's newest batches (up to
	 * 5 of its newest epoch), as the agents seeded it before. */
	"CREATE TABLE producer_state ("
	" tid bigint NOT NULL,"
	" partition integer NOT NULL,"
	" producer_id bigint NOT NULL,"
	" producer_epoch integer NOT NULL,"
	" batches text NOT NULL,"
	" updated_ms bigint NOT NULL,"
	" PRIMARY KEY (tid, partition, producer_id));"
	"INSERT INTO producer_state (tid, partition, producer_id, producer_epoch, batches, updated_ms)"
	" SELECT tid, partition, producer_id, max(producer_epoch),"
	"  string_agg(base_sequence || ':' || last_sequence || ':' || base_offset, ' '"
	"   ORDER BY last_offset),"
	"  (extract(epoch FROM now()) * 1000)::bigint"
	" FROM (SELECT b.*, row_number() OVER w AS rn, first_value(producer_epoch) OVER w AS newest"
	"  FROM batches AS b WHERE producer_id >= 0 AND base_sequence >= 0"
	"  WINDOW w AS (PARTITION BY tid, partition, producer_id ORDER BY last_offset DESC)) AS r"
	" WHERE rn <= 5 AND producer_epoch = newest"
	" GROUP BY tid, partition, producer_id;",
	/* 6: a batch row may hold several batches (SQLite's version 8). */
	"ALTER TABLE batches ADD COLUMN IF NOT EXISTS spans text;",
	/* 7: ACLs (SQLite's version 9). Written to run again over itself
	 * (test_meta's upgrade tests rewind the version with later tables
	 * in place). */
	"CREATE TABLE IF NOT EXISTS acls ("
	" resource_type smallint NOT NULL,"
	" resource_name text NOT NULL,"
	" pattern_type smallint NOT NULL,"
	" principal text NOT NULL,"
	" host text NOT NULL,"
	" operation smallint NOT NULL,"
	" permission smallint NOT NULL,"
	" PRIMARY KEY (resource_type, resource_name, pattern_type, principal, host,"
	" operation, permission));"
	"INSERT INTO cluster (name, value) VALUES ('acl_version', 0) ON CONFLICT DO NOTHING;",
	/* 8: transactions (SQLite's version 10; docs/transactions.md). Also
	 * written to run again over itself. commit_seq comes from a
	 * sequence here (no row every offset commit of every agent would
	 * queue on); aborted_seq stays a row, locked by the commits that
	 * record an abort, so the feed's order is their commit order. */
	"ALTER TABLE partitions ADD COLUMN IF NOT EXISTS first_unstable_offset bigint NOT NULL"
	" DEFAULT -1;"
	"ALTER TABLE batches ADD COLUMN IF NOT EXISTS attributes smallint NOT NULL DEFAULT 0;"
	"ALTER TABLE group_offsets ADD COLUMN IF NOT EXISTS commit_seq bigint NOT NULL DEFAULT 0;"
	"CREATE SEQUENCE IF NOT EXISTS offset_commit_seq;"
	"CREATE TABLE IF NOT EXISTS transactions ("
	" transactional_id text PRIMARY KEY,"
	" producer_id bigint NOT NULL UNIQUE,"
	" last_producer_id bigint NOT NULL,"
	" producer_epoch integer NOT NULL,"
	" last_producer_epoch integer NOT NULL,"
	" timeout_ms integer NOT NULL,"
	" state smallint NOT NULL,"
	" txn_seq bigint NOT NULL,"
	" start_ms bigint NOT NULL,"
	" update_ms bigint NOT NULL,"
	" coord_epoch bigint NOT NULL,"
	" version bigint NOT NULL);"
	"CREATE TABLE IF NOT EXISTS txn_partitions ("
	" transactional_id text NOT NULL,"
	" tid bigint NOT NULL,"
	" partition integer NOT NULL,"
	" PRIMARY KEY (transactional_id, tid, partition));"
	"CREATE TABLE IF NOT EXISTS txn_groups ("
	" transactional_id text NOT NULL,"
	" group_id text NOT NULL,"
	" PRIMARY KEY (transactional_id, group_id));"
	"CREATE TABLE IF NOT EXISTS partition_txns ("
	" tid bigint NOT NULL,"
	" partition integer NOT NULL,"
	" producer_id bigint NOT NULL,"
	" producer_epoch integer NOT NULL,"
	" first_offset bigint NOT NULL,"
	" transactional_id text NOT NULL,"
	" PRIMARY KEY (tid, partition, producer_id));"
	"CREATE TABLE IF NOT EXISTS aborted_txns ("
	" tid bigint NOT NULL,"
	" partition integer NOT NULL,"
	" last_offset bigint NOT NULL,"
	" first_offset bigint NOT NULL,"
	" producer_id bigint NOT NULL,"
	" seq bigint NOT NULL,"
	" PRIMARY KEY (tid, partition, last_offset));"
	"CREATE INDEX IF NOT EXISTS aborted_txns_seq ON aborted_txns (seq);"
	"CREATE TABLE IF NOT EXISTS txn_offsets ("
	" group_id text NOT NULL,"
	" tid bigint NOT NULL,"
	" partition integer NOT NULL,"
	" producer_id bigint NOT NULL,"
	" transactional_id text NOT NULL,"
	" committed_offset bigint NOT NULL,"
	" leader_epoch integer NOT NULL,"
	" metadata text,"
	" commit_timestamp_ms bigint NOT NULL,"
	" commit_seq bigint NOT NULL,"
	" PRIMARY KEY (group_id, tid, partition, producer_id));"
	"CREATE INDEX IF NOT EXISTS txn_offsets_id ON txn_offsets (transactional_id);"
	"INSERT INTO cluster (name, value) VALUES ('aborted_seq', 0) ON CONFLICT DO NOTHING;",
	/* 9: manual replica assignments (SQLite's version 11), a row per
	 * assigned partition. */
	"CREATE TABLE IF NOT EXISTS partition_replicas ("
	" tid bigint NOT NULL,"
	" partition integer NOT NULL,"
	" replicas text NOT NULL,"
	" PRIMARY KEY (tid, partition));",
	/* 10: the catalog poll's change marker (SQLite's version 12): the
	 * id of the transaction that last wrote the row (CHANGE_SEQ_NEXT).
	 * Rows of before stay at 0: an agent's first poll reads every row. */
	"ALTER TABLE partitions ADD COLUMN IF NOT EXISTS change_seq bigint NOT NULL DEFAULT 0;"
	"CREATE INDEX IF NOT EXISTS partitions_change ON partitions (change_seq);",
	/* 11: consumer groups' membership (SQLite's version 13). */
	"CREATE TABLE IF NOT EXISTS group_state ("
	" group_id text PRIMARY KEY,"
	" generation integer NOT NULL,"
	" protocol_type text,"
	" protocol_name text,"
	" leader_id text,"
	" members bytea NOT NULL,"
	" updated_ms bigint NOT NULL);",
	/* 12: the compacted-topic cleaner's checkpoint (SQLite's version 14):
	 * offsets below it were cleaned (0: never). */
	"ALTER TABLE partitions ADD COLUMN IF NOT EXISTS clean_offset bigint NOT NULL DEFAULT 0;",
	/* 13: the coordinator epoch of a producer's last marker in the
	 * partition, -1 before one (SQLite's version 15). */
	"ALTER TABLE producer_state ADD COLUMN IF NOT EXISTS coordinator_epoch integer NOT NULL"
	" DEFAULT -1;",
	/* 14: aborted_txns keyed by producer id too, as one marker may
	 * record several (meta_marker_aborts; SQLite's version 16). */
	"ALTER TABLE aborted_txns DROP CONSTRAINT aborted_txns_pkey,"
	" ADD PRIMARY KEY (tid, partition, last_offset, producer_id);",
};

/* A partition row's change marker: the writing transaction's id (64
 * bits with its epoch, xid8: never wraps, survives restarts). Ids are
 * handed out in start order, not commit order, so a poll cannot page by
 * the highest it saw (a transaction with a lower id may commit later);
 * it pages by its snapshot's xmin (ST_SNAPSHOT_XMIN): every row not
 * visible to it was written by a transaction at or above that. */
#define CHANGE_SEQ_NEXT "pg_current_xact_id()::text::bigint"

enum stmt {
	ST_TOPIC_ID_BY_NAME,
	ST_TOPIC_INSERT,
	ST_TOPIC_COUNT,
	ST_TOPIC_PARTS_LOCK,
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
	ST_PARTITIONS_INSERT,
	ST_PARTITION_GET,
	ST_PARTITION_LIST,
	ST_PARTITION_LIST_SINCE,
	ST_SNAPSHOT_XMIN,
	ST_PARTITION_SET_LOG_START,
	ST_PARTITION_DELETE_TOPIC,
	ST_OBJECT_SUBTRACT_TOPIC,
	ST_OBJECTS_DEAD,
	ST_OBJECT_MARK_DELETING,
	ST_OBJECT_FORGET,
	ST_OBJECT_KNOWN,
	ST_GC_FENCE_SHARE,
	ST_GC_FENCE_RAISE,
	ST_COMMIT_LOCK,
	ST_COMMIT_WRITE,
	ST_BATCH_DELETE_TOPIC,
	ST_BATCHES_TRIM_SCAN,
	ST_BATCHES_LIVE_BYTES,
	ST_BATCHES_CHUNK_END,
	ST_OBJECT_SUBTRACT_BELOW,
	ST_BATCH_DELETE_BELOW,
	ST_BATCHES_FROM,
	ST_BATCHES_FROM_MANY,
	ST_OFFSET_FOR_TIMESTAMP,
	ST_MAX_TIMESTAMP,
	ST_CLEAN_BYTES,
	ST_PSTATE_READ,
	ST_PSTATE_DELETE_TOPIC,
	ST_PSTATE_EXPIRE,
	ST_PSTATE_MARKER,
	ST_PSTATE_DESCRIBE,
	ST_PRODUCER_IDS_ALLOC,
	ST_OFFSET_UPSERT,
	ST_OFFSET_FETCH,
	ST_TXN_OFFSETS_PENDING,
	ST_GROUP_LIST,
	ST_OFFSET_DELETE_GROUP,
	ST_GROUP_STATE_UPSERT,
	ST_GROUP_STATE_GET,
	ST_GROUP_STATE_LIST,
	ST_GROUP_STATE_DELETE,
	ST_GROUP_FORGET,
	ST_GROUP_STATES_EXPIRE,
	ST_OFFSET_DELETE_ONE,
	ST_OFFSET_DELETE_TOPIC,
	ST_CLOCK_MS,
	ST_EPOCH_LOCK,
	ST_EPOCH_RAISE,
	ST_AGENT_EXPIRE,
	ST_AGENT_STALE,
	ST_AGENT_IDS,
	ST_AGENT_INSERT,
	ST_AGENT_BEAT,
	ST_AGENT_RENEW,
	ST_AGENT_DELETE,
	ST_AGENT_FORGET,
	ST_AGENT_VIEW,
	ST_CATALOG_RAISE,
	ST_CATALOG_VERSION,
	ST_SCRAM_GET,
	ST_SCRAM_LIST,
	ST_SCRAM_UPSERT,
	ST_SCRAM_DELETE,
	ST_COMMIT_NOTIFY,
	ST_ACL_VERSION,
	ST_ACL_LIST,
	ST_ACL_INSERT,
	ST_ACL_DELETE,
	ST_ACL_COUNT,
	ST_ACL_RAISE,
	ST_TXN_HEAD,
	ST_TXN_INSERT,
	ST_TXN_UPDATE,
	ST_TXN_DELETE,
	ST_TXN_LIST,
	ST_TXN_LIST_ONE,
	ST_TXN_OPEN_LIST,
	ST_TXN_PART_LIST_ONE,
	ST_TXN_GROUP_LIST_ONE,
	ST_TXN_PART_GET,
	ST_TXN_PARTS_INSERT,
	ST_TXN_PART_DELETE,
	ST_TXN_PART_LEFT,
	ST_TXN_PARTS_CLEAR,
	ST_TXN_PART_LIST,
	ST_TXN_GROUP_GET,
	ST_TXN_GROUPS_INSERT,
	ST_TXN_GROUPS_CLEAR,
	ST_TXN_GROUP_LIST,
	ST_PTXN_OPEN,
	ST_PTXN_INSERT,
	ST_PTXN_TAKE,
	ST_PTXN_FIRST,
	ST_PTXN_DELETE_TOPIC,
	ST_ABORTED_INSERT,
	ST_ABORTED_RANGE,
	ST_ABORTED_SINCE,
	ST_ABORTED_TRIM,
	ST_ABORTED_GONE,
	ST_ABORTED_DELETE_TOPIC,
	ST_TXN_OFFSET_UPSERT,
	ST_TXN_OFFSETS_SETTLE,
	ST_TXN_OFFSETS_DROP,
	ST_TXN_OFFSETS_DELETE_TOPIC,
	ST_MERGE_PART_LOCK,
	ST_MERGE_ROWS_LOCK,
	ST_MERGE_INSERT,
	ST_MERGE_ADD,
	ST_MERGE_DELETE,
	ST_MERGE_ROWS_INSERT,
	ST_MERGE_SUBTRACT,
	ST_CLEAN_OFFSET_RAISE,
	ST_COUNT
};

/* What the read path needs of a batch row (batch_row_read), its spans
 * last. */
#define BATCH_COLUMNS "b.base_offset, b.last_offset, o.key, b.byte_offset, b.length," \
	" b.record_count, b.max_timestamp, b.spans"

static const char *const stmt_sql[ST_COUNT] = {
	[ST_TOPIC_ID_BY_NAME] = "SELECT tid FROM topics WHERE name = $1",
	/* A name taken meanwhile by another agent gives no row: SL_EEXIST. */
	[ST_TOPIC_INSERT] = "INSERT INTO topics (name, uuid, partition_count, created_ms)"
		" VALUES ($1, $2::uuid, $3, $4) ON CONFLICT (name) DO NOTHING RETURNING tid",
	/* FOR UPDATE: two agents growing one topic, or changing its configs
	 * while it is deleted, take turns. */
	[ST_TOPIC_COUNT] = "SELECT partition_count FROM topics WHERE tid = $1 FOR UPDATE",
	/* A deletion's: every partition row, as a commit, a merge or a
	 * cleaning swap locks it (their order), so the deletion's statements
	 * start after those in flight end and read what they wrote. Without
	 * it, the objects' subtract summed the batch rows a merge had not yet
	 * committed moving, then waited on the objects it had updated: stale
	 * sums were taken from the merged-from objects (a shared one could go
	 * below zero and be collected under another topic's rows) and the
	 * merged object kept live bytes with no rows. */
	[ST_TOPIC_PARTS_LOCK] = "SELECT partition FROM partitions WHERE tid = $1"
		" ORDER BY partition FOR UPDATE",
	[ST_TOPIC_SET_COUNT] = "UPDATE topics SET partition_count = $2 WHERE tid = $1",
	[ST_TOPIC_LIST] = "SELECT tid, name, uuid, partition_count FROM topics ORDER BY tid",
	[ST_TOPIC_DELETE] = "DELETE FROM topics WHERE tid = $1",
	[ST_CONFIG_LIST] = "SELECT tid, name, value FROM topic_configs ORDER BY tid, name",
	[ST_CONFIG_UPSERT] = "INSERT INTO topic_configs (tid, name, value) VALUES ($1, $2, $3)"
		" ON CONFLICT (tid, name) DO UPDATE SET value = excluded.value",
	[ST_CONFIG_DELETE] = "DELETE FROM topic_configs WHERE tid = $1 AND name = $2",
	[ST_CONFIG_DELETE_TOPIC] = "DELETE FROM topic_configs WHERE tid = $1",
	/* $3: one text per partition from $2 on. */
	[ST_REPLICAS_INSERT] = "INSERT INTO partition_replicas (tid, partition, replicas)"
		" SELECT $1::bigint, $2::integer + (u.i - 1)::integer, u.r"
		" FROM unnest($3::text[]) WITH ORDINALITY AS u(r, i)",
	[ST_REPLICAS_LIST] = "SELECT tid, partition, replicas FROM partition_replicas"
		" ORDER BY tid, partition",
	[ST_REPLICAS_DELETE_TOPIC] = "DELETE FROM partition_replicas WHERE tid = $1",
	[ST_PARTITIONS_INSERT] = "INSERT INTO partitions (tid, partition, log_start_offset,"
		" high_watermark, change_seq) SELECT $1::bigint, p, 0, 0, " CHANGE_SEQ_NEXT
		" FROM generate_series($2::integer, $3::integer - 1) AS p",
	[ST_PARTITION_GET] = "SELECT log_start_offset, high_watermark, first_unstable_offset,"
		" clean_offset FROM partitions WHERE tid = $1 AND partition = $2",
	[ST_PARTITION_LIST] = "SELECT tid, partition, log_start_offset, high_watermark,"
		" first_unstable_offset FROM partitions ORDER BY tid, partition",
	[ST_PARTITION_LIST_SINCE] = "SELECT tid, partition, log_start_offset, high_watermark,"
		" first_unstable_offset FROM partitions WHERE change_seq >= $1"
		" ORDER BY tid, partition",
	/* The first statement of the poll's REPEATABLE READ transaction, so
	 * it names the snapshot every later statement reads. */
	[ST_SNAPSHOT_XMIN] = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
	/* Listeners drop what fell below it (DeleteRecords, retention). */
	[ST_PARTITION_SET_LOG_START] = "WITH u AS (UPDATE partitions SET log_start_offset ="
		" least(greatest(log_start_offset, $3), high_watermark), change_seq = " CHANGE_SEQ_NEXT
		" WHERE tid = $1 AND partition = $2 RETURNING log_start_offset)"
		" SELECT pg_notify('" PG_CHANNEL_LOG_START "', $4::text || ' ' || $1 || ' ' || $2"
		" || ' ' || log_start_offset)"
		" FROM u",
	[ST_PARTITION_DELETE_TOPIC] = "DELETE FROM partitions WHERE tid = $1",
	/* This and ST_OBJECT_SUBTRACT_BELOW: an object left without live
	 * bytes starts the collector's grace now (the last parameter), as a
	 * merge's does, so a fetch the batch index still serves from the rows
	 * finds its object (Kafka: file.delete.delay.ms). */
	[ST_OBJECT_SUBTRACT_TOPIC] = "UPDATE objects SET live_bytes = objects.live_bytes - d.bytes,"
		" created_ms = CASE WHEN objects.live_bytes - d.bytes <= 0"
		" THEN greatest(objects.created_ms, $2) ELSE objects.created_ms END"
		" FROM (SELECT oid, sum(length) AS bytes FROM batches WHERE tid = $1"
		" GROUP BY oid) AS d WHERE objects.oid = d.oid",
	[ST_OBJECTS_DEAD] = "SELECT oid, key, size, live_bytes, state, created_ms FROM objects"
		" WHERE oid > $1 AND live_bytes <= 0 AND (state = 'deleting' OR created_ms < $2)"
		" ORDER BY oid LIMIT $3",
	[ST_OBJECT_MARK_DELETING] = "UPDATE objects SET state = 'deleting'"
		" WHERE key = $1 AND live_bytes <= 0",
	[ST_OBJECT_FORGET] = "DELETE FROM objects WHERE key = $1 AND state = 'deleting'",
	[ST_OBJECT_KNOWN] = "SELECT 1 FROM objects WHERE key = $1",
	[ST_GC_FENCE_SHARE] = "SELECT fence_ms FROM gc_fence WHERE id = 1 FOR SHARE",
	[ST_GC_FENCE_RAISE] = "UPDATE gc_fence SET fence_ms = greatest(fence_ms, $1)"
		" WHERE id = 1 RETURNING fence_ms",
	/* Locks are taken in output order, after the sort: (tid, partition). */
	[ST_COMMIT_LOCK] = "SELECT p.tid, p.partition, p.high_watermark, p.log_start_offset,"
		" p.first_unstable_offset FROM partitions AS p"
		" JOIN unnest($1::bigint[], $2::integer[]) AS u(tid, partition)"
		" ON p.tid = u.tid AND p.partition = u.partition"
		" ORDER BY p.tid, p.partition FOR UPDATE OF p",
	/* Objects, their batch rows (y.obj: the 1-based index of the batch's
	 * object in $1), the new high watermarks and the producers' states,
	 * in one statement. */
	[ST_COMMIT_WRITE] = "WITH o AS ("
		" INSERT INTO objects (key, size, live_bytes, state, created_ms)"
		" SELECT k, s, l, 'live', $4::bigint FROM unnest($1::text[], $2::bigint[], $3::bigint[])"
		"  AS x(k, s, l) RETURNING oid, key),"
		" b AS (INSERT INTO batches (tid, partition, base_offset, last_offset, oid,"
		"  byte_offset, length, record_count, max_timestamp, producer_id, producer_epoch,"
		"  base_sequence, last_sequence, spans, attributes)"
		" SELECT y.tid, y.partition, y.base, y.last, o.oid, y.pos, y.len, y.cnt, y.ts,"
		"  y.pid, y.epoch, y.bseq, y.lseq, y.spans, y.attr"
		" FROM unnest($5::integer[], $6::bigint[], $7::integer[], $8::bigint[],"
		"  $9::bigint[], $10::bigint[], $11::bigint[], $12::integer[], $13::bigint[],"
		"  $14::bigint[], $15::integer[], $16::integer[], $17::integer[], $26::text[],"
		"  $27::smallint[])"
		"  AS y(obj, tid, partition, base, last, pos, len, cnt, ts, pid, epoch, bseq, lseq,"
		"  spans, attr)"
		" JOIN o ON o.key = ($1::text[])[y.obj]),"
		" h AS (UPDATE partitions AS p SET high_watermark = z.hwm, first_unstable_offset = z.fuo,"
		"  change_seq = " CHANGE_SEQ_NEXT
		" FROM unnest($18::bigint[], $19::integer[], $20::bigint[], $28::bigint[])"
		"  AS z(tid, partition, hwm, fuo)"
		" WHERE p.tid = z.tid AND p.partition = z.partition),"
		" s AS (INSERT INTO producer_state (tid, partition, producer_id, producer_epoch,"
		"  batches, updated_ms)"
		" SELECT v.tid, v.partition, v.pid, v.epoch, v.batches, $4::bigint"
		" FROM unnest($21::bigint[], $22::integer[], $23::bigint[], $24::integer[], $25::text[])"
		"  AS v(tid, partition, pid, epoch, batches)"
		" ON CONFLICT (tid, partition, producer_id) DO UPDATE SET"
		"  producer_epoch = excluded.producer_epoch, batches = excluded.batches,"
		"  updated_ms = excluded.updated_ms)"
		" SELECT count(*) FROM o",
	[ST_BATCH_DELETE_TOPIC] = "DELETE FROM batches WHERE tid = $1",
	[ST_BATCHES_TRIM_SCAN] = "SELECT b.base_offset, b.last_offset, b.byte_offset, b.length,"
		" b.max_timestamp, o.created_ms, b.spans FROM batches AS b"
		" JOIN objects AS o ON o.oid = b.oid"
		" WHERE b.tid = $1 AND b.partition = $2 AND b.last_offset >= $3"
		" ORDER BY b.last_offset LIMIT $4",
	[ST_BATCHES_LIVE_BYTES] = "SELECT coalesce(sum(length), 0) FROM batches"
		" WHERE tid = $1 AND partition = $2 AND last_offset >= $3",
	[ST_BATCHES_CHUNK_END] = "SELECT last_offset FROM batches WHERE tid = $1"
		" AND partition = $2 AND last_offset < $3 ORDER BY last_offset LIMIT 1 OFFSET $4",
	[ST_OBJECT_SUBTRACT_BELOW] = "UPDATE objects SET live_bytes = objects.live_bytes - d.bytes,"
		" created_ms = CASE WHEN objects.live_bytes - d.bytes <= 0"
		" THEN greatest(objects.created_ms, $4) ELSE objects.created_ms END"
		" FROM (SELECT oid, sum(length) AS bytes FROM batches WHERE tid = $1"
		" AND partition = $2 AND last_offset < $3 GROUP BY oid) AS d"
		" WHERE objects.oid = d.oid",
	[ST_BATCH_DELETE_BELOW] = "DELETE FROM batches WHERE tid = $1 AND partition = $2"
		" AND last_offset < $3",
	[ST_BATCHES_FROM] = "SELECT " BATCH_COLUMNS
		" FROM batches AS b JOIN objects AS o ON o.oid = b.oid"
		" WHERE b.tid = $1 AND b.partition = $2 AND b.last_offset >= $3"
		" ORDER BY b.last_offset LIMIT $4",
	/* Every partition of a fetch in one round trip. */
	[ST_BATCHES_FROM_MANY] = "SELECT q.i, " BATCH_COLUMNS ", o.size, b.attributes"
		" FROM unnest($1::bigint[], $2::integer[], $3::bigint[], $4::bigint[])"
		"  WITH ORDINALITY AS q(tid, partition, off, lim, i)"
		" CROSS JOIN LATERAL (SELECT * FROM batches AS x WHERE x.tid = q.tid"
		"  AND x.partition = q.partition AND x.last_offset >= q.off"
		"  ORDER BY x.last_offset LIMIT q.lim) AS b"
		" JOIN objects AS o ON o.oid = b.oid ORDER BY q.i, b.last_offset",
	/* The row, then the batch inside it (meta_ts_row_pick): rows from $4
	 * on, and never below the log start (the last column). */
	[ST_OFFSET_FOR_TIMESTAMP] = "SELECT " BATCH_COLUMNS ", p.log_start_offset"
		" FROM partitions AS p JOIN batches AS b ON b.tid = p.tid AND b.partition = p.partition"
		" JOIN objects AS o ON o.oid = b.oid"
		" WHERE p.tid = $1 AND p.partition = $2 AND b.max_timestamp >= $3"
		" AND b.last_offset >= greatest(p.log_start_offset, $4)"
		" ORDER BY b.last_offset LIMIT 1",
	/* The cleaner's bounds (meta_clean_bytes): one range of the
	 * primary key, from the log start. */
	[ST_CLEAN_BYTES] = "SELECT coalesce(sum(CASE WHEN last_offset < $4 AND base_offset >= $3"
		" THEN length ELSE 0 END), 0)::bigint,"
		" coalesce(sum(CASE WHEN last_offset >= $4 THEN length ELSE 0 END), 0)::bigint"
		" FROM batches WHERE tid = $1 AND partition = $2 AND last_offset >= $3",
	[ST_MAX_TIMESTAMP] = "SELECT " BATCH_COLUMNS ", p.log_start_offset"
		" FROM partitions AS p JOIN batches AS b ON b.tid = p.tid AND b.partition = p.partition"
		" JOIN objects AS o ON o.oid = b.oid"
		" WHERE p.tid = $1 AND p.partition = $2 AND b.last_offset >= greatest(p.log_start_offset, $3)"
		" ORDER BY b.max_timestamp DESC, b.last_offset ASC LIMIT 1",
	/* After ST_COMMIT_LOCK, in a statement of its own: its snapshot then
	 * holds every commit to those partitions before this one. */
	[ST_PSTATE_READ] = "SELECT s.tid, s.partition, s.producer_id, s.producer_epoch, s.batches"
		" FROM producer_state AS s"
		" JOIN unnest($1::bigint[], $2::integer[], $3::bigint[]) AS u(tid, partition, pid)"
		" ON s.tid = u.tid AND s.partition = u.partition AND s.producer_id = u.pid",
	[ST_PSTATE_DELETE_TOPIC] = "DELETE FROM producer_state WHERE tid = $1",
	[ST_PSTATE_EXPIRE] = "DELETE FROM producer_state WHERE tid = $1 AND partition = $2"
		" AND updated_ms < $3",
	/* As sqlite.c's. */
	[ST_PSTATE_MARKER] = "INSERT INTO producer_state AS s (tid, partition, producer_id,"
		" producer_epoch, batches, updated_ms, coordinator_epoch)"
		" VALUES ($1, $2, $3, $4, '', $5, $6)"
		" ON CONFLICT (tid, partition, producer_id) DO UPDATE SET"
		" batches = CASE WHEN excluded.producer_epoch > s.producer_epoch THEN ''"
		"  ELSE s.batches END,"
		" producer_epoch = greatest(s.producer_epoch, excluded.producer_epoch),"
		" updated_ms = excluded.updated_ms, coordinator_epoch = excluded.coordinator_epoch",
	[ST_PSTATE_DESCRIBE] = "SELECT s.producer_id, s.producer_epoch, s.batches, s.updated_ms,"
		" s.coordinator_epoch,"
		" coalesce(t.first_offset, -1) FROM producer_state AS s"
		" LEFT JOIN partition_txns AS t ON t.tid = s.tid AND t.partition = s.partition"
		" AND t.producer_id = s.producer_id"
		" WHERE s.tid = $1 AND s.partition = $2 ORDER BY s.producer_id LIMIT $3",
	[ST_PRODUCER_IDS_ALLOC] = "UPDATE producer_ids SET next_producer_id = next_producer_id + $1"
		" WHERE id = 1 AND next_producer_id <= $2 RETURNING next_producer_id - $1",
	[ST_OFFSET_UPSERT] = "INSERT INTO group_offsets (group_id, tid, partition,"
		" committed_offset, leader_epoch, metadata, commit_timestamp_ms, commit_seq)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7, nextval('offset_commit_seq'))"
		" ON CONFLICT (group_id, tid, partition) DO UPDATE SET"
		" committed_offset = excluded.committed_offset,"
		" leader_epoch = excluded.leader_epoch, metadata = excluded.metadata,"
		" commit_timestamp_ms = excluded.commit_timestamp_ms, commit_seq = excluded.commit_seq",
	[ST_OFFSET_FETCH] = "SELECT tid, partition, committed_offset, leader_epoch, metadata,"
		" commit_timestamp_ms FROM group_offsets WHERE group_id = $1"
		" ORDER BY tid, partition",
	[ST_TXN_OFFSETS_PENDING] = "SELECT DISTINCT tid, partition FROM txn_offsets"
		" WHERE group_id = $1 ORDER BY tid, partition",
	[ST_GROUP_LIST] = "SELECT group_id, count(*), max(commit_timestamp_ms)"
		" FROM group_offsets GROUP BY group_id ORDER BY group_id",
	[ST_OFFSET_DELETE_GROUP] = "DELETE FROM group_offsets WHERE group_id = $1",
	/* members as hex text both ways ($6, column 5). */
	[ST_GROUP_STATE_UPSERT] = "INSERT INTO group_state (group_id, generation, protocol_type,"
		" protocol_name, leader_id, members, updated_ms) VALUES ($1, $2, $3, $4, $5,"
		" decode($6, 'hex'), (extract(epoch FROM clock_timestamp()) * 1000)::bigint)"
		" ON CONFLICT (group_id) DO UPDATE SET generation = excluded.generation,"
		" protocol_type = excluded.protocol_type, protocol_name = excluded.protocol_name,"
		" leader_id = excluded.leader_id, members = excluded.members,"
		" updated_ms = excluded.updated_ms",
	[ST_GROUP_STATE_GET] = "SELECT group_id, generation, protocol_type, protocol_name, leader_id,"
		" encode(members, 'hex') FROM group_state WHERE group_id = $1",
	[ST_GROUP_STATE_LIST] = "SELECT group_id, generation, protocol_type, protocol_name, leader_id,"
		" encode(members, 'hex') FROM group_state ORDER BY group_id",
	[ST_GROUP_STATE_DELETE] = "DELETE FROM group_state WHERE group_id = $1",
	[ST_GROUP_FORGET] = "DELETE FROM group_state WHERE group_id = $1"
		" AND NOT EXISTS (SELECT 1 FROM group_offsets WHERE group_id = $1)"
		" AND NOT EXISTS (SELECT 1 FROM txn_offsets WHERE group_id = $1)",
	[ST_GROUP_STATES_EXPIRE] = "DELETE FROM group_state AS g"
		" USING (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint - $1 AS t) AS x"
		" WHERE g.updated_ms < x.t"
		" AND NOT EXISTS (SELECT 1 FROM group_offsets AS o WHERE o.group_id = g.group_id)"
		" AND NOT EXISTS (SELECT 1 FROM txn_offsets AS p WHERE p.group_id = g.group_id)"
		" AND NOT EXISTS (SELECT 1 FROM leases AS l WHERE l.name = '" META_LEASE_GROUP_PREFIX
		"' || g.group_id AND l.expires_ms >= x.t)",
	[ST_OFFSET_DELETE_ONE] = "DELETE FROM group_offsets"
		" WHERE group_id = $1 AND tid = $2 AND partition = $3",
	[ST_OFFSET_DELETE_TOPIC] = "DELETE FROM group_offsets WHERE tid = $1",
	/* The registry's clock is the server's: agents' clocks may differ. */
	[ST_CLOCK_MS] = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
	/* Every change of the agent set takes this row first, so joins,
	 * leaves and expiries run one at a time and never deadlock. */
	[ST_EPOCH_LOCK] = "SELECT value FROM cluster WHERE name = 'agents_epoch' FOR UPDATE",
	[ST_EPOCH_RAISE] = "UPDATE cluster SET value = value + 1 WHERE name = 'agents_epoch'",
	[ST_AGENT_EXPIRE] = "DELETE FROM agents WHERE heartbeat_ms < $1",
	[ST_AGENT_STALE] = "SELECT count(*) FROM agents WHERE heartbeat_ms < $1",
	[ST_AGENT_IDS] = "SELECT node_id FROM agents ORDER BY node_id",
	[ST_AGENT_INSERT] = "INSERT INTO agents (node_id, incarnation, endpoints, zone, start_ms,"
		" heartbeat_ms) VALUES ($1, $2, $3, $4, $5, $6)",
	/* Returns the heartbeat it replaced. */
	[ST_AGENT_BEAT] = "UPDATE agents AS a SET heartbeat_ms = $3 FROM (SELECT heartbeat_ms"
		" FROM agents WHERE node_id = $1 AND incarnation = $2) AS o"
		" WHERE a.node_id = $1 AND a.incarnation = $2 RETURNING o.heartbeat_ms",
	[ST_AGENT_RENEW] = "UPDATE agents SET heartbeat_ms = $2 WHERE heartbeat_ms >= $1"
		" AND heartbeat_ms < $2",
	[ST_AGENT_DELETE] = "DELETE FROM agents WHERE node_id = $1 AND incarnation = $2",
	[ST_AGENT_FORGET] = "DELETE FROM agents WHERE incarnation = $1",
	/* One statement, one snapshot: the set and the epoch that names it. */
	[ST_AGENT_VIEW] = "SELECT c.value, a.node_id, a.incarnation, a.endpoints, a.zone,"
		" a.start_ms FROM cluster c LEFT JOIN agents a ON true"
		" WHERE c.name = 'agents_epoch' ORDER BY a.node_id",
	/* Listeners learn it at the commit (meta_listen_read). */
	[ST_CATALOG_RAISE] = "WITH v AS (UPDATE cluster SET value = value + 1"
		" WHERE name = 'catalog_version' RETURNING value)"
		" SELECT pg_notify('" PG_CHANNEL_CATALOG "', value::text) FROM v",
	[ST_CATALOG_VERSION] = "SELECT value FROM cluster WHERE name = 'catalog_version'",
	/* bytea travels as text in hex ("\\x..."), both ways. */
	[ST_SCRAM_GET] = "SELECT name, mechanism, salt, iterations, stored_key, server_key"
		" FROM scram_credentials WHERE name = $1 ORDER BY mechanism",
	[ST_SCRAM_LIST] = "SELECT name, mechanism, salt, iterations, stored_key, server_key"
		" FROM scram_credentials ORDER BY name, mechanism",
	[ST_SCRAM_UPSERT] = "INSERT INTO scram_credentials (name, mechanism, salt, iterations,"
		" stored_key, server_key) VALUES ($1, $2, $3, $4, $5, $6)"
		" ON CONFLICT (name, mechanism) DO UPDATE SET salt = excluded.salt,"
		" iterations = excluded.iterations, stored_key = excluded.stored_key,"
		" server_key = excluded.server_key",
	[ST_SCRAM_DELETE] = "DELETE FROM scram_credentials WHERE name = $1"
		" AND ($2 = 0 OR mechanism = $2)",
	/* Delivered when the commit is, in the order given. */
	[ST_COMMIT_NOTIFY] = "SELECT pg_notify('" PG_CHANNEL_COMMIT "', x) FROM unnest($1::text[]) AS x",
	[ST_ACL_VERSION] = "SELECT value FROM cluster WHERE name = 'acl_version'",
	[ST_ACL_LIST] = "SELECT resource_type, resource_name, pattern_type, principal, host,"
		" operation, permission FROM acls",
	[ST_ACL_INSERT] = "INSERT INTO acls (resource_type, resource_name, pattern_type,"
		" principal, host, operation, permission) VALUES ($1, $2, $3, $4, $5, $6, $7)"
		" ON CONFLICT DO NOTHING",
	[ST_ACL_DELETE] = "DELETE FROM acls WHERE resource_type = $1 AND resource_name = $2"
		" AND pattern_type = $3 AND principal = $4 AND host = $5 AND operation = $6"
		" AND permission = $7",
	[ST_ACL_COUNT] = "SELECT count(*) FROM acls",
	[ST_ACL_RAISE] = "UPDATE cluster SET value = value + 1 WHERE name = 'acl_version'",
	/* FOR SHARE: a coordinator's write of the row (Prepare*) waits for
	 * the commit that checks a batch against it, so no transactional
	 * batch lands after its transaction's Prepare* is durable. Taken
	 * after the partition locks (every commit's order). */
	[ST_TXN_HEAD] = "SELECT producer_id, producer_epoch, state, txn_seq FROM transactions"
		" WHERE transactional_id = $1 FOR SHARE",
	[ST_TXN_INSERT] = "INSERT INTO transactions (transactional_id, producer_id,"
		" last_producer_id, producer_epoch, last_producer_epoch, timeout_ms, state, txn_seq,"
		" start_ms, update_ms, coord_epoch, version)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1)"
		" ON CONFLICT (transactional_id) DO NOTHING RETURNING 1",
	/* Only at the version the writer read (optimistic). */
	[ST_TXN_UPDATE] = "UPDATE transactions SET producer_id = $2, last_producer_id = $3,"
		" producer_epoch = $4, last_producer_epoch = $5, timeout_ms = $6, state = $7,"
		" txn_seq = $8, start_ms = $9, update_ms = $10, coord_epoch = $11,"
		" version = version + 1 WHERE transactional_id = $1 AND version = $12 RETURNING 1",
	[ST_TXN_DELETE] = "DELETE FROM transactions WHERE transactional_id = $1 AND version = $2",
	/* Ids in byte order (COLLATE "C"), as the loader's search expects. */
	[ST_TXN_LIST] = "SELECT transactional_id, producer_id, last_producer_id, producer_epoch,"
		" last_producer_epoch, timeout_ms, state, txn_seq, start_ms, update_ms, coord_epoch,"
		" version FROM transactions ORDER BY transactional_id COLLATE \"C\"",
	/* The three lists for one id (meta_txn_load_one). */
	/* States 1-3: TXN_ONGOING, TXN_PREPARE_COMMIT, TXN_PREPARE_ABORT. */
	[ST_TXN_OPEN_LIST] = "SELECT transactional_id, state FROM transactions"
		" WHERE state IN (1, 2, 3) ORDER BY transactional_id COLLATE \"C\"",
	[ST_TXN_LIST_ONE] = "SELECT transactional_id, producer_id, last_producer_id, producer_epoch,"
		" last_producer_epoch, timeout_ms, state, txn_seq, start_ms, update_ms, coord_epoch,"
		" version FROM transactions WHERE transactional_id = $1",
	[ST_TXN_PART_LIST_ONE] = "SELECT transactional_id, tid, partition FROM txn_partitions"
		" WHERE transactional_id = $1 ORDER BY tid, partition",
	[ST_TXN_GROUP_LIST_ONE] = "SELECT transactional_id, group_id FROM txn_groups"
		" WHERE transactional_id = $1 ORDER BY group_id COLLATE \"C\"",
	[ST_TXN_PART_GET] = "SELECT 1 FROM txn_partitions WHERE transactional_id = $1"
		" AND tid = $2 AND partition = $3",
	[ST_TXN_PARTS_INSERT] = "INSERT INTO txn_partitions (transactional_id, tid, partition)"
		" SELECT $1, u.t, u.p FROM unnest($2::bigint[], $3::integer[]) AS u(t, p)"
		" ON CONFLICT DO NOTHING",
	[ST_TXN_PART_DELETE] = "DELETE FROM txn_partitions WHERE transactional_id = $1"
		" AND tid = $2 AND partition = $3",
	[ST_TXN_PART_LEFT] = "SELECT 1 FROM txn_partitions WHERE transactional_id = $1 LIMIT 1",
	[ST_TXN_PARTS_CLEAR] = "DELETE FROM txn_partitions WHERE transactional_id = $1",
	[ST_TXN_PART_LIST] = "SELECT transactional_id, tid, partition FROM txn_partitions"
		" ORDER BY transactional_id COLLATE \"C\", tid, partition",
	[ST_TXN_GROUP_GET] = "SELECT 1 FROM txn_groups WHERE transactional_id = $1"
		" AND group_id = $2",
	[ST_TXN_GROUPS_INSERT] = "INSERT INTO txn_groups (transactional_id, group_id)"
		" SELECT $1, g FROM unnest($2::text[]) AS g ON CONFLICT DO NOTHING",
	[ST_TXN_GROUPS_CLEAR] = "DELETE FROM txn_groups WHERE transactional_id = $1",
	[ST_TXN_GROUP_LIST] = "SELECT transactional_id, group_id FROM txn_groups"
		" ORDER BY transactional_id COLLATE \"C\", group_id COLLATE \"C\"",
	[ST_PTXN_OPEN] = "SELECT 1 FROM partition_txns WHERE tid = $1 AND partition = $2"
		" AND producer_id = $3",
	[ST_PTXN_INSERT] = "INSERT INTO partition_txns (tid, partition, producer_id,"
		" producer_epoch, first_offset, transactional_id) VALUES ($1, $2, $3, $4, $5, $6)"
		" ON CONFLICT DO NOTHING",
	[ST_PTXN_TAKE] = "DELETE FROM partition_txns WHERE tid = $1 AND partition = $2"
		" AND transactional_id = $3 RETURNING producer_id, first_offset",
	[ST_PTXN_FIRST] = "SELECT coalesce(min(first_offset), -1) FROM partition_txns"
		" WHERE tid = $1 AND partition = $2",
	[ST_PTXN_DELETE_TOPIC] = "DELETE FROM partition_txns WHERE tid = $1",
	/* The feed's number from cluster's row, locked until the commit:
	 * aborts are numbered in commit order. */
	[ST_ABORTED_INSERT] = "WITH s AS (UPDATE cluster SET value = value + 1"
		" WHERE name = 'aborted_seq' RETURNING value)"
		" INSERT INTO aborted_txns (tid, partition, last_offset, first_offset, producer_id,"
		" seq) SELECT $1, $2, $3, $4, $5, s.value FROM s",
	[ST_ABORTED_RANGE] = "SELECT producer_id, first_offset, last_offset FROM aborted_txns"
		" WHERE tid = $1 AND partition = $2 AND last_offset >= $3 AND first_offset < $4"
		" ORDER BY first_offset, last_offset LIMIT $5",
	[ST_ABORTED_SINCE] = "SELECT seq, tid, partition, producer_id, first_offset, last_offset"
		" FROM aborted_txns WHERE seq > $1 ORDER BY seq LIMIT $2",
	[ST_ABORTED_TRIM] = "DELETE FROM aborted_txns WHERE tid = $1 AND partition = $2"
		" AND last_offset < $3",
	[ST_ABORTED_DELETE_TOPIC] = "DELETE FROM aborted_txns WHERE tid = $1",
	[ST_ABORTED_GONE] = "DELETE FROM aborted_txns WHERE tid = $1 AND partition = $2"
		" AND last_offset = ANY($3::bigint[])",
	[ST_TXN_OFFSET_UPSERT] = "INSERT INTO txn_offsets (group_id, tid, partition, producer_id,"
		" transactional_id, committed_offset, leader_epoch, metadata, commit_timestamp_ms,"
		" commit_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, nextval('offset_commit_seq'))"
		" ON CONFLICT (group_id, tid, partition, producer_id) DO UPDATE SET"
		" transactional_id = excluded.transactional_id,"
		" committed_offset = excluded.committed_offset,"
		" leader_epoch = excluded.leader_epoch, metadata = excluded.metadata,"
		" commit_timestamp_ms = excluded.commit_timestamp_ms, commit_seq = excluded.commit_seq",
	/* As sqlite.c's: each pending offset where newer than the group's. */
	[ST_TXN_OFFSETS_SETTLE] = "INSERT INTO group_offsets (group_id, tid, partition,"
		" committed_offset, leader_epoch, metadata, commit_timestamp_ms, commit_seq)"
		" SELECT x.group_id, x.tid, x.partition, x.committed_offset, x.leader_epoch,"
		" x.metadata, x.commit_timestamp_ms, x.commit_seq FROM txn_offsets AS x"
		" WHERE x.transactional_id = $1"
		" AND EXISTS (SELECT 1 FROM topics AS t WHERE t.tid = x.tid)"
		" ON CONFLICT (group_id, tid, partition) DO UPDATE SET"
		" committed_offset = excluded.committed_offset,"
		" leader_epoch = excluded.leader_epoch, metadata = excluded.metadata,"
		" commit_timestamp_ms = excluded.commit_timestamp_ms, commit_seq = excluded.commit_seq"
		" WHERE excluded.commit_seq > group_offsets.commit_seq",
	[ST_TXN_OFFSETS_DROP] = "DELETE FROM txn_offsets WHERE transactional_id = $1",
	[ST_TXN_OFFSETS_DELETE_TOPIC] = "DELETE FROM txn_offsets WHERE tid = $1",
	/* The merge swap (issue 15): the partition's row, locked as a commit
	 * locks it; then the rows to move, locked, each as the merge read it
	 * (r.i: its 1-based index); then the object, the rows replaced by the
	 * merged object's (meta_merge_rows) and the old
	 * objects' live bytes (one left without any starts the collector's
	 * grace now: created_ms is its clock). */
	[ST_MERGE_PART_LOCK] = "SELECT p.log_start_offset FROM partitions AS p"
		" WHERE p.tid = $1 AND p.partition = $2"
		" AND EXISTS (SELECT 1 FROM topics AS t WHERE t.tid = p.tid) FOR UPDATE OF p",
	[ST_MERGE_ROWS_LOCK] = "SELECT r.i, b.oid, o.created_ms, b.spans, b.record_count,"
		" b.max_timestamp, b.attributes FROM unnest($3::bigint[],"
		" $4::bigint[], $5::text[], $6::bigint[], $7::bigint[]) WITH ORDINALITY"
		" AS r(last, base, key, pos, len, i)"
		" JOIN batches AS b ON b.tid = $1 AND b.partition = $2 AND b.last_offset = r.last"
		" AND b.base_offset = r.base AND b.byte_offset = r.pos AND b.length = r.len"
		" JOIN objects AS o ON o.oid = b.oid AND o.key = r.key FOR UPDATE OF b",
	[ST_MERGE_INSERT] = "INSERT INTO objects (key, size, live_bytes, state, created_ms)"
		" VALUES ($1, $2, $3, 'live', $4) RETURNING oid",
	/* A later chunk of one merged object's swap (meta_merge.continues):
	 * the object an earlier chunk inserted gains the chunk's bytes, only
	 * while rows still name it (without live bytes the collector may be
	 * deleting it). */
	[ST_MERGE_ADD] = "UPDATE objects SET live_bytes = live_bytes + $3,"
		" created_ms = least(created_ms, $4)"
		" WHERE key = $1 AND size = $2 AND state = 'live' AND live_bytes > 0 RETURNING oid",
	[ST_MERGE_DELETE] = "DELETE FROM batches AS b USING unnest($3::bigint[]) AS r(last)"
		" WHERE b.tid = $1 AND b.partition = $2 AND b.last_offset = r.last",
	/* The merged object's rows (meta_merge_rows), in the commit's arrays. */
	[ST_MERGE_ROWS_INSERT] = "INSERT INTO batches (tid, partition, base_offset, last_offset,"
		" oid, byte_offset, length, record_count, max_timestamp, producer_id,"
		" producer_epoch, base_sequence, last_sequence, spans, attributes)"
		" SELECT t, p, b, l, $1::bigint, o, n, c, m, d, e, f, g, s, a FROM unnest($2::bigint[],"
		" $3::integer[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[],"
		" $8::integer[], $9::bigint[], $10::bigint[], $11::integer[], $12::integer[],"
		" $13::integer[], $14::text[], $15::smallint[])"
		" AS r(t, p, b, l, o, n, c, m, d, e, f, g, s, a)",
	[ST_MERGE_SUBTRACT] = "UPDATE objects AS o SET live_bytes = o.live_bytes - d.bytes,"
		" created_ms = CASE WHEN o.live_bytes - d.bytes <= 0"
		" THEN greatest(o.created_ms, $3) ELSE o.created_ms END"
		" FROM (SELECT oid, sum(len) AS bytes FROM unnest($1::bigint[], $2::bigint[])"
		" AS r(oid, len) GROUP BY oid) AS d WHERE o.oid = d.oid",
	[ST_CLEAN_OFFSET_RAISE] = "UPDATE partitions SET clean_offset = greatest(clean_offset, $3)"
		" WHERE tid = $1 AND partition = $2"
		" RETURNING pg_notify('" PG_CHANNEL_REWRITE "', $4::text || ' ' || $1 || ' ' || $2"
		" || ' ' || log_start_offset)",
};

struct meta_pg;

struct pg_conn {
	PGconn *db;
	const char *role; /* "loop", "commit", ...: for messages */
	const char *where; /* the store, without its password */
	struct meta_pg *store;
	pthread_mutex_t lock;
	bool lock_ready;
	uint64_t prepared[(ST_COUNT + 63) / 64];
	/* Set by pg_txn_locked before a body runs, cleared by the body's
	 * first pipeline: a pipeline that opens its transaction (BEGIN) and
	 * finds the connection gone ran nothing (PG_ERECONNECT). */
	bool txn_fresh;
	int64_t retry_us;   /* broken: no reconnect before (clock_mono_us) */
	int64_t backoff_ms; /* broken: the wait after the next failed attempt */
	/* A round trip's bound (0: none; SL_META_PG_*_TIMEOUT_MS), and the
	 * one in flight's end (clock_mono_us). until_us (0: none), set for
	 * one call under the lock (pg_txn_within, pg_txn_renew), replaces
	 * the bound: every round trip of the call ends by then, the call's
	 * own deadline (set at until_from_us). */
	int timeout_ms;
	int64_t until_us, until_from_us;
	int64_t deadline_us;
	int statement_ms; /* the server's statement_timeout, set at connect */
	bool timed_out; /* logged once per run of timeouts */
	bool connect_timed_out; /* the last connect gave up at its deadline */
	int64_t connect_us; /* a connect's bound (connect_bound_us) */
	/* The URL names several hosts: connects block in libpq, which gives
	 * each host its own connect_timeout and then tries the next; a
	 * non-blocking connect has no per-host timer (libpq runs it only in
	 * its blocking connect), so one host that accepts and never answers
	 * would use up conn_poll's whole bound and the others never be
	 * tried. Such connects are not bounded by the call's end. */
	bool several_hosts;
	/* The registry's and the leases' connections: when the last call
	 * that renewed this agent's heartbeat or leases began (clock_mono_us;
	 * 0: none yet), so the next is given up before what it renewed ends
	 * (pg_txn_renew). */
	int64_t renewed_us;
};

struct meta_pg {
	struct meta base; /* first: the methods pointer */
	char *conninfo;
	/* The user's server options (the URL's options, else PGOPTIONS):
	 * appended to this file's, so what they set wins. NULL: none. */
	char *user_options;
	char where[256];
	struct pg_conn loop;
	struct pg_conn read;
	struct pg_conn commit;
	struct pg_conn offsets[PG_OFFSETS_LANES]; /* meta_offsets_lane's */
	struct pg_conn trim;
	struct pg_conn admin;
	struct pg_conn cluster; /* the registry: heartbeats */
	struct pg_conn leases;  /* lease syncs (connected on first use) */
	struct pg_conn catalog; /* the catalog poll (connected on first use) */
	struct pg_conn listen;  /* LISTEN: read by the loop, (re)opened by the poll job */
	/* The cluster and leases connections' bound on a call that has no
	 * lease to keep (limits.h; SLUICE_PG_CLUSTER_TIMEOUT_MS, a test's
	 * knob, overrides it). */
	int cluster_timeout_ms;
	/* Names this store's commits in their notifications, so the agent
	 * that made them skips them (it indexed them at its commit). */
	char token[17];
	/* Set while no connection can be reached (logged once each way). */
	atomic_bool outage;
	_Atomic int64_t outage_start_us, outage_end_us;
	struct meta_notice_batch *notice_rows; /* PG_NOTICE_ROWS_MAX */
};

static struct meta_pg *pg_of(struct meta *m)
{
	return (struct meta_pg *)m;
}

/* The offsets connection of a group or transactional id's calls (NULL:
 * the first). */
static struct pg_conn *offsets_of(struct meta *m, const char *key)
{
	return &pg_of(m)->offsets[key ? meta_offsets_lane(m, key) : 0];
}

/* libpq's messages end in newlines and may span lines (one per address
 * tried): one line for the log. */
static void one_line(char *dst, size_t cap, const char *msg)
{
	size_t j = 0;
	bool space = false;
	for (const char *s = msg ? msg : "?"; *s && j + 2 < cap; s++) {
		if (*s == '\n' || *s == '\t' || *s == '\r') {
			space = j > 0;
			continue;
		}
		if (space) {
			dst[j++] = ';';
			dst[j++] = ' ';
			space = false;
			if (j + 2 >= cap)
				break;
		}
		dst[j++] = *s;
	}
	dst[j] = 0;
}

/* ---- round trips with a deadline ----
 * libpq's blocking calls wait for the server without a bound: a backend
 * that stopped, or a connection whose other end vanished while the
 * kernel still holds it open, would hold the calling thread (and every
 * later caller of the connection) for ever. Connections are
 * non-blocking instead: a call sends, then waits here with poll() until
 * its answer is in or the connection's deadline passed. Then the socket
 * is shut down (libpq keeps the descriptor): libpq finds the connection
 * closed, the call fails as if the server had closed it, and pg_ready
 * resets it before the next call. What was sent may still run when a
 * stopped server resumes (it reads what came before the end of the
 * stream): a commit whose answer never came can land late, as one whose
 * answer was lost can; the gc fence and the lease epochs keep such a
 * write from landing where it would do harm. */

static void pg_deadline_start(struct pg_conn *c)
{
	if (c->until_us)
		c->deadline_us = c->until_us;
	else
		c->deadline_us = c->timeout_ms > 0 ? clock_mono_us() + (int64_t)c->timeout_ms * 1000
						   : INT64_MAX;
}

static void pg_timeout(struct pg_conn *c)
{
	/* The bound given up at: the round trip's, or the call's whole. */
	long ms = c->until_us ? (long)((c->until_us - c->until_from_us) / 1000) : c->timeout_ms;
	const char *of = c->until_us ? " of the call" : "";
	if (!c->timed_out)
		log_warn("metadata store %s (%s): no answer within %ld ms%s: closing the connection "
			 "(the next call reconnects)", c->where, c->role, ms, of);
	else
		log_debug("metadata store %s (%s): no answer within %ld ms%s again", c->where, c->role,
			  ms, of);
	c->timed_out = true;
	shutdown(PQsocket(c->db), SHUT_RDWR);
}

/* Until c's next result can be read without blocking: it is in, the
 * connection failed, or the deadline passed (the connection is closed). */
static void pg_await(struct pg_conn *c)
{
	for (;;) {
		if (PQstatus(c->db) != CONNECTION_OK)
			return;
		int flush = PQflush(c->db);
		if (flush < 0)
			return;
		if (flush == 0 && !PQisBusy(c->db)) {
			c->timed_out = false;
			return;
		}
		int64_t left_us = c->deadline_us - clock_mono_us();
		if (left_us <= 0) {
			pg_timeout(c);
			return;
		}
		struct pollfd p = { .fd = PQsocket(c->db), .events = POLLIN | (flush ? POLLOUT : 0) };
		int64_t ms = (left_us + 999) / 1000;
		int n = poll(&p, 1, ms > 60 * 60 * 1000 ? 60 * 60 * 1000 : (int)ms);
		if (n < 0 && errno != EINTR) {
			pg_timeout(c);
			return;
		}
		if (n > 0 && (p.revents & ~POLLOUT) && !PQconsumeInput(c->db))
			return;
	}
}

/* PQgetResult, which then never blocks past the deadline. */
static PGresult *pg_get(struct pg_conn *c)
{
	pg_await(c);
	return PQgetResult(c->db);
}

/* The answer to a call just sent (sent: what the PQsend* call
 * returned), as PQexec gives it: the first failed result, else the last
 * one; NULL when nothing was sent (the connection's error says why). */
static PGresult *pg_answer(struct pg_conn *c, int sent)
{
	if (!sent)
		return NULL;
	pg_deadline_start(c);
	PGresult *keep = NULL, *r;
	while ((r = pg_get(c)) != NULL) {
		ExecStatusType st = PQresultStatus(keep);
		if (keep && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
			PQclear(r);
			continue;
		}
		PQclear(keep);
		keep = r;
	}
	return keep;
}

/* Logs a failed call (r may be NULL: the connection's error). Returns
 * PG_ERETRY for a serialization failure or deadlock (logged at debug: the
 * transaction runs again), SL_EMETA otherwise. */
static int pg_fail(struct pg_conn *c, const PGresult *r, const char *what)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	char msg[512];
	const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	one_line(msg, sizeof msg, primary ? primary : PQerrorMessage(c->db));
	if (PQstatus(c->db) != CONNECTION_OK) {
		/* The connection is gone: the outage is logged once, by
		 * pg_ready's reconnects, not by every call that fails. */
		log_debug("metadata store %s (%s): %s: %s", c->where, c->role, what, msg);
		return SL_EMETA;
	}
	if (state && (!strcmp(state, "40001") || !strcmp(state, "40P01"))) {
		log_debug("metadata store (%s): %s: %s (SQLSTATE %s): running it again", c->role,
			  what, msg, state);
		return PG_ERETRY;
	}
	log_error("metadata store %s (%s): %s: %s%s%s%s", c->where, c->role, what, msg,
		  state ? " (SQLSTATE " : "", state ? state : "", state ? ")" : "");
	return SL_EMETA;
}

/* Text parameters of one statement; arrays and strings point elsewhere. */
#define PG_PARAMS_MAX 29
struct pg_params {
	int n;
	const char *v[PG_PARAMS_MAX];
	char buf[PG_PARAMS_MAX][24];
};

static void p_i64(struct pg_params *p, int64_t x)
{
	snprintf(p->buf[p->n], sizeof p->buf[p->n], "%" PRId64, x);
	p->v[p->n] = p->buf[p->n];
	p->n++;
}

static void p_str(struct pg_params *p, const char *s)
{
	p->v[p->n++] = s; /* NULL: SQL null */
}

/* A statement's result r: kept in *res (may be NULL: cleared) when it
 * succeeded; else cleared and PG_ERETRY or SL_EMETA (logged). */
static int pg_result(struct pg_conn *c, PGresult *r, PGresult **res, const char *what)
{
	ExecStatusType st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		if (res)
			*res = r;
		else
			PQclear(r);
		return 0;
	}
	int rc = pg_fail(c, r, what);
	PQclear(r);
	return rc;
}

/* Runs prepared statement s (preparing it on this connection the first
 * time). *res (may be NULL) gets the result, to PQclear. Returns 0,
 * PG_ERETRY or SL_EMETA (logged). */
static void stmt_name(char *name, size_t cap, enum stmt s)
{
	snprintf(name, cap, "s%d", (int)s);
}

/* Prepares s on this connection unless it was already. */
static int pg_prepare(struct pg_conn *c, enum stmt s)
{
	if (c->prepared[s / 64] >> (s % 64) & 1)
		return 0;
	char name[16];
	stmt_name(name, sizeof name, s);
	PGresult *r = pg_answer(c, PQsendPrepare(c->db, name, stmt_sql[s], 0, NULL));
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		int rc = pg_fail(c, r, "preparing a statement");
		log_debug("metadata store: the statement was: %s", stmt_sql[s]);
		PQclear(r);
		return rc;
	}
	PQclear(r);
	c->prepared[s / 64] |= UINT64_C(1) << (s % 64);
	return 0;
}

static int pg_run(struct pg_conn *c, enum stmt s, const struct pg_params *p, PGresult **res,
		  const char *what)
{
	char name[16];
	stmt_name(name, sizeof name, s);
	if (res)
		*res = NULL;
	int rc = pg_prepare(c, s);
	if (rc)
		return rc;
	PGresult *r = pg_answer(c, PQsendQueryPrepared(c->db, name, p ? p->n : 0,
						       p ? p->v : NULL, NULL, NULL, 0));
	return pg_result(c, r, res, what);
}

/* A statement without parameters nor rows (BEGIN, COMMIT, DDL). */
static int pg_simple(struct pg_conn *c, const char *sql, const char *what)
{
	PGresult *r = pg_answer(c, PQsendQuery(c->db, sql));
	int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : pg_fail(c, r, what);
	PQclear(r);
	return rc;
}

static int64_t v_i64(const PGresult *r, int row, int col)
{
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static void v_text(char *dst, size_t cap, const PGresult *r, int row, int col)
{
	snprintf(dst, cap, "%s", PQgetvalue(r, row, col));
}

/* The rows of a DELETE or UPDATE. */
static int64_t changed_rows(const PGresult *r)
{
	return strtoll(PQcmdTuples((PGresult *)r), NULL, 10);
}

/* A fresh connection (its statements are not prepared there) is made
 * non-blocking: pg_await waits for it, with a deadline. */
static void conn_fresh(struct pg_conn *c)
{
	memset(c->prepared, 0, sizeof c->prepared);
	if (PQstatus(c->db) == CONNECTION_OK)
		PQsetnonblocking(c->db, 1);
}

static int conn_connect(struct pg_conn *c);

/* This file's connect_timeout (seconds): the round trip's bound, 2 s
 * (libpq's least) to 10 s. */
static int connect_timeout_s(const struct pg_conn *c)
{
	int s = c->timeout_ms / 1000;
	return s < 2 ? 2 : s > 10 ? 10 : s;
}

/* A connect's bound: connect_timeout as the connection has it (this
 * file's, or the URL's: it comes after), which libpq does not apply to
 * PQconnectPoll: conn_poll does. 0 (libpq: none) is taken as this
 * file's. */
static int64_t connect_bound_us(const struct pg_conn *c)
{
	int s = 0;
	PQconninfoOption *opts = c->db ? PQconninfo(c->db) : NULL;
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (!strcmp(o->keyword, "connect_timeout") && o->val)
			s = atoi(o->val);
	PQconninfoFree(opts);
	if (s <= 0)
		s = connect_timeout_s(c);
	if (s > 3600) /* an hour at most: conn_poll's poll() takes int ms */
		s = 3600;
	return (int64_t)(s < 2 ? 2 : s) * 1000000;
}

/* Whether c's URL names several hosts (or host addresses): see
 * pg_conn.several_hosts. */
static bool names_several_hosts(const struct pg_conn *c)
{
	bool several = false;
	PQconninfoOption *opts = c->db ? PQconninfo(c->db) : NULL;
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if ((!strcmp(o->keyword, "host") || !strcmp(o->keyword, "hostaddr")) && o->val &&
		    strchr(o->val, ','))
			several = true;
	PQconninfoFree(opts);
	return several;
}

/* When a connect begun now must end: its bound from now, or the call's
 * own end when that is sooner (pg_txn_within, pg_txn_renew: a reconnect
 * counts against the call's bound). */
static int64_t connect_deadline(const struct pg_conn *c)
{
	int64_t end = clock_mono_us() + c->connect_us;
	return c->until_us && c->until_us < end ? c->until_us : end;
}

/* Drives a connect begun on c (step: PQconnectPoll, or PQresetPoll for
 * PQresetStart's) to its end, waiting in poll() until deadline_us at
 * the latest: past it the attempt is given up (its socket shut down; the
 * connection is not CONNECTION_OK, so it counts as broken and the next
 * attempt starts afresh). Host names are resolved before, blocking
 * (libpq's getaddrinfo). */
static void conn_poll(struct pg_conn *c, PostgresPollingStatusType (*step)(PGconn *),
		      int64_t deadline_us)
{
	c->connect_timed_out = false;
	/* As after PGRES_POLLING_WRITING, libpq's documentation says. */
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	while (st == PGRES_POLLING_READING || st == PGRES_POLLING_WRITING) {
		int fd = PQsocket(c->db);
		int64_t left_us = deadline_us - clock_mono_us();
		if (fd < 0)
			return;
		if (left_us <= 0) {
			c->connect_timed_out = true;
			shutdown(fd, SHUT_RDWR);
			return;
		}
		struct pollfd p = { .fd = fd,
				    .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT };
		int n = poll(&p, 1, (int)((left_us + 999) / 1000));
		if (n < 0 && errno != EINTR)
			return;
		if (n > 0)
			st = step(c->db);
	}
}

/* Why c's last connect failed, for the log. */
static const char *conn_why(const struct pg_conn *c)
{
	if (!c->db)
		return "out of memory";
	return c->connect_timed_out ? "no answer while connecting, within its bound"
				    : PQerrorMessage(c->db);
}

/* Reconnects c, by connect_deadline at the latest (conn_poll). */
static void conn_reset(struct pg_conn *c)
{
	c->connect_timed_out = false;
	if (c->several_hosts)
		PQreset(c->db);
	else if (PQresetStart(c->db))
		conn_poll(c, PQresetPoll, connect_deadline(c));
	conn_fresh(c);
}

/* A reconnect begun at start_us failed: the first one of an outage logs
 * it (not one that began before another connection's reconnect ended
 * the outage: the server was coming back then). */
static void outage_begin(struct pg_conn *c, int64_t start_us)
{
	struct meta_pg *s = c->store;
	if (start_us < atomic_load(&s->outage_end_us) || atomic_exchange(&s->outage, true))
		return;
	atomic_store(&s->outage_start_us, clock_mono_us());
	char msg[512];
	one_line(msg, sizeof msg, conn_why(c));
	log_warn("metadata store %s cannot be reached (%s): reconnecting every %d ms at most; "
		 "produces fail (retriable) until it is back", c->where, msg,
		 PG_RECONNECT_BACKOFF_MAX_MS);
}

/* A reconnect succeeded: the first one after an outage logs its end. */
static void outage_end(struct pg_conn *c)
{
	struct meta_pg *s = c->store;
	if (!atomic_load(&s->outage) || !atomic_exchange(&s->outage, false))
		return;
	int64_t now = clock_mono_us();
	atomic_store(&s->outage_end_us, now);
	int64_t us = now - atomic_load(&s->outage_start_us);
	log_info("metadata store %s reachable again after %.1f s", c->where, (double)us / 1e6);
}

/* With c's lock held, before a call: a connection found broken (the
 * server restarted, a network failure) is reset, and its statements are
 * prepared again as they are used. While the store cannot be reached,
 * attempts are spaced by a backoff and calls between them fail at once
 * (no connect timeout on every call). */
static int pg_ready(struct pg_conn *c)
{
	/* An idle connection the server closed (it restarted) shows here,
	 * before anything is sent: reading what arrived never blocks. The
	 * call then runs on a fresh connection instead of failing. */
	if (PQstatus(c->db) == CONNECTION_OK && PQconsumeInput(c->db) &&
	    PQstatus(c->db) == CONNECTION_OK) {
		if (PQtransactionStatus(c->db) == PQTRANS_IDLE)
			return 0;
		/* A call that failed half-way left a transaction open. */
		return pg_simple(c, "ROLLBACK", "ROLLBACK");
	}
	int64_t now = clock_mono_us();
	if (now < c->retry_us)
		return SL_EMETA;
	/* A call bounded as a whole (pg_txn_within, pg_txn_renew) whose
	 * time is up has none left to connect: the next call tries. */
	if (c->until_us && c->until_us <= now)
		return SL_EMETA;
	log_debug("metadata store %s (%s): connection lost: reconnecting", c->where, c->role);
	if (c->db)
		conn_reset(c);
	else if (conn_connect(c) == SL_ENOMEM) /* one connected on first use */
		return SL_ENOMEM;
	if (PQstatus(c->db) != CONNECTION_OK) {
		c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : PG_RECONNECT_BACKOFF_MIN_MS;
		if (c->backoff_ms > PG_RECONNECT_BACKOFF_MAX_MS)
			c->backoff_ms = PG_RECONNECT_BACKOFF_MAX_MS;
		c->retry_us = clock_mono_us() + c->backoff_ms * 1000;
		outage_begin(c, now);
		return SL_EMETA;
	}
	c->backoff_ms = 0;
	c->retry_us = 0;
	outage_end(c);
	return 0;
}

/* ---- transactions ----
 * sqlite.c's sq_txn, for PostgreSQL: the body runs between BEGIN and
 * COMMIT with the connection's lock held, and again (up to PG_TXN_TRIES
 * runs) when PostgreSQL aborted it for a serialization failure or a
 * deadlock. A body sets its outputs afresh on each run. */
typedef int (*pg_txn_body)(struct pg_conn *c, void *arg);

enum txn_mode {
	TXN_WRITE, /* READ COMMITTED; what must not race takes row locks */
	TXN_READ,  /* one snapshot for several reads */
	/* As TXN_WRITE, but the body sends BEGIN and COMMIT itself, in its
	 * first and last pipelines (pg_pipe_run): two round trips fewer. */
	TXN_PIPELINED,
};

static void pg_rollback(struct pg_conn *c)
{
	if (PQstatus(c->db) != CONNECTION_OK || PQtransactionStatus(c->db) == PQTRANS_IDLE)
		return;
	PGresult *r = pg_answer(c, PQsendQuery(c->db, "ROLLBACK"));
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		pg_fail(c, r, "ROLLBACK");
	PQclear(r);
}

static int pg_txn_locked(struct pg_conn *c, enum txn_mode mode, pg_txn_body body, void *arg)
{
	const char *begin = mode == TXN_READ ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
					     : "BEGIN";
	bool reconnected = false;
	int rc = 0;
	for (int run = 0; run < PG_TXN_TRIES; run++) {
		if (run > 0)
			usleep(1000u << (run < 6 ? run : 6)); /* 2 ms .. 64 ms */
		rc = pg_ready(c);
		if (rc)
			return rc == PG_ERETRY ? SL_EMETA : rc;
		if (mode == TXN_PIPELINED) {
			c->txn_fresh = true;
			rc = body(c, arg);
			if (rc == PG_ERECONNECT && !reconnected) {
				/* As a BEGIN's below: nothing ran. */
				reconnected = true;
				rc = pg_ready(c);
				c->txn_fresh = true;
				if (!rc)
					rc = body(c, arg);
			}
			c->txn_fresh = false;
			if (rc == PG_ERECONNECT)
				rc = SL_EMETA;
			if (rc)
				pg_rollback(c);
			if (rc != PG_ERETRY)
				return rc;
			continue;
		}
		rc = pg_simple(c, begin, "BEGIN");
		if (rc && !reconnected && PQstatus(c->db) != CONNECTION_OK) {
			/* The server closed the connection while it was idle (a
			 * restart) and BEGIN found out: nothing ran, so once
			 * more on a fresh connection. */
			reconnected = true;
			rc = pg_ready(c);
			if (!rc)
				rc = pg_simple(c, begin, "BEGIN");
		}
		if (!rc)
			rc = body(c, arg);
		if (!rc)
			rc = pg_simple(c, "COMMIT", "COMMIT");
		if (rc)
			pg_rollback(c);
		if (rc != PG_ERETRY)
			return rc;
	}
	log_error("metadata store %s (%s): a transaction met %d serialization failures or "
		  "deadlocks in a row: giving up", c->where, c->role, PG_TXN_TRIES);
	return SL_EMETA;
}

static int pg_txn(struct pg_conn *c, enum txn_mode mode, pg_txn_body body, void *arg)
{
	pthread_mutex_lock(&c->lock);
	int rc = pg_txn_locked(c, mode, body, arg);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* pg_txn bounded as a whole, its reruns and reconnect included: every
 * round trip ends by from_us + ms (clock_mono_us; from_us: when the
 * caller began, before it waited for the lock), not by the connection's
 * bound each. With lease_ms > 0 the call renews something that lease
 * long (pg_txn_renew): later still when the last renewal allows, and
 * remembered on success. */
static int pg_txn_bounded(struct pg_conn *c, enum txn_mode mode, pg_txn_body body, void *arg,
			  int64_t from_us, int ms, int64_t lease_ms)
{
	pthread_mutex_lock(&c->lock);
	int64_t until = from_us + (int64_t)ms * 1000;
	if (lease_ms > 0 && c->renewed_us) {
		int64_t end = c->renewed_us + (lease_ms - SL_META_PG_RENEW_MARGIN_MS) * 1000;
		if (end > until)
			until = end;
	}
	c->until_from_us = from_us;
	c->until_us = until;
	int rc = pg_txn_locked(c, mode, body, arg);
	c->until_us = 0;
	if (!rc && lease_ms > 0)
		c->renewed_us = from_us;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static int pg_txn_within(struct pg_conn *c, enum txn_mode mode, pg_txn_body body, void *arg,
			 int64_t from_us, int ms)
{
	return pg_txn_bounded(c, mode, body, arg, from_us, ms, 0);
}

/* A heartbeat's or a lease sync's transaction (c: the cluster or the
 * leases connection): what it renews ends lease_ms after the last call
 * that renewed it began (the store's clock read inside that call, later
 * still, starts the lease), so it is given up SL_META_PG_RENEW_MARGIN_MS
 * before that (a slow but answering server has until then, however many
 * round trips it takes), leaving the margin for the next call, on a
 * fresh connection, to renew in time when only this connection is
 * stuck. Never less than the cluster bound (nothing renewed yet, or
 * the lease already past its end: it is taken again if still free).
 * On success the renewal is remembered. */
static int pg_txn_renew(struct pg_conn *c, pg_txn_body body, void *arg, int64_t lease_ms)
{
	return pg_txn_bounded(c, TXN_WRITE, body, arg, clock_mono_us(),
			      c->store->cluster_timeout_ms, lease_ms);
}

/* One statement outside a transaction (it is its own), under c's lock:
 * *res gets its result. */
static int pg_call_locked(struct pg_conn *c, enum stmt s, const struct pg_params *p,
			  PGresult **res, const char *what)
{
	int rc = pg_ready(c);
	if (!rc)
		rc = pg_run(c, s, p, res, what);
	return rc == PG_ERETRY ? SL_EMETA : rc;
}

static int pg_call(struct pg_conn *c, enum stmt s, const struct pg_params *p, PGresult **res,
		   const char *what)
{
	pthread_mutex_lock(&c->lock);
	int rc = pg_call_locked(c, s, p, res, what);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* ---- pipelines ----
 * Statements that need no result of each other, sent together in
 * libpq's pipeline mode and answered together: one round trip, so one
 * wake-up of this thread and of the server's process, instead of one
 * per statement (on a loaded machine each wake-up waits for a core).
 * The server still runs them one after the other, in the given order,
 * each with its own snapshot; the first that fails skips the rest
 * (PGRES_PIPELINE_ABORTED) and leaves the transaction failed, as the
 * same statements run one by one would. */
#define PG_PIPE_STEPS_MAX 8

struct pg_pipe_step {
	const char *sql;  /* BEGIN, COMMIT: a statement without parameters; or */
	enum stmt s;      /* a prepared statement with p */
	const struct pg_params *p;
	PGresult **res;   /* NULL: cleared */
	const char *what;
};

/* After the sync, or when sending failed: reads what is left and leaves
 * pipeline mode; a connection that will not leave it is reset (true:
 * its transaction is gone, the caller's statements after this must not
 * run on the fresh connection as if in it). */
static bool pipe_drain(struct pg_conn *c, bool synced)
{
	for (int k = 0; synced && k < 4 * PG_PIPE_STEPS_MAX && PQstatus(c->db) == CONNECTION_OK;
	     k++) {
		PGresult *r = pg_get(c);
		if (!r)
			continue;
		bool sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
		PQclear(r);
		if (sync)
			break;
	}
	if (PQexitPipelineMode(c->db) != 1 && PQstatus(c->db) == CONNECTION_OK) {
		log_warn("metadata store %s (%s): a pipeline did not end: reconnecting", c->where,
			 c->role);
		conn_reset(c);
		return true;
	}
	return false;
}

/* rc of a pipeline that failed before its results were read: a
 * transaction's first pipeline (fresh) that found the connection gone
 * ran nothing. */
static int pipe_lost(struct pg_conn *c, bool fresh, int rc)
{
	return rc == SL_EMETA && fresh && PQstatus(c->db) != CONNECTION_OK ? PG_ERECONNECT : rc;
}

static void pipe_results_clear(const struct pg_pipe_step *steps, int n)
{
	for (int i = 0; i < n; i++) {
		if (steps[i].res) {
			PQclear(*steps[i].res);
			*steps[i].res = NULL;
		}
	}
}

/* Runs steps[0..n) as one pipeline; each step's result in *res (NULL
 * when it did not run). Returns 0, PG_ERETRY or SL_EMETA (logged) for the
 * first step that failed, or PG_ERECONNECT when the connection was found
 * gone by a transaction's first pipeline (nothing ran: c->txn_fresh). */
static int pg_pipe_run(struct pg_conn *c, const struct pg_pipe_step *steps, int n)
{
	if (n <= 0 || n > PG_PIPE_STEPS_MAX)
		return SL_EINVAL;
	bool fresh = c->txn_fresh;
	c->txn_fresh = false;
	int rc = 0;
	for (int i = 0; i < n; i++) {
		if (steps[i].sql && !strcmp(steps[i].sql, "COMMIT"))
			fresh = false; /* it may have committed */
		if (steps[i].res)
			*steps[i].res = NULL;
		if (!rc && !steps[i].sql)
			rc = pg_prepare(c, steps[i].s); /* the first use only */
	}
	if (rc)
		return pipe_lost(c, fresh, rc);
	if (PQenterPipelineMode(c->db) != 1)
		return pipe_lost(c, fresh, pg_fail(c, NULL, "entering pipeline mode"));
	for (int i = 0; i < n; i++) {
		const struct pg_pipe_step *t = &steps[i];
		int ok;
		if (t->sql) {
			ok = PQsendQueryParams(c->db, t->sql, 0, NULL, NULL, NULL, NULL, 0);
		} else {
			char name[16];
			stmt_name(name, sizeof name, t->s);
			ok = PQsendQueryPrepared(c->db, name, t->p ? t->p->n : 0,
						 t->p ? t->p->v : NULL, NULL, NULL, 0);
		}
		if (!ok) {
			rc = pg_fail(c, NULL, t->what);
			pipe_drain(c, false);
			return pipe_lost(c, fresh, rc);
		}
	}
	if (PQpipelineSync(c->db) != 1) {
		rc = pg_fail(c, NULL, "sending a pipeline");
		pipe_drain(c, false);
		return pipe_lost(c, fresh, rc);
	}
	pg_deadline_start(c);
	/* Each step's result, then the NULL that ends it. */
	bool broken = false;
	for (int i = 0; i < n && !broken; i++) {
		PGresult *r = pg_get(c);
		if (!r) {
			broken = true;
			break;
		}
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_PIPELINE_ABORTED || rc) {
			PQclear(r); /* skipped after an earlier failure */
		} else {
			rc = pg_result(c, r, steps[i].res, steps[i].what);
			if (rc && PQstatus(c->db) != CONNECTION_OK)
				broken = true;
		}
		while (!broken && (r = pg_get(c)) != NULL) /* nothing more, normally */
			PQclear(r);
	}
	if (broken || PQstatus(c->db) != CONNECTION_OK) {
		if (!rc)
			rc = pg_fail(c, NULL, steps[0].what);
		pipe_results_clear(steps, n);
		pipe_drain(c, false);
		return fresh ? PG_ERECONNECT : SL_EMETA;
	}
	if (pipe_drain(c, true) && !rc)
		rc = SL_EMETA;
	if (rc)
		pipe_results_clear(steps, n);
	return rc;
}

/* ---- growable text for array parameters ("{1,2,3}") ---- */

struct pg_text {
	char *p;
	size_t len, cap;
	bool failed;
};

static void tx_put(struct pg_text *t, const char *s, size_t n)
{
	if (t->failed)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 256;
		while (cap < t->len + n + 1)
			cap *= 2;
		char *p = realloc(t->p, cap);
		if (!p) {
			t->failed = true;
			return;
		}
		t->p = p;
		t->cap = cap;
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = 0;
}

/* Appends one element of an array literal, opening it with the first. */
static void tx_sep(struct pg_text *t)
{
	tx_put(t, t->len ? "," : "{", 1);
}

static void tx_i64(struct pg_text *t, int64_t v)
{
	char b[24];
	tx_sep(t);
	tx_put(t, b, (size_t)snprintf(b, sizeof b, "%" PRId64, v));
}

static void tx_str(struct pg_text *t, const char *s)
{
	tx_sep(t);
	tx_put(t, "\"", 1);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			tx_put(t, "\\", 1);
		tx_put(t, s, 1);
	}
	tx_put(t, "\"", 1);
}

/* Closes the literal ("{}" for no elements); NULL when out of memory. */
static const char *tx_end(struct pg_text *t)
{
	if (!t->len)
		tx_put(t, "{", 1);
	tx_put(t, "}", 1);
	return t->failed ? NULL : t->p;
}

/* ---- topics ---- */

/* The uuid type's text form and back. */
static void uuid_format(char out[37], const uint8_t u[16])
{
	static const char hex[] = "0123456789abcdef";
	size_t j = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[j++] = '-';
		out[j++] = hex[u[i] >> 4];
		out[j++] = hex[u[i] & 15];
	}
	out[j] = 0;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
		: c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void uuid_parse(uint8_t u[16], const char *s)
{
	memset(u, 0, 16);
	for (int i = 0; i < 16 && *s;) {
		if (*s == '-') {
			s++;
			continue;
		}
		int hi = hexval(s[0]), lo = s[1] ? hexval(s[1]) : -1;
		if (hi < 0 || lo < 0)
			return;
		u[i++] = (uint8_t)(hi << 4 | lo);
		s += 2;
	}
}

static int topic_id_by_name(struct pg_conn *c, const char *name, int64_t *tid)
{
	struct pg_params p = { 0 };
	p_str(&p, name);
	PGresult *r;
	int rc = pg_run(c, ST_TOPIC_ID_BY_NAME, &p, &r, "looking up a topic");
	if (rc)
		return rc;
	rc = PQntuples(r) ? 0 : SL_ENOTFOUND;
	if (!rc)
		*tid = v_i64(r, 0, 0);
	PQclear(r);
	return rc;
}

/* Locks the topic's row: SL_ENOTFOUND if it has none. */
static int topic_partition_count(struct pg_conn *c, int64_t tid, int32_t *count)
{
	struct pg_params p = { 0 };
	p_i64(&p, tid);
	PGresult *r;
	int rc = pg_run(c, ST_TOPIC_COUNT, &p, &r, "reading a topic");
	if (rc)
		return rc;
	rc = PQntuples(r) ? 0 : SL_ENOTFOUND;
	if (!rc)
		*count = (int32_t)v_i64(r, 0, 0);
	PQclear(r);
	return rc;
}

static int partitions_insert(struct pg_conn *c, int64_t tid, int32_t from, int32_t to)
{
	struct pg_params p = { 0 };
	p_i64(&p, tid);
	p_i64(&p, from);
	p_i64(&p, to);
	return pg_run(c, ST_PARTITIONS_INSERT, &p, NULL, "inserting partitions");
}

/* Partitions [r->first, r->first + count)'s assignment rows, in one
 * statement (an array literal of quoted "1,2,3" texts). */
static int replicas_insert(struct pg_conn *c, int64_t tid, const struct meta_replicas *r,
			   int32_t count)
{
	if (!r)
		return 0;
	size_t cap = (size_t)count * ((size_t)r->replication * 12 + 3) + 3, len = 0;
	char *arr = malloc(cap);
	if (!arr)
		return SL_ENOMEM;
	char text[META_REPLICAS_TEXT_BYTES];
	arr[len++] = '{';
	for (int32_t i = 0; i < count; i++) {
		meta_replicas_format(r, i, text);
		len += (size_t)snprintf(arr + len, cap - len, "%s\"%s\"", i ? "," : "", text);
	}
	snprintf(arr + len, cap - len, "}");
	struct pg_params p = { 0 };
	p_i64(&p, tid);
	p_i64(&p, r->first);
	p_str(&p, arr);
	int rc = pg_run(c, ST_REPLICAS_INSERT, &p, NULL, "inserting replica assignments");
	free(arr);
	return rc;
}

static int config_set(struct pg_conn *c, int64_t tid, const char *name, const char *value)
{
	struct pg_params p = { 0 };
	p_i64(&p, tid);
	p_str(&p, name);
	if (value)
		p_str(&p, value);
	return pg_run(c, value ? ST_CONFIG_UPSERT : ST_CONFIG_DELETE, &p, NULL,
		      value ? "setting a topic config" : "deleting a topic config");
}

/* Inside every topic change's transaction: the other agents' polls see
 * the catalog moved (meta_catalog_read). The row lock also queues topic
 * changes of all agents one behind the other, which they are rare enough
 * for. */
static int catalog_raise(struct pg_conn *c)
{
	return pg_run(c, ST_CATALOG_RAISE, NULL, NULL, "raising the catalog version");
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

static int topic_create_body(struct pg_conn *c, void *arg)
{
	struct topic_create_txn *x = arg;
	int rc = meta_random_uuid(x->uuid);
	if (rc)
		return rc;
	char uuid[37];
	uuid_format(uuid, x->uuid);
	struct pg_params p = { 0 };
	p_str(&p, x->name);
	p_str(&p, uuid);
	p_i64(&p, x->partitions);
	p_i64(&p, clock_wall_ms());
	PGresult *r;
	rc = pg_run(c, ST_TOPIC_INSERT, &p, &r, "inserting a topic");
	if (rc)
		return rc;
	rc = PQntuples(r) ? 0 : SL_EEXIST;
	if (!rc)
		x->tid = v_i64(r, 0, 0);
	PQclear(r);
	if (!rc)
		rc = partitions_insert(c, x->tid, 0, x->partitions);
	if (!rc)
		rc = replicas_insert(c, x->tid, x->replicas, x->partitions);
	for (int32_t i = 0; !rc && i < x->config_count; i++)
		rc = config_set(c, x->tid, x->configs[i].name, x->configs[i].value);
	return rc ? rc : catalog_raise(c);
}

static int pg_topic_create(struct meta *m, const char *name, int32_t partitions,
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
	rc = pg_txn(&pg_of(m)->admin, TXN_WRITE, topic_create_body, &x);
	if (rc) {
		meta_topic_free(out);
		return rc;
	}
	out->tid = x.tid;
	meta_topic_out_fill(out, name, partitions, configs, config_count, replicas);
	return 0;
}

static int topic_delete_body(struct pg_conn *c, void *arg)
{
	static const enum stmt deletes[] = {
		ST_OBJECT_SUBTRACT_TOPIC, /* before the batch rows go */
		ST_BATCH_DELETE_TOPIC,
		ST_PSTATE_DELETE_TOPIC,
		ST_PTXN_DELETE_TOPIC,
		ST_ABORTED_DELETE_TOPIC,
		ST_TXN_OFFSETS_DELETE_TOPIC,
		ST_PARTITION_DELETE_TOPIC,
		ST_OFFSET_DELETE_TOPIC,
		ST_CONFIG_DELETE_TOPIC,
		ST_REPLICAS_DELETE_TOPIC,
		ST_TOPIC_DELETE,
	};
	int64_t tid;
	int32_t count;
	int rc = topic_id_by_name(c, arg, &tid);
	if (!rc) /* its lock: a concurrent grow or config change waits */
		rc = topic_partition_count(c, tid, &count);
	if (!rc) { /* its partitions' (ST_TOPIC_PARTS_LOCK) */
		struct pg_params p = { 0 };
		p_i64(&p, tid);
		rc = pg_run(c, ST_TOPIC_PARTS_LOCK, &p, NULL, "locking a topic's partitions");
	}
	for (size_t i = 0; !rc && i < sizeof deletes / sizeof deletes[0]; i++) {
		struct pg_params p = { 0 };
		p_i64(&p, tid);
		if (deletes[i] == ST_OBJECT_SUBTRACT_TOPIC)
			p_i64(&p, clock_wall_ms());
		rc = pg_run(c, deletes[i], &p, NULL, "deleting a topic");
	}
	return rc ? rc : catalog_raise(c);
}

static int pg_topic_delete(struct meta *m, const char *name)
{
	if (!name)
		return SL_EINVAL;
	return pg_txn(&pg_of(m)->admin, TXN_WRITE, topic_delete_body, (void *)name);
}

struct topic_list_txn {
	struct meta_topic *t; /* out */
	size_t count;
};

/* Hands each row of statement id (ordered by tid, the tid first) to row
 * with its topic in t (ordered by tid); rows of topics that are gone are
 * skipped. 0, SL_ENOMEM (from row) or SL_EMETA. */
static int topics_attach(struct pg_conn *c, enum stmt id, struct meta_topic *t, size_t n,
			 int (*row)(struct meta_topic *t, PGresult *r, int i), const char *what)
{
	PGresult *r;
	int rc = pg_run(c, id, NULL, &r, what);
	if (rc)
		return rc;
	size_t i = 0;
	for (int k = 0; k < PQntuples(r); k++) {
		int64_t tid = v_i64(r, k, 0);
		while (i < n && t[i].tid < tid)
			i++;
		if (i == n)
			break;
		if (t[i].tid == tid && (rc = row(&t[i], r, k)) != 0)
			break;
	}
	PQclear(r);
	return rc;
}

static int config_row(struct meta_topic *t, PGresult *r, int i)
{
	if (t->config_count >= SL_CONFIGS_MAX)
		return 0;
	struct meta_config *cf = realloc(t->configs, (size_t)(t->config_count + 1) * sizeof *cf);
	if (!cf)
		return SL_ENOMEM;
	t->configs = cf;
	cf += t->config_count++;
	v_text(cf->name, sizeof cf->name, r, i, 1);
	v_text(cf->value, sizeof cf->value, r, i, 2);
	return 0;
}

/* A row this code cannot read is left out (logged). */
static int replicas_row(struct meta_topic *t, PGresult *r, int i)
{
	return meta_topic_replicas_put(t, (int32_t)v_i64(r, i, 1), PQgetvalue(r, i, 2)) == SL_ENOMEM
		? SL_ENOMEM : 0;
}

static int topic_list_body(struct pg_conn *c, void *arg)
{
	struct topic_list_txn *x = arg;
	meta_topics_free(x->t, x->count);
	x->t = NULL;
	x->count = 0;
	PGresult *r;
	int rc = pg_run(c, ST_TOPIC_LIST, NULL, &r, "listing topics");
	if (rc)
		return rc;
	int rows = PQntuples(r);
	if (rows > 0 && !(x->t = calloc((size_t)rows, sizeof *x->t)))
		rc = SL_ENOMEM;
	for (int i = 0; !rc && i < rows; i++) {
		struct meta_topic *tp = &x->t[x->count++];
		tp->tid = v_i64(r, i, 0);
		v_text(tp->name, sizeof tp->name, r, i, 1);
		uuid_parse(tp->uuid, PQgetvalue(r, i, 2));
		tp->partition_count = (int32_t)v_i64(r, i, 3);
	}
	PQclear(r);
	if (!rc)
		rc = topics_attach(c, ST_CONFIG_LIST, x->t, x->count, config_row,
				   "listing topic configs");
	return rc ? rc : topics_attach(c, ST_REPLICAS_LIST, x->t, x->count, replicas_row,
				       "listing replica assignments");
}

static int pg_topic_list(struct meta *m, struct meta_topic **out, size_t *n)
{
	struct topic_list_txn x = { NULL, 0 };
	*out = NULL;
	*n = 0;
	int rc = pg_txn(&pg_of(m)->loop, TXN_READ, topic_list_body, &x);
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

static int topic_set_partitions_body(struct pg_conn *c, void *arg)
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
	struct pg_params p = { 0 };
	p_i64(&p, x->tid);
	p_i64(&p, x->new_count);
	rc = pg_run(c, ST_TOPIC_SET_COUNT, &p, NULL, "growing a topic");
	return rc ? rc : catalog_raise(c);
}

static int pg_topic_set_partitions(struct meta *m, int64_t tid, int32_t new_count,
				   const struct meta_replicas *replicas)
{
	if (new_count < 1 || new_count > SL_PARTITIONS_PER_TOPIC_MAX ||
	    (replicas && (replicas->first >= new_count ||
			  meta_replicas_check(replicas, new_count - replicas->first))))
		return SL_EINVAL;
	struct set_partitions_txn x = { tid, new_count, replicas };
	return pg_txn(&pg_of(m)->admin, TXN_WRITE, topic_set_partitions_body, &x);
}

struct configs_set_txn {
	int64_t tid;
	const struct meta_config_change *changes;
	size_t n;
};

static int topic_configs_set_body(struct pg_conn *c, void *arg)
{
	struct configs_set_txn *x = arg;
	int32_t count;
	int rc = topic_partition_count(c, x->tid, &count); /* SL_ENOTFOUND: no such topic */
	for (size_t i = 0; !rc && i < x->n; i++)
		rc = config_set(c, x->tid, x->changes[i].name, x->changes[i].value);
	return rc ? rc : catalog_raise(c);
}

static int pg_topic_configs_set(struct meta *m, int64_t tid,
				const struct meta_config_change *changes, size_t n)
{
	int rc = meta_configs_check(changes, n);
	if (rc)
		return rc;
	struct configs_set_txn x = { tid, changes, n };
	return pg_txn(&pg_of(m)->admin, TXN_WRITE, topic_configs_set_body, &x);
}

/* ---- partitions ---- */

/* With c's lock held: SL_ENOTFOUND when the partition has no row. */
/* As sqlite.c's: first_unstable (may be NULL) gets the first offset of
 * the earliest open transaction (-1: none). */
static int partition_read_clean(struct pg_conn *c, int64_t tid, int32_t partition,
				int64_t *log_start, int64_t *hwm, int64_t *first_unstable,
				int64_t *clean_offset)
{
	struct pg_params p = { 0 };
	p_i64(&p, tid);
	p_i64(&p, partition);
	PGresult *r;
	int rc = pg_call_locked(c, ST_PARTITION_GET, &p, &r, "reading a partition");
	if (rc)
		return rc;
	rc = PQntuples(r) ? 0 : SL_ENOTFOUND;
	if (!rc) {
		*log_start = v_i64(r, 0, 0);
		*hwm = v_i64(r, 0, 1);
		if (first_unstable)
			*first_unstable = v_i64(r, 0, 2);
		if (clean_offset)
			*clean_offset = v_i64(r, 0, 3);
	}
	PQclear(r);
	return rc;
}

static int partition_read(struct pg_conn *c, int64_t tid, int32_t partition, int64_t *log_start,
			  int64_t *hwm, int64_t *first_unstable)
{
	return partition_read_clean(c, tid, partition, log_start, hwm, first_unstable, NULL);
}

static int pg_partition_get(struct meta *m, int64_t tid, int32_t partition,
			    struct meta_partition *out)
{
	struct pg_conn *c = &pg_of(m)->loop;
	int64_t first_unstable;
	pthread_mutex_lock(&c->lock);
	int rc = partition_read_clean(c, tid, partition, &out->log_start_offset,
				      &out->high_watermark, &first_unstable, &out->clean_offset);
	pthread_mutex_unlock(&c->lock);
	if (!rc) {
		out->tid = tid;
		out->partition = partition;
		out->last_stable_offset = meta_lso(out->log_start_offset, out->high_watermark,
						   first_unstable);
	}
	return rc;
}

static int partitions_from(PGresult *r, struct meta_partition **out, size_t *n);

static int pg_partition_list(struct meta *m, struct meta_partition **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	PGresult *r;
	int rc = pg_call(&pg_of(m)->loop, ST_PARTITION_LIST, NULL, &r, "listing partitions");
	if (rc)
		return rc;
	return partitions_from(r, out, n);
}

/* Takes r (ST_PARTITION_LIST's rows): *out, *n, or SL_ENOMEM. */
static int partitions_from(PGresult *r, struct meta_partition **out, size_t *n)
{
	int rows = PQntuples(r);
	struct meta_partition *p = rows ? calloc((size_t)rows, sizeof *p) : NULL;
	if (rows && !p) {
		PQclear(r);
		return SL_ENOMEM;
	}
	for (int i = 0; i < rows; i++) {
		p[i].tid = v_i64(r, i, 0);
		p[i].partition = (int32_t)v_i64(r, i, 1);
		p[i].log_start_offset = v_i64(r, i, 2);
		p[i].high_watermark = v_i64(r, i, 3);
		p[i].last_stable_offset = meta_lso(p[i].log_start_offset, p[i].high_watermark,
						   v_i64(r, i, 4));
	}
	PQclear(r);
	*out = p;
	*n = (size_t)rows;
	return 0;
}

/* Runs stmt (tid $1, partition $2, offset $3) on c (its lock held):
 * *changed (may be NULL) gets the rows it changed. */
static int trim_exec(struct pg_conn *c, enum stmt s, int64_t tid, int32_t partition,
		     int64_t offset, int64_t *changed, const char *what)
{
	struct pg_params p = { 0 };
	p_i64(&p, tid);
	p_i64(&p, partition);
	p_i64(&p, offset);
	if (s == ST_PARTITION_SET_LOG_START)
		p_str(&p, c->store->token); /* its notice: this store's own is skipped */
	if (s == ST_OBJECT_SUBTRACT_BELOW)
		p_i64(&p, clock_wall_ms());
	PGresult *r;
	int rc = pg_run(c, s, &p, &r, what);
	if (!rc && changed)
		*changed = changed_rows(r);
	PQclear(r);
	return rc;
}

static int pg_partition_set_log_start(struct meta *m, int64_t tid, int32_t partition,
				      int64_t log_start_offset)
{
	struct pg_conn *c = &pg_of(m)->loop;
	int64_t changed = 0;
	pthread_mutex_lock(&c->lock);
	int rc = pg_ready(c);
	if (!rc)
		rc = trim_exec(c, ST_PARTITION_SET_LOG_START, tid, partition, log_start_offset,
			       &changed, "setting the log start offset");
	pthread_mutex_unlock(&c->lock);
	if (rc)
		return rc == PG_ERETRY ? SL_EMETA : rc;
	return changed ? 0 : SL_ENOTFOUND;
}

/* Where t's time and size limits put the log start, from `from` on: the
 * rows a page at a time (a long partition is not read whole when the
 * first rows already stop the scan). c's lock held, no transaction. */
static int trim_point(struct pg_conn *c, int64_t tid, int32_t partition, int64_t from,
		      const struct meta_trim *t, int64_t *point)
{
	*point = from;
	if (!meta_trim_needs_scan(t))
		return 0;
	int64_t live = 0;
	PGresult *r;
	int rc;
	if (t->retention_bytes >= 0) {
		struct pg_params p = { 0 };
		p_i64(&p, tid);
		p_i64(&p, partition);
		p_i64(&p, from);
		rc = pg_call_locked(c, ST_BATCHES_LIVE_BYTES, &p, &r, "summing a partition's bytes");
		if (rc)
			return rc;
		live = PQntuples(r) ? v_i64(r, 0, 0) : 0;
		PQclear(r);
	}
	struct meta_trim_scan scan;
	meta_trim_scan_init(&scan, t, from, live);
	for (int64_t next = from;;) {
		struct pg_params p = { 0 };
		p_i64(&p, tid);
		p_i64(&p, partition);
		p_i64(&p, next);
		p_i64(&p, PG_TRIM_SCAN_PAGE);
		rc = pg_call_locked(c, ST_BATCHES_TRIM_SCAN, &p, &r, "scanning a partition's batches");
		if (rc)
			return rc;
		int rows = PQntuples(r), i;
		for (i = 0; i < rows; i++) {
			struct meta_batch_row row = {
				.base_offset = v_i64(r, i, 0), .last_offset = v_i64(r, i, 1),
				.byte_offset = (uint64_t)v_i64(r, i, 2), .length = (uint32_t)v_i64(r, i, 3),
				.max_timestamp = v_i64(r, i, 4),
			};
			if (!meta_trim_scan_batches(&scan, &row, PQgetisnull(r, i, 6) ? NULL
						    : PQgetvalue(r, i, 6), v_i64(r, i, 5), from, &rc))
				break;
		}
		if (rows)
			next = v_i64(r, rows - 1, 1) + 1;
		PQclear(r);
		if (rc)
			return rc;
		if (i < rows || rows < PG_TRIM_SCAN_PAGE)
			break;
	}
	*point = scan.point;
	return 0;
}

/* The last offset of the (skip + 1)-th row below `below`: 1 with *last
 * set, 0 when there are not that many rows, or an error. */
static int chunk_end(struct pg_conn *c, int64_t tid, int32_t partition, int64_t below,
		     int64_t skip, int64_t *last)
{
	struct pg_params p = { 0 };
	p_i64(&p, tid);
	p_i64(&p, partition);
	p_i64(&p, below);
	p_i64(&p, skip);
	PGresult *r;
	int rc = pg_run(c, ST_BATCHES_CHUNK_END, &p, &r, "finding rows to trim");
	if (rc)
		return rc;
	rc = PQntuples(r) ? 1 : 0;
	if (rc)
		*last = v_i64(r, 0, 0);
	PQclear(r);
	return rc;
}

struct trim_chunk_txn {
	int64_t tid;
	int32_t partition;
	int64_t below;
	bool more; /* out */
};

static int trim_chunk_body(struct pg_conn *c, void *arg)
{
	struct trim_chunk_txn *x = arg;
	int64_t end = x->below;
	int rc = chunk_end(c, x->tid, x->partition, x->below, META_TRIM_CHUNK_ROWS - 1, &end);
	if (rc < 0)
		return rc;
	if (rc == 1)
		end++;
	rc = trim_exec(c, ST_OBJECT_SUBTRACT_BELOW, x->tid, x->partition, end, NULL,
		       "trimming a partition");
	if (!rc)
		rc = trim_exec(c, ST_BATCH_DELETE_BELOW, x->tid, x->partition, end, NULL,
			       "trimming a partition");
	if (!rc) /* aborted transactions whose markers went */
		rc = trim_exec(c, ST_ABORTED_TRIM, x->tid, x->partition, end, NULL,
			       "trimming a partition");
	x->more = end < x->below;
	return rc;
}

static int trim_chunk(struct pg_conn *c, int64_t tid, int32_t partition, int64_t below,
		      bool *more)
{
	int64_t last;
	*more = false;
	int rc = pg_ready(c);
	if (!rc) /* nothing below the log start (the usual case): no transaction */
		rc = chunk_end(c, tid, partition, below, 0, &last);
	if (rc <= 0)
		return rc == PG_ERETRY ? SL_EMETA : rc;
	struct trim_chunk_txn x = { tid, partition, below, false };
	rc = pg_txn_locked(c, TXN_WRITE, trim_chunk_body, &x);
	*more = x.more;
	return rc;
}

/* As sqlite.c's: the log start moves in its own statement, then the rows
 * below it go a chunk per transaction. */
static int pg_partition_trim(struct meta *m, int64_t tid, int32_t partition,
			     const struct meta_trim *t, int64_t *log_start)
{
	struct pg_conn *c = &pg_of(m)->trim;
	pthread_mutex_lock(&c->lock);
	int64_t start, hwm, first_unstable;
	int rc = partition_read(c, tid, partition, &start, &hwm, &first_unstable);
	if (!rc && t->producers_before_ms > 0)
		rc = trim_exec(c, ST_PSTATE_EXPIRE, tid, partition, t->producers_before_ms, NULL,
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
		rc = trim_exec(c, ST_PARTITION_SET_LOG_START, tid, partition, point, NULL,
			       "moving the log start");
		if (rc)
			goto out;
	}
	rc = partition_read(c, tid, partition, log_start, &hwm, NULL);
	if (rc)
		goto out;
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
	return rc == PG_ERETRY ? SL_EMETA : rc;
}

/* ---- commits ---- */

/* One partition a commit writes: its locked high watermark, advanced as
 * offsets are assigned. */
struct commit_part {
	int64_t tid;
	int32_t partition;
	int64_t hwm;
	int64_t log_start;
	int64_t first_unstable; /* -1: no open transaction */
	bool found;
};

static int cmp_part(const void *a, const void *b)
{
	const struct commit_part *x = a, *y = b;
	if (x->tid != y->tid)
		return x->tid < y->tid ? -1 : 1;
	return (x->partition > y->partition) - (x->partition < y->partition);
}

static struct commit_part *part_find(struct commit_part *parts, size_t n, int64_t tid,
				     int32_t partition)
{
	struct commit_part key = { .tid = tid, .partition = partition };
	return bsearch(&key, parts, n, sizeof *parts, cmp_part);
}

/* The distinct partitions of objs, sorted: the lock order. */
static int commit_parts(const struct meta_commit_obj *objs, size_t count,
			struct commit_part **out, size_t *n)
{
	size_t total = 0, k = 0;
	for (size_t i = 0; i < count; i++)
		total += objs[i].n;
	*out = NULL;
	*n = 0;
	if (!total)
		return 0;
	struct commit_part *p = malloc(total * sizeof *p);
	if (!p)
		return SL_ENOMEM;
	for (size_t i = 0; i < count; i++)
		for (size_t j = 0; j < objs[i].n; j++)
			p[k++] = (struct commit_part){ objs[i].batches[j].tid,
						       objs[i].batches[j].partition, 0, 0, -1, false };
	qsort(p, total, sizeof *p, cmp_part);
	size_t u = 0;
	for (size_t i = 0; i < total; i++)
		if (u == 0 || cmp_part(&p[u - 1], &p[i]) != 0)
			p[u++] = p[i];
	*out = p;
	*n = u;
	return 0;
}

/* The commit's array parameters ($1..$26 of ST_COMMIT_WRITE but $4). */
enum {
	CA_KEY, CA_SIZE, CA_LIVE, CA_OBJ, CA_TID, CA_PART, CA_BASE, CA_LAST, CA_POS, CA_LEN,
	CA_CNT, CA_TS, CA_PID, CA_EPOCH, CA_BSEQ, CA_LSEQ, CA_HTID, CA_HPART, CA_HWM,
	CA_STID, CA_SPART, CA_SPID, CA_SEPOCH, CA_SBATCHES, CA_SPANS, CA_ATTR, CA_HFUO, CA_COUNT
};

struct commit_txn {
	struct meta_commit_obj *objs;
	size_t count;
	struct commit_part *parts;
	size_t nparts;
	struct meta_pstates pstates;
};

/* The states of the commit's idempotent producers, read after the
 * partitions are locked (commits write them only under those locks):
 * ST_PSTATE_READ's parameters into t (3 arrays, freed by the caller). */
static int pstates_params(struct meta_pstates *ps, struct pg_text *t, struct pg_params *p)
{
	for (size_t i = 0; i < ps->n; i++) { /* a rerun starts afresh */
		ps->v[i] = (struct meta_pstate){ .tid = ps->v[i].tid, .partition = ps->v[i].partition,
						 .producer_id = ps->v[i].producer_id, .epoch = -1,
						 .loaded = true };
		tx_i64(&t[0], ps->v[i].tid);
		tx_i64(&t[1], ps->v[i].partition);
		tx_i64(&t[2], ps->v[i].producer_id);
	}
	for (int k = 0; k < 3; k++)
		p_str(p, tx_end(&t[k]));
	return p->v[0] && p->v[1] && p->v[2] ? 0 : SL_ENOMEM;
}

static int pstates_parse(struct meta_pstates *ps, const PGresult *r)
{
	int rc = 0;
	for (int i = 0; !rc && r && i < PQntuples(r); i++) {
		struct meta_pstate *st = meta_pstates_find(ps, v_i64(r, i, 0), (int32_t)v_i64(r, i, 1),
							   v_i64(r, i, 2));
		if (st)
			rc = meta_pstate_parse(st, v_i64(r, i, 3), PQgetvalue(r, i, 4));
	}
	return rc;
}

/* ST_COMMIT_LOCK's parameters into t (2 arrays, freed by the caller):
 * it locks the partitions' rows in (tid, partition) order and reads
 * their high watermarks. */
static int lock_params(struct commit_txn *x, struct pg_text *t, struct pg_params *p)
{
	for (size_t i = 0; i < x->nparts; i++) {
		x->parts[i].found = false;
		tx_i64(&t[0], x->parts[i].tid);
		tx_i64(&t[1], x->parts[i].partition);
	}
	p_str(p, tx_end(&t[0]));
	p_str(p, tx_end(&t[1]));
	return p->v[0] && p->v[1] ? 0 : SL_ENOMEM;
}

/* A partition without a row (its topic deleted) stays not found. */
static void lock_parse(struct commit_txn *x, const PGresult *r)
{
	for (int i = 0; r && i < PQntuples(r); i++) {
		struct commit_part *cp = part_find(x->parts, x->nparts, v_i64(r, i, 0),
						   (int32_t)v_i64(r, i, 1));
		if (cp) {
			cp->hwm = v_i64(r, i, 2);
			cp->log_start = v_i64(r, i, 3);
			cp->first_unstable = v_i64(r, i, 4);
			cp->found = true;
		}
	}
}

/* The commit's first round trip, one pipeline: BEGIN, the gc fence row
 * FOR SHARE (checked against the objects), the partitions' rows FOR
 * UPDATE, the producers' states (its own statement, after the locks:
 * its snapshot holds every earlier commit to those partitions). */
static int commit_open(struct pg_conn *c, struct commit_txn *x)
{
	struct pg_text t[5];
	memset(t, 0, sizeof t);
	struct pg_params lp = { 0 }, sp = { 0 };
	PGresult *fr = NULL, *lr = NULL, *sr = NULL;
	int rc = lock_params(x, t, &lp);
	if (!rc)
		rc = pstates_params(&x->pstates, t + 2, &sp);
	if (!rc) {
		struct pg_pipe_step steps[4] = {
			{ .sql = "BEGIN", .what = "BEGIN" },
			{ .s = ST_GC_FENCE_SHARE, .res = &fr, .what = "reading the gc fence" },
		};
		int n = 2;
		if (x->nparts) /* else an object without batches */
			steps[n++] = (struct pg_pipe_step){ .s = ST_COMMIT_LOCK, .p = &lp, .res = &lr,
							    .what = "locking partitions" };
		if (x->pstates.n)
			steps[n++] = (struct pg_pipe_step){ .s = ST_PSTATE_READ, .p = &sp, .res = &sr,
							    .what = "reading producers' states" };
		rc = pg_pipe_run(c, steps, n);
	}
	if (!rc)
		rc = meta_commit_fence_check(x->objs, x->count,
					     PQntuples(fr) ? v_i64(fr, 0, 0) : 0);
	if (!rc) {
		lock_parse(x, lr);
		rc = pstates_parse(&x->pstates, sr);
	}
	PQclear(fr);
	PQclear(lr);
	PQclear(sr);
	for (int k = 0; k < 5; k++)
		free(t[k].p);
	return rc;
}

static void tx_null(struct pg_text *t)
{
	tx_sep(t);
	tx_put(t, "NULL", 4);
}

/* The row of r's batches (one, or several: meta_int.h) into the batch
 * arrays, for object k (0-based), then r closes. The producer columns say
 * a lone batch's; a row of several has -1 there (producer_state holds the
 * sequences). */
static void row_push(struct pg_text *a, size_t k, struct meta_run *r)
{
	if (!r->open)
		return;
	const struct meta_commit_batch *f = &r->first;
	bool alone = r->count == 1;
	const char *spans = meta_run_spans(r);
	tx_i64(&a[CA_OBJ], (int64_t)k + 1);
	tx_i64(&a[CA_TID], r->tid);
	tx_i64(&a[CA_PART], r->partition);
	tx_i64(&a[CA_BASE], r->row.base_offset);
	tx_i64(&a[CA_LAST], r->row.last_offset);
	tx_i64(&a[CA_POS], (int64_t)r->row.byte_offset);
	tx_i64(&a[CA_LEN], r->row.length);
	tx_i64(&a[CA_CNT], r->row.record_count);
	tx_i64(&a[CA_TS], r->row.max_timestamp);
	tx_i64(&a[CA_PID], alone ? f->producer_id : -1);
	tx_i64(&a[CA_EPOCH], alone ? f->producer_epoch : -1);
	tx_i64(&a[CA_BSEQ], alone ? f->base_sequence : -1);
	tx_i64(&a[CA_LSEQ], alone ? f->last_sequence : -1);
	if (spans)
		tx_str(&a[CA_SPANS], spans);
	else
		tx_null(&a[CA_SPANS]);
	tx_i64(&a[CA_ATTR], meta_batch_attributes(f));
	meta_run_close(r);
}

/* ---- transactions in the commit (docs/transactions.md, sections 3-4;
 * as sqlite.c's, a statement each: only transactional batches, and
 * batches of producers with an open transaction in the partition, pay
 * for them) ---- */

/* Params: text (NULL: none) first, then n int64s. */
static void txn_params(struct pg_params *p, const char *text, int n, ...)
{
	memset(p, 0, sizeof *p);
	if (text)
		p_str(p, text);
	va_list ap;
	va_start(ap, n);
	for (int k = 0; k < n; k++)
		p_i64(p, va_arg(ap, int64_t));
	va_end(ap);
}

/* Runs s: 1 when it returned a row (its first column in *v when v), 0
 * when none, or an error. */
static int txn_row(struct pg_conn *c, enum stmt s, const struct pg_params *p, int64_t *v,
		   const char *what)
{
	PGresult *r;
	int rc = pg_run(c, s, p, &r, what);
	if (rc)
		return rc;
	rc = PQntuples(r) > 0;
	if (rc && v)
		*v = v_i64(r, 0, 0);
	PQclear(r);
	return rc;
}

static int txn_head_read(struct pg_conn *c, const char *id, struct meta_txn_head *h)
{
	struct pg_params p;
	txn_params(&p, id, 0);
	PGresult *r;
	memset(h, 0, sizeof *h);
	int rc = pg_run(c, ST_TXN_HEAD, &p, &r, "reading a transaction");
	if (rc)
		return rc;
	if (PQntuples(r) == 1) {
		h->found = true;
		h->producer_id = v_i64(r, 0, 0);
		h->producer_epoch = (int16_t)v_i64(r, 0, 1);
		h->state = (int)v_i64(r, 0, 2);
		h->txn_seq = v_i64(r, 0, 3);
	}
	PQclear(r);
	return 0;
}

/* The store's check of a batch against the transactions (b->result). */
static int pg_txn_judge(struct pg_conn *c, struct meta_commit_batch *b, int64_t first_unstable)
{
	struct pg_params p;
	struct meta_txn_head h;
	int rc;
	switch (b->kind) {
	case META_BATCH_DATA:
		/* Only a partition with an open transaction can refuse one. */
		if (b->producer_id < 0 || first_unstable < 0)
			return 0;
		txn_params(&p, NULL, 3, b->tid, (int64_t)b->partition, b->producer_id);
		rc = txn_row(c, ST_PTXN_OPEN, &p, NULL, "reading open transactions");
		if (rc > 0)
			b->result = META_BATCH_TXN_OPEN;
		return rc < 0 ? rc : 0;
	case META_BATCH_TXN_DATA:
	case META_BATCH_MARKER:
		rc = txn_head_read(c, b->transactional_id, &h);
		txn_params(&p, b->transactional_id, 2, b->tid, (int64_t)b->partition);
		if (!rc)
			rc = txn_row(c, ST_TXN_PART_GET, &p, NULL, "reading a transaction's partitions");
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

/* As sqlite.c's txn_settle_groups. */
static int txn_settle_groups(struct pg_conn *c, const char *id, bool commit)
{
	struct pg_params p;
	txn_params(&p, id, 0);
	int rc = 0;
	if (commit)
		rc = pg_run(c, ST_TXN_OFFSETS_SETTLE, &p, NULL, "committing txn offsets");
	if (!rc)
		rc = pg_run(c, ST_TXN_OFFSETS_DROP, &p, NULL, "dropping txn offsets");
	if (!rc)
		rc = pg_run(c, ST_TXN_GROUPS_CLEAR, &p, NULL, "dropping txn groups");
	return rc;
}

/* A marker's partition is done (sqlite.c's txn_partition_done). */
static int txn_partition_done(struct pg_conn *c, const struct meta_commit_batch *b)
{
	struct pg_params p;
	txn_params(&p, b->transactional_id, 2, b->tid, (int64_t)b->partition);
	int rc = pg_run(c, ST_TXN_PART_DELETE, &p, NULL, "dropping a transaction's partition");
	txn_params(&p, b->transactional_id, 0);
	if (!rc)
		rc = txn_row(c, ST_TXN_PART_LEFT, &p, NULL, "reading a transaction's partitions");
	if (rc == 0)
		rc = txn_settle_groups(c, b->transactional_id, b->marker_commit);
	return rc < 0 ? rc : 0;
}

/* A marker for a partition deleted meanwhile: owed no more. */
static int pg_marker_gone(struct pg_conn *c, struct meta_commit_batch *b)
{
	b->result = META_BATCH_APPENDED;
	int rc = pg_txn_judge(c, b, -1);
	if (!rc && b->result == META_BATCH_APPENDED)
		rc = txn_partition_done(c, b);
	b->result = META_BATCH_NO_PARTITION;
	return rc;
}

/* As sqlite.c's txn_appended. */
static int pg_txn_appended(struct pg_conn *c, struct meta_commit_batch *b, int64_t *first_unstable)
{
	struct pg_params p;
	if (b->kind == META_BATCH_TXN_DATA) {
		txn_params(&p, NULL, 5, b->tid, (int64_t)b->partition, b->producer_id,
			   (int64_t)b->producer_epoch, b->base_offset);
		p_str(&p, b->transactional_id);
		int rc = pg_run(c, ST_PTXN_INSERT, &p, NULL, "opening a transaction in a partition");
		if (!rc && *first_unstable < 0)
			*first_unstable = b->base_offset;
		return rc;
	}
	if (b->kind != META_BATCH_MARKER)
		return 0;
	txn_params(&p, NULL, 2, b->tid, (int64_t)b->partition);
	p_str(&p, b->transactional_id);
	PGresult *r;
	int rc = pg_run(c, ST_PTXN_TAKE, &p, &r, "closing a transaction in a partition");
	if (rc)
		return rc;
	/* One row per producer id (meta_marker_aborts). */
	int n = PQntuples(r);
	for (int i = 0; !rc && i < n; i++) {
		struct meta_aborted_txn a = { v_i64(r, i, 0), v_i64(r, i, 1), b->base_offset };
		if (!meta_marker_aborts(b, a.producer_id))
			continue;
		struct pg_params q;
		txn_params(&q, NULL, 5, b->tid, (int64_t)b->partition, a.last_offset, a.first_offset,
			   a.producer_id);
		rc = pg_run(c, ST_ABORTED_INSERT, &q, NULL, "recording an abort");
		if (!rc)
			meta_marker_aborted_note(b, a);
	}
	PQclear(r);
	txn_params(&p, NULL, 2, b->tid, (int64_t)b->partition);
	if (!rc && n > 0)
		rc = txn_row(c, ST_PTXN_FIRST, &p, first_unstable, "reading open transactions");
	txn_params(&p, NULL, 6, b->tid, (int64_t)b->partition, b->producer_id,
		   (int64_t)b->producer_epoch, clock_wall_ms(), (int64_t)b->coordinator_epoch);
	if (rc >= 0)
		rc = pg_run(c, ST_PSTATE_MARKER, &p, NULL, "recording a marker in its producer's state");
	if (rc >= 0)
		rc = txn_partition_done(c, b);
	return rc < 0 ? rc : 0;
}

/* One commit payload: "2 TOKEN SIZE KEYLEN:KEY" and per batch
 * " TID,PARTITION,BASE,DELTA,POS,LENGTH,COUNT,MAXTS,LSO" (DELTA: last -
 * base; LSO: the partition's last stable offset after the commit),
 * parsed by notice_commit. Version 1 (before issue 14's LSO) had no LSO:
 * still read, its LSO unknown. */
static size_t notify_head(char *out, size_t cap, const char *token, const struct meta_commit_obj *o)
{
	int n = snprintf(out, cap, "2 %s %" PRIu64 " %zu:%s", token, o->size, strlen(o->key), o->key);
	return n < 0 ? 0 : (size_t)n;
}

/* Every committed batch, with its offsets, to the listening agents
 * (payloads below PostgreSQL's limit, one object per payload, a big
 * object's rows in several) as ST_COMMIT_NOTIFY's array into all, so
 * their long polls wake and their batch indexes take the rows without a
 * query. Empty when no batch was appended. */
static void commit_notify_text(const struct commit_txn *x, const char *token, struct pg_text *all)
{
	char msg[PG_NOTIFY_PAYLOAD_MAX + 1];
	for (size_t k = 0; k < x->count; k++) {
		const struct meta_commit_obj *o = &x->objs[k];
		size_t head = notify_head(msg, sizeof msg, token, o), len = head;
		for (size_t i = 0; i < o->n; i++) {
			const struct meta_commit_batch *b = &o->batches[i];
			if (b->result != META_BATCH_APPENDED)
				continue; /* no row: a duplicate's offsets are its original's */
			char row[240];
			int rl = snprintf(row, sizeof row, " %" PRId64 ",%" PRId32 ",%" PRId64 ",%" PRId32
					  ",%" PRIu64 ",%" PRIu32 ",%" PRId32 ",%" PRId64 ",%" PRId64,
					  b->tid, b->partition, b->base_offset, b->last_offset_delta,
					  b->byte_offset, b->length, b->record_count, b->max_timestamp,
					  b->last_stable_offset);
			if (len + (size_t)rl > PG_NOTIFY_PAYLOAD_MAX) {
				tx_str(all, msg);
				len = head;
			}
			memcpy(msg + len, row, (size_t)rl + 1);
			len += (size_t)rl;
		}
		if (len > head)
			tx_str(all, msg);
	}
}

static int commit_objects_body(struct pg_conn *c, void *arg)
{
	struct commit_txn *x = arg;
	meta_commit_offsets_clear(x->objs, x->count);
	int rc = commit_open(c, x);
	if (rc)
		return rc;
	/* Offsets: each partition's batches in their given order, objects
	 * in seal order, from the locked high watermarks. */
	struct pg_text a[CA_COUNT];
	memset(a, 0, sizeof a);
	struct meta_run run = { 0 };
	for (size_t k = 0; !rc && k < x->count; k++) {
		struct meta_commit_obj *o = &x->objs[k];
		int64_t live = 0;
		for (size_t i = 0; !rc && i < o->n; i++) {
			struct meta_commit_batch *b = &o->batches[i];
			struct commit_part *cp = part_find(x->parts, x->nparts, b->tid, b->partition);
			if (!cp || !cp->found) { /* deleted meanwhile: base_offset stays -1 */
				if (b->kind == META_BATCH_MARKER)
					rc = pg_marker_gone(c, b);
				continue;
			}
			b->result = META_BATCH_APPENDED;
			rc = pg_txn_judge(c, b, cp->first_unstable);
			if (rc)
				break;
			struct meta_pstate *st = meta_batch_idempotent(b)
				? meta_pstates_find(&x->pstates, b->tid, b->partition, b->producer_id) : NULL;
			if (st && b->result == META_BATCH_APPENDED)
				b->result = meta_pstate_check(st, b, &b->base_offset);
			if (b->result != META_BATCH_APPENDED)
				continue; /* its bytes stay in the object, dead */
			b->base_offset = cp->hwm;
			if (st)
				meta_pstate_append(st, b);
			rc = pg_txn_appended(c, b, &cp->first_unstable);
			cp->hwm += (int64_t)b->last_offset_delta + 1;
			/* As of this batch's end: a notice whose rows are
			 * cut over several payloads raises another agent's
			 * LSO with each payload's last row, and with its
			 * own high watermark (commit_notify_text). */
			b->last_stable_offset = meta_lso(cp->log_start, cp->hwm, cp->first_unstable);
			live += b->length;
			/* Adjacent batches share a row (meta_int.h). */
			if (!meta_run_continues(&run, b))
				row_push(a, k, &run);
			if (meta_run_add(&run, b) != 0)
				rc = SL_ENOMEM;
		}
		row_push(a, k, &run);
		tx_str(&a[CA_KEY], o->key);
		tx_i64(&a[CA_SIZE], (int64_t)o->size);
		tx_i64(&a[CA_LIVE], live);
		/* A batch that got no offset: its partition's LSO once this
		 * object is in (an appended one has its own, above): never
		 * one a later object's marker raised. */
		for (size_t i = 0; i < o->n; i++) {
			struct meta_commit_batch *b = &o->batches[i];
			const struct commit_part *cp = part_find(x->parts, x->nparts, b->tid,
								 b->partition);
			if (cp && cp->found && b->result != META_BATCH_APPENDED)
				b->last_stable_offset = meta_lso(cp->log_start, cp->hwm,
								 cp->first_unstable);
		}
	}
	for (size_t i = 0; i < x->nparts; i++) {
		if (!x->parts[i].found)
			continue;
		tx_i64(&a[CA_HTID], x->parts[i].tid);
		tx_i64(&a[CA_HPART], x->parts[i].partition);
		tx_i64(&a[CA_HWM], x->parts[i].hwm);
		tx_i64(&a[CA_HFUO], x->parts[i].first_unstable);
	}
	for (size_t i = 0; i < x->pstates.n; i++) {
		const struct meta_pstate *st = &x->pstates.v[i];
		if (!st->dirty)
			continue;
		char text[META_PSTATE_TEXT_BYTES];
		meta_pstate_format(st, text);
		tx_i64(&a[CA_STID], st->tid);
		tx_i64(&a[CA_SPART], st->partition);
		tx_i64(&a[CA_SPID], st->producer_id);
		tx_i64(&a[CA_SEPOCH], st->epoch);
		tx_str(&a[CA_SBATCHES], text);
	}
	struct pg_params p = { 0 };
	for (int i = 0; i < CA_COUNT; i++) {
		if (i == CA_OBJ)
			p_i64(&p, clock_wall_ms()); /* $4: created_ms */
		p_str(&p, tx_end(&a[i]));
		if (!p.v[p.n - 1])
			rc = SL_ENOMEM;
	}
	/* The second round trip, one pipeline: the rows, the notifications
	 * (delivered when the transaction commits, in the order given),
	 * COMMIT. */
	struct pg_text notes = { 0 };
	struct pg_params np = { 0 };
	struct pg_pipe_step steps[3] = {
		{ .s = ST_COMMIT_WRITE, .p = &p, .what = "committing objects" },
	};
	int n = 1;
	if (!rc) {
		commit_notify_text(x, c->store->token, &notes);
		if (notes.len) {
			p_str(&np, tx_end(&notes));
			if (!np.v[0])
				rc = SL_ENOMEM;
			steps[n++] = (struct pg_pipe_step){ .s = ST_COMMIT_NOTIFY, .p = &np,
							    .what = "notifying the commit" };
		}
	}
	steps[n++] = (struct pg_pipe_step){ .sql = "COMMIT", .what = "COMMIT" };
	if (!rc)
		rc = pg_pipe_run(c, steps, n);
	free(notes.p);
	for (int i = 0; i < CA_COUNT; i++)
		free(a[i].p);
	meta_run_free(&run);
	return rc;
}

static int pg_commit_objects(struct meta *m, struct meta_commit_obj *objs, size_t count)
{
	int rc = meta_commit_check(objs, count);
	if (rc)
		return rc;
	struct commit_txn x = { objs, count, NULL, 0, { NULL, 0 } };
	rc = commit_parts(objs, count, &x.parts, &x.nparts);
	if (!rc)
		rc = meta_pstates_collect(objs, count, &x.pstates);
	if (!rc)
		rc = pg_txn(&pg_of(m)->commit, TXN_PIPELINED, commit_objects_body, &x);
	free(x.parts);
	free(x.pstates.v);
	if (rc) /* nothing was committed: no batch has an offset */
		meta_commit_offsets_clear(objs, count);
	return rc < 0 && rc != SL_ENOMEM ? SL_EMETA : rc;
}

/* ---- the merge swap (meta.h: meta_merge_swap) ---- */

/* The rows' arrays: as read (ROWS_LOCK's $3..$7), then new positions
 * and old objects (MOVE, SUBTRACT). */
enum { MA_LAST, MA_BASE, MA_KEY, MA_POS, MA_LEN, MA_OID, MA_COUNT };

struct merge_txn {
	const struct meta_merge *mg;
	struct meta_merge_stored *stored; /* per row */
};

static int merge_row_emit(void *arg, struct meta_run *r)
{
	row_push(arg, 0, r);
	return 0;
}

/* The merged object's rows, replacing the rows it holds (already
 * deleted): meta_merge_rows into the commit's arrays, one statement. */
static int merge_rows_insert(struct pg_conn *c, const struct meta_merge *mg,
			     const struct meta_merge_stored *stored, int64_t oid)
{
	static const int cols[] = { CA_TID, CA_PART, CA_BASE, CA_LAST, CA_POS, CA_LEN, CA_CNT,
				    CA_TS, CA_PID, CA_EPOCH, CA_BSEQ, CA_LSEQ, CA_SPANS, CA_ATTR };
	struct pg_text a[CA_COUNT];
	memset(a, 0, sizeof a);
	int rc = meta_merge_rows(mg, stored, merge_row_emit, a);
	struct pg_params p = { 0 };
	p_i64(&p, oid);
	for (size_t i = 0; !rc && i < sizeof cols / sizeof cols[0]; i++) {
		const char *v = tx_end(&a[cols[i]]);
		if (!v)
			rc = SL_ENOMEM;
		p_str(&p, v);
	}
	if (!rc)
		rc = pg_run(c, ST_MERGE_ROWS_INSERT, &p, NULL, "inserting merged rows");
	for (int i = 0; i < CA_COUNT; i++)
		free(a[i].p);
	return rc;
}

/* The aborted transactions a cleaning pass found with no batch left
 * (meta_merge.aborted_gone), one statement. */
static int aborted_gone_delete(struct pg_conn *c, const struct meta_merge *mg)
{
	struct pg_text t = { 0 };
	for (size_t i = 0; i < mg->n_aborted_gone; i++)
		tx_i64(&t, mg->aborted_gone[i]);
	const char *v = tx_end(&t);
	int rc = SL_ENOMEM;
	if (v) {
		struct pg_params p = { 0 };
		p_i64(&p, mg->tid);
		p_i64(&p, mg->partition);
		p_str(&p, v);
		rc = pg_run(c, ST_ABORTED_GONE, &p, NULL, "deleting cleaned aborted transactions");
	}
	free(t.p);
	return rc;
}

static int merge_swap_body(struct pg_conn *c, void *arg)
{
	struct merge_txn *x = arg;
	const struct meta_merge *mg = x->mg;
	struct meta_commit_obj o = { .key = mg->key, .size = mg->size };
	struct pg_text a[MA_COUNT];
	memset(a, 0, sizeof a);
	PGresult *r = NULL;
	int rc;
	/* A later chunk's object has its row: the orphan sweep leaves it. */
	if (!mg->continues) {
		rc = pg_run(c, ST_GC_FENCE_SHARE, NULL, &r, "reading the gc fence");
		if (rc)
			return rc;
		int64_t fence = PQntuples(r) ? v_i64(r, 0, 0) : 0;
		PQclear(r);
		r = NULL;
		rc = meta_commit_fence_check(&o, 1, fence);
		if (rc)
			return rc;
	}
	struct pg_params p = { 0 };
	p_i64(&p, mg->tid);
	p_i64(&p, mg->partition);
	rc = pg_run(c, ST_MERGE_PART_LOCK, &p, &r, "locking a partition to merge");
	if (rc)
		return rc;
	if (PQntuples(r) != 1 || mg->rows[0].last_offset < v_i64(r, 0, 0))
		rc = SL_ENOTFOUND; /* deleted, or a trim is deleting these rows */
	PQclear(r);
	r = NULL;
	if (rc)
		return rc;
	int64_t live = 0;
	for (size_t i = 0; i < mg->n; i++) {
		const struct meta_merge_row *row = &mg->rows[i];
		tx_i64(&a[MA_LAST], row->last_offset);
		tx_i64(&a[MA_BASE], row->base_offset);
		tx_str(&a[MA_KEY], row->object_key);
		tx_i64(&a[MA_POS], (int64_t)row->byte_offset);
		tx_i64(&a[MA_LEN], row->length);
		live += row->length;
	}
	const char *arr[MA_COUNT];
	rc = SL_ENOMEM;
	for (int i = MA_LAST; i <= MA_LEN; i++)
		if (!(arr[i] = tx_end(&a[i])))
			goto out;
	for (int i = MA_LAST; i <= MA_LEN; i++)
		p_str(&p, arr[i]);
	rc = pg_run(c, ST_MERGE_ROWS_LOCK, &p, &r, "locking rows to merge");
	if (rc)
		goto out;
	if ((size_t)PQntuples(r) != mg->n) {
		rc = SL_ENOTFOUND; /* a row changed since the merge read it */
		goto out;
	}
	int64_t created_ms = INT64_MAX;
	int64_t *oids = calloc(mg->n, sizeof *oids);
	if (!oids) {
		rc = SL_ENOMEM;
		goto out;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		int64_t k = v_i64(r, i, 0) - 1;
		if (k >= 0 && (size_t)k < mg->n) {
			struct meta_merge_stored *st = &x->stored[k];
			oids[k] = v_i64(r, i, 1);
			free(st->spans);
			st->spans = PQgetisnull(r, i, 3) ? NULL : strdup(PQgetvalue(r, i, 3));
			st->record_count = (int32_t)v_i64(r, i, 4);
			st->max_timestamp = v_i64(r, i, 5);
			st->attributes = (int16_t)v_i64(r, i, 6);
			if (!PQgetisnull(r, i, 3) && !st->spans)
				rc = SL_ENOMEM;
		}
		if (v_i64(r, i, 2) < created_ms)
			created_ms = v_i64(r, i, 2);
	}
	for (size_t i = 0; i < mg->n; i++)
		tx_i64(&a[MA_OID], oids[i]);
	free(oids);
	if (!rc && !(arr[MA_OID] = tx_end(&a[MA_OID])))
		rc = SL_ENOMEM;
	if (rc)
		goto out;
	PQclear(r);
	r = NULL;
	if (mg->batches) {
		/* A cleaning pass: the object holds what the cleaner kept. */
		live = 0;
		for (size_t i = 0; i < mg->nb; i++)
			live += mg->batches[i].length;
		p = (struct pg_params){ 0 };
		p_i64(&p, mg->tid);
		p_i64(&p, mg->partition);
		p_i64(&p, mg->clean_offset);
		p_str(&p, c->store->token); /* its notice: this store's own is skipped */
		rc = pg_run(c, ST_CLEAN_OFFSET_RAISE, &p, NULL, "raising the cleaner's checkpoint");
		if (!rc && mg->n_aborted_gone)
			rc = aborted_gone_delete(c, mg);
		if (rc)
			goto out;
	}
	p = (struct pg_params){ 0 };
	p_str(&p, mg->key);
	p_i64(&p, (int64_t)mg->size);
	p_i64(&p, live);
	p_i64(&p, created_ms);
	rc = pg_run(c, mg->continues ? ST_MERGE_ADD : ST_MERGE_INSERT, &p, &r,
		    "inserting a merged object");
	if (rc)
		goto out;
	if (PQntuples(r) != 1) {
		rc = SL_ENOTFOUND; /* a later chunk's object: gone or dead */
		goto out;
	}
	int64_t oid = v_i64(r, 0, 0);
	p = (struct pg_params){ 0 };
	p_i64(&p, mg->tid);
	p_i64(&p, mg->partition);
	p_str(&p, arr[MA_LAST]);
	rc = pg_run(c, ST_MERGE_DELETE, &p, NULL, "deleting merged rows");
	if (!rc)
		rc = merge_rows_insert(c, mg, x->stored, oid);
	if (rc)
		goto out;
	p = (struct pg_params){ 0 };
	p_str(&p, arr[MA_OID]);
	p_str(&p, arr[MA_LEN]);
	p_i64(&p, clock_wall_ms());
	rc = pg_run(c, ST_MERGE_SUBTRACT, &p, NULL, "subtracting merged bytes");
out:
	PQclear(r);
	for (int i = 0; i < MA_COUNT; i++)
		free(a[i].p);
	return rc;
}

static int pg_merge_swap(struct meta *m, const struct meta_merge *mg)
{
	int rc = meta_merge_check(mg);
	if (rc)
		return rc;
	struct merge_txn x = { mg, calloc(mg->n, sizeof *x.stored) };
	rc = x.stored ? pg_txn(&pg_of(m)->trim, TXN_WRITE, merge_swap_body, &x) : SL_ENOMEM;
	for (size_t i = 0; x.stored && i < mg->n; i++)
		free(x.stored[i].spans);
	free(x.stored);
	return rc < 0 && rc != SL_ENOMEM && rc != SL_ENOTFOUND ? SL_EMETA : rc;
}

/* ---- reads ---- */

static void batch_row_read(const PGresult *r, int row, int col, struct meta_batch_row *b)
{
	b->base_offset = v_i64(r, row, col);
	b->last_offset = v_i64(r, row, col + 1);
	v_text(b->object_key, sizeof b->object_key, r, row, col + 2);
	b->byte_offset = (uint64_t)v_i64(r, row, col + 3);
	b->length = (uint32_t)v_i64(r, row, col + 4);
	b->record_count = (int32_t)v_i64(r, row, col + 5);
	b->max_timestamp = v_i64(r, row, col + 6);
}

/* Row `row` of r (BATCH_COLUMNS from column col) as the batches it holds
 * with last offset >= from, into out[0, cap): how many, or SL_ECORRUPT. */
static int row_expand(const PGresult *r, int row, int col, int64_t from,
		      struct meta_batch_row *out, size_t cap)
{
	struct meta_batch_row b = { 0 };
	batch_row_read(r, row, col, &b);
	return meta_row_expand(&b, PQgetisnull(r, row, col + 7) ? NULL
			       : PQgetvalue(r, row, col + 7), from, out, cap);
}

static int pg_batches_from(struct meta *m, int64_t tid, int32_t partition, int64_t offset,
			   size_t max_rows, struct meta_batch_row *rows, size_t *n)
{
	*n = 0;
	if (max_rows == 0)
		return 0;
	if (max_rows > INT32_MAX)
		max_rows = INT32_MAX;
	struct pg_params p = { 0 };
	p_i64(&p, tid);
	p_i64(&p, partition);
	p_i64(&p, offset);
	p_i64(&p, (int64_t)max_rows);
	PGresult *r;
	int rc = pg_call(&pg_of(m)->read, ST_BATCHES_FROM, &p, &r, "reading batches");
	if (rc)
		return rc;
	size_t count = 0;
	for (int i = 0; !rc && i < PQntuples(r) && count < max_rows; i++) {
		int got = row_expand(r, i, 0, offset, rows + count, max_rows - count);
		if (got < 0)
			rc = got;
		else
			count += (size_t)got;
	}
	PQclear(r);
	*n = rc ? 0 : count;
	return rc;
}

/* One round trip for the whole fetch (ST_BATCHES_FROM_MANY); the rows
 * come back ordered by query, and fill rows[] query by query as
 * sqlite.c's does. */
static int pg_batches_from_many(struct meta *m, struct meta_batch_query *q, size_t nq,
				struct meta_batch_row *rows, size_t rows_cap)
{
	for (size_t i = 0; i < nq; i++)
		q[i].first = q[i].n = 0;
	if (nq == 0)
		return 0;
	struct pg_text tid = { 0 }, part = { 0 }, off = { 0 }, lim = { 0 };
	for (size_t i = 0; i < nq; i++) {
		size_t want = q[i].max_rows < rows_cap ? q[i].max_rows : rows_cap;
		tx_i64(&tid, q[i].tid);
		tx_i64(&part, q[i].partition);
		tx_i64(&off, q[i].offset);
		tx_i64(&lim, (int64_t)(want > INT32_MAX ? INT32_MAX : want));
	}
	struct pg_params p = { 0 };
	p_str(&p, tx_end(&tid));
	p_str(&p, tx_end(&part));
	p_str(&p, tx_end(&off));
	p_str(&p, tx_end(&lim));
	int rc = SL_ENOMEM;
	PGresult *r = NULL;
	if (p.v[0] && p.v[1] && p.v[2] && p.v[3])
		rc = pg_call(&pg_of(m)->read, ST_BATCHES_FROM_MANY, &p, &r, "reading batches");
	free(tid.p);
	free(part.p);
	free(off.p);
	free(lim.p);
	if (rc)
		return rc == SL_ENOMEM ? rc : SL_EMETA;
	size_t used = 0, opened = 0; /* queries [0, opened) have their first set */
	for (int row = 0; row < PQntuples(r); row++) {
		size_t i = (size_t)v_i64(r, row, 0) - 1;
		if (i >= nq)
			continue;
		while (opened <= i)
			q[opened++].first = used;
		size_t want = q[i].max_rows < rows_cap - q[i].first ? q[i].max_rows
								    : rows_cap - q[i].first;
		if (q[i].n >= want)
			continue;
		int got = row_expand(r, row, 1, q[i].offset, rows + used, want - q[i].n);
		if (got < 0) {
			rc = got;
			break;
		}
		for (int g = 0; g < got; g++) {
			rows[used + (size_t)g].object_size = (uint64_t)v_i64(r, row, 9);
			rows[used + (size_t)g].attributes = (int16_t)v_i64(r, row, 10);
		}
		used += (size_t)got;
		q[i].n += (size_t)got;
	}
	while (opened < nq)
		q[opened++].first = used;
	PQclear(r);
	if (rc)
		for (size_t i = 0; i < nq; i++)
			q[i].n = 0;
	return rc;
}

/* ListOffsets by time (meta_ts_lookup's rows), on the read connection. */
struct ts_query {
	struct pg_conn *c;
	int64_t tid;
	int32_t partition;
};

static int ts_row(void *arg, const int64_t *ts, int64_t after, struct meta_batch_row *row,
		  int64_t *offset, int64_t *batch_ts)
{
	struct ts_query *q = arg;
	struct pg_params p = { 0 };
	p_i64(&p, q->tid);
	p_i64(&p, q->partition);
	if (ts)
		p_i64(&p, *ts);
	p_i64(&p, after);
	PGresult *r;
	int rc = pg_call(q->c, ts ? ST_OFFSET_FOR_TIMESTAMP : ST_MAX_TIMESTAMP, &p, &r,
			 "finding an offset by time");
	if (rc)
		return rc;
	if (PQntuples(r)) {
		*row = (struct meta_batch_row){ 0 };
		batch_row_read(r, 0, 0, row);
		rc = meta_ts_row_pick(row, PQgetisnull(r, 0, 7) ? NULL : PQgetvalue(r, 0, 7),
				      v_i64(r, 0, 8), ts, offset, batch_ts);
	} else {
		rc = SL_ENOTFOUND;
	}
	PQclear(r);
	return rc;
}

static int pg_offset_for_timestamp(struct meta *m, int64_t tid, int32_t partition,
				   int64_t timestamp_ms, int64_t *offset,
				   int64_t *batch_max_timestamp)
{
	struct ts_query q = { &pg_of(m)->read, tid, partition };
	return meta_ts_lookup(ts_row, &q, &timestamp_ms, offset, batch_max_timestamp);
}

static int pg_max_timestamp(struct meta *m, int64_t tid, int32_t partition, int64_t *offset,
			    int64_t *timestamp)
{
	struct ts_query q = { &pg_of(m)->read, tid, partition };
	return meta_ts_lookup(ts_row, &q, NULL, offset, timestamp);
}

static int pg_clean_bytes(struct meta *m, int64_t tid, int32_t partition, int64_t log_start,
			  int64_t first_dirty, int64_t *clean, int64_t *dirty)
{
	struct pg_params p = { 0 };
	p_i64(&p, tid);
	p_i64(&p, partition);
	p_i64(&p, log_start);
	p_i64(&p, first_dirty);
	PGresult *r;
	int rc = pg_call(&pg_of(m)->read, ST_CLEAN_BYTES, &p, &r, "summing a partition's bytes");
	if (rc)
		return rc;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return SL_EMETA;
	}
	*clean = v_i64(r, 0, 0);
	*dirty = v_i64(r, 0, 1);
	PQclear(r);
	return 0;
}

/* One statement, so one transaction; the row lock makes concurrent
 * agents' blocks disjoint. */
static int pg_producer_ids_alloc(struct meta *m, int64_t count, int64_t *first)
{
	if (count < 1 || count > META_PRODUCER_ID_BLOCK_MAX)
		return SL_EINVAL;
	struct pg_params p = { 0 };
	p_i64(&p, count);
	p_i64(&p, INT64_MAX - count);
	PGresult *r;
	int rc = pg_call(&pg_of(m)->admin, ST_PRODUCER_IDS_ALLOC, &p, &r,
			 "allocating producer ids");
	if (rc)
		return rc;
	rc = PQntuples(r) ? 0 : SL_ELIMIT; /* the id space is used up */
	if (!rc)
		*first = v_i64(r, 0, 0);
	PQclear(r);
	return rc;
}

/* ---- consumer group offsets ---- */

struct offset_commit_txn {
	const struct meta_offset_commit *rows;
	size_t n;
};

static int offset_commit_body(struct pg_conn *c, void *arg)
{
	struct offset_commit_txn *x = arg;
	for (size_t i = 0; i < x->n; i++) {
		const struct meta_offset_commit *o = &x->rows[i];
		if (!o->group_id || (o->metadata && strlen(o->metadata) > META_OFFSET_METADATA_BYTES_MAX))
			return SL_EINVAL;
		struct pg_params p = { 0 };
		p_str(&p, o->group_id);
		p_i64(&p, o->tid);
		p_i64(&p, o->partition);
		p_i64(&p, o->committed_offset);
		p_i64(&p, o->leader_epoch);
		p_str(&p, o->metadata);
		p_i64(&p, o->commit_timestamp_ms);
		int rc = pg_run(c, ST_OFFSET_UPSERT, &p, NULL, "committing an offset");
		if (rc)
			return rc;
	}
	return 0;
}

static int pg_offset_commit(struct meta *m, const struct meta_offset_commit *rows, size_t n)
{
	if (n == 0)
		return 0;
	struct offset_commit_txn x = { rows, n };
	return pg_txn(offsets_of(m, rows[0].group_id), TXN_WRITE, offset_commit_body, &x);
}

static int pg_offset_fetch(struct meta *m, const char *group_id,
			   struct meta_committed_offset **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	struct pg_params p = { 0 };
	p_str(&p, group_id);
	PGresult *r;
	int rc = pg_call(&pg_of(m)->read, ST_OFFSET_FETCH, &p, &r, "fetching committed offsets");
	if (rc)
		return rc;
	int rows = PQntuples(r);
	struct meta_committed_offset *o = rows ? calloc((size_t)rows, sizeof *o) : NULL;
	if (rows && !o)
		rc = SL_ENOMEM;
	int count = 0;
	for (; !rc && count < rows; count++) {
		struct meta_committed_offset *c = &o[count];
		c->tid = v_i64(r, count, 0);
		c->partition = (int32_t)v_i64(r, count, 1);
		c->committed_offset = v_i64(r, count, 2);
		c->leader_epoch = (int32_t)v_i64(r, count, 3);
		if (!PQgetisnull(r, count, 4) && !(c->metadata = strdup(PQgetvalue(r, count, 4))))
			rc = SL_ENOMEM;
		c->commit_timestamp_ms = v_i64(r, count, 5);
	}
	PQclear(r);
	if (rc) {
		meta_committed_offsets_free(o, (size_t)count);
		return rc;
	}
	*out = o;
	*n = (size_t)rows;
	return 0;
}

static int pg_txn_offsets_pending(struct meta *m, const char *group_id, struct txn_tp **out,
				  size_t *n)
{
	struct pg_params p = { 0 };
	p_str(&p, group_id);
	PGresult *r;
	int rc = pg_call(&pg_of(m)->read, ST_TXN_OFFSETS_PENDING, &p, &r,
			 "reading pending transactional offsets");
	if (rc)
		return rc;
	int rows = PQntuples(r);
	struct txn_tp *v = rows ? calloc((size_t)rows, sizeof *v) : NULL;
	if (rows && !v)
		rc = SL_ENOMEM;
	for (int i = 0; !rc && i < rows; i++)
		v[i] = (struct txn_tp){ v_i64(r, i, 0), (int32_t)v_i64(r, i, 1) };
	PQclear(r);
	if (rc)
		return rc;
	*out = v;
	*n = (size_t)rows;
	return 0;
}

static int pg_producers_describe(struct meta *m, int64_t tid, int32_t partition, size_t max,
				 struct meta_producer_desc *out, size_t *n)
{
	struct pg_params p = { 0 };
	p_i64(&p, tid);
	p_i64(&p, partition);
	p_i64(&p, (int64_t)max);
	PGresult *r;
	int rc = pg_call(&pg_of(m)->read, ST_PSTATE_DESCRIBE, &p, &r, "describing producers");
	if (rc)
		return rc;
	int rows = PQntuples(r);
	for (int i = 0; !rc && i < rows && (size_t)i < max; i++)
		rc = meta_producer_desc_fill(&out[i], tid, partition, v_i64(r, i, 0), v_i64(r, i, 1),
					     PQgetvalue(r, i, 2), v_i64(r, i, 3), v_i64(r, i, 4),
					     v_i64(r, i, 5));
	PQclear(r);
	*n = rc ? 0 : (size_t)rows < max ? (size_t)rows : max;
	return rc;
}

static int pg_group_list(struct meta *m, struct meta_group_summary **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	PGresult *r;
	int rc = pg_call(&pg_of(m)->read, ST_GROUP_LIST, NULL, &r, "listing groups");
	if (rc)
		return rc;
	int rows = PQntuples(r);
	struct meta_group_summary *g = rows ? calloc((size_t)rows, sizeof *g) : NULL;
	if (rows && !g)
		rc = SL_ENOMEM;
	int count = 0;
	for (; !rc && count < rows; count++) {
		if (!(g[count].group_id = strdup(PQgetvalue(r, count, 0))))
			rc = SL_ENOMEM;
		g[count].offset_count = v_i64(r, count, 1);
		g[count].last_commit_ms = v_i64(r, count, 2);
	}
	PQclear(r);
	if (rc) {
		meta_group_summaries_free(g, (size_t)count);
		return rc;
	}
	*out = g;
	*n = (size_t)rows;
	return 0;
}

struct delete_offsets_txn {
	const char *group_id;
	const int64_t *tids;
	const int32_t *partitions;
	size_t n;
	int64_t count; /* out */
};

static int group_delete_offsets_body(struct pg_conn *c, void *arg)
{
	struct delete_offsets_txn *x = arg;
	x->count = 0;
	for (size_t i = 0; i < (x->tids ? x->n : 1); i++) {
		struct pg_params p = { 0 };
		p_str(&p, x->group_id);
		if (x->tids) {
			p_i64(&p, x->tids[i]);
			p_i64(&p, x->partitions[i]);
		}
		PGresult *r;
		int rc = pg_run(c, x->tids ? ST_OFFSET_DELETE_ONE : ST_OFFSET_DELETE_GROUP, &p, &r,
				"deleting offsets");
		if (rc)
			return rc;
		x->count += changed_rows(r);
		PQclear(r);
	}
	/* The whole group goes (DeleteGroups, retention): its stored
	 * membership too. */
	if (!x->tids) {
		struct pg_params p = { 0 };
		p_str(&p, x->group_id);
		return pg_run(c, ST_GROUP_STATE_DELETE, &p, NULL, "deleting a group's membership");
	}
	return 0;
}

static int pg_group_delete_offsets(struct meta *m, const char *group_id, const int64_t *tids,
				   const int32_t *partitions, size_t n, int64_t *deleted)
{
	struct delete_offsets_txn x = { group_id, tids, partitions, n, 0 };
	int rc = pg_txn(offsets_of(m, group_id), TXN_WRITE, group_delete_offsets_body, &x);
	if (!rc && deleted)
		*deleted = x.count;
	return rc;
}

/* ---- garbage collection ---- */

static int pg_objects_dead(struct meta *m, int64_t created_before_ms, int64_t after_oid,
			   size_t max_rows, struct meta_object *rows, size_t *n)
{
	*n = 0;
	if (max_rows == 0)
		return 0;
	struct pg_params p = { 0 };
	p_i64(&p, after_oid);
	p_i64(&p, created_before_ms);
	p_i64(&p, (int64_t)(max_rows > INT32_MAX ? INT32_MAX : max_rows));
	PGresult *r;
	/* The maintenance connection, as sqlite.c. */
	int rc = pg_call(&pg_of(m)->trim, ST_OBJECTS_DEAD, &p, &r, "listing dead objects");
	if (rc)
		return rc;
	for (int i = 0; i < PQntuples(r) && *n < max_rows; i++) {
		struct meta_object *o = &rows[(*n)++];
		o->oid = v_i64(r, i, 0);
		v_text(o->key, sizeof o->key, r, i, 1);
		o->size = (uint64_t)v_i64(r, i, 2);
		o->live_bytes = v_i64(r, i, 3);
		o->deleting = !strcmp(PQgetvalue(r, i, 4), "deleting");
		o->created_ms = v_i64(r, i, 5);
	}
	PQclear(r);
	return 0;
}

struct objects_each_txn {
	enum stmt s;
	const char *what;
	const char *const *keys;
	size_t n;
	bool *hit;      /* out (may be NULL) */
	size_t changed; /* out */
};

static int objects_each_body(struct pg_conn *c, void *arg)
{
	struct objects_each_txn *x = arg;
	x->changed = 0;
	for (size_t i = 0; i < x->n; i++) {
		struct pg_params p = { 0 };
		p_str(&p, x->keys[i]);
		PGresult *r;
		int rc = pg_run(c, x->s, &p, &r, x->what);
		if (rc)
			return rc;
		int64_t k = changed_rows(r);
		PQclear(r);
		if (x->hit)
			x->hit[i] = k > 0;
		x->changed += (size_t)k;
	}
	return 0;
}

static int objects_each(struct meta *m, enum stmt s, const char *what, const char *const *keys,
			size_t n, bool *hit, size_t *count)
{
	struct objects_each_txn x = { s, what, keys, n, hit, 0 };
	int rc = pg_txn(&pg_of(m)->trim, TXN_WRITE, objects_each_body, &x);
	if (rc) {
		if (hit)
			memset(hit, 0, n * sizeof *hit);
		return rc;
	}
	if (count)
		*count = x.changed;
	return 0;
}

static int pg_objects_mark_deleting(struct meta *m, const char *const *keys, size_t n,
				    bool *marked)
{
	return objects_each(m, ST_OBJECT_MARK_DELETING, "marking objects deleting", keys, n,
			    marked, NULL);
}

static int pg_objects_forget(struct meta *m, const char *const *keys, size_t n,
			     size_t *forgotten)
{
	return objects_each(m, ST_OBJECT_FORGET, "forgetting deleted objects", keys, n, NULL,
			    forgotten);
}

static int pg_object_known(struct meta *m, const char *key, bool *known)
{
	struct pg_params p = { 0 };
	p_str(&p, key);
	PGresult *r;
	int rc = pg_call(&pg_of(m)->loop, ST_OBJECT_KNOWN, &p, &r, "looking an object up");
	if (rc)
		return rc;
	*known = PQntuples(r) > 0;
	PQclear(r);
	return 0;
}

/* Its own statement, so its own transaction: the row lock it takes makes
 * a commit reading the fence (FOR SHARE) either finish before it or read
 * the raised fence. */
static int pg_gc_fence_raise(struct meta *m, int64_t fence_ms, int64_t *now_fence_ms)
{
	struct pg_params p = { 0 };
	p_i64(&p, fence_ms);
	PGresult *r;
	int rc = pg_call(&pg_of(m)->loop, ST_GC_FENCE_RAISE, &p, &r, "raising the gc fence");
	if (rc)
		return rc;
	if (PQntuples(r) != 1) {
		log_error("metadata store %s: the gc_fence row is missing", pg_of(m)->where);
		rc = SL_EMETA;
	} else if (now_fence_ms) {
		*now_fence_ms = v_i64(r, 0, 0);
	}
	PQclear(r);
	return rc;
}

/* ---- open, schema, close ---- */

static void conn_close(struct pg_conn *c)
{
	if (c->db)
		PQfinish(c->db);
	c->db = NULL;
	if (c->lock_ready)
		pthread_mutex_destroy(&c->lock);
	c->lock_ready = false;
}

static void pg_close(struct meta *m)
{
	struct meta_pg *s = pg_of(m);
	conn_close(&s->listen);
	conn_close(&s->catalog);
	conn_close(&s->leases);
	conn_close(&s->cluster);
	conn_close(&s->admin);
	conn_close(&s->trim);
	for (int i = 0; i < PG_OFFSETS_LANES; i++)
		conn_close(&s->offsets[i]);
	conn_close(&s->commit);
	conn_close(&s->read);
	conn_close(&s->loop);
	free(s->notice_rows);
	free(s->user_options);
	free(s->conninfo);
	free(s);
}

/* "postgresql://USER@HOST:PORT/DB" from what libpq made of the URL: the
 * store named in messages, never with its password; and *options, the
 * user's server options (conn_connect; NULL: none, or out of memory). */
static int describe(const char *conninfo, char *out, size_t cap, char **options)
{
	*options = NULL;
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
	if (!opts) {
		char msg[256];
		one_line(msg, sizeof msg, err ? err : "out of memory");
		log_error("metadata store: not a PostgreSQL connection URL: %s", msg);
		PQfreemem(err);
		return SL_EINVAL;
	}
	const char *user = NULL, *host = NULL, *port = NULL, *db = NULL;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !*o->val)
			continue;
		if (!strcmp(o->keyword, "user"))
			user = o->val;
		else if (!strcmp(o->keyword, "host"))
			host = o->val;
		else if (!strcmp(o->keyword, "port"))
			port = o->val;
		else if (!strcmp(o->keyword, "dbname"))
			db = o->val;
		else if (!strcmp(o->keyword, "options"))
			*options = strdup(o->val);
	}
	/* libpq reads PGOPTIONS only when no options are given, and
	 * conn_connect gives some. */
	const char *env = getenv("PGOPTIONS");
	if (!*options && env && *env)
		*options = strdup(env);
	snprintf(out, cap, "postgresql://%s%s%s%s%s/%s", user ? user : "", user ? "@" : "",
		 host ? host : "", port ? ":" : "", port ? port : "", db ? db : "");
	PQconninfoFree(opts);
	return 0;
}

/* The server's notices go to the debug log, not straight to stderr. */
static void notice_log(void *arg, const char *message)
{
	struct pg_conn *c = arg;
	char msg[512];
	one_line(msg, sizeof msg, message);
	log_debug("metadata store (%s): %s", c->role, msg);
}

/* Connects c by connect_deadline at the latest (blocking: [start] or a
 * pool thread; conn_poll). 0, SL_ENOMEM, or SL_EMETA with conn_why(c)
 * saying why; not logged.
 * Defaults that keep a session from hanging (limits.h,
 * SL_META_PG_*): the URL comes after them, so what it says wins, and
 * the user's server options follow this file's in "options" (the
 * server takes the last of a setting given twice). */
static int conn_connect(struct pg_conn *c)
{
	const struct meta_pg *s = c->store;
	char connect_s[16], idle_s[16], interval_s[16], count[16], user_timeout[16];
	char options[1024];
	snprintf(connect_s, sizeof connect_s, "%d", connect_timeout_s(c));
	snprintf(idle_s, sizeof idle_s, "%d", SL_META_PG_KEEPALIVE_IDLE_S);
	snprintf(interval_s, sizeof interval_s, "%d", SL_META_PG_KEEPALIVE_INTERVAL_S);
	snprintf(count, sizeof count, "%d", SL_META_PG_KEEPALIVE_COUNT);
	snprintf(user_timeout, sizeof user_timeout, "%d", SL_META_PG_TCP_USER_TIMEOUT_MS);
	int len = snprintf(options, sizeof options,
			   "-c statement_timeout=%d -c idle_in_transaction_session_timeout=%d"
			   " -c tcp_keepalives_idle=%s -c tcp_keepalives_interval=%s"
			   " -c tcp_keepalives_count=%s%s%s", c->statement_ms,
			   SL_META_PG_IDLE_IN_TXN_MS, idle_s, interval_s, count,
			   s->user_options ? " " : "", s->user_options ? s->user_options : "");
	if (len < 0 || (size_t)len >= sizeof options) /* theirs alone */
		snprintf(options, sizeof options, "%s", s->user_options ? s->user_options : "");
	const char *const keys[] = { "connect_timeout", "keepalives", "keepalives_idle",
		"keepalives_interval", "keepalives_count", "tcp_user_timeout", "application_name",
		"dbname", "options", NULL };
	const char *const vals[] = { connect_s, "1", idle_s, interval_s, count, user_timeout,
		"sluice", s->conninfo, options, NULL };
	c->connect_timed_out = false;
	c->db = PQconnectStartParams(keys, vals, 1);
	if (!c->db)
		return SL_ENOMEM;
	c->several_hosts = names_several_hosts(c);
	if (c->several_hosts) {
		PQfinish(c->db);
		c->db = PQconnectdbParams(keys, vals, 1);
		if (!c->db)
			return SL_ENOMEM;
	}
	PQsetNoticeProcessor(c->db, notice_log, c);
	c->connect_us = connect_bound_us(c);
	if (!c->several_hosts && PQstatus(c->db) != CONNECTION_BAD)
		conn_poll(c, PQconnectPoll, connect_deadline(c));
	conn_fresh(c);
	return PQstatus(c->db) == CONNECTION_OK ? 0 : SL_EMETA;
}

/* c's round trips are bounded by timeout_ms, its statements on the
 * server by statement_ms (0: the same). */
static int conn_init(struct pg_conn *c, const char *role, int timeout_ms, int statement_ms,
		     struct meta_pg *s)
{
	c->role = role;
	c->timeout_ms = timeout_ms;
	c->statement_ms = statement_ms ? statement_ms : timeout_ms;
	c->where = s->where;
	c->store = s;
	if (pthread_mutex_init(&c->lock, NULL) != 0)
		return SL_ENOMEM;
	c->lock_ready = true;
	return 0;
}

static int conn_open(struct pg_conn *c, const char *role, int timeout_ms, int statement_ms,
		     struct meta_pg *s)
{
	int rc = conn_init(c, role, timeout_ms, statement_ms, s);
	if (!rc)
		rc = conn_connect(c);
	if (rc == SL_ENOMEM) {
		log_error("metadata store %s: out of memory", s->where);
		return SL_ENOMEM;
	}
	if (rc) {
		char msg[512];
		one_line(msg, sizeof msg, conn_why(c));
		log_error("metadata store %s: cannot connect: %s", s->where, msg);
		return SL_EMETA;
	}
	return 0;
}

/* One connection conn_open_all opens on a thread of its own. */
struct conn_job {
	struct pg_conn *c;
	const char *role;
	int timeout_ms;
	int statement_ms; /* conn_open's */
	struct meta_pg *s;
	int rc;
	pthread_t thread;
	bool started;
};

static void *conn_job_run(void *arg)
{
	struct conn_job *j = arg;
	j->rc = conn_open(j->c, j->role, j->timeout_ms, j->statement_ms, j->s);
	return NULL;
}

/* Opens jobs[0, n) at once: each connection costs the server a process
 * and an authentication (SCRAM's key stretching on both ends), which one
 * after another made a loaded machine's agent take seconds to start.
 * 0, or the first failure (SL_ENOMEM before SL_EMETA). */
static int conn_open_all(struct meta_pg *s, struct conn_job *jobs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		jobs[i].s = s;
		jobs[i].started = pthread_create(&jobs[i].thread, NULL, conn_job_run, &jobs[i]) == 0;
		if (!jobs[i].started) /* no thread: this one here, the rest go on */
			conn_job_run(&jobs[i]);
	}
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		if (jobs[i].started)
			pthread_join(jobs[i].thread, NULL);
		if (jobs[i].rc && rc != SL_ENOMEM)
			rc = jobs[i].rc;
	}
	return rc;
}

/* The version the database's schema_version table states; 0 without
 * one (a database that is not a sluice store yet). */
static int schema_version_read(struct pg_conn *c, int *version)
{
	PGresult *r = pg_answer(c, PQsendQuery(c->db, "SELECT CASE WHEN"
					       " to_regclass('schema_version') IS NULL THEN 0 ELSE 1 END"));
	int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : pg_fail(c, r, "reading the schema version");
	bool exists = !rc && atoi(PQgetvalue(r, 0, 0)) == 1;
	PQclear(r);
	*version = 0;
	if (rc || !exists)
		return rc;
	r = pg_answer(c, PQsendQuery(c->db, "SELECT coalesce(max(version), 0) FROM schema_version"));
	rc = PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : pg_fail(c, r, "reading the schema version");
	if (!rc)
		*version = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return rc;
}

/* Applies the migrations a database lacks, in one transaction under an
 * advisory lock, so agents starting at once take turns and the later
 * ones find the work done. */
static int schema_migrate(struct pg_conn *c, bool create)
{
	char sql[96];
	int rc = pg_simple(c, "BEGIN", "BEGIN");
	if (rc)
		return rc;
	/* A migration over a large catalog takes what it takes: no bound
	 * on either end (the advisory lock's wait included). */
	int timeout_ms = c->timeout_ms;
	c->timeout_ms = 0;
	rc = pg_simple(c, "SET LOCAL statement_timeout = 0", "migrating the schema");
	if (rc)
		goto out_rollback;
	snprintf(sql, sizeof sql, "SELECT pg_advisory_xact_lock(%" PRId64 ")", PG_MIGRATION_LOCK_KEY);
	PGresult *r = pg_answer(c, PQsendQuery(c->db, sql));
	rc = PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : pg_fail(c, r, "taking the migration lock");
	PQclear(r);
	int version = 0;
	if (!rc)
		rc = schema_version_read(c, &version);
	if (rc)
		goto out_rollback;
	if (version > PG_SCHEMA_VERSION) {
		log_error("metadata store %s has schema version %d; this build knows up to %d",
			  c->where, version, PG_SCHEMA_VERSION);
		rc = SL_EMETA;
		goto out_rollback;
	}
	if (version == 0 && !create) {
		log_error("metadata store %s has no schema: not a sluice metadata store "
			  "(refusing to create one here)", c->where);
		rc = SL_EMETA;
		goto out_rollback;
	}
	for (int v = version; v < PG_SCHEMA_VERSION; v++) {
		rc = pg_simple(c, migrations[v], "migrating the schema");
		if (rc)
			goto out_rollback;
		snprintf(sql, sizeof sql, "UPDATE schema_version SET version = %d", v + 1);
		rc = pg_simple(c, sql, "migrating the schema");
		if (rc)
			goto out_rollback;
	}
	rc = pg_simple(c, "COMMIT", "COMMIT");
	if (rc)
		goto out_rollback;
	c->timeout_ms = timeout_ms;
	if (version == 0)
		log_info("metadata store %s: created schema version %d", c->where, PG_SCHEMA_VERSION);
	else if (version < PG_SCHEMA_VERSION)
		log_info("metadata store %s: schema version %d upgraded to %d", c->where, version,
			 PG_SCHEMA_VERSION);
	return 0;
out_rollback:
	pg_rollback(c);
	c->timeout_ms = timeout_ms;
	return rc == PG_ERETRY ? SL_EMETA : rc;
}

/* ---- the agent registry (meta.h): on the cluster connection, with the
 * server's clock. Changes of the agent set take the agents_epoch row
 * first (ST_EPOCH_LOCK); a heartbeat that changes nothing takes no lock
 * but its own row's. ---- */

struct registry_txn {
	struct meta_agent *self;
	int64_t lease_ms;
	bool join;                      /* register (else heartbeat) */
	struct meta_cluster_view *view; /* out */
	int32_t asked;                  /* the id asked for (-1: any) */
};

static int pg_i64_of(struct pg_conn *c, enum stmt s, const struct pg_params *p, int64_t *v,
		     const char *what)
{
	PGresult *r;
	int rc = pg_run(c, s, p, &r, what);
	if (rc)
		return rc;
	if (PQntuples(r) != 1)
		rc = pg_fail(c, r, what);
	else
		*v = v_i64(r, 0, 0);
	PQclear(r);
	return rc;
}

static int pg_changes(struct pg_conn *c, enum stmt s, const struct pg_params *p, int64_t *n,
		      const char *what)
{
	PGresult *r;
	int rc = pg_run(c, s, p, &r, what);
	if (!rc) {
		*n = changed_rows(r);
		PQclear(r);
	}
	return rc;
}

static int view_read(struct pg_conn *c, struct meta_cluster_view *v)
{
	free(v->agents);
	memset(v, 0, sizeof *v);
	PGresult *r;
	int rc = pg_run(c, ST_AGENT_VIEW, NULL, &r, "listing agents");
	if (rc)
		return rc;
	size_t cap = 0;
	for (int i = 0; !rc && i < PQntuples(r); i++) {
		v->epoch = v_i64(r, i, 0);
		if (PQgetisnull(r, i, 1))
			continue;
		struct meta_agent ag;
		memset(&ag, 0, sizeof ag);
		ag.node_id = (int32_t)v_i64(r, i, 1);
		ag.incarnation = v_i64(r, i, 2);
		v_text(ag.endpoints, sizeof ag.endpoints, r, i, 3);
		v_text(ag.zone, sizeof ag.zone, r, i, 4);
		ag.start_ms = v_i64(r, i, 5);
		rc = meta_view_add(v, &cap, &ag);
	}
	PQclear(r);
	return rc;
}

/* With the epoch row locked: self joins (its id checked or chosen). */
static int agent_join(struct pg_conn *c, struct meta_agent *self, int64_t now, bool fresh)
{
	/* A row of this incarnation is an earlier attempt's whose answer
	 * was lost (registering again after SL_EMETA): not another agent. */
	struct pg_params f = { 0 };
	p_i64(&f, self->incarnation);
	int rc = pg_run(c, ST_AGENT_FORGET, &f, NULL, "registering an agent");
	if (rc)
		return rc;
	PGresult *r;
	rc = pg_run(c, ST_AGENT_IDS, NULL, &r, "listing agents");
	if (rc)
		return rc;
	int32_t ids[SL_CLUSTER_AGENTS_MAX];
	size_t n = 0;
	bool taken = false;
	for (int i = 0; i < PQntuples(r); i++) {
		int32_t id = (int32_t)v_i64(r, i, 0);
		taken |= id == self->node_id;
		if (n < SL_CLUSTER_AGENTS_MAX)
			ids[n++] = id;
	}
	PQclear(r);
	if (self->node_id < 0)
		self->node_id = meta_agent_unused_id(ids, n);
	else if (taken)
		return SL_EBUSY;
	if (fresh)
		self->start_ms = now;
	struct pg_params p = { 0 };
	p_i64(&p, self->node_id);
	p_i64(&p, self->incarnation);
	p_str(&p, self->endpoints);
	p_str(&p, self->zone);
	p_i64(&p, self->start_ms);
	p_i64(&p, now);
	return pg_run(c, ST_AGENT_INSERT, &p, NULL, "registering an agent");
}

static int registry_body(struct pg_conn *c, void *arg)
{
	struct registry_txn *x = arg;
	int64_t now, stale = 0, beat = 0, expired = 0, epoch;
	if (x->join) /* a rerun chooses afresh */
		x->self->node_id = x->asked;
	int rc = pg_i64_of(c, ST_CLOCK_MS, NULL, &now, "reading the clock");
	struct pg_params cut = { 0 };
	p_i64(&cut, now - x->lease_ms);
	if (!rc && !x->join) {
		struct pg_params p = { 0 };
		p_i64(&p, x->self->node_id);
		p_i64(&p, x->self->incarnation);
		p_i64(&p, now);
		PGresult *r;
		rc = pg_run(c, ST_AGENT_BEAT, &p, &r, "refreshing a heartbeat");
		int64_t prev = now;
		if (!rc) {
			beat = PQntuples(r);
			if (beat == 1)
				prev = v_i64(r, 0, 0);
			PQclear(r);
		}
		if (!rc && prev < now - x->lease_ms) {
			/* This agent could not beat for longer than a lease:
			 * the store was out of reach, for every agent alike.
			 * Those live when it was cut off get a lease from now
			 * instead of being expired for the outage (they beat
			 * again within one), so the set does not change. */
			struct pg_params q = { 0 };
			p_i64(&q, prev - x->lease_ms);
			p_i64(&q, now);
			rc = pg_run(c, ST_AGENT_RENEW, &q, NULL, "renewing leases after an outage");
		}
		if (!rc)
			rc = pg_i64_of(c, ST_AGENT_STALE, &cut, &stale, "looking for dead agents");
		if (!rc && beat == 1 && stale == 0)
			return view_read(c, x->view); /* nothing changes */
	}
	if (!rc)
		rc = pg_i64_of(c, ST_EPOCH_LOCK, NULL, &epoch, "locking the agents epoch");
	if (!rc)
		rc = pg_changes(c, ST_AGENT_EXPIRE, &cut, &expired, "expiring agents");
	bool joins = x->join || beat == 0;
	if (!rc && joins)
		rc = agent_join(c, x->self, now, x->join);
	if (!rc && (joins || expired > 0))
		rc = pg_run(c, ST_EPOCH_RAISE, NULL, NULL, "raising the agents epoch");
	return rc ? rc : view_read(c, x->view);
}

static int pg_agent_register(struct meta *m, struct meta_agent *self, int64_t lease_ms,
			     struct meta_cluster_view *view)
{
	struct meta_agent me = *self;
	struct registry_txn x = { &me, lease_ms, true, view, self->node_id };
	struct pg_conn *c = &pg_of(m)->cluster;
	memset(view, 0, sizeof *view);
	/* Nothing to keep yet: a slow server gets the data connections'
	 * bound (a statement longer than the cluster's statement_timeout
	 * fails, and the caller tries again); it is the first renewal. */
	int rc = pg_txn_bounded(c, TXN_WRITE, registry_body, &x, clock_mono_us(),
				SL_META_PG_DATA_TIMEOUT_MS, lease_ms);
	if (rc) {
		free(view->agents);
		memset(view, 0, sizeof *view);
		return rc;
	}
	*self = me;
	return 0;
}

static int pg_agent_heartbeat(struct meta *m, const struct meta_agent *self, int64_t lease_ms,
			      struct meta_cluster_view *view)
{
	struct meta_agent me = *self;
	struct registry_txn x = { &me, lease_ms, false, view, self->node_id };
	memset(view, 0, sizeof *view);
	int rc = pg_txn_renew(&pg_of(m)->cluster, registry_body, &x, lease_ms);
	if (rc) {
		free(view->agents);
		memset(view, 0, sizeof *view);
	}
	return rc;
}

static int deregister_body(struct pg_conn *c, void *arg)
{
	const struct meta_agent *self = arg;
	int64_t epoch, gone = 0;
	struct pg_params p = { 0 };
	p_i64(&p, self->node_id);
	p_i64(&p, self->incarnation);
	int rc = pg_i64_of(c, ST_EPOCH_LOCK, NULL, &epoch, "locking the agents epoch");
	if (!rc)
		rc = pg_changes(c, ST_AGENT_DELETE, &p, &gone, "deregistering an agent");
	if (!rc && gone)
		rc = pg_run(c, ST_EPOCH_RAISE, NULL, NULL, "raising the agents epoch");
	return rc;
}

static int pg_agent_deregister(struct meta *m, const struct meta_agent *self)
{
	struct meta_pg *s = pg_of(m);
	return pg_txn_within(&s->cluster, TXN_WRITE, deregister_body, (void *)self, clock_mono_us(),
			     s->cluster_timeout_ms);
}

struct catalog_txn {
	int64_t known, since;
	struct meta_catalog *out;
};

static int catalog_body(struct pg_conn *c, void *arg)
{
	struct catalog_txn *x = arg;
	struct meta_catalog *out = x->out;
	meta_catalog_free(out);
	out->topics_read = false;
	int rc = pg_i64_of(c, ST_SNAPSHOT_XMIN, NULL, &out->parts_next, "reading the snapshot");
	if (!rc)
		rc = pg_i64_of(c, ST_CATALOG_VERSION, NULL, &out->version,
			       "reading the catalog version");
	if (!rc && out->version != x->known) {
		struct topic_list_txn t = { NULL, 0 };
		rc = topic_list_body(c, &t);
		out->topics = t.t;
		out->topic_count = t.count;
		out->topics_read = !rc;
	}
	/* Transaction ids below the caller's mark: the database was
	 * restored into another cluster, whose ids started lower. Every row
	 * then, once. */
	int64_t since = x->since > out->parts_next ? -1 : x->since;
	struct pg_params p = { 0 };
	p_i64(&p, since);
	PGresult *r;
	if (!rc)
		rc = pg_run(c, ST_PARTITION_LIST_SINCE, &p, &r, "listing partitions");
	if (!rc)
		rc = partitions_from(r, &out->parts, &out->part_count);
	return rc;
}

static int pg_catalog_read(struct meta *m, int64_t known_version, int64_t parts_since,
			   struct meta_catalog *out)
{
	memset(out, 0, sizeof *out);
	struct catalog_txn x = { known_version, parts_since, out };
	/* Off the registry's and the leases' connections, so a large
	 * catalog delays no heartbeat; the full read (every topic or every
	 * partition: an agent's first poll) gets the bulk bound. */
	bool full = known_version < 0 || parts_since < 0;
	int rc = pg_txn_within(&pg_of(m)->catalog, TXN_READ, catalog_body, &x, clock_mono_us(),
			       full ? SL_META_PG_BULK_TIMEOUT_MS : SL_META_PG_DATA_TIMEOUT_MS);
	if (rc)
		meta_catalog_free(out);
	return rc;
}

/* ---- SCRAM credentials ---- */

/* bytea as PostgreSQL's hex text: "\\x" and two digits a byte (out:
 * 3 + 2 * n bytes). */
static void bytea_format(char *out, const uint8_t *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	*out++ = '\\';
	*out++ = 'x';
	for (size_t i = 0; i < n; i++) {
		*out++ = hex[p[i] >> 4];
		*out++ = hex[p[i] & 15];
	}
	*out = 0;
}

/* The reverse, into at most cap bytes (0 for anything else). */
static uint32_t bytea_parse(uint8_t *dst, size_t cap, const char *s)
{
	if (s[0] != '\\' || s[1] != 'x')
		return 0;
	s += 2;
	size_t n = strlen(s) / 2;
	if (n > cap)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return 0;
		dst[i] = (uint8_t)(hi << 4 | lo);
	}
	return (uint32_t)n;
}

static void scram_row_read(const PGresult *r, int row, struct meta_scram_credential *c)
{
	memset(c, 0, sizeof *c);
	v_text(c->user, sizeof c->user, r, row, 0);
	c->mechanism = (int8_t)v_i64(r, row, 1);
	c->salt_len = bytea_parse(c->salt, sizeof c->salt, PQgetvalue(r, row, 2));
	c->iterations = (int32_t)v_i64(r, row, 3);
	c->key_len = bytea_parse(c->stored_key, sizeof c->stored_key, PQgetvalue(r, row, 4));
	bytea_parse(c->server_key, sizeof c->server_key, PQgetvalue(r, row, 5));
}

static int pg_scram_get(struct meta *m, const char *user, struct meta_scram_credential *out,
			size_t *n)
{
	struct pg_params p = { 0 };
	p_str(&p, user);
	PGresult *r;
	int rc = pg_call(&pg_of(m)->read, ST_SCRAM_GET, &p, &r, "reading a SCRAM credential");
	if (rc)
		return rc;
	int rows = PQntuples(r);
	for (int i = 0; i < rows && i < META_SCRAM_MECHANISMS; i++)
		scram_row_read(r, i, &out[i]);
	*n = rows < META_SCRAM_MECHANISMS ? (size_t)rows : META_SCRAM_MECHANISMS;
	PQclear(r);
	return 0;
}

static int pg_scram_list(struct meta *m, struct meta_scram_credential **out, size_t *n)
{
	PGresult *r;
	int rc = pg_call(&pg_of(m)->admin, ST_SCRAM_LIST, NULL, &r, "listing SCRAM credentials");
	if (rc)
		return rc;
	int rows = PQntuples(r);
	struct meta_scram_credential *v = rows ? calloc((size_t)rows, sizeof *v) : NULL;
	if (rows && !v) {
		PQclear(r);
		return SL_ENOMEM;
	}
	for (int i = 0; i < rows; i++)
		scram_row_read(r, i, &v[i]);
	PQclear(r);
	*out = v;
	*n = (size_t)rows;
	return 0;
}

struct scram_alter_txn {
	struct meta_scram_change *changes;
	size_t n;
};

static int scram_alter_body(struct pg_conn *c, void *arg)
{
	struct scram_alter_txn *x = arg;
	char salt[3 + 2 * META_SCRAM_SALT_BYTES], stored[3 + 2 * META_SCRAM_KEY_BYTES],
		server[3 + 2 * META_SCRAM_KEY_BYTES];
	for (size_t i = 0; i < x->n; i++) {
		struct meta_scram_change *ch = &x->changes[i];
		const struct meta_scram_credential *cr = &ch->cred;
		struct pg_params p = { 0 };
		p_str(&p, cr->user);
		p_i64(&p, cr->mechanism);
		if (!ch->remove) {
			bytea_format(salt, cr->salt, cr->salt_len);
			bytea_format(stored, cr->stored_key, cr->key_len);
			bytea_format(server, cr->server_key, cr->key_len);
			p_str(&p, salt);
			p_i64(&p, cr->iterations);
			p_str(&p, stored);
			p_str(&p, server);
		}
		PGresult *r;
		int rc = pg_run(c, ch->remove ? ST_SCRAM_DELETE : ST_SCRAM_UPSERT, &p, &r,
				"writing a SCRAM credential");
		if (rc)
			return rc;
		ch->result = ch->remove && changed_rows(r) == 0 ? SL_ENOTFOUND : 0;
		PQclear(r);
	}
	return 0;
}

static int pg_scram_alter(struct meta *m, struct meta_scram_change *changes, size_t n)
{
	int rc = meta_scram_changes_check(changes, n);
	if (rc)
		return rc;
	struct scram_alter_txn x = { changes, n };
	return pg_txn(&pg_of(m)->admin, TXN_WRITE, scram_alter_body, &x);
}
static int pg_leases_sync(struct meta *m, const struct meta_agent *self, int64_t lease_ms,
			  struct meta_lease *leases, size_t n);
static int pg_offset_commit_fenced(struct meta *m, const struct meta_offset_commit *rows,
				   const int64_t *epochs, size_t n, bool *refused);
static int pg_group_delete_offsets_fenced(struct meta *m, const char *group_id,
					  const struct meta_agent *self, int64_t epoch,
					  const int64_t *tids, const int32_t *partitions, size_t n,
					  int64_t *deleted);
static int pg_group_forget(struct meta *m, const char *group_id, const struct meta_agent *self,
			   int64_t epoch);
static int pg_group_states_expire(struct meta *m, int64_t idle_ms, int64_t *deleted);
static int pg_group_state_store(struct meta *m, const struct meta_group_state *g, int64_t epoch);
static int pg_group_state_load(struct meta *m, const char *group_id,
			       struct meta_group_state **out, size_t *n);
static int pg_txn_persist(struct meta *m, const char *id, const struct txn_record *r,
			  int64_t coord_epoch, int64_t *version);
static int pg_txn_delete(struct meta *m, const char *id, int64_t coord_epoch, int64_t version);
static int pg_txn_load(struct meta *m, const char *id, meta_txn_want_fn *want, void *arg,
		       struct meta_txn_row **out, size_t *n);
static int pg_txn_open_list(struct meta *m, struct meta_txn_row **out, size_t *n);
static int pg_txn_offset_commit(struct meta *m, const char *id, int64_t producer_id,
				int16_t producer_epoch, const struct meta_offset_commit *rows,
				size_t n);
static int pg_txn_settle(struct meta *m, const char *id, int64_t txn_seq, bool commit);
static int pg_aborted_txns(struct meta *m, int64_t tid, int32_t partition, int64_t from,
			   int64_t to, struct meta_aborted_txn *out, size_t cap, size_t *n);
static int pg_aborted_txns_since(struct meta *m, int64_t after_seq,
				 struct meta_aborted_feed *out, size_t cap, size_t *n);

/* ---- change notifications (meta.h): the listen connection, read on
 * the loop without blocking ---- */

/* A decimal number followed by end (consumed), or with end 0 by a space
 * or the end of the text (not consumed), within [min, max]. */
static bool scan_num(const char **p, char end, int64_t min, int64_t max, int64_t *v)
{
	const char *s = *p;
	if (!((*s >= '0' && *s <= '9') || *s == '-'))
		return false;
	errno = 0;
	char *e;
	long long x = strtoll(s, &e, 10);
	if (e == s || errno || x < min || x > max)
		return false;
	if (end ? *e != end : *e != ' ' && *e != 0)
		return false;
	*v = x;
	*p = end ? e + 1 : e;
	return true;
}

/* One row of a commit payload (commit_notify) of version 1 or 2. */
static bool scan_row(const char **p, int version, struct meta_notice_batch *b)
{
	int64_t tid, part, base, delta, pos, len, cnt, ts, lso = -1;
	if (!scan_num(p, ',', 1, INT64_MAX, &tid) || !scan_num(p, ',', 0, INT32_MAX, &part) ||
	    !scan_num(p, ',', 0, INT64_MAX, &base) || !scan_num(p, ',', 0, INT32_MAX, &delta) ||
	    base > INT64_MAX - delta || !scan_num(p, ',', 0, INT64_MAX, &pos) ||
	    !scan_num(p, ',', 0, UINT32_MAX, &len) || !scan_num(p, ',', 0, INT32_MAX, &cnt) ||
	    !scan_num(p, version == 1 ? 0 : ',', INT64_MIN, INT64_MAX, &ts) ||
	    (version > 1 && !scan_num(p, 0, -1, INT64_MAX, &lso)))
		return false;
	*b = (struct meta_notice_batch){
		.tid = tid, .partition = (int32_t)part, .base_offset = base,
		.last_offset = base + delta, .byte_offset = (uint64_t)pos, .length = (uint32_t)len,
		.record_count = (int32_t)cnt, .max_timestamp = ts, .last_stable_offset = lso,
	};
	return true;
}

/* A commit payload to fn; false when it does not parse. This store's own
 * commits are skipped. */
static bool notice_commit(struct meta_pg *s, const char *payload, meta_notice_fn *fn, void *arg)
{
	const char *p = payload;
	int version = p[0] == '1' ? 1 : p[0] == '2' ? 2 : 0;
	if (!version || p[1] != ' ' || strnlen(p + 2, 17) < 17 || p[18] != ' ')
		return false;
	if (memcmp(p + 2, s->token, 16) == 0)
		return true;
	p += 19;
	int64_t size, key_len;
	if (!scan_num(&p, ' ', 0, INT64_MAX, &size) ||
	    !scan_num(&p, ':', 1, META_OBJECT_KEY_BYTES - 1, &key_len) ||
	    strnlen(p, (size_t)key_len) < (size_t)key_len)
		return false;
	char key[META_OBJECT_KEY_BYTES];
	memcpy(key, p, (size_t)key_len);
	key[key_len] = 0;
	p += key_len;
	size_t n = 0;
	while (*p == ' ' && n < PG_NOTICE_ROWS_MAX) {
		p++;
		if (!scan_row(&p, version, &s->notice_rows[n++]))
			return false;
	}
	if (*p || n == 0)
		return false;
	struct meta_notice notice = { META_NOTICE_COMMIT, key, (uint64_t)size, s->notice_rows, n };
	fn(arg, &notice);
	return true;
}

/* "TOKEN TID PARTITION LOG_START" (ST_PARTITION_SET_LOG_START, or
 * ST_CLEAN_OFFSET_RAISE's: kind) to fn; this store's own are skipped (its
 * caller applies them). */
static void notice_log_start(struct meta_pg *s, const char *payload, meta_notice_fn *fn,
			     void *arg, enum meta_notice_kind kind)
{
	if (strnlen(payload, 17) == 17 && payload[16] == ' ' && !memcmp(payload, s->token, 16))
		return;
	const char *p = payload + (strnlen(payload, 17) == 17 ? 17 : 0);
	int64_t tid, part, start;
	if (!scan_num(&p, ' ', 1, INT64_MAX, &tid) || !scan_num(&p, ' ', 0, INT32_MAX, &part) ||
	    !scan_num(&p, 0, 0, INT64_MAX, &start) || *p) {
		log_debug("metadata store (listen): a log start notification that does not parse: "
			  "%.80s", payload);
		return;
	}
	struct meta_notice notice = { .kind = kind, .tid = tid,
				      .partition = (int32_t)part, .log_start_offset = start };
	fn(arg, &notice);
}

static int pg_listen_start(struct meta *m)
{
	struct pg_conn *c = &pg_of(m)->listen;
	pthread_mutex_lock(&c->lock);
	if (c->db)
		PQfinish(c->db);
	int rc = conn_connect(c);
	if (!rc) {
		PGresult *r = pg_answer(c, PQsendQuery(c->db, "LISTEN " PG_CHANNEL_COMMIT
						       "; LISTEN " PG_CHANNEL_CATALOG
						       "; LISTEN " PG_CHANNEL_LOG_START
						       "; LISTEN " PG_CHANNEL_REWRITE));
		rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : SL_EMETA;
		PQclear(r);
	}
	if (rc) {
		char msg[512];
		one_line(msg, sizeof msg, conn_why(c));
		log_debug("metadata store %s (listen): cannot listen: %s", c->where, msg);
		if (c->db)
			PQfinish(c->db);
		c->db = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	return rc ? SL_EMETA : 0;
}

/* trylock: a reconnect on the pool holds the lock through a connect,
 * which the loop must not wait for (its socket is not polled then). */
static int pg_listen_fd(struct meta *m)
{
	struct pg_conn *c = &pg_of(m)->listen;
	if (pthread_mutex_trylock(&c->lock) != 0)
		return -1;
	int fd = c->db && PQstatus(c->db) == CONNECTION_OK ? PQsocket(c->db) : -1;
	pthread_mutex_unlock(&c->lock);
	return fd;
}

static int pg_listen_read(struct meta *m, meta_notice_fn *fn, void *arg)
{
	struct meta_pg *s = pg_of(m);
	struct pg_conn *c = &s->listen;
	if (pthread_mutex_trylock(&c->lock) != 0)
		return 0;
	int rc = 0;
	/* libpq's socket is non-blocking: this reads what has arrived. */
	if (!c->db || !PQconsumeInput(c->db)) {
		rc = SL_EMETA;
		goto out_unlock;
	}
	PGnotify *n;
	while ((n = PQnotifies(c->db))) {
		if (!strcmp(n->relname, PG_CHANNEL_CATALOG)) {
			struct meta_notice notice = { .kind = META_NOTICE_CATALOG };
			fn(arg, &notice);
		} else if (!strcmp(n->relname, PG_CHANNEL_COMMIT) && !notice_commit(s, n->extra, fn, arg)) {
			log_debug("metadata store (listen): a commit notification that does not parse: "
				  "%.80s", n->extra);
		} else if (!strcmp(n->relname, PG_CHANNEL_LOG_START)) {
			notice_log_start(s, n->extra, fn, arg, META_NOTICE_LOG_START);
		} else if (!strcmp(n->relname, PG_CHANNEL_REWRITE)) {
			notice_log_start(s, n->extra, fn, arg, META_NOTICE_REWRITTEN);
		}
		PQfreemem(n);
	}
	if (PQstatus(c->db) != CONNECTION_OK)
		rc = SL_EMETA;
out_unlock:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* ---- ACLs ---- */

struct acl_read_txn {
	int64_t known, *version;
	struct acl_binding *v;
	size_t count, cap;
};

static int acl_read_body(struct pg_conn *c, void *arg)
{
	struct acl_read_txn *x = arg;
	acl_bindings_free(x->v, x->count); /* a retried transaction starts over */
	x->v = NULL;
	x->count = x->cap = 0;
	int rc = pg_i64_of(c, ST_ACL_VERSION, NULL, x->version, "reading the ACL version");
	if (rc || *x->version == x->known)
		return rc;
	PGresult *r;
	rc = pg_run(c, ST_ACL_LIST, NULL, &r, "listing ACLs");
	if (rc)
		return rc;
	for (int i = 0; !rc && i < PQntuples(r); i++) {
		struct acl_binding row = {
			.resource_type = (int8_t)v_i64(r, i, 0),
			.resource_name = PQgetvalue(r, i, 1),
			.pattern_type = (int8_t)v_i64(r, i, 2),
			.principal = PQgetvalue(r, i, 3),
			.host = PQgetvalue(r, i, 4),
			.operation = (int8_t)v_i64(r, i, 5),
			.permission = (int8_t)v_i64(r, i, 6),
		};
		rc = meta_acl_push(&x->v, &x->count, &x->cap, &row);
	}
	PQclear(r);
	return rc;
}

static int pg_acl_read(struct meta *m, int64_t known_version, int64_t *version,
		       struct acl_binding **out, size_t *n)
{
	struct acl_read_txn x = { known_version, version, NULL, 0, 0 };
	int rc = pg_txn(&pg_of(m)->read, TXN_READ, acl_read_body, &x);
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

static void acl_params(struct pg_params *p, const struct acl_binding *b)
{
	p_i64(p, b->resource_type);
	p_str(p, b->resource_name);
	p_i64(p, b->pattern_type);
	p_str(p, b->principal);
	p_str(p, b->host);
	p_i64(p, b->operation);
	p_i64(p, b->permission);
}

static int acl_alter_body(struct pg_conn *c, void *arg)
{
	struct acl_alter_txn *x = arg;
	int rc = 0;
	for (size_t i = 0; !rc && i < x->remove_count + x->add_count; i++) {
		bool remove = i < x->remove_count;
		struct pg_params p = { 0 };
		acl_params(&p, remove ? &x->remove[i] : &x->add[i - x->remove_count]);
		PGresult *r;
		rc = pg_run(c, remove ? ST_ACL_DELETE : ST_ACL_INSERT, &p, &r, "writing an ACL");
		if (!rc)
			PQclear(r);
	}
	int64_t count = 0;
	if (!rc)
		rc = pg_i64_of(c, ST_ACL_COUNT, NULL, &count, "counting ACLs");
	if (!rc && count > SL_ACLS_MAX)
		rc = SL_ELIMIT;
	int64_t raised;
	if (!rc)
		rc = pg_changes(c, ST_ACL_RAISE, NULL, &raised, "raising the ACL version");
	return rc;
}

static int pg_acl_alter(struct meta *m, const struct acl_binding *add, size_t add_count,
			const struct acl_binding *remove, size_t remove_count)
{
	struct acl_alter_txn x = { add, remove, add_count, remove_count };
	return pg_txn(&pg_of(m)->admin, TXN_WRITE, acl_alter_body, &x);
}

static const struct meta_methods postgres_methods = {
	.name = "postgres",
	.shared = true,
	.offsets_lanes = PG_OFFSETS_LANES,
	.close = pg_close,
	.topic_create = pg_topic_create,
	.topic_delete = pg_topic_delete,
	.topic_list = pg_topic_list,
	.topic_set_partitions = pg_topic_set_partitions,
	.topic_configs_set = pg_topic_configs_set,
	.partition_get = pg_partition_get,
	.partition_list = pg_partition_list,
	.partition_set_log_start = pg_partition_set_log_start,
	.partition_trim = pg_partition_trim,
	.commit_objects = pg_commit_objects,
	.batches_from = pg_batches_from,
	.offset_for_timestamp = pg_offset_for_timestamp,
	.max_timestamp = pg_max_timestamp,
	.producer_ids_alloc = pg_producer_ids_alloc,
	.offset_commit = pg_offset_commit,
	.offset_fetch = pg_offset_fetch,
	.txn_offsets_pending = pg_txn_offsets_pending,
	.group_list = pg_group_list,
	.producers_describe = pg_producers_describe,
	.group_delete_offsets = pg_group_delete_offsets,
	.batches_from_many = pg_batches_from_many,
	.objects_dead = pg_objects_dead,
	.objects_mark_deleting = pg_objects_mark_deleting,
	.objects_forget = pg_objects_forget,
	.object_known = pg_object_known,
	.gc_fence_raise = pg_gc_fence_raise,
	.merge_swap = pg_merge_swap,
	.clean_bytes = pg_clean_bytes,
	.agent_register = pg_agent_register,
	.agent_heartbeat = pg_agent_heartbeat,
	.agent_deregister = pg_agent_deregister,
	.catalog_read = pg_catalog_read,
	.scram_get = pg_scram_get,
	.scram_list = pg_scram_list,
	.scram_alter = pg_scram_alter,
	.leases_sync = pg_leases_sync,
	.offset_commit_fenced = pg_offset_commit_fenced,
	.group_delete_offsets_fenced = pg_group_delete_offsets_fenced,
	.group_forget = pg_group_forget,
	.group_states_expire = pg_group_states_expire,
	.group_state_store = pg_group_state_store,
	.group_state_load = pg_group_state_load,
	.listen_start = pg_listen_start,
	.listen_fd = pg_listen_fd,
	.listen_read = pg_listen_read,
	.acl_read = pg_acl_read,
	.acl_alter = pg_acl_alter,
	.txn_persist = pg_txn_persist,
	.txn_delete = pg_txn_delete,
	.txn_load = pg_txn_load,
	.txn_open_list = pg_txn_open_list,
	.txn_offset_commit = pg_txn_offset_commit,
	.txn_settle = pg_txn_settle,
	.aborted_txns = pg_aborted_txns,
	.aborted_txns_since = pg_aborted_txns_since,
};

/* meta_int.h. */
int meta_postgres_open(const char *conninfo, bool create, struct meta **out)
{
	*out = NULL;
	struct meta_pg *s = calloc(1, sizeof *s);
	if (!s)
		return SL_ENOMEM;
	s->base.m = &postgres_methods;
	int rc = describe(conninfo, s->where, sizeof s->where, &s->user_options);
	if (rc) {
		free(s);
		return rc;
	}
	uint8_t t[8];
	if (getrandom(t, sizeof t, 0) != (ssize_t)sizeof t) {
		uint64_t x = (uint64_t)clock_mono_us() ^ (uint64_t)getpid() << 32 ^ (uintptr_t)s;
		memcpy(t, &x, sizeof t);
	}
	for (size_t i = 0; i < sizeof t; i++)
		snprintf(s->token + 2 * i, 3, "%02x", t[i]);
	if (!(s->conninfo = strdup(conninfo)) ||
	    !(s->notice_rows = calloc(PG_NOTICE_ROWS_MAX, sizeof *s->notice_rows))) {
		free(s->conninfo);
		free(s->user_options);
		free(s);
		return SL_ENOMEM;
	}
	/* The loop connection migrates (or, not creating, checks) the schema
	 * before the others connect, all at once. */
	rc = conn_open(&s->loop, "loop", SL_META_PG_BULK_TIMEOUT_MS, 0, s);
	if (!rc)
		rc = schema_migrate(&s->loop, create);
	/* A test's knob: the cluster connections' bound, small. */
	const char *knob = getenv("SLUICE_PG_CLUSTER_TIMEOUT_MS");
	s->cluster_timeout_ms = knob && atoi(knob) > 0 ? atoi(knob) : SL_META_PG_CLUSTER_TIMEOUT_MS;
	int cluster_ms = s->cluster_timeout_ms;
	if (!rc) {
		struct conn_job jobs[5 + PG_OFFSETS_LANES] = {
			{ &s->read, "read", SL_META_PG_DATA_TIMEOUT_MS, 0 },
			{ &s->commit, "commit", SL_META_PG_DATA_TIMEOUT_MS, 0 },
			{ &s->trim, "trim", SL_META_PG_BULK_TIMEOUT_MS, 0 },
			{ &s->admin, "admin", SL_META_PG_BULK_TIMEOUT_MS, 0 },
			{ &s->cluster, "cluster", cluster_ms, SL_META_PG_CLUSTER_STATEMENT_MS },
		};
		for (int i = 0; i < PG_OFFSETS_LANES; i++)
			jobs[5 + i] = (struct conn_job){ &s->offsets[i], offsets_roles[i],
							 SL_META_PG_DATA_TIMEOUT_MS, 0 };
		rc = conn_open_all(s, jobs, sizeof jobs / sizeof jobs[0]);
	}
	/* Connected on first use (pg_ready): a store that runs no agent (a
	 * tool, meta_bench's committers) opens neither. */
	if (!rc)
		rc = conn_init(&s->leases, "leases", cluster_ms, SL_META_PG_CLUSTER_STATEMENT_MS, s);
	if (!rc)
		rc = conn_init(&s->catalog, "catalog", SL_META_PG_DATA_TIMEOUT_MS,
			       SL_META_PG_BULK_TIMEOUT_MS, s);
	if (!rc) /* connected by meta_listen_start */
		rc = conn_init(&s->listen, "listen", SL_META_PG_CLUSTER_TIMEOUT_MS, 0, s);
	if (rc) {
		pg_close(&s->base);
		return rc == SL_ENOMEM ? SL_ENOMEM : SL_EMETA;
	}
	log_debug("metadata store: opened %s", s->where);
	*out = &s->base;
	return 0;
}

/* ---- leases (meta.h): with the server's clock, on the cluster
 * connection (offsets' fences on the offsets connection). Three row
 * lock strengths keep fencing correct without letting one stuck write
 * stop an agent's renewals: a fenced write reads the lease row FOR KEY
 * SHARE; a sync locks its rows FOR NO KEY UPDATE, which does not
 * conflict with that, so renewing (or releasing: the epoch stays) never
 * waits for a fenced write, however long it is blocked; a take (the
 * epoch rises) upgrades its row to FOR UPDATE, which does, SKIP LOCKED:
 * while a write fenced at the old epoch is open the take waits for the
 * next sync (so that write commits before the new epoch or sees it),
 * and the sync's other leases go on. A lease without a row gets one
 * (released, epoch 0) first, so two takers queue on it. Statements are
 * not prepared (a few a second). ---- */

static int pg_exec_params(struct pg_conn *c, const char *sql, const struct pg_params *p,
			  PGresult **res, const char *what)
{
	if (res)
		*res = NULL;
	PGresult *r = pg_answer(c, PQsendQueryParams(c->db, sql, p ? p->n : 0, NULL,
						     p ? p->v : NULL, NULL, NULL, 0));
	return pg_result(c, r, res, what);
}

/* A fenced write's read of its lease row, FOR KEY SHARE until the
 * transaction ends (a take waits for it, a renewal does not). */
static int lease_row_fence(struct pg_conn *c, const char *name, struct meta_lease_row *row)
{
	static const char sql[] = "SELECT l.holder, l.incarnation, l.epoch, l.expires_ms,"
		" EXISTS (SELECT 1 FROM agents AS a WHERE a.node_id = l.holder"
		" AND a.incarnation = l.incarnation)"
		" FROM leases AS l WHERE l.name = $1 FOR KEY SHARE OF l";
	static const char insert[] = "INSERT INTO leases (name, holder, incarnation, epoch,"
		" expires_ms) VALUES ($1, -1, 0, 0, 0) ON CONFLICT (name) DO NOTHING";
	struct pg_params p = { 0 };
	p_str(&p, name);
	memset(row, 0, sizeof *row);
	row->holder = -1;
	for (int round = 0; round < 2; round++) {
		PGresult *r;
		int rc = pg_exec_params(c, sql, &p, &r, "reading a lease");
		if (rc)
			return rc;
		if (PQntuples(r) == 1) {
			row->found = true;
			row->holder = (int32_t)v_i64(r, 0, 0);
			row->incarnation = v_i64(r, 0, 1);
			row->epoch = v_i64(r, 0, 2);
			row->expires_ms = v_i64(r, 0, 3);
			row->holder_alive = PQgetvalue(r, 0, 4)[0] == 't';
		}
		PQclear(r);
		if (row->found || round == 1)
			return 0;
		rc = pg_exec_params(c, insert, &p, NULL, "creating a lease");
		if (rc)
			return rc;
	}
	return 0;
}

struct leases_txn {
	const struct meta_agent *self;
	int64_t lease_ms;
	struct meta_lease *l;
	size_t n;
};

/* A sync's leases sorted by name (x->order), to find a row's lease. */
static const struct meta_lease *sort_leases;

static int lease_order_cmp(const void *a, const void *b)
{
	return strcmp(sort_leases[*(const size_t *)a].name, sort_leases[*(const size_t *)b].name);
}

static size_t lease_find(const struct leases_txn *x, const size_t *order, const char *name)
{
	size_t lo = 0, hi = x->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(x->l[order[mid]].name, name);
		if (c == 0)
			return order[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return x->n;
}

/* Every lease row of the sync, locked FOR NO KEY UPDATE in name order
 * (two agents syncing overlapping sets queue, never deadlock; a fenced
 * write's FOR KEY SHARE is no obstacle), in one statement; *missing
 * counts the leases without a row. */
static int leases_lock_all(struct pg_conn *c, const struct leases_txn *x, const size_t *order,
			   const char *names, struct meta_lease_row *rows, size_t *missing)
{
	static const char sql[] = "SELECT l.name, l.holder, l.incarnation, l.epoch, l.expires_ms,"
		" EXISTS (SELECT 1 FROM agents AS a WHERE a.node_id = l.holder"
		" AND a.incarnation = l.incarnation)"
		" FROM leases AS l WHERE l.name = ANY($1::text[]) ORDER BY l.name"
		" FOR NO KEY UPDATE OF l";
	struct pg_params p = { 0 };
	p_str(&p, names);
	PGresult *r;
	int rc = pg_exec_params(c, sql, &p, &r, "reading leases");
	if (rc)
		return rc;
	for (size_t i = 0; i < x->n; i++)
		rows[i] = (struct meta_lease_row){ .holder = -1 };
	for (int i = 0; i < PQntuples(r); i++) {
		size_t k = lease_find(x, order, PQgetvalue(r, i, 0));
		if (k == x->n)
			continue;
		struct meta_lease_row *row = &rows[k];
		row->found = true;
		row->holder = (int32_t)v_i64(r, i, 1);
		row->incarnation = v_i64(r, i, 2);
		row->epoch = v_i64(r, i, 3);
		row->expires_ms = v_i64(r, i, 4);
		row->holder_alive = PQgetvalue(r, i, 5)[0] == 't';
	}
	PQclear(r);
	*missing = 0;
	for (size_t i = 0; i < x->n; i++)
		*missing += !rows[i].found;
	return 0;
}

/* The arrays of leases_sync_body's one UPDATE. */
struct lease_updates {
	struct pg_text name, holder, incarnation, epoch, expires_ms;
	size_t n;
};

static void lease_update_add(struct lease_updates *u, const char *name, int64_t holder,
			     int64_t incarnation, int64_t epoch, int64_t expires_ms)
{
	tx_str(&u->name, name);
	tx_i64(&u->holder, holder);
	tx_i64(&u->incarnation, incarnation);
	tx_i64(&u->epoch, epoch);
	tx_i64(&u->expires_ms, expires_ms);
	u->n++;
}

static int lease_updates_run(struct pg_conn *c, struct lease_updates *u)
{
	static const char sql[] = "UPDATE leases AS l SET holder = u.holder,"
		" incarnation = u.incarnation, epoch = u.epoch, expires_ms = u.expires_ms"
		" FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[])"
		" AS u(name, holder, incarnation, epoch, expires_ms) WHERE l.name = u.name";
	struct pg_params p = { 0 };
	p_str(&p, tx_end(&u->name));
	p_str(&p, tx_end(&u->holder));
	p_str(&p, tx_end(&u->incarnation));
	p_str(&p, tx_end(&u->epoch));
	p_str(&p, tx_end(&u->expires_ms));
	if (!p.v[0] || !p.v[1] || !p.v[2] || !p.v[3] || !p.v[4])
		return SL_ENOMEM;
	return pg_exec_params(c, sql, &p, NULL, "writing leases");
}

/* The leases decided META_LEASE_TAKE, upgraded to FOR UPDATE in name
 * order, SKIP LOCKED: a lease whose row a fenced write holds (FOR KEY
 * SHARE, a write at the old epoch still open) is left for the next sync
 * (act[i] becomes META_LEASE_KEEP, its holder -1: nobody holds it for
 * good) instead of holding this sync, and with it every renewal in it,
 * until that write ends. */
static int leases_take_lock(struct pg_conn *c, const struct leases_txn *x, const size_t *order,
			    struct meta_lease_row *rows, enum meta_lease_action *act)
{
	static const char sql[] = "SELECT l.name FROM leases AS l WHERE l.name = ANY($1::text[])"
		" ORDER BY l.name FOR UPDATE OF l SKIP LOCKED";
	struct pg_text names = { 0 };
	size_t takes = 0;
	for (size_t i = 0; i < x->n; i++)
		if (act[order[i]] == META_LEASE_TAKE) {
			tx_str(&names, x->l[order[i]].name);
			takes++;
		}
	if (!takes)
		return 0;
	struct pg_params p = { 0 };
	p_str(&p, tx_end(&names));
	PGresult *r = NULL;
	int rc = p.v[0] ? pg_exec_params(c, sql, &p, &r, "locking leases to take") : SL_ENOMEM;
	free(names.p);
	if (rc)
		return rc;
	bool *locked = calloc(x->n, sizeof *locked);
	if (!locked) {
		PQclear(r);
		return SL_ENOMEM;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		size_t k = lease_find(x, order, PQgetvalue(r, i, 0));
		if (k < x->n)
			locked[k] = true;
	}
	PQclear(r);
	for (size_t i = 0; i < x->n; i++)
		if (act[i] == META_LEASE_TAKE && !locked[i]) {
			act[i] = META_LEASE_KEEP;
			rows[i].holder = -1;
		}
	free(locked);
	return 0;
}

/* One transaction whatever the lease count: the clock, the rows locked
 * in one statement (rows created first for leases that have none, in
 * name order so two creators queue), each lease decided here (the ones
 * to take locked harder, leases_take_lock), and every change written by
 * one UPDATE: BEGIN, three statements (four when a lease is new, or one
 * is taken; two when nothing changes), COMMIT per sync, so an agent's
 * renewals cost the same few round trips a second however many leases
 * it holds (it was two per lease). */
static int leases_sync_body(struct pg_conn *c, void *arg)
{
	static const char insert[] = "INSERT INTO leases (name, holder, incarnation, epoch,"
		" expires_ms) SELECT n, -1, 0, 0, 0 FROM unnest($1::text[]) AS n ORDER BY n"
		" ON CONFLICT (name) DO NOTHING";
	struct leases_txn *x = arg;
	struct meta_lease_row *rows = calloc(x->n, sizeof *rows);
	size_t *order = calloc(x->n, sizeof *order);
	enum meta_lease_action *act = calloc(x->n, sizeof *act);
	struct pg_text names = { 0 }, add = { 0 };
	struct lease_updates u = { 0 };
	int64_t now = 0;
	size_t missing = 0;
	int rc = rows && order && act ? 0 : SL_ENOMEM;
	if (!rc) {
		for (size_t i = 0; i < x->n; i++)
			order[i] = i;
		sort_leases = x->l; /* one sync at a time: the leases connection's lock */
		qsort(order, x->n, sizeof *order, lease_order_cmp);
		for (size_t i = 0; i < x->n; i++)
			tx_str(&names, x->l[order[i]].name);
		if (!tx_end(&names))
			rc = SL_ENOMEM;
	}
	if (!rc)
		rc = pg_i64_of(c, ST_CLOCK_MS, NULL, &now, "reading the clock");
	if (!rc)
		rc = leases_lock_all(c, x, order, names.p, rows, &missing);
	if (!rc && missing) {
		for (size_t i = 0; i < x->n; i++)
			if (!rows[i].found)
				tx_str(&add, x->l[i].name);
		struct pg_params p = { 0 };
		p_str(&p, tx_end(&add));
		rc = p.v[0] ? pg_exec_params(c, insert, &p, NULL, "creating leases") : SL_ENOMEM;
		if (!rc)
			rc = leases_lock_all(c, x, order, names.p, rows, &missing);
	}
	for (size_t i = 0; !rc && i < x->n; i++)
		act[i] = meta_lease_decide(&rows[i], x->self, x->l[i].release, now);
	if (!rc)
		rc = leases_take_lock(c, x, order, rows, act);
	for (size_t i = 0; !rc && i < x->n; i++) {
		struct meta_lease *l = &x->l[i];
		const struct meta_lease_row *row = &rows[i];
		l->epoch = 0;
		l->expires_in_ms = 0;
		l->holder = row->found ? row->holder : -1;
		if (act[i] == META_LEASE_RELEASE) {
			l->holder = -1;
			lease_update_add(&u, l->name, -1, 0, row->epoch, 0);
		} else if (act[i] != META_LEASE_KEEP) {
			l->epoch = row->epoch + (act[i] == META_LEASE_TAKE);
			l->holder = x->self->node_id;
			l->expires_in_ms = x->lease_ms;
			lease_update_add(&u, l->name, x->self->node_id, x->self->incarnation, l->epoch,
					 now + x->lease_ms);
		}
	}
	if (!rc && u.n)
		rc = lease_updates_run(c, &u);
	free(names.p);
	free(add.p);
	free(u.name.p);
	free(u.holder.p);
	free(u.incarnation.p);
	free(u.epoch.p);
	free(u.expires_ms.p);
	free(rows);
	free(order);
	free(act);
	return rc;
}

static int pg_leases_sync(struct meta *m, const struct meta_agent *self, int64_t lease_ms,
			  struct meta_lease *leases, size_t n)
{
	int rc = meta_leases_check(leases, n);
	if (rc || n == 0)
		return rc;
	struct leases_txn x = { self, lease_ms, leases, n };
	rc = pg_txn_renew(&pg_of(m)->leases, leases_sync_body, &x, lease_ms);
	if (rc)
		meta_leases_clear(leases, n);
	return rc;
}

/* Inside a write transaction: whether group's lease is at epoch (epoch
 * above 0), or free or self's (epoch 0); the lease row stays share-locked
 * until the transaction ends. */
static int group_fence_check(struct pg_conn *c, const char *group, const struct meta_agent *self,
			     int64_t epoch, bool *ok)
{
	char name[META_LEASE_NAME_BYTES];
	struct meta_lease_row row;
	int64_t now = 0;
	*ok = false;
	if (!meta_lease_group_name(group, name))
		return SL_EINVAL;
	int rc = lease_row_fence(c, name, &row);
	if (!rc && epoch == 0)
		rc = pg_i64_of(c, ST_CLOCK_MS, NULL, &now, "reading the clock");
	if (!rc)
		*ok = epoch > 0 ? row.found && row.epoch == epoch
				: meta_lease_free_or_self(&row, self, now);
	return rc;
}

struct fenced_commit_txn {
	const struct meta_offset_commit *rows;
	const int64_t *epochs;
	size_t n;
	bool *refused;
};

static int offset_commit_fenced_body(struct pg_conn *c, void *arg)
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

static int pg_offset_commit_fenced(struct meta *m, const struct meta_offset_commit *rows,
				   const int64_t *epochs, size_t n, bool *refused)
{
	if (n == 0)
		return 0;
	struct fenced_commit_txn x = { rows, epochs, n, refused };
	return pg_txn(offsets_of(m, rows[0].group_id), TXN_WRITE, offset_commit_fenced_body, &x);
}

struct fenced_delete_txn {
	struct delete_offsets_txn del;
	const struct meta_agent *self;
	int64_t epoch;
};

static int group_delete_fenced_body(struct pg_conn *c, void *arg)
{
	struct fenced_delete_txn *x = arg;
	bool ok;
	int rc = group_fence_check(c, x->del.group_id, x->self, x->epoch, &ok);
	if (!rc && !ok)
		rc = SL_EBUSY;
	return rc ? rc : group_delete_offsets_body(c, &x->del);
}

static int pg_group_delete_offsets_fenced(struct meta *m, const char *group_id,
					  const struct meta_agent *self, int64_t epoch,
					  const int64_t *tids, const int32_t *partitions, size_t n,
					  int64_t *deleted)
{
	struct fenced_delete_txn x = { { group_id, tids, partitions, n, 0 }, self, epoch };
	int rc = pg_txn(offsets_of(m, group_id), TXN_WRITE, group_delete_fenced_body, &x);
	if (!rc && deleted)
		*deleted = x.del.count;
	return rc;
}

struct forget_txn {
	const char *group_id;
	const struct meta_agent *self;
	int64_t epoch;
};

static int group_forget_body(struct pg_conn *c, void *arg)
{
	struct forget_txn *x = arg;
	if (x->self) {
		bool ok;
		int rc = group_fence_check(c, x->group_id, x->self, x->epoch, &ok);
		if (rc || !ok)
			return rc ? rc : SL_EBUSY;
	}
	struct pg_params p = { 0 };
	p_str(&p, x->group_id);
	return pg_run(c, ST_GROUP_FORGET, &p, NULL, "deleting a forgotten group's membership");
}

static int pg_group_forget(struct meta *m, const char *group_id, const struct meta_agent *self,
			   int64_t epoch)
{
	struct forget_txn x = { group_id, self, epoch };
	return pg_txn(offsets_of(m, group_id), TXN_WRITE, group_forget_body, &x);
}

static int pg_group_states_expire(struct meta *m, int64_t idle_ms, int64_t *deleted)
{
	struct pg_params p = { 0 };
	p_i64(&p, idle_ms);
	PGresult *r;
	int rc = pg_call(offsets_of(m, NULL), ST_GROUP_STATES_EXPIRE, &p, &r,
			 "deleting abandoned groups' membership");
	if (rc)
		return rc;
	*deleted = changed_rows(r);
	PQclear(r);
	return 0;
}

/* ---- consumer groups' membership (group_state) ---- */

struct group_state_txn {
	const struct meta_group_state *g;
	int64_t epoch;
	char *hex;
};

static int group_state_store_body(struct pg_conn *c, void *arg)
{
	struct group_state_txn *x = arg;
	const struct meta_group_state *g = x->g;
	bool ok = true;
	int rc = x->epoch > 0 ? group_fence_check(c, g->group_id, NULL, x->epoch, &ok) : 0;
	if (!rc && !ok)
		rc = SL_EBUSY;
	if (rc)
		return rc;
	struct pg_params p = { 0 };
	p_str(&p, g->group_id);
	p_i64(&p, g->generation);
	p_str(&p, g->protocol_type);
	p_str(&p, g->protocol_name);
	p_str(&p, g->leader_id);
	p_str(&p, x->hex);
	return pg_run(c, ST_GROUP_STATE_UPSERT, &p, NULL, "storing a group's membership");
}

static int pg_group_state_store(struct meta *m, const struct meta_group_state *g, int64_t epoch)
{
	static const char digits[] = "0123456789abcdef";
	struct group_state_txn x = { g, epoch, malloc(2 * g->members_len + 1) };
	if (!x.hex)
		return SL_ENOMEM;
	for (size_t i = 0; i < g->members_len; i++) {
		x.hex[2 * i] = digits[g->members[i] >> 4];
		x.hex[2 * i + 1] = digits[g->members[i] & 15];
	}
	x.hex[2 * g->members_len] = 0;
	int rc = pg_txn(offsets_of(m, g->group_id), TXN_WRITE, group_state_store_body, &x);
	free(x.hex);
	return rc;
}

static char *value_dup(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

static int pg_group_state_load(struct meta *m, const char *group_id,
			       struct meta_group_state **out, size_t *n)
{
	struct pg_params p = { 0 };
	if (group_id)
		p_str(&p, group_id);
	PGresult *r;
	int rc = pg_call(offsets_of(m, group_id), group_id ? ST_GROUP_STATE_GET : ST_GROUP_STATE_LIST,
			 &p, &r, "reading groups' membership");
	if (rc)
		return rc;
	int rows = PQntuples(r);
	struct meta_group_state *v = rows ? calloc((size_t)rows, sizeof *v) : NULL;
	if (rows && !v)
		rc = SL_ENOMEM;
	for (int i = 0; !rc && i < rows; i++) {
		struct meta_group_state *g = &v[i];
		const char *hex = PQgetvalue(r, i, 5);
		size_t len = strlen(hex) / 2;
		g->group_id = value_dup(r, i, 0);
		g->generation = (int32_t)v_i64(r, i, 1);
		g->protocol_type = value_dup(r, i, 2);
		g->protocol_name = value_dup(r, i, 3);
		g->leader_id = value_dup(r, i, 4);
		g->members = malloc(len ? len : 1);
		g->members_len = len;
		if (!g->group_id || !g->members) {
			rc = SL_ENOMEM;
			break;
		}
		for (size_t k = 0; k < len; k++)
			g->members[k] = (uint8_t)(hexval(hex[2 * k]) << 4 | hexval(hex[2 * k + 1]));
	}
	PQclear(r);
	if (rc) {
		meta_group_states_free(v, (size_t)rows);
		return rc;
	}
	*out = v;
	*n = (size_t)rows;
	return 0;
}

/* ---- the transaction coordinator's records (meta.h), on the offsets
 * connection ---- */

struct txn_write {
	const char *id;
	const struct txn_record *r; /* NULL: delete */
	int64_t coord_epoch;
	int64_t version;            /* expected */
};

static int txn_write_body(struct pg_conn *c, void *arg)
{
	struct txn_write *x = arg;
	const struct txn_record *r = x->r;
	struct pg_params p;
	int rc = 0;
	if (x->coord_epoch > 0) { /* the lease, FOR SHARE: a takeover waits */
		char name[META_LEASE_NAME_BYTES];
		struct meta_lease_row row;
		if (!meta_lease_txn_name(x->id, name))
			return SL_EINVAL;
		rc = lease_row_fence(c, name, &row);
		if (!rc && !(row.found && row.epoch == x->coord_epoch))
			rc = SL_EBUSY;
		if (rc)
			return rc;
	}
	if (!r) {
		txn_params(&p, x->id, 1, x->version);
		PGresult *res;
		rc = pg_run(c, ST_TXN_DELETE, &p, &res, "deleting a transaction");
		if (rc)
			return rc;
		int64_t gone = changed_rows(res);
		PQclear(res);
		if (gone != 1)
			return SL_EBUSY;
	} else {
		txn_params(&p, x->id, 10, r->producer_id, r->last_producer_id,
			   (int64_t)r->producer_epoch, (int64_t)r->last_producer_epoch,
			   (int64_t)r->timeout_ms, (int64_t)r->state, r->txn_seq, r->start_ms,
			   r->update_ms, x->coord_epoch);
		if (x->version > 0)
			p_i64(&p, x->version);
		rc = txn_row(c, x->version > 0 ? ST_TXN_UPDATE : ST_TXN_INSERT, &p, NULL,
			     "writing a transaction");
		if (rc <= 0)
			return rc < 0 ? rc : SL_EBUSY; /* another version is stored */
		rc = 0;
	}
	static const enum stmt clear[] = { ST_TXN_PARTS_CLEAR, ST_TXN_GROUPS_CLEAR,
					   ST_TXN_OFFSETS_DROP };
	txn_params(&p, x->id, 0);
	for (size_t i = 0; !rc && i < (r ? 2 : 3); i++)
		rc = pg_run(c, clear[i], &p, NULL, "clearing a transaction");
	if (rc || !r)
		return rc;
	struct pg_text tids = { 0 }, parts = { 0 }, groups = { 0 };
	for (int32_t i = 0; i < r->partition_count; i++) {
		tx_i64(&tids, r->partitions[i].tid);
		tx_i64(&parts, r->partitions[i].partition);
	}
	for (int32_t i = 0; i < r->group_count; i++)
		tx_str(&groups, r->groups[i]);
	struct pg_params q = { 0 };
	p_str(&q, x->id);
	p_str(&q, tx_end(&tids));
	p_str(&q, tx_end(&parts));
	if (!q.v[1] || !q.v[2])
		rc = SL_ENOMEM;
	else if (r->partition_count > 0)
		rc = pg_run(c, ST_TXN_PARTS_INSERT, &q, NULL, "writing a transaction's partitions");
	q.n = 1;
	p_str(&q, tx_end(&groups));
	if (!rc && !q.v[1])
		rc = SL_ENOMEM;
	else if (!rc && r->group_count > 0)
		rc = pg_run(c, ST_TXN_GROUPS_INSERT, &q, NULL, "writing a transaction's groups");
	free(tids.p);
	free(parts.p);
	free(groups.p);
	return rc;
}

static int pg_txn_persist(struct meta *m, const char *id, const struct txn_record *r,
			  int64_t coord_epoch, int64_t *version)
{
	int rc = meta_txn_record_check(id, r);
	if (rc || !r)
		return rc ? rc : SL_EINVAL;
	struct txn_write x = { id, r, coord_epoch, *version };
	rc = pg_txn(offsets_of(m, id), TXN_WRITE, txn_write_body, &x);
	if (!rc)
		*version = x.version + 1;
	return rc;
}

static int pg_txn_delete(struct meta *m, const char *id, int64_t coord_epoch, int64_t version)
{
	int rc = meta_txn_record_check(id, NULL);
	if (!rc && version < 1)
		rc = SL_EINVAL;
	if (rc)
		return rc;
	struct txn_write x = { id, NULL, coord_epoch, version };
	return pg_txn(offsets_of(m, id), TXN_WRITE, txn_write_body, &x);
}

struct txn_load_txn {
	const char *id;             /* NULL: every id */
	meta_txn_want_fn *want;
	void *arg;
	struct meta_txn_row *rows;
	size_t n, cap;
};

static int txn_load_body(struct pg_conn *c, void *arg)
{
	struct txn_load_txn *x = arg;
	meta_txn_rows_free(x->rows, x->n); /* a rerun starts afresh */
	x->rows = NULL;
	x->n = x->cap = 0;
	PGresult *r;
	struct pg_params one, *p1 = NULL;
	if (x->id) {
		txn_params(&one, x->id, 0);
		p1 = &one;
	}
	int rc = pg_run(c, x->id ? ST_TXN_LIST_ONE : ST_TXN_LIST, p1, &r, "listing transactions");
	for (int i = 0; !rc && i < PQntuples(r); i++) {
		const char *id = PQgetvalue(r, i, 0);
		if (x->want && !x->want(x->arg, id))
			continue;
		struct txn_record rec = {
			.producer_id = v_i64(r, i, 1),
			.last_producer_id = v_i64(r, i, 2),
			.producer_epoch = (int16_t)v_i64(r, i, 3),
			.last_producer_epoch = (int16_t)v_i64(r, i, 4),
			.timeout_ms = (int32_t)v_i64(r, i, 5),
			.state = (enum txn_state)v_i64(r, i, 6),
			.txn_seq = v_i64(r, i, 7),
			.start_ms = v_i64(r, i, 8),
			.update_ms = v_i64(r, i, 9),
		};
		rc = meta_txn_row_push(&x->rows, &x->n, &x->cap, id, &rec, v_i64(r, i, 11),
				       v_i64(r, i, 10));
	}
	PQclear(r);
	if (rc)
		return rc;
	rc = pg_run(c, x->id ? ST_TXN_PART_LIST_ONE : ST_TXN_PART_LIST, p1, &r,
		    "listing transactions' partitions");
	for (int i = 0; !rc && i < PQntuples(r); i++) {
		struct meta_txn_row *row = meta_txn_row_find(x->rows, x->n, PQgetvalue(r, i, 0));
		if (row)
			rc = meta_txn_row_add_partition(row, v_i64(r, i, 1), (int32_t)v_i64(r, i, 2));
	}
	PQclear(r);
	if (rc)
		return rc;
	rc = pg_run(c, x->id ? ST_TXN_GROUP_LIST_ONE : ST_TXN_GROUP_LIST, p1, &r,
		    "listing transactions' groups");
	for (int i = 0; !rc && i < PQntuples(r); i++) {
		struct meta_txn_row *row = meta_txn_row_find(x->rows, x->n, PQgetvalue(r, i, 0));
		if (row)
			rc = meta_txn_row_add_group(row, PQgetvalue(r, i, 1));
	}
	PQclear(r);
	return rc;
}

/* The three tables from one snapshot (TXN_READ). */
static int pg_txn_load(struct meta *m, const char *id, meta_txn_want_fn *want, void *arg,
		       struct meta_txn_row **out, size_t *n)
{
	if (id && meta_txn_record_check(id, NULL))
		return SL_EINVAL;
	struct txn_load_txn x = { id, want, arg, NULL, 0, 0 };
	int rc = pg_txn(offsets_of(m, id), TXN_READ, txn_load_body, &x);
	if (rc) {
		meta_txn_rows_free(x.rows, x.n);
		return rc;
	}
	*out = x.rows;
	*n = x.n;
	return 0;
}

static int pg_txn_open_list(struct meta *m, struct meta_txn_row **out, size_t *n)
{
	PGresult *r;
	int rc = pg_call(offsets_of(m, NULL), ST_TXN_OPEN_LIST, NULL, &r,
			 "listing open transactions");
	if (rc)
		return rc;
	struct meta_txn_row *rows = NULL;
	size_t count = 0, cap = 0;
	for (int i = 0; !rc && i < PQntuples(r); i++) {
		struct txn_record rec = { .state = (enum txn_state)v_i64(r, i, 1) };
		rc = meta_txn_row_push(&rows, &count, &cap, PQgetvalue(r, i, 0), &rec, 0, 0);
	}
	PQclear(r);
	if (rc) {
		meta_txn_rows_free(rows, count);
		return rc;
	}
	*out = rows;
	*n = count;
	return 0;
}

struct txn_offsets_txn {
	const char *id;
	int64_t producer_id;
	int16_t producer_epoch;
	const struct meta_offset_commit *rows;
	size_t n;
};

/* The id's row FOR SHARE: its Prepare* write waits for these rows, so
 * they are either settled with the transaction or refused. */
static int txn_offset_commit_body(struct pg_conn *c, void *arg)
{
	struct txn_offsets_txn *x = arg;
	struct meta_txn_head h;
	int rc = txn_head_read(c, x->id, &h);
	if (rc)
		return rc;
	rc = meta_txn_offsets_verdict(&h, x->producer_id, x->producer_epoch);
	if (rc)
		return rc;
	struct pg_params p;
	txn_params(&p, x->id, 0);
	p_str(&p, x->rows[0].group_id);
	rc = txn_row(c, ST_TXN_GROUP_GET, &p, NULL, "reading a transaction's groups");
	if (rc <= 0)
		return rc < 0 ? rc : SL_EBUSY;
	rc = 0;
	for (size_t i = 0; !rc && i < x->n; i++) {
		const struct meta_offset_commit *o = &x->rows[i];
		txn_params(&p, o->group_id, 3, o->tid, (int64_t)o->partition, x->producer_id);
		p_str(&p, x->id);
		p_i64(&p, o->committed_offset);
		p_i64(&p, o->leader_epoch);
		p_str(&p, o->metadata);
		p_i64(&p, o->commit_timestamp_ms);
		rc = pg_run(c, ST_TXN_OFFSET_UPSERT, &p, NULL, "storing a transactional offset");
	}
	return rc;
}

static int pg_txn_offset_commit(struct meta *m, const char *id, int64_t producer_id,
				int16_t producer_epoch, const struct meta_offset_commit *rows,
				size_t n)
{
	int rc = meta_txn_offsets_check(id, rows, n);
	if (rc)
		return rc;
	struct txn_offsets_txn x = { id, producer_id, producer_epoch, rows, n };
	return pg_txn(offsets_of(m, n ? rows[0].group_id : id), TXN_WRITE, txn_offset_commit_body,
		      &x);
}

struct txn_settle_txn {
	const char *id;
	int64_t txn_seq;
	bool commit;
};

static int txn_settle_body(struct pg_conn *c, void *arg)
{
	struct txn_settle_txn *x = arg;
	struct meta_txn_head h;
	int rc = txn_head_read(c, x->id, &h);
	if (rc || !h.found || h.txn_seq != x->txn_seq ||
	    h.state != (x->commit ? TXN_PREPARE_COMMIT : TXN_PREPARE_ABORT))
		return rc;
	struct pg_params p;
	txn_params(&p, x->id, 0);
	rc = txn_row(c, ST_TXN_PART_LEFT, &p, NULL, "reading a transaction's partitions");
	if (rc == 0)
		rc = txn_settle_groups(c, x->id, x->commit);
	return rc < 0 ? rc : 0;
}

static int pg_txn_settle(struct meta *m, const char *id, int64_t txn_seq, bool commit)
{
	int rc = meta_txn_record_check(id, NULL);
	if (rc)
		return rc;
	struct txn_settle_txn x = { id, txn_seq, commit };
	return pg_txn(offsets_of(m, id), TXN_WRITE, txn_settle_body, &x);
}

/* ---- aborted transactions (the read path) ---- */

static int pg_aborted_txns(struct meta *m, int64_t tid, int32_t partition, int64_t from,
			   int64_t to, struct meta_aborted_txn *out, size_t cap, size_t *n)
{
	*n = 0;
	if (cap == 0 || from >= to)
		return 0;
	struct pg_params p;
	txn_params(&p, NULL, 5, tid, (int64_t)partition, from, to, (int64_t)cap);
	PGresult *r;
	int rc = pg_call(&pg_of(m)->read, ST_ABORTED_RANGE, &p, &r, "reading aborted transactions");
	if (rc)
		return rc;
	for (int i = 0; i < PQntuples(r) && *n < cap; i++)
		out[(*n)++] = (struct meta_aborted_txn){ v_i64(r, i, 0), v_i64(r, i, 1),
							 v_i64(r, i, 2) };
	PQclear(r);
	return 0;
}

static int pg_aborted_txns_since(struct meta *m, int64_t after_seq,
				 struct meta_aborted_feed *out, size_t cap, size_t *n)
{
	*n = 0;
	if (cap == 0)
		return 0;
	struct pg_params p;
	txn_params(&p, NULL, 2, after_seq, (int64_t)cap);
	PGresult *r;
	int rc = pg_call(&pg_of(m)->cluster, ST_ABORTED_SINCE, &p, &r,
			 "reading the aborted transactions feed");
	if (rc)
		return rc;
	for (int i = 0; i < PQntuples(r) && *n < cap; i++)
		out[(*n)++] = (struct meta_aborted_feed){
			.seq = v_i64(r, i, 0),
			.tid = v_i64(r, i, 1),
			.partition = (int32_t)v_i64(r, i, 2),
			.txn = { v_i64(r, i, 3), v_i64(r, i, 4), v_i64(r, i, 5) },
		};
	PQclear(r);
	return 0;
}
