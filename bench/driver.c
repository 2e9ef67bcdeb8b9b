/* driver.c — Sluice's benchmark driver: a librdkafka producer and consumer
 * that measure throughput and produce latency against a broker, or against
 * librdkafka's in-memory mock cluster as a reference for what the client and
 * the machine allow.
 *
 *   driver produce (--bootstrap HOST:PORT | --reference mock) --topic T
 *          [--partitions 8] [--msg-bytes 1024] [--duration-s 10] [--acks all]
 *          [--linger-ms 5] [--rate MSGS_PER_S] [--label NAME]
 *          [--producers N] [--partitioner round-robin|sticky]
 *          N client instances (threads) share the rate and the count; each
 *          sends to every partition, in a round robin from its own start,
 *          or with sticky: keyless messages placed by librdkafka's own
 *          partitioner, which sticks to one partition for a while (KIP-480)
 *          [--idempotent on]  enable.idempotence (acks=all)
 *          [--txn-records N [--txn-abort-every K]]  a transactional producer
 *          (its own transactional.id per instance): begin, N messages, flush,
 *          then commit timed alone (EndTxn's latency: p50/p99 printed), every
 *          K-th transaction aborted instead
 *   driver consume (--bootstrap HOST:PORT | --reference mock) --topic T
 *          [--partitions 8] [--count N] [--msg-bytes 1024] [--label NAME]
 *          [--consumers N]   N client instances, partitions split evenly
 *   driver e2e (--bootstrap HOST:PORT | --reference mock) --topic T --rate R
 *          a producer at R msgs/s and a consumer at the end of the log in the
 *          same process: end-to-end latency from produce() to consume
 *   driver metadata (--bootstrap HOST:PORT | --reference mock) [--repeat 20]
 *          times Metadata requests for every topic
 *   driver conns --bootstrap HOST:PORT --connections N [--mode idle|active]
 *          [--hold-s 3] [--duration-s 5] [--ready-file F]
 *          N raw connections, each sends ApiVersions and Metadata; idle: they
 *          stay open hold-s seconds (F is created once all are up, so a caller
 *          can sample the broker's RSS); active: each keeps one request in
 *          flight for duration-s
 *   driver mock-serve [--topic NAME:PARTITIONS]... [--rtt-ms N]
 *          runs a mock cluster until SIGTERM and prints "bootstrap HOST:PORT"
 *          (the reference broker as a process of its own); --rtt-ms delays
 *          every response by N ms (a slower broker that answers evenly)
 *
 * Common options: --name W (the CSV workload column), --cdf FILE (latency
 * CDF: "ms fraction" lines, for gnuplot), --count N (produce: stop after N
 * messages instead of after --duration-s), --conf KEY=VALUE (repeatable:
 * librdkafka settings for every client, e.g. security.protocol=ssl and
 * ssl.ca.location=ca.pem to run over TLS), --stats-file FILE (every client's
 * statistics JSON, one document a line every 500 ms: its queue, the
 * requests awaiting a response per broker, the batches it builds),
 * --per-second SKIP (produce: also print, per second of the run by each
 * record's produce() time, "sec:S,records,p50_ms,p99_ms,max_ms", then
 * "after:SKIP,records,p50_ms,p99_ms" over the records sent from second SKIP
 * on: where in time the slow acknowledgements are, e.g. a fresh broker's
 * warm-up).
 *
 * Each run prints a human summary and one machine-readable line:
 *   csv:workload,target,msg_bytes,partitions,mb_s,msgs_s,p50_ms,p99_ms,p999_ms
 * (MB is 10^6 bytes; consume runs leave the latency columns empty.)
 *
 * The driver depends only on librdkafka, not on Sluice's sources. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define PARTITIONS_MAX 100000
#define CONNS_MAX 20000
#define MOCK_TOPICS_MAX 64
#define CLIENTS_MAX 64 /* --producers, --consumers */
#define MSG_BYTES_MAX (16 * 1024 * 1024)
/* A consume run that sees no message for this long gives up. */
#define CONSUME_IDLE_US (15 * 1000000LL)
/* librdkafka's mock keeps only the last 5 MiB of each partition, so a mock
 * consume run loads at most this much per partition before reading back. */
#define MOCK_FILL_PARTITION_BYTES (4 * 1024 * 1024)

struct opts {
	const char *workload; /* "produce" or "consume" */
	const char *bootstrap;
	bool mock;
	const char *topic;
	const char *label;
	const char *acks;
	int partitions;
	int msg_bytes;
	double duration_s;
	int linger_ms;
	int64_t rate_msgs_s; /* 0: as fast as possible */
	int64_t count;       /* consume: 0 means up to the high watermarks;
			      * produce: 0 means for duration_s */
	const char *name;    /* CSV workload column (default: the command) */
	const char *cdf;     /* write the latency CDF here */
	int fetch_wait_ms;   /* consumers' fetch.wait.max.ms */
	int queue_msgs;      /* producer's queue.buffering.max.messages */
	int repeat;          /* metadata: requests to time */
	int connections;     /* conns */
	bool active;         /* conns: keep requests in flight */
	double hold_s;       /* conns idle: how long to keep them open */
	const char *ready_file;
	bool verbose;
	int producers;       /* produce: client instances, one thread each */
	int consumers;       /* consume: client instances, one thread each */
	bool sticky;         /* produce: keyless messages, the client's own
			      * partitioner (sticky, KIP-480) instead of an
			      * explicit round robin */
	bool idempotent;     /* produce: enable.idempotence */
	int64_t txn_records; /* produce: messages per transaction (0: none) */
	int64_t txn_abort_every; /* produce: abort every K-th transaction */
	int per_second_skip; /* produce --per-second SKIP; -1: off */
};

static volatile sig_atomic_t stop_requested;

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "driver: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* ---- latency histogram -------------------------------------------------
 * Log-linear in microseconds: exact below 1024 us, then 512 sub-buckets per
 * power of two (0.2% resolution), so percentiles need no per-message array. */

#define HIST_LINEAR 1024
#define HIST_SUB 512
#define HIST_BUCKETS (HIST_LINEAR + 40 * HIST_SUB)

struct hist {
	uint64_t bucket[HIST_BUCKETS];
	uint64_t n;
	uint64_t max_us;
};

static int hist_index(uint64_t v)
{
	if (v < HIST_LINEAR)
		return (int)v;
	int e = 63 - __builtin_clzll(v); /* e >= 10 */
	int idx = HIST_LINEAR + (e - 10) * HIST_SUB + (int)((v >> (e - 9)) - HIST_SUB);
	return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* Upper bound of the values that land in bucket idx. */
static uint64_t hist_value(int idx)
{
	if (idx < HIST_LINEAR)
		return (uint64_t)idx;
	int e = (idx - HIST_LINEAR) / HIST_SUB + 10;
	uint64_t sub = (uint64_t)((idx - HIST_LINEAR) % HIST_SUB) + HIST_SUB;
	return ((sub + 1) << (e - 9)) - 1;
}

static void hist_add(struct hist *h, uint64_t v)
{
	h->bucket[hist_index(v)]++;
	h->n++;
	if (v > h->max_us)
		h->max_us = v;
}

static void hist_merge(struct hist *a, const struct hist *b)
{
	for (int i = 0; i < HIST_BUCKETS; i++)
		a->bucket[i] += b->bucket[i];
	a->n += b->n;
	if (b->max_us > a->max_us)
		a->max_us = b->max_us;
}

static double hist_percentile_ms(const struct hist *h, double p)
{
	if (h->n == 0)
		return 0;
	uint64_t rank = (uint64_t)(p / 100.0 * (double)h->n);
	if (rank >= h->n)
		rank = h->n - 1;
	uint64_t seen = 0;
	for (int i = 0; i < HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen > rank) {
			uint64_t v = hist_value(i);
			if (v > h->max_us)
				v = h->max_us;
			return (double)v / 1000.0;
		}
	}
	return (double)h->max_us / 1000.0;
}

/* Writes "ms fraction" for every non-empty bucket: a CDF for gnuplot. */
static void hist_write_cdf(const struct hist *h, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "driver: %s: %s\n", path, strerror(errno));
		return;
	}
	uint64_t seen = 0;
	for (int i = 0; i < HIST_BUCKETS && h->n; i++) {
		if (!h->bucket[i])
			continue;
		seen += h->bucket[i];
		uint64_t v = hist_value(i);
		if (v > h->max_us)
			v = h->max_us;
		fprintf(f, "%.3f %.6f\n", (double)v / 1000.0, (double)seen / (double)h->n);
	}
	fclose(f);
}

