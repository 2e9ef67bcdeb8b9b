/* limits.h — every compiled-in limit of Sluice, with the reason for it.
 *
 * Anything read from the wire or held in memory is bounded by one of these
 * (or by a runtime flag whose default is here). What stays in a .c file is
 * a tuning knob (read sizes, buffer pool classes, chunk sizes of internal
 * batching) or a format constant, each with a comment saying so; a
 * flag's accepted range stays in the flag table (agent/config.c). */
#ifndef SLUICE_LIMITS_H
#define SLUICE_LIMITS_H

/* Largest request frame accepted. Kafka's socket.request.max.bytes
 * default is 100 MiB; a frame above it closes the connection, as Kafka does. */
#define SL_REQUEST_BYTES_MAX (100 * 1024 * 1024)

/* Largest record batch accepted (Kafka's message.max.bytes default,
 * 1 MiB + overhead, rounded up generously so librdkafka's default
 * message.max.bytes of 1,000,000 plus framing always fits). */
#define SL_BATCH_BYTES_MAX (8 * 1024 * 1024)

/* Bytes of request frames a connection may have received but not yet
 * answered (and bytes of responses not yet written); reading pauses
 * above it, so one client cannot pin unbounded memory. */
#define SL_CONN_PENDING_BYTES_MAX (64 * 1024 * 1024)

/* Requests in flight on one connection. librdkafka pipelines many small
 * produce requests (one per partition leader batch); a cap of 64 limited
 * the S3 store at 1,000 partitions to 12.5 MB/s (58.4 MB/s at 1,024,
 * bench notes). Memory is bounded by SL_CONN_PENDING_BYTES_MAX, and the
 * evicted cached objects that unsent fetch responses still point into
 * by SL_FETCH_PINNED_EVICTED_BYTES_MAX for the whole agent. */
#define SL_CONN_INFLIGHT_MAX 1024

/* Produce frames under the read chunk size go to the handler as views
 * of the connection's read buffer (no copy), so a frame keeps the whole
 * buffer alive while the write path or the read cache holds it: bytes of
 * such buffers outside any view, over the agent. Past it, small frames
 * are copied out again (as before views), so a client mixing tiny
 * produce requests with other traffic cannot make a cached batch pin
 * memory without bound. The read cache's default size: at most that
 * much again. */
#define SL_READ_WASTE_BYTES_MAX ((size_t)64 << 20)

/* Partitions whose high watermark, LSO or log start moved, remembered in
 * order (the agent's change journal, 16 bytes each): an incremental
 * fetch reads only those since its session's last fetch, and every
 * partition of it when more moved than this meanwhile. */
#define SL_PARTITION_CHANGES_MAX 65536

/* Open client connections per agent. */
#define SL_CONNECTIONS_MAX 10000
/* Request bytes received and not yet answered, all connections together
 * (default of --queued-request-bytes). */
#define SL_QUEUED_REQUEST_BYTES_MAX ((size_t)256 << 20)
/* A request whose bytes stop arriving for this long closes its connection. */
#define SL_FRAME_STALL_MS 30000

/* A TLS handshake not done this long after the connection was accepted
 * closes it: a client that opens connections and stalls mid-handshake
 * would otherwise hold a descriptor and an SSL object each, forever
 * (Kafka bounds the same wait with connections.max.idle.ms; 10 s is
 * generous for a handshake, which takes two round trips). */
#define SL_TLS_HANDSHAKE_MS 10000

/* At shutdown each connection gets its last responses, a TLS
 * close_notify and a FIN before it closes; one whose peer does not read
 * them (a full socket buffer) is closed this long after the shutdown
 * began, so a stuck client cannot hold the agent's exit. */
#define SL_SHUTDOWN_CLOSE_MS 1000

/* Elements in any one array read from the wire: every element costs at
 * least one byte, so this is also bounded by the frame, but an explicit
 * cap keeps arena allocations small and obvious. */
