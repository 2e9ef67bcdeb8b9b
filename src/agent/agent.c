/* agent.c — wiring of one agent: stores, catalog, write path, listener,
 * signals and the drain on shutdown. */
#include "agent/agent.h"
#include "agent/acls.h"
#include "agent/collect.h"
#include "agent/compaction.h"
#include "agent/maintenance.h"
#include "agent/merge.h"
#include "agent/registry.h"
#include "agent/retention.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/log.h"
#include "base/sl_assert.h"
#include "cluster/lease.h"
#include "net/tls.h"
#include "group/service.h"
#include "metrics/exposition.h"
#include "net/server.h"
#include "objstore/objstore.h"
#include "storage/batch_index.h"
#include "storage/cache.h"
#include "storage/reader.h"
#include "storage/writer.h"
#include "txn/aborted_index.h"

bool topic_name_valid(kstr name)
{
	if (name.len <= 0 || name.len > SL_TOPIC_NAME_MAX)
		return false;
	if ((name.len == 1 && name.ptr[0] == '.') ||
	    (name.len == 2 && name.ptr[0] == '.' && name.ptr[1] == '.'))
		return false;
	for (int32_t i = 0; i < name.len; i++) {
		char ch = name.ptr[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

struct topic_state *agent_topic_by_name(struct agent *a, const char *name)
{
	return strmap_get(&a->topics, name);
}

struct topic_state *agent_topic(struct agent *a, kstr name)
{
	char buf[META_TOPIC_NAME_BYTES];
	if (!kstr_copy(name, buf, sizeof buf))
		return NULL;
	return agent_topic_by_name(a, buf);
}

/* The secondary indexes are string maps too: keys are the tid in decimal
 * and the UUID in hex. */
static void tid_key(int64_t tid, char out[24])
{
	snprintf(out, 24, "%lld", (long long)tid);
}

static void uuid_key(const uint8_t uuid[16], char out[33])
{
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 16; i++) {
		out[2 * i] = hex[uuid[i] >> 4];
		out[2 * i + 1] = hex[uuid[i] & 15];
	}
	out[32] = 0;
}

struct topic_state *agent_topic_by_uuid(struct agent *a, const uint8_t uuid[16])
{
	char k[33];
	uuid_key(uuid, k);
	return strmap_get(&a->topics_by_uuid, k);
}

struct topic_state *agent_topic_by_tid(struct agent *a, int64_t tid)
{
	char k[24];
	tid_key(tid, k);
	return strmap_get(&a->topics_by_tid, k);
}

/* Index t under its name, tid and UUID. Returns 0 or SL_ENOMEM. */
static int catalog_add(struct agent *a, struct topic_state *t)
{
	char tk[24], uk[33];
	tid_key(t->tid, tk);
	uuid_key(t->uuid, uk);
	if (strmap_put(&a->topics, t->name, t) != 0)
		return SL_ENOMEM;
	if (strmap_put(&a->topics_by_tid, tk, t) != 0 || strmap_put(&a->topics_by_uuid, uk, t) != 0) {
		strmap_del(&a->topics, t->name);
		strmap_del(&a->topics_by_tid, tk);
		return SL_ENOMEM;
	}
	return 0;
}

static void catalog_remove(struct agent *a, struct topic_state *t)
{
	char tk[24], uk[33];
	tid_key(t->tid, tk);
	uuid_key(t->uuid, uk);
	strmap_del(&a->topics, t->name);
	strmap_del(&a->topics_by_tid, tk);
	strmap_del(&a->topics_by_uuid, uk);
}

struct collect {
	struct topic_state **v;
	size_t n;
};

static void collect_each(void *arg, const char *key, void *value)
{
	struct collect *c = arg;
	c->v[c->n++] = value;
}

static int cmp_topic_name(const void *x, const void *y)
{
	const struct topic_state *a = *(struct topic_state *const *)x;
	const struct topic_state *b = *(struct topic_state *const *)y;
	return strcmp(a->name, b->name);
}

void agent_topics_each(struct agent *a, void (*fn)(void *, struct topic_state *), void *arg)
{
	struct collect c = { calloc(a->topics.count + 1, sizeof *c.v), 0 };
	if (!c.v)
		return;
	strmap_each(&a->topics, collect_each, &c);
	qsort(c.v, c.n, sizeof *c.v, cmp_topic_name);
	for (size_t i = 0; i < c.n; i++)
		fn(arg, c.v[i]);
	free(c.v);
}

size_t agent_topic_count(const struct agent *a)
{
	return a->topics.count;
}

static void topic_state_free(struct topic_state *t)
{
	if (!t)
		return;
	free(t->parts);
	free(t->configs);
	free(t->replicas);
	free(t);
}

/* Adopt a meta_topic (its configs move into the state). */
static struct topic_state *topic_state_from_meta(struct meta_topic *mt)
{
	struct topic_state *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->parts = calloc((size_t)mt->partition_count + 1, sizeof *t->parts);
	if (!t->parts) {
		free(t);
		return NULL;
	}
	t->tid = mt->tid;
	memcpy(t->name, mt->name, sizeof t->name);
	memcpy(t->uuid, mt->uuid, 16);
	t->partition_count = mt->partition_count;
	t->configs = mt->configs;
	t->config_count = mt->config_count;
	mt->configs = NULL;
	mt->config_count = 0;
	t->replicas = mt->replicas;
	t->replication = mt->replication;
	mt->replicas = NULL;
	mt->replication = 0;
	return t;
}

int agent_topic_created(struct agent *a, struct meta_topic *mt, struct topic_state **out)
{
	struct topic_state *t = topic_state_from_meta(mt);
	if (!t || catalog_add(a, t) != 0) {
		topic_state_free(t);
		return SL_ENOMEM;
	}
	log_info("created topic %s with %d partitions", t->name, t->partition_count);
	if (out)
		*out = t;
	return 0;
}

void agent_topic_deleted(struct agent *a, struct topic_state *t)
{
	batch_index_drop_topic(a->index, t->tid, t->partition_count);
	if (a->aborted)
		aborted_index_drop_topic(a->aborted, t->tid, t->partition_count);
	catalog_remove(a, t);
	log_info("deleted topic %s", t->name);
	topic_state_free(t);
	/* Its batch rows may still be in the store: they go in the
	 * background, a chunk at a time. */
	collect_purge_soon(a);
}

/* t->replicas for new_count partitions (the new ones unassigned), or r's
 * replication when t has none yet. */
static int replicas_grow(struct topic_state *t, int32_t new_count, const struct meta_replicas *r)
{
	int16_t rf = t->replicas ? t->replication : r->replication;
	int32_t *ids = realloc(t->replicas, (size_t)new_count * (size_t)rf * sizeof *ids);
	if (!ids)
		return SL_ENOMEM;
	for (size_t i = t->replicas ? (size_t)t->partition_count * (size_t)rf : 0;
	     i < (size_t)new_count * (size_t)rf; i++)
		ids[i] = -1;
	t->replicas = ids;
	t->replication = rf;
	return 0;
}

int agent_topic_grown(struct topic_state *t, int32_t new_count, const struct meta_replicas *r)
{
	if (new_count <= t->partition_count)
		return 0;
	/* The store checked r against the topic's replication (the handler
	 * did, from this catalog). */
	if ((t->replicas || r) && replicas_grow(t, new_count, r) != 0)
		return SL_ENOMEM;
	if (r && r->replication == t->replication)
		memcpy(&t->replicas[(size_t)r->first * (size_t)t->replication], r->ids,
		       (size_t)(new_count - r->first) * (size_t)t->replication * sizeof *r->ids);
	struct partition_state *parts = realloc(t->parts, (size_t)new_count * sizeof *parts);
	if (!parts)
		return SL_ENOMEM;
	t->parts = parts;
	for (int32_t p = t->partition_count; p < new_count; p++)
		memset(&t->parts[p], 0, sizeof t->parts[p]);
	t->partition_count = new_count;
	return 0;
}

/* The in-memory copy of one change (after the store took it). */
static int config_apply(struct topic_state *t, const char *name, const char *value)
{
	for (int32_t i = 0; i < t->config_count; i++) {
		if (strcmp(t->configs[i].name, name) != 0)
			continue;
		if (value) {
			snprintf(t->configs[i].value, sizeof t->configs[i].value, "%s", value);
		} else {
			t->configs[i] = t->configs[t->config_count - 1];
			t->config_count--;
		}
		return 0;
	}
	if (!value)
		return 0;
	struct meta_config *c = realloc(t->configs, (size_t)(t->config_count + 1) * sizeof *c);
	if (!c)
		return SL_ENOMEM;
	t->configs = c;
	snprintf(c[t->config_count].name, sizeof c->name, "%s", name);
	snprintf(c[t->config_count].value, sizeof c->value, "%s", value);
	t->config_count++;
	return 0;
}

int agent_topic_configs_changed(struct topic_state *t, const struct meta_config_change *changes,
				size_t n)
{
	int rc = 0;
	for (size_t i = 0; !rc && i < n; i++)
		rc = config_apply(t, changes[i].name, changes[i].value);
	return rc;
}

const char *agent_topic_config(const struct topic_state *t, const char *name)
{
	for (int32_t i = 0; i < t->config_count; i++)
		if (strcmp(t->configs[i].name, name) == 0)
			return t->configs[i].value;
	return NULL;
}

int64_t agent_topic_config_i64(const struct topic_state *t, const char *name, int64_t dflt)
{
	const char *v = agent_topic_config(t, name);
	if (!v)
		return dflt;
	char *end;
	long long n = strtoll(v, &end, 10);
	return *end ? dflt : n;
}

static int cmp_meta_topic_tid(const void *x, const void *y)
{
	int64_t a = ((const struct meta_topic *)x)->tid, b = ((const struct meta_topic *)y)->tid;
	return a < b ? -1 : a > b;
}

struct catalog_gone {
	struct meta_topic *mt;
	size_t n;
	struct topic_state **gone;
	size_t count;
};

static void catalog_gone_each(void *arg, const char *key, void *value)
{
	struct catalog_gone *g = arg;
	struct topic_state *t = value;
	struct meta_topic k = { .tid = t->tid };
	if (!t->deleting &&
	    (!g->n || !bsearch(&k, g->mt, g->n, sizeof *g->mt, cmp_meta_topic_tid)))
		g->gone[g->count++] = t;
}

int agent_catalog_replace(struct agent *a, struct meta_topic *mt, size_t n)
{
	if (n) /* an empty catalog may come as NULL, which qsort/bsearch must not get */
		qsort(mt, n, sizeof *mt, cmp_meta_topic_tid);
	struct catalog_gone g = { mt, n, calloc(a->topics.count + 1, sizeof *g.gone), 0 };
	if (!g.gone)
		return SL_ENOMEM;
	strmap_each(&a->topics, catalog_gone_each, &g);
	for (size_t i = 0; i < g.count; i++)
		agent_topic_deleted(a, g.gone[i]);
	free(g.gone);
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		struct topic_state *t = agent_topic_by_tid(a, mt[i].tid);
		if (t) {
			if (mt[i].partition_count > t->partition_count)
				rc = agent_topic_grown(t, mt[i].partition_count, NULL);
			free(t->configs);
			t->configs = mt[i].configs;
			t->config_count = mt[i].config_count;
			mt[i].configs = NULL;
			mt[i].config_count = 0;
			/* As the store has them, for the partitions it lists. */
			if (!rc && mt[i].partition_count == t->partition_count) {
				free(t->replicas);
				t->replicas = mt[i].replicas;
				t->replication = mt[i].replication;
				mt[i].replicas = NULL;
				mt[i].replication = 0;
			}
			continue;
		}
		/* The name of a topic deleted and made again elsewhere. */
		struct topic_state *old = agent_topic_by_name(a, mt[i].name);
		if (old && old->deleting)
			continue;
		if (old)
			agent_topic_deleted(a, old);
		rc = agent_topic_created(a, &mt[i], NULL);
	}
	return rc;
}

static int load_catalog(struct agent *a)
{
	struct meta_topic *topics = NULL;
	size_t n = 0;
	int rc = meta_topic_list(a->meta, &topics, &n);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		struct topic_state *t = topic_state_from_meta(&topics[i]);
		if (!t || catalog_add(a, t) != 0) {
			topic_state_free(t);
			meta_topics_free(topics, n);
			return SL_ENOMEM;
		}
	}
	meta_topics_free(topics, n);
	struct meta_partition *parts = NULL;
	rc = meta_partition_list(a->meta, &parts, &n);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		struct topic_state *t = agent_topic_by_tid(a, parts[i].tid);
		if (!t || parts[i].partition < 0 || parts[i].partition >= t->partition_count)
			continue;
		struct partition_state *ps = &t->parts[parts[i].partition];
		ps->log_start_offset = parts[i].log_start_offset;
		ps->high_watermark = parts[i].high_watermark;
		partition_raise_stable(ps, parts[i].last_stable_offset);
	}
	free(parts);
	return 0;
}