/* ---- shared client setup ----------------------------------------------- */

static void conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
	char err[512];
	if (rd_kafka_conf_set(conf, name, value, err, sizeof err) != RD_KAFKA_CONF_OK)
		die("config %s=%s: %s", name, value, err);
}

static void conf_set_int(rd_kafka_conf_t *conf, const char *name, int64_t value)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%" PRId64, value);
	conf_set(conf, name, buf);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	fprintf(stderr, "rdkafka %d %s: %s\n", level, fac, buf);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	(void)rk;
	(void)opaque;
	fprintf(stderr, "driver: client error: %s: %s\n",
		rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* --stats-file FILE: every client's statistics JSON, one document a line
 * (statistics.interval.ms 500 unless --conf sets it), to see its queue
 * (msg_cnt, msg_size), the requests it holds per broker (waitresp_cnt,
 * outbuf_cnt) and the batches it builds (batchsize, batchcnt). */
static FILE *stats_fp;

static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	(void)rk;
	(void)opaque;
	fwrite(json, 1, len, stats_fp);
	fputc('\n', stats_fp);
	return 0; /* librdkafka frees json */
}

/* --conf KEY=VALUE pairs, applied to every client after the driver's own. */
#define EXTRA_CONF_MAX 32
static const char *extra_conf[EXTRA_CONF_MAX];
static int extra_conf_count;

static void conf_extra(rd_kafka_conf_t *conf)
{
	for (int i = 0; i < extra_conf_count; i++) {
		char name[256];
		const char *eq = strchr(extra_conf[i], '=');
		size_t len = (size_t)(eq - extra_conf[i]);
		memcpy(name, extra_conf[i], len);
		name[len] = 0;
		conf_set(conf, name, eq + 1);
	}
}

static rd_kafka_conf_t *conf_base(const char *bootstrap, bool verbose)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	conf_set(conf, "bootstrap.servers", bootstrap);
	conf_set(conf, "client.id", "sluice-bench");
	if (stats_fp) {
		conf_set(conf, "statistics.interval.ms", "500");
		rd_kafka_conf_set_stats_cb(conf, on_stats);
	}
	conf_extra(conf);
	if (verbose)
		conf_set(conf, "debug", "broker,protocol,msg");
	rd_kafka_conf_set_log_cb(conf, on_log);
	rd_kafka_conf_set_error_cb(conf, on_error);
	return conf;
}

/* The mock reference: a helper client owns an in-memory cluster of one
 * broker; the workload's own client connects to it like to any broker. */
struct mock {
	rd_kafka_t *owner;
	rd_kafka_mock_cluster_t *cluster;
};

static const char *mock_start(struct mock *m, const struct opts *o)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	conf_set(conf, "log_level", "3");
	m->owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
	if (!m->owner)
		die("mock owner: %s", err);
	m->cluster = rd_kafka_mock_cluster_new(m->owner, 1);
	if (!m->cluster)
		die("rd_kafka_mock_cluster_new failed");
	rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(m->cluster, o->topic,
							    o->partitions, 1);
	if (e)
		die("mock topic create: %s", rd_kafka_err2str(e));
	return rd_kafka_mock_cluster_bootstraps(m->cluster);
}

static void mock_stop(struct mock *m)
{
	if (m->cluster)
		rd_kafka_mock_cluster_destroy(m->cluster);
	if (m->owner)
		rd_kafka_destroy(m->owner);
}

/* Number of partitions the topic has, or -1 when it is unknown. */
static int topic_partitions(rd_kafka_t *rk, const char *topic)
{
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	const struct rd_kafka_metadata *md = NULL;
	int n = -1;
	if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
			n = md->topics[0].partition_cnt;
		rd_kafka_metadata_destroy(md);
	}
	rd_kafka_topic_destroy(rkt);
	return n;
}

/* Partitions of the topic from an all-topics Metadata request (which, unlike
 * asking for the topic, never auto-creates it); -1 when it does not exist. */
static int topic_listed(rd_kafka_t *rk, const char *topic)
{
	const struct rd_kafka_metadata *md = NULL;
	int n = -1;
	if (rd_kafka_metadata(rk, 1, NULL, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return -1;
	for (int i = 0; i < md->topic_cnt; i++)
		if (strcmp(md->topics[i].topic, topic) == 0 && md->topics[i].err == 0)
			n = md->topics[i].partition_cnt;
	rd_kafka_metadata_destroy(md);
	return n;
}

/* Creates the topic with the Admin API unless it exists, then waits until
 * metadata shows its partitions. */
static void topic_ensure(rd_kafka_t *rk, const char *topic, int partitions)
{
	char err[512];
	/* Already there (librdkafka's mock has no CreateTopics: its topics
	 * come from mock-serve --topic). */
	if (topic_listed(rk, topic) >= partitions)
		return;
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, err, sizeof err);
	if (!nt)
		die("NewTopic: %s", err);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	rd_kafka_AdminOptions_set_operation_timeout(ao, 10000, err, sizeof err);
	rd_kafka_AdminOptions_set_request_timeout(ao, 10000, err, sizeof err);
	rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
	/* A failed CreateTopics is not fatal: a broker without it (librdkafka's
	 * mock) may still auto-create the topic on Metadata below. */
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 20000);
	if (!ev) {
		fprintf(stderr, "driver: CreateTopics %s: no answer in 20 s\n", topic);
	} else if (rd_kafka_event_error(ev)) {
		fprintf(stderr, "driver: CreateTopics %s: %s\n", topic,
			rd_kafka_event_error_string(ev));
	} else {
		const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
		size_t cnt = 0;
		const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
		for (size_t i = 0; i < cnt; i++) {
			rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
			if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
				fprintf(stderr, "driver: CreateTopics %s: %s (%s)\n", topic,
					rd_kafka_err2name(e),
					rd_kafka_topic_result_error_string(tr[i]) ?: "");
		}
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_AdminOptions_destroy(ao);
	rd_kafka_NewTopic_destroy(nt);
	rd_kafka_queue_destroy(q);

	int64_t deadline = now_us() + 15 * 1000000LL;
	int n;
	while ((n = topic_partitions(rk, topic)) < 1) {
		if (now_us() > deadline)
			die("topic %s does not appear in metadata", topic);
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
	}
	if (n < partitions)
		fprintf(stderr, "driver: topic %s exists with %d partitions, not %d; using %d\n",
			topic, n, partitions, n);
}

static void print_result(const struct opts *o, const char *workload, double mb_s,
			 double msgs_s, const struct hist *h)
{
	const char *target = o->label ? o->label : (o->mock ? "mock" : "broker");
	if (o->name)
		workload = o->name;
	if (h && o->cdf)
		hist_write_cdf(h, o->cdf);
	if (h)
		printf("csv:%s,%s,%d,%d,%.1f,%.0f,%.2f,%.2f,%.2f\n", workload, target,
		       o->msg_bytes, o->partitions, mb_s, msgs_s,
		       hist_percentile_ms(h, 50), hist_percentile_ms(h, 99),
		       hist_percentile_ms(h, 99.9));
	else
		printf("csv:%s,%s,%d,%d,%.1f,%.0f,,,\n", workload, target, o->msg_bytes,
		       o->partitions, mb_s, msgs_s);
	fflush(stdout);
}

/* ---- produce ------------------------------------------------------------ */

struct produce_state {
	struct hist hist;
	struct hist commit_hist; /* --txn-records: commit_transaction() after a flush */
	uint64_t txns_committed, txns_aborted;
	uint64_t records_committed;
	uint64_t delivered;
	uint64_t delivered_bytes;
	uint64_t failed;
	rd_kafka_resp_err_t first_err;
	int64_t start_us;
	int64_t last_delivery_us;
	struct hist **sec; /* --per-second: one per second of produce() time,
			    * allocated on first use; NULL when off */
};

#define PER_SECOND_MAX 3600

/* Each message's opaque is its produce() time in microseconds. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	struct produce_state *st = opaque;
	int64_t t = now_us();
	if (m->err) {
		if (!st->failed)
			st->first_err = m->err;
		st->failed++;
		return;
	}
	int64_t sent = (int64_t)(intptr_t)m->_private;
	hist_add(&st->hist, (uint64_t)(t - sent));
	if (st->sec) {
		int64_t s = (sent - st->start_us) / 1000000;
		s = s < 0 ? 0 : s >= PER_SECOND_MAX ? PER_SECOND_MAX - 1 : s;
		if (!st->sec[s] && !(st->sec[s] = calloc(1, sizeof **st->sec)))
			die("out of memory");
		hist_add(st->sec[s], (uint64_t)(t - sent));
	}
	st->delivered++;
	st->delivered_bytes += m->len;
	st->last_delivery_us = t;
}

static void txn_check(const char *what, rd_kafka_error_t *e);

static rd_kafka_t *producer_new(const struct opts *o, const char *bootstrap,
				struct produce_state *st)
{
	char err[512];
	rd_kafka_conf_t *conf = conf_base(bootstrap, o->verbose);
	conf_set(conf, "acks", o->acks);
	conf_set_int(conf, "linger.ms", o->linger_ms);
	/* Let the broker, not the client's queues, be the bottleneck. */
	conf_set_int(conf, "queue.buffering.max.messages", o->queue_msgs);
	conf_set(conf, "queue.buffering.max.kbytes", "524288");
	conf_set(conf, "batch.num.messages", "10000");
	conf_set(conf, "batch.size", "1000000");
	conf_set(conf, "compression.type", "none");
	conf_set(conf, "message.timeout.ms", "60000");
	conf_set(conf, "enable.idempotence", o->idempotent || o->txn_records ? "true" : "false");
	/* Again: they override the producer's own (batch.size, ...). */
	conf_extra(conf);
	if (o->txn_records) {
		static int instances;
		char id[64];
		snprintf(id, sizeof id, "driver-%d-%d", (int)getpid(),
			 __atomic_fetch_add(&instances, 1, __ATOMIC_RELAXED));
		conf_set(conf, "transactional.id", id);
	}
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_opaque(conf, st);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
	if (!rk)
		die("producer: %s", err);
	if (o->txn_records)
		txn_check("init_transactions", rd_kafka_init_transactions(rk, 60000));
	return rk;
}