#define SL_ARRAY_COUNT_MAX (1024 * 1024)

/* Arena bytes one decoded request may use (structs for arrays). */
#define SL_ARENA_BYTES_MAX (64 * 1024 * 1024)

/* Topic name length, as Kafka: 249 characters of [a-zA-Z0-9._-]. */
#define SL_TOPIC_NAME_MAX 249

/* Partitions in one topic; Kafka has no hard cap, but a bound keeps
 * CreateTopics from allocating without limit. */
#define SL_PARTITIONS_PER_TOPIC_MAX 100000

/* Topics per agent, and partitions in total. */
#define SL_TOPICS_MAX 100000
#define SL_PARTITIONS_MAX 1000000

/* Records in one batch: each record takes at least 7 bytes on the wire,
 * so a batch of SL_BATCH_BYTES_MAX holds fewer than this. */
#define SL_BATCH_RECORDS_MAX (SL_BATCH_BYTES_MAX / 7 + 1)
/* record_errors listed in one partition's Produce answer (Kafka lists one
 * per refused record; a batch of keyless records for a compacted topic
 * could otherwise make an answer of ~100 bytes per record). The message
 * still gives the true count. */
#define SL_RECORD_ERRORS_MAX 1000

/* Decompressed size of one batch's records, for validation (a
 * compression bomb stops here with CORRUPT_MESSAGE). */
#define SL_DECOMPRESSED_BYTES_MAX (64 * 1024 * 1024)

/* zstd frames whose window is above 2^this are refused: a frame may not
 * make us allocate a history buffer larger than the largest output we
 * would accept (SL_DECOMPRESSED_BYTES_MAX). */
#define SL_ZSTD_WINDOW_LOG_MAX 26

/* Default of a topic's max.message.bytes (Kafka's message.max.bytes
 * default: 1 MiB plus the 12-byte log overhead): a larger batch gets
 * MESSAGE_TOO_LARGE. Plain digits: the config tables print it. */
#define SL_MESSAGE_BYTES_DEFAULT 1048588

/* Largest object the write path seals; --flush-bytes may not exceed it. */
#define SL_OBJECT_BYTES_MAX (256 * 1024 * 1024)

/* Default of --write-buffer-bytes: bytes of produce batches held (open
 * object plus objects being written and committed). Above half of it the listener stops reading requests
 * until flushes drain (backpressure); appends beyond it are refused. A few
 * objects' worth keeps the store busy; more only adds latency and RSS. */
#define SL_WRITE_BUFFERED_BYTES_MAX (128 * 1024 * 1024)

/* Batches (index entries) in one object. */
#define SL_OBJECT_BATCHES_MAX (1024 * 1024)
/* Pieces of one gathered put (objstore_putv): an object's batches, its
 * header and its footer (the file store writes them IOV_MAX at a time). */
#define SL_OBJECT_IOV_MAX (SL_OBJECT_BATCHES_MAX + 2)
/* Batch rows one merge run rewrites, at most (storage/merge_plan.h): bounds
 * the job's row arrays (~450 bytes a row: the rows kept across pages
 * while the run is planned, then its footer and swap rows) whatever
 * --merge-target-bytes says. */
#define SL_MERGE_RUN_ROWS_MAX 100000
/* --merge-swap-rows' default: batch rows per metadata transaction of a
 * merged object's swap (storage/merge.h). Each holds the metadata store's
 * write lock (SQLite: the whole store; PostgreSQL: the partition's row),
 * which produce commits wait for, ~3-8 us a row: 7,900 rows of a
 * partition fed 1 KiB batches in one transaction held it 50-80 ms; 512
 * hold it a few ms (bench/RESULTS.md, "Produce p99 during a merge:
 * bounded swaps" and "... chunked swaps"). */
