/* agent.h — one Sluice agent: its configuration, its stores, the write
 * path, the read cache, the read path, and the in-memory catalog of topics and
 * partitions (a cache of the metadata store, rebuilt at start).
 *
 * Loop thread only. */
#ifndef SLUICE_AGENT_H
#define SLUICE_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "agent/config.h"
#include "agent/producers.h"
#include "base/buf.h"
#include "base/strmap.h"
#include "base/workq.h"
#include "cluster/placement.h"
#include "meta/meta.h"
#include "metrics/metrics.h"
#include "net/server.h"
#include "objstore/objstore.h"
#include "storage/writer.h"

/* How often the agent logs what its write path did. */
#define AGENT_STATS_INTERVAL_MS 10000

struct writer;
struct cache;
struct reader;
struct server;
struct objstore;
struct fetch_wait;
struct group_svc;
struct txn_svc;
struct txn_owner;
struct txn_effect;
struct retention;
struct maint;
struct collect;
struct merger;
struct cleaner;
struct registry;
struct metrics_http;
struct aborted_index;
struct aborted_txn;
struct txn_tp;

struct partition_state {
	int64_t log_start_offset;
	int64_t high_watermark;  /* next offset to be assigned */
	/* The last stable offset (issue 14): read_committed fetches and
	 * ListOffsets READ_COMMITTED see only offsets below it. The first
	 * offset of the partition's earliest open transaction, or the high
	 * watermark when none is open; log start <= LSO <= high watermark,
	 * and it only rises (partition_raise_stable): a transaction opens at
	 * an offset >= the high watermark >= the LSO. */
	int64_t last_stable_offset;
	/* The cleaner's checkpoint (partitions.clean_offset) as the agent
	 * last saw it (agent/compaction.c): a change it did not make is
	 * another process's pass (`sluice compact`), whose rows replace
	 * those in the batch index. */
	int64_t clean_offset;
	/* The high watermark at which the cleaner's planning found nothing
	 * past the checkpoint but the tail row (clean_stats.idle; 0: not
	 * so): until the partition grows no pass can have work, whatever
	 * the time or the configs, and the planning skips it. */
	int64_t clean_idle_hwm;
};

/* Raise the LSO to what a source that knows the partition's open
 * transactions says as of a high watermark this agent has reached (the
 * one it applied with it, or an older one): the first unstable offset
 * first_unstable (-1: no open transaction, the LSO is the high
 * watermark), or the store's last stable offset then (the same bound:
 * the first unstable offset, or that high watermark when none is open).
 * A source's LSO as of a later point than the agent has applied may lie
 * past an ABORT marker the agent has not seen, whose transaction its
 * read_committed fetches would then serve unlisted: commits report the
 * LSO per batch for that reason (meta_commit_batch). Never above the
 * high watermark, never below the log start, never down (a source that
 * is behind says less). True when it moved. */
static inline bool partition_raise_stable(struct partition_state *ps, int64_t first_unstable)
{
	int64_t lso = ps->high_watermark;
	if (first_unstable >= 0 && first_unstable < lso)
		lso = first_unstable;
	if (lso < ps->log_start_offset)
		lso = ps->log_start_offset;
	if (lso <= ps->last_stable_offset)
		return false;
	ps->last_stable_offset = lso;
	return true;
}

/* Raise the log start to what the metadata store now has (retention,
 * DeleteRecords); true when it moved. Never past the high watermark the
 * agent serves: a commit the store made before the trim may not have
 * reached the agent yet (its answer is queued behind the trim's), and the
 * next trim brings the rest. The LSO rises with it (as Kafka's does: an
 * open transaction's records below the log start are gone). */
static inline bool partition_raise_log_start(struct partition_state *ps, int64_t start)
{
	if (start > ps->high_watermark)
		start = ps->high_watermark;
	if (start <= ps->log_start_offset)
		return false;
	ps->log_start_offset = start;
	if (ps->last_stable_offset < start)
		ps->last_stable_offset = start;
	return true;
}

struct partition_change {
	int64_t tid;
	int32_t partition;
};