/* b[i, i + n) — one partition's consecutive batches of the object — go
 * into the batch index. */
static void index_append(struct agent *a, const char *key, uint64_t size,
			 const struct writer_committed *b, size_t n)
{
	struct batch_index_row rows[64];
	while (n > 0) {
		size_t k = n < 64 ? n : 64;
		for (size_t i = 0; i < k; i++)
			rows[i] = b[i].row;
		/* Out of memory drops the partition: fetches look it up. */
		batch_index_append(a->index, b[0].tid, b[0].partition, key, size, rows, k);
		b += k;
		n -= k;
	}
}

int agent_aborted_from(struct meta *m, int64_t tid, int32_t p, int64_t offset,
		       int64_t first_below, struct aborted_txn *out, size_t cap, size_t *n)
{
	/* The store's rows are the index's shape under the store's name:
	 * copied, not cast (no aliasing between the two types). */
	*n = 0;
	struct meta_aborted_txn *rows = malloc((cap ? cap : 1) * sizeof *rows);
	if (!rows)
		return SL_ENOMEM;
	int rc = meta_aborted_txns(m, tid, p, offset, first_below, rows, cap, n);
	for (size_t i = 0; rc == 0 && i < *n; i++)
		out[i] = (struct aborted_txn){ rows[i].producer_id, rows[i].first_offset,
					       rows[i].last_offset };
	free(rows);
	return rc;
}

