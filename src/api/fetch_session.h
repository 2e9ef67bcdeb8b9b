/* fetch_session.h — incremental fetch sessions (KIP-227), as pure logic:
 * the agent's bounded cache of sessions and what one Fetch does with it.
 * Private to src/api (fetch.c drives it; no I/O, no loop).
 *
 * A consumer opens a session with a full fetch (epoch 0) and then sends
 * only the partitions whose fetch position or limits changed, plus the
 * ones it forgets; the broker keeps the rest and answers only partitions
 * with records, a changed high watermark, log start or last stable
 * offset, or an error. As in Kafka (FetchSession.scala,
 * FetchSessionCache), except the last stable offset, which Kafka's
 * CachedPartition does not compare: there it moves only with the high
 * watermark or records; here another agent's marker commit may reach
 * this agent's LSO by a later poll than its high watermark, and a
 * read_committed client (librdkafka takes it as the partition's end)
 * must hear of it:
 *
 *   session_id  epoch
 *   any          -1    sessionless full fetch (a session named is closed)
 *   any           0    full fetch opening a new session (one named is
 *                      closed first); id 0 in the answer when the cache
 *                      has no room
 *   id           n>0   incremental: FETCH_SESSION_ID_NOT_FOUND for an
 *                      unknown id, INVALID_FETCH_SESSION_EPOCH when n is
 *                      not the session's next epoch,
 *                      FETCH_SESSION_TOPIC_ID_ERROR when the request's
 *                      version names topics otherwise than the session
 *                      (ids from v13); the epoch then advances (after
 *                      INT32_MAX comes 1), and a session left empty is
 *                      closed (answered sessionless)
 *
 * The cache holds at most slots_max sessions and partitions_max
 * partitions in all, each session SL_FETCH_SESSION_PARTITIONS_EACH_MAX
 * (a fetch growing one past it drops it, answered sessionless). When full, a new session takes the least recently
 * used one's slot if that was idle for eviction_ms, else the smallest
 * session's if the new one is larger, else none is made. A topic name
 * longer than any topic's (SL_TOPIC_NAME_MAX) is not kept: no session is
 * made of such a fetch, and an incremental one naming it drops its
 * session (answered sessionless).
 *
 * An incremental fetch reads only the partitions that may answer, so its
 * cost follows what changed, not the session's size: those the request
 * names, those last answered with an error or with records left to read
 * (fetch offset below the high watermark), and those the agent's change
 * journal lists since the session's last fetch (a high watermark, last
 * stable offset or log start moved: fetch_env). It reads all of them
 * when a topic of the session is no longer what it was (deleted,
 * recreated, no longer readable), the journal no longer reaches back
 * far enough, or another fetch of the session began before the last one
 * ended. A long poll woken by a commit adds the partitions the journal
 * lists since (fetch_session_more). */
#ifndef SLUICE_API_FETCH_SESSION_H
#define SLUICE_API_FETCH_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "kmsg.h"

struct fetch_sessions;

/* What an incremental fetch learns of the agent (fetch.c provides it). */
struct fetch_env {
	void *arg;
	/* The topic named (v < 13) or with that id (v >= 13) now: its tid
	 * (-1: none) and whether this fetch may read it. */
	void (*topic)(void *arg, kstr name, const uint8_t id[16], int64_t *tid, bool *readable);
	/* fn(fn_arg, tid, partition) for each partition the journal lists
	 * after position since (repeats allowed); false, calling nothing,
	 * when the journal no longer reaches back to since. */
	bool (*changes)(void *arg, uint64_t since, void (*fn)(void *fn_arg, int64_t tid, int32_t partition),
			void *fn_arg);
	uint64_t seq;              /* the journal's position now */
};

/* NULL when out of memory. */
struct fetch_sessions *fetch_sessions_new(size_t slots_max, size_t partitions_max,
					  int64_t eviction_ms);
void fetch_sessions_free(struct fetch_sessions *c);
size_t fetch_sessions_count(const struct fetch_sessions *c);

/* One partition a fetch reads, in the order the fetch reads them. */
struct fetch_part {
	kstr topic;                /* v < 13 (in the request or the fetch's arena) */
	uint8_t topic_id[16];      /* v >= 13 */
	int32_t partition;
	int64_t fetch_offset;
	int32_t max_bytes;
	uint32_t entry;            /* incremental: the session's entry */
	/* Set by the fetch before fetch_session_end: */
	int64_t tid;               /* the topic's (-1: none) */
	bool readable;             /* the fetch may read the topic */
	int16_t error;
	int64_t high_watermark, log_start_offset, last_stable_offset;
	size_t records_bytes;
	/* Set by fetch_session_end: this partition goes in the response. */
	bool respond;
};

enum fetch_session_kind {
	FETCH_SESSIONLESS,         /* every partition answered, session id 0 */
	FETCH_SESSION_FULL,        /* the same, and a session made at the end */
	FETCH_SESSION_INCREMENTAL, /* the session's partitions, changes answered */
};

struct fetch_session_ctx {
	enum fetch_session_kind kind;
	int16_t error;             /* a top-level error: answer it, no partitions */
	int32_t session_id;        /* incremental: the session's */
	bool topic_ids;            /* v >= 13 */
	struct fetch_part *parts;  /* in the arena */
	size_t count;
	size_t cap;                /* parts' room (fetch_session_more grows it) */
	uint64_t generation;       /* the session's when parts were listed */
	uint64_t seq;              /* the journal position parts cover */
	uint64_t stamp;            /* marks the session's entries in parts */
};

/* Start a fetch: validate the session fields, apply the request's
 * partitions and forgotten topics to the session, and list what the fetch
 * reads (in the arena, which lives until the answer). Versions below 7
 * are sessionless. Returns 0 (ctx->error may still be set) or SL_ENOMEM
 * (the arena or the cache ran out). */
int fetch_session_begin(struct fetch_sessions *c, struct arena *arena, int64_t now_ms,
			int16_t version, const struct kmsg_fetch_req *m,
			const struct fetch_env *env, struct fetch_session_ctx *ctx);
/* A long poll of an incremental fetch was woken: add to ctx->parts the
 * session's partitions the journal lists since ctx->seq (all of them
 * when it no longer reaches back), in the session's order. Returns how
 * many were added (0: parts unchanged), or SL_ENOMEM. */
int fetch_session_more(struct fetch_sessions *c, struct arena *arena,
		       const struct fetch_env *env, struct fetch_session_ctx *ctx);
/* End it, after the last gather: mark the partitions the response
 * carries (all but an incremental fetch's unchanged ones), make the
 * session of a full fetch or update the incremental one's (what it last
 * answered; answered partitions move to the end, so that under
 * max_bytes others go first next time). Returns the response's session
 * id (0: none). */
int32_t fetch_session_end(struct fetch_sessions *c, int64_t now_ms, struct fetch_session_ctx *ctx);

#endif