/* ---- transactions (--txn-records) ---- */

static void txn_check(const char *what, rd_kafka_error_t *e)
{
	if (e)
		die("%s: %s", what, rd_kafka_error_string(e));
}

/* Ends the open transaction: flush (its messages delivered), then time the
 * commit alone, which is then EndTxn's round trip; or abort it. */
static void txn_end(const struct opts *o, rd_kafka_t *rk, struct produce_state *st,
		    int64_t records)
{
	rd_kafka_flush(rk, 60000);
	uint64_t n = st->txns_committed + st->txns_aborted + 1;
	if (o->txn_abort_every > 0 && n % (uint64_t)o->txn_abort_every == 0) {
		txn_check("abort_transaction", rd_kafka_abort_transaction(rk, 60000));
		st->txns_aborted++;
		return;
	}
	int64_t t0 = now_us();
	txn_check("commit_transaction", rd_kafka_commit_transaction(rk, 60000));
	hist_add(&st->commit_hist, (uint64_t)(now_us() - t0));
	st->txns_committed++;
	st->records_committed += (uint64_t)records;
}

/* Produces one message to partition p; returns false when the local queue
 * is full (the caller polls and tries again). */
static bool produce_one(rd_kafka_topic_t *rkt, int p, char *payload, size_t len)
{
	/* msgflags 0: librdkafka neither copies nor frees the payload, which is
	 * one static buffer that outlives every message. */
	if (rd_kafka_produce(rkt, p, 0, payload, len, NULL, 0,
			     (void *)(intptr_t)now_us()) == 0)
		return true;
	rd_kafka_resp_err_t e = rd_kafka_last_error();
	if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
		return false;
	die("produce: %s", rd_kafka_err2str(e));
	return false;
}

static void sleep_until_us(int64_t t)
{
	int64_t d = t - now_us();
	if (d <= 0)
		return;
	struct timespec ts = { (time_t)(d / 1000000), (long)(d % 1000000) * 1000 };
	nanosleep(&ts, NULL);
}

/* Produces for duration_s (or until count messages when count > 0), then
 * waits for every delivery report. Returns the elapsed seconds from the
 * first produce() to the last delivery. */
static double produce_run(const struct opts *o, rd_kafka_t *rk, int partitions, int first_p,
			  int64_t count, struct produce_state *st, bool quiet)
{
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);
	char *payload = malloc((size_t)o->msg_bytes);
	if (!payload)
		die("out of memory");
	/* Incompressible-looking bytes, in case compression is ever enabled. */
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	for (int i = 0; i < o->msg_bytes; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		payload[i] = (char)x;
	}

	int64_t start = now_us();
	int64_t end = start + (int64_t)(o->duration_s * 1e6);
	int64_t sent = 0;
	int64_t in_txn = 0; /* messages in the open transaction */
	int64_t next_report = start + 1000000;
	uint64_t last_delivered = 0;
	int p = first_p % partitions;
	st->start_us = start;

	while (!stop_requested) {
		int64_t t = now_us();
		if (count > 0 ? sent >= count : t >= end)
			break;
		if (!quiet && t >= next_report) {
			fprintf(stderr, "driver: %5.1f s  %" PRIu64 " msgs/s delivered, %" PRIu64
				" failed\n", (double)(t - start) / 1e6,
				st->delivered - last_delivered, st->failed);
			last_delivered = st->delivered;
			next_report += 1000000;
		}
		int64_t want; /* messages that should have been sent by now */
		if (o->rate_msgs_s > 0)
			want = (t - start) * o->rate_msgs_s / 1000000 + 1;
		else
			want = sent + 1000;
		if (count > 0 && want > count)
			want = count;
		while (sent < want) {
			if (o->txn_records && in_txn == 0)
				txn_check("begin_transaction", rd_kafka_begin_transaction(rk));
			if (!produce_one(rkt, o->sticky ? RD_KAFKA_PARTITION_UA : p, payload,
					 (size_t)o->msg_bytes)) {
				rd_kafka_poll(rk, 1);
				break;
			}
			sent++;
			if (++p == partitions)
				p = 0;
			if (o->txn_records && ++in_txn == o->txn_records) {
				txn_end(o, rk, st, in_txn);
				in_txn = 0;
			}
		}
		rd_kafka_poll(rk, 0);
		if (o->rate_msgs_s > 0) {
			/* Pace in 1 ms ticks. */
			sleep_until_us(t + 1000);
		}
	}

	if (in_txn > 0)
		txn_end(o, rk, st, in_txn);
	while (rd_kafka_outq_len(rk) > 0 && !stop_requested)
		rd_kafka_poll(rk, 50);
	rd_kafka_flush(rk, stop_requested ? 1000 : 60000);
	rd_kafka_poll(rk, 0);
	rd_kafka_topic_destroy(rkt);
	free(payload);
	int64_t last = st->last_delivery_us > start ? st->last_delivery_us : now_us();
	return (double)(last - start) / 1e6;
}

/* Runs fn on each of the n jobs (an array, stride bytes apart): on this
 * thread when there is one, else on a thread each, and waits for all. */