struct topic_state {
	int64_t tid;
	char name[META_TOPIC_NAME_BYTES];
	uint8_t uuid[16];
	int32_t partition_count;
	struct partition_state *parts;
	struct meta_config *configs; /* overrides set on the topic */
	int32_t config_count;
	/* The manual replica assignment (issue 16; meta_topic's replicas):
	 * NULL, or partition_count * replication ids, -1 first for a
	 * partition without one. Only reported (Metadata). */
	int32_t *replicas;
	int16_t replication;
	struct metrics_topic metrics; /* bytes and records in and out */
	bool deleting; /* a DeleteTopics is removing it from the store: it
			  stays served until that is done (then it is freed,
			  on the loop), and a second delete finds it gone */
};

/* Metadata work that may block (an fsync, a long delete) runs off the
 * loop: run on a libuv pool thread, then done on the loop. run makes the
 * metadata calls only: it must not touch the catalog, a topic_state or
 * anything else of the loop's (copy what it needs into the job first);
 * done applies the result to the catalog and answers. Jobs run one at a
 * time, in the order submitted, each one's done before the next one's
 * run: the store then takes the changes in the order the catalog applies
 * them, so a check made on the loop at submission (a name not in the
 * catalog, a topic marked deleting) can only be overtaken by jobs that
 * the store orders before this one. The job's memory is the caller's (a
 * request's arena, which lives until the answer). A drain waits until
 * every job is done. */
struct agent_job {
	struct workq_job wq; /* first: the agent's queue (base/workq.h) */
	struct agent *a;
	void (*run)(struct agent_job *job);
	void (*done)(struct agent_job *job);
};

struct agent {
	uv_loop_t *loop;
	struct config cfg;
	const struct agent_hooks *hooks;
	struct meta *meta;
	struct objstore *store;
	struct writer *writer;
	struct cache *cache;
	struct pretouch *pretouch;    /* the frame pool's blocks being written at start */
	struct reader *reader;        /* the read path (storage/reader.c) */
	struct batch_index *index;    /* recent batch rows per partition (storage/batch_index.c) */
	struct aborted_index *aborted; /* aborted transactions per partition (txn/aborted_index.c) */
	struct server *server;
	struct strmap topics;         /* name -> topic_state (owns them) */
	struct strmap topics_by_tid;  /* decimal tid -> topic_state */
	struct strmap topics_by_uuid; /* hex UUID -> topic_state */
	struct fetch_wait *waiters;   /* long-polling fetches */
	/* The change journal: the last SL_PARTITION_CHANGES_MAX partitions
	 * whose high watermark, LSO or log start moved (agent_partition_changed),
	 * change number changes_seq - 1 at [(changes_seq - 1) % max]. */
	struct partition_change *changes;
	uint64_t changes_seq;         /* changes ever journaled */
	struct fetch_sessions *fetch_sessions; /* KIP-227 (api/fetch_session.c; the api layer's) */
	struct producers producers;   /* idempotent producers' sequences */
	struct group_svc *groups;     /* consumer group service (group/service.c) */
	/* The transaction service (txn/service.c, agent/txn_coord.c), and
	 * in cluster mode the ids whose leases this agent holds or wants. */
	struct txn_svc *txns;
	struct txn_owner *txn_owner;
	bool txn_pid_refilling;       /* a producer id block is being taken for it */
	struct maint *maint;          /* the maintenance queue (agent/maintenance.c) */
	struct retention *retention;  /* the retention sweep (agent/retention.c) */
	struct collect *collect;      /* dead-object collection (agent/collect.c) */
	struct merger *merger;        /* the merge job (agent/merge.c) */
	struct cleaner *cleaner;      /* compacted topics' cleaner (agent/compaction.c) */
	struct registry *registry;    /* the agent registry (agent/registry.c) */
	struct lease_set *leases;     /* group and job leases (cluster/lease.c) */
	struct metrics_http *metrics_http; /* --metrics-listen (metrics/exposition.c) */
	struct acl_cache *acls;       /* the ACLs and the authorizer (agent/acls.c) */
	/* The live agents Metadata lists and places leaders and
	 * coordinators on (cluster/placement.h). Until the agent registry
	 * feeds it (placement_set, on the loop, with the registry's
	 * cluster-wide epoch, from 1 on), the agent alone at epoch 0: the
	 * leader epoch Metadata, ListOffsets and fetched batches have
	 * always carried here. */
	struct placement placement;
	uv_signal_t sigint, sigterm;
	uv_signal_t sighup;        /* reloads the TLS certificate and key */
	bool serving;              /* started: the signals and stats timer are initialized */
	uv_timer_t stats_timer;
	struct writer_stats stats_last;
	struct objstore_stats store_stats_last;
	bool draining;
	struct workq jobs;            /* agent_jobs, one at a time */
	uint64_t jobs_done;           /* agent_jobs done since start */
	int exit_code;
	int64_t producer_id_next, producer_id_end; /* the block taken from meta */
};