bool agent_partition_txns(struct agent *a, struct topic_state *t, int32_t p, int64_t from,
			  int64_t to, int64_t first_unstable, const struct aborted_txn *aborted,
			  size_t n)
{
	/* Out of memory drops the partition from the index: its aborted
	 * transactions are looked up when a read_committed fetch needs them. */
	if (a->aborted && from <= to && (from < to || n))
		aborted_index_add(a->aborted, t->tid, p, from, to, aborted, n);
	agent_partition_changed(a, t->tid, p); /* the commit's high watermark */
	return partition_raise_stable(&t->parts[p], first_unstable);
}

void agent_partition_changed(struct agent *a, int64_t tid, int32_t p)
{
	if (!a->changes && !(a->changes = malloc(SL_PARTITION_CHANGES_MAX * sizeof *a->changes))) {
		a->changes_seq += SL_PARTITION_CHANGES_MAX; /* a reader's position is lost */
		return;
	}
	a->changes[a->changes_seq++ % SL_PARTITION_CHANGES_MAX] = (struct partition_change){ tid, p };
}

void agent_log_start_raised(struct agent *a, struct topic_state *t, int32_t p)
{
	int64_t start = t->parts[p].log_start_offset;
	agent_partition_changed(a, t->tid, p);
	batch_index_trim(a->index, t->tid, p, start);
	if (a->aborted)
		aborted_index_trim(a->aborted, t->tid, p, start);
}