static void run_clients(int n, void *(*fn)(void *), void *jobs, size_t stride)
{
	if (n == 1) {
		fn(jobs);
		return;
	}
	pthread_t th[CLIENTS_MAX];
	for (int i = 0; i < n; i++)
		if (pthread_create(&th[i], NULL, fn, (char *)jobs + (size_t)i * stride) != 0)
			die("pthread_create failed");
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

/* One of --producers client instances, on a thread of its own. */
struct producer_job {
	struct opts o; /* its share of the rate and of the count */
	rd_kafka_t *rk;
	int partitions, first_p;
	struct produce_state *st;
	bool quiet;
};

static void *producer_thread(void *arg)
{
	struct producer_job *j = arg;
	produce_run(&j->o, j->rk, j->partitions, j->first_p, j->o.count, j->st, j->quiet);
	return NULL;
}

/* Adds b's deliveries into a (the run's totals over every producer). */
static void produce_state_merge(struct produce_state *a, const struct produce_state *b)
{
	hist_merge(&a->hist, &b->hist);
	hist_merge(&a->commit_hist, &b->commit_hist);
	a->txns_committed += b->txns_committed;
	a->txns_aborted += b->txns_aborted;
	a->records_committed += b->records_committed;
	a->delivered += b->delivered;
	a->delivered_bytes += b->delivered_bytes;
	if (!a->failed && b->failed)
		a->first_err = b->first_err;
	a->failed += b->failed;
	if (!a->start_us || (b->start_us && b->start_us < a->start_us))
		a->start_us = b->start_us;
	if (b->last_delivery_us > a->last_delivery_us)
		a->last_delivery_us = b->last_delivery_us;
	for (int s = 0; a->sec && b->sec && s < PER_SECOND_MAX; s++) {
		if (!b->sec[s])
			continue;
		if (!a->sec[s] && !(a->sec[s] = calloc(1, sizeof **a->sec)))
			die("out of memory");
		hist_merge(a->sec[s], b->sec[s]);
	}
}

/* --per-second: the latency by second of produce() time, and over the
 * records sent from second skip on. */
static void print_per_second(const struct produce_state *st, int skip)
{
	struct hist *after = calloc(1, sizeof *after);
	if (!after)
		die("out of memory");
	for (int s = 0; s < PER_SECOND_MAX; s++) {
		const struct hist *h = st->sec[s];
		if (!h)
			continue;
		printf("sec:%d,%" PRIu64 ",%.2f,%.2f,%.2f\n", s, h->n, hist_percentile_ms(h, 50),
		       hist_percentile_ms(h, 99), (double)h->max_us / 1000.0);
		if (s >= skip)
			hist_merge(after, h);
	}
	printf("after:%d,%" PRIu64 ",%.2f,%.2f\n", skip, after->n, hist_percentile_ms(after, 50),
	       hist_percentile_ms(after, 99));
	free(after);
}

static int cmd_produce(const struct opts *o)
{
	struct mock m = { 0 };
	const char *bootstrap = o->mock ? mock_start(&m, o) : o->bootstrap;
	int n_prod = o->producers;
	struct producer_job *jobs = calloc((size_t)n_prod, sizeof *jobs);
	struct produce_state *st = calloc(1, sizeof *st);
	if (!jobs || !st)
		die("out of memory");
	if (o->per_second_skip >= 0 && !(st->sec = calloc(PER_SECOND_MAX, sizeof *st->sec)))
		die("out of memory");
	for (int i = 0; i < n_prod; i++) {
		struct producer_job *j = &jobs[i];
		j->st = calloc(1, sizeof *j->st);
		if (!j->st)
			die("out of memory");
		if (o->per_second_skip >= 0 &&
		    !(j->st->sec = calloc(PER_SECOND_MAX, sizeof *j->st->sec)))
			die("out of memory");
		j->o = *o;
		/* Shares of the offered rate and of the count; the first
		 * producer takes the remainders. */
		j->o.rate_msgs_s = o->rate_msgs_s / n_prod + (i == 0 ? o->rate_msgs_s % n_prod : 0);
		j->o.count = o->count / n_prod + (i == 0 ? o->count % n_prod : 0);
		j->rk = producer_new(&j->o, bootstrap, j->st);
		j->quiet = i > 0;
	}
	int partitions = o->partitions;
	if (!o->mock) {
		topic_ensure(jobs[0].rk, o->topic, o->partitions);
		int n = topic_partitions(jobs[0].rk, o->topic);
		if (n > 0 && n < partitions)
			partitions = n;
	}
	for (int i = 0; i < n_prod; i++) {
		jobs[i].partitions = partitions;
		/* Each producer starts its round robin somewhere else. */
		jobs[i].first_p = (int)((int64_t)partitions * i / n_prod);
	}
	run_clients(n_prod, producer_thread, jobs, sizeof *jobs);
	for (int i = 0; i < n_prod; i++)
		produce_state_merge(st, jobs[i].st);

	double secs = (double)(st->last_delivery_us > st->start_us ? st->last_delivery_us - st->start_us
								   : 1) / 1e6;
	double mb_s = (double)st->delivered_bytes / secs / 1e6;
	double msgs_s = (double)st->delivered / secs;
	const char *workload = o->rate_msgs_s > 0 ? "produce-rate" : "produce";

	printf("%s %s: %" PRIu64 " msgs of %d B to %d partitions in %.2f s (%d producer%s, %s,"
	       " acks=%s linger=%d ms", workload, o->mock ? "mock" : o->bootstrap, st->delivered,
	       o->msg_bytes, partitions, secs, n_prod, n_prod == 1 ? "" : "s",
	       o->sticky ? "sticky partitioner" : "round robin", o->acks, o->linger_ms);
	if (o->rate_msgs_s > 0)
		printf(" offered %" PRId64 " msgs/s", o->rate_msgs_s);
	printf(")\n  %.1f MB/s  %.0f msgs/s  latency p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms\n",
	       mb_s, msgs_s, hist_percentile_ms(&st->hist, 50),
	       hist_percentile_ms(&st->hist, 99), hist_percentile_ms(&st->hist, 99.9),
	       (double)st->hist.max_us / 1000.0);
	if (st->failed)
		printf("  %" PRIu64 " deliveries FAILED (first: %s)\n", st->failed,
		       rd_kafka_err2name(st->first_err));
	if (o->txn_records)
		printf("  transactions of %" PRId64 ": %" PRIu64 " committed (%" PRIu64
		       " msgs), %" PRIu64 " aborted; commit p50 %.2f ms  p99 %.2f ms  max %.2f ms\n",
		       o->txn_records, st->txns_committed, st->records_committed, st->txns_aborted,
		       hist_percentile_ms(&st->commit_hist, 50),
		       hist_percentile_ms(&st->commit_hist, 99),
		       (double)st->commit_hist.max_us / 1000.0);
	if (st->sec)
		print_per_second(st, o->per_second_skip);
	print_result(o, workload, mb_s, msgs_s, &st->hist);
	printf("stat:elapsed_s=%.3f,msgs=%" PRIu64 ",bytes=%" PRIu64, secs, st->delivered,
	       st->delivered_bytes);
	if (o->txn_records)
		printf(",txns_committed=%" PRIu64 ",txns_aborted=%" PRIu64
		       ",msgs_committed=%" PRIu64 ",commit_p50_ms=%.3f,commit_p99_ms=%.3f",
		       st->txns_committed, st->txns_aborted, st->records_committed,
		       hist_percentile_ms(&st->commit_hist, 50),
		       hist_percentile_ms(&st->commit_hist, 99));
	printf("\n");

	int rc = st->failed || st->delivered == 0 ? 1 : 0;
	for (int i = 0; i < n_prod; i++) {
		rd_kafka_destroy(jobs[i].rk);
		free(jobs[i].st);
	}
	free(jobs);
	mock_stop(&m);
	free(st);
	return rc;
}

/* ---- consume ------------------------------------------------------------ */

/* A consumer for manual assignment (nothing is committed). */
static rd_kafka_t *consumer_new(const struct opts *o, const char *bootstrap, bool eof)
{
	char err[512];
	rd_kafka_conf_t *conf = conf_base(bootstrap, o->verbose);
	/* A group.id is required by the high-level consumer even with manual
	 * assignment; nothing is committed. */
	conf_set(conf, "group.id", "sluice-bench");
	conf_set(conf, "enable.auto.commit", "false");
	conf_set(conf, "enable.auto.offset.store", "false");
	conf_set(conf, "auto.offset.reset", "earliest");
	conf_set(conf, "fetch.max.bytes", "52428800");
	conf_set(conf, "max.partition.fetch.bytes", "8388608");
	conf_set(conf, "queued.max.messages.kbytes", "262144");
	conf_set(conf, "check.crcs", "false");
	if (o->fetch_wait_ms > 0)
		conf_set_int(conf, "fetch.wait.max.ms", o->fetch_wait_ms);
	if (eof)
		conf_set(conf, "enable.partition.eof", "true");
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
	if (!rk)
		die("consumer: %s", err);
	rd_kafka_poll_set_consumer(rk);
	return rk;
}


/* Sum of (high - low) watermarks: what a catch-up read from the beginning
 * will see. */
static int64_t topic_backlog(rd_kafka_t *rk, const char *topic, int partitions)
{
	int64_t total = 0;
	for (int p = 0; p < partitions; p++) {
		int64_t lo = 0, hi = 0;
		rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000);
		if (e)
			die("watermarks %s/%d: %s", topic, p, rd_kafka_err2str(e));
		total += hi - lo;
	}
	return total;
}