/* What the layer that serves requests (src/api) does at the agent's
 * events. The agent never calls into that layer except through these, so
 * the dependency runs one way (api -> agent); main.c wires them. */
struct agent_hooks {
	server_handle_fn handle;            /* every request, on the loop */
	/* A commit made records visible (high watermarks moved). */
	void (*committed)(struct agent *a);
	/* The drain is done (everything held is committed): answer every
	 * request still waiting, before the server closes. */
	void (*drained)(struct agent *a);
	/* agent_free is freeing the agent: free what the layer keeps in it. */
	void (*freeing)(struct agent *a);
};

/* Open the stores, load the catalog, start listening; hooks (kept by
 * pointer: static storage) are called from then on. Returns 0 or a
 * negative code after logging why. */
int agent_start(struct agent *a, uv_loop_t *loop, const struct config *cfg,
		const struct agent_hooks *hooks);
/* Free everything after the loop has stopped. */
void agent_free(struct agent *a);
/* The name of the listener req came in on. Metadata, DescribeCluster and
 * FindCoordinator tell that client each agent's endpoint of the listener
 * with this name (cluster/placement.h), as Kafka answers with the
 * endpoints of the listener a request arrived on. */
const char *agent_listener_name(const struct agent *a, const struct request *req);

struct topic_state *agent_topic(struct agent *a, kstr name);
struct topic_state *agent_topic_by_name(struct agent *a, const char *name);
struct topic_state *agent_topic_by_uuid(struct agent *a, const uint8_t uuid[16]);
struct topic_state *agent_topic_by_tid(struct agent *a, int64_t tid);
/* Calls fn for every topic (sorted by name). */
void agent_topics_each(struct agent *a, void (*fn)(void *arg, struct topic_state *t), void *arg);
size_t agent_topic_count(const struct agent *a);

void agent_job_submit(struct agent *a, struct agent_job *job);

/* The catalog's half of topic changes, on the loop, after the metadata
 * store took them in an agent_job (meta_topic_create, _delete,
 * _set_partitions, _configs_set):
 * agent_topic_created adds a topic the store made (its configs move out
 * of mt); 0 or SL_ENOMEM (the store has it: a restart loads it). */
int agent_topic_created(struct agent *a, struct meta_topic *mt, struct topic_state **out);
/* The whole catalog as another agent left it (the registry's poll of a
 * shared store; mt sorted here, its configs move out): topics missing
 * from mt go unless this agent is deleting them, new ones come, grown
 * ones grow, configs are replaced. Only while no agent_job is queued: a
 * job applies its own change. 0 or SL_ENOMEM (the next poll tries again). */
int agent_catalog_replace(struct agent *a, struct meta_topic *mt, size_t n);
/* Removes and frees t. */
void agent_topic_deleted(struct agent *a, struct topic_state *t);
/* t now has new_count partitions (more than before), r (NULL: none)
 * the new ones' assignment; 0 or SL_ENOMEM. */
int agent_topic_grown(struct topic_state *t, int32_t new_count, const struct meta_replicas *r);
/* Set (value != NULL) or delete t's config overrides in memory. */
int agent_topic_configs_changed(struct topic_state *t, const struct meta_config_change *changes,
				size_t n);
/* The topic's value of a config, or NULL when it uses the default. */
const char *agent_topic_config(const struct topic_state *t, const char *name);
int64_t agent_topic_config_i64(const struct topic_state *t, const char *name, int64_t dflt);