#define SL_MERGE_SWAP_ROWS 512
/* The compacted-topic cleaner (storage/clean.h): batch bytes one chunk
 * of a pass reads into memory at most (Kafka reads its segments as it
 * goes; a chunk here holds its input, output and the new object, so ~3x
 * this), and the offset map's bytes (whole keys and their slots; Kafka's
 * log.cleaner.dedupe.buffer.size). A partition longer than the first is
 * cleaned in chunks, each swapped in offset order. A pass plans over
 * the partition's rows, at most the third (40 bytes each). */
#define SL_COMPACT_PASS_BYTES (128 * 1024 * 1024)
#define SL_COMPACT_MAP_BYTES (64 * 1024 * 1024)
#define SL_COMPACT_PLAN_ROWS_MAX 1000000

/* Config entries per resource in one request. */
#define SL_CONFIGS_MAX 1000

/* (topic, partition, producer id) entries of idempotent producer state
 * kept (agent/producers.c). It is a cache in front of the commit's check
 * against the metadata store, so past this it starts over rather than
 * grow without bound. */
#define SL_PRODUCERS_ENTRIES_MAX 200000

/* An idempotent producer's state in a partition (producer_state) that no
 * commit wrote for this long is dropped by the retention sweep: Kafka's
 * producer.id.expiration.ms default (1 day), so the table does not grow
 * with every producer id ever used. */
#define SL_PRODUCER_EXPIRATION_MS (24 * 3600 * 1000LL)
/* DescribeProducers: at most this many producers answered per partition
 * and per request (about 36 bytes each on the wire); past them a
 * partition's list is cut short (lowest producer ids first). Kafka answers
 * every one; a partition rarely has more than a few hundred. */
#define SL_DESCRIBE_PRODUCERS_PARTITION_MAX 10000
#define SL_DESCRIBE_PRODUCERS_MAX 100000

/* Longest long-poll: Kafka clients send max_wait_ms of up to 500 ms by
 * default; anything larger is capped so a request cannot hang for days. */
#define SL_FETCH_WAIT_MS_MAX (5 * 60 * 1000)

/* Incremental fetch sessions (KIP-227, api/fetch_session.c): as many as
 * Kafka's max.incremental.fetch.session.cache.slots (1,000), evictable by
 * others once idle for Kafka's min.incremental.fetch.session.eviction.ms
 * (2 min); and, which Kafka does not bound, 500,000 partitions in all
 * (about 40 bytes each with the index: ~20 MiB), so 1,000 sessions of
 * huge requests cannot take the agent's memory. */
#define SL_FETCH_SESSIONS_MAX 1000
#define SL_FETCH_SESSION_EVICTION_MS (120 * 1000)
#define SL_FETCH_SESSION_PARTITIONS_MAX 500000
/* One session's partitions: an incremental fetch of a tiny request reads
 * every partition of its session, with ~170 bytes of its request arena
 * (SL_ARENA_BYTES_MAX) per partition; 100,000 keep it under a third. A
 * larger consumer gets no session (answered in full, as without). */
#define SL_FETCH_SESSION_PARTITIONS_EACH_MAX 100000

/* Large buffers the loop thread keeps for reuse (base/buf.h's pool:
 * request frames, fetch responses, sealed objects), so produce and
 * catch-up do not page-fault fresh mappings; beyond it they are freed. */
#define SL_BUFFER_POOL_BYTES (64 * 1024 * 1024)

/* ---- the read path (src/storage/reader.c, src/api/fetch.c) ---- */

/* Largest fetch response built, whatever max_bytes says. Clients ask for
 * up to 50 MiB; answering with less only means another fetch, while
 * buffers of that size are page-faulted afresh every time (measured:
 * catch-up reads spent a third of the agent's CPU faulting 32-64 MiB
 * response buffers). 8 MiB responses fit the loop's buffer pool. */
#define SL_FETCH_RESPONSE_BYTES_MAX (8 * 1024 * 1024)

/* Bytes of evicted cached objects that unsent fetch responses may keep
 * alive, for the whole agent. An evicted buffer lives on while pieces of
 * unsent responses point into it, outside --cache-bytes (a 1 KiB piece may
 * hold an 8 MiB object): past this, runs from buffers not pinned yet are
 * copied instead (cache_obj_pin), so clients that stop reading cannot keep
 * memory without bound. */