/* What every consumer of a run shares: the messages wanted in total and
 * how many have arrived (once they all have, every consumer stops). */
struct consume_shared {
	int64_t want;
	int64_t got; /* __atomic */
	int64_t start;
};

/* One of --consumers client instances, on a thread of its own, reading
 * its share of the partitions. */
struct consumer_job {
	struct consume_shared *sh;
	rd_kafka_t *rk;
	int64_t got, bytes, errors, first_msg, last_msg;
};

static void *consumer_thread(void *arg)
{
	struct consumer_job *j = arg;
	struct consume_shared *sh = j->sh;
	int64_t idle_since = sh->start, seen = 0;
	while (__atomic_load_n(&sh->got, __ATOMIC_RELAXED) < sh->want && !stop_requested) {
		rd_kafka_message_t *msg = rd_kafka_consumer_poll(j->rk, 100);
		int64_t t = now_us();
		if (!msg) {
			/* Idle while the others still read is fine: only a run
			 * where nobody gets anything gives up. */
			int64_t g = __atomic_load_n(&sh->got, __ATOMIC_RELAXED);
			if (g != seen) {
				seen = g;
				idle_since = t;
			} else if (t - idle_since > CONSUME_IDLE_US) {
				fprintf(stderr, "driver: no message for %lld s, stopping at %" PRId64
					" of %" PRId64 "\n", CONSUME_IDLE_US / 1000000, g, sh->want);
				break;
			}
			continue;
		}
		if (msg->err) {
			if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && j->errors++ < 5)
				fprintf(stderr, "driver: consume error: %s\n", rd_kafka_message_errstr(msg));
		} else {
			if (!j->first_msg)
				j->first_msg = t;
			j->got++;
			j->bytes += (int64_t)msg->len;
			j->last_msg = idle_since = t;
			__atomic_add_fetch(&sh->got, 1, __ATOMIC_RELAXED);
		}
		rd_kafka_message_destroy(msg);
	}
	return NULL;
}

static int cmd_consume(const struct opts *o)
{
	struct mock m = { 0 };
	const char *bootstrap = o->mock ? mock_start(&m, o) : o->bootstrap;
	int partitions = o->partitions;

	if (o->mock) {
		/* The mock starts empty: load it first (not timed). */
		struct produce_state *st = calloc(1, sizeof *st);
		if (!st)
			die("out of memory");
		rd_kafka_t *prk = producer_new(o, bootstrap, st);
		int64_t fill = (int64_t)partitions * (MOCK_FILL_PARTITION_BYTES / o->msg_bytes);
		if (fill < partitions)
			fill = partitions;
		if (o->count > 0 && o->count < fill)
			fill = o->count;
		produce_run(o, prk, partitions, 0, fill, st, true);
		if (st->failed)
			die("mock fill: %" PRIu64 " deliveries failed", st->failed);
		rd_kafka_destroy(prk);
		free(st);
	}

	rd_kafka_t *rk = consumer_new(o, bootstrap, false);

	if (!o->mock) {
		int n = topic_partitions(rk, o->topic);
		if (n < 1)
			die("topic %s not found", o->topic);
		if (n < partitions)
			partitions = n;
	}
	int64_t want = topic_backlog(rk, o->topic, partitions);
	if (o->count > 0 && o->count < want)
		want = o->count;
	if (want == 0)
		die("topic %s is empty", o->topic);

	int n_cons = o->consumers < partitions ? o->consumers : partitions;
	struct consume_shared sh = { .want = want, .start = now_us() };
	struct consumer_job *jobs = calloc((size_t)n_cons, sizeof *jobs);
	if (!jobs)
		die("out of memory");
	for (int i = 0; i < n_cons; i++) {
		struct consumer_job *j = &jobs[i];
		j->sh = &sh;
		j->rk = i == 0 ? rk : consumer_new(o, bootstrap, false);
		/* Partitions i, i + n, i + 2n...: an even static split. */
		rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_new(partitions / n_cons + 1);
		for (int p = i; p < partitions; p += n_cons)
			rd_kafka_topic_partition_list_add(tpl, o->topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
		rd_kafka_resp_err_t e = rd_kafka_assign(j->rk, tpl);
		if (e)
			die("assign: %s", rd_kafka_err2str(e));
		rd_kafka_topic_partition_list_destroy(tpl);
	}
	run_clients(n_cons, consumer_thread, jobs, sizeof *jobs);
	int64_t got = 0, bytes = 0, first_msg = 0, last_msg = sh.start;
	for (int i = 0; i < n_cons; i++) {
		got += jobs[i].got;
		bytes += jobs[i].bytes;
		if (jobs[i].first_msg && (!first_msg || jobs[i].first_msg < first_msg))
			first_msg = jobs[i].first_msg;
		if (jobs[i].last_msg > last_msg)
			last_msg = jobs[i].last_msg;
	}

	/* The rate is taken from the first message to the last, so that the
	 * client's start-up (metadata, offset lookup, first fetch wait: about
	 * 0.5 s with librdkafka 2.0) does not dilute a short read; the total
	 * is printed too. */
	double total_s = (double)(last_msg - sh.start) / 1e6;
	double secs = first_msg ? (double)(last_msg - first_msg) / 1e6 : 0;
	if (secs <= 0)
		secs = 1e-6;
	double mb_s = (double)bytes / secs / 1e6;
	double msgs_s = (double)got / secs;
	printf("consume %s: %" PRId64 " of %" PRId64 " msgs (%.1f MB) from %d partitions with %d"
	       " consumer%s in %.2f s after the first message, %.2f s after assign\n"
	       "  %.1f MB/s  %.0f msgs/s\n",
	       o->mock ? "mock" : o->bootstrap, got, want, (double)bytes / 1e6, partitions, n_cons,
	       n_cons == 1 ? "" : "s", secs, total_s, mb_s, msgs_s);
	print_result(o, "consume", mb_s, msgs_s, NULL);
	printf("stat:elapsed_s=%.3f,msgs=%" PRId64 ",bytes=%" PRId64 "\n", secs, got, bytes);

	for (int i = 0; i < n_cons; i++) {
		rd_kafka_assign(jobs[i].rk, NULL);
		rd_kafka_consumer_close(jobs[i].rk);
		rd_kafka_destroy(jobs[i].rk);
	}
	free(jobs);
	mock_stop(&m);
	return got >= want ? 0 : 1;
}

static int64_t parse_int(const char *name, const char *s, int64_t lo, int64_t hi);

/* ---- end-to-end latency --------------------------------------------------
 * One producer at a fixed rate and one consumer at the end of the log, in
 * the same process: each message carries its produce() time (CLOCK_MONOTONIC
 * microseconds) in its first 8 bytes; the consumer records now - that. */

struct e2e_consumer {
	rd_kafka_t *rk;
	struct hist hist;
	int64_t got;
	int64_t want;           /* set by the producer side when it is done */
	volatile int producing; /* 0 once want is final */
	volatile int ready;     /* every partition has a fetch position */
	int partitions;
	const char *topic;
	uint8_t *eof_seen; /* per partition */
	int eof_count;
};

static void *e2e_consume_thread(void *arg)
{
	struct e2e_consumer *c = arg;
	int64_t idle_since = now_us();
	while (!stop_requested) {
		if (!c->producing && c->got >= c->want)
			break;
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 50);
		int64_t t = now_us();
		if (!m) {
			if (!c->producing && t - idle_since > 10 * 1000000LL)
				break;
			continue;
		}
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			/* Ready once every partition has answered a fetch at
			 * its end. */
			int32_t p = m->partition;
			if (p >= 0 && p < c->partitions && !c->eof_seen[p]) {
				c->eof_seen[p] = 1;
				if (++c->eof_count == c->partitions)
					c->ready = 1;
			}
		} else if (!m->err && m->len >= 8) {
			int64_t sent;
			memcpy(&sent, m->payload, 8);
			if (sent > 0 && sent <= t) {
				hist_add(&c->hist, (uint64_t)(t - sent));
				__atomic_add_fetch(&c->got, 1, __ATOMIC_RELAXED);
			}
			idle_since = t;
		}
		rd_kafka_message_destroy(m);
	}
	return NULL;
}