/* The frame pool's blocks written on a thread of their own while the
 * agent starts (--buffer-pretouch-bytes; base/buf.h's kbuf_pretouch says
 * why), pooled before it listens: else a fresh broker's first produce
 * frames are fresh blocks, and reading them and checking their CRC cost
 * the loop 10-20 times their later CPU per byte until the read cache is
 * full and gives blocks back (bench/RESULTS.md). In the background while
 * serving, the blocks came 1.2-1.5 s after the first produce on a loaded
 * machine: too late. 1 MiB blocks: the frames of a librdkafka producer
 * with a backlog (batch.size 1,000,000). */
#define PRETOUCH_BLOCK_BYTES ((size_t)1 << 20)

struct pretouch {
	uv_thread_t thread;
	size_t n;
	uint8_t *blocks[];
};

static void pretouch_run(void *arg)
{
	struct pretouch *p = arg;
	for (size_t i = 0; i < p->n; i++)
		p->blocks[i] = kbuf_pretouch(PRETOUCH_BLOCK_BYTES);
}

static void pretouch_start(struct agent *a, int64_t bytes)
{
	size_t n = (size_t)bytes / PRETOUCH_BLOCK_BYTES;
	struct pretouch *p = n ? calloc(1, sizeof *p + n * sizeof p->blocks[0]) : NULL;
	if (!p)
		return;
	p->n = n;
	if (uv_thread_create(&p->thread, pretouch_run, p) != 0) {
		free(p);
		return;
	}
	a->pretouch = p;
}

/* The loop thread (whose pool it is): wait for the blocks and pool them. */
static void pretouch_finish(struct agent *a)
{
	struct pretouch *p = a->pretouch;
	if (!p)
		return;
	a->pretouch = NULL;
	uv_thread_join(&p->thread);
	for (size_t i = 0; i < p->n; i++)
		kbuf_release(p->blocks[i], PRETOUCH_BLOCK_BYTES);
	free(p);
}

/* The write path committed an object: advance high watermarks and LSOs,
 * index its batch rows, keep the object in the read cache, wake fetches. */