#define SL_FETCH_PINNED_EVICTED_BYTES_MAX ((size_t)64 * 1024 * 1024)

/* The batch index (storage/batch_index.c): recent batch rows kept in
 * memory per partition, so a fetch of fresh data looks nothing up in the
 * metadata store (with PostgreSQL, a network round trip). Rows per run
 * (a partition has its tail and a run behind it for a consumer catching
 * up): a partition committed to every few milliseconds keeps seconds of
 * rows, more than a tailing consumer lags (about 56 bytes a row: 56 KiB
 * a run). In all: the rows and keys of several hundred such partitions;
 * colder ones are dropped and looked up in the store again (off the
 * loop) when fetched. */
#define SL_BATCH_INDEX_PARTITION_ROWS_MAX 1024
#define SL_BATCH_INDEX_BYTES_MAX ((size_t)64 * 1024 * 1024)

/* The aborted-transaction index (txn/aborted_index.c): per partition,
 * the aborted transactions read_committed fetches list, for a range of
 * offsets (24 bytes an entry). A partition with no aborted transaction
 * costs about 64 bytes; one with many keeps the newest entries, more
 * than a consumer reading near the end needs; what is dropped is looked
 * up in the store again. */
#define SL_ABORTED_INDEX_PARTITION_MAX 4096
#define SL_ABORTED_INDEX_BYTES_MAX ((size_t)16 * 1024 * 1024)

/* ---- consumer groups (src/group, src/api/groups.c) ---- */

/* Groups one agent coordinates; a join that would create one more gets
 * COORDINATOR_NOT_AVAILABLE (Kafka has no cap; memory needs one). */
#define SL_GROUPS_MAX 100000

/* Members of one group (Kafka's group.max.size defaults to unbounded;
 * consumer groups beyond a few thousand members are not realistic). The
 * configured group_max_size may lower it. */
#define SL_GROUP_MEMBERS_MAX 5000

/* Protocols one member may offer (a consumer offers one per assignor). */
#define SL_GROUP_PROTOCOLS_MAX 32

/* Bytes of one member's protocol metadata, all protocols together; a
 * consumer's subscription plus owned partitions is a few KiB even for
 * thousands of partitions. Above it JoinGroup gets INVALID_REQUEST. */
#define SL_GROUP_MEMBER_METADATA_BYTES_MAX (1024 * 1024)

/* Bytes of protocol metadata all members of one group hold together: the
 * leader's JoinGroup response carries the selected protocol's share of it,
 * so without a bound one group of 5000 members could pin GiBs and send a
 * response larger than clients accept. A join beyond it gets
 * GROUP_MAX_SIZE_REACHED. */
#define SL_GROUP_METADATA_BYTES_MAX (32 * 1024 * 1024)

/* Bytes of protocol metadata all groups of one agent hold together: the
 * per-group bound times SL_GROUPS_MAX would still be terabytes. 256 MiB is
 * a million members at a typical 256 bytes each. A join beyond it gets
 * GROUP_MAX_SIZE_REACHED. */
#define SL_GROUPS_METADATA_BYTES_MAX (256 * 1024 * 1024)

/* Largest JoinGroup answer the coordinator builds for a leader (member
 * ids, instance ids, metadata): the group's metadata budget plus ids of
 * SL_GROUP_MEMBERS_MAX members with room to spare; checked before the
 * answer is built, so a bug elsewhere cannot make a huge one. */
#define SL_GROUP_JOIN_RESPONSE_BYTES_MAX (SL_GROUP_METADATA_BYTES_MAX + 16 * 1024 * 1024)

/* Bytes of one member's assignment in SyncGroup (INVALID_REQUEST above). */
#define SL_GROUP_ASSIGNMENT_BYTES_MAX (1024 * 1024)