static int cmd_e2e(const struct opts *o)
{
	struct mock m = { 0 };
	const char *bootstrap = o->mock ? mock_start(&m, o) : o->bootstrap;
	if (o->msg_bytes < 8)
		die("e2e: --msg-bytes must be at least 8");
	if (o->rate_msgs_s <= 0)
		die("e2e: --rate is required");
	struct produce_state *st = calloc(1, sizeof *st);
	struct e2e_consumer *c = calloc(1, sizeof *c);
	if (!st || !c)
		die("out of memory");
	rd_kafka_t *prk = producer_new(o, bootstrap, st);
	int partitions = o->partitions;
	if (!o->mock) {
		topic_ensure(prk, o->topic, o->partitions);
		int n = topic_partitions(prk, o->topic);
		if (n > 0 && n < partitions)
			partitions = n;
	}

	/* The consumer starts at the end of every partition. */
	c->rk = consumer_new(o, bootstrap, true);
	c->partitions = partitions;
	c->eof_seen = calloc((size_t)partitions, 1);
	if (!c->eof_seen)
		die("out of memory");
	c->topic = o->topic;
	c->producing = 1;
	rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_new(partitions);
	for (int p = 0; p < partitions; p++)
		rd_kafka_topic_partition_list_add(tpl, o->topic, p)->offset = RD_KAFKA_OFFSET_END;
	if (rd_kafka_assign(c->rk, tpl))
		die("e2e: assign failed");
	rd_kafka_topic_partition_list_destroy(tpl);
	pthread_t th;
	if (pthread_create(&th, NULL, e2e_consume_thread, c))
		die("pthread_create failed");
	int64_t wait_until = now_us() + 15 * 1000000LL;
	while (!c->ready && now_us() < wait_until && !stop_requested)
		sleep_until_us(now_us() + 20000);
	if (!c->ready)
		fprintf(stderr, "driver: e2e: not every partition reached its end after 15 s; producing anyway\n");

	rd_kafka_topic_t *rkt = rd_kafka_topic_new(prk, o->topic, NULL);
	char *payload = calloc(1, (size_t)o->msg_bytes);
	if (!payload)
		die("out of memory");
	int64_t start = now_us(), end = start + (int64_t)(o->duration_s * 1e6);
	int64_t sent = 0;
	int p = 0;
	while (!stop_requested) {
		int64_t t = now_us();
		if (t >= end)
			break;
		int64_t want = (t - start) * o->rate_msgs_s / 1000000 + 1;
		while (sent < want) {
			int64_t ts = now_us();
			memcpy(payload, &ts, 8);
			if (rd_kafka_produce(rkt, p, RD_KAFKA_MSG_F_COPY, payload,
					     (size_t)o->msg_bytes, NULL, 0, (void *)(intptr_t)ts)) {
				if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL)
					die("produce: %s", rd_kafka_err2str(rd_kafka_last_error()));
				rd_kafka_poll(prk, 1);
				break;
			}
			sent++;
			if (++p == partitions)
				p = 0;
		}
		rd_kafka_poll(prk, 0);
		sleep_until_us(t + 1000);
	}
	rd_kafka_flush(prk, 60000);
	rd_kafka_poll(prk, 0);
	c->want = (int64_t)st->delivered;
	__atomic_store_n(&c->producing, 0, __ATOMIC_SEQ_CST);
	pthread_join(th, NULL);
	double secs = (double)(now_us() - start) / 1e6;

	printf("e2e %s: %" PRId64 " of %" PRIu64 " delivered msgs of %d B consumed (%d partitions, "
	       "offered %" PRId64 " msgs/s, fetch.wait.max.ms %d)\n"
	       "  end-to-end p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms;"
	       " produce p50 %.2f ms p99 %.2f ms\n",
	       o->mock ? "mock" : o->bootstrap, c->got, st->delivered, o->msg_bytes, partitions,
	       o->rate_msgs_s, o->fetch_wait_ms, hist_percentile_ms(&c->hist, 50),
	       hist_percentile_ms(&c->hist, 99), hist_percentile_ms(&c->hist, 99.9),
	       (double)c->hist.max_us / 1000.0, hist_percentile_ms(&st->hist, 50),
	       hist_percentile_ms(&st->hist, 99));
	print_result(o, "e2e", (double)c->got * o->msg_bytes / secs / 1e6,
		     (double)c->got / secs, &c->hist);
	printf("stat:elapsed_s=%.3f,msgs=%" PRIu64 ",bytes=%" PRIu64 "\n", secs, st->delivered,
	       st->delivered_bytes);
	int rc = (c->got == 0 || c->got < c->want || st->failed) ? 1 : 0;
	rd_kafka_topic_destroy(rkt);
	rd_kafka_consumer_close(c->rk);
	rd_kafka_destroy(c->rk);
	rd_kafka_destroy(prk);
	mock_stop(&m);
	free(payload);
	free(st);
	free(c->eof_seen);
	free(c);
	return rc;
}

/* ---- metadata ------------------------------------------------------------ */

static int cmd_metadata(const struct opts *o)
{
	struct mock m = { 0 };
	const char *bootstrap = o->mock ? mock_start(&m, o) : o->bootstrap;
	struct produce_state *st = calloc(1, sizeof *st);
	struct hist *h = calloc(1, sizeof *h);
	if (!st || !h)
		die("out of memory");
	rd_kafka_t *rk = producer_new(o, bootstrap, st);
	int topics = 0, parts = 0;
	int64_t t0 = now_us();
	for (int i = 0; i < o->repeat && !stop_requested; i++) {
		const struct rd_kafka_metadata *md = NULL;
		int64_t t = now_us();
		rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, 30000);
		if (e)
			die("metadata: %s", rd_kafka_err2str(e));
		/* The first request also pays for the connection. */
		if (i > 0 || o->repeat == 1)
			hist_add(h, (uint64_t)(now_us() - t));
		topics = md->topic_cnt;
		parts = 0;
		for (int k = 0; k < md->topic_cnt; k++)
			parts += md->topics[k].partition_cnt;
		rd_kafka_metadata_destroy(md);
	}
	double secs = (double)(now_us() - t0) / 1e6;
	printf("metadata %s: %d topics, %d partitions; all-topics Metadata p50 %.2f ms p99 %.2f ms"
	       " max %.2f ms (%d requests)\n", o->mock ? "mock" : o->bootstrap, topics, parts,
	       hist_percentile_ms(h, 50), hist_percentile_ms(h, 99), (double)h->max_us / 1000.0,
	       o->repeat);
	struct opts o2 = *o;
	o2.partitions = parts;
	print_result(&o2, "metadata", 0, (double)o->repeat / secs, h);
	rd_kafka_destroy(rk);
	mock_stop(&m);
	free(st);
	free(h);
	return 0;
}

/* ---- raw connections -----------------------------------------------------
 * No librdkafka here: N plain sockets speaking just enough Kafka protocol
 * (ApiVersions v0, Metadata v1 for no topics) to cost the broker what a
 * client connection costs. */

struct rawconn {
	int fd;
	int32_t corr;
	int64_t sent_us;
	uint32_t need; /* bytes of the response still expected (after the size) */
	uint8_t hdr[4];
	int hdr_have;
};

static size_t put_request(uint8_t *b, int16_t api, int16_t ver, int32_t corr)
{
	static const char client[] = "sluice-bench";
	size_t n = 4;
	b[n++] = (uint8_t)(api >> 8);
	b[n++] = (uint8_t)api;
	b[n++] = (uint8_t)(ver >> 8);
	b[n++] = (uint8_t)ver;
	for (int i = 3; i >= 0; i--)
		b[n++] = (uint8_t)((uint32_t)corr >> (8 * i));
	b[n++] = 0;
	b[n++] = (uint8_t)(sizeof client - 1);
	memcpy(b + n, client, sizeof client - 1);
	n += sizeof client - 1;
	if (api == 3) { /* Metadata v1: an empty topic array (no topics) */
		memset(b + n, 0, 4);
		n += 4;
	}
	uint32_t len = (uint32_t)(n - 4);
	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(len >> (8 * (3 - i)));
	return n;
}