static void on_commit(void *arg, const char *key, uint64_t object_len,
		      const struct kpiece *pieces, size_t n_pieces,
		      const struct writer_committed *b, size_t n)
{
	struct agent *a = arg;
	struct topic_state *t = NULL;
	/* The batches come sorted by (tid, partition): one append per
	 * partition, before the high watermark moves past its rows. */
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && b[j].tid == b[i].tid && b[j].partition == b[i].partition; j++)
			;
		if (!t || t->tid != b[i].tid)
			t = agent_topic_by_tid(a, b[i].tid);
		if (t && b[i].partition < t->partition_count)
			index_append(a, key, object_len, b + i, j - i);
	}
	t = NULL;
	/* The aborted transactions the commit's markers recorded, for the
	 * aborted index (rare: only counted when one is there). */
	size_t n_aborted = 0;
	for (size_t i = 0; i < n; i++)
		n_aborted += b[i].n_aborted;
	struct aborted_txn *aborted = n_aborted ? malloc(n_aborted * sizeof *aborted) : NULL;
	int64_t from = 0;    /* the partition's first offset in the commit */
	size_t k = 0;        /* its aborted transactions so far */
	bool unheld = false; /* some of them not in aborted (no memory, not reported) */
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || b[i - 1].tid != b[i].tid || b[i - 1].partition != b[i].partition) {
			from = b[i].row.base_offset;
			k = 0;
			unheld = false;
		}
		if (b[i].n_aborted && (!aborted || b[i].n_aborted > META_MARKER_ABORTED_MAX))
			unheld = true;
		for (uint32_t x = 0; aborted && x < b[i].n_aborted && x < META_MARKER_ABORTED_MAX; x++)
			aborted[k++] = (struct aborted_txn){ b[i].aborted[x].producer_id,
							     b[i].aborted[x].first_offset,
							     b[i].aborted[x].last_offset };
		if (!t || t->tid != b[i].tid)
			t = agent_topic_by_tid(a, b[i].tid);
		if (!t || b[i].partition >= t->partition_count)
			continue;
		struct partition_state *p = &t->parts[b[i].partition];
		/* Dense offsets. On a store only this agent writes (embedded and
		 * claimed, so nothing else raises high watermarks: the registry
		 * polls only a shared store), commits come in seal order and
		 * each batch starts at the high watermark served so far; anything
		 * else would hand out offsets twice or skip some. On a shared
		 * store other agents commit between this agent's batches and
		 * the poll may already have raised the high watermark past this
		 * one (the store assigned the offsets under its row locks): the
		 * served high watermark only rises. */
		const struct batch_index_row *r = &b[i].row;
		SL_ASSERT(r->last_offset >= r->base_offset &&
			  (meta_shared(a->meta) || r->base_offset == p->high_watermark),
			  "%s-%" PRId32 ": batch %" PRId64 "..%" PRId64 " committed at high watermark %" PRId64,
			  t->name, b[i].partition, r->base_offset, r->last_offset, p->high_watermark);
		if (r->last_offset + 1 > p->high_watermark)
			p->high_watermark = r->last_offset + 1;
		/* The partition's last batch of the commit: the store's word on
		 * its transactions over the offsets the commit took there (its
		 * LSO after the commit and the aborted transactions recorded in
		 * the range; out of memory for the list, or more than a marker
		 * reports, leaves the range out of the aborted index, so
		 * fetches look it up). */
		if (i + 1 == n || b[i + 1].tid != b[i].tid || b[i + 1].partition != b[i].partition) {
			if (unheld) {
				agent_partition_changed(a, t->tid, b[i].partition);
				partition_raise_stable(p, b[i].last_stable_offset);
			} else
				agent_partition_txns(a, t, b[i].partition, from, r->last_offset + 1,
						     b[i].last_stable_offset, aborted, k);
		}
	}
	free(aborted);
	/* The batches stay in the produce requests' frames (referenced). */
	if (a->cfg.cache_bytes > 0)
		cache_put_pieces(a->cache, key, object_len, pieces, n_pieces);
	a->hooks->committed(a);
}

static void on_signal(uv_signal_t *s, int signum);

/* Every few seconds: what the write path did since the last report. */
static void on_stats_timer(uv_timer_t *t)
{
	struct agent *a = t->data;
	if (!a->writer)
		return;
	struct writer_stats now;
	writer_get_stats(a->writer, &now);
	struct writer_stats *was = &a->stats_last;
	uint64_t objects = now.objects_written - was->objects_written;
	if (objects > 0 || now.flush_errors != was->flush_errors) {
		log_info("write path: %" PRIu64 " objects, %.1f MB, %" PRIu64 " batches, "
			 "upload %.2f ms avg, commit %.2f ms avg (%" PRIu64 " transactions), %" PRIu64
			 " errors; cache %zu MB, "
			 "%zu connections",
			 objects, (double)(now.bytes_written - was->bytes_written) / 1e6,
			 now.batches_committed - was->batches_committed,
			 objects ? (double)(now.upload_us_total - was->upload_us_total) / 1e3 / (double)objects : 0,
			 objects ? (double)(now.commit_us_total - was->commit_us_total) / 1e3 / (double)objects : 0,
			 now.commits - was->commits,
			 now.flush_errors - was->flush_errors, cache_bytes(a->cache) >> 20,
			 a->server ? server_connection_count(a->server) : 0);
	}
	*was = now;

	/* The store's request counters (S3 only), so a workload's request
	 * cost can be read off the log. */
	struct objstore_stats st;
	if (objstore_stats(a->store, &st) != 0)
		return;
	struct objstore_stats *sw = &a->store_stats_last;
	uint64_t requests = 0;
	for (int op = 0; op < OBJSTORE_OP_COUNT; op++)
		requests += st.requests[op] - sw->requests[op];
	if (requests > 0) {
		char line[512];
		int len = 0;
		for (int op = 0; op < OBJSTORE_OP_COUNT && len < (int)sizeof line; op++) {
			uint64_t n = st.requests[op] - sw->requests[op];
			if (n)
				len += snprintf(line + len, sizeof line - (size_t)len,
						" %s %" PRIu64 " (%" PRIu64 " retries, %" PRIu64 " errors);",
						objstore_op_name(op), n, st.retries[op] - sw->retries[op],
						st.errors[op] - sw->errors[op]);
		}
		log_info("store requests:%s %.1f MB written, %.1f MB read", line,
			 (double)(st.bytes_written - sw->bytes_written) / 1e6,
			 (double)(st.bytes_read - sw->bytes_read) / 1e6);
	}
	*sw = st;
}