/* Group ids, instance ids, protocol names and types: Kafka bounds them
 * only by the int16 string length; these keep member records small. */
#define SL_GROUP_ID_BYTES_MAX 1024
#define SL_GROUP_NAME_BYTES_MAX 255

/* Client ids kept per member (longer ones are cut for DescribeGroups and
 * member ids; Kafka keeps them whole). */
#define SL_GROUP_CLIENT_ID_BYTES_MAX 255

/* Kafka's NewMemberJoinTimeoutMs: a new member's pending JoinGroup is
 * given up after this long (the client retries if it is still there), so
 * a join that never completes does not hold its member forever. */
#define SL_GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS (5 * 60 * 1000)

/* An in-memory Empty group with no committed offsets is forgotten after
 * this long, its stored membership deleted (Kafka drops such a group at
 * its next offsets cleanup, with a tombstone for its GroupMetadata
 * record), so groups that only ever joined do not accumulate. */
#define SL_GROUP_EMPTY_FORGET_MS (10 * 60 * 1000)

/* Offset rows in one store transaction (more wait for the next one), so
 * one transaction's write lock and memory stay bounded. */
#define SL_GROUP_COMMIT_BATCH_ROWS 100000
/* Cluster mode: a group coordinated here without members and without a
 * request for this long gives its lease up (renewing every group ever
 * seen would grow without bound); the next request takes it again. */
#define SL_GROUP_LEASE_IDLE_MS (60 * 1000)
/* Cluster mode: how long a group request waits, parked, for its group's
 * lease and load on a new coordinator before it is answered
 * COORDINATOR_LOAD_IN_PROGRESS (as a Kafka broker holds requests while
 * it loads a group): beyond the lease's expiry (SL_LEASE_MS) and a sync,
 * within clients' request timeouts (30 s and more). */
#define SL_GROUP_LOAD_WAIT_MS 8000

/* ---- cluster placement (src/cluster) ---- */

/* Live agents in one placement view. Metadata lists every one as a broker
 * and a client connects to each leader it is given; a PostgreSQL primary
 * serves far fewer committing agents than this (issue 12's capacity
 * model), and per-request candidate lists are sized by it. */
#define SL_CLUSTER_AGENTS_MAX 1024
/* Broker ids in one topic's manual replica assignment (CreateTopics,
 * CreatePartitions): partitions times replication factor. Every agent
 * keeps them in its catalog (4 MiB at most per topic); Kafka sets no
 * bound, but a replication factor past the cluster size is refused
 * anyway, so only huge partition counts meet it. */
#define SL_REPLICA_ASSIGNMENT_IDS_MAX (1 << 20)

/* The agent registry (agent/registry.c). An agent heartbeats every
 * second; a row whose heartbeat is older than the lease is a dead agent's
 * and the next heartbeat of any agent removes it. Three missed beats, so
 * a PostgreSQL hiccup or a loaded pool does not drop a live agent; and
 * a killed one leaves Metadata within lease + one heartbeat + one poll
 * (3 + 1 + 0.25 s), under issue 12's 5 s. */
#define SL_CLUSTER_HEARTBEAT_INTERVAL_MS 1000
#define SL_CLUSTER_LEASE_MS 3000
/* An agent's start keeps trying to register while the store fails to
 * answer (restarting, or too slow for a call's deadline) for this long,
 * then exits. */
#define SL_CLUSTER_REGISTER_RETRY_MS 30000
/* How often an agent on a shared store reads what other agents changed
 * (catalog version, every partition's high watermark and log start)
 * while it gets no change notifications (LISTEN/NOTIFY: not yet
 * listening, or the connection broke): topics appear everywhere within
 * 1 s, and a long-polling fetch on one agent sees another's commit
 * within this plus a round trip. */