/* The store's word on partition p of t's transactions over the offsets
 * [from, to) it committed, or that a poll of it covers (to: the high
 * watermark then, already applied to the partition): every aborted
 * transaction whose marker lies in [from, to) is in aborted[0..n), and
 * first_unstable is the partition's first unstable offset as of to (-1:
 * no open transaction), or the store's LSO then (meta_partition's,
 * meta_commit_batch's: as of that batch's end, to). The aborted ones go
 * into the aborted index and the LSO rises (partition_raise_stable). Called by
 * the commit hook for the offsets of each partition a commit of this
 * agent took (the registry's poll and notices, which know nothing of
 * aborted rows, raise the LSO alone: partition_raise_stable).
 * True when the LSO moved: the caller wakes long-polling fetches (the
 * agent_hooks' committed). */
bool agent_partition_txns(struct agent *a, struct topic_state *t, int32_t p, int64_t from,
			  int64_t to, int64_t first_unstable, const struct aborted_txn *aborted,
			  size_t n);
/* reader_aborted_fn over the metadata store (meta_aborted_txns):
 * read_committed fetches look up the aborted transactions the aborted
 * index lacks. [pool: read] */
int agent_aborted_from(struct meta *m, int64_t tid, int32_t p, int64_t offset,
		       int64_t first_below, struct aborted_txn *out, size_t cap, size_t *n);
/* The marker write path (agent/txn_markers.c, docs/transactions.md §4):
 * a COMMIT (commit) or ABORT marker of producer (id, epoch) and
 * coordinator_epoch into each of partitions[0..n), ending transaction
 * txn_seq of transactional_id, appended to the writer in this loop turn
 * and sealed at once. done(arg, err) is called on the loop when every
 * marker is committed or the commit refused it as not owed (already
 * written there, for another transaction, its partition deleted): err
 * 0; or when one failed (SL_ESTORE, SL_EMETA: write them again). The
 * LSOs and aborted transactions move through the commit hook before
 * done, and long polls are woken. Returns 0 (done comes later, once), or
 * SL_EINVAL (no partition, more than SL_TXN_PARTITIONS_MAX, an empty or
 * too long id, a negative producer id or epoch), SL_EBUSY (the write
 * buffer is full), SL_ENOMEM: nothing written, done not called. */
typedef void agent_markers_done_fn(void *arg, int err);
int agent_txn_write_markers(struct agent *a, const char *transactional_id, int64_t producer_id,
			    int16_t producer_epoch, int32_t coordinator_epoch, int64_t txn_seq,
			    bool commit, const struct txn_tp *partitions, size_t n,
			    agent_markers_done_fn *done, void *arg);
/* The transaction coordinator (agent/txn_coord.c): start the
 * transaction service (0, or its error; on a shared store in fenced
 * mode, ids served under their leases); stop it while draining (held
 * requests answered NOT_COORDINATOR); free it after the loop. */
int agent_txn_start(struct agent *a);
void agent_txn_stop(struct agent *a);
void agent_txn_free(struct agent *a);
/* Before handing a request for transactional_id to the service:
 * KERR_NONE when this agent serves it (alone: always; in a cluster once
 * placement puts it here and its lease is held — the service then
 * answers COORDINATOR_LOAD_IN_PROGRESS while it reads the id);
 * NOT_COORDINATOR when placed elsewhere or another live agent holds
 * the lease (the client asks FindCoordinator again);
 * COORDINATOR_LOAD_IN_PROGRESS while the lease is being taken;
 * COORDINATOR_NOT_AVAILABLE without a service. */
int16_t agent_txn_acquire(struct agent *a, kstr transactional_id);
/* A request the transaction service answers (the txn_svc_* calls' req):
 * the first member of the handler's state; answered fires once, on the
 * loop, with the service's ANSWER effect (valid during the call). */
struct agent_txn_req {
	void (*answered)(struct agent_txn_req *r, const struct txn_effect *e);
};
/* The log start of partition p of t moved (partition_raise_log_start):
 * drop what fell below it from the batch and aborted indexes. */
void agent_log_start_raised(struct agent *a, struct topic_state *t, int32_t p);
/* Partition p of topic tid got a new high watermark, LSO or log start:
 * into the change journal (what fetch sessions read; no memory for it
 * makes every fetch read all its session's partitions). Every place
 * that moves one calls it. */
void agent_partition_changed(struct agent *a, int64_t tid, int32_t p);

/* Valid Kafka topic name: 1-249 chars of [a-zA-Z0-9._-], not "." or "..". */
bool topic_name_valid(kstr name);

#endif