/* Draining: once the write path is idle and every agent_job is done
 * (their requests answered), close everything. */
/* Stops every part that runs on the loop or the pool, so the loop ends
 * once their last callbacks ran (agent_free comes after). Each part may
 * not have started: a failed start stops what it started the same way. */
static void stop_all(struct agent *a)
{
	pretouch_finish(a); /* a start that failed before listening */
	registry_stop(a);
	lease_set_stop(a->leases);
	acls_stop(a);
	group_svc_shutdown(a->groups);
	agent_txn_stop(a);
	maint_stop(a);
	retention_stop(a);
	collect_stop(a);
	metrics_agent_stop(a);
	merge_stop(a);
	compaction_stop(a);
	if (a->server)
		server_close(a->server);
	a->server = NULL;
	writer_free(a->writer);
	a->writer = NULL;
	/* Reads still in flight end with a storage error; their
	 * connections are closed already. */
	objstore_async_close(a->store);
	if (a->serving) {
		uv_close((uv_handle_t *)&a->sigint, NULL);
		uv_close((uv_handle_t *)&a->sigterm, NULL);
		uv_close((uv_handle_t *)&a->sighup, NULL);
		uv_close((uv_handle_t *)&a->stats_timer, NULL);
	}
}

static void drain_finish_maybe(struct agent *a)
{
	if (a->draining && a->writer && writer_idle(a->writer) && workq_idle(&a->jobs)) {
		log_info("drained; exiting");
		a->hooks->drained(a);
		stop_all(a);
	}
}

static void on_writer_drain(void *arg)
{
	struct agent *a = arg;
	if (writer_buffered_bytes(a->writer) < (size_t)a->cfg.write_buffer_bytes / 2)
		server_resume_reads(a->server);
	drain_finish_maybe(a);
}

static void agent_job_run(struct workq_job *wq)
{
	struct agent_job *job = (struct agent_job *)wq;
	job->run(job);
}

static void agent_job_done(struct workq_job *wq)
{
	struct agent_job *job = (struct agent_job *)wq;
	struct agent *a = job->a;
	job->done(job);
	a->jobs_done++;
	drain_finish_maybe(a);
}

/* Queued behind the jobs before it: the next starts from the previous
 * one's done (struct agent_job says why). */
void agent_job_submit(struct agent *a, struct agent_job *job)
{
	job->a = a;
	job->wq.run = agent_job_run;
	job->wq.done = agent_job_done;
	workq_submit(&a->jobs, &job->wq);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct agent *a = s->data;
	if (a->draining)
		return;
	log_info("received signal %d; draining", signum);
	a->draining = true;
	server_stop_listening(a->server);
	writer_flush_now(a->writer);
	on_writer_drain(a);
}

/* The view of an agent alone: itself, at epoch 0, with an endpoint per
 * listener, by its name, at its advertised address. */
static int placement_alone(struct agent *a)
{
	struct placement_agent self;
	memset(&self, 0, sizeof self);
	self.node_id = a->cfg.node_id >= 0 ? a->cfg.node_id : 0; /* until registered */
	self.endpoint_count = (uint32_t)a->cfg.listener_count;
	for (size_t i = 0; i < a->cfg.listener_count; i++) {
		const struct listener_config *l = &a->cfg.listeners[i];
		struct placement_endpoint *e = &self.endpoints[i];
		snprintf(e->listener, sizeof e->listener, "%s", l->name);
		snprintf(e->host, sizeof e->host, "%s", l->advertise_host);
		e->port = l->advertise_port;
	}
	snprintf(self.zone, sizeof self.zone, "%s", a->cfg.zone);
	self.start_ms = clock_wall_ms();
	return placement_set(&a->placement, &self, 1, 0);
}

static int load_tls(const struct config *cfg, struct tls_ctx **out)
{
	struct tls_config tc = { cfg->tls_cert, cfg->tls_key, cfg->tls_ca, cfg->tls_client_auth };
	return tls_ctx_new(&tc, out);
}

/* SIGHUP: new TLS connections get the certificate and key as the files
 * are now; connections already up keep theirs. A file that does not load
 * leaves the current ones in place. */
static void on_sighup(uv_signal_t *s, int signum)
{
	(void)signum;
	struct agent *a = s->data;
	struct tls_ctx *ctx;
	if (load_tls(&a->cfg, &ctx) != 0) {
		log_error("SIGHUP: TLS certificate not reloaded; keeping the current one");
		return;
	}
	server_set_tls(a->server, ctx);
	char desc[256];
	tls_ctx_describe(ctx, desc, sizeof desc);
	tls_ctx_unref(ctx);
	log_info("SIGHUP: TLS certificate reloaded: %s", desc);
}

/* The group service's placement check (cluster mode). */
static bool group_placed_here(void *arg, const char *group_id)
{
	struct agent *a = arg;
	return placement_is_coordinator(&a->placement, PLACEMENT_KEY_GROUP, KSTR(group_id),
					a->cfg.node_id);
}