#define SL_CLUSTER_POLL_INTERVAL_MS 250
/* Leases (cluster/lease.c): a group's coordinator and each background
 * job hold one. Renewed every second, lasting three: as the registry's
 * lease, a PostgreSQL hiccup does not move every group, and a dead
 * holder's leases are free when its registry row goes (~4 s), well
 * within a consumer's session timeout (45 s by default) for a takeover.
 * Every wanted lease is renewed in one transaction per second (a few
 * round trips each), so the count is bounded. */
#define SL_LEASE_RENEW_INTERVAL_MS 1000
#define SL_LEASE_MS 3000
#define SL_LEASES_MAX 10000
/* With notifications (a commit wakes a long poll at once, a catalog
 * change starts a poll at once), the poll is the fallback for a lost
 * notice and carries log starts that other agents' trims moved. */
#define SL_CLUSTER_POLL_FALLBACK_MS 1000
/* Reconnecting the listening connection: from the poll interval,
 * doubling up to this. */
#define SL_CLUSTER_LISTEN_RETRY_MAX_MS 2000

/* PostgreSQL sessions (meta/postgres.c). A server that stops answering
 * (a half-open connection, a stopped backend, host or postmaster) must
 * not stall an agent's commits, heartbeats or lease renewals for ever:
 * every call is bounded by a deadline, after which the connection is
 * closed, the call fails (a produce: retriable) and the next call
 * reconnects. A heartbeat or a lease sync (the cluster and leases
 * connections) is bounded as a whole, however many round trips it
 * takes: it is given up SL_META_PG_RENEW_MARGIN_MS before what the last
 * successful one renewed ends (a lease after its start), so a call stuck
 * on one backend leaves the margin for the next, on a fresh connection,
 * to renew in time; a call with nothing to keep (the first, or one
 * after the lease ran out) gets SL_META_PG_CLUSTER_TIMEOUT_MS, what a
 * renewal started one interval after the last has. Their server-side
 * statement_timeout is a lease: no statement of theirs is any use
 * later, and a slow server is not cut off before the agent gives up.
 * The data connections' (commits, offset writes, reads, topic changes)
 * bound, per round trip, sits far above a commit's p99 and well below
 * clients' request timeouts (30 s); the server's statement_timeout is
 * set to the same bound, so a statement the agent gave up on (waiting
 * for a lock) does not run on. Bulk work (retention, gc, the start's
 * catalog read, the registry's first catalog poll) gets more;
 * migrations none. The catalog poll has a connection of its own: the
 * data bound for the whole poll, bulk for a full one. */
#define SL_META_PG_RENEW_MARGIN_MS 500
#define SL_META_PG_CLUSTER_TIMEOUT_MS (SL_LEASE_MS - SL_LEASE_RENEW_INTERVAL_MS - SL_META_PG_RENEW_MARGIN_MS)
#define SL_META_PG_CLUSTER_STATEMENT_MS SL_LEASE_MS
#define SL_META_PG_DATA_TIMEOUT_MS 10000
#define SL_META_PG_BULK_TIMEOUT_MS 60000
/* The server ends a transaction whose client sent nothing for this long
 * (idle_in_transaction_session_timeout): an agent stopped or cut off
 * mid-transaction otherwise holds row locks that every other agent's
 * commits to those partitions wait for. This file's transactions never
 * wait for anything but the server between their statements. */
#define SL_META_PG_IDLE_IN_TXN_MS 5000
/* TCP keepalives, both ends (libpq's keepalives_*, the server's
 * tcp_keepalives_*): an idle connection (the listening one) to a host
 * that vanished is found dead within idle + interval * count seconds;
 * tcp_user_timeout closes one whose sent data stays unacknowledged. */
#define SL_META_PG_KEEPALIVE_IDLE_S 5
#define SL_META_PG_KEEPALIVE_INTERVAL_S 2
#define SL_META_PG_KEEPALIVE_COUNT 3
#define SL_META_PG_TCP_USER_TIMEOUT_MS 10000

/* Bytes of a zone name (--zone, sluice_az= in client.id). Cloud zone
 * names and ids are short ("us-east-1a", "use1-az1", "europe-west4-b");
 * a longer value in a client.id is taken as no zone, never truncated
 * (a truncated name could match another zone). */