static int rawconn_send(struct rawconn *c, int16_t api, int16_t ver)
{
	uint8_t b[64];
	size_t n = put_request(b, api, ver, ++c->corr);
	c->sent_us = now_us();
	c->need = 0;
	c->hdr_have = 0;
	/* Small and the socket is empty: one send writes it all. */
	return send(c->fd, b, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

/* Reads what is there; returns 1 when a whole response has arrived, 0 when
 * more is to come, -1 on error or close. */
static int rawconn_read(struct rawconn *c)
{
	uint8_t buf[16384];
	for (;;) {
		size_t want = c->hdr_have < 4 ? (size_t)(4 - c->hdr_have)
					       : (c->need < sizeof buf ? c->need : sizeof buf);
		ssize_t r = recv(c->fd, c->hdr_have < 4 ? c->hdr + c->hdr_have : buf, want, 0);
		if (r == 0)
			return -1;
		if (r < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
		if (c->hdr_have < 4) {
			c->hdr_have += (int)r;
			if (c->hdr_have == 4) {
				c->need = (uint32_t)c->hdr[0] << 24 | (uint32_t)c->hdr[1] << 16 |
					  (uint32_t)c->hdr[2] << 8 | c->hdr[3];
				if (c->need > 64 * 1024 * 1024)
					return -1;
			}
		} else {
			c->need -= (uint32_t)r;
		}
		if (c->hdr_have == 4 && c->need == 0)
			return 1;
	}
}

/* Blocking request/response, for the set-up phase. */
static int rawconn_roundtrip(struct rawconn *c, int16_t api, int16_t ver)
{
	if (rawconn_send(c, api, ver))
		return -1;
	int64_t deadline = now_us() + 10 * 1000000LL;
	for (;;) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		int r = poll(&pfd, 1, 100);
		if (r < 0 && errno != EINTR)
			return -1;
		if (r > 0) {
			int d = rawconn_read(c);
			if (d)
				return d > 0 ? 0 : -1;
		}
		if (now_us() > deadline)
			return -1;
	}
}

static int cmd_conns(const struct opts *o)
{
	if (!o->bootstrap)
		die("conns needs --bootstrap HOST:PORT");
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)o->connections + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	char host[256];
	const char *colon = strrchr(o->bootstrap, ':');
	if (!colon || (size_t)(colon - o->bootstrap) >= sizeof host)
		die("bad --bootstrap %s", o->bootstrap);
	memcpy(host, o->bootstrap, (size_t)(colon - o->bootstrap));
	host[colon - o->bootstrap] = 0;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai;
	if (getaddrinfo(host, colon + 1, &hints, &ai))
		die("cannot resolve %s", o->bootstrap);

	int n = o->connections;
	struct rawconn *cs = calloc((size_t)n, sizeof *cs);
	struct pollfd *pfds = calloc((size_t)n, sizeof *pfds);
	struct hist *h = calloc(1, sizeof *h);
	if (!cs || !pfds || !h)
		die("out of memory");
	int64_t t0 = now_us();
	for (int i = 0; i < n; i++) {
		cs[i].fd = socket(ai->ai_family, SOCK_STREAM, 0);
		if (cs[i].fd < 0 || connect(cs[i].fd, ai->ai_addr, ai->ai_addrlen))
			die("connection %d: %s", i, strerror(errno));
		int one = 1;
		setsockopt(cs[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		fcntl(cs[i].fd, F_SETFL, fcntl(cs[i].fd, F_GETFL) | O_NONBLOCK);
		if (rawconn_roundtrip(&cs[i], 18, 0) || rawconn_roundtrip(&cs[i], 3, 1))
			die("connection %d: no answer to ApiVersions/Metadata", i);
	}
	freeaddrinfo(ai);
	double setup_s = (double)(now_us() - t0) / 1e6;
	if (o->ready_file) {
		FILE *f = fopen(o->ready_file, "w");
		if (f)
			fclose(f);
	}

	int64_t done = 0, errors = 0;
	double secs = 0;
	if (!o->active) {
		sleep_until_us(now_us() + (int64_t)(o->hold_s * 1e6));
	} else {
		int64_t start = now_us(), end = start + (int64_t)(o->duration_s * 1e6);
		for (int i = 0; i < n; i++) {
			pfds[i].fd = cs[i].fd;
			pfds[i].events = POLLIN;
			if (rawconn_send(&cs[i], (i & 1) ? 3 : 18, (i & 1) ? 1 : 0))
				die("connection %d: send failed", i);
		}
		while (!stop_requested && now_us() < end) {
			int r = poll(pfds, (nfds_t)n, 100);
			if (r < 0 && errno != EINTR)
				die("poll: %s", strerror(errno));
			for (int i = 0; i < n && r > 0; i++) {
				if (!pfds[i].revents)
					continue;
				int d = rawconn_read(&cs[i]);
				if (d < 0) {
					errors++;
					pfds[i].fd = -1;
					continue;
				}
				if (d == 0)
					continue;
				hist_add(h, (uint64_t)(now_us() - cs[i].sent_us));
				done++;
				/* Alternate ApiVersions and Metadata per connection. */
				int16_t api = (cs[i].corr & 1) ? 3 : 18;
				if (rawconn_send(&cs[i], api, api == 3 ? 1 : 0)) {
					errors++;
					pfds[i].fd = -1;
				}
			}
		}
		secs = (double)(now_us() - start) / 1e6;
	}
	for (int i = 0; i < n; i++)
		close(cs[i].fd);

	const char *mode = o->active ? "active" : "idle";
	printf("conns %s: %d connections (%s) set up in %.2f s", o->bootstrap, n, mode, setup_s);
	if (o->active)
		printf("; %" PRId64 " requests in %.2f s: %.0f req/s, p50 %.2f ms p99 %.2f ms, %"
		       PRId64 " errors", done, secs, (double)done / secs, hist_percentile_ms(h, 50),
		       hist_percentile_ms(h, 99), errors);
	printf("\n");
	struct opts o2 = *o;
	o2.partitions = n; /* the CSV partitions column carries the connection count */
	char wl[32];
	snprintf(wl, sizeof wl, "conns-%s", mode);
	print_result(&o2, wl, 0, o->active ? (double)done / secs : 0, o->active ? h : NULL);
	free(cs);
	free(pfds);
	free(h);
	return errors ? 1 : 0;
}

/* Serves a mock cluster until SIGINT/SIGTERM. Topics given as NAME:PARTITIONS
 * are created first (the mock in librdkafka 2.0 has no CreateTopics; others
 * are auto-created with 4 partitions on Metadata). */
static int cmd_mock_serve(int ntopics, char **topics, int rtt_ms)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	conf_set(conf, "log_level", "3");
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
	if (!rk)
		die("mock owner: %s", err);
	rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, 1);
	if (!mc)
		die("rd_kafka_mock_cluster_new failed");
	for (int i = 0; i < ntopics; i++) {
		char name[256];
		const char *colon = strrchr(topics[i], ':');
		if (!colon || (size_t)(colon - topics[i]) >= sizeof name)
			die("mock-serve: --topic NAME:PARTITIONS, got '%s'", topics[i]);
		memcpy(name, topics[i], (size_t)(colon - topics[i]));
		name[colon - topics[i]] = 0;
		int parts = (int)parse_int("--topic", colon + 1, 1, PARTITIONS_MAX);
		rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, name, parts, 1);
		if (e)
			die("mock topic %s: %s", name, rd_kafka_err2str(e));
	}
	if (rtt_ms > 0 && rd_kafka_mock_broker_set_rtt(mc, -1, rtt_ms))
		die("mock-serve: --rtt-ms %d refused", rtt_ms);
	printf("bootstrap %s\n", rd_kafka_mock_cluster_bootstraps(mc));
	fflush(stdout);
	while (!stop_requested) {
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
	}
	/* Nothing to keep: skip the orderly teardown (about a second of
	 * thread joins per stop, which adds up over a suite's restarts). */
	fflush(stdout);
	_exit(0);
}