/* A store the agent cannot write to would take every produce and fail it:
 * write and delete one small object at start instead, so a read-only
 * folder (or bucket) stops the agent with the store's one line naming
 * the path. Under objects/, where a leftover (a crash between the two)
 * is an orphan that collection removes. */
static int store_write_check(struct objstore *store)
{
	char key[64];
	snprintf(key, sizeof key, "objects/write-check-%ld", (long)getpid());
	int rc = objstore_put(store, key, "sluice", 6);
	if (!rc)
		objstore_del(store, key);
	return rc;
}

static int start_all(struct agent *a, uv_loop_t *loop, const struct config *cfg,
		     const struct agent_hooks *hooks)
{
	memset(a, 0, sizeof *a);
	a->loop = loop;
	workq_init(&a->jobs, loop);
	a->hooks = hooks;
	a->cfg = *cfg;
	strmap_init(&a->topics);
	strmap_init(&a->topics_by_tid);
	strmap_init(&a->topics_by_uuid);
	producers_init(&a->producers);
	placement_init(&a->placement);
	if (!a->cfg.cluster_id[0])
		snprintf(a->cfg.cluster_id, sizeof a->cfg.cluster_id, "sluice-cluster-0001");
	int rc = placement_alone(a);
	if (rc) {
		log_error("this agent's address or zone cannot be placed: %s", sl_strerror(rc));
		return rc;
	}
	kbuf_pool_enable(SL_BUFFER_POOL_BYTES);
	pretouch_start(a, cfg->buffer_pretouch_bytes);
	/* Its port first: a taken one stops the start before anything runs
	 * on the pool or registers (/readyz says 503 until a->server). */
	rc = metrics_agent_start(a);
	if (rc)
		return rc;
	rc = objstore_open(cfg->store_url, &a->store);
	if (!rc)
		rc = store_write_check(a->store);
	if (rc)
		return rc;
	objstore_file_set_page_cache(a->store, cfg->file_page_cache_bytes);
	rc = meta_open_agent(cfg->meta_url, &a->meta);
	if (rc)
		return rc;
	rc = load_catalog(a);
	if (rc) {
		char shown[1024];
		meta_url_redact(cfg->meta_url, shown, sizeof shown);
		log_error("loading topics from %s failed: %s", shown, sl_strerror(rc));
		return rc;
	}
	/* The index exists before the registry starts: another agent's commit
	 * notification may arrive on its first loop turn and goes into it. */
	a->cache = cache_new((size_t)cfg->cache_bytes);
	a->index = batch_index_new(SL_BATCH_INDEX_BYTES_MAX, SL_BATCH_INDEX_PARTITION_ROWS_MAX);
	a->aborted = aborted_index_new(SL_ABORTED_INDEX_BYTES_MAX, SL_ABORTED_INDEX_PARTITION_MAX);
	if (!a->index || !a->aborted)
		return SL_ENOMEM;
	rc = registry_start(a);
	if (!rc)
		rc = lease_set_new(loop, a->meta, registry_self(a), &a->leases);
	if (rc)
		return rc;
	if (registry_self(a))
		lease_set_beat(a->leases, registry_beat_ok(a));
	rc = acls_start(a);
	if (rc)
		return rc;
	struct reader_config rdc = { .pinned_evicted_bytes_max = SL_FETCH_PINNED_EVICTED_BYTES_MAX,
				     .index = a->index, .aborted = a->aborted,
				     .aborted_from = agent_aborted_from };
	rc = reader_new(loop, a->store, a->meta, a->cache, &rdc, &a->reader);
	if (rc)
		return rc;
	struct writer_config wc = {
		.flush_interval_ms = cfg->flush_interval_ms,
		.flush_bytes = (size_t)cfg->flush_bytes,
		.buffered_bytes_max = (size_t)cfg->write_buffer_bytes,
		.uploads_max = 4,
		.seal_when_idle = cfg->seal_when_idle,
		.idle_seal_age_us = cfg->idle_seal_age_us,
		.idle_seal_hold_bytes = (size_t)cfg->idle_seal_hold_bytes,
	};
	rc = writer_new(loop, a->store, a->meta, &wc, on_commit, a, &a->writer);
	if (rc)
		return rc;
	writer_set_drain_hook(a->writer, on_writer_drain, a);
	struct group_svc_config gc = {
		.initial_rebalance_delay_ms = cfg->group_initial_rebalance_delay_ms,
		.offsets_retention_ms = cfg->offsets_retention_minutes * 60 * 1000,
		.leases = a->leases,
		.self = registry_self(a),
		.placed_here = group_placed_here,
		.placed_arg = a,
		.idle_ms = cfg->group_idle_ms,
		.empty_forget_ms = cfg->group_empty_forget_ms,
	};
	rc = group_svc_start(loop, a->meta, &gc, &a->groups);
	if (rc)
		return rc;
	rc = agent_txn_start(a);
	if (rc)
		return rc;
	rc = maint_start(a);
	if (!rc)
		rc = retention_start(a);
	if (!rc)
		rc = collect_start(a);
	if (!rc)
		rc = merge_start(a);
	if (!rc)
		rc = compaction_start(a);
	if (rc)
		return rc;
	struct server_listener sl[SL_LISTENERS_MAX];
	struct tls_ctx *tls = NULL;
	for (size_t i = 0; i < cfg->listener_count; i++) {
		enum listener_protocol p = cfg->listeners[i].protocol;
		bool is_tls = listener_is_tls(p);
		sl[i] = (struct server_listener){ cfg->listeners[i].host, cfg->listeners[i].port, is_tls,
						  listener_is_sasl(p) };
		if (is_tls && !tls && (rc = load_tls(cfg, &tls)) != 0)
			return rc;
	}
	struct server_config sc = {
		.listeners = sl,
		.listener_count = cfg->listener_count,
		.tls = tls,
		.tls_handshake_ms = (uint64_t)cfg->tls_handshake_timeout_ms,
		.sasl_login_ms = (uint64_t)cfg->sasl_login_timeout_ms,
		.connections_max = SL_CONNECTIONS_MAX,
		.queued_bytes_max = (size_t)cfg->queued_request_bytes,
	};
	pretouch_finish(a);
	rc = server_start(loop, &sc, hooks->handle, a, &a->server);
	if (tls) {
		char desc[256];
		tls_ctx_describe(tls, desc, sizeof desc);
		log_info("TLS certificate %s", desc);
		tls_ctx_unref(tls); /* the server holds its own */
	}
	if (rc)
		return rc;
	uv_signal_init(loop, &a->sighup);
	a->sighup.data = a;
	if (tls)
		uv_signal_start(&a->sighup, on_sighup, SIGHUP);
	uv_signal_init(loop, &a->sigint);
	uv_signal_init(loop, &a->sigterm);
	a->sigint.data = a->sigterm.data = a;
	uv_signal_start(&a->sigint, on_signal, SIGINT);
	uv_signal_start(&a->sigterm, on_signal, SIGTERM);
	uv_timer_init(loop, &a->stats_timer);
	a->stats_timer.data = a;
	uv_timer_start(&a->stats_timer, on_stats_timer, AGENT_STATS_INTERVAL_MS, AGENT_STATS_INTERVAL_MS);
	a->serving = true;
	for (size_t i = 0; i < cfg->listener_count; i++) {
		const struct listener_config *l = &cfg->listeners[i];
		log_info("sluice listening on %s://%s:%d (%s, advertised %s:%d)", l->name, l->host,
			 l->port, listener_protocol_name(l->protocol), l->advertise_host,
			 l->advertise_port);
	}
	char meta_shown[1024];
	meta_url_redact(cfg->meta_url, meta_shown, sizeof meta_shown);
	log_info("sluice serving, store %s, meta %s, %zu topics", cfg->store_url, meta_shown,
		 a->topics.count);
	return 0;
}