#define SL_ZONE_BYTES_MAX 64

/* Listeners of one agent (--listen entries), which are also its endpoints
 * in the placement view: one per security protocol and interface is the
 * use (Kafka deployments name two to four). Every agent's view entry
 * holds this many endpoints of ~290 bytes, so a full view of
 * SL_CLUSTER_AGENTS_MAX agents stays near 2.4 MB. */
#define SL_LISTENERS_MAX 8

/* Bytes of a listener name as the placement view carries it ("PLAINTEXT",
 * "SSL", "SASL_PLAINTEXT"; Kafka's custom names are as short). */
#define SL_LISTENER_NAME_BYTES_MAX 32

/* ---- object store, garbage collection, tools ---- */

/* Object key length in the file store: keys are short
 * ("objects/<ms>-<nonce>-<counter>.obj"); this keeps them, with the
 * root, well below PATH_MAX. */
#define SL_OBJECT_KEY_BYTES_MAX 1024

/* Objects per garbage collection page: one metadata transaction and one
 * store request (S3's DeleteObjects takes at most 1000 keys). */
#define SL_GC_PAGE_OBJECTS 1000

/* Deleted topics whose leftover batch rows (a delete that failed or died
 * half-way) one collection pass purges before its dead objects; the rest
 * wait for the next pass, so a pass stays bounded. */
#define SL_GC_PURGES_PER_PASS 16

/* Orphans `sluice gc` keeps in memory per run (the rest wait for the next
 * run). */
#define SL_GC_ORPHANS_MAX 100000

/* S3 (src/objstore/s3*.c). ListObjectsV2 returns at most 1000 keys a
 * page; accept a little more from odd servers but never an unbounded
 * array. */
#define SL_S3_LIST_ENTRIES_MAX 10000
/* A list page of 1000 keys is ~300 KiB of XML; error bodies are small. */
#define SL_S3_RESPONSE_BYTES_MAX (16 * 1024 * 1024)
/* Asynchronous calls (curl multi on the event loop): requests in flight
 * at once, which is also the size of the connection cache. 16 parallel
 * connections saturate a 10 Gb/s link to S3 with 8 MiB objects while
 * keeping a bounded number of sockets; the rest wait in FIFO order. */
#define SL_S3_ASYNC_ACTIVE_MAX 16
/* Calls waiting for a slot; beyond this a start fails with SL_EBUSY
 * (callers bound themselves long before: uploads in flight, fetches). */
#define SL_S3_ASYNC_QUEUED_MAX 100000

/* SASL (net/sasl.c, api/sasl.c). Before a connection of a SASL listener
 * has authenticated, a frame above SL_SASL_RECEIVE_BYTES_MAX closes it:
 * anyone who can reach the port could otherwise make the agent buffer
 * 100 MiB per connection (Kafka's sasl.server.max.receive.size, 512 KiB).
 * A user name, as RFC 4616 requires a server to accept, up to 255 bytes;
 * a password the same (RFC 4616's passwd), longer ones are refused. A
 * SCRAM salt up to 128 bytes (clients send 16-64). SCRAM iterations within
 * Kafka's bounds for both mechanisms: 4,096 (RFC 7677's minimum) to
 * 16,384. A SCRAM exchange's client nonce up to 256 bytes (clients send
 * 16-48). */
#define SL_SASL_RECEIVE_BYTES_MAX (512 * 1024)
/* A connection of a SASL listener not logged in this long after it was
 * accepted closes: as a stalled TLS handshake, a client that connects and
 * never logs in would hold a descriptor and its exchange's state forever
 * (Kafka bounds it with connections.max.idle.ms). A login is a few round
 * trips and the client's PBKDF2 (16,384 iterations: tens of ms). */