/* ---- command line ------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: driver produce (--bootstrap HOST:PORT | --reference mock) --topic T\n"
		"              [--partitions 8] [--msg-bytes 1024] [--duration-s 10] [--acks all]\n"
		"              [--linger-ms 5] [--rate MSGS_PER_S] [--label NAME] [--verbose]\n"
		"              [--queue-msgs 500000] [--producers 1] [--partitioner round-robin|sticky]\n"
		"              [--idempotent on|off] [--txn-records N [--txn-abort-every K]]\n"
		"              [--per-second SKIP] (latency per second of the run, and from SKIP s on)\n"
		"       driver consume (--bootstrap HOST:PORT | --reference mock) --topic T\n"
		"              [--partitions 8] [--count N] [--msg-bytes 1024] [--label NAME]\n"
		"              [--consumers 1]\n"
		"prints a summary and a line csv:workload,target,msg_bytes,partitions,mb_s,msgs_s,\n"
		"p50_ms,p99_ms,p999_ms\n"
		"       driver e2e (--bootstrap HOST:PORT | --reference mock) --topic T --rate R\n"
		"              [--partitions 8] [--msg-bytes 1024] [--duration-s 10] [--fetch-wait-ms 10]\n"
		"       driver metadata (--bootstrap HOST:PORT | --reference mock) [--repeat 20]\n"
		"       driver conns --bootstrap HOST:PORT --connections N [--mode idle|active]\n"
		"              [--hold-s 3] [--duration-s 5] [--ready-file F]\n"
		"       driver mock-serve [--topic NAME:PARTITIONS]... [--rtt-ms N]\n"
		"              (a mock cluster until SIGTERM; --rtt-ms delays each response)\n"
		"common: --name W (CSV workload column)  --cdf FILE (latency CDF)  --count N\n"
		"        --conf KEY=VALUE (librdkafka setting, repeatable; e.g. security.protocol=ssl)\n"
		"        --stats-file FILE (the clients' statistics JSON, a line each 500 ms)\n");
	exit(2);
}

static int64_t parse_int(const char *name, const char *s, int64_t lo, int64_t hi)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi)
		die("%s: expected an integer in [%lld, %lld], got '%s'", name, (long long)lo,
		    (long long)hi, s);
	return v;
}

int main(int argc, char **argv)
{
	struct opts o = {
		.acks = "all",
		.partitions = 8,
		.msg_bytes = 1024,
		.duration_s = 10,
		.linger_ms = 5,
		.fetch_wait_ms = 10,
		.queue_msgs = 500000,
		.repeat = 20,
		.connections = 1,
		.hold_s = 3,
		.producers = 1,
		.consumers = 1,
		.per_second_skip = -1,
	};
	if (argc < 2)
		usage();
	o.workload = argv[1];
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (strcmp(o.workload, "mock-serve") == 0) {
		char *topics[MOCK_TOPICS_MAX];
		int nt = 0, rtt_ms = 0;
		for (int i = 2; i < argc; i++) {
			if (strcmp(argv[i], "--rtt-ms") == 0 && i + 1 < argc) {
				rtt_ms = (int)parse_int("--rtt-ms", argv[++i], 0, 60000);
				continue;
			}
			if (strcmp(argv[i], "--topic") != 0 || i + 1 >= argc || nt == MOCK_TOPICS_MAX)
				usage();
			topics[nt++] = argv[++i];
		}
		return cmd_mock_serve(nt, topics, rtt_ms);
	}
	static const char *const cmds[] = { "produce", "consume", "e2e", "metadata", "conns" };
	bool known = false;
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		known |= strcmp(o.workload, cmds[i]) == 0;
	if (!known)
		usage();
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--verbose") == 0) {
			o.verbose = true;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		if (strcmp(a, "--bootstrap") == 0)
			o.bootstrap = v;
		else if (strcmp(a, "--reference") == 0) {
			if (strcmp(v, "mock") != 0)
				die("--reference: only 'mock' is known");
			o.mock = true;
		} else if (strcmp(a, "--conf") == 0) {
			const char *eq = strchr(v, '=');
			if (!eq || eq == v || eq - v >= 256 || extra_conf_count == EXTRA_CONF_MAX)
				die("--conf: expected KEY=VALUE (at most %d)", EXTRA_CONF_MAX);
			extra_conf[extra_conf_count++] = v;
		} else if (strcmp(a, "--stats-file") == 0) {
			if (!(stats_fp = fopen(v, "w")))
				die("--stats-file %s: %s", v, strerror(errno));
		} else if (strcmp(a, "--topic") == 0)
			o.topic = v;
		else if (strcmp(a, "--label") == 0)
			o.label = v;
		else if (strcmp(a, "--acks") == 0)
			o.acks = v;
		else if (strcmp(a, "--partitions") == 0)
			o.partitions = (int)parse_int(a, v, 1, PARTITIONS_MAX);
		else if (strcmp(a, "--msg-bytes") == 0)
			o.msg_bytes = (int)parse_int(a, v, 1, MSG_BYTES_MAX);
		else if (strcmp(a, "--duration-s") == 0) {
			char *end;
			o.duration_s = strtod(v, &end);
			if (*end || o.duration_s <= 0 || o.duration_s > 86400)
				die("--duration-s: expected seconds in (0, 86400], got '%s'", v);
		} else if (strcmp(a, "--linger-ms") == 0)
			o.linger_ms = (int)parse_int(a, v, 0, 900000);
		else if (strcmp(a, "--rate") == 0)
			o.rate_msgs_s = parse_int(a, v, 0, 100000000);
		else if (strcmp(a, "--count") == 0)
			o.count = parse_int(a, v, 0, INT64_MAX);
		else if (strcmp(a, "--name") == 0)
			o.name = v;
		else if (strcmp(a, "--cdf") == 0)
			o.cdf = v;
		else if (strcmp(a, "--per-second") == 0)
			o.per_second_skip = (int)parse_int(a, v, 0, PER_SECOND_MAX);
		else if (strcmp(a, "--fetch-wait-ms") == 0)
			o.fetch_wait_ms = (int)parse_int(a, v, 0, 300000);
		else if (strcmp(a, "--queue-msgs") == 0)
			o.queue_msgs = (int)parse_int(a, v, 1, 10000000);
		else if (strcmp(a, "--repeat") == 0)
			o.repeat = (int)parse_int(a, v, 1, 1000000);
		else if (strcmp(a, "--connections") == 0)
			o.connections = (int)parse_int(a, v, 1, CONNS_MAX);
		else if (strcmp(a, "--hold-s") == 0) {
			char *end;
			o.hold_s = strtod(v, &end);
			if (*end || o.hold_s < 0 || o.hold_s > 86400)
				die("--hold-s: expected seconds in [0, 86400], got '%s'", v);
		} else if (strcmp(a, "--ready-file") == 0)
			o.ready_file = v;
		else if (strcmp(a, "--producers") == 0)
			o.producers = (int)parse_int(a, v, 1, CLIENTS_MAX);
		else if (strcmp(a, "--consumers") == 0)
			o.consumers = (int)parse_int(a, v, 1, CLIENTS_MAX);
		else if (strcmp(a, "--txn-records") == 0)
			o.txn_records = parse_int(a, v, 1, 100000000);
		else if (strcmp(a, "--txn-abort-every") == 0)
			o.txn_abort_every = parse_int(a, v, 1, 1000000);
		else if (strcmp(a, "--idempotent") == 0) {
			if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0)
				die("--idempotent: on or off");
			o.idempotent = strcmp(v, "on") == 0;
		} else if (strcmp(a, "--partitioner") == 0) {
			if (strcmp(v, "round-robin") != 0 && strcmp(v, "sticky") != 0)
				die("--partitioner: round-robin or sticky");
			o.sticky = strcmp(v, "sticky") == 0;
		} else if (strcmp(a, "--mode") == 0) {
			if (strcmp(v, "idle") != 0 && strcmp(v, "active") != 0)
				die("--mode: idle or active");
			o.active = strcmp(v, "active") == 0;
		}
		else
			usage();
	}
	if (strcmp(o.workload, "conns") == 0)
		return cmd_conns(&o);
	if (!o.topic && strcmp(o.workload, "metadata") == 0)
		o.topic = "bench-metadata"; /* only the mock reference uses it */
	if (!o.topic)
		die("--topic is required");
	if (!o.mock == !o.bootstrap)
		die("give exactly one of --bootstrap HOST:PORT and --reference mock");

	if (strcmp(o.workload, "produce") == 0)
		return cmd_produce(&o);
	if (strcmp(o.workload, "e2e") == 0)
		return cmd_e2e(&o);
	if (strcmp(o.workload, "metadata") == 0)
		return cmd_metadata(&o);
	return cmd_consume(&o);
}