int agent_start(struct agent *a, uv_loop_t *loop, const struct config *cfg,
		const struct agent_hooks *hooks)
{
	int rc = start_all(a, loop, cfg, hooks);
	if (rc) {
		/* What started may have work on the pool (the registry's first
		 * round, a lease sync): stop it all and let the loop run their
		 * callbacks out before the caller frees the agent. */
		stop_all(a);
		uv_run(loop, UV_RUN_DEFAULT);
	}
	return rc;
}

/* The listener req came in on. */
static const struct listener_config *agent_listener(const struct agent *a,
						    const struct request *req)
{
	size_t i = request_listener(req);
	SL_ASSERT(i < a->cfg.listener_count);
	return &a->cfg.listeners[i];
}

const char *agent_listener_name(const struct agent *a, const struct request *req)
{
	return agent_listener(a, req)->name;
}

static void free_topic_each(void *arg, const char *key, void *value)
{
	topic_state_free(value);
}

void agent_free(struct agent *a)
{
	if (a->hooks && a->hooks->freeing)
		a->hooks->freeing(a);
	strmap_each(&a->topics, free_topic_each, NULL);
	strmap_free(&a->topics);
	strmap_free(&a->topics_by_tid);
	strmap_free(&a->topics_by_uuid);
	producers_free(&a->producers);
	placement_free(&a->placement);
	group_svc_free(a->groups);
	a->groups = NULL;
	agent_txn_free(a);
	lease_set_free(a->leases);
	a->leases = NULL;
	retention_free(a);
	collect_free(a);
	merge_free(a);
	compaction_free(a);
	maint_free(a);
	reader_free(a->reader);
	batch_index_free(a->index);
	aborted_index_free(a->aborted);
	free(a->changes);
	cache_free(a->cache);
	registry_free(a);
	acls_free(a);
	meta_close(a->meta);
	objstore_close(a->store);
}