#define SL_SASL_LOGIN_MS 30000
#define SL_SASL_USER_BYTES_MAX 255
#define SL_SASL_PASSWORD_BYTES_MAX 1024
#define SL_SCRAM_SALT_BYTES_MAX 128
#define SL_SCRAM_ITERATIONS_MIN 4096
#define SL_SCRAM_ITERATIONS_MAX 16384
#define SL_SCRAM_NONCE_BYTES_MAX 256
/* Failed authentications logged per second (the rest are counted and
 * summed up in the next line): a client hammering wrong passwords must not
 * flood the log. */
#define SL_SASL_FAIL_LOGS_PER_SECOND 5

/* ---- transactions (src/txn) ---- */

/* Transactional ids one agent coordinates in memory; an InitProducerId
 * that would add one more gets COORDINATOR_NOT_AVAILABLE (Kafka has no
 * cap; memory needs one). */
#define SL_TXN_IDS_MAX 100000
/* Partitions in one transaction, groups (AddOffsetsToTxn) in one, and
 * partitions with pending TxnOffsetCommit offsets in one: far above what
 * a stream processor's transaction touches; a request that would go past
 * one gets INVALID_REQUEST (Kafka has no limit, and no code for one). */
#define SL_TXN_PARTITIONS_MAX 10000
#define SL_TXN_GROUPS_MAX 64
#define SL_TXN_OFFSETS_MAX 10000
/* Transactional ids: Kafka bounds them only by the int16 string length. */
#define SL_TXN_ID_BYTES_MAX 1024

/* Largest response frame the tools (`sluice groups`, `topics`, `configs`)
 * accept from a broker. */
#define SL_TOOL_RESPONSE_BYTES_MAX (64 * 1024 * 1024)

/* The metrics HTTP server (--metrics-listen, metrics/http.c). A scrape
 * or a probe is a few hundred bytes of head: 8 KiB is what common
 * servers allow by default. Connections are Prometheus and a probe or
 * two: a handful, bounded so a client cannot pile them up. A connection
 * that sends no complete request for 10 s (or idles as long between
 * keep-alive requests) is closed. */
#define SL_METRICS_HTTP_HEAD_BYTES_MAX 8192
#define SL_METRICS_HTTP_HEADERS_MAX 64
#define SL_METRICS_HTTP_TARGET_BYTES_MAX 1024
#define SL_METRICS_HTTP_CONNECTIONS_MAX 32
#define SL_METRICS_HTTP_TIMEOUT_MS 10000
/* After an answer that closes the connection, how long what the client
 * still sends is read and dropped before the close (a close with unread
 * bytes is a reset, which can destroy the answer in flight). */
#define SL_METRICS_HTTP_LINGER_MS 1000
/* Committed-offset lag series one scrape renders (group x partition) and
 * groups it reads offsets of (one [loop] read each): a scrape stays
 * bounded on a broker with many groups; the rest are left out and
 * sluice_group_lag_series_dropped says how many. */
#define SL_METRICS_LAG_SERIES_MAX 10000
#define SL_METRICS_LAG_GROUPS_MAX 1000

/* ACLs (auth/authorizer.c, the metadata store's acls table). Every agent
 * holds all of them in memory and a check scans them, so their number is
 * bounded (Kafka's largest deployments keep a few thousand). A
 * principal, host or resource name longer than these is refused
 * INVALID_REQUEST (topic names stop at 249; a group id or transactional
 * id of more than 1,000 bytes is not a name anyone types). */
#define SL_ACLS_MAX 10000
#define SL_ACL_NAME_BYTES_MAX 1000
#define SL_ACL_PRINCIPAL_BYTES_MAX 512
#define SL_ACL_HOST_BYTES_MAX 256
/* How often every agent polls the ACLs' version (a change counts on every
 * agent within this plus a read: the issue asks for 1 s). */
#define SL_ACL_POLL_INTERVAL_MS 250
/* Bindings or filters in one CreateAcls or DeleteAcls request. */
#define SL_ACL_REQUEST_ITEMS_MAX 1000

#endif
